-- docs/adopting.md, the blocks of "Roles", "Attaching an orders table that
-- already has rows", "Back-filling", "Changing a program's terms",
-- "Correcting ... members", watching the nightly jobs ("health") and
-- "Upgrading" (the check before), each run as written, in the story the
-- doc tells, and followed by what the doc says happened.  Scheduling with
-- pg_cron is run as written by test/tap/003_schedule_jobs.pl, the update
-- by test/upgrade/run.sh (scripts/check_doc_blocks.pl looks there too).
-- In a database of its own: other files of the suite create programs
-- named as the doc's ('shop') in the shared regression database.
SET client_min_messages = warning;
SELECT current_database() AS regress_db \gset
DROP DATABASE IF EXISTS regress_adopting_tour;
CREATE DATABASE regress_adopting_tour;
\c regress_adopting_tour
CREATE EXTENSION loyalty;
RESET client_min_messages;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-------------------------------------------------------------------------------
-- Roles: who does what.  The doc's login roles (cluster-wide: dropped at
-- the end).
-------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP ROLE IF EXISTS dba_anna;
DROP ROLE IF EXISTS shop_backend;
DROP ROLE IF EXISTS metabase;
DROP ROLE IF EXISTS shop_owner;
DROP ROLE IF EXISTS regress_tour_admin;
RESET client_min_messages;
CREATE ROLE dba_anna LOGIN;
CREATE ROLE shop_backend LOGIN;
CREATE ROLE metabase LOGIN;
CREATE ROLE shop_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO shop_owner;

GRANT loyalty_admin  TO dba_anna;        -- the DBA, the back office
GRANT loyalty_app    TO shop_backend;    -- the application
GRANT loyalty_reader TO metabase;        -- BI tools
GRANT shop_owner     TO dba_anna;        -- to attach the shop's tables (below)

-- Each login is a member of its loyalty role, dba_anna of the owner's too.
SELECT r.rolname, string_agg(g.rolname, ', ' ORDER BY g.rolname) AS member_of
  FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles g ON g.oid = m.roleid
 WHERE r.rolname IN ('dba_anna', 'shop_backend', 'metabase')
 GROUP BY r.rolname ORDER BY r.rolname;

-------------------------------------------------------------------------------
-- Attaching an orders table that already has rows, as dba_anna
-- (loyalty_admin).  attach_orders warns that the row earns nothing until
-- back-filled.
-------------------------------------------------------------------------------
SET ROLE dba_anna;
SELECT loyalty.create_program('shop', 'USD', 1, 14, '2 years');
CREATE TABLE shop_orders (id bigint PRIMARY KEY, customer_id bigint, total_cents bigint,
                          currency text, state text, refunded_cents bigint,
                          created_at timestamp);
INSERT INTO shop_orders VALUES (1, 42, 12999, 'USD', 'paid', 0, '2024-03-01 09:30');
SELECT loyalty.attach_orders('shop', 'shop_orders', 'id', 'customer_id', 'total_cents',
                             currency => 'currency', status => 'state',
                             refunded_amount => 'refunded_cents', created_at => 'created_at',
                             amount_unit => 'minor', timestamp_timezone => 'UTC',
                             closing_statuses => ARRAY['cancelled', 'refunded', 'voided']);
GRANT SELECT, INSERT, UPDATE ON shop_orders TO shop_backend;
RESET ROLE;
-- The program as created: 1 point per USD, 14 pending days, 2 years.
SELECT code, base_currency, earn_rate, pending_days, expire_after FROM loyalty.program WHERE code = 'shop';
-- The table's own closing statuses; the row already there earned nothing.
SELECT orders::text, closing_statuses FROM loyalty.order_source WHERE program = 'shop';
SELECT count(*) AS earned_orders FROM loyalty.order_earning WHERE program = 'shop';

-- An order written now earns live: 45.50 USD in cents is 45 points, its
-- time read in UTC.
SET ROLE shop_backend;
INSERT INTO shop_orders VALUES (2, 42, 4550, 'USD', 'paid', 0, '2024-04-01 10:00');
RESET ROLE;
SELECT order_id, member_id, amount, points, ordered_at FROM loyalty.order_earning WHERE program = 'shop' ORDER BY order_id;

-------------------------------------------------------------------------------
-- Back-filling the orders you already have: order 1 earns as the trigger
-- would have, at its time: 129.99 USD is 129 points, pending 14 days from
-- 2024-03-01 09:30 UTC, expiring two years after it.
-------------------------------------------------------------------------------
SET ROLE dba_anna;
CALL loyalty.backfill_orders('shop', 'shop_orders');
RESET ROLE;
SELECT order_id, member_id, amount, points, ordered_at FROM loyalty.order_earning WHERE program = 'shop' ORDER BY order_id;
SELECT order_id, earned, available_at, expires_at FROM loyalty.member_lots('shop', '42', '2024-03-02') ORDER BY order_id;
SELECT available, pending FROM loyalty.balance('shop', '42', '2024-03-02');
SELECT available, pending FROM loyalty.balance('shop', '42', '2024-04-20');
-- Running it twice earns nothing.
SET ROLE dba_anna;
CALL loyalty.backfill_orders('shop', 'shop_orders');
RESET ROLE;
SELECT count(*) AS ledger_rows, sum(points) AS points FROM loyalty.ledger WHERE program = 'shop';
-- After the back-fill the old order's refund counts: voided is one of the
-- table's closing statuses.
SET ROLE shop_backend;
UPDATE shop_orders SET state = 'voided' WHERE id = 1;
RESET ROLE;
SELECT order_id, points, reversed_total, closed FROM loyalty.order_earning WHERE program = 'shop' ORDER BY order_id;

-------------------------------------------------------------------------------
-- Changing a program's terms: program 'eu', which has earned nothing, so
-- dated changes are accepted.  Each call returns the new terms row (its
-- times vary: not shown); the terms over time and the notes follow.
-------------------------------------------------------------------------------
SELECT loyalty.create_program('eu', 'EUR', 1, 14, '3 years', timezone => 'Europe/Paris');
SET ROLE dba_anna;
\o /dev/null
-- Double points from 1 January 2031, with a note for the next DBA:
SELECT * FROM loyalty.change_program('eu', '{"earn_rate": 2}', '2031-01-01', 'double points 2031');
-- Longer return window and expiry after two years, from now on:
SELECT * FROM loyalty.change_program('eu', '{"pending_days": 30, "expire_after": "2 years"}');
-- Points that never expire: JSON null.
SELECT * FROM loyalty.change_program('eu', '{"expire_after": null}', '2031-06-01');
\o
RESET ROLE;
-- From now: 1 point per EUR, 30 pending days, two years; from New Year
-- 2031 double points; from 2031-06-01 no expiry.
SELECT CASE WHEN effective_from > now() - interval '1 hour' AND effective_from <= now() THEN 'now'
            ELSE effective_from::text END AS effective_from, earn_rate, pending_days, expire_after
  FROM loyalty.program_terms WHERE program = 'eu' ORDER BY program_terms.effective_from;
SELECT earn_rate, pending_days, expire_after FROM loyalty.program_terms_at('eu', now());
SELECT earn_rate, pending_days, expire_after FROM loyalty.program_terms_at('eu', '2031-03-01');
SELECT earn_rate, pending_days, expire_after FROM loyalty.program_terms_at('eu', '2031-07-01');
SELECT note FROM loyalty.program_change WHERE program = 'eu' AND note IS NOT NULL ORDER BY id;

-------------------------------------------------------------------------------
-- Correcting balances: docs_shop's orders were attached without
-- amount_unit => 'minor', so their cents earned 100x the points.
-------------------------------------------------------------------------------
-- (sum(points) of a bigint is numeric: adjust takes bigint points, hence
-- the cast; points / 100 per order rounds each order down as it would have.)
SELECT loyalty.create_program('docs_shop', 'USD', 1);
CREATE TABLE docs_shop_orders (id text PRIMARY KEY, customer text, total_cents bigint);
SELECT loyalty.attach_orders('docs_shop', 'docs_shop_orders', 'id', 'customer', 'total_cents');
INSERT INTO docs_shop_orders VALUES ('D-1', 'ana', 12999), ('D-2', 'ana', 550), ('D-3', 'ben', 2000),
                                    ('D-4', NULL, 5000), ('D-5', 'cy', 99);
SELECT member_id, balance FROM loyalty.member WHERE program = 'docs_shop' ORDER BY member_id;
SET ROLE dba_anna;
SELECT loyalty.adjust('docs_shop', member_id, -sum(points - points / 100)::bigint,
                      'cents-fix:' || member_id, 'amounts were loaded in cents')
  FROM loyalty.order_earning WHERE program = 'docs_shop' AND member_id IS NOT NULL
 GROUP BY member_id HAVING sum(points - points / 100) > 0;
RESET ROLE;
-- Each order's points in dollars: ana 129 + 5, ben 20, cy 0 (99 cents).
SELECT member_id, balance FROM loyalty.member WHERE program = 'docs_shop' ORDER BY member_id;
SELECT id, member_id, kind, points, ref, reason FROM loyalty.ledger WHERE program = 'docs_shop' AND ref LIKE 'cents-fix:%' ORDER BY id;
-- A second run is a no-op (the ref): the same ledger ids, no new row.
SET ROLE dba_anna;
SELECT loyalty.adjust('docs_shop', member_id, -sum(points - points / 100)::bigint,
                      'cents-fix:' || member_id, 'amounts were loaded in cents')
  FROM loyalty.order_earning WHERE program = 'docs_shop' AND member_id IS NOT NULL
 GROUP BY member_id HAVING sum(points - points / 100) > 0;
RESET ROLE;
SELECT count(*) AS corrections FROM loyalty.ledger WHERE program = 'docs_shop' AND ref LIKE 'cents-fix:%';
SELECT bool_and(ok) AS books_ok FROM loyalty.verify();

-------------------------------------------------------------------------------
-- Watching the nightly jobs: eu's health before any run (no dead letter,
-- no ignored event, every job never run), then after
-- run_nightly_jobs, without pg_cron (times vary: shown as booleans).
-------------------------------------------------------------------------------
SET ROLE dba_anna;
SELECT area, item, status, count, last_at, duration, detail
  FROM loyalty.health WHERE program = 'eu' ORDER BY area, item;
SELECT count(*) > 0 AS jobs FROM loyalty.run_nightly_jobs('eu');
SELECT area, item, status, count, last_at IS NOT NULL AS ran, duration >= '0' AS timed
  FROM loyalty.health WHERE program = 'eu' ORDER BY area, item;
RESET ROLE;

-- Attaching needs the table's owner: a loyalty_admin that is not a member
-- of shop_owner is refused eu_orders; dba_anna, a member, attaches it.
CREATE ROLE regress_tour_admin IN ROLE loyalty_admin;
SET ROLE shop_owner;
CREATE TABLE eu_orders (id text PRIMARY KEY, customer text, total numeric);
RESET ROLE;
SET ROLE regress_tour_admin;
\set VERBOSITY terse
SELECT loyalty.attach_orders('eu', 'eu_orders', 'id', 'customer', 'total');
\set VERBOSITY default
RESET ROLE;
SET ROLE dba_anna;
SELECT loyalty.attach_orders('eu', 'eu_orders', 'id', 'customer', 'total');
RESET ROLE;
-- The BI login reads the views, the application's login the balances.
SET ROLE metabase;
SELECT member_id, available_points FROM loyalty.member_360 WHERE program = 'docs_shop' ORDER BY member_id;
RESET ROLE;
SET ROLE shop_backend;
SELECT available, pending FROM loyalty.balance('shop', 42, '2024-04-20');
RESET ROLE;

-------------------------------------------------------------------------------
-- Upgrading, the check before (0.1.0 runs it too, in test/upgrade/run.sh):
-- the books are clean, the version is this one.
-------------------------------------------------------------------------------
SET ROLE dba_anna;
SELECT * FROM loyalty.verify() WHERE NOT ok;   -- no rows
SELECT extversion FROM pg_extension WHERE extname = 'loyalty';
RESET ROLE;

-- Clean up: the doc's roles are cluster-wide.
\c :regress_db
SET client_min_messages = warning;
DROP DATABASE regress_adopting_tour;
DROP ROLE dba_anna, shop_backend, metabase, shop_owner, regress_tour_admin;

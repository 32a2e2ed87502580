-- Review of program administration: attacks on the history and on
-- archiving.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

-- 1. The restore detection must not let a caller skip the history: a
-- COPY of a query that creates, archives or drops a program is no restore.
SET ROLE loyalty_admin;
COPY (SELECT loyalty.create_program('rv_copy', 'USD', 1, 0, NULL, 'debt', 'UTC')) TO STDOUT;
COPY (SELECT loyalty.drop_program('rv_copy')) TO STDOUT;
RESET ROLE;
SELECT kind FROM loyalty.program_change WHERE program = 'rv_copy' ORDER BY id;

-- 2. Archiving keeps the books right: a refund of an order placed before
-- the archive still takes its points back.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('rv_arch', 'USD', 1, 0, NULL, 'debt', 'UTC');
RESET ROLE;
CREATE TABLE rvp_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                        refunded numeric DEFAULT 0, at timestamptz DEFAULT now());
SELECT loyalty.attach_orders('rv_arch', 'rvp_orders', 'id', 'member', 'amount', NULL, 'status', 'refunded', 'at');
INSERT INTO rvp_orders (id, member, amount) VALUES ('R-1', 'ann', 100);
SET ROLE loyalty_admin;
SELECT loyalty.archive_program('rv_arch') IS NOT NULL AS archived;
RESET ROLE;
UPDATE rvp_orders SET refunded = 100 WHERE id = 'R-1';
SELECT balance FROM loyalty.member WHERE program = 'rv_arch' AND member_id = 'ann';
-- A new order of the archived program earns nothing, and the insert works.
INSERT INTO rvp_orders (id, member, amount) VALUES ('R-2', 'ann', 50);
SELECT balance FROM loyalty.member WHERE program = 'rv_arch' AND member_id = 'ann';
SELECT count(*) AS earned_after_archive FROM loyalty.order_earning WHERE program = 'rv_arch' AND order_id = 'R-2';
SELECT ok, detail FROM loyalty.verify('rv_arch') WHERE NOT ok;
-- Several new orders in one statement (the batched path) earn nothing either.
INSERT INTO rvp_orders (id, member, amount) VALUES ('R-3', 'ann', 10), ('R-4', 'bob', 20);
SELECT count(*) AS earned_after_archive FROM loyalty.order_earning WHERE program = 'rv_arch' AND order_id IN ('R-3', 'R-4');
SELECT count(*) AS dead_letters FROM loyalty.dead_letter WHERE program = 'rv_arch';
SELECT balance FROM loyalty.member WHERE program = 'rv_arch' AND member_id = 'ann';
SELECT ok, detail FROM loyalty.verify('rv_arch') WHERE NOT ok;

-- 3. A dead letter of an order, retried after the archive: it earns
-- nothing (the first sight of an order bypassed the LY055 check) and stays
-- open, saying why (LY055), for the admin to resolve.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('rv_dl', 'USD', 1, 0, NULL, 'debt', 'UTC');
RESET ROLE;
CREATE TABLE rv_dl_orders (id text PRIMARY KEY, member text, amount numeric, currency text,
                           at timestamptz DEFAULT now());
SELECT loyalty.attach_orders('rv_dl', 'rv_dl_orders', 'id', 'member', 'amount', 'currency',
                             created_at => 'at') IS NOT NULL AS attached;
INSERT INTO rv_dl_orders (id, member, amount, currency, at) VALUES ('D-1', 'ann', 100, 'MNT', '2026-01-01');
SET ROLE loyalty_admin;
SELECT loyalty.archive_program('rv_dl') IS NOT NULL AS archived;
SELECT loyalty.set_fx_rate('MNT', 'USD', 1.1, '2000-01-01') IS NOT NULL AS rate_set;
SELECT loyalty.retry_dead_letters('rv_dl');
RESET ROLE;
-- A bad row inserted after the archive is no dead letter: nothing to earn.
INSERT INTO rv_dl_orders (id, member, amount, currency) VALUES ('D-2', 'ann', -1, 'USD');
SELECT order_id, sqlstate, reason, resolved_at IS NULL AS open FROM loyalty.dead_letter WHERE program = 'rv_dl';
SELECT count(*) AS earned FROM loyalty.order_earning WHERE program = 'rv_dl';
SELECT member_id, kind, points FROM loyalty.ledger WHERE program = 'rv_dl';
SELECT ok, detail FROM loyalty.verify('rv_dl') WHERE NOT ok;

-- 4. A plain dump made with pg_dump --inserts restores loyalty.program by
-- INSERT: that is a restore too (the dump brings the history; recording
-- again clashed with the restored ids and replaced the history rows).
INSERT INTO loyalty.program (code, base_currency, earn_rate, pending_days, expire_after, refund_policy, timezone)
VALUES ('rv_ins', 'USD', 1, 0, NULL, 'debt', 'UTC');
SELECT count(*) AS recorded FROM loyalty.program_change WHERE program = 'rv_ins';
DELETE FROM loyalty.program WHERE code = 'rv_ins';
-- Through a function the same statement shape inside a query is no restore.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('rv_ins2', 'USD', 1, 0, NULL, 'debt', 'UTC') /* insert into loyalty.program ( */;
RESET ROLE;
SELECT kind FROM loyalty.program_change WHERE program = 'rv_ins2';

-- 5. An order of an archived program changed so it would earn again (a new
-- amount): the shop's UPDATE must not fail (it raised LY055 into it); the
-- event waits in the dead letters, and a later cancel still takes the
-- points back.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('rv_up', 'USD', 1, 0, NULL, 'debt', 'UTC');
RESET ROLE;
CREATE TABLE rv_up_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                           at timestamptz DEFAULT '2026-01-01');
SELECT loyalty.attach_orders('rv_up', 'rv_up_orders', 'id', 'member', 'amount', NULL, 'status',
                             created_at => 'at') IS NOT NULL AS attached;
INSERT INTO rv_up_orders (id, member, amount) VALUES ('U-1', 'ann', 100);
SET ROLE loyalty_admin;
SELECT loyalty.archive_program('rv_up') IS NOT NULL AS archived;
RESET ROLE;
UPDATE rv_up_orders SET amount = 150 WHERE id = 'U-1';
SELECT amount FROM rv_up_orders WHERE id = 'U-1';
SELECT balance FROM loyalty.member WHERE program = 'rv_up' AND member_id = 'ann';
SELECT order_id, event, sqlstate, reason, resolved_at IS NULL AS open FROM loyalty.dead_letter WHERE program = 'rv_up';
UPDATE rv_up_orders SET status = 'cancelled' WHERE id = 'U-1';
SELECT balance FROM loyalty.member WHERE program = 'rv_up' AND member_id = 'ann';
SELECT order_id, event, sqlstate, resolved_at IS NULL AS open FROM loyalty.dead_letter WHERE program = 'rv_up';
SELECT ok, detail FROM loyalty.verify('rv_up') WHERE NOT ok;

-- 6. An order priced at zero points (earn rate 0) after the date was
-- priced under the old terms too: change_program from before it is refused.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('rv_zero', 'USD', 0, 0, NULL, 'debt', 'UTC');
RESET ROLE;
CREATE TABLE rv_zero_orders (id text PRIMARY KEY, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('rv_zero', 'rv_zero_orders', 'id', 'member', 'amount', created_at => 'at') IS NOT NULL AS attached;
INSERT INTO rv_zero_orders VALUES ('Z-1', 'ann', 100, '2026-03-10');
SELECT points FROM loyalty.order_earning WHERE program = 'rv_zero';
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.change_program('rv_zero', '{"earn_rate": 5}', '2026-03-01')$$);
SELECT (loyalty.change_program('rv_zero', '{"earn_rate": 5}', '2026-03-10 00:00:01')).earn_rate AS after_the_order;
RESET ROLE;

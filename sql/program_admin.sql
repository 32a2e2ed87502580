-- Program administration: terms that change from a date on (orders before
-- it keep theirs: points, pending days, expiry, refund policy), dropping a
-- program that never earned, archiving one that did, and the history of
-- every change.  The admin calls run as loyalty_admin.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SET ROLE loyalty_admin;
SELECT loyalty.create_program('pa', 'USD', 1, 0, '365 days', 'debt', 'UTC');
RESET ROLE;
-- The first terms, effective from -infinity.
SELECT program, effective_from, earn_rate, pending_days, expire_after, refund_policy, timezone
  FROM loyalty.program_terms WHERE program = 'pa';

CREATE TABLE pa_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                        refunded numeric DEFAULT 0, at timestamptz);
SELECT loyalty.attach_orders('pa', 'pa_orders', 'id', 'member', 'amount', NULL, 'status', 'refunded', 'at');
INSERT INTO pa_orders (id, member, amount, at) VALUES ('A-1', 'ann', 100, '2026-01-10');

-- Double points, 7 pending days, no expiry and refunds within the balance
-- from February on.
SET ROLE loyalty_admin;
SELECT effective_from, earn_rate, pending_days, expire_after, refund_policy, timezone
  FROM loyalty.change_program('pa', '{"earn_rate": 2, "pending_days": 7, "expire_after": null,
                                      "refund_policy": "within_balance"}',
                              '2026-02-01', 'double points from February');
RESET ROLE;

-- Orders on either side of the date, inserted in any order: each earns by
-- the terms of its own time.  A-2 (January) is inserted after A-3 (February).
INSERT INTO pa_orders (id, member, amount, at) VALUES
    ('A-3', 'ann', 100, '2026-02-20'), ('B-1', 'bob', 100, '2026-02-21');
INSERT INTO pa_orders (id, member, amount, at) VALUES ('A-2', 'ann', 100, '2026-01-31 23:59:59');
INSERT INTO pa_orders (id, member, amount, at) VALUES ('B-2', 'bob', 100, '2026-02-01 00:00:00');
SELECT e.order_id, e.points, l.available_at, l.expires_at
  FROM loyalty.order_earning e JOIN loyalty.lot l ON l.program = e.program AND l.order_id = e.order_id
 WHERE e.program = 'pa' ORDER BY e.ordered_at;

-- The program row shows the newest terms; program_terms_at the terms of a time.
SELECT earn_rate, pending_days, expire_after, refund_policy FROM loyalty.program WHERE code = 'pa';
SET ROLE loyalty_app;
SELECT effective_from, earn_rate, refund_policy FROM loyalty.program_terms_at('pa', '2026-01-31 23:59:59');
SELECT effective_from, earn_rate, refund_policy FROM loyalty.program_terms_at('pa', '2026-02-01');
SET ROLE loyalty_reader;
SELECT count(*) AS terms FROM loyalty.program_terms WHERE program = 'pa';
SELECT loyalty.program_terms_at('pa', NULL) IS NULL AS null_time, loyalty.program_terms_at('nope', now()) IS NULL AS unknown;
RESET ROLE;

-- Refunds follow the order's terms.  ann spends all but 10 points, then
-- both her orders are refunded in full: A-1 (January, debt) takes its 100
-- back into debt; A-3 (February, within_balance) takes nothing more.
SELECT loyalty.redeem('pa', 'ann', (SELECT available FROM loyalty.balance('pa', 'ann', '2026-03-01')) - 10,
                      'pa-spend', '2026-03-01') > 0 AS spent;
SELECT balance, debt FROM loyalty.member WHERE program = 'pa' AND member_id = 'ann';
UPDATE pa_orders SET refunded = 100 WHERE id = 'A-3';
SELECT balance, debt FROM loyalty.member WHERE program = 'pa' AND member_id = 'ann';
UPDATE pa_orders SET refunded = 100 WHERE id = 'A-1';
SELECT balance, debt FROM loyalty.member WHERE program = 'pa' AND member_id = 'ann';
SELECT order_id, points FROM loyalty.ledger WHERE program = 'pa' AND kind = 'reverse' ORDER BY id;

-- Points already earned keep their terms: a change dated before them is
-- refused (LY053), naming the latest; one after them is accepted.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": 3}', '2026-02-21')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": 3}', '-infinity')$$);
\set VERBOSITY default
SELECT loyalty.change_program('pa', '{"earn_rate": 3}', '2026-01-01');
\set VERBOSITY terse
-- Bad arguments: clear errors, nothing changed.
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.change_program(NULL, '{"earn_rate": 3}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('nope', '{"earn_rate": 3}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '[1]')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": 3, "earnrate": 3, "colour": "red"}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"closing_statuses": ["void"]}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": "lots"}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": -1}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": "NaN"}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": null}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"pending_days": 1.5}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"pending_days": -1}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"expire_after": 30}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"expire_after": "-30 days"}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"refund_policy": "never"}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"timezone": "Mars/Olympus"}')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"timezone": "Asia/Tokyo"}', '2030-01-01')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": 3}', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": 3}', 'infinity')$$);
RESET ROLE;
SELECT count(*) AS terms, max(earn_rate) AS max_rate FROM loyalty.program_terms WHERE program = 'pa';
-- Only admins change terms.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": 9}')$$);
RESET ROLE;

-- A change applies from its date on, to later-dated terms too; a change
-- on the date of existing terms replaces those settings.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('pb', 'EUR', 1);
SELECT effective_from, earn_rate FROM loyalty.change_program('pb', '{"earn_rate": 3}', '2027-01-01');
SELECT effective_from, earn_rate, pending_days FROM loyalty.change_program('pb', '{"pending_days": 5}', '2026-06-01');
SELECT effective_from, earn_rate, pending_days FROM loyalty.change_program('pb', '{"earn_rate": "2.5"}', '2027-01-01');
RESET ROLE;
SELECT effective_from, earn_rate, pending_days FROM loyalty.program_terms WHERE program = 'pb' ORDER BY 1;
SELECT earn_rate, pending_days FROM loyalty.program WHERE code = 'pb';
-- create_program again with the settings it was created with still passes
-- (a setup script run twice); with others it says what it was created with.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('pb', 'EUR', 1);
\set VERBOSITY default
SELECT loyalty.create_program('pb', 'EUR', 3);
\set VERBOSITY terse

-- A time zone change applies now: the program row and every later terms row.
SELECT effective_from = now() AS now, timezone FROM loyalty.change_program('pb', '{"timezone": "Asia/Ho_Chi_Minh"}');
RESET ROLE;
SELECT timezone FROM loyalty.program WHERE code = 'pb';
SELECT effective_from > '2026-12-31' AS later, timezone FROM loyalty.program_terms
 WHERE program = 'pb' AND effective_from > now() ORDER BY effective_from;

-- drop_program: refused while the program has ledger rows (LY054, with a
-- hint to archive); a program with members, settings, a dead letter and an
-- attached table but no ledger rows goes, its table detached and working.
SET ROLE loyalty_admin;
\set VERBOSITY default
SELECT loyalty.drop_program('pa');
\set VERBOSITY terse
SELECT loyalty.create_program('pdrop', 'USD', 1);
RESET ROLE;
CREATE TABLE pdrop_orders (id text PRIMARY KEY, member text, amount numeric, currency text);
SELECT loyalty.attach_orders('pdrop', 'pdrop_orders', 'id', 'member', 'amount', 'currency');
SET client_min_messages = error;   -- the WARNING names the time
INSERT INTO pdrop_orders VALUES ('D-1', 'dan', 10, 'XYZ');   -- no rate: a dead letter, no points
RESET client_min_messages;
SET ROLE loyalty_admin;
SELECT loyalty.enroll('pdrop', 'eve');
SELECT loyalty.set_tier_ladder('pdrop', 'basis=orders window=30d | Basic 0 x1 | Star 2 x1.5');
SELECT loyalty.set_lifecycle('pdrop', 10, 20, 30, 40);
SELECT (SELECT count(*) FROM loyalty.member WHERE program = 'pdrop') AS members,
       (SELECT count(*) FROM loyalty.dead_letter WHERE program = 'pdrop') AS dead_letters,
       (SELECT count(*) FROM loyalty.ledger WHERE program = 'pdrop') AS ledger_rows;
SELECT loyalty.drop_program('pdrop');
SELECT count(*) AS left_program FROM loyalty.program WHERE code = 'pdrop';
SELECT (SELECT count(*) FROM loyalty.member WHERE program = 'pdrop') AS members,
       (SELECT count(*) FROM loyalty.dead_letter WHERE program = 'pdrop') AS dead_letters,
       (SELECT count(*) FROM loyalty.program_terms WHERE program = 'pdrop') AS terms,
       (SELECT count(*) FROM loyalty.order_source WHERE program = 'pdrop') AS sources;
SELECT sqlstate_of($$SELECT loyalty.drop_program('pdrop')$$);
SELECT sqlstate_of($$SELECT loyalty.drop_program(NULL)$$);
RESET ROLE;
SELECT count(*) AS loyalty_triggers FROM pg_trigger WHERE tgrelid = 'pdrop_orders'::regclass AND NOT tgisinternal;
INSERT INTO pdrop_orders VALUES ('D-2', 'dan', 10, 'USD');
SELECT count(*) AS orders FROM pdrop_orders;
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.drop_program('pb')$$);
RESET ROLE;

-- archive_program: no more earning (new orders earn nothing; LY055 for
-- earn, attach and change_program), tables stay attached (refunds of
-- earlier orders still reverse: review_progadmin), balances readable and
-- redeemable.
SET ROLE loyalty_admin;
SELECT loyalty.archive_program('pa') = now() AS archived;
SELECT loyalty.archive_program('pa') = (SELECT archived_at FROM loyalty.program WHERE code = 'pa') AS first_time_kept;
SELECT sqlstate_of($$SELECT loyalty.earn('pa', 'bob', 5, 'pa-gift')$$);
SELECT sqlstate_of($$SELECT loyalty.change_program('pa', '{"earn_rate": 3}')$$);
SELECT sqlstate_of($$SELECT loyalty.archive_program('nope')$$);
RESET ROLE;
CREATE TABLE pa_more_orders (LIKE pa_orders);
SELECT sqlstate_of($$SELECT loyalty.attach_orders('pa', 'pa_more_orders', 'id', 'member', 'amount')$$);
INSERT INTO pa_orders (id, member, amount, at) VALUES ('B-3', 'bob', 100, '2026-03-01');
SELECT count(*) AS earned_b3 FROM loyalty.order_earning WHERE program = 'pa' AND order_id = 'B-3';
SET ROLE loyalty_app;
SELECT available FROM loyalty.balance('pa', 'bob');
SELECT loyalty.redeem('pa', 'bob', 50, 'pa-bob-spend') > 0 AS redeemed;
SELECT available FROM loyalty.balance('pa', 'bob');
RESET ROLE;
SELECT archived_at IS NOT NULL AS archived FROM loyalty.program WHERE code = 'pa';

-- The history: who changed what, when it takes effect, with the note.
SELECT program, kind, changed_by, effective_from,
       coalesce(after ->> 'orders', before ->> 'orders') AS orders,
       CASE WHEN kind IN ('attach', 'detach', 'drop', 'archive')
            THEN (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(coalesce(after, before)) k
                   WHERE k IN ('archived_at', 'trigger_name', 'amount_column', 'base_currency'))
            ELSE before::text END AS before,
       CASE WHEN kind IN ('attach', 'detach', 'drop', 'archive') THEN NULL ELSE after::text END AS after,
       note
  FROM loyalty.program_change WHERE program IN ('pa', 'pdrop') AND kind <> 'create'
 ORDER BY id;
SELECT (after ->> 'archived_at')::timestamptz = p.archived_at AS archive_time_recorded
  FROM loyalty.program_change c JOIN loyalty.program p ON p.code = c.program
 WHERE c.program = 'pa' AND c.kind = 'archive';
SELECT kind, changed_by, after ->> 'earn_rate' AS earn_rate, after ->> 'base_currency' AS currency
  FROM loyalty.program_change WHERE kind = 'create' AND program IN ('pa', 'pb', 'pdrop') ORDER BY id;
SELECT kind, before, after FROM loyalty.program_change WHERE program = 'pb' AND kind <> 'create' ORDER BY id;

SELECT check_name, detail FROM loyalty.verify() WHERE NOT ok;

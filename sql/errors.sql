-- Errors: the ledger is append-only, every SQLSTATE of our own, and bad
-- order rows that must never fail the application's insert.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql
-- A ledger row of its own, so that the refusals below have a row to refuse.
SELECT loyalty.create_program('errs', 'USD', 1);
SELECT loyalty.earn('errs', 'e1', 1, 'errs-1', as_of => '2024-01-01') > 0 AS credited;

-- The ledger refuses UPDATE, DELETE and TRUNCATE, even from a superuser.
UPDATE loyalty.ledger SET points = points + 1 WHERE id = (SELECT min(id) FROM loyalty.ledger);
DELETE FROM loyalty.ledger WHERE id = (SELECT min(id) FROM loyalty.ledger);
TRUNCATE loyalty.ledger;
-- Its rows are checked: an earning is positive, a redemption negative.
\set VERBOSITY terse
INSERT INTO loyalty.ledger (program, member_id, kind, points, occurred_at) VALUES ('basic', 'm1', 'earn', -5, now());
INSERT INTO loyalty.ledger (program, member_id, kind, points, occurred_at) VALUES ('basic', 'm1', 'gift', 5, now());
\set VERBOSITY default

-- Our SQLSTATEs (class LY), each from the call that raises it.
SELECT loyalty.create_program('codes', 'USD', 1);
SELECT loyalty.earn('codes', 'c1', 10, 'c-earn', as_of => '2024-01-01') > 0 AS credited;
SELECT sqlstate_of($$SELECT loyalty.redeem('codes', 'c1', 11, 'c-r1', '2024-01-02')$$) AS insufficient;
SELECT loyalty.set_member_status('codes', 'c1', 'held');
SELECT sqlstate_of($$SELECT loyalty.redeem('codes', 'c1', 1, 'c-r2', '2024-01-02')$$) AS not_active;
SELECT loyalty.set_member_status('codes', 'c1', 'active');
SELECT sqlstate_of($$SELECT loyalty.earn('codes', 'c1', 11, 'c-earn')$$) AS ref_conflict;
SELECT sqlstate_of($$DELETE FROM loyalty.ledger$$) AS append_only;
-- ... and the standard ones for bad arguments.
SELECT sqlstate_of($$SELECT loyalty.redeem('codes', 'c1', NULL, 'x')$$) AS null_arg,
       sqlstate_of($$SELECT loyalty.redeem('codes', 'c1', -1, 'x')$$) AS bad_value,
       sqlstate_of($$SELECT loyalty.redeem('nope', 'c1', 1, 'x')$$) AS unknown_program,
       sqlstate_of($$SELECT loyalty.cancel_redemption('codes', 'x')$$) AS unknown_ref;

-- Bad order rows: the insert always succeeds; loyalty keeps what it cannot price.
CREATE TABLE bad_orders (id bigint, member text, amount numeric, currency text,
                         at timestamptz DEFAULT '2024-05-01 12:00+00');
SELECT loyalty.attach_orders('codes', 'bad_orders', 'id', 'member', 'amount', 'currency', created_at => 'at');
INSERT INTO bad_orders VALUES (1, 'c2', 1e30, 'USD');          -- more points than one order earns
INSERT INTO bad_orders VALUES (2, 'c2', 'NaN', 'USD');             -- not a number: a dead letter
INSERT INTO bad_orders VALUES (3, 'c2', 10, '???');                -- no such currency
INSERT INTO bad_orders VALUES (NULL, 'c2', 10, 'USD');             -- no order id: kept for a person
SELECT count(*) AS orders_kept FROM bad_orders;
SELECT event, order_id, reason, sqlstate FROM loyalty.dead_letter WHERE program = 'codes' ORDER BY id;
-- A mapped column dropped after attaching: the insert still succeeds.
ALTER TABLE bad_orders DROP COLUMN currency;
INSERT INTO bad_orders (id, member, amount) VALUES (5, 'c2', 10);
SELECT order_id, reason, sqlstate FROM loyalty.dead_letter WHERE program = 'codes' AND order_id = '5';
SELECT count(*) AS orders_kept FROM bad_orders;
-- Retrying replays what it can; a letter without an order id stays for a person.
SELECT loyalty.retry_dead_letters('codes');
SELECT order_id, resolved_at IS NULL AS open FROM loyalty.dead_letter WHERE program = 'codes' ORDER BY id;
SELECT count(*) AS c2_ledger_rows FROM loyalty.ledger WHERE program = 'codes' AND member_id = 'c2';
SELECT loyalty.detach_orders('codes', 'bad_orders');
SELECT check_name, ok FROM loyalty.verify('codes');

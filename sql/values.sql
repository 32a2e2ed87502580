-- Values the program cannot use, order changes that used to be lost, and
-- dead-letter retries.  A value loyalty cannot use never fails the
-- application's statement and never reaches a figure: the order row is
-- kept, the event waits in loyalty.dead_letter with a reason and SQLSTATE.
-- Orders are written by a plain writer of the orders tables.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS loyalty;
RESET client_min_messages;

\i sql/include/sqlstate_of.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_values_writer;
RESET client_min_messages;
CREATE ROLE regress_values_writer;

-- The books of a program: every verify() check that fails (none expected).
CREATE FUNCTION public.values_unverified(program text) RETURNS SETOF text
LANGUAGE sql AS $$ SELECT check_name || ': ' || detail FROM loyalty.verify(program) WHERE NOT ok $$;

SELECT loyalty.create_program('val', 'USD', 1);
CREATE TABLE val_orders (id text, member text, amount numeric, refunded numeric DEFAULT 0,
                         status text DEFAULT 'paid', currency text, at timestamptz DEFAULT '2024-01-01');
SELECT loyalty.attach_orders('val', 'val_orders', 'id', 'member', 'amount', 'currency', 'status',
                             'refunded', 'at');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON val_orders TO regress_values_writer;

-- 1. Refunds the program cannot use.  The issue: a negative or -Infinity
-- refunded amount raised net spend; a NaN amount made it NaN for good.
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount) VALUES ('N-1', 'ann', 100), ('N-2', 'ann', 100);
UPDATE val_orders SET refunded = -50 WHERE id = 'N-1';
UPDATE val_orders SET refunded = '-Infinity' WHERE id = 'N-2';
UPDATE val_orders SET refunded = 'NaN' WHERE id = 'N-2';
UPDATE val_orders SET refunded = 'Infinity' WHERE id = 'N-2';
UPDATE val_orders SET refunded = 150 WHERE id = 'N-2';       -- above the amount
INSERT INTO val_orders (id, member, amount) VALUES ('N-3', 'ann', 'NaN');
INSERT INTO val_orders (id, member, amount) VALUES ('N-4', 'ann', 'Infinity'), ('N-5', 'ann', '-Infinity');
INSERT INTO val_orders (id, member, amount) VALUES ('N-6', 'ann', -10);
INSERT INTO val_orders (id, member, amount, refunded) VALUES ('N-7', 'ann', 10, -1), ('N-8', 'ann', 10, 11);
RESET ROLE;
-- Every order row is kept; ann earned 200 once and nothing else changed.
SELECT count(*) AS rows_kept FROM val_orders WHERE id LIKE 'N-%';
SELECT order_id, amount, refunded_amount, points, closed FROM loyalty.order_earning
 WHERE program = 'val' ORDER BY 1;
SELECT event, order_id, amount, refunded_amount, reason, sqlstate FROM loyalty.dead_letter
 WHERE program = 'val' ORDER BY id;
SELECT member_id, orders, net_spend FROM loyalty.activity_total WHERE program = 'val';
SELECT balance, lifetime_earned FROM loyalty.member WHERE program = 'val' AND member_id = 'ann';
SELECT * FROM values_unverified('val');

-- Correcting the row applies it: the row as it is now is what counts, and
-- the letters of that order are superseded.
UPDATE val_orders SET refunded = 40 WHERE id = 'N-2';
SELECT order_id, refunded_amount, reversed_target FROM loyalty.order_earning
 WHERE program = 'val' AND order_id = 'N-2';
SELECT count(*) FILTER (WHERE resolved_at IS NULL) AS open_letters_of_n2 FROM loyalty.dead_letter
 WHERE program = 'val' AND order_id = 'N-2';
-- A closing event needs none of the values: a cancel with a NaN refund closes.
UPDATE val_orders SET refunded = 'NaN', status = 'cancelled' WHERE id = 'N-1';
SELECT order_id, refunded_amount, closed, reversed_total FROM loyalty.order_earning
 WHERE program = 'val' AND order_id = 'N-1';

-- Float columns: NaN and Infinity of real and double precision too.
CREATE TABLE val_float (id int, member text, amount float8, refunded float4);
SELECT loyalty.attach_orders('val', 'val_float', 'id', 'member', 'amount', refunded_amount => 'refunded');
GRANT SELECT, INSERT, UPDATE, DELETE ON val_float TO regress_values_writer;
SET ROLE regress_values_writer;
INSERT INTO val_float VALUES (1, 'flo', 'NaN', 0), (2, 'flo', 'Infinity', 0), (3, 'flo', 10, 'NaN'),
                             (4, 'flo', 10, '-Infinity'), (5, 'flo', 10, 2.5);
RESET ROLE;
SELECT order_id, points, refunded_amount FROM loyalty.order_earning
 WHERE program = 'val' AND member_id = 'flo' ORDER BY 1;
SELECT order_id, reason, sqlstate FROM loyalty.dead_letter
 WHERE program = 'val' AND member_id = 'flo' ORDER BY id;

-- 2. Times out of range: later than 2 days after now, before 1900,
-- infinity, and local times or dates at the ends of their range.
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount, at) VALUES
    ('T-1', 'tim', 10, '2999-01-01'), ('T-2', 'tim', 10, 'infinity'),
    ('T-3', 'tim', 10, '-infinity'), ('T-4', 'tim', 10, '1800-01-01'), ('T-5', 'tim', 10, '2024-02-01');
RESET ROLE;
CREATE TABLE val_local (id int, member text, amount numeric, at timestamp, day date);
SELECT loyalty.attach_orders('val', 'val_local', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO val_local VALUES (1, 'tim', 10, '294276-12-31 23:59:59', NULL), (2, 'tim', 10, '4713-01-01 BC', NULL);
SELECT loyalty.detach_orders('val', 'val_local');
SELECT loyalty.attach_orders('val', 'val_local', 'id', 'member', 'amount', created_at => 'day');
INSERT INTO val_local VALUES (3, 'tim', 10, NULL, '5874897-12-31'), (4, 'tim', 10, NULL, 'infinity');
SELECT event, order_id, ordered_at, reason, sqlstate FROM loyalty.dead_letter
 WHERE program = 'val' AND member_id = 'tim' ORDER BY id;
SELECT order_id, points FROM loyalty.order_earning WHERE program = 'val' AND member_id = 'tim';

-- 3. Ids too long for an index entry (more than 255 characters): the letter
-- keeps the member id whole, and the order id's beginning in its reason.
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount) VALUES (repeat('x', 3000), 'lou', 10);
INSERT INTO val_orders (id, member, amount) VALUES ('L-1', repeat('m', 3000), 10);
INSERT INTO val_orders (id, member, amount) VALUES ('L-2', repeat('n', 3000), 10), ('L-3', 'lou', 1),
                                                   (repeat('y', 300), 'lou', 2);   -- a batch
INSERT INTO val_orders (id, member, amount) VALUES (repeat('é', 255), 'lou', 10);   -- 255 characters fit
RESET ROLE;
SELECT event, order_id IS NULL AS no_order_id, length(member_id) AS member_chars, reason, sqlstate
  FROM loyalty.dead_letter WHERE program = 'val' AND (member_id = 'lou' OR order_id LIKE 'L-%') ORDER BY id;
SELECT length(order_id) AS order_chars, points FROM loyalty.order_earning
 WHERE program = 'val' AND member_id = 'lou' ORDER BY 1;

-- 4. Points and balances: at most 10^15 points per order; a member whose
-- balance or lifetime earned an earn would take above 2^62 is refused,
-- on the one-row path and in a batch (one earns, the next is kept).
SELECT loyalty.earn('val', 'big', 4611686018427387904 - 150, 'seed-big') > 0 AS seeded;
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount) VALUES ('B-1', 'big', 1e16);
INSERT INTO val_orders (id, member, amount) VALUES ('B-2', 'big', 200);
INSERT INTO val_orders (id, member, amount) VALUES ('B-3', 'big', 100), ('B-4', 'big', 100), ('B-5', 'sam', 5);
RESET ROLE;
SELECT order_id, reason, sqlstate FROM loyalty.dead_letter
 WHERE program = 'val' AND member_id = 'big' ORDER BY id;
SELECT order_id, points FROM loyalty.order_earning
 WHERE program = 'val' AND member_id IN ('big', 'sam') ORDER BY 1;
SELECT 4611686018427387904 - balance AS room_left FROM loyalty.member WHERE program = 'val' AND member_id = 'big';
-- The issue's case: a balance a few points short of the bigint limit.
SELECT loyalty.create_program('val_max', 'USD', 1);
CREATE TABLE val_max_orders (id int, member text, amount numeric);
SELECT loyalty.attach_orders('val_max', 'val_max_orders', 'id', 'member', 'amount');
SELECT loyalty.earn('val_max', 'max', 9223372036854775000, 'seed-max') > 0 AS seeded;
INSERT INTO val_max_orders VALUES (1, 'max', 1000);
INSERT INTO val_max_orders VALUES (2, 'max', 1000), (3, 'max', 1000);
SELECT count(*) AS rows_kept FROM val_max_orders;
SELECT order_id, sqlstate FROM loyalty.dead_letter WHERE program = 'val_max' ORDER BY id;

-- amount x rate overflowing numeric: a rate of 10^100000 is finite, so it
-- is accepted, but no order is priced with it.
SELECT loyalty.set_fx_rate('XOF', 'USD', 1e100000);
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount, currency) VALUES ('X-1', 'xan', 1e100000, 'XOF');
RESET ROLE;
SELECT order_id, left(reason, 40) AS reason, sqlstate FROM loyalty.dead_letter
 WHERE program = 'val' AND order_id = 'X-1';

SELECT * FROM values_unverified('val');
SELECT * FROM values_unverified('val_max');

-- 5. Settings refuse Infinity and NaN.
SELECT sqlstate_of($$SELECT loyalty.create_program('val_inf', 'USD', 'Infinity')$$);
SELECT sqlstate_of($$SELECT loyalty.create_program('val_inf', 'USD', 'NaN')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fx_rate('EUR', 'USD', 'Infinity')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fx_rate('EUR', 'USD', 'NaN')$$);
SELECT sqlstate_of($$SELECT loyalty.set_point_value('val', 'Infinity')$$);
SELECT sqlstate_of($$SELECT loyalty.set_point_value('val', 'NaN')$$);
-- Written straight into the tables, they are refused too.
SELECT sqlstate_of($$UPDATE loyalty.program SET earn_rate = 'Infinity' WHERE code = 'val'$$);
SELECT sqlstate_of($$UPDATE loyalty.program SET point_value = 'NaN' WHERE code = 'val'$$);
SELECT sqlstate_of($$INSERT INTO loyalty.fx_rate VALUES ('EUR', 'USD', 'Infinity')$$);

-- 6. Which statuses close an order: a per-program setting, by default
-- refunded, cancelled, canceled, returned and chargeback, matched trimmed
-- and in any case.
SELECT closing_statuses FROM loyalty.program WHERE code = 'val';
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount) VALUES ('S-1', 'sue', 10), ('S-2', 'sue', 10), ('S-3', 'sue', 10),
                                                   ('S-4', 'sue', 10);
UPDATE val_orders SET status = 'chargeback' WHERE id = 'S-1';
UPDATE val_orders SET status = E' Cancelled\t' WHERE id = 'S-2';
UPDATE val_orders SET status = 'void' WHERE id = 'S-3';              -- not a closing status here
RESET ROLE;
SELECT loyalty.set_closing_statuses('val', ARRAY[' Void ', 'FRAUD', 'void']);
SELECT closing_statuses FROM loyalty.program WHERE code = 'val';
SET ROLE regress_values_writer;
UPDATE val_orders SET status = 'VOID' WHERE id = 'S-3';              -- now it is
UPDATE val_orders SET status = 'cancelled' WHERE id = 'S-4';         -- and this no longer
RESET ROLE;
SELECT order_id, closed, reversed_total FROM loyalty.order_earning WHERE program = 'val' AND member_id = 'sue'
 ORDER BY 1;
SELECT sqlstate_of($$SELECT loyalty.set_closing_statuses('val', ARRAY['void', NULL])$$);
SELECT sqlstate_of($$SELECT loyalty.set_closing_statuses('val', ARRAY['  '])$$);
SELECT sqlstate_of($$SELECT loyalty.set_closing_statuses('val', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.set_closing_statuses('nope', '{}')$$);
-- Set when the program is created; creating it again must agree.
SELECT loyalty.create_program('val_st', 'USD', 1, closing_statuses => ARRAY['Annulé']);
SELECT closing_statuses FROM loyalty.program WHERE code = 'val_st';
SELECT loyalty.create_program('val_st', 'USD', 1, closing_statuses => ARRAY['annulé ']);
SELECT loyalty.create_program('val_st', 'USD', 1);
SELECT sqlstate_of($$SELECT loyalty.create_program('val_st', 'USD', 1, closing_statuses => '{void}')$$);

-- 7. An UPDATE of the order id cancels the old id and inserts the new one.
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount) VALUES ('I-1', 'ian', 30);
UPDATE val_orders SET id = 'I-1b' WHERE id = 'I-1';
UPDATE val_orders SET id = 'I-1c', amount = 40 WHERE id = 'I-1b';
RESET ROLE;
SELECT order_id, kind, points FROM loyalty.ledger WHERE program = 'val' AND member_id = 'ian' ORDER BY id;
SELECT order_id, points, closed FROM loyalty.order_earning WHERE program = 'val' AND member_id = 'ian' ORDER BY 1;
SELECT balance FROM loyalty.member WHERE program = 'val' AND member_id = 'ian';

-- 8. Delete and re-insert: the table holds the order again, it earns
-- again; a second INSERT of an open order earns nothing.  The one-row path
-- and the batch path alike.
SET ROLE regress_values_writer;
INSERT INTO val_orders (id, member, amount) VALUES ('D-1', 'dan', 10), ('D-2', 'dan', 20);
DELETE FROM val_orders WHERE id = 'D-1';
INSERT INTO val_orders (id, member, amount) VALUES ('D-1', 'dan', 10);          -- one row
DELETE FROM val_orders WHERE id = 'D-2';
INSERT INTO val_orders (id, member, amount) VALUES ('D-2', 'dan', 25), ('D-3', 'dan', 1);  -- a batch
INSERT INTO val_orders (id, member, amount) VALUES ('D-1', 'dan', 10);          -- open: nothing
INSERT INTO val_orders (id, member, amount) VALUES ('D-2', 'dan', 25), ('D-4', 'dan', 2);   -- open: nothing
UPDATE val_orders SET status = 'cancelled' WHERE id = 'D-4';
INSERT INTO val_orders (id, member, amount) VALUES ('D-4', 'dan', 3), ('D-5', 'dan', 4);    -- cancelled: again
RESET ROLE;
SELECT order_id, kind, points FROM loyalty.ledger WHERE program = 'val' AND member_id = 'dan' ORDER BY id;
SELECT order_id, generation, points, closed FROM loyalty.order_earning
 WHERE program = 'val' AND member_id = 'dan' ORDER BY 1;
SELECT * FROM values_unverified('val');

-- 9. TRUNCATE of an attached table closes every open order of the program
-- that no other of its tables holds; nothing is lost silently.
SELECT loyalty.create_program('val_tr', 'USD', 1);
CREATE TABLE val_tr_web (id text, member text, amount numeric);
CREATE TABLE val_tr_pos (id int, member text, amount numeric);
SELECT loyalty.attach_orders('val_tr', 'val_tr_web', 'id', 'member', 'amount');
SELECT loyalty.attach_orders('val_tr', 'val_tr_pos', 'id', 'member', 'amount');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON val_tr_web, val_tr_pos TO regress_values_writer;
SET ROLE regress_values_writer;
INSERT INTO val_tr_web VALUES ('W-1', 'tia', 10), ('W-2', 'tom', 20), ('W-3', 'tia', 30);
INSERT INTO val_tr_pos VALUES (1, 'tia', 5), (2, 'tom', 6);
UPDATE val_tr_web SET amount = 0 WHERE id = 'W-3';
TRUNCATE val_tr_web;
RESET ROLE;
SELECT order_id, closed, points, earned_total, reversed_total FROM loyalty.order_earning
 WHERE program = 'val_tr' ORDER BY 1;
SELECT member_id, balance FROM loyalty.member WHERE program = 'val_tr' ORDER BY 1;
SELECT * FROM values_unverified('val_tr');
-- Rolled back, the TRUNCATE and its reversals go together.
BEGIN;
TRUNCATE val_tr_pos;
SELECT count(*) FILTER (WHERE NOT closed) AS open_orders FROM loyalty.order_earning WHERE program = 'val_tr';
ROLLBACK;
SELECT count(*) FILTER (WHERE NOT closed) AS open_orders FROM loyalty.order_earning WHERE program = 'val_tr';
-- Re-inserted after the TRUNCATE, an order earns again.
INSERT INTO val_tr_web VALUES ('W-1', 'tia', 10);
SELECT order_id, generation, closed FROM loyalty.order_earning WHERE program = 'val_tr' AND order_id = 'W-1';
-- Detaching removes all three triggers.
SELECT tgname FROM pg_trigger WHERE tgrelid = 'val_tr_web'::regclass ORDER BY 1;
SELECT loyalty.detach_orders('val_tr', 'val_tr_web');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'val_tr_web'::regclass;

-- 10. retry_dead_letters: each letter in its own subtransaction.  One
-- letter whose replay raises an error (a DBA's trigger refusing member
-- 'boom') records the error and its attempt; the letters of other orders
-- are applied; the later letter of the same order waits behind it.
SELECT loyalty.create_program('val_rt', 'USD', 1);
CREATE TABLE val_rt_orders (id int, member text, amount numeric, currency text,
                            at timestamptz DEFAULT '2024-05-01');
SELECT loyalty.attach_orders('val_rt', 'val_rt_orders', 'id', 'member', 'amount', 'currency',
                             created_at => 'at');
INSERT INTO val_rt_orders VALUES (1, 'rae', 10, 'XAU'), (2, 'boom', 20, 'XAU'), (3, 'rae', 30, 'XAU');
UPDATE val_rt_orders SET amount = 25 WHERE id = 2;
-- A NaN amount corrected afterwards: on retry the stale letter is superseded.
INSERT INTO val_rt_orders VALUES (4, 'rae', 'NaN', 'USD');
UPDATE val_rt_orders SET amount = 7 WHERE id = 4;
SELECT event, order_id, reason, sqlstate FROM loyalty.dead_letter
 WHERE program = 'val_rt' ORDER BY id;
CREATE FUNCTION public.values_refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.member_id = 'boom' THEN
        RAISE EXCEPTION 'member % is under review', NEW.member_id USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER values_refuse_boom BEFORE INSERT ON loyalty.order_earning
    FOR EACH ROW EXECUTE FUNCTION public.values_refuse_boom();
SELECT loyalty.set_fx_rate('XAU', 'USD', 1);
SELECT loyalty.retry_dead_letters('val_rt');
SELECT order_id, event, attempts, last_attempt_at IS NOT NULL AS attempted, resolved_at IS NOT NULL AS resolved,
       reason, sqlstate
  FROM loyalty.dead_letter WHERE program = 'val_rt' ORDER BY id;
SELECT order_id, member_id, points FROM loyalty.order_earning WHERE program = 'val_rt' ORDER BY 1;
-- The error is fixed: the waiting letters are applied in order.
DROP TRIGGER values_refuse_boom ON loyalty.order_earning;
SELECT loyalty.retry_dead_letters('val_rt');
SELECT order_id, event, attempts, resolved_at IS NOT NULL AS resolved FROM loyalty.dead_letter
 WHERE program = 'val_rt' ORDER BY id;
SELECT order_id, member_id, points FROM loyalty.order_earning WHERE program = 'val_rt' ORDER BY 1;
SELECT * FROM values_unverified('val_rt');

-- A cancel or statement_timeout stops the retry (nothing recorded), as in PL/pgSQL.
INSERT INTO val_rt_orders VALUES (5, 'slow', 1, 'XAG');
CREATE FUNCTION public.values_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.member_id = 'slow' THEN
        PERFORM pg_sleep(5);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER values_slow BEFORE INSERT ON loyalty.order_earning
    FOR EACH ROW EXECUTE FUNCTION public.values_slow();
SELECT loyalty.set_fx_rate('XAG', 'USD', 1);
SET statement_timeout = '200ms';
SELECT loyalty.retry_dead_letters('val_rt');
RESET statement_timeout;
SELECT order_id, attempts, resolved_at IS NULL AS open FROM loyalty.dead_letter
 WHERE program = 'val_rt' AND order_id = '5';
DROP TRIGGER values_slow ON loyalty.order_earning;
SELECT loyalty.retry_dead_letters('val_rt');
SELECT * FROM values_unverified('val_rt');

-- 11. verify() catches the poisoning of the past: a refund written below
-- zero straight into order_earning raises the activity's net spend.
UPDATE loyalty.order_earning SET refunded_amount = -50 WHERE program = 'val_rt' AND order_id = '3';
SELECT * FROM values_unverified('val_rt');
UPDATE loyalty.order_earning SET refunded_amount = 0 WHERE program = 'val_rt' AND order_id = '3';
SELECT * FROM values_unverified('val_rt');

DROP FUNCTION public.values_refuse_boom(), public.values_slow(), public.values_unverified(text);

-- The accrual trigger: attaching, earning on INSERT, once per order,
-- moves on UPDATE, pending days, expiry dates, local order times, detaching.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- Ledger ids in this file start at 1001, whatever ran before.
SELECT setval('loyalty.ledger_id_seq', 1000) \gset

SELECT loyalty.create_program('shop', 'USD', 1.5, 14, '1 year', 'debt', 'Asia/Ho_Chi_Minh');
CREATE SCHEMA app;
CREATE TABLE app.orders (
    order_no    text,
    customer_id bigint,
    total       numeric(12, 2),
    currency    text DEFAULT 'USD',
    status      text DEFAULT 'paid',
    refunded    numeric(12, 2) DEFAULT 0,
    placed_at   timestamp,          -- shop-local time, no time zone
    note        text
);

-- Column mapping is checked.
SELECT loyalty.attach_orders('shop', 'app.orders', 'order_no', 'customer', 'total');
SELECT loyalty.attach_orders('shop', 'app.orders', 'order_no', 'customer_id', 'note');
SELECT loyalty.attach_orders('shop', 'app.orders', 'order_no', 'customer_id', 'total', created_at => 'note');
SELECT loyalty.attach_orders('shop', 'app.orders', 'order_no', 'customer_id', 'total', currency => 'total');
SELECT loyalty.attach_orders('shop', 'app.orders', NULL, 'customer_id', 'total');
SELECT loyalty.attach_orders('nope', 'app.orders', 'order_no', 'customer_id', 'total');
SELECT loyalty.attach_orders('shop', 'app.no_such_table', 'order_no', 'customer_id', 'total');
CREATE VIEW app.orders_view AS SELECT * FROM app.orders;
SELECT loyalty.attach_orders('shop', 'app.orders_view', 'order_no', 'customer_id', 'total');

SELECT loyalty.attach_orders('shop', 'app.orders', 'order_no', 'customer_id', 'total',
                             'currency', 'status', 'refunded', 'placed_at');
SELECT loyalty.attach_orders('shop', 'app.orders', 'order_no', 'customer_id', 'total');
SELECT program, orders, order_id_column, member_id_column, amount_column, currency_column,
       status_column, refunded_amount_column, created_at_column, trigger_name
  FROM loyalty.order_source WHERE program = 'shop';

-- INSERT earns floor(amount x 1.5), pending 14 days from the local order
-- time (07:00 in Ho Chi Minh City is 00:00 UTC), expiring a year later.
INSERT INTO app.orders (order_no, customer_id, total, placed_at) VALUES
    ('A-1', 42, 10.99, '2024-03-01 07:00'),   -- 16.485 -> 16
    ('A-2', 42, 100.00, '2024-03-02 07:00'),  -- 150
    ('A-3', NULL, 80.00, '2024-03-02 08:00'), -- guest: nothing
    ('A-4', 42, 0, '2024-03-02 09:00'),       -- zero: nothing
    ('A-5', 42, -5, '2024-03-02 10:00'),      -- negative: a dead letter, no error
    ('A-6', 43, NULL, '2024-03-02 11:00');    -- no amount: nothing
SELECT id, member_id, kind, points, order_id, occurred_at FROM loyalty.ledger WHERE program = 'shop' ORDER BY id;
SELECT id, member_id, order_id, earned, remaining, available_at, expires_at FROM loyalty.lot WHERE program = 'shop' ORDER BY id;
SELECT order_id, member_id, points, closed FROM loyalty.order_earning WHERE program = 'shop' ORDER BY order_id;

-- One statement, many rows (the batch path): a repeated order id earns once,
-- a row inserted already half refunded earns and gives half back, a guest
-- earns nothing; COPY takes the same path.
INSERT INTO app.orders (order_no, customer_id, total, refunded, placed_at) VALUES
    ('B-1', 45, 10, 0, '2024-03-03 09:00'),
    ('B-1', 45, 99, 0, '2024-03-03 09:00'),
    ('B-2', 45, 10, 5, '2024-03-03 09:00'),
    ('B-3', NULL, 10, 0, '2024-03-03 09:00');
COPY app.orders (order_no, customer_id, total, placed_at) FROM stdin;
C-1	46	20.00	2024-03-04 10:00
C-2	46	40.00	2024-03-04 11:00
C-1	46	60.00	2024-03-04 12:00
\.
SELECT member_id, kind, points, order_id FROM loyalty.ledger
 WHERE program = 'shop' AND member_id IN ('45', '46') ORDER BY id;
SELECT order_id, member_id, points, reversed_target FROM loyalty.order_earning
 WHERE program = 'shop' AND order_id ~ '^[BC]-' ORDER BY order_id;

-- Pending until 14 days after the order; then available.
SELECT available, pending, lifetime_earned FROM loyalty.balance('shop', '42', '2024-03-10');
SELECT available, pending, next_expiry, next_expiry_points FROM loyalty.balance('shop', '42', '2024-03-16 00:00+00');
SELECT available, pending FROM loyalty.balance('shop', '42', '2024-03-20');

-- Once per order: the same order id again earns nothing; deleted and
-- re-inserted, it is in the table again and earns again (a new generation).
INSERT INTO app.orders (order_no, customer_id, total, placed_at) VALUES ('A-1', 42, 10.99, '2024-03-01 07:00');
DELETE FROM app.orders WHERE order_no = 'A-2';
INSERT INTO app.orders (order_no, customer_id, total, placed_at) VALUES ('A-2', 42, 100.00, '2024-03-02 07:00');
SELECT order_id, kind, points FROM loyalty.ledger WHERE program = 'shop' ORDER BY id;

-- An UPDATE of columns loyalty does not read changes nothing.
UPDATE app.orders SET note = 'gift wrap' WHERE order_no = 'A-1';
SELECT count(*) AS ledger_rows FROM loyalty.ledger WHERE program = 'shop';

-- A changed amount moves the points exactly: reverse, then earn again.
UPDATE app.orders SET total = 20.00 WHERE order_no = 'A-1';   -- 16 -> 30
-- A guest order claimed by a member earns; a changed member moves the points.
UPDATE app.orders SET customer_id = 43 WHERE order_no = 'A-3'; -- guest -> 43: 120
UPDATE app.orders SET customer_id = 44 WHERE order_no = 'A-3'; -- 43 -> 44
SELECT member_id, kind, points, order_id FROM loyalty.ledger
 WHERE program = 'shop' AND order_id IN ('A-1', 'A-3') ORDER BY id;
SELECT order_id, member_id, points, generation, earned_total, reversed_total
  FROM loyalty.order_earning WHERE program = 'shop' AND order_id IN ('A-1', 'A-3') ORDER BY 1;
SELECT member_id, balance, lifetime_earned, lifetime_reversed FROM loyalty.member WHERE program = 'shop' ORDER BY 1;

-- Detached: orders no longer earn.
SELECT loyalty.detach_orders('shop', 'app.orders');
SELECT loyalty.detach_orders('shop', 'app.orders');
INSERT INTO app.orders (order_no, customer_id, total, placed_at) VALUES ('A-9', 42, 500, '2024-04-01');
SELECT count(*) FROM loyalty.order_earning WHERE order_id = 'A-9';
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.orders'::regclass;

-- A hand-made trigger on a table that is not attached earns nothing, and
-- keeps nothing that a retry could turn into points.
CREATE TABLE app.other (id int, who text, amount numeric);
CREATE TRIGGER sneaky AFTER INSERT ON app.other FOR EACH ROW
    EXECUTE FUNCTION loyalty.orders_trigger('shop', 'id', 'who', 'amount', '', '', '', '');
INSERT INTO app.other VALUES (1, 'mallory', 1000000);
SELECT count(*) FROM loyalty.ledger WHERE member_id = 'mallory';
SELECT order_id, reason, sqlstate FROM loyalty.dead_letter WHERE program = 'shop';
DROP TABLE app.other;

-- The trigger function refuses to be called any other way.
SELECT loyalty.orders_trigger();

SELECT check_name, ok FROM loyalty.verify('shop');

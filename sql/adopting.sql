-- docs/adopting.md, run as written: "Before you start" (the look at the
-- table), "Partitioned orders tables" (an attached table made partitioned
-- in one transaction), "Changing a mapping without losing orders" (detach
-- and attach in one transaction; what separate transactions lose; what a
-- mapping reading other values does) and "Uninstalling" (the steps, then
-- DROP EXTENSION: the application's table keeps working, schema and roles
-- stay).  In a database of its own, since it drops the extension.
-- The DBA is a loyalty_admin member owning the orders table; the
-- application writes orders as a plain writer and reads balances as
-- loyalty_app.
SET client_min_messages = warning;
SELECT current_database() AS regress_db \gset
DROP DATABASE IF EXISTS regress_adopting;
CREATE DATABASE regress_adopting;
DROP ROLE IF EXISTS regress_adopt_dba;
DROP ROLE IF EXISTS regress_adopt_shop;
CREATE ROLE regress_adopt_dba IN ROLE loyalty_admin;
CREATE ROLE regress_adopt_shop;
\c regress_adopting
SET client_min_messages = warning;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
CREATE EXTENSION loyalty;
GRANT CREATE ON SCHEMA public TO regress_adopt_dba;
SELECT loyalty.create_program('shop', base_currency => 'USD', earn_rate => 1,
                              pending_days => 0, expire_after => '1 year',
                              refund_policy => 'debt', timezone => 'UTC');

-- The points of each order: what loyalty recorded, and the ledger.
CREATE FUNCTION earned() RETURNS TABLE (order_id text, member_id text, points bigint,
                                        reversed bigint, closed boolean)
LANGUAGE sql AS $$
    SELECT order_id, member_id, earned_total, reversed_total, closed
      FROM loyalty.order_earning WHERE program = 'shop' ORDER BY order_id
$$;
CREATE FUNCTION ledger() RETURNS TABLE (order_id text, member_id text, kind text, points bigint)
LANGUAGE sql AS $$
    SELECT order_id, member_id, kind::text, points FROM loyalty.ledger WHERE program = 'shop' ORDER BY id
$$;
CREATE FUNCTION books_ok() RETURNS boolean LANGUAGE sql AS $$ SELECT bool_and(ok) FROM loyalty.verify() $$;
GRANT EXECUTE ON FUNCTION earned(), ledger(), books_ok() TO regress_adopt_dba;

-------------------------------------------------------------------------------
-- 1. Before you start: the table as the application has it, with rows.
-------------------------------------------------------------------------------
SET ROLE regress_adopt_dba;
CREATE TABLE orders (id text PRIMARY KEY, customer text, total numeric(12,2),
                     currency text DEFAULT 'USD', status text DEFAULT 'paid',
                     refunded numeric(12,2) DEFAULT 0, placed_at timestamp DEFAULT '2024-06-01');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON orders TO regress_adopt_shop;
INSERT INTO orders (id, customer, total, status, refunded, placed_at) VALUES
    ('OLD-1', 'ana', 20, 'paid', 0, '2023-02-01'),
    ('OLD-2', NULL, 35, 'paid', 0, '2023-03-01'),
    ('OLD-3', 'ben', -5, 'Cancelled', 0, '2023-04-01'),
    ('OLD-4', 'ben', 10, 'paid', 12, '2023-05-01');

-- The look at the table, as the doc gives it: 4 orders, 1 guest, 1
-- negative amount, 2 refunds above their amount (OLD-4's, and OLD-3's 0
-- above its negative amount), one currency.
SELECT count(*)                                                        AS orders,
       count(*) FILTER (WHERE customer IS NULL)                         AS guests,
       count(*) FILTER (WHERE total < 0 OR total = 'NaN')               AS bad_amounts,
       count(*) FILTER (WHERE refunded > total)                         AS refund_above_amount,
       count(*) FILTER (WHERE length(id) > 255)                         AS long_ids,
       count(DISTINCT currency)                                         AS currencies,
       min(placed_at)                                                   AS oldest
  FROM orders;
SELECT status, count(*) FROM orders GROUP BY status ORDER BY status;

-- The first attach leaves out the refunded amount.  The rows already in
-- the table earn nothing (the back-fill's job).
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total',
                             currency => 'currency', status => 'status', created_at => 'placed_at');
SELECT * FROM earned();
RESET ROLE;

SET ROLE regress_adopt_shop;
INSERT INTO orders (id, customer, total) VALUES ('SO-1', 'ana', 100), ('SO-2', 'ben', 50), ('SO-3', 'ana', 40);
UPDATE orders SET refunded = 10 WHERE id = 'SO-1';      -- not mapped yet: nothing taken back
RESET ROLE;
SELECT * FROM earned();

-------------------------------------------------------------------------------
-- 2. Changing a mapping without losing orders: the doc's transaction.
-------------------------------------------------------------------------------
SET ROLE regress_adopt_dba;
BEGIN;
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;      -- writers wait until COMMIT
SELECT loyalty.detach_orders('shop', 'orders');
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');
COMMIT;
RESET ROLE;

-- SO-1's refund of 10, written before the switch, is not seen yet: the
-- doc's query lists it.
SET ROLE regress_adopt_dba;
SELECT o.id, o.refunded, e.refunded_amount AS refunded_seen_by_loyalty
  FROM orders o
  JOIN loyalty.order_earning e ON e.program = 'shop' AND e.order_id = o.id
 WHERE o.refunded IS DISTINCT FROM e.refunded_amount AND NOT e.closed;
RESET ROLE;

-- The orders earned before go on under the new mapping: SO-1's refund
-- (cumulative, 25 now) takes back 25; a new order earns; nothing earned
-- twice.
SET ROLE regress_adopt_shop;
UPDATE orders SET refunded = 25 WHERE id = 'SO-1';
INSERT INTO orders (id, customer, total) VALUES ('SO-4', 'ana', 30);
RESET ROLE;
SET ROLE regress_adopt_dba;
SELECT * FROM earned();
SELECT * FROM ledger();
SELECT books_ok();
SELECT o.id, o.refunded, e.refunded_amount AS refunded_seen_by_loyalty
  FROM orders o
  JOIN loyalty.order_earning e ON e.program = 'shop' AND e.order_id = o.id
 WHERE o.refunded IS DISTINCT FROM e.refunded_amount AND NOT e.closed;
RESET ROLE;
SET ROLE loyalty_app;
SELECT available FROM loyalty.balance('shop', 'ana', '2024-07-01');    -- 100 - 25 + 40 + 30 = 145
RESET ROLE;

-- What separate transactions lose.  The table is detached for a while:
-- SO-5 is inserted, SO-3 deleted, SO-2 refunded 10.
SET ROLE regress_adopt_dba;
SELECT loyalty.detach_orders('shop', 'orders');
RESET ROLE;
SET ROLE regress_adopt_shop;
INSERT INTO orders (id, customer, total) VALUES ('SO-5', 'ben', 60);
DELETE FROM orders WHERE id = 'SO-3';
UPDATE orders SET refunded = 10 WHERE id = 'SO-2';
RESET ROLE;
SET ROLE regress_adopt_dba;
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');
RESET ROLE;
-- SO-5 never earns, even when updated; SO-3 keeps its 40 points; SO-2's
-- refund counts only at its next UPDATE.
SET ROLE regress_adopt_shop;
UPDATE orders SET status = 'shipped' WHERE id = 'SO-5';
RESET ROLE;
SELECT * FROM earned();
SET ROLE regress_adopt_shop;
UPDATE orders SET status = 'shipped' WHERE id = 'SO-2';
RESET ROLE;
SELECT order_id, points, reversed FROM earned() WHERE order_id = 'SO-2';

-- A mapping that reads the member from another column holding the same
-- values (copied first, as the doc says) moves nothing; one that reads
-- other values (the customer's email) moves an earned order's points to
-- that "member" at the order's next UPDATE.
SET ROLE regress_adopt_dba;
ALTER TABLE orders ADD COLUMN customer_ref text, ADD COLUMN customer_email text, ADD COLUMN order_no text;
RESET ROLE;
SET ROLE regress_adopt_shop;
UPDATE orders SET customer_ref = customer, customer_email = customer || '@example.com', order_no = 'N-' || id;
RESET ROLE;
SELECT count(*) AS ledger_rows_before FROM ledger() \gset
SET ROLE regress_adopt_dba;
BEGIN;
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;
SELECT loyalty.detach_orders('shop', 'orders');
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer_ref', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');
COMMIT;
RESET ROLE;
SET ROLE regress_adopt_shop;
UPDATE orders SET status = 'packed';
RESET ROLE;
SELECT count(*) - :ledger_rows_before AS new_ledger_rows FROM ledger();
SET ROLE regress_adopt_dba;
BEGIN;
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;
SELECT loyalty.detach_orders('shop', 'orders');
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer_email', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');
COMMIT;
RESET ROLE;
SET ROLE regress_adopt_shop;
UPDATE orders SET status = 'shipped' WHERE id = 'SO-4';
RESET ROLE;
SELECT * FROM ledger() WHERE order_id = 'SO-4';

-- A mapping that reads another order id: the earned orders are unknown to
-- it, and their cancels are ignored.
SET ROLE regress_adopt_dba;
BEGIN;
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;
SELECT loyalty.detach_orders('shop', 'orders');
SELECT loyalty.attach_orders('shop', 'orders', 'order_no', 'customer', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');
COMMIT;
RESET ROLE;
SET ROLE regress_adopt_shop;
UPDATE orders SET status = 'cancelled' WHERE id = 'SO-1';
RESET ROLE;
SELECT order_id, points, reversed, closed FROM earned() WHERE order_id IN ('SO-1', 'N-SO-1');
SELECT books_ok();

-------------------------------------------------------------------------------
-- 3. Partitioned orders tables: the attached table made partitioned, in the
-- doc's transaction (back to the usual mapping first, SO-1 open again).
-------------------------------------------------------------------------------
SET ROLE regress_adopt_dba;
SELECT loyalty.detach_orders('shop', 'orders');
ALTER TABLE orders DROP COLUMN customer_ref, DROP COLUMN customer_email, DROP COLUMN order_no;
RESET ROLE;
SET ROLE regress_adopt_shop;
UPDATE orders SET status = 'paid', placed_at = '2024-06-01' WHERE id = 'SO-1';
RESET ROLE;
SET ROLE regress_adopt_dba;
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');
RESET ROLE;
SET ROLE regress_adopt_shop;
UPDATE orders SET status = 'paid' WHERE id = 'SO-4';     -- back to ana's
RESET ROLE;
SELECT member_id, points FROM ledger() WHERE order_id = 'SO-4';
SET ROLE regress_adopt_dba;
BEGIN;
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;      -- writers wait until COMMIT
SELECT loyalty.detach_orders('shop', 'orders');
ALTER TABLE orders RENAME TO orders_2024;
ALTER TABLE orders_2024 DROP CONSTRAINT orders_pkey;  -- the new key must hold placed_at
CREATE TABLE orders (LIKE orders_2024 INCLUDING DEFAULTS) PARTITION BY RANGE (placed_at);
ALTER TABLE orders ATTACH PARTITION orders_2024 FOR VALUES FROM (MINVALUE) TO ('2025-01-01');
CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX orders_id_idx ON orders (id);
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');
COMMIT;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON orders TO regress_adopt_shop;
RESET ROLE;
SELECT sum(points) - sum(reversed) AS open_points_before FROM earned() \gset
SELECT count(*) AS so4_ledger_rows FROM ledger() WHERE order_id = 'SO-4' \gset

-- Old orders still count through the root and in the old partition; a new
-- order earns in the new partition; the same id again earns nothing; a
-- corrected time moves SO-4 to 2025 and keeps its points.
SET ROLE regress_adopt_shop;
UPDATE orders SET refunded = 50 WHERE id = 'SO-1';          -- 25 more back
DELETE FROM orders_2024 WHERE id = 'SO-2';                  -- the rest of SO-2 back
INSERT INTO orders (id, customer, total, placed_at) VALUES ('SO-6', 'ben', 70, '2025-02-01');
INSERT INTO orders (id, customer, total, placed_at) VALUES ('SO-6', 'ben', 70, '2024-12-31');
UPDATE orders SET placed_at = '2025-03-01' WHERE id = 'SO-4';
RESET ROLE;
SELECT tableoid::regclass AS partition, id, customer, total, refunded FROM orders ORDER BY id, partition;
SELECT * FROM earned();
SELECT count(*) - :so4_ledger_rows AS so4_new_ledger_rows FROM ledger() WHERE order_id = 'SO-4';
SELECT :open_points_before - 25 - 40 + 70 AS expected_open_points,    -- SO-1, the rest of SO-2, SO-6
       sum(points) - sum(reversed) AS open_points FROM earned();
SELECT tgrelid::regclass AS "table", count(*) AS loyalty_triggers
  FROM pg_trigger WHERE tgname LIKE 'loyalty%' GROUP BY 1 ORDER BY 1;
SELECT books_ok();

-------------------------------------------------------------------------------
-- 4. Uninstalling: the doc's steps.
-------------------------------------------------------------------------------
SET ROLE regress_adopt_dba;
CREATE VIEW my_members AS SELECT * FROM loyalty.member_360;   -- an object of the DBA's own
RESET ROLE;
-- 1. Keep the books.
CREATE TABLE public.loyalty_final_balance AS
SELECT program, member_id, balance, debt, lifetime_earned, lifetime_redeemed
  FROM loyalty.member;
-- 3. Detach every orders table (as the tables' owner).
SET ROLE regress_adopt_dba;
SELECT program, orders, loyalty.detach_orders(program, orders) FROM loyalty.order_source;
RESET ROLE;
-- 4. DROP EXTENSION without CASCADE refuses and names the DBA's view.
DROP EXTENSION loyalty;
DROP VIEW my_members;
-- 5.
DROP EXTENSION loyalty;

-- What stays: the application's table works, without any trigger.
SET ROLE regress_adopt_shop;
INSERT INTO orders (id, customer, total, placed_at) VALUES ('SO-7', 'ana', 10, '2025-04-01');
UPDATE orders SET refunded = 5 WHERE id = 'SO-7';
UPDATE orders SET placed_at = '2024-04-01' WHERE id = 'SO-7';   -- moved to the other partition
DELETE FROM orders WHERE id = 'SO-1';
SELECT count(*) AS orders, sum(total) AS total FROM orders;
TRUNCATE orders;
SELECT count(*) AS orders FROM orders;
RESET ROLE;
SELECT count(*) AS triggers_left FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relname LIKE 'orders%' AND NOT t.tgisinternal;
SELECT count(*) AS event_triggers FROM pg_event_trigger;
SELECT * FROM loyalty_final_balance ORDER BY member_id;
-- The schema stays, empty; the roles stay.
SELECT count(*) AS objects_in_schema_loyalty FROM pg_class WHERE relnamespace = 'loyalty'::regnamespace;
SELECT rolname FROM pg_roles WHERE rolname IN ('loyalty_admin', 'loyalty_app', 'loyalty_reader') ORDER BY 1;
DROP SCHEMA loyalty;
-- Installing again starts empty.
CREATE EXTENSION loyalty;
SELECT count(*) AS programs FROM loyalty.program;

\c :regress_db
SET client_min_messages = warning;
DROP DATABASE regress_adopting;
DROP ROLE regress_adopt_dba;
DROP ROLE regress_adopt_shop;

-- Every shape of statement on an orders table distributed by customer
-- earns as on one node: multi-row INSERT, INSERT ... SELECT, COPY, refunds
-- in steps, cancel, DELETE, a re-inserted id, savepoints rolled back and
-- kept.  Books and balances are read through the coordinator.
SET client_min_messages = warning;
SELECT loyalty.create_program('shop', base_currency => 'EUR', earn_rate => 2);
CREATE TABLE orders (id text, customer text NOT NULL, total numeric(12,2), currency text DEFAULT 'EUR',
                     status text DEFAULT 'paid', refunded numeric(12,2) DEFAULT 0,
                     placed_at timestamptz DEFAULT '2026-01-05 10:00+00', PRIMARY KEY (id, customer));
SELECT test_distribute('orders', 'customer');
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total', currency => 'currency',
                             status => 'status', refunded_amount => 'refunded', created_at => 'placed_at');
-- Multi-row INSERT over several members (and shards).
INSERT INTO orders (id, customer, total) VALUES ('a1', 'ana', 100), ('b1', 'bo', 20), ('c1', 'cy', 30.5), ('a2', 'ana', 7.25);
-- INSERT ... SELECT, COPY.
INSERT INTO orders (id, customer, total, placed_at)
SELECT 's' || i, 'm' || (i % 7), 10 + i, timestamptz '2026-01-01 00:00+00' + i * interval '1 hour'
  FROM generate_series(1, 60) i;
COPY orders (id, customer, total) FROM stdin;
k1	ana	12.00
k2	dee	40.00
k3	dee	0.99
\.
-- Refunds in steps (cumulative), a full refund, a cancel, a DELETE.
UPDATE orders SET refunded = 25 WHERE id = 'a1';
UPDATE orders SET refunded = 60 WHERE id = 'a1';
UPDATE orders SET refunded = 20 WHERE id = 'b1';
UPDATE orders SET status = 'cancelled' WHERE id = 'c1';
DELETE FROM orders WHERE id = 'k2';
UPDATE orders SET refunded = total / 2 WHERE customer = 'm3';
-- An order inserted already refunded; an id deleted then inserted again.
INSERT INTO orders (id, customer, total, refunded) VALUES ('r1', 'eve', 80, 30);
DELETE FROM orders WHERE id = 'a2';
INSERT INTO orders (id, customer, total) VALUES ('a2', 'ana', 9);
-- A second INSERT of a known id earns nothing (another table row, same order id and member).
-- Savepoints: what a rolled back savepoint inserted earns nothing; the rest does.
BEGIN;
INSERT INTO orders (id, customer, total) VALUES ('t1', 'fay', 10);
SAVEPOINT sp;
INSERT INTO orders (id, customer, total) VALUES ('t2', 'fay', 1000);
UPDATE orders SET status = 'cancelled' WHERE id = 't1';
ROLLBACK TO SAVEPOINT sp;
INSERT INTO orders (id, customer, total) VALUES ('t3', 'fay', 5);
COMMIT;
-- A transaction rolled back leaves nothing.
BEGIN;
INSERT INTO orders (id, customer, total) VALUES ('x1', 'gus', 500);
ROLLBACK;
SELECT member_id, balance, lifetime_earned, lifetime_reversed, debt FROM loyalty.member ORDER BY member_id;
SELECT order_id, member_id, points, reversed_target, closed FROM loyalty.order_earning
 WHERE member_id IN ('ana', 'bo', 'cy', 'dee', 'eve', 'fay', 'gus') ORDER BY order_id;
SELECT member_id, kind, sum(points) FROM loyalty.ledger GROUP BY 1, 2 ORDER BY 1, 2;
SELECT member_id, orders, net_spend FROM loyalty.activity_total ORDER BY member_id;
SELECT * FROM loyalty.balance('shop', 'ana');
SELECT * FROM loyalty.balance('shop', 'fay');
-- A plain table of the coordinator cannot be attached on a cluster (every
-- node must know an attached table; it earns on one node): refused with
-- 0A000 there, attached on one node.  So is a table distributed by another
-- column than its member's.
CREATE TABLE plain_orders (id text PRIMARY KEY, customer text NOT NULL, total numeric(12,2));
CREATE TABLE other_orders (id text PRIMARY KEY, customer text NOT NULL, total numeric(12,2));
SELECT test_distribute('other_orders', 'id');
SET client_min_messages = error;  -- one node warns of a program's second table
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['plain_orders', 'other_orders'] LOOP
        BEGIN
            PERFORM loyalty.attach_orders('shop', t::regclass, 'id', 'customer', 'total');
            IF loyalty.distributed() THEN
                RAISE EXCEPTION 'attached % on a cluster', t;
            END IF;
        EXCEPTION WHEN feature_not_supported THEN
            IF NOT loyalty.distributed() THEN
                RAISE;
            END IF;
        END;
    END LOOP;
END
$$;

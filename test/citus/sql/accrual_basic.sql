-- Orders on an orders table distributed by customer (on the cluster) earn,
-- refund and cancel as on one node; a member's balance and history are read
-- through the coordinator.
SET client_min_messages = warning;
SELECT loyalty.create_program('shop', base_currency => 'EUR', earn_rate => 2);
CREATE TABLE orders (id text, customer text NOT NULL, total numeric(12,2), currency text DEFAULT 'EUR',
                     status text DEFAULT 'paid', refunded numeric(12,2) DEFAULT 0,
                     placed_at timestamptz DEFAULT '2026-01-05 10:00+00', PRIMARY KEY (id, customer));
SELECT test_distribute('orders', 'customer');
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total', currency => 'currency',
                             status => 'status', refunded_amount => 'refunded', created_at => 'placed_at');
INSERT INTO orders (id, customer, total) VALUES ('o1', 'ana', 50);
INSERT INTO orders (id, customer, total) VALUES ('o2', 'bo', 20), ('o3', 'cy', 30), ('o4', 'ana', 10.5);
INSERT INTO orders (id, customer, total) SELECT 'g' || i, 'm' || (i % 17), i FROM generate_series(1, 200) i;
UPDATE orders SET refunded = 10 WHERE id = 'o1';
UPDATE orders SET status = 'cancelled' WHERE id = 'o3';
-- Kept in the dead letters (its WARNING comes from a worker on the cluster,
-- with a DETAIL naming the node: shown by the letter instead).
SET client_min_messages = error;
INSERT INTO orders (id, customer, total, currency) VALUES ('o5', 'bo', 10, 'XXX');
SET client_min_messages = warning;
SELECT member_id, event, order_id, sqlstate FROM loyalty.dead_letter ORDER BY order_id;
SELECT * FROM loyalty.balance('shop', 'ana');
SELECT kind, points FROM loyalty.history('shop', 'ana') ORDER BY 1, 2;
-- The ledger id it returns is drawn from the member's node's range on a cluster.
SELECT loyalty.redeem('shop', 'ana', 20, 'r-1') > 0 AS redeemed;
SELECT member_id, balance FROM loyalty.member ORDER BY member_id;

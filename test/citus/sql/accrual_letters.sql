-- Dead letters on a cluster: an order in a currency without an FX rate is
-- kept (the order insert goes through), later events of the order wait
-- behind it, and once the rate is set retry_dead_letters (through the
-- coordinator) earns and applies them in order, as on one node.
SET client_min_messages = warning;
SELECT loyalty.create_program('shop', base_currency => 'EUR', earn_rate => 1);
CREATE TABLE orders (id text, customer text NOT NULL, total numeric(12,2), currency text DEFAULT 'EUR',
                     status text DEFAULT 'paid', refunded numeric(12,2) DEFAULT 0,
                     placed_at timestamptz DEFAULT '2026-01-05 10:00+00', PRIMARY KEY (id, customer));
SELECT test_distribute('orders', 'customer');
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total', currency => 'currency',
                             status => 'status', refunded_amount => 'refunded', created_at => 'placed_at');
-- The WARNINGs come from the workers on the cluster (with a DETAIL naming
-- the node): the letters below show what was kept.
SET client_min_messages = error;
INSERT INTO orders (id, customer, total, currency) VALUES ('u1', 'ana', 100, 'USD');
INSERT INTO orders (id, customer, total, currency) VALUES ('u2', 'bo', 50, 'USD'), ('e1', 'bo', 10, 'EUR');
UPDATE orders SET refunded = 40 WHERE id = 'u1';
UPDATE orders SET status = 'cancelled' WHERE id = 'u2';
SELECT member_id, event, order_id, sqlstate, resolved_at IS NULL AS open FROM loyalty.dead_letter ORDER BY member_id, order_id, event;
SELECT member_id, balance FROM loyalty.member ORDER BY member_id;
-- Nothing to replay yet: still no rate.  (The replay runs on the coordinator.)
SET client_min_messages = notice;
SELECT loyalty.retry_dead_letters('shop');
SELECT loyalty.set_fx_rate('USD', 'EUR', 0.5, '2026-01-01');
SELECT loyalty.retry_dead_letters('shop');
SELECT member_id, event, order_id, attempts, resolved_at IS NULL AS open FROM loyalty.dead_letter ORDER BY member_id, order_id, event;
SELECT order_id, member_id, points, reversed_target, closed FROM loyalty.order_earning ORDER BY order_id;
SELECT member_id, balance, lifetime_earned, lifetime_reversed FROM loyalty.member ORDER BY member_id;
-- A later refund of a replayed order applies at once.
SET client_min_messages = error;
UPDATE orders SET refunded = 100 WHERE id = 'u1';
SELECT member_id, balance, lifetime_reversed FROM loyalty.member WHERE member_id = 'ana';
SET client_min_messages = notice;
SELECT loyalty.retry_dead_letters('shop');

-- Refunds and cancellations: partial refunds add up exactly, every closing
-- status reverses all, DELETE reverses, and the two refund policies.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- Ledger ids in this file start at 2001, whatever ran before.
SELECT setval('loyalty.ledger_id_seq', 2000) \gset

SELECT loyalty.create_program('ref', 'USD', 3.33);
SELECT loyalty.create_program('ref_wb', 'USD', 3.33, refund_policy => 'within_balance');
CREATE TABLE ref_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                         refunded numeric DEFAULT 0, at timestamptz DEFAULT '2024-01-01');
SELECT loyalty.attach_orders('ref', 'ref_orders', 'id', 'member', 'amount', NULL, 'status', 'refunded', 'at');

-- 100 x 3.33 = 333 points; three partial refunds take back 110 + 111 + 112 = 333.
INSERT INTO ref_orders (id, member, amount) VALUES ('R-1', 'kim', 100);
UPDATE ref_orders SET refunded = 33.33 WHERE id = 'R-1';
UPDATE ref_orders SET refunded = 66.66 WHERE id = 'R-1';
UPDATE ref_orders SET refunded = 100 WHERE id = 'R-1';
UPDATE ref_orders SET refunded = 150 WHERE id = 'R-1';      -- above the amount: a dead letter, nothing more
UPDATE ref_orders SET status = 'cancelled' WHERE id = 'R-1'; -- already all back: nothing more
SELECT kind, points FROM loyalty.ledger WHERE program = 'ref' AND order_id = 'R-1' ORDER BY id;
SELECT sum(points) AS net FROM loyalty.ledger WHERE program = 'ref' AND order_id = 'R-1';
-- The cancel came after the refund above the amount: that letter is moot.
SELECT event, reason, resolved_at IS NOT NULL AS resolved FROM loyalty.dead_letter
 WHERE program = 'ref' AND order_id = 'R-1';

-- Every closing status, in any case, reverses everything; a DELETE too.
INSERT INTO ref_orders (id, member, amount) VALUES
    ('R-2', 'kim', 10), ('R-3', 'kim', 10), ('R-4', 'kim', 10), ('R-5', 'kim', 10), ('R-6', 'kim', 10);
UPDATE ref_orders SET status = 'Refunded' WHERE id = 'R-2';
UPDATE ref_orders SET status = 'CANCELED' WHERE id = 'R-3';
UPDATE ref_orders SET status = 'returned' WHERE id = 'R-4';
UPDATE ref_orders SET status = 'cancelled' WHERE id = 'R-5';
DELETE FROM ref_orders WHERE id = 'R-6';
-- A closed order stays closed: back to 'paid' earns nothing again.
UPDATE ref_orders SET status = 'paid' WHERE id = 'R-2';
SELECT order_id, sum(points) FILTER (WHERE kind = 'earn') AS earned,
       sum(points) FILTER (WHERE kind = 'reverse') AS reversed
  FROM loyalty.ledger WHERE program = 'ref' AND order_id IN ('R-2', 'R-3', 'R-4', 'R-5', 'R-6')
 GROUP BY 1 ORDER BY 1;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'ref' AND order_id LIKE 'R-%' ORDER BY 1;

-- A partial refund, then cancel: everything back, once.
INSERT INTO ref_orders (id, member, amount) VALUES ('R-7', 'kim', 10);     -- 33
UPDATE ref_orders SET refunded = 5 WHERE id = 'R-7';                       -- 16
UPDATE ref_orders SET status = 'cancelled' WHERE id = 'R-7';               -- 17
-- A refund that shrinks gives nothing back (refunds are never undone).
INSERT INTO ref_orders (id, member, amount) VALUES ('R-8', 'kim', 10);     -- 33
UPDATE ref_orders SET refunded = 5 WHERE id = 'R-8';                       -- 16
UPDATE ref_orders SET refunded = 2 WHERE id = 'R-8';                       -- nothing
-- Inserted already cancelled earns nothing; inserted half refunded earns half.
INSERT INTO ref_orders (id, member, amount, status) VALUES ('R-9', 'kim', 10, 'cancelled');
INSERT INTO ref_orders (id, member, amount, refunded) VALUES ('R-10', 'kim', 10, 5);
SELECT order_id, kind, points FROM loyalty.ledger
 WHERE program = 'ref' AND order_id IN ('R-7', 'R-8', 'R-9', 'R-10') ORDER BY id;

-- refund_policy debt: a refund after the points were spent takes the
-- balance below zero; redemption waits until it is positive again.
INSERT INTO ref_orders (id, member, amount) VALUES ('L-1', 'lee', 30);     -- 99
SELECT loyalty.redeem('ref', 'lee', 99, 'lee-spend-1', '2024-02-01') > 0 AS redeemed;
UPDATE ref_orders SET status = 'refunded' WHERE id = 'L-1';
SELECT available, pending FROM loyalty.balance('ref', 'lee', '2024-03-01');
SELECT balance, debt FROM loyalty.member WHERE program = 'ref' AND member_id = 'lee';
SELECT loyalty.redeem('ref', 'lee', 1, 'lee-spend-2', '2024-03-01');
INSERT INTO ref_orders (id, member, amount) VALUES ('L-2', 'lee', 100);    -- 333
SELECT available FROM loyalty.balance('ref', 'lee', '2024-03-01');
SELECT loyalty.redeem('ref', 'lee', 235, 'lee-spend-3', '2024-03-01');   -- one too many
SELECT loyalty.redeem('ref', 'lee', 234, 'lee-spend-4', '2024-03-01') > 0 AS redeemed;
SELECT available FROM loyalty.balance('ref', 'lee', '2024-03-01');
SELECT balance, debt FROM loyalty.member WHERE program = 'ref' AND member_id = 'lee';

-- refund_policy within_balance: a refund takes at most what is left.
CREATE TABLE wb_orders (LIKE ref_orders INCLUDING DEFAULTS);
SELECT loyalty.attach_orders('ref_wb', 'wb_orders', 'id', 'member', 'amount', NULL, 'status', 'refunded', 'at');
INSERT INTO wb_orders (id, member, amount) VALUES ('W-1', 'max', 30);      -- 99
SELECT loyalty.redeem('ref_wb', 'max', 90, 'max-spend', '2024-02-01') > 0 AS redeemed;
UPDATE wb_orders SET refunded = 30 WHERE id = 'W-1';
SELECT kind, points FROM loyalty.ledger WHERE program = 'ref_wb' ORDER BY id;
SELECT available FROM loyalty.balance('ref_wb', 'max', '2024-03-01');
SELECT points, reversed_target, earned_total, reversed_total FROM loyalty.order_earning WHERE program = 'ref_wb';

SELECT check_name, ok FROM loyalty.verify('ref');
SELECT check_name, ok FROM loyalty.verify('ref_wb');

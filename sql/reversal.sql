-- Reversals outside the order flow: reverse_order takes back what is left
-- of an order's points and marks the order so that a later refund, cancel
-- or delete takes nothing more; take_back takes points not tied to an
-- order, idempotent on its reference.  Both follow the refund policy.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql
-- Ledger ids in this file start at 1000001, whatever ran before.
SELECT setval('loyalty.ledger_id_seq', 1000000) \gset

SELECT loyalty.create_program('rv', 'USD', 1);
SELECT loyalty.create_program('rv_wb', 'USD', 1, refund_policy => 'within_balance');
CREATE TABLE rv_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                        refunded numeric DEFAULT 0, at timestamptz DEFAULT '2024-01-01');
SELECT loyalty.attach_orders('rv', 'rv_orders', 'id', 'member', 'amount', NULL, 'status', 'refunded', 'at');
CREATE TABLE rv_wb_orders (LIKE rv_orders INCLUDING DEFAULTS);
SELECT loyalty.attach_orders('rv_wb', 'rv_wb_orders', 'id', 'member', 'amount', NULL, 'status', 'refunded', 'at');

-- reverse_order: all of an order's 100 points, with the reason given.
INSERT INTO rv_orders (id, member, amount) VALUES ('O-1', 'kim', 100), ('O-2', 'kim', 60), ('O-3', 'kim', 40);
SELECT loyalty.reverse_order('rv', 'O-1', 'fraud flag 17');
SELECT id, kind, points, order_id, reason FROM loyalty.ledger WHERE program = 'rv' AND order_id = 'O-1' ORDER BY id;
SELECT points, reversed_target, earned_total, reversed_total, closed FROM loyalty.order_earning
 WHERE program = 'rv' AND order_id = 'O-1';
-- Idempotent: nothing is left.
SELECT loyalty.reverse_order('rv', 'O-1', 'fraud flag 17');
-- A refund, a cancel, a delete of that order after it reverse nothing more.
UPDATE rv_orders SET refunded = 50 WHERE id = 'O-1';
UPDATE rv_orders SET status = 'cancelled' WHERE id = 'O-1';
DELETE FROM rv_orders WHERE id = 'O-1';
SELECT kind, points, reason FROM loyalty.ledger WHERE program = 'rv' AND order_id = 'O-1' ORDER BY id;
SELECT reversed_target, reversed_total, closed FROM loyalty.order_earning WHERE program = 'rv' AND order_id = 'O-1';

-- Partly refunded first: reverse_order takes the rest (60 - 15 = 45).
UPDATE rv_orders SET refunded = 15 WHERE id = 'O-2';
SELECT loyalty.reverse_order('rv', 'O-2', 'fraud flag 18');
SELECT kind, points, reason FROM loyalty.ledger WHERE program = 'rv' AND order_id = 'O-2' ORDER BY id;
UPDATE rv_orders SET refunded = 60 WHERE id = 'O-2';
SELECT sum(points) AS net FROM loyalty.ledger WHERE program = 'rv' AND order_id = 'O-2';

-- Cancelled first: nothing left to reverse.
UPDATE rv_orders SET status = 'cancelled' WHERE id = 'O-3';
SELECT loyalty.reverse_order('rv', 'O-3', 'fraud flag 19');

-- Spent points become debt (policy debt): lee redeems 40 of a 50-point order.
INSERT INTO rv_orders (id, member, amount) VALUES ('O-4', 'lee', 50);
SELECT loyalty.redeem('rv', 'lee', 40, 'lee-r1', '2024-01-02') > 0 AS redeemed;
SELECT loyalty.reverse_order('rv', 'O-4', 'fraud flag 20');
SELECT balance, debt FROM loyalty.member WHERE program = 'rv' AND member_id = 'lee';

-- Policy within_balance: only what is left is taken; the order still
-- counts as reversed (a refund later takes nothing).
INSERT INTO rv_wb_orders (id, member, amount) VALUES ('W-1', 'ann', 50);
SELECT loyalty.redeem('rv_wb', 'ann', 40, 'ann-r1', '2024-01-02') > 0 AS redeemed;
SELECT loyalty.reverse_order('rv_wb', 'W-1', 'fraud flag 21');
SELECT balance, debt FROM loyalty.member WHERE program = 'rv_wb' AND member_id = 'ann';
UPDATE rv_wb_orders SET status = 'refunded' WHERE id = 'W-1';
SELECT kind, points FROM loyalty.ledger WHERE program = 'rv_wb' AND order_id = 'W-1' ORDER BY id;

-- A guest's order has nothing to reverse.
INSERT INTO rv_orders (id, member, amount) VALUES ('O-5', NULL, 10);
SELECT loyalty.reverse_order('rv', 'O-5', 'fraud flag 22');

-- Bad arguments.
SELECT sqlstate_of($$SELECT loyalty.reverse_order('rv', 'O-404', 'x')$$);
SELECT sqlstate_of($$SELECT loyalty.reverse_order('nope', 'O-2', 'x')$$);
SELECT sqlstate_of($$SELECT loyalty.reverse_order(NULL, 'O-2', 'x')$$);
SELECT sqlstate_of($$SELECT loyalty.reverse_order('rv', NULL, 'x')$$);
SELECT sqlstate_of($$SELECT loyalty.reverse_order('rv', 'O-2', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.reverse_order('rv', '', 'x')$$);

-- take_back: 30 points from mia's lots, soonest-expiring first.
SELECT loyalty.create_program('tb', 'USD', 1, expire_after => '365 days');
SELECT loyalty.earn('tb', 'mia', 20, 'mia-e1', 'referral reward', '2024-03-01') AS late_lot,
       loyalty.earn('tb', 'mia', 20, 'mia-e2', 'referral reward', '2024-01-01') AS early_lot;
SELECT loyalty.take_back('tb', 'mia', 30, 'fraud:1:5001', 'fraud flag 1', '2024-04-01');
SELECT l.id, l.kind, l.points, l.ref, l.order_id, l.reason, l.occurred_at FROM loyalty.ledger l
 WHERE l.program = 'tb' AND l.kind = 'reverse';
SELECT u.lot_id, u.points FROM loyalty.lot_use u JOIN loyalty.ledger l ON l.id = u.ledger_id
 WHERE l.ref = 'fraud:1:5001' ORDER BY u.lot_id;
-- Replayed: the same answer, nothing new.
SELECT loyalty.take_back('tb', 'mia', 30, 'fraud:1:5001', 'fraud flag 1', '2024-04-01');
SELECT count(*) AS reversals FROM loyalty.ledger WHERE program = 'tb' AND kind = 'reverse';
-- The reference reused for another call: LY003.
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 31, 'fraud:1:5001', 'fraud flag 1')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 30, 'fraud:1:5001', 'fraud flag 2')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 20, 'mia-e1', 'fraud flag 1')$$);
-- More than is left: the rest is debt.
SELECT loyalty.take_back('tb', 'mia', 25, 'fraud:1:5002', 'fraud flag 1', '2024-04-01');
SELECT balance, debt, lifetime_reversed FROM loyalty.member WHERE program = 'tb' AND member_id = 'mia';

-- Under within_balance only what is left is taken; nothing left still
-- writes its 0-point row, so the reference is used and the decision kept.
SELECT loyalty.earn('rv_wb', 'bo', 10, 'bo-e1', 'commission', '2024-01-01') > 0 AS earned;
SELECT loyalty.take_back('rv_wb', 'bo', 25, 'ref:bo:1', 'referral voided', '2024-02-01');
SELECT loyalty.take_back('rv_wb', 'bo', 25, 'ref:bo:2', 'referral voided', '2024-02-01');
SELECT loyalty.take_back('rv_wb', 'bo', 25, 'ref:bo:2', 'referral voided', '2024-02-01') AS replayed;
SELECT ref, points FROM loyalty.ledger WHERE program = 'rv_wb' AND member_id = 'bo' AND kind = 'reverse' ORDER BY id;
SELECT balance, debt FROM loyalty.member WHERE program = 'rv_wb' AND member_id = 'bo';

-- Bad arguments.
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', -5, 'x1', 'r')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 0, 'x1', 'r')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', NULL, 'x1', 'r')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'nobody', 5, 'x1', 'r')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('nope', 'mia', 5, 'x1', 'r')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', NULL, 5, 'x1', 'r')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 5, NULL, 'r')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 5, 'x1', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 5, 'x1', 'r', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 5, 'x1', 'r', 'infinity')$$);

-- Internal: admins do not call them directly.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.reverse_order('rv', 'O-2', 'x')$$);
SELECT sqlstate_of($$SELECT loyalty.take_back('tb', 'mia', 5, 'x2', 'r')$$);
RESET ROLE;

SELECT * FROM loyalty.verify() WHERE NOT ok;

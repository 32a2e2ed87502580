-- loyalty.verify() proves the books, and catches each kind of damage.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- Its own program, so that this file runs alone: 42 with order A-1 (30
-- points) and kim with order R-8 (20 points).
SELECT loyalty.create_program('ver', 'USD', 1);
CREATE TABLE ver_orders (id text, member text, amount numeric, at timestamptz DEFAULT '2024-01-01');
SELECT loyalty.attach_orders('ver', 'ver_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO ver_orders (id, member, amount) VALUES ('A-1', '42', 30), ('R-8', 'kim', 20);

-- After every test so far, the books are clean.
SELECT * FROM loyalty.verify();

BEGIN;
-- A cached balance that drifted from the ledger.
UPDATE loyalty.member SET balance = balance + 7 WHERE program = 'ver' AND member_id = '42';
SELECT check_name, ok, detail FROM loyalty.verify('ver') WHERE NOT ok;
ROLLBACK;

BEGIN;
-- A lot whose remainder does not match its uses.
UPDATE loyalty.lot SET remaining = remaining - 1
 WHERE id = (SELECT min(id) FROM loyalty.lot WHERE program = 'ver' AND remaining > 0);
SELECT check_name, ok FROM loyalty.verify('ver') WHERE NOT ok;
ROLLBACK;

BEGIN;
-- An order that earned twice.
INSERT INTO loyalty.ledger (program, member_id, kind, points, order_id, occurred_at)
SELECT program, member_id, 'earn', points, order_id, ordered_at
  FROM loyalty.order_earning WHERE program = 'ver' AND order_id = 'A-1';
SELECT check_name, ok, detail FROM loyalty.verify('ver') WHERE NOT ok;
ROLLBACK;

BEGIN;
-- An order reversed more than it earned.
INSERT INTO loyalty.ledger (program, member_id, kind, points, order_id, occurred_at)
VALUES ('ver', 'kim', 'reverse', -1000, 'R-8', now());
SELECT check_name, ok FROM loyalty.verify('ver') WHERE NOT ok;
ROLLBACK;

-- Unknown program: nothing to check, nothing wrong.
SELECT count(*) FILTER (WHERE ok) AS ok_checks FROM loyalty.verify('no-such-program');

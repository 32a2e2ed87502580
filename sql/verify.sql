-- loyalty.verify() proves the books, and catches each kind of damage.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- After every test so far, the books are clean.
SELECT * FROM loyalty.verify();

BEGIN;
-- A cached balance that drifted from the ledger.
UPDATE loyalty.member SET balance = balance + 7 WHERE program = 'spend' AND member_id = 'eva';
SELECT check_name, ok, detail FROM loyalty.verify('spend') WHERE NOT ok;
ROLLBACK;

BEGIN;
-- A lot whose remainder does not match its uses.
UPDATE loyalty.lot SET remaining = remaining - 1
 WHERE id = (SELECT min(id) FROM loyalty.lot WHERE program = 'ref' AND remaining > 0);
SELECT check_name, ok FROM loyalty.verify('ref') WHERE NOT ok;
ROLLBACK;

BEGIN;
-- An order that earned twice.
INSERT INTO loyalty.ledger (program, member_id, kind, points, order_id, occurred_at)
SELECT program, member_id, 'earn', points, order_id, ordered_at
  FROM loyalty.order_earning WHERE program = 'shop' AND order_id = 'A-1';
SELECT check_name, ok, detail FROM loyalty.verify('shop') WHERE NOT ok;
ROLLBACK;

BEGIN;
-- An order reversed more than it earned.
INSERT INTO loyalty.ledger (program, member_id, kind, points, order_id, occurred_at)
VALUES ('ref', 'kim', 'reverse', -1000, 'R-8', now());
SELECT check_name, ok FROM loyalty.verify('ref') WHERE NOT ok;
ROLLBACK;

-- Unknown program: nothing to check, nothing wrong.
SELECT count(*) FILTER (WHERE ok) AS ok_checks FROM loyalty.verify('no-such-program');

-- pgTAP: an order's life in one transaction, asserted step by step.
BEGIN;
SELECT plan(16);

SELECT lives_ok($$SELECT loyalty.create_program('tap', 'EUR', 2, 0, '1 year')$$, 'create a program');
CREATE TEMP TABLE tap_orders (id text PRIMARY KEY, customer text, total numeric, cur text, status text,
                              refunded numeric, at timestamptz);
SELECT lives_ok($$SELECT loyalty.attach_orders('tap', 'tap_orders', 'id', 'customer', 'total', 'cur',
                                               'status', 'refunded', 'at')$$, 'attach the orders table');
SELECT loyalty.set_fx_rate('USD', 'EUR', 0.5);

INSERT INTO tap_orders VALUES ('o1', 'c1', 50, 'EUR', 'paid', 0, '2024-01-01'),
                              ('o2', 'c1', 30, 'USD', 'paid', 0, '2024-01-02');
SELECT is((SELECT available FROM loyalty.balance('tap', 'c1', '2024-02-01')), 130::bigint,
          '50 EUR x 2 + 30 USD x 0.5 x 2 = 130 points');
SELECT is((SELECT count(*) FROM loyalty.ledger WHERE program = 'tap' AND kind = 'earn'), 2::bigint,
          'one earn row per order');

UPDATE tap_orders SET refunded = 25 WHERE id = 'o1';
SELECT is((SELECT available FROM loyalty.balance('tap', 'c1', '2024-02-01')), 80::bigint,
          'half of o1 refunded: 50 points back');
UPDATE tap_orders SET status = 'cancelled' WHERE id = 'o1';
SELECT is((SELECT available FROM loyalty.balance('tap', 'c1', '2024-02-01')), 30::bigint,
          'o1 cancelled: the other 50 back');

SELECT isnt(loyalty.redeem('tap', 'c1', 20, 'tap-r1', '2024-02-01'), NULL, 'redeem 20');
SELECT is(loyalty.redeem('tap', 'c1', 20, 'tap-r1', '2024-02-01'),
          (SELECT id FROM loyalty.ledger WHERE ref = 'tap-r1'), 'a replay returns the first id');
SELECT throws_ok($$SELECT loyalty.redeem('tap', 'c1', 11, 'tap-r2', '2024-02-01')$$, 'LY001',
                 'insufficient points: member "c1" has 10 available, 11 requested', 'overspending is refused');
SELECT is((SELECT available FROM loyalty.balance('tap', 'c1', '2024-02-01')), 10::bigint, '10 left');

SELECT lives_ok($$SELECT loyalty.cancel_redemption('tap', 'tap-r1')$$, 'cancel the redemption');
SELECT is((SELECT available FROM loyalty.balance('tap', 'c1', '2024-02-01')), 30::bigint, 'the 20 are back');

SELECT is(loyalty.expire_points('tap', '2025-01-03'), 30::bigint, 'the lot of 2024-01-02 expires a year later');
SELECT is((SELECT available FROM loyalty.balance('tap', 'c1', '2025-01-03')), 0::bigint, 'nothing left');

SELECT throws_ok($$DELETE FROM loyalty.ledger$$, 'LY004', 'loyalty.ledger is append-only', 'the ledger is append-only');
SELECT ok((SELECT bool_and(ok) FROM loyalty.verify('tap')), 'verify() is clean');

SELECT * FROM finish();
ROLLBACK;

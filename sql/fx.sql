-- Currencies: rates, the newest rate valid at the order's time, inverse
-- pairs computed exactly, and orders in an unknown currency kept, not lost.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- Ledger ids in this file start at 501, whatever ran before.
SELECT setval('loyalty.ledger_id_seq', 500) \gset

SELECT loyalty.create_program('fx', 'USD', 1);
SELECT loyalty.set_fx_rate('eur', 'usd', 1.10);
SELECT loyalty.set_fx_rate('EUR', 'USD', 1.20, '2024-06-01');
SELECT loyalty.set_fx_rate('USD', 'VND', 25000);
SELECT loyalty.set_fx_rate('GBP', 'USD', 1.25);
SELECT loyalty.set_fx_rate('GBP', 'USD', 1.30);   -- replaces the rate of the same start
SELECT * FROM loyalty.fx_rate ORDER BY 1, 2, 4;

-- Newest rate valid at a time; the reverse pair when only it exists.
SELECT loyalty.fx_rate_at('EUR', 'USD', '2024-05-31'), loyalty.fx_rate_at('EUR', 'USD', '2024-06-01'),
       loyalty.fx_rate_at('VND', 'USD', '2024-01-01'), loyalty.fx_rate_at('USD', 'USD', '2024-01-01'),
       loyalty.fx_rate_at('IDR', 'USD', '2024-01-01') IS NULL AS idr_unknown;

CREATE TABLE fx_orders (id int, customer text, total numeric, currency char(3), placed_at timestamptz);
SELECT loyalty.attach_orders('fx', 'fx_orders', 'id', 'customer', 'total', 'currency', created_at => 'placed_at');

INSERT INTO fx_orders VALUES
    (1, 'ana', 100, 'EUR', '2024-05-01'),    -- 110 USD
    (2, 'ana', 100, 'EUR', '2024-07-01'),    -- 120 USD
    (3, 'ana', 250000, 'VND', '2024-07-01'), -- 250000 / 25000 = exactly 10, not 9
    (4, 'ana', 333333, 'VND', '2024-07-01'), -- 13.33 -> 13
    (5, 'ana', 10, 'usd', '2024-07-01');     -- base currency, any case
SELECT order_id, amount, currency, fx_rate, points FROM loyalty.order_earning WHERE program = 'fx' ORDER BY 1;

-- Unknown currency: the order insert succeeds, the event waits with a WARNING.
INSERT INTO fx_orders VALUES (6, 'ana', 1500000, 'IDR', '2024-07-02');
SELECT count(*) AS orders_kept FROM fx_orders WHERE id = 6;
SELECT event, order_id, member_id, amount, currency, reason, sqlstate, resolved_at IS NULL AS open
  FROM loyalty.dead_letter WHERE program = 'fx';
-- A later update of that order waits behind it (order of events is kept).
UPDATE fx_orders SET total = 3000000 WHERE id = 6;
SELECT id, event, amount, reason FROM loyalty.dead_letter WHERE program = 'fx' ORDER BY id;

-- Retrying without the rate resolves nothing and keeps the letters.
SELECT loyalty.retry_dead_letters('fx');
SELECT id, attempts, resolved_at IS NULL AS open FROM loyalty.dead_letter WHERE program = 'fx' ORDER BY id;

-- With the rate, both replay in order: earn on 1.5M, then move to 3M.
SELECT loyalty.set_fx_rate('USD', 'IDR', 15000, '2024-01-01');
SELECT loyalty.retry_dead_letters('fx');
SELECT loyalty.retry_dead_letters('fx');   -- nothing left to do
SELECT id, attempts, resolved_at IS NOT NULL AS resolved FROM loyalty.dead_letter WHERE program = 'fx' ORDER BY id;
SELECT order_id, amount, points, generation, earned_total, reversed_total
  FROM loyalty.order_earning WHERE program = 'fx' AND order_id = '6';
SELECT available, lifetime_earned FROM loyalty.balance('fx', 'ana', '2025-01-01');

-- A rate that starts after the order does not price it.
SELECT loyalty.set_fx_rate('JPY', 'USD', 0.0067, '2024-08-01');
INSERT INTO fx_orders VALUES (7, 'ana', 10000, 'JPY', '2024-07-15');
SELECT order_id, reason FROM loyalty.dead_letter WHERE program = 'fx' AND resolved_at IS NULL;

-- Guests and zero amounts in an unknown currency need no rate: nothing waits.
INSERT INTO fx_orders VALUES (8, NULL, 100, 'XAF', '2024-07-15'), (9, 'ana', 0, 'XAF', '2024-07-15');
SELECT count(*) FROM loyalty.dead_letter WHERE program = 'fx' AND order_id IN ('8', '9');

-- Bad input.
SELECT loyalty.set_fx_rate('EUR', 'EUR', 1);
SELECT loyalty.set_fx_rate('EUR', 'USD', 0);
SELECT loyalty.set_fx_rate('EUR', 'USD', -1.5);
SELECT loyalty.set_fx_rate('EUR', 'USD', NULL);
SELECT loyalty.set_fx_rate('EURO', 'USD', 1);
SELECT loyalty.set_fx_rate(NULL, 'USD', 1);
SELECT loyalty.set_fx_rate('EUR', 'USD', 1, NULL);
SELECT loyalty.retry_dead_letters('nope');
SELECT loyalty.retry_dead_letters(NULL);

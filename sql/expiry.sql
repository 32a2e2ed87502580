-- Expiry: what is left of lots past their expiry leaves the balance, one
-- ledger row per lot dated at its expiry; idempotent; debt paid first.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- Ledger ids in this file start at 4001, whatever ran before.
SELECT setval('loyalty.ledger_id_seq', 4000) \gset

SELECT loyalty.create_program('exp', 'USD', 1, 0, '30 days');
SELECT loyalty.earn('exp', 'ida', 100, 'e1', as_of => '2024-01-01');
SELECT loyalty.earn('exp', 'ida', 40, 'e2', as_of => '2024-01-20');
SELECT loyalty.earn('exp', 'jon', 10, 'e3', as_of => '2024-01-05');
SELECT loyalty.redeem('exp', 'ida', 30, 'spend-1', '2024-01-25') > 0 AS redeemed;

-- Nothing has expired by 2024-01-30.
SELECT loyalty.expire_points('exp', '2024-01-30');
-- By 2024-02-10: ida's first lot (70 left) and jon's (10).
SELECT loyalty.expire_points('exp', '2024-02-10');
SELECT loyalty.expire_points('exp', '2024-02-10');   -- idempotent: nothing more
SELECT member_id, kind, points, lot_id IS NOT NULL AS has_lot, occurred_at
  FROM loyalty.ledger WHERE program = 'exp' AND kind = 'expire' ORDER BY id;
SELECT * FROM loyalty.balance('exp', 'ida', '2024-02-10');
SELECT member_id, balance, lifetime_expired FROM loyalty.member WHERE program = 'exp' ORDER BY 1;

-- Debt is paid from points about to expire before they expire.
CREATE TABLE exp_orders (id int, member text, amount numeric, status text, at timestamptz);
SELECT loyalty.attach_orders('exp', 'exp_orders', 'id', 'member', 'amount', status => 'status', created_at => 'at');
INSERT INTO exp_orders VALUES (1, 'kai', 50, 'paid', '2024-03-01');
SELECT loyalty.redeem('exp', 'kai', 50, 'kai-spend', '2024-03-02') > 0 AS redeemed;
UPDATE exp_orders SET status = 'refunded' WHERE id = 1;     -- nothing left: 50 of debt
SELECT loyalty.earn('exp', 'kai', 80, 'kai-gift', as_of => '2024-03-05') > 0 AS credited;
SELECT balance, debt FROM loyalty.member WHERE program = 'exp' AND member_id = 'kai';
SELECT available FROM loyalty.balance('exp', 'kai', '2024-03-10');
-- The gift lot expires on 2024-04-04: 50 of it pay the debt, 30 expire.
SELECT loyalty.expire_points('exp', '2024-04-05');
SELECT balance, debt, lifetime_expired FROM loyalty.member WHERE program = 'exp' AND member_id = 'kai';
SELECT lot_id IS NOT NULL AS lot, ledger_id IS NULL AS settlement, points
  FROM loyalty.lot_use WHERE member_id = 'kai' ORDER BY used_at, ledger_id NULLS FIRST;
UPDATE exp_orders SET status = 'paid' WHERE id = 1;         -- closed stays closed
SELECT balance, debt FROM loyalty.member WHERE program = 'exp' AND member_id = 'kai';

-- NULL program: every program.
SELECT loyalty.create_program('exp2', 'USD', 1, 0, '1 day');
SELECT loyalty.earn('exp2', 'zed', 5, 'z1', as_of => '2024-01-01') > 0 AS credited;
SELECT loyalty.expire_points(NULL, '2024-12-31') >= 5 AS expired;
SELECT program, sum(-points) AS expired FROM loyalty.ledger WHERE kind = 'expire' AND program IN ('exp', 'exp2')
 GROUP BY 1 ORDER BY 1;

-- In chunks: a chunk of two members, then the rest one member per committed
-- chunk, with a NOTICE of progress after each.
SELECT loyalty.create_program('exp3', 'USD', 1, 0, '10 days');
SELECT count(loyalty.earn('exp3', m, 7, 'chunk-' || m, as_of => '2024-01-01')) AS credited
  FROM unnest(ARRAY['u1', 'u2', 'u3']) AS m;
SELECT * FROM loyalty.expire_points_chunk('exp3', '2024-02-01', 2);
CALL loyalty.expire_points_batched('exp3', '2024-02-01', 1);
CALL loyalty.expire_points_batched('exp3', '2024-02-01', 1);   -- nothing left
SELECT member_id, balance, lifetime_expired FROM loyalty.member WHERE program = 'exp3' ORDER BY 1;
SELECT * FROM loyalty.expire_points_chunk('exp3', '2024-02-01', 0);

-- Bad input.
SELECT loyalty.expire_points('nope', '2024-01-01');
SELECT loyalty.expire_points('exp', NULL);

SELECT check_name, ok FROM loyalty.verify();

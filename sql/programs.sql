-- Programs: creation, defaults, idempotency and every bad argument.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

SELECT loyalty.create_program('basic');
SELECT loyalty.create_program('vn_shop', 'vnd', 0.001, 7, '365 days', 'within_balance', 'Asia/Ho_Chi_Minh');
SELECT code, base_currency, earn_rate, pending_days, expire_after, refund_policy, timezone
  FROM loyalty.program ORDER BY code;

-- The same program twice is fine; the same code with other settings is not.
SELECT loyalty.create_program('basic');
SELECT loyalty.create_program('basic', 'EUR');

-- Bad arguments: each is a clear error naming the bad value.
SELECT loyalty.create_program(NULL);
SELECT loyalty.create_program('has space');
SELECT loyalty.create_program('x', 'US');
SELECT loyalty.create_program('x', 'US1');
SELECT loyalty.create_program('x', NULL);
SELECT loyalty.create_program('x', 'USD', -1);
SELECT loyalty.create_program('x', 'USD', NULL);
SELECT loyalty.create_program('x', 'USD', 'NaN');
SELECT loyalty.create_program('x', 'USD', 1, -3);
SELECT loyalty.create_program('x', 'USD', 1, 0, '0 days');
SELECT loyalty.create_program('x', 'USD', 1, 0, '-1 day');
SELECT loyalty.create_program('x', 'USD', 1, 0, NULL, 'forgive');
SELECT loyalty.create_program('x', 'USD', 1, 0, NULL, 'debt', 'Mars/Olympus');

-- Nothing was created by the failed calls.
SELECT count(*) FROM loyalty.program WHERE code = 'x';

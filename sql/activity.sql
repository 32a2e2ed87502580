-- Per-member activity kept by the trigger on loyalty.order_earning: every
-- order event keeps it equal to the orders; member_activity() gives exact
-- window totals before and after old days are folded; rebuild_activity().
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('act', 'EUR', 1);
-- A currency no other test sets a rate for, so the figures do not depend on the order the tests run in.
SELECT loyalty.set_fx_rate('SEK', 'EUR', 0.91373, '2020-01-01');
CREATE TABLE act_orders (id text PRIMARY KEY, member text, amount numeric, currency text DEFAULT 'EUR',
                         status text DEFAULT 'paid', refunded numeric DEFAULT 0, at timestamptz);
SELECT loyalty.attach_orders('act', 'act_orders', 'id', 'member', 'amount', 'currency', 'status',
                             'refunded', 'at');

-- The activity of the program's members, as the trigger keeps it.
CREATE VIEW act_activity AS
SELECT member_id, orders, net_spend, last_order_at FROM loyalty.activity_total
 WHERE program = 'act' ORDER BY member_id;
-- The same, computed straight from the orders (independent of the tables).
CREATE VIEW act_counted AS
SELECT member_id, count(*) AS orders, sum(round((amount - refunded_amount) * fx_rate, 4)) AS net_spend,
       max(ordered_at) AS last_order_at
  FROM loyalty.order_earning
 WHERE program = 'act' AND member_id IS NOT NULL AND NOT closed AND amount > 0
   AND refunded_amount < amount AND fx_rate IS NOT NULL
 GROUP BY member_id;
CREATE VIEW act_check AS
SELECT check_name, ok, detail FROM loyalty.verify('act') WHERE check_name LIKE 'activity%';

-- One order at a time: a SEK order counts at its FX rate, rounded to 4 decimals.
INSERT INTO act_orders (id, member, amount, currency, at) VALUES
    ('A-1', 'ann', 100, 'EUR', '2024-03-01 10:00'),
    ('A-2', 'ann', 33.33, 'SEK', '2024-03-05 23:30');
INSERT INTO act_orders (id, member, amount, at) VALUES ('B-1', 'bob', 50, '2024-03-02 08:00');
-- Guests, zero amounts and orders inserted cancelled do not count.
INSERT INTO act_orders (id, member, amount, at) VALUES ('G-1', NULL, 80, '2024-03-02 09:00');
INSERT INTO act_orders (id, member, amount, at) VALUES ('Z-1', 'bob', 0, '2024-03-02 09:00');
INSERT INTO act_orders (id, member, amount, status, at) VALUES ('C-1', 'bob', 20, 'cancelled', '2024-03-03');
SELECT * FROM act_activity;
SELECT round(33.33 * 0.91373, 4) AS a2_net;
SELECT day, member_id, orders, net_spend FROM loyalty.activity_day WHERE program = 'act' ORDER BY 1, 2;

-- A partial refund lowers the net value only; a full refund takes the
-- order away and the last order goes back to the one before.
UPDATE act_orders SET refunded = 10 WHERE id = 'A-1';
SELECT * FROM act_activity WHERE member_id = 'ann';
UPDATE act_orders SET refunded = 33.33, status = 'refunded' WHERE id = 'A-2';
SELECT * FROM act_activity WHERE member_id = 'ann';
-- An order moved to another member: one loses it, the other gains it.
INSERT INTO act_orders (id, member, amount, at) VALUES ('B-2', 'bob', 70, '2024-03-10 12:00');
UPDATE act_orders SET member = 'cat' WHERE id = 'B-2';
SELECT * FROM act_activity WHERE member_id IN ('bob', 'cat');
-- The accrual keeps an order's time; the activity follows order_earning
-- whatever changes it: an order moved back in time (by hand) has the last
-- order time read again.
UPDATE act_orders SET at = '2024-02-20 12:00' WHERE id = 'B-2';
SELECT ordered_at FROM loyalty.order_earning WHERE program = 'act' AND order_id = 'B-2';
UPDATE loyalty.order_earning SET ordered_at = '2024-02-20 12:00' WHERE program = 'act' AND order_id = 'B-2';
SELECT * FROM act_activity WHERE member_id = 'cat';
-- A deleted order stops counting; a member left with none keeps a zero row.
DELETE FROM act_orders WHERE id = 'B-2';
SELECT * FROM act_activity WHERE member_id = 'cat';
-- A guest order given a member starts to count.
UPDATE act_orders SET member = 'cat' WHERE id = 'G-1';
SELECT * FROM act_activity WHERE member_id = 'cat';
SELECT * FROM act_check;

-- A bulk insert (the set-based path): 600 orders of 6 members over 200 days,
-- in two currencies, then refunds, cancels and moves in bulk.
INSERT INTO act_orders (id, member, amount, currency, at)
SELECT 'K-' || g, 'm' || (g % 6), 5 + (g * 37) % 400 + 0.25,
       CASE WHEN g % 3 = 0 THEN 'SEK' ELSE 'EUR' END,
       '2024-01-01'::timestamptz + (g * 8 - 3) * interval '1 hour'
  FROM generate_series(1, 600) g;
UPDATE act_orders SET refunded = round(amount / 3, 2) WHERE id LIKE 'K-%' AND right(id, 1) = '7';
UPDATE act_orders SET status = 'cancelled' WHERE id LIKE 'K-%' AND right(id, 2) = '11';
UPDATE act_orders SET member = 'm9' WHERE id LIKE 'K-%' AND right(id, 2) = '23';
SELECT count(*) AS members, sum(orders) AS orders FROM loyalty.activity_total WHERE program = 'act';
SELECT count(*) AS differing
  FROM act_counted c FULL JOIN act_activity a USING (member_id)
 WHERE (c.orders, c.net_spend, c.last_order_at) IS DISTINCT FROM (a.orders, a.net_spend, a.last_order_at)
   AND coalesce(a.orders, 0) + coalesce(c.orders, 0) > 0;
SELECT * FROM act_check;

-- A day row holds (midnight, next midnight]: an order at exactly midnight
-- is on the day that ends then, so windows from midnight to midnight are
-- whole day rows.
INSERT INTO act_orders (id, member, amount, at) VALUES
    ('N-1', 'm1', 40, '2024-02-01 00:00'), ('N-2', 'm2', 60, '2024-02-29 00:00'),
    ('N-3', 'm3', 25, '2024-06-01 00:00'), ('N-4', 'm4', 15, '2024-06-20 04:00');
SELECT order_id, ordered_at, loyalty.activity_day_of(ordered_at) AS day
  FROM loyalty.order_earning WHERE program = 'act' AND order_id LIKE 'N-%' ORDER BY 1;
SELECT day, member_id, orders FROM loyalty.activity_day
 WHERE program = 'act' AND (day, member_id) IN (('2024-01-31', 'm1'), ('2024-02-28', 'm2'))
 ORDER BY 1;
SELECT loyalty.activity_day_of('2024-02-01 00:00:00.000001+00') AS just_after_midnight,
       loyalty.activity_day_of('infinity') AS infinite, loyalty.activity_day_of(NULL) AS null_time;

-- Window totals: member_activity() against a plain query over the orders,
-- for windows with edges at midnight (with orders right on them) and inside
-- a day, ending before the last orders, shorter than a day, and empty.
CREATE TABLE act_windows (after timestamptz, upto timestamptz);
INSERT INTO act_windows VALUES
    ('2024-01-15 07:00', '2024-03-01 13:30'), ('2024-02-01 00:00', '2024-02-29 00:00'),
    ('2024-01-31 00:00', '2024-02-01 00:00'), ('2024-02-29 00:00', '2024-06-01 00:00'),
    ('2023-01-01', '2025-01-01'), ('2024-03-05 05:00', '2024-03-05 21:00'),
    ('2024-06-01', '2024-06-20 04:00'), ('2024-06-20 03:00', '2024-06-20 04:00'),
    ('2024-07-01', '2024-07-02'), ('2024-07-02', '2024-07-01');
CREATE FUNCTION act_window_mismatches() RETURNS TABLE (after timestamptz, upto timestamptz,
                                                        members bigint, differing bigint)
LANGUAGE sql AS $$
    SELECT w.after, w.upto,
           (SELECT count(*) FROM loyalty.member_activity('act', w.after, w.upto)),
           (SELECT count(*)
              FROM loyalty.member_activity('act', w.after, w.upto) a
              FULL JOIN (SELECT member_id, count(*) AS orders,
                                sum(round((amount - refunded_amount) * fx_rate, 4)) AS net_spend,
                                max(ordered_at) AS last_order_at
                           FROM loyalty.order_earning
                          WHERE program = 'act' AND member_id IS NOT NULL AND NOT closed AND amount > 0
                            AND refunded_amount < amount AND fx_rate IS NOT NULL
                            AND ordered_at > w.after AND ordered_at <= w.upto
                          GROUP BY member_id) p USING (member_id)
             WHERE (a.orders, a.net_spend, a.last_order_at) IS DISTINCT FROM (p.orders, p.net_spend, p.last_order_at))
      FROM act_windows w ORDER BY 1, 2
$$;
SELECT * FROM act_window_mismatches();

-- A pass folds the days up to three days before its window into one row per
-- member; the window totals stay exact.
SELECT loyalty.score_rfm('act', '2024-06-30 12:00', '120 days') AS scored;
SELECT through FROM loyalty.activity_horizon WHERE program = 'act';
SELECT count(*) AS folded_members, sum(orders) AS folded_orders FROM loyalty.activity_before WHERE program = 'act';
SELECT count(*) AS day_rows_up_to_horizon FROM loyalty.activity_day
 WHERE program = 'act' AND day <= (SELECT through FROM loyalty.activity_horizon WHERE program = 'act');
SELECT * FROM act_check;
SELECT * FROM act_window_mismatches();
-- A pass as of midnight folds whole days too.
SELECT loyalty.score_rfm('act', '2024-07-01 00:00', '120 days') AS scored;
SELECT through FROM loyalty.activity_horizon WHERE program = 'act';
SELECT * FROM act_check;
SELECT * FROM act_window_mismatches();
-- A change to an order of a folded day (a late refund) stays exact too.
UPDATE act_orders SET refunded = 5 WHERE id IN ('K-1', 'K-2');
UPDATE act_orders SET status = 'cancelled' WHERE id = 'K-4';
SELECT day, member_id, orders, net_spend FROM loyalty.activity_day
 WHERE program = 'act' AND day <= (SELECT through FROM loyalty.activity_horizon WHERE program = 'act')
 ORDER BY 1, 2;
SELECT * FROM act_check;
SELECT * FROM act_window_mismatches();
-- The next pass folds the late rows as well.
SELECT loyalty.score_rfm('act', '2024-07-01 12:00', '120 days') AS scored;
SELECT count(*) AS late_rows FROM loyalty.activity_day
 WHERE program = 'act' AND day <= (SELECT through FROM loyalty.activity_horizon WHERE program = 'act');
SELECT * FROM act_check;

-- Scores from the activity equal scores from the orders: the same pass on a
-- copy of the program whose activity is rebuilt from scratch.
CREATE TABLE act_scores AS SELECT member_id, recency_days, frequency, monetary, rfm::text
  FROM loyalty.member_rfm WHERE program = 'act';
SELECT loyalty.rebuild_activity('act') AS members;
SELECT through FROM loyalty.activity_horizon WHERE program = 'act';
SELECT loyalty.score_rfm('act', '2024-07-01 12:00', '120 days') AS scored;
SELECT count(*) AS differing
  FROM act_scores s FULL JOIN (SELECT * FROM loyalty.member_rfm WHERE program = 'act') r USING (member_id)
 WHERE (s.recency_days, s.frequency, s.monetary, s.rfm) IS DISTINCT FROM (r.recency_days, r.frequency, r.monetary, r.rfm::text);

-- Damaged activity is found by verify() and mended by rebuild_activity().
UPDATE loyalty.activity_total SET orders = orders + 1 WHERE program = 'act' AND member_id = 'm1';
DELETE FROM loyalty.activity_day WHERE program = 'act' AND member_id = 'm2'
   AND day = (SELECT max(day) FROM loyalty.activity_day WHERE program = 'act' AND member_id = 'm2');
SELECT * FROM act_check;
SELECT loyalty.rebuild_activity('act') AS members;
SELECT * FROM act_check;
SELECT * FROM act_window_mismatches();

-- Bad input.
SELECT sqlstate_of($$SELECT loyalty.rebuild_activity('nope')$$);
SELECT sqlstate_of($$SELECT loyalty.rebuild_activity(NULL)$$);
SELECT count(*) AS no_program FROM loyalty.member_activity('nope', '2024-01-01', '2025-01-01');
SELECT count(*) AS null_bounds FROM loyalty.member_activity('act', NULL, '2025-01-01');
SELECT count(*) AS empty_window FROM loyalty.member_activity('act', '2025-01-01', '2024-01-01');
-- The trigger function is for order_earning's statement triggers only.
CREATE TABLE act_other (x int);
CREATE TRIGGER bad AFTER INSERT ON act_other FOR EACH ROW EXECUTE FUNCTION loyalty.activity_trigger();
SELECT sqlstate_of($$INSERT INTO act_other VALUES (1)$$) AS row_trigger;
DROP TRIGGER bad ON act_other;
CREATE TRIGGER bad AFTER INSERT ON act_other FOR EACH STATEMENT EXECUTE FUNCTION loyalty.activity_trigger();
SELECT sqlstate_of($$INSERT INTO act_other VALUES (1)$$) AS other_table;
DROP TABLE act_other;

-- Back-fill: the orders a table held before it was attached earn (or count
-- as history) as if the accrual trigger had seen them live, oldest first,
-- in chunks that commit, resumable, idempotent.  Run as loyalty_admin (a
-- member of the tables' owner role), the way a DBA adopting loyalty would.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_backfill_dba;
DROP ROLE IF EXISTS regress_backfill_app;
DROP ROLE IF EXISTS regress_backfill_admin_only;
RESET client_min_messages;
CREATE ROLE regress_backfill_dba IN ROLE loyalty_admin;
CREATE ROLE regress_backfill_app IN ROLE loyalty_app;
CREATE ROLE regress_backfill_admin_only IN ROLE loyalty_admin;

-- Two programs with the same terms: 'live' sees the orders through the
-- trigger, 'fill' back-fills the same orders.
SELECT loyalty.create_program('live', 'USD', 1, 7, '1 year');
SELECT loyalty.create_program('fill', 'USD', 1, 7, '1 year');
SELECT loyalty.set_fx_rate('EUR', 'USD', 1.10, '2020-01-01');
SELECT loyalty.set_fx_rate('EUR', 'USD', 1.20, '2024-03-01');

-- Orders of three members and guests over a year and a half: EUR ones
-- (the rate changes on the way), cancelled, partly refunded, and three a
-- program cannot use (negative amount, refund above the amount, a currency
-- without a rate): those go to the dead letters, as the trigger sends them.
CREATE TABLE src (id bigint, customer text, total numeric, currency text, status text,
                  refunded numeric, placed_at timestamptz);
INSERT INTO src
SELECT g, CASE WHEN g % 11 = 0 THEN NULL ELSE 'm' || (g % 3) END, 20 + (g * 37) % 400,
       CASE WHEN g % 5 = 0 THEN 'EUR' ELSE 'USD' END,
       CASE WHEN g % 13 = 0 THEN 'Cancelled' ELSE 'paid' END,
       CASE WHEN g % 7 = 0 THEN 10 ELSE 0 END,
       '2023-06-01'::timestamptz + g * interval '9 days'
  FROM generate_series(1, 60) g;
INSERT INTO src VALUES (61, 'm1', -5, 'USD', 'paid', 0, '2024-10-01'),
                       (62, 'm2', 50, 'USD', 'paid', 60, '2024-10-02'),
                       (63, 'm0', 50, 'XTS', 'paid', 0, '2024-10-03');
CREATE TABLE orders_live (LIKE src);
CREATE TABLE orders_fill (LIKE src);
ALTER TABLE orders_live OWNER TO regress_backfill_dba;
ALTER TABLE orders_fill OWNER TO regress_backfill_dba;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders_live, orders_fill TO regress_backfill_app;
GRANT SELECT ON src TO regress_backfill_app;
INSERT INTO orders_fill SELECT * FROM src;

SET ROLE regress_backfill_dba;
SELECT loyalty.attach_orders('live', 'orders_live', 'id', 'customer', 'total', 'currency', 'status',
                             'refunded', 'placed_at');
-- The table has rows: a WARNING that points to the back-fill.
SELECT loyalty.attach_orders('fill', 'orders_fill', 'id', 'customer', 'total', 'currency', 'status',
                             'refunded', 'placed_at');
RESET ROLE;

-- Live: the application inserts each order in its time, one by one.
SET ROLE regress_backfill_app;
SET client_min_messages = error;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT id FROM src ORDER BY placed_at, id LOOP
        INSERT INTO orders_live SELECT * FROM src WHERE id = r.id;
    END LOOP;
END
$$;
RESET client_min_messages;
RESET ROLE;

-- Back-fill: chunks of 7 orders, a NOTICE per chunk.
SET ROLE regress_backfill_dba;
SET client_min_messages = warning;
CALL loyalty.backfill_orders('fill', 'orders_fill', chunk_size => 7);
RESET client_min_messages;
SELECT mode, phase, orders_done, dead_letters, chunks, total_orders, finished_at IS NOT NULL AS finished
  FROM loyalty.backfill_run WHERE program = 'fill';
RESET ROLE;

-- The books of both programs, side by side: every difference is a row.
-- (Ledger ids, recorded_at and the time of the reversal of an order
-- inserted refunded, which is the time it was seen, differ by nature.)
CREATE FUNCTION books_diff(a text, b text) RETURNS TABLE (what text, side text, row_text text)
LANGUAGE sql AS $$
    WITH m AS (SELECT program, (member_id, balance, debt, lifetime_earned, lifetime_redeemed,
                                lifetime_reversed, lifetime_expired, tier)::text AS r FROM loyalty.member),
         l AS (SELECT program, (member_id, order_id, earned, remaining, available_at, expires_at)::text AS r FROM loyalty.lot),
         g AS (SELECT program, (member_id, kind, points, order_id,
                                CASE WHEN kind = 'earn' THEN occurred_at END)::text AS r FROM loyalty.ledger),
         o AS (SELECT program, (order_id, member_id, amount, currency, fx_rate, points, generation,
                                refunded_amount, reversed_target, earned_total, reversed_total, closed,
                                ordered_at, multiplier)::text AS r FROM loyalty.order_earning),
         t AS (SELECT program, (member_id, orders, net_spend, last_order_at)::text AS r FROM loyalty.activity_total),
         d AS (SELECT program, (day, member_id, orders, net_spend)::text AS r FROM loyalty.activity_day),
         h AS (SELECT program, (member_id, from_tier, to_tier, reason, basis_value, changed_at)::text AS r FROM loyalty.tier_history),
         x AS (SELECT program, (event, order_id, member_id, amount, currency, status, refunded_amount, ordered_at,
                                reason, sqlstate, resolved_at IS NULL)::text AS r FROM loyalty.dead_letter),
         allrows AS (SELECT 'member' AS what, * FROM m UNION ALL SELECT 'lot', * FROM l
                     UNION ALL SELECT 'ledger', * FROM g UNION ALL SELECT 'order', * FROM o
                     UNION ALL SELECT 'activity_total', * FROM t UNION ALL SELECT 'activity_day', * FROM d
                     UNION ALL SELECT 'tier_history', * FROM h UNION ALL SELECT 'dead_letter', * FROM x)
    (SELECT what, a, r FROM allrows WHERE program = a EXCEPT ALL SELECT what, a, r FROM allrows WHERE program = b)
    UNION ALL
    (SELECT what, b, r FROM allrows WHERE program = b EXCEPT ALL SELECT what, b, r FROM allrows WHERE program = a)
    ORDER BY 1, 2, 3
$$;

-- Nothing differs: balances, lots, ledger, orders, activity, dead letters.
SELECT * FROM books_diff('live', 'fill');
-- ... and there is something to compare.
SELECT (SELECT count(*) FROM loyalty.order_earning WHERE program = 'fill') AS orders,
       (SELECT count(*) FROM loyalty.order_earning WHERE program = 'fill' AND closed) AS closed,
       (SELECT count(*) FROM loyalty.ledger WHERE program = 'fill' AND kind = 'reverse') AS reversals,
       (SELECT count(*) FROM loyalty.dead_letter WHERE program = 'fill') AS dead_letters,
       (SELECT sum(balance) FROM loyalty.member WHERE program = 'fill') AS points;
SELECT member_id, balance, lifetime_earned, lifetime_reversed FROM loyalty.member WHERE program = 'fill' ORDER BY 1;
SELECT order_id, reason FROM loyalty.dead_letter WHERE program = 'fill' ORDER BY order_id;
SELECT check_name FROM loyalty.verify() WHERE NOT ok;

-- Idempotent: a second run finds nothing new and earns nothing.
SET ROLE regress_backfill_dba;
CALL loyalty.backfill_orders('fill', 'orders_fill');
RESET ROLE;
SELECT count(*) AS ledger_rows, (SELECT count(*) FROM loyalty.dead_letter WHERE program = 'fill') AS dead_letters
  FROM loyalty.ledger WHERE program = 'fill';

-- After the back-fill the trigger handles the old orders: a refund, a
-- cancel and a delete of back-filled orders reverse as on live ones.
SET ROLE regress_backfill_app;
UPDATE orders_live SET refunded = 40 WHERE id = 4;
UPDATE orders_fill SET refunded = 40 WHERE id = 4;
UPDATE orders_live SET status = 'cancelled' WHERE id = 8;
UPDATE orders_fill SET status = 'cancelled' WHERE id = 8;
DELETE FROM orders_live WHERE id = 10;
DELETE FROM orders_fill WHERE id = 10;
RESET ROLE;
SELECT what, side, row_text FROM books_diff('live', 'fill') WHERE what <> 'ledger';
SELECT order_id, reversed_total, closed FROM loyalty.order_earning WHERE program = 'fill' AND order_id IN ('4', '8', '10') ORDER BY 1;

-- Tiers: a program whose ladder prices each order by the member's tier;
-- the back-fill takes its orders one by one, in time order, so upgrades
-- and multipliers come out as live.
SELECT loyalty.create_program('tlive', 'USD', 1, 0, '1 year');
SELECT loyalty.create_program('tfill', 'USD', 1, 0, '1 year');
SELECT loyalty.set_tier_ladder('tlive', 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 1000 x1.25 | Gold 3000 x1.5');
SELECT loyalty.set_tier_ladder('tfill', 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 1000 x1.25 | Gold 3000 x1.5');
CREATE TABLE tier_live (LIKE src);
CREATE TABLE tier_fill (LIKE src);
INSERT INTO tier_fill SELECT * FROM src WHERE id <= 60;
SET client_min_messages = error;
SELECT loyalty.attach_orders('tlive', 'tier_live', 'id', 'customer', 'total', 'currency', 'status', 'refunded', 'placed_at');
SELECT loyalty.attach_orders('tfill', 'tier_fill', 'id', 'customer', 'total', 'currency', 'status', 'refunded', 'placed_at');
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT id FROM src WHERE id <= 60 ORDER BY placed_at, id LOOP
        INSERT INTO tier_live SELECT * FROM src WHERE id = r.id;
    END LOOP;
END
$$;
CALL loyalty.backfill_orders('tfill', 'tier_fill', chunk_size => 25);
RESET client_min_messages;
SELECT * FROM books_diff('tlive', 'tfill');
SELECT member_id, tier, balance FROM loyalty.member WHERE program = 'tfill' ORDER BY 1;
SELECT count(*) AS upgrades FROM loyalty.tier_history WHERE program = 'tfill';

-- Program terms: the earn rate, pending days and expiry change on
-- 2024-01-01; each back-filled order is priced, made pending and given
-- its expiry by the terms of its own time, as live.
SELECT loyalty.create_program('klive', 'USD', 1, 0, '1 year');
SELECT loyalty.create_program('kfill', 'USD', 1, 0, '1 year');
SELECT count(loyalty.change_program(p, '{"earn_rate": 2, "pending_days": 3, "expire_after": "2 years"}', '2024-01-01'))
  FROM unnest(ARRAY['klive', 'kfill']) p;
CREATE TABLE terms_live (LIKE src);
CREATE TABLE terms_fill (LIKE src);
INSERT INTO terms_fill SELECT * FROM src WHERE id <= 60;
SET client_min_messages = error;
SELECT loyalty.attach_orders('klive', 'terms_live', 'id', 'customer', 'total', 'currency', 'status', 'refunded', 'placed_at');
SELECT loyalty.attach_orders('kfill', 'terms_fill', 'id', 'customer', 'total', 'currency', 'status', 'refunded', 'placed_at');
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT id FROM src WHERE id <= 60 ORDER BY placed_at, id LOOP
        INSERT INTO terms_live SELECT * FROM src WHERE id = r.id;
    END LOOP;
END
$$;
CALL loyalty.backfill_orders('kfill', 'terms_fill');
RESET client_min_messages;
SELECT * FROM books_diff('klive', 'kfill');
SELECT o.ordered_at >= '2024-01-01' AS new_terms, min(l.earned::numeric / floor(o.amount * o.fx_rate)) AS rate_min,
       max(l.earned::numeric / floor(o.amount * o.fx_rate)) AS rate_max,
       min(l.available_at - o.ordered_at) AS pending, min(l.expires_at - o.ordered_at) AS expiry
  FROM loyalty.order_earning o JOIN loyalty.lot l ON l.program = o.program AND l.order_id = o.order_id
 WHERE o.program = 'kfill' AND o.currency = 'USD' GROUP BY 1 ORDER BY 1;

-- mode 'history': the orders count for activity, RFM and tiers but earn no
-- points, now or later (a refund, a new amount, another member: still none).
SELECT loyalty.create_program('hist', 'USD', 1, 7, '1 year');
CREATE TABLE orders_hist (LIKE src);
INSERT INTO orders_hist SELECT * FROM src WHERE id <= 60;
SET client_min_messages = error;
SELECT loyalty.attach_orders('hist', 'orders_hist', 'id', 'customer', 'total', 'currency', 'status', 'refunded', 'placed_at');
CALL loyalty.backfill_orders('hist', 'orders_hist', mode => 'history');
RESET client_min_messages;
SELECT count(*) AS ledger_rows, (SELECT count(*) FROM loyalty.lot WHERE program = 'hist') AS lots
  FROM loyalty.ledger WHERE program = 'hist';
SELECT count(*) AS orders, sum(points) AS points, min(multiplier) AS multiplier_min, max(multiplier) AS multiplier_max
  FROM loyalty.order_earning WHERE program = 'hist';
-- The same activity as the live program's (whose orders 4, 8 and 10 changed since).
SELECT (SELECT sum(orders) FROM loyalty.activity_total WHERE program = 'hist') AS hist_orders,
       (SELECT sum(orders) FROM loyalty.activity_total WHERE program = 'tlive') AS live_orders,
       (SELECT sum(net_spend) FROM loyalty.activity_total WHERE program = 'hist')
     = (SELECT sum(net_spend) FROM loyalty.activity_total WHERE program = 'tlive') AS same_spend;
UPDATE orders_hist SET refunded = 15 WHERE id = 1;
UPDATE orders_hist SET total = total + 100 WHERE id = 2;
UPDATE orders_hist SET customer = 'm9' WHERE id = 3;
SELECT count(*) AS ledger_rows FROM loyalty.ledger WHERE program = 'hist';
SELECT order_id, member_id, points, refunded_amount FROM loyalty.order_earning
 WHERE program = 'hist' AND order_id IN ('1', '2', '3') ORDER BY 1;
-- A new order of the same table earns as usual.
INSERT INTO orders_hist VALUES (100, 'm1', 80, 'USD', 'paid', 0, now());
SELECT member_id, balance FROM loyalty.member WHERE program = 'hist' AND balance <> 0;

-- earn_from: the orders before the cut-off are history, the later ones earn.
SELECT loyalty.create_program('cut', 'USD', 1, 0, NULL);
CREATE TABLE orders_cut (LIKE src);
INSERT INTO orders_cut SELECT * FROM src WHERE id <= 60 AND status = 'paid' AND refunded = 0;
SET client_min_messages = error;
SELECT loyalty.attach_orders('cut', 'orders_cut', 'id', 'customer', 'total', 'currency', 'status', 'refunded', 'placed_at');
CALL loyalty.backfill_orders('cut', 'orders_cut', earn_from => '2024-06-01');
RESET client_min_messages;
SELECT o.ordered_at >= '2024-06-01' AS after_cut, count(*) AS orders, count(*) FILTER (WHERE points > 0) AS earning,
       sum(points) AS points
  FROM loyalty.order_earning o WHERE program = 'cut' GROUP BY 1 ORDER BY 1;
SELECT sum(balance) = (SELECT sum(points) FROM loyalty.order_earning WHERE program = 'cut') AS balances_match
  FROM loyalty.member WHERE program = 'cut';

-- Resumable: chunks as a function (for a caller inside a transaction),
-- the run's place kept in loyalty.backfill_run.
SELECT loyalty.create_program('res', 'USD', 1, 0, NULL);
CREATE TABLE orders_res (LIKE src);
ALTER TABLE orders_res OWNER TO regress_backfill_dba;
INSERT INTO orders_res SELECT * FROM src WHERE id <= 30;
-- Orders without a time earn last, by order id, at the time they are seen.
INSERT INTO orders_res VALUES (31, 'm1', 100, 'USD', 'paid', 0, NULL), (32, 'm2', 100, 'USD', 'paid', 0, NULL);
SET ROLE regress_backfill_dba;
SET client_min_messages = error;
SELECT loyalty.attach_orders('res', 'orders_res', 'id', 'customer', 'total', 'currency', 'status', 'refunded', 'placed_at');
RESET client_min_messages;
SELECT loyalty.backfill_orders_chunk('res', 'orders_res', chunk_size => 10);
SELECT loyalty.backfill_orders_chunk('res', 'orders_res', chunk_size => 10);
SELECT phase, after_time, after_id, orders_done, chunks, finished_at IS NULL AS unfinished
  FROM loyalty.backfill_run WHERE program = 'res';
-- An unfinished run with other settings is refused ...
SELECT loyalty.backfill_orders_chunk('res', 'orders_res', mode => 'history');
-- ... and a chunk rolled back leaves the place where it was.
BEGIN;
SELECT loyalty.backfill_orders_chunk('res', 'orders_res', chunk_size => 10);
ROLLBACK;
SELECT after_id, orders_done FROM loyalty.backfill_run WHERE program = 'res';
-- The procedure resumes the run; it cannot run inside a transaction block.
BEGIN;
CALL loyalty.backfill_orders('res', 'orders_res', chunk_size => 10);
ROLLBACK;
CALL loyalty.backfill_orders('res', 'orders_res', chunk_size => 10);
SELECT phase, orders_done, chunks, finished_at IS NOT NULL AS finished FROM loyalty.backfill_run WHERE program = 'res';
RESET ROLE;
SELECT count(*) AS orders, count(*) FILTER (WHERE ordered_at > now() - interval '1 hour') AS seen_now
  FROM loyalty.order_earning WHERE program = 'res';
-- No order earned twice.
SELECT order_id FROM loyalty.ledger WHERE program = 'res' AND kind = 'earn' GROUP BY 1 HAVING count(*) > 1;

-- Bad calls: clear errors, nothing written.
SET ROLE regress_backfill_dba;
CALL loyalty.backfill_orders(NULL, 'orders_res');
CALL loyalty.backfill_orders('nope', 'orders_res');
CALL loyalty.backfill_orders('res', NULL);
CALL loyalty.backfill_orders('live', 'orders_res');
CALL loyalty.backfill_orders('res', 'orders_res', mode => 'points');
CALL loyalty.backfill_orders('res', 'orders_res', mode => NULL);
CALL loyalty.backfill_orders('res', 'orders_res', mode => 'history', earn_from => '2024-01-01');
CALL loyalty.backfill_orders('res', 'orders_res', chunk_size => 0);
CALL loyalty.backfill_orders('res', 'orders_res', chunk_size => -5);
CALL loyalty.backfill_orders('res', 'src');
RESET ROLE;
-- An admin who does not own the table, and the application, may not.
SET ROLE regress_backfill_admin_only;
CALL loyalty.backfill_orders('res', 'orders_res');
RESET ROLE;
SET ROLE regress_backfill_app;
CALL loyalty.backfill_orders('res', 'orders_res');
SELECT loyalty.backfill_orders_chunk('res', 'orders_res');
SELECT * FROM loyalty.backfill_run;
RESET ROLE;
SELECT check_name FROM loyalty.verify() WHERE NOT ok;

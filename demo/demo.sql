-- The loyalty demo on the UCI "Online Retail" data set (demo/data/README.md):
-- a UK giftware shop's real invoices flow into its own orders table, the
-- accrual trigger earns points as they arrive, cancellations refund, members
-- redeem, points expire, and the books prove out.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
SET timezone = 'Europe/London';
SET datestyle = 'ISO, DMY';

\echo
\echo '== 1. Install the extension and create the program'
\echo '   1 point per GBP 1, 7 days pending (the return window), points expire after a year,'
\echo '   a refund after spending leaves a debt, order times are London local time.'
CREATE EXTENSION loyalty;
SELECT loyalty.create_program('uk_gifts', base_currency => 'GBP', earn_rate => 1, pending_days => 7,
                              expire_after => '1 year', refund_policy => 'debt',
                              timezone => 'Europe/London') AS program;
\echo '   A 4-level ladder on 12 months of net spend: higher tiers earn more points per GBP.'
SELECT loyalty.set_tier_ladder('uk_gifts',
    'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2');
SELECT level, tier, threshold, multiplier FROM loyalty.program_tier WHERE program = 'uk_gifts' ORDER BY level;

\echo
\echo '== 2. The shop''s own tables; attach the accrual trigger to its orders'
CREATE SCHEMA shop;
CREATE TABLE shop.invoice_lines (
    invoice_no text, stock_code text, description text, quantity integer,
    invoice_date timestamp, unit_price numeric(12, 3), customer_id integer, country text);
\copy shop.invoice_lines FROM PROGRAM 'gzip -dc demo/data/online_retail.csv.gz' WITH (FORMAT csv, HEADER)
CREATE TABLE shop.orders (
    order_no    text PRIMARY KEY,
    customer_id integer,             -- NULL: a guest order
    country     text,                -- the invoice's country
    billing_country text,            -- the customer's usual country
    total       numeric(12, 2),
    currency    text NOT NULL DEFAULT 'GBP',
    status      text NOT NULL DEFAULT 'paid',
    refunded    numeric(12, 2) NOT NULL DEFAULT 0,
    placed_at   timestamp NOT NULL   -- shop-local time
);
SELECT loyalty.attach_orders('uk_gifts', 'shop.orders', order_id => 'order_no', member_id => 'customer_id',
                             amount => 'total', currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at',
                             billing_country => 'billing_country', ip_country => 'country') AS trigger;
SELECT count(*) AS invoice_lines, count(DISTINCT invoice_no) AS invoices,
       count(DISTINCT customer_id) AS customers
  FROM shop.invoice_lines;

\echo
\echo '== 3. A year of orders, one per invoice, inserted in time order: the trigger earns on each'
\echo '   The fraud signals the data allows: the invoice''s country stands for the IP country, the'
\echo '   customer''s most frequent country for the billing country (kept as keyed hashes only).'
\timing on
WITH usual AS (
    SELECT customer_id, mode() WITHIN GROUP (ORDER BY country) AS country
      FROM shop.invoice_lines WHERE customer_id IS NOT NULL GROUP BY customer_id
)
INSERT INTO shop.orders (order_no, customer_id, country, billing_country, total, placed_at)
SELECT l.invoice_no, min(l.customer_id), min(l.country), min(u.country), sum(l.quantity * l.unit_price),
       min(l.invoice_date)
  FROM shop.invoice_lines l LEFT JOIN usual u USING (customer_id)
 WHERE l.invoice_no NOT LIKE 'C%'
 GROUP BY l.invoice_no
 ORDER BY min(l.invoice_date), l.invoice_no;
\timing off
SELECT count(*) AS orders,
       count(*) FILTER (WHERE customer_id IS NULL) AS guest_orders,
       count(*) FILTER (WHERE total <= 0) AS non_positive_orders,
       (SELECT count(*) FROM loyalty.member WHERE program = 'uk_gifts') AS members_enrolled,
       (SELECT sum(points) FROM loyalty.ledger WHERE program = 'uk_gifts' AND kind = 'earn') AS points_earned
  FROM shop.orders;

\echo
\echo '== 4. Cancellation invoices refund the customer''s latest earlier order: points are reversed'
WITH cancellation AS (
    SELECT invoice_no, min(customer_id) AS customer_id, -sum(quantity * unit_price) AS amount,
           min(invoice_date) AS at
      FROM shop.invoice_lines
     WHERE invoice_no LIKE 'C%' AND customer_id IS NOT NULL
     GROUP BY invoice_no
), refund AS (
    SELECT o.order_no, sum(c.amount) AS amount
      FROM cancellation c
      CROSS JOIN LATERAL (SELECT order_no FROM shop.orders o
                           WHERE o.customer_id = c.customer_id AND o.placed_at <= c.at AND o.total > 0
                           ORDER BY o.placed_at DESC LIMIT 1) o
     GROUP BY o.order_no
)
UPDATE shop.orders o
   SET refunded = least(o.total, r.amount),
       status = CASE WHEN r.amount >= o.total THEN 'refunded' ELSE o.status END
  FROM refund r
 WHERE o.order_no = r.order_no;
SELECT count(*) FILTER (WHERE status = 'refunded') AS orders_fully_refunded,
       count(*) FILTER (WHERE status <> 'refunded' AND refunded > 0) AS orders_partly_refunded,
       (SELECT -sum(points) FROM loyalty.ledger WHERE program = 'uk_gifts' AND kind = 'reverse') AS points_reversed,
       (SELECT count(*) FROM loyalty.member WHERE program = 'uk_gifts' AND debt > 0) AS members_in_debt
  FROM shop.orders;

\echo
\echo '== 5. A cross-border order (illustrative, not in the data set): EUR before its FX rate exists'
\echo '   The insert succeeds; the event waits in loyalty.dead_letter until the rate is set.'
INSERT INTO shop.orders (order_no, customer_id, country, total, currency, placed_at)
VALUES ('EU-0001', 12347, 'Iceland', 120.00, 'EUR', '2011-12-09 10:00');
SELECT order_id, currency, reason, sqlstate FROM loyalty.dead_letter WHERE resolved_at IS NULL;
SELECT loyalty.set_fx_rate('GBP', 'EUR', 1.17, '2011-01-01');
SELECT loyalty.retry_dead_letters('uk_gifts') AS letters_resolved;
SELECT order_id, amount, currency, round(fx_rate, 4) AS fx_rate, points
  FROM loyalty.order_earning WHERE order_id = 'EU-0001';

\echo
\echo '== 6. The five biggest balances redeem 500 points each on 9 Dec 2011; one is cancelled'
SELECT m.member_id, loyalty.redeem('uk_gifts', m.member_id, 500, 'voucher-' || m.member_id,
                                   '2011-12-09 18:00') AS ledger_id
  FROM (SELECT member_id FROM loyalty.member WHERE program = 'uk_gifts'
         ORDER BY balance DESC, member_id LIMIT 5) m
 ORDER BY 1;
SELECT loyalty.cancel_redemption('uk_gifts', 'voucher-14646') AS unredeem_id;

\echo
\echo '== 7. Expiry on 10 Dec 2011: points earned more than a year ago leave the balance'
SELECT loyalty.expire_points('uk_gifts', '2011-12-10') AS points_expired;

\echo
\echo '== 8. Top members, balances as of 10 Dec 2011'
SELECT m.member_id, o.country, o.orders, b.available, b.pending, b.lifetime_earned, b.lifetime_redeemed,
       b.next_expiry::date AS next_expiry, b.next_expiry_points
  FROM loyalty.member m
  CROSS JOIN LATERAL loyalty.balance('uk_gifts', m.member_id, '2011-12-10') b
  JOIN (SELECT customer_id::text AS member_id, min(country) AS country, count(*) AS orders
          FROM shop.orders GROUP BY 1) o USING (member_id)
 WHERE m.program = 'uk_gifts'
 ORDER BY b.available DESC, m.member_id
 LIMIT 10;

\echo
\echo '== 9. Points by country (members, outstanding points, share of all points)'
SELECT o.country, count(*) AS members, sum(m.balance) AS points_outstanding,
       sum(m.lifetime_earned) AS points_earned,
       round(100.0 * sum(m.balance) / sum(sum(m.balance)) OVER (), 1) AS pct_outstanding
  FROM loyalty.member m
  JOIN (SELECT DISTINCT ON (customer_id) customer_id::text AS member_id, country
          FROM shop.orders WHERE customer_id IS NOT NULL ORDER BY customer_id, placed_at DESC) o USING (member_id)
 WHERE m.program = 'uk_gifts'
 GROUP BY o.country
 ORDER BY points_outstanding DESC
 LIMIT 12;

\echo
\echo '== 10. The points liability on the balance sheet (valued at GBP 0.01 per point)'
SELECT count(*) AS members,
       sum(balance) AS points_outstanding,
       sum(debt) AS points_owed_by_members,
       to_char(sum(balance) * 0.01, 'FM999,999,990.00') AS liability_gbp,
       sum(lifetime_earned) AS earned, sum(lifetime_redeemed) AS redeemed,
       sum(lifetime_reversed) AS reversed, sum(lifetime_expired) AS expired
  FROM loyalty.member WHERE program = 'uk_gifts';

\echo
\echo '== 11. RFM: every member scored as of the day after the last invoice, over a year'
SELECT loyalty.score_rfm('uk_gifts', '2011-12-10 00:00 Europe/London', '365 days') AS members_scored;
SELECT segment, count(*) AS members,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct_members,
       round(avg(recency_days)) AS avg_recency_days, round(avg(frequency), 1) AS avg_orders,
       round(avg(monetary), 2) AS avg_spend_gbp,
       round(100.0 * sum(monetary) / sum(sum(monetary)) OVER (), 1) AS pct_revenue
  FROM loyalty.member_rfm WHERE program = 'uk_gifts'
 GROUP BY segment ORDER BY members DESC;

\echo
\echo '== 12. Tiers: recalculated on 10 Dec 2011 (downgrades wait 30 days of grace)'
SELECT * FROM loyalty.recalculate_tiers('uk_gifts', '2011-12-10 00:00 Europe/London');
SELECT tier, members, round(100 * member_share, 1) AS pct_members
  FROM loyalty.tier_distribution WHERE program = 'uk_gifts' ORDER BY level;
SELECT reason, count(*) AS changes FROM loyalty.tier_history WHERE program = 'uk_gifts' GROUP BY 1 ORDER BY 1;

\echo
\echo '== 13. KPIs by month (from loyalty.kpi_daily) and lifecycle stages on 10 Dec 2011'
SELECT to_char(day, 'YYYY-MM') AS month, sum(orders) AS orders, round(sum(gmv)) AS gmv_gbp,
       round(sum(gmv) / nullif(sum(orders), 0), 2) AS aov_gbp, sum(new_members) AS new_members,
       sum(points_earned) AS points_earned
  FROM loyalty.kpi_daily WHERE program = 'uk_gifts' AND day < '2012-01-01'
 GROUP BY 1 ORDER BY 1;
SELECT stage, count(*) AS members
  FROM loyalty.member_lifecycle_at('uk_gifts', '2011-12-10 00:00 Europe/London')
 GROUP BY stage ORDER BY members DESC;

\echo
\echo '== 14. Coupons: a stepped GBP win-back campaign for the At Risk members'
\echo '   spend 50 GBP get 5 GBP off, spend 100 GBP get 15 GBP off; one use per member, a 5,000 GBP budget,'
\echo '   only members of the RFM segment At Risk may redeem.'
SELECT loyalty.create_campaign('uk_gifts', 'winback_dec11',
                               'spend 50 GBP get 5 GBP off | spend 100 GBP get 15 GBP off',
                               per_member_limit => 1, budget => 5000, audience => 'At Risk') AS campaign;
\echo '   One code per At Risk member, e-mailed on 10 Dec 2011 (issue_codes dates codes now();'
\echo '   the demo replays December 2011, so it dates them that morning).'
SELECT count(*) AS codes_issued
  FROM loyalty.member_rfm r
 CROSS JOIN LATERAL loyalty.issue_codes('uk_gifts', 'winback_dec11', 1, r.member_id) c
 WHERE r.program = 'uk_gifts' AND r.segment = 'At Risk';
UPDATE loyalty.coupon_code SET issued_at = '2011-12-10 09:00'
 WHERE program = 'uk_gifts' AND campaign = 'winback_dec11';
\echo '   Every third of them comes back between 12 and 23 Dec 2011 with a basket worth their average'
\echo '   order; checkout validates the code, redeems it on the new order and inserts the order, less'
\echo '   the discount, in one statement.  Baskets under 50 GBP pay full price.'
CREATE TEMP TABLE comeback AS
SELECT r.member_id, loyalty.coupon_code_display(k.code) AS code, 'WB-' || r.member_id AS order_no, a.country,
       timestamp '2011-12-12 10:00' + (n / 3 % 12) * interval '1 day' + (n % 7) * interval '1 hour' AS placed_at,
       jsonb_build_object('currency', 'GBP', 'country', 'GB',
                          'items', jsonb_build_array(jsonb_build_object('sku', 'BASKET', 'qty', 1,
                                                                        'price', round(a.avg_total, 2)))) AS cart,
       round(a.avg_total, 2) AS basket
  FROM (SELECT r.*, row_number() OVER (ORDER BY r.member_id) AS n
          FROM loyalty.member_rfm r WHERE r.program = 'uk_gifts' AND r.segment = 'At Risk') r
  JOIN loyalty.coupon_code k ON k.program = r.program AND k.member_id = r.member_id AND k.campaign = 'winback_dec11'
 CROSS JOIN LATERAL (SELECT avg(o.total) AS avg_total, min(o.country) AS country FROM shop.orders o
                      WHERE o.customer_id::text = r.member_id AND o.total > 0) a
 WHERE r.n % 3 = 0;
SELECT v.ok, v.reason, count(*) AS members, sum(v.discount) AS discount_gbp
  FROM comeback c CROSS JOIN LATERAL loyalty.validate_coupon('uk_gifts', c.code, c.member_id, c.cart, c.placed_at) v
 GROUP BY 1, 2 ORDER BY 1 DESC, 2;
WITH checkout AS (
    SELECT c.*, CASE WHEN (loyalty.validate_coupon('uk_gifts', c.code, c.member_id, c.cart, c.placed_at)).ok
                     THEN loyalty.redeem_coupon('uk_gifts', c.code, c.member_id, c.cart, c.order_no, c.placed_at)
                     ELSE 0 END AS discount
      FROM comeback c
)
INSERT INTO shop.orders (order_no, customer_id, country, total, placed_at)
SELECT order_no, member_id::integer, country, basket - discount, placed_at FROM checkout;
\echo '   Two of those orders are cancelled: their coupons are released (counted nowhere, budget given back).'
UPDATE shop.orders SET status = 'cancelled'
 WHERE order_no IN (SELECT r.order_ref FROM loyalty.coupon_redemption r
                     WHERE r.program = 'uk_gifts' AND r.campaign = 'winback_dec11' ORDER BY r.order_ref LIMIT 2);
SELECT campaign, redeemed_count, spent_base AS spent_gbp, budget FROM loyalty.coupon_campaign WHERE program = 'uk_gifts';
\echo '   loyalty.coupon_performance, by day (London time): codes, redemptions, cost, GMV, AOV with and'
\echo '   without a coupon, ROI (GMV / discount cost).'
SELECT day, codes_issued, redemptions, redemption_rate, discount_cost, coupon_orders, gmv,
       aov_with_coupon, aov_without_coupon, roi
  FROM loyalty.coupon_performance WHERE program = 'uk_gifts' ORDER BY day;

\echo
\echo '== 15. Fraud checks over the year, with the default thresholds (docs/fraud.md, "On real data")'
\echo '   No abuse was planted here: what is flagged is how real customers of a giftware wholesaler'
\echo '   behave.  The data has no device, card, address, email or phone, so shared_fingerprint,'
\echo '   coupon_farming and referral_ring have nothing to match; there are no referrals and no'
\echo '   first-order coupons.'
SELECT loyalty.fraud_check('uk_gifts', '2010-12-01 00:00 Europe/London', '2011-12-10 00:00 Europe/London') AS flags_raised;
SELECT r.rule, count(f.id) AS flags, count(DISTINCT f.member_id) AS members,
       round(100.0 * count(DISTINCT f.member_id) / (SELECT count(*) FROM loyalty.member WHERE program = 'uk_gifts'), 2)
           AS pct_members
  FROM unnest(loyalty.fraud_rule_names()) r(rule)
  LEFT JOIN loyalty.fraud_flag f ON f.program = 'uk_gifts' AND f.rule = r.rule
 GROUP BY r.rule ORDER BY members DESC, r.rule;
SELECT count(DISTINCT f.member_id) AS members_flagged,
       round(100.0 * count(DISTINCT f.member_id) / (SELECT count(*) FROM loyalty.member WHERE program = 'uk_gifts'), 2)
           AS pct_members,
       (SELECT count(*) FROM loyalty.member WHERE program = 'uk_gifts' AND status = 'held') AS members_held
  FROM loyalty.fraud_flag f WHERE f.program = 'uk_gifts';
\echo '   Who they are (the first 12): orders over the year, average invoice, the flagged orders.'
SELECT f.member_id, f.rule, f.subject, o.orders, o.avg_invoice_gbp, o.country,
       jsonb_array_length(f.evidence -> 'orders') AS orders_in_evidence
  FROM loyalty.fraud_flag f
  JOIN (SELECT customer_id::text AS member_id, count(*) AS orders, round(avg(total)) AS avg_invoice_gbp,
               min(country) AS country
          FROM shop.orders WHERE total > 0 GROUP BY 1) o USING (member_id)
 WHERE f.program = 'uk_gifts'
 ORDER BY f.rule, f.member_id, f.subject
 LIMIT 12;
\echo '   The near misses, counted from the shop''s own orders (nothing raised): customers who ordered'
\echo '   from another country, and customers refunding a quarter of what they ordered.'
SELECT count(*) FILTER (WHERE mismatched >= 1 AND both_known >= 2) AS members_with_an_order_abroad,
       count(*) FILTER (WHERE mismatched >= 2 AND mismatched >= 0.5 * both_known) AS geo_mismatch_at_default
  FROM (SELECT o.customer_id, count(*) FILTER (WHERE o.country <> o.billing_country) AS mismatched,
               count(*) AS both_known
          FROM shop.orders o WHERE o.customer_id IS NOT NULL AND o.billing_country IS NOT NULL GROUP BY 1) g;
SELECT count(*) FILTER (WHERE refunded >= 0.25 * ordered) AS members_refunding_a_quarter,
       count(*) FILTER (WHERE refunded >= 0.5 * ordered) AS refund_ratio_at_default
  FROM (SELECT customer_id, count(*) AS orders, sum(total) AS ordered,
               sum(CASE WHEN status = 'refunded' THEN total ELSE refunded END) AS refunded
          FROM shop.orders WHERE customer_id IS NOT NULL AND total > 0 GROUP BY 1) r
 WHERE orders >= 4;

\echo
\echo '== 16. The books: loyalty.verify() proves cached balances equal the ledger'
SELECT * FROM loyalty.verify();

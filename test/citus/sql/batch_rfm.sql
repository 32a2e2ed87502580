-- score_rfm on real data through the coordinator (issue 13: the RFM
-- real-data test on the cluster): the invoices of test/data/retail_sample.csv
-- (UCI Online Retail) earn through an orders table distributed by customer,
-- so the members spread over both workers; the quintiles are global ranks,
-- checked against a plain-SQL computation over the shop's own rows.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- Whether a program's members live on every worker (true on one node).
CREATE FUNCTION members_on_every_worker(p text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ids text[] := ARRAY(SELECT m.member_id FROM loyalty.member m WHERE m.program = p);
    nodes integer;
BEGIN
    IF NOT loyalty.distributed() THEN
        RETURN true;
    END IF;
    EXECUTE 'SELECT count(DISTINCT s.nodeport) FROM unnest($1) AS i(member_id)
               JOIN pg_dist_shard_placement s
                 ON s.shardid = get_shard_id_for_distribution_column(''loyalty.member'', i.member_id)
              WHERE s.nodeport <> (SELECT n.nodeport FROM pg_dist_node n WHERE n.groupid = 0)'
       INTO nodes USING ids;
    RETURN nodes = 2;
END
$$;
SELECT loyalty.create_program('rfm_uk', 'GBP', 1, 0, NULL, 'debt', 'Europe/London');
CREATE TABLE uk_invoices (invoice_no text, customer_id integer, country text, total numeric, invoice_date timestamp);
\copy uk_invoices FROM 'test/data/retail_sample.csv' WITH (FORMAT csv, HEADER)
-- The shop's book (a plain table): the invoices with a customer, and each
-- cancellation refunding the customer's latest earlier invoice.
CREATE TABLE uk_book AS
SELECT invoice_no, customer_id::text AS customer_id, total, 'paid'::text AS status, 0::numeric AS refunded, invoice_date
  FROM uk_invoices WHERE invoice_no NOT LIKE 'C%' AND customer_id IS NOT NULL;
WITH refund AS (
    SELECT o.invoice_no, sum(-c.total) AS amount
      FROM uk_invoices c
      CROSS JOIN LATERAL (SELECT invoice_no FROM uk_book o
                           WHERE o.customer_id = c.customer_id::text AND o.invoice_date <= c.invoice_date AND o.total > 0
                           ORDER BY o.invoice_date DESC, o.invoice_no DESC LIMIT 1) o
     WHERE c.invoice_no LIKE 'C%'
     GROUP BY o.invoice_no)
UPDATE uk_book o SET refunded = least(o.total, r.amount),
                     status = CASE WHEN r.amount >= o.total THEN 'refunded' ELSE 'paid' END
  FROM refund r WHERE o.invoice_no = r.invoice_no;

-- The orders table, distributed by customer on the cluster: orders come in,
-- then the refunds, as the shop would write them.
CREATE TABLE uk_orders (invoice_no text, customer_id text NOT NULL, total numeric,
                        status text DEFAULT 'paid', refunded numeric DEFAULT 0, invoice_date timestamp,
                        PRIMARY KEY (invoice_no, customer_id));
SELECT test_distribute('uk_orders', 'customer_id');
SELECT loyalty.attach_orders('rfm_uk', 'uk_orders', 'invoice_no', 'customer_id', 'total',
                             status => 'status', refunded_amount => 'refunded', created_at => 'invoice_date');
INSERT INTO uk_orders (invoice_no, customer_id, total, invoice_date)
SELECT invoice_no, customer_id, total, invoice_date FROM uk_book ORDER BY invoice_date;
DO $$
DECLARE
    b record;
BEGIN
    FOR b IN SELECT * FROM uk_book WHERE refunded > 0 ORDER BY invoice_no LOOP
        UPDATE uk_orders SET refunded = b.refunded, status = b.status
         WHERE invoice_no = b.invoice_no AND customer_id = b.customer_id;
    END LOOP;
END $$;
SELECT count(*) AS orders, count(DISTINCT customer_id) AS customers,
       count(*) FILTER (WHERE status = 'refunded') AS refunded, count(*) FILTER (WHERE refunded > 0) AS with_refund
  FROM uk_orders;
SELECT count(*) AS earnings, count(DISTINCT member_id) AS members FROM loyalty.order_earning WHERE program = 'rfm_uk';
SELECT members_on_every_worker('rfm_uk') AS spread;

-- As of the day after the last invoice, over a year.
SELECT loyalty.score_rfm('rfm_uk', '2011-12-10 00:00 Europe/London', '365 days');

-- The same scores computed independently, in plain SQL from the shop's book.
CREATE TABLE uk_expected AS
WITH o AS (
    SELECT customer_id AS member_id, invoice_date AT TIME ZONE 'Europe/London' AS at, total - refunded AS net
      FROM uk_book
     WHERE status <> 'refunded' AND total > 0 AND refunded < total
       AND invoice_date AT TIME ZONE 'Europe/London' > '2011-12-10 00:00 Europe/London'::timestamptz - interval '365 days'
       AND invoice_date AT TIME ZONE 'Europe/London' <= '2011-12-10 00:00 Europe/London'::timestamptz
), per_member AS (
    SELECT member_id,
           floor(extract(epoch FROM '2011-12-10 00:00 Europe/London'::timestamptz - max(at)) / 86400)::integer AS recency_days,
           count(*)::integer AS frequency, sum(net) AS monetary
      FROM o GROUP BY member_id HAVING sum(net) > 0
), ranked AS (
    SELECT *, count(*) OVER () AS n,
           rank() OVER (ORDER BY recency_days DESC) AS r_rank,
           rank() OVER (ORDER BY frequency) AS f_rank,
           rank() OVER (ORDER BY monetary) AS m_rank
      FROM per_member
)
SELECT member_id, recency_days, frequency, monetary,
       1 + 5 * (r_rank - 1) / n AS r, 1 + 5 * (f_rank - 1) / n AS f, 1 + 5 * (m_rank - 1) / n AS m
  FROM ranked;
CREATE TABLE uk_scored AS
SELECT member_id, recency_days, frequency, monetary, rfm::text AS rfm FROM loyalty.member_rfm WHERE program = 'rfm_uk';

SELECT count(*) AS members,
       count(*) FILTER (WHERE s.member_id IS NULL) AS only_in_plain_sql,
       count(*) FILTER (WHERE e.member_id IS NULL) AS only_in_loyalty,
       count(*) FILTER (WHERE (s.recency_days, s.frequency, s.monetary) IS DISTINCT FROM
                              (e.recency_days, e.frequency, e.monetary)) AS value_mismatches,
       count(*) FILTER (WHERE s.rfm IS DISTINCT FROM (e.r::text || e.f::text || e.m::text)) AS score_mismatches
  FROM uk_expected e
  FULL JOIN uk_scored s USING (member_id);
-- Every score appears, about a fifth of the members each; a quintile's
-- members live on both workers.
SELECT left(rfm, 1) AS r, count(*) FROM uk_scored GROUP BY 1 ORDER BY 1;
SELECT member_id, recency_days, frequency, monetary, rfm, segment
  FROM loyalty.member_rfm WHERE program = 'rfm_uk' ORDER BY monetary DESC, member_id LIMIT 5;
SELECT segment, count(*) FROM loyalty.member_rfm WHERE program = 'rfm_uk' GROUP BY 1 ORDER BY 2 DESC, 1;
-- A second pass as of a month later changes what moved, nothing else.
SELECT loyalty.score_rfm('rfm_uk', '2012-01-10 00:00 Europe/London', '365 days');
SELECT count(*) AS scored FROM loyalty.member_rfm WHERE program = 'rfm_uk';

-- Tiers on spend (the activity, through member_activity_cluster on the
-- cluster): all at once, then in chunks half a year later.
SELECT loyalty.set_tier_ladder('rfm_uk', 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2');
SELECT * FROM loyalty.recalculate_tiers('rfm_uk', '2011-12-10 00:00 Europe/London');
SELECT * FROM loyalty.recalculate_tiers_chunk('rfm_uk', '2012-06-10 00:00 Europe/London', NULL, 150);
SELECT * FROM loyalty.recalculate_tiers_chunk('rfm_uk', '2012-06-10 00:00 Europe/London', '18000', 1000);
SELECT tier, count(*) FROM loyalty.member WHERE program = 'rfm_uk' GROUP BY 1 ORDER BY 1;
SELECT * FROM loyalty.tier_distribution WHERE program = 'rfm_uk' ORDER BY level;
-- Fraud rules over the real orders (velocity and refund ratio read the
-- orders and their signals on every node).
SELECT loyalty.set_hold_threshold('rfm_uk', 100);
SELECT loyalty.fraud_check('rfm_uk', '2010-12-01', '2011-12-10') AS new_flags;
SELECT rule, count(*), count(DISTINCT member_id) AS members FROM loyalty.fraud_flag WHERE program = 'rfm_uk'
 GROUP BY 1 ORDER BY 1;
-- BI over the cluster: order values and the daily KPIs.
SELECT count(*), sum(gross) AS gross, sum(net) AS net FROM loyalty.order_value WHERE program = 'rfm_uk';
SELECT count(*) AS days, sum(orders) AS orders, sum(gmv) AS gmv, sum(new_members) AS new_members
  FROM loyalty.kpi_daily WHERE program = 'rfm_uk';
SELECT * FROM loyalty.kpi_daily WHERE program = 'rfm_uk' AND day < '2012-01-01' ORDER BY day DESC LIMIT 3;
SELECT check_name, ok FROM loyalty.verify('rfm_uk');

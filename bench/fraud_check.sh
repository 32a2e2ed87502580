#!/usr/bin/env bash
# Benchmark (not a test): loyalty.fraud_check against plain SQL finding the
# same (member, rule) pairs (test/fraud/mirror.sql), in one run on the same
# data on one throwaway cluster.
#
# Data (bench/fraud_check_data.sql): ORDERS orders of ORDERS/10 members over
# 12 weeks written straight into the tables the accrual and signal triggers
# keep, fingerprints hashed with loyalty.signal_hash, plus ledger rows,
# first-order coupon redemptions and referrals, with planted abuse of every
# rule (a few members per 10,000).
#
# Prints the seconds of fraud_check (which also writes each flag with its
# evidence and holds the members over the threshold) and of the plain SQL
# (which only lists the pairs), the ratio, the pairs found by each and how
# many differ (0 expected).  Exits non-zero when they differ.
# Usage: bash bench/fraud_check.sh [orders]    (default 10000000)
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ORDERS=${1:-10000000}
setup_toolchain
ensure_packages bc
build_install
start_cluster "shared_buffers=2GB" "work_mem=256MB" "maintenance_work_mem=1GB" "max_wal_size=8GB" \
	"checkpoint_timeout=30min" "synchronous_commit=off"
DB=loyalty_bench
psql_q -d postgres -c "CREATE DATABASE $DB"

log "generating $ORDERS orders of $((ORDERS / 10)) members"
SECONDS=0
cd "$ROOT"
psql_q -d "$DB" -c 'CREATE EXTENSION loyalty'
psql_q -d "$DB" -v orders="$ORDERS" -f bench/fraud_check_data.sql
psql_q -d "$DB" -f test/fraud/mirror.sql
log "generated in ${SECONDS}s"

SINCE="'2026-01-01 00:00+00'"
AS_OF="'2026-04-01 00:00+00'"

# JIT off on both sides (compiling costs more than it saves here).
timed() {
	psql_q -d "$DB" -At <<SQL | tail -n 1
SET client_min_messages = warning;
SET jit = off;
SELECT clock_timestamp() AS t0 \gset
$1
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 2);
SQL
}

# Both read the same tables: read them once first so neither pays the cold cache.
psql_q -d "$DB" -At -c "SELECT count(*) FROM loyalty.order_earning" -c "SELECT count(*) FROM loyalty.order_signal" \
	-c "SELECT count(*) FROM loyalty.ledger" >/dev/null

log "plain SQL (test/fraud/mirror.sql)"
plain=$(timed "CREATE TABLE mirror_flags AS SELECT * FROM fraud_mirror.flags('bench', $SINCE, $AS_OF);")
log "loyalty.fraud_check"
check=$(timed "SELECT loyalty.fraud_check('bench', $SINCE, $AS_OF);")

read -r pairs_check pairs_plain differ held <<<"$(psql_q -d "$DB" -At -F ' ' -c "
WITH f AS (SELECT DISTINCT member_id, rule FROM loyalty.fraud_flag WHERE program = 'bench'),
     m AS (SELECT DISTINCT member_id, rule FROM mirror_flags)
SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM m),
       (SELECT count(*) FROM ((SELECT * FROM f EXCEPT SELECT * FROM m) UNION ALL (SELECT * FROM m EXCEPT SELECT * FROM f)) d),
       (SELECT count(*) FROM loyalty.member_hold WHERE program = 'bench' AND released_at IS NULL)")"
psql_q -d "$DB" -c "SELECT rule, count(*) AS flags, count(DISTINCT member_id) AS members
                      FROM loyalty.fraud_flag WHERE program = 'bench' GROUP BY rule ORDER BY rule"

printf 'orders %d   fraud_check %.2f s   plain SQL %.2f s   ratio %.2fx   pairs %d (plain %d, differing %d)   members held %d\n' \
	"$ORDERS" "$check" "$plain" "$(echo "scale=2; $plain / $check" | bc)" "$pairs_check" "$pairs_plain" "$differ" "$held"
[ "$differ" -eq 0 ]

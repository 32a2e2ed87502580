#!/usr/bin/env bash
# Benchmark (not a test): loyalty on a Citus cluster against one node.
# A coordinator and two workers (test/citus/lib.sh) and a plain single node
# run side by side on this machine.  Both get the same program and the
# same order history: 3 orders for each of MEMBERS members in the last
# year, inserted through the orders table (members enroll and earn with
# their first order; a side where orders do not earn gets its members and
# points through enroll and earn instead, so that redemptions can still be
# measured).  Then, in the same run, pgbench (4 clients, 2 threads, SECONDS
# each, logged in as a member of loyalty_app) measures on each side:
#   insert   one order per transaction into an orders table distributed by
#            customer (colocated with loyalty.member) with loyalty attached;
#            on the single node the same table, local;
#   bare     the same INSERT into the same table without loyalty attached;
#   redeem   loyalty.redeem of 1 point (through the coordinator);
# and times loyalty.score_rfm over the same members (best of 2).  It prints
# TPS, cluster/single and loyalty/bare, the CPU time and the WAL each node
# spent per transaction, and the storage a member and an order take.  A
# workload that fails on a side prints FAILED and its first error, not a
# figure.  All nodes share this machine's cores and run with fsync=off: the
# figures are the overhead of distribution (planning, a hop to the worker,
# two-phase commit where several nodes are written), not its scale.
# Usage: bash bench/citus.sh [members] [seconds]
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
. "$ROOT/test/citus/lib.sh"

MEMBERS=${1:-10000}
SECONDS_EACH=${2:-20}
CLIENTS=4
setup_toolchain
ensure_packages bc
citus_install
build_install
citus_start_nodes
DB=loyalty_bench
citus_fresh_db "$DB"
COORD=${CITUS_NODES[0]}
OUT=$CITUS_WORK/bench
mkdir -p "$OUT"
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit+="+changes"

is_figure() { [[ $1 =~ ^[0-9.]+$ ]]; }
port_of() { if [ "$1" = cluster ]; then echo "$COORD"; else echo "$SINGLE_PORT"; fi; }

# The program and the two orders tables, the same on both sides
# (test_distribute distributes on the cluster only).
load() {
	psql_q -p "$(port_of "$1")" -d "$DB" <<SQL
SET client_min_messages = warning;
SELECT loyalty.create_program('bench', 'USD', 1, 0, NULL);
CREATE SEQUENCE order_no;
CREATE TABLE orders_loyalty (id bigint, customer text NOT NULL, total numeric(12, 2), currency text,
                             status text, refunded numeric(12, 2), placed_at timestamptz,
                             PRIMARY KEY (id, customer));
CREATE TABLE orders_bare (LIKE orders_loyalty INCLUDING ALL);
SELECT test_distribute('orders_loyalty', 'customer');
SELECT test_distribute('orders_bare', 'customer');
-- The application logs in as a role of its own, a member of loyalty_app:
-- Citus connects to the workers as the current user, and loyalty_app
-- cannot log in.
CREATE ROLE bench_app LOGIN IN ROLE loyalty_app;
GRANT SELECT, INSERT ON orders_loyalty, orders_bare TO loyalty_app;
GRANT USAGE ON SEQUENCE order_no TO loyalty_app;
SQL
}

# Seconds one statement takes on a side, measured by the server; on an
# error prints FAILED and the error.
timed() {
	local side=$1 sql=$2 res
	if res=$(psql_q -p "$(port_of "$side")" -d "$DB" -At 2>&1 <<SQL
SET client_min_messages = warning;
SELECT clock_timestamp() AS t0 \gset
$sql
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 3);
SQL
	); then
		echo "$res" | tail -n 1
	else
		echo "FAILED: $(echo "$res" | grep -m 1 ERROR)"
	fi
}

# pgbench scripts: pgbench puts the numbers into the literals, so the member
# id is a constant and Citus can route (and delegate) the statement.
cat >"$OUT/insert.sql" <<'SQL'
\set c random(1, :members)
\set a random(500, 99999)
INSERT INTO :tab VALUES (nextval('order_no'), 'm:c', :a / 100.0, 'USD', 'paid', 0, now());
SQL
cat >"$OUT/redeem.sql" <<'SQL'
\set c random(1, :members)
\set r random(1, 1000000000000)
SELECT loyalty.redeem('bench', 'm:c', 1, 'r:r');
SQL

# CPU seconds a node has used so far: its postmaster, the children it has
# reaped (a backend that exited) and the children alive.
TICKS=$(getconf CLK_TCK)
node_cpu() {
	local pm c t=0
	pm=$(head -n 1 "$CITUS_WORK/n$1/postmaster.pid")
	read -r -a f <<<"$(sed 's/^.*) //' "/proc/$pm/stat")"
	t=$((f[11] + f[12] + f[13] + f[14]))
	for c in $(ps -o pid= --ppid "$pm"); do
		read -r -a f <<<"$(sed 's/^.*) //' "/proc/$c/stat" 2>/dev/null || echo "x x x x x x x x x x x 0 0")"
		t=$((t + f[11] + f[12]))
	done
	echo "$t"
}
# Nodes of a side: coordinator, worker, worker (n0-n2) or the single node (n3).
nodes_of() { if [ "$1" = cluster ]; then echo 0 1 2; else echo 3; fi; }
node_port() { if [ "$1" = 3 ]; then echo "$SINGLE_PORT"; else echo "${CITUS_NODES[$1]}"; fi; }
# Bytes of WAL a node has written so far.
node_wal() { psql_q -p "$(node_port "$1")" -d postgres -At -c "SELECT pg_current_wal_lsn() - '0/0'"; }

# TPS of a pgbench script on a side, or FAILED and the first error.  Also
# writes beside its log the CPU milliseconds (.cpu) and the WAL bytes (.wal)
# per transaction each node of the side used: coordinator, worker, worker;
# or the single node.
bench() {
	local side=$1 script=$2 tab=${3:-none} n before=() after=() txns ms=() wal0=() wal=()
	local log=$OUT/$side.$(basename "$script" .sql).$tab.log
	for n in $(nodes_of "$side"); do before[$n]=$(node_cpu "$n"); wal0[$n]=$(node_wal "$n"); done
	if "$PG_BIN/pgbench" -U bench_app -n -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" \
		-D members="$MEMBERS" -D tab="$tab" -p "$(port_of "$side")" -f "$script" "$DB" >"$log" 2>&1 \
		&& ! grep -q 'aborted\|ERROR' "$log"; then
		sleep 1 # the backends of pgbench exit and are reaped
		txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
		for n in $(nodes_of "$side"); do
			after[$n]=$(node_cpu "$n")
			ms+=("$(echo "scale=2; (${after[$n]} - ${before[$n]}) * 1000 / $TICKS / $txns" | bc)")
			wal+=("$(( ($(node_wal "$n") - ${wal0[$n]}) / txns ))")
		done
		echo "${ms[*]}" >"$log.cpu"
		echo "${wal[*]}" >"$log.wal"
		sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log"
	else
		echo "FAILED: $(grep -m 1 'ERROR\|error\|aborted' "$log")"
	fi
}

ratio() { if is_figure "$1" && is_figure "$2"; then echo "scale=2; $1 / $2" | bc; else echo "-"; fi; }

for side in cluster single; do
	log "$side: the program and the orders tables"
	load "$side" >/dev/null
done
# Every order of orders_loyalty has earned (or the insert figure is void).
all_earned() {
	psql_q -p "$(port_of "$1")" -d "$DB" -At -c "
	    SELECT CASE WHEN o = e THEN 'yes' ELSE 'FAILED: ' || e || ' of ' || o || ' orders earned' END
	      FROM (SELECT (SELECT count(*) FROM orders_loyalty) o, (SELECT count(*) FROM loyalty.order_earning) e) c"
}

# Bytes of loyalty's member-keyed tables (indexes included) on the single node.
member_bytes() {
	psql_q -p "$SINGLE_PORT" -d "$DB" -At -c "
	    SELECT sum(pg_total_relation_size(format('loyalty.%I', table_name)::regclass))
	      FROM loyalty.cluster_layout() WHERE layout = 'member'"
}
declare -A hist attached
for side in cluster single; do
	log "$side: attach_orders on orders_loyalty"
	attached[$side]=$(timed "$side" "SELECT loyalty.attach_orders('bench', 'orders_loyalty', 'id', 'customer', 'total',
	    currency => 'currency', status => 'status', refunded_amount => 'refunded', created_at => 'placed_at');")
	if ! is_figure "${attached[$side]}"; then
		hist[$side]="${attached[$side]/FAILED:/FAILED: attach_orders:}"
		continue
	fi
	log "$side: order history, 3 orders a member in the last year (one INSERT ... SELECT)"
	hist[$side]=$(timed "$side" "INSERT INTO orders_loyalty
	    SELECT nextval('order_no'), 'm' || (1 + g % $MEMBERS), 20 + (g % 997) * 0.37, 'USD', 'paid', 0,
	           now() - (g % 360) * interval '1 day' - interval '1 hour'
	      FROM generate_series(1, 3 * $MEMBERS) g;")
	if is_figure "${hist[$side]}"; then
		e=$(all_earned "$side")
		[ "$e" = yes ] || hist[$side]=$e
	fi
done

# Members whose orders did not earn get their points another way.
for side in cluster single; do
	n=$(psql_q -p "$(port_of "$side")" -d "$DB" -At -c "SELECT count(*) FROM loyalty.member WHERE balance > 0")
	[ "$n" = "$MEMBERS" ] && continue
	log "$side: $n of $MEMBERS members have points from orders: enroll and earn instead (for redeem)"
	psql_q -p "$(port_of "$side")" -d "$DB" -At >/dev/null <<SQL
SELECT count(loyalty.enroll('bench', 'm' || g)) FROM generate_series(1, $MEMBERS) g;
SELECT count(loyalty.earn('bench', 'm' || g, 1000000, 'seed-' || g)) FROM generate_series(1, $MEMBERS) g;
SQL
done
orders_count() { psql_q -p "$SINGLE_PORT" -d "$DB" -At -c "SELECT count(*) FROM orders_loyalty"; }
bytes_history=$(member_bytes)
orders_history=$(orders_count)

declare -A tps
for w in insert bare redeem; do
	for side in cluster single; do
		log "$side: $w, $CLIENTS clients, $SECONDS_EACH s"
		case $w in
		insert)
			if ! is_figure "${attached[$side]}"; then
				tps[$side.$w]="${attached[$side]/FAILED:/FAILED: attach_orders:}"
				continue
			fi
			tps[$side.$w]=$(bench "$side" "$OUT/insert.sql" orders_loyalty)
			if is_figure "${tps[$side.$w]}"; then
				e=$(all_earned "$side")
				[ "$e" = yes ] || tps[$side.$w]=$e
			fi
			;;
		bare) tps[$side.$w]=$(bench "$side" "$OUT/insert.sql" orders_bare) ;;
		redeem) tps[$side.$w]=$(bench "$side" "$OUT/redeem.sql") ;;
		esac
	done
done

bytes_after=$(member_bytes)
orders_after=$(orders_count)

# Whether Citus sends a redeem call whole to the member's node.
delegated=$(psql_q -p "$COORD" -d "$DB" -At -c "
    SELECT CASE WHEN count(*) > 0 THEN 'delegated to the member''s node' ELSE 'routed by the coordinator, not delegated' END
      FROM pg_dist_object
     WHERE classid = 'pg_proc'::regclass AND distribution_argument_index IS NOT NULL
       AND objid = 'loyalty.redeem(text, text, bigint, text, timestamptz)'::regprocedure")

declare -A rfm
for side in cluster single; do
	log "$side: loyalty.score_rfm over $MEMBERS members (best of 2)"
	a=$(timed "$side" "SELECT loyalty.score_rfm('bench');")
	b=$(timed "$side" "SELECT loyalty.score_rfm('bench');")
	if is_figure "$a" && is_figure "$b"; then
		rfm[$side]=$(printf '%s\n%s\n' "$a" "$b" | sort -n | head -n 1)
	elif is_figure "$a"; then rfm[$side]=$b; else rfm[$side]=$a; fi
done

# What the sides hold after the run: the books must agree with the orders.
books() {
	psql_q -p "$(port_of "$1")" -d "$DB" -At -F ' ' -c "
	    SELECT (SELECT count(*) FROM orders_loyalty), (SELECT count(*) FROM loyalty.order_earning),
	           (SELECT count(*) FROM loyalty.rfm_score),
	           (SELECT count(*) FILTER (WHERE NOT ok) FROM loyalty.verify())" 2>&1 | tail -n 1
}

cell() { if is_figure "$1"; then printf '%10.0f' "$1"; else printf '%10s' "FAILED"; fi; }
echo
echo "loyalty on Citus (coordinator + 2 workers) vs one node, same machine, same run"
echo "commit $commit; $MEMBERS members; pgbench -n -c $CLIENTS -j 2 -T $SECONDS_EACH as a member of loyalty_app; fsync=off"
printf '%-38s %10s %10s %15s\n' "workload (TPS)" cluster single cluster/single
printf '%-38s %s %s %15s\n' "order insert, loyalty attached" "$(cell "${tps[cluster.insert]}")" "$(cell "${tps[single.insert]}")" "$(ratio "${tps[cluster.insert]}" "${tps[single.insert]}")"
printf '%-38s %s %s %15s\n' "order insert, bare (reference)" "$(cell "${tps[cluster.bare]}")" "$(cell "${tps[single.bare]}")" "$(ratio "${tps[cluster.bare]}" "${tps[single.bare]}")"
printf '%-38s %10s %10s\n' "  loyalty/bare" "$(ratio "${tps[cluster.insert]}" "${tps[cluster.bare]}")" "$(ratio "${tps[single.insert]}" "${tps[single.bare]}")"
printf '%-38s %s %s %15s\n' "loyalty.redeem, 1 point" "$(cell "${tps[cluster.redeem]}")" "$(cell "${tps[single.redeem]}")" "$(ratio "${tps[cluster.redeem]}" "${tps[single.redeem]}")"
echo "  (redeem on the cluster: $delegated)"
printf '%-38s %10s %10s %15s\n' "score_rfm, seconds (best of 2)" "${rfm[cluster]%%:*}" "${rfm[single]%%:*}" "$(ratio "${rfm[cluster]}" "${rfm[single]}")"
printf '%-38s %10s %10s %15s\n' "history load $((3 * MEMBERS)) orders, seconds" "${hist[cluster]%%:*}" "${hist[single]%%:*}" "$(ratio "${hist[cluster]}" "${hist[single]}")"
per_txn() { if [ -f "$OUT/$1.log.$2" ]; then tr ' ' / <"$OUT/$1.log.$2"; else echo -; fi; }
echo
echo "CPU ms per transaction, by node (cluster: coordinator/worker/worker; all nodes share the machine's cores)"
printf '%-38s %22s %10s\n' workload cluster single
for unit in cpu wal; do
	[ $unit = wal ] && { echo; echo "WAL bytes per transaction, by node (the same order)"; }
	printf '%-38s %22s %10s\n' "order insert, loyalty attached" "$(per_txn cluster.insert.orders_loyalty $unit)" "$(per_txn single.insert.orders_loyalty $unit)"
	printf '%-38s %22s %10s\n' "order insert, bare" "$(per_txn cluster.insert.orders_bare $unit)" "$(per_txn single.insert.orders_bare $unit)"
	printf '%-38s %22s %10s\n' "loyalty.redeem" "$(per_txn cluster.redeem.none $unit)" "$(per_txn single.redeem.none $unit)"
done
echo
echo "storage of loyalty's member-keyed tables with their indexes (single node): $((bytes_history / MEMBERS)) bytes a member with $((orders_history / MEMBERS)) orders over a year;"
echo "the $((orders_after - orders_history)) orders of the insert run added $(((bytes_after - bytes_history) / (orders_after - orders_history > 0 ? orders_after - orders_history : 1))) bytes an order"
echo
failed=0
for side in cluster single; do
	for k in insert bare redeem; do
		v=${tps[$side.$k]}
		is_figure "$v" || { echo "$side $k: $v"; failed=1; }
	done
	is_figure "${rfm[$side]}" || { echo "$side score_rfm: ${rfm[$side]}"; failed=1; }
	is_figure "${hist[$side]}" || { echo "$side history load: ${hist[$side]}"; failed=1; }
	read -r orders earned scored bad <<<"$(books "$side")"
	echo "$side books: $orders orders, $earned order earnings, $scored members scored, verify() failures: $bad"
	[ "$orders" = "$earned" ] && [ "$bad" = 0 ] || failed=1
done
exit $failed

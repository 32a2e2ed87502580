#!/usr/bin/env bash
# Benchmark (not a test): the cost of the accrual trigger on order inserts.
# 200,000 orders go into a table with loyalty attached and into the same
# table without it, in the same run, on the same throwaway cluster, and the
# script prints the ratio trigger / bare for two ways an application inserts:
#   1. bulk: one INSERT ... SELECT of all orders (imports, back-fills)
#   2. per order: one INSERT per transaction, 2 pgbench clients (a web shop),
#      with synchronous_commit on (as shipped) and off (CPU-bound).
# Orders spread over 50,000 members; amounts in USD with a few in EUR.
# With SIGNALS=1 both tables also carry six fraud signal columns (ip,
# device, card fingerprint, shipping address, billing and ip country),
# mapped by attach_orders: the signal trigger's cost is in the ratio.
# Usage: [SIGNALS=1] bash bench/trigger_overhead.sh [orders]
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ORDERS=${1:-200000}
SIGNALS=${SIGNALS:-0}
if [ "$SIGNALS" = 1 ]; then
	SIGNAL_COLUMNS=", ip inet, device text, card text, address text, billing_country text, ip_country text"
	SIGNAL_MAPPING=", ip => 'ip', device_id => 'device', payment_fingerprint => 'card',
	                 shipping_address => 'address', billing_country => 'billing_country', ip_country => 'ip_country'"
	# Values of the row number g (bulk) or the customer :c (per order).
	signal_values() {
		echo ", ('10.' || ($1 % 250) || '.' || ($1 / 250 % 250) || '.1')::inet, 'dev-' || ($1 % 40000),
		 'card-' || ($1 % 45000), ($1 % 30000) || ' Orchard Road, #05-' || ($1 % 90),
		 CASE WHEN $1 % 20 = 0 THEN 'VN' ELSE 'SG' END, CASE WHEN $1 % 25 = 0 THEN 'US' ELSE 'SG' END"
	}
else
	SIGNAL_COLUMNS=""
	SIGNAL_MAPPING=""
	signal_values() { echo ""; }
fi
setup_toolchain
ensure_packages bc
build_install
start_cluster "fsync=on" "shared_buffers=512MB" "max_wal_size=4GB" "checkpoint_timeout=30min"
DB=loyalty_bench
psql_q -d postgres -c "CREATE DATABASE $DB"

psql_q -d "$DB" <<SQL
CREATE EXTENSION loyalty;
SELECT loyalty.create_program('bench', 'USD', 1, 7, '1 year');
SELECT loyalty.set_fx_rate('EUR', 'USD', 1.08);
CREATE SEQUENCE order_no;
CREATE TABLE orders_bare (id bigint PRIMARY KEY, customer_id bigint, total numeric(12, 2),
                          currency text, status text, refunded numeric(12, 2), placed_at timestamptz
                          $SIGNAL_COLUMNS);
CREATE TABLE orders_loyalty (LIKE orders_bare INCLUDING ALL);
SELECT loyalty.attach_orders('bench', 'orders_loyalty', 'id', 'customer_id', 'total', 'currency',
                             'status', 'refunded', 'placed_at' $SIGNAL_MAPPING);
SQL

# Seconds one statement takes, measured by the server.
timed() {
	psql_q -d "$DB" -At <<SQL
SELECT clock_timestamp() AS t0 \gset
$1
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 3);
SQL
}

bulk_insert() {
	echo "INSERT INTO $1 SELECT g, 1 + (g * 7919) % 50000, 5 + (g % 997) * 0.37,
	        CASE WHEN g % 10 = 0 THEN 'EUR' ELSE 'USD' END, 'paid', 0,
	        '2024-01-01'::timestamptz + g * interval '1 minute' $(signal_values g)
	   FROM generate_series($2::bigint, $2 + $ORDERS - 1) g;"
}

log "1. bulk: one INSERT ... SELECT of $ORDERS orders (best of 2)"
best() { printf '%s\n%s\n' "$1" "$2" | sort -n | head -n 1; }
b1=$(timed "$(bulk_insert orders_bare 1)")
l1=$(timed "$(bulk_insert orders_loyalty 1)")
psql_q -d "$DB" -c "TRUNCATE orders_bare, orders_loyalty"
b2=$(timed "$(bulk_insert orders_bare 10000001)")
l2=$(timed "$(bulk_insert orders_loyalty 10000001)")
bare=$(best "$b1" "$b2")
trig=$(best "$l1" "$l2")
bulk_ratio=$(echo "scale=2; $trig / $bare" | bc)
printf 'bulk      bare %8.3f s   with loyalty %8.3f s   ratio %sx\n' "$bare" "$trig" "$bulk_ratio"

per_order() {
	local table=$1 sync=$2 script="$WORK/insert_$1.sql"
	cat >"$script" <<SQL
\set c random(1, 50000)
\set a random(500, 99999)
INSERT INTO $table VALUES (nextval('order_no'), :c, :a / 100.0, 'USD', 'paid', 0, now() $(signal_values :c));
SQL
	PGOPTIONS="-c synchronous_commit=$sync" "$PG_BIN/pgbench" -n -c 2 -j 2 -t $((ORDERS / 2)) \
		-f "$script" "$DB" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

for sync in on off; do
	log "2. per order: $ORDERS single-row INSERT transactions, 2 clients, synchronous_commit=$sync"
	psql_q -d "$DB" -c "TRUNCATE orders_bare, orders_loyalty"
	tb=$(per_order orders_bare $sync)
	tl=$(per_order orders_loyalty $sync)
	ratio=$(echo "scale=2; $tb / $tl" | bc)
	printf 'per order (sync %-3s) bare %8.0f tps   with loyalty %8.0f tps   ratio %sx\n' "$sync" "$tb" "$tl" "$ratio"
done

log "the books after the run"
psql_q -d "$DB" -c "SELECT count(*) AS orders_earned FROM loyalty.order_earning" \
	-c "SELECT count(*) AS order_signals FROM loyalty.order_signal" \
	-c "SELECT check_name, ok FROM loyalty.verify()"

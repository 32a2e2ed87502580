#!/usr/bin/env bash
# Benchmark (not a test): the cost of back-filling the orders a shop had
# before it attached loyalty.  A table of ORDERS orders (default 1,000,000:
# 50,000 members, USD with 10% in EUR, 2% cancelled, 1% partly refunded,
# two years of order times) is copied once with a bare INSERT ... SELECT
# into a table of the same shape without loyalty, and back-filled once with
# CALL loyalty.backfill_orders (chunks of 10,000 that commit), in the same
# run on the same throwaway cluster; the script prints both times and the
# ratio back-fill / bare.  Both tables have a primary key on the order id
# and an index on (created at, id), as docs/adopting.md advises for a
# back-fill.  The books are verified at the end.
# Usage: bash bench/backfill.sh [orders] [chunk_size]
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ORDERS=${1:-1000000}
CHUNK=${2:-10000}
setup_toolchain
ensure_packages bc
build_install
start_cluster "fsync=on" "shared_buffers=512MB" "max_wal_size=4GB" "checkpoint_timeout=30min"
DB=loyalty_bench
psql_q -d postgres -c "CREATE DATABASE $DB"

log "loading $ORDERS orders into the shop's table (not timed)"
psql_q -d "$DB" <<SQL
CREATE EXTENSION loyalty;
SELECT loyalty.create_program('bench', 'USD', 1, 7, '1 year');
SELECT loyalty.set_fx_rate('EUR', 'USD', 1.08);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total numeric(12, 2),
                     currency text, status text, refunded numeric(12, 2), placed_at timestamptz);
CREATE INDEX orders_placed_at_idx ON orders (placed_at, id);
CREATE TABLE orders_bare (LIKE orders INCLUDING ALL);
INSERT INTO orders
SELECT g, 1 + (g * 7919) % 50000, 5 + (g % 997) * 0.37,
       CASE WHEN g % 10 = 0 THEN 'EUR' ELSE 'USD' END,
       CASE WHEN g % 50 = 7 THEN 'cancelled' ELSE 'paid' END,
       CASE WHEN g % 100 = 3 THEN 1 ELSE 0 END,
       '2023-01-01'::timestamptz + (g::float8 / $ORDERS) * interval '730 days'
  FROM generate_series(1::bigint, $ORDERS) g;
VACUUM ANALYZE orders;
CHECKPOINT;
SQL

# Seconds a psql script takes, measured by the client around it.
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	psql_q -d "$DB" -c "$1" >/dev/null 2>"$WORK/timed.err" || { cat "$WORK/timed.err" >&2; return 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}

log "bare: INSERT ... SELECT of the $ORDERS orders into a table without loyalty"
bare=$(timed "INSERT INTO orders_bare SELECT * FROM orders")
psql_q -d "$DB" -c "CHECKPOINT"

log "back-fill: attach, then CALL loyalty.backfill_orders (chunks of $CHUNK)"
psql_q -d "$DB" -c "SELECT loyalty.attach_orders('bench', 'orders', 'id', 'customer_id', 'total', 'currency',
                                                 'status', 'refunded', 'placed_at')" 2>/dev/null >/dev/null
back=$(timed "CALL loyalty.backfill_orders('bench', 'orders', chunk_size => $CHUNK)")

ratio=$(echo "scale=2; $back / $bare" | bc)
printf 'back-fill of %s orders: bare INSERT ... SELECT %8.3f s   back-fill %8.3f s   ratio %sx   (load average %s)\n' \
	"$ORDERS" "$bare" "$back" "$ratio" "$(cut -d' ' -f1-3 /proc/loadavg)"

log "the books after the back-fill"
psql_q -d "$DB" -c "SELECT count(*) AS orders_recorded, count(*) FILTER (WHERE closed) AS closed,
                           sum(points) AS points FROM loyalty.order_earning" \
	-c "SELECT orders_done, dead_letters, chunks, finished_at IS NOT NULL AS finished FROM loyalty.backfill_run" \
	-c "SELECT check_name, ok FROM loyalty.verify()"

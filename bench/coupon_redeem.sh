#!/usr/bin/env bash
# Benchmark (not a test): redeem_coupon under pgbench on one hot campaign,
# a flash sale.  For 2, 4 and 8 clients, a fresh campaign with a total limit
# of LIMIT redemptions gets 1.5 x LIMIT attempts from members picked at
# random (each attempt a new order_ref, one transaction, as loyalty_app);
# the attempts after the limit is reached are refused with LY022, which the
# pgbench script catches (pgbench would otherwise abort the client).
# Prints attempts per second, redemptions per second (while units were
# left: redemptions / time from the first to the last), and checks that
# the limit held exactly: redeemed_count = LIMIT = active redemption rows.
# Twice: synchronous_commit on (as shipped: the campaign's row is held
# until the commit is flushed) and off (CPU-bound).
# Usage: bash bench/coupon_redeem.sh [limit]
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

LIMIT=${1:-2000}
ATTEMPTS=$((LIMIT * 3 / 2))
setup_toolchain
ensure_packages bc
build_install
start_cluster "fsync=on" "shared_buffers=256MB" "max_wal_size=2GB"
DB=loyalty_bench
psql_q -d postgres -c "CREATE DATABASE $DB"

psql_q -d "$DB" <<SQL
CREATE EXTENSION loyalty;
SELECT loyalty.create_program('bench', 'USD');
SELECT count(loyalty.enroll('bench', 'm' || g)) FROM generate_series(1, 10000) g;
CREATE SEQUENCE order_no;
-- A refused redemption is an answer, not a failure: NULL instead of LY022.
CREATE FUNCTION public.try_redeem(code text, member text, order_ref text) RETURNS numeric
LANGUAGE plpgsql AS \$\$
BEGIN
    RETURN loyalty.redeem_coupon('bench', code, member,
        '{"currency": "USD", "items": [{"sku": "TV", "qty": 1, "price": 499}]}', order_ref);
EXCEPTION WHEN SQLSTATE 'LY022' THEN
    RETURN NULL;
END
\$\$;
GRANT EXECUTE ON FUNCTION public.try_redeem(text, text, text) TO loyalty_app;
GRANT USAGE ON SEQUENCE order_no TO loyalty_app;
SQL

failed=0
for sync in on off; do
for clients in 2 4 8; do
	campaign=hot${clients}_$sync
	psql_q -d "$DB" -c "SELECT loyalty.create_campaign('bench', '$campaign', 'spend 100 USD get 20 USD off',
	                                                  total_limit => $LIMIT, per_member_limit => NULL)" \
		-c "SELECT loyalty.add_code('bench', '$campaign', '$campaign')" >/dev/null
	script="$WORK/redeem_$clients.sql"
	cat >"$script" <<SQL
\set m random(1, 10000)
SELECT public.try_redeem('$campaign', 'm' || :m, 'ord-' || nextval('order_no'));
SQL
	log "$clients clients, synchronous_commit=$sync: $ATTEMPTS attempts on a limit of $LIMIT"
	tps=$(PGOPTIONS="-c role=loyalty_app -c synchronous_commit=$sync" "$PG_BIN/pgbench" -n -c "$clients" -j "$clients" \
		-t $((ATTEMPTS / clients)) -f "$script" "$DB" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
	read -r count active rate <<<"$(psql_q -d "$DB" -At -F ' ' -c "
		SELECT c.redeemed_count,
		       (SELECT count(*) FROM loyalty.coupon_redemption r
		         WHERE r.program = c.program AND r.campaign = c.campaign AND r.released_at IS NULL),
		       (SELECT round(count(*) / greatest(extract(epoch FROM max(r.redeemed_at) - min(r.redeemed_at)), 0.001))
		          FROM loyalty.coupon_redemption r WHERE r.program = c.program AND r.campaign = c.campaign)
		  FROM loyalty.coupon_campaign c WHERE c.program = 'bench' AND c.campaign = '$campaign'")"
	held=yes
	if [ "$count" != "$LIMIT" ] || [ "$active" != "$LIMIT" ]; then held=NO; failed=1; fi
	printf 'sync %-3s clients %d   attempts %6.0f/s   redemptions %6.0f/s   redeemed %d of limit %d (rows %d)   limit held: %s\n' \
		"$sync" "$clients" "$tps" "$rate" "$count" "$LIMIT" "$active" "$held"
done
done
exit $failed

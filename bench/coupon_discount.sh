#!/usr/bin/env bash
# Benchmark (not a test): loyalty.coupon_discount (C) against the same rules
# written in PL/pgSQL, over the same generated jsonb carts, in one run on
# one throwaway cluster.
#
# Data generator: CARTS carts; currency USD 1/3, EUR, VND, JPY, GBP 1/6
# each; 1 to 5 items (qty 1..3, category among shoes, bags, toys,
# gift_cards, books; prices 1..121 with cents, VND 10,000..505,000, JPY
# 100..15,000); shipping; country among VN, TH, US, GB, DE; member facts
# (tier, segment, lifecycle absent for 10% of carts, first_order true for 20%).
#
# Rules, from the issue's table: a USD stepped threshold, a threshold per
# currency, first order 20% with a USD cap, min_items + lifecycle 30% in any
# currency, exclude_categories with a threshold.  Each PL/pgSQL function is
# what a shop would write for that rule on the same jsonb (sum of qty x
# price over the lines that count, the same eligibility, round() half away
# from zero to the currency's decimals, never above the subtotal); it does
# not validate the cart, which only favours it.
#
# Prints, per rule: seconds in C, seconds in PL/pgSQL, the ratio, and the
# number of carts where the two disagree (must be 0: a benchmark of wrong
# answers is worthless); then the totals.  Both sides run single-process
# (no parallel workers, no JIT), as sum() over the carts table.
# Usage: bash bench/coupon_discount.sh [carts]    (default 1000000)
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

CARTS=${1:-1000000}
setup_toolchain
ensure_packages bc
build_install
start_cluster "shared_buffers=1GB" "work_mem=256MB" "max_wal_size=8GB" "synchronous_commit=off"
DB=loyalty_bench
psql_q -d postgres -c "CREATE DATABASE $DB"

log "generating $CARTS carts"
SECONDS=0
psql_q -d "$DB" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION loyalty;
CREATE TABLE carts (id bigint PRIMARY KEY, cart jsonb NOT NULL);
INSERT INTO carts
SELECT g, jsonb_build_object(
           'currency', cur,
           'country', (ARRAY['VN', 'TH', 'US', 'GB', 'DE'])[1 + floor(random() * 5)::int],
           'shipping', CASE cur WHEN 'VND' THEN 30000 WHEN 'JPY' THEN 500 ELSE 4.99 END,
           'items', (SELECT jsonb_agg(jsonb_build_object(
                                'sku', 'S' || i,
                                'category', (ARRAY['shoes', 'bags', 'toys', 'gift_cards', 'books'])[1 + floor(random() * 5)::int],
                                'qty', 1 + floor(random() * 3)::int,
                                'price', CASE cur WHEN 'VND' THEN 10000 + 5000 * floor(random() * 100)
                                                  WHEN 'JPY' THEN 100 * (1 + floor(random() * 150))
                                                  ELSE round((1 + random() * 120)::numeric, 2) END))
                       FROM generate_series(1, n) i WHERE g > 0),
           'member', jsonb_strip_nulls(jsonb_build_object(
                'tier', (ARRAY['Member', 'Silver', 'Gold', 'Platinum'])[1 + floor(random() * 4)::int],
                'segment', (ARRAY['Champions', 'Loyal', 'At Risk', 'Hibernating'])[1 + floor(random() * 4)::int],
                'lifecycle', CASE WHEN random() < 0.1 THEN NULL
                                  ELSE (ARRAY['new', 'active', 'at_risk', 'dormant'])[1 + floor(random() * 4)::int] END,
                'first_order', random() < 0.2)))
  FROM (SELECT g, (ARRAY['USD', 'USD', 'EUR', 'VND', 'JPY', 'GBP'])[1 + floor(random() * 6)::int] AS cur,
               1 + floor(random() * 5)::int AS n
          FROM generate_series(1, $CARTS) g) s;
VACUUM ANALYZE carts;

CREATE TABLE rules (n int PRIMARY KEY, rule loyalty.coupon_rule NOT NULL, plpgsql regproc NOT NULL);

-- The lines' subtotal, in each function: what a shop's PL/pgSQL would do.
CREATE FUNCTION r1(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    sub numeric := 0;
    it jsonb;
BEGIN
    IF cart->>'currency' IS DISTINCT FROM 'USD' THEN RETURN 0; END IF;
    FOR it IN SELECT jsonb_array_elements(cart->'items') LOOP
        sub := sub + (it->>'qty')::numeric * (it->>'price')::numeric;
    END LOOP;
    IF sub >= 200 THEN RETURN least(25, trunc(sub, 2)); END IF;
    IF sub >= 100 THEN RETURN least(10, trunc(sub, 2)); END IF;
    RETURN 0;
END
\$\$;
CREATE FUNCTION r2(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    sub numeric := 0;
    it jsonb;
    cur text := cart->>'currency';
BEGIN
    IF cur IS DISTINCT FROM 'USD' AND cur IS DISTINCT FROM 'VND' THEN RETURN 0; END IF;
    FOR it IN SELECT jsonb_array_elements(cart->'items') LOOP
        sub := sub + (it->>'qty')::numeric * (it->>'price')::numeric;
    END LOOP;
    IF cur = 'USD' AND sub >= 50 THEN RETURN least(10, trunc(sub, 2)); END IF;
    IF cur = 'VND' AND sub >= 200000 THEN RETURN least(50000, trunc(sub, 0)); END IF;
    RETURN 0;
END
\$\$;
CREATE FUNCTION r3(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    sub numeric := 0;
    it jsonb;
BEGIN
    IF cart->>'currency' IS DISTINCT FROM 'USD' THEN RETURN 0; END IF;
    IF (cart->'member'->>'first_order')::boolean IS NOT TRUE THEN RETURN 0; END IF;
    FOR it IN SELECT jsonb_array_elements(cart->'items') LOOP
        sub := sub + (it->>'qty')::numeric * (it->>'price')::numeric;
    END LOOP;
    RETURN least(round(sub * 0.20, 2), 50, trunc(sub, 2));
END
\$\$;
CREATE FUNCTION r4(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    sub numeric := 0;
    items numeric := 0;
    it jsonb;
    minor int := CASE cart->>'currency' WHEN 'VND' THEN 0 WHEN 'JPY' THEN 0 ELSE 2 END;
BEGIN
    IF replace(lower(cart->'member'->>'lifecycle'), '_', ' ') IS DISTINCT FROM 'active'
       AND replace(lower(cart->'member'->>'lifecycle'), '_', ' ') IS DISTINCT FROM 'at risk' THEN
        RETURN 0;
    END IF;
    FOR it IN SELECT jsonb_array_elements(cart->'items') LOOP
        sub := sub + (it->>'qty')::numeric * (it->>'price')::numeric;
        items := items + (it->>'qty')::numeric;
    END LOOP;
    IF items < 3 THEN RETURN 0; END IF;
    RETURN least(round(sub * 0.30, minor), trunc(sub, minor));
END
\$\$;
CREATE FUNCTION r5(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    sub numeric := 0;
    it jsonb;
BEGIN
    IF cart->>'currency' IS DISTINCT FROM 'USD' THEN RETURN 0; END IF;
    FOR it IN SELECT jsonb_array_elements(cart->'items') LOOP
        IF lower(it->>'category') IS DISTINCT FROM 'gift_cards' THEN
            sub := sub + (it->>'qty')::numeric * (it->>'price')::numeric;
        END IF;
    END LOOP;
    IF sub >= 100 THEN RETURN least(20, trunc(sub, 2)); END IF;
    RETURN 0;
END
\$\$;
INSERT INTO rules VALUES
    (1, 'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off', 'r1'),
    (2, 'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off', 'r2'),
    (3, 'first_order | 20% off max 50 USD', 'r3'),
    (4, 'min_items=3 lifecycle=active,at_risk | 30% off', 'r4'),
    (5, 'exclude_categories=gift_cards | spend 100 USD get 20 USD off', 'r5');
SQL
log "generated in ${SECONDS}s"

timed() {
	psql_q -d "$DB" -At <<SQL | tail -n 1
SET client_min_messages = warning;
SET jit = off;
SET max_parallel_workers_per_gather = 0;
SELECT clock_timestamp() AS t0 \gset
$1
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 2);
SQL
}

# A warm-up scan so both sides read the carts from shared buffers.
psql_q -d "$DB" -c "SELECT count(*) AS carts, sum(pg_column_size(cart)) AS bytes FROM carts"

total_c=0
total_p=0
rows=""
for n in 1 2 3 4 5; do
	rule=$(psql_q -d "$DB" -At -c "SELECT rule FROM rules WHERE n = $n")
	fn=$(psql_q -d "$DB" -At -c "SELECT plpgsql FROM rules WHERE n = $n")
	log "rule $n: $rule"
	c=$(timed "SELECT sum(loyalty.coupon_discount('$rule', cart, '2024-11-05 12:00+00')) FROM carts;")
	p=$(timed "SELECT sum($fn(cart)) FROM carts;")
	check=$(psql_q -d "$DB" -At -c "SET max_parallel_workers_per_gather = 0" -c "
SELECT count(*) FILTER (WHERE c IS DISTINCT FROM p) || ' ' || count(*) FILTER (WHERE c > 0) || ' ' || sum(c)
  FROM (SELECT loyalty.coupon_discount('$rule', cart, '2024-11-05 12:00+00') AS c, $fn(cart) AS p FROM carts) s")
	read -r differ discounted sum_c <<<"$check"
	ratio=$(echo "scale=1; $p / $c" | bc)
	rows+=$(printf '%-70s %8s %10s %7sx %9s %8s\n' "$rule" "$c" "$p" "$ratio" "$discounted" "$differ")$'\n'
	total_c=$(echo "$total_c + $c" | bc)
	total_p=$(echo "$total_p + $p" | bc)
done

echo
echo "coupon_discount over $CARTS carts: C against PL/pgSQL (seconds; ratio = PL/pgSQL / C)"
printf '%-70s %8s %10s %8s %9s %8s\n' "rule" "C" "PL/pgSQL" "ratio" "eligible" "differ"
printf '%s' "$rows"
printf '%-70s %8s %10s %7sx\n' "total" "$total_c" "$total_p" "$(echo "scale=1; $total_p / $total_c" | bc)"
echo "evaluations per second in C: $(echo "5 * $CARTS / $total_c" | bc)"

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
# currency, exclude_categories with a threshold.  Each rule is written twice
# in PL/pgSQL, as a shop would on the same jsonb (sum of qty x price over the
# lines that count, the same eligibility, round() half away from zero to the
# currency's decimals, never above the subtotal): "checked" keeps
# coupon_discount's whole contract (one cart reader that refuses a malformed
# cart with LY030, as the C code does, then the rule); "trusting" skips the
# cart checks and returns early on another currency, which only favours it.
#
# Prints, per rule: seconds in C and in both PL/pgSQL versions, the ratios,
# the carts with a discount, and the number of carts where any two disagree (must be 0: a benchmark of wrong
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

CREATE TABLE rules (n int PRIMARY KEY, rule loyalty.coupon_rule NOT NULL, plpgsql regproc NOT NULL,
                    checked regproc NOT NULL);

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

-- The same rules written the way a shop writes PL/pgSQL with the same
-- contract as coupon_discount: one cart reader that checks the cart as
-- loyalty does (LY030 on a malformed cart: ISO 4217 currency, items an
-- array of objects, qty a whole number 1..1000000, price and shipping
-- numbers >= 0, country two letters, member facts of the right type) and
-- sums the lines that count (categories, exclusions: case ignored); then
-- one small function per rule.
CREATE FUNCTION cart_base(cart jsonb, only_categories text[], excluded text[],
                          OUT currency text, OUT minor int, OUT subtotal numeric, OUT items numeric, OUT counted int)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    it jsonb;
    i int := 0;
    q numeric;
    p numeric;
    pos int;
    cat text;
BEGIN
    IF jsonb_typeof(cart) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'invalid cart: the cart is not a JSON object' USING ERRCODE = 'LY030';
    END IF;
    currency := upper(cart->>'currency');
    pos := array_position('{AED,AFN,ALL,AMD,ANG,AOA,ARS,AUD,AWG,AZN,BAM,BBD,BDT,BGN,BHD,BIF,BMD,BND,BOB,BOV,BRL,BSD,BTN,BWP,BYN,BZD,CAD,CDF,CHE,CHF,CHW,CLF,CLP,CNY,COP,COU,CRC,CUC,CUP,CVE,CZK,DJF,DKK,DOP,DZD,EGP,ERN,ETB,EUR,FJD,FKP,GBP,GEL,GHS,GIP,GMD,GNF,GTQ,GYD,HKD,HNL,HTG,HUF,IDR,ILS,INR,IQD,IRR,ISK,JMD,JOD,JPY,KES,KGS,KHR,KMF,KPW,KRW,KWD,KYD,KZT,LAK,LBP,LKR,LRD,LSL,LYD,MAD,MDL,MGA,MKD,MMK,MNT,MOP,MRU,MUR,MVR,MWK,MXN,MXV,MYR,MZN,NAD,NGN,NIO,NOK,NPR,NZD,OMR,PAB,PEN,PGK,PHP,PKR,PLN,PYG,QAR,RON,RSD,RUB,RWF,SAR,SBD,SCR,SDG,SEK,SGD,SHP,SLE,SOS,SRD,SSP,STN,SVC,SYP,SZL,THB,TJS,TMT,TND,TOP,TRY,TTD,TWD,TZS,UAH,UGX,USD,USN,UYI,UYU,UYW,UZS,VED,VES,VND,VUV,WST,XAF,XCD,XCG,XOF,XPF,YER,ZAR,ZMW,ZWG}'::text[], currency);
    IF jsonb_typeof(cart->'currency') IS DISTINCT FROM 'string' OR pos IS NULL THEN
        RAISE EXCEPTION 'invalid cart: currency is %', coalesce(cart->'currency', 'missing') USING ERRCODE = 'LY030';
    END IF;
    minor := ('{2,2,2,2,2,2,2,2,2,2,2,2,2,2,3,0,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,4,0,2,2,2,2,2,2,2,2,0,2,2,2,2,2,2,2,2,2,2,2,2,2,2,0,2,2,2,2,2,2,2,2,2,3,2,0,2,3,0,2,2,2,0,2,0,3,2,2,2,2,2,2,2,3,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,3,2,2,2,2,2,2,0,2,2,2,2,0,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,3,2,2,2,2,2,2,0,2,2,0,2,4,2,2,2,0,0,2,0,2,2,0,0,2,2,2,2}'::int[])[pos];
    IF jsonb_typeof(cart->'items') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid cart: items is %', coalesce(cart->'items', 'missing') USING ERRCODE = 'LY030';
    END IF;
    subtotal := 0;
    items := 0;
    counted := 0;
    FOR it IN SELECT jsonb_array_elements(cart->'items') LOOP
        IF jsonb_typeof(it) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'invalid cart: items[%] is %', i, it USING ERRCODE = 'LY030';
        END IF;
        IF jsonb_typeof(it->'qty') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'invalid cart: items[%].qty is %', i, coalesce(it->'qty', 'missing') USING ERRCODE = 'LY030';
        END IF;
        q := (it->>'qty')::numeric;
        IF q < 1 OR q > 1000000 OR q <> trunc(q) THEN
            RAISE EXCEPTION 'invalid cart: items[%].qty is %', i, q USING ERRCODE = 'LY030';
        END IF;
        IF jsonb_typeof(it->'price') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'invalid cart: items[%].price is %', i, coalesce(it->'price', 'missing') USING ERRCODE = 'LY030';
        END IF;
        p := (it->>'price')::numeric;
        IF p < 0 OR p >= 1e15 OR p <> round(p, 9) THEN
            RAISE EXCEPTION 'invalid cart: items[%].price is %', i, p USING ERRCODE = 'LY030';
        END IF;
        IF jsonb_typeof(it->'category') NOT IN ('string', 'null') THEN
            RAISE EXCEPTION 'invalid cart: items[%].category is %', i, it->'category' USING ERRCODE = 'LY030';
        END IF;
        cat := lower(it->>'category');
        IF (only_categories IS NULL OR cat = ANY (only_categories))
           AND (excluded IS NULL OR cat IS NULL OR NOT cat = ANY (excluded)) THEN
            subtotal := subtotal + q * p;
            items := items + q;
            counted := counted + 1;
        END IF;
        i := i + 1;
    END LOOP;
    IF jsonb_typeof(cart->'country') NOT IN ('string', 'null')
       OR (jsonb_typeof(cart->'country') = 'string' AND cart->>'country' !~ '^[A-Za-z]{2}$') THEN
        RAISE EXCEPTION 'invalid cart: country is %', cart->'country' USING ERRCODE = 'LY030';
    END IF;
    IF jsonb_typeof(cart->'shipping') NOT IN ('number', 'null')
       OR (cart->>'shipping')::numeric < 0 THEN
        RAISE EXCEPTION 'invalid cart: shipping is %', cart->'shipping' USING ERRCODE = 'LY030';
    END IF;
    IF jsonb_typeof(cart->'member') NOT IN ('object', 'null') THEN
        RAISE EXCEPTION 'invalid cart: member is %', cart->'member' USING ERRCODE = 'LY030';
    END IF;
    IF jsonb_typeof(cart->'member'->'tier') NOT IN ('string', 'null')
       OR jsonb_typeof(cart->'member'->'segment') NOT IN ('string', 'null')
       OR jsonb_typeof(cart->'member'->'lifecycle') NOT IN ('string', 'null')
       OR jsonb_typeof(cart->'member'->'first_order') NOT IN ('boolean', 'null') THEN
        RAISE EXCEPTION 'invalid cart: member is %', cart->'member' USING ERRCODE = 'LY030';
    END IF;
END
\$\$;
CREATE FUNCTION c1(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    b record := cart_base(cart, NULL, NULL);
BEGIN
    IF b.currency <> 'USD' THEN RETURN 0; END IF;
    IF b.subtotal >= 200 THEN RETURN least(25, trunc(b.subtotal, 2)); END IF;
    IF b.subtotal >= 100 THEN RETURN least(10, trunc(b.subtotal, 2)); END IF;
    RETURN 0;
END
\$\$;
CREATE FUNCTION c2(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    b record := cart_base(cart, NULL, NULL);
BEGIN
    IF b.currency = 'USD' AND b.subtotal >= 50 THEN RETURN least(10, trunc(b.subtotal, 2)); END IF;
    IF b.currency = 'VND' AND b.subtotal >= 200000 THEN RETURN least(50000, trunc(b.subtotal, 0)); END IF;
    RETURN 0;
END
\$\$;
CREATE FUNCTION c3(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    b record := cart_base(cart, NULL, NULL);
BEGIN
    IF b.currency <> 'USD' OR (cart->'member'->>'first_order')::boolean IS NOT TRUE THEN RETURN 0; END IF;
    RETURN least(round(b.subtotal * 0.20, 2), 50, trunc(b.subtotal, 2));
END
\$\$;
CREATE FUNCTION c4(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    b record := cart_base(cart, NULL, NULL);
    stage text := replace(lower(cart->'member'->>'lifecycle'), '_', ' ');
BEGIN
    IF stage IS NULL OR stage NOT IN ('active', 'at risk') OR b.items < 3 THEN RETURN 0; END IF;
    RETURN least(round(b.subtotal * 0.30, b.minor), trunc(b.subtotal, b.minor));
END
\$\$;
CREATE FUNCTION c5(cart jsonb) RETURNS numeric LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS \$\$
DECLARE
    b record := cart_base(cart, NULL, '{gift_cards}');
BEGIN
    IF b.currency <> 'USD' OR b.counted = 0 OR b.subtotal < 100 THEN RETURN 0; END IF;
    RETURN least(20, trunc(b.subtotal, 2));
END
\$\$;
INSERT INTO rules VALUES
    (1, 'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off', 'r1', 'c1'),
    (2, 'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off', 'r2', 'c2'),
    (3, 'first_order | 20% off max 50 USD', 'r3', 'c3'),
    (4, 'min_items=3 lifecycle=active,at_risk | 30% off', 'r4', 'c4'),
    (5, 'exclude_categories=gift_cards | spend 100 USD get 20 USD off', 'r5', 'c5');
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
total_k=0
total_p=0
rows=""
for n in 1 2 3 4 5; do
	rule=$(psql_q -d "$DB" -At -c "SELECT rule FROM rules WHERE n = $n")
	fn=$(psql_q -d "$DB" -At -c "SELECT plpgsql FROM rules WHERE n = $n")
	kfn=$(psql_q -d "$DB" -At -c "SELECT checked FROM rules WHERE n = $n")
	log "rule $n: $rule"
	c=$(timed "SELECT sum(loyalty.coupon_discount('$rule', cart, '2024-11-05 12:00+00')) FROM carts;")
	k=$(timed "SELECT sum($kfn(cart)) FROM carts;")
	p=$(timed "SELECT sum($fn(cart)) FROM carts;")
	check=$(psql_q -d "$DB" -At -c "SET max_parallel_workers_per_gather = 0" -c "
SELECT count(*) FILTER (WHERE c IS DISTINCT FROM k OR c IS DISTINCT FROM p) || ' ' || count(*) FILTER (WHERE c > 0)
  FROM (SELECT loyalty.coupon_discount('$rule', cart, '2024-11-05 12:00+00') AS c, $kfn(cart) AS k, $fn(cart) AS p
          FROM carts) s")
	read -r differ discounted <<<"$check"
	rows+=$(printf '%-66s %6s %9s %6sx %9s %6sx %8s %6s' "$rule" "$c" "$k" "$(echo "scale=1; $k / $c" | bc)" \
		"$p" "$(echo "scale=1; $p / $c" | bc)" "$discounted" "$differ")$'\n'
	total_c=$(echo "$total_c + $c" | bc)
	total_k=$(echo "$total_k + $k" | bc)
	total_p=$(echo "$total_p + $p" | bc)
done

echo
echo "coupon_discount over $CARTS carts: C against PL/pgSQL, seconds (ratio = PL/pgSQL / C)"
echo "  checked: PL/pgSQL with coupon_discount's contract (the cart checked, LY030); trusting: no cart checks"
printf '%-66s %6s %9s %7s %9s %7s %8s %6s\n' "rule" "C" "checked" "ratio" "trusting" "ratio" "eligible" "differ"
printf '%s' "$rows"
printf '%-66s %6s %9s %6sx %9s %6sx\n' "total" "$total_c" "$total_k" "$(echo "scale=1; $total_k / $total_c" | bc)" \
	"$total_p" "$(echo "scale=1; $total_p / $total_c" | bc)"
echo "evaluations per second in C: $(echo "5 * $CARTS / $total_c" | bc)"

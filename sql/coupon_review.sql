-- Review of coupon_rule and the pure evaluator: inputs that broke the
-- documented contract (docs/coupons.md) before their fixes.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql
GRANT EXECUTE ON FUNCTION public.sqlstate_of(text) TO loyalty_app;
SET ROLE loyalty_app;

-- 1. min_items takes 1 .. 100000, both ends included (100000 was refused).
SELECT 'min_items=100000 | 10% off'::loyalty.coupon_rule AS max_min_items;
SELECT 'min_items=1 | 10% off'::loyalty.coupon_rule AS min_min_items;
SELECT public.sqlstate_of($$SELECT 'min_items=100001 | 10% off'::loyalty.coupon_rule$$) AS above_max;
SELECT public.sqlstate_of($$SELECT 'min_items=0 | 10% off'::loyalty.coupon_rule$$) AS zero;
-- Amounts right at the limit (10^15 - 1 minor units) and one above.
SELECT 'spend 9999999999999.99 USD get 1 USD off'::loyalty.coupon_rule AS max_usd,
       '999999999999999 VND off'::loyalty.coupon_rule AS max_vnd;
SELECT public.sqlstate_of($$SELECT '1000000000000000 VND off'::loyalty.coupon_rule$$) AS above_max_amount;

-- 2. An unknown time zone is 22023 whether or not the rule has valid=:
-- the empty name was taken as already checked for a rule without valid=.
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount('10% off', '{"currency": "USD", "items": []}', now(), '')$$) AS empty_zone;
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount('valid=2024-01-01..2024-12-31 | 10% off', '{"currency": "USD", "items": []}', now(), '')$$) AS empty_zone_valid;

-- 3. A rule without valid= gives the same answer whatever the rows before
-- it: checking the zone converted as_of on the first call only, so a far
-- as_of failed ("timestamp out of range") when it came first and passed
-- when another row came before it.
SELECT t, loyalty.coupon_discount('10% off', '{"currency": "USD", "items": [{"qty": 1, "price": 10}]}', t, 'Pacific/Kiritimati')
  FROM (VALUES ('294276-12-31 23:00:00+00'::timestamptz), ('2024-01-01 00:00:00+00')) v(t);
SELECT t, loyalty.coupon_discount('10% off', '{"currency": "USD", "items": [{"qty": 1, "price": 10}]}', t, 'Pacific/Kiritimati')
  FROM (VALUES ('2024-01-01 00:00:00+00'::timestamptz), ('294276-12-31 23:00:00+00')) v(t);

-- 4. A cart error quotes at most 100 bytes of a string without cutting a
-- character in two (the message must stay valid UTF-8 for every client).
CREATE FUNCTION pg_temp.cart_error(cart jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text;
BEGIN
    PERFORM loyalty.coupon_discount('10% off', cart);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    msg := SQLERRM;
    BEGIN
        PERFORM pg_catalog.convert_to(msg, 'UTF8');
    EXCEPTION WHEN character_not_in_repertoire THEN
        RETURN SQLSTATE || ': the message is not valid UTF-8';
    END;
    RETURN SQLSTATE || ': ' || msg;
END
$$;
SELECT pg_temp.cart_error(jsonb_build_object('currency', 'a' || repeat('é', 60), 'items', '[]'::jsonb)) AS currency;
SELECT pg_temp.cart_error(jsonb_build_object('currency', 'USD', 'country', 'ab' || repeat('日', 40), 'items', '[]'::jsonb)) AS country;
SELECT pg_temp.cart_error(jsonb_build_object('currency', 'USD', 'items', jsonb_build_array(jsonb_build_object('qty', 'x' || repeat('é', 60), 'price', 1)))) AS qty;
RESET ROLE;

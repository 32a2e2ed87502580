-- The pure coupon evaluator: coupon_evaluate and coupon_discount on jsonb
-- carts.  Each rule of the issue's table with a cart that is eligible and
-- one that is not (and the reason); stepped thresholds; rounding half away
-- from zero to the currency's minor unit; discounts never above their
-- base; free shipping; gift; valid= in UTC and in another zone; the order
-- of the checks; malformed carts (LY030 naming the field); NULL arguments.
-- Run as the application's role.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql
GRANT EXECUTE ON FUNCTION public.sqlstate_of(text) TO loyalty_app;
SET ROLE loyalty_app;

-- A cart of one line per (qty, price) pair, in a currency, with member facts.
CREATE FUNCTION pg_temp.cart(currency text, prices numeric[], extra jsonb DEFAULT '{}', qty int DEFAULT 1,
                             category text DEFAULT 'shoes')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('currency', currency,
                              'items', coalesce(jsonb_agg(jsonb_build_object('sku', 'S' || i, 'category', category,
                                                                             'qty', qty, 'price', p) ORDER BY i),
                                                '[]'::jsonb)) || extra
      FROM unnest(prices) WITH ORDINALITY u(p, i)
$$;

-- 1. Each rule of the issue, a cart that is eligible and one that is not.
CREATE TEMP TABLE ev_case (n int, rule loyalty.coupon_rule, cart jsonb, note text);
INSERT INTO ev_case VALUES
 (1, 'spend 50 USD get 10 USD off', pg_temp.cart('USD', '{20,30}'), 'subtotal reaches 50'),
 (1, 'spend 50 USD get 10 USD off', pg_temp.cart('USD', '{49.99}'), 'below 50'),
 (1, 'spend 50 USD get 10 USD off', pg_temp.cart('EUR', '{500}'), 'another currency'),
 (2, 'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off', pg_temp.cart('VND', '{250000}'), 'VND threshold'),
 (2, 'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off', pg_temp.cart('USD', '{50}'), 'USD threshold'),
 (2, 'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off', pg_temp.cart('VND', '{199999}'), 'below the VND threshold'),
 (2, 'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off', pg_temp.cart('THB', '{9999}'), 'no step in THB'),
 (3, 'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off', pg_temp.cart('USD', '{250}'), '250 -> 25'),
 (3, 'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off', pg_temp.cart('USD', '{150}'), '150 -> 10'),
 (3, 'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off', pg_temp.cart('USD', '{200}'), 'exactly 200 -> 25'),
 (3, 'spend 100 USD get 10 USD off | spend 200 USD get 25 USD off', pg_temp.cart('USD', '{99.999}'), 'just below 100'),
 (4, 'first_order | 20% off max 50 USD', pg_temp.cart('USD', '{100}', '{"member": {"first_order": true}}'), '20% of 100'),
 (4, 'first_order | 20% off max 50 USD', pg_temp.cart('USD', '{400}', '{"member": {"first_order": true}}'), 'capped at 50'),
 (4, 'first_order | 20% off max 50 USD', pg_temp.cart('USD', '{100}', '{"member": {"first_order": false}}'), 'not a first order'),
 (4, 'first_order | 20% off max 50 USD', pg_temp.cart('USD', '{100}'), 'first_order unknown'),
 (4, 'first_order | 20% off max 50 USD', pg_temp.cart('EUR', '{100}', '{"member": {"first_order": true}}'), 'cap names USD'),
 (5, 'min_items=3 lifecycle=active,at_risk | 30% off', pg_temp.cart('EUR', '{10,20}', '{"member": {"lifecycle": "At Risk"}}', 2), '4 items, at risk'),
 (5, 'min_items=3 lifecycle=active,at_risk | 30% off', pg_temp.cart('JPY', '{1000,2000,3000}', '{"member": {"lifecycle": "active"}}'), 'any currency'),
 (5, 'min_items=3 lifecycle=active,at_risk | 30% off', pg_temp.cart('EUR', '{10,20}', '{"member": {"lifecycle": "active"}}'), 'two items'),
 (5, 'min_items=3 lifecycle=active,at_risk | 30% off', pg_temp.cart('EUR', '{10,20,30}', '{"member": {"lifecycle": "new"}}'), 'new member'),
 (5, 'min_items=3 lifecycle=active,at_risk | 30% off', pg_temp.cart('EUR', '{10,20,30}'), 'lifecycle unknown'),
 (6, 'spend 30 USD get free shipping', pg_temp.cart('USD', '{30}', '{"shipping": 5.99}'), 'shipping becomes the discount'),
 (6, 'spend 30 USD get free shipping', pg_temp.cart('USD', '{30}'), 'no shipping in the cart'),
 (6, 'spend 30 USD get free shipping', pg_temp.cart('USD', '{29}', '{"shipping": 5.99}'), 'below 30'),
 (7, 'categories=shoes,bags | 15% off', '{"currency": "USD", "items": [{"category": "Shoes", "qty": 1, "price": 100}, {"category": "toys", "qty": 1, "price": 1000}]}', '15% of the shoes only'),
 (7, 'categories=shoes,bags | 15% off', '{"currency": "USD", "items": [{"category": "toys", "qty": 1, "price": 100}, {"qty": 1, "price": 10}]}', 'no matching line'),
 (8, 'exclude_categories=gift_cards | spend 100 USD get 20 USD off', '{"currency": "USD", "items": [{"category": "shoes", "qty": 1, "price": 100}, {"category": "gift_cards", "qty": 1, "price": 50}]}', 'shoes reach 100'),
 (8, 'exclude_categories=gift_cards | spend 100 USD get 20 USD off', '{"currency": "USD", "items": [{"category": "shoes", "qty": 1, "price": 60}, {"category": "GIFT_CARDS", "qty": 1, "price": 500}]}', 'gift cards do not count'),
 (8, 'exclude_categories=gift_cards | spend 100 USD get 20 USD off', '{"currency": "USD", "items": [{"category": "gift_cards", "qty": 1, "price": 500}]}', 'only gift cards'),
 (9, 'countries=VN,TH | spend 200000 VND get 50000 VND off', pg_temp.cart('VND', '{200000}', '{"country": "vn"}'), 'ships to VN'),
 (9, 'countries=VN,TH | spend 200000 VND get 50000 VND off', pg_temp.cart('VND', '{200000}', '{"country": "SG"}'), 'ships to SG'),
 (9, 'countries=VN,TH | spend 200000 VND get 50000 VND off', pg_temp.cart('VND', '{200000}'), 'country unknown'),
 (10, 'tiers=Gold,Platinum | 10% off', pg_temp.cart('GBP', '{45.55}', '{"member": {"tier": "gold"}}'), 'gold, any case'),
 (10, 'tiers=Gold,Platinum | 10% off', pg_temp.cart('GBP', '{45.55}', '{"member": {"tier": "Silver"}}'), 'silver'),
 (10, 'tiers=Gold,Platinum | 10% off', pg_temp.cart('GBP', '{45.55}', '{"member": {}}'), 'tier unknown'),
 (11, 'segments=Champions,Loyal | 5 USD off', pg_temp.cart('USD', '{12}', '{"member": {"segment": "LOYAL"}}'), 'flat 5 off'),
 (11, 'segments=Champions,Loyal | 5 USD off', pg_temp.cart('USD', '{3.5}', '{"member": {"segment": "Champions"}}'), 'never above the subtotal'),
 (11, 'segments=Champions,Loyal | 5 USD off', pg_temp.cart('USD', '{12}', '{"member": {"segment": "At Risk"}}'), 'another segment'),
 (11, 'segments=Champions,Loyal | 5 USD off', pg_temp.cart('VND', '{120000}', '{"member": {"segment": "Loyal"}}'), 'amount names USD'),
 (11, 'segments=at_risk | 5 USD off', pg_temp.cart('USD', '{12}', '{"member": {"segment": "At Risk"}}'), '_ matches a space'),
 (12, 'valid=2024-11-01..2024-11-12 | spend 100 USD get 20 USD off', pg_temp.cart('USD', '{100}'), 'valid (as_of below)'),
 (13, 'stack=exclusive | 25% off', pg_temp.cart('USD', '{10.02}'), '25% of 10.02 = 2.505 -> 2.51'),
 (14, 'stack=brand | 10% off', pg_temp.cart('EUR', '{0.05}'), '10% of 0.05 = 0.005 -> 0.01'),
 (15, 'spend 100 USD get gift TOTE-01', pg_temp.cart('USD', '{100}'), 'gift line'),
 (15, 'spend 100 USD get gift TOTE-01', pg_temp.cart('USD', '{60}'), 'below 100');
SELECT n, note, e.*
  FROM ev_case, loyalty.coupon_evaluate(rule, cart, '2024-11-05 12:00+00') e
 ORDER BY n, eligible DESC, note;
-- coupon_discount is discount + shipping_discount (0 when not eligible),
-- for every case above.
SELECT count(*) AS cases,
       count(*) FILTER (WHERE loyalty.coupon_discount(rule, cart, '2024-11-05 12:00+00')
                              = CASE WHEN e.eligible THEN e.discount + e.shipping_discount ELSE 0 END) AS same
  FROM ev_case, loyalty.coupon_evaluate(rule, cart, '2024-11-05 12:00+00') e;
-- Discounts never exceed what they apply to, and have the currency's decimals.
SELECT count(*) FILTER (WHERE e.discount > (SELECT sum((i->>'qty')::numeric * (i->>'price')::numeric)
                                              FROM jsonb_array_elements(cart->'items') i)) AS above_subtotal,
       count(*) FILTER (WHERE e.shipping_discount > coalesce((cart->>'shipping')::numeric, 0)) AS above_shipping,
       count(*) FILTER (WHERE scale(e.discount) <> loyalty.currency_minor_unit(cart->>'currency')) AS wrong_scale
  FROM ev_case, loyalty.coupon_evaluate(rule, cart, '2024-11-05 12:00+00') e;

-- One row, not a set: the evaluator filters in WHERE and picks in CASE.
SELECT count(*) AS eligible_cases
  FROM ev_case
 WHERE (loyalty.coupon_evaluate(rule, cart, '2024-11-05 12:00+00')).eligible;
SELECT count(*) FILTER (WHERE e.eligible) AS eligible_cases FROM ev_case, loyalty.coupon_evaluate(rule, cart, '2024-11-05 12:00+00') e;

-- 2. Rounding half away from zero to the currency's minor unit.
SELECT c, p, loyalty.coupon_discount(r::loyalty.coupon_rule, pg_temp.cart(c, ARRAY[p]), '2024-01-01') AS discount
  FROM (VALUES ('VND', 12345::numeric, '10% off'),      -- 1234.5 -> 1235
               ('VND', 12344, '10% off'),               -- 1234.4 -> 1234
               ('JPY', 1005, '10% off'),                -- 100.5 -> 101
               ('JPY', 999, '33.33% off'),              -- 332.9667 -> 333
               ('USD', 0.15, '10% off'),                -- 0.015 -> 0.02
               ('USD', 0.14, '10% off'),                -- 0.014 -> 0.01
               ('USD', 33.335, '100% off'),             -- 33.335 is the base: 33.33, not 33.34
               ('USD', 9.995, '10 USD off'),            -- never above the base: 9.99
               ('KWD', 1.2345, '50% off'),              -- 0.61725 -> 0.617
               ('USD', 1.000000001, '50% off'),         -- exact: 0.5000000005 -> 0.50
               ('USD', 0.01, '50% off')) v(c, p, r);    -- 0.005 -> 0.01
-- Carts keep more decimals than the currency; the threshold compares exactly.
SELECT loyalty.coupon_discount('spend 100 USD get 10 USD off', pg_temp.cart('USD', '{33.334,33.333,33.333}')) AS reached,
       loyalty.coupon_discount('spend 100 USD get 10 USD off', pg_temp.cart('USD', '{33.333,33.333,33.333}')) AS not_reached;
-- The largest and smallest amounts a cart takes, read exactly (15 digits
-- before the point, 9 after it; CLF has 4 decimals).
SELECT loyalty.coupon_discount('100% off', '{"currency": "CLF", "items": [{"qty": 1, "price": 999999999999999.999999999},
                                             {"qty": 1, "price": 0.000000001}, {"qty": 1000000, "price": 12345.6789}]}') AS exact;
-- Random prices (0 to 9 decimals, up to 15 digits) and quantities: the
-- same discount as numeric arithmetic gives.
SELECT count(*) FILTER (WHERE loyalty.coupon_discount('33.33% off', jsonb_build_object('currency', 'KWD',
                              'items', jsonb_build_array(jsonb_build_object('qty', q, 'price', p))))
                        IS DISTINCT FROM least(round(p * q * 0.3333, 3), trunc(p * q, 3))) AS differ
  FROM (SELECT round((random() * 10 ^ (floor(random() * 15)))::numeric, floor(random() * 10)::int) AS p,
               1 + floor(random() * 5)::int AS q FROM generate_series(1, 20000)) r;
-- qty multiplies the price.
SELECT loyalty.coupon_discount('spend 100 USD get 10 USD off', pg_temp.cart('USD', '{25}', qty => 4)) AS four_times_25;

-- 3. An empty cart: subtotal 0.
SELECT * FROM loyalty.coupon_evaluate('10% off', '{"currency": "USD", "items": []}');
SELECT * FROM loyalty.coupon_evaluate('spend 1 USD get 1 USD off', '{"currency": "USD", "items": []}');
SELECT * FROM loyalty.coupon_evaluate('categories=shoes | 10% off', '{"currency": "USD", "items": []}');

-- 4. valid=: inclusive dates, the local date of as_of in time_zone (UTC by
-- default).
SELECT t, z, e.eligible, e.reason
  FROM (VALUES ('2024-10-31 23:59:59+00'::timestamptz, 'UTC'),
               ('2024-11-01 00:00+00', 'UTC'),
               ('2024-11-12 23:59:59+00', 'UTC'),
               ('2024-11-13 00:00+00', 'UTC'),
               ('2024-10-31 17:00+00', 'Asia/Ho_Chi_Minh'),   -- 2024-11-01 00:00 in Saigon
               ('2024-10-31 16:59:59+00', 'Asia/Ho_Chi_Minh'),
               ('2024-11-12 16:59:59+00', 'Asia/Ho_Chi_Minh'),
               ('2024-11-12 17:00+00', 'Asia/Ho_Chi_Minh'),  -- 2024-11-13 in Saigon
               ('2024-11-13 04:59:59+00', 'America/New_York'), -- still 2024-11-12 in New York
               ('2024-11-13 05:00+00', 'America/New_York')) v(t, z),
       loyalty.coupon_evaluate('valid=2024-11-01..2024-11-12 | spend 100 USD get 20 USD off',
                               pg_temp.cart('USD', '{100}'), t, z) e
 ORDER BY z, t;
-- as_of defaults to now(): a rule valid today, one that ended, one not begun.
SELECT (loyalty.coupon_evaluate(format('valid=%s..%s | 5%% off', current_date - 1, current_date + 1)::loyalty.coupon_rule,
                                pg_temp.cart('USD', '{10}'))).reason IS NULL AS valid_now,
       (loyalty.coupon_evaluate('valid=2000-01-01..2000-01-02 | 5% off', pg_temp.cart('USD', '{10}'))).reason AS old,
       (loyalty.coupon_evaluate('valid=2999-01-01..2999-01-02 | 5% off', pg_temp.cart('USD', '{10}'))).reason AS future;
-- An unknown time zone is an error, whether or not the rule has valid=.
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount('5% off', '{"currency": "USD", "items": []}', now(), 'Mars/Olympus')$$);
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount('valid=2024-01-01..2024-01-02 | 5% off', '{"currency": "USD", "items": []}', now(), 'Mars/Olympus')$$);

-- 5. The order of the checks: the first that fails is the reason.
-- not_valid_yet/expired, currency, country, first_order, tier, segment,
-- lifecycle, category, min_items, below_threshold.
SELECT r, (loyalty.coupon_evaluate(r::loyalty.coupon_rule, c, '2024-06-01')).reason
  FROM (VALUES ('valid=2024-07-01..2024-07-31 countries=VN | spend 100 USD get 1 USD off', '{"currency": "EUR", "items": []}'::jsonb),
               ('valid=2024-05-01..2024-05-31 countries=VN | spend 100 USD get 1 USD off', '{"currency": "EUR", "items": []}'),
               ('countries=VN | spend 100 USD get 1 USD off', '{"currency": "EUR", "country": "TH", "items": []}'),
               ('first_order countries=VN | spend 100 USD get 1 USD off', '{"currency": "USD", "country": "TH", "items": []}'),
               ('first_order tiers=Gold | spend 100 USD get 1 USD off', '{"currency": "USD", "items": []}'),
               ('tiers=Gold segments=Loyal | spend 100 USD get 1 USD off', '{"currency": "USD", "items": []}'),
               ('segments=Loyal lifecycle=active | spend 100 USD get 1 USD off', '{"currency": "USD", "items": []}'),
               ('lifecycle=active categories=shoes | spend 100 USD get 1 USD off', '{"currency": "USD", "items": []}'),
               ('categories=shoes min_items=5 | spend 100 USD get 1 USD off', '{"currency": "USD", "items": [{"category": "toys", "qty": 9, "price": 1000}]}'),
               ('categories=shoes min_items=5 | spend 100 USD get 1 USD off', '{"currency": "USD", "items": [{"category": "shoes", "qty": 4, "price": 1000}, {"category": "toys", "qty": 9, "price": 1}]}'),
               ('categories=shoes min_items=5 | spend 100 USD get 1 USD off', '{"currency": "USD", "items": [{"category": "shoes", "qty": 5, "price": 19.99}]}'),
               ('categories=shoes min_items=5 | spend 100 USD get 1 USD off', '{"currency": "USD", "items": [{"category": "shoes", "qty": 5, "price": 20}]}')) v(r, c);

-- 6. Malformed carts: LY030, the message naming the field and the value.
SELECT c, public.sqlstate_of(format('SELECT loyalty.coupon_discount(%L, %L)', '5% off', c)) AS refused
  FROM (VALUES ('{"items": []}'),
               ('{"currency": null, "items": []}'),
               ('{"currency": "XYZ", "items": []}'),
               ('{"currency": 840, "items": []}'),
               ('{"currency": "USD"}'),
               ('{"currency": "USD", "items": {"qty": 1}}'),
               ('{"currency": "USD", "items": [1]}'),
               ('{"currency": "USD", "items": [{"qty": 1, "price": 1}, {"qty": 1, "price": 1}, {"qty": -1, "price": 1}]}'),
               ('{"currency": "USD", "items": [{"qty": 0, "price": 1}]}'),
               ('{"currency": "USD", "items": [{"qty": 1.5, "price": 1}]}'),
               ('{"currency": "USD", "items": [{"qty": "2", "price": 1}]}'),
               ('{"currency": "USD", "items": [{"qty": 1000001, "price": 1}]}'),
               ('{"currency": "USD", "items": [{"price": 1}]}'),
               ('{"currency": "USD", "items": [{"qty": 1}]}'),
               ('{"currency": "USD", "items": [{"qty": 1, "price": -0.01}]}'),
               ('{"currency": "USD", "items": [{"qty": 1, "price": "NaN"}]}'),
               ('{"currency": "USD", "items": [{"qty": 1, "price": "Infinity"}]}'),
               ('{"currency": "USD", "items": [{"qty": 1, "price": 0.0000000001}]}'),
               ('{"currency": "USD", "items": [{"qty": 1, "price": 1000000000000000}]}'),
               ('{"currency": "USD", "items": [{"qty": 1, "price": 1, "category": 7}]}'),
               ('{"currency": "USD", "items": [], "shipping": -5}'),
               ('{"currency": "USD", "items": [], "shipping": "free"}'),
               ('{"currency": "USD", "items": [], "country": "VNM"}'),
               ('{"currency": "USD", "items": [], "member": "gold"}'),
               ('{"currency": "USD", "items": [], "member": {"first_order": "yes"}}'),
               ('{"currency": "USD", "items": [], "member": {"tier": 3}}'),
               ('[]'),
               ('"USD"')) v(c);
-- Accepted: JSON null is absent, unknown keys are ignored, trailing zero
-- decimals and "2.0" as a qty are fine, the currency in any case.
SELECT * FROM loyalty.coupon_evaluate('spend 10 USD get 1 USD off',
    '{"currency": "usd", "coupon": "X", "country": null, "shipping": null, "member": null,
      "items": [{"qty": 2.0, "price": 5.0000000000, "sku": 7, "note": [1]}]}');
-- A malformed cart is an error even when the rule would not look at it.
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount('spend 1 EUR get 1 EUR off', '{"currency": "USD", "items": [{"qty": -1, "price": 1}]}')$$);
-- The full error.
SELECT loyalty.coupon_discount('5% off', '{"currency": "USD", "items": [{"qty": 1, "price": 1}, {"qty": 2, "price": -3}]}');

-- 7. NULL arguments are errors naming the argument (22004), not a silent NULL.
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount(NULL, '{"currency": "USD", "items": []}')$$);
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount('5% off', NULL)$$);
SELECT public.sqlstate_of($$SELECT loyalty.coupon_discount('5% off', '{"currency": "USD", "items": []}', NULL)$$);
SELECT public.sqlstate_of($$SELECT * FROM loyalty.coupon_evaluate('5% off', '{"currency": "USD", "items": []}', now(), NULL)$$);
SELECT public.sqlstate_of($$SELECT * FROM loyalty.coupon_evaluate('5% off', '{"currency": "USD", "items": []}', 'infinity')$$);

-- 8. coupon_evaluate returns one row, usable in a select list and in FROM.
SELECT (loyalty.coupon_evaluate('5% off', pg_temp.cart('USD', '{10}'))).discount AS in_select_list;
SELECT count(*) AS rows FROM loyalty.coupon_evaluate('5% off', pg_temp.cart('USD', '{10}'));
RESET ROLE;
-- The reader may call the pure evaluator too.
SET ROLE loyalty_reader;
SELECT loyalty.coupon_discount('spend 50 USD get 10 USD off', '{"currency": "USD", "items": [{"qty": 1, "price": 50}]}') AS as_reader;
RESET ROLE;

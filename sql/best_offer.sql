-- best_offer: the member's usable codes (own unused issued codes, shared
-- codes), the combination with the largest total under stacking groups
-- and the cap, ties to the soonest-ending campaign; set_discount_cap.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('bo', 'USD');
SELECT loyalty.enroll('bo', m) FROM unnest(ARRAY['ann', 'bob', 'hal']) m;
SELECT loyalty.set_member_status('bo', 'hal', 'held');
\set cart '{"currency": "USD", "shipping": 8, "items": [{"sku": "A1", "category": "shoes", "qty": 2, "price": 50}]}'

SET ROLE loyalty_admin;
-- Subtotal 100.  brand group: 10 and 20; exclusive 25; free shipping 8;
-- ungrouped 5 off; one only for bob; one expired; one used up.
SELECT loyalty.create_campaign('bo', 'brand10', 'stack=brand | 10% off');
SELECT loyalty.create_campaign('bo', 'brand20', 'stack=brand | 20% off');
SELECT loyalty.create_campaign('bo', 'solo25', 'stack=exclusive | 25% off');
SELECT loyalty.create_campaign('bo', 'ship', 'spend 30 USD get free shipping');
SELECT loyalty.create_campaign('bo', 'five', '5 USD off');
SELECT loyalty.create_campaign('bo', 'bobs', '50 USD off');
SELECT loyalty.create_campaign('bo', 'gone', 'valid=2024-01-01..2024-01-31 | 40 USD off');
SELECT loyalty.create_campaign('bo', 'spent', '30 USD off', total_limit => 1);
SELECT loyalty.add_code('bo', 'brand10', 'BRAND10');
SELECT loyalty.add_code('bo', 'brand20', 'BRAND20');
SELECT loyalty.add_code('bo', 'solo25', 'SOLO25');
SELECT loyalty.add_code('bo', 'ship', 'SHIP');
SELECT loyalty.add_code('bo', 'five', 'FIVE');
SELECT loyalty.add_code('bo', 'gone', 'GONE');
SELECT loyalty.add_code('bo', 'spent', 'SPENT');
SELECT count(*) FROM loyalty.issue_codes('bo', 'bobs', 1, 'bob');
RESET ROLE;
SET ROLE loyalty_app;
SELECT loyalty.redeem_coupon('bo', 'SPENT', 'bob', :'cart', 'x-1');

-- ann: brand20 (20) + ship (8) + five (5) = 33 beats solo25 alone (25).
SELECT * FROM loyalty.best_offer('bo', 'ann', :'cart');
-- The cap at 30%: only brand20 + ship + five reach 30; five is cut to 2.
RESET ROLE;
SELECT loyalty.set_discount_cap('bo', 30);
SET ROLE loyalty_app;
SELECT * FROM loyalty.best_offer('bo', 'ann', :'cart');
-- bob's own code (50 off) is cut to the cap alone.
SELECT CASE WHEN code ~ '-' THEN '<own code>' ELSE code END AS code, discount
  FROM loyalty.best_offer('bo', 'bob', :'cart');
RESET ROLE;
SELECT loyalty.set_discount_cap('bo', NULL);
SET ROLE loyalty_app;
SELECT CASE WHEN code ~ '-' THEN '<own code>' ELSE code END AS code, discount
  FROM loyalty.best_offer('bo', 'bob', :'cart');
-- The best offer redeems as offered.
SELECT o.code, loyalty.redeem_coupon('bo', o.code, 'ann', :'cart', 'ann-1') = o.discount AS same
  FROM loyalty.best_offer('bo', 'ann', :'cart') o ORDER BY o.code;
-- ann's per-member limit of 1 is used on brand20, ship and five: of
-- brand10 and solo25 left, solo25 alone is best.
SELECT * FROM loyalty.best_offer('bo', 'ann', :'cart');
-- A used issued code is offered no more.
SELECT loyalty.redeem_coupon('bo', o.code, 'bob', :'cart', 'bob-1')
  FROM loyalty.best_offer('bo', 'bob', :'cart') o WHERE o.code ~ '-';
SELECT * FROM loyalty.best_offer('bo', 'bob', :'cart');
-- A held member gets no offer; a cart that nothing fits gets none.
SELECT count(*) AS held FROM loyalty.best_offer('bo', 'hal', :'cart');
SELECT count(*) AS empty FROM loyalty.best_offer('bo', 'bob', '{"currency": "USD", "items": []}');
-- A cart in a currency without an FX rate into the base currency: LY005
-- (budgets count in base currency).
SELECT regexp_replace(sqlstate_of($$SELECT * FROM loyalty.best_offer('bo', 'bob', '{"currency": "MNT", "items": [{"sku": "A1", "qty": 1, "price": 10}]}')$$),
                      ' at .*', ' at <time>') AS eur;
RESET ROLE;

-- Ties: two equal coupons of one group; the campaign ending first wins.
SELECT loyalty.create_program('bo2', 'USD');
SELECT loyalty.enroll('bo2', 'kim');
SELECT loyalty.create_campaign('bo2', 'late', 'valid=2020-01-01..2099-12-31 stack=g | 10 USD off');
SELECT loyalty.create_campaign('bo2', 'soon', 'valid=2020-01-01..2098-12-31 stack=g | 10 USD off');
SELECT loyalty.create_campaign('bo2', 'open', 'stack=g | 10 USD off');
SELECT loyalty.add_code('bo2', 'late', 'AAA');
SELECT loyalty.add_code('bo2', 'soon', 'ZZZ');
SELECT loyalty.add_code('bo2', 'open', 'BBB');
SELECT * FROM loyalty.best_offer('bo2', 'kim', :'cart');
-- One code per campaign: a second shared code of a campaign is not offered beside the first.
SELECT loyalty.create_campaign('bo2', 'twice', '3 USD off');
SELECT loyalty.add_code('bo2', 'twice', 'TWICE1');
SELECT loyalty.add_code('bo2', 'twice', 'TWICE2');
SELECT * FROM loyalty.best_offer('bo2', 'kim', :'cart');

-- Bad arguments.
SELECT * FROM loyalty.best_offer('bo', NULL, :'cart');
SELECT * FROM loyalty.best_offer('bo', 'nobody', :'cart');
SELECT * FROM loyalty.best_offer('nope', 'ann', :'cart');
SELECT * FROM loyalty.best_offer('bo', 'ann', NULL);
SELECT * FROM loyalty.best_offer('bo', 'ann', '7');
SELECT * FROM loyalty.best_offer('bo', 'ann', :'cart', NULL);
SET ROLE loyalty_app;
SELECT regexp_replace(sqlstate_of(format('SELECT * FROM loyalty.best_offer(%L, %L, %L, %L)',
                      'bo', 'ann', :'cart', now() + interval '1 day')), '".*"', '"<time>"') AS future;
RESET ROLE;
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT * FROM loyalty.best_offer('bo', 'ann', '{}')$$);
RESET ROLE;

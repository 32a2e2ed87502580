-- Coupons at checkout: member_cart, validate_coupon (reasons, never an
-- error for the coupon's state), redeem_coupon (idempotent, limits, budget,
-- stacking and the cap, errors LY020-LY027), release_coupon, and the
-- automatic release when an attached order is cancelled, deleted,
-- truncated or fully refunded.  Run as the application's role.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql
-- redeem_coupon's discount, or its SQLSTATE and message, with the random
-- codes and the clock's times masked (no DETAIL: it holds times).
CREATE FUNCTION public.try_redeem(code text, member text, cart jsonb, ref text, as_of timestamptz DEFAULT now())
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN loyalty.redeem_coupon('cr', code, member, cart, ref, as_of)::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(SQLERRM,
        '[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}', '<code>', 'g'),
        '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.0-9]*\+00', '<time>', 'g');
END
$$;

SELECT loyalty.create_program('cr', 'USD', timezone => 'Asia/Ho_Chi_Minh');
SELECT loyalty.set_fx_rate('USD', 'VND', 25000);
SELECT loyalty.enroll('cr', m) FROM unnest(ARRAY['ann', 'bob', 'cat', 'dan', 'eve']) m;
SELECT loyalty.set_member_status('cr', 'cat', 'held');
SELECT loyalty.set_tier_ladder('cr', 'basis=spend | Member 0 x1 | Gold 500 x1.5');
SET ROLE loyalty_admin;
SELECT loyalty.create_campaign('cr', 'spring',
    'spend 50 USD get 10 USD off | spend 200000 VND get 50000 VND off', total_limit => 3, budget => 100);
SELECT loyalty.add_code('cr', 'spring', 'SPRING');
SELECT loyalty.create_campaign('cr', 'flat', '10 USD off', per_member_limit => NULL, budget => 15);
SELECT loyalty.add_code('cr', 'flat', 'FLAT10');
SELECT loyalty.create_campaign('cr', 'any', '10% off', per_member_limit => NULL);
SELECT loyalty.add_code('cr', 'any', 'ANY10');
SELECT loyalty.add_code('cr', 'any', 'ANYTEN');
SELECT loyalty.create_campaign('cr', 'old', 'valid=2024-11-01..2024-11-12 | spend 100 USD get 20 USD off');
SELECT loyalty.add_code('cr', 'old', 'NOV2024');
SELECT loyalty.create_campaign('cr', 'winback', '15% off', audience => 'at_risk');
SELECT loyalty.add_code('cr', 'winback', 'COMEBACK');
SELECT loyalty.create_campaign('cr', 'members', '5 USD off', audience => 'MEMBER');
SELECT loyalty.add_code('cr', 'members', 'MEMBERS5');
SELECT loyalty.create_campaign('cr', 'personal', '5 USD off', per_member_limit => NULL);
SELECT code AS ann_code FROM loyalty.issue_codes('cr', 'personal', 1, 'ann') code \gset
SELECT code AS anyone_code FROM loyalty.issue_codes('cr', 'personal', 1) code \gset
RESET ROLE;

\set cart60 '{"currency": "USD", "country": "VN", "shipping": 5, "items": [{"sku": "A1", "category": "shoes", "qty": 2, "price": 30}]}'
\set cart40 '{"currency": "USD", "items": [{"sku": "A2", "qty": 1, "price": 40}]}'
\set cartvnd '{"currency": "VND", "items": [{"sku": "B1", "qty": 1, "price": 250000}]}'
\set carteur '{"currency": "MNT", "items": [{"sku": "C1", "qty": 1, "price": 100}]}'

SET ROLE loyalty_app;

-- The cart with the member's facts, whatever member the caller claimed.
SELECT loyalty.member_cart('cr', 'ann', '{"currency": "USD", "member": {"tier": "Platinum"}}');

-- validate: the discount, or why not; nothing is written.
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', ' spr-ing ', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'ann', :'cart40');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'ann', :'carteur');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'ann', :'cartvnd');
SELECT * FROM loyalty.validate_coupon('cr', 'NOPE', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'NOV2024', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'COMEBACK', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'MEMBERS5', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', :'ann_code', 'bob', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', :'ann_code', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'cat', :'cart60');
-- A mistyped issued code (one character changed) is told apart from an unknown one.
SELECT overlay(:'ann_code' placing CASE WHEN substr(:'ann_code', 1, 1) = 'A' THEN 'B' ELSE 'A' END from 1 for 1) AS typo \gset
SELECT * FROM loyalty.validate_coupon('cr', :'typo', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', lower(replace(:'ann_code', '-', ' ')), 'ann', :'cart60');
RESET ROLE;
SELECT count(*) AS nothing_written FROM loyalty.coupon_redemption WHERE program = 'cr';
SET ROLE loyalty_app;

-- Bad arguments raise.
SELECT * FROM loyalty.validate_coupon('cr', NULL, 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', NULL, :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'ann', NULL);
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'ann', '[1, 2]');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'nobody', :'cart60');
SELECT * FROM loyalty.validate_coupon('nope', 'SPRING', 'ann', :'cart60');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'ann', :'cart60', NULL);
SELECT regexp_replace(sqlstate_of(format('SELECT * FROM loyalty.validate_coupon(%L, %L, %L, %L, %L)',
                      'cr', 'SPRING', 'ann', :'cart60', now() + interval '1 day')), '".*"', '"<time>"') AS future;

-- redeem: the discount; a replay returns it again and writes nothing.
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'ann', :'cart60', 'o-1');
SELECT loyalty.redeem_coupon('cr', 'spring', 'ann', :'cart40', 'o-1') AS replay;
SELECT try_redeem('SPRING', 'bob', :'cart60', 'o-1');
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'ann', :'cart60', 'o-2');
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'bob', :'cart40', 'o-3');
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'bob', :'cartvnd', 'o-3');
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'cat', :'cart60', 'o-4');
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'dan', :'cart60', 'o-5');
-- The limit of 3 is reached: a fourth member is refused, a replay still answers.
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'eve', :'cart60', 'o-6');
SELECT * FROM loyalty.validate_coupon('cr', 'SPRING', 'eve', :'cart60');
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'ann', :'cart60', 'o-1') AS replay_after_limit;
RESET ROLE;
SELECT member_id, CASE WHEN code ~ '^[A-Z]+$' THEN code ELSE '<code>' END AS code, campaign, order_ref, currency, subtotal, discount, discount_base, released_at IS NOT NULL AS released
  FROM loyalty.coupon_redemption WHERE program = 'cr' ORDER BY order_ref;
SELECT campaign, redeemed_count, spent_base FROM loyalty.coupon_campaign WHERE program = 'cr' AND campaign = 'spring';
SET ROLE loyalty_app;

-- Budget 15: one 10 off fits, the second would pass it.
SELECT loyalty.redeem_coupon('cr', 'FLAT10', 'eve', :'cart40', 'o-7');
SELECT * FROM loyalty.validate_coupon('cr', 'FLAT10', 'eve', :'cart40');
SELECT loyalty.redeem_coupon('cr', 'FLAT10', 'eve', :'cart40', 'o-8');

-- Issued codes: only their member, once.
SELECT try_redeem(:'ann_code', 'bob', :'cart60', 'o-9');
SELECT try_redeem(lower(:'ann_code'), 'ann', :'cart60', 'o-9');
SELECT try_redeem(:'ann_code', 'ann', :'cart60', 'o-10');
SELECT try_redeem(:'anyone_code', 'bob', :'cart60', 'o-11');
SELECT try_redeem(:'anyone_code', 'dan', :'cart60', 'o-12');

-- Unknown, mistyped, expired, outside the audience, no FX rate.
SELECT loyalty.redeem_coupon('cr', 'NOPE', 'ann', :'cart60', 'o-13');
SELECT try_redeem(:'typo', 'ann', :'cart60', 'o-13');
SELECT loyalty.redeem_coupon('cr', 'NOV2024', 'ann', :'cart60', 'o-13');
SELECT loyalty.redeem_coupon('cr', 'COMEBACK', 'ann', :'cart60', 'o-13');
SELECT try_redeem('ANY10', 'ann', :'carteur', 'o-13');

-- Bad arguments, and a time the application may not choose.
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'ann', :'cart60', NULL);
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'ann', :'cart60', '');
SELECT loyalty.redeem_coupon('cr', NULL, 'ann', :'cart60', 'o-13');
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'ann', '"cart"', 'o-13');
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'zed', :'cart60', 'o-13');
SELECT try_redeem('ANY10', 'ann', :'cart60', 'o-13', now() + interval '1 hour');
SELECT try_redeem('ANY10', 'ann', :'cart60', 'o-13', now() - interval '1 hour');
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'ann', :'cart60', 'o-13', NULL);
RESET ROLE;
SELECT count(*) AS none_on_o13 FROM loyalty.coupon_redemption WHERE program = 'cr' AND order_ref = 'o-13';
-- An admin may redeem at another time: the expired campaign, back then.
SET ROLE loyalty_admin;
SELECT loyalty.redeem_coupon('cr', 'NOV2024', 'bob', '{"currency": "USD", "items": [{"sku": "A1", "qty": 1, "price": 120}]}',
                             'o-14', '2024-11-12 16:59:59+00');
SELECT loyalty.redeem_coupon('cr', 'NOV2024', 'dan', '{"currency": "USD", "items": [{"sku": "A1", "qty": 1, "price": 120}]}',
                             'o-15', '2024-11-12 17:00:00+00');
RESET ROLE;

-- Release: the units and the budget come back, the issued code is usable
-- again; idempotent; a replay of a released redemption is refused.
SET ROLE loyalty_app;
SELECT loyalty.release_coupon('cr', 'o-1');
SELECT loyalty.release_coupon('cr', 'o-1') AS again;
SELECT loyalty.release_coupon('cr', 'o-404');
SELECT loyalty.release_coupon('cr', NULL);
SELECT loyalty.release_coupon('nope', 'o-1');
RESET ROLE;
SELECT campaign, redeemed_count, spent_base FROM loyalty.coupon_campaign WHERE program = 'cr' AND campaign = 'spring';
SET ROLE loyalty_app;
SELECT try_redeem('SPRING', 'ann', :'cart60', 'o-1');
SELECT loyalty.redeem_coupon('cr', 'SPRING', 'eve', :'cart60', 'o-6');
SELECT loyalty.release_coupon('cr', 'o-7');
SELECT loyalty.redeem_coupon('cr', 'FLAT10', 'eve', :'cart40', 'o-8');
SELECT loyalty.release_coupon('cr', 'o-9');
SELECT try_redeem(:'ann_code', 'ann', :'cart60', 'o-10');
RESET ROLE;
SELECT campaign, redeemed_count, spent_base FROM loyalty.coupon_campaign WHERE program = 'cr' ORDER BY campaign;
-- The counters equal the active redemptions.
SELECT c.campaign, c.redeemed_count = count(r.*) AS count_ok, c.spent_base = coalesce(sum(r.discount_base), 0) AS spent_ok
  FROM loyalty.coupon_campaign c
  LEFT JOIN loyalty.coupon_redemption r ON r.program = c.program AND r.campaign = c.campaign AND r.released_at IS NULL
 WHERE c.program = 'cr' GROUP BY c.campaign, c.redeemed_count, c.spent_base ORDER BY 1;

-- Several coupons on one order: stacking groups and the program's cap.
SET ROLE loyalty_admin;
SELECT loyalty.create_campaign('cr', 'brand_a', 'stack=brand | 10% off', per_member_limit => NULL);
SELECT loyalty.add_code('cr', 'brand_a', 'BRANDA');
SELECT loyalty.create_campaign('cr', 'brand_b', 'stack=brand | 20% off', per_member_limit => NULL);
SELECT loyalty.add_code('cr', 'brand_b', 'BRANDB');
SELECT loyalty.create_campaign('cr', 'solo', 'stack=exclusive | 25% off', per_member_limit => NULL);
SELECT loyalty.add_code('cr', 'solo', 'SOLO');
SELECT loyalty.create_campaign('cr', 'ship', 'spend 30 USD get free shipping', per_member_limit => NULL);
SELECT loyalty.add_code('cr', 'ship', 'SHIPFREE');
RESET ROLE;
SET ROLE loyalty_app;
-- An exclusive coupon alone; nothing beside it, and it beside nothing.
SELECT loyalty.redeem_coupon('cr', 'SOLO', 'bob', :'cart60', 's-1');
SELECT loyalty.redeem_coupon('cr', 'BRANDA', 'bob', :'cart60', 's-1');
SELECT loyalty.redeem_coupon('cr', 'BRANDA', 'bob', :'cart60', 's-2');
SELECT loyalty.redeem_coupon('cr', 'SOLO', 'bob', :'cart60', 's-2');
-- One coupon per stack group; other groups and ungrouped coupons combine.
SELECT loyalty.redeem_coupon('cr', 'BRANDB', 'bob', :'cart60', 's-2');
SELECT loyalty.redeem_coupon('cr', 'SHIPFREE', 'bob', :'cart60', 's-2');
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'bob', :'cart60', 's-2');
-- Two codes of one campaign on one order: refused.
SELECT loyalty.redeem_coupon('cr', 'ANYTEN', 'bob', :'cart60', 's-2');
RESET ROLE;
SELECT code, discount FROM loyalty.coupon_redemption WHERE program = 'cr' AND order_ref = 's-2' ORDER BY code;
-- The cap: 20% of the subtotal over all coupons of an order.
SET ROLE loyalty_admin;
SELECT loyalty.set_discount_cap('cr', 20);
SELECT discount_cap_percent FROM loyalty.program WHERE code = 'cr';
SELECT loyalty.set_discount_cap('cr', 0);
SELECT loyalty.set_discount_cap('cr', 100.5);
SELECT loyalty.set_discount_cap('cr', 'NaN');
SELECT loyalty.set_discount_cap('nope', 10);
RESET ROLE;
SET ROLE loyalty_app;
SELECT loyalty.set_discount_cap('cr', 50);
-- 60 x 20% = 12: 6 (10%), then 5 of the shipping 5, then 1 of the next 6, then nothing.
SELECT loyalty.redeem_coupon('cr', 'BRANDA', 'dan', :'cart60', 'c-1');
SELECT loyalty.redeem_coupon('cr', 'SHIPFREE', 'dan', :'cart60', 'c-1');
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'dan', :'cart60', 'c-1');
SELECT loyalty.redeem_coupon('cr', 'FLAT10', 'dan', :'cart60', 'c-1');
SELECT * FROM loyalty.validate_coupon('cr', 'SOLO', 'dan', :'cart60');
RESET ROLE;
SELECT sum(discount) AS total_on_c1 FROM loyalty.coupon_redemption WHERE program = 'cr' AND order_ref = 'c-1';
SELECT loyalty.set_discount_cap('cr', NULL);
SELECT discount_cap_percent FROM loyalty.program WHERE code = 'cr';

-- The automatic release, with a real attached orders table written by the
-- application: the order and its coupon in one transaction.
DROP ROLE IF EXISTS regress_coupon_shop;
CREATE ROLE regress_coupon_shop IN ROLE loyalty_app;
CREATE TABLE cr_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                        refunded numeric DEFAULT 0, at timestamptz DEFAULT now());
SELECT loyalty.attach_orders('cr', 'cr_orders', 'id', 'member', 'amount', NULL, 'status', 'refunded', 'at');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON cr_orders TO regress_coupon_shop;
SET ROLE regress_coupon_shop;
BEGIN;
INSERT INTO cr_orders (id, member, amount) VALUES ('A-1', 'eve', 60);
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'eve', :'cart60', 'A-1');
COMMIT;
BEGIN;
INSERT INTO cr_orders (id, member, amount) VALUES ('A-2', 'eve', 60), ('A-3', 'eve', 60), ('A-4', 'eve', 60),
                                                  ('A-5', 'eve', 60), ('A-6', 'eve', 60);
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'eve', :'cart60', o) FROM unnest(ARRAY['A-2', 'A-3', 'A-4', 'A-5', 'A-6']) o;
COMMIT;
-- Cancel, delete, full refund release; a partial refund does not.
UPDATE cr_orders SET status = 'Cancelled' WHERE id = 'A-1';
DELETE FROM cr_orders WHERE id = 'A-2';
UPDATE cr_orders SET refunded = 60 WHERE id = 'A-3';
UPDATE cr_orders SET refunded = 20 WHERE id = 'A-4';
-- A coupon redeemed and its order cancelled in one transaction: released.
BEGIN;
INSERT INTO cr_orders (id, member, amount) VALUES ('A-7', 'eve', 60);
SELECT loyalty.redeem_coupon('cr', 'ANY10', 'eve', :'cart60', 'A-7');
UPDATE cr_orders SET status = 'cancelled' WHERE id = 'A-7';
COMMIT;
RESET ROLE;
SELECT order_ref, released_at IS NOT NULL AS released FROM loyalty.coupon_redemption
 WHERE program = 'cr' AND order_ref LIKE 'A-%' ORDER BY order_ref;
SET ROLE regress_coupon_shop;
-- TRUNCATE closes every open order, and releases their coupons.
TRUNCATE cr_orders;
RESET ROLE;
SELECT order_ref, released_at IS NOT NULL AS released FROM loyalty.coupon_redemption
 WHERE program = 'cr' AND order_ref LIKE 'A-%' ORDER BY order_ref;
SELECT c.campaign, c.redeemed_count = count(r.*) AS count_ok, c.spent_base = coalesce(sum(r.discount_base), 0) AS spent_ok
  FROM loyalty.coupon_campaign c
  LEFT JOIN loyalty.coupon_redemption r ON r.program = c.program AND r.campaign = c.campaign AND r.released_at IS NULL
 WHERE c.program = 'cr' GROUP BY c.campaign, c.redeemed_count, c.spent_base ORDER BY 1;

-- Who may call what.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.set_discount_cap('cr', 10)$$);
SELECT sqlstate_of($$UPDATE loyalty.coupon_campaign SET redeemed_count = 0$$);
SELECT sqlstate_of($$SELECT loyalty.release_orders('cr', ARRAY['o-2'])$$);
RESET ROLE;
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT loyalty.redeem_coupon('cr', 'ANY10', 'ann', '{}', 'r-1')$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.validate_coupon('cr', 'ANY10', 'ann', '{}')$$);
RESET ROLE;
SELECT loyalty.detach_orders('cr', 'cr_orders');
DROP TABLE cr_orders;
DROP ROLE regress_coupon_shop;

-- Coupons on the cluster: the campaigns and codes are reference tables,
-- the redemptions live with each member; redeem_coupon runs on the
-- coordinator as one distributed transaction under the campaign's row
-- lock, so a campaign's total limit and budget hold exactly however the
-- members are spread over the nodes.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT loyalty.create_program('shop', 'EUR', 1);
SELECT count(*) FILTER (WHERE loyalty.enroll('shop', 'c' || i)) AS enrolled FROM generate_series(1, 30) i;
SELECT loyalty.set_member_status('shop', 'c30', 'held');
SET ROLE loyalty_admin;
-- 10 EUR off: at most 6 redemptions in all, and a budget of 45 EUR (4 of them).
SELECT loyalty.create_campaign('shop', 'limited', '10 EUR off', total_limit => 6, budget => 45);
SELECT loyalty.add_code('shop', 'limited', 'LIMITED');
-- 5 EUR off, twice per member, at most 8 in all.
SELECT loyalty.create_campaign('shop', 'twice', '5 EUR off', total_limit => 8, per_member_limit => 2);
SELECT loyalty.add_code('shop', 'twice', 'TWICE');
SELECT loyalty.create_campaign('shop', 'pct', 'spend 50 EUR get 10% off', per_member_limit => NULL);
SELECT loyalty.add_code('shop', 'pct', 'PCT10');
RESET ROLE;
\set cart '{"currency": "EUR", "items": [{"sku": "A1", "qty": 2, "price": 30}]}'
SET ROLE loyalty_app;
SELECT (loyalty.validate_coupon('shop', 'LIMITED', 'c1', :'cart')).*;
SELECT (loyalty.validate_coupon('shop', 'LIMITED', 'nobody', :'cart')).*;
RESET ROLE;
CREATE FUNCTION public.try_coupon(code text, member text, ref text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN loyalty.redeem_coupon('shop', code, member, '{"currency": "EUR", "items": [{"sku": "A1", "qty": 2, "price": 30}]}', ref)::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SET ROLE loyalty_app;
-- Ten members try LIMITED: the budget (45 EUR) stops it after 4.
SELECT i, public.try_coupon('LIMITED', 'c' || i, 'o-' || i) FROM generate_series(1, 10) i ORDER BY i;
RESET ROLE;
SELECT campaign, redeemed_count, spent_base FROM loyalty.coupon_campaign WHERE program = 'shop' AND campaign = 'limited';
SELECT count(*) AS redemptions, sum(discount) AS discount FROM loyalty.coupon_redemption WHERE program = 'shop' AND campaign = 'limited';
-- A replay returns the same discount and counts nothing; the same order with another member is refused.
SET ROLE loyalty_app;
SELECT public.try_coupon('LIMITED', 'c2', 'o-2') AS replay;
SELECT public.try_coupon('LIMITED', 'c11', 'o-2') AS other_member;
RESET ROLE;
SELECT redeemed_count, spent_base FROM loyalty.coupon_campaign WHERE program = 'shop' AND campaign = 'limited';
-- TWICE: two per member, eight in all, members on every node.
SET ROLE loyalty_app;
SELECT i, j, public.try_coupon('TWICE', 'c' || i, 't-' || i || '-' || j) FROM generate_series(11, 16) i, generate_series(1, 3) j ORDER BY i, j;
RESET ROLE;
SELECT redeemed_count FROM loyalty.coupon_campaign WHERE program = 'shop' AND campaign = 'twice';
SELECT member_id, count(*) FROM loyalty.coupon_redemption WHERE program = 'shop' AND campaign = 'twice' GROUP BY 1 ORDER BY 1;
-- Releasing an order gives its unit back; the next member gets it.
SET ROLE loyalty_app;
SELECT loyalty.release_coupon('shop', 't-11-1') AS released;
RESET ROLE;
SELECT redeemed_count FROM loyalty.coupon_campaign WHERE program = 'shop' AND campaign = 'twice';
SET ROLE loyalty_app;
SELECT public.try_coupon('TWICE', 'c17', 't-17-1') AS after_release;
SELECT public.try_coupon('TWICE', 'c18', 't-18-1') AS over_limit;
-- Held and unknown members, bad input.
SELECT public.try_coupon('PCT10', 'c30', 'h-1') AS held;
SELECT public.try_coupon('PCT10', 'nobody', 'n-1') AS unknown;
SELECT public.try_coupon('NOSUCH', 'c1', 'x-1') AS no_code;
SELECT public.try_coupon('PCT10', 'c1', NULL) AS no_ref;
-- Offers for a member's cart, and the bigint twins through the coordinator.
SELECT * FROM loyalty.best_offer('shop', 'c20', :'cart');
SELECT (loyalty.validate_coupon('shop', 'PCT10', 'c20', :'cart')).*;
SELECT loyalty.member_cart('shop', 'c20', :'cart');
SELECT loyalty.enroll('shop', 777::bigint);
SELECT loyalty.redeem_coupon('shop', 'PCT10', 777::bigint, :'cart', 'big-1') AS big_discount;
RESET ROLE;
SELECT program, campaign, redeemed_count, spent_base FROM loyalty.coupon_campaign ORDER BY campaign;
-- Rewards: points buy a personal code; the stock holds.
SELECT loyalty.earn('shop', 'c' || i, 500, 'seed-' || i, as_of => '2026-01-01') > 0 FROM generate_series(21, 24) i;
SET ROLE loyalty_admin;
SELECT loyalty.create_reward('shop', 'tote', 100, 'pct', 3);
RESET ROLE;
SET ROLE loyalty_app;
SELECT i, loyalty.claim_reward('shop', 'c' || i, 'tote', 'claim-' || i) ~ '^[2-9A-Z]{4}-' AS claimed
  FROM generate_series(21, 23) i ORDER BY i;
SELECT loyalty.claim_reward('shop', 'c24', 'tote', 'claim-24');
SELECT loyalty.claim_reward('shop', 'c21', 'tote', 'claim-21') IS NOT NULL AS replay;
RESET ROLE;
SELECT reward, stock, claimed FROM loyalty.reward WHERE program = 'shop';
SELECT i, available FROM generate_series(21, 24) i, loyalty.balance('shop', 'c' || i, '2026-03-01') ORDER BY i;
-- (codes drawn at random differ between the runs: masked for the books compared)
UPDATE loyalty.reward_claim SET code = 'drawn';

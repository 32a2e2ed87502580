-- An adversarial review of campaigns, codes, redemptions and automatic
-- coupons: each block is an attack that once worked, as the roles users have.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('atk', 'USD');
SELECT loyalty.enroll('atk', 'x1');
SET ROLE loyalty_admin;
SELECT loyalty.create_campaign('atk', 'atk_flat', '10 USD off');
SELECT loyalty.create_campaign('atk', 'atk_all', 'stack=a | 100% off');
SELECT loyalty.create_campaign('atk', 'atk_ship', 'spend 1 USD get free shipping');
SELECT loyalty.add_code('atk', 'atk_flat', 'ATKFLAT');
SELECT loyalty.add_code('atk', 'atk_all', 'ATKALL');
SELECT loyalty.add_code('atk', 'atk_ship', 'ATKSHIP');
RESET ROLE;

-- 1. Stacked coupons never take more than the cart (subtotal 8 and
-- shipping 5: at most 13 off), with no cap set: not at checkout, not in
-- the best offer.
SET ROLE loyalty_app;
SELECT sum(discount) AS best_total
  FROM loyalty.best_offer('atk', 'x1', '{"currency":"USD","shipping":5,"items":[{"sku":"a","qty":1,"price":8}]}');
SELECT loyalty.redeem_coupon('atk', 'ATKFLAT', 'x1', '{"currency":"USD","shipping":5,"items":[{"sku":"a","qty":1,"price":8}]}', 'atk-o1');
SELECT loyalty.redeem_coupon('atk', 'ATKALL', 'x1', '{"currency":"USD","shipping":5,"items":[{"sku":"a","qty":1,"price":8}]}', 'atk-o1');
SELECT sqlstate_of($$SELECT loyalty.redeem_coupon('atk', 'ATKSHIP', 'x1', '{"currency":"USD","shipping":5,"items":[{"sku":"a","qty":1,"price":8}]}', 'atk-o1')$$);
RESET ROLE;
SELECT sum(discount) AS order_total FROM loyalty.coupon_redemption WHERE program = 'atk' AND order_ref = 'atk-o1';

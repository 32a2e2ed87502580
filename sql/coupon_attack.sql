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

-- 2. Bulk enrolment (one INSERT ... SELECT of 20,000 members, an ETL shape)
-- with a welcome coupon: every member gets one.  The once-only lock was an
-- advisory lock per member, held to the end of the transaction: the lock
-- table ran out ("out of shared memory"), the trigger's WARNING swallowed
-- it and nobody got a coupon.  The daily jobs over as many members failed
-- the same way.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('atkb', 'USD', timezone => 'UTC');
SELECT loyalty.create_campaign('atkb', 'atkb_welcome', '10% off');
SELECT loyalty.create_campaign('atkb', 'atkb_bday', '10% off');
SELECT loyalty.set_auto_coupon('atkb', 'welcome', 'atkb_welcome');
SELECT loyalty.set_auto_coupon('atkb', 'birthday', 'atkb_bday');
RESET ROLE;
INSERT INTO loyalty.member (program, member_id, profile)
SELECT 'atkb', 'b' || g, '{"birthday": "1990-03-04"}' FROM generate_series(1, 20000) g;
SELECT count(*) AS welcome_codes FROM loyalty.coupon_code WHERE program = 'atkb' AND campaign = 'atkb_welcome';
SET ROLE loyalty_admin;
SET client_min_messages = warning;
SELECT loyalty.issue_birthday_coupons('atkb', '2026-03-04 12:00+00') AS birthday_codes;
SELECT loyalty.issue_birthday_coupons('atkb', '2026-03-04 13:00+00') AS birthday_codes_again;
RESET client_min_messages;
RESET ROLE;
SELECT count(*) AS birthday_codes FROM loyalty.coupon_code WHERE program = 'atkb' AND campaign = 'atkb_bday';

-- 3. pg_restore loads loyalty.member with its rows' enrolled_at; the
-- welcome trigger fired and issued a welcome coupon to every member enrolled
-- before the welcome coupon was configured (codes that never existed).
-- A member row enrolled before the configuration gets none.
INSERT INTO loyalty.member (program, member_id, enrolled_at)
VALUES ('atkb', 'restored-old', '2020-01-01 00:00+00'), ('atkb', 'restored-new', now());
SELECT member_id, campaign, issued_ref FROM loyalty.coupon_code
 WHERE program = 'atkb' AND member_id LIKE 'restored-%' ORDER BY 1;

-- 4. One statement refunding 2,000 orders that carry coupons (an ETL
-- chargeback file): every coupon released, and the campaign's counters
-- updated once at commit, not once per order (that walked a growing chain
-- of the campaign row's versions: minutes for 10,000 orders).  Inside the
-- transaction the units wait in coupon_release_pending; a redemption of
-- the campaign in the same transaction folds them first.
SET ROLE loyalty_admin;
SELECT loyalty.create_program('atkr', 'USD');
SELECT loyalty.create_campaign('atkr', 'atkr_c', 'spend 10 USD get 1 USD off', total_limit => 2000,
                               per_member_limit => 100) AS campaign;
SELECT loyalty.add_code('atkr', 'atkr_c', 'ATKR') AS code;
RESET ROLE;
CREATE TABLE atkr_orders (id text PRIMARY KEY, cust text, amount numeric, refunded numeric DEFAULT 0);
SELECT loyalty.attach_orders('atkr', 'atkr_orders', 'id', 'cust', 'amount', refunded_amount => 'refunded');
INSERT INTO atkr_orders (id, cust, amount) SELECT 'r' || g, 'm' || (g % 50), 20 FROM generate_series(1, 2000) g;
SELECT count(*) FILTER (WHERE loyalty.redeem_coupon('atkr', 'ATKR', 'm' || (g % 50),
                        '{"currency": "USD", "items": [{"qty": 1, "price": 20}]}', 'r' || g) = 1) AS redeemed
  FROM generate_series(1, 2000) g;
SELECT redeemed_count, spent_base FROM loyalty.coupon_campaign WHERE program = 'atkr';
BEGIN;
UPDATE atkr_orders SET refunded = amount WHERE id <> 'r1';
SELECT count(*) FILTER (WHERE released_at IS NULL) AS active, count(*) FILTER (WHERE released_at IS NOT NULL) AS released
  FROM loyalty.coupon_redemption WHERE program = 'atkr';
SELECT redeemed_count AS count_before_commit FROM loyalty.coupon_campaign WHERE program = 'atkr';
SELECT sum(released) AS pending FROM loyalty.coupon_release_pending WHERE program = 'atkr';
-- The limit is full until the fold: a new order in this transaction gets a unit back.
INSERT INTO atkr_orders (id, cust, amount) VALUES ('r2001', 'm1', 20);
SELECT loyalty.redeem_coupon('atkr', 'ATKR', 'm1', '{"currency": "USD", "items": [{"qty": 1, "price": 20}]}', 'r2001') AS redeemed_after_fold;
SELECT redeemed_count AS count_after_fold FROM loyalty.coupon_campaign WHERE program = 'atkr';
COMMIT;
SELECT c.redeemed_count, c.spent_base,
       (SELECT count(*) FROM loyalty.coupon_redemption r WHERE r.program = 'atkr' AND r.released_at IS NULL) AS active,
       (SELECT count(*) FROM loyalty.coupon_release_pending p WHERE p.program = 'atkr') AS pending
  FROM loyalty.coupon_campaign c WHERE c.program = 'atkr';

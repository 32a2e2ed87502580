-- The BI view loyalty.coupon_performance on a small program whose every
-- figure is computed by hand below from the inputs, then read as
-- loyalty_reader (and refused to loyalty_app).
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_cb_admin;
DROP ROLE IF EXISTS regress_cb_app;
DROP ROLE IF EXISTS regress_cb_bi;
RESET client_min_messages;
CREATE ROLE regress_cb_admin IN ROLE loyalty_admin;
CREATE ROLE regress_cb_app IN ROLE loyalty_app;
CREATE ROLE regress_cb_bi IN ROLE loyalty_reader;

-- A USD program in Ho Chi Minh City time (UTC+7); 1 EUR = 1.10 USD.
CREATE TABLE cb_orders (id text, member text, amount numeric, currency text DEFAULT 'USD',
                        status text DEFAULT 'paid', at timestamptz);
SET ROLE regress_cb_admin;
SELECT loyalty.create_program('cb', 'USD', 1, timezone => 'Asia/Ho_Chi_Minh');
SELECT loyalty.set_fx_rate('EUR', 'USD', 1.10);
SELECT loyalty.create_campaign('cb', 'cb_ten', 'spend 50 USD get 10 USD off');
SELECT loyalty.create_campaign('cb', 'cb_pct', '10% off');
SELECT loyalty.create_campaign('cb', 'cb_gift', 'spend 100 USD get gift TOTE-01');
SELECT loyalty.enroll('cb', m) FROM unnest(ARRAY['m1', 'm2', 'm3', 'm4', 'm5', 'm6']) m;
SELECT count(*) AS codes
  FROM (VALUES ('cb_ten', 'm1'), ('cb_ten', 'm2'), ('cb_ten', 'm3'), ('cb_ten', 'm4'), ('cb_gift', 'm2')) v (c, m),
       LATERAL loyalty.issue_codes('cb', v.c, 1, v.m);
SELECT loyalty.add_code('cb', 'cb_pct', 'SPRING');
RESET ROLE;
SELECT loyalty.attach_orders('cb', 'cb_orders', 'id', 'member', 'amount', currency => 'currency',
                             status => 'status', created_at => 'at');
-- issue_codes dates its codes now: date them on the test's days instead
-- (cb_ten and cb_gift on 1 March, SPRING on 2 March, Ho Chi Minh City time).
UPDATE loyalty.coupon_code SET issued_at = CASE WHEN campaign = 'cb_pct' THEN timestamptz '2024-03-02 08:00+07'
                                                ELSE '2024-03-01 08:00+07' END
 WHERE program = 'cb';
CREATE FUNCTION cb_code(who text, camp text) RETURNS text LANGUAGE sql AS $$
    SELECT code FROM loyalty.coupon_code WHERE program = 'cb' AND member_id = who AND campaign = camp
$$;
CREATE FUNCTION cb_cart(currency text, amount numeric) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('currency', currency,
                              'items', jsonb_build_array(jsonb_build_object('sku', 'A', 'qty', 1, 'price', amount)))
$$;

-- 1 March: m1 (o1, 80 USD) and m2 (o2, 120 USD, with the gift too) use
-- cb_ten; two orders without a coupon, 30 and 50 USD (a guest).
-- 2 March: m3 uses cb_ten (o3, 60 USD, at 23:30 local, 16:30 UTC); m4
-- uses cb_ten on o4 (100 USD), which is then cancelled: released; m5 and
-- m6 use SPRING (10%) on o5 (200 EUR) and o6 (50 USD); one order without a
-- coupon, 45 EUR.
SET ROLE regress_cb_admin;
SELECT loyalty.redeem_coupon('cb', cb_code('m1', 'cb_ten'), 'm1', cb_cart('USD', 80), 'o1', '2024-03-01 10:00+07');
SELECT loyalty.redeem_coupon('cb', cb_code('m2', 'cb_ten'), 'm2', cb_cart('USD', 120), 'o2', '2024-03-01 11:00+07');
SELECT loyalty.redeem_coupon('cb', cb_code('m2', 'cb_gift'), 'm2', cb_cart('USD', 120), 'o2', '2024-03-01 11:00+07');
SELECT loyalty.redeem_coupon('cb', cb_code('m3', 'cb_ten'), 'm3', cb_cart('USD', 60), 'o3', '2024-03-02 23:30+07');
SELECT loyalty.redeem_coupon('cb', cb_code('m4', 'cb_ten'), 'm4', cb_cart('USD', 100), 'o4', '2024-03-02 12:00+07');
SELECT loyalty.redeem_coupon('cb', 'SPRING', 'm5', cb_cart('EUR', 200), 'o5', '2024-03-02 13:00+07');
SELECT loyalty.redeem_coupon('cb', 'SPRING', 'm6', cb_cart('USD', 50), 'o6', '2024-03-02 14:00+07');
RESET ROLE;
INSERT INTO cb_orders (id, member, amount, currency, at) VALUES
    ('o1', 'm1', 80, 'USD', '2024-03-01 10:00+07'),
    ('o2', 'm2', 120, 'USD', '2024-03-01 11:00+07'),
    ('p1', 'm5', 30, 'USD', '2024-03-01 15:00+07'),
    ('p2', NULL, 50, 'USD', '2024-03-01 16:00+07'),
    ('o3', 'm3', 60, 'USD', '2024-03-02 23:30+07'),
    ('o4', 'm4', 100, 'USD', '2024-03-02 12:00+07'),
    ('o5', 'm5', 200, 'EUR', '2024-03-02 13:00+07'),
    ('o6', 'm6', 50, 'USD', '2024-03-02 14:00+07'),
    ('p3', 'm1', 45, 'EUR', '2024-03-02 15:00+07');
UPDATE cb_orders SET status = 'cancelled' WHERE id = 'o4';
SELECT order_ref, campaign, discount, discount_base, released_at IS NOT NULL AS released
  FROM loyalty.coupon_redemption WHERE program = 'cb' ORDER BY order_ref, campaign;

-- By hand:
-- cb_ten, 1 March: 4 codes, 2 redemptions (o1, o2), rate 2/4; cost 10 + 10;
--   orders o1 + o2 = 200, AOV 100; without a coupon: p1, p2 = (30 + 50) / 2
--   = 40; ROI 200 / 20 = 10.
-- cb_gift, 1 March: 1 code, 1 redemption (o2), rate 1; cost 0 (a gift), so
--   ROI NULL; GMV 120, AOV 120; without: 40.
-- cb_ten, 2 March: no code, 1 redemption (o3; o4's was released), rate so
--   far 3/4; cost 10; GMV 60, AOV 60; without: p3 = 45 x 1.10 = 49.50 (o4
--   is cancelled, o3, o5, o6 carry coupons); ROI 6.
-- cb_pct, 2 March: 1 shared code, 2 redemptions, rate 2/1 = 2; cost 20 EUR
--   = 22 USD + 5 USD = 27; GMV 200 x 1.10 + 50 = 270, AOV 135; without
--   49.50; ROI 270 / 27 = 10.
CREATE TABLE cb_expected (campaign text, day date, codes_issued bigint, redemptions bigint,
                          redemption_rate numeric, discount_cost numeric, coupon_orders bigint, gmv numeric,
                          aov_with_coupon numeric, aov_without_coupon numeric, roi numeric);
INSERT INTO cb_expected VALUES
    ('cb_ten', '2024-03-01', 4, 2, 2 / 4.0, 10 + 10, 2, 80 + 120, (80 + 120) / 2.0, (30 + 50) / 2.0, 200 / 20.0),
    ('cb_gift', '2024-03-01', 1, 1, 1, 0, 1, 120, 120, (30 + 50) / 2.0, NULL),
    ('cb_ten', '2024-03-02', 0, 1, 3 / 4.0, 10, 1, 60, 60, 45 * 1.10, 60 / 10.0),
    ('cb_pct', '2024-03-02', 1, 2, 2, 20 * 1.10 + 5, 2, 200 * 1.10 + 50, (200 * 1.10 + 50) / 2, 45 * 1.10, (200 * 1.10 + 50) / (20 * 1.10 + 5));

-- Read as BI: the view, and no difference from the figures above.
SET ROLE regress_cb_bi;
SELECT campaign, day, codes_issued, redemptions, redemption_rate, discount_cost, coupon_orders, gmv,
       aov_with_coupon, aov_without_coupon, roi
  FROM loyalty.coupon_performance WHERE program = 'cb' ORDER BY day, campaign;
RESET ROLE;
SELECT 'view' AS side, * FROM (
    SELECT campaign, day, codes_issued, redemptions, redemption_rate, discount_cost, coupon_orders, gmv,
           aov_with_coupon, aov_without_coupon, roi
      FROM loyalty.coupon_performance WHERE program = 'cb'
    EXCEPT SELECT * FROM cb_expected) x
UNION ALL
SELECT 'expected', * FROM (
    SELECT * FROM cb_expected
    EXCEPT SELECT campaign, day, codes_issued, redemptions, redemption_rate, discount_cost, coupon_orders, gmv,
                  aov_with_coupon, aov_without_coupon, roi
             FROM loyalty.coupon_performance WHERE program = 'cb') y;

-- A release after the fact takes the redemption out of its day: o6's is
-- given back, so cb_pct on 2 March has 1 redemption, cost 22, GMV 220,
-- ROI 10; o6 now carries no coupon: without, (45 x 1.10 + 50) / 2 = 49.75.
SELECT loyalty.release_coupon('cb', 'o6');
SELECT redemptions, discount_cost, coupon_orders, gmv, aov_with_coupon, aov_without_coupon, roi
  FROM loyalty.coupon_performance WHERE program = 'cb' AND campaign = 'cb_pct';

-- Plain column types, every column commented.
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, col_description(a.attrelid, a.attnum) IS NOT NULL AS commented
  FROM pg_attribute a WHERE a.attrelid = 'loyalty.coupon_performance'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT obj_description('loyalty.coupon_performance'::regclass, 'pg_class') IS NOT NULL AS view_commented;

-- The application and the admin functions' callers: the application may
-- not read it; admins may.
SET ROLE regress_cb_app;
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.coupon_performance$$);
RESET ROLE;
SET ROLE regress_cb_admin;
SELECT count(*) AS admin_reads FROM loyalty.coupon_performance WHERE program = 'cb';
RESET ROLE;
SET ROLE regress_cb_bi;
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.coupon_redemption$$);
RESET ROLE;

DROP TABLE cb_orders, cb_expected;
DROP FUNCTION cb_code(text, text), cb_cart(text, numeric);
DROP ROLE regress_cb_admin, regress_cb_app, regress_cb_bi;

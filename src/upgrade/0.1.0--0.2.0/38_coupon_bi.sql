-- 0.1.0 -> 0.2.0, src/sql/88_coupon_bi.sql is new in 0.2.0: its objects as a fresh install makes them.

-- How coupons perform, for BI (readable by loyalty_reader).
--
-- Days are in the program's time zone.  A released redemption counts
-- nowhere.  Codes issued to and redemptions by excluded members (test or
-- staff accounts) count nowhere either.  Order values follow loyalty.kpi_daily: the gross amount in base
-- currency of orders not closed (loyalty.order_value), so that AOV here and
-- there agree; an order carrying two codes of one campaign counts once.
CREATE VIEW @extschema@.coupon_performance AS
    WITH issued AS (
        SELECT k.program, k.campaign, (k.issued_at AT TIME ZONE p.timezone)::date AS day, count(*) AS codes
          FROM @extschema@.coupon_code k JOIN @extschema@.program p ON p.code = k.program
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                            WHERE x.program = k.program AND x.member_id = k.member_id)
         GROUP BY 1, 2, 3
    ), used AS (
        SELECT r.program, r.campaign, (r.redeemed_at AT TIME ZONE p.timezone)::date AS day,
               r.order_ref, r.discount_base
          FROM @extschema@.coupon_redemption r JOIN @extschema@.program p ON p.code = r.program
         WHERE r.released_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                            WHERE x.program = r.program AND x.member_id = r.member_id)
    ), redeemed AS (
        SELECT u.program, u.campaign, u.day, count(*) AS redemptions, sum(u.discount_base) AS cost
          FROM used u GROUP BY 1, 2, 3
    ), coupon_orders AS (
        SELECT o.program, o.campaign, o.day, count(*) AS orders, sum(v.gross) AS gmv
          FROM (SELECT DISTINCT program, campaign, day, order_ref FROM used) o
          JOIN @extschema@.order_value v ON v.program = o.program AND v.order_id = o.order_ref AND NOT v.closed
         GROUP BY 1, 2, 3
    ), plain_orders AS (
        SELECT v.program, (v.ordered_at AT TIME ZONE p.timezone)::date AS day,
               round(avg(v.gross), 2) AS aov
          FROM @extschema@.order_value v JOIN @extschema@.program p ON p.code = v.program
         WHERE NOT v.closed
           AND NOT EXISTS (SELECT 1 FROM used u WHERE u.program = v.program AND u.order_ref = v.order_id)
         GROUP BY 1, 2
    ), days AS (
        SELECT program, campaign, day FROM issued UNION SELECT program, campaign, day FROM redeemed
    )
    SELECT d.program, d.campaign, d.day,
           coalesce(i.codes, 0) AS codes_issued,
           coalesce(r.redemptions, 0) AS redemptions,
           round(sum(coalesce(r.redemptions, 0)) OVER w / nullif(sum(coalesce(i.codes, 0)) OVER w, 0), 4)
               AS redemption_rate,
           coalesce(r.cost, 0) AS discount_cost,
           coalesce(o.orders, 0) AS coupon_orders,
           coalesce(o.gmv, 0) AS gmv,
           round(o.gmv / nullif(o.orders, 0), 2) AS aov_with_coupon,
           n.aov AS aov_without_coupon,
           round(coalesce(o.gmv, 0) / nullif(r.cost, 0), 4) AS roi
      FROM days d
      LEFT JOIN issued i ON i.program = d.program AND i.campaign = d.campaign AND i.day = d.day
      LEFT JOIN redeemed r ON r.program = d.program AND r.campaign = d.campaign AND r.day = d.day
      LEFT JOIN coupon_orders o ON o.program = d.program AND o.campaign = d.campaign AND o.day = d.day
      LEFT JOIN plain_orders n ON n.program = d.program AND n.day = d.day
    WINDOW w AS (PARTITION BY d.program, d.campaign ORDER BY d.day);

COMMENT ON VIEW @extschema@.coupon_performance IS
    'Per program, campaign and day in the program''s time zone: codes issued, redemptions (released ones excluded), redemption rate, discount cost in base currency, GMV and AOV of the orders carrying the campaign''s coupons, AOV of the orders without any coupon, ROI';

COMMENT ON COLUMN @extschema@.coupon_performance.program IS 'Program code';

COMMENT ON COLUMN @extschema@.coupon_performance.campaign IS 'Campaign name';

COMMENT ON COLUMN @extschema@.coupon_performance.day IS 'Day in the program''s time zone';

COMMENT ON COLUMN @extschema@.coupon_performance.codes_issued IS 'Codes of the campaign issued that day (a shared code counts once)';

COMMENT ON COLUMN @extschema@.coupon_performance.redemptions IS 'Redemptions of the campaign''s codes that day, not released';

COMMENT ON COLUMN @extschema@.coupon_performance.redemption_rate IS
    'Redemptions so far / codes issued so far (to the end of the day), 4 decimals; NULL before any code; above 1 with shared codes';

COMMENT ON COLUMN @extschema@.coupon_performance.discount_cost IS 'Sum of those redemptions'' discounts in base currency (at the FX rate of the redemption)';

COMMENT ON COLUMN @extschema@.coupon_performance.coupon_orders IS 'Orders known to loyalty, not closed, that carry those redemptions (each once)';

COMMENT ON COLUMN @extschema@.coupon_performance.gmv IS 'Their gross amount in base currency (as in kpi_daily)';

COMMENT ON COLUMN @extschema@.coupon_performance.aov_with_coupon IS 'gmv / coupon_orders, 2 decimals; NULL without such orders';

COMMENT ON COLUMN @extschema@.coupon_performance.aov_without_coupon IS
    'Average gross amount of the program''s orders of that day (by order time) that carry no coupon, not closed, 2 decimals; NULL without such orders';

COMMENT ON COLUMN @extschema@.coupon_performance.roi IS 'gmv / discount_cost, 4 decimals; NULL when the cost is 0';

-- Exclusions: a member excluded as a test or staff account drops out of
-- every view (and the one table) loyalty_reader reads, and comes back when
-- included again; the business rules still see it.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

-- A program with tiers, RFM and a coupon campaign; two members with the
-- same activity: ann (a customer) and staff (the shop's test account).
SELECT loyalty.create_program('exc', 'USD', 1, timezone => 'Asia/Singapore');
SELECT loyalty.set_tier_ladder('exc', 'basis=spend window=365d grace=30d | Member 0 x1 | Gold 100 x1');
CREATE TABLE exc_orders (id text PRIMARY KEY, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('exc', 'exc_orders', 'id', 'member', 'amount', created_at => 'at');
SELECT loyalty.create_campaign('exc', 'exc_ten', 'spend 50 USD get 10 USD off');
INSERT INTO exc_orders VALUES
    ('e1', 'ann', 150, now() - interval '3 days'), ('e2', 'staff', 150, now() - interval '3 days'),
    ('e3', NULL, 20, now() - interval '3 days');
SELECT count(*) AS codes FROM unnest(ARRAY['ann', 'staff']) m, LATERAL loyalty.issue_codes('exc', 'exc_ten', 1, m);
SELECT loyalty.redeem_coupon('exc', (SELECT code FROM loyalty.coupon_code WHERE program = 'exc' AND member_id = m),
                             m, '{"currency": "USD", "items": [{"sku": "A", "qty": 1, "price": 150}]}', o)
  FROM (VALUES ('ann', 'e1'), ('staff', 'e2')) v (m, o);
SELECT members FROM loyalty.recalculate_tiers('exc');
SELECT loyalty.score_rfm('exc');

-- What loyalty_reader sees of each, by member; then one row per view of
-- its member count (program-wide views: the figures).
CREATE FUNCTION exc_seen() RETURNS TABLE (source text, members text) LANGUAGE sql AS $$
    SELECT 'order_value', string_agg(coalesce(member_id, '(guest)'), ',' ORDER BY member_id)
      FROM loyalty.order_value WHERE program = 'exc'
    UNION ALL SELECT 'member_360', string_agg(member_id, ',' ORDER BY member_id) FROM loyalty.member_360 WHERE program = 'exc'
    UNION ALL SELECT 'member_lifecycle', string_agg(member_id, ',' ORDER BY member_id)
      FROM loyalty.member_lifecycle WHERE program = 'exc'
    UNION ALL SELECT 'member_lifecycle_at', string_agg(member_id, ',' ORDER BY member_id)
      FROM loyalty.member_lifecycle_at('exc', now())
    UNION ALL SELECT 'member_rfm', string_agg(member_id, ',' ORDER BY member_id) FROM loyalty.member_rfm WHERE program = 'exc'
    UNION ALL SELECT 'segment_summary', sum(members)::text FROM loyalty.segment_summary WHERE program = 'exc'
    UNION ALL SELECT 'tier_distribution', sum(members)::text FROM loyalty.tier_distribution WHERE program = 'exc'
    UNION ALL SELECT 'tier_history', string_agg(member_id, ',' ORDER BY member_id) FROM loyalty.tier_history WHERE program = 'exc'
    UNION ALL SELECT 'kpi_daily', string_agg(format('%s orders, %s members, %s earned, %s outstanding',
                                                    orders, active_members, points_earned, points_outstanding), '; ')
      FROM loyalty.kpi_daily WHERE program = 'exc'
    UNION ALL SELECT 'coupon_performance', string_agg(format('%s codes, %s redemptions, %s orders',
                                                             codes_issued, redemptions, coupon_orders), '; ')
      FROM loyalty.coupon_performance WHERE program = 'exc'
$$;
GRANT EXECUTE ON FUNCTION exc_seen() TO loyalty_reader;

-- Before: both.
SET ROLE loyalty_reader;
SELECT * FROM exc_seen();
RESET ROLE;

-- Excluded (admin): true, then false on a repeat (the first reason stays).
SET ROLE loyalty_admin;
SELECT loyalty.exclude_member('exc', 'staff', 'staff test account');
SELECT loyalty.exclude_member('exc', 'staff', 'another reason');
SELECT member_id, reason, excluded_by FROM loyalty.member_exclusion WHERE program = 'exc';
RESET ROLE;
SELECT loyalty.is_excluded('exc', 'staff') AS staff, loyalty.is_excluded('exc', 'ann') AS ann,
       loyalty.is_excluded('exc', NULL) AS nobody;

-- After: staff is gone from every one; admins still read every row of
-- tier_history; the business rules still see staff.
SET ROLE loyalty_reader;
SELECT * FROM exc_seen();
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.member_exclusion$$);
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.order_value_all$$);
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.member_lifecycle_all('exc')$$);
SELECT loyalty.member_visible('exc', 'staff') AS staff_visible, loyalty.member_visible('exc', 'ann') AS ann_visible;
RESET ROLE;
SET ROLE loyalty_admin;
SELECT string_agg(member_id, ',' ORDER BY member_id) AS tier_history_for_admin
  FROM loyalty.tier_history WHERE program = 'exc';
RESET ROLE;
SELECT string_agg(member_id, ',' ORDER BY member_id) AS lifecycle_for_the_rules
  FROM loyalty.member_lifecycle_all('exc', now());
SELECT string_agg(member_id, ',' ORDER BY member_id) AS orders_for_the_rules
  FROM loyalty.order_value_all WHERE program = 'exc' AND member_id IS NOT NULL;

-- Included again: back everywhere.
SET ROLE loyalty_admin;
SELECT loyalty.include_member('exc', 'staff');
SELECT loyalty.include_member('exc', 'staff');
RESET ROLE;
SET ROLE loyalty_reader;
SELECT * FROM exc_seen();
RESET ROLE;

-- Bad arguments, and who may call.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.exclude_member('exc', 'nobody', 'test')$$);
SELECT sqlstate_of($$SELECT loyalty.exclude_member('nope', 'ann', 'test')$$);
SELECT sqlstate_of($$SELECT loyalty.exclude_member('exc', NULL, 'test')$$);
SELECT sqlstate_of($$SELECT loyalty.exclude_member('exc', 'ann', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.exclude_member('exc', 'ann', '  ')$$);
SELECT sqlstate_of($$SELECT loyalty.include_member('exc', 'nobody')$$);
SELECT sqlstate_of($$SELECT loyalty.include_member(NULL, 'ann')$$);
RESET ROLE;
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.exclude_member('exc', 'ann', 'test')$$);
SELECT sqlstate_of($$SELECT loyalty.is_excluded('exc', 'ann')$$);
RESET ROLE;
SELECT * FROM loyalty.verify('exc') WHERE NOT ok;

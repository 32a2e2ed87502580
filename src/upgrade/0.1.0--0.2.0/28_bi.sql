-- 0.1.0 -> 0.2.0, what changed in src/sql/70_bi.sql since 0.1.0: new objects created, changed functions and views replaced, tables altered.

-- Lifecycle stages and the BI views (readable by loyalty_reader).

-- Point values must be finite (01_schema.sql stopped on an infinite one).
ALTER TABLE @extschema@.program
    DROP CONSTRAINT program_point_value,
    ADD CONSTRAINT program_point_value CHECK (point_value >= 0 AND point_value < 'Infinity');

CREATE OR REPLACE FUNCTION @extschema@.set_lifecycle(program text, new_days integer, at_risk_days integer,
                                         dormant_days integer, churned_days integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF new_days IS NULL OR at_risk_days IS NULL OR dormant_days IS NULL OR churned_days IS NULL
       OR new_days <= 0 OR at_risk_days <= 0 OR at_risk_days >= dormant_days OR dormant_days >= churned_days THEN
        RAISE EXCEPTION 'invalid lifecycle thresholds: new %, at risk %, dormant %, churned %',
            coalesce(new_days::text, 'NULL'), coalesce(at_risk_days::text, 'NULL'),
            coalesce(dormant_days::text, 'NULL'), coalesce(churned_days::text, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = 'Each is a number of days: new above 0, and 0 < at risk < dormant < churned.';
    END IF;
    UPDATE loyalty.program p
       SET new_days = set_lifecycle.new_days, at_risk_days = set_lifecycle.at_risk_days,
           dormant_days = set_lifecycle.dormant_days, churned_days = set_lifecycle.churned_days
     WHERE p.code = set_lifecycle.program;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.set_point_value(program text, point_value numeric)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_program(program);
    IF point_value IS NULL OR point_value < 0 OR point_value >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid point value: %', coalesce(point_value::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'A point value is what one point costs the shop, in base currency, zero or more and finite.';
    END IF;
    UPDATE loyalty.program p SET point_value = set_point_value.point_value WHERE p.code = set_point_value.program;
END
$$;

-- An order's value in base currency: amount (gross) and net of refunds.
-- Orders priced by the trigger carry their rate; guests' orders are
-- converted at the rate valid at the order's time.  order_value_all holds
-- every order (the business rules read it: coupons' member facts);
-- order_value, the BI view, leaves out the orders of excluded members.
CREATE VIEW @extschema@.order_value_all AS
    -- The rate written out twice rather than in a LATERAL subquery (which
    -- PostgreSQL pulls up into the same expressions): Citus cannot push a
    -- subquery without FROM that calls a STABLE function down to its nodes.
    SELECT o.program, o.order_id, o.member_id, o.ordered_at, o.closed,
           round(o.amount * coalesce(o.fx_rate, @extschema@.fx_rate_at(coalesce(o.currency, p.base_currency),
                                                                      p.base_currency, o.ordered_at)), 4) AS gross,
           CASE WHEN o.closed THEN 0
                ELSE round((o.amount - least(o.refunded_amount, o.amount))
                           * coalesce(o.fx_rate, @extschema@.fx_rate_at(coalesce(o.currency, p.base_currency),
                                                                       p.base_currency, o.ordered_at)), 4) END AS net
      FROM @extschema@.order_earning o
      JOIN @extschema@.program p ON p.code = o.program
     WHERE o.amount > 0;

COMMENT ON VIEW @extschema@.order_value_all IS 'Every order with a positive amount, valued in its program''s base currency, excluded members included (internal; BI reads loyalty.order_value)';

-- A BI view leaves out members excluded as test or staff accounts
-- (36_holds.sql): each names loyalty.member_exclusion itself, which a view
-- reads with its owner's rights.
CREATE OR REPLACE VIEW @extschema@.order_value AS
    SELECT v.* FROM @extschema@.order_value_all v
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = v.program AND x.member_id = v.member_id);

COMMENT ON VIEW @extschema@.order_value IS 'Every order with a positive amount, valued in its program''s base currency; orders of excluded members left out';

-- Lifecycle stage of every member at a time: member_lifecycle_all for the
-- business rules (wake-up coupons), member_lifecycle_at for BI (excluded
-- members left out).
CREATE OR REPLACE FUNCTION @extschema@.member_lifecycle_all(program text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (program text, member_id text, stage text, first_order_at timestamptz,
               last_order_at timestamptz, days_since_first integer, days_since_last integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    WITH orders AS (
        SELECT v.program, v.member_id, min(v.ordered_at) AS first_at, max(v.ordered_at) AS last_at
          FROM loyalty.order_value_all v
         WHERE v.member_id IS NOT NULL AND v.net > 0 AND v.ordered_at <= as_of
           AND (member_lifecycle_all.program IS NULL OR v.program = member_lifecycle_all.program)
         GROUP BY 1, 2
    ), days AS (
        SELECT m.program, m.member_id, o.first_at, o.last_at,
               floor(extract(epoch FROM as_of - o.first_at) / 86400)::integer AS since_first,
               floor(extract(epoch FROM as_of - o.last_at) / 86400)::integer AS since_last,
               p.new_days, p.at_risk_days, p.dormant_days, p.churned_days
          FROM loyalty.member m
          JOIN loyalty.program p ON p.code = m.program
          LEFT JOIN orders o ON o.program = m.program AND o.member_id = m.member_id
         WHERE member_lifecycle_all.program IS NULL OR m.program = member_lifecycle_all.program
    )
    SELECT d.program, d.member_id,
           CASE WHEN d.last_at IS NULL THEN 'registered'
                WHEN d.since_last > d.churned_days THEN 'churned'
                WHEN d.since_last > d.dormant_days THEN 'dormant'
                WHEN d.since_last > d.at_risk_days THEN 'at_risk'
                WHEN d.since_first <= d.new_days THEN 'new'
                ELSE 'active' END,
           d.first_at, d.last_at, d.since_first, d.since_last
      FROM days d
$$;

COMMENT ON FUNCTION @extschema@.member_lifecycle_all(text, timestamptz) IS
    'Lifecycle stage of each member at as_of, excluded members included (internal: the business rules read it)';

CREATE OR REPLACE FUNCTION @extschema@.member_lifecycle_at(program text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (program text, member_id text, stage text, first_order_at timestamptz,
               last_order_at timestamptz, days_since_first integer, days_since_last integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT l.* FROM loyalty.member_lifecycle_all(member_lifecycle_at.program, member_lifecycle_at.as_of) l
     WHERE NOT loyalty.is_excluded(l.program, l.member_id)
$$;

COMMENT ON FUNCTION @extschema@.member_lifecycle_at(text, timestamptz) IS
    'Lifecycle stage of each member at as_of: registered (no order), new, active, at_risk, dormant, churned, by the program''s thresholds; excluded members left out';

CREATE OR REPLACE VIEW @extschema@.member_360 AS
    WITH orders AS (
        SELECT v.program, v.member_id, count(*) FILTER (WHERE v.net > 0) AS orders,
               coalesce(sum(v.net), 0) AS net_spend
          FROM @extschema@.order_value v WHERE v.member_id IS NOT NULL GROUP BY 1, 2
    ), lots AS (
        SELECT l.program, l.member_id,
               sum(l.remaining) FILTER (WHERE @extschema@.lot_spendable(l.available_at, l.expires_at, now())) AS available,
               sum(l.remaining) FILTER (WHERE @extschema@.lot_pending(l.available_at, l.expires_at, now())) AS pending
          FROM @extschema@.lot l WHERE l.remaining > 0 GROUP BY 1, 2
    )
    SELECT m.program, m.member_id, m.status::text AS status, m.enrolled_at,
           coalesce(l.available, 0) - m.debt AS available_points,
           coalesce(l.pending, 0) AS pending_points,
           m.debt AS debt_points,
           m.lifetime_earned, m.lifetime_redeemed,
           r.rfm::text AS rfm, r.segment, r.scored_at AS rfm_scored_at,
           c.stage AS lifecycle_stage, c.first_order_at, c.last_order_at,
           coalesce(o.orders, 0) AS orders, coalesce(o.net_spend, 0) AS net_spend,
           CASE WHEN p.tier_ladder IS NOT NULL
                THEN coalesce(m.tier, (SELECT f.tier FROM @extschema@.tier_levels(p.tier_ladder) f WHERE f.level = 1))
           END AS tier
      FROM @extschema@.member m
      JOIN @extschema@.program p ON p.code = m.program
      LEFT JOIN lots l ON l.program = m.program AND l.member_id = m.member_id
      LEFT JOIN orders o ON o.program = m.program AND o.member_id = m.member_id
      LEFT JOIN @extschema@.member_rfm r ON r.program = m.program AND r.member_id = m.member_id
      LEFT JOIN @extschema@.member_lifecycle c ON c.program = m.program AND c.member_id = m.member_id
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                        WHERE x.program = m.program AND x.member_id = m.member_id);

COMMENT ON VIEW @extschema@.member_360 IS 'One row per member (excluded members left out): balances, RFM and segment (last score_rfm), lifecycle stage, orders, net spend and tier';

CREATE OR REPLACE VIEW @extschema@.kpi_daily AS
    WITH orders AS (
        SELECT v.program, (v.ordered_at AT TIME ZONE p.timezone)::date AS day, v.member_id, v.gross,
               v.ordered_at
          FROM @extschema@.order_value v JOIN @extschema@.program p ON p.code = v.program
         WHERE NOT v.closed
    ), firsts AS (
        SELECT program, member_id, min(day) AS first_day FROM orders WHERE member_id IS NOT NULL GROUP BY 1, 2
    ), order_days AS (
        SELECT o.program, o.day, count(*) AS orders, sum(o.gross) AS gmv,
               count(DISTINCT o.member_id) AS active_members,
               count(DISTINCT o.member_id) FILTER (WHERE f.first_day = o.day) AS new_members
          FROM orders o LEFT JOIN firsts f ON f.program = o.program AND f.member_id = o.member_id
         GROUP BY 1, 2
    ), repurchase AS (
        SELECT b.program, b.day,
               avg((EXISTS (SELECT 1 FROM orders a
                             WHERE a.program = b.program AND a.member_id = b.member_id
                               AND a.day > b.day AND a.day <= b.day + 30))::integer) AS rate
          FROM (SELECT DISTINCT program, day, member_id FROM orders WHERE member_id IS NOT NULL) b
         GROUP BY 1, 2
    ), points AS (
        SELECT l.program, (l.occurred_at AT TIME ZONE p.timezone)::date AS day,
               coalesce(sum(l.points) FILTER (WHERE @extschema@.ledger_kind_class(l.kind) = 'earned'), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE @extschema@.ledger_kind_class(l.kind) = 'redeemed'), 0) AS redeemed,
               coalesce(-sum(l.points) FILTER (WHERE @extschema@.ledger_kind_class(l.kind) = 'expired'), 0) AS expired,
               coalesce(-sum(l.points) FILTER (WHERE @extschema@.ledger_kind_class(l.kind) = 'reversed'), 0) AS reversed,
               sum(l.points) AS net
          FROM @extschema@.ledger l JOIN @extschema@.program p ON p.code = l.program
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.member_exclusion x
                            WHERE x.program = l.program AND x.member_id = l.member_id)
         GROUP BY 1, 2
    ), days AS (
        SELECT program, day FROM order_days UNION SELECT program, day FROM points
    )
    SELECT d.program, d.day,
           coalesce(o.orders, 0) AS orders,
           coalesce(o.gmv, 0) AS gmv,
           round(o.gmv / nullif(o.orders, 0), 2) AS aov,
           coalesce(o.active_members, 0) AS active_members,
           coalesce(o.new_members, 0) AS new_members,
           round(r.rate, 4) AS repurchase_rate_30d,
           coalesce(pt.earned, 0) AS points_earned,
           coalesce(pt.redeemed, 0) AS points_redeemed,
           coalesce(pt.expired, 0) AS points_expired,
           coalesce(pt.reversed, 0) AS points_reversed,
           round(pt.redeemed::numeric / nullif(pt.earned, 0), 4) AS redemption_rate,
           sum(coalesce(pt.net, 0)) OVER w AS points_outstanding,
           sum(coalesce(pt.net, 0)) OVER w * p.point_value AS liability
      FROM days d
      JOIN @extschema@.program p ON p.code = d.program
      LEFT JOIN order_days o ON o.program = d.program AND o.day = d.day
      LEFT JOIN repurchase r ON r.program = d.program AND r.day = d.day
      LEFT JOIN points pt ON pt.program = d.program AND pt.day = d.day
    WINDOW w AS (PARTITION BY d.program ORDER BY d.day);

COMMENT ON VIEW @extschema@.kpi_daily IS
    'Per program and day in the program''s time zone: orders, GMV, AOV, active and new members, 30-day repurchase rate, points earned/redeemed/expired/reversed, redemption rate, points outstanding and the liability at point_value; excluded members left out';

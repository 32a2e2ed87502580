-- Per-member order activity, kept by a trigger on loyalty.order_earning so
-- that RFM scoring and tier recalculation read one row per member instead
-- of every order.
--
-- An order counts when it has a member, is not closed, has a positive
-- amount and an FX rate, and something is left after refunds; it counts
-- once, for its net value in base currency rounded to 4 decimals (the
-- figure of loyalty.order_value.net).
--
-- activity_total holds each member's counted orders of all time;
-- activity_day the same per UTC day; activity_before the days up to the
-- program's horizon, folded into one row per member by the batch passes
-- (which then delete those day rows).  The totals of a window (after, upto]
-- are: all time, less the folded days, less the day rows outside the window,
-- plus the orders of the two edge days read one by one.

CREATE TABLE @extschema@.activity_total (
    program         text NOT NULL,
    member_id       text NOT NULL,
    orders          bigint NOT NULL DEFAULT 0,
    net_spend       numeric NOT NULL DEFAULT 0,
    last_order_at   timestamptz,
    PRIMARY KEY (program, member_id)
);
COMMENT ON TABLE @extschema@.activity_total IS
    'Each member''s counted orders of all time (kept by a trigger on loyalty.order_earning)';
COMMENT ON COLUMN @extschema@.activity_total.orders IS 'Orders with a member, not closed, positive amount, something left after refunds';
COMMENT ON COLUMN @extschema@.activity_total.net_spend IS 'Sum of those orders'' net values in base currency, each rounded to 4 decimals';
COMMENT ON COLUMN @extschema@.activity_total.last_order_at IS 'Time of the latest of those orders (NULL when none is left)';

CREATE TABLE @extschema@.activity_day (
    program         text NOT NULL,
    day             date NOT NULL,
    member_id       text NOT NULL,
    orders          integer NOT NULL DEFAULT 0,
    net_spend       numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (program, day, member_id)
);
COMMENT ON TABLE @extschema@.activity_day IS
    'Each member''s counted orders per UTC day after the program''s horizon (and late changes to days before it)';

CREATE TABLE @extschema@.activity_before (
    program         text NOT NULL,
    member_id       text NOT NULL,
    orders          bigint NOT NULL DEFAULT 0,
    net_spend       numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (program, member_id)
);
COMMENT ON TABLE @extschema@.activity_before IS
    'Each member''s counted orders of the days up to the program''s horizon, folded by the batch passes';

CREATE TABLE @extschema@.activity_horizon (
    program         text PRIMARY KEY,
    through         date NOT NULL DEFAULT '-infinity'
);
COMMENT ON TABLE @extschema@.activity_horizon IS
    'Per program, the last UTC day folded into loyalty.activity_before';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_total', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_day', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_before', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.activity_horizon', '');

-- The C trigger keeping the three tables; one per event, since a trigger
-- with transition tables may have only one.
CREATE FUNCTION @extschema@.activity_trigger() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'loyalty_activity_trigger';
COMMENT ON FUNCTION @extschema@.activity_trigger() IS
    'Trigger on loyalty.order_earning: keeps loyalty.activity_total and loyalty.activity_day';
CREATE TRIGGER activity_insert AFTER INSERT ON @extschema@.order_earning
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.activity_trigger();
CREATE TRIGGER activity_update AFTER UPDATE ON @extschema@.order_earning
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.activity_trigger();
CREATE TRIGGER activity_delete AFTER DELETE ON @extschema@.order_earning
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.activity_trigger();

-- Every member's counted orders in (after, upto].  Inlined into the caller's
-- query.  The fast path needs the horizon before the UTC day of after and
-- the window to span two days or more; otherwise the orders are read.
CREATE FUNCTION @extschema@.member_activity(program text, after timestamptz, upto timestamptz)
RETURNS TABLE (member_id text, orders bigint, net_spend numeric, last_order_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH bounds AS MATERIALIZED (
        SELECT (after AT TIME ZONE 'UTC')::date AS lo_day, (upto AT TIME ZONE 'UTC')::date AS hi_day,
               coalesce((SELECT h.through FROM loyalty.activity_horizon h
                          WHERE h.program = member_activity.program), '-infinity') AS through
    ), fast AS MATERIALIZED (
        SELECT b.*, b.through < b.lo_day AND b.lo_day < b.hi_day AS ok FROM bounds b
    ), outside AS (
        -- Folded days, day rows outside the window, edge-day orders inside it (negated).
        SELECT a.member_id, a.orders, a.net_spend
          FROM loyalty.activity_before a
         WHERE a.program = member_activity.program
        UNION ALL
        SELECT d.member_id, d.orders, d.net_spend
          FROM loyalty.activity_day d, fast f
         WHERE d.program = member_activity.program AND (d.day <= f.lo_day OR d.day >= f.hi_day)
        UNION ALL
        SELECT o.member_id, -1, -round((o.amount - o.refunded_amount) * o.fx_rate, 4)
          FROM loyalty.order_earning o, fast f
         WHERE o.program = member_activity.program
           AND o.member_id IN (SELECT d.member_id FROM loyalty.activity_day d
                                WHERE d.program = member_activity.program AND d.day IN (f.lo_day, f.hi_day))
           AND NOT o.closed AND o.amount > 0 AND o.refunded_amount < o.amount AND o.fx_rate IS NOT NULL
           AND ((o.ordered_at > after AND o.ordered_at < ((f.lo_day + 1)::timestamp AT TIME ZONE 'UTC'))
                OR (o.ordered_at >= (f.hi_day::timestamp AT TIME ZONE 'UTC') AND o.ordered_at <= upto))
    ), outside_sum AS (
        SELECT x.member_id, sum(x.orders) AS orders, sum(x.net_spend) AS net_spend
          FROM outside x GROUP BY x.member_id
    )
    SELECT t.member_id, t.orders - coalesce(x.orders, 0), t.net_spend - coalesce(x.net_spend, 0),
           CASE WHEN t.last_order_at <= upto THEN t.last_order_at
                ELSE (SELECT max(o.ordered_at) FROM loyalty.order_earning o
                       WHERE o.program = member_activity.program AND o.member_id = t.member_id
                         AND NOT o.closed AND o.amount > 0 AND o.refunded_amount < o.amount
                         AND o.fx_rate IS NOT NULL AND o.ordered_at <= upto) END
      FROM loyalty.activity_total t
      LEFT JOIN outside_sum x USING (member_id)
     WHERE t.program = member_activity.program AND (SELECT ok FROM fast)
       AND t.orders - coalesce(x.orders, 0) > 0
    UNION ALL
    SELECT o.member_id, count(*), sum(round((o.amount - o.refunded_amount) * o.fx_rate, 4)), max(o.ordered_at)
      FROM loyalty.order_earning o
     WHERE o.program = member_activity.program AND NOT (SELECT ok FROM fast)
       AND o.member_id IS NOT NULL AND NOT o.closed AND o.amount > 0
       AND o.refunded_amount < o.amount AND o.fx_rate IS NOT NULL
       AND o.ordered_at > after AND o.ordered_at <= upto
     GROUP BY o.member_id
$$;
COMMENT ON FUNCTION @extschema@.member_activity(text, timestamptz, timestamptz) IS
    'Every member''s counted orders in (after, upto]: orders, net spend in base currency, last order; from the activity tables';

-- Recomputes a program's activity from its orders (after a restore of
-- order_earning alone, or when loyalty.verify() finds a difference).
CREATE FUNCTION @extschema@.rebuild_activity(program text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
DECLARE
    members bigint;
BEGIN
    PERFORM @extschema@.require_program(program);
    -- No pass folds days, and no order changes, while the tables are rebuilt.
    INSERT INTO @extschema@.activity_horizon (program) VALUES (rebuild_activity.program) ON CONFLICT DO NOTHING;
    UPDATE @extschema@.activity_horizon h SET through = '-infinity' WHERE h.program = rebuild_activity.program;
    LOCK TABLE @extschema@.order_earning IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM @extschema@.activity_total a WHERE a.program = rebuild_activity.program;
    DELETE FROM @extschema@.activity_day a WHERE a.program = rebuild_activity.program;
    DELETE FROM @extschema@.activity_before a WHERE a.program = rebuild_activity.program;
    WITH counted AS MATERIALIZED (
        SELECT o.member_id, (o.ordered_at AT TIME ZONE 'UTC')::date AS day, o.ordered_at,
               round((o.amount - o.refunded_amount) * o.fx_rate, 4) AS net
          FROM @extschema@.order_earning o
         WHERE o.program = rebuild_activity.program AND o.member_id IS NOT NULL AND NOT o.closed
           AND o.amount > 0 AND o.refunded_amount < o.amount AND o.fx_rate IS NOT NULL
    ), days AS (
        INSERT INTO @extschema@.activity_day (program, day, member_id, orders, net_spend)
        SELECT rebuild_activity.program, c.day, c.member_id, count(*), sum(c.net)
          FROM counted c GROUP BY c.day, c.member_id
    )
    INSERT INTO @extschema@.activity_total (program, member_id, orders, net_spend, last_order_at)
    SELECT rebuild_activity.program, c.member_id, count(*), sum(c.net), max(c.ordered_at)
      FROM counted c GROUP BY c.member_id;
    GET DIAGNOSTICS members = ROW_COUNT;
    RETURN members;
END
$$;
COMMENT ON FUNCTION @extschema@.rebuild_activity(text) IS
    'Recomputes a program''s activity tables from loyalty.order_earning; returns the members with counted orders';

-- 0.1.0 -> 0.2.0, what changed in src/sql/25_activity.sql since 0.1.0: new objects created, changed functions and views replaced, tables altered.

-- The day row of an order time: the UTC day whose (midnight, next midnight]
-- holds it (the C twin is ActivityDayOf in activity.c).
CREATE OR REPLACE FUNCTION @extschema@.activity_day_of(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ((t AT TIME ZONE 'UTC') - interval '1 microsecond')::pg_catalog.date $$;

-- The C trigger keeping the three tables; one per event, since a trigger
-- with transition tables may have only one.
-- Its search_path is pinned too: it runs SQL for whoever changes the table.
CREATE OR REPLACE FUNCTION @extschema@.activity_trigger() RETURNS trigger
LANGUAGE c SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_activity_trigger';

-- Every member's counted orders in (after, upto].  Inlined into the caller's
-- query, so that with known bounds the day rows and the edge-day orders are
-- read by index ranges.  The fast path needs the horizon before the UTC day
-- of after (first) and after < upto; otherwise the orders are read.  last,
-- the day row holding upto, is activity_day_of(upto).  What lies outside the
-- window: the folded days (one row per member), the day rows before first
-- and after last, the orders of day first up to after (none when after is a
-- midnight) and those of day last after upto (none when upto is a
-- midnight), by time (order_earning_time_idx).
CREATE OR REPLACE FUNCTION @extschema@.member_activity(program text, after timestamptz, upto timestamptz)
RETURNS TABLE (member_id text, orders bigint, net_spend numeric, last_order_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT t.member_id,
           t.orders - coalesce(b.orders, 0) - coalesce(x.orders, 0),
           t.net_spend - coalesce(b.net_spend, 0) - coalesce(x.net_spend, 0),
           CASE WHEN t.last_order_at <= upto THEN t.last_order_at
                ELSE (SELECT max(o.ordered_at) FROM loyalty.counted_order o
                       WHERE o.program = member_activity.program AND o.member_id = t.member_id
                         AND o.ordered_at <= upto) END
      FROM loyalty.activity_total t
      LEFT JOIN loyalty.activity_before b ON b.program = t.program AND b.member_id = t.member_id
      LEFT JOIN (
        SELECT y.member_id, sum(y.orders) AS orders, sum(y.net_spend) AS net_spend
          FROM (SELECT d.member_id, d.orders, d.net_spend
                  FROM loyalty.activity_day d
                 WHERE d.program = member_activity.program AND d.day < (after AT TIME ZONE 'UTC')::pg_catalog.date
                UNION ALL
                SELECT d.member_id, d.orders, d.net_spend
                  FROM loyalty.activity_day d
                 WHERE d.program = member_activity.program AND d.day > loyalty.activity_day_of(upto)
                UNION ALL
                SELECT o.member_id, 1, o.net
                  FROM loyalty.counted_order o
                 WHERE o.program = member_activity.program
                   AND (after AT TIME ZONE 'UTC') > (after AT TIME ZONE 'UTC')::pg_catalog.date
                   AND o.ordered_at > ((after AT TIME ZONE 'UTC')::pg_catalog.date::pg_catalog.timestamp AT TIME ZONE 'UTC')
                   AND o.ordered_at <= after
                UNION ALL
                SELECT o.member_id, 1, o.net
                  FROM loyalty.counted_order o
                 WHERE o.program = member_activity.program
                   AND (upto AT TIME ZONE 'UTC') > (upto AT TIME ZONE 'UTC')::pg_catalog.date
                   AND o.ordered_at > upto
                   AND o.ordered_at <= (((upto AT TIME ZONE 'UTC')::pg_catalog.date + 1)::pg_catalog.timestamp AT TIME ZONE 'UTC')
               ) y
         GROUP BY y.member_id
      ) x ON x.member_id = t.member_id
     WHERE t.program = member_activity.program
       AND (SELECT coalesce(max(h.through), '-infinity') FROM loyalty.activity_horizon h
             WHERE h.program = member_activity.program) < (after AT TIME ZONE 'UTC')::pg_catalog.date
       AND after < upto
       AND t.orders - coalesce(b.orders, 0) - coalesce(x.orders, 0) > 0
    UNION ALL
    SELECT o.member_id, count(*), sum(o.net), max(o.ordered_at)
      FROM loyalty.counted_order o
     WHERE o.program = member_activity.program
       AND NOT ((SELECT coalesce(max(h.through), '-infinity') FROM loyalty.activity_horizon h
                  WHERE h.program = member_activity.program) < (after AT TIME ZONE 'UTC')::pg_catalog.date
                AND after < upto)
       AND o.ordered_at > after AND o.ordered_at <= upto
     GROUP BY o.member_id
$$;

-- Recomputes a program's activity from its orders (after a restore of
-- order_earning alone, or when loyalty.verify() finds a difference).
CREATE OR REPLACE FUNCTION @extschema@.rebuild_activity(program text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
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
        SELECT o.member_id, @extschema@.activity_day_of(o.ordered_at) AS day, o.ordered_at, o.net
          FROM @extschema@.counted_order o
         WHERE o.program = rebuild_activity.program
    ), days AS (
        INSERT INTO @extschema@.activity_day (program, day, member_id, orders, net_spend)
        SELECT rebuild_activity.program, c.day, c.member_id, count(*), sum(c.net)
          FROM counted c GROUP BY c.day, c.member_id
         ORDER BY c.day, c.member_id    -- stored by day, as the trigger writes them over time
    )
    INSERT INTO @extschema@.activity_total (program, member_id, orders, net_spend, last_order_at)
    SELECT rebuild_activity.program, c.member_id, count(*), sum(c.net), max(c.ordered_at)
      FROM counted c GROUP BY c.member_id;
    GET DIAGNOSTICS members = ROW_COUNT;
    RETURN members;
END
$$;

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
-- less the orders of its edge days that fall outside it, read by time.
--
-- A day row holds the orders of (midnight, next midnight] UTC, closed at
-- its end like the windows, so that a window starting or ending at
-- midnight (a nightly pass) is made of whole days: an order at exactly
-- midnight belongs to the day that ends then.

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
COMMENT ON COLUMN @extschema@.activity_day.day IS 'UTC day: orders of (its midnight, the next midnight], see loyalty.activity_day_of';

-- The day row of an order time: the UTC day whose (midnight, next midnight]
-- holds it (the C twin is ActivityDayOf in activity.c).
CREATE FUNCTION @extschema@.activity_day_of(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ((t AT TIME ZONE 'UTC') - interval '1 microsecond')::pg_catalog.date $$;
COMMENT ON FUNCTION @extschema@.activity_day_of(timestamptz) IS
    'The UTC day of loyalty.activity_day that holds an order time: (midnight, next midnight], closed at the end';

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

-- The orders of a time range: the parts of a window's edge days that lie
-- outside it, read by member_activity.
CREATE INDEX order_earning_time_idx ON @extschema@.order_earning (program, ordered_at);

-- Not dumped by pg_dump: restoring loyalty.order_earning runs the trigger
-- below, which builds them again (all days as day rows; the next pass folds).

-- The orders that count, with their net value: the rule above, which the
-- trigger applies row by row in C (CountRow in activity.c).
CREATE VIEW @extschema@.counted_order AS
    SELECT o.program, o.order_id, o.member_id, o.ordered_at,
           round((o.amount - o.refunded_amount) * o.fx_rate, 4) AS net
      FROM @extschema@.order_earning o
     WHERE o.member_id IS NOT NULL AND NOT o.closed AND o.amount > 0
       AND o.refunded_amount < o.amount AND o.fx_rate IS NOT NULL;
COMMENT ON VIEW @extschema@.counted_order IS
    'Orders that count in their member''s activity: a member, not closed, positive amount, an FX rate, something left after refunds';
COMMENT ON COLUMN @extschema@.counted_order.program IS 'Program code';
COMMENT ON COLUMN @extschema@.counted_order.order_id IS 'Order id in the application''s table';
COMMENT ON COLUMN @extschema@.counted_order.member_id IS 'Member of the current generation';
COMMENT ON COLUMN @extschema@.counted_order.ordered_at IS 'The order''s time';
COMMENT ON COLUMN @extschema@.counted_order.net IS 'Amount less refunds in base currency at the order''s FX rate, rounded to 4 decimals';

-- The C trigger keeping the three tables; one per event, since a trigger
-- with transition tables may have only one.
-- Its search_path is pinned too: it runs SQL for whoever changes the table.
CREATE FUNCTION @extschema@.activity_trigger() RETURNS trigger
LANGUAGE c SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_activity_trigger';
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
-- query, so that with known bounds the day rows and the edge-day orders are
-- read by index ranges.  The fast path needs the horizon before the UTC day
-- of after (first) and after < upto; otherwise the orders are read.  last,
-- the day row holding upto, is activity_day_of(upto).  What lies outside the
-- window: the folded days (one row per member), the day rows before first
-- and after last, the orders of day first up to after (none when after is a
-- midnight) and those of day last after upto (none when upto is a
-- midnight), by time (order_earning_time_idx).
CREATE FUNCTION @extschema@.member_activity(program text, after timestamptz, upto timestamptz)
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
COMMENT ON FUNCTION @extschema@.member_activity(text, timestamptz, timestamptz) IS
    'Every member''s counted orders in (after, upto]: orders, net spend in base currency, last order; from the activity tables';

-- Recomputes a program's activity from its orders (after a restore of
-- order_earning alone, or when loyalty.verify() finds a difference).
CREATE FUNCTION @extschema@.rebuild_activity(program text)
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
COMMENT ON FUNCTION @extschema@.rebuild_activity(text) IS
    'Recomputes a program''s activity tables from loyalty.order_earning; returns the members with counted orders';

-- Batch passes on a Citus cluster: the statement forms Citus can run across
-- nodes, where the single-node form cannot be (see docs/scale-out.md).  The
-- passes choose them when loyalty.distributed(); on one node they are not
-- used and the single-node plans stay as they were.

-- member_activity on a cluster.  Citus cannot plan a SQL function with
-- parameters over distributed tables, nor a correlated subquery beside a
-- subquery in FROM: this is member_activity with the last-order lookup as
-- a join, every join on member_id (pushed down to each node), run by
-- PL/pgSQL with its arguments as values.
CREATE FUNCTION @extschema@.member_activity_cluster(program text, after timestamptz, upto timestamptz)
RETURNS TABLE (member_id text, orders bigint, net_spend numeric, last_order_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    folded_through date := (SELECT coalesce(max(h.through), '-infinity') FROM loyalty.activity_horizon h
                             WHERE h.program = member_activity_cluster.program);
    from_day date := (after AT TIME ZONE 'UTC')::date;
BEGIN
    IF folded_through < from_day AND after < upto THEN
        RETURN QUERY
        SELECT t.member_id,
               t.orders - coalesce(b.orders, 0) - coalesce(x.orders, 0),
               t.net_spend - coalesce(b.net_spend, 0) - coalesce(x.net_spend, 0),
               CASE WHEN t.last_order_at <= upto THEN t.last_order_at ELSE lo.last_order_at END
          FROM loyalty.activity_total t
          LEFT JOIN loyalty.activity_before b ON b.program = t.program AND b.member_id = t.member_id
          LEFT JOIN (
            SELECT y.member_id, sum(y.orders) AS orders, sum(y.net_spend) AS net_spend
              FROM (SELECT d.member_id, d.orders, d.net_spend
                      FROM loyalty.activity_day d
                     WHERE d.program = member_activity_cluster.program AND d.day < from_day
                    UNION ALL
                    SELECT d.member_id, d.orders, d.net_spend
                      FROM loyalty.activity_day d
                     WHERE d.program = member_activity_cluster.program AND d.day > loyalty.activity_day_of(upto)
                    UNION ALL
                    SELECT o.member_id, 1, o.net
                      FROM loyalty.counted_order o
                     WHERE o.program = member_activity_cluster.program
                       AND (after AT TIME ZONE 'UTC') > from_day
                       AND o.ordered_at > (from_day::timestamp AT TIME ZONE 'UTC')
                       AND o.ordered_at <= after
                    UNION ALL
                    SELECT o.member_id, 1, o.net
                      FROM loyalty.counted_order o
                     WHERE o.program = member_activity_cluster.program
                       AND (upto AT TIME ZONE 'UTC') > (upto AT TIME ZONE 'UTC')::date
                       AND o.ordered_at > upto
                       AND o.ordered_at <= (((upto AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC')
                   ) y
             GROUP BY y.member_id
          ) x ON x.member_id = t.member_id
          LEFT JOIN (
            SELECT o.member_id, max(o.ordered_at) AS last_order_at
              FROM loyalty.counted_order o
             WHERE o.program = member_activity_cluster.program AND o.ordered_at <= upto
             GROUP BY o.member_id
          ) lo ON lo.member_id = t.member_id
         WHERE t.program = member_activity_cluster.program
           AND t.orders - coalesce(b.orders, 0) - coalesce(x.orders, 0) > 0;
    ELSE
        RETURN QUERY
        SELECT o.member_id, count(*), sum(o.net), max(o.ordered_at)
          FROM loyalty.counted_order o
         WHERE o.program = member_activity_cluster.program
           AND o.ordered_at > after AND o.ordered_at <= upto
         GROUP BY o.member_id;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.member_activity_cluster(text, timestamptz, timestamptz) IS
    'loyalty.member_activity in the form a Citus cluster runs across nodes (the batch passes use it when loyalty.distributed()); the same rows';

-- Every member's counted orders over its program's tier window up to now,
-- for verify() on a cluster (Citus cannot join a function laterally).
CREATE FUNCTION @extschema@.tier_basis_cluster(only_program text)
RETURNS TABLE (program text, member_id text, orders bigint, net_spend numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p text;
BEGIN
    FOR p IN SELECT x.code FROM loyalty.program x
              WHERE only_program IS NULL OR x.code = only_program ORDER BY 1 LOOP
        RETURN QUERY
        SELECT p, a.member_id, a.orders, a.net_spend
          FROM loyalty.member_activity_cluster(p, now() - loyalty.basis_window_days(p) * interval '1 day', now()) a;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.tier_basis_cluster(text) IS
    'Every member''s orders and net spend over its program''s tier window up to now (all programs when NULL), from the activity; verify() on a Citus cluster';

-- verify() on a cluster: the same checks, every join of member-keyed tables
-- also on member_id (an order, a lot, its uses and holds live with their
-- member), the tier basis from member_activity_cluster.  Called by verify().
CREATE FUNCTION @extschema@.verify_cluster(program text)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH led AS (
        SELECT l.program, l.member_id,
               sum(l.points) AS total,
               coalesce(sum(l.points) FILTER (WHERE loyalty.ledger_kind_class(l.kind) = 'earned'), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE loyalty.ledger_kind_class(l.kind) = 'redeemed'), 0) AS redeemed,
               coalesce(-sum(l.points) FILTER (WHERE loyalty.ledger_kind_class(l.kind) = 'reversed'), 0) AS reversed,
               coalesce(-sum(l.points) FILTER (WHERE loyalty.ledger_kind_class(l.kind) = 'expired'), 0) AS expired
          FROM loyalty.ledger l
         WHERE verify_cluster.program IS NULL OR l.program = verify_cluster.program
         GROUP BY 1, 2
    ), mem AS (
        SELECT * FROM loyalty.member m WHERE verify_cluster.program IS NULL OR m.program = verify_cluster.program
    ), lots AS (
        SELECT l.program, l.member_id, sum(l.remaining) AS remaining
          FROM loyalty.lot l
         WHERE verify_cluster.program IS NULL OR l.program = verify_cluster.program
         GROUP BY 1, 2
    ), bad_balance AS (
        SELECT coalesce(m.program, d.program) AS program, coalesce(m.member_id, d.member_id) AS member_id,
               m.balance, d.total
          FROM mem m FULL JOIN led d USING (program, member_id)
         WHERE coalesce(m.balance, 0) <> coalesce(d.total, 0)
    ), bad_lifetime AS (
        SELECT m.program, m.member_id
          FROM mem m LEFT JOIN led d USING (program, member_id)
         WHERE (m.lifetime_earned, m.lifetime_redeemed, m.lifetime_reversed, m.lifetime_expired)
               IS DISTINCT FROM (coalesce(d.earned, 0), coalesce(d.redeemed, 0),
                                 coalesce(d.reversed, 0), coalesce(d.expired, 0))
    ), bad_lots_sum AS (
        SELECT m.program, m.member_id
          FROM mem m LEFT JOIN lots s USING (program, member_id)
         WHERE m.balance <> coalesce(s.remaining, 0) - m.debt
    ), bad_lot AS (
        SELECT l.id
          FROM loyalty.lot l
          LEFT JOIN (SELECT u.lot_id, u.member_id, sum(u.points) AS used FROM loyalty.lot_use u GROUP BY 1, 2) u
                 ON u.lot_id = l.id AND u.member_id = l.member_id
         WHERE (verify_cluster.program IS NULL OR l.program = verify_cluster.program)
           AND (l.remaining < 0 OR l.remaining > l.earned
                OR l.earned - l.remaining <> coalesce(u.used, 0))
    ), order_points AS (
        SELECT l.program, l.member_id, l.order_id,
               coalesce(sum(l.points) FILTER (WHERE l.kind = 'earn'), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'reverse'), 0) AS reversed,
               count(*) FILTER (WHERE l.kind = 'earn') AS earnings
          FROM loyalty.ledger l
         WHERE l.order_id IS NOT NULL AND (verify_cluster.program IS NULL OR l.program = verify_cluster.program)
         GROUP BY 1, 2, 3
    ), bad_order_twice AS (
        -- At most one earning per generation, and the ledger matches the order's totals.
        SELECT o.program, o.order_id
          FROM loyalty.order_earning o
          LEFT JOIN order_points p USING (program, member_id, order_id)
         WHERE (verify_cluster.program IS NULL OR o.program = verify_cluster.program)
           AND (coalesce(p.earnings, 0) > o.generation
                OR coalesce(p.earned, 0) <> o.earned_total
                OR coalesce(p.reversed, 0) <> o.reversed_total)
    ), bad_reversal AS (
        SELECT p.program, p.order_id FROM order_points p WHERE p.reversed > p.earned
    ), counted AS (
        SELECT o.program, o.member_id, count(*) AS orders, sum(o.net) AS net_spend,
               max(o.ordered_at) AS last_order_at
          FROM loyalty.counted_order o
         WHERE verify_cluster.program IS NULL OR o.program = verify_cluster.program
         GROUP BY 1, 2
    ), bad_activity AS (
        SELECT coalesce(t.program, c.program) AS program, coalesce(t.member_id, c.member_id) AS member_id
          FROM (SELECT * FROM loyalty.activity_total a
                 WHERE verify_cluster.program IS NULL OR a.program = verify_cluster.program) t
          FULL JOIN counted c USING (program, member_id)
         WHERE (coalesce(t.orders, 0), coalesce(t.net_spend, 0), t.last_order_at)
               IS DISTINCT FROM (coalesce(c.orders, 0), coalesce(c.net_spend, 0), c.last_order_at)
    ), clamped AS (
        -- The counted orders again, from values clamped into range: refunds
        -- into [0, amount] (NaN: all refunded), only finite positive amounts
        -- and rates.  Equal to the activity unless values poisoned it.
        SELECT o.program, o.member_id, o.ordered_at,
               round((o.amount - least(greatest(o.refunded_amount, 0), o.amount)) * o.fx_rate, 4) AS net
          FROM loyalty.order_earning o
         WHERE (verify_cluster.program IS NULL OR o.program = verify_cluster.program)
           AND o.member_id IS NOT NULL AND NOT o.closed
           AND o.amount > 0 AND o.amount < 'Infinity' AND o.fx_rate > 0 AND o.fx_rate < 'Infinity'
           AND least(greatest(o.refunded_amount, 0), o.amount) < o.amount
    ), bad_clamped AS (
        SELECT coalesce(t.program, c.program) AS program, coalesce(t.member_id, c.member_id) AS member_id
          FROM (SELECT * FROM loyalty.activity_total a
                 WHERE verify_cluster.program IS NULL OR a.program = verify_cluster.program) t
          FULL JOIN (SELECT c.program, c.member_id, count(*) AS orders, sum(c.net) AS net_spend
                       FROM clamped c GROUP BY 1, 2) c USING (program, member_id)
         WHERE (coalesce(t.orders, 0), coalesce(t.net_spend, 0))
               IS DISTINCT FROM (coalesce(c.orders, 0), coalesce(c.net_spend, 0))
    ), basis_window AS (
        SELECT p.code AS program, pg_catalog.now() - loyalty.basis_window_days(p.code) * interval '1 day' AS after
          FROM loyalty.program p WHERE verify_cluster.program IS NULL OR p.code = verify_cluster.program
    ), bad_basis AS (
        -- The tier basis (member_activity over the ladder's window) against the recount.
        SELECT coalesce(a.program, c.program) AS program, coalesce(a.member_id, c.member_id) AS member_id
          FROM loyalty.tier_basis_cluster(verify_cluster.program) a
          FULL JOIN (SELECT c.program, c.member_id, count(*) AS orders, sum(c.net) AS net_spend
                       FROM clamped c JOIN basis_window w USING (program)
                      WHERE c.ordered_at > w.after AND c.ordered_at <= pg_catalog.now()
                      GROUP BY 1, 2) c USING (program, member_id)
         WHERE (coalesce(a.orders, 0), coalesce(a.net_spend, 0))
               IS DISTINCT FROM (coalesce(c.orders, 0), coalesce(c.net_spend, 0))
    ), bad_values AS (
        -- Open orders with values the trigger refuses today.
        SELECT o.program, o.order_id
          FROM loyalty.order_earning o
         WHERE (verify_cluster.program IS NULL OR o.program = verify_cluster.program) AND NOT o.closed
           AND (o.amount < 0 OR o.amount >= 'Infinity'
                OR o.refunded_amount < 0 OR o.refunded_amount >= 'Infinity'
                OR o.refunded_amount > o.amount
                OR o.fx_rate <= 0 OR o.fx_rate >= 'Infinity'
                OR NOT pg_catalog.isfinite(o.ordered_at))
    ), bad_figures AS (
        SELECT x.program, x.member_id
          FROM (SELECT a.program, a.member_id, a.orders, a.net_spend FROM loyalty.activity_total a
                UNION ALL
                SELECT d.program, d.member_id, d.orders, d.net_spend FROM loyalty.activity_day d
                UNION ALL
                SELECT b.program, b.member_id, b.orders, b.net_spend FROM loyalty.activity_before b
                UNION ALL
                SELECT m.program, m.member_id, 0, least(m.lifetime_earned, m.lifetime_redeemed,
                                                        m.lifetime_reversed, m.lifetime_expired)
                  FROM loyalty.member m) x
         WHERE (verify_cluster.program IS NULL OR x.program = verify_cluster.program)
           AND (x.orders < 0 OR x.net_spend < 0 OR x.net_spend >= 'Infinity')
    ), bad_hold AS (
        -- Holds (36_holds.sql): a frozen lot (available_at infinity) has
        -- its time in held_lot and belongs to a held member, and a member
        -- is held exactly while it has an open hold.
        SELECT DISTINCT x.program, x.member_id FROM (
        SELECT l.program, l.member_id
          FROM loyalty.lot l
          LEFT JOIN loyalty.held_lot h ON h.lot_id = l.id AND h.member_id = l.member_id
          LEFT JOIN loyalty.member m ON m.program = l.program AND m.member_id = l.member_id
         WHERE (verify_cluster.program IS NULL OR l.program = verify_cluster.program)
           AND ((l.available_at = 'infinity') IS DISTINCT FROM (h.lot_id IS NOT NULL)
                OR (h.lot_id IS NOT NULL AND m.status IS DISTINCT FROM 'held'))
        UNION ALL
        SELECT h.program, h.member_id
          FROM loyalty.held_lot h
         WHERE (verify_cluster.program IS NULL OR h.program = verify_cluster.program)
           AND NOT EXISTS (SELECT 1 FROM loyalty.lot l WHERE l.id = h.lot_id AND l.member_id = h.member_id)
        UNION ALL
        SELECT m.program, m.member_id
          FROM loyalty.member m
         WHERE (verify_cluster.program IS NULL OR m.program = verify_cluster.program)
           AND (m.status = 'held') IS DISTINCT FROM EXISTS (
                   SELECT 1 FROM loyalty.member_hold o
                    WHERE o.program = m.program AND o.member_id = m.member_id AND o.released_at IS NULL)
        ) x
    ), activity_parts AS (
        SELECT x.program, x.member_id, sum(x.orders) AS orders, sum(x.net_spend) AS net_spend
          FROM (SELECT d.program, d.member_id, d.orders, d.net_spend FROM loyalty.activity_day d
                UNION ALL
                SELECT b.program, b.member_id, b.orders, b.net_spend FROM loyalty.activity_before b) x
         WHERE verify_cluster.program IS NULL OR x.program = verify_cluster.program
         GROUP BY 1, 2
    ), bad_activity_parts AS (
        SELECT coalesce(t.program, p.program) AS program, coalesce(t.member_id, p.member_id) AS member_id
          FROM (SELECT * FROM loyalty.activity_total a
                 WHERE verify_cluster.program IS NULL OR a.program = verify_cluster.program) t
          FULL JOIN activity_parts p USING (program, member_id)
         WHERE (coalesce(t.orders, 0), coalesce(t.net_spend, 0))
               IS DISTINCT FROM (coalesce(p.orders, 0), coalesce(p.net_spend, 0))
    )
    SELECT 'balance_equals_ledger', NOT EXISTS (SELECT 1 FROM bad_balance),
           (SELECT pg_catalog.format('%s member(s) differ, e.g. %s/%s cached %s, ledger %s',
                   count(*), min(program), min(member_id), min(balance), min(total)) FROM bad_balance HAVING count(*) > 0)
    UNION ALL
    SELECT 'lifetime_figures_equal_ledger', NOT EXISTS (SELECT 1 FROM bad_lifetime),
           (SELECT pg_catalog.format('%s member(s) differ, e.g. %s/%s', count(*), min(program), min(member_id))
              FROM bad_lifetime HAVING count(*) > 0)
    UNION ALL
    SELECT 'balance_equals_lots_minus_debt', NOT EXISTS (SELECT 1 FROM bad_lots_sum),
           (SELECT pg_catalog.format('%s member(s) differ, e.g. %s/%s', count(*), min(program), min(member_id))
              FROM bad_lots_sum HAVING count(*) > 0)
    UNION ALL
    SELECT 'lot_remainders_consistent', NOT EXISTS (SELECT 1 FROM bad_lot),
           (SELECT pg_catalog.format('%s lot(s) outside [0, earned] or not matching their uses, e.g. lot %s', count(*), min(id))
              FROM bad_lot HAVING count(*) > 0)
    UNION ALL
    SELECT 'no_order_earned_twice', NOT EXISTS (SELECT 1 FROM bad_order_twice),
           (SELECT pg_catalog.format('%s order(s) hold other points than their current earning, e.g. %s/%s',
                   count(*), min(program), min(order_id)) FROM bad_order_twice HAVING count(*) > 0)
    UNION ALL
    SELECT 'no_reversal_above_earning', NOT EXISTS (SELECT 1 FROM bad_reversal),
           (SELECT pg_catalog.format('%s order(s) reversed more than they earned, e.g. %s/%s',
                   count(*), min(program), min(order_id)) FROM bad_reversal HAVING count(*) > 0)
    UNION ALL
    SELECT 'activity_equals_orders', NOT EXISTS (SELECT 1 FROM bad_activity),
           (SELECT pg_catalog.format('%s member(s) whose activity differs from their orders, e.g. %s/%s; run loyalty.rebuild_activity()',
                   count(*), min(program), min(member_id)) FROM bad_activity HAVING count(*) > 0)
    UNION ALL
    SELECT 'activity_days_add_up', NOT EXISTS (SELECT 1 FROM bad_activity_parts),
           (SELECT pg_catalog.format('%s member(s) whose days do not add up to their totals, e.g. %s/%s; run loyalty.rebuild_activity()',
                   count(*), min(program), min(member_id)) FROM bad_activity_parts HAVING count(*) > 0)
    UNION ALL
    SELECT 'order_values_in_range', NOT EXISTS (SELECT 1 FROM bad_values),
           (SELECT pg_catalog.format('%s open order(s) with a negative, infinite or NaN amount, refund or rate, a refund above the amount or an infinite time, e.g. %s/%s',
                   count(*), min(program), min(order_id)) FROM bad_values HAVING count(*) > 0)
    UNION ALL
    SELECT 'clamped_orders_equal_activity', NOT EXISTS (SELECT 1 FROM bad_clamped),
           (SELECT pg_catalog.format('%s member(s) whose activity differs from their orders counted with refunds clamped to [0, amount], e.g. %s/%s; when order_values_in_range is ok, run loyalty.rebuild_activity()',
                   count(*), min(program), min(member_id)) FROM bad_clamped HAVING count(*) > 0)
    UNION ALL
    SELECT 'tier_basis_equals_orders', NOT EXISTS (SELECT 1 FROM bad_basis),
           (SELECT pg_catalog.format('%s member(s) whose spend or orders over the tier window differ from a recount of their orders, e.g. %s/%s',
                   count(*), min(program), min(member_id)) FROM bad_basis HAVING count(*) > 0)
    UNION ALL
    SELECT 'holds_consistent', NOT EXISTS (SELECT 1 FROM bad_hold),
           (SELECT pg_catalog.format('%s member(s) whose status, open hold and frozen lots (held_lot) disagree, e.g. %s/%s',
                   count(*), min(program), min(member_id)) FROM bad_hold HAVING count(*) > 0)
    UNION ALL
    SELECT 'no_negative_or_nan_figures', NOT EXISTS (SELECT 1 FROM bad_figures),
           (SELECT pg_catalog.format('%s activity or lifetime figure(s) negative or not a number, e.g. %s/%s',
                   count(*), min(program), min(member_id)) FROM bad_figures HAVING count(*) > 0);
END
$$;
COMMENT ON FUNCTION @extschema@.verify_cluster(text) IS
    'loyalty.verify() in the form a Citus cluster runs across nodes (verify() calls it when loyalty.distributed()); the same checks';

-- loyalty.verify(): proves the cached figures equal the ledger.

CREATE FUNCTION @extschema@.verify(program text DEFAULT NULL)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@
AS $$
    WITH led AS (
        SELECT l.program, l.member_id,
               sum(l.points) AS total,
               coalesce(sum(l.points) FILTER (WHERE l.kind IN ('earn', 'adjust')), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE l.kind IN ('redeem', 'unredeem')), 0) AS redeemed,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'reverse'), 0) AS reversed,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'expire'), 0) AS expired
          FROM loyalty.ledger l
         WHERE verify.program IS NULL OR l.program = verify.program
         GROUP BY 1, 2
    ), mem AS (
        SELECT * FROM loyalty.member m WHERE verify.program IS NULL OR m.program = verify.program
    ), lots AS (
        SELECT l.program, l.member_id, sum(l.remaining) AS remaining
          FROM loyalty.lot l
         WHERE verify.program IS NULL OR l.program = verify.program
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
          LEFT JOIN (SELECT u.lot_id, sum(u.points) AS used FROM loyalty.lot_use u GROUP BY 1) u ON u.lot_id = l.id
         WHERE (verify.program IS NULL OR l.program = verify.program)
           AND (l.remaining < 0 OR l.remaining > l.earned
                OR l.earned - l.remaining <> coalesce(u.used, 0))
    ), order_points AS (
        SELECT l.program, l.order_id,
               coalesce(sum(l.points) FILTER (WHERE l.kind = 'earn'), 0) AS earned,
               coalesce(-sum(l.points) FILTER (WHERE l.kind = 'reverse'), 0) AS reversed,
               count(*) FILTER (WHERE l.kind = 'earn') AS earnings
          FROM loyalty.ledger l
         WHERE l.order_id IS NOT NULL AND (verify.program IS NULL OR l.program = verify.program)
         GROUP BY 1, 2
    ), bad_order_twice AS (
        -- At most one earning per generation, and the ledger matches the order's totals.
        SELECT o.program, o.order_id
          FROM loyalty.order_earning o
          LEFT JOIN order_points p USING (program, order_id)
         WHERE (verify.program IS NULL OR o.program = verify.program)
           AND (coalesce(p.earnings, 0) > o.generation
                OR coalesce(p.earned, 0) <> o.earned_total
                OR coalesce(p.reversed, 0) <> o.reversed_total)
    ), bad_reversal AS (
        SELECT p.program, p.order_id FROM order_points p WHERE p.reversed > p.earned
    ), counted AS (
        SELECT o.program, o.member_id, count(*) AS orders, sum(o.net) AS net_spend,
               max(o.ordered_at) AS last_order_at
          FROM loyalty.counted_order o
         WHERE verify.program IS NULL OR o.program = verify.program
         GROUP BY 1, 2
    ), bad_activity AS (
        SELECT coalesce(t.program, c.program) AS program, coalesce(t.member_id, c.member_id) AS member_id
          FROM (SELECT * FROM loyalty.activity_total a
                 WHERE verify.program IS NULL OR a.program = verify.program) t
          FULL JOIN counted c USING (program, member_id)
         WHERE (coalesce(t.orders, 0), coalesce(t.net_spend, 0), t.last_order_at)
               IS DISTINCT FROM (coalesce(c.orders, 0), coalesce(c.net_spend, 0), c.last_order_at)
    ), activity_parts AS (
        SELECT x.program, x.member_id, sum(x.orders) AS orders, sum(x.net_spend) AS net_spend
          FROM (SELECT d.program, d.member_id, d.orders, d.net_spend FROM loyalty.activity_day d
                UNION ALL
                SELECT b.program, b.member_id, b.orders, b.net_spend FROM loyalty.activity_before b) x
         WHERE verify.program IS NULL OR x.program = verify.program
         GROUP BY 1, 2
    ), bad_activity_parts AS (
        SELECT coalesce(t.program, p.program) AS program, coalesce(t.member_id, p.member_id) AS member_id
          FROM (SELECT * FROM loyalty.activity_total a
                 WHERE verify.program IS NULL OR a.program = verify.program) t
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
$$;
COMMENT ON FUNCTION @extschema@.verify(text) IS
    'Proves the books: cached balances and lifetime figures equal the ledger, lots match their uses, no order earned twice, no reversal above its earning, per-member activity equals the orders';

-- Privileges: nothing is public; each role gets what its job needs.
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    @extschema@.balance(text, text, timestamptz),
    @extschema@.history(text, text),
    @extschema@.enroll(text, text, jsonb),
    @extschema@.earn(text, text, bigint, text, text, timestamptz),
    @extschema@.redeem(text, text, bigint, text, timestamptz),
    @extschema@.cancel_redemption(text, text)
TO loyalty_app, loyalty_admin;

GRANT EXECUTE ON FUNCTION
    @extschema@.create_program(text, text, numeric, integer, interval, text, text, text[]),
    @extschema@.set_closing_statuses(text, text[]),
    @extschema@.set_member_status(text, text, text),
    @extschema@.set_fx_rate(text, text, numeric, timestamptz),
    @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text),
    @extschema@.detach_orders(text, regclass),
    @extschema@.retry_dead_letters(text),
    @extschema@.expire_points(text, timestamptz),
    @extschema@.expire_points_chunk(text, timestamptz, integer),
    @extschema@.verify(text),
    @extschema@.member_activity(text, timestamptz, timestamptz),
    @extschema@.rebuild_activity(text)
TO loyalty_admin;
REVOKE ALL ON PROCEDURE @extschema@.expire_points_batched(text, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE @extschema@.expire_points_batched(text, timestamptz, integer) TO loyalty_admin;

-- orders_trigger() stays unexecutable by PUBLIC: only attach_orders() may
-- create triggers with it, and the trigger checks its table is attached.
GRANT EXECUTE ON FUNCTION
    @extschema@.fx_rate_at(text, text, timestamptz),
    @extschema@.fx_quote(text, text, timestamptz)
TO loyalty_admin, loyalty_app, loyalty_reader;

-- Configuration is readable by all three; balances only through functions.
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO loyalty_admin;
GRANT SELECT ON @extschema@.program, @extschema@.fx_rate TO loyalty_app, loyalty_reader;

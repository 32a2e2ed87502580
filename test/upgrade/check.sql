-- After ALTER EXTENSION loyalty UPDATE: the data of 0.1.0 carried over and
-- the shop keeps working.  Each check prints one line, "ok NAME" or
-- "not ok NAME: DETAIL" (run.sh turns them into TAP lines).
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.check(name text, failed text) RETURNS text
LANGUAGE sql RETURN CASE WHEN failed IS NULL THEN 'ok ' || name ELSE 'not ok ' || name || ': ' || failed END;

-- The rows of loyalty.<t> (the columns 0.1.0 had; expr replaces some)
-- that differ from before.<t>: NULL when none, else the count each way.
CREATE FUNCTION pg_temp.changed_rows(t text, exprs jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    old_cols text;
    gone bigint;
    new bigint;
BEGIN
    -- As text: not every type of 0.1.0 has an equality (tier_ladder).
    SELECT string_agg(format('(%s)::text', coalesce(exprs ->> a.attname, format('x.%I', a.attname))), ', ' ORDER BY a.attnum),
           string_agg(format('x.%I::text', a.attname), ', ' ORDER BY a.attnum)
      INTO cols, old_cols
      FROM pg_attribute a
     WHERE a.attrelid = format('before.%I', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM before.%I x EXCEPT ALL SELECT %s FROM loyalty.%I x) d',
                   old_cols, t, cols, t) INTO gone;
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM loyalty.%I x EXCEPT ALL SELECT %s FROM before.%I x) d',
                   cols, t, old_cols, t) INTO new;
    RETURN CASE WHEN gone + new > 0 THEN format('%s rows of 0.1.0 differ, %s rows differ from 0.1.0''s', gone, new) END;
END
$$;

SELECT pg_temp.check('verify() clean after the update',
       (SELECT string_agg(check_name || ' ' || detail, '; ') FROM loyalty.verify() WHERE NOT ok));

SELECT pg_temp.check(format('loyalty.%s unchanged', t), pg_temp.changed_rows(t))
  FROM unnest(ARRAY['member', 'ledger', 'lot_use', 'order_earning', 'fx_rate', 'dead_letter',
                    'activity_total', 'activity_day', 'activity_before', 'activity_horizon',
                    'rfm_segment_rule', 'rfm_score', 'tier_history']) t;
-- rfm_pass's column "window" is called lookback since 0.2.0 (a reserved word).
SELECT pg_temp.check('loyalty.rfm_pass unchanged ("window" renamed lookback)',
       pg_temp.changed_rows('rfm_pass', '{"window": "x.lookback"}'));
SELECT pg_temp.check('loyalty.order_source unchanged (signal columns unmapped)',
       coalesce(pg_temp.changed_rows('order_source'),
                (SELECT 'signal columns set: ' || string_agg(program, ', ') FROM loyalty.order_source
                  WHERE num_nonnulls(ip_column, device_id_column, payment_fingerprint_column,
                                     shipping_address_column, billing_country_column, ip_country_column) > 0)));
-- A held member's pending lots are frozen (available_at infinity, the time
-- kept in held_lot): with that time put back, every lot is as it was.
SELECT pg_temp.check('loyalty.lot unchanged but for the held member''s frozen lots',
       pg_temp.changed_rows('lot', jsonb_build_object('available_at',
           '(SELECT coalesce(min(h.available_at), x.available_at) FROM loyalty.held_lot h WHERE h.lot_id = x.id)')));
SELECT pg_temp.check('loyalty.program unchanged; closing statuses those 0.1.0 closed on',
       coalesce(pg_temp.changed_rows('program'),
                (SELECT string_agg(code || ' ' || closing_statuses::text, ', ') FROM loyalty.program
                  WHERE closing_statuses <> '{canceled,cancelled,refunded,returned}')));

SET ROLE loyalty_admin;
SELECT pg_temp.check('every balance unchanged (read as loyalty_admin)',
       (SELECT string_agg(format('%s/%s: %s', b.program, b.member_id, row(b.*)), '; ')
          FROM before.balance b, before.at
         WHERE (b.available, b.pending, b.lifetime_earned, b.lifetime_redeemed, b.next_expiry, b.next_expiry_points)
               IS DISTINCT FROM (SELECT (n.available, n.pending, n.lifetime_earned, n.lifetime_redeemed, n.next_expiry, n.next_expiry_points)
                                   FROM loyalty.balance(b.program, b.member_id, at.at) n)));
RESET ROLE;

SELECT pg_temp.check('the held member has an open manual hold and frozen pending lots',
       CASE WHEN (SELECT count(*) FROM loyalty.member_hold h WHERE h.program = 'shop' AND h.member_id = 'm1'
                   AND h.released_at IS NULL AND h.source = 'manual') <> 1 THEN 'no open hold of shop/m1'
            WHEN NOT EXISTS (SELECT 1 FROM loyalty.held_lot h JOIN loyalty.lot l ON l.id = h.lot_id
                              WHERE h.member_id = 'm1' AND l.available_at = 'infinity') THEN 'no frozen lot of m1'
            WHEN EXISTS (SELECT 1 FROM loyalty.member_hold h JOIN loyalty.member m USING (program, member_id)
                          WHERE m.status <> 'held' AND h.released_at IS NULL) THEN 'an open hold of a member not held' END);

SELECT pg_temp.check('member contacts hashed from the 0.1.0 profiles',
       (SELECT string_agg(format('%s/%s %s', m.program, m.member_id, x.kind), ', ')
          FROM loyalty.member m, (VALUES ('email'), ('phone')) x(kind), loyalty.signal_key k
         WHERE k.retired_at IS NULL AND m.profile ? x.kind
           AND NOT EXISTS (SELECT 1 FROM loyalty.member_contact c
                            WHERE c.program = m.program AND c.member_id = m.member_id AND c.kind = x.kind
                              AND c.key_id = k.id AND c.hash = loyalty.signal_digest(k.key, x.kind, m.profile ->> x.kind))));

-- The shop keeps running: new orders (single, bulk, other tables, straight
-- into the partitions of the partitioned one) earn,
-- a refund takes back, the application redeems, the jobs run, a dead letter
-- of 0.1.0 is replayed once its FX rate exists.
INSERT INTO public.orders (id, customer, total) VALUES ('N1', 'newcomer', 100);
INSERT INTO public.orders (id, customer, total) SELECT 'NB' || i, 'new' || i, 10 FROM generate_series(1, 100) i;
INSERT INTO public.eu_orders VALUES (1001, 'e1', 30, localtimestamp);
INSERT INTO public.part_orders (id, cust, amount) VALUES ('PN1', 'p1', 40);
INSERT INTO public.part_orders_0 (id, cust, amount) SELECT 'PD' || i, 'p2', 5 FROM generate_series(1, 40) i
 WHERE satisfies_hash_partition('public.part_orders'::regclass, 2, 0, 'PD' || i);
INSERT INTO public.part_orders_1 (id, cust, amount) SELECT 'PD' || i, 'p2', 5 FROM generate_series(1, 40) i
 WHERE satisfies_hash_partition('public.part_orders'::regclass, 2, 1, 'PD' || i);
UPDATE public.orders SET refunded = 25 WHERE id = 'N1';
SELECT pg_temp.check('new orders earn after the update', nullif(concat_ws('; ',
       (SELECT string_agg(format('%s/%s: %s points', e.program, e.order_id, e.points), ', ')
          FROM (VALUES ('shop', 'N1', 200::bigint), ('eu', '1001', 30), ('parts', 'PN1', 40)) w(program, order_id, points)
          LEFT JOIN loyalty.order_earning e USING (program, order_id)
         WHERE e.points IS DISTINCT FROM w.points),
       CASE WHEN (SELECT count(*) FROM loyalty.order_earning WHERE order_id LIKE 'NB%' AND points = 20) <> 100
            THEN 'bulk: ' || (SELECT count(*) FROM loyalty.order_earning WHERE order_id LIKE 'NB%' AND points = 20) || ' of 100 earned' END,
       CASE WHEN (SELECT count(*) FROM loyalty.order_earning WHERE program = 'parts' AND order_id LIKE 'PD%' AND points = 5) <> 40
            THEN 'into the partitions directly: ' || (SELECT count(*) FROM loyalty.order_earning WHERE program = 'parts' AND order_id LIKE 'PD%' AND points = 5) || ' of 40 earned' END), ''));
SELECT pg_temp.check('a refund after the update takes back its share',
       (SELECT 'N1 reversed ' || e.reversed_target || ' of ' || e.points FROM loyalty.order_earning e
         WHERE e.program = 'shop' AND e.order_id = 'N1' AND e.reversed_target IS DISTINCT FROM 50));
SET ROLE loyalty_app;
SELECT loyalty.redeem('shop', 'm2', 10, 'after-update-1') IS NULL AS redeem_failed \gset
RESET ROLE;
SELECT pg_temp.check('loyalty_app redeems after the update', CASE WHEN :'redeem_failed' THEN 'no ledger id' END);
\o /dev/null
SELECT loyalty.set_fx_rate('JPY', 'USD', 0.0067, '-infinity');
\o
SELECT loyalty.retry_dead_letters('shop') AS replayed \gset
SELECT pg_temp.check('the 0.1.0 dead letter replays once its FX rate exists',
       CASE WHEN :replayed <> 1 OR NOT EXISTS (SELECT 1 FROM loyalty.order_earning WHERE order_id = 'J1' AND points > 0)
            THEN format('%s replayed', :replayed) END);
SELECT loyalty.expire_points('shop') IS NULL AS x \gset
SELECT loyalty.score_rfm('shop') IS NULL AS x \gset
SELECT loyalty.recalculate_tiers('shop') IS NULL AS x \gset
SELECT pg_temp.check('verify() clean after new orders, refund, redemption, replay and the nightly jobs',
       (SELECT string_agg(check_name || ' ' || detail, '; ') FROM loyalty.verify() WHERE NOT ok));

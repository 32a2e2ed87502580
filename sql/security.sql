-- Security: every SECURITY DEFINER function pins search_path with pg_temp
-- last, and nothing an attacker plants in pg_temp, its own schema or public
-- runs when it calls the API or writes orders; attach_orders wants the
-- table's owner; as_of in the future is an admin's; existing roles.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SELECT current_database() AS regress_db, current_user AS regress_su \gset
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS loyalty;
DROP DATABASE IF EXISTS regress_sec_roles;
DROP SCHEMA IF EXISTS regress_sec_mallory, regress_sec_writer, regress_sec_admin CASCADE;
DROP TABLE IF EXISTS public.regress_sec_orders, public.regress_sec_root_orders, public.regress_sec_spy_log;
DROP SEQUENCE IF EXISTS public.regress_sec_spied;
DROP FUNCTION IF EXISTS public.regress_sec_plant(text), public.regress_sec_old_definer(), public.regress_sec_sqlstate_of(text);
DROP ROLE IF EXISTS regress_sec_mallory;
DROP ROLE IF EXISTS regress_sec_writer;
DROP ROLE IF EXISTS regress_sec_admin;
DROP ROLE IF EXISTS regress_sec_shop;
RESET client_min_messages;

-- 1. The catalog: every function of the extension that is SECURITY DEFINER
-- or sets anything pins search_path to pg_catalog first and pg_temp last.
-- Must return no rows.
SELECT p.oid::regprocedure, p.prosecdef, p.proconfig
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
 WHERE (p.prosecdef OR p.proconfig IS NOT NULL)
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                    WHERE c ~ '^search_path=pg_catalog, (.+, )?pg_temp$');
-- ... and there are such functions (the query above can find something).
SELECT count(*) > 20 AS definers_checked
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'loyalty'
 WHERE p.prosecdef;
-- PUBLIC may execute the functions of the rfm and tier_ladder types and
-- nothing else (a function created after the privileges piece of the
-- install script would show here).  Must return no rows.
SELECT p.oid::regprocedure
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND (p.prosecdef OR p.provolatile = 'v'
        OR p.proname NOT IN ('rfm_in', 'rfm_out', 'rfm_recv', 'rfm_send', 'rfm', 'r', 'f', 'm', 'rfm_eq', 'rfm_ne',
                             'rfm_lt', 'rfm_le', 'rfm_gt', 'rfm_ge', 'rfm_cmp', 'rfm_hash', 'rfm_hash_extended',
                             'rfm_segment', 'tier_ladder_in', 'tier_ladder_out', 'tier_ladder_recv',
                             'tier_ladder_send', 'tier_of', 'tier_levels', 'tier_ladder_options',
                             'coupon_rule_in', 'coupon_rule_out', 'coupon_rule_recv', 'coupon_rule_send',
                             'coupon_rule_eq', 'coupon_rule_ne'));

-- 2. The stage: a program with tiers, FX and expiry, an orders table owned
-- by the shop's role, and the spy every planted object calls.  The spy
-- counts its calls in a sequence (kept on rollback), logs who ran it, and
-- when it runs as a superuser makes the session's login superuser: the
-- attack of the issue.
CREATE ROLE regress_sec_shop;
CREATE ROLE regress_sec_mallory LOGIN IN ROLE loyalty_app;
CREATE ROLE regress_sec_writer LOGIN;
CREATE ROLE regress_sec_admin LOGIN IN ROLE loyalty_admin;
CREATE SCHEMA regress_sec_mallory AUTHORIZATION regress_sec_mallory;
CREATE SCHEMA regress_sec_writer AUTHORIZATION regress_sec_writer;
CREATE SCHEMA regress_sec_admin AUTHORIZATION regress_sec_admin;
-- public as writable as before PostgreSQL 15.
GRANT CREATE ON SCHEMA public TO regress_sec_mallory, regress_sec_writer, regress_sec_admin;

-- The SQLSTATE and message a statement fails with, or 'ok'.
CREATE FUNCTION public.regress_sec_sqlstate_of(statement text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

CREATE SEQUENCE public.regress_sec_spied;
CREATE TABLE public.regress_sec_spy_log (runner name, login name, what text);
GRANT USAGE, SELECT, UPDATE ON SEQUENCE public.regress_sec_spied TO PUBLIC;
GRANT INSERT, SELECT ON public.regress_sec_spy_log TO PUBLIC;

-- Plants, as the calling role, in schema s: the spy; domains over the
-- built-in types; views named like loyalty's tables; functions, aggregates
-- and operators named like built-in ones.
CREATE FUNCTION public.regress_sec_plant(s text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $plant$
DECLARE
    t text;
    o text[];
    n integer := 0;
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION %1$s.spy(what pg_catalog.text) RETURNS pg_catalog.bool
        LANGUAGE plpgsql SET search_path = pg_catalog AS $b$
        BEGIN
            PERFORM pg_catalog.nextval('public.regress_sec_spied');
            INSERT INTO public.regress_sec_spy_log VALUES (current_user, session_user, what);
            IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
                EXECUTE pg_catalog.format('ALTER ROLE %%I SUPERUSER', session_user);
            END IF;
            RETURN true;
        END $b$;
        CREATE FUNCTION %1$s.spy_acc(a pg_catalog.int8, v pg_catalog.int8) RETURNS pg_catalog.int8
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('aggregate') THEN a END $b$;
        CREATE FUNCTION %1$s.spy_count(a pg_catalog.int8) RETURNS pg_catalog.int8
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('aggregate') THEN a END $b$;
        CREATE AGGREGATE %1$s.sum(pg_catalog.int8) (SFUNC = %1$s.spy_acc, STYPE = pg_catalog.int8);
        CREATE AGGREGATE %1$s.count(*) (SFUNC = %1$s.spy_count, STYPE = pg_catalog.int8, INITCOND = '0');
        CREATE FUNCTION %1$s.now() RETURNS pg_catalog.timestamptz
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('function now') THEN pg_catalog.now() END $b$;
        CREATE FUNCTION %1$s.unnest(a anyarray) RETURNS SETOF anyelement
            LANGUAGE sql AS $b$ SELECT x FROM pg_catalog.unnest(a) x WHERE %1$s.spy('function unnest') $b$;
        CREATE FUNCTION %1$s.upper(v pg_catalog.text) RETURNS pg_catalog.text
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('function upper') THEN v END $b$;
        CREATE FUNCTION %1$s.left(v pg_catalog.text, n pg_catalog.int4) RETURNS pg_catalog.text
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('function left') THEN v END $b$;
        CREATE FUNCTION %1$s.format(f pg_catalog.text, v pg_catalog.text) RETURNS pg_catalog.text
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('function format') THEN f END $b$;
        CREATE FUNCTION %1$s.jsonb_typeof(v pg_catalog.jsonb) RETURNS pg_catalog.text
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('function jsonb_typeof') THEN 'object' END $b$;
        CREATE FUNCTION %1$s.round(v pg_catalog.numeric, n pg_catalog.int4) RETURNS pg_catalog.numeric
            LANGUAGE sql AS $b$ SELECT CASE WHEN %1$s.spy('function round') THEN v END $b$;
        CREATE FUNCTION %1$s.pg_has_role(u pg_catalog.oid, r pg_catalog.oid, p pg_catalog.text) RETURNS pg_catalog.bool
            LANGUAGE sql AS $b$ SELECT %1$s.spy('function pg_has_role') $b$;
        $f$, s);
    -- Operators: name, left (NULL: a prefix operator) and right type,
    -- result (the result's value is true, or the argument of its type).
    -- Each shape is one the C code's statements use, qualified there
    -- (OPERATOR(pg_catalog.x)).
    FOREACH o SLICE 1 IN ARRAY ARRAY[
        ['=', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.bool'],
        ['<>', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.bool'],
        ['||', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.text'],
        ['=', 'pg_catalog.int8', 'pg_catalog.int8', 'pg_catalog.bool'],
        ['>', 'pg_catalog.int8', 'pg_catalog.int4', 'pg_catalog.bool'],
        ['>', 'pg_catalog.numeric', 'pg_catalog.int4', 'pg_catalog.bool'],
        ['+', 'pg_catalog.int8', 'pg_catalog.int8', 'pg_catalog.int8'],
        ['-', 'pg_catalog.int8', 'pg_catalog.int8', 'pg_catalog.int8'],
        ['<=', 'pg_catalog.timestamptz', 'pg_catalog.timestamptz', 'pg_catalog.bool'],
        ['<', 'pg_catalog.date', 'pg_catalog.date', 'pg_catalog.bool'],
        ['<', 'loyalty.ledger_kind', 'loyalty.ledger_kind', 'pg_catalog.bool'],
        ['=', 'pg_catalog.regclass', 'pg_catalog.oid', 'pg_catalog.bool'],
        ['-', NULL, 'pg_catalog.int8', 'pg_catalog.int8'],
        ['+', 'pg_catalog.int4', 'pg_catalog.int4', 'pg_catalog.int4'],
        ['+', 'pg_catalog.numeric', 'pg_catalog.numeric', 'pg_catalog.numeric'],
        ['<>', 'pg_catalog.int8', 'pg_catalog.int4', 'pg_catalog.bool'],
        ['<>', 'pg_catalog.numeric', 'pg_catalog.int4', 'pg_catalog.bool'],
        ['=', 'pg_catalog.int4', 'pg_catalog.int4', 'pg_catalog.bool'],
        ['>', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.bool'],
        ['>', 'pg_catalog.timestamptz', 'pg_catalog.timestamptz', 'pg_catalog.bool'],
        ['<=', 'pg_catalog.date', 'pg_catalog.date', 'pg_catalog.bool'],
        ['-', 'pg_catalog.timestamptz', 'pg_catalog.interval', 'pg_catalog.timestamptz'],
        ['*', 'pg_catalog.int4', 'pg_catalog.interval', 'pg_catalog.interval'],
        ['/', 'pg_catalog.numeric', 'pg_catalog.int4', 'pg_catalog.numeric']] LOOP
        n := n + 1;
        CONTINUE WHEN o[2] LIKE 'loyalty.%' AND NOT has_schema_privilege('loyalty', 'USAGE');
        EXECUTE format('CREATE FUNCTION %1$s.spy_op%2$s(%3$s r %4$s) RETURNS %5$s LANGUAGE sql'
                       ' AS $b$ SELECT CASE WHEN %1$s.spy(%6$L) THEN %7$s END $b$',
                       s, n, 'l ' || o[2] || ',', o[3], o[4], 'operator ' || s || '.' || o[1],
                       CASE WHEN o[4] = 'pg_catalog.bool' THEN 'true' WHEN o[4] = o[2] THEN 'l' ELSE 'r' END);
        EXECUTE format('CREATE OPERATOR %1$s.%2$s (%3$s RIGHTARG = %4$s, FUNCTION = %1$s.spy_op%5$s)',
                       s, o[1], 'LEFTARG = ' || o[2] || ',', o[3], n);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['text', 'int2', 'int4', 'int8', 'bool', 'date', 'timestamptz', 'timestamp',
                             'numeric', 'jsonb', 'name', 'oid', 'regtype', 'regclass', 'regrole', 'interval',
                             'float8', 'varchar'] LOOP
        EXECUTE format('CREATE DOMAIN %1$s.%2$I AS pg_catalog.%2$I CHECK (%1$s.spy(%3$L))',
                       s, t, 'domain ' || s || '.' || t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['program', 'member', 'ledger', 'lot', 'lot_use', 'order_earning', 'fx_rate',
                             'order_source', 'dead_letter', 'activity_total', 'activity_day', 'activity_before',
                             'activity_horizon', 'counted_order', 'rfm_score', 'rfm_pass', 'tier_history'] LOOP
        EXECUTE format('CREATE VIEW %1$s.%2$I AS SELECT NULL::pg_catalog.text AS program WHERE %1$s.spy(%3$L)',
                       s, t, 'view ' || s || '.' || t);
    END LOOP;
END
$plant$;

SELECT loyalty.create_program('sec', 'USD', 1, 0, '1 year', 'debt', 'UTC');
SELECT loyalty.set_tier_ladder('sec', 'basis=spend window=365d grace=30d | Member 0 x1 | Gold 100 x2');
SELECT loyalty.set_fx_rate('SEK', 'USD', 0.1);
CREATE TABLE public.regress_sec_orders (id bigint PRIMARY KEY, customer text, total numeric(12,2),
                                        currency text, status text, refunded numeric(12,2), created_at timestamptz);
ALTER TABLE public.regress_sec_orders OWNER TO regress_sec_shop;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.regress_sec_orders TO regress_sec_writer;
SELECT loyalty.attach_orders('sec', 'public.regress_sec_orders', 'id', 'customer', 'total', 'currency',
                             'status', 'refunded', 'created_at');
SELECT loyalty.earn('sec', 'm1', 100, 'seed-m1') > 0 AS seeded;
-- A reward, and welcome coupons: enrolments below run the welcome trigger.
SELECT loyalty.create_campaign('sec', 'sec_gift', 'spend 50 USD get 10 USD off', per_member_limit => 100);
SELECT loyalty.create_reward('sec', 'sec_tote', 10, 'sec_gift', 5);
SELECT loyalty.set_auto_coupon('sec', 'welcome', 'sec_gift');
-- Referral terms with commission (its triggers on the ledger's order table
-- run for the writer below), and w1 referred by m1.
SELECT loyalty.set_referral_terms('sec', 10, 5, commission => '{0.1}');
SELECT loyalty.enroll('sec', 'w1');
SELECT state FROM loyalty.refer('sec', 'w1', loyalty.referral_code('sec', 'm1'));

-- 3. The spy works: a query of the attacker's own that names a planted
-- type runs it (as the attacker), and a definer pinned the old way
-- (pg_temp not last) runs it as its owner: the attacker becomes superuser.
CREATE FUNCTION public.regress_sec_old_definer() RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, loyalty
AS $$ SELECT 'x'::text $$;
\c - regress_sec_mallory
SELECT public.regress_sec_plant('pg_temp');
SELECT 'x'::text AS own_query;
SELECT public.regress_sec_old_definer();
SELECT rolsuper AS mallory_superuser FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'regress_sec_mallory';
\c - :regress_su
SELECT runner, login, what FROM public.regress_sec_spy_log ORDER BY runner;
ALTER ROLE regress_sec_mallory NOSUPERUSER;
DROP FUNCTION public.regress_sec_old_definer();
TRUNCATE public.regress_sec_spy_log;
ALTER SEQUENCE public.regress_sec_spied RESTART;

-- A campaign for the application's coupon calls below.
SELECT loyalty.create_campaign('sec', 'sec_coupons', 'spend 10 USD get 2 USD off', per_member_limit => NULL);
SELECT loyalty.add_code('sec', 'sec_coupons', 'SECCODE');

-- 4. The attack of the issue, as written there (the login only a member
-- of loyalty_app): redeem no longer runs the domain's check.
\c - regress_sec_mallory
CREATE FUNCTION pg_temp.evil(v pg_catalog.text) RETURNS bool LANGUAGE plpgsql
  AS $$BEGIN EXECUTE 'ALTER ROLE regress_sec_mallory SUPERUSER'; RETURN true; END$$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
SELECT loyalty.redeem('sec', 'm1', 1, 'x') > 0 AS redeemed;
SELECT rolsuper AS mallory_superuser FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'regress_sec_mallory';

-- The application's attack in full: a member of loyalty_app plants in
-- pg_temp, its own schema and public, then calls every function granted
-- to it.
\c - regress_sec_mallory
SELECT public.regress_sec_plant('pg_temp');
SELECT public.regress_sec_plant('regress_sec_mallory');
SELECT public.regress_sec_plant('public');
SHOW search_path;
SELECT loyalty.enroll('sec', 'm2');
SELECT loyalty.enroll('sec', 'm3', '{"country": "VN"}');
SELECT loyalty.redeem('sec', 'm1', 10, 'sec-r1') > 0 AS redeemed;
SELECT loyalty.redeem('sec', 'm1', 10, 'sec-r1') > 0 AS replayed;
SELECT loyalty.redeem('sec', 'm1', 5, 'sec-r2', as_of => '2020-01-01') AS refused_in_the_past;
SELECT loyalty.cancel_redemption('sec', 'sec-r1') > 0 AS cancelled;
SELECT available, pending, lifetime_earned, lifetime_redeemed FROM loyalty.balance('sec', 'm1');
SELECT available FROM loyalty.balance('sec', 'm1', '2020-01-01');
SELECT kind, points, balance_after FROM loyalty.history('sec', 'm1');
SELECT loyalty.fx_rate_at('SEK', 'USD', pg_catalog.now());
SELECT rate, inverse FROM loyalty.fx_quote('USD', 'SEK', pg_catalog.now());
SELECT code FROM loyalty.program WHERE code OPERATOR(pg_catalog.=) 'sec';
SELECT tier FROM loyalty.program_tier WHERE program OPERATOR(pg_catalog.=) 'sec';
SELECT segment FROM loyalty.rfm_segment_rule WHERE priority OPERATOR(pg_catalog.=) 10;
-- The pure coupon evaluator and the coupon_rule accessors.
SELECT * FROM loyalty.coupon_evaluate('spend 50 USD get 10 USD off', '{"currency": "USD", "items": [{"qty": 1, "price": 60}]}');
SELECT loyalty.coupon_discount('valid=2024-11-01..2024-11-12 | 10% off', '{"currency": "VND", "items": [{"qty": 1, "price": 12345}]}',
                               '2024-11-05', 'Asia/Ho_Chi_Minh') AS coupon_discount;
SELECT loyalty.coupon_rule_stack('stack=brand | 5% off'), loyalty.coupon_rule_valid_from('valid=2024-11-01..2024-11-12 | 5% off'),
       loyalty.coupon_rule_valid_until('valid=2024-11-01..2024-11-12 | 5% off'), loyalty.coupon_rule_first_order('first_order | 5% off'),
       loyalty.currency_minor_unit('KWD');
SELECT loyalty.member_cart('sec', 'm1', '{"currency": "USD"}');
-- The integer-member-id twins: plain SQL run with the caller's rights and
-- search_path, every name in them qualified.
SELECT loyalty.enroll('sec', 4242);
SELECT available, pending FROM loyalty.balance('sec', 4242);
SELECT count(*) FROM loyalty.history('sec', 4242);
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.redeem('sec', 4242, 1, 'sec-int-r1')$$);
SELECT loyalty.member_cart('sec', 4242, '{"currency": "USD"}') IS NOT NULL AS cart;
SELECT ok, discount, reason FROM loyalty.validate_coupon('sec', 'SECCODE', 'm1', '{"currency": "USD", "items": [{"sku": "a", "qty": 1, "price": 20}]}');
SELECT loyalty.redeem_coupon('sec', 'sec-code', 'm1', '{"currency": "USD", "items": [{"sku": "a", "qty": 1, "price": 20}]}', 'sec-c1');
SELECT loyalty.release_coupon('sec', 'sec-c1');
SELECT code, discount FROM loyalty.best_offer('sec', 'm1', '{"currency": "USD", "items": [{"sku": "a", "qty": 1, "price": 20}]}');
SELECT loyalty.coupon_code_normal('sec-code'), loyalty.coupon_code_display('SECCODE'), loyalty.coupon_code_shape('SECCODE');
SELECT loyalty.claim_reward('sec', 'm1', 'sec_tote', 'sec-claim-1') IS NOT NULL AS claimed;
-- Referrals.
SELECT loyalty.referral_code('sec', 'm1') = loyalty.referral_code('sec', 'm1') AS referral_code;
SELECT accepted, state FROM loyalty.refer('sec', 'm2', loyalty.referral_code('sec', 'm1'));
SELECT accepted, state, reason FROM loyalty.refer('sec', 'm1', loyalty.referral_code('sec', 'm2'));
-- Members: profile, consent, lots.
SELECT loyalty.update_profile('sec', 'm3', '{"name": "M3"}') ->> 'name' AS profile_name;
SELECT loyalty.set_consent('sec', 'm3', 'marketing', true) ->> 'granted' AS consent;
SELECT count(*) > 0 AS lots FROM loyalty.member_lots('sec', 'm1');
-- Program terms.
SELECT earn_rate FROM loyalty.program_terms_at('sec', pg_catalog.now());
-- Not the application's any more: crediting points.
SELECT loyalty.earn('sec', 'm1', 1000, 'sec-gift');
SELECT loyalty.adjust('sec', 'm1', 1000, 'sec-adjust', 'gift');
\c - :regress_su
SELECT last_value, is_called FROM public.regress_sec_spied;
SELECT runner, login, what FROM public.regress_sec_spy_log;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_sec_mallory';

-- 5. A plain writer of the orders table (no loyalty role) plants the same
-- and fires every trigger path: one row, many rows, refund, amount change,
-- member change, status cancel, unknown currency (dead letter), DELETE.
\c - regress_sec_writer
SELECT public.regress_sec_plant('pg_temp');
SELECT public.regress_sec_plant('regress_sec_writer');
INSERT INTO public.regress_sec_orders VALUES (1, 'w1', 50, 'USD', 'paid', 0, '2026-01-05 10:00+00');
INSERT INTO public.regress_sec_orders VALUES
    (2, 'w1', 80, 'USD', 'paid', 0, '2026-01-06 10:00+00'),
    (3, 'w2', 20, 'SEK', 'paid', 0, '2026-01-06 11:00+00'),
    (4, 'w3', 30, 'USD', 'paid', 0, '2026-01-06 12:00+00'),
    (5, NULL, 40, 'USD', 'paid', 0, '2026-01-06 13:00+00'),
    (6, 'w2', 10, 'NOK', 'paid', 0, '2026-01-06 14:00+00');
UPDATE public.regress_sec_orders SET refunded = 20 WHERE id OPERATOR(pg_catalog.=) 1;
UPDATE public.regress_sec_orders SET total = 90 WHERE id OPERATOR(pg_catalog.=) 2;
UPDATE public.regress_sec_orders SET customer = 'w4' WHERE id OPERATOR(pg_catalog.=) 4;
UPDATE public.regress_sec_orders SET status = 'cancelled' WHERE id OPERATOR(pg_catalog.=) 3;
UPDATE public.regress_sec_orders SET refunded = 1 WHERE id OPERATOR(pg_catalog.=) 6;
DELETE FROM public.regress_sec_orders WHERE id OPERATOR(pg_catalog.=) 4;
COPY public.regress_sec_orders FROM stdin;
7	w5	15	USD	paid	0	2026-01-07 09:00+00
8	w5	25	USD	paid	0	2026-01-07 10:00+00
\.
\c - :regress_su
SELECT last_value, is_called FROM public.regress_sec_spied;
SELECT runner, login, what FROM public.regress_sec_spy_log;
-- The orders did reach loyalty.
SELECT order_id, member_id, points, closed FROM loyalty.order_earning WHERE program = 'sec' ORDER BY order_id;
SELECT event, order_id, sqlstate FROM loyalty.dead_letter WHERE program = 'sec' ORDER BY id;
-- m1's commission on w1's orders, paid and taken back by the referral triggers.
SELECT order_id, generation, level, member_id, points, taken_target FROM loyalty.referral_commission
 WHERE program = 'sec' ORDER BY order_id, generation;

-- 6. An admin plants the same and calls every admin function (its own
-- orders table attached, rates set, passes run, letters retried).
\c - regress_sec_admin
SELECT public.regress_sec_plant('pg_temp');
SELECT public.regress_sec_plant('regress_sec_admin');
CREATE TABLE regress_sec_admin.orders (id pg_catalog.int8, who pg_catalog.text, amount pg_catalog.numeric,
                                       at pg_catalog.timestamptz);
SELECT loyalty.create_program('sec_admin', 'USD', 2);
SELECT loyalty.attach_orders('sec_admin', 'regress_sec_admin.orders', 'id', 'who', 'amount', created_at => 'at');
INSERT INTO regress_sec_admin.orders VALUES (1, 'a1', 10, '2026-01-01 00:00+00');
INSERT INTO regress_sec_admin.orders VALUES (2, 'a1', 10, 'infinity');
SELECT loyalty.resolve_dead_letter(pg_catalog.max(id), 'an order without a real time') FROM loyalty.dead_letter
 WHERE program OPERATOR(pg_catalog.=) 'sec_admin';
CALL loyalty.backfill_orders('sec_admin', 'regress_sec_admin.orders');
SELECT loyalty.backfill_orders_chunk('sec_admin', 'regress_sec_admin.orders', 'history');
SELECT orders_done, finished_at IS NOT NULL AS finished FROM loyalty.backfill_run WHERE program = 'sec_admin';
SELECT loyalty.detach_orders('sec_admin', 'regress_sec_admin.orders');
SELECT loyalty.set_fx_rate('NOK', 'USD', 0.09);
SELECT loyalty.retry_dead_letters('sec');
SELECT loyalty.set_member_status('sec', 'w2', 'held');
SELECT loyalty.earn('sec', 'w2', 7, 'sec-admin-gift', 'goodwill') > 0 AS credited;
-- An integer-member-id twin of an admin function, under the same plants.
SELECT loyalty.earn('sec', 4243, 7, 'sec-admin-int', 'goodwill') > 0 AS credited;
SELECT loyalty.member_risk('sec', 4243);
SELECT loyalty.set_tier_ladder('sec_admin', 'basis=orders window=30d | Basic 0 x1 | Star 2 x1.5');
SELECT loyalty.set_tier_floor('sec', 'w1', 'Gold', '2027-01-01');
SELECT members, upgraded FROM loyalty.recalculate_tiers('sec', '2026-02-01');
SELECT members FROM loyalty.recalculate_tiers_chunk('sec', '2026-02-01', NULL, 10);
CALL loyalty.recalculate_tiers_batched('sec', '2026-02-01', 10);
SELECT loyalty.score_rfm('sec', '2026-02-01');
SELECT count(*) AS active FROM loyalty.member_activity('sec', '2025-12-01', '2026-02-01');
SELECT loyalty.rebuild_activity('sec');
SELECT loyalty.sync_partition_triggers() >= 0 AS synced;
SELECT loyalty.expire_points('sec', '2028-01-01') > 0 AS expired;
SELECT members FROM loyalty.expire_points_chunk('sec', '2028-01-01', 10);
CALL loyalty.expire_points_batched('sec', '2028-01-01', 10);
SELECT loyalty.set_lifecycle('sec', 10, 20, 30, 40);
SELECT loyalty.set_closing_statuses('sec', ARRAY['refunded', 'cancelled', 'chargeback']);
SELECT loyalty.basis_window_days('sec') AS basis_window;
SELECT loyalty.set_point_value('sec', 0.02);
SELECT count(*) AS lifecycles FROM loyalty.member_lifecycle_at('sec', '2026-02-01');
SELECT check_name FROM loyalty.verify('sec') WHERE NOT ok;
SELECT loyalty.create_campaign('sec', 'sec_admin_coupons', '10% off');
SELECT loyalty.issue_codes('sec', 'sec_admin_coupons', 1, 'm1') IS NOT NULL AS issued;
SELECT loyalty.add_code('sec', 'sec_admin_coupons', 'SECADMIN');
SELECT loyalty.set_discount_cap('sec', 50);
SELECT available FROM loyalty.balance('sec', 'm1', '2030-01-01');
SELECT count(*) > 0 AS readable FROM loyalty.member_360;
SELECT count(*) > 0 AS readable FROM loyalty.kpi_daily;
SELECT count(*) > 0 AS readable FROM loyalty.tier_distribution;
SELECT count(*) >= 0 AS readable FROM loyalty.segment_summary;
-- Rewards and automatic coupons.
SELECT loyalty.create_reward('sec', 'sec_mug', 5, 'sec_gift', NULL);
SELECT loyalty.restock_reward('sec', 'sec_tote', 1);
SELECT loyalty.set_auto_coupon('sec', 'birthday', 'sec_gift');
SELECT loyalty.set_auto_coupon('sec', 'wake_up', 'sec_gift');
SELECT loyalty.issue_birthday_coupons('sec', '2026-02-01') >= 0 AS birthdays;
SELECT loyalty.issue_wake_up_coupons('sec', '2026-02-10') > 0 AS wake_ups;
SELECT loyalty.compensate('sec', 'w1', 'sec_gift', 'sec-ticket') IS NOT NULL AS compensated;
SELECT loyalty.birthday_in('2000-02-29', 2026);
SELECT count(*) >= 0 AS readable FROM loyalty.coupon_performance;
-- Referrals.
SELECT loyalty.set_referral_terms('sec', 10, 5, milestones => '[{"referrals": 1, "points": 3}]', commission => '{0.1}');
SELECT loyalty.settle_referrals('sec', '2030-01-01') >= 0 AS settled;
SELECT count(*) >= 0 AS readable FROM loyalty.referral_funnel;
-- Program administration and health.
SELECT earn_rate FROM loyalty.program_terms_at('sec', pg_catalog.now());
SELECT earn_rate, pending_days FROM loyalty.change_program('sec_admin', '{"pending_days": 1}', note => 'security test');
SELECT loyalty.create_program('sec_gone', 'USD', 1);
SELECT loyalty.drop_program('sec_gone');
SELECT loyalty.create_program('sec_old', 'USD', 1);
SELECT loyalty.archive_program('sec_old') IS NOT NULL AS archived;
SELECT check_name FROM loyalty.verify_run('sec') WHERE NOT ok;
SELECT job, ok FROM loyalty.run_nightly_jobs('sec_old');
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.schedule_jobs('sec')$$);
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.unschedule_jobs('sec')$$);
SELECT loyalty.job_run_end(loyalty.job_run_begin('expire_points_batched', 'sec'), 0, 'security test');
SELECT count(*) > 0 AS readable FROM loyalty.health;
-- Signals, holds and exclusions.
SELECT loyalty.normalize_signal('email', 'A.B+x@GoogleMail.com');
SELECT loyalty.rotate_signal_key() > 1 AS rotated;
SELECT loyalty.purge_order_signals('sec', '2000-01-01');
SELECT loyalty.exclude_member('sec', 'w1', 'staff account');
SELECT loyalty.include_member('sec', 'w1');
SELECT loyalty.member_visible('sec', 'w1');
SELECT count(*) >= 0 AS readable FROM loyalty.tier_history;
-- Fraud checks: every member with an order is flagged (velocity of 1
-- order), none held (threshold 95); one flag dismissed.
SELECT loyalty.fraud_rule_defaults('velocity') ? 'orders' AS defaults, cardinality(loyalty.fraud_rule_names()) AS names;
SELECT count(*) AS rules FROM loyalty.fraud_rule_params('sec');
SELECT loyalty.set_fraud_rule('sec', 'velocity', '{"orders": 1, "minutes": 1}') ->> 'orders' AS orders;
SELECT loyalty.set_hold_threshold('sec', 95);
SELECT loyalty.fraud_check('sec', '2000-01-01', '2030-01-01') > 0 AS flagged;
SELECT loyalty.member_risk('sec', 'm1') >= 0 AS risk;
SELECT loyalty.review_flag((SELECT min(id) FROM loyalty.fraud_flag WHERE program = 'sec'), 'dismiss', 'security test');
SELECT count(*) > 0 AS readable FROM loyalty.fraud_overview;
-- Member administration and GDPR.
SELECT loyalty.adjust('sec', 'm1', -1, 'sec-admin-adjust', 'correction') > 0 AS adjusted;
SELECT loyalty.set_consent_required('sec', false);
SELECT loyalty.enroll('sec', 'sec-dup');
SELECT loyalty.merge_members('sec', 'sec-dup', 'm3', 'sec-merge') > 0 AS merged;
SELECT loyalty.export_member('sec', 'm3') ->> 'member_id' AS exported;
SELECT loyalty.forget_member('sec', 'm3') LIKE 'forgotten-%' AS forgotten;
-- The pure rule functions the views call.
SELECT loyalty.program_code_valid('sec'), loyalty.lot_spendable(now(), NULL, now()),
       loyalty.lot_pending(now(), NULL, now()), loyalty.lot_expired(now(), now()),
       loyalty.ledger_kind_class('earn'), loyalty.activity_day_of(now()) IS NOT NULL AS day;
\c - :regress_su
SELECT last_value, is_called FROM public.regress_sec_spied;
SELECT runner, login, what FROM public.regress_sec_spy_log;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'regress\_sec\_%' ORDER BY 1;

-- The planted operators run where a statement names an operator plainly:
-- the admin's own query picks its numeric <> int4 over pg_catalog's
-- numeric <> numeric, though pg_catalog comes first on the path.  So would
-- sum(net_spend) <> 0 in the extension's SQL, were a planted schema on its
-- path; the extension names OPERATOR(pg_catalog.<>).
\c - regress_sec_admin
SELECT 1.5 <> 0 AS own_query, 1.5 OPERATOR(pg_catalog.<>) 0 AS qualified;
\c - :regress_su
SELECT runner, login, what FROM public.regress_sec_spy_log;
TRUNCATE public.regress_sec_spy_log;
ALTER SEQUENCE public.regress_sec_spied RESTART;

-- Every function a loyalty role may execute was called above: a new one
-- must be added to this attack.  Must return no rows.
SELECT p.oid::regprocedure
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
   AND (has_function_privilege('loyalty_app', p.oid, 'EXECUTE')
        OR has_function_privilege('loyalty_admin', p.oid, 'EXECUTE')
        OR has_function_privilege('loyalty_reader', p.oid, 'EXECUTE'))
   AND p.proname NOT IN ('normalize_signal', 'rotate_signal_key', 'purge_order_signals', 'exclude_member',
                         'include_member', 'member_visible')
   AND p.proname NOT IN ('fraud_check', 'fraud_rule_names', 'fraud_rule_defaults', 'fraud_rule_params', 'set_fraud_rule',
                         'set_hold_threshold', 'member_risk', 'review_flag')
   AND p.proname NOT IN ('claim_reward', 'create_reward', 'restock_reward', 'set_auto_coupon', 'compensate',
                         'issue_birthday_coupons', 'issue_wake_up_coupons', 'birthday_in')
   AND p.proname NOT IN ('referral_code', 'refer', 'set_referral_terms', 'settle_referrals')
   AND p.proname NOT IN ('resolve_dead_letter', 'update_profile', 'set_consent', 'member_lots', 'adjust', 'set_consent_required',
                         'merge_members', 'export_member', 'forget_member')
   AND p.proname NOT IN ('program_terms_at', 'change_program', 'drop_program', 'archive_program', 'verify_run',
                         'run_nightly_jobs', 'schedule_jobs', 'unschedule_jobs', 'job_run_begin', 'job_run_end')
   AND p.proname NOT IN ('backfill_orders', 'backfill_orders_chunk')
   AND p.proname NOT IN ('enroll', 'redeem', 'cancel_redemption', 'balance', 'history', 'fx_rate_at', 'fx_quote',
                         'earn', 'create_program', 'attach_orders', 'detach_orders', 'set_fx_rate',
                         'retry_dead_letters', 'set_member_status', 'set_tier_ladder', 'set_tier_floor',
                         'recalculate_tiers', 'recalculate_tiers_chunk', 'recalculate_tiers_batched',
                         'score_rfm', 'member_activity', 'rebuild_activity', 'expire_points',
                         'expire_points_chunk', 'expire_points_batched', 'set_lifecycle', 'set_point_value',
                         'member_lifecycle_at', 'verify', 'program_code_valid', 'lot_spendable',
                         'lot_pending', 'lot_expired', 'ledger_kind_class', 'activity_day_of',
                         'sync_partition_triggers', 'set_closing_statuses', 'basis_window_days',
                         'coupon_evaluate', 'coupon_discount', 'coupon_rule_stack', 'coupon_rule_valid_from',
                         'coupon_rule_valid_until', 'coupon_rule_first_order', 'currency_minor_unit',
                         'create_campaign', 'issue_codes', 'add_code', 'set_discount_cap', 'member_cart',
                         'validate_coupon', 'redeem_coupon', 'release_coupon', 'best_offer',
                         'coupon_code_normal', 'coupon_code_display', 'coupon_code_shape');

-- 7. attach_orders and detach_orders want the table's owner (or a role
-- with its privileges), judged on the role the session acts as.
CREATE TABLE public.regress_sec_root_orders (id bigint, who text, amount numeric);
\c - regress_sec_admin
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.attach_orders('sec_admin', 'public.regress_sec_root_orders', 'id', 'who', 'amount')$$);
-- The same table given by OID, and an OID that is no table.
SELECT public.regress_sec_sqlstate_of(pg_catalog.format('SELECT loyalty.attach_orders(%L, %s, %L, %L, %L)', 'sec_admin',
           'public.regress_sec_root_orders'::pg_catalog.regclass::pg_catalog.oid, 'id', 'who', 'amount'));
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.attach_orders('sec_admin', '4000000000', 'id', 'who', 'amount')$$);
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.detach_orders('sec', 'public.regress_sec_orders')$$);
-- Rights of the owner through membership are enough.
\c - :regress_su
GRANT regress_sec_shop TO regress_sec_admin;
\c - regress_sec_admin
SELECT loyalty.detach_orders('sec', 'public.regress_sec_orders');
SELECT loyalty.attach_orders('sec', 'public.regress_sec_orders', 'id', 'customer', 'total', 'currency',
                             'status', 'refunded', 'created_at');
\c - :regress_su
REVOKE regress_sec_shop FROM regress_sec_admin;
-- A superuser session that SET ROLE to the admin acts as the admin.
SET ROLE regress_sec_admin;
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.attach_orders('sec_admin', 'public.regress_sec_root_orders', 'id', 'who', 'amount')$$);
RESET ROLE;
SELECT loyalty.attach_orders('sec_admin', 'public.regress_sec_root_orders', 'id', 'who', 'amount');
SELECT loyalty.detach_orders('sec_admin', 'public.regress_sec_root_orders');

-- 8. as_of later than now: refused for the application (redeem would spend
-- pending points), allowed to admins; a few seconds of clock skew pass.
SELECT loyalty.create_program('sec_pending', 'USD', 1, 30);
SELECT loyalty.earn('sec_pending', 'p1', 100, 'pending-1') > 0 AS credited;
\c - regress_sec_mallory
SELECT pg_catalog.regexp_replace(public.regress_sec_sqlstate_of($$SELECT loyalty.redeem('sec_pending', 'p1', 50, 'early', as_of => pg_catalog.now() OPERATOR(pg_catalog.+) '31 days')$$), '"[^"]*"', '"..."') AS refused;
SELECT pg_catalog.regexp_replace(public.regress_sec_sqlstate_of($$SELECT * FROM loyalty.balance('sec_pending', 'p1', pg_catalog.now() OPERATOR(pg_catalog.+) '31 days')$$), '"[^"]*"', '"..."') AS refused;
SELECT loyalty.redeem('sec_pending', 'p1', 50, 'early', as_of => '2100-01-01 00:00+00');
SELECT available, pending FROM loyalty.balance('sec_pending', 'p1', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) '2 seconds');
\c - :regress_su
-- SET ROLE: the session acts as the application, not as its superuser login.
SET ROLE regress_sec_mallory;
SELECT regexp_replace(public.regress_sec_sqlstate_of($$SELECT loyalty.redeem('sec_pending', 'p1', 50, 'early', as_of => now() + '31 days')$$), '"[^"]*"', '"..."') AS refused;
RESET ROLE;
SET ROLE regress_sec_admin;
SELECT available, pending FROM loyalty.balance('sec_pending', 'p1', now() + '31 days');
SELECT loyalty.earn('sec_pending', 'p2', 5, 'future-1', 'promo', now() + '1 day') > 0 AS credited_ahead;
RESET ROLE;

-- A new redemption dated in the past: refused for the application (points
-- that expired since would count until the next expiry pass), allowed to
-- admins; a replay of a redemption with its reference is always answered.
SELECT loyalty.create_program('sec_past', 'USD', 1, 0, '30 days');
SELECT loyalty.earn('sec_past', 'q1', 100, 'past-1', 'promo', now() - interval '40 days') > 0 AS credited;
SELECT loyalty.redeem('sec_past', 'q1', 10, 'past-r0', as_of => now() - interval '35 days') > 0 AS admin_back_dated;
SELECT loyalty.earn('sec_past', 'q2', 10, 'past-2', 'promo') > 0 AS credited_now;
\c - regress_sec_mallory
SELECT pg_catalog.regexp_replace(public.regress_sec_sqlstate_of($$SELECT loyalty.redeem('sec_past', 'q1', 50, 'past-r1', as_of => pg_catalog.now() OPERATOR(pg_catalog.-) '35 days'::pg_catalog.interval)$$), '"[^"]*"', '"..."') AS refused;
SELECT loyalty.redeem('sec_past', 'q1', 10, 'past-r0', as_of => pg_catalog.now() OPERATOR(pg_catalog.-) '35 days'::pg_catalog.interval) > 0 AS replayed;
SELECT public.regress_sec_sqlstate_of($$SELECT loyalty.redeem('sec_past', 'q1', 1, 'past-r2', as_of => pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) '2 seconds'::pg_catalog.interval)$$) AS skew_passes_expired_stay;
-- The default as_of (now(): the transaction's start) is not the past, however
-- long the transaction has run: an order and its redemption in one transaction.
BEGIN;
SELECT pg_catalog.pg_sleep(6);
SELECT loyalty.redeem('sec_past', 'q2', 1, 'past-r3') > 0 AS long_transaction_redeems;
COMMIT;
\c - :regress_su
SELECT kind, points FROM loyalty.ledger WHERE program = 'sec_pending' ORDER BY id;

-- 9. Existing loyalty roles: reused when plain (LOGIN allowed), refused
-- with an attribute beyond it.  In a database of its own.
CREATE DATABASE regress_sec_roles;
\c regress_sec_roles
BEGIN;
ALTER ROLE loyalty_app LOGIN;
SET client_min_messages = warning;
CREATE EXTENSION loyalty;
RESET client_min_messages;
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'loyalty\_%' ORDER BY 1;
ROLLBACK;
BEGIN;
ALTER ROLE loyalty_reader CREATEDB BYPASSRLS;
CREATE EXTENSION loyalty;
ROLLBACK;
BEGIN;
ALTER ROLE loyalty_admin SUPERUSER;
CREATE EXTENSION loyalty;
ROLLBACK;
\c :regress_db
DROP DATABASE regress_sec_roles;

-- Clean up.
SELECT loyalty.detach_orders('sec', 'public.regress_sec_orders');
DROP TABLE public.regress_sec_orders, public.regress_sec_root_orders, public.regress_sec_spy_log;
DROP SEQUENCE public.regress_sec_spied;
DROP FUNCTION public.regress_sec_plant(text), public.regress_sec_sqlstate_of(text);
REVOKE CREATE ON SCHEMA public FROM regress_sec_mallory, regress_sec_writer, regress_sec_admin;
SET client_min_messages = warning;
DROP OWNED BY regress_sec_mallory, regress_sec_writer, regress_sec_admin CASCADE;
RESET client_min_messages;
DROP ROLE regress_sec_mallory, regress_sec_writer, regress_sec_admin, regress_sec_shop;

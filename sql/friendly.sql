-- Friendlier SQL: integer member ids, parameter names that need no
-- quoting, RFM scores a BI tool can filter without loyalty on its
-- search_path, and dead letters resolved by hand.  Run as the roles that
-- would do each.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

-- 1. Every function a loyalty role may call with a member id (a text
-- parameter named member_id or ..._member_id) has a bigint twin: same
-- name, the same parameters (names, defaults, results) but bigint for the
-- member ids, plain SQL (not SECURITY DEFINER, no SET: inlinable), granted
-- to the same roles.  A member id with a default keeps it on the text
-- function only (a call without it must not be ambiguous).  attach_orders
-- is no such function: its member_id names a column.  Must return no
-- rows; a new function without its twin is named here.
WITH member_fn AS (
    SELECT p.oid, p.proname, p.proargnames, p.pronargs, p.pronargdefaults, p.prorettype, p.proargtypes,
           (SELECT array_agg(a.pos - 1 ORDER BY a.pos) FROM unnest(p.proargnames) WITH ORDINALITY a(name, pos)
             WHERE a.pos <= p.pronargs AND a.name ~ '(^|_)member_id$' AND p.proargtypes[a.pos - 1] = 'text'::regtype) AS ids
      FROM pg_proc p
     WHERE p.pronamespace = 'loyalty'::regnamespace AND p.proname <> 'attach_orders'
       AND (has_function_privilege('loyalty_app', p.oid, 'EXECUTE')
            OR has_function_privilege('loyalty_admin', p.oid, 'EXECUTE')
            OR has_function_privilege('loyalty_reader', p.oid, 'EXECUTE'))
       AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
), wanted AS (
    -- The argument types the twin must have: bigint in place of each member
    -- id; and its defaults: none for the member id or before it.
    SELECT f.*, (SELECT string_agg(CASE WHEN i = ANY (f.ids) THEN 'bigint'::regtype::oid
                                        ELSE f.proargtypes[i] END::text, ' ' ORDER BY i)
                   FROM generate_series(0, f.pronargs - 1) i) AS twin_types,
           least(f.pronargdefaults, f.pronargs - 1 - (SELECT max(i) FROM unnest(f.ids) i)) AS twin_defaults
      FROM member_fn f WHERE f.ids IS NOT NULL
)
SELECT w.oid::regprocedure AS without_bigint_twin
  FROM wanted w
 WHERE NOT EXISTS (
        SELECT 1 FROM pg_proc t
         WHERE t.pronamespace = 'loyalty'::regnamespace AND t.proname = w.proname
           AND t.proargtypes::text = w.twin_types
           AND t.proargnames IS NOT DISTINCT FROM w.proargnames
           AND t.pronargdefaults = w.twin_defaults
           AND t.prorettype = w.prorettype
           AND t.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')
           AND NOT t.prosecdef AND t.proconfig IS NULL
           AND NOT has_function_privilege('public', t.oid, 'EXECUTE')
           AND (SELECT bool_and(has_function_privilege(r, t.oid, 'EXECUTE') = has_function_privilege(r, w.oid, 'EXECUTE'))
                  FROM unnest(ARRAY['loyalty_app', 'loyalty_admin', 'loyalty_reader']) r));
-- The functions the query above checked (a check that it sees them).
SELECT p.oid::regprocedure AS function_with_member_id
  FROM pg_proc p
 WHERE p.pronamespace = 'loyalty'::regnamespace AND p.proname <> 'attach_orders'
   AND (has_function_privilege('loyalty_app', p.oid, 'EXECUTE')
        OR has_function_privilege('loyalty_admin', p.oid, 'EXECUTE')
        OR has_function_privilege('loyalty_reader', p.oid, 'EXECUTE'))
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
   AND EXISTS (SELECT 1 FROM unnest(p.proargnames) WITH ORDINALITY a(name, pos)
                WHERE a.pos <= p.pronargs AND a.name ~ '(^|_)member_id$' AND p.proargtypes[a.pos - 1] = 'text'::regtype)
 ORDER BY p.oid::regprocedure::text;
-- 2. The twins at work, as the application.
SELECT loyalty.create_program('friendly', 'USD', 1);
CREATE TABLE friendly_orders (id bigint, customer_id bigint, amount numeric, currency text DEFAULT 'USD',
                        created_at timestamptz DEFAULT now());
GRANT SELECT, INSERT, UPDATE, DELETE ON friendly_orders TO loyalty_app;
SELECT loyalty.attach_orders('friendly', 'friendly_orders', 'id', 'customer_id', 'amount', 'currency',
                             created_at => 'created_at');
SET ROLE loyalty_admin;
SELECT loyalty.create_campaign('friendly', 'ten', '10 USD off', per_member_limit => NULL);
SELECT loyalty.add_code('friendly', 'ten', 'TEN');
SELECT loyalty.create_reward('friendly', 'mug', 50, 'ten', NULL);
SELECT loyalty.set_referral_terms('friendly', 100, 50);
RESET ROLE;

SET ROLE loyalty_app;
-- An integer customer id column feeds the trigger; the member id is its text.
INSERT INTO friendly_orders (id, customer_id, amount) VALUES (1, 1003, 200), (2, 1004, 80);
SELECT loyalty.enroll('friendly', 1005);
SELECT loyalty.enroll('friendly', 1005);            -- idempotent, as the text function
SELECT available, lifetime_earned FROM loyalty.balance('friendly', 1003);
-- The same answers as the text function: the quoted id still calls it.
SELECT (SELECT row(b.*)::text FROM loyalty.balance('friendly', 1003) b) = (SELECT row(b.*)::text FROM loyalty.balance('friendly', '1003') b) AS same_balance;
SELECT loyalty.redeem('friendly', 1003, 20, 'fr-r1') > 0 AS redeemed;
SELECT loyalty.redeem('friendly', 1003, 20, 'fr-r1') = loyalty.redeem('friendly', '1003', 20, 'fr-r1') AS replay_same_row;
SELECT kind, points, balance_after, ref FROM loyalty.history('friendly', 1003) ORDER BY id;
SELECT loyalty.member_cart('friendly', 1003, '{"currency": "USD"}') = loyalty.member_cart('friendly', '1003', '{"currency": "USD"}') AS same_cart;
SELECT * FROM loyalty.validate_coupon('friendly', 'TEN', 1003, '{"currency": "USD", "items": [{"sku": "a", "qty": 1, "price": 30}]}');
SELECT * FROM loyalty.best_offer('friendly', 1003, '{"currency": "USD", "items": [{"sku": "a", "qty": 1, "price": 30}]}');
SELECT loyalty.redeem_coupon('friendly', 'TEN', 1003, '{"currency": "USD", "items": [{"sku": "a", "qty": 1, "price": 30}]}', 'o-9');
SELECT loyalty.claim_reward('friendly', 1003, 'mug', 'fr-claim-1') IS NOT NULL AS claimed;
SELECT loyalty.referral_code('friendly', 1003) = loyalty.referral_code('friendly', '1003') AS same_code;
SELECT loyalty.enroll('friendly', 1006);
SELECT accepted, referrer_id, state FROM loyalty.refer('friendly', 1006, loyalty.referral_code('friendly', 1003));
-- Negative and large ids are ids too; NULL is refused by the text function.
SELECT loyalty.enroll('friendly', -7), loyalty.enroll('friendly', 9223372036854775807);
SELECT sqlstate_of($$SELECT * FROM loyalty.balance('friendly', NULL::bigint)$$);
SELECT sqlstate_of($$SELECT loyalty.redeem('friendly', NULL::bigint, 1, 'fr-null')$$);
-- The twin gives no more than the text function: as_of ahead is refused.
SELECT regexp_replace(sqlstate_of($$SELECT * FROM loyalty.balance('friendly', 1003, now() + '40 days')$$), '"[^"]*"', '"..."');
-- numeric is not an id: PostgreSQL's own error (ids are text or integers).
SELECT sqlstate_of($$SELECT * FROM loyalty.balance('friendly', 1003.5)$$);
RESET ROLE;
SELECT member_id FROM loyalty.member WHERE program = 'friendly' AND member_id IN ('-7', '9223372036854775807') ORDER BY 1;
-- A BI role cannot use the twins (nor the text functions).
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT * FROM loyalty.balance('friendly', 1003)$$);
RESET ROLE;
-- The back office's twins, as an admin.
SET ROLE loyalty_admin;
SELECT loyalty.earn('friendly', 1004, 10, 'fr-earn-int') = loyalty.earn('friendly', '1004', 10, 'fr-earn-int') AS same_credit;
SELECT loyalty.set_member_status('friendly', 1004, 'held');
SELECT status FROM loyalty.member WHERE program = 'friendly' AND member_id = '1004';
SELECT loyalty.set_member_status('friendly', 1004, 'active');
SELECT loyalty.exclude_member('friendly', 1004, 'staff account'), loyalty.include_member('friendly', 1004);
SELECT sqlstate_of($$SELECT loyalty.set_tier_floor('friendly', 1004, 'Gold', now() + interval '1 day')$$);
-- issue_codes without a member id calls the text function (no ambiguity);
-- with an integer one, the twin.
SELECT count(*) AS anyone_codes FROM loyalty.issue_codes('friendly', 'ten', 2);
SELECT count(*) AS member_codes FROM loyalty.issue_codes('friendly', 'ten', 1, 1004);
SELECT member_id, count(*) FROM loyalty.coupon_code WHERE program = 'friendly' AND member_id IS NOT NULL GROUP BY 1 ORDER BY 1;
SELECT loyalty.compensate('friendly', 1004, 'ten', 'fr-sorry') IS NOT NULL AS compensated;
SELECT loyalty.member_risk('friendly', 1004) = loyalty.member_risk('friendly', '1004') AS same_risk;
RESET ROLE;
SET ROLE loyalty_reader;
SELECT loyalty.member_visible('friendly', 1004);
RESET ROLE;
-- Inlined: the plan calls the text function directly.
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM loyalty.balance('friendly', 1003);

-- 3. No parameter of a loyalty function, and no column of a loyalty table
-- or view, is a reserved or column-name keyword (those must be quoted in
-- named notation and in queries: score_rfm's "window" was).  Must return
-- no rows.
SELECT p.oid::regprocedure, n AS parameter, k.catdesc
  FROM pg_proc p, unnest(p.proargnames) n
  JOIN pg_get_keywords() k ON k.word = n
 WHERE p.pronamespace = 'loyalty'::regnamespace AND k.catcode IN ('R', 'C', 'T');
SELECT c.oid::regclass, a.attname, k.catdesc
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_get_keywords() k ON k.word = a.attname
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'c')
   AND a.attnum > 0 AND NOT a.attisdropped AND k.catcode IN ('R', 'C', 'T');
-- The test sees a keyword when there is one.
SELECT count(*) AS reserved_seen FROM pg_get_keywords() WHERE word IN ('window', 'order', 'user') AND catcode = 'R';

-- score_rfm's window is "lookback", usable in named notation.
SET ROLE loyalty_admin;
SELECT loyalty.score_rfm('friendly', now(), lookback => '90 days');
SELECT lookback, members FROM loyalty.rfm_pass WHERE program = 'friendly';
RESET ROLE;

-- 4. BI without loyalty on the search_path: the scores as text and
-- integers, the segments as text.
-- 25 members: the later ones ordered more recently, more often, for more.
INSERT INTO friendly_orders (id, customer_id, amount, created_at)
SELECT 1000 * i + k, 2000 + i, 10 * i, now() - (30 - i) * interval '1 day' - k * interval '1 hour'
  FROM generate_series(1, 25) i, generate_series(1, i) k;
SELECT loyalty.score_rfm('friendly', now(), '60 days');
SET ROLE loyalty_reader;
SET search_path = public;
SELECT rfm_code, r, f, m, segment FROM loyalty.member_rfm WHERE program = 'friendly' AND rfm_code = '555';
SELECT r, count(*) AS members FROM loyalty.member_rfm WHERE program = 'friendly' GROUP BY r ORDER BY r;
SELECT segment, count(*) FROM loyalty.member_rfm WHERE program = 'friendly' AND r >= 4 GROUP BY segment ORDER BY 1;
SELECT rfm_code, count(*) FROM loyalty.member_rfm WHERE program = 'friendly' AND rfm_code LIKE '5%' GROUP BY rfm_code ORDER BY 1;
SELECT member_id, rfm, r, f, m, segment FROM loyalty.member_360 WHERE program = 'friendly' AND rfm = '555';
SELECT segment, count(*) FROM loyalty.member_360 WHERE program = 'friendly' AND m = 5 GROUP BY segment;
SELECT segment, members FROM loyalty.segment_summary WHERE program = 'friendly' AND segment = 'Champions';
-- The typed column keeps its own operators in the loyalty schema: BI uses rfm_code.
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.member_rfm WHERE rfm = '555'$$);
-- rfm_code and r, f, m agree with the typed column.
SET search_path = loyalty, public;
SELECT count(*) AS disagreeing FROM member_rfm
 WHERE rfm_code <> rfm::text OR r <> loyalty.r(rfm) OR f <> loyalty.f(rfm) OR m <> loyalty.m(rfm);
RESET search_path;
RESET ROLE;

-- 5. Dead letters resolved by hand, as an admin.  An order in a currency
-- without a rate waits; a later change of the same order waits behind it.
INSERT INTO friendly_orders VALUES (50, 3001, 100, 'PYG', '2026-01-05 10:00+00');
UPDATE friendly_orders SET amount = 120 WHERE id = 50;
INSERT INTO friendly_orders VALUES (51, 3002, 100, 'PYG', '2026-01-05 11:00+00');
SELECT order_id, event, sqlstate, resolved_at IS NULL AS open FROM loyalty.dead_letter
 WHERE program = 'friendly' ORDER BY id;
SELECT id AS first_letter FROM loyalty.dead_letter WHERE program = 'friendly' AND order_id = '50' ORDER BY id LIMIT 1 \gset
SELECT id AS other_letter FROM loyalty.dead_letter WHERE program = 'friendly' AND order_id = '51' \gset
SET ROLE loyalty_admin;
-- Bad calls change nothing.
SELECT sqlstate_of($$SELECT loyalty.resolve_dead_letter(NULL, 'x')$$);
SELECT regexp_replace(sqlstate_of(format('SELECT loyalty.resolve_dead_letter(%s, NULL)', :first_letter)), 'letter \d+', 'letter N');
SELECT regexp_replace(sqlstate_of(format('SELECT loyalty.resolve_dead_letter(%s, %L)', :first_letter, '  ')), 'letter \d+', 'letter N');
SELECT sqlstate_of($$SELECT loyalty.resolve_dead_letter(-1, 'x')$$);
SELECT count(*) AS open_letters FROM loyalty.dead_letter WHERE program = 'friendly' AND resolved_at IS NULL;
-- The first event is not applied (a test order); the later one then replays.
SELECT loyalty.resolve_dead_letter(:first_letter, ' test order, entered before the PYG rate existed ');
SELECT loyalty.resolve_dead_letter(:first_letter, 'test order, entered before the PYG rate existed');  -- again: no-op
SELECT regexp_replace(sqlstate_of(format('SELECT loyalty.resolve_dead_letter(%s, %L)', :first_letter, 'another reason')), 'letter \d+', 'letter N');
SELECT id = :first_letter AS first, resolved_by, resolution, resolved_at IS NOT NULL AS resolved
  FROM loyalty.dead_letter WHERE program = 'friendly' AND order_id = '50' ORDER BY id;
SELECT loyalty.set_fx_rate('PYG', 'USD', 0.01, '2026-01-01');
SELECT loyalty.retry_dead_letters('friendly');
SELECT order_id, resolved_by, resolution, resolved_at IS NOT NULL AS resolved FROM loyalty.dead_letter
 WHERE program = 'friendly' ORDER BY id;
-- Order 50 earned from its row as it is now (120 PYG = 1.2 USD: 1 point), once.
SELECT available, lifetime_earned FROM loyalty.balance('friendly', 3001);
-- A letter resolved by a replay cannot be resolved by hand.
SELECT regexp_replace(sqlstate_of(format('SELECT loyalty.resolve_dead_letter(%s, %L)', :other_letter, 'x')), 'letter \d+', 'letter N');
RESET ROLE;
-- Not the application's or BI's.
SET ROLE loyalty_app;
SELECT sqlstate_of(format('SELECT loyalty.resolve_dead_letter(%s, %L)', :first_letter, 'x'));
RESET ROLE;
SET ROLE loyalty_reader;
SELECT sqlstate_of(format('SELECT loyalty.resolve_dead_letter(%s, %L)', :first_letter, 'x'));
RESET ROLE;

DROP TABLE friendly_orders;

-- Fraud rules: for each rule a small case it flags and a near miss it does
-- not, with default and changed parameters, a disabled rule, excluded
-- members (never flagged, never the other member of a shared value), reruns
-- over the same and an overlapping period, and bad arguments.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

-- A program in Tokyo (UTC+9): days are Tokyo dates.  Earn rate 1, no
-- pending days: an order's points are available at once.
SELECT loyalty.create_program('fr', 'USD', 1, timezone => 'Asia/Tokyo');
SELECT loyalty.set_fx_rate('EUR', 'USD', 2, '2026-03-01');
CREATE TABLE fr_orders (id text PRIMARY KEY, member text, amount numeric, currency text DEFAULT 'USD',
                        status text DEFAULT 'paid', refunded numeric DEFAULT 0, at timestamptz);
SELECT loyalty.attach_orders('fr', 'fr_orders', 'id', 'member', 'amount', 'currency', 'status', 'refunded', 'at');

-- The order signals, hashed as attach_orders' signal columns hash them.
-- geo_mismatch compares the two countries' hashes: both are hashed as a
-- country (one domain), so FR and FR match.
CREATE FUNCTION fr_signal(id text, device text DEFAULT NULL, payment text DEFAULT NULL,
                          address text DEFAULT NULL, billing text DEFAULT NULL, ip_country text DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO loyalty.order_signal (program, order_id, member_id, ordered_at, key_id, device_id,
                                      payment_fingerprint, shipping_address, billing_country, ip_country)
    SELECT 'fr', o.id, o.member, o.at, 1, loyalty.signal_hash('device_id', device),
           loyalty.signal_hash('payment_fingerprint', payment), loyalty.signal_hash('shipping_address', address),
           loyalty.signal_hash('billing_country', billing), loyalty.signal_hash('billing_country', ip_country)
      FROM fr_orders o WHERE o.id = fr_signal.id
$$;
-- The flags of a rule, readable.
CREATE FUNCTION fr_flags(rule text)
RETURNS TABLE (member_id text, subject text, score numeric, evidence jsonb, points_at_risk bigint)
LANGUAGE sql AS $$
    SELECT f.member_id, regexp_replace(f.subject, '[0-9a-f]{32}$', '<hash>'), f.score,
           f.evidence, f.points_at_risk
      FROM loyalty.fraud_flag f WHERE f.program = 'fr' AND f.rule = fr_flags.rule
     ORDER BY f.member_id, f.subject
$$;

-- velocity (5 orders in 10 minutes).  vel_a: 5 orders in 8 minutes, at
-- 16:00 UTC (01:00 the next day in Tokyo).  vel_b: 5 orders in 11 minutes
-- (no 10-minute window holds 5): a near miss.
INSERT INTO fr_orders (id, member, amount, at)
SELECT 'va' || i, 'vel_a', 10, '2026-03-02 16:00+00'::timestamptz + (i - 1) * interval '2 minutes' FROM generate_series(1, 5) i;
INSERT INTO fr_orders (id, member, amount, at) VALUES
    ('vb1', 'vel_b', 10, '2026-03-02 12:00+00'), ('vb2', 'vel_b', 10, '2026-03-02 12:03+00'),
    ('vb3', 'vel_b', 10, '2026-03-02 12:06+00'), ('vb4', 'vel_b', 10, '2026-03-02 12:09+00'),
    ('vb5', 'vel_b', 10, '2026-03-02 12:11+00');

-- small_payment_burst (5 orders below 5 in 60 minutes).  spb_a: five of
-- 4.99 over 48 minutes.  spb_b: one of them is 5.00, not below 5.  spb_c:
-- five of 3 EUR, 6 USD each in the base currency.
INSERT INTO fr_orders (id, member, amount, currency, at)
SELECT 's' || m || i, 'spb_' || m, CASE WHEN m = 'b' AND i = 3 THEN 5.00 WHEN m = 'c' THEN 3 ELSE 4.99 END,
       CASE WHEN m = 'c' THEN 'EUR' ELSE 'USD' END,
       '2026-03-02 01:00+00'::timestamptz + (i - 1) * interval '12 minutes'
  FROM unnest(ARRAY['a', 'b', 'c']) m, generate_series(1, 5) i;

-- shared_fingerprint (a device, card or address used by 3 members; an email
-- or phone of 2).  dev-farm: sf1, sf2, sf3 and sfx (excluded: staff).
-- dev-pair: sf4, sf5 and sfy (excluded): two counted, a near miss.
-- sf6 and sf7 have one email written two ways (gmail ignores dots and
-- +tags); sf8's phone is nobody else's.
INSERT INTO fr_orders (id, member, amount, at) VALUES
    ('f1', 'sf1', 20, '2026-03-02 02:00+00'), ('f2', 'sf2', 20, '2026-03-02 03:00+00'),
    ('f3', 'sf3', 20, '2026-03-02 04:00+00'), ('f3b', 'sf3', 20, '2026-03-02 05:00+00'),
    ('fx', 'sfx', 20, '2026-03-02 04:30+00'),
    ('f4', 'sf4', 20, '2026-03-02 02:00+00'), ('f5', 'sf5', 20, '2026-03-02 03:00+00'),
    ('fy', 'sfy', 20, '2026-03-02 03:30+00');
SELECT fr_signal(id, device => 'dev-farm') FROM fr_orders WHERE id IN ('f1', 'f2', 'f3', 'fx');
SELECT fr_signal(id, device => 'dev-pair') FROM fr_orders WHERE id IN ('f4', 'f5', 'fy');
SELECT fr_signal('f3b', device => 'dev-own');
SELECT loyalty.exclude_member('fr', 'sfx', 'staff'), loyalty.exclude_member('fr', 'sfy', 'test account');
SELECT loyalty.enroll('fr', 'sf6', '{"email": "Ann.Lee+promo@gmail.com"}'),
       loyalty.enroll('fr', 'sf7', '{"email": "annlee@googlemail.com"}'),
       loyalty.enroll('fr', 'sf8', '{"phone": "+81 90 1234 5678"}');
INSERT INTO fr_orders (id, member, amount, at) VALUES ('f6', 'sf6', 30, '2026-03-02 06:00+00');

-- geo_mismatch (2 orders, half of those with both countries known, with an
-- IP country other than the billing country).  geo_a: 2 of 3.  geo_b: 1 of
-- 4.  geo_c: 2 of 5 (0.4 of them): near misses.
INSERT INTO fr_orders (id, member, amount, at)
SELECT 'g' || m || i, 'geo_' || m, 15, '2026-03-02 03:00+00'::timestamptz + i * interval '1 hour'
  FROM (VALUES ('a', 3), ('b', 4), ('c', 5)) AS g(m, n), generate_series(1, g.n) i;
SELECT fr_signal(id, billing => 'FR', ip_country => CASE WHEN id IN ('ga1', 'ga3', 'gb2', 'gc1', 'gc2') THEN 'us' ELSE 'fr ' END)
  FROM fr_orders WHERE member LIKE 'geo_%';

-- refund_ratio (4 orders, half of the amount refunded).  rr_a: 2 of 4
-- orders of 10 refunded (one by status, one by refunded amount).  rr_b:
-- 15 of 40.  rr_c: 3 orders, all refunded: too few.
INSERT INTO fr_orders (id, member, amount, at)
SELECT 'r' || m || i, 'rr_' || m, 10, '2026-03-02 03:00+00'::timestamptz + i * interval '1 hour'
  FROM (VALUES ('a', 4), ('b', 4), ('c', 3)) AS r(m, n), generate_series(1, r.n) i;
UPDATE fr_orders SET status = 'refunded' WHERE id IN ('ra1', 'rb1', 'rc1', 'rc2', 'rc3');
UPDATE fr_orders SET refunded = 10 WHERE id = 'ra2';
UPDATE fr_orders SET refunded = 5 WHERE id = 'rb2';

-- earn_burn (a redemption of 1000 or more within 24 hours of a credit of
-- 1000 or more, taking 80% of it).  eb_a: order of 1500, 1300 redeemed an
-- hour later.  eb_b: 1100 redeemed (73%).  eb_c: 1400 redeemed 30 hours
-- later.  eb_d: a credit given by earn() (not an order), all redeemed.
INSERT INTO fr_orders (id, member, amount, at) VALUES
    ('ea', 'eb_a', 1500, '2026-03-02 03:00+00'), ('eb', 'eb_b', 1500, '2026-03-02 03:00+00'),
    ('ec', 'eb_c', 1500, '2026-03-02 03:00+00');
SELECT loyalty.redeem('fr', 'eb_a', 1300, 'eb_a-r', '2026-03-02 04:00+00') > 0 AS a,
       loyalty.redeem('fr', 'eb_b', 1100, 'eb_b-r', '2026-03-02 04:00+00') > 0 AS b,
       loyalty.redeem('fr', 'eb_c', 1400, 'eb_c-r', '2026-03-03 09:00+00') > 0 AS c;
SELECT loyalty.earn('fr', 'eb_d', 1000, 'eb_d-gift', 'goodwill', '2026-03-02 03:00+00') > 0 AS credited,
       loyalty.redeem('fr', 'eb_d', 1000, 'eb_d-r', '2026-03-02 03:30+00') IS NOT NULL AS redeemed;

-- coupon_farming (a first-order or referral coupon redeemed by 2 members
-- sharing a value).  cf1 and cf2 share a card and both used a welcome
-- code; cf3 used one too, sharing nothing; cf4 and cf5 share a device but
-- used a spring code (not first-order).
SELECT loyalty.create_campaign('fr', 'welcome', 'first_order | 5 USD off');
SELECT loyalty.create_campaign('fr', 'spring', 'spend 10 USD get 2 USD off');
INSERT INTO fr_orders (id, member, amount, at) VALUES
    ('c1', 'cf1', 40, '2026-03-02 05:00+00'), ('c2', 'cf2', 40, '2026-03-02 05:10+00'),
    ('c3', 'cf3', 40, '2026-03-02 05:20+00'), ('c4', 'cf4', 40, '2026-03-02 05:30+00'),
    ('c5', 'cf5', 40, '2026-03-02 05:40+00');
SELECT fr_signal('c1', payment => 'card-farm'), fr_signal('c2', payment => 'card-farm'),
       fr_signal('c3', payment => 'card-own'), fr_signal('c4', device => 'dev-spring'),
       fr_signal('c5', device => 'dev-spring');
INSERT INTO loyalty.coupon_code (program, code, campaign, member_id)
SELECT 'fr', 'CODE' || n, CASE WHEN n <= 3 THEN 'welcome' ELSE 'spring' END, 'cf' || n FROM generate_series(1, 5) n;
INSERT INTO loyalty.coupon_redemption (program, member_id, code, campaign, order_ref, currency, subtotal,
                                       discount, discount_base, redeemed_at)
SELECT 'fr', 'cf' || n, 'CODE' || n, CASE WHEN n <= 3 THEN 'welcome' ELSE 'spring' END, 'c' || n, 'USD', 40, 5, 5,
       '2026-03-02 05:00+00'::timestamptz + (n - 1) * interval '10 minutes'
  FROM generate_series(1, 5) n;

-- referral_ring (a referral between members sharing a value, or a cycle).
-- rg_b was referred by rg_a on the same device; rc_a -> rc_b -> rc_c ->
-- rc_a is a cycle; rn_a -> rn_b -> rn_c is a chain: a near miss.
INSERT INTO fr_orders (id, member, amount, at) VALUES
    ('ga', 'rg_a', 12, '2026-03-02 07:00+00'), ('gb', 'rg_b', 12, '2026-03-02 07:30+00');
SELECT fr_signal('ga', device => 'dev-ring'), fr_signal('gb', device => 'dev-ring');
SELECT count(loyalty.enroll('fr', m)) AS enrolled
  FROM unnest(ARRAY['rc_a', 'rc_b', 'rc_c', 'rn_a', 'rn_b', 'rn_c']) m;
INSERT INTO loyalty.referral (program, member_id, referrer_id, code, referred_at) VALUES
    ('fr', 'rg_b', 'rg_a', 'X1', '2026-03-02 07:20+00'),
    ('fr', 'rc_b', 'rc_a', 'X2', '2026-03-02 08:00+00'), ('fr', 'rc_c', 'rc_b', 'X3', '2026-03-02 08:10+00'),
    ('fr', 'rc_a', 'rc_c', 'X4', '2026-03-02 08:20+00'),
    ('fr', 'rn_b', 'rn_a', 'X5', '2026-03-02 08:00+00'), ('fr', 'rn_c', 'rn_b', 'X6', '2026-03-02 08:10+00');
SELECT loyalty.earn('fr', 'rg_b', 50, 'referral:rg_b:referee', 'referral reward (referee)', '2026-03-02 09:00+00') > 0 AS rewarded;

-- The check, as an admin, over the day: default parameters.  No member
-- reaches the hold threshold (80) but the cycle's (70 and 70: 91).
SET ROLE loyalty_admin;
SELECT loyalty.fraud_check('fr', '2026-03-02 00:00+00', '2026-03-02 23:59+00') AS new_flags;
RESET ROLE;
SELECT * FROM fr_flags('velocity');
SELECT * FROM fr_flags('small_payment_burst');
SELECT * FROM fr_flags('shared_fingerprint');
SELECT * FROM fr_flags('geo_mismatch');
SELECT * FROM fr_flags('refund_ratio');
SELECT member_id, subject = 'ledger:' || (evidence ->> 'redeem') AS subject_is_redemption,
       evidence - 'redeem' - 'ledger' AS evidence, jsonb_array_length(evidence -> 'ledger') AS credits,
       points_at_risk
  FROM fr_flags('earn_burn');
SELECT * FROM fr_flags('coupon_farming');
SELECT member_id, subject, evidence - 'ledger' AS evidence, jsonb_array_length(evidence -> 'ledger') AS rewards,
       points_at_risk
  FROM fr_flags('referral_ring');
-- The evidence's ledger ids are the credits': eb_d's earn, rg_b's reward.
SELECT f.member_id, l.kind, l.ref, l.points
  FROM loyalty.fraud_flag f JOIN loyalty.ledger l ON l.id = (f.evidence -> 'ledger' ->> 0)::bigint
 WHERE f.program = 'fr' ORDER BY f.member_id;
SELECT member_id, source FROM loyalty.member_hold WHERE program = 'fr' ORDER BY member_id;
-- Excluded members: never flagged, not even as the other member.
SELECT count(*) AS excluded_flagged FROM loyalty.fraud_flag
 WHERE program = 'fr' AND (member_id IN ('sfx', 'sfy') OR evidence -> 'members' ?| ARRAY['sfx', 'sfy']);

-- A rerun over the same period raises nothing.
SELECT loyalty.fraud_check('fr', '2026-03-02 00:00+00', '2026-03-02 23:59+00') AS rerun;

-- An overlapping period: geo_a orders again (ga4, a mismatch a day later);
-- from 05:00 the period holds ga3 and ga4, 2 of 2 mismatched, a flag of
-- another day, but ga3 is already flagged: nothing new.
INSERT INTO fr_orders (id, member, amount, at) VALUES ('ga4', 'geo_a', 15, '2026-03-03 06:00+00');
SELECT fr_signal('ga4', billing => 'FR', ip_country => 'US');
SELECT loyalty.fraud_check('fr', '2026-03-02 05:00+00', '2026-03-03 23:59+00') AS overlapping;
SELECT count(*) AS geo_flags FROM loyalty.fraud_flag WHERE program = 'fr' AND rule = 'geo_mismatch';

-- Changed parameters: velocity at 4 orders flags vel_b now (vel_a once);
-- shared_fingerprint at 2 members, devices only, score 30, flags sf4 and
-- sf5 (still not sfy), and the pairs on one device above (cf4 and cf5,
-- rg_a and rg_b);
-- geo_mismatch disabled: geo_b's new mismatches are not flagged.
SET ROLE loyalty_admin;
SELECT loyalty.set_fraud_rule('fr', 'velocity', '{"orders": 4}');
SELECT loyalty.set_fraud_rule('fr', 'shared_fingerprint', '{"members": 2, "kinds": ["device_id"], "score": 30}');
SELECT loyalty.set_fraud_rule('fr', 'geo_mismatch', '{}', false);
RESET ROLE;
INSERT INTO fr_orders (id, member, amount, at) VALUES ('gb5', 'geo_b', 15, '2026-03-02 09:00+00'),
                                                     ('gb6', 'geo_b', 15, '2026-03-02 10:00+00');
SELECT fr_signal(id, billing => 'FR', ip_country => 'DE') FROM fr_orders WHERE id IN ('gb5', 'gb6');
SELECT loyalty.fraud_check('fr', '2026-03-02 00:00+00', '2026-03-02 23:59+00') AS after_changes;
SELECT member_id, subject, evidence -> 'orders' AS orders FROM fr_flags('velocity');
SELECT member_id, subject, score, evidence -> 'members' AS members FROM fr_flags('shared_fingerprint');
SELECT count(*) AS geo_flags FROM loyalty.fraud_flag WHERE program = 'fr' AND rule = 'geo_mismatch';
SELECT rule, enabled, params FROM loyalty.fraud_rule_params('fr') ORDER BY rule;
-- '{}' gives the defaults back.
SELECT loyalty.set_fraud_rule('fr', 'velocity', '{}');
SELECT loyalty.fraud_rule_defaults('small_payment_burst');

-- Bad arguments: clear errors, nothing changed.
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'speed', '{}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', NULL, '{}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '{}', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('nope', 'velocity', '{}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule(NULL, 'velocity', '{}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '[5]')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '{"order": 5}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '{"orders": 0}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '{"orders": 2.5}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '{"orders": "5"}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '{"minutes": -1}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'geo_mismatch', '{"share": 1.5}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'coupon_farming', '{"members": 1}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'referral_ring', '{"score": 0}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'shared_fingerprint', '{"kinds": []}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'shared_fingerprint', '{"kinds": ["device_id", "iban"]}')$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_rule_defaults('speed')$$);
SELECT sqlstate_of($$SELECT loyalty.set_hold_threshold('fr', 0)$$);
SELECT sqlstate_of($$SELECT loyalty.set_hold_threshold('fr', 100.5)$$);
SELECT sqlstate_of($$SELECT loyalty.set_hold_threshold('fr', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_check(NULL, now())$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_check('', now())$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_check('nope', now())$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_check('fr', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_check('fr', now(), NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_check('fr', 'infinity')$$);
SELECT sqlstate_of($$SELECT loyalty.fraud_check('fr', '2026-03-03', '2026-03-02')$$);
SELECT rule, enabled, params FROM loyalty.fraud_rule WHERE program = 'fr' ORDER BY rule;

-- Rights: the application and BI may not run checks or set rules.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.fraud_check('fr', now())$$);
SELECT sqlstate_of($$SELECT loyalty.set_fraud_rule('fr', 'velocity', '{}')$$);
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT loyalty.fraud_check('fr', now())$$);
SELECT sqlstate_of($$SELECT loyalty.member_risk('fr', 'rc_a')$$);
RESET ROLE;
SELECT * FROM loyalty.verify('fr') WHERE NOT ok;

-- Whole-number parameters written with a fraction part (4.0, as a JSON
-- client may send them) are accepted, and fraud_check reads them: the
-- velocity flag at 4 orders is raised, no error.
SELECT loyalty.create_program('frw', 'USD', 1);
CREATE TABLE frw_orders (id text, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('frw', 'frw_orders', 'id', 'member', 'amount', created_at => 'at');
INSERT INTO frw_orders SELECT 'w' || i, 'wes', 10, '2026-03-02 10:00+00'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 4) i;
SET ROLE loyalty_admin;
SELECT loyalty.set_fraud_rule('frw', 'velocity', '{"orders": 4.0}') ->> 'orders' AS orders,
       loyalty.set_fraud_rule('frw', 'shared_fingerprint', '{"members": 3.0, "contact_members": 2.0}') ->> 'members' AS members,
       loyalty.set_fraud_rule('frw', 'earn_burn', '{"points": 1000.0}') ->> 'points' AS points;
SELECT loyalty.fraud_check('frw', '2026-03-02 00:00+00', '2026-03-02 23:59+00') AS new_flags;
RESET ROLE;
SELECT member_id, rule, subject FROM loyalty.fraud_flag WHERE program = 'frw';

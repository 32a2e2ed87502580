-- Referrals: codes, refer (accepted, refused as abuse, invalid), the daily
-- settlement (pending time, refund and cancel, rewards in points and as
-- coupons, milestones, the cap per period), the funnel, the roles.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rf_admin;
DROP ROLE IF EXISTS regress_rf_app;
DROP ROLE IF EXISTS regress_rf_reader;
RESET client_min_messages;
CREATE ROLE regress_rf_admin IN ROLE loyalty_admin;
CREATE ROLE regress_rf_app IN ROLE loyalty_app;
CREATE ROLE regress_rf_reader IN ROLE loyalty_reader;

-- A program with 14 pending days and an orders table.
SELECT loyalty.create_program('rf', 'USD', 1, 14);
CREATE TABLE rf_orders (id text PRIMARY KEY, who text, total numeric, status text, refunded numeric, at timestamptz);
SELECT loyalty.attach_orders('rf', 'rf_orders', 'id', 'who', 'total', status => 'status',
                             refunded_amount => 'refunded', created_at => 'at');
GRANT SELECT, INSERT, UPDATE ON rf_orders TO regress_rf_app;
SELECT count(*) FROM (SELECT loyalty.enroll('rf', m)
                        FROM unnest(ARRAY['ann', 'bob', 'cat', 'dan', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jon',
                                          'kim', 'lee', 'max', 'ned', 'oli', 'pia']) m) e;
-- The figures of a member: balance and the referral ledger rows.
CREATE FUNCTION rf_ledger(program text) RETURNS TABLE (member_id text, points bigint, ref text, reason text)
LANGUAGE sql AS $$
    SELECT l.member_id, l.points, l.ref, l.reason FROM loyalty.ledger l
     WHERE l.program = rf_ledger.program AND l.ref LIKE 'referral%' ORDER BY l.id
$$;

-- 1. Terms: admins only; bad input names the value.
SET ROLE regress_rf_app;
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50)$$);
RESET ROLE;
SET ROLE regress_rf_admin;
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('nope', 100, 50)$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms(NULL, 100, 50)$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', -1, 50)$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', NULL, 50)$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, referrer_campaign => 'no_such')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, milestones => '{"referrals": 3}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, milestones => '[{"referrals": 0, "points": 5}]')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, milestones => '[{"referrals": 2.5, "points": 5}]')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, milestones => '[{"referrals": 2, "points": 5, "x": 1}]')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, milestones => '[{"referrals": 2, "points": 5}, {"referrals": 2, "points": 9}]')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, milestones => NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, cap => 2)$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, cap => 0, cap_period => '30 days')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, cap => 2, cap_period => '-1 day')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, commission => '{0.1,0.1,0.1,0.1}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, commission => '{1.5}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, commission => '{-0.1}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, commission => '{0.1,NULL}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, commission => '{NaN}')$$);
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rf', 100, 50, commission => NULL)$$);
-- Nothing was stored by the refused calls.
SELECT count(*) AS terms FROM loyalty.referral_setting WHERE program = 'rf';
-- Milestones are stored sorted; setting again replaces.
SELECT loyalty.set_referral_terms('rf', 1, 1);
SELECT loyalty.set_referral_terms('rf', 100, 50,
                                  milestones => '[{"referrals": 3, "points": 700}, {"referrals": 2, "points": 500}]',
                                  cap => 4, cap_period => '30 days');
SELECT referrer_points, referee_points, milestones, cap, cap_period, commission FROM loyalty.referral_setting
 WHERE program = 'rf';
RESET ROLE;

-- 2. Codes: made on first ask, the same after, unguessable form with a check character.
SET ROLE regress_rf_app;
SELECT loyalty.referral_code('rf', 'ann') AS ann_code \gset
SELECT :'ann_code' ~ '^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$' AS grouped,
       loyalty.coupon_code_shape(loyalty.coupon_code_normal(:'ann_code')) AS shape,
       loyalty.referral_code('rf', 'ann') = :'ann_code' AS stable;
SELECT loyalty.referral_code('rf', 'bob') AS bob_code \gset
SELECT loyalty.referral_code('rf', 'cat') AS cat_code \gset
SELECT loyalty.referral_code('rf', 'hal') AS hal_code \gset
SELECT count(DISTINCT c) AS distinct_codes FROM unnest(ARRAY[:'ann_code', :'bob_code', :'cat_code', :'hal_code']) c;
SELECT sqlstate_of($$SELECT loyalty.referral_code('rf', 'nobody')$$);
SELECT sqlstate_of($$SELECT loyalty.referral_code('rf', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.referral_code('nope', 'ann')$$);
SELECT sqlstate_of($$SELECT loyalty.referral_code(NULL, 'ann')$$);
RESET ROLE;
-- Stored normalized, one per member.
SELECT member_id, code = loyalty.coupon_code_normal(:'ann_code') AS same FROM loyalty.referral_code
 WHERE program = 'rf' AND member_id = 'ann';

-- 3. refer, as the application at sign-up (as_of now).  Accepted, then
-- the same call again returns the recorded referral; case, spaces and
-- dashes of the code do not matter.
SET ROLE regress_rf_app;
SELECT * FROM loyalty.refer('rf', 'dan', :'ann_code');
SELECT * FROM loyalty.refer('rf', 'dan', lower(replace(:'ann_code', '-', ' ')));
-- Refused as abuse: recorded and returned, not raised.  Self-referral:
SELECT * FROM loyalty.refer('rf', 'ann', :'ann_code');
-- A cycle: dan, referred by ann, refers ann... (ann is at the top of dan's chain)
SELECT loyalty.referral_code('rf', 'dan') AS dan_code \gset
SELECT * FROM loyalty.refer('rf', 'ann', :'dan_code');
-- ... and a longer one: bob refers cat, cat refers eve, eve's code for bob.
SELECT * FROM loyalty.refer('rf', 'cat', :'bob_code');
SELECT * FROM loyalty.refer('rf', 'eve', :'cat_code');
SELECT loyalty.referral_code('rf', 'eve') AS eve_code \gset
SELECT * FROM loyalty.refer('rf', 'bob', :'eve_code');
-- A replay of a refused attempt returns it again and is recorded once.
SELECT * FROM loyalty.refer('rf', 'bob', :'eve_code');
-- Invalid input raises, and records nothing.
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L)', 'rf', 'fay', 'ZZZZ-ZZZZ-ZZZ2'));
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L)', 'rf', 'fay',
       left(:'ann_code', 13) || CASE WHEN right(:'ann_code', 1) = '2' THEN '3' ELSE '2' END)) ~ '^LY042: mistyped referral code' AS mistyped;
SELECT sqlstate_of($$SELECT loyalty.refer('rf', 'fay', 'NOT-A-CODE')$$);
-- A huge code is named by its start and length, not echoed whole.
SELECT sqlstate_of($$SELECT loyalty.refer('rf', 'fay', repeat('AB', 500000))$$);
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L)', 'rf', 'dan', :'bob_code')) ~ '^LY043: member "dan" of program "rf" was already referred with another code' AS second_code;
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L)', 'rf', 'nobody', :'ann_code'));
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L)', 'nope', 'fay', :'ann_code'));
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L)', 'rf', NULL, :'ann_code'));
SELECT sqlstate_of($$SELECT loyalty.refer('rf', 'fay', NULL)$$);
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L, NULL)', 'rf', 'fay', :'ann_code'));
SELECT sqlstate_of(format('SELECT loyalty.refer(NULL, %L, %L)', 'fay', :'ann_code'));
-- The application can neither back-date nor post-date a referral.
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L, %L)', 'rf', 'fay', :'ann_code', '2026-01-01'));
SELECT sqlstate_of(format('SELECT loyalty.refer(%L, %L, %L, now() + interval ''1 day'')', 'rf', 'fay', :'ann_code')) ~ '^LY007: as_of ".*" is in the future' AS future;
RESET ROLE;
SELECT member_id, referrer_id, state FROM loyalty.referral WHERE program = 'rf' ORDER BY member_id;
SELECT member_id, referrer_id, reason FROM loyalty.referral_rejection WHERE program = 'rf' ORDER BY id;

-- Shared fingerprints (rows as the signal trigger and the profile trigger
-- write them): gus shares ann's email hash, under the same key.
INSERT INTO loyalty.member_contact VALUES ('rf', 'ann', 'email', 1, '\x0a0a'), ('rf', 'gus', 'email', 1, '\x0a0a'),
                                          ('rf', 'ivy', 'phone', 2, '\x0b0b'), ('rf', 'ann', 'phone', 1, '\x0b0b');
-- ivy's phone hash equals ann's but under another key: no match.
SET ROLE regress_rf_app;
SELECT * FROM loyalty.refer('rf', 'gus', :'ann_code');
SELECT * FROM loyalty.refer('rf', 'ivy', :'ann_code');
RESET ROLE;
-- An order device shared with hal (jon ordered already, with hal's device):
-- the shared fingerprint is the reason given; kim ordered too, on another device.
INSERT INTO rf_orders VALUES ('h1', 'hal', 10, 'paid', 0, now() - interval '1 day'),
                             ('j1', 'jon', 10, 'paid', 0, now() - interval '1 day'),
                             ('k1', 'kim', 10, 'paid', 0, now() - interval '1 day');
INSERT INTO loyalty.order_signal (program, order_id, member_id, ordered_at, key_id, device_id)
VALUES ('rf', 'h1', 'hal', now(), 1, '\x0c0c'), ('rf', 'j1', 'jon', now(), 1, '\x0c0c'), ('rf', 'k1', 'kim', now(), 1, '\x0d0d');
SET ROLE regress_rf_app;
SELECT * FROM loyalty.refer('rf', 'jon', :'hal_code');
SELECT * FROM loyalty.refer('rf', 'kim', :'hal_code');
RESET ROLE;
SELECT member_id, referrer_id, reason FROM loyalty.referral_rejection WHERE program = 'rf' ORDER BY id;

-- 4. Settlement.  An admin records referrals at chosen times (back-dating
-- is an admin's).  ann referred dan and ivy, bob cat, cat eve (now, above);
-- bob refers fay, lee, max, ned, oli and pia on 2026-03-01.
SET ROLE regress_rf_admin;
SELECT loyalty.referral_code('rf', 'bob') = :'bob_code' AS same_code;
SELECT m, r.accepted, r.state FROM unnest(ARRAY['fay', 'lee', 'max', 'ned', 'oli', 'pia']) m,
       loyalty.refer('rf', m, :'bob_code', '2026-03-01 10:00+00') r;
RESET ROLE;
-- First orders: fay on 2026-03-02, lee on 2026-03-03 (refunded in part
-- later), max on 2026-03-04 (cancelled later), ned on 2026-03-05, pia on
-- 2026-03-06; oli has none.  A later order does not count as the first.
SET ROLE regress_rf_app;
INSERT INTO rf_orders VALUES ('f1', 'fay', 40, 'paid', 0, '2026-03-02 12:00+00'),
                             ('f2', 'fay', 40, 'paid', 0, '2026-03-09 12:00+00'),
                             ('l1', 'lee', 40, 'paid', 0, '2026-03-03 12:00+00'),
                             ('m1', 'max', 40, 'paid', 0, '2026-03-04 12:00+00'),
                             ('n1', 'ned', 40, 'paid', 0, '2026-03-05 12:00+00'),
                             ('p1', 'pia', 40, 'paid', 0, '2026-03-06 12:00+00');
RESET ROLE;
-- Not an admin's job for the application; NULL as_of; unknown program.
SET ROLE regress_rf_app;
SELECT sqlstate_of($$SELECT loyalty.settle_referrals('rf', '2026-03-10')$$);
RESET ROLE;
SET ROLE regress_rf_admin;
SELECT sqlstate_of($$SELECT loyalty.settle_referrals('rf', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.settle_referrals('nope', '2026-03-10')$$);
-- 2026-03-10: no first order is 14 days old.
SELECT loyalty.settle_referrals('rf', '2026-03-10');
RESET ROLE;
-- Refunds (even in part) and cancels before the pending time ends void the referral.
SET ROLE regress_rf_app;
UPDATE rf_orders SET refunded = 5 WHERE id = 'l1';
UPDATE rf_orders SET status = 'cancelled' WHERE id = 'm1';
RESET ROLE;
SET ROLE regress_rf_admin;
SELECT loyalty.settle_referrals('rf', '2026-03-12');
SELECT member_id, state, first_order_id, settled_at FROM loyalty.referral WHERE program = 'rf' AND referrer_id = 'bob' ORDER BY member_id;
-- 2026-03-17 12:00: fay's first order (03-02 12:00) has stood 15 days, ned's 12.
SELECT loyalty.settle_referrals('rf', '2026-03-17 12:00+00');
SELECT * FROM rf_ledger('rf');
-- 2026-03-20 12:00: ned (bob's 2nd: the 500-point milestone) and pia (bob's 3rd: 700).
SELECT loyalty.settle_referrals('rf', '2026-03-20 12:00+00');
SELECT * FROM rf_ledger('rf') WHERE ref NOT LIKE 'referral:fay%';
-- Run again, or later: nothing is paid twice; oli (no order) stays pending.
SELECT loyalty.settle_referrals('rf', '2026-03-20 12:00+00');
SELECT loyalty.settle_referrals('rf', '2026-04-30 12:00+00');
SELECT count(*) AS referral_ledger_rows FROM rf_ledger('rf');
SELECT member_id, state, first_order_id, settled_at FROM loyalty.referral WHERE program = 'rf' ORDER BY member_id;
SELECT member_id, balance FROM loyalty.member WHERE program = 'rf' AND member_id IN ('bob', 'fay', 'ned', 'pia') ORDER BY 1;
RESET ROLE;
-- A refund after the settlement takes nothing back: the pending time is the window.
SET ROLE regress_rf_app;
UPDATE rf_orders SET refunded = 40 WHERE id = 'f1';
RESET ROLE;
SET ROLE regress_rf_admin;
SELECT loyalty.settle_referrals('rf', '2026-05-01');
SELECT state FROM loyalty.referral WHERE program = 'rf' AND member_id = 'fay';
RESET ROLE;

-- 5. The cap: at most 2 rewarded referrals per referrer in 30 days; then
-- capped (neither side paid, no milestone counts it); later ones pay again.
SELECT loyalty.create_program('rfcap', 'USD', 1, 0);
SELECT loyalty.set_referral_terms('rfcap', 10, 5, milestones => '[{"referrals": 3, "points": 1000}]',
                                  cap => 2, cap_period => '30 days');
SELECT count(*) FROM (SELECT loyalty.enroll('rfcap', m) FROM unnest(ARRAY['p', 'q1', 'q2', 'q3', 'q4']) m) e;
SELECT loyalty.referral_code('rfcap', 'p') AS p_code \gset
SELECT r.state FROM unnest(ARRAY['q1', 'q2', 'q3', 'q4']) m, loyalty.refer('rfcap', m, :'p_code', '2026-01-01') r;
INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, points, ordered_at)
VALUES ('rfcap', 'o1', 'q1', 1, 0, '2026-01-02'), ('rfcap', 'o2', 'q2', 1, 0, '2026-01-03'),
       ('rfcap', 'o3', 'q3', 1, 0, '2026-01-04'), ('rfcap', 'o4', 'q4', 1, 0, '2026-02-20');
SELECT loyalty.settle_referrals('rfcap', '2026-01-10');
SELECT loyalty.settle_referrals('rfcap', '2026-02-25');
SELECT member_id, state, settled_at FROM loyalty.referral WHERE program = 'rfcap' ORDER BY member_id;
SELECT * FROM rf_ledger('rfcap');

-- 6. Rewards as coupons: a campaign for each side, once per referral.
SELECT loyalty.create_program('rfc', 'USD', 1, 0);
SELECT loyalty.create_campaign('rfc', 'friend_gift', '10% off');
SELECT loyalty.create_campaign('rfc', 'welcome_gift', 'first_order | 5 USD off');
SELECT sqlstate_of($$SELECT loyalty.set_referral_terms('rfc', referee_campaign => 'nope')$$);
SELECT loyalty.set_referral_terms('rfc', referrer_campaign => 'friend_gift', referee_campaign => 'welcome_gift');
SELECT count(*) FROM (SELECT loyalty.enroll('rfc', m) FROM unnest(ARRAY['r', 's']) m) e;
SELECT (loyalty.refer('rfc', 's', loyalty.referral_code('rfc', 'r'), '2026-01-01')).state;
INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, points, ordered_at)
VALUES ('rfc', 'o1', 's', 1, 0, '2026-01-02');
SELECT loyalty.settle_referrals('rfc', '2026-01-03');
SELECT loyalty.settle_referrals('rfc', '2026-01-04');
SELECT campaign, member_id, issued_ref, issued_at, loyalty.coupon_code_shape(code) AS shape
  FROM loyalty.coupon_code WHERE program = 'rfc' ORDER BY issued_ref;
SELECT count(*) AS points_rows FROM loyalty.ledger WHERE program = 'rfc';
-- No terms: the job says so.
SELECT loyalty.create_program('rfnone', 'USD', 1, 0);
SELECT loyalty.settle_referrals('rfnone', '2026-01-03');

-- 7. The funnel, per program and day: codes made (today), referees,
-- first orders, rewarded, capped, voided, refused.  By hand for rf:
-- referees 2026-03-01: fay, lee, max, ned, oli, pia (6); today: dan, ivy,
-- cat, eve (4).  First orders of referees: 03-02 fay, 03-03 lee, 03-04 max,
-- 03-05 ned, 03-06 pia (hal, jon and kim ordered, but none was referred).
-- Voided 03-12: lee, max; rewarded 03-17: fay; 03-20: ned, pia.  Codes
-- (today): ann, bob, cat, hal, dan, eve (6).  Refused today: ann twice
-- (self, cycle), bob (cycle; its replay counts once), gus, jon, kim (6).
SET ROLE regress_rf_reader;
SELECT day, referees, first_orders, rewards_paid, capped, voided, rejected
  FROM loyalty.referral_funnel WHERE program = 'rf' AND day < '2026-11-01' ORDER BY 1;
SELECT sum(codes_shared) AS codes, sum(referees) AS referees_all, sum(rejected) AS rejected_all
  FROM loyalty.referral_funnel WHERE program = 'rf';
SELECT CASE WHEN day = current_date THEN 'today' ELSE day::text END AS day, codes_shared, referees, first_orders, rewards_paid, capped, voided
  FROM loyalty.referral_funnel WHERE program = 'rfcap' ORDER BY 1;
RESET ROLE;
-- Excluded members drop out: bob (a staff account) takes his code, his
-- referrals (fay, lee, max, ned, oli, pia, cat) and the refusal of his own
-- referral (the cycle through eve) with him.
INSERT INTO loyalty.member_exclusion (program, member_id, reason) VALUES ('rf', 'bob', 'staff');
SET ROLE regress_rf_reader;
SELECT sum(codes_shared) AS codes, sum(referees) AS referees_all, sum(rewards_paid) AS rewarded_all,
       sum(voided) AS voided_all, sum(rejected) AS rejected_all
  FROM loyalty.referral_funnel WHERE program = 'rf';
-- BI reads the funnel and nothing else of referrals; the application does not read it.
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.referral$$);
SELECT sqlstate_of($$SELECT loyalty.referral_code('rf', 'ann')$$);
RESET ROLE;
SET ROLE regress_rf_app;
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.referral_funnel$$);
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.referral$$);
RESET ROLE;

-- 8. Signals that arrive after refer are checked again at the settlement:
-- a device shared with the referrer seen only on the referee's first
-- order, and an order placed before the referral but loaded later, void
-- the referral; nobody is paid.  A clean referral of the same run pays.
SELECT loyalty.create_program('rflate', 'USD', 1, 0);
CREATE TABLE rflate_orders (id text PRIMARY KEY, who text, total numeric, at timestamptz, dev text);
SELECT loyalty.attach_orders('rflate', 'rflate_orders', 'id', 'who', 'total', created_at => 'at', device_id => 'dev');
GRANT SELECT, INSERT ON rflate_orders TO regress_rf_app;
SELECT loyalty.set_referral_terms('rflate', 100, 50);
SELECT count(*) FROM (SELECT loyalty.enroll('rflate', m) FROM unnest(ARRAY['u', 'v', 'w', 'x', 'y']) m) e;
INSERT INTO rflate_orders VALUES ('u1', 'u', 10, '2026-01-01', 'device-7');
SET ROLE regress_rf_app;
SELECT loyalty.referral_code('rflate', 'u') AS u_code \gset
SELECT r.member_id, x.accepted, x.state FROM unnest(ARRAY['v', 'w', 'x', 'y']) r(member_id),
       loyalty.refer('rflate', r.member_id, :'u_code') x ORDER BY 1;
-- v orders from u's device; w's order of last year arrives late; x is
-- clean; y's order is dated 2 seconds before its referral (the shop's
-- clock a little behind the database's: within the skew, it counts).
INSERT INTO rflate_orders VALUES ('v1', 'v', 10, now(), 'device-7'),
                                 ('w1', 'w', 10, now() - interval '1 year', NULL),
                                 ('x1', 'x', 10, now(), 'device-9');
RESET ROLE;
INSERT INTO rflate_orders
SELECT 'y1', 'y', 10, r.referred_at - interval '2 seconds', NULL FROM loyalty.referral r
 WHERE r.program = 'rflate' AND r.member_id = 'y';
SET ROLE regress_rf_admin;
SELECT loyalty.settle_referrals('rflate');
SELECT member_id, state, first_order_id FROM loyalty.referral WHERE program = 'rflate' ORDER BY member_id;
SELECT * FROM rf_ledger('rflate');
RESET ROLE;

-- 9. A forgotten member (erased on request) is paid nothing: neither side's
-- reward, coupon or milestone, nor commission (the level above it is).
SELECT loyalty.create_program('rfgone', 'USD', 1, 0);
SELECT loyalty.create_campaign('rfgone', 'thanks', '10% off');
SELECT loyalty.set_referral_terms('rfgone', 10, 5, referrer_campaign => 'thanks', referee_campaign => 'thanks',
                                  milestones => '[{"referrals": 1, "points": 7}]', commission => '{0.1,0.1}');
SELECT count(*) FROM (SELECT loyalty.enroll('rfgone', m) FROM unnest(ARRAY['g1', 'g2', 'g3']) m) e;
SELECT m, (loyalty.refer('rfgone', m, loyalty.referral_code('rfgone', r), '2026-01-01')).state
  FROM (VALUES ('g2', 'g1'), ('g3', 'g2')) p(m, r);
SELECT loyalty.set_member_status('rfgone', 'g2', 'forgotten');
-- (Since forget_member, g2's id is a pseudonym everywhere and an order under
-- 'g2' is no member's: g2's referral stays pending, g1 gets nothing for it.)
INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, points, ordered_at)
VALUES ('rfgone', 'o2', 'g2', 100, 100, '2026-01-02'), ('rfgone', 'o3', 'g3', 100, 100, '2026-01-02');
SELECT loyalty.settle_referrals('rfgone', '2026-01-03');
SELECT regexp_replace(member_id, '^forgotten-.*', 'forgotten-...') AS member_id, state
  FROM loyalty.referral WHERE program = 'rfgone' ORDER BY member_id;
SELECT * FROM rf_ledger('rfgone');
SELECT member_id, issued_ref FROM loyalty.coupon_code WHERE program = 'rfgone' ORDER BY issued_ref;
SELECT order_id, level, member_id, points FROM loyalty.referral_commission WHERE program = 'rfgone' ORDER BY 1, 2;

-- 10. A milestone's points changed after a referrer reached it: the next
-- settlement pays the referrer's new referral (not the milestone again,
-- nor fails on its reference as another amount).
SELECT loyalty.create_program('rfms', 'USD', 1, 0);
SELECT loyalty.set_referral_terms('rfms', 10, 5, milestones => '[{"referrals": 1, "points": 500}]');
SELECT count(*) FROM (SELECT loyalty.enroll('rfms', m) FROM unnest(ARRAY['r', 'e1', 'e2']) m) e;
SELECT m, (loyalty.refer('rfms', m, loyalty.referral_code('rfms', 'r'), '2026-01-01')).state
  FROM unnest(ARRAY['e1', 'e2']) m;
INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, points, ordered_at)
VALUES ('rfms', 'o1', 'e1', 1, 0, '2026-01-02');
SELECT loyalty.settle_referrals('rfms', '2026-01-03');
SELECT loyalty.set_referral_terms('rfms', 10, 5, milestones => '[{"referrals": 1, "points": 600}, {"referrals": 2, "points": 900}]');
INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, points, ordered_at)
VALUES ('rfms', 'o2', 'e2', 1, 0, '2026-01-04');
SELECT loyalty.settle_referrals('rfms', '2026-01-05');
SELECT member_id, state FROM loyalty.referral WHERE program = 'rfms' ORDER BY member_id;
SELECT * FROM rf_ledger('rfms');

-- 11. A voided referral carries no commission: what its referee's orders
-- paid (both levels) is taken back whole when settle_referrals voids it,
-- after what a partial refund took; a later refund takes nothing more.
SELECT loyalty.create_program('rfvc', 'USD', 1, 14);
CREATE TABLE rfvc_orders (id text PRIMARY KEY, who text, total numeric, refunded numeric, at timestamptz);
SELECT loyalty.attach_orders('rfvc', 'rfvc_orders', 'id', 'who', 'total', refunded_amount => 'refunded', created_at => 'at');
SELECT loyalty.set_referral_terms('rfvc', 10, 5, commission => '{0.1,0.05}');
SELECT count(*) FROM (SELECT loyalty.enroll('rfvc', m) FROM unnest(ARRAY['a', 'b', 'c']) m) e;
SELECT m, (loyalty.refer('rfvc', m, loyalty.referral_code('rfvc', r), '2026-01-01')).state
  FROM (VALUES ('b', 'a'), ('c', 'b')) p(m, r);
INSERT INTO rfvc_orders VALUES ('o1', 'c', 100, 0, '2026-01-02'), ('o2', 'c', 200, 0, '2026-01-03');
UPDATE rfvc_orders SET refunded = 50 WHERE id = 'o1';
SELECT order_id, level, member_id, points, taken_target FROM loyalty.referral_commission
 WHERE program = 'rfvc' ORDER BY 1, 2;
SELECT loyalty.settle_referrals('rfvc', '2026-01-20');
SELECT member_id, state FROM loyalty.referral WHERE program = 'rfvc' ORDER BY member_id;
SELECT order_id, level, member_id, points, taken_target FROM loyalty.referral_commission
 WHERE program = 'rfvc' ORDER BY 1, 2;
UPDATE rfvc_orders SET refunded = 200 WHERE id = 'o2';
SELECT member_id, sum(points) AS commission_left, count(*) AS ledger_rows FROM rf_ledger('rfvc')
 WHERE ref LIKE 'referral-commission:%' GROUP BY member_id ORDER BY member_id;
SELECT * FROM rf_ledger('rfvc') WHERE ref LIKE '%:back:%';

-- The books balance.
SELECT check_name, ok FROM loyalty.verify() WHERE NOT ok;

-- Risk, holds and review: a member whose open flags reach the threshold is
-- held (no redemption, new points pending); confirm reverses the flagged
-- activity through the ledger with the flag as reason, dismiss reverses
-- nothing; either releases a fraud hold (never a manual one) once the risk
-- is below the threshold; replays return the first result; fraud_overview.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('frv', 'USD', 1);
CREATE TABLE frv_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                        at timestamptz);
SELECT loyalty.attach_orders('frv', 'frv_orders', 'id', 'member', 'amount', NULL, 'status', NULL, 'at');
GRANT INSERT, UPDATE ON frv_orders TO loyalty_app;
CREATE FUNCTION frv_device(id text, device text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO loyalty.order_signal (program, order_id, member_id, ordered_at, key_id, device_id)
    SELECT 'frv', o.id, o.member, o.at, 1, loyalty.signal_hash('device_id', device)
      FROM frv_orders o WHERE o.id = frv_device.id
$$;

-- ann, bob, dan, fay: 5 orders of 10 in 8 minutes (velocity, 40).  ann,
-- bea, cal, fay: one order of 20 each on one device (shared_fingerprint,
-- 50).  eve: a credit of 1000 (earn, not an order) redeemed at once
-- (earn_burn, 40).  dan is held by hand.
INSERT INTO frv_orders (id, member, amount, at)
SELECT m || i, m, 10, '2026-04-01 08:00+00'::timestamptz + i * interval '2 minutes'
  FROM unnest(ARRAY['ann', 'bob', 'dan', 'fay']) m, generate_series(1, 5) i;
INSERT INTO frv_orders (id, member, amount, at)
SELECT m || '-d', m, 20, '2026-04-01 10:00+00' FROM unnest(ARRAY['ann', 'bea', 'cal', 'fay']) m;
SELECT frv_device(id, 'shared-phone') FROM frv_orders WHERE id LIKE '%-d';
SELECT loyalty.earn('frv', 'eve', 1000, 'eve-bonus', 'bonus', '2026-04-01 09:00+00') > 0 AS credited,
       loyalty.redeem('frv', 'eve', 1000, 'eve-r', '2026-04-01 09:30+00') > 0 AS redeemed;
SET ROLE loyalty_admin;
SELECT loyalty.set_member_status('frv', 'dan', 'held');
SELECT loyalty.set_hold_threshold('frv', 70);
SELECT loyalty.fraud_check('frv', '2026-04-01 00:00+00', '2026-04-01 12:00+00') AS new_flags;
RESET ROLE;
SELECT member_id, rule, score, state, points_at_risk, raised_at FROM loyalty.fraud_flag
 WHERE program = 'frv' ORDER BY member_id, rule;

-- Risk: 100 x (1 - 0.6 x 0.5) = 70 for ann and fay (at the threshold:
-- held), 50 or 40 for one flag, 0 without.
SET ROLE loyalty_admin;
SELECT m, loyalty.member_risk('frv', m) FROM unnest(ARRAY['ann', 'bea', 'bob', 'dan', 'eve', 'fay', 'zed']) m;
RESET ROLE;
SELECT member_id, source, released_at IS NULL AS open FROM loyalty.member_hold WHERE program = 'frv' ORDER BY member_id;
SELECT member_id, status FROM loyalty.member WHERE program = 'frv' AND status = 'held' ORDER BY member_id;

-- ann is held: a redemption is refused (LY002); a new order's points stay
-- pending.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.redeem('frv', 'ann', 5, 'ann-r1')$$);
INSERT INTO frv_orders (id, member, amount, at) VALUES ('ann-new', 'ann', 7, now());
SELECT available, pending FROM loyalty.balance('frv', 'ann');
RESET ROLE;

-- Confirm ann's velocity flag (as an admin): its 5 orders are reversed
-- through the ledger, reason "fraud flag <id>"; 50 points.  ann's risk is
-- now 50, below 70: the fraud hold ends, the new order's points are
-- available.
SELECT id AS ann_velocity FROM loyalty.fraud_flag WHERE program = 'frv' AND member_id = 'ann' AND rule = 'velocity' \gset
SET ROLE loyalty_admin;
SELECT loyalty.review_flag(:ann_velocity, 'confirm', 'bot orders');
RESET ROLE;
SELECT order_id, kind, points, reason = 'fraud flag ' || :ann_velocity AS flag_reason
  FROM loyalty.ledger WHERE program = 'frv' AND member_id = 'ann' AND kind = 'reverse' ORDER BY order_id;
SELECT state, decided_at IS NOT NULL AS decided, decided_by, note, points_reversed
  FROM loyalty.fraud_flag WHERE id = :ann_velocity;
SET ROLE loyalty_admin;
SELECT loyalty.member_risk('frv', 'ann');
RESET ROLE;
SELECT source, released_at IS NOT NULL AS released, regexp_replace(release_note, '[0-9]+$', '<id>') AS release_note,
       release_note LIKE '% ' || :ann_velocity AS names_the_flag
  FROM loyalty.member_hold WHERE program = 'frv' AND member_id = 'ann';
SELECT status FROM loyalty.member WHERE program = 'frv' AND member_id = 'ann';
SELECT available, pending FROM loyalty.balance('frv', 'ann');

-- A later refund of a confirmed order reverses nothing more.
UPDATE frv_orders SET status = 'refunded' WHERE id = 'ann1';
SELECT count(*) AS ann_reversals FROM loyalty.ledger WHERE program = 'frv' AND member_id = 'ann' AND kind = 'reverse';

-- The same decision again returns the first result; another is LY040.
SET ROLE loyalty_admin;
SELECT loyalty.review_flag(:ann_velocity, 'confirm', 'again');
SELECT regexp_replace(sqlstate_of(format($$SELECT loyalty.review_flag(%s, 'dismiss', 'changed my mind')$$, :ann_velocity)),
                      'flag [0-9]+ ', 'flag <id> ') AS refused;
RESET ROLE;
SELECT note, points_reversed FROM loyalty.fraud_flag WHERE id = :ann_velocity;
SELECT count(*) AS ann_reversals FROM loyalty.ledger WHERE program = 'frv' AND member_id = 'ann' AND kind = 'reverse';

-- Confirm eve's earn_burn: the credit (no order) is taken back, ref
-- fraud:<flag>:<ledger id>; eve had spent it: 1000 of debt.
SELECT id AS eve_flag, (evidence -> 'ledger' ->> 0)::bigint AS eve_credit FROM loyalty.fraud_flag
 WHERE program = 'frv' AND member_id = 'eve' \gset
SET ROLE loyalty_admin;
SELECT loyalty.review_flag(:eve_flag, 'confirm', NULL);
RESET ROLE;
SELECT kind, points, ref = format('fraud:%s:%s', :eve_flag, :eve_credit) AS ref_ok,
       reason = 'fraud flag ' || :eve_flag AS reason_ok
  FROM loyalty.ledger WHERE program = 'frv' AND member_id = 'eve' AND kind = 'reverse';
SELECT balance, debt FROM loyalty.member WHERE program = 'frv' AND member_id = 'eve';

-- Dismiss fay's shared_fingerprint flag: nothing reversed, fay's risk is
-- 40: released.  Dismiss bea's: nothing to release.
SELECT id AS fay_shared FROM loyalty.fraud_flag WHERE program = 'frv' AND member_id = 'fay' AND rule = 'shared_fingerprint' \gset
SELECT id AS bea_shared FROM loyalty.fraud_flag WHERE program = 'frv' AND member_id = 'bea' \gset
SET ROLE loyalty_admin;
SELECT loyalty.review_flag(:fay_shared, 'dismiss', 'family phone'), loyalty.review_flag(:bea_shared, 'dismiss', 'family phone');
SELECT loyalty.review_flag(:fay_shared, 'dismiss', 'again');
RESET ROLE;
SELECT count(*) AS fay_reversals FROM loyalty.ledger WHERE program = 'frv' AND member_id = 'fay' AND kind = 'reverse';
SELECT status, (SELECT released_at IS NOT NULL FROM loyalty.member_hold h WHERE h.program = 'frv' AND h.member_id = 'fay') AS released
  FROM loyalty.member WHERE program = 'frv' AND member_id = 'fay';

-- dan's hold is manual: dismissing his only flag does not release it.
SELECT id AS dan_flag FROM loyalty.fraud_flag WHERE program = 'frv' AND member_id = 'dan' \gset
SET ROLE loyalty_admin;
SELECT loyalty.review_flag(:dan_flag, 'dismiss', 'known customer');
RESET ROLE;
SELECT m.status, h.source, h.released_at IS NULL AS still_held
  FROM loyalty.member m JOIN loyalty.member_hold h USING (program, member_id)
 WHERE m.program = 'frv' AND m.member_id = 'dan';

-- Bad arguments, and the roles that may not review.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.review_flag(NULL, 'confirm', NULL)$$);
SELECT sqlstate_of(format($$SELECT loyalty.review_flag(%s, NULL, NULL)$$, :dan_flag));
SELECT sqlstate_of(format($$SELECT loyalty.review_flag(%s, 'approve', NULL)$$, :dan_flag));
SELECT sqlstate_of($$SELECT loyalty.review_flag(-1, 'confirm', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.member_risk('nope', 'ann')$$);
SELECT sqlstate_of($$SELECT loyalty.member_risk('frv', NULL)$$);
SET ROLE loyalty_app;
SELECT sqlstate_of(format($$SELECT loyalty.review_flag(%s, 'confirm', NULL)$$, :dan_flag));
SET ROLE loyalty_reader;
SELECT sqlstate_of(format($$SELECT loyalty.review_flag(%s, 'confirm', NULL)$$, :dan_flag));
RESET ROLE;

-- fraud_overview, by hand (all raised at 12:00 on 1 April):
--   velocity:           ann confirmed (50 at risk, 50 reversed), bob and
--                       fay open (100), dan dismissed (50)
--   shared_fingerprint: ann, cal open (40), bea, fay dismissed (40)
--   earn_burn:          eve confirmed (1000 at risk, 1000 reversed)
-- cal is then excluded (a staff account): the open shared row drops to 1.
SET ROLE loyalty_reader;
SELECT * FROM loyalty.fraud_overview WHERE program = 'frv' ORDER BY rule, state;
RESET ROLE;
SELECT loyalty.exclude_member('frv', 'cal', 'staff');
SET ROLE loyalty_reader;
SELECT rule, state, flags, members, points_at_risk FROM loyalty.fraud_overview
 WHERE program = 'frv' AND rule = 'shared_fingerprint' ORDER BY state;
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.fraud_flag$$);
RESET ROLE;

SELECT * FROM loyalty.verify('frv') WHERE NOT ok;

-- One credit, the evidence of two flags, is taken back once: gus's two
-- bonuses of 1000 are each mostly taken by each of two redemptions (two
-- earn_burn flags with the same ledger evidence).  Confirming both takes
-- back 2000, not 4000.
SELECT loyalty.create_program('frv2', 'USD', 1);
SELECT loyalty.earn('frv2', 'gus', 1000, 'gus-b1', 'bonus', '2026-04-01 09:00+00') > 0 AS credited,
       loyalty.earn('frv2', 'gus', 1000, 'gus-b2', 'bonus', '2026-04-01 09:05+00') > 0 AS credited,
       loyalty.redeem('frv2', 'gus', 1000, 'gus-r1', '2026-04-01 09:30+00') > 0 AS redeemed,
       loyalty.redeem('frv2', 'gus', 1000, 'gus-r2', '2026-04-01 09:40+00') > 0 AS redeemed;
SET ROLE loyalty_admin;
SELECT loyalty.fraud_check('frv2', '2026-04-01 00:00+00', '2026-04-01 12:00+00') AS new_flags;
RESET ROLE;
SELECT rule, evidence -> 'ledger' = (SELECT jsonb_agg(id ORDER BY id) FROM loyalty.ledger
                                      WHERE program = 'frv2' AND kind = 'earn') AS both_credits,
       points_at_risk
  FROM loyalty.fraud_flag WHERE program = 'frv2' ORDER BY id;
SET ROLE loyalty_admin;
SELECT loyalty.review_flag(id, 'confirm', 'cash-out') FROM loyalty.fraud_flag WHERE program = 'frv2' ORDER BY id;
RESET ROLE;
SELECT sum(points) AS taken_back, count(*) AS reverse_rows
  FROM loyalty.ledger WHERE program = 'frv2' AND kind = 'reverse';
SELECT available FROM loyalty.balance('frv2', 'gus');
SELECT * FROM loyalty.verify('frv2') WHERE NOT ok;

-- A redemption cancelled since (cancel_redemption: an unredeem row) took
-- nothing out: no earn_burn flag for kim, while ivy's live one is flagged.
SELECT loyalty.create_program('frv3', 'USD', 1);
SELECT loyalty.earn('frv3', m, 2000, m || '-b', 'bonus', '2026-04-01 09:00+00') > 0 AS credited,
       loyalty.redeem('frv3', m, 2000, m || '-r', '2026-04-01 09:30+00') > 0 AS redeemed
  FROM unnest(ARRAY['ivy', 'kim']) m;
SELECT loyalty.cancel_redemption('frv3', 'kim-r') > 0 AS cancelled;
SET ROLE loyalty_admin;
SELECT loyalty.fraud_check('frv3', '2026-04-01 00:00+00', '2026-04-01 12:00+00') AS new_flags;
RESET ROLE;
SELECT member_id, rule FROM loyalty.fraud_flag WHERE program = 'frv3' ORDER BY member_id;

-- A referral_ring flag raised before settle_referrals pays the referral
-- has no reward to take back: while it is open the referral waits unpaid,
-- confirmed it is void, dismissed it is paid.
SELECT loyalty.create_program('frv4', 'USD', 1);
CREATE TABLE frv4_orders (id text PRIMARY KEY, member text, amount numeric, at timestamptz);
SELECT loyalty.attach_orders('frv4', 'frv4_orders', 'id', 'member', 'amount', created_at => 'at');
SELECT loyalty.set_referral_terms('frv4', referrer_points => 100, referee_points => 50);
SELECT count(*) FROM (SELECT loyalty.enroll('frv4', m) FROM unnest(ARRAY['ann', 'bob', 'cy']) m) e;
SELECT accepted FROM loyalty.refer('frv4', 'bob', loyalty.referral_code('frv4', 'ann'), '2026-04-01 08:00+00');
SELECT accepted FROM loyalty.refer('frv4', 'cy', loyalty.referral_code('frv4', 'ann'), '2026-04-01 08:00+00');
INSERT INTO frv4_orders VALUES ('b1', 'bob', 20, '2026-04-01 09:00+00'), ('c1', 'cy', 20, '2026-04-01 09:00+00');
-- The flags as fraud_check raises them (subject referral:<referee>).
INSERT INTO loyalty.fraud_flag (program, member_id, rule, subject, score, evidence, raised_at)
SELECT 'frv4', m, 'referral_ring', 'referral:' || r, 70, '{"ledger": []}', '2026-04-01 10:00+00'
  FROM (VALUES ('ann', 'bob'), ('bob', 'bob'), ('ann', 'cy'), ('cy', 'cy')) v(m, r);
SELECT loyalty.settle_referrals('frv4', '2026-04-02') AS settled;
SELECT member_id, state FROM loyalty.referral WHERE program = 'frv4' ORDER BY member_id;
SET ROLE loyalty_admin;
SELECT loyalty.review_flag(id, 'confirm', 'one household') FROM loyalty.fraud_flag
 WHERE program = 'frv4' AND subject = 'referral:bob' ORDER BY id;
SELECT loyalty.review_flag(id, 'dismiss', 'neighbours') FROM loyalty.fraud_flag
 WHERE program = 'frv4' AND subject = 'referral:cy' ORDER BY id;
RESET ROLE;
SELECT loyalty.settle_referrals('frv4', '2026-04-02') AS settled;
SELECT member_id, state FROM loyalty.referral WHERE program = 'frv4' ORDER BY member_id;
SELECT member_id, points, ref FROM loyalty.ledger WHERE program = 'frv4' AND ref LIKE 'referral%' ORDER BY id;
SELECT * FROM loyalty.verify('frv4') WHERE NOT ok;

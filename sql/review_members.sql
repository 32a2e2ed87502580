-- Review of member administration and GDPR: merging a referrer into the
-- member it referred (and back), forgetting a referee (its id must not
-- survive in the refs of referral rewards, its own or its referrer's), and
-- a consent answer that is not a JSON boolean (written by enroll) must not
-- break the segment views and the coupon jobs for everyone; the ledger
-- guard lets only the told rewrite through; a forgotten referee's id leaves
-- no trace in fraud flag subjects nor in the signals of a later order.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('rvm', 'USD', 1, expire_after => '365 days');
CREATE TABLE rvm_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                         at timestamptz DEFAULT now());
SELECT loyalty.attach_orders('rvm', 'rvm_orders', 'id', 'member', 'amount', NULL, 'status', NULL, 'at');
GRANT SELECT, INSERT, UPDATE, DELETE ON rvm_orders TO loyalty_app;
SET ROLE loyalty_admin;
SELECT loyalty.create_campaign('rvm', 'rvm_ref', '10% off');
SELECT loyalty.set_referral_terms('rvm', referrer_points => 10, referee_points => 5,
                                  referrer_campaign => 'rvm_ref', referee_campaign => 'rvm_ref');
RESET ROLE;

-- 1. ann referred bob; bob's first order is rewarded; then ann is merged
-- into bob (one person): the merge goes through, nobody refers himself.
SET ROLE loyalty_app;
SELECT loyalty.enroll('rvm', 'ann'), loyalty.enroll('rvm', 'bob');
SELECT loyalty.referral_code('rvm', 'ann') AS ann_code \gset
SELECT accepted FROM loyalty.refer('rvm', 'bob', :'ann_code');
INSERT INTO rvm_orders (id, member, amount, at) VALUES ('A-1', 'ann', 100, now() - interval '40 days'),
                                                       ('B-1', 'bob', 50, now());
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.settle_referrals('rvm', now() + interval '60 days');
SELECT sum(balance) AS total FROM loyalty.member WHERE program = 'rvm' \gset before_
SELECT sqlstate_of($$SELECT loyalty.merge_members('rvm', 'ann', 'bob', 'merge-ann-bob')$$) AS referrer_into_referee;
RESET ROLE;
SELECT member_id, balance, balance = :before_total AS total_kept FROM loyalty.member WHERE program = 'rvm' ORDER BY 1;
SELECT count(*) AS self_referrals FROM loyalty.referral WHERE program = 'rvm' AND member_id = referrer_id;
SELECT check_name FROM loyalty.verify() WHERE NOT ok;
-- The other direction: a referee merged into its referrer.
SET ROLE loyalty_app;
SELECT loyalty.enroll('rvm', 'cid'), loyalty.enroll('rvm', 'dan');
SELECT loyalty.referral_code('rvm', 'cid') AS cid_code \gset
SELECT accepted FROM loyalty.refer('rvm', 'dan', :'cid_code');
RESET ROLE;
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.merge_members('rvm', 'dan', 'cid', 'merge-dan-cid')$$) AS referee_into_referrer;
RESET ROLE;
SELECT count(*) AS self_referrals FROM loyalty.referral WHERE program = 'rvm' AND member_id = referrer_id;
SELECT check_name FROM loyalty.verify() WHERE NOT ok;

-- 2. Forgetting a referee: its id survives nowhere, neither in its own
-- reward's ref nor in its referrer's (ledger, coupons).
SET ROLE loyalty_app;
SELECT loyalty.enroll('rvm', 'referrer-eve'), loyalty.enroll('rvm', 'zed-4711');
SELECT loyalty.referral_code('rvm', 'referrer-eve') AS eve_code \gset
SELECT accepted FROM loyalty.refer('rvm', 'zed-4711', :'eve_code');
INSERT INTO rvm_orders (id, member, amount) VALUES ('Z-1', 'zed-4711', 80);
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.settle_referrals('rvm', now() + interval '60 days');
RESET ROLE;
SELECT member_id = 'zed-4711' AS own, kind, points, ref FROM loyalty.ledger
 WHERE program = 'rvm' AND ref LIKE 'referral:zed-4711:%' ORDER BY id;
SELECT count(*) AS coupons_citing_zed FROM loyalty.coupon_code WHERE program = 'rvm' AND issued_ref LIKE '%zed-4711%';
SET ROLE loyalty_admin;
SELECT loyalty.forget_member('rvm', 'zed-4711') AS pseudonym \gset
RESET ROLE;
-- Every row of every table of the extension, as text: the old id is gone.
CREATE FUNCTION pg_temp.rows_citing(needle text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE t record; n bigint;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
              WHERE s.nspname = 'loyalty' AND c.relkind IN ('r', 'p') ORDER BY 1 LOOP
        EXECUTE format('SELECT count(*) FROM loyalty.%I x WHERE strpos(x::text, $1) > 0', t.relname)
          INTO n USING needle;
        IF n > 0 THEN RETURN NEXT t.relname || ': ' || n; END IF;
    END LOOP;
END $$;
SELECT * FROM pg_temp.rows_citing('zed-4711');
SELECT member_id = :'pseudonym' AS own, kind, points, ref = 'referral:' || :'pseudonym' || ':' || split_part(ref, ':', 3) AS ref_pseudonymised
  FROM loyalty.ledger WHERE program = 'rvm' AND reason LIKE 'referral reward%' AND ref NOT LIKE 'referral:bob:%'
   AND ref NOT LIKE 'referral:dan:%' ORDER BY id;
SELECT check_name FROM loyalty.verify() WHERE NOT ok;
-- A second settle pays nobody again.
SET ROLE loyalty_admin;
SELECT loyalty.settle_referrals('rvm', now() + interval '90 days');
RESET ROLE;
SELECT count(*) AS referral_rewards FROM loyalty.ledger WHERE program = 'rvm' AND reason LIKE 'referral reward%';

-- 3. A consent answer that is not a JSON boolean, given by the application
-- through enroll, is refused; one already stored (written before this
-- version) counts as no answer and breaks no one's view or job.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.enroll('rvm', 'fay', '{"consent": {"profiling": {"granted": "lol"}}}')$$) AS enroll_consent;
SELECT loyalty.enroll('rvm', 'fay', '{"birthday": "1990-01-01"}');
RESET ROLE;
UPDATE loyalty.member SET profile = profile || '{"consent": {"profiling": {"granted": "lol"}, "marketing": {"granted": 7}}}'
 WHERE program = 'rvm' AND member_id = 'fay';
INSERT INTO rvm_orders (id, member, amount) VALUES ('F-1', 'fay', 10);
SELECT loyalty.has_consent('rvm', 'fay', 'profiling') AS profiling, loyalty.has_consent('rvm', 'fay', 'marketing') AS marketing;
SELECT loyalty.score_rfm('rvm', now()) > 0 AS scored;
SET ROLE loyalty_reader;
SELECT CASE WHEN member_id LIKE 'forgotten-%' THEN 'forgotten-...' ELSE member_id END AS member FROM loyalty.member_rfm WHERE program = 'rvm' ORDER BY 1;
RESET ROLE;
SELECT loyalty.set_consent_required('rvm', true);
SELECT loyalty.set_consent('rvm', 'bob', 'profiling', true) ->> 'granted' AS bob_profiling;
SET ROLE loyalty_reader;
SELECT CASE WHEN member_id LIKE 'forgotten-%' THEN 'forgotten-...' ELSE member_id END AS member FROM loyalty.member_rfm WHERE program = 'rvm' ORDER BY 1;
RESET ROLE;

-- 4. The ledger guard lets through only the rewrite it is told of, even
-- for the owner who sets the setting by hand: no other ref, no points.
BEGIN;
SELECT set_config('loyalty.member_rewrite', concat_ws(E'\x1f', 'rvm', 'referrer-eve', 'mallory'), true) IS NOT NULL AS set;
SELECT sqlstate_of($$UPDATE loyalty.ledger SET points = points + 1 WHERE program = 'rvm' AND member_id = 'referrer-eve'$$) AS points;
SELECT count(*) AS eve_rows FROM loyalty.ledger WHERE program = 'rvm' AND member_id = 'referrer-eve';
SELECT sqlstate_of($$UPDATE loyalty.ledger SET ref = 'referral:mallory:x' WHERE program = 'rvm' AND member_id = 'referrer-eve'$$) AS invented_ref;
SELECT sqlstate_of($$UPDATE loyalty.ledger SET member_id = 'mallory', ref = 'x' WHERE program = 'rvm' AND member_id = 'referrer-eve'$$) AS id_and_ref;
SELECT sqlstate_of($$UPDATE loyalty.ledger SET member_id = 'someone' WHERE program = 'rvm' AND member_id = 'referrer-eve'$$) AS other_id;
SELECT sqlstate_of($$DELETE FROM loyalty.ledger WHERE program = 'rvm' AND member_id = 'referrer-eve'$$) AS deleted;
ROLLBACK;

-- 5. A referee sharing its referrer's device (a referral_ring flag about
-- "referral:<referee>") is forgotten, then the shop records another order
-- under the old id: neither the flag's subject nor the new order's
-- signals keep the old id (the signals go to a guest, as the points do).
SELECT loyalty.create_program('rvs', 'USD', 1);
CREATE TABLE rvs_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                         at timestamptz DEFAULT now(), device text);
SELECT loyalty.attach_orders('rvs', 'rvs_orders', 'id', 'member', 'amount', NULL, 'status', NULL, 'at',
                             device_id => 'device');
GRANT SELECT, INSERT, UPDATE, DELETE ON rvs_orders TO loyalty_app;
SET ROLE loyalty_admin;
SELECT loyalty.set_referral_terms('rvs', referrer_points => 10, referee_points => 5);
RESET ROLE;
SET ROLE loyalty_app;
SELECT loyalty.enroll('rvs', 'ringo'), loyalty.enroll('rvs', 'yan-0815');
SELECT loyalty.referral_code('rvs', 'ringo') AS ringo_code \gset
INSERT INTO rvs_orders (id, member, amount, at, device) VALUES ('R-1', 'ringo', 30, now() - interval '3 days', 'dev-1');
SELECT accepted FROM loyalty.refer('rvs', 'yan-0815', :'ringo_code');
INSERT INTO rvs_orders (id, member, amount, device) VALUES ('Y-1', 'yan-0815', 20, 'dev-1');
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.fraud_check('rvs', now() - interval '30 days', now() + interval '1 hour') > 0 AS flagged;
SELECT loyalty.settle_referrals('rvs', now() + interval '60 days');
RESET ROLE;
SELECT rule, subject FROM loyalty.fraud_flag WHERE program = 'rvs' ORDER BY id;
SET ROLE loyalty_admin;
SELECT loyalty.forget_member('rvs', 'yan-0815') IS NOT NULL AS forgotten;
RESET ROLE;
SET ROLE loyalty_app;
INSERT INTO rvs_orders (id, member, amount, device) VALUES ('Y-2', 'yan-0815', 20, 'dev-1');
RESET ROLE;
SELECT * FROM pg_temp.rows_citing('yan-0815');
SELECT order_id, member_id IS NULL AS guest FROM loyalty.order_signal WHERE program = 'rvs' AND order_id = 'Y-2';
SELECT check_name FROM loyalty.verify() WHERE NOT ok;

-- 6. A merged id: enrolling it again would split the person anew (the
-- shop's orders under it go to the member it was merged into, API calls
-- to the new member, and the two could never be merged again); an
-- adjustment replayed under the merged id after the merge is the same call.
SET ROLE loyalty_app;
SELECT loyalty.enroll('rvm', 'gil'), loyalty.enroll('rvm', 'hub');
RESET ROLE;
SET ROLE loyalty_admin;
SELECT loyalty.adjust('rvm', 'gil', 7, 'adj-gil', 'goodwill') AS adj_id \gset
SELECT loyalty.adjust('rvm', 'gil', -3, 'adj-gil-back', 'too much') AS back_id \gset
SELECT loyalty.merge_members('rvm', 'gil', 'hub', 'merge-gil-hub') > 0 AS merged;
SELECT loyalty.adjust('rvm', 'gil', 7, 'adj-gil', 'goodwill') = :adj_id AS adjust_replay,
       loyalty.adjust('rvm', 'gil', -3, 'adj-gil-back', 'too much') = :back_id AS take_back_replay,
       loyalty.adjust('rvm', 'hub', 7, 'adj-gil', 'goodwill') = :adj_id AS under_new_id;
-- Another member's call under the ref is a new operation (refs are per member).
SELECT loyalty.adjust('rvm', 'bob', 7, 'adj-gil', 'goodwill') AS bob_adj \gset
SELECT :bob_adj <> :adj_id AS bob_new_row,
       loyalty.adjust('rvm', 'bob', 7, 'adj-gil', 'goodwill') = :bob_adj AS bob_replay;
SELECT balance FROM loyalty.member WHERE program = 'rvm' AND member_id = 'hub';
RESET ROLE;
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.enroll('rvm', 'gil')$$) AS enroll_merged;
RESET ROLE;
SELECT count(*) AS gil_rows FROM loyalty.member WHERE program = 'rvm' AND member_id = 'gil';
SELECT check_name FROM loyalty.verify() WHERE NOT ok;

-- 7. A dead letter of the member whose reason names it (as the accrual
-- trigger writes one for a balance overflow; made by hand here, the
-- overflow needs 2^62 points): forgotten with the member.
SET ROLE loyalty_app;
SELECT loyalty.enroll('rvm', 'kim-2024');
RESET ROLE;
INSERT INTO loyalty.dead_letter (program, event, order_id, member_id, amount, ordered_at, reason, sqlstate)
VALUES ('rvm', 'INSERT', 'K-1', 'kim-2024', 1, now(),
        'member "kim-2024" earning 5 points would hold more than 4611686018427387904', '22003');
SET ROLE loyalty_admin;
SELECT loyalty.forget_member('rvm', 'kim-2024') IS NOT NULL AS forgotten;
RESET ROLE;
SELECT * FROM pg_temp.rows_citing('kim-2024');
SELECT member_id IS NULL AS guest, reason LIKE 'member "forgotten-%" earning 5 points%' AS reason_pseudonymised
  FROM loyalty.dead_letter WHERE program = 'rvm' AND order_id = 'K-1';

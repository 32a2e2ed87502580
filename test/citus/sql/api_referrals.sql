-- Referrals on the cluster: referral codes live in a reference table, the
-- referrals and commissions with each member.  referral_code, refer and
-- settle_referrals run on the coordinator as one distributed transaction;
-- referrers and referees sit on different nodes.  The orders table is
-- distributed by its customer column on the cluster.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT loyalty.create_program('rf', 'USD', 1, 14);
CREATE TABLE rf_orders (id text, who text NOT NULL, total numeric, status text DEFAULT 'paid',
                        refunded numeric DEFAULT 0, at timestamptz, PRIMARY KEY (id, who));
SELECT test_distribute('rf_orders', 'who');
SELECT loyalty.attach_orders('rf', 'rf_orders', 'id', 'who', 'total', status => 'status',
                             refunded_amount => 'refunded', created_at => 'at');
SELECT count(*) FILTER (WHERE loyalty.enroll('rf', 'r' || i)) AS enrolled FROM generate_series(1, 24) i;
SET ROLE loyalty_admin;
SELECT loyalty.set_referral_terms('rf', 100, 50, cap => 3, cap_period => '30 days');
RESET ROLE;
-- Codes: made on first ask, the same after; unknown members and bad input.
SET ROLE loyalty_app;
SELECT loyalty.referral_code('rf', 'r1') AS code1 \gset
SELECT loyalty.referral_code('rf', 'r1') = :'code1' AS stable;
SELECT loyalty.referral_code('rf', 'r2') AS code2 \gset
SELECT :'code1' <> :'code2' AS distinct_codes;
SELECT loyalty.referral_code('rf', 'nobody');
SELECT loyalty.referral_code('rf', NULL);
SELECT loyalty.referral_code(42::text, 'r1');
RESET ROLE;
-- (as the owner: the referrals are dated in the past)
-- r1 refers r3..r8 (the cap of 3 a period counts at settlement), r2 refers r9..r12.
SELECT i, (loyalty.refer('rf', 'r' || i, :'code1', '2026-03-01')).* FROM generate_series(3, 8) i ORDER BY i;
SELECT i, (loyalty.refer('rf', 'r' || i, :'code2', '2026-03-01')).* FROM generate_series(9, 12) i ORDER BY i;
-- Again: a replay; a second referrer; referring oneself; a code that does not exist.
SELECT * FROM loyalty.refer('rf', 'r3', :'code1', '2026-03-01');
SELECT * FROM loyalty.refer('rf', 'r3', :'code2', '2026-03-01');
SELECT * FROM loyalty.refer('rf', 'r1', :'code1', '2026-03-01');
SELECT * FROM loyalty.refer('rf', 'r13', 'AAAA-AAAA-AAAA', '2026-03-01');
SELECT * FROM loyalty.refer('rf', 'nobody', :'code1', '2026-03-01');
-- First orders of the referees, then the settlement after the pending time.
INSERT INTO rf_orders (id, who, total, at) SELECT 'o' || i, 'r' || i, 20 + i, '2026-03-02 10:00+00' FROM generate_series(3, 12) i;
UPDATE rf_orders SET status = 'cancelled' WHERE id = 'o12';
SELECT loyalty.settle_referrals('rf', '2026-03-10') AS settled_early;
SELECT loyalty.settle_referrals('rf', '2026-03-20') AS settled;
SELECT loyalty.settle_referrals('rf', '2026-03-20') AS settled_again;
SELECT member_id, referrer_id, state FROM loyalty.referral WHERE program = 'rf' ORDER BY member_id;
SELECT l.member_id, l.points, l.reason FROM loyalty.ledger l
 WHERE l.program = 'rf' AND l.ref LIKE 'referral%' ORDER BY l.member_id, l.points;
SELECT i, b.available, b.pending FROM generate_series(1, 12) i, loyalty.balance('rf', 'r' || i, '2026-04-01') b ORDER BY i;
-- Bigint twins through the coordinator.
SELECT loyalty.enroll('rf', 9001::bigint);
SELECT loyalty.referral_code('rf', 9001::bigint) IS NOT NULL AS big_code;
SELECT (loyalty.refer('rf', 9002::bigint, loyalty.referral_code('rf', 9001::bigint), '2026-03-01')).accepted AS big_refer;

-- Rewards for points: the catalog (loyalty_admin), claims (loyalty_app)
-- paid through the ledger in one transaction, stock, replays, bad input.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rw_admin;
DROP ROLE IF EXISTS regress_rw_app;
DROP ROLE IF EXISTS regress_rw_bi;
RESET client_min_messages;
CREATE ROLE regress_rw_admin IN ROLE loyalty_admin;
CREATE ROLE regress_rw_app IN ROLE loyalty_app;
CREATE ROLE regress_rw_bi IN ROLE loyalty_reader;

-- The shop's back office: a program, a campaign, members with points.
SET ROLE regress_rw_admin;
SELECT loyalty.create_program('rw', 'USD', 1);
SELECT loyalty.create_campaign('rw', 'rw_gift', 'spend 50 USD get 10 USD off', per_member_limit => 5);
SELECT loyalty.create_campaign('rw', 'rw_other', '10% off');
SELECT loyalty.earn('rw', 'ana', 1000, 'seed-ana', as_of => '2024-01-01') > 0 AS ana_credited;
SELECT loyalty.earn('rw', 'bob', 20, 'seed-bob', as_of => '2024-01-01') > 0 AS bob_credited;
SELECT loyalty.earn('rw', 'cat', 900, 'seed-cat', as_of => '2024-01-01') > 0 AS cat_credited;
SELECT loyalty.set_member_status('rw', 'cat', 'held');

-- The catalog: a tote bag (100 points, 2 in stock) and an unlimited voucher.
SELECT loyalty.create_reward('rw', 'tote', 100, 'rw_gift', 2);
SELECT loyalty.create_reward('rw', 'voucher', 300, 'rw_gift', NULL);
-- The same reward again is fine; with other settings it is not.
SELECT loyalty.create_reward('rw', 'tote', 100, 'rw_gift', 2);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'tote', 150, 'rw_gift', 2)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'tote', 100, 'rw_other', 2)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'tote', 100, 'rw_gift', 3)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'voucher', 300, 'rw_gift', 5)$$);
-- Bad input.
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'mug', 0, 'rw_gift', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'mug', -5, 'rw_gift', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'mug', NULL, 'rw_gift', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'mug', 10, 'rw_gift', -1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'mug', 10, 'no_such_campaign', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'mug', 10, NULL, 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', NULL, 10, 'rw_gift', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', '', 10, 'rw_gift', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward('nope', 'mug', 10, 'rw_gift', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.create_reward(NULL, 'mug', 10, 'rw_gift', 1)$$);
SELECT program, reward, points, campaign, initial_stock, stock, claimed FROM loyalty.reward WHERE program = 'rw' ORDER BY reward;
RESET ROLE;

-- The application claims: ana buys the tote bag for 100 points.
SET ROLE regress_rw_app;
SELECT loyalty.claim_reward('rw', 'ana', 'tote', 'claim-1') AS code1 \gset
SELECT :'code1' ~ '^[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}$' AS code_shaped;
SELECT available FROM loyalty.balance('rw', 'ana');
-- A replay returns the same code and pays nothing again.
SELECT loyalty.claim_reward('rw', 'ana', 'tote', 'claim-1') = :'code1' AS same_code;
SELECT available FROM loyalty.balance('rw', 'ana');
-- The reference belongs to that claim: another reward is LY003.  Another
-- member's claim under it is a new claim (a reference is the member's):
-- bob's fails only because he has 20 points (LY001).
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'voucher', 'claim-1')$$);
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'bob', 'tote', 'claim-1')$$);
-- bob has 20 points: LY001, and nothing changes.
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'bob', 'tote', 'claim-bob')$$);
-- cat is held: LY002.
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'cat', 'tote', 'claim-cat')$$);
-- The last unit, then LY028.
SELECT loyalty.claim_reward('rw', 'ana', 'tote', 'claim-2') <> :'code1' AS another_code;
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'tote', 'claim-3')$$);
SELECT available FROM loyalty.balance('rw', 'ana');
-- Unlimited stock.
SELECT loyalty.claim_reward('rw', 'ana', 'voucher', 'claim-4') IS NOT NULL AS voucher;
-- A reference a plain redemption used is not a claim: LY003, nothing paid.
SELECT loyalty.redeem('rw', 'ana', 1, 'plain-redeem') > 0 AS redeemed;
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'voucher', 'plain-redeem')$$);
-- Bad input.
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'no_such_reward', 'claim-5')$$);
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ghost', 'voucher', 'claim-5')$$);
SELECT sqlstate_of($$SELECT loyalty.claim_reward('nope', 'ana', 'voucher', 'claim-5')$$);
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', NULL, 'voucher', 'claim-5')$$);
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', NULL, 'claim-5')$$);
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'voucher', NULL)$$);
-- The application acts now: a claim dated in the future or the past is LY007.
SELECT left(sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'voucher', 'claim-5', now() + interval '1 day')$$), 5) AS future;
SELECT left(sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'voucher', 'claim-5', now() - interval '1 day')$$), 5) AS past;
-- Configuration is not the application's.
SELECT sqlstate_of($$SELECT loyalty.create_reward('rw', 'mug', 10, 'rw_gift', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.restock_reward('rw', 'tote', 1)$$);
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.reward$$);
RESET ROLE;

-- What the claims did: 2 totes (100 each) and a voucher (300) for ana, so
-- 1000 - 500 - 1 (the plain redemption) = 499 left; one ledger redemption
-- per claim under its reference, one code each, issued to ana from the
-- reward's campaign; bob and cat have no code.
SELECT ref, kind, points FROM loyalty.ledger WHERE program = 'rw' AND kind = 'redeem' ORDER BY id;
SELECT c.member_id, c.ref, c.reward, c.points, l.points AS ledger_points, l.ref = c.ref AS same_ref
  FROM loyalty.reward_claim c JOIN loyalty.ledger l ON l.id = c.ledger_id
 WHERE c.program = 'rw' ORDER BY c.ref;
SELECT k.campaign, k.member_id, c.ref AS claim_ref, loyalty.coupon_code_display(k.code) = c.code AS claim_code
  FROM loyalty.coupon_code k JOIN loyalty.reward_claim c ON c.program = k.program AND 'reward-claim:' || c.ledger_id = k.issued_ref
 WHERE k.program = 'rw' ORDER BY c.ref;
SELECT count(*) AS codes FROM loyalty.coupon_code WHERE program = 'rw';
SELECT reward, stock, claimed FROM loyalty.reward WHERE program = 'rw' ORDER BY reward;
SELECT member_id, balance, lifetime_redeemed FROM loyalty.member WHERE program = 'rw' ORDER BY member_id;

-- Restocking (admin): units added under the reward's lock.
SET ROLE regress_rw_admin;
SELECT loyalty.restock_reward('rw', 'tote', 3);
SELECT sqlstate_of($$SELECT loyalty.restock_reward('rw', 'tote', 0)$$);
SELECT sqlstate_of($$SELECT loyalty.restock_reward('rw', 'tote', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.restock_reward('rw', 'voucher', 1)$$);
SELECT sqlstate_of($$SELECT loyalty.restock_reward('rw', 'no_such_reward', 1)$$);
-- re-creating with the initial stock is still the same reward.
SELECT loyalty.create_reward('rw', 'tote', 100, 'rw_gift', 2);
-- An admin may claim dated in the past (back-office correction).
SELECT loyalty.claim_reward('rw', 'ana', 'tote', 'claim-past', '2024-06-01') IS NOT NULL AS claimed_in_the_past;
SELECT occurred_at FROM loyalty.ledger WHERE program = 'rw' AND ref = 'claim-past';
SELECT k.issued_at FROM loyalty.coupon_code k JOIN loyalty.reward_claim c ON k.issued_ref = 'reward-claim:' || c.ledger_id
 WHERE c.program = 'rw' AND c.ref = 'claim-past';
SELECT reward, stock, claimed FROM loyalty.reward WHERE program = 'rw' ORDER BY reward;
RESET ROLE;

-- BI reads none of it.
SET ROLE regress_rw_bi;
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'ana', 'tote', 'claim-bi')$$);
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.reward_claim$$);
RESET ROLE;

-- Two members, one reference: two claims, each replayed on its own.
SET ROLE regress_rw_admin;
SELECT loyalty.earn('rw', 'dee', 600, 'seed-dee', as_of => '2024-01-01') > 0 AS dee_credited;
RESET ROLE;
SET ROLE regress_rw_app;
SELECT loyalty.claim_reward('rw', 'dee', 'voucher', 'claim-4') AS dee_code \gset
SELECT loyalty.claim_reward('rw', 'dee', 'voucher', 'claim-4') = :'dee_code' AS dee_replay,
       loyalty.claim_reward('rw', 'ana', 'voucher', 'claim-4') <> :'dee_code' AS ana_replay_own_code;
SELECT sqlstate_of($$SELECT loyalty.claim_reward('rw', 'dee', 'tote', 'claim-4')$$) AS dee_other_reward;
RESET ROLE;
SELECT member_id, points, code = :'dee_code' AS dee_code FROM loyalty.reward_claim WHERE program = 'rw' AND ref = 'claim-4' ORDER BY 1;
SELECT member_id, balance FROM loyalty.member WHERE program = 'rw' AND member_id = 'dee';

SELECT check_name FROM loyalty.verify('rw') WHERE NOT ok;
DROP ROLE regress_rw_admin, regress_rw_app, regress_rw_bi;

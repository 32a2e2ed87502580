-- Redemption: soonest-expiring lots first, pending points not spendable,
-- idempotent references, held members, cancellation back to the same lots,
-- and manual credits with loyalty.earn().
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
-- Ledger ids in this file start at 3001, whatever ran before.
SELECT setval('loyalty.ledger_id_seq', 3000) \gset

SELECT loyalty.create_program('spend', 'EUR', 1, 7, '90 days');

-- Manual credits: default reason is an adjustment, a named one an earning.
SELECT loyalty.earn('spend', 'eva', 100, 'gift-1', as_of => '2024-01-01') AS gift_1;
SELECT loyalty.earn('spend', 'eva', 50, 'bday-2024', 'birthday', '2024-01-20') AS bday;
SELECT loyalty.earn('spend', 'eva', 30, 'gift-2', as_of => '2024-02-15') AS gift_2;
SELECT id, kind, points, ref, reason, occurred_at FROM loyalty.ledger WHERE program = 'spend' ORDER BY id;
SELECT id, earned, remaining, available_at, expires_at FROM loyalty.lot WHERE program = 'spend' ORDER BY id;
-- Replaying a credit returns the first id and credits nothing more.
SELECT loyalty.earn('spend', 'eva', 100, 'gift-1', as_of => '2024-01-01') = min(id) AS same_id
  FROM loyalty.ledger WHERE program = 'spend';
SELECT count(*) FROM loyalty.ledger WHERE program = 'spend';

-- As of 2024-02-20: 100 + 50 available, 30 still pending.
SELECT * FROM loyalty.balance('spend', 'eva', '2024-02-20');
SELECT loyalty.redeem('spend', 'eva', 151, 'order-77', '2024-02-20');

-- 120 points come from the lot expiring first (gift-1: 100) then bday (20).
SELECT loyalty.redeem('spend', 'eva', 120, 'order-77', '2024-02-20') AS redeem_id \gset
SELECT l.id, l.earned, l.remaining, l.expires_at FROM loyalty.lot l WHERE program = 'spend' ORDER BY id;
SELECT lot_id, points FROM loyalty.lot_use WHERE ledger_id = :redeem_id ORDER BY lot_id;
SELECT * FROM loyalty.balance('spend', 'eva', '2024-02-20');

-- Replays: the same call returns the same id; another call of the member
-- under the same ref is refused (LY003).  A reference is the member's:
-- another member's call under it is a new operation (someone has nothing
-- to redeem: LY001).
SELECT loyalty.redeem('spend', 'eva', 120, 'order-77', '2024-02-20') = :redeem_id AS same_id;
SELECT loyalty.redeem('spend', 'eva', 10, 'order-77', '2024-02-20');
SELECT loyalty.redeem('spend', 'someone', 120, 'order-77', '2024-02-20');
SELECT loyalty.earn('spend', 'eva', 120, 'order-77');
SELECT count(*) FILTER (WHERE kind = 'redeem') AS redemptions FROM loyalty.ledger WHERE program = 'spend';

-- Cancelling gives the points back to the very lots, with their expiry.
SELECT loyalty.cancel_redemption('spend', 'order-77') AS cancel_id \gset
SELECT loyalty.cancel_redemption('spend', 'order-77') = :cancel_id AS same_id;
SELECT l.id, l.earned, l.remaining, l.expires_at FROM loyalty.lot l WHERE program = 'spend' ORDER BY id;
SELECT kind, points, related_id = :redeem_id AS links_redemption FROM loyalty.ledger WHERE id = :cancel_id;
SELECT available, lifetime_redeemed FROM loyalty.balance('spend', 'eva', '2024-02-20');
SELECT loyalty.cancel_redemption('spend', 'no-such-ref');
SELECT loyalty.cancel_redemption('spend', 'gift-1');

-- Expired lots cannot be spent even before expire_points() runs.
SELECT available, pending FROM loyalty.balance('spend', 'eva', '2024-04-05');
SELECT loyalty.redeem('spend', 'eva', 81, 'late', '2024-04-05');

-- A held member earns but cannot redeem.
SELECT loyalty.set_member_status('spend', 'eva', 'held');
SELECT loyalty.redeem('spend', 'eva', 1, 'while-held', '2024-02-20');
SELECT loyalty.earn('spend', 'eva', 5, 'held-gift', as_of => '2024-02-20') > 0 AS credited;
SELECT loyalty.set_member_status('spend', 'eva', 'active');

-- Unknown members have nothing to spend.
SELECT loyalty.redeem('spend', 'ghost', 1, 'ghost-1', '2024-02-20');

-- Bad input: nothing is written.
SELECT count(*) AS ledger_before FROM loyalty.ledger \gset
SELECT loyalty.redeem('spend', 'eva', 0, 'zero');
SELECT loyalty.redeem('spend', 'eva', -5, 'negative');
SELECT loyalty.redeem('spend', 'eva', NULL, 'null-points');
SELECT loyalty.redeem('spend', 'eva', 5, NULL);
SELECT loyalty.redeem('spend', 'eva', 5, '');
SELECT loyalty.redeem('spend', NULL, 5, 'x');
SELECT loyalty.redeem('nope', 'eva', 5, 'x');
SELECT loyalty.redeem('spend', 'eva', 5, 'x', NULL);
SELECT loyalty.redeem('spend', 'eva', 5, 'x', 'infinity');
SELECT loyalty.earn('spend', 'eva', 0, 'x');
SELECT loyalty.earn('spend', 'eva', 5, NULL);
SELECT loyalty.earn('spend', 'eva', 5, 'x', '');
SELECT loyalty.cancel_redemption('spend', NULL);
SELECT loyalty.cancel_redemption(NULL, 'order-77');
SELECT count(*) = :ledger_before AS nothing_written FROM loyalty.ledger;

SELECT id, kind, points, balance_after, ref FROM loyalty.history('spend', 'eva');
SELECT check_name, ok FROM loyalty.verify('spend');

-- Two members, one reference (program 'refs'): each credit and each
-- redemption is recorded once per member, replays return each member's row.
SELECT loyalty.create_program('refs', 'EUR', 1);
SELECT loyalty.earn('refs', 'ada', 50, 'r-1', as_of => '2024-01-01') AS ada_credit \gset
SELECT loyalty.earn('refs', 'bea', 70, 'r-1', as_of => '2024-01-01') AS bea_credit \gset
SELECT :ada_credit <> :bea_credit AS two_credits,
       loyalty.earn('refs', 'ada', 50, 'r-1', as_of => '2024-01-01') = :ada_credit AS ada_replay,
       loyalty.earn('refs', 'bea', 70, 'r-1', as_of => '2024-01-01') = :bea_credit AS bea_replay;
SELECT loyalty.earn('refs', 'bea', 50, 'r-1', as_of => '2024-01-01');
SELECT loyalty.redeem('refs', 'ada', 20, 'r-2', '2024-02-01') AS ada_redeem \gset
SELECT loyalty.redeem('refs', 'bea', 30, 'r-2', '2024-02-01') AS bea_redeem \gset
SELECT loyalty.redeem('refs', 'ada', 20, 'r-2', '2024-02-01') = :ada_redeem AS ada_replay,
       loyalty.redeem('refs', 'bea', 30, 'r-2', '2024-02-01') = :bea_redeem AS bea_replay;
SELECT loyalty.redeem('refs', 'bea', 20, 'r-2', '2024-02-01');
SELECT member_id, kind, points, ref FROM loyalty.ledger WHERE program = 'refs' ORDER BY member_id, id;
SELECT member_id, balance, lifetime_earned, lifetime_redeemed FROM loyalty.member WHERE program = 'refs' ORDER BY 1;
-- cancel_redemption names no member: a ref two members redeemed under is
-- refused (LY003, nothing written); a ref one member redeemed under
-- cancels it, and a ref that is only another member's credit is no
-- redemption.
SELECT loyalty.cancel_redemption('refs', 'r-2');
SELECT loyalty.redeem('refs', 'bea', 5, 'r-3', '2024-02-01') > 0 AS bea_r3;
SELECT loyalty.cancel_redemption('refs', 'r-3') > 0 AS cancelled;
SELECT member_id, kind, points FROM loyalty.ledger WHERE program = 'refs' AND kind = 'unredeem';
SELECT loyalty.cancel_redemption('refs', 'r-1');
-- One member's credit and another's redemption under one ref: the
-- redemption is the one cancelled.
SELECT loyalty.earn('refs', 'ada', 1, 'r-4', as_of => '2024-02-01') > 0 AS ada_r4;
SELECT loyalty.redeem('refs', 'bea', 2, 'r-4', '2024-02-01') > 0 AS bea_r4;
SELECT loyalty.cancel_redemption('refs', 'r-4') AS r4_cancel \gset
SELECT member_id, kind, points FROM loyalty.ledger WHERE id = :r4_cancel;

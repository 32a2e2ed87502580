-- Holds: a held member's pending points stay pending (frozen lots), every
-- credit it gets meanwhile lands frozen, it cannot redeem; a release gives
-- each lot its own time back.  Expiry still applies while held.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SELECT loyalty.create_program('hold', 'USD', 1, pending_days => 10, expire_after => '100 days');
CREATE TABLE hold_orders (id text PRIMARY KEY, member text, amount numeric, status text DEFAULT 'paid',
                          at timestamptz DEFAULT now());
SELECT loyalty.attach_orders('hold', 'hold_orders', 'id', 'member', 'amount', NULL, 'status', NULL, 'at');
GRANT INSERT, UPDATE ON hold_orders TO loyalty_app;

-- kim: 100 available (ordered 30 days ago), 40 pending (ordered 5 days ago).
INSERT INTO hold_orders (id, member, amount, at) VALUES
    ('H-1', 'kim', 100, now() - interval '30 days'), ('H-2', 'kim', 40, now() - interval '5 days');
SELECT loyalty.enroll('hold', 'lee');
SELECT available, pending FROM loyalty.balance('hold', 'kim');

-- A manual hold (admin): status held, an open hold, the pending lot frozen.
SET ROLE loyalty_admin;
SELECT loyalty.set_member_status('hold', 'kim', 'held');
RESET ROLE;
SELECT status FROM loyalty.member WHERE program = 'hold' AND member_id = 'kim';
SELECT source, held_by, released_at IS NULL AS open, note FROM loyalty.member_hold WHERE program = 'hold' AND member_id = 'kim';
SELECT l.order_id, l.available_at = 'infinity' AS frozen,
       h.available_at = l.expires_at - interval '90 days' AS original_kept
  FROM loyalty.lot l LEFT JOIN loyalty.held_lot h ON h.lot_id = l.id
 WHERE l.program = 'hold' AND l.member_id = 'kim' ORDER BY l.id;
-- Held points show as pending, even when their pending days are over.
SELECT available, pending FROM loyalty.balance('hold', 'kim', now() + interval '20 days');
SELECT available_points, pending_points, status FROM loyalty.member_360 WHERE program = 'hold' AND member_id = 'kim';

-- It cannot redeem (LY002), even what was available before the hold.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT loyalty.redeem('hold', 'kim', 10, 'kim-r1')$$);
-- Every credit meanwhile lands frozen: an order (even one older than the
-- pending days), and an earn.
INSERT INTO hold_orders (id, member, amount, at) VALUES ('H-3', 'kim', 7, now() - interval '50 days');
INSERT INTO hold_orders (id, member, amount) VALUES ('H-4', 'kim', 3), ('H-5', 'lee', 5);
RESET ROLE;
SELECT loyalty.earn('hold', 'kim', 11, 'kim-gift', 'gift') > 0 AS earned;
SELECT coalesce(l.order_id, 'earn') AS credit, l.earned, l.available_at = 'infinity' AS frozen,
       h.available_at IS NOT NULL AS in_held_lot
  FROM loyalty.lot l LEFT JOIN loyalty.held_lot h ON h.lot_id = l.id
 WHERE l.program = 'hold' ORDER BY l.id;
SELECT available, pending FROM loyalty.balance('hold', 'kim');
SELECT * FROM loyalty.verify('hold') WHERE NOT ok;

-- Holding again changes nothing (false); so does set_member_status.
SELECT loyalty.hold_member('hold', 'kim', 'fraud', 'again');
SET ROLE loyalty_admin;
SELECT loyalty.set_member_status('hold', 'kim', 'held');
RESET ROLE;
SELECT count(*) AS holds FROM loyalty.member_hold WHERE program = 'hold' AND member_id = 'kim';

-- Expiry still applies to frozen lots: 200 days on, everything has expired.
BEGIN;
SELECT loyalty.expire_points('hold', now() + interval '200 days') AS expired_later;
SELECT coalesce(l.order_id, 'earn') AS credit, l.remaining FROM loyalty.lot l
 WHERE l.program = 'hold' AND l.member_id = 'kim' ORDER BY l.id;
SELECT * FROM loyalty.verify('hold') WHERE NOT ok;
ROLLBACK;

-- Release (admin, through set_member_status): every frozen lot gets its own
-- time back: H-3's is long past (available at once), H-2's and H-4's and
-- the earn's are still ahead (pending).
SET ROLE loyalty_admin;
SELECT loyalty.set_member_status('hold', 'kim', 'active');
RESET ROLE;
SELECT coalesce(l.order_id, 'earn') AS credit,
       CASE WHEN l.available_at <= now() THEN 'available' WHEN l.available_at < 'infinity' THEN 'pending'
            ELSE 'frozen' END AS state
  FROM loyalty.lot l WHERE l.program = 'hold' AND l.member_id = 'kim' ORDER BY l.id;
SELECT count(*) AS held_lots_left FROM loyalty.held_lot WHERE program = 'hold' AND member_id = 'kim';
SELECT status FROM loyalty.member WHERE program = 'hold' AND member_id = 'kim';
SELECT source, held_by, released_by, released_at IS NOT NULL AS closed, release_note
  FROM loyalty.member_hold WHERE program = 'hold' AND member_id = 'kim';
SELECT available, pending FROM loyalty.balance('hold', 'kim');
SET ROLE loyalty_app;
SELECT loyalty.redeem('hold', 'kim', 107, 'kim-r2') > 0 AS redeemed;
RESET ROLE;
SELECT * FROM loyalty.verify('hold') WHERE NOT ok;
-- Releasing again changes nothing.
SELECT loyalty.release_member('hold', 'kim', 'again');

-- A fraud hold and its release, called as the features call them.
SELECT loyalty.hold_member('hold', 'lee', 'fraud', 'risk 85');
SELECT loyalty.release_member('hold', 'lee', 'flags dismissed');
SELECT member_id, source, note, release_note FROM loyalty.member_hold WHERE program = 'hold' AND member_id = 'lee';
SELECT count(*) AS held_lots_left FROM loyalty.held_lot WHERE program = 'hold' AND member_id = 'lee';

-- A manual hold over a fraud hold replaces it (a review clearing the fraud
-- flags releases only a fraud hold): one open hold, source manual; the
-- fraud hold closed with the reason; the member still held.
SELECT loyalty.hold_member('hold', 'lee', 'fraud', 'risk 90');
SELECT loyalty.set_member_status('hold', 'lee', 'held');
SELECT source, note, released_at IS NULL AS open, release_note FROM loyalty.member_hold
 WHERE program = 'hold' AND member_id = 'lee' ORDER BY id;
SELECT status FROM loyalty.member WHERE program = 'hold' AND member_id = 'lee';
-- A fraud hold over a manual one changes nothing.
SELECT loyalty.hold_member('hold', 'lee', 'fraud', 'risk 95');
SELECT count(*) AS holds, count(*) FILTER (WHERE released_at IS NULL AND source = 'manual') AS open_manual
  FROM loyalty.member_hold WHERE program = 'hold' AND member_id = 'lee';
SELECT loyalty.release_member('hold', 'lee', 'reviewed');

-- A forgotten member cannot be held; forgetting a held member releases it.
SELECT loyalty.hold_member('hold', 'lee', 'manual', NULL);
SELECT loyalty.set_member_status('hold', 'lee', 'forgotten');
SELECT status FROM loyalty.member WHERE program = 'hold' AND member_id = 'lee';
SELECT count(*) FILTER (WHERE released_at IS NULL) AS open_holds FROM loyalty.member_hold WHERE program = 'hold' AND member_id = 'lee';
SELECT sqlstate_of($$SELECT loyalty.hold_member('hold', 'lee', 'manual', NULL)$$);

-- Bad arguments.
SELECT sqlstate_of($$SELECT loyalty.hold_member('hold', 'nobody', 'manual', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.hold_member('nope', 'kim', 'manual', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.hold_member(NULL, 'kim', 'manual', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.hold_member('hold', NULL, 'manual', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.hold_member('hold', 'kim', 'robot', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.hold_member('hold', 'kim', NULL, NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.release_member('hold', 'nobody', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.release_member('hold', '', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.set_member_status('hold', 'nobody', 'held')$$);

-- Internal: neither admins nor the application call them directly.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.hold_member('hold', 'kim', 'manual', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.release_member('hold', 'kim', NULL)$$);
RESET ROLE;
SELECT * FROM loyalty.verify('hold') WHERE NOT ok;

-- verify() proves holds: a frozen lot has its time in held_lot and a held
-- member; a held member has an open hold.  Broken by hand, it says so.
SELECT loyalty.hold_member('hold', 'kim', 'manual', 'for verify');
SELECT check_name, ok FROM loyalty.verify('hold') WHERE check_name = 'holds_consistent';
BEGIN;
DELETE FROM loyalty.held_lot WHERE lot_id = (SELECT min(lot_id) FROM loyalty.held_lot WHERE program = 'hold');
SELECT check_name, ok, detail FROM loyalty.verify('hold') WHERE check_name = 'holds_consistent';
ROLLBACK;
BEGIN;
UPDATE loyalty.member SET status = 'active' WHERE program = 'hold' AND member_id = 'kim';
SELECT check_name, ok, detail FROM loyalty.verify('hold') WHERE check_name = 'holds_consistent';
ROLLBACK;

-- A held member's order reversed (fraud confirmed): taken from its frozen
-- lot; a refund later takes nothing more; the release restores what is left.
INSERT INTO hold_orders (id, member, amount) VALUES ('H-6', 'kim', 25);
SELECT loyalty.reverse_order('hold', 'H-6', 'fraud flag 1');
UPDATE hold_orders SET status = 'refunded' WHERE id = 'H-6';
SELECT kind, points, reason FROM loyalty.ledger WHERE program = 'hold' AND order_id = 'H-6' ORDER BY id;
SELECT loyalty.release_member('hold', 'kim', 'reviewed');
SELECT l.order_id, l.remaining, l.available_at < 'infinity' AS thawed FROM loyalty.lot l
 WHERE l.program = 'hold' AND l.order_id = 'H-6';
SELECT * FROM loyalty.verify('hold') WHERE NOT ok;

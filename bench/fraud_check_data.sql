-- Data of bench/fraud_check.sh: program 'bench', :orders orders of
-- :orders / 10 members over 12 weeks (1 Jan - 25 Mar 2026), written
-- straight into the tables the accrual and signal triggers keep
-- (order_earning, order_signal, ledger, member, member_contact), with the
-- coupon redemptions and referrals the coupon and referral rules read.
-- Generating 10 million orders through the triggers would measure the
-- triggers, not the check.  Fingerprints are hashed once per distinct value
-- with loyalty.signal_hash (the installation's key), as the triggers would.
--
-- Ordinary activity: orders per member skewed (member = floor(M * u^1.5)),
-- amounts 5-500 USD, 5 % partly refunded (30 %), 2 % cancelled, 3 % from an
-- IP abroad; 20 % of members used the first-order coupon WELCOME; 5 % were
-- referred.  Planted, per 10,000 members: 5 bursts of 6 orders in 5
-- minutes, 5 bursts of 6 payments of 2 USD, 10 stolen-card members (IP
-- country never the billing country), 5 members refunding everything, 5
-- earn-and-burn, 10 devices shared by 3 members, 10 emails by 2, 10 cards
-- by 2 coupon users, 5 referrals on the referrer's device and a 3-cycle.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET timezone = 'UTC';
SELECT setseed(0.3);
\set members (:orders / 10)
SELECT loyalty.create_program('bench', 'USD', 1) AS program;
SELECT loyalty.create_campaign('bench', 'welcome', 'first_order | 20% off max 50 USD') AS campaign;
SELECT loyalty.add_code('bench', 'welcome', 'WELCOME') AS code;

-- Each member's own fingerprints (ids of values; hashed below).  Planted
-- sharing: n % 1000 in (1, 2) use the device of n - n % 1000 (3 members);
-- n % 1000 = 3 has the email of n - 1; n % 1000 in (5, 6) are coupon users
-- sharing a card.
CREATE TABLE bench_member AS
SELECT n, 'm' || n AS member_id, (ARRAY['US', 'GB', 'DE', 'FR', 'VN'])[1 + n % 5] AS country,
       CASE WHEN n % 1000 IN (1, 2) THEN n - n % 1000 ELSE n END AS device,
       CASE WHEN n % 1000 = 6 THEN n - 1 ELSE n END AS card,
       n AS address,
       CASE WHEN n % 1000 = 3 THEN n - 1 ELSE n END AS email
  FROM generate_series(1, :members) n;
INSERT INTO loyalty.member (program, member_id, enrolled_at)
SELECT 'bench', member_id, '2025-12-01' FROM bench_member;

-- The hashes: one signal_hash call per distinct value.
CREATE TABLE bench_hash AS
SELECT n,
       loyalty.signal_hash('device_id', 'device-' || n) AS device,
       loyalty.signal_hash('payment_fingerprint', 'card-' || n) AS card,
       loyalty.signal_hash('shipping_address', n || ' Main Street') AS address,
       loyalty.signal_hash('email', 'user' || n || '@mail.example') AS email,
       loyalty.signal_hash('phone', '+1 555 ' || n) AS phone
  FROM generate_series(0, :members) n;
ALTER TABLE bench_hash ADD PRIMARY KEY (n);
-- Both countries hashed under one kind, so that the two can be compared
-- (the signal trigger must do the same for geo_mismatch to work).
CREATE TABLE bench_country AS
SELECT c, loyalty.signal_hash('billing_country', c) AS billing, loyalty.signal_hash('billing_country', c) AS ip
  FROM unnest(ARRAY['US', 'GB', 'DE', 'FR', 'VN', 'NG']) c;
INSERT INTO loyalty.member_contact (program, member_id, kind, key_id, hash)
SELECT 'bench', m.member_id, k.kind, (SELECT id FROM loyalty.signal_key WHERE retired_at IS NULL), k.hash
  FROM bench_member m
  JOIN bench_hash he ON he.n = m.email
  JOIN bench_hash hp ON hp.n = m.n
 CROSS JOIN LATERAL (VALUES ('email', he.email), ('phone', hp.phone)) k(kind, hash);

-- The orders.  plan: 'o' ordinary, 'v' velocity burst, 's' small payments,
-- 'e' the earn of an earn-and-burn.
CREATE UNLOGGED TABLE bench_order AS
SELECT 'o' || g AS order_id, 1 + floor(:members * random() ^ 1.5)::integer AS n,
       timestamptz '2026-01-01' + random() * interval '84 days' AS ordered_at,
       round((5 + random() * 495)::numeric, 2) AS amount, random() AS r
  FROM generate_series(1, :orders) g;
INSERT INTO bench_order
SELECT 'v' || n || '-' || k, n, timestamptz '2026-02-01 10:00' + n % 30 * interval '1 day' + k * interval '1 minute',
       round((20 + random() * 80)::numeric, 2), 0.5
  FROM generate_series(1, :members) n CROSS JOIN generate_series(1, 6) k WHERE n % 2000 = 11;
INSERT INTO bench_order
SELECT 's' || n || '-' || k, n, timestamptz '2026-02-02 03:00' + n % 30 * interval '1 day' + k * interval '8 minutes',
       2.00, 0.5
  FROM generate_series(1, :members) n CROSS JOIN generate_series(1, 6) k WHERE n % 2000 = 12;
INSERT INTO bench_order
SELECT 'e' || n, n, timestamptz '2026-02-03 12:00' + n % 30 * interval '1 day', 1500, 0.5
  FROM generate_series(1, :members) n WHERE n % 2000 = 13;

ALTER TABLE loyalty.order_earning DISABLE TRIGGER USER;
INSERT INTO loyalty.order_earning (program, order_id, member_id, amount, currency, fx_rate, points,
                                   refunded_amount, closed, ordered_at, earned_total)
SELECT 'bench', o.order_id, 'm' || o.n, o.amount, 'USD', 1, floor(o.amount),
       CASE WHEN o.r < 0.05 THEN round(o.amount * 0.3, 2) ELSE 0 END,
       o.r > 0.98 OR o.n % 2000 = 14,            -- n % 2000 = 14: every order cancelled
       o.ordered_at, floor(o.amount)
  FROM bench_order o;
ALTER TABLE loyalty.order_earning ENABLE TRIGGER USER;
INSERT INTO loyalty.order_signal (program, order_id, member_id, ordered_at, key_id, ip, device_id,
                                  payment_fingerprint, shipping_address, billing_country, ip_country)
SELECT 'bench', o.order_id, m.member_id, o.ordered_at, k.id, NULL, hd.device, hc.card, ha.address, c.billing,
       CASE WHEN m.n % 1000 = 7 OR o.r BETWEEN 0.1 AND 0.13 THEN x.ip ELSE c.ip END   -- n % 1000 = 7: stolen card
  FROM bench_order o
  JOIN bench_member m ON m.n = o.n
  JOIN bench_hash hd ON hd.n = m.device
  JOIN bench_hash hc ON hc.n = m.card
  JOIN bench_hash ha ON ha.n = m.address
  JOIN bench_country c ON c.c = m.country
  JOIN bench_country x ON x.c = 'NG'
 CROSS JOIN (SELECT id FROM loyalty.signal_key WHERE retired_at IS NULL) k;
-- Referees order from the referrer's device (n % 2000 = 15 referred by n - 1).
UPDATE loyalty.order_signal s SET device_id = h.device
  FROM bench_hash h
 WHERE s.program = 'bench' AND s.member_id = 'm' || (h.n + 1) AND h.n % 2000 = 14;

-- The ledger: one earn per order, cancelled orders reversed; redemptions:
-- 1 % of members half their points on 20 Mar, the earn-and-burn members
-- 90 % of 1,500 two hours after.
ALTER TABLE loyalty.ledger DISABLE TRIGGER USER;
INSERT INTO loyalty.ledger (program, member_id, kind, points, order_id, occurred_at)
SELECT 'bench', 'm' || n, 'earn', floor(amount), order_id, ordered_at FROM bench_order WHERE floor(amount) > 0;
INSERT INTO loyalty.ledger (program, member_id, kind, points, ref, occurred_at)
SELECT 'bench', 'm' || n, 'redeem', -1350, 'burn-' || n, timestamptz '2026-02-03 14:00' + n % 30 * interval '1 day'
  FROM generate_series(1, :members) n WHERE n % 2000 = 13;
INSERT INTO loyalty.ledger (program, member_id, kind, points, ref, occurred_at)
SELECT 'bench', 'm' || n, 'redeem', -100 - n % 400, 'spend-' || n, '2026-03-20 12:00'
  FROM generate_series(1, :members) n WHERE n % 100 = 50;
ALTER TABLE loyalty.ledger ENABLE TRIGGER USER;

-- WELCOME on the first order of every fifth member and of the card sharers.
INSERT INTO loyalty.coupon_redemption (program, member_id, code, campaign, order_ref, currency, subtotal,
                                       discount, discount_base, redeemed_at)
SELECT DISTINCT ON (o.n) 'bench', 'm' || o.n, 'WELCOME', 'welcome', o.order_id, 'USD', o.amount,
       least(round(o.amount * 0.2, 2), 50), least(round(o.amount * 0.2, 2), 50), o.ordered_at
  FROM bench_order o
 WHERE o.n % 5 = 0 OR o.n % 1000 IN (5, 6)
 ORDER BY o.n, o.ordered_at;
UPDATE loyalty.coupon_campaign c
   SET redeemed_count = (SELECT count(*) FROM loyalty.coupon_redemption r WHERE r.program = c.program AND r.campaign = c.campaign),
       spent_base = (SELECT sum(discount_base) FROM loyalty.coupon_redemption r WHERE r.program = c.program AND r.campaign = c.campaign)
 WHERE c.program = 'bench' AND c.campaign = 'welcome';

-- Referrals: every 20th member referred by the one before it; every 2000th
-- (+15) on the referrer's device (above); m1001 -> m1002 -> m1003 -> m1001.
INSERT INTO loyalty.referral_code (program, member_id, code)
SELECT 'bench', 'm' || n, 'R' || n FROM generate_series(1, :members) n WHERE n % 20 IN (14, 19) OR n BETWEEN 1001 AND 1003;
INSERT INTO loyalty.referral (program, member_id, referrer_id, code, referred_at)
SELECT 'bench', 'm' || n, 'm' || (n - 1), 'R' || (n - 1), '2026-01-02'
  FROM generate_series(1, :members) n WHERE n % 20 IN (0, 15);
INSERT INTO loyalty.referral (program, member_id, referrer_id, code, referred_at)
VALUES ('bench', 'm1002', 'm1001', 'R1001', '2026-01-02'), ('bench', 'm1003', 'm1002', 'R1002', '2026-01-02'),
       ('bench', 'm1001', 'm1003', 'R1003', '2026-01-02')
ON CONFLICT DO NOTHING;

DROP TABLE bench_order;
VACUUM ANALYZE loyalty.member, loyalty.member_contact, loyalty.order_earning, loyalty.order_signal,
               loyalty.ledger, loyalty.coupon_redemption, loyalty.referral;
SELECT (SELECT count(*) FROM loyalty.order_earning WHERE program = 'bench') AS orders,
       (SELECT count(*) FROM loyalty.member WHERE program = 'bench') AS members,
       (SELECT count(*) FROM loyalty.ledger WHERE program = 'bench') AS ledger_rows;

-- A synthetic shop for evaluating loyalty.fraud_check (docs/fraud.md,
-- "Evaluation").  Deterministic: setseed, and every random draw taken in a
-- fixed row order, so a run gives the same members, orders and truth.
--
-- Program 'ev' (USD, 1 point per USD, no pending days, time zone UTC); the
-- shop's own orders table evshop.orders is attached with all six signal
-- columns, so the accrual trigger earns and the signal trigger hashes the
-- signals as a real shop's would.  Activity runs from 5 Jan to 30 Mar 2026;
-- check it with since => '2026-01-01', as_of => '2026-04-01'.
--
-- psql variable fraud_scale (default 1): ordinary members = 400 x scale,
-- planted abusers = 10 x scale per rule (groups for the rules that need
-- several members).  Needs a superuser (past as_of, direct referral rows).
--
-- What it leaves:
--   evshop.member_plan   every member: id, kind (ordinary, abuser, staff)
--   evshop.orders        the shop's orders (the attached table)
--   evshop.truth         the planted (member_id, rule) pairs
\set ON_ERROR_STOP 1
\if :{?fraud_scale}
\else
\set fraud_scale 1
\endif
SET timezone = 'UTC';
SELECT setseed(0.11);

SELECT loyalty.create_program('ev', 'USD', earn_rate => 1, pending_days => 0, timezone => 'UTC') AS program \gset
CREATE SCHEMA evshop;
CREATE TABLE evshop.orders (
    order_no        text PRIMARY KEY,
    member_id       text,
    amount          numeric(12, 2) NOT NULL,
    currency        text NOT NULL DEFAULT 'USD',
    status          text NOT NULL DEFAULT 'paid',
    refunded        numeric(12, 2) NOT NULL DEFAULT 0,
    placed_at       timestamptz NOT NULL,
    ip              inet,
    device          text,
    card            text,
    ship_to         text,
    billing_country text,
    ip_country      text
);
SELECT loyalty.attach_orders('ev', 'evshop.orders', order_id => 'order_no', member_id => 'member_id',
                             amount => 'amount', currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at',
                             ip => 'ip', device_id => 'device', payment_fingerprint => 'card',
                             shipping_address => 'ship_to', billing_country => 'billing_country',
                             ip_country => 'ip_country') IS NOT NULL AS attached;

-- A first-order coupon campaign, open to anyone with the shared code WELCOME.
SELECT loyalty.create_campaign('ev', 'welcome', 'first_order | 20% off max 50 USD', per_member_limit => 1) AS campaign;
SELECT loyalty.add_code('ev', 'welcome', 'WELCOME') AS code;
UPDATE loyalty.coupon_code SET issued_at = '2025-12-01' WHERE program = 'ev' AND campaign = 'welcome';

-- Every member: kind, contact details, home country and own signals.
CREATE TABLE evshop.member_plan (
    member_id   text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('ordinary', 'abuser', 'staff')),
    n           integer NOT NULL,       -- number within its group
    email       text NOT NULL,
    phone       text NOT NULL,
    country     text NOT NULL,
    ip          inet NOT NULL,
    device      text NOT NULL,
    card        text NOT NULL,
    ship_to     text NOT NULL
);
CREATE TABLE evshop.truth (
    member_id   text NOT NULL,
    rule        text NOT NULL,
    PRIMARY KEY (member_id, rule)
);
-- Orders to place: one row each; refund none, part (40 %) or full.
CREATE TABLE evshop.plan_order (
    member_id   text NOT NULL,
    placed_at   timestamptz NOT NULL,
    amount      numeric(12, 2) NOT NULL,
    device      text,
    card        text,
    ship_to     text,
    ip_country  text,
    refund      text NOT NULL DEFAULT 'none' CHECK (refund IN ('none', 'part', 'full', 'status')),
    welcome     boolean NOT NULL DEFAULT false
);

-- Ordinary members o00001...: 3 to 10 orders of 15-200 USD spread over the
-- twelve weeks.  By n % 10: 0-1 households of two (same IP and address),
-- 2-3 couples sharing one device.  By n % 20 the near misses of the rules
-- (below every default threshold): 4 fixes a basket (3 orders in 5
-- minutes), 5 buys 4 coffees in an hour, 6 orders once from abroad, 7
-- twice (of 8 orders), 8 has its smallest order refunded, 9 a 40 % refund,
-- 11 spends 1,200 USD once and redeems 500 points 3 hours later, 12-13
-- redeem half their points at the end, 14-16 use the WELCOME coupon on
-- their first order, 17 refers 18 (an honest referral).
INSERT INTO evshop.member_plan
SELECT 'o' || lpad(n::text, 5, '0'), 'ordinary', n,
       'user' || n || '@mail.example', '+1 555 ' || lpad(n::text, 7, '0'),
       (ARRAY['US', 'GB', 'DE', 'FR', 'VN'])[1 + n % 5],
       CASE WHEN n % 10 < 2 THEN '10.1.0.0'::inet + n / 10 ELSE '10.2.0.0'::inet + n END,
       CASE WHEN n % 10 IN (2, 3) THEN 'dev-couple-' || n / 10 ELSE 'dev-o' || n END,
       'card-o' || n,
       CASE WHEN n % 10 < 2 THEN (n / 10) || ' Household Road, Springfield' ELSE n || ' Main Street, Springfield' END
  FROM generate_series(1, 400 * :fraud_scale) n;

INSERT INTO evshop.plan_order (member_id, placed_at, amount, ip_country, welcome)
SELECT m.member_id,
       timestamptz '2026-01-05' + m.first_day * interval '1 day'
           + (k - 1) * ((84 - m.first_day) / m.orders) * interval '1 day'
           + (8 + floor(random() * 12)) * interval '1 hour' + floor(random() * 60) * interval '1 minute',
       round((15 + random() * 185)::numeric, 2),
       CASE WHEN m.n % 20 = 6 AND k = 2 THEN 'ES'
            WHEN m.n % 20 = 7 AND k IN (3, 6) THEN 'TH' END,
       m.n % 20 IN (14, 15, 16) AND k = 1
  FROM (SELECT p.*, floor(random() * 20)::int AS first_day,
               CASE WHEN p.n % 20 = 7 THEN 8 ELSE 3 + floor(random() * 8)::int END AS orders
          FROM evshop.member_plan p WHERE p.kind = 'ordinary' ORDER BY p.n) m
 CROSS JOIN LATERAL generate_series(1, m.orders) k
 ORDER BY m.n, k;
-- Near misses of velocity and small_payment_burst.
INSERT INTO evshop.plan_order (member_id, placed_at, amount)
SELECT p.member_id,
       CASE WHEN p.n % 20 = 4 THEN timestamptz '2026-02-04 19:00' + (ARRAY[0, 2, 5])[k] * interval '1 minute'
            ELSE timestamptz '2026-02-14 08:00' + (k - 1) * interval '15 minutes' END,
       CASE WHEN p.n % 20 = 4 THEN 30 + k * 10 ELSE 3.50 END
  FROM evshop.member_plan p
 CROSS JOIN generate_series(1, 4) k
 WHERE p.kind = 'ordinary' AND (p.n % 20 = 4 AND k <= 3 OR p.n % 20 = 5);
-- The big spender's one large order (its redemption comes after the insert).
INSERT INTO evshop.plan_order (member_id, placed_at, amount)
SELECT member_id, '2026-03-02 11:00', 1200 FROM evshop.member_plan WHERE kind = 'ordinary' AND n % 20 = 11;
-- Refunds: the smallest order in full (n % 20 = 8), 40 % of the largest (9).
UPDATE evshop.plan_order o SET refund = CASE WHEN p.n % 20 = 8 THEN 'full' ELSE 'part' END
  FROM evshop.member_plan p
 WHERE p.member_id = o.member_id AND p.n % 20 IN (8, 9)
   AND o.amount = (SELECT CASE WHEN p.n % 20 = 8 THEN min(amount) ELSE max(amount) END
                     FROM evshop.plan_order x WHERE x.member_id = o.member_id);

-- Planted abusers: members named by rule and number, own signals unless
-- the abuse is to share them.
INSERT INTO evshop.member_plan
SELECT id, 'abuser', n, 'x-' || id || '@mail.example', '+1 666 ' || lpad(n::text, 4, '0') || lpad(g::text, 3, '0'),
       'US', '10.9.0.0'::inet + 100 * g + n, 'dev-' || id, 'card-' || id, n || ' Abuse Lane ' || g
  FROM (VALUES (1, 'vel', 10), (2, 'spb', 10), (3, 'geo', 10), (4, 'ref', 10), (5, 'eab', 10),
               (6, 'sfd', 12), (7, 'sfc', 6), (8, 'sfa', 3), (9, 'sfe', 6), (10, 'sfp', 4),
               (11, 'cfc', 8), (12, 'cfa', 6), (13, 'rrp', 10), (14, 'rrc', 3)) g(g, prefix, count)
 CROSS JOIN LATERAL generate_series(1, count * CASE WHEN prefix IN ('rrc') THEN 1 ELSE :fraud_scale END) n
 CROSS JOIN LATERAL (SELECT prefix || lpad(n::text, 3, '0') AS id) i;
-- Shared values: devices of rings of 4 (sfd), cards and addresses of
-- rings of 3 (sfc, sfa), one email or phone written differently by a pair
-- (sfe, sfp): the normal forms are equal.
UPDATE evshop.member_plan SET device = 'dev-ring-' || (n + 3) / 4 WHERE member_id LIKE 'sfd%';
UPDATE evshop.member_plan SET card = 'card-ring-' || (n + 2) / 3 WHERE member_id LIKE 'sfc%';
UPDATE evshop.member_plan SET ship_to = CASE WHEN n % 3 = 0 THEN '7 DROP street, Newark' ELSE '7 Drop Street,  Newark' END
                                        || ' ' || (n + 2) / 3
 WHERE member_id LIKE 'sfa%';
UPDATE evshop.member_plan
   SET email = CASE n % 2 WHEN 1 THEN 'anna.lee' || (n + 1) / 2 || '+deals@gmail.com'
                          ELSE ' AnnaLee' || (n + 1) / 2 || '@googlemail.com' END
 WHERE member_id LIKE 'sfe%';
UPDATE evshop.member_plan
   SET phone = CASE n % 2 WHEN 1 THEN '+1 (555) 010-' || lpad(((n + 1) / 2)::text, 4, '0')
                          ELSE '+1555010' || lpad(((n + 1) / 2)::text, 4, '0') END
 WHERE member_id LIKE 'sfp%';
-- Coupon farmers: pairs sharing a card (cfc) or an address (cfa); two
-- members only, below shared_fingerprint's three.
UPDATE evshop.member_plan SET card = 'card-farm-' || (n + 1) / 2 WHERE member_id LIKE 'cfc%';
UPDATE evshop.member_plan SET ship_to = (n + 1) / 2 || ' Farm Road, Dover' WHERE member_id LIKE 'cfa%';
-- Referral pairs (rrp): the referee orders from the referrer's device.
UPDATE evshop.member_plan SET device = 'dev-rrp-' || (n + 1) / 2 WHERE member_id LIKE 'rrp%';

-- Staff: two excluded accounts testing checkout on the shop's kiosk tablet,
-- which one ordinary member also used once (never three members).
INSERT INTO evshop.member_plan
SELECT 'staff' || n, 'staff', n, 'staff' || n || '@shop.example', '+1 777 000000' || n, 'US',
       '10.8.0.1', 'dev-kiosk', 'card-staff', '1 Shop Street, Springfield'
  FROM generate_series(1, 2) n;

-- Orders of the planted abusers.
-- vel: two ordinary orders, then 6 orders 90 s apart (7.5 minutes).
INSERT INTO evshop.plan_order (member_id, placed_at, amount)
SELECT p.member_id,
       CASE WHEN k <= 2 THEN timestamptz '2026-01-10 12:00' + (p.n % 7 + 10 * k) * interval '1 day'
            ELSE timestamptz '2026-02-01 14:00' + (p.n - 1) % 10 * interval '1 day' + (k - 3) * interval '90 seconds' END,
       round((20 + random() * 60)::numeric, 2)
  FROM evshop.member_plan p CROSS JOIN generate_series(1, 8) k
 WHERE p.member_id LIKE 'vel%' ORDER BY p.n, k;
-- spb: two ordinary orders, then 6 payments under 5 USD, 9 minutes apart.
INSERT INTO evshop.plan_order (member_id, placed_at, amount)
SELECT p.member_id,
       CASE WHEN k <= 2 THEN timestamptz '2026-01-12 12:00' + (p.n % 5 + 10 * k) * interval '1 day'
            ELSE timestamptz '2026-02-03 02:00' + (p.n - 1) % 10 * interval '1 day' + (k - 3) * interval '9 minutes' END,
       CASE WHEN k <= 2 THEN round((20 + random() * 60)::numeric, 2) ELSE round((1 + random() * 3.9)::numeric, 2) END
  FROM evshop.member_plan p CROSS JOIN generate_series(1, 8) k
 WHERE p.member_id LIKE 'spb%' ORDER BY p.n, k;
-- geo: billing country US; three of four orders from an IP in another country.
INSERT INTO evshop.plan_order (member_id, placed_at, amount, ip_country)
SELECT p.member_id, timestamptz '2026-02-10 03:00' + (p.n - 1) % 10 * interval '1 day' + k * interval '5 hours',
       round((150 + random() * 350)::numeric, 2),
       CASE WHEN k = 1 THEN NULL ELSE (ARRAY['NG', 'RU', 'BR'])[1 + (p.n + k) % 3] END
  FROM evshop.member_plan p CROSS JOIN generate_series(1, 4) k
 WHERE p.member_id LIKE 'geo%' ORDER BY p.n, k;
-- ref: five orders a week apart; the three largest are refunded in full
-- (two by status, one by amount).
INSERT INTO evshop.plan_order (member_id, placed_at, amount)
SELECT p.member_id, timestamptz '2026-01-15 10:00' + (p.n - 1) % 10 * interval '1 day' + k * interval '7 days',
       round((40 + random() * 120)::numeric, 2)
  FROM evshop.member_plan p CROSS JOIN generate_series(1, 5) k
 WHERE p.member_id LIKE 'ref%' ORDER BY p.n, k;
UPDATE evshop.plan_order o SET refund = CASE WHEN r.rank = 1 THEN 'full' ELSE 'status' END
  FROM (SELECT ctid, rank() OVER (PARTITION BY member_id ORDER BY amount DESC, placed_at) AS rank
          FROM evshop.plan_order WHERE member_id LIKE 'ref%') r
 WHERE o.ctid = r.ctid AND r.rank <= 3;
-- eab: a small order, then one of 1,500-2,500 USD (its points are redeemed
-- within hours, after the insert).
INSERT INTO evshop.plan_order (member_id, placed_at, amount)
SELECT p.member_id,
       CASE k WHEN 1 THEN timestamptz '2026-01-20 10:00' ELSE timestamptz '2026-02-20 10:00' END + (p.n - 1) % 10 * interval '1 day',
       CASE k WHEN 1 THEN 35 ELSE round((1500 + random() * 1000)::numeric, 0) END
  FROM evshop.member_plan p CROSS JOIN generate_series(1, 2) k
 WHERE p.member_id LIKE 'eab%' ORDER BY p.n, k;
-- Shared fingerprints, coupon farmers and referral members: one or two
-- orders each; the farmers' first order uses WELCOME.
INSERT INTO evshop.plan_order (member_id, placed_at, amount, welcome)
SELECT p.member_id, timestamptz '2026-01-25 09:00' + ((p.n - 1) % 12 + 3 * k) * interval '1 day' + p.n * interval '17 minutes',
       round((25 + random() * 100)::numeric, 2),
       k = 1 AND p.member_id ~ '^cf'
  FROM evshop.member_plan p CROSS JOIN generate_series(1, 2) k
 WHERE p.member_id ~ '^(sf|cf|rr)' AND (k = 1 OR p.member_id ~ '^(sfd|rr)') ORDER BY p.member_id, k;
-- Staff test orders on the kiosk: 6 each in 6 minutes (velocity, were they not
-- excluded); and one ordinary member's order there.
INSERT INTO evshop.plan_order (member_id, placed_at, amount)
SELECT 'staff' || (1 + k % 2), timestamptz '2026-03-03 07:00' + k * interval '30 seconds', 1.00
  FROM generate_series(1, 12) k;
INSERT INTO evshop.plan_order (member_id, placed_at, amount, device)
VALUES ('o00007', '2026-03-04 15:30', 42.00, 'dev-kiosk');

-- Enroll every member with email and phone in the profile (loyalty keeps
-- their hashes), exclude the staff.
SELECT count(*) FILTER (WHERE loyalty.enroll('ev', member_id, jsonb_build_object('email', email, 'phone', phone))) AS enrolled
  FROM evshop.member_plan;
SELECT count(*) FILTER (WHERE loyalty.exclude_member('ev', member_id, 'staff test account')) AS excluded
  FROM evshop.member_plan WHERE kind = 'staff';

-- Referrals, before anyone orders: honest ones (ordinary n % 20 = 17
-- refers n + 1), the pairs rrp (odd refers even) through refer(), and a
-- cycle rrc001 -> rrc002 -> rrc003 -> rrc001 written straight into the
-- table, as an import from an earlier system would (refer() refuses cycles).
SELECT count(*) FILTER (WHERE f.accepted) AS referred, count(*) FILTER (WHERE NOT f.accepted) AS refused
  FROM evshop.member_plan r
  JOIN evshop.member_plan e ON e.kind = r.kind AND e.n = r.n + 1 AND left(e.member_id, 3) = left(r.member_id, 3)
 CROSS JOIN LATERAL loyalty.refer('ev', e.member_id, loyalty.referral_code('ev', r.member_id), '2026-01-02') f
 WHERE (r.kind = 'ordinary' AND r.n % 20 = 17) OR (r.member_id LIKE 'rrp%' AND r.n % 2 = 1);
INSERT INTO loyalty.referral (program, member_id, referrer_id, code, referred_at)
SELECT 'ev', e, r, loyalty.referral_code('ev', r), '2026-01-03'
  FROM (VALUES ('rrc002', 'rrc001'), ('rrc003', 'rrc002'), ('rrc001', 'rrc003')) v(e, r);

-- Coupons first (a first order is first only before it is inserted), then
-- the orders in time order: the triggers earn and hash as they arrive.
SELECT count(loyalty.redeem_coupon('ev', 'WELCOME', o.member_id,
                                   jsonb_build_object('currency', 'USD', 'items',
                                       jsonb_build_array(jsonb_build_object('sku', 'S1', 'qty', 1, 'price', o.amount))),
                                   'ord-' || o.member_id || '-' || to_char(o.placed_at, 'YYYYMMDDHH24MISS'), o.placed_at)) AS coupons
  FROM evshop.plan_order o WHERE o.welcome;
INSERT INTO evshop.orders (order_no, member_id, amount, placed_at, ip, device, card, ship_to, billing_country, ip_country)
SELECT 'ord-' || o.member_id || '-' || to_char(o.placed_at, 'YYYYMMDDHH24MISS'), o.member_id, o.amount, o.placed_at,
       p.ip, coalesce(o.device, p.device), coalesce(o.card, p.card), coalesce(o.ship_to, p.ship_to),
       p.country, coalesce(o.ip_country, p.country)
  FROM evshop.plan_order o JOIN evshop.member_plan p USING (member_id)
 ORDER BY o.placed_at, o.member_id;
UPDATE evshop.orders s
   SET refunded = CASE o.refund WHEN 'part' THEN round(s.amount * 0.4, 2) WHEN 'full' THEN s.amount ELSE 0 END,
       status = CASE o.refund WHEN 'status' THEN 'refunded' ELSE s.status END
  FROM evshop.plan_order o
 WHERE o.refund <> 'none' AND s.order_no = 'ord-' || o.member_id || '-' || to_char(o.placed_at, 'YYYYMMDDHH24MISS');

-- Redemptions: eab burns 90 % of the big order's points 1-5 hours later;
-- the big spender 500 points 3 hours after 1,200; n % 20 in (12, 13)
-- half their balance on 31 Mar.
SELECT count(loyalty.redeem('ev', l.member_id, (l.points * 9 / 10)::bigint, 'burn-' || l.member_id,
                            l.occurred_at + (1 + p.n % 5) * interval '1 hour')) AS burns
  FROM loyalty.ledger l JOIN evshop.member_plan p USING (member_id)
 WHERE l.program = 'ev' AND l.kind = 'earn' AND l.points >= 1000 AND p.member_id LIKE 'eab%';
SELECT count(loyalty.redeem('ev', p.member_id, 500, 'spend-' || p.member_id, '2026-03-02 14:00')) AS big_spender_redemptions
  FROM evshop.member_plan p WHERE p.kind = 'ordinary' AND p.n % 20 = 11;
SELECT count(loyalty.redeem('ev', m.member_id, m.balance / 2, 'half-' || m.member_id, '2026-03-31 12:00')) AS half_redemptions
  FROM loyalty.member m JOIN evshop.member_plan p USING (member_id)
 WHERE m.program = 'ev' AND p.kind = 'ordinary' AND p.n % 20 IN (12, 13) AND m.balance >= 2;

-- Referral rewards (100 points to the referrer, 50 to the referee), settled
-- at the end of the period: referral_ring's evidence is the rewards paid.
SELECT loyalty.set_referral_terms('ev', referrer_points => 100, referee_points => 50);
SELECT loyalty.settle_referrals('ev', '2026-03-31 18:00') AS referrals_settled;

-- The truth: every planted (member, rule).
INSERT INTO evshop.truth
SELECT member_id, CASE left(member_id, 3)
                      WHEN 'vel' THEN 'velocity' WHEN 'spb' THEN 'small_payment_burst'
                      WHEN 'geo' THEN 'geo_mismatch' WHEN 'ref' THEN 'refund_ratio' WHEN 'eab' THEN 'earn_burn'
                      WHEN 'cfc' THEN 'coupon_farming' WHEN 'cfa' THEN 'coupon_farming'
                      WHEN 'rrp' THEN 'referral_ring' WHEN 'rrc' THEN 'referral_ring'
                      ELSE 'shared_fingerprint' END
  FROM evshop.member_plan WHERE kind = 'abuser';

-- Data loaded through the API of loyalty 0.1.0, running its own build:
-- two programs, orders through the trigger (bulk and single rows, two
-- tables, a timestamp and a timestamptz column), partial refunds, a cancel,
-- a delete, a status 0.1.0 does not close on, redemptions and a cancelled
-- one, an adjustment, expiry, a dead letter (no FX rate), a held member,
-- RFM scores, a tier ladder with a floor, lifecycle settings.
-- Run by test/upgrade/run.sh as the superuser; each statement must succeed.
\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

CREATE EXTENSION loyalty VERSION '0.1.0';

SELECT loyalty.create_program('shop', base_currency => 'USD', earn_rate => 2,
                              pending_days => 7, expire_after => '1 year',
                              refund_policy => 'debt', timezone => 'Europe/Berlin');
SELECT loyalty.create_program('eu', base_currency => 'EUR', earn_rate => 1,
                              refund_policy => 'within_balance');
SELECT loyalty.set_fx_rate('EUR', 'USD', 1.10);
SELECT loyalty.set_fx_rate('USD', 'EUR', 0.90, now() - interval '3 years');

-- Members with contacts in their profile (0.2.0 hashes them).
SELECT loyalty.enroll('shop', 'm' || i, jsonb_build_object('email', 'm' || i || '@example.com', 'phone', '+49 30 ' || (1000 + i)))
  FROM generate_series(1, 20) i;
SELECT loyalty.enroll('eu', 'e1', '{"email": "E1@Example.com"}');

CREATE TABLE public.orders (
    id          text PRIMARY KEY,
    customer    text NOT NULL,
    total       numeric(12,2) NOT NULL,
    currency    text NOT NULL DEFAULT 'USD',
    status      text NOT NULL DEFAULT 'paid',
    refunded    numeric(12,2) NOT NULL DEFAULT 0,
    placed_at   timestamptz NOT NULL DEFAULT now()
);
SELECT loyalty.attach_orders('shop', 'public.orders', 'id', 'customer', 'total',
                             currency => 'currency', status => 'status',
                             refunded_amount => 'refunded', created_at => 'placed_at');

CREATE TABLE public.eu_orders (
    order_no    bigint PRIMARY KEY,
    member      text NOT NULL,
    amount      numeric NOT NULL,
    created     timestamp NOT NULL
);
SELECT loyalty.attach_orders('eu', 'public.eu_orders', 'order_no', 'member', 'amount',
                             created_at => 'created');

-- A partitioned orders table (0.2.0 also gives its partitions triggers).
SELECT loyalty.create_program('parts', base_currency => 'USD', earn_rate => 1);
CREATE TABLE public.part_orders (
    id          text NOT NULL,
    cust        text NOT NULL,
    amount      numeric NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
) PARTITION BY HASH (id);
CREATE TABLE public.part_orders_0 PARTITION OF public.part_orders FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.part_orders_1 PARTITION OF public.part_orders FOR VALUES WITH (MODULUS 2, REMAINDER 1);
SELECT loyalty.attach_orders('parts', 'public.part_orders', 'id', 'cust', 'amount', created_at => 'at');
INSERT INTO public.part_orders (id, cust, amount, at)
SELECT 'P' || i, 'p' || (i % 7), i, now() - i * interval '1 day' FROM generate_series(1, 60) i;

-- 2,000 orders over two years, in bulk (the statement trigger's batch path).
INSERT INTO public.orders (id, customer, total, currency, placed_at)
SELECT 'B' || i, 'm' || (1 + i % 40), 10 + (i * 37) % 190,
       CASE WHEN i % 10 = 0 THEN 'EUR' ELSE 'USD' END,
       now() - interval '730 days' + i * interval '8 hours'
  FROM generate_series(1, 2000) i;
-- Single rows.
INSERT INTO public.orders (id, customer, total, placed_at) VALUES ('S1', 'm1', 120, now() - interval '3 days');
INSERT INTO public.orders (id, customer, total, placed_at) VALUES ('S2', 'm2', 80, now() - interval '40 days');
INSERT INTO public.orders (id, customer, total, placed_at) VALUES ('S3', 'm3', 55.50, now() - interval '20 days');
INSERT INTO public.orders (id, customer, total, placed_at) VALUES ('S4', 'm4', 99, now() - interval '15 days');
INSERT INTO public.orders (id, customer, total, placed_at) VALUES ('S5', 'm5', 70, now() - interval '10 days');
-- No FX rate from JPY: a dead letter.
INSERT INTO public.orders (id, customer, total, currency, placed_at) VALUES ('J1', 'm6', 5000, 'JPY', now() - interval '5 days');
INSERT INTO public.eu_orders
SELECT i, 'e' || (1 + i % 5), 20 + i, (now() - interval '400 days' + i * interval '2 days')::timestamp
  FROM generate_series(1, 150) i;

-- Refunds, a cancel, a delete, and 'chargeback', which 0.1.0 does not close on.
UPDATE public.orders SET refunded = 20 WHERE id = 'S2';
UPDATE public.orders SET refunded = total / 2 WHERE id IN ('B1990', 'B1991', 'B1992');
UPDATE public.orders SET status = 'cancelled' WHERE id = 'S3';
DELETE FROM public.orders WHERE id = 'S4';
UPDATE public.orders SET status = 'chargeback' WHERE id = 'S5';
UPDATE public.eu_orders SET amount = amount - 5 WHERE order_no = 149;

-- Redemptions, one cancelled; an adjustment.
SELECT loyalty.redeem('shop', 'm' || i, 50, 'checkout-' || i) FROM generate_series(1, 10) i;
SELECT loyalty.cancel_redemption('shop', 'checkout-3');
SELECT loyalty.earn('shop', 'm7', 250, 'goodwill-7', 'service apology');
SELECT loyalty.redeem('eu', 'e2', 10, 'eu-checkout-1');

-- Nightly jobs.
SELECT loyalty.expire_points('shop');
SELECT loyalty.score_rfm('shop');
SELECT loyalty.set_tier_ladder('shop', 'basis=spend window=365d grace=30d | Member 0 x1 | Silver 500 x1.25 | Gold 2000 x1.5');
SELECT loyalty.recalculate_tiers('shop');
SELECT loyalty.set_tier_floor('shop', 'm20', 'Gold', now() + interval '90 days');
SELECT loyalty.set_lifecycle('shop', 20, 50, 100, 300);
SELECT loyalty.set_point_value('shop', 0.005);

-- A member held for review (0.1.0 only sets the status) with pending points.
SELECT loyalty.set_member_status('shop', 'm1', 'held');

-- Everything consistent before the update.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM loyalty.verify() WHERE NOT ok) THEN
        RAISE EXCEPTION 'verify() of 0.1.0 is not clean: %',
            (SELECT string_agg(check_name || ': ' || detail, '; ') FROM loyalty.verify() WHERE NOT ok);
    END IF;
    IF (SELECT count(*) FROM loyalty.dead_letter) = 0 THEN
        RAISE EXCEPTION 'the JPY order left no dead letter';
    END IF;
END
$$;

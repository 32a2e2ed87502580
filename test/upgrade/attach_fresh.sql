-- The fresh database gets the programs and orders tables load_0.1.0.sql
-- attached, so that the triggers attach_orders() puts on them can be
-- compared with those the update left on the 0.1.0 ones.
\set ON_ERROR_STOP on
SELECT loyalty.create_program('shop', base_currency => 'USD', earn_rate => 2,
                              pending_days => 7, expire_after => '1 year',
                              refund_policy => 'debt', timezone => 'Europe/Berlin');
SELECT loyalty.create_program('eu', base_currency => 'EUR', earn_rate => 1,
                              refund_policy => 'within_balance');
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

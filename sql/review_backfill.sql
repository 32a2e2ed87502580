-- Review of the back-fill: attacks by a DBA adopting loyalty.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rb_dba;
RESET client_min_messages;
CREATE ROLE regress_rb_dba IN ROLE loyalty_admin;
CREATE SCHEMA rb AUTHORIZATION regress_rb_dba;
SELECT loyalty.create_program('rb_dom', 'USD', 1, 0, NULL);

-- A loyalty_admin's table whose order id is a domain (over a domain) with a
-- CHECK calling the admin's own function.  The back-fill runs as the
-- extension's owner: it must never run that function (it would run with
-- the owner's rights, a superuser's).  The spy records whether it ran as a
-- superuser.
SET ROLE regress_rb_dba;
CREATE TABLE rb.seen (su boolean);
CREATE FUNCTION rb.spy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rb.seen SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
    RETURN true;
END
$$;
CREATE DOMAIN rb.order_no AS bigint CHECK (rb.spy());
CREATE DOMAIN rb.order_no2 AS rb.order_no;
CREATE TABLE rb.orders (id rb.order_no2, member text, total numeric, placed_at timestamptz);
GRANT INSERT ON rb.seen TO PUBLIC;
INSERT INTO rb.orders VALUES (1, 'm1', 10, '2024-01-01'), (2, 'm1', 20, '2024-01-02'),
                             (3, 'm1', 30, '2024-01-02'), (4, 'm2', 40, NULL), (5, 'm2', 50, NULL);
DELETE FROM rb.seen;
SET client_min_messages = error;
SELECT loyalty.attach_orders('rb_dom', 'rb.orders', 'id', 'member', 'total', created_at => 'placed_at');
CALL loyalty.backfill_orders('rb_dom', 'rb.orders', chunk_size => 1);
RESET client_min_messages;
SELECT chunks, orders_done, finished_at IS NOT NULL AS finished FROM loyalty.backfill_run WHERE program = 'rb_dom';
RESET ROLE;
-- The domains' function never ran as a superuser ...
SELECT count(*) FILTER (WHERE su) AS ran_as_superuser FROM rb.seen;
-- ... and every order earned once, in chunks of one.
SELECT member_id, balance FROM loyalty.member WHERE program = 'rb_dom' ORDER BY 1;
SELECT order_id, count(*) FROM loyalty.ledger WHERE program = 'rb_dom' AND kind = 'earn' GROUP BY 1 ORDER BY 1;

-- A shop's table as many are: amounts in integer minor units (cents, and
-- shillings for UGX), a `timestamp` column holding UTC, partitioned, with quotes
-- in its names; the program keeps Tokyo time and expires points after a
-- year.  Orders of 2023-2024 back-filled in chunks of 1 come out as the
-- trigger records them live, and expire_points afterwards expires the same
-- lots as live.
SELECT loyalty.create_program('rb_tokyo_live', 'USD', 1, 0, '1 year', timezone => 'Asia/Tokyo');
SELECT loyalty.create_program('rb_tokyo_fill', 'USD', 1, 0, '1 year', timezone => 'Asia/Tokyo');
SELECT loyalty.set_fx_rate('UGX', 'USD', 0.007, '2020-01-01');
SET ROLE regress_rb_dba;
CREATE TABLE rb."Or""ders; x" ("I""d" bigint, "Mem ber" text, "cents'" bigint, cur text, "at" timestamp)
    PARTITION BY RANGE ("at");
CREATE TABLE rb.p2023 PARTITION OF rb."Or""ders; x" FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE rb.p2024 PARTITION OF rb."Or""ders; x" FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE rb.live (LIKE rb."Or""ders; x");
INSERT INTO rb."Or""ders; x"
SELECT g, 'm' || (g % 3), 1000 + g * 37, CASE WHEN g % 4 = 0 THEN 'UGX' ELSE 'USD' END,
       '2023-01-01'::timestamp + g * interval '3 days 5 hours'
  FROM generate_series(1, 200) g;
SET client_min_messages = error;
SELECT loyalty.attach_orders('rb_tokyo_fill', 'rb."Or""ders; x"', 'I"d', 'Mem ber', 'cents''', 'cur',
                             created_at => 'at', amount_unit => 'minor', timestamp_timezone => 'UTC');
SELECT loyalty.attach_orders('rb_tokyo_live', 'rb.live', 'I"d', 'Mem ber', 'cents''', 'cur',
                             created_at => 'at', amount_unit => 'minor', timestamp_timezone => 'UTC');
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM rb."Or""ders; x" ORDER BY "at" LOOP
        INSERT INTO rb.live VALUES (r."I""d", r."Mem ber", r."cents'", r.cur, r."at");
    END LOOP;
END
$$;
CALL loyalty.backfill_orders('rb_tokyo_fill', 'rb."Or""ders; x"', chunk_size => 1);
RESET client_min_messages;
SELECT orders_done, chunks, dead_letters FROM loyalty.backfill_run WHERE program = 'rb_tokyo_fill';
RESET ROLE;
SELECT loyalty.expire_points('rb_tokyo_live') AS live_expired, loyalty.expire_points('rb_tokyo_fill') AS fill_expired;
-- The first order: 1037 cents at 2023-01-04 05:00 UTC.
SELECT order_id, amount, points, ordered_at FROM loyalty.order_earning
 WHERE program = 'rb_tokyo_fill' AND order_id = '1';
-- Every difference between the two books is a row: none.
(SELECT member_id, kind, points, occurred_at, order_id FROM loyalty.ledger WHERE program = 'rb_tokyo_live'
 EXCEPT ALL
 SELECT member_id, kind, points, occurred_at, order_id FROM loyalty.ledger WHERE program = 'rb_tokyo_fill')
UNION ALL
(SELECT member_id, kind, points, occurred_at, order_id FROM loyalty.ledger WHERE program = 'rb_tokyo_fill'
 EXCEPT ALL
 SELECT member_id, kind, points, occurred_at, order_id FROM loyalty.ledger WHERE program = 'rb_tokyo_live');
(SELECT member_id, balance, lifetime_earned FROM loyalty.member WHERE program = 'rb_tokyo_live'
 EXCEPT SELECT member_id, balance, lifetime_earned FROM loyalty.member WHERE program = 'rb_tokyo_fill')
UNION ALL
(SELECT member_id, balance, lifetime_earned FROM loyalty.member WHERE program = 'rb_tokyo_fill'
 EXCEPT SELECT member_id, balance, lifetime_earned FROM loyalty.member WHERE program = 'rb_tokyo_live');
-- ... and there is something to compare: expired and unexpired points.
SELECT kind, count(*), sum(points) FROM loyalty.ledger WHERE program = 'rb_tokyo_fill' GROUP BY 1 ORDER BY 1;

-- earn_from at its exact boundary, for a `timestamp` column in UTC of a
-- Tokyo program: an order at earn_from earns, one a microsecond before is
-- history (read in Tokyo time, both would be before the cut-off).
SELECT loyalty.create_program('rb_cut', 'USD', 1, 0, NULL, timezone => 'Asia/Tokyo');
SET ROLE regress_rb_dba;
CREATE TABLE rb.cut (id int, member text, total numeric, placed_at timestamp);
INSERT INTO rb.cut VALUES (1, 'm1', 10, '2023-12-31 23:59:59.999999'), (2, 'm1', 20, '2024-01-01 00:00:00'),
                          (3, 'm1', 40, '2024-01-01 00:00:00.000001');
SET client_min_messages = error;
SELECT loyalty.attach_orders('rb_cut', 'rb.cut', 'id', 'member', 'total', created_at => 'placed_at',
                             timestamp_timezone => 'UTC');
CALL loyalty.backfill_orders('rb_cut', 'rb.cut', earn_from => '2024-01-01 00:00:00+00', chunk_size => 1);
RESET client_min_messages;
RESET ROLE;
SELECT order_id, ordered_at, points FROM loyalty.order_earning WHERE program = 'rb_cut' ORDER BY order_id;
SELECT balance FROM loyalty.member WHERE program = 'rb_cut';
SELECT check_name FROM loyalty.verify() WHERE NOT ok;

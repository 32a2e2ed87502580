-- Review of the back-fill: attacks by a DBA adopting loyalty.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rb_dba;
RESET client_min_messages;
CREATE ROLE regress_rb_dba IN ROLE loyalty_admin;
CREATE SCHEMA rb AUTHORIZATION regress_rb_dba;
SELECT loyalty.create_program('dom', 'USD', 1, 0, NULL);

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
SELECT loyalty.attach_orders('dom', 'rb.orders', 'id', 'member', 'total', created_at => 'placed_at');
CALL loyalty.backfill_orders('dom', 'rb.orders', chunk_size => 1);
RESET client_min_messages;
SELECT chunks, orders_done, finished_at IS NOT NULL AS finished FROM loyalty.backfill_run WHERE program = 'dom';
RESET ROLE;
-- The domains' function never ran as a superuser ...
SELECT count(*) FILTER (WHERE su) AS ran_as_superuser FROM rb.seen;
-- ... and every order earned once, in chunks of one.
SELECT member_id, balance FROM loyalty.member WHERE program = 'dom' ORDER BY 1;
SELECT order_id, count(*) FROM loyalty.ledger WHERE program = 'dom' AND kind = 'earn' GROUP BY 1 ORDER BY 1;

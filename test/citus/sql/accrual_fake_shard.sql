-- A table that looks like a shard of an attached orders table earns
-- nothing: on a cluster the accrual trigger takes a relation named
-- <table>_<shard id> for that table's shard only when the name is exactly
-- the shard's and its owner is the table's.  Another role that owns a table
-- and may run the trigger function (as the owner of an attached table may)
-- names its own tables after the shards of the shop's orders table: the
-- trigger refuses them as on one node, and the shop's books are unchanged.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT loyalty.create_program('shop', base_currency => 'EUR', earn_rate => 1);
CREATE TABLE orders (id text, customer text NOT NULL, total numeric(12,2),
                     PRIMARY KEY (id, customer));
SELECT test_distribute('orders', 'customer');
SELECT loyalty.attach_orders('shop', 'orders', 'id', 'customer', 'total');
INSERT INTO orders VALUES ('o1', 'ana', 50);
CREATE ROLE fake_owner;
GRANT CREATE, USAGE ON SCHEMA public TO fake_owner;
GRANT USAGE ON SCHEMA loyalty TO fake_owner;
GRANT EXECUTE ON FUNCTION loyalty.orders_trigger() TO fake_owner;
-- The shard id of the orders table on a cluster (any number on one node).
-- The trigger's WARNING names the table, whose shard id differs by run:
-- what counts is that mallory earns nothing.
SET client_min_messages = error;
DO $$
DECLARE
    sid bigint := 102999;
    t text;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_shard') IS NOT NULL THEN
        EXECUTE 'SELECT min(shardid) FROM pg_catalog.pg_dist_shard WHERE logicalrelid = ''orders''::regclass' INTO sid;
    END IF;
    SET LOCAL ROLE fake_owner;
    FOREACH t IN ARRAY ARRAY['fake_' || sid, 'orders_' || sid] LOOP
        EXECUTE format('CREATE TABLE public.%I (id text, customer text, total numeric)', t);
        EXECUTE format('CREATE TRIGGER fake AFTER INSERT ON public.%I REFERENCING NEW TABLE AS loyalty_new_orders '
                       'FOR EACH STATEMENT EXECUTE FUNCTION loyalty.orders_trigger(%L, %L, %L, %L, %L, %L, %L, %L)',
                       t, 'shop', 'id', 'customer', 'total', '', '', '', '');
        BEGIN
            EXECUTE format('INSERT INTO public.%I VALUES (''f1'', ''mallory'', 1000000)', t);
            RAISE NOTICE 'insert into a look-alike of a shard earned';
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'look-alike refused: %', SQLSTATE;
        END;
    END LOOP;
END
$$;
RESET client_min_messages;
SELECT member_id, balance FROM loyalty.member ORDER BY member_id;
SELECT count(*) AS mallory_rows FROM loyalty.ledger WHERE member_id = 'mallory';

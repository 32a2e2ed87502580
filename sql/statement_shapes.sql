-- Orders written every way an application or ETL job writes them: several
-- large statements in one transaction, loops in DO blocks and functions,
-- savepoints rolled back between batches, upserts, MERGE, writable CTEs,
-- COPY, prepared statements, orders written by another table's trigger,
-- delete and re-insert, partitioned tables.  After each shape one checker,
-- written here from the orders alone, must find no difference with what
-- loyalty recorded, and loyalty.verify() must be clean.
-- (Concurrent bulk loads: test/isolation/specs/bulk_load_race.spec.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS loyalty;
RESET client_min_messages;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- The checker.  From an attached table's rows alone, each order should
-- hold floor(amount x earn_rate) points (programs here have no FX, no
-- pending days, no tiers) less floor(points x refunded / amount) for its
-- refund; a closing status (trimmed, any case), a guest, a NULL or zero
-- amount, and a deleted row hold nothing.  An open order whose values the
-- program cannot use (a negative amount or refund, a refund above the
-- amount) is kept aside: loyalty records nothing for it and holds its
-- INSERT in the dead letters.
-- The orders of a program: the rows of its attached tables (partitions
-- are read through their parent), columns as attach_orders mapped them.
CREATE FUNCTION public.shape_orders(prog text)
RETURNS TABLE (order_id text, member_id text, amount numeric, status text, refunded numeric)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record;
    q text := 'SELECT NULL::text, NULL::text, NULL::numeric, NULL::text, NULL::numeric WHERE false';
BEGIN
    FOR s IN SELECT o.* FROM loyalty.order_source o JOIN pg_class c ON c.oid = o.orders
              WHERE o.program = prog AND NOT c.relispartition ORDER BY o.orders::text
    LOOP
        q := q || format(' UNION ALL SELECT %I::text, %I::text, %I::numeric, %s, %s FROM %s',
                         s.order_id_column, s.member_id_column, s.amount_column,
                         CASE WHEN s.status_column IS NULL THEN 'NULL::text'
                              ELSE format('%I::text', s.status_column) END,
                         CASE WHEN s.refunded_amount_column IS NULL THEN 'NULL::numeric'
                              ELSE format('%I::numeric', s.refunded_amount_column) END,
                         s.orders);
    END LOOP;
    RETURN QUERY EXECUTE q;
END
$$;

-- What each order of the table should hold, by the rules above.
CREATE FUNCTION public.shape_expected(prog text)
RETURNS TABLE (order_id text, member_id text, closed boolean, kept_aside boolean, points bigint, net bigint)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT o.order_id, nullif(o.member_id, '') AS member_id, o.amount, o.refunded,
               coalesce(lower(btrim(o.status)) IN ('refunded', 'cancelled', 'canceled', 'returned',
                                                   'chargeback'), false) AS closed
          FROM public.shape_orders(prog) o
    ), o AS (
        SELECT c.*, NOT c.closed AND (c.amount < 0 OR c.refunded < 0 OR c.refunded > c.amount)
                    IS TRUE AS kept_aside
          FROM c
    ), p AS (
        SELECT o.*, CASE WHEN o.closed OR o.kept_aside OR o.member_id IS NULL OR o.amount IS NULL
                              OR o.amount <= 0 THEN 0
                         ELSE floor(o.amount * g.earn_rate)::bigint END AS points
          FROM o, loyalty.program g WHERE g.code = prog
    )
    SELECT order_id, member_id, closed, kept_aside, points,
           points - CASE WHEN points = 0 OR refunded IS NULL OR refunded <= 0 THEN 0
                         WHEN refunded >= amount THEN points
                         ELSE floor(points * refunded / amount)::bigint END
      FROM p
$$;

-- Every difference between the orders and what loyalty holds: per order
-- (state row and ledger), per member (balance and ledger), events left in
-- the dead letters, and the failed checks of loyalty.verify().
-- Expected: no rows.
CREATE FUNCTION public.shape_check(prog text)
RETURNS TABLE (problem text, key text, expected text, actual text)
LANGUAGE sql STABLE AS $$
    WITH x AS (SELECT * FROM public.shape_expected(prog)),
    e AS (SELECT * FROM loyalty.order_earning WHERE program = prog),
    orders AS (
        SELECT coalesce(x.order_id, e.order_id) AS order_id,
               x.order_id IS NOT NULL AS in_table, e.order_id IS NOT NULL AS seen,
               coalesce(x.closed, true) AS closed_x, e.closed AS closed_e,
               coalesce(x.kept_aside, false) AS kept_aside,
               coalesce(x.net, 0) AS net_x, e.earned_total - e.reversed_total AS net_e,
               x.points AS points_x, x.member_id AS member_x, e.member_id AS member_e
          FROM x FULL JOIN e ON e.order_id = x.order_id
    ),
    led_order AS (
        SELECT order_id, sum(points) AS points FROM loyalty.ledger
         WHERE program = prog AND order_id IS NOT NULL GROUP BY 1
    ),
    members AS (
        SELECT coalesce(x.member_id, m.member_id, l.member_id) AS member_id,
               coalesce(x.points, 0) AS points_x, m.balance, coalesce(l.points, 0) AS ledger
          FROM (SELECT member_id, sum(net) AS points FROM x WHERE member_id IS NOT NULL GROUP BY 1) x
          FULL JOIN (SELECT member_id, balance FROM loyalty.member WHERE program = prog) m
                 ON m.member_id = x.member_id
          FULL JOIN (SELECT member_id, sum(points) AS points FROM loyalty.ledger
                      WHERE program = prog GROUP BY 1) l
                 ON l.member_id = coalesce(x.member_id, m.member_id)
    )
    SELECT 'order not seen by loyalty', order_id, 'a state row', NULL FROM orders
     WHERE NOT seen AND NOT kept_aside
    UNION ALL
    SELECT 'order kept aside but recorded', order_id, 'no state row', 'a state row' FROM orders
     WHERE seen AND kept_aside
    UNION ALL
    SELECT 'order kept aside without a dead letter', o.order_id, 'an open letter', NULL FROM orders o
     WHERE o.kept_aside AND NOT EXISTS (SELECT 1 FROM loyalty.dead_letter d
                                          WHERE d.program = prog AND d.order_id = o.order_id
                                            AND d.resolved_at IS NULL)
    UNION ALL
    SELECT 'order net points', order_id, net_x::text, net_e::text FROM orders WHERE seen AND net_x <> net_e
    UNION ALL
    SELECT 'order closed', order_id, closed_x::text, closed_e::text
      FROM orders WHERE seen AND closed_x <> closed_e
    UNION ALL
    SELECT 'order member', order_id, member_x, member_e
      FROM orders WHERE seen AND in_table AND points_x > 0 AND member_x IS DISTINCT FROM member_e
    UNION ALL
    SELECT 'order ledger points', o.order_id, o.net_x::text, coalesce(l.points, 0)::text
      FROM orders o LEFT JOIN led_order l USING (order_id) WHERE o.net_x <> coalesce(l.points, 0)
    UNION ALL
    SELECT 'member balance', member_id, points_x::text, coalesce(balance::text, 'no member row')
      FROM members WHERE points_x <> coalesce(balance, 0) OR (balance IS NULL AND points_x <> 0)
    UNION ALL
    SELECT 'member ledger points', member_id, points_x::text, ledger::text FROM members WHERE points_x <> ledger
    UNION ALL
    SELECT 'dead letter: ' || d.event, d.order_id, NULL, d.reason FROM loyalty.dead_letter d
     WHERE d.program = prog AND d.resolved_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.kept_aside AND o.order_id = d.order_id)
    UNION ALL
    SELECT 'verify: ' || check_name, NULL, 'ok', detail FROM loyalty.verify(prog) WHERE NOT ok
    ORDER BY 1, 2
$$;

-- The differences of shape_check, one row per kind with the first of them:
-- a short diff when a shape fails.
CREATE FUNCTION public.shape_diff(prog text)
RETURNS TABLE (problem text, n bigint, first text)
LANGUAGE sql STABLE AS $$
    SELECT problem, count(*),
           (array_agg(coalesce(key, '') || ': expected ' || coalesce(expected, 'NULL') || ', found '
                      || coalesce(actual, 'NULL') ORDER BY key))[1]
      FROM public.shape_check(prog) GROUP BY 1 ORDER BY 1
$$;

-- What a shape left, to read against the comment of each shape.
CREATE FUNCTION public.shape_totals(prog text)
RETURNS TABLE (orders bigint, open_orders bigint, members bigint, points numeric)
LANGUAGE sql STABLE AS $$
    SELECT count(*), count(*) FILTER (WHERE NOT x.closed),
           (SELECT count(*) FROM loyalty.member m WHERE m.program = prog AND m.balance <> 0),
           (SELECT coalesce(sum(l.points), 0) FROM loyalty.ledger l WHERE l.program = prog)
      FROM public.shape_expected(prog) x
$$;

-- 1. Two INSERT ... SELECT of 50,000 rows each in one transaction (in
-- 0.1.0 this killed the server with SIGSEGV), verbatim.
SELECT loyalty.create_program('p', 'USD', 1, 0, NULL, 'debt', 'UTC');
CREATE TABLE o (id bigint PRIMARY KEY, customer text, total numeric(12,2), status text, created_at timestamptz);
SELECT loyalty.attach_orders('p', 'o', 'id', 'customer', 'total', status => 'status', created_at => 'created_at');
-- scripts/valgrind.sh sets LOYALTY_SHAPES_ROWS to run it with fewer rows
-- (and a small work_mem, so the new rows still spill to disk).
\getenv rows LOYALTY_SHAPES_ROWS
\if :{?rows}
BEGIN;
INSERT INTO o SELECT g, 'c' || (g % 20000), 10, 'paid', now() FROM generate_series(1, :rows) g;
INSERT INTO o SELECT g, 'c' || (g % 20000), 10, 'paid', now() FROM generate_series(:rows + 1, 2 * :rows) g;
COMMIT;
\else
\set rows 50000
BEGIN;
INSERT INTO o SELECT g, 'c' || (g % 20000), 10, 'paid', now() FROM generate_series(1, 50000) g;
INSERT INTO o SELECT g, 'c' || (g % 20000), 10, 'paid', now() FROM generate_series(50001, 100000) g;
COMMIT;
\endif
-- 100,000 orders of 10 points for 20,000 members.
SELECT orders = 2 * :rows AS every_order, members = least(2 * :rows, 20000) AS every_member,
       points = 20 * :rows AS ten_points_each
  FROM shape_totals('p');
SELECT * FROM shape_diff('p');
-- The checker sees what loyalty missed: a refund written with the table's
-- triggers off.
BEGIN;
ALTER TABLE o DISABLE TRIGGER USER;
UPDATE o SET status = 'refunded' WHERE id = 1;
SELECT problem, n FROM shape_diff('p');
ROLLBACK;

-- The other shapes write as a plain writer of the orders tables: no loyalty
-- role, only privileges on its own tables.
CREATE SCHEMA shapes;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'regress_shapes_writer') THEN
        CREATE ROLE regress_shapes_writer;
    END IF;
END
$$;
GRANT USAGE, CREATE ON SCHEMA shapes TO regress_shapes_writer;
SET search_path = shapes, public;

-- Each shape has its own program (earn rate 1.5, no pending days) and table.
CREATE FUNCTION public.shape_table(prog text, tab text, partitioned boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM loyalty.create_program(prog, 'USD', 1.5, 0, NULL, 'debt', 'UTC');
    EXECUTE format('CREATE TABLE shapes.%I (id bigint PRIMARY KEY, customer text, total numeric(12,2),'
                   ' status text NOT NULL DEFAULT ''paid'', refunded numeric(12,2) DEFAULT 0,'
                   ' created_at timestamptz NOT NULL DEFAULT now())%s',
                   tab, CASE WHEN partitioned THEN ' PARTITION BY RANGE (id)' ELSE '' END);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON shapes.%I TO regress_shapes_writer', tab);
    IF NOT partitioned THEN
        PERFORM loyalty.attach_orders(prog, format('shapes.%I', tab)::regclass, 'id', 'customer', 'total',
                                      status => 'status', refunded_amount => 'refunded',
                                      created_at => 'created_at');
    END IF;
END
$$;

-- 1b. The same two large batches from a loop in a DO block and from a
-- plpgsql function (0.1.0 failed there with "could not find block
-- containing chunk" or "relcache reference is not owned by resource owner
-- Portal"), as the plain writer.
SELECT shape_table('s_doloop', 'doloop_orders');
SELECT set_config('shapes.rows', :'rows', false) IS NOT NULL AS rows_set;
SET ROLE regress_shapes_writer;
DO $$
DECLARE
    n int := current_setting('shapes.rows')::int;
BEGIN
    FOR i IN 0..1 LOOP
        INSERT INTO doloop_orders (id, customer, total)
        SELECT g, 'c' || (g % 20000), 10 FROM generate_series(i * n + 1, (i + 1) * n) g;
    END LOOP;
END
$$;
-- The function loads a tenth as many rows, with a small work_mem so that
-- they spill to disk as well.
CREATE FUNCTION shapes.doloop_load(first bigint, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 0..1 LOOP
        INSERT INTO doloop_orders (id, customer, total)
        SELECT g, 'c' || (g % 20000), 10 FROM generate_series(first + i * n, first + (i + 1) * n - 1) g;
    END LOOP;
END
$$;
BEGIN;
SET LOCAL work_mem = '64kB';
SELECT doloop_load(1000001, :rows / 10);
COMMIT;
RESET ROLE;
-- 2 x 1.1 x rows orders of 15 points.
SELECT orders = 2 * (:rows + :rows / 10) AS every_order, points = 30 * (:rows + :rows / 10) AS fifteen_points_each
  FROM shape_totals('s_doloop');
SELECT * FROM shape_diff('s_doloop');

-- 2. Loops: a DO block inserting row by row, then refunding and cancelling
-- row by row; a plpgsql function doing the same, and one that runs two
-- set-based inserts and an update.
SELECT shape_table('s_loop', 'loop_orders');
SET ROLE regress_shapes_writer;
DO $$
BEGIN
    FOR i IN 1..2000 LOOP
        INSERT INTO loop_orders (id, customer, total) VALUES (i, 'm' || (i % 37), (i % 90) + 0.99);
    END LOOP;
    FOR i IN 1..2000 BY 7 LOOP
        UPDATE loop_orders SET refunded = total / 3 WHERE id = i;
    END LOOP;
    FOR i IN 3..2000 BY 11 LOOP
        UPDATE loop_orders SET status = 'Cancelled' WHERE id = i;
    END LOOP;
END
$$;
CREATE FUNCTION shapes.loop_write(first bigint, n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    written bigint := 0;
BEGIN
    FOR i IN first..first + n - 1 LOOP
        INSERT INTO loop_orders (id, customer, total, status)
        VALUES (i, CASE WHEN i % 50 = 0 THEN NULL ELSE 'm' || (i % 41) END, (i % 70) + 0.5,
                CASE WHEN i % 13 = 0 THEN 'refunded' ELSE 'paid' END);
        written := written + 1;
        IF i % 5 = 0 THEN
            UPDATE loop_orders SET refunded = refunded + 0.25 WHERE id = i - 1;
        END IF;
    END LOOP;
    RETURN written;
END
$$;
CREATE FUNCTION shapes.loop_bulk(first bigint, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO loop_orders (id, customer, total)
    SELECT g, 'm' || (g % 43), (g % 60) + 10 FROM generate_series(first, first + n - 1) g;
    INSERT INTO loop_orders (id, customer, total)
    SELECT g, 'm' || (g % 47), (g % 30) + 1 FROM generate_series(first + n, first + 2 * n - 1) g;
    UPDATE loop_orders SET refunded = total WHERE id BETWEEN first AND first + 99;
END
$$;
SELECT loop_write(10001, 2000);
SELECT loop_bulk(20001, 3000);
BEGIN;
SELECT loop_write(30001, 500);
SELECT loop_bulk(40001, 500);
COMMIT;
RESET ROLE;
SELECT * FROM shape_totals('s_loop');
SELECT * FROM shape_diff('s_loop');

-- 3. Savepoints: batch 1 kept, batch 2 rolled back, batch 3 kept; a refund
-- of batch 1 rolled back, a cancel in batch 3 released; a failing block
-- inside a function rolls its inserts back.  Batches 1 and 3 alone earn.
SELECT shape_table('s_save', 'save_orders');
SET ROLE regress_shapes_writer;
BEGIN;
INSERT INTO save_orders (id, customer, total) SELECT g, 'm' || (g % 30), 10 FROM generate_series(1, 2000) g;
SAVEPOINT b2;
INSERT INTO save_orders (id, customer, total) SELECT g, 'm' || (g % 30), 20 FROM generate_series(2001, 4000) g;
UPDATE save_orders SET status = 'cancelled' WHERE id <= 100;
ROLLBACK TO SAVEPOINT b2;
INSERT INTO save_orders (id, customer, total) SELECT g, 'm' || (g % 31), 30 FROM generate_series(4001, 6000) g;
SAVEPOINT r;
UPDATE save_orders SET refunded = 5 WHERE id <= 2000;
ROLLBACK TO SAVEPOINT r;
SAVEPOINT c;
UPDATE save_orders SET status = 'cancelled' WHERE id BETWEEN 4001 AND 4100;
RELEASE SAVEPOINT c;
-- The same ids as the rolled-back batch 2, now for other members: they earn.
SAVEPOINT b4;
INSERT INTO save_orders (id, customer, total) SELECT g, 'n' || (g % 7), 2 FROM generate_series(2001, 2500) g;
RELEASE SAVEPOINT b4;
COMMIT;
DO $$
BEGIN
    BEGIN
        INSERT INTO save_orders (id, customer, total) SELECT g, 'm1', 100 FROM generate_series(7001, 8000) g;
        RAISE EXCEPTION 'abandon the batch';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    INSERT INTO save_orders (id, customer, total) SELECT g, 'm2', 1 FROM generate_series(8001, 8100) g;
END
$$;
RESET ROLE;
-- 2000 x 15 + 1900 x 45 + 500 x 3 + 100 x 1 = 117,100 points;
-- 7001..8000 never happened.
SELECT * FROM shape_totals('s_save');
SELECT count(*) AS rolled_back_ids_seen FROM loyalty.order_earning
 WHERE program = 's_save' AND (order_id::bigint BETWEEN 2501 AND 4000 OR order_id::bigint BETWEEN 7001 AND 8000);
SELECT * FROM shape_diff('s_save');

-- 4. Upserts: ON CONFLICT DO UPDATE changing amount, status and refund of
-- existing orders in the same statement that inserts new ones; DO NOTHING
-- leaves existing orders alone and earns the new ones.
SELECT shape_table('s_upsert', 'upsert_orders');
SET ROLE regress_shapes_writer;
INSERT INTO upsert_orders (id, customer, total) SELECT g, 'm' || (g % 50), 20 FROM generate_series(1, 3000) g;
INSERT INTO upsert_orders AS u (id, customer, total, status, refunded)
SELECT g, 'm' || (g % 50),
       CASE WHEN g % 4 = 0 THEN 40 ELSE 20 END,
       CASE WHEN g % 4 = 1 THEN 'cancelled' ELSE 'paid' END,
       CASE WHEN g % 4 = 2 THEN 5 ELSE 0 END
  FROM generate_series(2001, 5000) g
ON CONFLICT (id) DO UPDATE SET total = excluded.total, status = excluded.status, refunded = excluded.refunded;
INSERT INTO upsert_orders (id, customer, total, status)
SELECT g, 'x' || (g % 5), 999, 'paid' FROM generate_series(4501, 6000) g
ON CONFLICT DO NOTHING;
-- An upsert that moves orders to another member.
INSERT INTO upsert_orders (id, customer, total) SELECT g, 'mover', 20 FROM generate_series(1, 100) g
ON CONFLICT (id) DO UPDATE SET customer = excluded.customer;
RESET ROLE;
SELECT * FROM shape_totals('s_upsert');
SELECT * FROM shape_diff('s_upsert');

-- 5. MERGE: one statement inserts new orders, updates (refunds, new
-- amounts, cancels) and deletes existing ones.
SELECT shape_table('s_merge', 'merge_orders');
CREATE TABLE shapes.merge_feed (id bigint, customer text, total numeric(12,2), status text,
                                refunded numeric(12,2), op text);
GRANT SELECT, INSERT, DELETE ON shapes.merge_feed TO regress_shapes_writer;
SET ROLE regress_shapes_writer;
INSERT INTO merge_orders (id, customer, total) SELECT g, 'm' || (g % 40), 30 FROM generate_series(1, 2000) g;
INSERT INTO merge_feed
SELECT g, 'm' || (g % 40), CASE WHEN g % 5 = 0 THEN 60 ELSE 30 END,
       CASE WHEN g % 5 = 1 THEN 'returned' ELSE 'paid' END,
       CASE WHEN g % 5 = 2 THEN 10 ELSE 0 END,
       CASE WHEN g % 5 = 3 THEN 'delete' ELSE 'upsert' END
  FROM generate_series(1001, 4000) g;
MERGE INTO merge_orders o
USING merge_feed f ON o.id = f.id
WHEN MATCHED AND f.op = 'delete' THEN DELETE
WHEN MATCHED THEN UPDATE SET total = f.total, status = f.status, refunded = f.refunded
WHEN NOT MATCHED AND f.op <> 'delete' THEN
    INSERT (id, customer, total, status, refunded) VALUES (f.id, f.customer, f.total, f.status, f.refunded);
RESET ROLE;
SELECT * FROM shape_totals('s_merge');
SELECT * FROM shape_diff('s_merge');

-- 6. Writable CTEs: an insert whose CTE refunds other orders; an update
-- whose CTE inserts; renumbering orders (delete old ids, insert new ones)
-- in one statement; deleting and inserting the same ids in one statement.
SELECT shape_table('s_cte', 'cte_orders');
SET ROLE regress_shapes_writer;
INSERT INTO cte_orders (id, customer, total) SELECT g, 'm' || (g % 60), 12 FROM generate_series(1, 2000) g;
WITH ins AS (
    INSERT INTO cte_orders (id, customer, total)
    SELECT g, 'm' || (g % 60), 12 FROM generate_series(2001, 3000) g RETURNING id
)
UPDATE cte_orders SET refunded = 6 WHERE id <= (SELECT count(*) FROM ins) / 2;
WITH up AS (
    UPDATE cte_orders SET status = 'canceled' WHERE id BETWEEN 501 AND 700 RETURNING id, customer
)
INSERT INTO cte_orders (id, customer, total) SELECT id + 10000, customer, 8 FROM up;
WITH moved AS (
    DELETE FROM cte_orders WHERE id BETWEEN 1001 AND 1500 RETURNING *
)
INSERT INTO cte_orders (id, customer, total, status, refunded)
SELECT id + 20000, customer, total, status, refunded FROM moved;
WITH gone AS (
    DELETE FROM cte_orders WHERE id BETWEEN 1501 AND 1600 RETURNING *
)
INSERT INTO cte_orders (id, customer, total) SELECT id, 'again', total * 2 FROM gone;
RESET ROLE;
SELECT * FROM shape_totals('s_cte');
SELECT * FROM shape_diff('s_cte');

-- 7. COPY FROM STDIN, text and csv (quoted values, NULLs, refunded and
-- cancelled rows), then a few thousand rows each way through \copy.
SELECT shape_table('s_copy', 'copy_orders');
SET ROLE regress_shapes_writer;
COPY copy_orders (id, customer, total, status, refunded) FROM STDIN;
1	ann	10.00	paid	0
2	bob	20.50	paid	5.25
3	\N	30.00	paid	0
4	ann	40.00	cancelled	0
5	carl	50.00	paid	50.00
6	carl	-5.00	paid	0
7	dora	7.77	REFUNDED	0
8	dora	1000.01	paid	0
\.
COPY copy_orders (id, customer, total, status, refunded) FROM STDIN WITH (FORMAT csv, HEADER true);
id,customer,total,status,refunded
11,"ann, jr.",10.00,paid,0
12,"bob ""b""",20.50,paid,1.00
13,,30.00,paid,0
14,"",31.00,paid,0
15,erin,99.99, cancelled ,0
16,erin,12.34,paid,
\.
COPY (SELECT g, 'm' || (g % 70), (g % 100) + 0.01, CASE WHEN g % 17 = 0 THEN 'cancelled' ELSE 'paid' END,
             CASE WHEN g % 9 = 0 THEN 0.5 ELSE 0 END
        FROM generate_series(1001, 4000) g) TO STDOUT
\g results/statement_shapes_copy.txt
\copy copy_orders (id, customer, total, status, refunded) FROM 'results/statement_shapes_copy.txt'
COPY (SELECT g, 'm' || (g % 71), (g % 100) + 0.02, 'paid', 0 FROM generate_series(5001, 8000) g) TO STDOUT WITH (FORMAT csv)
\g results/statement_shapes_copy.csv
\copy copy_orders (id, customer, total, status, refunded) FROM 'results/statement_shapes_copy.csv' WITH (FORMAT csv)
RESET ROLE;
SELECT * FROM shape_totals('s_copy');
SELECT * FROM shape_diff('s_copy');
-- The rows kept aside: a negative amount, refunds above the amount.
SELECT order_id, sqlstate, reason FROM loyalty.dead_letter
 WHERE program = 's_copy' AND resolved_at IS NULL ORDER BY id;

-- 8. Prepared statements, executed more than five times so later runs use
-- a generic plan (forced as well): single inserts, bulk inserts, refunds.
SELECT shape_table('s_prep', 'prep_orders');
SET ROLE regress_shapes_writer;
PREPARE one_order(bigint, text, numeric) AS
    INSERT INTO prep_orders (id, customer, total) VALUES ($1, $2, $3);
PREPARE bulk_orders(bigint, int, text) AS
    INSERT INTO prep_orders (id, customer, total)
    SELECT g, $3 || (g % 25), (g % 40) + 1 FROM generate_series($1, $1 + $2 - 1) g;
PREPARE refund(bigint, bigint, numeric) AS
    UPDATE prep_orders SET refunded = least(total, refunded + $3) WHERE id BETWEEN $1 AND $2;
EXECUTE one_order(1, 'ann', 10);
EXECUTE one_order(2, 'ann', 11);
EXECUTE one_order(3, 'bob', 12);
EXECUTE one_order(4, 'bob', 13);
EXECUTE one_order(5, 'bob', 14);
EXECUTE one_order(6, 'cy', 15);
EXECUTE one_order(7, 'cy', 16);
EXECUTE one_order(8, 'cy', 17.5);
EXECUTE bulk_orders(1001, 500, 'm');
EXECUTE bulk_orders(2001, 500, 'm');
EXECUTE bulk_orders(3001, 500, 'n');
EXECUTE bulk_orders(4001, 500, 'n');
EXECUTE bulk_orders(5001, 500, 'm');
EXECUTE bulk_orders(6001, 500, 'm');
EXECUTE bulk_orders(7001, 500, 'o');
SET plan_cache_mode = force_generic_plan;
EXECUTE refund(1, 8, 1);
EXECUTE refund(1001, 1100, 2);
EXECUTE refund(1001, 1200, 2);
EXECUTE refund(2001, 2100, 0.5);
EXECUTE refund(3001, 3100, 100);
EXECUTE refund(4001, 4100, 3);
EXECUTE refund(4001, 4100, 3);
EXECUTE bulk_orders(8001, 500, 'p');
EXECUTE one_order(9, 'dee', 19);
RESET plan_cache_mode;
DEALLOCATE ALL;
RESET ROLE;
SELECT * FROM shape_totals('s_prep');
SELECT * FROM shape_diff('s_prep');

-- 9. Orders written by another table's triggers: a checkout row trigger
-- inserts one order per checkout; a checkout statement trigger inserts the
-- orders of a bulk import from its transition table; a checkout status
-- change refunds or cancels its order.
SELECT shape_table('s_nested', 'nested_orders');
CREATE TABLE shapes.checkout (id bigint PRIMARY KEY, buyer text, basket numeric(12,2),
                              state text NOT NULL DEFAULT 'open', bulk boolean NOT NULL DEFAULT false);
GRANT SELECT, INSERT, UPDATE ON shapes.checkout TO regress_shapes_writer;
CREATE FUNCTION shapes.checkout_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NOT NEW.bulk THEN
        INSERT INTO shapes.nested_orders (id, customer, total) VALUES (NEW.id, NEW.buyer, NEW.basket);
    ELSIF TG_OP = 'UPDATE' AND NEW.state = 'refund half' THEN
        UPDATE shapes.nested_orders SET refunded = total / 2 WHERE id = NEW.id;
    ELSIF TG_OP = 'UPDATE' AND NEW.state = 'void' THEN
        UPDATE shapes.nested_orders SET status = 'cancelled' WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION shapes.checkout_bulk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shapes.nested_orders (id, customer, total)
    SELECT id, buyer, basket FROM new_checkouts WHERE bulk;
    RETURN NULL;
END
$$;
CREATE TRIGGER checkout_row AFTER INSERT OR UPDATE ON shapes.checkout
    FOR EACH ROW EXECUTE FUNCTION shapes.checkout_row();
CREATE TRIGGER checkout_bulk AFTER INSERT ON shapes.checkout REFERENCING NEW TABLE AS new_checkouts
    FOR EACH STATEMENT EXECUTE FUNCTION shapes.checkout_bulk();
SET ROLE regress_shapes_writer;
INSERT INTO checkout (id, buyer, basket) SELECT g, 'm' || (g % 33), (g % 20) + 5 FROM generate_series(1, 1500) g;
INSERT INTO checkout (id, buyer, basket, bulk) SELECT g, 'm' || (g % 29), 10, true FROM generate_series(2001, 4000) g;
BEGIN;
INSERT INTO checkout (id, buyer, basket, bulk) SELECT g, 'm' || (g % 33), 3, false FROM generate_series(5001, 5500) g;
INSERT INTO checkout (id, buyer, basket, bulk) SELECT g, 'm' || (g % 29), 4, true FROM generate_series(6001, 6500) g;
UPDATE checkout SET state = 'refund half' WHERE id % 10 = 1;
UPDATE checkout SET state = 'void' WHERE id % 10 = 2;
COMMIT;
RESET ROLE;
SELECT * FROM shape_totals('s_nested');
SELECT * FROM shape_diff('s_nested');

-- 10. Delete and re-insert the same order ids: in separate statements, in
-- one transaction, for another member or amount.  The re-inserted row is
-- a new order and earns; the deleted one holds nothing.
SELECT shape_table('s_reinsert', 'reinsert_orders');
SET ROLE regress_shapes_writer;
INSERT INTO reinsert_orders (id, customer, total) SELECT g, 'm' || (g % 20), 10 FROM generate_series(1, 3000) g;
DELETE FROM reinsert_orders WHERE id <= 1000;
INSERT INTO reinsert_orders (id, customer, total) SELECT g, 'm' || (g % 20), 10 FROM generate_series(1, 500) g;
BEGIN;
DELETE FROM reinsert_orders WHERE id BETWEEN 1001 AND 2000;
INSERT INTO reinsert_orders (id, customer, total) SELECT g, 'r' || (g % 9), 16 FROM generate_series(1001, 2000) g;
COMMIT;
-- A cancelled order deleted and placed again.
UPDATE reinsert_orders SET status = 'cancelled' WHERE id BETWEEN 2001 AND 2100;
DELETE FROM reinsert_orders WHERE id BETWEEN 2001 AND 2100;
INSERT INTO reinsert_orders (id, customer, total) SELECT g, 'm' || (g % 20), 10 FROM generate_series(2001, 2100) g;
RESET ROLE;
-- 500 x 15 (1..500) + 1000 x 24 (1001..2000) + 1000 x 15 (2001..3000) = 46,500.
SELECT * FROM shape_totals('s_reinsert');
SELECT * FROM shape_diff('s_reinsert');

-- 11. A partitioned orders table: rows in every partition, a partition
-- attached later, refunds, cancels and deletes in each partition.
SELECT shape_table('s_part', 'part_orders', partitioned => true);
CREATE TABLE shapes.part_orders_1 PARTITION OF shapes.part_orders FOR VALUES FROM (1) TO (1001);
CREATE TABLE shapes.part_orders_2 PARTITION OF shapes.part_orders FOR VALUES FROM (1001) TO (2001);
CREATE TABLE shapes.part_orders_3 PARTITION OF shapes.part_orders FOR VALUES FROM (2001) TO (3001);
GRANT SELECT, INSERT, UPDATE, DELETE ON shapes.part_orders_1, shapes.part_orders_2, shapes.part_orders_3
   TO regress_shapes_writer;
SELECT loyalty.attach_orders('s_part', 'shapes.part_orders', 'id', 'customer', 'total',
                             status => 'status', refunded_amount => 'refunded', created_at => 'created_at');
SET ROLE regress_shapes_writer;
INSERT INTO part_orders (id, customer, total) SELECT g, 'm' || (g % 25), 20 FROM generate_series(1, 3000) g;
RESET ROLE;
CREATE TABLE shapes.part_orders_4 (LIKE shapes.part_orders INCLUDING DEFAULTS);
ALTER TABLE shapes.part_orders ATTACH PARTITION shapes.part_orders_4 FOR VALUES FROM (3001) TO (4001);
GRANT SELECT, INSERT, UPDATE, DELETE ON shapes.part_orders_4 TO regress_shapes_writer;
SET ROLE regress_shapes_writer;
INSERT INTO part_orders (id, customer, total) SELECT g, 'm' || (g % 25), 20 FROM generate_series(3001, 4000) g;
UPDATE part_orders SET refunded = 5 WHERE id % 1000 BETWEEN 1 AND 100;
UPDATE part_orders SET status = 'cancelled' WHERE id % 1000 BETWEEN 101 AND 200;
DELETE FROM part_orders WHERE id % 1000 BETWEEN 201 AND 300;
-- Writing to a partition directly is the same.
UPDATE part_orders_2 SET refunded = 20 WHERE id BETWEEN 1301 AND 1350;
DELETE FROM part_orders_3 WHERE id BETWEEN 2301 AND 2350;
RESET ROLE;
-- A second table of the program, partitioned by order month: rows move
-- between partitions when their time is corrected (PostgreSQL runs that
-- UPDATE as a delete from one partition and an insert into the other, but
-- it is still one open order); COPY and MERGE route rows to partitions.
CREATE TABLE shapes.part_by_month (id bigint, customer text, total numeric(12,2),
                                   status text NOT NULL DEFAULT 'paid', refunded numeric(12,2) DEFAULT 0,
                                   created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at))
    PARTITION BY RANGE (created_at);
CREATE TABLE shapes.part_by_month_01 PARTITION OF shapes.part_by_month
    FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE shapes.part_by_month_02 PARTITION OF shapes.part_by_month
    FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE TABLE shapes.part_by_month_03 PARTITION OF shapes.part_by_month
    FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
GRANT SELECT, INSERT, UPDATE, DELETE ON shapes.part_by_month TO regress_shapes_writer;
SELECT loyalty.attach_orders('s_part', 'shapes.part_by_month', 'id', 'customer', 'total',
                             status => 'status', refunded_amount => 'refunded', created_at => 'created_at');
SET ROLE regress_shapes_writer;
INSERT INTO part_by_month (id, customer, total, created_at)
SELECT g, 'm' || (g % 25), 20, '2024-01-10' FROM generate_series(10001, 10600) g;
UPDATE part_by_month SET created_at = created_at + interval '31 days' WHERE id BETWEEN 10001 AND 10200;
UPDATE part_by_month SET created_at = '2024-03-15', refunded = 5 WHERE id BETWEEN 10201 AND 10300;
COPY part_by_month (id, customer, total, created_at) FROM STDIN;
10601	m1	20	2024-01-20
10602	m2	20	2024-02-20
10603	m3	20	2024-03-20
\.
MERGE INTO part_by_month o
USING (SELECT g AS id, 'm' || (g % 25) AS customer FROM generate_series(10551, 10650) g) f
   ON o.id = f.id
WHEN MATCHED AND f.id % 2 = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET refunded = 10
WHEN NOT MATCHED THEN INSERT (id, customer, total, created_at) VALUES (f.id, f.customer, 20, '2024-02-29');
RESET ROLE;
-- Per partition: 100 x 23 (refund 5 of 20: 30 - 7) + 700 x 30, less 50
-- refunded in full in partition 2 and 50 deleted in partition 3:
-- 4 x 23,300 - 2 x 50 x 30 = 90,200.  By month: 200 x 30 moved, 100 x 23
-- moved and refunded, 250 x 30 untouched, 25 x 15 refunded by the MERGE
-- (25 deleted), 10601 and 10603 copied and refunded by the MERGE (10602
-- deleted), 47 x 30 inserted by it: 6,000 + 2,300 + 7,500 + 375 + 30 +
-- 1,410 = 17,615.  In all 107,815.
SELECT * FROM shape_totals('s_part');
SELECT * FROM shape_diff('s_part');

-- The orders tables written above, by the plain writer, earned without it
-- holding any right on loyalty's own tables.
SELECT has_table_privilege('regress_shapes_writer', 'loyalty.ledger', 'SELECT') AS writer_reads_ledger,
       has_table_privilege('regress_shapes_writer', 'loyalty.member', 'UPDATE') AS writer_updates_members;

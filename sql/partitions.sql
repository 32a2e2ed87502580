-- Partitioned orders tables: inserts through the parent and straight into
-- any partition earn; refunds, cancels and DELETEs in any partition
-- reverse; an UPDATE that moves a row to another partition keeps its
-- points; partitions created or attached later are covered, detached ones
-- are not; several levels; detach_orders.  The application writes as a
-- plain writer of the orders table; after each step the ledger must hold
-- exactly what the orders say and verify() must be clean.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

SELECT loyalty.create_program('part', 'USD', 1);
DROP ROLE IF EXISTS regress_part_owner;
DROP ROLE IF EXISTS regress_part_writer;
DROP ROLE IF EXISTS regress_part_owner2;
CREATE ROLE regress_part_owner IN ROLE loyalty_admin;
CREATE ROLE regress_part_writer;
GRANT CREATE ON SCHEMA public TO regress_part_owner;

-- The shop's table, by month; March by hash of the id (two levels).
SET ROLE regress_part_owner;
CREATE TABLE part_orders (
    id          bigint,
    customer    text,
    total       numeric(12, 2),
    status      text DEFAULT 'paid',
    refunded    numeric(12, 2) DEFAULT 0,
    created_at  timestamptz,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE part_orders_jan PARTITION OF part_orders FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE part_orders_feb PARTITION OF part_orders FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE TABLE part_orders_mar PARTITION OF part_orders FOR VALUES FROM ('2024-03-01') TO ('2024-04-01')
    PARTITION BY HASH (id);
CREATE TABLE part_orders_mar0 PARTITION OF part_orders_mar FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE part_orders_mar1 PARTITION OF part_orders_mar FOR VALUES WITH (MODULUS 2, REMAINDER 1);

-- A partition cannot be attached on its own: inserts through the parent
-- would not fire its statement trigger.
SELECT loyalty.attach_orders('part', 'part_orders_jan', 'id', 'customer', 'total');
SELECT loyalty.attach_orders('part', 'part_orders', 'id', 'customer', 'total',
                             status => 'status', refunded_amount => 'refunded', created_at => 'created_at');
RESET ROLE;

-- The INSERT statement trigger is on every table an INSERT may name; the
-- UPDATE/DELETE row trigger is cloned to every partition.
CREATE VIEW part_triggers AS
SELECT t.tgrelid::regclass AS rel, t.tgname, t.tgparentid <> 0 AS cloned
  FROM pg_trigger t
 WHERE t.tgfoid = 'loyalty.orders_trigger()'::regprocedure
   AND t.tgrelid::regclass::text LIKE 'part\_orders%'
 ORDER BY 1, 2;
SELECT * FROM part_triggers;

-- What the ledger must hold: each order row its floor(total) points less
-- the refunded share, nothing once cancelled or gone.  Rows that differ:
CREATE FUNCTION part_mismatches() RETURNS TABLE (order_id text, expected bigint, in_ledger bigint)
LANGUAGE sql AS $$
    WITH o AS (
        SELECT id::text AS order_id,
               CASE WHEN customer IS NULL OR status IN ('cancelled', 'refunded') THEN 0
                    ELSE floor(total)::bigint
                         - floor(floor(total) * least(refunded, total) / total)::bigint END AS expected
          FROM part_orders),
    l AS (SELECT l.order_id, sum(l.points)::bigint AS in_ledger
            FROM loyalty.ledger l WHERE l.program = 'part' GROUP BY 1)
    SELECT coalesce(o.order_id, l.order_id), coalesce(o.expected, 0), coalesce(l.in_ledger, 0)
      FROM o FULL JOIN l USING (order_id)
     WHERE coalesce(o.expected, 0) <> coalesce(l.in_ledger, 0)
     ORDER BY 1
$$;
\set books 'SELECT * FROM part_mismatches(); SELECT check_name, detail FROM loyalty.verify(''part'') WHERE NOT ok;'

GRANT SELECT, INSERT, UPDATE, DELETE ON part_orders, part_orders_jan, part_orders_feb,
    part_orders_mar, part_orders_mar0, part_orders_mar1 TO regress_part_writer;

-- Inserts through the parent, rows in every partition; then straight into
-- a leaf, into the March level, into a March leaf, and COPY into a leaf.
SET ROLE regress_part_writer;
INSERT INTO part_orders (id, customer, total, created_at) VALUES
    (1, 'ann', 10, '2024-01-05'), (2, 'bob', 20, '2024-02-05'),
    (3, 'ann', 30, '2024-03-05'), (4, 'bob', 40, '2024-03-06'),
    (5, NULL, 50, '2024-01-07');
INSERT INTO part_orders_jan (id, customer, total, created_at) VALUES
    (6, 'cat', 60, '2024-01-08'), (7, 'ann', 70, '2024-01-09');
INSERT INTO part_orders_mar (id, customer, total, created_at) VALUES
    (8, 'bob', 80, '2024-03-08'), (9, 'cat', 90, '2024-03-09');
INSERT INTO part_orders_mar0 (id, customer, total, created_at)
SELECT id, 'dan', 100, '2024-03-10' FROM (VALUES (10), (11), (12), (13)) v(id)
 WHERE satisfies_hash_partition('part_orders_mar'::regclass, 2, 0, id::bigint);
COPY part_orders_feb (id, customer, total, created_at) FROM STDIN;
14	eve	140	2024-02-14
15	eve	150	2024-02-15
\.
RESET ROLE;
SELECT order_id, member_id, points, closed FROM loyalty.order_earning
 WHERE program = 'part' ORDER BY order_id::bigint;
:books

-- Refund in one partition, cancel in another, DELETE in a March leaf and
-- through the parent: each reverses, the others keep their points.
SET ROLE regress_part_writer;
UPDATE part_orders SET refunded = 5 WHERE id = 1;
UPDATE part_orders_feb SET status = 'cancelled' WHERE id = 2;
DELETE FROM part_orders_mar1 WHERE id = 3;
DELETE FROM part_orders WHERE id = 4;
RESET ROLE;
SELECT order_id, kind, points FROM loyalty.ledger
 WHERE program = 'part' AND kind = 'reverse' ORDER BY id;
SELECT order_id, closed FROM loyalty.order_earning
 WHERE program = 'part' AND order_id IN ('1', '2', '3', '4') ORDER BY 1;
:books

-- A corrected created_at moves the row to another partition (PostgreSQL
-- fires DELETE on the old one and INSERT on the new one): the order keeps
-- its points.  With a refund in the same UPDATE, the refund applies; a
-- move and a cancel together close it.
SET ROLE regress_part_writer;
UPDATE part_orders SET created_at = '2024-02-09' WHERE id = 7;
UPDATE part_orders SET created_at = '2024-01-10', refunded = 40 WHERE id = 8;
UPDATE part_orders SET created_at = '2024-02-10', status = 'cancelled' WHERE id = 9;
UPDATE part_orders_jan SET created_at = created_at WHERE id = 6;   -- no move, no change
RESET ROLE;
SELECT tableoid::regclass AS now_in, id, status, refunded FROM part_orders WHERE id IN (6, 7, 8, 9) ORDER BY id;
SELECT order_id, kind, points FROM loyalty.ledger
 WHERE program = 'part' AND order_id IN ('6', '7', '8', '9') ORDER BY id;
SELECT order_id, closed FROM loyalty.order_earning
 WHERE program = 'part' AND order_id IN ('6', '7', '8', '9') ORDER BY 1;
:books

-- Partitions created and attached later are covered (the owner's DDL,
-- through the event trigger); rows a table held before it was attached
-- predate the attachment and earn nothing.
SET ROLE regress_part_owner;
CREATE TABLE part_orders_apr PARTITION OF part_orders FOR VALUES FROM ('2024-04-01') TO ('2024-05-01');
CREATE TABLE part_orders_may (LIKE part_orders INCLUDING DEFAULTS);
INSERT INTO part_orders_may (id, customer, total, created_at) VALUES (20, 'fay', 200, '2024-05-02');
ALTER TABLE part_orders ATTACH PARTITION part_orders_may FOR VALUES FROM ('2024-05-01') TO ('2024-06-01');
GRANT SELECT, INSERT, UPDATE, DELETE ON part_orders_apr, part_orders_may TO regress_part_writer;
RESET ROLE;
SELECT * FROM part_triggers;
SET ROLE regress_part_writer;
INSERT INTO part_orders (id, customer, total, created_at) VALUES (21, 'fay', 210, '2024-04-21'), (22, 'gus', 220, '2024-05-22');
INSERT INTO part_orders_apr (id, customer, total, created_at) VALUES (23, 'gus', 230, '2024-04-23');
INSERT INTO part_orders_may (id, customer, total, created_at) VALUES (24, 'gus', 240, '2024-05-24');
UPDATE part_orders_apr SET refunded = 105 WHERE id = 21;
DELETE FROM part_orders_may WHERE id = 22;
UPDATE part_orders SET created_at = '2024-04-24' WHERE id = 24;   -- May to April: kept
RESET ROLE;
SELECT order_id, member_id, points, closed FROM loyalty.order_earning
 WHERE program = 'part' AND order_id::bigint >= 20 ORDER BY order_id::bigint;
-- Order 20 predates the attachment: the ledger does not know it.
SELECT order_id, kind, points FROM loyalty.ledger
 WHERE program = 'part' AND order_id::bigint >= 20 ORDER BY id;
SELECT * FROM part_mismatches() WHERE order_id <> '20';
SELECT check_name, detail FROM loyalty.verify('part') WHERE NOT ok;

-- A new owner of the table may create partitions too: the event trigger
-- lets it execute the trigger function, which the partition's clone needs.
CREATE ROLE regress_part_owner2 IN ROLE loyalty_admin;
GRANT CREATE ON SCHEMA public TO regress_part_owner2;
ALTER TABLE part_orders OWNER TO regress_part_owner2;
SELECT has_function_privilege('regress_part_owner2', 'loyalty.orders_trigger()', 'EXECUTE');
SET ROLE regress_part_owner2;
CREATE TABLE part_orders_jun PARTITION OF part_orders FOR VALUES FROM ('2024-06-01') TO ('2024-07-01');
RESET ROLE;
SELECT rel, tgname FROM part_triggers WHERE rel = 'part_orders_jun'::regclass;
ALTER TABLE part_orders OWNER TO regress_part_owner;
DROP TABLE part_orders_jun;
REVOKE EXECUTE ON FUNCTION loyalty.orders_trigger() FROM regress_part_owner2;
REVOKE CREATE ON SCHEMA public FROM regress_part_owner2;
DROP ROLE regress_part_owner2;

-- A detached partition is no longer the shop's orders: it loses both
-- triggers, and what happens in it changes nothing (no WARNING either).
SET ROLE regress_part_owner;
ALTER TABLE part_orders DETACH PARTITION part_orders_may;
INSERT INTO part_orders_may (id, customer, total, created_at) VALUES (25, 'hal', 250, '2024-05-25');
DELETE FROM part_orders_may WHERE id = 20;
RESET ROLE;
SELECT * FROM part_triggers;
SELECT count(*) AS order_25 FROM loyalty.order_earning WHERE program = 'part' AND order_id = '25';
SELECT * FROM part_mismatches() WHERE order_id <> '20';
SELECT check_name, detail FROM loyalty.verify('part') WHERE NOT ok;

-- An attached table cannot become a partition: rows inserted through its
-- new parent would not fire its statement trigger.  The ATTACH PARTITION
-- is refused (attached to the same program, the row triggers' names clash
-- first).
SELECT loyalty.create_program('part_other', 'USD', 1);
SET ROLE regress_part_owner;
SELECT loyalty.attach_orders('part_other', 'part_orders_may', 'id', 'customer', 'total');
ALTER TABLE part_orders ATTACH PARTITION part_orders_may FOR VALUES FROM ('2024-05-01') TO ('2024-06-01');
SELECT loyalty.attach_orders('part', 'part_orders_may', 'id', 'customer', 'total');
ALTER TABLE part_orders ATTACH PARTITION part_orders_may FOR VALUES FROM ('2024-05-01') TO ('2024-06-01');
SELECT loyalty.detach_orders('part', 'part_orders_may');
SELECT loyalty.detach_orders('part_other', 'part_orders_may');
RESET ROLE;

-- detach_orders on the partitioned table removes every trigger, at every level.
SET ROLE regress_part_owner;
SELECT loyalty.detach_orders('part', 'part_orders');
RESET ROLE;
SELECT * FROM part_triggers;
SET ROLE regress_part_writer;
INSERT INTO part_orders (id, customer, total, created_at) VALUES (30, 'ivy', 300, '2024-01-30');
DELETE FROM part_orders_feb WHERE id = 14;
RESET ROLE;
SELECT count(*) AS order_30 FROM loyalty.order_earning WHERE program = 'part' AND order_id = '30';
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'part' AND order_id = '14';
SELECT check_name, detail FROM loyalty.verify('part') WHERE NOT ok;

-- A partition attached with its own column order and a dropped column: its
-- rows are read by column name, and a row moved out of or into it keeps
-- its order (a changed amount in the same UPDATE earns again).
SELECT loyalty.create_program('part_layout', 'USD', 1);
CREATE TABLE part_layout (id text, customer text, total numeric, created_at date,
                          PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE part_layout_jan PARTITION OF part_layout FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
SELECT loyalty.attach_orders('part_layout', 'part_layout', 'id', 'customer', 'total', created_at => 'created_at');
CREATE TABLE part_layout_feb (junk int, created_at date NOT NULL, total numeric, customer text, id text NOT NULL);
ALTER TABLE part_layout_feb DROP COLUMN junk;
ALTER TABLE part_layout ATTACH PARTITION part_layout_feb FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
INSERT INTO part_layout_feb (id, customer, total, created_at) VALUES ('L1', 'kim', 10, '2024-02-02'), ('L2', 'lee', 20, '2024-02-03');
INSERT INTO part_layout VALUES ('L3', 'kim', 30, '2024-01-05');
UPDATE part_layout SET created_at = '2024-01-09', total = 12 WHERE id = 'L1';   -- February to January
UPDATE part_layout SET created_at = '2024-02-09' WHERE id = 'L3';               -- January to February
DELETE FROM part_layout_feb WHERE id = 'L2';
SELECT order_id, member_id, points, closed, generation FROM loyalty.order_earning
 WHERE program = 'part_layout' ORDER BY 1;
SELECT order_id, kind, points FROM loyalty.ledger WHERE program = 'part_layout' ORDER BY id;
SELECT check_name, detail FROM loyalty.verify('part_layout') WHERE NOT ok;
-- TRUNCATE of one partition closes the open orders it held (each partition
-- has the TRUNCATE trigger too); the other partitions' orders stay open.
-- A TRUNCATE of the partitioned table closes the rest.
SELECT tgrelid::regclass, tgname FROM pg_trigger
 WHERE tgname = 'loyalty_truncate_part_layout' ORDER BY 1::text;
TRUNCATE part_layout_feb;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'part_layout' ORDER BY 1;
SELECT member_id, balance FROM loyalty.member WHERE program = 'part_layout' ORDER BY 1;
INSERT INTO part_layout VALUES ('L4', 'lee', 40, '2024-01-20');
TRUNCATE part_layout;
SELECT order_id, closed FROM loyalty.order_earning WHERE program = 'part_layout' ORDER BY 1;
SELECT member_id, balance FROM loyalty.member WHERE program = 'part_layout' ORDER BY 1;
SELECT check_name, detail FROM loyalty.verify('part_layout') WHERE NOT ok;
SELECT loyalty.detach_orders('part_layout', 'part_layout');
SELECT count(*) AS truncate_triggers_left FROM pg_trigger WHERE tgname = 'loyalty_truncate_part_layout';
DROP TABLE part_layout;

DROP TABLE part_orders, part_orders_may;
DROP VIEW part_triggers;
DROP FUNCTION part_mismatches();
REVOKE CREATE ON SCHEMA public FROM regress_part_owner;
-- attach_orders let the owner create partitions (they clone the trigger).
SELECT has_function_privilege('regress_part_owner', 'loyalty.orders_trigger()', 'EXECUTE');
REVOKE EXECUTE ON FUNCTION loyalty.orders_trigger() FROM regress_part_owner;
DROP ROLE regress_part_writer, regress_part_owner;

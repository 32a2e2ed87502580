-- Scale-out on a single node: loyalty.distribute() needs Citus and says so;
-- the cluster layout names every table of the extension exactly once, and
-- the layout's promises hold in the single-node schema (the Citus cluster
-- itself is tested by test/citus/run.sh).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS loyalty;
RESET client_min_messages;
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

-- One node: nothing distributed, not a worker.
SELECT loyalty.distributed() AS distributed, loyalty.on_worker() AS on_worker;

-- Without Citus: LY056, and a hint saying what to do; a bad shard count
-- is not reached before it (Citus is checked first).
SELECT sqlstate_of($$SELECT * FROM loyalty.distribute()$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.distribute(0)$$);
SELECT * FROM loyalty.distribute();

-- Every table of the extension has one place on a cluster, and the layout
-- names no table that does not exist.
SELECT c.relname AS table_without_layout
  FROM pg_class c
 WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname NOT IN (SELECT table_name FROM loyalty.cluster_layout());
SELECT l.table_name AS layout_without_table
  FROM loyalty.cluster_layout() l
 WHERE to_regclass(format('loyalty.%I', l.table_name)) IS NULL;
SELECT table_name, count(*) FROM loyalty.cluster_layout() GROUP BY 1 HAVING count(*) > 1;

-- A member table has a NOT NULL member_id (but the three that distribute()
-- re-keys), and every primary key and unique index of a member table
-- includes it (what Citus requires of a distributed table).
SELECT l.table_name, a.attnotnull AS member_id_not_null
  FROM loyalty.cluster_layout() l
  LEFT JOIN pg_attribute a ON a.attrelid = format('loyalty.%I', l.table_name)::regclass
                          AND a.attname = 'member_id'
 WHERE l.layout = 'member' AND a.attnotnull IS DISTINCT FROM true
 ORDER BY 1;
SELECT k.table_name, k.old_key, k.new_key,
       (SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
         WHERE c.conrelid = format('loyalty.%I', k.table_name)::regclass AND c.contype = 'p') AS key_now
  FROM loyalty.cluster_rekeyed() k ORDER BY 1;
SELECT l.table_name, i.indexrelid::regclass AS unique_index_without_member_id
  FROM loyalty.cluster_layout() l
  JOIN pg_index i ON i.indrelid = format('loyalty.%I', l.table_name)::regclass AND i.indisunique
 WHERE l.layout = 'member'
   AND l.table_name NOT IN (SELECT table_name FROM loyalty.cluster_rekeyed())
   AND NOT EXISTS (SELECT FROM pg_attribute a
                    WHERE a.attrelid = i.indrelid AND a.attname = 'member_id'
                      AND a.attnum = ANY (i.indkey))
 ORDER BY 1, 2;

-- Foreign keys: a member table may point at a reference table; a reference
-- table may not point at a member table (Citus refuses both otherwise).
SELECT c.conrelid::regclass AS from_table, c.confrelid::regclass AS to_table
  FROM pg_constraint c
  JOIN loyalty.cluster_layout() f ON format('loyalty.%I', f.table_name)::regclass = c.conrelid
  JOIN loyalty.cluster_layout() t ON format('loyalty.%I', t.table_name)::regclass = c.confrelid
 WHERE c.contype = 'f' AND f.layout = 'reference' AND t.layout = 'member';

-- The functions distribute() delegates to the member's node: none yet.
-- Citus 13.2.2 crashes the coordinator on a delegated call whose
-- distribution argument is NULL, or that sits in a subquery (the bigint
-- twins' shape), so every member call runs on the coordinator, whose
-- statements each go to the member's node (docs/scale-out.md).  When the
-- list fills, each must take a text member_id.
SELECT d.fn, 'member_id' = ANY (p.proargnames) AS has_member_id,
       p.proargtypes[array_position(p.proargnames, 'member_id') - 1]::regtype AS member_id_type
  FROM loyalty.cluster_delegated() d JOIN pg_proc p ON p.oid = d.fn
 ORDER BY d.fn::text;

-- The DBA's function: nobody else may run it.
SELECT r.rolname, has_function_privilege(r.rolname, 'loyalty.distribute(integer)', 'EXECUTE') AS may_distribute
  FROM pg_roles r WHERE r.rolname IN ('loyalty_admin', 'loyalty_app', 'loyalty_reader') ORDER BY 1;

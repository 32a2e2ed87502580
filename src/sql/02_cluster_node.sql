-- Which kind of node this is: a single PostgreSQL, or a node of a Citus
-- cluster on which loyalty is distributed (94_cluster.sql).  Early in the
-- script: the event trigger of 22_partitions.sql asks already.

-- Whether this database runs loyalty distributed (Citus knows loyalty.member).
CREATE FUNCTION @extschema@.distributed()
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) '@extschema@.member'::pg_catalog.regclass);
END
$$;
COMMENT ON FUNCTION @extschema@.distributed() IS
    'Whether loyalty runs distributed on a Citus cluster (loyalty.distribute() was run)';

-- Whether this node is a Citus worker (not the coordinator): triggers on
-- reference tables fire on every node's copy, and only the coordinator's
-- may write other tables.
CREATE FUNCTION @extschema@.on_worker()
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM pg_catalog.pg_dist_local_group g WHERE g.groupid OPERATOR(pg_catalog.<>) 0);
END
$$;
COMMENT ON FUNCTION @extschema@.on_worker() IS
    'Whether this server is a Citus worker node (false on a single node and on the coordinator)';

-- On a cluster, a call that reads many members' rows and then writes a
-- reference table (a campaign's counters, a referral code) in one
-- transaction must use one connection per node: Citus refuses the write
-- after a parallel read.  Set for the rest of the transaction; nothing on
-- one node.
CREATE FUNCTION @extschema@.cluster_one_connection()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF @extschema@.distributed() THEN
        PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.cluster_one_connection() IS
    'On a Citus cluster: one connection per node for the rest of the transaction (citus.multi_shard_modify_mode sequential), so a write to a reference table may follow reads of many members; nothing on one node; internal';

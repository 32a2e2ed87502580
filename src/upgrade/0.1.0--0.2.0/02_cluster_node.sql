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

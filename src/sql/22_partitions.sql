-- Partitioned orders tables.
--
-- An INSERT fires the statement triggers of the table it names only, so a
-- partitioned orders table has the INSERT statement trigger of
-- attach_orders() on itself and on every partition, at every level (an
-- INSERT may name any of them).  Row triggers (UPDATE, DELETE) PostgreSQL
-- clones to every partition itself.  An event trigger keeps the statement
-- triggers in step when partitions are created, attached or detached.

-- The arguments of a source's triggers: program, then the mapped columns.
CREATE FUNCTION @extschema@.order_trigger_args(src @extschema@.order_source)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT pg_catalog.format('%L, %L, %L, %L, %L, %L, %L, %L',
        src.program, src.order_id_column, src.member_id_column, src.amount_column,
        coalesce(src.currency_column, ''), coalesce(src.status_column, ''),
        coalesce(src.refunded_amount_column, ''), coalesce(src.created_at_column, ''))
$$;
COMMENT ON FUNCTION @extschema@.order_trigger_args(@extschema@.order_source) IS
    'The argument list of the accrual triggers of an order source: program, then the mapped column names ('''' where not mapped)';

-- The name of a program's TRUNCATE trigger (not stored in order_source).
CREATE FUNCTION @extschema@.truncate_trigger_name(program text)
RETURNS name
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.left('loyalty_truncate_' OPERATOR(pg_catalog.||) program, 63)::pg_catalog.name;
COMMENT ON FUNCTION @extschema@.truncate_trigger_name(text) IS
    'The name of the TRUNCATE trigger attach_orders() and sync_partition_triggers() give a program''s orders tables';

CREATE FUNCTION @extschema@.sync_partition_triggers()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    r record;
    src loyalty.order_source;
    keep text[] := '{}';
    changed integer := 0;
BEGIN
    -- An attached table cannot become a partition: inserts through its
    -- parent would not fire its statement trigger and would earn nothing.
    SELECT s.program, s.orders INTO r
      FROM loyalty.order_source s JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.orders
     WHERE c.relispartition LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders table % of program "%" cannot be a partition', r.orders, r.program
            USING ERRCODE = '0A000',
                  DETAIL = 'Rows inserted through its parent table would not fire its accrual trigger.',
                  HINT = 'Detach it with loyalty.detach_orders(), then attach the partitioned table.';
    END IF;

    -- Creating or attaching a partition clones the row trigger, which
    -- PostgreSQL allows only to roles that may execute its function: the
    -- owner of an attached partitioned table may.
    FOR r IN
        SELECT DISTINCT c.relowner::pg_catalog.regrole AS owner
          FROM loyalty.order_source s JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.orders
         WHERE c.relkind OPERATOR(pg_catalog.=) 'p'
           AND NOT pg_catalog.has_function_privilege(c.relowner, 'loyalty.orders_trigger()', 'EXECUTE')
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION loyalty.orders_trigger() TO %s', r.owner);
    END LOOP;

    -- Every partition of an attached partitioned table gets the INSERT and
    -- TRUNCATE statement triggers, and the signal trigger when signals are
    -- mapped (the parent's fire only for statements that name the parent);
    -- a foreign table cannot have them (its rows are elsewhere).  One source
    -- at a time, read into a variable: a whole-row reference to a row of
    -- order_source would not survive Citus (a reference table there, whose
    -- rows it reads as its shard's row type).
    FOR src IN SELECT * FROM loyalty.order_source s ORDER BY s.program, s.orders LOOP
        -- The triggers the attached table and the tables of its tree keep.
        keep := keep OPERATOR(pg_catalog.||) pg_catalog.array_remove(ARRAY[
            pg_catalog.format('%s %s', src.orders::pg_catalog.oid, src.trigger_name),
            pg_catalog.format('%s %s', src.orders::pg_catalog.oid, loyalty.truncate_trigger_name(src.program)),
            CASE WHEN loyalty.source_has_signals(src)
                 THEN pg_catalog.format('%s %s', src.orders::pg_catalog.oid, loyalty.signal_trigger_name(src.program)) END], NULL);
        FOR r IN
            SELECT t.relid AS partition, k.tgname, k.event, k.fn, k.transition, k.args
              FROM (VALUES (src.trigger_name, 'INSERT', 'orders_trigger', 'loyalty_new_orders',
                            loyalty.order_trigger_args(src)),
                           (loyalty.truncate_trigger_name(src.program), 'TRUNCATE', 'orders_trigger', NULL,
                            loyalty.order_trigger_args(src)),
                           (CASE WHEN loyalty.source_has_signals(src) THEN loyalty.signal_trigger_name(src.program) END,
                            'INSERT', 'signal_trigger', 'loyalty_new_signals', loyalty.signal_trigger_args(src)))
                   AS k(tgname, event, fn, transition, args)
             CROSS JOIN LATERAL pg_catalog.pg_partition_tree(src.orders) t
              JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
             WHERE k.tgname IS NOT NULL
               AND c.relkind OPERATOR(pg_catalog.<>) 'f'
             ORDER BY t.level, t.relid, k.event
        LOOP
            keep := keep OPERATOR(pg_catalog.||) pg_catalog.format('%s %s', r.partition::pg_catalog.oid, r.tgname);
            CONTINUE WHEN r.partition OPERATOR(pg_catalog.=) src.orders
                OR NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g     -- not while a restore makes them
                                WHERE g.tgrelid OPERATOR(pg_catalog.=) src.orders
                                  AND g.tgname OPERATOR(pg_catalog.=) r.tgname)
                OR EXISTS (SELECT FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid OPERATOR(pg_catalog.=) r.partition
                              AND g.tgname OPERATOR(pg_catalog.=) r.tgname);
            EXECUTE pg_catalog.format(
                'CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION loyalty.%I(%s)',
                r.tgname, r.event, r.partition,
                CASE WHEN r.transition IS NOT NULL THEN 'REFERENCING NEW TABLE AS ' || r.transition ELSE '' END,
                r.fn, r.args);
            changed := changed + 1;
        END LOOP;
    END LOOP;

    -- A table that left an attached tree (DETACH PARTITION, detach_orders)
    -- loses the INSERT, TRUNCATE and signal triggers it got as a partition.
    FOR r IN
        SELECT g.tgname, g.tgrelid::pg_catalog.regclass AS rel
          FROM pg_catalog.pg_trigger g
         WHERE g.tgfoid OPERATOR(pg_catalog.=) ANY (ARRAY['loyalty.orders_trigger()'::pg_catalog.regprocedure,
                                                          'loyalty.signal_trigger()'::pg_catalog.regprocedure])
           AND g.tgparentid OPERATOR(pg_catalog.=) 0
           AND g.tgtype OPERATOR(pg_catalog.=) ANY ('{4,32}')  -- AFTER INSERT / TRUNCATE FOR EACH STATEMENT
           AND pg_catalog.format('%s %s', g.tgrelid, g.tgname) OPERATOR(pg_catalog.<>) ALL (keep)
         ORDER BY g.tgrelid
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
        changed := changed + 1;
    END LOOP;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION @extschema@.sync_partition_triggers() IS
    'Gives every partition of an attached partitioned orders table the accrual INSERT and TRUNCATE triggers and the signal trigger, and takes them from tables no longer part of one; returns how many triggers were created or dropped';

-- Whether a collected DDL command creates, attaches or detaches a
-- partition, or changes a table's owner.
CREATE FUNCTION @extschema@.partition_ddl_command(command pg_catalog.pg_ddl_command)
RETURNS boolean
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'loyalty_partition_ddl_command';
COMMENT ON FUNCTION @extschema@.partition_ddl_command(pg_catalog.pg_ddl_command) IS
    'Whether a DDL command of an event trigger creates, attaches or detaches a partition, or changes a table''s owner';

-- After CREATE TABLE ... PARTITION OF, ATTACH and DETACH PARTITION and
-- OWNER TO, when some table is attached: sync.  Only after these: a
-- restore's ALTER TABLE ... ADD CONSTRAINT runs after its data (so
-- order_source is filled) and before its CREATE TRIGGERs, which would then
-- fail on triggers the sync made.  SECURITY DEFINER: it runs for every
-- role's DDL.
CREATE FUNCTION @extschema@.partition_ddl()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    -- On a Citus worker it fires for the shards Citus makes: nothing to sync.
    IF loyalty.on_worker() THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM loyalty.order_source) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() d
                WHERE loyalty.partition_ddl_command(d.command)) THEN
        PERFORM loyalty.sync_partition_triggers();
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.partition_ddl() IS
    'Event trigger function: keeps the accrual INSERT triggers of partitioned orders tables in step with their partitions';

CREATE EVENT TRIGGER loyalty_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION @extschema@.partition_ddl();
COMMENT ON EVENT TRIGGER loyalty_partitions IS
    'Gives new partitions of attached partitioned orders tables the accrual INSERT trigger (loyalty.sync_partition_triggers())';

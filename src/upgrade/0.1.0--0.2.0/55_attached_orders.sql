-- The orders tables attached under 0.1.0 get what attach_orders() of 0.2.0
-- installs: their INSERT and UPDATE/DELETE triggers are unchanged (same
-- function, same arguments); new are the TRUNCATE trigger and, for a
-- partitioned table, the triggers on its partitions (sync_partition_triggers).
-- No signal trigger: 0.1.0 mapped no signal columns.
DO $attached$
DECLARE
    src @extschema@.order_source;
BEGIN
    FOR src IN SELECT * FROM @extschema@.order_source ORDER BY program, orders LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER %I AFTER TRUNCATE ON %s '
            'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.orders_trigger(%s)',
            @extschema@.truncate_trigger_name(src.program), src.orders, @extschema@.order_trigger_args(src));
        RAISE NOTICE 'orders table % of program %: TRUNCATE trigger added', src.orders, src.program;
    END LOOP;
    PERFORM @extschema@.sync_partition_triggers();
END
$attached$;

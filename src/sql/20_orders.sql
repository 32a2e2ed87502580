-- Attaching the accrual trigger to the application's own orders table.

-- The C trigger, installed three times by attach_orders(): AFTER INSERT for
-- each statement (new rows earn in batches), AFTER UPDATE OR DELETE for each
-- row (refunds, cancels, moves; a changed order id is a DELETE of the old id
-- and an INSERT of the new) and AFTER TRUNCATE (the orders are gone).  Arguments: program, then the mapped column
-- names (order id, member id, amount, currency, status, refunded amount,
-- created at; '' where not mapped).  SECURITY DEFINER so the application's
-- role needs no rights on the loyalty tables.
CREATE FUNCTION @extschema@.orders_trigger() RETURNS trigger
LANGUAGE c SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_orders_trigger';
COMMENT ON FUNCTION @extschema@.orders_trigger() IS
    'Accrual trigger installed by loyalty.attach_orders(): earns on INSERT, reverses on refund, cancel and DELETE';

-- Raises unless column exists in orders and has one of the wanted types.
CREATE FUNCTION @extschema@.check_order_column(
    orders regclass, role text, col text, wanted regtype[] DEFAULT NULL)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    coltype regtype;
BEGIN
    IF col IS NULL OR col = '' THEN
        RAISE EXCEPTION '% column must not be null or empty', role USING ERRCODE = '22004';
    END IF;
    SELECT a.atttypid::regtype INTO coltype
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = orders AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, orders
            USING ERRCODE = '42703',
                  DETAIL = pg_catalog.format('It was given as the %s column.', role);
    END IF;
    IF wanted IS NOT NULL AND coltype <> ALL (wanted) THEN
        RAISE EXCEPTION 'column "%" of relation % has type %, which cannot be used as the % column', col, orders, coltype, role
            USING ERRCODE = '42804',
                  HINT = pg_catalog.format('Use a column of type %s.', array_to_string(wanted, ', '));
    END IF;
    RETURN col::name;
END
$$;
COMMENT ON FUNCTION @extschema@.check_order_column(regclass, text, text, regtype[]) IS
    'Validates a column mapping of attach_orders(): the column exists and has a usable type';

-- The signal columns (ip ... ip_country) may have any type: their values
-- are hashed as their type's output shows them (21_signals.sql).  The
-- mapping options (amount_unit, timestamp_timezone, closing_statuses) are
-- kept in order_source (27_backfill.sql) and read by order_read.c.
CREATE FUNCTION @extschema@.attach_orders(
    program text, orders regclass, order_id text, member_id text, amount text,
    currency text DEFAULT NULL, status text DEFAULT NULL,
    refunded_amount text DEFAULT NULL, created_at text DEFAULT NULL,
    ip text DEFAULT NULL, device_id text DEFAULT NULL, payment_fingerprint text DEFAULT NULL,
    shipping_address text DEFAULT NULL, billing_country text DEFAULT NULL, ip_country text DEFAULT NULL,
    amount_unit text DEFAULT 'major', timestamp_timezone text DEFAULT NULL,
    closing_statuses text[] DEFAULT NULL)
RETURNS name
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    amount_types regtype[] := ARRAY['numeric', 'smallint', 'integer', 'bigint', 'real', 'double precision']::regtype[];
    text_types regtype[] := ARRAY['text', 'character varying', 'character']::regtype[];
    time_types regtype[] := ARRAY['timestamp with time zone', 'timestamp without time zone', 'date']::regtype[];
    src loyalty.order_source;
    tg name;
    tg_reversal name;
    tg_truncate name;
    trigger_args text;
BEGIN
    PERFORM loyalty.require_program(program);
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders table must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM loyalty.require_table_owner(orders);
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = orders) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', orders USING ERRCODE = '42809';
    END IF;
    IF (SELECT relispartition FROM pg_catalog.pg_class WHERE oid = orders) THEN
        RAISE EXCEPTION '% is a partition', orders
            USING ERRCODE = '0A000',
                  DETAIL = 'Rows inserted through its parent table would not fire its accrual trigger.',
                  HINT = pg_catalog.format('Attach the partitioned table %s: its partitions are covered.',
                                           (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(orders)
                                                   WITH ORDINALITY AS a(relid, n)
                                             ORDER BY a.n DESC LIMIT 1));
    END IF;
    tg := left('loyalty_accrual_' || program, 63);
    tg_reversal := left('loyalty_reversal_' || program, 63);
    tg_truncate := loyalty.truncate_trigger_name(program);
    src.program := program;
    src.orders := orders;
    src.order_id_column := loyalty.check_order_column(orders, 'order_id', order_id);
    src.member_id_column := loyalty.check_order_column(orders, 'member_id', member_id);
    src.amount_column := loyalty.check_order_column(orders, 'amount', amount, amount_types);
    src.currency_column := CASE WHEN currency IS NOT NULL THEN loyalty.check_order_column(orders, 'currency', currency, text_types) END;
    src.status_column := CASE WHEN status IS NOT NULL THEN loyalty.check_order_column(orders, 'status', status) END;
    src.refunded_amount_column := CASE WHEN refunded_amount IS NOT NULL THEN loyalty.check_order_column(orders, 'refunded_amount', refunded_amount, amount_types) END;
    src.created_at_column := CASE WHEN created_at IS NOT NULL THEN loyalty.check_order_column(orders, 'created_at', created_at, time_types) END;
    src.trigger_name := tg;
    src.reversal_trigger_name := tg_reversal;
    src.attached_at := now();
    src.ip_column := CASE WHEN ip IS NOT NULL THEN loyalty.check_order_column(orders, 'ip', ip) END;
    src.device_id_column := CASE WHEN device_id IS NOT NULL THEN loyalty.check_order_column(orders, 'device_id', device_id) END;
    src.payment_fingerprint_column := CASE WHEN payment_fingerprint IS NOT NULL
        THEN loyalty.check_order_column(orders, 'payment_fingerprint', payment_fingerprint) END;
    src.shipping_address_column := CASE WHEN shipping_address IS NOT NULL
        THEN loyalty.check_order_column(orders, 'shipping_address', shipping_address) END;
    src.billing_country_column := CASE WHEN billing_country IS NOT NULL
        THEN loyalty.check_order_column(orders, 'billing_country', billing_country) END;
    src.ip_country_column := CASE WHEN ip_country IS NOT NULL THEN loyalty.check_order_column(orders, 'ip_country', ip_country) END;
    src := loyalty.check_mapping_options(src, amount_unit, timestamp_timezone, closing_statuses);

    IF EXISTS (SELECT 1 FROM loyalty.order_source s WHERE s.program = src.program AND s.orders = src.orders) THEN
        RAISE EXCEPTION 'program "%" is already attached to %', program, orders
            USING ERRCODE = '42710', HINT = 'Detach it first with loyalty.detach_orders().';
    END IF;
    -- On a Citus cluster loyalty.order_source is a reference table: every
    -- node must know the orders table, which must be distributed (by its
    -- customer column, colocated with loyalty.member) so that each order
    -- earns on its member's node.  Its triggers fire on each shard, which
    -- Citus calls unsafe: they run router statements only there.
    IF loyalty.distributed() THEN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) orders
                          AND p.partmethod OPERATOR(pg_catalog.=) 'h'
                          AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) OPERATOR(pg_catalog.=) src.member_id_column
                          AND p.colocationid OPERATOR(pg_catalog.=) (
                              SELECT m.colocationid FROM pg_catalog.pg_dist_partition m
                               WHERE m.logicalrelid OPERATOR(pg_catalog.=) 'loyalty.member'::pg_catalog.regclass)) THEN
            RAISE EXCEPTION '% is not distributed by its member column % colocated with loyalty.member', orders, src.member_id_column
                USING ERRCODE = '0A000',
                      DETAIL = 'loyalty runs distributed on this Citus cluster: an orders table must be distributed by its customer column, colocated with loyalty.member.',
                      HINT = pg_catalog.format('SELECT create_distributed_table(%L, %L, colocate_with => %L), then attach it.',
                                               orders::text, member_id, 'loyalty.member');
        END IF;
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    INSERT INTO loyalty.order_source VALUES (src.*);
    trigger_args := loyalty.order_trigger_args(src);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS loyalty_new_orders '
        'FOR EACH STATEMENT EXECUTE FUNCTION loyalty.orders_trigger(%s)', tg, orders, trigger_args);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER %I AFTER UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION loyalty.orders_trigger(%s)', tg_reversal, orders, trigger_args);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER %I AFTER TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION loyalty.orders_trigger(%s)', tg_truncate, orders, trigger_args);
    IF loyalty.source_has_signals(src) THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS loyalty_new_signals '
            'FOR EACH STATEMENT EXECUTE FUNCTION loyalty.signal_trigger(%s)',
            loyalty.signal_trigger_name(program), orders, loyalty.signal_trigger_args(src));
    END IF;
    PERFORM loyalty.sync_partition_triggers();   -- a partitioned table's partitions
    PERFORM loyalty.warn_attach(src);            -- once attached: rows there, a second table
    RETURN tg;
END
$$;
COMMENT ON FUNCTION @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text[]) IS
    'Installs the accrual triggers on an application orders table (INSERT per statement, UPDATE/DELETE per row, TRUNCATE), mapping its columns (amounts in major or minor units, the zone of a timestamp column, the table''s closing statuses), and the signal trigger when signal columns are mapped; warns when the table has rows already or the program another table; returns the INSERT trigger''s name';

CREATE FUNCTION @extschema@.detach_orders(program text, orders regclass)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM loyalty.require_table_owner(orders);
    RETURN loyalty.detach_source(program, orders);
END
$$;
COMMENT ON FUNCTION @extschema@.detach_orders(text, regclass) IS
    'Removes the accrual and signal triggers of a program from an orders table; false when it was not attached';

-- The SQL condition "another attached table of the program than orders
-- holds the order id id_expr".  Ids are compared as text, as the trigger
-- reads them: by the type's output function, which format's %s calls; not
-- by a cast to text, which runs any cast the table's owner created, as the
-- extension owner, and strips a char(n) id's padding.  false when the
-- program has no other table.
CREATE FUNCTION @extschema@.held_elsewhere_sql(program text, orders regclass, id_expr text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    cond text := 'false';
    src record;
BEGIN
    FOR src IN SELECT s.orders, s.order_id_column FROM loyalty.order_source s
                WHERE s.program = held_elsewhere_sql.program AND s.orders <> held_elsewhere_sql.orders
                  AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = s.orders)
                ORDER BY s.orders LOOP
        cond := cond || pg_catalog.format(
            ' OR EXISTS (SELECT 1 FROM %s x WHERE pg_catalog.format(''%%s'', x.%I) OPERATOR(pg_catalog.=) %s)',
            src.orders, src.order_id_column, id_expr);
    END LOOP;
    RETURN '(' || cond || ')';
END
$$;
COMMENT ON FUNCTION @extschema@.held_elsewhere_sql(text, regclass, text) IS
    'The SQL condition that an attached table of the program other than orders holds the order id given as an SQL expression';

-- The open orders of a program that a TRUNCATE of orders took away: those
-- no other attached table of the program holds, in member order (the order
-- accrual locks them).  Called by the accrual trigger's TRUNCATE event.
CREATE FUNCTION @extschema@.truncated_orders(program text, orders regclass)
RETURNS TABLE (order_id text, member_id text, amount numeric, currency text,
               refunded_amount numeric, ordered_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT o.order_id, o.member_id, o.amount, o.currency, o.refunded_amount, o.ordered_at'
        ' FROM loyalty.order_earning o'
        ' WHERE o.program OPERATOR(pg_catalog.=) $1 AND NOT o.closed AND NOT '
        || loyalty.held_elsewhere_sql(program, orders, 'o.order_id')
        || ' ORDER BY o.member_id, o.order_id' USING program;
END
$$;
COMMENT ON FUNCTION @extschema@.truncated_orders(text, regclass) IS
    'Open orders of a program that no attached table other than orders holds: what a TRUNCATE of orders closes';

-- Whether an attached table of the program other than orders holds the
-- order id: a DELETE from one table of an order another still holds (an
-- order moved between a program's tables) closes nothing.
CREATE FUNCTION @extschema@.order_held_elsewhere(program text, orders regclass, order_id text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    held boolean;
BEGIN
    EXECUTE 'SELECT ' || loyalty.held_elsewhere_sql(program, orders, '$1') INTO held USING order_id;
    RETURN held;
END
$$;
COMMENT ON FUNCTION @extschema@.order_held_elsewhere(text, regclass, text) IS
    'Whether an attached table of the program other than orders holds the order id: its DELETE from orders closes nothing';

CREATE FUNCTION @extschema@.retry_dead_letters(program text)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_retry_dead_letters';
COMMENT ON FUNCTION @extschema@.retry_dead_letters(text) IS
    'Replays a program''s unresolved dead letters in order; returns how many were resolved now';

-- Back-fill and mapping options (from the state of main): attach_orders'
-- mapping options in order_source, the back-fill's run table, functions
-- and procedure (src/sql/21_signals.sql, 20_orders.sql, 27_backfill.sql).

-- source_has_signals' body depends on order_source's row type, which
-- ALTER TABLE cannot change under it: dropped, and made again after.
DROP FUNCTION @extschema@.source_has_signals(@extschema@.order_source);
-- How loyalty reads an attached table: attach_orders' mapping options
-- (27_backfill.sql checks them; order_read.c applies them).  Here, before
-- source_has_signals, whose body depends on the row type.
ALTER TABLE @extschema@.order_source
    ADD COLUMN amount_unit text NOT NULL DEFAULT 'major' CHECK (amount_unit IN ('major', 'minor')),
    ADD COLUMN timestamp_timezone text,
    ADD COLUMN closing_statuses text[] CHECK (array_position(closing_statuses, NULL) IS NULL);
COMMENT ON COLUMN @extschema@.order_source.amount_unit IS
    'major: the amount columns hold the currency''s units (dollars); minor: its ISO 4217 minor units (cents for USD, yen for JPY)';
COMMENT ON COLUMN @extschema@.order_source.timestamp_timezone IS
    'Time zone of a timestamp without time zone (or date) created-at column; NULL: the program''s time zone';
COMMENT ON COLUMN @extschema@.order_source.closing_statuses IS
    'Statuses that close an order of this table, trimmed and lower case; NULL: the program''s closing statuses';

-- Whether a source maps a signal column (then it has a signal trigger).
CREATE FUNCTION @extschema@.source_has_signals(src @extschema@.order_source)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(src.ip_column, src.device_id_column, src.payment_fingerprint_column,
                src.shipping_address_column, src.billing_country_column, src.ip_country_column) IS NOT NULL;
COMMENT ON FUNCTION @extschema@.source_has_signals(@extschema@.order_source) IS
    'Whether an order source maps a signal column, so its tables have the signal trigger';

-- attach_orders gains three parameters (a new signature).
DROP FUNCTION @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text, text, text, text, text, text, text);
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
GRANT EXECUTE ON FUNCTION
    @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text[])
TO loyalty_admin;

-- Mapping options of an attached table, and the back-fill of the orders a
-- table held before it was attached (backfill.c).

-- Validates attach_orders' mapping options and sets them in src.
CREATE FUNCTION @extschema@.check_mapping_options(
    src @extschema@.order_source, amount_unit text, timestamp_timezone text, closing_statuses text[])
RETURNS @extschema@.order_source
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    time_type regtype;
    base text;
BEGIN
    IF amount_unit IS NULL THEN
        RAISE EXCEPTION 'amount_unit must not be null' USING ERRCODE = '22004',
              HINT = 'Use ''major'' (amounts in dollars, euros...) or ''minor'' (in cents, or yen for JPY).';
    END IF;
    IF amount_unit NOT IN ('major', 'minor') THEN
        RAISE EXCEPTION 'invalid amount unit "%"', amount_unit USING ERRCODE = '22023',
              HINT = 'Use ''major'' (amounts in dollars, euros...) or ''minor'' (in minor units of the currency per ISO 4217: cents for USD, yen for JPY).';
    END IF;
    SELECT p.base_currency INTO base FROM loyalty.program p WHERE p.code = src.program;
    IF amount_unit = 'minor' AND src.currency_column IS NULL AND loyalty.currency_minor_unit(base) IS NULL THEN
        RAISE EXCEPTION 'amount_unit ''minor'' needs an ISO 4217 currency, and the program''s base currency "%" is not one', base
            USING ERRCODE = '22023', HINT = 'Map a currency column, or store major units and use amount_unit ''major''.';
    END IF;
    src.amount_unit := amount_unit;
    IF timestamp_timezone IS NOT NULL THEN
        IF src.created_at_column IS NULL THEN
            RAISE EXCEPTION 'timestamp_timezone "%" is given, but no created_at column is mapped', timestamp_timezone
                USING ERRCODE = '22023', HINT = 'Map the created_at column, or leave timestamp_timezone NULL.';
        END IF;
        -- The column's type, a domain read as its base type.
        SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END::regtype INTO time_type
          FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = src.orders AND a.attname = src.created_at_column;
        IF time_type = 'timestamp with time zone'::regtype THEN
            RAISE EXCEPTION 'column "%" of relation % is a timestamp with time zone, so timestamp_timezone does not apply',
                src.created_at_column, src.orders
                USING ERRCODE = 'LY052',
                      DETAIL = 'Its values carry their time zone.',
                      HINT = 'Leave timestamp_timezone NULL for a timestamptz column.';
        END IF;
        BEGIN
            PERFORM pg_catalog.now() AT TIME ZONE timestamp_timezone;
        EXCEPTION WHEN invalid_parameter_value OR feature_not_supported THEN
            RAISE EXCEPTION 'invalid time zone "%"', timestamp_timezone USING ERRCODE = '22023',
                  HINT = 'Use a name of pg_timezone_names, e.g. ''UTC'' or ''Europe/Berlin''.';
        END;
        src.timestamp_timezone := timestamp_timezone;
    END IF;
    IF closing_statuses IS NOT NULL THEN
        src.closing_statuses := loyalty.check_closing_statuses(closing_statuses);
    END IF;
    RETURN src;
END
$$;
COMMENT ON FUNCTION @extschema@.check_mapping_options(@extschema@.order_source, text, text, text[]) IS
    'Validates attach_orders'' mapping options (amount unit, zone of a timestamp column, closing statuses) and returns the mapping with them';

-- attach_orders' warnings: rows already there earn nothing until
-- back-filled; a second table of a program shares its order ids.
CREATE FUNCTION @extschema@.warn_attach(src @extschema@.order_source)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    has_rows boolean;
    other regclass;
BEGIN
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', src.orders) INTO has_rows;
    IF has_rows THEN
        RAISE WARNING 'table % already has rows: they earn nothing until they are back-filled', src.orders
            USING DETAIL = 'Orders inserted from now on earn; a refund, cancel or delete of an order already there is ignored until it is back-filled.',
                  HINT = pg_catalog.format('Back-fill them with CALL loyalty.backfill_orders(%L, %L), or add mode => ''history'' to count them for activity and tiers without points.',
                                           src.program, src.orders::text);
    END IF;
    SELECT s.orders INTO other FROM loyalty.order_source s
     WHERE s.program = src.program AND s.orders <> src.orders ORDER BY s.orders LIMIT 1;
    IF FOUND THEN
        RAISE WARNING 'program "%" is already attached to %: an order id found in both tables is one order for loyalty', src.program, other
            USING DETAIL = 'An order of one table whose id the other table holds earns nothing, and moving it between the tables is not a cancel.',
                  HINT = 'Keep the ids apart: map a generated column that prefixes them (e.g. ''web-'' || id) as order_id, or give each table its own program.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.warn_attach(@extschema@.order_source) IS
    'attach_orders'' warnings: the table has rows already (back-fill them), the program has another table (order ids may collide)';

-- Room on each page for the new versions of a member's row and activity
-- total: every order updates both (balance, counts), so with full pages
-- each update writes a new index entry as well.  With room the updates are
-- HOT (no indexed column changes) and page pruning reuses the space: at 50%
-- nearly all of them are (at 70% about two thirds).  The back-fill of
-- 200,000 orders took 28% less time (bench/backfill.sh).
ALTER TABLE @extschema@.member SET (fillfactor = 50);
ALTER TABLE @extschema@.activity_total SET (fillfactor = 50);

-- One back-fill per attached table: where it is, what it did.
CREATE TABLE @extschema@.backfill_run (
    program         text NOT NULL,
    orders          regclass NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('earn', 'history')),
    earn_from       timestamptz,
    phase           smallint NOT NULL DEFAULT 1 CHECK (phase IN (1, 2)),
    after_time      text,
    after_id        text,
    total_orders    bigint,
    orders_done     bigint NOT NULL DEFAULT 0,
    dead_letters    bigint NOT NULL DEFAULT 0,
    chunks          integer NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (program, orders)
);
COMMENT ON TABLE @extschema@.backfill_run IS
    'The back-fill of each attached table: mode, cut-off, the place it reached (a run resumes there), counts, start and finish';
COMMENT ON COLUMN @extschema@.backfill_run.phase IS
    '1: orders with a created-at time, oldest first; 2: orders without one (or no created-at column), by order id';
COMMENT ON COLUMN @extschema@.backfill_run.after_time IS
    'Created-at of the last order done, as text (ISO): the next chunk starts after it';
COMMENT ON COLUMN @extschema@.backfill_run.after_id IS
    'Order id of the last order done, as text: ties of created-at are taken in order id order';
COMMENT ON COLUMN @extschema@.backfill_run.total_orders IS
    'Rows of the table when the run started (for progress)';
COMMENT ON COLUMN @extschema@.backfill_run.orders_done IS
    'Orders the run recorded or kept as dead letters';
COMMENT ON COLUMN @extschema@.backfill_run.finished_at IS
    'When the run found no order left; NULL: unfinished (the next call resumes it)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backfill_run', '');

-- The chunk's select: the next $1 rows after the place (after_time,
-- after_id: the created-at and order id of the last row done, as text),
-- oldest first, locked FOR SHARE (a refund or cancel of one of them waits
-- for the chunk's commit and then finds it recorded), each with a first
-- column telling whether the back-fill takes it: loyalty has not recorded
-- it ($2 the program) and no open dead letter holds it.  The rows are
-- taken by the place first and tested after, so a chunk reads an index
-- range of (created at, id) and no more.  Ids are compared as text the
-- way the trigger reads them (the type's output); the place as literals of
-- the columns' own types, which the planner sees.
CREATE FUNCTION @extschema@.backfill_select_sql(src @extschema@.order_source, phase integer,
                                                after_time text, after_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    t name := src.created_at_column;
    id name := src.order_id_column;
    ttype text;
    idtype text;
    cond text;
    ord text;
BEGIN
    -- The place is cast to the columns' base types, never to a domain: a
    -- domain's CHECK is the table owner's code, and this runs as the
    -- extension's owner (backfill_orders_chunk is SECURITY DEFINER).
    SELECT pg_catalog.format_type((WITH RECURSIVE d(typ) AS (SELECT a.atttypid UNION ALL
             SELECT t.typbasetype FROM d JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.typ
              WHERE t.typtype OPERATOR(pg_catalog.=) 'd')
            SELECT d.typ FROM d JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.typ
             WHERE t.typtype OPERATOR(pg_catalog.<>) 'd'), NULL) INTO idtype FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) src.orders AND a.attname OPERATOR(pg_catalog.=) id
       AND NOT a.attisdropped;
    SELECT pg_catalog.format_type((WITH RECURSIVE d(typ) AS (SELECT a.atttypid UNION ALL
             SELECT t.typbasetype FROM d JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.typ
              WHERE t.typtype OPERATOR(pg_catalog.=) 'd')
            SELECT d.typ FROM d JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) d.typ
             WHERE t.typtype OPERATOR(pg_catalog.<>) 'd'), NULL) INTO ttype FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) src.orders AND a.attname OPERATOR(pg_catalog.=) t
       AND NOT a.attisdropped;
    IF idtype IS NULL OR (t IS NOT NULL AND ttype IS NULL) THEN
        RAISE EXCEPTION 'a mapped column of % no longer exists', src.orders
            USING ERRCODE = '42703',
                  HINT = 'Detach the table and attach it again with its current columns, then back-fill.';
    END IF;
    IF phase OPERATOR(pg_catalog.=) 1 THEN
        cond := pg_catalog.format('o.%I IS NOT NULL AND o.%I IS NOT NULL', t, id);
        IF after_id IS NOT NULL THEN
            cond := cond || pg_catalog.format(
                ' AND o.%1$I OPERATOR(pg_catalog.>=) %3$L::%4$s'
                ' AND (o.%1$I, o.%2$I) OPERATOR(pg_catalog.>) (%3$L::%4$s, %5$L::%6$s)',
                t, id, after_time, ttype, after_id, idtype);
        END IF;
        ord := pg_catalog.format('o.%I, o.%I', t, id);
    ELSE
        cond := pg_catalog.format('o.%I IS NOT NULL', id);
        IF t IS NOT NULL THEN
            cond := cond || pg_catalog.format(' AND o.%I IS NULL', t);
        END IF;
        IF after_id IS NOT NULL THEN
            cond := cond || pg_catalog.format(' AND o.%I OPERATOR(pg_catalog.>) %L::%s', id, after_id, idtype);
        END IF;
        ord := pg_catalog.format('o.%I', id);
    END IF;
    -- LATERAL ... LIMIT 1: an index probe per row (a hashed NOT EXISTS
    -- would read every recorded order of the program for each chunk).
    -- Then the members of the rows taken are locked (enrolled if new) in
    -- member order before the chunk writes, as the trigger's members_lock
    -- does for a multi-row INSERT: a chunk locks its members in several
    -- passes otherwise, and deadlocks with writers that keep member order.
    RETURN pg_catalog.format(
        'WITH c AS MATERIALIZED ('
        ' SELECT e.known IS NULL AND d.known IS NULL AS "loyalty: back-fill takes it", o.*'
        '  FROM (SELECT o.* FROM %1$s o WHERE %2$s ORDER BY %4$s LIMIT $1 FOR SHARE OF o) o'
        '  LEFT JOIN LATERAL (SELECT true AS known FROM loyalty.order_earning e'
        '                      WHERE e.program OPERATOR(pg_catalog.=) $2'
        '                        AND e.order_id OPERATOR(pg_catalog.=) pg_catalog.format(''%%s'', o.%3$I)'
        '                      LIMIT 1) e ON true'
        '  LEFT JOIN LATERAL (SELECT true AS known FROM loyalty.dead_letter d'
        '                      WHERE d.program OPERATOR(pg_catalog.=) $2 AND d.resolved_at IS NULL'
        '                        AND d.order_id OPERATOR(pg_catalog.=) pg_catalog.format(''%%s'', o.%3$I)'
        '                     UNION ALL'  -- or resolved by hand: the shop decided not to count it
        '                     SELECT true FROM loyalty.dead_letter d'
        '                      WHERE d.program OPERATOR(pg_catalog.=) $2 AND d.resolution IS NOT NULL'
        '                        AND d.order_id OPERATOR(pg_catalog.=) pg_catalog.format(''%%s'', o.%3$I)'
        '                      LIMIT 1) d ON true),'
        ' lock AS (INSERT INTO loyalty.member AS m (program, member_id)'
        '  SELECT DISTINCT $2, k.member_id'
        '    FROM (SELECT loyalty.member_alias($2, pg_catalog.format(''%%s'', c.%5$I)) AS member_id FROM c'
        '           WHERE c."loyalty: back-fill takes it") k'
        '   WHERE k.member_id OPERATOR(pg_catalog.<>) '''''
        '     AND pg_catalog.char_length(k.member_id) OPERATOR(pg_catalog.<=) 255'
        '   ORDER BY 2'
        '  ON CONFLICT (program, member_id) DO UPDATE SET member_id = excluded.member_id WHERE false)'
        ' SELECT o.* FROM c o ORDER BY %4$s',
        src.orders, cond, id, ord, src.member_id_column);
END
$$;
COMMENT ON FUNCTION @extschema@.backfill_select_sql(@extschema@.order_source, integer, text, text) IS
    'The SQL of a back-fill chunk: the next rows of an attached table after a place, oldest first, locked FOR SHARE, each with whether the back-fill takes it';

-- One chunk: internal, called by backfill_orders_chunk with the run's place.
CREATE FUNCTION @extschema@.backfill_rows(
    program text, orders regclass, phase integer, after_time text, after_id text,
    chunk_size integer, history boolean, earn_from timestamptz,
    OUT done integer, OUT taken integer, OUT dead_letters integer, OUT last_time text, OUT last_id text)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS 'MODULE_PATHNAME', 'loyalty_backfill_rows';
COMMENT ON FUNCTION @extschema@.backfill_rows(text, regclass, integer, text, text, integer, boolean, timestamptz) IS
    'Internal: earns one chunk of a back-fill after a place; returns the rows read, those it took (not recorded before), the dead letters kept and the place of the last row';

CREATE FUNCTION @extschema@.backfill_orders_chunk(
    program text, orders regclass, mode text DEFAULT 'earn', earn_from timestamptz DEFAULT NULL,
    chunk_size integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET datestyle = 'ISO, YMD'
SET jit = off
AS $$
DECLARE
    src loyalty.order_source;
    run loyalty.backfill_run;
    res record;
    attempt integer;
BEGIN
    IF program IS NULL OR orders IS NULL OR mode IS NULL OR chunk_size IS NULL THEN
        RAISE EXCEPTION 'program, orders, mode and chunk_size must not be null' USING ERRCODE = '22004';
    END IF;
    IF mode NOT IN ('earn', 'history') THEN
        RAISE EXCEPTION 'invalid back-fill mode "%"', mode
            USING ERRCODE = '22023',
                  HINT = 'Use ''earn'' (the orders earn points) or ''history'' (they count for activity, RFM and tiers, without points).';
    END IF;
    IF mode = 'history' AND earn_from IS NOT NULL THEN
        RAISE EXCEPTION 'earn_from % is given with mode ''history''', earn_from
            USING ERRCODE = '22023',
                  HINT = 'earn_from applies to mode ''earn'': orders before it count as history, later ones earn.';
    END IF;
    IF chunk_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'chunk_size % is out of range', chunk_size
            USING ERRCODE = '22023', HINT = 'Use 1 to 100000 orders per chunk (10000 is the default).';
    END IF;
    PERFORM loyalty.require_program(program);
    PERFORM loyalty.require_table_owner(orders);
    SELECT s.* INTO src FROM loyalty.order_source s
     WHERE s.program = backfill_orders_chunk.program AND s.orders = backfill_orders_chunk.orders;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation % is not attached to program "%"', orders, program
            USING ERRCODE = 'LY006',
                  HINT = 'Attach it with loyalty.attach_orders() first: new orders then earn as they come, and the back-fill earns those already there.';
    END IF;

    -- The run's row, locked: NOWAIT, so a second back-fill of the table is
    -- refused rather than queued.  A table's first run inserts the row
    -- (finished at -infinity: a new run starts on it below).
    FOR attempt IN 1..2 LOOP
        BEGIN
            SELECT r.* INTO run FROM loyalty.backfill_run r
             WHERE r.program = backfill_orders_chunk.program AND r.orders = backfill_orders_chunk.orders
               FOR UPDATE NOWAIT;
        EXCEPTION WHEN lock_not_available THEN
            RAISE EXCEPTION 'a back-fill of % for program "%" is running in another session', orders, program
                USING ERRCODE = 'LY051',
                      HINT = 'Wait for it to finish, or cancel it (it resumes where it stopped).';
        END;
        EXIT WHEN FOUND;
        INSERT INTO loyalty.backfill_run AS r (program, orders, mode, earn_from, phase, finished_at)
        VALUES (program, orders, mode, earn_from, 1, '-infinity')
        ON CONFLICT ON CONSTRAINT backfill_run_pkey DO NOTHING;
    END LOOP;
    IF run.finished_at IS NOT NULL THEN
        -- A new run (the first, or after a finished one: it earns only what is new).
        UPDATE loyalty.backfill_run r
           SET mode = backfill_orders_chunk.mode, earn_from = backfill_orders_chunk.earn_from,
               phase = 1, after_time = NULL, after_id = NULL,
               total_orders = NULL, orders_done = 0, dead_letters = 0, chunks = 0,
               started_at = pg_catalog.now(), updated_at = pg_catalog.now(), finished_at = NULL
         WHERE r.program = backfill_orders_chunk.program AND r.orders = backfill_orders_chunk.orders
        RETURNING r.* INTO run;
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', orders) INTO run.total_orders;
        UPDATE loyalty.backfill_run r SET total_orders = run.total_orders
         WHERE r.program = backfill_orders_chunk.program AND r.orders = backfill_orders_chunk.orders;
    ELSIF run.mode IS DISTINCT FROM mode OR run.earn_from IS DISTINCT FROM earn_from THEN
        RAISE EXCEPTION 'an unfinished back-fill of % for program "%" has other settings', orders, program
            USING ERRCODE = 'LY050',
                  DETAIL = pg_catalog.format('It runs with mode ''%s'' and earn_from %s.', run.mode,
                                             coalesce(run.earn_from::text, 'NULL')),
                  HINT = 'Resume it with the same mode and earn_from, or delete its row from loyalty.backfill_run to start over (orders it did stay done).';
    END IF;
    IF run.phase = 1 AND src.created_at_column IS NULL THEN
        run.phase := 2;
    END IF;

    LOOP
        SELECT * INTO res FROM loyalty.backfill_rows(program, orders, run.phase, run.after_time, run.after_id,
                                                     chunk_size, mode = 'history', earn_from);
        IF res.done > 0 THEN
            UPDATE loyalty.backfill_run r
               SET phase = run.phase, after_time = res.last_time, after_id = res.last_id,
                   orders_done = r.orders_done + res.taken, dead_letters = r.dead_letters + res.dead_letters,
                   chunks = r.chunks + 1, updated_at = pg_catalog.now()
             WHERE r.program = backfill_orders_chunk.program AND r.orders = backfill_orders_chunk.orders
            RETURNING r.* INTO run;
            RAISE NOTICE 'loyalty: back-fill of % for program "%": % of % orders done, up to %',
                orders, program, run.orders_done, run.total_orders,
                coalesce(run.after_time, 'orders without a time');
            RETURN res.done;
        END IF;
        EXIT WHEN run.phase = 2;
        run.phase := 2;
        run.after_time := NULL;
        run.after_id := NULL;
    END LOOP;
    UPDATE loyalty.backfill_run r
       SET phase = 2, after_time = NULL, after_id = NULL, updated_at = pg_catalog.now(), finished_at = pg_catalog.now()
     WHERE r.program = backfill_orders_chunk.program AND r.orders = backfill_orders_chunk.orders
    RETURNING r.* INTO run;
    RAISE NOTICE 'loyalty: back-fill of % for program "%" finished: % orders in % chunks, % kept in loyalty.dead_letter',
        orders, program, run.orders_done, run.chunks, run.dead_letters;
    RETURN 0;
END
$$;
COMMENT ON FUNCTION @extschema@.backfill_orders_chunk(text, regclass, text, timestamptz, integer) IS
    'Back-fills the next chunk of an attached table''s unrecorded orders, oldest first (mode earn or history, earn_from cut-off); returns the orders done, 0 when finished';

-- Transaction control: not SECURITY DEFINER and no SET clause (a procedure
-- with either cannot COMMIT); every name is qualified instead.
CREATE PROCEDURE @extschema@.backfill_orders(
    program text, orders regclass, mode text DEFAULT 'earn', earn_from timestamptz DEFAULT NULL,
    chunk_size integer DEFAULT 10000)
LANGUAGE plpgsql
AS $$
BEGIN
    WHILE @extschema@.backfill_orders_chunk(program, orders, mode, earn_from, chunk_size)
          OPERATOR(pg_catalog.>) 0 LOOP
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE @extschema@.backfill_orders(text, regclass, text, timestamptz, integer) IS
    'Back-fills an attached table''s orders in chunks that commit, oldest first, with a NOTICE per chunk; resumes an unfinished run';

-- As 99_privileges.sql leaves every function: nothing for PUBLIC.
REVOKE ALL ON FUNCTION
    @extschema@.source_has_signals(@extschema@.order_source),
    @extschema@.attach_orders(text, regclass, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text[]),
    @extschema@.check_mapping_options(@extschema@.order_source, text, text, text[]),
    @extschema@.warn_attach(@extschema@.order_source),
    @extschema@.backfill_select_sql(@extschema@.order_source, integer, text, text),
    @extschema@.backfill_rows(text, regclass, integer, text, text, integer, boolean, timestamptz),
    @extschema@.backfill_orders_chunk(text, regclass, text, timestamptz, integer)
FROM PUBLIC;
REVOKE ALL ON PROCEDURE @extschema@.backfill_orders(text, regclass, text, timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON @extschema@.backfill_run FROM PUBLIC;

-- Back-fill and mapping options: a DBA adopting loyalty back-fills the
-- tables it attached (as loyalty_admin and a member of the table's owner
-- role, as for attach_orders), watches the runs, and may drop an unfinished
-- run's row to start over.
GRANT EXECUTE ON FUNCTION @extschema@.backfill_orders_chunk(text, regclass, text, timestamptz, integer) TO loyalty_admin;
GRANT EXECUTE ON PROCEDURE @extschema@.backfill_orders(text, regclass, text, timestamptz, integer) TO loyalty_admin;
GRANT SELECT, DELETE ON @extschema@.backfill_run TO loyalty_admin;

-- Program terms and program administration (0.2.0): loyalty.program_terms
-- (every existing program gets its terms as they are, effective from
-- -infinity), program_terms_at, the history table program_change and its
-- triggers, change_program, drop_program, archive_program; create_program
-- writes the first terms and compares a repeat call with them;
-- detach_orders calls detach_source.  The same text as src/sql/11_program_terms.sql
-- and 12_program_admin.sql (kept equal by hand: test/upgrade compares).

-- archive_program() sets it (in a fresh install 98_health.sql adds it, last).
ALTER TABLE @extschema@.program ADD COLUMN archived_at timestamptz;
COMMENT ON COLUMN @extschema@.program.archived_at IS
    'When loyalty.archive_program() archived the program (NULL: active): it earns no more, balances stay readable and redeemable';

-- A program's terms over time: what an order earns and how its points live
-- and are taken back is decided by the terms in force at its ordered_at.
-- create_program writes the first terms (effective from -infinity);
-- change_program (12_program_admin.sql) adds terms from a date on.  The
-- program row's columns show the newest terms (the latest effective_from).
CREATE TABLE @extschema@.program_terms (
    program         text NOT NULL REFERENCES @extschema@.program (code) ON DELETE CASCADE,
    effective_from  timestamptz NOT NULL,
    earn_rate       numeric NOT NULL CHECK (earn_rate >= 0 AND earn_rate < 'Infinity'),
    pending_days    integer NOT NULL CHECK (pending_days >= 0),
    expire_after    interval CHECK (expire_after > interval '0'),
    refund_policy   text NOT NULL CHECK (refund_policy IN ('debt', 'within_balance')),
    timezone        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, effective_from),
    CONSTRAINT program_terms_effective_finite CHECK (effective_from < 'infinity')
);
COMMENT ON TABLE @extschema@.program_terms IS
    'A program''s terms from effective_from on (the first from -infinity): orders are priced, made pending, given their expiry and refunded by the terms of their ordered_at';
COMMENT ON COLUMN @extschema@.program_terms.effective_from IS
    'The terms apply to orders (and credits) from this time on, until the next row''s effective_from';
COMMENT ON COLUMN @extschema@.program_terms.timezone IS
    'The program''s time zone from this row on (a time zone change applies from the moment it is made: see change_program)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.program_terms', '');
CREATE TRIGGER program_terms_cache_invalidation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON @extschema@.program_terms FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.invalidate_program_cache();

-- The terms in force at a time; no row when the program does not exist
-- (or at is NULL).  Plain SQL (the primary key's index finds the row).
CREATE FUNCTION @extschema@.program_terms_at(program text, at timestamptz)
RETURNS @extschema@.program_terms
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT t.* FROM @extschema@.program_terms t
     WHERE t.program OPERATOR(pg_catalog.=) program_terms_at.program
       AND t.effective_from OPERATOR(pg_catalog.<=) program_terms_at.at
     ORDER BY t.effective_from DESC LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.program_terms_at(text, timestamptz) IS
    'The program''s terms in force at a time (the row with the latest effective_from not after it); NULL when the program does not exist';

-- Existing programs: their settings become their first terms.
INSERT INTO @extschema@.program_terms (program, effective_from, earn_rate, pending_days, expire_after,
                                       refund_policy, timezone, created_at)
SELECT p.code, '-infinity', p.earn_rate, p.pending_days, p.expire_after, p.refund_policy, p.timezone, p.created_at
  FROM @extschema@.program p;

-- Program administration: changing terms from a date on, dropping a program
-- that never earned, archiving one that did, and the history of it all.

-- Every change to a program, by whom and when.  Written by triggers on
-- loyalty.program and loyalty.order_source (create, settings, closing
-- statuses, ladder, archive, drop, attach, detach, mapping) and by
-- change_program (terms, with their effective date and note).  No foreign
-- key: a dropped program's history stays.
CREATE SEQUENCE @extschema@.program_change_id_seq;
CREATE TABLE @extschema@.program_change (
    id              bigint PRIMARY KEY DEFAULT nextval('@extschema@.program_change_id_seq'),
    program         text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('create', 'terms', 'closing_statuses', 'ladder',
                                                  'settings', 'archive', 'drop', 'attach',
                                                  'detach', 'mapping')),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    changed_by      text NOT NULL,
    effective_from  timestamptz,
    before          jsonb,
    after           jsonb,
    note            text
);
ALTER SEQUENCE @extschema@.program_change_id_seq OWNED BY @extschema@.program_change.id;
CREATE INDEX program_change_program_idx ON @extschema@.program_change (program, id);
COMMENT ON TABLE @extschema@.program_change IS
    'History of every change to a program: create, terms (change_program, with effective_from and note), closing_statuses, ladder, settings, archive, drop, attach, detach, mapping; before and after hold the changed values';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.program_change', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.program_change_id_seq', '');

-- The terms columns of loyalty.program: change_program records their
-- changes itself (kind terms), with the date they take effect.
CREATE FUNCTION @extschema@.program_terms_columns() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['earn_rate', 'pending_days', 'expire_after', 'refund_policy', 'timezone'];
COMMENT ON FUNCTION @extschema@.program_terms_columns() IS
    'The settings change_program() changes: earn_rate, pending_days, expire_after, refund_policy, timezone';

-- Rows loaded by COPY into loyalty.program or loyalty.order_source are a
-- restore (pg_restore, or a plain dump through psql): the extension's
-- functions never COPY, and the restored program_change rows are the
-- history.  Recording them again would write duplicate history (and clash
-- with the restored ids).  Only the statements pg_dump writes count (COPY
-- of one of those tables FROM stdin, or with --inserts an INSERT INTO one
-- of them, which only their owner may run): any caller can run
-- COPY (SELECT loyalty.drop_program(...)) TO STDOUT, which is no restore.
CREATE FUNCTION @extschema@.restoring() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.current_query() OPERATOR(pg_catalog.~*)
       ('^\s*(copy\s+loyalty\.(program|order_source)\s*(\([^()]*\))?\s*from\s+stdin\s*;?\s*$'
        '|insert\s+into\s+loyalty\.(program|order_source)[\s(])');
COMMENT ON FUNCTION @extschema@.restoring() IS
    'Whether the statement running is a COPY (a restore loading the extension''s tables); internal';

-- Trigger on loyalty.program: records create, drop and changes of the
-- settings other than the terms (those are change_program's rows).  The
-- terms columns only show the newest terms: an UPDATE that sets them to
-- anything else (which the trigger would not see) is refused.
CREATE FUNCTION @extschema@.record_program_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    old_j jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_j jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    changed text[];
    kind text;
    before_j jsonb;
    after_j jsonb;
BEGIN
    -- A restore brings the history with it; on a Citus worker this runs for
    -- the node's copy of a reference table: the coordinator's records it.
    IF loyalty.restoring() OR loyalty.on_worker() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO loyalty.program_change (program, kind, changed_by, after)
        VALUES (NEW.code, 'create', loyalty.calling_role()::text, new_j - 'code');
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO loyalty.program_change (program, kind, changed_by, before)
        VALUES (OLD.code, 'drop', loyalty.calling_role()::text, old_j - 'code');
        RETURN NULL;
    END IF;
    IF (NEW.earn_rate, NEW.pending_days, NEW.expire_after, NEW.refund_policy, NEW.timezone)
       IS DISTINCT FROM (OLD.earn_rate, OLD.pending_days, OLD.expire_after, OLD.refund_policy, OLD.timezone)
       AND (NEW.earn_rate, NEW.pending_days, NEW.expire_after, NEW.refund_policy, NEW.timezone)
       IS DISTINCT FROM (SELECT (t.earn_rate, t.pending_days, t.expire_after, t.refund_policy, t.timezone)
                           FROM loyalty.program_terms t WHERE t.program = NEW.code
                          ORDER BY t.effective_from DESC LIMIT 1) THEN
        RAISE EXCEPTION 'the terms of program "%" are changed with loyalty.change_program()', NEW.code
            USING ERRCODE = '55000',
                  DETAIL = 'The earn_rate, pending_days, expire_after, refund_policy and timezone columns of loyalty.program show the newest row of loyalty.program_terms.',
                  HINT = pg_catalog.format('SELECT loyalty.change_program(%L, ''{"earn_rate": 2}'');', NEW.code);
    END IF;
    changed := ARRAY(SELECT k FROM jsonb_object_keys(new_j) k
                      WHERE old_j -> k IS DISTINCT FROM new_j -> k
                        AND k <> ALL (loyalty.program_terms_columns())
                      ORDER BY k);
    IF cardinality(changed) = 0 THEN
        RETURN NULL;
    END IF;
    kind := CASE WHEN changed = ARRAY['closing_statuses'] THEN 'closing_statuses'
                 WHEN changed = ARRAY['tier_ladder'] THEN 'ladder'
                 WHEN changed = ARRAY['archived_at'] THEN 'archive'
                 ELSE 'settings' END;
    -- Worked out first: Citus takes no subquery inside INSERT ... VALUES.
    SELECT jsonb_object_agg(k, old_j -> k), jsonb_object_agg(k, new_j -> k) INTO before_j, after_j
      FROM unnest(changed) k;
    INSERT INTO loyalty.program_change (program, kind, changed_by, before, after)
    VALUES (NEW.code, kind, loyalty.calling_role()::text, before_j, after_j);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.record_program_change() IS
    'Trigger: records a program''s creation, drop and changed settings (other than its terms) in loyalty.program_change; refuses terms columns that differ from the newest program_terms row';
CREATE TRIGGER program_history AFTER INSERT OR UPDATE OR DELETE ON @extschema@.program
    FOR EACH ROW EXECUTE FUNCTION @extschema@.record_program_change();

-- Trigger on loyalty.order_source: records attach, detach and mapping
-- changes; an archived program takes no new tables.
CREATE FUNCTION @extschema@.record_source_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    old_j jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) - 'orders' END;
    new_j jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) - 'orders' END;
BEGIN
    -- A restore brings the history with it; on a Citus worker this runs for
    -- the node's copy of a reference table: the coordinator's records it.
    IF loyalty.restoring() OR loyalty.on_worker() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM loyalty.program p WHERE p.code = NEW.program AND p.archived_at IS NOT NULL) THEN
            RAISE EXCEPTION 'program "%" is archived', NEW.program
                USING ERRCODE = 'LY055',
                      DETAIL = 'An archived program earns no more points: no table can be attached to it.',
                      HINT = 'Create a new program for new earning.';
        END IF;
        INSERT INTO loyalty.program_change (program, kind, changed_by, after)
        VALUES (NEW.program, 'attach', loyalty.calling_role()::text,
                jsonb_build_object('orders', NEW.orders::regclass::text) || new_j);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO loyalty.program_change (program, kind, changed_by, before)
        VALUES (OLD.program, 'detach', loyalty.calling_role()::text,
                jsonb_build_object('orders', OLD.orders::regclass::text) || old_j);
    ELSIF old_j IS DISTINCT FROM new_j OR OLD.orders <> NEW.orders THEN
        INSERT INTO loyalty.program_change (program, kind, changed_by, before, after)
        VALUES (NEW.program, 'mapping', loyalty.calling_role()::text,
                jsonb_build_object('orders', OLD.orders::regclass::text) || old_j,
                jsonb_build_object('orders', NEW.orders::regclass::text) || new_j);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.record_source_change() IS
    'Trigger: records attach, detach and mapping changes of order tables in loyalty.program_change; refuses (LY055) attaching a table to an archived program';
CREATE TRIGGER order_source_history AFTER INSERT OR UPDATE OR DELETE ON @extschema@.order_source
    FOR EACH ROW EXECUTE FUNCTION @extschema@.record_source_change();

-- Raises unless t holds valid terms (the messages of create_program).
CREATE FUNCTION @extschema@.check_terms(t @extschema@.program_terms)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF t.earn_rate IS NULL OR t.earn_rate < 0 OR t.earn_rate >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid earn_rate: %', coalesce(t.earn_rate::text, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = 'earn_rate is the points earned per unit of base currency and must be zero or more and finite.';
    END IF;
    IF t.pending_days IS NULL OR t.pending_days < 0 THEN
        RAISE EXCEPTION 'invalid pending_days: %', coalesce(t.pending_days::text, 'NULL')
            USING ERRCODE = '22023', DETAIL = 'pending_days must be zero or more.';
    END IF;
    IF t.expire_after IS NOT NULL AND t.expire_after <= interval '0' THEN
        RAISE EXCEPTION 'invalid expire_after: %', t.expire_after
            USING ERRCODE = '22023', DETAIL = 'expire_after must be positive, or NULL for points that never expire.';
    END IF;
    IF t.refund_policy IS NULL OR t.refund_policy NOT IN ('debt', 'within_balance') THEN
        RAISE EXCEPTION 'unknown refund_policy: "%"', coalesce(t.refund_policy, 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Use ''debt'' (a refund may take the balance below zero) or ''within_balance'' (a refund takes at most what is left).';
    END IF;
    IF t.timezone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = t.timezone)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_abbrevs WHERE abbrev = t.timezone) THEN
        RAISE EXCEPTION 'unknown time zone: "%"', coalesce(t.timezone, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use a name from pg_timezone_names, such as Europe/London or Asia/Ho_Chi_Minh.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.check_terms(@extschema@.program_terms) IS
    'Raises 22023 unless a terms row is valid: earn_rate >= 0 and finite, pending_days >= 0, expire_after positive or NULL, a known refund_policy and time zone';

-- The terms t with the keys of settings (a change_program argument) set.
-- Raises 22023 on a value of the wrong JSON type or that does not convert.
CREATE FUNCTION @extschema@.terms_with(t @extschema@.program_terms, settings jsonb)
RETURNS @extschema@.program_terms
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
BEGIN
    FOR k, v IN SELECT * FROM jsonb_each(settings) LOOP
        BEGIN
            CASE k
            WHEN 'earn_rate' THEN
                IF jsonb_typeof(v) NOT IN ('number', 'string') THEN RAISE invalid_text_representation; END IF;
                t.earn_rate := (v #>> '{}')::numeric;
            WHEN 'pending_days' THEN
                IF jsonb_typeof(v) NOT IN ('number', 'string') THEN RAISE invalid_text_representation; END IF;
                t.pending_days := (v #>> '{}')::integer;
            WHEN 'expire_after' THEN
                IF jsonb_typeof(v) NOT IN ('string', 'null') THEN RAISE invalid_text_representation; END IF;
                t.expire_after := (v #>> '{}')::interval;   -- JSON null: points never expire
            WHEN 'refund_policy' THEN
                IF jsonb_typeof(v) <> 'string' THEN RAISE invalid_text_representation; END IF;
                t.refund_policy := v #>> '{}';
            WHEN 'timezone' THEN
                IF jsonb_typeof(v) <> 'string' THEN RAISE invalid_text_representation; END IF;
                t.timezone := v #>> '{}';
            END CASE;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'invalid % in settings: %', k, v
                USING ERRCODE = '22023',
                      HINT = CASE k WHEN 'expire_after' THEN 'Give an interval as a string, such as "365 days", or null for points that never expire.'
                                    WHEN 'earn_rate' THEN 'Give a number, such as 1.5.'
                                    WHEN 'pending_days' THEN 'Give a whole number of days, such as 14.'
                                    ELSE 'Give a string.' END;
        END;
    END LOOP;
    RETURN t;
END
$$;
COMMENT ON FUNCTION @extschema@.terms_with(@extschema@.program_terms, jsonb) IS
    'The terms row with the settings of a change_program() call applied (values converted, not yet checked)';

-- Locks the program's attached tables against order writes until the end
-- of the transaction, waiting for the writes in flight: from then on no
-- order can earn under terms about to be replaced.
CREATE FUNCTION @extschema@.lock_program_orders(program text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT s.orders FROM loyalty.order_source s
              WHERE s.program = lock_program_orders.program ORDER BY s.orders LOOP
        EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE MODE', t);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.lock_program_orders(text) IS
    'Locks a program''s attached order tables in SHARE mode (waits for order writes in flight; blocks new ones until commit)';

CREATE FUNCTION @extschema@.change_program(
    program text, settings jsonb,
    effective_from timestamptz DEFAULT now(), note text DEFAULT NULL)
RETURNS @extschema@.program_terms
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    prog loyalty.program;
    base loyalty.program_terms;
    wanted loyalty.program_terms;
    unknown text[];
    clash record;
BEGIN
    prog := loyalty.require_program(program);
    IF settings IS NULL THEN
        RAISE EXCEPTION 'settings must not be null' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(settings) <> 'object' OR settings = '{}' THEN
        RAISE EXCEPTION 'settings must be a JSON object with at least one setting, not %', settings
            USING ERRCODE = '22023',
                  HINT = 'Use keys earn_rate, pending_days, expire_after, refund_policy, timezone, e.g. {"earn_rate": 2}.';
    END IF;
    unknown := ARRAY(SELECT k FROM jsonb_object_keys(settings) k
                      WHERE k <> ALL (loyalty.program_terms_columns()) ORDER BY k);
    IF cardinality(unknown) > 0 THEN
        RAISE EXCEPTION 'unknown program setting: "%"', array_to_string(unknown, '", "')
            USING ERRCODE = '22023',
                  HINT = 'change_program() changes earn_rate, pending_days, expire_after, refund_policy and timezone; use set_closing_statuses() and set_tier_ladder() for the others.';
    END IF;
    IF effective_from IS NULL THEN
        RAISE EXCEPTION 'effective_from must not be null' USING ERRCODE = '22004',
              HINT = 'Leave it out for a change that applies from now on.';
    END IF;
    IF NOT isfinite(effective_from) THEN
        RAISE EXCEPTION 'invalid effective_from: %', effective_from USING ERRCODE = '22023',
              DETAIL = 'A change takes effect at a finite time (the first terms, from -infinity, are create_program''s).';
    END IF;
    -- A time zone applies to everything read after the change (order times
    -- of timestamp columns, days): it cannot be dated.
    IF settings ? 'timezone' AND effective_from <> now() THEN
        RAISE EXCEPTION 'a time zone change cannot be dated: effective_from %', effective_from
            USING ERRCODE = '22023',
                  DETAIL = 'The program''s time zone applies from the moment it is changed, to the order times and days read after it.',
                  HINT = 'Change the time zone in a call of its own, without effective_from.';
    END IF;

    -- One change at a time; no order earns while the terms change.
    SELECT * INTO prog FROM loyalty.program p WHERE p.code = change_program.program FOR UPDATE;
    IF prog.archived_at IS NOT NULL THEN
        RAISE EXCEPTION 'program "%" is archived', program
            USING ERRCODE = 'LY055', DETAIL = 'An archived program earns no more points; its terms do not change.';
    END IF;
    PERFORM loyalty.lock_program_orders(program);

    -- Orders keep the terms they earned under: refused when points were
    -- already earned at or after the date.
    -- An order recorded with no points (rate 0, no member) was priced too.
    SELECT c.occurred_at, c.order_id, c.member_id INTO clash
      FROM (SELECT l.occurred_at, l.order_id, l.member_id
              FROM loyalty.ledger l JOIN loyalty.lot ON lot.id = l.id
             WHERE l.program = change_program.program AND l.occurred_at >= change_program.effective_from
            UNION ALL
            SELECT e.ordered_at, e.order_id, e.member_id
              FROM loyalty.order_earning e
             WHERE e.program = change_program.program AND e.ordered_at >= change_program.effective_from) c
     ORDER BY c.occurred_at DESC LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot change the terms of program "%" from %: points were already earned after it', program, effective_from
            USING ERRCODE = 'LY053',
                  DETAIL = pg_catalog.format('The latest were earned at %s (member %s%s); points earned keep the terms they were earned under.',
                                             clash.occurred_at, clash.member_id,
                                             coalesce(', order ' || clash.order_id, '')),
                  HINT = 'Give an effective_from after the latest points earned, or leave it out for a change from now on.';
    END IF;

    base := loyalty.program_terms_at(program, effective_from);
    wanted := loyalty.terms_with(base, settings);
    wanted.effective_from := effective_from;
    wanted.created_at := now();
    PERFORM loyalty.check_terms(wanted);

    INSERT INTO loyalty.program_terms AS t VALUES (wanted.*)
    ON CONFLICT ON CONSTRAINT program_terms_pkey DO UPDATE
       SET earn_rate = excluded.earn_rate, pending_days = excluded.pending_days,
           expire_after = excluded.expire_after, refund_policy = excluded.refund_policy,
           timezone = excluded.timezone, created_at = excluded.created_at;
    -- Terms dated later take the changed settings too: "from a date on".
    UPDATE loyalty.program_terms t
       SET earn_rate = CASE WHEN settings ? 'earn_rate' THEN wanted.earn_rate ELSE t.earn_rate END,
           pending_days = CASE WHEN settings ? 'pending_days' THEN wanted.pending_days ELSE t.pending_days END,
           expire_after = CASE WHEN settings ? 'expire_after' THEN wanted.expire_after ELSE t.expire_after END,
           refund_policy = CASE WHEN settings ? 'refund_policy' THEN wanted.refund_policy ELSE t.refund_policy END,
           timezone = CASE WHEN settings ? 'timezone' THEN wanted.timezone ELSE t.timezone END
     WHERE t.program = change_program.program AND t.effective_from > change_program.effective_from;
    -- The program row shows the newest terms.
    UPDATE loyalty.program p
       SET (earn_rate, pending_days, expire_after, refund_policy, timezone) =
           (SELECT n.earn_rate, n.pending_days, n.expire_after, n.refund_policy, n.timezone
              FROM loyalty.program_terms n WHERE n.program = p.code
             ORDER BY n.effective_from DESC LIMIT 1)
     WHERE p.code = change_program.program;

    INSERT INTO loyalty.program_change (program, kind, changed_by, effective_from, before, after, note)
    VALUES (program, 'terms', loyalty.calling_role()::text, effective_from,
            (SELECT jsonb_object_agg(k, to_jsonb(base) -> k) FROM jsonb_object_keys(settings) k),
            (SELECT jsonb_object_agg(k, to_jsonb(wanted) -> k) FROM jsonb_object_keys(settings) k),
            note);
    RETURN wanted;
END
$$;
COMMENT ON FUNCTION @extschema@.change_program(text, jsonb, timestamptz, text) IS
    'Changes a program''s terms (earn_rate, pending_days, expire_after, refund_policy, timezone) from effective_from on; orders before it keep their terms; refused (LY053) when points were earned at or after that date; returns the new terms';

-- Removes the triggers of one attached table and its order_source row,
-- whoever owns the table (detach_orders checks ownership first).
CREATE FUNCTION @extschema@.detach_source(program text, orders regclass)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    src loyalty.order_source;
BEGIN
    DELETE FROM loyalty.order_source s WHERE s.program = detach_source.program AND s.orders = detach_source.orders
    RETURNING s.* INTO src;
    IF src.trigger_name IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', src.trigger_name, orders);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', src.reversal_trigger_name, orders);
    -- The TRUNCATE and signal triggers' names are not stored: attach_orders() derives them.
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s',
                              loyalty.truncate_trigger_name(program), orders);
    IF loyalty.source_has_signals(src) THEN
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s',
                                  loyalty.signal_trigger_name(program), orders);
    END IF;
    PERFORM loyalty.sync_partition_triggers();   -- a partitioned table's partitions
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.detach_source(text, regclass) IS
    'Removes the triggers of a program from an orders table and forgets the attachment; false when it was not attached; internal';

-- Detaches every table of a program; returns how many.
CREATE FUNCTION @extschema@.detach_all(program text)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    t regclass;
    n integer := 0;
BEGIN
    FOR t IN SELECT s.orders FROM loyalty.order_source s
              WHERE s.program = detach_all.program ORDER BY s.orders LOOP
        IF loyalty.detach_source(program, t) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.detach_all(text) IS
    'Detaches every orders table of a program (drop_program, archive_program); returns how many; internal';

CREATE FUNCTION @extschema@.drop_program(program text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    rows bigint;
    t record;
BEGIN
    PERFORM loyalty.require_program(program);
    PERFORM 1 FROM loyalty.program p WHERE p.code = drop_program.program FOR UPDATE;
    PERFORM loyalty.lock_program_orders(program);
    SELECT count(*) INTO rows FROM loyalty.ledger l WHERE l.program = drop_program.program;
    IF rows > 0 THEN
        RAISE EXCEPTION 'program "%" has % ledger rows and cannot be dropped', program, rows
            USING ERRCODE = 'LY054',
                  DETAIL = 'A program whose members earned or spent points keeps its books.',
                  HINT = pg_catalog.format('Archive it instead: SELECT loyalty.archive_program(%L).', program);
    END IF;
    PERFORM loyalty.detach_all(program);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron') THEN
        PERFORM loyalty.unschedule_jobs(program);
    END IF;
    -- Every row of the program in the extension's tables, those that
    -- reference others first (settings, members, dead letters, coupons ...).
    FOR t IN
        WITH RECURSIVE tab AS (
            SELECT c.oid AS relid FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'program' AND NOT a.attisdropped
             WHERE c.relnamespace = 'loyalty'::regnamespace AND c.relkind IN ('r', 'p')
               AND c.oid NOT IN ('loyalty.program_change'::regclass, 'loyalty.ledger'::regclass)),
        depth (relid, d) AS (
            SELECT relid, 0 FROM tab
            UNION ALL
            SELECT f.conrelid, depth.d + 1 FROM depth
              JOIN pg_catalog.pg_constraint f ON f.confrelid = depth.relid AND f.contype = 'f'
             WHERE depth.d < 10)
        SELECT tab.relid::regclass AS rel, max(depth.d) AS d
          FROM tab JOIN depth USING (relid) GROUP BY tab.relid ORDER BY 2 DESC, 1::text
    LOOP
        EXECUTE pg_catalog.format('DELETE FROM %s x WHERE x.program OPERATOR(pg_catalog.=) $1', t.rel)
          USING program;
    END LOOP;
    DELETE FROM loyalty.program p WHERE p.code = drop_program.program;
    RETURN program;
END
$$;
COMMENT ON FUNCTION @extschema@.drop_program(text) IS
    'Removes a program that has no ledger rows (LY054 otherwise): detaches its tables, unschedules its nightly jobs, deletes its settings, members and other rows; the history in program_change stays; returns its code';

CREATE FUNCTION @extschema@.archive_program(program text)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    prog loyalty.program;
BEGIN
    PERFORM loyalty.require_program(program);
    SELECT * INTO prog FROM loyalty.program p WHERE p.code = archive_program.program FOR UPDATE;
    IF prog.archived_at IS NOT NULL THEN
        RETURN prog.archived_at;       -- archived already: the first time stands
    END IF;
    -- The tables stay attached: refunds, cancels and deletes of the orders
    -- placed before still take their points back; new orders earn nothing.
    PERFORM loyalty.lock_program_orders(program);
    UPDATE loyalty.program p SET archived_at = now() WHERE p.code = archive_program.program;
    RETURN now();
END
$$;
COMMENT ON FUNCTION @extschema@.archive_program(text) IS
    'Archives a program: earns no more (new orders earn nothing; LY055 on earning, attaching or changing terms); its tables stay attached so refunds of earlier orders still take their points back; balances stay readable, redeemable and expire as before; idempotent; returns when it was archived';

CREATE OR REPLACE FUNCTION @extschema@.create_program(
    code text,
    base_currency text DEFAULT 'USD',
    earn_rate numeric DEFAULT 1,
    pending_days integer DEFAULT 0,
    expire_after interval DEFAULT NULL,
    refund_policy text DEFAULT 'debt',
    timezone text DEFAULT 'UTC',
    closing_statuses text[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    wanted loyalty.program;
    first loyalty.program_terms;
    existing loyalty.program_terms;
    existing_currency text;
BEGIN
    IF code IS NULL THEN
        RAISE EXCEPTION 'program code must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT loyalty.program_code_valid(code) THEN
        RAISE EXCEPTION 'invalid program code: "%"', code
            USING ERRCODE = '22023',
                  DETAIL = 'A program code is 1 to 63 letters, digits, "_", "." or "-".';
    END IF;
    first := ROW(code, '-infinity', earn_rate, pending_days, expire_after, refund_policy,
                 timezone, now());
    PERFORM loyalty.check_terms(first);

    wanted.code := code;
    wanted.base_currency := loyalty.check_currency(base_currency, 'base currency');
    wanted.earn_rate := earn_rate;
    wanted.pending_days := pending_days;
    wanted.expire_after := expire_after;
    wanted.refund_policy := refund_policy;
    wanted.timezone := timezone;
    wanted.created_at := now();
    wanted.closing_statuses := loyalty.check_closing_statuses(
        coalesce(closing_statuses, '{refunded,cancelled,canceled,returned,chargeback}'));
    INSERT INTO loyalty.program (code, base_currency, earn_rate, pending_days, expire_after,
                                 refund_policy, timezone, created_at, closing_statuses)
    VALUES (wanted.code, wanted.base_currency, wanted.earn_rate, wanted.pending_days,
            wanted.expire_after, wanted.refund_policy, wanted.timezone, wanted.created_at,
            wanted.closing_statuses)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        -- The first terms, for every order before any change_program().
        INSERT INTO loyalty.program_terms VALUES (first.*);
    ELSE
        -- Creating the same program twice is fine; creating it differently
        -- is not.  Compared with the terms it was created with, so a setup
        -- script that runs again after change_program() still passes.
        SELECT p.base_currency INTO existing_currency FROM loyalty.program p WHERE p.code = wanted.code;
        SELECT * INTO existing FROM loyalty.program_terms t
         WHERE t.program = wanted.code ORDER BY t.effective_from LIMIT 1;
        -- closing_statuses only when given: set_closing_statuses() may have changed them.
        IF (existing_currency, existing.earn_rate, existing.pending_days, existing.expire_after,
            existing.refund_policy, existing.timezone)
           IS DISTINCT FROM (wanted.base_currency, wanted.earn_rate, wanted.pending_days, wanted.expire_after,
            wanted.refund_policy, wanted.timezone)
           OR (closing_statuses IS NOT NULL AND
               (SELECT p.closing_statuses FROM loyalty.program p WHERE p.code = wanted.code)
               IS DISTINCT FROM wanted.closing_statuses) THEN
            RAISE EXCEPTION 'program "%" already exists with other settings', code
                USING ERRCODE = '42710',
                      DETAIL = pg_catalog.format('Created with: currency %s, earn_rate %s, pending_days %s, expire_after %s, refund_policy %s, timezone %s.',
                          existing_currency, existing.earn_rate, existing.pending_days,
                          coalesce(existing.expire_after::text, 'never'), existing.refund_policy, existing.timezone),
                      HINT = 'Change a program''s terms with loyalty.change_program().';
        END IF;
    END IF;
    RETURN code;
END
$$;
COMMENT ON FUNCTION @extschema@.create_program(text, text, numeric, integer, interval, text, text, text[]) IS
    'Creates a loyalty program and its first terms (idempotent for the settings it was created with); closing_statuses NULL: refunded, cancelled, canceled, returned, chargeback; returns its code';

CREATE OR REPLACE FUNCTION @extschema@.detach_orders(program text, orders regclass)
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

-- As 99_privileges.sql leaves them: admins read every table (granted first,
-- as there), sequences are nobody's but the owner's.
GRANT SELECT ON @extschema@.program_terms, @extschema@.program_change TO loyalty_admin;
REVOKE ALL ON SEQUENCE @extschema@.program_change_id_seq FROM PUBLIC;

-- Program administration (P2): admins change terms, drop and archive
-- programs; everyone may read the terms (the application shows them,
-- BI prices with them).  program_change is readable by admins (ALL TABLES
-- above).  Internal (owner only): check_terms, terms_with,
-- program_terms_columns, lock_program_orders, detach_source, detach_all and
-- the trigger functions record_program_change, record_source_change.
GRANT EXECUTE ON FUNCTION
    @extschema@.change_program(text, jsonb, timestamptz, text),
    @extschema@.drop_program(text),
    @extschema@.archive_program(text)
TO loyalty_admin;
GRANT EXECUTE ON FUNCTION @extschema@.program_terms_at(text, timestamptz)
TO loyalty_admin, loyalty_app, loyalty_reader;
GRANT SELECT ON @extschema@.program_terms TO loyalty_app, loyalty_reader;
-- As 99_privileges.sql leaves them: new functions are nobody's but the
-- grantees' (CREATE FUNCTION grants EXECUTE to PUBLIC).
REVOKE ALL ON FUNCTION
    @extschema@.program_terms_at(text, timestamptz),
    @extschema@.program_terms_columns(),
    @extschema@.restoring(),
    @extschema@.record_program_change(),
    @extschema@.record_source_change(),
    @extschema@.check_terms(@extschema@.program_terms),
    @extschema@.terms_with(@extschema@.program_terms, jsonb),
    @extschema@.lock_program_orders(text),
    @extschema@.change_program(text, jsonb, timestamptz, text),
    @extschema@.detach_source(text, regclass),
    @extschema@.detach_all(text),
    @extschema@.drop_program(text),
    @extschema@.archive_program(text)
FROM PUBLIC;

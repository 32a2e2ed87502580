-- Scale-out on Citus: the layout of every table (distributed by member id
-- or copied to every node), the functions that run on the member's node,
-- and loyalty.distribute(), which turns an installed loyalty on a Citus
-- coordinator into that layout.  On one node none of this runs: the same
-- schema serves both (docs/scale-out.md).

-- Where each table lives on a cluster.  'member': distributed by member_id,
-- colocated with loyalty.member (a member's rows are on one node);
-- 'reference': a copy on every node (settings, rates, codes, global rules).
CREATE FUNCTION @extschema@.cluster_layout()
RETURNS TABLE (table_name name, layout text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT t::pg_catalog.name, 'member' FROM pg_catalog.unnest(ARRAY[
        'member', 'ledger', 'lot', 'lot_use', 'held_lot', 'order_earning', 'order_signal',
        'dead_letter', 'activity_day', 'activity_total', 'activity_before', 'member_contact',
        'member_exclusion', 'member_hold', 'fraud_flag', 'rfm_score', 'tier_history',
        'coupon_redemption', 'reward_claim', 'referral', 'referral_commission',
        'referral_rejection']) AS t
    UNION ALL
    SELECT t::pg_catalog.name, 'reference' FROM pg_catalog.unnest(ARRAY[
        'program', 'program_terms', 'program_change', 'fx_rate', 'order_source', 'auto_coupon',
        'coupon_campaign', 'coupon_code', 'reward', 'referral_setting', 'referral_code',
        'fraud_rule', 'fraud_setting', 'consent_policy', 'rfm_segment_rule', 'signal_key',
        'activity_horizon', 'backfill_run', 'job_run', 'rfm_pass', 'ignored_event',
        'coupon_release_pending', 'member_merge', 'forgotten_member']) AS t
$$;
COMMENT ON FUNCTION @extschema@.cluster_layout() IS
    'Where each loyalty table lives on a Citus cluster: member (distributed by member_id, colocated with loyalty.member) or reference (a copy on every node)';

-- The member-keyed tables whose member id is NULL for a guest on one node;
-- on a cluster a guest records nothing, and distribute() makes the member
-- id part of their key.
CREATE FUNCTION @extschema@.cluster_rekeyed()
RETURNS TABLE (table_name name, old_key text, new_key text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES ('order_earning'::pg_catalog.name, 'program, order_id', 'program, member_id, order_id'),
           ('order_signal', 'program, order_id', 'program, member_id, order_id'),
           ('dead_letter', 'id', 'id, member_id')
$$;
COMMENT ON FUNCTION @extschema@.cluster_rekeyed() IS
    'Tables whose key distribute() widens with member_id (their member id may be NULL, for a guest, only on one node)';

-- The member-keyed functions Citus would run on the node that holds the
-- member (create_distributed_function).  None in this release: Citus
-- 13.2.2 crashes the coordinator on a delegated call with a NULL member id
-- or inside a subquery; member calls run on the coordinator, each of their
-- statements routed to the member's node.  The bigint twins are not delegated (Citus would hash
-- the number, not the text id): they run on the coordinator, whose router
-- queries reach the member's node.
CREATE FUNCTION @extschema@.cluster_delegated()
RETURNS TABLE (fn pg_catalog.regprocedure)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sig text;
BEGIN
    FOREACH sig IN ARRAY ARRAY[]::text[] LOOP
        fn := pg_catalog.to_regprocedure(sig);
        IF fn IS NOT NULL THEN
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.cluster_delegated() IS
    'The functions distribute() delegates to the node that holds their member_id argument';

-- Turns an installed loyalty on a Citus coordinator into the distributed
-- layout, in one transaction.  Foreign keys and user triggers are set aside
-- while Citus copies the tables (it refuses foreign keys into a table not yet
-- converted, and would fire the triggers on every copied row) and come back
-- on every shard.
CREATE FUNCTION @extschema@.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name name, layout text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    fkeys text[] := '{}';
    triggers text[] := '{}';
    cmd text;
BEGIN
    IF pg_catalog.to_regproc('pg_catalog.create_distributed_table') IS NULL THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = 'LY056',
                  HINT = 'CREATE EXTENSION citus on the coordinator (with shared_preload_libraries = citus on every node), add the workers, then run loyalty.distribute().';
    END IF;
    IF @extschema@.on_worker() THEN
        RAISE EXCEPTION 'loyalty.distribute() runs on the Citus coordinator, not on a worker'
            USING ERRCODE = 'LY056', HINT = 'Connect to the coordinator and run it there.';
    END IF;
    -- It changes the workers' own copies of the tables over connections of
    -- their own, which would wait forever for locks this transaction holds
    -- there if it also created (or updated) the extension.
    IF EXISTS (SELECT FROM pg_catalog.pg_extension e
                WHERE e.extname OPERATOR(pg_catalog.=) 'loyalty' AND pg_catalog.age(e.xmin) OPERATOR(pg_catalog.=) 0) THEN
        RAISE EXCEPTION 'loyalty.distribute() must run after CREATE EXTENSION loyalty has committed'
            USING ERRCODE = 'LY056',
                  HINT = 'COMMIT, then run SELECT * FROM loyalty.distribute() in a transaction of its own.';
    END IF;
    IF @extschema@.distributed() THEN
        RAISE NOTICE 'loyalty is distributed already';
        RETURN QUERY SELECT l.table_name, l.layout, NULL::integer FROM @extschema@.cluster_layout() l;
        RETURN;
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'shard_count % is out of range', shard_count
            USING ERRCODE = '22023', HINT = 'Pass 1 to 64000, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM @extschema@.order_earning e WHERE e.member_id IS NULL)
       OR EXISTS (SELECT FROM @extschema@.order_signal s WHERE s.member_id IS NULL)
       OR EXISTS (SELECT FROM @extschema@.dead_letter d WHERE d.member_id IS NULL) THEN
        RAISE EXCEPTION 'loyalty holds guest orders or dead letters without a member id'
            USING ERRCODE = 'LY057',
                  DETAIL = 'On a cluster every member-keyed row is placed by its member id, which cannot be NULL.',
                  HINT = 'Delete the rows of loyalty.order_earning, loyalty.order_signal and loyalty.dead_letter whose member_id is NULL (guest orders earn nothing), then run loyalty.distribute() again.';
    END IF;
    -- The accrual trigger runs on the buyer's node, where the referrer's
    -- commission can be neither paid nor taken back.
    IF EXISTS (SELECT FROM @extschema@.referral_setting s WHERE pg_catalog.cardinality(s.commission) OPERATOR(pg_catalog.>) 0)
       OR EXISTS (SELECT FROM @extschema@.referral_commission k WHERE k.taken_target OPERATOR(pg_catalog.<) k.points) THEN
        RAISE EXCEPTION 'loyalty pays referral commission, which a cluster cannot'
            USING ERRCODE = 'LY057',
                  DETAIL = 'Commission is paid and taken back by the accrual trigger, which on a cluster runs on the buyer''s node, not the referrer''s.',
                  HINT = 'Set every program''s commission to ''{}'' with loyalty.set_referral_terms(); commission already paid must be taken back (refunds) or settled before distributing.';
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- Foreign keys to reference tables need one connection per node.
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);

    -- Foreign keys of loyalty's tables, to be added again after.
    FOR r IN SELECT c.conrelid::pg_catalog.regclass AS tab, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
               FROM pg_catalog.pg_constraint c
              WHERE c.contype OPERATOR(pg_catalog.=) 'f'
                AND c.connamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace LOOP
        fkeys := fkeys OPERATOR(pg_catalog.||) pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.tab, r.conname, r.def);
        cmd := pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', r.tab, r.conname);
        EXECUTE cmd;
        -- The workers' own copies (CREATE EXTENSION ran there too) become
        -- the shells; adding the key again below reaches them.
        PERFORM pg_catalog.run_command_on_workers(cmd);
    END LOOP;
    -- Enabled user triggers: disabled while Citus copies the rows.
    FOR r IN SELECT g.tgrelid::pg_catalog.regclass AS tab, g.tgname
               FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
              WHERE NOT g.tgisinternal AND g.tgenabled OPERATOR(pg_catalog.<>) 'D'
                AND c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace LOOP
        triggers := triggers OPERATOR(pg_catalog.||) pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I', r.tab, r.tgname);
        EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', r.tab, r.tgname);
    END LOOP;

    -- The member id joins the key of the tables where a guest's was NULL.
    FOR r IN SELECT k.table_name, k.new_key, c.conname
               FROM @extschema@.cluster_rekeyed() k
               JOIN pg_catalog.pg_constraint c
                 ON c.conrelid OPERATOR(pg_catalog.=) pg_catalog.format('@extschema@.%I', k.table_name)::pg_catalog.regclass
                AND c.contype OPERATOR(pg_catalog.=) 'p' LOOP
        cmd := pg_catalog.format('ALTER TABLE @extschema@.%I DROP CONSTRAINT %I, ALTER COLUMN member_id SET NOT NULL, ADD CONSTRAINT %I PRIMARY KEY (%s)',
                                 r.table_name, r.conname, r.conname, r.new_key);
        EXECUTE cmd;
        PERFORM pg_catalog.run_command_on_workers(cmd);
    END LOOP;

    PERFORM pg_catalog.create_distributed_table('@extschema@.member', 'member_id', shard_count => shard_count);
    FOR r IN SELECT l.table_name, l.layout FROM @extschema@.cluster_layout() l
              WHERE l.table_name OPERATOR(pg_catalog.<>) 'member' ORDER BY l.layout, l.table_name LOOP
        IF r.layout OPERATOR(pg_catalog.=) 'member' THEN
            PERFORM pg_catalog.create_distributed_table(pg_catalog.format('@extschema@.%I', r.table_name), 'member_id',
                                                        colocate_with => '@extschema@.member');
        ELSE
            PERFORM pg_catalog.create_reference_table(pg_catalog.format('@extschema@.%I', r.table_name));
        END IF;
    END LOOP;

    FOREACH cmd IN ARRAY fkeys LOOP
        EXECUTE cmd;
    END LOOP;
    FOREACH cmd IN ARRAY triggers LOOP
        EXECUTE cmd;
    END LOOP;

    -- Every node draws row ids (ledger, lots, letters) from its own copy of
    -- loyalty's sequences, which CREATE EXTENSION made on each node: each
    -- node gets its own range (its group id in the top bits, as Citus does
    -- for the sequences it distributes), so ids drawn on two nodes never
    -- meet in one member's rows.
    PERFORM pg_catalog.run_command_on_workers($cmd$
        DO $do$
        DECLARE
            seq pg_catalog.regclass;
            g bigint := (SELECT l.groupid FROM pg_catalog.pg_dist_local_group l);
        BEGIN
            FOR seq IN SELECT c.oid FROM pg_catalog.pg_class c
                         JOIN pg_catalog.pg_sequence q ON q.seqrelid OPERATOR(pg_catalog.=) c.oid
                        WHERE q.seqtypid OPERATOR(pg_catalog.=) 'pg_catalog.int8'::pg_catalog.regtype
                          AND c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace LOOP
                PERFORM pg_catalog.setval(seq, GREATEST(pg_catalog.nextval(seq), (g OPERATOR(pg_catalog.<<) 48) OPERATOR(pg_catalog.+) 1), false);
            END LOOP;
        END
        $do$
    $cmd$);

    FOR r IN SELECT d.fn FROM @extschema@.cluster_delegated() d LOOP
        PERFORM pg_catalog.create_distributed_function(r.fn, 'member_id',
                                                       colocate_with => '@extschema@.member');
    END LOOP;

    RETURN QUERY
        SELECT l.table_name, l.layout,
               (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
                 WHERE s.logicalrelid OPERATOR(pg_catalog.=) pg_catalog.format('@extschema@.%I', l.table_name)::pg_catalog.regclass)
          FROM @extschema@.cluster_layout() l ORDER BY l.layout, l.table_name;
END
$$;
COMMENT ON FUNCTION @extschema@.distribute(integer) IS
    'On a Citus coordinator: distributes the member-keyed tables by member_id (colocated with loyalty.member), makes the others reference tables, and delegates the functions of loyalty.cluster_delegated() to the member''s node';

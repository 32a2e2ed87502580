-- Program archival and health: job runs, the health view, pg_cron scheduling.

-- archive_program() (12_program_admin.sql) sets it; added here, after every
-- other column of loyalty.program, so a fresh install has the columns in
-- the order an updated 0.1.0 database has them.
ALTER TABLE @extschema@.program ADD COLUMN archived_at timestamptz;
COMMENT ON COLUMN @extschema@.program.archived_at IS
    'When loyalty.archive_program() archived the program (NULL: active): it earns no more, balances stay readable and redeemable';

-- Every run of a batch job: expire_points, score_rfm, recalculate_tiers,
-- settle_referrals, fraud_check (each records itself when it finishes),
-- the batched procedures (a row when they start, finished when they end),
-- verify_run and run_nightly_jobs (which also record a job that failed).
CREATE SEQUENCE @extschema@.job_run_id_seq;
CREATE TABLE @extschema@.job_run (
    id          bigint PRIMARY KEY DEFAULT nextval('@extschema@.job_run_id_seq'),
    job         text NOT NULL CHECK (job <> ''),
    program     text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    rows        bigint,
    ok          boolean,
    detail      text,
    CONSTRAINT job_run_finished CHECK ((finished_at IS NULL) = (ok IS NULL))
);
ALTER SEQUENCE @extschema@.job_run_id_seq OWNED BY @extschema@.job_run.id;
CREATE INDEX job_run_last_idx ON @extschema@.job_run (job, program, started_at);
COMMENT ON TABLE @extschema@.job_run IS
    'Runs of the batch jobs: job, program (NULL: every program), start, finish (NULL: still running, or a batched run that stopped), rows (the job''s result), ok, detail';
COMMENT ON COLUMN @extschema@.job_run.rows IS
    'What the job returned: points expired, members scored or recalculated, referrals settled, new flags; for verify the failed checks';
COMMENT ON COLUMN @extschema@.job_run.ok IS
    'true: finished; false: failed (run_nightly_jobs catches failures) or, for verify, checks failed; NULL: not finished';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_run', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_run_id_seq', '');

-- Order events the accrual trigger ignores, counted: unknown_order (an
-- UPDATE or DELETE of an order loyalty never saw: it predates the
-- attachment; back-fill it) and not_attached (the trigger fired on a table
-- not attached to the program: a hand-made trigger).  One row per order or
-- relation and reason.
CREATE TABLE @extschema@.ignored_event (
    program     text NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('unknown_order', 'not_attached')),
    subject     text NOT NULL,
    events      bigint NOT NULL DEFAULT 1,
    first_at    timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ignored_event_pkey PRIMARY KEY (program, reason, subject)
);
COMMENT ON TABLE @extschema@.ignored_event IS
    'Order events the accrual trigger ignored, by program, reason (unknown_order: an update or delete of an order that predates the attachment; not_attached: a trigger on a table not attached) and subject (the order id, or the relation)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ignored_event', '');

-- Records a finished run (the jobs call it as the extension's owner).
CREATE FUNCTION @extschema@.record_job_run(job text, program text, started_at timestamptz,
                                          rows bigint, ok boolean, detail text)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    INSERT INTO @extschema@.job_run (job, program, started_at, finished_at, rows, ok, detail)
    VALUES (job, program, started_at, pg_catalog.clock_timestamp(), rows, ok, detail)
    RETURNING id
$$;
COMMENT ON FUNCTION @extschema@.record_job_run(text, text, timestamptz, bigint, boolean, text) IS
    'Records a finished run of a batch job in loyalty.job_run; returns its id; internal';

-- The batched procedures run as their caller (they commit): they open a
-- run with job_run_begin and close it with job_run_end, both limited to
-- their own job names.
CREATE FUNCTION @extschema@.job_run_begin(job text, program text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF job IS NULL OR job NOT IN ('expire_points_batched', 'recalculate_tiers_batched') THEN
        RAISE EXCEPTION 'job_run_begin is for the batched procedures, not "%"', coalesce(job, 'NULL')
            USING ERRCODE = '22023', HINT = 'Jobs: expire_points_batched, recalculate_tiers_batched.';
    END IF;
    INSERT INTO loyalty.job_run (job, program, started_at) VALUES (job, program, clock_timestamp())
    RETURNING job_run.id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION @extschema@.job_run_begin(text, text) IS
    'Opens a run of a batched procedure (expire_points_batched, recalculate_tiers_batched) in loyalty.job_run; returns its id';

CREATE FUNCTION @extschema@.job_run_end(id bigint, rows bigint, detail text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    -- A value, not clock_timestamp() in the UPDATE: Citus refuses volatile
    -- functions in an UPDATE of a reference table.
    finished timestamptz := clock_timestamp();
BEGIN
    UPDATE loyalty.job_run r
       SET finished_at = finished, rows = job_run_end.rows, ok = true, detail = job_run_end.detail
     WHERE r.id = job_run_end.id AND r.finished_at IS NULL
       AND r.job IN ('expire_points_batched', 'recalculate_tiers_batched');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open batched run with id %', coalesce(id::text, 'NULL') USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.job_run_end(bigint, bigint, text) IS
    'Closes a run opened by job_run_begin: finished now, ok, with its rows and detail';

-- verify() is a STABLE read; verify_run runs it and records the result.
CREATE FUNCTION @extschema@.verify_run(program text DEFAULT NULL)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    started timestamptz := clock_timestamp();
    names text[];
    oks boolean[];
    details text[];
    failed text[];
BEGIN
    IF program IS NOT NULL THEN
        PERFORM loyalty.require_program(program);
    END IF;
    SELECT array_agg(v.check_name ORDER BY v.n), array_agg(v.ok ORDER BY v.n), array_agg(v.detail ORDER BY v.n)
      INTO names, oks, details
      FROM loyalty.verify(verify_run.program) WITH ORDINALITY v(check_name, ok, detail, n);
    failed := ARRAY(SELECT u.n FROM unnest(names, oks) u(n, o) WHERE NOT u.o ORDER BY 1);
    PERFORM loyalty.record_job_run('verify', program, started, cardinality(failed),
                                   cardinality(failed) = 0,
                                   CASE WHEN cardinality(failed) = 0 THEN 'all checks passed'
                                        ELSE 'failed: ' || array_to_string(failed, ', ') END);
    RETURN QUERY SELECT * FROM unnest(names, oks, details);
END
$$;
COMMENT ON FUNCTION @extschema@.verify_run(text) IS
    'Runs loyalty.verify(program) and records the result in loyalty.job_run (job verify: ok when every check passed, rows the failed checks); returns the checks';

-- The nightly jobs of a program, each in a subtransaction: one that fails
-- is recorded (ok false, with its error) and the others still run.  With
-- local_hour (how schedule_jobs calls it, every hour) it runs only in that
-- hour of the program's time zone, once per local day: pg_cron schedules
-- in UTC, the program's zone may have summer time or change.
CREATE FUNCTION @extschema@.run_nightly_jobs(program text, local_hour integer DEFAULT NULL)
RETURNS TABLE (job text, ok boolean, result bigint, detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    local_now timestamp;
    started timestamptz := clock_timestamp();
    job_started timestamptz;
    jobs text[] := ARRAY['expire_points', 'score_rfm', 'recalculate_tiers', 'settle_referrals',
                         'fraud_check', 'verify'];
    failed text[] := '{}';
    n bigint;
BEGIN
    local_now := now() AT TIME ZONE p.timezone;
    IF local_hour IS NOT NULL THEN
        IF local_hour NOT BETWEEN 0 AND 23 THEN
            RAISE EXCEPTION 'invalid local_hour: %', local_hour USING ERRCODE = '22023',
                  DETAIL = 'An hour of the day is 0 to 23.';
        END IF;
        IF extract(hour FROM local_now) <> local_hour OR EXISTS (
               SELECT 1 FROM loyalty.job_run r
                WHERE r.job = 'nightly' AND r.program = p.code
                  AND (r.started_at AT TIME ZONE p.timezone)::date = local_now::date) THEN
            RETURN;     -- not the hour, or ran today already
        END IF;
    END IF;
    FOREACH run_nightly_jobs.job IN ARRAY jobs LOOP
        CONTINUE WHEN run_nightly_jobs.job = 'recalculate_tiers' AND p.tier_ladder IS NULL;
        CONTINUE WHEN run_nightly_jobs.job = 'settle_referrals'
                  AND NOT EXISTS (SELECT 1 FROM loyalty.referral_setting s WHERE s.program = p.code);
        job_started := clock_timestamp();
        BEGIN
            CASE run_nightly_jobs.job
            WHEN 'expire_points' THEN n := loyalty.expire_points(p.code);
            WHEN 'score_rfm' THEN n := loyalty.score_rfm(p.code);
            WHEN 'recalculate_tiers' THEN SELECT t.members INTO n FROM loyalty.recalculate_tiers(p.code) t;
            WHEN 'settle_referrals' THEN n := loyalty.settle_referrals(p.code);
            -- Two days back: a late order is still seen; no flag is raised twice.
            WHEN 'fraud_check' THEN n := loyalty.fraud_check(p.code, now() - interval '2 days');
            WHEN 'verify' THEN SELECT count(*) FILTER (WHERE NOT v.ok) INTO n FROM loyalty.verify_run(p.code) v;
            END CASE;
            SELECT r.ok, r.rows, r.detail INTO run_nightly_jobs.ok, result, run_nightly_jobs.detail
              FROM loyalty.job_run r WHERE r.job = run_nightly_jobs.job AND r.program = p.code
             ORDER BY r.id DESC LIMIT 1;
        EXCEPTION WHEN OTHERS THEN
            run_nightly_jobs.ok := false;
            result := NULL;
            run_nightly_jobs.detail := SQLSTATE || ': ' || SQLERRM;
            PERFORM loyalty.record_job_run(run_nightly_jobs.job, p.code, job_started, NULL, false,
                                           run_nightly_jobs.detail);
        END;
        IF NOT run_nightly_jobs.ok THEN
            failed := failed || run_nightly_jobs.job;
        END IF;
        RETURN NEXT;
    END LOOP;
    PERFORM loyalty.record_job_run('nightly', p.code, started, cardinality(failed), cardinality(failed) = 0,
                                   CASE WHEN cardinality(failed) = 0 THEN 'all jobs ok'
                                        ELSE 'failed: ' || array_to_string(failed, ', ') END);
END
$$;
COMMENT ON FUNCTION @extschema@.run_nightly_jobs(text, integer) IS
    'Runs a program''s nightly jobs (expire_points, score_rfm, recalculate_tiers with a ladder, settle_referrals with referral terms, fraud_check of the last two days, verify_run), each recorded in loyalty.job_run, a failure too; with local_hour only in that hour of the program''s time zone, once a local day';

-- Why pg_cron could not run jobs on this server, or NULL.  pg_cron starts a
-- job through a libpq connection to cron.host (localhost) unless
-- cron.use_background_workers is on: a server that listens on no TCP
-- address (socket only) then runs nothing.
CREATE FUNCTION @extschema@.cron_connection_problem()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT CASE WHEN coalesce(current_setting('cron.use_background_workers', true), 'off') = 'off'
                 AND current_setting('listen_addresses') = ''
                 AND coalesce(current_setting('cron.host', true), 'localhost') !~ '^/'
           THEN format('cron.use_background_workers is off, cron.host is %s and the server listens on no TCP address (listen_addresses is empty): pg_cron cannot connect to run its jobs',
                       coalesce(current_setting('cron.host', true), 'localhost'))
           END
$$;
COMMENT ON FUNCTION @extschema@.cron_connection_problem() IS
    'Why pg_cron could not start jobs on this server (socket-only server without cron.use_background_workers), or NULL; internal';

-- Raises 55000 unless pg_cron is installed in this database.
CREATE FUNCTION @extschema@.require_pg_cron()
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = '55000',
                  DETAIL = CASE WHEN cron_db IS NOT NULL AND cron_db <> current_database()
                                THEN format('pg_cron runs in database "%s" (cron.database_name).', cron_db)
                                ELSE 'Scheduling the nightly jobs needs the pg_cron extension.' END,
                  HINT = format('Add pg_cron to shared_preload_libraries, set cron.database_name = %L and cron.use_background_workers = on, restart, then CREATE EXTENSION pg_cron; or run SELECT loyalty.run_nightly_jobs(program) from another scheduler.',
                                current_database());
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.require_pg_cron() IS
    'Raises 55000, with a hint how to install it, unless pg_cron is installed in this database; internal';

CREATE FUNCTION @extschema@.nightly_job_name(program text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 'loyalty-nightly-' OPERATOR(pg_catalog.||) program;
COMMENT ON FUNCTION @extschema@.nightly_job_name(text) IS
    'The pg_cron job name of a program''s nightly jobs: loyalty-nightly-<program>; internal';

-- Schedules loyalty.run_nightly_jobs(program, hour) every hour at the
-- minute of at (in UTC, as pg_cron reads it); it runs the jobs in the hour
-- of at in the program's time zone.  The job runs as the extension's owner (the role that scheduled
-- it: this function is SECURITY DEFINER).
CREATE FUNCTION @extschema@.schedule_jobs(program text, at time DEFAULT '03:00')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    p loyalty.program := loyalty.require_program(program);
    name text := loyalty.nightly_job_name(p.code);
    problem text := loyalty.cron_connection_problem();
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'at must not be null' USING ERRCODE = '22004', HINT = 'Give a local time such as ''03:00''.';
    END IF;
    PERFORM loyalty.require_pg_cron();
    IF problem IS NOT NULL THEN
        RAISE WARNING '%', problem
            USING HINT = 'Set cron.use_background_workers = on (and max_worker_processes high enough) in postgresql.conf and restart; until then the jobs do not run.';
    END IF;
    -- pg_cron reads its schedule in UTC: the minute of at in UTC (a zone
    -- may be off UTC by a part of an hour: Asia/Kolkata, Asia/Kathmandu).
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
      USING name, format('%s * * * *',
                         extract(minute FROM ((current_date + at) AT TIME ZONE p.timezone) AT TIME ZONE 'UTC')::integer),
            format('SELECT loyalty.run_nightly_jobs(%L, %s)', p.code, extract(hour FROM at)::integer);
    RETURN name;
END
$$;
COMMENT ON FUNCTION @extschema@.schedule_jobs(text, time) IS
    'Schedules a program''s nightly jobs with pg_cron at a local time of the program''s time zone (run_nightly_jobs, checked hourly); warns when pg_cron cannot connect (socket-only server without cron.use_background_workers); returns the pg_cron job name';

CREATE FUNCTION @extschema@.unschedule_jobs(program text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    name text;
    found_job boolean;
BEGIN
    IF program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = '22004';
    END IF;
    name := loyalty.nightly_job_name(program);
    PERFORM loyalty.require_pg_cron();
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname OPERATOR(pg_catalog.=) $1)'
      INTO found_job USING name;
    IF found_job THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING name;
    END IF;
    RETURN found_job;
END
$$;
COMMENT ON FUNCTION @extschema@.unschedule_jobs(text) IS
    'Removes the pg_cron job of a program''s nightly jobs; false when there was none (a dropped program''s too)';

-- For monitoring: one row per thing to watch.
CREATE VIEW @extschema@.health AS
    SELECT d.program, 'dead_letters'::text AS area, d.sqlstate AS item, 'attention'::text AS status,
           count(*) AS count, max(d.created_at) AS last_at, NULL::interval AS duration,
           min(d.reason) AS detail
      FROM @extschema@.dead_letter d
     WHERE d.resolved_at IS NULL
     GROUP BY d.program, d.sqlstate
    UNION ALL
    SELECT i.program, 'ignored_events', i.reason, 'attention',
           sum(i.events)::bigint, max(i.last_at), NULL,
           format('%s %s, e.g. %s', count(*), CASE i.reason WHEN 'not_attached' THEN 'tables' ELSE 'orders' END,
                  min(i.subject))
      FROM @extschema@.ignored_event i
     GROUP BY i.program, i.reason
    UNION ALL
    SELECT p.code, CASE WHEN j.job = 'verify' THEN 'verify' ELSE 'jobs' END, j.job,
           CASE WHEN r.id IS NULL THEN 'never run'
                WHEN r.finished_at IS NULL THEN 'running or stopped'
                WHEN r.ok THEN 'ok' ELSE 'failed' END,
           r.rows, r.started_at, r.finished_at - r.started_at, r.detail
      FROM @extschema@.program p
     CROSS JOIN (VALUES ('expire_points'), ('score_rfm'), ('recalculate_tiers'), ('settle_referrals'),
                        ('fraud_check'), ('verify'), ('nightly')) j (job)
      LEFT JOIN LATERAL (
            SELECT x.* FROM @extschema@.job_run x
             WHERE x.job IN (j.job, j.job || '_batched')
               AND (x.program = p.code OR (x.program IS NULL AND j.job IN ('expire_points', 'verify')
                                           AND x.started_at >= p.created_at))
             ORDER BY x.started_at DESC LIMIT 1) r ON true
     WHERE (j.job <> 'recalculate_tiers' OR p.tier_ladder IS NOT NULL)
       AND (j.job <> 'settle_referrals'
            OR EXISTS (SELECT 1 FROM @extschema@.referral_setting s WHERE s.program = p.code))
       AND (j.job <> 'nightly' OR r.id IS NOT NULL);
COMMENT ON VIEW @extschema@.health IS
    'For monitoring: open dead letters by SQLSTATE, ignored order events by reason, the last run of each batch job per program (never run, running or stopped, ok, failed; a run over every program counts for the programs that existed then) with its duration, the last verify result';
COMMENT ON COLUMN @extschema@.health.area IS 'dead_letters, ignored_events, jobs or verify';
COMMENT ON COLUMN @extschema@.health.item IS 'The SQLSTATE of the dead letters, the reason events were ignored, or the job';
COMMENT ON COLUMN @extschema@.health.status IS 'attention (dead letters, ignored events), never run, running or stopped, ok, failed';
COMMENT ON COLUMN @extschema@.health.count IS 'Open dead letters, ignored events, or what the job''s last run returned (failed checks for verify)';
COMMENT ON COLUMN @extschema@.health.last_at IS 'The newest dead letter or ignored event, or when the job''s last run started';
COMMENT ON COLUMN @extschema@.health.duration IS 'How long the job''s last run took';
COMMENT ON COLUMN @extschema@.health.detail IS 'A sample reason, a sample order or table, or the run''s detail';

-- Health: loyalty.health shows open dead letters by SQLSTATE, the order
-- events the trigger ignored, the last run (and duration) of each batch
-- job per program, and the last verify result.  The jobs record their
-- runs; run_nightly_jobs runs them all, records a failure and goes on.
-- Scheduling with pg_cron is tested in test/tap/003_schedule_jobs.pl.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\i sql/include/sqlstate_of.sql

SET ROLE loyalty_admin;
SELECT loyalty.create_program('hl', 'USD', 1, 0, '30 days', timezone => 'Asia/Ho_Chi_Minh');
SELECT loyalty.set_tier_ladder('hl', 'basis=orders window=30d | Basic 0 x1 | Star 2 x1.5');
SELECT loyalty.create_program('hl2', 'USD', 1);
RESET ROLE;

-- Nothing ran yet: every job of each program says so (recalculate_tiers
-- only where there is a ladder, settle_referrals only with referral terms).
SET ROLE loyalty_reader;
SELECT program, area, item, status, count, last_at FROM loyalty.health
 WHERE program IN ('hl', 'hl2') ORDER BY program, area, item;
RESET ROLE;

-- Orders that were in the table before it was attached: their updates and
-- deletes are ignored, and counted (one row per order, events summed).
CREATE TABLE hl_orders (id text PRIMARY KEY, member text, amount numeric, currency text DEFAULT 'USD',
                        status text DEFAULT 'paid', at timestamptz DEFAULT now());
INSERT INTO hl_orders (id, member, amount, at) VALUES
    ('OLD-1', 'ann', 10, now() - interval '400 days'), ('OLD-2', 'bob', 20, now() - interval '400 days');
SELECT loyalty.attach_orders('hl', 'hl_orders', 'id', 'member', 'amount', 'currency', 'status', NULL, 'at');
UPDATE hl_orders SET status = 'shipped' WHERE id = 'OLD-1';
UPDATE hl_orders SET status = 'delivered' WHERE id = 'OLD-1';
DELETE FROM hl_orders WHERE id = 'OLD-2';
SELECT program, reason, subject, events FROM loyalty.ignored_event WHERE program = 'hl' ORDER BY subject;
-- New orders earn; one in an unknown currency waits as a dead letter.
INSERT INTO hl_orders (id, member, amount, at) VALUES
    ('N-1', 'ann', 100, now() - interval '40 days'), ('N-2', 'ann', 50, now() - interval '1 day'),
    ('N-3', 'cy', 70, now() - interval '2 days');
INSERT INTO hl_orders (id, member, amount, currency, at) VALUES ('N-4', 'cy', 10, 'XYZ', '2026-01-02 03:04:05+00');
-- A trigger made by hand on a table not attached: its events are ignored
-- (with a WARNING), and counted per table.
CREATE TABLE hl_stray (id text, member text, amount numeric);
CREATE TRIGGER stray AFTER UPDATE ON hl_stray FOR EACH ROW
    EXECUTE FUNCTION loyalty.orders_trigger('hl', 'id', 'member', 'amount', '', '', '', '');
INSERT INTO hl_stray VALUES ('S-1', 'ann', 5);
UPDATE hl_stray SET amount = 6;
SET ROLE loyalty_reader;
SELECT program, area, item, status, count, detail FROM loyalty.health
 WHERE program = 'hl' AND area IN ('dead_letters', 'ignored_events') ORDER BY area, item;
RESET ROLE;

-- The jobs, as an admin would run them: each records its run.
SET ROLE loyalty_admin;
SELECT loyalty.expire_points('hl') AS expired;
SELECT loyalty.score_rfm('hl') AS scored;
SELECT members FROM loyalty.recalculate_tiers('hl');
SELECT loyalty.fraud_check('hl', now() - interval '1 day') AS flags;
SELECT check_name FROM loyalty.verify_run('hl') WHERE NOT ok;
RESET ROLE;
SELECT job, program, rows, ok, finished_at >= started_at AS timed, detail ~ '^as_of|^all checks|new flags$' AS detailed
  FROM loyalty.job_run WHERE program = 'hl' ORDER BY id;
SET ROLE loyalty_reader;
SELECT area, item, status, count, last_at IS NOT NULL AS ran, duration >= '0' AS timed FROM loyalty.health
 WHERE program = 'hl' AND area IN ('jobs', 'verify') ORDER BY area, item;
RESET ROLE;

-- The batched procedures record one run each, opened when they start.
SET ROLE loyalty_admin;
CALL loyalty.expire_points_batched('hl', now(), 1);
CALL loyalty.recalculate_tiers_batched('hl', now(), 1);
RESET ROLE;
SELECT job, rows, ok, detail ~ '^as_of' AS detailed FROM loyalty.job_run
 WHERE program = 'hl' AND job LIKE '%batched' ORDER BY id;
SELECT item, status, count FROM loyalty.health WHERE program = 'hl' AND item IN ('expire_points', 'recalculate_tiers')
 ORDER BY item;
-- Only those two jobs, and only an open run can be closed.
SET ROLE loyalty_admin;
SELECT sqlstate_of($$SELECT loyalty.job_run_begin('verify', 'hl')$$);
SELECT sqlstate_of($$SELECT loyalty.job_run_begin(NULL, 'hl')$$);
SELECT regexp_replace(sqlstate_of($$SELECT loyalty.job_run_end((SELECT max(id) FROM loyalty.job_run WHERE job = 'expire_points_batched'), 1, 'again')$$), 'id \d+', 'id N');
SELECT regexp_replace(sqlstate_of($$SELECT loyalty.job_run_end((SELECT max(id) FROM loyalty.job_run WHERE job = 'verify'), 1, 'forged')$$), 'id \d+', 'id N');
-- A batched run that stopped half-way shows as such.
SELECT loyalty.job_run_begin('recalculate_tiers_batched', 'hl') > 0 AS opened;
RESET ROLE;
SELECT item, status FROM loyalty.health WHERE program = 'hl' AND item = 'recalculate_tiers';

-- verify_run records a failing check too: ok false, the checks named.
UPDATE loyalty.member SET balance = balance + 1 WHERE program = 'hl' AND member_id = 'ann';
SET ROLE loyalty_admin;
SELECT check_name FROM loyalty.verify_run('hl') WHERE NOT ok;
RESET ROLE;
SELECT area, status, count, detail FROM loyalty.health WHERE program = 'hl' AND area = 'verify';
UPDATE loyalty.member SET balance = balance - 1 WHERE program = 'hl' AND member_id = 'ann';

-- run_nightly_jobs: with local_hour it runs only in that hour of the
-- program's zone (Asia/Ho_Chi_Minh here), once a local day.
SET ROLE loyalty_admin;
SELECT count(*) AS jobs_run FROM loyalty.run_nightly_jobs('hl',
    (extract(hour FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::integer + 1) % 24);
RESET ROLE;
-- One job fails (a trigger planted on the RFM passes): it is recorded with
-- its error, the others still run and the night is marked failed.
CREATE FUNCTION public.hl_break() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN RAISE EXCEPTION 'disk on fire' USING ERRCODE = '58030'; END$$;
CREATE TRIGGER hl_break BEFORE INSERT OR UPDATE OR DELETE ON loyalty.rfm_pass
    FOR EACH STATEMENT EXECUTE FUNCTION public.hl_break();
SET ROLE loyalty_admin;
SET client_min_messages = warning;
SELECT job, ok, CASE WHEN ok THEN left(detail, 5) ELSE detail END AS detail FROM loyalty.run_nightly_jobs('hl',
    extract(hour FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::integer);
-- The same hour again: it ran today already.
SELECT count(*) AS jobs_run FROM loyalty.run_nightly_jobs('hl',
    extract(hour FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::integer);
RESET client_min_messages;
RESET ROLE;
DROP TRIGGER hl_break ON loyalty.rfm_pass;
SELECT item, status, CASE WHEN status = 'ok' THEN left(detail, 5) ELSE detail END AS detail FROM loyalty.health
 WHERE program = 'hl' AND item IN ('score_rfm', 'nightly', 'expire_points') ORDER BY item;
-- The nightly fraud check reads the last two days.
SELECT job, ok, split_part(detail, ' to ', 1)::timestamptz
                = split_part(split_part(detail, ' to ', 2), ': ', 1)::timestamptz - interval '2 days' AS two_days
  FROM loyalty.job_run WHERE program = 'hl' AND job = 'fraud_check' ORDER BY id DESC LIMIT 1;
-- Without local_hour it always runs (a manual run, or another scheduler).
SET ROLE loyalty_admin;
SET client_min_messages = warning;
SELECT job, ok FROM loyalty.run_nightly_jobs('hl2');
RESET client_min_messages;
SELECT sqlstate_of($$SELECT * FROM loyalty.run_nightly_jobs('nope')$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.run_nightly_jobs(NULL)$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.run_nightly_jobs('hl', 24)$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.verify_run('nope')$$);

-- Scheduling needs pg_cron: a clear error, with how to install it.
\set VERBOSITY default
SELECT loyalty.schedule_jobs('hl');
\set VERBOSITY terse
SELECT sqlstate_of($$SELECT loyalty.schedule_jobs('hl', NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.schedule_jobs('nope')$$);
SELECT sqlstate_of($$SELECT loyalty.unschedule_jobs(NULL)$$);
SELECT sqlstate_of($$SELECT loyalty.unschedule_jobs('hl')$$);
RESET ROLE;

-- Who may look: admins and readers read the view, the application does not;
-- only admins run the jobs.
SET ROLE loyalty_app;
SELECT sqlstate_of($$SELECT count(*) FROM loyalty.health$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.verify_run()$$);
SELECT sqlstate_of($$SELECT * FROM loyalty.run_nightly_jobs('hl')$$);
SET ROLE loyalty_reader;
SELECT sqlstate_of($$SELECT * FROM loyalty.job_run$$);
SELECT sqlstate_of($$SELECT loyalty.job_run_begin('expire_points_batched', 'hl')$$);
RESET ROLE;

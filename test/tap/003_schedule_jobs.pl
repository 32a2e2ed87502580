# loyalty.schedule_jobs schedules a program's nightly jobs with pg_cron in
# the program's time zone: the jobs really run (pg_cron starts
# run_nightly_jobs, which runs them in the hour asked for, local time, and
# records them), loyalty.health shows them, unschedule_jobs removes the
# job.  On a socket-only server (the test clusters listen on no TCP
# address) without cron.use_background_workers, pg_cron cannot connect:
# schedule_jobs warns.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron_jobs');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 20
});
$node->start;

# A program in a zone far from UTC, with points that expire.
$node->safe_psql('postgres', q{
    CREATE EXTENSION loyalty;
    CREATE EXTENSION pg_cron;
    SELECT loyalty.create_program('nightly', 'USD', 1, 0, '30 days', timezone => 'Asia/Kathmandu');
    SELECT loyalty.earn('nightly', 'old-member', 100, 'old-gift', as_of => now() - interval '60 days');
});

# The local time of the program a minute from now (pg_cron fires at the
# start of a minute): the job's minute and local hour.
my $at = $node->safe_psql('postgres',
	q{SELECT to_char(date_trunc('minute', now() AT TIME ZONE 'Asia/Kathmandu') + interval '1 minute', 'HH24:MI')});
my ($stderr, $name);
$node->psql('postgres', qq{SET ROLE loyalty_admin; SELECT loyalty.schedule_jobs('nightly', '$at')},
	stdout => \$name, stderr => \$stderr);
is($name, 'loyalty-nightly-nightly', 'schedule_jobs returns the pg_cron job name');
is($stderr, '', 'no warning with cron.use_background_workers on');
# pg_cron reads the minute in UTC: Kathmandu is 5:45 ahead.
my $minute = $node->safe_psql('postgres',
	q{SELECT extract(minute FROM date_trunc('minute', now()) + interval '1 minute')::integer});
my $hour = (split /:/, $at)[0] + 0;
is($node->safe_psql('postgres', q{SELECT schedule || ' | ' || command FROM cron.job WHERE jobname = 'loyalty-nightly-nightly'}),
	"$minute * * * * | SELECT loyalty.run_nightly_jobs('nightly', $hour)",
	'checked every hour at the minute, for the local hour');
# Scheduling again replaces the job, it does not add one.
$node->safe_psql('postgres', qq{SET ROLE loyalty_admin; SELECT loyalty.schedule_jobs('nightly', '$at')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname LIKE 'loyalty-nightly-%'}),
	'1', 'one job per program');

ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM loyalty.job_run WHERE job = 'nightly' AND program = 'nightly'}),
	'pg_cron ran the nightly jobs');
is($node->safe_psql('postgres', q{SELECT member_id || ':' || points FROM loyalty.ledger WHERE kind = 'expire'}),
	'old-member:-100', 'expiry ran: the old points expired');
is($node->safe_psql('postgres', q{SELECT string_agg(item || '=' || status, ',' ORDER BY item)
                                     FROM loyalty.health WHERE program = 'nightly' AND area IN ('jobs', 'verify')}),
	'expire_points=ok,fraud_check=ok,nightly=ok,score_rfm=ok,verify=ok',
	'health shows every job of the night ok');
# pg_cron keeps firing every hour; within the hour the jobs ran, nothing more.
ok($node->poll_query_until('postgres',
	q{SELECT count(*) >= 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
	   WHERE j.jobname = 'loyalty-nightly-nightly' AND d.status = 'succeeded'}),
	'pg_cron reports the run succeeded');

$node->psql('postgres', q{SET ROLE loyalty_admin; SELECT loyalty.unschedule_jobs('nightly')}, stdout => \$name);
is($name, 't', 'unschedule_jobs removes the job');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname LIKE 'loyalty-nightly-%'}),
	'0', 'no job left');
$node->psql('postgres', q{SET ROLE loyalty_admin; SELECT loyalty.unschedule_jobs('nightly')}, stdout => \$name);
is($name, 'f', 'unscheduling again finds nothing');
# drop_program removes a dropped program's job too.
$node->safe_psql('postgres', q{SET ROLE loyalty_admin; SELECT loyalty.create_program('short_lived');
                               SELECT loyalty.schedule_jobs('short_lived'); SELECT loyalty.drop_program('short_lived')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname = 'loyalty-nightly-short_lived'}),
	'0', 'drop_program unschedules the program\'s jobs');
# docs/adopting.md, "Scheduling the nightly jobs", as written: a job that
# pg_cron starts every hour at minute 0 (Paris is a whole number of hours
# from UTC, summer and winter), running the jobs of the local hour 3.
$node->safe_psql('postgres', q{SELECT loyalty.create_program('eu', 'EUR', timezone => 'Europe/Paris')});
$node->psql('postgres', q{SET ROLE loyalty_admin;
SELECT loyalty.schedule_jobs('eu', '03:00');   -- 03:00 in the program's time zone
}, stdout => \$name, stderr => \$stderr);
is($name, 'loyalty-nightly-eu', "the doc's schedule_jobs('eu', '03:00') returns the job name");
is($stderr, '', 'without a warning');
is($node->safe_psql('postgres', q{SELECT schedule || ' | ' || command FROM cron.job WHERE jobname = 'loyalty-nightly-eu'}),
	"0 * * * * | SELECT loyalty.run_nightly_jobs('eu', 3)",
	'checked every hour at minute 0, for the local hour 3');
$node->stop;

# The same server without background workers: pg_cron would connect to
# localhost, where nothing listens.  schedule_jobs says so.
my $bare = PostgreSQL::Test::Cluster->new('cron_socket_only');
$bare->init;
$bare->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = off
});
$bare->start;
$bare->safe_psql('postgres', q{CREATE EXTENSION loyalty; CREATE EXTENSION pg_cron;
                               SELECT loyalty.create_program('nightly')});
$bare->psql('postgres', q{SET ROLE loyalty_admin; SELECT loyalty.schedule_jobs('nightly')},
	stdout => \$name, stderr => \$stderr);
is($name, 'loyalty-nightly-nightly', 'the job is scheduled all the same');
like($stderr, qr/WARNING:  cron\.use_background_workers is off.*listens on no TCP address/s,
	'a warning names the setting');
like($stderr, qr/HINT:  Set cron\.use_background_workers = on/, 'and the hint says what to set');
$bare->stop;

done_testing();

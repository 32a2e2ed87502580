# Scheduling expiry and the birthday coupons with pg_cron, as
# docs/operations.md shows it: the jobs really run, expire points and
# issue a birthday coupon.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 20
});
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION loyalty;
    CREATE EXTENSION pg_cron;
    SELECT loyalty.create_program('cron_demo', 'USD', 1, 0, '30 days');
    SELECT loyalty.earn('cron_demo', 'old-member', 100, 'old-gift', as_of => now() - interval '60 days');
    SELECT loyalty.earn('cron_demo', 'new-member', 100, 'new-gift');
    SELECT loyalty.create_campaign('cron_demo', 'birthday_gift', '10% off');
    SELECT loyalty.set_auto_coupon('cron_demo', 'birthday', 'birthday_gift');
    SELECT loyalty.enroll('cron_demo', 'bday-member',
                          jsonb_build_object('birthday', to_char(now() AT TIME ZONE 'UTC', 'MM-DD')));
});

# The schedule from docs/operations.md, every minute instead of nightly.
$node->safe_psql('postgres',
    q{SELECT cron.schedule('loyalty-expire-points', '* * * * *', $$SELECT loyalty.expire_points()$$)});
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname = 'loyalty-expire-points'}),
    '1', 'the job is scheduled');

ok($node->poll_query_until('postgres',
    q{SELECT count(*) = 1 FROM loyalty.ledger WHERE kind = 'expire'}),
    'pg_cron ran loyalty.expire_points()');
is($node->safe_psql('postgres', q{SELECT member_id || ':' || points FROM loyalty.ledger WHERE kind = 'expire'}),
    'old-member:-100', 'only the old points expired');
is($node->safe_psql('postgres', q{SELECT bool_and(ok) FROM loyalty.verify()}), 't', 'books are clean');

# The daily birthday job from docs/operations.md, every minute here.
$node->safe_psql('postgres',
    q{SELECT cron.schedule('loyalty-birthday-coupons', '* * * * *', $$SELECT loyalty.issue_birthday_coupons('cron_demo')$$)});
ok($node->poll_query_until('postgres',
    q{SELECT count(*) >= 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
       WHERE j.jobname = 'loyalty-birthday-coupons' AND d.status = 'succeeded'}),
    'pg_cron ran loyalty.issue_birthday_coupons()');
is($node->safe_psql('postgres', q{SELECT string_agg(member_id || ':' || split_part(issued_ref, ':', 1), ',')
                                    FROM loyalty.coupon_code WHERE program = 'cron_demo'}),
    'bday-member:birthday', 'one birthday coupon, to the member whose birthday is today');

$node->stop;
done_testing();

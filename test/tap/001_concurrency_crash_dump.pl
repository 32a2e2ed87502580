# Real concurrency, a crash and a dump/restore on a cluster of our own:
# pgbench clients insert orders, redeem and refund at once; the server is
# killed mid-run; after recovery and after pg_dump/pg_restore the books
# still prove out with loyalty.verify().
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION loyalty;
    SELECT loyalty.create_program('tap', 'USD', 1, 0, '1 year');
    CREATE TABLE orders (id text, member text, amount numeric, status text);
    SELECT loyalty.attach_orders('tap', 'orders', 'id', 'member', 'amount', status => 'status');
    -- A redemption that may find the balance short (LY001) or its random
    -- reference taken (LY003): both are expected answers here.
    CREATE FUNCTION try_redeem(m text, pts bigint, r text) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM loyalty.redeem('tap', m, pts, r);
        RETURN true;
    EXCEPTION WHEN sqlstate 'LY001' OR sqlstate 'LY003' THEN
        RETURN false;
    END $$;
});

my $script = q{
\set m random(1, 40)
\set amt random(1, 300)
\set r random(1, 2000000000)
INSERT INTO orders VALUES (:client_id || '-' || :r, 'm' || :m, :amt, 'paid');
SELECT try_redeem('m' || :m, 25, 'ref-' || :client_id || '-' || :r);
UPDATE orders SET status = 'refunded' WHERE id = (SELECT id FROM orders WHERE member = 'm' || :m AND status = 'paid' ORDER BY id LIMIT 1) AND :r % 4 = 0;
};

$node->pgbench('--no-vacuum --client=6 --jobs=2 --transactions=150',
    0, [qr{processed: 900/900}], [qr{^$}],
    'six clients insert, redeem and refund at once', { '001_loyalty' => $script });

my $books = q{SELECT string_agg(check_name || '=' || ok, ' ' ORDER BY check_name) FROM loyalty.verify()};
my $clean = 'activity_days_add_up=true activity_equals_orders=true '
  . 'balance_equals_ledger=true balance_equals_lots_minus_debt=true clamped_orders_equal_activity=true '
  . 'holds_consistent=true '
  . 'lifetime_figures_equal_ledger=true lot_remainders_consistent=true no_negative_or_nan_figures=true '
  . 'no_order_earned_twice=true no_reversal_above_earning=true order_values_in_range=true '
  . 'tier_basis_equals_orders=true';
is($node->safe_psql('postgres', $books), $clean, 'books are clean after concurrent load');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM loyalty.ledger WHERE kind = 'redeem'}), '>', 0,
    'some redemptions went through');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM loyalty.ledger WHERE kind = 'reverse'}), '>', 0,
    'some refunds were reversed');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM (SELECT id FROM orders GROUP BY id) o
     WHERE NOT EXISTS (SELECT 1 FROM loyalty.order_earning e WHERE e.program = 'tap' AND e.order_id = o.id)}),
    '0', 'every order was seen by the trigger');

# Crash in the middle of a run: kill the server, recover, check the books.
my ($out, $err) = ('', '');
my $bench_file = $node->basedir . '/crash.sql';
PostgreSQL::Test::Utils::append_to_file($bench_file, $script);
my $bench = IPC::Run::start(
    [ 'pgbench', '--no-vacuum', '--client=4', '--time=30', '--file=' . $bench_file,
      '-h', $node->host, '-p', $node->port, 'postgres' ],
    '>', \$out, '2>', \$err);
$node->poll_query_until('postgres',
    q{SELECT count(*) > 1500 FROM loyalty.ledger}) or die 'load did not start';
$node->stop('immediate');
$bench->kill_kill;
$node->start;
is($node->safe_psql('postgres', $books), $clean, 'books are clean after a crash mid-load');

# A partitioned orders table, with a partition created after attach_orders
# and a constraint added after that: the restore recreates every trigger
# (the event trigger must not make them first) and its partitions still earn.
$node->safe_psql('postgres', q{
    SELECT loyalty.create_program('tap_part', 'USD', 1);
    CREATE TABLE part_orders (id int, member text, amount numeric, at date, PRIMARY KEY (id, at))
        PARTITION BY RANGE (at);
    CREATE TABLE part_orders_1 PARTITION OF part_orders FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
    SELECT loyalty.attach_orders('tap_part', 'part_orders', 'id', 'member', 'amount', created_at => 'at');
    CREATE TABLE part_orders_2 PARTITION OF part_orders FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
    ALTER TABLE part_orders ADD CONSTRAINT part_amount CHECK (amount >= 0);
    INSERT INTO part_orders VALUES (1, 'p1', 10, '2024-01-05'), (2, 'p1', 20, '2024-02-05');
});

# Members with contacts, and a rotated signal key: the restore must bring
# back the dumped keys in place of the fresh one its CREATE EXTENSION made,
# and hash the contacts (not dumped: derived) under the restored key.
$node->safe_psql('postgres', q{
    SELECT loyalty.enroll('tap', 'c1', '{"email": "Ann.Lee+x@gmail.com", "phone": "+84 90 111 2222"}');
    SELECT loyalty.rotate_signal_key();
    SELECT loyalty.enroll('tap', 'c2', '{"email": "annlee@googlemail.com"}');
});
my $keys = q{SELECT string_agg(id || ':' || md5(key::text) || ':' || (retired_at IS NULL), ',' ORDER BY id) FROM loyalty.signal_key};
my $contacts = q{SELECT string_agg(member_id || ':' || kind || ':' || key_id || ':' || encode(hash, 'hex'), ',' ORDER BY member_id, kind) FROM loyalty.member_contact};

# pg_dump keeps the loyalty data (extension config tables); a restore proves out.
my $snapshot = q{SELECT md5(string_agg(program || member_id || balance || debt || lifetime_earned, ',' ORDER BY program, member_id)) FROM loyalty.member};
my $before = $node->safe_psql('postgres', $snapshot);
my $dump = $node->basedir . '/loyalty.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
is($node->safe_psql('restored', $snapshot), $before, 'balances survive dump and restore');
is($node->safe_psql('restored', $books), $clean, 'books are clean after restore');
is($node->safe_psql('restored', $keys), $node->safe_psql('postgres', $keys),
    'the signal keys are the dumped ones, the fresh key of CREATE EXTENSION replaced');
is($node->safe_psql('restored', $contacts), $node->safe_psql('postgres', $contacts),
    'member contacts are hashed again under the restored key');
# The activity tables are not dumped: restoring order_earning builds them again.
my $activity = q{SELECT md5(string_agg(member_id || orders || net_spend || coalesce(last_order_at::text, ''), ',' ORDER BY member_id)) FROM loyalty.activity_total WHERE orders > 0};
is($node->safe_psql('restored', $activity), $node->safe_psql('postgres', $activity),
    'per-member activity is rebuilt by the restore');
is($node->safe_psql('restored', q{SELECT count(*) FROM loyalty.ledger}),
    $node->safe_psql('postgres', q{SELECT count(*) FROM loyalty.ledger}), 'the whole ledger was restored');
# The restored trigger still earns, and the restored ledger still refuses changes.
$node->safe_psql('restored', q{INSERT INTO orders VALUES ('after-restore', 'm1', 10, 'paid')});
is($node->safe_psql('restored', q{SELECT points FROM loyalty.order_earning WHERE order_id = 'after-restore'}),
    '10', 'the restored trigger earns');
$node->safe_psql('restored', q{INSERT INTO part_orders_2 VALUES (3, 'p1', 30, '2024-02-06')});
$node->safe_psql('restored', q{UPDATE part_orders SET at = '2024-01-07' WHERE id = 2});
is($node->safe_psql('restored', q{SELECT string_agg(order_id || ':' || points || ':' || closed, ',' ORDER BY order_id)
                                   FROM loyalty.order_earning WHERE program = 'tap_part'}),
    '1:10:false,2:20:false,3:30:false', 'a restored partitioned table earns in a partition and keeps a moved order');
my ($rc, $stdout, $stderr) = $node->psql('restored', 'DELETE FROM loyalty.ledger');
like($stderr, qr/append-only/, 'the restored ledger is append-only');

$node->stop;
done_testing();

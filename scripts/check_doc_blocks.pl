#!/usr/bin/env perl
# Every ```sql block of the given Markdown files appears, as written, in
# one of the regression files sql/*.sql, the upgrade test's files
# (test/upgrade/*.sql, *.sh), the TAP tests (test/tap/*.pl) or the Citus
# cluster scenarios (test/citus/sql/*.sql) (blank lines and trailing spaces
# aside), so that a procedure the docs give is one a test runs.
#   perl scripts/check_doc_blocks.pl docs/adopting.md docs/scale-out.md
# Prints "test <file> examples run by tests ... ok|FAILED" per file and the
# first line of each block not found; exits 1 if any is missing.
use strict;
use warnings;
use File::Basename qw(dirname);

my $root = dirname(__FILE__) . '/..';
sub norm { my ($t) = @_; $t =~ s/[ \t]+$//mg; $t =~ s/\n{2,}/\n/g; $t =~ s/^\n+|\n+$//g; return $t }
my $tests = '';
# The blocks a regression file cannot run (pg_cron, ALTER EXTENSION ...
# UPDATE) are run by the upgrade test and the TAP tests; those of a Citus
# cluster by its scenarios.
for my $f (map { sort glob("$root/$_") } qw(sql/*.sql test/upgrade/*.sql test/upgrade/*.sh test/tap/*.pl test/citus/sql/*.sql)) {
	open(my $fh, '<', $f) or die "$f: $!";
	local $/;
	$tests .= norm(scalar <$fh>) . "\n";
}
my $failed = 0;
for my $doc (@ARGV) {
	open(my $fh, '<', $doc) or die "$doc: $!";
	my ($in, $block, @missing) = (0, '');
	while (my $line = <$fh>) {
		if (!$in && $line =~ /^```sql\s*$/) { ($in, $block) = (1, ''); next }
		if ($in && $line =~ /^```\s*$/) {
			$in = 0;
			my $b = norm($block);
			push @missing, ($b =~ /^(.*)$/m)[0] if index($tests, $b) < 0;
			next;
		}
		$block .= $line if $in;
	}
	print "  not in sql/*.sql, test/upgrade/, test/tap/, test/citus/sql/: $_\n" for @missing;
	printf "test %s examples run by tests ... %s\n", $doc, @missing ? 'FAILED' : 'ok';
	$failed = 1 if @missing;
}
exit $failed;

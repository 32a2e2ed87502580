#!/usr/bin/perl
# An isolation spec of test/isolation for a database that has loyalty
# already (distributed on a cluster): its CREATE EXTENSION goes, and its
# teardown becomes one CALL public.test_reinstall('<the other statements>')
# (test/citus/helpers.sql): a procedure may COMMIT only when it is the
# whole query, and distribute() needs the new extension committed.
use strict;
use warnings;
local $/;
my $spec = <>;
$spec =~ s/^\s*CREATE EXTENSION IF NOT EXISTS loyalty;[ \t]*\n//mg;
$spec =~ s{^teardown\s*\{(.*?)^\}}{
	my $t = $1;
	$t =~ s/^\s*DROP EXTENSION loyalty CASCADE;[ \t]*\n//m;
	$t =~ s/^\s+|\s+$//g;
	"teardown\n{\n    CALL public.test_reinstall(\$reinstall\$$t\$reinstall\$);\n}"
}mse;
print $spec;

#!/usr/bin/env perl
# Every SQL statement the C code runs is schema-qualified: no operator,
# function or type it names is looked up on the search_path.
#
#   perl scripts/check_qualified_sql.pl [--cc CC] [-I DIR ...] [--list] FILE.c ...
#
# Prints "test FILE (qualified SQL) ... ok|FAILED" per file, each finding as
# "FILE:LINE: what: statement", and exits non-zero on any finding.
# --list also prints every statement it checks.
#
# The statements: each file goes through the C preprocessor (so macros such
# as CREDIT_WRITE are checked where they are used, whole), and every string
# literal of the file itself (adjacent literals joined, as C joins them)
# that begins with an upper-case SQL keyword (the house style) is a
# statement.  printf-style %s stand for identifiers the C code quotes.
#
# Findings, in a statement with its 'literals' and "identifiers" blanked
# and OPERATOR(pg_catalog.x) and OPERATOR(%s) (an operator the C code
# qualifies) removed:
#  - an operator token (= <> != < <= > >= + - * / || ~ ...), except
#      the = of an assignment in a SET list (UPDATE, ON CONFLICT DO UPDATE),
#      => (named argument) and :: (cast),
#      * not after an operand (SELECT *, x.*, count(*)),
#      - right before a number and not after an operand (a negative constant);
#  - a construct that looks up = on the search_path: IN (...), BETWEEN,
#    LIKE / ILIKE / SIMILAR TO, JOIN ... USING (columns), CASE x WHEN,
#    NULLIF(...), IS [NOT] DISTINCT FROM;
#  - a function call name( without a schema, except the constructs
#    coalesce, greatest, least, extract, exists, array, row, cast and
#    unnest (unnest of several arrays, a FROM-clause construct, only works
#    unqualified), and an alias's column list (AS u(a, b));
#  - a cast ::type to a type without a schema, except the type keywords
#    of the grammar, which are pg_catalog's.
use strict;
use warnings;
use File::Basename qw(dirname);

my $cc = $ENV{CC} || 'cc';
my (@inc, $list);
while (@ARGV && $ARGV[0] =~ /^-/)
{
	my $opt = shift @ARGV;
	if ($opt eq '--cc') { $cc = shift @ARGV; }
	elsif ($opt eq '--list') { $list = 1; }
	elsif ($opt eq '-I') { push @inc, '-I', shift @ARGV; }
	elsif ($opt =~ /^-I(.+)/) { push @inc, '-I', $1; }
	else { die "unknown option $opt\n"; }
}

my $KEYWORD = qr/^\s*(?:SELECT|WITH|INSERT|UPDATE|DELETE|VALUES|TABLE|MERGE|LOCK|TRUNCATE)\b/;
my %CONSTRUCT = map { $_ => 1 } qw(coalesce greatest least extract exists array row cast nullif unnest);
my %TYPE_KEYWORD = map { $_ => 1 } qw(bigint integer int smallint numeric decimal boolean bool
  real float double interval char character varchar bit time timestamp);
my %SET_END = map { $_ => 1 } qw(WHERE FROM RETURNING);

# The string literals of the file itself (not of the headers it includes;
# a header's macros show where they are expanded): [line, text] each.
sub statements
{
	my ($file) = @_;
	my $dir = dirname($file);
	open(my $fh, '-|', $cc, '-E', @inc, "-I$dir", $file) or die "$cc -E $file: $!\n";
	my ($line, $mine, $cur, @out) = (0, 0);
	while (my $l = <$fh>)
	{
		if ($l =~ /^# (\d+) "([^"]*)"/)
		{
			($line, $mine) = ($1 - 1, $2 eq $file);
			$cur = undef;
			next;
		}
		$line++;
		next unless $mine;
		# C tokens: string literals, character literals, the rest.
		while ($l =~ /\G(?:("(?:\\.|[^"\\])*")|'(?:\\.|[^'\\])*'|(\s+)|[^"'\s]+)/gc)
		{
			if (defined $1)
			{
				my $s = substr($1, 1, -1);
				$s =~ s/\\([tnrfv])/ /g;
				$s =~ s/\\(.)/$1/g;
				if ($cur) { $cur->[1] .= $s; }
				else { $cur = [$line, $s]; push @out, $cur; }
			}
			elsif (!defined $2) { $cur = undef; }
		}
	}
	close($fh) or die "$cc -E $file failed\n";
	return grep { $_->[1] =~ $KEYWORD } @out;
}

sub operand { return $_[0] =~ /^(?:[\w.\$]+|\)|\]|'x*')$/ && $_[0] !~ /^(?:SELECT|DISTINCT|ALL)$/i; }

# The findings of one statement: [offset, what] each.  Blanking keeps
# offsets (findings show the statement as written): 'literals' become
# 'xx', "identifiers" and %s letters, OPERATOR(pg_catalog.x) the word
# OPERATOR and blanks.
sub check
{
	my ($sql) = @_;
	my ($text, @found) = ($sql);
	$sql =~ s/'((?:[^']|'')*)'/"'" . ('x' x length($1)) . "'"/ge;
	$sql =~ s/"((?:[^"]|"")*)"/'q' x (length($1) + 2)/ge;
	$sql =~ s/(OPERATOR\((?:pg_catalog\.[^)]*|%s)\))/'OPERATOR' . (' ' x (length($1) - 8))/ge;
	$sql =~ s/%[sdu]/id/g;
	while ($sql =~ /\b(IN\s*\(|BETWEEN|I?LIKE|SIMILAR\s+TO|USING\s*\(\s*\w+(?:\s*,\s*\w+)*\s*\)|NULLIF\s*\(|IS\s+(?:NOT\s+)?DISTINCT\s+FROM|CASE\s+(?!WHEN\b))/gi)
	{
		(my $what = uc $1) =~ s/\s+/ /g;
		$what = 'CASE x WHEN' if $what eq 'CASE ';
		$what = 'USING (...)' if $what =~ /^USING/;
		push @found, [$-[0], "$what compares with the = of the search_path"];
	}
	# name( with no space: a function call (keywords take a space).
	while ($sql =~ /\b([A-Za-z_]\w*)\(/g)
	{
		my ($name, $at) = ($1, $-[1]);
		next if $CONSTRUCT{ lc $name } || $name eq 'OPERATOR' || ($at > 0 && substr($sql, $at - 1, 1) eq '.');
		next if substr($sql, 0, $at) =~ /\bAS\s+$/i;
		push @found, [$at, "$name( is a function without a schema"];
	}

	my (@tok, @at);
	while ($sql =~ /(\$\d+|\d+(?:\.\d+)?|[A-Za-z_][\w\$]*(?:\.(?:[A-Za-z_][\w\$]*|\*))*|'x*'|::|=>|[-+*\/<>=~!@#%^&|`?]+|\S)/g)
	{
		push @tok, $1;
		push @at, $-[1];
	}
	my ($depth, @set) = (0);			# paren depth; depths of open SET lists
	for my $i (0 .. $#tok)
	{
		my ($t, $prev, $next) = ($tok[$i], $i > 0 ? $tok[$i - 1] : '', $tok[$i + 1] // '');
		my $before = $i > 1 ? $tok[$i - 2] : '';
		if ($t eq '(') { $depth++; next; }
		if ($t eq ')') { $depth--; pop @set while @set && $set[-1] > $depth; next; }
		if (uc($t) eq 'SET') { push @set, $depth; next; }
		pop @set if @set && $set[-1] == $depth && $SET_END{ uc $t };
		if ($t eq '::')
		{
			push @found, [$at[$i], "::$next is a type without a schema"]
			  if $next =~ /^[A-Za-z_]\w*$/ && !$TYPE_KEYWORD{ lc $next };
			next;
		}
		next unless $t =~ /^[-+*\/<>=~!@#%^&|`?]+$/ && $t ne '=>';
		next if $t eq '*' && !operand($prev);
		next if $t eq '-' && $next =~ /^\d/ && !operand($prev);
		next if $t eq '=' && @set && $set[-1] == $depth && $prev =~ /^\w+$/
		  && ($before eq ',' || uc($before) eq 'SET');
		push @found, [$at[$i], "$t is an operator without a schema"];
	}
	return map { [$_->[0], $_->[1] . ': ' . shown($text, $_->[0])] } sort { $a->[0] <=> $b->[0] } @found;
}

# The statement around offset at, on one line.
sub shown
{
	my ($sql, $at) = @_;
	my $from = $at > 40 ? $at - 40 : 0;
	(my $s = substr($sql, $from, 80)) =~ s/\s+/ /g;
	return ($from > 0 ? '...' : '') . $s . '...';
}

my $failed = 0;
for my $file (@ARGV)
{
	my @report;
	for my $st (statements($file))
	{
		print "$file:$st->[0]: $st->[1]\n" if $list;
		push @report, "$file:$st->[0]: $_->[1]" for check($st->[1]);
	}
	printf "test %s (qualified SQL) ... %s\n", $file, @report ? 'FAILED' : 'ok';
	print "$_\n" for @report;
	$failed++ if @report;
}
exit($failed ? 1 : 0);

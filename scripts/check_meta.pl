#!/usr/bin/env perl
# Checks META.json against the PGXN meta spec 1.0.0 (https://pgxn.org/meta/spec.txt:
# required keys, their types, semantic versions, licenses, prereq phases and
# relations, custom keys only as x_/X_) and that the release's version is
# the same everywhere: META.json (version and provides), the Makefile's
# EXTVERSION, loyalty.control's default_version, a section of CHANGELOG.md
# and the header of docs/reference.md.  Every file the metadata names must
# be in the distribution.
#
#   perl scripts/check_meta.pl [--root DIR] [META.json]
#
# Prints one line per problem and "META.json ... ok" or "... FAILED";
# exits 1 on any problem.
use strict;
use warnings;
use JSON::PP;

my $root = '.';
if (@ARGV >= 2 && $ARGV[0] eq '--root') { shift; $root = shift; }
my $meta_path = shift // "$root/META.json";
my @problems;
sub problem { push @problems, join('', @_); }

sub slurp {
	my ($path) = @_;
	open(my $fh, '<', $path) or do { problem("cannot read $path: $!"); return ''; };
	local $/;
	return scalar <$fh>;
}

my $semver = qr/^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+)?$/;
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2
	bsd freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0
	mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source
	restricted unrestricted unknown);
my %top = map { $_ => 1 } qw(name version abstract maintainer license provides meta-spec
	description generated_by tags prereqs release_status resources no_index);
my %phases = map { $_ => 1 } qw(configure build runtime test develop);
my %relations = map { $_ => 1 } qw(requires recommends suggests conflicts);

my $meta = eval { JSON::PP->new->decode(slurp($meta_path)) };
if (!$meta) { problem("$meta_path is not valid JSON: ", $@ =~ s/\s+$//r) }
elsif (ref $meta ne 'HASH') { problem("$meta_path is not a JSON object"); $meta = undef }

sub is_str { defined $_[0] && !ref $_[0] && length $_[0] }
sub str_list {    # a string or a non-empty array of strings
	my ($v) = @_;
	return is_str($v) || (ref $v eq 'ARRAY' && @$v && !grep { !is_str($_) } @$v);
}
sub in_dist { -f "$root/$_[0]" || problem("$_[1] names $_[0], which is not in the distribution") }

# A prereq version: 0, a semantic version, or comparisons joined by commas.
sub prereq_version_ok {
	my ($v) = @_;
	return 1 if defined $v && !ref $v && $v =~ /^0$/;
	return 0 unless is_str($v);
	for my $part (split /\s*,\s*/, $v) {
		return 0 unless $part =~ /^(?:(?:>=|<=|==|!=|>|<)\s*)?(.+)$/ && $1 =~ $semver;
	}
	return 1;
}

if ($meta) {
	for my $k (qw(name version abstract maintainer license provides meta-spec)) {
		problem("required key \"$k\" is missing") unless exists $meta->{$k};
	}
	for my $k (sort keys %$meta) {
		problem("unknown key \"$k\" (custom keys start with x_ or X_)") unless $top{$k} || $k =~ /^[xX]_/;
	}
	my $spec = $meta->{'meta-spec'};
	problem('meta-spec.version must be "1.0.0"')
		unless ref $spec eq 'HASH' && ($spec->{version} // '') eq '1.0.0';
	problem('name must be a string of 2 or more characters without / \\ or control characters')
		unless is_str($meta->{name}) && length($meta->{name}) >= 2 && $meta->{name} !~ m{[/\\[:cntrl:]]};
	problem('version "', $meta->{version} // '', '" is not a semantic version')
		unless is_str($meta->{version}) && $meta->{version} =~ $semver;
	problem('abstract must be a string') unless is_str($meta->{abstract});
	problem('maintainer must be a string or a list of strings') unless str_list($meta->{maintainer});
	my $lic = $meta->{license};
	if (ref $lic eq 'HASH') { problem('license must name at least one license') unless %$lic }
	elsif (str_list($lic)) {
		for (ref $lic ? @$lic : $lic) { problem("license \"$_\" is not one of the spec's") unless $licenses{$_} }
	}
	else { problem('license must be a string, a list or an object') }
	problem('release_status must be stable, testing or unstable')
		if exists $meta->{release_status} && ($meta->{release_status} // '') !~ /^(stable|testing|unstable)$/;
	if (exists $meta->{tags}) {
		problem('tags must be a list of strings of at most 255 characters')
			unless ref $meta->{tags} eq 'ARRAY' && !grep { !is_str($_) || length($_) > 255 } @{ $meta->{tags} };
	}
	my $prov = $meta->{provides};
	if (ref $prov ne 'HASH' || !%$prov) { problem('provides must name at least one extension') }
	else {
		for my $ext (sort keys %$prov) {
			my $p = $prov->{$ext};
			if (ref $p ne 'HASH') { problem("provides.$ext must be an object"); next }
			problem("provides.$ext.file is missing") unless is_str($p->{file});
			in_dist($p->{file}, "provides.$ext.file") if is_str($p->{file});
			in_dist($p->{docfile}, "provides.$ext.docfile") if is_str($p->{docfile});
			problem("provides.$ext.version \"", $p->{version} // '', '" is not a semantic version')
				unless is_str($p->{version}) && $p->{version} =~ $semver;
			for my $k (sort keys %$p) {
				problem("provides.$ext has unknown key \"$k\"")
					unless $k =~ /^(file|version|abstract|docfile)$/ || $k =~ /^[xX]_/;
			}
		}
	}
	if (exists $meta->{prereqs}) {
		my $pre = $meta->{prereqs};
		if (ref $pre ne 'HASH') { problem('prereqs must be an object') }
		else {
			for my $phase (sort keys %$pre) {
				problem("prereqs has unknown phase \"$phase\"") unless $phases{$phase};
				my $rels = $pre->{$phase};
				if (ref $rels ne 'HASH') { problem("prereqs.$phase must be an object"); next }
				for my $rel (sort keys %$rels) {
					problem("prereqs.$phase has unknown relation \"$rel\"") unless $relations{$rel};
					my $deps = $rels->{$rel};
					if (ref $deps ne 'HASH') { problem("prereqs.$phase.$rel must be an object"); next }
					for my $dep (sort keys %$deps) {
						problem("prereqs.$phase.$rel.$dep: \"", $deps->{$dep} // 'null', '" is not a version')
							unless prereq_version_ok($deps->{$dep});
					}
				}
			}
		}
	}
	if (exists $meta->{no_index}) {
		my $ni = $meta->{no_index};
		if (ref $ni ne 'HASH') { problem('no_index must be an object') }
		else {
			for my $k (sort keys %$ni) {
				problem("no_index has unknown key \"$k\"") unless $k =~ /^(file|directory)$/ || $k =~ /^[xX]_/;
				problem("no_index.$k must be a string or a list of strings") unless str_list($ni->{$k});
			}
		}
	}

	# One version everywhere.
	my $v = $meta->{version} // '';
	my ($make) = slurp("$root/Makefile") =~ /^EXTVERSION\s*=\s*(\S+)/m;
	my ($control) = slurp("$root/loyalty.control") =~ /^default_version\s*=\s*'([^']*)'/m;
	my ($ref) = slurp("$root/docs/reference.md") =~ /\A#[^\n]*\(([^)]*)\)/;
	problem("META.json version $v differs from the Makefile's EXTVERSION ", $make // '(none)')
		unless ($make // '') eq $v;
	problem("META.json version $v differs from loyalty.control's default_version ", $control // '(none)')
		unless ($control // '') eq $v;
	problem("META.json version $v differs from provides.loyalty.version ", $prov->{loyalty}{version} // '(none)')
		unless ref $prov eq 'HASH' && ref $prov->{loyalty} eq 'HASH' && ($prov->{loyalty}{version} // '') eq $v;
	problem("CHANGELOG.md has no section \"## $v\"")
		unless slurp("$root/CHANGELOG.md") =~ /^## \Q$v\E\b/m;
	problem("docs/reference.md's title names version ", $ref // '(none)', ", not $v")
		unless ($ref // '') eq $v;
}

print "$_\n" for @problems;
printf "%s ... %s\n", $meta_path, @problems ? 'FAILED' : 'ok';
exit(@problems ? 1 : 0);

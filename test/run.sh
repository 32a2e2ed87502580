#!/usr/bin/env bash
# Runs every test suite of loyalty against a throwaway cluster:
# the qualified-SQL check (scripts/check_qualified_sql.pl), pg_regress
# (sql/, expected/), isolation (test/isolation), pgTAP (test/pgtap) and TAP
# (test/tap), and the upgrade from 0.1.0 (test/upgrade, in a private copy
# of the server with a cluster of its own), and loyalty on a Citus cluster
# against a single node (test/citus, nodes of its own; builds Citus from
# ../shared/citus when missing).  Installs what is missing first.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

setup_toolchain 'postgresql-@V@-pgtap' 'postgresql-@V@-cron' \
	libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
bash "$ROOT/scripts/doc_examples.sh"
build_install
start_cluster "max_prepared_transactions=10"

failed_suites=()
LOG=$ROOT/.tmp/test-run.log
: >"$LOG"
suite() {
	local name=$1
	shift
	log "suite: $name"
	"$@" 2>&1 | tee -a "$LOG" || failed_suites+=("$name")
}

regress() {
	make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck ISOLATION= || {
		cat "$ROOT/regression.diffs"
		return 1
	}
}

# Every regression file again, each alone in a fresh database: no file may
# lean on what another made (about 30 s).
regress_each() {
	bash "$ROOT/scripts/regress_each.sh" --running
}

isolation() {
	make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS= || {
		cat "$ROOT/test/isolation/output/regression.diffs"
		return 1
	}
}

pgtap() {
	psql_q -d postgres -c 'DROP DATABASE IF EXISTS loyalty_tap' -c 'CREATE DATABASE loyalty_tap'
	psql_q -d loyalty_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION loyalty'
	pg_prove --dbname loyalty_tap "$ROOT"/test/pgtap/*.sql
}

# TAP tests start clusters of their own with PostgreSQL::Test::Cluster, so
# they run as the cluster user, from a copy it can read and write.
tap() {
	local dir=$WORK/tap
	rm -rf "$dir"
	mkdir -p "$dir"
	cp -r "$ROOT/test/tap" "$dir/t"
	[ "$(id -u)" -eq 0 ] && chown -R "$(cluster_user)" "$dir"
	(cd "$dir" && run_as_cluster_user env PATH="$PG_BIN:$PATH" TESTDIR="$dir" \
		PG_REGRESS="$("$PG_CONFIG" --pgxs | sed 's|src/makefiles/pgxs.mk|src/test/regress/pg_regress|')" \
		PGHOST= PGPORT= PGUSER= prove --ext=.pl -I "$("$PG_CONFIG" --pgxs | sed 's|makefiles/pgxs.mk|test/perl|')" t/)
}

# Every SQL statement in src/*.c is schema-qualified (operators included),
# and the checker still finds what it must: one finding on each line of
# test/qualified_sql/bad.c, none in good.c.
qualified_sql() {
	local check=(perl scripts/check_qualified_sql.pl -I "$("$PG_CONFIG" --includedir-server)")
	local dir=test/qualified_sql found
	cd "$ROOT"
	if found=$("${check[@]}" src/*.c); then
		echo "test qualified SQL (src/*.c) ... ok"
	else
		echo "$found" | grep -v '^test '
		echo "test qualified SQL (src/*.c) ... FAILED"
		return 1
	fi
	found=$("${check[@]}" "$dir/good.c" "$dir/bad.c" | grep -v '^test ' || true)
	if [ "$(grep -n '^	"' "$dir/bad.c" | cut -d: -f1)" = "$(echo "$found" | cut -d: -f2)" ] &&
		! grep -q "^$dir/good.c:" <<<"$found"; then
		echo "test qualified SQL checker ($dir) ... ok"
	else
		echo "test qualified SQL checker ($dir) ... FAILED"
		echo "$found"
		return 1
	fi
}

# META.json is valid PGXN metadata with the version of the Makefile, the
# control file, the CHANGELOG and the reference; and the checker still
# refuses what it must (a changed version, a missing key, an unknown license).
release_meta() {
	local check=(perl "$ROOT/scripts/check_meta.pl" --root "$ROOT") dir=$ROOT/.tmp/meta bad
	if "${check[@]}" "$ROOT/META.json"; then
		echo "test META.json (PGXN meta spec 1.0.0, one version everywhere) ... ok"
	else
		echo "test META.json (PGXN meta spec 1.0.0, one version everywhere) ... FAILED"
		return 1
	fi
	mkdir -p "$dir"
	sed 's/"0\.2\.0"/"9.9.9"/g' "$ROOT/META.json" >"$dir/version.json"
	grep -v '"license"' "$ROOT/META.json" >"$dir/no_license.json"
	sed 's/"license": "postgresql"/"license": "postgres"/' "$ROOT/META.json" >"$dir/bad_license.json"
	for bad in version no_license bad_license; do
		if "${check[@]}" "$dir/$bad.json" >"$dir/$bad.out"; then
			echo "test META.json checker refuses $bad.json ... FAILED"
			return 1
		fi
		echo "test META.json checker refuses $bad.json ... ok"
	done
}

# The README's tour runs as written, without an error, in a fresh database,
# and leaves clean books.
readme_tour() {
	local tour=$WORK/readme_tour.sql
	awk '/^## A five-minute tour/ { t = 1 } t && /^```sql$/ { on = 1; next }
	     on && /^```$/ { exit } on { print }' "$ROOT/README.md" >"$tour"
	[ -s "$tour" ] || { echo "test README tour (no sql block found) ... FAILED"; return 1; }
	psql_q -d postgres -c 'SET client_min_messages = warning' \
		-c 'DROP DATABASE IF EXISTS loyalty_readme' -c 'CREATE DATABASE loyalty_readme'
	if psql_q -d loyalty_readme -f "$tour" >"$WORK/readme_tour.out" 2>&1 &&
		[ "$(psql_q -d loyalty_readme -At -c 'SELECT bool_and(ok) FROM loyalty.verify()')" = t ]; then
		echo "test README tour ... ok"
	else
		cat "$WORK/readme_tour.out"
		echo "test README tour ... FAILED"
		return 1
	fi
}

# Every sql example of docs/adopting.md and docs/scale-out.md is run, as
# written, by a regression file, the upgrade test, a TAP test or a Citus
# cluster scenario (the procedures of a DBA's first day are tested, not
# only shown).
doc_blocks() {
	perl "$ROOT/scripts/check_doc_blocks.pl" "$ROOT/docs/adopting.md" "$ROOT/docs/scale-out.md"
}

suite "qualified SQL (scripts/check_qualified_sql.pl)" qualified_sql
suite "release metadata (scripts/check_meta.pl)" release_meta
suite "docs/adopting.md and docs/scale-out.md examples run by tests (scripts/check_doc_blocks.pl)" doc_blocks
suite "pg_regress (sql/, expected/)" regress
suite "pg_regress, each file alone (scripts/regress_each.sh)" regress_each
suite "isolation (test/isolation)" isolation
suite "pgTAP (pg_prove)" pgtap
suite "TAP (prove, PostgreSQL::Test::Cluster)" tap
suite "README tour" readme_tour
suite "upgrade 0.1.0 -> this version (test/upgrade/run.sh)" bash "$ROOT/test/upgrade/run.sh"
suite "Citus cluster = single node (test/citus/run.sh)" bash "$ROOT/test/citus/run.sh"

log "summary"
# One line per test file in every runner's output: "test x ... ok" (pg_regress,
# isolation) and "file.sql .. ok" (pg_prove, prove).
# pg_regress 16+ prints "ok 1 - x" / "not ok 1 - x" instead.
passed=$(grep -cE '^test .*\.\.\. +ok|^ok [0-9]+ +- |^\S+\.(sql|pl) \.+ ok$' "$LOG" || true)
failed=$(grep -cE '\.\.\. +FAILED|^not ok [0-9]+ +- |^\S+\.(sql|pl) \.+ (Failed|Dubious)' "$LOG" || true)
for f in "${failed_suites[@]}"; do echo "FAILED suite: $f"; done
[ ${#failed_suites[@]} -gt 0 ] && [ "$failed" -eq 0 ] && failed=${#failed_suites[@]}
echo "tests: $passed passed, $failed failed"
[ ${#failed_suites[@]} -eq 0 ]

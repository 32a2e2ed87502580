#!/usr/bin/env bash
# Runs every test suite of loyalty against a throwaway cluster:
# pg_regress (sql/, expected/), isolation (test/isolation), pgTAP
# (test/pgtap) and TAP (test/tap).  Installs what is missing first.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

setup_toolchain 'postgresql-@V@-pgtap' 'postgresql-@V@-cron' \
	libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
build_install
start_cluster "max_prepared_transactions=10"

passed=0
failed=0
failures=()
suite() {
	local name=$1
	shift
	log "suite: $name"
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
	fi
}

regress() {
	make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck || {
		[ -f "$ROOT/regression.diffs" ] && cat "$ROOT/regression.diffs"
		[ -f "$ROOT/test/isolation/output/regression.diffs" ] && cat "$ROOT/test/isolation/output/regression.diffs"
		return 1
	}
}

pgtap() {
	psql_q -d postgres -c 'DROP DATABASE IF EXISTS loyalty_tap' -c 'CREATE DATABASE loyalty_tap'
	psql_q -d loyalty_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION loyalty'
	pg_prove --dbname loyalty_tap --ext .sql "$ROOT"/test/pgtap/
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
		PGHOST= PGPORT= PGUSER= prove -I "$("$PG_CONFIG" --pgxs | sed 's|makefiles/pgxs.mk|test/perl|')" t/)
}

suite "pg_regress + isolation (make installcheck)" regress
suite "pgTAP (pg_prove)" pgtap
suite "TAP (prove, PostgreSQL::Test::Cluster)" tap

log "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# The upgrade test: loyalty 0.1.0, built from its own source
# (loyalty-0.1.0.tar.gz, `git archive` of the 0.1.0 commit), installed into a
# private copy of the PostgreSQL installation (the system's, or the one
# LOYALTY_PG_BIN points at, stays untouched), loaded with data through its
# API; then this tree installed over it, the server restarted,
# ALTER EXTENSION loyalty UPDATE, and the updated database checked:
# verify() clean, ledger and balances unchanged, new orders earn, and its
# catalog equal to a fresh install's on the same server (catalog.sql, one
# fact a line; every difference printed with the object's name).
# Prints TAP lines ("ok N - ...", "not ok N - ..."); exits non-zero on a failure.
# The archive: git archive --format=tar fa07f84 Makefile loyalty.control src | gzip -9n
# Alone: bash test/upgrade/run.sh (as root or as a user who can run initdb).
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

HERE=$ROOT/test/upgrade
[ -n "${PG_CONFIG:-}" ] && [ -n "${PG_BIN:-}" ] && [ -n "${PG_VERSION:-}" ] || setup_toolchain
started=$SECONDS

n=0
failures=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1))
	failures=$((failures + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && sed 's/^/#   /' <<<"$2"
	return 0
}

# -- A private copy of the installation: /usr/lib/postgresql/V,
# /usr/share/postgresql/V and /usr/include/postgresql under one prefix
# (PostgreSQL finds its files relative to its binaries).
prefix=${PG_BIN%/usr/lib/postgresql/$PG_VERSION/bin}
if [ "$prefix" = "$PG_BIN" ] || [ ! -d "$prefix/usr/share/postgresql/$PG_VERSION" ]; then
	echo "not ok 1 - $PG_BIN is not laid out as <prefix>/usr/lib/postgresql/$PG_VERSION/bin"
	exit 1
fi
user=$(cluster_user)
DIR=$ROOT/.tmp/upgrade
# A server an interrupted run left behind would outlive its directory and,
# on exit, remove the new server's socket: stop it first.
[ -f "$DIR/data/postmaster.pid" ] &&
	{ run_as_cluster_user "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true; }
rm -rf "$DIR"
mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown "$user" "$ROOT/.tmp"
if ! run_as_cluster_user test -w "$ROOT/.tmp"; then
	DIR=$(mktemp -d /tmp/loyalty-upgrade.XXXXXX)
fi
chmod 755 "$DIR"
COPY=$DIR/pg
mkdir -p "$COPY/usr/lib/postgresql" "$COPY/usr/share/postgresql" "$COPY/usr/include"
cp -a "$prefix/usr/lib/postgresql/$PG_VERSION" "$COPY/usr/lib/postgresql/"
cp -a "$prefix/usr/share/postgresql/$PG_VERSION" "$COPY/usr/share/postgresql/"
cp -a "$prefix/usr/include/postgresql" "$COPY/usr/include/"
BIN=$COPY/usr/lib/postgresql/$PG_VERSION/bin
CONFIG=$BIN/pg_config
# Whatever loyalty the copied installation had goes: only 0.1.0 first.
rm -rf "$("$CONFIG" --sharedir)"/extension/loyalty[.-]* "$("$CONFIG" --pkglibdir)/loyalty.so" \
	"$("$CONFIG" --pkglibdir)/bitcode/loyalty" "$("$CONFIG" --pkglibdir)/bitcode/loyalty.index.bc"

# -- loyalty 0.1.0 from its own source.  No bitcode (with_llvm=no): faster,
# and JIT is not what this test is about.
mkdir "$DIR/loyalty-0.1.0"
tar -xzf "$HERE/loyalty-0.1.0.tar.gz" -C "$DIR/loyalty-0.1.0"
if make -C "$DIR/loyalty-0.1.0" -s -j2 PG_CONFIG="$CONFIG" with_llvm=no >"$DIR/build-0.1.0.log" 2>&1 &&
	make -C "$DIR/loyalty-0.1.0" -s PG_CONFIG="$CONFIG" with_llvm=no install >>"$DIR/build-0.1.0.log" 2>&1; then
	ok "loyalty 0.1.0 built from test/upgrade/loyalty-0.1.0.tar.gz"
else
	not_ok "loyalty 0.1.0 built from test/upgrade/loyalty-0.1.0.tar.gz" "$(tail -n 20 "$DIR/build-0.1.0.log")"
	exit 1
fi
if cmp -s "$DIR/loyalty-0.1.0/loyalty--0.1.0.sql" "$ROOT/loyalty--0.1.0.sql"; then
	ok "loyalty--0.1.0.sql of this tree is the script 0.1.0 built"
else
	not_ok "loyalty--0.1.0.sql of this tree is the script 0.1.0 built" \
		"$(diff "$DIR/loyalty-0.1.0/loyalty--0.1.0.sql" "$ROOT/loyalty--0.1.0.sql" | head -n 20)"
fi

# -- A cluster of the copy.
[ "$(id -u)" -eq 0 ] && chown -R "$user" "$DIR"
DATA=$DIR/data
PORT=$(free_port "$DIR")
run_as_cluster_user "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
	{ cat "$DIR/initdb.log" >&2; exit 1; }
opts="-c listen_addresses='' -c unix_socket_directories='$DIR' -p $PORT -c fsync=off"
pg() { run_as_cluster_user "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -o "$opts" -w "$@" >/dev/null; }
stop() { [ -f "$DATA/postmaster.pid" ] && run_as_cluster_user "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop EXIT
pg start || { cat "$DIR/server.log" >&2; exit 1; }
q() { "$BIN/psql" -X -v ON_ERROR_STOP=1 -q -h "$DIR" -p "$PORT" -U postgres "$@"; }

# -- 0.1.0 with data.
q -d postgres -c 'CREATE DATABASE updated' -c 'CREATE DATABASE fresh'
if out=$(q -d updated -o /dev/null -f "$HERE/load_0.1.0.sql" 2>&1); then
	ok "0.1.0 loaded with data through its API, its verify() clean"
else
	not_ok "0.1.0 loaded with data through its API, its verify() clean" "$out"
	exit 1
fi
q -d updated -o /dev/null -f "$HERE/snapshot.sql"
# 0.1.0 took an infinite earn rate, which 0.2.0 refuses: that update must stop.
q -d postgres -c 'CREATE DATABASE infinite'
q -d infinite -o /dev/null -c "CREATE EXTENSION loyalty VERSION '0.1.0'" \
	-c "SELECT loyalty.create_program('inf', earn_rate => 'Infinity')"

# -- This tree over it, a restart (the new loyalty.so), the update.
if out=$(make -C "$ROOT" -s PG_CONFIG="$CONFIG" with_llvm=no install 2>&1); then
	ok "this tree installed into the copy"
else
	not_ok "this tree installed into the copy" "$out"
	exit 1
fi
[ "$(id -u)" -eq 0 ] && chown -R "$user" "$DIR/loyalty-0.1.0"
pg restart
version=$(q -d updated -Atc "SELECT default_version FROM pg_available_extensions WHERE name = 'loyalty'")
# docs/adopting.md's check before and its update, as written: before, no
# row of verify() and the version 0.1.0; the update prints nothing (no row
# of verify() after it).
if out=$(q -d updated -At -f "$HERE/before_update.sql" 2>&1) && [ "$out" = 0.1.0 ]; then
	ok "the doc's check before the update: verify() clean, version 0.1.0"
else
	not_ok "the doc's check before the update: verify() clean, version 0.1.0" "$out"
fi
if out=$(q -d updated -At -f "$HERE/update.sql" 2>"$DIR/update.err") && [ -z "$out" ] &&
	[ "$(q -d updated -Atc "SELECT extversion FROM pg_extension WHERE extname = 'loyalty'")" = "$version" ]; then
	ok "ALTER EXTENSION loyalty UPDATE (the doc's update.sql): 0.1.0 -> $version, verify() clean"
	[ -s "$DIR/update.err" ] && sed 's/^/# /' "$DIR/update.err"
else
	not_ok "ALTER EXTENSION loyalty UPDATE: 0.1.0 -> $version" "$out$(cat "$DIR/update.err")"
	exit 1
fi
out=$(q -d infinite -v VERBOSITY=verbose -c 'ALTER EXTENSION loyalty UPDATE' 2>&1) && rc=0 || rc=$?
if [ "$rc" -ne 0 ] && grep -q 'ERROR:  22023: loyalty 0.2.0 refuses infinite rates: program inf: earn_rate Infinity' <<<"$out" &&
	[ "$(q -d infinite -Atc "SELECT extversion FROM pg_extension WHERE extname = 'loyalty'")" = 0.1.0 ]; then
	ok "an infinite earn rate stops the update (22023, the program named), the database stays at 0.1.0"
else
	not_ok "an infinite earn rate stops the update (22023, the program named), the database stays at 0.1.0" "$out"
fi
q -d fresh -o /dev/null -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION loyalty' -f "$HERE/attach_fresh.sql"

# -- The data: each check of check.sql prints "ok <name>" or "not ok <name>: detail".
checks=$(q -d updated -At -f "$HERE/check.sql" 2>&1) && rc=0 || rc=$?
while IFS= read -r line; do
	case $line in
	"ok "*) ok "${line#ok }" ;;
	"not ok "*) not_ok "${line#not ok }" ;;
	*) echo "# $line" ;;
	esac
done <<<"$checks"
[ "$rc" -eq 0 ] && ok "check.sql ran to its end" || not_ok "check.sql ran to its end" "psql exited with $rc"

# -- The catalog: updated and fresh, fact by fact.
q -d updated -f "$HERE/catalog.sql" >"$DIR/catalog.updated"
q -d fresh -f "$HERE/catalog.sql" >"$DIR/catalog.fresh"
q -d postgres -c 'CREATE DATABASE compare'
q -d compare -c 'CREATE TABLE updated (line text)' -c 'CREATE TABLE fresh (line text)'
for side in updated fresh; do
	q -d compare -c "\\copy $side (line) FROM '$DIR/catalog.$side' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
done
diffs=$(q -d compare -At -f "$HERE/compare.sql")
notes=$(grep '^note: ' <<<"$diffs" || true)
diffs=$(grep -v '^note: ' <<<"$diffs" || true)
if [ -z "$diffs" ]; then
	ok "catalog of the updated database equals a fresh $version install ($(wc -l <"$DIR/catalog.fresh") facts)"
else
	not_ok "catalog of the updated database equals a fresh $version install ($(grep -c . <<<"$diffs") differences)" "$diffs"
	# The two definitions of each routine and view whose body differs.
	while read -r kind object; do
		case $kind in
		routine) fn="pg_get_functiondef('$object'::regprocedure)" ;;
		view) fn="pg_get_viewdef('$object'::regclass, true)" ;;
		esac
		echo "#   --- $object: < updated, > fresh"
		diff <(q -d updated -Atc "SELECT $fn") <(q -d fresh -Atc "SELECT $fn") | sed 's/^/#   /' | head -n 40 || true
	done < <(sed -n 's/^differs: routine body \(.*\): updated .*/routine \1/p; s/^differs: view \(.*\): updated .*/view \1/p' <<<"$diffs")
fi
[ -n "$notes" ] && sed 's/^/# /' <<<"$notes"

echo "# upgrade test took $((SECONDS - started)) s"
echo "1..$n"
# The copy of the server is large: kept only to look into a failure.
stop
[ "$failures" -eq 0 ] && rm -rf "$COPY"
[ "$failures" -eq 0 ]

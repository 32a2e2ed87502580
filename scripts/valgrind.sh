#!/usr/bin/env bash
# Runs regression files against a throwaway cluster whose server runs under
# valgrind memcheck, with loyalty built -Og -g for readable frames.  Fails
# (non-zero, errors printed) when any valgrind error has a frame in
# loyalty's code; errors from PostgreSQL or glibc alone are counted and
# left in the logs (add the false positives to test/valgrind.supp).
#
#   bash scripts/valgrind.sh                      # every file of REGRESS
#   bash scripts/valgrind.sh setup statement_shapes
#
# Slow (about 15 minutes for the whole suite): not part of test/run.sh.
# Regression differences are reported too, but only valgrind errors in
# loyalty's code fail the run.  Leaves loyalty's -Og build installed in
# the server; the next test/run.sh (or make install) puts the usual one back.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_toolchain
# More valgrind options (e.g. --track-origins=yes: where an uninitialised
# value comes from, at twice the time).
LOYALTY_VALGRIND_OPTS=${LOYALTY_VALGRIND_OPTS:-}
# The statement-shape suite's two-batch repro: rows per batch under valgrind.
export LOYALTY_SHAPES_ROWS=${LOYALTY_SHAPES_ROWS:-2000}
ensure_packages valgrind rsync

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
	read -r -a tests <<<"$(sed -n 's/^REGRESS *= *//p' "$ROOT/Makefile")"
fi

# A copy of the sources, so the usual objects in the tree stay as they are.
BUILD=$ROOT/.tmp/valgrind-build
log "building loyalty -Og -g in $BUILD"
mkdir -p "$BUILD"
rsync -a --delete --exclude .tmp --exclude .git --exclude results --exclude '*.o' --exclude '*.so' \
	--exclude '*.bc' "$ROOT/" "$BUILD/"
make -C "$BUILD" -s PG_CONFIG="$PG_CONFIG" WERROR=1 COPT='-Og -g -fno-omit-frame-pointer'
as_root make -C "$BUILD" -s PG_CONFIG="$PG_CONFIG" install >/dev/null

# The server under valgrind: pg_ctl starts this wrapper instead of postgres
# (LOYALTY_PG_SERVER); each process writes its own log.
VG_LOGS=$ROOT/.tmp/valgrind-logs
rm -rf "$VG_LOGS"
mkdir -p "$VG_LOGS"
cp "$ROOT/test/valgrind.supp" "$VG_LOGS/valgrind.supp"
cat >"$VG_LOGS/postgres" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --trace-children=yes --leak-check=no $LOYALTY_VALGRIND_OPTS \\
	--read-var-info=yes --num-callers=30 --error-limit=no --gen-suppressions=all \\
	--suppressions=$VG_LOGS/valgrind.supp --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \\
	--log-file=$VG_LOGS/%p.log "$PG_BIN/postgres" "\$@"
EOF
chmod 755 "$VG_LOGS/postgres"
[ "$(id -u)" -eq 0 ] && chown -R "$(cluster_user)" "$VG_LOGS"
if ! run_as_cluster_user test -w "$VG_LOGS"; then
	echo "the cluster user cannot write $VG_LOGS" >&2
	exit 1
fi

export LOYALTY_PG_SERVER=$VG_LOGS/postgres PGCTLTIMEOUT=600
start_cluster "max_connections=20" "shared_buffers=32MB" "max_prepared_transactions=10" \
	"autovacuum=off" "jit=off" "work_mem=64kB"

log "regression under valgrind: ${tests[*]}"
regress_ok=true
make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS="${tests[*]}" ISOLATION= || regress_ok=false
stop_cluster || true
trap - EXIT

# Valgrind errors, one block each between the markers; ours are those with
# a frame in loyalty.so or in one of its source files.
ours_pattern="loyalty\\.so|\\(($(cd "$ROOT/src" && ls -- *.c | sed 's/\./\\./' | paste -sd '|')):[0-9]+\\)"
ours=0
others=0
report=$VG_LOGS/loyalty-errors.txt
: >"$report"
for f in "$VG_LOGS"/[0-9]*.log; do
	[ -e "$f" ] || continue
	counts=$(awk -v pat="$ours_pattern" -v out="$report" -v file="$f" '
		/VALGRINDERROR-BEGIN/ { block = ""; inblock = 1; next }
		/VALGRINDERROR-END/ {
			inblock = 0
			if (block ~ pat) { ours++; print "== " file ":\n" block >> out } else others++
			next
		}
		inblock { sub(/^==[0-9]+== ?/, ""); block = block $0 "\n" }
		END { printf "%d %d\n", ours, others }' "$f")
	ours=$((ours + ${counts% *}))
	others=$((others + ${counts#* }))
done

log "valgrind summary"
echo "logs: $VG_LOGS ($(ls "$VG_LOGS"/[0-9]*.log 2>/dev/null | wc -l) processes)"
echo "errors with a frame in loyalty: $ours"
echo "errors in PostgreSQL or glibc alone: $others"
$regress_ok || echo "regression differences: see $ROOT/regression.diffs"
if [ "$ours" -gt 0 ]; then
	cat "$report"
	exit 1
fi

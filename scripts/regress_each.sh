#!/usr/bin/env bash
# Runs every regression file of the Makefile's REGRESS alone, each in a
# fresh database (pg_regress drops and creates it; --load-extension creates
# loyalty in it): a file that needs what another file made fails here.
# Prints "test FILE (alone) ... ok|FAILED" per file and the diffs of each
# failure; exits non-zero if any file fails alone.
#   bash scripts/regress_each.sh [FILE ...]   build, install, throwaway cluster
#   bash scripts/regress_each.sh --running [FILE ...]
#                                 the cluster of PGHOST/PGPORT/PGUSER, with
#                                 PG_CONFIG or LOYALTY_PG_BIN (test/run.sh)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${1:-}" = --running ]; then
	shift
	PG_CONFIG=${PG_CONFIG:-${LOYALTY_PG_BIN:+$LOYALTY_PG_BIN/pg_config}}
	PG_CONFIG=${PG_CONFIG:-pg_config}
else
	setup_toolchain
	build_install
	start_cluster "max_prepared_transactions=10"
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	read -r -a files < <(make -C "$ROOT" -s --no-print-directory PG_CONFIG="$PG_CONFIG" \
		-f Makefile -f <(printf 'print-regress:\n\t@echo $(REGRESS)\n') print-regress)
fi

mkdir -p "$ROOT/.tmp"
failed=0
for f in "${files[@]}"; do
	if make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS="$f" ISOLATION= >"$ROOT/.tmp/regress_each.log" 2>&1; then
		echo "test $f (alone) ... ok"
	else
		echo "test $f (alone) ... FAILED"
		cat "$ROOT/.tmp/regress_each.log"
		[ -f "$ROOT/regression.diffs" ] && cat "$ROOT/regression.diffs"
		failed=$((failed + 1))
	fi
done
rm -f "$ROOT/.tmp/regress_each.log"
[ "$failed" -eq 0 ]

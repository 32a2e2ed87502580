#!/usr/bin/env bash
# loyalty on a real Citus cluster: a coordinator and two workers on loopback
# ports, and beside them a plain single PostgreSQL node.  Every scenario
# (test/citus/sql/*.sql, and the regression files listed in
# test/citus/regress.list) runs on both, each in a fresh database; then
# test/citus/dump.sql prints every balance, ledger sum, lot, order state,
# dead letter, score and tier in a canonical order, and the two dumps must
# be equal.  The psql outputs must be equal too (errors included).
# Isolation specs named in test/citus/isolation.list run on both sides
# against their own expected output (concurrency on a real cluster).
# Builds Citus from ../shared/citus when the server lacks it.
# Usage: bash test/citus/run.sh [scenario ...]
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
. "$ROOT/test/citus/lib.sh"

setup_toolchain
citus_install
build_install
citus_start_nodes

only=("$@")
scenarios=()
for f in "$ROOT"/test/citus/sql/*.sql; do scenarios+=("citus:$(basename "$f" .sql)"); done
while read -r name; do
	[ -n "$name" ] && [ "${name:0:1}" != "#" ] && scenarios+=("regress:$name")
done <"$ROOT/test/citus/regress.list"
while read -r name; do
	[ -n "$name" ] && [ "${name:0:1}" != "#" ] && scenarios+=("isolation:$name")
done <"$ROOT/test/citus/isolation.list"

failed=0
if [ ${#only[@]} -eq 0 ]; then
	if citus_refusals; then ok=ok; else ok=FAILED; failed=1; fi
	echo "test citus refusals (distribute in the extension's transaction, commission) ... $ok"
fi
for s in "${scenarios[@]}"; do
	name=${s#*:}
	if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* ]]; then continue; fi
	if [ "${s%%:*}" = isolation ]; then
		what="isolation $name (cluster and single node = expected)"
		if citus_isolation "$name"; then ok=ok; else ok=FAILED; fi
	else
		what="$name (cluster = single node)"
		if citus_scenario "${s%%:*}" "$name"; then ok=ok; else ok=FAILED; fi
	fi
	echo "test citus $what ... $ok"
	[ $ok = ok ] || failed=$((failed + 1))
done
[ "$failed" -eq 0 ]

# Shared by test/citus/run.sh and bench/citus.sh (source after scripts/lib.sh):
# installs Citus when missing and runs a coordinator, two workers and a plain
# single node, each stopped when the calling script exits.

# Citus 13.2.2 for this server, built when missing from its source beside
# the project (../shared/citus, or beside the repository this one was cloned
# from; LOYALTY_CITUS_SOURCE names another place).
citus_install() {
	local control src origin
	control="$("$PG_CONFIG" --sharedir)/extension/citus.control"
	grep -q "default_version = '13.2-1'" "$control" 2>/dev/null && return 0
	origin=$(git -C "$ROOT" config --get remote.origin.url 2>/dev/null || true)
	for src in "${LOYALTY_CITUS_SOURCE:-}" "$ROOT/../shared/citus" "${origin:+$origin/../shared/citus}"; do
		[ -n "$src" ] && [ -f "$src/build.sh" ] && break
		src=
	done
	[ -n "$src" ] || { echo "Citus 13.2.2 is not installed and its source (../shared/citus/build.sh) was not found; set LOYALTY_CITUS_SOURCE" >&2; return 1; }
	log "building Citus 13.2.2 from $src"
	as_root env PATH="$PG_BIN:$PATH" bash "$src/build.sh"
}

# The first port from FIRST on that nobody listens on (TCP or a socket in DIR).
free_port_from() {
	local p
	for p in $(seq "$1" 54999) $(seq 54320 "$1"); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [ ! -e "$2/.s.PGSQL.$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

CITUS_NODES=()
# Starts coordinator (CITUS_NODES[0]), two workers and a plain node
# (SINGLE_PORT).  All listen on 127.0.0.1 and on a socket in CITUS_WORK.
citus_start_nodes() {
	local user i port dir
	user=$(cluster_user)
	CITUS_WORK=${CITUS_WORK_DIR:-$ROOT/.tmp/citus}
	rm -rf "$CITUS_WORK"
	mkdir -p "$CITUS_WORK"
	[ "$(id -u)" -eq 0 ] && chown -R "$user" "$ROOT/.tmp"
	if ! run_as_cluster_user test -w "$CITUS_WORK"; then
		CITUS_WORK=$(mktemp -d /tmp/loyalty-citus.XXXXXX)
		[ "$(id -u)" -eq 0 ] && chown "$user" "$CITUS_WORK"
		chmod 755 "$CITUS_WORK"
	fi
	export PGHOST=$CITUS_WORK PGUSER=postgres PGTZ=UTC PGDATESTYLE='ISO, YMD'
	unset PGDATABASE PGPORT || true
	trap citus_stop_nodes EXIT
	for i in 0 1 2 3; do
		dir=$CITUS_WORK/n$i
		run_as_cluster_user "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir.initdb.log" 2>&1 \
			|| { cat "$dir.initdb.log" >&2; return 1; }
		local opts="-c listen_addresses=127.0.0.1 -c unix_socket_directories='$CITUS_WORK' -c fsync=off"
		opts+=" -c max_prepared_transactions=50 -c max_connections=200"
		if [ "$i" -lt 3 ]; then
			opts+=" -c shared_preload_libraries=citus -c citus.enable_unsafe_triggers=on -c citus.shard_count=8 -c max_worker_processes=32"
			opts+=" -c citus.log_remote_commands=off -c citus.show_shards_for_app_name_prefixes='' -c wal_level=logical"
		fi
		# A free port, tried again when another test run takes it first.
		local try
		for try in 1 2 3 4 5; do
			port=$(free_port_from $((54320 + RANDOM % 600)) "$CITUS_WORK")
			# The servers keep their own DateStyle and time zone: the
			# coordinator's connections to the workers would take the
			# client settings exported above from the environment.
			run_as_cluster_user env -u PGDATESTYLE -u PGTZ "$PG_BIN/pg_ctl" -D "$dir" -l "$dir.log" \
				-o "$opts -p $port" -w start >/dev/null && break
			grep -q 'Address already in use' "$dir.log" && [ $try -lt 5 ] || { cat "$dir.log" >&2; return 1; }
		done
		if [ "$i" -lt 3 ]; then CITUS_NODES+=("$port"); else SINGLE_PORT=$port; fi
	done
	log "Citus coordinator on port ${CITUS_NODES[0]}, workers on ${CITUS_NODES[1]} and ${CITUS_NODES[2]}, single node on $SINGLE_PORT"
}

citus_stop_nodes() {
	local rc=$? dir
	for dir in "$CITUS_WORK"/n?; do
		[ -f "$dir/postmaster.pid" ] && run_as_cluster_user "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1
	done
	case "${CITUS_WORK:-}" in /tmp/loyalty-citus.*) rm -rf "$CITUS_WORK" ;; esac
	return $rc
}

# A fresh database DB with loyalty: distributed on the cluster (every node,
# workers added, loyalty.distribute()), plain on the single node.  Both get
# public.test_distribute(table, column): create_distributed_table colocated
# with loyalty.member on the cluster, nothing on the single node
# (test/citus/helpers.sql).
citus_fresh_db() {
	local db=$1 port
	for port in "${CITUS_NODES[@]}" "$SINGLE_PORT"; do
		psql_q -p "$port" -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null || return 1
	done
	for port in "${CITUS_NODES[@]}"; do
		psql_q -p "$port" -d "$db" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION citus' || return 1
	done
	psql_q -p "${CITUS_NODES[0]}" -d "$db" -At >/dev/null <<SQL || return 1
SET client_min_messages = warning;
SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_NODES[0]});
SELECT citus_add_node('127.0.0.1', ${CITUS_NODES[1]});
SELECT citus_add_node('127.0.0.1', ${CITUS_NODES[2]});
SQL
	psql_q -p "${CITUS_NODES[0]}" -d "$db" -At >/dev/null <<SQL || return 1
SET client_min_messages = warning;
CREATE EXTENSION loyalty;
SELECT count(*) FROM loyalty.distribute();
\\i $ROOT/test/citus/helpers.sql
SQL
	psql_q -p "$SINGLE_PORT" -d "$db" >/dev/null <<SQL || return 1
SET client_min_messages = warning;
CREATE EXTENSION loyalty;
\\i $ROOT/test/citus/helpers.sql
SQL
}

# What distribute() and the cluster refuse, checked once in a database of
# its own: distribute() in the transaction that created the extension
# (LY056: it would wait for its own locks on the workers), a loyalty that
# pays referral commission (LY057), and commission terms on a cluster (0A000).
citus_refusals() {
	local db=c_refusals out
	citus_fresh_db "$db" || return 1
	out=$("$PG_BIN/psql" -X -q -p "${CITUS_NODES[0]}" -d "$db" 2>&1 <<'SQL'
\set VERBOSITY verbose
SET client_min_messages = warning;
SELECT loyalty.create_program('cg', 'EUR', 1);
SELECT loyalty.set_referral_terms('cg', 10, 5, commission => '{0.1}');
DROP EXTENSION loyalty CASCADE;
BEGIN;
CREATE EXTENSION loyalty;
SELECT * FROM loyalty.distribute();
ROLLBACK;
CREATE EXTENSION loyalty;
SELECT loyalty.create_program('cg', 'EUR', 1);
SELECT loyalty.set_referral_terms('cg', 10, 5, commission => '{0.1}');
SELECT * FROM loyalty.distribute();
SQL
)
	local want ok=0
	for want in '0A000: referral commission is not paid on a Citus cluster' \
		'LY056: loyalty.distribute() must run after CREATE EXTENSION loyalty has committed' \
		'LY057: loyalty pays referral commission, which a cluster cannot'; do
		grep -qF "$want" <<<"$out" || { echo "-- not refused: $want"; ok=1; }
	done
	[ $ok -eq 0 ] || echo "$out"
	for port in "${CITUS_NODES[@]}" "$SINGLE_PORT"; do
		psql_q -p "$port" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
	done
	return $ok
}

# Runs one scenario on both sides and compares outputs and dumps.
citus_scenario() {
	local kind=$1 name=$2 file out=$CITUS_WORK/out db side port
	case $kind in
	citus) file=$ROOT/test/citus/sql/$name.sql ;;
	regress) file=$ROOT/sql/$name.sql ;;
	esac
	db="t_${name//-/_}"
	citus_fresh_db "$db" || return 1
	mkdir -p "$out"
	for side in cluster single; do
		port=${CITUS_NODES[0]}
		[ $side = single ] && port=$SINGLE_PORT
		(cd "$ROOT" && "$PG_BIN/psql" -X -a -q -p "$port" -d "$db" -v abs_builddir="$ROOT" -f "$file") \
			>"$out/$name.$side.out" 2>&1 || true
		"$PG_BIN/psql" -X -A -q -p "$port" -d "$db" -f "$ROOT/test/citus/dump.sql" >"$out/$name.$side.dump" 2>&1
	done
	local ok=0
	if ! diff -u "$out/$name.single.dump" "$out/$name.cluster.dump" >"$out/$name.dump.diff"; then
		echo "-- $name: the cluster's books differ from the single node's:"
		head -60 "$out/$name.dump.diff"
		ok=1
	fi
	if ! diff -u "$out/$name.single.out" "$out/$name.cluster.out" >"$out/$name.out.diff"; then
		echo "-- $name: the cluster's output differs from the single node's:"
		head -60 "$out/$name.out.diff"
		ok=1
	fi
	# Each database keeps a Citus maintenance worker while it exists.
	for port in "${CITUS_NODES[@]}" "$SINGLE_PORT"; do
		psql_q -p "$port" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
	done
	# Both sides must have books to compare, and clean ones.
	if [ "$(grep -c . "$out/$name.single.dump")" -lt 3 ]; then
		echo "-- $name: nothing to compare"; ok=1
	fi
	return $ok
}

# Runs an isolation spec of test/isolation on the cluster and on the single
# node, each in a fresh database that has loyalty already (distributed on
# the cluster; the spec as test/citus/iso_spec.pl rewrites it), checked
# against its own expected output on both sides.
citus_isolation() {
	local name=$1 side port db dir=$CITUS_WORK/iso-$1 isolation
	isolation="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/isolation/pg_isolation_regress"
	db="i_${name//-/_}"
	citus_fresh_db "$db" || return 1
	# isolationtester asks pg_isolation_test_session_is_blocked() whether a
	# step waits; Citus's own version also sees waits on the workers.
	psql_q -p "${CITUS_NODES[0]}" -d "$db" -c 'SELECT citus_internal.replace_isolation_tester_func()' >/dev/null || return 1
	mkdir -p "$dir/specs" "$dir/expected"
	perl "$ROOT/test/citus/iso_spec.pl" "$ROOT/test/isolation/specs/$name.spec" >"$dir/specs/$name.spec"
	cp "$ROOT/test/isolation/expected/$name.out" "$dir/expected/"
	[ "$(id -u)" -eq 0 ] && chown -R "$(cluster_user)" "$dir"
	for side in cluster single; do
		port=${CITUS_NODES[0]}
		[ $side = single ] && port=$SINGLE_PORT
		mkdir -p "$dir/$side"
		"$isolation" --use-existing --dbname="$db" --host="$CITUS_WORK" --port="$port" --user=postgres \
			--inputdir="$dir" --outputdir="$dir/$side" "$name" >"$dir/$side.log" 2>&1 || {
			echo "-- isolation $name on the $side:"
			head -80 "$dir/$side/regression.diffs" 2>/dev/null || cat "$dir/$side.log"
			return 1
		}
	done
	for port in "${CITUS_NODES[@]}" "$SINGLE_PORT"; do
		psql_q -p "$port" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
	done
}

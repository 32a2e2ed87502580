# Shared by demo/run.sh, test/run.sh and bench/run.sh: installs what is
# missing, builds and installs the extension, and runs a throwaway
# PostgreSQL cluster on a Unix socket inside the project directory.
# Source it; it sets -euo pipefail.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\n== %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that are not installed yet (one apt-get run).
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The newest PostgreSQL server installed (its major version).
pg_major() {
	local v
	v=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
	[ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/postgres" ] || { echo "no PostgreSQL server found" >&2; return 1; }
	echo "$v"
}

# Server, compiler and the per-version packages given as NAME-@V@ patterns.
# Sets PG_VERSION, PG_BIN, PG_CONFIG.  LOYALTY_PG_BIN points at the bin
# directory of another (relocated) copy of the server, so that several
# checkouts can build, install and test side by side.
setup_toolchain() {
	ensure_packages postgresql make gcc libc6-dev
	PG_VERSION=$(pg_major)
	local pkgs=("postgresql-server-dev-$PG_VERSION") p
	for p in "$@"; do pkgs+=("${p//@V@/$PG_VERSION}"); done
	ensure_packages "${pkgs[@]}"
	PG_BIN=${LOYALTY_PG_BIN:-/usr/lib/postgresql/$PG_VERSION/bin}
	PG_CONFIG=$PG_BIN/pg_config
	export PG_VERSION PG_BIN PG_CONFIG
}

# Builds warning-free (-Werror) and installs into the server's directories.
build_install() {
	log "building loyalty for PostgreSQL $PG_VERSION"
	make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" WERROR=1
	as_root make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# The unprivileged user that owns the throwaway cluster: initdb refuses root.
cluster_user() {
	if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

run_as_cluster_user() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A port nobody listens on (TCP or a socket in our directory).
free_port() {
	local p
	for p in $(seq 54320 54999); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [ ! -e "$1/.s.PGSQL.$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Starts the throwaway cluster and stops it when the calling script exits,
# even on failure.  Extra arguments are postgres -c settings.
# Sets WORK, PGDATA, PGHOST, PGPORT, PGUSER.
start_cluster() {
	local user
	user=$(cluster_user)
	WORK=$ROOT/.tmp/cluster
	rm -rf "$WORK"
	mkdir -p "$WORK"
	[ "$(id -u)" -eq 0 ] && chown -R "$user" "$ROOT/.tmp"
	# The project may sit where the cluster user cannot reach (e.g. /root).
	if ! run_as_cluster_user test -w "$WORK"; then
		WORK=$(mktemp -d /tmp/loyalty-cluster.XXXXXX)
		[ "$(id -u)" -eq 0 ] && chown "$user" "$WORK"
		chmod 755 "$WORK"
	fi
	PGDATA=$WORK/data
	PGHOST=$WORK
	PGPORT=$(free_port "$WORK")
	PGUSER=postgres
	export WORK PGDATA PGHOST PGPORT PGUSER
	unset PGDATABASE PGPASSWORD PGSERVICE || true

	log "starting a throwaway cluster in $PGDATA (socket $PGHOST, port $PGPORT)"
	run_as_cluster_user "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 \
		|| { cat "$WORK/initdb.log" >&2; return 1; }
	local opts="-c listen_addresses='' -c unix_socket_directories='$PGHOST' -p $PGPORT -c fsync=off" s
	for s in "$@"; do opts+=" -c $s"; done
	# LOYALTY_PG_SERVER: another server executable, e.g. a valgrind wrapper.
	local server=()
	[ -n "${LOYALTY_PG_SERVER:-}" ] && server=(-p "$LOYALTY_PG_SERVER")
	trap stop_cluster EXIT
	run_as_cluster_user "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$WORK/server.log" -o "$opts" "${server[@]}" -w start >/dev/null \
		|| { cat "$WORK/server.log" >&2; return 1; }
}

stop_cluster() {
	local rc=$?
	if [ -n "${PGDATA:-}" ] && [ -f "$PGDATA/postmaster.pid" ]; then
		run_as_cluster_user "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
	fi
	# A fallback directory in /tmp is ours alone: leave nothing behind.
	case "${WORK:-}" in /tmp/loyalty-cluster.*) rm -rf "$WORK" ;; esac
	return $rc
}

psql_q() {
	"$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"
}

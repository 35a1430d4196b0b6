# tools/pgcluster.sh
#	  Throw-away PostgreSQL clusters for pg_dts's scripts (demo, bench, tests).
#
# Source this file from bash, then:
#
#	pgc_setup [conf-line ...]	create, configure and start a cluster; remove
#								it when the calling shell exits
#	pgc_psql [psql-args ...]	psql on that cluster (ON_ERROR_STOP, no psqlrc)
#	pgc_stop / pgc_start		stop or (re)start it
#	pgc_cleanup					stop it and delete its directory (the EXIT trap)
#	pgc_pin_apart				the server on CPU 0, the calling shell on the
#								others (benchmarks: as if on two hosts)
#
# The cluster lives in its own mktemp directory (PGC_DIR) under
# ${PGC_TMPDIR:-/tmp}: data/, sock/ (the unix socket), server.log.  PostgreSQL
# refuses to run as root, so when we are root every server-side command runs
# as the OS user "postgres" (PGC_OSUSER) and PGC_DIR belongs to it; the
# superuser role is always named "postgres".  The TCP port (127.0.0.1 only)
# is a free one found at start-up, never a fixed one; the system cluster on
# 5432 is never touched.
#
# The configuration is what logical decoding with pg_dts needs:
# wal_level = logical, 20 replication slots and WAL senders, and
# output_plugin_libraries listing pgoutput, test_decoding and pg_dts (plus
# whatever PGC_EXTRA_PLUGINS adds, e.g. "wal2json").  Further lines come from
# the pgc_setup/pgc_init arguments and from PGC_EXTRA_CONF (one per line).
#
# Set PGC_KEEP=1 to keep the directory (and the server stopped) for a
# post-mortem.

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGC_BINDIR=${PGC_BINDIR:-$("$PG_CONFIG" --bindir)}
PGC_OSUSER=${PGC_OSUSER:-postgres}
PGC_DB=${PGC_DB:-postgres}
PGC_PLUGINS="pgoutput, test_decoding, pg_dts${PGC_EXTRA_PLUGINS:+, $PGC_EXTRA_PLUGINS}"
PGC_DIR=
PGC_PORT=
PGC_SOCK=

# pgc_as_server CMD...: run CMD as the OS user that owns the cluster.
pgc_as_server()
{
	if [ "$(id -u)" = 0 ]; then
		(cd "${PGC_DIR:-/}" && runuser -u "$PGC_OSUSER" -- "$@")
	else
		(cd "${PGC_DIR:-/}" && "$@")
	fi
}

# pgc_free_port: print a TCP port on 127.0.0.1 that nobody listens on now.
pgc_free_port()
{
	python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

pgc_log()
{
	echo "pgcluster: $*" >&2
}

# pgc_init [conf-line ...]: create the directory, initdb, write the config.
pgc_init()
{
	local line

	PGC_DIR=$(mktemp -d "${PGC_TMPDIR:-/tmp}/pg_dts.XXXXXX") || return 1
	chmod 755 "$PGC_DIR"
	mkdir -p "$PGC_DIR/sock"
	if [ "$(id -u)" = 0 ]; then
		chown -R "$PGC_OSUSER:" "$PGC_DIR"
	fi
	PGC_SOCK=$PGC_DIR/sock

	if ! pgc_as_server "$PGC_BINDIR/initdb" -D "$PGC_DIR/data" -U postgres \
		-A trust -E UTF8 --locale=C.UTF-8 --no-sync \
		>"$PGC_DIR/initdb.log" 2>&1; then
		pgc_log "initdb failed:"
		cat "$PGC_DIR/initdb.log" >&2
		return 1
	fi

	{
		echo "# added by tools/pgcluster.sh"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$PGC_SOCK'"
		echo "wal_level = logical"
		echo "max_replication_slots = 20"
		echo "max_wal_senders = 20"
		echo "output_plugin_libraries = '$PGC_PLUGINS'"
		echo "fsync = on"
		echo "logging_collector = off"
		echo "log_min_messages = warning"
		for line in "$@"; do
			echo "$line"
		done
		if [ -n "${PGC_EXTRA_CONF:-}" ]; then
			printf '%s\n' "$PGC_EXTRA_CONF"
		fi
	} | pgc_as_server tee -a "$PGC_DIR/data/postgresql.conf" >/dev/null
}

# pgc_start: start the server on a free port (retrying if the port is
# taken between the probe and the bind) and check the plugin list.
pgc_start()
{
	local try plugins

	for try in 1 2 3 4 5; do
		PGC_PORT=$(pgc_free_port) || return 1
		if pgc_as_server "$PGC_BINDIR/pg_ctl" -D "$PGC_DIR/data" -w -t 120 \
			-l "$PGC_DIR/server.log" -o "-p $PGC_PORT" start >/dev/null; then
			break
		fi
		if grep -q 'could not bind\|Address already in use' \
			"$PGC_DIR/server.log" 2>/dev/null; then
			pgc_log "port $PGC_PORT taken, trying another"
			PGC_PORT=
			continue
		fi
		pgc_log "server did not start; log:"
		cat "$PGC_DIR/server.log" >&2
		PGC_PORT=
		return 1
	done
	if [ -z "$PGC_PORT" ]; then
		pgc_log "no free port after $try tries"
		return 1
	fi

	plugins=$(pgc_psql -Atc 'SHOW output_plugin_libraries') || return 1
	case ", $plugins," in
		*", pg_dts,"*) ;;
		*)
			pgc_log "output_plugin_libraries is '$plugins', it lacks pg_dts"
			return 1
			;;
	esac
	export PGHOST=$PGC_SOCK PGPORT=$PGC_PORT PGUSER=postgres
	pgc_log "cluster up: dir $PGC_DIR, port $PGC_PORT"
}

# pgc_stop: stop the server (fast, then immediate if that hangs).
pgc_stop()
{
	[ -n "$PGC_DIR" ] && [ -f "$PGC_DIR/data/postmaster.pid" ] || return 0
	pgc_as_server "$PGC_BINDIR/pg_ctl" -D "$PGC_DIR/data" -w -t 60 -m fast \
		stop >/dev/null 2>&1 ||
		pgc_as_server "$PGC_BINDIR/pg_ctl" -D "$PGC_DIR/data" -w \
			-m immediate stop >/dev/null 2>&1
}

# pgc_psql [args]: psql as the superuser on the cluster's unix socket.
pgc_psql()
{
	"$PGC_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGC_SOCK" -p "$PGC_PORT" \
		-U postgres -d "$PGC_DB" "$@"
}

# pgc_pin_apart: the running server (the postmaster, its processes, and
# every backend it forks later) on CPU 0, and the calling shell (so every
# client it starts later) on the other CPUs.  For benchmarks on a small
# machine: as when the clients run on a host of their own, no client takes
# the server's CPU and the server takes none of theirs.  Needs two CPUs and
# taskset (util-linux).
pgc_pin_apart()
{
	local ncpu pm p

	ncpu=$(nproc --all)
	if [ "$ncpu" -lt 2 ]; then
		pgc_log "cannot pin the server and the clients apart: this machine has $ncpu CPU"
		return 1
	fi
	pm=$(head -1 "$PGC_DIR/data/postmaster.pid")
	for p in "$pm" $(pgrep -P "$pm"); do
		taskset -a -p -c 0 "$p" >/dev/null || return 1
	done
	taskset -p -c "1-$((ncpu - 1))" $$ >/dev/null || return 1
	pgc_log "pinned: the server on CPU 0, the clients on CPU 1-$((ncpu - 1))"
}

# pgc_cleanup: stop the server and remove its directory (unless PGC_KEEP=1).
pgc_cleanup()
{
	[ -n "$PGC_DIR" ] || return 0
	pgc_stop
	if [ "${PGC_KEEP:-0}" = 1 ]; then
		pgc_log "kept $PGC_DIR"
	else
		rm -rf "$PGC_DIR"
	fi
	PGC_DIR=
}

# pgc_setup [conf-line ...]: init + start, with cleanup on exit/interrupt.
pgc_setup()
{
	trap pgc_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	pgc_init "$@" && pgc_start
}

#!/usr/bin/env bash
#
# bench/pgsync/careful.sh
#	  The pg sink's careful replay (docs/pg-sink.md, section 3): one source
#	  transaction of N inserts (default 20,000) whose last row clashes with
#	  a row already at the destination, under conflict_policy Ignore.  The
#	  batch fails on its last row and is replayed statement by statement,
#	  each under a savepoint.  Two shipper builds, SHIP_A and SHIP_B (both
#	  default to the installed pg_dts_ship), three runs each, interleaved,
#	  each on its own slot (all created before the workload) and its own
#	  destination database; the rows and the conflict are checked after each.
#	  Not part of `make bench`: a measurement for one path.
#
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
N=${N:-20000}
SHIP_A=${SHIP_A:-$bindir/pg_dts_ship}
SHIP_B=${SHIP_B:-$bindir/pg_dts_ship}
work=$(mktemp -d /tmp/pg_dts_careful.XXXXXX)
. "$root/tools/pgcluster.sh"
pgc_init "autovacuum = off"
pgc_start
src_dir=$PGC_DIR src_sock=$PGC_SOCK src_port=$PGC_PORT
PGC_DIR= PGC_SOCK= PGC_PORT=
pgc_init "autovacuum = off"
pgc_start
dst_dir=$PGC_DIR dst_sock=$PGC_SOCK dst_port=$PGC_PORT
cleanup() { for d in "$src_dir" "$dst_dir"; do pgc_as_server "$bindir/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$d"; done; rm -rf "$work"; }
trap cleanup EXIT
src_conn="host=$src_sock port=$src_port dbname=postgres user=postgres"
dst_host="host=$dst_sock port=$dst_port user=postgres"
S() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$src_conn" "$@"; }
D() { local db=$1; shift; "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dst_host dbname=$db" "$@"; }
S -c "CREATE EXTENSION pg_dts" -c "CREATE TABLE conf (id int PRIMARY KEY, v text)"
runs="a1 b1 a2 b2 a3 b3"
for r in $runs; do
  S -c "SELECT pg_create_logical_replication_slot('c_$r', 'pg_dts')" >/dev/null
  D postgres -c "CREATE DATABASE d_$r"
  D d_$r -c "CREATE TABLE conf (id int PRIMARY KEY, v text)" -c "INSERT INTO conf VALUES (0, 'dest')"
done
S -c "BEGIN" -c "INSERT INTO conf SELECT g, md5(g::text) FROM generate_series(1, $N) g" -c "INSERT INTO conf VALUES (0, 'src')" -c "COMMIT"
S -c "SET synchronous_commit = on" -c "CREATE TABLE conf_end (x int)"
endpos=$(S -Atc "SELECT pg_current_wal_insert_lsn()")
for r in $runs; do
  if [ "${r%?}" = a ]; then bin=$SHIP_A; else bin=$SHIP_B; fi
  cat > "$work/$r.json" <<EOT
{"name": "t_$r", "source": {"conninfo": "$src_conn"}, "slot": "c_$r",
 "sink": {"type": "pg", "conninfo": "$dst_host dbname=d_$r", "conflict_policy": "Ignore"},
 "objects": {"public": {"all": false, "tables": {"conf": {}}}}, "heartbeat_interval": 0}
EOT
  a=$(date +%s.%N)
  "$bin" --task "$work/$r.json" --start -n -E "$endpos" 2>"$work/$r.err" || { tail -5 "$work/$r.err"; exit 1; }
  b=$(date +%s.%N)
  echo "$r ($bin): $(awk -v a=$a -v b=$b 'BEGIN{printf "%.2f s", b-a}') rows=$(D d_$r -Atc "SELECT count(*) || ' ' || sum(id) || ' ' || min(v) FILTER (WHERE id = 0) FROM conf") conflicts=$(D d_$r -Atc "SELECT count(*) FROM dts.conflict_log")"
done

#!/usr/bin/env bash
#
# bench/pgsync/run.sh
#	  PostgreSQL-to-PostgreSQL incremental sync: bench/decode's workload
#	  applied to a peer by pg_dts_ship (pg sink) against PostgreSQL's own
#	  logical replication (CREATE PUBLICATION / CREATE SUBSCRIPTION)
#	  catching up the same WAL, in the same run.
#
# One source and one destination cluster (tools/pgcluster.sh, both as
# user postgres in temp directories).  Before the workload: a publication,
# the native subscription's slot (pgoutput) and pg_dts's slot; the
# destination has the table twice, in database dts_dst (pg_dts) and
# native_dst (a disabled subscription without initial copy).  After the
# workload each contender catches up alone: pg_dts_ship --start -E <end>,
# timed with /usr/bin/time; the subscription is enabled and timed until
# its slot has confirmed the end LSN (polled every 20 ms).  Each contender
# decodes and applies (the walsender decodes for both).  The destination
# tables are then compared.
#
# Environment: BENCH_ROWS (1000000), BENCH_UPDATES (200000),
# BENCH_DELETES (100000), BENCH_BATCH (10000), BENCH_RESULTS
# (default bench/pgsync/results.md).
#
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
# The shipper under test: PG_DTS_SHIP (a build of another tree), else the installed one.
ship=${PG_DTS_SHIP:-$bindir/pg_dts_ship}
ROWS=${BENCH_ROWS:-1000000}
UPDATES=${BENCH_UPDATES:-200000}
DELETES=${BENCH_DELETES:-100000}
BATCH=${BENCH_BATCH:-10000}
RESULTS=${BENCH_RESULTS:-$root/bench/pgsync/results.md}

# shellcheck source=tools/pgcluster.sh
. "$root/tools/pgcluster.sh"
# shellcheck source=bench/workload.sh
. "$root/bench/workload.sh"

# Two clusters: pgcluster.sh handles one at a time, so keep the first
# one's coordinates and clean both up ourselves.
pgc_init "shared_buffers = 512MB" "max_wal_size = 20GB" \
	"checkpoint_timeout = 1h" "synchronous_commit = off" "autovacuum = off"
pgc_start
src_dir=$PGC_DIR src_sock=$PGC_SOCK src_port=$PGC_PORT
PGC_DIR= PGC_SOCK= PGC_PORT=
pgc_init "shared_buffers = 512MB" "max_wal_size = 20GB" \
	"checkpoint_timeout = 1h" "autovacuum = off" \
	"max_logical_replication_workers = 4"
pgc_start
dst_dir=$PGC_DIR dst_sock=$PGC_SOCK dst_port=$PGC_PORT
out=$(mktemp -d /tmp/pg_dts_bench_pgsync.XXXXXX)
cleanup()
{
	for d in "$src_dir" "$dst_dir"; do
		[ -n "$d" ] || continue
		pgc_as_server "$bindir/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true
		rm -rf "$d"
	done
	rm -rf "$out"
}
trap cleanup EXIT

src_conn="host=$src_sock port=$src_port dbname=postgres user=postgres"
dst_host="host=$dst_sock port=$dst_port user=postgres"
S() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$src_conn" "$@"; }
D() { local db=$1; shift; "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dst_host dbname=$db" "$@"; }

table_sql="CREATE TABLE bench (id bigint PRIMARY KEY, a int, b text, c timestamptz, d numeric(12,2), e jsonb);"
S -c "CREATE EXTENSION pg_dts" -c "$table_sql" -c "CREATE PUBLICATION bench_pub FOR TABLE bench" \
	-c "SELECT 1 FROM pg_create_logical_replication_slot('native_sub', 'pgoutput')" \
	-c "SELECT 1 FROM pg_create_logical_replication_slot('dts_sync_bench', 'pg_dts')" >/dev/null
D postgres -c "CREATE DATABASE dts_dst" -c "CREATE DATABASE native_dst"
D dts_dst -c "$table_sql"
D native_dst -c "$table_sql" -c "CREATE SUBSCRIPTION native_sub CONNECTION '$src_conn' PUBLICATION bench_pub WITH (create_slot = false, slot_name = 'native_sub', copy_data = false, enabled = false)"

cat >"$out/task.json" <<EOF
{"name": "bench", "source": {"conninfo": "$src_conn"},
 "sink": {"type": "pg", "conninfo": "$dst_host dbname=dts_dst"${BENCH_SINK_EXTRA:-}},
 "objects": {"public": {"all": false, "tables": {"bench": {}}}},
 "heartbeat_interval": 0}
EOF

echo "bench: workload: $ROWS inserts, $UPDATES updates, $DELETES deletes"
{
	bench_workload_sql "$ROWS" "$UPDATES" "$DELETES" "$BATCH"
	echo "SET synchronous_commit = on;"
	echo "CREATE TABLE bench_end (x int);"
} | S
endpos=$(S -Atc "SELECT pg_current_wal_insert_lsn()")
changes=$((ROWS + UPDATES + DELETES))
echo "bench: $changes changes, end LSN $endpos"

echo "bench: pg_dts_ship (pg sink)"
/usr/bin/time -f "%e %M %U %S" -o "$out/time" "$ship" --task "$out/task.json" -v \
	--start -n -E "$endpos" 2>"$out/ship.err" ||
	{ tail -n 20 "$out/ship.err" >&2; exit 1; }
read -r dts_s dts_rss dts_user dts_sys <"$out/time"
echo "bench: pg_dts_ship user ${dts_user}s sys ${dts_sys}s" >&2


echo "bench: native logical replication"
t0=$(date +%s.%N)
D native_dst -c "ALTER SUBSCRIPTION native_sub ENABLE"
until [ "$(S -Atc "SELECT confirmed_flush_lsn >= '$endpos' FROM pg_replication_slots WHERE slot_name = 'native_sub'")" = t ]; do
	sleep 0.02
done
t1=$(date +%s.%N)
native_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
D native_dst -c "ALTER SUBSCRIPTION native_sub DISABLE"

sum_sql="SELECT count(*) || ' ' || md5(string_agg(md5(bench::text), '' ORDER BY id)) FROM bench"
src_sum=$(S -Atc "$sum_sql")
dts_sum=$(D dts_dst -Atc "$sum_sql")
native_sum=$(D native_dst -Atc "$sum_sql")
same()
{
	[ "$1" = "$src_sum" ] && echo identical || echo DIFFERENT
}

rate()
{
	awk -v c="$changes" -v s="$1" 'BEGIN { printf "%.0f", c / s }'
}
ratio=$(awk -v a="$native_s" -v b="$dts_s" 'BEGIN { printf "%.2f", a / b }')
{
	echo "# PostgreSQL-to-PostgreSQL incremental sync benchmark"
	echo
	echo "Produced by \`bench/pgsync/run.sh\` (\`make bench\`); see bench/README.md."
	echo
	echo "- run: $(date -u '+%Y-%m-%d %H:%M') UTC, pg_dts $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- workload: $ROWS inserts, $UPDATES updates, $DELETES deletes in transactions of $BATCH rows ($changes changes), decoded and applied after the fact"
	echo
	echo "| contender | seconds | changes/s | destination vs source |"
	echo "|---|---:|---:|---|"
	echo "| pg_dts_ship, pg sink | $dts_s | $(rate "$dts_s") | $(same "$dts_sum") |"
	echo "| native logical replication (subscription) | $native_s | $(rate "$native_s") | $(same "$native_sum") |"
	echo
	echo "pg_dts / native apply rate: **${ratio}×**; pg_dts_ship max RSS $((dts_rss / 1024)) MB"
} >"$RESULTS"
cat "$RESULTS"

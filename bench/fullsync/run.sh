#!/usr/bin/env bash
#
# bench/fullsync/run.sh
#	  Full sync of a PostgreSQL-to-PostgreSQL task: BENCH_FULL_GB (5) GB in
#	  four tables copied by pg_dts_ship (schema + full phases: pre-data,
#	  parallel binary COPY from one snapshot, post-data), against
#	  "pg_dump | psql" and against a native subscription's initial copy,
#	  on the same source, in the same run.
#
# One source cluster and, for each contender, a fresh destination cluster
# with the same settings (tools/pgcluster.sh, as user postgres in temp
# directories).  All three end with the same tables, rows and primary keys:
#   pg_dts		pg_dts_ship --start with "sync": ["schema", "full"]
#   pg_dump		pg_dump -t 'public.big*' | psql (schema, data, then indexes)
#   native		pg_dump --schema-only | psql, then CREATE SUBSCRIPTION with
#				copy_data = true, timed until every table is ready
# and, not a contender, the destination's floor for pg_dts's way of loading:
#   floor		the destination alone, from files: the pre-data (untimed),
#				then, timed, the four tables at once, each BEGIN; TRUNCATE;
#				COPY FROM a server-side binary file (written by the source
#				beforehand, untimed) WITH FREEZE; COMMIT, then the four
#				primary keys at once (maintenance_work_mem 1 GB).  That is
#				the destination's work of a pg_dts_ship full sync with no
#				source, no shipper and no transport, so fastest anchor /
#				floor is about the highest ratio that way of loading can
#				reach here (the source's CPU, which shares the machine in a
#				real run, is left out: a loose bound).
# Each destination database is compared with the source after its run.
# Before each contender the destination is checkpointed and synced, and the
# page cache dropped and the source's tables read back into it (setup.sh's
# cache_settle), not timed.  A fresh destination each (setup.sh's dst_new), not one for all:
# a checkpoint after a contender's load recycles its WAL segments, and the
# next contender then writes into ready segments while the first had to
# create and zero-fill each one (BENCH_FULL_SAME_DST=1 shares one
# destination, as before 2026-12-02, to show the difference).
#
# BENCH_FULL_DST=bulkload runs the same on a destination set up the way
# PostgreSQL's manual ("Populating a Database") advises for a bulk load
# (setup.sh): wal_level = minimal and max_wal_senders = 0, for every
# contender, and the pg_dump contender loads with psql --single-transaction.
# The native subscription copies into tables created before, so it writes
# WAL either way.
#
# Environment: BENCH_FULL_GB (5), BENCH_RESULTS (bench/fullsync/results.md,
# or results_bulkload.md with BENCH_FULL_DST=bulkload), BENCH_FULL_SAME_DST
# (empty), BENCH_FULL_DST (empty or bulkload).
#
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
# The shipper under test: PG_DTS_SHIP (a build of another tree), else the installed one.
ship=${PG_DTS_SHIP:-$bindir/pg_dts_ship}
GB=${BENCH_FULL_GB:-5}
if [ "${BENCH_FULL_DST:-}" = bulkload ]; then
	RESULTS=${BENCH_RESULTS:-$root/bench/fullsync/results_bulkload.md}
else
	RESULTS=${BENCH_RESULTS:-$root/bench/fullsync/results.md}
fi

# shellcheck source=bench/fullsync/setup.sh
. "$root/bench/fullsync/setup.sh"
echo "bench: source tables: $size with indexes"

# Each contender starts from a clean destination: a fresh cluster (unless
# BENCH_FULL_SAME_DST), checkpointed and synced (not timed), so that none
# pays for writing out another's buffers or reuses another's WAL segments;
# and from the same page cache (cache_settle), so that none pays for
# reclaiming what the load left cached.
settle()
{
	[ -n "${BENCH_FULL_SAME_DST:-}" ] || dst_new
	D postgres -c "CHECKPOINT" >/dev/null
	cache_settle
}

# walstate LABEL: the destination's WAL segment files on disk (recycled ones
# are ready for reuse; a fresh cluster must create and zero-fill each one)
walstate()
{
	echo "bench: $1: destination pg_wal holds $(find "$dst_dir/data/pg_wal" -maxdepth 1 -type f -name '0*' | wc -l) segment files, insert LSN $(D postgres -Atc 'SELECT pg_current_wal_lsn()')"
}

elapsed()
{
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

sum_sql="SELECT string_agg(t || ':' || n, ' ' ORDER BY t) FROM (SELECT 'big1' t, count(*) n FROM big1 UNION ALL SELECT 'big2', count(*) FROM big2 UNION ALL SELECT 'big3', count(*) FROM big3 UNION ALL SELECT 'big4', count(*) FROM big4) s"
src_sum=$(S -Atc "$sum_sql")
# check DB: does the destination database DB match the source?
check()
{
	local db=$1 sum pk
	sum=$(D "$db" -Atc "$sum_sql")
	pk=$(D "$db" -Atc "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid::regclass::text LIKE 'big_'")
	if [ "$sum" = "$src_sum" ] && [ "$pk" = 4 ]; then echo "same rows, 4 primary keys"; else echo "DIFFERENT ($sum; $pk primary keys)"; fi
}

echo "bench: pg_dts_ship (schema + full)"
settle
cat >"$out/task.json" <<EOF
{"name": "fullbench", "source": {"conninfo": "$src_conn"},
 "sink": {"type": "pg", "conninfo": "$dst_host dbname=d_dts"},
 "objects": {"public": {"all": false, "tables": {"big1": {}, "big2": {}, "big3": {}, "big4": {}}}},
 "heartbeat_interval": 0, "sync": ["schema", "full"]}
EOF
walstate "before pg_dts_ship"
t0=$(date +%s.%N)
"$ship" --task "$out/task.json" --start -n 2>"$out/dts.err" ||
	{ tail -n 20 "$out/dts.err" >&2; exit 1; }
t1=$(date +%s.%N)
dts_s=$(elapsed "$t0" "$t1")
S -c "SELECT pg_drop_replication_slot('dts_sync_fullbench')" >/dev/null
dts_check=$(check d_dts)

echo "bench: pg_dump | psql"
settle
walstate "before pg_dump | psql"
t0=$(date +%s.%N)
"$bindir/pg_dump" -d "$src_conn" -t 'public.big*' |
	"$bindir/psql" -X -q "${dump_psql_opts[@]}" -v ON_ERROR_STOP=1 -d "$dst_host dbname=d_dump" >/dev/null
t1=$(date +%s.%N)
dump_s=$(elapsed "$t0" "$t1")
dump_check=$(check d_dump)

echo "bench: native subscription initial copy"
settle
"$bindir/pg_dump" -d "$src_conn" -t 'public.big*' --schema-only |
	"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dst_host dbname=d_native" >/dev/null
D d_native -c "CHECKPOINT" >/dev/null
walstate "before native"
t0=$(date +%s.%N)
D d_native -c "CREATE SUBSCRIPTION full_sub CONNECTION '$src_conn' PUBLICATION full_pub WITH (copy_data = true)"
until [ "$(D d_native -Atc "SELECT count(*) FILTER (WHERE srsubstate IN ('r', 's')) = 4 FROM pg_subscription_rel")" = t ]; do
	sleep 0.1
done
t1=$(date +%s.%N)
native_s=$(elapsed "$t0" "$t1")
D d_native -c "ALTER SUBSCRIPTION full_sub DISABLE" \
	-c "ALTER SUBSCRIPTION full_sub SET (slot_name = NONE)" -c "DROP SUBSCRIPTION full_sub"
S -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
native_check=$(check d_native)

echo "bench: floor: the destination alone, from server-side binary files (not a contender)"
floor_write_files
settle
floor_pre_data
D d_floor -c "CHECKPOINT" >/dev/null
t0=$(date +%s.%N)
floor_load
t1=$(date +%s.%N)
floor_s=$(elapsed "$t0" "$t1")
floor_check=$(check d_floor)
floor_remove_files

best=$(awk -v a="$dump_s" -v b="$native_s" 'BEGIN { print (a < b ? a : b) }')
ratio=$(awk -v a="$best" -v b="$dts_s" 'BEGIN { printf "%.2f", a / b }')
mbps()
{
	awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'
}
{
	echo "# Full sync benchmark results"
	echo
	echo "Produced by \`bench/fullsync/run.sh\` (\`make bench\`); see bench/README.md."
	echo
	echo "- run: $(date -u '+%Y-%m-%d %H:%M') UTC, pg_dts $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, source and destination on this machine"
	echo "- destination: $([ -n "${BENCH_FULL_SAME_DST:-}" ] && echo "one cluster for all three (BENCH_FULL_SAME_DST)" || echo "a fresh cluster for each contender"); its configuration: $dst_label"
	echo "- 4 tables of $rows rows: $size on disk with their primary keys ($((bytes / 1048576)) MB of heap)"
	echo
	echo "| contender | seconds | heap MB/s | destination |"
	echo "|---|---:|---:|---|"
	echo "| pg_dts_ship (schema + full: pre-data, parallel binary COPY, post-data) | $dts_s | $(mbps "$dts_s") | $dts_check |"
	echo "| pg_dump \| psql | $dump_s | $(mbps "$dump_s") | $dump_check |"
	echo "| native subscription, initial copy (schema loaded first) | $native_s | $(mbps "$native_s") | $native_check |"
	echo "| floor, not a contender: the destination alone (4 × COPY FREEZE from server-side binary files at once, then the 4 primary keys at once) | $floor_s | $(mbps "$floor_s") | $floor_check |"
	echo
	echo "pg_dts / the faster of the two: **${ratio}×**"
	echo
	echo "The faster anchor / the destination's floor: **$(awk -v a="$best" -v b="$floor_s" 'BEGIN { printf "%.2f", a / b }')×**, about the highest ratio pg_dts_ship's way of loading can reach in this run (the floor leaves out the source's work, which shares the machine in a real run); 1.5× the faster anchor would take $(awk -v a="$best" 'BEGIN { printf "%.1f", a / 1.5 }') s."
} >"$RESULTS"
cat "$RESULTS"

#!/usr/bin/env bash
#
# bench/fullsync/profile.sh
#	  Where the full sync's time goes: the three contenders of run.sh on a
#	  smaller load (BENCH_FULL_GB, default 1), each with the CPU seconds of
#	  the source cluster, the destination cluster and the client processes,
#	  the destination's WAL bytes, checkpoints and buffer writes, the bytes
#	  written to disk, and (from the destination's log, statements over
#	  PROFILE_LOG_MS ms) how long each COPY and index build took.
#
# Not a timing benchmark (run.sh is): the destination logs long
# statements, and the clients run under /usr/bin/time.  Run it under
# "flock -x /tmp/pg_dts_bench.lock" all the same: it loads the machine.
#
# Environment: BENCH_FULL_GB (1), PG_DTS_SHIP, PROFILE_ONLY (a space-
# separated subset of "dts dump native floor"; floor is run.sh's floor, the
# destination alone loading server-side binary files the source wrote
# before, untimed: its CPU seconds are the destination's share of any
# COPY-based load), PROFILE_DTS_OPTS (JSON members
# added to the task file, e.g. '"full_sync": {"workers": 2}'),
# PROFILE_VARIANTS (a file of lines "name VAR=value ...": more pg_dts_ship
# runs with that environment; SHIP=path runs another build), PROFILE_LOG_MS
# (500), PROFILE_DST_CONF (extra destination settings, one
# per line, applied to every contender), PROFILE_SAME_DST (non-empty: one
# destination cluster for all, instead of a fresh one for each contender),
# BENCH_FULL_DST (bulkload: run.sh's bulk-load destination, setup.sh).
#
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
ship=${PG_DTS_SHIP:-$bindir/pg_dts_ship}
GB=${BENCH_FULL_GB:-1}
ONLY=${PROFILE_ONLY:-dts dump native}
LOG_MS=${PROFILE_LOG_MS:-500}

setup_label=profile
setup_keep=${PROFILE_KEEP:-}
setup_dst_conf="log_min_duration_statement = $LOG_MS
log_checkpoints = on
log_min_messages = log
${PROFILE_DST_CONF:-}"
# shellcheck source=bench/fullsync/setup.sh
. "$root/bench/fullsync/setup.sh"
echo "profile: $((bytes / 1048576)) MB of heap"
D postgres -c "CHECKPOINT"
sync

# CPU seconds of a cluster: the postmaster, its reaped children, the live ones
cluster_cpu()
{
	local dir=$1 pm tck
	pm=$(head -1 "$dir/data/postmaster.pid")
	tck=$(getconf CLK_TCK)
	{
		awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
		for c in $(pgrep -P "$pm"); do
			awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true
		done
	} | awk -v t="$tck" '{ s += $1 } END { printf "%.1f", s / t }'
}
# sectors written to the disk under /tmp since boot, in MB
disk_mb()
{
	local dev
	dev=$(basename "$(df --output=source /tmp | tail -1)")
	awk -v d="$dev" '$3 == d { printf "%.0f", $10 * 512 / 1048576 }' /proc/diskstats
}
dst_stats()
{
	D postgres -Atc "SELECT pg_current_wal_lsn(), checkpoints_timed + checkpoints_req, buffers_checkpoint, buffers_clean, buffers_backend FROM pg_stat_bgwriter" | tr '|' ' '
}

# measure NAME DB CMD...: runs CMD (its clients under /usr/bin/time) and
# prints one report line
measure()
{
	local name=$1 db=$2; shift 2
	local s0 d0 k0 w0 t0 t1 s1 d1 k1 w1 lsn0 ck0 bc0 bcl0 bb0 lsn1 ck1 bc1 bcl1 bb1 wal
	D postgres -c "CHECKPOINT"
	cache_settle
	sleep 1
	read -r lsn0 ck0 bc0 bcl0 bb0 < <(dst_stats)
	s0=$(cluster_cpu "$src_dir") d0=$(cluster_cpu "$dst_dir") w0=$(disk_mb)
	CUR=$name
	: >"$out/$name.time"
	t0=$(date +%s.%N)
	# what the destination's client backends wait on, sampled every 0.2 s
	rm -f "$out/stop"
	( while [ ! -e "$out/stop" ]; do
		D postgres -Atc "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity WHERE backend_type IN ('client backend', 'parallel worker', 'logical replication worker') AND state <> 'idle' AND pid <> pg_backend_pid()" 2>/dev/null
		sleep 0.2
	  done >"$out/$name.waits" ) &
	local sampler=$!
	"$@"
	t1=$(date +%s.%N)
	touch "$out/stop"
	wait "$sampler" || true
	sleep 0.5
	s1=$(cluster_cpu "$src_dir") d1=$(cluster_cpu "$dst_dir")
	read -r lsn1 ck1 bc1 bcl1 bb1 < <(dst_stats)
	sync
	w1=$(disk_mb)
	wal=$(D postgres -Atc "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint / 1048576")
	k1=$(awk '/^cpu / { s += $2 } END { printf "%.1f", s }' "$out/$name.time")
	printf '%-7s %6.1f s | CPU s: source %6.1f  dest %6.1f  clients %6.1f | dst WAL %6s MB  ckpts %s  buf writes ckpt/bgw/backend %s/%s/%s | disk written %s MB\n' \
		"$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
		"$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')" \
		"$(awk -v a="$d0" -v b="$d1" 'BEGIN { print b - a }')" \
		"$k1" "$wal" "$((ck1 - ck0))" "$((bc1 - bc0))" "$((bcl1 - bcl0))" \
		"$((bb1 - bb0))" "$((w1 - w0))" | tee -a "$out/report"
	echo "    destination backends' samples (wait event or CPU): $(sort "$out/$name.waits" | uniq -c | sort -rn | head -6 | awk '{ printf "%s %s, ", $2, $1 }')"
}
timed()
{
	local name=$1; shift
	/usr/bin/time -f "cpu %U %S" -a -o "$out/$name.time" "$@"
}
fix_time()
{
	# "cpu U S" lines -> "cpu total" lines
	awk '{ print "cpu " $2 + $3 }' "$1" >"$1.x" && mv "$1.x" "$1"
}

run_dts()
{
	local db=$1; shift
	cat >"$out/task.json" <<EOF
{"name": "fullbench", "source": {"conninfo": "$src_conn"},
 "sink": {"type": "pg", "conninfo": "$dst_host dbname=$db"},
 "objects": {"public": {"all": false, "tables": {"big1": {}, "big2": {}, "big3": {}, "big4": {}}}},
 "heartbeat_interval": 0, "sync": ["schema", "full"]${PROFILE_DTS_OPTS:+, $PROFILE_DTS_OPTS}}
EOF
	# a variant may name another build: SHIP=path among its variables
	local bin=$ship v
	for v in "$@"; do
		case $v in SHIP=*) bin=${v#SHIP=} ;; esac
	done
	timed "$CUR" env "$@" "$bin" --task "$out/task.json" --start -n -v 2>"$out/dts.err" ||
		{ tail -n 20 "$out/dts.err" >&2; exit 1; }
	fix_time "$out/$CUR.time"
	S -c "SELECT pg_drop_replication_slot('dts_sync_fullbench')" >/dev/null
}
run_dump_pipe()
{
	mkfifo "$out/fifo"
	/usr/bin/time -f "cpu %U %S" -a -o "$out/dump.time" "$bindir/pg_dump" -d "$src_conn" -t 'public.big*' -f "$out/fifo" &
	local dumper=$!
	/usr/bin/time -f "cpu %U %S" -a -o "$out/dump.time" "$bindir/psql" -X -q "${dump_psql_opts[@]}" -v ON_ERROR_STOP=1 -d "$dst_host dbname=d_dump" -f "$out/fifo" >/dev/null
	wait "$dumper"
	rm -f "$out/fifo"
	fix_time "$out/dump.time"
}
run_native()
{
	"$bindir/pg_dump" -d "$src_conn" -t 'public.big*' --schema-only |
		"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dst_host dbname=d_native" >/dev/null
	D d_native -c "CREATE SUBSCRIPTION full_sub CONNECTION '$src_conn' PUBLICATION full_pub WITH (copy_data = true)"
	until [ "$(D d_native -Atc "SELECT count(*) FILTER (WHERE srsubstate IN ('r', 's')) = 4 FROM pg_subscription_rel")" = t ]; do
		sleep 0.1
	done
	D d_native -c "ALTER SUBSCRIPTION full_sub DISABLE" \
		-c "ALTER SUBSCRIPTION full_sub SET (slot_name = NONE)" -c "DROP SUBSCRIPTION full_sub"
	S -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
}

for c in $ONLY; do
	# every contender on a fresh destination, as in run.sh
	[ -n "${PROFILE_SAME_DST:-}" ] || dst_new
	case $c in
		dts) measure dts d_dts run_dts d_dts
			grep -E "took|full sync of task|post-data" "$out/dts.err" | sed 's/^/    /' || true
			# PROFILE_VARIANTS: lines "name VAR=value ..." (environment of more runs)
			n=0
			while read -r vname vars; do
				[ -n "$vname" ] || continue
				n=$((n + 1))
				[ -n "${PROFILE_SAME_DST:-}" ] || dst_new
				D postgres -c "CREATE DATABASE d_v$n"
				echo "variant $vname: $vars"
				# shellcheck disable=SC2086
				measure "$vname" "d_v$n" run_dts "d_v$n" $vars
				grep -E "took|full sync of task" "$out/dts.err" | sed 's/^/    /' || true
			done < "${PROFILE_VARIANTS:-/dev/null}" ;;
		dump) measure dump d_dump run_dump_pipe ;;
		native) measure native d_native run_native ;;
		floor) floor_write_files
			floor_pre_data
			measure floor d_floor floor_load
			floor_remove_files ;;
	esac
done
echo "profile: destination statements over $LOG_MS ms and checkpoints:"
cat "$out/dst_server.log" "$dst_dir/server.log" 2>/dev/null |
	grep -E "duration:|checkpoint complete" |
	sed -E 's/^.*(duration: [0-9.]+ ms).*(statement|execute [^:]*): */  \1  /; s/^.*checkpoint complete/  checkpoint complete/' | cut -c1-160 || true

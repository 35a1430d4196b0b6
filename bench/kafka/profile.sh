#!/usr/bin/env bash
#
# bench/kafka/profile.sh
#	  Where the Kafka benchmark's time goes: many interleaved runs of the
#	  contenders on one standing copy of the benchmark's WAL.  Not a timing
#	  run for the record (run.sh is); a tool to compare builds and settings
#	  when the differences are smaller than this machine's drift.
#
# One throw-away cluster and one mock cluster, as in run.sh, and one
# workload.  Before the workload one pristine slot of each plugin is made
# (pg_dts, pgoutput, wal2json); every run gets a fresh copy of the
# pristine slot (pg_copy_logical_replication_slot), so each run decodes
# exactly the same WAL, and the contenders take turns: PROFILE_RUNS rounds
# of PROFILE_CONTENDERS in order.  Per run: wall seconds, and the client's
# user and system CPU seconds and maximum RSS (/usr/bin/time; for the
# pipeline, of pg_recvlogical only), and the mock cluster's CPU seconds
# during the run (/proc; it serves every contender that produces, and
# shares the CPUs with the walsender).  At the end the median of each, and
# the median ratios against the pipeline and the floor.
#
# Contenders:
#	floor		pg_recvlogical, pgoutput, a publication without tables, to
#				/dev/null: the walsender reads, decodes and replays the WAL
#				and sends nothing (run.sh's floor)
#	dts			pg_dts_ship (PG_DTS_SHIP, else the installed one), Kafka sink,
#				DTS Avro, primary_key, as run.sh runs it
#	dts_b		the same with PG_DTS_SHIP_B (another build) and
#				PG_DTS_SHIP_B_OPTS (extra options), for A/B comparisons
#	sp			pg_dts_ship, SharePlex JSON
#	w2j			pg_recvlogical -P wal2json -o format-version=2 -f - | kcat -P
#				-z lz4 (run.sh's pipeline)
#	text		pg_recvlogical reading the pg_dts plugin, format text, with
#				the Kafka sink's binary_types, to /dev/null: the lightest
#				consumer of the stream pg_dts_ship reads
#	binary		the same, format binary
#
# Environment:
#	PROFILE_RUNS=5					rounds
#	PROFILE_CONTENDERS="floor dts w2j"
#	PG_DTS_SHIP, PG_DTS_SHIP_B, PG_DTS_SHIP_B_OPTS	see above
#	BENCH_ROWS, BENCH_UPDATES, BENCH_DELETES, BENCH_BATCH, BENCH_HOST,
#	BENCH_PIN: as in run.sh
#
# Example: is build B faster than the installed one?
#	PG_DTS_SHIP_B=build/pg_dts_ship PROFILE_CONTENDERS="floor dts dts_b" \
#		PROFILE_RUNS=6 bench/kafka/profile.sh
#
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

ROWS=${BENCH_ROWS:-1000000}
UPDATES=${BENCH_UPDATES:-200000}
DELETES=${BENCH_DELETES:-100000}
BATCH=${BENCH_BATCH:-10000}
RUNS=${PROFILE_RUNS:-5}
CONTENDERS=${PROFILE_CONTENDERS:-floor dts w2j}
bindir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
ship=${PG_DTS_SHIP:-$bindir/pg_dts_ship}
ship_b=${PG_DTS_SHIP_B:-}

for c in $CONTENDERS; do
	case $c in
		floor | dts | sp | w2j | text | binary) ;;
		dts_b) [ -x "$ship_b" ] || { echo "profile: dts_b needs PG_DTS_SHIP_B, an executable pg_dts_ship" >&2; exit 1; } ;;
		*) echo "profile: unknown contender \"$c\" (floor, dts, dts_b, sp, w2j, text, binary)" >&2; exit 1 ;;
	esac
done
[ -x build/mock_broker ] || { echo "profile: build/mock_broker missing (make kafka-tools)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "profile: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

setup_label=profile
# shellcheck source=bench/kafka/setup.sh
. "$root/bench/kafka/setup.sh"

kafka_mock_start -t profile_dts:6 -t profile_w2j:6

pgc_psql -o /dev/null <<'SQL'
CREATE EXTENSION pg_dts;
CREATE PUBLICATION bench_none;
CREATE TABLE bench (id bigint PRIMARY KEY, a int, b text, c timestamptz,
	d numeric(12,2), e jsonb);
SELECT 1 FROM pg_create_logical_replication_slot('pristine_pg_dts', 'pg_dts');
SELECT 1 FROM pg_create_logical_replication_slot('pristine_pgoutput', 'pgoutput');
SELECT 1 FROM pg_create_logical_replication_slot('pristine_wal2json', 'wal2json');
SQL
echo "profile: workload: $ROWS inserts, $UPDATES updates, $DELETES deletes, $BATCH rows per transaction"
bench_workload_sql "$ROWS" "$UPDATES" "$DELETES" "$BATCH" | pgc_psql -o /dev/null
pgc_psql -o /dev/null -c "CHECKPOINT"
end=$(pgc_psql -Atc "SELECT pg_current_wal_insert_lsn()")
until [ "$(pgc_psql -Atc "SELECT pg_current_wal_flush_lsn() >= '$end'")" = t ]; do sleep 0.05; done

conninfo="host=${BENCH_HOST:-$PGC_SOCK} port=$PGC_PORT dbname=postgres user=postgres"
# the binary_types the Kafka sink asks for (shipper/formats/record.h)
kafka_binary_types=$(sed -n '/^#define DTS_KFMT_BINARY_TYPES/,/[^\\]$/p' shipper/formats/record.h |
	grep -o '"[^"]*"' | tr -d '"\n')
[ -n "$kafka_binary_types" ] || { echo "profile: DTS_KFMT_BINARY_TYPES not found in shipper/formats/record.h" >&2; exit 1; }

# fresh_slot NAME PLUGIN: NAME, a copy of the pristine slot of PLUGIN
fresh_slot()
{
	pgc_psql -o /dev/null \
		-c "SELECT pg_drop_replication_slot('$1') FROM pg_replication_slots WHERE slot_name = '$1'" \
		-c "SELECT 1 FROM pg_copy_logical_replication_slot('pristine_$2', '$1')"
}

# ship_task FORMAT: a task file for the Kafka sink in FORMAT
ship_task()
{
	printf '{"name": "profile", "sink": {"type": "kafka", "brokers": "%s", "topic": "profile_dts", "format": "%s", "partition_policy": "primary_key"}, "heartbeat_interval": 0}\n' \
		"$B" "$1" >"$work/task_$1.json"
	echo "$work/task_$1.json"
}

# mock_cpu_ticks: user + system CPU time of the mock cluster so far, in clock ticks
mock_cpu_ticks()
{
	awk '{ print $14 + $15 }' "/proc/$mock_pid/stat"
}
clk_tck=$(getconf CLK_TCK)

# one_run CONTENDER: runs it on a fresh slot; appends "contender seconds
# user system rss_kB mock_cpu_s" to runs.tsv
one_run()
{
	local c=$1 slot=profile_$1 plugin a b ma mb tfile=$work/time
	local -a cmd

	case $c in
		floor) plugin=pgoutput ;;
		w2j) plugin=wal2json ;;
		*) plugin=pg_dts ;;
	esac
	fresh_slot "$slot" "$plugin"
	case $c in
		floor) cmd=(pg_recvlogical -d "$conninfo" -S "$slot" --start -E "$end"
					-o proto_version=1 -o publication_names=bench_none -f /dev/null) ;;
		dts) cmd=("$ship" -d "$conninfo" -S "$slot" --task "$(ship_task avro)" --start -n -E "$end") ;;
		dts_b) # shellcheck disable=SC2206
			cmd=("$ship_b" -d "$conninfo" -S "$slot" --task "$(ship_task avro)" --start -n -E "$end"
				 ${PG_DTS_SHIP_B_OPTS:-}) ;;
		sp) cmd=("$ship" -d "$conninfo" -S "$slot" --task "$(ship_task shareplex_json)" --start -n -E "$end") ;;
		text | binary) cmd=(pg_recvlogical -d "$conninfo" -S "$slot" --start -E "$end"
							-o proto_version=1 -o format="$c" -o binary_types="$kafka_binary_types"
							-f /dev/null) ;;
		w2j) cmd=(pg_recvlogical -d "$conninfo" -S "$slot" --start -E "$end" -o format-version=2 -f -) ;;
	esac
	ma=$(mock_cpu_ticks)
	a=$(date +%s.%N)
	if [ "$c" = w2j ]; then
		/usr/bin/time -f '%U %S %M' -o "$tfile" "${cmd[@]}" 2>>"$work/client.log" |
			kcat -P -b "$B" -t profile_w2j -z lz4 -X queue.buffering.max.messages=1000000 2>>"$work/client.log"
	else
		/usr/bin/time -f '%U %S %M' -o "$tfile" "${cmd[@]}" 2>>"$work/client.log"
	fi
	b=$(date +%s.%N)
	mb=$(mock_cpu_ticks)
	printf '%s\t%s\t%s\t%s\n' "$c" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b - a }')" \
		"$(tail -1 "$tfile" | tr ' ' '\t')" \
		"$(awk -v a="$ma" -v b="$mb" -v t="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / t }')" |
		tee -a "$work/runs.tsv"
	pgc_psql -o /dev/null -c "SELECT pg_drop_replication_slot('$slot')"
}

echo "profile: $RUNS rounds of: $CONTENDERS (contender, seconds, user s, system s, max RSS kB, mock cluster CPU s)"
: >"$work/runs.tsv"
for ((r = 1; r <= RUNS; r++)); do
	for c in $CONTENDERS; do
		one_run "$c"
	done
done

python3 - "$work/runs.tsv" "$CONTENDERS" <<'PY'
import statistics, sys
runs, order = sys.argv[1], sys.argv[2].split()
by = {}
for line in open(runs):
    c, sec, usr, sys_, rss, mock = line.split("\t")
    by.setdefault(c, []).append((float(sec), float(usr), float(sys_), int(rss), float(mock)))
med = statistics.median
print("\n| contender | runs | seconds (median) | all runs | user s | system s | max RSS kB | mock cluster CPU s |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
m = {}
for c in order:
    xs = by[c]
    m[c] = med(x[0] for x in xs)
    print("| %s | %d | %.3f | %s | %.2f | %.2f | %d | %.2f |" % (
        c, len(xs), m[c], ", ".join("%.2f" % x[0] for x in xs),
        med(x[1] for x in xs), med(x[2] for x in xs), med(x[3] for x in xs),
        med(x[4] for x in xs)))
print()
for c in order:
    if "w2j" in m and c != "w2j":
        print("w2j / %s (median seconds): %.2fx" % (c, m["w2j"] / m[c]))
for c in order:
    if "floor" in m and c not in ("floor", "w2j"):
        print("%s / floor (median seconds): %.3f" % (c, m[c] / m["floor"]))
PY

#!/usr/bin/env bash
#
# bench/kafka/run.sh
#	  Kafka benchmark: source slot -> Kafka, changes per second, pg_dts's
#	  Kafka sink (DTS Avro) against the usual pipeline
#	  `pg_recvlogical -P wal2json -f - | kcat -P`, on the same WAL, in the
#	  same run, into the same mock cluster.
#
# One throw-away cluster (tools/pgcluster.sh) and one librdkafka mock
# cluster (build/mock_broker, 3 brokers).  All slots are created before
# the workload, so every contender ships exactly the same changes:
#
#	pg_dts		pg_dts_ship --task (Kafka sink) --start -E END: the slot read over
#				the replication protocol (format text),
#				every change a DTS Avro record, primary_key partitioning,
#				lz4, idempotent producer with acks=all, durable LSN from
#				delivery reports (the Kafka sink of pg_dts_ship)
#	wal2json	pg_recvlogical -P wal2json -o format-version=2 -E END -f - |
#				kcat -P -z lz4 (one message per line: one per change, plus
#				a begin and a commit line per transaction)
#	floor		pg_recvlogical -P pgoutput -o publication_names=bench_none
#				-E END -f /dev/null, first and last: the walsender reads and
#				decodes the same WAL and replays every transaction, but the
#				publication has no table, so nothing is formatted or sent.
#				Not a contender: about the least time any consumer of this
#				walsender needs (its per-record work, which both contenders
#				pay alike), so pipeline / floor is about the highest ratio
#				the run allows.
#
# Each is timed from start to exit (all messages delivered: kcat and the
# sink both flush before exiting); memory is the maximum RSS from
# /usr/bin/time -v (for the pipeline, of each process).  Messages are
# counted from the end offsets of the partitions (the mock cluster keeps
# only the newest message sets of a partition, so reading the topic back
# would count fewer).  Results on stdout and in bench/kafka/results.md.
#
# Environment (the workload of bench/decode and bench/ship by default):
#	BENCH_ROWS=1000000		rows inserted
#	BENCH_UPDATES=200000	rows updated
#	BENCH_DELETES=100000	rows deleted
#	BENCH_BATCH=10000		rows per transaction
#	BENCH_RESULTS=bench/kafka/results.md
#	BENCH_HOST=<socket dir>	host both contenders connect to (127.0.0.1: TCP)
#
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

ROWS=${BENCH_ROWS:-1000000}
UPDATES=${BENCH_UPDATES:-200000}
DELETES=${BENCH_DELETES:-100000}
BATCH=${BENCH_BATCH:-10000}
RESULTS=${BENCH_RESULTS:-$here/results.md}
bindir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
# The shipper under test: PG_DTS_SHIP (a build of another tree), else the installed one.
ship=${PG_DTS_SHIP:-$bindir/pg_dts_ship}
CHANGES=$((ROWS + UPDATES + DELETES))

for f in build/kafka_driver build/mock_broker; do
	[ -x "$f" ] || { echo "bench: $f missing (make kafka-tools)" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "bench: kcat missing" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

export PGC_EXTRA_PLUGINS=wal2json
# shellcheck source=tools/pgcluster.sh
. "$root/tools/pgcluster.sh"
pgc_setup "shared_buffers = 512MB" "max_wal_size = 4GB" \
	"checkpoint_timeout = 1h" "synchronous_commit = off" "autovacuum = off"

work=$(mktemp -d /tmp/pg_dts_kbench.XXXXXX)
mock_pid=
trap '[ -n "$mock_pid" ] && kill "$mock_pid"; rm -rf "$work"; pgc_cleanup' EXIT

build/mock_broker -t bench_dts:6 -t bench_sp:6 -t bench_w2j:6 >"$work/bootstrap" 2>"$work/mock.log" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
B=$(head -1 "$work/bootstrap")

pgc_psql -o /dev/null <<'SQL'
CREATE EXTENSION pg_dts;
CREATE PUBLICATION bench_none;
CREATE TABLE bench (id bigint PRIMARY KEY, a int, b text, c timestamptz,
	d numeric(12,2), e jsonb);
SELECT 1 FROM pg_create_logical_replication_slot('bench_dts', 'pg_dts');
SELECT 1 FROM pg_create_logical_replication_slot('bench_sp', 'pg_dts');
SELECT 1 FROM pg_create_logical_replication_slot('bench_w2j', 'wal2json');
SELECT 1 FROM pg_create_logical_replication_slot('bench_floor1', 'pgoutput');
SELECT 1 FROM pg_create_logical_replication_slot('bench_floor2', 'pgoutput');
SQL
echo "bench: workload: $ROWS inserts, $UPDATES updates, $DELETES deletes ($CHANGES changes), $BATCH rows per transaction"
{
	for ((lo = 1; lo <= ROWS; lo += BATCH)); do
		hi=$((lo + BATCH - 1)); [ $hi -gt "$ROWS" ] && hi=$ROWS
		echo "INSERT INTO bench SELECT i, i, md5(i::text), now() + i * interval '1 second', (i % 100000) / 100.0, jsonb_build_object('k', i, 'tag', 'row' || i) FROM generate_series($lo, $hi) i;"
	done
	for ((lo = 1; lo <= UPDATES; lo += BATCH)); do
		hi=$((lo + BATCH - 1)); [ $hi -gt "$UPDATES" ] && hi=$UPDATES
		echo "UPDATE bench SET a = a + 1, b = b || 'x' WHERE id BETWEEN $lo AND $hi;"
	done
	first=$((ROWS - DELETES + 1))
	for ((lo = first; lo <= ROWS; lo += BATCH)); do
		hi=$((lo + BATCH - 1)); [ $hi -gt "$ROWS" ] && hi=$ROWS
		echo "DELETE FROM bench WHERE id BETWEEN $lo AND $hi;"
	done
} | pgc_psql -o /dev/null
pgc_psql -o /dev/null -c "CHECKPOINT"
end=$(pgc_psql -Atc "SELECT pg_current_wal_insert_lsn()")
# wait until the WAL is flushed: SQL decoding stops at the flush LSN
until [ "$(pgc_psql -Atc "SELECT pg_current_wal_flush_lsn() >= '$end'")" = t ]; do sleep 0.05; done

printf '{"name": "bench", "sink": {"type": "kafka", "brokers": "%s", "topic": "bench_dts", "format": "avro", "partition_policy": "primary_key"}, "heartbeat_interval": 0}\n' "$B" >"$work/task.json"
# Both contenders connect the same way: the unix socket by default, or
# BENCH_HOST (e.g. 127.0.0.1: TCP on loopback, as a shipper on another host would)
conninfo="host=${BENCH_HOST:-$PGC_SOCK} port=$PGC_PORT dbname=postgres user=postgres"

rss_of() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
# count_msgs TOPIC: messages written to TOPIC, the sum of its 6 partitions'
# end offsets (offset of the last message + 1)
count_msgs()
{
	local p n total=0

	for p in 0 1 2 3 4 5; do
		n=$(kcat -C -b "$B" -t "$1" -p "$p" -o -1 -e -q -f '%o\n' | tail -1)
		total=$((total + ${n:--1} + 1))
	done
	echo "$total"
}

# floor_run SLOT: the walsender's floor (see above) on SLOT, timed into floor_s
floor_s=()
floor_run()
{
	local a b

	echo "bench: the walsender's floor (pgoutput, a publication without tables)"
	a=$(date +%s.%N)
	pg_recvlogical -d "$conninfo" -S "$1" --start -E "$end" \
		-o proto_version=1 -o publication_names=bench_none -f /dev/null
	b=$(date +%s.%N)
	floor_s+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b - a }')")
}
floor_run bench_floor1

echo "bench: pg_dts Kafka sink (DTS Avro)"
t0=$(date +%s.%N)
/usr/bin/time -v -o "$work/dts.time" "$ship" -d "$conninfo" \
	-S bench_dts --task "$work/task.json" --start -n -E "$end" 2>"$work/dts.log"
t1=$(date +%s.%N)
tail -1 "$work/dts.log"
dts_msgs=$(count_msgs bench_dts)

printf '{"name": "bench", "sink": {"type": "kafka", "brokers": "%s", "topic": "bench_sp", "format": "shareplex_json", "partition_policy": "primary_key"}, "heartbeat_interval": 0}\n' "$B" >"$work/task_sp.json"
echo "bench: pg_dts Kafka sink (SharePlex JSON)"
t4=$(date +%s.%N)
/usr/bin/time -v -o "$work/sp.time" "$ship" -d "$conninfo" \
	-S bench_sp --task "$work/task_sp.json" --start -n -E "$end" 2>"$work/sp.log"
t5=$(date +%s.%N)
tail -1 "$work/sp.log"
sp_msgs=$(count_msgs bench_sp)

echo "bench: pg_recvlogical -P wal2json | kcat -P"
t2=$(date +%s.%N)
/usr/bin/time -v -o "$work/recv.time" pg_recvlogical -d "$conninfo" -S bench_w2j \
	--start -E "$end" -o format-version=2 -f - 2>"$work/recv.log" |
	/usr/bin/time -v -o "$work/kcat.time" kcat -P -b "$B" -t bench_w2j -z lz4 \
		-X queue.buffering.max.messages=1000000 2>"$work/kcat.log"
t3=$(date +%s.%N)
w2j_msgs=$(count_msgs bench_w2j)

floor_run bench_floor2

python3 - "$RESULTS" "$CHANGES" "$t0" "$t1" "$t2" "$t3" "$dts_msgs" "$w2j_msgs" \
	"$(rss_of "$work/dts.time")" "$(rss_of "$work/recv.time")" "$(rss_of "$work/kcat.time")" \
	"$ROWS" "$UPDATES" "$DELETES" "$BATCH" "$t4" "$t5" "$sp_msgs" "$(rss_of "$work/sp.time")" \
	"${floor_s[0]}" "${floor_s[1]}" <<'PY'
import datetime, os, platform, subprocess, sys
(out, changes, t0, t1, t2, t3, dmsgs, wmsgs, drss, rrss, krss,
 rows, upd, dels, batch, t4, t5, smsgs, srss, floor1, floor2) = sys.argv[1:]
changes = int(changes)
dts_s = float(t1) - float(t0)
w2j_s = float(t3) - float(t2)
dts_rate = changes / dts_s
w2j_rate = changes / w2j_s
sp_s = float(t5) - float(t4)
sp_rate = changes / sp_s
floor1, floor2 = float(floor1), float(floor2)
floor_s = min(floor1, floor2)
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
ncpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
rows_md = [
    ("pg_dts Kafka sink (DTS Avro, primary_key, lz4, idempotent)", dts_s, dts_rate, dmsgs, "%s kB" % drss),
    ("pg_dts Kafka sink (SharePlex JSON, primary_key, lz4, idempotent)", sp_s, sp_rate, smsgs, "%s kB" % srss),
    ("pg_recvlogical -P wal2json \\| kcat -P (lz4)", w2j_s, w2j_rate, wmsgs, "%s kB + %s kB" % (rrss, krss)),
]
with open(out, "w") as f:
    f.write("# Kafka benchmark results\n\n")
    f.write("Produced by `bench/kafka/run.sh`; see bench/README.md (\"kafka\").\n\n")
    f.write("- run: %s UTC, pg_dts %s\n" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), rev))
    f.write("- CPU: %s, %s CPUs; Kafka: librdkafka mock cluster, 3 brokers, 6 partitions\n" % (cpu, ncpu))
    f.write("- connection: %s\n" % (os.environ.get("BENCH_HOST") and "TCP to " + os.environ["BENCH_HOST"] or "unix socket"))
    f.write("- workload: %s inserts, %s updates, %s deletes = %d changes, %s rows per transaction\n\n" % (rows, upd, dels, changes, batch))
    f.write("| contender | seconds | changes/s | messages | max RSS |\n|---|---:|---:|---:|---:|\n")
    for name, s, r, m, rss in rows_md:
        f.write("| %s | %.2f | %.0f | %s | %s |\n" % (name, s, r, m, rss))
    f.write("| floor, first and last: the walsender alone (pgoutput, publication without tables, output discarded; not a contender) | %.2f, %.2f | %.0f | 0 | |\n" % (floor1, floor2, changes / floor_s))
    f.write("\npg_dts / pipeline, changes per second: **%.2f×** with DTS Avro, **%.2f×** with SharePlex JSON.\n" % (dts_rate / w2j_rate, sp_rate / w2j_rate))
    f.write("\nThe walsender's floor (the faster of its two runs): pg_dts Avro took %.2f× its time; pipeline / floor = **%.2f×**, about the highest ratio a consumer of this walsender could reach in this run.\n" % (dts_s / floor_s, w2j_s / floor_s))
print(open(out).read())
PY

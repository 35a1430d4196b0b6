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
#				-E END -f /dev/null, first in every round and once after
#				the last: the walsender reads and
#				decodes the same WAL and replays every transaction, but the
#				publication has no table, so nothing is formatted or sent.
#				Not a contender: about the least time any consumer of this
#				walsender needs (its per-record work, which both contenders
#				pay alike), so pipeline / floor is about the highest ratio
#				the run allows.
#
# The contenders run in BENCH_ROUNDS rounds (floor, DTS Avro, SharePlex
# JSON, pipeline), each on slots and topics of its own, all made before
# the workload: this machine's run-to-run drift is larger than the
# differences that matter, so every round's ratios are reported, and
# their medians.
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
#	BENCH_ROUNDS=3			rounds of all contenders (1 to 4)
#	BENCH_RESULTS=bench/kafka/results.md
#	BENCH_HOST=<socket dir>	host both contenders connect to (127.0.0.1: TCP)
#	BENCH_PIN=				1: the server on CPU 0, every client and the mock
#							cluster on the other CPUs (tools/pgcluster.sh
#							pgc_pin_apart), as if on two hosts
#
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

ROWS=${BENCH_ROWS:-1000000}
UPDATES=${BENCH_UPDATES:-200000}
DELETES=${BENCH_DELETES:-100000}
BATCH=${BENCH_BATCH:-10000}
ROUNDS=${BENCH_ROUNDS:-3}
case $ROUNDS in 1|2|3|4) ;; *) echo "bench: BENCH_ROUNDS must be 1 to 4 (got $ROUNDS)" >&2; exit 1 ;; esac
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

setup_label=bench
# shellcheck source=bench/kafka/setup.sh
. "$root/bench/kafka/setup.sh"

topics=()
for ((r = 1; r <= ROUNDS; r++)); do
	topics+=(-t "bench_dts$r:6" -t "bench_sp$r:6" -t "bench_w2j$r:6")
done
kafka_mock_start "${topics[@]}"

pgc_psql -o /dev/null <<'SQL'
CREATE EXTENSION pg_dts;
CREATE PUBLICATION bench_none;
CREATE TABLE bench (id bigint PRIMARY KEY, a int, b text, c timestamptz,
	d numeric(12,2), e jsonb);
SELECT 1 FROM pg_create_logical_replication_slot('bench_floor_last', 'pgoutput');
SQL
for ((r = 1; r <= ROUNDS; r++)); do
	pgc_psql -o /dev/null \
		-c "SELECT pg_create_logical_replication_slot('bench_dts$r', 'pg_dts')" \
		-c "SELECT pg_create_logical_replication_slot('bench_sp$r', 'pg_dts')" \
		-c "SELECT pg_create_logical_replication_slot('bench_w2j$r', 'wal2json')" \
		-c "SELECT pg_create_logical_replication_slot('bench_floor$r', 'pgoutput')"
done
echo "bench: workload: $ROWS inserts, $UPDATES updates, $DELETES deletes ($CHANGES changes), $BATCH rows per transaction"
bench_workload_sql "$ROWS" "$UPDATES" "$DELETES" "$BATCH" | pgc_psql -o /dev/null
pgc_psql -o /dev/null -c "CHECKPOINT"
end=$(pgc_psql -Atc "SELECT pg_current_wal_insert_lsn()")
# wait until the WAL is flushed: SQL decoding stops at the flush LSN
until [ "$(pgc_psql -Atc "SELECT pg_current_wal_flush_lsn() >= '$end'")" = t ]; do sleep 0.05; done

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

# record LABEL VALUE: appends "round label value" to times.tsv
record() { printf '%s\t%s\t%s\n' "$round" "$1" "$2" >>"$work/times.tsv"; }
# timed LABEL CMD...: runs CMD, records its seconds under LABEL
timed()
{
	local label=$1 a b
	shift
	a=$(date +%s.%N)
	"$@"
	b=$(date +%s.%N)
	record "$label" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b - a }')"
}
# the walsender's floor (see above) on slot $1
floor_run()
{
	echo "bench: round $round: the walsender's floor (pgoutput, a publication without tables)"
	timed floor pg_recvlogical -d "$conninfo" -S "$1" --start -E "$end" \
		-o proto_version=1 -o publication_names=bench_none -f /dev/null
}
# ship_run TAG FORMAT: pg_dts_ship's Kafka sink in FORMAT (avro, shareplex_json), on
# slot and topic bench_TAG<round>
ship_run()
{
	local tag=$1 format=$2
	printf '{"name": "bench", "sink": {"type": "kafka", "brokers": "%s", "topic": "bench_%s%s", "format": "%s", "partition_policy": "primary_key"}, "heartbeat_interval": 0}\n' \
		"$B" "$tag" "$round" "$format" >"$work/task_$tag.json"
	echo "bench: round $round: pg_dts Kafka sink ($format)"
	timed "$tag" /usr/bin/time -v -o "$work/$tag$round.time" "$ship" -d "$conninfo" \
		-S "bench_$tag$round" --task "$work/task_$tag.json" --start -n -E "$end" \
		2>"$work/$tag$round.log"
	tail -1 "$work/$tag$round.log"
	record "${tag}_msgs" "$(count_msgs "bench_$tag$round")"
	record "${tag}_rss" "$(rss_of "$work/$tag$round.time")"
}
pipeline()
{
	/usr/bin/time -v -o "$work/recv$round.time" pg_recvlogical -d "$conninfo" \
		-S "bench_w2j$round" --start -E "$end" -o format-version=2 -f - 2>"$work/recv.log" |
		/usr/bin/time -v -o "$work/kcat$round.time" kcat -P -b "$B" -t "bench_w2j$round" -z lz4 \
			-X queue.buffering.max.messages=1000000 2>"$work/kcat.log"
}
pipeline_run()
{
	echo "bench: round $round: pg_recvlogical -P wal2json | kcat -P"
	timed w2j pipeline
	record w2j_msgs "$(count_msgs "bench_w2j$round")"
	record w2j_rss "$(rss_of "$work/recv$round.time") kB + $(rss_of "$work/kcat$round.time") kB"
}

: >"$work/times.tsv"
for ((round = 1; round <= ROUNDS; round++)); do
	floor_run "bench_floor$round"
	ship_run dts avro
	ship_run sp shareplex_json
	pipeline_run
done
round=last
floor_run bench_floor_last

python3 - "$RESULTS" "$CHANGES" "$work/times.tsv" "$ROWS" "$UPDATES" "$DELETES" "$BATCH" <<'PY'
import datetime, os, statistics, subprocess, sys
out, changes, tsv, rows, upd, dels, batch = sys.argv[1:]
changes = int(changes)
t = {}
for line in open(tsv):
    rnd, label, value = line.rstrip("\n").split("\t")
    t.setdefault(label, {})[rnd] = value
rounds = sorted(r for r in t["dts"])
sec = {k: [float(t[k][r]) for r in rounds] for k in ("dts", "sp", "w2j")}
floors = [float(t["floor"][r]) for r in rounds] + [float(t["floor"]["last"])]
# the floor of a round: the faster of the runs just before and just after it
floor_of = [min(floors[i], floors[i + 1]) for i in range(len(rounds))]
med = statistics.median
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
ncpu = subprocess.run(["nproc", "--all"], capture_output=True, text=True).stdout.strip()
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
def secs(xs):
    return ", ".join("%.2f" % x for x in xs)
def same(label):
    vals = [t[label][r] for r in rounds]
    return vals[0] if len(set(vals)) == 1 else ", ".join(vals)
rows_md = [
    ("pg_dts Kafka sink (DTS Avro, primary_key, lz4, idempotent)", "dts", same("dts_msgs"), same("dts_rss") + " kB"),
    ("pg_dts Kafka sink (SharePlex JSON, primary_key, lz4, idempotent)", "sp", same("sp_msgs"), same("sp_rss") + " kB"),
    ("pg_recvlogical -P wal2json \\| kcat -P (lz4)", "w2j", same("w2j_msgs"), same("w2j_rss")),
]
avro = [w / d for w, d in zip(sec["w2j"], sec["dts"])]
sp = [w / d for w, d in zip(sec["w2j"], sec["sp"])]
over = [d / f for d, f in zip(sec["dts"], floor_of)]
ceil = [w / f for w, f in zip(sec["w2j"], floor_of)]
with open(out, "w") as f:
    f.write("# Kafka benchmark results\n\n")
    f.write("Produced by `bench/kafka/run.sh`; see bench/README.md (\"kafka\").\n\n")
    f.write("- run: %s UTC, pg_dts %s\n" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), rev))
    f.write("- CPU: %s, %s CPUs; Kafka: librdkafka mock cluster, 3 brokers, 6 partitions\n" % (cpu, ncpu))
    f.write("- connection: %s\n" % (os.environ.get("BENCH_HOST") and "TCP to " + os.environ["BENCH_HOST"] or "unix socket"))
    if os.environ.get("BENCH_PIN"):
        f.write("- CPUs apart (BENCH_PIN): the server on CPU 0; the clients (pg_dts_ship, pg_recvlogical, kcat) and the mock cluster on the others\n")
    f.write("- workload: %s inserts, %s updates, %s deletes = %d changes, %s rows per transaction\n" % (rows, upd, dels, changes, batch))
    f.write("- %d rounds, each: floor, DTS Avro, SharePlex JSON, pipeline (each on its own slot and topic); one more floor after the last\n\n" % len(rounds))
    f.write("| contender | seconds, by round | changes/s (median) | messages | max RSS |\n|---|---:|---:|---:|---:|\n")
    for name, key, msgs, rss in rows_md:
        f.write("| %s | %s | %.0f | %s | %s |\n" % (name, secs(sec[key]), changes / med(sec[key]), msgs, rss))
    f.write("| floor: the walsender alone (pgoutput, publication without tables, output discarded; not a contender), before each round and after the last | %s | %.0f | 0 | |\n" % (secs(floors), changes / med(floors)))
    f.write("\n| round | DTS Avro / pipeline | SharePlex JSON / pipeline | DTS Avro / floor (time) | pipeline / floor |\n|---|---:|---:|---:|---:|\n")
    for i, r in enumerate(rounds):
        f.write("| %s | %.2f× | %.2f× | %.2f | %.2f× |\n" % (r, avro[i], sp[i], over[i], ceil[i]))
    f.write("\npg_dts / pipeline, changes per second, median of %d rounds: **%.2f×** with DTS Avro (rounds: %s), **%.2f×** with SharePlex JSON.\n"
            % (len(rounds), med(avro), ", ".join("%.2f×" % x for x in avro), med(sp)))
    f.write("\nThe walsender's floor (a round's floor: the faster of the runs before and after it): pg_dts Avro took %.2f× its time (median); pipeline / floor = **%.2f×** (median), about the highest ratio a consumer of this walsender could reach.\n"
            % (med(over), med(ceil)))
print(open(out).read())
PY

#!/usr/bin/env bash
#
# bench/ship/run.sh
#	  End-to-end shipping benchmark: from a slot holding bench/decode's
#	  workload to a JSON file, pg_dts_ship against the usual pipeline
#	  "pg_recvlogical -P wal2json (format 2) -f FILE", same WAL, same run.
#
# One throw-away cluster (tools/pgcluster.sh).  All slots are created
# before the workload, one per contender and round, so that every run
# reads the same WAL from the start and consumes only its own slot.  Three
# interleaved rounds; each run is timed with /usr/bin/time (elapsed seconds
# and maximum resident set size) and stops at the LSN reached by the
# workload (-E).  Then a single transaction of BENCH_BIG_ROWS rows is
# shipped alone, to show memory stays bounded while it streams through.
#
# Environment: BENCH_ROWS (1000000), BENCH_UPDATES (200000),
# BENCH_DELETES (100000), BENCH_BATCH (10000 rows per transaction),
# BENCH_BIG_ROWS (5000000; 0 skips that phase), BENCH_ROUNDS (3),
# BENCH_RESULTS (default bench/ship/results.md).
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
BIG=${BENCH_BIG_ROWS:-5000000}
ROUNDS=${BENCH_ROUNDS:-3}
RESULTS=${BENCH_RESULTS:-$root/bench/ship/results.md}

for tool in "$ship" "$bindir/pg_recvlogical" /usr/bin/time; do
	if [ ! -x "$tool" ]; then
		echo "bench: $tool not found (make install; package time)" >&2
		exit 1
	fi
done
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/wal2json.so" ]; then
	echo "bench: wal2json not installed (tools/install-deps.sh --bench)" >&2
	exit 1
fi

export PGC_EXTRA_PLUGINS=wal2json
# shellcheck source=tools/pgcluster.sh
. "$root/tools/pgcluster.sh"
# shellcheck source=bench/workload.sh
. "$root/bench/workload.sh"
pgc_setup \
	"shared_buffers = 1GB" \
	"max_wal_size = 20GB" \
	"checkpoint_timeout = 1h" \
	"synchronous_commit = off" \
	"logical_decoding_work_mem = 64MB" \
	"autovacuum = off"

out=$(mktemp -d /tmp/pg_dts_bench_ship.XXXXXX)
trap 'rm -rf "$out"; pgc_cleanup' EXIT
conninfo="host=$PGC_SOCK port=$PGC_PORT dbname=postgres user=postgres"

echo "bench: schema and $((2 * ROUNDS)) slots"
{
	cat <<'SQL'
CREATE EXTENSION pg_dts;
CREATE TABLE bench (id bigint PRIMARY KEY, a int, b text, c timestamptz,
                    d numeric(12,2), e jsonb);
SQL
	for r in $(seq 1 "$ROUNDS"); do
		echo "SELECT 1 FROM pg_create_logical_replication_slot('ship_$r', 'pg_dts');"
		echo "SELECT 1 FROM pg_create_logical_replication_slot('w2j_$r', 'wal2json');"
	done
} | pgc_psql -o /dev/null

echo "bench: workload: $ROWS inserts, $UPDATES updates, $DELETES deletes"
{
	bench_workload_sql "$ROWS" "$UPDATES" "$DELETES" "$BATCH"
	# a synchronous commit after the workload flushes all of it; -E stops
	# at the end of that commit
	echo "SET synchronous_commit = on;"
	echo "CREATE TABLE bench_end (x int);"
} | pgc_psql -o /dev/null
endpos=$(pgc_psql -Atc "SELECT pg_current_wal_insert_lsn()")
changes=$((ROWS + UPDATES + DELETES))
echo "bench: $changes changes, end LSN $endpos"

# run NAME LOGFILE CMD...: time CMD, append "name seconds maxrss_kb lines"
measurements=$out/measurements
run()
{
	local name=$1 file=$2
	shift 2
	/usr/bin/time -f "%e %M" -o "$out/time" "$@" 2>"$out/$name.err" || {
		echo "bench: $name failed:" >&2
		tail -n 20 "$out/$name.err" >&2
		exit 1
	}
	read -r secs rss <"$out/time"
	echo "$name $secs $rss $(wc -l <"$file") $(stat -c %s "$file")" >>"$measurements"
	rm -f "$file"
}

for r in $(seq 1 "$ROUNDS"); do
	echo "bench: round $r"
	run pg_dts_ship "$out/ship.jsonl" \
		"$ship" -d "$conninfo" -S "ship_$r" --start -n \
		-E "$endpos" -f "$out/ship.jsonl"
	run wal2json_pipeline "$out/w2j.json" \
		"$bindir/pg_recvlogical" -d "$conninfo" -S "w2j_$r" --start \
		-E "$endpos" -o format-version=2 -f "$out/w2j.json"
done

# median NAME FIELD: the median of field FIELD (2 = seconds, 3 = rss)
median()
{
	awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$measurements" |
		sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
field()
{
	awk -v n="$1" -v f="$2" '$1 == n { print $f; exit }' "$measurements"
}

big_line=""
if [ "$BIG" -gt 0 ]; then
	echo "bench: one transaction of $BIG rows"
	pgc_psql -o /dev/null <<SQL
SELECT 1 FROM pg_create_logical_replication_slot('ship_big', 'pg_dts');
INSERT INTO bench SELECT i, i, md5(i::text), now(), (i % 100000) / 100.0,
       jsonb_build_object('k', i) FROM generate_series($ROWS + 1, $ROWS + $BIG) i;
SET synchronous_commit = on;
CREATE TABLE bench_big_end (x int);
SQL
	bigend=$(pgc_psql -Atc "SELECT pg_current_wal_insert_lsn()")
	run big "$out/big.jsonl" \
		"$ship" -d "$conninfo" -S ship_big --start -n \
		-E "$bigend" -f "$out/big.jsonl"
	big_line="| pg_dts_ship, one transaction of $BIG rows (streamed) | $(field big 2) | $(field big 4) | $(awk -v c="$(field big 4)" -v s="$(field big 2)" 'BEGIN { printf "%.0f", c / s }') | $(( $(field big 3) / 1024 )) |"
fi

ship_s=$(median pg_dts_ship 2)
w2j_s=$(median wal2json_pipeline 2)
ratio=$(awk -v a="$w2j_s" -v b="$ship_s" 'BEGIN { printf "%.2f", a / b }')
rate()
{
	awk -v c="$changes" -v s="$1" 'BEGIN { printf "%.0f", c / s }'
}

{
	echo "# Shipping benchmark results"
	echo
	echo "Produced by \`bench/ship/run.sh\` (\`make bench\`); see bench/README.md."
	echo
	echo "- run: $(date -u '+%Y-%m-%d %H:%M') UTC, pg_dts $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- workload: $ROWS inserts, $UPDATES updates, $DELETES deletes in transactions of $BATCH rows ($changes changes)"
	echo "- median of $ROUNDS interleaved rounds; each run reads its own slot up to the same end LSN into a file"
	echo
	echo "| contender | median s | lines | changes/s | max RSS MB |"
	echo "|---|---:|---:|---:|---:|"
	echo "| pg_dts_ship (JSON lines) | $ship_s | $(field pg_dts_ship 4) | $(rate "$ship_s") | $(( $(median pg_dts_ship 3) / 1024 )) |"
	echo "| pg_recvlogical -P wal2json (format 2) | $w2j_s | $(field wal2json_pipeline 4) | $(rate "$w2j_s") | $(( $(median wal2json_pipeline 3) / 1024 )) |"
	[ -n "$big_line" ] && echo "$big_line"
	echo
	echo "pg_dts_ship / wal2json pipeline, changes per second: **${ratio}×**"
} >"$RESULTS"
cat "$RESULTS"

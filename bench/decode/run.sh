#!/usr/bin/env bash
#
# bench/decode/run.sh
#	  Decoding benchmark: how fast, and how compact, is pg_dts's output
#	  compared with pgoutput (the bar), test_decoding and wal2json, all
#	  decoding the same WAL in the same cluster.
#
# One throw-away cluster (tools/pgcluster.sh).  Every slot is created
# before the workload, so all contenders decode exactly the same changes.
# Then, in BENCH_ROUNDS interleaved rounds (each round runs every
# contender once), each contender's slot is read with
#	SELECT count(*), sum(length(data)) FROM pg_logical_slot_peek_*_changes(...)
# timed inside the server with clock_timestamp().  The median of the rounds
# is reported, with ratios to pgoutput proto 2 binary.  Peeking never
# consumes the slot, so every round decodes the whole workload again.
#
# Output: a table on stdout and bench/decode/results.md.
#
# Environment (defaults are the full benchmark):
#	BENCH_ROWS=1000000		 rows inserted
#	BENCH_UPDATES=ROWS/5	 rows updated (a = a + 1, b = b || 'x')
#	BENCH_DELETES=ROWS/10	 rows deleted
#	BENCH_BATCH=10000		 rows per transaction
#	BENCH_ROUNDS=3			 timed rounds per contender
#	BENCH_CONTENDERS=...	 comma-separated subset of the names below
#	BENCH_SHARED_BUFFERS=1GB
#	BENCH_RESULTS=bench/decode/results.md
#
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

ROWS=${BENCH_ROWS:-1000000}
UPDATES=${BENCH_UPDATES:-$((ROWS / 5))}
DELETES=${BENCH_DELETES:-$((ROWS / 10))}
BATCH=${BENCH_BATCH:-10000}
ROUNDS=${BENCH_ROUNDS:-3}
RESULTS=${BENCH_RESULTS:-$here/results.md}

if [ "$UPDATES" -gt "$ROWS" ] || [ "$DELETES" -gt "$ROWS" ]; then
	echo "bench: BENCH_UPDATES and BENCH_DELETES must not exceed BENCH_ROWS" >&2
	exit 2
fi

# name | slot | plugin | SQL function | options (SQL, after the two NULLs)
# The baseline (ratios) is pgoutput_v2_binary; "floor" decodes everything
# but publishes nothing (an empty publication): the cost of reading and
# decoding the WAL with no output at all.
contenders=(
	"pg_dts_binary|bench_pg_dts_bin|pg_dts|binary|'format', 'binary'"
	"pg_dts_text|bench_pg_dts_txt|pg_dts|binary|'format', 'text'"
	"pgoutput_v1_text|bench_pgoutput_v1|pgoutput|binary|'proto_version', '1', 'publication_names', 'bench_pub'"
	"pgoutput_v2_binary|bench_pgoutput_v2|pgoutput|binary|'proto_version', '2', 'publication_names', 'bench_pub', 'binary', 'true'"
	"test_decoding|bench_test_decoding|test_decoding|text|"
	"wal2json|bench_wal2json|wal2json|text|'format-version', '2'"
	"floor|bench_floor|pgoutput|binary|'proto_version', '1', 'publication_names', 'empty_pub'"
)
baseline=pgoutput_v2_binary

pkglibdir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --pkglibdir)
selected=()
for c in "${contenders[@]}"; do
	IFS='|' read -r name slot plugin func opts <<<"$c"
	if [ -n "${BENCH_CONTENDERS:-}" ] &&
		[[ ",$BENCH_CONTENDERS," != *",$name,"* ]]; then
		continue
	fi
	if [ "$plugin" = wal2json ] && [ ! -f "$pkglibdir/wal2json.so" ]; then
		echo "bench: wal2json not installed (tools/install-deps.sh --bench); skipping it" >&2
		continue
	fi
	selected+=("$c")
done

export PGC_EXTRA_PLUGINS=wal2json
# shellcheck source=tools/pgcluster.sh
. "$root/tools/pgcluster.sh"
# shellcheck source=bench/workload.sh
. "$root/bench/workload.sh"

pgc_setup \
	"shared_buffers = ${BENCH_SHARED_BUFFERS:-1GB}" \
	"max_wal_size = 10GB" \
	"checkpoint_timeout = 1h" \
	"synchronous_commit = off" \
	"logical_decoding_work_mem = 64MB" \
	"autovacuum = off"

echo "bench: schema, publications and ${#selected[@]} slots"
{
	cat <<'SQL'
CREATE EXTENSION pg_dts;
CREATE TABLE bench (
	id	bigint PRIMARY KEY,
	a	int,
	b	text,
	c	timestamptz,
	d	numeric(12,2),
	e	jsonb
);
CREATE PUBLICATION bench_pub FOR TABLE bench;
CREATE PUBLICATION empty_pub;
SQL
	for c in "${selected[@]}"; do
		IFS='|' read -r name slot plugin func opts <<<"$c"
		echo "SELECT 1 FROM pg_create_logical_replication_slot('$slot', '$plugin');"
	done
} | pgc_psql -o /dev/null

echo "bench: workload: $ROWS inserts, $UPDATES updates, $DELETES deletes, $BATCH rows per transaction"
t0=$(date +%s.%N)
{
	bench_workload_sql "$ROWS" "$UPDATES" "$DELETES" "$BATCH"
} | pgc_psql -o /dev/null
t1=$(date +%s.%N)

# With synchronous_commit = off the last commits may not be flushed yet,
# and logical decoding through SQL stops at the flush LSN: wait (polling)
# until everything written is flushed, so every round sees it all.
pgc_psql -o /dev/null <<'SQL'
DO $$
DECLARE
	target pg_lsn := pg_current_wal_insert_lsn();
	deadline timestamptz := clock_timestamp() + interval '60 seconds';
BEGIN
	WHILE pg_current_wal_flush_lsn() < target LOOP
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'WAL not flushed up to % after 60 s', target;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SQL
wal=$(pgc_psql -Atc "SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), min(restart_lsn))) FROM pg_replication_slots")
echo "bench: workload took $(python3 -c "print(round($t1 - $t0, 1))") s; WAL to decode: $wal"

measurements=$(mktemp /tmp/pg_dts_bench.XXXXXX)
trap 'rm -f "$measurements"; pgc_cleanup' EXIT

for ((round = 1; round <= ROUNDS; round++)); do
	for c in "${selected[@]}"; do
		IFS='|' read -r name slot plugin func opts <<<"$c"
		if [ "$func" = binary ]; then
			fn=pg_logical_slot_peek_binary_changes; len=length
		else
			fn=pg_logical_slot_peek_changes; len=octet_length
		fi
		line=$(pgc_psql -At <<SQL
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS n, coalesce(sum($len(data)), 0) AS bytes
  FROM $fn('$slot', NULL, NULL${opts:+, $opts}) \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS secs \gset
\echo :secs :n :bytes
SQL
		)
		read -r secs n bytes <<<"$line"
		printf 'bench: round %d %-20s %8.3f s %10d messages %14d bytes\n' \
			"$round" "$name" "$secs" "$n" "$bytes"
		printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$secs" "$n" "$bytes" \
			>>"$measurements"
	done
done

pgversion=$(pgc_psql -Atc 'SHOW server_version')
cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' || true), $(nproc) CPUs"
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain -- plugin common include 2>/dev/null)" ]; then
	rev="$rev + uncommitted changes"
fi
when=$(date -u '+%Y-%m-%d %H:%M UTC')

python3 - "$measurements" "$RESULTS" "$baseline" <<PY
import statistics, sys
path, out, baseline = sys.argv[1:4]
rows = {}
order = []
for line in open(path):
    name, rnd, secs, n, nbytes = line.rstrip("\n").split("\t")
    if name not in rows:
        rows[name] = []
        order.append(name)
    rows[name].append((float(secs), int(n), int(nbytes)))

summary = {}
notes = []
for name in order:
    runs = rows[name]
    med = statistics.median(r[0] for r in runs)
    sizes = {(r[1], r[2]) for r in runs}
    if len(sizes) != 1:
        notes.append(f"{name}: output differs between rounds: {sorted(sizes)}")
    summary[name] = (med, runs[0][1], runs[0][2])

base = summary.get(baseline)
header = ["contender", "median s", "messages", "output bytes", "time / pgoutput v2", "bytes / pgoutput v2"]
table = []
for name in order:
    med, n, nbytes = summary[name]
    tr = f"{med / base[0]:.2f}" if base and base[0] > 0 else "-"
    br = f"{nbytes / base[2]:.2f}" if base and base[2] > 0 else "-"
    table.append([name, f"{med:.3f}", str(n), str(nbytes), tr, br])

widths = [max(len(r[i]) for r in [header] + table) for i in range(len(header))]
def fmt(r):
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
print()
print(fmt(header))
print("  ".join("-" * w for w in widths))
for r in table:
    print(fmt(r))
for n in notes:
    print("WARNING:", n)

with open(out, "w") as f:
    f.write("# Decoding benchmark results\n\n")
    f.write("Produced by \`bench/decode/run.sh\` (\`make bench\`); see bench/README.md.\n\n")
    f.write("- run: $when, pg_dts $rev\n")
    f.write("- PostgreSQL: $pgversion\n")
    f.write("- CPU: $cpu\n")
    f.write("- workload: $ROWS inserts, $UPDATES updates, $DELETES deletes, "
            "$BATCH rows per transaction; WAL decoded: $wal\n")
    f.write(f"- median of $ROUNDS interleaved rounds; ratios are to {baseline}\n\n")
    f.write("| " + " | ".join(header) + " |\n")
    f.write("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|\n")
    for r in table:
        f.write("| " + " | ".join(r) + " |\n")
    for n in notes:
        f.write(f"\n**Warning:** {n}\n")
print()
print(f"bench: results written to {out}")
PY

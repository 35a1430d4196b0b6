# bench/fullsync/setup.sh
#	  The setup shared by bench/fullsync/run.sh (the benchmark) and
#	  bench/fullsync/profile.sh (where its time goes): a source and a
#	  destination cluster with the same settings, four tables big1..big4 of
#	  about GB gigabytes in all on the source with their primary keys and a
#	  publication, and the destination databases d_dts, d_dump, d_native
#	  and d_floor; dst_new replaces the destination with a fresh one.
#
# Sourced, not run.  The caller sets root, bindir and GB; optionally
# setup_label (the prefix of its messages), setup_dst_conf (extra
# destination settings, one per line) and setup_keep (non-empty: leave the
# clusters and $out behind).  BENCH_FULL_DST=bulkload (from the
# environment) sets the destination up for a bulk load, as PostgreSQL's
# manual ("Populating a Database") advises: wal_level = minimal and
# max_wal_senders = 0 are added to setup_dst_conf, and dump_psql_opts (the
# pg_dump contender's psql options) gets --single-transaction, so that its
# COPY, like pg_dts_ship's TRUNCATE + COPY FREEZE, goes into a table created
# in the same transaction and writes no WAL; dst_label says which
# configuration the destination has.  Sets src_dir, dst_dir and dst_host
# (dst_new changes both), out, src_conn, bytes (heap bytes of the four tables), size
# (their total size with indexes, pretty), the functions S (psql on the
# source), D DB (psql on a destination database) and dst_new, and an EXIT
# trap that stops and removes both clusters; the floor's steps
# (floor_write_files, floor_pre_data, floor_load, floor_remove_files); and
# cache_settle (the same page cache before each contender).

# shellcheck source=tools/pgcluster.sh
. "$root/tools/pgcluster.sh"

setup_label=${setup_label:-bench}
case ${BENCH_FULL_DST:-} in
	"")
		dump_psql_opts=()
		dst_label="the test harness's (\`wal_level = logical\`, as for a destination that is also a source)"
		;;
	bulkload)
		setup_dst_conf="${setup_dst_conf:+$setup_dst_conf$'\n'}"$'wal_level = minimal\nmax_wal_senders = 0'
		dump_psql_opts=(--single-transaction)
		dst_label="set up for a bulk load (\`wal_level = minimal\`, \`max_wal_senders = 0\`; PostgreSQL's \"Populating a Database\"), psql with \`--single-transaction\`"
		;;
	*)
		echo "$setup_label: BENCH_FULL_DST must be empty or \"bulkload\", not \"$BENCH_FULL_DST\"" >&2
		exit 2
		;;
esac
conf=("shared_buffers = 1GB" "max_wal_size = 50GB" "checkpoint_timeout = 1h"
	"autovacuum = off" "max_logical_replication_workers = 8"
	"max_sync_workers_per_subscription = 4" "max_worker_processes = 16")
pgc_init "${conf[@]}" "synchronous_commit = off"
pgc_start
src_dir=$PGC_DIR src_sock=$PGC_SOCK src_port=$PGC_PORT
PGC_DIR= PGC_SOCK= PGC_PORT=
dst_dir=
out=$(mktemp -d "/tmp/pg_dts_${setup_label}_full.XXXXXX")
cleanup()
{
	for d in "$src_dir" "$dst_dir"; do
		[ -n "$d" ] || continue
		pgc_as_server "$bindir/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true
		[ -n "${setup_keep:-}" ] || rm -rf "$d"
	done
	[ -n "${setup_keep:-}" ] || rm -rf "$out"
}
trap cleanup EXIT

src_conn="host=$src_sock port=$src_port dbname=postgres user=postgres"
S() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$src_conn" "$@"; }
D() { local db=$1; shift; "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dst_host dbname=$db" "$@"; }

# dst_new: a new destination cluster (initdb, the same settings, the
# databases d_dts, d_dump, d_native and d_floor) in place of the current
# one, which is stopped and removed.  Each contender gets one: a cluster that has
# already taken a contender's load keeps its WAL segments for reuse (a
# checkpoint recycles them), while a fresh one must create and zero-fill
# every 16 MB segment it writes, under WALWriteLock; the first contender
# would pay that alone.  The old server log is kept in $out/dst_server.log.
dst_new()
{
	if [ -n "$dst_dir" ]; then
		cat "$dst_dir/server.log" >>"$out/dst_server.log" 2>/dev/null || true
		pgc_as_server "$bindir/pg_ctl" -D "$dst_dir/data" -m immediate stop >/dev/null 2>&1 || true
		[ -n "${setup_keep:-}" ] || rm -rf "$dst_dir"
	fi
	PGC_DIR= PGC_SOCK= PGC_PORT=
	PGC_EXTRA_CONF=${setup_dst_conf:-} pgc_init "${conf[@]}"
	pgc_start
	dst_dir=$PGC_DIR dst_sock=$PGC_SOCK dst_port=$PGC_PORT
	dst_host="host=$dst_sock port=$dst_port user=postgres"
	D postgres -c "CREATE DATABASE d_dts" -c "CREATE DATABASE d_dump" -c "CREATE DATABASE d_native" \
		-c "CREATE DATABASE d_floor"
}

# about 250 bytes a row on disk: rows per table for GB gigabytes in four
rows=$(awk -v gb="$GB" 'BEGIN { printf "%d", gb * 1024 * 1024 * 1024 / 250 / 4 }')
echo "$setup_label: loading 4 tables of $rows rows (~${GB} GB)"
S -c "CREATE EXTENSION pg_dts" -c "CREATE EXTENSION pg_prewarm"
for t in 1 2 3 4; do
	S <<SQL &
CREATE TABLE big$t (id bigint, a int, b text, c timestamptz, d numeric(12,2), e text, f bytea);
INSERT INTO big$t SELECT i, i % 1000, md5(i::text) || md5((i + 1)::text),
       '2024-01-01'::timestamptz + i * interval '1 second', (i % 100000) / 100.0,
       repeat(chr(65 + (i % 26)), 60), decode(md5(i::text), 'hex')
  FROM generate_series(1, $rows) i;
ALTER TABLE big$t ADD PRIMARY KEY (id);
SQL
done
wait
S -c "CHECKPOINT" -c "CREATE PUBLICATION full_pub FOR TABLE big1, big2, big3, big4"
size=$(S -Atc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c WHERE relname LIKE 'big_'")
bytes=$(S -Atc "SELECT sum(pg_relation_size(c.oid)) FROM pg_class c WHERE relname LIKE 'big_' AND relkind = 'r'")
dst_new

# The destination's floor (run.sh; profile.sh's floor): the destination
# alone loading what the source wrote to server-side binary files.  The
# files live in the source's directory, which the server's OS user owns.
floor_dir="$src_dir/floor"
floor_write_files()
{
	local -a jobs=()
	pgc_as_server mkdir -p "$floor_dir"
	for t in 1 2 3 4; do
		S -c "COPY big$t TO '$floor_dir/big$t.bin' (FORMAT binary)" &
		jobs+=($!)
	done
	wait "${jobs[@]}"
}
# the tables without their keys in d_floor of the current destination
floor_pre_data()
{
	"$bindir/pg_dump" -d "$src_conn" -t 'public.big*' --schema-only --section=pre-data |
		"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$dst_host dbname=d_floor" >/dev/null
}
# the timed part: four COPY FREEZE at once, then the four primary keys at
# once (waits for its own jobs only: a caller may run a sampler beside it)
floor_load()
{
	local -a jobs=()
	for t in 1 2 3 4; do
		D d_floor -c "SET synchronous_commit = off" -c "BEGIN" -c "TRUNCATE ONLY big$t" \
			-c "COPY big$t FROM '$floor_dir/big$t.bin' (FORMAT binary, FREEZE)" -c "COMMIT" &
		jobs+=($!)
	done
	wait "${jobs[@]}"
	jobs=()
	for t in 1 2 3 4; do
		D d_floor -c "SET maintenance_work_mem = '1GB'" -c "ALTER TABLE big$t ADD PRIMARY KEY (id)" &
		jobs+=($!)
	done
	wait "${jobs[@]}"
}
floor_remove_files()
{
	rm -rf "$floor_dir"
}

# cache_settle: the same memory for every contender.  After the load the
# page cache holds the source's WAL, heap and indexes and little memory is
# free, so the first contender's destination took its ~13 GB of new pages
# by reclaiming cached ones, in its own backends (as CPU: 78-94 CPU-s of
# destination against 64-81 for the same runs later, bench/README.md),
# while every later one found the memory the previous destination had
# freed.  So before each contender: write out and drop the clean page
# cache (as root; else say so, once), then read back what the contender
# reads: the source's tables and keys (pg_prewarm's 'read' mode, into the
# OS cache) and the floor's files when they exist.
cache_settle()
{
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then
		echo 1 >/proc/sys/vm/drop_caches
	elif [ -z "${cache_settle_warned:-}" ]; then
		echo "$setup_label: not root: the page cache is not dropped between contenders (the first one may pay for reclaiming it)" >&2
		cache_settle_warned=1
	fi
	S -Atc "SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c WHERE c.relname LIKE 'big_' OR c.relname LIKE 'big__pkey'" >/dev/null
	if [ -d "$floor_dir" ]; then
		pgc_as_server cat "$floor_dir"/big?.bin >/dev/null
	fi
}

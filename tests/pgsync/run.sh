#!/usr/bin/env bash
#
# tests/pgsync/run.sh
#	  Tests of the schema sync (shipper/schema_sync.c) and the full sync
#	  (shipper/full_sync.c) of PostgreSQL-to-PostgreSQL tasks, through a
#	  small driver (pgsync_driver.c) on two throw-away clusters.
#
# 1. A task over schemas with every kind of object (enum, composite, range
#    and domain types, sequences, functions, a procedure, a trigger,
#    views, defaults, identity and generated columns, CHECK, UNIQUE,
#    primary and foreign keys, plain, expression and partial indexes, an
#    extension's type, odd identifiers), a mapped table (renamed, a
#    column renamed, one left out, a row filter) and a mapped schema, is
#    synced as main does it: slot with exported snapshot, pre-data in
#    that snapshot, full sync (1M-row table in key ranges, a keyless one
#    in block ranges) while pgbench writes, post-data.  Every table must
#    equal the source AS OF THE SNAPSHOT (count + md5 of the rows, read
#    on the source in a transaction that imported it).
# 2. A destination table that exists: an error naming it, nothing
#    created; with "conflicting_tables": "ignore" it is kept and filled,
#    its own rows kept.
# 3. A whole-database task: every user schema, not the extension's
#    tables, not the dts schema.
# 4. Resume: the driver is killed (-9) in the middle of a throttled full
#    sync and run again: the ranges done before are not copied again and
#    the result is complete; a resume whose slot is newer than the copied
#    ranges is refused.
#
# Environment:
#	PG_CONFIG	 pg_config of the server to use (default PostgreSQL 15's)
#	COUNTS_FILE	 if set, receives one line "passed failed"
#	PGC_KEEP=1	 keep the clusters' directories for a post-mortem
#	PGSYNC_BENCH=1 also time pg_dump | psql of the big table, for comparison
#
# Ends with one line "N passed, N failed"; exit 0 only if nothing failed.
#
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

work=$(mktemp -d /tmp/pg_dts_pgsync.XXXXXX)
chmod 755 "$work"
writer_pid=

# shellcheck source=../lib/e2e.sh
. "$repo/tests/lib/e2e.sh"

e2e_cleanup_extra()
{
	[ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
	return 0
}

# same A B: two strings are equal (shown when not)
same()
{
	[ "$1" = "$2" ] && return 0
	echo "# got:      $1" >&2
	echo "# expected: $2" >&2
	return 1
}

e2e_two_clusters
dst_db() { echo "host=$DST_SOCK port=$DST_PORT user=postgres dbname=$1"; }
dstq() { "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$(dst_db "$1")" -c "$2"; }

for db in dst_conf dst_whole dst_res; do
	dst_psql -c "CREATE DATABASE $db" || exit 1
done

# ---------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------
driver=$work/pgsync_driver
if ! gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare -DFRONTEND \
	-I"$repo/include" -I"$repo/shipper" -I"$("$PG_CONFIG" --includedir)" \
	-o "$driver" "$here/pgsync_driver.c" "$repo/shipper/schema_sync.c" \
	"$repo/shipper/full_sync.c" "$repo/shipper/copy_relay.c" \
	"$repo/shipper/sync_tables.c" \
	"$repo/shipper/verify.c" "$repo/shipper/task.c" "$repo/shipper/log.c" \
	-L"$("$PG_CONFIG" --libdir)" -lpq -ljansson -lpthread; then
	not_ok "build pgsync_driver"
	echo "$passed passed, $failed failed"
	exit 1
fi
ok "build pgsync_driver"

# task NAME OBJECTS [SINK-EXTRA] [TOP-EXTRA]: writes $work/NAME.json
task()
{
	cat >"$work/$1.json" <<EOF
{"name": "$1", "source": {"conninfo": "$SRC"},
 "sink": {"type": "pg"${3:+, $3}},
 "objects": $2${4:+, $4},
 "sync": ["schema", "full", "incremental"]}
EOF
}

# ---------------------------------------------------------------------
# Source objects and data
# ---------------------------------------------------------------------
src_psql >/dev/null <<'SQL' || { echo "loading the source failed"; exit 1; }
CREATE EXTENSION citext;
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE app.pair AS (l int, r text);
CREATE TYPE app.floatrange AS RANGE (subtype = float8);
CREATE DOMAIN app.posint AS int CHECK (VALUE > 0);
CREATE SEQUENCE app.ticket_seq START 100;
CREATE FUNCTION app.add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE
	AS 'SELECT a + b';
CREATE PROCEDURE app.bump(n int) LANGUAGE plpgsql AS $$BEGIN PERFORM n; END$$;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql
	AS $$BEGIN NEW.updated := now(); RETURN NEW; END$$;

CREATE TABLE app.customers (
	id int PRIMARY KEY,
	email citext UNIQUE NOT NULL,
	name text NOT NULL DEFAULT 'anon',
	mood app.mood,
	CHECK (length(name) > 0));
INSERT INTO app.customers
SELECT i, 'user' || i || '@example.com', 'name ' || i,
	(ARRAY['sad', 'ok', 'happy'])[i % 3 + 1]::app.mood
FROM generate_series(1, 1000) i;

CREATE TABLE app.big (
	id bigint PRIMARY KEY,
	customer_id int REFERENCES app.customers (id),
	qty app.posint,
	price numeric(12, 2),
	note text,
	created timestamptz DEFAULT now(),
	updated timestamptz,
	ticket int DEFAULT nextval('app.ticket_seq'),
	total numeric GENERATED ALWAYS AS (qty * price) STORED);
INSERT INTO app.big (id, customer_id, qty, price, note, created)
SELECT i, i % 1000 + 1, i % 7 + 1, (i % 1000) / 7.0, 'note ' || md5(i::text),
	'2024-01-01'::timestamptz + i * interval '1 second'
FROM generate_series(1, 1000000) i;
CREATE INDEX big_customer ON app.big (customer_id);
CREATE INDEX big_note_lower ON app.big (lower(note)) WHERE note IS NOT NULL;
CREATE TRIGGER big_touch BEFORE UPDATE ON app.big
	FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE VIEW app.big_view AS SELECT id, app.add(qty, 1) AS q FROM app.big;

-- no key: block ranges; composite and enum-array columns: text COPY
CREATE TABLE app.nokey (x int, y text, z app.pair, moods app.mood[],
	r app.floatrange);
INSERT INTO app.nokey
SELECT i, repeat('y', i % 50), ROW(i, 'r' || i)::app.pair,
	ARRAY['ok', 'sad']::app.mood[], app.floatrange(i, i + 0.5)
FROM generate_series(1, 60000) i;

CREATE TABLE app.ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	v text);
INSERT INTO app.ident (v) SELECT 'v' || i FROM generate_series(1, 100) i;

-- mapped: renamed dst_map, x renamed x2, secret left out, even ids only
CREATE TABLE app.src_map (id int PRIMARY KEY, x text, y int, secret text,
	CHECK (y >= 0));
CREATE INDEX src_map_x ON app.src_map (x);
CREATE INDEX src_map_secret ON app.src_map (secret);
INSERT INTO app.src_map SELECT i, 'x' || i, i, 's' || i
FROM generate_series(1, 1000) i;
CREATE TABLE app.child (id int PRIMARY KEY,
	map_id int REFERENCES app.src_map (id));
INSERT INTO app.child SELECT i, i * 2 FROM generate_series(1, 100) i;

CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Weird ""Tab"" é" (
	"Key Col" int, "ÜberName" text, "select" int,
	PRIMARY KEY ("Key Col", "ÜberName"));
INSERT INTO "Odd Schema"."Weird ""Tab"" é"
SELECT i % 100, 'name ' || i, i FROM generate_series(1, 3000) i;

-- a schema mapped to another name, with a type, a view and a function
CREATE SCHEMA src2;
CREATE TYPE src2.color AS ENUM ('red', 'green');
CREATE TABLE src2.items (id int PRIMARY KEY, c src2.color,
	big_id bigint REFERENCES app.big (id));
INSERT INTO src2.items SELECT i, 'red', i FROM generate_series(1, 100) i;
CREATE VIEW src2.items_v AS SELECT id, c FROM src2.items;
CREATE FUNCTION src2.f() RETURNS int LANGUAGE sql AS 'SELECT 1';

-- what the pg_dts extension would own: never copied
CREATE TABLE public.dts_postgres_heartbeat (slot_name text PRIMARY KEY);
CREATE TABLE public.dts_ddl_command (id int PRIMARY KEY);
CREATE TABLE public.plain (id int PRIMARY KEY);
ANALYZE;
SQL
ok "source loaded"

task main '{"app": {"all": true, "tables": {"src_map": {"name": "dst_map",
	"columns": {"id": {}, "x": {"name": "x2"}, "y": {}},
	"filter": "id % 2 = 0"}}},
	"Odd Schema": {"all": true}, "src2": {"name": "dst2"}}'

# the comparisons: "source query|destination query", each one row
digest() # COLUMNS TABLE ORDER [WHERE]
{
	echo "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY $3)) FROM (SELECT $1 FROM $2 ${4:+WHERE $4}) t"
}
CHECKS=(
	"$(digest '*' app.big 'id')|$(digest '*' app.big 'id')"
	"$(digest '*' app.nokey 't::text')|$(digest '*' app.nokey 't::text')"
	"$(digest '*' app.customers 'id')|$(digest '*' app.customers 'id')"
	"$(digest 'id, x, y' app.src_map 'id' 'id % 2 = 0')|$(digest 'id, x2, y' app.dst_map 'id')"
	"$(digest '*' '"Odd Schema"."Weird ""Tab"" é"' 't::text')|$(digest '*' '"Odd Schema"."Weird ""Tab"" é"' 't::text')"
	"$(digest '*' src2.items 'id')|$(digest '*' dst2.items 'id')"
	"$(digest '*' app.ident 'id')|$(digest '*' app.ident 'id')"
	"$(digest '*' app.child 'id')|$(digest '*' app.child 'id')"
)

# ---------------------------------------------------------------------
# 1. The whole sync while pgbench writes
# ---------------------------------------------------------------------
cat >"$work/writer.sql" <<'EOF'
\set id random(1001, 1000000)
\set n random(1, 60000)
UPDATE app.big SET note = 'changed', qty = qty + 1 WHERE id = :id;
INSERT INTO app.big (id, customer_id, qty, price) VALUES (2000000 + :id, 1, 1, 1) ON CONFLICT DO NOTHING;
DELETE FROM app.big WHERE id = :id + 1;
UPDATE app.nokey SET y = y || 'w' WHERE x = :n;
UPDATE app.customers SET name = 'w' || :n WHERE id = :n % 1000 + 1;
EOF
"$BINDIR/pgbench" -n -c 2 -T 60 -f "$work/writer.sql" "$SRC" \
	>"$work/writer.log" 2>&1 &
writer_pid=$!
for _ in $(seq 1 100); do
	[ "$(src_psql -Atc "SELECT count(*) > 0 FROM app.big WHERE id > 2000000")" = t ] && break
	sleep 0.1
done

t0=$(date +%s.%N)
"$driver" pre,full,post "$SRC" "$DST" "$work/main.json" -s -w 4 \
	-r 8000000 -P 1000 "${CHECKS[@]}" >"$work/main.out" 2>"$work/main.err"
echo $? >"$work/main.rc"
t1=$(date +%s.%N)
kill "$writer_pid" 2>/dev/null
wait "$writer_pid" 2>/dev/null
writer_pid=
sed 's/^/# /' "$work/main.err" | grep -v '^# NOTICE' | tail -n 20
sed 's/^/# /' "$work/main.out"
echo "# whole sync took $(echo "$t1 - $t0" | bc) s"

check "sync: driver exits 0" same "$(cat "$work/main.rc")" 0
check "sync: the writer was writing meanwhile" \
	test "$(src_psql -Atc "SELECT count(*) FROM app.big WHERE id > 2000000")" -gt 0
check "sync: progress lines on stderr" \
	has "$work/main.err" "full sync: tables "
check "sync: final progress line" has "$work/main.err" ", done in "
for i in $(seq 1 ${#CHECKS[@]}); do
	line=$(grep "^check $i: " "$work/main.out")
	a=${line#check $i: }
	check "snapshot equality: ${CHECKS[$((i - 1))]%%|*}" \
		same "${a%% | *}" "${a#* | }"
done
check "full sync: the 1M-row table was split in key ranges" \
	test "$(dstq postgres "SELECT count(*) FROM dts.full_sync_progress WHERE \"table\" = 'big' AND range_kind = 'key'")" -gt 5
check "full sync: the keyless table was split in block ranges" \
	test "$(dstq postgres "SELECT count(*) FROM dts.full_sync_progress WHERE \"table\" = 'nokey' AND range_kind = 'ctid'")" -gt 1
check "full sync: every range done, with its snapshot LSN" \
	same "$(dstq postgres "SELECT count(*) FILTER (WHERE NOT done OR snapshot_lsn IS NULL) FROM dts.full_sync_progress")" 0
mbs=$(sed -n 's/.* \([0-9.]*\) MB\/s, snapshot LSN.*/\1/p' "$work/main.out")
echo "# full sync rate: $mbs MB/s"

# what the schema sync created
obj()
{
	dstq postgres "$1"
}
check "schema: enum, composite, range and domain types" \
	same "$(obj "SELECT string_agg(typname || ':' || typtype::text, ',' ORDER BY typname) FROM pg_type WHERE typnamespace = 'app'::regnamespace AND typname IN ('mood', 'pair', 'floatrange', 'posint')")" \
	"floatrange:r,mood:e,pair:c,posint:d"
check "schema: enum labels in order" \
	same "$(obj "SELECT enum_range(NULL::app.mood)")" "{sad,ok,happy}"
check "schema: sequence, function, procedure" \
	same "$(obj "SELECT to_regclass('app.ticket_seq') IS NOT NULL, app.add(1, 2), (SELECT prokind FROM pg_proc WHERE proname = 'bump')")" "t|3|p"
check "schema: view" same "$(obj "SELECT count(*) > 0 FROM app.big_view")" "t"
check "schema: trigger" \
	same "$(obj "SELECT tgname FROM pg_trigger WHERE tgrelid = 'app.big'::regclass AND NOT tgisinternal")" "big_touch"
check "schema: plain, expression and partial indexes" \
	same "$(obj "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'app' AND tablename = 'big'")" \
	"big_customer,big_note_lower,big_pkey"
check "schema: partial index keeps its predicate" \
	has <(obj "SELECT indexdef FROM pg_indexes WHERE indexname = 'big_note_lower'") "WHERE (note IS NOT NULL)"
check "schema: defaults, identity, generated column, NOT NULL" \
	same "$(obj "SELECT string_agg(attname || ':' || attnotnull || ':' || attidentity::text || attgenerated::text, ',' ORDER BY attname) FROM pg_attribute WHERE attrelid IN ('app.big'::regclass, 'app.ident'::regclass) AND attname IN ('id', 'total') ")" \
	"id:true:,id:true:a,total:false:s"
check "schema: column default" \
	same "$(obj "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'app.big'::regclass AND adnum = 8")" \
	"nextval('app.ticket_seq'::regclass)"
check "schema: check, unique and foreign keys" \
	same "$(obj "SELECT string_agg(contype::text, '' ORDER BY contype) FROM pg_constraint WHERE conrelid = 'app.customers'::regclass")" "cpu"
check "schema: foreign key big -> customers" \
	has <(obj "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'app.big'::regclass AND contype = 'f'") \
	"FOREIGN KEY (customer_id) REFERENCES app.customers(id)"
check "schema: the extension the table needs (citext)" \
	same "$(obj "SELECT extname FROM pg_extension WHERE extname = 'citext'")" "citext"
check "schema: odd identifiers, composite primary key" \
	same "$(obj "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = '\"Odd Schema\".\"Weird \"\"Tab\"\" é\"'::regclass")" \
	'PRIMARY KEY ("Key Col", "ÜberName")'
check "mapping: table renamed, column renamed, column left out" \
	same "$(obj "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'app.dst_map'::regclass AND attnum > 0 AND NOT attisdropped")" "id,x2,y"
check "mapping: the source name is not left behind" \
	same "$(obj "SELECT to_regclass('app.src_map') IS NULL")" "t"
check "mapping: index on the renamed column, none on the left-out one" \
	same "$(obj "SELECT string_agg(indexdef, ';' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'dst_map'")" \
	"CREATE UNIQUE INDEX src_map_pkey ON app.dst_map USING btree (id);CREATE INDEX src_map_x ON app.dst_map USING btree (x2)"
check "mapping: left-out index reported" \
	has "$work/main.err" 'index "src_map_secret" of app.src_map not created'
check "mapping: check constraint kept" \
	same "$(obj "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'app.dst_map'::regclass AND contype = 'c'")" "CHECK ((y >= 0))"
check "mapping: foreign key to the mapped table" \
	has <(obj "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'app.child'::regclass AND contype = 'f'") \
	"FOREIGN KEY (map_id) REFERENCES app.dst_map(id)"
check "mapping: schema src2 -> dst2 with its type, view and function" \
	same "$(obj "SELECT to_regclass('dst2.items') IS NOT NULL, to_regtype('dst2.color') IS NOT NULL, to_regclass('dst2.items_v') IS NOT NULL, to_regprocedure('dst2.f()') IS NOT NULL, to_regnamespace('src2') IS NULL")" "t|t|t|t|t"
check "mapping: the mapped schema's column type moved along" \
	same "$(obj "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'dst2.items'::regclass AND attname = 'c'")" "dst2.color"
check "mapping: foreign key from the mapped schema" \
	has <(obj "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'dst2.items'::regclass AND contype = 'f'") \
	"REFERENCES app.big(id)"
check "schema: state recorded" \
	same "$(obj "SELECT string_agg(section, ',' ORDER BY section) FROM dts.schema_sync_state WHERE task = 'main'")" "post-data,pre-data"
check "schema: not selected, not copied" \
	same "$(obj "SELECT to_regclass('public.plain') IS NULL, to_regclass('public.dts_postgres_heartbeat') IS NULL")" "t|t"

"$driver" pre "$SRC" "$DST" "$work/main.json" >"$work/again.out" 2>&1
check "schema: a second pre-data run is a no-op" \
	has "$work/again.out" "pre-data done before"

# ---------------------------------------------------------------------
# 2. Existing destination tables
# ---------------------------------------------------------------------
dstq dst_conf "CREATE SCHEMA app; CREATE TABLE app.customers (id int PRIMARY KEY, email text, name text, mood text); INSERT INTO app.customers SELECT i, 'kept', 'dest ' || i, NULL FROM generate_series(1, 10) i" >/dev/null
OBJ='{"app": {"all": false, "tables": ["customers", "ident"]}}'
task conf "$OBJ"
"$driver" pre "$SRC" "$(dst_db dst_conf)" "$work/conf.json" >"$work/conf.out" 2>&1
check "conflict: error" same "$?" 1
check "conflict: the table is named, with what to do" \
	has "$work/conf.out" 'destination table app.customers already exists'
check "conflict: the hint" has "$work/conf.out" '"conflicting_tables": "ignore"'
check "conflict: nothing was created" \
	same "$(dstq dst_conf "SELECT to_regclass('app.ident') IS NULL")" "t"

task confi "$OBJ" '"conflicting_tables": "ignore"'
"$driver" pre,full,post "$SRC" "$(dst_db dst_conf)" "$work/confi.json" \
	>"$work/confi.out" 2>&1
check "ignore: driver exits 0" same "$?" 0
check "ignore: the other table is created and filled" \
	same "$(dstq dst_conf "SELECT count(*) FROM app.ident")" 100
check "ignore: existing table filled, its own rows kept" \
	same "$(dstq dst_conf "SELECT count(*), count(*) FILTER (WHERE email = 'kept') FROM app.customers")" "1000|10"
check "ignore: existing table left as it was (no new index)" \
	same "$(dstq dst_conf "SELECT count(*) FROM pg_indexes WHERE tablename = 'customers'")" 1
check "ignore: kept table recorded" \
	same "$(dstq dst_conf "SELECT kept_tables FROM dts.schema_sync_state WHERE task = 'confi' AND section = 'pre-data'")" '{app.customers}'

# ---------------------------------------------------------------------
# 3. Whole database (pre-data only)
# ---------------------------------------------------------------------
cat >"$work/whole.json" <<EOF
{"name": "whole", "source": {"conninfo": "$SRC"}, "sink": {"type": "pg"},
 "objects": "*", "sync": ["schema"]}
EOF
"$driver" pre "$SRC" "$(dst_db dst_whole)" "$work/whole.json" \
	>"$work/whole.out" 2>&1
check "whole database: driver exits 0" same "$?" 0
sed 's/^/# /' "$work/whole.out" | grep -v NOTICE | tail -n 5
check "whole database: every user schema" \
	same "$(dstq dst_whole "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('app', 'Odd Schema', 'src2', 'public', 'dts')")" \
	"Odd Schema,app,dts,public,src2"
check "whole database: tables, not the extension's" \
	same "$(dstq dst_whole "SELECT to_regclass('public.plain') IS NOT NULL, to_regclass('public.dts_postgres_heartbeat') IS NULL, to_regclass('public.dts_ddl_command') IS NULL, to_regclass('app.big') IS NOT NULL")" "t|t|t|t"
check "whole database: extensions" \
	same "$(dstq dst_whole "SELECT count(*) FROM pg_extension WHERE extname = 'citext'")" 1

# ---------------------------------------------------------------------
# 4. Resume after kill -9
# ---------------------------------------------------------------------
OBJ='{"app": {"all": false, "tables": ["big"]}}'
# a table rule copies the table only: what it uses must be there
dstq dst_res "CREATE SCHEMA app; CREATE DOMAIN app.posint AS int CHECK (VALUE > 0); CREATE SEQUENCE app.ticket_seq" >/dev/null
task res "$OBJ" "" '"throttle": {"mb_per_second": 12}'
"$driver" pre "$SRC" "$(dst_db dst_res)" "$work/res.json" >"$work/res0.out" 2>&1
check "resume: pre-data" same "$?" 0
sed 's/^/# /' "$work/res0.out" | grep -v '^# driver: ok'

"$driver" full "$SRC" "$(dst_db dst_res)" "$work/res.json" -w 2 \
	-r 4000000 -P 500 >"$work/res1.out" 2>"$work/res1.err" &
drv=$!
for _ in $(seq 1 300); do
	n=$(dstq dst_res "SELECT count(*) FROM dts.full_sync_progress WHERE done" 2>/dev/null)
	[ "${n:-0}" -ge 4 ] && break
	sleep 0.1
done
kill -9 "$drv"
wait "$drv" 2>/dev/null
# its destination sessions end (and roll back) when the server notices
for _ in $(seq 1 100); do
	[ "$(dstq dst_res "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dts_ship full sync'")" = 0 ] && break
	sleep 0.1
done
dstq dst_res "SELECT range_no || ':' || finished_at FROM dts.full_sync_progress WHERE done" | sort >"$work/done_before"
total=$(dstq dst_res "SELECT count(*) FROM dts.full_sync_progress")
ndone=$(wc -l <"$work/done_before")
echo "# killed with $ndone of $total ranges done"
check "resume: killed in the middle" test "$ndone" -gt 0 -a "$ndone" -lt "$total"
check "resume: the slot of the first attempt is there" \
	same "$(src_psql -Atc "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dts_sync_res'")" 1

task res "$OBJ"
"$driver" full "$SRC" "$(dst_db dst_res)" "$work/res.json" -w 2 \
	-r 4000000 "$(digest '*' app.big 'id')|$(digest '*' app.big 'id')" \
	>"$work/res2.out" 2>"$work/res2.err"
check "resume: second run exits 0" same "$?" 0
sed 's/^/# /' "$work/res2.out"
check "resume: done ranges were not copied again" \
	has "$work/res2.out" "$ndone resumed"
dstq dst_res "SELECT range_no || ':' || finished_at FROM dts.full_sync_progress WHERE done" | sort >"$work/done_after"
check "resume: their progress rows are untouched" \
	test -z "$(comm -23 "$work/done_before" "$work/done_after")"
line=$(grep '^check 1: ' "$work/res2.out")
a=${line#check 1: }
check "resume: the table is complete and equal to the source" \
	same "${a%% | *}" "${a#* | }"
check "resume: two snapshots recorded, the newer one is the overwrite bound" \
	same "$(dstq dst_res "SELECT count(DISTINCT snapshot) FROM dts.full_sync_progress")" 2

# a slot made again under the same name has lost the changes in between
dstq dst_res "UPDATE dts.full_sync_progress SET done = false WHERE range_no = 0" >/dev/null
src_psql -c "SELECT pg_drop_replication_slot('dts_sync_res')" >/dev/null
"$driver" full "$SRC" "$(dst_db dst_res)" "$work/res.json" >"$work/res3.out" 2>&1
check "resume: refused when the slot is newer than the copied ranges" \
	has "$work/res3.out" 'replication slot "dts_sync_res" is gone or newer'

# ---------------------------------------------------------------------
# For comparison: pg_dump | psql of the big table (PGSYNC_BENCH=1)
# ---------------------------------------------------------------------
if [ "${PGSYNC_BENCH:-0}" = 1 ]; then
	dst_psql -c "CREATE DATABASE dst_bench" >/dev/null
	dstq dst_bench "CREATE SCHEMA app; CREATE DOMAIN app.posint AS int CHECK (VALUE > 0); CREATE SEQUENCE app.ticket_seq" >/dev/null
	task bench '{"app": {"all": false, "tables": ["big"]}}'
	"$driver" pre "$SRC" "$(dst_db dst_bench)" "$work/bench.json" >/dev/null 2>&1
	sz=$(src_psql -Atc "SELECT pg_relation_size('app.big')")
	for w in 1 4; do
		dstq dst_bench "TRUNCATE app.big; DELETE FROM dts.full_sync_progress" >/dev/null
		src_psql -c "SELECT pg_drop_replication_slot('dts_sync_bench') FROM pg_replication_slots WHERE slot_name = 'dts_sync_bench'" >/dev/null
		b0=$(date +%s.%N)
		"$driver" full "$SRC" "$(dst_db dst_bench)" "$work/bench.json" -w $w \
			-r 16000000 >"$work/bench.out" 2>&1
		b1=$(date +%s.%N)
		echo "# full sync of app.big, $w worker(s): $(echo "$b1 - $b0" | bc) s, $(echo "scale=1; $sz / 1048576 / ($b1 - $b0)" | bc) MB/s of table; $(grep '^full sync' "$work/bench.out")"
	done
	dstq dst_bench "TRUNCATE app.big" >/dev/null
	b0=$(date +%s.%N)
	"$BINDIR/pg_dump" -d "$SRC" -a -t app.big |
		"$BINDIR/psql" -X -q -d "$(dst_db dst_bench)" >/dev/null
	b1=$(date +%s.%N)
	echo "# pg_dump | psql of app.big: $(echo "$b1 - $b0" | bc) s, $(echo "scale=1; $sz / 1048576 / ($b1 - $b0)" | bc) MB/s of table ($(dstq dst_bench "SELECT count(*) FROM app.big") rows)"
fi

e2e_finish

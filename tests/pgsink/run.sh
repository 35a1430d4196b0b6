#!/usr/bin/env bash
#
# tests/pgsink/run.sh
#	  Tests of the pg sink (shipper/sinks/pg.c, shipper/conflict.c) through
#	  pgsink_driver.c on two throw-away clusters: a source with the pg_dts
#	  plugin and a destination.
#
# Covered: every type of tests/regress/sql/plugin_types.sql arriving equal
# (text form per column); inserts, updates (key changes too), deletes,
# truncate; unchanged TOAST preserved; a table without a key under
# REPLICA IDENTITY FULL; odd identifiers; name mapping; a missing
# destination column; each conflict kind under each policy, with the
# rows of dts.conflict_log; exactly-once across crashes (the driver
# killed in the middle of a batch and run again over the same changes);
# a source transaction bigger than sink.batch_memory (temp file, careful
# replay, bounded RSS), and pg_dts_ship killed -9 in the middle of one and
# restarted (applied exactly once); a slow destination, during which
# pg_dts_ship reads the source ahead (order, rows and increments exact);
# and a timing of 200,000 inserts in 20 transactions against the source's
# own insert time and native logical replication.
#
# Environment:
#	PG_CONFIG	 pg_config of the server to use (default PostgreSQL 15's)
#	COUNTS_FILE	 if set, receives one line "passed failed"
#	PGC_KEEP=1	 keep the clusters' directories for a post-mortem
#	PGSINK_CFLAGS extra flags for the driver, e.g. "-g -fsanitize=address"
#	BENCH_ROWS	 rows of the timing (default 200000; 0 skips it)
#
# Ends with one line "N passed, N failed"; exit 0 only if nothing failed.
#
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BENCH_ROWS=${BENCH_ROWS:-200000}

work=$(mktemp -d /tmp/pg_dts_pgsink.XXXXXX)

# shellcheck source=../lib/e2e.sh
. "$repo/tests/lib/e2e.sh"

# is DESCRIPTION GOT EXPECTED
is()
{
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		printf '#   got:      %s\n#   expected: %s\n' "$2" "$3" >&2
	fi
}

e2e_two_clusters "max_logical_replication_workers = 4" "synchronous_commit = on"
export PGOPTIONS="-c timezone=UTC -c extra_float_digits=3"
src_val() { src_psql -Atc "$1"; }
dst_val() { dst_psql -Atc "$1"; }

# ---------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------
driver=$work/pgsink_driver
if ! gcc -std=gnu11 -O2 -Wall -Wextra -Werror ${PGSINK_CFLAGS:-} -DFRONTEND \
	-I"$repo/include" -I"$repo/shipper" -I"$("$PG_CONFIG" --includedir)" \
	-o "$driver" "$here/pgsink_driver.c" "$repo/shipper/sinks/pg.c" \
	"$repo/shipper/conflict.c" "$repo/shipper/log.c" "$repo/shipper/task.c" \
	"$repo"/common/*.c \
	-L"$("$PG_CONFIG" --libdir)" -lpq $(pkg-config --libs jansson 2>/dev/null || echo -ljansson); then
	not_ok "build pgsink_driver"
	e2e_finish
fi
ok "build pgsink_driver"

# task NAME OBJECTS [SINK-EXTRA]: writes $work/NAME.json (slot = NAME)
task()
{
	cat >"$work/$1.json" <<EOF
{"name": "$1", "slot": "$1",
 "source": {"conninfo": "$SRC"},
 "sink": {"type": "pg", "conninfo": "$DST"${3:+, $3}},
 "objects": $2}
EOF
}

# run NAME [env...]: runs the driver on task NAME; output in $work/NAME.out
# and .err, status in $rc
run()
{
	local name=$1
	shift
	env "$@" "$driver" "$work/$name.json" >"$work/$name.out" 2>"$work/$name.err"
	rc=$?
	sed "s/^/# /" "$work/$name.out" >&2
	grep -v '^resuming' "$work/$name.err" | sed "s/^/#   /" >&2
	return 0
}

src_psql -c "CREATE EXTENSION pg_dts" >/dev/null
check "pg_dts extension on the source" test $? -eq 0

# the sink object is checked before anything connects
task badkey '"*"' '"batch_rowz": 5'
run badkey
check "config: unknown key named with its path" has "$work/badkey.err" \
	'sink.batch_rowz: unknown key; expected one of "type", "conninfo", "conflict_policy"'
task badpol '"*"' '"conflict_policy": "Sometimes"'
run badpol
check "config: bad policy" has "$work/badpol.err" \
	'sink.conflict_policy: expected "TaskFailed", "Ignore" or "Overwrite"'
task badnum '"*"' '"batch_transactions": 0'
run badnum
is "config: out-of-range number" "$rc $(cat "$work/badnum.err")" \
	"2 $work/badnum.json: sink.batch_transactions: 0 is out of range; expected an integer from 1 to 1000000"

# ---------------------------------------------------------------------
# 1. Every type of plugin_types.sql arrives equal
# ---------------------------------------------------------------------
TYPES_DDL=$(cat <<'SQL'
CREATE SCHEMA ty;
CREATE TYPE ty.regress_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE ty.regress_pair AS (x int, label text);
CREATE DOMAIN ty.regress_posint AS int CHECK (VALUE > 0);
CREATE TABLE ty.regress_types (
    id int PRIMARY KEY,
    c_int2 int2, c_int4 int4, c_int8 int8, c_oid oid,
    c_numeric numeric, c_num_typmod numeric(12,2),
    c_float4 float4, c_float8 float8, c_money money,
    c_text text, c_varchar varchar(20), c_bpchar char(5), c_name name, c_char "char",
    c_bytea bytea, c_bool bool,
    c_date date, c_time time, c_timetz timetz, c_timestamp timestamp,
    c_timestamptz timestamptz, c_interval interval,
    c_uuid uuid, c_json json, c_jsonb jsonb,
    c_inet inet, c_cidr cidr, c_macaddr macaddr, c_bit bit(4), c_varbit varbit,
    c_point point, c_box box, c_tsvector tsvector, c_xml xml, c_int4range int4range,
    c_int_array int[], c_text_array text[],
    c_enum ty.regress_mood, c_composite ty.regress_pair, c_domain ty.regress_posint,
    c_enum_array ty.regress_mood[]
);
CREATE FUNCTION ty.column_text(row_id int, col name) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT CASE WHEN num_nulls(%1$I) = 1 THEN ''<NULL>'' ELSE format(''%%s'', %1$I) END '
                   'FROM ty.regress_types WHERE id = $1', col)
        INTO result USING row_id;
    RETURN result;
END $$;
SQL
)
src_psql -c "$TYPES_DDL" >/dev/null && dst_psql -c "$TYPES_DDL" >/dev/null &&
	src_psql -c "SELECT pg_create_logical_replication_slot('types', 'pg_dts')" >/dev/null
check "types: schema on both sides, slot" test $? -eq 0

# the values of plugin_types.sql, in three transactions, plus an update
src_psql >/dev/null <<'SQL'
INSERT INTO ty.regress_types VALUES
 (1, 32767, 2147483647, 9223372036854775807, 4294967295,
  123456789012345678901234567890.123456789, 1234567890.12,
  3.25, 2.5e300, 12.34,
  'it''s "quoted" ünïcødé ☃', 'varchar', 'ab', 'a name', 'x',
  '\x00010200ff'::bytea, true,
  '2024-02-29', '23:59:59.999999', '12:00:00+05:30', '2024-01-01 00:00:00.000001',
  '2024-06-30 12:34:56.789+02', '1 year 2 mons 3 days 04:05:06.789',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5, "x"], "b": null}', '{"k": {"n": 1}, "arr": [true, false]}',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', B'101',
  '(1.5,-2)', '((0,0),(1,1))', 'the quick brown fox', '<a>x</a>', '[1,10)',
  '{1,NULL,3}', '{"a b","c\"d",NULL}',
  'happy', ROW(7, 'seven'), 42, '{happy,sad}');
INSERT INTO ty.regress_types VALUES
 (2, -32768, -2147483648, -9223372036854775808, 0,
  'NaN', -0.01,
  'NaN', '-Infinity', -0.5,
  '', '', '', '', E'\\001',
  ''::bytea, false,
  'infinity', '00:00', '00:00-12', '-infinity',
  'infinity', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', '[]', '"str"',
  '::1', '::/0', '00:00:00:00:00:00', B'0000', B'',
  '(0,0)', '((-1,-1),(1,1))', '', '<e/>', 'empty',
  '{}', '{}',
  'sad', ROW(NULL, NULL), 1, '{}');
INSERT INTO ty.regress_types VALUES
 (3, 0, 0, 0, 1,
  'Infinity', 0,
  'Infinity', '-0', 0,
  E'line1\nline2\ttab\\back', 'x', 'abcde', 'Name', ' ',
  '\xdeadbeef'::bytea, NULL,
  '-infinity', '12:00', '24:00:00+00', 'infinity',
  '-infinity', '-1 day -00:00:01',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '{"nested": {"deep": [[]]}}', '{}',
  '2001:db8::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', B'1111', B'1',
  '(-1e10,1e-10)', '((1,2),(3,4))', 'a:1 b:2', NULL, '(,5]',
  '{{1,2},{3,4}}', '{"", "NULL"}',
  'ok', ROW(0, ''), 2147483647, NULL);
INSERT INTO ty.regress_types (id) VALUES (4);
UPDATE ty.regress_types SET c_text = 'updated', c_numeric = 1.5, c_enum = 'ok',
  c_composite = ROW(8, 'eight'), c_enum_array = '{ok}' WHERE id = 4;
-- 120 more in one transaction: a run long enough for COPY (FORMAT binary)
INSERT INTO ty.regress_types
SELECT (jsonb_populate_record(t, jsonb_build_object('id', t.id + 10 * g))).*
FROM ty.regress_types t, generate_series(1, 30) g;
SQL

task types '{"ty": {"all": true}}'
run types
is "types: driver exit status" "$rc" 0

# every (row, column) as text on both sides; NULL as <NULL>
types_text()
{
	"$1" -Atc "SELECT t.id, a.attname, ty.column_text(t.id, a.attname)
		FROM ty.regress_types t, pg_attribute a
		WHERE a.attrelid = 'ty.regress_types'::regclass AND a.attnum > 0
		  AND NOT a.attisdropped ORDER BY 1, 2"
}
types_text src_psql >"$work/types.src"
types_text dst_psql >"$work/types.dst"
is "types: 124 rows x 42 columns compared (COPY and INSERT)" \
	"$(dst_val "SELECT count(*) FROM ty.regress_types t, pg_attribute a
		WHERE a.attrelid = 'ty.regress_types'::regclass AND a.attnum > 0
		  AND NOT a.attisdropped AND ty.column_text(t.id, a.attname) IS NOT NULL")" 5208
if diff "$work/types.src" "$work/types.dst" >"$work/types.diff"; then
	ok "types: every value equal (text form per column)"
else
	not_ok "types: every value equal (text form per column)"
	sed 's/^/#   /' "$work/types.diff" >&2
fi

# ---------------------------------------------------------------------
# 2. DML: inserts, updates, deletes, truncate, TOAST, FULL without key,
#    odd identifiers, name mapping
# ---------------------------------------------------------------------
DML_DDL=$(cat <<'SQL'
CREATE SCHEMA dml;
CREATE TABLE dml.items (id int PRIMARY KEY, name text, qty int, big text);
CREATE TABLE dml.t1 (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE dml.t2 (id int PRIMARY KEY, t1 int REFERENCES dml.t1);
CREATE TABLE dml.nokey (a int, b text, c jsonb, p point);
ALTER TABLE dml.nokey REPLICA IDENTITY FULL;
CREATE TABLE dml.fullpk (id int PRIMARY KEY, v text, big text);
ALTER TABLE dml.fullpk REPLICA IDENTITY FULL;
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Weird ""Table"" é" ("Key Col" int, "ÜberName" text,
	"select" int, "Space Col" text, PRIMARY KEY ("Key Col", "ÜberName"));
SQL
)
src_psql -c "$DML_DDL" >/dev/null &&
	src_psql -c "CREATE SCHEMA srcmap; CREATE TABLE srcmap.mapsrc (id int PRIMARY KEY, total numeric, note text)" >/dev/null &&
	dst_psql -c "$DML_DDL" >/dev/null &&
	dst_psql -c "CREATE SCHEMA dstmap; CREATE TABLE dstmap.mapdst (id int PRIMARY KEY, amount numeric, note text, extra text DEFAULT 'dflt')" >/dev/null &&
	src_psql -c "SELECT pg_create_logical_replication_slot('dml', 'pg_dts')" >/dev/null
check "dml: schema on both sides, slot" test $? -eq 0

src_psql >/dev/null <<'SQL'
-- a big incompressible value, stored out of line
CREATE FUNCTION pg_temp.big(n int) RETURNS text LANGUAGE sql AS
$$ SELECT string_agg(md5(i::text || random()::text), '') FROM generate_series(1, n) i $$;
BEGIN;
INSERT INTO dml.items SELECT i, 'item ' || i, i, NULL FROM generate_series(1, 1000) i;
INSERT INTO dml.items VALUES (5000, 'toasted', 1, pg_temp.big(4000));
COMMIT;
UPDATE dml.items SET qty = qty + 100 WHERE id <= 300;
UPDATE dml.items SET qty = 7 WHERE id = 5000;          -- big unchanged (TOAST)
UPDATE dml.items SET name = NULL WHERE id BETWEEN 301 AND 310;
UPDATE dml.items SET id = id + 10000 WHERE id BETWEEN 311 AND 320;  -- key change
DELETE FROM dml.items WHERE id BETWEEN 900 AND 950;
BEGIN;
INSERT INTO dml.items VALUES (6000, 'in txn', 1, NULL);
UPDATE dml.items SET qty = 2 WHERE id = 6000;
DELETE FROM dml.items WHERE id = 6000;
INSERT INTO dml.items VALUES (6000, 'again', 3, 'small');
COMMIT;
-- truncate of two tables with a foreign key, restart identity, cascade
INSERT INTO dml.t1 (v) SELECT 'v' || i FROM generate_series(1, 20) i;
INSERT INTO dml.t2 SELECT i, i FROM generate_series(1, 20) i;
TRUNCATE dml.t1, dml.t2 RESTART IDENTITY CASCADE;
INSERT INTO dml.t1 (v) VALUES ('after');
-- no key, REPLICA IDENTITY FULL: duplicates, NULLs, types without btree
INSERT INTO dml.nokey VALUES (1, 'x', '{"k": 1}', '(1,1)'), (1, 'x', '{"k": 1}', '(1,1)'),
	(2, NULL, NULL, NULL), (3, '', '[]', '(0,0)'), (4, 'four', '{}', '(4,4)');
UPDATE dml.nokey SET b = 'one' WHERE ctid = (SELECT ctid FROM dml.nokey WHERE a = 1 LIMIT 1);
UPDATE dml.nokey SET b = 'two' WHERE a = 2;
DELETE FROM dml.nokey WHERE a = 3;
UPDATE dml.nokey SET p = '(5,5)' WHERE a = 4;
-- FULL with a key: TOAST unchanged on update
INSERT INTO dml.fullpk VALUES (1, 'a', pg_temp.big(3000)), (2, 'b', NULL);
UPDATE dml.fullpk SET v = 'a2' WHERE id = 1;
DELETE FROM dml.fullpk WHERE id = 2;
-- odd identifiers
INSERT INTO "Odd Schema"."Weird ""Table"" é"
SELECT i % 10, 'näme ' || i, i, 'x y' FROM generate_series(1, 100) i;
UPDATE "Odd Schema"."Weird ""Table"" é" SET "select" = -1 WHERE "Key Col" = 3;
DELETE FROM "Odd Schema"."Weird ""Table"" é" WHERE "Key Col" = 4;
-- mapped: srcmap.mapsrc -> dstmap.mapdst, total -> amount
INSERT INTO srcmap.mapsrc SELECT i, i * 1.25, 'n' || i FROM generate_series(1, 50) i;
UPDATE srcmap.mapsrc SET total = -total WHERE id <= 10;
DELETE FROM srcmap.mapsrc WHERE id > 45;
-- messages are ignored
SELECT pg_logical_emit_message(true, 'test', 'transactional');
SELECT pg_logical_emit_message(false, 'test', 'not transactional');
SQL
check "dml: source changes" test $? -eq 0

task dml '{"dml": {"all": true}, "Odd Schema": {"all": true},
  "srcmap": {"name": "dstmap", "tables": {"mapsrc": {"name": "mapdst",
    "columns": {"id": {}, "total": {"name": "amount"}, "note": {}}}}}}' \
	'"batch_transactions": 3, "conflict_policy": "TaskFailed"'
run dml
is "dml: driver exit status" "$rc" 0

# same_table SQL-ON-SRC SQL-ON-DST DESCRIPTION
same_rows()
{
	local a b
	a=$(src_psql -Atc "$1" | md5sum)
	b=$(dst_psql -Atc "$2" | md5sum)
	if [ "$a" = "$b" ] && [ -n "$(src_psql -Atc "$1")" ]; then
		ok "$3"
	else
		not_ok "$3"
		diff <(src_psql -Atc "$1") <(dst_psql -Atc "$2") | head -20 | sed 's/^/#   /' >&2
	fi
}
Q_ITEMS="SELECT id, name, qty, md5(big) FROM dml.items ORDER BY id"
same_rows "$Q_ITEMS" "$Q_ITEMS" "dml: items equal (inserts, updates, key changes, deletes)"
is "dml: TOASTed value kept when unchanged by an update" \
	"$(dst_val "SELECT qty, length(big), md5(big) FROM dml.items WHERE id = 5000")" \
	"$(src_val "SELECT qty, length(big), md5(big) FROM dml.items WHERE id = 5000")"
is "dml: transaction with insert, update, delete, insert of one key" \
	"$(dst_val "SELECT name, qty, big FROM dml.items WHERE id = 6000")" "again|3|small"
is "dml: truncate with cascade, then insert" \
	"$(dst_val "SELECT string_agg(id || ':' || v, ',') FROM dml.t1") / $(dst_val "SELECT count(*) FROM dml.t2")" \
	"$(src_val "SELECT string_agg(id || ':' || v, ',') FROM dml.t1") / 0"
Q_NOKEY="SELECT a, b, c::text, p::text FROM dml.nokey ORDER BY a, b NULLS FIRST"
same_rows "$Q_NOKEY" "$Q_NOKEY" "dml: table without key under REPLICA IDENTITY FULL equal"
Q_FULLPK="SELECT id, v, md5(big) FROM dml.fullpk ORDER BY id"
same_rows "$Q_FULLPK" "$Q_FULLPK" "dml: FULL with a key, TOAST unchanged, equal"
Q_ODD='SELECT "Key Col", "ÜberName", "select", "Space Col" FROM "Odd Schema"."Weird ""Table"" é" ORDER BY 1, 2'
same_rows "$Q_ODD" "$Q_ODD" "dml: odd identifiers equal"
same_rows "SELECT id, total, note, 'dflt' FROM srcmap.mapsrc ORDER BY id" \
	"SELECT id, amount, note, extra FROM dstmap.mapdst ORDER BY id" \
	"dml: name mapping (schema, table, column) applied"
is "dml: progress row stored" \
	"$(dst_val "SELECT lsn = pg_lsn('$(awk '{print $NF}' "$work/dml.out")') FROM dts.apply_progress WHERE task = 'dml'")" t
is "dml: replication origin dts_dml exists and moved" \
	"$(dst_val "SELECT remote_lsn > '0/0' FROM pg_replication_origin_status s JOIN pg_replication_origin o ON o.roident = s.local_id WHERE o.roname = 'dts_dml'")" t
is "dml: no conflicts logged" "$(dst_val "SELECT count(*) FROM dts.conflict_log WHERE task = 'dml'")" 0

# a second run over the same (already consumed up to durable) slot: nothing
src_psql -c "INSERT INTO dml.items VALUES (7000, 'later', 1, NULL)" >/dev/null
run dml
is "dml: second run applies only the new transaction" \
	"$(grep -o '[0-9]* transactions' "$work/dml.out") $(dst_val "SELECT name FROM dml.items WHERE id = 7000")" \
	"1 transactions later"

# a column missing at the destination: an error naming it
src_psql -c "CREATE TABLE dml.miss (id int PRIMARY KEY, extra1 int, extra2 text)" >/dev/null
dst_psql -c "CREATE TABLE dml.miss (id int PRIMARY KEY)" >/dev/null
src_psql -c "INSERT INTO dml.miss VALUES (1, 1, 'x')" >/dev/null
run dml
is "missing column: driver fails" "$rc" 1
check "missing column: error names the columns" \
	has "$work/dml.err" 'fatal: table "dml"."miss" at the destination has no columns "extra1", "extra2"'
dst_psql -c 'ALTER TABLE dml.miss ADD extra1 int, ADD extra2 text' >/dev/null
run dml
is "missing column: applied once the columns exist" \
	"$rc $(dst_val "SELECT extra2 FROM dml.miss")" "0 x"

# ---------------------------------------------------------------------
# 3. Conflicts: each kind under each policy
# ---------------------------------------------------------------------
# Source rows 2, 4, 5 exist before the slot (so the destination lacks 2
# and 4); the destination has its own 1 and 3 and the source's 5.  Then:
#	insert 1          INSERT_EXISTS
#	update 2          UPDATE_MISSING
#	delete 4          DELETE_MISSING
#	update 5 -> 3     UPDATE_KEY_CONFLICT
#	insert 10         no conflict
for pol in TaskFailed Ignore Overwrite; do
	t=conf_${pol,,}
	src_psql >/dev/null <<SQL
CREATE TABLE $t (id int PRIMARY KEY, v text);
INSERT INTO $t VALUES (2, 'two'), (4, 'four'), (5, 'five');
SELECT pg_create_logical_replication_slot('$t', 'pg_dts');
INSERT INTO $t VALUES (1, 'src one');
UPDATE $t SET v = 'two updated' WHERE id = 2;
DELETE FROM $t WHERE id = 4;
UPDATE $t SET id = 3 WHERE id = 5;
INSERT INTO $t VALUES (10, 'ten');
SQL
	dst_psql >/dev/null <<SQL
CREATE TABLE $t (id int PRIMARY KEY, v text);
INSERT INTO $t VALUES (1, 'dst one'), (3, 'dst three'), (5, 'five');
SQL
	task "$t" "{\"public\": {\"tables\": [\"$t\"]}}" "\"conflict_policy\": \"$pol\""
done

rows() { dst_val "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM $1"; }
clog() { dst_val "SELECT string_agg(kind || ':' || action || ':' || key::text, ' ' ORDER BY id) FROM dts.conflict_log WHERE task = '$1'"; }

# Ignore
run conf_ignore
is "Ignore: driver exit status" "$rc" 0
is "Ignore: rows" "$(rows conf_ignore)" \
	"1=dst one,2=two updated,3=dst three,5=five,10=ten"
is "Ignore: conflict log" "$(clog conf_ignore)" \
	'INSERT_EXISTS:skip:{"id": 1} UPDATE_MISSING:insert:{"id": 2} DELETE_MISSING:skip:{"id": 4} UPDATE_KEY_CONFLICT:skip:{"id": 5}'
check "Ignore: conflicts logged as warnings" has "$work/conf_ignore.err" \
	'conflict UPDATE_KEY_CONFLICT on table "public"."conf_ignore", key {"id": 5}'

# Overwrite
run conf_overwrite
is "Overwrite: driver exit status" "$rc" 0
is "Overwrite: rows equal the source's" "$(rows conf_overwrite)" \
	"$(src_val "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM conf_overwrite")"
is "Overwrite: conflict log" "$(clog conf_overwrite)" \
	'INSERT_EXISTS:overwrite:{"id": 1} UPDATE_MISSING:insert:{"id": 2} DELETE_MISSING:skip:{"id": 4} UPDATE_KEY_CONFLICT:replace:{"id": 5}'

# TaskFailed: stops at each conflict, resumes after the row is fixed
run conf_taskfailed
is "TaskFailed: INSERT_EXISTS stops the task" "$rc" 1
check "TaskFailed: error names the table, key and reason" has "$work/conf_taskfailed.err" \
	'fatal: conflict INSERT_EXISTS on table "public"."conf_taskfailed", key {"id": 1}: The row to insert already exists at the destination: Key (id)=(1) already exists. (row 1 of source transaction'
is "TaskFailed: destination unchanged" "$(rows conf_taskfailed)" \
	"1=dst one,3=dst three,5=five"
dst_psql -c "DELETE FROM conf_taskfailed WHERE id = 1" >/dev/null
run conf_taskfailed
check "TaskFailed: then UPDATE_MISSING stops it" has "$work/conf_taskfailed.err" \
	'fatal: conflict UPDATE_MISSING on table "public"."conf_taskfailed", key {"id": 2}'
is "TaskFailed: the insert before it was applied" "$(rows conf_taskfailed)" \
	"1=src one,3=dst three,5=five"
dst_psql -c "INSERT INTO conf_taskfailed VALUES (2, 'two')" >/dev/null
run conf_taskfailed
check "TaskFailed: then UPDATE_KEY_CONFLICT stops it (DELETE_MISSING only logged)" \
	has "$work/conf_taskfailed.err" \
	'fatal: conflict UPDATE_KEY_CONFLICT on table "public"."conf_taskfailed", key {"id": 5}: The update'"'"'s new key is taken by another row: Key (id)=(3) already exists.'
dst_psql -c "DELETE FROM conf_taskfailed WHERE id = 3" >/dev/null
run conf_taskfailed
is "TaskFailed: completes once fixed" "$rc" 0
is "TaskFailed: rows equal the source's" "$(rows conf_taskfailed)" \
	"$(src_val "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM conf_taskfailed")"
is "TaskFailed: conflict log" "$(clog conf_taskfailed)" \
	'INSERT_EXISTS:fail:{"id": 1} UPDATE_MISSING:fail:{"id": 2} DELETE_MISSING:skip:{"id": 4} UPDATE_KEY_CONFLICT:fail:{"id": 5}'

# ---------------------------------------------------------------------
# 4. Exactly once across crashes
# ---------------------------------------------------------------------
# counter: 3000 transactions of "n = n + 1"; an ALWAYS trigger at the
# destination counts the UPDATEs applied, so a repeated transaction shows.
# events: 30,000 inserts in 30 transactions (a repeat is a conflict).
src_psql >/dev/null <<'SQL'
CREATE TABLE counter (id int PRIMARY KEY, n int);
CREATE TABLE events (id bigint PRIMARY KEY, payload text);
SELECT pg_create_logical_replication_slot('once', 'pg_dts');
SELECT pg_create_logical_replication_slot('roll', 'pg_dts');
INSERT INTO counter VALUES (1, 0);
SQL
dst_psql >/dev/null <<'SQL'
CREATE TABLE counter (id int PRIMARY KEY, n int);
CREATE TABLE events (id bigint PRIMARY KEY, payload text);
CREATE TABLE applied_updates (n bigint);
INSERT INTO applied_updates VALUES (0);
CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN UPDATE applied_updates SET n = n + 1; RETURN NEW; END $$;
CREATE TRIGGER count_update AFTER UPDATE ON counter FOR EACH ROW EXECUTE FUNCTION count_update();
ALTER TABLE counter ENABLE ALWAYS TRIGGER count_update;
CREATE SCHEMA roll;
CREATE TABLE roll.counter (id int PRIMARY KEY, n int);
CREATE TABLE roll.events (id bigint PRIMARY KEY, payload text);
CREATE TABLE roll.applied_updates (n bigint);
INSERT INTO roll.applied_updates VALUES (0);
CREATE FUNCTION roll.count_update() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN UPDATE roll.applied_updates SET n = n + 1; RETURN NEW; END $$;
CREATE TRIGGER count_update AFTER UPDATE ON roll.counter FOR EACH ROW EXECUTE FUNCTION roll.count_update();
ALTER TABLE roll.counter ENABLE ALWAYS TRIGGER count_update;
SQL
src_psql >/dev/null <<'SQL'
DO $$
BEGIN
	FOR i IN 1..3000 LOOP
		UPDATE counter SET n = n + 1 WHERE id = 1;
		IF i % 100 = 0 THEN
			INSERT INTO events SELECT g, md5(g::text) FROM generate_series(i * 10 - 999, i * 10) g;
		END IF;
		COMMIT;
	END LOOP;
END $$;
SQL
check "once: 3030 source transactions" test $? -eq 0
task once '{"public": {"tables": ["counter", "events"]}}' \
	'"batch_transactions": 200, "batch_rows": 5000'
run once PGSINK_CRASH_AFTER=9000 PGSINK_NO_ADVANCE=1
is "once: first run killed in the middle (exit 137)" "$rc" 137
first=$(dst_val "SELECT n FROM counter")
run once PGSINK_CRASH_AFTER=25000 PGSINK_NO_ADVANCE=1
is "once: second run killed later (exit 137)" "$rc" 137
second=$(dst_val "SELECT n FROM counter")
check "once: progress between the crashes ($first, then $second of 3000)" \
	test "$first" -gt 0 -a "$second" -gt "$first" -a "$second" -lt 3000
run once
is "once: third run completes" "$rc" 0
is "once: counter equals the source's" "$(dst_val "SELECT n FROM counter")" \
	"$(src_val "SELECT n FROM counter")"
is "once: each UPDATE applied exactly once" "$(dst_val "SELECT n FROM applied_updates")" 3000
is "once: events equal" "$(dst_val "SELECT count(*), md5(string_agg(payload, '' ORDER BY id)) FROM events")" \
	"$(src_val "SELECT count(*), md5(string_agg(payload, '' ORDER BY id)) FROM events")"
is "once: no conflicts" "$(dst_val "SELECT count(*) FROM dts.conflict_log WHERE task = 'once'")" 0
run once
is "once: a fourth run applies nothing" "$(grep -o '[0-9]* changes;' "$work/once.out")" "0 changes;"

# rollback() in the middle of a batch, then the stream again from its
# start (the shipper after a lost connection); mapped to schema roll
task roll '{"public": {"name": "roll", "tables": ["counter", "events"]}}' \
	'"batch_transactions": 200, "batch_rows": 5000'
run roll PGSINK_ROLLBACK_AT=12345
is "rollback: run completes" "$rc" 0
check "rollback: it did roll back" has "$work/roll.err" "rollback after 12345 changes"
is "rollback: counter equals the source's, each UPDATE once" \
	"$(dst_val "SELECT c.n, a.n FROM roll.counter c, roll.applied_updates a")" \
	"$(src_val "SELECT n FROM counter")|3000"
is "rollback: events equal" "$(dst_val "SELECT count(*), md5(string_agg(payload, '' ORDER BY id)) FROM roll.events")" \
	"$(src_val "SELECT count(*), md5(string_agg(payload, '' ORDER BY id)) FROM events")"

# ---------------------------------------------------------------------
# 4b. Set-based runs of updates and deletes (staged by COPY, one
#     UPDATE ... FROM / DELETE ... USING): same result as row by row,
#     conflicts still found by the careful replay
# ---------------------------------------------------------------------
# Rows 1..1000 exist before the slot; the destination lacks 777 and 888.
# One source transaction per batch:
#	1. 800 updates, one of a missing row       UPDATE_MISSING (insert)
#	2. ids 1..100 then 50..150 updated: 50..100 twice, the second wins
#	3. 200 deletes, one of a missing row       DELETE_MISSING (skip)
#	4. REPLICA IDENTITY FULL with a key, TOAST unchanged: 300 updates
#	5. composite key, odd names: 300 updates then 300 deletes
SETRUN_DDL=$(cat <<'SQL'
CREATE SCHEMA setrun;
CREATE TABLE setrun.t (id int PRIMARY KEY, v text, n int);
CREATE TABLE setrun.full (id int PRIMARY KEY, v text, big text);
ALTER TABLE setrun.full REPLICA IDENTITY FULL;
CREATE TABLE setrun."Odd ""Run""" ("K 1" int, "k2" text, "v al" text, PRIMARY KEY ("K 1", "k2"));
SQL
)
src_psql -c "$SETRUN_DDL" >/dev/null &&
	dst_psql -c "$SETRUN_DDL" >/dev/null &&
	src_psql >/dev/null <<'SQL' &&
INSERT INTO setrun.t SELECT i, 'v' || i, i FROM generate_series(1, 1000) i;
SELECT pg_create_logical_replication_slot('setrun', 'pg_dts');
SQL
	dst_psql -c "INSERT INTO setrun.t SELECT i, 'v' || i, i FROM generate_series(1, 1000) i WHERE i NOT IN (777, 888)" >/dev/null &&
	src_psql >/dev/null <<'SQL'
CREATE FUNCTION pg_temp.big(n int) RETURNS text LANGUAGE sql AS
$$ SELECT string_agg(md5(i::text || random()::text), '') FROM generate_series(1, n) i $$;
UPDATE setrun.t SET v = 'u1:' || id, n = n + 1 WHERE id <= 800;
BEGIN;
UPDATE setrun.t SET v = 'first' WHERE id BETWEEN 1 AND 100;
UPDATE setrun.t SET v = 'second' WHERE id BETWEEN 50 AND 150;
COMMIT;
DELETE FROM setrun.t WHERE id > 800;
INSERT INTO setrun.full SELECT i, 'f' || i, CASE WHEN i % 100 = 0 THEN pg_temp.big(3000) END FROM generate_series(1, 300) i;
UPDATE setrun.full SET v = 'g' || id;
INSERT INTO setrun."Odd ""Run""" SELECT i, 'k' || i, 'x' FROM generate_series(1, 600) i;
UPDATE setrun."Odd ""Run""" SET "v al" = 'y' || "K 1" WHERE "K 1" <= 300;
DELETE FROM setrun."Odd ""Run""" WHERE "K 1" > 300;
SQL
check "setrun: schema, rows, slot, source changes" test $? -eq 0
task setrun '{"setrun": {"all": true}}' '"batch_transactions": 1, "conflict_policy": "Ignore"'
run setrun
is "setrun: driver exit status" "$rc" 0
Q_SETRUN="SELECT id, v, n FROM setrun.t ORDER BY id"
same_rows "$Q_SETRUN" "$Q_SETRUN" "setrun: rows equal the source's (missing row inserted, deleted one skipped)"
is "setrun: a key updated twice in one run ends with the second value" \
	"$(dst_val "SELECT string_agg(DISTINCT v, ',' ORDER BY v) FROM setrun.t WHERE id BETWEEN 50 AND 100")" second
is "setrun: conflicts found as row by row" "$(clog setrun)" \
	'UPDATE_MISSING:insert:{"id": 777} DELETE_MISSING:skip:{"id": 888}'
check "setrun: the update run was set-based, then replayed" has "$work/setrun.err" \
	"did not apply cleanly (UPDATE of a run of 800 rows hit 799 rows with 799 of the keys)"
check "setrun: the delete run was set-based, then replayed" has "$work/setrun.err" \
	"did not apply cleanly (DELETE of a run of 200 rows hit 199 rows with 199 of the keys)"
is "setrun: no other batch replayed" "$(grep -c 'did not apply cleanly' "$work/setrun.err")" 2
Q_SETFULL="SELECT id, v, md5(big) FROM setrun.full ORDER BY id"
same_rows "$Q_SETFULL" "$Q_SETFULL" "setrun: FULL with a key, TOAST unchanged, equal"
Q_SETODD='SELECT "K 1", "k2", "v al" FROM setrun."Odd ""Run""" ORDER BY 1, 2'
same_rows "$Q_SETODD" "$Q_SETODD" "setrun: composite key, odd names, equal"

# ---------------------------------------------------------------------
# 4c. A source transaction much bigger than sink.batch_memory, with a
#     conflict late in it: the changes past the cap go to a temp file,
#     the careful replay reads them back; pg_dts_ship's memory stays
#     bounded (GNU time's maximum resident set size)
# ---------------------------------------------------------------------
# One transaction: 20,000 inserts of ~1.9 kB rows (~40 MB of values, 1 MB
# cap), then 5,000 updates and 2,000 deletes of those rows; the
# destination already has row 19990 (INSERT_EXISTS, Ignore: kept).
SHIP=${PG_DTS_SHIP:-$repo/build/pg_dts_ship}
BIGTX_DDL="CREATE SCHEMA bigtx; CREATE TABLE bigtx.t (id int PRIMARY KEY, v text, pad text);"
src_psql -c "$BIGTX_DDL" -c "SELECT pg_create_logical_replication_slot('dts_sync_bigtx', 'pg_dts')" >/dev/null &&
	dst_psql -c "$BIGTX_DDL" -c "INSERT INTO bigtx.t VALUES (19990, 'the destination''s', NULL)" >/dev/null &&
	src_psql >/dev/null <<'SQL'
BEGIN;
INSERT INTO bigtx.t SELECT i, 'v' || i, repeat(md5(i::text), 58) FROM generate_series(1, 20000) i;
UPDATE bigtx.t SET v = 'u' || id WHERE id <= 5000;
DELETE FROM bigtx.t WHERE id BETWEEN 10001 AND 12000;
COMMIT;
SQL
check "bigtx: schema, slot, one big source transaction" test $? -eq 0
BIGTX_END=$(src_val "SELECT pg_current_wal_insert_lsn()")
# bigtx_task NAME POLICY: task NAME for schema NAME with a 1 MB batch_memory
bigtx_task()
{
	cat >"$work/$1.json" <<EOF
{"name": "$1", "source": {"conninfo": "$SRC"},
 "sink": {"type": "pg", "conninfo": "$DST", "conflict_policy": "$2", "batch_memory": 1},
 "objects": {"$1": {"all": true}}, "heartbeat_interval": 0}
EOF
}
bigtx_task bigtx Ignore
/usr/bin/time -f "%M" -o "$work/bigtx.rss" "$SHIP" --task "$work/bigtx.json" -v \
	--start -n -E "$BIGTX_END" >"$work/bigtx.out" 2>"$work/bigtx.err"
is "bigtx: pg_dts_ship exit status" "$?" 0
Q_BIGTX="SELECT count(*), md5(string_agg(id || v || pad, ',' ORDER BY id)) FROM bigtx.t WHERE id <> 19990"
is "bigtx: rows equal the source's" "$(dst_val "$Q_BIGTX")" "$(src_val "$Q_BIGTX")"
is "bigtx: the existing row kept (Ignore)" "$(dst_val "SELECT v FROM bigtx.t WHERE id = 19990")" "the destination's"
is "bigtx: the late conflict logged" "$(clog bigtx)" 'INSERT_EXISTS:skip:{"id": 19990}'
check "bigtx: changes past the cap kept in a temp file" has "$work/bigtx.err" \
	"is bigger than sink.batch_memory (1 MB): keeping the rest of its changes in a temp file"
check "bigtx: replayed carefully" has "$work/bigtx.err" "did not apply cleanly"
bigtx_rss=$(( $(cat "$work/bigtx.rss" 2>/dev/null || echo 999999) / 1024 ))
echo "# bigtx: pg_dts_ship max RSS ${bigtx_rss} MB (the transaction's values: ~40 MB)" >&2
check "bigtx: pg_dts_ship max RSS ${bigtx_rss} MB < 30 MB" test "$bigtx_rss" -lt 30

# ---------------------------------------------------------------------
# 4d. kill -9 while a source transaction bigger than sink.batch_memory is
#     being applied (its changes past the cap in the temp file), then a
#     restart: the destination ends equal to the source and nothing is
#     applied twice (TaskFailed: a second insert of a row would stop the
#     task; the counters are incremented twice in the transaction, so a
#     repeat would show in them)
# ---------------------------------------------------------------------
BIGKILL_DDL="CREATE SCHEMA bigkill; CREATE TABLE bigkill.t (id int PRIMARY KEY, n int, pad text);"
src_psql -c "$BIGKILL_DDL" -c "SELECT pg_create_logical_replication_slot('dts_sync_bigkill', 'pg_dts')" >/dev/null &&
	dst_psql -c "$BIGKILL_DDL" >/dev/null &&
	src_psql >/dev/null <<'SQL'
BEGIN;
INSERT INTO bigkill.t SELECT i, 0, repeat(md5(i::text), 58) FROM generate_series(1, 60000) i;
UPDATE bigkill.t SET n = n + 1 WHERE id % 3 = 0;
UPDATE bigkill.t SET n = n + 1 WHERE id % 5 = 0;
COMMIT;
SQL
check "bigkill: schema, slot, one big source transaction" test $? -eq 0
BIGKILL_END=$(src_val "SELECT pg_current_wal_insert_lsn()")
bigtx_task bigkill TaskFailed
"$SHIP" --task "$work/bigkill.json" -v --start -n -E "$BIGKILL_END" \
	>"$work/bigkill1.out" 2>"$work/bigkill1.err" &
bigkill_pid=$!
# wait (up to 60 s) until the transaction has gone past the cap
for _ in $(seq 1 1200); do
	grep -qF "keeping the rest of its changes in a temp file" "$work/bigkill1.err" && break
	kill -0 "$bigkill_pid" 2>/dev/null || break
	sleep 0.05
done
kill -9 "$bigkill_pid" 2>/dev/null
wait "$bigkill_pid"
is "bigkill: first run killed by SIGKILL" "$?" 137
check "bigkill: it was past the cap (changes in the temp file) when killed" has "$work/bigkill1.err" \
	"keeping the rest of its changes in a temp file"
echo "# bigkill: rows at the destination when killed: $(dst_val "SELECT count(*) FROM bigkill.t")" >&2
"$SHIP" --task "$work/bigkill.json" -v --start -n -E "$BIGKILL_END" \
	>"$work/bigkill2.out" 2>"$work/bigkill2.err"
is "bigkill: the restart exits 0" "$?" 0
Q_BIGKILL="SELECT count(*), sum(n), md5(string_agg(id || ':' || n || pad, ',' ORDER BY id)) FROM bigkill.t"
is "bigkill: rows equal the source's, increments applied once" "$(dst_val "$Q_BIGKILL")" "$(src_val "$Q_BIGKILL")"
is "bigkill: no conflict logged" "$(clog bigkill)" ""

# ---------------------------------------------------------------------
# 4e. A slow destination: pg_dts_ship reads the source ahead while the
#     sink waits (a bounded ring handed on in order).  An ALWAYS trigger at
#     the destination sleeps 1 ms per row and records the order rows
#     arrive in; 60 source transactions of 100 inserts and one increment,
#     in batches of at most 300 rows.  The read-ahead must have happened
#     (-v says so), and order, rows and increments must be exact.
# ---------------------------------------------------------------------
SLOW_DDL="CREATE SCHEMA slowdst; CREATE TABLE slowdst.ev (id int PRIMARY KEY, pad text);
CREATE TABLE slowdst.counter (id int PRIMARY KEY, n int NOT NULL);"
src_psql -c "$SLOW_DDL" -c "INSERT INTO slowdst.counter VALUES (1, 0)" \
	-c "SELECT pg_create_logical_replication_slot('dts_sync_slowdst', 'pg_dts')" >/dev/null &&
	dst_psql -c "$SLOW_DDL" -c "INSERT INTO slowdst.counter VALUES (1, 0)" >/dev/null &&
	dst_psql >/dev/null <<'SQL'
CREATE TABLE public.slowdst_arrivals (seq bigserial PRIMARY KEY, id int NOT NULL);
CREATE FUNCTION public.slowdst_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(0.001);
	INSERT INTO public.slowdst_arrivals (id) VALUES (NEW.id);
	RETURN NEW;
END $$;
CREATE TRIGGER slow BEFORE INSERT ON slowdst.ev FOR EACH ROW EXECUTE FUNCTION public.slowdst_slow();
ALTER TABLE slowdst.ev ENABLE ALWAYS TRIGGER slow;
SQL
check "slowdst: schema, slot, slow trigger at the destination" test $? -eq 0
src_psql -c "DO \$\$ BEGIN FOR t IN 0..59 LOOP
	INSERT INTO slowdst.ev SELECT i, repeat(md5(i::text), 6) FROM generate_series(t * 100 + 1, t * 100 + 100) i;
	UPDATE slowdst.counter SET n = n + 1;
	COMMIT; END LOOP; END \$\$" >/dev/null
SLOW_END=$(src_val "SELECT pg_current_wal_insert_lsn()")
cat >"$work/slowdst.json" <<EOF
{"name": "slowdst", "source": {"conninfo": "$SRC"},
 "sink": {"type": "pg", "conninfo": "$DST", "batch_memory": 1, "batch_rows": 300},
 "objects": {"slowdst": {"all": true}}, "heartbeat_interval": 0}
EOF
"$SHIP" --task "$work/slowdst.json" -v --start -n -E "$SLOW_END" \
	>"$work/slowdst.out" 2>"$work/slowdst.err"
is "slowdst: pg_dts_ship exits 0" "$?" 0
check "slowdst: the source was read ahead while the sink waited" has "$work/slowdst.err" \
	"messages while the sink was busy"
grep -F "read ahead" "$work/slowdst.err" | sed 's/^/# slowdst: /' >&2
Q_SLOW="SELECT count(*), md5(string_agg(id || pad, ',' ORDER BY id)) FROM slowdst.ev"
is "slowdst: rows equal the source's" "$(dst_val "$Q_SLOW")" "$(src_val "$Q_SLOW")"
is "slowdst: every increment applied once" "$(dst_val "SELECT n FROM slowdst.counter")" 60
is "slowdst: rows arrived once each, in source commit order" \
	"$(dst_val "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE prev >= id)
	            FROM (SELECT id, lag(id) OVER (ORDER BY seq) AS prev FROM public.slowdst_arrivals) a")" \
	"6000|6000|0"

# ---------------------------------------------------------------------
# 5. Timing: BENCH_ROWS inserts in 20 transactions
# ---------------------------------------------------------------------
if [ "$BENCH_ROWS" -gt 0 ]; then
	per=$((BENCH_ROWS / 20))
	BENCH_DDL="CREATE TABLE bench (id int PRIMARY KEY, a int, b text, c timestamptz, d numeric)"
	src_psql -c "$BENCH_DDL" -c "CREATE PUBLICATION bench_pub FOR TABLE bench" \
		-c "SELECT pg_create_logical_replication_slot('bench', 'pg_dts')" >/dev/null
	dst_psql -c "$BENCH_DDL" -c "CREATE DATABASE native" >/dev/null
	"$BINDIR/psql" -X -q -d "host=$DST_SOCK port=$DST_PORT user=postgres dbname=native" \
		-c "$BENCH_DDL" \
		-c "CREATE SUBSCRIPTION bench_sub CONNECTION 'host=$SRC_SOCK port=$SRC_PORT user=postgres dbname=postgres' PUBLICATION bench_pub WITH (copy_data = false, enabled = false)" >/dev/null
	t0=$(date +%s.%N)
	src_psql -c "DO \$\$ BEGIN FOR t IN 0..19 LOOP
		INSERT INTO bench SELECT g, g % 1000, md5(g::text), now(), g * 1.5
		FROM generate_series(t * $per + 1, (t + 1) * $per) g; COMMIT; END LOOP; END \$\$" >/dev/null
	t1=$(date +%s.%N)
	src_s=$(echo "$t1 - $t0" | bc)
	task bench '{"public": {"tables": ["bench"]}}'
	t0=$(date +%s.%N)
	run bench
	t1=$(date +%s.%N)
	is "bench: driver exit status" "$rc" 0
	is "bench: $BENCH_ROWS rows applied" "$(dst_val "SELECT count(*) FROM bench")" "$BENCH_ROWS"
	drv_s=$(echo "$t1 - $t0" | bc)
	apply_s=$(grep -o 'apply [0-9.]* s' "$work/bench.out" | awk '{print $2}')
	# native logical replication: enable the subscription, wait for the rows
	t0=$(date +%s.%N)
	"$BINDIR/psql" -X -q -d "host=$DST_SOCK port=$DST_PORT user=postgres dbname=native" \
		-c "ALTER SUBSCRIPTION bench_sub ENABLE" >/dev/null
	for _ in $(seq 1 1200); do
		n=$("$BINDIR/psql" -X -Atq -d "host=$DST_SOCK port=$DST_PORT user=postgres dbname=native" \
			-c "SELECT count(*) FROM bench")
		[ "$n" = "$BENCH_ROWS" ] && break
		sleep 0.05
	done
	t1=$(date +%s.%N)
	native_s=$(echo "$t1 - $t0" | bc)
	is "bench: native logical replication caught up" "$n" "$BENCH_ROWS"

	# then BENCH_ROWS updates in 20 transactions, the same way
	native() { "$BINDIR/psql" -X -Atq -d "host=$DST_SOCK port=$DST_PORT user=postgres dbname=native" "$@"; }
	native -c "ALTER SUBSCRIPTION bench_sub DISABLE" >/dev/null
	src_psql -c "DO \$\$ BEGIN FOR t IN 0..19 LOOP
		UPDATE bench SET a = a + 1, b = 'u' || id
		WHERE id BETWEEN t * $per + 1 AND (t + 1) * $per; COMMIT; END LOOP; END \$\$" >/dev/null
	run bench
	upd_s=$(grep -o 'apply [0-9.]* s' "$work/bench.out" | awk '{print $2}')
	same_rows "SELECT sum(a), count(*) FILTER (WHERE b = 'u' || id) FROM bench" \
		"SELECT sum(a), count(*) FILTER (WHERE b = 'u' || id) FROM bench" "bench: updates applied"
	want=$(src_val "SELECT sum(a) FROM bench")
	sleep 1						# the walsender notices the disabled subscription
	t0=$(date +%s.%N)
	native -c "ALTER SUBSCRIPTION bench_sub ENABLE" >/dev/null
	for _ in $(seq 1 1200); do
		[ "$(native -c "SELECT sum(a) FROM bench")" = "$want" ] && break
		sleep 0.05
	done
	t1=$(date +%s.%N)
	native_upd_s=$(echo "$t1 - $t0" | bc)
	is "bench: native logical replication caught up with the updates" \
		"$(native -c "SELECT sum(a) FROM bench")" "$want"
	"$BINDIR/psql" -X -q -d "host=$DST_SOCK port=$DST_PORT user=postgres dbname=native" \
		-c "ALTER SUBSCRIPTION bench_sub DISABLE" -c "ALTER SUBSCRIPTION bench_sub SET (slot_name = NONE)" \
		-c "DROP SUBSCRIPTION bench_sub" >/dev/null 2>&1
	src_psql -c "SELECT pg_drop_replication_slot('bench_sub')" >/dev/null 2>&1
	printf '# timing: %d inserts in 20 transactions\n' "$BENCH_ROWS"
	printf '#   source INSERTs:              %6.2f s (%8.0f rows/s)\n' "$src_s" "$(echo "$BENCH_ROWS / $src_s" | bc -l)"
	printf '#   pg sink apply (driver):      %6.2f s (%8.0f rows/s)\n' "$apply_s" "$(echo "$BENCH_ROWS / $apply_s" | bc -l)"
	printf '#   driver total (decode+apply): %6.2f s (%8.0f rows/s)\n' "$drv_s" "$(echo "$BENCH_ROWS / $drv_s" | bc -l)"
	printf '#   native logical replication:  %6.2f s (%8.0f rows/s, decode+apply)\n' "$native_s" "$(echo "$BENCH_ROWS / $native_s" | bc -l)"
	printf '# timing: %d updates (2 of 5 columns) in 20 transactions\n' "$BENCH_ROWS"
	printf '#   pg sink apply (driver):      %6.2f s (%8.0f rows/s)\n' "$upd_s" "$(echo "$BENCH_ROWS / $upd_s" | bc -l)"
	printf '#   native logical replication:  %6.2f s (%8.0f rows/s, decode+apply)\n' "$native_upd_s" "$(echo "$BENCH_ROWS / $native_upd_s" | bc -l)"
fi

e2e_finish

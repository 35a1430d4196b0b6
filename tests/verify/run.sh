#!/usr/bin/env bash
#
# tests/verify/run.sh
#	  Tests of pg_dts_ship's switchover tools, shipper/verify.c (table
#	  comparison) and shipper/sequences.c (sequence sync), through a small
#	  driver (verify_driver.c) on two throw-away clusters.
#
# The source is loaded with tables of every shape (odd identifiers,
# composite keys, a unique NOT NULL key, no key at all, many built-in types,
# 250,000 rows in one table) and copied to the destination with pg_dump;
# the comparison must find them identical.  Then the destination is changed
# in known places and each change must be reported with its key.  The
# sequence tests check both directions: a source ahead moves the
# destination, a destination ahead is left alone.
#
# Environment:
#	PG_CONFIG	 pg_config of the server to use (default PostgreSQL 15's)
#	COUNTS_FILE	 if set, receives one line "passed failed"
#	PGC_KEEP=1	 keep the clusters' directories for a post-mortem
#	VERIFY_CFLAGS extra flags for the driver, e.g. "-g -fsanitize=address"
#
# Ends with one line "N passed, N failed"; exit 0 only if nothing failed.
#
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

work=$(mktemp -d /tmp/pg_dts_verify.XXXXXX)

# shellcheck source=../lib/e2e.sh
. "$repo/tests/lib/e2e.sh"

e2e_two_clusters

# ---------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------
driver=$work/verify_driver
if ! gcc -std=gnu99 -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare -Wmissing-prototypes \
	-Wdeclaration-after-statement ${VERIFY_CFLAGS:-} \
	-I"$repo/include" -I"$repo/shipper" -I"$("$PG_CONFIG" --includedir)" \
	-o "$driver" "$here/verify_driver.c" "$repo/shipper/verify.c" \
	"$repo/shipper/sequences.c" \
	-L"$("$PG_CONFIG" --libdir)" -lpq; then
	not_ok "build verify_driver"
	echo "$passed passed, $failed failed"
	exit 1
fi
ok "build verify_driver"

# ---------------------------------------------------------------------
# Source data, copied to the destination
# ---------------------------------------------------------------------
src_psql >/dev/null <<'SQL'
CREATE TABLE big (id bigint PRIMARY KEY, payload text, n numeric, f8 float8);
INSERT INTO big
SELECT i, md5(i::text), i * 1.5, i / 3.0 FROM generate_series(1, 250000) i;

CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Weird ""Table"" é" (
	"Key Col" int,
	"ÜberName" text,
	"select" int,
	"Space Col" text,
	PRIMARY KEY ("Key Col", "ÜberName"));
INSERT INTO "Odd Schema"."Weird ""Table"" é"
SELECT i % 100, 'name ' || i, i, 'x y ' || i FROM generate_series(1, 3000) i;

CREATE TABLE uq (a int NOT NULL, b text, c int, UNIQUE (a));
INSERT INTO uq SELECT i, 'b' || i, i FROM generate_series(1, 500) i;

CREATE TABLE nokey (a int, b text, c jsonb);
INSERT INTO nokey VALUES (1, 'x', '{"k": 1}'), (1, 'x', '{"k": 1}'),
	(2, NULL, NULL), (3, '', '[]');

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (l int, r text);
CREATE TABLE types (
	id int PRIMARY KEY,
	b bool, i2 int2, i4 int4, i8 int8, n numeric(30, 10), nn numeric,
	r4 float4, r8 float8, t text, vc varchar(20), ch char(5), "by" bytea,
	d date, tm time, ttz timetz, ts timestamp, tstz timestamptz,
	iv interval, u uuid, j json, jb jsonb, x xml, ia int[], ta text[],
	ip inet, cid cidr, mac macaddr, pt point, bx box, m money,
	bt bit(8), vb varbit, tsv tsvector, rng int4range, e mood, pr pair,
	o oid, nm name, c "char");
INSERT INTO types VALUES
	(1, true, -32768, 2147483647, -9223372036854775808, 12345.6789012345,
	 'NaN', 'Infinity', 0.1::float8 + 0.2::float8, 'héllo wörld ✓', 'vc', 'ab', '\x00ff10',
	 '2024-02-29', '23:59:59.999999', '12:00+05:30', '1999-12-31 23:59:59.5',
	 '2000-01-01 00:00:00+14', '1 year 2 mons 3 days 04:05:06.7',
	 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.50]}',
	 '{"b": {"c": null}}', '<a>x</a>', '{1,NULL,3}', '{"a b","c,d",NULL}',
	 '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '(1.5,-2)',
	 '((0,0),(1,1))', 12.34, B'10101010', B'101', 'a fat cat',
	 '[1,10)', 'happy', ROW(1, 'one'), 42, 'aname', 'z'),
	(2, false, 0, 0, 0, -0.0000000001, '1e-30', '-Infinity', -0.0,
	 E'tab\there "quote" \\ back', '', '', '', '-infinity', '00:00', '00:00+00',
	 'infinity', '1970-01-01 00:00:00+00', '-1 days', NULL, '[]', '{}',
	 NULL, '{}', '{}', '::1', '::/0', '00:00:00:00:00:00', '(0,0)',
	 '((-1,-1),(1,1))', -0.01, B'00000000', B'', '', 'empty', 'sad',
	 ROW(NULL, ''), 0, '', ' '),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', 1e-300, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL);

-- a text key, made to sort in another collation on the destination
CREATE TABLE coll (k text PRIMARY KEY, v int);
INSERT INTO coll
SELECT chr(65 + i % 26) || chr(97 + i % 7) || i, i FROM generate_series(1, 2000) i;

-- mapped on the destination: other schema, table and column names, and
-- only the rows of the row filter (id % 2 = 0)
CREATE TABLE src_map (id int PRIMARY KEY, x text, y int);
INSERT INTO src_map SELECT i, 'x' || i, i FROM generate_series(1, 1000) i;

-- sequences: identity and serial columns, plain ones, a descending one
CREATE TABLE withseq (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
					  s serial, v text);
INSERT INTO withseq (v) SELECT 'v' FROM generate_series(1, 300);
CREATE SEQUENCE seq_ahead;
SELECT setval('seq_ahead', 1000);
CREATE SEQUENCE seq_behind;
SELECT setval('seq_behind', 10);
CREATE SEQUENCE seq_desc INCREMENT BY -1 MINVALUE -1000000 MAXVALUE -1 START -1;
SELECT setval('seq_desc', -500);
CREATE SEQUENCE seq_fresh;
CREATE SEQUENCE "Odd Schema"."Seq ""Q"" é" INCREMENT BY 5;
SELECT setval('"Odd Schema"."Seq ""Q"" é"', 700);
CREATE SEQUENCE seq_nodest;
SELECT setval('seq_nodest', 5);
CREATE SEQUENCE seq_end MAXVALUE 100;
SELECT setval('seq_end', 100);
SQL
[ $? -eq 0 ] || { echo "loading the source failed"; exit 1; }

"$BINDIR/pg_dump" -d "$SRC" -T src_map -T seq_nodest >"$work/dump.sql" &&
	dst_psql -f "$work/dump.sql" >/dev/null
check "pg_dump of the source restored on the destination" test $? -eq 0

dst_psql >/dev/null <<'SQL'
CREATE SCHEMA mapped;
CREATE TABLE mapped.dst_map (id int PRIMARY KEY, x2 text, y int);
-- the destination's sequences start behind the source, except one
SELECT setval('seq_ahead', 1, false);
SELECT setval('seq_behind', 5000);
SELECT setval('seq_desc', -1, false);
SELECT setval('seq_fresh', 1, false);
SELECT setval('seq_end', 1, false);
SELECT setval('"Odd Schema"."Seq ""Q"" é"', 5, false);
SELECT setval(pg_get_serial_sequence('withseq', 'id'), 1, false);
SELECT setval(pg_get_serial_sequence('withseq', 's'), 1, false);
ALTER TABLE coll ALTER COLUMN k TYPE text COLLATE "C";
SQL
src_psql -c "\copy (SELECT id, x, y FROM src_map WHERE id % 2 = 0) TO STDOUT" |
	dst_psql -c "\copy mapped.dst_map FROM STDIN"
check "destination set up" test $? -eq 0

ODD='Odd Schema|Weird "Table" é'
TABLES=('public|big' "$ODD" 'public|uq' 'public|nokey' 'public|types'
	'public|coll' 'public|src_map|mapped|dst_map|id,x=x2,y|id % 2 = 0')

# verify OUTFILE [driver args...]: run the driver, keep its status
verify()
{
	local out=$1
	shift
	"$driver" verify "$SRC" "$DST" "$@" >"$out" 2>"$out.err"
	echo $? >"$out.rc"
	sed "s/^/# /" "$out.err" >&2
}

# ---------------------------------------------------------------------
# Identical
# ---------------------------------------------------------------------
t0=$(date +%s.%N)
verify "$work/same" "${TABLES[@]}"
t1=$(date +%s.%N)
check "identical: exit status 0" test "$(cat "$work/same.rc")" = 0
check "identical: 7 tables ok" \
	test "$(grep -c ': ok$' "$work/same")" = 7
check "identical: big has 250000 rows on both sides" \
	has "$work/same" "table public.big -> public.big: rows source 250000, destination 250000: ok"
check "identical: odd names printed quoted" \
	has "$work/same" "table \"Odd Schema\".\"Weird \"\"Table\"\" é\" -> \"Odd Schema\".\"Weird \"\"Table\"\" é\": rows source 3000, destination 3000: ok"
check "identical: mapped table compares the filtered rows" \
	has "$work/same" "table public.src_map -> mapped.dst_map: rows source 500, destination 500: ok"
check "identical: keyless table says how it is compared" \
	has "$work/same" "no primary key or unique NOT NULL index"
echo "# identical, 7 tables (256,000 rows each side): $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"

t0=$(date +%s.%N)
verify "$work/big_only" 'public|big'
t1=$(date +%s.%N)
check "identical: big alone, exit 0" test "$(cat "$work/big_only.rc")" = 0
echo "# verify of 250,000 rows (3 chunks): $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"

verify "$work/small_chunks" -c 7000 -m 50 'public|big' "$ODD" 'public|nokey'
check "identical with small chunks: exit 0" \
	test "$(cat "$work/small_chunks.rc")" = 0

# ---------------------------------------------------------------------
# Differences, each reported with its key
# ---------------------------------------------------------------------
dst_psql <<'SQL'
UPDATE big SET payload = 'changed' WHERE id = 187654;
DELETE FROM big WHERE id = 99999;
INSERT INTO big VALUES (250001, 'extra', 0, 0);
UPDATE types SET t = '' WHERE id = 3;
UPDATE types SET r8 = 0.3 WHERE id = 1;
UPDATE "Odd Schema"."Weird ""Table"" é" SET "Space Col" = 'moved'
	WHERE "Key Col" = 42 AND "ÜberName" = 'name 1742';
DELETE FROM nokey WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 1);
INSERT INTO mapped.dst_map VALUES (7, 'x7', 7);
DELETE FROM uq WHERE a = 500;
DELETE FROM coll WHERE k = 'Ze25';
SQL

verify "$work/diff" "${TABLES[@]}"
check "differences: exit status 1" test "$(cat "$work/diff.rc")" = 1
check "differences: big is DIFFERENT" \
	has "$work/diff" "table public.big -> public.big: rows source 250000, destination 250000: DIFFERENT (3 ranges)"
check "differences: changed value deep in big" \
	has "$work/diff" "different values: id=187654"
check "differences: the changed row's two texts are shown" \
	has "$work/diff" "destination: (187654,changed,"
check "differences: missing row" \
	has "$work/diff" "missing on destination: id=99999"
check "differences: extra row" \
	has "$work/diff" "extra on destination: id=250001"
check "differences: NULL vs empty string" \
	has "$work/diff" 'destination: (3,,,,,,,NaN,1e-300,"",'
check "differences: float 0.30000000000000004 vs 0.3" \
	has "$work/diff" "destination: (1,t,-32768,2147483647,-9223372036854775808,12345.6789012345,NaN,Infinity,0.3,"
check "differences: composite odd key" \
	has "$work/diff" "different values: (\"Key Col\", \"ÜberName\")=(42, 'name 1742')"
check "differences: keyless duplicate row missing" \
	has "$work/diff" "missing on destination: row (1,x,"
check "differences: row outside the filter is extra" \
	has "$work/diff" "extra on destination: id=7"
check "differences: unique NOT NULL key used" \
	has "$work/diff" "missing on destination: a=500"
check "differences: unique key named" has "$work/diff" "key uq_a_key (a)"
check "differences: collations differ, byte order said" \
	has "$work/diff" "text compared in byte order"
check "differences: text key in byte order" \
	has "$work/diff" "missing on destination: k='Ze25'"
check "differences: seven tables differ" \
	test "$(grep -c ': DIFFERENT (' "$work/diff")" = 7

verify "$work/diff_coll" -c 300 -m 7 'public|coll'
check "text key in byte order, bisected: the same key" \
	has "$work/diff_coll" "missing on destination: k='Ze25'"

verify "$work/diff_small" -c 5000 -m 10 -l 2 'public|big'
check "small chunks: same keys found" \
	has "$work/diff_small" "missing on destination: id=99999"
check "small chunks: listing capped" \
	has "$work/diff_small" "... and 1 more rows not listed"
check "small chunks: totals" \
	has "$work/diff_small" "1 missing on destination, 1 extra on destination, 1 with different values"

# ---------------------------------------------------------------------
# Errors: count as differences, say what is wrong
# ---------------------------------------------------------------------
verify "$work/err" 'public|big' 'public|big|public|nosuch' \
	'public|src_map|mapped|dst_map|id,x|' 'public|nosuch'
check "errors: exit status 1" test "$(cat "$work/err.rc")" = 1
check "errors: missing destination table" \
	has "$work/err" "ERROR: destination table public.nosuch does not exist"
check "errors: missing destination column" \
	has "$work/err" 'ERROR: destination column "x" does not exist'
check "errors: missing source table" \
	has "$work/err" "ERROR: source table public.nosuch does not exist"
check "errors: later tables still compared" \
	test "$(grep -c '^table ' "$work/err")" = 4
verify "$work/keyadded" 'public|src_map|mapped|dst_map|x=x2|id % 2 = 0'
check "a key column left out of the column list is compared anyway" \
	has "$work/keyadded" "rows source 500, destination 501: DIFFERENT (1 range)"
check "... and used as the key" has "$work/keyadded" "extra on destination: id=7"
verify "$work/badfilter" 'public|big||||no_such_col > 0' 'public|uq'
check "errors: a failing row filter is reported, the next table goes on" \
	has "$work/badfilter" 'column "no_such_col" does not exist'
verify "$work/badopt" -c 0 'public|big'
check "errors: bad options exit 2" test "$(cat "$work/badopt.rc")" = 2

# ---------------------------------------------------------------------
# Task selection: schema rules expanded, table rules mapped
# ---------------------------------------------------------------------
"$driver" task-verify "$SRC" "$DST" 'Odd Schema' \
	'public|src_map|mapped|dst_map|id,x=x2,y|id % 2 = 0' >"$work/task" 2>&1
check "task: schema rule expanded to its table" \
	has "$work/task" "table \"Odd Schema\".\"Weird \"\"Table\"\" é\" -> "
check "task: table rule mapped" \
	has "$work/task" "table public.src_map -> mapped.dst_map: rows source 500, destination 501: DIFFERENT"

# ---------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------
"$driver" sequences "$SRC" "$DST" 'public|seq_ahead' 'public|seq_behind' \
	'public|seq_desc' 'public|seq_fresh' 'Odd Schema|Seq "Q" é' \
	'public|seq_nodest' 'public|seq_end' >"$work/seq" 2>&1
echo $? >"$work/seq.rc"
sed 's/^/# /' "$work/seq"
check "sequences: a failure gives exit 1" test "$(cat "$work/seq.rc")" = 1
check "sequences: source ahead, destination set past it" \
	has "$work/seq" "sequence public.seq_ahead -> public.seq_ahead: source last_value 1000 (called), increment 1; destination last_value 1 (not called): set to 1001 (next value 1002)"
check "sequences: destination ahead, left alone" \
	has "$work/seq" "destination last_value 5000 (called): destination is ahead, left alone"
check "sequences: descending" \
	has "$work/seq" "set to -501 (next value -502)"
check "sequences: never called on the source" \
	has "$work/seq" "source last_value 1 (not called), increment 1; destination last_value 1 (not called): set to 1 (next value 2)"
check "sequences: odd name, increment 5" \
	has "$work/seq" "sequence \"Odd Schema\".\"Seq \"\"Q\"\" é\" -> \"Odd Schema\".\"Seq \"\"Q\"\" é\": source last_value 700 (called), increment 5"
check "sequences: missing on the destination is an error with a hint" \
	has "$work/seq" "could not read it on the destination"
check "sequences: summary" \
	has "$work/seq" "7 sequences, 6 synchronized or already ahead, 1 failed"
check "sequences: a source at its end leaves the destination at its end" \
	has "$work/seq" "source last_value 100 (called), increment 1; destination last_value 1 (not called): set to 100 (at its end, as on the source)"
check "sequences: destination nextval after sync" \
	test "$(dst_psql -Atc "SELECT nextval('seq_ahead'), nextval('seq_behind'), nextval('seq_desc'), nextval('\"Odd Schema\".\"Seq \"\"Q\"\" é\"')")" = "1002|5001|-502|710"

"$driver" sequences "$SRC" "$DST" 'public|seq_ahead' >"$work/seq2" 2>&1
check "sequences: second run leaves it alone" \
	has "$work/seq2" "destination is ahead, left alone"

"$driver" task-sequences "$SRC" "$DST" 'public|withseq' >"$work/tseq" 2>&1
echo $? >"$work/tseq.rc"
sed 's/^/# /' "$work/tseq"
check "task sequences: exit 0" test "$(cat "$work/tseq.rc")" = 0
check "task sequences: identity sequence of the table" \
	has "$work/tseq" "sequence public.withseq_id_seq -> public.withseq_id_seq: source last_value 300 (called)"
check "task sequences: serial sequence of the table" \
	has "$work/tseq" "sequence public.withseq_s_seq -> public.withseq_s_seq"
check "task sequences: only the table's" \
	has "$work/tseq" "2 sequences, 2 synchronized"
check "task sequences: inserts on the destination do not collide" \
	test "$(dst_psql -Atc "INSERT INTO withseq (v) VALUES ('new') RETURNING id, s")" = "302|302"

"$driver" task-sequences "$SRC" "$DST" 'Odd Schema||renamed' >"$work/tseq2" 2>&1
check "task sequences: schema rule maps the schema" \
	has "$work/tseq2" "-> renamed.\"Seq \"\"Q\"\" é\": error: could not read it on the destination"

e2e_finish

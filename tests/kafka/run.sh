#!/usr/bin/env bash
#
# tests/kafka/run.sh
#	  End to end tests of the Kafka sink and pg_dts_consume: a throw-away
#	  source cluster (tools/pgcluster.sh: run as postgres, free port,
#	  wal_level logical, pg_dts loaded), librdkafka's mock cluster
#	  (build/mock_broker), the sink driven from pg_dts slots by
#	  build/kafka_driver (the sink's operations as sink.h describes them,
#	  the slot read through SQL and advanced to the durable LSN) and by
#	  pg_dts_ship --task itself, and what landed in Kafka read back with
#	  kcat, python3-avro (check_avro.py) and pg_dts_consume.
#
# Covers: every change arrives (counts against a test_decoding slot), the
# three partition policies (murmur2 recomputed in Python, and the Python
# murmur2 checked against librdkafka's own), per-table topics, the four
# compression codecs, DTS Avro decoded independently, SharePlex / Canal
# JSON valid, DDL, TRUNCATE and heartbeats; a broker down and injected
# request errors mid-stream lose nothing and keep per-partition order;
# SIGKILL of the producer mid-stream and a restart: every change at least
# once, duplicates only after the last durable LSN; a permanent delivery
# error stops the task without moving the durable LSN; config errors name
# the key and never print a password; pg_dts_consume with two groups, a
# restart resuming from its committed offset, heartbeats skipped,
# --start-time.
#
# Prints one line per check and "N passed, N failed"; exits 1 on failure.
# COUNTS_FILE, if set, receives one line "passed failed" (make test).
# Needs: build/kafka_driver, build/mock_broker, build/pg_dts_consume
# (make kafka-tools consumer), kcat, /usr/bin/python3 with python3-avro,
# the pg_dts extension installed.  KEEP_TMP=1 keeps the work directory.
#
set -uo pipefail
KEEP_TMP=${KEEP_TMP:-0}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1

DRIVER=$root/build/kafka_driver
MOCK=$root/build/mock_broker
CONSUME=$root/build/pg_dts_consume
PY=/usr/bin/python3
CHECK="$PY $here/kafka_check.py"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok $((passed + failed)) - $*"; }
fail() { failed=$((failed + 1)); echo "not ok $((passed + failed)) - $*"; }
# check DESCRIPTION CMD...: passes when CMD exits 0; shows its output
check()
{
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		pass "$desc${out:+: $out}"
	else
		fail "$desc${out:+: $out}"
	fi
}

for f in "$DRIVER" "$MOCK" "$CONSUME"; do
	if [ ! -x "$f" ]; then
		echo "kafka tests: $f missing (make kafka-tools consumer)" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
done
command -v kcat >/dev/null || { echo "kafka tests: kcat missing"; echo "0 passed, 1 failed"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pg_dts_kafka.XXXXXX")
chmod 755 "$work"
mock_pid=
driver_pid=
cleanup_all()
{
	[ -n "$driver_pid" ] && kill -9 "$driver_pid" 2>/dev/null
	[ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
	pgc_cleanup
	if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
# shellcheck source=tools/pgcluster.sh
. "$root/tools/pgcluster.sh"
pgc_setup "synchronous_commit = on" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
trap cleanup_all EXIT

conninfo="host=$PGC_SOCK port=$PGC_PORT dbname=postgres user=postgres"

# wait_for DESCRIPTION SECONDS CMD...: poll CMD every 0.1 s until it passes
wait_for()
{
	local desc=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "timed out waiting for $desc" >&2
	return 1
}

# ------------------------------------------------------------------
# The mock cluster
# ------------------------------------------------------------------
ctl=$work/mock.ctl
"$MOCK" -c "$ctl" -t cdc_p0:4 -t cdc_tbl:4 -t cdc_items:3 -t cdc_pk:6 \
	-t cdc_sp:3 -t cdc_ship:4 -t cdc_fault:6 -t cdc_kill:6 -t cdc_fatal:2 -t murmur:7 \
	-t cdc_float:2 \
	>"$work/bootstrap" 2>"$work/mock.log" &
mock_pid=$!
wait_for "the mock cluster" 10 test -s "$work/bootstrap" || exit 1
B=$(head -1 "$work/bootstrap")
# mock COMMAND: send a control command, wait until the cluster did it
mock()
{
	local n
	n=$(grep -c '^mock_broker: ' "$work/mock.log")
	echo "$*" >"$ctl"
	wait_for "mock_broker to do \"$*\"" 30 \
		bash -c '[ "$(grep -c "^mock_broker: " "$1")" -gt "$2" ]' _ "$work/mock.log" "$n"
}

# kc TOPIC: every message as "partition offset key headers" (tab separated)
kc() { kcat -C -b "$B" -t "$1" -e -q -f '%p\t%o\t%k\t%h\n' 2>/dev/null; }
# kr TOPIC: the same with the value (its length, 4 bytes, then the bytes),
# what kafka_check.py reads: a change's position may be in the value only
kr() { kcat -C -b "$B" -t "$1" -e -q -f '%p\t%o\t%k\t%h\t%R%s\n' 2>/dev/null; }
count() { kc "$1" | wc -l; }

# ------------------------------------------------------------------
# Our murmur2 is Kafka's: librdkafka's murmur2 partitioner agrees
# ------------------------------------------------------------------
for i in $(seq 1 200); do echo "key-$i:v$i"; done |
	kcat -P -b "$B" -t murmur -K : -X topic.partitioner=murmur2 2>/dev/null
murmur_ok()
{
	local bad
	bad=$(kcat -C -b "$B" -t murmur -e -q -f '%p\t%k\n' 2>/dev/null |
		"$PY" -c '
import sys
sys.path.insert(0, sys.argv[1])
from kafka_check import partition_of
bad = n = 0
for line in sys.stdin:
    p, k = line.rstrip("\n").split("\t")
    n += 1
    bad += partition_of(k.encode(), 7) != int(p)
print(n, bad)' "$here")
	[ "$bad" = "200 0" ] && echo "200 keys placed by librdkafka's murmur2 partitioner as kafka_check.py computes" || { echo "got $bad"; return 1; }
}
check "murmur2 matches librdkafka's" murmur_ok

# ------------------------------------------------------------------
# Source schema, slots (before the workload), workload
# ------------------------------------------------------------------
pgc_psql -o /dev/null <<'SQL'
CREATE EXTENSION pg_dts;
CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(12,2),
	placed timestamptz, note text);
CREATE TABLE items (order_id int, line int, sku text, qty int,
	PRIMARY KEY (order_id, line));
CREATE TABLE nokey (a int, b text);
ALTER TABLE nokey REPLICA IDENTITY FULL;
CREATE TABLE kill_t (id int PRIMARY KEY, v text);
CREATE TABLE fault_t (id int PRIMARY KEY, v text);
SELECT 1 FROM pg_create_logical_replication_slot('s_td', 'test_decoding');
SELECT 1 FROM pg_create_logical_replication_slot('s_p0', 'pg_dts');
SELECT 1 FROM pg_create_logical_replication_slot('s_tbl', 'pg_dts');
SELECT 1 FROM pg_create_logical_replication_slot('s_pk', 'pg_dts');
SELECT 1 FROM pg_create_logical_replication_slot('s_sp', 'pg_dts');
SQL
pgc_psql -o /dev/null <<'SQL'
SELECT pg_logical_emit_message(false, 'test', 'not transactional');
INSERT INTO orders SELECT i, 'cust' || (i % 17), i * 1.25,
	'2024-06-30 10:00:00+00'::timestamptz + i * interval '1 min', NULL
	FROM generate_series(1, 100) i;
INSERT INTO orders SELECT i, 'cust' || (i % 17), i * 1.25, now(), 'n'
	FROM generate_series(101, 300) i;
BEGIN;
INSERT INTO items SELECT o, l, 'sku-' || o || '-' || l, l
	FROM generate_series(1, 200) o, generate_series(1, 3) l;
UPDATE orders SET note = 'has items' WHERE id <= 50;
COMMIT;
UPDATE items SET qty = qty + 1 WHERE order_id BETWEEN 10 AND 19;
UPDATE items SET line = line + 1000 WHERE order_id = 1 AND line <= 2;
DELETE FROM orders WHERE id > 280;
INSERT INTO nokey SELECT i, 'b' || i FROM generate_series(1, 50) i;
UPDATE nokey SET b = b || '!' WHERE a <= 10;
DELETE FROM nokey WHERE a > 45;
CREATE TABLE ddl_t (a int);
ALTER TABLE ddl_t ADD COLUMN b int;
INSERT INTO ddl_t VALUES (1, 2);
TRUNCATE ddl_t;
INSERT INTO public.dts_postgres_heartbeat (slot_name, task_name)
	VALUES ('other_slot', 'other');
SQL

# expected DML changes of the user tables, from test_decoding
pgc_psql -Atc "SELECT data FROM pg_logical_slot_peek_changes('s_td', NULL, NULL)" >"$work/td.txt"
dml_of() { grep -cE "^table public\\.($1): (INSERT|UPDATE|DELETE)" "$work/td.txt"; }
n_orders_items_nokey=$(dml_of 'orders|items|nokey')
n_items=$(dml_of 'items')
n_ddl_t=$(dml_of 'ddl_t')
n_dml=$((n_orders_items_nokey + n_ddl_t))
echo "# workload: $n_dml DML changes ($n_items in items), 2 DDL statements, 1 TRUNCATE, 1 heartbeat"

# task TASKNAME SINKJSON: writes $work/TASKNAME.json
task()
{
	printf '{"name": "%s", "sink": %s}\n' "$1" "$2" >"$work/$1.json"
}
task p0 '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_p0", "format": "canal_json", "partition_policy": "partition0", "compression": "gzip"}'
task tbl '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_tbl", "partition_policy": "table", "compression": "snappy", "topic_per_table": {"public.items": "cdc_items"}, "lsn_headers": true}'
task pk '{"type": "kafka", "brokers": ["'"${B//,/\", \"}"'"], "topic": "cdc_pk", "format": "avro", "partition_policy": "primary_key", "kafka.linger.ms": 2}'
task sp '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_sp", "format": "shareplex_json", "partition_policy": "primary_key", "compression": "zstd"}'
# name mapping (the router): orders -> orders_m, its column total -> amount
sed -i 's|^{"name": "sp", |{"name": "sp", "objects": {"public": {"all": true, "tables": {"orders": {"name": "orders_m", "columns": {"id": {}, "customer": {}, "total": {"name": "amount"}, "placed": {}, "note": {}}}}}}, |' "$work/sp.json"

drive() # TASK SLOT [extra args]: run the driver until the slot is drained
{
	local t=$1 s=$2
	shift 2
	"$DRIVER" -d "$conninfo" -S "$s" --task "$work/$t.json" --until-idle "$@" 2>"$work/$t.log"
}
slot_lsn() { pgc_psql -Atc "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'"; }
wal_lsn() { pgc_psql -Atc "SELECT pg_current_wal_lsn()"; }

for t in p0 tbl pk sp; do
	check "task $t: driver ships the slot and exits 0" drive "$t" "s_$t"
done

# ------------------------------------------------------------------
# Everything arrived, where the policies say
# ------------------------------------------------------------------
expect_count() # DESC TOPIC N
{
	local got
	got=$(count "$2")
	[ "$got" -eq "$3" ] && echo "$got messages" || { echo "$got messages, expected $3"; return 1; }
}
# canal: DML + 2 DDL + TRUNCATE (no heartbeats)
check "canal_json/partition0/gzip: every change" expect_count x cdc_p0 $((n_dml + 3))
check "canal_json/partition0: all in partition 0" bash -c "$(declare -f kc kr); B='$B'; kr cdc_p0 | $CHECK partitions partition0 4"
# avro table policy, items mapped to their own topic
check "avro/table/snappy: every change but items, + DDL, TRUNCATE, heartbeat" expect_count x cdc_tbl $((n_dml - n_items + 4))
check "topic_per_table mapping: items in cdc_items" expect_count x cdc_items "$n_items"
check "table policy: partitions of cdc_tbl" bash -c "$(declare -f kc kr); B='$B'; kr cdc_tbl | $CHECK partitions table 4"
check "table policy: partitions of cdc_items" bash -c "$(declare -f kc kr); B='$B'; kr cdc_items | $CHECK partitions table 3"
table_spread()
{
	# one table, one partition
	local n
	n=$(kc cdc_tbl | awk -F'\t' '$3 == "postgres.public.orders" {print $1}' | sort -u | wc -l)
	[ "$n" -eq 1 ] && echo "all orders changes in one partition" || { echo "orders in $n partitions"; return 1; }
}
check "table policy: one table stays in one partition" table_spread
check "avro/primary_key/lz4: every change + DDL, TRUNCATE, heartbeat" expect_count x cdc_pk $((n_dml + 4))
check "primary_key policy: partitions of cdc_pk (murmur2 of the documented key)" bash -c "$(declare -f kc kr); B='$B'; kr cdc_pk | $CHECK partitions primary_key 6"
pk_keys()
{
	local k
	k=$(kc cdc_pk | cut -f3 | sort -u)
	grep -qx 'postgres.public.orders:42' <<<"$k" &&
		grep -qx 'postgres.public.items:1:1001' <<<"$k" &&
		grep -qx 'postgres.public.nokey' <<<"$k" &&
		grep -qx 'postgres' <<<"$k" &&
		echo "orders:42, items:1:1001 (new key of a key update), nokey (no key), postgres (DDL)" ||
		{ echo "keys not as documented"; return 1; }
}
check "primary_key policy: message keys as documented" pk_keys
no_key_p0()
{
	local bad
	bad=$(kc cdc_pk | awk -F'\t' '$3 == "postgres.public.nokey" && $1 != 0' | wc -l)
	[ "$bad" -eq 0 ] && echo "table without a key in partition 0" || { echo "$bad nokey messages outside partition 0"; return 1; }
}
check "primary_key policy: a table without a key goes to partition 0" no_key_p0
check "shareplex_json/zstd: every DML change (no DDL/heartbeat form)" expect_count x cdc_sp "$n_dml"
check "shareplex_json: partitions" bash -c "$(declare -f kc kr); B='$B'; kr cdc_sp | $CHECK partitions primary_key 3"
json_valid()
{
	kcat -C -b "$B" -t "$1" -e -q -f '%s\n' 2>/dev/null | "$PY" -c '
import json, sys
n = 0
for line in sys.stdin:
    json.loads(line); n += 1
print(n, "valid JSON messages")'
}
check "shareplex_json: every value is JSON" json_valid cdc_sp
mapped_names()
{
	local k v
	k=$(kc cdc_sp | cut -f3 | grep -c '^postgres\.public\.orders_m:')
	v=$(kcat -C -b "$B" -t cdc_sp -e -q -f '%s\n' 2>/dev/null | grep -c '"table":"public.orders_m".*"amount":"')
	[ "$k" -gt 0 ] && [ "$v" -gt 0 ] && ! kc cdc_sp | cut -f3 | grep -q '^postgres\.public\.orders:' &&
		echo "keys and records use public.orders_m and column amount ($k messages)" ||
		{ echo "keys $k, records $v"; return 1; }
}
check "name mapping: schema, table and column names at the sink" mapped_names
check "canal_json: every value is JSON" json_valid cdc_p0
headers_ok()
{
	local n
	n=$(kc cdc_tbl | grep -cv $'\tdts_lsn=[0-9A-F]*/[0-9A-F]*,dts_seq=[0-9]*$')
	[ "$n" -eq 0 ] && echo "every message has dts_lsn and dts_seq headers" || { echo "$n without"; return 1; }
}
check "lsn_headers true (avro): headers dts_lsn, dts_seq on every message" headers_ok
check "lsn_headers true (avro): the headers are the record's position" bash -c "$(declare -f kr); B='$B'; kr cdc_tbl | $CHECK positions with"
check "avro by default: no headers, the position in every record" bash -c "$(declare -f kr); B='$B'; kr cdc_pk | $CHECK positions without"
check "shareplex_json by default: no headers, the position in every record" bash -c "$(declare -f kr); B='$B'; kr cdc_sp | $CHECK positions without"
check "canal_json by default: headers dts_lsn, dts_seq (its record has no position)" bash -c "$(declare -f kr); B='$B'; kr cdc_p0 | $CHECK positions with"
slots_done()
{
	local w
	w=$(wal_lsn)
	for s in s_p0 s_tbl s_pk s_sp; do
		pgc_psql -Atc "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('$s', NULL, NULL, 'format', 'text')" | grep -qx 0 ||
			{ echo "slot $s still has changes"; return 1; }
	done
	echo "every slot confirmed past its last change"
}
check "durable LSN reached the end of every slot" slots_done

# Avro decoded by python3-avro against the schema
avro_decode()
{
	local schema=../shared/formats/dts_record.avsc
	[ -f "$schema" ] || schema=shipper/formats/dts_record.avsc
	kcat -C -b "$B" -t cdc_pk -e -q -f '%R%s' >"$work/pk.bin" 2>/dev/null
	"$PY" tests/kafka/check_avro.py "$schema" "$work/pk.bin" -v >"$work/pk.out" || return 1
	grep '^{' "$work/pk.out" >"$work/pk.jsonl"
	"$PY" - "$work/pk.jsonl" "$n_dml" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ops = {}
for r in recs:
    ops[r["operation"]] = ops.get(r["operation"], 0) + 1
dml = sum(ops.get(o, 0) for o in ("INSERT", "UPDATE", "DELETE"))
ddl = [r for r in recs if r["operation"] == "DDL"]
assert dml == int(sys.argv[2]), (dml, sys.argv[2])
assert ops.get("HEARTBEAT") == 1, ops
texts = [json.dumps(r["afterImages"]) for r in ddl]
assert any("CREATE TABLE ddl_t" in t for t in texts), texts
assert any("ALTER TABLE ddl_t ADD COLUMN b" in t for t in texts), texts
assert any("TRUNCATE TABLE public.ddl_t" in t for t in texts), texts
assert len(ddl) == 3, texts
o42 = [r for r in recs if r["objectName"] == "postgres.public.orders"
       and r["operation"] == "INSERT" and "42" in json.dumps(r["afterImages"][0])]
assert o42, "orders 42 not found"
print(len(recs), "records decoded:", ", ".join("%s %d" % kv for kv in sorted(ops.items())))
PY
}
check "DTS Avro: python3-avro decodes every record; ops, DDL text, TRUNCATE, heartbeat" avro_decode

# ------------------------------------------------------------------
# pg_dts_consume
# ------------------------------------------------------------------
# the mock cluster ignores LeaveGroup: a short session lets a restarted
# member of the same group in quickly
consume() { timeout 60 "$CONSUME" -b "$B" -X session.timeout.ms=6000 "$@" 2>>"$work/consume.log"; }
two_groups()
{
	consume -t cdc_pk -g g1 --from-beginning -e >"$work/g1.jsonl" &
	local p1=$!
	consume -t cdc_pk -g g2 --from-beginning -e >"$work/g2.jsonl" || return 1
	wait "$p1" || return 1
	local n1 n2
	n1=$(wc -l <"$work/g1.jsonl")
	n2=$(wc -l <"$work/g2.jsonl")
	[ "$n1" -eq $((n_dml + 3)) ] && [ "$n2" -eq "$n1" ] &&
		"$PY" -c '
import json, sys
for f in sys.argv[1:]:
    for l in open(f):
        r = json.loads(l)["record"]
        assert r["operation"] != "HEARTBEAT"
' "$work/g1.jsonl" "$work/g2.jsonl" &&
		echo "groups g1 and g2 read all $n1 records each, heartbeat skipped" ||
		{ echo "g1 $n1, g2 $n2 lines, expected $((n_dml + 3))"; return 1; }
}
check "pg_dts_consume: two groups read the topic independently" two_groups
readable()
{
	"$PY" - "$work/g1.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = [x["record"] for x in rows if x["key"] == "postgres.public.orders:42"]
ins = [x for x in r if x["operation"] == "INSERT"][0]
assert ins["after"]["id"] == "42" and ins["after"]["total"] == "52.50", ins["after"]
assert ins["after"]["placed"] == "2024-06-30 10:42:00 +00:00", ins["after"]
assert ins["after"]["note"] is None
upd = [x for x in r if x["operation"] == "UPDATE"][0]
assert upd["after"]["note"] == "has items" and upd["before"] == {"id": "42"}, upd
ddl = [x["record"]["ddl"] for x in rows if x["record"]["operation"] == "DDL"]
assert any(d.startswith("CREATE TABLE ddl_t") for d in ddl), ddl
# no headers on cdc_pk: the position comes from the record
assert all(x["dts_lsn"] == x["record"]["safeSourcePosition"] and
           x["dts_seq"] == x["record"]["tags"]["dts_seq"] for x in rows), rows[0]
print("values, before/after, DDL text and dts_lsn/dts_seq (from the record) readable")
PY
}
check "pg_dts_consume: readable JSON lines" readable
consume_headers()
{
	consume -t cdc_tbl -g g_hdr --from-beginning -e >"$work/hdr.jsonl" || return 1
	kc cdc_tbl >"$work/hdr.kcat"
	"$PY" - "$work/hdr.jsonl" "$work/hdr.kcat" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
hdr = {}
for l in open(sys.argv[2]):
    p, o, k, h = l.rstrip("\n").split("\t")
    hdr[(int(p), int(o))] = h
assert rows and all(x["dts_lsn"] == x["record"]["safeSourcePosition"] and
                    x["dts_seq"] == x["record"]["tags"]["dts_seq"] for x in rows), rows[0]
for x in rows:
    h = hdr[(x["partition"], x["offset"])]
    assert h == "dts_lsn=%s,dts_seq=%s" % (x["dts_lsn"], x["dts_seq"]), (h, x)
print("%d records: dts_lsn/dts_seq are the headers kcat shows" % len(rows))
PY
}
check "pg_dts_consume: dts_lsn/dts_seq from the headers (lsn_headers true)" consume_headers
hb_on()
{
	local n
	n=$(consume -t cdc_pk -g g_hb --from-beginning -e --heartbeats | grep -c '"operation":"HEARTBEAT"')
	[ "$n" -eq 1 ] && echo "--heartbeats shows the heartbeat" || { echo "$n heartbeats"; return 1; }
}
check "pg_dts_consume --heartbeats" hb_on
resume()
{
	consume -t cdc_pk -g g3 --from-beginning -c 100 -f "$work/g3.jsonl" || return 1
	consume -t cdc_pk -g g3 --from-beginning -e -f "$work/g3.jsonl" || return 1
	"$PY" - "$work/g3.jsonl" "$work/g1.jsonl" <<'PY'
import json, sys
a = [(x["partition"], x["offset"]) for x in map(json.loads, open(sys.argv[1]))]
b = [(x["partition"], x["offset"]) for x in map(json.loads, open(sys.argv[2]))]
assert len(a) == len(set(a)), "records read twice: %d lines, %d distinct" % (len(a), len(set(a)))
assert set(a) == set(b), "missing %d" % len(set(b) - set(a))
print("first run 100 records, restart resumed at the committed offsets: %d records once each" % len(a))
PY
}
check "pg_dts_consume: restart resumes from the committed offset" resume
start_time()
{
	local future=$(( $(date +%s) + 3600 )) n
	n=$(consume -t cdc_pk -g g_future --start-time "$future" -e | wc -l)
	[ "$n" -eq 0 ] || { echo "$n records after a start time an hour ahead"; return 1; }
	n=$(consume -t cdc_pk -g g_past --start-time "2000-01-01 00:00:00" -e | wc -l)
	[ "$n" -eq $((n_dml + 3)) ] && echo "an hour ahead: 0 records; 2000-01-01: all $n" || { echo "$n records from 2000"; return 1; }
}
check "pg_dts_consume --start-time" start_time
shareplex_consume()
{
	local n
	n=$(consume -t cdc_sp -g g_sp --format shareplex_json --from-beginning -e |
		"$PY" -c '
import json, sys
n = 0
for l in sys.stdin:
    x = json.loads(l); r = x["record"]; assert r["meta"]["op"] in ("ins", "upd", "del"); n += 1
    lsn = int(r["meta"]["scn"])
    assert x["dts_lsn"] == "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF), x
    assert x["dts_seq"] == str(r["meta"]["seq"]), x
print(n)')
	[ "$n" -eq "$n_dml" ] && echo "$n SharePlex records, dts_lsn/dts_seq from meta.scn/seq" || { echo "$n records, expected $n_dml"; return 1; }
}
check "pg_dts_consume --format shareplex_json" shareplex_consume

# ------------------------------------------------------------------
# Faults: a broker down and request errors mid-stream
# ------------------------------------------------------------------
pgc_psql -o /dev/null -c "SELECT 1 FROM pg_create_logical_replication_slot('s_fault', 'pg_dts')"
for ((i = 0; i < 40; i++)); do
	echo "INSERT INTO fault_t SELECT g, 'v' || g FROM generate_series($((i * 500 + 1)), $((i * 500 + 500))) g;"
done | pgc_psql -o /dev/null
echo "UPDATE fault_t SET v = v || 'u' WHERE id % 7 = 0;" | pgc_psql -o /dev/null
fault_end=$(wal_lsn)
task fault '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_fault", "partition_policy": "primary_key", "kafka.retry.backoff.ms": 50}'
# (the mock cluster picks leaders at random: make broker 1 lead one)
mock leader cdc_fault 0 1
check "mock cluster: broker 1 leads cdc_fault partition 0 (the one set down)" \
	grep -qF 'broker 1 leads "cdc_fault" partition 0' "$work/mock.log"
mock down 1
mock errors 0 8 19		# Produce: NOT_ENOUGH_REPLICAS, retriable
"$DRIVER" -d "$conninfo" -S s_fault --task "$work/fault.json" --until-idle 2>"$work/fault.log" &
driver_pid=$!
# part of the stream is delivered while broker 1 is down; the slot must
# not be confirmed past what is stuck
# (kcat -e would wait for the partitions of broker 1: read 1000 and stop)
timeout 30 kcat -C -b "$B" -t cdc_fault -o beginning -c 1000 -q -f 'x\n' >/dev/null 2>&1
stuck_ok()
{
	local s
	sleep 1		# give deliveries time: the ones to broker 1 cannot come
	s=$(slot_lsn s_fault)
	pgc_psql -Atc "SELECT '$s'::pg_lsn < '$fault_end'::pg_lsn" | grep -qx t &&
		echo "slot confirmed at $s < end $fault_end while broker 1 is down" ||
		{ echo "slot at $s, end $fault_end"; return 1; }
}
check "broker down: durable LSN stays behind undelivered messages" stuck_ok
mock up 1
wait "$driver_pid"
rc=$?
driver_pid=
check "broker back: driver finishes and exits 0" test "$rc" -eq 0
n_fault=$((20000 + 20000 / 7))
check "broker down + request errors: every change delivered" bash -c "$(declare -f kc kr); B='$B'; [ \$(kc cdc_fault | wc -l) -ge $n_fault ] && kr cdc_fault | $CHECK keys postgres.public.fault_t: 1 20000"
check "broker down + request errors: per-partition order" bash -c "$(declare -f kc kr); B='$B'; kr cdc_fault | $CHECK order"
check "broker down + request errors: no duplicates (idempotent producer)" bash -c "$(declare -f kc kr); B='$B'; kr cdc_fault | $CHECK dups 0/0"
check "broker down: partitions still by policy" bash -c "$(declare -f kc kr); B='$B'; kr cdc_fault | $CHECK partitions primary_key 6"

# ------------------------------------------------------------------
# SIGKILL of the producer mid-stream, then a restart
# ------------------------------------------------------------------
pgc_psql -o /dev/null -c "SELECT 1 FROM pg_create_logical_replication_slot('s_kill', 'pg_dts')"
for ((i = 0; i < 60; i++)); do
	echo "INSERT INTO kill_t SELECT g, 'v' || g FROM generate_series($((i * 500 + 1)), $((i * 500 + 500))) g;"
done | pgc_psql -o /dev/null
task kill '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_kill", "partition_policy": "primary_key"}'
for b in 1 2 3; do mock rtt $b 300; done	# slow deliveries: a backlog in flight
"$DRIVER" -d "$conninfo" -S s_kill --task "$work/kill.json" 2>"$work/kill1.log" &
driver_pid=$!
start_lsn=$(slot_lsn s_kill)
wait_for "a first durable transaction" 30 bash -c "[ \"\$(PGHOST='$PGC_SOCK' PGPORT='$PGC_PORT' psql -X -U postgres -d postgres -Atc \"SELECT confirmed_flush_lsn > '$start_lsn' FROM pg_replication_slots WHERE slot_name = 's_kill'\")\" = t ]"
{ kill -9 "$driver_pid"; wait "$driver_pid"; } 2>/dev/null
wait "$driver_pid" 2>/dev/null
driver_pid=
durable=$(slot_lsn s_kill)
before=$(count cdc_kill)
for b in 1 2 3; do mock rtt $b 0; done
echo "# killed the producer: slot confirmed at $durable, $before messages in Kafka"
check "restart after SIGKILL: driver finishes" drive kill s_kill
check "after SIGKILL + restart: every change present" bash -c "$(declare -f kc kr); B='$B'; kr cdc_kill | $CHECK keys postgres.public.kill_t: 1 30000"
check "after SIGKILL + restart: duplicates only after the durable LSN $durable" bash -c "$(declare -f kc kr); B='$B'; kr cdc_kill | $CHECK dups $durable"
check "after SIGKILL + restart: per-partition order (replays aside)" bash -c "$(declare -f kc kr); B='$B'; kr cdc_kill | $CHECK order"

# ------------------------------------------------------------------
# Float texts: the sink renders float4 and float8 from their binary
# values; SharePlex JSON carries them as float4out/float8out write them
# (extra_float_digits 3): every power of two, integers whose shortest
# digits lie halfway to the next value, and random values
# ------------------------------------------------------------------
pgc_psql -o /dev/null -c "CREATE TABLE float_t (id int PRIMARY KEY, f4 real, f8 double precision)" \
	-c "SELECT 1 FROM pg_create_logical_replication_slot('s_float', 'pg_dts')"
pgc_psql -o /dev/null <<'SQL'
SELECT setseed(0.25);
INSERT INTO float_t SELECT k + 1100, CASE WHEN k BETWEEN -149 AND 127 THEN power(2::float8, k)::real END,
	power(2::float8, k) FROM generate_series(-1074, 1023) k;
INSERT INTO float_t SELECT 3000 + i,
	((floor(random() * 8388608) + 8388608) * power(2::float8, 1 + i % 17))::real,
	-((floor(random() * 4503599627370496) + 4503599627370496) * power(2::float8, 2 + i % 17))
  FROM generate_series(1, 2000) i;
INSERT INTO float_t SELECT 6000 + i, (random() * power(10::float8, random() * 70 - 35))::real,
	random() * power(10::float8, random() * 600 - 300)
  FROM generate_series(1, 2000) i;
SQL
task float '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_float", "format": "shareplex_json"}'
float_texts()
{
	drive float s_float || { echo "driver failed: $(tail -3 "$work/float.log")"; return 1; }
	pgc_psql -Atc "SET extra_float_digits = 3; SELECT id, coalesce(f4::text, 'null'), f8::text FROM float_t" >"$work/float_pg.txt"
	kcat -C -b "$B" -t cdc_float -e -q -f '%s\n' 2>/dev/null | "$PY" -c '
import json, sys
want = {}
for line in open(sys.argv[1]):
    i, f4, f8 = line.rstrip("\n").split("|")
    want[i] = (None if f4 == "null" else f4, f8)
got, bad = 0, []
for line in sys.stdin:
    d = json.loads(line)["data"]
    have = (d["f4"], d["f8"])
    if have != want.get(str(d["id"])):
        bad.append("id %s: %s, PostgreSQL %s" % (d["id"], have, want.get(str(d["id"]))))
    got += 1
if bad or got != len(want):
    print("%d of %d rows; %d differ: %s" % (got, len(want), len(bad), "; ".join(bad[:5])))
    sys.exit(1)
print("%d rows, %d float texts as PostgreSQL writes them" % (got, 2 * got))' "$work/float_pg.txt"
}
check "shareplex_json: float4/float8 texts exactly as PostgreSQL writes them" float_texts

# ------------------------------------------------------------------
# Configuration errors
# ------------------------------------------------------------------
cfg_err() # DESC SINKJSON PATTERN: the driver fails naming PATTERN, no secret
{
	local out
	task cfg "$1"
	out=$("$DRIVER" -d "$conninfo" -S s_pk --task "$work/cfg.json" --until-idle 2>&1) && { echo "accepted"; return 1; }
	grep -q -- "$2" <<<"$out" || { echo "message lacks $2: $out"; return 1; }
	grep -q "s3cr3t" <<<"$out" && { echo "password printed: $out"; return 1; }
	echo "$(head -1 <<<"$out")"
}
check "unknown key is named as sink.<key>" cfg_err '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_pk", "partiton_policy": "table", "kafka.sasl.password": "s3cr3t"}' 'sink.partiton_policy'
check "unknown librdkafka property named, password not printed" cfg_err '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_pk", "kafka.sasl.password": "s3cr3t", "kafka.no.such.property": "1"}' 'sink.kafka.no.such.property'
check "bad value is named" cfg_err '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_pk", "compression": "brotli"}' 'sink.compression'
check "lsn_headers must be a boolean" cfg_err '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_pk", "lsn_headers": "yes"}' 'sink.lsn_headers: expected true or false'
check "SASL SCRAM-SHA-256 and TLS settings are accepted" bash -c "
	printf '{\"name\": \"cfg2\", \"sink\": {\"type\": \"kafka\", \"brokers\": \"$B\", \"topic\": \"cdc_pk\", \"kafka.security.protocol\": \"sasl_ssl\", \"kafka.sasl.mechanism\": \"SCRAM-SHA-256\", \"kafka.sasl.username\": \"u\", \"kafka.sasl.password\": \"s3cr3t\", \"kafka.ssl.ca.location\": \"/etc/ssl/certs/ca-certificates.crt\"}}' >'$work/cfg2.json'
	out=\$(timeout 3 '$DRIVER' -v -d '$conninfo' -S s_pk --task '$work/cfg2.json' --until-idle 2>&1)
	! grep -q 'sink\\.kafka\\.\\|invalid Kafka setting' <<<\"\$out\" && ! grep -q s3cr3t <<<\"\$out\" && echo 'parsed and passed to librdkafka; password never printed'"

# ------------------------------------------------------------------
# pg_dts_ship itself with the Kafka sink (streaming replication)
# ------------------------------------------------------------------
SHIP=$root/build/pg_dts_ship
pgc_psql -o /dev/null -c "CREATE TABLE ship_t (id int PRIMARY KEY, v text)"
task ship '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_ship", "partition_policy": "primary_key"}'
ship_run()
{
	local e n
	"$SHIP" -d "$conninfo" --task "$work/ship.json" --create-slot >"$work/ship.log" 2>&1 || { tail -3 "$work/ship.log"; return 1; }
	pgc_psql -o /dev/null -c "INSERT INTO ship_t SELECT i, 'v' || i FROM generate_series(1, 3000) i" -c "UPDATE ship_t SET v = 'u' WHERE id <= 100"
	e=$(wal_lsn)
	timeout 60 "$SHIP" -d "$conninfo" --task "$work/ship.json" --start -E "$e" >>"$work/ship.log" 2>&1 || { tail -3 "$work/ship.log"; return 1; }
	n=$(kc cdc_ship | cut -f3 | grep -c '^postgres\.public\.ship_t:')
	[ "$n" -eq 3100 ] || { echo "$n messages of ship_t, expected 3100"; return 1; }
	kr cdc_ship | $CHECK partitions primary_key 4 >/dev/null || { echo "partitions"; return 1; }
	echo "pg_dts_ship --task (sink kafka) --start -E: 3100 changes, partitions by policy, slot confirmed at $(slot_lsn dts_sync_ship)"
}
if [ -x "$SHIP" ]; then
	check "pg_dts_ship with the Kafka sink" ship_run
fi

# ------------------------------------------------------------------
# A permanent delivery error stops the task; durable LSN does not move
# ------------------------------------------------------------------
pgc_psql -o /dev/null <<'SQL'
SELECT 1 FROM pg_create_logical_replication_slot('s_fatal', 'pg_dts');
INSERT INTO orders VALUES (1001, 'fatal', 1, now(), NULL);
SQL
task fatal '{"type": "kafka", "brokers": "'"$B"'", "topic": "cdc_fatal"}'
fatal_lsn=$(slot_lsn s_fatal)
mock errors 0 200 10		# Produce: MSG_SIZE_TOO_LARGE, not retriable
fatal_stop()
{
	local out rc
	out=$(timeout 60 "$DRIVER" -d "$conninfo" -S s_fatal --task "$work/fatal.json" --until-idle 2>&1)
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { echo "exit $rc: $out"; return 1; }
	grep -q "could not deliver a message to topic \"cdc_fatal\"" <<<"$out" || { echo "$out"; return 1; }
	[ "$(slot_lsn s_fatal)" = "$fatal_lsn" ] || { echo "slot moved"; return 1; }
	echo "exit $rc, \"$(grep -o 'could not deliver[^;]*' <<<"$out" | head -1)\", slot still at $fatal_lsn"
}
check "permanent delivery error: clear message, non-zero exit, nothing confirmed" fatal_stop

echo "$passed passed, $failed failed"
if [ -n "${COUNTS_FILE:-}" ]; then
	echo "$passed $failed" >"$COUNTS_FILE"
fi
[ "$failed" -eq 0 ]

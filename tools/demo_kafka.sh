#!/usr/bin/env bash
#
# tools/demo_kafka.sh
#	  Show changes flowing into Kafka and back out: a throw-away source
#	  cluster, librdkafka's mock Kafka cluster (build/mock_broker), a small
#	  workload shipped by the Kafka sink (DTS Avro records, partitioned by
#	  primary key), what landed in each partition (kcat), and the same
#	  records read back by pg_dts_consume in two consumer groups.
#
# Needs pg_dts installed and build/mock_broker, build/kafka_driver,
# build/pg_dts_consume (make kafka-tools consumer), kcat.  The sink is
# driven by build/kafka_driver, which reads the slot the way pg_dts_ship
# does, until pg_dts_ship's main loop selects the Kafka sink
# (pg_dts_ship --task task.json --start with "sink": {"type": "kafka"}).
# The cluster runs as "postgres" in a temp directory on a free port and is
# removed on exit; PGC_KEEP=1 keeps it.
#
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=tools/pgcluster.sh
. "$here/pgcluster.sh"

build=$root/build
for f in mock_broker kafka_driver pg_dts_consume; do
	[ -x "$build/$f" ] || { echo "demo: $build/$f missing (make kafka-tools consumer)" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "demo: kcat missing (apt-get install kcat)" >&2; exit 1; }

work=$(mktemp -d /tmp/pg_dts_kdemo.XXXXXX)
mock_pid=
finish() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null; rm -rf "$work"; pgc_cleanup; }

# shellcheck disable=SC2119
pgc_setup
trap finish EXIT

echo
echo "== a Kafka cluster: librdkafka's mock cluster, 3 brokers, topic shop_cdc with 3 partitions"
"$build/mock_broker" -t shop_cdc:3 >"$work/bootstrap" 2>"$work/mock.log" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
B=$(head -1 "$work/bootstrap")
echo "bootstrap servers: $B"

pgc_psql -q <<'SQL'
CREATE EXTENSION pg_dts;
CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(10,2),
	placed timestamptz DEFAULT '2024-06-30 10:00:00+00');
SELECT FROM pg_create_logical_replication_slot('dts_sync_shop', 'pg_dts');
SQL

echo
echo "== a workload: inserts, an update, a delete, DDL"
pgc_psql -q -e <<'SQL'
INSERT INTO orders (id, customer, total) VALUES (1, 'ada', 10.50), (2, 'bob', 99.99), (3, 'cy', 5);
UPDATE orders SET total = total + 1 WHERE id = 2;
DELETE FROM orders WHERE id = 3;
ALTER TABLE orders ADD COLUMN note text;
INSERT INTO orders (id, customer, total, note) VALUES (4, 'dee', 42, 'gift');
SQL

cat >"$work/task.json" <<EOF
{"name": "shop",
 "sink": {"type": "kafka", "brokers": "$B", "topic": "shop_cdc",
          "format": "avro", "partition_policy": "primary_key"}}
EOF
echo
echo "== the Kafka sink ships the slot (task file: sink type kafka, DTS Avro, primary_key)"
cat "$work/task.json"
"$build/kafka_driver" -d "host=$PGC_SOCK port=$PGC_PORT dbname=postgres user=postgres" \
	-S dts_sync_shop --task "$work/task.json" --until-idle
pgc_psql -Atc "SELECT 'slot confirmed up to ' || confirmed_flush_lsn || ' (every message acknowledged by Kafka)' FROM pg_replication_slots"

echo
echo "== in Kafka: partition, key (database.schema.table:primary key)"
kcat -C -b "$B" -t shop_cdc -e -q -f 'partition %p  offset %o  key %k\n' | sort

echo
echo "== read back by pg_dts_consume, consumer group \"audit\" (partition@offset, position: commit LSN:sequence)"
"$build/pg_dts_consume" -b "$B" -t shop_cdc -g audit --from-beginning -e \
	-X session.timeout.ms=6000 | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    r = m["record"]
    what = r.get("ddl") or "before %s  after %s" % (json.dumps(r["before"]), json.dumps(r["after"]))
    print("p%d@%d %s:%s %-6s %-22s %s" % (m["partition"], m["offset"], m["dts_lsn"], m["dts_seq"], r["operation"], r["objectName"], what))'

echo
echo "== a second group reads the same topic independently (first line of each partition)"
"$build/pg_dts_consume" -b "$B" -t shop_cdc -g billing --from-beginning -e \
	-X session.timeout.ms=6000 | python3 -c '
import json, sys
seen = set()
n = 0
for line in sys.stdin:
    m = json.loads(line); n += 1
    if m["partition"] not in seen:
        seen.add(m["partition"])
        print(line.rstrip()[:160] + " ...")
print("group billing: %d records" % n)'
echo
echo "demo: done (docs/kafka.md, section Sink, has the details)"

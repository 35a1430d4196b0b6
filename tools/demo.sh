#!/usr/bin/env bash
#
# tools/demo.sh
#	  Show pg_dts at work: a throw-away source cluster, the extension, and
#	  pg_dts_ship --create-slot --start -f - shipping the changes of a small
#	  workload as JSON lines while it runs, then a clean stop (SIGINT).
#	  Then the same changes as frames, read in psql through dts.frames().
#	  Needs pg_dts and pg_dts_ship installed ("make demo" does it).
#
# The cluster (tools/pgcluster.sh) runs as "postgres" in a temp directory
# on a free port and is removed on exit; PGC_KEEP=1 keeps it.
#
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/pgcluster.sh
. "$here/pgcluster.sh"

bindir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)

# shellcheck disable=SC2119
pgc_setup

pgc_psql -q <<'SQL'
CREATE EXTENSION pg_dts;

-- A table with a few odd columns: a quoted mixed-case name, an array,
-- numeric, jsonb, bytea, uuid, a timestamp, and one value big enough to
-- be TOASTed (so an UPDATE that does not touch it shows "unchanged").
CREATE TABLE public."Demo Items" (
	id			bigint PRIMARY KEY,
	"Label"		text,
	price		numeric(10,2),
	tags		text[],
	doc			jsonb,
	seen		timestamptz,
	raw			bytea,
	uid			uuid,
	essay		text
);
ALTER TABLE public."Demo Items" ALTER COLUMN essay SET STORAGE EXTERNAL;

SELECT 'created' AS slot
  FROM pg_create_logical_replication_slot('demo', 'pg_dts');
SQL

conninfo="host=$PGC_SOCK port=$PGC_PORT dbname=postgres user=postgres"
echo "==== pg_dts_ship -d '$conninfo' --task-name demo --create-slot --start -f -"
echo "==== (JSON lines as the workload runs; long strings shortened here for display)"
"$bindir/pg_dts_ship" -d "$conninfo" --task-name demo --create-slot --start \
	-f - -F 0 -s 1 2>"$PGC_DIR/ship.log" \
	> >(sed -E 's/"([^"]{60})[^"]{10,}"/"\1..."/g') &
ship_pid=$!
# wait (polling, 30 s at most) until the shipper's slot streams
for _ in $(seq 1 300); do
	active=$(pgc_psql -Atc "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dts_sync_demo' AND active")
	[ "$active" = 1 ] && break
	sleep 0.1
done
[ "$active" = 1 ] || { echo "demo: pg_dts_ship did not start:"; cat "$PGC_DIR/ship.log"; exit 1; }

pgc_psql -q -o /dev/null <<'SQL'
BEGIN;
INSERT INTO public."Demo Items" VALUES
	(1, 'first', 9.99, '{red,"with space"}', '{"a": 1, "b": [true, null]}',
	 '2024-02-29 12:34:56.789+00', '\xdeadbeef',
	 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', repeat('lorem ipsum ', 300)),
	(2, NULL, -0.50, '{}', 'null', NULL, '\x', NULL, 'short'),
	(3, E'tab\there, quote '' and ünïcödé', 12345678.90, NULL, '{}', 'infinity',
	 NULL, NULL, NULL);
COMMIT;

BEGIN;
UPDATE public."Demo Items" SET price = price * 2, "Label" = 'first, doubled'
 WHERE id = 1;
UPDATE public."Demo Items" SET id = 20 WHERE id = 2;
SELECT 'sent' AS message
  FROM pg_logical_emit_message(true, 'demo', 'a transactional message');
COMMIT;

DELETE FROM public."Demo Items" WHERE id = 3;
SQL

# wait until the shipper has confirmed everything, then stop it cleanly
target=$(pgc_psql -Atc "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 300); do
	done_=$(pgc_psql -Atc "SELECT confirmed_flush_lsn >= '$target' FROM pg_replication_slots WHERE slot_name = 'dts_sync_demo'")
	[ "$done_" = t ] && break
	sleep 0.1
done
kill -INT "$ship_pid"
if wait "$ship_pid"; then
	echo "==== pg_dts_ship stopped cleanly (exit 0) after confirming $(pgc_psql -Atc "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'dts_sync_demo'")"
else
	echo "demo: pg_dts_ship failed:"; cat "$PGC_DIR/ship.log"; exit 1
fi
pgc_psql -q -c "SELECT pg_drop_replication_slot('dts_sync_demo')"

echo
echo "==== the same changes as frames in slot 'demo' (dts.frames over pg_logical_slot_peek_binary_changes)"
echo "==== (strings longer than 70 characters are shortened here for display)"
pgc_psql -At <<'SQL'
SELECT regexp_replace(jsonb_pretty(f), '"([^"]{60})[^"]{10,}"', '"\1..."', 'g')
  FROM pg_logical_slot_peek_binary_changes('demo', NULL, NULL) p,
	   dts.frames(p.data) f;
SQL

echo
echo "==== messages and sizes"
pgc_psql <<'SQL'
SELECT count(*) AS messages, sum(length(data)) AS bytes
  FROM pg_logical_slot_peek_binary_changes('demo', NULL, NULL);
SELECT pg_drop_replication_slot('demo');
SQL

echo
echo "demo: done (slot dropped, cluster removed)"

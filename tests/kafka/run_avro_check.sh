#!/usr/bin/env bash
#
# tests/kafka/run_avro_check.sh
#	  Independent decoding of our DTS Avro records: builds
#	  tests/unit/test_kafka_formats.c, runs it with DTS_AVRO_DUMP so that it
#	  writes every Avro record it makes (the types of
#	  tests/regress/sql/plugin_types.sql, updates, deletes, DDL, heartbeats,
#	  odd identifiers) with their inputs, and checks them with
#	  tests/kafka/check_avro.py (python3-avro) against the public schema
#	  ../shared/formats/dts_record.avsc (else our copy in shipper/formats).
#
# Prints "avro-check: passed" or "avro-check: FAILED" and exits 0 / 1.
# Environment: KEEP_TMP=1 keeps the work directory (records.bin and its
# manifest); CC (default cc).
#
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/avro_check.XXXXXX")
cleanup() { [ "${KEEP_TMP:-}" = 1 ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

# a python that has python3-avro (Debian's lives in /usr/bin/python3)
py=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import avro.io, avro.schema' 2>/dev/null; then
		py=$p
		break
	fi
done
if [ -z "$py" ]; then
	echo "avro-check: FAILED: no python3 with the avro module (apt-get install python3-avro)"
	exit 1
fi

schema=../shared/formats/dts_record.avsc
[ -f "$schema" ] || schema=shipper/formats/dts_record.avsc

make -s -f shipper/formats/Makefile.inc BUILD="$work" "$work/gen/dts_record_avsc.c" || exit 1
${CC:-cc} -std=gnu99 -g -O2 -Wall -Wextra -Werror -DFRONTEND -Iinclude -Ishipper \
	$(pkg-config --cflags avro-c jansson check) -o "$work/test_kafka_formats" \
	tests/unit/test_kafka_formats.c shipper/formats/record.c \
	shipper/formats/dts_avro.c shipper/formats/shareplex_json.c \
	shipper/formats/canal_json.c "$work/gen/dts_record_avsc.c" \
	common/frame_read.c common/frame_write.c common/crc32c.c \
	$(pkg-config --libs avro-c jansson check) -lm || { echo "avro-check: FAILED (build)"; exit 1; }

if ! DTS_AVRO_DUMP="$work/records.bin" "$work/test_kafka_formats"; then
	echo "avro-check: FAILED (unit test)"
	exit 1
fi
if "$py" "$here/check_avro.py" "$schema" "$work/records.bin" \
	"$work/records.bin.manifest.jsonl"; then
	echo "avro-check: passed"
	exit 0
fi
echo "avro-check: FAILED"
exit 1

#!/usr/bin/env bash
#
# bench/workload.sh
#	  The change workload of the decode, ship, pgsync and kafka benchmarks
#	  (and bench/kafka/profile.sh): sourced, it defines bench_workload_sql,
#	  which prints the SQL.
#
#	bench_workload_sql ROWS UPDATES DELETES BATCH
#		ROWS inserts into table bench, then UPDATES updates of the first
#		rows and DELETES deletes of the last ones, BATCH rows per statement
#		(one transaction each).  Table:
#		bench (id bigint PRIMARY KEY, a int, b text, c timestamptz,
#			   d numeric(12,2), e jsonb)
#
bench_workload_sql()
{
	local rows=$1 updates=$2 deletes=$3 batch=$4 lo hi first

	for ((lo = 1; lo <= rows; lo += batch)); do
		hi=$((lo + batch - 1)); [ $hi -gt "$rows" ] && hi=$rows
		echo "INSERT INTO bench SELECT i, i, md5(i::text), now() + i * interval '1 second', (i % 100000) / 100.0, jsonb_build_object('k', i, 'tag', 'row' || i) FROM generate_series($lo, $hi) i;"
	done
	for ((lo = 1; lo <= updates; lo += batch)); do
		hi=$((lo + batch - 1)); [ $hi -gt "$updates" ] && hi=$updates
		echo "UPDATE bench SET a = a + 1, b = b || 'x' WHERE id BETWEEN $lo AND $hi;"
	done
	first=$((rows - deletes + 1))
	for ((lo = first; lo <= rows; lo += batch)); do
		hi=$((lo + batch - 1)); [ $hi -gt "$rows" ] && hi=$rows
		echo "DELETE FROM bench WHERE id BETWEEN $lo AND $hi;"
	done
}

#!/usr/bin/env bash
#
# tests/tap/run.sh
#	  Run the TAP suites (tests/tap/t/*.pl, PostgreSQL::Test::Cluster) with
#	  prove, against the INSTALLED pg_dts extension and pg_dts_ship
#	  ("make install" first).
#
# The tests run as the OS user "postgres" when we are root (initdb and
# postgres refuse root), from a private copy of this directory that postgres
# owns.  PostgreSQL's own TAP modules come from the server's PGXS tree
# (postgresql-server-dev-15; they need libipc-run-perl).  Every cluster
# picks its own free port and socket directory: the system cluster is
# never touched.
#
# Environment:
#	PG_CONFIG	 pg_config of the server to test (default: PostgreSQL 15's)
#	COUNTS_FILE	 if set, receives one line "passed failed" (assertions)
#	PROVE_JOBS	 test files run in parallel (default 2)
#	PROVE_TESTS	 test files to run, relative to tests/tap (default t/*.pl)
#	PG_DTS_SHIP	 the pg_dts_ship binary to test (default: the installed one
#				 in the server's bindir, else build/pg_dts_ship of this
#				 tree); without one the shipper tests are skipped
#	KEEP_TMP=1	 keep the temporary directory (tmp_check/log has each
#				 test's log and its clusters' server logs)
#
# On failure the tail of every log under tmp_check/log is printed.
#
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
osuser=postgres

write_counts()
{
	echo "tap: $1 passed, $2 failed"
	if [ -n "${COUNTS_FILE:-}" ]; then
		echo "$1 $2" >"$COUNTS_FILE"
	fi
}

if ! bindir=$("$PG_CONFIG" --bindir 2>/dev/null); then
	echo "tap: $PG_CONFIG not found" >&2
	write_counts 0 1
	exit 1
fi
pgxs=$("$PG_CONFIG" --pgxs)
pgxs_src=$(cd "$(dirname "$pgxs")/.." && pwd)
perl_lib=$pgxs_src/test/perl
pg_regress=$pgxs_src/test/regress/pg_regress

for need in "$perl_lib/PostgreSQL/Test/Cluster.pm" "$pg_regress"; do
	if [ ! -e "$need" ]; then
		echo "tap: $need not found (postgresql-server-dev-15?)" >&2
		write_counts 0 1
		exit 1
	fi
done
if ! perl -MIPC::Run -e 1 2>/dev/null; then
	echo "tap: perl module IPC::Run not found (libipc-run-perl)" >&2
	write_counts 0 1
	exit 1
fi

cd "$here" || exit 1
if [ -n "${PROVE_TESTS:-}" ]; then
	read -r -a tests <<<"$PROVE_TESTS"
else
	tests=()
	while IFS= read -r f; do
		tests+=("t/$(basename "$f")")
	done < <(find "$here/t" -maxdepth 1 -name '*.pl' 2>/dev/null | LC_ALL=C sort)
fi
if [ ${#tests[@]} -eq 0 ]; then
	echo "tap: no tests in $here/t"
	write_counts 0 0
	exit 0
fi

work=$(mktemp -d /tmp/pg_dts_tap.XXXXXX)
cleanup()
{
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "tap: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
chmod 755 "$work"

# The private copy: the tests, the shared module, and the regress SQL some
# tests reuse (table definitions and rows).
cp -r "$here/t" "$here/PgDts" "$work/"
mkdir -p "$work/regress_sql"
cp "$repo"/tests/regress/sql/*.sql "$work/regress_sql/" 2>/dev/null

# The shipper under test: PG_DTS_SHIP, else the installed one, else this
# tree's build; copied, since postgres may not be able to read its directory.
ship=${PG_DTS_SHIP:-}
if [ -z "$ship" ] && [ ! -x "$bindir/pg_dts_ship" ] &&
	[ -x "$repo/build/pg_dts_ship" ]; then
	ship=$repo/build/pg_dts_ship
fi
if [ -n "$ship" ]; then
	mkdir -p "$work/bin"
	cp "$ship" "$work/bin/pg_dts_ship"
	ship=$work/bin/pg_dts_ship
fi
if [ -n "$ship" ]; then
	echo "tap: pg_dts_ship under test: $ship"
elif [ -x "$bindir/pg_dts_ship" ]; then
	echo "tap: pg_dts_ship under test: $bindir/pg_dts_ship"
else
	echo "tap: pg_dts_ship not found (make install): its tests are skipped"
fi

as_server=()
if [ "$(id -u)" = 0 ]; then
	chown -R "$osuser:" "$work"
	as_server=(runuser -u "$osuser" --)
fi

echo "tap: ${#tests[@]} test files: ${tests[*]}"
(
	cd "$work" &&
	"${as_server[@]}" env \
		PATH="$bindir:$PATH" \
		PG_REGRESS="$pg_regress" \
		TESTDIR="$work" \
		PG_DTS_REGRESS_SQL="$work/regress_sql" \
		PG_DTS_SHIP="$ship" \
		PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-120}" \
		prove -I "$perl_lib" -I "$work" -j "${PROVE_JOBS:-2}" --timer \
		"${tests[@]}"
) 2>&1 | tee "$work/prove.log"
rc=${PIPESTATUS[0]}

# Assertions: "Files=N, Tests=T" is every assertion run; the summary report
# has one "(Wstat: W Tests: T Failed: F)" line per failing file.  A file
# that failed without a failing assertion (died, bad plan) counts as one.
total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$work/prove.log" | tail -n 1)
total=${total:-0}
fail=0
while IFS= read -r line; do
	f=$(echo "$line" | sed -nE 's/.*Failed: ([0-9]+)\).*/\1/p')
	f=${f:-0}
	if [ "$f" -eq 0 ]; then
		f=1
		total=$((total + 1))
	fi
	fail=$((fail + f))
done < <(grep -E '^t/.*\(Wstat: [0-9]+ (\(exited [0-9]+\) )?Tests: [0-9]+ Failed: [0-9]+\)' "$work/prove.log")
pass=$((total - fail))
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
	fail=1
fi

# On failure: the tail of the logs of each failed test file (its TAP log,
# its clusters' server logs, its pg_dts_ship logs); all logs if prove
# failed without naming a file.
if [ "$rc" -ne 0 ]; then
	failed=$(sed -nE 's,^t/([^ ]+)\.pl +\(Wstat.*,\1,p' "$work/prove.log")
	logs=()
	for name in $failed; do
		for log in "$work/tmp_check/log/regress_log_$name" \
			"$work/tmp_check/log/${name}"_*.log; do
			[ -f "$log" ] && logs+=("$log")
		done
	done
	if [ ${#logs[@]} -eq 0 ]; then
		for log in "$work"/tmp_check/log/*; do
			[ -f "$log" ] && logs+=("$log")
		done
	fi
	for log in "${logs[@]}"; do
		echo "tap: ---- tail of $(basename "$log") ----"
		tail -n 60 "$log"
	done
	echo "tap: ---- end of logs (KEEP_TMP=1 keeps them all) ----"
fi

write_counts "$pass" "$fail"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]

#!/usr/bin/env bash
#
# tests/regress/run.sh
#	  Run the pg_regress suite (tests/regress/sql/*.sql, in alphabetical
#	  order, against tests/regress/expected/*.out) on a temporary instance,
#	  using the INSTALLED pg_dts extension ("make install" first).
#
# pg_regress runs as the OS user "postgres" when we are root (PostgreSQL
# refuses root), from a private copy of this directory that postgres owns;
# the instance gets tests/regress/regress.conf (wal_level = logical,
# output_plugin_libraries with pg_dts, ...).  pg_regress picks its own port
# and socket directory.  Results (results/, regression.diffs,
# regression.out) are copied back next to this script.
#
# Environment:
#	PG_CONFIG	 pg_config of the server to test (default: PostgreSQL 15's)
#	COUNTS_FILE	 if set, receives one line "passed failed"
#	KEEP_TMP=1	 keep the temporary directory
#
# Each test file is self-contained: it starts with
# CREATE EXTENSION IF NOT EXISTS pg_dts.  The extension is also created
# when pg_regress creates the database (--load-extension), so that this
# first line prints the same NOTICE in every test, whichever runs first or
# alone.
#
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
pgxs=$("$PG_CONFIG" --pgxs)
pg_regress=$(cd "$(dirname "$pgxs")/../test/regress" && pwd)/pg_regress
osuser=postgres

write_counts()
{
	echo "regress: $1 passed, $2 failed"
	if [ -n "${COUNTS_FILE:-}" ]; then
		echo "$1 $2" >"$COUNTS_FILE"
	fi
}

if [ ! -x "$pg_regress" ]; then
	echo "regress: $pg_regress not found (postgresql-server-dev-15?)" >&2
	write_counts 0 1
	exit 1
fi

tests=()
while IFS= read -r f; do
	tests+=("$(basename "$f" .sql)")
done < <(find "$here/sql" -maxdepth 1 -name '*.sql' 2>/dev/null | LC_ALL=C sort)

if [ ${#tests[@]} -eq 0 ]; then
	echo "regress: no tests in $here/sql"
	write_counts 0 0
	exit 0
fi

work=$(mktemp -d /tmp/pg_dts_regress.XXXXXX)
cleanup()
{
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "regress: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
chmod 755 "$work"

# The private copy: inputs only, never stale results.
for d in sql expected data input output; do
	[ -d "$here/$d" ] && cp -r "$here/$d" "$work/"
done
cp "$here/regress.conf" "$work/"
mkdir -p "$work/expected"

# A test without an expected file would stop pg_regress altogether; give it
# an empty one instead, so it fails alone and the others still run.
for t in "${tests[@]}"; do
	if ! compgen -G "$work/expected/$t.out" >/dev/null &&
		! compgen -G "$work/expected/${t}_[0-9].out" >/dev/null; then
		echo "regress: $t has no expected/$t.out; it will fail" >&2
		: >"$work/expected/$t.out"
	fi
done

as_server=()
if [ "$(id -u)" = 0 ]; then
	chown -R "$osuser:" "$work"
	as_server=(runuser -u "$osuser" --)
fi

echo "regress: ${#tests[@]} tests: ${tests[*]}"
(
	cd "$work" &&
	"${as_server[@]}" "$pg_regress" \
		--temp-instance="$work/instance" \
		--temp-config="$work/regress.conf" \
		--inputdir="$work" \
		--outputdir="$work" \
		--bindir="$bindir" \
		--encoding=UTF8 --no-locale \
		--dbname=contrib_regression \
		--load-extension=pg_dts \
		"${tests[@]}"
) 2>&1 | tee "$work/pg_regress.log"
rc=${PIPESTATUS[0]}

pass=$(grep -cE '\.\.\. ok( |$)' "$work/pg_regress.log")
fail=$(grep -cE '\.\.\. (FAILED|failed)' "$work/pg_regress.log")

# Copy the outcome back for inspection (and CI artifacts).
rm -rf "$here/results" "$here/regression.diffs" "$here/regression.out"
for f in results regression.diffs regression.out; do
	[ -e "$work/$f" ] && cp -r "$work/$f" "$here/" 2>/dev/null
done

if [ "$rc" -ne 0 ]; then
	if [ -s "$work/regression.diffs" ]; then
		echo "regress: ---- regression.diffs ----"
		cat "$work/regression.diffs"
		echo "regress: ---- end of regression.diffs ----"
	fi
	if [ -d "$work/instance/log" ]; then
		for log in "$work"/instance/log/*; do
			[ -f "$log" ] || continue
			echo "regress: ---- tail of $log ----"
			tail -n 40 "$log"
		done
	fi
	# pg_regress failed before any test ran (initdb, start-up, ...).
	if [ "$fail" -eq 0 ]; then
		fail=1
	fi
fi

write_counts "$pass" "$fail"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]

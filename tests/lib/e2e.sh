# tests/lib/e2e.sh
#	  What the two-cluster end-to-end suites (tests/pgsink, tests/pgsync,
#	  tests/verify) share: TAP-style counting (ok, not_ok, check, has,
#	  e2e_finish) and a source and a destination cluster started by
#	  tools/pgcluster.sh and removed at exit.
#
# Sourced, not run.  The suite sets repo and work (its scratch directory,
# removed at exit) first.  e2e_two_clusters [DESTINATION SETTING...] sets
# SRC_DIR/SRC_PORT/SRC_SOCK, DST_DIR/DST_PORT/DST_SOCK, the conninfos SRC
# and DST (database postgres), BINDIR, and the functions src_psql and
# dst_psql.  A suite with more to stop at exit defines e2e_cleanup_extra.

# shellcheck source=../../tools/pgcluster.sh
. "$repo/tools/pgcluster.sh"

passed=0
failed=0

ok()
{
	passed=$((passed + 1))
	echo "ok $((passed + failed)) - $1"
}

not_ok()
{
	failed=$((failed + 1))
	echo "not ok $((passed + failed)) - $1"
}

# check DESCRIPTION COMMAND...: a passing command is a pass
check()
{
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# has FILE TEXT: the file holds the fixed string TEXT (its last 30 lines
# are shown when it does not)
has()
{
	if grep -qF -- "$2" "$1"; then
		return 0
	fi
	echo "# expected in $1: $2" >&2
	sed 's/^/#   /' "$1" | tail -n 30 >&2
	return 1
}

# The closing line "N passed, N failed", COUNTS_FILE (the Makefile's e2e
# stage reads it), and the exit status: 0 only if nothing failed.
e2e_finish()
{
	echo
	echo "$passed passed, $failed failed"
	if [ -n "${COUNTS_FILE:-}" ]; then
		echo "$passed $failed" >"$COUNTS_FILE"
	fi
	[ "$failed" -eq 0 ]
	exit $?
}

# pgcluster.sh keeps one cluster in its variables: save each one's and
# clean both up at exit.
SRC_DIR= DST_DIR=
e2e_cleanup()
{
	local d
	if declare -F e2e_cleanup_extra >/dev/null; then
		e2e_cleanup_extra
	fi
	for d in "$SRC_DIR" "$DST_DIR"; do
		[ -n "$d" ] || continue
		PGC_DIR=$d
		pgc_cleanup
	done
	rm -rf "$work"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

e2e_start_cluster()
{
	PGC_DIR= PGC_PORT= PGC_SOCK=
	pgc_init "$@" && pgc_start
}

e2e_two_clusters()
{
	if ! e2e_start_cluster; then
		echo "could not start the source cluster"
		exit 1
	fi
	SRC_DIR=$PGC_DIR SRC_PORT=$PGC_PORT SRC_SOCK=$PGC_SOCK
	if ! e2e_start_cluster "$@"; then
		echo "could not start the destination cluster"
		exit 1
	fi
	DST_DIR=$PGC_DIR DST_PORT=$PGC_PORT DST_SOCK=$PGC_SOCK
	SRC="host=$SRC_SOCK port=$SRC_PORT user=postgres dbname=postgres"
	DST="host=$DST_SOCK port=$DST_PORT user=postgres dbname=postgres"
	BINDIR=$("$PG_CONFIG" --bindir)
}

src_psql() { "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$SRC" "$@"; }
dst_psql() { "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$DST" "$@"; }

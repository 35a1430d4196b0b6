#!/usr/bin/env bash
#
# tools/install-deps.sh
#	  Make sure the Debian packages pg_dts needs to build, test, demo and
#	  benchmark are installed.
#
# Usage: tools/install-deps.sh [--bench] [--check]
#
#	--bench   also require the benchmark's extra contenders (wal2json)
#	--check   only report what is missing; never install
#
# Nothing is done when everything is present (no apt-get update).  When
# something is missing and we are root, "apt-get update" runs once and the
# missing packages are installed without recommends.  When we are not root,
# the script fails and prints the apt-get command to run.
#
set -euo pipefail

PGMAJOR=${PGMAJOR:-15}
want_bench=0
check_only=0
for arg in "$@"; do
	case "$arg" in
		--bench) want_bench=1 ;;
		--check) check_only=1 ;;
		-h|--help) sed -n '3,16p' "$0"; exit 0 ;;
		*) echo "install-deps: unknown option: $arg" >&2; exit 2 ;;
	esac
done

# PostgreSQL 15 ships its contrib modules (test_decoding among them) in
# postgresql-15 itself; postgresql-contrib is only a metapackage.
packages=(
	"postgresql-$PGMAJOR"			# server, test_decoding, pgoutput
	"postgresql-server-dev-$PGMAJOR"	# PGXS, server headers, pg_regress
	"postgresql-client-$PGMAJOR"	# psql, pg_dump, TAP modules
	libpq-dev						# the shipper's client library
	check							# unit tests (libcheck)
	pkg-config
	libipc-run-perl					# TAP tests (PostgreSQL::Test::Cluster)
	gcc
	make
	python3							# free-port probe, test helpers
	librdkafka-dev					# Kafka sink
	libavro-dev						# DTS Avro format
	kcat							# Kafka read-back in tests
	python3-avro					# independent Avro decoder in tests
	libjansson-dev					# task files, JSON formats
	time							# /usr/bin/time: max RSS in tests, elapsed time in benches
)
if [ "$want_bench" = 1 ]; then
	packages+=("postgresql-$PGMAJOR-wal2json")	# a bench contender
fi

# output_plugin_libraries (a plugin must be listed to be used) came with
# PostgreSQL 15.20: older 15.x packages count as missing, so that
# apt-get install upgrades them (a fresh machine may have 15.18).
PG_MIN_VERSION=${PG_MIN_VERSION:-15.20}
needs_min_version()
{
	case "$1" in
		postgresql-$PGMAJOR|postgresql-client-$PGMAJOR|postgresql-server-dev-$PGMAJOR) return 0 ;;
	esac
	return 1
}

is_installed()
{
	local status version
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[ "$status" = "install ok installed" ] || return 1
	if needs_min_version "$1"; then
		version=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null)
		dpkg --compare-versions "$version" ge "$PG_MIN_VERSION" || return 1
	fi
	return 0
}

missing=()
for p in "${packages[@]}"; do
	is_installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "install-deps: missing: ${missing[*]}"
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"

if [ "$check_only" = 1 ]; then
	exit 1
fi

if [ "$(id -u)" != 0 ]; then
	cat >&2 <<MSG
install-deps: these Debian packages are required but not installed:
    ${missing[*]}
Install them as root, e.g.:
    sudo sh -c '$cmd'
MSG
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
	is_installed "$p" || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
	echo "install-deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
echo "install-deps: installed ${missing[*]}"

# bench/kafka/setup.sh
#	  The setup shared by bench/kafka/run.sh (the benchmark) and
#	  bench/kafka/profile.sh (where its time goes): one throw-away cluster
#	  with the benchmark's settings (wal2json allowed), the server and the
#	  clients on CPUs apart when BENCH_PIN is set, a work directory, and the
#	  librdkafka mock cluster.
#
# Sourced, not run, from the top of the checkout.  The caller sets root and
# setup_label (the work directory is /tmp/pg_dts_k<label>.XXXXXX).  Sets
# work and an EXIT trap that stops the mock cluster and the server and
# removes both; kafka_mock_start starts the mock cluster and sets B.

export PGC_EXTRA_PLUGINS=wal2json
# shellcheck source=tools/pgcluster.sh
. "$root/tools/pgcluster.sh"
# shellcheck source=bench/workload.sh
. "$root/bench/workload.sh"
pgc_setup "shared_buffers = 512MB" "max_wal_size = 4GB" \
	"checkpoint_timeout = 1h" "synchronous_commit = off" "autovacuum = off"

[ -z "${BENCH_PIN:-}" ] || pgc_pin_apart
work=$(mktemp -d "/tmp/pg_dts_k${setup_label}.XXXXXX")
mock_pid=
trap '[ -n "$mock_pid" ] && kill "$mock_pid"; rm -rf "$work"; pgc_cleanup' EXIT

# kafka_mock_start -t TOPIC:PARTITIONS ...: the mock cluster (3 brokers)
# with these topics, in the background; sets B, its bootstrap servers
kafka_mock_start()
{
	build/mock_broker "$@" >"$work/bootstrap" 2>"$work/mock.log" &
	mock_pid=$!
	for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
	B=$(head -1 "$work/bootstrap")
}

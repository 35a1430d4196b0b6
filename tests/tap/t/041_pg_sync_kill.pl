#
# 041_pg_sync_kill.pl
#	  kill -9 of pg_dts_ship in a PostgreSQL-to-PostgreSQL task
#	  (docs/pg-sync.md §4, docs/pg-sink.md §2).
#
#	  Part 1, during the full sync: a 2M-row table (about 150 MB, so two key
#	  ranges) and three small ones are copied with the task's throttle at
#	  20 MB/s; the shipper is killed once some ranges are done and the big
#	  table's copy is under way, the source changes rows of every range
#	  (some before the kill, some while the shipper is down), and a new run
#	  resumes: only the ranges not done are copied, under a new snapshot,
#	  and the slot's changes from the first consistent point bring every
#	  range to the present.  --verify must then exit 0.
#
#	  Part 2, during the incremental sync: counter(id int primary key,
#	  n bigint) gets 3000 "UPDATE counter SET n = n + 1" transactions
#	  (pgbench -t, one client) while the shipper is killed three times at
#	  random moments and started again.  Since each update ships n's new
#	  value, equal final values alone would not catch a transaction applied
#	  twice: an ENABLE ALWAYS trigger at the destination records every
#	  applied update's n, in the apply's own transaction, so each of 1..3000
#	  must be recorded exactly once.  dts.apply_progress.lsn must be the end
#	  LSN of the last update's commit record (read with pg_walinspect).
#
#	  Each part has its own task (slot, tables), so that a failure of part 1
#	  does not hide what part 2 finds.  Part 2's task runs without heartbeat
#	  (heartbeat_interval 0): heartbeat transactions would join the sink's
#	  batches and move apply_progress past the last update's commit, which
#	  is what part 2 checks exactly.  Its restarts use the same three-phase
#	  task file, as a real restart of a running task does: each goes
#	  through the initial sync's resume path (the slot exists, every range
#	  is done) and must simply stream on.  If that fails (checked once),
#	  the remaining runs use an incremental-only file of the same task
#	  (same slot, destination and apply progress) so that the exactly-once
#	  checks still run.
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgDts::Test;

require_ship();

my $dir = PostgreSQL::Test::Utils::tempdir;
my $big_rows = 2_000_000;
my $updates = 3000;

my $src = new_source_cluster('source');
my $dst = new_destination_cluster('destination', 'dst');

$src->safe_psql(
	'postgres', qq{
CREATE EXTENSION pg_walinspect;
CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT i, rpad(i::text, 40, '.') FROM generate_series(1, $big_rows) i;
CREATE TABLE small1 (id int PRIMARY KEY, v text);
CREATE TABLE small2 (id int PRIMARY KEY, v text);
CREATE TABLE small3 (id bigint PRIMARY KEY, v text);
INSERT INTO small1 SELECT i, 'a' || i FROM generate_series(1, 1000) i;
INSERT INTO small2 SELECT i, 'b' || i FROM generate_series(1, 1000) i;
INSERT INTO small3 SELECT i, 'c' || i FROM generate_series(1, 1000) i;
CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO counter VALUES (1, 0);
VACUUM ANALYZE;
});
cmp_ok($src->safe_psql('postgres', "SELECT pg_relation_size('big')"),
	'>', 128 * 1024 * 1024,
	'big is larger than one full sync range (128 MB)');

# psql on the destination that does not die while schema dts is missing
sub dst_query
{
	my ($sql) = @_;
	my ($ret, $stdout) = $dst->psql('dst', $sql);
	return $ret == 0 ? $stdout : undef;
}

# (ranges planned, ranges done) of a task's full sync
sub progress
{
	my ($task) = @_;
	my $r = dst_query(
		"SELECT count(*), count(*) FILTER (WHERE done) FROM dts.full_sync_progress "
		  . "WHERE task = '$task'");
	return defined $r ? split(/\|/, $r) : (0, 0);
}

# A task: its file, slot, and the current run of pg_dts_ship
sub new_task
{
	my ($name, %p) = @_;
	my $t = {
		name => $name,
		slot => "dts_sync_$name",
		run => 0,
		file => write_task(
			"$dir/$name.json",
			{
				name => $name,
				source => { conninfo => $src->connstr('postgres') },
				sink => { type => 'pg', conninfo => $dst->connstr('dst') },
				objects => { public => { tables => $p{tables} } },
				sync => [ 'schema', 'full', 'incremental' ],
				heartbeat_interval => 0,
				status_interval => 0.5,
				%{ $p{extra} // {} },
			}),
	};
	return $t;
}

sub start_run
{
	my ($t) = @_;
	$t->{ship} = start_ship(
		name => "$t->{name}_run$t->{run}",
		args => [ '--task', $t->{file}, '--start' ]);
	return $t->{ship};
}

sub alive
{
	my ($t) = @_;
	die "pg_dts_ship $t->{name} run $t->{run} exited ($t->{ship}{rc}):\n"
	  . ship_log($t->{ship})
	  unless ship_running($t->{ship});
	return 1;
}

sub wait_streaming
{
	my ($t, $timeout) = @_;
	wait_for(
		sub {
			alive($t);
			# the slot is active during the initial sync too (the snapshot's
			# connection holds it): streaming starts after post-data
			my $post = dst_query(
				"SELECT count(*) FROM dts.schema_sync_state "
				  . "WHERE task = '$t->{name}' AND section = 'post-data'");
			defined $post && $post eq '1'
			  && slot_streaming($src, $t->{slot});
		},
		$timeout,
		"pg_dts_ship $t->{name} run $t->{run} to stream from $t->{slot}");
	return;
}

sub verify
{
	my ($t, $what) = @_;
	my ($rc, $out, $err) =
	  run_ship(args => [ '--task', $t->{file}, '--verify' ], timeout => 240);
	is($rc, 0, "$t->{name}: $what, --verify exits 0")
	  or diag "stdout:\n$out\nstderr:\n$err";
	return $out;
}

# ---------------------------------------------------------------------
# Part 1: kill -9 during the full sync
# ---------------------------------------------------------------------
sub part1
{
	my $t = new_task(
		'kfull',
		tables => [qw(big small1 small2 small3)],
		# 20 MB/s: the copy of big takes several seconds, room for the kill
		# even on a loaded machine (at 40 MB/s it once ended first)
		extra => { throttle => { mb_per_second => 20 } });
	start_run($t);

	# changes while the copy runs (after the slot's consistent point)
	wait_for(sub { alive($t); (progress('kfull'))[0] > 0 },
		120, 'the full sync to record its plan');
	$src->safe_psql(
		'postgres', q{
UPDATE big SET pad = 'during copy' WHERE id % 100000 = 1;
DELETE FROM big WHERE id % 100000 = 2;
INSERT INTO big SELECT i, 'new during copy' FROM generate_series(2000001, 2000100) i;
UPDATE small1 SET v = v || ' during copy' WHERE id % 10 = 0;
});

	# kill once some ranges are done, not all, and big's copy is under way
	my ($total, $done);
	wait_for(
		sub {
			alive($t);
			($total, $done) = progress('kfull');
			my $size = dst_query("SELECT pg_relation_size('public.big')");
			$done >= 1
			  && $done < $total
			  && defined $size
			  && $size > 8 * 1024 * 1024;
		},
		120,
		'some full sync ranges done and big being copied');
	kill_ship($t->{ship});
	($total, $done) = progress('kfull');
	note "killed kfull run 0 during the full sync: $done of $total ranges done";
	cmp_ok($done, '>=', 1, 'kfull: at the kill at least one range was done');
	cmp_ok($done, '<', $total, 'kfull: at the kill some ranges were not done');
	cmp_ok(
		$dst->safe_psql('dst',
			"SELECT count(*) FILTER (WHERE NOT done) FROM dts.full_sync_progress "
			  . "WHERE task = 'kfull' AND \"table\" = 'big'"),
		'>=', 1,
		"kfull: at the kill some of big's ranges were not done");
	ok(slot_exists($src, $t->{slot}), "kfull: the slot survives the kill");

	# changes while the shipper is down
	$src->safe_psql(
		'postgres', q{
UPDATE big SET pad = 'while down' WHERE id % 100000 = 3;
DELETE FROM big WHERE id % 100000 = 4;
UPDATE big SET pad = 'twice' WHERE id % 100000 = 1;
INSERT INTO big SELECT i, 'new while down' FROM generate_series(2000101, 2000200) i;
DELETE FROM small2 WHERE id <= 100;
UPDATE small3 SET v = 'while down' WHERE id > 900;
INSERT INTO small3 VALUES (5000000000, 'big key');
});

	$t->{run}++;
	start_run($t);
	wait_streaming($t, 180);
	pass('kfull: run 1 resumed the full sync and streams');
	($total, $done) = progress('kfull');
	is($done, $total, "kfull: all $total ranges are done after the resume");
	is( $dst->safe_psql('dst',
			"SELECT count(DISTINCT snapshot) FROM dts.full_sync_progress "
			  . "WHERE task = 'kfull'"),
		'2',
		'kfull: the ranges were copied under two snapshots (the resume took a new one)'
	);

	# changes once streaming again
	$src->safe_psql(
		'postgres', q{
UPDATE big SET pad = 'after resume' WHERE id % 100000 = 5;
DELETE FROM big WHERE id % 100000 = 6;
});
	my $lsn = $src->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	wait_for(
		sub {
			alive($t);
			my $p = dst_query(
				"SELECT lsn >= '$lsn' FROM dts.apply_progress WHERE task = 'kfull'");
			defined $p && $p eq 't';
		},
		120,
		"kfull: the destination to apply everything up to $lsn");

	my $out = verify($t, 'after kill -9 in the full sync and a resume');
	like(
		$out,
		qr/^table public\.big -> public\.big: rows source (\d+), destination \1: ok$/m,
		'kfull: --verify reports big ok');
	is(stop_ship($t->{ship}, 'INT', 60), 0, 'kfull: the last run exits 0 on SIGINT');
	return;
}

eval { part1(); 1 } or do
{
	my $e = $@;
	fail("part 1 (kill -9 during the full sync) ran to its end");
	diag $e;
};

# ---------------------------------------------------------------------
# Part 2: kill -9 during the incremental sync
# ---------------------------------------------------------------------
my $t = new_task('kinc', tables => ['counter']);

# The same task with the incremental phase only: the fallback for restarts
# if restarting the three-phase task fails (see restart_kinc).
my $inc_file = write_task(
	"$dir/kinc_incremental.json",
	{
		name => 'kinc',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dst->connstr('dst') },
		objects => { public => { tables => ['counter'] } },
		sync => ['incremental'],
		heartbeat_interval => 0,
		status_interval => 0.5,
	});

# Starts the next run after a kill.  A restart of the three-phase task
# file, once its initial sync is done and the slot has moved on, must just
# stream again (the first restart checks it).  Should it fail, the runs go
# on with the incremental-only file of the same task (slot, destination
# and apply progress are the same), so that the exactly-once checks below
# still run.
my $restart_checked = 0;

sub restart_kinc
{
	$t->{run}++;
	start_run($t);
	wait_for(
		sub {
			!ship_running($t->{ship})
			  || slot_streaming($src, $t->{slot});
		},
		120,
		"pg_dts_ship kinc run $t->{run} to stream or exit");
	if (!$restart_checked)
	{
		$restart_checked = 1;
		ok(ship_running($t->{ship}),
			'kinc: a restart of the three-phase task after its initial sync '
			  . 'and some incremental changes streams again')
		  or diag ship_log($t->{ship});
	}
	if (!ship_running($t->{ship}) && $t->{file} ne $inc_file)
	{
		note 'kinc: the restart failed; going on with the incremental-only '
		  . 'task file (same task, slot and destination)';
		$t->{file} = $inc_file;
		$t->{run}++;
		start_run($t);
	}
	wait_streaming($t, 120);
	return;
}

start_run($t);
wait_streaming($t, 120);
pass('kinc: the initial sync is done and pg_dts_ship streams');

# every applied update of counter records its n, in the apply's transaction
$dst->safe_psql(
	'dst', q{
CREATE TABLE counter_seen (n bigint NOT NULL);
CREATE FUNCTION counter_seen() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO counter_seen VALUES (NEW.n); RETURN NEW; END$$;
CREATE TRIGGER counter_seen AFTER UPDATE ON counter
  FOR EACH ROW EXECUTE FUNCTION counter_seen();
ALTER TABLE counter ENABLE ALWAYS TRIGGER counter_seen;
});

my $start_lsn = $src->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
write_file("$dir/counter.sql", "UPDATE counter SET n = n + 1 WHERE id = 1;\n");
my $writer = start_bg(
	name => 'writer',
	cmd => [
		'pgbench', '-n', '-c', '1', '-t', $updates, '-R', '250',
		'-f', "$dir/counter.sql",
		'-h', $src->host, '-p', $src->port, 'postgres'
	]);
my $src_n = sub {
	$src->safe_psql('postgres', 'SELECT n FROM counter WHERE id = 1');
};

# three kills at random points, one in each third of the run
my @thresholds = map { int($updates * ($_ + 0.15 + rand(0.6)) / 3) } 0 .. 2;
note "kinc: killing pg_dts_ship when counter.n passes @thresholds";
my $kills = 0;
foreach my $threshold (@thresholds)
{
	wait_for(sub { $src_n->() >= $threshold || !ship_running($writer) },
		120, "the writer to reach n = $threshold");
	if ($src_n->() < $threshold)
	{
		note "kinc: the writer ended before n = $threshold: no more kills";
		last;
	}
	ok(ship_running($t->{ship}), "kinc: run $t->{run} is alive at n = $threshold")
	  or diag ship_log($t->{ship});
	kill_ship($t->{ship});
	$kills++;
	wait_slot_inactive($src, $t->{slot}, 30);
	note "kinc: kill $kills at n = $threshold: destination n = "
	  . $dst->safe_psql('dst', 'SELECT n FROM counter WHERE id = 1')
	  . ', slot confirmed '
	  . slot_confirmed_lsn($src, $t->{slot});
	restart_kinc();
}
is($kills, 3, 'kinc: pg_dts_ship was killed three times during the updates');

is(wait_ship_exit($writer, 120), 0, 'the writer (pgbench) finished without error')
  or diag slurp_file($writer->{log});
my $final_n = $src_n->();
is($final_n, $updates, "the source's counter.n is $updates");

# the last update's commit record: its end LSN is what apply_progress holds
my $xid = $src->safe_psql('postgres', 'SELECT xmin FROM counter WHERE id = 1');
my $end_lsn = $src->safe_psql('postgres',
	"SELECT end_lsn FROM pg_get_wal_records_info('$start_lsn', pg_current_wal_flush_lsn()) "
	  . "WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT' "
	  . "AND xid = '$xid'");
like($end_lsn, qr{^[0-9A-F]+/[0-9A-F]+$},
	"found the commit record of the last update (xid $xid, end $end_lsn)");

wait_slot_confirmed($src, $t->{slot}, $end_lsn, 120);
pass("kinc: the slot confirmed the last update's commit ($end_lsn)");
is($dst->safe_psql('dst', 'SELECT n FROM counter WHERE id = 1'),
	$final_n, "kinc: the destination's counter.n equals the source's ($final_n)");
my ($seen, $distinct, $min, $max) = split /\|/,
  $dst->safe_psql('dst',
	'SELECT count(*), count(DISTINCT n), min(n), max(n) FROM counter_seen');
is("$seen $distinct $min $max", "$updates $updates 1 $updates",
	"kinc: each of the $updates updates was applied exactly once (none lost, none twice)"
);
is($dst->safe_psql('dst', "SELECT lsn FROM dts.apply_progress WHERE task = 'kinc'"),
	$end_lsn,
	"kinc: dts.apply_progress.lsn is the end of the last update's commit record");

verify($t, 'after three kills during the updates');
is($dst->safe_psql('dst',
		"SELECT count(*) FROM dts.conflict_log WHERE task = 'kinc'"),
	'0', 'kinc: no conflicts were logged');
is(stop_ship($t->{ship}, 'INT', 60), 0, 'kinc: the last run exits 0 on SIGINT');

$src->stop;
$dst->stop;
done_testing();

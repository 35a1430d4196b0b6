#
# 021_ship_source_restart.pl
#	  The source restarts under pg_dts_ship: first a fast shutdown, then an
#	  immediate one (a crash, as far as the slot is concerned), each while
#	  rows are being written.  The shipper must ride through both in the
#	  same process: log the lost connection, retry with backoff (sped up by
#	  the test hook PG_DTS_RETRY_SCALE, retry.h), reconnect when the server
#	  is back and go on from the slot, losing nothing and inventing
#	  nothing, in commit order.  (Rows may arrive twice: after an immediate
#	  shutdown the slot restarts from its last checkpointed position.)
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use PgDts::Test;

require_ship();

my $node = new_source_cluster('source');
my $dir = PostgreSQL::Test::Utils::tempdir;
my $out = "$dir/restart.jsonl";
my $slot = 'dts_sync_restart';

$node->safe_psql(
	'postgres', q{
CREATE TABLE rows_t (id bigint PRIMARY KEY, batch int NOT NULL);
});

my $task = write_task(
	"$dir/restart.json",
	{
		name => 'restart',
		source => { conninfo => $node->connstr('postgres') },
		objects => { public => { tables => ['rows_t'] } },
		sink => { type => 'file', path => $out, fsync_interval => 0 },
		heartbeat_interval => 1,
		status_interval => 0.5,
		retry => { connection_minutes => 10, other_minutes => 10 },
	});

# PG_DTS_RETRY_SCALE=60: a 1 s backoff becomes ~17 ms, the 10 minute
# windows 10 seconds; a restart takes well under that.
my $ship = start_ship(
	name => 'restart',
	args => [ '--task', $task, '--create-slot', '--start' ],
	env => { PG_DTS_RETRY_SCALE => '60' });
wait_for(
	sub {
		die "pg_dts_ship exited early:\n" . ship_log($ship)
		  unless ship_running($ship);
		$node->safe_psql('postgres',
			"SELECT count(*) FROM pg_replication_slots "
			  . "WHERE slot_name = '$slot' AND active") eq '1';
	},
	60,
	"pg_dts_ship to create $slot and stream");
pass("pg_dts_ship streams from $slot");

# A writer: pgbench, one client, one row per transaction, numbered by a
# sequence; it dies with the server, so each batch gets its own pgbench.
$node->safe_psql('postgres', 'CREATE SEQUENCE rows_seq');
my $batch = 0;

sub start_writer
{
	$batch++;
	write_file("$dir/batch$batch.sql",
		"INSERT INTO rows_t VALUES (nextval('rows_seq'), $batch);\n");
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '1', '-T', '60', '-R', '200',
			'-f', "$dir/batch$batch.sql",
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(120));
	return $h;
}

sub batch_rows
{
	my ($b) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM rows_t WHERE batch = $b");
}

foreach my $mode ('fast', 'immediate')
{
	my $writer = start_writer();
	my $b = $batch;
	wait_for(sub { batch_rows($b) >= 300 }, 60,
		"300 rows of batch $b before the $mode restart");

	# the shipper must have something in flight: wait until it has
	# written some of this batch
	wait_for(
		sub {
			grep { ($_->{new}{batch} // 0) == $b }
			  @{ json_lines_of($out) };
		},
		60,
		"pg_dts_ship to ship rows of batch $b");

	$node->stop($mode);
	$writer->kill_kill;
	eval { $writer->finish };
	ok(ship_running($ship), "pg_dts_ship survives the $mode shutdown")
	  or diag ship_log($ship);
	$node->start;

	# after the restart: more rows, and the shipper back on the slot
	$writer = start_writer();
	my $b2 = $batch;
	wait_for(sub { batch_rows($b2) >= 200 }, 60,
		"200 rows of batch $b2 after the $mode restart");
	wait_for(
		sub {
			die "pg_dts_ship exited after the $mode restart:\n"
			  . ship_log($ship)
			  unless ship_running($ship);
			$node->safe_psql('postgres',
				"SELECT count(*) FROM pg_replication_slots "
				  . "WHERE slot_name = '$slot' AND active") eq '1';
		},
		60,
		"pg_dts_ship to reconnect after the $mode restart");
	pass("pg_dts_ship reconnected after the $mode restart");
	$writer->kill_kill;
	eval { $writer->finish };
}

like(
	ship_log($ship),
	qr/retry|reconnect|attempt/i,
	'the shipper logged its retries');

# catch up and stop
my $final_lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
wait_slot_confirmed($node, $slot, $final_lsn, 120);
pass('the shipper caught up after both restarts');
is(stop_ship($ship, 'INT'), 0, 'pg_dts_ship exits 0 on SIGINT');

my $read = read_json_lines($out);
is(scalar @{ $read->{bad} }, 0, 'every line is a JSON object')
  or diag explain [ @{ $read->{bad} }[ 0 .. 2 ] ];

my @ids = map { 0 + $_->{new}{id} }
  grep { ($_->{kind} // '') eq 'insert' && ($_->{table} // '') eq 'rows_t' }
  @{ $read->{records} };
my %count;
$count{$_}++ foreach @ids;
my @committed = split /\n/,
  $node->safe_psql('postgres', 'SELECT id FROM rows_t ORDER BY id');
note scalar(@committed) . ' rows committed, ' . scalar(@ids)
  . ' insert lines, ' . scalar(grep { $count{$_} > 1 } keys %count)
  . ' rows seen more than once';
my @missing = grep { !$count{$_} } @committed;
is(scalar @missing, 0, 'every committed row is in the output')
  or diag "missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]";
my %is_committed = map { $_ => 1 } @committed;
my @phantom = grep { !$is_committed{$_} } keys %count;
is(scalar @phantom, 0, 'no row that was not committed (or was rolled back)');

# first sightings follow commit order (the sequence, one writer at a time)
my %seen;
my @first = grep { !$seen{$_}++ } @ids;
my @back = grep { $first[$_] < $first[ $_ - 1 ] } 1 .. $#first;
is(scalar @back, 0, 'rows arrive in commit order');

# ---- past the connection window: exit 1, the slot keeps everything ----
# a one-minute window, 60 times faster: the source stays down for longer
my $short_task = write_task(
	"$dir/short.json",
	{
		name => 'restart',
		source => { conninfo => $node->connstr('postgres') },
		objects => { public => { tables => ['rows_t'] } },
		sink => { type => 'file', path => $out, fsync_interval => 0 },
		heartbeat_interval => 1,
		status_interval => 0.5,
		retry => { connection_minutes => 1, other_minutes => 1 },
	});
$ship = start_ship(
	name => 'short_window',
	args => [ '--task', $short_task, '--start' ],
	env => { PG_DTS_RETRY_SCALE => '60' });
wait_for(
	sub {
		die "pg_dts_ship exited early:\n" . ship_log($ship)
		  unless ship_running($ship);
		$node->safe_psql('postgres',
			"SELECT count(*) FROM pg_replication_slots "
			  . "WHERE slot_name = '$slot' AND active") eq '1';
	},
	60,
	"pg_dts_ship to stream with a short retry window");
$node->stop('fast');
my $rc = wait_ship_exit($ship, 60);
is($rc, 1, 'past its connection window pg_dts_ship exits 1');
like(ship_log($ship), qr/connection window/,
	'its log counts down the connection window');
$node->start;

# the slot kept its place: a new run resumes and ships a new row
$node->safe_psql('postgres', "INSERT INTO rows_t VALUES (-1, 0)");
$ship = start_ship(
	name => 'resume',
	args => [ '--task', $task, '--start' ],
	env => { PG_DTS_RETRY_SCALE => '60' });
wait_for(
	sub {
		die "pg_dts_ship exited early:\n" . ship_log($ship)
		  unless ship_running($ship);
		grep { ($_->{new}{id} // 0) == -1 } @{ json_lines_of($out) };
	},
	60,
	'the row written while no shipper ran');
pass('a new run after the failed one resumes from the slot');
is(stop_ship($ship, 'INT'), 0, 'and exits 0 on SIGINT');

$node->stop;
done_testing();

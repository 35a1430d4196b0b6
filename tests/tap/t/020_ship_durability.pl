#
# 020_ship_durability.pl
#	  kill -9 of pg_dts_ship under load.  A writer (pgbench, one client)
#	  commits numbered rows, one per transaction, while the shipper (file
#	  sink, fsync at every commit: -F 0) is killed with SIGKILL at random
#	  moments and started again on the same slot and the same output file,
#	  which it appends to (docs/shipper.md §4).  At the end every committed
#	  row must be in the file, in commit order, with no gap.
#
#	  Phase 1, plain JSON lines, about 20 s and five kills: rows may appear
#	  twice only if they were not yet confirmed to the server when the
#	  shipper died (at-least-once), never more often than that.
#	  Phase 2, with --begin-commit-lines, about 10 s and three kills: the
#	  sink skips what its last "commit" line already covers, so no row may
#	  appear twice at all, and every "begin" has its "commit".
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgDts::Test;

require_ship();

my $node = new_source_cluster('source');
my $dir = PostgreSQL::Test::Utils::tempdir;

# One phase: its own table, sequence, task, slot and output file.
sub run_phase
{
	my (%p) = @_;
	my $name = $p{name};
	my $table = "dur_$name";
	my $slot = "dts_sync_$name";
	my $out = "$dir/$name.jsonl";
	my $rate = 250;
	my $seconds = $p{seconds};

	$node->safe_psql('postgres',
		"CREATE SEQUENCE ${table}_seq; "
		  . "CREATE TABLE $table (id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())"
	);
	my $task = write_task(
		"$dir/$name.json",
		{
			name => $name,
			source => { conninfo => $node->connstr('postgres') },
			objects => { public => { tables => [$table] } },
			sink => {
				type => 'file',
				path => $out,
				fsync_interval => 0,
				begin_commit => $p{begin_commit}
				? JSON::PP::true
				: JSON::PP::false
			},
			heartbeat_interval => 1,
			status_interval => 0.5,
		});

	my @ship_args = ('--task', $task, '--start');
	my $run = 0;
	my $ship = start_ship(
		name => "${name}_run$run",
		args => [ @ship_args, '--create-slot' ]);
	my $streaming = sub {
		die "pg_dts_ship $name run $run exited:\n" . ship_log($ship)
		  unless ship_running($ship);
		$node->safe_psql('postgres',
			"SELECT count(*) FROM pg_replication_slots "
			  . "WHERE slot_name = '$slot' AND active") eq '1';
	};
	wait_for($streaming, 60, "pg_dts_ship to create $slot and stream");
	pass("$name: the first pg_dts_ship created $slot and streams");

	# the writer: one client, one numbered row per transaction
	write_file("$dir/$name.sql",
		"INSERT INTO $table (id) VALUES (nextval('${table}_seq'));\n");
	my $bench = start_bg(
		name => "${name}_writer",
		cmd => [
			'pgbench', '-n', '-c', '1', '-T', $seconds, '-R', $rate,
			'-f', "$dir/$name.sql",
			'-h', $node->host, '-p', $node->port, 'postgres'
		]);
	my $max_id = sub {
		$node->safe_psql('postgres', "SELECT coalesce(max(id), 0) FROM $table");
	};

	# kills at random row counts, spread over the writer's run
	my $expected_rows = $rate * $seconds;
	my $n = $p{kills};
	my @thresholds = map {
		int($expected_rows * (0.05 + 0.75 * $_ / $n)
			  + rand($expected_rows * 0.5 / $n))
	} 0 .. $n - 1;
	note "$name: killing pg_dts_ship when the writer passes rows @thresholds";

	my @kills;    # per kill: complete lines in the file, confirmed LSN
	foreach my $threshold (@thresholds)
	{
		# (a slow machine may end the writer before the last threshold)
		wait_for(sub { $max_id->() >= $threshold || !ship_running($bench) },
			90, "the writer to reach row $threshold");
		if ($max_id->() < $threshold)
		{
			note "$name: the writer ended before row $threshold: no more kills";
			last;
		}
		ok(ship_running($ship), "$name: run $run is alive at row $threshold")
		  or diag ship_log($ship);
		kill_ship($ship);
		wait_slot_inactive($node, $slot, 30);
		my $confirmed = slot_confirmed_lsn($node, $slot);
		my $lines = scalar @{ raw_json_lines($out) };
		note "$name: kill $run at row $threshold: $lines lines, confirmed $confirmed";
		push @kills,
		  { lines => $lines, confirmed => $confirmed, row => $threshold };

		$run++;
		$ship = start_ship(name => "${name}_run$run", args => \@ship_args);
		wait_for($streaming, 60, "pg_dts_ship $name run $run to stream again");
	}

	is(wait_ship_exit($bench, $seconds + 60),
		0, "$name: the writer (pgbench) finished without error")
	  or diag slurp_file($bench->{log});
	my ($rows, $max) = split /\|/,
	  $node->safe_psql('postgres', "SELECT count(*), max(id) FROM $table");
	note "$name: the writer committed $rows rows";
	cmp_ok(scalar @kills, '>=', $n - 2,
		"$name: pg_dts_ship was killed " . scalar(@kills) . " times");
	cmp_ok($rows, '>', $kills[-1]{row},
		"$name: the writer committed rows past the last kill");
	is($max, $rows, "$name: the table holds rows 1 .. N without a gap");

	# let the last run catch up (the heartbeat moves the slot past the
	# writer's last commit), then stop it
	my $final_lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	wait_slot_confirmed($node, $slot, $final_lsn, 120);
	pass("$name: the last run caught up past the last commit");
	is(stop_ship($ship, 'INT'), 0, "$name: the last run exits 0 on SIGINT");

	# ---- what the file holds ----
	my $read = read_json_lines($out);
	is(scalar @{ $read->{bad} }, 0,
		"$name: no torn or merged lines: every line is a JSON object")
	  or diag explain [ @{ $read->{bad} }[ 0 .. 2 ] ];
	is($read->{partial}, '', "$name: the file ends with a complete line");

	# (run, id, lsn) of every insert of the table, in file order
	my @seen;
	my $line = 0;
	my $k = 0;
	foreach my $r (@{ $read->{records} })
	{
		$line++;
		$k++ while $k < @kills && $line > $kills[$k]{lines};
		next
		  unless ($r->{kind} // '') eq 'insert'
		  && ($r->{table} // '') eq $table;
		push @seen, { run => $k, id => 0 + $r->{new}{id}, lsn => $r->{lsn} };
	}

	# within one run the rows follow each other without a gap; a run
	# after a kill never resumes after a row nobody wrote
	my $run_order_ok = 1;
	for my $i (1 .. $#seen)
	{
		my ($a, $b) = @seen[ $i - 1, $i ];
		next if $b->{id} == $a->{id} + 1;
		next if $b->{run} != $a->{run} && $b->{id} <= $a->{id};
		$run_order_ok = 0;
		diag "$name: row $b->{id} (run $b->{run}) after row $a->{id} (run $a->{run})";
	}
	ok($run_order_ok,
		"$name: each run ships consecutive rows and resumes without a gap");

	my %first;    # id -> first sighting
	my @unique;
	my @dups;
	foreach my $s (@seen)
	{
		if (exists $first{ $s->{id} })
		{
			push @dups, [ $first{ $s->{id} }, $s ];
			next;
		}
		$first{ $s->{id} } = $s;
		push @unique, $s;
	}

	is(scalar @unique, $rows, "$name: every committed row is in the output");
	my @misplaced = grep { $unique[$_]{id} != $_ + 1 } 0 .. $#unique;
	is(scalar @misplaced, 0,
		"$name: first sightings are rows 1 .. N in commit order, without a gap")
	  or diag "first out of place: position $misplaced[0], id "
	  . $unique[ $misplaced[0] ]{id};
	my @lsn_back = grep { lsn_cmp($unique[ $_ - 1 ]{lsn}, $unique[$_]{lsn}) > 0 }
	  1 .. $#unique;
	is(scalar @lsn_back, 0, "$name: commit LSNs never go backwards");

	# A row seen again must have been written by an earlier run and not yet
	# confirmed when that run was killed; each kill repeats at most what was
	# unconfirmed at that moment.
	my $bad_dups = 0;
	my %dups_after;    # kill index -> duplicates
	foreach my $d (@dups)
	{
		my ($a, $b) = @$d;
		my $kill = $b->{run} - 1;
		if (   $b->{run} <= $a->{run}
			|| $kill < 0
			|| lsn_cmp($a->{lsn}, $kills[$kill]{confirmed}) < 0)
		{
			$bad_dups++;
			diag "$name: row $a->{id} (lsn $a->{lsn}) first in run $a->{run}, "
			  . "again in run $b->{run}";
			next;
		}
		$dups_after{$kill}++;
	}
	is($bad_dups, 0,
		"$name: rows appear again only after a kill, and only if they were unconfirmed"
	);

	foreach my $i (0 .. $#kills)
	{
		my $unconfirmed = grep {
			$_->{run} <= $i
			  && lsn_cmp($_->{lsn}, $kills[$i]{confirmed}) >= 0
		} @unique;
		my $dup = $dups_after{$i} // 0;
		note "$name: kill $i (row $kills[$i]{row}, confirmed $kills[$i]{confirmed}): "
		  . "$unconfirmed rows written but unconfirmed, $dup written again";
		cmp_ok($dup, '<=', $unconfirmed,
			"$name: kill $i: duplicates are at most the rows unconfirmed at the kill"
		);
	}
	note "$name: "
	  . scalar(@dups)
	  . " duplicate rows in all, over "
	  . scalar(@kills)
	  . " kills; "
	  . scalar(@{ $read->{records} })
	  . " lines, "
	  . scalar(grep { ($_->{kind} // '') eq 'heartbeat' } @{ $read->{records} })
	  . " heartbeats";

	return { dups => scalar @dups, records => $read->{records} };
}

# ---- phase 1: at-least-once ----
run_phase(name => 'plain', seconds => 20, kills => 5, begin_commit => 0);

# ---- phase 2: begin/commit lines let the sink drop what it already has ----
my $r = run_phase(name => 'txn', seconds => 10, kills => 3, begin_commit => 1);
is($r->{dups}, 0,
	'txn: with --begin-commit-lines no row appears twice after kill -9');
my ($open, $orphans, $nested) = (0, 0, 0);
foreach my $rec (@{ $r->{records} })
{
	my $kind = $rec->{kind} // '';
	if ($kind eq 'begin') { $nested++ if $open; $open = 1; }
	elsif ($kind eq 'commit') { $orphans++ unless $open; $open = 0; }
	elsif ($kind ne 'message' || $rec->{transactional})
	{
		$orphans++ unless $open;
	}
}
is($nested + $orphans + $open, 0,
	'txn: every "begin" has its "commit" and every change lies between them');

$node->stop;
done_testing();

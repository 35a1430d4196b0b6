#
# 046_pg_sync_copy_relay.pl
#	  The full sync's relay (shipper/copy_relay.c, docs/pg-sync.md section
#	  3): each worker reads the source's COPY ahead of a busy destination,
#	  into a queue bounded by 16 MB, and hands it on in 64 kB CopyData
#	  messages.
#
#	  Task slow: one worker copies relay.wide (600 rows of 100 kB, each
#	  bigger than a CopyData message) into a destination that is slow on
#	  purpose (a CHECK constraint that sleeps 5 ms a row: 3 s for the
#	  table).  While it runs, the shipper's peak memory (VmHWM) is sampled:
#	  it must rise by more than 8 MB over the shipper's own size before the
#	  copy (the source was read ahead of the destination) and stay under
#	  the queue's bound plus 16 MB (the 60 MB table was not all read into
#	  memory).  Every row must arrive equal.
#
#	  Task huge: relay.huge holds two values of 20 MB (a row bigger than
#	  the whole queue, which is then handed on alone), a NULL and small
#	  rows, copied on two workers with relay.wide: every value arrives
#	  equal.
#
#	  Task fail: the destination rejects relay.big (120,000 rows of 1 kB,
#	  one range) at its 1000th row (a CHECK whose function says no there).
#	  The server skips the rest of a failed COPY and libpq reads its error
#	  only at the COPY's end, so the worker must see the failure on the
#	  side (full_sync.c dest_copy_ended()) and stop reading the source:
#	  the shipper must fail with the server's error, and the source must
#	  have read less than half of the table (its own count, seq_tup_read,
#	  and the shipper's line).  A build without the check reads it all.
#	  Then, with the destination's function fixed, the same task runs
#	  again and completes, as the error's hint says.
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PgDts::Test;

require_ship();

my $dir = PostgreSQL::Test::Utils::tempdir;

my $src = new_source_cluster('source');
my $dst = new_destination_cluster('destination', 'slow', 'huge', 'fail');

$src->safe_psql(
	'postgres', q{
CREATE SCHEMA relay;
CREATE FUNCTION relay.slow_ok(x int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  -- only slow where the task asks for it (the destination's database)
  IF current_database() = 'slow' THEN
    PERFORM pg_sleep(0.005);
  END IF;
  RETURN x > 0;
END $$;
CREATE TABLE relay.wide (id int PRIMARY KEY, pad text CHECK (relay.slow_ok(id)));
INSERT INTO relay.wide
  SELECT g, string_agg(md5((g * 10000 + i)::text), '') FROM generate_series(1, 600) g,
    generate_series(1, 3200) i GROUP BY g;
CREATE TABLE relay.huge (id int PRIMARY KEY, v text);
INSERT INTO relay.huge VALUES (1, repeat('ab', 10 * 1024 * 1024)),
  (2, repeat(md5('x'), 640 * 1024)), (3, NULL);
INSERT INTO relay.huge SELECT g, md5(g::text) FROM generate_series(4, 5000) g;
});

# task slow copies relay.wide alone: its CHECK's function must exist there
$dst->safe_psql('slow', "CREATE SCHEMA relay");
$dst->safe_psql('slow',
	$src->safe_psql('postgres', "SELECT pg_get_functiondef('relay.slow_ok(int)'::regprocedure)"));

# "count md5" of a table's rows in key order, the same query on both sides
sub table_digest
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db,
		    "SELECT count(*) || ' ' || md5(string_agg(id || ':' || "
		  . "coalesce(md5(t::text), 'null'), ',' ORDER BY id)) FROM relay.$table t");
}

# kB of a status line of /proc/pid/status (VmHWM: peak resident set), once
# the process runs pg_dts_ship (not the test's fork before its exec)
sub proc_kb
{
	my ($pid, $field) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	my $first = <$fh>;
	return undef unless defined $first && $first =~ /^Name:\s+pg_dts_ship$/;
	while (my $line = <$fh>)
	{
		return $1 if $line =~ /^$field:\s+(\d+) kB/;
	}
	return undef;
}

# -- slow: a busy destination, one worker --------------------------------
my $task = write_task(
	"$dir/slow.json",
	{
		name => 'relay_slow',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dst->connstr('slow') },
		objects => { relay => { tables => ['wide'] } },
		sync => [ 'schema', 'full' ],
		parallel => { full_sync_workers => 1 },
		heartbeat_interval => 0,
	});
my $ship = start_ship(name => 'slow', args => [ '--task', $task, '--start', '-n', '-v' ]);

# the shipper's size before the copy: sampled while it does the schema
# sync (pre-data is restored long before the first row is copied)
my ($base, $peak);
while (ship_running($ship))
{
	my $hwm = proc_kb($ship->{pid}, 'VmHWM');
	if (defined $hwm)
	{
		$base //= $hwm;
		$peak = $hwm;
	}
	usleep(20_000);
}
is($ship->{rc}, 0, 'slow: schema + full sync into a slow destination exits 0')
  or diag slurp_file($ship->{log});
ok(defined $base && defined $peak, "slow: the shipper's memory was sampled");
my $grew_mb = ($peak - $base) / 1024;
cmp_ok($grew_mb, '>', 8,
	"slow: the source was read ahead of the busy destination (peak memory grew by "
	  . sprintf('%.1f', $grew_mb) . " MB over $base kB)");
cmp_ok($grew_mb, '<', 16 + 16,
	"slow: the read-ahead stayed bounded (grew by "
	  . sprintf('%.1f', $grew_mb) . " MB for a 60 MB table; the queue's bound is 16 MB)");
is(table_digest($dst, 'slow', 'wide'), table_digest($src, 'postgres', 'wide'),
	'slow: relay.wide arrived equal (600 rows of 100 kB)');

# -- huge: rows bigger than the queue, two workers ----------------------------
$task = write_task(
	"$dir/huge.json",
	{
		name => 'relay_huge',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dst->connstr('huge') },
		objects => { relay => {} },
		sync => [ 'schema', 'full' ],
		parallel => { full_sync_workers => 2 },
		heartbeat_interval => 0,
	});
my ($rc, $out, $err) = run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
is($rc, 0, 'huge: schema + full sync exits 0') or diag $err;
is(table_digest($dst, 'huge', 'huge'), table_digest($src, 'postgres', 'huge'),
	'huge: relay.huge arrived equal (two 20 MB values, a NULL, 4997 small rows)');
is( $dst->safe_psql('huge', 'SELECT octet_length(v) FROM relay.huge WHERE id IN (1, 2) ORDER BY id'),
	"20971520\n20971520", 'huge: both 20 MB values are whole');
is(table_digest($dst, 'huge', 'wide'), table_digest($src, 'postgres', 'wide'),
	'huge: relay.wide arrived equal');

# -- fail: the destination rejects a row early in a big range ----------------
$src->safe_psql(
	'postgres', q{
CREATE FUNCTION relay.big_ok(x int) RETURNS boolean LANGUAGE sql IMMUTABLE
  AS 'SELECT true';
CREATE TABLE relay.big (id int PRIMARY KEY, pad text CHECK (relay.big_ok(id)));
INSERT INTO relay.big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 120000) g;
});
# the destination's function rejects ids from 1000 on
$dst->safe_psql('fail', q{
CREATE SCHEMA relay;
CREATE FUNCTION relay.big_ok(x int) RETURNS boolean LANGUAGE sql IMMUTABLE
  AS 'SELECT x < 1000';
});
my $read_before = $src->safe_psql('postgres',
	"SELECT seq_tup_read FROM pg_stat_user_tables WHERE relid = 'relay.big'::regclass");
$task = write_task(
	"$dir/fail.json",
	{
		name => 'relay_fail',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dst->connstr('fail') },
		objects => { relay => { tables => ['big'] } },
		sync => [ 'schema', 'full' ],
		parallel => { full_sync_workers => 1 },
		heartbeat_interval => 0,
		retry => { connection_minutes => 0, other_minutes => 0 },
	});
($rc, $out, $err) = run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
isnt($rc, 0, 'fail: a full sync the destination rejects fails');
like($err, qr/could not copy range 1\/1 of relay\.big: new row for relation "big" violates check constraint "big_id_check" \(COPY big, line 1000\b/,
	"fail: the error is the destination's, and names the table") or diag $err;
my ($relayed) = $err =~ /stopped reading the range from the source after (\d+) rows/;
ok(defined $relayed && $relayed < 60000,
	'fail: the shipper stopped reading the source early (' . ($relayed // 'no line') . ' of 120000 rows)')
  or diag $err;
# the source's own count, once its COPY sessions are gone (they report
# their statistics when they exit)
$src->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE query ILIKE 'COPY%relay%big%'")
  or die 'the source still runs the COPY of relay.big';
my $read = $src->safe_psql('postgres',
	"SELECT seq_tup_read - $read_before FROM pg_stat_user_tables WHERE relid = 'relay.big'::regclass");
cmp_ok($read, '<', 60000, "fail: the source read $read of 120000 rows");
like($err, qr/hint: .*Fix the cause and run the task again/, 'fail: the hint says what to do');

# as the hint says: fixed, the same task runs again and completes
$dst->safe_psql('fail',
	"CREATE OR REPLACE FUNCTION relay.big_ok(x int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'");
($rc, $out, $err) = run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
is($rc, 0, 'fail: run again once the destination accepts the rows, the task completes')
  or diag $err;
is(table_digest($dst, 'fail', 'big'), table_digest($src, 'postgres', 'big'),
	'fail: relay.big arrived equal on the second run');

done_testing();

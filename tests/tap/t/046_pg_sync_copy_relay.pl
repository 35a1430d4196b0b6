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
my $dst = new_destination_cluster('destination', 'slow', 'huge');

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

done_testing();

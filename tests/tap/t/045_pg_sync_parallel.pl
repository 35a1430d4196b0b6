#
# 045_pg_sync_parallel.pl
#	  The task file's "parallel" object (docs/task.md, docs/pg-sync.md
#	  sections 2 and 3): "full_sync_workers" is the number of destination
#	  connections the full sync copies on, "post_data_jobs" the number
#	  post-data builds indexes and constraints on.
#
#	  The destination logs every statement of the three target databases
#	  (log_statement = all, with the backend's pid in each line), and the
#	  test counts the distinct backends that ran a COPY ... FROM STDIN and
#	  those that built one of the indexes or constraints.  The full sync is
#	  throttled (2 MB/s, four 1.4 MB tables) so that no worker can finish
#	  its table before the others have taken theirs, and four indexes call
#	  a function that sleeps 10 ms a row (1 s each), so that no post-data
#	  connection can build them all alone.
#
#	  Task a: full_sync_workers 1, post_data_jobs 1: one copying backend,
#	  one backend for every index.  Task b: full_sync_workers 3,
#	  post_data_jobs 2: exactly three copying backends, exactly two that
#	  build indexes (the defaults are 4).  All run with
#	  PG_DTS_FULL_SYNC_WORKERS=4 and PG_DTS_POST_DATA_JOBS=4 in the
#	  environment: the task's settings win.  The indexes are left to
#	  post-data (PG_DTS_NO_EARLY_INDEXES=1): no index build starts before
#	  the last COPY, and every copy must be complete with every index
#	  valid.  Task c is task b with the task file's "early_indexes": false
#	  instead of PG_DTS_NO_EARLY_INDEXES: the same, and the shipper says
#	  that the task file left the indexes to post-data.
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgDts::Test;

require_ship();

my $dir = PostgreSQL::Test::Utils::tempdir;

my $src = new_source_cluster('source');
my $dst = new_destination_cluster('destination', 'a', 'b', 'c');

$src->safe_psql(
	'postgres', q{
CREATE SCHEMA par;
CREATE FUNCTION par.slow(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.01);
  RETURN x;
END $$;
DO $$
BEGIN
  FOR i IN 1..4 LOOP
    EXECUTE format('CREATE TABLE par.big%s (id int PRIMARY KEY, pad text)', i);
    EXECUTE format('INSERT INTO par.big%s SELECT g, repeat(''x'', 40) || g '
                   'FROM generate_series(1, 20000) g', i);
    EXECUTE format('CREATE TABLE par.s%s (id int PRIMARY KEY, x int)', i);
    EXECUTE format('INSERT INTO par.s%s SELECT g, g FROM generate_series(1, 100) g', i);
    EXECUTE format('CREATE INDEX s%s_slow ON par.s%s (par.slow(x))', i, i);
  END LOOP;
END $$;
});

# every statement of a, b and c in the log, with the backend's pid
$dst->safe_psql('postgres', "ALTER DATABASE $_ SET log_statement = 'all'")
  foreach qw(a b c);

# The log's entries (a line with the prefix and its continuation lines)
# from offset on, as [pid, text]
sub log_entries
{
	my ($offset) = @_;
	my @entries;

	open(my $fh, '<', $dst->logfile) or die "could not open the log: $!";
	seek($fh, $offset, 0);
	while (my $line = <$fh>)
	{
		if ($line =~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] (.*)/s)
		{
			push @entries, [ $1, $2 ];
		}
		elsif (@entries)
		{
			$entries[-1][1] .= $line;
		}
	}
	close($fh);
	return @entries;
}

# the number of distinct backends whose statements match re
sub backends
{
	my ($re, @entries) = @_;
	my %pids;

	foreach my $e (@entries)
	{
		$pids{ $e->[0] } = 1 if $e->[1] =~ /statement: / && $e->[1] =~ $re;
	}
	return scalar(keys %pids);
}

# the position in entries of the first or last statement matching re (-1: none)
sub statement_at
{
	my ($which, $re, @entries) = @_;
	my @at = grep { $entries[$_][1] =~ /statement: / && $entries[$_][1] =~ $re }
	  0 .. $#entries;

	return -1 unless @at;
	return $which eq 'first' ? $at[0] : $at[-1];
}

my $copy_re = qr/\bCOPY "par"\."\w+" .*FROM STDIN/s;
my $index_re = qr/CREATE INDEX s\d_slow|ADD CONSTRAINT (?:big|s)\d_pkey/;

foreach my $run ([ 'a', 1, 1, 'env' ], [ 'b', 3, 2, 'env' ], [ 'c', 3, 2, 'task' ])
{
	my ($db, $workers, $jobs, $early_off) = @$run;
	my %parallel = (full_sync_workers => $workers, post_data_jobs => $jobs);
	my %env = (PG_DTS_FULL_SYNC_WORKERS => 4, PG_DTS_POST_DATA_JOBS => 4);

	if ($early_off eq 'task')
	{
		$parallel{early_indexes} = JSON::PP::false;
	}
	else
	{
		$env{PG_DTS_NO_EARLY_INDEXES} = 1;
	}
	my $task = write_task(
		"$dir/$db.json",
		{
			name => "par_$db",
			source => { conninfo => $src->connstr('postgres') },
			sink => { type => 'pg', conninfo => $dst->connstr($db) },
			objects => { par => {} },
			sync => [ 'schema', 'full' ],
			throttle => { mb_per_second => 2 },
			parallel => \%parallel,
			heartbeat_interval => 0,
		});
	my $offset = -s $dst->logfile;
	my ($rc, $out, $err) = run_ship(
		args => [ '--task', $task, '--start', '-n', '-v' ],
		env => \%env,
		timeout => 180);
	is($rc, 0, "$db: schema + full sync exits 0") or diag $err;
	my @entries = log_entries($offset);

	is(backends($copy_re, @entries), $workers,
		"$db: full_sync_workers $workers: $workers destination backends ran the copies");
	is(backends($index_re, @entries), $jobs,
		"$db: post_data_jobs $jobs: $jobs destination backends built the indexes and constraints");
	cmp_ok(statement_at('first', $index_re, @entries), '>',
		statement_at('last', $copy_re, @entries),
		"$db: no index build starts before the last COPY (none during the full sync)");
	if ($jobs > 1)
	{
		like($err,
			$early_off eq 'task'
			? qr/full sync of task "par_$db": no index is built during the copy, post-data builds them all \(the task sets "parallel": \{"early_indexes": false\}\)/
			: qr/full sync of task "par_$db": no index is built during the copy, post-data builds them all \(PG_DTS_NO_EARLY_INDEXES is set\)/,
			"$db: the shipper says that the indexes are left to post-data, and what set it");
	}
	if ($jobs > 1)
	{
		like($err,
			qr/schema sync of task "par_$db": 12 post-data indexes and constraints on $jobs connections/,
			"$db: the shipper says post-data builds the 12 indexes and constraints on $jobs connections");
	}
	else
	{
		unlike($err, qr/post-data indexes and constraints on \d+ connections/,
			"$db: with one job post-data runs as one script");
	}

	foreach my $t (map { ("big$_", "s$_") } 1 .. 4)
	{
		is( $dst->safe_psql($db, "SELECT count(*) || ' ' || sum(id) FROM par.$t"),
			$src->safe_psql('postgres', "SELECT count(*) || ' ' || sum(id) FROM par.$t"),
			"$db: par.$t copied whole");
	}
	is( $dst->safe_psql($db,
			"SELECT count(*) FILTER (WHERE indisvalid AND indisready) FROM pg_index i "
			  . "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'par'::regnamespace"),
		'12', "$db: the 12 indexes (8 primary keys, 4 slow) exist, valid and ready");
}

$src->stop;
$dst->stop;
done_testing();

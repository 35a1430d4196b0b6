#-------------------------------------------------------------------------
#
# 043_pg_dest_crash.pl
#	  The destination of a PostgreSQL-to-PostgreSQL task crashes (immediate
#	  shutdown, then start) three times while counter(id, n) receives
#	  "UPDATE counter SET n = n + 1" transactions on the source.  The pg
#	  sink commits its batches without waiting for the WAL flush and
#	  reports a position as durable only after a synchronous commit has
#	  flushed them: batches lost in a crash must come again from the slot,
#	  and none may be applied twice.
#
# tests/tap/t/043_pg_dest_crash.pl
#
#-------------------------------------------------------------------------
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgDts::Test;

require_ship();

my $dir = PostgreSQL::Test::Utils::tempdir;
my $updates = 3000;

my $src = new_source_cluster('source');
my $dst = new_destination_cluster('destination', 'dst');

$src->safe_psql(
	'postgres', q{
CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO counter VALUES (1, 0);
});

my $task = write_task(
	"$dir/crash.json",
	{
		name => 'crash',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dst->connstr('dst') },
		objects => { public => { tables => ['counter'] } },
		sync => [ 'schema', 'full', 'incremental' ],
		heartbeat_interval => 0,
		status_interval => 0.5,
	});
my $ship = start_ship(
	name => 'crash',
	args => [ '--task', $task, '--start' ],
	env => { PG_DTS_RETRY_SCALE => '60' });

wait_for(
	sub {
		# the slot is active during the initial sync too (the snapshot's
		# connection holds it): streaming starts after post-data
		my ($rc, $post) = $dst->psql('dst',
			"SELECT count(*) FROM dts.schema_sync_state "
			  . "WHERE task = 'crash' AND section = 'post-data'");
		$rc == 0 && $post eq '1'
		  && slot_streaming($src, 'dts_sync_crash');
	},
	120,
	'pg_dts_ship to finish the initial sync and stream');

# every applied update records its n, in the apply's transaction
$dst->safe_psql(
	'dst', q{
CREATE TABLE counter_seen (n bigint NOT NULL);
CREATE FUNCTION counter_seen() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO counter_seen VALUES (NEW.n); RETURN NEW; END$$;
CREATE TRIGGER counter_seen AFTER UPDATE ON counter
  FOR EACH ROW EXECUTE FUNCTION counter_seen();
ALTER TABLE counter ENABLE ALWAYS TRIGGER counter_seen;
});

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

my @thresholds = map { int($updates * ($_ + 0.15 + rand(0.6)) / 3) } 0 .. 2;
note "crashing the destination when counter.n passes @thresholds";
my $crashes = 0;
foreach my $threshold (@thresholds)
{
	wait_for(sub { $src_n->() >= $threshold || !ship_running($writer) },
		120, "the writer to reach n = $threshold");
	last if $src_n->() < $threshold;
	$dst->stop('immediate');
	$dst->start;
	$crashes++;
	note "crash $crashes at n = $threshold: destination n = "
	  . $dst->safe_psql('dst', 'SELECT n FROM counter WHERE id = 1');
}
is($crashes, 3, 'the destination crashed three times during the updates');

is(wait_ship_exit($writer, 120), 0, 'the writer (pgbench) finished without error')
  or diag slurp_file($writer->{log});
my $final_n = $src_n->();
is($final_n, $updates, "the source's counter.n is $updates");

wait_for(
	sub {
		ship_running($ship)
		  or die "pg_dts_ship exited:\n" . ship_log($ship);
		$dst->safe_psql('dst', 'SELECT n FROM counter WHERE id = 1') eq $final_n;
	},
	120,
	'the destination to catch up');
is($dst->safe_psql('dst', 'SELECT n FROM counter WHERE id = 1'),
	$final_n, "the destination's counter.n equals the source's ($final_n)");
my ($seen, $distinct, $min, $max) = split /\|/,
  $dst->safe_psql('dst',
	'SELECT count(*), count(DISTINCT n), min(n), max(n) FROM counter_seen');
is("$seen $distinct $min $max", "$updates $updates 1 $updates",
	"each of the $updates updates was applied exactly once across the crashes");
is(stop_ship($ship, 'INT', 60), 0, 'pg_dts_ship exits 0 on SIGINT');

$src->stop;
$dst->stop;
done_testing();

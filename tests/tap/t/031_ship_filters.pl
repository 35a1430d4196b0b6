#
# 031_ship_filters.pl
#	  Object selection, row filters and DML operation selection from a task
#	  file drop exactly what they should: replaying the shipped changes must
#	  give exactly the rows the filter selects from the table (docs/plugin.md
#	  table_rules: a row moving into the filter arrives as an INSERT, one
#	  leaving it as a DELETE), and a dml_op list keeps only those kinds.
#	  Then the heartbeat: with heavy writes only to a table the task does
#	  not select, the slot's confirmed position keeps advancing (the
#	  heartbeat row comes back through the slot), so the WAL it retains
#	  stays bounded, and heartbeat lines appear in the output.
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

$node->safe_psql(
	'postgres', q{
CREATE TABLE orders (id int PRIMARY KEY, region text, amount numeric);
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE TABLE keyed (id int PRIMARY KEY, v text);
CREATE TABLE audit (id int PRIMARY KEY, msg text);
CREATE TABLE nodel (id int PRIMARY KEY, v int);
CREATE TABLE trunc_ok (id int PRIMARY KEY);
CREATE TABLE mapped (id int PRIMARY KEY, total numeric, secret text);
CREATE TABLE unselected (id int PRIMARY KEY);
CREATE SCHEMA other;
CREATE TABLE other.t (id int PRIMARY KEY);
});

# ---- filters and DML operations ----
my $out = "$dir/filters.jsonl";
my $task = write_task(
	"$dir/filters.json",
	{
		name => 'filters',
		source => { conninfo => $node->connstr('postgres') },
		objects => {
			public => {
				tables => {
					orders => { filter => "region = 'EU' AND amount > 0" },
					keyed => { filter => 'id % 2 = 0' },
					audit => { dml_op => 'insert' },
					nodel => { dml_op => [ 'insert', 'update' ] },
					trunc_ok => { dml_op => 'insert,truncate' },
					mapped => {
						name => 'mapped_v2',
						columns => { id => {}, total => { name => 'amount' } }
					},
				}
			}
		},
		sink => { type => 'file', path => $out, fsync_interval => 0 },
		heartbeat_interval => 0,
		status_interval => 1,
	});
my $slot = 'dts_sync_filters';

my $ship = start_ship(
	name => 'filters',
	args => [ '--task', $task, '--create-slot', '--start' ]);
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

$node->safe_psql(
	'postgres', q{
-- orders: rows in and out of the filter, moving across it both ways
INSERT INTO orders SELECT g, CASE WHEN g % 3 = 0 THEN 'US' ELSE 'EU' END,
                          (g % 5) - 1 FROM generate_series(1, 60) g;
UPDATE orders SET amount = 10 WHERE id BETWEEN 1 AND 20;      -- some move in
UPDATE orders SET region = 'US' WHERE id BETWEEN 15 AND 25;   -- some move out
UPDATE orders SET region = 'EU', amount = 5 WHERE id BETWEEN 40 AND 45;
UPDATE orders SET amount = amount + 1 WHERE region = 'EU';    -- stay in
DELETE FROM orders WHERE id % 7 = 0;
-- keyed: key-only filter under REPLICA IDENTITY DEFAULT
INSERT INTO keyed SELECT g, 'v' || g FROM generate_series(1, 20) g;
UPDATE keyed SET v = v || '!';
DELETE FROM keyed WHERE id <= 10;
-- audit: inserts only
INSERT INTO audit SELECT g, 'm' || g FROM generate_series(1, 10) g;
UPDATE audit SET msg = 'changed';
DELETE FROM audit WHERE id > 5;
TRUNCATE audit;
INSERT INTO audit VALUES (11, 'after truncate');
-- nodel: inserts and updates
INSERT INTO nodel SELECT g, g FROM generate_series(1, 10) g;
UPDATE nodel SET v = v * 100 WHERE id % 2 = 0;
CREATE TABLE nodel_before AS SELECT * FROM nodel;
DELETE FROM nodel WHERE id <= 3;
-- trunc_ok: inserts and truncate
INSERT INTO trunc_ok SELECT generate_series(1, 5);
TRUNCATE trunc_ok;
INSERT INTO trunc_ok VALUES (6), (7);
-- mapped: two of three columns, renamed
INSERT INTO mapped VALUES (1, 9.5, 'do not ship'), (2, 0, 'nor this');
UPDATE mapped SET secret = 'still not', total = 1 WHERE id = 2;
-- not selected at all
INSERT INTO unselected SELECT generate_series(1, 5);
INSERT INTO other.t SELECT generate_series(1, 5);
});

# without a heartbeat, the shipper confirms only what it wrote: wait for
# a last marker transaction on a selected table instead
$node->safe_psql('postgres', "INSERT INTO trunc_ok VALUES (1000)");
wait_for(
	sub {
		grep { ($_->{table} // '') eq 'trunc_ok' && ($_->{new}{id} // 0) == 1000 }
		  @{ json_lines_of($out) };
	},
	60,
	'the marker row in the output');
$node->safe_psql('postgres', "DELETE FROM trunc_ok WHERE id = 1000");
is(stop_ship($ship, 'TERM'), 0, 'pg_dts_ship exits 0 on SIGTERM');

my $read = read_json_lines($out);
is(scalar @{ $read->{bad} }, 0, 'every line is a JSON object');
my @recs = @{ $read->{records} };

sub of_table
{
	my ($t) = @_;
	return grep { ($_->{schema} // '') eq 'public' && ($_->{table} // '') eq $t }
	  @recs;
}

# Applies the changes of one table to a hash id => row.
sub replay
{
	my (@changes) = @_;
	my %rows;
	foreach my $c (@changes)
	{
		if ($c->{kind} eq 'insert') { $rows{ $c->{new}{id} } = $c->{new}; }
		elsif ($c->{kind} eq 'update')
		{
			delete $rows{ $c->{old}{id} } if $c->{old};
			$rows{ $c->{new}{id} } = $c->{new};
		}
		elsif ($c->{kind} eq 'delete') { delete $rows{ $c->{old}{id} }; }
		elsif ($c->{kind} eq 'truncate') { %rows = (); }
	}
	return \%rows;
}

sub table_rows
{
	my ($query) = @_;
	my %rows;
	foreach (split /\n/, $node->safe_psql('postgres', $query))
	{
		my ($id, $v) = split /\|/, $_, 2;
		$rows{$id} = $v;
	}
	return \%rows;
}

# orders
my $got = replay(of_table('orders'));
is_deeply(
	{ map { $_ => "$got->{$_}{region}|$got->{$_}{amount}" } keys %$got },
	table_rows(
		"SELECT id, region || '|' || amount FROM orders WHERE region = 'EU' AND amount > 0"
	),
	'orders: replaying the output gives exactly the rows the filter selects');
my %kinds;
$kinds{ $_->{kind} }++ foreach of_table('orders');
ok($kinds{insert} && $kinds{update} && $kinds{delete},
	'orders: inserts, updates and deletes all came through the filter');
my @bad_rows = grep {
	my $r = $_->{new} // $_->{old};
	!($r->{region} eq 'EU' && $r->{amount} > 0)
} of_table('orders');
is(scalar @bad_rows, 0, 'orders: every shipped row version matches the filter');

# keyed
$got = replay(of_table('keyed'));
is_deeply(
	{ map { $_ => $got->{$_}{v} } keys %$got },
	table_rows("SELECT id, v FROM keyed WHERE id % 2 = 0"),
	'keyed: replaying a key-only filter gives the even rows');
is(scalar(grep { ($_->{new} // $_->{old})->{id} % 2 } of_table('keyed')),
	0, 'keyed: no odd row was shipped');

# audit: inserts only
is_deeply(
	[ map { $_->{kind} } of_table('audit') ],
	[ ('insert') x 11 ],
	'audit (dml_op "insert"): only the eleven inserts');
is_deeply(
	[ map { $_->{new}{id} } of_table('audit') ],
	[ 1 .. 11 ],
	'audit: every insert, in order');
is(scalar(grep { $_->{kind} eq 'truncate' && grep { $_->{table} eq 'audit' } @{ $_->{relations} } } @recs),
	0, 'audit: its TRUNCATE was dropped');

# nodel: inserts and updates
my @nodel = of_table('nodel');
is(scalar(grep { $_->{kind} eq 'delete' } @nodel), 0, 'nodel (insert, update): no delete');
is(scalar(grep { $_->{kind} eq 'update' } @nodel), 5, 'nodel: the five updates');
$got = replay(@nodel);
is_deeply(
	{ map { $_ => $got->{$_}{v} } keys %$got },
	table_rows("SELECT id, v FROM nodel_before"),
	'nodel: replaying gives the rows as they were before the deletes');

# trunc_ok: inserts and truncate
my @trunc = grep {
	$_->{kind} eq 'truncate' && grep { $_->{table} eq 'trunc_ok' } @{ $_->{relations} }
} @recs;
is(scalar @trunc, 1, 'trunc_ok (insert, truncate): the TRUNCATE is there');
my @tr_all = grep {
	($_->{table} // '') eq 'trunc_ok'
	  || ($_->{kind} eq 'truncate' && grep { $_->{table} eq 'trunc_ok' } @{ $_->{relations} })
} @recs;
$got = replay(@tr_all);
is_deeply([ sort { $a <=> $b } keys %$got ], [ 6, 7, 1000 ],
	'trunc_ok: replaying gives the rows after the TRUNCATE (and the marker)');
is(scalar(grep { $_->{kind} eq 'delete' } of_table('trunc_ok')), 0,
	'trunc_ok: the marker\'s DELETE was dropped');

# mapped: the column selection happens in the plugin (table_rules), the
# renaming in the shipper's router (docs/task.md §2-3)
my @mapped = grep {
	($_->{schema} // '') eq 'public'
	  && ($_->{table} // '') =~ /^mapped(_v2)?$/
} @recs;
is(scalar @mapped, 3, 'mapped: two inserts and an update');
is(scalar(grep { exists $_->{new}{secret} } @mapped),
	0, 'mapped: the column that is not listed is never shipped');
TODO:
{
	local $TODO = 'name mapping (router) not in the shipper yet'
	  unless grep { ($_->{table} // '') eq 'mapped_v2' } @mapped;
	is_deeply(
		[ map { $_->{table} } @mapped ],
		[ ('mapped_v2') x 3 ],
		'mapped: the table arrives under its name at the sink');
	is_deeply(
		[ map { $_->{new} } @mapped ],
		[
			{ id => 1, amount => 9.5 },
			{ id => 2, amount => 0 },
			{ id => 2, amount => 1 }
		],
		'mapped: "total" arrives as "amount"');
}

# not selected
is(scalar(of_table('unselected')), 0, 'a table of the schema that is not listed: nothing');
is(scalar(grep { ($_->{schema} // '') eq 'other' } @recs), 0, 'another schema: nothing');
# the extension's DDL capture table always rides along (docs/task.md §3)
my %selected = map { $_ => 1 }
  qw(orders keyed audit nodel trunc_ok mapped mapped_v2 dts_ddl_command);
is( scalar(
		grep {
			defined $_->{table}
			  && !($_->{schema} eq 'public' && $selected{ $_->{table} })
		} @recs),
	0,
	'no line of a table the task does not select (but dts_ddl_command)');
ok( scalar(grep { ($_->{table} // '') eq 'dts_ddl_command' } @recs),
	'the DDL capture row of CREATE TABLE AS is shipped with the task');

# ---- heartbeat keeps the slot moving past unselected writes ----
$node->safe_psql('postgres', q{
CREATE TABLE idle (id int PRIMARY KEY);
CREATE TABLE noise (id int, pad text);
});
my $hb_out = "$dir/heartbeat.jsonl";
my $hb_task = write_task(
	"$dir/heartbeat.json",
	{
		name => 'hb',
		source => { conninfo => $node->connstr('postgres') },
		objects => { public => { tables => ['idle'] } },
		sink => { type => 'file', path => $hb_out, fsync_interval => 0 },
		heartbeat_interval => 1,
		status_interval => 1,
	});
my $hb_slot = 'dts_sync_hb';
my $hb = start_ship(
	name => 'heartbeat',
	args => [ '--task', $hb_task, '--create-slot', '--start' ]);
wait_for(
	sub {
		die "pg_dts_ship exited early:\n" . ship_log($hb)
		  unless ship_running($hb);
		grep { $_->{kind} eq 'heartbeat' } @{ json_lines_of($hb_out) };
	},
	60,
	'the first heartbeat line');
pass('a heartbeat line arrives while the selected table is idle');

my $start_lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
write_file("$dir/noise.sql",
	"INSERT INTO noise SELECT g, repeat('n', 100) FROM generate_series(1, 1000) g;\n"
);
# 200 transactions of 1000 rows, 20 a second: ten seconds of writes
my $bench = start_bg(
	name => 'noise',
	cmd => [
		'pgbench', '-n', '-c', '1', '-t', '200', '-R', '20',
		'-f', "$dir/noise.sql",
		'-h', $node->host, '-p', $node->port, 'postgres'
	]);

my @samples;    # [ retained bytes behind confirmed, confirmed lsn ]
wait_for(
	sub {
		my ($lag, $confirmed) = split /\|/, $node->safe_psql(
			'postgres', qq{
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), confirmed_flush_lsn
FROM pg_replication_slots WHERE slot_name = '$hb_slot'});
		push @samples, [ $lag, $confirmed ];
		return !ship_running($bench);
	},
	120,
	'the noise writer to finish');
is($bench->{rc}, 0, 'the noise writer (pgbench) succeeded');
my $end_lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
my $written = $node->safe_psql('postgres',
	"SELECT pg_wal_lsn_diff('$end_lsn', '$start_lsn')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM noise'), 200000,
	'200000 rows written to the unselected table');

my %distinct = map { $_->[1] => 1 } @samples;
my $max_lag = 0;
$max_lag = $_->[0] > $max_lag ? $_->[0] : $max_lag foreach @samples;
note sprintf(
	'%d samples, %d distinct confirmed positions, %d bytes of WAL written, at most %d bytes behind',
	scalar @samples, scalar keys %distinct, $written, $max_lag);
cmp_ok(scalar keys %distinct, '>=', 4,
	'the confirmed position kept advancing during the writes');
cmp_ok($max_lag, '<', $written / 2,
	'the slot never fell behind by half of the WAL written');

wait_slot_confirmed($node, $hb_slot, $end_lsn, 30);
pass('after the writes the slot is confirmed past them (heartbeat)');
# restart_lsn moves at the next running-transactions record after the
# confirmed position: a checkpoint writes one now
$node->safe_psql('postgres', 'CHECKPOINT');
wait_for(
	sub {
		$node->safe_psql('postgres',
			"SELECT pg_wal_lsn_diff(restart_lsn, '$end_lsn') >= 0 "
			  . "FROM pg_replication_slots WHERE slot_name = '$hb_slot'") eq 't';
	},
	60,
	'restart_lsn to pass the end of the writes');
pass('restart_lsn moved past the writes: their WAL can be recycled');

is(stop_ship($hb, 'INT'), 0, 'the heartbeat task exits 0 on SIGINT');
my @hb_recs = @{ json_lines_of($hb_out) };
my @beats = grep { $_->{kind} eq 'heartbeat' } @hb_recs;
cmp_ok(scalar @beats, '>=', 3, 'several heartbeat lines in the output');
is(scalar(grep { $_->{kind} ne 'heartbeat' } @hb_recs), 0,
	'nothing but heartbeats: no row of the unselected table');
is($beats[0]{task_name}, 'hb', 'a heartbeat line names the task');
is($beats[0]{slot_name}, $hb_slot, 'and the slot');
like($beats[-1]{latency_ms} // '', qr/^\d+(\.\d+)?$/,
	'and carries the latency in milliseconds');

$node->stop;
done_testing();

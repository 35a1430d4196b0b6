#
# 042_pg_sync_rules.pl
#	  The task's rules in a PostgreSQL-to-PostgreSQL task (docs/task.md,
#	  docs/pg-sync.md, docs/pg-sink.md), through all three phases.
#
#	  Rules: schema app is mapped to mirror, table items to goods and its
#	  column label to title, with a row filter (region = 'eu', the table
#	  being REPLICA IDENTITY FULL so that rows moving across the filter
#	  arrive as INSERTs and DELETEs); table events takes only "insert,update"
#	  (its deletes are not applied).  Both the full sync and the incremental
#	  changes must arrive that way, and --verify must see it: goods ok,
#	  events differing by exactly the deleted keys (extra on destination).
#
#	  Conflicts (docs/pg-sink.md §4): a row inserted at the destination and
#	  then with the same key at the source is an INSERT_EXISTS.  Under
#	  conflict_policy Ignore the destination keeps its row, dts.conflict_log
#	  has the conflict (action skip) and the task goes on; under TaskFailed
#	  the shipper exits non-zero with a message naming the table and the
#	  key, and logs the conflict (action fail).
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
my $dst = new_destination_cluster('destination', 'dst');

$src->safe_psql(
	'postgres', q{
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, label text, region text, qty int);
ALTER TABLE app.items REPLICA IDENTITY FULL;
CREATE TABLE app.events (id int PRIMARY KEY, note text);
INSERT INTO app.items SELECT i, 'item ' || i, CASE WHEN i % 2 = 1 THEN 'eu' ELSE 'us' END, i * 10
  FROM generate_series(1, 20) i;
INSERT INTO app.events SELECT i, 'event ' || i FROM generate_series(1, 10) i;
CREATE TABLE c_ign (id int PRIMARY KEY, v text);
CREATE TABLE c_fail (id int PRIMARY KEY, v text);
INSERT INTO c_ign VALUES (1, 'src');
INSERT INTO c_fail VALUES (1, 'src');
});

sub task_file
{
	my ($name, $objects, %sink) = @_;
	return write_task(
		"$dir/$name.json",
		{
			name => $name,
			source => { conninfo => $src->connstr('postgres') },
			sink => { type => 'pg', conninfo => $dst->connstr('dst'), %sink },
			objects => $objects,
			sync => [ 'schema', 'full', 'incremental' ],
			heartbeat_interval => 1,
			status_interval => 0.5,
		});
}

sub wait_streaming
{
	my ($ship, $slot) = @_;
	wait_for(
		sub {
			die "pg_dts_ship for $slot exited:\n" . ship_log($ship)
			  unless ship_running($ship);
			slot_streaming($src, $slot);
		},
		120,
		"pg_dts_ship to finish the initial sync and stream from $slot");
	return;
}

# waits until the slot has confirmed everything written so far
sub wait_caught_up
{
	my ($slot) = @_;
	my $lsn = $src->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	wait_slot_confirmed($src, $slot, $lsn, 120);
	return;
}

# ---------------------------------------------------------------------
# Mapping, row filter, DML operations
# ---------------------------------------------------------------------
my $rules = task_file(
	'rules',
	{
		app => {
			name => 'mirror',
			tables => {
				items => {
					name => 'goods',
					columns => {
						id => {},
						label => { name => 'title' },
						region => {},
						qty => {}
					},
					filter => "region = 'eu'",
				},
				events => { dml_op => 'insert,update' },
			}
		}
	});
my $ship = start_ship(name => 'rules', args => [ '--task', $rules, '--start' ]);
wait_streaming($ship, 'dts_sync_rules');
pass('rules: the initial sync is done and pg_dts_ship streams');

# the schema as mapped
is( $dst->safe_psql('dst',
		"SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
		  . "WHERE attrelid = 'mirror.goods'::regclass AND attnum > 0 AND NOT attisdropped"
	),
	'id,title,region,qty',
	'rules: app.items became mirror.goods with label renamed title');
is( $dst->safe_psql('dst',
		"SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"),
	'0',
	'rules: no schema app at the destination');
is( $dst->safe_psql('dst',
		"SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c "
		  . "JOIN pg_namespace n ON n.oid = c.relnamespace "
		  . "WHERE n.nspname = 'mirror' AND c.relkind = 'r'"),
	'events,goods',
	'rules: mirror holds goods and events');
is( $dst->safe_psql('dst',
		"SELECT pg_get_constraintdef(oid) FROM pg_constraint "
		  . "WHERE conrelid = 'mirror.goods'::regclass AND contype = 'p'"),
	'PRIMARY KEY (id)',
	'rules: the mapped table got its primary key (generated post-data)');

my $src_goods =
  "SELECT id, label, region, qty FROM app.items WHERE region = 'eu' ORDER BY id";
my $dst_goods = 'SELECT id, title, region, qty FROM mirror.goods ORDER BY id';
my $events = 'SELECT id, note FROM %s.events ORDER BY id';
is($dst->safe_psql('dst', $dst_goods),
	$src->safe_psql('postgres', $src_goods),
	'rules: the full sync copied exactly the rows of the filter into goods');
is( $dst->safe_psql('dst', sprintf($events, 'mirror')),
	$src->safe_psql('postgres', sprintf($events, 'app')),
	'rules: the full sync copied events');

# the full sync's last progress line (stderr) counts the rows it copied
my $copied = $dst->safe_psql('dst',
	"SELECT sum(rows) FROM dts.full_sync_progress WHERE task = 'rules'");
is($copied, 20, 'rules: dts.full_sync_progress counts 10 goods + 10 events rows');
my ($line) = ship_log($ship) =~ /^(full sync: tables \d+\/\d+, .*done in .*)$/m;
like($line // '', qr/, rows $copied, /,
	"rules: the full sync's progress line says rows $copied");

# incremental: rows in and out of the filter, moving across it both ways
$src->safe_psql(
	'postgres', q{
INSERT INTO app.items SELECT i, 'item ' || i, CASE WHEN i % 3 = 0 THEN 'us' ELSE 'eu' END, i
  FROM generate_series(21, 30) i;
UPDATE app.items SET label = label || ' renamed' WHERE region = 'eu' AND id < 10;  -- stay in
UPDATE app.items SET region = 'us' WHERE id IN (1, 3, 21);                        -- move out
UPDATE app.items SET region = 'eu', qty = -1 WHERE id IN (2, 4, 24);              -- move in
UPDATE app.items SET qty = qty + 1 WHERE region = 'us';                           -- stay out
DELETE FROM app.items WHERE id IN (5, 6, 22);
INSERT INTO app.events SELECT i, 'event ' || i FROM generate_series(11, 15) i;
UPDATE app.events SET note = note || ' updated' WHERE id <= 8;
});
my $events_before_delete = $src->safe_psql('postgres', sprintf($events, 'app'));
$src->safe_psql(
	'postgres', q{
DELETE FROM app.events WHERE id BETWEEN 6 AND 12;
INSERT INTO app.events VALUES (100, 'after the deletes');
});
wait_caught_up('dts_sync_rules');

is($dst->safe_psql('dst', $dst_goods),
	$src->safe_psql('postgres', $src_goods),
	'rules: goods holds exactly the filtered rows, renamed, after the changes');
is( $dst->safe_psql('dst', sprintf($events, 'mirror')),
	"$events_before_delete\n100|after the deletes",
	'rules: events got the inserts and updates, not the deletes');
is($dst->safe_psql('dst', "SELECT count(*) FROM dts.conflict_log WHERE task = 'rules'"),
	'0', 'rules: no conflicts');

my ($rc, $out, $err) =
  run_ship(args => [ '--task', $rules, '--verify' ], timeout => 120);
is($rc, 1, 'rules: --verify exits 1 (events keeps rows the source deleted)')
  or diag "stdout:\n$out\nstderr:\n$err";
like(
	$out,
	qr/^table app\.items -> mirror\.goods: rows source (\d+), destination \1: ok$/m,
	'rules: --verify compares app.items with mirror.goods under the filter: ok');
like($out, qr/^table app\.events -> mirror\.events: .*DIFFERENT/m,
	'rules: --verify reports events different');
my @extra = $out =~ /extra on destination: id=(\d+)/g;
is("@extra", '6 7 8 9 10 11 12',
	'rules: --verify lists the deleted keys 6..12 as extra on destination');

is(stop_ship($ship, 'INT', 60), 0, 'rules: pg_dts_ship exits 0 on SIGINT');

# ---------------------------------------------------------------------
# Conflicts: Ignore
# ---------------------------------------------------------------------
my $cign = task_file('cign', { public => { tables => ['c_ign'] } },
	conflict_policy => 'Ignore');
$ship = start_ship(name => 'cign', args => [ '--task', $cign, '--start' ]);
wait_streaming($ship, 'dts_sync_cign');
$dst->safe_psql('dst', "INSERT INTO public.c_ign VALUES (100, 'dest')");
$src->safe_psql('postgres', "INSERT INTO c_ign VALUES (100, 'src')");
$src->safe_psql('postgres', "INSERT INTO c_ign VALUES (101, 'src')");
wait_caught_up('dts_sync_cign');

ok(ship_running($ship), 'Ignore: pg_dts_ship goes on after the conflict')
  or diag ship_log($ship);
is($dst->safe_psql('dst', 'SELECT id, v FROM c_ign ORDER BY id'),
	"1|src\n100|dest\n101|src",
	'Ignore: the destination kept its row 100; the next insert arrived');
is( $dst->safe_psql(
		'dst',
		"SELECT kind, action, schema_name, table_name, key->>'id' FROM dts.conflict_log "
		  . "WHERE task = 'cign'"),
	'INSERT_EXISTS|skip|public|c_ign|100',
	'Ignore: dts.conflict_log has the INSERT_EXISTS of key 100, skipped');
like(ship_log($ship),
	qr/warning: conflict INSERT_EXISTS on table "public"\."c_ign", key \{"id": 100\}.*action: skip/,
	'Ignore: the conflict is logged as a warning');
is(stop_ship($ship, 'INT', 60), 0, 'Ignore: pg_dts_ship exits 0 on SIGINT');

# ---------------------------------------------------------------------
# Conflicts: TaskFailed
# ---------------------------------------------------------------------
my $cfail = task_file('cfail', { public => { tables => ['c_fail'] } },
	conflict_policy => 'TaskFailed');
$ship = start_ship(name => 'cfail', args => [ '--task', $cfail, '--start' ]);
wait_streaming($ship, 'dts_sync_cfail');
$dst->safe_psql('dst', "INSERT INTO public.c_fail VALUES (100, 'dest')");
$src->safe_psql('postgres', "INSERT INTO c_fail VALUES (100, 'src')");

my $rc_fail = wait_ship_exit($ship, 120);
ok(defined $rc_fail && $rc_fail != 0,
	'TaskFailed: pg_dts_ship exits non-zero on the conflict ('
	  . ($rc_fail // 'still running') . ')')
  or diag ship_log($ship);
like(ship_log($ship),
	qr/error: conflict INSERT_EXISTS on table "public"\."c_fail", key \{"id": 100\}/,
	'TaskFailed: the error names the conflict, the table and the key');
is($dst->safe_psql('dst', 'SELECT id, v FROM c_fail ORDER BY id'),
	"1|src\n100|dest", 'TaskFailed: the destination row is untouched');
is( $dst->safe_psql(
		'dst',
		"SELECT DISTINCT kind, action, table_name, key->>'id' FROM dts.conflict_log "
		  . "WHERE task = 'cfail'"),
	'INSERT_EXISTS|fail|c_fail|100',
	'TaskFailed: dts.conflict_log has the INSERT_EXISTS of key 100, action fail');
stop_ship($ship, 'KILL', 10) if ship_running($ship);

$src->stop;
$dst->stop;
done_testing();

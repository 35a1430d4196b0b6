#
# 044_pg_sync_freeze_post_data.pl
#	  The full sync's COPY FREEZE and the parallel post-data of a
#	  PostgreSQL-to-PostgreSQL task (docs/pg-sync.md sections 3 and 2).
#
#	  COPY FREEZE: a table the task's pre-data created and that is copied
#	  whole is emptied and filled in one transaction (TRUNCATE ONLY, COPY
#	  ... FREEZE): on the destination every tuple must carry HEAP_XMIN_FROZEN
#	  in its header (pageinspect; the xmin column shows the raw xmin, frozen
#	  or not) and every page must be all-visible and all-frozen in the
#	  visibility map (pg_visibility).  A table kept in "conflicting_tables":
#	  "ignore" mode must not be truncated (its own rows stay) and its copied
#	  rows are not frozen.  The task file's "parallel": {"freeze": false}
#	  turns the path off (a plain COPY: no TRUNCATE, the table keeps the
#	  relfilenode pre-data gave it, no tuple frozen), as the measurement
#	  knob PG_DTS_FULL_SYNC_NO_FREEZE does when the task leaves the key
#	  out; "freeze": true wins over the knob.
#
#	  Parallel post-data: primary keys, unique constraints and indexes of
#	  several tables are built on several connections, then the foreign
#	  keys: all must exist and be valid, as on the source.  An index whose
#	  build fails on the destination (an expression function that raises
#	  there) fails the task with an error naming the index; the indexes
#	  built meanwhile are recorded, and the run after the fix skips them,
#	  builds the rest and leaves no per-entry rows behind.  The indexes
#	  are built as each table is copied unless "parallel": {"early_indexes":
#	  false} (or PG_DTS_NO_EARLY_INDEXES, when the key is left out) leaves
#	  them all to post-data.
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use PgDts::Test;

require_ship();

my $dir = PostgreSQL::Test::Utils::tempdir;

my $src = new_source_cluster('source');
my $dst = new_destination_cluster('destination', 'dst', 'dst2');

$src->safe_psql(
	'postgres', q{
CREATE SCHEMA app;
CREATE TABLE app.parent (id int PRIMARY KEY, code text NOT NULL UNIQUE, note text);
CREATE TABLE app.child (id bigint PRIMARY KEY, parent_id int NOT NULL REFERENCES app.parent,
                        v text, w int);
CREATE INDEX child_v ON app.child (v);
CREATE INDEX child_parent ON app.child (parent_id);
CREATE UNIQUE INDEX child_w_v ON app.child (w, v);
CREATE TABLE app.grandchild (id int PRIMARY KEY, child_id bigint REFERENCES app.child ON DELETE CASCADE,
                             parent_code text REFERENCES app.parent (code), t timestamptz);
CREATE INDEX grandchild_t ON app.grandchild (t DESC);
CREATE TABLE app.kept (id int PRIMARY KEY, v text);
INSERT INTO app.parent SELECT i, 'p' || i, repeat('n', i % 50) FROM generate_series(1, 2000) i;
INSERT INTO app.child SELECT i, 1 + i % 2000, 'v' || i, i % 7 FROM generate_series(1, 20000) i;
INSERT INTO app.grandchild SELECT i, 1 + i % 20000, 'p' || (1 + i % 2000),
       '2026-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 5000) i;
INSERT INTO app.kept SELECT i, 'src ' || i FROM generate_series(1, 300) i;

CREATE SCHEMA app2;
CREATE FUNCTION app2.picky(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  IF pg_catalog.current_database() = 'dst2' THEN
    RAISE EXCEPTION 'picky() refuses to run in dst2';
  END IF;
  RETURN x;
END $$;
CREATE TABLE app2.t1 (id int PRIMARY KEY, x int);
CREATE TABLE app2.t2 (id int PRIMARY KEY, t1_id int REFERENCES app2.t1, y text);
CREATE INDEX t1_picky ON app2.t1 (app2.picky(x));
CREATE INDEX t2_y ON app2.t2 (y);
INSERT INTO app2.t1 SELECT i, i FROM generate_series(1, 1000) i;
INSERT INTO app2.t2 SELECT i, 1 + i % 1000, 'y' || i FROM generate_series(1, 3000) i;
});

# app.kept exists on the destination with rows of its own: kept ("ignore")
$dst->safe_psql(
	'dst', q{
CREATE SCHEMA app;
CREATE TABLE app.kept (id int PRIMARY KEY, v text);
INSERT INTO app.kept VALUES (1, 'dst 1'), (100000, 'dst only');
});

sub task_file
{
	my ($name, $db, $objects, $extra) = @_;
	return write_task(
		"$dir/$name.json",
		{
			name => $name,
			source => { conninfo => $src->connstr('postgres') },
			sink => {
				type => 'pg',
				conninfo => $dst->connstr($db),
				conflicting_tables => 'ignore'
			},
			objects => $objects,
			sync => [ 'schema', 'full' ],
			heartbeat_interval => 0,
			%{ $extra // {} },
		});
}

# the indexes (name, valid) and constraints (name, type, validated) of a schema
my $idx_sql = q{SELECT string_agg(c.relname || ':' || i.indisvalid || ':' || i.indisready, ' ' ORDER BY c.relname)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '%s'};
my $con_sql = q{SELECT string_agg(conname || ':' || contype::text || ':' || convalidated, ' ' ORDER BY conname)
  FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
  WHERE n.nspname = '%s' AND contype IN ('p', 'u', 'f', 'x')};

# ---- schema + full sync of app, five ways.  fz: the defaults, indexes
# built while other tables still copy, COPY FREEZE.  fzp: the indexes all
# left to post-data, which builds them on several connections, by the
# measurement knob PG_DTS_NO_EARLY_INDEXES.  fzj: post_data_jobs 1, the
# whole post-data script in one transaction, so none built before.  fzt:
# both knobs set, but the task file's "early_indexes": true and "freeze":
# true win.  fzn: the task file's "early_indexes": false and "freeze":
# false, no knob ----
my ($task, $rc, $out, $err);
$dst->safe_psql('postgres', "CREATE DATABASE $_ TEMPLATE dst") foreach qw(dst3 dst4 dst6 dst9);
# live tuples of a table, and those without HEAP_XMIN_FROZEN (0x0300)
my $frozen_sql = q{SELECT count(*) || ' ' || count(*) FILTER (WHERE t_infomask & 768 <> 768)
  FROM generate_series(0, pg_relation_size('%1$s') / current_setting('block_size')::int - 1) b,
       heap_page_items(get_raw_page('%1$s', b::int)) WHERE lp_flags = 1};
# Does the table still have the relfilenode it was created with?  (In
# PostgreSQL 15 CREATE TABLE gives it its OID; TRUNCATE a new one.)
my $same_file_sql = q{SELECT relfilenode = oid FROM pg_class WHERE oid = '%s'::regclass};
my $knobs_off = { PG_DTS_NO_EARLY_INDEXES => 1, PG_DTS_FULL_SYNC_NO_FREEZE => 1 };
foreach my $run (
	{ name => 'fz', db => 'dst', indexes => 'early', freeze => 1 },
	{
		name => 'fzp',
		db => 'dst3',
		env => { PG_DTS_NO_EARLY_INDEXES => 1 },
		indexes => 'post-data',
		why => qr/PG_DTS_NO_EARLY_INDEXES is set/,
		freeze => 1
	},
	{
		name => 'fzj',
		db => 'dst4',
		parallel => { post_data_jobs => 1 },
		indexes => 'script',
		freeze => 1
	},
	{
		name => 'fzt',
		db => 'dst6',
		env => $knobs_off,
		parallel => { early_indexes => JSON::PP::true, freeze => JSON::PP::true },
		indexes => 'early',
		freeze => 1
	},
	{
		name => 'fzn',
		db => 'dst9',
		parallel => { early_indexes => JSON::PP::false, freeze => JSON::PP::false },
		indexes => 'post-data',
		why => qr/the task sets "parallel": \{"early_indexes": false\}/,
		freeze => 0
	})
{
	my ($name, $db) = ($run->{name}, $run->{db});
	$task = task_file($name, $db, { app => {} },
		$run->{parallel} ? { parallel => $run->{parallel} } : undef);
	($rc, $out, $err) = run_ship(
		args => [ '--task', $task, '--start', '-n', '-v' ],
		env => $run->{env} // {},
		timeout => 180);
	is($rc, 0, "$name: schema + full sync of app exits 0") or diag $err;
	if ($run->{freeze})
	{
		like($err,
			qr/full sync of task "$name": 4 tables, 4 ranges, 4 to copy \(3 whole tables by TRUNCATE and COPY FREEZE\)/,
			"$name: the three tables the pre-data created are copied with COPY FREEZE, the kept one is not");
		unlike($err, qr/copied with a plain COPY/,
			"$name: the shipper does not say that FREEZE is off");
	}
	else
	{
		like($err,
			qr/full sync of task "$name": every table is copied with a plain COPY, without TRUNCATE and FREEZE \(the task sets "parallel": \{"freeze": false\}\)/,
			"$name: the shipper says that FREEZE is off, and that the task file turned it off");
		like($err,
			qr/full sync of task "$name": 4 tables, 4 ranges, 4 to copy \(0 whole tables by TRUNCATE and COPY FREEZE\)/,
			"$name: no table is copied by TRUNCATE and COPY FREEZE");
	}
	if ($run->{indexes} eq 'script')
	{
		unlike($err, qr/built during the full sync/,
			"$name: with post_data_jobs 1 no index is built during the full sync");
		like($err, qr/schema sync of task "$name": post-data done/,
			"$name: post-data builds them all, in one transaction");
	}
	elsif ($run->{indexes} eq 'post-data')
	{
		like($err,
			qr/full sync of task "$name": no index is built during the copy, post-data builds them all \($run->{why}\)/,
			"$name: the shipper says that the indexes are left to post-data, and why");
		unlike($err, qr/built during the full sync/,
			"$name: no index is built during the full sync");
		like($err,
			qr/schema sync of task "$name": 8 post-data indexes and constraints on 4 connections, then 0 other entries/,
			"$name: post-data builds the 8 indexes and constraints on 4 connections");
	}
	else
	{
		unlike($err, qr/no index is built during the copy/,
			"$name: the indexes are not left to post-data");
		like($err,
			qr/schema sync of task "$name": 8 indexes and constraints built during the full sync took/,
			"$name: the 8 indexes and constraints are built as their tables are copied");
		like($err,
			qr/schema sync of task "$name": 8 post-data indexes and constraints were built before/,
			"$name: post-data skips them");
	}

	$dst->safe_psql($db, 'CREATE EXTENSION pg_visibility; CREATE EXTENSION pageinspect');
	foreach my $t (qw(parent child grandchild))
	{
		my $n = $src->safe_psql('postgres', "SELECT count(*) FROM app.$t");

		if ($run->{freeze})
		{
			is($dst->safe_psql($db, sprintf($frozen_sql, "app.$t")),
				"$n 0", "$name: app.$t: every row copied, every tuple frozen (HEAP_XMIN_FROZEN)");
			like(
				$dst->safe_psql($db,
					"SELECT count(*) || ' ' || count(*) FILTER (WHERE NOT all_visible OR NOT all_frozen) "
					  . "FROM pg_visibility_map('app.$t')"),
				qr/^[1-9]\d* 0$/,
				"$name: app.$t: every page all-visible and all-frozen in the visibility map");
			is($dst->safe_psql($db, sprintf($same_file_sql, "app.$t")),
				'f', "$name: app.$t: truncated in the copy (a new relfilenode)");
		}
		else
		{
			is($dst->safe_psql($db, sprintf($frozen_sql, "app.$t")),
				"$n $n", "$name: app.$t: every row copied, none written frozen");
			is($dst->safe_psql($db, sprintf($same_file_sql, "app.$t")),
				't', "$name: app.$t: not truncated (the relfilenode pre-data created)");
		}
	}
	is( $dst->safe_psql($db,
			"SELECT count(*) || ' ' || string_agg(v, ',' ORDER BY id) FILTER (WHERE v LIKE 'dst%') FROM app.kept"),
		'301 dst 1,dst only',
		"$name: app.kept (ignore mode) was not truncated: its own rows stay, the others were added");
	is($dst->safe_psql($db, sprintf($frozen_sql, 'app.kept')),
		'301 301', "$name: app.kept: no tuple frozen (no COPY FREEZE into a kept table)");

	is( $dst->safe_psql($db, sprintf($idx_sql, 'app')),
		$src->safe_psql('postgres', sprintf($idx_sql, 'app')),
		"$name: every index of app exists on the destination, valid and ready");
	is( $dst->safe_psql($db, sprintf($con_sql, 'app')),
		$src->safe_psql('postgres', sprintf($con_sql, 'app')),
		"$name: every primary key, unique constraint and foreign key of app exists, validated");
	is( $dst->safe_psql($db,
			"SELECT string_agg(section, ',' ORDER BY section) FROM dts.schema_sync_state WHERE task = '$name'"),
		'post-data,pre-data',
		"$name: dts.schema_sync_state: post-data and pre-data recorded, no per-entry rows left");
}

# ---- task fzk: kill -9 while a table is copied by TRUNCATE + COPY FREEZE
# (throttled so that the copy takes seconds), then a restart: the
# interrupted table is copied again whole, nothing is lost or doubled, and
# every row is frozen ----
$dst->safe_psql('postgres', 'CREATE DATABASE dst5');
$task = write_task(
	"$dir/fzk.json",
	{
		name => 'fzk',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dst->connstr('dst5') },
		objects => { app => {} },
		sync => [ 'schema', 'full' ],
		throttle => { rows_per_second => 3000 },
		heartbeat_interval => 0,
	});
my $fzk = start_ship(name => 'fzk_run1', args => [ '--task', $task, '--start', '-v' ]);
wait_for(
	sub {
		die "pg_dts_ship fzk exited early:\n" . ship_log($fzk) unless ship_running($fzk);
		$dst->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE datname = 'dst5' "
			  . "AND query LIKE '%COPY %FREEZE)%' AND state = 'active'") > 0;
	},
	60,
	'a TRUNCATE + COPY FREEZE in progress on dst5');
is(kill_ship($fzk), 137, 'fzk: pg_dts_ship killed with SIGKILL during a COPY FREEZE');
cmp_ok(
	$dst->safe_psql('dst5', 'SELECT count(*) FROM dts.full_sync_progress WHERE NOT done'),
	'>', 0, 'fzk: the kill came before every table was copied');
($rc, $out, $err) =
  run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
is($rc, 0, 'fzk: the run after the kill exits 0') or diag $err;
foreach my $t (qw(parent child grandchild kept))
{
	is( $dst->safe_psql('dst5', "SELECT count(*) || ' ' || count(DISTINCT id) FROM app.$t"),
		$src->safe_psql('postgres', "SELECT count(*) || ' ' || count(DISTINCT id) FROM app.$t"),
		"fzk: app.$t: every row once after the kill and restart");
}
$dst->safe_psql('dst5', 'CREATE EXTENSION pageinspect');
is( $dst->safe_psql('dst5', sprintf($frozen_sql, 'app.child')),
	$src->safe_psql('postgres', 'SELECT count(*) FROM app.child') . ' 0',
	'fzk: app.child: every tuple frozen after the restart');

# ---- task fzs: a logical slot in the destination database (say, the
# reverse task of a two-way sync) turns TRUNCATE + FREEZE off: the copy has
# no replication origin, so a TRUNCATE decoded there would empty the table
# at the other end.  This destination is a cluster with wal_level = logical ----
my $dstl = new_source_cluster('destination_logical');
$dstl->safe_psql('postgres', 'CREATE DATABASE dst4');
$dstl->safe_psql('dst4',
	"SELECT pg_create_logical_replication_slot('reverse_fzs', 'test_decoding')");
$task = write_task(
	"$dir/fzs.json",
	{
		name => 'fzs',
		source => { conninfo => $src->connstr('postgres') },
		sink => { type => 'pg', conninfo => $dstl->connstr('dst4') },
		objects => { app => {} },
		sync => [ 'schema', 'full' ],
		heartbeat_interval => 0,
	});
($rc, $out, $err) =
  run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
is($rc, 0, 'fzs: schema + full sync into a database with a logical slot exits 0') or diag $err;
like($err,
	qr/full sync: the destination database has the logical replication slot "reverse_fzs", so tables are copied without TRUNCATE and FREEZE/,
	'fzs: the shipper says why it does not use TRUNCATE and FREEZE, naming the slot');
like($err, qr/full sync of task "fzs": 4 tables, 4 ranges, 4 to copy \(0 whole tables by TRUNCATE and COPY FREEZE\)/,
	'fzs: no table is copied by TRUNCATE and COPY FREEZE');
$dstl->safe_psql('dst4', 'CREATE EXTENSION pageinspect');
foreach my $t (qw(parent child grandchild kept))
{
	my $n = $src->safe_psql('postgres', "SELECT count(*) FROM app.$t");
	is($dstl->safe_psql('dst4', sprintf($frozen_sql, "app.$t")),
		"$n $n", "fzs: app.$t: every row copied, none written frozen");
}
# The copy carries replication origins (one per worker, dts_<task>.copy<n>):
# a decoder that skips replayed changes (test_decoding's only-local, as
# pg_dts's origin=none) gets none of the copied rows, while without that
# filter the slot decodes every one of them; the origins are dropped when
# the full sync is done.
my $copied = $src->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM app.parent) + (SELECT count(*) FROM app.child) '
	  . '+ (SELECT count(*) FROM app.grandchild) + (SELECT count(*) FROM app.kept)');
my $inserts_sql =
  "SELECT count(*) FROM pg_logical_slot_peek_changes('reverse_fzs', NULL, NULL%s) "
  . "WHERE data LIKE 'table app.%%: INSERT%%'";
is($dstl->safe_psql('dst4', sprintf($inserts_sql, '')),
	$copied, "fzs: the slot in the destination database decodes all $copied copied rows");
is($dstl->safe_psql('dst4', sprintf($inserts_sql, ", 'only-local', '1'")),
	'0', 'fzs: every copied row carries a replication origin (only-local decodes none of them)');
is( $dstl->safe_psql('dst4',
		"SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'dts\\_fzs.copy%'"),
	'0', 'fzs: the replication origins of the copy are dropped when the full sync is done');
is( $dstl->safe_psql('dst4',
		"SELECT count(*) FROM pg_logical_slot_get_changes('reverse_fzs', NULL, NULL) "
		  . "WHERE data LIKE 'table app.%: TRUNCATE%'"),
	'0', 'fzs: the slot in the destination database decodes no TRUNCATE of the copied tables');

# ---- tasks fzo and fzw: a worker cannot set up its replication origin
# (another session holds dts_<task>.copy1).  With a logical slot in the
# destination database (fzo) that is an error naming the origin and the
# slot, and nothing is lost: once the origin is free, the same task
# resumes and copies everything.  Without a slot (fzw) the copy goes on
# without an origin, and the shipper warns. ----
$dstl->safe_psql('postgres', 'CREATE DATABASE dst7');
$dstl->safe_psql('postgres', 'CREATE DATABASE dst8');
$dstl->safe_psql('dst7',
	"SELECT pg_create_logical_replication_slot('reverse_fzo', 'test_decoding')");

# hold_origin(DB, NAME): a psql session that uses origin NAME until finished
sub hold_origin
{
	my ($db, $name) = @_;
	my ($in, $out) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-q', '-A', '-t', '-d', $dstl->connstr($db) ],
		'<', \$in, '>', \$out, '2>', \$out);
	$in .= "SELECT pg_replication_origin_create('$name');\n"
	  . "SELECT pg_replication_origin_session_setup('$name');\n"
	  . "SELECT 'holding';\n";
	$h->pump until $out =~ /holding/ || $out =~ /ERROR/;
	die "could not hold origin $name: $out" unless $out =~ /holding/;
	return ($h, \$in);
}

sub origin_task
{
	my ($name, $db) = @_;
	return write_task(
		"$dir/$name.json",
		{
			name => $name,
			source => { conninfo => $src->connstr('postgres') },
			sink => { type => 'pg', conninfo => $dstl->connstr($db) },
			objects => { app => {} },
			sync => [ 'schema', 'full' ],
			parallel => { full_sync_workers => 1 },
			heartbeat_interval => 0,
		});
}

my ($holder, $holder_in) = hold_origin('dst7', 'dts_fzo.copy1');
$task = origin_task('fzo', 'dst7');
($rc, $out, $err) =
  run_ship(args => [ '--task', $task, '--start', '-n' ], timeout => 180);
isnt($rc, 0, 'fzo: the full sync fails when a worker cannot use its replication origin and the destination database has a logical slot');
like($err,
	qr/full sync of task "fzo": could not set up the replication origin "dts_fzo\.copy1" for the copy: .*already active.*; the destination database has the logical replication slot "reverse_fzo", whose consumers would receive the copied rows/,
	'fzo: the error names the origin, says why it failed and names the slot');
like($err, qr/hint: .*replication origins.*max_replication_slots/,
	'fzo: the hint says how to let the role use origins or free a replication state');
is( $dstl->safe_psql('dst7',
		"SELECT count(*) FROM pg_logical_slot_peek_changes('reverse_fzo', NULL, NULL) "
		  . "WHERE data LIKE 'table app.%: INSERT%'"),
	'0', 'fzo: nothing was copied without an origin');
$$holder_in .= "\\q\n";
$holder->finish;
$dstl->safe_psql('dst7', "SELECT pg_replication_origin_drop('dts_fzo.copy1')");
($rc, $out, $err) =
  run_ship(args => [ '--task', $task, '--start', '-n' ], timeout => 180);
is($rc, 0, 'fzo: with the origin free, the same task resumes and completes') or diag $err;
is($dstl->safe_psql('dst7', sprintf($inserts_sql =~ s/reverse_fzs/reverse_fzo/r, ", 'only-local', '1'")),
	'0', 'fzo: the rows copied by the resumed run carry the origin');
foreach my $t (qw(parent child grandchild kept))
{
	is( $dstl->safe_psql('dst7', "SELECT count(*) FROM app.$t"),
		$src->safe_psql('postgres', "SELECT count(*) FROM app.$t"),
		"fzo: app.$t: every row copied");
}

($holder, $holder_in) = hold_origin('dst8', 'dts_fzw.copy1');
$task = origin_task('fzw', 'dst8');
($rc, $out, $err) =
  run_ship(args => [ '--task', $task, '--start', '-n' ], timeout => 180);
is($rc, 0, 'fzw: without a logical slot in the destination database the copy goes on without an origin') or diag $err;
like($err,
	qr/warning: full sync of task "fzw": copying without a replication origin: could not set up the replication origin "dts_fzw\.copy1" for the copy: .*already active/,
	'fzw: the shipper warns that the copy has no replication origin, and why');
is( $dstl->safe_psql('dst8', 'SELECT count(*) FROM app.child'),
	$src->safe_psql('postgres', 'SELECT count(*) FROM app.child'),
	'fzw: app.child: every row copied');
$$holder_in .= "\\q\n";
$holder->finish;
$src->safe_psql('postgres',
	"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
	  . "WHERE slot_name IN ('dts_sync_fzo', 'dts_sync_fzw')");
$dstl->stop;

# ---- task bad: an index build fails on the destination ----
# (the failing index is tried during the full sync too: a warning there)
$task = task_file('bad', 'dst2', { app2 => {} });
($rc, $out, $err) =
  run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
isnt($rc, 0, 'a failing index build fails the task');
like(
	$err,
	qr/could not create the post-data objects of task "bad" on the destination: .*picky\(\) refuses to run in dst2.*Name: t1_picky; Type: INDEX; Schema: app2/,
	'the error names the failing index (t1_picky), its type and schema, and says why');
is( $dst->safe_psql('dst2',
		"SELECT count(*) FROM dts.schema_sync_state WHERE task = 'bad' AND section = 'post-data'"),
	'0', 'post-data is not recorded as done');
is( $dst->safe_psql('dst2',
		"SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'app2'::regnamespace"),
	'0', 'no foreign key was created (they come after every index)');
my $entries = $dst->safe_psql('dst2',
	"SELECT count(*) FROM dts.schema_sync_state WHERE task = 'bad' AND section LIKE 'post-data entry: %'");
is( $entries,
	$dst->safe_psql('dst2',
		"SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
		  . "WHERE c.relnamespace = 'app2'::regnamespace"),
	"every index built before the failure is recorded as a post-data entry ($entries)");

# fix the destination's function and run again: the rest is built
$dst->safe_psql('dst2',
	'CREATE OR REPLACE FUNCTION app2.picky(x int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT x $$');
($rc, $out, $err) =
  run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
is($rc, 0, 'the run after the fix exits 0') or diag $err;
if ($entries > 0)
{
	like($err, qr/$entries post-data indexes and constraints were built before \(during the full sync, or by an interrupted call\)/,
		'the indexes built by the failed run are skipped, not built again');
}
is( $dst->safe_psql('dst2', sprintf($idx_sql, 'app2')),
	$src->safe_psql('postgres', sprintf($idx_sql, 'app2')),
	'every index of app2 exists, valid and ready');
is( $dst->safe_psql('dst2', sprintf($con_sql, 'app2')),
	$src->safe_psql('postgres', sprintf($con_sql, 'app2')),
	'every constraint of app2 exists, validated');
is( $dst->safe_psql('dst2',
		"SELECT string_agg(section, ',' ORDER BY section) FROM dts.schema_sync_state WHERE task = 'bad'"),
	'post-data,pre-data', 'no per-entry rows left after post-data is recorded');

$src->stop;
$dst->stop;
done_testing();

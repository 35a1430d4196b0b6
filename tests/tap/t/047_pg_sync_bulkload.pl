#
# 047_pg_sync_bulkload.pl
#	  A full sync into a destination set up for a bulk load (docs/pg-sync.md
#	  section 3, "A destination set up for a bulk load").
#
#	  With wal_level = minimal on the destination, PostgreSQL writes no WAL
#	  for rows copied into a table whose file was created in the same
#	  transaction; it syncs the file at commit instead.  The full sync's
#	  whole-table path (BEGIN; TRUNCATE ONLY; COPY ... FREEZE; COMMIT) is such
#	  a transaction, and the primary key built after it is a new index, so
#	  the whole schema + full sync of a table must write far less WAL than
#	  the table's size.  Two runs write WAL of the order of the table's size
#	  (over half of it: a multi-insert record's tuple headers are smaller
#	  than the heap's): the same task against a destination with wal_level
#	  = logical, and the task with "parallel": {"freeze": false} (a plain
#	  COPY into the table that pre-data created in an earlier transaction)
#	  on the minimal one.  So the saving comes from the TRUNCATE + COPY path
#	  and from the destination's setting together.  Every destination ends
#	  with the source's rows and its primary key.
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
# PostgreSQL::Test::Cluster's default: wal_level = minimal, max_wal_senders = 0
my $dst_min = new_destination_cluster('dst_minimal', 'd_freeze', 'd_plain');
my $dst_log = PostgreSQL::Test::Cluster->new('dst_logical');
$dst_log->init(allows_streaming => 'logical');
$dst_log->start;
$dst_log->safe_psql('postgres', 'CREATE DATABASE d_freeze');

is($dst_min->safe_psql('postgres', 'SHOW wal_level'), 'minimal', 'the bulk-load destination has wal_level minimal');
is($dst_log->safe_psql('postgres', 'SHOW wal_level'), 'logical', 'the other destination has wal_level logical');

# About 30 MB of heap: well over wal_skip_threshold (2 MB), under which
# PostgreSQL would WAL-log the new file at commit instead of syncing it.
$src->safe_psql(
	'postgres', q{
CREATE SCHEMA "Bulk Load";
CREATE TABLE "Bulk Load"."Big ""one""" (id bigint PRIMARY KEY, v text NOT NULL, t timestamptz);
INSERT INTO "Bulk Load"."Big ""one"""
  SELECT i, repeat(md5(i::text), 3), '2026-01-01'::timestamptz + i * interval '1 s'
  FROM generate_series(1, 200000) i;
});
my $table = q{"Bulk Load"."Big ""one"""};
my $sum_sql = "SELECT count(*) || ' ' || md5(string_agg(id || v || t, ',' ORDER BY id)) FROM $table";
my $src_sum = $src->safe_psql('postgres', $sum_sql);

# Runs the schema + full sync of the table into $db of $node; returns the
# WAL bytes the destination wrote meanwhile and the table's heap bytes there.
sub sync_into
{
	my ($name, $node, $db, $extra) = @_;
	my $task = write_task(
		"$dir/$name.json",
		{
			name => $name,
			source => { conninfo => $src->connstr('postgres') },
			sink => { type => 'pg', conninfo => $node->connstr($db) },
			objects => { 'Bulk Load' => { all => JSON::PP::true } },
			sync => [ 'schema', 'full' ],
			heartbeat_interval => 0,
			%{ $extra // {} },
		});
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $before = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	my ($rc, $out, $err) = run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
	is($rc, 0, "$name: schema + full sync succeeds") or diag $err;
	my $wal = $node->safe_psql('postgres',
		"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$before')::bigint");
	my $heap = $node->safe_psql($db, "SELECT pg_relation_size('$table')");
	is($node->safe_psql($db, $sum_sql), $src_sum, "$name: the destination has the source's rows");
	is($node->safe_psql($db,
		"SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = '$table'::regclass"),
		'1', "$name: the primary key is built");
	$src->safe_psql('postgres', "SELECT pg_drop_replication_slot('dts_sync_$name')");
	note "$name: $wal bytes of WAL for $heap bytes of heap";
	return ($wal, $heap, $err);
}

# ---- wal_level = minimal, the whole-table path: almost no WAL ----
my ($wal, $heap, $err) = sync_into('bl_min', $dst_min, 'd_freeze');
cmp_ok($heap, '>', 20 * 1024 * 1024, 'bl_min: the table is over 20 MB on the destination');
cmp_ok($wal, '<', $heap / 10,
	'bl_min: wal_level minimal: the copy and the key wrote less than a tenth of the heap in WAL');
like($err, qr/\(1 whole tables by TRUNCATE and COPY FREEZE\)/,
	'bl_min: the shipper says the table went by TRUNCATE and COPY FREEZE');

# ---- the same destination, a plain COPY ("freeze": false): the table
# was created by pre-data in an earlier transaction, so every row is
# WAL-logged ----
my ($wal_plain, $heap_plain) = sync_into('bl_plain', $dst_min, 'd_plain',
	{ parallel => { freeze => JSON::PP::false } });
cmp_ok($wal_plain, '>', $heap_plain / 2,
	'bl_plain: wal_level minimal, plain COPY: over half the heap\'s size in WAL');

# ---- wal_level = logical, the whole-table path: every row in the WAL ----
my ($wal_log, $heap_log) = sync_into('bl_log', $dst_log, 'd_freeze');
cmp_ok($wal_log, '>', $heap_log / 2,
	'bl_log: wal_level logical: over half the heap\'s size in WAL');
cmp_ok($wal * 10, '<', $wal_log,
	'bl_min wrote less than a tenth of the WAL bl_log wrote for the same rows');

done_testing();

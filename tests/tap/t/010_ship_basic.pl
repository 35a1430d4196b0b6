#
# 010_ship_basic.pl
#	  pg_dts_ship with the file sink, end to end: --create-slot --start -f
#	  FILE (the command line over a task file) against a source cluster.  Every value of every built-in type of
#	  tests/regress/sql/plugin_types.sql arrives as the JSON docs/shipper.md
#	  describes (numbers, booleans and json as JSON, the rest as strings,
#	  each equal to the server's own text form); odd identifiers come
#	  through unchanged; NULL and an unchanged TOASTed value stay distinct;
#	  SIGHUP reopens the file; SIGINT exits 0 with the slot confirmed at
#	  exactly the end of the last transaction.
#
use strict;
use warnings;
use utf8;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Encode qw(encode_utf8);
use PgDts::Test;

require_ship();

my $node = new_source_cluster('source');
my $connstr = $node->connstr('postgres');
my $dir = PostgreSQL::Test::Utils::tempdir;
my $out = "$dir/basic.jsonl";
my $slot = 'dts_sync_basic';

# A second slot, read with SQL decoding, says what the shipper should see.
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('peek', 'pg_dts')");

# The task file sets the timing; the command line gives the output file
# and the fsync interval, and wins over the file's sink settings.
my $task = write_task(
	"$dir/basic.json",
	{
		name => 'basic',
		sink => {
			type => 'file',
			path => "$dir/not_this_one.jsonl",
			fsync_interval => 30,
		},
		heartbeat_interval => 0,
		status_interval => 1,
	});

my $ship = start_ship(
	name => 'basic',
	args => [
		'--task', $task, '-d', $connstr, '--create-slot', '--start',
		'-f', $out, '-F', '0', '--begin-commit-lines'
	]);

wait_for(
	sub {
		die "pg_dts_ship exited early:\n" . ship_log($ship)
		  unless ship_running($ship);
		$node->safe_psql('postgres',
			"SELECT count(*) FROM pg_replication_slots "
			  . "WHERE slot_name = '$slot' AND active") eq '1';
	},
	60,
	"pg_dts_ship to create $slot and stream from it");
pass("pg_dts_ship created slot $slot and is streaming");
is( $node->safe_psql(
		'postgres',
		"SELECT plugin FROM pg_replication_slots WHERE slot_name = '$slot'"),
	'pg_dts',
	'the slot uses the pg_dts plugin');

# ---- every type of plugin_types.sql ----
my $types_sql = regress_sql('plugin_types');
my ($ddl) = $types_sql =~ /^(CREATE TYPE regress_mood.*?\n\);)\n/ms
  or die "no CREATE TYPE ... CREATE TABLE in plugin_types.sql";
my ($rows) = $types_sql =~ /^(INSERT INTO regress_types VALUES.*?\);)\n/ms
  or die "no INSERT INTO regress_types in plugin_types.sql";
$node->safe_psql('postgres', $ddl);
$node->safe_psql('postgres', $rows);

# ---- odd identifiers ----
$node->safe_psql(
	'postgres', encode_utf8 q{
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd Table ☃" (
    "Key Col" int PRIMARY KEY,
    "UPPER" text,
    "ünïcødé" text,
    "with""quote" text,
    "dot.ted" int
);
INSERT INTO "My Schema"."Odd Table ☃" VALUES (1, 'A', 'ü', 'q"q', 7);
UPDATE "My Schema"."Odd Table ☃" SET "UPPER" = 'B' WHERE "Key Col" = 1;
DELETE FROM "My Schema"."Odd Table ☃" WHERE "Key Col" = 1;
});

# ---- NULL vs unchanged TOAST ----
$node->safe_psql(
	'postgres', q{
CREATE TABLE toast_t (id int PRIMARY KEY, big text, small text);
ALTER TABLE toast_t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO toast_t VALUES (1, repeat('x', 100000), 'a'), (2, NULL, 'b');
UPDATE toast_t SET small = 'a2' WHERE id = 1;
UPDATE toast_t SET small = 'b2' WHERE id = 2;
UPDATE toast_t SET big = NULL, small = 'a3' WHERE id = 1;
});

# The end of the last commit, as SQL decoding sees it.
my $last_end = $node->safe_psql(
	'postgres', q{
SELECT f->>'end_lsn'
FROM pg_logical_slot_peek_binary_changes('peek', NULL, NULL) p,
     dts.frames(p.data) f
WHERE f->>'kind' = 'commit'
ORDER BY (f->>'end_lsn')::pg_lsn DESC LIMIT 1
});
wait_slot_confirmed($node, $slot, $last_end, 120);
pass('the slot confirmed the last transaction');

my $read = read_json_lines($out);
my @recs = @{ $read->{records} };
is(scalar @{ $read->{bad} }, 0, 'every line of the output is a JSON object')
  or diag explain $read->{bad};
is($read->{partial}, '', 'the output ends with a complete line');

sub of_table
{
	my ($schema, $table, @r) = @_;
	return grep {
		     defined $_->{schema}
		  && $_->{schema} eq $schema
		  && $_->{table} eq $table
	} @r;
}

# -- types
my @type_recs = of_table('public', 'regress_types', @recs);
is(scalar @type_recs, 3, 'three rows of regress_types');
is_deeply([ map { $_->{kind} } @type_recs ],
	[qw(insert insert insert)], 'all three are inserts');
is_deeply($type_recs[0]{key}, ['id'], '"key" lists the primary key');
like($type_recs[0]{lsn}, qr{^[0-9A-F]+/[0-9A-F]+$}, 'a change has "lsn"');
like($type_recs[0]{xid}, qr/^\d+$/, 'a change has "xid"');
like(
	$type_recs[0]{commit_time},
	qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
	'a change has "commit_time" in ISO 8601 UTC');

my @columns = split /\n/, $node->safe_psql(
	'postgres', q{
SELECT attname || '|' || format_type(atttypid, atttypmod)
FROM pg_attribute
WHERE attrelid = 'regress_types'::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
});
is_deeply(
	[ sort keys %{ $type_recs[0]{new} } ],
	[ sort map { (split /\|/)[0] } @columns ],
	'"new" has every column of the table');

# The values are compared by the server: each JSON line is loaded as json
# (which keeps the text of numbers as written), and each value, read as
# the column's type, must print exactly as the table's own value does.
# Also checked: the JSON kind of each value (docs/shipper.md).
$node->safe_psql('postgres', 'CREATE TABLE shipped (n int, line json)');
my $raw = raw_json_lines($out);
my $n = 0;
my $ins = join(",\n",
	map { $n++; "($n, " . PgDts::Test::quote_literal($_) . ')' } @$raw);
$node->safe_psql('postgres', "INSERT INTO shipped VALUES $ins");

my %number_type = map { $_ => 1 }
  ('smallint', 'integer', 'bigint', 'real', 'double precision', 'numeric',
	'numeric(12,2)');
my @checks;
foreach my $c (@columns)
{
	my ($col, $type) = split /\|/, $c, 2;
	my $v = "(s.line->'new'->'$col')";
	my $same =
	  $type =~ /^json/
	  ? "${v}::jsonb = t.${col}::jsonb"
	  : "format('%s', ($v #>> '{}')::${type}) = format('%s', t.$col)";
	my $kind =
	    $number_type{$type} ? "json_typeof($v) = 'number' OR ($v #>> '{}') IN ('NaN', 'Infinity', '-Infinity')"
	  : $type eq 'boolean' ? "json_typeof($v) = 'boolean'"
	  : $type =~ /^json/ ? "json_typeof($v) = json_typeof(t.${col}::json)"
	  :                    "json_typeof($v) = 'string'";
	push @checks,
	  "SELECT '$col' AS col, t.id, ${v}::text AS got, format('%s', t.$col) AS want, "
	  . "CASE WHEN num_nulls(t.$col) = 1 THEN json_typeof($v) = 'null' "
	  . "ELSE json_typeof($v) <> 'null' AND ($same) AND ($kind) END AS ok "
	  . "FROM shipped s JOIN regress_types t "
	  . "ON t.id = (s.line->'new'->>'id')::int "
	  . "WHERE s.line->>'table' = 'regress_types'";
}
my $result = $node->safe_psql(
	'postgres',
	"SET extra_float_digits = 0; "
	  . "SELECT count(*) || ' ' || count(*) FILTER (WHERE ok) FROM ("
	  . join("\nUNION ALL\n", @checks) . ") c");
my ($compared, $matching) = split / /, $result;
is($compared, 3 * scalar(@columns), 'every value of every row compared');
is($matching, $compared,
	'every value equals the table\'s, with the JSON kind of its type');
if ($matching ne $compared)
{
	diag $node->safe_psql('postgres',
		"SELECT col, id, got, want FROM ("
		  . join("\nUNION ALL\n", @checks)
		  . ") c WHERE ok IS NOT TRUE ORDER BY col, id");
}
is($type_recs[0]{new}{c_int8}, '9223372036854775807',
	'int8 max is an exact JSON number');
is(ref $type_recs[0]{new}{c_jsonb}, 'HASH', 'a jsonb object is embedded as a JSON object');
is($type_recs[1]{new}{c_numeric}, 'NaN', 'numeric NaN is the string "NaN"');
ok(!defined $type_recs[2]{new}{c_xml} && exists $type_recs[2]{new}{c_xml},
	'an SQL NULL is JSON null');

# -- identifiers
my @odd = of_table('My Schema', 'Odd Table ☃', @recs);
is_deeply([ map { $_->{kind} } @odd ],
	[qw(insert update delete)], 'quoted schema and table names arrive as they are');
is_deeply(
	$odd[0]{new},
	{
		'Key Col' => 1,
		'UPPER' => 'A',
		'ünïcødé' => 'ü',
		'with"quote' => 'q"q',
		'dot.ted' => 7
	},
	'column names with a space, upper case, unicode, a quote and a dot');
is_deeply($odd[0]{key}, ['Key Col'], 'the key column with a space');
is($odd[1]{new}{UPPER}, 'B', 'the update of the odd table');
is_deeply($odd[2]{old}, { 'Key Col' => 1 },
	'the delete carries the old key under its odd name');

# -- TOAST and NULL
my @toast = of_table('public', 'toast_t', @recs);
is(scalar @toast, 5, 'five changes of toast_t');
is(length $toast[0]{new}{big}, 100000, 'the TOASTed value is inserted whole');
ok(exists $toast[1]{new}{big} && !defined $toast[1]{new}{big},
	'an inserted NULL is JSON null');
is($toast[2]{kind}, 'update', 'the update of another column');
is_deeply($toast[2]{new}{big}, { unchanged_toast => JSON::PP::true },
	'an unchanged TOASTed value is {"unchanged_toast": true}');
is($toast[2]{new}{small}, 'a2', 'next to it the changed column');
ok(exists $toast[3]{new}{big} && !defined $toast[3]{new}{big},
	'an unchanged NULL stays JSON null, not unchanged_toast');
ok(exists $toast[4]{new}{big} && !defined $toast[4]{new}{big},
	'a TOASTed value set to NULL is JSON null');

# -- transactions: begin and commit lines
my @commits = grep { $_->{kind} eq 'commit' } @recs;
my @begins = grep { $_->{kind} eq 'begin' } @recs;
is(scalar @begins, scalar @commits, 'as many "begin" lines as "commit" lines');
is($commits[-1]{end_lsn}, $last_end,
	'the last "commit" line has the end LSN SQL decoding reports');
my $in_txn = 0;
my $order_ok = 1;
foreach my $r (@recs)
{
	if ($r->{kind} eq 'begin') { $order_ok = 0 if $in_txn; $in_txn = 1; }
	elsif ($r->{kind} eq 'commit') { $order_ok = 0 unless $in_txn; $in_txn = 0; }
	elsif ($r->{kind} =~ /^(insert|update|delete|truncate)$/)
	{
		$order_ok = 0 unless $in_txn;
	}
}
ok($order_ok, 'every change lies between a "begin" and its "commit"');

# ---- SIGHUP reopens the output file ----
rename $out, "$out.1" or die "rename: $!";
my $size_before = -s "$out.1";
kill 'HUP', $ship->{pid};
$node->safe_psql('postgres',
	"CREATE TABLE after_hup (id int PRIMARY KEY); INSERT INTO after_hup VALUES (1), (2)"
);
wait_for(
	sub {
		die "pg_dts_ship exited after SIGHUP:\n" . ship_log($ship)
		  unless ship_running($ship);
		scalar(of_table('public', 'after_hup', @{ json_lines_of($out) })) == 2;
	},
	60,
	'the changes after SIGHUP in a new file at the original path');
pass('after SIGHUP the new changes go to a new file at the original path');
ok(ship_running($ship), 'pg_dts_ship keeps running after SIGHUP');
is(scalar(of_table('public', 'after_hup', @{ json_lines_of("$out.1") })),
	0, 'the renamed file gets none of them');
is(-s "$out.1", $size_before, 'the renamed file did not grow');

# ---- SIGINT: exit 0, everything confirmed ----
$last_end = $node->safe_psql(
	'postgres', q{
SELECT f->>'end_lsn'
FROM pg_logical_slot_peek_binary_changes('peek', NULL, NULL) p,
     dts.frames(p.data) f
WHERE f->>'kind' = 'commit'
ORDER BY (f->>'end_lsn')::pg_lsn DESC LIMIT 1
});
is(stop_ship($ship, 'INT'), 0, 'pg_dts_ship exits 0 on SIGINT');
wait_slot_inactive($node, $slot, 30);
# The slot is confirmed exactly up to what the file holds: at the end of
# the last commit, or past it only over WAL without any transaction to
# decode (an idle sink confirms the server's keepalive position,
# docs/shipper.md section 4).
my $confirmed = slot_confirmed_lsn($node, $slot);
note "last commit ends at $last_end, the slot is confirmed at $confirmed";
cmp_ok(lsn_cmp($confirmed, $last_end), '>=', 0,
	'after SIGINT the slot is confirmed at least to the end of the last commit');
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*)
FROM pg_logical_slot_peek_binary_changes('peek', NULL, NULL) p,
     dts.frames(p.data) f
WHERE f->>'kind' = 'commit'
  AND (f->>'end_lsn')::pg_lsn > '$last_end'
  AND (f->>'end_lsn')::pg_lsn <= '$confirmed'
}),
	0,
	'and confirms no transaction that is not in the file');
my @last = grep { $_->{kind} eq 'commit' } @{ json_lines_of($out) };
is($last[-1]{end_lsn}, $last_end,
	'the last "commit" line written is the last transaction');
unlike(ship_log($ship), qr/\b(FATAL|PANIC)\b/, 'no fatal error in the log');
ok(!-e "$dir/not_this_one.jsonl",
	'-f on the command line won over the task file\'s sink path');

# ---- -E with a long fsync interval: the end is made durable at once ----
# The file sink syncs every --fsync-interval seconds; reaching -E must not
# wait for that (here an hour, far past run_ship's 60 s timeout), and what
# it confirms must be in the synced file.
$node->safe_psql('postgres',
	"INSERT INTO toast_t VALUES (10, 'endpos', 'e1'), (11, NULL, 'e2')");
my $end_at = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
my $end_out = "$dir/endpos.jsonl";
my ($end_rc, undef, $end_err) = run_ship(
	args => [
		'--task', $task, '-d', $connstr, '--start', '-f', $end_out,
		'-F', '3600', '-E', $end_at, '-v'
	],
	timeout => 60);
is($end_rc, 0, '-E with --fsync-interval 3600: pg_dts_ship exits 0 at the end position');
like($end_err, qr/end position reached; confirmed up to/,
	'-E: the log says the end position was reached');
my @end_rows =
  grep { $_->{kind} eq 'insert' && $_->{table} eq 'toast_t' } @{ json_lines_of($end_out) };
is(scalar(@end_rows), 2, '-E: both rows inserted before the end position are in the file');
cmp_ok(lsn_cmp(slot_confirmed_lsn($node, $slot), $last_end), '>', 0,
	'-E: the slot is confirmed past the transactions of the first run');

$node->stop;
done_testing();

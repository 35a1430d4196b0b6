#
# 030_ship_task_file.pl
#	  Task files (docs/task.md) and the precheck.  A broken task file stops
#	  pg_dts_ship before it connects to anything, with one message that
#	  names the file and the JSON path of the mistake.  The precheck
#	  (--precheck, over a normal connection) fails on a selected table that
#	  does not exist, warns about a table without a key (suggesting REPLICA
#	  IDENTITY FULL), and fails with the fix when output_plugin_libraries
#	  does not name pg_dts.
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgDts::Test;

require_ship();

my $dir = PostgreSQL::Test::Utils::tempdir;

# A source that does not exist: any attempt to connect would fail with a
# connection error, which must never be what these runs report.
my $nowhere = "host=$dir/no_such_socket_dir port=1 dbname=nowhere connect_timeout=2";
my $connect_error = qr/could not connect|connection to server|Connection refused|No such file or directory \(.*socket|server closed/i;

# [ name, file contents, JSON path (and message) expected in the error ]
my @cases = (
	[
		'invalid JSON',
		qq({"name": "t1", "objects": }),
		qr/bad_invalid_JSON\.json:1:\d+: invalid JSON/
	],
	[
		'duplicate key',
		qq({"name": "t1", "name": "t2"}),
		qr/bad_duplicate_key\.json:\d+:\d+: invalid JSON: .*duplicate/
	],
	[ 'not an object', qq(["t1"]), qr/top level: expected a JSON object/ ],
	[
		'missing name',
		qq({"objects": "*"}),
		qr/name: missing/
	],
	[
		'unknown top-level key',
		qq({"name": "t1", "nmae": "t2"}),
		qr/nmae: unknown key/
	],
	[
		'sink type',
		qq({"name": "t1", "sink": {"type": "ftp"}}),
		qr/sink\.type: unknown sink "ftp"/
	],
	[
		'fsync_interval not a number',
		qq({"name": "t1", "sink": {"type": "file", "path": "x", "fsync_interval": "soon"}}),
		qr/sink\.fsync_interval: expected a number/
	],
	[
		'kafka lsn_headers not a boolean',
		qq({"name": "t1", "sink": {"type": "kafka", "brokers": "localhost:1", "topic": "t", "lsn_headers": "yes"}}),
		qr/sink\.lsn_headers: expected true or false/
	],
	[
		'heartbeat_interval not an integer',
		qq({"name": "t1", "heartbeat_interval": 1.5}),
		qr/heartbeat_interval: expected an integer/
	],
	[
		'retry window out of range',
		qq({"name": "t1", "retry": {"connection_minutes": -5}}),
		qr/retry\.connection_minutes: -5 is out of range/
	],
	[
		'full_sync_workers out of range',
		qq({"name": "t1", "parallel": {"full_sync_workers": 0}}),
		qr/parallel\.full_sync_workers: 0 is out of range; expected workers from 1 to 64/
	],
	[
		'post_data_jobs out of range',
		qq({"name": "t1", "parallel": {"post_data_jobs": 65}}),
		qr/parallel\.post_data_jobs: 65 is out of range; expected jobs from 1 to 64/
	],
	[
		'post_data_jobs not an integer',
		qq({"name": "t1", "parallel": {"post_data_jobs": 2.5}}),
		qr/parallel\.post_data_jobs: expected an integer number of jobs from 1 to 64, got 2\.5/
	],
	[
		'full_sync_workers a string',
		qq({"name": "t1", "parallel": {"full_sync_workers": "4"}}),
		qr/parallel\.full_sync_workers: expected an integer number of workers from 1 to 64, got a string/
	],
	[
		'unknown key of parallel',
		qq({"name": "t1", "parallel": {"workers": 4}}),
		qr/parallel\.workers: unknown key.*"full_sync_workers", "post_data_jobs"/
	],
	[
		'objects selects nothing',
		qq({"name": "t1", "objects": {}}),
		qr/objects: selects nothing/
	],
	[
		'objects of the wrong kind',
		qq({"name": "t1", "objects": "everything"}),
		qr/objects: expected "\*"/
	],
	[
		'dml_op word',
		qq({"name": "t1", "objects": {"public": {"tables": {"orders": {"dml_op": "insert,upsert"}}}}}),
		qr/objects\.public\.tables\.orders\.dml_op: "upsert" is not a DML operation/
	],
	[
		'unknown key of a table',
		qq({"name": "t1", "objects": {"public": {"tables": {"orders": {"fliter": "id > 1"}}}}}),
		qr/objects\.public\.tables\.orders\.fliter: unknown key/
	],
	[
		'a quoted schema name in the path',
		qq({"name": "t1", "objects": {"My Schema": {"tables": {"t": {"dml_op": 7}}}}}),
		qr/objects\["My Schema"\]\.tables\.t\.dml_op: expected/
	],
	[
		'a table list with a number',
		qq({"name": "t1", "objects": {"public": {"tables": ["orders", 1]}}}),
		qr/objects\.public\.tables\[1\]: expected a table name/
	],
	[
		'sync phase',
		qq({"name": "t1", "sync": ["bogus"]}),
		qr/sync\[0\]: unknown phase "bogus"/
	],);

foreach my $case (@cases)
{
	my ($what, $json, $expect) = @$case;
	(my $file = "bad_$what") =~ s/\W+/_/g;
	$file = "$dir/$file.json";
	# every case also carries a source that points nowhere
	$json =~ s/^\{/{"source": {"conninfo": "$nowhere"}, /
	  if $json =~ /^\{"name"/ || $json =~ /^\{"objects"/;
	write_file($file, $json);
	my ($rc, $stdout, $stderr) =
	  run_ship(args => [ '--task', $file, '--start' ], timeout => 30);
	isnt($rc, 0, "$what: exit code is not 0");
	like($stderr, $expect, "$what: the error names the JSON path");
	like($stderr, qr/\Q$file\E/, "$what: the error names the file");
	unlike($stderr . $stdout, $connect_error, "$what: nothing connected");
}

{
	my ($rc, $stdout, $stderr) = run_ship(
		args => [ '--task', "$dir/no_such_task.json", '--start' ],
		timeout => 30);
	isnt($rc, 0, 'a missing task file: exit code is not 0');
	like(
		$stderr,
		qr/could not open task file .*no_such_task\.json/,
		'a missing task file: says so and names it');
}

# ---- the precheck, against a real source ----
my $node = new_source_cluster('source');
my $connstr = $node->connstr('postgres');
$node->safe_psql(
	'postgres', q{
CREATE TABLE good (id int PRIMARY KEY, v text);
CREATE TABLE nokey (id int, v text);
CREATE TABLE "Mixed Case" (id int PRIMARY KEY);
});

sub precheck
{
	my ($name, $objects) = @_;
	my $file = write_task(
		"$dir/precheck_$name.json",
		{
			name => $name,
			source => { conninfo => $connstr },
			objects => $objects,
			sink => { type => 'file', path => "$dir/precheck_$name.jsonl" },
		});
	return run_ship(args => [ '--task', $file, '--precheck' ], timeout => 60);
}

my ($rc, $stdout, $stderr) = precheck('missing',
	{ public => { tables => [ 'good', 'no_such_table' ] } });
isnt($rc, 0, 'precheck: a table that does not exist fails the precheck');
like(
	$stdout,
	qr/^fail\s+table\s+\S*no_such_table\S*: does not exist/m,
	'precheck: a "fail" line names the missing table');
like($stdout, qr/^pass\s+output_plugin_libraries/m,
	'precheck: output_plugin_libraries passes');

# --start runs the precheck first: a failed precheck starts nothing
my $missing_task = "$dir/precheck_missing.json";
($rc, $stdout, $stderr) = eval {
	run_ship(
		args => [ '--task', $missing_task, '--create-slot', '--start' ],
		timeout => 60);
};
is($@, '', '--start with a failing precheck ends by itself');
isnt($rc, 0, '--start with a failing precheck exits non-zero');
like(
	$stdout . $stderr,
	qr/^fail\s+table\s+\S*no_such_table\S*: does not exist/m,
	'--start prints the failed precheck item');
ok(!slot_exists($node, 'dts_sync_missing'),
	'--start with a failing precheck created no slot');

($rc, $stdout, $stderr) = precheck('case',
	{ public => { tables => ['mixed case'] } });
isnt($rc, 0, 'precheck: names are case-sensitive');
like(
	$stdout,
	qr/^fail\s+table\s+.*mixed case.*: does not exist/m,
	'precheck: the wrongly cased table is named as missing');

($rc, $stdout, $stderr) = precheck('nokey',
	{ public => { tables => [ 'good', 'nokey' ] } });
is($rc, 0, 'precheck: a table without a key is only a warning')
  or diag "stdout: $stdout\nstderr: $stderr";
like(
	$stdout,
	qr/^warn\s+replica identity: \S*nokey\S* has no primary key/m,
	'precheck: a "warn" line names the table without a key');
like(
	$stdout,
	qr/^\s+fix: ALTER TABLE \S*nokey\S* REPLICA IDENTITY FULL/m,
	'precheck: the fix suggests REPLICA IDENTITY FULL');
unlike($stdout, qr/^warn\s+replica identity: \S*good/m,
	'precheck: the table with a primary key is not warned about');
ok(!slot_exists($node, 'dts_sync_nokey'), 'precheck created no slot');

# output_plugin_libraries without pg_dts
$node->safe_psql('postgres',
	"ALTER SYSTEM SET output_plugin_libraries = 'pgoutput', 'test_decoding'; SELECT pg_reload_conf()"
);
$node->poll_query_until('postgres',
	"SELECT current_setting('output_plugin_libraries') NOT LIKE '%pg_dts%'"
) or die "timed out waiting for output_plugin_libraries to be reloaded";

($rc, $stdout, $stderr) = precheck('noplugin', { public => { tables => ['good'] } });
isnt($rc, 0, 'precheck: output_plugin_libraries without pg_dts fails');
like(
	$stdout,
	qr/^fail\s+output_plugin_libraries: .*does not name pg_dts/m,
	'precheck: the "fail" line says pg_dts is not in output_plugin_libraries');
like(
	$stdout,
	qr/^\s+fix: .*output_plugin_libraries.*pg_dts/m,
	'precheck: the fix adds pg_dts to output_plugin_libraries');

$node->safe_psql('postgres',
	"ALTER SYSTEM RESET output_plugin_libraries; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT current_setting('output_plugin_libraries') LIKE '%pg_dts%'")
  or die "timed out waiting for output_plugin_libraries to be restored";

($rc, $stdout, $stderr) = precheck('allgood', { public => { tables => ['good'] } });
is($rc, 0, 'precheck: a good task passes') or diag "stdout: $stdout\nstderr: $stderr";
unlike($stdout, qr/^fail/m, 'precheck: no "fail" line for a good task');

$node->stop;
done_testing();

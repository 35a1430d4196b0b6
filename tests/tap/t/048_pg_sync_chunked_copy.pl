#
# 048_pg_sync_chunked_copy.pl
#	  The full sync's chunked copy (docs/pg-sync.md section 3, "The source's
#	  side of the copy"): dts.copy_rows() (plugin/copy_rows_sql.c) serves a
#	  query's rows as binary COPY tuples, many to a bytea, and the shipper's
#	  relay (shipper/copy_relay.c) unwraps them for the destination's COPY.
#
#	  The function itself, against COPY ... TO (FORMAT binary) of the same
#	  query, byte for byte once unwrapped: every column type the function
#	  writes without fmgr and several it sends through their send functions
#	  (enum, domain, array, uuid, interval, inet, jsonb), NULLs, special
#	  values (NaN, infinities, -0), unicode text, TOASTed values
#	  (compressed, and stored out of line), rows of very different sizes
#	  with chunks of 1 kB (the chunks stay within 1 kB plus one row), a
#	  WHERE clause; under client_encoding LATIN1 (text converted, as COPY
#	  converts it); an empty result; and its errors.
#
#	  The shipper: a schema + full sync of the same tables three ways, each
#	  ending with the source's rows (compared by the text of every row):
#	  by default through dts.copy_rows() (the source's statement log shows
#	  it); with "parallel": {"chunked_copy": false} by a plain COPY TO (and
#	  the shipper says why); and from a source database whose extension is
#	  still 1.0 (the precheck warns and says how to update it, the full sync
#	  says so too and copies with a plain COPY TO).  ALTER EXTENSION pg_dts
#	  UPDATE then adds dts.copy_rows() there.
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
my $dst = new_destination_cluster('destination', 'd_chunked', 'd_plain', 'd_noext');

my $schema_sql = q{
CREATE SCHEMA "Chunk Types";
CREATE TYPE "Chunk Types".mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN "Chunk Types".posint AS int CHECK (VALUE > 0);
CREATE TABLE "Chunk Types"."all ""types""" (
  id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, o oid, d date, f4 float4,
  f8 float8, ts timestamp, tstz timestamptz, t time, m money, b bool,
  c "char", by bytea, tx text, vc varchar(20), bc char(5), js json,
  jsb jsonb, n numeric, n2 numeric(12,2), u uuid, iv interval, ip inet,
  arr int[], en "Chunk Types".mood, dom "Chunk Types".posint, big text);
INSERT INTO "Chunk Types"."all ""types""" VALUES
 (1, -32768, -2147483648, -9223372036854775808, 0, '4713-01-01 BC', 'NaN',
  '-Infinity', '-infinity', '1999-12-31 23:59:59.999999+05:30', '00:00', '-0.01',
  false, 'a', '\x00ff10', 'Ünïcødé ✓ "quoted" \ back', '', 'ab', '{"a": [1, 2]}',
  '{"b": {"c": null}}', 'NaN', -0.01, '00000000-0000-0000-0000-000000000000',
  '-1 year 2 mons 3 days 04:05:06.7', '10.0.0.1/8', '{1,NULL,3}', 'sad', 1, 'x'),
 (2, 32767, 2147483647, 9223372036854775807, 4294967295, 'infinity', '-0',
  'Infinity', 'infinity', '-infinity', '24:00', '92233720368547758.07', true,
  'z', '', repeat('long text ', 50), 'varchar!', 'abcde', '[]', '[]',
  '-Infinity', 9999999999.99, 'ffffffff-ffff-ffff-ffff-ffffffffffff', '0', '::1',
  '{}', 'happy', 2147483647, repeat('compressible ', 10000)),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL),
 (4, 0, 0, 0, 1, '2000-01-01', 1.5, -2.25e-300, '2000-01-01 00:00:00',
  '2026-06-30 12:34:56.789+02', '12:34:56.789', '0', true, 'q', '\x', ' ',
  'trailing  ', 'a', 'null', 'null', '123456789012345678901234567890.123456789',
  0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day', '192.168.0.1',
  '{{1,2},{3,4}}', 'ok', 42, NULL);
-- a value stored out of line, not compressed (md5 text, 160 kB)
UPDATE "Chunk Types"."all ""types""" SET big =
  (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 5000) i) WHERE id = 4;
ALTER TABLE "Chunk Types"."all ""types""" ALTER COLUMN big SET STORAGE EXTERNAL;
UPDATE "Chunk Types"."all ""types""" SET big = big || '' WHERE id = 4;
-- small rows and a few of 3 MB
CREATE TABLE "Chunk Types".sizes (id int PRIMARY KEY, v text);
INSERT INTO "Chunk Types".sizes
  SELECT i, CASE WHEN i % 700 = 0
                 THEN (SELECT string_agg(md5((i * 100000 + j)::text), '') FROM generate_series(1, 100000) j)
                 ELSE repeat(chr(65 + i % 26), i % 300) END
  FROM generate_series(1, 3000) i;
};
$src->safe_psql('postgres', $schema_sql);
# a source database whose extension is still 1.0 (no dts.copy_rows())
$src->safe_psql('postgres', 'CREATE DATABASE noext');
$src->safe_psql('noext', "CREATE EXTENSION pg_dts VERSION '1.0'");
$src->safe_psql('noext', $schema_sql);

my $types = q{"Chunk Types"."all ""types"""};
my $sizes = q{"Chunk Types".sizes};
is($src->safe_psql('postgres',
	"SELECT count(*) FROM $types t WHERE pg_column_size(t.big) < octet_length(t.big)"),
	'1', 'one value of column big is stored compressed');

# ---- the function against COPY, byte for byte ----

# A server-side file of the source (its OS user owns the data directory)
my $n = 0;
sub server_file { $n++; return $src->data_dir . "/copy_rows_$n.bin"; }

sub slurp_bin
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "could not open $path: $!";
	local $/;
	my $data = <$fh>;
	close $fh;
	return $data;
}

# COPY (query) TO a file, binary; returns its bytes
sub copy_plain
{
	my ($query, $db, $set) = @_;
	my $f = server_file();
	$src->safe_psql($db // 'postgres', ($set // '') . "COPY ($query) TO '$f' (FORMAT binary)");
	return slurp_bin($f);
}

# COPY (SELECT dts.copy_rows(query, chunk)) TO a file; returns the bytes
# unwrapped (header, the chunks' tuples, trailer), the rows the chunks
# counted and the size of every chunk's tuples
sub copy_chunked
{
	my ($query, $chunk, $db, $set) = @_;
	my $f = server_file();
	my $lit = quote_literal($query);
	$src->safe_psql($db // 'postgres',
		($set // '') . "COPY (SELECT dts.copy_rows($lit, $chunk)) TO '$f' (FORMAT binary)");
	my $data = slurp_bin($f);
	my $out = substr($data, 0, 19);
	my ($pos, $rows, @chunks) = (19, 0);
	for (;;)
	{
		my $nf = unpack('s>', substr($data, $pos, 2));
		$pos += 2;
		if ($nf == -1) { $out .= pack('s>', -1); last; }
		die "a chunk tuple of $nf fields" unless $nf == 1;
		my $len = unpack('l>', substr($data, $pos, 4));
		$rows += unpack('l>', substr($data, $pos + 4, 4));
		$out .= substr($data, $pos + 8, $len - 4);
		push @chunks, $len - 4;
		$pos += 4 + $len;
	}
	die "bytes after the trailer" unless $pos == length($data);
	return ($out, $rows, @chunks);
}

my $all = "SELECT * FROM ONLY $types ORDER BY id";
my $plain = copy_plain($all);
my ($unwrapped, $rows, @chunks) = copy_chunked($all, 262144);
ok($unwrapped eq $plain, 'all types: dts.copy_rows() writes what COPY writes, byte for byte');
is($rows, 4, 'all types: the chunks count 4 rows');

($unwrapped, $rows, @chunks) = copy_chunked($all, 1024);
ok($unwrapped eq $plain, 'all types, 1 kB chunks: the same bytes');
cmp_ok(scalar(@chunks), '>=', 2, 'all types, 1 kB chunks: in several chunks');

my $by_size = "SELECT * FROM $sizes ORDER BY id";
$plain = copy_plain($by_size);
($unwrapped, $rows, @chunks) = copy_chunked($by_size, 1024);
ok($unwrapped eq $plain, 'rows of 0 B to 3 MB, 1 kB chunks: the same bytes');
is($rows, 3000, 'rows of 0 B to 3 MB: the chunks count 3000 rows');
my $largest = $src->safe_psql('postgres', "SELECT max(octet_length(v)) + 10 FROM $sizes");
my @over = grep { $_ > 1024 + $largest } @chunks;
is(scalar(@over), 0, 'no chunk holds more than 1 kB plus one row')
  or diag "chunk sizes over the bound: @over";
note scalar(@chunks) . " chunks, the largest " . (sort { $b <=> $a } @chunks)[0] . " bytes";

($unwrapped, $rows) = copy_chunked($by_size, 262144);
ok($unwrapped eq $plain, 'rows of 0 B to 3 MB, 256 kB chunks: the same bytes');

my $range = "SELECT id, v FROM ONLY $sizes WHERE id >= 1000 AND id < 2000 ORDER BY id";
($unwrapped, $rows) = copy_chunked($range, 65536);
ok($unwrapped eq copy_plain($range), 'a WHERE clause: the same bytes');
is($rows, 1000, 'a WHERE clause: 1000 rows');

my $none = "SELECT * FROM $sizes WHERE false";
($unwrapped, $rows, @chunks) = copy_chunked($none, 1024);
ok($unwrapped eq copy_plain($none), 'no rows: header and trailer only, as COPY writes them');
is(scalar(@chunks), 0, 'no rows: no chunk');

# text converted to the client's encoding, as textsend does
my $latin = q{SELECT id, tx, vc, bc, js FROM ONLY "Chunk Types"."all ""types""" WHERE id <> 1 ORDER BY id};
$src->safe_psql('postgres',
	qq{UPDATE $types SET tx = 'café', vc = 'é', bc = 'ü', js = '"é"' WHERE id = 4});
my $set_latin = "SET client_encoding = 'LATIN1'; ";
$plain = copy_plain($latin, 'postgres', $set_latin);
($unwrapped) = copy_chunked($latin, 1024, 'postgres', $set_latin);
ok($unwrapped eq $plain, 'client_encoding LATIN1: the same bytes as COPY');
ok(index($unwrapped, "caf\xe9") >= 0, 'client_encoding LATIN1: the text is in LATIN1');

# errors
my ($rc, $out, $err) = $src->psql('postgres', "SELECT dts.copy_rows('SELECT 1', 10)");
like($err, qr/chunk_bytes must be at least 1024, not 10/, 'a chunk under 1 kB is refused');
($rc, $out, $err) = $src->psql('postgres', "SELECT dts.copy_rows('DELETE FROM \"Chunk Types\".sizes')");
like($err, qr/dts.copy_rows\(\) needs a query that returns rows/, 'a query without rows is refused');
is($src->safe_psql('postgres', "SELECT count(*) FROM $sizes"), '3000', '... and the DELETE did not run');
($rc, $out, $err) = $src->psql('postgres', "SELECT dts.copy_rows('SELECT * FROM no_such_table')");
like($err, qr/relation "no_such_table" does not exist/, 'the query\'s own error is reported');

# ---- the shipper, three ways ----

$src->safe_psql($_, "ALTER DATABASE $_ SET log_statement = 'all'") for ('postgres', 'noext');

my $rows_sql = join(' || ',
	map { "(SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM $_ t)" }
	  ($types, $sizes));

sub sync_into
{
	my ($name, $srcdb, $db, $extra) = @_;
	my $task = write_task(
		"$dir/$name.json",
		{
			name => $name,
			source => { conninfo => $src->connstr($srcdb) },
			sink => { type => 'pg', conninfo => $dst->connstr($db) },
			objects => { 'Chunk Types' => { all => JSON::PP::true } },
			sync => [ 'schema', 'full' ],
			heartbeat_interval => 0,
			%{ $extra // {} },
		});
	my $offset = -s $src->logfile;
	my ($rc, $out, $err) = run_ship(args => [ '--task', $task, '--start', '-n', '-v' ], timeout => 180);
	is($rc, 0, "$name: schema + full sync succeeds") or diag $err;
	is($dst->safe_psql($db, "SELECT $rows_sql"), $src->safe_psql($srcdb, "SELECT $rows_sql"),
		"$name: every row arrived equal");
	$src->safe_psql($srcdb, "SELECT pg_drop_replication_slot('dts_sync_$name')");
	my $log = slurp_file($src->logfile, $offset);
	my $chunked = () = $log =~ /COPY \(SELECT dts\.copy_rows\('SELECT /g;
	my $plain = () = $log =~ /COPY \(SELECT (?!dts\.copy_rows).* FROM ONLY .*\) TO STDOUT \(FORMAT binary\)/g;
	return ($err, $chunked, $plain);
}

my ($serr, $c, $p) = sync_into('ch_default', 'postgres', 'd_chunked');
is($c, 2, 'ch_default: both tables came through dts.copy_rows()');
is($p, 0, 'ch_default: no plain COPY TO');

($serr, $c, $p) = sync_into('ch_off', 'postgres', 'd_plain',
	{ parallel => { chunked_copy => JSON::PP::false } });
is($c, 0, 'ch_off: no dts.copy_rows()');
is($p, 2, 'ch_off: both tables by a plain COPY TO');
like($serr, qr/not through dts\.copy_rows\(\) \(the task sets "parallel": \{"chunked_copy": false\}\)/,
	'ch_off: the shipper says the task turned it off');

($serr, $c, $p) = sync_into('ch_noext', 'noext', 'd_noext');
is($c, 0, 'ch_noext: no dts.copy_rows() where the extension is 1.0');
is($p, 2, 'ch_noext: both tables by a plain COPY TO');
like($serr, qr/warn  extension: pg_dts 1\.0 is installed, but the server's files are of 1\.1.*\n.*fix: ALTER EXTENSION pg_dts UPDATE;/,
	'ch_noext: the precheck warns that the extension is 1.0 and says how to update it');
like($serr, qr/the source database has no dts\.copy_rows\(\) \(pg_dts 1\.1 or later\).*ALTER EXTENSION pg_dts UPDATE/,
	'ch_noext: the full sync says why it copies with COPY TO and what to do');
$src->safe_psql('noext', 'ALTER EXTENSION pg_dts UPDATE');
is($src->safe_psql('noext',
	"SELECT extversion || ' ' || (to_regprocedure('dts.copy_rows(text,integer)') IS NOT NULL) FROM pg_extension WHERE extname = 'pg_dts'"),
	'1.1 true', 'ALTER EXTENSION pg_dts UPDATE brings 1.1 and dts.copy_rows()');

done_testing();

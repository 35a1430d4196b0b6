#
# 001_walsender.pl
#	  The pg_dts output plugin over the replication protocol, not only
#	  through the SQL decoding functions: pg_recvlogical creates a pg_dts
#	  slot and streams it to a file; every message it wrote must be a
#	  well-formed pg_dts message (version byte, CRC-32C), and the messages
#	  must be exactly those SQL decoding gives for a second slot over the
#	  same changes.  Then output_plugin_libraries without pg_dts must refuse
#	  the plugin with a clear error, over both interfaces.
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use PgDts::Test;

# CRC-32C (Castagnoli, reflected 0x82F63B78), as docs/frames.md §2.
my @crc_table;
for my $i (0 .. 255)
{
	my $c = $i;
	$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
	push @crc_table, $c;
}

sub crc32c
{
	my ($bytes) = @_;
	my $crc = 0xFFFFFFFF;
	$crc = $crc_table[ ($crc ^ $_) & 0xFF ] ^ ($crc >> 8)
	  for unpack('C*', $bytes);
	return $crc ^ 0xFFFFFFFF;
}

is(crc32c('123456789'), 0xE3069283, 'CRC-32C check value');

# Reads one varint at $$pos of $data; undef if it runs off the end.
sub read_varint
{
	my ($data, $pos) = @_;
	my ($v, $shift) = (0, 0);
	while ($$pos < length $data)
	{
		my $b = ord(substr($data, $$pos++, 1));
		$v |= ($b & 0x7F) << $shift;
		return $v unless $b & 0x80;
		$shift += 7;
		return undef if $shift > 63;
	}
	return undef;
}

# Splits pg_recvlogical's output into messages.  pg_recvlogical writes each
# message followed by "\n", and the frames are binary (they may contain
# newlines), so the file is walked frame by frame: a message is
# 0x01, frames (kind, varint length, body), a CRC-32C of everything before
# it, then "\n".  A message ends where the next four bytes are the CRC of
# what precedes them and a newline follows.  Returns the messages (without
# their newline), or dies at the first byte that fits none of this.
sub split_recvlogical_output
{
	my ($data) = @_;
	my @messages;
	my $pos = 0;
	while ($pos < length $data)
	{
		my $start = $pos;
		die "offset $pos: version byte is not 1"
		  unless substr($data, $pos, 1) eq "\x01";
		$pos++;
		while (1)
		{
			die "offset $start: message runs off the end of the file"
			  if $pos >= length $data;
			if ($pos + 5 <= length $data
				&& substr($data, $pos + 4, 1) eq "\n"
				&& unpack('N', substr($data, $pos, 4)) ==
				crc32c(substr($data, $start, $pos - $start))
				&& $pos > $start + 1)
			{
				push @messages, substr($data, $start, $pos + 4 - $start);
				$pos += 5;
				last;
			}
			my $kind = substr($data, $pos, 1);
			die sprintf("offset %d: frame kind 0x%02x is not a letter",
				$pos, ord $kind)
			  unless $kind =~ /^[A-Za-z]$/;
			$pos++;
			my $len = read_varint($data, \$pos);
			die "offset $pos: bad frame length"
			  if !defined $len || $pos + $len > length $data;
			$pos += $len;
		}
	}
	return @messages;
}

my $node = new_source_cluster('source');
my $connstr = $node->connstr('postgres');
my $dir = PostgreSQL::Test::Utils::tempdir;
my $outfile = "$dir/recvlogical.out";

# ---- a pg_dts slot created over the replication protocol ----
command_ok(
	[
		'pg_recvlogical', '-d', $connstr, '-S', 'dts_recv',
		'--create-slot', '-P', 'pg_dts'
	],
	'pg_recvlogical --create-slot --plugin pg_dts');
is( $node->safe_psql(
		'postgres',
		"SELECT plugin || ' ' || slot_type FROM pg_replication_slots "
		  . "WHERE slot_name = 'dts_recv'"),
	'pg_dts logical',
	'the slot is a logical pg_dts slot');

# a second slot, read with the SQL functions, sees the same changes
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('dts_peek', 'pg_dts')");

my ($recv_out, $recv_err) = ('', '');
my $recv = IPC::Run::start(
	[
		'pg_recvlogical', '-d', $connstr, '-S', 'dts_recv', '--start',
		'-f', $outfile, '-o', 'format=text', '-F', '0', '-s', '1'
	],
	'<', \undef, '>', \$recv_out, '2>', \$recv_err);

wait_for(
	sub {
		$node->safe_psql('postgres',
			"SELECT active FROM pg_replication_slots "
			  . "WHERE slot_name = 'dts_recv'") eq 't';
	},
	60,
	'pg_recvlogical to connect');

# Changes (the DDL also writes rows into public.dts_ddl_command, which are
# decoded too; only walsender_t's are counted): one big transaction, ten small ones, updates, deletes, values
# with newlines (they end up inside the binary frames) and a TOASTed value.
$node->safe_psql(
	'postgres', q{
CREATE TABLE walsender_t (id int PRIMARY KEY, name text, note text);
ALTER TABLE walsender_t ALTER COLUMN note SET STORAGE EXTERNAL;
INSERT INTO walsender_t
  SELECT g, 'row ' || g, repeat(E'\n', g) FROM generate_series(1, 50) g;
});
$node->safe_psql('postgres',
	"INSERT INTO walsender_t VALUES ($_, E'line\\nbreak $_', NULL)")
  for 51 .. 60;
$node->safe_psql(
	'postgres', q{
INSERT INTO walsender_t
  SELECT g, 'big', repeat('x', 10000) FROM generate_series(61, 100) g;
UPDATE walsender_t SET name = name || ' updated' WHERE id <= 10;
DELETE FROM walsender_t WHERE id > 90;
});

my $expected_changes = 100 + 10 + 10;

# What SQL decoding says: the number of change frames and the end of the
# last commit.
my $peek_messages = $node->safe_psql(
	'postgres', q{
SELECT encode(data, 'hex')
FROM pg_logical_slot_peek_binary_changes('dts_peek', NULL, NULL, 'format', 'text')
});
my $peek_changes = $node->safe_psql(
	'postgres', q{
SELECT count(*)
FROM pg_logical_slot_peek_binary_changes('dts_peek', NULL, NULL, 'format', 'text') p,
     dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete') AND f->>'table' = 'walsender_t'
});
is($peek_changes, $expected_changes,
	'SQL decoding of the second slot shows every change');
my $last_end = $node->safe_psql(
	'postgres', q{
SELECT f->>'end_lsn'
FROM pg_logical_slot_peek_binary_changes('dts_peek', NULL, NULL) p,
     dts.frames(p.data) f
WHERE f->>'kind' = 'commit'
ORDER BY (f->>'end_lsn')::pg_lsn DESC LIMIT 1
});
like($last_end, qr{^[0-9A-F]+/[0-9A-F]+$}, 'the last commit has an end LSN');

# pg_recvlogical confirms only what it has written: once the slot's
# confirmed_flush passes the last commit, the file holds everything.
wait_slot_confirmed($node, 'dts_recv', $last_end, 120);
pass('the walsender slot confirmed the last commit');

# and the file stops growing
my $last_size = -1;
wait_for(
	sub {
		my $size = -s $outfile // 0;
		my $stable = $size > 0 && $size == $last_size;
		$last_size = $size;
		return $stable;
	},
	60,
	'the output file to stop growing');

$recv->signal('INT');
$recv->finish;
is($? >> 8, 0, 'pg_recvlogical exits 0 on SIGINT')
  or diag "pg_recvlogical stderr: $recv_err";

my $data = slurp_file($outfile);
ok(length($data) > 0, 'the output file is not empty');
is(substr($data, 0, 1), "\x01", 'the file starts with version byte 1');
ok($data =~ /[\x00-\x08\x0e-\x1f\x80-\xff]/,
	'the output is binary (not text lines)');

my @messages = eval { split_recvlogical_output($data) };
is($@, '', 'the file splits into CRC-checked pg_dts messages')
  or diag "split error: $@";
my @peek = split /\n/, $peek_messages;
cmp_ok(scalar(@messages), '>', 0, 'pg_recvlogical wrote some messages');
is(scalar(@messages), scalar(@peek),
	'as many messages over the walsender as through SQL decoding');
is_deeply(
	[ map { unpack('H*', $_) } @messages ],
	\@peek,
	'the walsender messages are byte for byte those of SQL decoding');

# The server decodes what pg_recvlogical received (dts.frames keeps the
# RELATION frames of earlier calls in the same statement, as for the SQL
# functions): every change is there.
my $hex_list = join(',', map { "'\\x" . unpack('H*', $_) . "'::bytea" } @messages);
my $file_changes = $node->safe_psql(
	'postgres', qq{
SELECT f->>'kind', count(*)
FROM unnest(ARRAY[$hex_list]) WITH ORDINALITY AS m(data, n),
     LATERAL dts.frames(m.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete') AND f->>'table' = 'walsender_t'
GROUP BY 1 ORDER BY 1
});
is($file_changes, "delete|10\ninsert|100\nupdate|10",
	'dts.frames() on the received messages: 100 inserts, 10 updates, 10 deletes'
);

# ---- a plugin not in output_plugin_libraries is refused ----
$node->safe_psql('postgres',
	"ALTER SYSTEM SET output_plugin_libraries = 'pgoutput'; SELECT pg_reload_conf()"
);
$node->poll_query_until('postgres',
	"SELECT current_setting('output_plugin_libraries') = 'pgoutput'")
  or die "timed out waiting for output_plugin_libraries to be reloaded";

my ($rc, $stdout, $stderr) = $node->psql('postgres',
	"SELECT pg_create_logical_replication_slot('dts_refused', 'pg_dts')");
isnt($rc, 0, 'creating a pg_dts slot fails when pg_dts is not listed');
like(
	$stderr,
	qr/"pg_dts" may not be used as an output plugin/,
	'the error names pg_dts');
like($stderr, qr/output_plugin_libraries/,
	'the hint names output_plugin_libraries');
ok(!slot_exists($node, 'dts_refused'), 'no slot was left behind');

$node->safe_psql('postgres', 'CREATE ROLE dts_repl LOGIN REPLICATION');
($rc, $stdout, $stderr) = $node->psql('postgres',
	"SET ROLE dts_repl; SELECT pg_create_logical_replication_slot('dts_refused', 'pg_dts')"
);
like(
	$stderr,
	qr/"pg_dts" may not be used as an output plugin/,
	'a REPLICATION (non-superuser) role is refused as well');

command_fails_like(
	[
		'pg_recvlogical', '-d', $connstr, '-S', 'dts_refused',
		'--create-slot', '-P', 'pg_dts'
	],
	qr/"pg_dts" may not be used as an output plugin.*output_plugin_libraries/s,
	'CREATE_REPLICATION_SLOT over the replication protocol is refused');

command_fails_like(
	[
		'pg_recvlogical', '-d', $connstr, '-S', 'dts_recv', '--start',
		'-f', "$dir/refused.out", '-n'
	],
	qr/"pg_dts" may not be used as an output plugin/,
	'START_REPLICATION of an existing pg_dts slot is refused');

($rc, $stdout, $stderr) = $node->psql('postgres',
	"SELECT count(*) FROM pg_logical_slot_peek_binary_changes('dts_peek', NULL, NULL)"
);
like(
	$stderr,
	qr/"pg_dts" may not be used as an output plugin/,
	'SQL decoding of an existing pg_dts slot is refused');

# restore: the plugin works again
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET output_plugin_libraries; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT current_setting('output_plugin_libraries') LIKE '%pg_dts%'")
  or die "timed out waiting for output_plugin_libraries to be restored";
is( $node->safe_psql(
		'postgres', q{
SELECT count(*)
FROM pg_logical_slot_peek_binary_changes('dts_peek', NULL, NULL) p,
     dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete') AND f->>'table' = 'walsender_t'
}),
	$expected_changes,
	'with pg_dts listed again the slot decodes as before');

$node->stop;
done_testing();

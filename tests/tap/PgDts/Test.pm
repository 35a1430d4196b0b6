#
# tests/tap/PgDts/Test.pm
#	  Shared setup of pg_dts's TAP suites (tests/tap/t/*.pl): source
#	  clusters, pg_dts_ship in the background, the file sink's JSON lines,
#	  LSNs, and the one polling helper with a deadline.
#

=pod

=head1 NAME

PgDts::Test - shared setup for pg_dts's TAP suites

=head1 SYNOPSIS

  use PostgreSQL::Test::Cluster;
  use PostgreSQL::Test::Utils;
  use Test::More;
  use PgDts::Test;

  my $node = new_source_cluster('source');
  my $ship = start_ship(name => 'basic', args => ['-d', $node->connstr,
                        '-S', 's', '--create-slot', '--start', '-f', $out]);
  wait_for(sub { @{ json_lines_of($out) } >= 3 }, 30,
           'three lines in the output');
  is(stop_ship($ship, 'INT'), 0, 'pg_dts_ship exits 0 on SIGINT');

=head1 DESCRIPTION

What every pg_dts TAP test needs: a source cluster that can decode with
pg_dts, pg_dts_ship run in the background (its stdout and stderr in a log
file, its pid known so that it can be signalled or killed with SIGKILL), the
file sink's JSON lines read back, LSN arithmetic, and one polling helper
with a deadline (tests never sleep for a fixed time).

The tests are run by tests/tap/run.sh, which sets PATH (the server's bindir
first), PG_REGRESS, TESTDIR and PG_DTS_REGRESS_SQL (a copy of
tests/regress/sql).  PG_DTS_SHIP may name the pg_dts_ship binary; otherwise
it is looked up in PATH.

=cut

package PgDts::Test;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Basename;
use IPC::Run;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  new_source_cluster
  new_destination_cluster
  ship_path
  ship_help
  require_ship
  start_ship
  start_bg
  stop_ship
  kill_ship
  ship_running
  ship_log
  wait_ship_exit
  run_ship
  read_json_lines
  json_lines_of
  raw_json_lines
  write_task
  quote_literal
  wait_for
  lsn_to_int
  lsn_cmp
  slot_confirmed_lsn
  slot_exists
  wait_slot_confirmed
  wait_slot_inactive
  slot_streaming
  write_file
  regress_sql
);

# Settings every source cluster gets: logical decoding with pg_dts allowed
# (PostgreSQL 15.20's output_plugin_libraries: a plugin that is not listed
# cannot be used for a slot).
our $SOURCE_CONF = <<'CONF';
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
output_plugin_libraries = 'pgoutput, test_decoding, pg_dts'
max_prepared_transactions = 10
track_commit_timestamp = on
wal_sender_timeout = 60s
log_min_messages = info
CONF

=pod

=head1 FUNCTIONS

=over

=item new_source_cluster(name, %params)

A new, started cluster with wal_level = logical, room for slots and
walsenders, pg_dts in output_plugin_libraries and the extension created in
database postgres.  extra_conf => STRING is appended to postgresql.conf.

=cut

sub new_source_cluster
{
	my ($name, %params) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(allows_streaming => 'logical');
	$node->append_conf('postgresql.conf', $SOURCE_CONF);
	$node->append_conf('postgresql.conf', $params{extra_conf})
	  if defined $params{extra_conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_dts');
	return $node;
}

=pod

=item new_destination_cluster(name, databases...)

A new, started cluster with the default settings and the given databases
created: the destination of a pg sink.

=cut

sub new_destination_cluster
{
	my ($name, @databases) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->start;
	$node->safe_psql('postgres', "CREATE DATABASE $_") foreach @databases;
	return $node;
}

=pod

=item ship_path()

The pg_dts_ship binary: $ENV{PG_DTS_SHIP} if set, else the first one in
PATH; undef if there is none.

=cut

sub ship_path
{
	return $ENV{PG_DTS_SHIP}
	  if defined $ENV{PG_DTS_SHIP} && $ENV{PG_DTS_SHIP} ne '';
	foreach my $dir (split /:/, $ENV{PATH})
	{
		my $p = "$dir/pg_dts_ship";
		return $p if -f $p && -x $p;
	}
	return undef;
}

=pod

=item require_ship()

Skips the whole test file (plan skip_all) when pg_dts_ship is not
installed.

=cut

sub require_ship
{
	plan skip_all => 'pg_dts_ship is not installed (make install)'
	  unless defined ship_path();
	return;
}

=pod

=item ship_help()

pg_dts_ship --help's output (cached).

=cut

my $help_cache;

sub ship_help
{
	return $help_cache if defined $help_cache;
	my ($stdout, $stderr);
	IPC::Run::run([ ship_path(), '--help' ], '>', \$stdout, '2>', \$stderr);
	$help_cache = ($stdout // '') . ($stderr // '');
	return $help_cache;
}

=pod

=item run_ship(args => [...], env => {...}, timeout => SECONDS)

Runs pg_dts_ship in the foreground to its end.  Returns (exit code,
stdout, stderr); dies if it does not end in time (default 60 s).

=cut

sub run_ship
{
	my (%p) = @_;
	my ($stdout, $stderr) = ('', '');
	my $timeout = $p{timeout} // 60;
	local %ENV = (%ENV, %{ $p{env} // {} });
	my $h = IPC::Run::start(
		[ ship_path(), @{ $p{args} } ],
		'<', \undef, '>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout($timeout));
	eval { $h->finish; };
	if ($@)
	{
		$h->kill_kill;
		die "pg_dts_ship @{ $p{args} } did not finish within $timeout s: $@";
	}
	my $code = $h->full_result(0);
	my $rc = ($code & 127) ? 128 + ($code & 127) : $code >> 8;
	note "pg_dts_ship @{ $p{args} }: exit $rc";
	note "stdout: $stdout" if $stdout ne '';
	note "stderr: $stderr" if $stderr ne '';
	return ($rc, $stdout, $stderr);
}

=pod

=item start_ship(name => NAME, args => [...], env => {...})

Starts pg_dts_ship in the background; stdout and stderr go to (append to)
tmp_check/log/<test>_ship_<name>.log.  Returns a handle (a hash with pid,
log, args) for stop_ship, kill_ship, ship_running and wait_ship_exit.

=cut

sub start_ship
{
	my (%p) = @_;
	return start_bg(
		name => 'ship_' . ($p{name} // 'ship'),
		cmd => [ ship_path(), @{ $p{args} } ],
		env => $p{env});
}

=pod

=item start_bg(name => NAME, cmd => [...], env => {...})

Starts any command in the background the same way (log
tmp_check/log/<test>_<name>.log); the handle works with ship_running,
wait_ship_exit, stop_ship and kill_ship.

=cut

my @background;

sub start_bg
{
	my (%p) = @_;
	my $name = $p{name};
	my $test = basename($0);
	$test =~ s/\.[^.]+$//;
	my $log = "$PostgreSQL::Test::Utils::log_path/${test}_$name.log";
	my @cmd = @{ $p{cmd} };

	note "starting (log $log): @cmd";
	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		%ENV = (%ENV, %{ $p{env} // {} });
		open(STDIN, '<', '/dev/null') or POSIX::_exit(127);
		open(STDOUT, '>>', $log) or POSIX::_exit(127);
		open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
		{
			no warnings 'exec';
			exec { $cmd[0] } @cmd;
		}
		print STDERR "could not run $cmd[0]: $!\n";
		POSIX::_exit(127);
	}
	my $h = { pid => $pid, log => $log, args => \@cmd, name => $name };
	push @background, $h;
	return $h;
}

# Whatever is still running when the test ends (it died, or forgot) is
# killed, so that no shipper keeps retrying against a removed cluster.
END
{
	local $?;    # keep the test's exit status
	foreach my $h (@background)
	{
		next unless defined $h->{pid} && !defined $h->{rc};
		next if waitpid($h->{pid}, WNOHANG) != 0;
		kill 'KILL', $h->{pid};
		waitpid($h->{pid}, 0);
	}
}

=pod

=item ship_running(handle)

True while the process has not exited (reaps it once it has; its exit code
is then in $handle->{rc}, 128 + N for a signal N).

=cut

sub ship_running
{
	my ($ship) = @_;
	return 0 if defined $ship->{rc};
	my $r = waitpid($ship->{pid}, WNOHANG);
	return 1 if $r == 0;
	my $st = $?;
	$ship->{rc} = ($st & 127) ? 128 + ($st & 127) : $st >> 8;
	$ship->{signal} = $st & 127;
	return 0;
}

=pod

=item wait_ship_exit(handle, timeout)

Waits (default 60 s) for the process to exit; returns its exit code, or
undef if it is still running at the deadline.

=cut

sub wait_ship_exit
{
	my ($ship, $timeout) = @_;
	$timeout //= 60;
	my $deadline = time() + $timeout;
	while (ship_running($ship))
	{
		return undef if time() > $deadline;
		usleep(50_000);
	}
	return $ship->{rc};
}

=pod

=item stop_ship(handle, signal, timeout)

Sends SIGNAL (default INT) and waits (default 60 s) for the exit.  Returns
the exit code.  If the process does not exit in time it is killed with
SIGKILL and the call dies.

=cut

sub stop_ship
{
	my ($ship, $sig, $timeout) = @_;
	$sig //= 'INT';
	return $ship->{rc} unless ship_running($ship);
	kill $sig, $ship->{pid};
	my $rc = wait_ship_exit($ship, $timeout // 60);
	if (!defined $rc)
	{
		kill 'KILL', $ship->{pid};
		wait_ship_exit($ship, 10);
		die "pg_dts_ship (pid $ship->{pid}) did not exit after SIG$sig";
	}
	note "pg_dts_ship $ship->{name} (pid $ship->{pid}) exited $rc after SIG$sig";
	return $rc;
}

=pod

=item kill_ship(handle)

kill -9, then reap.  Returns the exit code (137).

=cut

sub kill_ship
{
	my ($ship) = @_;
	return $ship->{rc} unless ship_running($ship);
	kill 'KILL', $ship->{pid};
	my $rc = wait_ship_exit($ship, 30);
	die "pg_dts_ship (pid $ship->{pid}) survived SIGKILL" unless defined $rc;
	return $rc;
}

=pod

=item ship_log(handle)

The contents of the process's log so far.

=cut

sub ship_log
{
	my ($ship) = @_;
	return -f $ship->{log} ? slurp_file($ship->{log}) : '';
}

=pod

=item read_json_lines(file)

Reads a JSON-lines file.  A trailing line without its newline (being
written, or cut by a crash) is skipped.  Returns a hash:
records => [ decoded objects in file order ], bad => [ [line number, text],
... lines that are not JSON ], partial => the skipped trailing text or ''.
A missing file reads as empty.

=cut

sub read_json_lines
{
	my ($file) = @_;
	my %r = (records => [], bad => [], partial => '');
	return \%r unless -e $file;
	open my $fh, '<:raw', $file or croak "could not open $file: $!";
	local $/;
	my $data = <$fh>;
	close $fh;
	$data //= '';
	my $json = JSON::PP->new->utf8->allow_bignum;
	my @lines = split /\n/, $data, -1;
	# the piece after the last newline: '' when the file ends with one
	$r{partial} = pop @lines;
	my $n = 0;
	foreach my $line (@lines)
	{
		$n++;
		next if $line eq '';
		my $obj = eval { $json->decode($line) };
		if (!defined $obj || ref $obj ne 'HASH')
		{
			push @{ $r{bad} }, [ $n, $line ];
			next;
		}
		push @{ $r{records} }, $obj;
	}
	return \%r;
}

=pod

=item json_lines_of(file)

Just the decoded records of read_json_lines (an array ref).

=cut

sub json_lines_of
{
	return read_json_lines($_[0])->{records};
}

=pod

=item raw_json_lines(file)

The complete lines of a file (bytes, without their newlines); a trailing
line without its newline is left out.

=cut

sub raw_json_lines
{
	my ($file) = @_;
	return [] unless -e $file;
	open my $fh, '<:raw', $file or croak "could not open $file: $!";
	local $/;
	my $data = <$fh> // '';
	close $fh;
	my @lines = split /\n/, $data, -1;
	pop @lines;
	return [ grep { $_ ne '' } @lines ];
}

=pod

=item write_task(path, hashref)

Writes a task file (docs/task.md) from a Perl structure; returns PATH.

=cut

sub write_task
{
	my ($path, $task) = @_;
	my $json = JSON::PP->new->utf8->canonical->pretty->encode($task);
	open my $fh, '>:raw', $path or croak "could not write $path: $!";
	print $fh $json;
	close $fh or croak "could not write $path: $!";
	return $path;
}

=pod

=item wait_for(code, timeout, description)

Calls CODE every 100 ms until it returns true or TIMEOUT seconds pass;
returns CODE's true value, or dies with "timed out after N s waiting for
DESCRIPTION".

=cut

sub wait_for
{
	my ($code, $timeout, $what) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout;
	while (1)
	{
		my $v = $code->();
		return $v if $v;
		croak "timed out after $timeout s waiting for $what"
		  if time() > $deadline;
		usleep(100_000);
	}
}

=pod

=item lsn_to_int(lsn), lsn_cmp(a, b)

"X/Y" as a 64-bit integer; the comparison of two LSNs (-1, 0, 1).  An
undefined or empty LSN is 0.

=cut

sub lsn_to_int
{
	my ($lsn) = @_;
	return 0 if !defined $lsn || $lsn eq '';
	my ($hi, $lo) = $lsn =~ m{^([0-9A-Fa-f]+)/([0-9A-Fa-f]+)$}
	  or croak "not an LSN: '$lsn'";
	return hex($hi) * 4294967296 + hex($lo);
}

sub lsn_cmp
{
	my ($a, $b) = @_;
	return lsn_to_int($a) <=> lsn_to_int($b);
}

=pod

=item slot_confirmed_lsn(node, slot), slot_exists(node, slot)

The slot's confirmed_flush_lsn ('' when NULL or no such slot); whether the
slot exists.

=cut

sub slot_confirmed_lsn
{
	my ($node, $slot) = @_;
	return $node->safe_psql('postgres',
		"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = "
		  . quote_literal($slot));
}

sub slot_exists
{
	my ($node, $slot) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
		  . quote_literal($slot)) eq '1';
}

=pod

=item wait_slot_confirmed(node, slot, lsn, timeout)

Waits until the slot's confirmed_flush_lsn is at or past LSN; dies at the
deadline (default: PG_TEST_TIMEOUT_DEFAULT).

=cut

sub wait_slot_confirmed
{
	my ($node, $slot, $lsn, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $q = quote_literal($slot);
	my $deadline = time() + $timeout;
	while (1)
	{
		my $ok = $node->safe_psql('postgres',
			"SELECT coalesce(confirmed_flush_lsn >= '$lsn'::pg_lsn, false) "
			  . "FROM pg_replication_slots WHERE slot_name = $q");
		return 1 if $ok eq 't';
		if (time() > $deadline)
		{
			my $now = slot_confirmed_lsn($node, $slot);
			croak "timed out after $timeout s waiting for slot $slot "
			  . "to confirm $lsn (confirmed: '$now')";
		}
		usleep(100_000);
	}
}

=pod

=item wait_slot_inactive(node, slot, timeout)

Waits until no walsender uses the slot.

=cut

sub wait_slot_inactive
{
	my ($node, $slot, $timeout) = @_;
	my $q = quote_literal($slot);
	wait_for(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM pg_replication_slots "
				  . "WHERE slot_name = $q AND active") eq '0';
		},
		$timeout,
		"slot $slot to become inactive");
	return;
}

=pod

=item slot_streaming(node, slot)

True when a walsender streams from SLOT (START_REPLICATION: state catchup or
streaming).  "active" alone is not enough for tasks with a full sync: the
connection that creates the slot and exports its snapshot holds it during
the initial sync, long before streaming starts.

=cut

sub slot_streaming
{
	my ($node, $slot) = @_;
	my $q = quote_literal($slot);
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_replication_slots s "
		  . "JOIN pg_stat_replication r ON r.pid = s.active_pid "
		  . "WHERE s.slot_name = $q AND r.state IN ('catchup', 'streaming')")
	  eq '1';
}

=pod

=item write_file(path, text)

Writes TEXT (UTF-8) to PATH, replacing it.

=cut

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>:utf8', $path or croak "could not write $path: $!";
	print $fh $text;
	close $fh or croak "could not write $path: $!";
	return;
}

=pod

=item regress_sql(name)

The text of tests/regress/sql/NAME.sql (the copy run.sh makes).

=cut

sub regress_sql
{
	my ($name) = @_;
	my $dir = $ENV{PG_DTS_REGRESS_SQL}
	  // dirname(__FILE__) . '/../../regress/sql';
	return slurp_file("$dir/$name.sql");
}

=pod

=item quote_literal(text)

TEXT as an SQL string literal.

=cut

sub quote_literal
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

=pod

=back

=cut

1;

/*-------------------------------------------------------------------------
 *
 * full_sync.c
 *	  The full sync of a PostgreSQL-to-PostgreSQL task: parallel binary
 *	  COPY of every selected table from one exported snapshot, in ranges,
 *	  resumable through dts.full_sync_progress on the destination.
 *
 * The coordinator (the caller's thread) imports the snapshot on a source
 * connection of its own, reads the tables, locks them against rewrites
 * (ACCESS SHARE, held to the end), plans the ranges (or reads the plan of
 * an earlier, interrupted call) and starts the workers.  Each worker has
 * its own source connection, in a REPEATABLE READ transaction that
 * imported the snapshot, and its own destination connection; it takes
 * ranges from a shared queue (tables interleaved, biggest first), and for
 * each one runs
 *
 *	source:		 COPY (SELECT cols FROM t WHERE range AND filter)
 *				 TO STDOUT (FORMAT binary)
 *	  or, when the source has the pg_dts extension (chunked copy):
 *				 COPY (SELECT dts.copy_rows('SELECT cols FROM t WHERE ...'))
 *				 TO STDOUT (FORMAT binary)
 *	destination: BEGIN; COPY t' (cols') FROM STDIN (FORMAT binary);
 *				 UPDATE dts.full_sync_progress SET done ...; COMMIT
 *
 * passing the COPY data on untouched, gathered into 64 kB CopyData messages
 * (a plain COPY TO sends one per row; dts.copy_rows() sends the rows in
 * chunks of 256 kB, in the same binary format, at a fraction of the
 * source's and the relay's CPU: plugin/copy_rows_sql.c).  When there are at least as many tables
 * as workers and whole tables keep them about evenly busy, each table is
 * one range (a sequential scan, the cheapest on the source).  Else ranges
 * follow a single-column integer primary key when there is one (they stay
 * valid across snapshots, so a resumed copy keeps them) and else blocks
 * (ctid ranges, which PostgreSQL 14+ scans directly; a table copied by
 * block ranges is copied again whole if a resumed call has a different
 * snapshot, since an updated row can move between blocks).
 *
 * Throttling is global: after each 256 kB a worker adds what it moved to
 * the shared counters and sleeps until the totals are back under the
 * task's rows/s and MB/s.
 *
 * shipper/full_sync.c
 *
 *-------------------------------------------------------------------------
 */
#include "full_sync.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

#include "copy_relay.h"
#include "sqlstate.h"
#include "sync_tables.h"

#define APPNAME				"pg_dts_ship full sync"
#define ACCOUNT_BYTES		(256 * 1024)	/* flush counters this often */
#define COPY_CHECK_BYTES	(16 * 1024 * 1024)	/* see dest_copy_ended() */
#define COPY_CHECK_IDLE_US	1000000
#define MIN_RANGE_ESTIMATE	8192

typedef enum RangeKind
{
	RANGE_ALL = 0,				/* the whole table */
	RANGE_KEY,					/* key >= from AND key < to */
	RANGE_CTID					/* ctid >= '(from,0)' AND ctid < '(to,0)' */
} RangeKind;

static const char *const range_kind_names[] = {"all", "key", "ctid"};

/* a slot name: NAMEDATALEN (64) bytes with its terminator */
#define DTS_SLOT_NAME_MAX	64

/* One range of one table; from/to absent = open end */
typedef struct CopyRange
{
	int			table;			/* index into FullSync.tables */
	int			range_no;
	int			ranges_total;
	RangeKind	kind;
	bool		has_from;
	bool		has_to;
	int64_t		from;
	int64_t		to;
	bool		done;
	int64_t		est_bytes;		/* share of the table's size, for the ETA */
} CopyRange;

/* Everything the coordinator and the workers share */
typedef struct FullSync
{
	const DtsTask *task;
	const char *src_conninfo;
	const char *dst_conninfo;
	const char *snapshot;
	const DtsFullSyncOptions *opts;
	char		snapshot_lsn[DTS_LSN_BUFSIZE];

	DtsSyncTable *tables;
	int			ntables;
	bool	   *stage;			/* per table: through a staging table */
	bool	   *freeze;			/* per table: created by this task's
								 * pre-data, so a whole-table copy may
								 * TRUNCATE it and COPY ... FREEZE */
	int		   *left;			/* per table: ranges not done */
	char		dst_slot[DTS_SLOT_NAME_MAX];	/* a logical slot of the
												 * destination database, or
												 * "" */
	CopyRange  *ranges;
	int			nranges;
	int		   *queue;			/* ranges to copy, in order */
	int			nqueue;

	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t changed;		/* a worker ended */
	int			next;			/* next queue entry to hand out */
	int			running;		/* workers still running */
	bool		failed;
	DtsError	err;			/* the first failure */
	int64_t		rows;
	int64_t		bytes;
	int			ranges_done;	/* by this call */
	int			tables_done;	/* every range done, this call or before */
	int64_t		est_total;
	int64_t		est_done;		/* by this call */
	int64_t		start_us;
	bool		origin_warned;	/* said that the copy has no origin */
	bool		chunked;		/* the source serves dts.copy_rows() */

	/*
	 * The coordinator's destination session, idle while the workers copy:
	 * they use it, one at a time, to see whether the destination still
	 * runs their COPY (dest_copy_ended()).
	 */
	PGconn	   *monitor;
	pthread_mutex_t monitor_lock;
} FullSync;

typedef struct Worker
{
	FullSync   *fs;
	int			no;				/* 1..workers: names its replication origin */
	pthread_t	thread;
	PGconn	   *src;
	PGconn	   *dst;
	DtsBuf		sql;
	DtsCopyRelay relay;			/* COPY data read, not yet sent */
	const char *what;			/* the range being copied, for messages */
	int64_t		acc_rows;		/* not yet added to the shared counters */
	int64_t		acc_bytes;
	int64_t		range_bytes;	/* moved for the current range */
	int64_t		range_rows;
	int64_t		checked_bytes;	/* range_bytes at the last dest_copy_ended() */
	int64_t		checked_us;		/* ... and when */
	bool		dst_ended;		/* the destination ended the COPY: an error */
} Worker;

void
dts_full_sync_options_init(DtsFullSyncOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->workers = DTS_FULL_SYNC_WORKERS_DEFAULT;
	opts->range_bytes = DTS_FULL_SYNC_RANGE_BYTES_DEFAULT;
	opts->max_ranges = DTS_FULL_SYNC_MAX_RANGES_DEFAULT;
	opts->progress_interval_ms = DTS_FULL_SYNC_PROGRESS_MS_DEFAULT;
	opts->freeze = true;
	opts->chunked = true;
}

static bool
stop_requested(FullSync *fs)
{
	return fs->opts->stop && *fs->opts->stop;
}

/* Records a worker's failure (the first one wins) */
static void
fail(FullSync *fs, const DtsError *err)
{
	pthread_mutex_lock(&fs->lock);
	if (!fs->failed)
	{
		fs->failed = true;
		fs->err = *err;
	}
	pthread_mutex_unlock(&fs->lock);
}

static bool
failed(FullSync *fs)
{
	bool		f;

	pthread_mutex_lock(&fs->lock);
	f = fs->failed;
	pthread_mutex_unlock(&fs->lock);
	return f;
}

static void
sleep_us(int64_t us)
{
	struct timespec ts;

	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ----------------------------------------------------------------
 *		Sessions
 * ----------------------------------------------------------------
 */

/*
 * Both sides get the same text forms (used by tables that cannot go
 * binary) and the destination commits asynchronously: a range lost in a
 * crash loses its progress row with it and is copied again.
 */
#define SESSION_SQL \
	"SET DateStyle = ISO; SET IntervalStyle = postgres; " \
	"SET extra_float_digits = 3; SET bytea_output = hex; " \
	"SET statement_timeout = 0; SET lock_timeout = 0"

/* A source connection in a transaction that imported the snapshot */
static PGconn *
open_source(FullSync *fs, DtsError *err)
{
	PGconn	   *conn = dts_sync_connect(fs->src_conninfo, APPNAME, "source",
										err);
	DtsBuf		sql = {0};

	if (conn == NULL)
		return NULL;
	/* separate statements: BEGIN must start the transaction */
	dts_buf_printf(&sql, "SET TRANSACTION SNAPSHOT ");
	dts_buf_literal(&sql, fs->snapshot);
	if (dts_sync_run(conn, SESSION_SQL "; SET "
					 "idle_in_transaction_session_timeout = 0",
					 "could not set up a source session", err) < 0 ||
		dts_sync_run(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
					 "could not begin on the source", err) < 0 ||
		dts_sync_run(conn, dts_buf_str(&sql),
					 "could not import the full sync's snapshot on the source",
					 err) < 0)
	{
		dts_error_hint(err, "The connection that exported snapshot \"%s\" "
					   "must stay open and idle until the full sync ends.",
					   fs->snapshot);
		PQfinish(conn);
		conn = NULL;
	}
	dts_buf_free(&sql);
	return conn;
}

static PGconn *
open_destination(FullSync *fs, DtsError *err)
{
	PGconn	   *conn = dts_sync_connect(fs->dst_conninfo, APPNAME,
										"destination", err);
	PGresult   *res;

	if (conn == NULL)
		return NULL;
	if (dts_sync_run(conn, SESSION_SQL "; SET synchronous_commit = off",
					 "could not set up a destination session", err) < 0)
	{
		PQfinish(conn);
		return NULL;
	}
	/* no triggers or foreign key checks, where we may (superuser) */
	res = PQexec(conn, "SET session_replication_role = replica");
	PQclear(res);
	return conn;
}

/* ----------------------------------------------------------------
 *		Ranges
 * ----------------------------------------------------------------
 */

/* Appends "FROM [ONLY] s.t" for the source table */
static void
append_source_table(DtsBuf *sql, const DtsSyncTable *t)
{
	dts_buf_printf(sql, " FROM %s", t->relkind == 'p' ? "" : "ONLY ");
	dts_buf_qualified(sql, t->src_schema, t->src_table);
}

/* Appends the copied columns, by source or destination name */
static void
append_columns(DtsBuf *sql, const DtsSyncTable *t, bool dst)
{
	int			i;
	bool		first = true;

	for (i = 0; i < t->ncolumns; i++)
	{
		if (t->columns[i].generated)
			continue;
		if (!first)
			dts_buf_append(sql, ", ", 2);
		dts_buf_ident(sql, dst ? t->columns[i].dst_name :
					  t->columns[i].src_name);
		first = false;
	}
}

/* Appends the WHERE clause of a range and the rule's row filter */
static void
append_where(DtsBuf *sql, const DtsSyncTable *t, const CopyRange *r)
{
	const char *sep = " WHERE ";

	if (r->kind == RANGE_KEY)
	{
		if (r->has_from)
		{
			dts_buf_printf(sql, "%s", sep);
			dts_buf_ident(sql, t->int_key);
			dts_buf_printf(sql, " >= %" PRId64, r->from);
			sep = " AND ";
		}
		if (r->has_to)
		{
			dts_buf_printf(sql, "%s", sep);
			dts_buf_ident(sql, t->int_key);
			dts_buf_printf(sql, " < %" PRId64, r->to);
			sep = " AND ";
		}
	}
	else if (r->kind == RANGE_CTID)
	{
		if (r->has_from)
		{
			dts_buf_printf(sql, "%sctid >= '(%" PRId64 ",0)'::pg_catalog.tid",
						   sep, r->from);
			sep = " AND ";
		}
		if (r->has_to)
		{
			dts_buf_printf(sql, "%sctid < '(%" PRId64 ",0)'::pg_catalog.tid",
						   sep, r->to);
			sep = " AND ";
		}
	}
	if (t->where)
		dts_buf_printf(sql, "%s(%s)", sep, t->where);
}

/* Adds one range to the plan */
static CopyRange *
add_range(FullSync *fs, int table, int no, int total, RangeKind kind)
{
	CopyRange  *r;
	int64_t		est = fs->tables[table].size_bytes / (total > 0 ? total : 1);

	fs->ranges = dts_realloc(fs->ranges, (fs->nranges + 1) * sizeof(CopyRange));
	r = &fs->ranges[fs->nranges++];
	memset(r, 0, sizeof(*r));
	r->table = table;
	r->range_no = no;
	r->ranges_total = total;
	r->kind = kind;
	r->est_bytes = est < MIN_RANGE_ESTIMATE ? MIN_RANGE_ESTIMATE : est;
	return r;
}

/*
 * Splits the key range [min, max] into n ranges of equal width; the first
 * and the last are open, so that keys outside [min, max] (inserted after
 * this snapshot, seen by a resumed call's newer one) still fall in one.
 */
static void
plan_key_ranges(FullSync *fs, int table, int64_t min, int64_t max, int n)
{
	__int128	span = (__int128) max - min + 1;
	int			i;

	if (span < n)
		n = (int) span;
	for (i = 0; i < n; i++)
	{
		CopyRange  *r = add_range(fs, table, i, n, RANGE_KEY);

		r->has_from = i > 0;
		r->from = (int64_t) (min + span * i / n);
		r->has_to = i < n - 1;
		r->to = (int64_t) (min + span * (i + 1) / n);
	}
}

/* qsort: sizes, biggest first */
static int
compare_sizes_desc(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a;
	int64_t		y = *(const int64_t *) b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Can every table be copied whole and still keep the workers about evenly
 * busy?  A whole table is one sequential scan on the source (through its
 * small buffer ring); a range is a bitmap (key) or TID range (block) scan
 * (through shared buffers), and on a table bigger than shared_buffers that
 * cost about twice the source CPU: bench/fullsync/profile.sh, 4.2 GB in
 * four equal tables, 4 workers: source CPU 42.9 s in key ranges, 38.7 s in
 * block ranges, 21.2 s whole; the sync 90.2, 80.6 and 70.7 s.  So when
 * there are enough tables to go round and handing them out whole, biggest
 * first to the least loaded worker, ends within WHOLE_TABLES_SLACK of a
 * perfectly even split, no table is split.  Resuming then works per table.
 */
#define WHOLE_TABLES_SLACK	1.25

static bool
whole_tables_balance(const FullSync *fs)
{
	int			workers = fs->opts->workers > 0 ? fs->opts->workers : 1;
	int64_t    *load;
	int64_t    *sizes;
	int64_t		total = 0,
				longest = 0;
	int			i,
				j;

	if (fs->ntables < workers)
		return false;
	load = calloc(workers, sizeof(int64_t));
	sizes = calloc(fs->ntables, sizeof(int64_t));
	if (load == NULL || sizes == NULL)
		abort();
	for (i = 0; i < fs->ntables; i++)
	{
		sizes[i] = fs->tables[i].size_bytes;
		total += sizes[i];
	}
	qsort(sizes, fs->ntables, sizeof(int64_t), compare_sizes_desc);
	for (i = 0; i < fs->ntables; i++)
	{
		int			least = 0;

		for (j = 1; j < workers; j++)
			if (load[j] < load[least])
				least = j;
		load[least] += sizes[i];
	}
	for (j = 0; j < workers; j++)
		if (load[j] > longest)
			longest = load[j];
	free(load);
	free(sizes);
	return longest <= WHOLE_TABLES_SLACK * ((double) total / workers);
}

/* Plans the ranges of one table, under the snapshot; whole: in one range */
static int
plan_table(FullSync *fs, PGconn *src, int table, bool whole, DtsError *err)
{
	const DtsSyncTable *t = &fs->tables[table];
	int64_t		n = 1;
	int			i;

	if (!whole && fs->opts->range_bytes > 0 &&
		t->size_bytes > fs->opts->range_bytes)
		n = (t->size_bytes + fs->opts->range_bytes - 1) / fs->opts->range_bytes;
	if (n > fs->opts->max_ranges)
		n = fs->opts->max_ranges > 0 ? fs->opts->max_ranges : 1;
	if (n > 1 && t->max_blocks < n && t->int_key == NULL)
		n = t->max_blocks > 1 ? t->max_blocks : 1;

	if (n > 1 && t->int_key)
	{
		DtsBuf		sql = {0};
		PGresult   *res;

		dts_buf_printf(&sql, "SELECT pg_catalog.min(");
		dts_buf_ident(&sql, t->int_key);
		dts_buf_printf(&sql, ")::int8, pg_catalog.max(");
		dts_buf_ident(&sql, t->int_key);
		dts_buf_printf(&sql, ")::int8");
		append_source_table(&sql, t);
		res = dts_sync_exec(src, dts_buf_str(&sql),
							"could not read the key range of a source table",
							err);
		dts_buf_free(&sql);
		if (res == NULL)
			return -1;
		if (!PQgetisnull(res, 0, 0))
			plan_key_ranges(fs, table, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
							strtoll(PQgetvalue(res, 0, 1), NULL, 10), (int) n);
		else
			add_range(fs, table, 0, 1, RANGE_ALL);
		PQclear(res);
		return 0;
	}
	if (n <= 1)
	{
		add_range(fs, table, 0, 1, RANGE_ALL);
		return 0;
	}
	for (i = 0; i < n; i++)
	{
		int64_t		per = (t->max_blocks + n - 1) / n;
		CopyRange  *r = add_range(fs, table, i, (int) n, RANGE_CTID);

		r->has_from = i > 0;
		r->from = per * i;
		r->has_to = i < n - 1;
		r->to = per * (i + 1);
	}
	return 0;
}

/* Appends the INSERT of one planned range's progress row */
static void
append_progress_insert(FullSync *fs, DtsBuf *sql, const CopyRange *r)
{
	const DtsSyncTable *t = &fs->tables[r->table];

	dts_buf_printf(sql, "INSERT INTO dts.full_sync_progress (task, schema, "
				   "\"table\", range_no, ranges_total, range_kind, range_from, "
				   "range_to) VALUES (");
	dts_buf_literal(sql, fs->task->name);
	dts_buf_printf(sql, ", ");
	dts_buf_literal(sql, t->src_schema);
	dts_buf_printf(sql, ", ");
	dts_buf_literal(sql, t->src_table);
	dts_buf_printf(sql, ", %d, %d, '%s', ", r->range_no, r->ranges_total,
				   range_kind_names[r->kind]);
	if (r->has_from)
		dts_buf_printf(sql, "%" PRId64 ", ", r->from);
	else
		dts_buf_printf(sql, "NULL, ");
	if (r->has_to)
		dts_buf_printf(sql, "%" PRId64 ");\n", r->to);
	else
		dts_buf_printf(sql, "NULL);\n");
}

#define PROGRESS_SQL \
	"SELECT schema, \"table\", range_no, ranges_total, range_kind, " \
	" range_from, range_to, done, snapshot, snapshot_lsn, " \
	" pg_catalog.min(snapshot_lsn) FILTER (WHERE done) OVER () " \
	"FROM dts.full_sync_progress WHERE task = $1 " \
	"ORDER BY schema, \"table\", range_no"

/* Finds the table a progress row belongs to, -1 if none (no longer selected) */
static int
find_table(FullSync *fs, const char *schema, const char *table)
{
	int			i;

	for (i = 0; i < fs->ntables; i++)
		if (strcmp(fs->tables[i].src_schema, schema) == 0 &&
			strcmp(fs->tables[i].src_table, table) == 0)
			return i;
	return -1;
}

/*
 * Reads the plan an earlier call recorded: fills fs->ranges with the
 * recorded ranges and sets planned[table].  *other_snapshot is set when a
 * done range was copied under another snapshot than ours.
 */
static int
load_plan(FullSync *fs, PGconn *dst, bool *planned, bool *other_snapshot,
		  char *oldest_lsn, DtsError *err)
{
	const char *params[1] = {fs->task->name};
	PGresult   *res;
	int			i;

	res = dts_sync_exec_params(dst, PROGRESS_SQL, 1, params,
							   "could not read dts.full_sync_progress on the "
							   "destination", err);
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
	{
		int			table = find_table(fs, PQgetvalue(res, i, 0),
									   PQgetvalue(res, i, 1));
		const char *kind = PQgetvalue(res, i, 4);
		CopyRange  *r;

		if (table < 0)
			continue;
		r = add_range(fs, table, atoi(PQgetvalue(res, i, 2)),
					  atoi(PQgetvalue(res, i, 3)),
					  strcmp(kind, "key") == 0 ? RANGE_KEY :
					  strcmp(kind, "ctid") == 0 ? RANGE_CTID : RANGE_ALL);
		r->has_from = !PQgetisnull(res, i, 5);
		r->from = strtoll(PQgetvalue(res, i, 5), NULL, 10);
		r->has_to = !PQgetisnull(res, i, 6);
		r->to = strtoll(PQgetvalue(res, i, 6), NULL, 10);
		r->done = PQgetvalue(res, i, 7)[0] == 't';
		if (r->done && strcmp(PQgetvalue(res, i, 8), fs->snapshot) != 0)
			*other_snapshot = true;
		if (!PQgetisnull(res, i, 10))
			snprintf(oldest_lsn, DTS_LSN_BUFSIZE, "%s", PQgetvalue(res, i, 10));
		planned[table] = true;
	}
	PQclear(res);
	return 0;
}

/*
 * A table copied in block ranges, partly under another snapshot, is
 * copied again whole: its rows are emptied and its ranges reset, in the
 * caller's transaction.  (Key ranges stay valid: see the file header.)
 */
static void
reset_block_ranges(FullSync *fs, DtsBuf *sql, int table)
{
	const DtsSyncTable *t = &fs->tables[table];
	int			i;
	bool		partial = false;

	for (i = 0; i < fs->nranges; i++)
		if (fs->ranges[i].table == table && fs->ranges[i].kind == RANGE_CTID &&
			fs->ranges[i].done)
			partial = true;
	for (i = 0; partial && i < fs->nranges; i++)
		if (fs->ranges[i].table == table && !fs->ranges[i].done)
			break;
	if (!partial || i == fs->nranges)
		return;					/* nothing done, or everything */
	for (i = 0; i < fs->nranges; i++)
		if (fs->ranges[i].table == table)
			fs->ranges[i].done = false;
	dts_log_info("full sync: %s.%s was copied in part under another snapshot "
				 "by block ranges; copying it again whole",
				 t->src_schema, t->src_table);
	if (!fs->stage[table])
	{
		dts_buf_printf(sql, "TRUNCATE %s", t->relkind == 'p' ? "" : "ONLY ");
		dts_buf_qualified(sql, t->dst_schema, t->dst_table);
		dts_buf_printf(sql, ";\n");
	}
	dts_buf_printf(sql, "UPDATE dts.full_sync_progress SET done = false "
				   "WHERE task = ");
	dts_buf_literal(sql, fs->task->name);
	dts_buf_printf(sql, " AND schema = ");
	dts_buf_literal(sql, t->src_schema);
	dts_buf_printf(sql, " AND \"table\" = ");
	dts_buf_literal(sql, t->src_table);
	dts_buf_printf(sql, ";\n");
}

/*
 * Is the task's slot the one the done ranges' changes are in?  It must
 * exist and not be newer than the oldest done range's snapshot: a slot
 * created again under the same name has lost the changes in between.
 */
#define SLOT_SQL \
	"SELECT confirmed_flush_lsn <= $2::pg_catalog.pg_lsn " \
	"FROM pg_catalog.pg_replication_slots WHERE slot_name = $1"

static int
check_slot(FullSync *fs, PGconn *src, const char *oldest_lsn, DtsError *err)
{
	const char *params[2] = {fs->task->slot ? fs->task->slot : "", oldest_lsn};
	PGresult   *res = dts_sync_exec_params(src, SLOT_SQL, 2, params,
										   "could not look up the task's slot",
										   err);
	bool		found;

	if (res == NULL)
		return -1;
	found = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (found)
		return 0;
	dts_error_set(err, DTS_ERROR_FATAL,
				  "the full sync of task \"%s\" was interrupted and its "
				  "replication slot \"%s\" is gone or newer than the copied "
				  "ranges (LSN %s): they cannot be brought up to date",
				  fs->task->name, params[0], oldest_lsn);
	dts_error_hint(err, "Delete the task's rows from dts.full_sync_progress "
				   "and empty its tables on the destination, then start the "
				   "task over.");
	return -1;
}

/*
 * The tables that go through a staging table: with "conflicting_tables":
 * "ignore", those the schema sync kept, or, when no schema sync ran, those
 * that already hold rows.
 */
static int
mark_staged(FullSync *fs, PGconn *dst, DtsError *err)
{
	const char *params[1] = {fs->task->name};
	PGresult   *res;
	bool		ignore;
	bool		have_schema_sync;
	int			i;

	if (dts_sync_conflicting_tables(fs->task, &ignore, err) < 0)
		return -1;
	if (!ignore)
		return 0;
	res = dts_sync_exec_params(dst,
							   "SELECT pg_catalog.unnest(kept_tables) FROM "
							   "dts.schema_sync_state WHERE task = $1 AND "
							   "section = 'pre-data'", 1, params,
							   "could not read dts.schema_sync_state", err);
	if (res == NULL)
		return -1;
	have_schema_sync = PQntuples(res) > 0;
	for (i = 0; i < fs->ntables; i++)
	{
		DtsSyncTable *t = &fs->tables[i];
		DtsBuf		name = {0};
		char		shown[300];
		int			j;

		dts_sync_display_name(t->dst_schema, t->dst_table, shown,
							  sizeof(shown));
		for (j = 0; j < PQntuples(res); j++)
			if (strcmp(PQgetvalue(res, j, 0), shown) == 0)
				fs->stage[i] = true;
		if (!have_schema_sync)
		{
			PGresult   *r2;

			dts_buf_reset(&name);
			dts_buf_printf(&name, "SELECT 1 FROM ");
			dts_buf_qualified(&name, t->dst_schema, t->dst_table);
			dts_buf_printf(&name, " LIMIT 1");
			r2 = dts_sync_exec(dst, dts_buf_str(&name),
							   "could not read a destination table", err);
			if (r2 == NULL)
			{
				dts_buf_free(&name);
				PQclear(res);
				return -1;
			}
			fs->stage[i] = PQntuples(r2) > 0;
			PQclear(r2);
		}
		dts_buf_free(&name);
	}
	PQclear(res);
	return 0;
}

/*
 * The tables a whole-table copy may fill with COPY ... FREEZE: those this
 * task's pre-data created.  The pre-data restore and its row in
 * dts.schema_sync_state commit in one transaction, so such a table's
 * pg_class row still has that row's xmin (a table that existed before,
 * one the user created later, or one altered since has another).  Also an
 * ordinary table (not partitioned, not foreign), not staged, and with no
 * foreign key of another table pointing at it (TRUNCATE would refuse).
 *
 * The copy of such a table runs "TRUNCATE ONLY t; COPY t FROM STDIN
 * (FREEZE)" in one transaction: the table gets a new relfilenode in that
 * transaction, which is what lets COPY write its rows frozen and its pages
 * all-visible, so that the post-data index builds and every later read
 * do not set hint bits and write the whole heap again (bench/fullsync).
 * The TRUNCATE empties nothing of ours: a whole-table range not done has
 * no committed rows.  DtsFullSyncOptions.freeze false (the task's
 * "parallel": {"freeze": false}, or PG_DTS_FULL_SYNC_NO_FREEZE, pgtask.c)
 * turns this off: every table then gets a plain COPY, which takes no lock
 * that keeps readers out, and its rows are not frozen.
 */
#define FREEZE_SQL_HEAD \
	"SELECT u.n FROM (VALUES "
#define FREEZE_SQL_TAIL \
	") AS u(n, name) " \
	"JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.name) " \
	"JOIN dts.schema_sync_state s ON s.task = $1 AND s.section = 'pre-data' " \
	"WHERE c.relkind = 'r' AND c.xmin = s.xmin AND NOT EXISTS (" \
	"SELECT 1 FROM pg_catalog.pg_constraint f WHERE f.confrelid = c.oid " \
	"AND f.conrelid <> c.oid AND f.contype = 'f')"

/*
 * A logical slot in the destination database means some task may decode
 * what the full sync writes there: the reverse task of a two-way sync, for
 * one.  The copy carries a replication origin (see setup_copy_origin()),
 * which our reverse task skips, but another consumer of that slot may not,
 * and the TRUNCATE of the FREEZE path would empty the table at the other
 * end.  So with such a slot there is no TRUNCATE and no FREEZE, and the
 * copy must have its origins.  Sets fs->dst_slot to the slot's name, or ""
 * when there is none; returns 0, or -1 on error (err set).
 */
#define DECODED_SLOT_SQL \
	"SELECT slot_name FROM pg_catalog.pg_replication_slots " \
	"WHERE slot_type = 'logical' " \
	"AND database = pg_catalog.current_database() LIMIT 1"

static int
find_decoded_slot(FullSync *fs, PGconn *dst, DtsError *err)
{
	PGresult   *res = dts_sync_exec(dst, DECODED_SLOT_SQL,
									"could not look up the logical slots of "
									"the destination database", err);

	if (res == NULL)
		return -1;
	snprintf(fs->dst_slot, sizeof(fs->dst_slot), "%s",
			 PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}

static int
mark_freeze(FullSync *fs, PGconn *dst, DtsError *err)
{
	const char *params[1] = {fs->task->name};
	DtsBuf		sql = {0};
	DtsBuf		name = {0};
	PGresult   *res;
	int			i,
				n = 0;

	if (!fs->opts->freeze)
		return 0;
	if (fs->dst_slot[0])
	{
		dts_log_info("full sync: the destination database has the logical "
					 "replication slot \"%s\", so tables are copied without "
					 "TRUNCATE and FREEZE (a task decoding that slot, such as "
					 "the reverse task of a two-way sync, must not receive a "
					 "TRUNCATE)", fs->dst_slot);
		return 0;
	}
	dts_buf_printf(&sql, FREEZE_SQL_HEAD);
	for (i = 0; i < fs->ntables; i++)
	{
		if (fs->stage[i])
			continue;
		dts_buf_reset(&name);
		dts_buf_qualified(&name, fs->tables[i].dst_schema,
						  fs->tables[i].dst_table);
		dts_buf_printf(&sql, "%s(%d, ", n++ > 0 ? ", " : "", i);
		dts_buf_literal(&sql, dts_buf_str(&name));
		dts_buf_printf(&sql, ")");
	}
	dts_buf_printf(&sql, FREEZE_SQL_TAIL);
	dts_buf_free(&name);
	if (n == 0)
	{
		dts_buf_free(&sql);
		return 0;
	}
	res = dts_sync_exec_params(dst, dts_buf_str(&sql), 1, params,
							   "could not look up which destination tables "
							   "this task's schema sync created", err);
	dts_buf_free(&sql);
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
	{
		int			t = atoi(PQgetvalue(res, i, 0));

		if (t >= 0 && t < fs->ntables)
			fs->freeze[t] = true;
	}
	PQclear(res);
	return 0;
}

/* Is range r a whole-table copy into a table we may TRUNCATE and FREEZE? */
static bool
range_freezes(const FullSync *fs, const CopyRange *r)
{
	return fs->freeze[r->table] && !fs->stage[r->table] &&
		r->kind == RANGE_ALL && r->ranges_total == 1;
}

/*
 * A queue entry with its sort key: the first range of every table (bigger
 * tables first), then every table's second range, and so on.  Workers so
 * fill different tables at the same time: COPYs into one table contend for
 * its relation extension lock and free space map (bench/fullsync/profile.sh,
 * 4 equal tables: 6.3 s with the workers on one table at a time, 5.9 s
 * interleaved).
 */
typedef struct QueueEntry
{
	int64_t		size;
	int			table;
	int			range_no;
	int			index;
} QueueEntry;

static int
compare_entries(const void *a, const void *b)
{
	const QueueEntry *ea = a;
	const QueueEntry *eb = b;

	if (ea->range_no != eb->range_no)
		return ea->range_no - eb->range_no;
	if (ea->size != eb->size)
		return ea->size > eb->size ? -1 : 1;
	if (ea->table != eb->table)
		return ea->table - eb->table;
	return ea->range_no - eb->range_no;
}

/* Fills the queue with the ranges not done, in copy order */
static void
fill_queue(FullSync *fs)
{
	QueueEntry *e = calloc(fs->nranges + 1, sizeof(QueueEntry));
	int			i,
				n = 0;

	fs->queue = calloc(fs->nranges + 1, sizeof(int));
	fs->left = calloc(fs->ntables + 1, sizeof(int));
	if (e == NULL || fs->queue == NULL || fs->left == NULL)
		abort();
	for (i = 0; i < fs->nranges; i++)
	{
		const CopyRange *r = &fs->ranges[i];

		fs->est_total += r->est_bytes;
		if (r->done)
			continue;
		e[n].size = fs->tables[r->table].size_bytes;
		e[n].table = r->table;
		e[n].range_no = r->range_no;
		e[n++].index = i;
		fs->left[r->table]++;
	}
	qsort(e, n, sizeof(QueueEntry), compare_entries);
	for (i = 0; i < n; i++)
		fs->queue[i] = e[i].index;
	fs->nqueue = n;
	for (i = 0; i < fs->ntables; i++)
		if (fs->left[i] == 0)
			fs->tables_done++;
	free(e);
}

/* Is any selected table unplanned, or any planned range not done? */
static bool
plan_has_work(const FullSync *fs, const bool *planned)
{
	for (int i = 0; i < fs->ntables; i++)
		if (!planned[i])
			return true;
	for (int i = 0; i < fs->nranges; i++)
		if (!fs->ranges[i].done)
			return true;
	return false;
}

/*
 * Reads or makes the plan, records it, and fills the queue.  src is the
 * coordinator's connection (in the snapshot), dst the coordinator's
 * destination connection.
 */
static int
make_plan(FullSync *fs, PGconn *src, PGconn *dst, DtsError *err)
{
	bool	   *planned = calloc(fs->ntables + 1, sizeof(bool));
	bool		other_snapshot = false;
	bool		whole;
	char		oldest_lsn[DTS_LSN_BUFSIZE] = "0/0";
	DtsBuf		sql = {0};
	int			i,
				rc = -1;

	if (planned == NULL)
		abort();
	if (dts_sync_ensure_dts_tables(dst, err) < 0 ||
		mark_staged(fs, dst, err) < 0 ||
		find_decoded_slot(fs, dst, err) < 0 ||
		mark_freeze(fs, dst, err) < 0 ||
		load_plan(fs, dst, planned, &other_snapshot, oldest_lsn, err) < 0)
		goto cleanup;
	/*
	 * Ranges done under another snapshot are only safe to complete while
	 * the original slot can still replay what happened in between; once
	 * everything is copied (a restart of a task that is streaming) there
	 * is nothing to complete and the slot has rightly moved on.
	 */
	if (other_snapshot && plan_has_work(fs, planned) &&
		check_slot(fs, src, oldest_lsn, err) < 0)
		goto cleanup;
	whole = whole_tables_balance(fs);
	dts_buf_printf(&sql, "BEGIN;\n");
	for (i = 0; i < fs->ntables; i++)
	{
		int			first = fs->nranges,
					j;

		if (planned[i])
		{
			if (other_snapshot)
				reset_block_ranges(fs, &sql, i);
			continue;
		}
		if (plan_table(fs, src, i, whole, err) < 0)
			goto cleanup;
		for (j = first; j < fs->nranges; j++)
			append_progress_insert(fs, &sql, &fs->ranges[j]);
	}
	dts_buf_printf(&sql, "COMMIT");
	if (dts_sync_run(dst, dts_buf_str(&sql),
					 "could not record the full sync's plan in "
					 "dts.full_sync_progress", err) < 0)
		goto cleanup;

	fill_queue(fs);
	rc = 0;

cleanup:
	dts_buf_free(&sql);
	free(planned);
	return rc;
}

/* ----------------------------------------------------------------
 *		Replication origins of the copy
 * ----------------------------------------------------------------
 */

/*
 * What a worker writes into the destination carries a replication origin,
 * as the incremental apply's transactions do (docs/pg-sink.md, "Loop
 * prevention"): a task decoding the destination database, such as the
 * reverse task of a two-way sync (plugin option origin=none), then skips
 * the copied rows instead of sending them back to the source.  PostgreSQL
 * 15 lets one session at a time use an origin, so each worker has its
 * own, dts_<task>.copy<n>, created when missing and dropped when the
 * full sync is done.  Each origin in use takes one of the destination's
 * max_replication_slots replication states.
 *
 * A role that may not use origins (not superuser, no grant) or a
 * destination without a free replication state copies without one, with
 * a warning, unless the destination database has a logical slot: then
 * that slot's consumers would receive the rows, and it is an error.
 */
#define COPY_ORIGIN_FMT		"dts_%s.copy%d"	/* "." is in no task name */
#define COPY_ORIGIN_NAME_MAX	64	/* a task name has at most 40 bytes */

static void
copy_origin_name(const FullSync *fs, int no, char *out, size_t len)
{
	snprintf(out, len, COPY_ORIGIN_FMT, fs->task->name, no);
}

static int
setup_copy_origin(Worker *w, DtsError *err)
{
	FullSync   *fs = w->fs;
	char		name[COPY_ORIGIN_NAME_MAX];
	char		what[COPY_ORIGIN_NAME_MAX + 64];
	const char *params[1] = {name};
	PGresult   *res;
	DtsError	why = {0};

	copy_origin_name(fs, w->no, name, sizeof(name));
	snprintf(what, sizeof(what), "could not set up the replication origin "
			 "\"%s\" for the copy", name);
	res = dts_sync_exec_params(w->dst, DTS_ORIGIN_CREATE_SQL, 1, params,
							   what, &why);
	if (res != NULL)
	{
		PQclear(res);
		res = dts_sync_exec_params(w->dst, DTS_ORIGIN_SESSION_SETUP_SQL, 1,
								   params, what, &why);
	}
	if (res != NULL)
	{
		PQclear(res);
		return 0;
	}
	if (why.cls == DTS_ERROR_CONNECT)
	{
		*err = why;
		return -1;
	}
	if (fs->dst_slot[0])
	{
		dts_error_set(err, DTS_ERROR_FATAL,
					  "full sync of task \"%s\": %s; the destination "
					  "database has the logical replication slot \"%s\", "
					  "whose consumers would receive the copied rows",
					  fs->task->name, why.msg, fs->dst_slot);
		dts_error_hint(err, "Let the destination role use replication origins (superuser, or GRANT EXECUTE on pg_replication_origin_create(text) and pg_replication_origin_session_setup(text)); if no replication state is free, raise max_replication_slots on the destination (each full sync worker uses one) or lower parallel.full_sync_workers.");
		return -1;
	}
	pthread_mutex_lock(&fs->lock);
	if (!fs->origin_warned)
	{
		fs->origin_warned = true;
		dts_log_warning("full sync of task \"%s\": copying without a "
						"replication origin: %s", fs->task->name, why.msg);
		dts_log_hint("A task that decodes the destination database later "
					 "(the reverse task of a two-way sync) would receive the "
					 "copied rows if its slot existed during the copy; let "
					 "the role use replication origins to avoid that.");
	}
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

/*
 * Releases the worker's origin (pg_replication_origin_session_reset), so
 * that the coordinator can drop it at once; the session ending would also
 * release it, but only when the backend has exited.
 */
static void
reset_copy_origin(Worker *w)
{
	PGresult   *res;

	if (w->dst == NULL || PQstatus(w->dst) != CONNECTION_OK)
		return;
	res = PQexec(w->dst, "SELECT pg_catalog.pg_replication_origin_session_reset() "
				 "WHERE pg_catalog.pg_replication_origin_session_is_setup()");
	PQclear(res);
}

/*
 * Drops the origins of every worker a full sync of this task may have used
 * (1..DTS_FULL_SYNC_WORKERS_MAX), once it is done.  One that another
 * session uses is left in place (with a note): it is not ours to take.
 */
#define COPY_ORIGINS_SQL \
	"SELECT roname FROM pg_catalog.pg_replication_origin " \
	"WHERE roname = ANY ($1::pg_catalog.text[]) ORDER BY roname"

static int
drop_copy_origins(FullSync *fs, PGconn *dst, DtsError *err)
{
	DtsBuf		names = {0};
	char		name[COPY_ORIGIN_NAME_MAX];
	const char *params[1];
	PGresult   *res;
	int			rc = 0;

	dts_buf_printf(&names, "{");
	for (int no = 1; no <= DTS_FULL_SYNC_WORKERS_MAX; no++)
	{
		copy_origin_name(fs, no, name, sizeof(name));
		/* no quoting needed: task names are letters, digits and "_" */
		dts_buf_printf(&names, "%s%s", no > 1 ? "," : "", name);
	}
	dts_buf_printf(&names, "}");
	params[0] = dts_buf_str(&names);
	res = dts_sync_exec_params(dst, COPY_ORIGINS_SQL, 1, params,
							   "could not look up the replication origins "
							   "of the copy", err);
	dts_buf_free(&names);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
	{
		const char *origin = PQgetvalue(res, i, 0);
		PGresult   *d = PQexecParams(dst,
									 "SELECT pg_catalog.pg_replication_origin_drop($1)",
									 1, NULL, &origin, NULL, NULL, 0);
		const char *state = PQresultErrorField(d, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(d, PG_DIAG_MESSAGE_PRIMARY);

		if (PQresultStatus(d) != PGRES_TUPLES_OK)
		{
			if (state && strcmp(state, DTS_SQLSTATE_OBJECT_IN_USE) == 0)
				dts_log_info("full sync of task \"%s\": the replication "
							 "origin \"%s\" stays: %s", fs->task->name,
							 origin, msg);
			else
				rc = dts_error_set(err, PQstatus(dst) == CONNECTION_OK ?
								   DTS_ERROR_OTHER : DTS_ERROR_CONNECT,
								   "could not drop the replication origin "
								   "\"%s\" of the copy: %s", origin,
								   msg ? msg : PQerrorMessage(dst));
		}
		PQclear(d);
	}
	PQclear(res);
	return rc;
}

/* ----------------------------------------------------------------
 *		Workers
 * ----------------------------------------------------------------
 */

/*
 * Adds the worker's counts to the totals and sleeps as long as the totals
 * run ahead of the task's rows/s and MB/s.
 */
static void
account(Worker *w)
{
	FullSync   *fs = w->fs;
	double		rows_s = fs->task->max_rows_per_s;
	double		mb_s = fs->task->max_mb_per_s;
	int64_t		rows,
				bytes,
				due_us = 0;

	pthread_mutex_lock(&fs->lock);
	fs->rows += w->acc_rows;
	fs->bytes += w->acc_bytes;
	rows = fs->rows;
	bytes = fs->bytes;
	pthread_mutex_unlock(&fs->lock);
	w->acc_rows = w->acc_bytes = 0;

	if (rows_s > 0)
		due_us = (int64_t) (rows / rows_s * 1e6);
	if (mb_s > 0 && (int64_t) (bytes / (mb_s * 1048576.0) * 1e6) > due_us)
		due_us = (int64_t) (bytes / (mb_s * 1048576.0) * 1e6);
	while (due_us > 0 && !stop_requested(fs))
	{
		int64_t		ahead = fs->start_us + due_us - dts_now_us();

		if (ahead <= 0)
			break;
		sleep_us(ahead > 200000 ? 200000 : ahead);
	}
}

/* Whether range r's rows come through dts.copy_rows() */
static bool
range_chunked(const FullSync *fs, const CopyRange *r)
{
	return fs->chunked && fs->tables[r->table].binary_ok;
}

/*
 * Builds the source's COPY TO of range r: of the query itself, or of
 * dts.copy_rows() given the query as a literal (range_chunked()).
 */
static void
source_copy_sql(DtsBuf *sql, const FullSync *fs, const CopyRange *r)
{
	const DtsSyncTable *t = &fs->tables[r->table];
	DtsBuf		query = {0};

	dts_buf_printf(&query, "SELECT ");
	append_columns(&query, t, false);
	append_source_table(&query, t);
	append_where(&query, t, r);
	if (range_chunked(fs, r))
	{
		dts_buf_printf(sql, "COPY (SELECT dts.copy_rows(");
		dts_buf_literal(sql, dts_buf_str(&query));
		dts_buf_printf(sql, ")) TO STDOUT (FORMAT binary)");
	}
	else
		dts_buf_printf(sql, "COPY (%s) TO STDOUT (FORMAT %s)",
					   dts_buf_str(&query), t->binary_ok ? "binary" : "text");
	dts_buf_free(&query);
}

/*
 * Builds the destination's statements before the COPY FROM: the staging
 * table when the table is staged.  Then the COPY FROM itself.
 */
static void
dest_copy_sql(DtsBuf *sql, const DtsSyncTable *t, bool stage, bool freeze)
{
	dts_buf_printf(sql, "COPY ");
	if (stage)
		dts_buf_printf(sql, "pg_temp.dts_stage");
	else
		dts_buf_qualified(sql, t->dst_schema, t->dst_table);
	dts_buf_printf(sql, " (");
	append_columns(sql, t, true);
	dts_buf_printf(sql, ") FROM STDIN (FORMAT %s%s)",
				   t->binary_ok ? "binary" : "text", freeze ? ", FREEZE" : "");
}

/* Expects the copy state st from sql on conn */
static int
start_copy(PGconn *conn, const char *sql, ExecStatusType st,
		   const char *what, DtsError *err)
{
	PGresult   *res = PQexec(conn, sql);
	const char *m;

	if (PQresultStatus(res) == st)
	{
		PQclear(res);
		return 0;
	}
	m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	dts_error_set(err, PQstatus(conn) == CONNECTION_OK ? DTS_ERROR_OTHER :
				  DTS_ERROR_CONNECT, "%s: %s", what,
				  m ? m : PQerrorMessage(conn));
	PQclear(res);
	return -1;
}

/* The final result of a COPY on conn; returns its row count or -1 */
static int64_t
finish_copy(PGconn *conn, const char *what, DtsError *err)
{
	PGresult   *res;
	int64_t		rows = -1;

	while ((res = PQgetResult(conn)) != NULL)
	{
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			rows = strtoll(PQcmdTuples(res), NULL, 10);
		else if (err->cls == DTS_ERROR_NONE)
		{
			const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			const char *c = PQresultErrorField(res, PG_DIAG_CONTEXT);

			/* the context's first line says where: "COPY t, line 1000" */
			dts_error_set(err, PQstatus(conn) == CONNECTION_OK ?
						  DTS_ERROR_OTHER : DTS_ERROR_CONNECT, "%s: %s%s%.*s%s",
						  what, m ? m : PQerrorMessage(conn),
						  c ? " (" : "", c ? (int) strcspn(c, "\n") : 0,
						  c ? c : "", c ? ")" : "");
		}
		PQclear(res);
	}
	return err->cls == DTS_ERROR_NONE ? rows : -1;
}

/*
 * Whether the destination has ended this worker's COPY, which only an
 * error does (a constraint, a type's input function, a lock timeout...).
 * The server sends the error at once and then skips the CopyData that
 * follows, but libpq reads the error only after CopyDone: without this
 * check the worker would read the whole range from the source (a whole
 * table, maybe hundreds of GB) before it could say what went wrong.
 * The coordinator's idle destination session looks the worker's backend
 * up in pg_stat_activity: a COPY that runs is 'active', a failed one is
 * idle in its aborted transaction.  A state we cannot see (with
 * track_activities off) says nothing.
 */
static bool
dest_copy_ended(Worker *w)
{
	FullSync   *fs = w->fs;
	char		pid[16];
	const char *params[1] = {pid};
	PGresult   *res;
	bool		ended = false;

	if (fs->monitor == NULL)
		return false;
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(w->dst));
	pthread_mutex_lock(&fs->monitor_lock);
	res = PQexecParams(fs->monitor,
					   "SELECT state FROM pg_catalog.pg_stat_activity "
					   "WHERE pid = $1::int4",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		!PQgetisnull(res, 0, 0))
		ended = strncmp(PQgetvalue(res, 0, 0), "idle", 4) == 0;
	PQclear(res);
	pthread_mutex_unlock(&fs->monitor_lock);
	return ended;
}

/*
 * The relay's progress callback: adds what moved to the worker's counters,
 * throttles, and stops the relay when the sync is stopping or failed, or
 * when the destination has ended the COPY (every COPY_CHECK_BYTES moved,
 * and every second while the relay waits).
 */
static int
relay_progress(void *arg, int64_t rows, int64_t bytes, DtsError *err)
{
	Worker	   *w = arg;
	int64_t		now = dts_now_us();

	w->acc_rows += rows;
	w->acc_bytes += bytes;
	w->range_bytes += bytes;
	w->range_rows += rows;
	if (stop_requested(w->fs) || failed(w->fs))
		return dts_error_set(err, DTS_ERROR_OTHER, "%s: stopped",
							 w->what);
	if (w->range_bytes - w->checked_bytes >= COPY_CHECK_BYTES ||
		now - w->checked_us >= COPY_CHECK_IDLE_US)
	{
		w->checked_bytes = w->range_bytes;
		w->checked_us = now;
		if (dest_copy_ended(w))
		{
			w->dst_ended = true;
			return dts_error_set(err, DTS_ERROR_OTHER,
								 "%s: the destination ended the COPY",
								 w->what);
		}
	}
	if (w->acc_bytes >= ACCOUNT_BYTES)
		account(w);
	return 0;
}

/*
 * After dest_copy_ended(): ends the COPY and takes the destination's own
 * error in place of ours.  The source's COPY is left unread; the worker
 * closes that session.
 */
static int
dest_copy_error(Worker *w, DtsError *err)
{
	DtsError	dest_err = {0};

	if (PQputCopyEnd(w->dst, "pg_dts_ship: the COPY had already failed") == 1)
		(void) finish_copy(w->dst, w->what, &dest_err);
	dts_log_info("%s: the destination failed the COPY; stopped reading the "
				 "range from the source after %" PRId64 " rows (%.1f MB)",
				 w->what, w->range_rows, w->range_bytes / 1048576.0);
	if (dest_err.cls != DTS_ERROR_NONE)
	{
		dts_error_hint(&dest_err, "The destination rolled this range back "
					   "(its server log has the details).  Fix the cause and "
					   "run the task again: ranges already copied are kept.");
		*err = dest_err;
	}
	return -1;
}

/* The progress row's UPDATE and the transaction's end */
static void
done_sql(DtsBuf *sql, FullSync *fs, const CopyRange *r, int64_t rows,
		 int64_t bytes)
{
	const DtsSyncTable *t = &fs->tables[r->table];

	dts_buf_printf(sql, "UPDATE dts.full_sync_progress SET done = true, "
				   "rows = %" PRId64 ", bytes = %" PRId64 ", snapshot = ",
				   rows, bytes);
	dts_buf_literal(sql, fs->snapshot);
	dts_buf_printf(sql, ", snapshot_lsn = '%s', finished_at = now() "
				   "WHERE task = ", fs->snapshot_lsn);
	dts_buf_literal(sql, fs->task->name);
	dts_buf_printf(sql, " AND schema = ");
	dts_buf_literal(sql, t->src_schema);
	dts_buf_printf(sql, " AND \"table\" = ");
	dts_buf_literal(sql, t->src_table);
	dts_buf_printf(sql, " AND range_no = %d; COMMIT", r->range_no);
}

/* Copies one range in one destination transaction */
static int
copy_range(Worker *w, const CopyRange *r, DtsError *err)
{
	FullSync   *fs = w->fs;
	const DtsSyncTable *t = &fs->tables[r->table];
	bool		stage = fs->stage[r->table];
	bool		freeze = range_freezes(fs, r);
	bool		table_done;
	char		what[400];
	char		shown[300];
	int64_t		rows;

	snprintf(what, sizeof(what), "could not copy range %d/%d of %s",
			 r->range_no + 1, r->ranges_total,
			 dts_sync_display_name(t->src_schema, t->src_table, shown,
								   sizeof(shown)));
	dts_buf_reset(&w->sql);
	dts_buf_printf(&w->sql, "BEGIN");
	if (stage)
	{
		dts_buf_printf(&w->sql, "; CREATE TEMP TABLE dts_stage ON COMMIT DROP "
					   "AS SELECT ");
		append_columns(&w->sql, t, true);
		dts_buf_printf(&w->sql, " FROM ");
		dts_buf_qualified(&w->sql, t->dst_schema, t->dst_table);
		dts_buf_printf(&w->sql, " WITH NO DATA");
	}
	else if (freeze)
	{
		/* a new relfilenode in this transaction: COPY may FREEZE */
		dts_buf_printf(&w->sql, "; TRUNCATE ONLY ");
		dts_buf_qualified(&w->sql, t->dst_schema, t->dst_table);
	}
	if (dts_sync_run(w->dst, dts_buf_str(&w->sql), what, err) < 0)
		return -1;
	w->range_bytes = w->range_rows = w->checked_bytes = 0;
	w->checked_us = dts_now_us();
	w->dst_ended = false;

	dts_buf_reset(&w->sql);
	dest_copy_sql(&w->sql, t, stage, freeze);
	if (start_copy(w->dst, dts_buf_str(&w->sql), PGRES_COPY_IN, what, err) < 0)
		return -1;
	dts_buf_reset(&w->sql);
	source_copy_sql(&w->sql, fs, r);
	if (start_copy(w->src, dts_buf_str(&w->sql), PGRES_COPY_OUT, what,
				   err) < 0)
		return -1;

	w->what = what;
	w->relay.chunked = range_chunked(fs, r);
	if (dts_copy_relay_run(&w->relay, w->src, w->dst, what, err) < 0)
		return w->dst_ended ? dest_copy_error(w, err) : -1;
	/* a chunked COPY's count is of chunks; the relay counted the rows */
	rows = finish_copy(w->src, what, err);
	if (rows < 0)
		return -1;
	if (w->relay.chunked)
		rows = w->relay.rows_total;
	if (PQputCopyEnd(w->dst, NULL) != 1 || finish_copy(w->dst, what, err) < 0)
		return err->cls != DTS_ERROR_NONE ? -1 :
			dts_error_set(err, DTS_ERROR_CONNECT, "%s: %s", what,
						  PQerrorMessage(w->dst));

	dts_buf_reset(&w->sql);
	if (stage)
	{
		dts_buf_printf(&w->sql, "INSERT INTO ");
		dts_buf_qualified(&w->sql, t->dst_schema, t->dst_table);
		dts_buf_printf(&w->sql, " (");
		append_columns(&w->sql, t, true);
		dts_buf_printf(&w->sql, ") SELECT ");
		append_columns(&w->sql, t, true);
		dts_buf_printf(&w->sql, " FROM pg_temp.dts_stage ON CONFLICT DO "
					   "NOTHING; ");
	}
	done_sql(&w->sql, fs, r, rows, w->range_bytes);
	if (dts_sync_run(w->dst, dts_buf_str(&w->sql), what, err) < 0)
		return -1;
	account(w);

	pthread_mutex_lock(&fs->lock);
	fs->ranges_done++;
	fs->est_done += r->est_bytes;
	table_done = --fs->left[r->table] == 0;
	if (table_done)
		fs->tables_done++;
	pthread_mutex_unlock(&fs->lock);
	if (table_done && fs->opts->table_copied)
		fs->opts->table_copied(fs->opts->table_copied_arg, t->dst_schema,
							   t->dst_table);
	return 0;
}

/* The next range to copy, or -1 */
static int
next_range(FullSync *fs)
{
	int			r = -1;

	pthread_mutex_lock(&fs->lock);
	if (!fs->failed && fs->next < fs->nqueue)
		r = fs->queue[fs->next++];
	pthread_mutex_unlock(&fs->lock);
	return r;
}

static void *
worker_main(void *arg)
{
	Worker	   *w = arg;
	FullSync   *fs = w->fs;
	DtsError	err = {0};
	int			r;

	w->src = open_source(fs, &err);
	if (w->src)
		w->dst = open_destination(fs, &err);
	if (w->dst && setup_copy_origin(w, &err) < 0)
	{
		PQfinish(w->dst);
		w->dst = NULL;
	}
	while (w->dst && (r = next_range(fs)) >= 0)
	{
		if (stop_requested(fs))
		{
			dts_error_set(&err, DTS_ERROR_OTHER, "full sync stopped");
			break;
		}
		if (copy_range(w, &fs->ranges[r], &err) < 0)
			break;
	}
	if (err.cls != DTS_ERROR_NONE)
		fail(fs, &err);
	reset_copy_origin(w);
	PQfinish(w->src);
	PQfinish(w->dst);
	w->src = w->dst = NULL;
	dts_buf_free(&w->sql);
	dts_copy_relay_free(&w->relay);

	pthread_mutex_lock(&fs->lock);
	fs->running--;
	pthread_cond_signal(&fs->changed);
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* ----------------------------------------------------------------
 *		Coordinator
 * ----------------------------------------------------------------
 */

/* "1:02:03" */
static const char *
format_duration(double s, char *buf, size_t len)
{
	long		t = (long) (s + 0.5);

	snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	return buf;
}

/*
 * One progress line: tables and ranges done of all, rows and MB moved by
 * this call, its rate, and the time left at that rate (from the on-disk
 * sizes of the ranges still to copy).
 */
static void
print_progress(FullSync *fs, bool last)
{
	double		elapsed = (dts_now_us() - fs->start_us) / 1e6;
	int64_t		rows,
				bytes,
				est_done,
				est_left;
	int			tables_done,
				ranges_done,
				i;
	char		eta[64];
	char		d[32];

	pthread_mutex_lock(&fs->lock);
	rows = fs->rows;
	bytes = fs->bytes;
	est_done = fs->est_done;
	tables_done = fs->tables_done;
	ranges_done = fs->ranges_done + (fs->nranges - fs->nqueue);
	pthread_mutex_unlock(&fs->lock);
	est_left = fs->est_total - est_done;
	for (i = 0; i < fs->nranges; i++)
		if (fs->ranges[i].done)
			est_left -= fs->ranges[i].est_bytes;
	if (last)
		snprintf(eta, sizeof(eta), "done in %s",
				 format_duration(elapsed, d, sizeof(d)));
	else if (est_done > 0 && elapsed > 0)
		snprintf(eta, sizeof(eta), "ETA %s",
				 format_duration(est_left / (est_done / elapsed), d,
								 sizeof(d)));
	else
		snprintf(eta, sizeof(eta), "ETA ?");
	fprintf(fs->opts->progress,
			"full sync: tables %d/%d, ranges %d/%d, rows %" PRId64
			", %.1f MB, %.1f MB/s, %s\n",
			tables_done, fs->ntables, ranges_done, fs->nranges, rows,
			bytes / 1048576.0, elapsed > 0 ? bytes / 1048576.0 / elapsed : 0,
			eta);
	fflush(fs->opts->progress);
}

/* Starts the workers, waits for them, prints progress meanwhile */
static void
run_workers(FullSync *fs)
{
	int			n = fs->opts->workers > 0 ? fs->opts->workers : 1;
	Worker	   *workers;
	int			i;
	int64_t		next_print;
	int			interval = fs->opts->progress_interval_ms > 0 ?
		fs->opts->progress_interval_ms : DTS_FULL_SYNC_PROGRESS_MS_DEFAULT;

	if (n > DTS_FULL_SYNC_WORKERS_MAX)
		n = DTS_FULL_SYNC_WORKERS_MAX;
	if (n > fs->nqueue)
		n = fs->nqueue;
	workers = calloc(n + 1, sizeof(Worker));
	if (workers == NULL)
		abort();
	fs->start_us = dts_now_us();
	next_print = fs->start_us + (int64_t) interval * 1000;
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < n; i++)
	{
		workers[i].fs = fs;
		workers[i].no = i + 1;
		dts_copy_relay_init(&workers[i].relay, relay_progress, &workers[i]);
		if (pthread_create(&workers[i].thread, NULL, worker_main,
						   &workers[i]) != 0)
		{
			DtsError	err = {0};

			dts_error_set(&err, DTS_ERROR_OTHER,
						  "could not start a full sync worker thread");
			pthread_mutex_unlock(&fs->lock);
			fail(fs, &err);
			pthread_mutex_lock(&fs->lock);
			n = i;
			break;
		}
		fs->running++;
	}
	while (fs->running > 0)
	{
		struct timespec until;

		until.tv_sec = next_print / 1000000;
		until.tv_nsec = (next_print % 1000000) * 1000;
		pthread_cond_timedwait(&fs->changed, &fs->lock, &until);
		if (dts_now_us() >= next_print && fs->running > 0)
		{
			pthread_mutex_unlock(&fs->lock);
			if (fs->opts->progress)
				print_progress(fs, false);
			pthread_mutex_lock(&fs->lock);
			next_print = dts_now_us() + (int64_t) interval * 1000;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	for (i = 0; i < n; i++)
		pthread_join(workers[i].thread, NULL);
	free(workers);
}

/*
 * Whether the source database has dts.copy_rows() (the pg_dts extension,
 * 1.1 or later) for the copies to use: sets fs->chunked, and says so when
 * it has not.
 */
static int
find_copy_rows(FullSync *fs, PGconn *src, DtsError *err)
{
	PGresult   *res = dts_sync_exec(src,
									"SELECT pg_catalog.to_regprocedure("
									"'dts.copy_rows(text,integer)') IS NOT NULL",
									"could not look for dts.copy_rows() on "
									"the source", err);

	if (res == NULL)
		return -1;
	fs->chunked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!fs->chunked)
		dts_log_info("full sync of task \"%s\": the source database has no "
					 "dts.copy_rows() (pg_dts 1.1 or later), so the tables "
					 "are copied with a plain COPY TO, one message per row; "
					 "ALTER EXTENSION pg_dts UPDATE (or CREATE EXTENSION "
					 "pg_dts) on the source makes the copy cheaper there",
					 fs->task->name);
	return 0;
}

/*
 * The coordinator's source session: imports the snapshot, reads the LSN
 * that bounds it (pg_current_wal_lsn() after the import: every commit the
 * snapshot sees is before it), and locks the tables against rewrites.
 */
static int
open_coordinator(FullSync *fs, PGconn **src, PGconn **dst, DtsError *err)
{
	PGresult   *res;
	DtsBuf		sql = {0};
	int			i;

	*src = open_source(fs, err);
	if (*src == NULL)
		return -1;
	res = dts_sync_exec(*src, "SELECT pg_catalog.pg_current_wal_lsn()",
						"could not read the source's WAL position", err);
	if (res == NULL)
		return -1;
	snprintf(fs->snapshot_lsn, sizeof(fs->snapshot_lsn), "%s",
			 PQgetvalue(res, 0, 0));
	PQclear(res);
	if (dts_sync_tables_for_task(*src, fs->task, &fs->tables, &fs->ntables,
								 err) < 0)
		return -1;
	if (fs->opts->chunked && find_copy_rows(fs, *src, err) < 0)
		return -1;
	for (i = 0; i < fs->ntables; i++)
	{
		dts_buf_printf(&sql, "%s", i == 0 ? "LOCK TABLE " : ", ");
		dts_buf_qualified(&sql, fs->tables[i].src_schema,
						  fs->tables[i].src_table);
	}
	if (fs->ntables > 0)
	{
		dts_buf_printf(&sql, " IN ACCESS SHARE MODE");
		if (dts_sync_run(*src, dts_buf_str(&sql),
						 "could not lock the source tables", err) < 0)
		{
			dts_buf_free(&sql);
			return -1;
		}
	}
	dts_buf_free(&sql);
	fs->stage = calloc(fs->ntables + 1, sizeof(bool));
	fs->freeze = calloc(fs->ntables + 1, sizeof(bool));
	if (fs->stage == NULL || fs->freeze == NULL)
		abort();
	*dst = open_destination(fs, err);
	return *dst ? 0 : -1;
}

int
dts_full_sync(const DtsTask *task, const char *src_conninfo,
			  const char *snapshot_name, const char *dst_conninfo,
			  const DtsFullSyncOptions *opts, DtsFullSyncResult *result,
			  DtsError *err)
{
	DtsFullSyncOptions defaults;
	FullSync	fs;
	PGconn	   *src = NULL;
	PGconn	   *dst = NULL;
	int			rc = -1,
				nfreeze = 0;

	if (snapshot_name == NULL || snapshot_name[0] == '\0')
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "full sync of task \"%s\": no snapshot given",
							 task->name);
	if (opts == NULL)
	{
		dts_full_sync_options_init(&defaults);
		opts = &defaults;
	}
	memset(&fs, 0, sizeof(fs));
	fs.task = task;
	fs.src_conninfo = src_conninfo;
	fs.dst_conninfo = dst_conninfo;
	fs.snapshot = snapshot_name;
	fs.opts = opts;
	pthread_mutex_init(&fs.lock, NULL);
	pthread_cond_init(&fs.changed, NULL);
	pthread_mutex_init(&fs.monitor_lock, NULL);

	if (open_coordinator(&fs, &src, &dst, err) < 0 ||
		make_plan(&fs, src, dst, err) < 0)
		goto cleanup;
	for (int i = 0; i < fs.nqueue; i++)
		nfreeze += range_freezes(&fs, &fs.ranges[fs.queue[i]]);
	dts_log_info("full sync of task \"%s\": %d tables, %d ranges, %d to copy "
				 "(%d whole tables by TRUNCATE and COPY FREEZE), snapshot %s "
				 "(LSN %s)", task->name, fs.ntables, fs.nranges, fs.nqueue,
				 nfreeze, snapshot_name, fs.snapshot_lsn);
	/* (in a transaction block it would see one snapshot of the states) */
	fs.monitor = PQtransactionStatus(dst) == PQTRANS_IDLE ? dst : NULL;
	run_workers(&fs);
	fs.monitor = NULL;
	if (fs.failed)
	{
		*err = fs.err;
		goto cleanup;
	}
	if (drop_copy_origins(&fs, dst, err) < 0)
		goto cleanup;
	if (opts->progress)
		print_progress(&fs, true);
	rc = 0;

cleanup:
	if (result)
	{
		memset(result, 0, sizeof(*result));
		result->tables = fs.ntables;
		result->ranges = fs.nranges;
		result->ranges_copied = fs.ranges_done;
		result->ranges_resumed = fs.nranges - fs.nqueue;
		result->rows = fs.rows;
		result->bytes = fs.bytes;
		result->seconds = fs.start_us ? (dts_now_us() - fs.start_us) / 1e6 : 0;
		snprintf(result->snapshot_lsn, sizeof(result->snapshot_lsn), "%s",
				 fs.snapshot_lsn);
	}
	PQfinish(src);
	PQfinish(dst);
	dts_sync_tables_free(fs.tables, fs.ntables);
	free(fs.stage);
	free(fs.freeze);
	free(fs.left);
	free(fs.ranges);
	free(fs.queue);
	pthread_mutex_destroy(&fs.lock);
	pthread_cond_destroy(&fs.changed);
	pthread_mutex_destroy(&fs.monitor_lock);
	return rc;
}

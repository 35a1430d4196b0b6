/*-------------------------------------------------------------------------
 *
 * pg.c
 *	  The pg sink: applies the changes of a task to a peer PostgreSQL
 *	  (incremental sync), exactly once, in source commit order.
 *
 * Batches.  Several source transactions go into one destination
 * transaction (up to batch_transactions, batch_rows and batch_interval),
 * which also upserts the task's row of dts.apply_progress with the end LSN
 * of its last source transaction.  durable_lsn() is the LSN of the last
 * committed destination transaction; at open it is read back from
 * dts.apply_progress, and a source transaction that ends at or before it
 * is skipped, so a restart neither loses nor repeats a transaction.
 *
 * The fast path.  Statements are prepared once per relation and shape
 * (INSERT of all columns; UPDATE of each distinct set of present columns,
 * keyed by a bitmap, so that unchanged TOASTed values are left alone;
 * DELETE) and sent in libpq pipeline mode with binary parameters (the
 * typsend images of dts_value_image()), without waiting for each result;
 * results are read behind, within a window.  A statement that does not do
 * exactly what it should (an error, or an UPDATE or DELETE that hits no
 * row) marks the batch: it is rolled back and replayed carefully.  The
 * changes of the open batch are kept for that: in memory up to
 * batch_memory, past it (one huge source transaction) in a temp file.
 *
 * Runs.  Consecutive inserts into one table wait in a run; 64 or more go
 * as one COPY (FORMAT binary), which then takes each further row of the
 * run as it arrives.  So do updates of one table with the same
 * present columns and an unchanged key, and deletes of one table: 64 or
 * more are copied into a session temp table (the stage) and applied by
 * one UPDATE ... FROM / DELETE ... USING it, which must change one row
 * per staged row, else the batch is marked.  A key seen again ends the
 * run before it, so the set-based result is the sequential one.
 *
 * Waiting.  Whenever the sink must wait for the destination (a result, or
 * room in the socket for COPY data), it lets the source read the stream
 * ahead into memory meanwhile (sink->prefetch, up to batch_memory / 4 and
 * 16 MB), so that the source's walsender decodes while the destination
 * applies instead of taking turns with it.
 *
 * The careful path.  One destination transaction per source transaction,
 * statement by statement, each under a savepoint: conflicts are detected
 * (affected rows, SQLSTATE 23505), resolved by the task's policy and
 * reported (conflict.c).  A conflict under TaskFailed rolls the source
 * transaction back (those before it are committed) and fails the task
 * with an error naming the row.
 *
 * Loop prevention.  The session is set up with the replication origin
 * dts_<task>, and every destination transaction with the source's LSN and
 * commit time, so the plugin's origin=none on a reverse task drops them.
 *
 * shipper/sinks/pg.c
 *
 *-------------------------------------------------------------------------
 */
#include "sink.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "conflict.h"
#include "libpq-fe.h"
#include "sqlstate.h"
#include "sync_tables.h"
#include "task.h"

#define FIRST_NORMAL_OID	16384	/* OIDs below are built-in, same
									 * everywhere */
#define PIPELINE_WINDOW		1000	/* results outstanding, at most */
#define COPY_MIN_ROWS		64		/* a run of inserts this long: COPY */
#define COPY_MAX_ROWS		50000	/* longest run sent as one COPY */
#define RUN_HOLD_MAX		10000	/* entries held while the destination
									 * is busy, at most */
#define HOLD_CHECK_EVERY	16		/* held entries between looks at the
									 * destination (two syscalls each) */
#define SET_MIN_ROWS		64		/* a run of updates or deletes this long:
									 * staged by COPY, applied set-based */
#define COPY_CHUNK			(64 * 1024)	/* COPY data sent at a time */
#define ARENA_BLOCK			(1024 * 1024)
#define DEFAULT_BATCH_MEMORY	64	/* MB of changes kept in memory */
#define REL_BUCKETS			256
#define SEND_BUFFER_BYTES	(4 * 1024 * 1024)	/* SO_SNDBUF to the destination */
#define READ_AHEAD_MAX		(16 * 1024 * 1024)	/* source messages read ahead
												 * while waiting, at most (and
												 * batch_memory / 4) */

#define DEFAULT_BATCH_TXNS		1000
#define DEFAULT_BATCH_ROWS		20000
#define DEFAULT_BATCH_INTERVAL	100 /* ms */
/* how late the WAL of asynchronously committed batches is flushed */
#define SYNC_INTERVAL_US		(500 * 1000)

/* pg_type OIDs used for parameters */
#define TEXTOID_		25
#define INT8OID_		20
#define TIMESTAMPTZOID_ 1184
#define PG_LSNOID_		3220

/* ----------------------------------------------------------------
 *		Data structures
 * ----------------------------------------------------------------
 */

/* Memory for the open batch: blocks that never move, freed at once. */
typedef struct ArenaBlock
{
	struct ArenaBlock *next;
	size_t		used;
	size_t		cap;
	char		data[];
} ArenaBlock;

typedef struct Arena
{
	ArenaBlock *head;
	size_t		total;
} Arena;

/* A prepared statement's state on the current connection */
typedef enum StmtState
{
	STMT_NONE = 0,
	STMT_SENT,					/* Parse sent, result not read */
	STMT_READY
} StmtState;

/*
 * A session temp table that a run of updates or deletes is copied into
 * (the key columns, and for updates the SET columns, with the
 * destination's types), then applied from in one statement.  ON COMMIT
 * DELETE ROWS; truncated before a second use in the same transaction.
 */
typedef struct Stage
{
	int			state;			/* STMT_NONE, STMT_SENT (created in the
								 * open transaction), STMT_READY */
	uint64_t	filled_gen;		/* destination transaction it was filled in */
	char		name[48];
} Stage;

/* An UPDATE statement for one set of present columns */
typedef struct UpdateStmt
{
	struct UpdateStmt *next;
	uint64_t   *sig;			/* bitmap of the SET columns */
	int			state;
	char		name[40];
	Stage		stage;			/* its set-based form */
} UpdateStmt;

typedef struct PgColumn
{
	char	   *name;			/* source name */
	uint32_t	typoid;
	int32_t		typmod;
	bool		key;
	char		encoding;
	char	   *dst_name;		/* after name mapping */
	/* from the destination (resolve_rel) */
	Oid			dst_type;		/* the destination column's type */
	Oid			param_type;
	int			param_format;	/* 0 text, 1 binary */
	Oid			patch_elem;		/* binary array images: element OID to
								 * write (user-defined types differ) */
	bool		has_eq;			/* a btree equality: compare with it, else
								 * as text (REPLICA IDENTITY FULL match) */
} PgColumn;

/* One version of a source relation, and what it becomes at the sink */
typedef struct PgRel
{
	struct PgRel *next_all;		/* every version, freed at close */
	struct PgRel *next_hash;	/* current versions by relid */
	uint32_t	relid;
	char	   *schema;
	char	   *table;
	char		replident;
	int			ncols;
	int			nkeys;
	PgColumn   *cols;
	int			id;				/* for statement names */
	unsigned	dml;			/* DTS_DML_* the task takes */

	/* routing */
	bool		skip;			/* not applied (unselected, pg_dts's own) */
	char	   *dst_schema;
	char	   *dst_table;
	char	   *qname;			/* "schema"."table" */

	/* matching rows: the key columns, or every column (FULL, no key) */
	int			nmatch;
	int		   *match;
	bool		match_all;

	/* destination */
	bool		resolved;
	bool		partitioned;
	bool		copy_ok;		/* every value a typsend image of the
								 * destination column's type: COPY BINARY */
	bool		set_ok;			/* copy_ok, a real key with btree equality:
								 * runs of updates and deletes set-based */
	int			ins_state;
	int			del_state;
	char		ins_name[32];
	char		del_name[32];
	Stage		del_stage;
	UpdateStmt *updates;
	int			nupdates;
	int			sigwords;
} PgRel;

/* A value kept for the batch, in parameter form */
typedef struct PgVal
{
	char	   *data;			/* NUL-terminated for text parameters */
	int			len;
	char		status;			/* DTS_VALUE_* */
} PgVal;

typedef struct PgTxnRec PgTxnRec;

typedef struct PgChange
{
	struct PgChange *next;
	PgTxnRec   *txn;
	int			seq;			/* 1-based position in its transaction */
	char		kind;			/* DTS_FRAME_INSERT, _UPDATE, _DELETE,
								 * _TRUNCATE */
	char		old_kind;
	uint8_t		flags;			/* TRUNCATE */
	PgRel	   *rel;
	PgVal	   *newv;
	PgVal	   *oldv;
	int			ntrunc;
	PgRel	  **trunc;
} PgChange;

struct PgTxnRec
{
	PgTxnRec   *next;
	uint32_t	xid;
	uint64_t	commit_lsn;
	uint64_t	end_lsn;
	int64_t		commit_time;
	PgChange   *first;			/* changes kept in memory */
	PgChange   *last;
	int			nchanges;
	long		nspilled;		/* changes after "last", in the spill file */
};

/* Results the pipeline owes us, in order */
typedef enum PendKind
{
	PEND_OTHER,					/* BEGIN, origin, progress */
	PEND_PREPARE,
	PEND_CHANGE,
	PEND_CATALOG,
	PEND_SETOP,					/* a set-based run: must hit expect rows */
	PEND_FINAL,					/* COMMIT, ROLLBACK: must succeed */
	PEND_SYNC
} PendKind;

typedef struct Pending
{
	PendKind	kind;
	int		   *state;			/* PREPARE: the statement's; FINAL: 1/-1;
								 * SETOP: the stage's */
	PgChange   *chg;			/* CHANGE (not read back: a spilled change's
								 * memory is reused, hence chg_kind) */
	char		chg_kind;		/* CHANGE, SETOP: DTS_FRAME_* */
	long		expect;			/* SETOP: rows of the run */
} Pending;

/* Growable string */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

/* Parameters of one statement */
typedef struct Params
{
	int			n;
	int			cap;
	const char **values;
	int		   *lengths;
	int		   *formats;
	Oid		   *types;
	const char **names;			/* destination column names (keys) */
} Params;

typedef struct PgSink
{
	/* configuration */
	char	   *conninfo;
	char	   *task_name;
	char	   *origin_name;
	char	   *source_encoding;
	const DtsTask *task;
	DtsConflictPolicy policy;
	uint64_t	overwrite_until;	/* conflicts of transactions committed up
									 * to here: Overwrite (resumed full sync) */
	int			batch_txns;
	int			batch_rows;
	int64_t		batch_interval_us;

	/* the connection */
	PGconn	   *conn;
	bool		pipeline;
	DtsSink    *sink;			/* for its prefetch hook */
	size_t		read_ahead;		/* bytes the source may read ahead */

	/* progress */
	uint64_t	durable_lsn;	/* stored by the last transaction whose commit
								 * is flushed at the destination */
	uint64_t	committed_lsn;	/* stored by the last committed transaction
								 * (batches commit asynchronously) */
	int64_t		committed_at_us;	/* when committed_lsn passed durable_lsn */
	uint64_t	accepted_lsn;	/* end of the last transaction accepted */

	/* relations */
	PgRel	   *buckets[REL_BUCKETS];
	PgRel	   *all_rels;
	int			next_rel_id;

	/* the batch: one destination transaction */
	Arena		arena;
	size_t		memory_cap;		/* batch_memory: past it, changes spill */
	bool		spilling;		/* new changes go to the spill file */
	FILE	   *spill;			/* unlinked temp file, or NULL */
	Arena		scratch;		/* changes not kept in memory: spilled ones
								 * on their way, or read back */
	bool		transient;		/* the change being sent is in scratch */
	PgTxnRec   *first_txn;
	PgTxnRec   *last_txn;
	int			ntxns;
	long		nrows;
	bool		dest_open;		/* BEGIN sent */
	int64_t		batch_start_us;
	bool		anomaly;		/* replay the batch carefully */
	char		anomaly_msg[512];

	/* the open source transaction */
	bool		in_txn;
	bool		skipping;
	PgTxnRec   *cur;

	/* pipeline */
	Pending    *pend;
	int			pend_cap;
	int			pend_head;
	int			pend_count;
	bool		pend_unflushed; /* queries sent since the last sync or
								 * flush request: the server holds their
								 * results back until one comes */
	PGresult   *catalog_res;
	char		final_msg[512];

	/*
	 * A run of inserts into one table, or of updates (same SET columns, key
	 * unchanged) or deletes of one table: held until it is long enough for
	 * a COPY, then streamed into the COPY as it grows; for updates and
	 * deletes into a stage applied in one statement at its end.  The keys
	 * of an update or delete run are distinct (run_htab: their hashes).
	 */
	PgRel	   *run_rel;
	char		run_kind;		/* DTS_FRAME_INSERT, _UPDATE, _DELETE */
	UpdateStmt *run_upd;		/* update runs: the SET columns */
	PgChange  **run;			/* entries held (before the COPY) */
	int			run_len;
	int			run_cap;
	long		run_count;		/* entries of the run, held or sent */
	bool		copying;		/* the run's COPY is open: no pipeline */
	int		   *copy_cols;		/* columns of the COPY (source numbers) */
	int			copy_ncols;
	int			copy_cols_cap;
	Buf			copybuf;		/* COPY data not sent yet */
	uint64_t   *run_htab;		/* key hashes, 0 = free */
	int			run_hcap;		/* power of 2, or 0 */
	int		   *run_slot;		/* slots taken in run_htab */
	int			run_nslots;

	/* stages created in the open destination transaction */
	uint64_t	dest_gen;		/* counts destination transactions */
	Stage	  **stage_new;
	int			nstage_new;
	int			stage_new_cap;

	/* scratch */
	Params		params;
	Buf			sql;
	uint64_t   *sigbuf;
	int			sigcap;
} PgSink;

static int	commit_batch(PgSink *ps, DtsError *err);
static void copy_abort(PgSink *ps);
static int	send_change(PgSink *ps, PgChange *chg, DtsError *err);

/* ----------------------------------------------------------------
 *		Small helpers
 * ----------------------------------------------------------------
 */

static void *
arena_alloc(Arena *a, size_t n)
{
	void	   *p;

	n = (n + 7) & ~(size_t) 7;
	if (a->head == NULL || a->head->cap - a->head->used < n)
	{
		size_t		cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		ArenaBlock *b = dts_realloc(NULL, sizeof(ArenaBlock) + cap);

		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
		a->total += cap;
	}
	p = a->head->data + a->head->used;
	a->head->used += n;
	return p;
}

static void
arena_reset(Arena *a)
{
	while (a->head)
	{
		ArenaBlock *next = a->head->next;

		free(a->head);
		a->head = next;
	}
	a->total = 0;
}

/* Empties the arena, keeping one ordinary block for the next use. */
static void
arena_clear(Arena *a)
{
	ArenaBlock *keep = NULL;

	while (a->head)
	{
		ArenaBlock *next = a->head->next;

		if (keep == NULL && a->head->cap == ARENA_BLOCK)
			keep = a->head;
		else
			free(a->head);
		a->head = next;
	}
	a->head = keep;
	a->total = 0;
	if (keep)
	{
		keep->next = NULL;
		keep->used = 0;
		a->total = keep->cap;
	}
}

static void
buf_reserve(Buf *b, size_t need)
{
	if (b->cap - b->len > need)
		return;
	while (b->cap - b->len <= need)
		b->cap = b->cap ? b->cap * 2 : 1024;
	b->data = dts_realloc(b->data, b->cap);
}

static void
buf_reset(Buf *b)
{
	buf_reserve(b, 1);
	b->len = 0;
	b->data[0] = '\0';
}

static void
buf_add(Buf *b, const char *s)
{
	size_t		n = strlen(s);

	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n + 1);
	b->len += n;
}

static void
buf_printf(Buf *b, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
buf_printf(Buf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	buf_reserve(b, 64);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if ((size_t) n >= b->cap - b->len)
	{
		buf_reserve(b, (size_t) n + 1);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t) n;
}

/* Appends name as a quoted identifier ("" doubled). */
static void
buf_ident(Buf *b, const char *name)
{
	buf_reserve(b, strlen(name) * 2 + 3);
	b->data[b->len++] = '"';
	for (const char *p = name; *p; p++)
	{
		if (*p == '"')
			b->data[b->len++] = '"';
		b->data[b->len++] = *p;
	}
	b->data[b->len++] = '"';
	b->data[b->len] = '\0';
}

static char *
quote_qualified(const char *schema, const char *table)
{
	Buf			b = {0};

	buf_reset(&b);
	buf_ident(&b, schema);
	buf_add(&b, ".");
	buf_ident(&b, table);
	return b.data;
}

static void
params_reset(Params *p)
{
	p->n = 0;
}

static void
params_add(Params *p, Oid type, const char *value, int length, int format,
		   const char *name)
{
	if (p->n == p->cap)
	{
		p->cap = p->cap ? p->cap * 2 : 64;
		p->values = dts_realloc(p->values, sizeof(char *) * p->cap);
		p->lengths = dts_realloc(p->lengths, sizeof(int) * p->cap);
		p->formats = dts_realloc(p->formats, sizeof(int) * p->cap);
		p->types = dts_realloc(p->types, sizeof(Oid) * p->cap);
		p->names = dts_realloc(p->names, sizeof(char *) * p->cap);
	}
	p->values[p->n] = value;
	p->lengths[p->n] = length;
	p->formats[p->n] = format;
	p->types[p->n] = type;
	p->names[p->n] = name;
	p->n++;
}

static void
put_be64(char *out, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
	{
		out[i] = (char) (v & 0xFF);
		v >>= 8;
	}
}

/* Whether a statement's result says it ran (a NULL result did not) */
static bool
result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static bool
sqlstate_is(const PGresult *res, const char *state)
{
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return s != NULL && strcmp(s, state) == 0;
}

/* The error class of a failed statement. */
static DtsErrorClass
error_class(PgSink *ps, const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (ps->conn == NULL || PQstatus(ps->conn) != CONNECTION_OK ||
		(s && strncmp(s, "08", 2) == 0))
		return DTS_ERROR_CONNECT;
	/* undefined objects, wrong types, privileges: a retry cannot help */
	if (s && (strncmp(s, "42", 2) == 0 ||
			  strcmp(s, DTS_SQLSTATE_INVALID_BINARY_REPRESENTATION) == 0))
		return DTS_ERROR_FATAL;
	return DTS_ERROR_OTHER;
}

/* The server's error as one line: message (detail). */
static const char *
result_message(PgSink *ps, const PGresult *res, char *buf, size_t len)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) :
		NULL;
	const char *d = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) :
		NULL;
	size_t		n;

	if (m == NULL || *m == '\0')
		m = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) :
			ps->conn ? PQerrorMessage(ps->conn) : "no connection";
	snprintf(buf, len, "%s", m);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == ' ')
		buf[--n] = '\0';
	if (d && n + 3 < len)
		snprintf(buf + n, len - n, " (%s)", d);
	return buf;
}

static const char *
kind_word(char kind)
{
	switch (kind)
	{
		case DTS_FRAME_INSERT:
			return "INSERT";
		case DTS_FRAME_UPDATE:
			return "UPDATE";
		case DTS_FRAME_DELETE:
			return "DELETE";
		case DTS_FRAME_TRUNCATE:
			return "TRUNCATE";
	}
	return "change";
}

/* ----------------------------------------------------------------
 *		Relations: routing and resolution against the destination
 * ----------------------------------------------------------------
 */

static bool
same_relation(const PgRel *p, const DtsRelation *r)
{
	if (p->relid != r->relid || p->replident != r->replident ||
		p->ncols != r->ncols || p->nkeys != r->nkeys ||
		strcmp(p->table, r->table) != 0 || strcmp(p->schema, r->schema) != 0)
		return false;
	for (int i = 0; i < r->ncols; i++)
	{
		const PgColumn *a = &p->cols[i];
		const DtsColumn *b = &r->columns[i];

		if (a->typoid != b->typoid || a->typmod != b->typmod ||
			a->key != b->key || a->encoding != b->encoding ||
			strcmp(a->name, b->name) != 0)
			return false;
	}
	return true;
}

static void
reset_statements(PgSink *ps)
{
	for (PgRel *r = ps->all_rels; r; r = r->next_all)
	{
		r->ins_state = STMT_NONE;
		r->del_state = STMT_NONE;
		r->del_stage.state = STMT_NONE;
		for (UpdateStmt *u = r->updates; u; u = u->next)
		{
			u->state = STMT_NONE;
			u->stage.state = STMT_NONE;
		}
	}
	ps->nstage_new = 0;
}

/*
 * The open destination transaction ends: the stages it created exist from
 * now on (committed) or not (rolled back).
 */
static void
stages_settle(PgSink *ps, bool committed)
{
	for (int i = 0; i < ps->nstage_new; i++)
		if (ps->stage_new[i]->state == STMT_SENT)
			ps->stage_new[i]->state = committed ? STMT_READY : STMT_NONE;
	ps->nstage_new = 0;
}

/* Forgets the run (sent or not). */
static void
run_clear(PgSink *ps)
{
	copy_abort(ps);
	for (int i = 0; i < ps->run_nslots; i++)
		ps->run_htab[ps->run_slot[i]] = 0;
	ps->run_nslots = 0;
	ps->run_len = 0;
	ps->run_count = 0;
	ps->run_rel = NULL;
	ps->run_kind = 0;
	ps->run_upd = NULL;
}

/* Routes a new relation version by the task's rules. */
static void
route_rel(PgSink *ps, PgRel *rel)
{
	const DtsTableRule *rule = NULL;

	rel->dml = DTS_DML_ALL;
	if (strcmp(rel->schema, DTS_HEARTBEAT_SCHEMA) == 0 &&
		(strcmp(rel->table, DTS_HEARTBEAT_TABLE) == 0 ||
		 strcmp(rel->table, DTS_DDL_TABLE) == 0))
	{
		rel->skip = true;		/* pg_dts's own: the destination has its own */
		return;
	}
	if (ps->task)
	{
		rule = dts_task_find_rule(ps->task, rel->schema, rel->table);
		if (rule == NULL)
		{
			rel->skip = true;
			return;
		}
		rel->dml = rule->dml;
	}
	rel->dst_schema = dts_strdup(rule && rule->new_schema ? rule->new_schema :
								 rel->schema);
	rel->dst_table = dts_strdup(rule && rule->new_table ? rule->new_table :
								rel->table);
	rel->qname = quote_qualified(rel->dst_schema, rel->dst_table);
	for (int i = 0; i < rel->ncols; i++)
	{
		const char *to = rel->cols[i].name;

		for (int j = 0; rule && j < rule->ncolumns; j++)
			if (strcmp(rule->columns[j].name, to) == 0)
			{
				if (rule->columns[j].new_name)
					to = rule->columns[j].new_name;
				break;
			}
		rel->cols[i].dst_name = dts_strdup(to);
	}
}

/* The sink's version of a relation as the stream describes it now. */
static PgRel *
get_rel(PgSink *ps, const DtsRelation *r)
{
	PgRel	  **slot = &ps->buckets[r->relid % REL_BUCKETS];
	PgRel	   *rel;
	int			k = 0;

	for (PgRel **pp = slot; *pp; pp = &(*pp)->next_hash)
	{
		if ((*pp)->relid != r->relid)
			continue;
		if (same_relation(*pp, r))
			return *pp;
		/* replaced: drop it from the lookup, keep it for the batch */
		*pp = (*pp)->next_hash;
		break;
	}

	rel = dts_realloc(NULL, sizeof(PgRel));
	memset(rel, 0, sizeof(PgRel));
	rel->relid = r->relid;
	rel->schema = dts_strdup(r->schema);
	rel->table = dts_strdup(r->table);
	rel->replident = r->replident;
	rel->ncols = r->ncols;
	rel->nkeys = r->nkeys;
	rel->cols = dts_realloc(NULL, sizeof(PgColumn) * (r->ncols + 1));
	memset(rel->cols, 0, sizeof(PgColumn) * (r->ncols + 1));
	rel->match = dts_realloc(NULL, sizeof(int) * (r->ncols + 1));
	for (int i = 0; i < r->ncols; i++)
	{
		rel->cols[i].name = dts_strdup(r->columns[i].name);
		rel->cols[i].typoid = r->columns[i].typoid;
		rel->cols[i].typmod = r->columns[i].typmod;
		rel->cols[i].key = r->columns[i].key;
		rel->cols[i].encoding = r->columns[i].encoding;
		if (r->nkeys > 0 ? r->columns[i].key :
			r->replident == DTS_REPLIDENT_FULL)
			rel->match[k++] = i;
	}
	rel->nmatch = k;
	rel->match_all = r->nkeys == 0 && k > 0;
	rel->id = ++ps->next_rel_id;
	rel->sigwords = (r->ncols + 63) / 64;
	snprintf(rel->ins_name, sizeof(rel->ins_name), "dts_%d_i", rel->id);
	snprintf(rel->del_name, sizeof(rel->del_name), "dts_%d_d", rel->id);
	snprintf(rel->del_stage.name, sizeof(rel->del_stage.name),
			 "dts_stage_%d_d", rel->id);
	route_rel(ps, rel);

	rel->next_all = ps->all_rels;
	ps->all_rels = rel;
	rel->next_hash = *slot;
	*slot = rel;
	return rel;
}

static PgRel *
find_rel_by_relid(PgSink *ps, uint32_t relid)
{
	for (PgRel *r = ps->buckets[relid % REL_BUCKETS]; r; r = r->next_hash)
		if (r->relid == relid)
			return r;
	return NULL;
}

static void
free_rel(PgRel *rel)
{
	for (int i = 0; i < rel->ncols; i++)
	{
		free(rel->cols[i].name);
		free(rel->cols[i].dst_name);
	}
	while (rel->updates)
	{
		UpdateStmt *next = rel->updates->next;

		free(rel->updates->sig);
		free(rel->updates);
		rel->updates = next;
	}
	free(rel->cols);
	free(rel->match);
	free(rel->schema);
	free(rel->table);
	free(rel->dst_schema);
	free(rel->dst_table);
	free(rel->qname);
	free(rel);
}

#define RESOLVE_SQL \
	"SELECT a.attname, a.atttypid, bt.typelem, bt.typcategory = 'A', " \
	"  EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod " \
	"          WHERE am.amname = 'btree' AND oc.opcdefault " \
	"            AND oc.opcintype IN (cmp.oid, CASE cmp.typtype " \
	"                 WHEN 'e' THEN 'anyenum'::regtype::oid " \
	"                 WHEN 'r' THEN 'anyrange'::regtype::oid " \
	"                 WHEN 'c' THEN 'record'::regtype::oid ELSE 0::oid END)), " \
	"  c.relkind " \
	"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " \
	"JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped " \
	"JOIN pg_type t ON t.oid = a.atttypid " \
	"JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END " \
	"JOIN pg_type cmp ON cmp.oid = CASE WHEN bt.typcategory = 'A' THEN bt.typelem ELSE bt.oid END " \
	"WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"

/* Fills in the destination's view of rel from the catalog query's result. */
static int
apply_resolution(PgSink *ps, PgRel *rel, PGresult *res, DtsError *err)
{
	Buf			missing = {0};
	int			nmissing = 0;
	int			nrows = PQntuples(res);

	(void) ps;
	if (nrows == 0)
	{
		dts_error_set(err, DTS_ERROR_FATAL,
					  "table %s (for source table \"%s\".\"%s\") does not exist at the destination",
					  rel->qname, rel->schema, rel->table);
		dts_error_hint(err, "Create it at the destination (the schema sync or pg_dump --schema-only), or map the table to another name in the task's \"objects\".");
		return -1;
	}
	buf_reset(&missing);
	for (int i = 0; i < rel->ncols; i++)
	{
		PgColumn   *col = &rel->cols[i];
		int			row = -1;

		for (int j = 0; j < nrows; j++)
			if (strcmp(PQgetvalue(res, j, 0), col->dst_name) == 0)
			{
				row = j;
				break;
			}
		if (row < 0)
		{
			buf_printf(&missing, "%s\"%s\"", nmissing ? ", " : "",
					   col->dst_name);
			nmissing++;
			continue;
		}
		col->param_format = col->encoding == DTS_ENC_TEXT ? 0 : 1;
		col->dst_type = (Oid) strtoul(PQgetvalue(res, row, 1), NULL, 10);
		if (col->typoid < FIRST_NORMAL_OID)
			col->param_type = col->typoid;
		else
		{
			/* user-defined: its OID differs, take the destination's */
			col->param_type = (Oid) strtoul(PQgetvalue(res, row, 1), NULL, 10);
			if (col->param_format == 1 && PQgetvalue(res, row, 3)[0] == 't')
				col->patch_elem = (Oid) strtoul(PQgetvalue(res, row, 2),
												NULL, 10);
		}
		col->has_eq = PQgetvalue(res, row, 4)[0] == 't';
		rel->partitioned = PQgetvalue(res, row, 5)[0] == 'p';
	}
	if (nmissing > 0)
	{
		dts_error_set(err, DTS_ERROR_FATAL,
					  "table %s at the destination has no column%s %s (source table \"%s\".\"%s\")",
					  rel->qname, nmissing > 1 ? "s" : "", missing.data,
					  rel->schema, rel->table);
		dts_error_hint(err, "Add the column%s at the destination, or map %s to existing columns in the task's \"objects\".",
					   nmissing > 1 ? "s" : "", nmissing > 1 ? "them" : "it");
		free(missing.data);
		return -1;
	}
	free(missing.data);
	rel->copy_ok = true;
	for (int i = 0; i < rel->ncols; i++)
		if (rel->cols[i].param_format != 1 ||
			(rel->cols[i].typoid < FIRST_NORMAL_OID &&
			 rel->cols[i].dst_type != rel->cols[i].typoid))
			rel->copy_ok = false;
	rel->set_ok = rel->copy_ok && !rel->match_all && rel->nmatch > 0;
	for (int k = 0; k < rel->nmatch; k++)
		if (!rel->cols[rel->match[k]].has_eq)
			rel->set_ok = false;
	rel->resolved = true;
	return 0;
}

/* ----------------------------------------------------------------
 *		The pipeline
 * ----------------------------------------------------------------
 */

static Pending *
pend_push(PgSink *ps, PendKind kind, int *state, PgChange *chg)
{
	int			at;

	if (ps->pend_count == ps->pend_cap)
	{
		int			newcap = ps->pend_cap ? ps->pend_cap * 2 : 2048;
		Pending    *n = dts_realloc(NULL, sizeof(Pending) * newcap);

		for (int i = 0; i < ps->pend_count; i++)
			n[i] = ps->pend[(ps->pend_head + i) % ps->pend_cap];
		free(ps->pend);
		ps->pend = n;
		ps->pend_cap = newcap;
		ps->pend_head = 0;
	}
	at = (ps->pend_head + ps->pend_count) % ps->pend_cap;
	ps->pend[at].kind = kind;
	ps->pend[at].state = state;
	ps->pend[at].chg = chg;
	ps->pend[at].chg_kind = chg ? chg->kind : 0;
	ps->pend[at].expect = 0;
	ps->pend_count++;
	ps->pend_unflushed = kind != PEND_SYNC;
	return &ps->pend[at];
}

static void
set_anomaly(PgSink *ps, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
set_anomaly(PgSink *ps, const char *fmt,...)
{
	va_list		ap;

	if (ps->anomaly)
		return;
	ps->anomaly = true;
	va_start(ap, fmt);
	vsnprintf(ps->anomaly_msg, sizeof(ps->anomaly_msg), fmt, ap);
	va_end(ap);
}

/* Looks at the (first) result of one pipelined query. */
static void
pend_handle(PgSink *ps, const Pending *p, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	bool		ok = result_ok(res);
	char		msg[400];

	switch (p->kind)
	{
		case PEND_PREPARE:
			*p->state = ok ? STMT_READY : STMT_NONE;
			if (!ok && st != PGRES_PIPELINE_ABORTED)
				set_anomaly(ps, "prepare failed: %s",
							result_message(ps, res, msg, sizeof(msg)));
			break;
		case PEND_CHANGE:
			if (st == PGRES_PIPELINE_ABORTED)
				break;
			if (!ok)
				set_anomaly(ps, "%s failed: %s", kind_word(p->chg_kind),
							result_message(ps, res, msg, sizeof(msg)));
			else if ((p->chg_kind == DTS_FRAME_UPDATE ||
					  p->chg_kind == DTS_FRAME_DELETE) &&
					 strcmp(PQcmdTuples(res), "1") != 0)
				set_anomaly(ps, "%s hit %s rows", kind_word(p->chg_kind),
							PQcmdTuples(res));
			break;
		case PEND_SETOP:
			if (st == PGRES_PIPELINE_ABORTED)
				break;
			if (!ok)
			{
				*p->state = STMT_NONE;	/* made again next time */
				set_anomaly(ps, "%s of a run of %ld rows failed: %s",
							kind_word(p->chg_kind), p->expect,
							result_message(ps, res, msg, sizeof(msg)));
			}
			else if (PQntuples(res) != 1 ||
					 strtol(PQgetvalue(res, 0, 0), NULL, 10) != p->expect ||
					 strtol(PQgetvalue(res, 0, 1), NULL, 10) != p->expect)
				set_anomaly(ps, "%s of a run of %ld rows hit %s rows with %s of the keys",
							kind_word(p->chg_kind), p->expect,
							PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?",
							PQntuples(res) == 1 ? PQgetvalue(res, 0, 1) : "?");
			break;
		case PEND_OTHER:
			if (!ok && st != PGRES_PIPELINE_ABORTED)
				set_anomaly(ps, "%s",
							result_message(ps, res, msg, sizeof(msg)));
			break;
		case PEND_FINAL:
			*p->state = ok ? 1 : -1;
			if (!ok)
				result_message(ps, res, ps->final_msg, sizeof(ps->final_msg));
			break;
		case PEND_CATALOG:
		case PEND_SYNC:
			break;
	}
}

/*
 * Waits until the destination's socket is readable (for_write: writable)
 * while the source reads ahead (sink->prefetch), so that the source's
 * walsender goes on decoding meanwhile.  False if there is nothing to
 * read ahead (none allowed, or enough held): the caller's libpq call then
 * blocks as usual, and also reports any error of the connection.
 */
static bool
dest_wait(PgSink *ps, bool for_write)
{
	int			dest = PQsocket(ps->conn);

	for (;;)
	{
		DtsSink    *sink = ps->sink;
		int			src;
		fd_set		rfds;
		fd_set		wfds;

		src = sink && sink->prefetch ?
			sink->prefetch(sink->prefetch_arg, ps->read_ahead) : -1;
		if (src < 0 || dest < 0)
			return false;
		FD_ZERO(&rfds);
		FD_ZERO(&wfds);
		FD_SET(src, &rfds);
		FD_SET(dest, for_write ? &wfds : &rfds);
		if (select((src > dest ? src : dest) + 1, &rfds, &wfds, NULL,
				   NULL) < 0)
			return false;
		if (FD_ISSET(dest, for_write ? &wfds : &rfds))
			return true;
	}
}

/* PQgetResult(), reading the source ahead while the result is not there */
static PGresult *
get_result(PgSink *ps)
{
	while (PQisBusy(ps->conn) && dest_wait(ps, false))
		if (!PQconsumeInput(ps->conn))
			break;
	return PQgetResult(ps->conn);
}

/* Reads the results of the oldest outstanding query. */
static int
pend_read_one(PgSink *ps, DtsError *err)
{
	Pending		p = ps->pend[ps->pend_head];
	PGresult   *res;
	bool		got = false;

	ps->pend_head = (ps->pend_head + 1) % ps->pend_cap;
	ps->pend_count--;

	if (p.kind == PEND_SYNC)
	{
		res = get_result(ps);
		if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC)
		{
			char		msg[400];

			dts_error_set(err, error_class(ps, res),
						  "lost the pipeline to the destination: %s",
						  result_message(ps, res, msg, sizeof(msg)));
			PQclear(res);
			return -1;
		}
		PQclear(res);
		return 0;
	}
	while ((res = get_result(ps)) != NULL)
	{
		if (!got)
		{
			pend_handle(ps, &p, res);
			if (p.kind == PEND_CATALOG)
			{
				PQclear(ps->catalog_res);
				ps->catalog_res = res;
				res = NULL;
			}
		}
		got = true;
		PQclear(res);
	}
	if (!got || PQstatus(ps->conn) != CONNECTION_OK)
	{
		if (p.kind == PEND_PREPARE)
			*p.state = STMT_NONE;
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "lost the connection to the destination: %s",
							 PQerrorMessage(ps->conn));
	}
	return 0;
}

/*
 * Reads the results that have arrived, without waiting; true if some are
 * still owed (*rc = -1 and err set if the connection failed).
 */
static bool
pend_busy(PgSink *ps, int *rc, DtsError *err)
{
	*rc = 0;
	if (ps->pend_count == 0)
		return false;
	/* without a flush request the results would come only at the next sync */
	if (ps->pend_unflushed && PQsendFlushRequest(ps->conn) != 1)
	{
		*rc = dts_error_set(err, DTS_ERROR_CONNECT,
							"could not send to the destination: %s",
							PQerrorMessage(ps->conn));
		return false;
	}
	ps->pend_unflushed = false;
	if (PQflush(ps->conn) < 0 || !PQconsumeInput(ps->conn))
	{
		*rc = dts_error_set(err, DTS_ERROR_CONNECT,
							"lost the connection to the destination: %s",
							PQerrorMessage(ps->conn));
		return false;
	}
	while (ps->pend_count > 0 && !PQisBusy(ps->conn))
		if (pend_read_one(ps, err) != 0)
		{
			*rc = -1;
			return false;
		}
	return ps->pend_count > 0;
}

/* Reads results until at most "keep" are outstanding. */
static int
pend_wait(PgSink *ps, int keep, DtsError *err)
{
	if (ps->pend_count <= keep)
		return 0;
	if (PQsendFlushRequest(ps->conn) != 1 || PQflush(ps->conn) != 0)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	ps->pend_unflushed = false;
	while (ps->pend_count > keep)
		if (pend_read_one(ps, err) != 0)
			return -1;
	return 0;
}

static int
pipe_sync(PgSink *ps, DtsError *err)
{
	if (PQpipelineSync(ps->conn) != 1)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	pend_push(ps, PEND_SYNC, NULL, NULL);
	return 0;
}

/* Sends a query with parameters into the pipeline. */
static int
pipe_send(PgSink *ps, const char *sql, const Params *p, PendKind kind,
		  int *state, PgChange *chg, DtsError *err)
{
	if (!PQsendQueryParams(ps->conn, sql, p ? p->n : 0, p ? p->types : NULL,
						   p ? p->values : NULL, p ? p->lengths : NULL,
						   p ? p->formats : NULL, 0))
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	pend_push(ps, kind, state, chg);
	return 0;
}

/* ----------------------------------------------------------------
 *		Connection
 * ----------------------------------------------------------------
 */

static void
disconnect(PgSink *ps)
{
	if (ps->conn)
		PQfinish(ps->conn);
	ps->conn = NULL;
	ps->pipeline = false;
	ps->pend_count = 0;
	ps->pend_head = 0;
	ps->dest_open = false;
	/*
	 * Batches committed but not yet flushed may be lost if the destination
	 * went down: forget them; reconnecting reads dts.apply_progress again.
	 */
	ps->committed_lsn = ps->durable_lsn;
	run_clear(ps);
	PQclear(ps->catalog_res);
	ps->catalog_res = NULL;
	reset_statements(ps);
}

static int
exec_ok(PgSink *ps, const char *sql, int nparams, const char *const *values,
		const char *what, DtsError *err)
{
	PGresult   *res = PQexecParams(ps->conn, sql, nparams, NULL, values, NULL,
								   NULL, 0);
	char		msg[400];

	if (!result_ok(res))
	{
		dts_error_set(err, error_class(ps, res),
					  "could not %s at the destination: %s", what,
					  result_message(ps, res, msg, sizeof(msg)));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

#define SETUP_TABLES_SQL \
	"CREATE SCHEMA IF NOT EXISTS dts; " \
	"CREATE TABLE IF NOT EXISTS dts.apply_progress (" \
	" task text PRIMARY KEY, lsn pg_lsn NOT NULL, commit_time timestamptz," \
	" applied_at timestamptz DEFAULT now()); " \
	"CREATE TABLE IF NOT EXISTS dts.conflict_log (" \
	" id bigserial PRIMARY KEY, task text, lsn pg_lsn, schema_name text," \
	" table_name text, key jsonb, kind text, action text, detail text," \
	" logged_at timestamptz DEFAULT now())"

/*
 * A full sync resumed under a second snapshot (docs/pg-sync.md) copied
 * rows that the slot, which starts at the first snapshot, replays too:
 * until the newest snapshot's LSN, conflicts are those overlaps and are
 * resolved as Overwrite whatever the task's policy.  Reads that LSN from
 * dts.full_sync_progress into ps->overwrite_until (0 when there is none).
 */
static int
read_overwrite_until(PgSink *ps, DtsError *err)
{
	const char *params[1] = {ps->task_name};
	PGresult   *res;

	ps->overwrite_until = 0;
	res = PQexec(ps->conn,
				 "SELECT to_regclass('dts.full_sync_progress') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		dts_error_set(err, DTS_ERROR_CONNECT,
					  "could not look for dts.full_sync_progress at the destination: %s",
					  PQerrorMessage(ps->conn));
		PQclear(res);
		return -1;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = PQexecParams(ps->conn,
					   "SELECT max(snapshot_lsn)::text, count(DISTINCT snapshot) "
					   "FROM dts.full_sync_progress WHERE task = $1 AND done",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		dts_error_set(err, DTS_ERROR_CONNECT,
					  "could not read dts.full_sync_progress at the destination: %s",
					  PQerrorMessage(ps->conn));
		PQclear(res);
		return -1;
	}
	/* one snapshot: the slot starts after it, nothing overlaps */
	if (!PQgetisnull(res, 0, 0) && atoi(PQgetvalue(res, 0, 1)) > 1)
		dts_lsn_parse(PQgetvalue(res, 0, 0), &ps->overwrite_until);
	PQclear(res);
	return 0;
}

/*
 * Connects and sets the session up: replica role, encodings, the dts
 * tables, the replication origin; reads the applied LSN.
 */
static int
connect_dest(PgSink *ps, DtsError *err)
{
	char	   *shown;
	PGresult   *res;
	const char *params[1];
	uint64_t	lsn = 0;

	if (ps->conn)
		return 0;
	ps->conn = PQconnectdb(ps->conninfo);
	if (PQstatus(ps->conn) != CONNECTION_OK)
	{
		shown = dts_conninfo_for_display(ps->conninfo);
		dts_error_set(err, DTS_ERROR_CONNECT,
					  "could not connect to the destination (%s): %s", shown,
					  PQerrorMessage(ps->conn));
		free(shown);
		disconnect(ps);
		return -1;
	}
	/*
	 * A deep send buffer: the destination has a whole source transaction
	 * or more to apply while the source's walsender reads the WAL of the
	 * next one (it sends nothing of a transaction before its commit), and
	 * the shipper, not blocked, reads on.  The kernel caps the size
	 * (net.core.wmem_max); failing is harmless.
	 */
	{
		int			size = SEND_BUFFER_BYTES;

		(void) setsockopt(PQsocket(ps->conn), SOL_SOCKET, SO_SNDBUF, &size,
						  sizeof(size));
	}
	if (exec_ok(ps, "SET client_min_messages = warning", 0, NULL,
				"set client_min_messages", err) != 0 ||
		exec_ok(ps, "SET session_replication_role = replica", 0, NULL,
				"set session_replication_role (the destination user must be a superuser)",
				err) != 0 ||
		exec_ok(ps, "SET DateStyle = ISO", 0, NULL, "set DateStyle", err) != 0 ||
		exec_ok(ps, "SET IntervalStyle = postgres", 0, NULL,
				"set IntervalStyle", err) != 0 ||
		exec_ok(ps, "SET extra_float_digits = 3", 0, NULL,
				"set extra_float_digits", err) != 0)
		goto fail;
	if (ps->source_encoding &&
		PQsetClientEncoding(ps->conn, ps->source_encoding) != 0)
	{
		dts_error_set(err, DTS_ERROR_FATAL,
					  "the destination does not accept the source's encoding \"%s\" as client_encoding: %s",
					  ps->source_encoding, PQerrorMessage(ps->conn));
		goto fail;
	}
	res = PQexec(ps->conn, SETUP_TABLES_SQL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		char		msg[400];

		dts_error_set(err, error_class(ps, res),
					  "could not create the tables of schema dts at the destination: %s",
					  result_message(ps, res, msg, sizeof(msg)));
		PQclear(res);
		goto fail;
	}
	PQclear(res);

	params[0] = ps->origin_name;
	if (exec_ok(ps, DTS_ORIGIN_CREATE_SQL, 1, params,
				"create the replication origin", err) != 0 ||
		exec_ok(ps, DTS_ORIGIN_SESSION_SETUP_SQL, 1, params,
				"set up the replication origin of the session", err) != 0)
	{
		dts_error_hint(err, "Another pg_dts_ship of task \"%s\" may still be applying to this destination.",
					   ps->task_name);
		goto fail;
	}

	params[0] = ps->task_name;
	res = PQexecParams(ps->conn,
					   "SELECT lsn::text FROM dts.apply_progress WHERE task = $1",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		char		msg[400];

		dts_error_set(err, error_class(ps, res),
					  "could not read dts.apply_progress at the destination: %s",
					  result_message(ps, res, msg, sizeof(msg)));
		PQclear(res);
		goto fail;
	}
	if (PQntuples(res) == 1)
		dts_lsn_parse(PQgetvalue(res, 0, 0), &lsn);
	PQclear(res);
	if (lsn > ps->durable_lsn)
		ps->durable_lsn = lsn;
	if (ps->durable_lsn > ps->committed_lsn)
		ps->committed_lsn = ps->durable_lsn;
	if (ps->durable_lsn > ps->accepted_lsn)
		ps->accepted_lsn = ps->durable_lsn;
	if (read_overwrite_until(ps, err) != 0)
		goto fail;
	return 0;

fail:
	disconnect(ps);
	return -1;
}

/* ----------------------------------------------------------------
 *		Statements
 * ----------------------------------------------------------------
 */

/* WHERE clause matching one row, parameters from $first on */
static void
sql_where(Buf *b, const PgRel *rel, int first)
{
	if (rel->match_all)
	{
		buf_add(b, rel->partitioned ? " WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM " :
				" WHERE ctid = (SELECT ctid FROM ");
		buf_add(b, rel->qname);
		buf_add(b, " WHERE ");
	}
	else
		buf_add(b, " WHERE ");
	for (int k = 0; k < rel->nmatch; k++)
	{
		const PgColumn *col = &rel->cols[rel->match[k]];

		if (k > 0)
			buf_add(b, " AND ");
		buf_ident(b, col->dst_name);
		if (!rel->match_all)
			buf_printf(b, " = $%d", first + k);
		else if (col->has_eq)
			buf_printf(b, " IS NOT DISTINCT FROM $%d", first + k);
		else
			buf_printf(b, "::text IS NOT DISTINCT FROM $%d::text", first + k);
	}
	if (rel->match_all)
		buf_add(b, " LIMIT 1)");
}

/* INSERT of the columns in mask (NULL: all) */
static void
sql_insert(Buf *b, const PgRel *rel, const bool *mask)
{
	int			n = 0;

	buf_reset(b);
	buf_add(b, "INSERT INTO ");
	buf_add(b, rel->qname);
	buf_add(b, " (");
	for (int i = 0; i < rel->ncols; i++)
	{
		if (mask && !mask[i])
			continue;
		if (n++ > 0)
			buf_add(b, ", ");
		buf_ident(b, rel->cols[i].dst_name);
	}
	buf_add(b, ") VALUES (");
	for (int i = 1; i <= n; i++)
		buf_printf(b, "%s$%d", i > 1 ? ", " : "", i);
	buf_add(b, ")");
}

static bool
sig_has(const uint64_t *sig, int i)
{
	return (sig[i / 64] >> (i % 64)) & 1;
}

/* UPDATE of the columns in sig, matched by the WHERE parameters after */
static void
sql_update(Buf *b, const PgRel *rel, const uint64_t *sig)
{
	int			n = 0;

	buf_reset(b);
	buf_add(b, "UPDATE ");
	buf_add(b, rel->qname);
	buf_add(b, " SET ");
	for (int i = 0; i < rel->ncols; i++)
	{
		if (!sig_has(sig, i))
			continue;
		if (n++ > 0)
			buf_add(b, ", ");
		buf_ident(b, rel->cols[i].dst_name);
		buf_printf(b, " = $%d", n);
	}
	sql_where(b, rel, n + 1);
}

static void
sql_delete(Buf *b, const PgRel *rel)
{
	buf_reset(b);
	buf_add(b, "DELETE FROM ");
	buf_add(b, rel->qname);
	sql_where(b, rel, 1);
}

/* An array image of a user-defined element type gets the destination's. */
static void
patch_value(const PgColumn *col, PgVal *v)
{
	if (col->patch_elem && v->len >= 12)
	{
		/* ndim, flags, element type OID */
		v->data[8] = (char) (col->patch_elem >> 24);
		v->data[9] = (char) (col->patch_elem >> 16);
		v->data[10] = (char) (col->patch_elem >> 8);
		v->data[11] = (char) col->patch_elem;
	}
}

/* Adds the parameter of column i with value v. */
static void
add_value(Params *p, const PgRel *rel, int i, PgVal *v)
{
	const PgColumn *col = &rel->cols[i];

	if (v->status != DTS_VALUE_PRESENT)
	{
		params_add(p, col->param_type, NULL, 0, col->param_format,
				   col->dst_name);
		return;
	}
	patch_value(col, v);
	params_add(p, col->param_type, v->data, v->len, col->param_format,
			   col->dst_name);
}

/* The tuple the WHERE of an UPDATE or DELETE takes its values from */
static PgVal *
where_tuple(const PgChange *chg)
{
	if (chg->rel->match_all)
		return chg->old_kind == DTS_OLD_FULL ? chg->oldv : NULL;
	if (chg->old_kind == DTS_OLD_KEY || chg->old_kind == DTS_OLD_FULL)
		return chg->oldv;
	return chg->kind == DTS_FRAME_UPDATE ? chg->newv : NULL;
}

/* Adds the WHERE parameters from tuple t; false if a value is missing. */
static bool
add_where(Params *p, const PgRel *rel, PgVal *t)
{
	if (t == NULL || rel->nmatch == 0)
		return false;
	for (int k = 0; k < rel->nmatch; k++)
	{
		PgVal	   *v = &t[rel->match[k]];

		if (v->status != DTS_VALUE_PRESENT && v->status != DTS_VALUE_NULL)
			return false;
		add_value(p, rel, rel->match[k], v);
	}
	return true;
}

/* The set of present (or NULL) columns of a new tuple, into ps->sigbuf */
static uint64_t *
tuple_sig(PgSink *ps, const PgRel *rel, const PgVal *t)
{
	if (ps->sigcap < rel->sigwords)
	{
		ps->sigcap = rel->sigwords;
		ps->sigbuf = dts_realloc(ps->sigbuf, sizeof(uint64_t) * ps->sigcap);
	}
	memset(ps->sigbuf, 0, sizeof(uint64_t) * rel->sigwords);
	for (int i = 0; i < rel->ncols; i++)
		if (t[i].status == DTS_VALUE_PRESENT || t[i].status == DTS_VALUE_NULL)
			ps->sigbuf[i / 64] |= UINT64_C(1) << (i % 64);
	return ps->sigbuf;
}

static UpdateStmt *
find_update(PgSink *ps, PgRel *rel, const uint64_t *sig)
{
	UpdateStmt *u;

	for (u = rel->updates; u; u = u->next)
		if (memcmp(u->sig, sig, sizeof(uint64_t) * rel->sigwords) == 0)
			return u;
	u = dts_realloc(NULL, sizeof(UpdateStmt));
	u->sig = dts_realloc(NULL, sizeof(uint64_t) * rel->sigwords);
	memcpy(u->sig, sig, sizeof(uint64_t) * rel->sigwords);
	u->state = STMT_NONE;
	snprintf(u->name, sizeof(u->name), "dts_%d_u%d", rel->id, ++rel->nupdates);
	memset(&u->stage, 0, sizeof(u->stage));
	snprintf(u->stage.name, sizeof(u->stage.name), "dts_stage_%d_u%d",
			 rel->id, rel->nupdates);
	u->next = rel->updates;
	rel->updates = u;
	(void) ps;
	return u;
}

/* An UPDATE or DELETE the sink cannot place: no key, no old row. */
static int
no_key_error(PgSink *ps, const PgChange *chg, DtsError *err)
{
	(void) ps;
	dts_error_set(err, DTS_ERROR_FATAL,
				  "cannot apply %s of source table \"%s\".\"%s\" (source transaction %u): the table has no primary key or replica identity index and is not REPLICA IDENTITY FULL, so the row cannot be found",
				  kind_word(chg->kind), chg->rel->schema, chg->rel->table,
				  chg->txn->xid);
	dts_error_hint(err, "Run ALTER TABLE ... REPLICA IDENTITY FULL (or add a primary key) on the source table, then resynchronize it.");
	return -1;
}

/* TRUNCATE text of a change; false if none of its tables is applied */
static bool
sql_truncate(Buf *b, const PgChange *chg)
{
	int			n = 0;

	buf_reset(b);
	buf_add(b, "TRUNCATE ");
	for (int i = 0; i < chg->ntrunc; i++)
	{
		const PgRel *r = chg->trunc[i];

		if (r->skip || !(r->dml & DTS_DML_TRUNCATE))
			continue;
		buf_add(b, n++ > 0 ? ", " : "");
		if (!r->partitioned)
			buf_add(b, "ONLY ");
		buf_add(b, r->qname);
	}
	if (chg->flags & DTS_TRUNCATE_RESTART_SEQS)
		buf_add(b, " RESTART IDENTITY");
	if (chg->flags & DTS_TRUNCATE_CASCADE)
		buf_add(b, " CASCADE");
	return n > 0;
}

/* ----------------------------------------------------------------
 *		Fast path: pipelined statements
 * ----------------------------------------------------------------
 */

/* Resolves rel inside the pipeline (waits for the catalog query). */
static int
resolve_pipelined(PgSink *ps, PgRel *rel, DtsError *err)
{
	const char *values[2] = {rel->dst_schema, rel->dst_table};
	PGresult   *res;
	int			rc;

	if (!PQsendQueryParams(ps->conn, RESOLVE_SQL, 2, NULL, values, NULL, NULL,
						   0))
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	pend_push(ps, PEND_CATALOG, NULL, NULL);
	if (pend_wait(ps, 0, err) != 0)
		return -1;
	res = ps->catalog_res;
	ps->catalog_res = NULL;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		/* aborted by an earlier failure: the careful replay resolves */
		PQclear(res);
		set_anomaly(ps, "catalog query failed");
		return 0;
	}
	rc = apply_resolution(ps, rel, res, err);
	PQclear(res);
	return rc;
}

static int
resolve_sync(PgSink *ps, PgRel *rel, DtsError *err)
{
	const char *values[2] = {rel->dst_schema, rel->dst_table};
	PGresult   *res;
	int			rc;
	char		msg[400];

	if (rel->resolved)
		return 0;
	res = PQexecParams(ps->conn, RESOLVE_SQL, 2, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		dts_error_set(err, error_class(ps, res),
					  "could not look up table %s at the destination: %s",
					  rel->qname, result_message(ps, res, msg, sizeof(msg)));
		PQclear(res);
		return -1;
	}
	rc = apply_resolution(ps, rel, res, err);
	PQclear(res);
	return rc;
}

/* Prepares a statement in the pipeline if it is not yet. */
static int
ensure_prepared(PgSink *ps, int *state, const char *name, const Params *p,
				DtsError *err)
{
	if (*state != STMT_NONE)
		return 0;
	if (!PQsendPrepare(ps->conn, name, ps->sql.data, p->n, p->types))
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	*state = STMT_SENT;
	pend_push(ps, PEND_PREPARE, state, NULL);
	return 0;
}

/* Sends one change as a prepared statement into the pipeline. */
static int
send_prepared(PgSink *ps, PgChange *chg, DtsError *err)
{
	PgRel	   *rel = chg->rel;
	Params	   *p = &ps->params;
	const char *name;
	int		   *state;

	params_reset(p);
	if (chg->kind == DTS_FRAME_INSERT)
	{
		for (int i = 0; i < rel->ncols; i++)
			add_value(p, rel, i, &chg->newv[i]);
		name = rel->ins_name;
		state = &rel->ins_state;
		if (*state == STMT_NONE)
			sql_insert(&ps->sql, rel, NULL);
	}
	else if (chg->kind == DTS_FRAME_UPDATE)
	{
		uint64_t   *sig = tuple_sig(ps, rel, chg->newv);
		UpdateStmt *u;

		for (int i = 0; i < rel->ncols; i++)
			if (sig_has(sig, i))
				add_value(p, rel, i, &chg->newv[i]);
		if (p->n == 0)
			return 0;			/* nothing but unchanged values: no-op */
		u = find_update(ps, rel, sig);
		if (!add_where(p, rel, where_tuple(chg)))
			return no_key_error(ps, chg, err);
		name = u->name;
		state = &u->state;
		if (*state == STMT_NONE)
			sql_update(&ps->sql, rel, u->sig);
	}
	else
	{
		if (!add_where(p, rel, where_tuple(chg)))
			return no_key_error(ps, chg, err);
		name = rel->del_name;
		state = &rel->del_state;
		if (*state == STMT_NONE)
			sql_delete(&ps->sql, rel);
	}
	if (ensure_prepared(ps, state, name, p, err) != 0)
		return -1;
	if (!PQsendQueryPrepared(ps->conn, name, p->n, p->values, p->lengths,
							 p->formats, 0))
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	pend_push(ps, PEND_CHANGE, NULL, chg);
	if (ps->pend_count >= PIPELINE_WINDOW)
		return pend_wait(ps, PIPELINE_WINDOW / 2, err);
	return 0;
}

static void
put_be32(Buf *b, uint32_t v)
{
	buf_reserve(b, 4);
	b->data[b->len++] = (char) (v >> 24);
	b->data[b->len++] = (char) (v >> 16);
	b->data[b->len++] = (char) (v >> 8);
	b->data[b->len++] = (char) v;
}

/*
 * Leaves pipeline mode for a COPY (which cannot be pipelined), in the same
 * destination transaction: a sync, every result read.  *paused is false if
 * the batch turned out marked (it is replayed anyway): still pipelined.
 */
static int
pipeline_pause(PgSink *ps, bool *paused, DtsError *err)
{
	*paused = false;
	if (pipe_sync(ps, err) != 0 || pend_wait(ps, 0, err) != 0)
		return -1;
	if (ps->anomaly)
		return 0;
	if (PQexitPipelineMode(ps->conn) != 1)
		return dts_error_set(err, DTS_ERROR_OTHER,
							 "could not leave pipeline mode on the destination: %s",
							 PQerrorMessage(ps->conn));
	ps->pipeline = false;
	*paused = true;
	return 0;
}

static int
pipeline_resume(PgSink *ps, DtsError *err)
{
	if (PQenterPipelineMode(ps->conn) != 1)
		return dts_error_set(err, DTS_ERROR_OTHER,
							 "could not enter pipeline mode on the destination connection: %s",
							 PQerrorMessage(ps->conn));
	ps->pipeline = true;
	return 0;
}

/* The tuple a run entry takes its values from (keys included) */
static PgVal *
run_tuple(const PgChange *chg)
{
	return chg->kind == DTS_FRAME_DELETE ? where_tuple(chg) : chg->newv;
}

#define SET_JOIN_SQL \
	"SELECT set_config('enable_hashjoin', 'off', true), " \
	"set_config('enable_mergejoin', 'off', true)"

/*
 * The columns of an update or delete run's stage, into cols[]: the key
 * columns, then (updates) the other SET columns.  Returns their number.
 */
static int
stage_columns(const PgSink *ps, int *cols)
{
	const PgRel *rel = ps->run_rel;
	int			n = 0;

	for (int k = 0; k < rel->nmatch; k++)
		cols[n++] = rel->match[k];
	if (ps->run_kind == DTS_FRAME_UPDATE)
		for (int i = 0; i < rel->ncols; i++)
			if (sig_has(ps->run_upd->sig, i) && !rel->cols[i].key)
				cols[n++] = i;
	return n;
}

/* The stage an update or delete run is copied into */
static Stage *
run_stage(PgSink *ps)
{
	return ps->run_kind == DTS_FRAME_UPDATE ? &ps->run_upd->stage :
		&ps->run_rel->del_stage;
}

/*
 * Sends the COPY data gathered so far; while the destination's socket is
 * full, the source reads ahead.
 */
static int
copy_send(PgSink *ps, DtsError *err)
{
	if (ps->copybuf.len > 0)
		(void) dest_wait(ps, true);
	if (ps->copybuf.len > 0 &&
		PQputCopyData(ps->conn, ps->copybuf.data, (int) ps->copybuf.len) != 1)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	ps->copybuf.len = 0;
	return 0;
}

/*
 * Appends one run entry to the open COPY (FORMAT binary): the columns
 * copy_cols[] of its run_tuple().  The data goes out in chunks, so the
 * destination stores rows while the shipper decodes the next ones.
 */
static int
copy_put_row(PgSink *ps, PgChange *chg, DtsError *err)
{
	PgRel	   *rel = chg->rel;
	Buf		   *b = &ps->copybuf;
	PgVal	   *vals = run_tuple(chg);
	int			ncols = ps->copy_ncols;

	buf_reserve(b, 2);
	b->data[b->len++] = (char) (ncols >> 8);
	b->data[b->len++] = (char) ncols;
	for (int c = 0; c < ncols; c++)
	{
		int			i = ps->copy_cols[c];
		PgVal	   *v = &vals[i];

		if (v->status != DTS_VALUE_PRESENT)
		{
			put_be32(b, UINT32_MAX);	/* -1: NULL */
			continue;
		}
		patch_value(&rel->cols[i], v);
		put_be32(b, (uint32_t) v->len);
		buf_reserve(b, (size_t) v->len);
		memcpy(b->data + b->len, v->data, (size_t) v->len);
		b->len += (size_t) v->len;
	}
	return b->len >= COPY_CHUNK ? copy_send(ps, err) : 0;
}

/*
 * Makes the stage of an update or delete run ready for a COPY: created
 * once per session (from the table's columns, so with the destination's
 * types), emptied if used already in this destination transaction.
 * False (the batch marked) if that failed.
 */
static bool
stage_ready(PgSink *ps, Stage *st, const char *stq)
{
	PgRel	   *rel = ps->run_rel;
	Buf			sql = {0};
	PGresult   *res;
	char		msg[400];
	bool		ok = true;

	buf_reset(&sql);
	if (st->state == STMT_NONE)
	{
		buf_printf(&sql, "DROP TABLE IF EXISTS %s; CREATE TEMP TABLE ", stq);
		buf_ident(&sql, st->name);
		buf_add(&sql, " ON COMMIT DELETE ROWS AS SELECT ");
		for (int c = 0; c < ps->copy_ncols; c++)
		{
			buf_add(&sql, c > 0 ? ", " : "");
			buf_ident(&sql, rel->cols[ps->copy_cols[c]].dst_name);
		}
		buf_printf(&sql, " FROM %s WITH NO DATA", rel->qname);
	}
	else if (st->filled_gen == ps->dest_gen)
		buf_printf(&sql, "TRUNCATE %s", stq);
	if (sql.len > 0)
	{
		res = PQexec(ps->conn, sql.data);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			set_anomaly(ps, "could not prepare the stage of a run of %ss: %s",
						kind_word(ps->run_kind),
						result_message(ps, res, msg, sizeof(msg)));
			st->state = STMT_NONE;
			ok = false;
		}
		else if (st->state == STMT_NONE)
		{
			st->state = STMT_SENT;	/* exists once this transaction commits */
			if (ps->nstage_new == ps->stage_new_cap)
			{
				ps->stage_new_cap = ps->stage_new_cap ? ps->stage_new_cap * 2 : 16;
				ps->stage_new = dts_realloc(ps->stage_new,
											sizeof(Stage *) * ps->stage_new_cap);
			}
			ps->stage_new[ps->nstage_new++] = st;
		}
		PQclear(res);
	}
	st->filled_gen = ps->dest_gen;
	free(sql.data);
	return ok;
}

/*
 * The run has become long enough: leaves pipeline mode and opens its
 * COPY ... FROM STDIN (FORMAT binary), into the table (inserts) or into
 * the run's stage (updates, deletes), and sends the entries held so far.
 * From now on each new entry of the run goes straight into the COPY.  If
 * the COPY cannot begin, the batch is marked (and the run dropped).
 */
static int
copy_start(PgSink *ps, DtsError *err)
{
	PgRel	   *rel = ps->run_rel;
	Buf			sql = {0};
	Buf			stq = {0};
	PGresult   *res;
	char		msg[400];
	bool		paused;
	int			rc = 0;
	static const char header[] = "PGCOPY\n\377\r\n";

	if (pipeline_pause(ps, &paused, err) != 0)
		return -1;
	if (!paused)
	{
		run_clear(ps);			/* the batch is marked: replayed anyway */
		return 0;
	}
	if (ps->copy_cols_cap < rel->ncols + rel->nmatch + 1)
	{
		ps->copy_cols_cap = rel->ncols + rel->nmatch + 1;
		ps->copy_cols = dts_realloc(ps->copy_cols,
									sizeof(int) * ps->copy_cols_cap);
	}
	buf_reset(&sql);
	if (ps->run_kind == DTS_FRAME_INSERT)
	{
		ps->copy_ncols = rel->ncols;
		buf_printf(&sql, "COPY %s (", rel->qname);
		for (int i = 0; i < rel->ncols; i++)
		{
			buf_add(&sql, i > 0 ? ", " : "");
			buf_ident(&sql, rel->cols[i].dst_name);
			ps->copy_cols[i] = i;
		}
		buf_add(&sql, ") FROM STDIN (FORMAT binary)");
	}
	else
	{
		Stage	   *st = run_stage(ps);

		ps->copy_ncols = stage_columns(ps, ps->copy_cols);
		buf_reset(&stq);
		buf_add(&stq, "pg_temp.");
		buf_ident(&stq, st->name);
		if (!stage_ready(ps, st, stq.data))
			goto resume;
		buf_printf(&sql, "COPY %s FROM STDIN (FORMAT binary)", stq.data);
	}
	res = PQexec(ps->conn, sql.data);
	if (PQresultStatus(res) != PGRES_COPY_IN)
	{
		set_anomaly(ps, "COPY failed: %s",
					result_message(ps, res, msg, sizeof(msg)));
		if (ps->run_kind != DTS_FRAME_INSERT)
			run_stage(ps)->state = STMT_NONE;
		PQclear(res);
		goto resume;
	}
	PQclear(res);
	ps->copying = true;
	buf_reserve(&ps->copybuf, 19);
	memcpy(ps->copybuf.data, header, 11);
	memset(ps->copybuf.data + 11, 0, 8);	/* flags, header extension */
	ps->copybuf.len = 19;
	for (int r = 0; r < ps->run_len && rc == 0; r++)
		rc = copy_put_row(ps, ps->run[r], err);
	ps->run_len = 0;
	free(sql.data);
	free(stq.data);
	return rc;

resume:
	free(sql.data);
	free(stq.data);
	run_clear(ps);
	return pipeline_resume(ps, err);
}

/*
 * Ends the run's COPY (it must have stored every row of the run, else the
 * batch is marked) and goes back to pipeline mode.  An update or delete
 * run is then applied from its stage by one statement in the pipeline, an
 * UPDATE ... FROM or DELETE ... USING that must hit exactly one row for
 * each staged row (PEND_SETOP checks: as many rows changed as staged,
 * each staged row matched), else the batch is marked and replayed
 * carefully as after any per-row surprise.  The keys of a run are
 * distinct, so the result is the sequential one.
 */
static int
copy_finish(PgSink *ps, DtsError *err)
{
	PgRel	   *rel = ps->run_rel;
	bool		upd = ps->run_kind == DTS_FRAME_UPDATE;
	PGresult   *res;
	char		msg[400];
	Buf			sql = {0};
	Pending    *pend;
	int			rc = 0;

	ps->copying = false;
	buf_reserve(&ps->copybuf, 2);
	ps->copybuf.data[ps->copybuf.len++] = (char) 0xFF;	/* trailer: -1 */
	ps->copybuf.data[ps->copybuf.len++] = (char) 0xFF;
	if (copy_send(ps, err) != 0 || PQputCopyEnd(ps->conn, NULL) != 1)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	while ((res = get_result(ps)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			set_anomaly(ps, "COPY of a run of %ld %ss failed: %s",
						ps->run_count, kind_word(ps->run_kind),
						result_message(ps, res, msg, sizeof(msg)));
		else if (strtol(PQcmdTuples(res), NULL, 10) != ps->run_count)
			set_anomaly(ps, "COPY stored %s of %ld rows", PQcmdTuples(res),
						ps->run_count);
		PQclear(res);
	}
	if (PQstatus(ps->conn) != CONNECTION_OK)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "lost the connection to the destination: %s",
							 PQerrorMessage(ps->conn));
	if (pipeline_resume(ps, err) != 0)
		return -1;
	if (ps->run_kind == DTS_FRAME_INSERT)
		return 0;
	if (ps->anomaly)
	{
		run_stage(ps)->state = STMT_NONE;
		return 0;
	}

	buf_reset(&sql);
	buf_add(&sql, "WITH dts_run AS (");
	if (upd)
	{
		buf_printf(&sql, "UPDATE %s AS dts_d SET ", rel->qname);
		for (int c = rel->nmatch; c < ps->copy_ncols; c++)
		{
			const char *name = rel->cols[ps->copy_cols[c]].dst_name;

			buf_add(&sql, c > rel->nmatch ? ", " : "");
			buf_ident(&sql, name);
			buf_add(&sql, " = dts_s.");
			buf_ident(&sql, name);
		}
		buf_add(&sql, " FROM pg_temp.");
	}
	else
		buf_printf(&sql, "DELETE FROM %s AS dts_d USING pg_temp.", rel->qname);
	buf_ident(&sql, run_stage(ps)->name);
	buf_add(&sql, " AS dts_s WHERE ");
	for (int k = 0; k < rel->nmatch; k++)
	{
		const char *name = rel->cols[ps->copy_cols[k]].dst_name;

		buf_add(&sql, k > 0 ? " AND dts_d." : "dts_d.");
		buf_ident(&sql, name);
		buf_add(&sql, " = dts_s.");
		buf_ident(&sql, name);
	}
	buf_add(&sql, " RETURNING dts_s.ctid AS dts_row) "
			"SELECT count(*), count(DISTINCT dts_row) FROM dts_run");

	/*
	 * One index probe per staged row, as the per-row statements and native
	 * replication do: a hash or merge join would read the whole table (the
	 * planner knows nothing of the stage).
	 */
	if (pipe_send(ps, SET_JOIN_SQL, NULL, PEND_OTHER, NULL, NULL, err) != 0)
		rc = -1;
	else if (!PQsendQueryParams(ps->conn, sql.data, 0, NULL, NULL, NULL, NULL, 0))
		rc = dts_error_set(err, DTS_ERROR_CONNECT,
						   "could not send to the destination: %s",
						   PQerrorMessage(ps->conn));
	else
	{
		pend = pend_push(ps, PEND_SETOP, &run_stage(ps)->state, NULL);
		pend->chg_kind = ps->run_kind;
		pend->expect = ps->run_count;
		if (pipe_send(ps, "RESET enable_hashjoin", NULL, PEND_OTHER, NULL,
					  NULL, err) != 0 ||
			pipe_send(ps, "RESET enable_mergejoin", NULL, PEND_OTHER, NULL,
					  NULL, err) != 0)
			rc = -1;
		/* its results as soon as they are ready (see pend_busy()) */
		else if (PQsendFlushRequest(ps->conn) != 1 || PQflush(ps->conn) != 0)
			rc = dts_error_set(err, DTS_ERROR_CONNECT,
							   "could not send to the destination: %s",
							   PQerrorMessage(ps->conn));
		else
			ps->pend_unflushed = false;
	}
	free(sql.data);
	return rc;
}

/*
 * The run's COPY is given up (the destination transaction is rolled back
 * next): best effort, the connection may be gone.
 */
static void
copy_abort(PgSink *ps)
{
	PGresult   *res;

	if (!ps->copying)
		return;
	ps->copying = false;
	ps->copybuf.len = 0;
	if (ps->conn == NULL)
		return;
	if (PQputCopyEnd(ps->conn, "the batch is rolled back") == 1)
		while ((res = PQgetResult(ps->conn)) != NULL)
			PQclear(res);
}

/* The length from which a run goes by COPY */
static int
run_min(const PgSink *ps)
{
	return ps->run_kind == DTS_FRAME_INSERT ? COPY_MIN_ROWS : SET_MIN_ROWS;
}

/*
 * Sends the run: ends its COPY (set-based) if it got one or is long
 * enough for one (held while the destination was busy), else sends its
 * entries one by one.
 */
static int
flush_run(PgSink *ps, DtsError *err)
{
	int			rc = 0;

	if (!ps->copying && !ps->anomaly && ps->run_len >= run_min(ps))
		rc = copy_start(ps, err);
	if (rc != 0)
		;
	else if (ps->copying)
		rc = copy_finish(ps, err);
	else
		for (int i = 0; i < ps->run_len && rc == 0 && !ps->anomaly; i++)
			rc = send_prepared(ps, ps->run[i], err);
	run_clear(ps);
	return rc;
}

/* 64-bit FNV-1a of a tuple's key images; never 0 (a free slot). */
static uint64_t
key_hash(const PgRel *rel, const PgVal *t)
{
	uint64_t	h = UINT64_C(14695981039346656037);

	for (int k = 0; k < rel->nmatch; k++)
	{
		const PgVal *v = &t[rel->match[k]];

		for (int j = 0; j < v->len; j++)
			h = (h ^ (uint8_t) v->data[j]) * UINT64_C(1099511628211);
		h = (h ^ (uint32_t) v->len) * UINT64_C(1099511628211);
	}
	return h | 1;
}

/*
 * Notes the key of chg in the run's key set; false if it is there already
 * (or only its hash: a run then merely ends a little early).  Entries are
 * not kept once they are in the COPY, so only the hashes are.
 */
static bool
run_key_add(PgSink *ps, const PgChange *chg)
{
	uint64_t	h = key_hash(chg->rel, run_tuple(chg));
	int			mask;
	int			at;

	if ((ps->run_nslots + 1) * 2 > ps->run_hcap)
	{
		int			ncap = ps->run_hcap ? ps->run_hcap * 2 : 256;
		uint64_t   *old = ps->run_htab;
		int			ocap = ps->run_hcap;

		ps->run_htab = dts_realloc(NULL, sizeof(uint64_t) * ncap);
		memset(ps->run_htab, 0, sizeof(uint64_t) * ncap);
		ps->run_slot = dts_realloc(ps->run_slot, sizeof(int) * (ncap / 2));
		ps->run_hcap = ncap;
		ps->run_nslots = 0;
		for (int i = 0; i < ocap; i++)
		{
			if (old[i] == 0)
				continue;
			at = (int) (old[i] & (uint64_t) (ncap - 1));
			while (ps->run_htab[at] != 0)
				at = (at + 1) & (ncap - 1);
			ps->run_htab[at] = old[i];
			ps->run_slot[ps->run_nslots++] = at;
		}
		free(old);
	}
	mask = ps->run_hcap - 1;
	at = (int) (h & (uint64_t) mask);
	while (ps->run_htab[at] != 0)
	{
		if (ps->run_htab[at] == h)
			return false;
		at = (at + 1) & mask;
	}
	ps->run_htab[at] = h;
	ps->run_slot[ps->run_nslots++] = at;
	return true;
}

/*
 * Can this update or delete join a set-based run?  Its table has a real
 * key (set_ok), the key is known and present, an update keeps it (the old
 * key, if sent, is the new one) and sets something besides it.  *up: the
 * update's SET columns.
 */
static bool
runnable(PgSink *ps, PgChange *chg, UpdateStmt **up)
{
	PgRel	   *rel = chg->rel;
	PgVal	   *w = where_tuple(chg);
	uint64_t   *sig;
	bool		other = false;

	*up = NULL;
	if (!rel->set_ok || w == NULL)
		return false;
	for (int k = 0; k < rel->nmatch; k++)
	{
		const PgVal *a = &w[rel->match[k]];
		const PgVal *b;

		if (a->status != DTS_VALUE_PRESENT)
			return false;
		if (chg->kind != DTS_FRAME_UPDATE || w == chg->newv)
			continue;
		b = &chg->newv[rel->match[k]];
		if (b->status != DTS_VALUE_PRESENT || a->len != b->len ||
			memcmp(a->data, b->data, (size_t) a->len) != 0)
			return false;
	}
	if (chg->kind != DTS_FRAME_UPDATE)
		return true;
	sig = tuple_sig(ps, rel, chg->newv);
	for (int i = 0; i < rel->ncols && !other; i++)
		other = sig_has(sig, i) && !rel->cols[i].key;
	if (!other)
		return false;
	/* key columns must be in the SET (present in the new tuple): they are */
	*up = find_update(ps, rel, sig);
	return true;
}

/*
 * Adds chg to the run (the caller has checked that it belongs; run_upd is
 * set for updates): held until the run is long enough for a COPY, then
 * into the COPY.  A run of COPY_MAX_ROWS ends.
 */
static int
run_add(PgSink *ps, PgChange *chg, DtsError *err)
{
	int			rc = 0;
	int			min;

	ps->run_rel = chg->rel;
	ps->run_kind = chg->kind;
	min = run_min(ps);
	ps->run_count++;
	if (ps->copying)
		rc = copy_put_row(ps, chg, err);
	else
	{
		if (ps->run_len == ps->run_cap)
		{
			ps->run_cap = ps->run_cap ? ps->run_cap * 2 : 128;
			ps->run = dts_realloc(ps->run, sizeof(PgChange *) * ps->run_cap);
		}
		ps->run[ps->run_len++] = chg;
		/*
		 * Long enough for a COPY; but while the destination still works
		 * on earlier statements (a set-based run's), the COPY would wait
		 * for them: hold on and read more changes meanwhile.
		 */
		if (ps->run_len >= min &&
			(ps->run_len >= (ps->transient ? min : RUN_HOLD_MAX) ||
			 ((ps->run_len - min) % HOLD_CHECK_EVERY == 0 &&
			  !pend_busy(ps, &rc, err))))
			rc = rc != 0 ? rc : copy_start(ps, err);
	}
	if (rc == 0 && ps->run_count >= COPY_MAX_ROWS)
		rc = flush_run(ps, err);
	return rc;
}

/*
 * Sends one change (nothing once the batch is marked).  Inserts into a
 * table that COPY can take, and updates and deletes that can go
 * set-based, join a run; anything else sends the run first.  An update
 * or delete whose key is in the run already ends the run before it.
 */
static int
send_change(PgSink *ps, PgChange *chg, DtsError *err)
{
	PgRel	   *rel = chg->rel;
	UpdateStmt *up;

	if (ps->anomaly)
		return 0;
	if (chg->kind == DTS_FRAME_TRUNCATE)
	{
		if (flush_run(ps, err) != 0)
			return -1;
		for (int i = 0; i < chg->ntrunc; i++)
			if (!chg->trunc[i]->skip && !chg->trunc[i]->resolved &&
				resolve_pipelined(ps, chg->trunc[i], err) != 0)
				return -1;
		if (ps->anomaly || !sql_truncate(&ps->sql, chg))
			return 0;
		return pipe_send(ps, ps->sql.data, NULL, PEND_CHANGE, NULL, chg, err);
	}
	if (!rel->resolved)
	{
		/* the catalog query needs the pipeline: no COPY open */
		if (flush_run(ps, err) != 0)
			return -1;
		if (ps->anomaly)
			return 0;
		if (resolve_pipelined(ps, rel, err) != 0)
			return -1;
		if (ps->anomaly)
			return 0;
	}
	if (chg->kind == DTS_FRAME_INSERT && rel->copy_ok)
	{
		if ((ps->run_rel != rel || ps->run_kind != DTS_FRAME_INSERT) &&
			flush_run(ps, err) != 0)
			return -1;
		if (ps->anomaly)
			return 0;
		return run_add(ps, chg, err);
	}
	if (chg->kind != DTS_FRAME_INSERT && runnable(ps, chg, &up))
	{
		if ((ps->run_rel != rel || ps->run_kind != chg->kind ||
			 ps->run_upd != up) && flush_run(ps, err) != 0)
			return -1;
		if (!ps->anomaly && !run_key_add(ps, chg))
		{
			/* the key again: the run before it goes first */
			if (flush_run(ps, err) != 0)
				return -1;
			run_key_add(ps, chg);
		}
		if (ps->anomaly)
			return 0;
		ps->run_upd = up;
		return run_add(ps, chg, err);
	}
	if (flush_run(ps, err) != 0)
		return -1;
	if (ps->anomaly)
		return 0;
	return send_prepared(ps, chg, err);
}

/* Opens the destination transaction of a batch (pipeline, BEGIN). */
static int
begin_dest(PgSink *ps, DtsError *err)
{
	if (ps->dest_open)
		return 0;
	if (connect_dest(ps, err) != 0)
		return -1;
	if (!ps->pipeline)
	{
		if (PQenterPipelineMode(ps->conn) != 1)
			return dts_error_set(err, DTS_ERROR_OTHER,
								 "could not enter pipeline mode on the destination connection: %s",
								 PQerrorMessage(ps->conn));
		ps->pipeline = true;
	}
	ps->anomaly = false;
	ps->anomaly_msg[0] = '\0';
	ps->dest_open = true;
	ps->dest_gen++;
	ps->batch_start_us = dts_now_us();
	return pipe_send(ps, "BEGIN", NULL, PEND_OTHER, NULL, NULL, err);
}

/* Parameters of the progress upsert and of the origin's xact setup */
typedef struct ProgressParams
{
	char		lsn[DTS_LSN_BUFSIZE];
	char		time_image[8];
	Params		p;
} ProgressParams;

#define ORIGIN_SETUP_SQL \
	"SELECT pg_replication_origin_xact_setup($1::text::pg_lsn, $2)"
#define PROGRESS_SQL \
	"INSERT INTO dts.apply_progress AS p (task, lsn, commit_time) " \
	"VALUES ($3, $1::text::pg_lsn, $2) ON CONFLICT (task) DO UPDATE " \
	"SET lsn = EXCLUDED.lsn, commit_time = EXCLUDED.commit_time, applied_at = now()"

static void
progress_params(PgSink *ps, ProgressParams *pp, const PgTxnRec *t)
{
	dts_lsn_str(t->end_lsn, pp->lsn);
	put_be64(pp->time_image, (uint64_t) t->commit_time);
	memset(&pp->p, 0, sizeof(pp->p));
	params_add(&pp->p, TEXTOID_, pp->lsn, 0, 0, NULL);
	params_add(&pp->p, TIMESTAMPTZOID_, pp->time_image, 8, 1, NULL);
	params_add(&pp->p, TEXTOID_, ps->task_name, 0, 0, NULL);
}

static void
progress_params_free(ProgressParams *pp)
{
	free(pp->p.values);
	free(pp->p.lengths);
	free(pp->p.formats);
	free(pp->p.types);
	free(pp->p.names);
}

/* lsn is committed at the destination, its WAL maybe not yet flushed. */
static void
note_committed(PgSink *ps, uint64_t lsn)
{
	if (lsn <= ps->committed_lsn)
		return;
	if (ps->committed_lsn <= ps->durable_lsn)
		ps->committed_at_us = dts_now_us();
	ps->committed_lsn = lsn;
}

/* Everything committed up to lsn is flushed at the destination. */
static void
note_durable(PgSink *ps, uint64_t lsn)
{
	if (lsn > ps->committed_lsn)
		ps->committed_lsn = lsn;
	if (lsn > ps->durable_lsn)
		ps->durable_lsn = lsn;
}

/* Forgets the batch (after its commit or rollback). */
static void
reset_batch(PgSink *ps)
{
	arena_reset(&ps->arena);
	arena_reset(&ps->scratch);
	if (ps->spill)
		fclose(ps->spill);
	ps->spill = NULL;
	ps->spilling = false;
	ps->first_txn = ps->last_txn = NULL;
	ps->ntxns = 0;
	ps->nrows = 0;
	ps->cur = NULL;
	ps->dest_open = false;
	ps->anomaly = false;
	run_clear(ps);
	ps->accepted_lsn = ps->committed_lsn;
}

/*
 * Ends the pipeline: a sync, every result read, then out of pipeline
 * mode.  On failure the connection is dropped (the server rolls back).
 */
static int
end_pipeline(PgSink *ps, DtsError *err)
{
	if (!ps->pipeline)
		return 0;
	if (pipe_sync(ps, err) != 0 || pend_wait(ps, 0, err) != 0 ||
		PQexitPipelineMode(ps->conn) != 1)
	{
		dts_error_set(err, DTS_ERROR_CONNECT,
					  "could not leave pipeline mode on the destination: %s",
					  PQerrorMessage(ps->conn));
		disconnect(ps);
		return -1;
	}
	ps->pipeline = false;
	return 0;
}

/* Rolls the open destination transaction back (best effort). */
static void
abort_dest(PgSink *ps)
{
	DtsError	ignored = {0};

	run_clear(ps);
	stages_settle(ps, false);
	if (ps->conn == NULL)
		return;
	if (ps->pipeline && end_pipeline(ps, &ignored) != 0)
		return;
	if (ps->dest_open || PQtransactionStatus(ps->conn) != PQTRANS_IDLE)
	{
		PGresult   *res = PQexec(ps->conn, "ROLLBACK");

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			disconnect(ps);
		PQclear(res);
	}
	ps->dest_open = false;
}

/* ----------------------------------------------------------------
 *		The spill file: the changes of a batch past batch_memory
 *
 * Records in host byte order (the file never outlives the process):
 * a SpillHead, the TRUNCATE's relation pointers, then the new and the old
 * tuple (nnew / nold values, each: status byte, int32 length, bytes).
 * Pointers to relations and source transactions stay valid: both live
 * until the sink closes or the batch is reset (which drops the file).
 * ----------------------------------------------------------------
 */

typedef struct SpillHead
{
	PgTxnRec   *txn;
	PgRel	   *rel;
	int32_t		seq;
	int32_t		ntrunc;
	int32_t		nnew;			/* values of the new tuple, or -1 */
	int32_t		nold;			/* values of the old tuple, or -1 */
	char		kind;
	char		old_kind;
	uint8_t		flags;
} SpillHead;

static int
spill_error(PgSink *ps, const char *what, DtsError *err)
{
	dts_error_set(err, DTS_ERROR_OTHER,
				  "could not %s the temp file of a source transaction bigger than sink.batch_memory (%zu MB): %s",
				  what, ps->memory_cap / (1024 * 1024),
				  errno ? strerror(errno) : "unexpected end of file");
	dts_error_hint(err, "Set TMPDIR to a directory with room for the largest source transaction, or raise sink.batch_memory.");
	return -1;
}

static void
spill_tuple(FILE *fp, const PgVal *t, int n)
{
	for (int i = 0; i < n; i++)
	{
		int32_t		len = t[i].len;

		fputc(t[i].status, fp);
		fwrite(&len, sizeof(len), 1, fp);
		if (len > 0)
			fwrite(t[i].data, 1, (size_t) len, fp);
	}
}

/* Appends chg to the spill file (made on first use). */
static int
spill_write(PgSink *ps, const PgChange *chg, DtsError *err)
{
	SpillHead	h;

	errno = 0;
	if (ps->spill == NULL)
	{
		ps->spill = dts_temp_file(NULL, "batch", 256 * 1024);
		if (ps->spill == NULL)
			return spill_error(ps, "create", err);
	}
	memset(&h, 0, sizeof(h));
	h.txn = chg->txn;
	h.rel = chg->rel;
	h.seq = chg->seq;
	h.ntrunc = chg->ntrunc;
	h.nnew = chg->newv ? chg->rel->ncols : -1;
	h.nold = chg->oldv ? chg->rel->ncols : -1;
	h.kind = chg->kind;
	h.old_kind = chg->old_kind;
	h.flags = chg->flags;
	fwrite(&h, sizeof(h), 1, ps->spill);
	if (chg->ntrunc > 0)
		fwrite(chg->trunc, sizeof(PgRel *), (size_t) chg->ntrunc, ps->spill);
	if (chg->newv)
		spill_tuple(ps->spill, chg->newv, h.nnew);
	if (chg->oldv)
		spill_tuple(ps->spill, chg->oldv, h.nold);
	if (ferror(ps->spill))
		return spill_error(ps, "write", err);
	return 0;
}

/* Back to the first record, for a replay. */
static int
spill_rewind(PgSink *ps, DtsError *err)
{
	errno = 0;
	if (ps->spill && (fflush(ps->spill) != 0 ||
					  fseeko(ps->spill, 0, SEEK_SET) != 0))
		return spill_error(ps, "rewind", err);
	return 0;
}

static bool
unspill_tuple(PgSink *ps, PgVal **out, int n)
{
	PgVal	   *t;

	if (n < 0)
	{
		*out = NULL;
		return true;
	}
	t = arena_alloc(&ps->scratch, sizeof(PgVal) * ((size_t) n + 1));
	for (int i = 0; i < n; i++)
	{
		int			c = fgetc(ps->spill);
		int32_t		len;

		if (c == EOF || fread(&len, sizeof(len), 1, ps->spill) != 1 || len < 0)
			return false;
		t[i].status = (char) c;
		t[i].len = len;
		t[i].data = arena_alloc(&ps->scratch, (size_t) len + 1);
		if (len > 0 && fread(t[i].data, 1, (size_t) len, ps->spill) != (size_t) len)
			return false;
		t[i].data[len] = '\0';
	}
	*out = t;
	return true;
}

/* Reads the next record into scratch. */
static PgChange *
spill_read(PgSink *ps, DtsError *err)
{
	SpillHead	h;
	PgChange   *chg;

	errno = 0;
	if (ps->spill == NULL || fread(&h, sizeof(h), 1, ps->spill) != 1)
	{
		spill_error(ps, "read", err);
		return NULL;
	}
	chg = arena_alloc(&ps->scratch, sizeof(PgChange));
	memset(chg, 0, sizeof(PgChange));
	chg->txn = h.txn;
	chg->rel = h.rel;
	chg->seq = h.seq;
	chg->kind = h.kind;
	chg->old_kind = h.old_kind;
	chg->flags = h.flags;
	chg->ntrunc = h.ntrunc;
	if (h.ntrunc > 0)
	{
		chg->trunc = arena_alloc(&ps->scratch, sizeof(PgRel *) * (size_t) h.ntrunc);
		if (fread(chg->trunc, sizeof(PgRel *), (size_t) h.ntrunc,
				  ps->spill) != (size_t) h.ntrunc)
		{
			spill_error(ps, "read", err);
			return NULL;
		}
	}
	if (!unspill_tuple(ps, &chg->newv, h.nnew) ||
		!unspill_tuple(ps, &chg->oldv, h.nold))
	{
		spill_error(ps, "read", err);
		return NULL;
	}
	return chg;
}

/* Walks the changes of one source transaction of the batch. */
typedef struct TxnCursor
{
	PgTxnRec   *t;
	PgChange   *pos;			/* last change returned from memory */
	bool		in_file;
	long		nread;			/* of t->nspilled */
} TxnCursor;

/*
 * The next change of cur->t: those kept in memory, then those in the
 * spill file (read in order: the transactions of a batch must be walked
 * in order, after spill_rewind()).  NULL at the end, or with *rc = -1.
 * A change read back lives in scratch until the next call that finds no
 * run entry held (ps->transient tells the caller).
 */
static PgChange *
cursor_next(PgSink *ps, TxnCursor *cur, int *rc, DtsError *err)
{
	PgChange   *next;

	*rc = 0;
	if (ps->run_len == 0)
		arena_clear(&ps->scratch);
	if (!cur->in_file)
	{
		next = cur->pos ? cur->pos->next : cur->t->first;
		if (next != NULL)
		{
			cur->pos = next;
			ps->transient = false;
			return next;
		}
		cur->in_file = true;
	}
	if (cur->nread >= cur->t->nspilled)
		return NULL;
	next = spill_read(ps, err);
	if (next == NULL)
	{
		*rc = -1;
		return NULL;
	}
	cur->nread++;
	ps->transient = true;
	return next;
}

static int	replay_careful(PgSink *ps, DtsError *err);

/*
 * Commits the batch: progress and origin, then (once every statement is
 * known to have done what it should) COMMIT.  A marked batch is rolled
 * back and replayed carefully instead.
 */
static int
commit_batch(PgSink *ps, DtsError *err)
{
	ProgressParams pp;
	int			commit_state = 0;
	int			rc = 0;

	if (!ps->dest_open)
		return 0;
	if (ps->last_txn == NULL)
	{
		abort_dest(ps);
		reset_batch(ps);
		return 0;
	}
	if (flush_run(ps, err) != 0)
	{
		abort_dest(ps);
		reset_batch(ps);
		return -1;
	}
	progress_params(ps, &pp, ps->last_txn);
	if (!ps->anomaly)
	{
		Params		two = pp.p;

		two.n = 2;
		/*
		 * The batch commits without waiting for its WAL flush; the flush
		 * comes later, for many batches at once (make_durable()), and
		 * only then does durable_lsn move.  A crash of the destination
		 * loses such batches together with their progress row, and the
		 * source, not confirmed past durable_lsn, sends them again.
		 */
		if (pipe_send(ps, "SET LOCAL synchronous_commit TO off", NULL,
					  PEND_OTHER, NULL, NULL, err) != 0 ||
			pipe_send(ps, ORIGIN_SETUP_SQL, &two, PEND_OTHER, NULL, NULL,
					  err) != 0 ||
			pipe_send(ps, PROGRESS_SQL, &pp.p, PEND_OTHER, NULL, NULL,
					  err) != 0 ||
			pipe_sync(ps, err) != 0 ||
			pend_wait(ps, 0, err) != 0)
			goto fail;
	}
	if (!ps->anomaly)
	{
		if (pipe_send(ps, "COMMIT", NULL, PEND_FINAL, &commit_state, NULL,
					  err) != 0 ||
			pipe_sync(ps, err) != 0 ||
			pend_wait(ps, 0, err) != 0)
			goto fail;
		if (commit_state != 1)
		{
			dts_error_set(err, DTS_ERROR_OTHER,
						  "could not commit %d source transactions at the destination: %s",
						  ps->ntxns, ps->final_msg);
			goto fail;
		}
		note_committed(ps, ps->last_txn->end_lsn);
		ps->dest_open = false;
		stages_settle(ps, true);
		reset_batch(ps);
		progress_params_free(&pp);
		return 0;
	}

	/* something did not fit: roll back, then one source transaction at a time */
	dts_log_info("batch of %d source transactions did not apply cleanly (%s); replaying it statement by statement",
				 ps->ntxns, ps->anomaly_msg);
	abort_dest(ps);
	if (ps->conn && ps->pipeline == false)
		rc = replay_careful(ps, err);
	else
		rc = dts_error_set(err, DTS_ERROR_CONNECT,
						   "lost the connection to the destination while rolling back");
	reset_batch(ps);
	progress_params_free(&pp);
	return rc;

fail:
	progress_params_free(&pp);
	abort_dest(ps);
	reset_batch(ps);
	return -1;
}

/* ----------------------------------------------------------------
 *		Careful path: one statement at a time, conflicts resolved
 * ----------------------------------------------------------------
 */

/* Sends one statement of a pipeline, without parameters when p is NULL */
static bool
send_piped(PGconn *conn, const char *sql, const Params *p)
{
	return PQsendQueryParams(conn, sql, p ? p->n : 0, p ? p->types : NULL,
							 p ? p->values : NULL, p ? p->lengths : NULL,
							 p ? p->formats : NULL, 0) == 1;
}

/*
 * The result of the pipeline's next statement (NULL if the connection
 * failed); what else the statement returned is read and dropped.
 */
static PGresult *
piped_result(PGconn *conn)
{
	PGresult   *res = PQgetResult(conn);
	PGresult   *more;

	while (res != NULL && (more = PQgetResult(conn)) != NULL)
		PQclear(more);
	return res;
}

/*
 * Runs a statement under a savepoint; the result is the caller's (NULL if
 * the connection failed).  SAVEPOINT, the statement and RELEASE go in one
 * pipeline, so a statement that succeeds costs one round trip, not three.
 * When the statement fails, the server skips the RELEASE, and the
 * savepoint is rolled back in a second round trip.  When SAVEPOINT itself
 * fails, its error is the result.
 */
static PGresult *
exec_guarded(PgSink *ps, const char *sql, const Params *p, bool *failed)
{
	PGconn	   *conn = ps->conn;
	PGresult   *sp;
	PGresult   *res;
	PGresult   *rel;

	*failed = true;
	if (PQenterPipelineMode(conn) != 1)
		return NULL;
	if (!send_piped(conn, "SAVEPOINT dts_row", NULL) ||
		!send_piped(conn, sql, p) ||
		!send_piped(conn, "RELEASE SAVEPOINT dts_row", NULL) ||
		PQpipelineSync(conn) != 1)
	{
		PQexitPipelineMode(conn);
		return NULL;
	}
	sp = piped_result(conn);
	res = piped_result(conn);
	rel = piped_result(conn);
	PQclear(piped_result(conn));	/* the sync */
	if (PQexitPipelineMode(conn) != 1)
	{
		PQclear(sp);
		PQclear(rel);
		PQclear(res);
		return NULL;
	}
	PQclear(rel);				/* skipped after a failure: nothing to say */
	if (!result_ok(sp))
	{
		/* the statement was skipped: the savepoint's error is the news */
		PQclear(res);
		return sp;
	}
	PQclear(sp);
	*failed = !result_ok(res);
	if (*failed)
		PQclear(PQexec(conn, "ROLLBACK TO SAVEPOINT dts_row"));
	return res;
}

static long
affected(const PGresult *res)
{
	return strtol(PQcmdTuples((PGresult *) res), NULL, 10);
}

/* The key of a row as the conflict report takes it: the last n params. */
static DtsConflictKey
params_key(const Params *p, int from)
{
	DtsConflictKey k;

	k.n = p->n - from;
	k.names = p->names + from;
	k.types = p->types + from;
	k.values = p->values + from;
	k.lengths = p->lengths + from;
	k.formats = p->formats + from;
	return k;
}

/* Key parameters of a tuple, for INSERT conflicts: p gets them appended */
static void
add_tuple_key(Params *p, const PgRel *rel, PgVal *t)
{
	for (int k = 0; k < rel->nmatch; k++)
		add_value(p, rel, rel->match[k], &t[rel->match[k]]);
}

typedef struct CarefulCtx
{
	PgSink	   *ps;
	PgChange   *chg;
	DtsError   *err;
	bool		failed;			/* a FAIL action: the task stops */
	char		fail_msg[700];
} CarefulCtx;

/*
 * Handles one conflict: resolve, report (in the transaction when the
 * action applies; a FAIL is reported by the caller after the rollback).
 */
static DtsConflictAction
conflict(CarefulCtx *cx, DtsConflictKind kind, const DtsConflictKey *key,
		 const char *detail, int *rc)
{
	PgSink	   *ps = cx->ps;
	DtsConflict c;
	/* overlaps of a resumed full sync are resolved as Overwrite */
	DtsConflictAction action =
		dts_conflict_resolve(cx->chg->txn->commit_lsn <= ps->overwrite_until ?
							 DTS_POLICY_OVERWRITE : ps->policy, kind);

	memset(&c, 0, sizeof(c));
	c.kind = kind;
	c.action = action;
	c.task = ps->task_name;
	c.xid = cx->chg->txn->xid;
	c.lsn = cx->chg->txn->commit_lsn;
	c.schema = cx->chg->rel->dst_schema;
	c.table = cx->chg->rel->dst_table;
	c.key = *key;
	c.detail = detail;
	*rc = 0;
	if (action == DTS_ACTION_FAIL)
	{
		char		keytext[400];
		char		lsn[DTS_LSN_BUFSIZE];

		/* the task stops: roll back, then log it in a transaction of its own */
		PGresult   *res = PQexec(ps->conn, "ROLLBACK");

		PQclear(res);
		if (dts_conflict_report(ps->conn, &c, keytext, sizeof(keytext),
								cx->err) != 0)
			dts_error_clear(cx->err);
		dts_error_set(cx->err, DTS_ERROR_FATAL,
					  "conflict %s on table %s, key %s: %s (row %d of source transaction %u, commit LSN %s); conflict_policy is TaskFailed, so the task stops",
					  dts_conflict_kind_name(kind), cx->chg->rel->qname,
					  keytext, detail, cx->chg->seq, c.xid,
					  dts_lsn_str(c.lsn, lsn));
		dts_error_hint(cx->err, "Make the destination row agree with the source (or set the sink's \"conflict_policy\" to \"Ignore\" or \"Overwrite\"), then start the task again: it resumes with this transaction.");
		cx->failed = true;
		*rc = -1;
		return action;
	}
	if (dts_conflict_report(ps->conn, &c, NULL, 0, cx->err) != 0)
		*rc = -1;
	return action;
}

/* A statement failed for a reason that is not a conflict. */
static int
statement_error(CarefulCtx *cx, const PGresult *res, const DtsConflictKey *key)
{
	PgSink	   *ps = cx->ps;
	char		msg[400];
	char		keytext[300];
	char		lsn[DTS_LSN_BUFSIZE];
	DtsErrorClass cls = error_class(ps, res);
	PGresult   *rb;

	result_message(ps, res, msg, sizeof(msg));
	rb = PQexec(ps->conn, "ROLLBACK");
	PQclear(rb);
	if (key)
		dts_conflict_key_text(ps->conn, key, keytext, sizeof(keytext));
	else
		snprintf(keytext, sizeof(keytext), "(none)");
	return dts_error_set(cx->err, cls,
						 "could not apply %s to table %s, key %s (row %d of source transaction %u, commit LSN %s): %s",
						 kind_word(cx->chg->kind), cx->chg->rel->qname, keytext,
						 cx->chg->seq, cx->chg->txn->xid,
						 dts_lsn_str(cx->chg->txn->commit_lsn, lsn), msg);
}

static const char *
server_detail(const PGresult *res)
{
	const char *d = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

	return d ? d : PQresultErrorMessage(res);
}

/*
 * INSERT of row t (all columns in mask, NULL: all), under the policy.
 * from_update: it replaces an UPDATE that found no row.
 */
static int
careful_insert(CarefulCtx *cx, PgVal *t, const bool *mask)
{
	PgSink	   *ps = cx->ps;
	PgRel	   *rel = cx->chg->rel;
	Params	   *p = &ps->params;
	PGresult   *res;
	bool		failed;
	int			rc = 0;
	int			nvals;
	DtsConflictKey key;
	char		detail[600];
	DtsConflictAction action;

	params_reset(p);
	for (int i = 0; i < rel->ncols; i++)
		if (mask == NULL || mask[i])
			add_value(p, rel, i, &t[i]);
	nvals = p->n;
	add_tuple_key(p, rel, t);
	key = params_key(p, nvals);
	p->n = nvals;
	sql_insert(&ps->sql, rel, mask);
	res = exec_guarded(ps, ps->sql.data, p, &failed);
	p->n = nvals + key.n;
	if (!failed)
		goto done;
	if (!sqlstate_is(res, DTS_SQLSTATE_UNIQUE_VIOLATION))
	{
		rc = statement_error(cx, res, &key);
		goto done;
	}
	snprintf(detail, sizeof(detail), "The row to insert already exists at the destination: %s",
			 server_detail(res));
	action = conflict(cx, DTS_CONFLICT_INSERT_EXISTS, &key, detail, &rc);
	if (rc != 0 || action != DTS_ACTION_OVERWRITE)
		goto done;

	/* Overwrite: the existing row becomes the new one */
	PQclear(res);
	if (rel->match_all)
	{
		res = NULL;
		dts_error_set(cx->err, DTS_ERROR_FATAL,
					  "cannot overwrite the existing row of table %s (row %d of source transaction %u): the table has no key to find it by",
					  rel->qname, cx->chg->seq, cx->chg->txn->xid);
		rc = -1;
		goto done;
	}
	{
		uint64_t   *sig;
		PgVal	   *merged = t;

		sig = tuple_sig(ps, rel, merged);
		if (mask)
			for (int i = 0; i < rel->ncols; i++)
				if (!mask[i])
					ps->sigbuf[i / 64] &= ~(UINT64_C(1) << (i % 64));
		params_reset(p);
		for (int i = 0; i < rel->ncols; i++)
			if (sig_has(sig, i))
				add_value(p, rel, i, &t[i]);
		add_tuple_key(p, rel, t);
		sql_update(&ps->sql, rel, sig);
		res = exec_guarded(ps, ps->sql.data, p, &failed);
		if (failed || affected(res) != 1)
		{
			DtsConflictKey k2 = params_key(p, p->n - rel->nmatch);

			if (!failed)
			{
				PGresult   *rb = PQexec(ps->conn, "ROLLBACK");

				PQclear(rb);
				dts_error_set(cx->err, DTS_ERROR_FATAL,
							  "cannot overwrite the existing row of table %s (row %d of source transaction %u): the row that clashes is not the one with the same key",
							  rel->qname, cx->chg->seq, cx->chg->txn->xid);
				rc = -1;
			}
			else
				rc = statement_error(cx, res, &k2);
		}
	}

done:
	PQclear(res);
	return rc;
}

/* Does the UPDATE change its key (the new key differs from the old)? */
static bool
key_changed(const PgChange *chg)
{
	const PgRel *rel = chg->rel;
	const PgVal *old = where_tuple(chg);

	if (old == NULL || old == chg->newv)
		return false;
	for (int k = 0; k < rel->nmatch; k++)
	{
		const PgVal *a = &old[rel->match[k]];
		const PgVal *b = &chg->newv[rel->match[k]];

		if (a->status != b->status || a->len != b->len ||
			(a->len > 0 && memcmp(a->data, b->data, (size_t) a->len) != 0))
			return true;
	}
	return false;
}

static int
careful_update(CarefulCtx *cx)
{
	PgSink	   *ps = cx->ps;
	PgChange   *chg = cx->chg;
	PgRel	   *rel = chg->rel;
	Params	   *p = &ps->params;
	PGresult   *res = NULL;
	bool		failed;
	int			rc = 0;
	int			nset = 0;
	uint64_t   *sig;
	DtsConflictKey key;
	char		detail[600];
	DtsConflictAction action;

	params_reset(p);
	sig = tuple_sig(ps, rel, chg->newv);
	for (int i = 0; i < rel->ncols; i++)
		if (sig_has(sig, i))
			add_value(p, rel, i, &chg->newv[i]);
	nset = p->n;
	if (nset == 0)
		return 0;				/* nothing but unchanged values: no-op */
	if (!add_where(p, rel, where_tuple(chg)))
		return no_key_error(ps, chg, cx->err);
	key = params_key(p, nset);
	sql_update(&ps->sql, rel, sig);
	res = exec_guarded(ps, ps->sql.data, p, &failed);
	if (!failed && affected(res) == 1)
		goto done;
	if (failed && !sqlstate_is(res, DTS_SQLSTATE_UNIQUE_VIOLATION))
	{
		rc = statement_error(cx, res, &key);
		goto done;
	}

	if (!failed)
	{
		/* no row: insert the new one (unchanged TOAST from the old row) */
		PgVal	   *row = chg->newv;
		bool	   *mask = dts_realloc(NULL, sizeof(bool) * (rel->ncols + 1));
		bool		lost = false;

		action = conflict(cx, DTS_CONFLICT_UPDATE_MISSING, &key,
						  "No row with the update's key exists at the destination.",
						  &rc);
		if (rc != 0 || action != DTS_ACTION_INSERT)
		{
			free(mask);
			goto done;
		}
		row = arena_alloc(&ps->scratch, sizeof(PgVal) * (rel->ncols + 1));
		for (int i = 0; i < rel->ncols; i++)
		{
			row[i] = chg->newv[i];
			if (row[i].status == DTS_VALUE_UNCHANGED && chg->oldv &&
				chg->old_kind == DTS_OLD_FULL)
				row[i] = chg->oldv[i];
			mask[i] = row[i].status == DTS_VALUE_PRESENT ||
				row[i].status == DTS_VALUE_NULL;
			if (!mask[i])
				lost = true;
		}
		if (lost)
			dts_log_warning("UPDATE of a missing row of table %s became an INSERT without its unchanged TOASTed columns (row %d of source transaction %u): they take their defaults",
							rel->qname, chg->seq, chg->txn->xid);
		PQclear(res);
		res = NULL;
		rc = careful_insert(cx, row, mask);
		free(mask);
		goto done;
	}

	/* unique violation: the new key is taken */
	snprintf(detail, sizeof(detail), "The update's new key is taken by another row: %s",
			 server_detail(res));
	action = conflict(cx, DTS_CONFLICT_UPDATE_KEY_CONFLICT, &key, detail, &rc);
	if (rc != 0 || action != DTS_ACTION_REPLACE)
		goto done;
	PQclear(res);
	res = NULL;
	if (rel->match_all || !key_changed(chg))
	{
		PGresult   *rb = PQexec(ps->conn, "ROLLBACK");

		PQclear(rb);
		dts_error_set(cx->err, DTS_ERROR_FATAL,
					  "cannot replace the row that holds the new key of table %s (row %d of source transaction %u): %s",
					  rel->qname, chg->seq, chg->txn->xid,
					  rel->match_all ? "the table has no key" :
					  "the update keeps its key, so the clash is on another unique index");
		return -1;
	}
	{
		Params		dp = {0};
		PGresult   *dres;

		/* delete the row that holds the new key, then update again */
		for (int k = 0; k < rel->nmatch; k++)
			add_value(&dp, rel, rel->match[k], &chg->newv[rel->match[k]]);
		sql_delete(&ps->sql, rel);
		dres = exec_guarded(ps, ps->sql.data, &dp, &failed);
		if (failed)
			rc = statement_error(cx, dres, &key);
		PQclear(dres);
		free(dp.values);
		free(dp.lengths);
		free(dp.formats);
		free(dp.types);
		free(dp.names);
		if (rc != 0)
			return rc;
		sql_update(&ps->sql, rel, sig);
		res = exec_guarded(ps, ps->sql.data, p, &failed);
		if (failed)
			rc = statement_error(cx, res, &key);
		else if (affected(res) != 1)
		{
			PGresult   *rb = PQexec(ps->conn, "ROLLBACK");

			PQclear(rb);
			rc = dts_error_set(cx->err, DTS_ERROR_OTHER,
							   "the UPDATE of table %s hit %ld rows after the row holding its new key was deleted (row %d of source transaction %u)",
							   rel->qname, affected(res), chg->seq,
							   chg->txn->xid);
		}
	}

done:
	PQclear(res);
	return rc;
}

static int
careful_delete(CarefulCtx *cx)
{
	PgSink	   *ps = cx->ps;
	PgChange   *chg = cx->chg;
	PgRel	   *rel = chg->rel;
	Params	   *p = &ps->params;
	PGresult   *res;
	bool		failed;
	int			rc = 0;
	DtsConflictKey key;

	params_reset(p);
	if (!add_where(p, rel, where_tuple(chg)))
		return no_key_error(ps, chg, cx->err);
	key = params_key(p, 0);
	sql_delete(&ps->sql, rel);
	res = exec_guarded(ps, ps->sql.data, p, &failed);
	if (failed)
		rc = statement_error(cx, res, &key);
	else if (affected(res) == 0)
		conflict(cx, DTS_CONFLICT_DELETE_MISSING, &key,
				 "No row with the delete's key exists at the destination.",
				 &rc);
	PQclear(res);
	return rc;
}

static int
careful_change(PgSink *ps, PgChange *chg, DtsError *err)
{
	CarefulCtx	cx;
	Params	   *p = &ps->params;

	memset(&cx, 0, sizeof(cx));
	cx.ps = ps;
	cx.chg = chg;
	cx.err = err;
	if (chg->kind == DTS_FRAME_TRUNCATE)
	{
		PGresult   *res;
		bool		failed;

		for (int i = 0; i < chg->ntrunc; i++)
			if (!chg->trunc[i]->skip &&
				resolve_sync(ps, chg->trunc[i], err) != 0)
				return -1;
		if (!sql_truncate(&ps->sql, chg))
			return 0;
		params_reset(p);
		res = exec_guarded(ps, ps->sql.data, p, &failed);
		if (failed)
		{
			cx.chg = chg;
			statement_error(&cx, res, NULL);
			PQclear(res);
			return -1;
		}
		PQclear(res);
		return 0;
	}
	if (resolve_sync(ps, chg->rel, err) != 0)
		return -1;
	switch (chg->kind)
	{
		case DTS_FRAME_INSERT:
			return careful_insert(&cx, chg->newv, NULL);
		case DTS_FRAME_UPDATE:
			return careful_update(&cx);
		default:
			return careful_delete(&cx);
	}
}

/*
 * Replays the batch: one destination transaction per source transaction,
 * each committed with its progress.  Stops at the first error (the
 * transactions before it stay committed).
 */
static int
replay_careful(PgSink *ps, DtsError *err)
{
	if (spill_rewind(ps, err) != 0)
		return -1;
	for (PgTxnRec *t = ps->first_txn; t; t = t->next)
	{
		ProgressParams pp;
		PGresult   *res;
		Params		two;
		char		msg[400];
		int			rc = 0;
		TxnCursor	cur = {t, NULL, false, 0};
		PgChange   *c;

		if (exec_ok(ps, "BEGIN", 0, NULL, "begin a transaction", err) != 0)
			return -1;
		while (rc == 0 && (c = cursor_next(ps, &cur, &rc, err)) != NULL)
			rc = careful_change(ps, c, err);
		if (rc != 0)
		{
			if (PQtransactionStatus(ps->conn) != PQTRANS_IDLE)
			{
				res = PQexec(ps->conn, "ROLLBACK");
				PQclear(res);
			}
			return -1;
		}
		progress_params(ps, &pp, t);
		two = pp.p;
		two.n = 2;
		res = PQexecParams(ps->conn, ORIGIN_SETUP_SQL, two.n, two.types,
						   two.values, two.lengths, two.formats, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			PQclear(res);
			res = PQexecParams(ps->conn, PROGRESS_SQL, pp.p.n, pp.p.types,
							   pp.p.values, pp.p.lengths, pp.p.formats, 0);
		}
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
		{
			PQclear(res);
			res = PQexec(ps->conn, "COMMIT");
		}
		progress_params_free(&pp);
		if (PQresultStatus(res) != PGRES_COMMAND_OK ||
			strcmp(PQcmdStatus(res), "COMMIT") != 0)
		{
			dts_error_set(err, error_class(ps, res),
						  "could not commit source transaction %u at the destination: %s",
						  t->xid, result_message(ps, res, msg, sizeof(msg)));
			PQclear(res);
			res = PQexec(ps->conn, "ROLLBACK");
			PQclear(res);
			return -1;
		}
		PQclear(res);
		/* a synchronous commit: it flushes every earlier one too */
		note_durable(ps, t->end_lsn);
	}
	return 0;
}

/* ----------------------------------------------------------------
 *		Keeping changes for the batch
 * ----------------------------------------------------------------
 */

static PgVal *
keep_tuple(Arena *a, const DtsTuple *t)
{
	PgVal	   *vals = arena_alloc(a, sizeof(PgVal) * (t->ncols + 1));

	for (int i = 0; i < t->ncols; i++)
	{
		const DtsValue *v = &t->values[i];
		PgVal	   *pv = &vals[i];

		pv->status = v->status;
		pv->data = NULL;
		pv->len = 0;
		if (v->status != DTS_VALUE_PRESENT)
			continue;
		if (v->encoding == DTS_ENC_TEXT)
		{
			pv->data = arena_alloc(a, v->bytes.len + 1);
			memcpy(pv->data, v->bytes.data, v->bytes.len);
			pv->data[v->bytes.len] = '\0';
			pv->len = (int) v->bytes.len;
		}
		else
		{
			uint8_t		fixed[16];
			const uint8_t *image;
			size_t		len = dts_value_image(v, fixed, &image);

			pv->data = arena_alloc(a, len + 1);
			if (len > 0)
				memcpy(pv->data, image, len);
			pv->len = (int) len;
		}
	}
	return vals;
}

static PgChange *
keep_change(PgSink *ps, Arena *a, const DtsChange *c, DtsError *err)
{
	const DtsFrame *f = c->frame;
	PgChange   *chg = arena_alloc(a, sizeof(PgChange));

	memset(chg, 0, sizeof(PgChange));
	chg->kind = (char) f->kind;
	chg->txn = ps->cur;
	if (f->kind == DTS_FRAME_TRUNCATE)
	{
		chg->flags = f->flags;
		chg->trunc = arena_alloc(a, sizeof(PgRel *) * (f->nrelids + 1));
		for (int i = 0; i < f->nrelids; i++)
		{
			const DtsRelation *r = c->truncated ? c->truncated[i] : NULL;
			PgRel	   *rel = r ? get_rel(ps, r) :
				find_rel_by_relid(ps, f->relids[i]);

			if (rel == NULL)
			{
				dts_error_set(err, DTS_ERROR_FATAL,
							  "cannot apply a TRUNCATE of relation %u (source transaction %u): the stream did not describe it",
							  f->relids[i], ps->cur->xid);
				return NULL;
			}
			chg->trunc[chg->ntrunc++] = rel;
		}
	}
	else
	{
		chg->rel = get_rel(ps, f->rel);
		if (chg->rel->skip)
			return chg;
		if (f->kind == DTS_FRAME_INSERT || f->kind == DTS_FRAME_UPDATE)
			chg->newv = keep_tuple(a, &f->new_tuple);
		if (f->kind == DTS_FRAME_UPDATE || f->kind == DTS_FRAME_DELETE)
		{
			chg->old_kind = f->old_kind;
			if (f->old_kind != DTS_OLD_NONE)
				chg->oldv = keep_tuple(a, &f->old_tuple);
		}
	}
	return chg;
}

/* ----------------------------------------------------------------
 *		The sink's callbacks
 * ----------------------------------------------------------------
 */

static int
pg_open(DtsSink *sink, DtsError *err)
{
	PgSink	   *ps = sink->state;

	return connect_dest(ps, err);
}

static int
pg_begin(DtsSink *sink, const DtsTxn *txn, DtsError *err)
{
	PgSink	   *ps = sink->state;
	PgTxnRec   *t;

	if (ps->in_txn)
		return dts_error_set(err, DTS_ERROR_OTHER,
							 "pg sink: transaction %u begins inside transaction %u",
							 txn->xid, ps->cur ? ps->cur->xid : 0);
	ps->in_txn = true;

	/*
	 * Connect first: (re)connecting reads dts.apply_progress, and what it
	 * says was applied (before a crash of either side) must be skipped.
	 */
	if (connect_dest(ps, err) != 0)
	{
		ps->in_txn = false;
		return -1;
	}

	/* applied already (a restart sends it again): skip it */
	ps->skipping = (ps->accepted_lsn > 0 && txn->commit_lsn < ps->accepted_lsn) ||
		(txn->end_lsn != 0 && txn->end_lsn <= ps->accepted_lsn);
	if (ps->skipping)
		return 0;
	if (begin_dest(ps, err) != 0)
	{
		ps->in_txn = false;
		return -1;
	}
	t = arena_alloc(&ps->arena, sizeof(PgTxnRec));
	memset(t, 0, sizeof(PgTxnRec));
	t->xid = txn->xid;
	t->commit_lsn = txn->commit_lsn;
	t->commit_time = txn->commit_time;
	ps->cur = t;
	return 0;
}

static int
pg_change(DtsSink *sink, const DtsTxn *txn, const DtsChange *c,
		  DtsError *err)
{
	PgSink	   *ps = sink->state;
	const DtsFrame *f = c->frame;
	PgChange   *chg;
	unsigned	kind;
	int			rc;

	/* logical messages and heartbeats are not applied */
	if (txn == NULL || f->kind == DTS_FRAME_MESSAGE || c->heartbeat)
		return 0;
	if (!ps->in_txn)
		return dts_error_set(err, DTS_ERROR_OTHER,
							 "pg sink: change outside a transaction");
	if (ps->skipping)
		return 0;

	/*
	 * Past batch_memory (one huge source transaction) the changes go to
	 * the spill file instead of memory, for a careful replay; each is
	 * built in scratch, which is emptied once the run holds none.
	 */
	if (!ps->spilling && ps->arena.total >= ps->memory_cap)
	{
		ps->spilling = true;
		dts_log_info("source transaction %u is bigger than sink.batch_memory (%zu MB): keeping the rest of its changes in a temp file",
					 ps->cur->xid, ps->memory_cap / (1024 * 1024));
	}
	if (ps->spilling && ps->run_len == 0)
		arena_clear(&ps->scratch);
	chg = keep_change(ps, ps->spilling ? &ps->scratch : &ps->arena, c, err);
	if (chg == NULL)
		return -1;
	if (chg->rel)
	{
		kind = f->kind == DTS_FRAME_INSERT ? DTS_DML_INSERT :
			f->kind == DTS_FRAME_UPDATE ? DTS_DML_UPDATE : DTS_DML_DELETE;
		if (chg->rel->skip || !(chg->rel->dml & kind))
			return 0;
	}
	chg->seq = ++ps->cur->nchanges;
	chg->txn = ps->cur;
	ps->nrows++;
	if (ps->spilling)
	{
		if (spill_write(ps, chg, err) != 0)
			return -1;
		ps->cur->nspilled++;
		ps->transient = true;
		rc = send_change(ps, chg, err);
		ps->transient = false;
		return rc;
	}
	if (ps->cur->last)
		ps->cur->last->next = chg;
	else
		ps->cur->first = chg;
	ps->cur->last = chg;
	return send_change(ps, chg, err);
}

static int
pg_commit(DtsSink *sink, const DtsTxn *txn, DtsError *err)
{
	PgSink	   *ps = sink->state;
	PgTxnRec   *t = ps->cur;

	if (!ps->in_txn)
		return dts_error_set(err, DTS_ERROR_OTHER,
							 "pg sink: commit outside a transaction");
	ps->in_txn = false;
	if (ps->skipping)
	{
		ps->skipping = false;
		return 0;
	}
	t->end_lsn = txn->end_lsn;
	t->commit_time = txn->commit_time;
	if (ps->last_txn)
		ps->last_txn->next = t;
	else
		ps->first_txn = t;
	ps->last_txn = t;
	ps->ntxns++;
	ps->cur = NULL;
	if (txn->end_lsn > ps->accepted_lsn)
		ps->accepted_lsn = txn->end_lsn;

	/*
	 * Nothing of the batch reached the destination (only skipped changes,
	 * e.g. pg_dts's own heartbeat and DDL rows): there is nothing to make
	 * durable, so the position is durable now.  Waiting for a batch that
	 * never opens would hold the slot (and -E) until the next status.
	 */
	if (!ps->dest_open)
	{
		if (ps->committed_lsn > ps->durable_lsn)
			note_committed(ps, txn->end_lsn);	/* durable with the others */
		else
			note_durable(ps, txn->end_lsn);
		reset_batch(ps);
		return 0;
	}

	if (ps->ntxns >= ps->batch_txns || ps->nrows >= ps->batch_rows ||
		ps->arena.total >= ps->memory_cap ||
		dts_now_us() >= ps->batch_start_us + ps->batch_interval_us)
		return commit_batch(ps, err);
	/* let the server work on what we have sent while we read on */
	if (ps->conn && PQflush(ps->conn) != 0)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send to the destination: %s",
							 PQerrorMessage(ps->conn));
	return 0;
}

/*
 * The open source transaction is forgotten; the complete transactions of
 * the batch are applied again (their statements shared the destination
 * transaction) and committed.  If that fails they are forgotten too: they
 * are after durable_lsn, so the server sends them again.
 */
static int
pg_rollback(DtsSink *sink, DtsError *err)
{
	PgSink	   *ps = sink->state;
	PgTxnRec   *keep;
	int			rc = 0;

	if (!ps->in_txn && !ps->dest_open)
		return 0;
	ps->in_txn = false;
	ps->skipping = false;
	ps->cur = NULL;
	abort_dest(ps);
	keep = ps->first_txn;
	if (keep == NULL)
	{
		reset_batch(ps);
		return 0;
	}
	ps->anomaly = false;
	if (begin_dest(ps, err) != 0)
		rc = -1;
	if (rc == 0)
		rc = spill_rewind(ps, err);
	for (PgTxnRec *t = keep; t && rc == 0; t = t->next)
	{
		TxnCursor	cur = {t, NULL, false, 0};
		PgChange   *c;

		while (rc == 0 && (c = cursor_next(ps, &cur, &rc, err)) != NULL)
			rc = send_change(ps, c, err);
	}
	ps->transient = false;
	if (rc == 0)
		return commit_batch(ps, err);
	abort_dest(ps);
	reset_batch(ps);
	return -1;
}

/*
 * Flushes the destination's WAL up to the batches committed so far: a
 * small synchronous commit (the progress row's applied_at) waits for the
 * flush of its own commit record, and so of every commit before it.
 */
static int
make_durable(PgSink *ps, DtsError *err)
{
	const char *params[1] = {ps->task_name};
	uint64_t	target = ps->committed_lsn;
	PGresult   *res;
	char		msg[400];

	if (target <= ps->durable_lsn || ps->conn == NULL)
		return 0;
	if (end_pipeline(ps, err) != 0)
		return -1;
	res = PQexecParams(ps->conn,
					   "UPDATE dts.apply_progress SET applied_at = now() WHERE task = $1",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		dts_error_set(err, error_class(ps, res),
					  "could not flush the applied transactions at the destination: %s",
					  result_message(ps, res, msg, sizeof(msg)));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	note_durable(ps, target);
	return 0;
}

static int
pg_flush(DtsSink *sink, bool force, int64_t now_us, int64_t *next_due_us,
		 DtsError *err)
{
	PgSink	   *ps = sink->state;
	int64_t		due = ps->batch_start_us + ps->batch_interval_us;
	int64_t		sync_due;

	*next_due_us = INT64_MAX;
	if (ps->dest_open)
	{
		if (ps->in_txn)
		{
			/* a source transaction is open: commit() closes the batch */
			*next_due_us = due > now_us ? due : now_us + ps->batch_interval_us;
			return 0;
		}
		if (!force && now_us < due)
		{
			*next_due_us = due;
			return 0;
		}
		if (commit_batch(ps, err) != 0)
			return -1;
	}
	if (ps->committed_lsn <= ps->durable_lsn)
		return 0;
	sync_due = ps->committed_at_us + SYNC_INTERVAL_US;
	if (force || now_us >= sync_due)
		return make_durable(ps, err);
	*next_due_us = sync_due;
	return 0;
}

static uint64_t
pg_durable_lsn(DtsSink *sink)
{
	return ((PgSink *) sink->state)->durable_lsn;
}

static bool
pg_idle(DtsSink *sink)
{
	PgSink	   *ps = sink->state;

	return !ps->in_txn && !ps->dest_open &&
		ps->committed_lsn <= ps->durable_lsn;
}

/* Nothing to reopen: make the batch durable. */
static int
pg_reopen(DtsSink *sink, DtsError *err)
{
	int64_t		next;

	return pg_flush(sink, true, dts_now_us(), &next, err);
}

static void
pg_close(DtsSink *sink)
{
	PgSink	   *ps = sink->state;

	if (ps == NULL)
		return;
	disconnect(ps);
	arena_reset(&ps->arena);
	arena_reset(&ps->scratch);
	if (ps->spill)
		fclose(ps->spill);
	while (ps->all_rels)
	{
		PgRel	   *next = ps->all_rels->next_all;

		free_rel(ps->all_rels);
		ps->all_rels = next;
	}
	free(ps->pend);
	free(ps->run);
	free(ps->run_slot);
	free(ps->run_htab);
	free(ps->copy_cols);
	free(ps->copybuf.data);
	free(ps->stage_new);
	free(ps->params.values);
	free(ps->params.lengths);
	free(ps->params.formats);
	free(ps->params.types);
	free(ps->params.names);
	free(ps->sql.data);
	free(ps->sigbuf);
	free(ps->conninfo);
	free(ps->task_name);
	free(ps->origin_name);
	free(ps->source_encoding);
	free(ps);
	sink->state = NULL;
}

static const DtsSinkOps pg_sink_ops = {
	.name = "pg",
	.open = pg_open,
	.begin = pg_begin,
	.change = pg_change,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.flush = pg_flush,
	.durable_lsn = pg_durable_lsn,
	.idle = pg_idle,
	.reopen = pg_reopen,
	.close = pg_close,
};

void
dts_pg_sink_init(DtsSink *sink, const DtsPgSinkConfig *config)
{
	PgSink	   *ps = dts_realloc(NULL, sizeof(PgSink));
	const char *task = config->task_name ? config->task_name : "default";
	size_t		n = strlen(task) + 5;

	memset(ps, 0, sizeof(PgSink));
	ps->conninfo = dts_strdup(config->conninfo ? config->conninfo : "");
	ps->task_name = dts_strdup(task);
	ps->origin_name = dts_realloc(NULL, n);
	snprintf(ps->origin_name, n, "dts_%s", task);
	ps->source_encoding = config->source_encoding ?
		dts_strdup(config->source_encoding) : NULL;
	ps->task = config->task;
	ps->policy = (DtsConflictPolicy) config->conflict_policy;
	ps->batch_txns = config->batch_transactions > 0 ?
		config->batch_transactions : DEFAULT_BATCH_TXNS;
	ps->batch_rows = config->batch_rows > 0 ? config->batch_rows :
		DEFAULT_BATCH_ROWS;
	ps->batch_interval_us = (int64_t) (config->batch_interval_ms >= 0 ?
									   config->batch_interval_ms :
									   DEFAULT_BATCH_INTERVAL) * 1000;
	ps->memory_cap = (size_t) (config->batch_memory_mb > 0 ?
							   config->batch_memory_mb :
							   DEFAULT_BATCH_MEMORY) * 1024 * 1024;
	ps->read_ahead = ps->memory_cap / 4 < READ_AHEAD_MAX ?
		ps->memory_cap / 4 : READ_AHEAD_MAX;
	ps->sink = sink;
	sink->ops = &pg_sink_ops;
	sink->state = ps;
	sink->prefetch = NULL;		/* until a source streams */
	sink->prefetch_arg = NULL;
}

/* ----------------------------------------------------------------
 *		The "sink" object of the task file
 * ----------------------------------------------------------------
 */

static const char *const pg_sink_keys[] = {
	"type", "conninfo", "conflict_policy", "batch_transactions",
	"batch_rows", "batch_interval", "batch_memory", "conflicting_tables",
	NULL
};

static int
json_int_key(json_t *v, const char *key, long lo, long hi, long *out,
			 char *err, size_t errlen)
{
	if (!json_is_integer(v))
	{
		snprintf(err, errlen, "sink.%s: expected an integer from %ld to %ld",
				 key, lo, hi);
		return -1;
	}
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
	{
		snprintf(err, errlen, "sink.%s: %lld is out of range; expected an integer from %ld to %ld",
				 key, (long long) json_integer_value(v), lo, hi);
		return -1;
	}
	*out = (long) json_integer_value(v);
	return 0;
}

int
dts_pg_sink_config_from_json(const char *sink_json, DtsPgSinkConfig *cfg,
							 char *err, size_t errlen)
{
	json_error_t jerr;
	json_t	   *root;
	const char *key;
	json_t	   *v;
	char	   *conninfo = NULL;
	int			rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	cfg->conflict_policy = DTS_POLICY_TASK_FAILED;
	cfg->batch_transactions = DEFAULT_BATCH_TXNS;
	cfg->batch_rows = DEFAULT_BATCH_ROWS;
	cfg->batch_interval_ms = DEFAULT_BATCH_INTERVAL;
	cfg->batch_memory_mb = DEFAULT_BATCH_MEMORY;

	if (sink_json == NULL)
	{
		snprintf(err, errlen, "sink: the pg sink needs a \"sink\" object with \"conninfo\"");
		return -1;
	}
	root = json_loads(sink_json, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root))
	{
		snprintf(err, errlen, "sink: expected an object%s%s",
				 root ? "" : ": ", root ? "" : jerr.text);
		json_decref(root);
		return -1;
	}
	json_object_foreach(root, key, v)
	{
		long		n;
		bool		known = false;

		for (int i = 0; pg_sink_keys[i]; i++)
			known = known || strcmp(key, pg_sink_keys[i]) == 0;
		if (!known)
		{
			snprintf(err, errlen, "sink.%s: unknown key; expected one of \"type\", \"conninfo\", \"conflict_policy\", \"batch_transactions\", \"batch_rows\", \"batch_interval\", \"batch_memory\", \"conflicting_tables\"",
					 key);
			goto done;
		}
		if (strcmp(key, "type") == 0)
		{
			if (!json_is_string(v) || strcmp(json_string_value(v), "pg") != 0)
			{
				snprintf(err, errlen, "sink.type: expected \"pg\"");
				goto done;
			}
		}
		else if (strcmp(key, "conninfo") == 0)
		{
			char	   *perr = NULL;
			PQconninfoOption *opts;

			if (!json_is_string(v) || json_string_length(v) == 0)
			{
				snprintf(err, errlen, "sink.conninfo: expected a libpq connection string of the destination");
				goto done;
			}
			opts = PQconninfoParse(json_string_value(v), &perr);
			if (opts == NULL)
			{
				/* libpq's message may quote a password: only without one */
				bool		show = perr != NULL &&
					strstr(json_string_value(v), "password") == NULL &&
					strchr(json_string_value(v), '@') == NULL;
				size_t		n;

				snprintf(err, errlen, "sink.conninfo: not a valid libpq connection string%s%s",
						 show ? ": " : "", show ? perr : "");
				n = strlen(err);
				while (n > 0 && err[n - 1] == '\n')
					err[--n] = '\0';
				PQfreemem(perr);
				goto done;
			}
			PQconninfoFree(opts);
			PQfreemem(perr);
			free(conninfo);
			conninfo = dts_strdup(json_string_value(v));
		}
		else if (strcmp(key, "conflict_policy") == 0)
		{
			DtsConflictPolicy p;

			if (!json_is_string(v) ||
				!dts_conflict_policy_parse(json_string_value(v), &p))
			{
				snprintf(err, errlen, "sink.conflict_policy: expected \"TaskFailed\", \"Ignore\" or \"Overwrite\"");
				goto done;
			}
			cfg->conflict_policy = p;
		}
		else if (strcmp(key, "batch_transactions") == 0)
		{
			if (json_int_key(v, key, 1, 1000000, &n, err, errlen) != 0)
				goto done;
			cfg->batch_transactions = (int) n;
		}
		else if (strcmp(key, "batch_rows") == 0)
		{
			if (json_int_key(v, key, 1, 10000000, &n, err, errlen) != 0)
				goto done;
			cfg->batch_rows = (int) n;
		}
		else if (strcmp(key, "batch_interval") == 0)
		{
			double		s;

			if (!json_is_number(v) || (s = json_number_value(v)) < 0 ||
				s > 3600)
			{
				snprintf(err, errlen, "sink.batch_interval: expected a number of seconds from 0 to 3600");
				goto done;
			}
			cfg->batch_interval_ms = (int) (s * 1000 + 0.5);
		}
		else if (strcmp(key, "batch_memory") == 0)
		{
			if (json_int_key(v, key, 1, 1048576, &n, err, errlen) != 0)
				goto done;
			cfg->batch_memory_mb = (int) n;
		}
		else if (strcmp(key, "conflicting_tables") == 0)
		{
			if (!json_is_string(v) ||
				(strcmp(json_string_value(v), "error") != 0 &&
				 strcmp(json_string_value(v), "ignore") != 0))
			{
				snprintf(err, errlen, "sink.conflicting_tables: expected \"error\" or \"ignore\"");
				goto done;
			}
			cfg->conflicting_tables_ignore =
				strcmp(json_string_value(v), "ignore") == 0;
		}
	}
	if (conninfo == NULL)
	{
		snprintf(err, errlen, "sink.conninfo: missing; the pg sink needs the destination's libpq connection string");
		goto done;
	}
	cfg->conninfo = conninfo;
	conninfo = NULL;
	rc = 0;

done:
	free(conninfo);
	json_decref(root);
	return rc;
}

void
dts_pg_sink_config_free(DtsPgSinkConfig *cfg)
{
	free(cfg->conninfo);
	cfg->conninfo = NULL;
}

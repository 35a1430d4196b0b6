/*-------------------------------------------------------------------------
 *
 * sync_tables.h
 *	  The tables of a PostgreSQL-to-PostgreSQL task as its schema sync and
 *	  full sync see them: each selected source table with its name at the
 *	  destination, the columns that exist there (mapped names), the
 *	  columns that do not, its row filter, its key and its size; plus small
 *	  helpers both phases share (a growable text buffer, identifier
 *	  quoting, the pg sink's "conflicting_tables" setting, the dts tables
 *	  on the destination).
 *
 * docs/pg-sync.md describes the phases.
 *
 * shipper/sync_tables.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_SYNC_TABLES_H
#define PG_DTS_SHIP_SYNC_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libpq-fe.h"

#include "log.h"
#include "task.h"

/* One column that exists at the destination */
typedef struct DtsSyncColumn
{
	char	   *src_name;
	char	   *dst_name;		/* never NULL (same as src_name if unmapped) */
	int			attnum;			/* on the source */
	bool		generated;		/* GENERATED ALWAYS AS (...) STORED: the
								 * destination computes it, never copied */
} DtsSyncColumn;

/* One source column the task leaves out (dropped at the destination) */
typedef struct DtsSyncDropped
{
	char	   *name;
	int			attnum;
} DtsSyncDropped;

/*
 * One selected source table.  Every string is malloc'd and owned by the
 * list (dts_sync_tables_free).  "Mapped" means the destination differs
 * from a plain copy: another schema or name, renamed or dropped columns.
 */
typedef struct DtsSyncTable
{
	char	   *src_schema;
	char	   *src_table;
	char	   *dst_schema;		/* never NULL */
	char	   *dst_table;		/* never NULL */
	unsigned int src_oid;
	char		relkind;		/* 'r' or 'p' */
	DtsSyncColumn *columns;		/* in source column order */
	int			ncolumns;
	DtsSyncDropped *dropped;
	int			ndropped;
	char	   *where;			/* the rule's row filter, NULL = all rows */
	char	   *int_key;		/* the single-column integer primary key
								 * (source name), NULL if there is none */
	int64_t		size_bytes;		/* pg_relation_size of every leaf */
	int64_t		max_blocks;		/* blocks of the largest leaf */
	bool		binary_ok;		/* binary COPY is safe (no composite or
								 * user-defined-array columns, whose binary
								 * form holds type OIDs) */
	bool		mapped;
	bool		renames_columns;
} DtsSyncTable;

/*
 * The tables of the task on the source (read through src, which must be
 * idle or in the caller's transaction: the catalog is read as of its
 * snapshot), expanded as verify.c expands them (schema rules to their
 * ordinary and partitioned tables, not partitions; whole database to every
 * user schema except dts; never the extension's heartbeat and DDL tables).
 *
 * A table rule with a column list keeps the listed columns plus the
 * primary key's (or, without one, the replica identity index's): the
 * incremental phase needs the key at the destination.
 *
 * Returns 0 and sets *tables (free with dts_sync_tables_free) and
 * *ntables, or -1 with err set (a listed column that does not exist is an
 * error naming it).
 */
extern int	dts_sync_tables_for_task(PGconn *src, const DtsTask *task,
									 DtsSyncTable **tables, int *ntables,
									 DtsError *err);
extern void dts_sync_tables_free(DtsSyncTable *tables, int ntables);

/*
 * The pg sink's "conflicting_tables" key in task->sink_json: "error" (the
 * default: a destination table that exists already stops the schema
 * sync) or "ignore" (it is kept and filled: rows whose key exists are
 * kept).  Returns 0 and sets *ignore, or -1 with err set for another value.
 */
extern int	dts_sync_conflicting_tables(const DtsTask *task, bool *ignore,
										DtsError *err);

/*
 * Creates, if missing, schema dts and the tables the two phases record
 * their progress in (dts.schema_sync_state, dts.full_sync_progress) on
 * the destination.  Returns 0, or -1 with err set.
 */
extern int	dts_sync_ensure_dts_tables(PGconn *dst, DtsError *err);

/*
 * A replication origin on the destination, $1 its name: created if
 * missing, then set up for the session (which PostgreSQL 15 allows one
 * session at a time).  The pg sink's applying session and each full sync
 * worker run both.
 */
#define DTS_ORIGIN_CREATE_SQL \
	"SELECT pg_catalog.pg_replication_origin_create($1) " \
	"WHERE pg_catalog.pg_replication_origin_oid($1) IS NULL"
#define DTS_ORIGIN_SESSION_SETUP_SQL \
	"SELECT pg_catalog.pg_replication_origin_session_setup($1)"

/* ----------------------------------------------------------------
 *		Helpers
 * ----------------------------------------------------------------
 */

/* A growable NUL-terminated text; memory failures abort (dts_realloc) */
typedef struct DtsBuf
{
	char	   *data;			/* NULL until the first append */
	size_t		len;
	size_t		cap;
} DtsBuf;

extern void dts_buf_printf(DtsBuf *buf, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void dts_buf_append(DtsBuf *buf, const char *data, size_t len);
extern void dts_buf_reset(DtsBuf *buf);	/* empties, keeps the memory */
extern void dts_buf_free(DtsBuf *buf);
/* "" for a buffer that never grew */
extern const char *dts_buf_str(const DtsBuf *buf);

/* Appends name as a quoted SQL identifier: always "...", quotes doubled */
extern void dts_buf_ident(DtsBuf *buf, const char *name);
/* Appends "schema"."name" */
extern void dts_buf_qualified(DtsBuf *buf, const char *schema,
							  const char *name);
/* Appends text as a SQL string literal ('...', quotes doubled) */
extern void dts_buf_literal(DtsBuf *buf, const char *text);

/*
 * schema.name for messages: each part bare when it is a plain lower-case
 * identifier, else quoted.  Writes into out (truncating) and returns it.
 */
extern const char *dts_sync_display_name(const char *schema, const char *name,
										 char *out, size_t outlen);

/*
 * Runs sql on conn (no parameters) and checks it returned commands or
 * rows.  Returns the result (the caller clears it), or NULL with err set
 * to "<what>: <server message>" (class DTS_ERROR_CONNECT when the
 * connection is gone, else DTS_ERROR_OTHER).
 */
extern PGresult *dts_sync_exec(PGconn *conn, const char *sql,
							   const char *what, DtsError *err);
/* The same with text parameters */
extern PGresult *dts_sync_exec_params(PGconn *conn, const char *sql,
									  int nparams, const char *const *params,
									  const char *what, DtsError *err);
/* dts_sync_exec that only reports success: returns 0 or -1 */
extern int	dts_sync_run(PGconn *conn, const char *sql, const char *what,
						 DtsError *err);

/*
 * Connects with conninfo, sets application_name to appname unless the
 * conninfo has one.  Returns the connection, or NULL with err set (class
 * DTS_ERROR_CONNECT; the message shows the conninfo without password).
 */
extern PGconn *dts_sync_connect(const char *conninfo, const char *appname,
								const char *side, DtsError *err);

#endif							/* PG_DTS_SHIP_SYNC_TABLES_H */

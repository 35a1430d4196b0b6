/*-------------------------------------------------------------------------
 *
 * sync_tables.c
 *	  The selected tables of a PostgreSQL-to-PostgreSQL task, resolved on
 *	  the source for the schema sync and the full sync, and the helpers
 *	  both share.
 *
 * The expansion of the task's rules into tables is verify.c's
 * (dts_verify_tables_for_task), so that what is synced is what --verify
 * compares; this file adds what the two phases need from the catalog:
 * column numbers, generated columns, the key, the size, whether binary
 * COPY is safe.
 *
 * shipper/sync_tables.c
 *
 *-------------------------------------------------------------------------
 */
#include "sync_tables.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "verify.h"

/* The table itself: oid, kind, integer key, sizes */
#define TABLE_SQL \
	"SELECT c.oid, c.relkind, " \
	" (SELECT a.attname FROM pg_catalog.pg_constraint k " \
	"  JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid " \
	"   AND a.attnum = k.conkey[1] " \
	"  WHERE k.conrelid = c.oid AND k.contype = 'p' " \
	"   AND pg_catalog.array_length(k.conkey, 1) = 1 " \
	"   AND a.atttypid IN ('int2'::pg_catalog.regtype, " \
	"    'int4'::pg_catalog.regtype, 'int8'::pg_catalog.regtype)), " \
	" CASE WHEN c.relkind = 'p' THEN (SELECT COALESCE(pg_catalog.sum(" \
	"   pg_catalog.pg_relation_size(p.relid)), 0) " \
	"  FROM pg_catalog.pg_partition_tree(c.oid) p WHERE p.isleaf) " \
	"  ELSE pg_catalog.pg_relation_size(c.oid) END, " \
	" CASE WHEN c.relkind = 'p' THEN (SELECT COALESCE(pg_catalog.max(" \
	"   pg_catalog.pg_relation_size(p.relid)), 0) " \
	"  FROM pg_catalog.pg_partition_tree(c.oid) p WHERE p.isleaf) " \
	"  ELSE pg_catalog.pg_relation_size(c.oid) END " \
	"  / pg_catalog.current_setting('block_size')::int " \
	"FROM pg_catalog.pg_class c " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	"WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"

/*
 * Its columns: name, number, generated, binary-unsafe (composite, or an
 * array of a composite or user-defined type: their binary forms carry
 * type OIDs, which differ between clusters), part of the key (primary
 * key, else replica identity index).
 */
#define COLUMNS_SQL \
	"SELECT a.attname, a.attnum, a.attgenerated <> '', " \
	" bt.typtype = 'c' OR bt.oid = 'record'::pg_catalog.regtype " \
	"  OR (bt.typcategory = 'A' AND (et.oid >= 16384 OR et.typtype = 'c')), " \
	" COALESCE(a.attnum = ANY (COALESCE(" \
	"  (SELECT k.conkey FROM pg_catalog.pg_constraint k " \
	"   WHERE k.conrelid = a.attrelid AND k.contype = 'p'), " \
	"  (SELECT i.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index i " \
	"   WHERE i.indrelid = a.attrelid AND i.indisreplident))), false) " \
	"FROM pg_catalog.pg_attribute a " \
	"JOIN pg_catalog.pg_type t ON t.oid = a.atttypid " \
	"JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' " \
	"  THEN t.typbasetype ELSE t.oid END " \
	"LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem " \
	"WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 " \
	"  AND NOT a.attisdropped " \
	"ORDER BY a.attnum"

/* ----------------------------------------------------------------
 *		Text buffer and quoting
 * ----------------------------------------------------------------
 */

static void
buf_reserve(DtsBuf *buf, size_t more)
{
	size_t		need = buf->len + more + 1;

	if (need <= buf->cap)
		return;
	buf->cap = buf->cap ? buf->cap : 256;
	while (buf->cap < need)
		buf->cap *= 2;
	buf->data = dts_realloc(buf->data, buf->cap);
}

void
dts_buf_append(DtsBuf *buf, const char *data, size_t len)
{
	buf_reserve(buf, len);
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
dts_buf_printf(DtsBuf *buf, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(buf, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t) n;
}

void
dts_buf_reset(DtsBuf *buf)
{
	buf->len = 0;
	if (buf->data)
		buf->data[0] = '\0';
}

void
dts_buf_free(DtsBuf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

const char *
dts_buf_str(const DtsBuf *buf)
{
	return buf->data ? buf->data : "";
}

/* Appends s between q's, each q inside doubled */
static void
buf_quoted(DtsBuf *buf, const char *s, char q)
{
	const char *p;

	dts_buf_append(buf, &q, 1);
	for (p = s; *p; p++)
	{
		if (*p == q)
			dts_buf_append(buf, &q, 1);
		dts_buf_append(buf, p, 1);
	}
	dts_buf_append(buf, &q, 1);
}

void
dts_buf_ident(DtsBuf *buf, const char *name)
{
	buf_quoted(buf, name, '"');
}

void
dts_buf_qualified(DtsBuf *buf, const char *schema, const char *name)
{
	dts_buf_ident(buf, schema);
	dts_buf_append(buf, ".", 1);
	dts_buf_ident(buf, name);
}

void
dts_buf_literal(DtsBuf *buf, const char *text)
{
	buf_quoted(buf, text, '\'');
}

static bool
is_plain_ident(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
			  *s == '_' || *s == '$'))
			return false;
	return true;
}

const char *
dts_sync_display_name(const char *schema, const char *name, char *out,
					  size_t outlen)
{
	DtsBuf		buf = {0};

	if (is_plain_ident(schema))
		dts_buf_printf(&buf, "%s", schema);
	else
		dts_buf_ident(&buf, schema);
	dts_buf_append(&buf, ".", 1);
	if (is_plain_ident(name))
		dts_buf_printf(&buf, "%s", name);
	else
		dts_buf_ident(&buf, name);
	snprintf(out, outlen, "%s", dts_buf_str(&buf));
	dts_buf_free(&buf);
	return out;
}

/* ----------------------------------------------------------------
 *		Running SQL
 * ----------------------------------------------------------------
 */

/* The server's primary message, else libpq's, as one line */
static void
set_sql_error(DtsError *err, PGconn *conn, const PGresult *res,
			  const char *what)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
		: NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL)
		: NULL;
	char		line[768];
	size_t		n;

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(conn);
	snprintf(line, sizeof(line), "%s%s%s", msg, detail ? " (" : "",
			 detail ? detail : "");
	if (detail)
		strncat(line, ")", sizeof(line) - strlen(line) - 1);
	for (n = 0; line[n]; n++)
		if (line[n] == '\n')
			line[n] = ' ';
	while (n > 0 && line[n - 1] == ' ')
		line[--n] = '\0';
	dts_error_set(err, PQstatus(conn) == CONNECTION_OK ? DTS_ERROR_OTHER :
				  DTS_ERROR_CONNECT, "%s: %s", what, line);
}

PGresult *
dts_sync_exec_params(PGconn *conn, const char *sql, int nparams,
					 const char *const *params, const char *what,
					 DtsError *err)
{
	PGresult   *res = nparams > 0 ?
		PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0) :
		PQexec(conn, sql);

	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	set_sql_error(err, conn, res, what);
	PQclear(res);
	return NULL;
}

PGresult *
dts_sync_exec(PGconn *conn, const char *sql, const char *what, DtsError *err)
{
	return dts_sync_exec_params(conn, sql, 0, NULL, what, err);
}

int
dts_sync_run(PGconn *conn, const char *sql, const char *what, DtsError *err)
{
	PGresult   *res = dts_sync_exec(conn, sql, what, err);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

PGconn *
dts_sync_connect(const char *conninfo, const char *appname, const char *side,
				 DtsError *err)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {conninfo, appname, NULL};
	PGconn	   *conn = PQconnectdbParams(keys, vals, 1);
	char	   *shown;

	if (conn && PQstatus(conn) == CONNECTION_OK)
	{
		/* our IF NOT EXISTS statements would print notices */
		PQclear(PQexec(conn, "SET client_min_messages = warning"));
		return conn;
	}
	shown = dts_conninfo_for_display(conninfo);
	dts_error_set(err, DTS_ERROR_CONNECT,
				  "could not connect to the %s (%s): %s", side,
				  shown ? shown : "?",
				  conn ? PQerrorMessage(conn) : "out of memory");
	free(shown);
	PQfinish(conn);
	return NULL;
}

/* ----------------------------------------------------------------
 *		The pg sink's settings and the dts tables
 * ----------------------------------------------------------------
 */

int
dts_sync_conflicting_tables(const DtsTask *task, bool *ignore, DtsError *err)
{
	json_t	   *sink;
	json_t	   *value;
	int			rc = 0;

	*ignore = false;
	if (task->sink_json == NULL)
		return 0;
	sink = json_loads(task->sink_json, 0, NULL);
	if (sink == NULL)
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "sink: the task's sink object is not valid JSON");
	value = json_object_get(sink, "conflicting_tables");
	if (value == NULL)
		;
	else if (json_is_string(value) &&
			 strcmp(json_string_value(value), "ignore") == 0)
		*ignore = true;
	else if (!json_is_string(value) ||
			 strcmp(json_string_value(value), "error") != 0)
		rc = dts_error_set(err, DTS_ERROR_FATAL,
						   "sink.conflicting_tables: expected \"error\" or "
						   "\"ignore\"");
	json_decref(sink);
	return rc;
}

int
dts_sync_ensure_dts_tables(PGconn *dst, DtsError *err)
{
	return dts_sync_run(dst,
						"CREATE SCHEMA IF NOT EXISTS dts;"
						"CREATE TABLE IF NOT EXISTS dts.schema_sync_state ("
						" task text NOT NULL,"
						" section text NOT NULL,"
						" kept_tables text[] NOT NULL DEFAULT '{}',"
						" finished_at timestamptz NOT NULL DEFAULT now(),"
						" PRIMARY KEY (task, section));"
						"CREATE TABLE IF NOT EXISTS dts.full_sync_progress ("
						" task text NOT NULL,"
						" schema text NOT NULL,"
						" \"table\" text NOT NULL,"
						" range_no int NOT NULL,"
						" ranges_total int NOT NULL,"
						" range_kind text NOT NULL,"
						" range_from bigint,"
						" range_to bigint,"
						" done bool NOT NULL DEFAULT false,"
						" rows bigint,"
						" bytes bigint,"
						" snapshot text,"
						" snapshot_lsn pg_lsn,"
						" finished_at timestamptz,"
						" PRIMARY KEY (task, schema, \"table\", range_no))",
						"could not create the dts tables on the destination",
						err);
}

/* ----------------------------------------------------------------
 *		The tables
 * ----------------------------------------------------------------
 */

/* The rule's destination name of a source column (NULL: not selected) */
static const char *
rule_column(const DtsVerifyTable *vt, const char *name, bool *listed)
{
	int			i;

	*listed = false;
	if (vt->ncolumns == 0)
		return name;
	for (i = 0; i < vt->ncolumns; i++)
		if (strcmp(vt->columns[i].src_name, name) == 0)
		{
			*listed = true;
			return vt->columns[i].dst_name ? vt->columns[i].dst_name : name;
		}
	return NULL;
}

/* Reads the columns of t (t->src_oid set) and resolves them against vt */
static int
load_columns(PGconn *src, DtsSyncTable *t, const DtsVerifyTable *vt,
			 DtsError *err)
{
	char		oid[16];
	const char *params[1] = {oid};
	PGresult   *res;
	int			i,
				nlisted = 0;
	char		shown[300];

	snprintf(oid, sizeof(oid), "%u", t->src_oid);
	res = dts_sync_exec_params(src, COLUMNS_SQL, 1, params,
							   "could not read the columns of a source table",
							   err);
	if (res == NULL)
		return -1;
	t->columns = calloc(PQntuples(res) + 1, sizeof(DtsSyncColumn));
	t->dropped = calloc(PQntuples(res) + 1, sizeof(DtsSyncDropped));
	if (t->columns == NULL || t->dropped == NULL)
		abort();
	t->binary_ok = true;
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *name = PQgetvalue(res, i, 0);
		bool		listed;
		const char *dst = rule_column(vt, name, &listed);
		bool		is_key = PQgetvalue(res, i, 4)[0] == 't';

		nlisted += listed;
		if (dst == NULL && is_key)
			dst = name;			/* the key goes along (see the header) */
		if (dst == NULL)
		{
			t->dropped[t->ndropped].name = dts_strdup(name);
			t->dropped[t->ndropped++].attnum = atoi(PQgetvalue(res, i, 1));
			continue;
		}
		t->columns[t->ncolumns].src_name = dts_strdup(name);
		t->columns[t->ncolumns].dst_name = dts_strdup(dst);
		t->columns[t->ncolumns].attnum = atoi(PQgetvalue(res, i, 1));
		t->columns[t->ncolumns].generated = PQgetvalue(res, i, 2)[0] == 't';
		if (PQgetvalue(res, i, 3)[0] == 't')
			t->binary_ok = false;
		if (strcmp(dst, name) != 0)
			t->renames_columns = true;
		t->ncolumns++;
	}
	PQclear(res);
	if (nlisted < vt->ncolumns)
	{
		for (i = 0; i < vt->ncolumns; i++)
		{
			int			j;
			bool		found = false;

			for (j = 0; j < t->ncolumns && !found; j++)
				found = strcmp(t->columns[j].src_name,
							   vt->columns[i].src_name) == 0;
			if (!found)
				return dts_error_set(err, DTS_ERROR_FATAL,
									 "column \"%s\" of source table %s does "
									 "not exist", vt->columns[i].src_name,
									 dts_sync_display_name(t->src_schema,
														   t->src_table,
														   shown,
														   sizeof(shown)));
		}
	}
	return 0;
}

/* Fills t from vt and the catalog */
static int
load_table(PGconn *src, DtsSyncTable *t, const DtsVerifyTable *vt,
		   DtsError *err)
{
	const char *params[2] = {vt->src_schema, vt->src_table};
	PGresult   *res;
	char		shown[300];

	t->src_schema = dts_strdup(vt->src_schema);
	t->src_table = dts_strdup(vt->src_table);
	t->dst_schema = dts_strdup(vt->dst_schema ? vt->dst_schema :
							   vt->src_schema);
	t->dst_table = dts_strdup(vt->dst_table ? vt->dst_table : vt->src_table);
	t->where = vt->where ? dts_strdup(vt->where) : NULL;

	res = dts_sync_exec_params(src, TABLE_SQL, 2, params,
							   "could not read a source table", err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1)
	{
		PQclear(res);
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "source table %s does not exist",
							 dts_sync_display_name(vt->src_schema,
												   vt->src_table, shown,
												   sizeof(shown)));
	}
	t->src_oid = (unsigned int) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	t->relkind = PQgetvalue(res, 0, 1)[0];
	if (!PQgetisnull(res, 0, 2))
		t->int_key = dts_strdup(PQgetvalue(res, 0, 2));
	t->size_bytes = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	t->max_blocks = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	PQclear(res);

	if (load_columns(src, t, vt, err) < 0)
		return -1;
	t->mapped = t->renames_columns || t->ndropped > 0 ||
		strcmp(t->src_schema, t->dst_schema) != 0 ||
		strcmp(t->src_table, t->dst_table) != 0;
	return 0;
}

int
dts_sync_tables_for_task(PGconn *src, const DtsTask *task,
						 DtsSyncTable **tablesp, int *ntablesp, DtsError *err)
{
	DtsVerifyTable *vts = NULL;
	int			nvts = 0;
	DtsSyncTable *tables;
	int			i;
	char		msg[512];

	if (dts_verify_tables_for_task(src, task, &vts, &nvts, msg,
								   sizeof(msg)) < 0)
		return dts_error_set(err, PQstatus(src) == CONNECTION_OK ?
							 DTS_ERROR_OTHER : DTS_ERROR_CONNECT, "%s", msg);
	tables = calloc(nvts + 1, sizeof(DtsSyncTable));
	if (tables == NULL)
		abort();
	for (i = 0; i < nvts; i++)
	{
		if (load_table(src, &tables[i], &vts[i], err) < 0)
		{
			dts_sync_tables_free(tables, i + 1);
			dts_verify_tables_free(vts, nvts);
			return -1;
		}
	}
	dts_verify_tables_free(vts, nvts);
	*tablesp = tables;
	*ntablesp = nvts;
	return 0;
}

void
dts_sync_tables_free(DtsSyncTable *tables, int ntables)
{
	int			i,
				j;

	for (i = 0; tables && i < ntables; i++)
	{
		DtsSyncTable *t = &tables[i];

		free(t->src_schema);
		free(t->src_table);
		free(t->dst_schema);
		free(t->dst_table);
		free(t->where);
		free(t->int_key);
		for (j = 0; j < t->ncolumns; j++)
		{
			free(t->columns[j].src_name);
			free(t->columns[j].dst_name);
		}
		free(t->columns);
		for (j = 0; j < t->ndropped; j++)
			free(t->dropped[j].name);
		free(t->dropped);
	}
	free(tables);
}

/*-------------------------------------------------------------------------
 *
 * conflict.c
 *	  Conflicts of the pg sink: the one resolve function (policy x kind ->
 *	  action) and the one reporting function (a row of dts.conflict_log
 *	  plus a log line naming the table, the key, the source transaction
 *	  and why).
 *
 * Detection is the sink's (affected-row counts and SQLSTATE 23505, see
 * sinks/pg.c); carrying out the action is the sink's too.  What to do and
 * how to say it is here, so that the semantics live in one place.
 *
 * shipper/conflict.c
 *
 *-------------------------------------------------------------------------
 */
#include "conflict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXTOID_		25		/* pg_type.oid of text */

DtsConflictAction
dts_conflict_resolve(DtsConflictPolicy policy, DtsConflictKind kind)
{
	/* the row is gone either way: nothing to stop for */
	if (kind == DTS_CONFLICT_DELETE_MISSING)
		return DTS_ACTION_SKIP;
	if (policy == DTS_POLICY_TASK_FAILED)
		return DTS_ACTION_FAIL;

	switch (kind)
	{
		case DTS_CONFLICT_INSERT_EXISTS:
			return policy == DTS_POLICY_OVERWRITE ? DTS_ACTION_OVERWRITE :
				DTS_ACTION_SKIP;
		case DTS_CONFLICT_UPDATE_MISSING:
			return DTS_ACTION_INSERT;
		case DTS_CONFLICT_UPDATE_KEY_CONFLICT:
			return policy == DTS_POLICY_OVERWRITE ? DTS_ACTION_REPLACE :
				DTS_ACTION_SKIP;
		case DTS_CONFLICT_DELETE_MISSING:
			break;
	}
	return DTS_ACTION_SKIP;
}

const char *
dts_conflict_kind_name(DtsConflictKind kind)
{
	switch (kind)
	{
		case DTS_CONFLICT_INSERT_EXISTS:
			return "INSERT_EXISTS";
		case DTS_CONFLICT_UPDATE_MISSING:
			return "UPDATE_MISSING";
		case DTS_CONFLICT_UPDATE_KEY_CONFLICT:
			return "UPDATE_KEY_CONFLICT";
		case DTS_CONFLICT_DELETE_MISSING:
			return "DELETE_MISSING";
	}
	return "UNKNOWN";
}

const char *
dts_conflict_policy_name(DtsConflictPolicy policy)
{
	switch (policy)
	{
		case DTS_POLICY_TASK_FAILED:
			return "TaskFailed";
		case DTS_POLICY_IGNORE:
			return "Ignore";
		case DTS_POLICY_OVERWRITE:
			return "Overwrite";
	}
	return "unknown";
}

const char *
dts_conflict_action_name(DtsConflictAction action)
{
	switch (action)
	{
		case DTS_ACTION_FAIL:
			return "fail";
		case DTS_ACTION_SKIP:
			return "skip";
		case DTS_ACTION_INSERT:
			return "insert";
		case DTS_ACTION_OVERWRITE:
			return "overwrite";
		case DTS_ACTION_REPLACE:
			return "replace";
	}
	return "unknown";
}

bool
dts_conflict_policy_parse(const char *text, DtsConflictPolicy *policy)
{
	static const DtsConflictPolicy all[] = {
		DTS_POLICY_TASK_FAILED, DTS_POLICY_IGNORE, DTS_POLICY_OVERWRITE
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
	{
		if (strcasecmp(text, dts_conflict_policy_name(all[i])) == 0)
		{
			*policy = all[i];
			return true;
		}
	}
	return false;
}

/* ----------------------------------------------------------------
 *		Reporting
 * ----------------------------------------------------------------
 */

/*
 * Parameters of a query: "fixed" leading text parameters, then the key as
 * jsonb_build_object($n::text, $n+1, ...).  Everything is malloc'd in one
 * struct the caller frees with key_query_free().
 */
typedef struct KeyQuery
{
	char	   *sql;
	int			nparams;
	Oid		   *types;
	const char **values;
	int		   *lengths;
	int		   *formats;
} KeyQuery;

static void
key_query_free(KeyQuery *q)
{
	free(q->sql);
	free(q->types);
	free(q->values);
	free(q->lengths);
	free(q->formats);
}

/*
 * Builds prefix || "jsonb_build_object(...)" || suffix with nfixed text
 * parameters first ($1..$nfixed, referenced by prefix and suffix).
 */
static void
key_query_build(KeyQuery *q, const char *prefix, const char *suffix,
				int nfixed, const char *const *fixed,
				const DtsConflictKey *key)
{
	size_t		cap = strlen(prefix) + strlen(suffix) + 32 +
		(size_t) key->n * 32;
	size_t		len;
	int			n = nfixed + 2 * key->n;

	q->sql = dts_realloc(NULL, cap);
	q->nparams = n;
	q->types = dts_realloc(NULL, sizeof(Oid) * (n + 1));
	q->values = dts_realloc(NULL, sizeof(char *) * (n + 1));
	q->lengths = dts_realloc(NULL, sizeof(int) * (n + 1));
	q->formats = dts_realloc(NULL, sizeof(int) * (n + 1));

	for (int i = 0; i < nfixed; i++)
	{
		q->types[i] = TEXTOID_;
		q->values[i] = fixed[i];
		q->lengths[i] = 0;
		q->formats[i] = 0;
	}
	len = (size_t) snprintf(q->sql, cap, "%sjsonb_build_object(", prefix);
	for (int i = 0; i < key->n; i++)
	{
		int			p = nfixed + 2 * i;

		q->types[p] = TEXTOID_;
		q->values[p] = key->names[i];
		q->lengths[p] = 0;
		q->formats[p] = 0;
		q->types[p + 1] = key->types[i];
		q->values[p + 1] = key->values[i];
		q->lengths[p + 1] = key->lengths[i];
		q->formats[p + 1] = key->formats[i];
		len += (size_t) snprintf(q->sql + len, cap - len, "%s$%d::text, $%d",
								 i > 0 ? ", " : "", p + 1, p + 2);
	}
	snprintf(q->sql + len, cap - len, ")%s", suffix);
}

void
dts_conflict_key_text(PGconn *conn, const DtsConflictKey *key, char *buf,
					  size_t len)
{
	KeyQuery	q;
	PGresult   *res;

	if (len == 0)
		return;
	snprintf(buf, len, "(unknown)");
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
		PQtransactionStatus(conn) == PQTRANS_INERROR)
		return;
	key_query_build(&q, "SELECT ", "::text", 0, NULL, key);
	res = PQexecParams(conn, q.sql, q.nparams, q.types, q.values, q.lengths,
					   q.formats, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	key_query_free(&q);
}

int
dts_conflict_report(PGconn *conn, const DtsConflict *c, char *key_text,
					size_t key_text_len, DtsError *err)
{
	char		lsn[DTS_LSN_BUFSIZE];
	const char *fixed[7];
	KeyQuery	q;
	PGresult   *res;
	int			rc = 0;

	dts_lsn_str(c->lsn, lsn);
	fixed[0] = c->task;
	fixed[1] = lsn;
	fixed[2] = c->schema;
	fixed[3] = c->table;
	fixed[4] = dts_conflict_kind_name(c->kind);
	fixed[5] = dts_conflict_action_name(c->action);
	fixed[6] = c->detail;
	key_query_build(&q,
					"INSERT INTO dts.conflict_log "
					"(task, lsn, schema_name, table_name, kind, action, detail, key) "
					"VALUES ($1, $2::pg_lsn, $3, $4, $5, $6, $7, ",
					") RETURNING key::text", 7, fixed, &c->key);
	res = PQexecParams(conn, q.sql, q.nparams, q.types, q.values, q.lengths,
					   q.formats, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		rc = dts_error_set(err, DTS_ERROR_OTHER,
						   "could not log a %s conflict of table \"%s\".\"%s\" in dts.conflict_log: %s",
						   dts_conflict_kind_name(c->kind), c->schema,
						   c->table, PQerrorMessage(conn));
		if (key_text_len > 0)
			snprintf(key_text, key_text_len, "(unknown)");
		goto cleanup;
	}
	if (key_text_len > 0)
		snprintf(key_text, key_text_len, "%s", PQgetvalue(res, 0, 0));
	if (c->action != DTS_ACTION_FAIL)
		dts_log_warning("conflict %s on table \"%s\".\"%s\", key %s, in source transaction %u at %s: %s%saction: %s",
						dts_conflict_kind_name(c->kind), c->schema, c->table,
						PQgetvalue(res, 0, 0), c->xid, lsn,
						c->detail ? c->detail : "",
						c->detail ? " " : "",
						dts_conflict_action_name(c->action));

cleanup:
	PQclear(res);
	key_query_free(&q);
	return rc;
}

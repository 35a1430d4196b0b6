/*-------------------------------------------------------------------------
 *
 * sequences.c
 *	  pg_dts_ship --sync-sequences: set each destination sequence past the
 *	  source's, never backwards.
 *
 * Logical decoding does not carry sequence increments, so after a switch
 * the destination would hand out values the source already used.  Run once
 * writes to the source have stopped: for each sequence the source's
 * (last_value, is_called) and increment give V, the value the source would
 * hand out next, and the destination gets setval(V, true), so its next
 * value is V + increment: one increment of margin past anything the source
 * can have handed out.  A destination already there or beyond is left
 * alone, so running this twice, or after the destination has been used, is
 * harmless.
 *
 * shipper/sequences.c
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

#include "sequences.h"

/* What we know of one sequence on one side */
typedef struct SeqState
{
	int64_t		last_value;
	bool		is_called;
	int64_t		increment;
	int64_t		min_value;
	int64_t		max_value;
} SeqState;

/* The server's message, without its trailing newline, into buf */
static const char *
server_message(PGconn *conn, const PGresult *res, char *buf, size_t len)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) :
	NULL;
	size_t		n;

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(conn);
	snprintf(buf, len, "%s", msg);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

/* "schema"."name", quoted for SQL; malloc'd, NULL when out of memory */
static char *
quote_qualified(PGconn *conn, const char *schema, const char *name)
{
	char	   *qs = PQescapeIdentifier(conn, schema, strlen(schema));
	char	   *qn = PQescapeIdentifier(conn, name, strlen(name));
	char	   *q = NULL;

	if (qs && qn)
	{
		size_t		len = strlen(qs) + strlen(qn) + 2;

		q = malloc(len);
		if (q)
			snprintf(q, len, "%s.%s", qs, qn);
	}
	PQfreemem(qs);
	PQfreemem(qn);
	return q;
}

/*
 * Reads a sequence's state on one side.  Returns true, or false with the
 * reason in why.
 */
static bool
read_sequence(PGconn *conn, const char *qualified, SeqState *st,
			  char *why, size_t whylen)
{
	const char *params[1] = {qualified};
	PGresult   *res;
	char		msg[512];
	char		sql[1024];

	res = PQexecParams(conn,
					   "SELECT s.seqincrement, s.seqmin, s.seqmax "
					   "FROM pg_catalog.pg_sequence s "
					   "WHERE s.seqrelid = $1::pg_catalog.regclass",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			snprintf(why, whylen, "%s is not a sequence", qualified);
		else
			snprintf(why, whylen, "%s",
					 server_message(conn, res, msg, sizeof(msg)));
		PQclear(res);
		return false;
	}
	st->increment = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	st->min_value = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	st->max_value = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);

	snprintf(sql, sizeof(sql), "SELECT last_value, is_called FROM %s",
			 qualified);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		snprintf(why, whylen, "%s",
				 server_message(conn, res, msg, sizeof(msg)));
		PQclear(res);
		return false;
	}
	st->last_value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	st->is_called = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return true;
}

/*
 * V, the value the source hands out next.  A sequence that has reached
 * its end stays at its last value (the destination then ends there too).
 */
static int64_t
source_next(const SeqState *src)
{
	int64_t		next;

	if (!src->is_called)
		return src->last_value;
	if (__builtin_add_overflow(src->last_value, src->increment, &next) ||
		next > src->max_value || next < src->min_value)
		return src->last_value;
	return next;
}

/*
 * Is the destination at or beyond setval(target, true), going the way the
 * sequence goes?
 */
static bool
destination_ahead(const SeqState *dst, int64_t target, bool ascending)
{
	if (dst->last_value == target)
		return dst->is_called;
	return ascending ? dst->last_value > target : dst->last_value < target;
}

/* An identifier as quote_identifier would print it (for messages) */
static void
print_ident(FILE *log, const char *name)
{
	bool		plain = (name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z'));
	const char *p;

	for (p = name; plain && *p; p++)
		plain = (*p == '_' || (*p >= 'a' && *p <= 'z') ||
				 (*p >= '0' && *p <= '9'));
	if (plain)
	{
		fputs(name, log);
		return;
	}
	fputc('"', log);
	for (p = name; *p; p++)
	{
		if (*p == '"')
			fputc('"', log);
		fputc(*p, log);
	}
	fputc('"', log);
}

static void
print_name(FILE *log, const char *schema, const char *name)
{
	print_ident(log, schema);
	fputc('.', log);
	print_ident(log, name);
}

/* One sequence; true when it is in place (set now or already there) */
static bool
sync_one(PGconn *src, PGconn *dst, const DtsSequenceMap *map, FILE *log)
{
	const char *dschema = map->dst_schema ? map->dst_schema : map->src_schema;
	const char *dname = map->dst_name ? map->dst_name : map->src_name;
	char	   *qsrc = quote_qualified(src, map->src_schema, map->src_name);
	char	   *qdst = quote_qualified(dst, dschema, dname);
	SeqState	s,
				d;
	int64_t		target;
	int64_t		next;
	char		why[600];
	char		tbuf[32];
	const char *params[2];
	PGresult   *res = NULL;
	bool		ok = false;

	fprintf(log, "sequence ");
	print_name(log, map->src_schema, map->src_name);
	fprintf(log, " -> ");
	print_name(log, dschema, dname);
	fprintf(log, ": ");
	if (qsrc == NULL || qdst == NULL)
	{
		fprintf(log, "error: out of memory\n");
		goto cleanup;
	}
	if (!read_sequence(src, qsrc, &s, why, sizeof(why)))
	{
		fprintf(log, "error: could not read it on the source: %s\n", why);
		goto cleanup;
	}
	if (!read_sequence(dst, qdst, &d, why, sizeof(why)))
	{
		fprintf(log, "error: could not read it on the destination: %s\n"
				"  hint: Create the sequence on the destination (the task's "
				"schema sync does), or correct the task's name mapping.\n",
				why);
		goto cleanup;
	}

	target = source_next(&s);
	fprintf(log, "source last_value %" PRId64 " (%s), increment %" PRId64
			"; destination last_value %" PRId64 " (%s): ",
			s.last_value, s.is_called ? "called" : "not called",
			s.increment, d.last_value, d.is_called ? "called" : "not called");
	if (destination_ahead(&d, target, s.increment > 0))
	{
		fprintf(log, "%s, left alone\n", d.last_value == target ?
				"already in place" : "destination is ahead");
		ok = true;
		goto cleanup;
	}
	if (target > d.max_value || target < d.min_value)
	{
		fprintf(log, "error: %" PRId64 " is outside the destination's range "
				"%" PRId64 "..%" PRId64 "\n"
				"  hint: ALTER SEQUENCE on the destination to give it the "
				"source's MINVALUE and MAXVALUE, then run again.\n",
				target, d.min_value, d.max_value);
		goto cleanup;
	}

	snprintf(tbuf, sizeof(tbuf), "%" PRId64, target);
	params[0] = qdst;
	params[1] = tbuf;
	res = PQexecParams(dst, "SELECT pg_catalog.setval("
					   "$1::pg_catalog.regclass, $2::bigint, true)",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(log, "error: setval failed: %s\n",
				server_message(dst, res, why, sizeof(why)));
		goto cleanup;
	}
	if (__builtin_add_overflow(target, d.increment, &next) ||
		next > d.max_value || next < d.min_value)
		fprintf(log, "set to %" PRId64 " (at its end, as on the source)\n",
				target);
	else
		fprintf(log, "set to %" PRId64 " (next value %" PRId64 ")\n",
				target, next);
	ok = true;

cleanup:
	PQclear(res);
	free(qsrc);
	free(qdst);
	return ok;
}

int
dts_sync_sequences(PGconn *src, PGconn *dst, const DtsSequenceMap *seqs,
				   int nseqs, FILE *log)
{
	int			nfailed = 0;
	int			i;

	for (i = 0; i < nseqs; i++)
		if (!sync_one(src, dst, &seqs[i], log))
			nfailed++;
	fprintf(log, "%d sequence%s, %d synchronized or already ahead, "
			"%d failed\n", nseqs, nseqs == 1 ? "" : "s", nseqs - nfailed,
			nfailed);
	fflush(log);
	return nfailed;
}

/* ----------------------------------------------------------------
 *		The sequences of a task
 * ----------------------------------------------------------------
 */

/*
 * Sequences of a schema ($1 set, $2 NULL), owned by a table ($1, $2 set),
 * or of every user schema (both NULL).
 */
#define TASK_SEQUENCES_SQL \
	"SELECT n.nspname, s.relname FROM pg_catalog.pg_class s " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace " \
	"WHERE s.relkind = 'S' " \
	"AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'dts') " \
	"AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' " \
	"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e " \
	"  WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"  AND e.objid = s.oid AND e.deptype = 'e') " \
	"AND ($2::text IS NOT NULL OR $1::text IS NULL OR n.nspname = $1) " \
	"AND ($2::text IS NULL OR EXISTS (" \
	"  SELECT 1 FROM pg_catalog.pg_depend d " \
	"  JOIN pg_catalog.pg_class t ON t.oid = d.refobjid " \
	"  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace " \
	"  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"  AND d.objid = s.oid " \
	"  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"  AND d.deptype IN ('a', 'i') AND tn.nspname = $1 AND t.relname = $2)) " \
	"ORDER BY 1, 2"

static char *
dup_or_null(const char *s, bool *oom)
{
	char	   *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

/* Adds schema.name unless it is there already; false when out of memory */
static bool
add_sequence(DtsSequenceMap **seqs, int *n, int *cap, const char *schema,
			 const char *name, const char *dst_schema)
{
	DtsSequenceMap *m;
	bool		oom = false;
	int			i;

	for (i = 0; i < *n; i++)
		if (strcmp((*seqs)[i].src_schema, schema) == 0 &&
			strcmp((*seqs)[i].src_name, name) == 0)
			return true;
	if (*n == *cap)
	{
		int			newcap = *cap ? *cap * 2 : 16;
		DtsSequenceMap *p = realloc(*seqs, newcap * sizeof(DtsSequenceMap));

		if (p == NULL)
			return false;
		*seqs = p;
		*cap = newcap;
	}
	m = &(*seqs)[*n];
	memset(m, 0, sizeof(*m));
	(*n)++;
	m->src_schema = dup_or_null(schema, &oom);
	m->src_name = dup_or_null(name, &oom);
	m->dst_schema = dup_or_null(dst_schema, &oom);
	return !oom;
}

/* Adds the sequences one rule (or, rule NULL, the whole database) selects */
static int
add_rule_sequences(PGconn *src, const DtsTableRule *rule,
				   DtsSequenceMap **seqs, int *n, int *cap,
				   char *err, size_t errlen)
{
	const char *params[2] = {rule ? rule->schema : NULL,
	rule ? rule->table : NULL};
	PGresult   *res = PQexecParams(src, TASK_SEQUENCES_SQL, 2, NULL, params,
								   NULL, NULL, 0);
	char		msg[512];
	int			i;
	int			rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "could not list the sequences on the source: "
				 "%s", server_message(src, res, msg, sizeof(msg)));
		PQclear(res);
		return -1;
	}
	for (i = 0; i < PQntuples(res) && rc == 0; i++)
	{
		const char *schema = PQgetvalue(res, i, 0);
		const char *dst_schema = NULL;

		if (rule && rule->new_schema && strcmp(schema, rule->schema) == 0)
			dst_schema = rule->new_schema;
		if (!add_sequence(seqs, n, cap, schema, PQgetvalue(res, i, 1),
						  dst_schema))
		{
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
	}
	PQclear(res);
	return rc;
}

int
dts_sequences_for_task(PGconn *src, const DtsTask *task,
					   DtsSequenceMap **seqsp, int *nseqsp,
					   char *err, size_t errlen)
{
	DtsSequenceMap *seqs = NULL;
	int			n = 0,
				cap = 0;
	int			i;

	if (task->whole_database &&
		add_rule_sequences(src, NULL, &seqs, &n, &cap, err, errlen) < 0)
		goto fail;
	/* table rules first: their mapping wins over their schema's */
	for (i = 0; !task->whole_database && i < task->nrules; i++)
		if (task->rules[i].table &&
			add_rule_sequences(src, &task->rules[i], &seqs, &n, &cap,
							   err, errlen) < 0)
			goto fail;
	for (i = 0; !task->whole_database && i < task->nrules; i++)
		if (task->rules[i].table == NULL &&
			add_rule_sequences(src, &task->rules[i], &seqs, &n, &cap,
							   err, errlen) < 0)
			goto fail;
	*seqsp = seqs;
	*nseqsp = n;
	return 0;

fail:
	dts_sequences_free(seqs, n);
	return -1;
}

void
dts_sequences_free(DtsSequenceMap *seqs, int nseqs)
{
	int			i;

	for (i = 0; seqs && i < nseqs; i++)
	{
		free(seqs[i].src_schema);
		free(seqs[i].src_name);
		free(seqs[i].dst_schema);
		free(seqs[i].dst_name);
	}
	free(seqs);
}

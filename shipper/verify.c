/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  pg_dts_ship --verify: are the tables on the destination the same as
 *	  on the source?
 *
 * For each table the key is taken from the source (the primary key, else
 * the smallest unique index on NOT NULL plain columns, else the whole row's
 * text).  The source's key space is cut into chunks of opts->chunk_rows
 * source rows (keyset pagination: the boundary is the chunk_rows-th key
 * after the previous boundary), and for each chunk (lo, hi] both sides
 * compute
 *
 *		SELECT count(*), md5(string_agg(md5(ROW(cols)::text), '' ORDER BY key))
 *		FROM t WHERE key > lo AND key <= hi
 *
 * so that what is compared is the text form of every value, in key order.
 * A chunk that differs is halved at the source's median key until a range
 * holds at most opts->min_chunk source rows; such a range is fetched from
 * both sides as (key, md5 of the row) and merged to name the keys missing
 * on the destination, extra on it, or with other values.  The first and
 * last chunks are open-ended, so destination rows below or above every
 * source key are found too.  The row filter (the task's WHERE) applies to
 * the source only: the destination must hold exactly the filtered rows.
 *
 * Text forms are made comparable by the session settings (DateStyle ISO,
 * TimeZone UTC, extra_float_digits 3, ...); text keys are compared in
 * their own collation when both sides use the same one, else in byte order
 * (COLLATE "C") on both.  Each side reads one REPEATABLE READ READ ONLY
 * snapshot for the whole run; a savepoint per table keeps the snapshot
 * when one table's query fails.
 *
 * docs/verify.md is the user's side of this.
 *
 * shipper/verify.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

#include "verify.h"

/* Deepest bisection: 2^40 chunks is far beyond any table */
#define VERIFY_MAX_DEPTH	40

/* Most columns a key can add to the compared ones (INDEX_MAX_KEYS) */
#define VERIFY_MAX_KEY_COLUMNS	32

/* Longest row text shown for a row with different values */
#define VERIFY_ROW_SHOWN	200

typedef enum VerifySide
{
	SIDE_SRC = 0,
	SIDE_DST = 1
} VerifySide;

static const char *const side_name[] = {"source", "destination"};

/* A growing malloc'd string; oom is sticky and checked before use. */
typedef struct StrBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		oom;
} StrBuf;

/*
 * One side of a table being compared: the SQL fragments its queries are
 * made of (identifiers already quoted), all malloc'd.
 */
typedef struct TableSide
{
	PGconn	   *conn;
	char	   *rel;			/* "schema"."table" */
	char	   *rowexpr;		/* ROW(c1, c2, ...)::text */
	char	   *keylist;		/* k1, k2 (with COLLATE "C" when needed) */
	char	   *keyrow;			/* (k1, k2), or k1 alone */
	char	   *filter;			/* row filter (source only) or NULL */
} TableSide;

/* A key value: nkeys texts (NULL = SQL NULL), or no key (vals NULL). */
typedef struct KeyVal
{
	char	  **vals;
} KeyVal;

/* One row fetched for the row-by-row comparison of a small range */
typedef struct RowKey
{
	char	   *match;			/* the key, encoded for matching */
	char	  **vals;			/* the key, as nkeys texts */
	char	   *hash;			/* md5 of the row text */
	bool		matched;
} RowKey;

/* Everything about the table being compared */
typedef struct TableCtx
{
	const DtsVerifyOptions *opts;
	TableSide	side[2];
	int			nkeys;
	char	  **keynames;		/* for messages; {"row"} when keyless */
	bool		keyless;
	char	   *keynote;		/* how the key was chosen, for the report */
	bool		keynote_always; /* print it even when the table is ok */

	/* results */
	long long	rows[2];
	int			nranges;		/* differing bottom-level ranges */
	long long	nmissing;
	long long	nextra;
	long long	nchanged;
	int			nlisted;		/* keys listed so far */
	long long	nunlisted;
	int			nranges_listed;

	/* the detail lines, printed after the table's line */
	FILE	   *detail;
	char	   *detailbuf;
	size_t		detaillen;

	/* why the table could not be compared ("" = it could) */
	char		error[1024];
	char		hint[256];
	bool		fatal;			/* a connection is gone */
} TableCtx;

/* ----------------------------------------------------------------
 *		Small helpers: strings, identifiers, queries
 * ----------------------------------------------------------------
 */

static void
sb_append(StrBuf *sb, const char *s)
{
	size_t		n = strlen(s);

	if (sb->oom)
		return;
	if (sb->len + n + 1 > sb->cap)
	{
		size_t		cap = sb->cap ? sb->cap : 256;
		char	   *p;

		while (sb->len + n + 1 > cap)
			cap *= 2;
		p = realloc(sb->data, cap);
		if (p == NULL)
		{
			sb->oom = true;
			return;
		}
		sb->data = p;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, s, n + 1);
	sb->len += n;
}

static void
sb_printf(StrBuf *sb, const char *fmt,...)
__attribute__((format(printf, 2, 3)));

static void
sb_printf(StrBuf *sb, const char *fmt,...)
{
	va_list		ap;
	char		small[256];
	char	   *s = small;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n >= (int) sizeof(small))
	{
		s = malloc(n + 1);
		if (s != NULL)
		{
			va_start(ap, fmt);
			vsnprintf(s, n + 1, fmt, ap);
			va_end(ap);
		}
	}
	if (n < 0 || s == NULL)
	{
		sb->oom = true;
		return;
	}
	sb_append(sb, s);
	if (s != small)
		free(s);
}

/* Appends name as a quoted identifier (PQescapeIdentifier). */
static void
sb_ident(StrBuf *sb, PGconn *conn, const char *name)
{
	char	   *q = PQescapeIdentifier(conn, name, strlen(name));

	if (q == NULL)
	{
		sb->oom = true;
		return;
	}
	sb_append(sb, q);
	PQfreemem(q);
}

/* Hands the string over (the caller frees it); NULL when memory ran out. */
static char *
sb_finish(StrBuf *sb)
{
	char	   *s;

	if (sb->oom || sb->data == NULL)
	{
		free(sb->data);
		s = sb->oom ? NULL : strdup("");
	}
	else
		s = sb->data;
	memset(sb, 0, sizeof(*sb));
	return s;
}

/*
 * An identifier as PostgreSQL's quote_identifier would print it: bare when
 * it is a plain lower-case name, else in double quotes.  For messages only.
 */
static void
sb_display_ident(StrBuf *sb, const char *name)
{
	bool		plain = (name[0] != '\0' &&
						 (islower((unsigned char) name[0]) || name[0] == '_'));
	const char *p;

	for (p = name; plain && *p; p++)
		if (!(islower((unsigned char) *p) || isdigit((unsigned char) *p) ||
			  *p == '_'))
			plain = false;
	if (plain)
	{
		sb_append(sb, name);
		return;
	}
	sb_append(sb, "\"");
	for (p = name; *p; p++)
	{
		char		c[2] = {*p, '\0'};

		sb_append(sb, *p == '"' ? "\"\"" : c);
	}
	sb_append(sb, "\"");
}

/* "schema.table" for messages, malloc'd (or NULL when out of memory) */
static char *
display_qualified(const char *schema, const char *name)
{
	StrBuf		sb = {0};

	sb_display_ident(&sb, schema);
	sb_append(&sb, ".");
	sb_display_ident(&sb, name);
	return sb_finish(&sb);
}

/* A value for messages: as is when it looks like a number, else quoted. */
static void
sb_display_value(StrBuf *sb, const char *val)
{
	const char *p;
	bool		numeric;

	if (val == NULL)
	{
		sb_append(sb, "NULL");
		return;
	}
	numeric = (val[0] != '\0');
	for (p = val; numeric && *p; p++)
		if (!(isdigit((unsigned char) *p) || *p == '-' || *p == '.' ||
			  *p == 'e' || *p == 'E' || *p == '+'))
			numeric = false;
	if (numeric)
	{
		sb_append(sb, val);
		return;
	}
	sb_append(sb, "'");
	for (p = val; *p; p++)
	{
		char		c[2] = {*p, '\0'};

		sb_append(sb, *p == '\'' ? "''" : c);
	}
	sb_append(sb, "'");
}

/* Records the first error of a table; later ones are consequences. */
static void
table_error(TableCtx *tc, const char *hint, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static void
table_error(TableCtx *tc, const char *hint, const char *fmt,...)
{
	va_list		ap;

	if (tc->error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(tc->error, sizeof(tc->error), fmt, ap);
	va_end(ap);
	if (hint)
		snprintf(tc->hint, sizeof(tc->hint), "%s", hint);
}

/*
 * The server's primary message (from res, else the connection's last
 * error) without its trailing newline, copied into buf.
 */
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

/*
 * Runs sql with text parameters on one side.  Returns the result (the
 * caller clears it) when it is PGRES_TUPLES_OK or PGRES_COMMAND_OK; else
 * records the error in tc (what, on which side, the server's words) and
 * returns NULL.
 */
static PGresult *
side_exec(TableCtx *tc, VerifySide side, const char *what, const char *sql,
		  int nparams, const char *const *params)
{
	PGconn	   *conn = tc->side[side].conn;
	PGresult   *res;
	char		msg[512];

	if (sql == NULL)
	{
		table_error(tc, NULL, "out of memory");
		return NULL;
	}
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (res && (PQresultStatus(res) == PGRES_TUPLES_OK ||
				PQresultStatus(res) == PGRES_COMMAND_OK))
		return res;
	table_error(tc, NULL, "could not %s on the %s: %s", what,
				side_name[side], server_message(conn, res, msg, sizeof(msg)));
	if (PQstatus(conn) == CONNECTION_BAD)
		tc->fatal = true;
	PQclear(res);
	return NULL;
}

/* Runs a command without a TableCtx; says what failed on report. */
static bool
conn_command(PGconn *conn, VerifySide side, const char *sql, FILE *report)
{
	PGresult   *res = PQexec(conn, sql);
	bool		ok = (PQresultStatus(res) == PGRES_COMMAND_OK);
	char		msg[512];

	if (!ok)
		fprintf(report, "error: could not run \"%s\" on the %s: %s\n",
				sql, side_name[side],
				server_message(conn, res, msg, sizeof(msg)));
	PQclear(res);
	return ok;
}

/* ----------------------------------------------------------------
 *		Keys
 * ----------------------------------------------------------------
 */

static void
key_free(KeyVal *k, int nkeys)
{
	int			i;

	if (k->vals == NULL)
		return;
	for (i = 0; i < nkeys; i++)
		free(k->vals[i]);
	free(k->vals);
	k->vals = NULL;
}

/* Copies the first nkeys fields of a result row; false when out of memory */
static bool
key_from_result(KeyVal *k, const PGresult *res, int row, int nkeys)
{
	int			i;

	k->vals = calloc(nkeys, sizeof(char *));
	if (k->vals == NULL)
		return false;
	for (i = 0; i < nkeys; i++)
	{
		if (PQgetisnull(res, row, i))
			continue;
		k->vals[i] = strdup(PQgetvalue(res, row, i));
		if (k->vals[i] == NULL)
		{
			key_free(k, nkeys);
			return false;
		}
	}
	return true;
}

static bool
key_equal(const KeyVal *a, const KeyVal *b, int nkeys)
{
	int			i;

	if (a->vals == NULL || b->vals == NULL)
		return a->vals == b->vals;
	for (i = 0; i < nkeys; i++)
	{
		if ((a->vals[i] == NULL) != (b->vals[i] == NULL))
			return false;
		if (a->vals[i] && strcmp(a->vals[i], b->vals[i]) != 0)
			return false;
	}
	return true;
}

/* "id=42", "(a, b)=(1, 'x')" or "row (...)" */
static void
sb_display_key(StrBuf *sb, const TableCtx *tc, char *const *vals)
{
	int			i;

	if (tc->keyless)
	{
		sb_append(sb, "row ");
		sb_append(sb, vals[0] ? vals[0] : "NULL");
		return;
	}
	if (tc->nkeys > 1)
		sb_append(sb, "(");
	for (i = 0; i < tc->nkeys; i++)
	{
		if (i > 0)
			sb_append(sb, ", ");
		sb_display_ident(sb, tc->keynames[i]);
	}
	sb_append(sb, tc->nkeys > 1 ? ")=(" : "=");
	for (i = 0; i < tc->nkeys; i++)
	{
		if (i > 0)
			sb_append(sb, ", ");
		if (vals[i] == NULL)
			sb_append(sb, "NULL");
		else
			sb_display_value(sb, vals[i]);
	}
	if (tc->nkeys > 1)
		sb_append(sb, ")");
}

/* "id > 1000 and id <= 2000", for the range lines of the report */
static void
sb_display_range(StrBuf *sb, const TableCtx *tc, const KeyVal *lo,
				 const KeyVal *hi)
{
	if (lo->vals == NULL && hi->vals == NULL)
	{
		sb_append(sb, "all rows");
		return;
	}
	if (lo->vals)
	{
		sb_append(sb, "after ");
		sb_display_key(sb, tc, lo->vals);
	}
	if (hi->vals)
	{
		sb_append(sb, lo->vals ? " up to " : "up to ");
		sb_display_key(sb, tc, hi->vals);
	}
}

/*
 * The WHERE clause of a range query on one side: the row filter (source
 * only) and keyrow > lo and keyrow <= hi (hi_op, "=" to ask for one key),
 * with the parameters numbered from 1, lo's first.  params receives
 * pointers into lo and hi.
 */
static void
sb_range_where(StrBuf *sb, const TableSide *ts, int nkeys,
			   const KeyVal *lo, const KeyVal *hi, const char *hi_op,
			   const char **params, int *nparams)
{
	const char *glue = " WHERE ";
	int			b,
				i;

	*nparams = 0;
	if (ts->filter)
	{
		sb_printf(sb, "%s(%s)", glue, ts->filter);
		glue = " AND ";
	}
	for (b = 0; b < 2; b++)
	{
		const KeyVal *k = b == 0 ? lo : hi;

		if (k->vals == NULL)
			continue;
		sb_printf(sb, "%s%s %s ", glue, ts->keyrow, b == 0 ? ">" : hi_op);
		glue = " AND ";
		if (nkeys > 1)
			sb_append(sb, "(");
		for (i = 0; i < nkeys; i++)
		{
			params[*nparams] = k->vals[i];
			(*nparams)++;
			sb_printf(sb, "%s$%d", i > 0 ? ", " : "", *nparams);
		}
		if (nkeys > 1)
			sb_append(sb, ")");
	}
}

/* ----------------------------------------------------------------
 *		Queries on a range (lo, hi]
 * ----------------------------------------------------------------
 */

/*
 * The result of a query sent with PQsendQueryParams (sent: whether that
 * worked), read to the end.  Like side_exec: the result, or NULL with the
 * error recorded.
 */
static PGresult *
side_result(TableCtx *tc, VerifySide side, bool sent, const char *what)
{
	PGconn	   *conn = tc->side[side].conn;
	PGresult   *res = sent ? PQgetResult(conn) : NULL;
	PGresult   *more;
	char		msg[512];

	while (sent && (more = PQgetResult(conn)) != NULL)
		PQclear(more);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	table_error(tc, NULL, "could not %s on the %s: %s", what,
				side_name[side], server_message(conn, res, msg, sizeof(msg)));
	if (PQstatus(conn) == CONNECTION_BAD)
		tc->fatal = true;
	PQclear(res);
	return NULL;
}

/*
 * count(*) and the hash of the rows in (lo, hi], on both sides at once
 * (the two servers work in parallel).  n and h are indexed by side; the
 * hashes are malloc'd for the caller, both NULL on failure.
 */
static bool
range_hash(TableCtx *tc, const KeyVal *lo, const KeyVal *hi,
		   long long n[2], char *h[2])
{
	const char **params[2] = {NULL, NULL};
	int			nparams[2] = {0, 0};
	char	   *sql[2] = {NULL, NULL};
	bool		sent[2] = {false, false};
	PGresult   *res[2] = {NULL, NULL};
	bool		ok = true;
	int			s;

	h[SIDE_SRC] = h[SIDE_DST] = NULL;
	for (s = 0; s < 2; s++)
	{
		const TableSide *ts = &tc->side[s];
		StrBuf		sb = {0};

		params[s] = calloc(2 * tc->nkeys + 1, sizeof(char *));
		if (params[s] == NULL)
			continue;
		sb_printf(&sb, "SELECT pg_catalog.count(*), pg_catalog.md5("
				  "pg_catalog.string_agg(pg_catalog.md5(%s), '' "
				  "ORDER BY %s)) FROM %s", ts->rowexpr, ts->keylist, ts->rel);
		sb_range_where(&sb, ts, tc->nkeys, lo, hi, "<=", params[s],
					   &nparams[s]);
		sql[s] = sb_finish(&sb);
	}
	if (sql[SIDE_SRC] == NULL || sql[SIDE_DST] == NULL)
	{
		table_error(tc, NULL, "out of memory");
		ok = false;
		goto cleanup;
	}

	for (s = 0; s < 2; s++)
		sent[s] = PQsendQueryParams(tc->side[s].conn, sql[s], nparams[s],
									NULL, params[s], NULL, NULL, 0) == 1;
	for (s = 0; s < 2; s++)
	{
		res[s] = side_result(tc, (VerifySide) s, sent[s],
							 "hash a range of rows");
		if (res[s] == NULL)
		{
			ok = false;
			continue;
		}
		n[s] = strtoll(PQgetvalue(res[s], 0, 0), NULL, 10);
		h[s] = strdup(PQgetisnull(res[s], 0, 1) ? "" :
					  PQgetvalue(res[s], 0, 1));
		if (h[s] == NULL)
		{
			table_error(tc, NULL, "out of memory");
			ok = false;
		}
	}

cleanup:
	for (s = 0; s < 2; s++)
	{
		PQclear(res[s]);
		free(sql[s]);
		free(params[s]);
		if (!ok)
		{
			free(h[s]);
			h[s] = NULL;
		}
	}
	return ok;
}

/*
 * The key of the source row at offset "offset" (0-based) in key order
 * within (lo, hi]; found->vals stays NULL when there is no such row.
 */
static bool
range_key_at(TableCtx *tc, const KeyVal *lo, const KeyVal *hi,
			 long long offset, KeyVal *found)
{
	const TableSide *ts = &tc->side[SIDE_SRC];
	StrBuf		sb = {0};
	const char **params = calloc(2 * tc->nkeys + 1, sizeof(char *));
	int			nparams;
	char	   *sql;
	PGresult   *res = NULL;
	bool		ok = false;

	found->vals = NULL;
	if (params == NULL)
	{
		table_error(tc, NULL, "out of memory");
		return false;
	}
	sb_printf(&sb, "SELECT %s FROM %s", ts->keylist, ts->rel);
	sb_range_where(&sb, ts, tc->nkeys, lo, hi, "<=", params, &nparams);
	sb_printf(&sb, " ORDER BY %s OFFSET %lld LIMIT 1", ts->keylist, offset);
	sql = sb_finish(&sb);
	res = side_exec(tc, SIDE_SRC, "find a chunk boundary", sql, nparams,
					params);
	free(sql);
	if (res == NULL)
		goto cleanup;
	ok = true;
	if (PQntuples(res) == 1 && !key_from_result(found, res, 0, tc->nkeys))
	{
		table_error(tc, NULL, "out of memory");
		ok = false;
	}

cleanup:
	PQclear(res);
	free(params);
	return ok;
}

/* ----------------------------------------------------------------
 *		Row-by-row comparison of a small range
 * ----------------------------------------------------------------
 */

static void
rows_free(RowKey *rows, int n, int nkeys)
{
	int			i;

	for (i = 0; rows && i < n; i++)
	{
		KeyVal		k = {rows[i].vals};

		key_free(&k, nkeys);
		free(rows[i].match);
		free(rows[i].hash);
	}
	free(rows);
}

/*
 * Fetches (key, md5 of the row) for at most limit rows of (lo, hi] on one
 * side, in key order.  The match string encodes the key so that equal keys
 * (and only those) have equal strings: per value 'N' or 'V', length, ':'.
 */
static bool
range_rows(TableCtx *tc, VerifySide side, const KeyVal *lo, const KeyVal *hi,
		   long long limit, RowKey **rowsp, int *nrowsp)
{
	const TableSide *ts = &tc->side[side];
	StrBuf		sb = {0};
	const char **params = calloc(2 * tc->nkeys + 1, sizeof(char *));
	int			nparams;
	char	   *sql;
	PGresult   *res = NULL;
	RowKey	   *rows = NULL;
	int			nrows = 0;
	int			i,
				j;
	bool		ok = false;

	if (params == NULL)
		goto oom;
	sb_printf(&sb, "SELECT %s, pg_catalog.md5(%s) FROM %s", ts->keylist,
			  ts->rowexpr, ts->rel);
	sb_range_where(&sb, ts, tc->nkeys, lo, hi, "<=", params, &nparams);
	sb_printf(&sb, " ORDER BY %s LIMIT %lld", ts->keylist, limit);
	sql = sb_finish(&sb);
	res = side_exec(tc, side, "read a range of rows", sql, nparams, params);
	free(sql);
	if (res == NULL)
		goto cleanup;

	rows = calloc(PQntuples(res) + 1, sizeof(RowKey));
	if (rows == NULL)
		goto oom;
	for (i = 0; i < PQntuples(res); i++)
	{
		KeyVal		k;
		StrBuf		m = {0};

		if (!key_from_result(&k, res, i, tc->nkeys))
			goto oom;
		rows[i].vals = k.vals;
		nrows = i + 1;
		for (j = 0; j < tc->nkeys; j++)
		{
			if (k.vals[j] == NULL)
				sb_append(&m, "N");
			else
				sb_printf(&m, "V%zu:%s", strlen(k.vals[j]), k.vals[j]);
		}
		rows[i].match = sb_finish(&m);
		rows[i].hash = strdup(PQgetvalue(res, i, tc->nkeys));
		if (rows[i].match == NULL || rows[i].hash == NULL)
			goto oom;
	}
	ok = true;
	goto cleanup;

oom:
	table_error(tc, NULL, "out of memory");
cleanup:
	PQclear(res);
	free(params);
	if (!ok)
	{
		rows_free(rows, nrows, tc->nkeys);
		rows = NULL;
		nrows = 0;
	}
	*rowsp = rows;
	*nrowsp = nrows;
	return ok;
}

static int
rowkey_ptr_cmp(const void *a, const void *b)
{
	const RowKey *ra = *(RowKey *const *) a;
	const RowKey *rb = *(RowKey *const *) b;

	return strcmp(ra->match, rb->match);
}

/* The first unmatched row of sorted[0..n-1] whose key matches, or NULL */
static RowKey *
find_unmatched(RowKey **sorted, int n, const char *match)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (strcmp(sorted[mid]->match, match) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && strcmp(sorted[lo]->match, match) == 0; lo++)
		if (!sorted[lo]->matched)
			return sorted[lo];
	return NULL;
}

/* The row text of the row with this key on one side, for the report */
static void
sb_row_text(StrBuf *sb, TableCtx *tc, VerifySide side, char *const *vals)
{
	const TableSide *ts = &tc->side[side];
	KeyVal		eq = {(char **) vals};
	KeyVal		none = {NULL};
	StrBuf		q = {0};
	const char **params = calloc(2 * tc->nkeys + 1, sizeof(char *));
	int			nparams;
	char	   *sql;
	PGresult   *res;
	const char *text;

	if (params == NULL)
		return;
	sb_printf(&q, "SELECT %s FROM %s", ts->rowexpr, ts->rel);
	sb_range_where(&q, ts, tc->nkeys, &none, &eq, "=", params, &nparams);
	sql = sb_finish(&q);
	res = side_exec(tc, side, "read a row", sql, nparams, params);
	free(sql);
	free(params);
	if (res == NULL)
		return;
	text = PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "(no row)";
	if (strlen(text) > VERIFY_ROW_SHOWN)
		sb_printf(sb, "%.*s...", VERIFY_ROW_SHOWN, text);
	else
		sb_append(sb, text);
	PQclear(res);
}

/* One differing row: counted always, listed while under the cap */
static void
report_row(TableCtx *tc, const char *what, char *const *vals, bool show_rows)
{
	StrBuf		sb = {0};
	char	   *line;

	if (tc->nlisted >= tc->opts->max_listed)
	{
		tc->nunlisted++;
		return;
	}
	tc->nlisted++;
	sb_printf(&sb, "    %s: ", what);
	sb_display_key(&sb, tc, vals);
	if (show_rows)
	{
		sb_append(&sb, "\n      source:      ");
		sb_row_text(&sb, tc, SIDE_SRC, vals);
		sb_append(&sb, "\n      destination: ");
		sb_row_text(&sb, tc, SIDE_DST, vals);
	}
	line = sb_finish(&sb);
	if (line)
		fprintf(tc->detail, "%s\n", line);
	free(line);
}

/*
 * Compares (lo, hi] row by row: the rows of both sides are matched by key
 * (sorted copies, binary search) and the differences reported in source
 * order, then the destination's extra rows in its order.
 */
static void
compare_rows(TableCtx *tc, const KeyVal *lo, const KeyVal *hi,
			 long long nsrc, long long ndst)
{
	RowKey	   *src = NULL,
			   *dst = NULL;
	int			nsrc_rows = 0,
				ndst_rows = 0;
	RowKey	  **sorted = NULL;
	long long	dst_limit = nsrc + 2 * tc->opts->min_chunk + tc->opts->max_listed;
	int			i;

	if (!range_rows(tc, SIDE_SRC, lo, hi, nsrc + 1, &src, &nsrc_rows) ||
		!range_rows(tc, SIDE_DST, lo, hi, dst_limit, &dst, &ndst_rows))
		goto cleanup;
	sorted = calloc(ndst_rows + 1, sizeof(RowKey *));
	if (sorted == NULL)
	{
		table_error(tc, NULL, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < ndst_rows; i++)
		sorted[i] = &dst[i];
	qsort(sorted, ndst_rows, sizeof(RowKey *), rowkey_ptr_cmp);

	for (i = 0; i < nsrc_rows; i++)
	{
		RowKey	   *d = find_unmatched(sorted, ndst_rows, src[i].match);

		if (d == NULL)
		{
			tc->nmissing++;
			report_row(tc, "missing on destination", src[i].vals, false);
			continue;
		}
		d->matched = true;
		if (strcmp(d->hash, src[i].hash) != 0)
		{
			tc->nchanged++;
			report_row(tc, "different values", src[i].vals, !tc->keyless);
		}
	}
	for (i = 0; i < ndst_rows; i++)
	{
		if (dst[i].matched)
			continue;
		tc->nextra++;
		report_row(tc, "extra on destination", dst[i].vals, false);
	}
	if (ndst > ndst_rows)
	{
		/* the destination has far more rows here: count, do not list */
		tc->nextra += ndst - ndst_rows;
		tc->nunlisted += ndst - ndst_rows;
	}

cleanup:
	free(sorted);
	rows_free(src, nsrc_rows, tc->nkeys);
	rows_free(dst, ndst_rows, tc->nkeys);
}

/* ----------------------------------------------------------------
 *		Bisection
 * ----------------------------------------------------------------
 */

/* The line that opens a differing range in the details */
static void
report_range(TableCtx *tc, const KeyVal *lo, const KeyVal *hi,
			 long long nsrc, long long ndst)
{
	StrBuf		sb = {0};
	char	   *line;

	tc->nranges++;
	if (tc->nranges_listed >= tc->opts->max_listed)
		return;
	tc->nranges_listed++;
	sb_append(&sb, "  range ");
	sb_display_range(&sb, tc, lo, hi);
	sb_printf(&sb, ": source %lld rows, destination %lld rows", nsrc, ndst);
	line = sb_finish(&sb);
	if (line)
		fprintf(tc->detail, "%s\n", line);
	free(line);
}

/*
 * (lo, hi] has nsrc/ndst rows and hashes hsrc/hdst.  When they differ,
 * halves it at the source's median key and goes down the differing halves,
 * or compares it row by row once it is small (or cannot be split).
 */
static void
compare_range(TableCtx *tc, const KeyVal *lo, const KeyVal *hi,
			  long long nsrc, const char *hsrc, long long ndst,
			  const char *hdst, int depth)
{
	KeyVal		mid = {NULL};
	long long	n[2][2];
	char	   *h[2][2] = {{NULL, NULL}, {NULL, NULL}};
	int			half,
				s;

	if (nsrc == ndst && strcmp(hsrc, hdst) == 0)
		return;
	if (tc->error[0] != '\0')
		return;

	if (nsrc > tc->opts->min_chunk && depth < VERIFY_MAX_DEPTH)
	{
		if (!range_key_at(tc, lo, hi, nsrc / 2 - 1, &mid))
			return;
		/* many equal keys (a keyless table's duplicates) cannot be split */
		if (mid.vals != NULL && hi->vals != NULL &&
			key_equal(&mid, hi, tc->nkeys))
			key_free(&mid, tc->nkeys);
	}
	if (mid.vals == NULL)
	{
		report_range(tc, lo, hi, nsrc, ndst);
		compare_rows(tc, lo, hi, nsrc, ndst);
		return;
	}

	for (half = 0; half < 2; half++)
		if (!range_hash(tc, half == 0 ? lo : &mid, half == 0 ? &mid : hi,
						n[half], h[half]))
			goto cleanup;
	for (half = 0; half < 2; half++)
		compare_range(tc, half == 0 ? lo : &mid, half == 0 ? &mid : hi,
					  n[half][SIDE_SRC], h[half][SIDE_SRC],
					  n[half][SIDE_DST], h[half][SIDE_DST], depth + 1);

cleanup:
	for (half = 0; half < 2; half++)
		for (s = 0; s < 2; s++)
			free(h[half][s]);
	key_free(&mid, tc->nkeys);
}

/*
 * The top level: chunks of chunk_rows source rows, from before the first
 * key to after the last, each hashed on both sides and compared.
 */
static void
compare_table_rows(TableCtx *tc)
{
	KeyVal		lo = {NULL};
	KeyVal		hi = {NULL};
	const KeyVal none = {NULL};

	for (;;)
	{
		long long	n[2];
		char	   *h[2] = {NULL, NULL};
		bool		ok;

		if (!range_key_at(tc, &lo, &none, tc->opts->chunk_rows - 1, &hi))
			break;
		ok = range_hash(tc, &lo, &hi, n, h);
		if (ok)
		{
			tc->rows[SIDE_SRC] += n[SIDE_SRC];
			tc->rows[SIDE_DST] += n[SIDE_DST];
			compare_range(tc, &lo, &hi, n[SIDE_SRC], h[SIDE_SRC],
						  n[SIDE_DST], h[SIDE_DST], 0);
		}
		free(h[SIDE_SRC]);
		free(h[SIDE_DST]);
		if (!ok || tc->error[0] != '\0' || hi.vals == NULL)
			break;
		key_free(&lo, tc->nkeys);
		lo = hi;
		hi.vals = NULL;
	}
	key_free(&lo, tc->nkeys);
	key_free(&hi, tc->nkeys);
}

/* ----------------------------------------------------------------
 *		Setting a table up: relations, columns, key
 * ----------------------------------------------------------------
 */

/*
 * The effective collation of a column, as text that is equal on two
 * servers when they sort that column the same way ("" if not collatable).
 */
#define COLLATION_SQL \
	"CASE WHEN a.attcollation = 0 THEN '' " \
	"WHEN co.collname = 'default' THEN 'default/' || d.datcollate " \
	"ELSE co.collname || '/' || co.collprovider::text || '/' || " \
	"     coalesce(co.collcollate, '') END"

#define COLUMNS_SQL \
	"SELECT a.attname, a.attnotnull, " COLLATION_SQL ", a.attnum " \
	"FROM pg_catalog.pg_attribute a " \
	"LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation " \
	"JOIN pg_catalog.pg_database d ON d.datname = " \
	"     pg_catalog.current_database() " \
	"WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped " \
	"ORDER BY a.attnum"

#define RELATION_SQL \
	"SELECT c.oid FROM pg_catalog.pg_class c " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	"WHERE n.nspname = $1 AND c.relname = $2 " \
	"AND c.relkind IN ('r', 'p', 'm', 'f', 'v')"

/* Unique indexes usable as a key, best first */
#define KEYS_SQL \
	"SELECT i.indisprimary, ic.relname, " \
	"       (SELECT pg_catalog.array_agg(k ORDER BY o) FROM " \
	"        pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS u(k, o) " \
	"        WHERE o <= i.indnkeyatts)::text " \
	"FROM pg_catalog.pg_index i " \
	"JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid " \
	"WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid " \
	"AND i.indpred IS NULL AND i.indexprs IS NULL " \
	"ORDER BY i.indisprimary DESC, i.indnkeyatts, ic.relname"

/* The columns of one side's table */
typedef struct ColumnInfo
{
	char	   *name;
	bool		notnull;
	char	   *collation;
	int			attnum;
} ColumnInfo;

typedef struct TableColumns
{
	char	   *oid;
	ColumnInfo *cols;
	int			ncols;
} TableColumns;

static void
table_columns_free(TableColumns *tcols)
{
	int			i;

	for (i = 0; i < tcols->ncols; i++)
	{
		free(tcols->cols[i].name);
		free(tcols->cols[i].collation);
	}
	free(tcols->cols);
	free(tcols->oid);
	memset(tcols, 0, sizeof(*tcols));
}

/* Finds a relation and reads its columns; false (error recorded) if not */
static bool
table_columns(TableCtx *tc, VerifySide side, const char *schema,
			  const char *table, TableColumns *tcols)
{
	const char *params[2] = {schema, table};
	PGresult   *res;
	int			i;

	memset(tcols, 0, sizeof(*tcols));
	res = side_exec(tc, side, "look up the table", RELATION_SQL, 2, params);
	if (res == NULL)
		return false;
	if (PQntuples(res) == 0)
	{
		char	   *name = display_qualified(schema, table);

		table_error(tc, side == SIDE_DST ?
					"Create it (the task's schema sync does), or correct the "
					"task's name mapping." :
					"Correct the task's object selection.",
					"%s table %s does not exist", side_name[side],
					name ? name : table);
		free(name);
		PQclear(res);
		return false;
	}
	tcols->oid = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (tcols->oid == NULL)
		goto oom;

	params[0] = tcols->oid;
	res = side_exec(tc, side, "read the table's columns", COLUMNS_SQL, 1,
					params);
	if (res == NULL)
		return false;
	tcols->cols = calloc(PQntuples(res) + 1, sizeof(ColumnInfo));
	if (tcols->cols == NULL)
	{
		PQclear(res);
		goto oom;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		ColumnInfo *c = &tcols->cols[i];

		c->name = strdup(PQgetvalue(res, i, 0));
		c->notnull = PQgetvalue(res, i, 1)[0] == 't';
		c->collation = strdup(PQgetvalue(res, i, 2));
		c->attnum = atoi(PQgetvalue(res, i, 3));
		tcols->ncols = i + 1;
		if (c->name == NULL || c->collation == NULL)
		{
			PQclear(res);
			goto oom;
		}
	}
	PQclear(res);
	return true;

oom:
	table_error(tc, NULL, "out of memory");
	return false;
}

static const ColumnInfo *
find_column(const TableColumns *tcols, const char *name)
{
	int			i;

	for (i = 0; i < tcols->ncols; i++)
		if (strcmp(tcols->cols[i].name, name) == 0)
			return &tcols->cols[i];
	return NULL;
}

static const ColumnInfo *
find_attnum(const TableColumns *tcols, int attnum)
{
	int			i;

	for (i = 0; i < tcols->ncols; i++)
		if (tcols->cols[i].attnum == attnum)
			return &tcols->cols[i];
	return NULL;
}

/*
 * The compared columns as parallel arrays of source and destination
 * columns, checked to exist on both sides.  Returns the number of columns,
 * or -1 (error recorded).  The arrays point into scols/dcols.
 */
static int
compared_columns(TableCtx *tc, const DtsVerifyTable *vt,
				 const TableColumns *scols, const TableColumns *dcols,
				 const ColumnInfo ***src, const ColumnInfo ***dst)
{
	int			n = vt->ncolumns > 0 ? vt->ncolumns : scols->ncols;
	int			i;

	*src = calloc(n + VERIFY_MAX_KEY_COLUMNS + 1, sizeof(ColumnInfo *));
	*dst = calloc(n + VERIFY_MAX_KEY_COLUMNS + 1, sizeof(ColumnInfo *));
	if (*src == NULL || *dst == NULL)
	{
		table_error(tc, NULL, "out of memory");
		return -1;
	}
	if (n == 0)
	{
		table_error(tc, NULL, "source table has no columns to compare");
		return -1;
	}
	for (i = 0; i < n; i++)
	{
		const char *sname = vt->ncolumns > 0 ?
		vt->columns[i].src_name : scols->cols[i].name;
		const char *dname = vt->ncolumns > 0 && vt->columns[i].dst_name ?
		vt->columns[i].dst_name : sname;

		(*src)[i] = find_column(scols, sname);
		if ((*src)[i] == NULL)
		{
			table_error(tc, "Correct the column list of the task's rule.",
						"source column \"%s\" does not exist", sname);
			return -1;
		}
		(*dst)[i] = find_column(dcols, dname);
		if ((*dst)[i] == NULL)
		{
			table_error(tc, "Add the column on the destination, or correct "
						"the task's column mapping.",
						"destination column \"%s\" does not exist", dname);
			return -1;
		}
	}
	return n;
}

/*
 * Picks the key: the first usable unique index (primary key first) whose
 * columns are NOT NULL on the source.  A key column left out of the
 * compared columns is added to them under its own name, as the plugin
 * always sends the key; the index is passed over when the destination has
 * no such column.  Sets keycols to the positions (in the compared columns)
 * of the key's columns and returns their number, 0 when there is no usable
 * key, -1 on error.  src/dst have room for VERIFY_MAX_KEY_COLUMNS more;
 * *ncols grows by the columns added.  *keyname gets the index's name
 * (malloc'd).
 */
static int
choose_key(TableCtx *tc, const TableColumns *scols, const TableColumns *dcols,
		   const ColumnInfo **src, const ColumnInfo **dst, int *ncols,
		   int *keycols, char **keyname)
{
	const char *params[1] = {scols->oid};
	PGresult   *res = side_exec(tc, SIDE_SRC, "read the table's indexes",
								KEYS_SQL, 1, params);
	int			i;
	int			nkeys = 0;

	*keyname = NULL;
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res) && nkeys == 0; i++)
	{
		bool		primary = PQgetvalue(res, i, 0)[0] == 't';
		char	   *p = PQgetvalue(res, i, 2);
		bool		usable = true;
		int			n = 0;
		int			added = 0;

		/* "{1,3}": the key's attribute numbers */
		while (usable && *p)
		{
			const ColumnInfo *c;
			int			j;

			if (!isdigit((unsigned char) *p))
			{
				p++;
				continue;
			}
			c = find_attnum(scols, (int) strtol(p, &p, 10));
			usable = (c != NULL && (primary || c->notnull) &&
					  n < VERIFY_MAX_KEY_COLUMNS);
			for (j = 0; usable && j < *ncols + added && src[j] != c; j++)
				;
			if (usable && j == *ncols + added)
			{
				/* not compared: add it, if the destination has it */
				dst[j] = find_column(dcols, c->name);
				src[j] = c;
				usable = (dst[j] != NULL);
				added++;
			}
			if (usable)
				keycols[n++] = j;
		}
		if (usable && n > 0)
		{
			nkeys = n;
			*ncols += added;
			*keyname = strdup(PQgetvalue(res, i, 1));
			if (*keyname == NULL)
				nkeys = -1;
		}
	}
	PQclear(res);
	return nkeys;
}

/* Builds one side's SQL fragments; false when out of memory. */
static bool
build_side(TableCtx *tc, VerifySide side, const char *schema,
		   const char *table, const ColumnInfo **cols, int ncols,
		   const int *keycols, bool collate_c, const char *filter)
{
	TableSide  *ts = &tc->side[side];
	PGconn	   *conn = ts->conn;
	StrBuf		sb = {0};
	int			i;

	sb_ident(&sb, conn, schema);
	sb_append(&sb, ".");
	sb_ident(&sb, conn, table);
	ts->rel = sb_finish(&sb);

	sb_append(&sb, "ROW(");
	for (i = 0; i < ncols; i++)
	{
		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, conn, cols[i]->name);
	}
	sb_append(&sb, ")::text");
	ts->rowexpr = sb_finish(&sb);

	if (tc->keyless)
		sb_printf(&sb, "(%s) COLLATE \"C\"", ts->rowexpr ? ts->rowexpr : "");
	for (i = 0; !tc->keyless && i < tc->nkeys; i++)
	{
		const ColumnInfo *c = cols[keycols[i]];

		if (i > 0)
			sb_append(&sb, ", ");
		sb_ident(&sb, conn, c->name);
		if (collate_c && c->collation[0] != '\0')
			sb_append(&sb, " COLLATE \"C\"");
	}
	ts->keylist = sb_finish(&sb);

	if (ts->keylist)
		sb_printf(&sb, tc->nkeys > 1 ? "(%s)" : "%s", ts->keylist);
	ts->keyrow = sb_finish(&sb);

	if (filter)
		ts->filter = strdup(filter);
	return ts->rel && ts->rowexpr && ts->keylist && ts->keyrow &&
		(filter == NULL || ts->filter);
}

/*
 * Reads both tables' columns, checks the compared ones exist, picks the
 * key and builds the queries' fragments.  false (error recorded) if the
 * table cannot be compared.
 */
static bool
setup_table(TableCtx *tc, const DtsVerifyTable *vt)
{
	TableColumns scols,
				dcols;
	const ColumnInfo **src = NULL;
	const ColumnInfo **dst = NULL;
	int		   *keycols = NULL;
	char	   *keyname = NULL;
	const char *dschema = vt->dst_schema ? vt->dst_schema : vt->src_schema;
	const char *dtable = vt->dst_table ? vt->dst_table : vt->src_table;
	bool		collate_c = false;
	int			ncols;
	int			i;
	bool		ok = false;
	StrBuf		sb = {0};

	memset(&scols, 0, sizeof(scols));
	memset(&dcols, 0, sizeof(dcols));
	if (!table_columns(tc, SIDE_SRC, vt->src_schema, vt->src_table, &scols) ||
		!table_columns(tc, SIDE_DST, dschema, dtable, &dcols))
		goto cleanup;
	ncols = compared_columns(tc, vt, &scols, &dcols, &src, &dst);
	if (ncols < 0)
		goto cleanup;

	keycols = calloc(VERIFY_MAX_KEY_COLUMNS, sizeof(int));
	if (keycols == NULL)
		goto cleanup;
	tc->nkeys = choose_key(tc, &scols, &dcols, src, dst, &ncols, keycols,
						   &keyname);
	if (tc->nkeys < 0)
		goto cleanup;
	tc->keyless = (tc->nkeys == 0);
	if (tc->keyless)
		tc->nkeys = 1;

	/* the key's names for messages, and whether collations agree */
	tc->keynames = calloc(tc->nkeys, sizeof(char *));
	if (tc->keynames == NULL)
		goto cleanup;
	for (i = 0; i < tc->nkeys; i++)
	{
		tc->keynames[i] = strdup(tc->keyless ? "row" : src[keycols[i]]->name);
		if (tc->keynames[i] == NULL)
			goto cleanup;
		if (!tc->keyless &&
			strcmp(src[keycols[i]]->collation, dst[keycols[i]]->collation) != 0)
			collate_c = true;
	}

	if (tc->keyless)
		sb_append(&sb, "no primary key or unique NOT NULL index: rows "
				  "compared by their whole text, in byte order");
	else
	{
		sb_append(&sb, "key ");
		sb_display_ident(&sb, keyname);
		sb_append(&sb, " (");
		for (i = 0; i < tc->nkeys; i++)
		{
			if (i > 0)
				sb_append(&sb, ", ");
			sb_display_ident(&sb, tc->keynames[i]);
		}
		sb_append(&sb, ")");
		if (collate_c)
			sb_append(&sb, ", text compared in byte order (the collations "
					  "differ)");
	}
	tc->keynote = sb_finish(&sb);
	tc->keynote_always = tc->keyless || collate_c;

	ok = tc->keynote &&
		build_side(tc, SIDE_SRC, vt->src_schema, vt->src_table, src, ncols,
				   keycols, collate_c, vt->where) &&
		build_side(tc, SIDE_DST, dschema, dtable, dst, ncols, keycols,
				   collate_c, NULL);

cleanup:
	if (!ok)
		table_error(tc, NULL, "out of memory");
	free(src);
	free(dst);
	free(keycols);
	free(keyname);
	table_columns_free(&scols);
	table_columns_free(&dcols);
	return ok;
}

/* ----------------------------------------------------------------
 *		One table, start to end
 * ----------------------------------------------------------------
 */

static void
table_ctx_free(TableCtx *tc)
{
	int			s,
				i;

	for (s = 0; s < 2; s++)
	{
		free(tc->side[s].rel);
		free(tc->side[s].rowexpr);
		free(tc->side[s].keylist);
		free(tc->side[s].keyrow);
		free(tc->side[s].filter);
	}
	for (i = 0; tc->keynames && i < tc->nkeys; i++)
		free(tc->keynames[i]);
	free(tc->keynames);
	free(tc->keynote);
	if (tc->detail)
		fclose(tc->detail);
	free(tc->detailbuf);
}

/* Runs the same command on both sides; false (error recorded) if not */
static bool
both_command(TableCtx *tc, const char *what, const char *sql)
{
	PGresult   *res;
	int			s;

	for (s = 0; s < 2; s++)
	{
		res = side_exec(tc, (VerifySide) s, what, sql, 0, NULL);
		if (res == NULL)
			return false;
		PQclear(res);
	}
	return true;
}

/* Writes the table's line and details; true when the table is the same */
static bool
report_table(TableCtx *tc, const DtsVerifyTable *vt, FILE *report)
{
	char	   *sname = display_qualified(vt->src_schema, vt->src_table);
	char	   *dname = display_qualified(vt->dst_schema ? vt->dst_schema :
										  vt->src_schema,
										  vt->dst_table ? vt->dst_table :
										  vt->src_table);
	bool		same;

	fprintf(report, "table %s -> %s: ", sname ? sname : vt->src_table,
			dname ? dname : "?");
	free(sname);
	free(dname);
	if (tc->error[0] != '\0')
	{
		fprintf(report, "ERROR: %s\n", tc->error);
		if (tc->hint[0] != '\0')
			fprintf(report, "  hint: %s\n", tc->hint);
		return false;
	}

	same = (tc->nranges == 0 && tc->rows[SIDE_SRC] == tc->rows[SIDE_DST]);
	fprintf(report, "rows source %lld, destination %lld: ",
			tc->rows[SIDE_SRC], tc->rows[SIDE_DST]);
	if (same)
		fprintf(report, "ok\n");
	else
		fprintf(report, "DIFFERENT (%d range%s)\n", tc->nranges,
				tc->nranges == 1 ? "" : "s");
	if (tc->keynote_always || !same)
		fprintf(report, "  %s\n", tc->keynote);
	if (!same)
	{
		fflush(tc->detail);
		fwrite(tc->detailbuf, 1, tc->detaillen, report);
		if (tc->nranges > tc->nranges_listed)
			fprintf(report, "  ... and %d more ranges\n",
					tc->nranges - tc->nranges_listed);
		if (tc->nunlisted > 0)
			fprintf(report, "  ... and %lld more rows not listed\n",
					tc->nunlisted);
		fprintf(report, "  %lld missing on destination, %lld extra on "
				"destination, %lld with different values\n",
				tc->nmissing, tc->nextra, tc->nchanged);
	}
	return same;
}

/*
 * Compares one table inside a savepoint on each side.  Returns 1 if it
 * differs (or could not be compared), 0 if it is the same, -1 if a
 * connection is gone.
 */
static int
verify_one(PGconn *src, PGconn *dst, const DtsVerifyTable *vt,
		   const DtsVerifyOptions *opts, FILE *report)
{
	TableCtx	tc;
	bool		same;

	memset(&tc, 0, sizeof(tc));
	tc.opts = opts;
	tc.side[SIDE_SRC].conn = src;
	tc.side[SIDE_DST].conn = dst;
	tc.detail = open_memstream(&tc.detailbuf, &tc.detaillen);
	if (tc.detail == NULL)
	{
		fprintf(report, "error: out of memory\n");
		return -1;
	}

	if (both_command(&tc, "start a savepoint", "SAVEPOINT dts_verify") &&
		setup_table(&tc, vt))
		compare_table_rows(&tc);

	if (tc.fatal)
	{
		fprintf(report, "error: %s\n", tc.error);
		table_ctx_free(&tc);
		return -1;
	}
	same = report_table(&tc, vt, report);
	fflush(report);
	table_ctx_free(&tc);

	/* after an error, back to the savepoint: the snapshot stays */
	if (!conn_command(src, SIDE_SRC, "ROLLBACK TO SAVEPOINT dts_verify",
					  report) ||
		!conn_command(dst, SIDE_DST, "ROLLBACK TO SAVEPOINT dts_verify",
					  report))
		return -1;
	return same ? 0 : 1;
}

/* ----------------------------------------------------------------
 *		Public entry points
 * ----------------------------------------------------------------
 */

void
dts_verify_options_init(DtsVerifyOptions *opts)
{
	opts->chunk_rows = DTS_VERIFY_CHUNK_ROWS_DEFAULT;
	opts->min_chunk = DTS_VERIFY_MIN_CHUNK_DEFAULT;
	opts->max_listed = DTS_VERIFY_MAX_LISTED_DEFAULT;
}

/* Settings under which both servers print every value the same way */
static const char *const session_settings[] = {
	"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	"SET LOCAL DateStyle = ISO",
	"SET LOCAL TimeZone = 'UTC'",
	"SET LOCAL extra_float_digits = 3",
	"SET LOCAL IntervalStyle = postgres",
	"SET LOCAL bytea_output = hex",
	"SET LOCAL lc_monetary = 'C'",
	"SET LOCAL xmloption = content",
	"SET LOCAL statement_timeout = 0",
	NULL
};

int
dts_verify_tables(PGconn *src, PGconn *dst, const DtsVerifyTable *tables,
				  int ntables, const DtsVerifyOptions *opts, FILE *report)
{
	DtsVerifyOptions defaults;
	int			ndiffer = 0;
	int			i;
	int			s;

	if (opts == NULL)
	{
		dts_verify_options_init(&defaults);
		opts = &defaults;
	}
	/* guard: a chunk must hold a row, and bisection must stop somewhere */
	if (opts->chunk_rows < 1 || opts->min_chunk < 1 || opts->max_listed < 0)
	{
		fprintf(report, "error: chunk_rows and min_chunk must be at least 1, "
				"max_listed at least 0\n");
		return -1;
	}

	/* guard: our BEGIN and ROLLBACK must not end a transaction of the caller */
	if (PQtransactionStatus(src) != PQTRANS_IDLE ||
		PQtransactionStatus(dst) != PQTRANS_IDLE)
	{
		fprintf(report, "error: the connections must be open and idle (not "
				"in a transaction) to verify\n");
		return -1;
	}

	for (s = 0; session_settings[s] != NULL; s++)
		if (!conn_command(src, SIDE_SRC, session_settings[s], report) ||
			!conn_command(dst, SIDE_DST, session_settings[s], report))
		{
			ndiffer = -1;
			goto cleanup;
		}

	for (i = 0; i < ntables; i++)
	{
		int			r = verify_one(src, dst, &tables[i], opts, report);

		if (r < 0)
		{
			ndiffer = -1;
			goto cleanup;
		}
		ndiffer += r;
	}

cleanup:
	/* read only: ending it either way is the same; ignore a dead link */
	PQclear(PQexec(src, "ROLLBACK"));
	PQclear(PQexec(dst, "ROLLBACK"));
	fflush(report);
	return ndiffer;
}

/* ----------------------------------------------------------------
 *		The tables of a task
 * ----------------------------------------------------------------
 */

/* Tables of one schema (NULL: of every user schema), rules not applied */
#define TASK_TABLES_SQL \
	"SELECT n.nspname, c.relname FROM pg_catalog.pg_class c " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	"WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition " \
	"AND ($1::text IS NULL OR n.nspname = $1) " \
	"AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'dts') " \
	"AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' " \
	"AND NOT (n.nspname = '" DTS_HEARTBEAT_SCHEMA "' AND c.relname = '" \
	DTS_HEARTBEAT_TABLE "') " \
	"AND NOT (n.nspname = '" DTS_DDL_SCHEMA "' AND c.relname = '" \
	DTS_DDL_TABLE "') " \
	"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e " \
	"  WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"  AND e.objid = c.oid AND e.deptype = 'e') " \
	"ORDER BY 1, 2"

static char *
strdup_or_null(const char *s, bool *oom)
{
	char	   *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

/* Is schema.table named by a table rule of the task? */
static bool
has_table_rule(const DtsTask *task, const char *schema, const char *table)
{
	int			i;

	for (i = 0; i < task->nrules; i++)
		if (task->rules[i].table && strcmp(task->rules[i].schema, schema) == 0 &&
			strcmp(task->rules[i].table, table) == 0)
			return true;
	return false;
}

/* Appends one DtsVerifyTable for rule (or for no rule: rule NULL) */
static bool
add_task_table(DtsVerifyTable **tables, int *n, int *cap,
			   const DtsTableRule *rule, const char *schema,
			   const char *table)
{
	DtsVerifyTable *t;
	bool		oom = false;
	int			i;

	if (*n == *cap)
	{
		int			newcap = *cap ? *cap * 2 : 16;
		DtsVerifyTable *p = realloc(*tables, newcap * sizeof(DtsVerifyTable));

		if (p == NULL)
			return false;
		*tables = p;
		*cap = newcap;
	}
	t = &(*tables)[*n];
	memset(t, 0, sizeof(*t));
	(*n)++;
	t->src_schema = strdup_or_null(schema, &oom);
	t->src_table = strdup_or_null(table, &oom);
	if (rule == NULL)
		return !oom;
	t->dst_schema = strdup_or_null(rule->new_schema, &oom);
	t->dst_table = rule->table ? strdup_or_null(rule->new_table, &oom) : NULL;
	t->where = strdup_or_null(rule->where, &oom);
	if (rule->ncolumns > 0)
	{
		t->columns = calloc(rule->ncolumns, sizeof(DtsVerifyColumn));
		if (t->columns == NULL)
			return false;
		t->ncolumns = rule->ncolumns;
		for (i = 0; i < rule->ncolumns; i++)
		{
			t->columns[i].src_name = strdup_or_null(rule->columns[i].name,
													&oom);
			t->columns[i].dst_name = strdup_or_null(rule->columns[i].new_name,
													&oom);
		}
	}
	return !oom;
}

/* Adds the tables of one schema (NULL: all) that no table rule names */
static int
add_schema_tables(PGconn *src, const DtsTask *task, const DtsTableRule *rule,
				  DtsVerifyTable **tables, int *n, int *cap,
				  char *err, size_t errlen)
{
	const char *params[1] = {rule ? rule->schema : NULL};
	PGresult   *res = PQexecParams(src, TASK_TABLES_SQL, 1, NULL, params,
								   NULL, NULL, 0);
	int			i;
	int			rc = 0;
	char		msg[512];

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "could not list the tables of %s on the "
				 "source: %s", rule ? rule->schema : "the database",
				 server_message(src, res, msg, sizeof(msg)));
		PQclear(res);
		return -1;
	}
	for (i = 0; i < PQntuples(res) && rc == 0; i++)
	{
		const char *schema = PQgetvalue(res, i, 0);
		const char *table = PQgetvalue(res, i, 1);

		if (has_table_rule(task, schema, table))
			continue;
		if (!add_task_table(tables, n, cap, rule, schema, table))
		{
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
	}
	PQclear(res);
	return rc;
}

int
dts_verify_tables_for_task(PGconn *src, const DtsTask *task,
						   DtsVerifyTable **tablesp, int *ntablesp,
						   char *err, size_t errlen)
{
	DtsVerifyTable *tables = NULL;
	int			n = 0,
				cap = 0;
	int			i;

	if (task->whole_database &&
		add_schema_tables(src, task, NULL, &tables, &n, &cap, err, errlen) < 0)
		goto fail;
	for (i = 0; !task->whole_database && i < task->nrules; i++)
	{
		const DtsTableRule *rule = &task->rules[i];

		if (rule->table == NULL)
		{
			if (add_schema_tables(src, task, rule, &tables, &n, &cap,
								  err, errlen) < 0)
				goto fail;
		}
		else if (!add_task_table(&tables, &n, &cap, rule, rule->schema,
								 rule->table))
		{
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	*tablesp = tables;
	*ntablesp = n;
	return 0;

fail:
	dts_verify_tables_free(tables, n);
	return -1;
}

void
dts_verify_tables_free(DtsVerifyTable *tables, int ntables)
{
	int			i,
				j;

	for (i = 0; tables && i < ntables; i++)
	{
		DtsVerifyTable *t = &tables[i];

		free(t->src_schema);
		free(t->src_table);
		free(t->dst_schema);
		free(t->dst_table);
		free(t->where);
		for (j = 0; j < t->ncolumns; j++)
		{
			free(t->columns[j].src_name);
			free(t->columns[j].dst_name);
		}
		free(t->columns);
	}
	free(tables);
}

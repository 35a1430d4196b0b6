/*-------------------------------------------------------------------------
 *
 * source.c
 *	  The source side of pg_dts_ship: connecting, the slot commands, and
 *	  one replication session from START_REPLICATION to its end.
 *
 * The copy loop follows pg_recvlogical: send feedback when due, read with
 * PQgetCopyData() without blocking, select() until the next deadline,
 * answer keepalives ('k') that ask for a reply, and check the length of
 * every message before reading it.  Each 'w' message holds pg_dts frames
 * (include/pg_dts/frame.h), which become calls of the sink: transactions
 * as they arrive, streamed transactions through the spool at their
 * STREAM_COMMIT.
 *
 * While the sink waits for its destination it lets the source read ahead
 * (sink->prefetch): the messages that arrive meanwhile are kept in memory,
 * up to what the sink allows, and handed on in order before anything read
 * later, so that the walsender does not stop decoding whenever the sink
 * is busy.
 *
 * The flushed position reported to the server is only ever what the sink
 * says is durable, or, when nothing at all is pending (no transaction
 * open or spooled, the sink idle), the position of the last keepalive, so
 * that the slot moves on while the selected tables are idle.
 *
 * shipper/source.c
 *
 *-------------------------------------------------------------------------
 */
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#define HEARTBEAT_SCHEMA	"public"
#define HEARTBEAT_TABLE		"dts_postgres_heartbeat"

/* Session settings that fix the text form of values (see source.h). */
#define SESSION_OPTIONS \
	"-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=3"

#define MAX_CONN_PARAMS		64
/* wake up at least once a second */
#define MAX_WAIT_US			INT64_C(1000000)

#include "formats/json.h"		/* dts_parse_pg_timestamptz */
#include "sqlstate.h"

/* ----------------------------------------------------------------
 *		Connections
 * ----------------------------------------------------------------
 */

/* Reads a password from the terminal without echo; malloc'd or NULL. */
static char *
prompt_password(void)
{
	FILE	   *tty = fopen("/dev/tty", "r+");
	struct termios old;
	struct termios noecho;
	char		buf[1024];
	bool		restore = false;
	char	   *result = NULL;

	if (tty == NULL)
		return NULL;
	fputs("Password: ", tty);
	fflush(tty);
	if (tcgetattr(fileno(tty), &old) == 0)
	{
		noecho = old;
		noecho.c_lflag &= ~ECHO;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &noecho) == 0;
	}
	if (fgets(buf, sizeof(buf), tty) != NULL)
	{
		buf[strcspn(buf, "\r\n")] = '\0';
		result = dts_strdup(buf);
	}
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputs("\n", tty);
	fclose(tty);
	memset(buf, 0, sizeof(buf));
	return result;
}

/* Connection keywords and values, built from DtsConnParams. */
typedef struct ConnArgs
{
	const char *keywords[MAX_CONN_PARAMS + 1];
	const char *values[MAX_CONN_PARAMS + 1];
	int			n;
	PQconninfoOption *parsed;	/* owns the values taken from conninfo */
	char	   *options;		/* malloc'd */
	char		timeout[16];
} ConnArgs;

static void
conn_args_add(ConnArgs *args, const char *keyword, const char *value)
{
	for (int i = 0; i < args->n; i++)
	{
		if (strcmp(args->keywords[i], keyword) == 0)
		{
			args->values[i] = value;
			return;
		}
	}
	if (args->n < MAX_CONN_PARAMS)
	{
		args->keywords[args->n] = keyword;
		args->values[args->n++] = value;
	}
}

static const char *
conn_args_get(const ConnArgs *args, const char *keyword)
{
	for (int i = 0; i < args->n; i++)
		if (strcmp(args->keywords[i], keyword) == 0)
			return args->values[i];
	return NULL;
}

static int
conn_args_build(ConnArgs *args, const DtsConnParams *params,
				bool replication, int connect_timeout_s, DtsError *err)
{
	const char *user_options = NULL;
	size_t		len;

	memset(args, 0, sizeof(*args));
	if (params->conninfo && params->conninfo[0])
	{
		char	   *errmsg = NULL;

		args->parsed = PQconninfoParse(params->conninfo, &errmsg);
		if (args->parsed == NULL)
		{
			dts_error_set(err, DTS_ERROR_FATAL, "invalid connection string: %s",
						  errmsg ? errmsg : "out of memory");
			dts_error_hint(err, "Give -d a conninfo string such as \"dbname=app host=db1\" or a postgresql:// URI.");
			PQfreemem(errmsg);
			return -1;
		}
		for (PQconninfoOption *o = args->parsed; o->keyword; o++)
		{
			if (o->val == NULL || o->val[0] == '\0' ||
				strcmp(o->keyword, "replication") == 0)
				continue;
			if (strcmp(o->keyword, "options") == 0)
				user_options = o->val;
			else
				conn_args_add(args, o->keyword, o->val);
		}
	}
	if (params->host)
		conn_args_add(args, "host", params->host);
	if (params->port)
		conn_args_add(args, "port", params->port);
	if (params->user)
		conn_args_add(args, "user", params->user);
	if (params->password)
		conn_args_add(args, "password", params->password);
	if (replication)
		conn_args_add(args, "replication", "database");
	conn_args_add(args, "fallback_application_name", "pg_dts_ship");
	if (connect_timeout_s > 0 && conn_args_get(args, "connect_timeout") == NULL)
	{
		snprintf(args->timeout, sizeof(args->timeout), "%d", connect_timeout_s);
		conn_args_add(args, "connect_timeout", args->timeout);
	}
	len = (user_options ? strlen(user_options) : 0) +
		sizeof(SESSION_OPTIONS) + 2;
	args->options = dts_realloc(NULL, len);
	snprintf(args->options, len, "%s%s%s", user_options ? user_options : "",
			 user_options ? " " : "", SESSION_OPTIONS);
	conn_args_add(args, "options", args->options);
	return 0;
}

static void
conn_args_free(ConnArgs *args)
{
	PQconninfoFree(args->parsed);
	free(args->options);
}

/* "host=... port=... dbname=... user=..." without password and options */
static void
conn_args_display(const ConnArgs *args, char *buf, size_t size)
{
	static const char *const shown[] = {"host", "hostaddr", "port", "dbname",
	"user", NULL};
	size_t		used = 0;

	buf[0] = '\0';
	for (int k = 0; shown[k] && used < size; k++)
	{
		const char *v = conn_args_get(args, shown[k]);

		if (v)
			used += snprintf(buf + used, size - used, "%s%s=%s",
							 used ? " " : "", shown[k], v);
	}
	if (buf[0] == '\0')
		snprintf(buf, size, "(libpq defaults)");
}

PGconn *
dts_connect(DtsConnParams *params, bool replication, int connect_timeout_s,
			DtsError *err)
{
	ConnArgs	args;
	PGconn	   *conn = NULL;
	char		where[512];

	if (params->prompt > 0 && params->password == NULL)
		params->password = prompt_password();	/* -W */
	for (;;)
	{
		if (conn_args_build(&args, params, replication, connect_timeout_s,
							err) != 0)
			return NULL;
		conn = PQconnectdbParams(args.keywords, args.values, 0);
		conn_args_display(&args, where, sizeof(where));
		conn_args_free(&args);
		if (conn && PQstatus(conn) == CONNECTION_OK)
			break;
		if (conn && PQconnectionNeedsPassword(conn) &&
			params->password == NULL && params->prompt >= 0 &&
			isatty(STDIN_FILENO))
		{
			PQfinish(conn);
			params->password = prompt_password();
			if (params->password)
				continue;
			conn = NULL;
		}
		dts_error_set(err, DTS_ERROR_CONNECT,
					  "could not connect to the source (%s): %s", where,
					  conn ? PQerrorMessage(conn) : "out of memory");
		if (conn && PQconnectionNeedsPassword(conn))
			dts_error_hint(err, "Give the password in ~/.pgpass or PGPASSWORD, or use -W to be asked for it.");
		PQfinish(conn);
		return NULL;
	}
	dts_log_debug("connected to the source (%s)%s", where,
				  replication ? " for replication" : "");
	return conn;
}

/* ----------------------------------------------------------------
 *		Plugin options
 * ----------------------------------------------------------------
 */

void
dts_plugin_options_set(DtsPluginOptions *opts, const char *name,
					   const char *value)
{
	for (int i = 0; i < opts->n; i++)
	{
		if (strcmp(opts->names[i], name) == 0)
		{
			free(opts->values[i]);
			opts->values[i] = dts_strdup(value);
			return;
		}
	}
	opts->names = dts_realloc(opts->names, (opts->n + 1) * sizeof(char *));
	opts->values = dts_realloc(opts->values, (opts->n + 1) * sizeof(char *));
	opts->names[opts->n] = dts_strdup(name);
	opts->values[opts->n] = dts_strdup(value);
	opts->n++;
}

const char *
dts_plugin_options_get(const DtsPluginOptions *opts, const char *name)
{
	for (int i = 0; i < opts->n; i++)
		if (strcmp(opts->names[i], name) == 0)
			return opts->values[i];
	return NULL;
}

void
dts_plugin_options_free(DtsPluginOptions *opts)
{
	for (int i = 0; i < opts->n; i++)
	{
		free(opts->names[i]);
		free(opts->values[i]);
	}
	free(opts->names);
	free(opts->values);
	memset(opts, 0, sizeof(*opts));
}

/* ----------------------------------------------------------------
 *		Slot commands
 * ----------------------------------------------------------------
 */

/* Classifies a failed command's result; records it in err. */
static int
command_error(PGconn *conn, PGresult *res, DtsError *err, const char *fmt,
			  const char *arg)
{
	char		what[256];
	DtsErrorClass cls = DTS_ERROR_OTHER;

	snprintf(what, sizeof(what), fmt, arg);
	if (PQstatus(conn) != CONNECTION_OK)
		cls = DTS_ERROR_CONNECT;
	return dts_error_set(err, cls, "%s: %s", what,
						 res ? PQresultErrorMessage(res) :
						 PQerrorMessage(conn));
}

static bool
result_has_state(PGresult *res, const char *sqlstate)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return state && strcmp(state, sqlstate) == 0;
}

int
dts_source_create_slot(PGconn *conn, const char *slot, bool if_not_exists,
					   DtsError *err)
{
	char		sql[256];
	PGresult   *res;
	int			rc = 0;

	/* slot names are [a-z0-9_]{1,63}: main checked, no quoting needed */
	snprintf(sql, sizeof(sql),
			 PQserverVersion(conn) >= 150000 ?
			 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pg_dts (SNAPSHOT 'nothing')" :
			 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pg_dts NOEXPORT_SNAPSHOT",
			 slot);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		dts_log_info("created replication slot \"%s\" at %s", slot,
					 PQnfields(res) > 1 ? PQgetvalue(res, 0, 1) : "?");
		goto cleanup;
	}
	if (if_not_exists && result_has_state(res, DTS_SQLSTATE_DUPLICATE_OBJECT))
	{
		dts_log_info("replication slot \"%s\" exists already", slot);
		goto cleanup;
	}
	rc = command_error(conn, res, err,
					   "could not create replication slot \"%s\"", slot);
	if (result_has_state(res, DTS_SQLSTATE_DUPLICATE_OBJECT))
		dts_error_hint(err, "Use --if-not-exists to reuse the slot, or --drop-slot first.");

cleanup:
	PQclear(res);
	return rc;
}

int
dts_source_drop_slot(PGconn *conn, const char *slot, DtsError *err)
{
	char		sql[256];
	PGresult   *res;
	int			rc = 0;

	snprintf(sql, sizeof(sql), "DROP_REPLICATION_SLOT \"%s\"", slot);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
	{
		dts_log_info("dropped replication slot \"%s\"", slot);
		goto cleanup;
	}
	rc = command_error(conn, res, err,
					   "could not drop replication slot \"%s\"", slot);
	if (result_has_state(res, DTS_SQLSTATE_OBJECT_IN_USE))
		dts_error_hint(err, "Stop the process that streams from the slot first.");

cleanup:
	PQclear(res);
	return rc;
}

/* ----------------------------------------------------------------
 *		Feedback
 * ----------------------------------------------------------------
 */

static void
put_int64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char) (v & 0xFF);
}

static uint64_t
get_int64(const char *p)
{
	uint64_t	v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (uint8_t) p[i];
	return v;
}

/* Is no transaction open or spooled on our side (the sink aside)? */
static bool
source_idle_but_sink(DtsSource *src)
{
	return !src->in_txn && !src->in_block &&
		dts_spool_count(&src->spools) == 0;
}

/* Is nothing pending anywhere: no transaction open or spooled, sink idle? */
static bool
source_idle(DtsSource *src)
{
	return source_idle_but_sink(src) && src->sink->ops->idle(src->sink);
}

/* What may be reported as flushed now. */
static uint64_t
confirmable_lsn(DtsSource *src)
{
	uint64_t	lsn = src->sink->ops->durable_lsn(src->sink);

	if (src->idle_lsn > lsn && source_idle(src))
		lsn = src->idle_lsn;
	return lsn > src->confirmed_lsn ? lsn : src->confirmed_lsn;
}

static void
log_status(DtsSource *src, uint64_t flush)
{
	char		b1[DTS_LSN_BUFSIZE];
	char		b2[DTS_LSN_BUFSIZE];
	char		latency[64] = "";

	if (!dts_log_enabled(DTS_LOG_INFO))
		return;
	if (src->heartbeat && src->heartbeat->have_latency)
		snprintf(latency, sizeof(latency), ", heartbeat latency %.1f ms",
				 src->heartbeat->latency_us / 1000.0);
	dts_log_info("status: confirming flush up to %s, received %s (slot \"%s\", %llu transactions, %llu changes%s)",
				 dts_lsn_str(flush, b1), dts_lsn_str(src->received_lsn, b2),
				 src->slot, (unsigned long long) src->txns,
				 (unsigned long long) src->changes, latency);
}

/* Sends a standby status update ('r'); flush = what is durable. */
static int
send_feedback(DtsSource *src, int64_t now_us, bool reply_requested,
			  DtsError *err)
{
	char		msg[1 + 8 + 8 + 8 + 8 + 1];
	uint64_t	flush = confirmable_lsn(src);
	uint64_t	write = src->written_lsn > flush ? src->written_lsn : flush;

	/*
	 * write is what the sink has accepted, not what we received: while it
	 * is behind the server's sent position, an idle server sends keepalives,
	 * whose position we may confirm once everything is durable.
	 */
	msg[0] = 'r';
	put_int64(msg + 1, write);
	put_int64(msg + 9, flush);
	put_int64(msg + 17, flush); /* applied = durable at the sink */
	put_int64(msg + 25, (uint64_t) (now_us - DTS_PG_EPOCH_OFFSET_US));
	msg[33] = reply_requested ? 1 : 0;
	if (PQputCopyData(src->conn, msg, sizeof(msg)) <= 0 ||
		PQflush(src->conn) != 0)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not send feedback to the source: %s",
							 PQerrorMessage(src->conn));
	src->confirmed_lsn = flush;
	src->last_feedback_us = now_us;
	log_status(src, flush);
	return 0;
}

/* ----------------------------------------------------------------
 *		Frames to sink calls
 * ----------------------------------------------------------------
 */

static int
protocol_error(DtsSource *src, const DtsFrame *f, const char *why,
			   DtsError *err)
{
	char		buf[DTS_LSN_BUFSIZE];

	dts_error_set(err, DTS_ERROR_OTHER,
				  "unexpected frame '%c' from the pg_dts plugin near %s: %s",
				  (char) f->kind, dts_lsn_str(src->received_lsn, buf), why);
	dts_error_hint(err, "Check that the server's pg_dts and pg_dts_ship come from the same version.");
	return -1;
}

static uint64_t
relation_gen(const DtsSource *src, uint32_t relid)
{
	uint64_t	gen = 0;

	dts_u32map_get(&src->relgens, relid, &gen);
	return gen;
}

/* The relations of a TRUNCATE, in src->trunc_rels / trunc_gens. */
static void
lookup_truncated(DtsSource *src, const DtsFrame *f, const DtsDecoder *dec)
{
	if (f->nrelids > src->trunc_cap)
	{
		src->trunc_cap = f->nrelids;
		src->trunc_rels = dts_realloc(src->trunc_rels,
									  src->trunc_cap * sizeof(DtsRelation *));
		src->trunc_gens = dts_realloc(src->trunc_gens,
									  src->trunc_cap * sizeof(uint64_t));
	}
	for (int i = 0; i < f->nrelids; i++)
	{
		src->trunc_rels[i] = dts_decoder_relation(dec, f->relids[i]);
		src->trunc_gens[i] = relation_gen(src, f->relids[i]);
	}
}

/*
 * Fills the heartbeat fields of c when f is an INSERT or UPDATE of the
 * heartbeat table; reports the latency of our own slot's row.
 */
static void
detect_heartbeat(DtsSource *src, const DtsFrame *f, DtsChange *c)
{
	const DtsRelation *rel = f->rel;
	bool		ours = false;

	if ((f->kind != DTS_FRAME_INSERT && f->kind != DTS_FRAME_UPDATE) ||
		strcmp(rel->table, HEARTBEAT_TABLE) != 0 ||
		strcmp(rel->schema, HEARTBEAT_SCHEMA) != 0)
		return;
	c->heartbeat = true;
	for (int i = 0; i < rel->ncols; i++)
	{
		const DtsValue *v = &f->new_tuple.values[i];
		const char *name = rel->columns[i].name;

		if (v->status != DTS_VALUE_PRESENT || v->encoding != DTS_ENC_TEXT)
			continue;
		if (strcmp(name, "beat_time") == 0 &&
			dts_parse_pg_timestamptz((const char *) v->bytes.data,
									 v->bytes.len, &c->beat_time))
			c->latency_us = src->message_us - DTS_PG_EPOCH_OFFSET_US -
				c->beat_time;
		else if (strcmp(name, "slot_name") == 0)
			ours = v->bytes.len == strlen(src->slot) &&
				memcmp(v->bytes.data, src->slot, v->bytes.len) == 0;
	}
	if (ours && c->beat_time != 0 && src->heartbeat)
		dts_heartbeat_observe(src->heartbeat, c->latency_us);
}

/* Hands one change to the sink (txn NULL: non-transactional message). */
static int
deliver_change(DtsSource *src, const DtsTxn *txn, const DtsFrame *f,
			   const DtsDecoder *dec, DtsError *err)
{
	DtsChange	c;

	memset(&c, 0, sizeof(c));
	c.frame = f;
	if (f->kind == DTS_FRAME_TRUNCATE)
	{
		lookup_truncated(src, f, dec);
		c.truncated = src->trunc_rels;
	}
	else if (f->kind != DTS_FRAME_MESSAGE)
	{
		detect_heartbeat(src, f, &c);
		c.target = src->router ? dts_router_target(src->router, f->rel) :
			f->rel;
		/* a replayed spool has relations of its own decoder: no number */
		if (dec == &src->dec && f->rel != NULL)
			c.rel_gen = relation_gen(src, f->rel->relid);
	}
	src->changes++;
	return src->sink->ops->change(src->sink, txn, &c, err);
}

static int
ensure_begin(DtsSource *src, DtsError *err)
{
	if (src->begin_sent)
		return 0;
	src->begin_sent = true;
	return src->sink->ops->begin(src->sink, &src->txn, err);
}

/* A change inside a stream block goes to the spool of its transaction. */
static int
spool_change(DtsSource *src, const DtsFrame *f, const uint8_t *raw,
			 size_t rawlen, DtsError *err)
{
	const DtsRelation *rel = NULL;
	uint64_t	gen = 0;

	if (src->block_spool == NULL)
	{
		src->block_spool = dts_spool_get(&src->spools, src->block_xid, true,
										 err);
		if (src->block_spool == NULL)
			return -1;
	}
	if (f->kind == DTS_FRAME_TRUNCATE)
	{
		lookup_truncated(src, f, &src->dec);
		if (dts_spool_add_relations(&src->spools, src->block_spool,
									src->trunc_rels, src->trunc_gens,
									f->nrelids, err) != 0)
			return -1;
	}
	else if (f->kind != DTS_FRAME_MESSAGE)
	{
		rel = f->rel;
		gen = relation_gen(src, rel->relid);
	}
	return dts_spool_add(&src->spools, src->block_spool, src->block_subxid,
						 rel, gen, raw, rawlen, err);
}

static int
handle_change(DtsSource *src, const DtsFrame *f, const uint8_t *raw,
			  size_t rawlen, DtsError *err)
{
	if (f->kind == DTS_FRAME_MESSAGE &&
		!(f->flags & DTS_MESSAGE_TRANSACTIONAL))
	{
		if (src->endpos && f->lsn > src->endpos)
		{
			src->endpos_reached = true;
			return 0;
		}
		if (deliver_change(src, NULL, f, &src->dec, err) != 0)
			return -1;
		if (f->lsn > src->written_lsn)
			src->written_lsn = f->lsn;
		return 0;
	}
	if (src->in_block)
		return spool_change(src, f, raw, rawlen, err);
	if (!src->in_txn)
		return protocol_error(src, f, "change outside a transaction", err);
	if (ensure_begin(src, err) != 0)
		return -1;
	return deliver_change(src, &src->txn, f, &src->dec, err);
}

static int
handle_begin(DtsSource *src, const DtsFrame *f, DtsError *err)
{
	if (src->in_txn || src->in_block)
		return protocol_error(src, f, "BEGIN inside a transaction", err);
	if (src->endpos && f->lsn > src->endpos)
	{
		src->endpos_reached = true;
		return 0;
	}
	memset(&src->txn, 0, sizeof(src->txn));
	src->txn.xid = f->xid;
	src->txn.commit_lsn = f->lsn;
	src->txn.commit_time = f->commit_time;
	src->in_txn = true;
	src->begin_sent = false;
	return 0;
}

static int
handle_commit(DtsSource *src, const DtsFrame *f, DtsError *err)
{
	if (!src->in_txn || f->xid != src->txn.xid)
		return protocol_error(src, f, "COMMIT without its BEGIN", err);
	if (ensure_begin(src, err) != 0)
		return -1;
	src->txn.end_lsn = f->end_lsn;
	src->txn.commit_time = f->commit_time;
	if (src->sink->ops->commit(src->sink, &src->txn, err) != 0)
		return -1;
	src->in_txn = false;
	src->written_lsn = f->end_lsn;
	src->txns++;
	dts_retry_progress(src->retry);
	return 0;
}

#define REPLAY_CHECK_EVERY	1024	/* changes between looks at the clock */

/*
 * One spooled change to the sink.  A long replay also keeps the session
 * alive (feedback when due, or the walsender times out) and stops early
 * on SIGINT/SIGTERM (returns 1; the transaction stays open and is rolled
 * back by the stop).
 */
static int
replay_one(void *arg, const DtsFrame *f, const DtsDecoder *dec,
		   DtsError *err)
{
	DtsSource  *src = arg;

	if (++src->replayed % REPLAY_CHECK_EVERY == 0)
	{
		int64_t		now = dts_now_us();
		int64_t		interval = (int64_t) src->status_interval_ms * 1000;

		if (src->signals->stop)
			return 1;
		if (interval > 0 && now - src->last_feedback_us >= interval &&
			send_feedback(src, now, false, err) != 0)
			return -1;
	}
	return deliver_change(src, &src->txn, f, dec, err);
}

/* STREAM_COMMIT: the spooled transaction goes to the sink as one. */
static int
handle_stream_commit(DtsSource *src, const DtsFrame *f, DtsError *err)
{
	DtsSpool   *spool;
	int			rc;

	if (src->in_block || src->in_txn)
		return protocol_error(src, f, "STREAM_COMMIT inside a transaction",
							  err);
	if (src->endpos && f->lsn > src->endpos)
	{
		src->endpos_reached = true;
		return 0;
	}
	spool = dts_spool_get(&src->spools, f->xid, false, err);
	if (spool == NULL)
		return 0;				/* nothing of it passed the filters */
	dts_log_debug("replaying streamed transaction %u: %llu changes, %llu bytes spooled",
				  f->xid, (unsigned long long) dts_spool_changes(spool),
				  (unsigned long long) dts_spool_bytes(spool));
	memset(&src->txn, 0, sizeof(src->txn));
	src->txn.xid = f->xid;
	src->txn.commit_lsn = f->lsn;
	src->txn.end_lsn = f->end_lsn;
	src->txn.commit_time = f->commit_time;
	src->in_txn = true;
	src->begin_sent = false;
	src->replayed = 0;
	if (ensure_begin(src, err) != 0)
		return -1;
	rc = dts_spool_replay(spool, replay_one, src, err);
	if (rc > 0)
		return 0;				/* stopping: finish_stream() rolls back */
	if (rc < 0 || src->sink->ops->commit(src->sink, &src->txn, err) != 0)
		return -1;
	src->in_txn = false;
	src->written_lsn = f->end_lsn;
	dts_spool_drop(&src->spools, f->xid);
	src->txns++;
	dts_retry_progress(src->retry);
	return 0;
}

static int
dispatch_frame(DtsSource *src, const DtsFrame *f, const uint8_t *raw,
			   size_t rawlen, DtsError *err)
{
	DtsSpool   *spool;

	switch (f->kind)
	{
		case DTS_FRAME_RELATION:
			dts_u32map_put(&src->relgens, f->rel->relid,
						   ++src->relgen_counter);
			return 0;
		case DTS_FRAME_BEGIN:
			return handle_begin(src, f, err);
		case DTS_FRAME_ORIGIN:
			if (!src->in_txn)
				return protocol_error(src, f, "ORIGIN outside a transaction",
									  err);
			snprintf(src->origin, sizeof(src->origin), "%.*s",
					 (int) f->origin.len, (const char *) f->origin.data);
			src->txn.origin = src->origin;
			return 0;
		case DTS_FRAME_INSERT:
		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
		case DTS_FRAME_TRUNCATE:
		case DTS_FRAME_MESSAGE:
			return handle_change(src, f, raw, rawlen, err);
		case DTS_FRAME_COMMIT:
			return handle_commit(src, f, err);
		case DTS_FRAME_STREAM_START:
			if (src->in_block || src->in_txn)
				return protocol_error(src, f, "STREAM_START inside a transaction",
									  err);
			src->in_block = true;
			src->block_xid = f->xid;
			src->block_subxid = f->xid;
			src->block_spool = NULL;
			return 0;
		case DTS_FRAME_XID:
			if (!src->in_block)
				return protocol_error(src, f, "XID outside a stream block",
									  err);
			src->block_subxid = f->xid;
			return 0;
		case DTS_FRAME_STREAM_STOP:
			if (!src->in_block)
				return protocol_error(src, f, "STREAM_STOP without STREAM_START",
									  err);
			src->in_block = false;
			src->block_spool = NULL;
			return 0;
		case DTS_FRAME_STREAM_COMMIT:
			return handle_stream_commit(src, f, err);
		case DTS_FRAME_STREAM_ABORT:
			if (f->subxid == f->xid)
				dts_spool_drop(&src->spools, f->xid);
			else if ((spool = dts_spool_get(&src->spools, f->xid, false,
											err)) != NULL)
				dts_spool_abort_subxact(spool, f->subxid);
			return 0;
	}
	return protocol_error(src, f, "unknown frame kind", err);
}

/* A 'w' message: its frames, in order. */
static int
process_data(DtsSource *src, const char *data, size_t len, DtsError *err)
{
	DtsFrame	frame;
	const uint8_t *start;
	int			rc;
	char		buf[DTS_LSN_BUFSIZE];

	if (dts_decoder_open(&src->dec, (const uint8_t *) data, len) != 0)
		goto bad_message;
	for (;;)
	{
		start = src->dec.cur;
		rc = dts_decoder_next(&src->dec, &frame);
		if (rc == 0)
			return 0;
		if (rc < 0)
			goto bad_message;
		if (dispatch_frame(src, &frame, start, src->dec.cur - start,
						   err) != 0)
			return -1;
		/* the rest of the message is not confirmed: the server resends it */
		if (src->endpos_reached || src->signals->stop)
			return 0;
	}

bad_message:
	dts_error_set(err, DTS_ERROR_OTHER,
				  "invalid message from the pg_dts plugin near %s: %s",
				  dts_lsn_str(src->received_lsn, buf), src->dec.error);
	dts_error_hint(err, "Check that the server's pg_dts and pg_dts_ship come from the same version.");
	return -1;
}

/* ----------------------------------------------------------------
 *		The copy loop
 * ----------------------------------------------------------------
 */

/* One CopyData message from the server: 'w' data or 'k' keepalive. */
static int
process_copy_message(DtsSource *src, const char *buf, int len,
					 DtsError *err)
{
	uint64_t	wal_end;

	if (len > 0 && buf[0] == 'k')
	{
		bool		reply;

		if (len < 1 + 8 + 8 + 1)
			return dts_error_set(err, DTS_ERROR_OTHER,
								 "streaming header too small: %d", len);
		wal_end = get_int64(buf + 1);
		reply = buf[17] != 0;
		if (wal_end > src->received_lsn)
			src->received_lsn = wal_end;
		/* -E past this keepalive is noticed by the loop (stream_loop) */
		if (source_idle(src) && wal_end > src->idle_lsn)
			src->idle_lsn = wal_end;
		if (reply)
		{
			int64_t		next;

			if (src->sink->ops->flush(src->sink, true, dts_now_us(), &next,
									  err) != 0)
				return -1;
			return send_feedback(src, dts_now_us(), false, err);
		}
		return 0;
	}
	if (len > 0 && buf[0] == 'w')
	{
		if (len < 1 + 8 + 8 + 8)
			return dts_error_set(err, DTS_ERROR_OTHER,
								 "streaming header too small: %d", len);
		wal_end = get_int64(buf + 9);
		if (wal_end > src->received_lsn)
			src->received_lsn = wal_end;
		return process_data(src, buf + 25, (size_t) len - 25, err);
	}
	return dts_error_set(err, DTS_ERROR_OTHER,
						 "unrecognized streaming header: \"%c\"",
						 len > 0 ? buf[0] : '?');
}

/* One message read ahead (see source_prefetch()) */
typedef struct DtsAhead
{
	char	   *buf;			/* from PQgetCopyData() */
	int			len;
	int64_t		received_us;
} DtsAhead;

static void
ahead_push(DtsSource *src, char *buf, int len)
{
	DtsAhead   *a;

	if (src->ahead_count == src->ahead_cap)
	{
		int			ncap = src->ahead_cap ? src->ahead_cap * 2 : 1024;
		DtsAhead   *n = dts_realloc(NULL, sizeof(DtsAhead) * ncap);

		for (int i = 0; i < src->ahead_count; i++)
			n[i] = src->ahead[(src->ahead_head + i) % src->ahead_cap];
		free(src->ahead);
		src->ahead = n;
		src->ahead_cap = ncap;
		src->ahead_head = 0;
	}
	a = &src->ahead[(src->ahead_head + src->ahead_count) % src->ahead_cap];
	a->buf = buf;
	a->len = len;
	a->received_us = dts_now_us();
	src->ahead_count++;
	src->ahead_bytes += (size_t) len;
	src->ahead_total++;
	if (src->ahead_bytes > src->ahead_peak)
		src->ahead_peak = src->ahead_bytes;
}

/* Forgets the messages read ahead (the stream ends). */
static void
ahead_reset(DtsSource *src)
{
	for (int i = 0; i < src->ahead_count; i++)
		PQfreemem(src->ahead[(src->ahead_head + i) % src->ahead_cap].buf);
	src->ahead_head = 0;
	src->ahead_count = 0;
	src->ahead_bytes = 0;
	src->ahead_end = 0;
}

/*
 * sink->prefetch: reads the messages that have arrived, without waiting,
 * until max_bytes are held.  Returns the socket to wait on for more, or -1
 * (enough held, the copy ended, or the connection failed: the stream loop
 * sees that when it gets there).
 */
static int
source_prefetch(void *arg, size_t max_bytes)
{
	DtsSource  *src = arg;
	char	   *buf;
	int			r = 0;

	if (src->conn == NULL || src->ahead_end != 0 ||
		src->ahead_bytes >= max_bytes)
		return -1;
	if (PQconsumeInput(src->conn) == 0)
	{
		src->ahead_end = -2;
		return -1;
	}
	while (src->ahead_bytes < max_bytes &&
		   (r = PQgetCopyData(src->conn, &buf, 1)) > 0)
		ahead_push(src, buf, r);
	if (r < 0)
	{
		src->ahead_end = r;
		return -1;
	}
	return src->ahead_bytes < max_bytes ? PQsocket(src->conn) : -1;
}

/*
 * The next message of the stream, as PQgetCopyData(async): what was read
 * ahead first.
 */
static int
next_message(DtsSource *src, char **buf)
{
	if (src->ahead_count > 0)
	{
		DtsAhead   *a = &src->ahead[src->ahead_head];

		*buf = a->buf;
		src->message_us = a->received_us;
		src->ahead_head = (src->ahead_head + 1) % src->ahead_cap;
		src->ahead_count--;
		src->ahead_bytes -= (size_t) a->len;
		return a->len;
	}
	if (src->ahead_end != 0)
	{
		int			r = src->ahead_end;

		src->ahead_end = 0;
		return r;
	}
	src->message_us = 0;
	return PQgetCopyData(src->conn, buf, 1);
}

/* Waits until the connection or the heartbeat has input, or until_us. */
static int
wait_for_input(DtsSource *src, int64_t until_us, DtsError *err)
{
	fd_set		fds;
	int			sock = PQsocket(src->conn);
	int			hb_sock = -1;
	int64_t		wait = until_us - dts_now_us();
	struct timeval tv;
	int			r;

	if (sock < 0)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "invalid socket: %s", PQerrorMessage(src->conn));
	if (src->heartbeat)
		hb_sock = dts_heartbeat_socket(src->heartbeat);
	if (wait > MAX_WAIT_US)
		wait = MAX_WAIT_US;
	if (wait < 0)
		wait = 0;
	FD_ZERO(&fds);
	FD_SET(sock, &fds);
	if (hb_sock >= 0)
		FD_SET(hb_sock, &fds);
	tv.tv_sec = wait / 1000000;
	tv.tv_usec = wait % 1000000;
	r = select((sock > hb_sock ? sock : hb_sock) + 1, &fds, NULL, NULL, &tv);
	if (r < 0)
	{
		if (errno == EINTR)
			return 0;			/* a signal: the loop looks at the flags */
		return dts_error_set(err, DTS_ERROR_OTHER, "select() failed: %s",
							 strerror(errno));
	}
	if (hb_sock >= 0 && FD_ISSET(hb_sock, &fds))
		dts_heartbeat_consume(src->heartbeat);
	if (FD_ISSET(sock, &fds) && PQconsumeInput(src->conn) == 0)
		return dts_error_set(err, DTS_ERROR_CONNECT,
							 "could not receive data from the source: %s",
							 PQerrorMessage(src->conn));
	return 0;
}

/*
 * The server ended the copy: with an error, or cleanly (it is shutting
 * down: retried in the connection window, like a lost connection).
 */
static int
copy_ended(DtsSource *src, DtsError *err)
{
	PGresult   *res = PQgetResult(src->conn);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	DtsErrorClass cls = DTS_ERROR_OTHER;

	if (PQstatus(src->conn) != CONNECTION_OK || res == NULL ||
		PQresultStatus(res) == PGRES_COMMAND_OK ||
		(state && (strncmp(state, "08", 2) == 0 ||
				   strncmp(state, "57P", 3) == 0)))
		cls = DTS_ERROR_CONNECT;
	if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
		dts_error_set(err, cls, "replication stream of slot \"%s\" ended with an error: %s",
					  src->slot, PQresultErrorMessage(res));
	else
		dts_error_set(err, cls, "the source ended the replication stream of slot \"%s\" (server shutting down?)%s%s",
					  src->slot, *PQerrorMessage(src->conn) ? ": " : "",
					  PQerrorMessage(src->conn));
	PQclear(res);
	return -1;
}

/* Ends the copy from our side and drains what the server still sends. */
static void
end_copy(DtsSource *src)
{
	PGresult   *res;
	char	   *copybuf;

	if (PQputCopyEnd(src->conn, NULL) <= 0 || PQflush(src->conn) != 0)
		return;
	res = PQgetResult(src->conn);
	if (PQresultStatus(res) == PGRES_COPY_OUT)
	{
		PQclear(res);
		while (PQgetCopyData(src->conn, &copybuf, 0) >= 0)
			PQfreemem(copybuf);
		res = PQgetResult(src->conn);
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		dts_log_debug("replication stream ended: %s", PQresultErrorMessage(res));
	PQclear(res);
	while ((res = PQgetResult(src->conn)) != NULL)
		PQclear(res);
}

/* Stop or -E: forget the open transaction, make durable, confirm. */
static DtsStreamResult
finish_stream(DtsSource *src, DtsStreamResult why, DtsError *err)
{
	int64_t		next;
	char		buf[DTS_LSN_BUFSIZE];

	if (src->in_txn && src->sink->ops->rollback(src->sink, err) != 0)
		return DTS_STREAM_ERROR;
	src->in_txn = false;
	src->in_block = false;
	dts_spool_set_reset(&src->spools);
	if (src->sink->ops->flush(src->sink, true, dts_now_us(), &next,
							  err) != 0 ||
		send_feedback(src, dts_now_us(), false, err) != 0)
		return DTS_STREAM_ERROR;
	end_copy(src);
	dts_log_info("%s; confirmed up to %s on slot \"%s\"",
				 why == DTS_STREAM_ENDPOS ? "end position reached" : "stopping",
				 dts_lsn_str(src->confirmed_lsn, buf), src->slot);
	return why;
}

static int64_t
min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static DtsStreamResult
stream_loop(DtsSource *src, DtsError *err)
{
	DtsSink    *sink = src->sink;

	for (;;)
	{
		int64_t		now = dts_now_us();
		int64_t		next_flush;
		int64_t		next_feedback = INT64_MAX;
		char	   *copybuf = NULL;
		int			r;

		if (src->signals->stop)
			return finish_stream(src, DTS_STREAM_STOPPED, err);
		if (src->endpos_reached)
			return finish_stream(src, DTS_STREAM_ENDPOS, err);
		if (src->signals->reopen)
		{
			src->signals->reopen = 0;
			if (sink->ops->reopen(sink, err) != 0)
				return DTS_STREAM_ERROR;
		}
		if (sink->ops->flush(sink, false, now, &next_flush, err) != 0)
			return DTS_STREAM_ERROR;

		/*
		 * -E: the server has shown us WAL up to the end position (a
		 * keepalive may have come while the sink was still busy) and
		 * nothing is pending: everything up to it has been received.
		 */
		if (src->endpos && src->received_lsn >= src->endpos &&
			source_idle_but_sink(src))
		{
			/*
			 * Only the sink may still hold something (a file written
			 * but not yet synced, messages not yet acknowledged): make it
			 * durable now rather than when its interval comes round.
			 * Once: a forced flush may wait (Kafka: up to 10 s for
			 * acknowledgements); if the sink is still busy after it, the
			 * loop goes on serving the stream until the sink is idle.
			 */
			if (!src->endpos_flushed && !sink->ops->idle(sink))
			{
				src->endpos_flushed = true;
				if (sink->ops->flush(sink, true, now, &next_flush, err) != 0)
					return DTS_STREAM_ERROR;
			}
			if (sink->ops->idle(sink))
				return finish_stream(src, DTS_STREAM_ENDPOS, err);
		}
		if (src->status_interval_ms > 0)
		{
			next_feedback = src->last_feedback_us +
				(int64_t) src->status_interval_ms * 1000;
			if (now >= next_feedback)
			{
				if (send_feedback(src, now, false, err) != 0)
					return DTS_STREAM_ERROR;
				next_feedback = now + (int64_t) src->status_interval_ms * 1000;
			}
		}
		if (src->heartbeat)
			dts_heartbeat_tick(src->heartbeat, now);

		r = next_message(src, &copybuf);
		if (r == 0)
		{
			int64_t		until = min64(next_flush, next_feedback);

			if (src->heartbeat)
				until = min64(until, dts_heartbeat_next_due(src->heartbeat));
			if (wait_for_input(src, until, err) != 0)
				return DTS_STREAM_ERROR;
			continue;
		}
		if (r == -1)
		{
			copy_ended(src, err);
			return DTS_STREAM_ERROR;
		}
		if (r == -2)
		{
			dts_error_set(err, DTS_ERROR_CONNECT,
						  "could not read COPY data: %s",
						  PQerrorMessage(src->conn));
			return DTS_STREAM_ERROR;
		}
		if (src->message_us == 0)
			src->message_us = dts_now_us();
		r = process_copy_message(src, copybuf, r, err);
		PQfreemem(copybuf);
		if (r != 0)
			return DTS_STREAM_ERROR;
	}
}

/* ----------------------------------------------------------------
 *		Sessions
 * ----------------------------------------------------------------
 */

void
dts_source_init(DtsSource *src)
{
	memset(src, 0, sizeof(*src));
	dts_decoder_init(&src->dec);
	dts_spool_set_init(&src->spools, NULL);
	dts_u32map_init(&src->relgens);
}

void
dts_source_free(DtsSource *src)
{
	ahead_reset(src);
	free(src->ahead);
	src->ahead = NULL;
	src->ahead_cap = 0;
	if (src->conn)
		PQfinish(src->conn);
	src->conn = NULL;
	dts_decoder_free(&src->dec);
	dts_spool_set_free(&src->spools);
	dts_u32map_free(&src->relgens);
	free(src->trunc_rels);
	free(src->trunc_gens);
}

/* A new stream: the server describes every relation again. */
static void
reset_stream_state(DtsSource *src)
{
	dts_decoder_free(&src->dec);
	dts_decoder_init(&src->dec);
	dts_spool_set_reset(&src->spools);
	dts_u32map_free(&src->relgens);
	dts_u32map_init(&src->relgens);
	src->in_txn = false;
	src->in_block = false;
	src->block_spool = NULL;
	src->endpos_reached = false;
	src->endpos_flushed = false;
	ahead_reset(src);
}

/* IDENTIFY_SYSTEM: checks the connection is database-specific. */
static int
identify_system(DtsSource *src, DtsError *err)
{
	PGresult   *res = PQexec(src->conn, "IDENTIFY_SYSTEM");
	int			rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = command_error(src->conn, res, err, "%s",
						   "could not send replication command \"IDENTIFY_SYSTEM\"");
	else if (PQntuples(res) != 1 || PQnfields(res) < 4)
		rc = dts_error_set(err, DTS_ERROR_FATAL,
						   "could not identify system: got %d rows and %d fields, expected 1 row and 4 or more fields",
						   PQntuples(res), PQnfields(res));
	else if (PQgetisnull(res, 0, 3))
	{
		rc = dts_error_set(err, DTS_ERROR_FATAL,
						   "the replication connection is not database-specific");
		dts_error_hint(err, "Name a database with -d, e.g. -d \"dbname=app\".");
	}
	PQclear(res);
	return rc;
}

/* Appends s to buf as a SQL literal ('...' with quotes doubled). */
static void
append_literal(DtsStrBuf *buf, const char *s)
{
	dts_strbuf_append(buf, "'", 1);
	for (; *s; s++)
	{
		if (*s == '\'')
			dts_strbuf_append(buf, "''", 2);
		else
			dts_strbuf_append(buf, s, 1);
	}
	dts_strbuf_append(buf, "'", 1);
}

static int
start_replication(DtsSource *src, uint64_t from, DtsError *err)
{
	DtsStrBuf	sql;
	PGresult   *res;
	char		lsn[DTS_LSN_BUFSIZE];
	int			rc = 0;

	dts_strbuf_init(&sql);
	dts_strbuf_appendf(&sql, "START_REPLICATION SLOT \"%s\" LOGICAL %s",
					   src->slot, dts_lsn_str(from, lsn));
	for (int i = 0; i < src->options->n; i++)
	{
		dts_strbuf_appendf(&sql, "%s\"", i == 0 ? " (" : ", ");
		for (const char *p = src->options->names[i]; *p; p++)
			dts_strbuf_append(&sql, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
		dts_strbuf_append(&sql, "\" ", 2);
		append_literal(&sql, src->options->values[i]);
	}
	if (src->options->n > 0)
		dts_strbuf_append(&sql, ")", 1);
	dts_log_debug("%s", sql.data);

	res = PQexec(src->conn, sql.data);
	if (PQresultStatus(res) != PGRES_COPY_BOTH)
	{
		rc = command_error(src->conn, res, err,
						   "could not start streaming from replication slot \"%s\"",
						   src->slot);
		if (result_has_state(res, DTS_SQLSTATE_UNDEFINED_OBJECT))
			dts_error_hint(err, "Create the slot with --create-slot, or name another one with --slot.");
		else if (result_has_state(res, DTS_SQLSTATE_OBJECT_IN_USE))
			dts_error_hint(err, "Another process streams from this slot; stop it, or use another slot.");
	}
	PQclear(res);
	dts_strbuf_free(&sql);
	return rc;
}

static void
check_server_encoding(DtsSource *src)
{
	const char *enc = PQparameterStatus(src->conn, "server_encoding");

	if (enc && strcmp(enc, "UTF8") != 0 && strcmp(enc, "SQL_ASCII") != 0)
		dts_log_warning("the source's server encoding is %s: text values are written as they are and may not be valid UTF-8 JSON",
						enc);
}

DtsStreamResult
dts_source_stream(DtsSource *src, DtsError *err)
{
	DtsStreamResult result = DTS_STREAM_ERROR;
	uint64_t	from;
	char		buf[DTS_LSN_BUFSIZE];

	reset_stream_state(src);
	src->conn = dts_connect(src->params, true, 0, err);
	if (src->conn == NULL)
		return DTS_STREAM_ERROR;
	if (PQserverVersion(src->conn) < 140000)
	{
		dts_error_set(err, DTS_ERROR_FATAL,
					  "the source runs PostgreSQL %d, but pg_dts_ship needs 14 or later",
					  PQserverVersion(src->conn) / 10000);
		goto cleanup;
	}
	if (identify_system(src, err) != 0)
		goto cleanup;
	check_server_encoding(src);

	/* resume after what we confirmed; the server never goes back further */
	from = src->sink->ops->durable_lsn(src->sink);
	if (src->confirmed_lsn > from)
		from = src->confirmed_lsn;
	if (src->startpos > from)
		from = src->startpos;
	if (start_replication(src, from, err) != 0)
		goto cleanup;
	dts_retry_connected(src->retry);
	dts_log_info("streaming from replication slot \"%s\" at %s", src->slot,
				 dts_lsn_str(from, buf));
	src->last_feedback_us = dts_now_us();

	src->sink->prefetch = source_prefetch;
	src->sink->prefetch_arg = src;
	result = stream_loop(src, err);
	if (result == DTS_STREAM_ERROR && src->in_txn)
	{
		DtsError	ignored = {0};

		/* the server sends the transaction again; the cause is in err */
		src->sink->ops->rollback(src->sink, &ignored);
		src->in_txn = false;
	}

cleanup:
	src->sink->prefetch = NULL;
	src->sink->prefetch_arg = NULL;
	if (src->ahead_total > 0)
		dts_log_info("read ahead %llu messages while the sink was busy (at most %zu bytes held)",
					 (unsigned long long) src->ahead_total, src->ahead_peak);
	src->ahead_total = 0;
	src->ahead_peak = 0;
	ahead_reset(src);
	PQfinish(src->conn);
	src->conn = NULL;
	return result;
}

/*-------------------------------------------------------------------------
 *
 * pgsink_driver.c
 *	  Drives the pg sink (shipper/sinks/pg.c) without pg_dts_ship's main
 *	  loop, for tests/pgsink/run.sh: reads a slot of the source through SQL
 *	  (pg_logical_slot_peek_binary_changes, format binary, plus the task's
 *	  plugin options), decodes every message with DtsDecoder and calls the
 *	  sink's callbacks as sink.h describes.
 *
 * Usage:
 *	pgsink_driver TASK.json
 *
 * The task file gives the source ("source.conninfo"), the slot, the
 * objects (name mapping) and the sink ({"type": "pg", ...}).  The slot is
 * peeked, never consumed: every run sees every change again, and the sink
 * must skip what dts.apply_progress says is applied.  After a clean run
 * the slot is advanced to the sink's durable LSN, as pg_dts_ship's
 * feedback would, unless PGSINK_NO_ADVANCE=1.
 *
 * Environment:
 *	PGSINK_CRASH_AFTER=N	_exit(137) after handing N changes to the sink
 *							(a crash in the middle of a batch)
 *	PGSINK_NO_ADVANCE=1		do not advance the slot
 *	PGSINK_ROLLBACK_AT=N	once, after N changes: call rollback() and read
 *							the stream again from its start, as the
 *							shipper does after a lost connection
 *
 * Prints one line "applied: ..." with counts, times and the rate.  Exit
 * status: 0 done, 1 the sink failed (its error on stderr, "fatal" or
 * "retry" in the first word), 2 a setup error.
 *
 * tests/pgsink/pgsink_driver.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "conflict.h"
#include "log.h"
#include "pg_dts/frame.h"
#include "sink.h"
#include "task.h"

#define HEARTBEAT_SCHEMA "public"
#define HEARTBEAT_TABLE "dts_postgres_heartbeat"

typedef struct Message
{
	char	   *data;
	size_t		len;
} Message;

typedef struct Driver
{
	DtsSink		sink;
	DtsDecoder	dec;
	DtsTxn		txn;
	bool		in_txn;
	bool		begin_sent;
	char		origin[256];
	long		changes;
	long		crash_after;
	long		rollback_at;
	bool		restart;		/* rollback() done: read from the start */
	long		txns;
	const DtsRelation **trunc;
	int			trunc_cap;
} Driver;

static double
seconds(void)
{
	return (double) dts_now_us() / 1e6;
}

static int
fail(Driver *d, const DtsError *err)
{
	(void) d;
	fprintf(stderr, "%s: %s\n",
			err->cls == DTS_ERROR_FATAL ? "fatal" :
			err->cls == DTS_ERROR_CONNECT ? "connect" : "retry", err->msg);
	if (err->hint[0])
		fprintf(stderr, "hint: %s\n", err->hint);
	return -1;
}

static int
ensure_begin(Driver *d, DtsError *err)
{
	if (d->begin_sent)
		return 0;
	d->begin_sent = true;
	return d->sink.ops->begin(&d->sink, &d->txn, err);
}

static int
deliver(Driver *d, const DtsFrame *f, DtsError *err)
{
	DtsChange	c;

	memset(&c, 0, sizeof(c));
	c.frame = f;
	if (f->kind == DTS_FRAME_TRUNCATE)
	{
		if (d->trunc_cap < f->nrelids)
		{
			d->trunc_cap = f->nrelids;
			d->trunc = dts_realloc(d->trunc, sizeof(*d->trunc) * d->trunc_cap);
		}
		for (int i = 0; i < f->nrelids; i++)
			d->trunc[i] = dts_decoder_relation(&d->dec, f->relids[i]);
		c.truncated = (const DtsRelation *const *) d->trunc;
	}
	else if (f->kind != DTS_FRAME_MESSAGE &&
			 strcmp(f->rel->schema, HEARTBEAT_SCHEMA) == 0 &&
			 strcmp(f->rel->table, HEARTBEAT_TABLE) == 0)
		c.heartbeat = true;

	if (f->kind == DTS_FRAME_MESSAGE &&
		!(f->flags & DTS_MESSAGE_TRANSACTIONAL))
		return d->sink.ops->change(&d->sink, NULL, &c, err);
	if (!d->in_txn)
	{
		fprintf(stderr, "change outside a transaction\n");
		return -1;
	}
	if (ensure_begin(d, err) != 0)
		return -1;
	if (d->crash_after > 0 && d->changes >= d->crash_after)
	{
		fprintf(stderr, "crash: exiting after %ld changes\n", d->changes);
		fflush(stderr);
		_exit(137);
	}
	if (d->rollback_at > 0 && d->changes == d->rollback_at)
	{
		fprintf(stderr, "rollback after %ld changes, reading again\n",
				d->changes);
		d->rollback_at = 0;
		d->restart = true;
		d->in_txn = false;
		return d->sink.ops->rollback(&d->sink, err);
	}
	d->changes++;
	return d->sink.ops->change(&d->sink, &d->txn, &c, err);
}

static int
handle_message(Driver *d, const Message *m, DtsError *err)
{
	DtsFrame	f;
	int			r = 0;

	if (dts_decoder_open(&d->dec, (const uint8_t *) m->data, m->len) != 0)
	{
		fprintf(stderr, "bad message: %s\n", d->dec.error);
		return -1;
	}
	while (!d->restart && (r = dts_decoder_next(&d->dec, &f)) == 1)
	{
		int64_t		next;

		switch (f.kind)
		{
			case DTS_FRAME_BEGIN:
				memset(&d->txn, 0, sizeof(d->txn));
				d->txn.xid = f.xid;
				d->txn.commit_lsn = f.lsn;
				d->txn.commit_time = f.commit_time;
				d->in_txn = true;
				d->begin_sent = false;
				break;
			case DTS_FRAME_ORIGIN:
				snprintf(d->origin, sizeof(d->origin), "%.*s",
						 (int) f.origin.len, (const char *) f.origin.data);
				d->txn.origin = d->origin;
				break;
			case DTS_FRAME_COMMIT:
				if (ensure_begin(d, err) != 0)
					return -1;
				d->txn.end_lsn = f.end_lsn;
				d->txn.commit_time = f.commit_time;
				if (d->sink.ops->commit(&d->sink, &d->txn, err) != 0)
					return -1;
				d->in_txn = false;
				d->txns++;
				if (d->sink.ops->flush(&d->sink, false, dts_now_us(), &next,
									   err) != 0)
					return -1;
				break;
			case DTS_FRAME_RELATION:
				break;
			case DTS_FRAME_INSERT:
			case DTS_FRAME_UPDATE:
			case DTS_FRAME_DELETE:
			case DTS_FRAME_TRUNCATE:
			case DTS_FRAME_MESSAGE:
				if (deliver(d, &f, err) != 0)
					return -1;
				break;
			default:
				fprintf(stderr, "unexpected frame '%c'\n", f.kind);
				return -1;
		}
	}
	if (!d->restart && r < 0)
	{
		fprintf(stderr, "bad frame: %s\n", d->dec.error);
		return -1;
	}
	return 0;
}

/* Peeks every message of the slot, in binary, into memory. */
static Message *
fetch(PGconn *src, const DtsTask *task, int *nmsgs)
{
	char	  **names = NULL;
	char	  **values = NULL;
	int			nopts = dts_task_plugin_options(task, &names, &values);
	const char *params[64];
	char		sql[1024];
	size_t		len;
	PGresult   *res;
	Message    *msgs = NULL;
	int			n = 0;
	int			cap = 0;

	if (nopts < 0 || nopts > 30)
	{
		fprintf(stderr, "could not make the plugin options\n");
		exit(2);
	}
	params[0] = task->slot;
	len = (size_t) snprintf(sql, sizeof(sql),
							"SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'format', 'binary'");
	for (int i = 0; i < nopts; i++)
	{
		params[1 + 2 * i] = names[i];
		params[2 + 2 * i] = values[i];
		len += (size_t) snprintf(sql + len, sizeof(sql) - len, ", $%d, $%d",
								 2 + 2 * i, 3 + 2 * i);
	}
	snprintf(sql + len, sizeof(sql) - len, ")");
	if (!PQsendQueryParams(src, sql, 1 + 2 * nopts, NULL, params, NULL, NULL,
						   1) || !PQsetSingleRowMode(src))
	{
		fprintf(stderr, "could not peek: %s", PQerrorMessage(src));
		exit(2);
	}
	while ((res = PQgetResult(src)) != NULL)
	{
		if (PQresultStatus(res) == PGRES_SINGLE_TUPLE)
		{
			if (n == cap)
			{
				cap = cap ? cap * 2 : 1024;
				msgs = dts_realloc(msgs, sizeof(Message) * cap);
			}
			msgs[n].len = (size_t) PQgetlength(res, 0, 0);
			msgs[n].data = dts_realloc(NULL, msgs[n].len + 1);
			memcpy(msgs[n].data, PQgetvalue(res, 0, 0), msgs[n].len);
			n++;
		}
		else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "could not peek: %s", PQerrorMessage(src));
			exit(2);
		}
		PQclear(res);
	}
	dts_task_free_options(names, values, nopts);
	*nmsgs = n;
	return msgs;
}

int
main(int argc, char **argv)
{
	DtsTask		task;
	DtsPgSinkConfig cfg;
	Driver		d;
	DtsError	err = {0};
	char		errbuf[1024];
	PGconn	   *src;
	Message    *msgs;
	int			nmsgs;
	double		t0,
				t1,
				t2;
	int			rc = 0;
	int64_t		next;
	char		lsn[DTS_LSN_BUFSIZE];
	const char *crash = getenv("PGSINK_CRASH_AFTER");
	const char *rollback = getenv("PGSINK_ROLLBACK_AT");

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s TASK.json\n", argv[0]);
		return 2;
	}
	dts_log_init("pgsink_driver", 1);
	dts_task_init(&task);
	if (dts_task_load_file(&task, argv[1], errbuf, sizeof(errbuf)) != 0 ||
		dts_task_finish(&task, errbuf, sizeof(errbuf)) != 0)
	{
		fprintf(stderr, "%s\n", errbuf);
		return 2;
	}
	if (dts_pg_sink_config_from_json(task.sink_json, &cfg, errbuf,
									 sizeof(errbuf)) != 0)
	{
		fprintf(stderr, "%s: %s\n", argv[1], errbuf);
		return 2;
	}
	src = PQconnectdb(task.source_conninfo);
	if (PQstatus(src) != CONNECTION_OK)
	{
		fprintf(stderr, "could not connect to the source: %s",
				PQerrorMessage(src));
		return 2;
	}
	cfg.task_name = task.name;
	cfg.task = &task;
	cfg.source_encoding = PQparameterStatus(src, "server_encoding");

	memset(&d, 0, sizeof(d));
	d.crash_after = crash ? atol(crash) : 0;
	d.rollback_at = rollback ? atol(rollback) : 0;
	dts_decoder_init(&d.dec);
	dts_pg_sink_init(&d.sink, &cfg);
	if (d.sink.ops->open(&d.sink, &err) != 0)
	{
		fail(&d, &err);
		return 1;
	}
	fprintf(stderr, "resuming after %s\n",
			dts_lsn_str(d.sink.ops->durable_lsn(&d.sink), lsn));

	t0 = seconds();
	msgs = fetch(src, &task, &nmsgs);
	t1 = seconds();
	for (int i = 0; i < nmsgs && rc == 0; i++)
	{
		rc = handle_message(&d, &msgs[i], &err);
		if (d.restart)
		{
			d.restart = false;
			i = -1;
		}
	}
	if (rc == 0 && d.in_txn)
		rc = d.sink.ops->rollback(&d.sink, &err);
	if (rc == 0)
		rc = d.sink.ops->flush(&d.sink, true, dts_now_us(), &next, &err);
	t2 = seconds();
	if (rc != 0)
	{
		DtsError	ignored = {0};

		if (err.cls != DTS_ERROR_NONE)
			fail(&d, &err);
		d.sink.ops->rollback(&d.sink, &ignored);
		d.sink.ops->flush(&d.sink, true, dts_now_us(), &next, &ignored);
	}
	dts_lsn_str(d.sink.ops->durable_lsn(&d.sink), lsn);
	printf("applied: %d messages, %ld transactions, %ld changes; fetch %.3f s, apply %.3f s, %.0f changes/s; durable %s\n",
		   nmsgs, d.txns, d.changes, t1 - t0, t2 - t1,
		   t2 > t1 ? d.changes / (t2 - t1) : 0.0, lsn);

	if (rc == 0 && d.sink.ops->durable_lsn(&d.sink) > 0 &&
		getenv("PGSINK_NO_ADVANCE") == NULL)
	{
		const char *p[2] = {task.slot, lsn};
		PGresult   *res = PQexecParams(src,
									   "SELECT pg_replication_slot_advance($1, $2::pg_lsn) "
									   "WHERE $2::pg_lsn > (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1)",
									   2, NULL, p, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			fprintf(stderr, "could not advance the slot: %s",
					PQerrorMessage(src));
		PQclear(res);
	}

	d.sink.ops->close(&d.sink);
	dts_decoder_free(&d.dec);
	for (int i = 0; i < nmsgs; i++)
		free(msgs[i].data);
	free(msgs);
	free(d.trunc);
	dts_pg_sink_config_free(&cfg);
	PQfinish(src);
	dts_task_free(&task);
	return rc == 0 ? 0 : 1;
}

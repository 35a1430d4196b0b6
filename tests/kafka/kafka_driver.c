/*-------------------------------------------------------------------------
 *
 * kafka_driver.c
 *	  Test driver of the Kafka sink: reads a pg_dts slot through SQL and
 *	  drives the sink's operations exactly as shipper/sink.h describes,
 *	  standing in for pg_dts_ship until its main loop selects the sink.
 *
 * Usage:
 *	kafka_driver -d CONNINFO -S SLOT --task FILE.json [--until-idle] [-v]
 *
 * Each pass peeks the slot (pg_logical_slot_peek_binary_changes with
 * format 'text' and the Kafka sink's binary_types, in a session with
 * DateStyle ISO, TimeZone UTC, extra_float_digits 3, IntervalStyle
 * postgres, bytea_output hex: the shipper's options and settings),
 * through a cursor so that memory stays bounded, hands each
 * transaction not handed over before to the sink (begin, change...,
 * commit), calls flush(), and advances the slot to the sink's durable_lsn
 * (pg_replication_slot_advance): the slot's confirmed position is then what
 * the shipper would have confirmed, and a restart after a crash resends
 * exactly what was not durable.  With --until-idle it exits 0 once a pass
 * finds nothing new and the sink is idle; otherwise it runs until SIGTERM
 * (flush, advance, exit 0).  On stderr at exit: "kafka_driver: N
 * transactions, N changes in S s (R changes/s), durable X/X".
 *
 * tests/kafka/kafka_driver.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "pg_dts/frame.h"
#include "formats/record.h"
#include "log.h"
#include "router.h"
#include "sink.h"
#include "task.h"

static volatile sig_atomic_t stop_flag;

static void
on_stop(int signo)
{
	(void) signo;
	stop_flag = 1;
}

typedef struct Driver
{
	PGconn	   *conn;
	const char *slot;
	DtsSink		sink;
	DtsDecoder	dec;
	DtsRouter	router;			/* name mapping, as the shipper's source */
	uint64_t	handed_lsn;		/* end LSN of the last transaction handed */
	uint64_t	advanced_lsn;	/* slot advanced up to here */
	bool		in_txn;
	bool		skip_txn;		/* handed over in an earlier pass */
	DtsTxn		txn;
	const DtsRelation **trunc;
	int			trunc_cap;
	uint64_t	txns;
	uint64_t	changes;
} Driver;

static void
fail(const char *what, PGconn *conn)
{
	dts_log_error("%s: %s", what, conn ? PQerrorMessage(conn) : "");
	exit(1);
}

static void
exec_ok(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		dts_log_error("%s: %s", sql, PQresultErrorMessage(res));
		exit(1);
	}
	PQclear(res);
}

static void
sink_check(int rc, DtsError *err)
{
	if (rc != 0)
	{
		dts_error_log(DTS_LOG_ERROR, err);
		exit(err->cls == DTS_ERROR_FATAL ? 3 : 1);
	}
}

/* Hands one decoded frame to the sink. */
static void
handle_frame(Driver *d, const DtsFrame *f)
{
	DtsError	err = {0};
	DtsChange	c;

	switch (f->kind)
	{
		case DTS_FRAME_BEGIN:
			memset(&d->txn, 0, sizeof(d->txn));
			d->txn.xid = f->xid;
			d->txn.commit_lsn = f->lsn;
			d->txn.commit_time = f->commit_time;
			d->in_txn = true;
			d->skip_txn = f->lsn < d->handed_lsn;
			if (!d->skip_txn)
				sink_check(d->sink.ops->begin(&d->sink, &d->txn, &err), &err);
			return;
		case DTS_FRAME_COMMIT:
			d->in_txn = false;
			if (d->skip_txn)
				return;
			d->txn.end_lsn = f->end_lsn;
			sink_check(d->sink.ops->commit(&d->sink, &d->txn, &err), &err);
			d->handed_lsn = f->end_lsn;
			d->txns++;
			return;
		case DTS_FRAME_INSERT:
		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
		case DTS_FRAME_TRUNCATE:
		case DTS_FRAME_MESSAGE:
			break;
		default:
			return;				/* RELATION, ORIGIN: decoder state only */
	}
	if (d->in_txn && d->skip_txn)
		return;
	if (!d->in_txn && f->kind == DTS_FRAME_MESSAGE && f->lsn < d->handed_lsn)
		return;
	memset(&c, 0, sizeof(c));
	c.frame = f;
	if (f->kind == DTS_FRAME_TRUNCATE)
	{
		if (f->nrelids > d->trunc_cap)
		{
			d->trunc_cap = f->nrelids;
			d->trunc = dts_realloc(d->trunc, sizeof(*d->trunc) * d->trunc_cap);
		}
		for (int i = 0; i < f->nrelids; i++)
			d->trunc[i] = dts_decoder_relation(&d->dec, f->relids[i]);
		c.truncated = d->trunc;
	}
	else if (f->kind != DTS_FRAME_MESSAGE && f->rel &&
			 strcmp(f->rel->schema, DTS_HEARTBEAT_SCHEMA) == 0 &&
			 strcmp(f->rel->table, DTS_HEARTBEAT_TABLE) == 0)
		c.heartbeat = true;
	if (f->kind != DTS_FRAME_MESSAGE && f->kind != DTS_FRAME_TRUNCATE)
		c.target = dts_router_target(&d->router, f->rel);
	d->changes++;
	sink_check(d->sink.ops->change(&d->sink, d->in_txn ? &d->txn : NULL, &c,
								   &err), &err);
	if (!d->in_txn && f->kind == DTS_FRAME_MESSAGE)
		d->handed_lsn = f->lsn;
}

/* Flushes (force or when due) and advances the slot to durable_lsn. */
static void
flush_and_advance(Driver *d, bool force)
{
	DtsError	err = {0};
	int64_t		next;
	uint64_t	durable;

	sink_check(d->sink.ops->flush(&d->sink, force, dts_now_us(), &next, &err),
			   &err);
	durable = d->sink.ops->durable_lsn(&d->sink);
	if (durable > d->advanced_lsn)
	{
		char		sql[256];
		char		buf[DTS_LSN_BUFSIZE];

		snprintf(sql, sizeof(sql),
				 "SELECT pg_replication_slot_advance('%s', '%s')",
				 d->slot, dts_lsn_str(durable, buf));
		exec_ok(d->conn, sql);
		d->advanced_lsn = durable;
	}
}

/* One pass over the slot; returns the number of rows read. */
static long
run_pass(Driver *d)
{
	char		sql[768];
	long		rows = 0;

	exec_ok(d->conn, "BEGIN");
	snprintf(sql, sizeof(sql),
			 "DECLARE c NO SCROLL CURSOR FOR SELECT data FROM "
			 "pg_logical_slot_peek_binary_changes('%s', NULL, NULL, "
			 "'proto_version', '1', 'format', 'text', "
			 "'binary_types', '" DTS_KFMT_BINARY_TYPES "')", d->slot);
	exec_ok(d->conn, sql);
	for (;;)
	{
		PGresult   *res = PQexecParams(d->conn, "FETCH 500 FROM c", 0, NULL,
									   NULL, NULL, NULL, 1);
		int			n;

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			dts_log_error("FETCH: %s", PQresultErrorMessage(res));
			exit(1);
		}
		n = PQntuples(res);
		for (int i = 0; i < n; i++)
		{
			DtsFrame	f;
			int			r;

			if (dts_decoder_open(&d->dec, (const uint8_t *) PQgetvalue(res, i, 0),
								 PQgetlength(res, i, 0)) != 0)
			{
				dts_log_error("bad message: %s", d->dec.error);
				exit(1);
			}
			while ((r = dts_decoder_next(&d->dec, &f)) == 1)
				handle_frame(d, &f);
			if (r < 0)
			{
				dts_log_error("bad frame: %s", d->dec.error);
				exit(1);
			}
		}
		PQclear(res);
		rows += n;
		if (n == 0)
			break;
		flush_and_advance(d, false);
	}
	exec_ok(d->conn, "COMMIT");
	return rows;
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"task", required_argument, NULL, 't'},
		{"until-idle", no_argument, NULL, 'i'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0}
	};
	const char *conninfo = NULL;
	const char *task_file = NULL;
	bool		until_idle = false;
	int			verbose = 0;
	int			c;
	Driver		d;
	DtsTask		task;
	DtsKafkaSinkConfig cfg;
	DtsError	err = {0};
	char		errbuf[512];
	int64_t		t0;
	double		secs;
	char		buf[DTS_LSN_BUFSIZE];
	struct sigaction sa;

	memset(&d, 0, sizeof(d));
	dts_log_init("kafka_driver", 0);
	while ((c = getopt_long(argc, argv, "d:S:t:iv", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'S':
				d.slot = optarg;
				break;
			case 't':
				task_file = optarg;
				break;
			case 'i':
				until_idle = true;
				break;
			case 'v':
				verbose++;
				break;
			default:
				fprintf(stderr, "usage: kafka_driver -d CONNINFO -S SLOT --task FILE [--until-idle] [-v]\n");
				return 2;
		}
	}
	if (!conninfo || !d.slot || !task_file)
	{
		fprintf(stderr, "usage: kafka_driver -d CONNINFO -S SLOT --task FILE [--until-idle] [-v]\n");
		return 2;
	}
	dts_log_init("kafka_driver", verbose);

	dts_task_init(&task);
	if (dts_task_load_file(&task, task_file, errbuf, sizeof(errbuf)) != 0)
	{
		dts_log_error("%s", errbuf);
		return 1;
	}
	if (dts_kafka_sink_config_from_json(&cfg, task.sink_json, errbuf,
										sizeof(errbuf)) != 0)
	{
		dts_log_error("%s: %s", task_file, errbuf);
		return 1;
	}

	d.conn = PQconnectdb(conninfo);
	if (PQstatus(d.conn) != CONNECTION_OK)
		fail("could not connect", d.conn);
	exec_ok(d.conn, "SET DateStyle = ISO; SET TimeZone = UTC; "
			"SET extra_float_digits = 3; SET IntervalStyle = postgres; "
			"SET bytea_output = hex");
	cfg.database = PQdb(d.conn);
	cfg.source_version = PQparameterStatus(d.conn, "server_version");
	cfg.task = &task;

	dts_kafka_sink_init(&d.sink, &cfg);
	dts_kafka_sink_config_free(&cfg);
	sink_check(d.sink.ops->open(&d.sink, &err), &err);
	dts_decoder_init(&d.dec);
	dts_router_init(&d.router, &task);

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	t0 = dts_now_us();
	while (!stop_flag)
	{
		long		rows = run_pass(&d);

		flush_and_advance(&d, false);
		if (rows > 0 && d.txns > 0)
			continue;
		if (until_idle && d.sink.ops->idle(&d.sink))
			break;
		if (until_idle)
			flush_and_advance(&d, true);
		else
			usleep(100000);
	}
	flush_and_advance(&d, true);
	secs = (dts_now_us() - t0) / 1e6;
	fprintf(stderr, "kafka_driver: %llu transactions, %llu changes in %.3f s (%.0f changes/s), durable %s\n",
			(unsigned long long) d.txns, (unsigned long long) d.changes, secs,
			secs > 0 ? d.changes / secs : 0.0,
			dts_lsn_str(d.sink.ops->durable_lsn(&d.sink), buf));
	d.sink.ops->close(&d.sink);
	dts_decoder_free(&d.dec);
	dts_router_free(&d.router);
	free(d.trunc);
	PQfinish(d.conn);
	dts_task_free(&task);
	return 0;
}

/*-------------------------------------------------------------------------
 *
 * pgsync_driver.c
 *	  A command-line front end to shipper/schema_sync.c and
 *	  shipper/full_sync.c for tests/pgsync/run.sh, doing what pg_dts_ship's
 *	  main does for a PostgreSQL-to-PostgreSQL task, in the same order.
 *
 * Usage:
 *	pgsync_driver STEPS SRC DST TASKFILE [options] [CHECK...]
 *
 * STEPS is a comma-separated subset of "pre", "full", "post", run in the
 * order pre, full, post.  Before "full" (or "pre" with -s) the driver gets
 * a snapshot: it creates the task's slot over a replication connection
 * with EXPORT_SNAPSHOT, or, when the slot exists (a resumed full sync),
 * exports one from a plain connection; it keeps that connection open and
 * idle until the CHECKs are done.
 *
 * Options:
 *	-w N	 full sync workers
 *	-r BYTES range size
 *	-s		 pre-data dumps as of the snapshot (as main does)
 *	-P MS	 progress interval (progress goes to stderr)
 *
 * CHECK is "SRCSQL|DSTSQL": SRCSQL runs on the source in a transaction
 * that imported the snapshot (so it sees exactly what the full sync
 * copied), DSTSQL on the destination; each prints one line
 * "check N: <source result> | <destination result>" (the first row, its
 * columns joined with ',').
 *
 * Exit status: 0 all steps done, 1 a step failed, 2 usage or setup error.
 *
 * tests/pgsync/pgsync_driver.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpq-fe.h"

#include "full_sync.h"
#include "log.h"
#include "schema_sync.h"
#include "task.h"

/* The snapshot and the connection that exported it */
typedef struct Snapshot
{
	PGconn	   *conn;
	char		name[128];
	char		lsn[64];
	int			created;		/* 1: slot created now, 0: exported */
} Snapshot;

static PGconn *
connect_to(const char *conninfo, int replication)
{
	const char *keys[] = {"dbname", "replication", NULL};
	const char *vals[] = {conninfo, replication ? "database" : NULL, NULL};
	PGconn	   *conn = PQconnectdbParams(keys, vals, 1);

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Creates the slot with an exported snapshot, or exports one if it exists */
static int
take_snapshot(const char *src, const char *slot, Snapshot *snap)
{
	PGconn	   *conn = connect_to(src, 0);
	PGresult   *res;
	const char *params[1] = {slot};
	int			exists;
	char		sql[256];

	if (conn == NULL)
		return -1;
	res = PQexecParams(conn, "SELECT 1 FROM pg_replication_slots WHERE "
					   "slot_name = $1", 1, NULL, params, NULL, NULL, 0);
	exists = PQntuples(res) > 0;
	PQclear(res);
	if (exists)
	{
		res = PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ");
		PQclear(res);
		res = PQexec(conn, "SELECT pg_export_snapshot(), pg_current_wal_lsn()");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "export failed: %s", PQerrorMessage(conn));
			return -1;
		}
		snap->created = 0;
	}
	else
	{
		PQfinish(conn);
		conn = connect_to(src, 1);
		if (conn == NULL)
			return -1;
		snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT \"%s\" LOGICAL "
				 "pg_dts EXPORT_SNAPSHOT", slot);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "slot creation failed: %s", PQerrorMessage(conn));
			return -1;
		}
		snap->created = 1;
	}
	if (exists)
	{
		snprintf(snap->name, sizeof(snap->name), "%s", PQgetvalue(res, 0, 0));
		snprintf(snap->lsn, sizeof(snap->lsn), "%s", PQgetvalue(res, 0, 1));
	}
	else
	{
		snprintf(snap->lsn, sizeof(snap->lsn), "%s", PQgetvalue(res, 0, 1));
		snprintf(snap->name, sizeof(snap->name), "%s", PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	snap->conn = conn;
	printf("snapshot %s %s at %s\n", snap->name,
		   snap->created ? "exported with the new slot" : "exported (slot exists)",
		   snap->lsn);
	fflush(stdout);
	return 0;
}

/* The first row of sql, columns joined with ',' */
static void
first_row(PGconn *conn, const char *sql, char *out, size_t len)
{
	PGresult   *res = PQexec(conn, sql);
	size_t		n = 0;
	int			i;

	out[0] = '\0';
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
	{
		snprintf(out, len, "ERROR %s", PQerrorMessage(conn));
		out[strcspn(out, "\n")] = '\0';
		PQclear(res);
		return;
	}
	for (i = 0; i < PQnfields(res) && n < len; i++)
		n += snprintf(out + n, len - n, "%s%s", i ? "," : "",
					  PQgetisnull(res, 0, i) ? "NULL" : PQgetvalue(res, 0, i));
	PQclear(res);
}

/* Runs the CHECKs: source in the snapshot, destination now */
static void
run_checks(const char *src, const char *dst, const Snapshot *snap,
		   char **checks, int nchecks)
{
	PGconn	   *s = connect_to(src, 0);
	PGconn	   *d = connect_to(dst, 0);
	char		sql[256];
	int			i;

	if (s == NULL || d == NULL)
		return;
	snprintf(sql, sizeof(sql), "BEGIN ISOLATION LEVEL REPEATABLE READ; "
			 "SET TRANSACTION SNAPSHOT '%s'", snap->name);
	PQclear(PQexec(s, sql));
	for (i = 0; i < nchecks; i++)
	{
		char	   *copy = strdup(checks[i]);
		char	   *bar = strchr(copy, '|');
		char		a[512],
					b[512];

		if (bar == NULL)
		{
			free(copy);
			continue;
		}
		*bar = '\0';
		first_row(s, copy, a, sizeof(a));
		first_row(d, bar + 1, b, sizeof(b));
		printf("check %d: %s | %s\n", i + 1, a, b);
		free(copy);
	}
	fflush(stdout);
	PQfinish(s);
	PQfinish(d);
}

int
main(int argc, char **argv)
{
	DtsTask		task;
	DtsFullSyncOptions fopts;
	DtsSchemaSyncOptions sopts;
	DtsFullSyncResult result;
	DtsError	err = {0};
	Snapshot	snap = {0};
	char		msg[1024];
	const char *steps,
			   *src,
			   *dst;
	int			c,
				dump_in_snapshot = 0,
				rc = 0;

	if (argc < 5)
	{
		fprintf(stderr, "usage: %s STEPS SRC DST TASKFILE [-w N] [-r BYTES] "
				"[-s] [-P MS] [CHECK...]\n", argv[0]);
		return 2;
	}
	steps = argv[1];
	src = argv[2];
	dst = argv[3];
	dts_log_init("pgsync_driver", 1);
	dts_task_init(&task);
	if (dts_task_load_file(&task, argv[4], msg, sizeof(msg)) < 0 ||
		dts_task_finish(&task, msg, sizeof(msg)) < 0)
	{
		fprintf(stderr, "task: %s\n", msg);
		return 2;
	}
	dts_full_sync_options_init(&fopts);
	dts_schema_sync_options_init(&sopts);
	fopts.progress = stderr;
	optind = 5;
	while ((c = getopt(argc, argv, "w:r:sP:")) != -1)
	{
		switch (c)
		{
			case 'w':
				fopts.workers = atoi(optarg);
				break;
			case 'r':
				fopts.range_bytes = atoll(optarg);
				break;
			case 's':
				dump_in_snapshot = 1;
				break;
			case 'P':
				fopts.progress_interval_ms = atoi(optarg);
				break;
			default:
				return 2;
		}
	}

	if ((strstr(steps, "full") || dump_in_snapshot) &&
		take_snapshot(src, task.slot, &snap) < 0)
		return 2;
	if (dump_in_snapshot)
		sopts.snapshot = snap.name;

	if (strstr(steps, "pre") &&
		dts_schema_sync(&task, src, dst, &sopts, &err) < 0)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		rc = 1;
	}
	if (rc == 0 && strstr(steps, "full"))
	{
		if (dts_full_sync(&task, src, snap.name, dst, &fopts, &result,
						  &err) < 0)
		{
			dts_error_log(DTS_LOG_ERROR, &err);
			rc = 1;
		}
		printf("full sync: %d tables, %d ranges, %d copied, %d resumed, "
			   "%lld rows, %lld bytes, %.2f s, %.1f MB/s, snapshot LSN %s\n",
			   result.tables, result.ranges, result.ranges_copied,
			   result.ranges_resumed, (long long) result.rows,
			   (long long) result.bytes, result.seconds,
			   result.seconds > 0 ? result.bytes / 1048576.0 / result.seconds : 0,
			   result.snapshot_lsn);
		fflush(stdout);
	}
	if (rc == 0 && optind < argc && snap.conn)
		run_checks(src, dst, &snap, argv + optind, argc - optind);
	/* the snapshot may go now; post-data reads the catalog as it is */
	PQfinish(snap.conn);
	if (rc == 0 && strstr(steps, "post") &&
		dts_schema_sync_post_data(&task, src, dst, &sopts, &err) < 0)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		rc = 1;
	}
	dts_task_free(&task);
	printf("driver: %s\n", rc == 0 ? "ok" : "failed");
	return rc;
}

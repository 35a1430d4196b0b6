/*-------------------------------------------------------------------------
 *
 * heartbeat.c
 *	  The task's heartbeat row on the source (see heartbeat.h): an upsert
 *	  into public.dts_postgres_heartbeat every few seconds, sent without
 *	  waiting, over its own normal connection.
 *
 * shipper/heartbeat.c
 *
 *-------------------------------------------------------------------------
 */
#include "heartbeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "source.h"
#include "sqlstate.h"

#define HEARTBEAT_CONNECT_TIMEOUT_S 10

static const char heartbeat_sql[] =
"INSERT INTO public.dts_postgres_heartbeat AS h "
"(slot_name, task_name, beat_time, beat_lsn, seq) "
"VALUES ($1, $2, now(), pg_current_wal_lsn(), 1) "
"ON CONFLICT (slot_name) DO UPDATE "
"SET beat_time = now(), beat_lsn = pg_current_wal_lsn(), "
"seq = h.seq + 1, task_name = EXCLUDED.task_name";

void
dts_heartbeat_init(DtsHeartbeat *hb, DtsConnParams *params,
				   const char *slot, const char *task_name, int interval_s)
{
	memset(hb, 0, sizeof(*hb));
	hb->params = params;
	hb->slot = slot;
	hb->task_name = task_name;
	hb->interval_s = interval_s;
	hb->next_due_us = 0;		/* the first beat goes out at once */
}

void
dts_heartbeat_close(DtsHeartbeat *hb)
{
	if (hb->conn)
		PQfinish(hb->conn);
	hb->conn = NULL;
	hb->busy = false;
}

int64_t
dts_heartbeat_next_due(const DtsHeartbeat *hb)
{
	return hb->interval_s > 0 ? hb->next_due_us : INT64_MAX;
}

int
dts_heartbeat_socket(const DtsHeartbeat *hb)
{
	return hb->busy && hb->conn ? PQsocket(hb->conn) : -1;
}

void
dts_heartbeat_observe(DtsHeartbeat *hb, int64_t latency_us)
{
	hb->have_latency = true;
	hb->latency_us = latency_us;
	hb->beats_seen++;
	dts_log_info("heartbeat of slot \"%s\" came back: latency %.1f ms",
				 hb->slot, latency_us / 1000.0);
}

/* A failure: warn at the first of a streak, and drop a broken connection. */
static void
heartbeat_failed(DtsHeartbeat *hb, const char *what, const char *hint)
{
	if (hb->failures++ == 0)
	{
		DtsError	err = {0};

		dts_error_set(&err, DTS_ERROR_OTHER,
					  "heartbeat of slot \"%s\" failed: %s", hb->slot, what);
		dts_error_hint(&err, "%s", hint);
		dts_error_log(DTS_LOG_WARNING, &err);
	}
	if (hb->conn && PQstatus(hb->conn) != CONNECTION_OK)
		dts_heartbeat_close(hb);
	hb->busy = false;
}

static void
heartbeat_succeeded(DtsHeartbeat *hb)
{
	if (hb->failures > 0)
		dts_log_info("heartbeat of slot \"%s\" works again after %d failures",
					 hb->slot, hb->failures);
	hb->failures = 0;
}

void
dts_heartbeat_tick(DtsHeartbeat *hb, int64_t now_us)
{
	const char *values[2];
	DtsError	err = {0};

	if (hb->interval_s <= 0 || now_us < hb->next_due_us)
		return;
	hb->next_due_us = now_us + (int64_t) hb->interval_s * 1000000;
	/* a busy stream may not have waited on our socket: look now */
	dts_heartbeat_consume(hb);
	if (hb->busy)
		return;					/* the last one has not come back yet */
	if (hb->conn == NULL)
	{
		hb->conn = dts_connect(hb->params, false,
							   HEARTBEAT_CONNECT_TIMEOUT_S, &err);
		if (hb->conn == NULL)
		{
			heartbeat_failed(hb, err.msg,
							 "Replication goes on; the slot may not advance while the selected tables are idle.");
			return;
		}
	}
	values[0] = hb->slot;
	values[1] = hb->task_name;
	if (!PQsendQueryParams(hb->conn, heartbeat_sql, 2, NULL, values, NULL,
						   NULL, 0))
	{
		heartbeat_failed(hb, PQerrorMessage(hb->conn),
						 "Replication goes on; the heartbeat is tried again at the next interval.");
		return;
	}
	hb->busy = true;
	dts_log_debug("heartbeat of slot \"%s\" sent", hb->slot);
}

void
dts_heartbeat_consume(DtsHeartbeat *hb)
{
	PGresult   *res;

	if (!hb->busy)
		return;
	if (!PQconsumeInput(hb->conn))
	{
		heartbeat_failed(hb, PQerrorMessage(hb->conn),
						 "The heartbeat reconnects at the next interval.");
		return;
	}
	while (!PQisBusy(hb->conn))
	{
		const char *state;

		res = PQgetResult(hb->conn);
		if (res == NULL)
			break;
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !hb->error[0])
		{
			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			snprintf(hb->error, sizeof(hb->error), "%s",
					 PQresultErrorMessage(res));
			hb->error_hint =
				state && strcmp(state, DTS_SQLSTATE_UNDEFINED_TABLE) == 0 ?
				"Run CREATE EXTENSION pg_dts in the source database, or set \"heartbeat_interval\": 0 in the task file." :
				"Replication goes on; the heartbeat is tried again at the next interval.";
		}
		PQclear(res);
	}
	if (PQisBusy(hb->conn))
		return;					/* more to come */
	/* the upsert is over */
	if (hb->error[0])
		heartbeat_failed(hb, hb->error, hb->error_hint);
	else
		heartbeat_succeeded(hb);
	hb->error[0] = '\0';
	hb->busy = false;
}

/*-------------------------------------------------------------------------
 *
 * pgtask.c
 *	  What a PostgreSQL-to-PostgreSQL task runs against both ends at once:
 *	  the initial sync ("sync": schema pre-data, the full sync from an
 *	  exported snapshot with the early index builds beside it, post-data;
 *	  docs/pg-sync.md), --verify and --sync-sequences (list the task's
 *	  tables or sequences and run verify.c or sequences.c over them;
 *	  docs/verify.md).
 *
 * shipper/pgtask.c
 *
 *-------------------------------------------------------------------------
 */
#include "pgtask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "full_sync.h"
#include "log.h"
#include "schema_sync.h"
#include "sequences.h"
#include "sqlstate.h"
#include "verify.h"

/* Opens both ends; returns false (after saying why) when one fails. */
static bool
connect_both(DtsConnParams *params, const char *dst_conninfo,
			 PGconn **src, PGconn **dst)
{
	DtsError	err = {0};

	*src = dts_connect(params, false, 0, &err);
	if (*src == NULL)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		return false;
	}
	*dst = PQconnectdb(dst_conninfo);
	if (PQstatus(*dst) != CONNECTION_OK)
	{
		char	   *shown = dts_conninfo_redact(dst_conninfo);

		dts_log_error("could not connect to the destination \"%s\": %s",
					  shown ? shown : "?", PQerrorMessage(*dst));
		dts_log_hint("Check sink.conninfo in the task file.");
		free(shown);
		PQfinish(*dst);
		PQfinish(*src);
		return false;
	}
	return true;
}

int
dts_pgtask_verify(DtsConnParams *params, const DtsTask *task,
				  const char *dst_conninfo)
{
	PGconn	   *src;
	PGconn	   *dst;
	DtsVerifyTable *tables = NULL;
	int			ntables = 0;
	char		err[512];
	int			rc = 2;
	int			differ;

	if (!connect_both(params, dst_conninfo, &src, &dst))
		return 2;
	if (dts_verify_tables_for_task(src, task, &tables, &ntables, err,
								   sizeof(err)) != 0)
	{
		dts_log_error("could not list the tables of task \"%s\": %s",
					  task->name, err);
		goto cleanup;
	}
	differ = dts_verify_tables(src, dst, tables, ntables, NULL, stdout);
	fflush(stdout);
	if (differ < 0)
		dts_log_error("verification of task \"%s\" could not finish",
					  task->name);
	else if (differ > 0)
	{
		dts_log_error("%d of %d table%s of task \"%s\" differ",
					  differ, ntables, ntables == 1 ? "" : "s", task->name);
		rc = 1;
	}
	else
	{
		dts_log_info("all %d table%s of task \"%s\" are identical",
					 ntables, ntables == 1 ? "" : "s", task->name);
		rc = 0;
	}

cleanup:
	dts_verify_tables_free(tables, ntables);
	PQfinish(src);
	PQfinish(dst);
	return rc;
}

int
dts_pgtask_sync_sequences(DtsConnParams *params, const DtsTask *task,
						  const char *dst_conninfo)
{
	PGconn	   *src;
	PGconn	   *dst;
	DtsSequenceMap *seqs = NULL;
	int			nseqs = 0;
	char		err[512];
	int			rc = 1;
	int			failed;

	if (!connect_both(params, dst_conninfo, &src, &dst))
		return 1;
	if (dts_sequences_for_task(src, task, &seqs, &nseqs, err,
							   sizeof(err)) != 0)
	{
		dts_log_error("could not list the sequences of task \"%s\": %s",
					  task->name, err);
		goto cleanup;
	}
	failed = dts_sync_sequences(src, dst, seqs, nseqs, stdout);
	fflush(stdout);
	if (failed > 0)
		dts_log_error("%d of %d sequence%s of task \"%s\" could not be set",
					  failed, nseqs, nseqs == 1 ? "" : "s", task->name);
	else
	{
		dts_log_info("%d sequence%s of task \"%s\" set past the source",
					 nseqs, nseqs == 1 ? "" : "s", task->name);
		rc = 0;
	}

cleanup:
	dts_sequences_free(seqs, nseqs);
	PQfinish(src);
	PQfinish(dst);
	return rc;
}

/*
 * A connection count of the task's "parallel" object if it sets it, else
 * the measurement knob env (bench/fullsync/profile.sh) if it holds a
 * positive number, else 0 (the phase's default)
 */
static int
parallel_setting(int task_value, const char *env)
{
	const char *v = getenv(env);

	if (task_value > 0)
		return task_value;
	return v && atoi(v) > 0 ? atoi(v) : 0;
}

/*
 * A boolean of the task's "parallel" object if it sets it, else false when
 * the measurement knob env_off is set (non-empty), else true.  When the
 * answer is false, *why says which of the two turned it off.
 */
static bool
parallel_switch(DtsSwitch task_value, const char *key, const char *env_off,
				char *why, size_t whylen)
{
	const char *v = getenv(env_off);

	if (task_value == DTS_SWITCH_ON)
		return true;
	if (task_value == DTS_SWITCH_OFF)
		snprintf(why, whylen, "the task sets \"parallel\": {\"%s\": false}",
				 key);
	else if (v && v[0])
		snprintf(why, whylen, "%s is set", env_off);
	else
		return true;
	return false;
}

/*
 * Exports a snapshot for the full sync: creates the slot with EXPORT on
 * the replication connection repl, or, when the slot exists already (an
 * interrupted run), exports one from the plain connection plain in a
 * REPEATABLE READ transaction.  Whichever connection exported it must stay
 * open and idle until the copies have imported it.  Returns a malloc'd
 * snapshot name, or NULL after saying why.
 */
static char *
export_snapshot(PGconn *repl, PGconn *plain, const DtsTask *task)
{
	char		sql[256];
	PGresult   *res;
	char	   *snapshot = NULL;

	snprintf(sql, sizeof(sql),
			 "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pg_dts (SNAPSHOT 'export')",
			 task->slot);
	res = PQexec(repl, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) >= 3)
	{
		dts_log_info("created replication slot \"%s\" at %s with snapshot %s",
					 task->slot, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		snapshot = dts_strdup(PQgetvalue(res, 0, 2));
		PQclear(res);
		return snapshot;
	}
	if (PQresultErrorField(res, PG_DIAG_SQLSTATE) == NULL ||
		strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE),
			   DTS_SQLSTATE_DUPLICATE_OBJECT) != 0)
	{
		dts_log_error("could not create replication slot \"%s\": %s",
					  task->slot, PQerrorMessage(repl));
		PQclear(res);
		return NULL;
	}
	PQclear(res);

	/* the slot exists: resume under a new snapshot (docs/pg-sync.md) */
	dts_log_info("replication slot \"%s\" exists: resuming the initial sync",
				 task->slot);
	res = PQexec(plain, "BEGIN ISOLATION LEVEL REPEATABLE READ");
	PQclear(res);
	res = PQexec(plain, "SELECT pg_export_snapshot()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		snapshot = dts_strdup(PQgetvalue(res, 0, 0));
	else
		dts_log_error("could not export a snapshot: %s", PQerrorMessage(plain));
	PQclear(res);
	return snapshot;
}

int
dts_pgtask_initial_sync(DtsConnParams *params, const DtsTask *task,
						const char *dst_conninfo,
						volatile sig_atomic_t *stop)
{
	bool		schema = dts_task_has_phase(task, DTS_SYNC_SCHEMA);
	bool		full = dts_task_has_phase(task, DTS_SYNC_FULL);
	DtsError	err = {0};
	PGconn	   *repl = NULL;
	PGconn	   *plain = NULL;
	char	   *snapshot = NULL;
	DtsSchemaSyncOptions sopts;
	DtsFullSyncOptions fopts;
	DtsFullSyncResult result;
	DtsPostDataEarly *early = NULL;
	int64_t		phase_start;
	int			rc = 1,
				rc_full;

	if (!schema && !full)
		return 0;
	if ((repl = dts_connect(params, true, 0, &err)) == NULL ||
		(plain = dts_connect(params, false, 0, &err)) == NULL)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		goto cleanup;
	}
	if ((snapshot = export_snapshot(repl, plain, task)) == NULL)
		goto cleanup;

	dts_schema_sync_options_init(&sopts);
	sopts.snapshot = snapshot;
	sopts.post_data_jobs = parallel_setting(task->post_data_jobs,
											"PG_DTS_POST_DATA_JOBS");
	phase_start = dts_now_us();
	if (schema && dts_schema_sync(task, params->conninfo, dst_conninfo,
								  &sopts, &err) != 0)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		goto cleanup;
	}
	if (schema)
		dts_log_info("schema pre-data of task \"%s\" took %.1f s", task->name,
					 (dts_now_us() - phase_start) / 1e6);
	if (full)
	{
		int			workers = parallel_setting(task->full_sync_workers,
											   "PG_DTS_FULL_SYNC_WORKERS");
		char		why[128];

		dts_full_sync_options_init(&fopts);
		if (workers > 0)
			fopts.workers = workers;
		fopts.progress = stderr;
		fopts.stop = stop;
		fopts.freeze = parallel_switch(task->freeze, "freeze",
									   "PG_DTS_FULL_SYNC_NO_FREEZE",
									   why, sizeof(why));
		if (!fopts.freeze)
			dts_log_info("full sync of task \"%s\": every table is copied "
						 "with a plain COPY, without TRUNCATE and FREEZE (%s)",
						 task->name, why);
		fopts.chunked = parallel_switch(task->chunked_copy, "chunked_copy",
										"PG_DTS_FULL_SYNC_NO_CHUNKED_COPY",
										why, sizeof(why));
		if (!fopts.chunked)
			dts_log_info("full sync of task \"%s\": the source sends the "
						 "rows with a plain COPY TO, not through "
						 "dts.copy_rows() (%s)", task->name, why);
		/* each table's indexes as soon as it is copied (schema_sync.h) */
		if (schema)
		{
			if (parallel_switch(task->early_indexes, "early_indexes",
								"PG_DTS_NO_EARLY_INDEXES", why, sizeof(why)))
				early = dts_post_data_early_start(task, params->conninfo,
												  dst_conninfo, &sopts);
			else
				dts_log_info("full sync of task \"%s\": no index is built "
							 "during the copy, post-data builds them all (%s)",
							 task->name, why);
		}
		fopts.table_copied = early ? dts_post_data_early_table : NULL;
		fopts.table_copied_arg = early;
		rc_full = dts_full_sync(task, params->conninfo, snapshot, dst_conninfo,
								&fopts, &result, &err);
		dts_post_data_early_finish(early, rc_full == 0);
		early = NULL;
		if (rc_full != 0)
		{
			dts_error_log(DTS_LOG_ERROR, &err);
			goto cleanup;
		}
		dts_log_info("full sync of task \"%s\": %d tables, %lld rows in %.1f s",
					 task->name, result.tables, (long long) result.rows,
					 result.seconds);
	}
	/* the snapshot is no longer needed: post-data reads the catalog now */
	PQfinish(repl);
	repl = NULL;
	PQfinish(plain);
	plain = NULL;
	sopts.snapshot = NULL;
	phase_start = dts_now_us();
	if (schema && dts_schema_sync_post_data(task, params->conninfo,
											dst_conninfo, &sopts, &err) != 0)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		goto cleanup;
	}
	if (schema)
		dts_log_info("schema post-data of task \"%s\" took %.1f s", task->name,
					 (dts_now_us() - phase_start) / 1e6);
	rc = 0;

cleanup:
	free(snapshot);
	if (repl)
		PQfinish(repl);
	if (plain)
		PQfinish(plain);
	return rc;
}

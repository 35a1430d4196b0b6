/*-------------------------------------------------------------------------
 *
 * pgtask.c
 *	  --verify and --sync-sequences of a PostgreSQL-to-PostgreSQL task:
 *	  connect to both ends, list the task's tables or sequences, and run
 *	  verify.c or sequences.c over them (docs/verify.md).
 *
 * shipper/pgtask.c
 *
 *-------------------------------------------------------------------------
 */
#include "pgtask.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "sequences.h"
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

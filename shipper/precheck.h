/*-------------------------------------------------------------------------
 *
 * precheck.h
 *	  Checks, over a normal connection to the source, everything a task
 *	  needs before it starts (DTS's "precheck"): server settings, the
 *	  extension, slots and WAL senders, the role's privileges, the selected
 *	  tables, their replica identity and their filters.  docs/task.md lists
 *	  the items and their fixes.
 *
 * shipper/precheck.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_PRECHECK_H
#define PG_DTS_SHIP_PRECHECK_H

#include <stdio.h>

#include <libpq-fe.h>

#include "task.h"

/*
 * Runs every precheck item of the task on conn, a normal (not replication)
 * connection to the source database, and prints one line per item to
 * stdout: "pass|warn|fail|info  <item>: <detail>", followed for warn and
 * fail by "  fix: <what to do>" lines, and last a summary line.  Returns
 * the number of failures (0 = the task can start).
 *
 * conn stays the caller's, idle and outside any transaction when this
 * returns; the checks only read (filters are tried with EXPLAIN inside a
 * read-only transaction that is rolled back).
 */
extern int	dts_precheck_run(PGconn *conn, const DtsTask *task);

/* Same as dts_precheck_run(), printing to out (e.g. stderr) */
extern int	dts_precheck_run_to(PGconn *conn, const DtsTask *task,
								FILE *out);

#endif							/* PG_DTS_SHIP_PRECHECK_H */

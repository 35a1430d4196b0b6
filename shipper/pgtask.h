/*-------------------------------------------------------------------------
 *
 * pgtask.h
 *	  The actions of a PostgreSQL-to-PostgreSQL task besides streaming:
 *	  --verify (data validation) and --sync-sequences (switchover).
 *
 * shipper/pgtask.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_PGTASK_H
#define PG_DTS_SHIP_PGTASK_H

#include "source.h"
#include "task.h"

/*
 * Compares every selected table between the source (params) and the
 * destination (dst_conninfo) and prints the report on stdout.  Returns 0
 * when all are identical, 1 when any differs, 2 on an error (said why).
 */
extern int	dts_pgtask_verify(DtsConnParams *params, const DtsTask *task,
							  const char *dst_conninfo);

/*
 * Sets each destination sequence of the selection past the source's
 * current value.  Returns 0, or 1 when any could not be set (said why).
 */
extern int	dts_pgtask_sync_sequences(DtsConnParams *params,
									  const DtsTask *task,
									  const char *dst_conninfo);

/*
 * The schema and full phases of the task (when it has them), before the
 * incremental phase: creates the task's slot with an exported snapshot
 * (or, when the slot exists, resumes under a new snapshot, see
 * docs/pg-sync.md), syncs the schema's pre-data as of that snapshot,
 * copies the tables from it, then the post-data.  The slot's consistent
 * point is where the incremental phase starts, so nothing is missed or
 * applied twice.  Returns 0, or 1 after saying why; stop is polled.
 */
extern int	dts_pgtask_initial_sync(DtsConnParams *params,
									const DtsTask *task,
									const char *dst_conninfo,
									volatile sig_atomic_t *stop);

#endif							/* PG_DTS_SHIP_PGTASK_H */

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

#endif							/* PG_DTS_SHIP_PGTASK_H */

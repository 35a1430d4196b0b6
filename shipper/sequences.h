/*-------------------------------------------------------------------------
 *
 * sequences.h
 *	  pg_dts_ship --sync-sequences: at switchover, move the destination's
 *	  sequences past the values the source has handed out (logical
 *	  replication does not carry sequences).
 *
 * docs/verify.md describes when and how to use it.
 *
 * shipper/sequences.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_SEQUENCES_H
#define PG_DTS_SHIP_SEQUENCES_H

#include <stdio.h>

#include "libpq-fe.h"

#include "task.h"

/* A sequence on the source and the one it maps to on the destination */
typedef struct DtsSequenceMap
{
	char	   *src_schema;
	char	   *src_name;
	char	   *dst_schema;		/* NULL = same as src_schema */
	char	   *dst_name;		/* NULL = same as src_name */
} DtsSequenceMap;

/*
 * For each of seqs[0..nseqs-1]: reads the source's last_value, is_called
 * and increment, and sets the destination with setval(dest, V, true)
 * where V is the value the source would hand out next (last_value +
 * increment, or last_value itself when is_called is false), so that the
 * destination's next value is one increment beyond it.  A destination
 * already at or beyond V (in the direction of the sequence: descending
 * sequences go down) is left alone.  One line per sequence goes to log,
 * saying what was read and done.
 *
 * Returns the number of sequences that could not be synchronized (0: all
 * done); each has a line starting "error:" with what to do.
 */
extern int	dts_sync_sequences(PGconn *src, PGconn *dst,
							   const DtsSequenceMap *seqs, int nseqs,
							   FILE *log);

/*
 * The sequences of a task's object selection on the source: the sequences
 * owned by (serial or identity columns of) each selected table, every
 * sequence of a whole-schema rule's schema, and for a whole-database task
 * every sequence outside the system schemas and the dts schema.  A
 * sequence's schema is mapped when it is the rule's schema and the rule
 * has new_schema; sequence names are kept.
 *
 * On success returns 0 and sets *seqs (malloc'd, with malloc'd strings;
 * free with dts_sequences_free) and *nseqs.  On failure returns -1 with
 * a message in err and sets nothing.
 */
extern int	dts_sequences_for_task(PGconn *src, const DtsTask *task,
								   DtsSequenceMap **seqs, int *nseqs,
								   char *err, size_t errlen);

extern void dts_sequences_free(DtsSequenceMap *seqs, int nseqs);

#endif							/* PG_DTS_SHIP_SEQUENCES_H */

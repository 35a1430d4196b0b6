/*-------------------------------------------------------------------------
 *
 * full_sync.h
 *	  The full sync of a PostgreSQL-to-PostgreSQL task: every selected
 *	  table copied from one consistent snapshot of the source into the
 *	  destination, in parallel, with binary COPY, in ranges that are each
 *	  committed together with their progress row, so that an interrupted
 *	  copy resumes where it stopped.
 *
 * docs/pg-sync.md describes the phase, its progress line and how resuming
 * stays consistent with the incremental phase.
 *
 * shipper/full_sync.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_FULL_SYNC_H
#define PG_DTS_SHIP_FULL_SYNC_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "task.h"

#define DTS_FULL_SYNC_WORKERS_DEFAULT		4
#define DTS_FULL_SYNC_WORKERS_MAX			64	/* more are capped */
#define DTS_FULL_SYNC_RANGE_BYTES_DEFAULT	(INT64_C(128) * 1024 * 1024)
#define DTS_FULL_SYNC_MAX_RANGES_DEFAULT	64
#define DTS_FULL_SYNC_PROGRESS_MS_DEFAULT	5000

typedef struct DtsFullSyncOptions
{
	int			workers;		/* parallel copies (each with its own source
								 * and destination connection) */
	int64_t		range_bytes;	/* tables larger than this (on disk, all
								 * partitions) are copied in ranges of
								 * about this size */
	int			max_ranges;		/* at most this many ranges per table */
	int			progress_interval_ms;
	FILE	   *progress;		/* progress lines go here (e.g. stderr);
								 * NULL = none */
	volatile sig_atomic_t *stop;	/* if set and non-zero, the copies stop
									 * (their ranges roll back) and the call
									 * returns -1; NULL = never */
	/* called (from a worker thread) when this call has copied the last
	 * range of a table; must return quickly; NULL = none */
	void		(*table_copied) (void *arg, const char *dst_schema,
								 const char *dst_table);
	void	   *table_copied_arg;
	bool		freeze;			/* copy a table this task's pre-data created
								 * whole with TRUNCATE + COPY ... FREEZE
								 * (docs/pg-sync.md); default true; false =
								 * a plain COPY for every table */
	bool		chunked;		/* have the source serve the rows through
								 * dts.copy_rows() when it has the pg_dts
								 * extension; default true; false = always
								 * COPY ... TO STDOUT */
} DtsFullSyncOptions;

/* What a full sync did */
typedef struct DtsFullSyncResult
{
	int			tables;
	int			ranges;			/* in the plan */
	int			ranges_copied;	/* by this call */
	int			ranges_resumed; /* done by an earlier call, not copied */
	int64_t		rows;			/* copied by this call */
	int64_t		bytes;			/* COPY bytes moved by this call */
	double		seconds;
	char		snapshot_lsn[DTS_LSN_BUFSIZE];	/* recorded with each range */
} DtsFullSyncResult;

/*
 * Sets every option to its default (DTS_FULL_SYNC_*_DEFAULT, progress NULL,
 * freeze and chunked true)
 */
extern void dts_full_sync_options_init(DtsFullSyncOptions *opts);

/*
 * Copies the task's tables (sync_tables.h: mapping, column lists, row
 * filters) from the source as of snapshot_name into the destination.
 *
 * snapshot_name is a snapshot exported on the source: the one
 * CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT returned, or, to resume an
 * interrupted full sync, one from pg_export_snapshot().  THE EXPORTING
 * CONNECTION MUST STAY OPEN AND IDLE (no other command on it) UNTIL THIS
 * FUNCTION RETURNS: every copy imports the snapshot when it starts
 * (BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT), and
 * an import fails once the exporting transaction has ended.
 *
 * The destination tables must exist (schema sync pre-data) and should have
 * no indexes or foreign keys yet (post-data comes after, for speed).
 * Progress is recorded in dts.full_sync_progress on the destination, one
 * row per range, committed with the range's rows.  A second call for the
 * same task copies only what is not done; when the snapshot differs from
 * the one the done ranges were copied under, the task's replication slot
 * (task->slot) must still exist (else -1): the incremental phase must
 * replay from that slot, with conflicts resolved as Overwrite up to the
 * newest snapshot_lsn of dts.full_sync_progress (see docs/pg-sync.md).
 *
 * With the pg sink's "conflicting_tables": "ignore", tables that existed
 * before the schema sync (dts.schema_sync_state.kept_tables) are filled
 * through a staging table and INSERT ... ON CONFLICT DO NOTHING: rows
 * whose key exists are kept.
 *
 * Returns 0 when every range is done, -1 with err set otherwise (what was
 * committed stays, for a later call to resume).  result may be NULL.
 */
extern int	dts_full_sync(const DtsTask *task, const char *src_conninfo,
						  const char *snapshot_name, const char *dst_conninfo,
						  const DtsFullSyncOptions *opts,
						  DtsFullSyncResult *result, DtsError *err);

#endif							/* PG_DTS_SHIP_FULL_SYNC_H */

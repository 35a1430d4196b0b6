/*-------------------------------------------------------------------------
 *
 * schema_sync.h
 *	  The schema sync of a PostgreSQL-to-PostgreSQL task: the selected
 *	  schemas' objects created at the destination in two steps, pre-data
 *	  (types, sequences, functions, tables, views) before the full sync and
 *	  post-data (indexes, constraints, foreign keys, triggers) after it.
 *
 * pg_dump and pg_restore (of the source's major version) write the DDL;
 * name mapping and column lists are applied by renaming, moving and
 * dropping inside the same destination transaction, and the post-data of
 * mapped tables is generated from the catalog.  docs/pg-sync.md says
 * exactly what comes from where.
 *
 * shipper/schema_sync.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_SCHEMA_SYNC_H
#define PG_DTS_SHIP_SCHEMA_SYNC_H

#include <stdbool.h>

#include "log.h"
#include "task.h"

typedef struct DtsSchemaSyncOptions
{
	const char *bindir;			/* where pg_dump and pg_restore are; NULL =
								 * /usr/lib/postgresql/<source major>/bin
								 * when it has them, else $PATH */
	const char *snapshot;		/* pre-data: dump and read the catalog as of
								 * this exported snapshot (the full sync's);
								 * NULL = now.  Its exporting connection must
								 * stay open and idle meanwhile. */
	const char *tmpdir;			/* for the dump archive; NULL = $TMPDIR or
								 * /tmp */
	int			post_data_jobs; /* destination connections building
								 * post-data's indexes and constraints at
								 * once; 0 = DTS_POST_DATA_JOBS_DEFAULT, 1 =
								 * the whole script in one transaction */
} DtsSchemaSyncOptions;

#define DTS_POST_DATA_JOBS_DEFAULT	4

extern void dts_schema_sync_options_init(DtsSchemaSyncOptions *opts);

/*
 * Pre-data: creates the task's schemas, the extensions their objects
 * need, and their types, sequences, functions, procedures, tables (with
 * columns, defaults, NOT NULL, CHECK constraints, identity and generated
 * columns) and views, under the task's names (mapping, column lists), in
 * ONE destination transaction: on failure nothing is left behind.
 *
 * Before anything is written, a selected table whose destination name
 * exists already is an error naming it, unless the pg sink says
 * "conflicting_tables": "ignore": then it is kept as it is (recorded in
 * dts.schema_sync_state.kept_tables; the full sync fills it, keeping rows
 * whose key exists; post-data leaves it alone).
 *
 * Done once per task: the transaction records (task, 'pre-data') in
 * dts.schema_sync_state and a later call finds it there and returns 0.
 * Returns 0, or -1 with err set.
 */
extern int	dts_schema_sync(const DtsTask *task, const char *src_conninfo,
							const char *dst_conninfo,
							const DtsSchemaSyncOptions *opts, DtsError *err);

/*
 * Post-data, to run after the full sync: indexes, primary key, unique and
 * exclusion constraints, triggers, rules and policies of the tables the
 * pre-data created, and the foreign keys between the task's tables, in
 * one destination transaction, recorded as (task, 'post-data').  Reads
 * the source's catalog as it is now (the snapshot is gone by then).
 * Returns 0, or -1 with err set (pre-data not done is an error).
 */
extern int	dts_schema_sync_post_data(const DtsTask *task,
									  const char *src_conninfo,
									  const char *dst_conninfo,
									  const DtsSchemaSyncOptions *opts,
									  DtsError *err);

/*
 * Post-data during the full sync: dumps the post-data at once (as
 * dts_schema_sync_post_data would; its source connections are closed
 * before this returns), then a thread builds the indexes and
 * primary key, unique and exclusion constraints of each table handed to
 * dts_post_data_early_table (the full sync's table_copied callback) as
 * soon as the table is copied, while other tables still copy.  Each one is
 * recorded in dts.schema_sync_state as it commits, and
 * dts_schema_sync_post_data then skips it.  Best effort: a failure is a
 * warning and post-data builds the entry itself.  Start after the pre-data
 * step; finish before post-data: it waits for the build in progress and,
 * with build_queued, for the tables handed over but not started (without,
 * e.g. when the full sync failed or was stopped, those are dropped).
 * Returns NULL when there is nothing to do.
 */
typedef struct DtsPostDataEarly DtsPostDataEarly;

extern DtsPostDataEarly *dts_post_data_early_start(const DtsTask *task,
												   const char *src_conninfo,
												   const char *dst_conninfo,
												   const DtsSchemaSyncOptions *opts);
extern void dts_post_data_early_table(void *early, const char *dst_schema,
									  const char *dst_table);
extern void dts_post_data_early_finish(DtsPostDataEarly *early,
									   bool build_queued);

#endif							/* PG_DTS_SHIP_SCHEMA_SYNC_H */

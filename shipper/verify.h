/*-------------------------------------------------------------------------
 *
 * verify.h
 *	  pg_dts_ship --verify: compare the tables of a PostgreSQL to
 *	  PostgreSQL task on the source and the destination, row by row in
 *	  effect but chunk by chunk in practice (hashes of key ranges, bisected
 *	  where they differ), and report the keys that differ.
 *
 * docs/verify.md describes the method and the report.
 *
 * shipper/verify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_VERIFY_H
#define PG_DTS_SHIP_VERIFY_H

#include <stdbool.h>
#include <stdio.h>

#include "libpq-fe.h"

#include "task.h"

#define DTS_VERIFY_CHUNK_ROWS_DEFAULT	100000
#define DTS_VERIFY_MIN_CHUNK_DEFAULT	1000
#define DTS_VERIFY_MAX_LISTED_DEFAULT	20

/* One compared column: its name on the source and on the destination. */
typedef struct DtsVerifyColumn
{
	char	   *src_name;
	char	   *dst_name;		/* NULL = same as src_name */
} DtsVerifyColumn;

/*
 * One table to compare.  columns == NULL (ncolumns 0) compares every
 * column of the source table under the same names.  where, if set, is a
 * SQL boolean expression over the source table's columns: only the source
 * rows it accepts are expected on the destination, which is read whole.
 */
typedef struct DtsVerifyTable
{
	char	   *src_schema;
	char	   *src_table;
	char	   *dst_schema;		/* NULL = same as src_schema */
	char	   *dst_table;		/* NULL = same as src_table */
	DtsVerifyColumn *columns;
	int			ncolumns;
	char	   *where;
} DtsVerifyTable;

typedef struct DtsVerifyOptions
{
	long		chunk_rows;		/* source rows per top-level chunk */
	long		min_chunk;		/* ranges this small are compared row by row */
	int			max_listed;		/* keys listed per table before "and N more" */
} DtsVerifyOptions;

/* Sets every option to its default (the DTS_VERIFY_*_DEFAULT above). */
extern void dts_verify_options_init(DtsVerifyOptions *opts);

/*
 * Compares tables[0..ntables-1] between src and dst and writes the report
 * to report: one line per table, "table s.t -> d.t: rows source N,
 * destination M: ok" or "...: DIFFERENT (k ranges)", each DIFFERENT line
 * followed by indented lines naming the differing key ranges and, in each,
 * the keys missing on the destination, extra on the destination, or with
 * different values (at most opts->max_listed keys per table are listed).
 *
 * Both sessions are set up for comparable text forms (DateStyle ISO,
 * TimeZone UTC, extra_float_digits 3, IntervalStyle postgres, bytea_output
 * hex, lc_monetary C) and read in one REPEATABLE READ READ ONLY
 * transaction each, ended (rolled back) before returning; the connections
 * must be idle (no transaction open) and are otherwise left as they were
 * given, still open and owned by the caller.  opts may be NULL for the
 * defaults.
 *
 * Returns the number of tables that differ (0: all identical).  A table
 * that cannot be compared (missing on either side, a missing column, a
 * failing row filter) counts as differing and its line says why.  Returns
 * -1 when the comparison as a whole cannot go on (a connection is lost, a
 * session cannot be set up), after saying why in the report.
 */
extern int	dts_verify_tables(PGconn *src, PGconn *dst,
							  const DtsVerifyTable *tables, int ntables,
							  const DtsVerifyOptions *opts, FILE *report);

/*
 * The tables a task's object selection names, as DtsVerifyTables: each
 * table rule as it is (mapping, columns, row filter), each schema rule
 * expanded to the ordinary and partitioned tables (not partitions) the
 * schema holds on the source, a whole-database task to every such table
 * outside the system schemas and the dts schema.  The extension's
 * heartbeat and DDL tables are left out: they change all the time.
 *
 * On success returns 0 and sets *tables (malloc'd, with malloc'd strings)
 * and *ntables; free them with dts_verify_tables_free.  On failure returns
 * -1 with a message in err and sets nothing.
 */
extern int	dts_verify_tables_for_task(PGconn *src, const DtsTask *task,
									   DtsVerifyTable **tables,
									   int *ntables,
									   char *err, size_t errlen);

extern void dts_verify_tables_free(DtsVerifyTable *tables, int ntables);

#endif							/* PG_DTS_SHIP_VERIFY_H */

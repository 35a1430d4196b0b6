/*-------------------------------------------------------------------------
 *
 * task.h
 *	  A pg_dts_ship task: everything one replication task is configured
 *	  with, from the task file (--task FILE.json, docs/task.md) and the
 *	  command line (which wins).
 *
 * shipper/task.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_TASK_H
#define PG_DTS_SHIP_TASK_H

#include <stdbool.h>
#include <stddef.h>

/* The extension's tables a selective task always includes (DESIGN.md 2) */
#define DTS_HEARTBEAT_SCHEMA	"public"
#define DTS_HEARTBEAT_TABLE		"dts_postgres_heartbeat"
#define DTS_DDL_SCHEMA			"public"
#define DTS_DDL_TABLE			"dts_ddl_command"

/* Longest task name: "dts_sync_" + name must fit a slot name (63 bytes) */
#define DTS_TASK_NAME_MAX		40

/* DML operations a table rule lets through (bitmask) */
#define DTS_DML_INSERT		0x01
#define DTS_DML_UPDATE		0x02
#define DTS_DML_DELETE		0x04
#define DTS_DML_TRUNCATE	0x08
#define DTS_DML_ALL			0x0F

/* One column of a table rule: its source name and its name at the sink. */
typedef struct DtsColumnRule
{
	char	   *name;
	char	   *new_name;		/* NULL = same name */
} DtsColumnRule;

/*
 * One selected object: a whole schema (table == NULL) or one table, with
 * its mapping, column selection, row filter and DML operations.
 */
typedef struct DtsTableRule
{
	char	   *schema;
	char	   *table;			/* NULL = every table of the schema */
	char	   *new_schema;		/* NULL = same */
	char	   *new_table;		/* NULL = same */
	DtsColumnRule *columns;		/* NULL = every column */
	int			ncolumns;
	char	   *where;			/* SQL boolean expression, NULL = all rows */
	unsigned	dml;			/* DTS_DML_* */
} DtsTableRule;

typedef enum DtsSinkKind
{
	DTS_SINK_FILE = 0,
	DTS_SINK_KAFKA,
	DTS_SINK_PG,
	DTS_SINK_MAXCOMPUTE
} DtsSinkKind;

/* The phases of a task, run in this order (DESIGN.md 1) */
typedef enum DtsSyncPhase
{
	DTS_SYNC_SCHEMA = 0,
	DTS_SYNC_FULL,
	DTS_SYNC_INCREMENTAL
} DtsSyncPhase;

#define DTS_SYNC_MAX_PHASES 3

/*
 * A boolean setting the task file may leave out: DTS_SWITCH_UNSET (0, what
 * dts_task_init() leaves) lets the phase's default or its measurement knob
 * decide.
 */
typedef enum DtsSwitch
{
	DTS_SWITCH_UNSET = 0,
	DTS_SWITCH_OFF,
	DTS_SWITCH_ON
} DtsSwitch;

/*
 * Every string of a DtsTask is malloc'd and owned by the task: to override
 * one from the command line, free() it and store a malloc'd copy.
 */
typedef struct DtsTask
{
	char	   *name;			/* task name; slot defaults to dts_sync_<name> */
	char	   *source_conninfo;	/* libpq conninfo (may hold a password:
									 * never print it) */
	char	   *slot;			/* NULL = dts_sync_<name>, which
								 * dts_task_finish() fills in */

	/* which objects: whole database, or the rules (schemas and tables) */
	bool		whole_database;
	DtsTableRule *rules;
	int			nrules;

	/* sink */
	DtsSinkKind sink;
	char	   *file_path;		/* file sink: path, "-" = stdout */
	int			fsync_interval_ms;	/* file sink: 0 = fsync at every flush */
	bool		begin_commit_lines; /* file sink: write BEGIN/COMMIT lines */
	char	   *sink_json;		/* the whole "sink" object as compact JSON
								 * text, NULL if the file had none: the
								 * kafka, pg and maxcompute sinks check
								 * their own keys in it when they open */

	/* timing */
	int			heartbeat_interval_s;	/* default 5; 0 = no heartbeat */
	int			status_interval_ms;		/* feedback interval, default 10 s */
	int			retry_connect_minutes;	/* default 720 */
	int			retry_other_minutes;	/* default 10 */
	bool		no_retry;		/* -n */

	/* throttling, 0 = unlimited */
	double		max_rows_per_s;
	double		max_mb_per_s;

	/*
	 * "parallel": destination connections of the full sync's copy and of
	 * post-data's index builds; 0 = not set (the defaults of full_sync.h
	 * and schema_sync.h, or PG_DTS_FULL_SYNC_WORKERS / PG_DTS_POST_DATA_JOBS)
	 */
	int			full_sync_workers;
	int			post_data_jobs;

	/*
	 * "parallel" too: build each table's indexes as soon as it is copied
	 * (schema_sync.h), and copy the tables pre-data created with TRUNCATE
	 * + COPY ... FREEZE (full_sync.h); unset = on, unless
	 * PG_DTS_NO_EARLY_INDEXES / PG_DTS_FULL_SYNC_NO_FREEZE turn it off
	 */
	DtsSwitch	early_indexes;
	DtsSwitch	freeze;
	DtsSwitch	chunked_copy;

	/* phases, in order; default just DTS_SYNC_INCREMENTAL */
	DtsSyncPhase sync[DTS_SYNC_MAX_PHASES];
	int			nsync;
} DtsTask;

/* Sets every field to its default. */
extern void dts_task_init(DtsTask *task);

/*
 * Reads a task file into *task (over the defaults).  Returns 0, or -1 with
 * a message in err that names the JSON path and what was expected, e.g.
 * "objects.tables[2].dml: expected an array of \"insert\", \"update\",
 * \"delete\", \"truncate\"".  Nothing connects before this succeeds.
 *
 * On success every field of *task is replaced (what the file leaves out
 * gets its default; the old strings are freed), so apply command-line
 * options after loading.  On failure *task is unchanged.  The file may
 * leave out "source" (-d gives it): dts_task_finish() checks that.
 */
extern int	dts_task_load_file(DtsTask *task, const char *path,
							   char *err, size_t errlen);
extern int	dts_task_load_string(DtsTask *task, const char *json,
								 char *err, size_t errlen);

/*
 * Completes a task once the task file and the command line are merged:
 * derives the slot from the name (dts_sync_<name>) when none was given,
 * sets file_path to "-" when unset, and checks that a conninfo and a valid
 * slot name are there.  Returns 0, or -1 with a message in err that says
 * which option or key to give.
 */
extern int	dts_task_finish(DtsTask *task, char *err, size_t errlen);

/* Does the task run this phase? */
extern bool dts_task_has_phase(const DtsTask *task, DtsSyncPhase phase);

/* "file", "kafka", "pg", "maxcompute" */
extern const char *dts_sink_kind_name(DtsSinkKind kind);

/*
 * A copy of a conninfo (keyword/value or URI) fit for printing: every
 * keyword/value pair that is set, except the password, as keyword/value
 * text.  Returns a malloc'd string the caller frees, or NULL when the
 * conninfo does not parse or memory runs out.
 */
extern char *dts_conninfo_redact(const char *conninfo);

/*
 * Does the task select schema.table?  Returns its rule (owned by the
 * task), or NULL.  A table rule wins over its schema's rule.  For a
 * whole-database task every table is selected and the answer is one
 * static rule with schema and table NULL, no mapping and every DML kind.
 */
extern const DtsTableRule *dts_task_find_rule(const DtsTask *task,
											  const char *schema,
											  const char *table);

/*
 * The plugin options that make the server do the task's filtering
 * (include_tables, table_rules): appended as "name", "value" pairs to
 * *names / *values (malloc'd arrays the caller frees with
 * dts_task_free_options).  Returns the number of options (0 for a
 * whole-database task), or -1 when memory runs out (nothing to free).
 * include_tables lists the selected schemas and tables plus the heartbeat
 * and DDL tables; table_rules, given only when some rule has a filter, DML
 * kinds or columns, lists every rule (the plugin publishes only tables
 * with a rule once it is given).  docs/task.md shows the values.
 */
extern int	dts_task_plugin_options(const DtsTask *task, char ***names,
									char ***values);
extern void dts_task_free_options(char **names, char **values, int n);

/* Frees every string and rule of the task and resets it to the defaults. */
extern void dts_task_free(DtsTask *task);

#endif							/* PG_DTS_SHIP_TASK_H */

/*-------------------------------------------------------------------------
 *
 * main.c
 *	  pg_dts_ship: ships the changes of a pg_dts logical replication slot
 *	  to a sink, like pg_recvlogical with the pg_dts plugin, plus a DTS
 *	  task's heartbeat, retry windows and precheck.
 *
 * This file reads the command line and the task file, installs the signal
 * handlers and drives the actions: --drop-slot, --create-slot, --precheck
 * and --start (the streaming loop with its retries).  The state lives in
 * a Ship struct; the only file-level variables are the signal flags.
 *
 * shipper/main.c
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

#include "formats/record.h"
#include "heartbeat.h"
#include "log.h"
#include "pgtask.h"
#include "precheck.h"
#include "retry.h"
#include "sink.h"
#include "source.h"
#include "task.h"

#ifndef PG_DTS_VERSION
#define PG_DTS_VERSION "1.0"
#endif

#define PROGNAME			"pg_dts_ship"
#define SLOT_PREFIX			"dts_sync_"
#define SLOT_NAME_MAX		63	/* NAMEDATALEN - 1 */
#define HEARTBEAT_TABLE		"public.dts_postgres_heartbeat"

#define EXIT_OK				0
#define EXIT_ERROR			1

/* Set by the signal handlers, read by the loops: see source.h. */
static DtsSignalFlags signal_flags;

/* What the command line asked for. */
typedef struct ShipOptions
{
	DtsConnParams conn;
	const char *slot;
	bool		create_slot;
	bool		if_not_exists;
	bool		drop_slot;
	bool		start;
	bool		precheck;
	bool		verify;			/* --verify: compare source and destination */
	bool		sync_sequences; /* --sync-sequences */
	uint64_t	startpos;
	uint64_t	endpos;
	const char *file;
	int			fsync_interval_ms;	/* -1 = from the task */
	int			status_interval_ms; /* -1 = from the task */
	DtsPluginOptions plugin_options;	/* -o */
	int			verbose;
	bool		no_loop;
	const char *task_file;
	const char *task_name;
	bool		begin_commit_lines;
} ShipOptions;

/* Everything one run owns. */
typedef struct Ship
{
	ShipOptions opts;
	DtsTask		task;
	char	   *slot;			/* the slot name in use */
	DtsPluginOptions plugin_options;	/* for START_REPLICATION */
	DtsSink		sink;
	DtsPgSinkConfig pg;			/* the pg sink's settings (sink "pg") */
	DtsKafkaSinkConfig kafka;	/* the kafka sink's settings (sink "kafka") */
	char	   *source_encoding;	/* server_encoding, read by the precheck */
	char	   *source_database;	/* current_database(), read by the precheck */
	char	   *source_version; /* server_version, read by the precheck */
	DtsRouter	router;		/* name mapping of the task */
	DtsHeartbeat heartbeat;
	DtsRetry	retry;
	DtsSource	source;
} Ship;

/* ----------------------------------------------------------------
 *		Signals: the handlers only set flags
 * ----------------------------------------------------------------
 */

static void
handle_stop(int signo)
{
	(void) signo;
	signal_flags.stop = 1;
}

static void
handle_reopen(int signo)
{
	(void) signo;
	signal_flags.reopen = 1;
}

static void
install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: select() must wake up */
	sa.sa_handler = handle_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = handle_reopen;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);	/* EPIPE is reported as an error */
}

/* ----------------------------------------------------------------
 *		Command line
 * ----------------------------------------------------------------
 */

static void
usage(void)
{
	printf("%s ships the changes of a pg_dts logical replication slot to a sink\n"
		   "(by default JSON lines to a file), as a pg_dts task.\n\n", PROGNAME);
	printf("Usage:\n  %s [OPTION]...\n", PROGNAME);
	printf("\nAction to be performed:\n");
	printf("      --create-slot      create a new replication slot (plugin pg_dts)\n");
	printf("      --drop-slot        drop the replication slot\n");
	printf("      --start            start streaming in a replication slot\n");
	printf("      --precheck         check the source for the task and exit\n");
	printf("                         (also done before --start)\n");
	printf("      --verify           compare every table of the task between source\n"
		   "                         and destination (pg sink); exit 1 on a difference\n");
	printf("      --sync-sequences   set the destination's sequences past the source's\n"
		   "                         (pg sink; for the switchover)\n");
	printf("\nOptions:\n");
	printf("  -E, --endpos=LSN       exit after receiving the specified LSN\n");
	printf("  -f, --file=FILE        receive log into this file, - for stdout\n");
	printf("  -F, --fsync-interval=SECS\n"
		   "                         time between fsyncs to the output file;\n"
		   "                         0 fsyncs at every commit (default: 10)\n");
	printf("      --if-not-exists    do not error if slot already exists when creating a slot\n");
	printf("  -I, --startpos=LSN     where in an existing slot should the streaming start\n");
	printf("  -n, --no-loop          do not retry on connection loss or errors\n");
	printf("  -o, --option=NAME=VALUE\n"
		   "                         pass option NAME with value VALUE to the pg_dts plugin\n");
	printf("  -s, --status-interval=SECS\n"
		   "                         time between status packets sent to server (default: 10)\n");
	printf("  -S, --slot=SLOTNAME    name of the logical replication slot\n"
		   "                         (default: dts_sync_TASKNAME)\n");
	printf("      --task=FILE.json   task file (sink, objects, heartbeat, retry, ...)\n");
	printf("      --task-name=NAME   task name when there is no task file (default: default)\n");
	printf("      --begin-commit-lines\n"
		   "                         also write a line per BEGIN and COMMIT\n");
	printf("  -v, --verbose          output verbose messages (twice: debug)\n");
	printf("  -V, --version          output version information, then exit\n");
	printf("  -?, --help             show this help, then exit\n");
	printf("\nConnection options:\n");
	printf("  -d, --dbname=CONNSTR   database to connect to (conninfo string or URI)\n");
	printf("  -h, --host=HOSTNAME    database server host or socket directory\n");
	printf("  -p, --port=PORT        database server port number\n");
	printf("  -U, --username=NAME    connect as specified database user\n");
	printf("  -w, --no-password      never prompt for password\n");
	printf("  -W, --password         force password prompt (should happen automatically)\n");
	printf("\nSIGINT/SIGTERM: flush, confirm and exit 0.  SIGHUP: reopen the output file.\n");
	printf("See docs/shipper.md for the JSON format, durability and the heartbeat.\n");
}

static void
try_help(void)
{
	dts_log_hint("Try \"%s --help\" for more information.", PROGNAME);
}

/* Parses a non-negative number of seconds into milliseconds. */
static bool
parse_seconds(const char *arg, int *ms)
{
	char	   *end;
	double		secs = strtod(arg, &end);

	if (end == arg || *end != '\0' || secs < 0 || secs > 2147483.0)
		return false;
	*ms = (int) (secs * 1000);
	return true;
}

static bool
add_plugin_option(ShipOptions *opts, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char	   *name;

	if (eq == NULL || eq == arg)
		return false;
	name = dts_strdup(arg);
	name[eq - arg] = '\0';
	dts_plugin_options_set(&opts->plugin_options, name, eq + 1);
	free(name);
	return true;
}

enum
{
	OPT_CREATE_SLOT = 256,
	OPT_DROP_SLOT,
	OPT_START,
	OPT_IF_NOT_EXISTS,
	OPT_PRECHECK,
	OPT_TASK,
	OPT_TASK_NAME,
	OPT_BEGIN_COMMIT_LINES,
	OPT_VERIFY,
	OPT_SYNC_SEQUENCES
};

/* Returns false (after saying why) when the command line is wrong. */
static bool
parse_command_line(ShipOptions *opts, int argc, char **argv)
{
	static const struct option long_options[] = {
		{"file", required_argument, NULL, 'f'},
		{"fsync-interval", required_argument, NULL, 'F'},
		{"no-loop", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, '?'},
		{"dbname", required_argument, NULL, 'd'},
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"username", required_argument, NULL, 'U'},
		{"no-password", no_argument, NULL, 'w'},
		{"password", no_argument, NULL, 'W'},
		{"startpos", required_argument, NULL, 'I'},
		{"endpos", required_argument, NULL, 'E'},
		{"option", required_argument, NULL, 'o'},
		{"status-interval", required_argument, NULL, 's'},
		{"slot", required_argument, NULL, 'S'},
		{"create-slot", no_argument, NULL, OPT_CREATE_SLOT},
		{"drop-slot", no_argument, NULL, OPT_DROP_SLOT},
		{"start", no_argument, NULL, OPT_START},
		{"if-not-exists", no_argument, NULL, OPT_IF_NOT_EXISTS},
		{"precheck", no_argument, NULL, OPT_PRECHECK},
		{"task", required_argument, NULL, OPT_TASK},
		{"task-name", required_argument, NULL, OPT_TASK_NAME},
		{"begin-commit-lines", no_argument, NULL, OPT_BEGIN_COMMIT_LINES},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"sync-sequences", no_argument, NULL, OPT_SYNC_SEQUENCES},
		{NULL, 0, NULL, 0}
	};
	int			c;

	opts->fsync_interval_ms = -1;
	opts->status_interval_ms = -1;
	while ((c = getopt_long(argc, argv, "E:f:F:nvVd:h:p:U:wWI:o:s:S:?",
							long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'f':
				opts->file = optarg;
				break;
			case 'F':
				if (!parse_seconds(optarg, &opts->fsync_interval_ms))
				{
					dts_log_error("invalid fsync interval \"%s\"", optarg);
					return false;
				}
				break;
			case 'n':
				opts->no_loop = true;
				break;
			case 'v':
				opts->verbose++;
				break;
			case 'd':
				opts->conn.conninfo = optarg;
				break;
			case 'h':
				opts->conn.host = optarg;
				break;
			case 'p':
				if (atoi(optarg) <= 0)
				{
					dts_log_error("invalid port number \"%s\"", optarg);
					return false;
				}
				opts->conn.port = optarg;
				break;
			case 'U':
				opts->conn.user = optarg;
				break;
			case 'w':
				opts->conn.prompt = -1;
				break;
			case 'W':
				opts->conn.prompt = 1;
				break;
			case 'I':
				if (!dts_lsn_parse(optarg, &opts->startpos))
				{
					dts_log_error("could not parse start position \"%s\"", optarg);
					return false;
				}
				break;
			case 'E':
				if (!dts_lsn_parse(optarg, &opts->endpos))
				{
					dts_log_error("could not parse end position \"%s\"", optarg);
					return false;
				}
				break;
			case 'o':
				if (!add_plugin_option(opts, optarg))
				{
					dts_log_error("invalid plugin option \"%s\"", optarg);
					dts_log_hint("Write plugin options as NAME=VALUE, e.g. -o include_tables=public.orders.");
					return false;
				}
				break;
			case 's':
				if (!parse_seconds(optarg, &opts->status_interval_ms))
				{
					dts_log_error("invalid status interval \"%s\"", optarg);
					return false;
				}
				break;
			case 'S':
				opts->slot = optarg;
				break;
			case OPT_CREATE_SLOT:
				opts->create_slot = true;
				break;
			case OPT_DROP_SLOT:
				opts->drop_slot = true;
				break;
			case OPT_START:
				opts->start = true;
				break;
			case OPT_IF_NOT_EXISTS:
				opts->if_not_exists = true;
				break;
			case OPT_PRECHECK:
				opts->precheck = true;
				break;
			case OPT_VERIFY:
				opts->verify = true;
				break;
			case OPT_SYNC_SEQUENCES:
				opts->sync_sequences = true;
				break;
			case OPT_TASK:
				opts->task_file = optarg;
				break;
			case OPT_TASK_NAME:
				opts->task_name = optarg;
				break;
			case OPT_BEGIN_COMMIT_LINES:
				opts->begin_commit_lines = true;
				break;
			default:
				/* getopt_long already complained */
				return false;
		}
	}
	if (optind < argc)
	{
		dts_log_error("too many command-line arguments (first is \"%s\")",
					  argv[optind]);
		return false;
	}
	return true;
}

/* The combinations pg_recvlogical refuses, refused the same way. */
static bool
check_actions(const ShipOptions *opts)
{
	if (!opts->create_slot && !opts->drop_slot && !opts->start &&
		!opts->precheck && !opts->verify && !opts->sync_sequences)
	{
		dts_log_error("at least one action needs to be specified");
		return false;
	}
	if (opts->drop_slot && (opts->create_slot || opts->start))
	{
		dts_log_error("cannot use --create-slot or --start together with --drop-slot");
		return false;
	}
	if (opts->startpos && (opts->create_slot || opts->drop_slot))
	{
		dts_log_error("cannot use --create-slot or --drop-slot together with --startpos");
		return false;
	}
	if (opts->endpos && !opts->start)
	{
		dts_log_error("--endpos may only be specified with --start");
		return false;
	}
	if (opts->if_not_exists && !opts->create_slot)
	{
		dts_log_error("--if-not-exists may only be specified with --create-slot");
		return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 *		The task: task file, then the command line on top
 * ----------------------------------------------------------------
 */

static void
replace_string(char **field, const char *value)
{
	free(*field);
	*field = dts_strdup(value);
}

static bool
load_task(Ship *ship)
{
	ShipOptions *opts = &ship->opts;
	DtsTask    *task = &ship->task;
	char		err[512];

	dts_task_init(task);
	if (opts->task_file &&
		dts_task_load_file(task, opts->task_file, err, sizeof(err)) != 0)
	{
		dts_log_error("%s", err);	/* names the file and the JSON path */
		dts_log_hint("docs/task.md describes the task file.");
		return false;
	}
	if (opts->task_name)
		replace_string(&task->name, opts->task_name);
	else if (task->name == NULL)
		replace_string(&task->name, "default");
	if (opts->conn.conninfo)
		replace_string(&task->source_conninfo, opts->conn.conninfo);
	if (opts->slot)
		replace_string(&task->slot, opts->slot);
	if (opts->file)
		replace_string(&task->file_path, opts->file);
	if (opts->fsync_interval_ms >= 0)
		task->fsync_interval_ms = opts->fsync_interval_ms;
	if (opts->status_interval_ms >= 0)
		task->status_interval_ms = opts->status_interval_ms;
	if (opts->begin_commit_lines)
		task->begin_commit_lines = true;
	if (opts->no_loop)
		task->no_retry = true;
	opts->conn.conninfo = task->source_conninfo;
	return true;
}

/* The slot: --slot, the task's, or dts_sync_<task>; [a-z0-9_]{1,63}. */
static bool
choose_slot(Ship *ship)
{
	const DtsTask *task = &ship->task;
	size_t		len;

	if (task->slot && task->slot[0])
		ship->slot = dts_strdup(task->slot);
	else
	{
		len = strlen(SLOT_PREFIX) + strlen(task->name) + 1;
		ship->slot = dts_realloc(NULL, len);
		snprintf(ship->slot, len, "%s%s", SLOT_PREFIX, task->name);
	}
	len = strspn(ship->slot, "abcdefghijklmnopqrstuvwxyz0123456789_");
	if (ship->slot[0] == '\0' || ship->slot[len] != '\0' ||
		strlen(ship->slot) > SLOT_NAME_MAX)
	{
		dts_log_error("replication slot name \"%s\" is invalid", ship->slot);
		dts_log_hint("Slot names have 1 to %d lowercase letters, digits and underscores; choose one with --slot or a matching --task-name.",
					 SLOT_NAME_MAX);
		return false;
	}
	/* the sync phases and the pg sink read the slot from the task */
	if (task->slot == NULL || strcmp(task->slot, ship->slot) != 0)
	{
		free(ship->task.slot);
		ship->task.slot = dts_strdup(ship->slot);
	}
	return true;
}

/*
 * The plugin options of the stream: text values, streaming, the task's
 * filters, then -o on top; the heartbeat table is always let through.
 */
static void
build_plugin_options(Ship *ship)
{
	DtsPluginOptions *po = &ship->plugin_options;
	const DtsPluginOptions *cli = &ship->opts.plugin_options;
	char	  **names;
	char	  **values;
	int			n;
	const char *include;

	dts_plugin_options_set(po, "proto_version", "1");
	/* the pg sink passes binary values straight to binary parameters */
	dts_plugin_options_set(po, "format",
						   ship->task.sink == DTS_SINK_PG ? "binary" : "text");
	/* the Kafka formats render these types from binary themselves */
	if (ship->task.sink == DTS_SINK_KAFKA)
		dts_plugin_options_set(po, "binary_types", DTS_KFMT_BINARY_TYPES);
	dts_plugin_options_set(po, "streaming", "on");
	n = dts_task_plugin_options(&ship->task, &names, &values);
	if (n < 0)
	{
		dts_log_error("out of memory building the plugin options");
		abort();
	}
	for (int i = 0; i < n; i++)
		dts_plugin_options_set(po, names[i], values[i]);
	dts_task_free_options(names, values, n);
	for (int i = 0; i < cli->n; i++)
		dts_plugin_options_set(po, cli->names[i], cli->values[i]);

	include = dts_plugin_options_get(po, "include_tables");
	if (ship->task.heartbeat_interval_s > 0 && include &&
		strstr(include, "dts_postgres_heartbeat") == NULL)
	{
		size_t		len = strlen(include) + sizeof(HEARTBEAT_TABLE) + 2;
		char	   *with = dts_realloc(NULL, len);

		snprintf(with, len, "%s,%s", include, HEARTBEAT_TABLE);
		dts_plugin_options_set(po, "include_tables", with);
		free(with);
	}
}

/* ----------------------------------------------------------------
 *		Actions
 * ----------------------------------------------------------------
 */

/* --create-slot or --drop-slot, on a replication connection. */
static int
run_slot_command(Ship *ship, bool create)
{
	DtsError	err = {0};
	PGconn	   *conn = dts_connect(&ship->opts.conn, true, 0, &err);
	int			rc;

	if (conn == NULL)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		return EXIT_ERROR;
	}
	if (create)
		rc = dts_source_create_slot(conn, ship->slot,
									ship->opts.if_not_exists, &err);
	else
		rc = dts_source_drop_slot(conn, ship->slot, &err);
	PQfinish(conn);
	if (rc != 0)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/*
 * The task's precheck, on a normal connection; 0 when it passed.  Its
 * report goes to stdout for --precheck alone, to stderr before --start
 * (where stdout may carry the JSON lines).
 */
static int
run_precheck(Ship *ship)
{
	DtsError	err = {0};
	PGconn	   *conn = dts_connect(&ship->opts.conn, false, 0, &err);
	int			failures;

	if (conn == NULL)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		return EXIT_ERROR;
	}
	failures = ship->opts.start ?
		dts_precheck_run_to(conn, &ship->task, stderr) :
		dts_precheck_run(conn, &ship->task);
	if (PQparameterStatus(conn, "server_encoding"))
		ship->source_encoding = dts_strdup(PQparameterStatus(conn,
															 "server_encoding"));
	ship->source_database = dts_strdup(PQdb(conn));
	if (PQparameterStatus(conn, "server_version"))
		ship->source_version = dts_strdup(PQparameterStatus(conn,
															"server_version"));
	PQfinish(conn);
	if (failures > 0)
	{
		dts_log_error("precheck of task \"%s\" failed: %d check%s did not pass",
					  ship->task.name, failures, failures == 1 ? "" : "s");
		dts_log_hint("Fix what the checks above report, then run %s --precheck again.",
					 PROGNAME);
		return EXIT_ERROR;
	}
	dts_log_info("precheck of task \"%s\" passed", ship->task.name);
	return EXIT_OK;
}

/*
 * Checked before anything connects: can --start write anywhere, and do
 * --verify and --sync-sequences have a destination?  Reads the pg sink's
 * settings from the task file.
 */
static bool
check_sink_config(Ship *ship)
{
	const DtsTask *task = &ship->task;
	bool		needs_pg = ship->opts.verify || ship->opts.sync_sequences;
	char		err[512];

	if (needs_pg && task->sink != DTS_SINK_PG)
	{
		dts_log_error("--verify and --sync-sequences need a task whose sink is \"pg\"");
		dts_log_hint("Give --task with \"sink\": {\"type\": \"pg\", \"conninfo\": ...}.");
		return false;
	}
	if (task->sink == DTS_SINK_PG)
	{
		if (dts_pg_sink_config_from_json(task->sink_json, &ship->pg, err,
										 sizeof(err)) != 0)
		{
			dts_log_error("%s: %s", ship->opts.task_file ?
						  ship->opts.task_file : "task", err);
			dts_log_hint("docs/pg-sink.md describes the pg sink's settings.");
			return false;
		}
		return true;
	}
	if (task->sink == DTS_SINK_KAFKA)
	{
		if (dts_kafka_sink_config_from_json(&ship->kafka, task->sink_json,
											err, sizeof(err)) != 0)
		{
			dts_log_error("%s: %s", ship->opts.task_file ?
						  ship->opts.task_file : "task", err);
			dts_log_hint("docs/kafka.md (section Sink) describes the kafka sink's settings.");
			return false;
		}
		return true;
	}
	if (!ship->opts.start)
		return true;
	if (task->sink != DTS_SINK_FILE)
	{
		dts_log_error("task \"%s\" uses a sink this pg_dts_ship does not have yet",
					  task->name);
		dts_log_hint("Use the file sink (-f FILE) or the pg sink with this version.");
		return false;
	}
	if (task->file_path == NULL)
	{
		dts_log_error("no target file specified");
		dts_log_hint("Use -f FILE, or -f - for standard output.");
		return false;
	}
	return true;
}

static bool
open_sink(Ship *ship)
{
	DtsTask    *task = &ship->task;
	DtsError	err = {0};

	if (task->sink == DTS_SINK_PG)
	{
		ship->pg.task_name = task->name;
		ship->pg.task = task;
		ship->pg.source_encoding = ship->source_encoding;
		dts_pg_sink_init(&ship->sink, &ship->pg);
	}
	else if (task->sink == DTS_SINK_KAFKA)
	{
		ship->kafka.database = ship->source_database;
		ship->kafka.source_version = ship->source_version;
		ship->kafka.task = task;
		dts_kafka_sink_init(&ship->sink, &ship->kafka);
	}
	else
	{
		DtsFileSinkConfig config;

		config.path = task->file_path;
		config.fsync_interval_ms = task->fsync_interval_ms;
		config.begin_commit_lines = task->begin_commit_lines;
		dts_file_sink_init(&ship->sink, &config);
	}
	if (ship->sink.ops->open(&ship->sink, &err) != 0)
	{
		dts_error_log(DTS_LOG_ERROR, &err);
		ship->sink.ops->close(&ship->sink);
		ship->sink.ops = NULL;
		return false;
	}
	return true;
}

/* Makes what the sink holds durable before exiting on an error. */
static void
close_sink(Ship *ship)
{
	DtsError	err = {0};
	int64_t		next;

	if (ship->sink.ops == NULL)
		return;
	if (ship->sink.ops->rollback(&ship->sink, &err) != 0 ||
		ship->sink.ops->flush(&ship->sink, true, dts_now_us(), &next,
							  &err) != 0)
		dts_error_log(DTS_LOG_WARNING, &err);
	ship->sink.ops->close(&ship->sink);
	ship->sink.ops = NULL;
}

/* --start: stream until a signal, -E, or an error past its window. */
static int
run_stream(Ship *ship)
{
	DtsSource  *src = &ship->source;
	DtsTask    *task = &ship->task;
	DtsError	err = {0};
	int			rc = EXIT_ERROR;

	if (!open_sink(ship))
		return EXIT_ERROR;
	build_plugin_options(ship);
	dts_heartbeat_init(&ship->heartbeat, &ship->opts.conn, ship->slot,
					   task->name, task->heartbeat_interval_s);
	dts_retry_init(&ship->retry, task);

	dts_source_init(src);
	src->params = &ship->opts.conn;
	src->slot = ship->slot;
	src->options = &ship->plugin_options;
	src->startpos = ship->opts.startpos;
	src->endpos = ship->opts.endpos;
	src->status_interval_ms = task->status_interval_ms;
	src->sink = &ship->sink;
	dts_router_init(&ship->router, task);
	src->router = &ship->router;
	src->heartbeat = task->heartbeat_interval_s > 0 ? &ship->heartbeat : NULL;
	src->retry = &ship->retry;
	src->signals = &signal_flags;

	for (;;)
	{
		DtsStreamResult result = dts_source_stream(src, &err);

		if (result != DTS_STREAM_ERROR)
		{
			rc = EXIT_OK;
			break;
		}
		if (!dts_retry_wait(&ship->retry, &err, &signal_flags.stop))
		{
			rc = signal_flags.stop ? EXIT_OK : EXIT_ERROR;
			break;
		}
		dts_error_clear(&err);
	}

	dts_source_free(src);
	dts_router_free(&ship->router);
	dts_heartbeat_close(&ship->heartbeat);
	close_sink(ship);
	return rc;
}

/* Does --start begin with the schema or full phase of a pg task? */
static bool
initial_sync_wanted(const Ship *ship)
{
	return ship->task.sink == DTS_SINK_PG &&
		(dts_task_has_phase(&ship->task, DTS_SYNC_SCHEMA) ||
		 dts_task_has_phase(&ship->task, DTS_SYNC_FULL));
}

static void
ship_free(Ship *ship)
{
	dts_plugin_options_free(&ship->opts.plugin_options);
	dts_plugin_options_free(&ship->plugin_options);
	if (ship->opts.conn.password)
	{
		memset(ship->opts.conn.password, 0, strlen(ship->opts.conn.password));
		free(ship->opts.conn.password);
	}
	free(ship->slot);
	free(ship->source_encoding);
	free(ship->source_database);
	free(ship->source_version);
	dts_kafka_sink_config_free(&ship->kafka);
	dts_pg_sink_config_free(&ship->pg);
	dts_task_free(&ship->task);
}

int
main(int argc, char **argv)
{
	Ship		ship;
	int			rc = EXIT_OK;

	memset(&ship, 0, sizeof(ship));
	dts_log_init(PROGNAME, 0);
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
					 strcmp(argv[1], "-?") == 0))
	{
		usage();
		exit(EXIT_OK);
	}
	if (argc > 1 && (strcmp(argv[1], "--version") == 0 ||
					 strcmp(argv[1], "-V") == 0))
	{
		printf("%s (pg_dts) %s\n", PROGNAME, PG_DTS_VERSION);
		exit(EXIT_OK);
	}
	if (!parse_command_line(&ship.opts, argc, argv) ||
		!check_actions(&ship.opts))
	{
		try_help();
		exit(EXIT_ERROR);
	}
	dts_log_init(PROGNAME, ship.opts.verbose);
	if (!load_task(&ship) || !choose_slot(&ship) || !check_sink_config(&ship))
	{
		ship_free(&ship);
		exit(EXIT_ERROR);
	}
	install_signal_handlers();

	if (ship.opts.drop_slot)
		rc = run_slot_command(&ship, false);
	/* the precheck first: a failing task must not leave a slot behind */
	if (rc == EXIT_OK && (ship.opts.precheck || ship.opts.start))
		rc = run_precheck(&ship);
	if (rc == EXIT_OK && ship.opts.start && initial_sync_wanted(&ship))
	{
		/* creates the slot itself, with the snapshot the copy reads */
		rc = dts_pgtask_initial_sync(&ship.opts.conn, &ship.task,
									 ship.pg.conninfo, &signal_flags.stop);
	}
	else if (rc == EXIT_OK && ship.opts.create_slot)
		rc = run_slot_command(&ship, true);
	if (rc == EXIT_OK && ship.opts.start && !signal_flags.stop &&
		dts_task_has_phase(&ship.task, DTS_SYNC_INCREMENTAL))
		rc = run_stream(&ship);
	if (rc == EXIT_OK && ship.opts.sync_sequences)
		rc = dts_pgtask_sync_sequences(&ship.opts.conn, &ship.task,
									   ship.pg.conninfo);
	if (rc == EXIT_OK && ship.opts.verify)
		rc = dts_pgtask_verify(&ship.opts.conn, &ship.task, ship.pg.conninfo);

	ship_free(&ship);
	exit(rc);
}

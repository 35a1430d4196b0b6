/*-------------------------------------------------------------------------
 *
 * precheck.c
 *	  The task precheck (DTS's "precheck"): over a normal connection to the
 *	  source, checks what a task needs before its slot is created or
 *	  streamed, and prints one line per item with a fix for each warning
 *	  and failure.
 *
 * Items, in order: server version, wal_level, output_plugin_libraries,
 * the pg_dts extension, replication slots (free ones, and the task's own),
 * WAL senders, the role (REPLICATION, heartbeat privileges), the selected
 * tables (existence, kind, logging, replica identity, SELECT privilege,
 * column lists), the filters (EXPLAIN in a read-only transaction),
 * max_slot_wal_keep_size and wal_sender_timeout.
 *
 * Every name reaches the server as a query parameter; the only text put
 * into SQL is a filter expression, which is the point of trying it, and
 * it runs through the extended protocol (one statement only) inside a
 * read-only transaction that is rolled back.
 *
 * shipper/precheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "precheck.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sqlstate.h"

/* List at most this many tables of one kind of problem */
#define MAX_TABLES_LISTED	20

typedef enum CheckStatus
{
	CHECK_PASS,
	CHECK_INFO,
	CHECK_WARN,
	CHECK_FAIL
} CheckStatus;

static const char *const status_words[] = {"pass", "info", "warn", "fail"};

/* One selected table as the server knows it */
typedef struct SelTable
{
	char	   *schema;
	char	   *table;
	const DtsTableRule *rule;	/* the table's own rule, or NULL */
	unsigned	oid;
	char		relkind;		/* r, p, v, m, f */
	char		replident;		/* d, n, f, i */
	char		persistence;	/* p, u */
	bool		has_pk;
	bool		can_select;
	bool		can_use_schema;
} SelTable;

/* The state of one precheck run */
typedef struct Precheck
{
	PGconn	   *conn;
	const DtsTask *task;
	FILE	   *out;
	int			passes;
	int			warnings;
	int			failures;
	char	   *role;			/* current_user, malloc'd */
	SelTable   *tables;
	int			ntables;
	char		error[1024];	/* the last query's error message */
	char		sqlstate[6];	/* ... its SQLSTATE */
	int			position;		/* ... its position in the query, 0 = none */
} Precheck;

/* ----------------------------------------------------------------
 *		Output
 * ----------------------------------------------------------------
 */

/* Prints "<status>  <item>: <detail>" and counts it */
static void
report(Precheck *pc, CheckStatus st, const char *item, const char *fmt,...)
{
	va_list		ap;

	if (st == CHECK_FAIL)
		pc->failures++;
	else if (st == CHECK_WARN)
		pc->warnings++;
	else if (st == CHECK_PASS)
		pc->passes++;
	fprintf(pc->out, "%s  %s: ", status_words[st], item);
	va_start(ap, fmt);
	vfprintf(pc->out, fmt, ap);
	va_end(ap);
	fputc('\n', pc->out);
}

/* Prints "  fix: <what to do>" under a warn or fail line */
static void
fix(Precheck *pc, const char *fmt,...)
{
	va_list		ap;

	fputs("  fix: ", pc->out);
	va_start(ap, fmt);
	vfprintf(pc->out, fmt, ap);
	va_end(ap);
	fputc('\n', pc->out);
}

/* ----------------------------------------------------------------
 *		Queries and quoting
 * ----------------------------------------------------------------
 */

/*
 * Runs sql with text parameters.  Returns the result (the caller PQclear()s
 * it), or NULL with the server's message in pc->error.
 */
static PGresult *
run(Precheck *pc, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res;
	ExecStatusType st;
	const char *primary;
	const char *field;
	size_t		len;

	res = PQexecParams(pc->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	snprintf(pc->error, sizeof(pc->error), "%s",
			 primary ? primary : PQerrorMessage(pc->conn));
	len = strlen(pc->error);
	while (len > 0 && (pc->error[len - 1] == '\n' || pc->error[len - 1] == ' '))
		pc->error[--len] = '\0';
	field = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(pc->sqlstate, sizeof(pc->sqlstate), "%s", field ? field : "");
	field = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
	pc->position = field ? atoi(field) : 0;
	PQclear(res);
	return NULL;
}

/*
 * The first value of a one-parameter query, malloc'd; *isnull tells NULL
 * apart.  Returns NULL on error (message in pc->error) with *isnull false.
 */
static char *
fetch(Precheck *pc, const char *sql, const char *param, bool *isnull)
{
	PGresult   *res = run(pc, sql, param ? 1 : 0, &param);
	char	   *val = NULL;

	*isnull = false;
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
		*isnull = true;
	else if ((val = strdup(PQgetvalue(res, 0, 0))) == NULL)
		snprintf(pc->error, sizeof(pc->error), "out of memory");
	PQclear(res);
	return val;
}

/* A setting's value (malloc'd), NULL if unknown or unreadable */
static char *
setting(Precheck *pc, const char *name)
{
	bool		isnull;

	return fetch(pc, "SELECT pg_catalog.current_setting($1, true)", name,
				 &isnull);
}

/*
 * name as a quoted identifier for a fix line, into buf.  Uses libpq's
 * quoting; falls back to the bare name if libpq cannot (out of memory).
 */
static const char *
quote_ident(Precheck *pc, const char *name, char *buf, size_t len)
{
	char	   *q = PQescapeIdentifier(pc->conn, name, strlen(name));

	snprintf(buf, len, "%s", q ? q : name);
	PQfreemem(q);
	return buf;
}

/* "schema"."table", quoted, into buf (which holds at least 260 bytes) */
static const char *
quote_qualified(Precheck *pc, const char *schema, const char *table,
				char *buf, size_t len)
{
	char		s[140];
	char		t[140];

	snprintf(buf, len, "%s.%s", quote_ident(pc, schema, s, sizeof(s)),
			 quote_ident(pc, table, t, sizeof(t)));
	return buf;
}

/* Is s plain enough to follow a dot in a JSON path? */
static bool
plain_key(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			  (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* Appends .key or ["key"] to a JSON path in buf */
static void
path_append(char *buf, size_t len, const char *key)
{
	size_t		used = strlen(buf);

	if (plain_key(key))
	{
		snprintf(buf + used, len - used, ".%s", key);
		return;
	}
	if (used + 3 >= len)
		return;
	buf[used++] = '[';
	buf[used++] = '"';
	for (; *key && used + 3 < len; key++)
	{
		if ((*key == '"' || *key == '\\') && used + 4 < len)
			buf[used++] = '\\';
		buf[used++] = *key;
	}
	buf[used++] = '"';
	buf[used++] = ']';
	buf[used] = '\0';
}

/* The task file path of a table: objects.<schema>.tables.<table> */
static const char *
table_path(const char *schema, const char *table, char *buf, size_t len)
{
	snprintf(buf, len, "objects");
	path_append(buf, len, schema);
	if (table)
	{
		path_append(buf, len, "tables");
		path_append(buf, len, table);
	}
	return buf;
}

/* ----------------------------------------------------------------
 *		Server items
 * ----------------------------------------------------------------
 */

static void
check_server_version(Precheck *pc)
{
	int			version = PQserverVersion(pc->conn);
	const char *shown = PQparameterStatus(pc->conn, "server_version");

	if (version >= 150000)
		report(pc, CHECK_PASS, "server version", "PostgreSQL %s",
			   shown ? shown : "?");
	else
	{
		report(pc, CHECK_FAIL, "server version",
			   "PostgreSQL %s; pg_dts needs 15 or later",
			   shown ? shown : "?");
		fix(pc, "run the task against a PostgreSQL 15 (or later) server");
	}
}

static void
check_wal_level(Precheck *pc)
{
	char	   *level = setting(pc, "wal_level");

	if (level == NULL)
		report(pc, CHECK_FAIL, "wal_level", "could not read it: %s",
			   pc->error);
	else if (strcmp(level, "logical") == 0)
		report(pc, CHECK_PASS, "wal_level", "logical");
	else
	{
		report(pc, CHECK_FAIL, "wal_level",
			   "is \"%s\"; logical decoding needs \"logical\"", level);
		fix(pc, "ALTER SYSTEM SET wal_level = logical; then restart the server");
	}
	free(level);
}

/*
 * Reads the next element of a list setting as the server shows it
 * ("a, b, \"c d\"": elements separated by commas, double-quoted when
 * needed, "" for a quote) into buf.  Returns false at the end of the list.
 */
static bool
next_list_element(const char **pos, char *buf, size_t len)
{
	const char *p = *pos;
	size_t		n = 0;

	while (*p == ' ' || *p == ',')
		p++;
	if (*p == '\0')
		return false;
	if (*p == '"')
	{
		for (p++; *p && !(*p == '"' && p[1] != '"'); p++)
		{
			if (*p == '"')
				p++;			/* "" is one quote */
			if (n + 1 < len)
				buf[n++] = *p;
		}
		if (*p == '"')
			p++;
	}
	else
	{
		for (; *p && *p != ','; p++)
			if (n + 1 < len)
				buf[n++] = *p;
		while (n > 0 && buf[n - 1] == ' ')
			n--;
	}
	while (*p && *p != ',')
		p++;
	buf[n] = '\0';
	*pos = p;
	return true;
}

/* Is lib (or $libdir/lib, lib.so) an element of the list setting? */
static bool
list_has_library(const char *list, const char *lib)
{
	char		elem[1024];
	size_t		len = strlen(lib);

	while (next_list_element(&list, elem, sizeof(elem)))
	{
		const char *base = strrchr(elem, '/');

		base = base ? base + 1 : elem;
		if (strncmp(base, lib, len) == 0 &&
			(base[len] == '\0' || strcmp(base + len, ".so") == 0))
			return true;
	}
	return false;
}

/*
 * Prints the fix that adds lib to the list setting name: the current
 * elements and lib, each as a string literal.
 */
static void
fix_add_to_list(Precheck *pc, const char *name, const char *list,
				const char *lib, bool restart)
{
	char		elem[1024];
	const char *c;

	fprintf(pc->out, "  fix: ALTER SYSTEM SET %s = ", name);
	while (next_list_element(&list, elem, sizeof(elem)))
	{
		fputc('\'', pc->out);
		for (c = elem; *c; c++)
		{
			if (*c == '\'')
				fputc('\'', pc->out);
			fputc(*c, pc->out);
		}
		fputs("', ", pc->out);
	}
	fprintf(pc->out, "'%s'; %s\n", lib,
			restart ? "then restart the server" : "SELECT pg_reload_conf();");
}

/*
 * output_plugin_libraries (a setting of this PostgreSQL build): when it
 * exists, only the plugins it names may be used by a slot.
 */
static void
check_output_plugin_libraries(Precheck *pc)
{
	bool		isnull;
	char	   *value;
	char	   *context;
	bool		restart;

	value = fetch(pc,
				  "SELECT pg_catalog.current_setting('output_plugin_libraries', true)",
				  NULL, &isnull);
	if (value == NULL && !isnull)
	{
		report(pc, CHECK_WARN, "output_plugin_libraries",
			   "could not read it: %s", pc->error);
		fix(pc, "run the precheck as a role that can read server settings (e.g. a member of pg_read_all_settings)");
		return;
	}
	if (isnull)
	{
		report(pc, CHECK_PASS, "output_plugin_libraries",
			   "the server has no such setting: any output plugin may be used");
		return;
	}
	if (list_has_library(value, "pg_dts"))
	{
		report(pc, CHECK_PASS, "output_plugin_libraries", "'%s' has pg_dts",
			   value);
		free(value);
		return;
	}
	context = fetch(pc,
					"SELECT context FROM pg_catalog.pg_settings WHERE name = 'output_plugin_libraries'",
					NULL, &isnull);
	restart = context != NULL && strcmp(context, "postmaster") == 0;
	report(pc, CHECK_FAIL, "output_plugin_libraries",
		   "'%s' does not name pg_dts, so the server refuses it as a slot's plugin",
		   value);
	fix_add_to_list(pc, "output_plugin_libraries", value, "pg_dts", restart);
	free(context);
	free(value);
}

static void
check_extension(Precheck *pc)
{
	bool		isnull;
	char	   *version;

	version = fetch(pc,
					"SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_dts'",
					NULL, &isnull);
	if (version != NULL)
	{
		bool		none;
		char	   *avail = fetch(pc,
								  "SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'pg_dts'",
								  NULL, &none);

		if (avail != NULL && strcmp(avail, version) != 0)
		{
			report(pc, CHECK_WARN, "extension",
				   "pg_dts %s is installed, but the server's files are of %s: "
				   "what %s adds is missing (1.1: dts.copy_rows(), which makes "
				   "the full sync's copy cheaper on the source)",
				   version, avail, avail);
			fix(pc, "ALTER EXTENSION pg_dts UPDATE;");
		}
		else
			report(pc, CHECK_PASS, "extension", "pg_dts %s is installed",
				   version);
		free(avail);
	}
	else if (isnull)
	{
		bool		available;
		char	   *avail = fetch(pc,
								  "SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'pg_dts'",
								  NULL, &available);

		report(pc, CHECK_FAIL, "extension",
			   "pg_dts is not installed in database \"%s\"%s",
			   PQdb(pc->conn),
			   avail ? "" : " (and the server has no pg_dts extension files)");
		if (avail == NULL)
			fix(pc, "install pg_dts on the server (make install), then CREATE EXTENSION pg_dts;");
		else
			fix(pc, "CREATE EXTENSION pg_dts;");
		free(avail);
	}
	else
		report(pc, CHECK_FAIL, "extension", "could not check: %s",
			   pc->error);
	free(version);
}

/*
 * The task's slot: info when it is missing or usable, fail when it cannot
 * be used.  Returns whether the task can reuse it (it then needs no free
 * slot).
 */
static bool
check_task_slot(Precheck *pc)
{
	const char *slot = pc->task->slot;
	PGresult   *res;
	bool		exists;

	if (slot == NULL)
		return false;
	res = run(pc,
			  "SELECT s.slot_type, s.plugin, s.database, s.active, s.active_pid,"
			  " s.confirmed_flush_lsn, s.wal_status,"
			  " s.database = pg_catalog.current_database()"
			  " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
			  1, &slot);
	if (res == NULL)
	{
		report(pc, CHECK_FAIL, "slot", "could not check slot \"%s\": %s",
			   slot, pc->error);
		return false;
	}
	exists = PQntuples(res) > 0;
	if (!exists)
		report(pc, CHECK_INFO, "slot",
			   "\"%s\" does not exist yet: create it with --create-slot",
			   slot);
	else if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0 ||
			 strcmp(PQgetvalue(res, 0, 1), "pg_dts") != 0)
	{
		report(pc, CHECK_FAIL, "slot",
			   "\"%s\" exists but is a %s slot%s%s, not one of plugin pg_dts",
			   slot, PQgetvalue(res, 0, 0),
			   PQgetisnull(res, 0, 1) ? "" : " of plugin ",
			   PQgetvalue(res, 0, 1));
		exists = false;
		fix(pc, "give the task another slot (\"slot\" or -S), or drop this one: SELECT pg_drop_replication_slot('%s');",
			slot);
	}
	else if (strcmp(PQgetvalue(res, 0, 7), "t") != 0)
	{
		report(pc, CHECK_FAIL, "slot",
			   "\"%s\" belongs to database \"%s\", not \"%s\"", slot,
			   PQgetvalue(res, 0, 2), PQdb(pc->conn));
		fix(pc, "connect to database \"%s\", or give the task another slot",
			PQgetvalue(res, 0, 2));
		exists = false;
	}
	else if (strcmp(PQgetvalue(res, 0, 6), "lost") == 0)
	{
		report(pc, CHECK_FAIL, "slot",
			   "\"%s\" has lost WAL it needs (max_slot_wal_keep_size was exceeded)",
			   slot);
		fix(pc, "drop it (--drop-slot) and run the task again with a full sync");
		exists = false;
	}
	else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0)
	{
		report(pc, CHECK_FAIL, "slot",
			   "\"%s\" is in use by the process with PID %s", slot,
			   PQgetvalue(res, 0, 4));
		fix(pc, "stop the other pg_dts_ship of this task, or give this task another slot");
	}
	else
		report(pc, CHECK_INFO, "slot",
			   "\"%s\" exists (plugin pg_dts, confirmed up to %s, WAL %s): the task resumes from it",
			   slot,
			   PQgetisnull(res, 0, 5) ? "nothing yet" : PQgetvalue(res, 0, 5),
			   PQgetvalue(res, 0, 6));
	PQclear(res);
	return exists;
}

/* Free replication slots, unless the task reuses its own */
static void
check_slots(Precheck *pc)
{
	bool		slot_exists = check_task_slot(pc);
	PGresult   *res;
	int			max_slots;
	int			used;

	res = run(pc,
			  "SELECT pg_catalog.current_setting('max_replication_slots')::int,"
			  " (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int",
			  0, NULL);
	if (res == NULL)
	{
		report(pc, CHECK_FAIL, "replication slots", "could not check: %s",
			   pc->error);
		return;
	}
	max_slots = atoi(PQgetvalue(res, 0, 0));
	used = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (slot_exists || used < max_slots)
		report(pc, CHECK_PASS, "replication slots",
			   "%d of max_replication_slots = %d free%s", max_slots - used,
			   max_slots, slot_exists ? " (the task reuses its slot)" : "");
	else
	{
		report(pc, CHECK_FAIL, "replication slots",
			   "all %d (max_replication_slots) are taken", max_slots);
		fix(pc, "drop a slot nobody uses (SELECT slot_name, active FROM pg_replication_slots; SELECT pg_drop_replication_slot('...');), or raise max_replication_slots and restart the server");
	}
}

static void
check_wal_senders(Precheck *pc)
{
	PGresult   *res;
	int			max_senders;
	int			active;

	res = run(pc,
			  "SELECT pg_catalog.current_setting('max_wal_senders')::int,"
			  " (SELECT count(*) FROM pg_catalog.pg_stat_activity"
			  "  WHERE backend_type = 'walsender')::int",
			  0, NULL);
	if (res == NULL)
	{
		report(pc, CHECK_FAIL, "wal senders", "could not check: %s",
			   pc->error);
		return;
	}
	max_senders = atoi(PQgetvalue(res, 0, 0));
	active = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (active < max_senders)
		report(pc, CHECK_PASS, "wal senders",
			   "%d of max_wal_senders = %d free", max_senders - active,
			   max_senders);
	else
	{
		report(pc, CHECK_FAIL, "wal senders",
			   "all %d (max_wal_senders) are in use", max_senders);
		fix(pc, "stop an unneeded replication client, or raise max_wal_senders and restart the server");
	}
}

/* ----------------------------------------------------------------
 *		Role items
 * ----------------------------------------------------------------
 */

static void
check_role(Precheck *pc)
{
	PGresult   *res;
	char		q[140];

	res = run(pc,
			  "SELECT current_user, rolsuper, rolreplication"
			  " FROM pg_catalog.pg_roles WHERE rolname = current_user",
			  0, NULL);
	if (res == NULL || PQntuples(res) == 0)
	{
		report(pc, CHECK_FAIL, "role", "could not check: %s",
			   res ? "no such role" : pc->error);
		PQclear(res);
		return;
	}
	pc->role = strdup(PQgetvalue(res, 0, 0));
	if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
		report(pc, CHECK_PASS, "role", "\"%s\" is a superuser",
			   PQgetvalue(res, 0, 0));
	else if (strcmp(PQgetvalue(res, 0, 2), "t") == 0)
		report(pc, CHECK_PASS, "role", "\"%s\" has the REPLICATION attribute",
			   PQgetvalue(res, 0, 0));
	else
	{
		report(pc, CHECK_FAIL, "role",
			   "\"%s\" is neither a superuser nor has the REPLICATION attribute, which a replication connection needs",
			   PQgetvalue(res, 0, 0));
		fix(pc, "ALTER ROLE %s REPLICATION;",
			quote_ident(pc, PQgetvalue(res, 0, 0), q, sizeof(q)));
	}
	PQclear(res);
}

/* The heartbeat upserts its row: SELECT, INSERT and UPDATE on the table */
static void
check_heartbeat_privileges(Precheck *pc)
{
	PGresult   *res;
	char		q[140];
	const char *missing[3];
	int			nmissing = 0;
	int			i;
	static const char *const privs[] = {"SELECT", "INSERT", "UPDATE"};

	if (pc->task->heartbeat_interval_s == 0)
	{
		report(pc, CHECK_INFO, "heartbeat", "off (heartbeat_interval is 0)");
		return;
	}
	res = run(pc,
			  "SELECT t.oid IS NOT NULL,"
			  " pg_catalog.has_table_privilege(t.oid, 'SELECT'),"
			  " pg_catalog.has_table_privilege(t.oid, 'INSERT'),"
			  " pg_catalog.has_table_privilege(t.oid, 'UPDATE')"
			  " FROM (SELECT pg_catalog.to_regclass('"
			  DTS_HEARTBEAT_SCHEMA "." DTS_HEARTBEAT_TABLE "') AS oid) t",
			  0, NULL);
	if (res == NULL)
	{
		report(pc, CHECK_FAIL, "heartbeat", "could not check: %s",
			   pc->error);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		report(pc, CHECK_FAIL, "heartbeat",
			   "table " DTS_HEARTBEAT_SCHEMA "." DTS_HEARTBEAT_TABLE
			   " does not exist");
		fix(pc, "CREATE EXTENSION pg_dts; (it creates the table), or set \"heartbeat_interval\": 0");
		PQclear(res);
		return;
	}
	for (i = 0; i < 3; i++)
		if (strcmp(PQgetvalue(res, 0, i + 1), "t") != 0)
			missing[nmissing++] = privs[i];
	PQclear(res);
	if (nmissing == 0)
	{
		report(pc, CHECK_PASS, "heartbeat",
			   "the role may write " DTS_HEARTBEAT_SCHEMA "."
			   DTS_HEARTBEAT_TABLE " every %d s",
			   pc->task->heartbeat_interval_s);
		return;
	}
	report(pc, CHECK_FAIL, "heartbeat",
		   "the role lacks %s%s%s%s%s on " DTS_HEARTBEAT_SCHEMA "."
		   DTS_HEARTBEAT_TABLE,
		   missing[0], nmissing > 1 ? ", " : "", nmissing > 1 ? missing[1] : "",
		   nmissing > 2 ? ", " : "", nmissing > 2 ? missing[2] : "");
	fix(pc, "GRANT SELECT, INSERT, UPDATE ON " DTS_HEARTBEAT_SCHEMA "."
		DTS_HEARTBEAT_TABLE " TO %s;",
		quote_ident(pc, pc->role ? pc->role : "?", q, sizeof(q)));
}

/* ----------------------------------------------------------------
 *		Selected tables
 * ----------------------------------------------------------------
 */

#define TABLE_QUERY \
	"SELECT c.oid, c.relkind, c.relreplident, c.relpersistence," \
	" EXISTS (SELECT 1 FROM pg_catalog.pg_index i" \
	"  WHERE i.indrelid = c.oid AND i.indisprimary)," \
	" pg_catalog.has_table_privilege(c.oid, 'SELECT')," \
	" n.nspname, c.relname," \
	" pg_catalog.has_schema_privilege(n.oid, 'USAGE')" \
	" FROM pg_catalog.pg_class c" \
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"

/* Adds the rows of a TABLE_QUERY result, skipping tables already there */
static bool
add_tables(Precheck *pc, PGresult *res)
{
	int			row;

	for (row = 0; row < PQntuples(res); row++)
	{
		unsigned	oid = (unsigned) strtoul(PQgetvalue(res, row, 0), NULL, 10);
		SelTable   *t;
		int			i;

		for (i = 0; i < pc->ntables; i++)
			if (pc->tables[i].oid == oid)
				break;
		if (i < pc->ntables)
			continue;
		t = realloc(pc->tables, (pc->ntables + 1) * sizeof(SelTable));
		if (t == NULL)
			return false;
		pc->tables = t;
		t = &pc->tables[pc->ntables];
		memset(t, 0, sizeof(SelTable));
		t->oid = oid;
		t->relkind = PQgetvalue(res, row, 1)[0];
		t->replident = PQgetvalue(res, row, 2)[0];
		t->persistence = PQgetvalue(res, row, 3)[0];
		t->has_pk = strcmp(PQgetvalue(res, row, 4), "t") == 0;
		t->can_select = strcmp(PQgetvalue(res, row, 5), "t") == 0;
		t->schema = strdup(PQgetvalue(res, row, 6));
		t->table = strdup(PQgetvalue(res, row, 7));
		t->can_use_schema = strcmp(PQgetvalue(res, row, 8), "t") == 0;
		pc->ntables++;
		if (t->schema == NULL || t->table == NULL)
			return false;
		t->rule = dts_task_find_rule(pc->task, t->schema, t->table);
		if (t->rule && t->rule->table == NULL)
			t->rule = NULL;		/* only a table's own rule matters here */
	}
	return true;
}

/* A table rule names a table that does not exist: say what is close */
static void
report_missing_table(Precheck *pc, const DtsTableRule *rule)
{
	const char *params[2] = {rule->schema, rule->table};
	PGresult   *res;
	bool		schema_exists;
	char	   *v;
	char		qn[300];
	char		path[512];
	int			row;

	v = fetch(pc,
			  "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
			  rule->schema, &schema_exists);
	schema_exists = (v != NULL);
	free(v);
	res = run(pc,
			  "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
			  " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
			  " WHERE c.relkind IN ('r', 'p')"
			  " AND pg_catalog.lower(c.relname) = pg_catalog.lower($2)"
			  " ORDER BY (n.nspname = $1) DESC, n.nspname LIMIT 5",
			  2, params);
	fprintf(pc->out, "fail  table %s: does not exist (searched schema \"%s\"%s; names are case-sensitive)",
			quote_qualified(pc, rule->schema, rule->table, qn, sizeof(qn)),
			rule->schema, schema_exists ? "" : ", which does not exist");
	pc->failures++;
	for (row = 0; res && row < PQntuples(res); row++)
		fprintf(pc->out, "%s%s", row == 0 ? "; similar: " : ", ",
				quote_qualified(pc, PQgetvalue(res, row, 0),
								PQgetvalue(res, row, 1), qn, sizeof(qn)));
	fputc('\n', pc->out);
	PQclear(res);
	fix(pc, "correct %s in the task file, or create the table",
		table_path(rule->schema, rule->table, path, sizeof(path)));
}

/* A schema rule names a schema that does not exist */
static void
report_missing_schema(Precheck *pc, const DtsTableRule *rule)
{
	char		q[140];
	char		path[512];

	report(pc, CHECK_FAIL, "schema", "%s does not exist (names are case-sensitive)",
		   quote_ident(pc, rule->schema, q, sizeof(q)));
	fix(pc, "correct %s in the task file, or create the schema",
		table_path(rule->schema, NULL, path, sizeof(path)));
}

/*
 * Looks up every selected table into pc->tables, reporting the rules that
 * name a missing table or schema.  Returns false when memory runs out or a
 * query fails (reported).
 */
static bool
collect_tables(Precheck *pc)
{
	const DtsTask *task = pc->task;
	int			missing = 0;
	int			i;

	if (task->whole_database)
	{
		PGresult   *res = run(pc, TABLE_QUERY
							  " WHERE c.relkind IN ('r', 'p')"
							  " AND c.relpersistence <> 't'"
							  " AND n.nspname <> 'information_schema'"
							  " AND n.nspname !~ '^pg_'"
							  " ORDER BY n.nspname, c.relname",
							  0, NULL);
		bool		ok;

		if (res == NULL)
		{
			report(pc, CHECK_FAIL, "tables", "could not list them: %s",
				   pc->error);
			return false;
		}
		ok = add_tables(pc, res);
		PQclear(res);
		if (ok)
			report(pc, CHECK_PASS, "tables",
				   "the whole database: %d table%s", pc->ntables,
				   pc->ntables == 1 ? "" : "s");
		return ok;
	}

	for (i = 0; i < task->nrules; i++)
	{
		const DtsTableRule *rule = &task->rules[i];
		const char *params[2] = {rule->schema, rule->table};
		PGresult   *res;
		bool		ok;

		if (rule->table)
			res = run(pc, TABLE_QUERY
					  " WHERE n.nspname = $1 AND c.relname = $2"
					  " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
					  2, params);
		else
			res = run(pc, TABLE_QUERY
					  " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')"
					  " AND c.relpersistence <> 't'"
					  " ORDER BY c.relname",
					  1, params);
		if (res == NULL)
		{
			report(pc, CHECK_FAIL, "tables", "could not look them up: %s",
				   pc->error);
			return false;
		}
		ok = add_tables(pc, res);
		if (ok && PQntuples(res) == 0)
		{
			bool		isnull;
			char	   *v = rule->table ? NULL :
			fetch(pc, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
				  rule->schema, &isnull);

			if (rule->table)
			{
				report_missing_table(pc, rule);
				missing++;
			}
			else if (v == NULL)
			{
				report_missing_schema(pc, rule);
				missing++;
			}
			else
				report(pc, CHECK_INFO, "schema",
					   "\"%s\" has no tables yet", rule->schema);
			free(v);
		}
		PQclear(res);
		if (!ok)
			return false;
	}
	if (missing == 0)
		report(pc, CHECK_PASS, "tables", "%d selected table%s exist%s",
			   pc->ntables, pc->ntables == 1 ? "" : "s",
			   pc->ntables == 1 ? "s" : "");
	return true;
}

/* Kind and logging: only permanent tables reach logical decoding */
static void
check_table_kinds(Precheck *pc)
{
	char		qn[300];
	int			i;

	for (i = 0; i < pc->ntables; i++)
	{
		SelTable   *t = &pc->tables[i];

		quote_qualified(pc, t->schema, t->table, qn, sizeof(qn));
		if (t->relkind == 'v' || t->relkind == 'm' || t->relkind == 'f')
		{
			report(pc, CHECK_FAIL, "table",
				   "%s is a %s, whose changes are not decoded", qn,
				   t->relkind == 'v' ? "view" :
				   t->relkind == 'm' ? "materialized view" : "foreign table");
			fix(pc, "select the tables it reads from instead");
		}
		else if (t->relkind == 'p' && t->rule != NULL)
		{
			report(pc, CHECK_WARN, "table",
				   "%s is partitioned: its rows live in its partitions, whose changes are decoded under the partitions' own names",
				   qn);
			fix(pc, "select its partitions too (SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = '%s'::regclass), or their whole schema",
				qn);
		}
		else if (t->persistence == 'u')
		{
			report(pc, CHECK_WARN, "table",
				   "%s is UNLOGGED: its changes are not written to the WAL, so none reach the task",
				   qn);
			fix(pc, "ALTER TABLE %s SET LOGGED;", qn);
		}
	}
}

/* A primary key, or REPLICA IDENTITY USING INDEX / FULL */
static void
check_replica_identity(Precheck *pc)
{
	char		qn[300];
	int			bad = 0;
	int			i;

	for (i = 0; i < pc->ntables; i++)
	{
		SelTable   *t = &pc->tables[i];

		if (t->relkind != 'r')
			continue;
		if (t->replident == 'f' || t->replident == 'i' ||
			(t->replident == 'd' && t->has_pk))
			continue;
		if (++bad > MAX_TABLES_LISTED)
			continue;
		quote_qualified(pc, t->schema, t->table, qn, sizeof(qn));
		report(pc, CHECK_WARN, "replica identity",
			   "%s has %s: its UPDATEs and DELETEs carry no old key, so a sink cannot tell which row changed",
			   qn, t->replident == 'n' ? "REPLICA IDENTITY NOTHING" :
			   "no primary key");
		fix(pc, "ALTER TABLE %s REPLICA IDENTITY FULL; (or add a primary key)",
			qn);
	}
	if (bad > MAX_TABLES_LISTED)
	{
		report(pc, CHECK_WARN, "replica identity",
			   "%d more tables have no primary key or replica identity",
			   bad - MAX_TABLES_LISTED);
		fix(pc, "list them: SELECT oid::regclass FROM pg_class c WHERE relkind = 'r' AND relreplident IN ('d', 'n') AND NOT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = c.oid AND indisprimary);");
	}
	if (bad == 0)
		report(pc, CHECK_PASS, "replica identity",
			   "every selected table has a primary key or a replica identity");
}

/* SELECT on the tables: the full sync reads them */
static void
check_select_privilege(Precheck *pc)
{
	bool		reads = dts_task_has_phase(pc->task, DTS_SYNC_FULL) ||
		dts_task_has_phase(pc->task, DTS_SYNC_SCHEMA);
	char		qn[300];
	char		q[140];
	int			bad = 0;
	int			i;

	for (i = 0; i < pc->ntables; i++)
	{
		SelTable   *t = &pc->tables[i];

		if ((t->can_select && t->can_use_schema) || t->relkind != 'r')
			continue;
		if (++bad > MAX_TABLES_LISTED)
			continue;
		quote_qualified(pc, t->schema, t->table, qn, sizeof(qn));
		quote_ident(pc, pc->role ? pc->role : "?", q, sizeof(q));
		report(pc, reads ? CHECK_FAIL : CHECK_WARN, "select privilege",
			   "the role may not SELECT from %s%s%s", qn,
			   t->can_use_schema ? "" : " (no USAGE on its schema)",
			   reads ? ", which the full sync reads" :
			   "; only a full sync needs it, and the precheck to try filters");
		if (!t->can_use_schema)
		{
			char		qs[140];

			fix(pc, "GRANT USAGE ON SCHEMA %s TO %s;",
				quote_ident(pc, t->schema, qs, sizeof(qs)), q);
		}
		if (!t->can_select)
			fix(pc, "GRANT SELECT ON %s TO %s;", qn, q);
	}
	if (bad > MAX_TABLES_LISTED)
		report(pc, reads ? CHECK_FAIL : CHECK_WARN, "select privilege",
			   "and %d more tables", bad - MAX_TABLES_LISTED);
	if (bad == 0)
		report(pc, CHECK_PASS, "select privilege",
			   "the role may SELECT from every selected table");
}

/*
 * A table rule's column list: every column exists; key columns left out
 * are noted (the plugin adds them).
 */
static void
check_columns(Precheck *pc, const SelTable *t)
{
	const DtsTableRule *rule = t->rule;
	char		oid[16];
	const char *param = oid;
	PGresult   *res;
	char		qn[300];
	char		path[512];
	int			bad = 0;
	int			i;
	int			row;

	snprintf(oid, sizeof(oid), "%u", t->oid);
	quote_qualified(pc, t->schema, t->table, qn, sizeof(qn));
	/* every column, and whether it is part of the identity key */
	res = run(pc,
			  "SELECT a.attname, EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
			  "  WHERE i.indrelid = a.attrelid AND a.attnum = ANY (i.indkey)"
			  "  AND CASE c.relreplident WHEN 'd' THEN i.indisprimary"
			  "   WHEN 'i' THEN i.indisreplident ELSE false END)"
			  " FROM pg_catalog.pg_attribute a"
			  " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
			  " WHERE a.attrelid = $1::oid AND a.attnum > 0"
			  " AND NOT a.attisdropped",
			  1, &param);
	if (res == NULL)
	{
		report(pc, CHECK_FAIL, "columns", "could not check %s: %s", qn,
			   pc->error);
		return;
	}
	table_path(t->schema, t->table, path, sizeof(path));
	for (i = 0; i < rule->ncolumns; i++)
	{
		for (row = 0; row < PQntuples(res); row++)
			if (strcmp(PQgetvalue(res, row, 0), rule->columns[i].name) == 0)
				break;
		if (row < PQntuples(res))
			continue;
		bad++;
		report(pc, CHECK_FAIL, "columns",
			   "%s has no column \"%s\" (names are case-sensitive)", qn,
			   rule->columns[i].name);
		fix(pc, "correct %s.columns in the task file", path);
	}
	for (row = 0; row < PQntuples(res); row++)
	{
		if (strcmp(PQgetvalue(res, row, 1), "t") != 0)
			continue;
		for (i = 0; i < rule->ncolumns; i++)
			if (strcmp(PQgetvalue(res, row, 0), rule->columns[i].name) == 0)
				break;
		if (i < rule->ncolumns)
			continue;
		report(pc, CHECK_INFO, "columns",
			   "the columns of %s leave out key column \"%s\": the plugin sends it anyway, as the key of UPDATEs and DELETEs",
			   qn, PQgetvalue(res, row, 0));
	}
	PQclear(res);
	if (bad == 0)
		report(pc, CHECK_PASS, "columns", "%s has the %d selected column%s",
			   qn, rule->ncolumns, rule->ncolumns == 1 ? "" : "s");
}

/*
 * The select list of the table's replica identity columns, quoted and
 * comma-separated, malloc'd ("" when it has none), or NULL on error.
 */
static char *
identity_columns(Precheck *pc, const SelTable *t)
{
	char		oid[16];
	const char *param = oid;
	PGresult   *res;
	char	   *cols;

	snprintf(oid, sizeof(oid), "%u", t->oid);
	res = run(pc,
			  "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', '"
			  "  ORDER BY a.attnum)"
			  " FROM pg_catalog.pg_attribute a"
			  " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
			  " JOIN pg_catalog.pg_index i ON i.indrelid = c.oid"
			  "  AND a.attnum = ANY (i.indkey)"
			  " WHERE c.oid = $1::oid AND CASE c.relreplident"
			  "  WHEN 'd' THEN i.indisprimary"
			  "  WHEN 'i' THEN i.indisreplident ELSE false END",
			  1, &param);
	if (res == NULL)
		return NULL;
	cols = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
	if (cols == NULL)
		snprintf(pc->error, sizeof(pc->error), "out of memory");
	PQclear(res);
	return cols;
}

/*
 * The plugin's rule for a rule that publishes UPDATEs or DELETEs of a table
 * that is not REPLICA IDENTITY FULL: the old row then holds only the
 * identity columns, so the filter may read no other.  Tried by running the
 * filter over a subquery of just those columns, named like the table.
 * Reports and returns false when the filter reads another column.
 */
static bool
filter_reads_identity_only(Precheck *pc, const SelTable *t, const char *qn)
{
	const char *filter = t->rule->where;
	char	   *cols;
	char	   *sql;
	char		alias[140];
	char		path[512];
	const char *col;
	const char *end;
	size_t		len;
	PGresult   *res;

	if (!(t->rule->dml & (DTS_DML_UPDATE | DTS_DML_DELETE)) ||
		t->replident == 'f')
		return true;
	if ((cols = identity_columns(pc, t)) == NULL)
	{
		report(pc, CHECK_WARN, "filter", "%s: could not read its key: %s",
			   qn, pc->error);
		return false;
	}
	quote_ident(pc, t->table, alias, sizeof(alias));
	len = strlen(cols) + 2 * strlen(qn) + strlen(filter) + 96;
	if ((sql = malloc(len)) == NULL)
	{
		free(cols);
		report(pc, CHECK_FAIL, "filter", "out of memory");
		return false;
	}
	snprintf(sql, len, "EXPLAIN SELECT 1 FROM (SELECT %s FROM %s) AS %s WHERE (\n%s\n)",
			 cols, qn, alias, filter);
	PQclear(PQexec(pc->conn, "BEGIN TRANSACTION READ ONLY"));
	PQclear(PQexec(pc->conn, "SET LOCAL statement_timeout = '10s'"));
	res = run(pc, sql, 0, NULL);
	PQclear(PQexec(pc->conn, "ROLLBACK"));
	free(sql);
	free(cols);
	if (res != NULL)
	{
		PQclear(res);
		return true;
	}
	table_path(t->schema, t->table, path, sizeof(path));
	/* the server's message is: column "x" does not exist */
	col = strchr(pc->error, '"');
	end = col ? strrchr(pc->error, '"') : NULL;
	if (strcmp(pc->sqlstate, DTS_SQLSTATE_UNDEFINED_COLUMN) != 0 ||
		col == NULL || end == col)
	{
		report(pc, CHECK_WARN, "filter",
			   "%s: could not check that \"%s\" reads only replica identity columns: %s",
			   qn, filter, pc->error);
		fix(pc, "make sure it does, or use REPLICA IDENTITY FULL on the table");
		return false;
	}
	report(pc, CHECK_FAIL, "filter",
		   "%s: \"%s\" reads column %.*s, which is not part of the replica identity, and the rule publishes UPDATEs or DELETEs, whose old row then holds only the identity columns",
		   qn, filter, (int) (end - col + 1), col);
	fix(pc, "ALTER TABLE %s REPLICA IDENTITY FULL; or set %s.dml_op to \"insert\" (or \"insert,truncate\")",
		qn, path);
	return false;
}

/*
 * A filter parses against its table: EXPLAIN (never run) in a read-only
 * transaction, through the extended protocol so that it is one statement.
 * The plugin also allows only built-in immutable functions, operators and
 * types in a filter (as PostgreSQL 15 does in publication row filters);
 * that part it checks itself, at the table's first change.
 */
static void
check_filter(Precheck *pc, const SelTable *t)
{
	const char *filter = t->rule->where;
	char		qn[300];
	char		path[512];
	char	   *sql;
	size_t		len;
	int			prefix;
	PGresult   *res;

	quote_qualified(pc, t->schema, t->table, qn, sizeof(qn));
	len = strlen(qn) + strlen(filter) + 64;
	if ((sql = malloc(len)) == NULL)
	{
		report(pc, CHECK_FAIL, "filter", "out of memory");
		return;
	}
	/* newlines: a trailing "--" comment cannot swallow the parenthesis */
	prefix = snprintf(sql, len, "EXPLAIN SELECT 1 FROM %s WHERE (\n", qn);
	snprintf(sql + prefix, len - prefix, "%s\n)", filter);
	PQclear(PQexec(pc->conn, "BEGIN TRANSACTION READ ONLY"));
	PQclear(PQexec(pc->conn, "SET LOCAL statement_timeout = '10s'"));
	res = run(pc, sql, 0, NULL);
	PQclear(PQexec(pc->conn, "ROLLBACK"));
	free(sql);
	if (res != NULL)
	{
		PQclear(res);
		if (filter_reads_identity_only(pc, t, qn))
			report(pc, CHECK_PASS, "filter", "%s: %s", qn, filter);
		return;
	}
	if (strcmp(pc->sqlstate, DTS_SQLSTATE_INSUFFICIENT_PRIVILEGE) == 0)
	{
		report(pc, CHECK_WARN, "filter",
			   "%s: could not try \"%s\": %s", qn, filter, pc->error);
		fix(pc, "give the role SELECT on the table (see \"select privilege\"), or check the filter by hand");
		return;
	}
	/* the server counts characters; close enough for ASCII filters */
	if (pc->position > prefix && pc->position <= prefix + (int) strlen(filter) + 1)
		report(pc, CHECK_FAIL, "filter",
			   "%s: \"%s\" does not work: %s (at character %d of the filter)",
			   qn, filter, pc->error, pc->position - prefix);
	else
		report(pc, CHECK_FAIL, "filter", "%s: \"%s\" does not work: %s",
			   qn, filter, pc->error);
	fix(pc, "correct %s.filter: a boolean SQL expression over the table's columns, without a trailing \";\"",
		table_path(t->schema, t->table, path, sizeof(path)));
}

/* The column lists and filters of the tables that have their own rule */
static void
check_rules(Precheck *pc)
{
	int			i;

	for (i = 0; i < pc->ntables; i++)
	{
		const SelTable *t = &pc->tables[i];

		if (t->rule == NULL)
			continue;
		if (t->rule->columns != NULL)
			check_columns(pc, t);
		if (t->rule->where != NULL)
			check_filter(pc, t);
	}
}

/* ----------------------------------------------------------------
 *		WAL retention and timeouts
 * ----------------------------------------------------------------
 */

static void
check_wal_keep(Precheck *pc)
{
	char	   *keep = setting(pc, "max_slot_wal_keep_size");
	bool		isnull;
	char	   *wal_size;
	long		suggest_gb;

	if (keep == NULL)
	{
		report(pc, CHECK_WARN, "max_slot_wal_keep_size",
			   "could not read it: %s", pc->error);
		return;
	}
	if (strcmp(keep, "-1") != 0)
	{
		report(pc, CHECK_PASS, "max_slot_wal_keep_size",
			   "%s: a stopped task cannot make the server keep more WAL than that (past it the slot is lost and needs a new full sync)",
			   keep);
		free(keep);
		return;
	}
	/* suggest ten times max_wal_size (in MB), at least 10GB */
	wal_size = fetch(pc,
					 "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'max_wal_size'",
					 NULL, &isnull);
	suggest_gb = wal_size ? atol(wal_size) * 10 / 1024 : 0;
	if (suggest_gb < 10)
		suggest_gb = 10;
	report(pc, CHECK_WARN, "max_slot_wal_keep_size",
		   "-1 (unlimited): while the task is stopped the server keeps all WAL for its slot, until the disk fills");
	fix(pc, "ALTER SYSTEM SET max_slot_wal_keep_size = '%ldGB'; SELECT pg_reload_conf(); (size it to the WAL written during the longest stop to survive)",
		suggest_gb);
	free(wal_size);
	free(keep);
}

static void
check_wal_sender_timeout(Precheck *pc)
{
	bool		isnull;
	char	   *ms = fetch(pc,
						   "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'wal_sender_timeout'",
						   NULL, &isnull);
	long		timeout_ms;
	int			status_ms = pc->task->status_interval_ms;

	if (ms == NULL)
	{
		report(pc, CHECK_INFO, "wal_sender_timeout", "could not read it: %s",
			   isnull ? "no such setting" : pc->error);
		return;
	}
	timeout_ms = atol(ms);
	free(ms);
	if (timeout_ms > 0 && status_ms > timeout_ms)
	{
		report(pc, CHECK_WARN, "wal_sender_timeout",
			   "%ld ms is shorter than the task's status_interval (%d ms): the server may drop a quiet connection",
			   timeout_ms, status_ms);
		fix(pc, "set \"status_interval\" below %ld seconds in the task file (or -s)",
			timeout_ms / 1000);
	}
	else if (timeout_ms == 0)
		report(pc, CHECK_INFO, "wal_sender_timeout",
			   "0: the server never drops a silent replication connection");
	else
		report(pc, CHECK_INFO, "wal_sender_timeout",
			   "%ld ms; the task reports its position every %d ms",
			   timeout_ms, status_ms);
}

/* ----------------------------------------------------------------
 *		Entry points
 * ----------------------------------------------------------------
 */

/* See precheck.h */
int
dts_precheck_run_to(PGconn *conn, const DtsTask *task, FILE *out)
{
	Precheck	pc;
	int			i;

	memset(&pc, 0, sizeof(pc));
	pc.conn = conn;
	pc.task = task;
	pc.out = out;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		report(&pc, CHECK_FAIL, "connection", "not connected: %s",
			   PQerrorMessage(conn));
		return pc.failures;
	}
	check_server_version(&pc);
	check_wal_level(&pc);
	check_output_plugin_libraries(&pc);
	check_extension(&pc);
	check_slots(&pc);
	check_wal_senders(&pc);
	check_role(&pc);
	check_heartbeat_privileges(&pc);
	if (collect_tables(&pc))
	{
		check_table_kinds(&pc);
		check_replica_identity(&pc);
		check_select_privilege(&pc);
		check_rules(&pc);
	}
	else if (pc.failures == 0)
		report(&pc, CHECK_FAIL, "tables", "out of memory");
	check_wal_keep(&pc);
	check_wal_sender_timeout(&pc);

	fprintf(out, "precheck: %d pass, %d warn, %d fail\n", pc.passes,
			pc.warnings, pc.failures);

	for (i = 0; i < pc.ntables; i++)
	{
		free(pc.tables[i].schema);
		free(pc.tables[i].table);
	}
	free(pc.tables);
	free(pc.role);
	return pc.failures;
}

/* See precheck.h */
int
dts_precheck_run(PGconn *conn, const DtsTask *task)
{
	return dts_precheck_run_to(conn, task, stdout);
}

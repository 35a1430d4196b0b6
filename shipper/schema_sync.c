/*-------------------------------------------------------------------------
 *
 * schema_sync.c
 *	  Schema sync of a PostgreSQL-to-PostgreSQL task, pre-data and
 *	  post-data, with pg_dump/pg_restore and the catalog.
 *
 * How each step is made (docs/pg-sync.md has the full table):
 *
 *	- pg_dump -Fc --schema-only, selecting with -n (schema rules), -t
 *	  (table rules), -T (tables kept in "ignore" mode; at post-data also
 *	  the mapped tables), --snapshot for pre-data.  pg_restore -l lists its
 *	  entries; we drop SCHEMA and EXTENSION entries (we create those, with
 *	  IF NOT EXISTS), FK CONSTRAINT entries (all foreign keys are generated,
 *	  so that they can point at mapped or unselected tables correctly) and
 *	  a few entries by catalog OID; pg_restore -L turns the rest into SQL.
 *	- The SQL runs on the destination inside our transaction.  Objects are
 *	  restored under their SOURCE names; mapping is applied afterwards by
 *	  renaming: unselected columns dropped, columns renamed (through
 *	  temporary names, so that swaps work), tables renamed and moved with
 *	  SET SCHEMA, and for a schema rule with a new name every other object
 *	  the restore created in that schema moved too.  PostgreSQL binds
 *	  views, defaults, constraints and column types by OID, so renaming
 *	  keeps them right where rewriting dumped text could not.
 *	- Post-data of mapped tables is generated: indexes from
 *	  pg_get_indexdef (the part after "USING", behind our own "CREATE INDEX
 *	  ... ON <mapped table>"), PK/UNIQUE/EXCLUDE from
 *	  pg_get_constraintdef, both while the table's columns carry their
 *	  source names again (renamed back and forth in the same transaction);
 *	  foreign keys of every table from pg_constraint's columns, actions and
 *	  flags, with mapped names.
 *
 * shipper/schema_sync.c
 *
 *-------------------------------------------------------------------------
 */
#include "schema_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "libpq-fe.h"

#include "sync_tables.h"

extern char **environ;

#define APPNAME "pg_dts_ship schema sync"

/* An argument or environment vector */
typedef struct StrList
{
	char	  **items;			/* NULL-terminated */
	int			n;
} StrList;

/* Everything one step works with */
typedef struct SchemaSync
{
	const DtsTask *task;
	const DtsSchemaSyncOptions *opts;
	const char *src_conninfo;
	const char *dst_conninfo;
	PGconn	   *src;
	PGconn	   *dst;
	DtsSyncTable *tables;
	int			ntables;
	bool	   *kept;			/* per table: existed, kept ("ignore") */
	char		tool_dir[1024]; /* "" = $PATH */
	char		workdir[1024];	/* mkdtemp'd, removed at the end */
} SchemaSync;

/* ----------------------------------------------------------------
 *		Small helpers
 * ----------------------------------------------------------------
 */

static void
strlist_add(StrList *l, const char *s)
{
	l->items = dts_realloc(l->items, (l->n + 2) * sizeof(char *));
	l->items[l->n++] = dts_strdup(s);
	l->items[l->n] = NULL;
}

static void
strlist_free(StrList *l)
{
	int			i;

	for (i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static bool
strlist_has(const StrList *l, const char *s)
{
	int			i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

static const char *
table_name(const DtsSyncTable *t, bool dst, char *buf, size_t len)
{
	return dts_sync_display_name(dst ? t->dst_schema : t->src_schema,
								 dst ? t->dst_table : t->src_table, buf, len);
}

/* Runs a statement built in sql on the destination, then empties sql */
static int
run_dst(SchemaSync *ss, DtsBuf *sql, const char *what, DtsError *err)
{
	int			rc = dts_sync_run(ss->dst, dts_buf_str(sql), what, err);

	dts_buf_reset(sql);
	return rc;
}

/* "{1,2,3}" into attnums; returns how many */
static int
parse_int_array(const char *text, int *out, int max)
{
	int			n = 0;
	const char *p = text;

	while (*p && n < max)
	{
		char	   *end;
		long		v;

		while (*p == '{' || *p == ',' || *p == ' ')
			p++;
		if (*p == '}' || *p == '\0')
			break;
		v = strtol(p, &end, 10);
		if (end == p)
			break;
		out[n++] = (int) v;
		p = end;
	}
	return n;
}

static const DtsSyncColumn *
column_by_attnum(const DtsSyncTable *t, int attnum)
{
	int			i;

	for (i = 0; i < t->ncolumns; i++)
		if (t->columns[i].attnum == attnum)
			return &t->columns[i];
	return NULL;
}

/* Does any of attnums[0..n-1] name a column the task leaves out? */
static bool
uses_dropped(const DtsSyncTable *t, const int *attnums, int n)
{
	int			i,
				j;

	for (i = 0; i < n; i++)
		for (j = 0; j < t->ndropped; j++)
			if (attnums[i] == t->dropped[j].attnum)
				return true;
	return false;
}

/* ----------------------------------------------------------------
 *		Running pg_dump and pg_restore
 * ----------------------------------------------------------------
 */

/*
 * Picks the directory of pg_dump/pg_restore: the option, else the Debian
 * layout's directory of the source's major version, else $PATH.
 */
static void
choose_tool_dir(SchemaSync *ss)
{
	char		path[1024];

	if (ss->opts->bindir)
	{
		snprintf(ss->tool_dir, sizeof(ss->tool_dir), "%s", ss->opts->bindir);
		return;
	}
	snprintf(path, sizeof(path), "/usr/lib/postgresql/%d/bin/pg_dump",
			 PQserverVersion(ss->src) / 10000);
	if (access(path, X_OK) == 0)
		snprintf(ss->tool_dir, sizeof(ss->tool_dir),
				 "/usr/lib/postgresql/%d/bin", PQserverVersion(ss->src) / 10000);
	else
		ss->tool_dir[0] = '\0';
}

/*
 * The source's conninfo without its password (as the -d argument) and
 * the environment with PGPASSWORD set when it had one: a password never
 * appears on a command line.
 */
static void
tool_connection(SchemaSync *ss, char **conninfo, StrList *env)
{
	PQconninfoOption *opts = PQconninfoParse(ss->src_conninfo, NULL);
	PQconninfoOption *o;
	char	  **e;

	*conninfo = dts_conninfo_for_display(ss->src_conninfo);
	for (e = environ; *e; e++)
		if (strncmp(*e, "PGPASSWORD=", 11) != 0 || opts == NULL)
			strlist_add(env, *e);
	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0)
		{
			DtsBuf		b = {0};

			if (o->val && o->val[0])
				dts_buf_printf(&b, "PGPASSWORD=%s", o->val);
			else if (getenv("PGPASSWORD"))
				dts_buf_printf(&b, "PGPASSWORD=%s", getenv("PGPASSWORD"));
			if (b.len)
				strlist_add(env, dts_buf_str(&b));
			dts_buf_free(&b);
		}
	PQconninfoFree(opts);
}

/* Reads what is available on fd into buf; returns false at EOF */
static bool
drain_fd(int fd, DtsBuf *buf)
{
	char		chunk[65536];
	ssize_t		n = read(fd, chunk, sizeof(chunk));

	if (n > 0)
	{
		if (buf)
			dts_buf_append(buf, chunk, (size_t) n);
		return true;
	}
	return n < 0 && (errno == EINTR || errno == EAGAIN);
}

/* The last line of a tool's stderr, for a one-line error */
static const char *
last_line(DtsBuf *text)
{
	char	   *s = text->data;
	char	   *nl;

	if (s == NULL)
		return "(no message)";
	while (text->len > 0 && (s[text->len - 1] == '\n' || s[text->len - 1] == ' '))
		s[--text->len] = '\0';
	nl = strrchr(s, '\n');
	return nl ? nl + 1 : s;
}

/*
 * Runs tool (pg_dump or pg_restore) with args and env, without a shell.
 * Its stdout goes into out (when given), its stderr is kept for the error
 * message.  Returns 0 when it exits with status 0.
 */
static int
run_tool(SchemaSync *ss, const char *tool, StrList *args, StrList *env,
		 DtsBuf *out, DtsError *err)
{
	int			outp[2] = {-1, -1},
				errp[2] = {-1, -1};
	DtsBuf		errtext = {0};
	DtsBuf		path = {0};
	bool		out_open,
				err_open = true;
	pid_t		pid;
	int			status = 0;
	int			rc = -1;

	if (ss->tool_dir[0])
		dts_buf_printf(&path, "%s/%s", ss->tool_dir, tool);
	else
		dts_buf_printf(&path, "%s", tool);
	if (pipe(outp) < 0 || pipe(errp) < 0)
	{
		dts_error_set(err, DTS_ERROR_OTHER, "could not run %s: pipe: %s", tool,
					  strerror(errno));
		goto cleanup;
	}
	pid = fork();
	if (pid < 0)
	{
		dts_error_set(err, DTS_ERROR_OTHER, "could not run %s: fork: %s", tool,
					  strerror(errno));
		goto cleanup;
	}
	if (pid == 0)
	{
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		close(outp[0]);
		close(errp[0]);
		args->items[0] = (char *) dts_buf_str(&path);
		if (ss->tool_dir[0])
			execve(args->items[0], args->items, env->items);
		else
		{
			environ = env->items;
			execvp(args->items[0], args->items);
		}
		fprintf(stderr, "could not execute %s: %s\n", args->items[0],
				strerror(errno));
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	out_open = true;
	while (out_open || err_open)
	{
		struct pollfd fds[2] = {{out_open ? outp[0] : -1, POLLIN, 0},
		{err_open ? errp[0] : -1, POLLIN, 0}};

		if (poll(fds, 2, -1) < 0)
		{
			if (errno == EINTR)
				continue;
			break;
		}
		if (out_open && fds[0].revents)
			out_open = drain_fd(outp[0], out);
		if (err_open && fds[1].revents)
			err_open = drain_fd(errp[0], &errtext);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = 0;
	else
	{
		dts_error_set(err, DTS_ERROR_OTHER, "%s failed (%s %d): %s",
					  dts_buf_str(&path),
					  WIFEXITED(status) ? "exit status" : "signal",
					  WIFEXITED(status) ? WEXITSTATUS(status) :
					  WTERMSIG(status), last_line(&errtext));
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			dts_error_hint(err, "Install the PostgreSQL client of the "
						   "source's major version, or give its bindir.");
	}

cleanup:
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	if (errp[0] >= 0)
		close(errp[0]);
	if (errp[1] >= 0)
		close(errp[1]);
	dts_buf_free(&errtext);
	dts_buf_free(&path);
	return rc;
}

/* Appends a pg_dump pattern that matches exactly the name(s) */
static void
add_pattern(StrList *args, const char *option, const char *schema,
			const char *table)
{
	DtsBuf		b = {0};

	strlist_add(args, option);
	dts_buf_ident(&b, schema);
	if (table)
	{
		dts_buf_append(&b, ".", 1);
		dts_buf_ident(&b, table);
	}
	strlist_add(args, dts_buf_str(&b));
	dts_buf_free(&b);
}

/* Is schema selected by a schema rule (table == NULL)? */
static const DtsTableRule *
schema_rule(const DtsTask *task, const char *schema)
{
	int			i;

	for (i = 0; i < task->nrules; i++)
		if (task->rules[i].table == NULL &&
			strcmp(task->rules[i].schema, schema) == 0)
			return &task->rules[i];
	return NULL;
}

/*
 * Dumps the selection into workdir/<section>.dump.  exclude lists
 * "schema\ttable" names to leave out.
 */
static int
dump(SchemaSync *ss, const char *section, const char *snapshot,
	 const StrList *exclude, char *archive, size_t archlen, DtsError *err)
{
	StrList		args = {0},
				env = {0};
	char	   *conninfo = NULL;
	const DtsTask *task = ss->task;
	int			i,
				rc;

	snprintf(archive, archlen, "%s/%s.dump", ss->workdir, section);
	tool_connection(ss, &conninfo, &env);
	strlist_add(&args, "pg_dump");
	strlist_add(&args, "--schema-only");
	strlist_add(&args, "--format=custom");
	strlist_add(&args, "--strict-names");
	strlist_add(&args, "--no-sync");
	strlist_add(&args, "--file");
	strlist_add(&args, archive);
	if (snapshot)
	{
		DtsBuf		b = {0};

		dts_buf_printf(&b, "--snapshot=%s", snapshot);
		strlist_add(&args, dts_buf_str(&b));
		dts_buf_free(&b);
	}
	if (task->whole_database)
		add_pattern(&args, "--exclude-schema", "dts", NULL);
	for (i = 0; !task->whole_database && i < task->nrules; i++)
	{
		const DtsTableRule *r = &task->rules[i];

		if (r->table == NULL)
			add_pattern(&args, "--schema", r->schema, NULL);
		else if (schema_rule(task, r->schema) == NULL)
			add_pattern(&args, "--table", r->schema, r->table);
	}
	add_pattern(&args, "--exclude-table", DTS_HEARTBEAT_SCHEMA,
				DTS_HEARTBEAT_TABLE);
	add_pattern(&args, "--exclude-table", DTS_DDL_SCHEMA, DTS_DDL_TABLE);
	for (i = 0; i < exclude->n; i++)
	{
		char	   *copy = dts_strdup(exclude->items[i]);
		char	   *tab = strchr(copy, '\t');

		*tab++ = '\0';
		add_pattern(&args, "--exclude-table", copy, tab);
		free(copy);
	}
	strlist_add(&args, "--dbname");
	strlist_add(&args, conninfo ? conninfo : "");
	rc = run_tool(ss, "pg_dump", &args, &env, NULL, err);
	free(conninfo);
	strlist_free(&args);
	strlist_free(&env);
	return rc;
}

/* Is the TOC entry (tableoid, oid) one of drop's "tableoid oid" strings? */
static bool
toc_entry_dropped(const char *line, const StrList *drop)
{
	unsigned int dump_id,
				tableoid,
				oid;
	const char *rest;
	char		key[32];

	if (sscanf(line, "%u; %u %u", &dump_id, &tableoid, &oid) != 3)
		return false;
	rest = strchr(line, ';');
	for (rest++; *rest == ' ' || (*rest >= '0' && *rest <= '9'); rest++)
		;
	if (strncmp(rest, "SCHEMA ", 7) == 0 || strncmp(rest, "EXTENSION ", 10) == 0 ||
		strncmp(rest, "COMMENT - SCHEMA ", 17) == 0 ||
		strncmp(rest, "COMMENT - EXTENSION ", 20) == 0 ||
		strncmp(rest, "FK CONSTRAINT ", 14) == 0)
		return true;
	snprintf(key, sizeof(key), "%u %u", tableoid, oid);
	return strlist_has(drop, key);
}

/*
 * Turns one section of the archive into SQL: pg_restore -l, the entries
 * we create ourselves or must not restore left out, pg_restore -L.  The
 * psql-only \restrict lines of newer minor releases are removed (the SQL
 * runs through libpq).
 */
static int
restore_sql(SchemaSync *ss, const char *archive, const char *section,
			const StrList *drop, DtsBuf *sql, DtsError *err)
{
	StrList		args = {0},
				env = {0};
	DtsBuf		toc = {0},
				raw = {0},
				opt = {0};
	char		listfile[1100];
	char	   *line,
			   *save = NULL;
	FILE	   *f;
	int			rc = -1;

	for (char **e = environ; *e; e++)
		strlist_add(&env, *e);
	strlist_add(&args, "pg_restore");
	strlist_add(&args, "--list");
	strlist_add(&args, archive);
	if (run_tool(ss, "pg_restore", &args, &env, &toc, err) < 0)
		goto cleanup;
	strlist_free(&args);

	snprintf(listfile, sizeof(listfile), "%s/%s.list", ss->workdir, section);
	f = fopen(listfile, "w");
	if (f == NULL)
	{
		dts_error_set(err, DTS_ERROR_OTHER, "could not write \"%s\": %s",
					  listfile, strerror(errno));
		goto cleanup;
	}
	for (line = strtok_r(toc.data ? toc.data : "", "\n", &save); line;
		 line = strtok_r(NULL, "\n", &save))
		if (line[0] != ';' && !toc_entry_dropped(line, drop))
			fprintf(f, "%s\n", line);
	fclose(f);

	strlist_add(&args, "pg_restore");
	strlist_add(&args, "--use-list");
	strlist_add(&args, listfile);
	dts_buf_printf(&opt, "--section=%s", section);
	strlist_add(&args, dts_buf_str(&opt));
	strlist_add(&args, "--no-owner");
	strlist_add(&args, "--no-privileges");
	strlist_add(&args, "--file=-");
	strlist_add(&args, archive);
	if (run_tool(ss, "pg_restore", &args, &env, &raw, err) < 0)
		goto cleanup;
	for (line = strtok_r(raw.data ? raw.data : "", "\n", &save); line;
		 line = strtok_r(NULL, "\n", &save))
	{
		if (strncmp(line, "\\restrict ", 10) == 0 ||
			strncmp(line, "\\unrestrict ", 12) == 0)
			continue;
		dts_buf_printf(sql, "%s\n", line);
	}
	rc = 0;

cleanup:
	strlist_free(&args);
	strlist_free(&env);
	dts_buf_free(&toc);
	dts_buf_free(&raw);
	dts_buf_free(&opt);
	return rc;
}

/*
 * Runs the restored SQL on the destination.  On failure the message says
 * which statement: the first line of the SQL around the error position.
 */
static int
run_script(SchemaSync *ss, const DtsBuf *sql, const char *section,
		   DtsError *err)
{
	PGresult   *res;
	const char *pos;
	const char *msg;
	char		at[160] = "";

	if (sql->len == 0)
		return 0;
	res = PQexec(ss->dst, sql->data);
	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		PQclear(res);
		return 0;
	}
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	if (pos && atol(pos) > 0 && (size_t) atol(pos) <= sql->len)
	{
		const char *p = sql->data + atol(pos) - 1;
		const char *b = p;
		size_t		n;

		while (b > sql->data && b[-1] != '\n')
			b--;
		n = strcspn(b, "\n");
		snprintf(at, sizeof(at), " (at: %.*s)", (int) (n > 120 ? 120 : n), b);
	}
	dts_error_set(err, PQstatus(ss->dst) == CONNECTION_OK ? DTS_ERROR_FATAL :
				  DTS_ERROR_CONNECT,
				  "could not create the %s objects of task \"%s\" on the "
				  "destination: %s%s", section, ss->task->name,
				  msg ? msg : PQerrorMessage(ss->dst), at);
	if (msg && strstr(msg, "does not exist"))
		dts_error_hint(err, "A table rule copies the table only: the types, "
					   "sequences and functions it uses must be selected "
					   "too (their schema) or exist on the destination.");
	else if (msg && strstr(msg, "already exists"))
		dts_error_hint(err, "Drop it on the destination or leave it out of "
					   "the task.");
	PQclear(res);
	return -1;
}

/* ----------------------------------------------------------------
 *		Sessions, state, conflicts
 * ----------------------------------------------------------------
 */

/*
 * Connects both sides.  The source reads with search_path '' (every name
 * the catalog functions print is schema-qualified), in the snapshot when
 * one is given; the destination gets schema dts and its tables, then a
 * transaction is opened on it.
 */
static int
open_sessions(SchemaSync *ss, const char *dst_conninfo, const char *snapshot,
			  DtsError *err)
{
	DtsBuf		sql = {0};
	int			rc;

	ss->src = dts_sync_connect(ss->src_conninfo, APPNAME, "source", err);
	if (ss->src == NULL)
		return -1;
	ss->dst_conninfo = dst_conninfo;
	ss->dst = dts_sync_connect(dst_conninfo, APPNAME, "destination", err);
	if (ss->dst == NULL)
		return -1;
	rc = dts_sync_run(ss->src, "SELECT pg_catalog.set_config('search_path', "
					  "'', false)", "could not set up the source session", err);
	if (rc == 0 && snapshot)
	{
		/* separate statements: BEGIN must start the transaction */
		rc = dts_sync_run(ss->src, "BEGIN ISOLATION LEVEL REPEATABLE READ "
						  "READ ONLY", "could not begin on the source", err);
		dts_buf_printf(&sql, "SET TRANSACTION SNAPSHOT ");
		dts_buf_literal(&sql, snapshot);
		if (rc == 0)
			rc = dts_sync_run(ss->src, dts_buf_str(&sql),
							  "could not import the snapshot on the source",
							  err);
	}
	dts_buf_free(&sql);
	if (rc < 0 || dts_sync_ensure_dts_tables(ss->dst, err) < 0)
		return -1;
	return dts_sync_run(ss->dst, "BEGIN", "could not begin on the destination",
						err);
}

/* Has this task recorded section? kept (optional) gets its kept_tables */
static int
section_done(SchemaSync *ss, const char *section, bool *done, StrList *kept,
			 DtsError *err)
{
	const char *params[2] = {ss->task->name, section};
	PGresult   *res = dts_sync_exec_params(ss->dst,
										   "SELECT pg_catalog.unnest(kept_tables) "
										   "FROM dts.schema_sync_state WHERE task = $1 "
										   "AND section = $2 UNION ALL SELECT NULL "
										   "FROM dts.schema_sync_state WHERE task = $1 "
										   "AND section = $2", 2, params,
										   "could not read dts.schema_sync_state", err);
	int			i;

	if (res == NULL)
		return -1;
	*done = PQntuples(res) > 0;
	for (i = 0; kept && i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 0))
			strlist_add(kept, PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

static int
record_section(SchemaSync *ss, const char *section, DtsError *err)
{
	DtsBuf		sql = {0};
	int			i;
	bool		first = true;

	dts_buf_printf(&sql, "INSERT INTO dts.schema_sync_state (task, section, "
				   "kept_tables) VALUES (");
	dts_buf_literal(&sql, ss->task->name);
	dts_buf_printf(&sql, ", '%s', ARRAY[", section);
	for (i = 0; i < ss->ntables; i++)
	{
		char		name[300];

		if (!ss->kept[i])
			continue;
		dts_buf_printf(&sql, "%s", first ? "" : ", ");
		dts_buf_literal(&sql, table_name(&ss->tables[i], true, name,
										 sizeof(name)));
		first = false;
	}
	dts_buf_printf(&sql, "]::text[])");
	return run_dst(ss, &sql, "could not record the schema sync in "
				   "dts.schema_sync_state", err);
}

#define RELATION_EXISTS_SQL \
	"SELECT 1 FROM pg_catalog.pg_class c " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	"WHERE n.nspname = $1 AND c.relname = $2"

static int
relation_exists(PGconn *conn, const char *schema, const char *name,
				bool *exists, DtsError *err)
{
	const char *params[2] = {schema, name};
	PGresult   *res = dts_sync_exec_params(conn, RELATION_EXISTS_SQL, 2, params,
										   "could not look up a destination table",
										   err);

	if (res == NULL)
		return -1;
	*exists = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/*
 * The conflict check, before anything is written: a selected table whose
 * destination name exists is an error naming it (every one, up to a few),
 * or, with "conflicting_tables": "ignore", kept.  A mapped table is
 * restored under its source name first: that name must be free too.
 */
static int
check_conflicts(SchemaSync *ss, DtsError *err)
{
	bool		ignore;
	DtsBuf		names = {0};
	int			nconflicts = 0,
				i;
	char		shown[300],
				shown2[300];

	if (dts_sync_conflicting_tables(ss->task, &ignore, err) < 0)
		return -1;
	for (i = 0; i < ss->ntables; i++)
	{
		DtsSyncTable *t = &ss->tables[i];
		bool		exists;

		if (relation_exists(ss->dst, t->dst_schema, t->dst_table, &exists,
							err) < 0)
			goto fail;
		if (exists && ignore)
		{
			ss->kept[i] = true;
			dts_log_info("schema sync: destination table %s exists: kept "
						 "(conflicting_tables: ignore)",
						 table_name(t, true, shown, sizeof(shown)));
			continue;
		}
		if (exists)
		{
			if (nconflicts++ < 5)
				dts_buf_printf(&names, "%s%s", nconflicts > 1 ? ", " : "",
							   table_name(t, true, shown, sizeof(shown)));
			continue;
		}
		if (!t->mapped || (strcmp(t->src_schema, t->dst_schema) == 0 &&
						   strcmp(t->src_table, t->dst_table) == 0))
			continue;
		if (relation_exists(ss->dst, t->src_schema, t->src_table, &exists,
							err) < 0)
			goto fail;
		if (exists)
		{
			dts_error_set(err, DTS_ERROR_FATAL,
						  "destination already has %s, which creating mapped "
						  "table %s needs as a temporary name",
						  table_name(t, false, shown, sizeof(shown)),
						  table_name(t, true, shown2, sizeof(shown2)));
			dts_error_hint(err, "Rename or drop it on the destination for the "
						   "time of the schema sync.");
			goto fail;
		}
	}
	if (nconflicts > 0)
	{
		dts_error_set(err, DTS_ERROR_FATAL,
					  "destination table%s %s%s already exist%s",
					  nconflicts > 1 ? "s" : "", dts_buf_str(&names),
					  nconflicts > 5 ? " (and more)" : "",
					  nconflicts > 1 ? "" : "s");
		dts_error_hint(err, "Drop them, leave them out of the task, or set "
					   "\"conflicting_tables\": \"ignore\" in the sink to keep "
					   "and fill them.");
		goto fail;
	}
	dts_buf_free(&names);
	return 0;

fail:
	dts_buf_free(&names);
	return -1;
}

/* ----------------------------------------------------------------
 *		Pre-data
 * ----------------------------------------------------------------
 */

/* The source schemas whose objects are dumped (restored under these names) */
#define USER_SCHEMAS_SQL \
	"SELECT n.nspname FROM pg_catalog.pg_namespace n " \
	"WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'dts') " \
	"AND n.nspname !~ '^pg_' " \
	"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e " \
	"  WHERE e.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass " \
	"  AND e.objid = n.oid AND e.deptype = 'e') ORDER BY 1"

static int
source_schemas(SchemaSync *ss, StrList *schemas, DtsError *err)
{
	int			i;

	if (ss->task->whole_database)
	{
		PGresult   *res = dts_sync_exec(ss->src, USER_SCHEMAS_SQL,
										"could not list the source's schemas",
										err);

		if (res == NULL)
			return -1;
		for (i = 0; i < PQntuples(res); i++)
			strlist_add(schemas, PQgetvalue(res, i, 0));
		PQclear(res);
		return 0;
	}
	for (i = 0; i < ss->task->nrules; i++)
		if (!strlist_has(schemas, ss->task->rules[i].schema))
			strlist_add(schemas, ss->task->rules[i].schema);
	return 0;
}

/*
 * The extensions the dumped objects use (a dependency of a table, column,
 * type, function, default, constraint, view or trigger of the schemas on
 * an extension's member), or, for the whole database, every extension;
 * never plpgsql (always there) nor pg_dts (its objects are not copied).
 */
#define EXTENSIONS_SQL \
	"SELECT e.extname, en.nspname FROM pg_catalog.pg_extension e " \
	"JOIN pg_catalog.pg_namespace en ON en.oid = e.extnamespace " \
	"WHERE e.extname NOT IN ('plpgsql', 'pg_dts') AND ($2 OR EXISTS (" \
	" SELECT 1 FROM pg_catalog.pg_depend m " \
	" JOIN pg_catalog.pg_depend d ON d.refclassid = m.classid " \
	"  AND d.refobjid = m.objid AND d.deptype = 'n' " \
	" WHERE m.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass " \
	"  AND m.refobjid = e.oid AND m.deptype = 'e' " \
	"  AND (CASE d.classid " \
	"   WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN " \
	"    (SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = d.objid) " \
	"   WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN " \
	"    (SELECT typnamespace FROM pg_catalog.pg_type WHERE oid = d.objid) " \
	"   WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN " \
	"    (SELECT pronamespace FROM pg_catalog.pg_proc WHERE oid = d.objid) " \
	"   WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN " \
	"    (SELECT connamespace FROM pg_catalog.pg_constraint " \
	"     WHERE oid = d.objid) " \
	"   WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN " \
	"    (SELECT c.relnamespace FROM pg_catalog.pg_attrdef a " \
	"     JOIN pg_catalog.pg_class c ON c.oid = a.adrelid " \
	"     WHERE a.oid = d.objid) " \
	"   WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN " \
	"    (SELECT c.relnamespace FROM pg_catalog.pg_rewrite r " \
	"     JOIN pg_catalog.pg_class c ON c.oid = r.ev_class " \
	"     WHERE r.oid = d.objid) " \
	"   WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN " \
	"    (SELECT c.relnamespace FROM pg_catalog.pg_trigger t " \
	"     JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid " \
	"     WHERE t.oid = d.objid) END) " \
	"   IN (SELECT oid FROM pg_catalog.pg_namespace " \
	"       WHERE nspname = ANY ($1::text[])))) " \
	"ORDER BY 1"

/* Appends the schemas as a text[] literal: {"a","b"} */
static void
text_array(DtsBuf *b, const StrList *l)
{
	int			i;

	dts_buf_append(b, "{", 1);
	for (i = 0; i < l->n; i++)
	{
		const char *p;

		dts_buf_printf(b, "%s\"", i ? "," : "");
		for (p = l->items[i]; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				dts_buf_append(b, "\\", 1);
			dts_buf_append(b, p, 1);
		}
		dts_buf_append(b, "\"", 1);
	}
	dts_buf_append(b, "}", 1);
}

/*
 * Creates on the destination the schemas the restore and the mapping
 * need (IF NOT EXISTS; created lists the ones that were missing) and the
 * extensions.
 */
static int
create_schemas_and_extensions(SchemaSync *ss, const StrList *schemas,
							  StrList *created, DtsError *err)
{
	StrList		all = {0};
	DtsBuf		sql = {0},
				arr = {0};
	PGresult   *res = NULL;
	const char *params[2];
	int			i,
				rc = -1;

	for (i = 0; i < schemas->n; i++)
		strlist_add(&all, schemas->items[i]);
	for (i = 0; i < ss->task->nrules; i++)
		if (ss->task->rules[i].new_schema &&
			!strlist_has(&all, ss->task->rules[i].new_schema))
			strlist_add(&all, ss->task->rules[i].new_schema);
	for (i = 0; i < ss->ntables; i++)
		if (!strlist_has(&all, ss->tables[i].dst_schema))
			strlist_add(&all, ss->tables[i].dst_schema);

	text_array(&arr, schemas);
	params[0] = dts_buf_str(&arr);
	params[1] = ss->task->whole_database ? "true" : "false";
	res = dts_sync_exec_params(ss->src, EXTENSIONS_SQL, 2, params,
							   "could not list the extensions the source's "
							   "objects use", err);
	if (res == NULL)
		goto cleanup;
	for (i = 0; i < PQntuples(res); i++)
		if (!strlist_has(&all, PQgetvalue(res, i, 1)))
			strlist_add(&all, PQgetvalue(res, i, 1));

	for (i = 0; i < all.n; i++)
	{
		PGresult   *r;
		const char *p1[1] = {all.items[i]};

		r = dts_sync_exec_params(ss->dst, "SELECT 1 FROM "
								 "pg_catalog.pg_namespace WHERE nspname = $1",
								 1, p1, "could not look up a schema", err);
		if (r == NULL)
			goto cleanup;
		if (PQntuples(r) == 0)
		{
			strlist_add(created, all.items[i]);
			dts_buf_printf(&sql, "CREATE SCHEMA ");
			dts_buf_ident(&sql, all.items[i]);
			if (run_dst(ss, &sql, "could not create a schema on the "
						"destination", err) < 0)
			{
				PQclear(r);
				goto cleanup;
			}
		}
		PQclear(r);
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		char		what[300];

		dts_buf_printf(&sql, "CREATE EXTENSION IF NOT EXISTS ");
		dts_buf_ident(&sql, PQgetvalue(res, i, 0));
		dts_buf_printf(&sql, " WITH SCHEMA ");
		dts_buf_ident(&sql, PQgetvalue(res, i, 1));
		snprintf(what, sizeof(what), "could not create extension \"%s\" on "
				 "the destination", PQgetvalue(res, i, 0));
		if (run_dst(ss, &sql, what, err) < 0)
		{
			dts_error_hint(err, "The source's objects use it: install its "
						   "package on the destination's server.");
			goto cleanup;
		}
	}
	rc = 0;

cleanup:
	PQclear(res);
	strlist_free(&all);
	dts_buf_free(&sql);
	dts_buf_free(&arr);
	return rc;
}

/*
 * TOC entries pre-data must not restore: the sequences owned by tables
 * kept in "ignore" mode (pg_dump's -T leaves them in).
 */
#define KEPT_SEQUENCES_SQL \
	"SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid " \
	" || ' ' || d.objid FROM pg_catalog.pg_depend d " \
	"WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"AND d.refobjid = $1::pg_catalog.oid AND d.deptype IN ('a', 'i')"

static int
oids_to_drop(SchemaSync *ss, const char *sql, bool kept_only,
			 StrList *drop, DtsError *err)
{
	int			i,
				j;

	for (i = 0; i < ss->ntables; i++)
	{
		char		oid[16];
		const char *params[1] = {oid};
		PGresult   *res;

		if (kept_only && !ss->kept[i])
			continue;
		if (!kept_only && (ss->kept[i] || !ss->tables[i].mapped))
			continue;
		snprintf(oid, sizeof(oid), "%u", ss->tables[i].src_oid);
		res = dts_sync_exec_params(ss->src, sql, 1, params,
								   "could not read the source's catalog", err);
		if (res == NULL)
			return -1;
		for (j = 0; j < PQntuples(res); j++)
			strlist_add(drop, PQgetvalue(res, j, 0));
		PQclear(res);
	}
	return 0;
}

/* Renames the columns of the table (now named schema.table) */
static int
rename_columns(SchemaSync *ss, const DtsSyncTable *t, const char *schema,
			   const char *table, bool back, DtsError *err)
{
	DtsBuf		sql = {0};
	int			pass,
				i;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < t->ncolumns; i++)
		{
			const DtsSyncColumn *c = &t->columns[i];
			char		tmp[32];

			if (strcmp(c->src_name, c->dst_name) == 0)
				continue;
			snprintf(tmp, sizeof(tmp), "dts_tmp_column_%d", c->attnum);
			dts_buf_printf(&sql, "ALTER TABLE ");
			dts_buf_qualified(&sql, schema, table);
			dts_buf_printf(&sql, " RENAME COLUMN ");
			if (pass == 0)
				dts_buf_ident(&sql, back ? c->dst_name : c->src_name);
			else
				dts_buf_ident(&sql, tmp);
			dts_buf_printf(&sql, " TO ");
			if (pass == 0)
				dts_buf_ident(&sql, tmp);
			else
				dts_buf_ident(&sql, back ? c->src_name : c->dst_name);
			dts_buf_printf(&sql, ";\n");
		}
	i = sql.len ? run_dst(ss, &sql, "could not rename the columns of a "
						  "mapped table", err) : 0;
	dts_buf_free(&sql);
	return i;
}

/*
 * Gives a restored table its destination shape: drops the columns the
 * task leaves out, renames columns, then moves and renames the table
 * (through a temporary name, so that neither step collides).
 */
static int
map_table(SchemaSync *ss, const DtsSyncTable *t, DtsError *err)
{
	DtsBuf		sql = {0};
	char		tmp[64];
	char		what[400];
	char		shown[300];
	int			i;

	snprintf(what, sizeof(what), "could not map %s to %s",
			 table_name(t, false, shown, sizeof(shown)), t->dst_table);
	for (i = 0; i < t->ndropped; i++)
	{
		dts_buf_printf(&sql, "ALTER TABLE ");
		dts_buf_qualified(&sql, t->src_schema, t->src_table);
		dts_buf_printf(&sql, " DROP COLUMN ");
		dts_buf_ident(&sql, t->dropped[i].name);
		dts_buf_printf(&sql, ";\n");
	}
	if (sql.len && run_dst(ss, &sql, what, err) < 0)
		goto fail;
	if (rename_columns(ss, t, t->src_schema, t->src_table, false, err) < 0)
		goto fail;
	if (strcmp(t->src_schema, t->dst_schema) != 0 ||
		strcmp(t->src_table, t->dst_table) != 0)
	{
		snprintf(tmp, sizeof(tmp), "dts_tmp_table_%u", t->src_oid);
		dts_buf_printf(&sql, "ALTER TABLE ");
		dts_buf_qualified(&sql, t->src_schema, t->src_table);
		dts_buf_printf(&sql, " RENAME TO ");
		dts_buf_ident(&sql, tmp);
		dts_buf_printf(&sql, ";\nALTER TABLE ");
		dts_buf_qualified(&sql, t->src_schema, tmp);
		dts_buf_printf(&sql, " SET SCHEMA ");
		dts_buf_ident(&sql, t->dst_schema);
		dts_buf_printf(&sql, ";\nALTER TABLE ");
		dts_buf_qualified(&sql, t->dst_schema, tmp);
		dts_buf_printf(&sql, " RENAME TO ");
		dts_buf_ident(&sql, t->dst_table);
		if (run_dst(ss, &sql, what, err) < 0)
			goto fail;
	}
	dts_buf_free(&sql);
	return 0;

fail:
	dts_buf_free(&sql);
	return -1;
}

/*
 * The statements that move what this transaction created in schema $1
 * (other than tables, which map_table moved, and what moves with them:
 * indexes, owned sequences, row types, arrays, multiranges) to schema $2.
 */
#define MOVE_OBJECTS_SQL \
	"SELECT pg_catalog.format('ALTER %s %s SET SCHEMA %I', kind, name, " \
	" $2::text) " \
	"FROM (" \
	" SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' " \
	"  WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' " \
	"  WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind, " \
	"  c.oid::pg_catalog.regclass::text AS name " \
	" FROM pg_catalog.pg_class c " \
	" WHERE c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1)) " \
	" AND c.xmin = pg_catalog.pg_current_xact_id()::xid " \
	" AND (c.relkind IN ('v', 'm', 'f') " \
	"  OR (c.relkind IN ('r', 'p') AND c.relispartition) " \
	"  OR (c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d " \
	"   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"   AND d.objid = c.oid AND d.deptype IN ('a', 'i')))) " \
	" UNION ALL " \
	" SELECT 'TYPE', t.oid::pg_catalog.regtype::text " \
	" FROM pg_catalog.pg_type t " \
	" WHERE t.typnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1)) " \
	" AND t.xmin = pg_catalog.pg_current_xact_id()::xid " \
	" AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND " \
	"  (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')) " \
	" UNION ALL " \
	" SELECT CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, " \
	"  p.oid::pg_catalog.regprocedure::text " \
	" FROM pg_catalog.pg_proc p " \
	" WHERE p.pronamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1)) " \
	" AND p.xmin = pg_catalog.pg_current_xact_id()::xid) o"

/* Moves the non-table objects of each schema rule with a new name */
static int
move_schema_objects(SchemaSync *ss, DtsError *err)
{
	int			i,
				j;

	for (i = 0; i < ss->task->nrules; i++)
	{
		const DtsTableRule *r = &ss->task->rules[i];
		const char *params[2] = {r->schema, r->new_schema};
		PGresult   *res;

		if (r->table || r->new_schema == NULL ||
			strcmp(r->schema, r->new_schema) == 0)
			continue;
		res = dts_sync_exec_params(ss->dst, MOVE_OBJECTS_SQL, 2, params,
								   "could not list the objects of a mapped "
								   "schema", err);
		if (res == NULL)
			return -1;
		for (j = 0; j < PQntuples(res); j++)
		{
			char		what[400];

			snprintf(what, sizeof(what), "could not move an object of schema "
					 "\"%s\" to \"%s\" (%s)", r->schema, r->new_schema,
					 PQgetvalue(res, j, 0));
			if (dts_sync_run(ss->dst, PQgetvalue(res, j, 0), what, err) < 0)
			{
				PQclear(res);
				return -1;
			}
		}
		PQclear(res);
	}
	return 0;
}

/*
 * Drops the schemas this transaction created only to restore into, now
 * that their objects have moved (left, with a note, if something stayed).
 */
static int
drop_staging_schemas(SchemaSync *ss, const StrList *created, DtsError *err)
{
	int			i,
				j;

	for (i = 0; i < created->n; i++)
	{
		const char *params[1] = {created->items[i]};
		PGresult   *res;
		bool		target = false;
		DtsBuf		sql = {0};

		for (j = 0; j < ss->ntables && !target; j++)
			target = strcmp(ss->tables[j].dst_schema, created->items[i]) == 0;
		for (j = 0; j < ss->task->nrules && !target; j++)
			target = ss->task->rules[j].new_schema ?
				strcmp(ss->task->rules[j].new_schema, created->items[i]) == 0 :
				strcmp(ss->task->rules[j].schema, created->items[i]) == 0;
		if (target)
			continue;
		res = dts_sync_exec_params(ss->dst,
								   "SELECT 1 FROM pg_catalog.pg_depend WHERE "
								   "refclassid = 'pg_catalog.pg_namespace'::"
								   "pg_catalog.regclass AND refobjid = "
								   "pg_catalog.to_regnamespace("
								   "pg_catalog.quote_ident($1))", 1, params,
								   "could not look into a staging schema", err);
		if (res == NULL)
			return -1;
		if (PQntuples(res) > 0)
			dts_log_warning("schema sync: schema \"%s\" was created to restore "
							"into and is not empty after the mapping: kept",
							created->items[i]);
		else
		{
			dts_buf_printf(&sql, "DROP SCHEMA ");
			dts_buf_ident(&sql, created->items[i]);
			if (run_dst(ss, &sql, "could not drop a staging schema", err) < 0)
			{
				PQclear(res);
				dts_buf_free(&sql);
				return -1;
			}
		}
		PQclear(res);
		dts_buf_free(&sql);
	}
	return 0;
}

/* Loads the task's tables and marks the kept ones */
static int
load_tables(SchemaSync *ss, DtsError *err)
{
	if (dts_sync_tables_for_task(ss->src, ss->task, &ss->tables, &ss->ntables,
								 err) < 0)
		return -1;
	ss->kept = calloc(ss->ntables + 1, sizeof(bool));
	if (ss->kept == NULL)
		abort();
	return 0;
}

static int
make_workdir(SchemaSync *ss, DtsError *err)
{
	const char *tmp = ss->opts->tmpdir ? ss->opts->tmpdir :
		getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(ss->workdir, sizeof(ss->workdir), "%s/pg_dts_schema.XXXXXX", tmp);
	if (mkdtemp(ss->workdir) == NULL)
	{
		dts_error_set(err, DTS_ERROR_OTHER, "could not create a directory in "
					  "\"%s\": %s", tmp, strerror(errno));
		ss->workdir[0] = '\0';
		return -1;
	}
	return 0;
}

/* Ends a step: the destination transaction rolled back unless committed */
static void
close_step(SchemaSync *ss)
{
	char		path[1200];
	const char *files[] = {"pre-data.dump", "pre-data.list", "post-data.dump",
	"post-data.list"};
	size_t		i;

	if (ss->workdir[0])
	{
		for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		{
			snprintf(path, sizeof(path), "%s/%s", ss->workdir, files[i]);
			unlink(path);
		}
		rmdir(ss->workdir);
	}
	PQfinish(ss->src);
	PQfinish(ss->dst);
	dts_sync_tables_free(ss->tables, ss->ntables);
	free(ss->kept);
}

void
dts_schema_sync_options_init(DtsSchemaSyncOptions *opts)
{
	memset(opts, 0, sizeof(*opts));
}

/* The pre-data steps inside the destination transaction */
static int
pre_data(SchemaSync *ss, DtsError *err)
{
	StrList		schemas = {0},
				created = {0},
				exclude = {0},
				drop = {0};
	DtsBuf		sql = {0};
	char		archive[1200];
	int			i,
				rc = -1;

	if (check_conflicts(ss, err) < 0 || source_schemas(ss, &schemas, err) < 0)
		goto cleanup;
	for (i = 0; i < ss->ntables; i++)
		if (ss->kept[i])
		{
			DtsBuf		b = {0};

			dts_buf_printf(&b, "%s\t%s", ss->tables[i].src_schema,
						   ss->tables[i].src_table);
			strlist_add(&exclude, dts_buf_str(&b));
			dts_buf_free(&b);
		}
	if (oids_to_drop(ss, KEPT_SEQUENCES_SQL, true, &drop, err) < 0 ||
		make_workdir(ss, err) < 0 ||
		dump(ss, "pre-data", ss->opts->snapshot, &exclude, archive,
			 sizeof(archive), err) < 0 ||
		restore_sql(ss, archive, "pre-data", &drop, &sql, err) < 0 ||
		create_schemas_and_extensions(ss, &schemas, &created, err) < 0 ||
		run_script(ss, &sql, "pre-data", err) < 0)
		goto cleanup;
	for (i = 0; i < ss->ntables; i++)
		if (!ss->kept[i] && ss->tables[i].mapped &&
			map_table(ss, &ss->tables[i], err) < 0)
			goto cleanup;
	if (move_schema_objects(ss, err) < 0 ||
		drop_staging_schemas(ss, &created, err) < 0 ||
		record_section(ss, "pre-data", err) < 0 ||
		dts_sync_run(ss->dst, "COMMIT", "could not commit the schema sync",
					 err) < 0)
		goto cleanup;
	rc = 0;

cleanup:
	strlist_free(&schemas);
	strlist_free(&created);
	strlist_free(&exclude);
	strlist_free(&drop);
	dts_buf_free(&sql);
	return rc;
}

int
dts_schema_sync(const DtsTask *task, const char *src_conninfo,
				const char *dst_conninfo, const DtsSchemaSyncOptions *opts,
				DtsError *err)
{
	DtsSchemaSyncOptions defaults;
	SchemaSync	ss;
	bool		done = false;
	int			rc = -1;

	if (opts == NULL)
	{
		dts_schema_sync_options_init(&defaults);
		opts = &defaults;
	}
	memset(&ss, 0, sizeof(ss));
	ss.task = task;
	ss.opts = opts;
	ss.src_conninfo = src_conninfo;
	if (!task->whole_database && task->nrules == 0)
		return 0;				/* nothing selected */
	if (open_sessions(&ss, dst_conninfo, opts->snapshot, err) < 0 ||
		section_done(&ss, "pre-data", &done, NULL, err) < 0)
		goto cleanup;
	if (done)
	{
		dts_log_info("schema sync of task \"%s\": pre-data done before",
					 task->name);
		rc = 0;
		goto cleanup;
	}
	choose_tool_dir(&ss);
	if (load_tables(&ss, err) < 0 || pre_data(&ss, err) < 0)
		goto cleanup;
	dts_log_info("schema sync of task \"%s\": pre-data done (%d tables)",
				 task->name, ss.ntables);
	rc = 0;

cleanup:
	close_step(&ss);
	return rc;
}

/* ----------------------------------------------------------------
 *		Post-data
 * ----------------------------------------------------------------
 */

/*
 * TOC entries post-data must not restore: triggers, rules and policies
 * of relations in schemas whose objects were moved (their dumped text
 * names the source schema).
 */
#define MOVED_SCHEMA_ENTRIES_SQL \
	"SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid " \
	" || ' ' || t.oid FROM pg_catalog.pg_trigger t " \
	" JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid " \
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	" WHERE n.nspname = $1 AND NOT t.tgisinternal " \
	"UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid " \
	" || ' ' || r.oid FROM pg_catalog.pg_rewrite r " \
	" JOIN pg_catalog.pg_class c ON c.oid = r.ev_class " \
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	" WHERE n.nspname = $1 " \
	"UNION ALL SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid " \
	" || ' ' || p.oid FROM pg_catalog.pg_policy p " \
	" JOIN pg_catalog.pg_class c ON c.oid = p.polrelid " \
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	" WHERE n.nspname = $1"

static int
moved_schema_entries(SchemaSync *ss, StrList *drop, DtsError *err)
{
	int			i,
				j;

	for (i = 0; i < ss->task->nrules; i++)
	{
		const DtsTableRule *r = &ss->task->rules[i];
		const char *params[1] = {r->schema};
		PGresult   *res;

		if (r->table || r->new_schema == NULL ||
			strcmp(r->schema, r->new_schema) == 0)
			continue;
		res = dts_sync_exec_params(ss->src, MOVED_SCHEMA_ENTRIES_SQL, 1,
								   params, "could not read the source's "
								   "catalog", err);
		if (res == NULL)
			return -1;
		for (j = 0; j < PQntuples(res); j++)
			strlist_add(drop, PQgetvalue(res, j, 0));
		PQclear(res);
	}
	return 0;
}

/* The partitions of a table, as "schema\ttable" */
#define PARTITIONS_SQL \
	"SELECT n.nspname || E'\\t' || c.relname " \
	"FROM pg_catalog.pg_partition_tree($1::pg_catalog.oid) p " \
	"JOIN pg_catalog.pg_class c ON c.oid = p.relid " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	"WHERE p.level > 0"

/* The tables post-data's dump leaves out: kept and mapped, with partitions */
static int
post_data_excludes(SchemaSync *ss, StrList *exclude, DtsError *err)
{
	int			i,
				j;

	for (i = 0; i < ss->ntables; i++)
	{
		DtsSyncTable *t = &ss->tables[i];
		char		oid[16];
		const char *params[1] = {oid};
		PGresult   *res;
		DtsBuf		b = {0};

		if (!ss->kept[i] && !t->mapped)
			continue;
		dts_buf_printf(&b, "%s\t%s", t->src_schema, t->src_table);
		strlist_add(exclude, dts_buf_str(&b));
		dts_buf_free(&b);
		snprintf(oid, sizeof(oid), "%u", t->src_oid);
		res = dts_sync_exec_params(ss->src, PARTITIONS_SQL, 1, params,
								   "could not list partitions", err);
		if (res == NULL)
			return -1;
		for (j = 0; j < PQntuples(res); j++)
			strlist_add(exclude, PQgetvalue(res, j, 0));
		PQclear(res);
	}
	return 0;
}

/*
 * A mapped table's indexes that do not back a constraint: the text after
 * "... ON <table> USING " of pg_get_indexdef, and the columns used.
 */
#define INDEXES_SQL \
	"SELECT c.relname, i.indisunique, " \
	" CASE WHEN pg_catalog.starts_with(d.def, p.p1) " \
	"  THEN pg_catalog.substr(d.def, pg_catalog.length(p.p1) + 1) " \
	"  WHEN pg_catalog.starts_with(d.def, p.p2) " \
	"  THEN pg_catalog.substr(d.def, pg_catalog.length(p.p2) + 1) END, " \
	" ARRAY(SELECT pg_catalog.unnest(i.indkey::pg_catalog.int2[]) UNION " \
	"  SELECT x.refobjsubid FROM pg_catalog.pg_depend x " \
	"  WHERE x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"  AND x.objid = i.indexrelid AND x.refobjid = i.indrelid " \
	"  AND x.refobjsubid > 0) " \
	"FROM pg_catalog.pg_index i " \
	"JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid " \
	"CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_indexdef(i.indexrelid) " \
	" AS def) d " \
	"CROSS JOIN LATERAL (SELECT pg_catalog.format('CREATE %sINDEX %I ON %s " \
	"USING ', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, " \
	"  c.relname, i.indrelid::pg_catalog.regclass) AS p1, " \
	" pg_catalog.format('CREATE %sINDEX %I ON ONLY %s USING ', " \
	"  CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, c.relname, " \
	"  i.indrelid::pg_catalog.regclass) AS p2) p " \
	"WHERE i.indrelid = $1::pg_catalog.oid AND NOT EXISTS (" \
	" SELECT 1 FROM pg_catalog.pg_constraint k " \
	" WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid " \
	" AND k.contype IN ('p', 'u', 'x')) " \
	"ORDER BY 1"

#define CONSTRAINTS_SQL \
	"SELECT k.conname, pg_catalog.pg_get_constraintdef(k.oid), k.conkey " \
	"FROM pg_catalog.pg_constraint k " \
	"WHERE k.conrelid = $1::pg_catalog.oid AND k.contype IN ('p', 'u', 'x') " \
	"AND k.conparentid = 0 ORDER BY k.contype <> 'p', k.conname"

#define SKIPPED_SQL \
	"SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger " \
	"  WHERE tgrelid = $1::pg_catalog.oid AND NOT tgisinternal) " \
	" + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy " \
	"  WHERE polrelid = $1::pg_catalog.oid) " \
	" + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_rewrite " \
	"  WHERE ev_class = $1::pg_catalog.oid) " \
	" + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_statistic_ext " \
	"  WHERE stxrelid = $1::pg_catalog.oid)"

/* Appends the mapped table's indexes' CREATE INDEX statements */
static int
mapped_indexes(SchemaSync *ss, const DtsSyncTable *t, const char *oid,
			   DtsBuf *sql, DtsError *err)
{
	const char *params[1] = {oid};
	PGresult   *res = dts_sync_exec_params(ss->src, INDEXES_SQL, 1, params,
										   "could not read the indexes of a "
										   "source table", err);
	int			i;
	char		shown[300];

	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
	{
		int			cols[64];
		int			n = parse_int_array(PQgetvalue(res, i, 3), cols, 64);

		if (PQgetisnull(res, i, 2) || uses_dropped(t, cols, n))
		{
			dts_log_warning("schema sync: index \"%s\" of %s not created: %s",
							PQgetvalue(res, i, 0),
							table_name(t, false, shown, sizeof(shown)),
							PQgetisnull(res, i, 2) ?
							"its definition has an unexpected form" :
							"it uses a column the task leaves out");
			continue;
		}
		dts_buf_printf(sql, "CREATE %sINDEX ",
					   PQgetvalue(res, i, 1)[0] == 't' ? "UNIQUE " : "");
		dts_buf_ident(sql, PQgetvalue(res, i, 0));
		dts_buf_printf(sql, " ON ");
		dts_buf_qualified(sql, t->dst_schema, t->dst_table);
		dts_buf_printf(sql, " USING %s;\n", PQgetvalue(res, i, 2));
	}
	PQclear(res);
	return 0;
}

/* Appends the mapped table's PK, UNIQUE and EXCLUDE constraints */
static int
mapped_constraints(SchemaSync *ss, const DtsSyncTable *t, const char *oid,
				   DtsBuf *sql, DtsError *err)
{
	const char *params[1] = {oid};
	PGresult   *res = dts_sync_exec_params(ss->src, CONSTRAINTS_SQL, 1, params,
										   "could not read the constraints of "
										   "a source table", err);
	int			i;
	char		shown[300];

	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
	{
		int			cols[64];
		int			n = parse_int_array(PQgetvalue(res, i, 2), cols, 64);

		if (uses_dropped(t, cols, n))
		{
			dts_log_warning("schema sync: constraint \"%s\" of %s not created: "
							"it uses a column the task leaves out",
							PQgetvalue(res, i, 0),
							table_name(t, false, shown, sizeof(shown)));
			continue;
		}
		dts_buf_printf(sql, "ALTER TABLE ");
		dts_buf_qualified(sql, t->dst_schema, t->dst_table);
		dts_buf_printf(sql, " ADD CONSTRAINT ");
		dts_buf_ident(sql, PQgetvalue(res, i, 0));
		dts_buf_printf(sql, " %s;\n", PQgetvalue(res, i, 1));
	}
	PQclear(res);
	return 0;
}

/*
 * A mapped table's post-data, generated: indexes and constraints, created
 * while its columns carry their source names (the definitions name them).
 */
static int
mapped_post_data(SchemaSync *ss, const DtsSyncTable *t, DtsError *err)
{
	char		oid[16];
	const char *params[1] = {oid};
	DtsBuf		sql = {0};
	PGresult   *res;
	char		what[400];
	char		shown[300];
	int			rc = -1;

	snprintf(oid, sizeof(oid), "%u", t->src_oid);
	snprintf(what, sizeof(what), "could not create the indexes and "
			 "constraints of %s", table_name(t, true, shown, sizeof(shown)));
	if (mapped_indexes(ss, t, oid, &sql, err) < 0 ||
		mapped_constraints(ss, t, oid, &sql, err) < 0)
		goto cleanup;
	res = dts_sync_exec_params(ss->src, SKIPPED_SQL, 1, params,
							   "could not read the source's catalog", err);
	if (res == NULL)
		goto cleanup;
	if (atol(PQgetvalue(res, 0, 0)) > 0)
		dts_log_warning("schema sync: %s triggers, rules, policies or "
						"statistics of mapped table %s are not synced",
						PQgetvalue(res, 0, 0),
						table_name(t, false, shown, sizeof(shown)));
	PQclear(res);
	if (sql.len == 0)
		rc = 0;
	else if (rename_columns(ss, t, t->dst_schema, t->dst_table, true, err) == 0 &&
			 run_dst(ss, &sql, what, err) == 0 &&
			 rename_columns(ss, t, t->dst_schema, t->dst_table, false, err) == 0)
		rc = 0;

cleanup:
	dts_buf_free(&sql);
	return rc;
}

#define FOREIGN_KEYS_SQL \
	"SELECT k.conname, k.conkey, k.confrelid, k.confkey, k.confupdtype, " \
	" k.confdeltype, k.confmatchtype, k.condeferrable, k.condeferred, " \
	" k.convalidated, k.confdelsetcols, k.confrelid::pg_catalog.regclass " \
	"FROM pg_catalog.pg_constraint k " \
	"WHERE k.conrelid = $1::pg_catalog.oid AND k.contype = 'f' " \
	"AND k.conparentid = 0 ORDER BY k.conname"

static const char *
fk_action(char c)
{
	switch (c)
	{
		case 'r':
			return "RESTRICT";
		case 'c':
			return "CASCADE";
		case 'n':
			return "SET NULL";
		case 'd':
			return "SET DEFAULT";
		default:
			return "NO ACTION";
	}
}

/* Appends "(a, b)" with the destination names of attnums of t */
static bool
append_fk_columns(DtsBuf *sql, const DtsSyncTable *t, const int *attnums,
				  int n)
{
	int			i;

	dts_buf_append(sql, "(", 1);
	for (i = 0; i < n; i++)
	{
		const DtsSyncColumn *c = column_by_attnum(t, attnums[i]);

		if (c == NULL)
			return false;
		if (i > 0)
			dts_buf_append(sql, ", ", 2);
		dts_buf_ident(sql, c->dst_name);
	}
	dts_buf_append(sql, ")", 1);
	return true;
}

/* Builds one foreign key of t (row i of res) or says why not */
static void
foreign_key(SchemaSync *ss, const DtsSyncTable *t, PGresult *res, int i,
			DtsBuf *sql)
{
	unsigned int refoid = (unsigned int) strtoul(PQgetvalue(res, i, 2), NULL, 10);
	const DtsSyncTable *ref = NULL;
	int			cols[64],
				refcols[64],
				setcols[64];
	int			n = parse_int_array(PQgetvalue(res, i, 1), cols, 64);
	int			nref = parse_int_array(PQgetvalue(res, i, 3), refcols, 64);
	int			nset = PQgetisnull(res, i, 10) ? 0 :
		parse_int_array(PQgetvalue(res, i, 10), setcols, 64);
	size_t		start = sql->len;
	int			j;
	char		shown[300];

	for (j = 0; j < ss->ntables; j++)
		if (ss->tables[j].src_oid == refoid)
			ref = &ss->tables[j];
	dts_buf_printf(sql, "ALTER TABLE ");
	dts_buf_qualified(sql, t->dst_schema, t->dst_table);
	dts_buf_printf(sql, " ADD CONSTRAINT ");
	dts_buf_ident(sql, PQgetvalue(res, i, 0));
	dts_buf_printf(sql, " FOREIGN KEY ");
	if (ref && append_fk_columns(sql, t, cols, n))
	{
		dts_buf_printf(sql, " REFERENCES ");
		dts_buf_qualified(sql, ref->dst_schema, ref->dst_table);
		if (append_fk_columns(sql, ref, refcols, nref))
		{
			char		m = PQgetvalue(res, i, 6)[0];

			dts_buf_printf(sql, "%s ON UPDATE %s ON DELETE %s",
						   m == 'f' ? " MATCH FULL" : "",
						   fk_action(PQgetvalue(res, i, 4)[0]),
						   fk_action(PQgetvalue(res, i, 5)[0]));
			if (nset == 0 || append_fk_columns(sql, t, setcols, nset))
			{
				dts_buf_printf(sql, "%s%s%s;\n",
							   PQgetvalue(res, i, 7)[0] == 't' ? " DEFERRABLE" : "",
							   PQgetvalue(res, i, 8)[0] == 't' ?
							   " INITIALLY DEFERRED" : "",
							   PQgetvalue(res, i, 9)[0] == 't' ? "" : " NOT VALID");
				return;
			}
		}
	}
	sql->len = start;
	sql->data[start] = '\0';
	dts_log_warning("schema sync: foreign key \"%s\" of %s not created: %s",
					PQgetvalue(res, i, 0),
					table_name(t, false, shown, sizeof(shown)),
					ref ? "it uses a column the task leaves out" :
					"the table it references is not in the task");
	if (!ref)
		dts_log_hint("It references %s.", PQgetvalue(res, i, 11));
}

/* The foreign keys of every table the schema sync created */
static int
foreign_keys(SchemaSync *ss, DtsError *err)
{
	DtsBuf		sql = {0};
	int			i,
				j;

	for (i = 0; i < ss->ntables; i++)
	{
		char		oid[16];
		const char *params[1] = {oid};
		PGresult   *res;

		if (ss->kept[i])
			continue;
		snprintf(oid, sizeof(oid), "%u", ss->tables[i].src_oid);
		res = dts_sync_exec_params(ss->src, FOREIGN_KEYS_SQL, 1, params,
								   "could not read the foreign keys of a "
								   "source table", err);
		if (res == NULL)
		{
			dts_buf_free(&sql);
			return -1;
		}
		for (j = 0; j < PQntuples(res); j++)
			foreign_key(ss, &ss->tables[i], res, j, &sql);
		PQclear(res);
	}
	i = sql.len ? run_dst(ss, &sql, "could not create the foreign keys", err) : 0;
	dts_buf_free(&sql);
	return i;
}

/* Marks the tables pre-data kept, from its record */
static void
mark_kept(SchemaSync *ss, const StrList *kept)
{
	int			i;

	for (i = 0; i < ss->ntables; i++)
	{
		char		name[300];

		ss->kept[i] = strlist_has(kept, table_name(&ss->tables[i], true, name,
												   sizeof(name)));
	}
}

/*
 * Post-data builds the indexes of freshly filled tables: our session (only
 * ours) sorts in memory where the server's default (64 MB) would spill to
 * disk, as for pg_restore users who raise it.  Never lowered; parallel
 * workers share it (max_parallel_maintenance_workers stays the server's).
 */
#define POST_DATA_MAINTENANCE_WORK_MEM_KB	"1048576"	/* 1 GB */
#define POST_DATA_SESSION_SQL \
	"SELECT pg_catalog.set_config('maintenance_work_mem', '" \
	POST_DATA_MAINTENANCE_WORK_MEM_KB "', false) " \
	"FROM pg_catalog.pg_settings WHERE name = 'maintenance_work_mem' " \
	"AND setting::pg_catalog.int8 < " POST_DATA_MAINTENANCE_WORK_MEM_KB

/*
 * Parallel post-data (like pg_restore -j): the restored post-data script
 * is split at its entries ("-- Name: ...; Type: ...; Schema: ..."
 * headers).  Entries of type INDEX and CONSTRAINT (primary key, unique,
 * exclusion: pg_restore's foreign keys are dropped, ours come later) are
 * built first, on post_data_jobs destination connections at once, each
 * entry in a transaction of its own with the session settings the script
 * had set before it; every other entry then runs on the main connection,
 * in the script's order, after all indexes exist, followed by the foreign
 * keys.  Each parallel entry's transaction also records the entry as
 * (task, 'post-data entry: <header>') in dts.schema_sync_state, so that a
 * post-data step interrupted after some entries committed skips them when
 * run again; the main transaction deletes these rows when it records
 * (task, 'post-data').
 */
#define POST_ENTRY_PREFIX	"post-data entry: "

typedef struct PostEntry
{
	char	   *header;			/* "Name: t i; Type: INDEX; Schema: s; ..." */
	char	   *type;			/* "INDEX" */
	bool		parallel;
	bool		done;			/* recorded by an earlier, interrupted call */
	char	   *schema;			/* INDEX, CONSTRAINT: the table's schema */
	char	   *table;			/* and name, unquoted; NULL = not known */
	DtsBuf		body;			/* the entry's statements, without SETs */
	DtsBuf		state;			/* the SETs the script ran before it */
} PostEntry;

typedef struct PostData
{
	SchemaSync *ss;
	PostEntry  *entries;
	int			n;
	DtsBuf		sequential;		/* the script without the parallel entries */
	int			nparallel;
	int			nskipped;
	/* under lock */
	pthread_mutex_t lock;
	int			next;
	bool		failed;
	DtsError	err;
} PostData;

static bool
is_session_setting(const char *line)
{
	return strncmp(line, "SET ", 4) == 0 ||
		strncmp(line, "SELECT pg_catalog.set_config(", 29) == 0;
}

/*
 * Reads one identifier at *p (bare or double-quoted) into a new string;
 * NULL if there is none.  Advances *p past it.
 */
static char *
read_ident(const char **p)
{
	const char *s = *p;
	DtsBuf		b = {0};
	char	   *r;

	if (*s == '"')
	{
		for (s++; *s; s++)
		{
			if (*s == '"' && s[1] == '"')
				s++;
			else if (*s == '"')
				break;
			dts_buf_append(&b, s, 1);
		}
		if (*s != '"')
		{
			dts_buf_free(&b);
			return NULL;
		}
		s++;
	}
	else
		while ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
			   *s == '_' || *s == '$' || (unsigned char) *s >= 0x80)
			dts_buf_append(&b, s++, 1);
	if (b.len == 0)
	{
		dts_buf_free(&b);
		return NULL;
	}
	r = dts_strdup(dts_buf_str(&b));
	dts_buf_free(&b);
	*p = s;
	return r;
}

/* Skips the keyword kw (and the blanks after it) at *p, if it is there */
static bool
skip_word(const char **p, const char *kw)
{
	size_t		n = strlen(kw);

	while (**p == ' ' || **p == '\n' || **p == '\t')
		(*p)++;
	if (strncmp(*p, kw, n) != 0 || ((*p)[n] != ' ' && (*p)[n] != '\n'))
		return false;
	*p += n;
	while (**p == ' ' || **p == '\n' || **p == '\t')
		(*p)++;
	return true;
}

/*
 * The table an INDEX or CONSTRAINT entry is on, from the statement
 * pg_dump writes for it ("CREATE [UNIQUE] INDEX i ON [ONLY] s.t ...",
 * "ALTER TABLE [ONLY] s.t ADD CONSTRAINT ..."); left NULL when the text
 * is not of that form (the entry then is only built in post-data).
 */
static void
entry_table(PostEntry *e)
{
	const char *p = dts_buf_str(&e->body);
	char	   *name = NULL;

	/* past the header comment lines */
	while (*p == '-' || *p == '\n')
	{
		if (*p == '-')
			p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
	if (skip_word(&p, "CREATE"))
	{
		skip_word(&p, "UNIQUE");
		if (!skip_word(&p, "INDEX") || (name = read_ident(&p)) == NULL ||
			!skip_word(&p, "ON"))
			goto out;
		skip_word(&p, "ONLY");
	}
	else if (skip_word(&p, "ALTER") && skip_word(&p, "TABLE"))
		skip_word(&p, "ONLY");
	else
		goto out;
	e->schema = read_ident(&p);
	if (e->schema == NULL || *p != '.')
		goto out;
	p++;
	e->table = read_ident(&p);
out:
	free(name);
	if (e->table == NULL)
	{
		free(e->schema);
		e->schema = NULL;
	}
}

/* Splits the restored script into pd's entries and its sequential part */
static void
split_post_data(PostData *pd, const DtsBuf *sql)
{
	DtsBuf		state = {0};
	const char *p = sql->data ? sql->data : "";
	PostEntry  *cur = NULL;

	while (*p)
	{
		size_t		n = strcspn(p, "\n");
		char	   *line = dts_strndup(p, n);

		p += n + (p[n] == '\n');
		if (strncmp(line, "-- Name: ", 9) == 0)
		{
			const char *t = strstr(line, "; Type: ");
			size_t		tl;

			pd->entries = dts_realloc(pd->entries,
									  (pd->n + 1) * sizeof(PostEntry));
			cur = &pd->entries[pd->n++];
			memset(cur, 0, sizeof(*cur));
			cur->header = dts_strdup(line + 3);
			t = t ? t + 8 : "";
			tl = strcspn(t, ";");
			cur->type = dts_strndup(t, tl);
			cur->parallel = strcmp(cur->type, "INDEX") == 0 ||
				strcmp(cur->type, "CONSTRAINT") == 0;
			if (cur->parallel)
				dts_buf_printf(&cur->state, "%s", dts_buf_str(&state));
		}
		if (is_session_setting(line))
		{
			dts_buf_printf(&state, "%s\n", line);
			dts_buf_printf(&pd->sequential, "%s\n", line);
		}
		else if (cur && cur->parallel)
			dts_buf_printf(&cur->body, "%s\n", line);
		else
			dts_buf_printf(&pd->sequential, "%s\n", line);
		free(line);
	}
	for (int i = 0; i < pd->n; i++)
	{
		pd->nparallel += pd->entries[i].parallel;
		if (pd->entries[i].parallel)
			entry_table(&pd->entries[i]);
	}
	dts_buf_free(&state);
}

static void
post_data_free(PostData *pd)
{
	for (int i = 0; i < pd->n; i++)
	{
		free(pd->entries[i].header);
		free(pd->entries[i].type);
		free(pd->entries[i].schema);
		free(pd->entries[i].table);
		dts_buf_free(&pd->entries[i].body);
		dts_buf_free(&pd->entries[i].state);
	}
	free(pd->entries);
	dts_buf_free(&pd->sequential);
}

/* Marks the entries an earlier, interrupted call committed */
static int
post_data_entries_done(PostData *pd, DtsError *err)
{
	const char *params[1] = {pd->ss->task->name};
	PGresult   *res = dts_sync_exec_params(pd->ss->dst,
										   "SELECT pg_catalog.substr(section, "
										   "pg_catalog.length('" POST_ENTRY_PREFIX
										   "') + 1) FROM dts.schema_sync_state "
										   "WHERE task = $1 AND section LIKE '"
										   POST_ENTRY_PREFIX "%'", 1, params,
										   "could not read dts.schema_sync_state",
										   err);

	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		for (int j = 0; j < pd->n; j++)
			if (pd->entries[j].parallel &&
				strcmp(pd->entries[j].header, PQgetvalue(res, i, 0)) == 0)
			{
				pd->entries[j].done = true;
				pd->nskipped++;
			}
	PQclear(res);
	return 0;
}

static void
post_data_fail(PostData *pd, const DtsError *err)
{
	pthread_mutex_lock(&pd->lock);
	if (!pd->failed)
	{
		pd->failed = true;
		pd->err = *err;
	}
	pthread_mutex_unlock(&pd->lock);
}

/* Runs one parallel entry in a transaction of its own on conn */
static int
run_post_entry(PostData *pd, PGconn *conn, const PostEntry *e, DtsError *err)
{
	DtsBuf		sql = {0};
	DtsBuf		section = {0};
	PGresult   *res;
	const char *msg;
	int			rc = 0;

	dts_buf_printf(&section, POST_ENTRY_PREFIX "%s", e->header);
	dts_buf_printf(&sql, "BEGIN;\n%s%s;\nINSERT INTO dts.schema_sync_state "
				   "(task, section) VALUES (", dts_buf_str(&e->state),
				   dts_buf_str(&e->body));
	dts_buf_literal(&sql, pd->ss->task->name);
	dts_buf_printf(&sql, ", ");
	dts_buf_literal(&sql, dts_buf_str(&section));
	dts_buf_printf(&sql, ");\nCOMMIT");
	res = PQexec(conn, dts_buf_str(&sql));
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		dts_error_set(err, PQstatus(conn) == CONNECTION_OK ? DTS_ERROR_FATAL :
					  DTS_ERROR_CONNECT,
					  "could not create the post-data objects of task \"%s\" "
					  "on the destination: %s (at: %s)", pd->ss->task->name,
					  msg ? msg : PQerrorMessage(conn), e->header);
		if (msg && strstr(msg, "could not create unique index"))
			dts_error_hint(err, "The destination's rows break the "
						   "constraint: compare the table with the source "
						   "(pg_dts_ship --verify).");
		rc = -1;
	}
	PQclear(res);
	dts_buf_free(&sql);
	dts_buf_free(&section);
	return rc;
}

/* A destination connection for index builds: post-data's session settings */
static PGconn *
post_data_connect(const char *dst_conninfo, DtsError *err)
{
	PGconn	   *conn = dts_sync_connect(dst_conninfo, APPNAME, "destination",
										err);

	if (conn && dts_sync_run(conn, POST_DATA_SESSION_SQL,
							 "could not set maintenance_work_mem for "
							 "post-data", err) < 0)
	{
		PQfinish(conn);
		conn = NULL;
	}
	return conn;
}

static void *
post_data_worker(void *arg)
{
	PostData   *pd = arg;
	DtsError	err = {0};
	PGconn	   *conn = post_data_connect(pd->ss->dst_conninfo, &err);

	while (conn)
	{
		int			i = -1;

		pthread_mutex_lock(&pd->lock);
		while (!pd->failed && pd->next < pd->n)
		{
			const PostEntry *e = &pd->entries[pd->next++];

			if (e->parallel && !e->done)
			{
				i = (int) (e - pd->entries);
				break;
			}
		}
		pthread_mutex_unlock(&pd->lock);
		if (i < 0 || run_post_entry(pd, conn, &pd->entries[i], &err) < 0)
			break;
	}
	if (err.cls != DTS_ERROR_NONE)
		post_data_fail(pd, &err);
	PQfinish(conn);
	return NULL;
}

/* Builds the parallel entries on jobs connections; 0 or -1 with err set */
static int
run_post_parallel(PostData *pd, int jobs, DtsError *err)
{
	pthread_t  *threads;
	int			started = 0;

	if (jobs > pd->nparallel - pd->nskipped)
		jobs = pd->nparallel - pd->nskipped;
	if (jobs <= 0)
		return 0;
	threads = calloc(jobs, sizeof(pthread_t));
	if (threads == NULL)
		abort();
	pthread_mutex_init(&pd->lock, NULL);
	for (; started < jobs; started++)
		if (pthread_create(&threads[started], NULL, post_data_worker, pd) != 0)
		{
			DtsError	e = {0};

			dts_error_set(&e, DTS_ERROR_OTHER,
						  "could not start a post-data thread");
			post_data_fail(pd, &e);
			break;
		}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	pthread_mutex_destroy(&pd->lock);
	if (pd->failed)
	{
		*err = pd->err;
		return -1;
	}
	return 0;
}

/*
 * How many connections build post-data's indexes at once (the caller
 * applies the task's "parallel.post_data_jobs" or PG_DTS_POST_DATA_JOBS)
 */
static int
post_data_jobs(const SchemaSync *ss)
{
	return ss->opts->post_data_jobs > 0 ? ss->opts->post_data_jobs :
		DTS_POST_DATA_JOBS_DEFAULT;
}

/*
 * Runs the restored post-data script: in one go on the main connection
 * with one job, else the index and constraint entries in parallel first,
 * then the rest there.
 */
static int
run_post_data_script(SchemaSync *ss, const DtsBuf *sql, DtsError *err)
{
	PostData	pd;
	int			jobs = post_data_jobs(ss);
	int			rc = -1;

	memset(&pd, 0, sizeof(pd));
	pd.ss = ss;
	split_post_data(&pd, sql);
	if (jobs <= 1 || pd.nparallel == 0)
	{
		post_data_free(&pd);
		return run_script(ss, sql, "post-data", err);
	}
	if (post_data_entries_done(&pd, err) < 0)
		goto cleanup;
	if (pd.nskipped > 0)
		dts_log_info("schema sync of task \"%s\": %d post-data indexes and "
					 "constraints were built before (during the full sync, "
					 "or by an interrupted call)", ss->task->name, pd.nskipped);
	if (pd.nparallel > pd.nskipped)
		dts_log_info("schema sync of task \"%s\": %d post-data indexes and "
					 "constraints on %d connections, then %d other entries",
					 ss->task->name, pd.nparallel - pd.nskipped,
					 jobs < pd.nparallel - pd.nskipped ? jobs :
					 pd.nparallel - pd.nskipped, pd.n - pd.nparallel);
	if (run_post_parallel(&pd, jobs, err) < 0 ||
		run_script(ss, &pd.sequential, "post-data", err) < 0)
		goto cleanup;
	rc = 0;

cleanup:
	post_data_free(&pd);
	return rc;
}

/* Deletes the parallel entries' rows: post-data is recorded as a whole */
static int
forget_post_entries(SchemaSync *ss, DtsError *err)
{
	DtsBuf		sql = {0};
	int			rc;

	dts_buf_printf(&sql, "DELETE FROM dts.schema_sync_state WHERE task = ");
	dts_buf_literal(&sql, ss->task->name);
	dts_buf_printf(&sql, " AND section LIKE '" POST_ENTRY_PREFIX "%%'");
	rc = run_dst(ss, &sql, "could not update dts.schema_sync_state", err);
	dts_buf_free(&sql);
	return rc;
}

static int
post_data(SchemaSync *ss, DtsError *err)
{
	StrList		exclude = {0},
				drop = {0};
	DtsBuf		sql = {0};
	char		archive[1200];
	int			i,
				rc = -1;

	if (dts_sync_run(ss->dst, POST_DATA_SESSION_SQL,
					 "could not set maintenance_work_mem for post-data", err) < 0)
		goto cleanup;
	if (post_data_excludes(ss, &exclude, err) < 0 ||
		moved_schema_entries(ss, &drop, err) < 0 ||
		make_workdir(ss, err) < 0 ||
		dump(ss, "post-data", NULL, &exclude, archive, sizeof(archive),
			 err) < 0 ||
		restore_sql(ss, archive, "post-data", &drop, &sql, err) < 0 ||
		run_post_data_script(ss, &sql, err) < 0)
		goto cleanup;
	for (i = 0; i < ss->ntables; i++)
		if (!ss->kept[i] && ss->tables[i].mapped &&
			mapped_post_data(ss, &ss->tables[i], err) < 0)
			goto cleanup;
	if (foreign_keys(ss, err) < 0 ||
		forget_post_entries(ss, err) < 0 ||
		record_section(ss, "post-data", err) < 0 ||
		dts_sync_run(ss->dst, "COMMIT", "could not commit the schema sync",
					 err) < 0)
		goto cleanup;
	rc = 0;

cleanup:
	strlist_free(&exclude);
	strlist_free(&drop);
	dts_buf_free(&sql);
	return rc;
}

int
dts_schema_sync_post_data(const DtsTask *task, const char *src_conninfo,
						  const char *dst_conninfo,
						  const DtsSchemaSyncOptions *opts, DtsError *err)
{
	DtsSchemaSyncOptions defaults;
	SchemaSync	ss;
	StrList		kept = {0};
	bool		done = false,
				pre = false;
	int			rc = -1;

	if (opts == NULL)
	{
		dts_schema_sync_options_init(&defaults);
		opts = &defaults;
	}
	memset(&ss, 0, sizeof(ss));
	ss.task = task;
	ss.opts = opts;
	ss.src_conninfo = src_conninfo;
	if (!task->whole_database && task->nrules == 0)
		return 0;
	if (open_sessions(&ss, dst_conninfo, NULL, err) < 0 ||
		section_done(&ss, "post-data", &done, NULL, err) < 0 ||
		section_done(&ss, "pre-data", &pre, &kept, err) < 0)
		goto cleanup;
	if (done)
	{
		dts_log_info("schema sync of task \"%s\": post-data done before",
					 task->name);
		rc = 0;
		goto cleanup;
	}
	if (!pre)
	{
		dts_error_set(err, DTS_ERROR_FATAL, "schema sync of task \"%s\": "
					  "post-data before pre-data", task->name);
		dts_error_hint(err, "Run the pre-data step (dts_schema_sync) first.");
		goto cleanup;
	}
	choose_tool_dir(&ss);
	if (load_tables(&ss, err) < 0)
		goto cleanup;
	mark_kept(&ss, &kept);
	if (post_data(&ss, err) < 0)
		goto cleanup;
	dts_log_info("schema sync of task \"%s\": post-data done", task->name);
	rc = 0;

cleanup:
	strlist_free(&kept);
	close_step(&ss);
	return rc;
}

/* ----------------------------------------------------------------
 *		Post-data during the full sync
 * ----------------------------------------------------------------
 */

/*
 * The indexes and constraints of a table are built as soon as the full
 * sync has copied it, while other tables still copy: post_data_jobs
 * threads, each with its destination connection (opened when it gets its
 * first table), take the tables in the order they are done, one table to
 * a thread.  Tables that end together (equal tables on as many workers)
 * are so built at once, as post-data would build them, instead of one
 * after another.  Before the full sync starts, the post-data is dumped as
 * post-data itself would (the same entries); the threads then take the
 * tables the full sync hands them.  Each entry is built and recorded as
 * in parallel post-data (its own transaction, a 'post-data entry' row),
 * so post-data afterwards skips it.  A failure here is only a warning:
 * post-data builds the entry again and reports it.
 */
struct DtsPostDataEarly
{
	SchemaSync	ss;
	DtsSchemaSyncOptions opts;
	char	   *src_conninfo;
	char	   *dst_conninfo;
	PostData	pd;
	bool		ready;			/* pd holds the entries */
	pthread_t  *threads;
	int			nthreads;
	int			most_busy;		/* the most threads building at once */
	int			busy;			/* under lock, as are the fields below */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char	  **queue;			/* "schema\ttable" of tables copied */
	int			nqueue;
	int			next;
	bool		closing;
	bool		cancel;			/* closing: drop what is still queued */
	int			built;
	int64_t		busy_us;		/* building, summed over the threads */
};

/* Dumps post-data and splits it: ss->dst's transaction is rolled back */
static int
early_prepare(DtsPostDataEarly *e, DtsError *err)
{
	SchemaSync *ss = &e->ss;
	StrList		kept = {0},
				exclude = {0},
				drop = {0};
	DtsBuf		sql = {0};
	bool		done = false,
				pre = false;
	char		archive[1200];
	int			rc = -1;

	if (open_sessions(ss, e->dst_conninfo, NULL, err) < 0 ||
		section_done(ss, "post-data", &done, NULL, err) < 0 ||
		section_done(ss, "pre-data", &pre, &kept, err) < 0)
		goto cleanup;
	if (done || !pre)
	{
		rc = 0;
		goto cleanup;
	}
	choose_tool_dir(ss);
	if (load_tables(ss, err) < 0)
		goto cleanup;
	mark_kept(ss, &kept);
	if (post_data_excludes(ss, &exclude, err) < 0 ||
		moved_schema_entries(ss, &drop, err) < 0 ||
		make_workdir(ss, err) < 0 ||
		dump(ss, "post-data", NULL, &exclude, archive, sizeof(archive),
			 err) < 0 ||
		restore_sql(ss, archive, "post-data", &drop, &sql, err) < 0)
		goto cleanup;
	e->pd.ss = ss;
	split_post_data(&e->pd, &sql);
	if (post_data_entries_done(&e->pd, err) < 0)
		goto cleanup;
	e->ready = true;
	rc = 0;

cleanup:
	strlist_free(&kept);
	strlist_free(&exclude);
	strlist_free(&drop);
	dts_buf_free(&sql);
	close_step(ss);
	return rc;
}

/*
 * Builds the entries of one copied table on *conn (opened when needed).
 * Only this thread touches this table's entries.
 */
static void
early_table(DtsPostDataEarly *e, PGconn **conn, const char *name)
{
	size_t		sl = strcspn(name, "\t");
	const char *table = name[sl] ? name + sl + 1 : "";
	int64_t		t0 = dts_now_us();
	int			built = 0;

	for (int i = 0; i < e->pd.n; i++)
	{
		PostEntry  *pe = &e->pd.entries[i];
		DtsError	err = {0};

		if (!pe->parallel || pe->done || pe->table == NULL ||
			strlen(pe->schema) != sl || strncmp(pe->schema, name, sl) != 0 ||
			strcmp(pe->table, table) != 0)
			continue;
		pe->done = true;		/* tried once here, whatever the outcome */
		if (*conn == NULL)
			*conn = post_data_connect(e->dst_conninfo, &err);
		if (*conn == NULL || run_post_entry(&e->pd, *conn, pe, &err) < 0)
		{
			dts_log_warning("schema sync of task \"%s\": building %s during "
							"the full sync failed (post-data tries again): %s",
							e->ss.task->name, pe->header, err.msg);
			if (*conn && PQstatus(*conn) != CONNECTION_OK)
			{
				PQfinish(*conn);
				*conn = NULL;
			}
			continue;
		}
		built++;
	}
	pthread_mutex_lock(&e->lock);
	e->built += built;
	e->busy_us += dts_now_us() - t0;
	pthread_mutex_unlock(&e->lock);
}

static void *
early_main(void *arg)
{
	DtsPostDataEarly *e = arg;
	PGconn	   *conn = NULL;

	for (;;)
	{
		char	   *name = NULL;

		pthread_mutex_lock(&e->lock);
		while (e->next == e->nqueue && !e->closing)
			pthread_cond_wait(&e->cond, &e->lock);
		if (e->next < e->nqueue && !e->cancel)
		{
			name = e->queue[e->next++];
			if (++e->busy > e->most_busy)
				e->most_busy = e->busy;
		}
		pthread_mutex_unlock(&e->lock);
		if (name == NULL)
			break;				/* closing, queue empty */
		if (e->ready)
			early_table(e, &conn, name);
		pthread_mutex_lock(&e->lock);
		e->busy--;
		pthread_mutex_unlock(&e->lock);
	}
	PQfinish(conn);
	return NULL;
}

/* Frees what dts_post_data_early_start allocated (no thread runs any more) */
static void
early_free(DtsPostDataEarly *e)
{
	post_data_free(&e->pd);
	free(e->threads);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e->src_conninfo);
	free(e->dst_conninfo);
	free(e);
}

DtsPostDataEarly *
dts_post_data_early_start(const DtsTask *task, const char *src_conninfo,
						  const char *dst_conninfo,
						  const DtsSchemaSyncOptions *opts)
{
	DtsPostDataEarly *e;
	DtsError	err = {0};

	if (!task->whole_database && task->nrules == 0)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		abort();
	if (opts)
		e->opts = *opts;
	e->opts.snapshot = NULL;
	e->src_conninfo = dts_strdup(src_conninfo);
	e->dst_conninfo = dts_strdup(dst_conninfo);
	e->ss.task = task;
	e->ss.opts = &e->opts;
	e->ss.src_conninfo = e->src_conninfo;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	/*
	 * post_data_jobs 1 asks for the whole post-data script in one
	 * transaction (run_post_data_script()), which builds every entry
	 * itself: none may be built before.
	 */
	if (post_data_jobs(&e->ss) <= 1)
	{
		early_free(e);
		return NULL;
	}
	/*
	 * The dump is made here, before the full sync starts: its source
	 * connections (ours and pg_dump's) are closed again before the full
	 * sync opens its own, so the source never sees more connections at
	 * once than before.
	 */
	if (early_prepare(e, &err) < 0)
		dts_log_warning("schema sync of task \"%s\": could not prepare the "
						"index builds during the full sync (post-data builds "
						"them all): %s", task->name, err.msg);
	if (!e->ready || e->pd.nparallel == e->pd.nskipped)
	{
		early_free(e);
		return NULL;
	}
	e->threads = calloc(post_data_jobs(&e->ss), sizeof(pthread_t));
	if (e->threads == NULL)
		abort();
	while (e->nthreads < post_data_jobs(&e->ss) &&
		   pthread_create(&e->threads[e->nthreads], NULL, early_main, e) == 0)
		e->nthreads++;
	if (e->nthreads == 0)
	{
		early_free(e);
		return NULL;
	}
	return e;
}

void
dts_post_data_early_table(void *arg, const char *dst_schema,
						  const char *dst_table)
{
	DtsPostDataEarly *e = arg;
	DtsBuf		b = {0};

	if (e == NULL)
		return;
	dts_buf_printf(&b, "%s\t%s", dst_schema, dst_table);
	pthread_mutex_lock(&e->lock);
	e->queue = dts_realloc(e->queue, (e->nqueue + 1) * sizeof(char *));
	e->queue[e->nqueue++] = dts_strdup(dts_buf_str(&b));
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	dts_buf_free(&b);
}

void
dts_post_data_early_finish(DtsPostDataEarly *e, bool build_queued)
{
	int64_t		t0 = dts_now_us();

	if (e == NULL)
		return;
	pthread_mutex_lock(&e->lock);
	e->closing = true;
	e->cancel = !build_queued;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	for (int i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	if (e->built > 0)
		dts_log_info("schema sync of task \"%s\": %d indexes and constraints "
					 "built during the full sync took %.1f s, %d table%s at "
					 "once at most (%.1f s after the copy)", e->ss.task->name,
					 e->built, e->busy_us / 1e6, e->most_busy,
					 e->most_busy == 1 ? "" : "s", (dts_now_us() - t0) / 1e6);
	for (int i = 0; i < e->nqueue; i++)
		free(e->queue[i]);
	free(e->queue);
	early_free(e);
}

/*-------------------------------------------------------------------------
 *
 * task.c
 *	  Loads a pg_dts_ship task file (JSON, described in docs/task.md) into a
 *	  DtsTask, stopping at the first mistake with its JSON path and what was
 *	  expected, and turns the task's object selection into the plugin
 *	  options (include_tables, table_rules) that make the server filter.
 *
 * The loader never connects to anything: every check here is about the
 * file itself.  Whether the selected tables exist, and whether the filters
 * parse, is precheck.c's business.
 *
 * Identifiers (schema, table and column names) are taken literally: they
 * are case-sensitive names, never SQL, and are double-quoted whenever they
 * are passed on to the plugin.
 *
 * shipper/task.c
 *
 *-------------------------------------------------------------------------
 */
#include "task.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <libpq-fe.h>

/* A PostgreSQL identifier holds at most NAMEDATALEN - 1 bytes */
#define DTS_IDENT_MAX_BYTES 63

/* Longest JSON path in a message; longer ones are cut */
#define DTS_PATH_LEN 1024

/* Longest key the "did you mean" suggestion compares */
#define DTS_SUGGEST_MAX_LEN 64

/* Limits of the numeric settings */
#define DTS_MAX_INTERVAL_S		3600
#define DTS_MAX_RETRY_MINUTES	10080	/* one week */
#define DTS_MAX_ROWS_PER_S		1e9
#define DTS_MAX_MB_PER_S		1e6
#define DTS_MAX_PARALLEL		64	/* connections of one kind */

/* The state of one load: where the task goes and where errors go */
typedef struct TaskParser
{
	DtsTask    *task;
	char	   *err;
	size_t		errlen;
} TaskParser;

/* A growing string for the plugin options; oom is sticky */
typedef struct StrBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		oom;
} StrBuf;

static const char *const top_keys[] = {
	"name", "source", "slot", "sink", "objects", "heartbeat_interval",
	"status_interval", "retry", "throttle", "parallel", "sync", NULL
};
static const char *const source_keys[] = {"conninfo", NULL};
static const char *const file_sink_keys[] = {
	"type", "path", "fsync_interval", "begin_commit", NULL
};
static const char *const schema_keys[] = {
	"name", "all", "tables", "dml_op", NULL
};
static const char *const table_keys[] = {
	"name", "all", "columns", "filter", "dml_op", NULL
};
static const char *const column_keys[] = {"name", NULL};
static const char *const retry_keys[] = {
	"connection_minutes", "other_minutes", NULL
};
static const char *const throttle_keys[] = {
	"rows_per_second", "mb_per_second", NULL
};
static const char *const parallel_keys[] = {
	"full_sync_workers", "post_data_jobs", "early_indexes", "freeze",
	"chunked_copy", NULL
};

static const char *const dml_words[] = {
	"insert", "update", "delete", "truncate"
};
static const unsigned dml_bits[] = {
	DTS_DML_INSERT, DTS_DML_UPDATE, DTS_DML_DELETE, DTS_DML_TRUNCATE
};

static const char *const sink_names[] = {"file", "kafka", "pg", "maxcompute"};
static const char *const phase_names[] = {"schema", "full", "incremental"};

/* What dts_task_find_rule() answers for a whole-database task */
static const DtsTableRule whole_database_rule = {
	NULL, NULL, NULL, NULL, NULL, 0, NULL, DTS_DML_ALL
};

#define DML_EXPECTED \
	"a comma-separated list (or an array) of \"insert\", \"update\", " \
	"\"delete\", \"truncate\""

/* ----------------------------------------------------------------
 *		Errors and JSON paths
 * ----------------------------------------------------------------
 */

/*
 * Writes "<path>: <message>" into the parser's error buffer and returns -1,
 * so that a failing check is one line: return parse_error(...).
 */
static int
parse_error(TaskParser *p, const char *path, const char *fmt,...)
{
	va_list		ap;
	size_t		used;
	int			n;

	n = snprintf(p->err, p->errlen, "%s: ", path[0] ? path : "top level");
	used = (n > 0 && (size_t) n < p->errlen) ? (size_t) n : p->errlen;
	if (used < p->errlen)
	{
		va_start(ap, fmt);
		vsnprintf(p->err + used, p->errlen - used, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Is s a plain key that a path can show after a dot? */
static bool
is_plain_key(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (s++; *s; s++)
	{
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			  (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	}
	return true;
}

/* Ends a path that snprintf() cut (it wanted n bytes) with "..." */
static void
path_mark_cut(char *dst, int n)
{
	if (n >= DTS_PATH_LEN)
		memcpy(dst + DTS_PATH_LEN - 4, "...", 4);
}

/*
 * dst = parent + the member key: ".key" for plain keys, otherwise
 * ["key"] with the key as a JSON string (quotes and controls escaped).
 * dst holds DTS_PATH_LEN bytes; a longer path is cut.
 */
static void
path_key(char *dst, const char *parent, const char *key)
{
	int			n;

	if (is_plain_key(key))
		n = snprintf(dst, DTS_PATH_LEN, "%s%s%s", parent,
					 parent[0] ? "." : "", key);
	else
	{
		json_t	   *s = json_string(key);
		char	   *quoted = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

		n = snprintf(dst, DTS_PATH_LEN, "%s[%s]", parent,
					 quoted ? quoted : "?");
		free(quoted);
		json_decref(s);
	}
	path_mark_cut(dst, n);
}

/* dst = parent + "[index]" */
static void
path_index(char *dst, const char *parent, size_t index)
{
	path_mark_cut(dst, snprintf(dst, DTS_PATH_LEN, "%s[%zu]", parent, index));
}

/* "a string", "an object", ... for "expected X, got Y" */
static const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v))
	{
		case JSON_OBJECT:
			return "an object";
		case JSON_ARRAY:
			return "an array";
		case JSON_STRING:
			return "a string";
		case JSON_INTEGER:
		case JSON_REAL:
			return "a number";
		case JSON_TRUE:
			return "true";
		case JSON_FALSE:
			return "false";
		case JSON_NULL:
			return "null";
	}
	return "a value";
}

/* Levenshtein distance of two short strings, ignoring case */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);
	size_t		row[DTS_SUGGEST_MAX_LEN + 1];
	size_t		i,
				j;

	if (la > DTS_SUGGEST_MAX_LEN || lb > DTS_SUGGEST_MAX_LEN)
		return (size_t) -1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++)
	{
		size_t		diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++)
		{
			size_t		up = row[j];
			char		ca = a[i - 1] | 0x20;
			char		cb = b[j - 1] | 0x20;
			size_t		best = diag + (ca == cb ? 0 : 1);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Is one of a and b, of at least 3 characters, a prefix of the other? */
static bool
is_prefix(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);
	size_t		n = la < lb ? la : lb;

	return n >= 3 && strncasecmp(a, b, n) == 0;
}

/*
 * Rejects any key of obj that is not in allowed (NULL-terminated), with a
 * "did you mean" for a close allowed key and the list of allowed keys.
 */
static int
check_keys(TaskParser *p, const char *path, json_t *obj,
		   const char *const *allowed)
{
	const char *key;
	json_t	   *value;

	json_object_foreach(obj, key, value)
	{
		const char *closest = NULL;
		size_t		best = 3;	/* suggest at a distance of 2 or less */
		char		keypath[DTS_PATH_LEN];
		char		list[512];
		size_t		used = 0;
		bool		known = false;
		int			i;

		for (i = 0; allowed[i] != NULL; i++)
		{
			size_t		d;

			if (strcmp(key, allowed[i]) == 0)
			{
				known = true;
				break;
			}
			d = edit_distance(key, allowed[i]);
			if (is_prefix(key, allowed[i]) && d > 1)
				d = 1;			/* "dml" for "dml_op" */
			if (d < best)
			{
				best = d;
				closest = allowed[i];
			}
		}
		if (known)
			continue;

		list[0] = '\0';
		for (i = 0; allowed[i] != NULL && used < sizeof(list); i++)
			used += snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
							 i > 0 ? ", " : "", allowed[i]);
		path_key(keypath, path, key);
		if (closest)
			return parse_error(p, keypath,
							   "unknown key (did you mean \"%s\"?); expected one of %s",
							   closest, list);
		return parse_error(p, keypath, "unknown key; expected one of %s",
						   list);
	}
	return 0;
}

/* ----------------------------------------------------------------
 *		Typed values
 * ----------------------------------------------------------------
 */

/* A malloc'd copy of s, or NULL with an error */
static char *
copy_string(TaskParser *p, const char *path, const char *s)
{
	char	   *copy = strdup(s);

	if (copy == NULL)
		parse_error(p, path, "out of memory");
	return copy;
}

/* *out = the string v (owned by the JSON tree), non-empty */
static int
get_string(TaskParser *p, const char *path, json_t *v, const char **out)
{
	if (!json_is_string(v))
		return parse_error(p, path, "expected a string, got %s",
						   json_kind(v));
	if (json_string_length(v) == 0)
		return parse_error(p, path, "expected a non-empty string");
	*out = json_string_value(v);
	return 0;
}

/* *out = a malloc'd copy of the non-empty string v */
static int
get_string_copy(TaskParser *p, const char *path, json_t *v, char **out)
{
	const char *s;

	if (get_string(p, path, v, &s) < 0)
		return -1;
	free(*out);
	*out = copy_string(p, path, s);
	return *out ? 0 : -1;
}

/*
 * Checks that name, a source identifier read at path, fits a PostgreSQL
 * name; what describes it ("schema", "table", "column").
 */
static int
check_ident(TaskParser *p, const char *path, const char *what,
			const char *name)
{
	if (name[0] == '\0')
		return parse_error(p, path, "expected a %s name, got an empty key",
						   what);
	if (strlen(name) > DTS_IDENT_MAX_BYTES)
		return parse_error(p, path,
						   "%s name is %zu bytes long; PostgreSQL names hold at most %d bytes",
						   what, strlen(name), DTS_IDENT_MAX_BYTES);
	return 0;
}

static int
get_bool(TaskParser *p, const char *path, json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return parse_error(p, path, "expected true or false, got %s",
						   json_kind(v));
	*out = json_is_true(v);
	return 0;
}

/* Same as get_bool(), for a setting that may be left out (DtsSwitch) */
static int
get_switch(TaskParser *p, const char *path, json_t *v, DtsSwitch *out)
{
	bool		on = false;

	if (get_bool(p, path, v, &on) < 0)
		return -1;
	*out = on ? DTS_SWITCH_ON : DTS_SWITCH_OFF;
	return 0;
}

/*
 * *out = the number v, which must lie in [min, max] and, if integral, have
 * no fraction; unit describes it ("seconds").
 */
static int
get_number(TaskParser *p, const char *path, json_t *v, double min,
		   double max, bool integral, const char *unit, double *out)
{
	double		d;

	if (!json_is_number(v))
		return parse_error(p, path, "expected %s of %s from %g to %g, got %s",
						   integral ? "an integer number" : "a number",
						   unit, min, max, json_kind(v));
	d = json_number_value(v);
	if (!(d >= min && d <= max))
		return parse_error(p, path,
						   "%g is out of range; expected %s from %g to %g",
						   d, unit, min, max);
	/* in range, so the cast is defined */
	if (integral && d != (double) (long long) d)
		return parse_error(p, path,
						   "expected an integer number of %s from %g to %g, got %g",
						   unit, min, max, d);
	*out = d;
	return 0;
}

/* Same as get_number(), for an int */
static int
get_int(TaskParser *p, const char *path, json_t *v, int min, int max,
		const char *unit, int *out)
{
	double		d;

	if (get_number(p, path, v, min, max, true, unit, &d) < 0)
		return -1;
	*out = (int) d;
	return 0;
}

/* Seconds (fractions allowed) read as milliseconds */
static int
get_interval_ms(TaskParser *p, const char *path, json_t *v, int *out)
{
	double		d;

	if (get_number(p, path, v, 0, DTS_MAX_INTERVAL_S, false, "seconds",
				   &d) < 0)
		return -1;
	*out = (int) (d * 1000.0 + 0.5);	/* d >= 0 */
	return 0;
}

/* Is s a valid replication slot name ([a-z0-9_], 1 to 63 bytes)? */
static bool
is_slot_name(const char *s)
{
	size_t		len = strlen(s);

	if (len == 0 || len > DTS_IDENT_MAX_BYTES)
		return false;
	for (; *s; s++)
	{
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
			  *s == '_'))
			return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 *		Top-level scalars: name, slot, source, sink
 * ----------------------------------------------------------------
 */

static int
parse_name(TaskParser *p, json_t *v)
{
	const char *name;
	const char *c;

	if (get_string(p, "name", v, &name) < 0)
		return -1;
	if (strlen(name) > DTS_TASK_NAME_MAX)
		return parse_error(p, "name",
						   "\"%s\" is %zu characters long; expected at most %d, so that the slot name dts_sync_<name> fits",
						   name, strlen(name), DTS_TASK_NAME_MAX);
	for (c = name; *c; c++)
	{
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '_'))
			return parse_error(p, "name",
							   "\"%s\" has a character other than letters A-Z, a-z, digits and \"_\"",
							   name);
	}
	return get_string_copy(p, "name", v, &p->task->name);
}

static int
parse_slot(TaskParser *p, json_t *v)
{
	const char *slot;

	if (get_string(p, "slot", v, &slot) < 0)
		return -1;
	if (!is_slot_name(slot))
		return parse_error(p, "slot",
						   "\"%s\" is not a replication slot name; expected lower-case letters, digits and \"_\", at most %d characters",
						   slot, DTS_IDENT_MAX_BYTES);
	return get_string_copy(p, "slot", v, &p->task->slot);
}

/*
 * Checks a conninfo with libpq's own parser.  libpq's message is shown
 * only when the conninfo cannot hold a password (no "password" keyword and
 * no URI user info): its messages quote the text they choke on.
 */
static int
check_conninfo(TaskParser *p, const char *path, const char *conninfo)
{
	PQconninfoOption *opts;
	char	   *errmsg = NULL;
	size_t		len;

	opts = PQconninfoParse(conninfo, &errmsg);
	if (opts != NULL)
	{
		PQconninfoFree(opts);
		return 0;
	}
	if (errmsg == NULL)
		return parse_error(p, path, "out of memory");
	len = strlen(errmsg);
	while (len > 0 && errmsg[len - 1] == '\n')
		errmsg[--len] = '\0';
	if (strstr(conninfo, "password") == NULL && strchr(conninfo, '@') == NULL)
		parse_error(p, path, "not a valid libpq connection string: %s",
					errmsg);
	else
		parse_error(p, path,
					"not a valid libpq connection string (libpq's message is not shown because the string may hold a password)");
	PQfreemem(errmsg);
	return -1;
}

static int
parse_source(TaskParser *p, json_t *v)
{
	json_t	   *conninfo;

	if (!json_is_object(v))
		return parse_error(p, "source", "expected an object, got %s",
						   json_kind(v));
	if (check_keys(p, "source", v, source_keys) < 0)
		return -1;
	conninfo = json_object_get(v, "conninfo");
	if (conninfo == NULL)
		return 0;				/* -d gives it; dts_task_finish() checks */
	if (get_string_copy(p, "source.conninfo", conninfo,
						&p->task->source_conninfo) < 0)
		return -1;
	return check_conninfo(p, "source.conninfo", p->task->source_conninfo);
}

/* The keys of a file sink */
static int
parse_file_sink(TaskParser *p, json_t *v)
{
	DtsTask    *task = p->task;
	json_t	   *item;

	if (check_keys(p, "sink", v, file_sink_keys) < 0)
		return -1;
	if ((item = json_object_get(v, "path")) != NULL &&
		get_string_copy(p, "sink.path", item, &task->file_path) < 0)
		return -1;
	if ((item = json_object_get(v, "fsync_interval")) != NULL &&
		get_interval_ms(p, "sink.fsync_interval", item,
						&task->fsync_interval_ms) < 0)
		return -1;
	if ((item = json_object_get(v, "begin_commit")) != NULL &&
		get_bool(p, "sink.begin_commit", item, &task->begin_commit_lines) < 0)
		return -1;
	return 0;
}

/*
 * "sink": its type, the file sink's keys, and the whole object as JSON
 * text for the sinks that check their own keys.
 */
static int
parse_sink(TaskParser *p, json_t *v)
{
	json_t	   *type;
	int			i;

	if (!json_is_object(v))
		return parse_error(p, "sink", "expected an object, got %s",
						   json_kind(v));
	type = json_object_get(v, "type");
	p->task->sink = DTS_SINK_FILE;
	if (type != NULL)
	{
		const char *name;

		if (get_string(p, "sink.type", type, &name) < 0)
			return -1;
		for (i = 0; i < (int) (sizeof(sink_names) / sizeof(sink_names[0])); i++)
			if (strcmp(name, sink_names[i]) == 0)
				break;
		if (i == (int) (sizeof(sink_names) / sizeof(sink_names[0])))
			return parse_error(p, "sink.type",
							   "unknown sink \"%s\"; expected \"file\", \"kafka\", \"pg\" or \"maxcompute\"",
							   name);
		p->task->sink = (DtsSinkKind) i;
	}
	p->task->sink_json = json_dumps(v, JSON_COMPACT);
	if (p->task->sink_json == NULL)
		return parse_error(p, "sink", "out of memory");
	if (p->task->sink == DTS_SINK_FILE)
		return parse_file_sink(p, v);
	return 0;
}

/* ----------------------------------------------------------------
 *		Timing, retry, throttling, parallelism, phases
 * ----------------------------------------------------------------
 */

static int
parse_retry(TaskParser *p, json_t *v)
{
	json_t	   *item;

	if (!json_is_object(v))
		return parse_error(p, "retry", "expected an object, got %s",
						   json_kind(v));
	if (check_keys(p, "retry", v, retry_keys) < 0)
		return -1;
	if ((item = json_object_get(v, "connection_minutes")) != NULL &&
		get_int(p, "retry.connection_minutes", item, 0, DTS_MAX_RETRY_MINUTES,
				"minutes", &p->task->retry_connect_minutes) < 0)
		return -1;
	if ((item = json_object_get(v, "other_minutes")) != NULL &&
		get_int(p, "retry.other_minutes", item, 0, DTS_MAX_RETRY_MINUTES,
				"minutes", &p->task->retry_other_minutes) < 0)
		return -1;
	return 0;
}

static int
parse_throttle(TaskParser *p, json_t *v)
{
	json_t	   *item;

	if (!json_is_object(v))
		return parse_error(p, "throttle", "expected an object, got %s",
						   json_kind(v));
	if (check_keys(p, "throttle", v, throttle_keys) < 0)
		return -1;
	if ((item = json_object_get(v, "rows_per_second")) != NULL &&
		get_number(p, "throttle.rows_per_second", item, 0, DTS_MAX_ROWS_PER_S,
				   false, "rows per second", &p->task->max_rows_per_s) < 0)
		return -1;
	if ((item = json_object_get(v, "mb_per_second")) != NULL &&
		get_number(p, "throttle.mb_per_second", item, 0, DTS_MAX_MB_PER_S,
				   false, "MB per second", &p->task->max_mb_per_s) < 0)
		return -1;
	return 0;
}

/*
 * "parallel": how many destination connections the full sync copies on
 * and post-data builds indexes on, each 1..DTS_MAX_PARALLEL; left out =
 * 0, the defaults of full_sync.h and schema_sync.h.  Also two booleans
 * about what the full sync does on the destination while it copies:
 * "early_indexes" (indexes built as each table is copied, on connections
 * of their own) and "freeze" (TRUNCATE + COPY ... FREEZE, under an ACCESS
 * EXCLUSIVE lock), and one about the source: "chunked_copy" (the rows
 * served by dts.copy_rows() when the source has it); left out =
 * DTS_SWITCH_UNSET.
 */
static int
parse_parallel(TaskParser *p, json_t *v)
{
	json_t	   *item;

	if (!json_is_object(v))
		return parse_error(p, "parallel", "expected an object, got %s",
						   json_kind(v));
	if (check_keys(p, "parallel", v, parallel_keys) < 0)
		return -1;
	if ((item = json_object_get(v, "full_sync_workers")) != NULL &&
		get_int(p, "parallel.full_sync_workers", item, 1, DTS_MAX_PARALLEL,
				"workers", &p->task->full_sync_workers) < 0)
		return -1;
	if ((item = json_object_get(v, "post_data_jobs")) != NULL &&
		get_int(p, "parallel.post_data_jobs", item, 1, DTS_MAX_PARALLEL,
				"jobs", &p->task->post_data_jobs) < 0)
		return -1;
	if ((item = json_object_get(v, "early_indexes")) != NULL &&
		get_switch(p, "parallel.early_indexes", item,
				   &p->task->early_indexes) < 0)
		return -1;
	if ((item = json_object_get(v, "freeze")) != NULL &&
		get_switch(p, "parallel.freeze", item, &p->task->freeze) < 0)
		return -1;
	if ((item = json_object_get(v, "chunked_copy")) != NULL &&
		get_switch(p, "parallel.chunked_copy", item,
				   &p->task->chunked_copy) < 0)
		return -1;
	return 0;
}

/* "sync": a non-empty subset of schema, full, incremental, in that order */
static int
parse_sync(TaskParser *p, json_t *v)
{
	DtsTask    *task = p->task;
	size_t		i;
	json_t	   *item;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return parse_error(p, "sync",
						   "expected a non-empty array of \"schema\", \"full\", \"incremental\" (in that order), got %s",
						   json_is_array(v) ? "an empty array" : json_kind(v));
	task->nsync = 0;
	json_array_foreach(v, i, item)
	{
		char		path[DTS_PATH_LEN];
		const char *word;
		int			phase;

		path_index(path, "sync", i);
		if (get_string(p, path, item, &word) < 0)
			return -1;
		for (phase = 0; phase < DTS_SYNC_MAX_PHASES; phase++)
			if (strcmp(word, phase_names[phase]) == 0)
				break;
		if (phase == DTS_SYNC_MAX_PHASES)
			return parse_error(p, path,
							   "unknown phase \"%s\"; expected \"schema\", \"full\" or \"incremental\"",
							   word);
		if (task->nsync > 0 && (int) task->sync[task->nsync - 1] >= phase)
			return parse_error(p, path,
							   "\"%s\" %s; the phases run in the order \"schema\", \"full\", \"incremental\", each at most once",
							   word,
							   (int) task->sync[task->nsync - 1] == phase ?
							   "is repeated" : "comes too late");
		task->sync[task->nsync++] = (DtsSyncPhase) phase;
	}
	return 0;
}

/* ----------------------------------------------------------------
 *		Objects: schemas, tables, columns, filters, DML operations
 * ----------------------------------------------------------------
 */

/* Adds one DML word (case ignored, blanks trimmed) to *mask */
static int
add_dml_word(TaskParser *p, const char *path, const char *word, size_t len,
			 unsigned *mask)
{
	size_t		i;

	while (len > 0 && (*word == ' ' || *word == '\t'))
	{
		word++;
		len--;
	}
	while (len > 0 && (word[len - 1] == ' ' || word[len - 1] == '\t'))
		len--;
	for (i = 0; i < sizeof(dml_words) / sizeof(dml_words[0]); i++)
	{
		if (len == strlen(dml_words[i]) &&
			strncasecmp(word, dml_words[i], len) == 0)
		{
			*mask |= dml_bits[i];
			return 0;
		}
	}
	if (len == 0)
		return parse_error(p, path, "empty operation; expected "
						   DML_EXPECTED);
	return parse_error(p, path, "\"%.*s\" is not a DML operation; expected "
					   DML_EXPECTED, (int) len, word);
}

/* "dml_op": "insert,update" or ["insert", "update"] into *mask */
static int
parse_dml(TaskParser *p, const char *path, json_t *v, unsigned *mask)
{
	*mask = 0;
	if (json_is_string(v))
	{
		const char *s = json_string_value(v);

		for (;;)
		{
			const char *comma = strchr(s, ',');
			size_t		len = comma ? (size_t) (comma - s) : strlen(s);

			if (add_dml_word(p, path, s, len, mask) < 0)
				return -1;
			if (comma == NULL)
				break;
			s = comma + 1;
		}
	}
	else if (json_is_array(v) && json_array_size(v) > 0)
	{
		size_t		i;
		json_t	   *item;

		json_array_foreach(v, i, item)
		{
			char		ipath[DTS_PATH_LEN];

			path_index(ipath, path, i);
			if (!json_is_string(item))
				return parse_error(p, ipath, "expected a string, got %s",
								   json_kind(item));
			if (add_dml_word(p, ipath, json_string_value(item),
							 json_string_length(item), mask) < 0)
				return -1;
		}
	}
	else
		return parse_error(p, path, "expected " DML_EXPECTED ", got %s",
						   json_is_array(v) ? "an empty array" :
						   json_kind(v));
	return 0;
}

/* A new zeroed rule at the end of the task's rules */
static DtsTableRule *
add_rule(TaskParser *p, const char *path)
{
	DtsTask    *task = p->task;
	DtsTableRule *rules;

	rules = realloc(task->rules, (task->nrules + 1) * sizeof(DtsTableRule));
	if (rules == NULL)
	{
		parse_error(p, path, "out of memory");
		return NULL;
	}
	task->rules = rules;
	memset(&rules[task->nrules], 0, sizeof(DtsTableRule));
	return &rules[task->nrules++];
}

/* Two selected columns must not end up with the same name at the sink */
static int
check_column_targets(TaskParser *p, const char *path, const DtsTableRule *rule)
{
	int			i,
				j;

	for (i = 0; i < rule->ncolumns; i++)
	{
		const char *ti = rule->columns[i].new_name ? rule->columns[i].new_name :
		rule->columns[i].name;

		for (j = 0; j < i; j++)
		{
			const char *tj = rule->columns[j].new_name ?
			rule->columns[j].new_name : rule->columns[j].name;

			if (strcmp(ti, tj) == 0)
			{
				char		cpath[DTS_PATH_LEN];

				path_key(cpath, path, rule->columns[i].name);
				return parse_error(p, cpath,
								   "its name at the sink, \"%s\", is also that of column \"%s\"; expected distinct names",
								   ti, rule->columns[j].name);
			}
		}
	}
	return 0;
}

/* One entry of an object-form "columns": {"name": "<new name>"} or {} */
static int
parse_column_object(TaskParser *p, const char *path, json_t *v,
					DtsColumnRule *col)
{
	json_t	   *name;

	if (!json_is_object(v))
		return parse_error(p, path, "expected an object, got %s",
						   json_kind(v));
	if (check_keys(p, path, v, column_keys) < 0)
		return -1;
	name = json_object_get(v, "name");
	if (name != NULL)
	{
		char		npath[DTS_PATH_LEN];

		path_key(npath, path, "name");
		if (get_string_copy(p, npath, name, &col->new_name) < 0)
			return -1;
	}
	return 0;
}

/*
 * "columns": {"col": {"name": "new"}, ...} or ["col", ...], non-empty,
 * into rule->columns.
 */
static int
parse_columns(TaskParser *p, const char *path, json_t *v, DtsTableRule *rule)
{
	size_t		n;
	size_t		i;
	json_t	   *item;
	const char *key;

	if (!(json_is_object(v) || json_is_array(v)))
		return parse_error(p, path,
						   "expected an object of columns ({\"col\": {\"name\": \"new name\"}}) or an array of column names, got %s",
						   json_kind(v));
	n = json_is_object(v) ? json_object_size(v) : json_array_size(v);
	if (n == 0)
		return parse_error(p, path,
						   "selects no column; expected at least one, or leave \"columns\" out to select them all");
	rule->columns = calloc(n, sizeof(DtsColumnRule));
	if (rule->columns == NULL)
		return parse_error(p, path, "out of memory");

	if (json_is_object(v))
	{
		json_object_foreach(v, key, item)
		{
			DtsColumnRule *col = &rule->columns[rule->ncolumns];
			char		cpath[DTS_PATH_LEN];

			path_key(cpath, path, key);
			if (check_ident(p, cpath, "column", key) < 0)
				return -1;
			if ((col->name = copy_string(p, cpath, key)) == NULL)
				return -1;
			rule->ncolumns++;
			if (parse_column_object(p, cpath, item, col) < 0)
				return -1;
		}
	}
	else
	{
		json_array_foreach(v, i, item)
		{
			DtsColumnRule *col = &rule->columns[rule->ncolumns];
			char		cpath[DTS_PATH_LEN];
			int			j;

			path_index(cpath, path, i);
			if (!json_is_string(item))
				return parse_error(p, cpath,
								   "expected a column name, got %s",
								   json_kind(item));
			if (check_ident(p, cpath, "column", json_string_value(item)) < 0)
				return -1;
			for (j = 0; j < rule->ncolumns; j++)
				if (strcmp(rule->columns[j].name, json_string_value(item)) == 0)
					return parse_error(p, cpath,
									   "column \"%s\" is listed twice",
									   json_string_value(item));
			if ((col->name = copy_string(p, cpath,
										 json_string_value(item))) == NULL)
				return -1;
			rule->ncolumns++;
		}
	}
	return check_column_targets(p, path, rule);
}

/* What a schema passes down to its tables */
typedef struct SchemaInfo
{
	const char *name;			/* source schema */
	const char *new_name;		/* NULL = same */
	bool		all;			/* the schema has a rule of its own */
	unsigned	dml;
} SchemaInfo;

/* Does a table entry say anything beyond "select this table"? */
static bool
table_has_settings(json_t *v)
{
	const char *key;
	json_t	   *value;

	json_object_foreach(v, key, value)
	{
		if (strcmp(key, "all") == 0 && json_is_true(value))
			continue;
		return true;
	}
	return false;
}

/* Fills a table rule from its entry's keys */
static int
fill_table_rule(TaskParser *p, const char *path, json_t *v,
				DtsTableRule *rule)
{
	char		kpath[DTS_PATH_LEN];
	json_t	   *all = json_object_get(v, "all");
	json_t	   *item;
	bool		all_columns = true;

	if ((item = json_object_get(v, "name")) != NULL)
	{
		path_key(kpath, path, "name");
		if (get_string_copy(p, kpath, item, &rule->new_table) < 0)
			return -1;
	}
	if (all != NULL)
	{
		path_key(kpath, path, "all");
		if (get_bool(p, kpath, all, &all_columns) < 0)
			return -1;
	}
	item = json_object_get(v, "columns");
	if (item != NULL && all != NULL && all_columns)
		return parse_error(p, kpath,
						   "\"all\": true selects every column, so \"columns\" cannot be given too; expected one or the other");
	if (item == NULL && !all_columns)
		return parse_error(p, kpath,
						   "\"all\": false needs \"columns\"; expected the list of columns to select, or \"all\": true");
	if (item != NULL)
	{
		path_key(kpath, path, "columns");
		if (parse_columns(p, kpath, item, rule) < 0)
			return -1;
	}
	if ((item = json_object_get(v, "filter")) != NULL)
	{
		path_key(kpath, path, "filter");
		if (get_string_copy(p, kpath, item, &rule->where) < 0)
			return -1;
	}
	if ((item = json_object_get(v, "dml_op")) != NULL)
	{
		path_key(kpath, path, "dml_op");
		if (parse_dml(p, kpath, item, &rule->dml) < 0)
			return -1;
	}
	return 0;
}

/*
 * One table of a schema.  A table under a schema selected with "all": true
 * that has no settings of its own adds no rule: the schema's covers it.
 */
static int
parse_table(TaskParser *p, const char *path, const SchemaInfo *schema,
			const char *table, json_t *v)
{
	DtsTableRule *rule;

	if (check_ident(p, path, "table", table) < 0)
		return -1;
	if (v != NULL && !json_is_object(v))
		return parse_error(p, path, "expected an object, got %s",
						   json_kind(v));
	if (v != NULL && check_keys(p, path, v, table_keys) < 0)
		return -1;
	if (schema->all && (v == NULL || !table_has_settings(v)))
		return 0;

	if ((rule = add_rule(p, path)) == NULL)
		return -1;
	rule->dml = schema->dml;
	if ((rule->schema = copy_string(p, path, schema->name)) == NULL ||
		(rule->table = copy_string(p, path, table)) == NULL)
		return -1;
	if (schema->new_name &&
		(rule->new_schema = copy_string(p, path, schema->new_name)) == NULL)
		return -1;
	return v ? fill_table_rule(p, path, v, rule) : 0;
}

/* "tables": {"t": {...}, ...} or ["t", ...] */
static int
parse_tables(TaskParser *p, const char *path, const SchemaInfo *schema,
			 json_t *v)
{
	const char *key;
	json_t	   *item;
	size_t		i;

	if (json_is_object(v))
	{
		json_object_foreach(v, key, item)
		{
			char		tpath[DTS_PATH_LEN];

			path_key(tpath, path, key);
			if (parse_table(p, tpath, schema, key, item) < 0)
				return -1;
		}
		return 0;
	}
	if (!json_is_array(v))
		return parse_error(p, path,
						   "expected an object of tables ({\"table\": {...}}) or an array of table names, got %s",
						   json_kind(v));
	json_array_foreach(v, i, item)
	{
		char		tpath[DTS_PATH_LEN];
		size_t		j;

		path_index(tpath, path, i);
		if (!json_is_string(item))
			return parse_error(p, tpath, "expected a table name, got %s",
							   json_kind(item));
		for (j = 0; j < i; j++)
			if (json_equal(json_array_get(v, j), item))
				return parse_error(p, tpath, "table \"%s\" is listed twice",
								   json_string_value(item));
		if (parse_table(p, tpath, schema, json_string_value(item), NULL) < 0)
			return -1;
	}
	return 0;
}

/* One schema of "objects" */
static int
parse_schema(TaskParser *p, const char *path, const char *name, json_t *v)
{
	SchemaInfo	schema = {name, NULL, false, DTS_DML_ALL};
	char		kpath[DTS_PATH_LEN];
	json_t	   *tables;
	json_t	   *item;

	if (check_ident(p, path, "schema", name) < 0)
		return -1;
	if (!json_is_object(v))
		return parse_error(p, path, "expected an object, got %s",
						   json_kind(v));
	if (check_keys(p, path, v, schema_keys) < 0)
		return -1;
	tables = json_object_get(v, "tables");
	schema.all = (tables == NULL);
	if ((item = json_object_get(v, "all")) != NULL)
	{
		path_key(kpath, path, "all");
		if (get_bool(p, kpath, item, &schema.all) < 0)
			return -1;
	}
	if ((item = json_object_get(v, "name")) != NULL)
	{
		path_key(kpath, path, "name");
		if (get_string(p, kpath, item, &schema.new_name) < 0)
			return -1;
	}
	if ((item = json_object_get(v, "dml_op")) != NULL)
	{
		path_key(kpath, path, "dml_op");
		if (parse_dml(p, kpath, item, &schema.dml) < 0)
			return -1;
	}
	if (!schema.all &&
		(tables == NULL ||
		 json_object_size(tables) + json_array_size(tables) == 0) &&
		(tables == NULL || json_is_object(tables) || json_is_array(tables)))
		return parse_error(p, path,
						   "selects nothing; expected \"all\": true or a non-empty \"tables\"");

	if (schema.all)
	{
		DtsTableRule *rule = add_rule(p, path);

		if (rule == NULL ||
			(rule->schema = copy_string(p, path, name)) == NULL)
			return -1;
		if (schema.new_name &&
			(rule->new_schema = copy_string(p, path, schema.new_name)) == NULL)
			return -1;
		rule->dml = schema.dml;
	}
	if (tables == NULL)
		return 0;
	path_key(kpath, path, "tables");
	return parse_tables(p, kpath, &schema, tables);
}

/* "objects": "*" or {"<schema>": {...}, ...} */
static int
parse_objects(TaskParser *p, json_t *v)
{
	const char *key;
	json_t	   *item;

	if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0)
	{
		p->task->whole_database = true;
		return 0;
	}
	if (!json_is_object(v))
		return parse_error(p, "objects",
						   "expected \"*\" (the whole database) or an object of schemas, got %s%s%s%s",
						   json_kind(v),
						   json_is_string(v) ? " \"" : "",
						   json_is_string(v) ? json_string_value(v) : "",
						   json_is_string(v) ? "\"" : "");
	if (json_object_size(v) == 0)
		return parse_error(p, "objects",
						   "selects nothing; expected \"*\" (the whole database) or at least one schema");
	p->task->whole_database = false;
	json_object_foreach(v, key, item)
	{
		char		spath[DTS_PATH_LEN];

		path_key(spath, "objects", key);
		if (parse_schema(p, spath, key, item) < 0)
			return -1;
	}
	return 0;
}

/* ----------------------------------------------------------------
 *		Loading
 * ----------------------------------------------------------------
 */

/* Every key of the top-level object, into p->task */
static int
parse_task(TaskParser *p, json_t *root)
{
	json_t	   *item;

	if (!json_is_object(root))
		return parse_error(p, "", "expected a JSON object, got %s",
						   json_kind(root));
	if (check_keys(p, "", root, top_keys) < 0)
		return -1;
	if ((item = json_object_get(root, "name")) == NULL)
		return parse_error(p, "name",
						   "missing; expected the task name (letters, digits and \"_\", at most %d characters)",
						   DTS_TASK_NAME_MAX);
	if (parse_name(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "slot")) != NULL &&
		parse_slot(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "source")) != NULL &&
		parse_source(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "sink")) != NULL &&
		parse_sink(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "objects")) != NULL &&
		parse_objects(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "heartbeat_interval")) != NULL &&
		get_int(p, "heartbeat_interval", item, 0, DTS_MAX_INTERVAL_S,
				"seconds", &p->task->heartbeat_interval_s) < 0)
		return -1;
	if ((item = json_object_get(root, "status_interval")) != NULL &&
		get_interval_ms(p, "status_interval", item,
						&p->task->status_interval_ms) < 0)
		return -1;
	if ((item = json_object_get(root, "retry")) != NULL &&
		parse_retry(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "throttle")) != NULL &&
		parse_throttle(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "parallel")) != NULL &&
		parse_parallel(p, item) < 0)
		return -1;
	if ((item = json_object_get(root, "sync")) != NULL &&
		parse_sync(p, item) < 0)
		return -1;
	return 0;
}

/*
 * Parses root into a fresh task and, on success, replaces *task with it;
 * on failure *task is untouched.
 */
static int
load_json(DtsTask *task, json_t *root, char *err, size_t errlen)
{
	TaskParser	p;
	DtsTask		fresh;

	dts_task_init(&fresh);
	p.task = &fresh;
	p.err = err;
	p.errlen = errlen;
	if (parse_task(&p, root) < 0)
	{
		dts_task_free(&fresh);
		return -1;
	}
	/*
	 * slot stays NULL when the file has none: the command line may still
	 * rename the task, and dts_task_finish() derives it from the final name
	 */
	dts_task_free(task);
	*task = fresh;
	return 0;
}

/* Sets every field to its default (see docs/task.md) */
void
dts_task_init(DtsTask *task)
{
	memset(task, 0, sizeof(DtsTask));
	task->whole_database = true;
	task->sink = DTS_SINK_FILE;
	task->fsync_interval_ms = 10 * 1000;
	task->heartbeat_interval_s = 5;
	task->status_interval_ms = 10 * 1000;
	task->retry_connect_minutes = 720;
	task->retry_other_minutes = 10;
	task->sync[0] = DTS_SYNC_INCREMENTAL;
	task->nsync = 1;
}

/*
 * Reads the task file at path.  The caller owns *task before and after;
 * err gets "<path>: <json path>: <message>" on failure.
 */
int
dts_task_load_file(DtsTask *task, const char *path, char *err, size_t errlen)
{
	FILE	   *fp;
	struct stat st;
	json_t	   *root;
	json_error_t jerr;
	int			rc = -1;
	size_t		used;

	fp = fopen(path, "r");
	if (fp == NULL)
	{
		snprintf(err, errlen, "could not open task file \"%s\": %s", path,
				 strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode))
	{
		snprintf(err, errlen, "could not read task file \"%s\": %s", path,
				 strerror(EISDIR));
		goto cleanup;
	}
	root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
	{
		if (ferror(fp))
			snprintf(err, errlen, "could not read task file \"%s\": %s",
					 path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path,
					 jerr.line, jerr.column, jerr.text);
		goto cleanup;
	}
	/* prefix the JSON path with the file name */
	used = (size_t) snprintf(err, errlen, "%s: ", path);
	if (used >= errlen)
		used = errlen > 0 ? errlen - 1 : 0;
	rc = load_json(task, root, err + used, errlen - used);
	json_decref(root);

cleanup:
	fclose(fp);
	return rc;
}

/* Same as dts_task_load_file(), from a string; errors start "task: " */
int
dts_task_load_string(DtsTask *task, const char *json, char *err,
					 size_t errlen)
{
	json_t	   *root;
	json_error_t jerr;
	int			rc;

	root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
	{
		snprintf(err, errlen, "task:%d:%d: invalid JSON: %s", jerr.line,
				 jerr.column, jerr.text);
		return -1;
	}
	rc = load_json(task, root, err, errlen);
	json_decref(root);
	return rc;
}

/*
 * Completes a merged task (file + command line): default slot and file
 * path, and the settings that have no default.
 */
int
dts_task_finish(DtsTask *task, char *err, size_t errlen)
{
	if (task->source_conninfo == NULL || task->source_conninfo[0] == '\0')
	{
		snprintf(err, errlen,
				 "no source database: give \"source\": {\"conninfo\": \"...\"} in the task file or -d on the command line");
		return -1;
	}
	if (task->slot == NULL && task->name != NULL)
	{
		size_t		len = strlen("dts_sync_") + strlen(task->name) + 1;

		if (!is_slot_name(task->name))
		{
			snprintf(err, errlen,
					 "slot: the task name \"%s\" cannot make a slot name (dts_sync_<name> may hold only lower-case letters, digits and \"_\"); give \"slot\" in the task file or -S",
					 task->name);
			return -1;
		}
		if ((task->slot = malloc(len)) == NULL)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		snprintf(task->slot, len, "dts_sync_%s", task->name);
	}
	if (task->slot == NULL)
	{
		snprintf(err, errlen,
				 "no replication slot: give -S, or a task file with \"name\" (the slot is then dts_sync_<name>)");
		return -1;
	}
	if (!is_slot_name(task->slot))
	{
		snprintf(err, errlen,
				 "slot \"%s\" is not a replication slot name; use lower-case letters, digits and \"_\", at most %d characters",
				 task->slot, DTS_IDENT_MAX_BYTES);
		return -1;
	}
	if (task->sink == DTS_SINK_FILE && task->file_path == NULL &&
		(task->file_path = strdup("-")) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

bool
dts_task_has_phase(const DtsTask *task, DtsSyncPhase phase)
{
	int			i;

	for (i = 0; i < task->nsync; i++)
		if (task->sync[i] == phase)
			return true;
	return false;
}

const char *
dts_sink_kind_name(DtsSinkKind kind)
{
	if ((int) kind < 0 ||
		(size_t) kind >= sizeof(sink_names) / sizeof(sink_names[0]))
		return "unknown";
	return sink_names[kind];
}

/* ----------------------------------------------------------------
 *		Conninfo for printing
 * ----------------------------------------------------------------
 */

/* The caller frees the result; see task.h */
char *
dts_conninfo_redact(const char *conninfo)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *errmsg = NULL;
	size_t		cap = 1;
	char	   *out;
	char	   *w;

	opts = PQconninfoParse(conninfo, &errmsg);
	if (opts == NULL)
	{
		PQfreemem(errmsg);
		return NULL;
	}
	/* worst case: every value character escaped, plus quotes and blanks */
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL)
			cap += strlen(o->keyword) + 2 * strlen(o->val) + 5;
	out = malloc(cap);
	if (out == NULL)
		goto cleanup;
	w = out;
	for (o = opts; o->keyword != NULL; o++)
	{
		const char *c;

		if (o->val == NULL || strcmp(o->keyword, "password") == 0)
			continue;
		if (w != out)
			*w++ = ' ';
		w += sprintf(w, "%s='", o->keyword);
		for (c = o->val; *c; c++)
		{
			if (*c == '\'' || *c == '\\')
				*w++ = '\\';
			*w++ = *c;
		}
		*w++ = '\'';
	}
	*w = '\0';

cleanup:
	PQconninfoFree(opts);
	return out;
}

/* ----------------------------------------------------------------
 *		Rules
 * ----------------------------------------------------------------
 */

/* The most specific rule that selects schema.table; see task.h */
const DtsTableRule *
dts_task_find_rule(const DtsTask *task, const char *schema, const char *table)
{
	const DtsTableRule *schema_rule = NULL;
	int			i;

	if (task->whole_database)
		return &whole_database_rule;
	for (i = 0; i < task->nrules; i++)
	{
		const DtsTableRule *rule = &task->rules[i];

		if (strcmp(rule->schema, schema) != 0)
			continue;
		if (rule->table == NULL)
			schema_rule = rule;
		else if (strcmp(rule->table, table) == 0)
			return rule;
	}
	return schema_rule;
}

/* ----------------------------------------------------------------
 *		Plugin options
 * ----------------------------------------------------------------
 */

static void
sb_append_len(StrBuf *sb, const char *s, size_t n)
{
	if (sb->oom)
		return;
	if (sb->len + n + 1 > sb->cap)
	{
		size_t		cap = sb->cap ? sb->cap : 256;
		char	   *data;

		while (sb->len + n + 1 > cap)
			cap *= 2;
		data = realloc(sb->data, cap);
		if (data == NULL)
		{
			sb->oom = true;
			return;
		}
		sb->data = data;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static void
sb_append(StrBuf *sb, const char *s)
{
	sb_append_len(sb, s, strlen(s));
}

/* Appends name double-quoted, with every " doubled */
static void
sb_append_ident(StrBuf *sb, const char *name)
{
	const char *q;

	sb_append(sb, "\"");
	while ((q = strchr(name, '"')) != NULL)
	{
		sb_append_len(sb, name, q - name + 1);
		sb_append(sb, "\"");
		name = q + 1;
	}
	sb_append(sb, name);
	sb_append(sb, "\"");
}

/* Appends ,"schema"."table" (or "schema".* when table is NULL) */
static void
sb_append_pattern(StrBuf *sb, const char *schema, const char *table)
{
	if (sb->len > 0)
		sb_append(sb, ",");
	sb_append_ident(sb, schema);
	sb_append(sb, ".");
	if (table)
		sb_append_ident(sb, table);
	else
		sb_append(sb, "*");
}

/* Is schema.table (table NULL = the schema) already in include_tables? */
static bool
rules_cover(const DtsTask *task, const char *schema, const char *table)
{
	int			i;

	for (i = 0; i < task->nrules; i++)
	{
		const DtsTableRule *rule = &task->rules[i];

		if (strcmp(rule->schema, schema) != 0)
			continue;
		if (rule->table == NULL)
			return true;
		if (table != NULL && strcmp(rule->table, table) == 0)
			return true;
	}
	return false;
}

/*
 * include_tables: every schema rule as "s".*, every table rule whose
 * schema has no rule as "s"."t", then the extension's heartbeat and DDL
 * tables.  Returns a malloc'd string or NULL when memory runs out.
 */
static char *
build_include_tables(const DtsTask *task)
{
	StrBuf		sb = {NULL, 0, 0, false};
	int			i;

	for (i = 0; i < task->nrules; i++)
	{
		const DtsTableRule *rule = &task->rules[i];

		if (rule->table != NULL && rules_cover(task, rule->schema, NULL))
			continue;
		sb_append_pattern(&sb, rule->schema, rule->table);
	}
	if (!rules_cover(task, DTS_HEARTBEAT_SCHEMA, DTS_HEARTBEAT_TABLE))
		sb_append_pattern(&sb, DTS_HEARTBEAT_SCHEMA, DTS_HEARTBEAT_TABLE);
	if (!rules_cover(task, DTS_DDL_SCHEMA, DTS_DDL_TABLE))
		sb_append_pattern(&sb, DTS_DDL_SCHEMA, DTS_DDL_TABLE);
	if (sb.oom)
	{
		free(sb.data);
		return NULL;
	}
	return sb.data;
}

/* Does the rule restrict anything the plugin can filter? */
static bool
rule_restricts(const DtsTableRule *rule)
{
	return rule->where != NULL || rule->dml != DTS_DML_ALL ||
		rule->columns != NULL;
}

/* Appends {"schema": s, "table": t} (t may be NULL); false on OOM */
static bool
append_rule(json_t *arr, const char *schema, const char *table)
{
	json_t	   *obj = json_object();

	if (obj == NULL ||
		json_object_set_new(obj, "schema", json_string(schema)) != 0 ||
		(table && json_object_set_new(obj, "table", json_string(table)) != 0))
	{
		json_decref(obj);
		return false;
	}
	return json_array_append_new(arr, obj) == 0;
}

/* One table_rules element into arr; false when memory runs out */
static bool
append_task_rule(json_t *arr, const DtsTableRule *rule)
{
	json_t	   *obj;
	bool		ok;
	size_t		i;

	if (!append_rule(arr, rule->schema, rule->table))
		return false;
	obj = json_array_get(arr, json_array_size(arr) - 1);
	ok = true;
	if (rule->where)
		ok = json_object_set_new(obj, "where", json_string(rule->where)) == 0;
	if (ok && rule->dml != DTS_DML_ALL)
	{
		json_t	   *dml = json_array();

		ok = json_object_set_new(obj, "dml", dml) == 0;
		for (i = 0; ok && i < sizeof(dml_words) / sizeof(dml_words[0]); i++)
			if (rule->dml & dml_bits[i])
				ok = json_array_append_new(dml, json_string(dml_words[i])) == 0;
	}
	if (ok && rule->columns)
	{
		json_t	   *cols = json_array();

		ok = json_object_set_new(obj, "columns", cols) == 0;
		for (i = 0; ok && i < (size_t) rule->ncolumns; i++)
			ok = json_array_append_new(cols,
									   json_string(rule->columns[i].name)) == 0;
	}
	return ok;
}

/* Has the task a rule for exactly schema.table? */
static bool
has_table_rule(const DtsTask *task, const char *schema, const char *table)
{
	int			i;

	for (i = 0; i < task->nrules; i++)
		if (task->rules[i].table != NULL &&
			strcmp(task->rules[i].schema, schema) == 0 &&
			strcmp(task->rules[i].table, table) == 0)
			return true;
	return false;
}

/*
 * table_rules, when some rule restricts (a filter, DML kinds, columns):
 * the plugin publishes only tables that have a rule once table_rules is
 * given, so the array holds every rule of the task, the unrestricted ones
 * bare, and a bare rule for the heartbeat and DDL tables (which wins over
 * a restricted rule of their schema).  *value = NULL (and true) when no
 * rule restricts; false when memory runs out.
 */
static bool
build_table_rules(const DtsTask *task, char **value)
{
	json_t	   *arr;
	int			i;
	bool		ok;
	bool		restricted = false;

	*value = NULL;
	for (i = 0; i < task->nrules; i++)
		restricted = restricted || rule_restricts(&task->rules[i]);
	if (!restricted)
		return true;

	arr = json_array();
	ok = arr != NULL;
	for (i = 0; ok && i < task->nrules; i++)
		ok = append_task_rule(arr, &task->rules[i]);
	if (ok && !has_table_rule(task, DTS_HEARTBEAT_SCHEMA, DTS_HEARTBEAT_TABLE))
		ok = append_rule(arr, DTS_HEARTBEAT_SCHEMA, DTS_HEARTBEAT_TABLE);
	if (ok && !has_table_rule(task, DTS_DDL_SCHEMA, DTS_DDL_TABLE))
		ok = append_rule(arr, DTS_DDL_SCHEMA, DTS_DDL_TABLE);
	if (ok)
	{
		*value = json_dumps(arr, JSON_COMPACT);
		ok = *value != NULL;
	}
	json_decref(arr);
	return ok;
}

/* See task.h: the caller frees with dts_task_free_options() */
int
dts_task_plugin_options(const DtsTask *task, char ***names, char ***values)
{
	char	  **n = calloc(2, sizeof(char *));
	char	  **v = calloc(2, sizeof(char *));
	char	   *rules = NULL;
	int			count = 0;

	*names = NULL;
	*values = NULL;
	if (n == NULL || v == NULL)
		goto oom;
	if (!task->whole_database)
	{
		n[count] = strdup("include_tables");
		v[count] = build_include_tables(task);
		count++;
		if (n[count - 1] == NULL || v[count - 1] == NULL)
			goto oom;
		if (!build_table_rules(task, &rules))
			goto oom;
		if (rules != NULL)
		{
			n[count] = strdup("table_rules");
			v[count] = rules;
			count++;
			if (n[count - 1] == NULL)
				goto oom;
		}
	}
	*names = n;
	*values = v;
	return count;

oom:
	dts_task_free_options(n, v, 2);
	return -1;
}

/* Frees what dts_task_plugin_options() returned; NULLs are fine */
void
dts_task_free_options(char **names, char **values, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (names)
			free(names[i]);
		if (values)
			free(values[i]);
	}
	free(names);
	free(values);
}

/* ----------------------------------------------------------------
 *		Freeing
 * ----------------------------------------------------------------
 */

static void
free_rule(DtsTableRule *rule)
{
	int			i;

	for (i = 0; i < rule->ncolumns; i++)
	{
		free(rule->columns[i].name);
		free(rule->columns[i].new_name);
	}
	free(rule->columns);
	free(rule->schema);
	free(rule->table);
	free(rule->new_schema);
	free(rule->new_table);
	free(rule->where);
}

/* Frees every string and rule of the task and resets it to the defaults */
void
dts_task_free(DtsTask *task)
{
	int			i;

	for (i = 0; i < task->nrules; i++)
		free_rule(&task->rules[i]);
	free(task->rules);
	free(task->name);
	free(task->source_conninfo);
	free(task->slot);
	free(task->file_path);
	free(task->sink_json);
	dts_task_init(task);
}

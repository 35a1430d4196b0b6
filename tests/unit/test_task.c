/* unit-test-sources: shipper/task.c; unit-test-libs: jansson libpq */
/*-------------------------------------------------------------------------
 *
 * test_task.c
 *	  Unit tests of the pg_dts_ship task file (shipper/task.c): a full
 *	  example read back field by field, the defaults, one test per class of
 *	  mistake asserting the JSON path the message names, rule lookup, the
 *	  plugin options (identifier quoting, the extension's tables, the
 *	  table_rules JSON read back with jansson) and conninfo redaction.
 *
 * Besides check, it links shipper/task.c, jansson and libpq (for
 * PQconninfoParse); the first line says so for the Makefile.
 *
 * tests/unit/test_task.c
 *
 *-------------------------------------------------------------------------
 */
#include "task.h"

#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The example of docs/task.md, every key set */
static const char *full_example =
"{\n"
"  \"name\": \"orders_to_file\",\n"
"  \"source\": {\"conninfo\": \"host=db1 port=5433 dbname=shop user=dts password=s3cret\"},\n"
"  \"slot\": \"dts_orders\",\n"
"  \"sink\": {\"type\": \"file\", \"path\": \"/var/lib/dts/orders.jsonl\",\n"
"           \"fsync_interval\": 2.5, \"begin_commit\": true},\n"
"  \"objects\": {\n"
"    \"shop\": {\n"
"      \"name\": \"shop_copy\",\n"
"      \"all\": false,\n"
"      \"tables\": {\n"
"        \"orders\": {\n"
"          \"name\": \"orders_v2\",\n"
"          \"columns\": {\"id\": {}, \"total\": {\"name\": \"amount\"}, \"status\": {}},\n"
"          \"filter\": \"status <> 'draft'\",\n"
"          \"dml_op\": \"insert, update\"\n"
"        },\n"
"        \"order_lines\": {\"columns\": [\"order_id\", \"line_no\", \"sku\"]},\n"
"        \"customers\": {}\n"
"      }\n"
"    },\n"
"    \"audit\": {\"all\": true, \"dml_op\": [\"insert\", \"truncate\"]}\n"
"  },\n"
"  \"heartbeat_interval\": 3,\n"
"  \"status_interval\": 7,\n"
"  \"retry\": {\"connection_minutes\": 60, \"other_minutes\": 5},\n"
"  \"throttle\": {\"rows_per_second\": 5000, \"mb_per_second\": 1.5},\n"
"  \"parallel\": {\"full_sync_workers\": 8, \"post_data_jobs\": 2,\n"
"               \"early_indexes\": false, \"freeze\": false},\n"
"  \"sync\": [\"schema\", \"full\", \"incremental\"]\n"
"}\n";

static DtsTask task;
static char err[1024];

static void
setup(void)
{
	dts_task_init(&task);
	err[0] = '\0';
}

static void
teardown(void)
{
	dts_task_free(&task);
}

/* Loads json, which must succeed */
static void
load_ok(const char *json)
{
	int			rc = dts_task_load_string(&task, json, err, sizeof(err));

	ck_assert_msg(rc == 0, "load failed: %s", err);
}

/*
 * Loads json, which must fail with a message containing every one of the
 * NULL-terminated fragments (the first is normally "<path>: ").
 */
static void
load_fails(const char *json, ...)
{
	va_list		ap;
	const char *frag;
	int			rc;

	rc = dts_task_load_string(&task, json, err, sizeof(err));
	ck_assert_msg(rc == -1, "load of %s succeeded", json);
	va_start(ap, json);
	while ((frag = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strstr(err, frag) != NULL,
					  "message \"%s\" lacks \"%s\"", err, frag);
	va_end(ap);
}

/* A task with {"name": "t", <members>} */
static const char *
with_name(const char *members)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "{\"name\": \"t\"%s%s}",
			 members[0] ? ", " : "", members);
	return buf;
}

/* ----------------------------------------------------------------
 *		Valid tasks
 * ----------------------------------------------------------------
 */

START_TEST(test_full_example)
{
	const DtsTableRule *r;

	load_ok(full_example);
	ck_assert_str_eq(task.name, "orders_to_file");
	ck_assert_str_eq(task.source_conninfo,
					 "host=db1 port=5433 dbname=shop user=dts password=s3cret");
	ck_assert_str_eq(task.slot, "dts_orders");
	ck_assert_int_eq(task.sink, DTS_SINK_FILE);
	ck_assert_str_eq(task.file_path, "/var/lib/dts/orders.jsonl");
	ck_assert_int_eq(task.fsync_interval_ms, 2500);
	ck_assert(task.begin_commit_lines);
	ck_assert_ptr_nonnull(task.sink_json);
	ck_assert_int_eq(task.heartbeat_interval_s, 3);
	ck_assert_int_eq(task.status_interval_ms, 7000);
	ck_assert_int_eq(task.retry_connect_minutes, 60);
	ck_assert_int_eq(task.retry_other_minutes, 5);
	ck_assert(task.max_rows_per_s == 5000);
	ck_assert(task.max_mb_per_s == 1.5);
	ck_assert_int_eq(task.full_sync_workers, 8);
	ck_assert_int_eq(task.post_data_jobs, 2);
	ck_assert_int_eq(task.early_indexes, DTS_SWITCH_OFF);
	ck_assert_int_eq(task.freeze, DTS_SWITCH_OFF);
	ck_assert_int_eq(task.nsync, 3);
	ck_assert_int_eq(task.sync[0], DTS_SYNC_SCHEMA);
	ck_assert_int_eq(task.sync[1], DTS_SYNC_FULL);
	ck_assert_int_eq(task.sync[2], DTS_SYNC_INCREMENTAL);
	ck_assert(!task.whole_database);

	/* rules in file order: three tables of shop, then audit */
	ck_assert_int_eq(task.nrules, 4);
	r = &task.rules[0];
	ck_assert_str_eq(r->schema, "shop");
	ck_assert_str_eq(r->table, "orders");
	ck_assert_str_eq(r->new_schema, "shop_copy");
	ck_assert_str_eq(r->new_table, "orders_v2");
	ck_assert_int_eq(r->ncolumns, 3);
	ck_assert_str_eq(r->columns[0].name, "id");
	ck_assert_ptr_null(r->columns[0].new_name);
	ck_assert_str_eq(r->columns[1].name, "total");
	ck_assert_str_eq(r->columns[1].new_name, "amount");
	ck_assert_str_eq(r->columns[2].name, "status");
	ck_assert_str_eq(r->where, "status <> 'draft'");
	ck_assert_uint_eq(r->dml, DTS_DML_INSERT | DTS_DML_UPDATE);

	r = &task.rules[1];
	ck_assert_str_eq(r->table, "order_lines");
	ck_assert_str_eq(r->new_schema, "shop_copy");
	ck_assert_ptr_null(r->new_table);
	ck_assert_int_eq(r->ncolumns, 3);
	ck_assert_str_eq(r->columns[2].name, "sku");
	ck_assert_ptr_null(r->where);
	ck_assert_uint_eq(r->dml, DTS_DML_ALL);

	r = &task.rules[2];
	ck_assert_str_eq(r->table, "customers");
	ck_assert_ptr_null(r->columns);
	ck_assert_int_eq(r->ncolumns, 0);

	r = &task.rules[3];
	ck_assert_str_eq(r->schema, "audit");
	ck_assert_ptr_null(r->table);
	ck_assert_ptr_null(r->new_schema);
	ck_assert_uint_eq(r->dml, DTS_DML_INSERT | DTS_DML_TRUNCATE);
}
END_TEST

START_TEST(test_defaults)
{
	load_ok("{\"name\": \"orders\"}");
	ck_assert_str_eq(task.name, "orders");
	ck_assert_ptr_null(task.slot);	/* dts_task_finish() derives it */
	ck_assert_ptr_null(task.source_conninfo);
	ck_assert(task.whole_database);
	ck_assert_int_eq(task.nrules, 0);
	ck_assert_int_eq(task.sink, DTS_SINK_FILE);
	ck_assert_ptr_null(task.file_path);
	ck_assert_ptr_null(task.sink_json);
	ck_assert_int_eq(task.fsync_interval_ms, 10000);
	ck_assert(!task.begin_commit_lines);
	ck_assert_int_eq(task.heartbeat_interval_s, 5);
	ck_assert_int_eq(task.status_interval_ms, 10000);
	ck_assert_int_eq(task.retry_connect_minutes, 720);
	ck_assert_int_eq(task.retry_other_minutes, 10);
	ck_assert(task.max_rows_per_s == 0 && task.max_mb_per_s == 0);
	/* 0 = not set: the phases' own defaults */
	ck_assert_int_eq(task.full_sync_workers, 0);
	ck_assert_int_eq(task.post_data_jobs, 0);
	/* unset: on, unless a measurement knob turns it off (pgtask.c) */
	ck_assert_int_eq(task.early_indexes, DTS_SWITCH_UNSET);
	ck_assert_int_eq(task.freeze, DTS_SWITCH_UNSET);
	ck_assert_int_eq(task.nsync, 1);
	ck_assert_int_eq(task.sync[0], DTS_SYNC_INCREMENTAL);
	ck_assert(dts_task_has_phase(&task, DTS_SYNC_INCREMENTAL));
	ck_assert(!dts_task_has_phase(&task, DTS_SYNC_FULL));
}
END_TEST

/* The booleans of "parallel": each set on its own, the other left unset */
START_TEST(test_parallel_switches)
{
	load_ok(with_name("\"parallel\": {\"early_indexes\": true, \"freeze\": false}"));
	ck_assert_int_eq(task.early_indexes, DTS_SWITCH_ON);
	ck_assert_int_eq(task.freeze, DTS_SWITCH_OFF);
	ck_assert_int_eq(task.full_sync_workers, 0);
	ck_assert_int_eq(task.post_data_jobs, 0);

	load_ok(with_name("\"parallel\": {\"freeze\": true}"));
	ck_assert_int_eq(task.early_indexes, DTS_SWITCH_UNSET);
	ck_assert_int_eq(task.freeze, DTS_SWITCH_ON);

	load_ok(with_name("\"parallel\": {\"early_indexes\": false, \"post_data_jobs\": 3}"));
	ck_assert_int_eq(task.early_indexes, DTS_SWITCH_OFF);
	ck_assert_int_eq(task.freeze, DTS_SWITCH_UNSET);
	ck_assert_int_eq(task.post_data_jobs, 3);

	/* an empty "parallel" sets nothing */
	load_ok(with_name("\"parallel\": {}"));
	ck_assert_int_eq(task.early_indexes, DTS_SWITCH_UNSET);
	ck_assert_int_eq(task.freeze, DTS_SWITCH_UNSET);
}
END_TEST

START_TEST(test_whole_database_and_schema_forms)
{
	load_ok(with_name("\"objects\": \"*\""));
	ck_assert(task.whole_database);

	/* a schema without "tables" is the whole schema */
	load_ok(with_name("\"objects\": {\"sales\": {}}"));
	ck_assert(!task.whole_database);
	ck_assert_int_eq(task.nrules, 1);
	ck_assert_str_eq(task.rules[0].schema, "sales");
	ck_assert_ptr_null(task.rules[0].table);

	/* tables as an array of names */
	load_ok(with_name("\"objects\": {\"sales\": {\"tables\": [\"a\", \"b\"]}}"));
	ck_assert_int_eq(task.nrules, 2);
	ck_assert_str_eq(task.rules[1].table, "b");
	ck_assert_uint_eq(task.rules[1].dml, DTS_DML_ALL);
}
END_TEST

START_TEST(test_all_schema_with_tables)
{
	/* a bare table under "all": true adds nothing; one with settings wins */
	load_ok(with_name("\"objects\": {\"s\": {\"all\": true, \"dml_op\": \"insert\","
					  " \"name\": \"t_s\", \"tables\": {\"plain\": {}, \"also\": {\"all\": true},"
					  " \"special\": {\"filter\": \"id > 0\"}}}}"));
	ck_assert_int_eq(task.nrules, 2);
	ck_assert_ptr_null(task.rules[0].table);
	ck_assert_str_eq(task.rules[1].table, "special");
	/* the table rule inherits the schema's mapping and DML */
	ck_assert_str_eq(task.rules[1].new_schema, "t_s");
	ck_assert_uint_eq(task.rules[1].dml, DTS_DML_INSERT);
	ck_assert_str_eq(task.rules[1].where, "id > 0");
}
END_TEST

START_TEST(test_dml_forms)
{
	load_ok(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"dml_op\": \" DELETE ,Truncate\"}}}}"));
	ck_assert_uint_eq(task.rules[0].dml, DTS_DML_DELETE | DTS_DML_TRUNCATE);
	load_ok(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"dml_op\": [\"update\"]}}}}"));
	ck_assert_uint_eq(task.rules[0].dml, DTS_DML_UPDATE);
}
END_TEST

START_TEST(test_other_sinks_keep_json)
{
	json_t	   *back;

	load_ok(with_name("\"sink\": {\"type\": \"kafka\", \"brokers\": \"k1:9092\", \"topic\": \"orders\"}"));
	ck_assert_int_eq(task.sink, DTS_SINK_KAFKA);
	back = json_loads(task.sink_json, 0, NULL);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(json_string_value(json_object_get(back, "brokers")),
					 "k1:9092");
	json_decref(back);
	ck_assert_str_eq(dts_sink_kind_name(DTS_SINK_MAXCOMPUTE), "maxcompute");
}
END_TEST

START_TEST(test_odd_identifiers_kept_literally)
{
	load_ok(with_name("\"objects\": {\"My Schema\": {\"tables\": {\"Ord\\\"er\": {\"columns\": [\"Col,1\", \"\xc3\xa9t\xc3\xa9\"]}}}}"));
	ck_assert_str_eq(task.rules[0].schema, "My Schema");
	ck_assert_str_eq(task.rules[0].table, "Ord\"er");
	ck_assert_str_eq(task.rules[0].columns[0].name, "Col,1");
	ck_assert_str_eq(task.rules[0].columns[1].name, "\xc3\xa9t\xc3\xa9");
}
END_TEST

/* ----------------------------------------------------------------
 *		Mistakes, one class per test
 * ----------------------------------------------------------------
 */

START_TEST(test_malformed_json)
{
	load_fails("{\n  \"name\": \"t\",\n  \"slot\" \"x\"\n}", "task:3:", "invalid JSON",
			   NULL);
	load_fails("", "invalid JSON", NULL);
	load_fails("[1, 2]", "top level: expected a JSON object, got an array",
			   NULL);
}
END_TEST

START_TEST(test_duplicate_key)
{
	load_fails("{\"name\": \"a\",\n \"name\": \"b\"}", "task:2:",
			   "duplicate object key", NULL);
}
END_TEST

START_TEST(test_unreadable_file)
{
	char		dir[] = "/tmp/test_task_XXXXXX";
	char		path[256];
	FILE	   *fp;
	int			rc;

	rc = dts_task_load_file(&task, "/nonexistent/task.json", err, sizeof(err));
	ck_assert_int_eq(rc, -1);
	ck_assert_str_eq(err, "could not open task file \"/nonexistent/task.json\": No such file or directory");

	ck_assert_ptr_nonnull(mkdtemp(dir));
	rc = dts_task_load_file(&task, dir, err, sizeof(err));
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(strstr(err, "Is a directory") != NULL, "%s", err);

	/* a file's errors start with its path, JSON or task mistakes alike */
	snprintf(path, sizeof(path), "%s/t.json", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("{\"name\": \"t\",\n \"heartbeat_interval\": -1}\n", fp);
	fclose(fp);
	rc = dts_task_load_file(&task, path, err, sizeof(err));
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0 &&
				  strstr(err, ": heartbeat_interval: ") != NULL, "%s", err);

	fp = fopen(path, "w");
	fputs("{\"name\": \"t\",\n \"sync\": [}\n", fp);
	fclose(fp);
	rc = dts_task_load_file(&task, path, err, sizeof(err));
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0 &&
				  strstr(err, ":2:") != NULL, "%s", err);

	fp = fopen(path, "w");
	fputs(full_example, fp);
	fclose(fp);
	rc = dts_task_load_file(&task, path, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_str_eq(task.slot, "dts_orders");
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_unknown_keys)
{
	load_fails("{\"nmae\": \"t\"}",
			   "nmae: unknown key (did you mean \"name\"?); expected one of \"name\", \"source\"",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"filtr\": \"x\"}}}}"),
			   "objects.s.tables.t.filtr: unknown key (did you mean \"filter\"?)",
			   NULL);
	/* DTS spells it "Table": suggested, case aside */
	load_fails(with_name("\"objects\": {\"s\": {\"Table\": {}}}"),
			   "objects.s.Table: unknown key (did you mean \"tables\"?)", NULL);
	/* nothing close: no suggestion */
	load_fails(with_name("\"colour\": 1"), "colour: unknown key; expected one of",
			   NULL);
	load_fails(with_name("\"sink\": {\"path\": \"-\", \"fsync\": 1}"),
			   "sink.fsync: unknown key", NULL);
	load_fails(with_name("\"retry\": {\"connection\": 1}"),
			   "retry.connection: unknown key", NULL);
	load_fails(with_name("\"parallel\": {\"workers\": 4}"),
			   "parallel.workers: unknown key; expected one of \"full_sync_workers\", \"post_data_jobs\", \"early_indexes\", \"freeze\"",
			   NULL);
	load_fails(with_name("\"parallel\": {\"early_index\": false}"),
			   "parallel.early_index: unknown key (did you mean \"early_indexes\"?)",
			   NULL);
	load_fails(with_name("\"parallel\": {\"freez\": true}"),
			   "parallel.freez: unknown key (did you mean \"freeze\"?)",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"columns\": {\"c\": {\"rename\": \"d\"}}}}}}"),
			   "objects.s.tables.t.columns.c.rename: unknown key (did you mean \"name\"?)",
			   NULL);
}
END_TEST

START_TEST(test_wrong_types)
{
	load_fails("{\"name\": 7}", "name: expected a string, got a number", NULL);
	load_fails(with_name("\"sink\": {\"fsync_interval\": \"10\"}"),
			   "sink.fsync_interval: expected a number of seconds from 0 to 3600, got a string",
			   NULL);
	load_fails(with_name("\"sink\": {\"begin_commit\": 1}"),
			   "sink.begin_commit: expected true or false, got a number", NULL);
	load_fails(with_name("\"source\": \"host=x\""),
			   "source: expected an object, got a string", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"all\": \"yes\"}}"),
			   "objects.s.all: expected true or false, got a string", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": 3}}"),
			   "objects.s.tables: expected an object of tables", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": [\"a\", 1]}}"),
			   "objects.s.tables[1]: expected a table name, got a number", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"columns\": \"a,b\"}}}}"),
			   "objects.s.tables.t.columns: expected an object of columns", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"filter\": true}}}}"),
			   "objects.s.tables.t.filter: expected a string, got true", NULL);
	load_fails(with_name("\"objects\": [\"s\"]"),
			   "objects: expected \"*\" (the whole database) or an object of schemas, got an array",
			   NULL);
	load_fails(with_name("\"objects\": \"all\""),
			   "objects: expected \"*\" (the whole database) or an object of schemas, got a string \"all\"",
			   NULL);
	load_fails(with_name("\"retry\": 5"), "retry: expected an object, got a number",
			   NULL);
	load_fails(with_name("\"parallel\": 4"),
			   "parallel: expected an object, got a number", NULL);
	load_fails(with_name("\"parallel\": {\"full_sync_workers\": \"4\"}"),
			   "parallel.full_sync_workers: expected an integer number of workers from 1 to 64, got a string",
			   NULL);
	load_fails(with_name("\"parallel\": {\"early_indexes\": \"false\"}"),
			   "parallel.early_indexes: expected true or false, got a string",
			   NULL);
	load_fails(with_name("\"parallel\": {\"early_indexes\": 0}"),
			   "parallel.early_indexes: expected true or false, got a number",
			   NULL);
	load_fails(with_name("\"parallel\": {\"freeze\": null}"),
			   "parallel.freeze: expected true or false, got null", NULL);
	load_fails(with_name("\"parallel\": {\"freeze\": \"off\"}"),
			   "parallel.freeze: expected true or false, got a string", NULL);
	load_fails(with_name("\"sync\": \"full\""),
			   "sync: expected a non-empty array", NULL);
}
END_TEST

START_TEST(test_out_of_range)
{
	load_fails(with_name("\"heartbeat_interval\": -1"),
			   "heartbeat_interval: -1 is out of range; expected seconds from 0 to 3600",
			   NULL);
	load_fails(with_name("\"heartbeat_interval\": 1.5"),
			   "heartbeat_interval: expected an integer number of seconds", NULL);
	load_fails(with_name("\"status_interval\": 4000"),
			   "status_interval: 4000 is out of range", NULL);
	load_fails(with_name("\"retry\": {\"other_minutes\": 20000}"),
			   "retry.other_minutes: 20000 is out of range; expected minutes from 0 to 10080",
			   NULL);
	load_fails(with_name("\"throttle\": {\"mb_per_second\": -0.5}"),
			   "throttle.mb_per_second: -0.5 is out of range", NULL);
	load_fails(with_name("\"parallel\": {\"full_sync_workers\": 0}"),
			   "parallel.full_sync_workers: 0 is out of range; expected workers from 1 to 64",
			   NULL);
	load_fails(with_name("\"parallel\": {\"post_data_jobs\": 65}"),
			   "parallel.post_data_jobs: 65 is out of range; expected jobs from 1 to 64",
			   NULL);
	load_fails(with_name("\"parallel\": {\"post_data_jobs\": 1.5}"),
			   "parallel.post_data_jobs: expected an integer number of jobs from 1 to 64, got 1.5",
			   NULL);
}
END_TEST

START_TEST(test_empty_names)
{
	load_fails("{\"name\": \"\"}", "name: expected a non-empty string", NULL);
	load_fails("{\"slot\": \"x\"}", "name: missing; expected the task name", NULL);
	load_fails(with_name("\"objects\": {\"\": {}}"),
			   "objects[\"\"]: expected a schema name, got an empty key", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"\": {}}}}"),
			   "objects.s.tables[\"\"]: expected a table name, got an empty key",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": [\"\"]}}"),
			   "objects.s.tables[0]: expected a table name, got an empty key", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"name\": \"\"}}"),
			   "objects.s.name: expected a non-empty string", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"columns\": {\"c\": {\"name\": \"\"}}}}}}"),
			   "objects.s.tables.t.columns.c.name: expected a non-empty string",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"columns\": [\"a\", \"\"]}}}}"),
			   "objects.s.tables.t.columns[1]: expected a column name, got an empty key",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"filter\": \"\"}}}}"),
			   "objects.s.tables.t.filter: expected a non-empty string", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"name\": \"\"}}}}"),
			   "objects.s.tables.t.name: expected a non-empty string", NULL);
}
END_TEST

START_TEST(test_bad_names)
{
	char		json[512];

	load_fails("{\"name\": \"orders-1\"}",
			   "name: \"orders-1\" has a character other than letters", NULL);
	load_fails("{\"name\": \"a23456789012345678901234567890123456789012\"}",
			   "name: \"a23456789012345678901234567890123456789012\" is 42 characters long; expected at most 40",
			   NULL);
	load_fails(with_name("\"slot\": \"Dts\""),
			   "slot: \"Dts\" is not a replication slot name", NULL);
	/* a PostgreSQL name is 63 bytes at most */
	snprintf(json, sizeof(json),
			 "{\"name\": \"t\", \"objects\": {\"%064d\": {}}}", 0);
	load_fails(json, "is 64 bytes long; PostgreSQL names hold at most 63 bytes",
			   NULL);
}
END_TEST

START_TEST(test_invalid_dml_op)
{
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"dml_op\": \"insert,upsert\"}}}}"),
			   "objects.s.tables.t.dml_op: \"upsert\" is not a DML operation; expected a comma-separated list (or an array) of \"insert\", \"update\", \"delete\", \"truncate\"",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"dml_op\": [\"insert\", \"merge\"]}}}}"),
			   "objects.s.tables.t.dml_op[1]: \"merge\" is not a DML operation", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"dml_op\": \"insert,,delete\"}}"),
			   "objects.s.dml_op: empty operation", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"dml_op\": []}}"),
			   "objects.s.dml_op: expected a comma-separated list", "got an empty array",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"dml_op\": [1]}}"),
			   "objects.s.dml_op[0]: expected a string, got a number", NULL);
}
END_TEST

START_TEST(test_selection_mistakes)
{
	load_fails(with_name("\"objects\": {}"),
			   "objects: selects nothing; expected \"*\"", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"all\": false}}"),
			   "objects.s: selects nothing; expected \"all\": true or a non-empty \"tables\"",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {}}}"),
			   "objects.s: selects nothing", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": [\"a\", \"a\"]}}"),
			   "objects.s.tables[1]: table \"a\" is listed twice", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"columns\": []}}}}"),
			   "objects.s.tables.t.columns: selects no column", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"columns\": [\"a\", \"b\", \"a\"]}}}}"),
			   "objects.s.tables.t.columns[2]: column \"a\" is listed twice", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"columns\": {\"a\": {\"name\": \"b\"}, \"b\": {}}}}}}"),
			   "objects.s.tables.t.columns.b: its name at the sink, \"b\", is also that of column \"a\"",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"all\": true, \"columns\": [\"a\"]}}}}"),
			   "objects.s.tables.t.all: \"all\": true selects every column", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": {\"all\": false}}}}"),
			   "objects.s.tables.t.all: \"all\": false needs \"columns\"", NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"t\": [\"a\"]}}}"),
			   "objects.s.tables.t: expected an object, got an array", NULL);
}
END_TEST

START_TEST(test_odd_identifier_paths)
{
	load_fails(with_name("\"objects\": {\"My Schema\": {\"tables\": {\"Ord\\\"er\": {\"dml_op\": \"x\"}}}}"),
			   "objects[\"My Schema\"].tables[\"Ord\\\"er\"].dml_op: \"x\" is not a DML operation",
			   NULL);
	load_fails(with_name("\"objects\": {\"s\": {\"tables\": {\"\xc3\xa9t\xc3\xa9\": {\"dml\": \"x\"}}}}"),
			   "objects.s.tables[\"\xc3\xa9t\xc3\xa9\"].dml: unknown key (did you mean \"dml_op\"?)",
			   NULL);
}
END_TEST

START_TEST(test_sink_and_sync_mistakes)
{
	load_fails(with_name("\"sink\": {\"type\": \"s3\"}"),
			   "sink.type: unknown sink \"s3\"; expected \"file\", \"kafka\", \"pg\" or \"maxcompute\"",
			   NULL);
	load_fails(with_name("\"sink\": {\"path\": \"\"}"),
			   "sink.path: expected a non-empty string", NULL);
	load_fails(with_name("\"sync\": [\"full\", \"schema\"]"),
			   "sync[1]: \"schema\" comes too late", NULL);
	load_fails(with_name("\"sync\": [\"full\", \"full\"]"),
			   "sync[1]: \"full\" is repeated", NULL);
	load_fails(with_name("\"sync\": [\"incr\"]"),
			   "sync[0]: unknown phase \"incr\"", NULL);
	load_fails(with_name("\"sync\": []"), "sync: expected a non-empty array",
			   "got an empty array", NULL);
}
END_TEST

START_TEST(test_conninfo_mistakes)
{
	load_fails(with_name("\"source\": {\"conninfo\": \"host=x bogus=1\"}"),
			   "source.conninfo: not a valid libpq connection string: invalid connection option \"bogus\"",
			   NULL);
	/* libpq quotes what it chokes on: never with a password around */
	load_fails(with_name("\"source\": {\"conninfo\": \"host=x password=top secret\"}"),
			   "source.conninfo: not a valid libpq connection string (libpq's message is not shown",
			   NULL);
	ck_assert_msg(strstr(err, "secret") == NULL, "%s", err);
	load_fails(with_name("\"source\": {\"conninfo\": \"\"}"),
			   "source.conninfo: expected a non-empty string", NULL);
}
END_TEST

START_TEST(test_failure_leaves_task_unchanged)
{
	load_ok(full_example);
	load_fails(with_name("\"heartbeat_interval\": -1"), "heartbeat_interval", NULL);
	ck_assert_str_eq(task.name, "orders_to_file");
	ck_assert_int_eq(task.nrules, 4);
}
END_TEST

/* ----------------------------------------------------------------
 *		Finishing, rules, conninfo
 * ----------------------------------------------------------------
 */

START_TEST(test_finish)
{
	load_ok("{\"name\": \"t\"}");
	ck_assert_int_eq(dts_task_finish(&task, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "-d on the command line") != NULL, "%s", err);

	task.source_conninfo = strdup("dbname=shop");
	ck_assert_int_eq(dts_task_finish(&task, err, sizeof(err)), 0);
	ck_assert_str_eq(task.slot, "dts_sync_t");
	ck_assert_str_eq(task.file_path, "-");

	/* the slot follows a name the command line changed after loading */
	load_ok("{\"name\": \"t\", \"source\": {\"conninfo\": \"dbname=x\"}}");
	free(task.name);
	task.name = strdup("renamed");
	ck_assert_int_eq(dts_task_finish(&task, err, sizeof(err)), 0);
	ck_assert_str_eq(task.slot, "dts_sync_renamed");

	/* an upper-case name makes no slot: say what to give */
	load_ok("{\"name\": \"Orders\", \"source\": {\"conninfo\": \"dbname=x\"}}");
	ck_assert_ptr_null(task.slot);
	ck_assert_int_eq(dts_task_finish(&task, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "give \"slot\" in the task file or -S") != NULL,
				  "%s", err);
	task.slot = strdup("orders_slot");
	ck_assert_int_eq(dts_task_finish(&task, err, sizeof(err)), 0);

	/* no task file: -S is needed */
	dts_task_free(&task);
	task.source_conninfo = strdup("dbname=x");
	ck_assert_int_eq(dts_task_finish(&task, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "give -S") != NULL, "%s", err);
	task.slot = strdup("Bad-Slot");
	ck_assert_int_eq(dts_task_finish(&task, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "slot \"Bad-Slot\" is not a replication slot name") != NULL,
				  "%s", err);
}
END_TEST

START_TEST(test_find_rule)
{
	const DtsTableRule *r;

	load_ok(full_example);
	r = dts_task_find_rule(&task, "shop", "orders");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->new_table, "orders_v2");
	ck_assert_ptr_null(dts_task_find_rule(&task, "shop", "payments"));
	ck_assert_ptr_null(dts_task_find_rule(&task, "Shop", "orders"));
	r = dts_task_find_rule(&task, "audit", "anything");
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(r->table);

	/* table rule over schema rule, wherever it comes in the file */
	load_ok(with_name("\"objects\": {\"s\": {\"all\": true, \"tables\": {\"t\": {\"dml_op\": \"delete\"}}}}"));
	r = dts_task_find_rule(&task, "s", "t");
	ck_assert_str_eq(r->table, "t");
	ck_assert_uint_eq(r->dml, DTS_DML_DELETE);
	r = dts_task_find_rule(&task, "s", "u");
	ck_assert_ptr_null(r->table);

	load_ok(with_name("\"objects\": \"*\""));
	r = dts_task_find_rule(&task, "any", "thing");
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(r->schema);
	ck_assert_uint_eq(r->dml, DTS_DML_ALL);
}
END_TEST

START_TEST(test_conninfo_redact)
{
	char	   *s;

	s = dts_conninfo_redact("host=db1 dbname=shop user=dts password=s3cret");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "user='dts' dbname='shop' host='db1'");
	free(s);
	s = dts_conninfo_redact("postgresql://dts:s3cret@db1:5433/shop?application_name=it's");
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strstr(s, "s3cret") == NULL, "%s", s);
	ck_assert_msg(strstr(s, "port='5433'") && strstr(s, "application_name='it\\'s'"),
				  "%s", s);
	free(s);
	ck_assert_ptr_null(dts_conninfo_redact("host=x bogus=1"));
}
END_TEST

/* ----------------------------------------------------------------
 *		Plugin options
 * ----------------------------------------------------------------
 */

/* The value of option name, or NULL */
static const char *
option(char **names, char **values, int n, const char *name)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return values[i];
	return NULL;
}

START_TEST(test_options_whole_database)
{
	char	  **names;
	char	  **values;
	int			n;

	load_ok(with_name("\"objects\": \"*\""));
	n = dts_task_plugin_options(&task, &names, &values);
	ck_assert_int_eq(n, 0);
	dts_task_free_options(names, values, n);
}
END_TEST

START_TEST(test_options_quoting)
{
	char	  **names;
	char	  **values;
	int			n;

	load_ok(with_name("\"objects\": {"
					  "\"My Schema\": {\"tables\": {\"Order \\\"Lines\\\"\": {}, \"UPPER\": {}}},"
					  "\"\xc3\xa9t\xc3\xa9\": {},"
					  "\"a,b.c\": {\"tables\": [\"x*\"]}}"));
	n = dts_task_plugin_options(&task, &names, &values);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(names[0], "include_tables");
	ck_assert_str_eq(values[0],
					 "\"My Schema\".\"Order \"\"Lines\"\"\","
					 "\"My Schema\".\"UPPER\","
					 "\"\xc3\xa9t\xc3\xa9\".*,"
					 "\"a,b.c\".\"x*\","
					 "\"public\".\"dts_postgres_heartbeat\","
					 "\"public\".\"dts_ddl_command\"");
	ck_assert_ptr_null(option(names, values, n, "table_rules"));
	dts_task_free_options(names, values, n);
}
END_TEST

START_TEST(test_options_extension_tables_once)
{
	char	  **names;
	char	  **values;
	int			n;

	/* public selected whole: covered, not repeated */
	load_ok(with_name("\"objects\": {\"public\": {}}"));
	n = dts_task_plugin_options(&task, &names, &values);
	ck_assert_str_eq(option(names, values, n, "include_tables"), "\"public\".*");
	dts_task_free_options(names, values, n);

	/* a table of a whole schema is covered by "s".* */
	load_ok(with_name("\"objects\": {\"public\": {\"tables\": [\"dts_ddl_command\"]},"
					  " \"s\": {\"all\": true, \"tables\": {\"t\": {\"dml_op\": \"insert\"}}}}"));
	n = dts_task_plugin_options(&task, &names, &values);
	ck_assert_str_eq(option(names, values, n, "include_tables"),
					 "\"public\".\"dts_ddl_command\",\"s\".*,"
					 "\"public\".\"dts_postgres_heartbeat\"");
	dts_task_free_options(names, values, n);
}
END_TEST

START_TEST(test_options_table_rules)
{
	char	  **names;
	char	  **values;
	int			n;
	const char *rules;
	json_t	   *arr;
	json_t	   *r;
	json_error_t jerr;

	load_ok(full_example);
	n = dts_task_plugin_options(&task, &names, &values);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(option(names, values, n, "include_tables"),
					 "\"shop\".\"orders\",\"shop\".\"order_lines\","
					 "\"shop\".\"customers\",\"audit\".*,"
					 "\"public\".\"dts_postgres_heartbeat\","
					 "\"public\".\"dts_ddl_command\"");
	rules = option(names, values, n, "table_rules");
	ck_assert_ptr_nonnull(rules);
	arr = json_loads(rules, JSON_REJECT_DUPLICATES, &jerr);
	ck_assert_msg(arr != NULL, "table_rules is not JSON: %s", jerr.text);
	ck_assert(json_is_array(arr));
	/*
	 * once table_rules is given the plugin publishes only tables with a
	 * rule: every rule, then the heartbeat and DDL tables, bare
	 */
	ck_assert_int_eq(json_array_size(arr), 6);

	r = json_array_get(arr, 0);
	ck_assert_int_eq(json_object_size(r), 5);
	ck_assert_str_eq(json_string_value(json_object_get(r, "schema")), "shop");
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")), "orders");
	ck_assert_str_eq(json_string_value(json_object_get(r, "where")),
					 "status <> 'draft'");
	ck_assert_int_eq(json_array_size(json_object_get(r, "dml")), 2);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "dml"), 0)),
					 "insert");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "dml"), 1)),
					 "update");
	/* source column names: mapping is the shipper's */
	ck_assert_int_eq(json_array_size(json_object_get(r, "columns")), 3);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "columns"), 1)),
					 "total");

	r = json_array_get(arr, 1);
	ck_assert_int_eq(json_object_size(r), 3);
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")), "order_lines");
	ck_assert_ptr_null(json_object_get(r, "where"));
	ck_assert_ptr_null(json_object_get(r, "dml"));

	r = json_array_get(arr, 2);
	ck_assert_int_eq(json_object_size(r), 2);
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")), "customers");

	r = json_array_get(arr, 3);
	ck_assert_int_eq(json_object_size(r), 2);
	ck_assert_str_eq(json_string_value(json_object_get(r, "schema")), "audit");
	ck_assert_ptr_null(json_object_get(r, "table"));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "dml"), 1)),
					 "truncate");

	r = json_array_get(arr, 4);
	ck_assert_int_eq(json_object_size(r), 2);
	ck_assert_str_eq(json_string_value(json_object_get(r, "schema")), "public");
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")),
					 "dts_postgres_heartbeat");
	r = json_array_get(arr, 5);
	ck_assert_int_eq(json_object_size(r), 2);
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")),
					 "dts_ddl_command");
	json_decref(arr);
	dts_task_free_options(names, values, n);
}
END_TEST

START_TEST(test_options_table_rules_extension_tables)
{
	char	  **names;
	char	  **values;
	int			n;
	json_t	   *arr;
	json_t	   *r;

	/* a restricted public schema: the heartbeat gets its own bare rule */
	load_ok(with_name("\"objects\": {\"public\": {\"all\": true, \"dml_op\": \"insert\","
					  " \"tables\": {\"dts_ddl_command\": {\"dml_op\": \"insert\"}}}}"));
	n = dts_task_plugin_options(&task, &names, &values);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(option(names, values, n, "include_tables"), "\"public\".*");
	arr = json_loads(option(names, values, n, "table_rules"), 0, NULL);
	ck_assert_ptr_nonnull(arr);
	/* public, its DDL table (the task's own rule, not repeated), heartbeat */
	ck_assert_int_eq(json_array_size(arr), 3);
	r = json_array_get(arr, 1);
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")),
					 "dts_ddl_command");
	ck_assert_ptr_nonnull(json_object_get(r, "dml"));
	r = json_array_get(arr, 2);
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")),
					 "dts_postgres_heartbeat");
	ck_assert_int_eq(json_object_size(r), 2);
	json_decref(arr);
	dts_task_free_options(names, values, n);
}
END_TEST

START_TEST(test_options_table_rules_odd_names)
{
	char	  **names;
	char	  **values;
	int			n;
	json_t	   *arr;
	json_t	   *r;

	load_ok(with_name("\"objects\": {\"My \\\"S\\\"\": {\"tables\": {\"\xc3\xa9t\xc3\xa9\": "
					  "{\"filter\": \"\\\"Name\\\" = 'x\\\\y'\", \"columns\": [\"A b\"]}}}}"));
	n = dts_task_plugin_options(&task, &names, &values);
	arr = json_loads(option(names, values, n, "table_rules"), 0, NULL);
	ck_assert_ptr_nonnull(arr);
	r = json_array_get(arr, 0);
	ck_assert_str_eq(json_string_value(json_object_get(r, "schema")), "My \"S\"");
	ck_assert_str_eq(json_string_value(json_object_get(r, "table")),
					 "\xc3\xa9t\xc3\xa9");
	ck_assert_str_eq(json_string_value(json_object_get(r, "where")),
					 "\"Name\" = 'x\\y'");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "columns"), 0)),
					 "A b");
	json_decref(arr);
	dts_task_free_options(names, values, n);
}
END_TEST

static Suite *
task_suite(void)
{
	Suite	   *s = suite_create("task");
	TCase	   *valid = tcase_create("valid");
	TCase	   *errors = tcase_create("errors");
	TCase	   *rules = tcase_create("rules");
	TCase	   *options = tcase_create("options");

	tcase_add_checked_fixture(valid, setup, teardown);
	tcase_add_test(valid, test_full_example);
	tcase_add_test(valid, test_defaults);
	tcase_add_test(valid, test_parallel_switches);
	tcase_add_test(valid, test_whole_database_and_schema_forms);
	tcase_add_test(valid, test_all_schema_with_tables);
	tcase_add_test(valid, test_dml_forms);
	tcase_add_test(valid, test_other_sinks_keep_json);
	tcase_add_test(valid, test_odd_identifiers_kept_literally);
	suite_add_tcase(s, valid);

	tcase_add_checked_fixture(errors, setup, teardown);
	tcase_add_test(errors, test_malformed_json);
	tcase_add_test(errors, test_duplicate_key);
	tcase_add_test(errors, test_unreadable_file);
	tcase_add_test(errors, test_unknown_keys);
	tcase_add_test(errors, test_wrong_types);
	tcase_add_test(errors, test_out_of_range);
	tcase_add_test(errors, test_empty_names);
	tcase_add_test(errors, test_bad_names);
	tcase_add_test(errors, test_invalid_dml_op);
	tcase_add_test(errors, test_selection_mistakes);
	tcase_add_test(errors, test_odd_identifier_paths);
	tcase_add_test(errors, test_sink_and_sync_mistakes);
	tcase_add_test(errors, test_conninfo_mistakes);
	tcase_add_test(errors, test_failure_leaves_task_unchanged);
	suite_add_tcase(s, errors);

	tcase_add_checked_fixture(rules, setup, teardown);
	tcase_add_test(rules, test_finish);
	tcase_add_test(rules, test_find_rule);
	tcase_add_test(rules, test_conninfo_redact);
	suite_add_tcase(s, rules);

	tcase_add_checked_fixture(options, setup, teardown);
	tcase_add_test(options, test_options_whole_database);
	tcase_add_test(options, test_options_quoting);
	tcase_add_test(options, test_options_extension_tables_once);
	tcase_add_test(options, test_options_table_rules);
	tcase_add_test(options, test_options_table_rules_extension_tables);
	tcase_add_test(options, test_options_table_rules_odd_names);
	suite_add_tcase(s, options);
	return s;
}

int
main(void)
{
	SRunner    *sr = srunner_create(task_suite());
	int			failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

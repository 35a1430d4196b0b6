/*-------------------------------------------------------------------------
 *
 * verify_driver.c
 *	  A command-line front end to shipper/verify.c and shipper/sequences.c
 *	  for tests/verify/run.sh, until pg_dts_ship's --verify and
 *	  --sync-sequences are wired.
 *
 * Usage:
 *	verify_driver verify SRC DST [-c CHUNK] [-m MIN] [-l LISTED] TABLE...
 *	verify_driver sequences SRC DST SEQ...
 *	verify_driver task-verify SRC DST RULE...
 *	verify_driver task-sequences SRC DST RULE...
 *
 * SRC and DST are conninfo strings.  Fields are separated by '|':
 *	TABLE	src_schema|src_table|dst_schema|dst_table|columns|where
 *			(columns: "a=x,b" maps a to x and keeps b; empty = all)
 *	SEQ		src_schema|src_name|dst_schema|dst_name
 *	RULE	schema|table|new_schema|new_table|columns|where (a task rule;
 *			empty table = the whole schema; "*" alone = whole database)
 * Empty fields mean "not set".  Exit status as pg_dts_ship's: 0 identical
 * (or all sequences done), 1 differences (or failures), 2 error.
 *
 * tests/verify/verify_driver.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libpq-fe.h"

#include "sequences.h"
#include "verify.h"

/* Splits s at '|' into at most n fields; empty fields become NULL */
static void
split_fields(char *s, char **fields, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		char	   *f = s ? strsep(&s, "|") : NULL;

		fields[i] = (f && *f) ? f : NULL;
	}
}

/* "a=x,b" into columns; returns their number */
static int
parse_columns(char *spec, DtsVerifyColumn **cols)
{
	int			n = 0;
	char	   *item;

	*cols = NULL;
	if (spec == NULL)
		return 0;
	*cols = calloc(strlen(spec) + 1, sizeof(DtsVerifyColumn));
	while ((item = strsep(&spec, ",")) != NULL)
	{
		char	   *eq = strchr(item, '=');

		if (eq)
			*eq++ = '\0';
		(*cols)[n].src_name = item;
		(*cols)[n].dst_name = eq;
		n++;
	}
	return n;
}

static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "verify_driver: %s", PQerrorMessage(conn));
		exit(2);
	}
	return conn;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
run_verify(PGconn *src, PGconn *dst, int argc, char **argv)
{
	DtsVerifyOptions opts;
	DtsVerifyTable *tables = calloc(argc + 1, sizeof(DtsVerifyTable));
	int			ntables = 0;
	int			i;
	int			r;
	double		t0;

	dts_verify_options_init(&opts);
	for (i = 0; i < argc; i++)
	{
		char	   *f[6];

		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
		{
			opts.chunk_rows = atol(argv[++i]);
			continue;
		}
		if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
		{
			opts.min_chunk = atol(argv[++i]);
			continue;
		}
		if (strcmp(argv[i], "-l") == 0 && i + 1 < argc)
		{
			opts.max_listed = atoi(argv[++i]);
			continue;
		}
		split_fields(argv[i], f, 6);
		tables[ntables].src_schema = f[0];
		tables[ntables].src_table = f[1];
		tables[ntables].dst_schema = f[2];
		tables[ntables].dst_table = f[3];
		tables[ntables].ncolumns = parse_columns(f[4],
												 &tables[ntables].columns);
		tables[ntables].where = f[5];
		ntables++;
	}
	t0 = now_s();
	r = dts_verify_tables(src, dst, tables, ntables, &opts, stdout);
	fprintf(stderr, "verify_driver: %d tables in %.2f s\n", ntables,
			now_s() - t0);
	for (i = 0; i < ntables; i++)
		free(tables[i].columns);
	free(tables);
	return r < 0 ? 2 : r > 0 ? 1 : 0;
}

static int
run_sequences(PGconn *src, PGconn *dst, int argc, char **argv)
{
	DtsSequenceMap *seqs = calloc(argc + 1, sizeof(DtsSequenceMap));
	int			i;

	for (i = 0; i < argc; i++)
	{
		char	   *f[4];

		split_fields(argv[i], f, 4);
		seqs[i].src_schema = f[0];
		seqs[i].src_name = f[1];
		seqs[i].dst_schema = f[2];
		seqs[i].dst_name = f[3];
	}
	i = dts_sync_sequences(src, dst, seqs, argc, stdout);
	free(seqs);
	return i > 0 ? 1 : 0;
}

static void
task_rules_free(DtsTask *task)
{
	int			i;

	for (i = 0; i < task->nrules; i++)
		free(task->rules[i].columns);
	free(task->rules);
}

/* A DtsTask with just the object selection, from RULE arguments */
static void
task_from_rules(DtsTask *task, int argc, char **argv)
{
	int			i;

	memset(task, 0, sizeof(*task));
	task->rules = calloc(argc + 1, sizeof(DtsTableRule));
	for (i = 0; i < argc; i++)
	{
		DtsTableRule *r = &task->rules[task->nrules];
		DtsVerifyColumn *vc;
		char	   *f[6];
		int			j;

		if (strcmp(argv[i], "*") == 0)
		{
			task->whole_database = true;
			continue;
		}
		split_fields(argv[i], f, 6);
		r->schema = f[0];
		r->table = f[1];
		r->new_schema = f[2];
		r->new_table = f[3];
		r->ncolumns = parse_columns(f[4], &vc);
		r->columns = calloc(r->ncolumns + 1, sizeof(DtsColumnRule));
		for (j = 0; j < r->ncolumns; j++)
		{
			r->columns[j].name = vc[j].src_name;
			r->columns[j].new_name = vc[j].dst_name;
		}
		free(vc);
		r->where = f[5];
		r->dml = DTS_DML_ALL;
		task->nrules++;
	}
}

int
main(int argc, char **argv)
{
	PGconn	   *src,
			   *dst;
	DtsTask		task;
	char		err[1024];
	int			rc = 2;

	if (argc < 4)
	{
		fprintf(stderr, "usage: %s verify|sequences|task-verify|"
				"task-sequences SRC DST ARGS...\n", argv[0]);
		return 2;
	}
	src = connect_or_die(argv[2]);
	dst = connect_or_die(argv[3]);

	if (strcmp(argv[1], "verify") == 0)
		rc = run_verify(src, dst, argc - 4, argv + 4);
	else if (strcmp(argv[1], "sequences") == 0)
		rc = run_sequences(src, dst, argc - 4, argv + 4);
	else if (strcmp(argv[1], "task-verify") == 0)
	{
		DtsVerifyTable *tables;
		int			n;

		task_from_rules(&task, argc - 4, argv + 4);
		if (dts_verify_tables_for_task(src, &task, &tables, &n, err,
									   sizeof(err)) < 0)
			fprintf(stderr, "verify_driver: %s\n", err);
		else
		{
			int			r = dts_verify_tables(src, dst, tables, n, NULL,
											  stdout);

			rc = r < 0 ? 2 : r > 0 ? 1 : 0;
			dts_verify_tables_free(tables, n);
		}
		task_rules_free(&task);
	}
	else if (strcmp(argv[1], "task-sequences") == 0)
	{
		DtsSequenceMap *seqs;
		int			n;

		task_from_rules(&task, argc - 4, argv + 4);
		if (dts_sequences_for_task(src, &task, &seqs, &n, err,
								   sizeof(err)) < 0)
			fprintf(stderr, "verify_driver: %s\n", err);
		else
		{
			rc = dts_sync_sequences(src, dst, seqs, n, stdout) > 0 ? 1 : 0;
			dts_sequences_free(seqs, n);
		}
		task_rules_free(&task);
	}
	else
		fprintf(stderr, "verify_driver: unknown mode \"%s\"\n", argv[1]);

	PQfinish(src);
	PQfinish(dst);
	return rc;
}

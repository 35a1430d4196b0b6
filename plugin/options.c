/*-------------------------------------------------------------------------
 *
 * options.c
 *	  The pg_dts output plugin's options: parsed from a table at startup,
 *	  rejecting unknown, repeated and malformed options before any change
 *	  is decoded, and the table and message-prefix filters they define.
 *
 * table_rules, a JSON array, is read with the server's own JSON parser
 * (first for the syntax, whose errors it words best, then into jsonb to
 * walk it); the row filters in it are only parsed here, and analyzed
 * against their tables in rowfilter.c when a table's first change comes.
 *
 * plugin/options.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"
#include "parser/scansup.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"

#include "pg_dts.h"

#define DTS_BATCH_BYTES_DEFAULT (64 * 1024)
#define DTS_BATCH_BYTES_MAX		(16 * 1024 * 1024)

typedef void (*PgDtsOptionParser) (PgDtsOptions *opts, const char *name,
								   const char *value);

typedef struct PgDtsOptionDef
{
	const char *name;
	PgDtsOptionParser parse;
	const char *expected;		/* for the error hint */
} PgDtsOptionDef;

static void parse_proto_version(PgDtsOptions *opts, const char *name,
								const char *value);
static void parse_format(PgDtsOptions *opts, const char *name,
						 const char *value);
static void parse_binary_types(PgDtsOptions *opts, const char *name,
							   const char *value);
static void parse_batch_bytes(PgDtsOptions *opts, const char *name,
							  const char *value);
static void parse_streaming(PgDtsOptions *opts, const char *name,
							const char *value);
static void parse_origin(PgDtsOptions *opts, const char *name,
						 const char *value);
static void parse_messages(PgDtsOptions *opts, const char *name,
						   const char *value);
static void parse_message_prefixes(PgDtsOptions *opts, const char *name,
								   const char *value);
static void parse_include_tables(PgDtsOptions *opts, const char *name,
								 const char *value);
static void parse_exclude_tables(PgDtsOptions *opts, const char *name,
								 const char *value);
static void parse_table_rules(PgDtsOptions *opts, const char *name,
							  const char *value);

static const PgDtsOptionDef option_defs[] = {
	{"proto_version", parse_proto_version, "1"},
	{"format", parse_format, "\"binary\" or \"text\""},
	{"binary_types", parse_binary_types,
	"a comma-separated list of built-in type names"},	/* see binary_type_hint() */
	{"batch_bytes", parse_batch_bytes, "an integer from 1 to 16777216"},
	{"streaming", parse_streaming, "a Boolean value"},
	{"origin", parse_origin, "\"any\" or \"none\""},
	{"messages", parse_messages, "a Boolean value"},
	{"message_prefixes", parse_message_prefixes,
	"a comma-separated list of prefixes"},
	{"include_tables", parse_include_tables,
	"a comma-separated list of schema.table names, \"*\" allowed for either part"},
	{"exclude_tables", parse_exclude_tables,
	"a comma-separated list of schema.table names, \"*\" allowed for either part"},
	{"table_rules", parse_table_rules,
	"a JSON array of objects such as [{\"schema\": \"public\", \"table\": \"orders\", \"where\": \"amount > 0\", \"dml\": [\"insert\", \"update\"], \"columns\": [\"id\", \"amount\"]}], in which only \"schema\" is required"},
};

#define NUM_OPTION_DEFS lengthof(option_defs)

static void
report_bad_value(const char *name, const char *value, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value \"%s\" for pg_dts option \"%s\"",
					value, name),
			 errhint("The value of \"%s\" must be %s.", name, expected)));
}

static const PgDtsOptionDef *
find_option(const char *name)
{
	for (int i = 0; i < NUM_OPTION_DEFS; i++)
	{
		if (strcmp(option_defs[i].name, name) == 0)
			return &option_defs[i];
	}
	return NULL;
}

static char *
option_names(void)
{
	StringInfoData names;

	initStringInfo(&names);
	for (int i = 0; i < NUM_OPTION_DEFS; i++)
		appendStringInfo(&names, "%s%s", i > 0 ? ", " : "",
						 option_defs[i].name);
	return names.data;
}

/*
 * Parses the options given to the slot's decoding session into *opts,
 * after setting the defaults.  Any problem is an ERROR naming the option.
 */
void
pg_dts_parse_options(PgDtsOptions *opts, List *options)
{
	bool		seen[NUM_OPTION_DEFS] = {0};
	ListCell   *lc;

	memset(opts, 0, sizeof(*opts));
	opts->binary = true;
	opts->batch_bytes = DTS_BATCH_BYTES_DEFAULT;
	opts->messages = true;

	foreach(lc, options)
	{
		DefElem    *elem = lfirst(lc);
		const PgDtsOptionDef *def = find_option(elem->defname);
		int			idx;

		if (def == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized pg_dts option \"%s\"",
							elem->defname),
					 errhint("Valid options are: %s.", option_names())));
		idx = def - option_defs;
		if (seen[idx])
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("pg_dts option \"%s\" is given more than once",
							elem->defname),
					 errhint("Give each option at most once.")));
		seen[idx] = true;
		if (elem->arg == NULL || !IsA(elem->arg, String))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pg_dts option \"%s\" requires a value",
							elem->defname),
					 errhint("The value of \"%s\" must be %s.",
							 def->name, def->expected)));
		def->parse(opts, def->name, strVal(elem->arg));
	}
}

static void
parse_proto_version(PgDtsOptions *opts, const char *name, const char *value)
{
	if (strcmp(value, "1") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pg_dts frame format version \"%s\" is not supported",
						value),
				 errdetail("This server's pg_dts writes frame format version %d.",
						   DTS_FRAME_VERSION),
				 errhint("Upgrade the client, or request version %d.",
						 DTS_FRAME_VERSION)));
}

static void
parse_format(PgDtsOptions *opts, const char *name, const char *value)
{
	if (strcmp(value, "binary") == 0)
		opts->binary = true;
	else if (strcmp(value, "text") == 0)
		opts->binary = false;
	else
		report_bad_value(name, value, find_option(name)->expected);
}

/*
 * The built-in types binary_types may name: those with a compact or a
 * typsend encoding that a text client can render itself (frames.md §4),
 * under the names format_type() gives them ("char" as char).
 */
static const struct
{
	const char *name;
	Oid			oid;
}			binary_type_names[] = {
	{"int2", INT2OID}, {"int4", INT4OID}, {"int8", INT8OID}, {"oid", OIDOID},
	{"float4", FLOAT4OID}, {"float8", FLOAT8OID}, {"bool", BOOLOID},
	{"char", CHAROID}, {"date", DATEOID}, {"time", TIMEOID},
	{"timetz", TIMETZOID}, {"timestamp", TIMESTAMPOID},
	{"timestamptz", TIMESTAMPTZOID}, {"numeric", NUMERICOID},
	{"bytea", BYTEAOID}, {"uuid", UUIDOID},
};

StaticAssertDecl(lengthof(binary_type_names) <= PGDTS_MAX_BINARY_TYPES,
				 "PGDTS_MAX_BINARY_TYPES is too small");

/* "int2, int4, ...": the names above, for the error hint */
static char *
binary_type_hint(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(binary_type_names); i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
						 binary_type_names[i].name);
	return buf.data;
}

/*
 * binary_types: columns of these types (the column's own type: not a
 * domain over one) are sent in their binary encoding even under
 * format=text.  The empty string names none.
 */
static void
parse_binary_types(PgDtsOptions *opts, const char *name, const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *tok;
	char	   *save;

	opts->nbinary_types = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
		 tok = strtok_r(NULL, ",", &save))
	{
		char	   *t = tok;
		char	   *end;
		Oid			oid = InvalidOid;

		while (scanner_isspace(*t))
			t++;
		end = t + strlen(t);
		while (end > t && scanner_isspace(end[-1]))
			*--end = '\0';
		for (int i = 0; i < lengthof(binary_type_names); i++)
			if (pg_strcasecmp(t, binary_type_names[i].name) == 0)
				oid = binary_type_names[i].oid;
		if (!OidIsValid(oid))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid type name \"%s\" in pg_dts option \"%s\"",
							t, name),
					 errhint("The value of \"%s\" must be %s: %s.", name,
							 find_option(name)->expected,
							 binary_type_hint())));
		if (!pg_dts_binary_type(opts, oid))
			opts->binary_types[opts->nbinary_types++] = oid;
	}
	pfree(copy);
}

/* Is typoid sent in its binary encoding under format=text? */
bool
pg_dts_binary_type(const PgDtsOptions *opts, Oid typoid)
{
	for (int i = 0; i < opts->nbinary_types; i++)
		if (opts->binary_types[i] == typoid)
			return true;
	return false;
}

static void
parse_batch_bytes(PgDtsOptions *opts, const char *name, const char *value)
{
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' ||
		n < 1 || n > DTS_BATCH_BYTES_MAX)
		report_bad_value(name, value, find_option(name)->expected);
	opts->batch_bytes = (int) n;
}

static bool
parse_boolean_option(const char *name, const char *value)
{
	bool		result;

	if (!parse_bool(value, &result))
		report_bad_value(name, value, find_option(name)->expected);
	return result;
}

static void
parse_streaming(PgDtsOptions *opts, const char *name, const char *value)
{
	opts->streaming = parse_boolean_option(name, value);
}

static void
parse_messages(PgDtsOptions *opts, const char *name, const char *value)
{
	opts->messages = parse_boolean_option(name, value);
}

static void
parse_origin(PgDtsOptions *opts, const char *name, const char *value)
{
	if (pg_strcasecmp(value, "any") == 0)
		opts->skip_replayed = false;
	else if (pg_strcasecmp(value, "none") == 0)
		opts->skip_replayed = true;
	else
		report_bad_value(name, value, find_option(name)->expected);
}

static void
parse_message_prefixes(PgDtsOptions *opts, const char *name,
					   const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *tok;
	char	   *save;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *prefix = tok;
		char	   *end;

		while (*prefix == ' ')
			prefix++;
		end = prefix + strlen(prefix);
		while (end > prefix && end[-1] == ' ')
			*--end = '\0';
		if (*prefix == '\0')
			report_bad_value(name, value, find_option(name)->expected);
		opts->message_prefixes = lappend(opts->message_prefixes, prefix);
	}
	if (opts->message_prefixes == NIL)
		report_bad_value(name, value, find_option(name)->expected);
}

/*
 * Reads one identifier at *p: double-quoted (with "" for a quote, case
 * kept), "*" (returns NULL), or bare (downcased, as PostgreSQL does).
 * Returns false on a syntax error.
 */
static bool
read_identifier(const char **p, char **ident)
{
	const char *s = *p;
	StringInfoData buf;

	while (*s == ' ')
		s++;
	if (*s == '*')
	{
		*ident = NULL;
		*p = s + 1;
		return true;
	}
	initStringInfo(&buf);
	if (*s == '"')
	{
		for (s++;; s++)
		{
			if (*s == '\0')
				return false;
			if (*s == '"')
			{
				if (s[1] != '"')
					break;
				s++;
			}
			appendStringInfoChar(&buf, *s);
		}
		s++;
		if (buf.len == 0)
			return false;
	}
	else
	{
		const char *start = s;
		char	   *down;

		while (*s && *s != '.' && *s != ',' && *s != ' ')
			s++;
		if (s == start)
			return false;
		down = downcase_identifier(start, s - start, false, false);
		appendStringInfoString(&buf, down);
	}
	*ident = buf.data;
	*p = s;
	return true;
}

/* Parses "schema.table[, ...]" into a list of PgDtsTablePattern. */
static List *
parse_table_list(const char *name, const char *value)
{
	const char *p = value;
	List	   *patterns = NIL;

	for (;;)
	{
		PgDtsTablePattern *pat = palloc0(sizeof(PgDtsTablePattern));

		if (!read_identifier(&p, &pat->schema) || *p != '.')
			goto syntax_error;
		p++;
		if (!read_identifier(&p, &pat->table))
			goto syntax_error;
		patterns = lappend(patterns, pat);
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (*p != ',')
			goto syntax_error;
		p++;
	}
	return patterns;

syntax_error:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid table list \"%s\" for pg_dts option \"%s\"",
					value, name),
			 *p ? errdetail("The list could not be read at \"%s\".", p) :
			 errdetail("The list ended where a name, \".\" or \"*\" was expected."),
			 errhint("Give schema-qualified names separated by commas, such as public.orders, \"My Schema\".\"Order Lines\", sales.*.")));
	return NIL;					/* keep compiler quiet */
}

static void
parse_include_tables(PgDtsOptions *opts, const char *name, const char *value)
{
	opts->include_tables = parse_table_list(name, value);
}

static void
parse_exclude_tables(PgDtsOptions *opts, const char *name, const char *value)
{
	opts->exclude_tables = parse_table_list(name, value);
}

/* ----------------------------------------------------------------
 *		table_rules
 * ----------------------------------------------------------------
 */

/* Reports a table_rules value that is not what we expect; detail says why. */
static void
report_bad_rules(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for pg_dts option \"table_rules\""),
			 errdetail("%s", detail),
			 errhint("The value of \"table_rules\" must be %s.",
					 find_option("table_rules")->expected)));
}

/* The JSON string v, as a NUL-terminated copy; errors if it is not one. */
static char *
rule_string(const JsonbValue *v, int index, const char *key)
{
	char	   *str;

	if (v->type != jbvString)
		report_bad_rules(psprintf("In table_rules[%d], key \"%s\" is not a string.",
								  index, key));
	str = pnstrdup(v->val.string.val, v->val.string.len);
	if (str[0] == '\0')
		report_bad_rules(psprintf("In table_rules[%d], key \"%s\" is an empty string.",
								  index, key));
	return str;
}

/* The JSON array of strings v, as a List of char *, without duplicates. */
static List *
rule_string_list(const JsonbValue *v, int index, const char *key)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	List	   *list = NIL;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		report_bad_rules(psprintf("In table_rules[%d], key \"%s\" is not an array of strings.",
								  index, key));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		char	   *str;
		ListCell   *lc;

		if (tok != WJB_ELEM)
			continue;
		if (elem.type != jbvString)
			report_bad_rules(psprintf("In table_rules[%d], key \"%s\" is not an array of strings.",
									  index, key));
		str = rule_string(&elem, index, key);
		foreach(lc, list)
		{
			if (strcmp(lfirst(lc), str) == 0)
				report_bad_rules(psprintf("In table_rules[%d], key \"%s\" lists \"%s\" twice.",
										  index, key, str));
		}
		list = lappend(list, str);
	}
	return list;
}

/* The PGDTS_DML_* bits of a "dml" array. */
static uint8
rule_dml(const JsonbValue *v, int index)
{
	static const struct
	{
		const char *word;
		uint8		bit;
	}			words[] = {
		{"insert", PGDTS_DML_INSERT},
		{"update", PGDTS_DML_UPDATE},
		{"delete", PGDTS_DML_DELETE},
		{"truncate", PGDTS_DML_TRUNCATE},
	};
	uint8		dml = 0;
	ListCell   *lc;

	foreach(lc, rule_string_list(v, index, "dml"))
	{
		const char *word = lfirst(lc);
		int			i;

		for (i = 0; i < lengthof(words); i++)
		{
			if (strcmp(words[i].word, word) == 0)
				break;
		}
		if (i == lengthof(words))
			report_bad_rules(psprintf("In table_rules[%d], key \"dml\" has the unknown word \"%s\"; the words are insert, update, delete and truncate.",
									  index, word));
		dml |= words[i].bit;
	}
	if (dml == 0)
		report_bad_rules(psprintf("In table_rules[%d], key \"dml\" is an empty array, which would publish nothing.",
								  index));
	return dml;
}

/* Reads element index of the array, v, into a new rule. */
static PgDtsTableRule *
parse_rule(const JsonbValue *v, int index)
{
	PgDtsTableRule *rule = palloc0(sizeof(PgDtsTableRule));
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		report_bad_rules(psprintf("table_rules[%d] is not an object.", index));
	rule->index = index;
	rule->dml = PGDTS_DML_ALL;
	rule->all_columns = true;

	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(key.val.string.val, key.val.string.len);
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		if (strcmp(name, "schema") == 0)
			rule->schema = rule_string(&val, index, name);
		else if (strcmp(name, "table") == 0)
			rule->table = rule_string(&val, index, name);
		else if (strcmp(name, "where") == 0)
		{
			rule->where = rule_string(&val, index, name);
			rule->where_raw = pg_dts_rowfilter_parse(rule->where, index);
		}
		else if (strcmp(name, "dml") == 0)
			rule->dml = rule_dml(&val, index);
		else if (strcmp(name, "columns") == 0)
		{
			rule->columns = rule_string_list(&val, index, name);
			rule->all_columns = false;
		}
		else
			report_bad_rules(psprintf("table_rules[%d] has the unknown key \"%s\"; the keys are schema, table, where, dml and columns.",
									  index, name));
	}
	if (rule->schema == NULL)
		report_bad_rules(psprintf("table_rules[%d] has no key \"schema\".",
								  index));
	return rule;
}

static void
parse_table_rules(PgDtsOptions *opts, const char *name, const char *value)
{
	JsonLexContext *lex;
	JsonParseErrorType jerr;
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	int			index = 0;
	ListCell   *lc;

	/* the syntax first, for an error that says what is wrong where */
	lex = makeJsonLexContextCstringLen(pstrdup(value), strlen(value),
									   GetDatabaseEncoding(), true);
	jerr = pg_parse_json(lex, &nullSemAction);
	if (jerr != JSON_SUCCESS)
		report_bad_rules(psprintf("The value is not valid JSON: %s",
								  json_errdetail(jerr, lex)));

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(value)));
	if (JB_ROOT_IS_SCALAR(jb) || !JB_ROOT_IS_ARRAY(jb))
		report_bad_rules("The value is not a JSON array.");

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		PgDtsTableRule *rule;

		if (tok != WJB_ELEM)
			continue;
		rule = parse_rule(&elem, index++);

		foreach(lc, opts->table_rules)
		{
			PgDtsTableRule *other = lfirst(lc);

			if (strcmp(other->schema, rule->schema) != 0)
				continue;
			if (rule->table == NULL && other->table == NULL)
				report_bad_rules(psprintf("table_rules[%d] and table_rules[%d] are both for schema \"%s\".",
										  other->index, rule->index,
										  rule->schema));
			if (rule->table != NULL && other->table != NULL &&
				strcmp(rule->table, other->table) == 0)
				report_bad_rules(psprintf("table_rules[%d] and table_rules[%d] are both for table \"%s\".\"%s\".",
										  other->index, rule->index,
										  rule->schema, rule->table));
		}
		opts->table_rules = lappend(opts->table_rules, rule);
	}
	if (opts->table_rules == NIL)
		report_bad_rules("The array is empty, which would publish no table.");
}

/*
 * The table rule for schema.table: the one naming the table, else the one
 * for its whole schema, else NULL.
 */
const PgDtsTableRule *
pg_dts_find_table_rule(const PgDtsOptions *opts, const char *schema,
					   const char *table)
{
	const PgDtsTableRule *schema_rule = NULL;
	ListCell   *lc;

	foreach(lc, opts->table_rules)
	{
		const PgDtsTableRule *rule = lfirst(lc);

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
 *		Table and message filters
 * ----------------------------------------------------------------
 */

static bool
pattern_list_matches(List *patterns, const char *schema, const char *table)
{
	ListCell   *lc;

	foreach(lc, patterns)
	{
		PgDtsTablePattern *pat = lfirst(lc);

		if ((pat->schema == NULL || strcmp(pat->schema, schema) == 0) &&
			(pat->table == NULL || strcmp(pat->table, table) == 0))
			return true;
	}
	return false;
}

/* Does the relation schema.table pass include_tables and exclude_tables? */
bool
pg_dts_table_selected(const PgDtsOptions *opts, const char *schema,
					  const char *table)
{
	if (opts->include_tables != NIL &&
		!pattern_list_matches(opts->include_tables, schema, table))
		return false;
	return !pattern_list_matches(opts->exclude_tables, schema, table);
}

/* Does a logical message with this prefix pass messages/message_prefixes? */
bool
pg_dts_message_selected(const PgDtsOptions *opts, const char *prefix)
{
	ListCell   *lc;

	if (!opts->messages)
		return false;
	if (opts->message_prefixes == NIL)
		return true;
	foreach(lc, opts->message_prefixes)
	{
		if (strcmp((const char *) lfirst(lc), prefix) == 0)
			return true;
	}
	return false;
}

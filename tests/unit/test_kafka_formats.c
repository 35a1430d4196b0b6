/* unit-test-sources: shipper/formats/record.c shipper/formats/dts_avro.c shipper/formats/shareplex_json.c shipper/formats/canal_json.c build/gen/dts_record_avsc.c; unit-test-libs: avro-c jansson */
/*-------------------------------------------------------------------------
 *
 * test_kafka_formats.c
 *	  Unit tests of the Kafka value formats: DTS Avro, SharePlex JSON and
 *	  Canal JSON.
 *
 * Changes are written as real pg_dts messages (common/frame_write.c) and
 * read back with the decoder, so the encoders see exactly what the shipper
 * gives them.  Avro records are decoded again with avro-c against the
 * schema file (../shared/formats/dts_record.avsc when present, else the
 * embedded copy) and checked value by value; the JSON formats are parsed
 * with jansson and checked field by field.
 *
 * With DTS_AVRO_DUMP=FILE set, every Avro record made here is also written
 * to FILE (4-byte big-endian length, then the record) and its inputs, one
 * JSON object a line, to FILE.manifest.jsonl, for the independent decoder
 * tests/kafka/check_avro.py (run by tests/kafka/run_avro_check.sh).
 *
 * Build: the first line names the sources besides common/ (the frame code); the
 * generated build/gen/dts_record_avsc.c comes from the rule in
 * shipper/formats/Makefile.inc (the top Makefile must include it).
 *
 * The value texts are those PostgreSQL 15 prints for the table of
 * tests/regress/sql/plugin_types.sql under the shipper's session settings
 * (DateStyle=ISO, TimeZone=UTC, extra_float_digits=3,
 * IntervalStyle=postgres).
 *
 * tests/unit/test_kafka_formats.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_dts/frame.h"
#include "formats/canal_json.h"
#include "formats/dts_avro.h"
#include "formats/record.h"
#include "formats/shareplex_json.h"

#include <avro.h>
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------
 *		The plugin_types table and its values
 * ----------------------------------------------------------------
 */
typedef struct TypeCol
{
	const char *name;
	uint32_t	typoid;
	int32_t		typmod;
} TypeCol;

#define NTYPECOLS 41
static const TypeCol type_cols[NTYPECOLS] = {
	{"id", 23, -1}, {"c_int2", 21, -1}, {"c_int4", 23, -1},
	{"c_int8", 20, -1}, {"c_oid", 26, -1}, {"c_numeric", 1700, -1},
	{"c_num_typmod", 1700, 786438}, {"c_float4", 700, -1},
	{"c_float8", 701, -1}, {"c_money", 790, -1}, {"c_text", 25, -1},
	{"c_varchar", 1043, 24}, {"c_bpchar", 1042, 9}, {"c_name", 19, -1},
	{"c_char", 18, -1}, {"c_bytea", 17, -1}, {"c_bool", 16, -1},
	{"c_date", 1082, -1}, {"c_time", 1083, -1}, {"c_timetz", 1266, -1},
	{"c_timestamp", 1114, -1}, {"c_timestamptz", 1184, -1},
	{"c_interval", 1186, -1}, {"c_uuid", 2950, -1}, {"c_json", 114, -1},
	{"c_jsonb", 3802, -1}, {"c_inet", 869, -1}, {"c_cidr", 650, -1},
	{"c_macaddr", 829, -1}, {"c_bit", 1560, 4}, {"c_varbit", 1562, -1},
	{"c_point", 600, -1}, {"c_box", 603, -1}, {"c_tsvector", 3614, -1},
	{"c_xml", 142, -1}, {"c_int4range", 3904, -1},
	{"c_int_array", 1007, -1}, {"c_text_array", 1009, -1},
	{"c_enum", 16385, -1}, {"c_composite", 16393, -1},
	{"c_domain", 16395, -1}
};

/* NULL = SQL NULL */
static const char *const type_rows[3][NTYPECOLS] = {
	{"1", "32767", "2147483647", "9223372036854775807", "4294967295",
		"123456789012345678901234567890.123456789", "1234567890.12", "3.25",
		"2.5e+300", "$12.34", "it's \"quoted\" \xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9 \xe2\x98\x83",
		"varchar", "ab   ", "a name", "x", "\\x00010200ff", "t", "2024-02-29",
		"23:59:59.999999", "12:00:00+05:30", "2024-01-01 00:00:00.000001",
		"2024-06-30 10:34:56.789+00", "1 year 2 mons 3 days 04:05:06.789",
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"{\"a\": [1, 2.5, \"x\"], \"b\": null}",
		"{\"k\": {\"n\": 1}, \"arr\": [true, false]}", "192.168.0.1/24",
		"10.0.0.0/8", "08:00:2b:01:02:03", "1010", "101", "(1.5,-2)",
		"(1,1),(0,0)", "'brown' 'fox' 'quick' 'the'", "<a>x</a>", "[1,10)",
		"{1,NULL,3}", "{\"a b\",\"c\\\"d\",NULL}", "happy", "(7,seven)", "42"},
	{"2", "-32768", "-2147483648", "-9223372036854775808", "0", "NaN",
		"-0.01", "NaN", "-Infinity", "-$0.50", "", "", "     ", "", "\001",
		"\\x", "f", "infinity", "00:00:00", "00:00:00-12", "-infinity",
		"infinity", "-178000000 years", "00000000-0000-0000-0000-000000000000",
		"[]", "\"str\"", "::1", "::/0", "00:00:00:00:00:00", "0000", "",
		"(0,0)", "(1,1),(-1,-1)", "", "<e/>", "empty", "{}", "{}", "sad",
		"(,)", "1"},
	{"3", "0", "0", "0", "1", "Infinity", "0.00", "Infinity", "-0", "$0.00",
		"line1\nline2\ttab\\back", "x", "abcde", "Name", " ", "\\xdeadbeef",
		NULL, "-infinity", "12:00:00", "24:00:00+00", "infinity", "-infinity",
		"-1 days -00:00:01", "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"{\"nested\": {\"deep\": [[]]}}", "{}", "2001:db8::1", "2001:db8::/32",
		"ff:ff:ff:ff:ff:ff", "1111", "1", "(-10000000000,1e-10)",
		"(3,4),(1,2)", "'a':1 'b':2", NULL, "(,6)", "{{1,2},{3,4}}",
		"{\"\",\"NULL\"}", "ok", "(0,\"\")", "2147483647"}
};

/* ----------------------------------------------------------------
 *		Helpers: relations, values, frames
 * ----------------------------------------------------------------
 */

static void *
xrealloc(void *p, size_t n)
{
	void	   *r = realloc(p, n);

	if (r == NULL)
		abort();
	return r;
}

static DtsColumn type_columns[NTYPECOLS];
static DtsRelation types_rel;

static void
build_types_rel(void)
{
	for (int i = 0; i < NTYPECOLS; i++)
	{
		type_columns[i].name = (char *) type_cols[i].name;
		type_columns[i].typoid = type_cols[i].typoid;
		type_columns[i].typmod = type_cols[i].typmod;
		type_columns[i].key = (i == 0);
		type_columns[i].encoding = DTS_ENC_TEXT;
	}
	types_rel.relid = 16400;
	types_rel.schema = "public";
	types_rel.table = "regress_types";
	types_rel.replident = DTS_REPLIDENT_DEFAULT;
	types_rel.ncols = NTYPECOLS;
	types_rel.nkeys = 1;
	types_rel.columns = type_columns;
}

/* A TEXT value (NULL text = SQL NULL); 'u' / '-' statuses with status */
static DtsValue
tv(const char *text)
{
	DtsValue	v;

	memset(&v, 0, sizeof(v));
	v.encoding = DTS_ENC_TEXT;
	if (text == NULL)
		v.status = DTS_VALUE_NULL;
	else
	{
		v.status = DTS_VALUE_PRESENT;
		v.bytes.data = (const uint8_t *) text;
		v.bytes.len = strlen(text);
	}
	return v;
}

static DtsValue
sv(char status)
{
	DtsValue	v;

	memset(&v, 0, sizeof(v));
	v.encoding = DTS_ENC_TEXT;
	v.status = status;
	return v;
}

/* The decoder that reads every message of a test, and the last message */
static DtsDecoder decoder;
static uint8_t *last_msg;
static DtsFrame change_frame;

/*
 * Writes RELATION + one change frame as a message, decodes it and returns
 * the change as the decoder gives it (valid until the next call).
 */
static const DtsFrame *
roundtrip(const DtsRelation *rel, DtsFrameKind kind, char old_kind,
		  const DtsValue *oldv, const DtsValue *newv)
{
	DtsWriteBuf b = {NULL, 0, 0, xrealloc};
	DtsFrame	f;
	size_t		at;
	int			rc;

	dts_message_start(&b);
	dts_write_relation(&b, rel);
	at = dts_write_change_start(&b, kind, rel->relid);
	if (kind != DTS_FRAME_INSERT)
	{
		dts_put_byte(&b, (uint8_t) old_kind);
		if (old_kind != DTS_OLD_NONE)
			dts_write_tuple(&b, rel, oldv, old_kind == DTS_OLD_KEY);
	}
	if (kind != DTS_FRAME_DELETE)
		dts_write_tuple(&b, rel, newv, false);
	dts_frame_finish(&b, at);
	dts_message_finish(&b);

	free(last_msg);
	last_msg = b.data;			/* the decoded values point into it */
	ck_assert_msg(dts_decoder_open(&decoder, b.data, b.len) == 0, "%s", decoder.error);
	while ((rc = dts_decoder_next(&decoder, &f)) == 1)
	{
		if (f.kind == kind)
		{
			change_frame = f;
			return &change_frame;
		}
	}
	ck_abort_msg("change frame not decoded: %s", decoder.error);
	return NULL;
}

static void
ctx_for(DtsRecordContext *ctx, const char *schema, const char *table)
{
	dts_record_context_init(ctx);
	ctx->database = "postgres";
	ctx->schema = schema;
	ctx->table = table;
	ctx->xid = 735;
	ctx->commit_lsn = UINT64_C(0x16B3748);
	ctx->change_lsn = UINT64_C(0x16B3700);
	ctx->commit_time_us = INT64_C(773058896789000);	/* 2024-06-30 10:34:56.789 */
	ctx->born_time_ms = INT64_C(1719743697123);
	ctx->record_id = 42;
	ctx->source_version = "15.8";
	ctx->seq_in_txn = 2;
	ctx->txn_size = 5;
}

/* ----------------------------------------------------------------
 *		Dump for tests/kafka/check_avro.py
 * ----------------------------------------------------------------
 */
static FILE *dump_file;
static FILE *manifest_file;

static void
dump_open(void)
{
	const char *path = getenv("DTS_AVRO_DUMP");
	char		mpath[4096];

	if (path == NULL || *path == '\0' || dump_file != NULL)
		return;
	snprintf(mpath, sizeof(mpath), "%s.manifest.jsonl", path);
	dump_file = fopen(path, "wb");
	manifest_file = fopen(mpath, "w");
	ck_assert_msg(dump_file && manifest_file, "cannot write %s", path);
}

static void
dump_close(void)
{
	if (dump_file)
		fclose(dump_file);
	if (manifest_file)
		fclose(manifest_file);
	dump_file = manifest_file = NULL;
}

static json_t *
manifest_tuple(const DtsRelation *rel, const DtsValue *vals)
{
	json_t	   *arr = json_array();

	for (int i = 0; i < rel->ncols; i++)
	{
		const DtsValue *v = &vals[i];

		if (v->status == DTS_VALUE_NULL)
			json_array_append_new(arr, json_null());
		else if (v->status == DTS_VALUE_UNCHANGED)
			json_array_append_new(arr, json_string("UNCHANGED"));
		else if (v->status == DTS_VALUE_ABSENT)
			json_array_append_new(arr, json_string("ABSENT"));
		else
			json_array_append_new(arr, json_pack("{s:s%}", "t",
												 (const char *) v->bytes.data,
												 v->bytes.len));
	}
	return arr;
}

static json_t *
manifest_ctx(const DtsRecordContext *ctx, const char *kind)
{
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}",
					 "kind", kind, "database", ctx->database,
					 "schema", ctx->schema, "table", ctx->table,
					 "xid", (json_int_t) ctx->xid,
					 "commit_lsn", (json_int_t) ctx->commit_lsn,
					 "change_lsn", (json_int_t) ctx->change_lsn,
					 "commit_time_us", (json_int_t) ctx->commit_time_us,
					 "born_time_ms", (json_int_t) ctx->born_time_ms,
					 "record_id", (json_int_t) ctx->record_id,
					 "source_version", ctx->source_version);
}

static void
dump_record(const DtsWriteBuf *rec, json_t *manifest)
{
	uint8_t		len[4];
	char	   *line;

	if (dump_file == NULL)
	{
		json_decref(manifest);
		return;
	}
	len[0] = (uint8_t) (rec->len >> 24);
	len[1] = (uint8_t) (rec->len >> 16);
	len[2] = (uint8_t) (rec->len >> 8);
	len[3] = (uint8_t) rec->len;
	fwrite(len, 1, 4, dump_file);
	fwrite(rec->data, 1, rec->len, dump_file);
	line = json_dumps(manifest, JSON_COMPACT);
	fprintf(manifest_file, "%s\n", line);
	free(line);
	json_decref(manifest);
}

static void
dump_change(const DtsRecordContext *ctx, const DtsFrame *ch,
			const DtsWriteBuf *rec)
{
	json_t	   *m;
	json_t	   *cols;
	const DtsRelation *rel = ch->rel;
	const char *op = ch->kind == DTS_FRAME_INSERT ? "INSERT" :
		ch->kind == DTS_FRAME_UPDATE ? "UPDATE" : "DELETE";

	if (dump_file == NULL)
		return;
	m = manifest_ctx(ctx, "change");
	cols = json_array();
	for (int i = 0; i < rel->ncols; i++)
		json_array_append_new(cols, json_pack("{s:s, s:I, s:I, s:b}",
											  "name", rel->columns[i].name,
											  "typoid", (json_int_t) rel->columns[i].typoid,
											  "typmod", (json_int_t) rel->columns[i].typmod,
											  "key", rel->columns[i].key));
	json_object_set_new(m, "op", json_string(op));
	json_object_set_new(m, "columns", cols);
	json_object_set_new(m, "old_kind", json_sprintf("%c", ch->kind == DTS_FRAME_INSERT ? 'N' : ch->old_kind));
	json_object_set_new(m, "old", (ch->kind != DTS_FRAME_INSERT && ch->old_kind != DTS_OLD_NONE) ?
						manifest_tuple(rel, ch->old_tuple.values) : json_null());
	json_object_set_new(m, "new", ch->kind != DTS_FRAME_DELETE ?
						manifest_tuple(rel, ch->new_tuple.values) : json_null());
	dump_record(rec, m);
}

/* ----------------------------------------------------------------
 *		Reading Avro back with avro-c
 * ----------------------------------------------------------------
 */
static avro_schema_t check_schema;
static avro_value_iface_t *check_iface;
static avro_value_t check_union;
static avro_value_t check_value;
static char schema_source[64];

/* The Record schema from the shared file, else from the embedded copy. */
static void
check_schema_load(void)
{
	const char *paths[] = {"../shared/formats/dts_record.avsc",
	"../../shared/formats/dts_record.avsc"};
	avro_schema_t all = NULL;
	int			idx;

	if (check_iface != NULL)
		return;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && all == NULL; i++)
	{
		FILE	   *f = fopen(paths[i], "rb");
		char	   *text;
		long		n;

		if (f == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		fseek(f, 0, SEEK_SET);
		text = malloc((size_t) n);
		ck_assert(fread(text, 1, (size_t) n, f) == (size_t) n);
		fclose(f);
		ck_assert_msg(avro_schema_from_json_length(text, (size_t) n, &all) == 0,
					  "%s", avro_strerror());
		free(text);
		snprintf(schema_source, sizeof(schema_source), "%s", paths[i]);
	}
	if (all == NULL)
	{
		ck_assert(avro_schema_from_json_length(dts_avro_schema_json,
											   dts_avro_schema_json_len, &all) == 0);
		snprintf(schema_source, sizeof(schema_source), "embedded");
	}
	/* the Record refers to its siblings: read through the union's class */
	check_schema = all;
	ck_assert(avro_schema_union_branch_by_name(all, &idx, "Record") != NULL);
	check_iface = avro_generic_class_from_schema(check_schema);
	ck_assert_msg(check_iface != NULL, "%s", avro_strerror());
	ck_assert(avro_generic_value_new(check_iface, &check_union) == 0);
	ck_assert(avro_value_set_branch(&check_union, idx, &check_value) == 0);
}

/* Decodes rec into check_value; the whole record must be consumed. */
static avro_value_t *
avro_decode(const DtsWriteBuf *rec)
{
	avro_reader_t r;

	check_schema_load();
	ck_assert_msg(rec->len > DTS_AVRO_MIN_RECORD_SIZE,
				  "record of %zu bytes is a DTS filler", rec->len);
	avro_value_reset(&check_value);
	r = avro_reader_memory((const char *) rec->data, (int64_t) rec->len);
	ck_assert_msg(avro_value_read(r, &check_value) == 0, "avro read: %s", avro_strerror());
	avro_reader_free(r);
	{
		/* the whole record was read: its size read back is the input's */
		size_t		size;

		ck_assert(avro_value_sizeof(&check_value, &size) == 0);
		ck_assert_msg(size == rec->len, "read %zu of %zu bytes", size, rec->len);
	}
	return &check_value;
}

static avro_value_t
get(avro_value_t *v, const char *name)
{
	avro_value_t out;

	ck_assert_msg(avro_value_get_by_name(v, name, &out, NULL) == 0, "no field %s", name);
	return out;
}

/* The current branch of a union and its discriminant */
static int
branch(avro_value_t *u, avro_value_t *out)
{
	int			d;

	ck_assert(avro_value_get_discriminant(u, &d) == 0);
	ck_assert(avro_value_get_current_branch(u, out) == 0);
	return d;
}

static void
ck_str(avro_value_t *v, const char *name, const char *expect)
{
	avro_value_t f = get(v, name);
	const char *s;
	size_t		n;

	ck_assert(avro_value_get_string(&f, &s, &n) == 0);
	ck_assert_str_eq(s, expect);
}

static void
ck_bytes(avro_value_t *v, const char *name, const void *expect, size_t len)
{
	avro_value_t f = get(v, name);
	const void *b;
	size_t		n;

	ck_assert(avro_value_get_bytes(&f, &b, &n) == 0);
	ck_assert_uint_eq(n, len);
	ck_assert(len == 0 || memcmp(b, expect, len) == 0);
}

static void
ck_int(avro_value_t *v, const char *name, int expect)
{
	avro_value_t f = get(v, name);
	int32_t		i;

	ck_assert(avro_value_get_int(&f, &i) == 0);
	ck_assert_int_eq(i, expect);
}

static void
ck_long(avro_value_t *v, const char *name, int64_t expect)
{
	avro_value_t f = get(v, name);
	int64_t		i;

	ck_assert(avro_value_get_long(&f, &i) == 0);
	ck_assert_int_eq(i, expect);
}

static void
ck_enum(avro_value_t *v, const char *name, int expect)
{
	avro_value_t f = get(v, name);
	int			i;

	ck_assert(avro_value_get_enum(&f, &i) == 0);
	ck_assert_int_eq(i, expect);
}

/* A ["null","int"] DateTime part: -1 expects null */
static void
ck_opt_int(avro_value_t *dt, const char *name, int expect)
{
	avro_value_t u = get(dt, name),
				b;
	int			d = branch(&u, &b);
	int32_t		i;

	if (expect == -1)
	{
		ck_assert_int_eq(d, 0);
		return;
	}
	ck_assert_msg(d == 1, "%s is null", name);
	ck_assert(avro_value_get_int(&b, &i) == 0);
	ck_assert_int_eq(i, expect);
}

static void
ck_datetime(avro_value_t *dt, int y, int mo, int d, int h, int mi, int s,
			int us)
{
	ck_opt_int(dt, "year", y);
	ck_opt_int(dt, "month", mo);
	ck_opt_int(dt, "day", d);
	ck_opt_int(dt, "hour", h);
	ck_opt_int(dt, "minute", mi);
	ck_opt_int(dt, "second", s);
	ck_opt_int(dt, "millis", us);
}

/*
 * Item col of beforeImages/afterImages: returns its branch, *item set to
 * the branch value.  -1 when the image is null.
 */
static int
image_item(avro_value_t *rec, const char *image, int col, avro_value_t *item)
{
	avro_value_t u = get(rec, image),
				arr,
				elem;
	size_t		n;
	int			d = branch(&u, &arr);

	if (d == 0)
		return -1;
	ck_assert_int_eq(d, 2);
	ck_assert(avro_value_get_size(&arr, &n) == 0);
	ck_assert_msg((size_t) col < n, "image has %zu items", n);
	ck_assert(avro_value_get_by_index(&arr, (size_t) col, &elem, NULL) == 0);
	return branch(&elem, item);
}

static const char *
tag(avro_value_t *rec, const char *key)
{
	avro_value_t tags = get(rec, "tags"),
				v;
	const char *s;
	size_t		n;

	if (avro_value_get_by_name(&tags, key, &v, NULL) != 0)
		return NULL;
	ck_assert(avro_value_get_string(&v, &s, &n) == 0);
	return s;
}

static int
col_index(const char *name)
{
	for (int i = 0; i < NTYPECOLS; i++)
		if (strcmp(type_cols[i].name, name) == 0)
			return i;
	ck_abort_msg("no column %s", name);
	return -1;
}

/* Shorthands for the types table checks: the after image item of a column */
static int
after_of(avro_value_t *rec, const char *col, avro_value_t *item)
{
	return image_item(rec, "afterImages", col_index(col), item);
}

static void
ck_text_object(avro_value_t *rec, const char *col, int expect_branch,
			   const char *type, const char *value)
{
	avro_value_t it;

	ck_assert_int_eq(after_of(rec, col, &it), expect_branch);
	ck_str(&it, "type", type);
	ck_str(&it, "value", value);
}

/* ----------------------------------------------------------------
 *		Fixtures
 * ----------------------------------------------------------------
 */
static DtsAvroEncoder avro;
static DtsWriteBuf out;

static void
setup(void)
{
	build_types_rel();
	dts_decoder_init(&decoder);
	ck_assert_msg(dts_avro_init(&avro) == 0, "%s", avro.error);
	dts_kfmt_buf_init(&out);
	dump_open();
}

static void
teardown(void)
{
	dts_avro_free(&avro);
	dts_decoder_free(&decoder);
	dts_kfmt_buf_free(&out);
	free(last_msg);
	last_msg = NULL;
}

/* ----------------------------------------------------------------
 *		DTS Avro
 * ----------------------------------------------------------------
 */

static const DtsFrame *
insert_type_row(int row)
{
	DtsValue	vals[NTYPECOLS];

	for (int i = 0; i < NTYPECOLS; i++)
		vals[i] = tv(type_rows[row][i]);
	return roundtrip(&types_rel, DTS_FRAME_INSERT, 0, NULL, vals);
}

START_TEST(test_avro_header)
{
	DtsRecordContext ctx;
	const DtsFrame *ch = insert_type_row(0);
	avro_value_t *rec,
				s,
				u,
				b,
				arr,
				fld;
	size_t		n;

	ctx_for(&ctx, "public", "regress_types");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx, ch, &out), DTS_KFMT_OK);
	rec = avro_decode(&out);

	ck_int(rec, "version", 0);
	ck_long(rec, "id", 42);
	ck_long(rec, "sourceTimestamp", 1719743696);	/* 2024-06-30 10:34:56Z */
	ck_str(rec, "sourcePosition", "0/16B3700");
	ck_str(rec, "safeSourcePosition", "0/16B3748");
	ck_str(rec, "sourceTxid", "735");
	s = get(rec, "source");
	ck_enum(&s, "sourceType", 3);	/* PostgreSQL */
	ck_str(&s, "version", "15.8");
	ck_enum(rec, "operation", DTS_AVRO_OP_INSERT);
	u = get(rec, "objectName");
	ck_assert_int_eq(branch(&u, &b), 1);
	{
		const char *str;

		ck_assert(avro_value_get_string(&b, &str, &n) == 0);
		ck_assert_str_eq(str, "postgres.public.regress_types");
	}
	u = get(rec, "processTimestamps");
	ck_assert_int_eq(branch(&u, &b), 0);
	ck_assert_str_eq(tag(rec, "pk_uk_info"), "{\"PRIMARY\":[\"id\"]}");
	ck_assert_str_eq(tag(rec, "readerThroughoutTime"), "1719743697123");
	ck_assert_ptr_nonnull(tag(rec, "metaVersion"));
	ck_long(rec, "bornTimestamp", INT64_C(1719743697123));

	/* fields: name and type OID of every column */
	u = get(rec, "fields");
	ck_assert_int_eq(branch(&u, &arr), 2);
	ck_assert(avro_value_get_size(&arr, &n) == 0);
	ck_assert_uint_eq(n, NTYPECOLS);
	for (int i = 0; i < NTYPECOLS; i++)
	{
		ck_assert(avro_value_get_by_index(&arr, (size_t) i, &fld, NULL) == 0);
		ck_str(&fld, "name", type_cols[i].name);
		ck_int(&fld, "dataTypeNumber", (int) type_cols[i].typoid);
	}
	u = get(rec, "beforeImages");
	ck_assert_int_eq(branch(&u, &b), 0);

	/* change_lsn unknown: sourcePosition is the commit LSN */
	ctx.change_lsn = 0;
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx, ch, &out), DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_str(rec, "sourcePosition", "0/16B3748");
}
END_TEST

START_TEST(test_avro_types_row1)
{
	DtsRecordContext ctx;
	avro_value_t *rec,
				it,
				dt;

	ctx_for(&ctx, "public", "regress_types");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx, insert_type_row(0), &out), DTS_KFMT_OK);
	rec = avro_decode(&out);

	ck_assert_int_eq(after_of(rec, "c_int2", &it), DTS_AVRO_V_INTEGER);
	ck_int(&it, "precision", 2);
	ck_str(&it, "value", "32767");
	ck_assert_int_eq(after_of(rec, "c_int8", &it), DTS_AVRO_V_INTEGER);
	ck_int(&it, "precision", 8);
	ck_str(&it, "value", "9223372036854775807");
	ck_assert_int_eq(after_of(rec, "c_oid", &it), DTS_AVRO_V_INTEGER);
	ck_int(&it, "precision", 4);
	ck_str(&it, "value", "4294967295");

	ck_assert_int_eq(after_of(rec, "c_numeric", &it), DTS_AVRO_V_DECIMAL);
	ck_str(&it, "value", "123456789012345678901234567890.123456789");
	ck_int(&it, "precision", 39);
	ck_int(&it, "scale", 9);
	ck_assert_int_eq(after_of(rec, "c_num_typmod", &it), DTS_AVRO_V_DECIMAL);
	ck_str(&it, "value", "1234567890.12");
	ck_int(&it, "precision", 12);
	ck_int(&it, "scale", 2);

	ck_assert_int_eq(after_of(rec, "c_float4", &it), DTS_AVRO_V_FLOAT);
	{
		avro_value_t f = get(&it, "value");
		double		d;

		ck_assert(avro_value_get_double(&f, &d) == 0);
		ck_assert(d == 3.25);
		ck_int(&it, "precision", 24);
		ck_int(&it, "scale", 0);
	}
	ck_assert_int_eq(after_of(rec, "c_float8", &it), DTS_AVRO_V_FLOAT);
	ck_int(&it, "precision", 53);

	ck_assert_int_eq(after_of(rec, "c_text", &it), DTS_AVRO_V_CHARACTER);
	ck_str(&it, "charset", "utf8");
	ck_bytes(&it, "value", type_rows[0][10], strlen(type_rows[0][10]));
	ck_assert_int_eq(after_of(rec, "c_bpchar", &it), DTS_AVRO_V_CHARACTER);
	ck_bytes(&it, "value", "ab   ", 5);
	ck_assert_int_eq(after_of(rec, "c_name", &it), DTS_AVRO_V_CHARACTER);
	ck_assert_int_eq(after_of(rec, "c_char", &it), DTS_AVRO_V_CHARACTER);

	ck_assert_int_eq(after_of(rec, "c_bytea", &it), DTS_AVRO_V_BINARY_OBJECT);
	ck_str(&it, "type", "BYTEA");
	ck_bytes(&it, "value", "\x00\x01\x02\x00\xff", 5);
	ck_assert_int_eq(after_of(rec, "c_jsonb", &it), DTS_AVRO_V_BINARY_OBJECT);
	ck_str(&it, "type", "JSON");
	ck_bytes(&it, "value", type_rows[0][25], strlen(type_rows[0][25]));

	ck_text_object(rec, "c_bool", DTS_AVRO_V_TEXT_OBJECT, "BOOL", "t");
	ck_text_object(rec, "c_json", DTS_AVRO_V_TEXT_OBJECT, "JSON", type_rows[0][24]);
	ck_text_object(rec, "c_uuid", DTS_AVRO_V_TEXT_OBJECT, "UUID", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	ck_text_object(rec, "c_xml", DTS_AVRO_V_TEXT_OBJECT, "XML", "<a>x</a>");
	ck_text_object(rec, "c_interval", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "1 year 2 mons 3 days 04:05:06.789");
	ck_text_object(rec, "c_inet", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "192.168.0.1/24");
	ck_text_object(rec, "c_money", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "$12.34");
	ck_text_object(rec, "c_enum", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "happy");
	ck_text_object(rec, "c_domain", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "42");
	ck_text_object(rec, "c_int_array", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "{1,NULL,3}");
	ck_text_object(rec, "c_point", DTS_AVRO_V_TEXT_GEOMETRY, "POINT", "(1.5,-2)");
	ck_text_object(rec, "c_box", DTS_AVRO_V_TEXT_GEOMETRY, "BOX", "(1,1),(0,0)");

	ck_assert_int_eq(after_of(rec, "c_date", &it), DTS_AVRO_V_DATETIME);
	ck_datetime(&it, 2024, 2, 29, -1, -1, -1, -1);
	ck_assert_int_eq(after_of(rec, "c_time", &it), DTS_AVRO_V_DATETIME);
	ck_datetime(&it, -1, -1, -1, 23, 59, 59, 999999);
	ck_assert_int_eq(after_of(rec, "c_timestamp", &it), DTS_AVRO_V_DATETIME);
	ck_datetime(&it, 2024, 1, 1, 0, 0, 0, 1);	/* millis holds microseconds */
	ck_assert_int_eq(after_of(rec, "c_timestamptz", &it), DTS_AVRO_V_TIMESTAMP_TZ);
	dt = get(&it, "value");
	ck_datetime(&dt, 2024, 6, 30, 10, 34, 56, 789000);
	ck_str(&it, "timezone", "+00:00");
	ck_assert_int_eq(after_of(rec, "c_timetz", &it), DTS_AVRO_V_TIMESTAMP_TZ);
	dt = get(&it, "value");
	ck_datetime(&dt, -1, -1, -1, 12, 0, 0, 0);
	ck_str(&it, "timezone", "+05:30");
	dump_change(&ctx, &change_frame, &out);
}
END_TEST

START_TEST(test_avro_types_rows23)
{
	DtsRecordContext ctx;
	avro_value_t *rec,
				it,
				dt;

	ctx_for(&ctx, "public", "regress_types");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx, insert_type_row(1), &out), DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_assert_int_eq(after_of(rec, "c_int8", &it), DTS_AVRO_V_INTEGER);
	ck_str(&it, "value", "-9223372036854775808");
	ck_assert_int_eq(after_of(rec, "c_numeric", &it), DTS_AVRO_V_DECIMAL);
	ck_str(&it, "value", "NaN");
	ck_int(&it, "precision", 0);
	ck_int(&it, "scale", 0);
	ck_assert_int_eq(after_of(rec, "c_num_typmod", &it), DTS_AVRO_V_DECIMAL);
	ck_str(&it, "value", "-0.01");
	ck_int(&it, "precision", 12);
	ck_int(&it, "scale", 2);
	ck_assert_int_eq(after_of(rec, "c_float4", &it), DTS_AVRO_V_FLOAT);
	{
		avro_value_t f = get(&it, "value");
		double		d;

		ck_assert(avro_value_get_double(&f, &d) == 0);
		ck_assert(isnan(d));
	}
	ck_assert_int_eq(after_of(rec, "c_text", &it), DTS_AVRO_V_CHARACTER);
	ck_bytes(&it, "value", "", 0);
	ck_assert_int_eq(after_of(rec, "c_char", &it), DTS_AVRO_V_CHARACTER);
	ck_bytes(&it, "value", "\001", 1);
	ck_assert_int_eq(after_of(rec, "c_bytea", &it), DTS_AVRO_V_BINARY_OBJECT);
	ck_bytes(&it, "value", "", 0);
	/* ±infinity: TextObject "TEXT" with PostgreSQL's text */
	ck_text_object(rec, "c_date", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "infinity");
	ck_text_object(rec, "c_timestamp", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "-infinity");
	ck_text_object(rec, "c_timestamptz", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "infinity");
	ck_assert_int_eq(after_of(rec, "c_timetz", &it), DTS_AVRO_V_TIMESTAMP_TZ);
	ck_str(&it, "timezone", "-12:00");
	ck_text_object(rec, "c_bool", DTS_AVRO_V_TEXT_OBJECT, "BOOL", "f");
	ck_assert_int_eq(after_of(rec, "c_jsonb", &it), DTS_AVRO_V_BINARY_OBJECT);
	ck_str(&it, "type", "JSON");
	ck_bytes(&it, "value", "\"str\"", 5);
	dump_change(&ctx, &change_frame, &out);

	out.len = 0;
	ctx.record_id++;
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx, insert_type_row(2), &out), DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_assert_int_eq(after_of(rec, "c_numeric", &it), DTS_AVRO_V_DECIMAL);
	ck_str(&it, "value", "Infinity");
	ck_int(&it, "precision", 0);
	ck_assert_int_eq(after_of(rec, "c_float8", &it), DTS_AVRO_V_FLOAT);
	{
		avro_value_t f = get(&it, "value");
		double		d;

		ck_assert(avro_value_get_double(&f, &d) == 0);
		ck_assert(d == 0 && signbit(d));
	}
	ck_assert_int_eq(after_of(rec, "c_bool", &it), DTS_AVRO_V_NULL);
	ck_assert_int_eq(after_of(rec, "c_xml", &it), DTS_AVRO_V_NULL);
	ck_assert_int_eq(after_of(rec, "c_timetz", &it), DTS_AVRO_V_TIMESTAMP_TZ);
	dt = get(&it, "value");
	ck_datetime(&dt, -1, -1, -1, 24, 0, 0, 0);
	ck_text_object(rec, "c_date", DTS_AVRO_V_TEXT_OBJECT, "TEXT", "-infinity");
	ck_assert_int_eq(after_of(rec, "c_bytea", &it), DTS_AVRO_V_BINARY_OBJECT);
	ck_bytes(&it, "value", "\xde\xad\xbe\xef", 4);
	dump_change(&ctx, &change_frame, &out);
}
END_TEST

/* BC dates and escape-format bytea, beyond the regress table */
START_TEST(test_avro_special_texts)
{
	static const TypeCol cols[4] = {
		{"d", 1082, -1}, {"ts", 1114, -1}, {"tstz", 1184, -1}, {"b", 17, -1}
	};
	DtsColumn	dc[4];
	DtsRelation rel = {16500, "public", "t", DTS_REPLIDENT_NOTHING, 4, 0, dc};
	DtsValue	vals[4];
	DtsRecordContext ctx;
	avro_value_t *rec,
				it,
				dt;

	for (int i = 0; i < 4; i++)
	{
		dc[i].name = (char *) cols[i].name;
		dc[i].typoid = cols[i].typoid;
		dc[i].typmod = cols[i].typmod;
		dc[i].key = false;
		dc[i].encoding = DTS_ENC_TEXT;
	}
	vals[0] = tv("0044-03-15 BC");
	vals[1] = tv("12345-01-02 03:04:05.5");
	vals[2] = tv("2024-06-30 10:34:56.789+05:30:15");
	vals[3] = tv("a\\\\b\\001");	/* escape format: a \ b 0x01 */
	ctx_for(&ctx, "public", "t");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&rel, DTS_FRAME_INSERT, 0, NULL, vals), &out),
					 DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_assert_int_eq(image_item(rec, "afterImages", 0, &it), DTS_AVRO_V_TEXT_OBJECT);
	ck_str(&it, "value", "0044-03-15 BC");
	ck_assert_int_eq(image_item(rec, "afterImages", 1, &it), DTS_AVRO_V_DATETIME);
	ck_datetime(&it, 12345, 1, 2, 3, 4, 5, 500000);
	ck_assert_int_eq(image_item(rec, "afterImages", 2, &it), DTS_AVRO_V_TIMESTAMP_TZ);
	dt = get(&it, "value");
	ck_datetime(&dt, 2024, 6, 30, 10, 34, 56, 789000);
	ck_str(&it, "timezone", "+05:30:15");
	ck_assert_int_eq(image_item(rec, "afterImages", 3, &it), DTS_AVRO_V_BINARY_OBJECT);
	ck_bytes(&it, "value", "a\\b\001", 4);
	/* no key: pk_uk_info is an empty object */
	ck_assert_str_eq(tag(rec, "pk_uk_info"), "{}");
	dump_change(&ctx, &change_frame, &out);

	/* malformed bytea text is an error, and out is untouched */
	vals[3] = tv("\\x0g");
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&rel, DTS_FRAME_INSERT, 0, NULL, vals), &out),
					 DTS_KFMT_ERROR);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_ptr_nonnull(strstr(avro.error, "bytea"));
}
END_TEST

/* A small table for UPDATE/DELETE: (id int4 key, name text, big text, n varchar) */
static DtsColumn kf_cols[4];
static DtsRelation kf_rel;

static void
build_kf_rel(const char *c0, const char *c1)
{
	static const TypeCol cols[4] = {
		{"id", 23, -1}, {"name", 25, -1}, {"big", 25, -1}, {"n", 1043, 14}
	};

	for (int i = 0; i < 4; i++)
	{
		kf_cols[i].name = (char *) cols[i].name;
		kf_cols[i].typoid = cols[i].typoid;
		kf_cols[i].typmod = cols[i].typmod;
		kf_cols[i].key = (i == 0);
		kf_cols[i].encoding = DTS_ENC_TEXT;
	}
	if (c0)
		kf_cols[0].name = (char *) c0;
	if (c1)
		kf_cols[1].name = (char *) c1;
	kf_rel.relid = 16600;
	kf_rel.schema = "public";
	kf_rel.table = "kf";
	kf_rel.replident = DTS_REPLIDENT_DEFAULT;
	kf_rel.ncols = 4;
	kf_rel.nkeys = 1;
	kf_rel.columns = kf_cols;
}

START_TEST(test_avro_update_delete)
{
	DtsRecordContext ctx;
	DtsValue	oldv[4],
				newv[4];
	avro_value_t *rec,
				it;

	build_kf_rel(NULL, NULL);
	ctx_for(&ctx, "public", "kf");

	/* UPDATE with the full old row (REPLICA IDENTITY FULL), big unchanged */
	oldv[0] = tv("1");
	oldv[1] = tv("a");
	oldv[2] = tv("BIG");
	oldv[3] = tv(NULL);
	newv[0] = tv("1");
	newv[1] = tv("b");
	newv[2] = sv(DTS_VALUE_UNCHANGED);
	newv[3] = tv(NULL);
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&kf_rel, DTS_FRAME_UPDATE, DTS_OLD_FULL, oldv, newv), &out),
					 DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_enum(rec, "operation", DTS_AVRO_OP_UPDATE);
	ck_assert_int_eq(image_item(rec, "beforeImages", 0, &it), DTS_AVRO_V_INTEGER);
	ck_str(&it, "value", "1");
	ck_assert_int_eq(image_item(rec, "beforeImages", 2, &it), DTS_AVRO_V_CHARACTER);
	ck_bytes(&it, "value", "BIG", 3);
	ck_assert_int_eq(image_item(rec, "beforeImages", 3, &it), DTS_AVRO_V_NULL);
	ck_assert_int_eq(image_item(rec, "afterImages", 1, &it), DTS_AVRO_V_CHARACTER);
	ck_bytes(&it, "value", "b", 1);
	/* unchanged TOAST: EmptyObject NONE */
	ck_assert_int_eq(image_item(rec, "afterImages", 2, &it), DTS_AVRO_V_EMPTY_OBJECT);
	{
		int			e;

		ck_assert(avro_value_get_enum(&it, &e) == 0);
		ck_assert_int_eq(e, 1);
	}
	dump_change(&ctx, &change_frame, &out);

	/* UPDATE without old tuple (key unchanged): key from new, rest NONE */
	out.len = 0;
	newv[2] = tv("x");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&kf_rel, DTS_FRAME_UPDATE, DTS_OLD_NONE, NULL, newv), &out),
					 DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_assert_int_eq(image_item(rec, "beforeImages", 0, &it), DTS_AVRO_V_INTEGER);
	ck_str(&it, "value", "1");
	ck_assert_int_eq(image_item(rec, "beforeImages", 1, &it), DTS_AVRO_V_EMPTY_OBJECT);
	ck_assert_int_eq(image_item(rec, "beforeImages", 3, &it), DTS_AVRO_V_EMPTY_OBJECT);
	dump_change(&ctx, &change_frame, &out);

	/* UPDATE with the old key (key changed 2 -> 3) */
	out.len = 0;
	oldv[0] = tv("2");
	newv[0] = tv("3");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&kf_rel, DTS_FRAME_UPDATE, DTS_OLD_KEY, oldv, newv), &out),
					 DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_assert_int_eq(image_item(rec, "beforeImages", 0, &it), DTS_AVRO_V_INTEGER);
	ck_str(&it, "value", "2");
	ck_assert_int_eq(image_item(rec, "beforeImages", 2, &it), DTS_AVRO_V_EMPTY_OBJECT);
	ck_assert_int_eq(image_item(rec, "afterImages", 0, &it), DTS_AVRO_V_INTEGER);
	ck_str(&it, "value", "3");
	dump_change(&ctx, &change_frame, &out);

	/* DELETE with the old key: before = key + NONE, after null */
	out.len = 0;
	oldv[0] = tv("3");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&kf_rel, DTS_FRAME_DELETE, DTS_OLD_KEY, oldv, NULL), &out),
					 DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_enum(rec, "operation", DTS_AVRO_OP_DELETE);
	ck_assert_int_eq(image_item(rec, "beforeImages", 0, &it), DTS_AVRO_V_INTEGER);
	ck_str(&it, "value", "3");
	ck_assert_int_eq(image_item(rec, "beforeImages", 1, &it), DTS_AVRO_V_EMPTY_OBJECT);
	ck_assert_int_eq(image_item(rec, "afterImages", 0, &it), -1);
	dump_change(&ctx, &change_frame, &out);

	/* DELETE without old tuple (REPLICA IDENTITY NOTHING): all NONE */
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&kf_rel, DTS_FRAME_DELETE, DTS_OLD_NONE, NULL, NULL), &out),
					 DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_assert_int_eq(image_item(rec, "beforeImages", 0, &it), DTS_AVRO_V_EMPTY_OBJECT);
	dump_change(&ctx, &change_frame, &out);
}
END_TEST

START_TEST(test_avro_ddl_heartbeat_txn)
{
	DtsRecordContext ctx;
	avro_value_t *rec,
				u,
				b;
	const char *sql = "ALTER TABLE public.kf ADD COLUMN z int";
	const char *s;
	size_t		n;
	json_t	   *m;

	ctx_for(&ctx, NULL, NULL);
	ck_assert_int_eq(dts_avro_encode_ddl(&avro, &ctx, sql, strlen(sql), &out), DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_enum(rec, "operation", DTS_AVRO_OP_DDL);
	u = get(rec, "objectName");
	ck_assert_int_eq(branch(&u, &b), 1);
	ck_assert(avro_value_get_string(&b, &s, &n) == 0);
	ck_assert_str_eq(s, "postgres");
	u = get(rec, "fields");
	ck_assert_int_eq(branch(&u, &b), 0);
	u = get(rec, "beforeImages");
	ck_assert_int_eq(branch(&u, &b), 0);
	u = get(rec, "afterImages");
	ck_assert_int_eq(branch(&u, &b), 1);	/* the string branch */
	ck_assert(avro_value_get_string(&b, &s, &n) == 0);
	ck_assert_str_eq(s, sql);
	ck_assert_str_eq(tag(rec, "commitTimestamp"), "1719743696");
	m = manifest_ctx(&ctx, "ddl");
	json_object_set_new(m, "sql", json_string(sql));
	dump_record(&out, m);

	/* heartbeat */
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_heartbeat(&avro, &ctx, &out), DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_enum(rec, "operation", DTS_AVRO_OP_HEARTBEAT);
	u = get(rec, "objectName");
	ck_assert_int_eq(branch(&u, &b), 0);
	u = get(rec, "afterImages");
	ck_assert_int_eq(branch(&u, &b), 0);
	dump_record(&out, manifest_ctx(&ctx, "heartbeat"));

	/* the smallest possible heartbeat still exceeds 48 bytes */
	out.len = 0;
	dts_record_context_init(&ctx);
	ck_assert_int_eq(dts_avro_encode_heartbeat(&avro, &ctx, &out), DTS_KFMT_OK);
	ck_assert_uint_gt(out.len, DTS_AVRO_MIN_RECORD_SIZE);
	rec = avro_decode(&out);
	ck_assert_ptr_null(tag(rec, "padding"));
	dump_record(&out, manifest_ctx(&ctx, "heartbeat"));
	/* a record at or under the threshold is padded past it through a tag */
	n = out.len;
	avro.min_size = n + 20;
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_heartbeat(&avro, &ctx, &out), DTS_KFMT_OK);
	ck_assert_uint_gt(out.len, n + 20);
	rec = avro_decode(&out);
	ck_assert_ptr_nonnull(tag(rec, "padding"));
	avro.min_size = DTS_AVRO_MIN_RECORD_SIZE;

	/* BEGIN and COMMIT */
	ctx_for(&ctx, NULL, NULL);
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_txn(&avro, &ctx, DTS_AVRO_OP_BEGIN, &out), DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_enum(rec, "operation", DTS_AVRO_OP_BEGIN);
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_txn(&avro, &ctx, DTS_AVRO_OP_COMMIT, &out), DTS_KFMT_OK);
	rec = avro_decode(&out);
	ck_enum(rec, "operation", DTS_AVRO_OP_COMMIT);
	out.len = 0;
	ck_assert_int_eq(dts_avro_encode_txn(&avro, &ctx, DTS_AVRO_OP_DDL, &out), DTS_KFMT_ERROR);
	ck_assert_uint_eq(out.len, 0);
}
END_TEST

/* Dots, quotes and non-ASCII in database, schema, table and column names */
START_TEST(test_avro_identifiers)
{
	DtsRecordContext ctx;
	DtsValue	newv[4];
	avro_value_t *rec,
				u,
				b,
				arr,
				fld;
	const char *s;
	size_t		n;
	json_t	   *pk;
	json_error_t jerr;

	build_kf_rel("k\"e.y\xe2\x98\x83", NULL);
	ctx_for(&ctx, "my.schema", "ta\"b.le");
	ctx.database = "d.b";
	newv[0] = tv("7");
	newv[1] = tv("x");
	newv[2] = tv(NULL);
	newv[3] = tv("y");
	ck_assert_int_eq(dts_avro_encode_change(&avro, &ctx,
											roundtrip(&kf_rel, DTS_FRAME_INSERT, 0, NULL, newv), &out),
					 DTS_KFMT_OK);
	rec = avro_decode(&out);
	u = get(rec, "objectName");
	ck_assert_int_eq(branch(&u, &b), 1);
	ck_assert(avro_value_get_string(&b, &s, &n) == 0);
	ck_assert_str_eq(s, "d\\u002Eb.my\\u002Eschema.ta\"b\\u002Ele");
	pk = json_loads(tag(rec, "pk_uk_info"), 0, &jerr);
	ck_assert_msg(pk != NULL, "pk_uk_info is not JSON: %s", jerr.text);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(pk, "PRIMARY"), 0)),
					 "k\"e.y\xe2\x98\x83");
	json_decref(pk);
	u = get(rec, "fields");
	ck_assert_int_eq(branch(&u, &arr), 2);
	ck_assert(avro_value_get_by_index(&arr, 0, &fld, NULL) == 0);
	ck_str(&fld, "name", "k\"e.y\xe2\x98\x83");
	dump_change(&ctx, &change_frame, &out);
}
END_TEST

START_TEST(test_avro_meta_version)
{
	DtsRecordContext ctx;
	uint32_t	v1,
				v2,
				v3;

	build_kf_rel(NULL, NULL);
	ctx_for(&ctx, "public", "kf");
	v1 = dts_kfmt_meta_version(&ctx, &kf_rel);
	ck_assert_uint_eq(dts_kfmt_meta_version(&ctx, &kf_rel), v1);
	kf_cols[3].typmod = 24;		/* varchar(10) -> varchar(20) */
	v2 = dts_kfmt_meta_version(&ctx, &kf_rel);
	ck_assert_uint_ne(v1, v2);
	kf_cols[3].typmod = 14;
	kf_rel.ncols = 3;			/* a dropped column */
	v3 = dts_kfmt_meta_version(&ctx, &kf_rel);
	ck_assert_uint_ne(v1, v3);
	ck_assert_uint_ne(v2, v3);
}
END_TEST

/* ----------------------------------------------------------------
 *		SharePlex JSON
 * ----------------------------------------------------------------
 */

static json_t *
parse_json(const DtsWriteBuf *buf)
{
	json_error_t err;
	json_t	   *j = json_loadb((const char *) buf->data, buf->len, 0, &err);

	ck_assert_msg(j != NULL, "invalid JSON (%s): %.*s", err.text, (int) buf->len,
				  (const char *) buf->data);
	return j;
}

static void
ck_jstr(json_t *obj, const char *key, const char *expect)
{
	json_t	   *v = json_object_get(obj, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	ck_assert_str_eq(json_string_value(v), expect);
}

static void
ck_jint(json_t *obj, const char *key, json_int_t expect)
{
	json_t	   *v = json_object_get(obj, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	ck_assert_int_eq(json_integer_value(v), expect);
}

START_TEST(test_shareplex)
{
	DtsSharePlexEncoder sp;
	DtsRecordContext ctx;
	DtsValue	oldv[4],
				newv[4];
	json_t	   *j,
			   *meta,
			   *data,
			   *key;

	dts_shareplex_init(&sp);
	build_kf_rel(NULL, NULL);
	ctx_for(&ctx, "public", "kf");
	ctx.userid = 10;

	/* insert */
	newv[0] = tv("1");
	newv[1] = tv("it's \"q\"\n\xe2\x98\x83");
	newv[2] = tv(NULL);
	newv[3] = tv("v");
	ck_assert_int_eq(dts_shareplex_encode_change(&sp, &ctx,
												 roundtrip(&kf_rel, DTS_FRAME_INSERT, 0, NULL, newv), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	meta = json_object_get(j, "meta");
	ck_jstr(meta, "time", "2024-06-30T10:34:56");
	ck_jint(meta, "userid", 10);
	ck_jstr(meta, "op", "ins");
	ck_jstr(meta, "scn", "23803720");	/* 0x16B3748 */
	ck_jstr(meta, "rowid", "0/16B3748:2");
	ck_jstr(meta, "trans", "735");
	ck_jint(meta, "seq", 2);
	ck_jint(meta, "size", 5);
	ck_jstr(meta, "table", "public.kf");
	ck_jstr(meta, "idx", "2/5");
	ck_jstr(meta, "posttime", "2024-06-30T10:34:57");
	ck_assert_uint_eq(json_object_size(meta), 11);
	data = json_object_get(j, "data");
	ck_jstr(data, "id", "1");
	ck_jstr(data, "name", "it's \"q\"\n\xe2\x98\x83");
	ck_assert(json_is_null(json_object_get(data, "big")));
	ck_jstr(data, "n", "v");
	ck_assert_ptr_null(json_object_get(j, "key"));
	json_decref(j);

	/* update with full old row: data = changed columns, key = old row */
	out.len = 0;
	oldv[0] = tv("1");
	oldv[1] = tv("a");
	oldv[2] = tv("BIG");
	oldv[3] = tv("v");
	newv[1] = tv("b");
	newv[2] = sv(DTS_VALUE_UNCHANGED);
	ck_assert_int_eq(dts_shareplex_encode_change(&sp, &ctx,
												 roundtrip(&kf_rel, DTS_FRAME_UPDATE, DTS_OLD_FULL, oldv, newv), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	ck_jstr(json_object_get(j, "meta"), "op", "upd");
	data = json_object_get(j, "data");
	ck_assert_uint_eq(json_object_size(data), 1);
	ck_jstr(data, "name", "b");
	key = json_object_get(j, "key");
	ck_assert_uint_eq(json_object_size(key), 4);
	ck_jstr(key, "id", "1");
	ck_jstr(key, "name", "a");
	ck_jstr(key, "big", "BIG");
	json_decref(j);

	/* update without old tuple: key = key columns, data = non-key values */
	out.len = 0;
	newv[2] = tv("x");
	ck_assert_int_eq(dts_shareplex_encode_change(&sp, &ctx,
												 roundtrip(&kf_rel, DTS_FRAME_UPDATE, DTS_OLD_NONE, NULL, newv), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	key = json_object_get(j, "key");
	ck_assert_uint_eq(json_object_size(key), 1);
	ck_jstr(key, "id", "1");
	data = json_object_get(j, "data");
	ck_assert_uint_eq(json_object_size(data), 3);
	ck_assert_ptr_null(json_object_get(data, "id"));
	json_decref(j);

	/* delete: data = the old row */
	out.len = 0;
	ck_assert_int_eq(dts_shareplex_encode_change(&sp, &ctx,
												 roundtrip(&kf_rel, DTS_FRAME_DELETE, DTS_OLD_FULL, oldv, NULL), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	ck_jstr(json_object_get(j, "meta"), "op", "del");
	data = json_object_get(j, "data");
	ck_assert_uint_eq(json_object_size(data), 4);
	ck_jstr(data, "big", "BIG");
	ck_assert_ptr_null(json_object_get(j, "key"));
	json_decref(j);

	/* odd names */
	out.len = 0;
	build_kf_rel("k\"e\\y\x01", NULL);
	ctx.schema = "s.\"x\"";
	ctx.table = "t\xc3\xa9";
	ck_assert_int_eq(dts_shareplex_encode_change(&sp, &ctx,
												 roundtrip(&kf_rel, DTS_FRAME_INSERT, 0, NULL, newv), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	ck_jstr(json_object_get(j, "meta"), "table", "s.\"x\".t\xc3\xa9");
	ck_jstr(json_object_get(j, "data"), "k\"e\\y\x01", "1");
	json_decref(j);
	dts_shareplex_free(&sp);
}
END_TEST

/* ----------------------------------------------------------------
 *		Canal JSON
 * ----------------------------------------------------------------
 */

START_TEST(test_canal)
{
	DtsCanalEncoder cn;
	DtsRecordContext ctx;
	DtsValue	oldv[4],
				newv[4];
	json_t	   *j,
			   *row;
	const char *sql = "  CREATE UNLOGGED TABLE \"x\" (a int)";

	dts_canal_init(&cn);
	build_kf_rel(NULL, NULL);
	ctx_for(&ctx, "public", "kf");

	newv[0] = tv("1");
	newv[1] = tv("a");
	newv[2] = tv(NULL);
	newv[3] = tv("v");
	ck_assert_int_eq(dts_canal_encode_change(&cn, &ctx,
											 roundtrip(&kf_rel, DTS_FRAME_INSERT, 0, NULL, newv), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	ck_jstr(j, "database", "postgres");
	ck_jstr(j, "schema", "public");
	ck_jstr(j, "table", "kf");
	ck_jint(j, "es", INT64_C(1719743696789));
	ck_jint(j, "ts", INT64_C(1719743697123));
	ck_jint(j, "id", 42);
	ck_assert(json_is_false(json_object_get(j, "isDdl")));
	ck_jstr(j, "sql", "");
	ck_jstr(j, "type", "INSERT");
	ck_assert(json_is_null(json_object_get(j, "old")));
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "pkNames"), 0)), "id");
	ck_jstr(json_object_get(j, "mysqlType"), "n", "varchar(10)");
	ck_jstr(json_object_get(j, "mysqlType"), "id", "int4");
	ck_jint(json_object_get(j, "sqlType"), "id", 4);
	ck_jint(json_object_get(j, "sqlType"), "name", 12);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "data")), 1);
	row = json_array_get(json_object_get(j, "data"), 0);
	ck_jstr(row, "id", "1");
	ck_assert(json_is_null(json_object_get(row, "big")));
	ck_assert_uint_eq(json_object_size(j), 14);
	json_decref(j);

	/* update: data = new row (unchanged TOAST taken from the old row), old = changed */
	out.len = 0;
	oldv[0] = tv("1");
	oldv[1] = tv("a");
	oldv[2] = tv("BIG");
	oldv[3] = tv("v");
	newv[1] = tv("b");
	newv[2] = sv(DTS_VALUE_UNCHANGED);
	ck_assert_int_eq(dts_canal_encode_change(&cn, &ctx,
											 roundtrip(&kf_rel, DTS_FRAME_UPDATE, DTS_OLD_FULL, oldv, newv), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	ck_jstr(j, "type", "UPDATE");
	row = json_array_get(json_object_get(j, "data"), 0);
	ck_jstr(row, "name", "b");
	ck_jstr(row, "big", "BIG");
	row = json_array_get(json_object_get(j, "old"), 0);
	ck_assert_uint_eq(json_object_size(row), 1);
	ck_jstr(row, "name", "a");
	json_decref(j);

	/* update without old tuple, unchanged TOAST: the column is left out */
	out.len = 0;
	ck_assert_int_eq(dts_canal_encode_change(&cn, &ctx,
											 roundtrip(&kf_rel, DTS_FRAME_UPDATE, DTS_OLD_NONE, NULL, newv), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	row = json_array_get(json_object_get(j, "data"), 0);
	ck_assert_ptr_null(json_object_get(row, "big"));
	ck_assert_uint_eq(json_object_size(json_array_get(json_object_get(j, "old"), 0)), 0);
	json_decref(j);

	/* delete: data = old row */
	out.len = 0;
	ck_assert_int_eq(dts_canal_encode_change(&cn, &ctx,
											 roundtrip(&kf_rel, DTS_FRAME_DELETE, DTS_OLD_KEY, oldv, NULL), &out),
					 DTS_KFMT_OK);
	j = parse_json(&out);
	ck_jstr(j, "type", "DELETE");
	row = json_array_get(json_object_get(j, "data"), 0);
	ck_assert_uint_eq(json_object_size(row), 1);
	ck_jstr(row, "id", "1");
	json_decref(j);

	/* DDL */
	out.len = 0;
	ctx.table = NULL;
	ck_assert_int_eq(dts_canal_encode_ddl(&cn, &ctx, sql, strlen(sql), &out), DTS_KFMT_OK);
	j = parse_json(&out);
	ck_assert(json_is_true(json_object_get(j, "isDdl")));
	ck_jstr(j, "sql", sql);
	ck_jstr(j, "type", "CREATE");
	ck_jstr(j, "table", "");
	ck_assert(json_is_null(json_object_get(j, "data")));
	ck_assert(json_is_null(json_object_get(j, "pkNames")));
	json_decref(j);
	dts_canal_free(&cn);
}
END_TEST

START_TEST(test_canal_ddl_type)
{
#define DDLT(s) dts_canal_ddl_type(s, strlen(s))
	ck_assert_str_eq(DDLT("create table t (a int)"), "CREATE");
	ck_assert_str_eq(DDLT("-- c\nCREATE TEMP TABLE t ()"), "CREATE");
	ck_assert_str_eq(DDLT("CREATE UNIQUE INDEX i ON t (a)"), "CINDEX");
	ck_assert_str_eq(DDLT("create index on t (a)"), "CINDEX");
	ck_assert_str_eq(DDLT("ALTER TABLE t ADD b int"), "ALTER");
	ck_assert_str_eq(DDLT("drop table t"), "ERASE");
	ck_assert_str_eq(DDLT("DROP INDEX i"), "DINDEX");
	ck_assert_str_eq(DDLT("TRUNCATE t"), "TRUNCATE");
	ck_assert_str_eq(DDLT("CREATE VIEW v AS SELECT 1"), "QUERY");
	ck_assert_str_eq(DDLT(""), "QUERY");
#undef DDLT
}
END_TEST

/* ----------------------------------------------------------------
 *		Shared helpers
 * ----------------------------------------------------------------
 */

START_TEST(test_json_escaping)
{
	/* every control byte, quote, backslash, valid and invalid UTF-8 */
	char		s[64];
	size_t		n = 0;
	json_t	   *j;
	json_error_t err;
	const char *got;

	for (int c = 1; c < 0x20; c++)
		s[n++] = (char) c;
	memcpy(s + n, "\"\\\xc3\xa9\xff\xe2\x98", 7);	/* é, then invalid bytes */
	n += 7;
	dts_kfmt_json_string(&out, s, n);
	j = json_loadb((const char *) out.data, out.len, JSON_DECODE_ANY, &err);
	ck_assert_msg(j != NULL, "%s", err.text);
	got = json_string_value(j);
	ck_assert_int_eq(memcmp(got, s, 31), 0);
	ck_assert_str_eq(got + 31, "\"\\\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
}
END_TEST

/* Values in the plugin's compact and binary encodings render as text */
static const char *
render(uint32_t typoid, DtsValue v)
{
	static DtsTextScratch scratch;
	static char buf[512];
	DtsColumn	col = {"c", typoid, -1, false, v.encoding};
	const char *text;
	size_t		len;
	char		err[256];

	v.status = DTS_VALUE_PRESENT;
	if (!dts_kfmt_value_text(&col, &v, &scratch, &text, &len, err))
		snprintf(buf, sizeof(buf), "ERROR: %s", err);
	else
		snprintf(buf, sizeof(buf), "%.*s", (int) len, text);
	return buf;
}

static DtsValue
iv(char enc, int64_t i)
{
	DtsValue	v;

	memset(&v, 0, sizeof(v));
	v.encoding = enc;
	v.ival = i;
	return v;
}

static DtsValue
bv(char enc, const void *bytes, size_t len)
{
	DtsValue	v;

	memset(&v, 0, sizeof(v));
	v.encoding = enc;
	v.bytes.data = bytes;
	v.bytes.len = len;
	return v;
}

#define BV(enc, lit) bv(enc, lit, sizeof(lit) - 1)

START_TEST(test_value_text_binary)
{
	ck_assert_str_eq(render(21, iv('2', -32768)), "-32768");
	ck_assert_str_eq(render(23, iv('4', 2147483647)), "2147483647");
	ck_assert_str_eq(render(20, iv('8', INT64_MIN)), "-9223372036854775808");
	ck_assert_str_eq(render(26, iv('4', -1)), "4294967295");
	ck_assert_str_eq(render(700, BV('f', "\x40\x50\x00\x00")), "3.25");
	ck_assert_str_eq(render(701, BV('d', "\x80\x00\x00\x00\x00\x00\x00\x00")), "-0");
	ck_assert_str_eq(render(701, BV('d', "\x3f\xb9\x99\x99\x99\x99\x99\x9a")), "0.1");
	ck_assert_str_eq(render(701, BV('d', "\x7f\xf8\x00\x00\x00\x00\x00\x00")), "NaN");
	ck_assert_str_eq(render(701, BV('d', "\xff\xf0\x00\x00\x00\x00\x00\x00")), "-Infinity");
	ck_assert_str_eq(render(16, BV('1', "\x01")), "t");
	ck_assert_str_eq(render(18, BV('1', "\xe9")), "\\351");
	ck_assert_str_eq(render(1082, iv('4', 8825)), "2024-02-29");
	ck_assert_str_eq(render(1082, iv('4', -746117)), "0044-03-15 BC");
	ck_assert_str_eq(render(1082, iv('4', INT32_MAX)), "infinity");
	ck_assert_str_eq(render(1184, iv('8', INT64_C(773058896789000))), "2024-06-30 10:34:56.789+00");
	ck_assert_str_eq(render(1114, iv('8', INT64_C(-64464465599500000))), "0044-03-15 12:00:00.5 BC");
	ck_assert_str_eq(render(1114, iv('8', INT64_MIN)), "-infinity");
	ck_assert_str_eq(render(1083, iv('8', INT64_C(86399999999))), "23:59:59.999999");
	ck_assert_str_eq(render(1266, BV('b', "\x00\x00\x00\x0a\x0e\xeb\xb0\x00\xff\xff\xb2\xa8")), "12:00:00+05:30");
	ck_assert_str_eq(render(790, iv('8', -50)), "-0.50");
	ck_assert_str_eq(render(1700, BV('b', "\x00\x02\x00\x00\x40\x00\x00\x04\x00\x7b\x11\x94")), "-123.4500");
	ck_assert_str_eq(render(1700, BV('b', "\x00\x01\xff\xff\x00\x00\x00\x03\x00\x0a")), "0.001");
	ck_assert_str_eq(render(1700, BV('b', "\x00\x01\x00\x01\x00\x00\x00\x00\x00\x01")), "10000");
	ck_assert_str_eq(render(1700, BV('b', "\x00\x00\x00\x00\xc0\x00\x00\x00")), "NaN");
	ck_assert_str_eq(render(17, BV('b', "\x00\xff")), "\\x00ff");
	ck_assert_str_eq(render(3802, BV('b', "\x01{}")), "{}");
	ck_assert_str_eq(render(25, BV('b', "abc")), "abc");
	ck_assert_str_eq(render(2950, BV('b', "\xa0\xee\xbc\x99\x9c\x0b\x4e\xf8\xbb\x6d\x6b\xb9\xbd\x38\x0a\x11")),
					 "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	ck_assert_str_eq(render(16395, iv('4', 42)), "42");	/* a domain over int */
	ck_assert_ptr_nonnull(strstr(render(1186, BV('b', "\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00")),
								 "ERROR: column \"c\": binary values of type OID 1186"));
	ck_assert_ptr_nonnull(strstr(render(1082, BV('b', "\x00")), "ERROR"));
}
END_TEST

START_TEST(test_positions_and_times)
{
	char		buf[32];

	dts_kfmt_lsn_text(UINT64_C(0x1016B3748), buf);
	ck_assert_str_eq(buf, "1/16B3748");
	dts_kfmt_lsn_text(0, buf);
	ck_assert_str_eq(buf, "0/0");
	ck_assert_int_eq(dts_kfmt_unix_secs(0), 946684800);
	ck_assert_int_eq(dts_kfmt_unix_secs(-1), 946684799);
	ck_assert_int_eq(dts_kfmt_unix_ms(-1), INT64_C(946684799999));
	dts_kfmt_iso_utc(946684800, buf);
	ck_assert_str_eq(buf, "2000-01-01T00:00:00");
}
END_TEST

/* The dump is closed once, after the last Avro test of the suite. */
START_TEST(test_dump_close)
{
	dump_close();
}
END_TEST

static Suite *
kafka_formats_suite(void)
{
	Suite	   *s = suite_create("kafka_formats");
	TCase	   *tc = tcase_create("formats");

	/* one process: the dump file spans the tests */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_avro_header);
	tcase_add_test(tc, test_avro_types_row1);
	tcase_add_test(tc, test_avro_types_rows23);
	tcase_add_test(tc, test_avro_special_texts);
	tcase_add_test(tc, test_avro_update_delete);
	tcase_add_test(tc, test_avro_ddl_heartbeat_txn);
	tcase_add_test(tc, test_avro_identifiers);
	tcase_add_test(tc, test_avro_meta_version);
	tcase_add_test(tc, test_shareplex);
	tcase_add_test(tc, test_canal);
	tcase_add_test(tc, test_canal_ddl_type);
	tcase_add_test(tc, test_json_escaping);
	tcase_add_test(tc, test_value_text_binary);
	tcase_add_test(tc, test_positions_and_times);
	tcase_add_test(tc, test_dump_close);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner    *sr = srunner_create(kafka_formats_suite());
	int			failed;

	/* with DTS_AVRO_DUMP, run in-process so that the dump spans the tests */
	if (getenv("DTS_AVRO_DUMP") != NULL)
		srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

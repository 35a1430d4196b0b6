/*-------------------------------------------------------------------------
 *
 * dts_avro.c
 *	  Encoder of DTS Avro records (com.alibaba.dts.formats.avro.Record) with
 *	  avro-c's generic values: the schema is parsed once, one value is reset
 *	  and refilled per record and written into the caller's buffer.
 *
 * Field and branch indices are those of the public schema; dts_avro_init()
 * checks the Record's field names against them, so a changed schema fails
 * at start, not in a consumer.  The value mapping (docs/kafka.md):
 *
 *	int2/int4/int8/oid		Integer{precision = bytes of the type, value}
 *	text/varchar/bpchar/
 *	name/"char"				Character{charset, value bytes}
 *	numeric					Decimal{value, precision, scale}
 *	float4/float8			Float{value, precision 24/53, scale 0}
 *	date/time/timestamp		DateTime (millis holds microseconds)
 *	timestamptz/timetz		TimestampWithTimeZone{DateTime, "+HH:MM"}
 *	bytea					BinaryObject{"BYTEA", bytes}
 *	jsonb					BinaryObject{"JSON", text bytes}
 *	geometric types			TextGeometry{"POINT", ..., PostgreSQL text}
 *	everything else			TextObject{"BOOL"/"JSON"/"XML"/"UUID"/"TEXT", text}
 *	±infinity, BC dates		TextObject{"TEXT", text}
 *	NULL					null;  unchanged TOAST / unknown: EmptyObject NONE
 *
 * shipper/formats/dts_avro.c
 *
 *-------------------------------------------------------------------------
 */
#include "formats/dts_avro.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Record field indices */
enum
{
	F_VERSION,
	F_ID,
	F_SOURCE_TIMESTAMP,
	F_SOURCE_POSITION,
	F_SAFE_SOURCE_POSITION,
	F_SOURCE_TXID,
	F_SOURCE,
	F_OPERATION,
	F_OBJECT_NAME,
	F_PROCESS_TIMESTAMPS,
	F_TAGS,
	F_FIELDS,
	F_BEFORE_IMAGES,
	F_AFTER_IMAGES,
	F_BORN_TIMESTAMP,
	F_COUNT
};

static const char *const record_field_names[F_COUNT] = {
	"version", "id", "sourceTimestamp", "sourcePosition",
	"safeSourcePosition", "sourceTxid", "source", "operation", "objectName",
	"processTimestamps", "tags", "fields", "beforeImages", "afterImages",
	"bornTimestamp"
};

/* Record.version: DTS writes 0 (its own records and consumer examples) */
#define DTS_AVRO_RECORD_VERSION 0
/* Source.sourceType symbol PostgreSQL */
#define DTS_AVRO_SOURCE_POSTGRESQL 3
/* EmptyObject symbol NONE */
#define DTS_AVRO_EMPTY_NONE 1
/* Branches of the nullable unions */
#define U_NULL		0
#define U_VALUE		1			/* ["null", X] */
#define U_STRING	1			/* ["null", "string", array] */
#define U_ARRAY		2

#define CHECK(call) \
	do { \
		if ((call) != 0) \
		{ \
			avro_fail(enc, #call); \
			return -1; \
		} \
	} while (0)

static void
avro_fail(DtsAvroEncoder *enc, const char *what)
{
	const char *msg = avro_strerror();

	snprintf(enc->error, sizeof(enc->error), "avro: %s: %s", what,
			 (msg && *msg) ? msg : "failed");
}

/* ----------------------------------------------------------------
 *		Setup
 * ----------------------------------------------------------------
 */

int
dts_avro_init(DtsAvroEncoder *enc)
{
	avro_schema_t all = NULL;
	avro_schema_t rec;
	int			idx;

	memset(enc, 0, sizeof(*enc));
	enc->min_size = DTS_AVRO_MIN_RECORD_SIZE;
	dts_kfmt_buf_init(&enc->tmp);
	if (avro_schema_from_json_length(dts_avro_schema_json,
									 dts_avro_schema_json_len, &all) != 0)
	{
		avro_fail(enc, "parsing dts_record.avsc");
		return -1;
	}
	/*
	 * The file is a union of named types; the Record is one of them and
	 * refers to the others by name.  avro-c resolves such references only
	 * within the schema a value class is made from, so the class is made
	 * from the whole union and the Record is its branch.
	 */
	rec = avro_schema_union_branch_by_name(all, &idx, "Record");
	if (rec == NULL)
	{
		snprintf(enc->error, sizeof(enc->error),
				 "avro: dts_record.avsc has no type named Record");
		avro_schema_decref(all);
		return -1;
	}
	enc->schema = all;

	if (avro_schema_record_size(rec) != F_COUNT)
	{
		snprintf(enc->error, sizeof(enc->error),
				 "avro: Record has %zu fields, expected %d",
				 avro_schema_record_size(rec), F_COUNT);
		return -1;
	}
	for (int i = 0; i < F_COUNT; i++)
	{
		const char *name = avro_schema_record_field_name(rec, i);

		if (name == NULL || strcmp(name, record_field_names[i]) != 0)
		{
			snprintf(enc->error, sizeof(enc->error),
					 "avro: Record field %d is \"%s\", expected \"%s\"",
					 i, name ? name : "?", record_field_names[i]);
			return -1;
		}
	}

	enc->iface = avro_generic_class_from_schema(enc->schema);
	if (enc->iface == NULL)
	{
		avro_fail(enc, "avro_generic_class_from_schema");
		return -1;
	}
	if (avro_generic_value_new(enc->iface, &enc->all) != 0)
	{
		avro_fail(enc, "avro_generic_value_new");
		return -1;
	}
	if (avro_value_set_branch(&enc->all, idx, &enc->record) != 0)
	{
		avro_fail(enc, "selecting the Record branch");
		return -1;
	}
	enc->writer = avro_writer_memory(NULL, 0);
	if (enc->writer == NULL)
	{
		avro_fail(enc, "avro_writer_memory");
		return -1;
	}
	enc->ready = true;
	return 0;
}

void
dts_avro_free(DtsAvroEncoder *enc)
{
	if (enc->writer != NULL)
		avro_writer_free(enc->writer);
	if (enc->iface != NULL)
	{
		if (enc->all.self != NULL)
			avro_value_decref(&enc->all);
		avro_value_iface_decref(enc->iface);
	}
	if (enc->schema != NULL)
		avro_schema_decref(enc->schema);
	dts_text_scratch_free(&enc->text);
	free(enc->scratch);
	dts_kfmt_buf_free(&enc->tmp);
	memset(enc, 0, sizeof(*enc));
}

/* ----------------------------------------------------------------
 *		Small setters
 * ----------------------------------------------------------------
 */

/* avro-c strings are NUL-terminated: copy s[0..len) into scratch first */
static int
set_string(DtsAvroEncoder *enc, avro_value_t *v, const char *s, size_t len)
{
	if (enc->scratch_cap < len + 1)
	{
		size_t		cap = enc->scratch_cap < 256 ? 256 : enc->scratch_cap;
		char	   *p;

		while (cap < len + 1)
			cap *= 2;
		p = realloc(enc->scratch, cap);
		if (p == NULL)
			abort();
		enc->scratch = p;
		enc->scratch_cap = cap;
	}
	if (len > 0)
		memcpy(enc->scratch, s, len);
	enc->scratch[len] = '\0';
	CHECK(avro_value_set_string_len(v, enc->scratch, len + 1));
	return 0;
}

static int
set_cstring(DtsAvroEncoder *enc, avro_value_t *v, const char *s)
{
	return set_string(enc, v, s ? s : "", s ? strlen(s) : 0);
}

static int
field(DtsAvroEncoder *enc, avro_value_t *rec, int index, avro_value_t *out)
{
	CHECK(avro_value_get_by_index(rec, index, out, NULL));
	return 0;
}

/* Sets a ["null","int"] union of a DateTime field */
static int
set_opt_int(DtsAvroEncoder *enc, avro_value_t *dt, int index, bool present,
			int value)
{
	avro_value_t f,
				b;

	if (field(enc, dt, index, &f) != 0)
		return -1;
	if (!present)
	{
		CHECK(avro_value_set_branch(&f, U_NULL, &b));
		CHECK(avro_value_set_null(&b));
		return 0;
	}
	CHECK(avro_value_set_branch(&f, U_VALUE, &b));
	CHECK(avro_value_set_int(&b, value));
	return 0;
}

static int
add_tag(DtsAvroEncoder *enc, const char *key, const char *value, size_t len)
{
	avro_value_t tags,
				v;

	if (field(enc, &enc->record, F_TAGS, &tags) != 0)
		return -1;
	CHECK(avro_value_add(&tags, key, &v, NULL, NULL));
	return set_string(enc, &v, value, len);
}

static int
add_tag_i64(DtsAvroEncoder *enc, const char *key, int64_t value)
{
	char		buf[24];
	int			n = snprintf(buf, sizeof(buf), "%" PRId64, value);

	return add_tag(enc, key, buf, (size_t) n);
}

/* ----------------------------------------------------------------
 *		Dates and times from PostgreSQL's ISO text
 * ----------------------------------------------------------------
 */

typedef struct DateTimeParts
{
	bool		has_date;
	int			year,
				month,
				day;
	bool		has_time;
	int			hour,
				minute,
				second,
				usec;
	bool		has_tz;
	char		tz[16];			/* "+HH:MM" or "+HH:MM:SS" */
} DateTimeParts;

/* Reads 1..max digits into *v; returns the count, 0 if none. */
static int
read_digits(const char *s, const char *end, int max, long *v)
{
	int			n = 0;

	*v = 0;
	while (s + n < end && n < max && s[n] >= '0' && s[n] <= '9')
	{
		*v = *v * 10 + (s[n] - '0');
		n++;
	}
	return n;
}

/*
 * Parses "YYYY-MM-DD", "HH:MM:SS[.ffffff]", "YYYY-MM-DD HH:MM:SS[.f]" with
 * an optional "+HH[:MM[:SS]]" zone, as the class expects.  Returns false for
 * anything else ("infinity", "... BC"): the caller writes a TextObject.
 */
static bool
parse_datetime(const char *s, size_t len, DtsTypeClass cls, DateTimeParts *dt)
{
	const char *p = s,
			   *end = s + len;
	long		v;
	int			n;
	bool		want_date = (cls == DTS_TC_DATE || cls == DTS_TC_TIMESTAMP ||
							 cls == DTS_TC_TIMESTAMPTZ);
	bool		want_time = (cls != DTS_TC_DATE);
	bool		want_tz = (cls == DTS_TC_TIMESTAMPTZ || cls == DTS_TC_TIMETZ);

	memset(dt, 0, sizeof(*dt));
	if (want_date)
	{
		if ((n = read_digits(p, end, 9, &v)) < 4)
			return false;
		dt->year = (int) v;
		p += n;
		if (p >= end || *p++ != '-' || read_digits(p, end, 2, &v) != 2)
			return false;
		dt->month = (int) v;
		p += 2;
		if (p >= end || *p++ != '-' || read_digits(p, end, 2, &v) != 2)
			return false;
		dt->day = (int) v;
		p += 2;
		dt->has_date = true;
		if (want_time && (p >= end || *p++ != ' '))
			return false;
	}
	if (want_time)
	{
		if (read_digits(p, end, 2, &v) != 2)
			return false;
		dt->hour = (int) v;
		p += 2;
		if (p >= end || *p++ != ':' || read_digits(p, end, 2, &v) != 2)
			return false;
		dt->minute = (int) v;
		p += 2;
		if (p >= end || *p++ != ':' || read_digits(p, end, 2, &v) != 2)
			return false;
		dt->second = (int) v;
		p += 2;
		if (p < end && *p == '.')
		{
			p++;
			if ((n = read_digits(p, end, 6, &v)) == 0)
				return false;
			p += n;
			for (; n < 6; n++)
				v *= 10;
			dt->usec = (int) v;
		}
		dt->has_time = true;
	}
	if (want_tz)
	{
		char		sign;
		long		h,
					m = 0,
					sec = 0;
		bool		has_sec = false;

		if (p >= end || (*p != '+' && *p != '-'))
			return false;
		sign = *p++;
		if (read_digits(p, end, 2, &h) != 2)
			return false;
		p += 2;
		if (p < end && *p == ':')
		{
			p++;
			if (read_digits(p, end, 2, &m) != 2)
				return false;
			p += 2;
			if (p < end && *p == ':')
			{
				p++;
				if (read_digits(p, end, 2, &sec) != 2)
					return false;
				p += 2;
				has_sec = true;
			}
		}
		if (has_sec)
			snprintf(dt->tz, sizeof(dt->tz), "%c%02ld:%02ld:%02ld", sign, h, m, sec);
		else
			snprintf(dt->tz, sizeof(dt->tz), "%c%02ld:%02ld", sign, h, m);
		dt->has_tz = true;
	}
	return p == end;			/* rejects a trailing " BC" */
}

static int
set_datetime(DtsAvroEncoder *enc, avro_value_t *dt, const DateTimeParts *p)
{
	if (set_opt_int(enc, dt, 0, p->has_date, p->year) != 0 ||
		set_opt_int(enc, dt, 1, p->has_date, p->month) != 0 ||
		set_opt_int(enc, dt, 2, p->has_date, p->day) != 0 ||
		set_opt_int(enc, dt, 3, p->has_time, p->hour) != 0 ||
		set_opt_int(enc, dt, 4, p->has_time, p->minute) != 0 ||
		set_opt_int(enc, dt, 5, p->has_time, p->second) != 0 ||
		/* "millis": DTS puts microseconds here for PostgreSQL */
		set_opt_int(enc, dt, 6, p->has_time, p->usec) != 0)
		return -1;
	return 0;
}

/* ----------------------------------------------------------------
 *		Values
 * ----------------------------------------------------------------
 */

static int
set_text_object(DtsAvroEncoder *enc, avro_value_t *item, int branch,
				const char *type, const char *text, size_t len)
{
	avro_value_t obj,
				f;

	CHECK(avro_value_set_branch(item, branch, &obj));
	if (field(enc, &obj, 0, &f) != 0 || set_cstring(enc, &f, type) != 0)
		return -1;
	if (field(enc, &obj, 1, &f) != 0 || set_string(enc, &f, text, len) != 0)
		return -1;
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * bytea text ("\x0a0b" hex, or the escape format) to bytes in scratch.
 * Returns the byte count, or -1 when malformed.
 */
static ssize_t
decode_bytea(DtsAvroEncoder *enc, const char *s, size_t len)
{
	size_t		n = 0;
	uint8_t    *out;

	if (enc->scratch_cap < len + 1)
	{
		char	   *p = realloc(enc->scratch, len + 1);

		if (p == NULL)
			abort();
		enc->scratch = p;
		enc->scratch_cap = len + 1;
	}
	out = (uint8_t *) enc->scratch;
	if (len >= 2 && s[0] == '\\' && s[1] == 'x')
	{
		if ((len - 2) % 2 != 0)
			return -1;
		for (size_t i = 2; i < len; i += 2)
		{
			int			hi = hexval(s[i]),
						lo = hexval(s[i + 1]);

			if (hi < 0 || lo < 0)
				return -1;
			out[n++] = (uint8_t) (hi << 4 | lo);
		}
		return (ssize_t) n;
	}
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] != '\\')
			out[n++] = (uint8_t) s[i];
		else if (i + 1 < len && s[i + 1] == '\\')
		{
			out[n++] = '\\';
			i++;
		}
		else if (i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
				 s[i + 2] >= '0' && s[i + 2] <= '7' &&
				 s[i + 3] >= '0' && s[i + 3] <= '7')
		{
			out[n++] = (uint8_t) ((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 |
								  (s[i + 3] - '0'));
			i += 3;
		}
		else
			return -1;
	}
	return (ssize_t) n;
}

/* numeric precision and scale of a value's text (BigDecimal's) */
static void
numeric_text_precision(const char *s, size_t len, int *precision, int *scale)
{
	int			digits = 0,
				frac = 0;
	bool		leading = true,
				after_point = false;

	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c == '.')
		{
			after_point = true;
			continue;
		}
		if (c < '0' || c > '9')
			continue;
		if (after_point)
			frac++;
		if (leading && c == '0')
			continue;
		leading = false;
		digits++;
	}
	*precision = digits == 0 ? 1 : digits;
	*scale = frac;
}

static int
set_value(DtsAvroEncoder *enc, const DtsColumn *col, const DtsValue *v,
		  avro_value_t *item)
{
	const DtsTypeInfo *ti;
	const char *text;
	size_t		len;
	avro_value_t obj,
				f,
				dt;
	DateTimeParts parts;

	if (v == NULL || v->status == DTS_VALUE_UNCHANGED ||
		v->status == DTS_VALUE_ABSENT)
	{
		CHECK(avro_value_set_branch(item, DTS_AVRO_V_EMPTY_OBJECT, &obj));
		CHECK(avro_value_set_enum(&obj, DTS_AVRO_EMPTY_NONE));
		return 0;
	}
	if (v->status == DTS_VALUE_NULL)
	{
		CHECK(avro_value_set_branch(item, DTS_AVRO_V_NULL, &obj));
		CHECK(avro_value_set_null(&obj));
		return 0;
	}
	if (!dts_kfmt_value_text(col, v, &enc->text, &text, &len, enc->error))
		return -1;

	ti = dts_kfmt_type_info(col->typoid);
	switch (ti->tclass)
	{
		case DTS_TC_INTEGER:
			CHECK(avro_value_set_branch(item, DTS_AVRO_V_INTEGER, &obj));
			if (field(enc, &obj, 0, &f) != 0)
				return -1;
			CHECK(avro_value_set_int(&f, ti->int_width));
			if (field(enc, &obj, 1, &f) != 0)
				return -1;
			return set_string(enc, &f, text, len);

		case DTS_TC_CHARACTER:
			CHECK(avro_value_set_branch(item, DTS_AVRO_V_CHARACTER, &obj));
			if (field(enc, &obj, 0, &f) != 0 ||
				set_cstring(enc, &f, enc->charset) != 0)
				return -1;
			if (field(enc, &obj, 1, &f) != 0)
				return -1;
			CHECK(avro_value_set_bytes(&f, (void *) text, len));
			return 0;

		case DTS_TC_DECIMAL:
			{
				int			precision = 0,
							scale = 0;
				bool		special = (len > 0 && (text[0] == 'N' || text[0] == 'I' ||
												   (text[0] == '-' && len > 1 && text[1] == 'I')));

				if (!special &&
					!dts_kfmt_numeric_typmod(col->typmod, &precision, &scale))
					numeric_text_precision(text, len, &precision, &scale);
				CHECK(avro_value_set_branch(item, DTS_AVRO_V_DECIMAL, &obj));
				if (field(enc, &obj, 0, &f) != 0 || set_string(enc, &f, text, len) != 0)
					return -1;
				if (field(enc, &obj, 1, &f) != 0)
					return -1;
				CHECK(avro_value_set_int(&f, precision));
				if (field(enc, &obj, 2, &f) != 0)
					return -1;
				CHECK(avro_value_set_int(&f, scale));
				return 0;
			}

		case DTS_TC_FLOAT:
			{
				char		buf[64];
				double		d;

				if (len >= sizeof(buf))
					goto as_text;
				memcpy(buf, text, len);
				buf[len] = '\0';
				d = strtod(buf, NULL);
				CHECK(avro_value_set_branch(item, DTS_AVRO_V_FLOAT, &obj));
				if (field(enc, &obj, 0, &f) != 0)
					return -1;
				CHECK(avro_value_set_double(&f, d));
				if (field(enc, &obj, 1, &f) != 0)
					return -1;
				/* information_schema.columns.numeric_precision (radix 2) */
				CHECK(avro_value_set_int(&f, col->typoid == 700 ? 24 : 53));
				if (field(enc, &obj, 2, &f) != 0)
					return -1;
				CHECK(avro_value_set_int(&f, 0));
				return 0;
			}

		case DTS_TC_DATE:
		case DTS_TC_TIME:
		case DTS_TC_TIMESTAMP:
			if (!parse_datetime(text, len, ti->tclass, &parts))
				goto as_text;
			CHECK(avro_value_set_branch(item, DTS_AVRO_V_DATETIME, &obj));
			return set_datetime(enc, &obj, &parts);

		case DTS_TC_TIMESTAMPTZ:
		case DTS_TC_TIMETZ:
			if (!parse_datetime(text, len, ti->tclass, &parts))
				goto as_text;
			CHECK(avro_value_set_branch(item, DTS_AVRO_V_TIMESTAMP_TZ, &obj));
			if (field(enc, &obj, 0, &dt) != 0 || set_datetime(enc, &dt, &parts) != 0)
				return -1;
			if (field(enc, &obj, 1, &f) != 0)
				return -1;
			return set_cstring(enc, &f, parts.tz);

		case DTS_TC_BYTEA:
			{
				ssize_t		n = decode_bytea(enc, text, len);

				if (n < 0)
				{
					snprintf(enc->error, sizeof(enc->error),
							 "column \"%s\": malformed bytea text", col->name);
					return -1;
				}
				CHECK(avro_value_set_branch(item, DTS_AVRO_V_BINARY_OBJECT, &obj));
				if (field(enc, &obj, 1, &f) != 0)
					return -1;
				CHECK(avro_value_set_bytes(&f, enc->scratch, (size_t) n));
				if (field(enc, &obj, 0, &f) != 0)
					return -1;
				return set_cstring(enc, &f, ti->object_type);
			}

		case DTS_TC_JSONB:
			CHECK(avro_value_set_branch(item, DTS_AVRO_V_BINARY_OBJECT, &obj));
			if (field(enc, &obj, 0, &f) != 0 ||
				set_cstring(enc, &f, ti->object_type) != 0)
				return -1;
			if (field(enc, &obj, 1, &f) != 0)
				return -1;
			CHECK(avro_value_set_bytes(&f, (void *) text, len));
			return 0;

		case DTS_TC_GEOMETRY:
			return set_text_object(enc, item, DTS_AVRO_V_TEXT_GEOMETRY,
								   ti->object_type, text, len);

		case DTS_TC_TEXT_OBJECT:
			return set_text_object(enc, item, DTS_AVRO_V_TEXT_OBJECT,
								   ti->object_type, text, len);
	}

as_text:
	/* ±infinity, BC dates and texts we do not parse: kept as text */
	return set_text_object(enc, item, DTS_AVRO_V_TEXT_OBJECT, "TEXT", text, len);
}

/* ----------------------------------------------------------------
 *		Records
 * ----------------------------------------------------------------
 */

static int
set_null_union(DtsAvroEncoder *enc, int index)
{
	avro_value_t f,
				b;

	if (field(enc, &enc->record, index, &f) != 0)
		return -1;
	CHECK(avro_value_set_branch(&f, U_NULL, &b));
	CHECK(avro_value_set_null(&b));
	return 0;
}

/* Fills the fields every record has. */
static int
set_header(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
		   DtsAvroOperation op)
{
	avro_value_t *rec = &enc->record;
	avro_value_t f,
				s;
	char		buf[32];
	int			n;

	CHECK(avro_value_reset(rec));
	if (field(enc, rec, F_VERSION, &f) != 0)
		return -1;
	CHECK(avro_value_set_int(&f, DTS_AVRO_RECORD_VERSION));
	if (field(enc, rec, F_ID, &f) != 0)
		return -1;
	CHECK(avro_value_set_long(&f, ctx->record_id));
	if (field(enc, rec, F_SOURCE_TIMESTAMP, &f) != 0)
		return -1;
	CHECK(avro_value_set_long(&f, dts_kfmt_unix_secs(ctx->commit_time_us)));

	n = dts_kfmt_lsn_text(ctx->change_lsn ? ctx->change_lsn : ctx->commit_lsn, buf);
	if (field(enc, rec, F_SOURCE_POSITION, &f) != 0 ||
		set_string(enc, &f, buf, (size_t) n) != 0)
		return -1;
	n = dts_kfmt_lsn_text(ctx->commit_lsn, buf);
	if (field(enc, rec, F_SAFE_SOURCE_POSITION, &f) != 0 ||
		set_string(enc, &f, buf, (size_t) n) != 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%" PRIu32, ctx->xid);
	if (field(enc, rec, F_SOURCE_TXID, &f) != 0 ||
		set_string(enc, &f, buf, (size_t) n) != 0)
		return -1;

	if (field(enc, rec, F_SOURCE, &s) != 0 || field(enc, &s, 0, &f) != 0)
		return -1;
	CHECK(avro_value_set_enum(&f, DTS_AVRO_SOURCE_POSTGRESQL));
	if (field(enc, &s, 1, &f) != 0 || set_cstring(enc, &f, ctx->source_version) != 0)
		return -1;

	if (field(enc, rec, F_OPERATION, &f) != 0)
		return -1;
	CHECK(avro_value_set_enum(&f, (int) op));
	if (set_null_union(enc, F_PROCESS_TIMESTAMPS) != 0)
		return -1;
	if (field(enc, rec, F_BORN_TIMESTAMP, &f) != 0)
		return -1;
	CHECK(avro_value_set_long(&f, ctx->born_time_ms));
	enc->charset = ctx->charset ? ctx->charset : "utf8";
	return add_tag_i64(enc, "readerThroughoutTime", ctx->born_time_ms);
}

/* objectName = db.schema.table, each part's dots escaped as \u002E */
static int
set_object_name(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
				bool with_table)
{
	avro_value_t f,
				b;

	enc->tmp.len = 0;
	dts_kfmt_object_name_part(&enc->tmp, ctx->database ? ctx->database : "");
	if (with_table)
	{
		dts_put_byte(&enc->tmp, '.');
		dts_kfmt_object_name_part(&enc->tmp, ctx->schema ? ctx->schema : "");
		dts_put_byte(&enc->tmp, '.');
		dts_kfmt_object_name_part(&enc->tmp, ctx->table ? ctx->table : "");
	}
	if (field(enc, &enc->record, F_OBJECT_NAME, &f) != 0)
		return -1;
	CHECK(avro_value_set_branch(&f, U_VALUE, &b));
	return set_string(enc, &b, (const char *) enc->tmp.data, enc->tmp.len);
}

/*
 * Writes the filled record to out, first padding it through the tag
 * "padding" (spaces) when it would be enc->min_size bytes or less: old DTS
 * consumers drop records of up to 48 bytes as fillers.
 */
static int
finish(DtsAvroEncoder *enc, DtsWriteBuf *out)
{
	size_t		size;

	CHECK(avro_value_sizeof(&enc->record, &size));
	if (size <= enc->min_size)
	{
		/* the tag adds more than the value's length, so this is enough */
		size_t		need = enc->min_size + 1 - size;
		char	   *pad = malloc(need);

		if (pad == NULL)
			abort();
		memset(pad, ' ', need);
		if (add_tag(enc, "padding", pad, need) != 0)
		{
			free(pad);
			return -1;
		}
		free(pad);
		CHECK(avro_value_sizeof(&enc->record, &size));
	}
	dts_reserve(out, size);
	avro_writer_memory_set_dest(enc->writer,
								(const char *) out->data + out->len,
								(int64_t) size);
	CHECK(avro_value_write(enc->writer, &enc->record));
	if ((size_t) avro_writer_tell(enc->writer) != size)
	{
		snprintf(enc->error, sizeof(enc->error),
				 "avro: wrote %" PRId64 " bytes, expected %zu",
				 avro_writer_tell(enc->writer), size);
		return -1;
	}
	out->len += size;
	return 0;
}

/* fields: array of Field{name, dataTypeNumber = type OID} */
static int
set_fields(DtsAvroEncoder *enc, const DtsRelation *rel)
{
	avro_value_t f,
				arr,
				item,
				x;

	if (field(enc, &enc->record, F_FIELDS, &f) != 0)
		return -1;
	CHECK(avro_value_set_branch(&f, U_ARRAY, &arr));
	for (int i = 0; i < rel->ncols; i++)
	{
		CHECK(avro_value_append(&arr, &item, NULL));
		if (field(enc, &item, 0, &x) != 0 ||
			set_cstring(enc, &x, rel->columns[i].name) != 0)
			return -1;
		if (field(enc, &item, 1, &x) != 0)
			return -1;
		CHECK(avro_value_set_int(&x, (int32_t) rel->columns[i].typoid));
	}
	return 0;
}

static int
set_image(DtsAvroEncoder *enc, int index, const DtsFrame *ch, bool before)
{
	avro_value_t f,
				arr,
				item;

	if (field(enc, &enc->record, index, &f) != 0)
		return -1;
	CHECK(avro_value_set_branch(&f, U_ARRAY, &arr));
	for (int i = 0; i < ch->rel->ncols; i++)
	{
		const DtsValue *v;

		if (before)
			v = dts_kfmt_before_value(ch, i);
		else
			v = i < ch->new_tuple.ncols ? &ch->new_tuple.values[i] : NULL;
		CHECK(avro_value_append(&arr, &item, NULL));
		if (set_value(enc, &ch->rel->columns[i], v, &item) != 0)
			return -1;
	}
	return 0;
}

int
dts_avro_encode_change(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
					   const DtsFrame *change, DtsWriteBuf *out)
{
	DtsAvroOperation op;
	char		buf[16];
	int			n;

	if (!enc->ready)
	{
		snprintf(enc->error, sizeof(enc->error), "avro: encoder not initialised");
		return DTS_KFMT_ERROR;
	}
	switch (change->kind)
	{
		case DTS_FRAME_INSERT:
			op = DTS_AVRO_OP_INSERT;
			break;
		case DTS_FRAME_UPDATE:
			op = DTS_AVRO_OP_UPDATE;
			break;
		case DTS_FRAME_DELETE:
			op = DTS_AVRO_OP_DELETE;
			break;
		default:
			snprintf(enc->error, sizeof(enc->error),
					 "avro: frame kind '%c' is not a row change", change->kind);
			return DTS_KFMT_ERROR;
	}
	if (change->rel == NULL)
	{
		snprintf(enc->error, sizeof(enc->error), "avro: change without relation");
		return DTS_KFMT_ERROR;
	}
	if (set_header(enc, ctx, op) != 0 || set_object_name(enc, ctx, true) != 0)
		return DTS_KFMT_ERROR;

	enc->tmp.len = 0;
	dts_kfmt_pk_uk_info(&enc->tmp, change->rel);
	if (add_tag(enc, "pk_uk_info", (const char *) enc->tmp.data, enc->tmp.len) != 0)
		return DTS_KFMT_ERROR;
	n = snprintf(buf, sizeof(buf), "%" PRIu32,
				 dts_kfmt_meta_version(ctx, change->rel));
	if (add_tag(enc, "metaVersion", buf, (size_t) n) != 0)
		return DTS_KFMT_ERROR;

	if (set_fields(enc, change->rel) != 0)
		return DTS_KFMT_ERROR;
	if (op == DTS_AVRO_OP_INSERT)
	{
		if (set_null_union(enc, F_BEFORE_IMAGES) != 0)
			return DTS_KFMT_ERROR;
	}
	else if (set_image(enc, F_BEFORE_IMAGES, change, true) != 0)
		return DTS_KFMT_ERROR;
	if (op == DTS_AVRO_OP_DELETE)
	{
		if (set_null_union(enc, F_AFTER_IMAGES) != 0)
			return DTS_KFMT_ERROR;
	}
	else if (set_image(enc, F_AFTER_IMAGES, change, false) != 0)
		return DTS_KFMT_ERROR;
	return finish(enc, out) == 0 ? DTS_KFMT_OK : DTS_KFMT_ERROR;
}

int
dts_avro_encode_ddl(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
					const char *sql, size_t sql_len, DtsWriteBuf *out)
{
	avro_value_t f,
				b;
	bool		with_table = (ctx->schema != NULL && ctx->table != NULL);

	if (!enc->ready)
	{
		snprintf(enc->error, sizeof(enc->error), "avro: encoder not initialised");
		return DTS_KFMT_ERROR;
	}
	if (set_header(enc, ctx, DTS_AVRO_OP_DDL) != 0 ||
		set_object_name(enc, ctx, with_table) != 0 ||
		add_tag_i64(enc, "commitTimestamp",
					dts_kfmt_unix_secs(ctx->commit_time_us)) != 0 ||
		set_null_union(enc, F_FIELDS) != 0 ||
		set_null_union(enc, F_BEFORE_IMAGES) != 0)
		return DTS_KFMT_ERROR;
	if (field(enc, &enc->record, F_AFTER_IMAGES, &f) != 0)
		return DTS_KFMT_ERROR;
	if (avro_value_set_branch(&f, U_STRING, &b) != 0)
	{
		avro_fail(enc, "afterImages string branch");
		return DTS_KFMT_ERROR;
	}
	if (set_string(enc, &b, sql, sql_len) != 0)
		return DTS_KFMT_ERROR;
	return finish(enc, out) == 0 ? DTS_KFMT_OK : DTS_KFMT_ERROR;
}

/* A record with objectName, fields and images null. */
static int
encode_bare(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
			DtsAvroOperation op, DtsWriteBuf *out)
{
	if (!enc->ready)
	{
		snprintf(enc->error, sizeof(enc->error), "avro: encoder not initialised");
		return DTS_KFMT_ERROR;
	}
	if (set_header(enc, ctx, op) != 0 ||
		set_null_union(enc, F_OBJECT_NAME) != 0 ||
		set_null_union(enc, F_FIELDS) != 0 ||
		set_null_union(enc, F_BEFORE_IMAGES) != 0 ||
		set_null_union(enc, F_AFTER_IMAGES) != 0)
		return DTS_KFMT_ERROR;
	return finish(enc, out) == 0 ? DTS_KFMT_OK : DTS_KFMT_ERROR;
}

int
dts_avro_encode_heartbeat(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
						  DtsWriteBuf *out)
{
	return encode_bare(enc, ctx, DTS_AVRO_OP_HEARTBEAT, out);
}

int
dts_avro_encode_txn(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
					DtsAvroOperation op, DtsWriteBuf *out)
{
	if (op != DTS_AVRO_OP_BEGIN && op != DTS_AVRO_OP_COMMIT)
	{
		snprintf(enc->error, sizeof(enc->error),
				 "avro: operation %d is not BEGIN or COMMIT", (int) op);
		return DTS_KFMT_ERROR;
	}
	return encode_bare(enc, ctx, op, out);
}

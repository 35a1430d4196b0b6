/*-------------------------------------------------------------------------
 *
 * dts_avro.c
 *	  Encoder of DTS Avro records (com.alibaba.dts.formats.avro.Record): a
 *	  direct writer of Avro's binary encoding, appending each record to the
 *	  caller's buffer in one pass (no Avro library, no allocation per value).
 *
 * Avro's binary encoding, as far as this schema needs it:
 *
 *	int, long, enum		zigzag varint (an enum is its symbol's index)
 *	string, bytes		long length, then the bytes
 *	double				8 bytes, IEEE 754, little-endian
 *	null				nothing
 *	union				long branch index, then the branch's value
 *	record				its fields in schema order, nothing between them
 *	array, map			blocks: long item count (> 0), then the items (a map
 *						item is a string key and its value); a 0 count ends
 *						it.  We write one block, or only the 0 when empty.
 *
 * Field order, union branches and enum symbols are those of the public
 * schema (shipper/formats/dts_record.avsc) and are spelt out below, next
 * to the code that writes them.  tests/unit/test_kafka_formats.c checks the
 * schema file against them with avro-c, decodes the records with avro-c,
 * and checks that they are byte for byte what avro-c's generic-value
 * encoder (which this writer replaced) makes of the same changes.
 *
 * The value mapping (docs/kafka.md):
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/*
 * Record, fields in this order:
 *	version int, id long, sourceTimestamp long, sourcePosition string,
 *	safeSourcePosition string, sourceTxid string,
 *	source Source{sourceType enum SourceType, version string},
 *	operation enum Operation, objectName ["null","string"],
 *	processTimestamps ["null", array<long>], tags map<string>,
 *	fields ["null", "string", array<Field{name string, dataTypeNumber int}>],
 *	beforeImages, afterImages ["null", "string", array<value union>],
 *	bornTimestamp long
 */

/* Record.version: DTS writes 0 (its own records and consumer examples) */
#define DTS_AVRO_RECORD_VERSION 0
/* SourceType symbol PostgreSQL */
#define DTS_AVRO_SOURCE_POSTGRESQL 3
/* EmptyObject symbols ["NULL", "NONE"] */
#define DTS_AVRO_EMPTY_NONE 1
/* Branches of the nullable unions */
#define U_NULL		0
#define U_VALUE		1			/* ["null", X] */
#define U_STRING	1			/* ["null", "string", array] */
#define U_ARRAY		2

/* ----------------------------------------------------------------
 *		Setup
 * ----------------------------------------------------------------
 */

int
dts_avro_init(DtsAvroEncoder *enc)
{
	memset(enc, 0, sizeof(*enc));
	enc->min_size = DTS_AVRO_MIN_RECORD_SIZE;
	dts_kfmt_buf_init(&enc->tmp);
	enc->ready = true;
	return 0;
}

void
dts_avro_free(DtsAvroEncoder *enc)
{
	dts_text_scratch_free(&enc->text);
	free(enc->scratch);
	dts_kfmt_buf_free(&enc->tmp);
	memset(enc, 0, sizeof(*enc));
}

/* ----------------------------------------------------------------
 *		Avro primitives
 * ----------------------------------------------------------------
 */

/* int, long, enum symbol, union branch, block count: zigzag varint */
static inline void
put_long(DtsWriteBuf *b, int64_t v)
{
	dts_put_svarint(b, v);
}

/* string, bytes: long length, then the bytes */
static inline void
put_bytes(DtsWriteBuf *b, const void *s, size_t len)
{
	dts_put_svarint(b, (int64_t) len);
	dts_put_raw(b, s, len);
}

/* a C string; NULL is written as "" */
static inline void
put_cstring(DtsWriteBuf *b, const char *s)
{
	put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

/* double: the IEEE 754 bits, little-endian */
static inline void
put_double(DtsWriteBuf *b, double d)
{
	uint64_t	u;
	uint8_t    *p;

	memcpy(&u, &d, sizeof(u));
	dts_reserve(b, 8);
	p = b->data + b->len;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (u >> (8 * i));
	b->len += 8;
}

/* a ["null","int"] union (the fields of DateTime) */
static inline void
put_opt_int(DtsWriteBuf *b, bool present, int value)
{
	if (!present)
		put_long(b, U_NULL);
	else
	{
		put_long(b, U_VALUE);
		put_long(b, value);
	}
}

/* one map<string> item */
static inline void
put_tag(DtsWriteBuf *b, const char *key, size_t keylen, const char *value,
		size_t len)
{
	put_bytes(b, key, keylen);
	put_bytes(b, value, len);
}

#define TAG(b, key, value, len) put_tag((b), key, sizeof(key) - 1, (value), (len))

/* An LSN as a string: a transaction's records repeat the same ones */
static void
put_lsn(DtsAvroEncoder *enc, DtsWriteBuf *b, uint64_t lsn)
{
	if (enc->lsn_len == 0 || enc->lsn != lsn)
	{
		enc->lsn_len = dts_kfmt_lsn_text(lsn, enc->lsn_text);
		enc->lsn = lsn;
	}
	put_bytes(b, enc->lsn_text, (size_t) enc->lsn_len);
}

static void
put_tag_i64(DtsWriteBuf *b, const char *key, size_t keylen, int64_t value)
{
	char		buf[24];
	int			n = dts_kfmt_i64_text(value, buf);

	put_tag(b, key, keylen, buf, (size_t) n);
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
		/* "%c%02ld:%02ld[:%02ld]" by hand; each part is 2 digits */
		dt->tz[0] = sign;
		dt->tz[1] = (char) ('0' + h / 10);
		dt->tz[2] = (char) ('0' + h % 10);
		dt->tz[3] = ':';
		dt->tz[4] = (char) ('0' + m / 10);
		dt->tz[5] = (char) ('0' + m % 10);
		dt->tz[6] = '\0';
		if (has_sec)
		{
			dt->tz[6] = ':';
			dt->tz[7] = (char) ('0' + sec / 10);
			dt->tz[8] = (char) ('0' + sec % 10);
			dt->tz[9] = '\0';
		}
		dt->has_tz = true;
	}
	return p == end;			/* rejects a trailing " BC" */
}

/*
 * DateTime{year, month, day, hour, minute, second, millis}, each
 * ["null","int"]; "millis": DTS puts microseconds here for PostgreSQL.
 */
static void
put_datetime(DtsWriteBuf *b, const DateTimeParts *p)
{
	put_opt_int(b, p->has_date, p->year);
	put_opt_int(b, p->has_date, p->month);
	put_opt_int(b, p->has_date, p->day);
	put_opt_int(b, p->has_time, p->hour);
	put_opt_int(b, p->has_time, p->minute);
	put_opt_int(b, p->has_time, p->second);
	put_opt_int(b, p->has_time, p->usec);
}

/* ----------------------------------------------------------------
 *		Values
 * ----------------------------------------------------------------
 */

/* TextGeometry or TextObject: {type string, value string} */
static void
put_text_object(DtsWriteBuf *b, int branch, const char *type,
				const char *text, size_t len)
{
	put_long(b, branch);
	put_cstring(b, type);
	put_bytes(b, text, len);
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

/*
 * One item of beforeImages/afterImages: the branch of the value union
 * (DtsAvroValueBranch), then that record.  Returns 0, or -1 with
 * enc->error set.
 */
static int
put_value(DtsAvroEncoder *enc, DtsWriteBuf *b, const DtsColumn *col,
		  const DtsValue *v)
{
	const DtsTypeInfo *ti;
	const char *text;
	size_t		len;
	DateTimeParts parts;

	if (v == NULL || v->status == DTS_VALUE_UNCHANGED ||
		v->status == DTS_VALUE_ABSENT)
	{
		put_long(b, DTS_AVRO_V_EMPTY_OBJECT);
		put_long(b, DTS_AVRO_EMPTY_NONE);
		return 0;
	}
	if (v->status == DTS_VALUE_NULL)
	{
		put_long(b, DTS_AVRO_V_NULL);
		return 0;
	}
	if (!dts_kfmt_value_text(col, v, &enc->text, &text, &len, enc->error))
		return -1;

	ti = dts_kfmt_type_info(col->typoid);
	switch (ti->tclass)
	{
		case DTS_TC_INTEGER:
			/* Integer{precision int, value string} */
			put_long(b, DTS_AVRO_V_INTEGER);
			put_long(b, ti->int_width);
			put_bytes(b, text, len);
			return 0;

		case DTS_TC_CHARACTER:
			/* Character{charset string, value bytes} */
			put_long(b, DTS_AVRO_V_CHARACTER);
			put_cstring(b, enc->charset);
			put_bytes(b, text, len);
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
				/* Decimal{value string, precision int, scale int} */
				put_long(b, DTS_AVRO_V_DECIMAL);
				put_bytes(b, text, len);
				put_long(b, precision);
				put_long(b, scale);
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
				/* Float{value double, precision int, scale int} */
				put_long(b, DTS_AVRO_V_FLOAT);
				put_double(b, d);
				/* information_schema.columns.numeric_precision (radix 2) */
				put_long(b, col->typoid == 700 ? 24 : 53);
				put_long(b, 0);
				return 0;
			}

		case DTS_TC_DATE:
		case DTS_TC_TIME:
		case DTS_TC_TIMESTAMP:
			if (!parse_datetime(text, len, ti->tclass, &parts))
				goto as_text;
			put_long(b, DTS_AVRO_V_DATETIME);
			put_datetime(b, &parts);
			return 0;

		case DTS_TC_TIMESTAMPTZ:
		case DTS_TC_TIMETZ:
			if (!parse_datetime(text, len, ti->tclass, &parts))
				goto as_text;
			/* TimestampWithTimeZone{value DateTime, timezone string} */
			put_long(b, DTS_AVRO_V_TIMESTAMP_TZ);
			put_datetime(b, &parts);
			put_cstring(b, parts.tz);
			return 0;

		case DTS_TC_BYTEA:
			{
				ssize_t		n = decode_bytea(enc, text, len);

				if (n < 0)
				{
					snprintf(enc->error, sizeof(enc->error),
							 "column \"%s\": malformed bytea text", col->name);
					return -1;
				}
				/* BinaryObject{type string, value bytes} */
				put_long(b, DTS_AVRO_V_BINARY_OBJECT);
				put_cstring(b, ti->object_type);
				put_bytes(b, enc->scratch, (size_t) n);
				return 0;
			}

		case DTS_TC_JSONB:
			put_long(b, DTS_AVRO_V_BINARY_OBJECT);
			put_cstring(b, ti->object_type);
			put_bytes(b, text, len);
			return 0;

		case DTS_TC_GEOMETRY:
			put_text_object(b, DTS_AVRO_V_TEXT_GEOMETRY, ti->object_type,
							text, len);
			return 0;

		case DTS_TC_TEXT_OBJECT:
			put_text_object(b, DTS_AVRO_V_TEXT_OBJECT, ti->object_type,
							text, len);
			return 0;
	}

as_text:
	/* ±infinity, BC dates and texts we do not parse: kept as text */
	put_text_object(b, DTS_AVRO_V_TEXT_OBJECT, "TEXT", text, len);
	return 0;
}

/* ----------------------------------------------------------------
 *		Records
 * ----------------------------------------------------------------
 */

/* Where a record being written started, and where its tags map is. */
typedef struct RecordMarks
{
	size_t		start;			/* offset of the record in out */
	size_t		tags_at;		/* offset of the tags' block count */
	size_t		tags_items;		/* offset of the first tag */
	size_t		tags_end;		/* offset of the map's closing 0 */
	int			ntags;
} RecordMarks;

/*
 * Writes the fields every record has, from version to operation, then
 * objectName (the database, or db.schema.table with with_table; null
 * without object) and processTimestamps (null), and opens the tags map
 * with readerThroughoutTime and, for a change of a transaction
 * (seq_in_txn > 0), dts_seq: with safeSourcePosition it names the change
 * uniquely (sourcePosition does not: the rows of one multi-insert share a
 * WAL record).  The caller writes its other ntags tags, then calls
 * close_tags().
 */
static void
put_header(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
		   DtsAvroOperation op, bool object, bool with_table, int ntags,
		   const DtsAvroRelCache *cache, DtsWriteBuf *out, RecordMarks *m)
{
	char		buf[32];
	int			n;

	m->start = out->len;
	put_long(out, DTS_AVRO_RECORD_VERSION);
	put_long(out, ctx->record_id);
	put_long(out, dts_kfmt_unix_secs(ctx->commit_time_us));
	/* sourcePosition, safeSourcePosition */
	put_lsn(enc, out, ctx->change_lsn ? ctx->change_lsn : ctx->commit_lsn);
	put_lsn(enc, out, ctx->commit_lsn);
	n = dts_kfmt_u64_text(ctx->xid, buf);
	put_bytes(out, buf, (size_t) n);	/* sourceTxid */
	/* source: Source{sourceType, version} */
	put_long(out, DTS_AVRO_SOURCE_POSTGRESQL);
	put_cstring(out, ctx->source_version);
	put_long(out, (int) op);

	/* objectName = db.schema.table, each part's dots escaped as \u002E */
	if (!object)
		put_long(out, U_NULL);
	else if (cache)
		dts_put_raw(out, cache->bytes.data, cache->object_end);
	else
	{
		enc->tmp.len = 0;
		dts_kfmt_object_name_part(&enc->tmp, ctx->database ? ctx->database : "");
		if (with_table)
		{
			dts_put_byte(&enc->tmp, '.');
			dts_kfmt_object_name_part(&enc->tmp, ctx->schema ? ctx->schema : "");
			dts_put_byte(&enc->tmp, '.');
			dts_kfmt_object_name_part(&enc->tmp, ctx->table ? ctx->table : "");
		}
		put_long(out, U_VALUE);
		put_bytes(out, enc->tmp.data, enc->tmp.len);
	}
	put_long(out, U_NULL);		/* processTimestamps */

	/* tags: one block of items */
	m->ntags = 1 + (ctx->seq_in_txn > 0) + ntags;
	m->tags_at = out->len;
	put_long(out, m->ntags);
	m->tags_items = out->len;
	put_tag_i64(out, "readerThroughoutTime", sizeof("readerThroughoutTime") - 1,
				ctx->born_time_ms);
	if (ctx->seq_in_txn > 0)
		put_tag_i64(out, "dts_seq", sizeof("dts_seq") - 1, ctx->seq_in_txn);
	enc->charset = ctx->charset ? ctx->charset : "utf8";
}

static inline void
close_tags(DtsWriteBuf *out, RecordMarks *m)
{
	m->tags_end = out->len;
	put_long(out, 0);
}

/*
 * Ends the record with bornTimestamp, then pads it through the tag
 * "padding" (spaces) when it is enc->min_size bytes or less: old DTS
 * consumers drop records of up to 48 bytes as fillers.  The tag adds more
 * than its value's length, so a value of min_size + 1 - size spaces is
 * enough.
 */
static void
finish(DtsAvroEncoder *enc, const DtsRecordContext *ctx, DtsWriteBuf *out,
	   const RecordMarks *m)
{
	size_t		size,
				items_len,
				need;

	put_long(out, ctx->born_time_ms);
	size = out->len - m->start;
	if (size > enc->min_size)
		return;

	/* rare (tiny records): move the rest of the record aside, rewrite it */
	need = enc->min_size + 1 - size;
	items_len = m->tags_end - m->tags_items;
	enc->tmp.len = 0;
	dts_put_raw(&enc->tmp, out->data + m->tags_items, out->len - m->tags_items);
	out->len = m->tags_at;
	put_long(out, m->ntags + 1);
	dts_put_raw(out, enc->tmp.data, items_len);
	put_bytes(out, "padding", 7);
	dts_put_svarint(out, (int64_t) need);
	dts_reserve(out, need);
	memset(out->data + out->len, ' ', need);
	out->len += need;
	dts_put_raw(out, enc->tmp.data + items_len, enc->tmp.len - items_len);
}

/* fields: array of Field{name string, dataTypeNumber int = type OID} */
static void
put_fields(DtsWriteBuf *out, const DtsRelation *rel)
{
	put_long(out, U_ARRAY);
	if (rel->ncols > 0)
	{
		put_long(out, rel->ncols);
		for (int i = 0; i < rel->ncols; i++)
		{
			put_cstring(out, rel->columns[i].name);
			put_long(out, (int32_t) rel->columns[i].typoid);
		}
	}
	put_long(out, 0);
}

/* beforeImages/afterImages: an array of one value per column */
static int
put_image(DtsAvroEncoder *enc, DtsWriteBuf *out, const DtsFrame *ch,
		  bool before)
{
	const DtsRelation *rel = ch->rel;

	put_long(out, U_ARRAY);
	if (rel->ncols > 0)
	{
		put_long(out, rel->ncols);
		for (int i = 0; i < rel->ncols; i++)
		{
			const DtsValue *v;

			if (before)
				v = dts_kfmt_before_value(ch, i);
			else
				v = i < ch->new_tuple.ncols ? &ch->new_tuple.values[i] : NULL;
			if (put_value(enc, out, &rel->columns[i], v) != 0)
				return -1;
		}
	}
	put_long(out, 0);
	return 0;
}

void
dts_avro_rel_cache_init(DtsAvroRelCache *cache)
{
	cache->gen = 0;
	dts_kfmt_buf_init(&cache->bytes);
	cache->object_end = cache->tags_end = 0;
}

void
dts_avro_rel_cache_free(DtsAvroRelCache *cache)
{
	dts_kfmt_buf_free(&cache->bytes);
	cache->gen = 0;
}

/*
 * Encodes into cache what every change record of rel under ctx's names
 * writes alike, as put_header(), dts_avro_encode_change() and put_fields()
 * would write it: objectName (db.schema.table), the tags pk_uk_info and
 * metaVersion, and fields.
 */
static void
fill_rel_cache(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
			   const DtsRelation *rel, DtsAvroRelCache *cache)
{
	DtsWriteBuf *b = &cache->bytes;
	char		buf[24];
	int			n;

	b->len = 0;
	enc->tmp.len = 0;
	dts_kfmt_object_name_part(&enc->tmp, ctx->database ? ctx->database : "");
	dts_put_byte(&enc->tmp, '.');
	dts_kfmt_object_name_part(&enc->tmp, ctx->schema ? ctx->schema : "");
	dts_put_byte(&enc->tmp, '.');
	dts_kfmt_object_name_part(&enc->tmp, ctx->table ? ctx->table : "");
	put_long(b, U_VALUE);
	put_bytes(b, enc->tmp.data, enc->tmp.len);
	cache->object_end = b->len;

	enc->tmp.len = 0;
	dts_kfmt_pk_uk_info(&enc->tmp, rel);
	TAG(b, "pk_uk_info", (const char *) enc->tmp.data, enc->tmp.len);
	n = dts_kfmt_u64_text(dts_kfmt_meta_version(ctx, rel), buf);
	TAG(b, "metaVersion", buf, (size_t) n);
	cache->tags_end = b->len;

	put_fields(b, rel);
	cache->gen = ctx->rel_gen;
}

int
dts_avro_encode_change(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
					   const DtsFrame *change, DtsWriteBuf *out)
{
	DtsAvroOperation op;
	DtsAvroRelCache *cache = NULL;
	RecordMarks m;
	char		buf[24];
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

	if (ctx->avro_rel != NULL && ctx->rel_gen != 0)
	{
		cache = ctx->avro_rel;
		if (cache->gen != ctx->rel_gen)
			fill_rel_cache(enc, ctx, change->rel, cache);
	}

	put_header(enc, ctx, op, true, true, 2, cache, out, &m);
	if (cache)
		dts_put_raw(out, cache->bytes.data + cache->object_end,
					cache->tags_end - cache->object_end);
	else
	{
		enc->tmp.len = 0;
		dts_kfmt_pk_uk_info(&enc->tmp, change->rel);
		TAG(out, "pk_uk_info", (const char *) enc->tmp.data, enc->tmp.len);
		n = dts_kfmt_u64_text(dts_kfmt_meta_version(ctx, change->rel), buf);
		TAG(out, "metaVersion", buf, (size_t) n);
	}
	close_tags(out, &m);

	if (cache)
		dts_put_raw(out, cache->bytes.data + cache->tags_end,
					cache->bytes.len - cache->tags_end);
	else
		put_fields(out, change->rel);
	if (op == DTS_AVRO_OP_INSERT)
		put_long(out, U_NULL);
	else if (put_image(enc, out, change, true) != 0)
		goto fail;
	if (op == DTS_AVRO_OP_DELETE)
		put_long(out, U_NULL);
	else if (put_image(enc, out, change, false) != 0)
		goto fail;
	finish(enc, ctx, out, &m);
	return DTS_KFMT_OK;

fail:
	out->len = m.start;
	return DTS_KFMT_ERROR;
}

int
dts_avro_encode_ddl(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
					const char *sql, size_t sql_len, DtsWriteBuf *out)
{
	RecordMarks m;
	bool		with_table = (ctx->schema != NULL && ctx->table != NULL);

	if (!enc->ready)
	{
		snprintf(enc->error, sizeof(enc->error), "avro: encoder not initialised");
		return DTS_KFMT_ERROR;
	}
	put_header(enc, ctx, DTS_AVRO_OP_DDL, true, with_table, 1, NULL, out, &m);
	put_tag_i64(out, "commitTimestamp", sizeof("commitTimestamp") - 1,
				dts_kfmt_unix_secs(ctx->commit_time_us));
	close_tags(out, &m);
	put_long(out, U_NULL);		/* fields */
	put_long(out, U_NULL);		/* beforeImages */
	put_long(out, U_STRING);	/* afterImages: the SQL text */
	put_bytes(out, sql, sql_len);
	finish(enc, ctx, out, &m);
	return DTS_KFMT_OK;
}

/* A record with objectName, fields and images null. */
static int
encode_bare(DtsAvroEncoder *enc, const DtsRecordContext *ctx,
			DtsAvroOperation op, DtsWriteBuf *out)
{
	RecordMarks m;

	if (!enc->ready)
	{
		snprintf(enc->error, sizeof(enc->error), "avro: encoder not initialised");
		return DTS_KFMT_ERROR;
	}
	put_header(enc, ctx, op, false, false, 0, NULL, out, &m);
	close_tags(out, &m);
	put_long(out, U_NULL);		/* fields */
	put_long(out, U_NULL);		/* beforeImages */
	put_long(out, U_NULL);		/* afterImages */
	finish(enc, ctx, out, &m);
	return DTS_KFMT_OK;
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

/*-------------------------------------------------------------------------
 *
 * pg_dts_consume.c
 *	  Change tracking consumer: reads what pg_dts_ship's Kafka sink wrote
 *	  (DTS Avro, SharePlex JSON or Canal JSON) as a member of a consumer
 *	  group and writes it out as readable JSON lines.
 *
 * Usage:
 *	pg_dts_consume -b BROKERS -t TOPIC -g GROUP [--format FORMAT]
 *		[--from-beginning | --start-time TIME] [-f FILE] [--heartbeats]
 *		[-e] [-c COUNT] [-X PROPERTY=VALUE]... [-v]
 *
 * Where it starts: at the group's committed offset of each partition; a
 * partition the group has never committed starts at --start-time (the
 * first message at or after TIME), at the beginning with --from-beginning,
 * else at the end.  Several groups read the same topic independently.
 *
 * Delivery: offsets are committed (synchronously, enable.auto.commit off)
 * only after the records before them have been written and flushed (and
 * fsync()ed for -f FILE): at least every second, every 1000 records, when
 * partitions are revoked and at exit.  A crash may write records again
 * (at-least-once); each line carries "dts_lsn" and "dts_seq" to drop them:
 * the message's headers of those names when it has them (the sink's
 * lsn_headers), else the record's own position (Avro safeSourcePosition
 * and tag dts_seq, SharePlex meta.scn and meta.seq), else null.
 *
 * Output, one line per record:
 *	{"topic":...,"partition":...,"offset":...,"timestamp":ms,"key":...,
 *	 "dts_lsn":...,"dts_seq":...,"record":{...}}
 * For Avro, "record" holds the Record's fields with "before" and "after"
 * as {column: text} objects (columns unknown to the record - unchanged
 * TOAST, not in the old key - left out) instead of fields/beforeImages/
 * afterImages, and "ddl" with the statement of a DDL record.  For the
 * JSON formats it is the message itself.  HEARTBEAT records are skipped
 * (but their offsets committed) unless --heartbeats.
 *
 * consumer/pg_dts_consume.c
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define PROGNAME			"pg_dts_consume"
#define COMMIT_EVERY		1000
#define COMMIT_INTERVAL_MS	1000

/* generated from shipper/formats/dts_record.avsc (formats/Makefile.inc) */
extern const unsigned char dts_avro_schema_bytes[];
extern const size_t dts_avro_schema_json_len;

static volatile sig_atomic_t stop_flag;

typedef enum Format
{
	FMT_AVRO,
	FMT_JSON					/* shareplex_json, canal_json */
} Format;

/* A growable output line */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

typedef struct Consumer
{
	/* options */
	const char *brokers;
	const char *group;
	const char **topics;
	int			ntopics;
	Format		format;
	bool		from_beginning;
	int64_t		start_time_ms;	/* -1 = none */
	const char *outpath;
	bool		heartbeats;
	bool		exit_at_end;
	long		max_count;		/* 0 = no limit */
	int			verbose;

	/* state */
	rd_kafka_t *rk;
	FILE	   *out;
	bool		out_regular;
	rd_kafka_topic_partition_list_t *pending;	/* next offsets to commit */
	long		uncommitted;
	int64_t		last_commit_ms;
	rd_kafka_topic_partition_list_t *assigned;
	rd_kafka_topic_partition_list_t *at_eof;
	long		written;
	long		skipped;
	bool		failed;

	/* Avro */
	avro_schema_t schema_all;
	avro_schema_t record_schema;
	avro_value_iface_t *iface;
	avro_value_t all;			/* a value of the union... */
	avro_value_t record;		/* ...and its Record branch */
	avro_reader_t reader;

	Buf			line;
	Buf			rec;			/* the record part of the line */
} Consumer;

/* A change's position as its record states it (text; empty = unknown) */
typedef struct RecordPosition
{
	char		lsn[24];		/* commit LSN, "X/X" */
	char		seq[24];		/* 1-based position in the transaction */
} RecordPosition;

static void
on_stop(int signo)
{
	(void) signo;
	stop_flag = 1;
}

static void
log_error(const char *fmt,...)
	__attribute__((format(printf, 1, 2)));

static void
log_error(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: error: ", PROGNAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ----------------------------------------------------------------
 *		JSON output
 * ----------------------------------------------------------------
 */

static void
buf_reserve(Buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return;
	while (b->cap - b->len < n)
		b->cap = b->cap ? b->cap * 2 : 4096;
	b->data = realloc(b->data, b->cap);
	if (b->data == NULL)
	{
		log_error("out of memory");
		abort();
	}
}

static void
buf_put(Buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void
buf_puts(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void
buf_printf(Buf *b, const char *fmt,...)
	__attribute__((format(printf, 2, 3)));

static void
buf_printf(Buf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	buf_reserve(b, 64);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if ((size_t) n >= b->cap - b->len)
	{
		buf_reserve(b, n + 1);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += n;
}

/* Length of a valid UTF-8 sequence at p (of at most n bytes), or 0 */
static int
utf8_len(const unsigned char *p, size_t n)
{
	int			len;
	uint32_t	cp;

	if (p[0] < 0x80)
		return 1;
	else if ((p[0] & 0xE0) == 0xC0)
		len = 2, cp = p[0] & 0x1F;
	else if ((p[0] & 0xF0) == 0xE0)
		len = 3, cp = p[0] & 0x0F;
	else if ((p[0] & 0xF8) == 0xF0)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if ((size_t) len > n)
		return 0;
	for (int i = 1; i < len; i++)
	{
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		(len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		(cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* A JSON string; invalid UTF-8 bytes become U+FFFD */
static void
buf_json_string(Buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	buf_put(b, "\"", 1);
	while (i < n)
	{
		unsigned char ch = p[i];
		int			len;

		if (ch == '"' || ch == '\\')
		{
			char		esc[2] = {'\\', (char) ch};

			buf_put(b, esc, 2);
			i++;
		}
		else if (ch < 0x20)
		{
			switch (ch)
			{
				case '\n':
					buf_puts(b, "\\n");
					break;
				case '\t':
					buf_puts(b, "\\t");
					break;
				case '\r':
					buf_puts(b, "\\r");
					break;
				default:
					buf_printf(b, "\\u%04x", ch);
			}
			i++;
		}
		else if ((len = utf8_len(p + i, n - i)) > 0)
		{
			buf_put(b, s + i, len);
			i += len;
		}
		else
		{
			buf_puts(b, "\\ufffd");
			i++;
		}
	}
	buf_put(b, "\"", 1);
}

/* ----------------------------------------------------------------
 *		Avro to readable JSON
 * ----------------------------------------------------------------
 */

static void write_avro(Buf *b, avro_value_t *v);

static bool
field_by_name(avro_value_t *rec, const char *name, avro_value_t *out)
{
	return avro_value_get_by_name(rec, name, out, NULL) == 0;
}

/* The value of a union (its branch), false for the null branch */
static bool
union_branch(avro_value_t *v, avro_value_t *out)
{
	if (avro_value_get_type(v) != AVRO_UNION)
	{
		*out = *v;
		return avro_value_get_type(v) != AVRO_NULL;
	}
	if (avro_value_get_current_branch(v, out) != 0)
		return false;
	return avro_value_get_type(out) != AVRO_NULL;
}

static bool
nullable_int(avro_value_t *rec, const char *name, int *out)
{
	avro_value_t f;
	avro_value_t b;
	int32_t		i;

	if (!field_by_name(rec, name, &f) || !union_branch(&f, &b) ||
		avro_value_get_int(&b, &i) != 0)
		return false;
	*out = i;
	return true;
}

/* DateTime as "YYYY-MM-DD HH:MM:SS.ffffff" (the parts it has) */
static void
write_datetime_text(Buf *b, avro_value_t *dt)
{
	int			y,
				mo,
				d,
				h,
				mi,
				s,
				us;
	bool		date = nullable_int(dt, "year", &y) &&
		nullable_int(dt, "month", &mo) && nullable_int(dt, "day", &d);
	bool		time = nullable_int(dt, "hour", &h) &&
		nullable_int(dt, "minute", &mi) && nullable_int(dt, "second", &s);

	if (date)
		buf_printf(b, "%04d-%02d-%02d", y, mo, d);
	if (date && time)
		buf_puts(b, " ");
	if (time)
	{
		buf_printf(b, "%02d:%02d:%02d", h, mi, s);
		/* DTS writes microseconds for PostgreSQL in "millis" */
		if (nullable_int(dt, "millis", &us) && us != 0)
			buf_printf(b, ".%06d", us);
	}
}

/*
 * One item of beforeImages/afterImages as JSON: a string with the value's
 * text, null, or false for EmptyObject (unknown: the caller leaves the
 * column out).
 */
static bool
write_image_value(Buf *b, avro_value_t *item)
{
	avro_value_t v;
	avro_value_t f;
	const char *name;
	size_t		size;

	if (!union_branch(item, &v))
	{
		buf_puts(b, "null");
		return true;
	}
	name = avro_schema_name(avro_value_get_schema(&v));
	if (avro_value_get_type(&v) == AVRO_ENUM || strcmp(name, "EmptyObject") == 0)
		return false;
	if (strcmp(name, "DateTime") == 0)
	{
		Buf			t = {0};

		write_datetime_text(&t, &v);
		buf_json_string(b, t.data ? t.data : "", t.len);
		free(t.data);
		return true;
	}
	if (strcmp(name, "TimestampWithTimeZone") == 0)
	{
		Buf			t = {0};
		avro_value_t tz;

		if (field_by_name(&v, "value", &f))
			write_datetime_text(&t, &f);
		if (field_by_name(&v, "timezone", &tz) &&
			avro_value_get_string(&tz, &name, &size) == 0)
		{
			buf_puts(&t, " ");
			buf_put(&t, name, size > 0 ? size - 1 : 0);
		}
		buf_json_string(b, t.data ? t.data : "", t.len);
		free(t.data);
		return true;
	}
	if (!field_by_name(&v, "value", &f))
	{
		write_avro(b, &v);
		return true;
	}
	switch (avro_value_get_type(&f))
	{
		case AVRO_STRING:
			avro_value_get_string(&f, &name, &size);
			buf_json_string(b, name, size > 0 ? size - 1 : 0);
			break;
		case AVRO_BYTES:
			{
				const void *bytes;

				avro_value_get_bytes(&f, &bytes, &size);
				buf_json_string(b, bytes, size);
				break;
			}
		case AVRO_DOUBLE:
			{
				double		d;
				char		num[40];

				avro_value_get_double(&f, &d);
				snprintf(num, sizeof(num), "%.17g", d);
				buf_json_string(b, num, strlen(num));
				break;
			}
		default:
			write_avro(b, &f);
	}
	return true;
}

/* {"col": text, ...} from fields[] and an image array */
static void
write_image(Buf *b, avro_value_t *fields, avro_value_t *images)
{
	avro_value_t arr;
	avro_value_t names;
	size_t		n = 0;
	bool		first = true;

	if (!union_branch(images, &arr) || avro_value_get_type(&arr) != AVRO_ARRAY)
	{
		buf_puts(b, "null");
		return;
	}
	if (!union_branch(fields, &names) ||
		avro_value_get_type(&names) != AVRO_ARRAY)
	{
		write_avro(b, &arr);
		return;
	}
	avro_value_get_size(&arr, &n);
	buf_puts(b, "{");
	for (size_t i = 0; i < n; i++)
	{
		avro_value_t item;
		avro_value_t field;
		avro_value_t fname;
		const char *name = "?";
		size_t		size = 2;
		size_t		mark;

		avro_value_get_by_index(&arr, i, &item, NULL);
		if (avro_value_get_by_index(&names, i, &field, NULL) == 0 &&
			field_by_name(&field, "name", &fname))
			avro_value_get_string(&fname, &name, &size);
		mark = b->len;
		if (!first)
			buf_puts(b, ",");
		buf_json_string(b, name, size > 0 ? size - 1 : 0);
		buf_puts(b, ":");
		if (!write_image_value(b, &item))
		{
			b->len = mark;		/* unknown value: leave the column out */
			continue;
		}
		first = false;
	}
	buf_puts(b, "}");
}

/* Any Avro value as JSON (unions as their branch, enums as symbols) */
static void
write_avro(Buf *b, avro_value_t *v)
{
	avro_schema_t schema = avro_value_get_schema(v);
	size_t		n = 0;

	switch (avro_value_get_type(v))
	{
		case AVRO_NULL:
			buf_puts(b, "null");
			break;
		case AVRO_BOOLEAN:
			{
				int			x;

				avro_value_get_boolean(v, &x);
				buf_puts(b, x ? "true" : "false");
				break;
			}
		case AVRO_INT32:
			{
				int32_t		x;

				avro_value_get_int(v, &x);
				buf_printf(b, "%" PRId32, x);
				break;
			}
		case AVRO_INT64:
			{
				int64_t		x;

				avro_value_get_long(v, &x);
				buf_printf(b, "%" PRId64, x);
				break;
			}
		case AVRO_FLOAT:
		case AVRO_DOUBLE:
			{
				double		x;
				float		f;

				if (avro_value_get_type(v) == AVRO_FLOAT)
				{
					avro_value_get_float(v, &f);
					x = f;
				}
				else
					avro_value_get_double(v, &x);
				if (isnan(x) || isinf(x))
					buf_printf(b, "\"%g\"", x);
				else
					buf_printf(b, "%.17g", x);
				break;
			}
		case AVRO_STRING:
			{
				const char *s;

				avro_value_get_string(v, &s, &n);
				buf_json_string(b, s, n > 0 ? n - 1 : 0);
				break;
			}
		case AVRO_BYTES:
		case AVRO_FIXED:
			{
				const void *p;

				if (avro_value_get_type(v) == AVRO_BYTES)
					avro_value_get_bytes(v, &p, &n);
				else
					avro_value_get_fixed(v, &p, &n);
				buf_json_string(b, p, n);
				break;
			}
		case AVRO_ENUM:
			{
				int			x;
				const char *sym;

				avro_value_get_enum(v, &x);
				sym = avro_schema_enum_get(schema, x);
				buf_json_string(b, sym ? sym : "?", sym ? strlen(sym) : 1);
				break;
			}
		case AVRO_ARRAY:
			avro_value_get_size(v, &n);
			buf_puts(b, "[");
			for (size_t i = 0; i < n; i++)
			{
				avro_value_t e;

				avro_value_get_by_index(v, i, &e, NULL);
				if (i > 0)
					buf_puts(b, ",");
				write_avro(b, &e);
			}
			buf_puts(b, "]");
			break;
		case AVRO_MAP:
		case AVRO_RECORD:
			avro_value_get_size(v, &n);
			buf_puts(b, "{");
			for (size_t i = 0; i < n; i++)
			{
				avro_value_t e;
				const char *name = NULL;

				avro_value_get_by_index(v, i, &e, &name);
				if (i > 0)
					buf_puts(b, ",");
				buf_json_string(b, name ? name : "", name ? strlen(name) : 0);
				buf_puts(b, ":");
				write_avro(b, &e);
			}
			buf_puts(b, "}");
			break;
		case AVRO_UNION:
			{
				avro_value_t br;

				if (avro_value_get_current_branch(v, &br) == 0)
					write_avro(b, &br);
				else
					buf_puts(b, "null");
				break;
			}
		default:
			buf_puts(b, "null");
	}
}

/* The string v into out[size]; out unchanged if v is none or too long */
static void
copy_string(avro_value_t *v, char *out, size_t size)
{
	const char *str;
	size_t		n;

	if (avro_value_get_string(v, &str, &n) == 0 && n > 0 && n - 1 < size)
	{
		memcpy(out, str, n - 1);
		out[n - 1] = '\0';
	}
}

/* The position a DTS Avro record states: safeSourcePosition, tag dts_seq */
static void
avro_position(avro_value_t *rec, RecordPosition *pos)
{
	avro_value_t f;
	avro_value_t v;

	if (field_by_name(rec, "safeSourcePosition", &f))
		copy_string(&f, pos->lsn, sizeof(pos->lsn));
	if (field_by_name(rec, "tags", &f) &&
		avro_value_get_by_name(&f, "dts_seq", &v, NULL) == 0)
		copy_string(&v, pos->seq, sizeof(pos->seq));
}

/*
 * The position a SharePlex JSON record states: meta.scn (the commit LSN
 * as a decimal number) and meta.seq.  Canal JSON has none.
 */
static void
json_position(json_t *j, RecordPosition *pos)
{
	json_t	   *meta = json_object_get(j, "meta");
	json_t	   *scn = json_object_get(meta, "scn");
	json_t	   *seq = json_object_get(meta, "seq");
	char	   *end;
	unsigned long long lsn;

	if (json_is_string(scn))
	{
		errno = 0;
		lsn = strtoull(json_string_value(scn), &end, 10);
		if (errno == 0 && *end == '\0' && end != json_string_value(scn))
			snprintf(pos->lsn, sizeof(pos->lsn), "%X/%X",
					 (unsigned) (lsn >> 32), (unsigned) lsn);
	}
	if (json_is_integer(seq))
		snprintf(pos->seq, sizeof(pos->seq), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(seq));
}

/*
 * The Record as readable JSON, and its position into *pos.  Returns 0, 1
 * for a heartbeat to skip, -1 when the bytes are not a Record.
 */
static int
write_avro_record(Consumer *cs, const void *data, size_t len, Buf *b,
				  RecordPosition *pos)
{
	avro_value_t *rec = &cs->record;
	avro_value_t op;
	avro_value_t fields;
	avro_value_t before;
	avro_value_t after;
	const char *opname = "";
	size_t		n = 0;
	bool		first = true;

	avro_reader_memory_set_source(cs->reader, data, (int64_t) len);
	if (avro_value_read(cs->reader, rec) != 0)
		return -1;
	avro_position(rec, pos);
	if (field_by_name(rec, "operation", &op))
	{
		int			x;

		avro_value_get_enum(&op, &x);
		opname = avro_schema_enum_get(avro_value_get_schema(&op), x);
		if (opname && strcmp(opname, "HEARTBEAT") == 0 && !cs->heartbeats)
			return 1;
	}
	field_by_name(rec, "fields", &fields);
	field_by_name(rec, "beforeImages", &before);
	field_by_name(rec, "afterImages", &after);

	buf_puts(b, "{");
	avro_value_get_size(rec, &n);
	for (size_t i = 0; i < n; i++)
	{
		avro_value_t e;
		const char *name = NULL;

		avro_value_get_by_index(rec, i, &e, &name);
		if (strcmp(name, "fields") == 0 || strcmp(name, "beforeImages") == 0 ||
			strcmp(name, "afterImages") == 0 ||
			strcmp(name, "processTimestamps") == 0)
			continue;
		if (!first)
			buf_puts(b, ",");
		first = false;
		buf_json_string(b, name, strlen(name));
		buf_puts(b, ":");
		write_avro(b, &e);
	}
	if (opname && strcmp(opname, "DDL") == 0)
	{
		avro_value_t sql;

		buf_puts(b, ",\"ddl\":");
		if (union_branch(&after, &sql))
			write_avro(b, &sql);
		else
			buf_puts(b, "null");
	}
	else
	{
		buf_puts(b, ",\"before\":");
		write_image(b, &fields, &before);
		buf_puts(b, ",\"after\":");
		write_image(b, &fields, &after);
	}
	buf_puts(b, "}");
	return 0;
}

static int
avro_setup(Consumer *cs)
{
	int			idx;

	if (avro_schema_from_json_length((const char *) dts_avro_schema_bytes,
									 dts_avro_schema_json_len,
									 &cs->schema_all) != 0)
	{
		log_error("could not parse the DTS Avro schema: %s", avro_strerror());
		return -1;
	}
	cs->record_schema = avro_schema_union_branch_by_name(cs->schema_all, &idx,
														 "Record");
	if (cs->record_schema == NULL)
	{
		log_error("the DTS Avro schema has no Record");
		return -1;
	}
	/* a class of the whole union: the Record refers to its siblings */
	cs->iface = avro_generic_class_from_schema(cs->schema_all);
	if (cs->iface == NULL ||
		avro_generic_value_new(cs->iface, &cs->all) != 0 ||
		avro_value_set_branch(&cs->all, idx, &cs->record) != 0)
	{
		log_error("could not prepare Avro decoding: %s", avro_strerror());
		return -1;
	}
	cs->reader = avro_reader_memory(NULL, 0);
	return 0;
}

/* ----------------------------------------------------------------
 *		Offsets: commit after write
 * ----------------------------------------------------------------
 */

static int
commit_pending(Consumer *cs)
{
	rd_kafka_resp_err_t err;

	if (cs->pending->cnt == 0)
		return 0;
	/* what we commit must be out first */
	if (fflush(cs->out) != 0 || (cs->out_regular && fsync(fileno(cs->out)) != 0))
	{
		log_error("could not write the output: %s", strerror(errno));
		cs->failed = true;
		return -1;
	}
	err = rd_kafka_commit(cs->rk, cs->pending, 0);
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
	{
		/* not fatal: the next commit covers these offsets too */
		fprintf(stderr, "%s: warning: could not commit offsets: %s\n",
				PROGNAME, rd_kafka_err2str(err));
		return -1;
	}
	if (cs->verbose)
		for (int i = 0; i < cs->pending->cnt; i++)
			fprintf(stderr, "%s: committed %s [%d] offset %" PRId64 "\n",
					PROGNAME, cs->pending->elems[i].topic,
					(int) cs->pending->elems[i].partition,
					cs->pending->elems[i].offset);
	rd_kafka_topic_partition_list_destroy(cs->pending);
	cs->pending = rd_kafka_topic_partition_list_new(8);
	cs->uncommitted = 0;
	cs->last_commit_ms = now_ms();
	return 0;
}

static void
note_offset(Consumer *cs, const rd_kafka_message_t *m)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	rd_kafka_topic_partition_t *p =
		rd_kafka_topic_partition_list_find(cs->pending, topic, m->partition);

	if (p == NULL)
		p = rd_kafka_topic_partition_list_add(cs->pending, topic, m->partition);
	p->offset = m->offset + 1;
	cs->uncommitted++;
}

static void
set_eof(Consumer *cs, const char *topic, int32_t partition, bool eof)
{
	rd_kafka_topic_partition_t *p =
		rd_kafka_topic_partition_list_find(cs->at_eof, topic, partition);

	if (eof && p == NULL)
		rd_kafka_topic_partition_list_add(cs->at_eof, topic, partition);
	else if (!eof && p != NULL)
		rd_kafka_topic_partition_list_del(cs->at_eof, topic, partition);
}

/* Where partitions the group never committed start with --start-time */
static void
apply_start_time(Consumer *cs, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *fresh;
	rd_kafka_resp_err_t err;

	if (rd_kafka_committed(cs->rk, parts, 10000) != 0)
		return;					/* keep the group's defaults */
	fresh = rd_kafka_topic_partition_list_new(parts->cnt);
	for (int i = 0; i < parts->cnt; i++)
		if (parts->elems[i].offset < 0)
			rd_kafka_topic_partition_list_add(fresh, parts->elems[i].topic,
											  parts->elems[i].partition)->offset =
				cs->start_time_ms;
	if (fresh->cnt > 0)
	{
		err = rd_kafka_offsets_for_times(cs->rk, fresh, 10000);
		for (int i = 0; i < fresh->cnt; i++)
		{
			rd_kafka_topic_partition_t *p =
				rd_kafka_topic_partition_list_find(parts, fresh->elems[i].topic,
												   fresh->elems[i].partition);

			/*
			 * Brokers that cannot look up times (or none found): from the
			 * beginning; messages older than TIME are skipped as read.
			 */
			if (err || fresh->elems[i].err || fresh->elems[i].offset < 0)
				p->offset = RD_KAFKA_OFFSET_BEGINNING;
			else
				p->offset = fresh->elems[i].offset;
		}
	}
	/* the others keep their committed offsets */
	rd_kafka_topic_partition_list_destroy(fresh);
}

static void
on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	Consumer   *cs = opaque;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
	{
		if (cs->start_time_ms >= 0)
			apply_start_time(cs, parts);
		if (cs->verbose)
			fprintf(stderr, "%s: assigned %d partition%s\n", PROGNAME,
					parts->cnt, parts->cnt == 1 ? "" : "s");
		rd_kafka_topic_partition_list_destroy(cs->assigned);
		cs->assigned = rd_kafka_topic_partition_list_copy(parts);
		rd_kafka_assign(rk, parts);
	}
	else
	{
		/* commit what we wrote before the partitions go elsewhere */
		commit_pending(cs);
		rd_kafka_topic_partition_list_destroy(cs->assigned);
		cs->assigned = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_destroy(cs->at_eof);
		cs->at_eof = rd_kafka_topic_partition_list_new(8);
		rd_kafka_assign(rk, NULL);
	}
}

/* ----------------------------------------------------------------
 *		Messages
 * ----------------------------------------------------------------
 */

/* The header name of m, else the record's text, else null */
static void
position_text(const rd_kafka_message_t *m, const char *name,
			  const char *from_record, Buf *b)
{
	rd_kafka_headers_t *hdrs;
	const void *val;
	size_t		size;

	if (rd_kafka_message_headers(m, &hdrs) == 0 &&
		rd_kafka_header_get_last(hdrs, name, &val, &size) == 0 && val)
		buf_json_string(b, val, size);
	else if (from_record[0] != '\0')
		buf_json_string(b, from_record, strlen(from_record));
	else
		buf_puts(b, "null");
}

static void
handle_message(Consumer *cs, const rd_kafka_message_t *m)
{
	Buf		   *b = &cs->line;
	Buf		   *r = &cs->rec;
	rd_kafka_timestamp_type_t tstype;
	int64_t		ts = rd_kafka_message_timestamp(m, &tstype);
	RecordPosition pos = {{0}, {0}};
	int			rc = 0;

	set_eof(cs, rd_kafka_topic_name(m->rkt), m->partition, false);
	if (cs->start_time_ms >= 0 && ts >= 0 && ts < cs->start_time_ms)
	{
		note_offset(cs, m);		/* before the start time: read, not shown */
		return;
	}
	/* the record first: the line's dts_lsn/dts_seq may come from it */
	r->len = 0;
	if (cs->format == FMT_AVRO)
	{
		rc = write_avro_record(cs, m->payload, m->len, r, &pos);
		if (rc < 0)
		{
			r->len = 0;
			memset(&pos, 0, sizeof(pos));
			buf_puts(r, "null,\"error\":\"not a DTS Avro record\"");
			fprintf(stderr, "%s: warning: %s [%d] offset %" PRId64 " is not a DTS Avro record: %s\n",
					PROGNAME, rd_kafka_topic_name(m->rkt), (int) m->partition,
					m->offset, avro_strerror());
		}
	}
	else
	{
		json_error_t jerr;
		json_t	   *j = json_loadb(m->payload, m->len, 0, &jerr);

		if (j)
		{
			buf_put(r, m->payload, m->len);
			json_position(j, &pos);
		}
		else
		{
			buf_json_string(r, m->payload, m->len);
			buf_puts(r, ",\"error\":\"not JSON\"");
		}
		json_decref(j);
	}
	if (rc == 1)
	{
		cs->skipped++;			/* a heartbeat: read, not shown */
		note_offset(cs, m);
		return;
	}

	b->len = 0;
	buf_puts(b, "{\"topic\":");
	buf_json_string(b, rd_kafka_topic_name(m->rkt),
					strlen(rd_kafka_topic_name(m->rkt)));
	buf_printf(b, ",\"partition\":%d,\"offset\":%" PRId64 ",\"timestamp\":%" PRId64 ",\"key\":",
			   (int) m->partition, m->offset, ts);
	if (m->key)
		buf_json_string(b, m->key, m->key_len);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"dts_lsn\":");
	position_text(m, "dts_lsn", pos.lsn, b);
	buf_puts(b, ",\"dts_seq\":");
	position_text(m, "dts_seq", pos.seq, b);
	buf_puts(b, ",\"record\":");
	buf_put(b, r->data, r->len);
	buf_puts(b, "}\n");
	if (fwrite(b->data, 1, b->len, cs->out) != b->len)
	{
		log_error("could not write the output: %s", strerror(errno));
		cs->failed = true;
		return;
	}
	note_offset(cs, m);			/* committed once flushed */
	cs->written++;
}

static bool
all_at_end(Consumer *cs)
{
	if (cs->assigned == NULL || cs->assigned->cnt == 0)
		return false;
	for (int i = 0; i < cs->assigned->cnt; i++)
		if (rd_kafka_topic_partition_list_find(cs->at_eof,
											   cs->assigned->elems[i].topic,
											   cs->assigned->elems[i].partition) == NULL)
			return false;
	return true;
}

/* ----------------------------------------------------------------
 *		Main
 * ----------------------------------------------------------------
 */

static void
usage(void)
{
	printf("%s reads the changes pg_dts_ship wrote to Kafka, as a consumer group,\n"
		   "and writes them out as JSON lines.\n\n", PROGNAME);
	printf("Usage:\n  %s -b BROKERS -t TOPIC -g GROUP [OPTION]...\n\n", PROGNAME);
	printf("Options:\n");
	printf("  -b, --brokers=HOST:PORT,...  bootstrap brokers\n");
	printf("  -t, --topic=TOPIC            topic to read (may be repeated)\n");
	printf("  -g, --group=GROUP            consumer group (offsets are committed for it)\n");
	printf("      --format=FORMAT          avro (default), shareplex_json or canal_json\n");
	printf("      --from-beginning         partitions the group never committed start at\n"
		   "                               the beginning (default: at the end)\n");
	printf("      --start-time=TIME        ... start at TIME: UNIX seconds, or\n"
		   "                               \"YYYY-MM-DD HH:MM:SS\" (UTC)\n");
	printf("  -f, --file=FILE              append to FILE (default: standard output)\n");
	printf("      --heartbeats             also write HEARTBEAT records\n");
	printf("  -e, --exit-at-end            exit once every assigned partition is read\n");
	printf("  -c, --count=N                exit after writing N records\n");
	printf("  -X PROPERTY=VALUE            librdkafka consumer property (SASL, TLS, ...)\n");
	printf("  -v, --verbose                say what is assigned and committed\n");
	printf("  -?, --help                   show this help, then exit\n");
}

static bool
parse_time(const char *s, int64_t *ms)
{
	char	   *end;
	long long	secs = strtoll(s, &end, 10);
	struct tm	tm;

	if (end != s && *end == '\0')
	{
		*ms = secs * 1000;
		return true;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (end == NULL)
		end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL || *end != '\0')
		return false;
	*ms = (int64_t) timegm(&tm) * 1000;
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"brokers", required_argument, NULL, 'b'},
		{"topic", required_argument, NULL, 't'},
		{"group", required_argument, NULL, 'g'},
		{"format", required_argument, NULL, 'F'},
		{"from-beginning", no_argument, NULL, 'B'},
		{"start-time", required_argument, NULL, 'T'},
		{"file", required_argument, NULL, 'f'},
		{"heartbeats", no_argument, NULL, 'H'},
		{"exit-at-end", no_argument, NULL, 'e'},
		{"count", required_argument, NULL, 'c'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	Consumer	cs;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *subs;
	char		errstr[512];
	int			c;
	int			rc = 0;
	struct sigaction sa;

	memset(&cs, 0, sizeof(cs));
	cs.start_time_ms = -1;
	cs.topics = calloc(argc, sizeof(char *));
	while ((c = getopt_long(argc, argv, "b:t:g:f:ec:X:v?", long_options,
							NULL)) != -1)
	{
		switch (c)
		{
			case 'b':
				cs.brokers = optarg;
				break;
			case 't':
				cs.topics[cs.ntopics++] = optarg;
				break;
			case 'g':
				cs.group = optarg;
				break;
			case 'F':
				if (strcmp(optarg, "avro") == 0)
					cs.format = FMT_AVRO;
				else if (strcmp(optarg, "shareplex_json") == 0 ||
						 strcmp(optarg, "canal_json") == 0)
					cs.format = FMT_JSON;
				else
				{
					log_error("invalid format \"%s\": expected avro, shareplex_json or canal_json", optarg);
					return 1;
				}
				break;
			case 'B':
				cs.from_beginning = true;
				break;
			case 'T':
				if (!parse_time(optarg, &cs.start_time_ms))
				{
					log_error("invalid start time \"%s\": expected UNIX seconds or \"YYYY-MM-DD HH:MM:SS\"", optarg);
					return 1;
				}
				break;
			case 'f':
				cs.outpath = optarg;
				break;
			case 'H':
				cs.heartbeats = true;
				break;
			case 'e':
				cs.exit_at_end = true;
				break;
			case 'c':
				cs.max_count = atol(optarg);
				if (cs.max_count <= 0)
				{
					log_error("invalid count \"%s\"", optarg);
					return 1;
				}
				break;
			case 'X':
				{
					char	   *eq = strchr(optarg, '=');

					if (eq == NULL)
					{
						log_error("invalid -X \"%s\": expected PROPERTY=VALUE", optarg);
						return 1;
					}
					*eq = '\0';
					if (rd_kafka_conf_set(conf, optarg, eq + 1, errstr,
										  sizeof(errstr)) != RD_KAFKA_CONF_OK)
					{
						log_error("-X %s: %s", optarg, errstr);
						return 1;
					}
					break;
				}
			case 'v':
				cs.verbose++;
				break;
			case '?':
				if (optopt == 0 && strcmp(argv[optind - 1], "-?") != 0 &&
					strcmp(argv[optind - 1], "--help") != 0)
				{
					fprintf(stderr, "Try \"%s --help\" for more information.\n", PROGNAME);
					return 1;
				}
				usage();
				return 0;
			default:
				fprintf(stderr, "Try \"%s --help\" for more information.\n", PROGNAME);
				return 1;
		}
	}
	if (optind < argc || !cs.brokers || cs.ntopics == 0 || !cs.group)
	{
		log_error("%s", optind < argc ? "too many arguments" :
				  "-b BROKERS, -t TOPIC and -g GROUP are required");
		fprintf(stderr, "Try \"%s --help\" for more information.\n", PROGNAME);
		return 1;
	}
	if (cs.from_beginning && cs.start_time_ms >= 0)
	{
		log_error("use either --from-beginning or --start-time");
		return 1;
	}

	if (rd_kafka_conf_set(conf, "bootstrap.servers", cs.brokers, errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "group.id", cs.group, errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "auto.offset.reset",
						  cs.from_beginning || cs.start_time_ms >= 0 ?
						  "earliest" : "latest", errstr, sizeof(errstr)))
	{
		log_error("%s", errstr);
		return 1;
	}
	rd_kafka_conf_set_opaque(conf, &cs);
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);

	if (cs.format == FMT_AVRO && avro_setup(&cs) != 0)
		return 1;
	if (cs.outpath)
	{
		struct stat st;

		cs.out = fopen(cs.outpath, "a");
		if (cs.out == NULL)
		{
			log_error("could not open \"%s\": %s", cs.outpath, strerror(errno));
			return 1;
		}
		cs.out_regular = fstat(fileno(cs.out), &st) == 0 && S_ISREG(st.st_mode);
	}
	else
		cs.out = stdout;
	cs.pending = rd_kafka_topic_partition_list_new(8);
	cs.assigned = rd_kafka_topic_partition_list_new(1);
	cs.at_eof = rd_kafka_topic_partition_list_new(8);

	cs.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (cs.rk == NULL)
	{
		log_error("could not create the consumer: %s", errstr);
		return 1;
	}
	rd_kafka_poll_set_consumer(cs.rk);
	subs = rd_kafka_topic_partition_list_new(cs.ntopics);
	for (int i = 0; i < cs.ntopics; i++)
		rd_kafka_topic_partition_list_add(subs, cs.topics[i],
										  RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(cs.rk, subs) != 0)
	{
		log_error("could not subscribe to the topics");
		return 1;
	}
	rd_kafka_topic_partition_list_destroy(subs);

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	cs.last_commit_ms = now_ms();
	while (!stop_flag && !cs.failed)
	{
		rd_kafka_message_t *m = rd_kafka_consumer_poll(cs.rk, 200);

		if (m != NULL)
		{
			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
				set_eof(&cs, rd_kafka_topic_name(m->rkt), m->partition, true);
			else if (m->err)
			{
				fprintf(stderr, "%s: %s: %s\n", PROGNAME,
						m->err == RD_KAFKA_RESP_ERR__FATAL ? "error" : "warning",
						rd_kafka_message_errstr(m));
				if (m->err == RD_KAFKA_RESP_ERR__FATAL ||
					m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
					m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
					cs.failed = true;
			}
			else
				handle_message(&cs, m);
			rd_kafka_message_destroy(m);
		}
		if (cs.uncommitted >= COMMIT_EVERY ||
			(cs.pending->cnt > 0 &&
			 (m == NULL || now_ms() - cs.last_commit_ms >= COMMIT_INTERVAL_MS)))
			commit_pending(&cs);
		if (cs.max_count > 0 && cs.written >= cs.max_count)
			break;
		if (cs.exit_at_end && all_at_end(&cs))
			break;
	}
	commit_pending(&cs);
	rd_kafka_consumer_close(cs.rk);		/* revokes: commits again if needed */
	if (cs.failed)
		rc = 1;
	if (cs.verbose)
		fprintf(stderr, "%s: %ld records written, %ld heartbeats skipped\n",
				PROGNAME, cs.written, cs.skipped);
	rd_kafka_destroy(cs.rk);
	rd_kafka_topic_partition_list_destroy(cs.pending);
	rd_kafka_topic_partition_list_destroy(cs.assigned);
	rd_kafka_topic_partition_list_destroy(cs.at_eof);
	if (cs.outpath)
		fclose(cs.out);
	else
		fflush(stdout);
	if (cs.format == FMT_AVRO)
	{
		avro_reader_free(cs.reader);
		avro_value_decref(&cs.all);
		avro_value_iface_decref(cs.iface);
		avro_schema_decref(cs.schema_all);
	}
	free(cs.line.data);
	free(cs.rec.data);
	free(cs.topics);
	return rc;
}

/*-------------------------------------------------------------------------
 *
 * json.c
 *	  Frames to JSON: one object per change for the file sink (and any
 *	  other sink that wants JSON).  Values are typed from the column's type
 *	  OID in the RELATION frame: numbers, booleans and json/jsonb become
 *	  JSON, everything else a string; NULL and unchanged TOAST stay
 *	  distinct.  The object layout is documented in docs/shipper.md.
 *
 * shipper/formats/json.c
 *
 *-------------------------------------------------------------------------
 */
#include "formats/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The built-in type OIDs this file types values by (pg_type.dat). */
#define BOOLOID			16
#define CHAROID			18
#define INT8OID			20
#define INT2OID			21
#define INT4OID			23
#define JSONOID			114
#define FLOAT4OID		700
#define FLOAT8OID		701
#define NUMERICOID		1700
#define JSONBOID		3802

#define HEARTBEAT_SCHEMA	"public"
#define HEARTBEAT_TABLE		"dts_postgres_heartbeat"

/* ----------------------------------------------------------------
 *		String buffer
 * ----------------------------------------------------------------
 */

void
dts_strbuf_init(DtsStrBuf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

void
dts_strbuf_reset(DtsStrBuf *buf)
{
	buf->len = 0;
	if (buf->data)
		buf->data[0] = '\0';
}

void
dts_strbuf_free(DtsStrBuf *buf)
{
	free(buf->data);
	dts_strbuf_init(buf);
}

static void
strbuf_reserve(DtsStrBuf *buf, size_t more)
{
	size_t		cap;

	if (buf->cap - buf->len > more)
		return;
	cap = buf->cap ? buf->cap : 256;
	while (cap - buf->len <= more)
		cap *= 2;
	buf->data = dts_realloc(buf->data, cap);
	buf->cap = cap;
}

void
dts_strbuf_append(DtsStrBuf *buf, const char *data, size_t len)
{
	strbuf_reserve(buf, len);
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

static void
strbuf_putc(DtsStrBuf *buf, char c)
{
	strbuf_reserve(buf, 1);
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
}

static void
strbuf_puts(DtsStrBuf *buf, const char *s)
{
	dts_strbuf_append(buf, s, strlen(s));
}

void
dts_strbuf_appendf(DtsStrBuf *buf, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	strbuf_reserve(buf, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	buf->len += n;
}

/* ----------------------------------------------------------------
 *		JSON scalars
 * ----------------------------------------------------------------
 */

/*
 * Appends a JSON string.  Bytes from 0x80 up are copied as they are: text
 * from a UTF8 server is valid UTF-8 (the shipper warns about other server
 * encodings).
 */
static void
json_string(DtsStrBuf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		run = 0;
	char	   *p;

	/* worst case: every byte becomes \u00XX */
	strbuf_reserve(out, 6 * len + 2);
	p = out->data + out->len;
	*p++ = '"';
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		memcpy(p, s + run, i - run);
		p += i - run;
		run = i + 1;
		*p++ = '\\';
		switch (c)
		{
			case '"':
			case '\\':
				*p++ = (char) c;
				break;
			case '\n':
				*p++ = 'n';
				break;
			case '\t':
				*p++ = 't';
				break;
			case '\r':
				*p++ = 'r';
				break;
			default:
				memcpy(p, "u00", 3);
				p[3] = hex[c >> 4];
				p[4] = hex[c & 15];
				p += 5;
				break;
		}
	}
	memcpy(p, s + run, len - run);
	p += len - run;
	*p++ = '"';
	*p = '\0';
	out->len = p - out->data;
}

/* Appends the decimal digits of v (no printf: this is per value). */
static void
json_uint(DtsStrBuf *out, uint64_t v)
{
	char		digits[20];
	int			n = 0;

	do
	{
		digits[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v > 0);
	strbuf_reserve(out, n);
	while (n > 0)
		out->data[out->len++] = digits[--n];
	out->data[out->len] = '\0';
}

static void
json_int(DtsStrBuf *out, int64_t v)
{
	if (v < 0)
	{
		strbuf_putc(out, '-');
		json_uint(out, (uint64_t) 0 - (uint64_t) v);
	}
	else
		json_uint(out, (uint64_t) v);
}

static void
json_cstring(DtsStrBuf *out, const char *s)
{
	json_string(out, s, strlen(s));
}

/* Appends ,"key": (or "key": as the first member) */
static void
json_key(DtsStrBuf *out, const char *key)
{
	if (out->len > 0 && out->data[out->len - 1] != '{')
		strbuf_putc(out, ',');
	json_cstring(out, key);
	strbuf_putc(out, ':');
}

static void
json_lsn(DtsStrBuf *out, const char *key, uint64_t lsn)
{
	static const char hex[] = "0123456789ABCDEF";
	char		buf[DTS_LSN_BUFSIZE];
	char	   *p = buf + sizeof(buf);
	uint32_t	halves[2] = {(uint32_t) lsn, (uint32_t) (lsn >> 32)};

	/* "X/X" as PostgreSQL prints it, written backwards */
	for (int h = 0; h < 2; h++)
	{
		uint32_t	v = halves[h];

		do
		{
			*--p = hex[v & 15];
			v >>= 4;
		} while (v > 0);
		if (h == 0)
			*--p = '/';
	}
	json_key(out, key);
	json_string(out, p, buf + sizeof(buf) - p);
}

/* Appends a "\x..." hex string of bytes (bytea's hex output format). */
static void
json_hex(DtsStrBuf *out, const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		i;

	strbuf_reserve(out, 2 * len + 4);
	memcpy(out->data + out->len, "\"\\\\x", 4);
	out->len += 4;
	for (i = 0; i < len; i++)
	{
		out->data[out->len++] = hex[data[i] >> 4];
		out->data[out->len++] = hex[data[i] & 15];
	}
	strbuf_putc(out, '"');
}

static void
json_base64(DtsStrBuf *out, const uint8_t *data, size_t len)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t		i;

	strbuf_reserve(out, (len + 2) / 3 * 4 + 2);
	out->data[out->len++] = '"';
	for (i = 0; i < len; i += 3)
	{
		uint32_t	v = (uint32_t) data[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t) data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		out->data[out->len++] = b64[(v >> 18) & 63];
		out->data[out->len++] = b64[(v >> 12) & 63];
		out->data[out->len++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out->data[out->len++] = i + 2 < len ? b64[v & 63] : '=';
	}
	strbuf_putc(out, '"');
}

/* Is s[0..len) valid UTF-8 without NUL bytes? */
static bool
valid_utf8(const uint8_t *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		uint8_t		c = s[i];
		size_t		n;
		uint32_t	cp;

		if (c == 0)
			return false;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0)
			n = 1, cp = c & 0x1F;
		else if ((c & 0xF0) == 0xE0)
			n = 2, cp = c & 0x0F;
		else if ((c & 0xF8) == 0xF0)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (len - i <= n)
			return false;		/* sequence cut short */
		for (size_t k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
			(n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
			(cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

/* Is s[0..len) a JSON number (RFC 8259 grammar)? */
static bool
is_json_number(const char *s, size_t len)
{
	size_t		i = 0;

#define DIGIT(k) ((k) < len && s[k] >= '0' && s[k] <= '9')
	if (i < len && s[i] == '-')
		i++;
	if (!DIGIT(i))
		return false;
	if (s[i] == '0')
		i++;
	else
		while (DIGIT(i))
			i++;
	if (i < len && s[i] == '.')
	{
		i++;
		if (!DIGIT(i))
			return false;
		while (DIGIT(i))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!DIGIT(i))
			return false;
		while (DIGIT(i))
			i++;
	}
#undef DIGIT
	return i == len;
}

/*
 * Appends the text of a json or jsonb value without the whitespace between
 * tokens, so that it stays on one line.  The server has validated it.
 */
static void
json_embed(DtsStrBuf *out, const char *s, size_t len)
{
	bool		in_string = false;
	size_t		i;

	strbuf_reserve(out, len);
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\' && i + 1 < len)
			{
				out->data[out->len++] = c;
				c = s[++i];
			}
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		out->data[out->len++] = c;
	}
	out->data[out->len] = '\0';
}

/* Appends a float: a number when finite, else "NaN", "Infinity", ... */
static void
json_double(DtsStrBuf *out, double d, int digits)
{
	if (isnan(d))
		strbuf_puts(out, "\"NaN\"");
	else if (isinf(d))
		strbuf_puts(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
		dts_strbuf_appendf(out, "%.*g", digits, d);
}

/* ----------------------------------------------------------------
 *		Values
 * ----------------------------------------------------------------
 */

static void
json_text_value(DtsStrBuf *out, uint32_t typoid, const char *s, size_t len)
{
	switch (typoid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			/* NaN, Infinity, -Infinity are no JSON numbers: strings */
			if (is_json_number(s, len))
				dts_strbuf_append(out, s, len);
			else
				json_string(out, s, len);
			return;
		case BOOLOID:
			if (len == 1 && (s[0] == 't' || s[0] == 'f'))
				strbuf_puts(out, s[0] == 't' ? "true" : "false");
			else
				json_string(out, s, len);
			return;
		case JSONOID:
		case JSONBOID:
			if (len > 0)
			{
				json_embed(out, s, len);
				return;
			}
			break;
		default:
			break;
	}
	json_string(out, s, len);
}

static double
float_from_image(const uint8_t *p, int width)
{
	uint64_t	bits = 0;

	for (int i = 0; i < width; i++)
		bits = (bits << 8) | p[i];
	if (width == 4)
	{
		uint32_t	b32 = (uint32_t) bits;
		float		f;

		memcpy(&f, &b32, 4);
		return f;
	}
	else
	{
		double		d;

		memcpy(&d, &bits, 8);
		return d;
	}
}

/* A present value in one of the binary encodings (format 'binary'). */
static void
json_binary_value(DtsStrBuf *out, const DtsColumn *col, const DtsValue *v)
{
	uint8_t		scratch[8];
	const uint8_t *image;
	size_t		len;

	switch (v->encoding)
	{
		case DTS_ENC_INT2:
		case DTS_ENC_INT4:
		case DTS_ENC_INT8:
			if (col->typoid == INT2OID || col->typoid == INT4OID ||
				col->typoid == INT8OID)
			{
				json_int(out, v->ival);
				return;
			}
			break;
		case DTS_ENC_FLOAT4:
			if (v->bytes.len == 4)
			{
				json_double(out, float_from_image(v->bytes.data, 4), 9);
				return;
			}
			break;
		case DTS_ENC_FLOAT8:
			if (v->bytes.len == 8)
			{
				json_double(out, float_from_image(v->bytes.data, 8), 17);
				return;
			}
			break;
		case DTS_ENC_BYTE:
			if (col->typoid == BOOLOID && v->bytes.len == 1)
			{
				strbuf_puts(out, v->bytes.data[0] ? "true" : "false");
				return;
			}
			break;
		default:
			break;
	}
	len = dts_value_image(v, scratch, &image);
	json_hex(out, image, len);
}

/*
 * Appends "key":{column:value,...} for the columns of tuple in table
 * order; columns absent from a key-only tuple are left out.
 */
static void
json_tuple(DtsStrBuf *out, const char *key, const DtsRelation *rel,
		   const DtsTuple *tuple)
{
	bool		first = true;

	json_key(out, key);
	strbuf_putc(out, '{');
	for (int i = 0; i < tuple->ncols && i < rel->ncols; i++)
	{
		const DtsValue *v = &tuple->values[i];
		const DtsColumn *col = &rel->columns[i];

		if (v->status == DTS_VALUE_ABSENT)
			continue;
		if (!first)
			strbuf_putc(out, ',');
		first = false;
		json_cstring(out, col->name);
		strbuf_putc(out, ':');
		if (v->status == DTS_VALUE_NULL)
			strbuf_puts(out, "null");
		else if (v->status == DTS_VALUE_UNCHANGED)
			strbuf_puts(out, "{\"unchanged_toast\":true}");
		else if (v->encoding == DTS_ENC_TEXT)
			json_text_value(out, col->typoid, (const char *) v->bytes.data,
							v->bytes.len);
		else
			json_binary_value(out, col, v);
	}
	strbuf_putc(out, '}');
}

/* ----------------------------------------------------------------
 *		Objects
 * ----------------------------------------------------------------
 */

/* Appends v as exactly width digits. */
static void
put_digits(char *p, int64_t v, int width)
{
	while (width-- > 0)
	{
		p[width] = (char) ('0' + v % 10);
		v /= 10;
	}
}

/*
 * Microseconds since 2000-01-01 UTC as "2024-02-29T12:34:56.789012Z".
 * Per change, so no gmtime()/printf: the civil date comes from the day
 * number with the days-from-civil inverse (proleptic Gregorian calendar).
 */
static void
json_timestamp(DtsStrBuf *out, const char *key, int64_t pg_us)
{
	int64_t		unix_us = pg_us + DTS_PG_EPOCH_OFFSET_US;
	int64_t		days = unix_us / 86400000000LL;
	int64_t		us_of_day = unix_us % 86400000000LL;
	int64_t		z, era, doe, yoe, year, doy, mp, day, month;
	char		text[29];

	if (us_of_day < 0)
	{
		us_of_day += 86400000000LL;
		days--;
	}
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	day = doy - (153 * mp + 2) / 5 + 1;
	month = mp < 10 ? mp + 3 : mp - 9;
	year = yoe + era * 400 + (month <= 2);

	json_key(out, key);
	if (year < 0 || year > 9999)
	{
		strbuf_puts(out, "null");
		return;
	}
	memcpy(text, "\"0000-00-00T00:00:00.000000Z\"", 29);
	put_digits(text + 1, year, 4);
	put_digits(text + 6, month, 2);
	put_digits(text + 9, day, 2);
	put_digits(text + 12, us_of_day / 3600000000LL, 2);
	put_digits(text + 15, us_of_day / 60000000 % 60, 2);
	put_digits(text + 18, us_of_day / 1000000 % 60, 2);
	put_digits(text + 21, us_of_day % 1000000, 6);
	dts_strbuf_append(out, text, 29);
}

/* "kind", then the transaction's "lsn", "xid", "commit_time", "origin" */
static void
json_head(DtsStrBuf *out, const char *kind, const DtsTxn *txn)
{
	strbuf_putc(out, '{');
	json_key(out, "kind");
	json_cstring(out, kind);
	if (txn == NULL)
		return;
	json_lsn(out, "lsn", txn->commit_lsn);
	json_key(out, "xid");
	json_uint(out, txn->xid);
	json_timestamp(out, "commit_time", txn->commit_time);
	if (txn->origin)
	{
		json_key(out, "origin");
		json_cstring(out, txn->origin);
	}
}

static void
json_relation(DtsStrBuf *out, const DtsRelation *rel)
{
	bool		first = true;

	json_key(out, "schema");
	json_cstring(out, rel->schema);
	json_key(out, "table");
	json_cstring(out, rel->table);
	json_key(out, "key");
	strbuf_putc(out, '[');
	for (int i = 0; i < rel->ncols; i++)
	{
		if (!rel->columns[i].key)
			continue;
		if (!first)
			strbuf_putc(out, ',');
		first = false;
		json_cstring(out, rel->columns[i].name);
	}
	strbuf_putc(out, ']');
}

/* rel: the relation under its names at the sink (DtsChange.target) */
static void
json_row_change(DtsStrBuf *out, const DtsTxn *txn, const DtsFrame *f,
				const DtsRelation *rel)
{
	const char *kind = f->kind == DTS_FRAME_INSERT ? "insert" :
		f->kind == DTS_FRAME_UPDATE ? "update" : "delete";

	json_head(out, kind, txn);
	json_relation(out, rel);
	if (f->kind != DTS_FRAME_INSERT && f->old_kind != DTS_OLD_NONE)
		json_tuple(out, "old", rel, &f->old_tuple);
	if (f->kind != DTS_FRAME_DELETE)
		json_tuple(out, "new", rel, &f->new_tuple);
}

/* A heartbeat row: its columns at the top level, and the latency. */
static void
json_heartbeat(DtsStrBuf *out, const DtsTxn *txn, const DtsChange *c)
{
	static const char *const shown[] = {
		"slot_name", "task_name", "beat_lsn", "seq", NULL
	};
	const DtsFrame *f = c->frame;

	json_head(out, "heartbeat", txn);
	for (int i = 0; i < f->rel->ncols; i++)
	{
		const DtsValue *v = &f->new_tuple.values[i];
		const DtsColumn *col = &f->rel->columns[i];

		for (int k = 0; shown[k]; k++)
		{
			if (strcmp(col->name, shown[k]) != 0)
				continue;
			json_key(out, col->name);
			if (v->status == DTS_VALUE_PRESENT &&
				v->encoding == DTS_ENC_TEXT)
				json_text_value(out, col->typoid,
								(const char *) v->bytes.data, v->bytes.len);
			else if (v->status == DTS_VALUE_PRESENT)
				json_binary_value(out, col, v);
			else
				strbuf_puts(out, "null");
		}
	}
	if (c->beat_time != 0)
	{
		json_timestamp(out, "beat_time", c->beat_time);
		json_key(out, "latency_ms");
		dts_strbuf_appendf(out, "%.3f", c->latency_us / 1000.0);
	}
}

static void
json_truncate(DtsStrBuf *out, const DtsTxn *txn, const DtsChange *c)
{
	const DtsFrame *f = c->frame;

	json_head(out, "truncate", txn);
	json_key(out, "relations");
	strbuf_putc(out, '[');
	for (int i = 0; i < f->nrelids; i++)
	{
		const DtsRelation *rel = c->truncated ? c->truncated[i] : NULL;

		if (i > 0)
			strbuf_putc(out, ',');
		strbuf_putc(out, '{');
		if (rel)
		{
			json_key(out, "schema");
			json_cstring(out, rel->schema);
			json_key(out, "table");
			json_cstring(out, rel->table);
		}
		else
		{
			json_key(out, "relid");
			dts_strbuf_appendf(out, "%" PRIu32, f->relids[i]);
		}
		strbuf_putc(out, '}');
	}
	strbuf_putc(out, ']');
	json_key(out, "cascade");
	strbuf_puts(out, f->flags & DTS_TRUNCATE_CASCADE ? "true" : "false");
	json_key(out, "restart_identity");
	strbuf_puts(out, f->flags & DTS_TRUNCATE_RESTART_SEQS ? "true" : "false");
}

static void
json_message(DtsStrBuf *out, const DtsTxn *txn, const DtsFrame *f)
{
	json_head(out, "message", txn);
	if (txn == NULL)
		json_lsn(out, "lsn", f->lsn);
	else
		json_lsn(out, "message_lsn", f->lsn);
	json_key(out, "transactional");
	strbuf_puts(out, f->flags & DTS_MESSAGE_TRANSACTIONAL ? "true" : "false");
	json_key(out, "prefix");
	json_string(out, (const char *) f->prefix.data, f->prefix.len);
	if (valid_utf8(f->content.data, f->content.len))
	{
		json_key(out, "content");
		json_string(out, (const char *) f->content.data, f->content.len);
	}
	else
	{
		json_key(out, "content_base64");
		json_base64(out, f->content.data, f->content.len);
	}
}

void
dts_json_change(DtsStrBuf *out, const DtsTxn *txn, const DtsChange *change)
{
	const DtsFrame *f = change->frame;

	switch (f->kind)
	{
		case DTS_FRAME_INSERT:
		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
			if (change->heartbeat)
				json_heartbeat(out, txn, change);
			else
				json_row_change(out, txn, f, change->target ? change->target : f->rel);
			break;
		case DTS_FRAME_TRUNCATE:
			json_truncate(out, txn, change);
			break;
		case DTS_FRAME_MESSAGE:
			json_message(out, txn, f);
			break;
		default:
			/* the shipper hands sinks no other frames */
			json_head(out, "unknown", txn);
			break;
	}
	strbuf_putc(out, '}');
}

void
dts_json_begin(DtsStrBuf *out, const DtsTxn *txn)
{
	json_head(out, "begin", txn);
	strbuf_putc(out, '}');
}

void
dts_json_commit(DtsStrBuf *out, const DtsTxn *txn)
{
	json_head(out, "commit", txn);
	json_lsn(out, "end_lsn", txn->end_lsn);
	strbuf_putc(out, '}');
}

/* ----------------------------------------------------------------
 *		Timestamps
 * ----------------------------------------------------------------
 */

/* Reads n digits at *p into *v; advances *p. */
static bool
read_digits(const char **p, const char *end, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++)
	{
		if (*p >= end || **p < '0' || **p > '9')
			return false;
		*v = *v * 10 + (**p - '0');
	}
	return true;
}

static bool
expect_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

bool
dts_parse_pg_timestamptz(const char *text, size_t len, int64_t *result)
{
	const char *p = text;
	const char *end = text + len;
	struct tm	tm = {0};
	int			year, mon, day, hour, min, sec;
	int64_t		usec = 0;
	int			offset_s = 0;
	time_t		t;

	if (!read_digits(&p, end, 4, &year) || !expect_char(&p, end, '-') ||
		!read_digits(&p, end, 2, &mon) || !expect_char(&p, end, '-') ||
		!read_digits(&p, end, 2, &day) || !expect_char(&p, end, ' ') ||
		!read_digits(&p, end, 2, &hour) || !expect_char(&p, end, ':') ||
		!read_digits(&p, end, 2, &min) || !expect_char(&p, end, ':') ||
		!read_digits(&p, end, 2, &sec))
		return false;
	if (p < end && *p == '.')
	{
		int			scale = 100000;

		for (p++; p < end && *p >= '0' && *p <= '9'; p++, scale /= 10)
			usec += (*p - '0') * scale;
	}
	if (p < end && (*p == '+' || *p == '-'))
	{
		int			sign = *p++ == '-' ? -1 : 1;
		int			oh, om = 0, os = 0;

		if (!read_digits(&p, end, 2, &oh))
			return false;
		if (p < end && *p == ':' && (p++, !read_digits(&p, end, 2, &om)))
			return false;
		if (p < end && *p == ':' && (p++, !read_digits(&p, end, 2, &os)))
			return false;
		offset_s = sign * (oh * 3600 + om * 60 + os);
	}
	if (p != end)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*result = ((int64_t) t - offset_s) * 1000000 + usec -
		DTS_PG_EPOCH_OFFSET_US;
	return true;
}

/*-------------------------------------------------------------------------
 *
 * record.c
 *	  Helpers shared by the Kafka value formats: type classes, values as
 *	  PostgreSQL text, before/after images, times, LSNs and JSON strings.
 *
 * Nothing here allocates except DtsTextScratch.big and the DtsWriteBuf the
 * caller passes; nothing keeps state between calls.
 *
 * shipper/formats/record.c
 *
 *-------------------------------------------------------------------------
 */
#include "formats/record.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Built-in type OIDs (pg_type.dat); no server headers here. */
#define BOOLOID			16
#define BYTEAOID		17
#define CHAROID			18
#define NAMEOID			19
#define INT8OID			20
#define INT2OID			21
#define INT4OID			23
#define TEXTOID			25
#define OIDOID			26
#define JSONOID			114
#define XMLOID			142
#define POINTOID		600
#define LSEGOID			601
#define PATHOID			602
#define BOXOID			603
#define POLYGONOID		604
#define LINEOID			628
#define FLOAT4OID		700
#define FLOAT8OID		701
#define CIRCLEOID		718
#define CASHOID			790
#define BPCHAROID		1042
#define VARCHAROID		1043
#define DATEOID			1082
#define TIMEOID			1083
#define TIMESTAMPOID	1114
#define TIMESTAMPTZOID	1184
#define INTERVALOID		1186
#define TIMETZOID		1266
#define BITOID			1560
#define VARBITOID		1562
#define NUMERICOID		1700
#define UUIDOID			2950
#define JSONBOID		3802

/* java.sql.Types codes */
#define JT_BIT			(-7)
#define JT_TINYINT		(-6)
#define JT_SMALLINT		5
#define JT_INTEGER		4
#define JT_BIGINT		(-5)
#define JT_REAL			7
#define JT_DOUBLE		8
#define JT_NUMERIC		2
#define JT_CHAR			1
#define JT_VARCHAR		12
#define JT_BINARY		(-2)
#define JT_DATE			91
#define JT_TIME			92
#define JT_TIMESTAMP	93
#define JT_TIME_TZ		2013
#define JT_TIMESTAMP_TZ 2014
#define JT_SQLXML		2009
#define JT_OTHER		1111

void
dts_record_context_init(DtsRecordContext *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
}

/* ----------------------------------------------------------------
 *		Type classes
 * ----------------------------------------------------------------
 */

#define TI(cls, obj, name, jt, w) \
	{ DTS_TC_##cls, obj, name, jt, w }

static const DtsTypeInfo ti_int2 = TI(INTEGER, NULL, "int2", JT_SMALLINT, 2);
static const DtsTypeInfo ti_int4 = TI(INTEGER, NULL, "int4", JT_INTEGER, 4);
static const DtsTypeInfo ti_int8 = TI(INTEGER, NULL, "int8", JT_BIGINT, 8);
static const DtsTypeInfo ti_oid = TI(INTEGER, NULL, "oid", JT_BIGINT, 4);
static const DtsTypeInfo ti_text = TI(CHARACTER, NULL, "text", JT_VARCHAR, 0);
static const DtsTypeInfo ti_varchar = TI(CHARACTER, NULL, "varchar", JT_VARCHAR, 0);
static const DtsTypeInfo ti_bpchar = TI(CHARACTER, NULL, "bpchar", JT_CHAR, 0);
static const DtsTypeInfo ti_name = TI(CHARACTER, NULL, "name", JT_VARCHAR, 0);
static const DtsTypeInfo ti_char = TI(CHARACTER, NULL, "char", JT_CHAR, 0);
static const DtsTypeInfo ti_numeric = TI(DECIMAL, NULL, "numeric", JT_NUMERIC, 0);
static const DtsTypeInfo ti_float4 = TI(FLOAT, NULL, "float4", JT_REAL, 0);
static const DtsTypeInfo ti_float8 = TI(FLOAT, NULL, "float8", JT_DOUBLE, 0);
static const DtsTypeInfo ti_date = TI(DATE, NULL, "date", JT_DATE, 0);
static const DtsTypeInfo ti_time = TI(TIME, NULL, "time", JT_TIME, 0);
static const DtsTypeInfo ti_timestamp = TI(TIMESTAMP, NULL, "timestamp", JT_TIMESTAMP, 0);
static const DtsTypeInfo ti_timestamptz = TI(TIMESTAMPTZ, NULL, "timestamptz", JT_TIMESTAMP_TZ, 0);
static const DtsTypeInfo ti_timetz = TI(TIMETZ, NULL, "timetz", JT_TIME_TZ, 0);
static const DtsTypeInfo ti_bytea = TI(BYTEA, "BYTEA", "bytea", JT_BINARY, 0);
static const DtsTypeInfo ti_jsonb = TI(JSONB, "JSON", "jsonb", JT_OTHER, 0);
static const DtsTypeInfo ti_point = TI(GEOMETRY, "POINT", "point", JT_OTHER, 0);
static const DtsTypeInfo ti_lseg = TI(GEOMETRY, "LSEG", "lseg", JT_OTHER, 0);
static const DtsTypeInfo ti_path = TI(GEOMETRY, "PATH", "path", JT_OTHER, 0);
static const DtsTypeInfo ti_box = TI(GEOMETRY, "BOX", "box", JT_OTHER, 0);
static const DtsTypeInfo ti_polygon = TI(GEOMETRY, "POLYGON", "polygon", JT_OTHER, 0);
static const DtsTypeInfo ti_line = TI(GEOMETRY, "LINE", "line", JT_OTHER, 0);
static const DtsTypeInfo ti_circle = TI(GEOMETRY, "CIRCLE", "circle", JT_OTHER, 0);
static const DtsTypeInfo ti_bool = TI(TEXT_OBJECT, "BOOL", "bool", JT_BIT, 0);
static const DtsTypeInfo ti_json = TI(TEXT_OBJECT, "JSON", "json", JT_OTHER, 0);
static const DtsTypeInfo ti_xml = TI(TEXT_OBJECT, "XML", "xml", JT_SQLXML, 0);
static const DtsTypeInfo ti_uuid = TI(TEXT_OBJECT, "UUID", "uuid", JT_OTHER, 0);
static const DtsTypeInfo ti_money = TI(TEXT_OBJECT, "TEXT", "money", JT_DOUBLE, 0);
static const DtsTypeInfo ti_interval = TI(TEXT_OBJECT, "TEXT", "interval", JT_OTHER, 0);
static const DtsTypeInfo ti_bit = TI(TEXT_OBJECT, "TEXT", "bit", JT_BIT, 0);
static const DtsTypeInfo ti_varbit = TI(TEXT_OBJECT, "TEXT", "varbit", JT_OTHER, 0);
static const DtsTypeInfo ti_other = TI(TEXT_OBJECT, "TEXT", NULL, JT_OTHER, 0);

const DtsTypeInfo *
dts_kfmt_type_info(uint32_t typoid)
{
	switch (typoid)
	{
		case INT2OID:
			return &ti_int2;
		case INT4OID:
			return &ti_int4;
		case INT8OID:
			return &ti_int8;
		case OIDOID:
			return &ti_oid;
		case TEXTOID:
			return &ti_text;
		case VARCHAROID:
			return &ti_varchar;
		case BPCHAROID:
			return &ti_bpchar;
		case NAMEOID:
			return &ti_name;
		case CHAROID:
			return &ti_char;
		case NUMERICOID:
			return &ti_numeric;
		case FLOAT4OID:
			return &ti_float4;
		case FLOAT8OID:
			return &ti_float8;
		case DATEOID:
			return &ti_date;
		case TIMEOID:
			return &ti_time;
		case TIMESTAMPOID:
			return &ti_timestamp;
		case TIMESTAMPTZOID:
			return &ti_timestamptz;
		case TIMETZOID:
			return &ti_timetz;
		case BYTEAOID:
			return &ti_bytea;
		case JSONBOID:
			return &ti_jsonb;
		case POINTOID:
			return &ti_point;
		case LSEGOID:
			return &ti_lseg;
		case PATHOID:
			return &ti_path;
		case BOXOID:
			return &ti_box;
		case POLYGONOID:
			return &ti_polygon;
		case LINEOID:
			return &ti_line;
		case CIRCLEOID:
			return &ti_circle;
		case BOOLOID:
			return &ti_bool;
		case JSONOID:
			return &ti_json;
		case XMLOID:
			return &ti_xml;
		case UUIDOID:
			return &ti_uuid;
		case CASHOID:
			return &ti_money;
		case INTERVALOID:
			return &ti_interval;
		case BITOID:
			return &ti_bit;
		case VARBITOID:
			return &ti_varbit;
		default:
			return &ti_other;
	}
}

bool
dts_kfmt_numeric_typmod(int32_t typmod, int *precision, int *scale)
{
	int32_t		tm;

	if (typmod < 4)				/* VARHDRSZ: no typmod */
		return false;
	tm = typmod - 4;
	*precision = (tm >> 16) & 0xFFFF;
	/* PostgreSQL 15 stores the scale in 11 bits, sign-extended */
	*scale = ((tm & 0x7FF) ^ 1024) - 1024;
	return true;
}

void
dts_kfmt_type_text(const DtsColumn *col, char *buf, size_t size)
{
	const DtsTypeInfo *ti = dts_kfmt_type_info(col->typoid);
	int			p,
				s;

	if (ti->pg_name == NULL)
	{
		snprintf(buf, size, "%" PRIu32, col->typoid);
		return;
	}
	switch (col->typoid)
	{
		case NUMERICOID:
			if (dts_kfmt_numeric_typmod(col->typmod, &p, &s))
			{
				snprintf(buf, size, "numeric(%d,%d)", p, s);
				return;
			}
			break;
		case VARCHAROID:
		case BPCHAROID:
			if (col->typmod >= 4)
			{
				snprintf(buf, size, "%s(%d)", ti->pg_name, (int) (col->typmod - 4));
				return;
			}
			break;
		case BITOID:
		case VARBITOID:
			if (col->typmod >= 0)
			{
				snprintf(buf, size, "%s(%d)", ti->pg_name, (int) col->typmod);
				return;
			}
			break;
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			if (col->typmod >= 0)
			{
				snprintf(buf, size, "%s(%d)", ti->pg_name, (int) col->typmod);
				return;
			}
			break;
		default:
			break;
	}
	snprintf(buf, size, "%s", ti->pg_name);
}

/* ----------------------------------------------------------------
 *		Values as text
 * ----------------------------------------------------------------
 */

void
dts_text_scratch_free(DtsTextScratch *s)
{
	free(s->big);
	s->big = NULL;
	s->bigcap = 0;
}

static char *
scratch_big(DtsTextScratch *s, size_t need)
{
	if (s->bigcap < need)
	{
		size_t		cap = s->bigcap < 256 ? 256 : s->bigcap;
		char	   *p;

		while (cap < need)
			cap *= 2;
		p = realloc(s->big, cap);
		if (p == NULL)
			abort();
		s->big = p;
		s->bigcap = cap;
	}
	return s->big;
}

static uint64_t
be_uint(const uint8_t *p, int width)
{
	uint64_t	v = 0;

	for (int i = 0; i < width; i++)
		v = (v << 8) | p[i];
	return v;
}

static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";
static const char hex_lower[] = "0123456789abcdef";

/*
 * Decimal digits without printf: these run for every value of every change,
 * and one snprintf() costs more than the rest of a value's rendering.
 * put_digits writes v with at least min_width digits (zeros in front), no
 * NUL, and returns the length.
 */
static int
put_digits(char *p, uint64_t v, int min_width)
{
	char		tmp[20];
	int			n = 20,
				len;
	uint32_t	w;

	/* two digits a step, with 32-bit divisions once v fits */
	while (v >= UINT64_C(100000000))
	{
		n -= 2;
		memcpy(tmp + n, digit_pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	for (w = (uint32_t) v; w >= 100; w /= 100)
	{
		n -= 2;
		memcpy(tmp + n, digit_pairs + 2 * (w % 100), 2);
	}
	if (w >= 10)
	{
		n -= 2;
		memcpy(tmp + n, digit_pairs + 2 * w, 2);
	}
	else
		tmp[--n] = (char) ('0' + w);
	len = 20 - n < min_width ? min_width : 20 - n;
	memset(p, '0', (size_t) (len - (20 - n)));
	memcpy(p + len - (20 - n), tmp + n, (size_t) (20 - n));
	return len;
}

/* The commonest case, a two-digit field of a date or time (a month, an hour) */
static inline int
put_2digits(char *p, uint64_t v)
{
	if (v >= 100)
		return put_digits(p, v, 2);
	memcpy(p, digit_pairs + 2 * v, 2);
	return 2;
}

int
dts_kfmt_u64_text(uint64_t v, char *buf)
{
	return put_digits(buf, v, 1);
}

int
dts_kfmt_i64_text(int64_t v, char *buf)
{
	if (v >= 0)
		return put_digits(buf, (uint64_t) v, 1);
	buf[0] = '-';
	return 1 + put_digits(buf + 1, (uint64_t) 0 - (uint64_t) v, 1);
}

/* Appends the NUL-terminated s at out + n; returns the new length. */
static int
put_str(char *out, int n, const char *s)
{
	size_t		len = strlen(s);

	memcpy(out + n, s, len + 1);
	return n + (int) len;
}

/* PostgreSQL's j2date(): Julian day to proleptic Gregorian date. */
static void
j2date(int64_t jd, int *year, int *month, int *day)
{
	uint64_t	julian = (uint64_t) jd + 32044;
	uint64_t	quad = julian / 146097;
	uint64_t	extra = (julian - quad * 146097) * 4 + 3;
	int64_t		y;

	julian += 60 + quad * 3 + extra / 146097;
	quad = julian / 1461;
	julian -= quad * 1461;
	y = julian * 4 / 1461;
	julian = ((y != 0) ? ((julian + 305) % 365) : ((julian + 306) % 366)) + 123;
	y += quad * 4;
	*year = (int) (y - 4800);
	quad = julian * 2141 / 65536;
	*day = (int) (julian - 7834 * quad / 256);
	*month = (int) ((quad + 10) % 12 + 1);
}

#define POSTGRES_EPOCH_JDATE	2451545
#define USECS_PER_DAY			INT64_C(86400000000)

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/*
 * "HH:MM:SS[.ffffff]" with trailing fraction zeros dropped, as PostgreSQL,
 * NUL-terminated (16 bytes at most); returns the length
 */
static int
format_time_of_day(char *out, int64_t usecs)
{
	int			frac = (int) (usecs % 1000000);
	int			n;

	n = put_2digits(out, (uint64_t) (usecs / INT64_C(3600000000)));
	out[n++] = ':';
	n += put_2digits(out + n, (uint64_t) (usecs / 60000000 % 60));
	out[n++] = ':';
	n += put_2digits(out + n, (uint64_t) (usecs / 1000000 % 60));
	if (frac != 0)
	{
		int			flen = 6;

		out[n++] = '.';
		put_digits(out + n, (uint64_t) frac, 6);
		while (out[n + flen - 1] == '0')
			flen--;
		n += flen;
	}
	out[n] = '\0';
	return n;
}

/*
 * "YYYY-MM-DD" of a day number since 2000-01-01, NUL-terminated, with
 * " BC" left to the caller (*bc); returns the length
 */
static int
format_date(char *out, int64_t days, bool *bc)
{
	int			y,
				m,
				d,
				n;

	j2date(days + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	*bc = (y <= 0);
	if (*bc)
		y = 1 - y;
	n = put_digits(out, (uint64_t) y, 4);
	out[n++] = '-';
	n += put_2digits(out + n, (uint64_t) m);
	out[n++] = '-';
	n += put_2digits(out + n, (uint64_t) d);
	out[n] = '\0';
	return n;
}

static void
format_timestamp(char *out, int64_t us, bool tz)
{
	int64_t		days;
	bool		bc;
	int			n;

	if (us == INT64_MAX || us == INT64_MIN)
	{
		put_str(out, 0, us == INT64_MAX ? "infinity" : "-infinity");
		return;
	}
	days = floor_div(us, USECS_PER_DAY);
	n = format_date(out, days, &bc);
	out[n++] = ' ';
	n += format_time_of_day(out + n, us - days * USECS_PER_DAY);
	if (tz)
		n = put_str(out, n, "+00");
	if (bc)
		put_str(out, n, " BC");
}

/*
 * The digits of a "%e" text (d.ddde+XX, optionally signed), without its
 * sign and point, into digits (at most cap); trim drops trailing zeros
 * (keeping one digit).  Returns their number and sets *exp.
 */
static int
e_text_digits(const char *e, char *digits, int cap, bool trim, int *exp)
{
	const char *x = strchr(e, 'e');
	int			nd = 0;

	for (const char *p = e; p < x && nd < cap; p++)
		if (*p != '.' && *p != '-')
			digits[nd++] = *p;
	while (trim && nd > 1 && digits[nd - 1] == '0')
		nd--;
	*exp = atoi(x + 1);
	return nd;
}

/* Two "%e" texts of the same sign for the same decimal number? */
static bool
same_decimal(const char *a, const char *b)
{
	char		da[900],
				db[900];
	int			xa,
				xb;
	int			na = e_text_digits(a, da, sizeof(da), true, &xa);
	int			nb = e_text_digits(b, db, sizeof(db), true, &xb);

	return xa == xb && na == nb && memcmp(da, db, na) == 0;
}

/* The bits of d as a float4 (widened) or a float8, and back */
static uint64_t
float_bits(double d, bool is_float4)
{
	uint64_t	bits;

	if (is_float4)
	{
		float		f = (float) d;
		uint32_t	b32;

		memcpy(&b32, &f, sizeof(b32));
		return b32;
	}
	memcpy(&bits, &d, sizeof(bits));
	return bits;
}

static double
float_from_bits(uint64_t bits, bool is_float4)
{
	double		d;

	if (is_float4)
	{
		uint32_t	b32 = (uint32_t) bits;
		float		f;

		memcpy(&f, &b32, sizeof(f));
		return f;
	}
	memcpy(&d, &bits, sizeof(d));
	return d;
}

#if LDBL_MANT_DIG < 54
#error "float_text_on_bound needs a long double that holds a double's midpoints (54 bits)"
#endif

/*
 * Is the text exactly halfway between d and its neighbour (the next float4
 * or float8 on the text's side)?  float4out and float8out never write such
 * a text, even where reading it back rounds to d: PostgreSQL's f2s.c and
 * d2s.c do not accept the bounds of the interval that reads back (their
 * acceptBounds is false unless built STRICTLY_SHORTEST), so
 * 52990648348713776 is written 5.2990648348713776e+16 and not
 * 5.299064834871378e+16.  The midpoint has one significant bit more than
 * the type, so a long double holds it exactly and "%.800Le" prints all of
 * its digits; reading the text as a long double only sorts out the texts
 * that cannot be it.
 */
static bool
float_text_on_bound(const char *text, double d, bool is_float4)
{
	long double c = strtold(text, NULL);
	double		neighbour;
	long double mid;
	char		exact[900];

	if (c == (long double) d)
		return false;
	/* d is not zero: one step of its bits moves away from zero or towards it */
	neighbour = float_from_bits(float_bits(d, is_float4) +
								((c > d) == (d > 0) ? 1 : -1), is_float4);
	mid = ((long double) d + neighbour) / 2;
	if (c != mid)
		return false;
	snprintf(exact, sizeof(exact), "%.800Le", mid);
	return same_decimal(text, exact);
}

/* Does the text read back as d, and would float4out/float8out write it? */
static bool
float_reads_back(const char *text, double d, bool is_float4)
{
	if (is_float4 ? strtof(text, NULL) != (float) d : strtod(text, NULL) != d)
		return false;
	return !float_text_on_bound(text, d, is_float4);
}

/*
 * The "%.*e" text e (d.ddde+XX, optionally signed, not zero) with its last
 * digit one up (dir > 0) or one down, carrying into the exponent, in as
 * many digits: 9.99e+05 one up is 1.00e+06, 1.00e+05 one down 9.99e+04.
 */
static void
step_last_digit(const char *e, int dir, char *out, size_t size)
{
	char		m[32];
	int			exp;
	int			nm = e_text_digits(e, m, sizeof(m), false, &exp);
	int			i;
	int			n = 0;

	for (i = nm - 1; i >= 0 && m[i] == (dir > 0 ? '9' : '0'); i--)
		m[i] = dir > 0 ? '0' : '9';
	if (i < 0)
	{
		m[0] = '1';				/* only one up gets here: 9.99 to 1.00 */
		exp++;
	}
	else
		m[i] += dir > 0 ? 1 : -1;
	if (m[0] == '0')
	{
		memmove(m, m + 1, nm - 1);	/* 1.00e+XX one down is 9.99e+(XX-1) */
		m[nm - 1] = '9';
		exp--;
	}
	if (e[0] == '-')
		out[n++] = '-';
	out[n++] = m[0];
	if (nm > 1)
	{
		out[n++] = '.';
		memcpy(out + n, m + 1, nm - 1);
		n += nm - 1;
	}
	snprintf(out + n, size - n, "e%+03d", exp);
}

/*
 * The shortest "%.*e" text that reads back to d, and of those the closest
 * to d, as Ryu chooses (src/common/d2s.c, f2s.c).  At each length the
 * correctly rounded digits are the closest, so where the values that read
 * back to d lie evenly around it they are the ones to try.  At a power of
 * two the values below are half as far apart as those above, and the
 * interval that reads back is lopsided: the correctly rounded digits may
 * fall out of it on the narrow side while their neighbour one unit up
 * still reads back (2^-24 is 5.960464477539063e-08, not ...0625e-08).
 */
static void
shortest_float_digits(char *e, size_t size, double d, bool is_float4)
{
	/* a power of two: the significand's stored bits are all zero */
	bool		lopsided = (float_bits(d, is_float4) &
							(is_float4 ? 0x7fffff : UINT64_C(0xfffffffffffff))) == 0;
	char		neighbour[48];

	for (int prec = 0; prec < (is_float4 ? 9 : 17); prec++)
	{
		snprintf(e, size, "%.*e", prec, d);
		if (float_reads_back(e, d, is_float4))
			return;
		if (!lopsided)
			continue;
		for (int dir = 1; dir >= -1; dir -= 2)
		{
			step_last_digit(e, dir, neighbour, sizeof(neighbour));
			if (float_reads_back(neighbour, d, is_float4))
			{
				snprintf(e, size, "%s", neighbour);
				return;
			}
		}
	}
	snprintf(e, size, "%.*e", is_float4 ? 8 : 16, d);
}

/*
 * A float's text as PostgreSQL's float4out/float8out write it with
 * extra_float_digits > 0 (the shipper's sessions use 3, the default is 1;
 * both give the same text): the shortest digits that read back to the
 * same value, in fixed notation for decimal exponents from -4 up to 5
 * (float4) or 14 (float8), else as d.ddde+XX (src/common/f2s.c, d2s.c).
 */
static void
format_float(char *out, size_t size, double d, bool is_float4)
{
	char		e[48];
	char		digits[24];
	int			nd;
	int			exp;
	int			n = 0;

	if (isnan(d))
	{
		snprintf(out, size, "NaN");
		return;
	}
	if (isinf(d))
	{
		snprintf(out, size, "%s", d > 0 ? "Infinity" : "-Infinity");
		return;
	}
	if (d == 0)
	{
		snprintf(out, size, "%s", signbit(d) ? "-0" : "0");
		return;
	}
	shortest_float_digits(e, sizeof(e), d, is_float4);
	if (e[0] == '-')
		out[n++] = '-';
	nd = e_text_digits(e, digits, sizeof(digits), true, &exp);
	if (exp >= -4 && exp < (is_float4 ? 6 : 15))
	{
		if (exp < 0)
		{
			out[n++] = '0';
			out[n++] = '.';
			for (int i = -1; i > exp; i--)
				out[n++] = '0';
			memcpy(out + n, digits, nd);
			n += nd;
		}
		else
		{
			for (int i = 0; i <= exp; i++)
				out[n++] = i < nd ? digits[i] : '0';
			if (nd > exp + 1)
			{
				out[n++] = '.';
				memcpy(out + n, digits + exp + 1, nd - exp - 1);
				n += nd - exp - 1;
			}
		}
		out[n] = '\0';
		return;
	}
	out[n++] = digits[0];
	if (nd > 1)
	{
		out[n++] = '.';
		memcpy(out + n, digits + 1, nd - 1);
		n += nd - 1;
	}
	snprintf(out + n, size - n, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

/* numeric_send image to text (PostgreSQL's get_str_from_var) */
static bool
format_numeric(const uint8_t *img, size_t len, DtsTextScratch *scratch,
			   const char **text, size_t *tlen)
{
	int			ndigits,
				weight,
				sign,
				dscale;
	char	   *out,
			   *p;
	int			d;

	if (len < 8)
		return false;
	ndigits = (int16_t) be_uint(img, 2);
	weight = (int16_t) be_uint(img + 2, 2);
	sign = (int) be_uint(img + 4, 2);
	dscale = (int16_t) be_uint(img + 6, 2);
	if (ndigits < 0 || dscale < 0 || len != 8 + (size_t) ndigits * 2)
		return false;
	switch (sign)
	{
		case 0xC000:
			*text = "NaN";
			*tlen = 3;
			return true;
		case 0xD000:
			*text = "Infinity";
			*tlen = 8;
			return true;
		case 0xF000:
			*text = "-Infinity";
			*tlen = 9;
			return true;
		case 0x0000:
		case 0x4000:
			break;
		default:
			return false;
	}
	out = scratch_big(scratch, (size_t) (weight < 0 ? 1 : weight + 1) * 4 + dscale + 8);
	p = out;
	if (sign == 0x4000)
		*p++ = '-';
	if (weight < 0)
		*p++ = '0';
	else
	{
		for (d = 0; d <= weight; d++)
		{
			int			dig = (d < ndigits) ? (int) be_uint(img + 8 + d * 2, 2) : 0;

			p += put_digits(p, (uint64_t) dig, d == 0 ? 1 : 4);
		}
	}
	if (dscale > 0)
	{
		char	   *fracstart;

		*p++ = '.';
		fracstart = p;
		for (int i = 0; p - fracstart < dscale; i++)
		{
			int			idx = weight + 1 + i;
			int			dig = (idx >= 0 && idx < ndigits) ? (int) be_uint(img + 8 + idx * 2, 2) : 0;

			p += put_digits(p, (uint64_t) dig, 4);
		}
		p = fracstart + dscale;
	}
	*text = out;
	*tlen = p - out;
	return true;
}

bool
dts_kfmt_value_text(const DtsColumn *col, const DtsValue *value,
					DtsTextScratch *scratch, const char **text, size_t *len,
					char *err)
{
	uint8_t		fixed[8];
	const uint8_t *img;
	size_t		ilen;
	char	   *out = scratch->buf;
	size_t		osz = sizeof(scratch->buf);

	if (value->encoding == DTS_ENC_TEXT)
	{
		*text = (const char *) value->bytes.data;
		*len = value->bytes.len;
		return true;
	}

	ilen = dts_value_image(value, fixed, &img);
	switch (col->typoid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			if (ilen != 2 && ilen != 4 && ilen != 8)
				goto bad;
			{
				uint64_t	u = be_uint(img, (int) ilen);
				int64_t		v = (ilen == 8) ? (int64_t) u :
					(ilen == 4) ? (int64_t) (int32_t) u : (int64_t) (int16_t) u;

				*len = (size_t) dts_kfmt_i64_text(v, out);
			}
			*text = out;
			return true;
		case OIDOID:
			if (ilen != 4)
				goto bad;
			*len = (size_t) dts_kfmt_u64_text(be_uint(img, 4), out);
			*text = out;
			return true;
		case FLOAT4OID:
		case FLOAT8OID:
			if (ilen == 4)
			{
				uint32_t	u = (uint32_t) be_uint(img, 4);
				float		f;

				memcpy(&f, &u, 4);
				format_float(out, osz, f, true);
			}
			else if (ilen == 8)
			{
				uint64_t	u = be_uint(img, 8);
				double		d;

				memcpy(&d, &u, 8);
				format_float(out, osz, d, false);
			}
			else
				goto bad;
			break;
		case BOOLOID:
			if (ilen != 1)
				goto bad;
			put_str(out, 0, img[0] ? "t" : "f");
			break;
		case CHAROID:
			if (ilen != 1)
				goto bad;
			/* charout(): the byte, octal escaped when its high bit is set */
			if (img[0] == 0)
				out[0] = '\0';
			else if (img[0] & 0x80)
				snprintf(out, osz, "\\%03o", img[0]);
			else
				snprintf(out, osz, "%c", img[0]);
			break;
		case DATEOID:
			if (ilen != 4)
				goto bad;
			{
				int32_t		days = (int32_t) be_uint(img, 4);
				bool		bc;
				int			n;

				if (days == INT32_MAX || days == INT32_MIN)
					put_str(out, 0, days == INT32_MAX ? "infinity" : "-infinity");
				else
				{
					n = format_date(out, days, &bc);
					if (bc)
						put_str(out, n, " BC");
				}
			}
			break;
		case TIMEOID:
			if (ilen != 8)
				goto bad;
			format_time_of_day(out, (int64_t) be_uint(img, 8));
			break;
		case TIMETZOID:
			if (ilen != 12)
				goto bad;
			{
				/* zone: seconds WEST of UTC, so the printed offset is -zone */
				int32_t		zone = (int32_t) be_uint(img + 8, 4);
				int32_t		off = -zone;
				int			aoff = off < 0 ? -off : off;
				int			n = format_time_of_day(out, (int64_t) be_uint(img, 8));

				out[n++] = off < 0 ? '-' : '+';
				n += put_2digits(out + n, (uint64_t) (aoff / 3600));
				if (aoff % 3600 != 0)
				{
					out[n++] = ':';
					n += put_2digits(out + n, (uint64_t) (aoff / 60 % 60));
				}
				if (aoff % 60 != 0)
				{
					out[n++] = ':';
					n += put_2digits(out + n, (uint64_t) (aoff % 60));
				}
				out[n] = '\0';
			}
			break;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			if (ilen != 8)
				goto bad;
			format_timestamp(out, (int64_t) be_uint(img, 8),
							 col->typoid == TIMESTAMPTZOID);
			break;
		case CASHOID:
			if (ilen != 8)
				goto bad;
			{
				/* cents; locale formatting is not known here */
				int64_t		c = (int64_t) be_uint(img, 8);
				uint64_t	a = c < 0 ? (uint64_t) 0 - (uint64_t) c : (uint64_t) c;

				snprintf(out, osz, "%s%" PRIu64 ".%02" PRIu64, c < 0 ? "-" : "",
						 a / 100, a % 100);
			}
			break;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case JSONOID:
		case XMLOID:
			*text = (const char *) img;
			*len = ilen;
			return true;
		case JSONBOID:
			if (ilen < 1 || img[0] != 1)
				goto bad;
			*text = (const char *) img + 1;
			*len = ilen - 1;
			return true;
		case BYTEAOID:
			{
				char	   *p = scratch_big(scratch, ilen * 2 + 3);

				*text = p;
				*p++ = '\\';
				*p++ = 'x';
				for (size_t i = 0; i < ilen; i++)
				{
					*p++ = hex_lower[img[i] >> 4];
					*p++ = hex_lower[img[i] & 15];
				}
				*len = p - *text;
				return true;
			}
		case UUIDOID:
			if (ilen != 16)
				goto bad;
			{
				int			n = 0;

				for (int i = 0; i < 16; i++)
				{
					if (i == 4 || i == 6 || i == 8 || i == 10)
						out[n++] = '-';
					out[n++] = hex_lower[img[i] >> 4];
					out[n++] = hex_lower[img[i] & 15];
				}
				*text = out;
				*len = (size_t) n;
				return true;
			}
			break;
		case NUMERICOID:
			if (!format_numeric(img, ilen, scratch, text, len))
				goto bad;
			return true;
		default:
			/* a domain or other type: go by the encoding alone */
			switch (value->encoding)
			{
				case DTS_ENC_INT2:
				case DTS_ENC_INT4:
				case DTS_ENC_INT8:
					*text = out;
					*len = (size_t) dts_kfmt_i64_text(value->ival, out);
					return true;
				case DTS_ENC_FLOAT4:
				case DTS_ENC_FLOAT8:
					{
						DtsColumn	c = *col;

						c.typoid = value->encoding == DTS_ENC_FLOAT4 ? FLOAT4OID : FLOAT8OID;
						return dts_kfmt_value_text(&c, value, scratch, text, len, err);
					}
				case DTS_ENC_BYTE:
					if (ilen != 1)
						goto bad;
					put_str(out, 0, img[0] ? "t" : "f");
					break;
				default:
					snprintf(err, 256, "column \"%s\": binary values of type OID %" PRIu32
							 " cannot be rendered as text; use the text format",
							 col->name, col->typoid);
					return false;
			}
			break;
	}
	*text = out;
	*len = strlen(out);
	return true;

bad:
	snprintf(err, 256, "column \"%s\": malformed %c value of type OID %" PRIu32
			 " (%zu bytes)", col->name, value->encoding, col->typoid, ilen);
	return false;
}

const DtsValue *
dts_kfmt_before_value(const DtsFrame *change, int col)
{
	const DtsValue *v = NULL;

	if (change->old_kind != DTS_OLD_NONE && col < change->old_tuple.ncols)
		v = &change->old_tuple.values[col];
	if (v != NULL && v->status != DTS_VALUE_ABSENT)
		return v;
	/* UPDATE without the old key: the key did not change */
	if (change->kind == DTS_FRAME_UPDATE && change->rel->columns[col].key &&
		col < change->new_tuple.ncols &&
		change->new_tuple.values[col].status != DTS_VALUE_UNCHANGED)
		return &change->new_tuple.values[col];
	return NULL;
}

const DtsValue *
dts_kfmt_after_value(const DtsFrame *change, int col)
{
	const DtsValue *v;

	if (col >= change->new_tuple.ncols)
		return NULL;
	v = &change->new_tuple.values[col];
	if (v->status != DTS_VALUE_UNCHANGED)
		return v;
	if (change->kind == DTS_FRAME_UPDATE && change->old_kind == DTS_OLD_FULL &&
		col < change->old_tuple.ncols &&
		change->old_tuple.values[col].status == DTS_VALUE_PRESENT)
		return &change->old_tuple.values[col];
	return NULL;
}

bool
dts_kfmt_json_value(DtsWriteBuf *buf, const DtsColumn *col, const DtsValue *v,
					DtsTextScratch *scratch, char *err)
{
	const char *text;
	size_t		len;

	if (v->status == DTS_VALUE_NULL)
	{
		dts_put_raw(buf, "null", 4);
		return true;
	}
	if (!dts_kfmt_value_text(col, v, scratch, &text, &len, err))
		return false;
	dts_kfmt_json_string(buf, text, len);
	return true;
}

bool
dts_kfmt_values_equal(const DtsColumn *col, const DtsValue *a,
					  const DtsValue *b, DtsTextScratch *sa,
					  DtsTextScratch *sb, bool *equal, char *err)
{
	const char *ta,
			   *tb;
	size_t		la,
				lb;

	if (a->status == DTS_VALUE_NULL || b->status == DTS_VALUE_NULL)
	{
		*equal = (a->status == b->status);
		return true;
	}
	if (!dts_kfmt_value_text(col, a, sa, &ta, &la, err) ||
		!dts_kfmt_value_text(col, b, sb, &tb, &lb, err))
		return false;
	*equal = (la == lb && (la == 0 || memcmp(ta, tb, la) == 0));
	return true;
}

/* ----------------------------------------------------------------
 *		Times and positions
 * ----------------------------------------------------------------
 */

int64_t
dts_kfmt_unix_secs(int64_t pg_us)
{
	return floor_div(pg_us, 1000000) + DTS_PG_EPOCH_UNIX_SECS;
}

int64_t
dts_kfmt_unix_ms(int64_t pg_us)
{
	return floor_div(pg_us, 1000) + DTS_PG_EPOCH_UNIX_SECS * 1000;
}

int
dts_kfmt_lsn_text(uint64_t lsn, char *buf)
{
	static const char hex[] = "0123456789ABCDEF";
	int			n = 0;

	for (int half = 0; half < 2; half++)
	{
		uint32_t	v = (uint32_t) (half == 0 ? lsn >> 32 : lsn);
		int			shift = 28;

		if (half == 1)
			buf[n++] = '/';
		while (shift > 0 && (v >> shift) == 0)
			shift -= 4;
		for (; shift >= 0; shift -= 4)
			buf[n++] = hex[(v >> shift) & 0xF];
	}
	buf[n] = '\0';
	return n;
}

/* UNIX times of years 1000 to 9999, the four-digit years */
#define UNIX_SECS_YEAR_1000		INT64_C(-30610224000)
#define UNIX_SECS_YEAR_10000	INT64_C(253402300800)

int
dts_kfmt_iso_utc(int64_t unix_secs, char *buf)
{
	int64_t		secs = unix_secs - DTS_PG_EPOCH_UNIX_SECS;
	int64_t		days = floor_div(secs, 86400);
	bool		bc;
	int			n;

	/*
	 * Per record, so no gmtime_r() and strftime() but in years of other
	 * than four digits, which strftime's %Y writes unpadded
	 */
	if (unix_secs < UNIX_SECS_YEAR_1000 || unix_secs >= UNIX_SECS_YEAR_10000)
	{
		time_t		t = (time_t) unix_secs;
		struct tm	tm;

		if (gmtime_r(&t, &tm) == NULL)
			return put_str(buf, 0, "1970-01-01T00:00:00");
		return (int) strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	}
	n = format_date(buf, days, &bc);
	buf[n++] = 'T';
	return n + format_time_of_day(buf + n, (secs - days * 86400) * 1000000);
}

/* ----------------------------------------------------------------
 *		Output helpers
 * ----------------------------------------------------------------
 */

static void *
xrealloc(void *p, size_t n)
{
	void	   *r = realloc(p, n);

	if (r == NULL)
	{
		fprintf(stderr, "pg_dts_ship: out of memory\n");
		abort();
	}
	return r;
}

void
dts_kfmt_buf_init(DtsWriteBuf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->realloc_fn = xrealloc;
}

void
dts_kfmt_buf_free(DtsWriteBuf *buf)
{
	free(buf->data);
	dts_kfmt_buf_init(buf);
}

void
dts_kfmt_put_str(DtsWriteBuf *buf, const char *s)
{
	dts_put_raw(buf, s, strlen(s));
}

void
dts_kfmt_put_int(DtsWriteBuf *buf, int64_t v)
{
	char		digits[24];

	dts_put_raw(buf, digits, (size_t) dts_kfmt_i64_text(v, digits));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static int
utf8_seq_len(const uint8_t *s, size_t avail)
{
	uint8_t		c = s[0];
	int			n;
	uint8_t		lo = 0x80,
				hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	}
	else
		return 0;
	if ((size_t) n > avail)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

void
dts_kfmt_json_escape(DtsWriteBuf *buf, const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *) s;
	size_t		i = 0,
				run = 0;

	while (i < len)
	{
		uint8_t		c = p[i];
		int			n;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80)
		{
			i++;
			run++;
			continue;
		}
		if (c >= 0x80 && (n = utf8_seq_len(p + i, len - i)) > 0)
		{
			i += n;
			run += n;
			continue;
		}
		dts_put_raw(buf, p + i - run, run);
		run = 0;
		switch (c)
		{
			case '"':
				dts_put_raw(buf, "\\\"", 2);
				break;
			case '\\':
				dts_put_raw(buf, "\\\\", 2);
				break;
			case '\n':
				dts_put_raw(buf, "\\n", 2);
				break;
			case '\r':
				dts_put_raw(buf, "\\r", 2);
				break;
			case '\t':
				dts_put_raw(buf, "\\t", 2);
				break;
			case '\b':
				dts_put_raw(buf, "\\b", 2);
				break;
			case '\f':
				dts_put_raw(buf, "\\f", 2);
				break;
			default:
				if (c < 0x20)
				{
					char		u[6] = {'\\', 'u', '0', '0', hex_lower[c >> 4], hex_lower[c & 15]};

					dts_put_raw(buf, u, 6);
				}
				else
					dts_put_raw(buf, "\\ufffd", 6);	/* invalid UTF-8 byte */
				break;
		}
		i++;
	}
	dts_put_raw(buf, p + i - run, run);
}

void
dts_kfmt_json_string(DtsWriteBuf *buf, const char *s, size_t len)
{
	dts_put_byte(buf, '"');
	dts_kfmt_json_escape(buf, s, len);
	dts_put_byte(buf, '"');
}

void
dts_kfmt_json_cstring(DtsWriteBuf *buf, const char *s)
{
	if (s == NULL)
		s = "";
	dts_kfmt_json_string(buf, s, strlen(s));
}

void
dts_kfmt_pk_uk_info(DtsWriteBuf *buf, const DtsRelation *rel)
{
	bool		first = true;

	if (rel->nkeys == 0)
	{
		dts_put_raw(buf, "{}", 2);
		return;
	}
	dts_kfmt_put_str(buf, "{\"PRIMARY\":[");
	for (int i = 0; i < rel->ncols; i++)
	{
		if (!rel->columns[i].key)
			continue;
		if (!first)
			dts_put_byte(buf, ',');
		first = false;
		dts_kfmt_json_cstring(buf, rel->columns[i].name);
	}
	dts_put_raw(buf, "]}", 2);
}

void
dts_kfmt_object_name_part(DtsWriteBuf *buf, const char *name)
{
	const char *p;

	if (name == NULL)
		return;
	while ((p = strchr(name, '.')) != NULL)
	{
		dts_put_raw(buf, name, p - name);
		dts_put_raw(buf, "\\u002E", 6);
		name = p + 1;
	}
	dts_kfmt_put_str(buf, name);
}

uint32_t
dts_kfmt_meta_version(const DtsRecordContext *ctx, const DtsRelation *rel)
{
	uint32_t	crc = DTS_CRC32C_INIT;
	const char *table = ctx->table ? ctx->table : rel->table;

	crc = dts_crc32c(crc, table, strlen(table) + 1);
	for (int i = 0; i < rel->ncols; i++)
	{
		const DtsColumn *c = &rel->columns[i];
		uint8_t		b[9];

		crc = dts_crc32c(crc, c->name, strlen(c->name) + 1);
		b[0] = (uint8_t) (c->typoid >> 24);
		b[1] = (uint8_t) (c->typoid >> 16);
		b[2] = (uint8_t) (c->typoid >> 8);
		b[3] = (uint8_t) c->typoid;
		b[4] = (uint8_t) ((uint32_t) c->typmod >> 24);
		b[5] = (uint8_t) ((uint32_t) c->typmod >> 16);
		b[6] = (uint8_t) ((uint32_t) c->typmod >> 8);
		b[7] = (uint8_t) c->typmod;
		b[8] = c->key ? 1 : 0;
		crc = dts_crc32c(crc, b, sizeof(b));
	}
	return DTS_CRC32C_FINAL(crc);
}

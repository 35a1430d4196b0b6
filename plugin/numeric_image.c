/*-------------------------------------------------------------------------
 *
 * numeric_image.c
 *	  numeric_send()'s image and numeric_out()'s text of a numeric datum,
 *	  written without fmgr.
 *
 * numeric_send() and numeric_out() unpack the datum into a NumericVar in
 * fresh memory and build a bytea or a palloc'd string; per row that was a
 * tenth of the plugin's time on a table with one numeric column (the text
 * form, in the walsender of a Kafka task, 3% of its CPU).  The on-disk
 * layout of numeric is fixed (it survives pg_upgrade), so we read it here
 * directly.  The layout facts below restate numeric.c's
 * NumericShort/NumericLong header encoding; the text is numeric_out()'s:
 * "NaN", "Infinity", "-Infinity", or an optional '-', the integer digits
 * without leading zeros ("0" for none), and with a display scale the point
 * and exactly that many fraction digits.
 *
 * plugin/numeric_image.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "pg_dts.h"

#define NUMERIC_SIGN_MASK		0xC000
#define NUMERIC_POS				0x0000
#define NUMERIC_NEG				0x4000
#define NUMERIC_SHORT			0x8000
#define NUMERIC_SPECIAL			0xC000
#define NUMERIC_PINF			0xD000
#define NUMERIC_NINF			0xF000
#define NUMERIC_EXT_SIGN_MASK	0xF000
#define NUMERIC_DSCALE_MASK		0x3FFF
#define NUMERIC_SHORT_SIGN_MASK 0x2000
#define NUMERIC_SHORT_DSCALE_MASK 0x1F80
#define NUMERIC_SHORT_DSCALE_SHIFT 7
#define NUMERIC_SHORT_WEIGHT_SIGN_MASK 0x0040
#define NUMERIC_SHORT_WEIGHT_MASK 0x003F

static inline uint16
read_uint16(const char *p)
{
	uint16		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void
put_be16(uint8_t *p, uint16 v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

/* A numeric datum's header fields and digits, read from its on-disk form. */
typedef struct NumericParts
{
	uint16		sign;			/* NUMERIC_POS, _NEG, or a special value's */
	bool		special;		/* NaN or an infinity */
	int16		weight;			/* of the first digit, in base-10000 places */
	uint16		dscale;			/* decimal digits after the point */
	int			ndigits;
	const char *digits;			/* ndigits base-10000 digits, int16, unaligned */
} NumericParts;

static void
read_numeric(Datum value, NumericParts *n)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	const char *p = VARDATA_ANY(v);
	size_t		size = VARSIZE_ANY_EXHDR(v);
	uint16		header = read_uint16(p);
	bool		is_short = (header & NUMERIC_SHORT) != 0;	/* or special */
	size_t		header_size = is_short ? 2 : 4;

	n->ndigits = (int) ((size - header_size) / 2);
	n->digits = p + header_size;
	n->special = (header & NUMERIC_SIGN_MASK) == NUMERIC_SPECIAL;
	if (n->special)
	{
		n->sign = header & NUMERIC_EXT_SIGN_MASK;
		n->weight = 0;
		/*
		 * numeric_send() reads a special value's header as a short one's
		 * (NUMERIC_DSCALE()): its image says dscale 32 for the infinities,
		 * 0 for NaN.  Receivers ignore it; we send the same bytes.
		 */
		n->dscale = (header & NUMERIC_SHORT_DSCALE_MASK) >> NUMERIC_SHORT_DSCALE_SHIFT;
		n->ndigits = 0;
	}
	else if (is_short)
	{
		n->sign = (header & NUMERIC_SHORT_SIGN_MASK) ? NUMERIC_NEG : NUMERIC_POS;
		n->dscale = (header & NUMERIC_SHORT_DSCALE_MASK) >> NUMERIC_SHORT_DSCALE_SHIFT;
		n->weight = (int16) (((header & NUMERIC_SHORT_WEIGHT_SIGN_MASK) ?
							  ~NUMERIC_SHORT_WEIGHT_MASK : 0) |
							 (header & NUMERIC_SHORT_WEIGHT_MASK));
	}
	else
	{
		n->sign = header & NUMERIC_SIGN_MASK;
		n->dscale = header & NUMERIC_DSCALE_MASK;
		n->weight = (int16) read_uint16(p + 2);
	}
}

/* Appends the image of n: ndigits, weight, sign, dscale, digits */
static void
put_image(DtsWriteBuf *buf, const NumericParts *n)
{
	uint8_t    *out;

	dts_reserve(buf, 8 + 2 * (size_t) n->ndigits);
	out = buf->data + buf->len;
	put_be16(out, (uint16) n->ndigits);
	put_be16(out + 2, (uint16) n->weight);
	put_be16(out + 4, n->sign);
	put_be16(out + 6, n->dscale);
	for (int i = 0; i < n->ndigits; i++)
		put_be16(out + 8 + 2 * i, read_uint16(n->digits + 2 * i));
	buf->len += 8 + 2 * (size_t) n->ndigits;
}

/*
 * Writes the numeric_send() image of value as a frame string: ndigits,
 * weight, sign, dscale, then the base-10000 digits, all int16 big-endian.
 */
void
pg_dts_put_numeric_image(DtsWriteBuf *buf, Datum value)
{
	NumericParts n;

	read_numeric(value, &n);
	dts_put_varint(buf, 8 + 2 * (size_t) n.ndigits);
	put_image(buf, &n);
}

/*
 * Writes the same image as a binary COPY field: its length as a
 * big-endian int32, then the image.
 */
void
pg_dts_put_numeric_copy_field(DtsWriteBuf *buf, Datum value)
{
	NumericParts n;
	uint32		len;

	read_numeric(value, &n);
	len = 8 + 2 * (uint32) n.ndigits;
	dts_reserve(buf, 4);
	put_be16(buf->data + buf->len, (uint16) (len >> 16));
	put_be16(buf->data + buf->len + 2, (uint16) len);
	buf->len += 4;
	put_image(buf, &n);
}

/* The base-10000 digit at place i (0 = the first stored digit), 0 outside. */
static inline int
digit_at(const NumericParts *n, int i)
{
	return i >= 0 && i < n->ndigits ? (int) read_uint16(n->digits + 2 * i) : 0;
}

/* The text of a special value (numeric_out's words), or NULL. */
static const char *
special_text(const NumericParts *n)
{
	if (!n->special)
		return NULL;
	if (n->sign == NUMERIC_PINF)
		return "Infinity";
	if (n->sign == NUMERIC_NINF)
		return "-Infinity";
	return "NaN";
}

/*
 * The length of numeric_out()'s text: an optional '-', the integer part
 * without leading zeros ("0" when there is none), and when dscale > 0 a
 * point and exactly dscale fraction digits.
 */
static size_t
text_length(const NumericParts *n)
{
	size_t		len = n->sign == NUMERIC_NEG ? 1 : 0;

	if (n->weight < 0)
		len += 1;
	else
	{
		int			first = digit_at(n, 0);

		len += (first >= 1000 ? 4 : first >= 100 ? 3 : first >= 10 ? 2 : 1) +
			4 * (size_t) n->weight;
	}
	if (n->dscale > 0)
		len += 1 + n->dscale;
	return len;
}

/* "00" .. "99" */
static const char two_digits[201] =
"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
"8081828384858687888990919293949596979899";

/* Writes the four decimal digits of a base-10000 digit. */
static inline char *
put_group(char *out, int d)
{
	memcpy(out, two_digits + 2 * (d / 100), 2);
	memcpy(out + 2, two_digits + 2 * (d % 100), 2);
	return out + 4;
}

/* Writes the text of a finite value; out has room for text_length(). */
static void
write_text(const NumericParts *n, char *out)
{
	if (n->sign == NUMERIC_NEG)
		*out++ = '-';
	if (n->weight < 0)
		*out++ = '0';
	else
	{
		int			first = digit_at(n, 0);
		char		group[4];
		int			skip = first >= 1000 ? 0 : first >= 100 ? 1 : first >= 10 ? 2 : 3;

		/* the first digit without its leading zeros */
		put_group(group, first);
		memcpy(out, group + skip, 4 - skip);
		out += 4 - skip;
		for (int place = 1; place <= n->weight; place++)
			out = put_group(out, digit_at(n, place));
	}
	if (n->dscale > 0)
	{
		int			place = n->weight + 1;
		int			left = n->dscale;

		*out++ = '.';
		for (; left >= 4; left -= 4)
			out = put_group(out, digit_at(n, place++));
		if (left > 0)
		{
			char		group[4];

			put_group(group, digit_at(n, place));
			memcpy(out, group, left);
		}
	}
}

/*
 * Writes numeric_out()'s text of a numeric varlena to buf, as a frame
 * string (length_prefixed) or bare.  No fmgr, no NumericVar: the digits are
 * read in place.
 */
static void
write_numeric_text(DtsWriteBuf *buf, Datum value, bool length_prefixed)
{
	NumericParts n;
	const char *word;
	size_t		len;

	read_numeric(value, &n);
	if ((word = special_text(&n)) != NULL)
	{
		if (length_prefixed)
			dts_put_string(buf, word, strlen(word));
		else
			dts_put_raw(buf, word, strlen(word));
		return;
	}
	len = text_length(&n);
	if (length_prefixed)
		dts_put_varint(buf, len);
	dts_reserve(buf, len);
	write_text(&n, (char *) buf->data + buf->len);
	buf->len += len;
}

/* Appends the text of a numeric to buf, unprefixed (for the jsonb writer). */
void
pg_dts_append_numeric_text(DtsWriteBuf *buf, Datum value)
{
	write_numeric_text(buf, value, false);
}

/* Writes numeric_out()'s text of value as a frame string. */
void
pg_dts_put_numeric_text(DtsWriteBuf *buf, Datum value)
{
	write_numeric_text(buf, value, true);
}

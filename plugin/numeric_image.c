/*-------------------------------------------------------------------------
 *
 * numeric_image.c
 *	  numeric_send()'s image of a numeric datum, written without fmgr.
 *
 * numeric_send() unpacks the datum into a NumericVar in fresh memory and
 * builds a bytea; per row that was a tenth of the plugin's time on a table
 * with one numeric column.  The on-disk layout of numeric is fixed (it
 * survives pg_upgrade), so we read it here directly.  The layout facts
 * below restate numeric.c's NumericShort/NumericLong header encoding.
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

/*
 * Writes the numeric_send() image of value as a frame string: ndigits,
 * weight, sign, dscale, then the base-10000 digits, all int16 big-endian.
 */
void
pg_dts_put_numeric_image(DtsWriteBuf *buf, Datum value)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	const char *p = VARDATA_ANY(v);
	size_t		size = VARSIZE_ANY_EXHDR(v);
	uint16		header = read_uint16(p);
	bool		is_short = (header & NUMERIC_SHORT) != 0;	/* or special */
	size_t		header_size = is_short ? 2 : 4;
	int			ndigits = (int) ((size - header_size) / 2);
	int16		weight;
	uint16		sign;
	uint16		dscale;
	uint8_t    *out;

	if ((header & NUMERIC_SIGN_MASK) == NUMERIC_SPECIAL)
	{
		sign = header & NUMERIC_EXT_SIGN_MASK;
		weight = 0;
		dscale = 0;
		ndigits = 0;
	}
	else if (is_short)
	{
		sign = (header & NUMERIC_SHORT_SIGN_MASK) ? NUMERIC_NEG : NUMERIC_POS;
		dscale = (header & NUMERIC_SHORT_DSCALE_MASK) >> NUMERIC_SHORT_DSCALE_SHIFT;
		weight = (int16) (((header & NUMERIC_SHORT_WEIGHT_SIGN_MASK) ?
						   ~NUMERIC_SHORT_WEIGHT_MASK : 0) |
						  (header & NUMERIC_SHORT_WEIGHT_MASK));
	}
	else
	{
		sign = header & NUMERIC_SIGN_MASK;
		dscale = header & NUMERIC_DSCALE_MASK;
		weight = (int16) read_uint16(p + 2);
	}

	dts_put_varint(buf, 8 + 2 * (size_t) ndigits);
	dts_reserve(buf, 8 + 2 * (size_t) ndigits);
	out = buf->data + buf->len;
	put_be16(out, (uint16) ndigits);
	put_be16(out + 2, (uint16) weight);
	put_be16(out + 4, sign);
	put_be16(out + 6, dscale);
	for (int i = 0; i < ndigits; i++)
		put_be16(out + 8 + 2 * i, read_uint16(p + header_size + 2 * i));
	buf->len += 8 + 2 * (size_t) ndigits;
}

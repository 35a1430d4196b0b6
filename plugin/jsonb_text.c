/*-------------------------------------------------------------------------
 *
 * jsonb_text.c
 *	  A fast jsonb-to-text writer for the plugin's jsonb columns.
 *
 * jsonb_out() and jsonb_send() go through JsonbToCString(), whose iterator
 * allocates per level and per scalar and escapes one character at a time;
 * on a table with a jsonb column that was a third of the plugin's time.
 * Numbers inside are printed by numeric_image.c, also without fmgr.
 * This walks the on-disk container directly and produces exactly the text
 * jsonb_out() produces ("{"a": 1, "b": [true, null]}"), so that the value
 * is still the type's text form (or, with the version byte in front, its
 * typsend image).
 *
 * plugin/jsonb_text.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "pg_dts.h"

#define JSONB_SEND_VERSION 1

static void write_container(DtsWriteBuf *out, const char *container);

static inline uint32
read_uint32(const char *p)
{
	uint32		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Appends a JSON string literal, escaped as escape_json() does. */
static void
write_string(DtsWriteBuf *out, const char *s, int len)
{
	static const char hex[] = "0123456789abcdef";
	int			run = 0;

	dts_put_byte(out, '"');
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		const char *esc;

		if (c >= ' ' && c != '"' && c != '\\')
			continue;
		dts_put_raw(out, s + run, i - run);
		run = i + 1;
		switch (c)
		{
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			default:
				{
					char		u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

					dts_put_raw(out, u, 6);
					continue;
				}
		}
		dts_put_raw(out, esc, 2);
	}
	dts_put_raw(out, s + run, len - run);
	dts_put_byte(out, '"');
}

/* Appends the scalar or container described by entry, at base + offset. */
static void
write_entry(DtsWriteBuf *out, JEntry entry, const char *base, uint32 offset,
			uint32 len)
{
	switch (entry & JENTRY_TYPEMASK)
	{
		case JENTRY_ISSTRING:
			write_string(out, base + offset, len);
			break;
		case JENTRY_ISNUMERIC:
			pg_dts_append_numeric_text(out, PointerGetDatum(base + INTALIGN(offset)));
			break;
		case JENTRY_ISBOOL_TRUE:
			dts_put_raw(out, "true", 4);
			break;
		case JENTRY_ISBOOL_FALSE:
			dts_put_raw(out, "false", 5);
			break;
		case JENTRY_ISNULL:
			dts_put_raw(out, "null", 4);
			break;
		case JENTRY_ISCONTAINER:
			write_container(out, base + INTALIGN(offset));
			break;
		default:
			elog(ERROR, "unrecognized jsonb entry type 0x%08x", entry);
	}
}

/*
 * Appends one container.  Its JEntries hold lengths, or every
 * JB_OFFSET_STRIDE'th an end offset; object keys come first, then values.
 */
static void
write_container(DtsWriteBuf *out, const char *container)
{
	uint32		header = read_uint32(container);
	uint32		count = header & JB_CMASK;
	bool		object = (header & JB_FOBJECT) != 0;
	bool		scalar = (header & JB_FSCALAR) != 0;
	uint32		nentries = object ? count * 2 : count;
	const char *entries = container + sizeof(uint32);
	const char *base = entries + nentries * sizeof(JEntry);
	uint32		offset = 0;
	uint32		value_offset = 0;

	/* end offset of the keys = start of the first value */
	if (object)
	{
		for (uint32 i = 0; i < count; i++)
		{
			JEntry		e = read_uint32(entries + i * sizeof(JEntry));

			value_offset = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) :
				value_offset + JBE_OFFLENFLD(e);
		}
	}

	if (!scalar)
		dts_put_byte(out, object ? '{' : '[');
	for (uint32 i = 0; i < count; i++)
	{
		JEntry		e = read_uint32(entries + i * sizeof(JEntry));
		uint32		end = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) :
			offset + JBE_OFFLENFLD(e);

		if (i > 0)
			dts_put_raw(out, ", ", 2);
		if (object)
		{
			JEntry		v = read_uint32(entries + (count + i) * sizeof(JEntry));
			uint32		vend = JBE_HAS_OFF(v) ? JBE_OFFLENFLD(v) :
				value_offset + JBE_OFFLENFLD(v);

			write_string(out, base + offset, end - offset);
			dts_put_raw(out, ": ", 2);
			write_entry(out, v, base, value_offset, vend - value_offset);
			value_offset = vend;
		}
		else
			write_entry(out, e, base, offset, end - offset);
		offset = end;
	}
	if (!scalar)
		dts_put_byte(out, object ? '}' : ']');
}

/*
 * Writes a jsonb datum as a frame string: its text, or with send_image the
 * jsonb_send() image (version byte, then the text).  The container is read
 * from an aligned copy in data->jsonb_copy.  The text goes straight into
 * the message behind a one-byte length, moved up in the rare case that its
 * length needs a longer varint.
 */
void
pg_dts_put_jsonb(PgDtsData *data, Datum value, bool send_image)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	size_t		size = VARSIZE_ANY_EXHDR(v);
	DtsWriteBuf *copy = &data->jsonb_copy;
	DtsWriteBuf *out = &data->buf;
	size_t		at;
	size_t		len;

	copy->len = 0;
	dts_put_raw(copy, VARDATA_ANY(v), size);
	at = out->len;
	dts_put_byte(out, 0);
	if (send_image)
		dts_put_byte(out, JSONB_SEND_VERSION);
	write_container(out, (const char *) copy->data);
	len = out->len - at - 1;
	if (len < 0x80)
		out->data[at] = (uint8_t) len;
	else
	{
		DtsWriteBuf varint;
		uint8_t		bytes[DTS_VARINT_MAX_BYTES];

		varint.data = bytes;
		varint.len = 0;
		varint.cap = sizeof(bytes);
		varint.realloc_fn = NULL;
		dts_put_varint(&varint, len);
		dts_reserve(out, varint.len - 1);
		memmove(out->data + at + varint.len, out->data + at + 1, len);
		memcpy(out->data + at, bytes, varint.len);
		out->len += varint.len - 1;
	}
}

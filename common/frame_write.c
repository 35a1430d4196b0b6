/*-------------------------------------------------------------------------
 *
 * frame_write.c
 *	  Writer of pg_dts messages and frames (see include/pg_dts/frame.h and
 *	  docs/frames.md).
 *
 * Everything here appends to a DtsWriteBuf.  A message occupies its buffer
 * from offset 0: dts_message_start() is called on an empty buffer, frames
 * are appended, and dts_message_finish() appends the CRC-32C of every byte
 * from the start of the buffer.  The buffer's memory comes from the
 * caller's realloc_fn, so this file is shared by the server module and the
 * shipper; it uses the C standard library only and keeps no state.
 *
 * common/frame_write.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_dts/frame.h"

/*
 * Makes room for "need" more bytes after buf->len, growing the buffer to at
 * least twice its capacity.  realloc_fn never returns NULL (it reports
 * out-of-memory its own way), so this cannot fail.
 */
void
dts_grow(DtsWriteBuf *buf, size_t need)
{
	size_t		cap = buf->cap < 64 ? 64 : buf->cap;

	while (cap - buf->len < need)
		cap *= 2;
	buf->data = buf->realloc_fn(buf->data, cap);
	buf->cap = cap;
}

/*
 * Starts a message: writes the version byte.  The message starts at offset
 * 0 of the buffer, so buf->len must be 0 here; dts_message_finish() covers
 * the whole buffer with the CRC.
 */
void
dts_message_start(DtsWriteBuf *buf)
{
	dts_put_byte(buf, DTS_FRAME_VERSION);
}

/* Appends the CRC-32C of buf->data[0 .. len) in big-endian byte order. */
void
dts_message_finish(DtsWriteBuf *buf)
{
	uint32_t	crc;
	uint8_t    *p;

	crc = DTS_CRC32C_FINAL(dts_crc32c(DTS_CRC32C_INIT, buf->data, buf->len));
	dts_reserve(buf, DTS_MSG_TRAILER_SIZE);
	p = buf->data + buf->len;
	p[0] = (uint8_t) (crc >> 24);
	p[1] = (uint8_t) (crc >> 16);
	p[2] = (uint8_t) (crc >> 8);
	p[3] = (uint8_t) crc;
	buf->len += DTS_MSG_TRAILER_SIZE;
}

/* Number of bytes of the varint encoding of v. */
static int
varint_size(uint64_t v)
{
	int			n = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * Slow path of dts_frame_finish(): the body of "body" bytes after the
 * one-byte length placeholder at offset "at" needs a longer varint, so the
 * body moves up to make room and the length is written in front of it.
 */
void
dts_frame_finish_long(DtsWriteBuf *buf, size_t at, size_t body)
{
	int			extra = varint_size(body) - 1;
	uint8_t    *p;
	uint64_t	v = body;

	dts_reserve(buf, extra);
	memmove(buf->data + at + 1 + extra, buf->data + at + 1, body);
	buf->len += extra;

	p = buf->data + at;
	while (v >= 0x80)
	{
		*p++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*p = (uint8_t) v;
}

/* Sets bit i of a bitmap (LSB first within each byte). */
static inline void
bitmap_set(uint8_t *bitmap, int i)
{
	bitmap[i / 8] |= (uint8_t) (1 << (i % 8));
}

/*
 * Appends the bitmap of the ncols statuses: bit i is set when status[i]
 * equals "which".
 */
static void
put_bitmap(DtsWriteBuf *buf, const char *status, int ncols, char which)
{
	size_t		nbytes = ((size_t) ncols + 7) / 8;
	uint8_t    *bitmap;
	int			i;

	dts_reserve(buf, nbytes);
	bitmap = buf->data + buf->len;
	memset(bitmap, 0, nbytes);
	for (i = 0; i < ncols; i++)
	{
		if (status[i] == which)
			bitmap_set(bitmap, i);
	}
	buf->len += nbytes;
}

/*
 * Writes a tuple's flags byte and its null and unchanged bitmaps (each only
 * when some column has that status).  status[] holds one DTS_VALUE_* per
 * column written: all columns, or the key columns of a key-only tuple.
 */
void
dts_put_tuple_header(DtsWriteBuf *buf, const char *status, int ncols)
{
	uint8_t		flags = 0;
	int			i;

	for (i = 0; i < ncols; i++)
	{
		if (status[i] == DTS_VALUE_NULL)
			flags |= DTS_TUPLE_HAS_NULLS;
		else if (status[i] == DTS_VALUE_UNCHANGED)
			flags |= DTS_TUPLE_HAS_UNCHANGED;
	}
	dts_put_byte(buf, flags);
	if (flags & DTS_TUPLE_HAS_NULLS)
		put_bitmap(buf, status, ncols, DTS_VALUE_NULL);
	if (flags & DTS_TUPLE_HAS_UNCHANGED)
		put_bitmap(buf, status, ncols, DTS_VALUE_UNCHANGED);
}

void
dts_write_begin(DtsWriteBuf *buf, uint32_t xid, uint64_t final_lsn,
				int64_t commit_time)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_BEGIN);

	dts_put_varint(buf, xid);
	dts_put_varint(buf, final_lsn);
	dts_put_svarint(buf, commit_time);
	dts_frame_finish(buf, at);
}

void
dts_write_commit(DtsWriteBuf *buf, uint32_t xid, uint64_t commit_lsn,
				 uint64_t end_lsn, int64_t commit_time)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_COMMIT);

	dts_put_byte(buf, 0);		/* flags: none defined */
	dts_put_varint(buf, xid);
	dts_put_varint(buf, commit_lsn);
	dts_put_varint(buf, end_lsn);
	dts_put_svarint(buf, commit_time);
	dts_frame_finish(buf, at);
}

void
dts_write_origin(DtsWriteBuf *buf, uint64_t origin_lsn, const char *name,
				 size_t name_len)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_ORIGIN);

	dts_put_varint(buf, origin_lsn);
	dts_put_string(buf, name, name_len);
	dts_frame_finish(buf, at);
}

/*
 * Writes rel's description.  rel->nkeys is not written: the reader counts
 * the columns flagged DTS_COLUMN_KEY.
 */
void
dts_write_relation(DtsWriteBuf *buf, const DtsRelation *rel)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_RELATION);
	int			i;

	dts_put_varint(buf, rel->relid);
	dts_put_string(buf, rel->schema, strlen(rel->schema));
	dts_put_string(buf, rel->table, strlen(rel->table));
	dts_put_byte(buf, (uint8_t) rel->replident);
	dts_put_varint(buf, (uint64_t) rel->ncols);
	for (i = 0; i < rel->ncols; i++)
	{
		const DtsColumn *col = &rel->columns[i];

		dts_put_byte(buf, col->key ? DTS_COLUMN_KEY : 0);
		dts_put_string(buf, col->name, strlen(col->name));
		dts_put_varint(buf, col->typoid);
		dts_put_svarint(buf, col->typmod);
		dts_put_byte(buf, (uint8_t) col->encoding);
	}
	dts_frame_finish(buf, at);
}

void
dts_write_truncate(DtsWriteBuf *buf, uint8_t flags, int nrelids,
				   const uint32_t *relids)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_TRUNCATE);
	int			i;

	dts_put_byte(buf, flags);
	dts_put_varint(buf, (uint64_t) nrelids);
	for (i = 0; i < nrelids; i++)
		dts_put_varint(buf, relids[i]);
	dts_frame_finish(buf, at);
}

void
dts_write_message(DtsWriteBuf *buf, uint8_t flags, uint64_t lsn,
				  const char *prefix, size_t prefix_len,
				  const void *content, size_t content_len)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_MESSAGE);

	dts_put_byte(buf, flags);
	dts_put_varint(buf, lsn);
	dts_put_string(buf, prefix, prefix_len);
	dts_put_string(buf, content, content_len);
	dts_frame_finish(buf, at);
}

void
dts_write_stream_start(DtsWriteBuf *buf, uint32_t xid, uint8_t flags)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_STREAM_START);

	dts_put_varint(buf, xid);
	dts_put_byte(buf, flags);
	dts_frame_finish(buf, at);
}

void
dts_write_stream_stop(DtsWriteBuf *buf)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_STREAM_STOP);

	dts_frame_finish(buf, at);
}

void
dts_write_stream_commit(DtsWriteBuf *buf, uint32_t xid, uint64_t commit_lsn,
						uint64_t end_lsn, int64_t commit_time)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_STREAM_COMMIT);

	dts_put_varint(buf, xid);
	dts_put_varint(buf, commit_lsn);
	dts_put_varint(buf, end_lsn);
	dts_put_svarint(buf, commit_time);
	dts_frame_finish(buf, at);
}

void
dts_write_stream_abort(DtsWriteBuf *buf, uint32_t xid, uint32_t subxid)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_STREAM_ABORT);

	dts_put_varint(buf, xid);
	dts_put_varint(buf, subxid);
	dts_frame_finish(buf, at);
}

void
dts_write_xid(DtsWriteBuf *buf, uint32_t xid)
{
	size_t		at = dts_frame_start(buf, DTS_FRAME_XID);

	dts_put_varint(buf, xid);
	dts_frame_finish(buf, at);
}

/*
 * Starts an INSERT, UPDATE or DELETE frame on relid and returns the offset
 * to pass to dts_frame_finish() once the marker and tuples are written.
 */
size_t
dts_write_change_start(DtsWriteBuf *buf, DtsFrameKind kind, uint32_t relid)
{
	size_t		at = dts_frame_start(buf, kind);

	dts_put_varint(buf, relid);
	return at;
}

/* Writes one present value in the given column encoding. */
static void
put_value(DtsWriteBuf *buf, char encoding, const DtsValue *value)
{
	switch (encoding)
	{
		case DTS_ENC_TEXT:
		case DTS_ENC_BINARY:
			dts_put_string(buf, value->bytes.data, value->bytes.len);
			break;
		case DTS_ENC_BYTE:
			dts_put_raw(buf, value->bytes.data, 1);
			break;
		case DTS_ENC_INT2:
		case DTS_ENC_INT4:
		case DTS_ENC_INT8:
			dts_put_svarint(buf, value->ival);
			break;
		case DTS_ENC_FLOAT4:
			dts_put_raw(buf, value->bytes.data, 4);
			break;
		case DTS_ENC_FLOAT8:
			dts_put_raw(buf, value->bytes.data, 8);
			break;
	}
}

/*
 * Writes a whole tuple of rel from values[] (indexed by column).  With
 * key_only only the key columns are written (the old key of UPDATE or
 * DELETE); the other entries of values[] are not looked at.  Each column
 * is written in its encoding from rel, not values[i].encoding; a status
 * other than NULL or UNCHANGED counts as present, as in
 * dts_put_tuple_header().
 */
void
dts_write_tuple(DtsWriteBuf *buf, const DtsRelation *rel,
				const DtsValue *values, bool key_only)
{
	char		status[DTS_MAX_COLUMNS];
	int			n = 0;
	int			i;

	for (i = 0; i < rel->ncols && n < DTS_MAX_COLUMNS; i++)
	{
		if (!key_only || rel->columns[i].key)
			status[n++] = values[i].status;
	}
	dts_put_tuple_header(buf, status, n);

	for (i = 0; i < rel->ncols; i++)
	{
		if (key_only && !rel->columns[i].key)
			continue;
		if (values[i].status != DTS_VALUE_NULL &&
			values[i].status != DTS_VALUE_UNCHANGED)
			put_value(buf, rel->columns[i].encoding, &values[i]);
	}
}

/*-------------------------------------------------------------------------
 *
 * frame_read.c
 *	  Reader of pg_dts messages: checks a message, then decodes its frames
 *	  one at a time (see include/pg_dts/frame.h and docs/frames.md).
 *
 * The input is untrusted.  Every read is bounded by the end of the frame
 * body it belongs to, every malformation is reported as an error string
 * that names the offset of the frame in the message, and nothing is ever
 * read outside the message.  Decoded strings and values point into the
 * message; the only allocations are the decoder's relation cache and its
 * per-frame scratch arrays (malloc/free), all released by
 * dts_decoder_free().
 *
 * The same file is compiled into the server module and the shipper, so it
 * uses the C standard library only and keeps no global state.
 *
 * common/frame_read.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_dts/frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Smallest message: version byte, one empty frame, CRC. */
#define DTS_MSG_MIN_SIZE	(DTS_MSG_HEADER_SIZE + 2 + DTS_MSG_TRAILER_SIZE)

/*
 * The relation cache: an open-addressing hash table of relations keyed by
 * relid, with linear probing.  Entries are only ever added or replaced.
 */
struct DtsRelCache
{
	DtsRelation **slots;
	uint32_t	cap;			/* a power of two */
	uint32_t	count;
};

/* Cursor over one frame body, with context for error messages. */
typedef struct DtsReader
{
	DtsDecoder *dec;
	const uint8_t *frame;		/* kind byte of the frame */
	const uint8_t *p;			/* next byte to read */
	const uint8_t *end;			/* end of the frame body */
	const char *where;			/* "old tuple", "new tuple" or NULL */
	int			col;			/* 1-based column, or 0 */
	const char *colname;		/* name of that column, or NULL */
} DtsReader;

typedef int (*DtsFrameReader) (DtsReader *rd, DtsFrame *frame);

/* ----------------------------------------------------------------
 *		Errors
 * ----------------------------------------------------------------
 */

/* Sets dec->error to a message-level error; returns -1. */
static int
__attribute__((format(printf, 2, 3)))
message_error(DtsDecoder *dec, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(dec->error, sizeof(dec->error), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Sets dec->error to "frame at offset N: [where: ][column C "name": ]detail"
 * and returns -1.
 */
static int
__attribute__((format(printf, 2, 3)))
frame_error(DtsReader *rd, const char *fmt,...)
{
	char	   *buf = rd->dec->error;
	size_t		size = sizeof(rd->dec->error);
	size_t		n;
	va_list		ap;

	n = (size_t) snprintf(buf, size, "frame at offset %zu: ",
						  (size_t) (rd->frame - rd->dec->msg));
	if (n < size && rd->where != NULL)
		n += (size_t) snprintf(buf + n, size - n, "%s: ", rd->where);
	if (n < size && rd->col > 0 && rd->colname != NULL)
		n += (size_t) snprintf(buf + n, size - n, "column %d \"%s\": ",
							   rd->col, rd->colname);
	else if (n < size && rd->col > 0)
		n += (size_t) snprintf(buf + n, size - n, "column %d: ", rd->col);
	if (n < size)
	{
		va_start(ap, fmt);
		vsnprintf(buf + n, size - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ----------------------------------------------------------------
 *		Primitive fields
 *
 * Each reads one field named "what" from the frame body, or fails with an
 * error naming it.
 * ----------------------------------------------------------------
 */

static inline size_t
bytes_left(const DtsReader *rd)
{
	return (size_t) (rd->end - rd->p);
}

/*
 * On failure these set *result to zero, so that no caller (or compiler) sees
 * an uninitialised value.
 *
 * An unsigned LEB128 varint: at most 10 bytes, minimally encoded (no
 * trailing zero groups), and fitting 64 bits.
 */
static int
read_varint(DtsReader *rd, const char *what, uint64_t *result)
{
	uint64_t	v = 0;
	int			i;

	*result = 0;
	for (i = 0; i < DTS_VARINT_MAX_BYTES; i++)
	{
		uint8_t		b;

		if (rd->p >= rd->end)
			return frame_error(rd, "%s: varint runs past the end of the frame",
							   what);
		b = *rd->p++;
		if (i == DTS_VARINT_MAX_BYTES - 1 && (b & 0x80) != 0)
			break;
		if (i == DTS_VARINT_MAX_BYTES - 1 && b > 1)
			return frame_error(rd, "%s: varint overflows 64 bits", what);
		v |= (uint64_t) (b & 0x7F) << (7 * i);
		if ((b & 0x80) == 0)
		{
			if (b == 0 && i > 0)
				return frame_error(rd, "%s: varint is not minimally encoded",
								   what);
			*result = v;
			return 0;
		}
	}
	return frame_error(rd, "%s: varint is longer than %d bytes",
					   what, DTS_VARINT_MAX_BYTES);
}

/* A varint that must fit 32 bits (xid, relid, type OID). */
static int
read_u32(DtsReader *rd, const char *what, uint32_t *result)
{
	uint64_t	v;

	*result = 0;
	if (read_varint(rd, what, &v) < 0)
		return -1;
	if (v > UINT32_MAX)
		return frame_error(rd, "%s %llu does not fit 32 bits",
						   what, (unsigned long long) v);
	*result = (uint32_t) v;
	return 0;
}

/* A zigzag-encoded signed varint. */
static int
read_svarint(DtsReader *rd, const char *what, int64_t *result)
{
	uint64_t	v;

	*result = 0;
	if (read_varint(rd, what, &v) < 0)
		return -1;
	*result = dts_unzigzag(v);
	return 0;
}

/* An svarint that must fit a signed 32-bit integer (typmod). */
static int
read_i32(DtsReader *rd, const char *what, int32_t *result)
{
	int64_t		v;

	*result = 0;
	if (read_svarint(rd, what, &v) < 0)
		return -1;
	if (v < INT32_MIN || v > INT32_MAX)
		return frame_error(rd, "%s %lld does not fit 32 bits",
						   what, (long long) v);
	*result = (int32_t) v;
	return 0;
}

static int
read_byte(DtsReader *rd, const char *what, uint8_t *result)
{
	*result = 0;
	if (rd->p >= rd->end)
		return frame_error(rd, "%s: byte runs past the end of the frame",
						   what);
	*result = *rd->p++;
	return 0;
}

/* A flags byte; bits outside "allowed" are reserved and must be zero. */
static int
read_flags(DtsReader *rd, const char *what, uint8_t allowed, uint8_t *result)
{
	if (read_byte(rd, what, result) < 0)
		return -1;
	if ((*result & ~allowed) != 0)
		return frame_error(rd, "%s: reserved bits 0x%02x are set",
						   what, (unsigned) (*result & ~allowed));
	return 0;
}

/* n raw bytes, returned as a slice of the message. */
static int
read_bytes(DtsReader *rd, const char *what, size_t n, DtsSlice *result)
{
	result->data = NULL;
	result->len = 0;
	if (n > bytes_left(rd))
		return frame_error(rd, "%s: %zu bytes needed but only %zu left in the frame",
						   what, n, bytes_left(rd));
	result->data = rd->p;
	result->len = n;
	rd->p += n;
	return 0;
}

/* A string: varint length, then that many bytes within the frame. */
static int
read_string(DtsReader *rd, const char *what, DtsSlice *result)
{
	uint64_t	len;

	result->data = NULL;
	result->len = 0;
	if (read_varint(rd, what, &len) < 0)
		return -1;
	if (len > bytes_left(rd))
		return frame_error(rd, "%s: length %llu exceeds the %zu bytes left in the frame",
						   what, (unsigned long long) len, bytes_left(rd));
	result->data = rd->p;
	result->len = (size_t) len;
	rd->p += len;
	return 0;
}

/* A string stored as a C string: it must not contain a zero byte. */
static int
read_name(DtsReader *rd, const char *what, DtsSlice *result)
{
	if (read_string(rd, what, result) < 0)
		return -1;
	if (result->len > 0 && memchr(result->data, 0, result->len) != NULL)
		return frame_error(rd, "%s contains a zero byte", what);
	return 0;
}

/* ----------------------------------------------------------------
 *		Decoder memory: scratch arrays and the relation cache
 * ----------------------------------------------------------------
 */

/* Makes the value scratch arrays hold at least n entries; -1 if no memory. */
static int
ensure_values(DtsDecoder *dec, int n)
{
	DtsValue   *p;
	int			cap;

	if (n <= dec->values_cap)
		return 0;
	cap = dec->values_cap < 16 ? 16 : dec->values_cap;
	while (cap < n)
		cap *= 2;
	p = realloc(dec->old_values, (size_t) cap * sizeof(DtsValue));
	if (p == NULL)
		return -1;
	dec->old_values = p;
	p = realloc(dec->new_values, (size_t) cap * sizeof(DtsValue));
	if (p == NULL)
		return -1;
	dec->new_values = p;
	dec->values_cap = cap;
	return 0;
}

/* Makes the TRUNCATE relid array hold at least n entries; -1 if no memory. */
static int
ensure_relids(DtsDecoder *dec, int n)
{
	uint32_t   *p;
	int			cap;

	if (n <= dec->relids_cap)
		return 0;
	cap = dec->relids_cap < 16 ? 16 : dec->relids_cap;
	while (cap < n)
		cap *= 2;
	p = realloc(dec->relids, (size_t) cap * sizeof(uint32_t));
	if (p == NULL)
		return -1;
	dec->relids = p;
	dec->relids_cap = cap;
	return 0;
}

/* Index of relid's slot in the cache: its entry, or the empty slot to use. */
static uint32_t
relcache_slot(const DtsRelCache *cache, uint32_t relid)
{
	uint32_t	mask = cache->cap - 1;
	uint32_t	i = (relid * 0x9E3779B1u) & mask;

	while (cache->slots[i] != NULL && cache->slots[i]->relid != relid)
		i = (i + 1) & mask;
	return i;
}

static DtsRelation *
relcache_get(const DtsRelCache *cache, uint32_t relid)
{
	if (cache == NULL || cache->count == 0)
		return NULL;
	return cache->slots[relcache_slot(cache, relid)];
}

/* Doubles the table (or creates it), keeping it at most half full. */
static int
relcache_grow(DtsRelCache *cache)
{
	DtsRelCache bigger;
	uint32_t	i;

	bigger.cap = cache->cap == 0 ? 16 : cache->cap * 2;
	bigger.count = cache->count;
	bigger.slots = calloc(bigger.cap, sizeof(DtsRelation *));
	if (bigger.slots == NULL)
		return -1;
	for (i = 0; i < cache->cap; i++)
	{
		DtsRelation *rel = cache->slots[i];

		if (rel != NULL)
			bigger.slots[relcache_slot(&bigger, rel->relid)] = rel;
	}
	free(cache->slots);
	*cache = bigger;
	return 0;
}

/*
 * Adds rel to the cache, freeing the relation it replaces.  On success the
 * cache owns rel; on failure (-1, out of memory) the caller still does.
 */
static int
relcache_put(DtsDecoder *dec, DtsRelation *rel)
{
	DtsRelCache *cache = dec->rels;
	uint32_t	i;

	if (cache == NULL)
	{
		cache = calloc(1, sizeof(DtsRelCache));
		if (cache == NULL)
			return -1;
		dec->rels = cache;
	}
	if ((cache->count + 1) * 2 > cache->cap && relcache_grow(cache) < 0)
		return -1;
	i = relcache_slot(cache, rel->relid);
	if (cache->slots[i] != NULL)
		free(cache->slots[i]);
	else
		cache->count++;
	cache->slots[i] = rel;
	return 0;
}

static void
relcache_free(DtsRelCache *cache)
{
	uint32_t	i;

	if (cache == NULL)
		return;
	for (i = 0; i < cache->cap; i++)
		free(cache->slots[i]);
	free(cache->slots);
	free(cache);
}

/* ----------------------------------------------------------------
 *		RELATION
 * ----------------------------------------------------------------
 */

static bool
valid_encoding(uint8_t enc)
{
	switch (enc)
	{
		case DTS_ENC_TEXT:
		case DTS_ENC_BINARY:
		case DTS_ENC_BYTE:
		case DTS_ENC_INT2:
		case DTS_ENC_INT4:
		case DTS_ENC_INT8:
		case DTS_ENC_FLOAT4:
		case DTS_ENC_FLOAT8:
			return true;
	}
	return false;
}

static bool
valid_replident(uint8_t ri)
{
	return ri == DTS_REPLIDENT_DEFAULT || ri == DTS_REPLIDENT_NOTHING ||
		ri == DTS_REPLIDENT_FULL || ri == DTS_REPLIDENT_INDEX;
}

/* Copies a slice to *strings as a C string and advances *strings. */
static char *
copy_name(const DtsSlice *s, char **strings)
{
	char	   *copy = *strings;

	if (s->len > 0)
		memcpy(copy, s->data, s->len);
	copy[s->len] = '\0';
	*strings += s->len + 1;
	return copy;
}

/*
 * Allocates a relation with room for ncols columns and for all its names in
 * one block (freed with a single free()): the names are at most the rest of
 * the frame body, plus a terminator each.
 */
static DtsRelation *
relation_alloc(const DtsSlice *schema, const DtsSlice *table, int ncols,
			   size_t names_room, char **strings)
{
	size_t		head = sizeof(DtsRelation) + (size_t) ncols * sizeof(DtsColumn);
	size_t		size = head + schema->len + 1 + table->len + 1 +
		names_room + (size_t) ncols;
	DtsRelation *rel = malloc(size);

	if (rel == NULL)
		return NULL;
	memset(rel, 0, head);
	rel->columns = (DtsColumn *) (rel + 1);
	*strings = (char *) rel + head;
	rel->schema = copy_name(schema, strings);
	rel->table = copy_name(table, strings);
	return rel;
}

/* One column of a RELATION frame. */
static int
read_column(DtsReader *rd, DtsColumn *col, char **strings)
{
	uint8_t		flags;
	uint8_t		enc;
	DtsSlice	name;

	if (read_flags(rd, "flags", DTS_COLUMN_KEY, &flags) < 0 ||
		read_name(rd, "name", &name) < 0 ||
		read_u32(rd, "type oid", &col->typoid) < 0 ||
		read_i32(rd, "typmod", &col->typmod) < 0 ||
		read_byte(rd, "encoding", &enc) < 0)
		return -1;
	if (!valid_encoding(enc))
		return frame_error(rd, "unknown value encoding 0x%02x", enc);
	col->name = copy_name(&name, strings);
	col->key = (flags & DTS_COLUMN_KEY) != 0;
	col->encoding = (char) enc;
	return 0;
}

/* Fails unless the whole frame body has been read. */
static int
expect_end(DtsReader *rd)
{
	rd->where = NULL;
	rd->col = 0;
	rd->colname = NULL;
	if (rd->p != rd->end)
		return frame_error(rd, "%zu unread bytes after the end of the body",
						   bytes_left(rd));
	return 0;
}

/*
 * Reads a RELATION frame into a new relation, which replaces any relation
 * of the same relid in the cache only once the whole frame is valid.
 */
static int
read_relation(DtsReader *rd, DtsFrame *frame)
{
	uint32_t	relid;
	DtsSlice	schema;
	DtsSlice	table;
	uint8_t		replident;
	uint64_t	ncols;
	DtsRelation *rel;
	char	   *strings;
	int			i;

	if (read_u32(rd, "relid", &relid) < 0 ||
		read_name(rd, "schema", &schema) < 0 ||
		read_name(rd, "table", &table) < 0 ||
		read_byte(rd, "replica identity", &replident) < 0 ||
		read_varint(rd, "ncols", &ncols) < 0)
		return -1;
	if (!valid_replident(replident))
		return frame_error(rd, "unknown replica identity 0x%02x", replident);
	if (ncols > DTS_MAX_COLUMNS)
		return frame_error(rd, "ncols %llu exceeds the maximum of %d",
						   (unsigned long long) ncols, DTS_MAX_COLUMNS);

	rel = relation_alloc(&schema, &table, (int) ncols, bytes_left(rd),
						 &strings);
	if (rel == NULL)
		return frame_error(rd, "out of memory");
	rel->relid = relid;
	rel->replident = (char) replident;
	rel->ncols = (int) ncols;
	for (i = 0; i < rel->ncols; i++)
	{
		rd->col = i + 1;
		if (read_column(rd, &rel->columns[i], &strings) < 0)
			goto fail;
		if (rel->columns[i].key)
			rel->nkeys++;
	}
	if (expect_end(rd) < 0)
		goto fail;
	if (relcache_put(rd->dec, rel) < 0)
	{
		frame_error(rd, "out of memory");
		goto fail;
	}
	frame->rel = rel;
	return 0;

fail:
	free(rel);
	return -1;
}

/* ----------------------------------------------------------------
 *		Tuples and change frames
 * ----------------------------------------------------------------
 */

/* A bitmap of n bits; the padding bits of its last byte must be zero. */
static int
read_bitmap(DtsReader *rd, const char *what, int n, DtsSlice *bitmap)
{
	if (read_bytes(rd, what, ((size_t) n + 7) / 8, bitmap) < 0)
		return -1;
	if (n % 8 != 0 && (bitmap->data[n / 8] >> (n % 8)) != 0)
		return frame_error(rd, "%s: padding bits are not zero", what);
	return 0;
}

static inline bool
bitmap_get(const DtsSlice *bitmap, int i)
{
	return bitmap->data != NULL && ((bitmap->data[i / 8] >> (i % 8)) & 1);
}

/* One present value, in its column's encoding. */
static int
read_value(DtsReader *rd, char encoding, DtsValue *v)
{
	switch (encoding)
	{
		case DTS_ENC_TEXT:
		case DTS_ENC_BINARY:
			return read_string(rd, "value", &v->bytes);
		case DTS_ENC_BYTE:
			return read_bytes(rd, "value", 1, &v->bytes);
		case DTS_ENC_FLOAT4:
			return read_bytes(rd, "value", 4, &v->bytes);
		case DTS_ENC_FLOAT8:
			return read_bytes(rd, "value", 8, &v->bytes);
		case DTS_ENC_INT2:
			if (read_svarint(rd, "value", &v->ival) < 0)
				return -1;
			if (v->ival < INT16_MIN || v->ival > INT16_MAX)
				return frame_error(rd, "int2 value %lld is out of range",
								   (long long) v->ival);
			return 0;
		case DTS_ENC_INT4:
			if (read_svarint(rd, "value", &v->ival) < 0)
				return -1;
			if (v->ival < INT32_MIN || v->ival > INT32_MAX)
				return frame_error(rd, "int4 value %lld is out of range",
								   (long long) v->ival);
			return 0;
		case DTS_ENC_INT8:
			return read_svarint(rd, "value", &v->ival);
	}
	/* cannot happen: encodings are checked when the RELATION is read */
	return frame_error(rd, "unknown value encoding 0x%02x",
					   (unsigned) (uint8_t) encoding);
}

/*
 * Reads a tuple of rel into values[0 .. rel->ncols).  A key-only tuple
 * carries the key columns only (its bitmaps have nkeys bits); its other
 * columns are returned as DTS_VALUE_ABSENT.
 */
static int
read_tuple(DtsReader *rd, const DtsRelation *rel, bool key_only,
		   DtsValue *values)
{
	int			n = key_only ? rel->nkeys : rel->ncols;
	uint8_t		flags;
	DtsSlice	nulls = {NULL, 0};
	DtsSlice	unchanged = {NULL, 0};
	int			i;
	int			j = 0;

	if (read_flags(rd, "flags", DTS_TUPLE_HAS_NULLS | DTS_TUPLE_HAS_UNCHANGED,
				   &flags) < 0)
		return -1;
	if ((flags & DTS_TUPLE_HAS_NULLS) &&
		read_bitmap(rd, "null bitmap", n, &nulls) < 0)
		return -1;
	if ((flags & DTS_TUPLE_HAS_UNCHANGED) &&
		read_bitmap(rd, "unchanged bitmap", n, &unchanged) < 0)
		return -1;

	for (i = 0; i < rel->ncols; i++)
	{
		const DtsColumn *col = &rel->columns[i];
		DtsValue   *v = &values[i];
		bool		isnull;
		bool		isunchanged;

		v->encoding = col->encoding;
		v->bytes.data = NULL;
		v->bytes.len = 0;
		v->ival = 0;
		if (key_only && !col->key)
		{
			v->status = DTS_VALUE_ABSENT;
			continue;
		}
		rd->col = i + 1;
		rd->colname = col->name;
		isnull = bitmap_get(&nulls, j);
		isunchanged = bitmap_get(&unchanged, j);
		j++;
		if (isnull && isunchanged)
			return frame_error(rd, "value is both null and unchanged");
		if (isnull)
			v->status = DTS_VALUE_NULL;
		else if (isunchanged)
			v->status = DTS_VALUE_UNCHANGED;
		else
		{
			v->status = DTS_VALUE_PRESENT;
			if (read_value(rd, col->encoding, v) < 0)
				return -1;
		}
	}
	rd->col = 0;
	rd->colname = NULL;
	return 0;
}

/* The old-tuple marker of UPDATE and DELETE, and the old tuple it announces. */
static int
read_old_tuple(DtsReader *rd, const DtsRelation *rel, DtsFrame *frame)
{
	uint8_t		marker;

	if (read_byte(rd, "old tuple marker", &marker) < 0)
		return -1;
	if (marker != DTS_OLD_NONE && marker != DTS_OLD_KEY &&
		marker != DTS_OLD_FULL)
		return frame_error(rd, "unknown old tuple marker 0x%02x", marker);
	if (marker == DTS_OLD_KEY && rel->nkeys == 0)
		return frame_error(rd, "key-only old tuple, but relation %u has no key columns",
						   rel->relid);
	frame->old_kind = (char) marker;
	if (marker == DTS_OLD_NONE)
		return 0;

	rd->where = "old tuple";
	if (read_tuple(rd, rel, marker == DTS_OLD_KEY, rd->dec->old_values) < 0)
		return -1;
	rd->where = NULL;
	frame->old_tuple.ncols = rel->ncols;
	frame->old_tuple.values = rd->dec->old_values;
	return 0;
}

/* INSERT, UPDATE and DELETE: relid, [old marker, old tuple], [new tuple] */
static int
read_change(DtsReader *rd, DtsFrame *frame)
{
	DtsDecoder *dec = rd->dec;
	uint32_t	relid;
	const DtsRelation *rel;

	if (read_u32(rd, "relid", &relid) < 0)
		return -1;
	rel = relcache_get(dec->rels, relid);
	if (rel == NULL)
		return frame_error(rd, "relation %u was not described earlier in the stream",
						   relid);
	if (ensure_values(dec, rel->ncols) < 0)
		return frame_error(rd, "out of memory");
	frame->rel = rel;
	frame->old_kind = DTS_OLD_NONE;

	if (frame->kind != DTS_FRAME_INSERT && read_old_tuple(rd, rel, frame) < 0)
		return -1;
	if (frame->kind != DTS_FRAME_DELETE)
	{
		rd->where = "new tuple";
		if (read_tuple(rd, rel, false, dec->new_values) < 0)
			return -1;
		rd->where = NULL;
		frame->new_tuple.ncols = rel->ncols;
		frame->new_tuple.values = dec->new_values;
	}
	return 0;
}

/* ----------------------------------------------------------------
 *		The other frames
 * ----------------------------------------------------------------
 */

static int
read_begin(DtsReader *rd, DtsFrame *frame)
{
	if (read_u32(rd, "xid", &frame->xid) < 0 ||
		read_varint(rd, "final lsn", &frame->lsn) < 0 ||
		read_svarint(rd, "commit time", &frame->commit_time) < 0)
		return -1;
	return 0;
}

static int
read_commit(DtsReader *rd, DtsFrame *frame)
{
	if (read_flags(rd, "flags", 0, &frame->flags) < 0 ||
		read_u32(rd, "xid", &frame->xid) < 0 ||
		read_varint(rd, "commit lsn", &frame->lsn) < 0 ||
		read_varint(rd, "end lsn", &frame->end_lsn) < 0 ||
		read_svarint(rd, "commit time", &frame->commit_time) < 0)
		return -1;
	return 0;
}

static int
read_origin(DtsReader *rd, DtsFrame *frame)
{
	if (read_varint(rd, "origin lsn", &frame->lsn) < 0 ||
		read_string(rd, "origin name", &frame->origin) < 0)
		return -1;
	return 0;
}

static int
read_truncate(DtsReader *rd, DtsFrame *frame)
{
	uint64_t	nrelids;
	int			i;

	if (read_flags(rd, "flags",
				   DTS_TRUNCATE_CASCADE | DTS_TRUNCATE_RESTART_SEQS,
				   &frame->flags) < 0 ||
		read_varint(rd, "nrelids", &nrelids) < 0)
		return -1;
	/* every relid takes at least one byte */
	if (nrelids > bytes_left(rd))
		return frame_error(rd, "nrelids %llu exceeds the %zu bytes left in the frame",
						   (unsigned long long) nrelids, bytes_left(rd));
	if (ensure_relids(rd->dec, (int) nrelids) < 0)
		return frame_error(rd, "out of memory");
	for (i = 0; i < (int) nrelids; i++)
	{
		if (read_u32(rd, "relid", &rd->dec->relids[i]) < 0)
			return -1;
	}
	frame->nrelids = (int) nrelids;
	frame->relids = rd->dec->relids;
	return 0;
}

static int
read_message(DtsReader *rd, DtsFrame *frame)
{
	if (read_flags(rd, "flags", DTS_MESSAGE_TRANSACTIONAL, &frame->flags) < 0 ||
		read_varint(rd, "lsn", &frame->lsn) < 0 ||
		read_string(rd, "prefix", &frame->prefix) < 0 ||
		read_string(rd, "content", &frame->content) < 0)
		return -1;
	return 0;
}

static int
read_stream_start(DtsReader *rd, DtsFrame *frame)
{
	if (read_u32(rd, "xid", &frame->xid) < 0 ||
		read_flags(rd, "flags", DTS_STREAM_FIRST_SEGMENT, &frame->flags) < 0)
		return -1;
	return 0;
}

static int
read_stream_stop(DtsReader *rd, DtsFrame *frame)
{
	(void) rd;
	(void) frame;
	return 0;
}

static int
read_stream_commit(DtsReader *rd, DtsFrame *frame)
{
	if (read_u32(rd, "xid", &frame->xid) < 0 ||
		read_varint(rd, "commit lsn", &frame->lsn) < 0 ||
		read_varint(rd, "end lsn", &frame->end_lsn) < 0 ||
		read_svarint(rd, "commit time", &frame->commit_time) < 0)
		return -1;
	return 0;
}

static int
read_stream_abort(DtsReader *rd, DtsFrame *frame)
{
	if (read_u32(rd, "xid", &frame->xid) < 0 ||
		read_u32(rd, "subxid", &frame->subxid) < 0)
		return -1;
	return 0;
}

static int
read_xid(DtsReader *rd, DtsFrame *frame)
{
	return read_u32(rd, "xid", &frame->xid);
}

/* The body reader of each frame kind, or NULL for an unknown kind. */
static DtsFrameReader
frame_reader(uint8_t kind)
{
	switch (kind)
	{
		case DTS_FRAME_BEGIN:
			return read_begin;
		case DTS_FRAME_COMMIT:
			return read_commit;
		case DTS_FRAME_ORIGIN:
			return read_origin;
		case DTS_FRAME_RELATION:
			return read_relation;
		case DTS_FRAME_INSERT:
		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
			return read_change;
		case DTS_FRAME_TRUNCATE:
			return read_truncate;
		case DTS_FRAME_MESSAGE:
			return read_message;
		case DTS_FRAME_STREAM_START:
			return read_stream_start;
		case DTS_FRAME_STREAM_STOP:
			return read_stream_stop;
		case DTS_FRAME_STREAM_COMMIT:
			return read_stream_commit;
		case DTS_FRAME_STREAM_ABORT:
			return read_stream_abort;
		case DTS_FRAME_XID:
			return read_xid;
	}
	return NULL;
}

/* ----------------------------------------------------------------
 *		Public interface
 * ----------------------------------------------------------------
 */

void
dts_decoder_init(DtsDecoder *dec)
{
	memset(dec, 0, sizeof(DtsDecoder));
}

/* Frees everything the decoder allocated; it may be initialised again. */
void
dts_decoder_free(DtsDecoder *dec)
{
	relcache_free(dec->rels);
	free(dec->old_values);
	free(dec->new_values);
	free(dec->relids);
	memset(dec, 0, sizeof(DtsDecoder));
}

/*
 * Checks the message's size, version byte and CRC and positions the decoder
 * at its first frame, clearing any earlier error.  Nothing is decoded yet;
 * the relation cache is kept.
 */
int
dts_decoder_open(DtsDecoder *dec, const uint8_t *msg, size_t len)
{
	const uint8_t *crcp;
	uint32_t	stored;
	uint32_t	computed;

	dec->msg = dec->cur = dec->end = NULL;
	dec->error[0] = '\0';
	if (msg == NULL || len < DTS_MSG_MIN_SIZE)
		return message_error(dec, "message of %zu bytes is shorter than the minimum of %d bytes",
							 msg == NULL ? (size_t) 0 : len, DTS_MSG_MIN_SIZE);
	if (len > DTS_MSG_MAX_SIZE)
		return message_error(dec, "message of %zu bytes exceeds the maximum of %zu bytes",
							 len, DTS_MSG_MAX_SIZE);
	if (msg[0] != DTS_FRAME_VERSION)
		return message_error(dec, "unsupported message version %u (expected %d)",
							 (unsigned) msg[0], DTS_FRAME_VERSION);

	crcp = msg + len - DTS_MSG_TRAILER_SIZE;
	stored = ((uint32_t) crcp[0] << 24) | ((uint32_t) crcp[1] << 16) |
		((uint32_t) crcp[2] << 8) | (uint32_t) crcp[3];
	computed = DTS_CRC32C_FINAL(dts_crc32c(DTS_CRC32C_INIT, msg,
										   len - DTS_MSG_TRAILER_SIZE));
	if (stored != computed)
		return message_error(dec, "message checksum mismatch: stored 0x%08x, computed 0x%08x",
							 stored, computed);

	dec->msg = msg;
	dec->cur = msg + DTS_MSG_HEADER_SIZE;
	dec->end = crcp;
	return 0;
}

/*
 * Decodes the next frame: its kind, its body length (which must fit the
 * message) and its body (which must be read exactly).  On error the rest of
 * the message is skipped, so that later calls return 0.
 */
int
dts_decoder_next(DtsDecoder *dec, DtsFrame *frame)
{
	DtsReader	rd;
	DtsFrameReader read;
	uint64_t	len;

	memset(frame, 0, sizeof(DtsFrame));
	if (dec->cur == NULL || dec->cur >= dec->end)
		return 0;

	rd.dec = dec;
	rd.frame = dec->cur;
	rd.p = dec->cur;
	rd.end = dec->end;
	rd.where = NULL;
	rd.col = 0;
	rd.colname = NULL;

	read = frame_reader(*rd.p);
	if (read == NULL)
	{
		frame_error(&rd, "unknown frame kind 0x%02x", (unsigned) *rd.p);
		goto fail;
	}
	frame->kind = (DtsFrameKind) *rd.p++;
	if (read_varint(&rd, "body length", &len) < 0)
		goto fail;
	if (len > bytes_left(&rd))
	{
		frame_error(&rd, "body length %llu exceeds the %zu bytes left in the message",
					(unsigned long long) len, bytes_left(&rd));
		goto fail;
	}
	rd.end = rd.p + len;
	if (read(&rd, frame) < 0 || expect_end(&rd) < 0)
		goto fail;
	dec->cur = rd.end;
	return 1;

fail:
	memset(frame, 0, sizeof(DtsFrame));
	dec->cur = dec->end;
	return -1;
}

const DtsRelation *
dts_decoder_relation(const DtsDecoder *dec, uint32_t relid)
{
	return relcache_get(dec->rels, relid);
}

/* Writes the low "size" bytes of v to out, most significant first. */
static void
put_big_endian(uint8_t *out, uint64_t v, int size)
{
	int			i;

	for (i = size - 1; i >= 0; i--)
	{
		out[i] = (uint8_t) v;
		v >>= 8;
	}
}

/*
 * The typsend image of a present value.  The integer encodings are turned
 * back into 2, 4 or 8 big-endian bytes in out (the reader has already
 * range-checked them); BYTE, FLOAT4 and FLOAT8 are copied to out; BINARY
 * (and TEXT) is returned in place, pointing into the message.
 */
size_t
dts_value_image(const DtsValue *value, uint8_t *out, const uint8_t **image)
{
	switch (value->encoding)
	{
		case DTS_ENC_INT2:
			put_big_endian(out, (uint64_t) value->ival, 2);
			*image = out;
			return 2;
		case DTS_ENC_INT4:
			put_big_endian(out, (uint64_t) value->ival, 4);
			*image = out;
			return 4;
		case DTS_ENC_INT8:
			put_big_endian(out, (uint64_t) value->ival, 8);
			*image = out;
			return 8;
		case DTS_ENC_BYTE:
		case DTS_ENC_FLOAT4:
		case DTS_ENC_FLOAT8:
			if (value->bytes.len > 0 && value->bytes.len <= 8)
				memcpy(out, value->bytes.data, value->bytes.len);
			*image = out;
			return value->bytes.len <= 8 ? value->bytes.len : 0;
	}
	*image = value->bytes.data;
	return value->bytes.len;
}

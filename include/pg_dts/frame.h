/*-------------------------------------------------------------------------
 *
 * frame.h
 *	  The pg_dts wire format: frames written by the output plugin and read
 *	  by the shipper, by dts.frames() and by the tests.
 *
 * This header is the one place the format is defined (docs/frames.md is
 * its prose spec).  It depends on the C standard library only, so that the
 * reader compiles without PostgreSQL's server headers.
 *
 * A *message* is what the plugin hands to OutputPluginWrite():
 *
 *		version byte (DTS_FRAME_VERSION)
 *		frame*                      (one or more)
 *		CRC-32C of all bytes above  (4 bytes, big-endian)
 *
 * A *frame* is: kind byte, varint body length, body.  Integers are unsigned
 * LEB128 varints ("varint") or zigzag-encoded signed varints ("svarint");
 * strings are a varint length followed by that many bytes (no terminator).
 *
 * include/pg_dts/frame.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_FRAME_H
#define PG_DTS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DTS_FRAME_VERSION		1

#define DTS_MSG_HEADER_SIZE		1	/* version byte */
#define DTS_MSG_TRAILER_SIZE	4	/* CRC-32C */
#define DTS_VARINT_MAX_BYTES	10

/* Upper bound of one message the reader accepts (1 GB, like a bytea). */
#define DTS_MSG_MAX_SIZE		((size_t) 0x3FFFFFFF)
/* Upper bound of columns of one relation (PostgreSQL's MaxHeapAttributeNumber) */
#define DTS_MAX_COLUMNS			1600

/* One readable byte per frame kind. */
typedef enum DtsFrameKind
{
	DTS_FRAME_BEGIN = 'B',
	DTS_FRAME_COMMIT = 'C',
	DTS_FRAME_ORIGIN = 'O',
	DTS_FRAME_RELATION = 'R',
	DTS_FRAME_INSERT = 'I',
	DTS_FRAME_UPDATE = 'U',
	DTS_FRAME_DELETE = 'D',
	DTS_FRAME_TRUNCATE = 'T',
	DTS_FRAME_MESSAGE = 'M',
	DTS_FRAME_STREAM_START = 'S',
	DTS_FRAME_STREAM_STOP = 'E',
	DTS_FRAME_STREAM_COMMIT = 'c',
	DTS_FRAME_STREAM_ABORT = 'A',
	DTS_FRAME_XID = 'X'
} DtsFrameKind;

/*
 * How a column's values are encoded, chosen per column in its RELATION
 * frame.  "typsend image" means the bytes the type's binary send function
 * produces; the compact encodings are lossless re-encodings of such an image.
 */
typedef enum DtsValueEncoding
{
	DTS_ENC_TEXT = 't',			/* string: typoutput text, server encoding */
	DTS_ENC_BINARY = 'b',		/* string: typsend image */
	DTS_ENC_BYTE = '1',			/* 1 raw byte: typsend image of bool, "char" */
	DTS_ENC_INT2 = '2',			/* svarint of a 2-byte big-endian image */
	DTS_ENC_INT4 = '4',			/* svarint of a 4-byte big-endian image */
	DTS_ENC_INT8 = '8',			/* svarint of an 8-byte big-endian image */
	DTS_ENC_FLOAT4 = 'f',		/* 4 raw bytes: float4 typsend image */
	DTS_ENC_FLOAT8 = 'd'		/* 8 raw bytes: float8 typsend image */
} DtsValueEncoding;

/* Replica identity, as pg_class.relreplident */
#define DTS_REPLIDENT_DEFAULT	'd'
#define DTS_REPLIDENT_NOTHING	'n'
#define DTS_REPLIDENT_FULL		'f'
#define DTS_REPLIDENT_INDEX		'i'

/* Old-tuple marker of UPDATE and DELETE */
#define DTS_OLD_NONE			'N'	/* no old tuple follows */
#define DTS_OLD_KEY				'K'	/* old key: the key columns only */
#define DTS_OLD_FULL			'O'	/* whole old tuple (REPLICA IDENTITY FULL) */

/* Flag bits; every bit not defined here is reserved and must be zero. */
#define DTS_COLUMN_KEY			0x01	/* RELATION column: part of the key */
#define DTS_TUPLE_HAS_NULLS		0x01	/* tuple: null bitmap follows */
#define DTS_TUPLE_HAS_UNCHANGED 0x02	/* tuple: unchanged-TOAST bitmap follows */
#define DTS_TRUNCATE_CASCADE	0x01
#define DTS_TRUNCATE_RESTART_SEQS 0x02
#define DTS_MESSAGE_TRANSACTIONAL 0x01
#define DTS_STREAM_FIRST_SEGMENT 0x01

/* ----------------------------------------------------------------
 *		Writer
 *
 * The writer appends to a DtsWriteBuf whose memory comes from the caller's
 * allocator: realloc() in the shipper, repalloc() in the server.
 * ----------------------------------------------------------------
 */
typedef void *(*DtsReallocFn) (void *ptr, size_t size);

typedef struct DtsWriteBuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	DtsReallocFn realloc_fn;	/* grows data; never returns NULL */
} DtsWriteBuf;

/* Makes room for "need" more bytes (slow path of dts_reserve). */
extern void dts_grow(DtsWriteBuf *buf, size_t need);

static inline void
dts_reserve(DtsWriteBuf *buf, size_t need)
{
	if (buf->cap - buf->len < need)
		dts_grow(buf, need);
}

static inline void
dts_put_byte(DtsWriteBuf *buf, uint8_t b)
{
	dts_reserve(buf, 1);
	buf->data[buf->len++] = b;
}

static inline void
dts_put_varint(DtsWriteBuf *buf, uint64_t v)
{
	uint8_t    *p;

	dts_reserve(buf, DTS_VARINT_MAX_BYTES);
	p = buf->data + buf->len;
	while (v >= 0x80)
	{
		*p++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t) v;
	buf->len = p - buf->data;
}

static inline uint64_t
dts_zigzag(int64_t v)
{
	return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

static inline int64_t
dts_unzigzag(uint64_t v)
{
	return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}

static inline void
dts_put_svarint(DtsWriteBuf *buf, int64_t v)
{
	dts_put_varint(buf, dts_zigzag(v));
}

static inline void
dts_put_raw(DtsWriteBuf *buf, const void *src, size_t len)
{
	if (len == 0)
		return;					/* src may be NULL then; memcpy forbids it */
	dts_reserve(buf, len);
	memcpy(buf->data + buf->len, src, len);
	buf->len += len;
}

/* A string or byte string: varint length, then the bytes. */
static inline void
dts_put_string(DtsWriteBuf *buf, const void *src, size_t len)
{
	dts_put_varint(buf, len);
	dts_put_raw(buf, src, len);
}

/* Message framing: version byte at the start, CRC at the end. */
extern void dts_message_start(DtsWriteBuf *buf);
extern void dts_message_finish(DtsWriteBuf *buf);

/*
 * Frame framing.  dts_frame_start() writes the kind and a placeholder for
 * the body length and returns the offset to hand to dts_frame_finish(),
 * which fills in the length (moving the body when it needs more than one
 * length byte).  Between the two calls the caller appends the body.
 */
static inline size_t
dts_frame_start(DtsWriteBuf *buf, DtsFrameKind kind)
{
	size_t		at;

	dts_reserve(buf, 2);
	buf->data[buf->len++] = (uint8_t) kind;
	at = buf->len;
	buf->data[buf->len++] = 0;
	return at;
}

extern void dts_frame_finish_long(DtsWriteBuf *buf, size_t at, size_t body);

static inline void
dts_frame_finish(DtsWriteBuf *buf, size_t at)
{
	size_t		body = buf->len - at - 1;

	if (body < 0x80)
		buf->data[at] = (uint8_t) body;
	else
		dts_frame_finish_long(buf, at, body);
}

/*
 * Tuples.  The writer of a tuple knows its column count; the caller fills a
 * status per column and writes the flags, bitmaps and values with these.
 */
#define DTS_VALUE_PRESENT		'v'
#define DTS_VALUE_NULL			'n'
#define DTS_VALUE_UNCHANGED		'u'	/* unchanged TOASTed value */
#define DTS_VALUE_ABSENT		'-'	/* not in a key-only tuple (reader only) */

/* Writes the tuple flags byte and bitmaps for ncols statuses. */
extern void dts_put_tuple_header(DtsWriteBuf *buf, const char *status,
								 int ncols);

/*
 * One function per frame kind.  Change frames are written in three steps so
 * that the plugin can encode values straight from datums:
 *		at = dts_write_change_start(buf, DTS_FRAME_UPDATE, relid);
 *		dts_put_byte(buf, DTS_OLD_KEY);  (UPDATE, DELETE only)
 *		dts_put_tuple_header(...); values...  (once per tuple)
 *		dts_frame_finish(buf, at);
 * dts_write_tuple() writes a whole tuple from DtsValues (shipper, tests).
 */
struct DtsRelation;
struct DtsValue;
extern void dts_write_begin(DtsWriteBuf *buf, uint32_t xid, uint64_t final_lsn,
							int64_t commit_time);
extern void dts_write_commit(DtsWriteBuf *buf, uint32_t xid,
							 uint64_t commit_lsn, uint64_t end_lsn,
							 int64_t commit_time);
extern void dts_write_origin(DtsWriteBuf *buf, uint64_t origin_lsn,
							 const char *name, size_t name_len);
extern void dts_write_relation(DtsWriteBuf *buf,
							   const struct DtsRelation *rel);
extern void dts_write_truncate(DtsWriteBuf *buf, uint8_t flags, int nrelids,
							   const uint32_t *relids);
extern void dts_write_message(DtsWriteBuf *buf, uint8_t flags, uint64_t lsn,
							  const char *prefix, size_t prefix_len,
							  const void *content, size_t content_len);
extern void dts_write_stream_start(DtsWriteBuf *buf, uint32_t xid,
								   uint8_t flags);
extern void dts_write_stream_stop(DtsWriteBuf *buf);
extern void dts_write_stream_commit(DtsWriteBuf *buf, uint32_t xid,
									uint64_t commit_lsn, uint64_t end_lsn,
									int64_t commit_time);
extern void dts_write_stream_abort(DtsWriteBuf *buf, uint32_t xid,
								   uint32_t subxid);
extern void dts_write_xid(DtsWriteBuf *buf, uint32_t xid);
extern size_t dts_write_change_start(DtsWriteBuf *buf, DtsFrameKind kind,
									 uint32_t relid);
/*
 * Writes one tuple of rel: all columns, or with key_only the key columns
 * only (values still indexed by column; non-key entries are ignored).
 */
extern void dts_write_tuple(DtsWriteBuf *buf, const struct DtsRelation *rel,
							const struct DtsValue *values, bool key_only);

/* ----------------------------------------------------------------
 *		Reader
 *
 * The reader never reads outside the message it is given and reports every
 * malformation as an error string; it allocates only in DtsDecoder's
 * relation cache (malloc/free), which persists across the messages of one
 * stream so that change frames can be decoded against the RELATION frames
 * seen before them.
 * ----------------------------------------------------------------
 */
typedef struct DtsSlice
{
	const uint8_t *data;
	size_t		len;
} DtsSlice;

typedef struct DtsColumn
{
	char	   *name;			/* NUL-terminated copy */
	uint32_t	typoid;
	int32_t		typmod;
	bool		key;
	char		encoding;		/* DtsValueEncoding */
} DtsColumn;

typedef struct DtsRelation
{
	uint32_t	relid;
	char	   *schema;			/* NUL-terminated copies */
	char	   *table;
	char		replident;
	int			ncols;
	int			nkeys;
	DtsColumn  *columns;
} DtsRelation;

typedef struct DtsValue
{
	char		status;			/* DTS_VALUE_* */
	char		encoding;		/* of the column */
	DtsSlice	bytes;			/* TEXT, BINARY, BYTE, FLOAT4, FLOAT8 */
	int64_t		ival;			/* INT2, INT4, INT8 */
} DtsValue;

typedef struct DtsTuple
{
	int			ncols;			/* == relation's ncols */
	DtsValue   *values;			/* owned by the decoder; valid until the
								 * next dts_decoder_next() */
} DtsTuple;

typedef struct DtsFrame
{
	DtsFrameKind kind;
	uint32_t	xid;			/* BEGIN, COMMIT, STREAM_*, XID */
	uint32_t	subxid;			/* STREAM_ABORT */
	uint64_t	lsn;			/* BEGIN: final; COMMIT: commit; ORIGIN:
								 * origin's; MESSAGE: message's */
	uint64_t	end_lsn;		/* COMMIT, STREAM_COMMIT */
	int64_t		commit_time;	/* BEGIN, COMMIT, STREAM_COMMIT: microseconds
								 * since 2000-01-01 00:00 UTC */
	uint8_t		flags;			/* TRUNCATE, MESSAGE, STREAM_START */
	const DtsRelation *rel;		/* RELATION, INSERT, UPDATE, DELETE; owned
								 * by the decoder, valid until a RELATION
								 * frame with the same relid is read */
	char		old_kind;		/* UPDATE, DELETE: DTS_OLD_* */
	DtsTuple	old_tuple;		/* UPDATE, DELETE when old_kind != NONE */
	DtsTuple	new_tuple;		/* INSERT, UPDATE */
	int			nrelids;		/* TRUNCATE */
	const uint32_t *relids;		/* TRUNCATE; owned by the decoder */
	DtsSlice	origin;			/* ORIGIN: name */
	DtsSlice	prefix;			/* MESSAGE */
	DtsSlice	content;		/* MESSAGE */
} DtsFrame;

typedef struct DtsRelCache DtsRelCache;	/* opaque, in frame_read.c */

typedef struct DtsDecoder
{
	/* the message being read */
	const uint8_t *msg;			/* its first byte; error offsets count from
								 * here */
	const uint8_t *cur;
	const uint8_t *end;			/* start of the CRC trailer */
	/* per-stream state */
	DtsRelCache *rels;
	/* scratch owned by the decoder, reused per frame */
	DtsValue   *old_values;
	DtsValue   *new_values;
	int			values_cap;
	uint32_t   *relids;
	int			relids_cap;
	char		error[256];		/* set when a call returns -1 */
} DtsDecoder;

/* Initialises a decoder for one stream; free it with dts_decoder_free(). */
extern void dts_decoder_init(DtsDecoder *dec);
extern void dts_decoder_free(DtsDecoder *dec);

/*
 * Checks a whole message (size, version, CRC) and positions the decoder at
 * its first frame.  Returns 0, or -1 with dec->error set.  The message must
 * stay valid while its frames are read.
 */
extern int	dts_decoder_open(DtsDecoder *dec, const uint8_t *msg, size_t len);

/*
 * Reads the next frame of the open message.  Returns 1 and fills *frame,
 * 0 at the end of the message, or -1 with dec->error set (then the rest of
 * the message must be dropped).  A RELATION frame updates the decoder's
 * relation cache; change frames naming a relation not described earlier in
 * the stream are errors.
 */
extern int	dts_decoder_next(DtsDecoder *dec, DtsFrame *frame);

/* Looks up a relation described earlier in the stream, or NULL. */
extern const DtsRelation *dts_decoder_relation(const DtsDecoder *dec,
											   uint32_t relid);

/*
 * The typsend image of a present value of a non-TEXT column, written to
 * out (at least 8 bytes) for the fixed-width encodings, or pointed to for
 * BINARY.  Returns the image's length; *image points at it.
 */
extern size_t dts_value_image(const DtsValue *value, uint8_t *out,
							  const uint8_t **image);

/* CRC-32C (Castagnoli), as used in the message trailer. */
extern uint32_t dts_crc32c(uint32_t crc, const void *data, size_t len);
/* The same, always by the portable table code (for tests and benchmarks). */
extern uint32_t dts_crc32c_portable(uint32_t crc, const void *data,
									size_t len);

#define DTS_CRC32C_INIT 0xFFFFFFFFu
#define DTS_CRC32C_FINAL(crc) ((crc) ^ 0xFFFFFFFFu)

#endif							/* PG_DTS_FRAME_H */

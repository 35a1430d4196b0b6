/*-------------------------------------------------------------------------
 *
 * test_frame.c
 *	  Unit tests of the pg_dts wire format: CRC-32C, varints, golden bytes,
 *	  round trips of every frame kind and value encoding, rejection of every
 *	  truncation and single-byte corruption, one test per structural error
 *	  class, and a structural fuzz with valid CRCs.
 *
 * Messages are always decoded from malloc'd copies of their exact size, so
 * that valgrind or AddressSanitizer catches any read past their end.  The
 * fuzz runs DTS_FUZZ_ITERATIONS iterations (default 100000) with a fixed
 * seed.
 *
 * tests/unit/test_frame.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_dts/frame.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* An assertion for hot loops: check's ck_assert() logs every pass. */
#define FAST_CHECK(cond, ...) \
	do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

#define BYTES(...) ((const uint8_t[]) {__VA_ARGS__}), \
	sizeof((const uint8_t[]) {__VA_ARGS__})

/* ----------------------------------------------------------------
 *		Helpers: buffers, messages, relations, values
 * ----------------------------------------------------------------
 */

static void *
xrealloc(void *p, size_t n)
{
	void	   *r = realloc(p, n);

	if (r == NULL)
		abort();
	return r;
}

static void
buf_init(DtsWriteBuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->realloc_fn = xrealloc;
}

/* Starts a message in an empty buffer. */
static void
msg_begin(DtsWriteBuf *b)
{
	buf_init(b);
	dts_message_start(b);
}

/*
 * Finishes the message and returns a malloc'd copy of exactly its size
 * (the caller frees it); the buffer is released.
 */
static uint8_t *
msg_end(DtsWriteBuf *b, size_t *len)
{
	uint8_t    *copy;

	dts_message_finish(b);
	copy = malloc(b->len);
	memcpy(copy, b->data, b->len);
	*len = b->len;
	free(b->data);
	buf_init(b);
	return copy;
}

/* Recomputes the CRC trailer of a message in place. */
static void
reseal(uint8_t *msg, size_t len)
{
	uint32_t	crc;

	if (len < DTS_MSG_TRAILER_SIZE)
		return;
	crc = DTS_CRC32C_FINAL(dts_crc32c(DTS_CRC32C_INIT, msg,
									  len - DTS_MSG_TRAILER_SIZE));
	msg[len - 4] = (uint8_t) (crc >> 24);
	msg[len - 3] = (uint8_t) (crc >> 16);
	msg[len - 2] = (uint8_t) (crc >> 8);
	msg[len - 1] = (uint8_t) crc;
}

/* Appends a frame with a literal body. */
static void
raw_frame(DtsWriteBuf *b, char kind, const uint8_t *body, size_t n)
{
	size_t		at = dts_frame_start(b, (DtsFrameKind) kind);

	dts_put_raw(b, body, n);
	dts_frame_finish(b, at);
}

/* A relation the tests own, with room for the largest one. */
typedef struct TestRel
{
	DtsRelation rel;
	DtsColumn	cols[DTS_MAX_COLUMNS];
} TestRel;

typedef struct ColSpec
{
	const char *name;
	uint32_t	typoid;
	int32_t		typmod;
	bool		key;
	char		enc;
} ColSpec;

static TestRel *
rel_new(uint32_t relid, const char *schema, const char *table, char ri,
		int ncols, const ColSpec *spec)
{
	TestRel    *t = calloc(1, sizeof(TestRel));
	int			i;

	t->rel.relid = relid;
	t->rel.schema = (char *) schema;
	t->rel.table = (char *) table;
	t->rel.replident = ri;
	t->rel.ncols = ncols;
	t->rel.columns = t->cols;
	for (i = 0; i < ncols; i++)
	{
		t->cols[i].name = (char *) spec[i].name;
		t->cols[i].typoid = spec[i].typoid;
		t->cols[i].typmod = spec[i].typmod;
		t->cols[i].key = spec[i].key;
		t->cols[i].encoding = spec[i].enc;
		if (spec[i].key)
			t->rel.nkeys++;
	}
	return t;
}

/* The relation most tests use: every encoding, one key column. */
static const ColSpec std_cols[] = {
	{"id", 23, -1, true, DTS_ENC_INT4},
	{"name", 25, -1, false, DTS_ENC_TEXT},
	{"flag", 16, -1, false, DTS_ENC_BYTE},
	{"f4", 700, -1, false, DTS_ENC_FLOAT4},
	{"f8", 701, -1, false, DTS_ENC_FLOAT8},
	{"s", 21, -1, false, DTS_ENC_INT2},
	{"raw", 17, -1, false, DTS_ENC_BINARY},
	{"big", 20, -1, false, DTS_ENC_INT8},
};
#define STD_RELID 100
#define STD_NCOLS 8

/* Three text columns and no key. */
static const ColSpec nokey_cols[] = {
	{"a", 25, -1, false, DTS_ENC_TEXT},
	{"b", 25, -1, false, DTS_ENC_TEXT},
	{"c", 25, -1, false, DTS_ENC_TEXT},
};
#define NOKEY_RELID 30
#define EMPTY_RELID 20

static DtsValue
v_null(void)
{
	DtsValue	v = {DTS_VALUE_NULL, 0, {NULL, 0}, 0};

	return v;
}

static DtsValue
v_unchanged(void)
{
	DtsValue	v = {DTS_VALUE_UNCHANGED, 0, {NULL, 0}, 0};

	return v;
}

static DtsValue
v_int(char enc, int64_t ival)
{
	DtsValue	v = {DTS_VALUE_PRESENT, enc, {NULL, 0}, ival};

	return v;
}

static DtsValue
v_bytes(char enc, const void *data, size_t len)
{
	DtsValue	v = {DTS_VALUE_PRESENT, enc, {data, len}, 0};

	return v;
}

static const uint8_t f4_nan[4] = {0x7F, 0xC0, 0x00, 0x01};
static const uint8_t f8_nan[8] = {0xFF, 0xF8, 0, 0, 0, 0, 0xDE, 0xAD};
static const uint8_t f8_negzero[8] = {0x80, 0, 0, 0, 0, 0, 0, 0};

/* A full row of the standard relation. */
static void
std_row(DtsValue *v, int32_t id, const char *name)
{
	static const uint8_t one = 1;

	v[0] = v_int(DTS_ENC_INT4, id);
	v[1] = v_bytes(DTS_ENC_TEXT, name, strlen(name));
	v[2] = v_bytes(DTS_ENC_BYTE, &one, 1);
	v[3] = v_bytes(DTS_ENC_FLOAT4, f4_nan, 4);
	v[4] = v_bytes(DTS_ENC_FLOAT8, f8_negzero, 8);
	v[5] = v_int(DTS_ENC_INT2, -2);
	v[6] = v_bytes(DTS_ENC_BINARY, "\0\1\2", 3);
	v[7] = v_int(DTS_ENC_INT8, INT64_MIN);
}

/* Asserts that a decoded value equals the one written. */
static void
check_value(const DtsValue *got, const DtsValue *want, char enc, int col)
{
	FAST_CHECK(got->status == want->status,
			   "column %d: status '%c', expected '%c'", col, got->status,
			   want->status);
	FAST_CHECK(got->encoding == enc, "column %d: encoding", col);
	if (got->status != DTS_VALUE_PRESENT)
		return;
	if (enc == DTS_ENC_INT2 || enc == DTS_ENC_INT4 || enc == DTS_ENC_INT8)
		FAST_CHECK(got->ival == want->ival, "column %d: %lld != %lld", col,
				   (long long) got->ival, (long long) want->ival);
	else
	{
		FAST_CHECK(got->bytes.len == want->bytes.len, "column %d: length",
				   col);
		FAST_CHECK(got->bytes.len == 0 ||
				   memcmp(got->bytes.data, want->bytes.data,
						  got->bytes.len) == 0, "column %d: bytes", col);
	}
}

/* Asserts that a decoded relation equals the one written. */
static void
check_relation(const DtsRelation *got, const DtsRelation *want)
{
	int			i;

	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got->relid, want->relid);
	ck_assert_str_eq(got->schema, want->schema);
	ck_assert_str_eq(got->table, want->table);
	ck_assert_int_eq(got->replident, want->replident);
	ck_assert_int_eq(got->ncols, want->ncols);
	ck_assert_int_eq(got->nkeys, want->nkeys);
	for (i = 0; i < want->ncols; i++)
	{
		const DtsColumn *g = &got->columns[i];
		const DtsColumn *w = &want->columns[i];

		FAST_CHECK(strcmp(g->name, w->name) == 0, "column %d name", i);
		FAST_CHECK(g->typoid == w->typoid, "column %d typoid", i);
		FAST_CHECK(g->typmod == w->typmod, "column %d typmod", i);
		FAST_CHECK(g->key == w->key, "column %d key", i);
		FAST_CHECK(g->encoding == w->encoding, "column %d encoding", i);
	}
}

/* Asserts a decoded tuple: want[] for written columns, ABSENT elsewhere. */
static void
check_tuple(const DtsTuple *t, const DtsRelation *rel, const DtsValue *want,
			bool key_only)
{
	int			i;

	ck_assert_int_eq(t->ncols, rel->ncols);
	for (i = 0; i < rel->ncols; i++)
	{
		if (key_only && !rel->columns[i].key)
		{
			DtsValue	absent = {DTS_VALUE_ABSENT, 0, {NULL, 0}, 0};

			check_value(&t->values[i], &absent, rel->columns[i].encoding, i);
		}
		else
			check_value(&t->values[i], &want[i], rel->columns[i].encoding, i);
	}
}

/* Asserts that got[] starts with want[0 .. n). */
static void
check_bytes(const uint8_t *got, const uint8_t *want, size_t n)
{
	ck_assert_mem_eq(got, want, n);
}

/* Opens a message that must be valid and reads its next frame. */
static void
next_ok(DtsDecoder *dec, DtsFrame *f, DtsFrameKind kind)
{
	int			rc = dts_decoder_next(dec, f);

	ck_assert_msg(rc == 1, "dts_decoder_next: %d (%s)", rc, dec->error);
	ck_assert_int_eq(f->kind, kind);
}

static void
open_ok(DtsDecoder *dec, const uint8_t *msg, size_t len)
{
	int			rc = dts_decoder_open(dec, msg, len);

	ck_assert_msg(rc == 0, "dts_decoder_open: %s", dec->error);
}

static void
end_ok(DtsDecoder *dec)
{
	DtsFrame	f;
	int			rc = dts_decoder_next(dec, &f);

	ck_assert_msg(rc == 0, "expected the end of the message, got %d (%s)",
				  rc, dec->error);
}

/* ----------------------------------------------------------------
 *		CRC-32C and varints
 * ----------------------------------------------------------------
 */

/* Bit-at-a-time reference CRC-32C. */
static uint32_t
crc_reference(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len-- > 0)
	{
		int			k;

		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return crc;
}

START_TEST(test_crc_check_value)
{
	uint32_t	crc = dts_crc32c(DTS_CRC32C_INIT, "123456789", 9);

	ck_assert_uint_eq(DTS_CRC32C_FINAL(crc), 0xE3069283u);
	crc = dts_crc32c_portable(DTS_CRC32C_INIT, "123456789", 9);
	ck_assert_uint_eq(DTS_CRC32C_FINAL(crc), 0xE3069283u);
	/* empty input leaves the CRC alone */
	ck_assert_uint_eq(dts_crc32c(12345u, "", 0), 12345u);
	/* incremental == one shot */
	crc = dts_crc32c(DTS_CRC32C_INIT, "1234", 4);
	crc = dts_crc32c(crc, "56789", 5);
	ck_assert_uint_eq(DTS_CRC32C_FINAL(crc), 0xE3069283u);
}
END_TEST

START_TEST(test_crc_against_reference)
{
	uint8_t    *data = malloc(1100);
	size_t		off;
	size_t		len;

	for (len = 0; len < 1100; len++)
		data[len] = (uint8_t) (len * 131 + 7);
	for (off = 0; off < 16; off++)
	{
		for (len = 0; len + off <= 1100; len += (len < 64 ? 1 : 37))
		{
			uint32_t	a = dts_crc32c(DTS_CRC32C_INIT, data + off, len);
			uint32_t	p = dts_crc32c_portable(DTS_CRC32C_INIT, data + off,
												len);
			uint32_t	b = crc_reference(DTS_CRC32C_INIT, data + off, len);

			FAST_CHECK(a == b, "offset %zu length %zu: 0x%08x != 0x%08x",
					   off, len, a, b);
			FAST_CHECK(p == b, "portable, offset %zu length %zu: 0x%08x != 0x%08x",
					   off, len, p, b);
		}
	}
	free(data);
}
END_TEST

/* Asserts that writing v as a varint (or svarint) gives exactly want[]. */
static void
check_varint(uint64_t v, bool is_signed, const uint8_t *want, size_t n)
{
	DtsWriteBuf b;

	buf_init(&b);
	if (is_signed)
		dts_put_svarint(&b, (int64_t) v);
	else
		dts_put_varint(&b, v);
	ck_assert_uint_eq(b.len, n);
	ck_assert_mem_eq(b.data, want, n);
	free(b.data);
}

START_TEST(test_varint_bytes)
{
	check_varint(0, false, BYTES(0x00));
	check_varint(1, false, BYTES(0x01));
	check_varint(127, false, BYTES(0x7F));
	check_varint(128, false, BYTES(0x80, 0x01));
	check_varint(300, false, BYTES(0xAC, 0x02));
	check_varint(16383, false, BYTES(0xFF, 0x7F));
	check_varint(16384, false, BYTES(0x80, 0x80, 0x01));
	check_varint(UINT32_MAX, false, BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0x0F));
	check_varint(UINT64_MAX, false, BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
										  0xFF, 0xFF, 0xFF, 0xFF, 0x01));
	check_varint(0, true, BYTES(0x00));
	check_varint((uint64_t) -1, true, BYTES(0x01));
	check_varint(1, true, BYTES(0x02));
	check_varint((uint64_t) -64, true, BYTES(0x7F));
	check_varint(64, true, BYTES(0x80, 0x01));
	check_varint((uint64_t) INT64_MAX, true,
				 BYTES(0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
					   0x01));
	check_varint((uint64_t) INT64_MIN, true,
				 BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
					   0x01));
	ck_assert_int_eq(dts_unzigzag(dts_zigzag(INT64_MIN)), INT64_MIN);
	ck_assert_int_eq(dts_unzigzag(dts_zigzag(-12345)), -12345);
}
END_TEST

/* The exact bytes of a small message, as documented in docs/frames.md. */
START_TEST(test_message_golden_bytes)
{
	DtsWriteBuf b;
	uint8_t    *msg;
	size_t		len;
	uint32_t	crc;
	static const uint8_t want[] = {
		0x01,					/* version */
		'B', 0x05, 0xE9, 0x07, 0x80, 0x01, 0x03,	/* xid 1001, lsn 128,
													 * time -2 */
		'E', 0x00				/* stream stop, empty body */
	};

	msg_begin(&b);
	dts_write_begin(&b, 1001, 128, -2);
	dts_write_stream_stop(&b);
	msg = msg_end(&b, &len);
	ck_assert_uint_eq(len, sizeof(want) + 4);
	ck_assert_mem_eq(msg, want, sizeof(want));
	crc = DTS_CRC32C_FINAL(crc_reference(DTS_CRC32C_INIT, want,
										 sizeof(want)));
	ck_assert_uint_eq(crc, 0x95EAB055u);	/* as in docs/frames.md */
	ck_assert_uint_eq(msg[len - 4], crc >> 24);
	ck_assert_uint_eq(msg[len - 3], (crc >> 16) & 0xFF);
	ck_assert_uint_eq(msg[len - 2], (crc >> 8) & 0xFF);
	ck_assert_uint_eq(msg[len - 1], crc & 0xFF);
	free(msg);
}
END_TEST

/* ----------------------------------------------------------------
 *		Round trips
 * ----------------------------------------------------------------
 */

START_TEST(test_rt_transaction_frames)
{
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	static const uint32_t relids[] = {0, 42, UINT32_MAX};
	static const char zname[] = "a\0b";

	msg_begin(&b);
	dts_write_begin(&b, UINT32_MAX, UINT64_MAX, INT64_MIN);
	dts_write_origin(&b, 0x1234, "", 0);
	dts_write_origin(&b, UINT64_MAX, zname, 3);
	dts_write_message(&b, DTS_MESSAGE_TRANSACTIONAL, 77, "pfx", 3, "\0x\0", 3);
	dts_write_message(&b, 0, 0, "", 0, "", 0);
	dts_write_truncate(&b, DTS_TRUNCATE_CASCADE | DTS_TRUNCATE_RESTART_SEQS,
					   3, relids);
	dts_write_truncate(&b, 0, 0, NULL);
	dts_write_commit(&b, 0, 1, 2, INT64_MAX);
	dts_write_stream_start(&b, 7, DTS_STREAM_FIRST_SEGMENT);
	dts_write_xid(&b, 8);
	dts_write_stream_stop(&b);
	dts_write_stream_start(&b, 7, 0);
	dts_write_stream_abort(&b, 7, 8);
	dts_write_stream_stop(&b);
	dts_write_stream_commit(&b, 7, 100, 200, -1);
	msg = msg_end(&b, &len);

	dts_decoder_init(&dec);
	open_ok(&dec, msg, len);

	next_ok(&dec, &f, DTS_FRAME_BEGIN);
	ck_assert_uint_eq(f.xid, UINT32_MAX);
	ck_assert_uint_eq(f.lsn, UINT64_MAX);
	ck_assert_int_eq(f.commit_time, INT64_MIN);

	next_ok(&dec, &f, DTS_FRAME_ORIGIN);
	ck_assert_uint_eq(f.lsn, 0x1234);
	ck_assert_uint_eq(f.origin.len, 0);

	next_ok(&dec, &f, DTS_FRAME_ORIGIN);
	ck_assert_uint_eq(f.lsn, UINT64_MAX);
	ck_assert_uint_eq(f.origin.len, 3);
	ck_assert_mem_eq(f.origin.data, zname, 3);

	next_ok(&dec, &f, DTS_FRAME_MESSAGE);
	ck_assert_uint_eq(f.flags, DTS_MESSAGE_TRANSACTIONAL);
	ck_assert_uint_eq(f.lsn, 77);
	ck_assert_uint_eq(f.prefix.len, 3);
	ck_assert_mem_eq(f.prefix.data, "pfx", 3);
	ck_assert_uint_eq(f.content.len, 3);
	ck_assert_mem_eq(f.content.data, "\0x\0", 3);

	next_ok(&dec, &f, DTS_FRAME_MESSAGE);
	ck_assert_uint_eq(f.flags, 0);
	ck_assert_uint_eq(f.prefix.len, 0);
	ck_assert_uint_eq(f.content.len, 0);

	next_ok(&dec, &f, DTS_FRAME_TRUNCATE);
	ck_assert_uint_eq(f.flags, DTS_TRUNCATE_CASCADE | DTS_TRUNCATE_RESTART_SEQS);
	ck_assert_int_eq(f.nrelids, 3);
	ck_assert_mem_eq(f.relids, relids, sizeof(relids));

	next_ok(&dec, &f, DTS_FRAME_TRUNCATE);
	ck_assert_int_eq(f.nrelids, 0);

	next_ok(&dec, &f, DTS_FRAME_COMMIT);
	ck_assert_uint_eq(f.xid, 0);
	ck_assert_uint_eq(f.lsn, 1);
	ck_assert_uint_eq(f.end_lsn, 2);
	ck_assert_int_eq(f.commit_time, INT64_MAX);

	next_ok(&dec, &f, DTS_FRAME_STREAM_START);
	ck_assert_uint_eq(f.xid, 7);
	ck_assert_uint_eq(f.flags, DTS_STREAM_FIRST_SEGMENT);
	next_ok(&dec, &f, DTS_FRAME_XID);
	ck_assert_uint_eq(f.xid, 8);
	next_ok(&dec, &f, DTS_FRAME_STREAM_STOP);
	next_ok(&dec, &f, DTS_FRAME_STREAM_START);
	ck_assert_uint_eq(f.flags, 0);
	next_ok(&dec, &f, DTS_FRAME_STREAM_ABORT);
	ck_assert_uint_eq(f.xid, 7);
	ck_assert_uint_eq(f.subxid, 8);
	next_ok(&dec, &f, DTS_FRAME_STREAM_STOP);
	next_ok(&dec, &f, DTS_FRAME_STREAM_COMMIT);
	ck_assert_uint_eq(f.xid, 7);
	ck_assert_uint_eq(f.lsn, 100);
	ck_assert_uint_eq(f.end_lsn, 200);
	ck_assert_int_eq(f.commit_time, -1);
	end_ok(&dec);
	end_ok(&dec);

	dts_decoder_free(&dec);
	free(msg);
}
END_TEST

START_TEST(test_rt_relation)
{
	static const ColSpec cols[] = {
		{"k1", UINT32_MAX, INT32_MIN, true, DTS_ENC_INT8},
		{"", 0, INT32_MAX, false, DTS_ENC_TEXT},
		{"k2", 1043, 36, true, DTS_ENC_BINARY},
	};
	static const char ris[] = {DTS_REPLIDENT_DEFAULT, DTS_REPLIDENT_NOTHING,
	DTS_REPLIDENT_FULL, DTS_REPLIDENT_INDEX};
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	TestRel    *t[4];
	int			i;

	msg_begin(&b);
	for (i = 0; i < 4; i++)
	{
		t[i] = rel_new(UINT32_MAX - i, i == 0 ? "" : "sch", "tab ü", ris[i],
					   3, cols);
		dts_write_relation(&b, &t[i]->rel);
	}
	msg = msg_end(&b, &len);

	dts_decoder_init(&dec);
	open_ok(&dec, msg, len);
	for (i = 0; i < 4; i++)
	{
		next_ok(&dec, &f, DTS_FRAME_RELATION);
		check_relation(f.rel, &t[i]->rel);
		ck_assert_int_eq(f.rel->nkeys, 2);
	}
	end_ok(&dec);
	for (i = 0; i < 4; i++)
	{
		ck_assert_ptr_eq(dts_decoder_relation(&dec, UINT32_MAX - i),
						 dts_decoder_relation(&dec, UINT32_MAX - i));
		check_relation(dts_decoder_relation(&dec, UINT32_MAX - i), &t[i]->rel);
		free(t[i]);
	}
	ck_assert_ptr_null(dts_decoder_relation(&dec, 5));
	dts_decoder_free(&dec);
	free(msg);
}
END_TEST

/* Every value encoding, extremes included, and its typsend image. */
START_TEST(test_rt_values)
{
	static const ColSpec cols[] = {
		{"i2a", 21, -1, true, DTS_ENC_INT2},
		{"i2b", 21, -1, false, DTS_ENC_INT2},
		{"i4a", 23, -1, false, DTS_ENC_INT4},
		{"i4b", 23, -1, false, DTS_ENC_INT4},
		{"i8a", 20, -1, false, DTS_ENC_INT8},
		{"i8b", 20, -1, false, DTS_ENC_INT8},
		{"i8c", 20, -1, false, DTS_ENC_INT8},
		{"f4", 700, -1, false, DTS_ENC_FLOAT4},
		{"f8a", 701, -1, false, DTS_ENC_FLOAT8},
		{"f8b", 701, -1, false, DTS_ENC_FLOAT8},
		{"b0", 16, -1, false, DTS_ENC_BYTE},
		{"bff", 18, -1, false, DTS_ENC_BYTE},
		{"t0", 25, -1, false, DTS_ENC_TEXT},
		{"tz", 25, -1, false, DTS_ENC_TEXT},
		{"bin", 17, -1, false, DTS_ENC_BINARY},
		{"i4z", 23, -1, false, DTS_ENC_INT4},
	};
	enum {N = 16};
	static const uint8_t zero = 0,
				ff = 0xFF;
	static const uint8_t bin[] = {0, 1, 2, 0xFE, 0xFF, 0};
	/* typsend images of the integer columns */
	static const uint8_t img_i2a[] = {0x80, 0x00};
	static const uint8_t img_i2b[] = {0x7F, 0xFF};
	static const uint8_t img_i4a[] = {0x80, 0, 0, 0};
	static const uint8_t img_i4b[] = {0xFF, 0xFF, 0xFF, 0xFE};
	static const uint8_t img_i8a[] = {0x80, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t img_i8b[] = {0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	static const uint8_t img_i8c[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	const uint8_t *images[N] = {img_i2a, img_i2b, img_i4a, img_i4b, img_i8a,
		img_i8b, img_i8c, f4_nan, f8_nan, f8_negzero, &zero, &ff, NULL, NULL,
	bin, NULL};
	static const size_t image_len[N] = {2, 2, 4, 4, 8, 8, 8, 4, 8, 8, 1, 1,
	0, 3, 6, 4};
	TestRel    *t = rel_new(1, "s", "v", DTS_REPLIDENT_FULL, N, cols);
	DtsValue	v[N];
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	int			i;
	size_t		at;

	v[0] = v_int(DTS_ENC_INT2, INT16_MIN);
	v[1] = v_int(DTS_ENC_INT2, INT16_MAX);
	v[2] = v_int(DTS_ENC_INT4, INT32_MIN);
	v[3] = v_int(DTS_ENC_INT4, -2);
	v[4] = v_int(DTS_ENC_INT8, INT64_MIN);
	v[5] = v_int(DTS_ENC_INT8, INT64_MAX);
	v[6] = v_int(DTS_ENC_INT8, -1);
	v[7] = v_bytes(DTS_ENC_FLOAT4, f4_nan, 4);
	v[8] = v_bytes(DTS_ENC_FLOAT8, f8_nan, 8);
	v[9] = v_bytes(DTS_ENC_FLOAT8, f8_negzero, 8);
	v[10] = v_bytes(DTS_ENC_BYTE, &zero, 1);
	v[11] = v_bytes(DTS_ENC_BYTE, &ff, 1);
	v[12] = v_bytes(DTS_ENC_TEXT, "", 0);
	v[13] = v_bytes(DTS_ENC_TEXT, "x\0y", 3);
	v[14] = v_bytes(DTS_ENC_BINARY, bin, sizeof(bin));
	v[15] = v_int(DTS_ENC_INT4, 0);

	msg_begin(&b);
	dts_write_relation(&b, &t->rel);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, 1);
	dts_write_tuple(&b, &t->rel, v, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_UPDATE, 1);
	dts_put_byte(&b, DTS_OLD_FULL);
	dts_write_tuple(&b, &t->rel, v, false);
	dts_write_tuple(&b, &t->rel, v, false);
	dts_frame_finish(&b, at);
	msg = msg_end(&b, &len);

	dts_decoder_init(&dec);
	open_ok(&dec, msg, len);
	next_ok(&dec, &f, DTS_FRAME_RELATION);
	next_ok(&dec, &f, DTS_FRAME_INSERT);
	check_tuple(&f.new_tuple, &t->rel, v, false);
	for (i = 0; i < N; i++)
	{
		uint8_t		out[8];
		const uint8_t *image = NULL;
		size_t		n = dts_value_image(&f.new_tuple.values[i], out, &image);

		ck_assert_uint_eq(n, image_len[i]);
		if (images[i] != NULL)
			ck_assert_mem_eq(image, images[i], n);
	}
	/* the zero int4 image and the text images */
	{
		uint8_t		out[8];
		const uint8_t *image = NULL;

		ck_assert_uint_eq(dts_value_image(&f.new_tuple.values[15], out, &image), 4);
		check_bytes(image, BYTES(0, 0, 0, 0));
		ck_assert_uint_eq(dts_value_image(&f.new_tuple.values[13], out, &image), 3);
		ck_assert_mem_eq(image, "x\0y", 3);
	}
	next_ok(&dec, &f, DTS_FRAME_UPDATE);
	ck_assert_int_eq(f.old_kind, DTS_OLD_FULL);
	check_tuple(&f.old_tuple, &t->rel, v, false);
	check_tuple(&f.new_tuple, &t->rel, v, false);
	end_ok(&dec);
	dts_decoder_free(&dec);
	free(msg);
	free(t);
}
END_TEST

/* UPDATE and DELETE with every old-tuple marker, nulls and unchanged TOAST. */
START_TEST(test_rt_update_delete)
{
	static const ColSpec cols[] = {
		{"a", 23, -1, false, DTS_ENC_INT4},
		{"k1", 25, -1, true, DTS_ENC_TEXT},
		{"b", 25, -1, false, DTS_ENC_TEXT},
		{"c", 17, -1, false, DTS_ENC_BINARY},
		{"k2", 20, -1, true, DTS_ENC_INT8},
		{"d", 25, -1, false, DTS_ENC_TEXT},
		{"e", 25, -1, false, DTS_ENC_TEXT},
		{"f", 25, -1, false, DTS_ENC_TEXT},
		{"g", 25, -1, false, DTS_ENC_TEXT},
	};
	enum {N = 9};
	TestRel    *t = rel_new(7, "public", "ud", DTS_REPLIDENT_DEFAULT, N, cols);
	DtsValue	oldv[N];
	DtsValue	newv[N];
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	size_t		at;
	int			i;

	for (i = 0; i < N; i++)
		newv[i] = v_bytes(DTS_ENC_TEXT, "val", 3);
	newv[0] = v_int(DTS_ENC_INT4, 5);
	newv[2] = v_null();
	newv[3] = v_unchanged();
	newv[4] = v_int(DTS_ENC_INT8, 99);
	newv[8] = v_unchanged();
	newv[6] = v_null();
	memcpy(oldv, newv, sizeof(oldv));
	oldv[1] = v_null();			/* a null key column in an old key */
	oldv[4] = v_int(DTS_ENC_INT8, -99);
	/* junk in the non-key entries of the old key must be ignored */
	oldv[0] = v_unchanged();
	oldv[5] = v_null();

	msg_begin(&b);
	dts_write_relation(&b, &t->rel);
	/* UPDATE N, K, O */
	at = dts_write_change_start(&b, DTS_FRAME_UPDATE, 7);
	dts_put_byte(&b, DTS_OLD_NONE);
	dts_write_tuple(&b, &t->rel, newv, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_UPDATE, 7);
	dts_put_byte(&b, DTS_OLD_KEY);
	dts_write_tuple(&b, &t->rel, oldv, true);
	dts_write_tuple(&b, &t->rel, newv, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_UPDATE, 7);
	dts_put_byte(&b, DTS_OLD_FULL);
	dts_write_tuple(&b, &t->rel, oldv, false);
	dts_write_tuple(&b, &t->rel, newv, false);
	dts_frame_finish(&b, at);
	/* DELETE K, O, N */
	at = dts_write_change_start(&b, DTS_FRAME_DELETE, 7);
	dts_put_byte(&b, DTS_OLD_KEY);
	dts_write_tuple(&b, &t->rel, oldv, true);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_DELETE, 7);
	dts_put_byte(&b, DTS_OLD_FULL);
	dts_write_tuple(&b, &t->rel, oldv, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_DELETE, 7);
	dts_put_byte(&b, DTS_OLD_NONE);
	dts_frame_finish(&b, at);
	msg = msg_end(&b, &len);

	dts_decoder_init(&dec);
	open_ok(&dec, msg, len);
	next_ok(&dec, &f, DTS_FRAME_RELATION);

	next_ok(&dec, &f, DTS_FRAME_UPDATE);
	ck_assert_int_eq(f.old_kind, DTS_OLD_NONE);
	ck_assert_int_eq(f.old_tuple.ncols, 0);
	check_tuple(&f.new_tuple, &t->rel, newv, false);

	next_ok(&dec, &f, DTS_FRAME_UPDATE);
	ck_assert_int_eq(f.old_kind, DTS_OLD_KEY);
	check_tuple(&f.old_tuple, &t->rel, oldv, true);
	check_tuple(&f.new_tuple, &t->rel, newv, false);

	next_ok(&dec, &f, DTS_FRAME_UPDATE);
	ck_assert_int_eq(f.old_kind, DTS_OLD_FULL);
	check_tuple(&f.old_tuple, &t->rel, oldv, false);
	check_tuple(&f.new_tuple, &t->rel, newv, false);

	next_ok(&dec, &f, DTS_FRAME_DELETE);
	ck_assert_int_eq(f.old_kind, DTS_OLD_KEY);
	check_tuple(&f.old_tuple, &t->rel, oldv, true);
	ck_assert_int_eq(f.new_tuple.ncols, 0);

	next_ok(&dec, &f, DTS_FRAME_DELETE);
	ck_assert_int_eq(f.old_kind, DTS_OLD_FULL);
	check_tuple(&f.old_tuple, &t->rel, oldv, false);

	next_ok(&dec, &f, DTS_FRAME_DELETE);
	ck_assert_int_eq(f.old_kind, DTS_OLD_NONE);
	ck_assert_ptr_eq(f.rel, dts_decoder_relation(&dec, 7));
	end_ok(&dec);

	dts_decoder_free(&dec);
	free(msg);
	free(t);
}
END_TEST

/* The plugin's path (statuses + header + raw values) gives the same bytes. */
START_TEST(test_rt_tuple_header_path)
{
	TestRel    *t = rel_new(STD_RELID, "public", "t", DTS_REPLIDENT_DEFAULT,
							STD_NCOLS, std_cols);
	DtsValue	v[STD_NCOLS];
	char		status[STD_NCOLS];
	DtsWriteBuf a;
	DtsWriteBuf b;
	int			i;

	std_row(v, 1, "x");
	v[1] = v_null();
	v[6] = v_unchanged();
	buf_init(&a);
	buf_init(&b);
	dts_write_tuple(&a, &t->rel, v, false);
	for (i = 0; i < STD_NCOLS; i++)
		status[i] = v[i].status;
	dts_put_tuple_header(&b, status, STD_NCOLS);
	dts_put_svarint(&b, 1);
	dts_put_byte(&b, 1);
	dts_put_raw(&b, f4_nan, 4);
	dts_put_raw(&b, f8_negzero, 8);
	dts_put_svarint(&b, -2);
	dts_put_svarint(&b, INT64_MIN);
	ck_assert_uint_eq(a.len, b.len);
	ck_assert_mem_eq(a.data, b.data, a.len);
	/* flags 0x03, null bitmap 0x02, unchanged bitmap 0x40 */
	check_bytes(a.data, BYTES(0x03, 0x02, 0x40));
	free(a.data);
	free(b.data);
	free(t);
}
END_TEST

/* The tuple example of docs/frames.md. */
START_TEST(test_doc_tuple_example)
{
	static const ColSpec cols[] = {
		{"id", 23, -1, true, DTS_ENC_INT4},
		{"name", 25, -1, false, DTS_ENC_TEXT},
		{"note", 25, -1, false, DTS_ENC_TEXT},
	};
	TestRel    *t = rel_new(5, "public", "doc", DTS_REPLIDENT_DEFAULT, 3, cols);
	DtsValue	v[3];
	DtsWriteBuf b;

	v[0] = v_int(DTS_ENC_INT4, 7);
	v[1] = v_null();
	v[2] = v_bytes(DTS_ENC_TEXT, "hi", 2);
	buf_init(&b);
	dts_write_tuple(&b, &t->rel, v, false);
	ck_assert_uint_eq(b.len, 6);
	check_bytes(b.data, BYTES(0x01, 0x02, 0x0E, 0x02, 'h', 'i'));
	b.len = 0;
	{
		size_t		at = dts_write_change_start(&b, DTS_FRAME_DELETE, 5);

		dts_put_byte(&b, DTS_OLD_KEY);
		dts_write_tuple(&b, &t->rel, v, true);
		dts_frame_finish(&b, at);
	}
	ck_assert_uint_eq(b.len, 6);
	check_bytes(b.data, BYTES('D', 4, 5, 'K', 0x00, 0x0E));
	free(b.data);
	free(t);
}
END_TEST

START_TEST(test_rt_zero_columns)
{
	TestRel    *t = rel_new(200, "public", "empty", DTS_REPLIDENT_FULL, 0,
							NULL);
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	size_t		at;

	msg_begin(&b);
	dts_write_relation(&b, &t->rel);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, 200);
	dts_write_tuple(&b, &t->rel, NULL, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_UPDATE, 200);
	dts_put_byte(&b, DTS_OLD_FULL);
	dts_write_tuple(&b, &t->rel, NULL, false);
	dts_write_tuple(&b, &t->rel, NULL, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_DELETE, 200);
	dts_put_byte(&b, DTS_OLD_NONE);
	dts_frame_finish(&b, at);
	msg = msg_end(&b, &len);

	dts_decoder_init(&dec);
	open_ok(&dec, msg, len);
	next_ok(&dec, &f, DTS_FRAME_RELATION);
	check_relation(f.rel, &t->rel);
	next_ok(&dec, &f, DTS_FRAME_INSERT);
	ck_assert_int_eq(f.new_tuple.ncols, 0);
	next_ok(&dec, &f, DTS_FRAME_UPDATE);
	ck_assert_int_eq(f.old_tuple.ncols, 0);
	ck_assert_int_eq(f.new_tuple.ncols, 0);
	next_ok(&dec, &f, DTS_FRAME_DELETE);
	end_ok(&dec);
	dts_decoder_free(&dec);
	free(msg);
	free(t);
}
END_TEST

/* A 1600-column relation: long RELATION frame, long bitmaps, key-only. */
START_TEST(test_rt_1600_columns)
{
	ColSpec    *spec = calloc(DTS_MAX_COLUMNS, sizeof(ColSpec));
	DtsValue   *v = calloc(DTS_MAX_COLUMNS, sizeof(DtsValue));
	static const char encs[] = {DTS_ENC_TEXT, DTS_ENC_INT4, DTS_ENC_BYTE,
	DTS_ENC_FLOAT8};
	TestRel    *t;
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	size_t		at;
	int			i;
	static char names[DTS_MAX_COLUMNS][24];

	for (i = 0; i < DTS_MAX_COLUMNS; i++)
	{
		snprintf(names[i], sizeof(names[i]), "column_%d", i);
		spec[i].name = names[i];
		spec[i].typoid = 25;
		spec[i].typmod = i - 1;
		spec[i].key = (i % 7 == 3);
		spec[i].enc = encs[i % 4];
	}
	t = rel_new(12345, "wide", "t1600", DTS_REPLIDENT_INDEX,
				DTS_MAX_COLUMNS, spec);
	for (i = 0; i < DTS_MAX_COLUMNS; i++)
	{
		if (i % 3 == 0)
			v[i] = v_null();
		else if (i % 5 == 0)
			v[i] = v_unchanged();
		else if (spec[i].enc == DTS_ENC_INT4)
			v[i] = v_int(DTS_ENC_INT4, -i * 1000);
		else if (spec[i].enc == DTS_ENC_FLOAT8)
			v[i] = v_bytes(DTS_ENC_FLOAT8, f8_nan, 8);
		else
			v[i] = v_bytes(spec[i].enc, names[i], spec[i].enc == DTS_ENC_BYTE ? 1 : strlen(names[i]));
	}

	msg_begin(&b);
	dts_write_relation(&b, &t->rel);
	at = dts_write_change_start(&b, DTS_FRAME_UPDATE, 12345);
	dts_put_byte(&b, DTS_OLD_KEY);
	dts_write_tuple(&b, &t->rel, v, true);
	dts_write_tuple(&b, &t->rel, v, false);
	dts_frame_finish(&b, at);
	msg = msg_end(&b, &len);

	dts_decoder_init(&dec);
	open_ok(&dec, msg, len);
	next_ok(&dec, &f, DTS_FRAME_RELATION);
	check_relation(f.rel, &t->rel);
	ck_assert_int_eq(f.rel->nkeys, 229);
	next_ok(&dec, &f, DTS_FRAME_UPDATE);
	check_tuple(&f.old_tuple, &t->rel, v, true);
	check_tuple(&f.new_tuple, &t->rel, v, false);
	end_ok(&dec);
	dts_decoder_free(&dec);
	free(msg);
	free(t);
	free(spec);
	free(v);
}
END_TEST

/*
 * Frame bodies around every varint length boundary, so that
 * dts_frame_finish_long() moves bodies by 1, 2 and 3 bytes.
 */
START_TEST(test_rt_long_bodies)
{
	static const size_t sizes[] = {0, 1, 122, 123, 124, 127, 128, 300, 16377,
	16378, 16379, 16383, 16384, 100000, 2097147, 2097148, 2097149, 3000000};
	enum {NSIZES = sizeof(sizes) / sizeof(sizes[0])};
	uint8_t    *content = malloc(3000000);
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	size_t		i;

	for (i = 0; i < 3000000; i++)
		content[i] = (uint8_t) (i * 7 + (i >> 8));
	msg_begin(&b);
	for (i = 0; i < NSIZES; i++)
	{
		dts_write_message(&b, 0, i, "p", 1, content, sizes[i]);
		dts_write_xid(&b, (uint32_t) i);
	}
	msg = msg_end(&b, &len);

	dts_decoder_init(&dec);
	open_ok(&dec, msg, len);
	for (i = 0; i < NSIZES; i++)
	{
		next_ok(&dec, &f, DTS_FRAME_MESSAGE);
		ck_assert_uint_eq(f.lsn, i);
		ck_assert_uint_eq(f.content.len, sizes[i]);
		ck_assert(memcmp(f.content.data, content, sizes[i]) == 0);
		next_ok(&dec, &f, DTS_FRAME_XID);
		ck_assert_uint_eq(f.xid, i);
	}
	end_ok(&dec);
	dts_decoder_free(&dec);
	free(msg);
	free(content);
}
END_TEST

/* Relations persist across messages and are replaced by newer RELATIONs. */
START_TEST(test_rt_relation_cache)
{
	TestRel    *t1 = rel_new(STD_RELID, "public", "t", DTS_REPLIDENT_DEFAULT,
							 2, std_cols);
	TestRel    *t2 = rel_new(STD_RELID, "public", "t2", DTS_REPLIDENT_FULL,
							 STD_NCOLS, std_cols);
	DtsValue	v[STD_NCOLS];
	DtsWriteBuf b;
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	size_t		at;
	uint32_t	r;

	dts_decoder_init(&dec);

	/* message 1: many relations, so that the cache grows */
	msg_begin(&b);
	for (r = 1; r <= 1000; r++)
	{
		t1->rel.relid = r * 65536;
		dts_write_relation(&b, &t1->rel);
	}
	t1->rel.relid = STD_RELID;
	dts_write_relation(&b, &t1->rel);
	msg = msg_end(&b, &len);
	open_ok(&dec, msg, len);
	while (dts_decoder_next(&dec, &f) == 1)
		;
	ck_assert_str_eq(dec.error, "");
	free(msg);
	for (r = 1; r <= 1000; r++)
		FAST_CHECK(dts_decoder_relation(&dec, r * 65536) != NULL, "relid %u", r);
	ck_assert_int_eq(dts_decoder_relation(&dec, STD_RELID)->ncols, 2);

	/* message 2: an insert against the cached relation, then a new version */
	std_row(v, 3, "three");
	msg_begin(&b);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, STD_RELID);
	dts_write_tuple(&b, &t1->rel, v, false);
	dts_frame_finish(&b, at);
	dts_write_relation(&b, &t2->rel);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, STD_RELID);
	dts_write_tuple(&b, &t2->rel, v, false);
	dts_frame_finish(&b, at);
	msg = msg_end(&b, &len);
	open_ok(&dec, msg, len);
	next_ok(&dec, &f, DTS_FRAME_INSERT);
	check_tuple(&f.new_tuple, &t1->rel, v, false);
	next_ok(&dec, &f, DTS_FRAME_RELATION);
	check_relation(f.rel, &t2->rel);
	next_ok(&dec, &f, DTS_FRAME_INSERT);
	check_relation(f.rel, &t2->rel);
	check_tuple(&f.new_tuple, &t2->rel, v, false);
	end_ok(&dec);
	check_relation(dts_decoder_relation(&dec, STD_RELID), &t2->rel);
	free(msg);

	dts_decoder_free(&dec);
	free(t1);
	free(t2);
}
END_TEST

/* ----------------------------------------------------------------
 *		Rejection of truncated and corrupted messages
 * ----------------------------------------------------------------
 */

/* A message with one frame of every kind. */
static uint8_t *
sample_message(size_t *len)
{
	TestRel    *t = rel_new(STD_RELID, "public", "t", DTS_REPLIDENT_DEFAULT,
							STD_NCOLS, std_cols);
	DtsValue	v[STD_NCOLS];
	DtsWriteBuf b;
	size_t		at;
	static const uint32_t relids[] = {STD_RELID, 9};

	msg_begin(&b);
	dts_write_begin(&b, 1000, 0x16B3748, 700000000000000LL);
	dts_write_origin(&b, 0x1000, "node_a", 6);
	dts_write_relation(&b, &t->rel);
	std_row(v, 1, "one");
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, STD_RELID);
	dts_write_tuple(&b, &t->rel, v, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_UPDATE, STD_RELID);
	dts_put_byte(&b, DTS_OLD_KEY);
	dts_write_tuple(&b, &t->rel, v, true);
	v[1] = v_null();
	v[6] = v_unchanged();
	dts_write_tuple(&b, &t->rel, v, false);
	dts_frame_finish(&b, at);
	at = dts_write_change_start(&b, DTS_FRAME_DELETE, STD_RELID);
	dts_put_byte(&b, DTS_OLD_KEY);
	dts_write_tuple(&b, &t->rel, v, true);
	dts_frame_finish(&b, at);
	dts_write_truncate(&b, DTS_TRUNCATE_CASCADE, 2, relids);
	dts_write_message(&b, DTS_MESSAGE_TRANSACTIONAL, 0x16B3750, "app", 3,
					  "hello", 5);
	dts_write_commit(&b, 1000, 0x16B3748, 0x16B3780, 700000000000000LL);
	dts_write_stream_start(&b, 1001, DTS_STREAM_FIRST_SEGMENT);
	dts_write_xid(&b, 1002);
	dts_write_stream_stop(&b);
	dts_write_stream_abort(&b, 1001, 1002);
	dts_write_stream_commit(&b, 1001, 0x2000000, 0x2000100, -5);
	free(t);
	return msg_end(&b, len);
}

/*
 * Decodes a whole message with a fresh decoder.  Returns 0 when every
 * frame decoded, -1 when the message was rejected somewhere.
 */
static int
decode_all(const uint8_t *msg, size_t len, char *error, size_t errsize)
{
	DtsDecoder	dec;
	DtsFrame	f;
	int			rc;

	dts_decoder_init(&dec);
	rc = dts_decoder_open(&dec, msg, len);
	while (rc == 0 && (rc = dts_decoder_next(&dec, &f)) == 1)
		rc = 0;
	if (error != NULL)
		snprintf(error, errsize, "%s", dec.error);
	dts_decoder_free(&dec);
	return rc < 0 ? -1 : 0;
}

START_TEST(test_sample_is_valid)
{
	size_t		len;
	uint8_t    *msg = sample_message(&len);
	char		error[256];

	ck_assert_msg(decode_all(msg, len, error, sizeof(error)) == 0, "%s", error);
	free(msg);
}
END_TEST

START_TEST(test_reject_every_truncation)
{
	size_t		len;
	uint8_t    *msg = sample_message(&len);
	size_t		n;

	for (n = 0; n < len; n++)
	{
		uint8_t    *cut = malloc(n > 0 ? n : 1);

		memcpy(cut, msg, n);
		FAST_CHECK(decode_all(cut, n, NULL, 0) < 0,
				   "prefix of %zu of %zu bytes accepted", n, len);
		free(cut);
	}
	free(msg);
}
END_TEST

START_TEST(test_reject_every_corruption)
{
	static const uint8_t masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40,
	0x80, 0xFF, 0x55, 0xAA, 0x0F, 0xF0};
	size_t		len;
	uint8_t    *msg = sample_message(&len);
	uint8_t    *bad = malloc(len);
	size_t		pos;
	size_t		m;

	for (pos = 0; pos < len; pos++)
	{
		for (m = 0; m < sizeof(masks); m++)
		{
			memcpy(bad, msg, len);
			bad[pos] ^= masks[m];
			FAST_CHECK(decode_all(bad, len, NULL, 0) < 0,
					   "byte %zu ^ 0x%02x accepted", pos, masks[m]);
		}
	}
	free(bad);
	free(msg);
}
END_TEST

START_TEST(test_reject_message_level)
{
	DtsDecoder	dec;
	size_t		len;
	uint8_t    *msg = sample_message(&len);
	uint8_t    *bad = malloc(len);

	dts_decoder_init(&dec);
	ck_assert_int_eq(dts_decoder_open(&dec, NULL, 0), -1);
	ck_assert_ptr_nonnull(strstr(dec.error, "shorter than the minimum of 7"));
	ck_assert_int_eq(dts_decoder_open(&dec, msg, 6), -1);
	ck_assert_str_eq(dec.error,
					 "message of 6 bytes is shorter than the minimum of 7 bytes");
	/* the size is checked before any byte is read */
	ck_assert_int_eq(dts_decoder_open(&dec, msg, DTS_MSG_MAX_SIZE + 1), -1);
	ck_assert_ptr_nonnull(strstr(dec.error, "exceeds the maximum of"));

	memcpy(bad, msg, len);
	bad[0] = 2;
	reseal(bad, len);
	ck_assert_int_eq(dts_decoder_open(&dec, bad, len), -1);
	ck_assert_str_eq(dec.error, "unsupported message version 2 (expected 1)");

	memcpy(bad, msg, len);
	bad[len - 1] ^= 1;
	ck_assert_int_eq(dts_decoder_open(&dec, bad, len), -1);
	ck_assert_ptr_nonnull(strstr(dec.error, "message checksum mismatch"));

	/* a failed open leaves no message to read */
	ck_assert_int_eq(dts_decoder_next(&dec, &(DtsFrame) {0}), 0);
	dts_decoder_free(&dec);
	free(bad);
	free(msg);
}
END_TEST

/* ----------------------------------------------------------------
 *		Structural errors, with valid CRCs
 * ----------------------------------------------------------------
 */

/* A decoder that knows the standard, 3-column no-key and 0-column relations */
static void
decoder_with_relations(DtsDecoder *dec)
{
	TestRel    *std = rel_new(STD_RELID, "public", "t", DTS_REPLIDENT_DEFAULT,
							  STD_NCOLS, std_cols);
	TestRel    *nokey = rel_new(NOKEY_RELID, "public", "nokey",
								DTS_REPLIDENT_FULL, 3, nokey_cols);
	TestRel    *empty = rel_new(EMPTY_RELID, "public", "empty", DTS_REPLIDENT_NOTHING,
								0, NULL);
	DtsWriteBuf b;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;

	dts_decoder_init(dec);
	msg_begin(&b);
	dts_write_relation(&b, &std->rel);
	dts_write_relation(&b, &nokey->rel);
	dts_write_relation(&b, &empty->rel);
	msg = msg_end(&b, &len);
	open_ok(dec, msg, len);
	while (dts_decoder_next(dec, &f) == 1)
		;
	ck_assert_str_eq(dec->error, "");
	free(msg);
	free(std);
	free(nokey);
	free(empty);
}

/*
 * Seals the message in b, decodes it with a decoder that knows the test
 * relations, and asserts that it is rejected with an error that starts
 * with "frame at offset <offset>: " and contains "expect".
 */
static void
expect_reject(DtsWriteBuf *b, size_t offset, const char *expect)
{
	DtsDecoder	dec;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	int			rc;
	char		prefix[64];

	msg = msg_end(b, &len);
	decoder_with_relations(&dec);
	open_ok(&dec, msg, len);
	while ((rc = dts_decoder_next(&dec, &f)) == 1)
		;
	ck_assert_msg(rc == -1, "accepted; expected \"%s\"", expect);
	snprintf(prefix, sizeof(prefix), "frame at offset %zu: ", offset);
	ck_assert_msg(strncmp(dec.error, prefix, strlen(prefix)) == 0,
				  "error \"%s\" does not start with \"%s\"", dec.error, prefix);
	ck_assert_msg(strstr(dec.error, expect) != NULL,
				  "error \"%s\" does not contain \"%s\"", dec.error, expect);
	/* the rest of the message is dropped */
	ck_assert_int_eq(dts_decoder_next(&dec, &f), 0);
	dts_decoder_free(&dec);
	free(msg);
}

/* One raw frame at offset 1. */
static void
expect_raw_reject(char kind, const uint8_t *body, size_t n, const char *expect)
{
	DtsWriteBuf b;

	msg_begin(&b);
	raw_frame(&b, kind, body, n);
	expect_reject(&b, 1, expect);
}

START_TEST(test_err_frame_layout)
{
	DtsWriteBuf b;

	expect_raw_reject('Z', NULL, 0, "unknown frame kind 0x5a");
	expect_raw_reject(0, NULL, 0, "unknown frame kind 0x00");
	/* body length beyond the message */
	msg_begin(&b);
	dts_put_byte(&b, 'X');
	dts_put_byte(&b, 5);
	dts_put_byte(&b, 1);
	expect_reject(&b, 1, "body length 5 exceeds the 1 bytes left in the message");
	/* body length varint cut by the end of the message */
	msg_begin(&b);
	dts_write_stream_stop(&b);
	dts_put_byte(&b, 'X');
	dts_put_byte(&b, 0x85);
	expect_reject(&b, 3, "body length: varint runs past the end of the frame");
	/* a kind byte alone */
	msg_begin(&b);
	dts_write_stream_stop(&b);
	dts_put_byte(&b, 'E');
	expect_reject(&b, 3, "body length: varint runs past the end");
	/* non-minimal body length */
	msg_begin(&b);
	dts_put_byte(&b, 'E');
	dts_put_byte(&b, 0x80);
	dts_put_byte(&b, 0x00);
	expect_reject(&b, 1, "body length: varint is not minimally encoded");
	/* trailing bytes inside a body */
	expect_raw_reject('B', BYTES(1, 2, 3, 4),
					  "1 unread bytes after the end of the body");
	expect_raw_reject('E', BYTES(0), "1 unread bytes after the end of the body");
	/* a body cut short */
	expect_raw_reject('C', BYTES(0, 1, 2), "end lsn: varint runs past the end of the frame");
	/* the offset names the failing frame, not the first one */
	msg_begin(&b);
	dts_write_begin(&b, 1, 2, 3);	/* 1 + 2 + 3 bytes */
	dts_write_xid(&b, 5);		/* 3 bytes */
	raw_frame(&b, 'X', BYTES(0x80, 0x80, 0x80, 0x80, 0x10));
	expect_reject(&b, 9, "xid 4294967296 does not fit 32 bits");
}
END_TEST

START_TEST(test_err_varints)
{
	expect_raw_reject('X', BYTES(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
								 0x80, 0x80, 0x80, 0x00),
					  "xid: varint is longer than 10 bytes");
	expect_raw_reject('B', BYTES(1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
								 0xFF, 0xFF, 0x02, 0),
					  "final lsn: varint overflows 64 bits");
	expect_raw_reject('X', BYTES(0x85, 0x00), "xid: varint is not minimally encoded");
	expect_raw_reject('B', BYTES(1, 1, 0x81, 0x80, 0x00),
					  "commit time: varint is not minimally encoded");
	expect_raw_reject('X', BYTES(0x85), "xid: varint runs past the end of the frame");
	expect_raw_reject('X', BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0x1F),
					  "xid 8589934591 does not fit 32 bits");
	expect_raw_reject('A', BYTES(1, 0x80, 0x80, 0x80, 0x80, 0x10),
					  "subxid 4294967296 does not fit 32 bits");
	expect_raw_reject('I', BYTES(0x80, 0x80, 0x80, 0x80, 0x10, 0),
					  "relid 4294967296 does not fit 32 bits");
	/* the largest valid varint is accepted */
	{
		DtsWriteBuf b;
		uint8_t    *msg;
		size_t		len;

		msg_begin(&b);
		raw_frame(&b, 'O', BYTES(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
								 0xFF, 0xFF, 0x01, 0));
		msg = msg_end(&b, &len);
		ck_assert_int_eq(decode_all(msg, len, NULL, 0), 0);
		free(msg);
	}
}
END_TEST

START_TEST(test_err_strings)
{
	expect_raw_reject('O', BYTES(1, 100, 'a', 'b'),
					  "origin name: length 100 exceeds the 2 bytes left in the frame");
	expect_raw_reject('M', BYTES(0, 1, 1, 'p', 2, 'c'),
					  "content: length 2 exceeds the 1 bytes left in the frame");
	expect_raw_reject('M', BYTES(0, 1, 0x80), "prefix: varint runs past the end");
	expect_raw_reject('R', BYTES(5, 2, 'a', 0, 1, 't', 'd', 0),
					  "schema contains a zero byte");
	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 0, 'd', 0),
					  "table contains a zero byte");
	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 't', 'd', 1,
								 0, 2, 'x', 0, 23, 1, '4'),
					  "column 1: name contains a zero byte");
}
END_TEST

START_TEST(test_err_reserved_flags)
{
	expect_raw_reject('C', BYTES(1, 1, 1, 1, 0), "flags: reserved bits 0x01 are set");
	expect_raw_reject('T', BYTES(0x04, 0), "flags: reserved bits 0x04 are set");
	expect_raw_reject('T', BYTES(0xFF, 0), "flags: reserved bits 0xfc are set");
	expect_raw_reject('M', BYTES(0x02, 0, 0, 0), "flags: reserved bits 0x02 are set");
	expect_raw_reject('S', BYTES(1, 0x80), "flags: reserved bits 0x80 are set");
	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 't', 'd', 1,
								 0x03, 1, 'x', 23, 1, '4'),
					  "column 1: flags: reserved bits 0x02 are set");
	expect_raw_reject('I', BYTES(STD_RELID, 0x04),
					  "new tuple: flags: reserved bits 0x04 are set");
	expect_raw_reject('D', BYTES(STD_RELID, 'O', 0x80),
					  "old tuple: flags: reserved bits 0x80 are set");
}
END_TEST

START_TEST(test_err_relation)
{
	DtsWriteBuf b;
	size_t		at;
	int			i;

	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 't', 'z', 0),
					  "unknown replica identity 0x7a");
	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 't', 'd', 1,
								 0, 1, 'x', 23, 1, 'x'),
					  "column 1: unknown value encoding 0x78");
	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 't', 'd', 0xC1, 0x0C),
					  "ncols 1601 exceeds the maximum of 1600");
	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 't', 'd', 2,
								 0, 1, 'x', 23, 1, '4'),
					  "column 2: flags: byte runs past the end of the frame");
	expect_raw_reject('R', BYTES(5, 1, 'a', 1, 't', 'd', 1,
								 0, 1, 'x', 0x80, 0x80, 0x80, 0x80, 0x10, 1, '4'),
					  "column 1: type oid 4294967296 does not fit 32 bits");

	/* typmod out of int32 range, both ways */
	msg_begin(&b);
	at = dts_frame_start(&b, DTS_FRAME_RELATION);
	dts_put_varint(&b, 5);
	dts_put_string(&b, "a", 1);
	dts_put_string(&b, "t", 1);
	dts_put_byte(&b, 'f');
	dts_put_varint(&b, 2);
	dts_put_byte(&b, 0);
	dts_put_string(&b, "x", 1);
	dts_put_varint(&b, 23);
	dts_put_svarint(&b, INT32_MIN);
	dts_put_byte(&b, 't');
	dts_put_byte(&b, 0);
	dts_put_string(&b, "y", 1);
	dts_put_varint(&b, 23);
	dts_put_svarint(&b, (int64_t) INT32_MIN - 1);
	dts_put_byte(&b, 't');
	dts_frame_finish(&b, at);
	expect_reject(&b, 1, "column 2: typmod -2147483649 does not fit 32 bits");

	msg_begin(&b);
	at = dts_frame_start(&b, DTS_FRAME_RELATION);
	dts_put_varint(&b, 5);
	dts_put_string(&b, "a", 1);
	dts_put_string(&b, "t", 1);
	dts_put_byte(&b, 'f');
	dts_put_varint(&b, 1);
	dts_put_byte(&b, 0);
	dts_put_string(&b, "x", 1);
	dts_put_varint(&b, 23);
	dts_put_svarint(&b, (int64_t) INT32_MAX + 1);
	dts_put_byte(&b, 't');
	dts_frame_finish(&b, at);
	expect_reject(&b, 1, "typmod 2147483648 does not fit 32 bits");

	/* a long RELATION frame broken at its last column */
	msg_begin(&b);
	at = dts_frame_start(&b, DTS_FRAME_RELATION);
	dts_put_varint(&b, 5);
	dts_put_string(&b, "a", 1);
	dts_put_string(&b, "t", 1);
	dts_put_byte(&b, 'f');
	dts_put_varint(&b, DTS_MAX_COLUMNS);
	for (i = 0; i < DTS_MAX_COLUMNS; i++)
	{
		dts_put_byte(&b, 0);
		dts_put_string(&b, "col", 3);
		dts_put_varint(&b, 23);
		dts_put_svarint(&b, -1);
		dts_put_byte(&b, i == DTS_MAX_COLUMNS - 1 ? '?' : '4');
	}
	dts_frame_finish(&b, at);
	expect_reject(&b, 1, "column 1600: unknown value encoding 0x3f");
}
END_TEST

/* A RELATION that fails leaves the cached version in place. */
START_TEST(test_err_relation_not_replaced)
{
	DtsDecoder	dec;
	DtsWriteBuf b;
	DtsFrame	f;
	uint8_t    *msg;
	size_t		len;
	TestRel    *t = rel_new(STD_RELID, "other", "t", DTS_REPLIDENT_FULL, 1,
							std_cols);
	size_t		at;

	decoder_with_relations(&dec);
	msg_begin(&b);
	at = dts_frame_start(&b, DTS_FRAME_RELATION);
	dts_put_varint(&b, STD_RELID);
	dts_put_string(&b, "other", 5);
	dts_put_string(&b, "t", 1);
	dts_put_byte(&b, 'f');
	dts_put_varint(&b, 0);
	dts_put_byte(&b, 0);		/* trailing byte */
	dts_frame_finish(&b, at);
	msg = msg_end(&b, &len);
	open_ok(&dec, msg, len);
	ck_assert_int_eq(dts_decoder_next(&dec, &f), -1);
	ck_assert_ptr_nonnull(strstr(dec.error, "1 unread bytes"));
	ck_assert_int_eq(dts_decoder_relation(&dec, STD_RELID)->ncols, STD_NCOLS);
	ck_assert_str_eq(dts_decoder_relation(&dec, STD_RELID)->schema, "public");
	free(msg);
	free(t);
	dts_decoder_free(&dec);
}
END_TEST

START_TEST(test_err_changes)
{
	expect_raw_reject('I', BYTES(0xE7, 0x07, 0),
					  "relation 999 was not described earlier in the stream");
	expect_raw_reject('D', BYTES(42, 'N'),
					  "relation 42 was not described earlier in the stream");
	expect_raw_reject('U', BYTES(STD_RELID, 'Q', 0), "unknown old tuple marker 0x51");
	expect_raw_reject('D', BYTES(STD_RELID, 'n'), "unknown old tuple marker 0x6e");
	expect_raw_reject('D', BYTES(STD_RELID), "old tuple marker: byte runs past the end");
	/* INSERT has no marker: one is read as tuple flags */
	expect_raw_reject('I', BYTES(NOKEY_RELID, 'N', 0, 0, 0),
					  "new tuple: flags: reserved bits 0x4c are set");
	/* key-only old tuple of a relation without key columns */
	expect_raw_reject('D', BYTES(NOKEY_RELID, 'K', 0),
					  "key-only old tuple, but relation 30 has no key columns");
	expect_raw_reject('U', BYTES(EMPTY_RELID, 'K', 0, 0),
					  "key-only old tuple, but relation 20 has no key columns");
	/* UPDATE without its new tuple */
	expect_raw_reject('U', BYTES(NOKEY_RELID, 'N'),
					  "new tuple: flags: byte runs past the end of the frame");
	/* DELETE with a new tuple too */
	expect_raw_reject('D', BYTES(NOKEY_RELID, 'N', 0, 0, 0, 0),
					  "4 unread bytes after the end of the body");
}
END_TEST

START_TEST(test_err_bitmaps)
{
	/* 3 columns: bits 3..7 are padding */
	expect_raw_reject('I', BYTES(NOKEY_RELID, DTS_TUPLE_HAS_NULLS, 0x08),
					  "new tuple: null bitmap: padding bits are not zero");
	expect_raw_reject('I', BYTES(NOKEY_RELID, DTS_TUPLE_HAS_UNCHANGED, 0x80),
					  "new tuple: unchanged bitmap: padding bits are not zero");
	expect_raw_reject('I', BYTES(NOKEY_RELID, DTS_TUPLE_HAS_NULLS),
					  "null bitmap: 1 bytes needed but only 0 left in the frame");
	expect_raw_reject('D', BYTES(NOKEY_RELID, 'O', 3, 0x03, 0x06),
					  "old tuple: column 2 \"b\": value is both null and unchanged");
	/* the key-only bitmap has nkeys (1) bits, not ncols */
	expect_raw_reject('D', BYTES(STD_RELID, 'K', DTS_TUPLE_HAS_NULLS, 0x02),
					  "old tuple: null bitmap: padding bits are not zero");
	/* 8 columns: a full byte, no padding; the values are then missing */
	expect_raw_reject('I', BYTES(STD_RELID, DTS_TUPLE_HAS_NULLS, 0x7F),
					  "new tuple: column 8 \"big\": value: varint runs past the end of the frame");
}
END_TEST

START_TEST(test_err_values)
{
	DtsWriteBuf b;
	size_t		at;

	/* id INT4 key, name TEXT, flag BYTE, f4, f8, s INT2, raw BINARY, big INT8 */
	msg_begin(&b);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, STD_RELID);
	dts_put_byte(&b, DTS_TUPLE_HAS_NULLS);
	dts_put_byte(&b, 0xFE);
	dts_put_svarint(&b, (int64_t) INT32_MAX + 1);
	dts_frame_finish(&b, at);
	expect_reject(&b, 1, "new tuple: column 1 \"id\": int4 value 2147483648 is out of range");

	msg_begin(&b);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, STD_RELID);
	dts_put_byte(&b, DTS_TUPLE_HAS_NULLS);
	dts_put_byte(&b, 0xFE);
	dts_put_svarint(&b, (int64_t) INT32_MIN - 1);
	dts_frame_finish(&b, at);
	expect_reject(&b, 1, "int4 value -2147483649 is out of range");

	msg_begin(&b);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, STD_RELID);
	dts_put_byte(&b, DTS_TUPLE_HAS_NULLS);
	dts_put_byte(&b, 0xDF);		/* only s (column 6) is present */
	dts_put_svarint(&b, 32768);
	dts_frame_finish(&b, at);
	expect_reject(&b, 1, "column 6 \"s\": int2 value 32768 is out of range");

	msg_begin(&b);
	at = dts_write_change_start(&b, DTS_FRAME_INSERT, STD_RELID);
	dts_put_byte(&b, DTS_TUPLE_HAS_NULLS);
	dts_put_byte(&b, 0xDF);
	dts_put_svarint(&b, -32769);
	dts_frame_finish(&b, at);
	expect_reject(&b, 1, "int2 value -32769 is out of range");

	/* fixed-width values cut short */
	expect_raw_reject('I', BYTES(STD_RELID, DTS_TUPLE_HAS_NULLS, 0xEF, 1, 2, 3),
					  "column 5 \"f8\": value: 8 bytes needed but only 3 left in the frame");
	expect_raw_reject('I', BYTES(STD_RELID, DTS_TUPLE_HAS_NULLS, 0xF7, 1),
					  "column 4 \"f4\": value: 4 bytes needed but only 1 left");
	expect_raw_reject('I', BYTES(STD_RELID, DTS_TUPLE_HAS_NULLS, 0xFB),
					  "column 3 \"flag\": value: 1 bytes needed but only 0 left");
	expect_raw_reject('I', BYTES(STD_RELID, DTS_TUPLE_HAS_NULLS, 0xBF, 9, 1),
					  "column 7 \"raw\": value: length 9 exceeds the 1 bytes left");
	expect_raw_reject('I', BYTES(STD_RELID, DTS_TUPLE_HAS_NULLS, 0xFD, 0x80, 0x00),
					  "column 2 \"name\": value: varint is not minimally encoded");
}
END_TEST

START_TEST(test_err_truncate)
{
	expect_raw_reject('T', BYTES(0, 5, 1, 2), "nrelids 5 exceeds the 2 bytes left in the frame");
	expect_raw_reject('T', BYTES(0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1),
					  "nrelids 4294967295 exceeds the 1 bytes left in the frame");
	expect_raw_reject('T', BYTES(0, 2, 0x80, 0x80),
					  "relid: varint runs past the end of the frame");
	expect_raw_reject('T', BYTES(0, 1, 0x80, 0x80, 0x80, 0x80, 0x10),
					  "relid 4294967296 does not fit 32 bits");
}
END_TEST

/* ----------------------------------------------------------------
 *		Structural fuzz
 * ----------------------------------------------------------------
 */

typedef struct Rng
{
	uint64_t	s;
} Rng;

static uint64_t
rng_next(Rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545F4914F6CDD1DULL;
}

static size_t
rng_below(Rng *r, size_t n)
{
	return n == 0 ? 0 : (size_t) (rng_next(r) % n);
}

static bool
in_message(const DtsSlice *s, const uint8_t *msg, size_t len)
{
	if (s->len == 0)
		return true;
	return s->data >= msg && s->len <= len &&
		(size_t) (s->data - msg) <= len - s->len;
}

/* Sums the bytes of a slice, so that valgrind sees every byte read. */
static unsigned
touch(const DtsSlice *s)
{
	unsigned	sum = 0;
	size_t		i;

	for (i = 0; i < s->len; i++)
		sum += s->data[i];
	return sum;
}

/* Asserts that a decoded tuple is consistent with its relation. */
static unsigned
check_fuzz_tuple(const DtsTuple *t, const DtsRelation *rel, bool key_only,
				 const uint8_t *msg, size_t len)
{
	unsigned	sum = 0;
	int			i;

	FAST_CHECK(t->ncols == rel->ncols, "tuple ncols");
	for (i = 0; i < t->ncols; i++)
	{
		const DtsValue *v = &t->values[i];
		char		enc = rel->columns[i].encoding;

		FAST_CHECK(v->encoding == enc, "value encoding");
		if (key_only && !rel->columns[i].key)
		{
			FAST_CHECK(v->status == DTS_VALUE_ABSENT, "non-key not absent");
			continue;
		}
		FAST_CHECK(v->status == DTS_VALUE_PRESENT ||
				   v->status == DTS_VALUE_NULL ||
				   v->status == DTS_VALUE_UNCHANGED, "value status");
		if (v->status != DTS_VALUE_PRESENT)
			continue;
		FAST_CHECK(in_message(&v->bytes, msg, len), "value outside message");
		sum += touch(&v->bytes);
		if (enc == DTS_ENC_INT2)
			FAST_CHECK(v->ival >= INT16_MIN && v->ival <= INT16_MAX, "int2");
		if (enc == DTS_ENC_INT4)
			FAST_CHECK(v->ival >= INT32_MIN && v->ival <= INT32_MAX, "int4");
		if (enc == DTS_ENC_BYTE)
			FAST_CHECK(v->bytes.len == 1, "byte length");
		if (enc == DTS_ENC_FLOAT4)
			FAST_CHECK(v->bytes.len == 4, "float4 length");
		if (enc == DTS_ENC_FLOAT8)
			FAST_CHECK(v->bytes.len == 8, "float8 length");
		if (enc != DTS_ENC_TEXT)
		{
			uint8_t		out[8];
			const uint8_t *image;
			size_t		n = dts_value_image(v, out, &image);

			sum += n > 0 ? image[n - 1] : 0;
		}
	}
	return sum;
}

/* Asserts that a decoded frame is consistent. */
static unsigned
check_fuzz_frame(const DtsFrame *f, const uint8_t *msg, size_t len)
{
	unsigned	sum = 0;
	int			i;

	switch (f->kind)
	{
		case DTS_FRAME_RELATION:
			{
				int			nkeys = 0;

				FAST_CHECK(f->rel != NULL, "relation");
				FAST_CHECK(f->rel->ncols >= 0 && f->rel->ncols <= DTS_MAX_COLUMNS,
						   "ncols");
				sum += (unsigned) strlen(f->rel->schema) + strlen(f->rel->table);
				for (i = 0; i < f->rel->ncols; i++)
				{
					sum += (unsigned) strlen(f->rel->columns[i].name);
					nkeys += f->rel->columns[i].key;
				}
				FAST_CHECK(nkeys == f->rel->nkeys, "nkeys");
				break;
			}
		case DTS_FRAME_INSERT:
		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
			FAST_CHECK(f->rel != NULL, "change without relation");
			if (f->kind != DTS_FRAME_INSERT && f->old_kind != DTS_OLD_NONE)
				sum += check_fuzz_tuple(&f->old_tuple, f->rel,
										f->old_kind == DTS_OLD_KEY, msg, len);
			if (f->kind != DTS_FRAME_DELETE)
				sum += check_fuzz_tuple(&f->new_tuple, f->rel, false, msg, len);
			break;
		case DTS_FRAME_TRUNCATE:
			for (i = 0; i < f->nrelids; i++)
				sum += f->relids[i];
			break;
		case DTS_FRAME_ORIGIN:
			FAST_CHECK(in_message(&f->origin, msg, len), "origin");
			sum += touch(&f->origin);
			break;
		case DTS_FRAME_MESSAGE:
			FAST_CHECK(in_message(&f->prefix, msg, len), "prefix");
			FAST_CHECK(in_message(&f->content, msg, len), "content");
			sum += touch(&f->prefix) + touch(&f->content);
			break;
		case DTS_FRAME_BEGIN:
		case DTS_FRAME_COMMIT:
		case DTS_FRAME_STREAM_START:
		case DTS_FRAME_STREAM_STOP:
		case DTS_FRAME_STREAM_COMMIT:
		case DTS_FRAME_STREAM_ABORT:
		case DTS_FRAME_XID:
			break;
		default:
			ck_abort_msg("unknown kind %d returned", f->kind);
	}
	return sum;
}

/* Re-encodes a decoded frame with the writer. */
static void
write_frame(DtsWriteBuf *b, const DtsFrame *f)
{
	size_t		at;

	switch (f->kind)
	{
		case DTS_FRAME_BEGIN:
			dts_write_begin(b, f->xid, f->lsn, f->commit_time);
			break;
		case DTS_FRAME_COMMIT:
			dts_write_commit(b, f->xid, f->lsn, f->end_lsn, f->commit_time);
			break;
		case DTS_FRAME_ORIGIN:
			dts_write_origin(b, f->lsn, (const char *) f->origin.data,
							 f->origin.len);
			break;
		case DTS_FRAME_RELATION:
			dts_write_relation(b, f->rel);
			break;
		case DTS_FRAME_INSERT:
		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
			at = dts_write_change_start(b, f->kind, f->rel->relid);
			if (f->kind != DTS_FRAME_INSERT)
			{
				dts_put_byte(b, (uint8_t) f->old_kind);
				if (f->old_kind != DTS_OLD_NONE)
					dts_write_tuple(b, f->rel, f->old_tuple.values,
									f->old_kind == DTS_OLD_KEY);
			}
			if (f->kind != DTS_FRAME_DELETE)
				dts_write_tuple(b, f->rel, f->new_tuple.values, false);
			dts_frame_finish(b, at);
			break;
		case DTS_FRAME_TRUNCATE:
			dts_write_truncate(b, f->flags, f->nrelids, f->relids);
			break;
		case DTS_FRAME_MESSAGE:
			dts_write_message(b, f->flags, f->lsn,
							  (const char *) f->prefix.data, f->prefix.len,
							  f->content.data, f->content.len);
			break;
		case DTS_FRAME_STREAM_START:
			dts_write_stream_start(b, f->xid, f->flags);
			break;
		case DTS_FRAME_STREAM_STOP:
			dts_write_stream_stop(b);
			break;
		case DTS_FRAME_STREAM_COMMIT:
			dts_write_stream_commit(b, f->xid, f->lsn, f->end_lsn,
									f->commit_time);
			break;
		case DTS_FRAME_STREAM_ABORT:
			dts_write_stream_abort(b, f->xid, f->subxid);
			break;
		case DTS_FRAME_XID:
			dts_write_xid(b, f->xid);
			break;
	}
}

static bool
slices_equal(const DtsSlice *a, const DtsSlice *b)
{
	return a->len == b->len &&
		(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static bool
tuples_equal(const DtsTuple *a, const DtsTuple *b)
{
	int			i;

	if (a->ncols != b->ncols)
		return false;
	for (i = 0; i < a->ncols; i++)
	{
		const DtsValue *x = &a->values[i];
		const DtsValue *y = &b->values[i];

		if (x->status != y->status || x->encoding != y->encoding ||
			x->ival != y->ival || !slices_equal(&x->bytes, &y->bytes))
			return false;
	}
	return true;
}

static bool
relations_equal(const DtsRelation *a, const DtsRelation *b)
{
	int			i;

	if (a->relid != b->relid || strcmp(a->schema, b->schema) != 0 ||
		strcmp(a->table, b->table) != 0 || a->replident != b->replident ||
		a->ncols != b->ncols || a->nkeys != b->nkeys)
		return false;
	for (i = 0; i < a->ncols; i++)
	{
		const DtsColumn *x = &a->columns[i];
		const DtsColumn *y = &b->columns[i];

		if (strcmp(x->name, y->name) != 0 || x->typoid != y->typoid ||
			x->typmod != y->typmod || x->key != y->key ||
			x->encoding != y->encoding)
			return false;
	}
	return true;
}

static bool
frames_equal(const DtsFrame *a, const DtsFrame *b)
{
	if (a->kind != b->kind || a->xid != b->xid || a->subxid != b->subxid ||
		a->lsn != b->lsn || a->end_lsn != b->end_lsn ||
		a->commit_time != b->commit_time || a->flags != b->flags ||
		a->old_kind != b->old_kind || a->nrelids != b->nrelids ||
		!slices_equal(&a->origin, &b->origin) ||
		!slices_equal(&a->prefix, &b->prefix) ||
		!slices_equal(&a->content, &b->content))
		return false;
	if ((a->rel == NULL) != (b->rel == NULL) ||
		(a->rel != NULL && !relations_equal(a->rel, b->rel)))
		return false;
	if (a->nrelids > 0 &&
		memcmp(a->relids, b->relids, a->nrelids * sizeof(uint32_t)) != 0)
		return false;
	return tuples_equal(&a->old_tuple, &b->old_tuple) &&
		tuples_equal(&a->new_tuple, &b->new_tuple);
}

/*
 * A frame that decoded from fuzzed input must survive writing and reading
 * again unchanged: the reader never accepts what the writer cannot say.
 */
static void
check_reencode(const DtsFrame *f, DtsDecoder *dec2)
{
	DtsWriteBuf b;
	DtsFrame	g;
	uint8_t    *msg;
	size_t		len;
	bool		change = f->kind == DTS_FRAME_INSERT ||
		f->kind == DTS_FRAME_UPDATE || f->kind == DTS_FRAME_DELETE;

	msg_begin(&b);
	if (change)
		dts_write_relation(&b, f->rel);
	write_frame(&b, f);
	msg = msg_end(&b, &len);
	FAST_CHECK(dts_decoder_open(dec2, msg, len) == 0, "reopen: %s",
			   dec2->error);
	if (change)
		FAST_CHECK(dts_decoder_next(dec2, &g) == 1, "re-read relation: %s",
				   dec2->error);
	FAST_CHECK(dts_decoder_next(dec2, &g) == 1, "re-read: %s", dec2->error);
	FAST_CHECK(frames_equal(f, &g), "frame '%c' changed by a round trip",
			   f->kind);
	FAST_CHECK(dts_decoder_next(dec2, &g) == 0, "re-read end");
	free(msg);
}

/* Decodes one fuzzed message; returns the number of frames decoded. */
static int
fuzz_one(DtsDecoder *dec, DtsDecoder *dec2, const uint8_t *msg, size_t len,
		 unsigned *sum)
{
	DtsFrame	f;
	int			rc;
	int			n = 0;

	if (dts_decoder_open(dec, msg, len) < 0)
		return 0;
	while ((rc = dts_decoder_next(dec, &f)) == 1)
	{
		*sum += check_fuzz_frame(&f, msg, len);
		check_reencode(&f, dec2);
		n++;
	}
	FAST_CHECK(rc == 0 || strncmp(dec->error, "frame at offset ", 16) == 0,
			   "error format: %s", dec->error);
	FAST_CHECK(rc == 0 || strlen(dec->error) < sizeof(dec->error), "error");
	return n;
}

/* Applies one random mutation to msg[0 .. *len) (capacity cap). */
static void
mutate(Rng *r, uint8_t *msg, size_t *len, size_t cap)
{
	static const uint8_t interesting[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, 'N',
	'K', 'O', 0x03, 0x08};
	size_t		body = *len > 5 ? *len - 4 : 1;	/* keep off the CRC */
	size_t		pos = 1 + rng_below(r, body - 1);
	size_t		n;

	switch (rng_below(r, 7))
	{
		case 0:				/* flip a bit */
			msg[pos] ^= (uint8_t) (1 << rng_below(r, 8));
			break;
		case 1:				/* random byte */
			msg[pos] = (uint8_t) rng_next(r);
			break;
		case 2:				/* interesting byte */
			msg[pos] = interesting[rng_below(r, sizeof(interesting))];
			break;
		case 3:				/* delete bytes */
			n = 1 + rng_below(r, 4);
			if (pos + n <= *len)
			{
				memmove(msg + pos, msg + pos + n, *len - pos - n);
				*len -= n;
			}
			break;
		case 4:				/* insert a byte */
			if (*len < cap)
			{
				memmove(msg + pos + 1, msg + pos, *len - pos);
				msg[pos] = interesting[rng_below(r, sizeof(interesting))];
				(*len)++;
			}
			break;
		case 5:				/* truncate, keeping room for a CRC */
			*len = 1 + rng_below(r, *len) + DTS_MSG_TRAILER_SIZE;
			if (*len > cap)
				*len = cap;
			break;
		case 6:				/* add or subtract a small number */
			msg[pos] += (uint8_t) (rng_below(r, 7) - 3);
			break;
	}
}

static long
fuzz_iterations(void)
{
	const char *s = getenv("DTS_FUZZ_ITERATIONS");

	return s != NULL ? atol(s) : 100000;
}

/* A random byte, biased towards small values and frame kinds. */
static uint8_t
random_byte(Rng *r)
{
	uint64_t	x = rng_next(r);

	switch (x & 3)
	{
		case 0:
			return (uint8_t) (x >> 8);
		case 1:
			return (uint8_t) ((x >> 8) & 7);
		case 2:
			return (uint8_t) "BCORIUDTMSEcAXNKOdnfit1248fd"[(x >> 8) % 28];
	}
	return (uint8_t) ((x >> 8) & 0x7F);
}

/*
 * Random messages: either bytes at random, or a sequence of frames with a
 * known kind, a correct body length and a random body.  Most get a valid
 * version byte and CRC so that the frame decoder sees them.
 */
START_TEST(test_fuzz_garbage)
{
	Rng			r = {0x9E3779B97F4A7C15ULL};
	DtsDecoder	dec;
	DtsDecoder	dec2;
	unsigned	sum = 0;
	long		iters = fuzz_iterations() / 4;
	long		i;
	long		frames = 0;
	uint8_t		scratch[160];

	decoder_with_relations(&dec);
	dts_decoder_init(&dec2);
	for (i = 0; i < iters; i++)
	{
		size_t		len = 0;
		uint8_t    *msg;

		if (i & 1)
		{
			len = rng_below(&r, 129);
			size_t		j;

			for (j = 0; j < len; j++)
				scratch[j] = random_byte(&r);
		}
		else
		{
			scratch[len++] = DTS_FRAME_VERSION;
			while (len < 120 && rng_below(&r, 6) != 0)
			{
				size_t		body = rng_below(&r, 1 + rng_below(&r, 24));

				scratch[len++] = (uint8_t) "BCORIUDTMSEcAX"[rng_below(&r, 14)];
				scratch[len++] = (uint8_t) body;
				while (body-- > 0)
					scratch[len++] = random_byte(&r);
			}
			len += DTS_MSG_TRAILER_SIZE;
		}
		if (len > 0 && (i & 7) != 1)
			scratch[0] = DTS_FRAME_VERSION;
		if ((i & 15) != 3)
			reseal(scratch, len);
		msg = malloc(len > 0 ? len : 1);
		memcpy(msg, scratch, len);
		frames += fuzz_one(&dec, &dec2, msg, len, &sum);
		free(msg);
	}
	dts_decoder_free(&dec);
	dts_decoder_free(&dec2);
	ck_assert_int_gt(frames, 0);
	(void) sum;
}
END_TEST

START_TEST(test_fuzz_mutations)
{
	Rng			r = {0x243F6A8885A308D3ULL};
	DtsDecoder	dec;
	DtsDecoder	dec2;
	size_t		seed_len;
	uint8_t    *seed = sample_message(&seed_len);
	size_t		cap = seed_len + 64;
	uint8_t    *work = malloc(cap);
	unsigned	sum = 0;
	long		iters = fuzz_iterations() * 3 / 4;
	long		i;
	long		frames = 0;
	long		rejected = 0;

	decoder_with_relations(&dec);
	dts_decoder_init(&dec2);
	for (i = 0; i < iters; i++)
	{
		size_t		len = seed_len;
		int			nmut = 1 + (int) rng_below(&r, 4);
		uint8_t    *msg;
		int			k;

		memcpy(work, seed, seed_len);
		for (k = 0; k < nmut; k++)
			mutate(&r, work, &len, cap);
		reseal(work, len);
		msg = malloc(len > 0 ? len : 1);
		memcpy(msg, work, len);
		k = fuzz_one(&dec, &dec2, msg, len, &sum);
		frames += k;
		if (dec.error[0] != '\0')
			rejected++;
		dec.error[0] = '\0';
		free(msg);
	}
	dts_decoder_free(&dec);
	dts_decoder_free(&dec2);
	free(work);
	free(seed);
	ck_assert_int_gt(frames, 0);
	ck_assert_int_gt(rejected, 0);
	(void) sum;
}
END_TEST

/* ----------------------------------------------------------------
 *		Runner
 * ----------------------------------------------------------------
 */

static Suite *
frame_suite(void)
{
	Suite	   *s = suite_create("frame");
	TCase	   *tc;

	tc = tcase_create("crc_varint");
	tcase_add_test(tc, test_crc_check_value);
	tcase_add_test(tc, test_crc_against_reference);
	tcase_add_test(tc, test_varint_bytes);
	tcase_add_test(tc, test_message_golden_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("round_trip");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_rt_transaction_frames);
	tcase_add_test(tc, test_rt_relation);
	tcase_add_test(tc, test_rt_values);
	tcase_add_test(tc, test_rt_update_delete);
	tcase_add_test(tc, test_rt_tuple_header_path);
	tcase_add_test(tc, test_doc_tuple_example);
	tcase_add_test(tc, test_rt_zero_columns);
	tcase_add_test(tc, test_rt_1600_columns);
	tcase_add_test(tc, test_rt_long_bodies);
	tcase_add_test(tc, test_rt_relation_cache);
	suite_add_tcase(s, tc);

	tc = tcase_create("reject");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sample_is_valid);
	tcase_add_test(tc, test_reject_every_truncation);
	tcase_add_test(tc, test_reject_every_corruption);
	tcase_add_test(tc, test_reject_message_level);
	suite_add_tcase(s, tc);

	tc = tcase_create("structure");
	tcase_add_test(tc, test_err_frame_layout);
	tcase_add_test(tc, test_err_varints);
	tcase_add_test(tc, test_err_strings);
	tcase_add_test(tc, test_err_reserved_flags);
	tcase_add_test(tc, test_err_relation);
	tcase_add_test(tc, test_err_relation_not_replaced);
	tcase_add_test(tc, test_err_changes);
	tcase_add_test(tc, test_err_bitmaps);
	tcase_add_test(tc, test_err_values);
	tcase_add_test(tc, test_err_truncate);
	suite_add_tcase(s, tc);

	tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_fuzz_garbage);
	tcase_add_test(tc, test_fuzz_mutations);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner    *sr = srunner_create(frame_suite());
	int			failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

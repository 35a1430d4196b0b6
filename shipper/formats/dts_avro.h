/*-------------------------------------------------------------------------
 *
 * dts_avro.h
 *	  The DTS Avro value format: one raw (schemaless, no container, no
 *	  schema id) Avro datum per Kafka message, of the public schema
 *	  com.alibaba.dts.formats.avro.Record (shipper/formats/dts_record.avsc,
 *	  compiled into the binary).
 *
 * Usage:
 *		DtsAvroEncoder enc;
 *		if (dts_avro_init(&enc) != 0) ... enc.error ...
 *		out.len = 0;
 *		rc = dts_avro_encode_change(&enc, &ctx, frame, &out);
 *		... hand out.data/out.len to the producer (it copies) ...
 *		dts_avro_free(&enc);
 *
 * The encoder writes Avro's binary encoding directly (no Avro library at
 * run time); it keeps scratch buffers across calls, so it is not
 * thread-safe (one per producer thread).  The mapping of PostgreSQL values
 * is in docs/kafka.md.
 *
 * shipper/formats/dts_avro.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_KAFKA_DTS_AVRO_H
#define PG_DTS_KAFKA_DTS_AVRO_H

#include "formats/record.h"

/*
 * The schema text, generated from dts_record.avsc at build time
 * (shipper/formats/Makefile.inc); NUL-terminated.  The encoder does not
 * parse it (its layout is spelt out in dts_avro.c); it is there for
 * decoders (pg_dts_consume) and the tests.
 */
extern const unsigned char dts_avro_schema_bytes[];
extern const size_t dts_avro_schema_json_len;
#define dts_avro_schema_json ((const char *) dts_avro_schema_bytes)

/* Old DTS consumers skip records of at most this many bytes as fillers. */
#define DTS_AVRO_MIN_RECORD_SIZE 48

/* Record.operation symbols (their enum indices) */
typedef enum DtsAvroOperation
{
	DTS_AVRO_OP_INSERT = 0,
	DTS_AVRO_OP_UPDATE = 1,
	DTS_AVRO_OP_DELETE = 2,
	DTS_AVRO_OP_DDL = 3,
	DTS_AVRO_OP_BEGIN = 4,
	DTS_AVRO_OP_COMMIT = 5,
	DTS_AVRO_OP_HEARTBEAT = 8
} DtsAvroOperation;

/* Branches of the value union of beforeImages/afterImages items */
typedef enum DtsAvroValueBranch
{
	DTS_AVRO_V_NULL = 0,
	DTS_AVRO_V_INTEGER = 1,
	DTS_AVRO_V_CHARACTER = 2,
	DTS_AVRO_V_DECIMAL = 3,
	DTS_AVRO_V_FLOAT = 4,
	DTS_AVRO_V_TIMESTAMP = 5,
	DTS_AVRO_V_DATETIME = 6,
	DTS_AVRO_V_TIMESTAMP_TZ = 7,
	DTS_AVRO_V_BINARY_GEOMETRY = 8,
	DTS_AVRO_V_TEXT_GEOMETRY = 9,
	DTS_AVRO_V_BINARY_OBJECT = 10,
	DTS_AVRO_V_TEXT_OBJECT = 11,
	DTS_AVRO_V_EMPTY_OBJECT = 12
} DtsAvroValueBranch;

typedef struct DtsAvroEncoder
{
	bool		ready;
	const char *charset;		/* of the record being built */
	DtsTextScratch text;		/* values rendered as text */
	char	   *scratch;		/* decoded bytea */
	size_t		scratch_cap;
	DtsWriteBuf tmp;			/* pk_uk_info, objectName, padding moves */
	uint64_t	lsn;			/* the last LSN written as text ... */
	char		lsn_text[24];	/* ... this, lsn_len bytes (0 = none yet) */
	int			lsn_len;
	size_t		min_size;		/* records of at most this many bytes are
								 * padded (DTS_AVRO_MIN_RECORD_SIZE; tests
								 * raise it) */
	char		error[256];		/* set when a call fails */
} DtsAvroEncoder;

/*
 * The part of a change record that depends only on the relation and its
 * names (objectName, the tags pk_uk_info and metaVersion, fields), kept
 * encoded between records of that relation: the caller keeps one per
 * relation and points DtsRecordContext.avro_rel to it, with rel_gen naming
 * the relation's description; dts_avro_encode_change() refills it when
 * rel_gen differs from the one it was filled for.  Initialise with
 * dts_avro_rel_cache_init(), release with dts_avro_rel_cache_free().
 */
typedef struct DtsAvroRelCache
{
	uint64_t	gen;			/* rel_gen it holds; 0 = empty */
	DtsWriteBuf bytes;			/* objectName | the two tags | fields */
	size_t		object_end;
	size_t		tags_end;
} DtsAvroRelCache;

extern void dts_avro_rel_cache_init(DtsAvroRelCache *cache);
extern void dts_avro_rel_cache_free(DtsAvroRelCache *cache);

/*
 * Prepares the encoder.  Returns 0, or -1 with enc->error set.  Call
 * dts_avro_free() in both cases.
 */
extern int	dts_avro_init(DtsAvroEncoder *enc);
extern void dts_avro_free(DtsAvroEncoder *enc);

/*
 * Appends the record of one INSERT, UPDATE or DELETE frame (with its rel,
 * old and new tuples as the decoder gives them) to out.  Returns
 * DTS_KFMT_OK, or DTS_KFMT_ERROR with enc->error set and out unchanged.
 */
extern int	dts_avro_encode_change(DtsAvroEncoder *enc,
								   const DtsRecordContext *ctx,
								   const DtsFrame *change, DtsWriteBuf *out);

/*
 * A DDL record: operation DDL, objectName the database (or
 * db.schema.table when ctx->table is set), fields null, beforeImages null,
 * afterImages the SQL text (string branch).
 */
extern int	dts_avro_encode_ddl(DtsAvroEncoder *enc,
								const DtsRecordContext *ctx,
								const char *sql, size_t sql_len,
								DtsWriteBuf *out);

/* A HEARTBEAT record (objectName, fields and images null). */
extern int	dts_avro_encode_heartbeat(DtsAvroEncoder *enc,
									  const DtsRecordContext *ctx,
									  DtsWriteBuf *out);

/*
 * A BEGIN or COMMIT record (op DTS_AVRO_OP_BEGIN or DTS_AVRO_OP_COMMIT),
 * objectName, fields and images null.
 */
extern int	dts_avro_encode_txn(DtsAvroEncoder *enc,
								const DtsRecordContext *ctx,
								DtsAvroOperation op, DtsWriteBuf *out);

#endif							/* PG_DTS_KAFKA_DTS_AVRO_H */

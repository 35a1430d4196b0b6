/*-------------------------------------------------------------------------
 *
 * record.h
 *	  What every Kafka value format (DTS Avro, SharePlex JSON, Canal JSON)
 *	  encodes: one change with its context, and the helpers the formats
 *	  share (value text, type classes, times, LSNs, JSON strings).
 *
 * The formats are pure encoders: they append one message value to a
 * caller-owned DtsWriteBuf and know nothing of Kafka.  The Kafka sink fills a
 * DtsRecordContext per change (names after mapping, positions, times) and
 * hands it with the decoded DtsFrame to the format of the task.
 *
 * The shipper asks the plugin for TEXT values (typoutput) under DateStyle=ISO,
 * TimeZone=UTC, extra_float_digits=3, IntervalStyle=postgres; the formats
 * parse those texts.  Columns in the plugin's other encodings are rendered to
 * the same texts first (dts_kfmt_value_text), so each format has one path.
 * For the types in DTS_KFMT_BINARY_TYPES the Kafka sink asks for the binary
 * encodings (plugin option binary_types): rendering them here spares the
 * walsender their output functions.  docs/kafka.md has the full mapping
 * tables.
 *
 * shipper/formats/record.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_KAFKA_RECORD_H
#define PG_DTS_KAFKA_RECORD_H

#include "pg_dts/frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Return codes of the encoders */
#define DTS_KFMT_OK			0		/* a value was appended */
#define DTS_KFMT_SKIP		1		/* this format has no message for it */
#define DTS_KFMT_ERROR		(-1)	/* nothing appended; error[] says why */

/*
 * The context of one record.  Strings are borrowed for the call only; NULL
 * strings are written as empty ones unless a field says otherwise.
 */
typedef struct DtsRecordContext
{
	const char *database;		/* source database (after mapping) */
	const char *schema;			/* schema, after name mapping */
	const char *table;			/* table, after name mapping */
	uint32_t	xid;			/* top-level transaction id */
	uint64_t	commit_lsn;		/* LSN of the transaction's commit record */
	uint64_t	change_lsn;		/* LSN of this change, or commit_lsn when
								 * the frames do not carry it */
	int64_t		commit_time_us; /* µs since 2000-01-01 00:00 UTC */
	int64_t		born_time_ms;	/* UNIX ms when the record is encoded */
	int64_t		record_id;		/* increasing per task */
	const char *source_version; /* server_version of the source */
	int			seq_in_txn;		/* 1-based position of the change in its
								 * transaction */
	int			txn_size;		/* number of changes of the transaction
								 * (0 when unknown: then seq_in_txn) */
	int64_t		userid;			/* SharePlex meta.userid: the role OID of
								 * the transaction when known, else 0 */
	const char *charset;		/* Character.charset; NULL = "utf8" */

	/*
	 * Avro: what the records of one relation write alike, cached by the
	 * caller (dts_avro.h, DtsAvroRelCache), valid while rel_gen is the
	 * same.  rel_gen must change whenever the relation's description or its
	 * names at the sink may have; 0 (or avro_rel NULL) = do not cache.
	 */
	struct DtsAvroRelCache *avro_rel;
	uint64_t	rel_gen;
} DtsRecordContext;

/* Zeroes a context (all fields unset, change_lsn follows commit_lsn). */
extern void dts_record_context_init(DtsRecordContext *ctx);

/* ----------------------------------------------------------------
 *		Type classes: how the formats treat a column of a type OID
 * ----------------------------------------------------------------
 */
typedef enum DtsTypeClass
{
	DTS_TC_INTEGER,				/* int2, int4, int8, oid */
	DTS_TC_CHARACTER,			/* text, varchar, bpchar, name, "char" */
	DTS_TC_DECIMAL,				/* numeric */
	DTS_TC_FLOAT,				/* float4, float8 */
	DTS_TC_DATE,				/* date */
	DTS_TC_TIME,				/* time */
	DTS_TC_TIMESTAMP,			/* timestamp */
	DTS_TC_TIMESTAMPTZ,			/* timestamptz */
	DTS_TC_TIMETZ,				/* timetz */
	DTS_TC_BYTEA,				/* bytea */
	DTS_TC_JSONB,				/* jsonb */
	DTS_TC_GEOMETRY,			/* point, lseg, path, box, polygon, line,
								 * circle */
	DTS_TC_TEXT_OBJECT			/* everything else (bool, json, uuid, ...) */
} DtsTypeClass;

typedef struct DtsTypeInfo
{
	DtsTypeClass tclass;
	const char *object_type;	/* BinaryObject/TextObject/TextGeometry type
								 * name; NULL for other classes */
	const char *pg_name;		/* short type name ("int4"), NULL if the OID
								 * is not a built-in type we know */
	int			java_sql_type;	/* java.sql.Types code (Canal sqlType) */
	int			int_width;		/* bytes of an integer type, else 0 */
} DtsTypeInfo;

/* The class and names of a type OID; never NULL. */
extern const DtsTypeInfo *dts_kfmt_type_info(uint32_t typoid);

/*
 * A column's type as text for Canal's mysqlType: "int4", "varchar(20)",
 * "numeric(12,2)", "bpchar(5)", "bit(4)", ...; the decimal OID for types we
 * do not know.  Writes at most size bytes (NUL-terminated) into buf.
 */
extern void dts_kfmt_type_text(const DtsColumn *col, char *buf, size_t size);

/* numeric typmod to precision and scale; false if typmod is unset. */
extern bool dts_kfmt_numeric_typmod(int32_t typmod, int *precision,
									int *scale);

/* ----------------------------------------------------------------
 *		Values as text
 * ----------------------------------------------------------------
 */

/*
 * The built-in types whose binary encodings dts_kfmt_value_text() renders
 * exactly as their output functions write them under the settings above
 * (tests/unit/test_kafka_formats.c, test_value_text_binary), in the plugin
 * option binary_types' spelling.
 */
#define DTS_KFMT_BINARY_TYPES \
	"int2,int4,int8,oid,float4,float8,bool,char,date,time,timetz," \
	"timestamp,timestamptz,numeric,bytea,uuid"

/* Scratch space dts_kfmt_value_text() renders non-TEXT values into. */
typedef struct DtsTextScratch
{
	char		buf[128];		/* fixed-width values */
	char	   *big;			/* malloc'd: hex of binary bytea etc. */
	size_t		bigcap;
} DtsTextScratch;

extern void dts_text_scratch_free(DtsTextScratch *s);

/*
 * The text PostgreSQL's output function gives for a present value of col
 * (under the shipper's session settings): the bytes themselves for TEXT
 * columns, a rendering for the compact and binary encodings.  *text points
 * into the value or into scratch (valid until the scratch is used again).
 * Returns false with err (256 bytes) set for a binary value of a type we
 * cannot render.
 */
extern bool dts_kfmt_value_text(const DtsColumn *col, const DtsValue *value,
								DtsTextScratch *scratch, const char **text,
								size_t *len, char *err);

/*
 * The before image of an UPDATE or DELETE, column by column.  A column's
 * old value is the old tuple's when it has one; under an UPDATE whose old
 * tuple lacks it (no old tuple, or a key-only one) a key column takes the
 * new tuple's value, because PostgreSQL logs the old key only when the key
 * changed; every other column is unknown (DTS_VALUE_ABSENT).  Returns the
 * DtsValue to use, or NULL for unknown.
 */
extern const DtsValue *dts_kfmt_before_value(const DtsFrame *change, int col);

/*
 * The after image of an INSERT or UPDATE: the new tuple's value, except
 * that an unchanged TOASTed value is taken from a full old tuple when it
 * has it (it is the same value).  NULL when unknown (unchanged TOAST and no
 * full old value).
 */
extern const DtsValue *dts_kfmt_after_value(const DtsFrame *change, int col);

/* A value the formats can write: present or NULL (not unchanged/absent). */
static inline bool
dts_kfmt_value_known(const DtsValue *v)
{
	return v != NULL &&
		(v->status == DTS_VALUE_PRESENT || v->status == DTS_VALUE_NULL);
}

/*
 * Appends a known value as JSON: null, or its PostgreSQL text as a JSON
 * string.  Returns false with err (256 bytes) set when it has no text.
 */
extern bool dts_kfmt_json_value(DtsWriteBuf *buf, const DtsColumn *col,
								const DtsValue *v, DtsTextScratch *scratch,
								char *err);

/*
 * Whether two known values of col are equal (both NULL, or the same text).
 * Returns false with err set when a value has no text.
 */
extern bool dts_kfmt_values_equal(const DtsColumn *col, const DtsValue *a,
								  const DtsValue *b, DtsTextScratch *sa,
								  DtsTextScratch *sb, bool *equal, char *err);

/* ----------------------------------------------------------------
 *		Times and positions
 * ----------------------------------------------------------------
 */
#define DTS_PG_EPOCH_UNIX_SECS	INT64_C(946684800)

/* PostgreSQL µs since 2000 to UNIX seconds / ms (floor division) */
extern int64_t dts_kfmt_unix_secs(int64_t pg_us);
extern int64_t dts_kfmt_unix_ms(int64_t pg_us);

/*
 * An integer in decimal, without printf (per value and per record); buf of
 * 21 bytes, no NUL written.  Returns the length.
 */
extern int	dts_kfmt_u64_text(uint64_t v, char *buf);
extern int	dts_kfmt_i64_text(int64_t v, char *buf);

/* "XXX/XXX" as pg_lsn prints it; buf of 24 bytes. Returns the length. */
extern int	dts_kfmt_lsn_text(uint64_t lsn, char *buf);

/* "yyyy-MM-ddTHH:mm:ss" (UTC) of UNIX seconds; buf of 32 bytes. */
extern int	dts_kfmt_iso_utc(int64_t unix_secs, char *buf);

/* ----------------------------------------------------------------
 *		Output helpers
 * ----------------------------------------------------------------
 */

/* A DtsWriteBuf growing with realloc() (aborting when out of memory). */
extern void dts_kfmt_buf_init(DtsWriteBuf *buf);
extern void dts_kfmt_buf_free(DtsWriteBuf *buf);

extern void dts_kfmt_put_str(DtsWriteBuf *buf, const char *s);
/* v in decimal, without printf (per record) */
extern void dts_kfmt_put_int(DtsWriteBuf *buf, int64_t v);

/*
 * A JSON string of len bytes: quotes, backslash and control characters
 * escaped (\n, \t, ..., \u00XX), valid UTF-8 copied, every byte of an
 * invalid UTF-8 sequence replaced by U+FFFD, so the output is always valid
 * JSON text.
 */
extern void dts_kfmt_json_string(DtsWriteBuf *buf, const char *s, size_t len);
/* The same without the quotes (for strings built of parts). */
extern void dts_kfmt_json_escape(DtsWriteBuf *buf, const char *s, size_t len);
extern void dts_kfmt_json_cstring(DtsWriteBuf *buf, const char *s);

/*
 * The DTS pk_uk_info tag: {"PRIMARY":["k1","k2"]} with the relation's key
 * columns, or {} when it has none.
 */
extern void dts_kfmt_pk_uk_info(DtsWriteBuf *buf, const DtsRelation *rel);

/*
 * One part of a DTS objectName: the name with every '.' written as the six
 * characters \u002E (as the DTS SDK's ObjectNameUtils.escapeName does).
 */
extern void dts_kfmt_object_name_part(DtsWriteBuf *buf, const char *name);

/*
 * The relation's metadata version: CRC-32C of the table name and every
 * column's name, type OID, typmod and key flag.  DTS consumers cache a
 * table's field list by objectName until the tag metaVersion changes.
 */
extern uint32_t dts_kfmt_meta_version(const DtsRecordContext *ctx,
									  const DtsRelation *rel);

#endif							/* PG_DTS_KAFKA_RECORD_H */

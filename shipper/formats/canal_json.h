/*-------------------------------------------------------------------------
 *
 * canal_json.h
 *	  The Canal JSON value format (Alibaba Canal's flat message, as DTS
 *	  writes it to Kafka), one row per message:
 *
 *		{"data":[{col: text|null}], "database", "es", "id", "isDdl",
 *		 "mysqlType":{col: type}, "old":[{col: old}]|null, "pkNames":[..]|null,
 *		 "schema", "sql", "sqlType":{col: java.sql.Types}, "table", "ts",
 *		 "type":"INSERT|UPDATE|DELETE"}
 *
 * INSERT: data = the new row, old null.  UPDATE: data = the new row, old =
 * the old values of the columns that changed (Canal's convention).  DELETE:
 * data = the deleted row, old null.  DDL: isDdl true, sql the statement,
 * type Canal's event type (CREATE, ALTER, ERASE, CINDEX, DINDEX, TRUNCATE,
 * QUERY).  "schema" is our addition (PostgreSQL has schemas; Canal
 * consumers ignore unknown fields).  See docs/kafka.md.
 *
 * shipper/formats/canal_json.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_KAFKA_CANAL_JSON_H
#define PG_DTS_KAFKA_CANAL_JSON_H

#include "formats/record.h"

typedef struct DtsCanalEncoder
{
	DtsTextScratch old_text;
	DtsTextScratch new_text;
	char		error[256];		/* set when a call fails */
} DtsCanalEncoder;

extern void dts_canal_init(DtsCanalEncoder *enc);
extern void dts_canal_free(DtsCanalEncoder *enc);

/*
 * Appends the message of one INSERT, UPDATE or DELETE frame to out.
 * Returns DTS_KFMT_OK, or DTS_KFMT_ERROR with enc->error set and out->len
 * back at its old value.
 */
extern int	dts_canal_encode_change(DtsCanalEncoder *enc,
									const DtsRecordContext *ctx,
									const DtsFrame *change, DtsWriteBuf *out);

/*
 * Appends a DDL message (ctx->table may be NULL: "table" is then "").
 * Returns DTS_KFMT_OK.
 */
extern int	dts_canal_encode_ddl(DtsCanalEncoder *enc,
								 const DtsRecordContext *ctx,
								 const char *sql, size_t sql_len,
								 DtsWriteBuf *out);

/* Canal's event type of a DDL statement ("CREATE", "ALTER", ..., "QUERY") */
extern const char *dts_canal_ddl_type(const char *sql, size_t sql_len);

#endif							/* PG_DTS_KAFKA_CANAL_JSON_H */

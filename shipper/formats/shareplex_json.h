/*-------------------------------------------------------------------------
 *
 * shareplex_json.h
 *	  The SharePlex JSON value format, as DTS writes it to Kafka:
 *
 *		{"meta":{"time","userid","op":"ins|upd|del","scn","rowid","trans",
 *		         "seq","size","table","idx":"seq/size","posttime"},
 *		 "data":{column: text|null, ...},
 *		 "key":{column: text|null, ...}}          (upd only)
 *
 * ins: data = the new row.  upd: data = the columns whose value changed
 * (new values), key = the row before the change (every column whose old
 * value is known).  del: data = the deleted row (known old values).  Values
 * are PostgreSQL's text forms as JSON strings, NULL as null.  SharePlex
 * JSON has no DDL or heartbeat messages.  docs/kafka.md maps SharePlex's
 * Oracle notions (scn, trans, rowid, userid) to PostgreSQL.
 *
 * shipper/formats/shareplex_json.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_KAFKA_SHAREPLEX_JSON_H
#define PG_DTS_KAFKA_SHAREPLEX_JSON_H

#include "formats/record.h"

typedef struct DtsSharePlexEncoder
{
	DtsTextScratch old_text;
	DtsTextScratch new_text;
	char		error[256];		/* set when a call fails */
} DtsSharePlexEncoder;

extern void dts_shareplex_init(DtsSharePlexEncoder *enc);
extern void dts_shareplex_free(DtsSharePlexEncoder *enc);

/*
 * Appends the message of one INSERT, UPDATE or DELETE frame to out.
 * Returns DTS_KFMT_OK, or DTS_KFMT_ERROR with enc->error set and out->len
 * back at its old value.
 */
extern int	dts_shareplex_encode_change(DtsSharePlexEncoder *enc,
										const DtsRecordContext *ctx,
										const DtsFrame *change,
										DtsWriteBuf *out);

#endif							/* PG_DTS_KAFKA_SHAREPLEX_JSON_H */

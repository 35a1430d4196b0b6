/*-------------------------------------------------------------------------
 *
 * json.h
 *	  The shipper's JSON format: one JSON object per change (and per
 *	  BEGIN / COMMIT when asked), as the file sink writes it one per line.
 *	  docs/shipper.md describes the objects.
 *
 * shipper/formats/json.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_JSON_H
#define PG_DTS_SHIP_JSON_H

#include <stddef.h>

#include "sink.h"

/* A growable string; data is NUL-terminated once anything is appended. */
typedef struct DtsStrBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} DtsStrBuf;

extern void dts_strbuf_init(DtsStrBuf *buf);
extern void dts_strbuf_reset(DtsStrBuf *buf);
extern void dts_strbuf_free(DtsStrBuf *buf);
extern void dts_strbuf_append(DtsStrBuf *buf, const char *data, size_t len);
extern void dts_strbuf_appendf(DtsStrBuf *buf, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/*
 * Append one JSON object, without a newline, to out.  txn is NULL only for
 * a non-transactional message.  Values are expected in text format (the
 * shipper asks the plugin for format 'text'); binary-encoded values are
 * written as numbers, booleans or "\\x..." hex strings.
 */
extern void dts_json_change(DtsStrBuf *out, const DtsTxn *txn,
							const DtsChange *change);
extern void dts_json_begin(DtsStrBuf *out, const DtsTxn *txn);
extern void dts_json_commit(DtsStrBuf *out, const DtsTxn *txn);

/*
 * Parses a timestamptz in PostgreSQL's ISO output ("2024-02-29
 * 12:34:56.789+00", any offset) into microseconds since 2000-01-01 UTC.
 * Returns false if the text is not in that form.
 */
extern bool dts_parse_pg_timestamptz(const char *text, size_t len,
									 int64_t *result);

#endif							/* PG_DTS_SHIP_JSON_H */

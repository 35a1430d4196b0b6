/*-------------------------------------------------------------------------
 *
 * shareplex_json.c
 *	  Encoder of the SharePlex JSON value format (see shareplex_json.h and
 *	  docs/kafka.md), written by hand into the caller's buffer.
 *
 * shipper/formats/shareplex_json.c
 *
 *-------------------------------------------------------------------------
 */
#include "formats/shareplex_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void
dts_shareplex_init(DtsSharePlexEncoder *enc)
{
	memset(enc, 0, sizeof(*enc));
}

void
dts_shareplex_free(DtsSharePlexEncoder *enc)
{
	dts_text_scratch_free(&enc->old_text);
	dts_text_scratch_free(&enc->new_text);
}

static void
put_key(DtsWriteBuf *out, const char *key, bool *first)
{
	if (!*first)
		dts_put_byte(out, ',');
	*first = false;
	dts_kfmt_json_cstring(out, key);
	dts_put_byte(out, ':');
}

static void
put_meta(DtsWriteBuf *out, const DtsRecordContext *ctx, const char *op)
{
	char		buf[64];
	int			n;
	int			seq = ctx->seq_in_txn > 0 ? ctx->seq_in_txn : 1;
	int			size = ctx->txn_size > 0 ? ctx->txn_size : seq;

	dts_kfmt_put_str(out, "{\"meta\":{\"time\":");
	dts_kfmt_iso_utc(dts_kfmt_unix_secs(ctx->commit_time_us), buf);
	dts_kfmt_json_cstring(out, buf);
	dts_kfmt_put_str(out, ",\"userid\":");
	dts_kfmt_put_int(out, ctx->userid);
	dts_kfmt_put_str(out, ",\"op\":");
	dts_kfmt_json_cstring(out, op);
	/* scn: the commit LSN as a decimal number */
	dts_kfmt_put_str(out, ",\"scn\":\"");
	n = dts_kfmt_u64_text(ctx->commit_lsn, buf);
	dts_put_raw(out, buf, (size_t) n);
	/* rowid: commit LSN and position in the transaction, unique per change */
	dts_kfmt_put_str(out, "\",\"rowid\":\"");
	n = dts_kfmt_lsn_text(ctx->commit_lsn, buf);
	dts_put_raw(out, buf, (size_t) n);
	dts_put_byte(out, ':');
	dts_kfmt_put_int(out, seq);
	dts_kfmt_put_str(out, "\",\"trans\":\"");
	dts_kfmt_put_int(out, ctx->xid);
	dts_kfmt_put_str(out, "\",\"seq\":");
	dts_kfmt_put_int(out, seq);
	dts_kfmt_put_str(out, ",\"size\":");
	dts_kfmt_put_int(out, size);
	dts_kfmt_put_str(out, ",\"table\":");
	/* "schema.table", one JSON string */
	dts_put_byte(out, '"');
	if (ctx->schema)
		dts_kfmt_json_escape(out, ctx->schema, strlen(ctx->schema));
	dts_put_byte(out, '.');
	if (ctx->table)
		dts_kfmt_json_escape(out, ctx->table, strlen(ctx->table));
	dts_put_byte(out, '"');
	dts_kfmt_put_str(out, ",\"idx\":\"");
	dts_kfmt_put_int(out, seq);
	dts_put_byte(out, '/');
	dts_kfmt_put_int(out, size);
	dts_kfmt_put_str(out, "\",\"posttime\":");
	dts_kfmt_iso_utc(ctx->born_time_ms >= 0 ? ctx->born_time_ms / 1000 :
					 -((-ctx->born_time_ms + 999) / 1000), buf);
	dts_kfmt_json_cstring(out, buf);
	dts_put_byte(out, '}');
}

/* An object of the known values of an image (before or after) */
static bool
put_image(DtsSharePlexEncoder *enc, DtsWriteBuf *out, const DtsFrame *ch,
		  bool before)
{
	bool		first = true;

	dts_put_byte(out, '{');
	for (int i = 0; i < ch->rel->ncols; i++)
	{
		const DtsValue *v = before ? dts_kfmt_before_value(ch, i) :
			dts_kfmt_after_value(ch, i);

		if (!dts_kfmt_value_known(v))
			continue;
		put_key(out, ch->rel->columns[i].name, &first);
		if (!dts_kfmt_json_value(out, &ch->rel->columns[i], v,
								 before ? &enc->old_text : &enc->new_text,
								 enc->error))
			return false;
	}
	dts_put_byte(out, '}');
	return true;
}

/* The new values of the columns an UPDATE changed (or may have changed) */
static bool
put_changed(DtsSharePlexEncoder *enc, DtsWriteBuf *out, const DtsFrame *ch)
{
	bool		first = true;

	dts_put_byte(out, '{');
	for (int i = 0; i < ch->rel->ncols; i++)
	{
		const DtsColumn *col = &ch->rel->columns[i];
		const DtsValue *nv = dts_kfmt_after_value(ch, i);
		const DtsValue *ov = dts_kfmt_before_value(ch, i);
		bool		equal = false;

		if (!dts_kfmt_value_known(nv))
			continue;			/* unchanged TOAST: not changed */
		if (dts_kfmt_value_known(ov) &&
			!dts_kfmt_values_equal(col, ov, nv, &enc->old_text,
								   &enc->new_text, &equal, enc->error))
			return false;
		if (equal)
			continue;
		put_key(out, col->name, &first);
		if (!dts_kfmt_json_value(out, col, nv, &enc->new_text, enc->error))
			return false;
	}
	dts_put_byte(out, '}');
	return true;
}

int
dts_shareplex_encode_change(DtsSharePlexEncoder *enc,
							const DtsRecordContext *ctx,
							const DtsFrame *change, DtsWriteBuf *out)
{
	size_t		start = out->len;
	bool		ok;

	if (change->rel == NULL)
	{
		snprintf(enc->error, sizeof(enc->error), "shareplex: change without relation");
		return DTS_KFMT_ERROR;
	}
	switch (change->kind)
	{
		case DTS_FRAME_INSERT:
			put_meta(out, ctx, "ins");
			dts_kfmt_put_str(out, ",\"data\":");
			ok = put_image(enc, out, change, false);
			break;
		case DTS_FRAME_UPDATE:
			put_meta(out, ctx, "upd");
			dts_kfmt_put_str(out, ",\"data\":");
			ok = put_changed(enc, out, change);
			if (ok)
			{
				dts_kfmt_put_str(out, ",\"key\":");
				ok = put_image(enc, out, change, true);
			}
			break;
		case DTS_FRAME_DELETE:
			put_meta(out, ctx, "del");
			dts_kfmt_put_str(out, ",\"data\":");
			ok = put_image(enc, out, change, true);
			break;
		default:
			snprintf(enc->error, sizeof(enc->error),
					 "shareplex: frame kind '%c' is not a row change", change->kind);
			return DTS_KFMT_ERROR;
	}
	if (!ok)
	{
		out->len = start;
		return DTS_KFMT_ERROR;
	}
	dts_put_byte(out, '}');
	return DTS_KFMT_OK;
}

/*-------------------------------------------------------------------------
 *
 * canal_json.c
 *	  Encoder of the Canal JSON value format (see canal_json.h and
 *	  docs/kafka.md), written by hand into the caller's buffer.  Keys are in
 *	  the alphabetical order Canal's own messages have.
 *
 * shipper/formats/canal_json.c
 *
 *-------------------------------------------------------------------------
 */
#include "formats/canal_json.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void
dts_canal_init(DtsCanalEncoder *enc)
{
	memset(enc, 0, sizeof(*enc));
}

void
dts_canal_free(DtsCanalEncoder *enc)
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

/* "database", "es", "id" and the "isDdl" key */
static void
put_head(DtsWriteBuf *out, const DtsRecordContext *ctx)
{
	dts_kfmt_put_str(out, ",\"database\":");
	dts_kfmt_json_cstring(out, ctx->database);
	dts_kfmt_put_str(out, ",\"es\":");
	dts_kfmt_put_int(out, dts_kfmt_unix_ms(ctx->commit_time_us));
	dts_kfmt_put_str(out, ",\"id\":");
	dts_kfmt_put_int(out, ctx->record_id);
	dts_kfmt_put_str(out, ",\"isDdl\":");
}

/* "schema", "sql" (given), "sqlType" is written by the caller, then these */
static void
put_tail(DtsWriteBuf *out, const DtsRecordContext *ctx, const char *type)
{
	dts_kfmt_put_str(out, ",\"table\":");
	dts_kfmt_json_cstring(out, ctx->table);
	dts_kfmt_put_str(out, ",\"ts\":");
	dts_kfmt_put_int(out, ctx->born_time_ms);
	dts_kfmt_put_str(out, ",\"type\":");
	dts_kfmt_json_cstring(out, type);
	dts_put_byte(out, '}');
}

/* [{...}] of the after (data) or before image; unknown columns left out */
static bool
put_row(DtsCanalEncoder *enc, DtsWriteBuf *out, const DtsFrame *ch,
		bool before)
{
	bool		first = true;

	dts_put_raw(out, "[{", 2);
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
	dts_put_raw(out, "}]", 2);
	return true;
}

/* [{...}] of the old values of the columns an UPDATE changed */
static bool
put_old(DtsCanalEncoder *enc, DtsWriteBuf *out, const DtsFrame *ch)
{
	bool		first = true;

	dts_put_raw(out, "[{", 2);
	for (int i = 0; i < ch->rel->ncols; i++)
	{
		const DtsColumn *col = &ch->rel->columns[i];
		const DtsValue *ov = dts_kfmt_before_value(ch, i);
		const DtsValue *nv = dts_kfmt_after_value(ch, i);
		bool		equal = false;

		if (!dts_kfmt_value_known(ov))
			continue;
		if (dts_kfmt_value_known(nv) &&
			!dts_kfmt_values_equal(col, ov, nv, &enc->old_text,
								   &enc->new_text, &equal, enc->error))
			return false;
		if (equal)
			continue;
		put_key(out, col->name, &first);
		if (!dts_kfmt_json_value(out, col, ov, &enc->old_text, enc->error))
			return false;
	}
	dts_put_raw(out, "}]", 2);
	return true;
}

int
dts_canal_encode_change(DtsCanalEncoder *enc, const DtsRecordContext *ctx,
						const DtsFrame *change, DtsWriteBuf *out)
{
	size_t		start = out->len;
	const DtsRelation *rel = change->rel;
	const char *type;
	bool		first;
	char		buf[64];

	switch (change->kind)
	{
		case DTS_FRAME_INSERT:
			type = "INSERT";
			break;
		case DTS_FRAME_UPDATE:
			type = "UPDATE";
			break;
		case DTS_FRAME_DELETE:
			type = "DELETE";
			break;
		default:
			snprintf(enc->error, sizeof(enc->error),
					 "canal: frame kind '%c' is not a row change", change->kind);
			return DTS_KFMT_ERROR;
	}
	if (rel == NULL)
	{
		snprintf(enc->error, sizeof(enc->error), "canal: change without relation");
		return DTS_KFMT_ERROR;
	}

	dts_kfmt_put_str(out, "{\"data\":");
	if (!put_row(enc, out, change, change->kind == DTS_FRAME_DELETE))
		goto fail;
	put_head(out, ctx);
	dts_kfmt_put_str(out, "false,\"mysqlType\":{");
	first = true;
	for (int i = 0; i < rel->ncols; i++)
	{
		put_key(out, rel->columns[i].name, &first);
		dts_kfmt_type_text(&rel->columns[i], buf, sizeof(buf));
		dts_kfmt_json_cstring(out, buf);
	}
	dts_kfmt_put_str(out, "},\"old\":");
	if (change->kind == DTS_FRAME_UPDATE)
	{
		if (!put_old(enc, out, change))
			goto fail;
	}
	else
		dts_kfmt_put_str(out, "null");
	dts_kfmt_put_str(out, ",\"pkNames\":");
	if (rel->nkeys == 0)
		dts_kfmt_put_str(out, "null");
	else
	{
		first = true;
		dts_put_byte(out, '[');
		for (int i = 0; i < rel->ncols; i++)
		{
			if (!rel->columns[i].key)
				continue;
			if (!first)
				dts_put_byte(out, ',');
			first = false;
			dts_kfmt_json_cstring(out, rel->columns[i].name);
		}
		dts_put_byte(out, ']');
	}
	dts_kfmt_put_str(out, ",\"schema\":");
	dts_kfmt_json_cstring(out, ctx->schema);
	dts_kfmt_put_str(out, ",\"sql\":\"\",\"sqlType\":{");
	first = true;
	for (int i = 0; i < rel->ncols; i++)
	{
		put_key(out, rel->columns[i].name, &first);
		dts_kfmt_put_int(out, dts_kfmt_type_info(rel->columns[i].typoid)->java_sql_type);
	}
	dts_put_byte(out, '}');
	put_tail(out, ctx, type);
	return DTS_KFMT_OK;

fail:
	out->len = start;
	return DTS_KFMT_ERROR;
}

/* The next word of sql from *pos (letters only), upper-cased into word */
static void
next_word(const char *sql, size_t len, size_t *pos, char *word, size_t size)
{
	size_t		n = 0;

	while (*pos < len && !isalpha((unsigned char) sql[*pos]))
	{
		/* skip "-- comment" lines and blanks before the word */
		if (sql[*pos] == '-' && *pos + 1 < len && sql[*pos + 1] == '-')
		{
			while (*pos < len && sql[*pos] != '\n')
				(*pos)++;
			continue;
		}
		if (!isspace((unsigned char) sql[*pos]) && sql[*pos] != '(')
			break;
		(*pos)++;
	}
	while (*pos < len && isalpha((unsigned char) sql[*pos]))
	{
		if (n + 1 < size)
			word[n++] = (char) toupper((unsigned char) sql[*pos]);
		(*pos)++;
	}
	word[n] = '\0';
}

const char *
dts_canal_ddl_type(const char *sql, size_t sql_len)
{
	size_t		pos = 0;
	char		w1[16],
				w2[16];

	next_word(sql, sql_len, &pos, w1, sizeof(w1));
	next_word(sql, sql_len, &pos, w2, sizeof(w2));
	if (strcmp(w1, "CREATE") == 0)
	{
		/* CREATE [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE */
		while (strcmp(w2, "GLOBAL") == 0 || strcmp(w2, "LOCAL") == 0 ||
			   strcmp(w2, "TEMP") == 0 || strcmp(w2, "TEMPORARY") == 0 ||
			   strcmp(w2, "UNLOGGED") == 0)
			next_word(sql, sql_len, &pos, w2, sizeof(w2));
		if (strcmp(w2, "TABLE") == 0)
			return "CREATE";
		if (strcmp(w2, "INDEX") == 0 || strcmp(w2, "UNIQUE") == 0)
			return "CINDEX";
		return "QUERY";
	}
	if (strcmp(w1, "ALTER") == 0 && strcmp(w2, "TABLE") == 0)
		return "ALTER";
	if (strcmp(w1, "DROP") == 0 && strcmp(w2, "TABLE") == 0)
		return "ERASE";
	if (strcmp(w1, "DROP") == 0 && strcmp(w2, "INDEX") == 0)
		return "DINDEX";
	if (strcmp(w1, "TRUNCATE") == 0)
		return "TRUNCATE";
	return "QUERY";
}

int
dts_canal_encode_ddl(DtsCanalEncoder *enc, const DtsRecordContext *ctx,
					 const char *sql, size_t sql_len, DtsWriteBuf *out)
{
	(void) enc;
	dts_kfmt_put_str(out, "{\"data\":null");
	put_head(out, ctx);
	dts_kfmt_put_str(out, "true,\"mysqlType\":null,\"old\":null,\"pkNames\":null,\"schema\":");
	dts_kfmt_json_cstring(out, ctx->schema);
	dts_kfmt_put_str(out, ",\"sql\":");
	dts_kfmt_json_string(out, sql, sql_len);
	dts_kfmt_put_str(out, ",\"sqlType\":null");
	put_tail(out, ctx, dts_canal_ddl_type(sql, sql_len));
	return DTS_KFMT_OK;
}

/*-------------------------------------------------------------------------
 *
 * frames_sql.c
 *	  dts.frames(bytea): decodes one message of the pg_dts output plugin
 *	  into one jsonb per frame, for reading a slot from psql:
 *
 *		SELECT f FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL),
 *			   dts.frames(data) AS f;
 *
 * A change frame names its relation by id only, so the decoder must have
 * seen the relation's RELATION frame in an earlier message of the stream.
 * The function therefore keeps one decoder for the life of the backend,
 * whose relation cache outlives each call: the peek functions return the
 * messages of a stream in order, so reading them all from the start of the
 * peek works.
 *
 * Values are shown as their text form.  A value sent as text (typoutput)
 * is shown as it is; any other is turned back into the type's typsend
 * image (dts_value_image()) and read with the type's receive and output
 * functions, which are cached per type OID.  The types are those of the
 * database the function runs in, which must be the slot's.
 *
 * jsonb keeps no key order; the objects are built in the documented order
 * (docs/frames.md) all the same.
 *
 * Also here, as the extension's only other C function: dts.creating_
 * extension(), which tells the DDL capture trigger that it runs inside an
 * extension script (pg_event_trigger_dropped_objects() does not say).
 *
 * plugin/frames_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlogdefs.h"
#include "commands/extension.h"
#include "common/base64.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_dts/frame.h"

PG_FUNCTION_INFO_V1(dts_frames);
PG_FUNCTION_INFO_V1(dts_creating_extension);

/* What we need to turn a typsend image of a type into its text. */
typedef struct FramesTypeEntry
{
	Oid			typoid;			/* hash key */
	bool		valid;			/* all fields below are filled in */
	char	   *typname;		/* format_type_be() */
	FmgrInfo	recv;
	Oid			recv_ioparam;
	FmgrInfo	out;
} FramesTypeEntry;

/* Error context while one value is converted. */
typedef struct FramesValueContext
{
	const DtsRelation *rel;
	int			col;
	const char *typname;		/* NULL until the type is looked up */
} FramesValueContext;

/*
 * Backend-lifetime state: the decoder (its relation cache persists from one
 * call to the next) in frames_cxt, and the type cache, which with all it
 * points to lives in frames_types_cxt.  A change of any type only marks
 * the type cache stale; it is rebuilt at its next use.
 */
static MemoryContext frames_cxt = NULL;
static MemoryContext frames_types_cxt = NULL;
static DtsDecoder *frames_decoder = NULL;
static HTAB *frames_types = NULL;
static bool frames_types_valid = false;

static void frames_init(void);
static void frames_type_invalidate(Datum arg, int cacheid, uint32 hashvalue);
static FramesTypeEntry *frames_lookup_type(Oid typoid);
static void frames_value_error_callback(void *arg);
static void report_decoder_error(DtsDecoder *dec, const uint8_t *frame);
static void append_frame(StringInfo buf, DtsDecoder *dec,
						 const DtsFrame *frame);
static void append_tuple(StringInfo buf, const char *key,
						 const char *unchanged_key, const DtsRelation *rel,
						 const DtsTuple *tuple);
static void append_value(StringInfo buf, const DtsRelation *rel, int col,
						 const DtsValue *value, FramesValueContext *ectx);
static void append_text(StringInfo buf, const char *data, size_t len,
						const char *what);
static void append_lsn(StringInfo buf, const char *key, uint64_t lsn);
static void append_time(StringInfo buf, const char *key, int64_t t);

/*
 * dts.frames(data bytea) RETURNS SETOF jsonb
 *
 * One row per frame of the message, in order.  A malformed message is an
 * error (no rows are returned for it).
 */
Datum
dts_frames(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext frame_cxt;
	MemoryContext oldcxt;
	DtsDecoder *dec;
	DtsFrame	frame;
	StringInfoData buf;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	frames_init();
	dec = frames_decoder;

	if (dts_decoder_open(dec, (const uint8_t *) VARDATA_ANY(data),
						 VARSIZE_ANY_EXHDR(data)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid pg_dts message"),
				 errdetail("%s", dec->error)));

	/* per-frame memory; the tuplestore keeps its own copy of each row */
	frame_cxt = AllocSetContextCreate(CurrentMemoryContext,
									  "dts.frames frame",
									  ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(frame_cxt);

	for (;;)
	{
		const uint8_t *frame_start = dec->cur;
		Datum		value;
		bool		isnull = false;
		int			rc;

		CHECK_FOR_INTERRUPTS();

		rc = dts_decoder_next(dec, &frame);
		if (rc == 0)
			break;
		if (rc < 0)
			report_decoder_error(dec, frame_start);

		initStringInfo(&buf);
		append_frame(&buf, dec, &frame);
		value = DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 &value, &isnull);
		MemoryContextReset(frame_cxt);
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(frame_cxt);

	return (Datum) 0;
}

/* Sets up the backend-lifetime state on first use. */
static void
frames_init(void)
{
	HASHCTL		ctl;

	if (frames_cxt == NULL)
	{
		MemoryContext cxt;

		cxt = AllocSetContextCreate(TopMemoryContext, "dts.frames",
									ALLOCSET_SMALL_SIZES);
		frames_types_cxt = AllocSetContextCreate(cxt, "dts.frames types",
												 ALLOCSET_SMALL_SIZES);
		frames_decoder = MemoryContextAllocZero(cxt, sizeof(DtsDecoder));
		dts_decoder_init(frames_decoder);
		CacheRegisterSyscacheCallback(TYPEOID, frames_type_invalidate,
									  (Datum) 0);
		frames_cxt = cxt;
	}

	if (!frames_types_valid)
	{
		/* frees the hash table too: its memory is a child context */
		MemoryContextReset(frames_types_cxt);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(FramesTypeEntry);
		ctl.hcxt = frames_types_cxt;
		frames_types = hash_create("dts.frames types", 32, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		frames_types_valid = true;
	}
}

/* Syscache callback on pg_type: only marks the type cache stale. */
static void
frames_type_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	frames_types_valid = false;
}

/*
 * Returns the receive and output functions of typoid, looking them up on
 * first use.  Errors if the type does not exist in this database or cannot
 * be received.
 */
static FramesTypeEntry *
frames_lookup_type(Oid typoid)
{
	FramesTypeEntry *entry;
	bool		found;
	Oid			recv_oid;
	Oid			out_oid;
	bool		isvarlena;

	if (!frames_types_valid)
		frames_init();

	entry = hash_search(frames_types, &typoid, HASH_ENTER, &found);
	if (found && entry->valid)
		return entry;
	entry->valid = false;

	if (!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typoid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type with OID %u does not exist", typoid),
				 errhint("Call dts.frames() in the database of the slot that produced the message.")));

	getTypeBinaryInputInfo(typoid, &recv_oid, &entry->recv_ioparam);
	getTypeOutputInfo(typoid, &out_oid, &isvarlena);
	fmgr_info_cxt(recv_oid, &entry->recv, frames_types_cxt);
	fmgr_info_cxt(out_oid, &entry->out, frames_types_cxt);
	entry->typname = MemoryContextStrdup(frames_types_cxt,
										 format_type_be(typoid));
	entry->valid = true;
	return entry;
}

/* Error context: which value was being converted. */
static void
frames_value_error_callback(void *arg)
{
	FramesValueContext *ectx = (FramesValueContext *) arg;
	const DtsColumn *col = &ectx->rel->columns[ectx->col];
	const char *typname = ectx->typname;

	/* a text value does not look its type up; do it now */
	if (typname == NULL)
		typname = format_type_extended(col->typoid, -1,
									   FORMAT_TYPE_INVALID_AS_NULL);
	if (typname != NULL)
		errcontext("column \"%s\" of type %s of relation \"%s.%s\"",
				   col->name, typname,
				   ectx->rel->schema, ectx->rel->table);
	else
		errcontext("column \"%s\" of type OID %u of relation \"%s.%s\"",
				   col->name, col->typoid,
				   ectx->rel->schema, ectx->rel->table);
}

/*
 * Reads a varint from [*p, end); returns false if it runs past end or
 * is longer than DTS_VARINT_MAX_BYTES.
 */
static bool
peek_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	int			shift = 0;

	*v = 0;
	while (*p < end && shift < 7 * DTS_VARINT_MAX_BYTES)
	{
		uint8_t		b = *(*p)++;

		*v |= (uint64_t) (b & 0x7F) << shift;
		if ((b & 0x80) == 0)
			return true;
		shift += 7;
	}
	return false;
}

/*
 * Reports the reader's error on the frame that starts at "frame".  A change
 * frame whose relation the decoder has not seen gets its own message: that
 * is what reading a stream from the middle looks like.
 */
static void
report_decoder_error(DtsDecoder *dec, const uint8_t *frame)
{
	if (frame != NULL && frame < dec->end &&
		(*frame == DTS_FRAME_INSERT || *frame == DTS_FRAME_UPDATE ||
		 *frame == DTS_FRAME_DELETE))
	{
		const uint8_t *p = frame + 1;
		uint64_t	body_len;
		uint64_t	relid;

		if (peek_varint(&p, dec->end, &body_len) &&
			peek_varint(&p, dec->end, &relid) &&
			relid <= PG_UINT32_MAX &&
			dts_decoder_relation(dec, (uint32_t) relid) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("pg_dts message refers to relation %u, which no earlier message described",
							(uint32) relid),
					 errdetail("%s", dec->error),
					 errhint("Read the messages of the stream in order, from the start of the peek.")));
	}

	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid pg_dts message"),
			 errdetail("%s", dec->error)));
}

/* Appends ", "key": " (keys are plain ASCII constants). */
static inline void
append_key(StringInfo buf, const char *key)
{
	appendStringInfo(buf, ", \"%s\": ", key);
}

static inline void
append_bool(StringInfo buf, const char *key, bool value)
{
	append_key(buf, key);
	appendStringInfoString(buf, value ? "true" : "false");
}

static inline void
append_uint(StringInfo buf, const char *key, uint32_t value)
{
	append_key(buf, key);
	appendStringInfo(buf, "%u", (unsigned int) value);
}

static void
append_lsn(StringInfo buf, const char *key, uint64_t value)
{
	XLogRecPtr	lsn = (XLogRecPtr) value;

	append_key(buf, key);
	appendStringInfo(buf, "\"%X/%X\"", LSN_FORMAT_ARGS(lsn));
}

/* t is a TimestampTz; shown like timestamptz in the session's TimeZone. */
static void
append_time(StringInfo buf, const char *key, int64_t t)
{
	char	   *s;

	s = DatumGetCString(DirectFunctionCall1(timestamptz_out,
											TimestampTzGetDatum((TimestampTz) t)));
	append_key(buf, key);
	escape_json(buf, s);
}

/* Is data[0 .. len) valid text in the server encoding (and free of NULs)? */
static bool
text_is_valid(const char *data, size_t len)
{
	return len <= (size_t) MaxAllocSize - 1 &&
		pg_verify_mbstr(GetDatabaseEncoding(), data, (int) len, true);
}

/* Errors unless data[0 .. len) is valid text; "what" names it. */
static void
check_text(const char *data, size_t len, const char *what)
{
	if (!text_is_valid(data, len))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid pg_dts message"),
				 errdetail("The %s is not valid in encoding \"%s\".",
						   what, GetDatabaseEncodingName())));
}

/*
 * Appends data[0 .. len) as a JSON string.  It must be valid in the server
 * encoding (which also excludes NUL bytes); "what" names it in the error.
 */
static void
append_text(StringInfo buf, const char *data, size_t len, const char *what)
{
	char	   *s;

	check_text(data, len, what);
	s = len > 0 ? pnstrdup(data, len) : pstrdup("");
	escape_json(buf, s);
	pfree(s);
}

static const char *
frame_kind_name(DtsFrameKind kind)
{
	switch (kind)
	{
		case DTS_FRAME_BEGIN:
			return "begin";
		case DTS_FRAME_COMMIT:
			return "commit";
		case DTS_FRAME_ORIGIN:
			return "origin";
		case DTS_FRAME_RELATION:
			return "relation";
		case DTS_FRAME_INSERT:
			return "insert";
		case DTS_FRAME_UPDATE:
			return "update";
		case DTS_FRAME_DELETE:
			return "delete";
		case DTS_FRAME_TRUNCATE:
			return "truncate";
		case DTS_FRAME_MESSAGE:
			return "message";
		case DTS_FRAME_STREAM_START:
			return "stream_start";
		case DTS_FRAME_STREAM_STOP:
			return "stream_stop";
		case DTS_FRAME_STREAM_COMMIT:
			return "stream_commit";
		case DTS_FRAME_STREAM_ABORT:
			return "stream_abort";
		case DTS_FRAME_XID:
			return "xid";
	}
	/* the reader rejects unknown kinds */
	elog(ERROR, "unrecognized pg_dts frame kind %d", (int) kind);
	return NULL;				/* keep compiler quiet */
}

static const char *
replident_name(char replident)
{
	switch (replident)
	{
		case DTS_REPLIDENT_DEFAULT:
			return "default";
		case DTS_REPLIDENT_NOTHING:
			return "nothing";
		case DTS_REPLIDENT_FULL:
			return "full";
		case DTS_REPLIDENT_INDEX:
			return "index";
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid pg_dts message"),
			 errdetail("Unknown replica identity %d.", (int) replident)));
	return NULL;				/* keep compiler quiet */
}

/* Appends the "schema" and "table" keys of a change frame. */
static void
append_relation_name(StringInfo buf, const DtsRelation *rel)
{
	append_key(buf, "schema");
	append_text(buf, rel->schema, strlen(rel->schema), "schema name");
	append_key(buf, "table");
	append_text(buf, rel->table, strlen(rel->table), "table name");
}

/* Appends the JSON object of one frame to buf. */
static void
append_frame(StringInfo buf, DtsDecoder *dec, const DtsFrame *frame)
{
	const DtsRelation *rel = frame->rel;
	int			i;

	appendStringInfo(buf, "{\"kind\": \"%s\"", frame_kind_name(frame->kind));

	switch (frame->kind)
	{
		case DTS_FRAME_BEGIN:
			append_uint(buf, "xid", frame->xid);
			append_lsn(buf, "lsn", frame->lsn);
			append_time(buf, "commit_time", frame->commit_time);
			break;

		case DTS_FRAME_COMMIT:
		case DTS_FRAME_STREAM_COMMIT:
			append_uint(buf, "xid", frame->xid);
			append_lsn(buf, "lsn", frame->lsn);
			append_lsn(buf, "end_lsn", frame->end_lsn);
			append_time(buf, "commit_time", frame->commit_time);
			break;

		case DTS_FRAME_ORIGIN:
			append_key(buf, "origin");
			append_text(buf, (const char *) frame->origin.data,
						frame->origin.len, "origin name");
			append_lsn(buf, "origin_lsn", frame->lsn);
			break;

		case DTS_FRAME_RELATION:
			append_uint(buf, "relid", rel->relid);
			append_relation_name(buf, rel);
			append_key(buf, "replica_identity");
			appendStringInfo(buf, "\"%s\"", replident_name(rel->replident));
			append_key(buf, "columns");
			appendStringInfoChar(buf, '[');
			for (i = 0; i < rel->ncols; i++)
			{
				const DtsColumn *col = &rel->columns[i];
				char	   *typname;

				typname = format_type_extended(col->typoid, col->typmod,
											   FORMAT_TYPE_TYPEMOD_GIVEN |
											   FORMAT_TYPE_ALLOW_INVALID);
				appendStringInfoString(buf, i > 0 ? ", {\"name\": " : "{\"name\": ");
				append_text(buf, col->name, strlen(col->name), "column name");
				append_key(buf, "type");
				escape_json(buf, typname);
				append_bool(buf, "key", col->key);
				appendStringInfoChar(buf, '}');
			}
			appendStringInfoChar(buf, ']');
			break;

		case DTS_FRAME_INSERT:
			append_relation_name(buf, rel);
			append_tuple(buf, "new", "unchanged_toast", rel,
						 &frame->new_tuple);
			break;

		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
			append_relation_name(buf, rel);
			if (frame->old_kind != DTS_OLD_NONE)
			{
				append_key(buf, "old_kind");
				appendStringInfoString(buf,
									   frame->old_kind == DTS_OLD_KEY ?
									   "\"key\"" : "\"full\"");
				append_tuple(buf, "old", "old_unchanged_toast", rel,
							 &frame->old_tuple);
			}
			if (frame->kind == DTS_FRAME_UPDATE)
				append_tuple(buf, "new", "unchanged_toast", rel,
							 &frame->new_tuple);
			break;

		case DTS_FRAME_TRUNCATE:
			append_key(buf, "relations");
			appendStringInfoChar(buf, '[');
			for (i = 0; i < frame->nrelids; i++)
			{
				const DtsRelation *trel;

				if (i > 0)
					appendStringInfoString(buf, ", ");
				trel = dts_decoder_relation(dec, frame->relids[i]);
				if (trel != NULL)
				{
					check_text(trel->schema, strlen(trel->schema),
							   "schema name");
					check_text(trel->table, strlen(trel->table),
							   "table name");
					escape_json(buf, quote_qualified_identifier(trel->schema,
																trel->table));
				}
				else
					appendStringInfo(buf, "\"%u\"",
									 (unsigned int) frame->relids[i]);
			}
			appendStringInfoChar(buf, ']');
			append_bool(buf, "cascade",
						(frame->flags & DTS_TRUNCATE_CASCADE) != 0);
			append_bool(buf, "restart_identity",
						(frame->flags & DTS_TRUNCATE_RESTART_SEQS) != 0);
			break;

		case DTS_FRAME_MESSAGE:
			append_bool(buf, "transactional",
						(frame->flags & DTS_MESSAGE_TRANSACTIONAL) != 0);
			append_lsn(buf, "lsn", frame->lsn);
			append_key(buf, "prefix");
			append_text(buf, (const char *) frame->prefix.data,
						frame->prefix.len, "message prefix");
			if (text_is_valid((const char *) frame->content.data,
							  frame->content.len))
			{
				append_key(buf, "content");
				append_text(buf, (const char *) frame->content.data,
							frame->content.len, "message content");
			}
			else
			{
				int			enclen;
				char	   *encoded;

				if (frame->content.len > (size_t) (MaxAllocSize / 4 * 3 - 4))
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("message content of %zu bytes is too large to show",
									frame->content.len)));
				enclen = pg_b64_enc_len((int) frame->content.len);
				encoded = palloc(enclen + 1);
				enclen = pg_b64_encode((const char *) frame->content.data,
									   (int) frame->content.len,
									   encoded, enclen);
				if (enclen < 0)
					elog(ERROR, "could not encode message content in base64");
				encoded[enclen] = '\0';
				append_key(buf, "content_base64");
				appendStringInfo(buf, "\"%s\"", encoded);
			}
			break;

		case DTS_FRAME_STREAM_START:
			append_uint(buf, "xid", frame->xid);
			append_bool(buf, "first_segment",
						(frame->flags & DTS_STREAM_FIRST_SEGMENT) != 0);
			break;

		case DTS_FRAME_STREAM_STOP:
			break;

		case DTS_FRAME_STREAM_ABORT:
			append_uint(buf, "xid", frame->xid);
			append_uint(buf, "subxid", frame->subxid);
			break;

		case DTS_FRAME_XID:
			append_uint(buf, "xid", frame->xid);
			break;
	}

	appendStringInfoChar(buf, '}');
}

/*
 * Appends ", "key": {column: value, ...}" for the present and NULL columns
 * of tuple, then ", "unchanged_key": [column, ...]" when some columns are
 * unchanged TOASTed values.  Columns absent from a key-only tuple are left
 * out.
 */
static void
append_tuple(StringInfo buf, const char *key, const char *unchanged_key,
			 const DtsRelation *rel, const DtsTuple *tuple)
{
	ErrorContextCallback errcallback;
	FramesValueContext ectx;
	bool		first = true;
	int			nunchanged = 0;
	int			i;

	if (tuple->ncols != rel->ncols)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid pg_dts message"),
				 errdetail("A tuple of relation %u has %d columns instead of %d.",
						   rel->relid, tuple->ncols, rel->ncols)));

	ectx.rel = rel;
	ectx.col = 0;
	ectx.typname = NULL;
	errcallback.callback = frames_value_error_callback;
	errcallback.arg = &ectx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	append_key(buf, key);
	appendStringInfoChar(buf, '{');
	for (i = 0; i < tuple->ncols; i++)
	{
		const DtsValue *value = &tuple->values[i];
		const DtsColumn *col = &rel->columns[i];

		if (value->status == DTS_VALUE_ABSENT)
			continue;
		if (value->status == DTS_VALUE_UNCHANGED)
		{
			nunchanged++;
			continue;
		}

		ectx.col = i;
		ectx.typname = NULL;
		if (!first)
			appendStringInfoString(buf, ", ");
		first = false;
		append_text(buf, col->name, strlen(col->name), "column name");
		appendStringInfoString(buf, ": ");
		if (value->status == DTS_VALUE_NULL)
			appendStringInfoString(buf, "null");
		else
			append_value(buf, rel, i, value, &ectx);
	}
	appendStringInfoChar(buf, '}');

	error_context_stack = errcallback.previous;

	if (nunchanged > 0)
	{
		first = true;
		append_key(buf, unchanged_key);
		appendStringInfoChar(buf, '[');
		for (i = 0; i < tuple->ncols; i++)
		{
			const DtsColumn *col = &rel->columns[i];

			if (tuple->values[i].status != DTS_VALUE_UNCHANGED)
				continue;
			if (!first)
				appendStringInfoString(buf, ", ");
			first = false;
			append_text(buf, col->name, strlen(col->name), "column name");
		}
		appendStringInfoChar(buf, ']');
	}
}

/*
 * Appends the text form of one present value as a JSON string.  The caller
 * has set up the error context naming the column.
 */
static void
append_value(StringInfo buf, const DtsRelation *rel, int col,
			 const DtsValue *value, FramesValueContext *ectx)
{
	const DtsColumn *column = &rel->columns[col];
	FramesTypeEntry *type;
	uint8_t		fixed[8];
	const uint8_t *image;
	size_t		len;
	StringInfoData recvbuf;
	Datum		datum;
	char	   *text;

	if (value->encoding == DTS_ENC_TEXT)
	{
		if (!text_is_valid((const char *) value->bytes.data,
						   value->bytes.len))
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("invalid text value in column \"%s\" of type %s",
							column->name,
							format_type_extended(column->typoid, -1,
												 FORMAT_TYPE_ALLOW_INVALID)),
					 errdetail("The value is not valid in encoding \"%s\".",
							   GetDatabaseEncodingName())));
		text = value->bytes.len > 0 ?
			pnstrdup((const char *) value->bytes.data, value->bytes.len) :
			pstrdup("");
		escape_json(buf, text);
		pfree(text);
		return;
	}

	type = frames_lookup_type(column->typoid);
	ectx->typname = type->typname;

	len = dts_value_image(value, fixed, &image);
	if (len > (size_t) MaxAllocSize - 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid pg_dts message"),
				 errdetail("A value of %zu bytes is too large.", len)));

	/* receive functions expect a NUL after the data, as pq_getmessage gives */
	recvbuf.data = palloc(len + 1);
	if (len > 0)
		memcpy(recvbuf.data, image, len);
	recvbuf.data[len] = '\0';
	recvbuf.len = (int) len;
	recvbuf.maxlen = (int) len + 1;
	recvbuf.cursor = 0;

	datum = ReceiveFunctionCall(&type->recv, &recvbuf, type->recv_ioparam,
								column->typmod);
	if (recvbuf.cursor != recvbuf.len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("incorrect binary data format in column \"%s\" of type %s",
						column->name, type->typname),
				 errdetail_plural("%d byte of the value was left over.",
								  "%d bytes of the value were left over.",
								  recvbuf.len - recvbuf.cursor,
								  recvbuf.len - recvbuf.cursor)));

	text = OutputFunctionCall(&type->out, datum);
	escape_json(buf, text);
	pfree(text);
	pfree(recvbuf.data);
}

/*
 * dts.creating_extension() RETURNS boolean
 *
 * True while an extension script runs (CREATE EXTENSION, ALTER EXTENSION
 * UPDATE): the commands of the script are not recorded, only the command
 * that ran it.
 */
Datum
dts_creating_extension(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(creating_extension);
}

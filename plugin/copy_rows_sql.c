/*-------------------------------------------------------------------------
 *
 * copy_rows_sql.c
 *	  dts.copy_rows(query text, chunk_bytes int): the rows of a query in
 *	  binary COPY's tuple format, many rows per bytea, for the full sync of
 *	  pg_dts_ship:
 *
 *		COPY (SELECT dts.copy_rows('SELECT a, b FROM ONLY s.t WHERE ...'))
 *			TO STDOUT (FORMAT binary)
 *
 * COPY ... TO STDOUT (FORMAT binary) sends one CopyData message per row and
 * calls each column's send function through fmgr, which builds a fresh
 * bytea per value; the shipper then takes the rows one PQgetCopyData (one
 * malloc and copy) at a time.  For tables of small rows that per-row and
 * per-value work was a quarter of the source backend's CPU and most of the
 * client's (bench/README.md, "fullsync").  Here the query runs in a
 * portal of our own whose rows go to a receiver that writes binary COPY
 * tuples (int16 field count; per field an int32 length, -1 for NULL, and
 * the send function's image) straight into a buffer, common types without
 * fmgr (the images are those of their send functions, byte for byte), and
 * each call of the set-returning function returns one buffer of about
 * chunk_bytes:
 *
 *		int32 row count (big-endian), then that many binary COPY tuples
 *
 * so that a client strips 4 bytes and passes the rest, untouched, to a
 * COPY ... FROM STDIN (FORMAT binary) after the binary header.  The
 * function must be called in the SELECT list (ProjectSet calls it once per
 * chunk; in FROM, PostgreSQL would gather every chunk in a tuplestore
 * first).  It runs the query as the calling role, in the calling
 * transaction's snapshot, like query_to_xml().
 *
 * Text types are passed as stored only when the client encoding is the
 * database's (else their send functions convert them, as COPY would).
 *
 * plugin/copy_rows_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"

#include "pg_dts.h"

PG_FUNCTION_INFO_V1(dts_copy_rows);

#define COPY_ROWS_MIN_CHUNK		1024
#define COPY_ROWS_FIRST_FETCH	16		/* rows of the first PortalRunFetch */
#define COPY_ROWS_MAX_FETCH		10000	/* the most rows of any other */
#define COPY_ROWS_FETCH_BYTES	(64 * 1024 * 1024)	/* see rows_to_fetch() */

/* How one column's values become a binary COPY field */
typedef enum CopyFieldPath
{
	FIELD_BE2,					/* int2: 2 bytes big-endian */
	FIELD_BE4,					/* int4, oid, date, float4 */
	FIELD_BE8,					/* int8, timestamp(tz), time, money, float8 */
	FIELD_BYTE,					/* bool, "char" */
	FIELD_STORED,				/* bytea, and text-like without conversion */
	FIELD_NUMERIC,				/* numeric_send's image without fmgr */
	FIELD_SEND					/* the type's send function */
} CopyFieldPath;

typedef struct CopyField
{
	CopyFieldPath path;
	FmgrInfo	send;			/* FIELD_SEND */
} CopyField;

typedef struct CopyRowsState
{
	DestReceiver pub;			/* first: the portal's receiver */
	char	   *portal_name;
	int			natts;
	CopyField  *fields;			/* set up at the first row */
	MemoryContext cxt;			/* lives across calls */
	MemoryContext rowcxt;		/* detoasting, send functions; per row */
	size_t		chunk_bytes;
	DtsWriteBuf buf;			/* the chunk being filled */
	int32		rows;			/* in buf */
	List	   *full;			/* chunks filled, not yet returned */
	bytea	   *returned;		/* the chunk the last call returned */
	uint64		rows_seen;		/* every row so far */
	uint64		bytes_seen;
	size_t		max_row_bytes;
	bool		done;			/* the portal has no more rows */
} CopyRowsState;

static void *
copy_rows_repalloc(void *ptr, size_t size)
{
	return repalloc_huge(ptr, size);
}

static inline void
put_be16(DtsWriteBuf *buf, uint16 v)
{
	dts_reserve(buf, 2);
	buf->data[buf->len++] = (uint8_t) (v >> 8);
	buf->data[buf->len++] = (uint8_t) v;
}

static inline void
put_be32(DtsWriteBuf *buf, uint32 v)
{
	dts_reserve(buf, 4);
	buf->data[buf->len++] = (uint8_t) (v >> 24);
	buf->data[buf->len++] = (uint8_t) (v >> 16);
	buf->data[buf->len++] = (uint8_t) (v >> 8);
	buf->data[buf->len++] = (uint8_t) v;
}

static inline void
put_be64(DtsWriteBuf *buf, uint64 v)
{
	put_be32(buf, (uint32) (v >> 32));
	put_be32(buf, (uint32) v);
}

/* Chooses how the values of a column of type typoid are written */
static void
choose_field_path(CopyField *f, Oid typoid, bool same_encoding,
				  MemoryContext cxt)
{
	Oid			func;
	bool		isvarlena;

	switch (getBaseType(typoid))
	{
		case INT2OID:
			f->path = FIELD_BE2;
			return;
		case INT4OID:
		case OIDOID:
		case DATEOID:
		case FLOAT4OID:
			f->path = FIELD_BE4;
			return;
		case INT8OID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case CASHOID:
		case FLOAT8OID:
			f->path = FIELD_BE8;
			return;
		case BOOLOID:
		case CHAROID:
			f->path = FIELD_BYTE;
			return;
		case BYTEAOID:
			f->path = FIELD_STORED;
			return;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case JSONOID:
			if (same_encoding)
			{
				f->path = FIELD_STORED;
				return;
			}
			break;
		case NUMERICOID:
			f->path = FIELD_NUMERIC;
			return;
		default:
			break;
	}
	getTypeBinaryOutputInfo(typoid, &func, &isvarlena);
	if (!OidIsValid(func))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("no binary output function available for type %s",
						format_type_be(typoid)),
				 errhint("Copy a table with such a column with COPY ... TO STDOUT (FORMAT text).")));
	f->path = FIELD_SEND;
	fmgr_info_cxt(func, &f->send, cxt);
}

/*
 * The datum's bits as the send functions write them.  A float4 datum
 * holds the float's bits in its low 32 bits, a float8's in all 64 (on
 * the 64-bit platforms PostgreSQL 15 passes float8 by value).
 */
static inline void
put_field(CopyRowsState *st, CopyField *f, Datum value)
{
	DtsWriteBuf *buf = &st->buf;

	switch (f->path)
	{
		case FIELD_BE2:
			put_be32(buf, 2);
			put_be16(buf, (uint16) DatumGetInt16(value));
			break;
		case FIELD_BE4:
			put_be32(buf, 4);
			put_be32(buf, (uint32) DatumGetUInt32(value));
			break;
		case FIELD_BE8:
			put_be32(buf, 8);
			put_be64(buf, (uint64) DatumGetInt64(value));
			break;
		case FIELD_BYTE:
			put_be32(buf, 1);
			dts_put_byte(buf, (uint8) DatumGetChar(value));
			break;
		case FIELD_STORED:
			{
				struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
				size_t		len = VARSIZE_ANY_EXHDR(v);

				put_be32(buf, (uint32) len);
				dts_reserve(buf, len);
				memcpy(buf->data + buf->len, VARDATA_ANY(v), len);
				buf->len += len;
			}
			break;
		case FIELD_NUMERIC:
			pg_dts_put_numeric_copy_field(buf, value);
			break;
		case FIELD_SEND:
			{
				bytea	   *image = SendFunctionCall(&f->send, value);
				size_t		len = VARSIZE(image) - VARHDRSZ;

				put_be32(buf, (uint32) len);
				dts_reserve(buf, len);
				memcpy(buf->data + buf->len, VARDATA(image), len);
				buf->len += len;
			}
			break;
	}
}

/* A new, empty st->buf, with room for its header */
static void
start_chunk(CopyRowsState *st)
{
	st->buf.cap = st->chunk_bytes + 1024;
	st->buf.data = MemoryContextAllocHuge(st->cxt, st->buf.cap);
	st->buf.len = VARHDRSZ + 4;
	st->rows = 0;
}

/* st->buf, with its length and row count set, goes to st->full */
static void
end_chunk(CopyRowsState *st)
{
	uint8_t    *p = st->buf.data + VARHDRSZ;
	MemoryContext oldcxt;

	if (st->buf.len > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dts.copy_rows(): a chunk of %zu bytes is more than a bytea can hold",
						st->buf.len),
				 errhint("Copy this table with COPY ... TO STDOUT (FORMAT binary); in a pg_dts_ship task, set \"parallel\": {\"chunked_copy\": false}.")));
	SET_VARSIZE(st->buf.data, st->buf.len);
	p[0] = (uint8_t) ((uint32) st->rows >> 24);
	p[1] = (uint8_t) ((uint32) st->rows >> 16);
	p[2] = (uint8_t) ((uint32) st->rows >> 8);
	p[3] = (uint8_t) st->rows;
	oldcxt = MemoryContextSwitchTo(st->cxt);
	st->full = lappend(st->full, st->buf.data);
	MemoryContextSwitchTo(oldcxt);
	st->buf.data = NULL;
}

/*
 * The portal's receiver: one binary COPY tuple per row, into st->buf; a
 * buffer that reaches chunk_bytes is done, and the next row starts another
 * (the portal cannot stop in the middle of a fetch).
 */
static bool
copy_rows_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CopyRowsState *st = (CopyRowsState *) self;
	size_t		start = st->buf.len;
	MemoryContext oldcxt;

	slot_getallattrs(slot);
	oldcxt = MemoryContextSwitchTo(st->rowcxt);
	put_be16(&st->buf, (uint16) st->natts);
	for (int i = 0; i < st->natts; i++)
	{
		if (slot->tts_isnull[i])
			put_be32(&st->buf, (uint32) -1);
		else
			put_field(st, &st->fields[i], slot->tts_values[i]);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
	st->rows++;
	st->rows_seen++;
	st->bytes_seen += st->buf.len - start;
	st->max_row_bytes = Max(st->max_row_bytes, st->buf.len - start);
	if (st->buf.len >= st->chunk_bytes)
	{
		end_chunk(st);
		start_chunk(st);
	}
	return true;
}

static void
copy_rows_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	CopyRowsState *st = (CopyRowsState *) self;
	bool		same_encoding = pg_get_client_encoding() == GetDatabaseEncoding();

	if (st->fields != NULL)
		return;					/* each fetch starts the receiver again */
	st->natts = typeinfo->natts;
	st->fields = MemoryContextAllocZero(GetMemoryChunkContext(st),
										sizeof(CopyField) * Max(st->natts, 1));
	for (int i = 0; i < st->natts; i++)
		choose_field_path(&st->fields[i], TupleDescAttr(typeinfo, i)->atttypid,
						  same_encoding, GetMemoryChunkContext(st));
}

static void
copy_rows_shutdown(DestReceiver *self)
{
}

static void
copy_rows_destroy(DestReceiver *self)
{
}

/* Opens the query in a cursor that outlives this call; sets portal_name */
static void
open_query(CopyRowsState *st, const char *query)
{
	SPIPlanPtr	plan;
	Portal		portal;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (!SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dts.copy_rows() needs a query that returns rows"),
				 errdetail("The query was: %s", query)));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	st->portal_name = MemoryContextStrdup(GetMemoryChunkContext(st),
										  portal->name);
	SPI_finish();
}

/*
 * How many rows the next fetch asks for: about a chunk's worth at the
 * average row size so far, and no more than COPY_ROWS_FETCH_BYTES' worth at
 * the largest (the rows of one fetch are held until they are returned).
 */
static long
rows_to_fetch(const CopyRowsState *st)
{
	double		want;

	if (st->rows_seen == 0)
		return COPY_ROWS_FIRST_FETCH;
	want = st->chunk_bytes / ((double) st->bytes_seen / st->rows_seen) + 1;
	want = Min(want, (double) COPY_ROWS_FETCH_BYTES / st->max_row_bytes + 1);
	return (long) Min(want, COPY_ROWS_MAX_FETCH);
}

/* Fetches rows until a chunk is full or the rows end */
static void
fill_chunks(CopyRowsState *st)
{
	Portal		portal = GetPortalByName(st->portal_name);

	if (!PortalIsValid(portal))
		elog(ERROR, "dts.copy_rows(): cursor \"%s\" is gone", st->portal_name);
	while (st->full == NIL && !st->done)
	{
		long		want = rows_to_fetch(st);

		if (PortalRunFetch(portal, FETCH_FORWARD, want, &st->pub) < (uint64) want)
		{
			st->done = true;
			if (st->rows > 0)
				end_chunk(st);
		}
	}
}

Datum
dts_copy_rows(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	CopyRowsState *st;

	if (SRF_IS_FIRSTCALL())
	{
		int32		chunk_bytes = PG_GETARG_INT32(1);
		MemoryContext oldcxt;

		if (chunk_bytes < COPY_ROWS_MIN_CHUNK)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("chunk_bytes must be at least %d, not %d",
							COPY_ROWS_MIN_CHUNK, chunk_bytes)));
		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		st = palloc0(sizeof(CopyRowsState));
		st->pub.receiveSlot = copy_rows_receive;
		st->pub.rStartup = copy_rows_startup;
		st->pub.rShutdown = copy_rows_shutdown;
		st->pub.rDestroy = copy_rows_destroy;
		st->pub.mydest = DestNone;
		st->cxt = funcctx->multi_call_memory_ctx;
		st->rowcxt = AllocSetContextCreate(st->cxt, "dts.copy_rows row",
										   ALLOCSET_DEFAULT_SIZES);
		st->chunk_bytes = (size_t) chunk_bytes;
		st->buf.realloc_fn = copy_rows_repalloc;
		start_chunk(st);
		funcctx->user_fctx = st;
		open_query(st, text_to_cstring(PG_GETARG_TEXT_PP(0)));
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = funcctx->user_fctx;

	/* the caller is done with the last chunk */
	if (st->returned != NULL)
	{
		pfree(st->returned);
		st->returned = NULL;
	}
	fill_chunks(st);
	if (st->full != NIL)
	{
		st->returned = (bytea *) linitial(st->full);
		st->full = list_delete_first(st->full);
		SRF_RETURN_NEXT(funcctx, PointerGetDatum(st->returned));
	}
	SPI_cursor_close(GetPortalByName(st->portal_name));
	SRF_RETURN_DONE(funcctx);
}

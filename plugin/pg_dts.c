/*-------------------------------------------------------------------------
 *
 * pg_dts.c
 *	  The pg_dts logical decoding output plugin: turns decoded changes into
 *	  the frames of include/pg_dts/frame.h (spec: docs/frames.md).
 *
 * Frames are batched: they accumulate in one message until it reaches
 * batch_bytes, at the end of every transaction, and around every stream
 * block, and only then is the message handed to OutputPluginWrite().  So a
 * message never holds more than one batch of a transaction, however big.
 * BEGIN is written lazily, before the first change that passes the
 * filters, so that filtered-out transactions cost nothing on the wire.
 *
 * plugin/pg_dts.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/output_plugin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_dts.h"

PG_MODULE_MAGIC;

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void pg_dts_startup(LogicalDecodingContext *ctx,
						   OutputPluginOptions *opt, bool is_init);
static void pg_dts_shutdown(LogicalDecodingContext *ctx);
static bool pg_dts_filter_by_origin(LogicalDecodingContext *ctx,
									RepOriginId origin_id);
static void pg_dts_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void pg_dts_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						  XLogRecPtr commit_lsn);
static void pg_dts_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						  Relation rel, ReorderBufferChange *change);
static void pg_dts_truncate(LogicalDecodingContext *ctx,
							ReorderBufferTXN *txn, int nrelations,
							Relation relations[],
							ReorderBufferChange *change);
static void pg_dts_message(LogicalDecodingContext *ctx,
						   ReorderBufferTXN *txn, XLogRecPtr message_lsn,
						   bool transactional, const char *prefix,
						   Size message_size, const char *message);
static void pg_dts_stream_start(LogicalDecodingContext *ctx,
								ReorderBufferTXN *txn);
static void pg_dts_stream_stop(LogicalDecodingContext *ctx,
							   ReorderBufferTXN *txn);
static void pg_dts_stream_abort(LogicalDecodingContext *ctx,
								ReorderBufferTXN *txn, XLogRecPtr abort_lsn);
static void pg_dts_stream_commit(LogicalDecodingContext *ctx,
								 ReorderBufferTXN *txn,
								 XLogRecPtr commit_lsn);

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = pg_dts_startup;
	cb->shutdown_cb = pg_dts_shutdown;
	cb->filter_by_origin_cb = pg_dts_filter_by_origin;
	cb->begin_cb = pg_dts_begin;
	cb->commit_cb = pg_dts_commit;
	cb->change_cb = pg_dts_change;
	cb->truncate_cb = pg_dts_truncate;
	cb->message_cb = pg_dts_message;
	cb->stream_start_cb = pg_dts_stream_start;
	cb->stream_stop_cb = pg_dts_stream_stop;
	cb->stream_abort_cb = pg_dts_stream_abort;
	cb->stream_commit_cb = pg_dts_stream_commit;
	cb->stream_change_cb = pg_dts_change;
	cb->stream_message_cb = pg_dts_message;
	cb->stream_truncate_cb = pg_dts_truncate;
}

/* ----------------------------------------------------------------
 *		Message assembly
 * ----------------------------------------------------------------
 */

static void *
dts_repalloc(void *ptr, size_t size)
{
	return repalloc_huge(ptr, size);
}

static void
init_scratch(DtsWriteBuf *buf, size_t size)
{
	buf->data = palloc(size);
	buf->len = 0;
	buf->cap = size;
	buf->realloc_fn = dts_repalloc;
}

static inline bool
message_has_frames(PgDtsData *data)
{
	return data->buf.len > DTS_MSG_HEADER_SIZE;
}

/* Hands the message assembled so far to the output plugin writer. */
static void
flush_message(LogicalDecodingContext *ctx, PgDtsData *data)
{
	if (!message_has_frames(data))
		return;
	dts_message_finish(&data->buf);
	OutputPluginPrepareWrite(ctx, true);
	appendBinaryStringInfo(ctx->out, (char *) data->buf.data,
						   data->buf.len);
	OutputPluginWrite(ctx, true);

	/* a huge row grew the buffer: give the memory back */
	if (data->buf.cap > 4 * (size_t) data->opts.batch_bytes + 1024)
	{
		data->buf.cap = 2 * (size_t) data->opts.batch_bytes + 64;
		data->buf.data = repalloc_huge(data->buf.data, data->buf.cap);
	}
	data->buf.len = 0;
	dts_message_start(&data->buf);
}

static inline void
flush_if_full(LogicalDecodingContext *ctx, PgDtsData *data)
{
	if (data->buf.len >= (size_t) data->opts.batch_bytes)
		flush_message(ctx, data);
}

/* Writes the BEGIN (and ORIGIN) owed by the current transaction. */
static void
write_pending_begin(PgDtsData *data, ReorderBufferTXN *txn)
{
	if (!data->begin_pending)
		return;
	dts_write_begin(&data->buf, txn->xid, txn->final_lsn,
					txn->xact_time.commit_time);
	if (txn->origin_id != InvalidRepOriginId)
	{
		char	   *origin;

		if (replorigin_by_oid(txn->origin_id, true, &origin))
			dts_write_origin(&data->buf, txn->origin_lsn, origin,
							 strlen(origin));
	}
	data->begin_pending = false;
}

/*
 * Makes the frames that must precede a change of a transaction: BEGIN, or
 * inside a stream block the XID frame of the (sub)transaction.
 */
static void
prepare_change(PgDtsData *data, ReorderBufferTXN *txn, TransactionId xid)
{
	if (!data->in_stream)
		write_pending_begin(data, txn);
	else if (xid != data->stream_cur_xid)
	{
		dts_write_xid(&data->buf, xid);
		data->stream_cur_xid = xid;
	}
}

/* Sends the RELATION frame of entry unless the reader has it already. */
static void
ensure_relation_sent(PgDtsData *data, PgDtsRelEntry *entry, Relation rel)
{
	if (data->in_stream)
	{
		if (entry->sent || entry->stream_sent_xid == data->stream_xid)
			return;
		pg_dts_write_relation(data, entry, rel);
		entry->stream_sent_xid = data->stream_xid;
		return;
	}
	if (entry->sent)
		return;
	pg_dts_write_relation(data, entry, rel);
	entry->sent = true;
}

/* ----------------------------------------------------------------
 *		Callbacks
 * ----------------------------------------------------------------
 */

static void
pg_dts_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
			   bool is_init)
{
	PgDtsData  *data = palloc0(sizeof(PgDtsData));

	pg_dts_parse_options(&data->opts, ctx->output_plugin_options);

	data->change_context = AllocSetContextCreate(ctx->context,
												 "pg_dts change",
												 ALLOCSET_DEFAULT_SIZES);
	data->buf.cap = 2 * (size_t) data->opts.batch_bytes + 64;
	data->buf.data = palloc(data->buf.cap);
	data->buf.realloc_fn = dts_repalloc;
	dts_message_start(&data->buf);
	init_scratch(&data->jsonb_copy, 1024);

	ctx->output_plugin_private = data;
	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;
	if (!data->opts.streaming)
		ctx->streaming = false;

	pg_dts_relcache_init();
}

static void
pg_dts_shutdown(LogicalDecodingContext *ctx)
{
	pg_dts_relcache_reset();
}

static bool
pg_dts_filter_by_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	PgDtsData  *data = ctx->output_plugin_private;

	return data->opts.skip_replayed && origin_id != InvalidRepOriginId;
}

static void
pg_dts_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	PgDtsData  *data = ctx->output_plugin_private;

	data->begin_pending = true;
}

static void
pg_dts_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  XLogRecPtr commit_lsn)
{
	PgDtsData  *data = ctx->output_plugin_private;

	if (data->begin_pending)
	{
		/* nothing of this transaction passed the filters */
		data->begin_pending = false;
		OutputPluginUpdateProgress(ctx, true);
		return;
	}
	dts_write_commit(&data->buf, txn->xid, commit_lsn, txn->end_lsn,
					 txn->xact_time.commit_time);
	flush_message(ctx, data);
}

/* Writes the old-tuple marker and, if any, the old tuple. */
static void
write_old_tuple(PgDtsData *data, PgDtsRelEntry *entry, TupleDesc desc,
				HeapTuple oldtuple)
{
	bool		key_only;

	if (oldtuple == NULL)
	{
		dts_put_byte(&data->buf, DTS_OLD_NONE);
		return;
	}
	key_only = entry->replident != REPLICA_IDENTITY_FULL && entry->nkeys > 0;
	dts_put_byte(&data->buf, key_only ? DTS_OLD_KEY : DTS_OLD_FULL);
	pg_dts_write_tuple(data, entry, desc, oldtuple, key_only);
}

static void
pg_dts_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  Relation rel, ReorderBufferChange *change)
{
	PgDtsData  *data = ctx->output_plugin_private;
	PgDtsRelEntry *entry;
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext oldcxt;
	DtsFrameKind kind;
	HeapTuple	oldtuple;
	HeapTuple	newtuple;
	size_t		at;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			kind = DTS_FRAME_INSERT;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			kind = DTS_FRAME_UPDATE;
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			kind = DTS_FRAME_DELETE;
			break;
		default:
			return;
	}

	entry = pg_dts_get_relentry(data, rel);
	if (!entry->publish)
		return;
	oldtuple = change->data.tp.oldtuple ?
		&change->data.tp.oldtuple->tuple : NULL;
	newtuple = change->data.tp.newtuple ?
		&change->data.tp.newtuple->tuple : NULL;

	oldcxt = MemoryContextSwitchTo(data->change_context);

	/* a table rule's "dml" and "where"; may make an UPDATE another kind */
	if (entry->restricted &&
		!pg_dts_rule_filter_change(entry, &kind, &oldtuple, &newtuple))
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(data->change_context);
		return;
	}

	prepare_change(data, txn, change->txn->xid);
	ensure_relation_sent(data, entry, rel);

	at = dts_write_change_start(&data->buf, kind, RelationGetRelid(rel));
	switch (kind)
	{
		case DTS_FRAME_INSERT:
			pg_dts_write_tuple(data, entry, desc, newtuple, false);
			break;
		case DTS_FRAME_UPDATE:
			write_old_tuple(data, entry, desc, oldtuple);
			pg_dts_write_tuple(data, entry, desc, newtuple, false);
			break;
		default:
			write_old_tuple(data, entry, desc, oldtuple);
			break;
	}
	dts_frame_finish(&data->buf, at);

	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(data->change_context);
	flush_if_full(ctx, data);
}

static void
pg_dts_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				int nrelations, Relation relations[],
				ReorderBufferChange *change)
{
	PgDtsData  *data = ctx->output_plugin_private;
	MemoryContext oldcxt;
	uint32_t   *relids;
	int			nselected = 0;
	uint8_t		flags = 0;

	oldcxt = MemoryContextSwitchTo(data->change_context);
	relids = palloc(sizeof(uint32_t) * Max(nrelations, 1));
	for (int i = 0; i < nrelations; i++)
	{
		PgDtsRelEntry *entry = pg_dts_get_relentry(data, relations[i]);

		if (!entry->publish || !(entry->dml & PGDTS_DML_TRUNCATE))
			continue;
		if (nselected == 0)
			prepare_change(data, txn, change->txn->xid);
		ensure_relation_sent(data, entry, relations[i]);
		relids[nselected++] = RelationGetRelid(relations[i]);
	}
	if (nselected > 0)
	{
		if (change->data.truncate.cascade)
			flags |= DTS_TRUNCATE_CASCADE;
		if (change->data.truncate.restart_seqs)
			flags |= DTS_TRUNCATE_RESTART_SEQS;
		dts_write_truncate(&data->buf, flags, nselected, relids);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(data->change_context);
	flush_if_full(ctx, data);
}

static void
pg_dts_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr message_lsn, bool transactional,
			   const char *prefix, Size message_size, const char *message)
{
	PgDtsData  *data = ctx->output_plugin_private;

	if (!pg_dts_message_selected(&data->opts, prefix))
		return;
	if (transactional)
		prepare_change(data, txn, txn->xid);
	dts_write_message(&data->buf,
					  transactional ? DTS_MESSAGE_TRANSACTIONAL : 0,
					  message_lsn, prefix, strlen(prefix),
					  message, message_size);
	if (transactional)
		flush_if_full(ctx, data);
	else
		flush_message(ctx, data);
}

static void
pg_dts_stream_start(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	PgDtsData  *data = ctx->output_plugin_private;

	data->in_stream = true;
	data->stream_xid = txn->xid;
	data->stream_cur_xid = txn->xid;
	dts_write_stream_start(&data->buf, txn->xid,
						   rbtxn_is_streamed(txn) ? 0 : DTS_STREAM_FIRST_SEGMENT);
}

static void
pg_dts_stream_stop(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	PgDtsData  *data = ctx->output_plugin_private;

	dts_write_stream_stop(&data->buf);
	flush_message(ctx, data);
	data->in_stream = false;
}

static void
pg_dts_stream_abort(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					XLogRecPtr abort_lsn)
{
	PgDtsData  *data = ctx->output_plugin_private;
	ReorderBufferTXN *toptxn = txn->toptxn ? txn->toptxn : txn;

	dts_write_stream_abort(&data->buf, toptxn->xid, txn->xid);
	flush_message(ctx, data);
}

static void
pg_dts_stream_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 XLogRecPtr commit_lsn)
{
	PgDtsData  *data = ctx->output_plugin_private;

	dts_write_stream_commit(&data->buf, txn->xid, commit_lsn, txn->end_lsn,
							txn->xact_time.commit_time);
	flush_message(ctx, data);
}

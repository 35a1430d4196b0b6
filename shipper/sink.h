/*-------------------------------------------------------------------------
 *
 * sink.h
 *	  The one interface every destination of pg_dts_ship implements: a
 *	  table of function pointers plus the sink's private state.
 *
 * The shipper drives a sink with whole transactions, in commit order:
 *
 *		begin(txn)  change(txn, c) ...  commit(txn)
 *
 * and, between transactions, non-transactional logical messages as
 * change(NULL, c).  A streamed (in-progress) transaction is spooled by the
 * shipper and handed to the sink only after its STREAM_COMMIT, as one
 * ordinary transaction; a sink never sees aborted changes.  If the stream
 * breaks inside a transaction (connection lost, stop signal), the shipper
 * calls rollback() instead of commit(): the server will send the whole
 * transaction again.
 *
 * Durability contract.  durable_lsn() returns the end LSN of the last
 * transaction (COMMIT end_lsn) whose effects the sink has made durable,
 * i.e. that would survive a crash of the shipper and of the machine it
 * writes to; 0 before the first.  It only ever grows.  The shipper reports
 * exactly this value to the server as the flushed position, so the server
 * keeps everything after it and sends it again after a restart: a sink
 * must never report as durable what it could still lose.  What that means
 * is the sink's business (fsync for a file, a delivery report for Kafka,
 * the COMMIT of the transaction that also stored the LSN for PostgreSQL).
 * flush() makes durable what the sink has accepted, either when the sink's
 * own schedule says it is due or, with force, now (before a feedback the
 * server asked for, at rotation and at shutdown).
 *
 * Ownership.  Everything passed to a callback (the txn, the change, the
 * frame and the relations and values it points to) belongs to the caller
 * and is valid only during the call: a sink copies what it keeps.  The
 * state pointer belongs to the sink; close() frees it and everything the
 * sink opened, and the DtsSink may then be reused.
 *
 * Errors.  A callback that fails returns -1 after recording what failed,
 * naming the object and saying what to do, in *err (log.h); it does not
 * log it.  The shipper logs it once and, depending on err->cls, retries
 * (after rollback() and a reconnect) or exits.
 *
 * shipper/sink.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_SINK_H
#define PG_DTS_SHIP_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "pg_dts/frame.h"
#include "log.h"

/* One transaction as the sink sees it. */
typedef struct DtsTxn
{
	uint32_t	xid;			/* top-level transaction id */
	uint64_t	commit_lsn;		/* LSN of the commit record */
	uint64_t	end_lsn;		/* its end: the position to confirm; 0 until
								 * commit() except for streamed transactions,
								 * which are replayed once it is known */
	int64_t		commit_time;	/* microseconds since 2000-01-01 UTC */
	const char *origin;			/* replication origin name, or NULL */
} DtsTxn;

/* One change: a decoded frame plus what the shipper knows about it. */
typedef struct DtsChange
{
	const DtsFrame *frame;		/* INSERT UPDATE DELETE TRUNCATE MESSAGE */

	/*
	 * TRUNCATE: the relations of frame->relids, NULL where the stream did
	 * not describe one (then only the relid is known).
	 */
	const DtsRelation *const *truncated;

	/*
	 * INSERT or UPDATE of public.dts_postgres_heartbeat: a heartbeat row,
	 * shown as such and not as a change of a user table.
	 */
	bool		heartbeat;
	int64_t		beat_time;		/* heartbeat: beat_time, us since
								 * 2000-01-01 UTC, or 0 if unreadable */
	int64_t		latency_us;		/* heartbeat: receive time - beat_time */
} DtsChange;

typedef struct DtsSink DtsSink;

typedef struct DtsSinkOps
{
	const char *name;			/* "file", ... for messages */

	/* Opens the destination (files, connections).  Called once. */
	int			(*open) (DtsSink *sink, DtsError *err);
	int			(*begin) (DtsSink *sink, const DtsTxn *txn, DtsError *err);
	/* txn is NULL for a non-transactional logical message */
	int			(*change) (DtsSink *sink, const DtsTxn *txn,
						   const DtsChange *change, DtsError *err);
	/* txn->end_lsn is set; the transaction becomes durable later or now */
	int			(*commit) (DtsSink *sink, const DtsTxn *txn, DtsError *err);
	/* Forgets the open transaction (the server sends it again); see above */
	int			(*rollback) (DtsSink *sink, DtsError *err);

	/*
	 * Makes accepted transactions durable if due (force: now).  Sets
	 * *next_due_us to when it next wants to be called (a time from
	 * dts_now_us(), or INT64_MAX for never).
	 */
	int			(*flush) (DtsSink *sink, bool force, int64_t now_us,
						  int64_t *next_due_us, DtsError *err);
	uint64_t	(*durable_lsn) (DtsSink *sink);
	/* Is everything accepted so far durable, with no transaction open? */
	bool		(*idle) (DtsSink *sink);
	/* SIGHUP: make everything durable, close and reopen (log rotation). */
	int			(*reopen) (DtsSink *sink, DtsError *err);
	/* Releases everything; does not flush (call flush(force) first). */
	void		(*close) (DtsSink *sink);
} DtsSinkOps;

struct DtsSink
{
	const DtsSinkOps *ops;
	void	   *state;			/* the sink's own, freed by close() */
};

/* ----------------------------------------------------------------
 *		The sinks
 * ----------------------------------------------------------------
 */

/* File sink (sinks/file.c): JSON lines, see docs/shipper.md. */
typedef struct DtsFileSinkConfig
{
	const char *path;			/* "-" = standard output; copied */
	int			fsync_interval_ms;	/* 0 = fsync at every commit */
	bool		begin_commit_lines; /* also write "begin" and "commit" lines */
} DtsFileSinkConfig;

/* Sets up *sink as a file sink; nothing is opened before ops->open(). */
extern void dts_file_sink_init(DtsSink *sink, const DtsFileSinkConfig *config);

#endif							/* PG_DTS_SHIP_SINK_H */

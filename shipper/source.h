/*-------------------------------------------------------------------------
 *
 * source.h
 *	  The source side of pg_dts_ship: connections to the source server,
 *	  the replication slot commands, and the stream itself
 *	  (START_REPLICATION, the CopyBoth loop with its keepalives and
 *	  feedback, and the frames it carries turned into sink calls).
 *
 * shipper/source.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_SOURCE_H
#define PG_DTS_SHIP_SOURCE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "libpq-fe.h"

#include "pg_dts/frame.h"
#include "heartbeat.h"
#include "log.h"
#include "retry.h"
#include "router.h"
#include "sink.h"
#include "spool.h"

/* How to reach the source: the conninfo and the options that refine it. */
typedef struct DtsConnParams
{
	const char *conninfo;		/* -d / task source_conninfo, or NULL */
	const char *host;			/* -h, or NULL */
	const char *port;			/* -p, or NULL */
	const char *user;			/* -U, or NULL */
	char	   *password;		/* from the -W prompt (malloc'd), or NULL */
	int			prompt;			/* -1 never (-w), 0 when needed,
								 * 1 always (-W) */
} DtsConnParams;

/*
 * Connects to the source; replication: a replication=database connection.
 * Sessions get DateStyle ISO, TimeZone UTC, IntervalStyle postgres and
 * bytea_output hex, so that values arrive in one known text form.  May
 * prompt for a password (and keep it in params).  Returns NULL with err
 * set (class DTS_ERROR_CONNECT).
 */
extern PGconn *dts_connect(DtsConnParams *params, bool replication,
						   int connect_timeout_s, DtsError *err);

/* Signal flags set by main's handlers (the only globals of the daemon). */
typedef struct DtsSignalFlags
{
	volatile sig_atomic_t stop;		/* SIGINT, SIGTERM */
	volatile sig_atomic_t reopen;	/* SIGHUP */
} DtsSignalFlags;

/* Plugin options for START_REPLICATION, as name/value pairs. */
typedef struct DtsPluginOptions
{
	char	  **names;
	char	  **values;
	int			n;
} DtsPluginOptions;

/*
 * Sets name to value, replacing an earlier value of the same name (the
 * plugin rejects repeated options).  Both strings are copied.
 */
extern void dts_plugin_options_set(DtsPluginOptions *opts, const char *name,
								   const char *value);
extern const char *dts_plugin_options_get(const DtsPluginOptions *opts,
										  const char *name);
extern void dts_plugin_options_free(DtsPluginOptions *opts);

/* One replication stream with everything it needs. */
typedef struct DtsSource
{
	/* configuration (owned by the caller) */
	DtsConnParams *params;
	const char *slot;
	const DtsPluginOptions *options;
	uint64_t	startpos;		/* -I, or 0 */
	uint64_t	endpos;			/* -E, or 0 for none */
	int			status_interval_ms; /* 0 = feedback only when asked */
	DtsSink    *sink;
	DtsRouter  *router;			/* name mapping, or NULL */
	DtsHeartbeat *heartbeat;	/* or NULL */
	DtsRetry   *retry;
	DtsSignalFlags *signals;

	/* the connection and the stream read from it */
	PGconn	   *conn;
	DtsDecoder	dec;
	DtsSpoolSet spools;
	DtsU32Map	relgens;		/* relid -> generation of its RELATION */
	uint64_t	relgen_counter;

	/* transaction state */
	bool		in_txn;			/* between BEGIN and COMMIT */
	bool		begin_sent;		/* sink->begin() called for it */
	DtsTxn		txn;
	char		origin[256];
	bool		in_block;		/* between STREAM_START and STREAM_STOP */
	uint32_t	block_xid;
	uint32_t	block_subxid;
	DtsSpool   *block_spool;
	const DtsRelation **trunc_rels; /* scratch for TRUNCATE */
	uint64_t   *trunc_gens;
	int			trunc_cap;

	/* positions */
	uint64_t	received_lsn;	/* highest WAL position the server sent */
	uint64_t	written_lsn;	/* end of the last unit given to the sink */
	uint64_t	confirmed_lsn;	/* highest flush position reported */
	uint64_t	idle_lsn;		/* keepalive position seen while idle */
	int64_t		last_feedback_us;
	int64_t		message_us;		/* receive time of the current message */
	bool		endpos_reached;
	bool		endpos_flushed;	/* -E: the sink was flushed with force once */
	uint64_t	txns;			/* transactions given to the sink */
	uint64_t	changes;
	uint64_t	replayed;		/* changes of the streamed replay under way */

	/*
	 * Messages read ahead while the sink waited for its destination
	 * (sink->prefetch), a ring handed on in order before anything else;
	 * ahead_end: what PQgetCopyData() said after the last of them, if
	 * not "nothing yet" (the end of the copy, an error).
	 */
	struct DtsAhead *ahead;
	int			ahead_head;
	int			ahead_count;
	int			ahead_cap;
	size_t		ahead_bytes;
	int			ahead_end;
	uint64_t	ahead_total;	/* messages read ahead in this stream */
	size_t		ahead_peak;		/* most bytes held at once */
} DtsSource;

/* Result of dts_source_stream() */
typedef enum DtsStreamResult
{
	DTS_STREAM_ERROR = -1,		/* err set; maybe retry */
	DTS_STREAM_STOPPED = 0,		/* SIGINT, SIGTERM: flushed, confirmed */
	DTS_STREAM_ENDPOS = 1		/* -E reached: flushed and confirmed */
} DtsStreamResult;

extern void dts_source_init(DtsSource *src);
extern void dts_source_free(DtsSource *src);

/*
 * Runs one replication session: connects, starts streaming from the last
 * confirmed position (or -I) and copies to the sink until a stop signal,
 * -E or an error.  The sink stays open across sessions.
 */
extern DtsStreamResult dts_source_stream(DtsSource *src, DtsError *err);

/* Slot commands on a replication connection. */
extern int	dts_source_create_slot(PGconn *conn, const char *slot,
								   bool if_not_exists, DtsError *err);
extern int	dts_source_drop_slot(PGconn *conn, const char *slot,
								 DtsError *err);

#endif							/* PG_DTS_SHIP_SOURCE_H */

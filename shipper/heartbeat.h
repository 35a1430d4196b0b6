/*-------------------------------------------------------------------------
 *
 * heartbeat.h
 *	  The task's heartbeat: every heartbeat_interval_s seconds the shipper
 *	  upserts its row of public.dts_postgres_heartbeat on the source, over
 *	  a normal (not replication) connection.  The row comes back through
 *	  the slot: its age on arrival is the end-to-end latency, and it gives
 *	  the slot something to confirm while the selected tables are idle.
 *
 * The query runs asynchronously: the main loop waits on the heartbeat's
 * socket along with the replication socket, so a slow source never stalls
 * the stream.  A failing heartbeat is a warning, never fatal.
 *
 * shipper/heartbeat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_HEARTBEAT_H
#define PG_DTS_SHIP_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

#include "libpq-fe.h"

struct DtsConnParams;

typedef struct DtsHeartbeat
{
	/* configuration (owned by the caller) */
	struct DtsConnParams *params;
	const char *slot;
	const char *task_name;
	int			interval_s;		/* 0 = off */

	PGconn	   *conn;
	bool		busy;			/* an upsert is in flight */
	int64_t		next_due_us;
	int			failures;		/* consecutive; warned at the first */
	char		error[512];		/* error of the upsert in flight, or "" */
	const char *error_hint;

	/* what came back through the slot */
	bool		have_latency;
	int64_t		latency_us;
	int64_t		beats_seen;
} DtsHeartbeat;

extern void dts_heartbeat_init(DtsHeartbeat *hb, struct DtsConnParams *params,
							   const char *slot, const char *task_name,
							   int interval_s);
extern void dts_heartbeat_close(DtsHeartbeat *hb);

/* Sends the upsert if due (connecting first if needed). */
extern void dts_heartbeat_tick(DtsHeartbeat *hb, int64_t now_us);
/* When the next tick is due (INT64_MAX when off). */
extern int64_t dts_heartbeat_next_due(const DtsHeartbeat *hb);
/* The socket to wait on while an upsert is in flight, else -1. */
extern int	dts_heartbeat_socket(const DtsHeartbeat *hb);
/* Reads what the socket has (call when it is readable). */
extern void dts_heartbeat_consume(DtsHeartbeat *hb);
/* The task's own heartbeat row came back with this latency. */
extern void dts_heartbeat_observe(DtsHeartbeat *hb, int64_t latency_us);

#endif							/* PG_DTS_SHIP_HEARTBEAT_H */

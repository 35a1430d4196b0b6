/*-------------------------------------------------------------------------
 *
 * copy_relay.h
 *	  Moves one COPY's data from a source connection (COPY TO STDOUT) to a
 *	  destination connection (COPY FROM STDIN), reading ahead of the
 *	  destination into a bounded queue.
 *
 * shipper/copy_relay.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DTS_COPY_RELAY_H
#define DTS_COPY_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "libpq-fe.h"

#include "log.h"

/* CopyData message size toward the destination */
#define DTS_COPY_RELAY_MESSAGE_BYTES	(64 * 1024)
/* Bytes read from the source and not yet handed to the destination */
#define DTS_COPY_RELAY_QUEUE_BYTES		(16 * 1024 * 1024)
/* How often (bytes moved) the progress callback runs */
#define DTS_COPY_RELAY_PROGRESS_BYTES	(256 * 1024)

typedef struct DtsRelayChunk DtsRelayChunk;

/*
 * Called every DTS_COPY_RELAY_PROGRESS_BYTES and at the end with the rows
 * and bytes moved since its last call; returns -1 (after setting err) to
 * stop the relay.  It may sleep (throttling): the destination then gets no
 * data meanwhile, and the source waits once the queue is full.
 */
typedef int (*DtsCopyRelayProgress) (void *arg, int64_t rows, int64_t bytes,
									 DtsError *err);

typedef struct DtsCopyRelay
{
	DtsCopyRelayProgress progress;
	void	   *arg;

	/*
	 * The source runs COPY (SELECT dts.copy_rows(query)) TO STDOUT (FORMAT
	 * binary): each of its rows is one chunk of many binary COPY tuples
	 * after their count, which the relay unwraps (set before each run).
	 */
	bool		chunked;
	/* private */
	bool		header_seen;	/* chunked: binary COPY's header passed on */
	DtsRelayChunk *head;		/* oldest queued chunk: sent next */
	DtsRelayChunk *tail;		/* filling */
	DtsRelayChunk *spare;		/* sent chunks, for reuse */
	size_t		queued;			/* bytes in head..tail */
	int64_t		rows;			/* not yet reported */
	int64_t		bytes;
	int64_t		rows_total;		/* this run's rows */
} DtsCopyRelay;

extern void dts_copy_relay_init(DtsCopyRelay *relay,
								DtsCopyRelayProgress progress, void *arg);

/*
 * Relays until the source's COPY ends, with every byte handed to the
 * destination and flushed.  Both connections must be in their COPY state;
 * neither COPY is finished here (PQgetResult on the source, PQputCopyEnd on
 * the destination are the caller's).  Returns 0, or -1 with err set
 * ("what: reason").  relay->rows_total is then the run's row count.
 */
extern int	dts_copy_relay_run(DtsCopyRelay *relay, PGconn *src, PGconn *dst,
							   const char *what, DtsError *err);

/* Frees the queue's memory */
extern void dts_copy_relay_free(DtsCopyRelay *relay);

#endif							/* DTS_COPY_RELAY_H */

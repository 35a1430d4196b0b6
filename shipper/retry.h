/*-------------------------------------------------------------------------
 *
 * retry.h
 *	  DTS's two retry windows: a failed or lost connection is retried for
 *	  up to retry_connect_minutes (default 720), any other error for up to
 *	  retry_other_minutes (default 10), with exponential backoff from 1 s
 *	  up to 60 s and one log line per attempt.  Past its window, or with
 *	  -n, the error is final.
 *
 * The test hook PG_DTS_RETRY_SCALE=N (a number > 0, for tests only)
 * divides every delay and both windows by N, so that a test can run
 * through a whole window in seconds.
 *
 * shipper/retry.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_RETRY_H
#define PG_DTS_SHIP_RETRY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "task.h"

typedef struct DtsRetry
{
	/* configuration */
	int64_t		connect_window_us;
	int64_t		other_window_us;
	bool		disabled;		/* -n */
	double		scale;			/* PG_DTS_RETRY_SCALE, 1 normally */

	/* the failure streak under way */
	DtsErrorClass cls;			/* DTS_ERROR_NONE when none */
	int64_t		since_us;		/* first failure of the streak */
	int			attempt;		/* retries so far */
} DtsRetry;

/* Reads the windows from the task and the test hook from the environment. */
extern void dts_retry_init(DtsRetry *retry, const DtsTask *task);

/*
 * After a failure: decides whether to retry err.  If so, logs one line
 * (the reason, the attempt, the delay and what is left of the window),
 * sleeps the backoff (returning early if *stop becomes set) and returns
 * true.  Otherwise logs err as the final error and returns false.
 */
extern bool dts_retry_wait(DtsRetry *retry, const DtsError *err,
						   volatile sig_atomic_t *stop);

/* A connection succeeded: a streak of connection failures is over. */
extern void dts_retry_connected(DtsRetry *retry);
/* Data made progress: any streak is over. */
extern void dts_retry_progress(DtsRetry *retry);

#endif							/* PG_DTS_SHIP_RETRY_H */

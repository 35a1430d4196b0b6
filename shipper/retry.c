/*-------------------------------------------------------------------------
 *
 * retry.c
 *	  The retry windows of pg_dts_ship (see retry.h): how long to keep
 *	  trying after an error, how long to wait between attempts, and the
 *	  one log line per attempt.
 *
 * shipper/retry.c
 *
 *-------------------------------------------------------------------------
 */
#include "retry.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define RETRY_FIRST_DELAY_US	INT64_C(1000000)
#define RETRY_MAX_DELAY_US		INT64_C(60000000)
#define MINUTE_US				INT64_C(60000000)

/* PG_DTS_RETRY_SCALE: for tests only, see retry.h */
static double
retry_scale_from_env(void)
{
	const char *s = getenv("PG_DTS_RETRY_SCALE");
	char	   *end;
	double		v;

	if (s == NULL || *s == '\0')
		return 1.0;
	v = strtod(s, &end);
	if (*end != '\0' || !(v > 0))
	{
		dts_log_warning("ignoring PG_DTS_RETRY_SCALE=\"%s\": not a number above 0", s);
		return 1.0;
	}
	return v;
}

void
dts_retry_init(DtsRetry *retry, const DtsTask *task)
{
	retry->scale = retry_scale_from_env();
	retry->connect_window_us =
		(int64_t) (task->retry_connect_minutes * MINUTE_US / retry->scale);
	retry->other_window_us =
		(int64_t) (task->retry_other_minutes * MINUTE_US / retry->scale);
	retry->disabled = task->no_retry;
	retry->cls = DTS_ERROR_NONE;
	retry->since_us = 0;
	retry->attempt = 0;
}

void
dts_retry_connected(DtsRetry *retry)
{
	if (retry->cls == DTS_ERROR_CONNECT)
		retry->cls = DTS_ERROR_NONE;
}

void
dts_retry_progress(DtsRetry *retry)
{
	retry->cls = DTS_ERROR_NONE;
}

/* Sleeps us microseconds, in steps, until done or *stop is set. */
static void
retry_sleep(int64_t us, volatile sig_atomic_t *stop)
{
	int64_t		until = dts_now_us() + us;

	while (!*stop)
	{
		int64_t		left = until - dts_now_us();
		struct timespec ts;

		if (left <= 0)
			break;
		if (left > 200000)
			left = 200000;		/* look at *stop five times a second */
		ts.tv_sec = left / 1000000;
		ts.tv_nsec = (left % 1000000) * 1000;
		nanosleep(&ts, NULL);	/* EINTR on a signal: fine */
	}
}

static const char *
window_name(DtsErrorClass cls)
{
	return cls == DTS_ERROR_CONNECT ? "connection" : "error";
}

bool
dts_retry_wait(DtsRetry *retry, const DtsError *err,
			   volatile sig_atomic_t *stop)
{
	int64_t		now = dts_now_us();
	int64_t		window;
	int64_t		left;
	int64_t		delay;

	if (err->cls == DTS_ERROR_FATAL || retry->disabled || *stop)
	{
		dts_error_log(DTS_LOG_ERROR, err);
		return false;
	}
	/* a new streak, or a different kind of failure: a new window */
	if (retry->cls != err->cls)
	{
		retry->cls = err->cls;
		retry->since_us = now;
		retry->attempt = 0;
	}
	window = err->cls == DTS_ERROR_CONNECT ?
		retry->connect_window_us : retry->other_window_us;
	left = retry->since_us + window - now;
	if (left <= 0)
	{
		dts_error_log(DTS_LOG_ERROR, err);
		dts_log_error("giving up after %d attempts: the %s retry window of %.0f minutes has passed",
					  retry->attempt + 1, window_name(err->cls),
					  window * retry->scale / MINUTE_US);
		dts_log_hint("Fix the cause above and start pg_dts_ship again; it resumes from the slot's confirmed position.");
		return false;
	}

	delay = RETRY_FIRST_DELAY_US;
	for (int i = 0; i < retry->attempt && delay < RETRY_MAX_DELAY_US; i++)
		delay *= 2;
	if (delay > RETRY_MAX_DELAY_US)
		delay = RETRY_MAX_DELAY_US;
	delay = (int64_t) (delay / retry->scale);
	if (delay > left)
		delay = left;
	retry->attempt++;

	dts_log_warning("%s; retry %d in %.1f s (%s window: %.1f of %.0f minutes left)",
					err->msg, retry->attempt, delay / 1e6,
					window_name(err->cls), left * retry->scale / MINUTE_US,
					window * retry->scale / MINUTE_US);
	retry_sleep(delay, stop);
	return !*stop;
}

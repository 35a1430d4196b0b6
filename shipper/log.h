/*-------------------------------------------------------------------------
 *
 * log.h
 *	  pg_dts_ship's messages: pg_log-like output on stderr with the
 *	  program name and a level, and DtsError, the error a function hands
 *	  back to the one place that logs it (or retries it).
 *
 * shipper/log.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_LOG_H
#define PG_DTS_SHIP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum DtsLogLevel
{
	DTS_LOG_ERROR = 0,
	DTS_LOG_WARNING,
	DTS_LOG_INFO,				/* shown with -v */
	DTS_LOG_DEBUG				/* shown with -v -v */
} DtsLogLevel;

/*
 * Sets the program name and verbosity (the number of -v).  Called once by
 * main before anything is logged; this is process-wide configuration, not
 * state, and the only file-level variable outside main.c's signal flags.
 */
extern void dts_log_init(const char *progname, int verbosity);
extern bool dts_log_enabled(DtsLogLevel level);

/* "progname: level: message\n"; detail and hint lines are separate calls */
extern void dts_log(DtsLogLevel level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* "progname: hint: text", after an error or warning; always shown */
extern void dts_log_hint(const char *fmt,...)
			__attribute__((format(printf, 1, 2)));

#define dts_log_error(...)		dts_log(DTS_LOG_ERROR, __VA_ARGS__)
#define dts_log_warning(...)	dts_log(DTS_LOG_WARNING, __VA_ARGS__)
#define dts_log_info(...)		dts_log(DTS_LOG_INFO, __VA_ARGS__)
#define dts_log_debug(...)		dts_log(DTS_LOG_DEBUG, __VA_ARGS__)

/*
 * A conninfo string (or URI) with the password keyword removed, for
 * messages.  Returns a malloc'd string the caller frees; if the string does
 * not parse, returns a copy of "(unparsable connection string)" rather than
 * the string, which could hold a password.
 */
extern char *dts_conninfo_for_display(const char *conninfo);

/* ----------------------------------------------------------------
 *		Errors handed back to the caller
 * ----------------------------------------------------------------
 */

/* What kind of failure, which decides the retry window (retry.h). */
typedef enum DtsErrorClass
{
	DTS_ERROR_NONE = 0,
	DTS_ERROR_CONNECT,			/* could not connect, or connection lost */
	DTS_ERROR_OTHER,			/* anything else worth retrying */
	DTS_ERROR_FATAL				/* retrying cannot help: bad setup */
} DtsErrorClass;

typedef struct DtsError
{
	DtsErrorClass cls;
	char		msg[1024];		/* one line, no trailing newline */
	char		hint[256];		/* "" or a full sentence saying what to do */
} DtsError;

/* Records an error (the first one wins until dts_error_clear); returns -1. */
extern int	dts_error_set(DtsError *err, DtsErrorClass cls,
						  const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
/* Adds a hint to the recorded error. */
extern void dts_error_hint(DtsError *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void dts_error_clear(DtsError *err);
/* Logs err at level as "msg" and, when set, "hint: ..." */
extern void dts_error_log(DtsLogLevel level, const DtsError *err);

/* "X/X", as PostgreSQL prints an LSN; buf needs DTS_LSN_BUFSIZE bytes. */
#define DTS_LSN_BUFSIZE 20
extern const char *dts_lsn_str(uint64_t lsn, char *buf);
/* Parses "X/X"; returns false when the text is not an LSN. */
extern bool dts_lsn_parse(const char *text, uint64_t *lsn);

/*
 * realloc() that never returns NULL: out of memory is reported and the
 * process aborts (nothing sensible can continue without the memory).
 */
extern void *dts_realloc(void *ptr, size_t size);
extern char *dts_strdup(const char *s);
/* The first n bytes of s (which has at least n), as a new string */
extern char *dts_strndup(const char *s, size_t n);

/* Wall clock: microseconds since the Unix epoch. */
extern int64_t dts_now_us(void);

/*
 * A new temp file in dir ($TMPDIR or /tmp when NULL), named
 * "pg_dts_ship.<tag>.XXXXXX" and unlinked at once (it goes with the
 * process), opened "w+" with a bufsize-byte buffer.  Returns NULL with
 * errno set on failure; the caller reports it and fcloses the file.
 */
extern FILE *dts_temp_file(const char *dir, const char *tag, size_t bufsize);

/* Difference between the Unix epoch and PostgreSQL's (2000-01-01), in us */
#define DTS_PG_EPOCH_OFFSET_US	INT64_C(946684800000000)

#endif							/* PG_DTS_SHIP_LOG_H */

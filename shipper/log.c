/*-------------------------------------------------------------------------
 *
 * log.c
 *	  pg_dts_ship's messages on stderr, pg_log style ("pg_dts_ship: error:
 *	  ..."), the DtsError carried from a failure to the one place that
 *	  reports it, and the password-free display of connection strings.
 *
 * shipper/log.c
 *
 *-------------------------------------------------------------------------
 */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/time.h>
#include <unistd.h>

#include "libpq-fe.h"

/* Set once by dts_log_init() before anything is logged; see log.h. */
static struct
{
	const char *progname;
	int			verbosity;
}			log_config = {"pg_dts_ship", 0};

static const char *const level_names[] = {
	[DTS_LOG_ERROR] = "error",
	[DTS_LOG_WARNING] = "warning",
	[DTS_LOG_INFO] = "info",
	[DTS_LOG_DEBUG] = "debug",
};

void
dts_log_init(const char *progname, int verbosity)
{
	log_config.progname = progname;
	log_config.verbosity = verbosity;
}

bool
dts_log_enabled(DtsLogLevel level)
{
	/* errors and warnings always; info from -v; debug from -v -v */
	return level <= DTS_LOG_WARNING ||
		(int) level - (int) DTS_LOG_WARNING <= log_config.verbosity;
}

void
dts_log(DtsLogLevel level, const char *fmt,...)
{
	va_list		ap;
	char		line[2048];

	if (!dts_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line, so that lines of concurrent writers stay whole */
	fprintf(stderr, "%s: %s: %s\n", log_config.progname,
			level_names[level], line);
}

void
dts_log_hint(const char *fmt,...)
{
	va_list		ap;
	char		line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: hint: %s\n", log_config.progname, line);
}

char *
dts_conninfo_for_display(const char *conninfo)
{
	PQconninfoOption *opts;
	PQconninfoOption *o;
	size_t		len = 1;
	char	   *out;
	char	   *p;

	opts = PQconninfoParse(conninfo, NULL);
	if (opts == NULL)
		return strdup("(unparsable connection string)");
	for (o = opts; o->keyword; o++)
		if (o->val && o->val[0] && strcmp(o->keyword, "password") != 0)
			len += strlen(o->keyword) + 2 * strlen(o->val) + 5;
	out = malloc(len);
	if (out == NULL)
	{
		PQconninfoFree(opts);
		return NULL;
	}
	p = out;
	for (o = opts; o->keyword; o++)
	{
		const char *v;

		if (!o->val || !o->val[0] || strcmp(o->keyword, "password") == 0)
			continue;
		if (p != out)
			*p++ = ' ';
		p += sprintf(p, "%s='", o->keyword);
		for (v = o->val; *v; v++)
		{
			if (*v == '\'' || *v == '\\')
				*p++ = '\\';
			*p++ = *v;
		}
		*p++ = '\'';
	}
	*p = '\0';
	PQconninfoFree(opts);
	return out;
}

/* Copies text into dst as one line: newlines become spaces, no tail. */
static void
copy_one_line(char *dst, size_t size, const char *text)
{
	size_t		n = 0;

	for (; *text && n + 1 < size; text++)
	{
		bool		space = *text == '\n' || *text == '\r' || *text == '\t';

		dst[n++] = space ? ' ' : *text;
	}
	while (n > 0 && isspace((unsigned char) dst[n - 1]))
		n--;
	dst[n] = '\0';
}

int
dts_error_set(DtsError *err, DtsErrorClass cls, const char *fmt,...)
{
	va_list		ap;
	char		text[sizeof(err->msg)];

	if (err->cls != DTS_ERROR_NONE)
		return -1;				/* keep the first, root cause */
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	copy_one_line(err->msg, sizeof(err->msg), text);
	err->hint[0] = '\0';
	err->cls = cls;
	return -1;
}

void
dts_error_hint(DtsError *err, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void
dts_error_clear(DtsError *err)
{
	err->cls = DTS_ERROR_NONE;
	err->msg[0] = '\0';
	err->hint[0] = '\0';
}

void
dts_error_log(DtsLogLevel level, const DtsError *err)
{
	if (!dts_log_enabled(level))
		return;
	dts_log(level, "%s", err->msg);
	if (err->hint[0])
		fprintf(stderr, "%s: hint: %s\n", log_config.progname, err->hint);
}

const char *
dts_lsn_str(uint64_t lsn, char *buf)
{
	snprintf(buf, DTS_LSN_BUFSIZE, "%" PRIX32 "/%" PRIX32,
			 (uint32_t) (lsn >> 32), (uint32_t) lsn);
	return buf;
}

bool
dts_lsn_parse(const char *text, uint64_t *lsn)
{
	unsigned int hi;
	unsigned int lo;
	int			used = 0;

	if (sscanf(text, "%X/%X%n", &hi, &lo, &used) != 2 ||
		text[used] != '\0')
		return false;
	*lsn = ((uint64_t) hi << 32) | lo;
	return true;
}

int64_t
dts_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

void *
dts_realloc(void *ptr, size_t size)
{
	void	   *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
	{
		dts_log_error("out of memory (%zu bytes)", size);
		abort();
	}
	return p;
}

FILE *
dts_temp_file(const char *dir, const char *tag, size_t bufsize)
{
	char		path[1024];
	FILE	   *fp;
	int			fd;
	int			save;

	if (dir == NULL || *dir == '\0')
		dir = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/pg_dts_ship.%s.XXXXXX",
			 dir && *dir ? dir : "/tmp", tag);
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	unlink(path);
	fp = fdopen(fd, "w+");
	if (fp == NULL)
	{
		save = errno;
		close(fd);
		errno = save;
		return NULL;
	}
	setvbuf(fp, NULL, _IOFBF, bufsize);
	return fp;
}

char *
dts_strdup(const char *s)
{
	size_t		len = strlen(s) + 1;

	return memcpy(dts_realloc(NULL, len), s, len);
}

char *
dts_strndup(const char *s, size_t n)
{
	char	   *r = memcpy(dts_realloc(NULL, n + 1), s, n);

	r[n] = '\0';
	return r;
}

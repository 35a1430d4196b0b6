/*-------------------------------------------------------------------------
 *
 * datetime_text.c
 *	  The text of timestamp and timestamptz values, as timestamp_out() and
 *	  timestamptz_out() print them, without fmgr and mostly without the
 *	  time zone machinery.
 *
 * In the text format every timestamptz went through timestamptz_out():
 * fmgr, timestamp2tm() (pg_localtime() in the session's zone),
 * EncodeDateTime() and a palloc'd copy, then strlen(); in the walsender of
 * a Kafka task that was 5% of its CPU on a table with one such column.
 *
 * Values of one table tend to be close to each other.  So the first value
 * of a day is printed by PostgreSQL's own functions (timestamp2tm() and
 * EncodeDateTime(), which is what the output functions call), and its text
 * is kept as a pattern: the date before the time of day, and the zone
 * offset (and " BC") after it.  A later value in the same local day, with
 * the same offset from UTC in between, differs only in its time of day,
 * which is written here: "HH:MM:SS", then when there are microseconds a
 * point and six digits without trailing zeros, as AppendSeconds() does.
 * The pattern covers, from the value that made it, the rest of its local
 * day up to the zone's next transition (pg_next_dst_boundary()), and also
 * the part of the day before it when no transition lies in between.  It is
 * used only under DateStyle ISO (the Kafka sink's session sets it), and
 * for timestamptz only in the session time zone it was made in and in
 * zones without leap seconds; anything else, infinities and values out of
 * range take the output function.
 *
 * plugin/datetime_text.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "pg_dts.h"

/* Seconds from the UNIX epoch to PostgreSQL's (2000-01-01) */
#define EPOCH_SHIFT_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* "HH:MM:SS.ffffff" */
#define TIME_OF_DAY_MAXLEN 15

/* Writes the time of day tod (µs) as EncodeDateTime() does under ISO. */
static int
write_time_of_day(char *out, int64 tod)
{
	int			secs = (int) (tod / USECS_PER_SEC);
	int			frac = (int) (tod % USECS_PER_SEC);
	int			hour = secs / SECS_PER_HOUR;
	int			min = (secs / SECS_PER_MINUTE) % MINS_PER_HOUR;
	int			sec = secs % SECS_PER_MINUTE;
	int			len;

	out[0] = '0' + hour / 10;
	out[1] = '0' + hour % 10;
	out[2] = ':';
	out[3] = '0' + min / 10;
	out[4] = '0' + min % 10;
	out[5] = ':';
	out[6] = '0' + sec / 10;
	out[7] = '0' + sec % 10;
	if (frac == 0)
		return 8;
	out[8] = '.';
	for (int i = 14; i >= 9; i--)
	{
		out[i] = '0' + frac % 10;
		frac /= 10;
	}
	len = 15;
	while (out[len - 1] == '0')
		len--;
	return len;
}

/*
 * Remembers text, the ISO text of the value t whose local time of day is
 * tod, as the pattern of cache for [lo, hi).  The date is everything up to
 * the space before the time; the time is "HH:MM:SS" and maybe a fraction;
 * the rest is the suffix.  A text of any other shape is not cached.
 */
static void
fill_cache(PgDtsDayText *cache, const char *text, int len, TimestampTz t,
		   int64 tod, TimestampTz lo, TimestampTz hi)
{
	const char *space = memchr(text, ' ', len);
	const char *time;
	const char *rest;

	cache->valid = false;
	if (space == NULL || lo > t || hi <= t)
		return;
	time = space + 1;
	if (text + len - time < 8 || time[2] != ':' || time[5] != ':')
		return;
	rest = time + 8;
	if (rest < text + len && *rest == '.')
	{
		rest++;
		while (rest < text + len && *rest >= '0' && *rest <= '9')
			rest++;
	}
	if (time - text > (int) sizeof(cache->prefix) ||
		text + len - rest > (int) sizeof(cache->suffix))
		return;
	cache->prefix_len = time - text;
	memcpy(cache->prefix, text, cache->prefix_len);
	cache->suffix_len = text + len - rest;
	memcpy(cache->suffix, rest, cache->suffix_len);
	cache->lo = lo;
	cache->hi = hi;
	cache->lo_tod = tod - (t - lo);
	cache->valid = true;
}

/* The instant of a pg_time_t, or PG_INT64_MAX past the timestamp range. */
static TimestampTz
boundary_instant(pg_time_t boundary)
{
	if (boundary - EPOCH_SHIFT_SECS > PG_INT64_MAX / USECS_PER_SEC)
		return PG_INT64_MAX;
	return (boundary - EPOCH_SHIFT_SECS) * USECS_PER_SEC;
}

/*
 * The stretch around t (whole seconds t - fsec, local time of day tod,
 * UTC offset gmtoff seconds east) in which the offset stays gmtoff and the
 * day stays t's, as [*lo, *hi); false when the zone cannot tell (leap
 * seconds).
 */
static bool
constant_offset_span(TimestampTz t, fsec_t fsec, int64 tod, long int gmtoff,
					 TimestampTz *lo, TimestampTz *hi)
{
	TimestampTz day_start = t - tod;
	pg_time_t	at;
	pg_time_t	boundary;
	long int	before_gmtoff;
	long int	after_gmtoff;
	int			before_isdst;
	int			after_isdst;
	int			r;

	/* from t on: to the end of the day or the next transition */
	at = (pg_time_t) ((t - fsec) / USECS_PER_SEC + EPOCH_SHIFT_SECS);
	r = pg_next_dst_boundary(&at, &before_gmtoff, &before_isdst, &boundary,
							 &after_gmtoff, &after_isdst, session_timezone);
	if (r < 0 || before_gmtoff != gmtoff)
		return false;
	*hi = day_start + USECS_PER_DAY;
	if (r == 1)
	{
		if (boundary <= at)
			return false;
		*hi = Min(*hi, boundary_instant(boundary));
	}

	/* before t: the whole day so far, if no transition lies in it */
	*lo = t;
	if (day_start % USECS_PER_SEC != 0)
		return true;
	at = (pg_time_t) (day_start / USECS_PER_SEC + EPOCH_SHIFT_SECS);
	r = pg_next_dst_boundary(&at, &before_gmtoff, &before_isdst, &boundary,
							 &after_gmtoff, &after_isdst, session_timezone);
	if (r == 0 && before_gmtoff == gmtoff)
		*lo = day_start;
	else if (r == 1 && before_gmtoff == gmtoff && boundary > at &&
			 boundary_instant(boundary) >= *hi)
		*lo = day_start;
	return true;
}

/*
 * Prints t as timestamp_out() / timestamptz_out() would into buf and
 * returns the text's length, making it the cache's pattern when it can be
 * one; -1 for a value those functions handle otherwise (infinities, out of
 * range), which the caller hands to the output function.
 */
static int
print_and_cache(PgDtsDayText *cache, TimestampTz t, bool with_zone,
				char *buf)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz = 0;
	const char *tzn = NULL;
	int64		tod;
	TimestampTz lo;
	TimestampTz hi;
	int			len;

	if (TIMESTAMP_NOT_FINITE(t))
		return -1;
	if (timestamp2tm(t, with_zone ? &tz : NULL, &tm, &fsec,
					 with_zone ? &tzn : NULL, NULL) != 0)
		return -1;
	EncodeDateTime(&tm, fsec, with_zone, tz, tzn, DateStyle, buf);
	len = strlen(buf);

	cache->valid = false;
	if (DateStyle != USE_ISO_DATES || fsec < 0)
		return len;
	tod = ((((int64) tm.tm_hour * MINS_PER_HOUR) + tm.tm_min) * SECS_PER_MINUTE +
		   tm.tm_sec) * USECS_PER_SEC + fsec;
	if (!with_zone)
	{
		lo = t - tod;
		hi = lo + USECS_PER_DAY;
	}
	else if (tzn == NULL ||
			 !constant_offset_span(t, fsec, tod, tm.tm_gmtoff, &lo, &hi))
		return len;
	cache->zone = with_zone ? session_timezone : NULL;
	fill_cache(cache, buf, len, t, tod, lo, hi);
	return len;
}

/*
 * Writes the text of a timestamp (with_zone false) or timestamptz value as
 * a frame string; col's output function prints what the cache cannot.
 */
void
pg_dts_put_timestamp_text(DtsWriteBuf *buf, PgDtsDayText *cache,
						  PgDtsColumn *col, Datum value, bool with_zone)
{
	TimestampTz t = DatumGetTimestampTz(value);
	char		text[MAXDATELEN + 1];
	int			len;

	if (cache->valid && t >= cache->lo && t < cache->hi &&
		DateStyle == USE_ISO_DATES &&
		(!with_zone || cache->zone == session_timezone))
	{
		char	   *p = text;

		memcpy(p, cache->prefix, cache->prefix_len);
		p += cache->prefix_len;
		p += write_time_of_day(p, cache->lo_tod + (t - cache->lo));
		memcpy(p, cache->suffix, cache->suffix_len);
		p += cache->suffix_len;
		dts_put_string(buf, text, p - text);
		return;
	}
	len = print_and_cache(cache, t, with_zone, text);
	if (len < 0)
	{
		char	   *out = OutputFunctionCall(&col->func, value);

		dts_put_string(buf, out, strlen(out));
		return;
	}
	dts_put_string(buf, text, len);
}

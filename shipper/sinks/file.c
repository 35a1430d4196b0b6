/*-------------------------------------------------------------------------
 *
 * file.c
 *	  The file sink, pg_dts_ship's default: one JSON object per change per
 *	  line (formats/json.c), appended to a file or written to standard
 *	  output.
 *
 * Durability: a transaction is durable once its lines have been written
 * and fsync()ed (with -F N every N seconds, with -F 0 at every commit).
 * On standard output, durable means written and flushed (fflush()) at the
 * commit, without fsync(): a pipe cannot be synced, and whoever reads it
 * is responsible for what it has read.  durable_lsn is the end LSN of
 * the last transaction whose lines were all synced.
 *
 * Crash safety of the file itself: lines are appended; a transaction that
 * is abandoned (stream lost, shutdown) is cut off again with ftruncate()
 * when the output is a regular file, and a torn last line left by a crash
 * is cut off when the file is opened again.  Transactions after the last
 * confirmed LSN may still appear twice after a crash (at-least-once);
 * every line carries its transaction's commit "lsn" for deduplication.
 * With begin/commit lines the file tells which transactions it holds
 * whole, so at open an incomplete one is cut off and the transactions the
 * server sends again up to the last complete one are skipped: no
 * duplicates after a crash of the shipper.
 *
 * shipper/sinks/file.c
 *
 *-------------------------------------------------------------------------
 */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/json.h"

#define FILE_SINK_BUFSIZE	(256 * 1024)

typedef struct FileSink
{
	/* configuration */
	char	   *path;			/* "-" for standard output */
	bool		is_stdout;
	int			fsync_interval_ms;
	bool		begin_commit_lines;

	/* the open output */
	FILE	   *fp;
	int			fd;
	bool		regular;		/* a regular file: can be truncated */
	off_t		size;			/* bytes in the file, ours included */

	/* transaction and durability bookkeeping */
	bool		in_txn;
	bool		skipping;		/* the open transaction is in the file */
	uint64_t	resume_lsn;		/* commit LSN of the last transaction found
								 * whole in the file at open (with begin /
								 * commit lines), 0 if unknown */
	off_t		txn_start;		/* size when the open transaction began */
	bool		reopen_pending; /* SIGHUP came inside a transaction */
	bool		dirty;			/* written since the last sync */
	uint64_t	written_lsn;	/* end of the last unit written whole */
	uint64_t	durable_lsn;	/* end of the last unit synced */
	int64_t		last_sync_us;

	DtsStrBuf	line;			/* scratch for one JSON line */
} FileSink;

static int	file_sink_sync(FileSink *fs, DtsError *err);

static const char *
display_path(const FileSink *fs)
{
	return fs->is_stdout ? "standard output" : fs->path;
}

/* ----------------------------------------------------------------
 *		Opening and closing
 * ----------------------------------------------------------------
 */

/* fsync()s the directory of a file we created, so the file survives. */
static int
sync_parent_dir(FileSink *fs, DtsError *err)
{
	char	   *copy = dts_strdup(fs->path);
	const char *dir = dirname(copy);
	int			dfd;
	int			rc = 0;

	dfd = open(dir, O_RDONLY);
	if (dfd < 0 || fsync(dfd) != 0)
		rc = dts_error_set(err, DTS_ERROR_OTHER,
						   "could not fsync directory \"%s\": %s",
						   dir, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return rc;
}

/*
 * Cuts a torn last line (no newline: the shipper died while writing it)
 * off a regular file.  The transaction it belonged to was never confirmed,
 * so the server sends it again.
 */
static int
cut_torn_line(FileSink *fs, DtsError *err)
{
	char		buf[8192];
	off_t		end = fs->size;

	while (end > 0)
	{
		off_t		start = end > (off_t) sizeof(buf) ?
			end - (off_t) sizeof(buf) : 0;
		ssize_t		n = pread(fs->fd, buf, (size_t) (end - start), start);

		if (n != end - start)
			return dts_error_set(err, DTS_ERROR_OTHER,
								 "could not read output file \"%s\": %s",
								 fs->path, n < 0 ? strerror(errno) : "short read");
		while (n > 0 && buf[n - 1] != '\n')
			n--;
		if (n > 0 || start == 0)
		{
			off_t		keep = start + n;

			if (keep == fs->size)
				return 0;
			if (ftruncate(fs->fd, keep) != 0)
				return dts_error_set(err, DTS_ERROR_OTHER,
									 "could not truncate output file \"%s\": %s",
									 fs->path, strerror(errno));
			dts_log_warning("removed an incomplete last line of %lld bytes from output file \"%s\"",
							(long long) (fs->size - keep), fs->path);
			fs->size = keep;
			return 0;
		}
		end = start;
	}
	return 0;
}

#define COMMIT_PREFIX	"{\"kind\":\"commit\",\"lsn\":\""
#define BEGIN_PREFIX	"{\"kind\":\"begin\","

/* Offset where the line ending just before "end" starts. */
static off_t
line_start_before(int fd, off_t end)
{
	char		buf[4096];
	off_t		pos = end - 1;	/* skip the line's own newline */

	while (pos > 0)
	{
		off_t		from = pos > (off_t) sizeof(buf) ?
			pos - (off_t) sizeof(buf) : 0;
		ssize_t		n = pread(fd, buf, (size_t) (pos - from), from);

		if (n <= 0)
			return 0;
		for (ssize_t i = n - 1; i >= 0; i--)
			if (buf[i] == '\n')
				return from + i + 1;
		pos = from;
	}
	return 0;
}

/*
 * With begin/commit lines, the file says which transactions it holds
 * whole: cut off a transaction left incomplete by a crash (from its begin
 * line on) and remember the commit LSN of the last complete one, so that
 * transactions the server sends again are not written twice.
 */
static int
recover_transactions(FileSink *fs, DtsError *err)
{
	off_t		end = fs->size;
	off_t		cut = -1;
	char		line[128];

	while (end > 0)
	{
		off_t		start = line_start_before(fs->fd, end);
		ssize_t		n = pread(fs->fd, line, sizeof(line) - 1,  start);
		unsigned int hi;
		unsigned int lo;

		if (n < 0)
			return dts_error_set(err, DTS_ERROR_OTHER,
								 "could not read output file \"%s\": %s",
								 fs->path, strerror(errno));
		line[n] = '\0';
		if (strncmp(line, BEGIN_PREFIX, strlen(BEGIN_PREFIX)) == 0)
			cut = start;
		else if (strncmp(line, COMMIT_PREFIX, strlen(COMMIT_PREFIX)) == 0)
		{
			if (sscanf(line + strlen(COMMIT_PREFIX), "%X/%X", &hi, &lo) == 2)
				fs->resume_lsn = ((uint64_t) hi << 32) | lo;
			break;
		}
		end = start;
	}
	if (cut < 0)
		return 0;
	if (ftruncate(fs->fd, cut) != 0)
		return dts_error_set(err, DTS_ERROR_OTHER,
							 "could not truncate output file \"%s\": %s",
							 fs->path, strerror(errno));
	dts_log_warning("removed an incomplete transaction of %lld bytes from the end of output file \"%s\"",
					(long long) (fs->size - cut), fs->path);
	fs->size = cut;
	return 0;
}

static int
file_sink_open_output(FileSink *fs, DtsError *err)
{
	struct stat st;
	bool		created;

	if (fs->is_stdout)
	{
		fs->fp = stdout;
		fs->fd = fileno(stdout);
		fs->regular = false;
		return 0;
	}

	created = stat(fs->path, &st) != 0;
	fs->fd = open(fs->path, O_RDWR | O_CREAT | O_APPEND, S_IRUSR | S_IWUSR);
	if (fs->fd < 0)
	{
		dts_error_set(err, DTS_ERROR_OTHER,
					  "could not open output file \"%s\": %s",
					  fs->path, strerror(errno));
		dts_error_hint(err, "Check that the directory exists and that this user may write there.");
		return -1;
	}
	if (fstat(fs->fd, &st) != 0)
		goto fail;
	fs->regular = S_ISREG(st.st_mode);
	fs->size = st.st_size;
	if (fs->regular && cut_torn_line(fs, err) != 0)
		goto cleanup;
	if (fs->regular && fs->begin_commit_lines &&
		recover_transactions(fs, err) != 0)
		goto cleanup;
	if (created && sync_parent_dir(fs, err) != 0)
		goto cleanup;
	fs->fp = fdopen(fs->fd, "a");
	if (fs->fp == NULL)
		goto fail;
	setvbuf(fs->fp, NULL, _IOFBF, FILE_SINK_BUFSIZE);
	return 0;

fail:
	dts_error_set(err, DTS_ERROR_OTHER, "could not open output file \"%s\": %s",
				  fs->path, strerror(errno));
cleanup:
	close(fs->fd);
	fs->fd = -1;
	return -1;
}

/* Closes the output (never standard output itself). */
static void
file_sink_close_output(FileSink *fs)
{
	if (fs->fp == NULL)
		return;
	if (fs->is_stdout)
		fflush(fs->fp);
	else
		fclose(fs->fp);
	fs->fp = NULL;
	fs->fd = -1;
}

static int
file_sink_open(DtsSink *sink, DtsError *err)
{
	FileSink   *fs = sink->state;

	if (file_sink_open_output(fs, err) != 0)
		return -1;
	fs->last_sync_us = dts_now_us();
	return 0;
}

static void
file_sink_close(DtsSink *sink)
{
	FileSink   *fs = sink->state;

	if (fs == NULL)
		return;
	file_sink_close_output(fs);
	dts_strbuf_free(&fs->line);
	free(fs->path);
	free(fs);
	sink->state = NULL;
}

/* ----------------------------------------------------------------
 *		Writing
 * ----------------------------------------------------------------
 */

static int
write_error(FileSink *fs, const char *what, DtsError *err)
{
	int			e = errno;

	/* nobody reads a closed pipe again: retrying cannot help */
	dts_error_set(err, e == EPIPE ? DTS_ERROR_FATAL : DTS_ERROR_OTHER,
				  "could not %s output file \"%s\": %s",
				  what, display_path(fs), strerror(e));
	if (e == ENOSPC)
		dts_error_hint(err, "Free some disk space; the shipper resumes from the last confirmed transaction.");
	return -1;
}

/* Writes fs->line plus a newline. */
static int
write_line(FileSink *fs, DtsError *err)
{
	size_t		len;
	size_t		done;

	dts_strbuf_append(&fs->line, "\n", 1);
	len = fs->line.len;
	done = fwrite(fs->line.data, 1, len, fs->fp);
	dts_strbuf_reset(&fs->line);
	fs->size += done;
	fs->dirty = true;
	if (done != len)
		return write_error(fs, "write to", err);
	return 0;
}

/*
 * A whole unit (transaction or non-transactional message) ending at lsn
 * has been written: hand it to the kernel, and sync it when -F 0.
 */
static int
unit_written(FileSink *fs, uint64_t lsn, DtsError *err)
{
	if (lsn > fs->written_lsn)
		fs->written_lsn = lsn;
	if (fflush(fs->fp) != 0)
		return write_error(fs, "write to", err);
	/* standard output: written and flushed is durable */
	if (fs->fsync_interval_ms == 0 || fs->is_stdout)
		return file_sink_sync(fs, err);
	return 0;
}

static int
file_sink_begin(DtsSink *sink, const DtsTxn *txn, DtsError *err)
{
	FileSink   *fs = sink->state;

	fs->in_txn = true;
	fs->txn_start = fs->size;
	fs->skipping = txn->commit_lsn <= fs->resume_lsn;
	if (fs->skipping)
	{
		char		buf[DTS_LSN_BUFSIZE];

		dts_log_debug("transaction %u at %s is in the file already: skipped",
					  txn->xid, dts_lsn_str(txn->commit_lsn, buf));
		return 0;
	}
	if (!fs->begin_commit_lines)
		return 0;
	dts_json_begin(&fs->line, txn);
	return write_line(fs, err);
}

static int
file_sink_change(DtsSink *sink, const DtsTxn *txn, const DtsChange *change,
				 DtsError *err)
{
	FileSink   *fs = sink->state;

	if (txn != NULL && fs->skipping)
		return 0;
	dts_json_change(&fs->line, txn, change);
	if (write_line(fs, err) != 0)
		return -1;
	if (txn == NULL)
		return unit_written(fs, change->frame->lsn, err);
	return 0;
}

static int	file_sink_reopen(DtsSink *sink, DtsError *err);

static int
file_sink_commit(DtsSink *sink, const DtsTxn *txn, DtsError *err)
{
	FileSink   *fs = sink->state;

	if (fs->begin_commit_lines && !fs->skipping)
	{
		dts_json_commit(&fs->line, txn);
		if (write_line(fs, err) != 0)
			return -1;
	}
	fs->in_txn = false;
	fs->skipping = false;
	if (unit_written(fs, txn->end_lsn, err) != 0)
		return -1;
	if (fs->reopen_pending)
		return file_sink_reopen(sink, err);
	return 0;
}

static int
file_sink_rollback(DtsSink *sink, DtsError *err)
{
	FileSink   *fs = sink->state;

	if (!fs->in_txn)
		return 0;
	fs->in_txn = false;
	if (fs->regular && fs->size > fs->txn_start)
	{
		if (fflush(fs->fp) != 0)
			return write_error(fs, "write to", err);
		if (ftruncate(fs->fd, fs->txn_start) != 0)
			return write_error(fs, "truncate", err);
		fs->size = fs->txn_start;
	}
	if (fs->reopen_pending)
		return file_sink_reopen(sink, err);
	return 0;
}

/* ----------------------------------------------------------------
 *		Durability
 * ----------------------------------------------------------------
 */

static int
file_sink_sync(FileSink *fs, DtsError *err)
{
	uint64_t	written = fs->written_lsn;

	if (fflush(fs->fp) != 0)
		return write_error(fs, "write to", err);
	/* standard output (often a pipe): written and flushed is all */
	if (!fs->is_stdout && fsync(fs->fd) != 0)
		return write_error(fs, "fsync", err);
	fs->dirty = false;
	fs->durable_lsn = written;
	fs->last_sync_us = dts_now_us();
	return 0;
}

static int
file_sink_flush(DtsSink *sink, bool force, int64_t now_us,
				int64_t *next_due_us, DtsError *err)
{
	FileSink   *fs = sink->state;
	int64_t		due = fs->last_sync_us +
		(int64_t) fs->fsync_interval_ms * 1000;

	*next_due_us = INT64_MAX;
	if (!fs->dirty)
	{
		fs->durable_lsn = fs->written_lsn;
		return 0;
	}
	if (force || now_us >= due)
	{
		if (file_sink_sync(fs, err) != 0)
			return -1;
		return 0;
	}
	*next_due_us = due;
	return 0;
}

static uint64_t
file_sink_durable_lsn(DtsSink *sink)
{
	return ((FileSink *) sink->state)->durable_lsn;
}

static bool
file_sink_idle(DtsSink *sink)
{
	FileSink   *fs = sink->state;

	return !fs->in_txn && !fs->dirty && fs->durable_lsn == fs->written_lsn;
}

/*
 * SIGHUP: sync and reopen the file by its name (after a log rotation
 * moved it away).  Inside a transaction this waits for its end, so that
 * no transaction is split across two files.
 */
static int
file_sink_reopen(DtsSink *sink, DtsError *err)
{
	FileSink   *fs = sink->state;

	if (fs->in_txn)
	{
		fs->reopen_pending = true;
		return 0;
	}
	fs->reopen_pending = false;
	if (fs->dirty && file_sink_sync(fs, err) != 0)
		return -1;
	if (fs->is_stdout)
		return 0;
	file_sink_close_output(fs);
	if (file_sink_open_output(fs, err) != 0)
		return -1;
	dts_log_info("reopened output file \"%s\"", fs->path);
	return 0;
}

static const DtsSinkOps file_sink_ops = {
	.name = "file",
	.open = file_sink_open,
	.begin = file_sink_begin,
	.change = file_sink_change,
	.commit = file_sink_commit,
	.rollback = file_sink_rollback,
	.flush = file_sink_flush,
	.durable_lsn = file_sink_durable_lsn,
	.idle = file_sink_idle,
	.reopen = file_sink_reopen,
	.close = file_sink_close,
};

void
dts_file_sink_init(DtsSink *sink, const DtsFileSinkConfig *config)
{
	FileSink   *fs = dts_realloc(NULL, sizeof(FileSink));

	memset(fs, 0, sizeof(*fs));
	fs->path = dts_strdup(config->path);
	fs->is_stdout = strcmp(config->path, "-") == 0;
	fs->fsync_interval_ms = config->fsync_interval_ms;
	fs->begin_commit_lines = config->begin_commit_lines;
	fs->fd = -1;
	dts_strbuf_init(&fs->line);
	sink->ops = &file_sink_ops;
	sink->state = fs;
}

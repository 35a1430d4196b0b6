/*-------------------------------------------------------------------------
 *
 * copy_relay.c
 *	  The full sync's relay of one COPY from the source to the destination.
 *
 * A plain COPY TO sends one CopyData message per row.  The relay gathers
 * them into chunks of DTS_COPY_RELAY_MESSAGE_BYTES and hands each chunk to
 * the destination as one CopyData message (COPY FROM reads a byte stream,
 * so message boundaries do not matter to it, and each message costs its
 * backend a round through the protocol layer).  When the source serves
 * the rows through dts.copy_rows() (plugin/copy_rows_sql.c), each message
 * is already a chunk of many rows, wrapped as one bytea; the relay takes
 * the rows out of the wrapping and passes them on as they are.
 *
 * Both sides run at once in one thread: the destination's connection is
 * put in nonblocking mode, and the relay polls the source for input and
 * the destination for output space.  While the destination is busy (its
 * backend waits for WALWriteLock or extends the heap) the source keeps
 * producing, up to DTS_COPY_RELAY_QUEUE_BYTES of chunks held here, instead
 * of stalling on a full socket; and while the source is slow the chunks
 * already read keep the destination busy.  So each side's pauses are
 * covered by the other's work.  That bound, per worker, is all the memory
 * the relay holds (plus one row, if a row is bigger).
 *
 * shipper/copy_relay.c
 *
 *-------------------------------------------------------------------------
 */
#include "copy_relay.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Poll timeout: the progress callback also runs this often when idle */
#define RELAY_IDLE_MS	1000
/* Signature (11 bytes), flags and header extension length (int32 each) */
#define DTS_COPY_BINARY_HEADER_BYTES	19

struct DtsRelayChunk
{
	DtsRelayChunk *next;
	size_t		len;
	size_t		cap;
	char		data[];
};

void
dts_copy_relay_init(DtsCopyRelay *relay, DtsCopyRelayProgress progress,
					void *arg)
{
	memset(relay, 0, sizeof(*relay));
	relay->progress = progress;
	relay->arg = arg;
}

static void
free_chunks(DtsRelayChunk *c)
{
	while (c)
	{
		DtsRelayChunk *next = c->next;

		free(c);
		c = next;
	}
}

void
dts_copy_relay_free(DtsCopyRelay *relay)
{
	free_chunks(relay->head);
	free_chunks(relay->spare);
	relay->head = relay->tail = relay->spare = NULL;
	relay->queued = 0;
}

/* A chunk of at least cap bytes: a spare one if it is big enough */
static DtsRelayChunk *
new_chunk(DtsCopyRelay *relay, size_t cap)
{
	DtsRelayChunk *c = relay->spare;

	if (c && c->cap >= cap)
		relay->spare = c->next;
	else
	{
		c = dts_realloc(NULL, sizeof(DtsRelayChunk) + cap);	/* aborts on OOM */
		c->cap = cap;
	}
	c->next = NULL;
	c->len = 0;
	return c;
}

/* Appends n bytes of COPY data holding rows rows to the queue */
static void
queue_bytes(DtsCopyRelay *relay, const char *buf, size_t n, int64_t rows)
{
	DtsRelayChunk *t = relay->tail;

	if (t == NULL || t->len + n > t->cap)
	{
		DtsRelayChunk *c = new_chunk(relay, n > DTS_COPY_RELAY_MESSAGE_BYTES ?
									 n : DTS_COPY_RELAY_MESSAGE_BYTES);

		if (t)
			t->next = c;
		else
			relay->head = c;
		relay->tail = t = c;
	}
	memcpy(t->data + t->len, buf, n);
	t->len += n;
	relay->queued += n;
	relay->rows += rows;
	relay->rows_total += rows;
	relay->bytes += n;
}

/* Whether buf is binary COPY's trailer (int16 -1) */
static inline bool
is_trailer(const char *buf, size_t n)
{
	return n == 2 && (unsigned char) buf[0] == 0xFF &&
		(unsigned char) buf[1] == 0xFF;
}

static inline uint32_t
read_be32(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;

	return (uint32_t) u[0] << 24 | (uint32_t) u[1] << 16 |
		(uint32_t) u[2] << 8 | u[3];
}

/*
 * A message of dts.copy_rows()'s COPY: binary COPY's header (first
 * message only), then one tuple of one bytea field (int16 1, int32 length,
 * the chunk: int32 rows, then the rows' tuples), or the trailer.  The
 * header, the chunk's tuples and the trailer go on to the destination.
 */
static int
queue_chunk(DtsCopyRelay *relay, const char *buf, size_t n,
			const char *what, DtsError *err)
{
	size_t		len;

	if (!relay->header_seen)
	{
		if (n < DTS_COPY_BINARY_HEADER_BYTES ||
			memcmp(buf, "PGCOPY\n\377\r\n\0", 11) != 0 ||
			read_be32(buf + 15) != 0)
			goto bad;
		queue_bytes(relay, buf, DTS_COPY_BINARY_HEADER_BYTES, 0);
		buf += DTS_COPY_BINARY_HEADER_BYTES;
		n -= DTS_COPY_BINARY_HEADER_BYTES;
		relay->header_seen = true;
		if (n == 0)
			return 0;
	}
	if (is_trailer(buf, n))
	{
		queue_bytes(relay, buf, n, 0);
		return 0;
	}
	if (n < 10 || buf[0] != 0 || buf[1] != 1)
		goto bad;
	len = read_be32(buf + 2);
	if (len != n - 6 || len < 4)
		goto bad;
	queue_bytes(relay, buf + 10, n - 10, (int64_t) read_be32(buf + 6));
	return 0;

bad:
	return dts_error_set(err, DTS_ERROR_OTHER,
						 "%s: unexpected COPY data from dts.copy_rows() on "
						 "the source (a message of %zu bytes)", what, n);
}

/* Appends one CopyData message of the source to the queue */
static int
queue_message(DtsCopyRelay *relay, const char *buf, size_t n,
			  const char *what, DtsError *err)
{
	if (relay->chunked)
		return queue_chunk(relay, buf, n, what, err);
	/* one message per row, but binary COPY's trailer (int16 -1) too */
	queue_bytes(relay, buf, n, is_trailer(buf, n) ? 0 : 1);
	return 0;
}

/* The oldest chunk leaves the queue; a chunk of the usual size is kept */
static void
pop_chunk(DtsCopyRelay *relay)
{
	DtsRelayChunk *c = relay->head;

	relay->head = c->next;
	if (relay->head == NULL)
		relay->tail = NULL;
	relay->queued -= c->len;
	if (c->cap == DTS_COPY_RELAY_MESSAGE_BYTES)
	{
		c->next = relay->spare;
		relay->spare = c;
	}
	else
		free(c);
}

/*
 * Whether the oldest chunk may go: it is full (a newer one is filling), the
 * source has ended, or it alone fills the queue (one huge row).
 */
static bool
head_ready(const DtsCopyRelay *relay, bool src_done)
{
	return relay->head != NULL &&
		(relay->head != relay->tail || src_done ||
		 relay->queued >= DTS_COPY_RELAY_QUEUE_BYTES);
}

static int
report(DtsCopyRelay *relay, DtsError *err)
{
	int64_t		rows = relay->rows,
				bytes = relay->bytes;

	relay->rows = relay->bytes = 0;
	return relay->progress ? relay->progress(relay->arg, rows, bytes, err) : 0;
}

static int
conn_failed(PGconn *conn, const char *what, DtsError *err)
{
	return dts_error_set(err, DTS_ERROR_CONNECT, "%s: %s", what,
						 PQerrorMessage(conn));
}

/* Takes every complete message the source's connection holds, queue allowing */
static int
take_source(DtsCopyRelay *relay, PGconn *src, bool *src_done,
			const char *what, DtsError *err)
{
	while (!*src_done && relay->queued < DTS_COPY_RELAY_QUEUE_BYTES)
	{
		char	   *buf;
		int			n = PQgetCopyData(src, &buf, 1);

		if (n > 0)
		{
			int			rc = queue_message(relay, buf, (size_t) n, what, err);

			PQfreemem(buf);
			if (rc < 0)
				return -1;
			continue;
		}
		if (n == -1)
			*src_done = true;
		else if (n == -2)
			return conn_failed(src, what, err);
		break;
	}
	return 0;
}

/*
 * Hands ready chunks to the destination until its socket is full or none is
 * ready; *pending tells whether libpq still holds unsent bytes.
 */
static int
feed_destination(DtsCopyRelay *relay, PGconn *dst, bool src_done,
				 bool *pending, const char *what, DtsError *err)
{
	for (;;)
	{
		int			f = PQflush(dst);

		if (f < 0)
			return conn_failed(dst, what, err);
		*pending = f == 1;
		if (*pending || !head_ready(relay, src_done))
			return 0;
		if (PQputCopyData(dst, relay->head->data,
						  (int) relay->head->len) != 1)
			return conn_failed(dst, what, err);
		pop_chunk(relay);
	}
}

/* Waits until the source has input or the destination takes output */
static int
wait_sockets(DtsCopyRelay *relay, PGconn *src, PGconn *dst, bool want_src,
			 bool want_dst, const char *what, DtsError *err)
{
	struct pollfd pfd[2];
	int			np = 0;
	int			rc;

	if (want_src)
		pfd[np++] = (struct pollfd) {.fd = PQsocket(src),.events = POLLIN};
	if (want_dst)
		pfd[np++] = (struct pollfd) {.fd = PQsocket(dst),.events = POLLOUT};
	if (np == 0)
		return 0;
	rc = poll(pfd, np, RELAY_IDLE_MS);
	if (rc < 0 && errno != EINTR)
		return dts_error_set(err, DTS_ERROR_OTHER, "%s: poll failed: %s",
							 what, strerror(errno));
	if (rc == 0 && report(relay, err) < 0)
		return -1;				/* idle: lets the caller stop us */
	if (rc > 0 && want_src && pfd[0].revents != 0 && !PQconsumeInput(src))
		return conn_failed(src, what, err);
	return 0;
}

int
dts_copy_relay_run(DtsCopyRelay *relay, PGconn *src, PGconn *dst,
				   const char *what, DtsError *err)
{
	bool		src_done = false;
	bool		pending = false;
	int			rc = -1;

	relay->header_seen = false;
	relay->rows_total = 0;
	if (PQsetnonblocking(dst, 1) != 0)
		return conn_failed(dst, what, err);
	for (;;)
	{
		if (take_source(relay, src, &src_done, what, err) < 0)
			break;
		if (relay->bytes >= DTS_COPY_RELAY_PROGRESS_BYTES &&
			report(relay, err) < 0)
			break;
		if (feed_destination(relay, dst, src_done, &pending, what, err) < 0)
			break;
		if (src_done && relay->head == NULL && !pending)
		{
			rc = report(relay, err);
			break;
		}
		if (wait_sockets(relay, src, dst,
						 !src_done && relay->queued < DTS_COPY_RELAY_QUEUE_BYTES,
						 pending, what, err) < 0)
			break;
	}
	if (PQsetnonblocking(dst, 0) != 0 && rc == 0)
		rc = conn_failed(dst, what, err);
	if (rc < 0)
		dts_copy_relay_free(relay);
	return rc;
}

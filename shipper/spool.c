/*-------------------------------------------------------------------------
 *
 * spool.c
 *	  Streamed in-progress transactions spooled to unlinked temp files
 *	  until their STREAM_COMMIT or STREAM_ABORT (see spool.h).
 *
 * Record layout in a spool file (host byte order: the file never outlives
 * the process):
 *
 *		kind    1 byte   'R' a RELATION frame, 'F' a change frame
 *		subxid  4 bytes  the (sub)transaction of an 'F' record
 *		length  4 bytes  of the message that follows
 *		message          version byte, the frame, CRC-32C (frame.h)
 *
 * shipper/spool.c
 *
 *-------------------------------------------------------------------------
 */
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPOOL_BUFSIZE		(256 * 1024)
#define SPOOL_RECORD_HEADER 9

struct DtsSpool
{
	uint32_t	xid;			/* toplevel transaction */
	FILE	   *fp;				/* unlinked temp file */
	DtsU32Map	relgens;		/* relid -> generation recorded */
	DtsU32Map	aborted;		/* aborted subxids (values unused) */
	uint64_t	bytes;
	uint64_t	changes;
};

/* ----------------------------------------------------------------
 *		DtsU32Map: open addressing, linear probing, never shrinks
 * ----------------------------------------------------------------
 */

void
dts_u32map_init(DtsU32Map *map)
{
	memset(map, 0, sizeof(*map));
}

void
dts_u32map_free(DtsU32Map *map)
{
	free(map->keys);
	free(map->vals);
	free(map->used);
	dts_u32map_init(map);
}

static uint32_t
u32_hash(uint32_t k)
{
	k ^= k >> 16;
	k *= 0x7feb352d;
	k ^= k >> 15;
	k *= 0x846ca68b;
	k ^= k >> 16;
	return k;
}

static void
u32map_grow(DtsU32Map *map)
{
	DtsU32Map	bigger;

	bigger.cap = map->cap ? map->cap * 2 : 16;
	bigger.count = 0;
	bigger.keys = dts_realloc(NULL, bigger.cap * sizeof(uint32_t));
	bigger.vals = dts_realloc(NULL, bigger.cap * sizeof(uint64_t));
	bigger.used = dts_realloc(NULL, bigger.cap * sizeof(bool));
	memset(bigger.used, 0, bigger.cap * sizeof(bool));
	for (uint32_t i = 0; i < map->cap; i++)
		if (map->used[i])
			dts_u32map_put(&bigger, map->keys[i], map->vals[i]);
	dts_u32map_free(map);
	*map = bigger;
}

void
dts_u32map_put(DtsU32Map *map, uint32_t key, uint64_t val)
{
	uint32_t	i;

	if ((map->count + 1) * 4 > map->cap * 3)
		u32map_grow(map);
	for (i = u32_hash(key) & (map->cap - 1);; i = (i + 1) & (map->cap - 1))
	{
		if (!map->used[i])
		{
			map->used[i] = true;
			map->keys[i] = key;
			map->count++;
			break;
		}
		if (map->keys[i] == key)
			break;
	}
	map->vals[i] = val;
}

bool
dts_u32map_get(const DtsU32Map *map, uint32_t key, uint64_t *val)
{
	if (map->cap == 0)
		return false;
	for (uint32_t i = u32_hash(key) & (map->cap - 1);;
		 i = (i + 1) & (map->cap - 1))
	{
		if (!map->used[i])
			return false;
		if (map->keys[i] == key)
		{
			if (val)
				*val = map->vals[i];
			return true;
		}
	}
}

/* ----------------------------------------------------------------
 *		The set
 * ----------------------------------------------------------------
 */

void
dts_spool_set_init(DtsSpoolSet *set, const char *dir)
{
	const char *tmp = getenv("TMPDIR");

	memset(set, 0, sizeof(*set));
	if (dir == NULL)
		dir = (tmp && tmp[0]) ? tmp : "/tmp";
	set->dir = dts_strdup(dir);
	set->scratch.realloc_fn = dts_realloc;
}

static void
spool_free(DtsSpool *spool)
{
	if (spool->fp)
		fclose(spool->fp);
	dts_u32map_free(&spool->relgens);
	dts_u32map_free(&spool->aborted);
	free(spool);
}

void
dts_spool_set_reset(DtsSpoolSet *set)
{
	for (int i = 0; i < set->nspools; i++)
		spool_free(set->spools[i]);
	set->nspools = 0;
}

void
dts_spool_set_free(DtsSpoolSet *set)
{
	dts_spool_set_reset(set);
	free(set->spools);
	free(set->dir);
	free(set->scratch.data);
	memset(set, 0, sizeof(*set));
}

int
dts_spool_count(const DtsSpoolSet *set)
{
	return set->nspools;
}

uint64_t
dts_spool_bytes(const DtsSpool *spool)
{
	return spool->bytes;
}

uint64_t
dts_spool_changes(const DtsSpool *spool)
{
	return spool->changes;
}

/* Creates the unlinked temp file of a new spool. */
static DtsSpool *
spool_create(DtsSpoolSet *set, uint32_t xid, DtsError *err)
{
	DtsSpool   *spool;
	FILE	   *fp = dts_temp_file(set->dir, "spool", SPOOL_BUFSIZE);

	if (fp == NULL)
	{
		dts_error_set(err, DTS_ERROR_OTHER,
					  "could not create a spool file in \"%s\" for streamed transaction %u: %s",
					  set->dir, xid, strerror(errno));
		dts_error_hint(err, "Set TMPDIR to a writable directory with room for the largest transaction.");
		return NULL;
	}
	spool = dts_realloc(NULL, sizeof(DtsSpool));
	memset(spool, 0, sizeof(*spool));
	spool->xid = xid;
	spool->fp = fp;
	return spool;
}

DtsSpool *
dts_spool_get(DtsSpoolSet *set, uint32_t xid, bool create, DtsError *err)
{
	DtsSpool   *spool;

	for (int i = 0; i < set->nspools; i++)
		if (set->spools[i]->xid == xid)
			return set->spools[i];
	if (!create)
		return NULL;
	spool = spool_create(set, xid, err);
	if (spool == NULL)
		return NULL;
	if (set->nspools == set->cap)
	{
		set->cap = set->cap ? set->cap * 2 : 4;
		set->spools = dts_realloc(set->spools, set->cap * sizeof(DtsSpool *));
	}
	set->spools[set->nspools++] = spool;
	return spool;
}

void
dts_spool_drop(DtsSpoolSet *set, uint32_t xid)
{
	for (int i = 0; i < set->nspools; i++)
	{
		if (set->spools[i]->xid != xid)
			continue;
		spool_free(set->spools[i]);
		set->spools[i] = set->spools[--set->nspools];
		return;
	}
}

void
dts_spool_abort_subxact(DtsSpool *spool, uint32_t subxid)
{
	dts_u32map_put(&spool->aborted, subxid, 0);
}

/* ----------------------------------------------------------------
 *		Writing records
 * ----------------------------------------------------------------
 */

/* Appends set->scratch (a whole message) as a record. */
static int
spool_write_record(DtsSpool *spool, char kind, uint32_t subxid,
				   const DtsWriteBuf *msg, DtsError *err)
{
	uint8_t		header[SPOOL_RECORD_HEADER];
	uint32_t	len = (uint32_t) msg->len;

	header[0] = (uint8_t) kind;
	memcpy(header + 1, &subxid, 4);
	memcpy(header + 5, &len, 4);
	if (fwrite(header, 1, sizeof(header), spool->fp) != sizeof(header) ||
		fwrite(msg->data, 1, msg->len, spool->fp) != msg->len)
	{
		dts_error_set(err, DTS_ERROR_OTHER,
					  "could not write spool file of streamed transaction %u: %s",
					  spool->xid, strerror(errno));
		if (errno == ENOSPC)
			dts_error_hint(err, "Set TMPDIR to a directory with room for the largest transaction.");
		return -1;
	}
	spool->bytes += sizeof(header) + msg->len;
	return 0;
}

static int
spool_write_relation(DtsSpoolSet *set, DtsSpool *spool,
					 const DtsRelation *rel, uint64_t gen, DtsError *err)
{
	uint64_t	have;

	if (dts_u32map_get(&spool->relgens, rel->relid, &have) && have == gen)
		return 0;
	set->scratch.len = 0;
	dts_message_start(&set->scratch);
	dts_write_relation(&set->scratch, rel);
	dts_message_finish(&set->scratch);
	if (spool_write_record(spool, 'R', 0, &set->scratch, err) != 0)
		return -1;
	dts_u32map_put(&spool->relgens, rel->relid, gen);
	return 0;
}

int
dts_spool_add_relations(DtsSpoolSet *set, DtsSpool *spool,
						const DtsRelation *const *rels, const uint64_t *gens,
						int nrels, DtsError *err)
{
	for (int i = 0; i < nrels; i++)
		if (rels[i] && spool_write_relation(set, spool, rels[i], gens[i],
											err) != 0)
			return -1;
	return 0;
}

int
dts_spool_add(DtsSpoolSet *set, DtsSpool *spool, uint32_t subxid,
			  const DtsRelation *rel, uint64_t rel_gen,
			  const uint8_t *frame, size_t len, DtsError *err)
{
	if (rel && spool_write_relation(set, spool, rel, rel_gen, err) != 0)
		return -1;
	set->scratch.len = 0;
	dts_message_start(&set->scratch);
	dts_put_raw(&set->scratch, frame, len);
	dts_message_finish(&set->scratch);
	if (spool_write_record(spool, 'F', subxid, &set->scratch, err) != 0)
		return -1;
	spool->changes++;
	return 0;
}

/* ----------------------------------------------------------------
 *		Replay
 * ----------------------------------------------------------------
 */

static int
spool_read_error(DtsSpool *spool, const char *detail, DtsError *err)
{
	return dts_error_set(err, DTS_ERROR_OTHER,
						 "could not read spool file of streamed transaction %u: %s",
						 spool->xid, detail);
}

/* Decodes one record's message and hands its frames to fn. */
static int
replay_record(DtsSpool *spool, DtsDecoder *dec, const uint8_t *msg,
			  size_t len, DtsSpoolReplayFn fn, void *arg, DtsError *err)
{
	DtsFrame	frame;
	int			rc;

	if (dts_decoder_open(dec, msg, len) != 0)
		return spool_read_error(spool, dec->error, err);
	while ((rc = dts_decoder_next(dec, &frame)) == 1)
	{
		int			frc;

		if (frame.kind == DTS_FRAME_RELATION)
			continue;			/* the decoder has cached it */
		frc = fn(arg, &frame, dec, err);
		if (frc != 0)
			return frc;
	}
	if (rc < 0)
		return spool_read_error(spool, dec->error, err);
	return 0;
}

int
dts_spool_replay(DtsSpool *spool, DtsSpoolReplayFn fn, void *arg,
				 DtsError *err)
{
	DtsDecoder	dec;
	uint8_t		header[SPOOL_RECORD_HEADER];
	uint8_t    *msg = NULL;
	size_t		msgcap = 0;
	int			rc = 0;

	if (fflush(spool->fp) != 0 || fseeko(spool->fp, 0, SEEK_SET) != 0)
		return spool_read_error(spool, strerror(errno), err);
	dts_decoder_init(&dec);
	for (;;)
	{
		uint32_t	subxid;
		uint32_t	len;

		if (fread(header, 1, sizeof(header), spool->fp) != sizeof(header))
		{
			if (ferror(spool->fp))
				rc = spool_read_error(spool, strerror(errno), err);
			break;				/* end of the spool */
		}
		memcpy(&subxid, header + 1, 4);
		memcpy(&len, header + 5, 4);
		if (len > msgcap)
		{
			msgcap = len;
			msg = dts_realloc(msg, msgcap);
		}
		if (fread(msg, 1, len, spool->fp) != len)
		{
			rc = spool_read_error(spool, "record cut short", err);
			break;
		}
		if (header[0] == 'F' && dts_u32map_get(&spool->aborted, subxid, NULL))
			continue;			/* made by an aborted subtransaction */
		rc = replay_record(spool, &dec, msg, len, fn, arg, err);
		if (rc != 0)
			break;
	}
	dts_decoder_free(&dec);
	free(msg);
	return rc;
}

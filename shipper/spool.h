/*-------------------------------------------------------------------------
 *
 * spool.h
 *	  Streamed in-progress transactions, kept on disk until their outcome
 *	  is known.
 *
 * With streaming on, the plugin sends a large transaction in blocks while
 * it is still running.  Each toplevel xid gets a spool: an unlinked temp
 * file to which every change of its blocks is appended with the (sub)xid
 * that made it (from the XID frames).  STREAM_ABORT of a subtransaction
 * marks that subxid's changes dropped; STREAM_ABORT of the toplevel
 * transaction drops the spool; STREAM_COMMIT replays it, frame by frame,
 * to the sink as one transaction.  Memory stays bounded however big the
 * transaction: one record at a time is read back.
 *
 * Each record is a complete pg_dts message holding one frame, so replay
 * uses the ordinary frame reader with its own relation cache; the spool
 * writes the RELATION a change needs before the change whenever the
 * relation is new to the spool or has changed since (relation generation
 * numbers, kept by the caller).
 *
 * shipper/spool.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_SPOOL_H
#define PG_DTS_SHIP_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "pg_dts/frame.h"
#include "log.h"

/* ----------------------------------------------------------------
 *		A small hash map from uint32 keys (xids, relids) to uint64 values
 * ----------------------------------------------------------------
 */
typedef struct DtsU32Map
{
	uint32_t   *keys;
	uint64_t   *vals;
	bool	   *used;
	uint32_t	cap;			/* 0 or a power of two */
	uint32_t	count;
} DtsU32Map;

extern void dts_u32map_init(DtsU32Map *map);
extern void dts_u32map_free(DtsU32Map *map);
extern void dts_u32map_put(DtsU32Map *map, uint32_t key, uint64_t val);
/* Returns true and sets *val (if not NULL) when key is present. */
extern bool dts_u32map_get(const DtsU32Map *map, uint32_t key, uint64_t *val);

/* ----------------------------------------------------------------
 *		Spools
 * ----------------------------------------------------------------
 */
typedef struct DtsSpool DtsSpool;

/* The spools of one replication stream. */
typedef struct DtsSpoolSet
{
	DtsSpool  **spools;
	int			nspools;
	int			cap;
	char	   *dir;			/* where the temp files go */
	DtsWriteBuf scratch;		/* builds the records */
} DtsSpoolSet;

/* dir: directory for the temp files (copied); NULL = $TMPDIR or /tmp */
extern void dts_spool_set_init(DtsSpoolSet *set, const char *dir);
/* Drops every spool (their files go with them) and frees the set. */
extern void dts_spool_set_free(DtsSpoolSet *set);
/* Drops every spool, keeping the set usable (a new stream). */
extern void dts_spool_set_reset(DtsSpoolSet *set);

/*
 * The spool of toplevel xid, created (with its temp file) when create is
 * set and there is none.  Returns NULL when there is none, or with err set
 * when the file cannot be created.  The spool belongs to the set.
 */
extern DtsSpool *dts_spool_get(DtsSpoolSet *set, uint32_t xid, bool create,
							   DtsError *err);

/*
 * Appends one change frame (its raw bytes, kind byte first) made by subxid.
 * rel, when not NULL, is the relation the frame refers to, with the
 * caller's generation number for it: when the spool has not recorded that
 * generation, the RELATION is written first.  Returns 0 or -1 (err set).
 */
extern int	dts_spool_add(DtsSpoolSet *set, DtsSpool *spool, uint32_t subxid,
						  const DtsRelation *rel, uint64_t rel_gen,
						  const uint8_t *frame, size_t len, DtsError *err);

/* The same for a TRUNCATE's several relations (rels[i] may be NULL). */
extern int	dts_spool_add_relations(DtsSpoolSet *set, DtsSpool *spool,
									const DtsRelation *const *rels,
									const uint64_t *gens, int nrels,
									DtsError *err);

/* STREAM_ABORT of a subtransaction: its changes will not be replayed. */
extern void dts_spool_abort_subxact(DtsSpool *spool, uint32_t subxid);

/* STREAM_ABORT of the toplevel transaction, or after the replay. */
extern void dts_spool_drop(DtsSpoolSet *set, uint32_t xid);

/*
 * Replays the spool: calls fn for every change frame that was not aborted,
 * in the order spooled, with the decoder that read it (for relation
 * lookups).  The frame is valid during the call only.  Stops at the first
 * fn that returns non-zero and returns that; -1 with err set on read
 * errors.
 */
typedef int (*DtsSpoolReplayFn) (void *arg, const DtsFrame *frame,
								 const DtsDecoder *dec, DtsError *err);
extern int	dts_spool_replay(DtsSpool *spool, DtsSpoolReplayFn fn, void *arg,
							 DtsError *err);

/* Number of open spools; bytes and changes of one spool (for messages). */
extern int	dts_spool_count(const DtsSpoolSet *set);
extern uint64_t dts_spool_bytes(const DtsSpool *spool);
extern uint64_t dts_spool_changes(const DtsSpool *spool);

#endif							/* PG_DTS_SHIP_SPOOL_H */

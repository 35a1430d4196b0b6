/*-------------------------------------------------------------------------
 *
 * sink.h
 *	  The one interface every destination of pg_dts_ship implements: a
 *	  table of function pointers plus the sink's private state.
 *
 * The shipper drives a sink with whole transactions, in commit order:
 *
 *		begin(txn)  change(txn, c) ...  commit(txn)
 *
 * and, between transactions, non-transactional logical messages as
 * change(NULL, c).  A streamed (in-progress) transaction is spooled by the
 * shipper and handed to the sink only after its STREAM_COMMIT, as one
 * ordinary transaction; a sink never sees aborted changes.  If the stream
 * breaks inside a transaction (connection lost, stop signal), the shipper
 * calls rollback() instead of commit(): the server will send the whole
 * transaction again.
 *
 * Durability contract.  durable_lsn() returns the end LSN of the last
 * transaction (COMMIT end_lsn) whose effects the sink has made durable,
 * i.e. that would survive a crash of the shipper and of the machine it
 * writes to; 0 before the first.  It only ever grows.  The shipper reports
 * exactly this value to the server as the flushed position, so the server
 * keeps everything after it and sends it again after a restart: a sink
 * must never report as durable what it could still lose.  What that means
 * is the sink's business (fsync for a file, a delivery report for Kafka,
 * the COMMIT of the transaction that also stored the LSN for PostgreSQL).
 * flush() makes durable what the sink has accepted, either when the sink's
 * own schedule says it is due or, with force, now (before a feedback the
 * server asked for, at rotation and at shutdown).
 *
 * Ownership.  Everything passed to a callback (the txn, the change, the
 * frame and the relations and values it points to) belongs to the caller
 * and is valid only during the call: a sink copies what it keeps.  The
 * state pointer belongs to the sink; close() frees it and everything the
 * sink opened, and the DtsSink may then be reused.
 *
 * Errors.  A callback that fails returns -1 after recording what failed,
 * naming the object and saying what to do, in *err (log.h); it does not
 * log it.  The shipper logs it once and, depending on err->cls, retries
 * (after rollback() and a reconnect) or exits.
 *
 * shipper/sink.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_SINK_H
#define PG_DTS_SHIP_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_dts/frame.h"
#include "log.h"

/* One transaction as the sink sees it. */
typedef struct DtsTxn
{
	uint32_t	xid;			/* top-level transaction id */
	uint64_t	commit_lsn;		/* LSN of the commit record */
	uint64_t	end_lsn;		/* its end: the position to confirm; 0 until
								 * commit() except for streamed transactions,
								 * which are replayed once it is known */
	int64_t		commit_time;	/* microseconds since 2000-01-01 UTC */
	const char *origin;			/* replication origin name, or NULL */
} DtsTxn;

/* One change: a decoded frame plus what the shipper knows about it. */
typedef struct DtsChange
{
	const DtsFrame *frame;		/* INSERT UPDATE DELETE TRUNCATE MESSAGE */

	/*
	 * INSERT, UPDATE, DELETE: frame->rel under the names the task maps it
	 * to at the sink (router.h); frame->rel itself when nothing is renamed.
	 * Same columns in the same order.  Sinks write these names.
	 */
	const DtsRelation *target;

	/*
	 * INSERT, UPDATE, DELETE: names the description of frame->rel (a
	 * number per RELATION frame of the stream, never reused), so that a sink
	 * may keep what it derives from frame->rel and target while it stays the
	 * same; 0 when unknown (then derive it again).
	 */
	uint64_t	rel_gen;

	/*
	 * TRUNCATE: the relations of frame->relids, NULL where the stream did
	 * not describe one (then only the relid is known).
	 */
	const DtsRelation *const *truncated;

	/*
	 * INSERT or UPDATE of public.dts_postgres_heartbeat: a heartbeat row,
	 * shown as such and not as a change of a user table.
	 */
	bool		heartbeat;
	int64_t		beat_time;		/* heartbeat: beat_time, us since
								 * 2000-01-01 UTC, or 0 if unreadable */
	int64_t		latency_us;		/* heartbeat: receive time - beat_time */
} DtsChange;

typedef struct DtsSink DtsSink;

typedef struct DtsSinkOps
{
	const char *name;			/* "file", ... for messages */

	/* Opens the destination (files, connections).  Called once. */
	int			(*open) (DtsSink *sink, DtsError *err);
	int			(*begin) (DtsSink *sink, const DtsTxn *txn, DtsError *err);
	/* txn is NULL for a non-transactional logical message */
	int			(*change) (DtsSink *sink, const DtsTxn *txn,
						   const DtsChange *change, DtsError *err);
	/* txn->end_lsn is set; the transaction becomes durable later or now */
	int			(*commit) (DtsSink *sink, const DtsTxn *txn, DtsError *err);
	/* Forgets the open transaction (the server sends it again); see above */
	int			(*rollback) (DtsSink *sink, DtsError *err);

	/*
	 * Makes accepted transactions durable if due (force: now).  Sets
	 * *next_due_us to when it next wants to be called (a time from
	 * dts_now_us(), or INT64_MAX for never).
	 */
	int			(*flush) (DtsSink *sink, bool force, int64_t now_us,
						  int64_t *next_due_us, DtsError *err);
	uint64_t	(*durable_lsn) (DtsSink *sink);
	/* Is everything accepted so far durable, with no transaction open? */
	bool		(*idle) (DtsSink *sink);
	/* SIGHUP: make everything durable, close and reopen (log rotation). */
	int			(*reopen) (DtsSink *sink, DtsError *err);
	/* Releases everything; does not flush (call flush(force) first). */
	void		(*close) (DtsSink *sink);
} DtsSinkOps;

struct DtsSink
{
	const DtsSinkOps *ops;
	void	   *state;			/* the sink's own, freed by close() */

	/*
	 * Read-ahead, set by the source while it streams (NULL otherwise).  A
	 * sink about to wait for its destination calls prefetch(prefetch_arg,
	 * max_bytes): the source reads the messages that have arrived into
	 * memory, up to max_bytes held, without handing anything to the sink,
	 * and returns the socket to wait on as well for more (-1: none now).
	 * So the source's walsender goes on decoding while the destination
	 * works, instead of stopping as soon as its socket buffer is full.
	 */
	int			(*prefetch) (void *arg, size_t max_bytes);
	void	   *prefetch_arg;
};

/* ----------------------------------------------------------------
 *		The sinks
 * ----------------------------------------------------------------
 */

/* File sink (sinks/file.c): JSON lines, see docs/shipper.md. */
typedef struct DtsFileSinkConfig
{
	const char *path;			/* "-" = standard output; copied */
	int			fsync_interval_ms;	/* 0 = fsync at every commit */
	bool		begin_commit_lines; /* also write "begin" and "commit" lines */
} DtsFileSinkConfig;

/* Sets up *sink as a file sink; nothing is opened before ops->open(). */
extern void dts_file_sink_init(DtsSink *sink, const DtsFileSinkConfig *config);

/*
 * Kafka sink (sinks/kafka.c): one message per change, value in DTS Avro,
 * SharePlex JSON or Canal JSON (formats/), key and partition chosen by the
 * partition policy; a transaction is durable once every message of it and
 * of every earlier transaction has a successful delivery report.  The
 * settings are the task file's "sink" object; docs/kafka.md ("Sink").
 */
typedef enum DtsKafkaFormat
{
	DTS_KAFKA_FORMAT_AVRO = 0,	/* "avro" (default) */
	DTS_KAFKA_FORMAT_SHAREPLEX_JSON,	/* "shareplex_json" */
	DTS_KAFKA_FORMAT_CANAL_JSON /* "canal_json" */
} DtsKafkaFormat;

typedef enum DtsKafkaPartitionPolicy
{
	DTS_KAFKA_PARTITION_0 = 0,	/* "partition0" (default): all to 0 */
	DTS_KAFKA_PARTITION_TABLE,	/* "table": murmur2 of database.schema.table */
	DTS_KAFKA_PARTITION_KEY		/* "primary_key": murmur2 of the table and
								 * its key values */
} DtsKafkaPartitionPolicy;

/* One entry of a topic_per_table mapping: "schema.table" -> topic */
typedef struct DtsKafkaTopicMapping
{
	char	   *table;			/* source "schema.table" */
	char	   *topic;
} DtsKafkaTopicMapping;

struct DtsTask;

/*
 * Every string is malloc'd and owned by the config (free it with
 * dts_kafka_sink_config_free), except the three fields the caller sets
 * after parsing, which are borrowed and must outlive the sink.
 */
typedef struct DtsKafkaSinkConfig
{
	char	   *brokers;		/* bootstrap.servers, "host:port,..." */
	char	   *topic;			/* the task's topic (and DDL, heartbeats) */
	bool		topic_per_table;	/* true: "<topic>.<schema>.<table>" */
	DtsKafkaTopicMapping *topic_map;	/* or these tables to these topics */
	int			ntopic_map;
	DtsKafkaFormat format;
	DtsKafkaPartitionPolicy partition_policy;
	char	   *compression;	/* lz4 (default), gzip, snappy, zstd, none */
	bool		lsn_headers;	/* headers dts_lsn, dts_seq on every message
								 * (default: canal_json only, the record of
								 * the other formats has the position) */
	char	  **kafka_names;	/* "kafka.<property>" pass-through, set */
	char	  **kafka_values;	/* after our defaults (so they win) */
	int			nkafka;

	/* set by the caller (borrowed) */
	const char *database;		/* source database name (keys, records) */
	const char *source_version; /* source server_version, or NULL */
	const struct DtsTask *task; /* name mapping of TRUNCATEd tables and of
								 * changes without a target (the router maps
								 * the others), or NULL */
} DtsKafkaSinkConfig;

/*
 * Parses the task's "sink" object (JSON text, as DtsTask.sink_json) into
 * *config.  Unknown keys, wrong types and librdkafka properties that
 * librdkafka rejects are errors naming the key as "sink.<key>" (values are
 * never repeated: they may be passwords).  Returns 0, or -1 with err set;
 * free the config in both cases.
 */
extern int	dts_kafka_sink_config_from_json(DtsKafkaSinkConfig *config,
											const char *sink_json,
											char *err, size_t errlen);
extern void dts_kafka_sink_config_free(DtsKafkaSinkConfig *config);

/*
 * Sets up *sink as a Kafka sink (config is copied; the borrowed fields stay
 * borrowed); ops->open() creates the producer and checks the topic.
 */
extern void dts_kafka_sink_init(DtsSink *sink,
								const DtsKafkaSinkConfig *config);

/*
 * Kafka's murmur2 (the Java client's Utils.murmur2) and the partition the
 * sink gives a key: (murmur2(key) & 0x7fffffff) % partitions, the choice
 * of Kafka's default partitioner for a keyed record.
 */
extern uint32_t dts_kafka_murmur2(const void *key, size_t len);
extern int	dts_kafka_partition_of(const void *key, size_t len,
								   int partitions);

/* ----------------------------------------------------------------
 *		pg sink
 *
 * Incremental apply into a peer PostgreSQL (sinks/pg.c, conflicts in
 * conflict.c; docs/pg-sink.md).  Exactly-once: the applied LSN is stored
 * in dts.apply_progress in the same destination transaction as the data.
 * ----------------------------------------------------------------
 */
struct DtsTask;

typedef struct DtsPgSinkConfig
{
	char	   *conninfo;		/* destination (libpq); malloc'd by
								 * dts_pg_sink_config_from_json */
	const char *task_name;		/* progress row, origin "dts_<name>", conflict
								 * log; copied by dts_pg_sink_init */
	const struct DtsTask *task; /* name mapping (dts_task_find_rule); NULL =
								 * every table under its own name; must
								 * outlive the sink */
	const char *source_encoding;	/* the source's server_encoding, used as
									 * client_encoding; NULL = the
									 * destination's own; copied */
	int			conflict_policy;	/* a DtsConflictPolicy (conflict.h) */
	int			batch_transactions; /* source transactions per destination
									 * transaction, at most */
	int			batch_rows;		/* rows per destination transaction, at most
								 * (a bigger source transaction is not cut) */
	int			batch_interval_ms;	/* commit a batch at most this late */
	int			batch_memory_mb;	/* changes of the open batch kept in
									 * memory, MB; past it a temp file */
	bool		conflicting_tables_ignore;	/* "conflicting_tables": "ignore" */
} DtsPgSinkConfig;

/*
 * Reads the task's "sink" object (DtsTask.sink_json) into *cfg, over the
 * defaults; task_name, task and source_encoding are left for the caller.
 * Returns 0, or -1 with "sink.<key>: <what is wrong>" in err (unknown
 * keys included).  Free cfg->conninfo with dts_pg_sink_config_free().
 */
extern int	dts_pg_sink_config_from_json(const char *sink_json,
										 DtsPgSinkConfig *cfg,
										 char *err, size_t errlen);
extern void dts_pg_sink_config_free(DtsPgSinkConfig *cfg);

/* Sets up *sink as a pg sink; nothing connects before ops->open(). */
extern void dts_pg_sink_init(DtsSink *sink, const DtsPgSinkConfig *config);

#endif							/* PG_DTS_SHIP_SINK_H */

/*-------------------------------------------------------------------------
 *
 * kafka.c
 *	  The Kafka sink: one message per change, produced with librdkafka,
 *	  the value in the task's format (DTS Avro, SharePlex JSON or Canal
 *	  JSON, formats/), the key and partition by the task's policy.
 *
 * Durability.  Each transaction the shipper hands over becomes a "unit"
 * in a queue, in commit order, counting its messages still in flight;
 * every message carries its unit's sequence number as the librdkafka
 * message opaque.  The delivery report callback (served by rd_kafka_poll()
 * from our own thread, in flush() and after each produce) decrements the
 * count, and durable_lsn moves to the end LSN of the newest committed unit
 * such that it and every earlier one have no message in flight.  A unit
 * forgotten by rollback() waits for its reports but never moves
 * durable_lsn (the server sends the transaction again).  A failed delivery
 * report, or a fatal error of the idempotent producer, stops the task:
 * every later call fails with DTS_ERROR_FATAL and durable_lsn stays before
 * the failed message, so a restart sends it again.  After a crash,
 * messages after the last durable LSN may be written twice; each record
 * carries its transaction's commit LSN and its position in the
 * transaction to drop them by (Avro safeSourcePosition and tag dts_seq,
 * SharePlex scn and seq), and with lsn_headers (the default only for
 * Canal JSON, whose record has no position) also the headers "dts_lsn"
 * and "dts_seq".
 *
 * Enqueueing: a full local queue (QUEUE_FULL) is not an error: we serve
 * delivery reports and try again.  The producer defaults keep order and
 * lose nothing: enable.idempotence=true, acks=all,
 * max.in.flight.requests.per.connection=5.
 *
 * Partitions are chosen here, not by librdkafka's partitioner, so that
 * users can predict them: (murmur2(key) & 0x7fffffff) % partitions, as
 * Kafka's Java default partitioner does for a keyed record.  The key is
 * "<database>.<schema>.<table>", plus ":<value>" per key column under the
 * primary_key policy; docs/kafka.md ("Sink") has the details.
 *
 * shipper/sinks/kafka.c
 *
 *-------------------------------------------------------------------------
 */
#include "sink.h"

#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "formats/canal_json.h"
#include "formats/dts_avro.h"
#include "formats/record.h"
#include "formats/shareplex_json.h"
#include "task.h"

#define KAFKA_METADATA_TIMEOUT_MS	10000
#define KAFKA_FORCE_FLUSH_MAX_MS	10000	/* flush(force) waits at most */
#define KAFKA_POLL_INTERVAL_US		50000	/* flush() due while in flight */
#define KAFKA_POLL_EVERY			256	/* produces between two polls */
#define KAFKA_READ_AHEAD_EVERY		32	/* produces between two read-aheads */
#define KAFKA_READ_AHEAD_BYTES		(8 * 1024 * 1024)	/* see read_ahead() */
#define HEARTBEAT_TABLE				"dts_postgres_heartbeat"
#define KAFKA_MALLOC_KEEP_BYTES		(32 * 1024 * 1024)	/* see keep_heap() */

/* One transaction (or non-transactional message) in the delivery queue */
typedef struct KafkaUnit
{
	uint64_t	end_lsn;		/* durable_lsn once delivered */
	int64_t		outstanding;	/* messages without a delivery report */
	bool		committed;		/* commit() seen */
	bool		abandoned;		/* rollback(): never durable */
} KafkaUnit;

/* A topic the sink writes to */
typedef struct KafkaTopic
{
	char	   *name;
	rd_kafka_topic_t *rkt;
	int			partitions;
} KafkaTopic;

/* What the sink remembers of a relation: its names at the sink, topic */
typedef struct KafkaRel
{
	uint32_t	relid;			/* 0 = free slot */
	char	   *src_schema;		/* to notice a renamed relation */
	char	   *src_table;
	char	   *schema;			/* after mapping */
	char	   *table;
	DtsWriteBuf key_prefix;		/* "<database>.<schema>.<table>" */
	DtsAvroRelCache avro;		/* DTS Avro: the relation's fixed part */
	uint64_t	seen_gen;		/* DtsChange.rel_gen last found under */
	const DtsRelation *seen_target;
	int			topic;			/* index into topics */
	int			ddl_col;		/* dts_ddl_command.ddl_text, else -1 */
} KafkaRel;

typedef struct KafkaSink
{
	DtsKafkaSinkConfig cfg;		/* our copy (borrowed fields borrowed) */
	DtsSink    *sink;			/* for its read-ahead hook */

	rd_kafka_t *rk;
	KafkaTopic *topics;
	int			ntopics;
	KafkaRel   *rels;			/* open addressing by relid */
	int			rels_cap;		/* power of 2 */
	int			nrels;

	/* encoders and scratch */
	DtsAvroEncoder avro;
	bool		avro_ready;
	DtsSharePlexEncoder sp;
	DtsCanalEncoder canal;
	DtsWriteBuf value;
	DtsWriteBuf key;
	DtsTextScratch key_text;

	/* the delivery queue: units[i] has sequence number base_seq + i */
	KafkaUnit  *units;
	size_t		first;			/* index of the oldest live unit */
	size_t		nunits;			/* one past the newest */
	size_t		units_cap;
	uint64_t	base_seq;
	uint64_t	durable_lsn;

	/* the open transaction */
	bool		in_txn;
	uint64_t	txn_seq;
	uint32_t	xid;
	uint64_t	commit_lsn;
	int64_t		commit_time;
	int			seq_in_txn;
	char		lsn_text[32];	/* commit_lsn as "X/X": header dts_lsn */
	int			lsn_len;
	int64_t		born_ms;		/* of the record being produced */
	char	   *last_ddl;		/* DDL text of the last DDL row, deduped */

	int64_t		record_id;
	uint64_t	produced;
	uint64_t	delivered;

	/* a fatal error (delivery failed, producer fenced): first one wins */
	bool		failed;
	char		fail_msg[768];
	char		fail_hint[256];
} KafkaSink;

/* ----------------------------------------------------------------
 *		Partitioning
 * ----------------------------------------------------------------
 */

/* Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2). */
uint32_t
dts_kafka_murmur2(const void *key, size_t len)
{
	const uint8_t *data = key;
	const uint32_t seed = 0x9747b28c;
	const uint32_t m = 0x5bd1e995;
	const int	r = 24;
	uint32_t	h = seed ^ (uint32_t) len;
	size_t		n4 = len / 4;

	for (size_t i = 0; i < n4; i++)
	{
		const uint8_t *p = data + i * 4;
		uint32_t	k = (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
			((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);

		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len % 4)
	{
		case 3:
			h ^= (uint32_t) data[(len & ~(size_t) 3) + 2] << 16;
			/* FALLTHROUGH */
		case 2:
			h ^= (uint32_t) data[(len & ~(size_t) 3) + 1] << 8;
			/* FALLTHROUGH */
		case 1:
			h ^= (uint32_t) data[len & ~(size_t) 3];
			h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return h;
}

int
dts_kafka_partition_of(const void *key, size_t len, int partitions)
{
	if (partitions <= 1)
		return 0;
	return (int) ((dts_kafka_murmur2(key, len) & 0x7fffffff) %
				  (uint32_t) partitions);
}

/* ----------------------------------------------------------------
 *		Configuration from the task file
 * ----------------------------------------------------------------
 */

static int
cfg_error(char *err, size_t errlen, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static int
cfg_error(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void
cfg_add_property(DtsKafkaSinkConfig *cfg, const char *name,
				 const char *value)
{
	cfg->kafka_names = dts_realloc(cfg->kafka_names,
								   sizeof(char *) * (cfg->nkafka + 1));
	cfg->kafka_values = dts_realloc(cfg->kafka_values,
									sizeof(char *) * (cfg->nkafka + 1));
	cfg->kafka_names[cfg->nkafka] = dts_strdup(name);
	cfg->kafka_values[cfg->nkafka] = dts_strdup(value);
	cfg->nkafka++;
}

/* A JSON scalar as librdkafka property text; false for arrays/objects */
static bool
scalar_text(json_t *v, char *buf, size_t size, const char **out)
{
	if (json_is_string(v))
		*out = json_string_value(v);
	else if (json_is_true(v) || json_is_false(v))
		*out = json_is_true(v) ? "true" : "false";
	else if (json_is_integer(v))
	{
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = buf;
	}
	else if (json_is_real(v))
	{
		snprintf(buf, size, "%.17g", json_real_value(v));
		*out = buf;
	}
	else
		return false;
	return true;
}

/* librdkafka checks the property; we say which key, never the value */
static int
check_property(rd_kafka_conf_t *conf, const char *name, const char *value,
			   const char *key, char *err, size_t errlen)
{
	char		errstr[512];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
		RD_KAFKA_CONF_OK)
	{
		/* librdkafka's message names the property, not the value */
		return cfg_error(err, errlen, "sink.%s: %s", key, errstr);
	}
	return 0;
}

static int
parse_topic_map(DtsKafkaSinkConfig *cfg, json_t *v, char *err, size_t errlen)
{
	const char *name;
	json_t	   *topic;

	if (json_is_boolean(v))
	{
		cfg->topic_per_table = json_is_true(v);
		return 0;
	}
	if (!json_is_object(v))
		return cfg_error(err, errlen, "sink.topic_per_table: expected a boolean or an object mapping \"schema.table\" to a topic");
	json_object_foreach(v, name, topic)
	{
		if (!json_is_string(topic) || json_string_length(topic) == 0)
			return cfg_error(err, errlen, "sink.topic_per_table.%s: expected a topic name (a non-empty string)", name);
		if (strchr(name, '.') == NULL)
			return cfg_error(err, errlen, "sink.topic_per_table.%s: expected a table as \"schema.table\"", name);
		cfg->topic_map = dts_realloc(cfg->topic_map,
									 sizeof(DtsKafkaTopicMapping) *
									 (cfg->ntopic_map + 1));
		cfg->topic_map[cfg->ntopic_map].table = dts_strdup(name);
		cfg->topic_map[cfg->ntopic_map].topic =
			dts_strdup(json_string_value(topic));
		cfg->ntopic_map++;
	}
	return 0;
}

int
dts_kafka_sink_config_from_json(DtsKafkaSinkConfig *cfg, const char *sink_json,
								char *err, size_t errlen)
{
	json_t	   *root = NULL;
	json_error_t jerr;
	const char *key;
	json_t	   *v;
	rd_kafka_conf_t *probe = NULL;
	char		num[64];
	json_t	   *lsn_headers = NULL;
	int			rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	cfg->compression = dts_strdup("lz4");
	if (sink_json == NULL)
		return cfg_error(err, errlen, "sink: the kafka sink needs \"brokers\" and \"topic\"");
	root = json_loads(sink_json, 0, &jerr);
	if (root == NULL || !json_is_object(root))
	{
		cfg_error(err, errlen, "sink: expected an object");
		goto cleanup;
	}
	probe = rd_kafka_conf_new();
	json_object_foreach(root, key, v)
	{
		const char *text;

		if (strcmp(key, "type") == 0)
		{
			if (!json_is_string(v) || strcmp(json_string_value(v), "kafka") != 0)
			{
				cfg_error(err, errlen, "sink.type: expected \"kafka\"");
				goto cleanup;
			}
		}
		else if (strcmp(key, "brokers") == 0)
		{
			if (json_is_array(v) && json_array_size(v) > 0)
			{
				size_t		i;
				json_t	   *b;
				size_t		len = 1;
				char	   *list;

				json_array_foreach(v, i, b)
				{
					if (!json_is_string(b) || json_string_length(b) == 0)
					{
						cfg_error(err, errlen, "sink.brokers[%zu]: expected \"host:port\"", i);
						goto cleanup;
					}
					len += json_string_length(b) + 1;
				}
				list = dts_realloc(NULL, len);
				list[0] = '\0';
				json_array_foreach(v, i, b)
				{
					if (i > 0)
						strcat(list, ",");
					strcat(list, json_string_value(b));
				}
				free(cfg->brokers);
				cfg->brokers = list;
			}
			else if (json_is_string(v) && json_string_length(v) > 0)
			{
				free(cfg->brokers);
				cfg->brokers = dts_strdup(json_string_value(v));
			}
			else
			{
				cfg_error(err, errlen, "sink.brokers: expected \"host:port,...\" or an array of \"host:port\"");
				goto cleanup;
			}
		}
		else if (strcmp(key, "topic") == 0)
		{
			if (!json_is_string(v) || json_string_length(v) == 0)
			{
				cfg_error(err, errlen, "sink.topic: expected a topic name (a non-empty string)");
				goto cleanup;
			}
			free(cfg->topic);
			cfg->topic = dts_strdup(json_string_value(v));
		}
		else if (strcmp(key, "topic_per_table") == 0)
		{
			if (parse_topic_map(cfg, v, err, errlen) != 0)
				goto cleanup;
		}
		else if (strcmp(key, "format") == 0)
		{
			text = json_is_string(v) ? json_string_value(v) : "";
			if (strcmp(text, "avro") == 0)
				cfg->format = DTS_KAFKA_FORMAT_AVRO;
			else if (strcmp(text, "shareplex_json") == 0)
				cfg->format = DTS_KAFKA_FORMAT_SHAREPLEX_JSON;
			else if (strcmp(text, "canal_json") == 0)
				cfg->format = DTS_KAFKA_FORMAT_CANAL_JSON;
			else
			{
				cfg_error(err, errlen, "sink.format: expected \"avro\", \"shareplex_json\" or \"canal_json\"");
				goto cleanup;
			}
		}
		else if (strcmp(key, "partition_policy") == 0)
		{
			text = json_is_string(v) ? json_string_value(v) : "";
			if (strcmp(text, "partition0") == 0)
				cfg->partition_policy = DTS_KAFKA_PARTITION_0;
			else if (strcmp(text, "table") == 0)
				cfg->partition_policy = DTS_KAFKA_PARTITION_TABLE;
			else if (strcmp(text, "primary_key") == 0)
				cfg->partition_policy = DTS_KAFKA_PARTITION_KEY;
			else
			{
				cfg_error(err, errlen, "sink.partition_policy: expected \"partition0\", \"table\" or \"primary_key\"");
				goto cleanup;
			}
		}
		else if (strcmp(key, "compression") == 0)
		{
			text = json_is_string(v) ? json_string_value(v) : "";
			if (strcmp(text, "lz4") != 0 && strcmp(text, "gzip") != 0 &&
				strcmp(text, "snappy") != 0 && strcmp(text, "zstd") != 0 &&
				strcmp(text, "none") != 0)
			{
				cfg_error(err, errlen, "sink.compression: expected \"lz4\", \"gzip\", \"snappy\", \"zstd\" or \"none\"");
				goto cleanup;
			}
			if (check_property(probe, "compression.type", text, key,
							   err, errlen) != 0)
				goto cleanup;
			free(cfg->compression);
			cfg->compression = dts_strdup(text);
		}
		else if (strcmp(key, "lsn_headers") == 0)
		{
			if (!json_is_boolean(v))
			{
				cfg_error(err, errlen, "sink.lsn_headers: expected true or false");
				goto cleanup;
			}
			lsn_headers = v;
		}
		else if (strncmp(key, "kafka.", 6) == 0 && key[6] != '\0')
		{
			if (!scalar_text(v, num, sizeof(num), &text))
			{
				cfg_error(err, errlen, "sink.%s: expected a string, number or boolean", key);
				goto cleanup;
			}
			if (strcmp(key + 6, "bootstrap.servers") == 0 ||
				strcmp(key + 6, "metadata.broker.list") == 0)
			{
				cfg_error(err, errlen, "sink.%s: give the brokers as sink.brokers", key);
				goto cleanup;
			}
			if (check_property(probe, key + 6, text, key, err, errlen) != 0)
				goto cleanup;
			cfg_add_property(cfg, key + 6, text);
		}
		else
		{
			cfg_error(err, errlen, "sink.%s: unknown key; expected one of \"type\", \"brokers\", \"topic\", \"topic_per_table\", \"format\", \"partition_policy\", \"compression\", \"lsn_headers\", \"kafka.<librdkafka property>\"", key);
			goto cleanup;
		}
	}
	if (cfg->brokers == NULL)
	{
		cfg_error(err, errlen, "sink.brokers: missing; give the bootstrap brokers as \"host:port,...\"");
		goto cleanup;
	}
	if (cfg->topic == NULL)
	{
		cfg_error(err, errlen, "sink.topic: missing; give the topic to write to");
		goto cleanup;
	}
	/* Canal's record has no position: there the headers are the default */
	if (lsn_headers != NULL)
		cfg->lsn_headers = json_is_true(lsn_headers);
	else
		cfg->lsn_headers = (cfg->format == DTS_KAFKA_FORMAT_CANAL_JSON);
	rc = 0;

cleanup:
	if (probe)
		rd_kafka_conf_destroy(probe);
	json_decref(root);
	return rc;
}

void
dts_kafka_sink_config_free(DtsKafkaSinkConfig *cfg)
{
	free(cfg->brokers);
	free(cfg->topic);
	free(cfg->compression);
	for (int i = 0; i < cfg->ntopic_map; i++)
	{
		free(cfg->topic_map[i].table);
		free(cfg->topic_map[i].topic);
	}
	free(cfg->topic_map);
	for (int i = 0; i < cfg->nkafka; i++)
	{
		/* a property may be a password: clear it before freeing */
		memset(cfg->kafka_values[i], 0, strlen(cfg->kafka_values[i]));
		free(cfg->kafka_names[i]);
		free(cfg->kafka_values[i]);
	}
	free(cfg->kafka_names);
	free(cfg->kafka_values);
	memset(cfg, 0, sizeof(*cfg));
}

static void
cfg_copy(DtsKafkaSinkConfig *dst, const DtsKafkaSinkConfig *src)
{
	*dst = *src;
	dst->brokers = dts_strdup(src->brokers ? src->brokers : "");
	dst->topic = dts_strdup(src->topic ? src->topic : "");
	dst->compression = dts_strdup(src->compression ? src->compression : "lz4");
	dst->topic_map = NULL;
	dst->ntopic_map = 0;
	for (int i = 0; i < src->ntopic_map; i++)
	{
		dst->topic_map = dts_realloc(dst->topic_map,
									 sizeof(DtsKafkaTopicMapping) * (i + 1));
		dst->topic_map[i].table = dts_strdup(src->topic_map[i].table);
		dst->topic_map[i].topic = dts_strdup(src->topic_map[i].topic);
		dst->ntopic_map++;
	}
	dst->kafka_names = NULL;
	dst->kafka_values = NULL;
	dst->nkafka = 0;
	for (int i = 0; i < src->nkafka; i++)
		cfg_add_property(dst, src->kafka_names[i], src->kafka_values[i]);
}

/* ----------------------------------------------------------------
 *		Failure
 * ----------------------------------------------------------------
 */

static void
sink_fail(KafkaSink *ks, const char *hint, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static void
sink_fail(KafkaSink *ks, const char *hint, const char *fmt,...)
{
	va_list		ap;

	if (ks->failed)
		return;
	ks->failed = true;
	va_start(ap, fmt);
	vsnprintf(ks->fail_msg, sizeof(ks->fail_msg), fmt, ap);
	va_end(ap);
	snprintf(ks->fail_hint, sizeof(ks->fail_hint), "%s", hint ? hint : "");
}

static int
report_failure(KafkaSink *ks, DtsError *err)
{
	char		buf[DTS_LSN_BUFSIZE];

	dts_error_set(err, DTS_ERROR_FATAL, "%s; durable up to %s",
				  ks->fail_msg, dts_lsn_str(ks->durable_lsn, buf));
	if (ks->fail_hint[0])
		dts_error_hint(err, "%s", ks->fail_hint);
	return -1;
}

/* ----------------------------------------------------------------
 *		The delivery queue
 * ----------------------------------------------------------------
 */

static KafkaUnit *
unit_get(KafkaSink *ks, uint64_t seq)
{
	if (seq < ks->base_seq + ks->first || seq >= ks->base_seq + ks->nunits)
		return NULL;
	return &ks->units[seq - ks->base_seq];
}

static uint64_t
unit_push(KafkaSink *ks)
{
	if (ks->first > 0 && ks->first >= ks->nunits / 2)
	{
		/* compact: drop the delivered units from the front */
		memmove(ks->units, ks->units + ks->first,
				sizeof(KafkaUnit) * (ks->nunits - ks->first));
		ks->base_seq += ks->first;
		ks->nunits -= ks->first;
		ks->first = 0;
	}
	if (ks->nunits == ks->units_cap)
	{
		ks->units_cap = ks->units_cap ? ks->units_cap * 2 : 64;
		ks->units = dts_realloc(ks->units, sizeof(KafkaUnit) * ks->units_cap);
	}
	memset(&ks->units[ks->nunits], 0, sizeof(KafkaUnit));
	ks->nunits++;
	return ks->base_seq + ks->nunits - 1;
}

/* Pops fully delivered units from the front, moving durable_lsn. */
static void
units_advance(KafkaSink *ks)
{
	while (ks->first < ks->nunits)
	{
		KafkaUnit  *u = &ks->units[ks->first];

		if (u->outstanding > 0 || (!u->committed && !u->abandoned))
			break;
		if (!u->abandoned && u->end_lsn > ks->durable_lsn)
			ks->durable_lsn = u->end_lsn;
		ks->first++;
	}
	if (ks->first == ks->nunits)
	{
		ks->base_seq += ks->nunits;
		ks->first = ks->nunits = 0;
	}
}

/*
 * A unit without messages ends at lsn: durable now when nothing is in
 * flight, else together with the newest committed unit.
 */
static void
unit_empty_committed(KafkaSink *ks, uint64_t lsn)
{
	KafkaUnit  *tail;

	if (ks->first == ks->nunits)
	{
		if (lsn > ks->durable_lsn)
			ks->durable_lsn = lsn;
		return;
	}
	tail = &ks->units[ks->nunits - 1];
	if (tail->committed && !tail->abandoned)
	{
		if (lsn > tail->end_lsn)
			tail->end_lsn = lsn;
		return;
	}
	tail = unit_get(ks, unit_push(ks));
	tail->committed = true;
	tail->end_lsn = lsn;
}

/* librdkafka's delivery report: this is where durability is decided. */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	KafkaSink  *ks = opaque;
	KafkaUnit  *u = unit_get(ks, (uint64_t) (uintptr_t) msg->_private);

	(void) rk;
	if (msg->err)
		sink_fail(ks, "Check the brokers and the topic, then start the task again: it resends everything after the durable position (consumers may see duplicates; drop them by their position, the commit LSN and the change's sequence number: in the record, or the dts_lsn and dts_seq headers; docs/kafka.md).",
				  "could not deliver a message to topic \"%s\" partition %d: %s",
				  rd_kafka_topic_name(msg->rkt), (int) msg->partition,
				  rd_kafka_err2str(msg->err));
	else
		ks->delivered++;
	if (u != NULL)
	{
		u->outstanding--;
		units_advance(ks);
	}
}

/* librdkafka's errors: fatal ones stop the task, others are logged. */
static void
on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
	KafkaSink  *ks = opaque;
	char		buf[512];

	if (code == RD_KAFKA_RESP_ERR__FATAL)
	{
		rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));

		sink_fail(ks, "Start the task again: it resends everything after the durable position.",
				  "fatal Kafka producer error: %s: %s",
				  rd_kafka_err2name(orig), buf);
		return;
	}
	if (code == RD_KAFKA_RESP_ERR__AUTHENTICATION)
	{
		sink_fail(ks, "Check sink.kafka.sasl.username, sink.kafka.sasl.password and sink.kafka.sasl.mechanism (and the TLS settings).",
				  "Kafka authentication failed: %s", reason);
		return;
	}
	/* transient (brokers down, timeouts): librdkafka keeps retrying */
	dts_log_info("kafka: %s: %s", rd_kafka_err2name(code), reason);
}

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void) rk;
	if (level <= 4)				/* LOG_WARNING */
		dts_log_info("kafka: %s: %s", fac, buf);
	else
		dts_log_debug("kafka: %s: %s", fac, buf);
}

/* ----------------------------------------------------------------
 *		Topics and relations
 * ----------------------------------------------------------------
 */

/* Index of topic name in ks->topics, created and measured on first use */
static int
topic_index(KafkaSink *ks, const char *name, DtsError *err)
{
	KafkaTopic *t;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

	for (int i = 0; i < ks->ntopics; i++)
		if (strcmp(ks->topics[i].name, name) == 0)
			return i;

	ks->topics = dts_realloc(ks->topics, sizeof(KafkaTopic) * (ks->ntopics + 1));
	t = &ks->topics[ks->ntopics];
	memset(t, 0, sizeof(*t));
	t->rkt = rd_kafka_topic_new(ks->rk, name, NULL);
	if (t->rkt == NULL)
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "could not use Kafka topic \"%s\": %s", name,
							 rd_kafka_err2str(rd_kafka_last_error()));

	/* a topic being auto-created has no leaders yet: ask a few times */
	for (int attempt = 0; attempt < 20; attempt++)
	{
		rerr = rd_kafka_metadata(ks->rk, 0, t->rkt, &md,
								 KAFKA_METADATA_TIMEOUT_MS);
		if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if (md->topic_cnt == 1 && md->topics[0].err == 0 &&
			md->topics[0].partition_cnt > 0)
		{
			t->partitions = md->topics[0].partition_cnt;
			break;
		}
		rerr = md->topic_cnt == 1 ? md->topics[0].err :
			RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
		rd_kafka_metadata_destroy(md);
		md = NULL;
		if (rerr != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
			break;
		rd_kafka_poll(ks->rk, 100);
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	if (t->partitions == 0)
	{
		rd_kafka_topic_destroy(t->rkt);
		if (rerr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		{
			dts_error_set(err, DTS_ERROR_FATAL,
						  "Kafka topic \"%s\" does not exist", name);
			dts_error_hint(err, "Create the topic (with the partitions the partition policy needs), or let the brokers create topics (auto.create.topics.enable).");
		}
		else
		{
			dts_error_set(err, DTS_ERROR_CONNECT,
						  "could not read the metadata of Kafka topic \"%s\" from brokers %s: %s",
						  name, ks->cfg.brokers, rd_kafka_err2str(rerr));
			dts_error_hint(err, "Check sink.brokers and that the brokers are up.");
		}
		return -1;
	}
	t->name = dts_strdup(name);
	ks->ntopics++;
	dts_log_info("kafka: topic \"%s\" has %d partition%s", name,
				 t->partitions, t->partitions == 1 ? "" : "s");
	return ks->ntopics - 1;
}

static void
rel_free_names(KafkaRel *r)
{
	free(r->src_schema);
	free(r->src_table);
	free(r->schema);
	free(r->table);
	dts_kfmt_buf_free(&r->key_prefix);
	dts_avro_rel_cache_free(&r->avro);
}

/* The topic of a (mapped) table */
static char *
table_topic(KafkaSink *ks, const char *src_schema, const char *src_table,
			const char *schema, const char *table)
{
	size_t		len;
	char	   *name;

	for (int i = 0; i < ks->cfg.ntopic_map; i++)
	{
		const char *t = ks->cfg.topic_map[i].table;
		size_t		sl = strlen(src_schema);

		if (strncmp(t, src_schema, sl) == 0 && t[sl] == '.' &&
			strcmp(t + sl + 1, src_table) == 0)
			return dts_strdup(ks->cfg.topic_map[i].topic);
	}
	if (!ks->cfg.topic_per_table)
		return dts_strdup(ks->cfg.topic);
	len = strlen(ks->cfg.topic) + strlen(schema) + strlen(table) + 3;
	name = dts_realloc(NULL, len);
	snprintf(name, len, "%s.%s.%s", ks->cfg.topic, schema, table);
	return name;
}

/* Appends the string s (without its NUL) to a message key */
static void
key_put(DtsWriteBuf *key, const char *s)
{
	dts_put_raw(key, s, strlen(s));
}

/*
 * What the sink knows of rel (names after mapping, topic), or NULL.  The
 * names at the sink are target's (the shipper's router, DtsChange.target)
 * when given, else the task's rules (config->task), else rel's own.
 */
static KafkaRel *
rel_lookup(KafkaSink *ks, const DtsRelation *rel, const DtsRelation *target,
		   uint64_t gen, DtsError *err)
{
	uint32_t	mask;
	uint32_t	i;
	KafkaRel   *r;
	const DtsTableRule *rule = NULL;
	char	   *topic;
	int			ti;

	if (ks->nrels * 2 >= ks->rels_cap)
	{
		KafkaRel   *old = ks->rels;
		int			oldcap = ks->rels_cap;

		ks->rels_cap = oldcap ? oldcap * 2 : 64;
		ks->rels = dts_realloc(NULL, sizeof(KafkaRel) * ks->rels_cap);
		memset(ks->rels, 0, sizeof(KafkaRel) * ks->rels_cap);
		for (int j = 0; j < oldcap; j++)
		{
			if (old[j].relid == 0)
				continue;
			mask = ks->rels_cap - 1;
			for (i = (old[j].relid * 2654435761u) & mask; ks->rels[i].relid;
				 i = (i + 1) & mask)
				;
			ks->rels[i] = old[j];
		}
		free(old);
	}
	mask = ks->rels_cap - 1;
	for (i = (rel->relid * 2654435761u) & mask; ks->rels[i].relid;
		 i = (i + 1) & mask)
	{
		r = &ks->rels[i];
		if (r->relid != rel->relid)
			continue;
		/* the same description as last time: the same names */
		if (gen != 0 && r->seen_gen == gen && r->seen_target == target)
			return r;
		if (strcmp(r->src_schema, rel->schema) == 0 &&
			strcmp(r->src_table, rel->table) == 0 &&
			(target == NULL || (strcmp(r->schema, target->schema) == 0 &&
								strcmp(r->table, target->table) == 0)))
			goto found;
		/* renamed: compute again */
		rel_free_names(r);
		goto fill;
	}
	r = &ks->rels[i];
	ks->nrels++;
fill:
	r->relid = rel->relid;
	r->src_schema = dts_strdup(rel->schema);
	r->src_table = dts_strdup(rel->table);
	dts_avro_rel_cache_init(&r->avro);
	if (target != NULL)
	{
		r->schema = dts_strdup(target->schema);
		r->table = dts_strdup(target->table);
	}
	else
	{
		if (ks->cfg.task)
			rule = dts_task_find_rule(ks->cfg.task, rel->schema, rel->table);
		r->schema = dts_strdup(rule && rule->new_schema ? rule->new_schema :
							   rel->schema);
		r->table = dts_strdup(rule && rule->new_table ? rule->new_table :
							  rel->table);
	}
	dts_kfmt_buf_init(&r->key_prefix);
	key_put(&r->key_prefix, ks->cfg.database ? ks->cfg.database : "");
	dts_put_byte(&r->key_prefix, '.');
	key_put(&r->key_prefix, r->schema);
	dts_put_byte(&r->key_prefix, '.');
	key_put(&r->key_prefix, r->table);
	r->ddl_col = -1;
	if (strcmp(rel->schema, DTS_DDL_SCHEMA) == 0 &&
		strcmp(rel->table, DTS_DDL_TABLE) == 0)
	{
		for (int c = 0; c < rel->ncols; c++)
			if (strcmp(rel->columns[c].name, "ddl_text") == 0)
				r->ddl_col = c;
	}
	topic = table_topic(ks, rel->schema, rel->table, r->schema, r->table);
	ti = topic_index(ks, topic, err);
	free(topic);
	r->topic = ti < 0 ? 0 : ti;
	if (ti < 0)
	{
		/* leave no half-filled entry behind */
		rel_free_names(r);
		memset(r, 0, sizeof(*r));
		ks->nrels--;
		return NULL;
	}
found:
	/* a mapping may have changed the relation under the same names */
	if (r->ddl_col >= rel->ncols)
		r->ddl_col = -1;
	r->seen_gen = gen;
	r->seen_target = target;
	return r;
}

/* ----------------------------------------------------------------
 *		Producing
 * ----------------------------------------------------------------
 */

/* "<database>.<schema>.<table>" */
static void
key_table(KafkaSink *ks, const KafkaRel *r)
{
	ks->key.len = 0;
	dts_put_raw(&ks->key, r->key_prefix.data, r->key_prefix.len);
}

/*
 * Appends ":<value>" per key column (primary_key policy).  Returns false
 * when the table has no key or a key value is not in the change.
 */
static bool
key_values(KafkaSink *ks, const DtsFrame *f)
{
	const DtsRelation *rel = f->rel;
	bool		any = false;

	for (int c = 0; c < rel->ncols; c++)
	{
		const DtsValue *v;
		const char *text;
		size_t		len;
		char		verr[256];

		if (!rel->columns[c].key)
			continue;
		if (f->kind == DTS_FRAME_DELETE)
			v = dts_kfmt_before_value(f, c);
		else
		{
			v = dts_kfmt_after_value(f, c);
			if (!dts_kfmt_value_known(v) && f->kind == DTS_FRAME_UPDATE)
				v = dts_kfmt_before_value(f, c);
		}
		if (!dts_kfmt_value_known(v))
			return false;
		dts_put_byte(&ks->key, ':');
		if (v->status == DTS_VALUE_PRESENT)
		{
			if (!dts_kfmt_value_text(&rel->columns[c], v, &ks->key_text,
									 &text, &len, verr))
				return false;
			dts_put_raw(&ks->key, text, len);
		}
		any = true;
	}
	return any;
}

/*
 * The headers dts_lsn (the commit LSN) and dts_seq (the change's position
 * in its transaction) of the message being produced, for lsn_headers.
 * librdkafka allocates the list and each header, and frees them after the
 * delivery report: a quarter of the shipper's CPU in the benchmark, hence
 * opt-in.
 */
static rd_kafka_headers_t *
position_headers(const KafkaSink *ks)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
	char		seqtext[12];
	char	   *p = seqtext + sizeof(seqtext);
	unsigned	n = (unsigned) ks->seq_in_txn;

	/* dts_seq in decimal, without printf (a message costs a few hundred ns) */
	do
	{
		*--p = (char) ('0' + n % 10);
		n /= 10;
	} while (n > 0);
	rd_kafka_header_add(hdrs, "dts_lsn", sizeof("dts_lsn") - 1,
						ks->lsn_text, ks->lsn_len);
	rd_kafka_header_add(hdrs, "dts_seq", sizeof("dts_seq") - 1,
						p, seqtext + sizeof(seqtext) - p);
	return hdrs;
}

/*
 * Lets the source read what has arrived into memory (sink->prefetch), up
 * to KAFKA_READ_AHEAD_BYTES held.  The walsender writes into a socket
 * buffer of a few hundred kB (a unix socket's: the server's send buffer,
 * wmem_default); when that is full it stops decoding until we read.  We
 * read only between messages of the stream, and one message takes a few
 * milliseconds to produce (more when librdkafka's threads take the CPU),
 * so the walsender slept about 1 s of a 7.5 s benchmark run; reading
 * ahead while producing keeps it decoding (bench/README.md, "kafka").
 */
static inline void
read_ahead(KafkaSink *ks)
{
	if (ks->sink->prefetch)
		(void) ks->sink->prefetch(ks->sink->prefetch_arg,
								  KAFKA_READ_AHEAD_BYTES);
}

/*
 * Produces ks->value with ks->key to partition of topic ti, for the open
 * unit.  A full local queue is served and retried; other errors fail.
 */
static int
produce(KafkaSink *ks, int ti, int partition, uint64_t seq, DtsError *err)
{
	KafkaTopic *t = &ks->topics[ti];
	KafkaUnit  *u = unit_get(ks, seq);
	rd_kafka_headers_t *hdrs = ks->cfg.lsn_headers ? position_headers(ks) : NULL;
	rd_kafka_resp_err_t rerr;

	u->outstanding++;
	for (;;)
	{
		rerr = rd_kafka_producev(ks->rk,
								 RD_KAFKA_V_RKT(t->rkt),
								 RD_KAFKA_V_PARTITION(partition),
								 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								 RD_KAFKA_V_VALUE(ks->value.data, ks->value.len),
								 RD_KAFKA_V_KEY(ks->key.data, ks->key.len),
								 RD_KAFKA_V_HEADERS(hdrs),
								 RD_KAFKA_V_TIMESTAMP(ks->born_ms),
								 RD_KAFKA_V_OPAQUE((void *) (uintptr_t) seq),
								 RD_KAFKA_V_END);
		if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || ks->failed)
			break;
		/* not a delivery error: wait for reports to make room */
		read_ahead(ks);
		rd_kafka_poll(ks->rk, 10);
		u = unit_get(ks, seq);	/* the queue may have moved */
	}
	if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		u = unit_get(ks, seq);
		if (u)
			u->outstanding--;
		if (ks->failed)
			return report_failure(ks, err);
		dts_error_set(err, DTS_ERROR_FATAL,
					  "could not produce a message to topic \"%s\" partition %d: %s",
					  t->name, partition, rd_kafka_err2str(rerr));
		if (rerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
			dts_error_hint(err, "Raise sink.kafka.message.max.bytes (and the topic's max.message.bytes).");
		return -1;
	}
	/* serve delivery reports now and then (each poll takes locks) */
	if (++ks->produced % KAFKA_POLL_EVERY == 0)
		rd_kafka_poll(ks->rk, 0);
	if (ks->produced % KAFKA_READ_AHEAD_EVERY == 0)
		read_ahead(ks);
	return 0;
}

/*
 * The wall clock in UNIX milliseconds, for bornTimestamp: read once per
 * record, so from the kernel's coarse clock (no clock source read; it lags
 * by at most a timer tick, 1-4 ms, like the millisecond it is rounded to).
 */
static int64_t
coarse_now_ms(void)
{
#ifdef CLOCK_REALTIME_COARSE
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0)
		return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
	return dts_now_us() / 1000;
}

static void
fill_context(KafkaSink *ks, DtsRecordContext *ctx, const char *schema,
			 const char *table)
{
	dts_record_context_init(ctx);
	ctx->database = ks->cfg.database ? ks->cfg.database : "";
	ctx->schema = schema;
	ctx->table = table;
	ctx->xid = ks->xid;
	ctx->commit_lsn = ks->commit_lsn;
	ctx->commit_time_us = ks->commit_time;
	ctx->born_time_ms = ks->born_ms = coarse_now_ms();
	ctx->record_id = ++ks->record_id;
	ctx->source_version = ks->cfg.source_version ? ks->cfg.source_version : "";
	ctx->seq_in_txn = ks->seq_in_txn;
}

/* Encodes a DDL record (SharePlex has none: DTS_KFMT_SKIP) */
static int
encode_ddl(KafkaSink *ks, DtsRecordContext *ctx, const char *sql,
		   size_t len, const char **why)
{
	ks->value.len = 0;
	switch (ks->cfg.format)
	{
		case DTS_KAFKA_FORMAT_AVRO:
			*why = ks->avro.error;
			return dts_avro_encode_ddl(&ks->avro, ctx, sql, len, &ks->value);
		case DTS_KAFKA_FORMAT_CANAL_JSON:
			*why = ks->canal.error;
			return dts_canal_encode_ddl(&ks->canal, ctx, sql, len, &ks->value);
		case DTS_KAFKA_FORMAT_SHAREPLEX_JSON:
			break;
	}
	return DTS_KFMT_SKIP;
}

static int
encode_change(KafkaSink *ks, DtsRecordContext *ctx, const DtsFrame *f,
			  const char **why)
{
	ks->value.len = 0;
	switch (ks->cfg.format)
	{
		case DTS_KAFKA_FORMAT_AVRO:
			*why = ks->avro.error;
			return dts_avro_encode_change(&ks->avro, ctx, f, &ks->value);
		case DTS_KAFKA_FORMAT_SHAREPLEX_JSON:
			*why = ks->sp.error;
			return dts_shareplex_encode_change(&ks->sp, ctx, f, &ks->value);
		case DTS_KAFKA_FORMAT_CANAL_JSON:
			*why = ks->canal.error;
			return dts_canal_encode_change(&ks->canal, ctx, f, &ks->value);
	}
	return DTS_KFMT_SKIP;
}

/* A row of public.dts_ddl_command: one DDL record per statement */
static int
produce_ddl_row(KafkaSink *ks, const DtsFrame *f, const KafkaRel *r,
				DtsError *err)
{
	const DtsValue *v = &f->new_tuple.values[r->ddl_col];
	DtsRecordContext ctx;
	const char *sql;
	size_t		len;
	const char *why = "";
	char		verr[256];
	int			rc;
	int			ti;

	if (f->kind != DTS_FRAME_INSERT || v->status != DTS_VALUE_PRESENT)
		return 0;
	if (!dts_kfmt_value_text(&f->rel->columns[r->ddl_col], v, &ks->key_text,
							 &sql, &len, verr))
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "could not read a DDL statement of transaction %u: %s",
							 ks->xid, verr);
	/* one command writes a row per object it touched, same text */
	if (ks->last_ddl && strlen(ks->last_ddl) == len &&
		memcmp(ks->last_ddl, sql, len) == 0)
		return 0;
	free(ks->last_ddl);
	ks->last_ddl = dts_realloc(NULL, len + 1);
	memcpy(ks->last_ddl, sql, len);
	ks->last_ddl[len] = '\0';

	fill_context(ks, &ctx, NULL, NULL);
	rc = encode_ddl(ks, &ctx, ks->last_ddl, len, &why);
	if (rc == DTS_KFMT_SKIP)
		return 0;
	if (rc != DTS_KFMT_OK)
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "could not encode a DDL record of transaction %u: %s",
							 ks->xid, why);
	ti = topic_index(ks, ks->cfg.topic, err);
	if (ti < 0)
		return -1;
	ks->key.len = 0;
	key_put(&ks->key, ks->cfg.database ? ks->cfg.database : "");
	return produce(ks, ti, 0, ks->txn_seq, err);
}

/* TRUNCATE: a DDL record per table, in the table's topic */
static int
produce_truncate(KafkaSink *ks, const DtsChange *c, DtsError *err)
{
	const DtsFrame *f = c->frame;

	for (int i = 0; i < f->nrelids; i++)
	{
		const DtsRelation *rel = c->truncated ? c->truncated[i] : NULL;
		const KafkaRel *r;
		DtsRecordContext ctx;
		DtsWriteBuf sql;
		const char *why = "";
		int			rc;
		int			partition = 0;

		if (rel == NULL)
			continue;			/* never described: nothing to name */
		r = rel_lookup(ks, rel, NULL, 0, err);
		if (r == NULL)
			return -1;
		ks->seq_in_txn++;
		dts_kfmt_buf_init(&sql);
		dts_kfmt_put_str(&sql, "TRUNCATE TABLE ");
		dts_kfmt_put_str(&sql, r->schema);
		dts_put_byte(&sql, '.');
		dts_kfmt_put_str(&sql, r->table);
		if (f->flags & DTS_TRUNCATE_RESTART_SEQS)
			dts_kfmt_put_str(&sql, " RESTART IDENTITY");
		if (f->flags & DTS_TRUNCATE_CASCADE)
			dts_kfmt_put_str(&sql, " CASCADE");
		dts_put_byte(&sql, '\0');
		fill_context(ks, &ctx, r->schema, r->table);
		rc = encode_ddl(ks, &ctx, (const char *) sql.data, sql.len - 1, &why);
		dts_kfmt_buf_free(&sql);
		if (rc == DTS_KFMT_SKIP)
			continue;
		if (rc != DTS_KFMT_OK)
			return dts_error_set(err, DTS_ERROR_FATAL,
								 "could not encode the TRUNCATE of \"%s\".\"%s\": %s",
								 rel->schema, rel->table, why);
		key_table(ks, r);
		if (ks->cfg.partition_policy == DTS_KAFKA_PARTITION_TABLE)
			partition = dts_kafka_partition_of(ks->key.data, ks->key.len,
											   ks->topics[r->topic].partitions);
		if (produce(ks, r->topic, partition, ks->txn_seq, err) != 0)
			return -1;
	}
	return 0;
}

static int
produce_heartbeat(KafkaSink *ks, DtsError *err)
{
	DtsRecordContext ctx;
	int			ti;

	if (ks->cfg.format != DTS_KAFKA_FORMAT_AVRO)
		return 0;				/* the JSON formats have no heartbeats */
	fill_context(ks, &ctx, NULL, NULL);
	ks->value.len = 0;
	if (dts_avro_encode_heartbeat(&ks->avro, &ctx, &ks->value) != DTS_KFMT_OK)
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "could not encode a heartbeat record: %s",
							 ks->avro.error);
	ti = topic_index(ks, ks->cfg.topic, err);
	if (ti < 0)
		return -1;
	ks->key.len = 0;
	key_put(&ks->key, ks->cfg.database ? ks->cfg.database : "");
	return produce(ks, ti, 0, ks->txn_seq, err);
}

static int
produce_row(KafkaSink *ks, const DtsChange *c, DtsError *err)
{
	const DtsFrame *src = c->frame;
	KafkaRel   *r = rel_lookup(ks, src->rel, c->target, c->rel_gen, err);
	DtsFrame	mapped;
	const DtsFrame *f = src;
	DtsRecordContext ctx;
	const char *why = "";
	int			partition = 0;
	int			rc;

	if (r == NULL)
		return -1;
	if (r->ddl_col >= 0)
		return produce_ddl_row(ks, src, r, err);
	if (c->target != NULL && c->target != src->rel)
	{
		/* the names at the sink (columns too): same columns, same order */
		mapped = *src;
		mapped.rel = c->target;
		f = &mapped;
	}
	fill_context(ks, &ctx, r->schema, r->table);
	ctx.avro_rel = &r->avro;
	ctx.rel_gen = c->rel_gen;
	rc = encode_change(ks, &ctx, f, &why);
	if (rc == DTS_KFMT_SKIP)
		return 0;
	if (rc != DTS_KFMT_OK)
		return dts_error_set(err, DTS_ERROR_FATAL,
							 "could not encode a change of table \"%s\".\"%s\" (transaction %u): %s",
							 f->rel->schema, f->rel->table, ks->xid, why);
	key_table(ks, r);
	switch (ks->cfg.partition_policy)
	{
		case DTS_KAFKA_PARTITION_0:
			break;
		case DTS_KAFKA_PARTITION_TABLE:
			partition = dts_kafka_partition_of(ks->key.data, ks->key.len,
											   ks->topics[r->topic].partitions);
			break;
		case DTS_KAFKA_PARTITION_KEY:
			if (key_values(ks, f))
				partition = dts_kafka_partition_of(ks->key.data, ks->key.len,
												   ks->topics[r->topic].partitions);
			else
				key_table(ks, r);	/* no key: table key, partition 0 */
			break;
	}
	return produce(ks, r->topic, partition, ks->txn_seq, err);
}

/* ----------------------------------------------------------------
 *		The sink callbacks
 * ----------------------------------------------------------------
 */

/*
 * librdkafka allocates, per produce request, a buffer of about batch.size
 * (1 MB) for the message set and another for its compressed copy, and
 * frees both after the request.  With glibc's defaults such blocks come
 * from mmap, or from the top of a thread's heap that free() then trims
 * (madvise): each request faults its pages in again, a quarter of the
 * sink's CPU time in the benchmark (bench/README.md, "kafka").  Keep
 * freed memory for reuse instead: up to 32 MB at a heap's top, and blocks
 * under 32 MB (glibc's largest mmap threshold) from the heap.  The peak
 * use still bounds the process's memory; it is just not given back
 * between requests.
 */
static void
keep_heap(void)
{
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD) && \
	defined(M_MMAP_THRESHOLD)
	mallopt(M_TRIM_THRESHOLD, KAFKA_MALLOC_KEEP_BYTES);
	mallopt(M_MMAP_THRESHOLD, KAFKA_MALLOC_KEEP_BYTES);
#endif
}

static int
kafka_sink_open(DtsSink *sink, DtsError *err)
{
	KafkaSink  *ks = sink->state;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	static const char *const defaults[][2] = {
		{"enable.idempotence", "true"},
		{"acks", "all"},
		{"max.in.flight.requests.per.connection", "5"},
		{"linger.ms", "5"},
		{"batch.num.messages", "10000"},
		{"client.id", "pg_dts_ship"},
	};

	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errstr,
							  sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto conf_error;
	if (rd_kafka_conf_set(conf, "bootstrap.servers", ks->cfg.brokers,
						  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "compression.type", ks->cfg.compression,
						  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto conf_error;
	for (int i = 0; i < ks->cfg.nkafka; i++)
		if (rd_kafka_conf_set(conf, ks->cfg.kafka_names[i],
							  ks->cfg.kafka_values[i], errstr,
							  sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto conf_error;
	rd_kafka_conf_set_opaque(conf, ks);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);

	keep_heap();
	ks->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (ks->rk == NULL)
	{
		/* conf is freed by rd_kafka_new() only on success */
		rd_kafka_conf_destroy(conf);
		dts_error_set(err, DTS_ERROR_FATAL,
					  "could not create the Kafka producer: %s", errstr);
		dts_error_hint(err, "Check the sink.kafka.* settings of the task.");
		return -1;
	}
	if (ks->cfg.format == DTS_KAFKA_FORMAT_AVRO)
	{
		if (dts_avro_init(&ks->avro) != 0)
			return dts_error_set(err, DTS_ERROR_FATAL,
								 "could not prepare the DTS Avro schema: %s",
								 ks->avro.error);
		ks->avro_ready = true;
	}
	/* the task's topic must be there before we stream anything */
	if (topic_index(ks, ks->cfg.topic, err) < 0)
		return -1;
	ks->record_id = dts_now_us();	/* increasing across restarts too */
	dts_log_info("kafka: producing to %s, topic \"%s\"", ks->cfg.brokers,
				 ks->cfg.topic);
	return 0;

conf_error:
	rd_kafka_conf_destroy(conf);
	dts_error_set(err, DTS_ERROR_FATAL, "invalid Kafka setting: %s", errstr);
	dts_error_hint(err, "Check the sink.kafka.* settings of the task.");
	return -1;
}

static int
kafka_sink_begin(DtsSink *sink, const DtsTxn *txn, DtsError *err)
{
	KafkaSink  *ks = sink->state;

	if (ks->failed)
		return report_failure(ks, err);
	ks->in_txn = true;
	ks->txn_seq = unit_push(ks);
	ks->xid = txn->xid;
	ks->commit_lsn = txn->commit_lsn;
	ks->commit_time = txn->commit_time;
	ks->lsn_len = dts_kfmt_lsn_text(ks->commit_lsn, ks->lsn_text);
	ks->seq_in_txn = 0;
	free(ks->last_ddl);
	ks->last_ddl = NULL;
	return 0;
}

static int
kafka_sink_change(DtsSink *sink, const DtsTxn *txn, const DtsChange *c,
				  DtsError *err)
{
	KafkaSink  *ks = sink->state;
	const DtsFrame *f = c->frame;

	if (ks->failed)
		return report_failure(ks, err);
	if (txn == NULL)
	{
		/* a non-transactional logical message: no Kafka message */
		if (f->kind == DTS_FRAME_MESSAGE)
			unit_empty_committed(ks, f->lsn);
		return 0;
	}
	switch (f->kind)
	{
		case DTS_FRAME_INSERT:
		case DTS_FRAME_UPDATE:
		case DTS_FRAME_DELETE:
			ks->seq_in_txn++;
			if (c->heartbeat)
				return produce_heartbeat(ks, err);
			return produce_row(ks, c, err);
		case DTS_FRAME_TRUNCATE:
			return produce_truncate(ks, c, err);
		default:
			return 0;			/* logical messages have no Kafka form */
	}
}

static int
kafka_sink_commit(DtsSink *sink, const DtsTxn *txn, DtsError *err)
{
	KafkaSink  *ks = sink->state;
	KafkaUnit  *u;

	if (ks->failed)
		return report_failure(ks, err);
	ks->in_txn = false;
	u = unit_get(ks, ks->txn_seq);
	if (u == NULL)
		return 0;				/* cannot happen: units live until done */
	if (u->outstanding == 0 && ks->txn_seq == ks->base_seq + ks->nunits - 1)
	{
		/* no message in flight: fold it into what is before it */
		ks->nunits--;
		unit_empty_committed(ks, txn->end_lsn);
		units_advance(ks);
		return 0;
	}
	u->end_lsn = txn->end_lsn;
	u->committed = true;
	units_advance(ks);
	return 0;
}

static int
kafka_sink_rollback(DtsSink *sink, DtsError *err)
{
	KafkaSink  *ks = sink->state;
	KafkaUnit  *u;

	(void) err;
	if (!ks->in_txn)
		return 0;
	ks->in_txn = false;
	u = unit_get(ks, ks->txn_seq);
	if (u)
		u->abandoned = true;	/* its messages are out; never durable */
	units_advance(ks);
	return 0;
}

static int
kafka_sink_flush(DtsSink *sink, bool force, int64_t now_us,
				 int64_t *next_due_us, DtsError *err)
{
	KafkaSink  *ks = sink->state;

	*next_due_us = INT64_MAX;
	if (ks->rk == NULL)
		return 0;
	rd_kafka_poll(ks->rk, 0);
	if (force)
	{
		int64_t		deadline = now_us + KAFKA_FORCE_FLUSH_MAX_MS * 1000;

		while (!ks->failed && rd_kafka_outq_len(ks->rk) > 0 &&
			   dts_now_us() < deadline)
			rd_kafka_flush(ks->rk, 100);
		rd_kafka_poll(ks->rk, 0);
	}
	if (ks->failed)
		return report_failure(ks, err);
	if (ks->first < ks->nunits || rd_kafka_outq_len(ks->rk) > 0)
		*next_due_us = now_us + KAFKA_POLL_INTERVAL_US;
	return 0;
}

static uint64_t
kafka_sink_durable_lsn(DtsSink *sink)
{
	return ((KafkaSink *) sink->state)->durable_lsn;
}

static bool
kafka_sink_idle(DtsSink *sink)
{
	KafkaSink  *ks = sink->state;

	return !ks->in_txn && ks->first == ks->nunits &&
		(ks->rk == NULL || rd_kafka_outq_len(ks->rk) == 0);
}

static int
kafka_sink_reopen(DtsSink *sink, DtsError *err)
{
	(void) sink;
	(void) err;
	return 0;					/* nothing to rotate */
}

static void
kafka_sink_close(DtsSink *sink)
{
	KafkaSink  *ks = sink->state;

	if (ks == NULL)
		return;
	for (int i = 0; i < ks->ntopics; i++)
	{
		rd_kafka_topic_destroy(ks->topics[i].rkt);
		free(ks->topics[i].name);
	}
	free(ks->topics);
	/* messages still in flight are dropped: they were never durable */
	if (ks->rk)
		rd_kafka_destroy(ks->rk);
	for (int i = 0; i < ks->rels_cap; i++)
		if (ks->rels[i].relid)
			rel_free_names(&ks->rels[i]);
	free(ks->rels);
	if (ks->avro_ready)
		dts_avro_free(&ks->avro);
	dts_shareplex_free(&ks->sp);
	dts_canal_free(&ks->canal);
	dts_kfmt_buf_free(&ks->value);
	dts_kfmt_buf_free(&ks->key);
	dts_text_scratch_free(&ks->key_text);
	free(ks->units);
	free(ks->last_ddl);
	dts_log_info("kafka: %llu messages produced, %llu delivered",
				 (unsigned long long) ks->produced,
				 (unsigned long long) ks->delivered);
	dts_kafka_sink_config_free(&ks->cfg);
	free(ks);
	sink->state = NULL;
}

static const DtsSinkOps kafka_sink_ops = {
	.name = "kafka",
	.open = kafka_sink_open,
	.begin = kafka_sink_begin,
	.change = kafka_sink_change,
	.commit = kafka_sink_commit,
	.rollback = kafka_sink_rollback,
	.flush = kafka_sink_flush,
	.durable_lsn = kafka_sink_durable_lsn,
	.idle = kafka_sink_idle,
	.reopen = kafka_sink_reopen,
	.close = kafka_sink_close,
};

void
dts_kafka_sink_init(DtsSink *sink, const DtsKafkaSinkConfig *config)
{
	KafkaSink  *ks = dts_realloc(NULL, sizeof(KafkaSink));

	memset(ks, 0, sizeof(*ks));
	cfg_copy(&ks->cfg, config);
	ks->sink = sink;
	dts_shareplex_init(&ks->sp);
	dts_canal_init(&ks->canal);
	dts_kfmt_buf_init(&ks->value);
	dts_kfmt_buf_init(&ks->key);
	sink->ops = &kafka_sink_ops;
	sink->state = ks;
}

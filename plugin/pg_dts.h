/*-------------------------------------------------------------------------
 *
 * pg_dts.h
 *	  Definitions shared by the files of the pg_dts output plugin: its
 *	  options, its per-decoding-session state and its relation cache.
 *
 * plugin/pg_dts.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_PLUGIN_H
#define PG_DTS_PLUGIN_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "pgtime.h"
#include "replication/logical.h"
#include "utils/rel.h"

#include "pg_dts/frame.h"

/* One entry of an include_tables / exclude_tables list; NULL = any ("*"). */
typedef struct PgDtsTablePattern
{
	char	   *schema;
	char	   *table;
} PgDtsTablePattern;

/* The kinds of change a table rule publishes (PgDtsTableRule.dml). */
#define PGDTS_DML_INSERT	0x01
#define PGDTS_DML_UPDATE	0x02
#define PGDTS_DML_DELETE	0x04
#define PGDTS_DML_TRUNCATE	0x08
#define PGDTS_DML_ALL		0x0F

/*
 * One element of the table_rules option: which tables it is for, and the
 * kinds of change, rows ("where") and columns of them that are published.
 */
typedef struct PgDtsTableRule
{
	int			index;			/* position in the JSON array, for messages */
	char	   *schema;
	char	   *table;			/* NULL = every table of the schema */
	char	   *where;			/* row filter as given; NULL = every row */
	Node	   *where_raw;		/* ... its raw parse tree */
	uint8		dml;			/* PGDTS_DML_* */
	bool		all_columns;	/* no "columns" key */
	List	   *columns;		/* of char *, when !all_columns */
} PgDtsTableRule;

/* binary_types names at most this many types (options.c lists them) */
#define PGDTS_MAX_BINARY_TYPES	16

/* The plugin options of one decoding session (see options.c). */
typedef struct PgDtsOptions
{
	bool		binary;			/* format=binary (default) or text */
	int			nbinary_types;	/* binary_types: how many */
	Oid			binary_types[PGDTS_MAX_BINARY_TYPES];	/* binary under text */
	int			batch_bytes;	/* flush a message once it is this big */
	bool		streaming;		/* stream in-progress transactions */
	bool		skip_replayed;	/* origin=none: drop replayed transactions */
	bool		messages;		/* emit logical messages */
	List	   *message_prefixes;	/* of char *; NIL = every prefix */
	List	   *include_tables; /* of PgDtsTablePattern *; NIL = all */
	List	   *exclude_tables; /* of PgDtsTablePattern * */
	List	   *table_rules;	/* of PgDtsTableRule *; NIL = no rules */
} PgDtsOptions;

/*
 * How one column's values are written: the frame encoding plus the way we
 * get there from a datum (a fast path that skips fmgr, or a call of the
 * type's send or output function).
 */
typedef enum PgDtsValuePath
{
	PATH_INT2,					/* int16 datum -> svarint */
	PATH_INT4,					/* int32 datum -> svarint */
	PATH_INT8,					/* int64 datum -> svarint */
	PATH_FLOAT4,				/* -> 4 big-endian bytes */
	PATH_FLOAT8,				/* -> 8 big-endian bytes */
	PATH_BYTE,					/* bool, "char" -> 1 byte */
	PATH_VARLENA_BYTES,			/* text-like / bytea: the stored bytes */
	PATH_NUMERIC_SEND,			/* numeric_send image without fmgr */
	PATH_JSONB_SEND,			/* jsonb_send image without fmgr */
	PATH_JSONB_TEXT,			/* jsonb_out text without fmgr */
	PATH_TEXT_INT2,				/* text format of integers without fmgr */
	PATH_TEXT_INT4,
	PATH_TEXT_INT8,
	PATH_TEXT_BOOL,
	PATH_TEXT_NUMERIC,			/* numeric_out text without fmgr */
	PATH_TEXT_TIMESTAMP,		/* timestamp_out text, see datetime_text.c */
	PATH_TEXT_TIMESTAMPTZ,		/* timestamptz_out text, likewise */
	PATH_SEND,					/* typsend through fmgr */
	PATH_OUTPUT					/* typoutput through fmgr */
} PgDtsValuePath;

typedef struct PgDtsColumn
{
	int			attidx;			/* 0-based index into the tuple descriptor */
	Oid			typoid;
	int32		typmod;
	int16		typlen;
	bool		key;
	char		encoding;		/* DtsValueEncoding */
	PgDtsValuePath path;
	FmgrInfo	func;			/* typsend / typoutput for the fmgr paths,
								 * and for what the timestamp paths leave */
} PgDtsColumn;

/*
 * The text of the last timestamp(tz) day printed (datetime_text.c): every
 * value in [lo, hi) is prefix, its time of day, suffix.
 */
typedef struct PgDtsDayText
{
	bool		valid;
	pg_tz	   *zone;			/* timestamptz: the session zone it is for */
	TimestampTz lo;
	TimestampTz hi;
	int64		lo_tod;			/* local time of day at lo, µs */
	int			prefix_len;
	int			suffix_len;
	char		prefix[32];		/* "2024-06-30 " */
	char		suffix[32];		/* "+02", "+05:30 BC", or "" */
} PgDtsDayText;

/* A table rule's row filter, prepared for its table (rowfilter.c). */
typedef struct PgDtsRowFilter PgDtsRowFilter;

/*
 * What we know about one relation; kept across transactions, rebuilt
 * after an invalidation (which only clears "valid").
 */
typedef struct PgDtsRelEntry
{
	Oid			relid;			/* hash key */
	bool		valid;
	bool		publish;		/* passes include/exclude_tables and rules */
	bool		restricted;		/* a table rule limits its kinds or rows */
	uint8		dml;			/* PGDTS_DML_* kinds published */
	PgDtsRowFilter *rowfilter;	/* the rule's "where", or NULL */
	bool		sent;			/* RELATION frame sent in this stream */
	TransactionId stream_sent_xid;	/* ... or inside this streamed xact */
	char		replident;
	int			ncols;
	int			nkeys;
	PgDtsColumn *columns;
	int			natts;			/* of the tuple descriptor */
	Datum	   *values;			/* deform scratch, natts long */
	bool	   *isnull;
	char	   *status;			/* ncols long */
	MemoryContext context;		/* holds everything above */
} PgDtsRelEntry;

/* The state of one decoding session (ctx->output_plugin_private). */
typedef struct PgDtsData
{
	PgDtsOptions opts;
	MemoryContext change_context;	/* reset after every change */
	DtsWriteBuf buf;			/* the message being assembled */
	DtsWriteBuf jsonb_copy;		/* an aligned copy of a jsonb container */
	PgDtsDayText timestamp_text;	/* the last timestamp's day */
	PgDtsDayText timestamptz_text;	/* the last timestamptz's day */
	bool		begin_pending;	/* a BEGIN is owed before the next change */
	bool		in_stream;		/* between stream_start and stream_stop */
	TransactionId stream_xid;	/* toplevel xid of the current stream block */
	TransactionId stream_cur_xid;	/* last XID frame written in the block */
} PgDtsData;

/* options.c */
extern void pg_dts_parse_options(PgDtsOptions *opts, List *options);
extern bool pg_dts_binary_type(const PgDtsOptions *opts, Oid typoid);
extern bool pg_dts_table_selected(const PgDtsOptions *opts,
								  const char *schema, const char *table);
extern bool pg_dts_message_selected(const PgDtsOptions *opts,
									const char *prefix);
extern const PgDtsTableRule *pg_dts_find_table_rule(const PgDtsOptions *opts,
													const char *schema,
													const char *table);

/* datetime_text.c */
extern void pg_dts_put_timestamp_text(DtsWriteBuf *buf, PgDtsDayText *cache,
									  PgDtsColumn *col, Datum value,
									  bool with_zone);

/* jsonb_text.c */
extern void pg_dts_put_jsonb(PgDtsData *data, Datum value, bool send_image);

/* numeric_image.c */
extern void pg_dts_put_numeric_image(DtsWriteBuf *buf, Datum value);
extern void pg_dts_put_numeric_copy_field(DtsWriteBuf *buf, Datum value);
extern void pg_dts_put_numeric_text(DtsWriteBuf *buf, Datum value);
extern void pg_dts_append_numeric_text(DtsWriteBuf *buf, Datum value);

/* relcache.c */
extern void pg_dts_relcache_init(void);
extern void pg_dts_relcache_reset(void);
extern PgDtsRelEntry *pg_dts_get_relentry(PgDtsData *data, Relation rel);
extern void pg_dts_write_relation(PgDtsData *data, PgDtsRelEntry *entry,
								  Relation rel);
extern void pg_dts_write_tuple(PgDtsData *data, PgDtsRelEntry *entry,
							   TupleDesc desc, HeapTuple tuple,
							   bool key_only);

/* rowfilter.c */
extern Node *pg_dts_rowfilter_parse(const char *where, int index);
extern Bitmapset *pg_dts_rule_columns(const PgDtsTableRule *rule,
									  Relation rel, const char *schema);
extern PgDtsRowFilter *pg_dts_rowfilter_build(const PgDtsTableRule *rule,
											  Relation rel,
											  const char *schema);
extern void pg_dts_rowfilter_free(PgDtsRowFilter *filter);
extern bool pg_dts_rule_filter_change(PgDtsRelEntry *entry,
									  DtsFrameKind *kind,
									  HeapTuple *oldtuple,
									  HeapTuple *newtuple);

#endif							/* PG_DTS_PLUGIN_H */

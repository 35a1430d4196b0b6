/*-------------------------------------------------------------------------
 *
 * relcache.c
 *	  The pg_dts plugin's relation cache and value encoders: per relation
 *	  what we would otherwise look up per row (filter verdict, key columns,
 *	  how to encode each column), and the writing of RELATION frames and
 *	  tuples from it.
 *
 * Entries are keyed by relation OID.  Invalidation callbacks only clear the
 * "valid" flag; the entry is rebuilt (and its RELATION frame sent again) the
 * next time a change needs it.  The hash table is backend-global because
 * invalidation callbacks cannot be unregistered and must find it; it is
 * emptied when a decoding session ends.
 *
 * plugin/relcache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "pg_dts.h"

static HTAB *RelEntries = NULL;
static bool callbacks_registered = false;

/*
 * The entry of the last change's relation: changes come in runs of one
 * table, and the hash lookup was 1% of the walsender.  Entries never move
 * (nothing is removed from RelEntries before it is destroyed).
 */
static PgDtsRelEntry *LastEntry = NULL;

static void
invalidate_relation(Datum arg, Oid relid)
{
	PgDtsRelEntry *entry;

	if (RelEntries == NULL)
		return;
	if (OidIsValid(relid))
	{
		entry = hash_search(RelEntries, &relid, HASH_FIND, NULL);
		if (entry != NULL)
			entry->valid = false;
	}
	else
	{
		HASH_SEQ_STATUS status;

		hash_seq_init(&status, RelEntries);
		while ((entry = hash_seq_search(&status)) != NULL)
			entry->valid = false;
	}
}

/* A schema was renamed or changed: every relation's names may be stale. */
static void
invalidate_namespaces(Datum arg, int cacheid, uint32 hashvalue)
{
	invalidate_relation(arg, InvalidOid);
}

/* Creates the (empty) cache; registers the callbacks once per backend. */
void
pg_dts_relcache_init(void)
{
	HASHCTL		ctl;

	/* a session that ended in an ERROR did not empty it */
	pg_dts_relcache_reset();
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(PgDtsRelEntry);
	ctl.hcxt = CacheMemoryContext;
	RelEntries = hash_create("pg_dts relation cache", 128, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_relation, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_namespaces,
									  (Datum) 0);
		callbacks_registered = true;
	}
}

/* Drops the cache at the end of a decoding session. */
void
pg_dts_relcache_reset(void)
{
	HASH_SEQ_STATUS status;
	PgDtsRelEntry *entry;

	if (RelEntries == NULL)
		return;
	hash_seq_init(&status, RelEntries);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		pg_dts_rowfilter_free(entry->rowfilter);
		if (entry->context != NULL)
			MemoryContextDelete(entry->context);
	}
	hash_destroy(RelEntries);
	RelEntries = NULL;
	LastEntry = NULL;
}

/*
 * The key columns, as a bitmap of 1-based attribute numbers: those of the
 * replica identity index, or under REPLICA IDENTITY FULL or NOTHING those
 * of the primary key.  NULL when there is none.
 */
static Bitmapset *
key_columns(Relation rel)
{
	Oid			indexoid;
	Relation	index;
	Bitmapset  *keys = NULL;

	if (!rel->rd_rel->relhasindex)
		return NULL;
	indexoid = RelationGetReplicaIndex(rel);
	if (!OidIsValid(indexoid))
		indexoid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(indexoid))
		return NULL;
	index = RelationIdGetRelation(indexoid);
	if (!RelationIsValid(index))
		elog(ERROR, "could not open index with OID %u", indexoid);
	for (int i = 0; i < index->rd_index->indnkeyatts; i++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[i];

		if (attnum > 0)
			keys = bms_add_member(keys, attnum);
	}
	RelationClose(index);
	return keys;
}

/* Chooses the encoding and path of a column of type typoid. */
static void
choose_value_path(PgDtsColumn *col, bool binary)
{
	Oid			base = getBaseType(col->typoid);
	Oid			func;
	bool		isvarlena;

	if (binary)
	{
		switch (base)
		{
			case INT2OID:
				col->encoding = DTS_ENC_INT2;
				col->path = PATH_INT2;
				return;
			case INT4OID:
			case OIDOID:
			case DATEOID:
				col->encoding = DTS_ENC_INT4;
				col->path = PATH_INT4;
				return;
			case INT8OID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
			case TIMEOID:
			case CASHOID:
				col->encoding = DTS_ENC_INT8;
				col->path = PATH_INT8;
				return;
			case FLOAT4OID:
				col->encoding = DTS_ENC_FLOAT4;
				col->path = PATH_FLOAT4;
				return;
			case FLOAT8OID:
				col->encoding = DTS_ENC_FLOAT8;
				col->path = PATH_FLOAT8;
				return;
			case BOOLOID:
			case CHAROID:
				col->encoding = DTS_ENC_BYTE;
				col->path = PATH_BYTE;
				return;
			case TEXTOID:
			case VARCHAROID:
			case BPCHAROID:
			case BYTEAOID:
			case JSONOID:
				col->encoding = DTS_ENC_BINARY;
				col->path = PATH_VARLENA_BYTES;
				return;
			case JSONBOID:
				col->encoding = DTS_ENC_BINARY;
				col->path = PATH_JSONB_SEND;
				return;
			case NUMERICOID:
				col->encoding = DTS_ENC_BINARY;
				col->path = PATH_NUMERIC_SEND;
				return;
			default:
				break;
		}
		getTypeBinaryOutputInfo(col->typoid, &func, &isvarlena);
		if (OidIsValid(func))
		{
			col->encoding = DTS_ENC_BINARY;
			col->path = PATH_SEND;
			fmgr_info_cxt(func, &col->func, CurrentMemoryContext);
			return;
		}
		/* no send function: fall back to text for this column */
	}

	col->encoding = DTS_ENC_TEXT;
	switch (base)
	{
		case INT2OID:
			col->path = PATH_TEXT_INT2;
			return;
		case INT4OID:
			col->path = PATH_TEXT_INT4;
			return;
		case INT8OID:
			col->path = PATH_TEXT_INT8;
			return;
		case BOOLOID:
			col->path = PATH_TEXT_BOOL;
			return;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case JSONOID:
			col->path = PATH_VARLENA_BYTES;
			return;
		case JSONBOID:
			col->path = PATH_JSONB_TEXT;
			return;
		case NUMERICOID:
			col->path = PATH_TEXT_NUMERIC;
			return;
		case TIMESTAMPOID:
			col->path = PATH_TEXT_TIMESTAMP;
			break;
		case TIMESTAMPTZOID:
			col->path = PATH_TEXT_TIMESTAMPTZ;
			break;
		default:
			col->path = PATH_OUTPUT;
			break;
	}
	getTypeOutputInfo(col->typoid, &func, &isvarlena);
	fmgr_info_cxt(func, &col->func, CurrentMemoryContext);
}

/* (Re)builds an entry from the relation as of the change being decoded. */
static void
build_entry(PgDtsData *data, PgDtsRelEntry *entry, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext oldcxt;
	Bitmapset  *keys;
	Bitmapset  *selected = NULL;
	const PgDtsTableRule *rule = NULL;
	char	   *schema;

	/* an ERROR below leaves the entry invalid and empty, not half-built */
	entry->valid = false;
	pg_dts_rowfilter_free(entry->rowfilter);
	entry->rowfilter = NULL;
	if (entry->context != NULL)
	{
		MemoryContextDelete(entry->context);
		entry->context = NULL;
	}
	entry->context = AllocSetContextCreate(CacheMemoryContext,
										   "pg_dts relation entry",
										   ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(entry->context);

	schema = get_namespace_name(RelationGetNamespace(rel));
	entry->publish = schema != NULL &&
		pg_dts_table_selected(&data->opts, schema,
							  RelationGetRelationName(rel));

	/* table_rules: no rule, no publishing; else its kinds, rows, columns */
	entry->dml = PGDTS_DML_ALL;
	entry->restricted = false;
	if (entry->publish && data->opts.table_rules != NIL)
	{
		rule = pg_dts_find_table_rule(&data->opts, schema,
									  RelationGetRelationName(rel));
		entry->publish = rule != NULL;
	}
	if (entry->publish && rule != NULL)
	{
		entry->dml = rule->dml;
		entry->restricted = rule->dml != PGDTS_DML_ALL ||
			rule->where_raw != NULL;
		if (rule->where_raw != NULL)
			entry->rowfilter = pg_dts_rowfilter_build(rule, rel, schema);
		if (!rule->all_columns)
			selected = pg_dts_rule_columns(rule, rel, schema);
	}
	entry->replident = rel->rd_rel->relreplident;
	entry->natts = desc->natts;
	entry->values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	entry->isnull = palloc(sizeof(bool) * Max(desc->natts, 1));
	entry->columns = palloc0(sizeof(PgDtsColumn) * Max(desc->natts, 1));
	entry->status = palloc(Max(desc->natts, 1));
	entry->ncols = 0;
	entry->nkeys = 0;

	keys = key_columns(rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		PgDtsColumn *col;

		if (att->attisdropped || att->attgenerated)
			continue;
		/* a rule's column list: its columns and the key columns */
		if (rule != NULL && !rule->all_columns &&
			!bms_is_member(att->attnum, selected) &&
			!bms_is_member(att->attnum, keys))
			continue;
		col = &entry->columns[entry->ncols++];
		col->attidx = i;
		col->typoid = att->atttypid;
		col->typmod = att->atttypmod;
		col->typlen = att->attlen;
		col->key = bms_is_member(att->attnum, keys);
		if (col->key)
			entry->nkeys++;
		choose_value_path(col, data->opts.binary ||
						  pg_dts_binary_type(&data->opts, col->typoid));
	}
	MemoryContextSwitchTo(oldcxt);

	entry->sent = false;
	entry->stream_sent_xid = InvalidTransactionId;
	entry->valid = true;
}

/* The valid cache entry of rel, built if needed. */
PgDtsRelEntry *
pg_dts_get_relentry(PgDtsData *data, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	PgDtsRelEntry *entry;
	bool		found;

	if (LastEntry != NULL && LastEntry->relid == relid && LastEntry->valid)
		return LastEntry;
	entry = hash_search(RelEntries, &relid, HASH_ENTER, &found);
	if (!found)
	{
		entry->context = NULL;
		entry->rowfilter = NULL;
		entry->valid = false;
	}
	if (!entry->valid)
		build_entry(data, entry, rel);
	LastEntry = entry;
	return entry;
}

/* Writes the RELATION frame of an entry. */
void
pg_dts_write_relation(PgDtsData *data, PgDtsRelEntry *entry, Relation rel)
{
	DtsWriteBuf *buf = &data->buf;
	TupleDesc	desc = RelationGetDescr(rel);
	const char *schema = get_namespace_name(RelationGetNamespace(rel));
	const char *table = RelationGetRelationName(rel);
	size_t		at;

	at = dts_frame_start(buf, DTS_FRAME_RELATION);
	dts_put_varint(buf, RelationGetRelid(rel));
	dts_put_string(buf, schema, strlen(schema));
	dts_put_string(buf, table, strlen(table));
	dts_put_byte(buf, (uint8_t) entry->replident);
	dts_put_varint(buf, entry->ncols);
	for (int i = 0; i < entry->ncols; i++)
	{
		PgDtsColumn *col = &entry->columns[i];
		const char *name = NameStr(TupleDescAttr(desc, col->attidx)->attname);

		dts_put_byte(buf, col->key ? DTS_COLUMN_KEY : 0);
		dts_put_string(buf, name, strlen(name));
		dts_put_varint(buf, col->typoid);
		dts_put_svarint(buf, col->typmod);
		dts_put_byte(buf, (uint8_t) col->encoding);
	}
	dts_frame_finish(buf, at);
}

static inline void
put_be32(DtsWriteBuf *buf, uint32 v)
{
	uint8_t		b[4];

	b[0] = v >> 24;
	b[1] = v >> 16;
	b[2] = v >> 8;
	b[3] = v;
	dts_put_raw(buf, b, 4);
}

static inline void
put_be64(DtsWriteBuf *buf, uint64 v)
{
	put_be32(buf, (uint32) (v >> 32));
	put_be32(buf, (uint32) v);
}

/* Writes one present (not null, not unchanged) value. */
static inline void
put_value(PgDtsData *data, PgDtsColumn *col, Datum value)
{
	DtsWriteBuf *buf = &data->buf;
	char		digits[MAXINT8LEN + 1];
	int			len;

	switch (col->path)
	{
		case PATH_INT2:
			dts_put_svarint(buf, DatumGetInt16(value));
			break;
		case PATH_INT4:
			dts_put_svarint(buf, DatumGetInt32(value));
			break;
		case PATH_INT8:
			dts_put_svarint(buf, DatumGetInt64(value));
			break;
		case PATH_FLOAT4:
			{
				float4		f = DatumGetFloat4(value);
				uint32		bits;

				memcpy(&bits, &f, 4);
				put_be32(buf, bits);
			}
			break;
		case PATH_FLOAT8:
			{
				float8		f = DatumGetFloat8(value);
				uint64		bits;

				memcpy(&bits, &f, 8);
				put_be64(buf, bits);
			}
			break;
		case PATH_BYTE:
			/* bool datums are 0 or 1, as boolsend sends them */
			dts_put_byte(buf, (uint8) DatumGetChar(value));
			break;
		case PATH_VARLENA_BYTES:
			{
				struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));

				dts_put_string(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
			}
			break;
		case PATH_NUMERIC_SEND:
			pg_dts_put_numeric_image(buf, value);
			break;
		case PATH_JSONB_SEND:
			pg_dts_put_jsonb(data, value, true);
			break;
		case PATH_JSONB_TEXT:
			pg_dts_put_jsonb(data, value, false);
			break;
		case PATH_TEXT_INT2:
			len = pg_itoa(DatumGetInt16(value), digits);
			dts_put_string(buf, digits, len);
			break;
		case PATH_TEXT_INT4:
			len = pg_ltoa(DatumGetInt32(value), digits);
			dts_put_string(buf, digits, len);
			break;
		case PATH_TEXT_INT8:
			len = pg_lltoa(DatumGetInt64(value), digits);
			dts_put_string(buf, digits, len);
			break;
		case PATH_TEXT_BOOL:
			dts_put_string(buf, DatumGetBool(value) ? "t" : "f", 1);
			break;
		case PATH_TEXT_NUMERIC:
			pg_dts_put_numeric_text(buf, value);
			break;
		case PATH_TEXT_TIMESTAMP:
			pg_dts_put_timestamp_text(buf, &data->timestamp_text, col, value,
									  false);
			break;
		case PATH_TEXT_TIMESTAMPTZ:
			pg_dts_put_timestamp_text(buf, &data->timestamptz_text, col,
									  value, true);
			break;
		case PATH_SEND:
			{
				bytea	   *image = SendFunctionCall(&col->func, value);

				dts_put_string(buf, VARDATA(image), VARSIZE(image) - VARHDRSZ);
			}
			break;
		case PATH_OUTPUT:
			{
				char	   *text = OutputFunctionCall(&col->func, value);

				dts_put_string(buf, text, strlen(text));
			}
			break;
	}
}

/*
 * Writes a tuple of the entry's relation: every column, or with key_only
 * the key columns only.  Call in the per-change memory context: detoasting
 * and the fmgr paths allocate.
 */
void
pg_dts_write_tuple(PgDtsData *data, PgDtsRelEntry *entry, TupleDesc desc,
				   HeapTuple tuple, bool key_only)
{
	DtsWriteBuf *buf = &data->buf;
	Datum	   *values = entry->values;
	bool	   *isnull = entry->isnull;
	int			n = 0;

	heap_deform_tuple(tuple, desc, values, isnull);

	for (int i = 0; i < entry->ncols; i++)
	{
		PgDtsColumn *col = &entry->columns[i];
		int			a = col->attidx;

		if (key_only && !col->key)
			continue;
		if (isnull[a])
			entry->status[n++] = DTS_VALUE_NULL;
		else if (col->typlen == -1 &&
				 VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(values[a])))
			entry->status[n++] = DTS_VALUE_UNCHANGED;
		else
			entry->status[n++] = DTS_VALUE_PRESENT;
	}
	dts_put_tuple_header(buf, entry->status, n);

	n = 0;
	for (int i = 0; i < entry->ncols; i++)
	{
		PgDtsColumn *col = &entry->columns[i];

		if (key_only && !col->key)
			continue;
		if (entry->status[n++] == DTS_VALUE_PRESENT)
			put_value(data, col, values[col->attidx]);
	}
}

/*-------------------------------------------------------------------------
 *
 * conflict.h
 *	  Conflicts of the pg sink (sinks/pg.c): what kinds there are, what the
 *	  task's policy does about each, and how one is reported.
 *
 * A conflict is a change that does not fit the destination: the row it
 * inserts is there already, the row it updates or deletes is not, or its
 * new key is taken by another row.  The policy of the task (DTS's
 * "conflict_policy") decides, through dts_conflict_resolve() alone, what
 * the sink does; dts_conflict_report() records the decision in
 * dts.conflict_log, naming the table, the row's key, the source
 * transaction and why.  docs/pg-sink.md describes the semantics.
 *
 * shipper/conflict.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_CONFLICT_H
#define PG_DTS_SHIP_CONFLICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libpq-fe.h"
#include "log.h"

typedef enum DtsConflictKind
{
	DTS_CONFLICT_INSERT_EXISTS = 0, /* INSERT: a row with its key exists */
	DTS_CONFLICT_UPDATE_MISSING,	/* UPDATE: no row with its old key */
	DTS_CONFLICT_UPDATE_KEY_CONFLICT,	/* UPDATE: its new key is taken */
	DTS_CONFLICT_DELETE_MISSING /* DELETE: no row with its key */
} DtsConflictKind;

/* The task's policy, as in the "sink" object's "conflict_policy" */
typedef enum DtsConflictPolicy
{
	DTS_POLICY_TASK_FAILED = 0, /* stop the task (the default) */
	DTS_POLICY_IGNORE,			/* keep the destination's row */
	DTS_POLICY_OVERWRITE		/* make the destination's row the source's */
} DtsConflictPolicy;

/* What the sink does about one conflict */
typedef enum DtsConflictAction
{
	DTS_ACTION_FAIL = 0,		/* roll back, stop the task (fatal error) */
	DTS_ACTION_SKIP,			/* leave the destination as it is */
	DTS_ACTION_INSERT,			/* UPDATE_MISSING: insert the new row */
	DTS_ACTION_OVERWRITE,		/* INSERT_EXISTS: update the existing row to
								 * the new one */
	DTS_ACTION_REPLACE			/* UPDATE_KEY_CONFLICT: delete the row that
								 * holds the new key, then update */
} DtsConflictAction;

/*
 * The one decision: what policy does about a conflict of this kind.
 *
 *	kind				 TaskFailed  Ignore     Overwrite
 *	INSERT_EXISTS		 FAIL        SKIP       OVERWRITE
 *	UPDATE_MISSING		 FAIL        INSERT     INSERT
 *	UPDATE_KEY_CONFLICT	 FAIL        SKIP       REPLACE
 *	DELETE_MISSING		 SKIP        SKIP       SKIP
 *
 * (A delete of a missing row leaves the destination as the source has
 * it, so no policy stops the task for it; it is logged all the same.
 * The INSERT that replaces a missing row's UPDATE meets the policy again
 * as INSERT_EXISTS if its key is taken.)
 */
extern DtsConflictAction dts_conflict_resolve(DtsConflictPolicy policy,
											  DtsConflictKind kind);

/* "INSERT_EXISTS", ...; "TaskFailed", ...; "fail", "skip", ... */
extern const char *dts_conflict_kind_name(DtsConflictKind kind);
extern const char *dts_conflict_policy_name(DtsConflictPolicy policy);
extern const char *dts_conflict_action_name(DtsConflictAction action);

/* Parses "TaskFailed", "Ignore", "Overwrite" (case-insensitive). */
extern bool dts_conflict_policy_parse(const char *text,
									  DtsConflictPolicy *policy);

/*
 * A row's key as query parameters: the key columns' destination names and
 * their values as libpq parameters (types, values, lengths, formats as for
 * PQexecParams; a NULL value is SQL NULL).  For a table without a key
 * (REPLICA IDENTITY FULL) the "key" is every column of the row.
 */
typedef struct DtsConflictKey
{
	int			n;
	const char *const *names;
	const Oid  *types;
	const char *const *values;
	const int  *lengths;
	const int  *formats;
} DtsConflictKey;

/* One conflict, as reported. */
typedef struct DtsConflict
{
	DtsConflictKind kind;
	DtsConflictAction action;
	const char *task;
	uint32_t	xid;			/* the source transaction */
	uint64_t	lsn;			/* its commit LSN */
	const char *schema;			/* destination table */
	const char *table;
	DtsConflictKey key;
	const char *detail;			/* why, a full sentence, or NULL */
} DtsConflict;

/*
 * Reports one conflict: inserts a row into dts.conflict_log over conn, in
 * whatever transaction conn is in (the caller's destination transaction
 * when the action is applied, so that the log row commits or rolls back
 * with it; autocommit after the rollback when the task fails), and logs a
 * warning line unless the action is FAIL (then the caller's error says
 * it).  The key is stored as jsonb {"column": value, ...}; its text is
 * copied to key_text (key_text_len bytes, may be 0) for the caller's
 * error message.  Returns 0, or -1 with err set.
 */
extern int	dts_conflict_report(PGconn *conn, const DtsConflict *conflict,
								char *key_text, size_t key_text_len,
								DtsError *err);

/*
 * The key as jsonb text, computed by the server (which alone can read the
 * binary parameters), into buf; "(unknown)" when conn cannot compute it
 * (e.g. inside an aborted transaction).  Never fails.
 */
extern void dts_conflict_key_text(PGconn *conn, const DtsConflictKey *key,
								  char *buf, size_t len);

#endif							/* PG_DTS_SHIP_CONFLICT_H */

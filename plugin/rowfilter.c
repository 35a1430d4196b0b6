/*-------------------------------------------------------------------------
 *
 * rowfilter.c
 *	  The table_rules option of the pg_dts plugin at work: a rule's row
 *	  filter ("where") parsed at startup, analyzed against its table when
 *	  the table's cache entry is built, and evaluated per change; a rule's
 *	  column list checked against the table; and the per-change verdict
 *	  (publish or not, and as which kind of change).
 *
 * The row filter semantics are those of PostgreSQL 15 publication row
 * filters (pgoutput.c): an INSERT is tested on its new row, a DELETE on its
 * old row, and an UPDATE on both rows when the old one was logged (an
 * UPDATE whose old row matches and new row does not becomes a DELETE, the
 * other way round an INSERT, and neither is dropped), else on its new row
 * only.  The expressions allowed are PostgreSQL's too: columns, constants,
 * built-in operators, types and collations, and immutable built-in
 * functions; and if the rule publishes updates or deletes of a table that
 * is not REPLICA IDENTITY FULL, only replica identity columns, since those
 * are all an old row then holds.
 *
 * A filter is analyzed without a range table: column references are
 * resolved by a parser hook straight to Vars of the table's descriptor
 * (no lock is taken on the table, which decoding must not do), and the
 * prepared expression reads them from the scan slot.  Each filter has its
 * own EState, in its relation entry's memory context.
 *
 * plugin/rowfilter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/transam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parser.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "pg_dts.h"

/* A filter is parsed as the WHERE clause of this statement. */
#define FILTER_PREFIX "SELECT WHERE "

#define FILTER_HINT "A row filter may use the table's columns, constants, " \
	"built-in operators, types and collations, and immutable built-in " \
	"functions."

/* A row filter ready to be evaluated; lives in its entry's context. */
struct PgDtsRowFilter
{
	EState	   *estate;
	ExprState  *expr;
	ExprContext *econtext;		/* the per-tuple one of estate */
	TupleDesc	desc;			/* a copy of the table's */
	TupleTableSlot *old_slot;	/* heap slots for the decoded tuples */
	TupleTableSlot *new_slot;
	TupleTableSlot *merged_slot;	/* virtual: new row, TOAST from old */
	int			nrefs;
	int		   *refs;			/* 0-based columns the filter reads */
	Datum	   *old_values;		/* deform scratch, natts long */
	bool	   *old_isnull;
};

/* What the error context callback says about the filter being handled. */
typedef struct FilterErrorContext
{
	const PgDtsTableRule *rule;
	const char *where;
	const char *schema;			/* NULL while parsing at startup */
	const char *table;
} FilterErrorContext;

/*
 * Names the filter in the context of any error raised while it is parsed
 * or analyzed.  The parser's error positions point into FILTER_PREFIX plus
 * the filter, not into the statement the client sent, so they are dropped.
 */
static void
filter_error_callback(void *arg)
{
	FilterErrorContext *fc = arg;

	if (geterrposition() > 0)
		errposition(0);
	if (fc->schema != NULL)
		errcontext("row filter \"%s\" of table \"%s\".\"%s\" (table_rules[%d])",
				   fc->where, fc->schema, fc->table, fc->rule->index);
	else
		errcontext("row filter \"%s\" (table_rules[%d])",
				   fc->where, fc->rule->index);
}

static void
push_filter_context(ErrorContextCallback *cb, FilterErrorContext *fc)
{
	cb->callback = filter_error_callback;
	cb->arg = fc;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

static bool
raw_has_sublink(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
		return true;
	return raw_expression_tree_walker(node, raw_has_sublink, context);
}

/*
 * Parses the row filter of table_rules[index] (a string from the option)
 * into a raw expression tree, allocated in the current memory context.
 * Syntax errors, anything but one expression (say "true; DROP TABLE t" or
 * "x > 0 ORDER BY 1") and subqueries are an ERROR here, at startup; the
 * rest is checked when the filter meets its table.
 */
Node *
pg_dts_rowfilter_parse(const char *where, int index)
{
	char	   *sql = psprintf(FILTER_PREFIX "%s", where);
	PgDtsTableRule rule = {.index = index};
	FilterErrorContext fc = {&rule, where, NULL, NULL};
	ErrorContextCallback errcb;
	List	   *stmts;
	SelectStmt *select = NULL;

	push_filter_context(&errcb, &fc);
	stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(stmts) == 1 &&
		IsA(linitial_node(RawStmt, stmts)->stmt, SelectStmt))
		select = (SelectStmt *) linitial_node(RawStmt, stmts)->stmt;
	if (select == NULL || select->op != SETOP_NONE ||
		select->whereClause == NULL || select->targetList != NIL ||
		select->fromClause != NIL || select->distinctClause != NIL ||
		select->intoClause != NULL || select->groupClause != NIL ||
		select->havingClause != NULL || select->windowClause != NIL ||
		select->valuesLists != NIL || select->sortClause != NIL ||
		select->limitOffset != NULL || select->limitCount != NULL ||
		select->lockingClause != NIL || select->withClause != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid row filter in pg_dts option \"table_rules\""),
				 errdetail("In table_rules[%d], key \"where\" is not one expression.",
						   index),
				 errhint("Give a Boolean expression over the table's columns, such as \"amount > 0 AND region = 'EU'\", without clauses or statements around it.")));
	if (raw_has_sublink(select->whereClause, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid row filter in pg_dts option \"table_rules\""),
				 errdetail("In table_rules[%d], key \"where\" has a subquery, which a row filter cannot have.",
						   index),
				 errhint(FILTER_HINT)));
	error_context_stack = errcb.previous;
	return select->whereClause;
}

/*
 * The parser hook that resolves a column reference of a filter to a Var of
 * its table: "col" or "table.col".  Returns NULL for anything else, which
 * the parser then reports as an unknown column or table.
 */
static Node *
filter_column_ref(ParseState *pstate, ColumnRef *cref)
{
	Relation	rel = pstate->p_ref_hook_state;
	TupleDesc	desc = RelationGetDescr(rel);
	const char *colname;

	if (list_length(cref->fields) == 1 &&
		IsA(linitial(cref->fields), String))
		colname = strVal(linitial(cref->fields));
	else if (list_length(cref->fields) == 2 &&
			 IsA(linitial(cref->fields), String) &&
			 IsA(lsecond(cref->fields), String) &&
			 strcmp(strVal(linitial(cref->fields)),
					RelationGetRelationName(rel)) == 0)
		colname = strVal(lsecond(cref->fields));
	else
		return NULL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Var		   *var;

		if (att->attisdropped || strcmp(NameStr(att->attname), colname) != 0)
			continue;
		var = makeVar(1, att->attnum, att->atttypid, att->atttypmod,
					  att->attcollation, 0);
		var->location = cref->location;
		return (Node *) var;
	}
	return NULL;
}

static bool
mutable_or_user_function(Oid func_id, void *context)
{
	return func_id >= FirstNormalObjectId ||
		func_volatile(func_id) != PROVOLATILE_IMMUTABLE;
}

/*
 * Rejects what a row filter may not contain, as PostgreSQL 15 does for
 * publications (check_simple_rowfilter_expr_walker): every node must be of
 * a known simple kind, and no type, operator, function or collation may be
 * user-defined, nor any function mutable.
 */
static bool
check_filter_walker(Node *node, FilterErrorContext *fc)
{
	const char *detail = NULL;

	if (node == NULL)
		return false;

	switch (nodeTag(node))
	{
		case T_Var:
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			if (((OpExpr *) node)->opno >= FirstNormalObjectId)
				detail = "User-defined operators are not allowed.";
			break;
		case T_ScalarArrayOpExpr:
			if (((ScalarArrayOpExpr *) node)->opno >= FirstNormalObjectId)
				detail = "User-defined operators are not allowed.";
			break;
		case T_RowCompareExpr:
			{
				ListCell   *lc;

				foreach(lc, ((RowCompareExpr *) node)->opnos)
				{
					if (lfirst_oid(lc) >= FirstNormalObjectId)
						detail = "User-defined operators are not allowed.";
				}
			}
			break;
		case T_Const:
		case T_FuncExpr:
		case T_BoolExpr:
		case T_RelabelType:
		case T_CollateExpr:
		case T_CaseExpr:
		case T_CaseTestExpr:
		case T_ArrayExpr:
		case T_RowExpr:
		case T_CoalesceExpr:
		case T_MinMaxExpr:
		case T_XmlExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_List:
			break;
		default:
			detail = "Only columns, constants, built-in operators, built-in data types, built-in collations and immutable built-in functions are allowed.";
			break;
	}

	if (detail == NULL && !IsA(node, List))
	{
		if (exprType(node) >= FirstNormalObjectId)
			detail = "User-defined types are not allowed.";
		else if (check_functions_in_node(node, mutable_or_user_function,
										 NULL))
			detail = "User-defined functions and mutable built-in functions (such as random() or now()) are not allowed.";
		else if (exprCollation(node) >= FirstNormalObjectId ||
				 exprInputCollation(node) >= FirstNormalObjectId)
			detail = "User-defined collations are not allowed.";
	}

	if (detail != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid row filter for table \"%s\".\"%s\" in pg_dts option \"table_rules\"",
						fc->schema, fc->table),
				 errdetail("%s", detail),
				 errhint(FILTER_HINT)));

	return expression_tree_walker(node, check_filter_walker, (void *) fc);
}

/*
 * Under REPLICA IDENTITY DEFAULT, INDEX or NOTHING the old row of an
 * UPDATE or DELETE holds at most the replica identity columns: a filter of
 * a rule that publishes either may read no other column.
 */
static void
check_identity_columns(const PgDtsTableRule *rule, Relation rel,
					   const char *schema, Bitmapset *used)
{
	Bitmapset  *identity;
	int			x = -1;

	if (!(rule->dml & (PGDTS_DML_UPDATE | PGDTS_DML_DELETE)) ||
		rel->rd_rel->relreplident == REPLICA_IDENTITY_FULL)
		return;
	identity = RelationGetIdentityKeyBitmap(rel);
	while ((x = bms_next_member(used, x)) >= 0)
	{
		AttrNumber	attnum = x + FirstLowInvalidHeapAttributeNumber;

		if (bms_is_member(x, identity))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("row filter of table \"%s\".\"%s\" uses column \"%s\" that is not part of its replica identity",
						schema, RelationGetRelationName(rel),
						get_attname(RelationGetRelid(rel), attnum, false)),
				 errdetail("Rule table_rules[%d] publishes updates or deletes, and the old row of an update or delete holds only the replica identity columns unless the table has REPLICA IDENTITY FULL.",
						   rule->index),
				 errhint("Set REPLICA IDENTITY FULL on the table, or sync only inserts for it.")));
	}
}

/*
 * Analyzes the row filter of rule against rel (whose schema is schema) and
 * prepares it for evaluation.  Call in a callback of decoding (a historic
 * snapshot is needed for the catalogs), in the memory context of the
 * relation entry, which then owns the result; free it with
 * pg_dts_rowfilter_free() before that context goes.  Anything the filter
 * may not contain is an ERROR naming the table.
 */
PgDtsRowFilter *
pg_dts_rowfilter_build(const PgDtsTableRule *rule, Relation rel,
					   const char *schema)
{
	FilterErrorContext fc = {rule, rule->where, schema,
	RelationGetRelationName(rel)};
	ErrorContextCallback errcb;
	ParseState *pstate;
	Node	   *expr;
	Bitmapset  *used = NULL;
	PgDtsRowFilter *filter;
	int			natts = RelationGetDescr(rel)->natts;
	int			x = -1;

	push_filter_context(&errcb, &fc);
	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = psprintf(FILTER_PREFIX "%s", rule->where);
	pstate->p_pre_columnref_hook = filter_column_ref;
	pstate->p_ref_hook_state = rel;
	expr = transformExpr(pstate, copyObject(rule->where_raw),
						 EXPR_KIND_WHERE);
	expr = coerce_to_boolean(pstate, expr, "WHERE");
	assign_expr_collations(pstate, expr);
	check_filter_walker(expr, &fc);
	free_parsestate(pstate);

	pull_varattnos(expr, 1, &used);
	check_identity_columns(rule, rel, schema, used);
	error_context_stack = errcb.previous;

	filter = palloc0(sizeof(PgDtsRowFilter));
	filter->desc = CreateTupleDescCopy(RelationGetDescr(rel));
	filter->estate = CreateExecutorState();
	filter->expr = ExecPrepareExpr((Expr *) expr, filter->estate);
	filter->econtext = GetPerTupleExprContext(filter->estate);
	filter->old_slot = MakeSingleTupleTableSlot(filter->desc,
												&TTSOpsHeapTuple);
	filter->new_slot = MakeSingleTupleTableSlot(filter->desc,
												&TTSOpsHeapTuple);
	filter->merged_slot = MakeSingleTupleTableSlot(filter->desc,
												   &TTSOpsVirtual);
	filter->refs = palloc(sizeof(int) * Max(bms_num_members(used), 1));
	while ((x = bms_next_member(used, x)) >= 0)
		filter->refs[filter->nrefs++] =
			x + FirstLowInvalidHeapAttributeNumber - 1;
	filter->old_values = palloc(sizeof(Datum) * Max(natts, 1));
	filter->old_isnull = palloc(sizeof(bool) * Max(natts, 1));
	return filter;
}

/* Releases what pg_dts_rowfilter_build() made; NULL is fine. */
void
pg_dts_rowfilter_free(PgDtsRowFilter *filter)
{
	if (filter == NULL)
		return;
	ExecDropSingleTupleTableSlot(filter->old_slot);
	ExecDropSingleTupleTableSlot(filter->new_slot);
	ExecDropSingleTupleTableSlot(filter->merged_slot);
	FreeExecutorState(filter->estate);
	pfree(filter);
}

/*
 * The attribute numbers (1-based) of the columns that rule selects from
 * rel, in the current memory context; the caller adds the key columns.
 * Only for a rule with a "columns" key.  A name that is not a column of
 * the table, or is a generated column (never sent), is an ERROR.
 */
Bitmapset *
pg_dts_rule_columns(const PgDtsTableRule *rule, Relation rel,
					const char *schema)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *selected = NULL;
	ListCell   *lc;

	foreach(lc, rule->columns)
	{
		const char *name = lfirst(lc);
		Form_pg_attribute found = NULL;

		for (int i = 0; i < desc->natts && found == NULL; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), name) == 0)
				found = att;
		}
		if (found == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of table \"%s\".\"%s\" in pg_dts option \"table_rules\" does not exist",
							name, schema, RelationGetRelationName(rel)),
					 errdetail("Key \"columns\" of table_rules[%d] lists it.",
							   rule->index),
					 errhint("Give column names exactly as the catalog has them: they are case-sensitive and never quoted.")));
		if (found->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("column \"%s\" of table \"%s\".\"%s\" in pg_dts option \"table_rules\" is a generated column",
							name, schema, RelationGetRelationName(rel)),
					 errdetail("Key \"columns\" of table_rules[%d] lists it, but generated columns are never sent.",
							   rule->index),
					 errhint("Remove the column from the list.")));
		selected = bms_add_member(selected, found->attnum);
	}
	return selected;
}

/* Does the row in slot pass the filter?  NULL counts as false. */
static bool
row_matches(PgDtsRowFilter *filter, TupleTableSlot *slot)
{
	Datum		result;
	bool		isnull;

	filter->econtext->ecxt_scantuple = slot;
	result = ExecEvalExprSwitchContext(filter->expr, filter->econtext,
									   &isnull);
	ResetExprContext(filter->econtext);
	return !isnull && DatumGetBool(result);
}

/*
 * Does the decoded tuple (NULL: none was logged) pass the filter?  With no
 * tuple the filter reads no column (check_identity_columns() saw to that)
 * and is evaluated on a row of nulls.
 */
static bool
tuple_matches(PgDtsRowFilter *filter, TupleTableSlot *slot, HeapTuple tuple)
{
	if (tuple == NULL)
	{
		slot = filter->merged_slot;
		ExecStoreAllNullTuple(slot);
	}
	else
		ExecStoreHeapTuple(tuple, slot, false);
	return row_matches(filter, slot);
}

/*
 * Does the filter read a column that is an unchanged TOAST value in slot?
 * Only a tuple with external values (tuple) can have one.
 */
static bool
reads_unchanged_toast(PgDtsRowFilter *filter, TupleTableSlot *slot,
					  HeapTuple tuple)
{
	if (filter->nrefs == 0 || !HeapTupleHasExternal(tuple))
		return false;
	/* refs are in ascending order */
	slot_getsomeattrs(slot, filter->refs[filter->nrefs - 1] + 1);
	for (int i = 0; i < filter->nrefs; i++)
	{
		int			a = filter->refs[i];

		if (!slot->tts_isnull[a] &&
			TupleDescAttr(filter->desc, a)->attlen == -1 &&
			VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(slot->tts_values[a])))
			return true;
	}
	return false;
}

/*
 * The verdict on an UPDATE whose old row was logged (REPLICA IDENTITY FULL,
 * or a changed key): see pg_dts_rule_filter_change().  As in PostgreSQL 15,
 * the new row's unchanged TOAST values are taken from the old row when it
 * has them, both to evaluate the filter and to send the row if the UPDATE
 * becomes an INSERT.
 */
static bool
update_matches(PgDtsRowFilter *filter, DtsFrameKind *kind,
			   HeapTuple oldtuple, HeapTuple *newtuple)
{
	TupleDesc	desc = filter->desc;
	TupleTableSlot *new_slot = filter->new_slot;
	bool		old_matched;
	bool		new_matched;
	bool		merged = false;

	old_matched = tuple_matches(filter, filter->old_slot, oldtuple);

	ExecStoreHeapTuple(*newtuple, new_slot, false);
	if (HeapTupleHasExternal(*newtuple))
	{
		TupleTableSlot *m = filter->merged_slot;

		slot_getallattrs(new_slot);
		heap_deform_tuple(oldtuple, desc, filter->old_values,
						  filter->old_isnull);
		ExecClearTuple(m);
		memcpy(m->tts_values, new_slot->tts_values,
			   sizeof(Datum) * desc->natts);
		memcpy(m->tts_isnull, new_slot->tts_isnull,
			   sizeof(bool) * desc->natts);
		for (int i = 0; i < desc->natts; i++)
		{
			if (m->tts_isnull[i] || filter->old_isnull[i] ||
				TupleDescAttr(desc, i)->attlen != -1)
				continue;
			if (VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(m->tts_values[i])) &&
				!VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(filter->old_values[i])))
			{
				m->tts_values[i] = filter->old_values[i];
				merged = true;
			}
		}
		if (merged)
		{
			ExecStoreVirtualTuple(m);
			new_slot = m;
		}
	}

	/* a value the filter needs is not in the WAL: send the change */
	if (reads_unchanged_toast(filter, new_slot, *newtuple))
		new_matched = true;
	else
		new_matched = row_matches(filter, new_slot);

	if (!old_matched && !new_matched)
		return false;
	if (!old_matched)
	{
		*kind = DTS_FRAME_INSERT;
		if (merged)
			*newtuple = heap_form_tuple(desc, new_slot->tts_values,
										new_slot->tts_isnull);
	}
	else if (!new_matched)
		*kind = DTS_FRAME_DELETE;
	return true;
}

/*
 * Decides whether a change of a relation with a table rule is published
 * (true) or dropped (false), after the rule's "dml" and "where":
 *
 * - INSERT: published if its new row matches.
 * - DELETE: published if its old row matches.
 * - UPDATE with an old row: both match, an UPDATE; only the new row, an
 *   INSERT of the new row (*kind changed; *newtuple may be replaced by a
 *   copy, in the current memory context, whose unchanged TOAST values are
 *   filled in from the old row); only the old row, a DELETE of the old row
 *   (*kind changed); neither, dropped.
 * - UPDATE without an old row: published, as an UPDATE, if the new row
 *   matches, or if the filter reads a column whose value is an unchanged
 *   TOAST value, which is not in the WAL (it can be only if that column
 *   is a key column too, which PostgreSQL then logs in the old key).
 *
 * "dml" is applied to the kind of change as decoded, before the filter may
 * turn an UPDATE into an INSERT or a DELETE, as PostgreSQL 15 does.  Call
 * in the per-change memory context.
 */
bool
pg_dts_rule_filter_change(PgDtsRelEntry *entry, DtsFrameKind *kind,
						  HeapTuple *oldtuple, HeapTuple *newtuple)
{
	PgDtsRowFilter *filter = entry->rowfilter;
	uint8		dml;

	switch (*kind)
	{
		case DTS_FRAME_INSERT:
			dml = PGDTS_DML_INSERT;
			break;
		case DTS_FRAME_UPDATE:
			dml = PGDTS_DML_UPDATE;
			break;
		default:
			dml = PGDTS_DML_DELETE;
			break;
	}
	if (!(entry->dml & dml))
		return false;
	if (filter == NULL)
		return true;

	switch (*kind)
	{
		case DTS_FRAME_INSERT:
			return tuple_matches(filter, filter->new_slot, *newtuple);
		case DTS_FRAME_UPDATE:
			if (*oldtuple != NULL)
				return update_matches(filter, kind, *oldtuple, newtuple);
			ExecStoreHeapTuple(*newtuple, filter->new_slot, false);
			if (reads_unchanged_toast(filter, filter->new_slot, *newtuple))
				return true;
			return row_matches(filter, filter->new_slot);
		default:
			return tuple_matches(filter, filter->old_slot, *oldtuple);
	}
}

/*-------------------------------------------------------------------------
 *
 * router.h
 *	  Name mapping of a task: the relation a sink should write, with the
 *	  schema, table and column names the task's rules give at the sink.
 *
 * shipper/router.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DTS_SHIP_ROUTER_H
#define PG_DTS_SHIP_ROUTER_H

#include "pg_dts/frame.h"
#include "task.h"

typedef struct DtsRoute DtsRoute;	/* in router.c */

typedef struct DtsRouter
{
	const DtsTask *task;		/* not owned */
	DtsRoute   *routes;			/* one per relid seen, in a small array */
	int			nroutes;
	int			cap;
} DtsRouter;

extern void dts_router_init(DtsRouter *router, const DtsTask *task);
extern void dts_router_free(DtsRouter *router);

/*
 * The relation to write for rel: rel itself when the task renames nothing
 * of it, else a copy with the mapped names (same relid, columns, types and
 * key flags).  The result belongs to the router and stays valid until the
 * next call for the same relid with a changed relation, or the router is
 * freed.  Rebuilt whenever rel's names or columns differ from what the
 * route was built from (a new RELATION frame).
 */
extern const DtsRelation *dts_router_target(DtsRouter *router,
											const DtsRelation *rel);

#endif							/* PG_DTS_SHIP_ROUTER_H */

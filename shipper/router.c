/*-------------------------------------------------------------------------
 *
 * router.c
 *	  The task's name mapping (DTS "object name mapping"): for each source
 *	  relation, the names its changes get at the sink.
 *
 * Which tables, rows, columns and DML kinds are shipped is decided in the
 * server (plugin options include_tables and table_rules, built from the
 * task by task.c); what is left here is renaming.  Routes are cached per
 * relid and rebuilt when the relation they were built from changes.
 *
 * shipper/router.c
 *
 *-------------------------------------------------------------------------
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct DtsRoute
{
	uint32_t	relid;
	DtsRelation source;			/* copy of the names it was built from */
	DtsRelation target;			/* what sinks get */
	bool		renamed;		/* target differs from source */
};

void
dts_router_init(DtsRouter *router, const DtsTask *task)
{
	memset(router, 0, sizeof(*router));
	router->task = task;
}

static void
free_relation(DtsRelation *rel)
{
	free(rel->schema);
	free(rel->table);
	for (int i = 0; i < rel->ncols; i++)
		free(rel->columns[i].name);
	free(rel->columns);
	memset(rel, 0, sizeof(*rel));
}

void
dts_router_free(DtsRouter *router)
{
	for (int i = 0; i < router->nroutes; i++)
	{
		free_relation(&router->routes[i].source);
		free_relation(&router->routes[i].target);
	}
	free(router->routes);
	memset(router, 0, sizeof(*router));
}

/* Does the route still describe rel (same names and columns)? */
static bool
route_matches(const DtsRoute *route, const DtsRelation *rel)
{
	const DtsRelation *src = &route->source;

	if (src->ncols != rel->ncols || strcmp(src->table, rel->table) != 0 ||
		strcmp(src->schema, rel->schema) != 0)
		return false;
	for (int i = 0; i < rel->ncols; i++)
	{
		if (src->columns[i].typoid != rel->columns[i].typoid ||
			strcmp(src->columns[i].name, rel->columns[i].name) != 0)
			return false;
	}
	return true;
}

static void
copy_relation(DtsRelation *dst, const DtsRelation *src)
{
	*dst = *src;
	dst->schema = dts_strdup(src->schema);
	dst->table = dts_strdup(src->table);
	dst->columns = dts_realloc(NULL, sizeof(DtsColumn) * (src->ncols > 0 ? src->ncols : 1));
	for (int i = 0; i < src->ncols; i++)
	{
		dst->columns[i] = src->columns[i];
		dst->columns[i].name = dts_strdup(src->columns[i].name);
	}
}

static void
rename_to(char **name, const char *new_name)
{
	if (new_name == NULL || strcmp(*name, new_name) == 0)
		return;
	free(*name);
	*name = dts_strdup(new_name);
}

/* Fills route->target from route->source and the task's rule. */
static void
build_target(DtsRouter *router, DtsRoute *route)
{
	const DtsTableRule *rule;
	DtsRelation *target = &route->target;

	free_relation(target);
	copy_relation(target, &route->source);
	route->renamed = false;
	rule = router->task ? dts_task_find_rule(router->task,
											 route->source.schema,
											 route->source.table) : NULL;
	if (rule == NULL)
		return;
	rename_to(&target->schema, rule->new_schema);
	if (rule->table != NULL)
		rename_to(&target->table, rule->new_table);
	for (int c = 0; c < rule->ncolumns; c++)
	{
		for (int i = 0; i < target->ncols; i++)
		{
			if (strcmp(target->columns[i].name, rule->columns[c].name) == 0)
				rename_to(&target->columns[i].name, rule->columns[c].new_name);
		}
	}
	route->renamed = !route_matches(route, target);
}

const DtsRelation *
dts_router_target(DtsRouter *router, const DtsRelation *rel)
{
	DtsRoute   *route = NULL;

	for (int i = 0; i < router->nroutes; i++)
	{
		if (router->routes[i].relid == rel->relid)
		{
			route = &router->routes[i];
			break;
		}
	}
	if (route == NULL)
	{
		if (router->nroutes == router->cap)
		{
			router->cap = router->cap ? router->cap * 2 : 16;
			router->routes = dts_realloc(router->routes,
										 router->cap * sizeof(DtsRoute));
		}
		route = &router->routes[router->nroutes++];
		memset(route, 0, sizeof(*route));
		route->relid = rel->relid;
	}
	else if (route_matches(route, rel))
		return route->renamed ? &route->target : rel;

	free_relation(&route->source);
	copy_relation(&route->source, rel);
	build_target(router, route);
	return route->renamed ? &route->target : rel;
}

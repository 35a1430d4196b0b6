/*-------------------------------------------------------------------------
 *
 * sqlstate.h
 *	  The SQLSTATEs the shipper acts on, named as in PostgreSQL's
 *	  errcodes.txt (the server's ERRCODE_* names), as the strings libpq's
 *	  PG_DIAG_SQLSTATE field holds.
 *
 * shipper/sqlstate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DTS_SQLSTATE_H
#define DTS_SQLSTATE_H

#define DTS_SQLSTATE_UNIQUE_VIOLATION		"23505"
#define DTS_SQLSTATE_INVALID_BINARY_REPRESENTATION	"22P03"
#define DTS_SQLSTATE_INSUFFICIENT_PRIVILEGE	"42501"
#define DTS_SQLSTATE_UNDEFINED_COLUMN		"42703"
#define DTS_SQLSTATE_UNDEFINED_OBJECT		"42704"
#define DTS_SQLSTATE_UNDEFINED_TABLE		"42P01"
#define DTS_SQLSTATE_DUPLICATE_OBJECT		"42710"
#define DTS_SQLSTATE_OBJECT_IN_USE			"55006"

#endif							/* DTS_SQLSTATE_H */

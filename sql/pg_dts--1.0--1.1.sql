/*-------------------------------------------------------------------------
 *
 * pg_dts--1.0--1.1.sql
 *	  The pg_dts extension from version 1.0 to 1.1 (CREATE EXTENSION pg_dts
 *	  runs pg_dts--1.0.sql, then this script):
 *
 *	  dts.copy_rows(text, integer)	a query's rows as binary COPY tuples,
 *									many to a value, for the full sync
 *
 * On a source with 1.0, ALTER EXTENSION pg_dts UPDATE adds it; until then
 * pg_dts_ship's full sync copies with a plain COPY TO (docs/pg-sync.md
 * section 3).
 *
 * sql/pg_dts--1.0--1.1.sql
 *
 *-------------------------------------------------------------------------
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_dts UPDATE TO '1.1'" to load this file. \quit

CREATE FUNCTION dts.copy_rows(query text, chunk_bytes integer DEFAULT 262144)
RETURNS SETOF bytea
AS 'MODULE_PATHNAME', 'dts_copy_rows'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dts.copy_rows(text, integer) IS
'pg_dts: the rows of a query as binary COPY tuples, about chunk_bytes a value, each after an int32 row count; call it in the SELECT list (used by pg_dts_ship''s full sync)';

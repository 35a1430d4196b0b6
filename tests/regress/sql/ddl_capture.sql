--
-- ddl_capture: the event triggers dts_intercept_ddl and dts_intercept_drop
-- record DDL into public.dts_ddl_command.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_dts;
RESET client_min_messages;

SELECT coalesce(max(id), 0) AS start_id FROM public.dts_ddl_command \gset

-- the rows this test wrote
CREATE FUNCTION pg_temp.captured(start_id bigint)
RETURNS SETOF public.dts_ddl_command
LANGUAGE sql STABLE AS $$
	SELECT *
	  FROM public.dts_ddl_command AS c
	 WHERE c.id > start_id
	   AND (c.schema_name = 'ddl_capture'
			OR c.object_identity IN ('ddl_capture', 'hstore')
			OR c.tag IN ('GRANT', 'REVOKE'))
	 ORDER BY c.id
$$;

CREATE SCHEMA ddl_capture;
SET search_path = ddl_capture, public;

CREATE TABLE t (id serial PRIMARY KEY, v text);
ALTER TABLE t ADD COLUMN w int;
ALTER TABLE t RENAME COLUMN w TO w2;
ALTER TABLE t DROP COLUMN w2;
CREATE INDEX t_v_idx ON t (v);
GRANT SELECT ON t TO PUBLIC;
CREATE FUNCTION f(i int) RETURNS int LANGUAGE sql AS 'SELECT i + 1';

-- quoted identifiers: a space, upper case, non-ASCII letters
CREATE TABLE "Straße Ünïcode" ("Col A" int);
ALTER TABLE "Straße Ünïcode" RENAME TO "Größe X";

-- two commands in one query string: ddl_text is the whole string
CREATE VIEW v AS SELECT 1 AS one \; COMMENT ON VIEW v IS 'a view';

-- not recorded: temporary objects, DDL on the capture table itself, DDL
-- rolled back, DDL applied as a replica (by a pg_dts sink)
CREATE TEMP TABLE tmp (a int);
DROP TABLE tmp;
ALTER TABLE public.dts_ddl_command ALTER COLUMN ddl_text SET STATISTICS 200;
ALTER TABLE public.dts_ddl_command ALTER COLUMN ddl_text SET STATISTICS -1;
BEGIN;
CREATE TABLE rolled_back (a int);
ROLLBACK;
SET session_replication_role = replica;
CREATE TABLE replica_t (a int);
DROP TABLE replica_t;
RESET session_replication_role;

-- CREATE EXTENSION is recorded, the commands of its script are not
CREATE EXTENSION hstore SCHEMA ddl_capture;
DROP EXTENSION hstore;

-- the session user is recorded, not the owner of the trigger function
CREATE ROLE regress_pg_dts_ddl_user;
GRANT USAGE, CREATE ON SCHEMA ddl_capture TO regress_pg_dts_ddl_user;
SET SESSION AUTHORIZATION regress_pg_dts_ddl_user;
CREATE TABLE ddl_capture.owned (a int);
DROP TABLE ddl_capture.owned;
RESET SESSION AUTHORIZATION;
REVOKE ALL ON SCHEMA ddl_capture FROM regress_pg_dts_ddl_user;
DROP ROLE regress_pg_dts_ddl_user;

DROP FUNCTION f(int);
DROP INDEX t_v_idx;
DROP TABLE t, "Größe X";
DROP VIEW v;
RESET search_path;
DROP SCHEMA ddl_capture;

-- without what varies from run to run
\x on
SELECT row_number() OVER (ORDER BY id) AS n, event, tag, object_type,
	   schema_name, object_identity, ddl_text
  FROM pg_temp.captured(:start_id)
 LIMIT 3;
\x off
SELECT row_number() OVER (ORDER BY id) AS n, event, tag, object_type,
	   schema_name, object_identity,
	   CASE WHEN username = current_user THEN '(me)' ELSE username END
	   AS username
  FROM pg_temp.captured(:start_id);
SELECT ddl_text, count(*)
  FROM pg_temp.captured(:start_id)
 GROUP BY ddl_text
 ORDER BY min(id);

-- the other columns
SELECT count(*) AS rows,
	   count(DISTINCT txid_current) AS transactions,
	   bool_and(database = current_database()) AS this_db,
	   bool_and(event_time IS NOT NULL) AS timed,
	   bool_and(client_port IS NULL = (client_address IS NULL)) AS client
  FROM pg_temp.captured(:start_id);

-- clean up
DELETE FROM public.dts_ddl_command
 WHERE id IN (SELECT id FROM pg_temp.captured(:start_id));

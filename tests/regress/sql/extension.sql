--
-- extension: what CREATE EXTENSION pg_dts creates, its privileges, and
-- that DROP EXTENSION removes all of it.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_dts;
RESET client_min_messages;

SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
  FROM pg_extension WHERE extname = 'pg_dts';

-- the members, as \dx+ lists them
CREATE FUNCTION pg_temp.pg_dts_members() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
	  FROM pg_depend AS d
	  JOIN pg_extension AS e ON e.oid = d.refobjid
	 WHERE d.refclassid = 'pg_extension'::regclass
	   AND d.deptype = 'e'
	   AND e.extname = 'pg_dts'
	 ORDER BY 1
$$;
SELECT * FROM pg_temp.pg_dts_members();

-- tables and the view
SELECT a.attrelid::regclass AS relation, a.attname,
	   format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
	   pg_get_expr(d.adbin, d.adrelid) AS default
  FROM pg_attribute AS a
  LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid IN ('public.dts_postgres_heartbeat'::regclass,
					  'public.dts_ddl_command'::regclass,
					  'dts.slots'::regclass)
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid::regclass::text, a.attnum;

SELECT conrelid::regclass, conname, pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE conrelid IN ('public.dts_postgres_heartbeat'::regclass,
					'public.dts_ddl_command'::regclass)
 ORDER BY 1, 2;

-- functions
SELECT p.oid::regprocedure AS function, l.lanname, p.prorettype::regtype,
	   p.proretset, p.prosecdef, p.provolatile, p.proparallel, p.proisstrict,
	   p.proconfig
  FROM pg_proc AS p
  JOIN pg_language AS l ON l.oid = p.prolang
 WHERE p.oid IN ('public.dts_capture_ddl()'::regprocedure,
				 'dts.frames(bytea)'::regprocedure,
				 'dts.creating_extension()'::regprocedure)
 ORDER BY p.proname;

-- event triggers
SELECT evtname, evtevent, evtfoid::regproc, evtenabled, evttags
  FROM pg_event_trigger
 WHERE evtname LIKE 'dts\_%'
 ORDER BY 1;

-- an ordinary user reads dts.slots and calls dts.frames(), nothing else
CREATE ROLE regress_pg_dts_reader;
SET ROLE regress_pg_dts_reader;
SELECT count(*) >= 0 AS readable FROM dts.slots;
SELECT * FROM dts.frames(NULL);
SELECT dts.creating_extension();
SELECT count(*) FROM public.dts_ddl_command;
SELECT count(*) FROM public.dts_postgres_heartbeat;
INSERT INTO public.dts_postgres_heartbeat (slot_name) VALUES ('nope');
RESET ROLE;
DROP ROLE regress_pg_dts_reader;

-- DROP EXTENSION removes everything, the schema and event triggers included
DROP EXTENSION pg_dts;
SELECT * FROM pg_temp.pg_dts_members();
SELECT count(*) AS dts_schemas FROM pg_namespace WHERE nspname = 'dts';
SELECT count(*) AS dts_event_triggers FROM pg_event_trigger
 WHERE evtname LIKE 'dts\_%';
SELECT to_regclass('public.dts_ddl_command') AS ddl_command,
	   to_regclass('public.dts_ddl_command_id_seq') AS ddl_command_seq,
	   to_regclass('public.dts_postgres_heartbeat') AS heartbeat,
	   to_regproc('public.dts_capture_ddl') AS capture_ddl;

-- DDL works without the triggers
CREATE TABLE pg_dts_extension_t (a int);
DROP TABLE pg_dts_extension_t;

-- and the extension can be created again
CREATE EXTENSION pg_dts;
SELECT count(*) AS members FROM pg_temp.pg_dts_members();
SELECT count(*) AS rows FROM public.dts_ddl_command;

/*-------------------------------------------------------------------------
 *
 * pg_dts--1.0.sql
 *	  The pg_dts extension, version 1.0: the objects a source database needs
 *	  for a pg_dts task, and the SQL side of the output plugin.
 *
 *	  public.dts_postgres_heartbeat	heartbeat table the shipper updates
 *	  public.dts_ddl_command		DDL log written by the event triggers
 *	  public.dts_capture_ddl()		their function
 *	  dts_intercept_ddl				event trigger on ddl_command_end
 *	  dts_intercept_drop			event trigger on sql_drop
 *	  schema dts					pg_dts's own objects
 *	  dts.frames(bytea)				decodes one plugin message into jsonb
 *	  dts.creating_extension()		is an extension script running?
 *	  dts.slots						replication slots at a glance
 *
 * The names in public are those Alibaba DTS uses for PostgreSQL, so that a
 * source prepared for DTS and one prepared for pg_dts look the same.  Every
 * object is created here, so DROP EXTENSION pg_dts removes them all.
 *
 * sql/pg_dts--1.0.sql
 *
 *-------------------------------------------------------------------------
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_dts" to load this file. \quit

/* ----------------------------------------------------------------
 *		Heartbeat
 * ----------------------------------------------------------------
 */
CREATE TABLE public.dts_postgres_heartbeat
(
	slot_name	text PRIMARY KEY,
	task_name	text,
	beat_time	timestamptz NOT NULL DEFAULT now(),
	beat_lsn	pg_lsn,
	seq			bigint NOT NULL DEFAULT 0
);

COMMENT ON TABLE public.dts_postgres_heartbeat IS
'pg_dts heartbeat: the shipper of each task updates its row every few seconds; the change comes back through the slot, so its age is the end-to-end latency and it keeps the slot advancing while the synchronized tables are idle';
COMMENT ON COLUMN public.dts_postgres_heartbeat.slot_name IS
'replication slot of the task';
COMMENT ON COLUMN public.dts_postgres_heartbeat.task_name IS
'name of the task';
COMMENT ON COLUMN public.dts_postgres_heartbeat.beat_time IS
'time of the latest heartbeat, on the source';
COMMENT ON COLUMN public.dts_postgres_heartbeat.beat_lsn IS
'WAL insert position when the shipper wrote the heartbeat';
COMMENT ON COLUMN public.dts_postgres_heartbeat.seq IS
'number of heartbeats of the task so far';

/* ----------------------------------------------------------------
 *		DDL capture
 *
 * Logical decoding carries no DDL.  As DTS does, an event trigger writes
 * each DDL command into public.dts_ddl_command, in the command's own
 * transaction; the row reaches the shipper through the slot, in commit
 * order with the data changes around it.
 *
 * ddl_command_end lists what a command created or altered, but not what
 * it dropped; sql_drop lists that.  So a DROP TABLE gives one sql_drop row,
 * a CREATE TABLE one ddl_command_end row per object created (the table,
 * its sequences, its indexes), an ALTER TABLE ... DROP COLUMN one row of
 * each.  ddl_text is the whole statement as the client sent it
 * (current_query()), the same in every row of one command.
 *
 * Not recorded: commands run by an extension script (the CREATE EXTENSION
 * itself is), temporary objects, and DDL on the capture table itself.
 * Event triggers do not fire under session_replication_role = replica,
 * so DDL applied by a pg_dts sink is not captured again.
 * ----------------------------------------------------------------
 */
CREATE TABLE public.dts_ddl_command
(
	id				bigserial PRIMARY KEY,
	ddl_text		text,
	event			text,
	tag				text,
	object_type		text,
	schema_name		text,
	object_identity text,
	username		text,
	database		text,
	client_address	inet,
	client_port		integer,
	event_time		timestamptz,
	txid_current	bigint
);

COMMENT ON TABLE public.dts_ddl_command IS
'pg_dts DDL log: one row per object created, altered or dropped by a DDL command, written by the event triggers dts_intercept_ddl and dts_intercept_drop';
COMMENT ON COLUMN public.dts_ddl_command.id IS
'order in which the rows were written';
COMMENT ON COLUMN public.dts_ddl_command.ddl_text IS
'statement text as sent by the client (current_query())';
COMMENT ON COLUMN public.dts_ddl_command.event IS
'event trigger event: ddl_command_end or sql_drop';
COMMENT ON COLUMN public.dts_ddl_command.tag IS
'command tag, such as CREATE TABLE';
COMMENT ON COLUMN public.dts_ddl_command.object_type IS
'type of the object, such as table or index';
COMMENT ON COLUMN public.dts_ddl_command.schema_name IS
'schema of the object, or NULL when it has none';
COMMENT ON COLUMN public.dts_ddl_command.object_identity IS
'schema-qualified identity of the object';
COMMENT ON COLUMN public.dts_ddl_command.username IS
'session user that ran the command';
COMMENT ON COLUMN public.dts_ddl_command.database IS
'database of the command';
COMMENT ON COLUMN public.dts_ddl_command.client_address IS
'client address, NULL over a Unix-domain socket';
COMMENT ON COLUMN public.dts_ddl_command.client_port IS
'client port, NULL over a Unix-domain socket';
COMMENT ON COLUMN public.dts_ddl_command.event_time IS
'start time of the transaction of the command';
COMMENT ON COLUMN public.dts_ddl_command.txid_current IS
'transaction of the command (txid_current())';

CREATE FUNCTION public.dts_capture_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
	capture_table	regclass := to_regclass('public.dts_ddl_command');
BEGIN
	/*
	 * Nothing to do without the capture table: this is the sql_drop of a
	 * command that dropped it (DROP EXTENSION pg_dts).
	 */
	IF capture_table IS NULL THEN
		RETURN;
	END IF;

	IF TG_EVENT = 'ddl_command_end' THEN
		INSERT INTO public.dts_ddl_command
			(ddl_text, event, tag, object_type, schema_name, object_identity,
			 username, database, client_address, client_port, event_time,
			 txid_current)
		SELECT current_query(), TG_EVENT, c.command_tag, c.object_type,
			   c.schema_name, c.object_identity,
			   session_user, current_database(),
			   inet_client_addr(), inet_client_port(), now(), txid_current()
		  FROM pg_event_trigger_ddl_commands() AS c
		 WHERE NOT c.in_extension
		   AND (c.schema_name IS NULL
				OR (c.schema_name <> 'pg_temp'
					AND c.schema_name NOT LIKE 'pg\_temp\_%'
					AND c.schema_name NOT LIKE 'pg\_toast\_temp\_%'))
		   AND (c.classid IS DISTINCT FROM 'pg_class'::regclass
				OR (c.objid <> capture_table
					AND c.objid NOT IN (SELECT d.objid
										  FROM pg_depend AS d
										 WHERE d.classid = 'pg_class'::regclass
										   AND d.refclassid = 'pg_class'::regclass
										   AND d.refobjid = capture_table)));
	ELSIF TG_EVENT = 'sql_drop' THEN
		/*
		 * The drops of an extension script, unlike its other commands, are
		 * not marked in_extension.
		 */
		IF dts.creating_extension() THEN
			RETURN;
		END IF;
		INSERT INTO public.dts_ddl_command
			(ddl_text, event, tag, object_type, schema_name, object_identity,
			 username, database, client_address, client_port, event_time,
			 txid_current)
		SELECT current_query(), TG_EVENT, TG_TAG, o.object_type,
			   o.schema_name, o.object_identity,
			   session_user, current_database(),
			   inet_client_addr(), inet_client_port(), now(), txid_current()
		  FROM pg_event_trigger_dropped_objects() AS o
		 WHERE o.original
		   AND NOT o.is_temporary
		   AND coalesce(o.object_identity, '') <> 'public.dts_ddl_command'
		   AND coalesce(o.object_identity, '')
			   NOT LIKE 'public.dts\_ddl\_command.%';
	END IF;
END;
$function$;

COMMENT ON FUNCTION public.dts_capture_ddl() IS
'pg_dts: records DDL commands into public.dts_ddl_command (event trigger function)';

REVOKE ALL ON FUNCTION public.dts_capture_ddl() FROM PUBLIC;

/* ----------------------------------------------------------------
 *		Schema dts
 * ----------------------------------------------------------------
 */
CREATE SCHEMA dts;

COMMENT ON SCHEMA dts IS
'pg_dts: frame decoding, slot overview, and the state of pg_dts tasks';

GRANT USAGE ON SCHEMA dts TO PUBLIC;

CREATE FUNCTION dts.frames(data bytea)
RETURNS SETOF jsonb
AS 'MODULE_PATHNAME', 'dts_frames'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dts.frames(bytea) IS
'pg_dts: decodes one message of the pg_dts output plugin into one jsonb per frame; read the messages of a stream in order';

CREATE FUNCTION dts.creating_extension()
RETURNS boolean
AS 'MODULE_PATHNAME', 'dts_creating_extension'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION dts.creating_extension() IS
'pg_dts: true while an extension script runs (used by public.dts_capture_ddl())';

CREATE VIEW dts.slots AS
SELECT s.slot_name,
	   s.plugin,
	   s.slot_type,
	   s.database,
	   s.active,
	   s.active_pid,
	   s.restart_lsn,
	   s.confirmed_flush_lsn,
	   pg_catalog.pg_wal_lsn_diff(w.lsn, s.restart_lsn) AS retained_wal_bytes,
	   pg_catalog.pg_wal_lsn_diff(w.lsn, s.confirmed_flush_lsn) AS lag_bytes,
	   s.wal_status,
	   s.safe_wal_size,
	   h.beat_time AS last_heartbeat,
	   pg_catalog.now() - h.beat_time AS heartbeat_age
  FROM pg_catalog.pg_replication_slots AS s
 CROSS JOIN (SELECT CASE WHEN pg_catalog.pg_is_in_recovery()
						 THEN pg_catalog.pg_last_wal_replay_lsn()
						 ELSE pg_catalog.pg_current_wal_lsn()
					END AS lsn) AS w
  LEFT JOIN public.dts_postgres_heartbeat AS h
	ON h.slot_name = s.slot_name::text;

COMMENT ON VIEW dts.slots IS
'pg_dts: replication slots with the WAL they retain, their lag behind the current WAL position, and the latest heartbeat of their task';

GRANT SELECT ON dts.slots TO PUBLIC;

/* ----------------------------------------------------------------
 *		Event triggers
 *
 * Created last: once they exist they fire for the rest of this script.
 * ----------------------------------------------------------------
 */
CREATE EVENT TRIGGER dts_intercept_ddl ON ddl_command_end
	EXECUTE FUNCTION public.dts_capture_ddl();

CREATE EVENT TRIGGER dts_intercept_drop ON sql_drop
	EXECUTE FUNCTION public.dts_capture_ddl();

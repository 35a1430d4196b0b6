-- DDL captured by the event trigger travels through the slot as inserts
-- into public.dts_ddl_command, in the transaction of the DDL.
CREATE EXTENSION IF NOT EXISTS pg_dts;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_ddl', 'pg_dts');
CREATE TABLE regress_ddl_t (id int PRIMARY KEY);
ALTER TABLE regress_ddl_t ADD COLUMN v text;
INSERT INTO regress_ddl_t VALUES (1, 'after alter');
DROP TABLE regress_ddl_t;
SELECT f->>'kind' AS kind, f->>'table' AS tbl,
       COALESCE(f->'new'->>'tag', f->'new'->>'v') AS what
FROM pg_logical_slot_peek_binary_changes('regress_ddl', NULL, NULL) p, dts.frames(p.data) f
WHERE f->>'kind' IN ('insert');
SELECT 'dropped' FROM pg_drop_replication_slot('regress_ddl');

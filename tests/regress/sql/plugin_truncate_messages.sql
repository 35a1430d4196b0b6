-- TRUNCATE and logical messages, with the message prefix filter.
CREATE EXTENSION IF NOT EXISTS pg_dts;
CREATE TABLE regress_trunc_a (id int PRIMARY KEY);
CREATE TABLE regress_trunc_b (id int PRIMARY KEY, a int REFERENCES regress_trunc_a);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_trunc', 'pg_dts');
INSERT INTO regress_trunc_a VALUES (1);
TRUNCATE regress_trunc_a CASCADE;
TRUNCATE regress_trunc_b RESTART IDENTITY;
SELECT 'msg' FROM pg_logical_emit_message(false, 'other', 'non-transactional');
SELECT 'msg' FROM pg_logical_emit_message(false, 'dts.bin', '\x00ff01'::bytea);
-- (non-transactional messages are not flushed at once: this commit flushes them)
SELECT 'msg' FROM pg_logical_emit_message(true, 'dts.test', 'transactional payload');

SELECT f->>'kind' AS kind, f->'relations' AS relations, f->'cascade' AS cascade,
       f->'restart_identity' AS restart_identity, f->'transactional' AS transactional,
       f->>'prefix' AS prefix, f->>'content' AS content, f->>'content_base64' AS content_base64
FROM pg_logical_slot_peek_binary_changes('regress_trunc', NULL, NULL) p, dts.frames(p.data) f
WHERE f->>'kind' NOT IN ('begin', 'commit', 'relation');

-- only chosen prefixes
SELECT f->>'prefix' AS prefix
FROM pg_logical_slot_peek_binary_changes('regress_trunc', NULL, NULL,
       'message_prefixes', 'dts.test, dts.bin') p, dts.frames(p.data) f
WHERE f->>'kind' = 'message';
-- no messages at all
SELECT count(*) AS messages
FROM pg_logical_slot_peek_binary_changes('regress_trunc', NULL, NULL, 'messages', 'off') p,
     dts.frames(p.data) f
WHERE f->>'kind' = 'message';
-- a transactional message alone still gets its BEGIN and COMMIT
SELECT string_agg(f->>'kind', ' ') AS kinds
FROM pg_logical_slot_peek_binary_changes('regress_trunc', NULL, NULL,
       'include_tables', 'nosuch.*') p, dts.frames(p.data) f;
SELECT 'dropped' FROM pg_drop_replication_slot('regress_trunc');
DROP TABLE regress_trunc_b, regress_trunc_a;

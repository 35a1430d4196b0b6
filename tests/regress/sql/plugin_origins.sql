-- Replayed transactions carry an ORIGIN frame; origin=none drops them.
CREATE EXTENSION IF NOT EXISTS pg_dts;
CREATE TABLE regress_origin (id int PRIMARY KEY, src text);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_origin', 'pg_dts');
SELECT pg_replication_origin_create('dts_regress_peer') > 0 AS created;
INSERT INTO regress_origin VALUES (1, 'local');
SELECT pg_replication_origin_session_setup('dts_regress_peer');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/ABCDEF', now());
INSERT INTO regress_origin VALUES (2, 'replayed');
COMMIT;
SELECT pg_replication_origin_session_reset();
INSERT INTO regress_origin VALUES (3, 'local');

SELECT f->>'kind' AS kind, f->>'origin' AS origin, f->>'origin_lsn' AS origin_lsn,
       f->'new'->>'src' AS src
FROM pg_logical_slot_peek_binary_changes('regress_origin', NULL, NULL, 'origin', 'any') p,
     dts.frames(p.data) f
WHERE f->>'kind' IN ('origin', 'insert');
SELECT f->'new'->>'src' AS src
FROM pg_logical_slot_peek_binary_changes('regress_origin', NULL, NULL, 'origin', 'none') p,
     dts.frames(p.data) f
WHERE f->>'kind' = 'insert';
SELECT 'dropped' FROM pg_drop_replication_slot('regress_origin');
SELECT pg_replication_origin_drop('dts_regress_peer');
DROP TABLE regress_origin;

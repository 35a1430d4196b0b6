-- Old tuples under each REPLICA IDENTITY, and tables without a key.
CREATE EXTENSION IF NOT EXISTS pg_dts;
CREATE TABLE regress_ri_default (id int PRIMARY KEY, v text);
CREATE TABLE regress_ri_full (id int PRIMARY KEY, v text);
ALTER TABLE regress_ri_full REPLICA IDENTITY FULL;
CREATE TABLE regress_ri_index (id int PRIMARY KEY, code text NOT NULL, v text);
CREATE UNIQUE INDEX regress_ri_index_code ON regress_ri_index (code);
ALTER TABLE regress_ri_index REPLICA IDENTITY USING INDEX regress_ri_index_code;
CREATE TABLE regress_ri_nothing (id int PRIMARY KEY, v text);
ALTER TABLE regress_ri_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE regress_ri_nokey (a int, b text);
CREATE TABLE regress_ri_nokey_full (a int, b text);
ALTER TABLE regress_ri_nokey_full REPLICA IDENTITY FULL;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_ri', 'pg_dts');

INSERT INTO regress_ri_default VALUES (1, 'a');
UPDATE regress_ri_default SET v = 'b' WHERE id = 1;
UPDATE regress_ri_default SET id = 2 WHERE id = 1;
DELETE FROM regress_ri_default;
INSERT INTO regress_ri_full VALUES (1, 'a');
UPDATE regress_ri_full SET v = 'b';
DELETE FROM regress_ri_full;
INSERT INTO regress_ri_index VALUES (1, 'c1', 'a');
UPDATE regress_ri_index SET v = 'b';
UPDATE regress_ri_index SET code = 'c2';
DELETE FROM regress_ri_index;
INSERT INTO regress_ri_nothing VALUES (1, 'a');
UPDATE regress_ri_nothing SET v = 'b';
DELETE FROM regress_ri_nothing;
INSERT INTO regress_ri_nokey VALUES (1, 'a');
INSERT INTO regress_ri_nokey_full VALUES (1, 'a');
UPDATE regress_ri_nokey_full SET b = 'b';
DELETE FROM regress_ri_nokey_full;

SELECT f->>'table' AS tbl, f->>'replica_identity' AS identity,
       (SELECT string_agg(c->>'name', ',') FROM jsonb_array_elements(f->'columns') c
        WHERE (c->>'key')::bool) AS key_columns
FROM pg_logical_slot_peek_binary_changes('regress_ri', NULL, NULL) p, dts.frames(p.data) f
WHERE f->>'kind' = 'relation' ORDER BY 1;

SELECT f->>'table' AS tbl, f->>'kind' AS kind, f->>'old_kind' AS old_kind,
       f->'old' AS old, f->'new' AS new
FROM pg_logical_slot_peek_binary_changes('regress_ri', NULL, NULL) p, dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete');

SELECT 'dropped' FROM pg_drop_replication_slot('regress_ri');
DROP TABLE regress_ri_default, regress_ri_full, regress_ri_index, regress_ri_nothing,
           regress_ri_nokey, regress_ri_nokey_full;

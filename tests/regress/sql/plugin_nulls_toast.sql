-- NULLs and unchanged TOASTed values are told apart in the frames.
CREATE EXTENSION IF NOT EXISTS pg_dts;
CREATE TABLE regress_toast (id int PRIMARY KEY, small text, big text, n int);
ALTER TABLE regress_toast ALTER COLUMN big SET STORAGE EXTERNAL;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_toast', 'pg_dts');

INSERT INTO regress_toast VALUES (1, NULL, repeat('0123456789', 1000), NULL);
-- big is not touched: it arrives as an unchanged TOASTed value
UPDATE regress_toast SET small = 'changed' WHERE id = 1;
-- big is changed: it arrives whole
UPDATE regress_toast SET big = repeat('x', 5000) WHERE id = 1;
-- everything set to NULL
UPDATE regress_toast SET small = NULL, big = NULL, n = NULL WHERE id = 1;
DELETE FROM regress_toast WHERE id = 1;

SELECT f->>'kind' AS kind,
       f->'new'->>'id' AS id,
       f->'new' ? 'small' AS has_small, f->'new'->>'small' AS small,
       f->'new' ? 'big' AS has_big, length(f->'new'->>'big') AS big_length,
       f->'new' ? 'n' AS has_n, f->'new'->'n' AS n,
       f->'unchanged_toast' AS unchanged_toast,
       f->'old' AS old
FROM pg_logical_slot_peek_binary_changes('regress_toast', NULL, NULL, 'format', 'binary') p,
     dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete');

-- the same in text format
SELECT f->>'kind' AS kind, f->'unchanged_toast' AS unchanged_toast,
       length(f->'new'->>'big') AS big_length, f->'new'->'small' AS small
FROM pg_logical_slot_peek_binary_changes('regress_toast', NULL, NULL, 'format', 'text') p,
     dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete');

SELECT 'dropped' FROM pg_drop_replication_slot('regress_toast');
DROP TABLE regress_toast;

-- Quoted identifiers: spaces, upper case, quotes, unicode.
CREATE EXTENSION IF NOT EXISTS pg_dts;
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Mixed Case ""Table"" ☃" ("Id" int PRIMARY KEY, "col with space" text, "ünï" int);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_ident', 'pg_dts');
INSERT INTO "Odd Schema"."Mixed Case ""Table"" ☃" VALUES (1, 'one', 1);
UPDATE "Odd Schema"."Mixed Case ""Table"" ☃" SET "Id" = 2;
DELETE FROM "Odd Schema"."Mixed Case ""Table"" ☃";
SELECT f->>'kind' AS kind, f->>'schema' AS schema, f->>'table' AS tbl,
       f->'columns' AS columns, f->'old' AS old, f->'new' AS new
FROM pg_logical_slot_peek_binary_changes('regress_ident', NULL, NULL) p, dts.frames(p.data) f
WHERE f->>'kind' NOT IN ('begin', 'commit');
-- the table filter takes quoted names
SELECT count(*) AS changes
FROM pg_logical_slot_peek_binary_changes('regress_ident', NULL, NULL,
       'include_tables', '"Odd Schema"."Mixed Case ""Table"" ☃"') p, dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete');
SELECT count(*) AS changes
FROM pg_logical_slot_peek_binary_changes('regress_ident', NULL, NULL,
       'include_tables', '"Odd Schema".*') p, dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete');
-- quoted names are case-sensitive, bare names are folded to lower case
SELECT count(*) AS changes
FROM pg_logical_slot_peek_binary_changes('regress_ident', NULL, NULL,
       'include_tables', '"odd schema".*, Odd.*') p, dts.frames(p.data) f
WHERE f->>'kind' IN ('insert', 'update', 'delete');
SELECT 'dropped' FROM pg_drop_replication_slot('regress_ident');
DROP SCHEMA "Odd Schema" CASCADE;

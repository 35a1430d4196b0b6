-- table_rules: row filters, kinds of change and column lists evaluated in
-- the plugin, as PostgreSQL 15 publications do them.
CREATE EXTENSION IF NOT EXISTS pg_dts;
-- the planner's row estimates for the peek and dts.frames() would make it
-- JIT-compile every query below (60 ms each)
SET jit = off;
CREATE SCHEMA regress_tr;
-- row filter on a non-key column: REPLICA IDENTITY FULL
CREATE TABLE regress_tr.orders (id int PRIMARY KEY, region text, amount int);
ALTER TABLE regress_tr.orders REPLICA IDENTITY FULL;
-- key-only filter under REPLICA IDENTITY DEFAULT
CREATE TABLE regress_tr.items (id int PRIMARY KEY, qty int);
-- column lists
CREATE TABLE regress_tr.wide (id int PRIMARY KEY, a text, b text, secret text);
ALTER TABLE regress_tr.wide REPLICA IDENTITY FULL;
-- an UPDATE turned INSERT takes its unchanged TOAST values from the old row
CREATE TABLE regress_tr.docs (id int PRIMARY KEY, status text, body text);
ALTER TABLE regress_tr.docs REPLICA IDENTITY FULL;
ALTER TABLE regress_tr.docs ALTER COLUMN body SET STORAGE EXTERNAL;
-- odd identifiers
CREATE SCHEMA "Ünï Schema";
CREATE TABLE "Ünï Schema"."Tab ""Le""" ("Id" int PRIMARY KEY, "Qty Ä" int, "UPPER" text);
ALTER TABLE "Ünï Schema"."Tab ""Le""" REPLICA IDENTITY FULL;
CREATE FUNCTION regress_tr.is_big(int) RETURNS bool
LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 100';
-- the frames of the slot, decoded with the given options
CREATE FUNCTION pg_temp.changes(VARIADIC opts text[])
RETURNS TABLE (kind text, tbl text, old jsonb, new jsonb, extra jsonb)
LANGUAGE sql AS $$
  SELECT f->>'kind', (f->>'schema') || '.' || (f->>'table'), f->'old', f->'new',
         CASE f->>'kind'
           WHEN 'relation' THEN (SELECT jsonb_agg(c->>'name') FROM jsonb_array_elements(f->'columns') c)
           WHEN 'truncate' THEN f->'relations'
           ELSE f->'unchanged_toast' END
  FROM pg_logical_slot_peek_binary_changes('regress_tr', NULL, NULL, VARIADIC opts) p,
       dts.frames(p.data) f
  WHERE f->>'kind' NOT IN ('begin', 'commit')
$$;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_tr', 'pg_dts');

INSERT INTO regress_tr.orders VALUES (1, 'EU', 10), (2, 'US', 20), (3, 'EU', 30);
UPDATE regress_tr.orders SET region = 'US' WHERE id = 1;	-- leaves the filter
UPDATE regress_tr.orders SET region = 'EU' WHERE id = 2;	-- enters it
UPDATE regress_tr.orders SET amount = 31 WHERE id = 3;		-- stays in
UPDATE regress_tr.orders SET amount = 11 WHERE id = 1;		-- stays out
DELETE FROM regress_tr.orders WHERE id IN (1, 3);
INSERT INTO regress_tr.items VALUES (5, 1), (15, 3);
UPDATE regress_tr.items SET qty = 2;
UPDATE regress_tr.items SET id = 20 WHERE id = 15;	-- key change, in to in
UPDATE regress_tr.items SET id = 8 WHERE id = 5;	-- out to out
UPDATE regress_tr.items SET id = 12 WHERE id = 8;	-- out to in
UPDATE regress_tr.items SET id = 9 WHERE id = 20;	-- in to out
DELETE FROM regress_tr.items;
INSERT INTO regress_tr.wide VALUES (1, 'a1', 'b1', 's1');
UPDATE regress_tr.wide SET a = 'a2', secret = 's2';
DELETE FROM regress_tr.wide;
INSERT INTO regress_tr.docs
  SELECT 1, 'draft', string_agg(md5(i::text), '') FROM generate_series(1, 100) i;
UPDATE regress_tr.docs SET status = 'final';
INSERT INTO "Ünï Schema"."Tab ""Le""" VALUES (1, 1, 'x'), (2, 2, 'y');
TRUNCATE regress_tr.items, regress_tr.wide;

-- row filter on a REPLICA IDENTITY FULL table: updates move rows in and
-- out (as an INSERT of the new row, a DELETE of the old) or are dropped
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "orders", "where": "region = ''EU''"}]')
WHERE kind <> 'relation';
-- a filter on the key under REPLICA IDENTITY DEFAULT: an update that keeps
-- its key is judged on its new row, one that changes it on both
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "items", "where": "id > 10", "dml": ["insert", "update", "delete"]}]')
WHERE kind <> 'relation';
-- "dml": only some kinds; with a filter, it applies to the kind of change
-- before the filter turns an UPDATE into an INSERT or a DELETE
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "orders", "dml": ["insert"]}]')
WHERE kind <> 'relation';
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "orders", "dml": ["delete"]}]')
WHERE kind <> 'relation';
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "orders", "where": "region = ''EU''", "dml": ["update"]}]')
WHERE kind <> 'relation';
-- truncate left out for items: the TRUNCATE frame names wide alone
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "items", "dml": ["insert", "update", "delete"]},
    {"schema": "regress_tr", "table": "wide"}]')
WHERE kind IN ('truncate', 'relation');
-- "columns": the others are absent from the RELATION frame and from every
-- old and new row; the key is always sent
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "wide", "columns": ["a"]}]')
WHERE kind <> 'truncate';
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "wide", "columns": []}]')
WHERE kind <> 'truncate';
-- the UPDATE that becomes an INSERT carries the whole new row, its
-- unchanged TOASTed body taken from the old row
SELECT kind, tbl, new->>'status' AS status, length(new->>'body') AS body_length, extra
FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "docs", "where": "status = ''final''"}]')
WHERE kind <> 'relation';
-- without a filter the same UPDATE leaves the body out, as unchanged
SELECT kind, tbl, new->>'status' AS status, length(new->>'body') AS body_length, extra
FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "docs"}]')
WHERE kind <> 'relation';
-- a schema-wide rule, and a table rule that beats it
SELECT kind, tbl, count(*)
FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "dml": ["insert"]},
    {"schema": "regress_tr", "table": "orders", "dml": ["delete"]}]')
WHERE kind <> 'relation' GROUP BY 1, 2 ORDER BY 2, 1;
-- include_tables still applies: both must let a table through
SELECT kind, tbl, count(*)
FROM pg_temp.changes('include_tables', 'regress_tr.items',
  'table_rules', '[{"schema": "regress_tr", "dml": ["insert"]}]')
WHERE kind <> 'relation' GROUP BY 1, 2 ORDER BY 2, 1;
-- odd identifiers, given as the catalog has them
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "Ünï Schema", "table": "Tab \"Le\"", "where": "\"Qty Ä\" > 1 AND \"UPPER\" IS NOT NULL", "columns": ["Qty Ä"]}]');
SELECT count(*) AS case_sensitive FROM pg_temp.changes('table_rules',
  '[{"schema": "ünï schema"}]');

-- errors in the option, found at startup
\set SHOW_CONTEXT never
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr"');
SELECT * FROM pg_temp.changes('table_rules', '{"schema": "regress_tr"}');
SELECT * FROM pg_temp.changes('table_rules', '[]');
SELECT * FROM pg_temp.changes('table_rules', '["regress_tr"]');
SELECT * FROM pg_temp.changes('table_rules', '[{"table": "orders"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "tabel": "orders"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": 1}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": ""}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "dml": "insert"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "dml": ["insert", "upsert"]}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "dml": []}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "columns": ["a", "a"]}]');
SELECT * FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "orders"}, {"schema": "regress_tr"}, {"schema": "regress_tr", "table": "orders"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr"}, {"schema": "regress_tr"}]');
-- (the context of an error in a filter names the filter)
\set SHOW_CONTEXT errors
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "where": "id >"}]');
\set SHOW_CONTEXT never
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "where": "true; DROP TABLE regress_tr.orders"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "where": "true ORDER BY 1"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "where": "id IN (SELECT 1)"}]');
-- errors found when the table's first change is decoded (their context,
-- not shown, names the filter, the slot and the LSN of the change)
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "wide", "columns": ["a", "A"]}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "orders", "where": "nope > 1"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "orders", "where": "amount"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "orders", "where": "amount > random()"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "orders", "where": "now() > ''2000-01-01''"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "orders", "where": "regress_tr.is_big(amount)"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "orders", "where": "count(*) > 1"}]');
-- a non-key column under REPLICA IDENTITY DEFAULT, with updates or deletes
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "items", "where": "qty > 1"}]');
SELECT * FROM pg_temp.changes('table_rules', '[{"schema": "regress_tr", "table": "items", "where": "qty > 1", "dml": ["delete"]}]');
\set SHOW_CONTEXT errors
-- ... which is fine when only inserts (and truncates) are synced
SELECT kind, tbl, new FROM pg_temp.changes('table_rules',
  '[{"schema": "regress_tr", "table": "items", "where": "qty > 1", "dml": ["insert", "truncate"]}]')
WHERE kind <> 'relation';

SELECT 'dropped' FROM pg_drop_replication_slot('regress_tr');
DROP SCHEMA regress_tr CASCADE;
DROP SCHEMA "Ünï Schema" CASCADE;

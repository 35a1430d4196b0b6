-- include_tables / exclude_tables: filtered changes never leave the server,
-- and a transaction with nothing left has no BEGIN or COMMIT either.
CREATE EXTENSION IF NOT EXISTS pg_dts;
CREATE SCHEMA regress_sales;
CREATE TABLE regress_sales.orders (id int PRIMARY KEY);
CREATE TABLE regress_sales.lines (id int PRIMARY KEY);
CREATE TABLE public.regress_other (id int PRIMARY KEY);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_filter', 'pg_dts');
INSERT INTO regress_sales.orders VALUES (1);
INSERT INTO regress_sales.lines VALUES (1);
INSERT INTO public.regress_other VALUES (1);
BEGIN;
INSERT INTO regress_sales.orders VALUES (2);
INSERT INTO public.regress_other VALUES (2);
COMMIT;

CREATE FUNCTION pg_temp.decoded(VARIADIC opts text[]) RETURNS text
LANGUAGE sql AS $$
  SELECT string_agg(CASE WHEN f->>'kind' = 'insert'
                         THEN (f->>'schema') || '.' || (f->>'table') || ':' || (f->'new'->>'id')
                         ELSE f->>'kind' END, ' ')
  FROM pg_logical_slot_peek_binary_changes('regress_filter', NULL, NULL, VARIADIC opts) p,
       dts.frames(p.data) f
  WHERE f->>'kind' <> 'relation'
$$;
SELECT pg_temp.decoded(VARIADIC '{}'::text[]) AS all_tables;
SELECT pg_temp.decoded('include_tables', 'regress_sales.orders') AS one_table;
SELECT pg_temp.decoded('include_tables', 'regress_sales.*') AS one_schema;
SELECT pg_temp.decoded('include_tables', 'regress_sales.*', 'exclude_tables', 'regress_sales.lines') AS schema_minus_table;
SELECT pg_temp.decoded('exclude_tables', '*.orders, public.regress_other') AS excluded;
-- the bytes that cross the wire shrink accordingly
SELECT (SELECT sum(octet_length(data)) FROM pg_logical_slot_peek_binary_changes('regress_filter', NULL, NULL,
          'include_tables', 'regress_sales.orders')) <
       (SELECT sum(octet_length(data)) FROM pg_logical_slot_peek_binary_changes('regress_filter', NULL, NULL))
       AS fewer_bytes;
SELECT 'dropped' FROM pg_drop_replication_slot('regress_filter');
DROP SCHEMA regress_sales CASCADE;
DROP TABLE public.regress_other;

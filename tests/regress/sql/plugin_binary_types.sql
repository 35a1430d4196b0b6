-- binary_types: under format=text, columns of the named built-in types
-- are sent in their binary encoding (a Kafka sink renders them itself).
-- The decoded values must equal format=text's for every named type, edge
-- values included; a domain over a named type stays text; unknown names
-- are an error that lists the accepted ones.
CREATE EXTENSION IF NOT EXISTS pg_dts;
\set VERBOSITY default
SET timezone = 'UTC';
SET synchronous_commit = on;
CREATE DOMAIN regress_bt_tz AS timestamptz;
CREATE TABLE regress_bt (
    id int PRIMARY KEY, i2 int2, i8 int8, o oid, f4 float4, f8 float8,
    b bool, c "char", d date, t time, ttz timetz, ts timestamp,
    tz timestamptz, n numeric, by bytea, u uuid, iv interval, txt text);
CREATE TABLE regress_bt_domain (id int PRIMARY KEY, dtz regress_bt_tz);
CREATE TABLE regress_bt_plain (id int PRIMARY KEY, dtz timestamptz);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_bt', 'pg_dts');
INSERT INTO regress_bt VALUES
 (1, 1, 1, 1, 1.5, 0.1, true, 'a', '2024-02-29', '23:59:59.999999',
  '12:00:00+05:30', '2024-06-30 10:34:56.789', '2024-06-30 10:34:56.789+00',
  -123.4500, '\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day', 'x'),
 (2, -32768, -9223372036854775808, 4294967295, 'NaN', '-Infinity', false,
  E'\\351', '0044-03-15 BC', '00:00', '00:00:00-15:59', '0044-03-15 12:00:00.5 BC',
  '-infinity', 'NaN', '\x', '00000000-0000-0000-0000-000000000000', '-1 mon', ''),
 (3, 32767, 9223372036854775807, 0, 3.4e38, 1e-300, NULL, ' ', 'infinity',
  '24:00', '24:00:00+15:59', 'infinity', 'infinity', 'Infinity', NULL, NULL,
  NULL, NULL),
 (4, 0, 0, 0, '-0', 123456789.125, true, 'z', '-infinity', '12:34:56.5',
  '01:02:03.000004-00:00:30', '12345-06-30 12:00:00', '1999-12-31 23:59:59.999999+00',
  1e-20, decode('dedede', 'hex'), 'ffffffff-ffff-ffff-ffff-ffffffffffff', '0', 'y');
INSERT INTO regress_bt_domain VALUES (1, '2024-01-01 00:00:00+00');
INSERT INTO regress_bt_plain VALUES (1, '2024-01-01 00:00:00+00');

-- every value decodes to the same text as under format=text alone
CREATE FUNCTION pg_temp.changes(binary_types text)
RETURNS TABLE (id int, vals jsonb) LANGUAGE sql AS $$
    SELECT (f->'new'->>'id')::int, f->'new'
    FROM pg_logical_slot_peek_binary_changes('regress_bt', NULL, NULL,
             'format', 'text', 'binary_types', binary_types) p,
         dts.frames(p.data) f
    WHERE f->>'kind' = 'insert' AND f->>'table' = 'regress_bt'
$$;
SELECT t.id, k AS col, t.vals->>k AS text_value, b.vals->>k AS binary_types_value
FROM pg_temp.changes('') t
JOIN pg_temp.changes('int2, INT4,int8,oid,float4,float8,bool,char,date,time,timetz,timestamp,timestamptz,numeric,bytea,uuid') b USING (id),
     jsonb_object_keys(t.vals) k
WHERE (t.vals->k) IS DISTINCT FROM (b.vals->k)
ORDER BY 1, 2;
SELECT count(DISTINCT t.id) AS rows_compared, count(*) AS values_compared,
       count(*) FILTER (WHERE (t.vals->k) IS DISTINCT FROM (b.vals->k)) AS values_differing
FROM pg_temp.changes('') t
JOIN pg_temp.changes('int2, INT4,int8,oid,float4,float8,bool,char,date,time,timetz,timestamp,timestamptz,numeric,bytea,uuid') b USING (id),
     jsonb_object_keys(t.vals) k;

-- the binary encodings are smaller; a domain over a named type is not named
CREATE FUNCTION pg_temp.bytes(binary_types text, tbl text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT sum(length(p.data))
    FROM pg_logical_slot_peek_binary_changes('regress_bt', NULL, NULL,
             'format', 'text', 'binary_types', binary_types,
             'include_tables', 'public.' || tbl) p
$$;
SELECT pg_temp.bytes('timestamptz', 'regress_bt_plain') < pg_temp.bytes('', 'regress_bt_plain')
         AS plain_column_smaller,
       pg_temp.bytes('timestamptz', 'regress_bt_domain') = pg_temp.bytes('', 'regress_bt_domain')
         AS domain_column_unchanged;

-- errors
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_bt', NULL, NULL,
  'format', 'text', 'binary_types', 'int4,interval');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_bt', NULL, NULL,
  'format', 'text', 'binary_types', 'int4, ,int8');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_bt', NULL, NULL,
  'format', 'text', 'binary_types', 'regress_bt_tz');
SELECT 'dropped' FROM pg_drop_replication_slot('regress_bt');

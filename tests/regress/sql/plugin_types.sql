-- Every built-in scalar type, arrays, an enum, a composite and a domain:
-- decoded through dts.frames() in binary and in text format, each value
-- must equal the table's own text form.
CREATE EXTENSION IF NOT EXISTS pg_dts;
SET timezone = 'UTC';
SET extra_float_digits = 0;
CREATE TYPE regress_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE regress_pair AS (x int, label text);
CREATE DOMAIN regress_posint AS int CHECK (VALUE > 0);
CREATE TABLE regress_types (
    id int PRIMARY KEY,
    c_int2 int2, c_int4 int4, c_int8 int8, c_oid oid,
    c_numeric numeric, c_num_typmod numeric(12,2),
    c_float4 float4, c_float8 float8, c_money money,
    c_text text, c_varchar varchar(20), c_bpchar char(5), c_name name, c_char "char",
    c_bytea bytea, c_bool bool,
    c_date date, c_time time, c_timetz timetz, c_timestamp timestamp,
    c_timestamptz timestamptz, c_interval interval,
    c_uuid uuid, c_json json, c_jsonb jsonb,
    c_inet inet, c_cidr cidr, c_macaddr macaddr, c_bit bit(4), c_varbit varbit,
    c_point point, c_box box, c_tsvector tsvector, c_xml xml, c_int4range int4range,
    c_int_array int[], c_text_array text[],
    c_enum regress_mood, c_composite regress_pair, c_domain regress_posint
);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_types', 'pg_dts');

INSERT INTO regress_types VALUES
 (1, 32767, 2147483647, 9223372036854775807, 4294967295,
  123456789012345678901234567890.123456789, 1234567890.12,
  3.25, 2.5e300, 12.34,
  'it''s "quoted" ünïcødé ☃', 'varchar', 'ab', 'a name', 'x',
  '\x00010200ff'::bytea, true,
  '2024-02-29', '23:59:59.999999', '12:00:00+05:30', '2024-01-01 00:00:00.000001',
  '2024-06-30 12:34:56.789+02', '1 year 2 mons 3 days 04:05:06.789',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5, "x"], "b": null}', '{"k": {"n": 1}, "arr": [true, false]}',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', B'101',
  '(1.5,-2)', '((0,0),(1,1))', 'the quick brown fox', '<a>x</a>', '[1,10)',
  '{1,NULL,3}', '{"a b","c\"d",NULL}',
  'happy', ROW(7, 'seven'), 42),
 (2, -32768, -2147483648, -9223372036854775808, 0,
  'NaN', -0.01,
  'NaN', '-Infinity', -0.5,
  '', '', '', '', E'\\001',
  ''::bytea, false,
  'infinity', '00:00', '00:00-12', '-infinity',
  'infinity', '-178000000 years',
  '00000000-0000-0000-0000-000000000000', '[]', '"str"',
  '::1', '::/0', '00:00:00:00:00:00', B'0000', B'',
  '(0,0)', '((-1,-1),(1,1))', '', '<e/>', 'empty',
  '{}', '{}',
  'sad', ROW(NULL, NULL), 1),
 (3, 0, 0, 0, 1,
  'Infinity', 0,
  'Infinity', '-0', 0,
  E'line1\nline2\ttab\\back', 'x', 'abcde', 'Name', ' ',
  '\xdeadbeef'::bytea, NULL,
  '-infinity', '12:00', '24:00:00+00', 'infinity',
  '-infinity', '-1 day -00:00:01',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '{"nested": {"deep": [[]]}}', '{}',
  '2001:db8::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', B'1111', B'1',
  '(-1e10,1e-10)', '((1,2),(3,4))', 'a:1 b:2', NULL, '(,5]',
  '{{1,2},{3,4}}', '{"", "NULL"}',
  'ok', ROW(0, ''), 2147483647);

-- the decoded rows, one value per line, binary format
SELECT (f->'new'->>'id')::int AS id, col, val
FROM pg_logical_slot_peek_binary_changes('regress_types', NULL, NULL, 'format', 'binary') p,
     dts.frames(p.data) f, jsonb_each_text(f->'new') AS e(col, val)
WHERE f->>'kind' = 'insert'
ORDER BY 1, col;

-- every value equals the text its type's output function gives, in both
-- formats (format('%s') calls the output function; NULL stays NULL)
CREATE FUNCTION pg_temp.column_text(row_id int, col name) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT CASE WHEN num_nulls(%1$I) = 1 THEN NULL ELSE format(''%%s'', %1$I) END '
                   'FROM regress_types WHERE id = $1', col)
        INTO result USING row_id;
    RETURN result;
END $$;
CREATE TEMP TABLE expected_values AS
SELECT t.id, a.attname::text AS col, pg_temp.column_text(t.id, a.attname) AS val
FROM regress_types t, pg_attribute a
WHERE a.attrelid = 'regress_types'::regclass AND a.attnum > 0 AND NOT a.attisdropped;

SELECT fmt, count(*) AS values_compared,
       count(*) FILTER (WHERE d.val IS DISTINCT FROM x.val) AS mismatches
FROM (VALUES ('binary'), ('text')) AS m(fmt),
 LATERAL (SELECT (f->'new'->>'id')::int AS id, e.col, e.val
          FROM pg_logical_slot_peek_binary_changes('regress_types', NULL, NULL, 'format', m.fmt) p,
               dts.frames(p.data) f, jsonb_each_text(f->'new') AS e(col, val)
          WHERE f->>'kind' = 'insert') d
 FULL JOIN expected_values x USING (id, col)
GROUP BY fmt ORDER BY fmt;

-- any mismatch, listed (expected: none)
SELECT m.fmt, d.id, d.col, d.val AS decoded, x.val AS expected
FROM (VALUES ('binary'), ('text')) AS m(fmt),
 LATERAL (SELECT (f->'new'->>'id')::int AS id, e.col, e.val
          FROM pg_logical_slot_peek_binary_changes('regress_types', NULL, NULL, 'format', m.fmt) p,
               dts.frames(p.data) f, jsonb_each_text(f->'new') AS e(col, val)
          WHERE f->>'kind' = 'insert') d
 JOIN expected_values x USING (id, col)
WHERE d.val IS DISTINCT FROM x.val;

-- the RELATION frame: column names, types and key flags
SELECT c->>'name' AS name, c->>'type' AS type, c->>'key' AS key
FROM pg_logical_slot_peek_binary_changes('regress_types', NULL, NULL) p,
     dts.frames(p.data) f, jsonb_array_elements(f->'columns') c
WHERE f->>'kind' = 'relation' AND f->>'table' = 'regress_types';

SELECT 'dropped' FROM pg_drop_replication_slot('regress_types');
DROP TABLE regress_types;
DROP DOMAIN regress_posint;
DROP TYPE regress_pair;
DROP TYPE regress_mood;

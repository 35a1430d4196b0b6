-- jsonb and numeric values are written without fmgr (plugin/jsonb_text.c,
-- plugin/numeric_image.c): their decoded text must equal jsonb_out() and
-- numeric_out() for every shape, in both formats.
CREATE EXTENSION IF NOT EXISTS pg_dts;
CREATE TABLE regress_jn (id int PRIMARY KEY, j jsonb, n numeric);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_jn', 'pg_dts');
INSERT INTO regress_jn VALUES
 (1, '{}', 0),
 (2, '[]', -0.0),
 (3, 'null', 'NaN'),
 (4, 'true', 'Infinity'),
 (5, '"a scalar string"', '-Infinity'),
 (6, '-12.5e-3', 0.0001),
 (7, '{"quote\"back\\slash": "ctl\u0001\b\f\n\r\t end", "ünï": "☃ snow"}', -0.00000001),
 (8, '[1, "two", [3, [4, {"five": 5}]], {"": ""}, null, false]', 123456789012345678901234567890.000000000001),
 (9, (SELECT jsonb_object_agg('key' || i, i) FROM generate_series(1, 100) i), 1e300),
 (10, (SELECT jsonb_agg(repeat('x', i)) FROM generate_series(1, 70) i), -9999.9999),
 (11, '{"n": 1e100, "m": -0.000001, "big": 123456789012345678901234567890}', 100000000),
 (12, NULL, NULL),
 (13, '{"deep": {"deeper": {"deepest": [[[[[]]]]]}}}', 10000.0001),
 (14, (SELECT jsonb_build_object('long', repeat('y', 3000))), 2.5);
SELECT fmt, count(*) AS rows_compared,
       count(*) FILTER (WHERE (f->'new'->>'j') IS DISTINCT FROM t.j::text) AS jsonb_mismatches,
       count(*) FILTER (WHERE (f->'new'->>'n') IS DISTINCT FROM t.n::text) AS numeric_mismatches
FROM (VALUES ('binary'), ('text')) AS m(fmt),
 LATERAL pg_logical_slot_peek_binary_changes('regress_jn', NULL, NULL, 'format', m.fmt) p,
 LATERAL dts.frames(p.data) f
 JOIN regress_jn t ON t.id = (f->'new'->>'id')::int
WHERE f->>'kind' = 'insert'
GROUP BY fmt ORDER BY fmt;
-- a few decoded values as they come
SELECT (f->'new'->>'id')::int AS id, f->'new'->>'j' AS j, f->'new'->>'n' AS n
FROM pg_logical_slot_peek_binary_changes('regress_jn', NULL, NULL) p, dts.frames(p.data) f
WHERE f->>'kind' = 'insert' AND (f->'new'->>'id')::int IN (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13)
ORDER BY 1;
SELECT 'dropped' FROM pg_drop_replication_slot('regress_jn');
DROP TABLE regress_jn;

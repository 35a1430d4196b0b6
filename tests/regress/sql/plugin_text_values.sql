-- In the text format, timestamp, timestamptz and numeric values are
-- printed without their output functions (plugin/datetime_text.c,
-- plugin/numeric_image.c): a timestamp's text is made from the pattern of
-- the last one of its day.  Their decoded text must equal the output
-- functions' in every time zone and DateStyle, across zone transitions
-- (DST, 30-minute DST, offsets with seconds, a zone's first offset), BC
-- years, years past 9999 and microseconds, in ascending, descending and
-- shuffled order.
CREATE EXTENSION IF NOT EXISTS pg_dts;
SET timezone = 'UTC';
CREATE TABLE regress_tv (id int PRIMARY KEY, tz timestamptz, ts timestamp, n numeric);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_tv', 'pg_dts');

-- every 7 min 13.000017 s over three days around transitions, both ways
INSERT INTO regress_tv (id, tz, ts)
SELECT 100000 * z.k + 2 * s.i + d.dir,
       z.at + (CASE d.dir WHEN 0 THEN s.i ELSE 1200 - s.i END) * interval '433.000017 seconds',
       (z.at + s.i * interval '433.000017 seconds')::timestamp
FROM (VALUES (1, timestamptz '2024-03-09 12:00:00+00'),	-- US spring forward
             (2, timestamptz '2024-10-26 12:00:00+00'),	-- EU fall back
             (3, timestamptz '2024-04-05 12:00:00+00'),	-- Lord Howe (30 min)
             (4, timestamptz '1937-06-29 12:00:00+00'),	-- Amsterdam +00:19:32 -> +00:20
             (5, timestamptz '1883-11-17 12:00:00+00'),	-- New York LMT -> EST
             (6, timestamptz '0044-03-14 12:00:00+00 BC'),
             (7, timestamptz '12345-06-30 12:00:00+00'),
             (8, timestamptz '2000-01-01 00:00:00+00'),
             (9, timestamptz '1999-12-31 23:59:59.999999+00')) AS z(k, at),
     generate_series(0, 600) AS s(i), (VALUES (0), (1)) AS d(dir)
ORDER BY z.k, d.dir, s.i;
-- shuffled: a few days in random order, with repeats
INSERT INTO regress_tv (id, tz, ts)
SELECT 1000000 + i,
       timestamptz '2024-03-10 00:00:00+00' + ((i * 7919) % 1000) * interval '10 minutes 0.5 seconds',
       timestamp '1600-02-28 00:00:00' + ((i * 104729) % 997) * interval '1 hour 1.000001 seconds'
FROM generate_series(1, 1000) i ORDER BY i;
-- numerics of every shape, and the infinities
INSERT INTO regress_tv (id, tz, ts, n) VALUES
 (2000001, 'infinity', 'infinity', 0),
 (2000002, '-infinity', '-infinity', -0.5),
 (2000003, NULL, NULL, 'NaN'),
 (2000004, '2024-01-01', '2024-01-01', 'Infinity'),
 (2000005, '2024-01-01', '2024-01-01', '-Infinity'),
 (2000006, '2024-01-01', '2024-01-01', 0.0000000000000000000001),
 (2000007, '2024-01-01', '2024-01-01', 123456789012345678901234567890.000123),
 (2000008, '2024-01-01', '2024-01-01', 100000000),
 (2000009, '2024-01-01', '2024-01-01', -9999.9999),
 (2000010, '2024-01-01', '2024-01-01', 10000.00010000),
 (2000011, '2024-01-01', '2024-01-01', 0.1),
 (2000012, '2024-01-01', '2024-01-01', -1e-3),
 (2000013, '2024-01-01', '2024-01-01', 1e131071),
 (2000014, '2024-01-01', '2024-01-01', round(pi()::numeric, 1000)),
 (2000015, '2024-01-01', '2024-01-01', 7.00),
 (2000016, '2024-01-01', '2024-01-01', -123.456e-20);
INSERT INTO regress_tv (id, n)
SELECT 3000000 + i, ((i * 7919) % 200001 - 100000)::numeric / (10 ^ (i % 9))::numeric
FROM generate_series(1, 2000) i;

-- mismatches per zone and DateStyle (expected: none)
CREATE FUNCTION pg_temp.mismatches(zone text, style text,
	OUT compared bigint, OUT tz_bad bigint, OUT ts_bad bigint, OUT n_bad bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('timezone', zone, true);
    PERFORM set_config('datestyle', style, true);
    SELECT count(*),
           count(*) FILTER (WHERE (f->'new'->>'tz') IS DISTINCT FROM t.tz::text),
           count(*) FILTER (WHERE (f->'new'->>'ts') IS DISTINCT FROM t.ts::text),
           count(*) FILTER (WHERE (f->'new'->>'n') IS DISTINCT FROM t.n::text)
    INTO compared, tz_bad, ts_bad, n_bad
    FROM pg_logical_slot_peek_binary_changes('regress_tv', NULL, NULL, 'format', 'text') p,
         dts.frames(p.data) f
         JOIN regress_tv t ON t.id = (f->'new'->>'id')::int
    WHERE f->>'kind' = 'insert';
END $$;
SELECT z.zone, s.style, m.*
FROM (VALUES ('UTC'), ('America/New_York'), ('Europe/Amsterdam'), ('Australia/Lord_Howe'),
             ('Asia/Kathmandu'), ('Pacific/Chatham'), ('-03:30')) AS z(zone),
     (VALUES ('ISO, MDY'), ('SQL, DMY'), ('Postgres, MDY'), ('German')) AS s(style),
     LATERAL (SELECT * FROM pg_temp.mismatches(z.zone, s.style)) m
ORDER BY 1, 2;

-- a few values as they come
BEGIN;
SET LOCAL timezone = 'America/New_York';
SET LOCAL datestyle = 'ISO, MDY';
SELECT (f->'new'->>'id')::int AS id, f->'new'->>'tz' AS tz, f->'new'->>'ts' AS ts, f->'new'->>'n' AS n
FROM pg_logical_slot_peek_binary_changes('regress_tv', NULL, NULL, 'format', 'text') p,
     dts.frames(p.data) f
WHERE f->>'kind' = 'insert' AND (f->'new'->>'id')::int IN
    (100000 + 2 * 100, 100000 + 2 * 101, 500000 + 2 * 0, 600000, 600001, 700000,
     2000001, 2000002, 2000006, 2000007, 2000010, 2000012, 2000015)
ORDER BY 1;
COMMIT;

SELECT 'dropped' FROM pg_drop_replication_slot('regress_tv');
DROP TABLE regress_tv;

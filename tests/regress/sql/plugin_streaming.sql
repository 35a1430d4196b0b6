-- A large transaction streamed while in progress (streaming option), with
-- a subtransaction that aborts; and the same transaction unstreamed.
CREATE EXTENSION IF NOT EXISTS pg_dts;
SET logical_decoding_work_mem = '64kB';
CREATE TABLE regress_stream (id int PRIMARY KEY, payload text);
SELECT 'init' FROM pg_create_logical_replication_slot('regress_stream', 'pg_dts');
BEGIN;
INSERT INTO regress_stream SELECT i, repeat('p', 100) FROM generate_series(1, 3000) i;
SAVEPOINT s1;
INSERT INTO regress_stream SELECT i, 'aborted' FROM generate_series(3001, 3500) i;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO regress_stream SELECT i, 'kept' FROM generate_series(3501, 4000) i;
COMMIT;
BEGIN;
INSERT INTO regress_stream SELECT i, repeat('q', 100) FROM generate_series(5001, 8000) i;
ROLLBACK;
-- an abort record is not flushed at once; a commit that wrote WAL flushes it
CREATE TEMP TABLE flush_wal (x int);

-- streamed: several stream blocks, then stream_commit; the aborted
-- subtransaction and the rolled back transaction are reported as aborts
CREATE TEMP TABLE streamed AS
SELECT row_number() OVER () AS n, f
FROM pg_logical_slot_peek_binary_changes('regress_stream', NULL, NULL, 'streaming', 'on') p,
     dts.frames(p.data) f;
SELECT count(*) FILTER (WHERE f->>'kind' = 'stream_start') > 1 AS several_blocks,
       count(*) FILTER (WHERE f->>'kind' = 'stream_start') =
         count(*) FILTER (WHERE f->>'kind' = 'stream_stop') AS blocks_balanced,
       count(*) FILTER (WHERE f->>'kind' = 'stream_commit') AS stream_commits,
       count(*) FILTER (WHERE f->>'kind' = 'stream_abort') >= 1 AS has_aborts,
       count(*) FILTER (WHERE f->>'kind' = 'begin') AS begins,
       count(*) FILTER (WHERE f->>'kind' = 'xid') > 0 AS has_subxact_switch
FROM streamed;
-- every stream_start's first_segment flag is true exactly once per xid
SELECT count(*) AS first_segments
FROM streamed WHERE f->>'kind' = 'stream_start' AND (f->>'first_segment')::bool;
-- inserts of the committed transaction minus the aborted subtransaction
-- (a consumer drops the subtransaction on its stream_abort)
WITH aborted AS (
  SELECT (f->>'subxid') AS subxid FROM streamed WHERE f->>'kind' = 'stream_abort'),
owner AS (
  SELECT n, f, (SELECT s.f->>'xid' FROM streamed s
                WHERE s.n <= streamed.n AND s.f->>'kind' IN ('stream_start', 'xid')
                ORDER BY s.n DESC LIMIT 1) AS xid
  FROM streamed WHERE f->>'kind' = 'insert')
SELECT count(*) AS inserts_kept, min((f->'new'->>'id')::int), max((f->'new'->>'id')::int),
       count(*) FILTER (WHERE f->'new'->>'payload' = 'aborted') AS aborted_kept
FROM owner WHERE xid NOT IN (SELECT subxid FROM aborted);

-- not streamed: one ordinary transaction, the aborted parts never decoded
SELECT count(*) FILTER (WHERE f->>'kind' = 'insert') AS inserts,
       count(*) FILTER (WHERE f->>'kind' LIKE 'stream%') AS stream_frames,
       count(*) FILTER (WHERE f->>'kind' = 'begin') AS begins
FROM pg_logical_slot_peek_binary_changes('regress_stream', NULL, NULL) p,
     dts.frames(p.data) f;

-- messages stay bounded: no message is much bigger than batch_bytes
SELECT max(octet_length(data)) < 4096 + 1024 AS bounded, count(*) > 10 AS batched
FROM pg_logical_slot_peek_binary_changes('regress_stream', NULL, NULL, 'batch_bytes', '4096');
-- batch_bytes = 1: one frame per message
SELECT count(*) AS messages_with_several_frames
FROM pg_logical_slot_peek_binary_changes('regress_stream', NULL, NULL, 'batch_bytes', '1') p
WHERE (SELECT count(*) FROM dts.frames(p.data)) > 1
  AND (SELECT count(*) FROM dts.frames(p.data) f WHERE f->>'kind' IN ('insert')) > 1;

SELECT 'dropped' FROM pg_drop_replication_slot('regress_stream');
DROP TABLE regress_stream;

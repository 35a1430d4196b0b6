-- Unknown, repeated and malformed options are errors before any decoding.
CREATE EXTENSION IF NOT EXISTS pg_dts;
\set VERBOSITY default
SELECT 'init' FROM pg_create_logical_replication_slot('regress_options', 'pg_dts');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'nonsense', '1');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'format', 'binary', 'format', 'text');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'format', 'xml');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'batch_bytes', '0');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'batch_bytes', '12abc');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'streaming', 'maybe');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'origin', 'some');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'include_tables', 'no_schema');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'exclude_tables', '"unterminated.t');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'message_prefixes', ' , ');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'proto_version', '2');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL, 'format', NULL);
-- a text-returning peek refuses the binary plugin
SELECT count(*) FROM pg_logical_slot_peek_changes('regress_options', NULL, NULL);
-- valid options are accepted
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('regress_options', NULL, NULL,
  'proto_version', '1', 'format', 'text', 'batch_bytes', '1000', 'streaming', 'on',
  'origin', 'none', 'messages', 'true', 'message_prefixes', 'a,b',
  'include_tables', 'public.*', 'exclude_tables', 'public.x');
SELECT 'dropped' FROM pg_drop_replication_slot('regress_options');

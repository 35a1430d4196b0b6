--
-- heartbeat_slots: dts.slots over a slot and its heartbeat row, and the
-- heartbeat coming back through the slot.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_dts;
RESET client_min_messages;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_pg_dts_hb',
													  'test_decoding');
SELECT 'init' FROM pg_create_physical_replication_slot('regress_pg_dts_phys',
													   true);

-- a slot without a heartbeat row
SELECT slot_name, plugin, slot_type, database = current_database() AS this_db,
	   active, active_pid, last_heartbeat, heartbeat_age
  FROM dts.slots
 WHERE slot_name = 'regress_pg_dts_hb';

-- what the shipper does every few seconds
INSERT INTO public.dts_postgres_heartbeat (slot_name, task_name, beat_lsn)
VALUES ('regress_pg_dts_hb', 'regress_task', pg_current_wal_lsn());
UPDATE public.dts_postgres_heartbeat
   SET beat_time = now(), beat_lsn = pg_current_wal_lsn(), seq = seq + 1
 WHERE slot_name = 'regress_pg_dts_hb';

SELECT s.slot_name, s.plugin, s.slot_type,
	   s.database = current_database() AS this_db,
	   s.active, s.active_pid,
	   s.restart_lsn IS NOT NULL AS has_restart_lsn,
	   s.confirmed_flush_lsn >= s.restart_lsn AS confirmed_after_restart,
	   s.retained_wal_bytes > 0 AS retains_wal,
	   s.lag_bytes > 0 AS lags,
	   s.lag_bytes <= s.retained_wal_bytes AS lag_within_retained,
	   s.wal_status,
	   s.last_heartbeat = h.beat_time AS heartbeat_shown,
	   s.heartbeat_age = now() - h.beat_time AS age_shown
  FROM dts.slots AS s
  JOIN public.dts_postgres_heartbeat AS h USING (slot_name)
 WHERE s.slot_name = 'regress_pg_dts_hb';

-- a physical slot has no plugin, no confirmed position and no lag
SELECT slot_name, plugin, slot_type, database, confirmed_flush_lsn, lag_bytes,
	   retained_wal_bytes >= 0 AS retains_wal, last_heartbeat
  FROM dts.slots
 WHERE slot_name = 'regress_pg_dts_phys';

-- the heartbeat comes back through the slot (its changing values cut off)
SELECT confirmed_flush_lsn AS confirmed_before
  FROM dts.slots WHERE slot_name = 'regress_pg_dts_hb' \gset
SELECT split_part(data, ' beat_time', 1) AS change
  FROM pg_logical_slot_get_changes('regress_pg_dts_hb', NULL, NULL,
								   'include-xids', '0')
 WHERE data LIKE 'table public.dts_postgres_heartbeat:%';

-- consuming the changes moved the slot forward
SELECT confirmed_flush_lsn > :'confirmed_before' AS advanced,
	   lag_bytes >= 0 AS lag_not_negative
  FROM dts.slots
 WHERE slot_name = 'regress_pg_dts_hb';

-- clean up
SELECT pg_drop_replication_slot('regress_pg_dts_hb');
SELECT pg_drop_replication_slot('regress_pg_dts_phys');
DELETE FROM public.dts_postgres_heartbeat
 WHERE slot_name = 'regress_pg_dts_hb';
SELECT count(*) FROM dts.slots WHERE slot_name LIKE 'regress\_pg\_dts\_%';

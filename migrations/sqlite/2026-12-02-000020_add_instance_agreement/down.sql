DROP INDEX haier_sync_instances_live_heartbeat;
ALTER TABLE haier_sync_instances DROP COLUMN config_hash;

ALTER TABLE haier_sync_instances DROP COLUMN client_stats;

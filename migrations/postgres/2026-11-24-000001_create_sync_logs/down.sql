DROP TABLE haier_sync_instances;
DROP TABLE haier_sync_logs;

-- The daemon's Haier client counters (requests, errors, 429s, retries per operation) as JSON,
-- written with each heartbeat so that `haier-sync status` can show them.
ALTER TABLE haier_sync_instances ADD COLUMN client_stats TEXT;

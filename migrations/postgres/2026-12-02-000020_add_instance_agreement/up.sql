-- What each daemon runs: the MD5 of its jobs.toml bytes (hex; a fingerprint to compare, not a
-- seal), written at start and on each reload, so that `haier-sync status` warns when the
-- instances disagree. NULL for rows written by an older version.
ALTER TABLE haier_sync_instances ADD COLUMN config_hash TEXT;
-- The heartbeat check of every live daemon (is any daemon silent for three beats?) reads this.
CREATE INDEX haier_sync_instances_live_heartbeat ON haier_sync_instances (heartbeat_at)
    WHERE stopped_at IS NULL;

CREATE TABLE haier_sync_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_name TEXT NOT NULL,
    sync_type TEXT NOT NULL CHECK (sync_type IN ('products', 'prices', 'stock', 'logistics', 'order', 'manual')),
    status TEXT NOT NULL CHECK (status IN ('running', 'success', 'partial', 'failed', 'interrupted', 'skipped')),
    message TEXT,
    total_count BIGINT NOT NULL DEFAULT 0,
    success_count BIGINT NOT NULL DEFAULT 0,
    failed_count BIGINT NOT NULL DEFAULT 0,
    started_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    scheduled_for TIMESTAMP,
    "trigger" TEXT NOT NULL DEFAULT 'manual' CHECK ("trigger" IN ('schedule', 'manual', 'catch_up')),
    instance TEXT NOT NULL DEFAULT ''
);
-- Latest runs of a job.
CREATE INDEX haier_sync_logs_job_started ON haier_sync_logs (job_name, started_at DESC);
-- Failures (or any status) by time.
CREATE INDEX haier_sync_logs_status_started ON haier_sync_logs (status, started_at DESC);
CREATE INDEX haier_sync_logs_started ON haier_sync_logs (started_at DESC);
-- One row per job and fire time, whichever instance fires it first: scheduled runs happen once.
CREATE UNIQUE INDEX haier_sync_logs_job_fire_time ON haier_sync_logs (job_name, scheduled_for) WHERE scheduled_for IS NOT NULL;

-- Daemons that are (or were) running against this database, for `status` and crash recovery.
CREATE TABLE haier_sync_instances (
    instance TEXT PRIMARY KEY NOT NULL,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL,
    stopped_at TIMESTAMP
);

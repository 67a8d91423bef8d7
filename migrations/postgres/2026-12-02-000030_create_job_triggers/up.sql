-- Run-now requests (`haier-sync trigger JOB`). A live daemon that schedules the job claims a
-- pending row once (a guarded UPDATE on state and claimed_by), runs the job with
-- trigger = manual, and records how the request ended; sync_log_id names the run's row in
-- haier_sync_logs (no foreign key: pruning the sync log leaves the requests alone).
CREATE TABLE haier_job_triggers (
    id BIGSERIAL PRIMARY KEY,
    job_name TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    requested_by TEXT NOT NULL,
    run_if_paused BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'finished', 'refused', 'failed', 'expired')),
    claimed_by TEXT,
    claimed_at TIMESTAMP,
    sync_log_id BIGINT,
    finished_at TIMESTAMP,
    message TEXT
);
-- The daemons' poll reads only the open requests.
CREATE INDEX haier_job_triggers_open ON haier_job_triggers (state, id) WHERE state IN ('pending', 'running');

-- Jobs an operator paused (`haier-sync pause`): a row whose resumed_at is null pauses the job on
-- every daemon. A resumed job keeps its row (who resumed it and when) until it is paused again.
CREATE TABLE haier_job_pauses (
    job_name TEXT PRIMARY KEY NOT NULL,
    paused_by TEXT NOT NULL,
    paused_at TIMESTAMP NOT NULL,
    reason TEXT NOT NULL,
    resumed_by TEXT,
    resumed_at TIMESTAMP,
    catch_up_requested BOOLEAN NOT NULL DEFAULT FALSE
);

-- Who changed what with a command (`haier-sync audit` lists it): the OS user and host, the
-- command, its arguments as JSON with secrets masked, and the outcome.
CREATE TABLE haier_audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    os_user TEXT NOT NULL,
    host TEXT NOT NULL,
    command TEXT NOT NULL,
    arguments TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
    detail TEXT
);
CREATE INDEX haier_audit_log_at ON haier_audit_log (at DESC);

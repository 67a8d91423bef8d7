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

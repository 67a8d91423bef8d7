-- Fires of a scheduled job that passed while no daemon ran (`haier-sync status` and /metrics
-- show them): one row per job, the newest gap found by a daemon at its start. `caught_up_count`
-- of them were run late with trigger = catch_up; the rest were skipped.
CREATE TABLE haier_job_missed_fires (
    job_name TEXT PRIMARY KEY NOT NULL,
    missed_count BIGINT NOT NULL CHECK (missed_count >= 1),
    caught_up_count BIGINT NOT NULL CHECK (caught_up_count >= 0 AND caught_up_count <= missed_count),
    first_missed_at TIMESTAMP NOT NULL,
    last_missed_at TIMESTAMP NOT NULL CHECK (last_missed_at >= first_missed_at),
    detected_at TIMESTAMP NOT NULL,
    detected_by TEXT NOT NULL
);

-- Retention: every prune of old rows (`haier-sync prune`, or the daemon's daily one) is one row
-- here, with what it deleted per kind. It is also the record of the last prune that lets only
-- one of several daemons prune each day:
--   daily_seq: 1, 2, 3 … for the daemons' daily prunes (NULL for a prune by hand); a daemon
--              claims the next number, so two daemons deciding at once claim it once.
--   counts:    the rows deleted per kind, as JSON (NULL while running, or if it failed early).
CREATE TABLE haier_retention_prunes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    "trigger" TEXT NOT NULL CHECK ("trigger" IN ('schedule', 'manual')),
    daily_seq BIGINT UNIQUE,
    instance TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    outcome TEXT NOT NULL CHECK (outcome IN ('running', 'done', 'stopped', 'failed')),
    deleted BIGINT NOT NULL DEFAULT 0,
    counts TEXT,
    message TEXT
);
CREATE INDEX haier_retention_prunes_started ON haier_retention_prunes (started_at DESC);

-- What a prune looks rows up by: callbacks by the time they came, finished orders by status and
-- the time of their last change.
CREATE INDEX haier_order_events_received ON haier_order_events (received_at);
CREATE INDEX haier_order_outbox_finished ON haier_order_outbox (status, updated_at);

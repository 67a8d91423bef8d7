-- Callbacks that name no order, or several, are kept as `unmatched` (was `unknown_order`) so an
-- operator can attach them to the right order; the outcome gets a CHECK. Each callback also
-- records how far its TimeStamp was from the receiver's clock and Haier's order number.
--   clock_skew_secs: TimeStamp minus the time it was received, in seconds (negative: the
--                    TimeStamp is in the past); NULL when it is missing or unreadable
--   ext_order_no:    Data.ExtOrderNo, Haier's order number, when given
--   attached_at:     when an operator attached this unmatched callback to an order
CREATE TABLE haier_order_events_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT,
    method TEXT,
    platform_order_no TEXT,
    state TEXT,
    outcome TEXT NOT NULL
        CHECK (outcome IN ('applied', 'duplicate', 'rejected', 'unmatched', 'ignored')),
    detail TEXT,
    -- The form fields as received, as JSON (Sign included; it is not a secret).
    raw TEXT NOT NULL,
    -- Hash of Method and Data: a replayed callback is recognised and not applied twice.
    fingerprint TEXT,
    received_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    clock_skew_secs BIGINT,
    ext_order_no TEXT,
    attached_at TIMESTAMP
);
INSERT INTO haier_order_events_new
    (id, so_id, method, platform_order_no, state, outcome, detail, raw, fingerprint, received_at)
SELECT id, so_id, method, platform_order_no, state,
       CASE WHEN outcome = 'unknown_order' THEN 'unmatched' ELSE outcome END,
       detail, raw, fingerprint, received_at
FROM haier_order_events;
DROP TABLE haier_order_events;
ALTER TABLE haier_order_events_new RENAME TO haier_order_events;
CREATE INDEX haier_order_events_so_id ON haier_order_events (so_id, received_at);
CREATE INDEX haier_order_events_fingerprint ON haier_order_events (fingerprint);
CREATE INDEX haier_order_events_outcome ON haier_order_events (outcome);

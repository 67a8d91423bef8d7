CREATE TABLE haier_order_events_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT,
    method TEXT,
    platform_order_no TEXT,
    state TEXT,
    -- applied | duplicate | rejected | unknown_order | ignored
    outcome TEXT NOT NULL,
    detail TEXT,
    raw TEXT NOT NULL,
    fingerprint TEXT,
    received_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO haier_order_events_old
    (id, so_id, method, platform_order_no, state, outcome, detail, raw, fingerprint, received_at)
SELECT id, so_id, method, platform_order_no, state,
       CASE WHEN outcome = 'unmatched' THEN 'unknown_order' ELSE outcome END,
       detail, raw, fingerprint, received_at
FROM haier_order_events;
DROP TABLE haier_order_events;
ALTER TABLE haier_order_events_old RENAME TO haier_order_events;
CREATE INDEX haier_order_events_so_id ON haier_order_events (so_id, received_at);
CREATE INDEX haier_order_events_fingerprint ON haier_order_events (fingerprint);

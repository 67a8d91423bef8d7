-- The transactional outbox: the shop inserts a row in the same transaction as its own order
-- change; haier-sync pushes it to YLH exactly once.
--   INSERT INTO haier_order_outbox (so_id, online_no, payload) VALUES (?, ?, ?);
CREATE TABLE haier_order_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT NOT NULL UNIQUE,
    online_no TEXT NOT NULL,
    -- The order as JSON in YLH's push format.
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'pushed', 'confirmed', 'refused', 'cancelled', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    locked_by TEXT,
    locked_until TIMESTAMP,
    last_error TEXT,
    haier_order_no TEXT,
    pushed_at TIMESTAMP,
    confirmed_at TIMESTAMP,
    delivered_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX haier_order_outbox_due ON haier_order_outbox (status, next_attempt_at);
CREATE INDEX haier_order_outbox_online_no ON haier_order_outbox (online_no);
CREATE INDEX haier_order_outbox_haier_order_no ON haier_order_outbox (haier_order_no);

-- Every callback Haier sent, valid or not, with what was done about it.
CREATE TABLE haier_order_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT,
    method TEXT,
    platform_order_no TEXT,
    state TEXT,
    -- applied | duplicate | rejected | unknown_order | ignored
    outcome TEXT NOT NULL,
    detail TEXT,
    -- The form fields as received, as JSON (Sign included; it is not a secret).
    raw TEXT NOT NULL,
    -- Hash of Method and Data: a replayed callback is recognised and not applied twice.
    fingerprint TEXT,
    received_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX haier_order_events_so_id ON haier_order_events (so_id, received_at);
CREATE INDEX haier_order_events_fingerprint ON haier_order_events (fingerprint);

DROP TABLE haier_order_lines;
CREATE TABLE haier_order_outbox_prev (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT NOT NULL UNIQUE,
    online_no TEXT NOT NULL,
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
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    cancel_state TEXT
        CHECK (cancel_state IN ('requested', 'local', 'full', 'partial', 'refused')),
    cancel_detail TEXT,
    out_of_stock_at TIMESTAMP
);
INSERT INTO haier_order_outbox_prev (
    id, so_id, online_no, payload, status, attempts, next_attempt_at, locked_by, locked_until,
    last_error, haier_order_no, pushed_at, confirmed_at, delivered_at, created_at, updated_at,
    cancel_state, cancel_detail, out_of_stock_at)
SELECT
    id, so_id, online_no, payload,
    CASE status WHEN 'out_of_stock' THEN 'confirmed' WHEN 'returned' THEN 'cancelled' ELSE status END,
    attempts, next_attempt_at, locked_by, locked_until,
    last_error, haier_order_no, pushed_at, confirmed_at, delivered_at, created_at, updated_at,
    CASE cancel_state WHEN 'partly_cancelled' THEN 'partial' WHEN 'partly_returned' THEN 'partial'
                      WHEN 'returned' THEN 'full' ELSE cancel_state END,
    cancel_detail, out_of_stock_at
FROM haier_order_outbox;
DROP TABLE haier_order_outbox;
ALTER TABLE haier_order_outbox_prev RENAME TO haier_order_outbox;
CREATE INDEX haier_order_outbox_due ON haier_order_outbox (status, next_attempt_at);
CREATE INDEX haier_order_outbox_online_no ON haier_order_outbox (online_no);
CREATE INDEX haier_order_outbox_haier_order_no ON haier_order_outbox (haier_order_no);

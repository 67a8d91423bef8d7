-- An order's lifecycle after Haier took it: the outbox learns the statuses `out_of_stock` and
-- `returned`, the cancel states `partly_cancelled` (was `partial`), `partly_returned` and
-- `returned`, and what the last out-of-stock notice said. SQLite changes a CHECK only by
-- rebuilding the table: every column and index is kept.
CREATE TABLE haier_order_outbox_next (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT NOT NULL UNIQUE,
    online_no TEXT NOT NULL,
    -- The order as JSON in YLH's push format.
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'pushed', 'confirmed', 'out_of_stock', 'refused',
                          'cancelled', 'returned', 'dead')),
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
        CHECK (cancel_state IN ('requested', 'local', 'full', 'partly_cancelled', 'partly_returned',
                                'returned', 'refused')),
    cancel_detail TEXT,
    out_of_stock_at TIMESTAMP,
    -- The last out-of-stock notice: its State, ExtOrderNo and FailMsg.
    out_of_stock_detail TEXT
);
INSERT INTO haier_order_outbox_next (
    id, so_id, online_no, payload, status, attempts, next_attempt_at, locked_by, locked_until,
    last_error, haier_order_no, pushed_at, confirmed_at, delivered_at, created_at, updated_at,
    cancel_state, cancel_detail, out_of_stock_at)
SELECT
    id, so_id, online_no, payload, status, attempts, next_attempt_at, locked_by, locked_until,
    last_error, haier_order_no, pushed_at, confirmed_at, delivered_at, created_at, updated_at,
    CASE cancel_state WHEN 'partial' THEN 'partly_cancelled' ELSE cancel_state END,
    cancel_detail, out_of_stock_at
FROM haier_order_outbox;
DROP TABLE haier_order_outbox;
ALTER TABLE haier_order_outbox_next RENAME TO haier_order_outbox;
CREATE INDEX haier_order_outbox_due ON haier_order_outbox (status, next_attempt_at);
CREATE INDEX haier_order_outbox_online_no ON haier_order_outbox (online_no);
CREATE INDEX haier_order_outbox_haier_order_no ON haier_order_outbox (haier_order_no);

-- An order's lines: one row per order and product, the quantities summed over the push's
-- itemList lines of that product, then what Haier's cancel callbacks say became of them (each
-- callback's quantities are the current totals).
CREATE TABLE haier_order_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT NOT NULL,
    product_code TEXT NOT NULL,
    ordered_qty BIGINT NOT NULL CHECK (ordered_qty >= 0),
    -- Signed for by the customer.
    received_qty BIGINT NOT NULL DEFAULT 0 CHECK (received_qty >= 0),
    -- Never reached the customer: refused at the door, stopped or cancelled.
    rejected_qty BIGINT NOT NULL DEFAULT 0 CHECK (rejected_qty >= 0),
    -- Signed for, then returned and passed inspection.
    returned_qty BIGINT NOT NULL DEFAULT 0 CHECK (returned_qty >= 0),
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (so_id, product_code)
);

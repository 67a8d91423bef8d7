-- An order's lifecycle after Haier took it: the outbox learns the statuses `out_of_stock` and
-- `returned`, the cancel states `partly_cancelled` (was `partial`), `partly_returned` and
-- `returned`, and what the last out-of-stock notice said.
ALTER TABLE haier_order_outbox DROP CONSTRAINT haier_order_outbox_status_check;
ALTER TABLE haier_order_outbox ADD CONSTRAINT haier_order_outbox_status_check
    CHECK (status IN ('pending', 'sending', 'pushed', 'confirmed', 'out_of_stock', 'refused',
                      'cancelled', 'returned', 'dead'));
ALTER TABLE haier_order_outbox DROP CONSTRAINT haier_order_outbox_cancel_state_check;
UPDATE haier_order_outbox SET cancel_state = 'partly_cancelled' WHERE cancel_state = 'partial';
ALTER TABLE haier_order_outbox ADD CONSTRAINT haier_order_outbox_cancel_state_check
    CHECK (cancel_state IN ('requested', 'local', 'full', 'partly_cancelled', 'partly_returned',
                            'returned', 'refused'));
-- The last out-of-stock notice: its State, ExtOrderNo and FailMsg.
ALTER TABLE haier_order_outbox ADD COLUMN out_of_stock_detail TEXT;

-- An order's lines: one row per order and product, the quantities summed over the push's
-- itemList lines of that product, then what Haier's cancel callbacks say became of them (each
-- callback's quantities are the current totals).
CREATE TABLE haier_order_lines (
    id BIGSERIAL PRIMARY KEY,
    so_id TEXT NOT NULL,
    product_code TEXT NOT NULL,
    ordered_qty BIGINT NOT NULL CHECK (ordered_qty >= 0),
    -- Signed for by the customer.
    received_qty BIGINT NOT NULL DEFAULT 0 CHECK (received_qty >= 0),
    -- Never reached the customer: refused at the door, stopped or cancelled.
    rejected_qty BIGINT NOT NULL DEFAULT 0 CHECK (rejected_qty >= 0),
    -- Signed for, then returned and passed inspection.
    returned_qty BIGINT NOT NULL DEFAULT 0 CHECK (returned_qty >= 0),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    UNIQUE (so_id, product_code)
);

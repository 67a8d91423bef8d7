-- Every change of an order the shop hears about: one row per change, written in the same
-- transaction as the change, numbered per order (`seq`). The shop reads it directly (or, on
-- PostgreSQL, LISTENs on `haier_order_changes`), and the webhook poller POSTs each row to
-- `[shop] webhook_url`, in order per order (`delivery`, its attempts and lease).
CREATE TABLE haier_shop_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    so_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'pushed', 'confirmed', 'out_of_stock', 'refused',
        'cancelled', 'returned', 'dead', 'delivered')),
    cancel_state TEXT CHECK (cancel_state IN ('requested', 'local', 'full', 'partly_cancelled',
        'partly_returned', 'returned', 'refused')),
    haier_order_no TEXT,
    reason TEXT,
    -- JSON array: one object per product with its ordered, received, refused and returned units.
    lines TEXT NOT NULL DEFAULT '[]',
    -- JSON array: the parcels (carrier, express no., serial numbers).
    shipments TEXT NOT NULL DEFAULT '[]',
    -- JSON object: the order's distributionTime and installTime as its payload holds them.
    schedule TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL CHECK (source IN ('callback', 'push', 'logistics', 'operator', 'replay')),
    created_at TIMESTAMP NOT NULL,
    delivery TEXT NOT NULL DEFAULT 'pending' CHECK (delivery IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_by TEXT,
    locked_until TIMESTAMP,
    last_error TEXT,
    delivered_at TIMESTAMP,
    UNIQUE (so_id, seq)
);
CREATE INDEX haier_shop_events_delivery ON haier_shop_events (delivery, next_attempt_at);
CREATE INDEX haier_shop_events_created_at ON haier_shop_events (created_at);

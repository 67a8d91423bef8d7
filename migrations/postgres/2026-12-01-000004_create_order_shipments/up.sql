-- The parcels of the orders Haier has taken, as YLH's express-numbers call reports them: the
-- delivery record, carrier, express number and the serial numbers of the units in the parcel
-- (a JSON array of text, one SN per unit). The logistics job writes them; `outbox show` prints them.
CREATE TABLE haier_order_shipments (
    id BIGSERIAL PRIMARY KEY,
    so_id TEXT NOT NULL,
    haier_order_no TEXT NOT NULL,
    -- '' when Haier sent none.
    delivery_record_code TEXT NOT NULL DEFAULT '',
    carrier_code TEXT,
    carrier_name TEXT,
    -- '' when Haier sent none.
    express_no TEXT NOT NULL DEFAULT '',
    serial_numbers TEXT NOT NULL DEFAULT '[]',
    fetched_at TIMESTAMP NOT NULL,
    UNIQUE (haier_order_no, delivery_record_code, express_no)
);
CREATE INDEX haier_order_shipments_so_id ON haier_order_shipments (so_id);

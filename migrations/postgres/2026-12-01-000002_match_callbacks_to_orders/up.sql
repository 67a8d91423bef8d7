-- Callbacks that name no order, or several, are kept as `unmatched` (was `unknown_order`) so an
-- operator can attach them to the right order; the outcome gets a CHECK. Each callback also
-- records how far its TimeStamp was from the receiver's clock and Haier's order number.
--   clock_skew_secs: TimeStamp minus the time it was received, in seconds (negative: the
--                    TimeStamp is in the past); NULL when it is missing or unreadable
--   ext_order_no:    Data.ExtOrderNo, Haier's order number, when given
--   attached_at:     when an operator attached this unmatched callback to an order
UPDATE haier_order_events SET outcome = 'unmatched' WHERE outcome = 'unknown_order';
ALTER TABLE haier_order_events ADD CONSTRAINT haier_order_events_outcome_check
    CHECK (outcome IN ('applied', 'duplicate', 'rejected', 'unmatched', 'ignored'));
ALTER TABLE haier_order_events ADD COLUMN clock_skew_secs BIGINT;
ALTER TABLE haier_order_events ADD COLUMN ext_order_no TEXT;
ALTER TABLE haier_order_events ADD COLUMN attached_at TIMESTAMP;
CREATE INDEX haier_order_events_outcome ON haier_order_events (outcome);

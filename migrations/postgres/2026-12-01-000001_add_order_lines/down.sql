DROP TABLE haier_order_lines;
ALTER TABLE haier_order_outbox DROP COLUMN out_of_stock_detail;
ALTER TABLE haier_order_outbox DROP CONSTRAINT haier_order_outbox_cancel_state_check;
UPDATE haier_order_outbox SET cancel_state = CASE cancel_state
    WHEN 'partly_cancelled' THEN 'partial' WHEN 'partly_returned' THEN 'partial'
    WHEN 'returned' THEN 'full' ELSE cancel_state END;
ALTER TABLE haier_order_outbox ADD CONSTRAINT haier_order_outbox_cancel_state_check
    CHECK (cancel_state IN ('requested', 'local', 'full', 'partial', 'refused'));
ALTER TABLE haier_order_outbox DROP CONSTRAINT haier_order_outbox_status_check;
UPDATE haier_order_outbox SET status = CASE status
    WHEN 'out_of_stock' THEN 'confirmed' WHEN 'returned' THEN 'cancelled' ELSE status END;
ALTER TABLE haier_order_outbox ADD CONSTRAINT haier_order_outbox_status_check
    CHECK (status IN ('pending', 'sending', 'pushed', 'confirmed', 'refused', 'cancelled', 'dead'));

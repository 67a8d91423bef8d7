ALTER TABLE haier_order_outbox DROP COLUMN out_of_stock_at;
ALTER TABLE haier_order_outbox DROP COLUMN cancel_detail;
ALTER TABLE haier_order_outbox DROP COLUMN cancel_state;

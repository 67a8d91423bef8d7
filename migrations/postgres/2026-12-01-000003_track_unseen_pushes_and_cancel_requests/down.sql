ALTER TABLE haier_order_outbox DROP COLUMN cancel_requested_at;
ALTER TABLE haier_order_outbox DROP COLUMN push_unseen_at;

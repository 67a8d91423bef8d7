DROP INDEX haier_order_outbox_finished;
DROP INDEX haier_order_events_received;
DROP TABLE haier_retention_prunes;

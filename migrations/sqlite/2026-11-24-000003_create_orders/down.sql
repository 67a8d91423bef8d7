DROP TABLE haier_order_events;
DROP TABLE haier_order_outbox;

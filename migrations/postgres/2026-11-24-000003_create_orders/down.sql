DROP TRIGGER haier_order_outbox_notify ON haier_order_outbox;
DROP FUNCTION haier_order_outbox_notify();
DROP TABLE haier_order_events;
DROP TABLE haier_order_outbox;

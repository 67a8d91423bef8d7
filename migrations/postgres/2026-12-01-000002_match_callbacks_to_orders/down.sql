DROP INDEX haier_order_events_outcome;
ALTER TABLE haier_order_events DROP COLUMN attached_at;
ALTER TABLE haier_order_events DROP COLUMN ext_order_no;
ALTER TABLE haier_order_events DROP COLUMN clock_skew_secs;
ALTER TABLE haier_order_events DROP CONSTRAINT haier_order_events_outcome_check;
UPDATE haier_order_events SET outcome = 'unknown_order' WHERE outcome = 'unmatched';

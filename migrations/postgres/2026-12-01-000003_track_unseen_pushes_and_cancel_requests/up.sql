-- What exactly-once pushing and the confirm_within check need to remember about an order:
--   push_unseen_at: when a push attempt ended without Haier's answer being seen (a timeout, a
--                   broken connection, a 5xx, an unreadable reply, or a lease that ran out
--                   mid-push). Haier may hold that copy, so a later refusal does not make the
--                   order dead. Cleared when the order counts as pushed.
--   cancel_requested_at: when a cancel was last asked of Haier (cancel_state = requested).
ALTER TABLE haier_order_outbox ADD COLUMN push_unseen_at TIMESTAMP;
ALTER TABLE haier_order_outbox ADD COLUMN cancel_requested_at TIMESTAMP;
UPDATE haier_order_outbox SET cancel_requested_at = updated_at WHERE cancel_state = 'requested';

-- The status page's outbox queries, kept off full scans at tens of thousands of orders: the
-- orders of one state, newest first (`/orders?state=`), and the unconfirmed pushes and cancels
-- that the overview and `status --check` count.
CREATE INDEX haier_order_outbox_status_id ON haier_order_outbox (status, id);
CREATE INDEX haier_order_outbox_unconfirmed_pushes ON haier_order_outbox (status, pushed_at);
CREATE INDEX haier_order_outbox_cancel_requested ON haier_order_outbox (cancel_state, cancel_requested_at);

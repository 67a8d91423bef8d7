//! `haier_order_outbox`, the transactional outbox the shop writes paid orders to, owned here:
//! `store` holds every statement on it, `change` the rows-and-columns helpers they share.
//!
//! The lease: a poller claims rows by setting `status = sending`, `locked_by` to a token of its
//! own batch and `locked_until`; only the holder of that token writes a push result
//! ([`record_push_result`] filters on it), and a lease that runs out makes the row claimable again.

mod change;
mod store;

pub use store::{
    any_due, cancel_here, claim_due_orders, count_by_status, count_finished_before,
    count_orders_needing_shipments, count_unconfirmed, count_undelivered_orders, dead_orders_since,
    delete_finished_orders, find_by_so_id, find_by_so_ids, finished_orders_after, free_lease, insert_order,
    lease_holders, list_orders, list_unconfirmed, lock_order_by, mark_orders_delivered,
    orders_needing_shipments_after, record_cancel_request, record_push_result, record_reschedule,
    retry_dead_order, set_cancel_state, set_cancelled, set_confirmed, set_out_of_stock, set_refused,
    undelivered_orders_after, OrderKey, OrderMatch, OutboxRow, PushResult, TrackedOrder,
};

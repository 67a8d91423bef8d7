//! `haier_order_outbox`, the transactional outbox the shop writes paid orders to, owned here:
//! `store` holds every statement on it, `change` the rows-and-columns helpers they share.
//!
//! The lease: a poller claims rows by setting `status = sending`, `locked_by` to a token of its
//! own batch and `locked_until`; only the holder of that token writes a push result
//! ([`record_push_result`] filters on it), and a lease that runs out makes the row claimable again.

mod change;
mod store;

pub use store::{
    any_due, cancel_here, claim_due_orders, count_by_status, count_undelivered_orders, find_by_so_id,
    find_by_so_ids, free_lease, insert_order, lease_holders, list_orders, lock_order_for_callback,
    mark_orders_delivered, record_cancel_request, record_push_result, retry_dead_order, set_cancel_state,
    set_cancelled, set_confirmed, set_out_of_stock, set_refused, undelivered_orders_after, OrderMatch,
    OutboxRow, PushResult, TrackedOrder,
};

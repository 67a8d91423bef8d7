//! Orders: owns `haier_order_outbox`, `haier_order_lines` ([`lines`]), `haier_order_events` and
//! `haier_order_shipments` ([`shipments`]) and every transition of an order.
//! Each paid order reaches Haier exactly once: the shop (or `outbox enqueue`) inserts it, the
//! poller claims, checks and pushes it, Haier's signed callbacks confirm, refuse or cancel it, and
//! the logistics job marks it delivered through [`outbox::mark_orders_delivered`]. An operator
//! retries or cancels one through [`manual`]; [`unconfirmed`] finds the orders and cancels Haier
//! has not answered within `confirm_within_ms`; [`reschedule`] reschedules an order or reads its
//! photos. The metrics endpoint (`crate::metrics`) is served beside the callback
//! receiver. It does not own the HTTP calls (`crate::haier`) nor the sync log (the run recorder).

pub mod callback;
mod cancels;
pub mod catalog;
pub mod enqueue;
pub mod events;
pub mod history;
pub mod lines;
pub mod manual;
pub mod matching;
pub mod notices;
pub mod outbox;
pub mod poller;
pub mod problem;
mod push_outcome;
pub mod reschedule;
pub mod shipments;
pub mod state;
pub mod times;
pub mod unconfirmed;
pub mod validate;

pub use callback::{router, serve};
pub use enqueue::{enqueue_orders, Enqueued};
pub use manual::{cancel_order, retry_dead_orders, retry_order, Cancelled, DeadFilter, Retried};
pub use poller::{run_until_stopped, try_push_next_batch, PollOutcome};
pub use problem::{InvalidOrder, Problem};
pub use state::{CallbackOutcome, CancelState, OutboxStatus};

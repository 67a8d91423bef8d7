//! The shop's view of its orders: owns `haier_shop_events`, one row for every change of an
//! order (however it came about), written by `crate::orders` and the logistics job through
//! [`events::record`] in the same transaction as the change. [`webhook`] POSTs each event,
//! signed, to `[shop] webhook_url` (at least once, in order per order); [`notify`] announces each
//! new event on PostgreSQL's `haier_order_changes` channel. It does not own the orders
//! (`crate::orders` does); it reads them through their owners.

pub mod events;
pub mod notify;
pub mod webhook;

pub use events::{record, Delivery, EventSource, ShopEvent, ShopState};
pub use webhook::{run_until_stopped, DeliveryOutcome, Webhook};

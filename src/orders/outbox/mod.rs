//! `haier_order_outbox`, the transactional outbox the shop writes paid orders to, owned here.

mod store;

pub use store::*;

//! The integration tests: one binary, one module per area.

mod client;
mod config;
mod orders_callback;
mod orders_cli;
mod orders_outbox;
mod orders_poller;
mod simulator;
mod support_orders;
mod support_sync;
mod sync;

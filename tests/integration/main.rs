//! The integration tests: one binary, one module per area.

mod config;
mod orders_callback;
mod simulator;
mod support_orders;

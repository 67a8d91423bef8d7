//! The integration tests: one binary, one module per area.

mod client;
mod config;
mod simulator;
mod support_sync;
mod sync;

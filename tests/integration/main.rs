//! The integration tests: one binary, one module per area.

mod client;
mod config;
mod daemon;
mod daemon_config;
mod daemon_live;
mod daemon_sync;
mod simulator;
mod support_sync;
mod sync;

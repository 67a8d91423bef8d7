//! The integration tests: one binary, one module per area.

mod config;
mod daemon;
mod daemon_config;
mod daemon_live;

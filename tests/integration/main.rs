//! The integration tests: one binary, one module per area.

mod cli;
mod cli_logging;
mod client;
mod client_pace;
mod config;
mod daemon;
mod daemon_config;
mod daemon_live;
mod daemon_sync;
mod e2e;
mod listing;
mod orders_callback;
mod orders_cli;
mod orders_outbox;
mod orders_poller;
mod reliability_callbacks;
mod reliability_config;
mod reliability_crash;
mod reliability_database;
mod reliability_faults;
mod reliability_outbox;
mod reliability_replies;
mod simulator;
mod states;
mod support;
mod sync;

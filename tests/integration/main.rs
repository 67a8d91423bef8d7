//! The integration tests: one binary, one module per area.

mod config;
mod support_sync;
mod sync;

//! haier-sync: keeps a shop's Haier catalog, prices, stock and orders in step with Haier's
//! open platform (openplat) and its 易理货 (YLH) order cloud.

// The daemon's futures nest deeply (demo → sync → client → a streamed reply); computing their
// layout needs more than the default 128 levels.
#![recursion_limit = "256"]

pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod context;
pub mod control;
pub mod db;
pub mod haier;
pub mod health;
pub mod metrics;
pub mod orders;
pub mod quota;
pub mod retention;
pub mod runs;
pub mod scheduler;
pub mod shop;
pub mod simulator;
pub mod sync;
pub mod telemetry;

//! The sync jobs (products, prices, stock, logistics), one file each, and the run recorder that
//! writes their `haier_sync_logs` rows.

pub mod recorder;

pub use recorder::{FailureList, RunCounts, RunRecorder, RunSpec, RunStatus, Trigger};

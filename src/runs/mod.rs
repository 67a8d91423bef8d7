//! The sync log: owns `haier_sync_logs`, one row per job run. The [`RunRecorder`] opens a row as
//! `running` and closes it with its [`RunCounts`] and [`RunStatus`]; [`log`] holds every statement
//! on the table (recovery and shutdown close the rows of gone processes through
//! [`log::interrupt_rows_of`]), [`stats`] the aggregate reads for `/metrics`. It does not run
//! jobs (`sync/` and the order poller do) and does not schedule them (`scheduler/` does).

pub mod log;
pub mod recorder;
pub mod state;
pub mod stats;

pub use log::{LogFilter, NewSyncLog, RunSpan, SyncLog};
pub use recorder::{Closing, FailureList, RunRecorder, RunSpec};
pub use state::{RunCounts, RunStatus, SyncType, Trigger};

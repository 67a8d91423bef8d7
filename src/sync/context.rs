//! Which job a kind name means when `run-job` or the demo is given a kind rather than a job name.
//! The shared context itself is `crate::context::AppContext`.

use crate::config::{Config, SyncJob, SyncKind};

pub use crate::config::DEFAULT_COUNTY_CODE;

pub use crate::context::AppContext;

/// The job to run for `kind` when none is named: the first configured job of that kind (in name
/// order), or a job with every default.
pub fn job_of_kind(config: &Config, kind: SyncKind) -> SyncJob {
    config
        .jobs
        .values()
        .filter_map(|job| job.as_sync())
        .find(|job| job.kind == kind)
        .cloned()
        .unwrap_or_else(|| default_job(config, kind))
}

/// A job of `kind` with every default, named after its kind. Its counties are `[defaults]
/// county_codes`, else [`DEFAULT_COUNTY_CODE`].
pub fn default_job(config: &Config, kind: SyncKind) -> SyncJob {
    SyncJob::with_defaults(kind, &config.defaults)
}

//! Which job a kind name means when `run-job` or the demo is given a kind rather than a job name.
//! The shared context itself is `crate::context::AppContext`.

use crate::config::{Config, JobConfig, JobKind, Overlap};

pub use crate::config::DEFAULT_COUNTY_CODE;

pub use crate::context::AppContext;

/// The job to run for `kind` when none is named: the first configured job of that kind (in name
/// order), or a job with every default.
pub fn job_of_kind(config: &Config, kind: JobKind) -> JobConfig {
    config
        .jobs
        .values()
        .find(|job| job.kind == kind)
        .cloned()
        .unwrap_or_else(|| default_job(config, kind))
}

/// A job of `kind` with every default, named after its kind. Its counties are `[defaults]
/// county_codes`, else [`DEFAULT_COUNTY_CODE`].
pub fn default_job(config: &Config, kind: JobKind) -> JobConfig {
    let county_codes = if config.defaults.county_codes.is_empty() {
        vec![DEFAULT_COUNTY_CODE.to_owned()]
    } else {
        config.defaults.county_codes.clone()
    };
    JobConfig {
        name: kind.as_str().to_owned(),
        kind,
        schedule: None,
        timezone: config.defaults.timezone,
        enabled: true,
        timeout_ms: None,
        overlap: Overlap::Skip,
        jitter_ms: 0,
        catch_up: crate::config::CatchUp::Skip,
        product_codes: Vec::new(),
        county_codes,
        concurrency: None,
        poll_interval_ms: crate::config::DEFAULT_POLL_INTERVAL_MS,
        batch_size: crate::config::DEFAULT_BATCH_SIZE,
        max_attempts: crate::config::DEFAULT_MAX_ATTEMPTS,
        lease_ms: crate::config::DEFAULT_LEASE_MS,
    }
}

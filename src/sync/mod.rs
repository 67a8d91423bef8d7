//! The sync jobs (products, prices, stock, logistics), one file each, the tally of a run in
//! progress, and [`run_job`], the one entry point the daemon and `run-job` call. Their
//! `haier_sync_logs` rows are written through [`crate::runs`]. It does not schedule (the daemon
//! does) and does not push orders (the outbox poller does).

pub mod context;
mod listing;
pub mod logistics;
pub mod pipeline;
pub mod prices;
pub mod products;
pub mod stock;
mod tracker;

pub use context::{default_job, job_of_kind, AppContext, DEFAULT_COUNTY_CODE};
pub use tracker::RunTracker;

use crate::config::{SyncJob, SyncKind};
use crate::runs::{Closing, RunCounts, RunRecorder, RunSpec, RunStatus, Trigger};
use chrono::NaiveDateTime;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// How long a stopped job (cancelled or timed out) may take to write its last page and return
/// before its row is closed without it.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What a run is told beyond its job's config: the `run-job` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOverrides {
    /// Only these products (replaces the job's `product_codes`).
    pub product_codes: Option<Vec<String>>,
    /// Only these counties (replaces the job's `county_codes`).
    pub county_codes: Option<Vec<String>>,
    /// The shop's own category for the synced products (products job).
    pub local_category: Option<String>,
    /// The shop's own brand for the synced products (products job).
    pub local_brand: Option<String>,
}

/// One run to do now.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub job: SyncJob,
    pub trigger: Trigger,
    /// The cron fire time, for scheduled and catch-up runs (one run per job and fire time).
    pub scheduled_for: Option<NaiveDateTime>,
    pub overrides: RunOverrides,
}

impl RunRequest {
    /// A manual run of `job` with `overrides`.
    pub fn manual(job: SyncJob, overrides: RunOverrides) -> Self {
        Self {
            job,
            trigger: Trigger::Manual,
            scheduled_for: None,
            overrides,
        }
    }
}

/// How a run ended, as its log row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The `haier_sync_logs` row; `None` when the run was skipped.
    pub log_id: Option<i64>,
    pub status: RunStatus,
    pub counts: RunCounts,
    pub message: Option<String>,
}

/// Where a run reports how far it got: a progress bar, plain lines, or nothing.
pub trait Progress: Send + Sync {
    /// The number of items the run will go through.
    fn set_total(&self, n: u64);
    /// `n` more items are done (succeeded or failed).
    fn advance(&self, n: u64);
    /// What the run is doing now.
    fn message(&self, text: &str);
}

/// Reports nothing (the daemon, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_total(&self, _n: u64) {}
    fn advance(&self, _n: u64) {}
    fn message(&self, _text: &str) {}
}

/// How a job kind's run ended. The counts are in the [`RunTracker`].
#[derive(Debug)]
pub enum Ending {
    /// Went through every item; some may have failed.
    Completed,
    /// Stopped by the cancel token (shutdown or timeout); what was written stays.
    Stopped,
    /// Could not do its work: credentials refused, breaker open, database gone.
    Failed(anyhow::Error),
}

/// Runs one job now: opens its log row (or returns status `skipped` with no `log_id`, without
/// running, when another instance already took the fire time), runs the job's kind under its
/// `timeout_ms` and `cancel`, closes the row (`interrupted` on cancel or timeout, with the counts
/// so far) and returns the outcome. Fails only when the row cannot be opened.
pub async fn run_job(
    ctx: &AppContext,
    request: RunRequest,
    cancel: CancellationToken,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<RunOutcome> {
    let RunRequest {
        job,
        trigger,
        scheduled_for,
        overrides,
    } = request;
    let spec = RunSpec {
        job_name: job.name.clone(),
        sync_type: job.kind.sync_type(),
        trigger,
        scheduled_for,
    };
    let Some(recorder) = RunRecorder::start(&ctx.db, spec).await? else {
        tracing::info!(job.name = %job.name, ?scheduled_for, "fire time already taken by another instance; not running");
        return Ok(RunOutcome {
            log_id: None,
            status: RunStatus::Skipped,
            counts: RunCounts::default(),
            message: Some("this fire time was taken by another instance".into()),
        });
    };
    let span = tracing::info_span!("job", job.name = %job.name, job.kind = %job.kind, run.id = recorder.id());
    run_recorded(ctx, &job, &overrides, recorder, cancel, progress)
        .instrument(span)
        .await
}

async fn run_recorded(
    ctx: &AppContext,
    job: &SyncJob,
    overrides: &RunOverrides,
    recorder: RunRecorder,
    cancel: CancellationToken,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<RunOutcome> {
    tracing::info!(trigger = recorder.spec().trigger.as_str(), "job started");
    let stop = cancel.child_token();
    let tracker = RunTracker::new(&recorder, stop.clone(), progress);
    let timeout = job.timeout_ms.map(Duration::from_millis);
    let (ending, timed_out) = {
        let mut work = pin!(run_kind(ctx, job, overrides, &tracker));
        tokio::select! {
            ending = &mut work => (ending, false),
            () = sleep_or_never(timeout) => {
                stop.cancel();
                (wind_down(work).await, true)
            }
            () = cancel.cancelled() => (wind_down(work).await, false),
        }
    };
    let (counts, unreached) = tracker.counts().closed(matches!(ending, Ending::Completed));
    if unreached > 0 {
        tracker.note(format!("{unreached} not reached (counted as failed)"));
    }
    let (status, lead) = match ending {
        Ending::Completed => (counts.status(), None),
        Ending::Stopped if timed_out => (
            RunStatus::Interrupted,
            Some(format!(
                "interrupted: timed out after {} ms",
                job.timeout_ms.unwrap_or_default()
            )),
        ),
        Ending::Stopped => (RunStatus::Interrupted, Some("interrupted: cancelled".to_owned())),
        Ending::Failed(error) => {
            tracing::error!(error = format!("{error:#}"), "job failed");
            let lead = if is_database_error(&error) {
                format!("the database failed mid-run: {error:#}")
            } else {
                format!("{error:#}")
            };
            (RunStatus::Failed, Some(lead))
        }
    };
    let message = tracker.message(lead);
    drop(tracker);
    let log_id = recorder.id();
    // The recorder logs what a close that did not go through found.
    let status = match recorder.close(status, counts, message.clone()).await {
        Closing::Closed | Closing::ClosedBefore { .. } | Closing::Missing => status,
        Closing::Retrying { .. } => RunStatus::Failed,
    };
    tracing::info!(
        status = %status,
        total = counts.total,
        success = counts.success,
        failed = counts.failed,
        "job finished"
    );
    Ok(RunOutcome {
        log_id: Some(log_id),
        status,
        counts,
        message,
    })
}

async fn run_kind(ctx: &AppContext, job: &SyncJob, overrides: &RunOverrides, run: &RunTracker<'_>) -> Ending {
    match job.kind {
        SyncKind::Products => products::run(ctx, job, overrides, run).await,
        SyncKind::Prices => prices::run(ctx, job, overrides, run).await,
        SyncKind::Stock => stock::run(ctx, job, overrides, run).await,
        SyncKind::Logistics => logistics::run(ctx, job, overrides, run).await,
    }
}

/// Lets a stopped kind write what it has and return, for at most [`STOP_GRACE`].
async fn wind_down(work: std::pin::Pin<&mut impl std::future::Future<Output = Ending>>) -> Ending {
    tokio::time::timeout(STOP_GRACE, work)
        .await
        .unwrap_or(Ending::Stopped)
}

/// Whether `error` came from the database (a failed statement, a connection that could not be
/// had), rather than from Haier or the job's own checks.
fn is_database_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<diesel::result::Error>()
            || cause.is::<diesel::ConnectionError>()
            || cause.is::<diesel::r2d2::PoolError>()
    })
}

async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

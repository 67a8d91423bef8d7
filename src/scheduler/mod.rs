//! The daemon's scheduling: `jobs.toml` → cron triggers, with the overlap guard, jitter, catch-up,
//! reload, crash recovery and graceful shutdown that tokio-cron-scheduler does not give. The cron
//! library is only a trigger: what ran and when lives in `haier_sync_logs`. The jobs' own work is
//! behind [`JobRunner`]; it does not live here. It owns `haier_job_missed_fires` (`missed.rs`):
//! the fires a job missed while no daemon ran.

pub mod daemon;
pub mod going_on;
mod instance;
pub mod jobs;
pub mod missed;
mod pauses;
pub mod recovery;
pub mod reload;
pub mod run_now;
pub mod runner;
mod supervise;
pub mod triggers;
mod watch;

pub use daemon::{Daemon, DaemonHandle, ReloadOutcome, ShutdownReport, Signals};
pub use going_on::{runs_going_on, RunGoingOn};
pub use jobs::{FireOutcome, ManualStart, Scheduler};
pub use recovery::{recover_orphaned_runs, RecoveryReport};
pub use reload::{diff_jobs, JobChange};
pub use runner::SyncJobRunner;
pub use supervise::Service;

use crate::config::{OutboxJob, SyncJob};
use crate::runs::{RunStatus, Trigger};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

/// Runs jobs for the scheduler. The real one calls `crate::sync::run_job` and the order poller;
/// tests use a fake that writes rows through [`crate::runs::RunRecorder`].
#[async_trait::async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Runs one sync job now. It opens and closes its own `haier_sync_logs` row (through
    /// `RunRecorder` or `sync::run_job`), honours `job.timeout_ms`, and on `cancel` stops and
    /// closes its row as `interrupted` with the counts reached. Returns `Skipped` without a row
    /// when the fire time was already taken by another instance.
    async fn run(
        &self,
        job: SyncJob,
        trigger: Trigger,
        scheduled_for: Option<NaiveDateTime>,
        cancel: CancellationToken,
    ) -> anyhow::Result<RunStatus>;

    /// Runs a continuous job (the `order_outbox` poller) until `cancel` fires.
    async fn run_until_stopped(&self, job: OutboxJob, cancel: CancellationToken) -> anyhow::Result<()>;
}

/// Whether a sync job is driven by cron ticks: every job from `jobs.toml` is, the job `run-job`
/// makes up for a kind with none configured is not.
pub fn is_scheduled(job: &SyncJob) -> bool {
    job.schedule.is_some()
}

/// The next fire time of a scheduled job strictly after `after`, in the job's zone. `None` for
/// a job without a schedule and for a schedule that never fires again.
pub fn next_fire_time(job: &SyncJob, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
    let schedule = job.schedule.as_ref()?;
    schedule.next_after(&after.trunc_subsecs(0).with_timezone(&job.timezone))
}

/// The last fire time of a scheduled job at or before `at`, in UTC and whole seconds: the
/// `scheduled_for` every instance writes for that tick, whenever its trigger happened to run.
pub fn fire_time_at_or_before(job: &SyncJob, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let schedule = job.schedule.as_ref()?;
    schedule
        .previous_at_or_before(&at.trunc_subsecs(0).with_timezone(&job.timezone))
        .map(|t| t.with_timezone(&Utc))
}

/// How many heartbeat intervals may pass before a daemon counts as gone.
pub const LIVE_HEARTBEATS: u32 = 3;

/// The daemons running against this database: not stopped, and with a heartbeat fresher than
/// [`LIVE_HEARTBEATS`] × `heartbeat_ms`. Works across hosts and instances (unlike a pid file).
#[cfg(any(test, feature = "test-support"))]
pub async fn daemon_running(
    db: &crate::db::Db,
    heartbeat_ms: u64,
) -> anyhow::Result<Vec<crate::db::instances::Instance>> {
    let alive_since = alive_since(Utc::now(), heartbeat_ms);
    db.run(move |conn| Ok(crate::db::instances::live(conn, alive_since)?))
        .await
        .map_err(|e| e.context("Failed to read the daemon heartbeats"))
}

/// The oldest heartbeat that still counts as alive at `now`.
pub(crate) fn alive_since(now: DateTime<Utc>, heartbeat_ms: u64) -> NaiveDateTime {
    before(now, heartbeat_ms.saturating_mul(u64::from(LIVE_HEARTBEATS)))
}

/// `now` minus `ms` milliseconds, as a database time; the earliest representable time when the
/// window reaches further back than that.
pub(crate) fn before(now: DateTime<Utc>, ms: u64) -> NaiveDateTime {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::Duration::try_milliseconds)
        .and_then(|window| now.naive_utc().checked_sub_signed(window))
        .unwrap_or(NaiveDateTime::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;
    use chrono::TimeZone;

    pub(crate) fn job(name: &str, schedule: &str) -> SyncJob {
        SyncJob {
            name: name.into(),
            kind: crate::config::SyncKind::Stock,
            schedule: Some(Schedule::parse(schedule).unwrap()),
            timezone: chrono_tz::Asia::Shanghai,
            enabled: true,
            timeout_ms: None,
            overlap: crate::config::Overlap::Skip,
            jitter_ms: 0,
            catch_up: crate::config::CatchUp::Once,
            catch_up_within_ms: None,
            product_codes: vec![],
            county_codes: vec!["110101".into()],
            concurrency: None,
        }
    }

    #[test]
    fn fire_times_follow_the_jobs_zone() {
        // 02:00 in Shanghai is 18:00 UTC the day before.
        let daily = job("products", "0 0 2 * * *");
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 17, 59, 59).unwrap();
        assert_eq!(
            next_fire_time(&daily, now).unwrap(),
            chrono_tz::Asia::Shanghai
                .with_ymd_and_hms(2026, 11, 25, 2, 0, 0)
                .unwrap()
        );
        assert_eq!(
            fire_time_at_or_before(&daily, now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 23, 18, 0, 0).unwrap()
        );
        let at_fire =
            Utc.with_ymd_and_hms(2026, 11, 24, 18, 0, 0).unwrap() + chrono::Duration::milliseconds(400);
        assert_eq!(
            fire_time_at_or_before(&daily, at_fire).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 24, 18, 0, 0).unwrap(),
            "a trigger that runs late still names its own tick"
        );
    }

    #[test]
    fn a_job_without_a_schedule_has_no_fire_times() {
        let mut made_up = job("stock", "* * * * * *");
        made_up.schedule = None;
        assert!(!is_scheduled(&made_up));
        assert!(next_fire_time(&made_up, Utc::now()).is_none());
    }
}

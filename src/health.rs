//! Whether haier-sync does its work, as an operator would judge it: a scheduled job is
//! **overdue** when it has had no success within twice its interval, **failing** when its last
//! three runs failed, and orders are **late** when Haier has not answered them within the outbox
//! job's `confirm_within_ms`: pushed with no confirm callback, or a cancel asked with no cancel
//! callback. `haier-sync status --check` and `GET /healthz` ask
//! [`check_health`]. It owns no table: it reads the sync log through `runs::log`, the outbox
//! through `orders::outbox` and the instances through `db::instances` (whose disagreement is a
//! warning, not a problem). A paused or disabled job is not judged.

use crate::config::{Config, JobSpec, SyncJob};
use crate::control::pauses;
use crate::db::Db;
use crate::orders::outbox;
use crate::runs::{self, RunStatus};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

/// How many runs in a row must fail for a job to count as failing.
pub const FAILING_RUNS: usize = 3;

/// How many intervals without a success make a job overdue.
pub const OVERDUE_INTERVALS: i32 = 2;

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Overdue,
    Failing,
    LateOrders,
}

/// One reason haier-sync is unhealthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The job, or `orders`.
    pub subject: String,
    /// The reason in a sentence.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub problems: Vec<Problem>,
    /// What the live daemons disagree on (version, config hash): said, but not a problem (it is
    /// expected while a new version or file is rolled through them).
    pub warnings: Vec<String>,
}

impl HealthReport {
    /// One line per problem, or `ok`; then one `warning:` line per warning.
    pub fn to_text(&self) -> String {
        let mut text = if self.problems.is_empty() {
            "ok\n".to_owned()
        } else {
            self.problems
                .iter()
                .map(|p| format!("{}: {}\n", p.subject, p.detail))
                .collect()
        };
        for warning in &self.warnings {
            text.push_str(&format!("warning: {warning}\n"));
        }
        text
    }
}

/// The time between a job's two next fire times: its interval, from its cron schedule.
pub fn job_interval(job: &SyncJob, now: DateTime<Utc>) -> Option<chrono::Duration> {
    let first = crate::scheduler::next_fire_time(job, now)?;
    let second = crate::scheduler::next_fire_time(job, first.with_timezone(&Utc))?;
    Some(second.signed_duration_since(first))
}

/// Judges every enabled, unpaused scheduled job and the pushed orders at `now`.
pub async fn check_health(db: &Db, config: &Config, now: DateTime<Utc>) -> anyhow::Result<HealthReport> {
    let jobs: Vec<(SyncJob, chrono::Duration)> = config
        .jobs
        .values()
        .filter_map(|job| match job {
            JobSpec::Sync(job) if job.enabled => job_interval(job, now).map(|i| (job.clone(), i)),
            _ => None,
        })
        .collect();
    let outbox_job = config.outbox_job();
    let late_before = outbox_job.unconfirmed_before(now.naive_utc());
    let confirm_within = crate::orders::unconfirmed::human_duration(outbox_job.confirm_within_ms);
    let now_naive = now.naive_utc();
    let alive_since = crate::scheduler::alive_since(now, config.daemon.heartbeat_ms);
    let (problems, warnings) = db
        .run(move |conn| {
            let warnings =
                crate::db::instances::disagreements(&crate::db::instances::live(conn, alive_since)?);
            let mut problems = Vec::new();
            for (job, interval) in &jobs {
                if pauses::is_paused(conn, &job.name)? {
                    continue;
                }
                let recent = runs::log::list(
                    conn,
                    &runs::log::LogFilter {
                        job_name: Some(job.name.clone()),
                        limit: 50,
                        ..Default::default()
                    },
                )?;
                let success = runs::log::latest_success(conn, &job.name)?;
                problems.extend(judge_job(
                    job,
                    *interval,
                    &recent,
                    success.map(|s| s.started_at),
                    now_naive,
                ));
            }
            let (pushes, cancels) = outbox::count_unconfirmed(conn, late_before)?;
            if pushes > 0 {
                problems.push(Problem {
                    kind: ProblemKind::LateOrders,
                    subject: "orders".to_owned(),
                    detail: format!(
                        "{pushes} pushed order(s) unconfirmed by Haier for more than {confirm_within}"
                    ),
                });
            }
            if cancels > 0 {
                problems.push(Problem {
                    kind: ProblemKind::LateOrders,
                    subject: "orders".to_owned(),
                    detail: format!(
                        "{cancels} cancel(s) asked of Haier with no answer for more than {confirm_within}"
                    ),
                });
            }
            Ok((problems, warnings))
        })
        .await
        .map_err(|e| e.context("Failed to read the sync log and the outbox for the health check"))?;
    Ok(HealthReport {
        healthy: problems.is_empty(),
        problems,
        warnings,
    })
}

/// A job's problems from its newest rows (newest first) and its last success. A job that has
/// never run is not judged overdue: nothing says it should have run yet.
fn judge_job(
    job: &SyncJob,
    interval: chrono::Duration,
    recent: &[runs::log::SyncLog],
    last_success: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let window = interval * OVERDUE_INTERVALS;
    let since = last_success.or_else(|| recent.last().map(|r| r.started_at));
    if let Some(since) = since.filter(|t| now - *t > window) {
        problems.push(Problem {
            kind: ProblemKind::Overdue,
            subject: job.name.clone(),
            detail: format!(
                "no success for {} (since {} UTC); it runs every {}, so {} is overdue",
                crate::cli::format_duration(now - since),
                since.format("%Y-%m-%d %H:%M:%S"),
                crate::cli::format_duration(interval),
                crate::cli::format_duration(window)
            ),
        });
    }
    let finished: Vec<&runs::log::SyncLog> = recent
        .iter()
        .filter(|r| !matches!(r.status, RunStatus::Skipped | RunStatus::Running))
        .take(FAILING_RUNS)
        .collect();
    if finished.len() == FAILING_RUNS && finished.iter().all(|r| r.status == RunStatus::Failed) {
        problems.push(Problem {
            kind: ProblemKind::Failing,
            subject: job.name.clone(),
            detail: format!(
                "its last {FAILING_RUNS} runs failed, the newest: {}",
                finished[0].message.as_deref().unwrap_or("(no message)")
            ),
        });
    }
    problems
}

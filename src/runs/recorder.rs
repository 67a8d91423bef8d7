//! The run recorder: opens a `haier_sync_logs` row as `running` and closes it with counts and a
//! status. Every job writes its row through this.
//!
//! A close the database does not take (it is locked, unreachable, stopped) is retried in the
//! background ([`crate::db::background`]) until it lands, with the run's own status, message and
//! end time; the run's task goes on meanwhile, and the process waits for such closes, bounded,
//! before it exits. A row that was closed by someone else first (recovery by a restarted daemon,
//! a shutdown that could not wait) is left as that one wrote it, and the log says who.

use super::log::{self, NewSyncLog, SyncLog};
use super::{RunCounts, RunStatus, SyncType, Trigger};
use crate::db::{self, Db};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use std::fmt;

/// What a new run row says about itself.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub job_name: String,
    pub sync_type: SyncType,
    pub trigger: Trigger,
    /// The cron fire time, for scheduled and catch-up runs.
    pub scheduled_for: Option<NaiveDateTime>,
}

/// The longest `message` written to a log row.
const MAX_MESSAGE_CHARS: usize = 4_000;

/// How a run's closing write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// The row now says how the run ended.
    Closed,
    /// Someone else had closed the row already (recovery, a shutdown that could not wait): it
    /// keeps their `status` and `message`, and this run's ending was not written.
    ClosedBefore {
        status: RunStatus,
        message: Option<String>,
    },
    /// The row is gone (deleted by hand): nothing to close.
    Missing,
    /// The database did not take the write (`error`); it is retried in the background until it
    /// lands.
    Retrying { error: String },
}

/// What one attempt at closing found.
enum Closed {
    Now,
    Before(Box<SyncLog>),
    Missing,
}

/// An open `running` row.
#[derive(Debug)]
pub struct RunRecorder {
    db: Db,
    id: i64,
    /// The instance that opened the row: every later write is fenced by it.
    instance: String,
    spec: RunSpec,
}

impl RunRecorder {
    /// Opens a `running` row. Returns `None` when a row for the same job and fire time exists
    /// already: another instance took this tick, and this one must not run it.
    pub async fn start(db: &Db, spec: RunSpec) -> anyhow::Result<Option<RunRecorder>> {
        let instance = db::instance_name();
        let row_spec = spec.clone();
        let owner = instance.clone();
        let id = db
            .run(move |conn| {
                let now = db::now_utc();
                Ok(log::insert(
                    conn,
                    &new_row(&row_spec, &owner, RunStatus::Running, None, now),
                )?)
            })
            .await
            .with_context(|| format!("Failed to open the sync-log row of job {}", spec.job_name))?;
        Ok(id.map(|id| RunRecorder {
            db: db.clone(),
            id,
            instance,
            spec,
        }))
    }

    /// Writes a finished `skipped` row for a tick dropped because the previous run still goes.
    /// Returns false when the tick's row exists already.
    pub async fn record_skipped(db: &Db, spec: RunSpec, message: &str) -> anyhow::Result<bool> {
        let instance = db::instance_name();
        let message = message.to_owned();
        db.run(move |conn| {
            let now = db::now_utc();
            Ok(log::insert(
                conn,
                &new_row(&spec, &instance, RunStatus::Skipped, Some(&message), now),
            )?
            .is_some())
        })
        .await
        .context("Failed to write a skipped sync-log row")
    }

    /// The row's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// Records the counts so far.
    pub async fn progress(&self, counts: RunCounts) -> anyhow::Result<()> {
        let (id, owner) = (self.id, self.instance.clone());
        self.db
            .run(move |conn| Ok(log::update_progress(conn, id, &owner, counts)?))
            .await
            .context("Failed to record run progress")
    }

    /// Closes the row. Returns true when it was closed, false when someone else had closed it
    /// already (see [`RunRecorder::close`], which says who), and an error when the database did
    /// not take the write; the close is then retried in the background.
    pub async fn finish(
        self,
        status: RunStatus,
        counts: RunCounts,
        message: Option<String>,
    ) -> anyhow::Result<bool> {
        let job = self.spec.job_name.clone();
        match self.close(status, counts, message).await {
            Closing::Closed => Ok(true),
            Closing::ClosedBefore { .. } | Closing::Missing => Ok(false),
            Closing::Retrying { error } => Err(anyhow::anyhow!(
                "Failed to close the sync-log row of job {job}: {error} (retried in the background)"
            )),
        }
    }

    /// Closes the row with the run's ending, and logs what became of it. When the database does
    /// not take the write, hands it to the background writes of the database handle, which retry
    /// it (with the run's end time, and a note that it was closed late) until it lands.
    pub async fn close(self, status: RunStatus, counts: RunCounts, message: Option<String>) -> Closing {
        let ended_at = db::now_utc();
        let ended = std::time::Instant::now();
        let message = message.map(|m| truncate_message(&m));
        let id = self.id;
        let owner = self.instance.clone();
        let first = try_close(&self.db, id, &owner, status, counts, message.clone(), ended_at).await;
        let error = match first {
            Ok(closed) => return report_closed(id, &owner, status, closed, None),
            Err(error) => error,
        };
        let error = format!("{error:#}");
        tracing::error!(
            run.id = id,
            error = %error,
            "could not close the run's log row as {status}: the database did not take the write; \
             trying again in the background until it does"
        );
        let db = self.db.clone();
        let job = self.spec.job_name.clone();
        let mut warned = false;
        self.db
            .background()
            .spawn(format!("closing log row {id} of job {job}"), move |attempt| {
                let db = db.clone();
                let late = format!(
                    "closed {} s late: the database did not take the closing write when the run ended",
                    ended.elapsed().as_secs()
                );
                let message = Some(truncate_message(&match &message {
                    Some(m) => format!("{m}; {late}"),
                    None => late,
                }));
                let first_failure = !std::mem::replace(&mut warned, true);
                let owner = owner.clone();
                Box::pin(async move {
                    match try_close(&db, id, &owner, status, counts, message, ended_at).await {
                        Ok(closed) => {
                            report_closed(id, &owner, status, closed, Some(attempt));
                            Ok(())
                        }
                        Err(error) => {
                            if first_failure {
                                tracing::warn!(
                                    run.id = id,
                                    error = format!("{error:#}"),
                                    "the run's log row still cannot be closed; trying again with backoff"
                                );
                            }
                            Err(error)
                        }
                    }
                })
            });
        Closing::Retrying { error }
    }
}

/// A new row of `spec`, started now: `running`, or finished at once (`skipped`).
fn new_row<'a>(
    spec: &'a RunSpec,
    instance: &'a str,
    status: RunStatus,
    message: Option<&'a str>,
    now: NaiveDateTime,
) -> NewSyncLog<'a> {
    NewSyncLog {
        job_name: &spec.job_name,
        sync_type: spec.sync_type,
        status,
        message,
        total_count: 0,
        success_count: 0,
        failed_count: 0,
        started_at: now,
        completed_at: (status != RunStatus::Running).then_some(now),
        created_at: now,
        scheduled_for: spec.scheduled_for,
        trigger: spec.trigger,
        instance,
    }
}

/// One attempt at closing row `id`: closed now, closed before by someone else (as the row says),
/// or missing. A failed write, or an update that changed nothing while the row still reads
/// `running`, is an error.
async fn try_close(
    db: &Db,
    id: i64,
    owner: &str,
    status: RunStatus,
    counts: RunCounts,
    message: Option<String>,
    ended_at: NaiveDateTime,
) -> anyhow::Result<Closed> {
    let owner = owner.to_owned();
    db.run(move |conn| {
        if log::close(conn, id, &owner, status, counts, message.as_deref(), ended_at)? {
            return Ok(Closed::Now);
        }
        match log::find(conn, id)? {
            None => Ok(Closed::Missing),
            Some(row) if row.status != RunStatus::Running || row.instance != owner => {
                Ok(Closed::Before(Box::new(row)))
            }
            Some(_) => anyhow::bail!("the row still reads `running`, yet the close changed nothing"),
        }
    })
    .await
    .with_context(|| format!("Failed to close the sync-log row {id}"))
}

/// Logs what a close found, truthfully, and says it as a [`Closing`]. `attempt` is the number of
/// a close retried in the background.
fn report_closed(id: i64, owner: &str, status: RunStatus, closed: Closed, attempt: Option<u32>) -> Closing {
    match closed {
        Closed::Now => {
            if let Some(attempt) = attempt {
                tracing::info!(
                    run.id = id,
                    "closed the run's log row as {status} at attempt {attempt}: the database takes writes again"
                );
            }
            Closing::Closed
        }
        Closed::Before(row) => {
            tracing::warn!(
                run.id = id,
                job.name = %row.job_name,
                closed_as = %row.status,
                by = row.message.as_deref().unwrap_or("(no message)"),
                "the run's log row had been closed already by someone else while {owner} still ran it \
                 (taken for gone?); this late ending ({status}) is not written over it"
            );
            let row = *row;
            Closing::ClosedBefore {
                status: row.status,
                message: row.message,
            }
        }
        Closed::Missing => {
            tracing::warn!(
                run.id = id,
                "the run's log row no longer exists; the run's ending ({status}) is not written"
            );
            Closing::Missing
        }
    }
}

fn truncate_message(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message.to_owned();
    }
    let mut out: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    out.push_str(" …");
    out
}

/// Builds a log message that names failed items without growing without bound:
/// `failed: A (reason), B (reason) … and 12 more`.
#[derive(Debug, Default, Clone)]
pub struct FailureList {
    shown: Vec<String>,
    more: usize,
}

/// How many failed items a log message names.
const MAX_NAMED_FAILURES: usize = 50;

impl FailureList {
    pub fn push(&mut self, item: impl fmt::Display, reason: impl fmt::Display) {
        if self.shown.len() < MAX_NAMED_FAILURES {
            self.shown.push(format!("{item} ({reason})"));
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    pub fn len(&self) -> usize {
        self.shown.len() + self.more
    }

    /// `None` when nothing failed.
    pub fn message(&self) -> Option<String> {
        if self.shown.is_empty() {
            return None;
        }
        let mut text = format!("failed: {}", self.shown.join(", "));
        if self.more > 0 {
            text.push_str(&format!(" … and {} more", self.more));
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::TestDb;

    fn spec(job: &str, scheduled_for: Option<NaiveDateTime>) -> RunSpec {
        RunSpec {
            job_name: job.into(),
            sync_type: SyncType::Stock,
            trigger: if scheduled_for.is_some() {
                Trigger::Schedule
            } else {
                Trigger::Manual
            },
            scheduled_for,
        }
    }

    #[test]
    fn failure_list_names_a_bounded_number_of_items() {
        let mut list = FailureList::default();
        assert_eq!(list.message(), None);
        for i in 0..53 {
            list.push(format!("P{i}"), "boom");
        }
        let message = list.message().unwrap();
        assert!(message.starts_with("failed: P0 (boom), P1 (boom)"));
        assert!(message.ends_with("… and 3 more"));
        assert_eq!(list.len(), 53);
    }

    #[tokio::test]
    async fn recorder_opens_and_closes_a_row_with_counts() {
        let test = TestDb::new().await;
        let run = RunRecorder::start(&test.db, spec("stock", None))
            .await
            .unwrap()
            .unwrap();
        let id = run.id();
        run.progress(RunCounts {
            total: 10,
            success: 4,
            failed: 0,
        })
        .await
        .unwrap();
        let row = test
            .db
            .run(move |c| Ok(log::find(c, id)?))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.status, row.success_count), (RunStatus::Running, 4));
        assert_eq!(row.trigger, Trigger::Manual);
        assert!(row.instance.ends_with(&format!(":{}", std::process::id())));

        let counts = RunCounts {
            total: 10,
            success: 9,
            failed: 1,
        };
        assert!(run
            .finish(counts.status(), counts, Some("failed: P9 (refused)".into()))
            .await
            .unwrap());
        let row = test
            .db
            .run(move |c| Ok(log::find(c, id)?))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, RunStatus::Partial);
        assert_eq!((row.total_count, row.success_count, row.failed_count), (10, 9, 1));
        assert_eq!(row.message.as_deref(), Some("failed: P9 (refused)"));
        assert!(row.completed_at.unwrap() >= row.started_at);
    }

    #[tokio::test]
    async fn a_fire_time_is_taken_once() {
        let test = TestDb::new().await;
        let tick = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(2, 0, 0)
            .unwrap();
        let first = RunRecorder::start(&test.db, spec("stock", Some(tick)))
            .await
            .unwrap();
        assert!(first.is_some());
        assert!(RunRecorder::start(&test.db, spec("stock", Some(tick)))
            .await
            .unwrap()
            .is_none());
        assert!(
            !RunRecorder::record_skipped(&test.db, spec("stock", Some(tick)), "busy")
                .await
                .unwrap()
        );
        // Another job may use the same fire time.
        assert!(RunRecorder::start(&test.db, spec("prices", Some(tick)))
            .await
            .unwrap()
            .is_some());
        let latest = test
            .db
            .run(|c| Ok(log::latest_fire_time(c, "stock")?))
            .await
            .unwrap();
        assert_eq!(latest, Some(tick));
    }

    #[tokio::test]
    async fn an_interrupted_run_leaves_its_fire_time_to_be_caught_up_again() {
        let test = TestDb::new().await;
        let tick = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(3, 0, 0)
            .unwrap();
        let catch_up = RunSpec {
            trigger: Trigger::CatchUp,
            ..spec("stock", Some(tick))
        };
        let killed = RunRecorder::start(&test.db, catch_up.clone()).await.unwrap();
        assert!(killed.is_some());
        // The daemon running it is killed; the next start closes its row.
        let instance = db::instance_name();
        test.db
            .run(move |c| Ok(log::interrupt_rows_of(c, &[instance], "kill -9")?))
            .await
            .unwrap();
        let again = RunRecorder::start(&test.db, catch_up.clone())
            .await
            .unwrap()
            .expect("an interrupted run does not hold its fire time");
        again
            .finish(RunStatus::Success, RunCounts::default(), None)
            .await
            .unwrap();
        // A finished run does.
        assert!(RunRecorder::start(&test.db, catch_up).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rows_closed_by_recovery_count_what_was_not_reached_as_failed() {
        let test = TestDb::new().await;
        let mut ids = Vec::new();
        for (job, counts) in [("stock", (10, 4, 1)), ("prices", (3, 4, 1))] {
            let run = RunRecorder::start(&test.db, spec(job, None))
                .await
                .unwrap()
                .unwrap();
            let (total, success, failed) = counts;
            run.progress(RunCounts {
                total,
                success,
                failed,
            })
            .await
            .unwrap();
            ids.push(run.id());
        }
        let instance = db::instance_name();
        test.db
            .run(move |c| Ok(log::interrupt_rows_of(c, &[instance], "daemon crashed")?))
            .await
            .unwrap();
        let mut closed = Vec::new();
        for id in ids {
            let row = test
                .db
                .run(move |c| Ok(log::find(c, id)?))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.status, RunStatus::Interrupted);
            closed.push((row.total_count, row.success_count, row.failed_count));
        }
        assert_eq!(closed, [(10, 4, 6), (5, 4, 1)]);
    }

    #[tokio::test]
    async fn a_closed_row_is_not_reopened_by_a_late_finish() {
        let test = TestDb::new().await;
        let run = RunRecorder::start(&test.db, spec("stock", None))
            .await
            .unwrap()
            .unwrap();
        let id = run.id();
        let instance = db::instance_name();
        let closed = test
            .db
            .run(move |c| Ok(log::interrupt_rows_of(c, &[instance], "daemon crashed")?))
            .await
            .unwrap();
        assert_eq!(closed, 1);
        // The late close says who closed the row, from the row itself.
        assert_eq!(
            run.close(RunStatus::Success, RunCounts::default(), None).await,
            Closing::ClosedBefore {
                status: RunStatus::Interrupted,
                message: Some("daemon crashed".into())
            }
        );
        let row = test
            .db
            .run(move |c| Ok(log::find(c, id)?))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, RunStatus::Interrupted);
    }
}

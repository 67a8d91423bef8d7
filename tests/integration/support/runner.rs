//! A job runner for the scheduler tests that writes real rows through `RunRecorder` and blocks
//! on a semaphore, never on a sleep.

use super::wait::DEADLINE;
use chrono::NaiveDateTime;
use haier_sync::config::{OutboxJob, SyncJob};
use haier_sync::db::Db;
use haier_sync::runs::{RunCounts, RunRecorder, RunSpec, RunStatus, Trigger};
use haier_sync::scheduler::JobRunner;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

/// A runner that writes real rows. A blocking one records progress 5 of 10, then waits for a
/// permit (`release`) or its cancel token, and closes its row `success` or `interrupted`.
pub struct FakeRunner {
    db: Db,
    blocking: bool,
    permits: Semaphore,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    started: watch::Sender<usize>,
    /// The settings each order poller was started with.
    pub pollers: Mutex<Vec<OutboxJob>>,
    pollers_started: watch::Sender<usize>,
}

impl FakeRunner {
    pub fn new(db: &Db, blocking: bool) -> Arc<FakeRunner> {
        Arc::new(FakeRunner {
            db: db.clone(),
            blocking,
            permits: Semaphore::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            started: watch::channel(0).0,
            pollers: Mutex::new(Vec::new()),
            pollers_started: watch::channel(0).0,
        })
    }

    /// Lets one blocked run finish.
    pub fn release(&self) {
        self.permits.add_permits(1);
    }

    /// Waits until `n` runs have opened their row.
    pub async fn wait_started(&self, n: usize) {
        let mut rx = self.started.subscribe();
        tokio::time::timeout(DEADLINE, rx.wait_for(|s| *s >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} runs did not start in time"))
            .unwrap();
    }

    /// Waits until order pollers have been started `n` times.
    pub async fn wait_pollers_started(&self, n: usize) {
        let mut rx = self.pollers_started.subscribe();
        tokio::time::timeout(DEADLINE, rx.wait_for(|s| *s >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} poller starts did not happen in time"))
            .unwrap();
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl JobRunner for FakeRunner {
    async fn run(
        &self,
        job: SyncJob,
        trigger: Trigger,
        scheduled_for: Option<NaiveDateTime>,
        cancel: CancellationToken,
    ) -> anyhow::Result<RunStatus> {
        let spec = RunSpec {
            job_name: job.name.clone(),
            sync_type: job.kind.sync_type(),
            trigger,
            scheduled_for,
        };
        let Some(run) = RunRecorder::start(&self.db, spec).await? else {
            return Ok(RunStatus::Skipped);
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.started.send_modify(|n| *n += 1);
        let (status, counts, message) = if self.blocking {
            let partial = RunCounts {
                total: 10,
                success: 5,
                failed: 0,
            };
            run.progress(partial).await?;
            tokio::select! {
                permit = self.permits.acquire() => {
                    permit?.forget();
                    (RunStatus::Success, RunCounts { total: 10, success: 10, failed: 0 }, None)
                }
                _ = cancel.cancelled() => {
                    (RunStatus::Interrupted, partial, Some("interrupted: the daemon is stopping".to_owned()))
                }
            }
        } else {
            (
                RunStatus::Success,
                RunCounts {
                    total: 1,
                    success: 1,
                    failed: 0,
                },
                None,
            )
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        run.finish(status, counts, message).await?;
        Ok(status)
    }

    async fn run_until_stopped(&self, job: OutboxJob, cancel: CancellationToken) -> anyhow::Result<()> {
        self.pollers.lock().unwrap().push(job);
        self.pollers_started.send_modify(|n| *n += 1);
        cancel.cancelled().await;
        Ok(())
    }
}

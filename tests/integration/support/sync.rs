//! Running sync jobs the way `run-job` does, one step at a time, and reading what they wrote.

use super::app::TestApp;
use haier_sync::config::{SyncJob, SyncKind};
use haier_sync::db::DbConnection;
use haier_sync::runs::log::{self as sync_logs, SyncLog};
use haier_sync::sync::{self, NoProgress, Progress, RunOutcome, RunOverrides, RunRequest};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl TestApp {
    /// The first job of `kind`, or one with defaults.
    pub fn job(&self, kind: SyncKind) -> SyncJob {
        sync::job_of_kind(self.config(), kind)
    }

    /// Runs a job of `kind` with `overrides` and no progress display.
    pub async fn run(&self, kind: SyncKind, overrides: RunOverrides) -> RunOutcome {
        self.run_job(self.job(kind), overrides).await
    }

    pub async fn run_job(&self, job: SyncJob, overrides: RunOverrides) -> RunOutcome {
        sync::run_job(
            &self.ctx,
            RunRequest::manual(job, overrides),
            CancellationToken::new(),
            Arc::new(NoProgress),
        )
        .await
        .expect("run the job")
    }

    /// The log row of a run.
    pub async fn log(&self, outcome: &RunOutcome) -> SyncLog {
        let id = outcome.log_id.expect("the run has a log row");
        self.ctx
            .db
            .run(move |c| Ok(sync_logs::find(c, id)?))
            .await
            .unwrap()
            .expect("the log row exists")
    }

    /// Runs `f` on a connection.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> T {
        self.ctx.db.run(move |c| Ok(f(c)?)).await.unwrap()
    }
}

/// Cancels `cancel` once `after` items are done.
pub struct CancelAfter {
    pub after: u64,
    pub done: AtomicU64,
    pub cancel: CancellationToken,
}

impl Progress for CancelAfter {
    fn set_total(&self, _n: u64) {}
    fn advance(&self, n: u64) {
        if self.done.fetch_add(n, Ordering::SeqCst) + n >= self.after {
            self.cancel.cancel();
        }
    }
    fn message(&self, _text: &str) {}
}

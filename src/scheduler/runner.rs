//! The real [`JobRunner`]: sync jobs through `sync::run_job` and the order outbox through its
//! poller, all on one shared [`AppContext`] (one pool, one rate-limited client).

use super::JobRunner;
use crate::config::{OutboxJob, SyncJob};
use crate::context::AppContext;
use crate::runs::{RunStatus, Trigger};
use crate::sync::{self, NoProgress, RunOverrides, RunRequest};
use chrono::NaiveDateTime;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the jobs for the daemon.
#[derive(Debug, Clone)]
pub struct SyncJobRunner {
    ctx: AppContext,
}

impl SyncJobRunner {
    pub fn new(ctx: AppContext) -> SyncJobRunner {
        SyncJobRunner { ctx }
    }
}

#[async_trait::async_trait]
impl JobRunner for SyncJobRunner {
    async fn run(
        &self,
        job: SyncJob,
        trigger: Trigger,
        scheduled_for: Option<NaiveDateTime>,
        cancel: CancellationToken,
    ) -> anyhow::Result<RunStatus> {
        let request = RunRequest {
            job,
            trigger,
            scheduled_for,
            overrides: RunOverrides::default(),
        };
        let outcome = sync::run_job(&self.ctx, request, cancel, Arc::new(NoProgress)).await?;
        Ok(outcome.status)
    }

    async fn run_until_stopped(&self, job: OutboxJob, cancel: CancellationToken) -> anyhow::Result<()> {
        crate::orders::poller::run_until_stopped(self.ctx.clone(), job, cancel).await
    }
}

//! Supervision of the daemon's long-running tasks besides the scheduled runs: the order-outbox
//! pollers (one per enabled `order_outbox` job, restarted after an error or a settings change)
//! and the services (the callback receiver), whose end before shutdown stops the daemon. Starting
//! and stopping them in order is the daemon loop's (`daemon.rs`).

use super::JobRunner;
use crate::config::OutboxJob;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn, Instrument as _};

/// How long a failed order poller waits before it is started again.
const POLLER_RESTART_DELAY: Duration = Duration::from_secs(5);

/// A long-running part of the daemon besides the jobs (the callback receiver): started once,
/// stopped by its token at shutdown. Its end before shutdown is fatal: the daemon stops with a
/// failure so that systemd restarts it.
pub struct Service {
    pub name: String,
    pub(super) start: Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send>,
}

impl Service {
    pub fn new<F, Fut>(name: impl Into<String>, start: F) -> Service
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Service {
            name: name.into(),
            start: Box::new(move |cancel| Box::pin(start(cancel))),
        }
    }
}

/// The order-outbox pollers: one task per enabled `order_outbox` job, restarted when its
/// settings change, supervised (restarted after an error) until stopped.
pub(super) struct Pollers {
    runner: Arc<dyn JobRunner>,
    pub(super) running: HashMap<String, (CancellationToken, JoinHandle<anyhow::Result<()>>)>,
}

impl Pollers {
    pub(super) fn new(runner: Arc<dyn JobRunner>) -> Pollers {
        Pollers {
            runner,
            running: HashMap::new(),
        }
    }

    /// Starts (or restarts with new settings) the poller of `job`; stops it when the job is
    /// disabled.
    pub(super) fn set(&mut self, job: &OutboxJob) {
        let previous = self.running.remove(&job.name);
        if let Some((cancel, _)) = &previous {
            cancel.cancel();
        }
        if !job.enabled {
            return;
        }
        let cancel = CancellationToken::new();
        let runner = self.runner.clone();
        let job = job.clone();
        let name = job.name.clone();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            // One poller per job at a time: the new one starts when the old one has finished.
            if let Some((_, old)) = previous {
                let _ = old.await;
            }
            supervise_poller(runner, job, token).await;
            Ok(())
        });
        self.running.insert(name, (cancel, handle));
    }

    pub(super) fn stop(&mut self, name: &str) {
        if let Some((cancel, _)) = self.running.get(name) {
            cancel.cancel();
        }
    }

    pub(super) fn stop_all(&mut self) {
        for (cancel, _) in self.running.values() {
            cancel.cancel();
        }
    }

    pub(super) fn take_all(&mut self) -> Vec<(String, JoinHandle<anyhow::Result<()>>)> {
        self.running
            .drain()
            .map(|(name, (_, handle))| (format!("the order poller {name}"), handle))
            .collect()
    }
}

async fn supervise_poller(runner: Arc<dyn JobRunner>, job: OutboxJob, cancel: CancellationToken) {
    let span = tracing::info_span!("poller", job = %job.name);
    poll_until_stopped(runner, job, cancel).instrument(span).await
}

async fn poll_until_stopped(runner: Arc<dyn JobRunner>, job: OutboxJob, cancel: CancellationToken) {
    loop {
        debug!("Order poller starting (every {} ms)", job.poll_interval_ms);
        let result = runner.run_until_stopped(job.clone(), cancel.clone()).await;
        if cancel.is_cancelled() {
            if let Err(e) = result {
                warn!(job.name = %job.name, "Order poller stopped with an error: {e:#}");
            }
            return;
        }
        match result {
            Ok(()) => warn!(job.name = %job.name, "Order poller ended by itself; starting it again"),
            Err(e) => error!(
                job.name = %job.name,
                "Order poller failed: {e:#}; starting it again in {} s",
                POLLER_RESTART_DELAY.as_secs()
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLLER_RESTART_DELAY) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// Resolves with the name of the first service that ended, and takes it out of the list;
/// never when there are none.
pub(super) async fn first_ended(services: &mut Vec<(String, JoinHandle<anyhow::Result<()>>)>) -> String {
    if services.is_empty() {
        return std::future::pending().await;
    }
    let (result, index, _) = futures::future::select_all(services.iter_mut().map(|(_, h)| h)).await;
    let (name, _) = services.remove(index);
    match result {
        Ok(Ok(())) => error!("{name} ended"),
        Ok(Err(e)) => error!("{name} failed: {e:#}"),
        Err(e) => error!("{name} panicked: {e}"),
    }
    name
}

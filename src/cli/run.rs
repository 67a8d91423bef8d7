//! `haier-sync run`: the daemon. Loads `jobs.toml`, migrates, and hands the jobs, the order
//! poller and the callback receiver to [`crate::scheduler::Daemon`], until SIGTERM or SIGINT.
//! SIGHUP (systemd's `ExecReload`) and, with `[daemon] watch_config`, edits of the file reload it.

use crate::context::AppContext;
use crate::db::Db;
use crate::scheduler::{daemon::Signals, Daemon, JobRunner, Service};
use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;
use tracing::info;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Do not watch the config file for changes (SIGHUP still reloads it). Overrides
    /// `[daemon] watch_config`.
    #[arg(long)]
    pub no_watch: bool,

    /// Do not start the receiver of Haier's order callbacks (`[callback] listen`), e.g. when
    /// another daemon on this host receives them.
    #[arg(long)]
    pub no_callbacks: bool,
}

/// Runs the daemon until it is stopped; returns the exit code (0 after SIGTERM/SIGINT, 2 for an
/// invalid config, 1 when a part of the daemon failed so that systemd restarts it).
pub async fn run(args: RunArgs, config_path: &Path) -> anyhow::Result<i32> {
    // Listen first: a SIGTERM during start-up then stops the daemon gracefully once it runs.
    let signals = Signals::listen()?;
    let config = match super::load_config(config_path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let _log_guard = crate::telemetry::init(&config.log)?;
    info!(
        "haier-sync {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        config.path.display()
    );
    // One pool and one client for every job, the order poller and the callback receiver.
    let ctx = AppContext::build(config.clone()).await?;
    let (runner, services) = wire(&ctx, &args).await?;
    let mut daemon = Daemon::new(config, ctx.db.clone(), runner);
    for service in services {
        daemon = daemon.with_service(service);
    }
    if args.no_watch {
        daemon = daemon.without_file_watch();
    }
    let report = daemon.start().await?.run_until(signals).await?;
    Ok(report.exit_code())
}

/// Connects the daemon to the job code: the runner of the sync jobs and the order poller, and
/// the callback receiver, all sharing one client and one pool.
///
/// LEAD: when `sync::run_job` and `orders` are on main, replace the body with:
/// ```ignore
/// let runner: Arc<dyn JobRunner> = Arc::new(SyncJobRunner { ctx: ctx.clone() });
/// let mut services = Vec::new();
/// if !args.no_callbacks {
///     let listen = ctx.config.callback.listen;
///     let listener = tokio::net::TcpListener::bind(listen)
///         .await
///         .with_context(|| format!("Failed to listen for Haier's callbacks on {listen}"))?;
///     let ctx = ctx.clone();
///     services.push(Service::new(format!("the callback receiver on {listen}"), move |cancel| {
///         crate::orders::callback::serve(ctx, listener, cancel)
///     }));
/// }
/// Ok((runner, services))
/// ```
/// with
/// ```ignore
/// struct SyncJobRunner { ctx: AppContext }
///
/// #[async_trait::async_trait]
/// impl JobRunner for SyncJobRunner {
///     async fn run(&self, job: JobConfig, trigger: Trigger, scheduled_for: Option<NaiveDateTime>,
///                  cancel: CancellationToken) -> anyhow::Result<RunStatus> {
///         let request = crate::sync::RunRequest { job, trigger, scheduled_for, overrides: Default::default() };
///         let outcome = crate::sync::run_job(&self.ctx, request, cancel, Arc::new(crate::sync::NoProgress)).await?;
///         Ok(outcome.status)
///     }
///     async fn run_until_stopped(&self, job: JobConfig, cancel: CancellationToken) -> anyhow::Result<()> {
///         crate::orders::poller::run_until_stopped(self.ctx.clone(), job, cancel).await
///     }
/// }
/// ```
/// Until then every run writes a `failed` row that says so, and no callback receiver starts.
async fn wire(ctx: &AppContext, args: &RunArgs) -> anyhow::Result<(Arc<dyn JobRunner>, Vec<Service>)> {
    let _ = args;
    Ok((Arc::new(UnwiredRunner { db: ctx.db.clone() }), Vec::new()))
}

/// Stands in for the real runner until the job code is wired: each run writes a `failed` row.
struct UnwiredRunner {
    db: Db,
}

#[async_trait::async_trait]
impl JobRunner for UnwiredRunner {
    async fn run(
        &self,
        job: crate::config::JobConfig,
        trigger: crate::sync::Trigger,
        scheduled_for: Option<chrono::NaiveDateTime>,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<crate::sync::RunStatus> {
        use crate::sync::{RunCounts, RunRecorder, RunSpec, RunStatus};
        let spec = RunSpec {
            job_name: job.name.clone(),
            sync_type: job.kind.sync_type().to_owned(),
            trigger,
            scheduled_for,
        };
        let Some(run) = RunRecorder::start(&self.db, spec).await? else {
            return Ok(RunStatus::Skipped);
        };
        run.finish(
            RunStatus::Failed,
            RunCounts::default(),
            Some("this build has no job code wired into `run`".into()),
        )
        .await
        .context("Failed to close the run")?;
        Ok(RunStatus::Failed)
    }

    async fn run_until_stopped(
        &self,
        _job: crate::config::JobConfig,
        cancel: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        cancel.cancelled().await;
        Ok(())
    }
}

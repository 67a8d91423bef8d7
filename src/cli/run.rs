//! `haier-sync run`: the daemon. Loads `jobs.toml`, migrates, and hands the jobs, the order
//! poller and the callback receiver to [`crate::scheduler::Daemon`], until SIGTERM or SIGINT.
//! SIGHUP (systemd's `ExecReload`) and, with `[daemon] watch_config`, edits of the file reload it.

use crate::config::LiveConfig;
use crate::context::AppContext;
use crate::scheduler::{Daemon, JobRunner, Service, Signals, SyncJobRunner};
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
    let ctx = AppContext::connect(config.clone()).await?;
    // What the status page shows follows each reload the daemon applies.
    let live = LiveConfig::new(config.clone());
    let (runner, services) = wire(&ctx, &args, &live).await?;
    let client = ctx.client.clone();
    let mut daemon = Daemon::new(config, ctx.db.clone(), runner)
        .with_live_config(live)
        .with_client_stats(Arc::new(move || serde_json::to_string(&client.stats()).ok()));
    for service in services {
        daemon = daemon.with_service(service);
    }
    if args.no_watch {
        daemon = daemon.without_file_watch();
    }
    let report = daemon.start().await?.run_until(signals).await?;
    Ok(report.exit_code())
}

/// Connects the daemon to the job code: the runner of the sync jobs and the order poller, the
/// callback receiver, the status page (with `[admin]`) and the daily prune, all sharing one client and one pool.
async fn wire(
    ctx: &AppContext,
    args: &RunArgs,
    live: &LiveConfig,
) -> anyhow::Result<(Arc<dyn JobRunner>, Vec<Service>)> {
    let runner: Arc<dyn JobRunner> = Arc::new(SyncJobRunner::new(ctx.clone()));
    let mut services = Vec::new();
    if !args.no_callbacks {
        // Bound here, so that a taken port fails the start rather than the running daemon.
        let listen = ctx.config.callback.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("Failed to listen for Haier's callbacks on {listen}"))?;
        let ctx = ctx.clone();
        services.push(Service::new(
            format!("the callback receiver on {listen}"),
            move |cancel| crate::orders::callback::serve(ctx, listener, cancel),
        ));
    }
    if let Some(admin) = &ctx.config.admin {
        // Bound here too: a taken port fails the start.
        let listen = admin.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("Failed to listen for the status page ([admin] listen) on {listen}"))?;
        let (db, config) = (ctx.db.clone(), live.clone());
        services.push(Service::new(
            format!("the status page on {listen}"),
            move |cancel| crate::admin::serve(db, config, listener, cancel),
        ));
    }
    let (db, retention) = (ctx.db.clone(), ctx.config.retention);
    services.push(Service::new("the daily prune", move |cancel| {
        crate::retention::daily::run_until_stopped(db, retention, cancel)
    }));
    if let Some(shop) = ctx.config.shop.clone() {
        let url = shop.webhook_url.clone();
        let webhook = crate::shop::Webhook::new(shop)?;
        let db = ctx.db.clone();
        services.push(Service::new(
            format!(
                "the order events' webhook to {}",
                url.origin().ascii_serialization()
            ),
            move |cancel| crate::shop::run_until_stopped(webhook, db, cancel),
        ));
    }
    Ok((runner, services))
}

//! The daemon's run loop: start-up (instance row, crash recovery, triggers, catch-up, the order
//! pollers and services, READY to systemd), then heartbeat, systemd watchdog, config reload on
//! SIGHUP or file change, and graceful shutdown on SIGTERM/SIGINT. Building the client and the
//! services is the caller's (`cli/run.rs`).

use super::instance::{config_hash, instance_row, record_stop, register_instance};
use super::jobs::Scheduler;
use super::pauses::{run_claimed_catch_ups, PausedJobs};
use super::recovery::{
    free_claims_of_silent_instances, free_claims_of_silent_instances_on, log_freed_claims,
    recover_orphaned_runs, RecoveryReport,
};
use super::reload::{diff_jobs, sections_needing_restart, JobChange};
use super::run_now::{look_for_run_requests, take_run_requests, RunRequests};
use super::supervise::{first_ended, Pollers, Service};
use super::triggers::CronTriggers;
use super::watch::ConfigWatch;
use super::JobRunner;
use crate::config::{self, Config, ConfigError, JobSpec, LiveConfig};
use crate::control::pauses::{self, JobPause};
use crate::db::{self, instances, Db};
use anyhow::Context as _;
use chrono::Utc;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// After the grace period, how long cancelled runs get to close their rows before the daemon
/// closes what is left itself and exits.
pub const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// How often `jobs.toml` is checked for changes when `[daemon] watch_config` is on and its
/// folder cannot be watched through file-system notifications (which need no checks).
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How a reload went.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The file was valid; these changes were applied (none when nothing changed).
    Applied(Vec<JobChange>),
    /// The file was invalid; the running schedule is untouched.
    Refused(ConfigError),
}

/// How shutdown went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every run ended by itself within `shutdown_grace_ms`.
    pub ended_within_grace: bool,
    /// The jobs whose runs were cancelled when the grace was over.
    pub cancelled: Vec<String>,
    /// `running` rows the daemon closed itself because their run did not close them in time.
    pub rows_closed_by_daemon: usize,
    /// The service whose unexpected end stopped the daemon, if any.
    pub failed_service: Option<String>,
}

impl ShutdownReport {
    /// The process exit code: 0 after a requested stop, 1 when a service failed.
    pub fn exit_code(&self) -> i32 {
        if self.failed_service.is_some() {
            1
        } else {
            0
        }
    }
}

/// What the daemon is built from.
pub struct Daemon {
    config: Config,
    db: Db,
    runner: Arc<dyn JobRunner>,
    services: Vec<Service>,
    watch_interval: Duration,
    watch_disabled: bool,
    client_stats: Option<ClientStatsSource>,
    live: Option<LiveConfig>,
}

/// Gives the Haier client's counters as JSON, for the heartbeat row (`haier-sync status` shows
/// them).
pub type ClientStatsSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

enum Command {
    /// Reload, for the reason given.
    Reload(&'static str, oneshot::Sender<ReloadOutcome>),
    Shutdown,
}

/// A started daemon.
pub struct DaemonHandle {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<anyhow::Result<ShutdownReport>>,
    scheduler: Scheduler,
}

impl Daemon {
    /// `db` must be migrated already.
    pub fn new(config: Config, db: Db, runner: Arc<dyn JobRunner>) -> Daemon {
        Daemon {
            config,
            db,
            runner,
            services: Vec::new(),
            watch_interval: DEFAULT_WATCH_INTERVAL,
            watch_disabled: false,
            client_stats: None,
            live: None,
        }
    }

    /// Publishes every reload it applies to `live`, for what reads the config while the daemon
    /// runs (the status page).
    pub fn with_live_config(mut self, live: LiveConfig) -> Daemon {
        self.live = Some(live);
        self
    }

    /// Writes the client's counters with every heartbeat.
    pub fn with_client_stats(mut self, source: ClientStatsSource) -> Daemon {
        self.client_stats = Some(source);
        self
    }

    /// Never watches `jobs.toml` for changes, whatever `[daemon] watch_config` says (SIGHUP still
    /// reloads).
    pub fn without_file_watch(mut self) -> Daemon {
        self.watch_disabled = true;
        self
    }

    pub fn with_service(mut self, service: Service) -> Daemon {
        self.services.push(service);
        self
    }

    /// How often `jobs.toml` is checked for changes where file-system notifications are not
    /// available (tests shorten it).
    #[cfg(any(test, feature = "test-support"))]
    pub fn with_watch_interval(mut self, interval: Duration) -> Daemon {
        self.watch_interval = interval;
        self
    }

    /// Registers the instance, closes the rows of crashed instances, schedules every enabled job,
    /// catches up missed ticks, starts the order pollers and services, tells systemd READY, and
    /// runs the loop in a task.
    pub async fn start(self) -> anyhow::Result<DaemonHandle> {
        let Daemon {
            config,
            db,
            runner,
            services,
            watch_interval,
            watch_disabled,
            client_stats,
            live,
        } = self;
        let instance = db::instance_name();
        let row = instance_row(&instance, config_hash(&config.path).await);
        register_instance(&db, &row).await?;
        let now = Utc::now();
        recover_orphaned_runs(&db, config.daemon.heartbeat_ms, now).await?;
        // Daemons of other hosts silent for three beats: their runs are caught up below with the
        // rest.
        free_claims_of_silent_instances(&db, config.daemon.heartbeat_ms, now).await?;

        let scheduler = Scheduler::new(db.clone(), runner.clone(), config.daemon.heartbeat_ms);
        let mut triggers = CronTriggers::new(scheduler.clone()).await?;
        let mut pollers = Pollers::new(runner);
        let mut paused = PausedJobs::default();
        if let Err(e) = paused.refresh(&db).await {
            warn!("{e:#}; order pollers start, and follow pauses from the next heartbeat");
        }
        for job in config.jobs.values() {
            match job {
                JobSpec::Sync(job) => {
                    scheduler.upsert_job(job.clone());
                    triggers.set(job).await?;
                }
                JobSpec::Outbox(job) if paused.contains(&job.name) => {}
                JobSpec::Outbox(job) => pollers.set(job),
            }
        }
        triggers.start().await?;
        scheduler.catch_up(now).await?;

        let services_cancel = CancellationToken::new();
        let services = services
            .into_iter()
            .map(|s| {
                let name = s.name;
                info!("Starting {name}");
                (name, tokio::spawn((s.start)(services_cancel.child_token())))
            })
            .collect();

        let scheduled = triggers.names();
        info!(
            "Daemon {instance} started: {} scheduled job(s) ({}), {} order poller(s)",
            scheduled.len(),
            scheduled.join(", "),
            pollers.running.len()
        );
        notify(&[NotifyState::Ready, NotifyState::Status("running")]);

        let (tx, rx) = mpsc::channel(8);
        let watch = ConfigWatch::new(
            &config.path,
            config.daemon.watch_config && !watch_disabled,
            watch_interval,
        )
        .await;
        let running = Running {
            config,
            db,
            instance,
            row,
            scheduler: scheduler.clone(),
            triggers,
            pollers,
            paused,
            services,
            services_cancel,
            commands: rx,
            watch_disabled,
            watch,
            client_stats,
            live,
        };
        Ok(DaemonHandle {
            commands: tx,
            task: tokio::spawn(running.run()),
            scheduler,
        })
    }
}

impl DaemonHandle {
    /// The scheduler, to fire ticks directly (tests, the demo).
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Re-reads `jobs.toml` and applies the difference (what SIGHUP does).
    pub async fn reload(&self) -> anyhow::Result<ReloadOutcome> {
        self.reload_because("requested").await
    }

    async fn reload_because(&self, reason: &'static str) -> anyhow::Result<ReloadOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.commands
            .send(Command::Reload(reason, reply))
            .await
            .map_err(|_| anyhow::anyhow!("Failed to reload: the daemon has stopped"))?;
        outcome
            .await
            .map_err(|_| anyhow::anyhow!("Failed to reload: the daemon stopped meanwhile"))
    }

    /// Stops the daemon gracefully (what SIGTERM does) and waits for it.
    pub async fn shutdown(self) -> anyhow::Result<ShutdownReport> {
        // The loop may have stopped already (a failed service); its report says why.
        let _ = self.commands.send(Command::Shutdown).await;
        self.wait().await
    }

    /// Waits until the daemon stops by itself (a failed service).
    pub async fn wait(self) -> anyhow::Result<ShutdownReport> {
        self.task.await.context("Failed to join the daemon loop")?
    }

    /// Runs until SIGTERM or SIGINT (graceful stop) while SIGHUP reloads. Returns the report.
    pub async fn run_until(mut self, mut signals: Signals) -> anyhow::Result<ShutdownReport> {
        loop {
            tokio::select! {
                _ = signals.term.recv() => { info!("SIGTERM received"); break; }
                _ = signals.int.recv() => { info!("SIGINT received"); break; }
                _ = signals.hup.recv() => {
                    // The loop logs the outcome.
                    let _ = self.reload_because("SIGHUP").await;
                }
                result = &mut self.task => {
                    return result.context("Failed to join the daemon loop")?;
                }
            }
        }
        self.shutdown().await
    }
}

/// The signals the daemon obeys, listened to from the start so that none is lost while the
/// daemon starts.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn listen() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("Failed to listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("Failed to listen for SIGINT")?,
            hup: signal(SignalKind::hangup()).context("Failed to listen for SIGHUP")?,
        })
    }
}

/// What one heartbeat's trip to the database wrote and read, each part with its own outcome.
struct BeatLook {
    /// The heartbeat was recorded (`false`: this daemon had been taken for gone and registered
    /// again).
    beat: diesel::QueryResult<bool>,
    silent: diesel::QueryResult<RecoveryReport>,
    paused: diesel::QueryResult<Vec<JobPause>>,
    catch_ups: diesel::QueryResult<Vec<String>>,
    requests: diesel::QueryResult<RunRequests>,
}

/// The daemon while it runs.
struct Running {
    config: Config,
    db: Db,
    instance: String,
    /// This daemon's row as registered, to register again when another daemon took it for gone.
    row: instances::Instance,
    scheduler: Scheduler,
    triggers: CronTriggers,
    pollers: Pollers,
    paused: PausedJobs,
    services: Vec<(String, JoinHandle<anyhow::Result<()>>)>,
    services_cancel: CancellationToken,
    commands: mpsc::Receiver<Command>,
    watch_disabled: bool,
    watch: ConfigWatch,
    client_stats: Option<ClientStatsSource>,
    live: Option<LiveConfig>,
}

impl Running {
    async fn run(mut self) -> anyhow::Result<ShutdownReport> {
        let mut heartbeat = interval(Duration::from_millis(self.config.daemon.heartbeat_ms));
        let watchdog_period = watchdog_period();
        let mut watchdog = interval(watchdog_period.unwrap_or(Duration::from_secs(3600)));
        if let Some(period) = watchdog_period {
            info!("systemd watchdog on: pinging every {} ms", period.as_millis());
        }
        let mut failed_service = None;
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Reload(reason, reply)) => {
                        let outcome = self.reload(reason).await;
                        let _ = reply.send(outcome);
                    }
                    Some(Command::Shutdown) | None => break,
                },
                _ = self.watch.next_check() => {
                    if self.watch.changed().await {
                        self.reload("the file changed").await;
                    }
                }
                _ = heartbeat.tick() => self.beat().await,
                _ = watchdog.tick(), if watchdog_period.is_some() => notify(&[NotifyState::Watchdog]),
                name = first_ended(&mut self.services) => {
                    error!("{name} stopped unexpectedly; stopping the daemon so that it is restarted");
                    failed_service = Some(name);
                    break;
                }
            }
            // A reload (SIGHUP, a file change) may have changed `heartbeat_ms`: the timer follows.
            let period = interval_period(Duration::from_millis(self.config.daemon.heartbeat_ms));
            if heartbeat.period() != period {
                heartbeat = interval(period);
            }
            // And so does the watch, `watch_config`.
            self.watch
                .follow_setting(self.config.daemon.watch_config && !self.watch_disabled);
        }
        let mut report = self.shutdown().await?;
        report.failed_service = failed_service;
        Ok(report)
    }

    /// Records that this instance is alive (registering again if another daemon took it for
    /// gone), frees the claims of daemons silent for three beats and catches up their runs,
    /// re-makes triggers after a UTC offset change, follows pauses (stopping and starting order
    /// pollers, running the catch-ups `resume --catch-up` asked for) and takes run-now requests.
    /// Run-now requests are looked for here, when the daemon wakes anyway, so an idle daemon
    /// gains no wake-up for them.
    ///
    /// Every statement of an idle beat is made in one trip to the blocking pool, on one
    /// connection and outside any transaction (each statement commits on its own, as when they
    /// were separate trips); each part's error is its own, so one failing leaves the others
    /// done. Only what the reads found (a silent daemon, a catch-up, a request) takes more trips.
    async fn beat(&mut self) {
        let instance = self.instance.clone();
        let stats = self.client_stats.as_ref().and_then(|source| source());
        let mut row = self.row.clone();
        let heartbeat_ms = self.config.daemon.heartbeat_ms;
        let looked = self
            .db
            .run(move |conn| {
                let beat = (|| {
                    let now = db::now_utc();
                    if instances::heartbeat(conn, &instance, now, stats.as_deref())? {
                        return Ok(true);
                    }
                    row.heartbeat_at = now;
                    row.client_stats = stats;
                    instances::reinstate(conn, &row)?;
                    Ok(false)
                })();
                let silent = free_claims_of_silent_instances_on(conn, heartbeat_ms, Utc::now());
                let paused = pauses::pauses_in_force(conn);
                let catch_ups = pauses::pending_catch_ups(conn);
                let requests = look_for_run_requests(conn, heartbeat_ms);
                Ok(BeatLook {
                    beat,
                    silent,
                    paused,
                    catch_ups,
                    requests,
                })
            })
            .await;
        let look = match looked {
            Ok(look) => Some(look),
            Err(e) => {
                warn!("Failed to record the heartbeat and read what it follows: {e:#}");
                None
            }
        };
        if let Some(look) = look {
            self.follow_beat_look(look).await;
        } else if let Err(e) = self.triggers.follow_offset_changes(Utc::now()).await {
            error!("Failed to follow a UTC offset change: {e:#}");
        }
    }

    /// Acts on what the heartbeat's trip found, in the order the parts were made.
    async fn follow_beat_look(&mut self, look: BeatLook) {
        match look.beat {
            Ok(true) => {}
            Ok(false) => warn!(
                "This daemon ({}) had been taken for gone by another one (no heartbeat for {} \
                 beats): its running rows were closed as interrupted and its order leases freed; \
                 registered again. Runs it still ends keep the other daemon's closing.",
                self.instance,
                super::recovery::FOREIGN_STALE_HEARTBEATS
            ),
            Err(e) => warn!("Failed to record the heartbeat: {e}"),
        }
        match look.silent {
            Ok(report) => self.catch_up_interrupted(report).await,
            Err(e) => warn!("Failed to free the claims of silent instances: {e}"),
        }
        if let Err(e) = self.triggers.follow_offset_changes(Utc::now()).await {
            error!("Failed to follow a UTC offset change: {e:#}");
        }
        match look.paused {
            Ok(rows) => self.follow_pauses(&rows),
            Err(e) => warn!("Failed to read the paused jobs: {e}"),
        }
        match look.catch_ups {
            Ok(pending) => run_claimed_catch_ups(&self.db, &self.scheduler, pending, Utc::now()).await,
            Err(e) => error!("Failed to read the catch-ups asked for on resume: {e}"),
        }
        match look.requests {
            Ok(requests) => take_run_requests(&self.db, &self.scheduler, &self.instance, requests).await,
            Err(e) => warn!("Failed to look for run-now requests: {e}"),
        }
    }

    /// Logs the claims freed of daemons silent for three beats, and catches up the runs it
    /// closed.
    async fn catch_up_interrupted(&self, report: RecoveryReport) {
        log_freed_claims(&report);
        for (name, fire_time) in report.interrupted {
            let Some(fire_time) = fire_time else { continue };
            match self.scheduler.catch_up_interrupted(&name, fire_time).await {
                Ok(outcome) => info!(job.name = %name, "Catch-up of an interrupted run: {outcome:?}"),
                Err(e) => error!(job.name = %name, "Failed to catch up an interrupted run: {e:#}"),
            }
        }
    }

    /// Stops the order pollers of newly paused jobs and starts those of resumed ones, `rows`
    /// being the pauses in force. (Scheduled ticks read the pause themselves.)
    fn follow_pauses(&mut self, rows: &[JobPause]) {
        let changes = self.paused.follow(rows);
        for name in &changes.paused {
            if let Some(JobSpec::Outbox(_)) = self.config.jobs.get(name) {
                self.pollers.stop(name);
            }
        }
        for name in &changes.resumed {
            if let Some(JobSpec::Outbox(job)) = self.config.jobs.get(name) {
                self.pollers.set(job);
            }
        }
    }

    /// Validates the whole file, then applies only the difference; an invalid file changes nothing.
    async fn reload(&mut self, reason: &str) -> ReloadOutcome {
        let path = self.config.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigError {
                    file: self.config.path.clone(),
                    key: None,
                    line: None,
                    env_var: None,
                    message: format!("the loader panicked: {e}"),
                })
            });
        self.watch.remember().await;
        let new = match loaded {
            Ok(new) => new,
            Err(e) => {
                error!("Reload ({reason}) refused, the running schedule is unchanged: {e}");
                return ReloadOutcome::Refused(e);
            }
        };
        match NotifyState::monotonic_usec_now() {
            Ok(now) => notify(&[NotifyState::Reloading, now, NotifyState::Status("reloading")]),
            Err(_) => notify(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
        }
        let changes = diff_jobs(&self.config.jobs, &new.jobs);
        for change in &changes {
            info!("Reload ({reason}): {change}");
            if let Err(e) = self.apply(change, &new).await {
                error!(
                    "Reload: failed to apply the change of job {}: {e:#}",
                    change.name()
                );
            }
        }
        for section in sections_needing_restart(&self.config, &new) {
            warn!("Reload: [{section}] changed; it takes effect after a restart");
        }
        let old_daemon = &self.config.daemon;
        if old_daemon.shutdown_grace_ms != new.daemon.shutdown_grace_ms
            || old_daemon.heartbeat_ms != new.daemon.heartbeat_ms
            || old_daemon.watch_config != new.daemon.watch_config
        {
            info!(
                "Reload: [daemon] now shutdown_grace_ms = {}, heartbeat_ms = {}, watch_config = {}",
                new.daemon.shutdown_grace_ms, new.daemon.heartbeat_ms, new.daemon.watch_config
            );
            self.scheduler.set_heartbeat_ms(new.daemon.heartbeat_ms);
        }
        if changes.is_empty() {
            info!("Reload ({reason}): no job changed");
        }
        self.record_config_hash().await;
        // The sections that need a restart keep describing what runs.
        self.config.jobs = new.jobs;
        self.config.daemon = new.daemon;
        self.config.defaults = new.defaults;
        if let Some(live) = &self.live {
            live.publish(self.config.clone());
        }
        notify(&[NotifyState::Ready, NotifyState::Status("running")]);
        ReloadOutcome::Applied(changes)
    }

    /// Records the fingerprint of the file just applied, for `status` to compare instances.
    async fn record_config_hash(&mut self) {
        let hash = config_hash(&self.config.path).await;
        self.row.config_hash = hash.clone();
        let instance = self.instance.clone();
        if let Err(e) = self
            .db
            .run(move |conn| Ok(instances::set_config_hash(conn, &instance, hash.as_deref())?))
            .await
        {
            warn!("Failed to record the config's fingerprint: {e:#}");
        }
    }

    async fn apply(&mut self, change: &JobChange, new: &Config) -> anyhow::Result<()> {
        match new.jobs.get(change.name()) {
            None => {
                self.scheduler.remove_job(change.name());
                self.triggers.remove(change.name()).await?;
                self.pollers.stop(change.name());
            }
            // A job whose kind changed leaves the scheduler for the pollers, or the other way.
            Some(JobSpec::Sync(job)) => {
                self.pollers.stop(&job.name);
                self.scheduler.upsert_job(job.clone());
                self.triggers.set(job).await?;
            }
            Some(JobSpec::Outbox(job)) => {
                self.scheduler.remove_job(&job.name);
                self.triggers.remove(&job.name).await?;
                if self.paused.contains(&job.name) {
                    self.pollers.stop(&job.name);
                } else {
                    self.pollers.set(job);
                }
            }
        }
        Ok(())
    }

    /// Stops taking ticks, lets runs end within the grace, then cancels them; closes what is
    /// left; marks the instance stopped.
    async fn shutdown(mut self) -> anyhow::Result<ShutdownReport> {
        let grace = Duration::from_millis(self.config.daemon.shutdown_grace_ms);
        let running = self.scheduler.running_jobs();
        info!(
            "Stopping: no new ticks; waiting up to {} ms for {} running job(s){}",
            grace.as_millis(),
            running.len(),
            if running.is_empty() {
                String::new()
            } else {
                format!(" ({})", running.join(", "))
            }
        );
        notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
        self.scheduler.stop_taking_ticks();
        if let Err(e) = self.triggers.shutdown().await {
            warn!("{e:#}");
        }
        // The pollers and services finish what they hold and stop.
        self.services_cancel.cancel();
        self.pollers.stop_all();

        let started = Instant::now();
        let mut report = ShutdownReport {
            ended_within_grace: self.scheduler.wait_for_runs(grace).await,
            ..ShutdownReport::default()
        };
        if !report.ended_within_grace {
            report.cancelled = self.scheduler.running_jobs();
            warn!(
                "Grace of {} ms is over; cancelling {}",
                grace.as_millis(),
                report.cancelled.join(", ")
            );
            self.scheduler.cancel_runs();
            if !self.scheduler.wait_for_runs(CANCEL_WAIT).await {
                warn!(
                    "Runs still going {} s after cancelling; closing their rows",
                    CANCEL_WAIT.as_secs()
                );
            }
        }
        let remaining = (grace + CANCEL_WAIT)
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let deadline = tokio::time::Instant::now() + remaining;
        for (name, handle) in self.pollers.take_all().into_iter().chain(self.services) {
            match tokio::time::timeout_at(deadline, handle).await {
                Ok(Ok(Ok(()))) => debug!("{name} stopped"),
                Ok(Ok(Err(e))) => warn!("{name} stopped with an error: {e:#}"),
                Ok(Err(e)) => warn!("{name} panicked: {e}"),
                Err(_) => warn!("{name} did not stop in time; leaving it"),
            }
        }

        // The runs' own closes that the database did not take first, so that each row says how
        // its run ended; then what no run closed, and the stop. Both are tried again until the
        // shutdown's time is up (a database that is back within it gets every row closed).
        let unclosed = self.db.background().finish(deadline).await;
        if unclosed > 0 {
            error!(
                "{unclosed} run(s) could not close their log row before the daemon stopped: the \
                 database does not take writes; the next start closes them as interrupted"
            );
        }
        report.rows_closed_by_daemon = record_stop(&self.db, &self.instance, deadline).await.context(
            "Failed to record the daemon's stop (its running rows stay open until the next start)",
        )?;
        info!(
            "Stopped after {} ms{}",
            started.elapsed().as_millis(),
            if report.cancelled.is_empty() {
                String::new()
            } else {
                format!("; interrupted {}", report.cancelled.join(", "))
            }
        );
        Ok(report)
    }
}

/// An interval that does not burst after a stall, and does not fire at once.
fn interval(period: Duration) -> tokio::time::Interval {
    let period = interval_period(period);
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// The period [`interval`] keeps for `period`: at least 10 ms.
fn interval_period(period: Duration) -> Duration {
    period.max(Duration::from_millis(10))
}

/// Half the systemd watchdog interval, when systemd set one for this process.
fn watchdog_period() -> Option<Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2))
}

/// Tells systemd; does nothing when not run by systemd.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        warn!("Failed to notify systemd: {e}");
    }
}

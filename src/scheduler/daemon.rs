//! The daemon's run loop: start-up (instance row, crash recovery, triggers, catch-up, the order
//! pollers and services, READY to systemd), then heartbeat, systemd watchdog, config reload on
//! SIGHUP or file change, and graceful shutdown on SIGTERM/SIGINT. Building the client and the
//! services is the caller's (`cli/run.rs`).

use super::instance::{config_hash, instance_row, record_stop, register_instance};
use super::jobs::Scheduler;
use super::pauses::{run_claimed_catch_ups, PausedJobs};
use super::recovery::{free_claims_of_silent_instances, recover_orphaned_runs};
use super::reload::{diff_jobs, sections_needing_restart, JobChange};
use super::run_now::take_run_requests;
use super::supervise::{first_ended, Pollers, Service};
use super::triggers::CronTriggers;
use super::JobRunner;
use crate::config::{self, Config, ConfigError, JobSpec};
use crate::db::{self, instances, Db};
use anyhow::Context as _;
use chrono::Utc;
use sd_notify::NotifyState;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// After the grace period, how long cancelled runs get to close their rows before the daemon
/// closes what is left itself and exits.
pub const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// How often `jobs.toml` is checked for changes when `[daemon] watch_config` is on.
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
        }
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

    /// How often `jobs.toml` is checked for changes (tests shorten it).
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
        let fingerprint = FileFingerprint::read(&config.path).await;
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
            watch_interval,
            watch_disabled,
            fingerprint,
            client_stats,
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
    watch_interval: Duration,
    watch_disabled: bool,
    fingerprint: FileFingerprint,
    client_stats: Option<ClientStatsSource>,
}

impl Running {
    async fn run(mut self) -> anyhow::Result<ShutdownReport> {
        let mut heartbeat = interval(Duration::from_millis(self.config.daemon.heartbeat_ms));
        let mut watch = interval(self.watch_interval);
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
                _ = watch.tick(), if self.config.daemon.watch_config && !self.watch_disabled => {
                    if self.fingerprint.changed(&self.config.path).await {
                        self.reload("the file changed").await;
                    }
                }
                _ = heartbeat.tick() => {
                    self.beat().await;
                    // Run-now requests are looked for at every heartbeat, when the daemon wakes
                    // anyway: an idle daemon gains no wake-up for them.
                    take_run_requests(
                        &self.db,
                        &self.scheduler,
                        &self.instance,
                        self.config.daemon.heartbeat_ms,
                    )
                    .await;
                }
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
        }
        let mut report = self.shutdown().await?;
        report.failed_service = failed_service;
        Ok(report)
    }

    /// Records that this instance is alive (registering again if another daemon took it for
    /// gone), frees the claims of daemons silent for three beats and catches up their runs, and
    /// re-makes triggers after a UTC offset change.
    async fn beat(&mut self) {
        let instance = self.instance.clone();
        let stats = self.client_stats.as_ref().and_then(|source| source());
        let mut row = self.row.clone();
        let beat = self
            .db
            .run(move |conn| {
                let now = db::now_utc();
                if instances::heartbeat(conn, &instance, now, stats.as_deref())? {
                    return Ok(true);
                }
                row.heartbeat_at = now;
                row.client_stats = stats;
                instances::reinstate(conn, &row)?;
                Ok(false)
            })
            .await;
        match beat {
            Ok(true) => {}
            Ok(false) => warn!(
                "This daemon ({}) had been taken for gone by another one (no heartbeat for {} \
                 beats): its running rows were closed as interrupted and its order leases freed; \
                 registered again. Runs it still ends keep the other daemon's closing.",
                self.instance,
                super::recovery::FOREIGN_STALE_HEARTBEATS
            ),
            Err(e) => warn!("Failed to record the heartbeat: {e:#}"),
        }
        self.free_claims_of_silent_instances().await;
        if let Err(e) = self.triggers.follow_offset_changes(Utc::now()).await {
            error!("Failed to follow a UTC offset change: {e:#}");
        }
        self.follow_pauses().await;
    }

    /// Frees the claims of daemons silent for three beats and catches up the runs it closed.
    async fn free_claims_of_silent_instances(&self) {
        let report = match free_claims_of_silent_instances(
            &self.db,
            self.config.daemon.heartbeat_ms,
            Utc::now(),
        )
        .await
        {
            Ok(report) => report,
            Err(e) => {
                warn!("{e:#}");
                return;
            }
        };
        for (name, fire_time) in report.interrupted {
            let Some(fire_time) = fire_time else { continue };
            match self.scheduler.catch_up_interrupted(&name, fire_time).await {
                Ok(outcome) => info!(job.name = %name, "Catch-up of an interrupted run: {outcome:?}"),
                Err(e) => error!(job.name = %name, "Failed to catch up an interrupted run: {e:#}"),
            }
        }
    }

    /// Stops the order pollers of newly paused jobs, starts those of resumed ones, and runs the
    /// catch-ups `resume --catch-up` asked for. (Scheduled ticks read the pause themselves.)
    async fn follow_pauses(&mut self) {
        let changes = match self.paused.refresh(&self.db).await {
            Ok(changes) => changes,
            Err(e) => {
                warn!("{e:#}");
                return;
            }
        };
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
        run_claimed_catch_ups(&self.db, &self.scheduler, Utc::now()).await;
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
        self.fingerprint = FileFingerprint::read(&self.config.path).await;
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

/// A hash of the config file's content, or `None` when it cannot be read.
/// What the config watch compares: the file's metadata (one `stat`, every check) and its
/// content's hash (read only when the metadata changed, or when it was read while the file was
/// fresh), so a watch tick that finds nothing new costs one system call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileFingerprint {
    stamp: Option<FileStamp>,
    content: Option<u64>,
    /// The file's modification time was over [`STAMP_SETTLED`] old when it was read: a later
    /// write gives it another one. (File times come from a coarse clock: two writes a few
    /// milliseconds apart can share one, so a fresh stamp proves nothing.)
    settled: bool,
}

/// How old a file's modification time must be to tell every later write apart.
const STAMP_SETTLED: Duration = Duration::from_secs(2);

/// Length, modification time and inode: what changes when the file is written or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        })
    }
}

impl FileFingerprint {
    async fn read(path: &Path) -> FileFingerprint {
        let stamp = FileStamp::of(path);
        let settled = stamp
            .as_ref()
            .and_then(|s| s.modified)
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STAMP_SETTLED);
        let path: PathBuf = path.to_path_buf();
        let content = tokio::fs::read(&path).await.ok().map(|bytes| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            hasher.finish()
        });
        FileFingerprint {
            stamp,
            content,
            settled,
        }
    }

    /// Whether the file's content changed since the last look (a write that keeps the content
    /// is not a change); remembers what it found.
    async fn changed(&mut self, path: &Path) -> bool {
        if self.settled && self.stamp.is_some() && FileStamp::of(path) == self.stamp {
            return false;
        }
        let now = FileFingerprint::read(path).await;
        let changed = now.content != self.content;
        *self = now;
        changed
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_config_watch_sees_a_new_content_and_not_a_touch() {
        let dir = crate::db::testing::TempDir::new("haier-sync-fingerprint").unwrap();
        let path = dir.path().join("jobs.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(old))
            .unwrap();
        let mut fingerprint = FileFingerprint::read(&path).await;
        assert!(fingerprint.settled);
        assert!(!fingerprint.changed(&path).await, "nothing happened");
        // Rewritten with the same content (a new modification time): not a change.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, "a = 1\n").unwrap();
        assert!(!fingerprint.changed(&path).await, "same content");
        // The same length, another content.
        std::fs::write(&path, "a = 2\n").unwrap();
        assert!(fingerprint.changed(&path).await, "new content");
        assert!(!fingerprint.changed(&path).await, "seen already");
        // Replaced by another file (a new inode), as editors save.
        let other = dir.path().join("jobs.toml.new");
        std::fs::write(&other, "a = 3\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(fingerprint.changed(&path).await, "replaced");
        std::fs::remove_file(&path).unwrap();
        assert!(fingerprint.changed(&path).await, "removed");
        assert!(!fingerprint.changed(&path).await, "still missing");
    }
}

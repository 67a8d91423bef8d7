//! Per-job firing: a tick becomes a run, a `skipped` row, a queued run, or nothing. Owns the
//! overlap guard (in this process and across live instances), jitter, catch-up at start, and the
//! task tracking that shutdown waits on; `CronTriggers` (`triggers.rs`) turns cron ticks into
//! calls of [`Scheduler::on_tick`]. It does not do a job's work (that is the [`JobRunner`]).

use super::{alive_since, fire_time_at_or_before, is_scheduled, missed, JobRunner};
use crate::config::{CatchUp, Overlap, Schedule, SyncJob};
use crate::control::pauses;
use crate::db::{self, instances, Db};
use crate::runs::{self, RunRecorder, RunSpec, RunStatus, Trigger};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument as _};

/// What became of one tick.
#[derive(Debug)]
pub enum FireOutcome {
    /// A run started (after its jitter). The handle ends when it, and any run queued behind it,
    /// has ended.
    Started(RunHandle),
    /// The previous run still goes; this tick runs as soon as it ends (`overlap = "queue"`).
    Queued,
    /// The previous run still goes (here or on another live instance): a `skipped` row was written.
    Skipped,
    /// Nothing happened, for the reason given (unknown or disabled job, tick already fired, a
    /// stale trigger, the daemon stopping, nothing to catch up).
    Ignored(&'static str),
}

/// What became of a run-now request a daemon claimed ([`Scheduler::start_manual`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualStart {
    /// The run started; its `on_end` gets how it ended.
    Started,
    /// Not run, for the reason given.
    Refused(String),
}

/// A started run, to wait for in tests and at shutdown.
#[derive(Debug)]
pub struct RunHandle(JoinHandle<Vec<RunStatus>>);

impl RunHandle {
    /// Waits for the run (and the runs queued behind it) and returns their statuses; a run that
    /// never started (the daemon stopped during its jitter) has none.
    pub async fn wait(self) -> Vec<RunStatus> {
        self.0.await.unwrap_or_default()
    }
}

/// One job's state in this process.
#[derive(Debug)]
struct Slot {
    /// `None` once the job left `jobs.toml`; the slot lives on only while its run goes.
    config: Option<SyncJob>,
    running: bool,
    /// The tick waiting for the running one (`overlap = "queue"`; at most one).
    queued: Option<(DateTime<Utc>, Trigger)>,
    /// The newest fire time handled, so a late or repeated trigger does not fire a tick twice.
    last_fired: Option<DateTime<Utc>>,
}

struct Inner {
    db: Db,
    runner: Arc<dyn JobRunner>,
    instance: String,
    slots: Mutex<BTreeMap<String, Slot>>,
    tracker: TaskTracker,
    /// Cancelled when the daemon stops taking ticks; ends jitter waits.
    stop_ticks: CancellationToken,
    /// Cancelled when the shutdown grace is over; the parent of every run's token.
    cancel_runs: CancellationToken,
    heartbeat_ms: AtomicU64,
}

/// The scheduler's core, shared by the cron triggers and the daemon loop. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

enum Decision {
    Run(SyncJob),
    Skip(SyncJob, &'static str),
    Done(FireOutcome),
}

impl Scheduler {
    /// A scheduler with no jobs. `heartbeat_ms` sets which other instances count as alive.
    pub fn new(db: Db, runner: Arc<dyn JobRunner>, heartbeat_ms: u64) -> Scheduler {
        Scheduler {
            inner: Arc::new(Inner {
                db,
                runner,
                instance: db::instance_name(),
                slots: Mutex::new(BTreeMap::new()),
                tracker: TaskTracker::new(),
                stop_ticks: CancellationToken::new(),
                cancel_runs: CancellationToken::new(),
                heartbeat_ms: AtomicU64::new(heartbeat_ms),
            }),
        }
    }

    pub fn set_heartbeat_ms(&self, heartbeat_ms: u64) {
        self.inner.heartbeat_ms.store(heartbeat_ms, Ordering::Relaxed);
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        // A panic while holding this lock leaves plain data behind, still consistent enough to use.
        self.inner
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a job or replaces its settings. A run that goes on keeps the settings it started with.
    pub fn upsert_job(&self, job: SyncJob) {
        let mut slots = self.slots();
        let slot = slots.entry(job.name.clone()).or_insert_with(|| Slot {
            config: None,
            running: false,
            queued: None,
            last_fired: None,
        });
        slot.config = Some(job);
    }

    /// Removes a job; a run that goes on is left to end.
    pub fn remove_job(&self, name: &str) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(name) {
            slot.config = None;
            slot.queued = None;
            if !slot.running {
                slots.remove(name);
            }
        }
    }

    /// The settings of a job this scheduler knows.
    pub fn job(&self, name: &str) -> Option<SyncJob> {
        self.slots().get(name).and_then(|s| s.config.clone())
    }

    /// The jobs with a run going now.
    pub fn running_jobs(&self) -> Vec<String> {
        self.slots()
            .iter()
            .filter(|(_, s)| s.running)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A cron trigger of `name`, made for `schedule`, ran at `now`: fires the tick it stands for.
    /// The fire time is computed from the schedule, not taken from the moment the trigger ran, so
    /// that a late trigger names the right tick and every instance agrees on it.
    pub async fn on_tick(&self, name: &str, schedule: &Schedule, now: DateTime<Utc>) -> FireOutcome {
        let fire_time = {
            let slots = self.slots();
            let Some(job) = slots.get(name).and_then(|s| s.config.as_ref()) else {
                return FireOutcome::Ignored("the job is no longer configured");
            };
            if job.schedule.as_ref() != Some(schedule) {
                return FireOutcome::Ignored("the trigger belongs to an older schedule");
            }
            fire_time_at_or_before(job, now)
        };
        let Some(fire_time) = fire_time else {
            return FireOutcome::Ignored("the schedule has no fire time before now");
        };
        match self.fire(name, fire_time, Trigger::Schedule).await {
            Ok(outcome) => outcome,
            Err(e) => {
                error!(job.name = name, "Failed to fire the tick of {fire_time}: {e:#}");
                FireOutcome::Ignored("firing failed")
            }
        }
    }

    /// Fires the tick `fire_time` of job `name`: starts a run, queues it behind the running one,
    /// or writes a `skipped` row, following the job's `overlap`.
    pub async fn fire(
        &self,
        name: &str,
        fire_time: DateTime<Utc>,
        trigger: Trigger,
    ) -> anyhow::Result<FireOutcome> {
        if self.is_paused(name).await {
            debug!(job.name = name, "Tick {fire_time} not run: the job is paused");
            return Ok(FireOutcome::Ignored("the job is paused"));
        }
        let decision = {
            let mut slots = self.slots();
            self.decide(&mut slots, name, fire_time, trigger)
        };
        match decision {
            Decision::Done(outcome) => Ok(outcome),
            Decision::Skip(job, reason) => {
                self.write_skipped(&job, fire_time, trigger, reason).await?;
                Ok(FireOutcome::Skipped)
            }
            Decision::Run(job) => Ok(FireOutcome::Started(self.spawn_runs(job, fire_time, trigger))),
        }
    }

    fn decide(
        &self,
        slots: &mut BTreeMap<String, Slot>,
        name: &str,
        fire_time: DateTime<Utc>,
        trigger: Trigger,
    ) -> Decision {
        if self.inner.stop_ticks.is_cancelled() {
            return Decision::Done(FireOutcome::Ignored("the daemon is stopping"));
        }
        let Some(slot) = slots.get_mut(name) else {
            return Decision::Done(FireOutcome::Ignored("unknown job"));
        };
        let Some(job) = slot.config.clone() else {
            return Decision::Done(FireOutcome::Ignored("the job is no longer configured"));
        };
        if !job.enabled {
            return Decision::Done(FireOutcome::Ignored("the job is disabled"));
        }
        // A catch-up names an earlier tick on purpose (one another daemon's run left interrupted);
        // the unique fire-time index keeps it to one run.
        if trigger != Trigger::CatchUp && slot.last_fired.is_some_and(|last| last >= fire_time) {
            return Decision::Done(FireOutcome::Ignored("this tick was fired already"));
        }
        slot.last_fired = Some(slot.last_fired.map_or(fire_time, |last| last.max(fire_time)));
        if !slot.running {
            slot.running = true;
            return Decision::Run(job);
        }
        match job.overlap {
            Overlap::Skip => Decision::Skip(job, "the previous run is still going"),
            Overlap::Queue if slot.queued.is_none() => {
                slot.queued = Some((fire_time, trigger));
                info!(
                    job.name = name,
                    "Tick {fire_time} queued: the previous run is still going"
                );
                Decision::Done(FireOutcome::Queued)
            }
            Overlap::Queue => {
                Decision::Skip(job, "the previous run is still going and another tick is queued")
            }
        }
    }

    async fn write_skipped(
        &self,
        job: &SyncJob,
        fire_time: DateTime<Utc>,
        trigger: Trigger,
        reason: &str,
    ) -> anyhow::Result<()> {
        let written =
            RunRecorder::record_skipped(&self.inner.db, run_spec(job, fire_time, trigger), reason).await?;
        if written {
            info!(job.name = %job.name, job.kind = %job.kind, "Tick {fire_time} skipped: {reason}");
        }
        Ok(())
    }

    /// Runs the tick, then each tick queued behind it, on the tracked task set.
    fn spawn_runs(&self, job: SyncJob, fire_time: DateTime<Utc>, trigger: Trigger) -> RunHandle {
        let this = self.clone();
        let handle = self.inner.tracker.spawn(async move {
            let mut statuses = Vec::new();
            let mut next = Some((job, fire_time, trigger, true));
            while let Some((job, fire_time, trigger, jitter)) = next {
                if let Some(status) = this.execute(&job, fire_time, trigger, jitter).await {
                    statuses.push(status);
                }
                next = this.finish_run(&job.name);
            }
            statuses
        });
        RunHandle(handle)
    }

    /// Marks a run ended; returns the queued tick to run next, if any.
    fn finish_run(&self, name: &str) -> Option<(SyncJob, DateTime<Utc>, Trigger, bool)> {
        let mut slots = self.slots();
        let slot = slots.get_mut(name)?;
        let queued = slot.queued.take();
        match (&slot.config, queued) {
            (Some(job), Some((fire_time, trigger)))
                if job.enabled && !self.inner.stop_ticks.is_cancelled() =>
            {
                return Some((job.clone(), fire_time, trigger, false));
            }
            _ => {}
        }
        slot.running = false;
        if slot.config.is_none() {
            slots.remove(name);
        }
        None
    }

    /// One run: jitter, the cross-instance overlap check, then the runner, inside the job's span.
    async fn execute(
        &self,
        job: &SyncJob,
        fire_time: DateTime<Utc>,
        trigger: Trigger,
        jitter: bool,
    ) -> Option<RunStatus> {
        // The runner's own span (`sync::run_job`'s) adds `job.name`, `job.kind` and `run.id`.
        let span = tracing::info_span!(
            "tick",
            job = %job.name,
            trigger = trigger.as_str(),
            scheduled_for = %fire_time.format("%Y-%m-%dT%H:%M:%SZ")
        );
        async {
            if jitter && job.jitter_ms > 0 {
                let delay = rand::random_range(0..=job.jitter_ms);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                    _ = self.inner.stop_ticks.cancelled() => {
                        info!("Tick {fire_time} dropped: the daemon stopped during its {delay} ms jitter");
                        return None;
                    }
                }
            }
            match self.running_elsewhere(&job.name).await {
                Ok(Some(instance)) => {
                    let reason = format!("the previous run is still going on {instance}");
                    return match RunRecorder::record_skipped(
                        &self.inner.db,
                        run_spec(job, fire_time, trigger),
                        &reason,
                    )
                    .await
                    {
                        Ok(written) => {
                            if written {
                                info!("Tick {fire_time} skipped: {reason}");
                            }
                            Some(RunStatus::Skipped)
                        }
                        Err(e) => {
                            error!("Failed to record the skipped tick {fire_time}: {e:#}");
                            Some(RunStatus::Failed)
                        }
                    };
                }
                Ok(None) => {}
                // The fire time's unique row still keeps the tick from running twice.
                Err(e) => warn!(
                    "Failed to check other instances for a running {}: {e:#}",
                    job.name
                ),
            }
            debug!("Run starting");
            let cancel = self.inner.cancel_runs.child_token();
            match self
                .inner
                .runner
                .run(job.clone(), trigger, Some(fire_time.naive_utc()), cancel)
                .await
            {
                Ok(status) => {
                    debug!(%status, "Run ended");
                    Some(status)
                }
                Err(e) => {
                    error!("Run failed: {e:#}");
                    Some(RunStatus::Failed)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Runs job `name` once now with `trigger = manual` (a `haier-sync trigger` request this
    /// daemon claimed), on the tracked task set with the same runner, cancel token and overlap
    /// guard as a tick: while it runs, the job's ticks are skipped or queued by its `overlap`, and
    /// the ticks queued behind it run when it ends. `on_end` gets how the run ended, before those.
    ///
    /// Refused, with the reason, when the daemon is stopping, the job is not configured here, it
    /// is paused (unless `run_if_paused`), or a run of it goes on here or in another live daemon:
    /// a manual run is never stacked behind another one, whatever the job's `overlap`.
    pub async fn start_manual<F, Fut>(&self, name: &str, run_if_paused: bool, on_end: F) -> ManualStart
    where
        F: FnOnce(anyhow::Result<RunStatus>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        if self.inner.stop_ticks.is_cancelled() {
            return ManualStart::Refused("the daemon is stopping".into());
        }
        if !run_if_paused {
            let name_owned = name.to_owned();
            match self
                .inner
                .db
                .run(move |conn| Ok(pauses::find_pause(conn, &name_owned)?))
                .await
            {
                Ok(Some(pause)) if pause.is_in_force() => {
                    return ManualStart::Refused(format!(
                    "the job is paused (by {} at {} UTC: {}); `haier-sync trigger --force` runs it anyway",
                    pause.paused_by,
                    pause.paused_at.format("%Y-%m-%d %H:%M:%S"),
                    pause.reason
                ))
                }
                Ok(_) => {}
                Err(e) => {
                    return ManualStart::Refused(format!("could not read whether the job is paused: {e:#}"))
                }
            }
        }
        match self.running_elsewhere(name).await {
            Ok(Some(instance)) => {
                return ManualStart::Refused(format!("a run of the job is going on {instance}"))
            }
            Ok(None) => {}
            Err(e) => warn!(
                job.name = name,
                "Failed to check other instances for a running {name}: {e:#}"
            ),
        }
        let job = {
            let mut slots = self.slots();
            let Some(slot) = slots.get_mut(name) else {
                return ManualStart::Refused("the job is not configured on this daemon".into());
            };
            let Some(job) = slot.config.clone() else {
                return ManualStart::Refused("the job is no longer configured on this daemon".into());
            };
            if slot.running {
                return ManualStart::Refused(format!(
                    "a run of the job is going on this daemon ({})",
                    self.inner.instance
                ));
            }
            slot.running = true;
            job
        };
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            let span = tracing::info_span!("manual", job = %job.name);
            let cancel = this.inner.cancel_runs.child_token();
            let ended = this
                .inner
                .runner
                .run(job.clone(), Trigger::Manual, None, cancel)
                .instrument(span)
                .await;
            on_end(ended).await;
            let mut next = this.finish_run(&job.name);
            while let Some((job, fire_time, trigger, jitter)) = next {
                this.execute(&job, fire_time, trigger, jitter).await;
                next = this.finish_run(&job.name);
            }
        });
        ManualStart::Started
    }

    /// Whether an operator paused the job (`haier-sync pause`), read at every tick so that every
    /// daemon obeys at once. When the database cannot say, the tick goes on: the run then meets
    /// the same database and records what happened.
    async fn is_paused(&self, name: &str) -> bool {
        let name_owned = name.to_owned();
        match self
            .inner
            .db
            .run(move |conn| Ok(pauses::is_paused(conn, &name_owned)?))
            .await
        {
            Ok(paused) => paused,
            Err(e) => {
                warn!(job.name = name, "Failed to read whether the job is paused: {e:#}");
                false
            }
        }
    }

    /// `resume --catch-up` for a job this daemon claimed: runs the job's last fire time once with
    /// `trigger = catch_up` when no run settled it (it was skipped while paused).
    pub async fn catch_up_resumed(&self, name: &str, now: DateTime<Utc>) -> anyhow::Result<FireOutcome> {
        let Some(job) = self.job(name).filter(|j| j.enabled) else {
            return Ok(FireOutcome::Ignored("the job is not enabled here"));
        };
        let Some(fire_time) = fire_time_at_or_before(&job, now) else {
            return Ok(FireOutcome::Ignored("the schedule has no fire time before now"));
        };
        let name_owned = name.to_owned();
        let settled = self
            .inner
            .db
            .run(move |conn| Ok(runs::log::latest_settled_fire_time(conn, &name_owned)?))
            .await
            .with_context(|| format!("Failed to read the history of job {name}"))?;
        if settled.is_some_and(|t| t >= fire_time.naive_utc()) {
            return Ok(FireOutcome::Ignored("the last tick was not missed"));
        }
        info!(
            job.name = name,
            "Catching up once after resume: the tick of {fire_time}"
        );
        self.fire(name, fire_time, Trigger::CatchUp).await
    }

    /// After the run of `name`'s tick `fire_time` was closed as `interrupted` because its daemon
    /// was taken for gone: runs that tick once with `trigger = catch_up`, unless the job does not
    /// catch up (`catch_up = "none"`, disabled, not scheduled here) or a run of that tick or a
    /// later one went on meanwhile. Several daemons may ask; the fire-time index runs it once.
    pub async fn catch_up_interrupted(
        &self,
        name: &str,
        fire_time: chrono::NaiveDateTime,
    ) -> anyhow::Result<FireOutcome> {
        let Some(_) = self
            .job(name)
            .filter(|j| j.enabled && j.catch_up == CatchUp::Once && is_scheduled(j))
        else {
            return Ok(FireOutcome::Ignored("the job does not catch up here"));
        };
        let name_owned = name.to_owned();
        let covered = self
            .inner
            .db
            .run(move |conn| Ok(runs::log::ran_at_or_after(conn, &name_owned, fire_time)?))
            .await
            .with_context(|| format!("Failed to read the history of job {name}"))?;
        if covered {
            return Ok(FireOutcome::Ignored("a run of that tick or a later one went on"));
        }
        let fire_time = fire_time.and_utc();
        info!(
            job.name = name,
            "Catching up once: the run of the tick of {fire_time} was interrupted with its daemon"
        );
        self.fire(name, fire_time, Trigger::CatchUp).await
    }

    /// Another live instance with a `running` row of this job, if any.
    async fn running_elsewhere(&self, name: &str) -> anyhow::Result<Option<String>> {
        let name = name.to_owned();
        let me = self.inner.instance.clone();
        let since = alive_since(Utc::now(), self.inner.heartbeat_ms.load(Ordering::Relaxed));
        self.inner
            .db
            .run(move |conn| {
                let rows = runs::log::running_rows(conn, &name)?;
                if rows.iter().all(|r| r.instance == me) {
                    return Ok(None);
                }
                let live = instances::live(conn, since)?;
                Ok(rows
                    .into_iter()
                    .map(|r| r.instance)
                    .find(|i| *i != me && live.iter().any(|l| l.instance == *i)))
            })
            .await
    }

    /// At start: each enabled job with `catch_up = "once"` whose last fire time passed while no
    /// daemon ran it (no row, or only `interrupted` rows, for that tick or a later one) runs once
    /// with `trigger = catch_up`, unless that fire is older than its `catch_up_within_ms`. A job
    /// that has never run does not catch up, so that a first start does not run everything at
    /// once. Every enabled job's missed fires (how many, since when, how many caught up) are
    /// recorded for `status` and `/metrics` (see [`super::missed`]).
    pub async fn catch_up(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<(String, FireOutcome)>> {
        let candidates: Vec<(SyncJob, DateTime<Utc>)> = self
            .slots()
            .values()
            .filter_map(|s| s.config.clone())
            .filter(|j| j.enabled && is_scheduled(j))
            .filter_map(|j| fire_time_at_or_before(&j, now).map(|t| (j, t)))
            .collect();
        let mut outcomes = Vec::new();
        for (job, fire_time) in candidates {
            let name = job.name.clone();
            let (latest, settled, pause) = self
                .inner
                .db
                .run(move |conn| {
                    Ok((
                        runs::log::latest_run(conn, &name)?,
                        runs::log::latest_settled_fire_time(conn, &name)?,
                        pauses::find_pause(conn, &name)?,
                    ))
                })
                .await
                .with_context(|| format!("Failed to read the history of job {}", job.name))?;
            let has_history = latest.is_some();
            let missed = has_history && settled.is_none_or(|t| t < fire_time.naive_utc());
            // A tick that passed while the job was paused was skipped on purpose: only
            // `resume --catch-up` runs it.
            let paused_at = |t: DateTime<Utc>| {
                pause.as_ref().is_some_and(|p| {
                    p.paused_at <= t.naive_utc()
                        && p.resumed_at.is_none_or(|resumed| resumed >= t.naive_utc())
                })
            };
            let paused_then = pause.as_ref().is_some_and(|p| {
                p.resumed_at
                    .is_none_or(|resumed| resumed >= fire_time.naive_utc())
            });
            let too_old = job
                .catch_up_within_ms
                .is_some_and(|within| fire_time.naive_utc() < super::before(now, within));
            let outcome = if missed && paused_then {
                FireOutcome::Ignored("the last tick passed while the job was paused")
            } else if missed && job.catch_up == CatchUp::Skip {
                FireOutcome::Ignored("the job does not catch up (catch_up = \"skip\")")
            } else if missed && too_old {
                info!(
                    job.name = %job.name,
                    "Not catching up the tick of {fire_time}: it is older than catch_up_within_ms"
                );
                FireOutcome::Ignored("the missed tick is older than catch_up_within_ms")
            } else if missed {
                info!(
                    job.name = %job.name,
                    "Catching up once: the tick of {fire_time} was missed while the daemon was down"
                );
                self.fire(&job.name, fire_time, Trigger::CatchUp).await?
            } else if has_history {
                FireOutcome::Ignored("the last tick was not missed")
            } else {
                FireOutcome::Ignored("the job has never run")
            };
            let caught_up = missed && !paused_then && job.catch_up == CatchUp::Once && !too_old;
            // Fires after the newest settled one (else after the newest row) count as missed.
            let after = settled.or(latest.map(|r| r.started_at));
            if let Some(after) = after.filter(|_| missed) {
                self.record_missed_fires(&job, after.and_utc(), now, caught_up, paused_at)
                    .await;
            }
            outcomes.push((job.name, outcome));
        }
        Ok(outcomes)
    }

    /// Counts and records the fires `job` missed after `after` (see [`super::missed`]); a
    /// failure is logged, not returned: the daemon starts all the same.
    async fn record_missed_fires(
        &self,
        job: &SyncJob,
        after: DateTime<Utc>,
        now: DateTime<Utc>,
        caught_up: bool,
        paused_at: impl Fn(DateTime<Utc>) -> bool,
    ) {
        let Some(gap) = missed::count_missed_fires(job, after, now, paused_at) else {
            return;
        };
        let row = missed::MissedFires {
            job_name: job.name.clone(),
            missed_count: gap.count,
            caught_up_count: i64::from(caught_up).min(gap.count),
            first_missed_at: gap.first.naive_utc(),
            last_missed_at: gap.last.naive_utc(),
            detected_at: now.naive_utc(),
            detected_by: self.inner.instance.clone(),
        };
        warn!(
            job.name = %job.name,
            missed = row.missed_count,
            caught_up = row.caught_up_count,
            "{} while no daemon ran",
            missed::describe(&row, job.timezone)
        );
        if let Err(e) = self
            .inner
            .db
            .run(move |conn| Ok(missed::record_missed_fires(conn, &row)?))
            .await
        {
            error!(job.name = %job.name, "Failed to record the job's missed fires: {e:#}");
        }
    }

    /// Whether the daemon has stopped taking ticks.
    pub fn is_stopping(&self) -> bool {
        self.inner.stop_ticks.is_cancelled()
    }

    /// Stops taking ticks: new fires are ignored, jitter waits end, queued ticks are dropped.
    pub fn stop_taking_ticks(&self) {
        self.inner.stop_ticks.cancel();
        self.inner.tracker.close();
    }

    /// Waits until every run has ended, or `limit` passes; returns whether they all ended.
    pub async fn wait_for_runs(&self, limit: Duration) -> bool {
        self.inner.tracker.close();
        tokio::time::timeout(limit, self.inner.tracker.wait())
            .await
            .is_ok()
    }

    /// Cancels every run: each stops and closes its row as `interrupted`.
    pub fn cancel_runs(&self) {
        self.inner.cancel_runs.cancel();
    }
}

fn run_spec(job: &SyncJob, fire_time: DateTime<Utc>, trigger: Trigger) -> RunSpec {
    RunSpec {
        job_name: job.name.clone(),
        sync_type: job.kind.sync_type(),
        trigger,
        scheduled_for: Some(fire_time.naive_utc()),
    }
}

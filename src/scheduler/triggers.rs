//! The cron triggers: jobs.toml schedules → calls of [`Scheduler::on_tick`]. Each scheduled job
//! has a task that sleeps until the job's next fire time, computed in the job's zone (so a
//! daylight-saving change moves it as the zone says), and fires it: an idle daemon wakes for a
//! trigger only when a job is due, never to look whether one is. What a tick becomes is
//! `jobs.rs`'s.

use super::is_scheduled;
use super::jobs::Scheduler;
use crate::config::{Schedule, SyncJob};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The longest a trigger sleeps before it reads the wall clock again (a clock set back or
/// forward moves its fire time).
const LONGEST_SLEEP: Duration = Duration::from_secs(3600);

/// The cron triggers: one sleeping task per enabled scheduled job, each calling
/// [`Scheduler::on_tick`] at the job's fire times. None fires before [`CronTriggers::start`].
pub struct CronTriggers {
    scheduler: Scheduler,
    registered: HashMap<String, JoinHandle<()>>,
    started: watch::Sender<bool>,
}

impl CronTriggers {
    pub async fn new(scheduler: Scheduler) -> anyhow::Result<CronTriggers> {
        Ok(CronTriggers {
            scheduler,
            registered: HashMap::new(),
            started: watch::Sender::new(false),
        })
    }

    /// Starts ticking.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.started.send_replace(true);
        Ok(())
    }

    /// The jobs with a trigger, by name.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.registered.keys().cloned().collect();
        names.sort();
        names
    }

    /// Makes (or re-makes) the trigger of `job`; removes it when the job is disabled or has no
    /// schedule.
    pub async fn set(&mut self, job: &SyncJob) -> anyhow::Result<()> {
        self.remove(&job.name).await?;
        let Some(schedule) = job.schedule.clone().filter(|_| job.enabled && is_scheduled(job)) else {
            return Ok(());
        };
        let task = tokio::spawn(fire_on_schedule(
            self.scheduler.clone(),
            job.name.clone(),
            schedule,
            job.timezone,
            self.started.subscribe(),
        ));
        self.registered.insert(job.name.clone(), task);
        Ok(())
    }

    /// Removes the trigger of `name`, if it has one.
    pub async fn remove(&mut self, name: &str) -> anyhow::Result<()> {
        if let Some(task) = self.registered.remove(name) {
            task.abort();
        }
        Ok(())
    }

    /// Stops ticking. Does not wait for runs: the [`Scheduler`] tracks those.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        for (_, task) in self.registered.drain() {
            task.abort();
        }
        Ok(())
    }
}

/// Sleeps until each fire time of `schedule` in `zone` and fires it, from the first after the
/// triggers start. A tick fires on a task of its own, so a slow one delays no later one.
async fn fire_on_schedule(
    scheduler: Scheduler,
    name: String,
    schedule: Schedule,
    zone: Tz,
    mut started: watch::Receiver<bool>,
) {
    if started.wait_for(|started| *started).await.is_err() {
        return;
    }
    let mut after = Utc::now();
    loop {
        let Some(next) = schedule.next_after(&after.with_timezone(&zone)) else {
            return;
        };
        let next = next.with_timezone(&Utc);
        sleep_until_wall_clock(next).await;
        after = Utc::now().max(next);
        let (scheduler, name, schedule) = (scheduler.clone(), name.clone(), schedule.clone());
        tokio::spawn(async move {
            scheduler.on_tick(&name, &schedule, Utc::now()).await;
        });
    }
}

/// Sleeps until the wall clock reads `at` or later.
async fn sleep_until_wall_clock(at: DateTime<Utc>) {
    while let Ok(left) = (at - Utc::now()).to_std() {
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(LONGEST_SLEEP)).await;
    }
}

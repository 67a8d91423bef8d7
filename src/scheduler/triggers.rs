//! The cron triggers: jobs.toml schedules → calls of [`Scheduler::on_tick`], through
//! tokio-cron-scheduler, which is only a clock here. Works around its gaps (no update in place,
//! a zone's UTC offset fixed when a job is made). What a tick becomes is `jobs.rs`'s.

use super::is_scheduled;
use super::jobs::Scheduler;
use crate::config::{Schedule, SyncJob};
use anyhow::Context as _;
use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use tracing::info;

/// One cron trigger registered with tokio-cron-scheduler.
struct Registered {
    job: tokio_cron_scheduler::Job,
    schedule: Schedule,
    timezone: Tz,
    /// The zone's UTC offset when the trigger was made: the library keeps it fixed.
    offset_seconds: i32,
}

/// The cron triggers: one tokio-cron-scheduler job per enabled scheduled job, each calling
/// [`Scheduler::on_tick`]. Works around the library's gaps: it cannot update a job in place (so
/// a change removes and re-adds), and it fixes a zone's UTC offset when a job is made (so
/// [`CronTriggers::follow_offset_changes`] re-makes triggers after a daylight-saving change).
pub struct CronTriggers {
    cron: tokio_cron_scheduler::JobScheduler,
    scheduler: Scheduler,
    registered: HashMap<String, Registered>,
}

impl CronTriggers {
    pub async fn new(scheduler: Scheduler) -> anyhow::Result<CronTriggers> {
        let cron = tokio_cron_scheduler::JobScheduler::new()
            .await
            .context("Failed to create the cron scheduler")?;
        Ok(CronTriggers {
            cron,
            scheduler,
            registered: HashMap::new(),
        })
    }

    /// Starts ticking.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.cron
            .start()
            .await
            .context("Failed to start the cron scheduler")
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
        let scheduler = self.scheduler.clone();
        let name = job.name.clone();
        let trigger_schedule = schedule.clone();
        let cron_job = tokio_cron_scheduler::Job::new_async_tz(
            schedule.normalized(),
            job.timezone,
            move |_id, _cron| {
                let scheduler = scheduler.clone();
                let name = name.clone();
                let schedule = trigger_schedule.clone();
                Box::pin(async move {
                    scheduler.on_tick(&name, &schedule, Utc::now()).await;
                })
            },
        )
        .with_context(|| format!("Failed to make the cron trigger of job {} ({schedule})", job.name))?;
        self.cron
            .add(cron_job.clone())
            .await
            .with_context(|| format!("Failed to add the cron trigger of job {}", job.name))?;
        self.registered.insert(
            job.name.clone(),
            Registered {
                job: cron_job,
                schedule,
                timezone: job.timezone,
                offset_seconds: utc_offset_seconds(job.timezone, Utc::now()),
            },
        );
        Ok(())
    }

    /// Removes the trigger of `name`, if it has one.
    pub async fn remove(&mut self, name: &str) -> anyhow::Result<()> {
        if let Some(old) = self.registered.remove(name) {
            self.cron
                .remove(&old.job.guid())
                .await
                .with_context(|| format!("Failed to remove the cron trigger of job {name}"))?;
        }
        Ok(())
    }

    /// Re-makes the triggers whose zone has changed its UTC offset since they were made (the
    /// library would otherwise fire an hour off after a daylight-saving change). Returns the jobs
    /// re-made.
    pub async fn follow_offset_changes(&mut self, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        let stale: Vec<String> = self
            .registered
            .iter()
            .filter(|(_, r)| utc_offset_seconds(r.timezone, now) != r.offset_seconds)
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            if let Some(job) = self.scheduler.job(name) {
                info!(
                    job.name = %name,
                    "The UTC offset of {} changed; re-making the trigger of `{}`",
                    job.timezone,
                    self.registered.get(name).map(|r| r.schedule.to_string()).unwrap_or_default()
                );
                self.set(&job).await?;
            }
        }
        Ok(stale)
    }

    /// Stops ticking. Does not wait for runs: the [`Scheduler`] tracks those.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        self.cron
            .shutdown()
            .await
            .context("Failed to stop the cron scheduler")
    }
}

fn utc_offset_seconds(zone: Tz, at: DateTime<Utc>) -> i32 {
    zone.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn offsets_change_with_daylight_saving() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let winter = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap();
        assert_eq!(utc_offset_seconds(berlin, winter), 3600);
        assert_eq!(utc_offset_seconds(berlin, summer), 7200);
        let shanghai = chrono_tz::Asia::Shanghai;
        assert_eq!(
            utc_offset_seconds(shanghai, winter),
            utc_offset_seconds(shanghai, summer)
        );
    }
}

//! The daemon obeying `haier-sync pause` and `resume`: the scheduler reads the pause at every
//! tick (`jobs.rs`); here, at every heartbeat, the order pollers of paused `order_outbox` jobs
//! are stopped (and started again on resume), and a `resume --catch-up` is claimed by one daemon
//! and run. The table and its statements are `crate::control`'s.

use super::jobs::Scheduler;
use crate::control::pauses::{self, JobPause};
use crate::db::Db;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use tracing::{error, info};

/// The jobs paused as of the last look.
#[derive(Debug, Default)]
pub(super) struct PausedJobs {
    names: BTreeSet<String>,
}

/// What changed since the last look.
#[derive(Debug, Default)]
pub(super) struct PauseChanges {
    pub paused: Vec<String>,
    pub resumed: Vec<String>,
}

impl PausedJobs {
    pub(super) fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Reads the pauses in force, logs each new pause and resume, and returns them.
    pub(super) async fn refresh(&mut self, db: &Db) -> anyhow::Result<PauseChanges> {
        let rows = db
            .run(|conn| Ok(pauses::pauses_in_force(conn)?))
            .await
            .map_err(|e| e.context("Failed to read the paused jobs"))?;
        Ok(self.follow(&rows))
    }

    /// Takes `rows` (the pauses in force, as `pauses::pauses_in_force` read them) as the new
    /// state; logs each new pause and resume, and returns them.
    pub(super) fn follow(&mut self, rows: &[JobPause]) -> PauseChanges {
        let now: BTreeSet<String> = rows.iter().map(|p| p.job_name.clone()).collect();
        let mut changes = PauseChanges::default();
        for pause in rows.iter().filter(|p| !self.names.contains(&p.job_name)) {
            info!(
                job.name = %pause.job_name,
                "Job {} is paused (by {} at {} UTC: {})",
                pause.job_name,
                pause.paused_by,
                pause.paused_at.format("%Y-%m-%d %H:%M:%S"),
                pause.reason
            );
            changes.paused.push(pause.job_name.clone());
        }
        for name in self.names.difference(&now) {
            info!(job.name = %name, "Job {name} is resumed");
            changes.resumed.push(name.clone());
        }
        self.names = now;
        changes
    }
}

/// Claims each `resume --catch-up` of a job this daemon schedules and runs its missed tick once.
/// `pending` is what `pauses::pending_catch_ups` read (at the heartbeat, with the pauses). The
/// claim is a guarded update, so one daemon runs it.
pub(super) async fn run_claimed_catch_ups(
    db: &Db,
    scheduler: &Scheduler,
    pending: Vec<String>,
    now: DateTime<Utc>,
) {
    for name in pending.into_iter().filter(|n| scheduler.job(n).is_some()) {
        let claimed_name = name.clone();
        match db
            .run(move |conn| Ok(pauses::claim_catch_up(conn, &claimed_name)?))
            .await
        {
            Ok(true) => match scheduler.catch_up_resumed(&name, now).await {
                Ok(outcome) => info!(job.name = %name, "Catch-up after resume: {outcome:?}"),
                Err(e) => error!(job.name = %name, "Failed to catch up after resume: {e:#}"),
            },
            Ok(false) => {}
            Err(e) => error!(job.name = %name, "Failed to claim the catch-up after resume: {e:#}"),
        }
    }
}

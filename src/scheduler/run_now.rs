//! The daemon obeying `haier-sync trigger JOB`: at every heartbeat it expires the requests
//! nobody claimed in time, fails those whose daemon stopped or died before closing them, and
//! claims each pending request of a job it schedules (one guarded UPDATE, so one daemon wins it).
//! The claimed job runs through [`Scheduler::start_manual`], under this daemon's shared client,
//! limiter, overlap guard and shutdown, and the request is closed with the run's sync-log row.
//! The table and its statements are `crate::control::triggers`'.

use super::alive_since;
use super::jobs::{ManualStart, Scheduler};
use crate::control::triggers::{self, JobTrigger, TriggerState};
use crate::db::{self, instances, Db};
use crate::runs::{self, RunStatus, Trigger};
use chrono::Utc;
use tracing::{error, info, warn};

/// What one look at the run-now requests found.
#[derive(Debug, Default)]
pub(super) struct RunRequests {
    /// Expired now: nobody claimed them in time.
    expired: Vec<JobTrigger>,
    /// Failed now: their daemon stopped or died before closing them.
    abandoned: Vec<JobTrigger>,
    /// Open for a daemon to claim.
    pending: Vec<JobTrigger>,
}

/// One look, on a connection the caller holds (the heartbeat's): expires, fails the abandoned,
/// and reads what is pending. With no open request (the usual case) it is one indexed read.
pub(super) fn look_for_run_requests(
    conn: &mut db::DbConnection,
    heartbeat_ms: u64,
) -> diesel::QueryResult<RunRequests> {
    let alive = alive_since(Utc::now(), heartbeat_ms);
    if !triggers::has_open_requests(conn)? {
        return Ok(RunRequests::default());
    }
    let now = db::now_utc();
    let expired = triggers::expire_unclaimed(conn, now)?;
    let live: Vec<String> = instances::live(conn, alive)?
        .into_iter()
        .map(|i| i.instance)
        .collect();
    let abandoned = triggers::fail_abandoned(conn, &live, now)?;
    let pending = triggers::pending_requests(conn, now)?;
    Ok(RunRequests {
        expired,
        abandoned,
        pending,
    })
}

/// Logs what [`look_for_run_requests`] expired and failed, and claims and starts what this
/// daemon can run.
pub(super) async fn take_run_requests(db: &Db, scheduler: &Scheduler, instance: &str, looked: RunRequests) {
    let RunRequests {
        expired,
        abandoned,
        pending,
    } = looked;
    for request in &expired {
        warn!(
            job.name = %request.job_name,
            "Run-now request #{} of {} expired: no daemon took it in time",
            request.id, request.requested_by
        );
    }
    for request in &abandoned {
        warn!(
            job.name = %request.job_name,
            "Run-now request #{} failed: its daemon {} stopped before it closed the request",
            request.id,
            request.claimed_by.as_deref().unwrap_or("?")
        );
    }
    if scheduler.is_stopping() {
        return;
    }
    for request in pending
        .into_iter()
        .filter(|r| scheduler.job(&r.job_name).is_some())
    {
        take(db, scheduler, instance, request).await;
    }
}

/// Claims `request` and starts its run, or closes it as refused.
async fn take(db: &Db, scheduler: &Scheduler, instance: &str, request: JobTrigger) {
    let claimed_at = db::now_utc();
    let me = instance.to_owned();
    let id = request.id;
    match db
        .run(move |conn| Ok(triggers::claim_request(conn, id, &me, claimed_at)?))
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            warn!(job.name = %request.job_name, "Failed to claim run-now request #{id}: {e:#}");
            return;
        }
    }
    info!(
        job.name = %request.job_name,
        "Running job {} now: run-now request #{id} of {}",
        request.job_name, request.requested_by
    );
    let on_end = {
        let (db, instance, job) = (db.clone(), instance.to_owned(), request.job_name.clone());
        move |ended: anyhow::Result<RunStatus>| async move {
            close_after_run(&db, id, &instance, &job, claimed_at, ended).await;
        }
    };
    match scheduler
        .start_manual(&request.job_name, request.run_if_paused, on_end)
        .await
    {
        ManualStart::Started => {}
        ManualStart::Refused(reason) => {
            info!(job.name = %request.job_name, "Run-now request #{id} refused: {reason}");
            close(db, id, instance, TriggerState::Refused, None, Some(reason)).await;
        }
    }
}

/// Closes request `id` once its run has ended: `finished` with the run's row, or `failed` when
/// the run could not start or left no row.
async fn close_after_run(
    db: &Db,
    id: i64,
    instance: &str,
    job: &str,
    claimed_at: chrono::NaiveDateTime,
    ended: anyhow::Result<RunStatus>,
) {
    let (job_owned, me) = (job.to_owned(), instance.to_owned());
    let row = db
        .run(move |conn| {
            Ok(runs::log::newest_row_of(
                conn,
                &job_owned,
                Trigger::Manual,
                &me,
                claimed_at,
            )?)
        })
        .await;
    let (state, log_id, message) = match (ended, row) {
        (Ok(status), Ok(Some(row))) => {
            info!(
                job.name = job,
                "Run-now request #{id} ended: {status} (log #{})", row.id
            );
            (TriggerState::Finished, Some(row.id), None)
        }
        (Ok(status), Ok(None)) => (
            TriggerState::Failed,
            None,
            Some(format!("the run ended {status} without a sync-log row")),
        ),
        (Err(e), Ok(row)) => (
            TriggerState::Failed,
            row.map(|r| r.id),
            Some(format!("the run failed: {e:#}")),
        ),
        (_, Err(e)) => (
            TriggerState::Failed,
            None,
            Some(format!("the run's sync-log row could not be read: {e:#}")),
        ),
    };
    close(db, id, instance, state, log_id, message).await;
}

async fn close(
    db: &Db,
    id: i64,
    instance: &str,
    state: TriggerState,
    log_id: Option<i64>,
    message: Option<String>,
) {
    let me = instance.to_owned();
    match db
        .run(move |conn| {
            Ok(triggers::finish_request(
                conn,
                id,
                &me,
                state,
                log_id,
                message.as_deref(),
                db::now_utc(),
            )?)
        })
        .await
    {
        Ok(true) => {}
        Ok(false) => warn!("Run-now request #{id} was closed by another daemon meanwhile; left as it is"),
        Err(e) => error!("Failed to close run-now request #{id} as {state}: {e:#}"),
    }
}

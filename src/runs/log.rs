//! The statements on `haier_sync_logs`: one row per job run, opened as `running` and closed with
//! counts. Only [`super::RunRecorder`] opens and closes rows in the daemon; recovery and shutdown
//! close the rows of gone processes through [`interrupt_rows_of`].

use super::{RunCounts, RunStatus, SyncType, Trigger};
use crate::db::schema::haier_sync_logs::{self, dsl};
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

/// One row of `haier_sync_logs`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_sync_logs)]
pub struct SyncLog {
    pub id: i64,
    pub job_name: String,
    pub sync_type: SyncType,
    pub status: RunStatus,
    pub message: Option<String>,
    pub total_count: i64,
    pub success_count: i64,
    pub failed_count: i64,
    pub started_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub scheduled_for: Option<NaiveDateTime>,
    pub trigger: Trigger,
    pub instance: String,
}

impl SyncLog {
    /// Run time, from start to end (or `None` while running).
    pub fn duration(&self) -> Option<chrono::Duration> {
        self.completed_at.map(|end| end - self.started_at)
    }
}

/// The fields of a new row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = haier_sync_logs)]
pub struct NewSyncLog<'a> {
    pub job_name: &'a str,
    pub sync_type: SyncType,
    pub status: RunStatus,
    pub message: Option<&'a str>,
    pub total_count: i64,
    pub success_count: i64,
    pub failed_count: i64,
    pub started_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub scheduled_for: Option<NaiveDateTime>,
    pub trigger: Trigger,
    pub instance: &'a str,
}

/// Inserts a row and returns its id, or `None` when a row for the same job, fire time and trigger
/// that is not `interrupted` already exists (another instance took this tick: the partial unique
/// index makes each scheduled run happen once, while an interrupted run leaves its tick to be
/// caught up).
pub fn insert(conn: &mut DbConnection, row: &NewSyncLog<'_>) -> QueryResult<Option<i64>> {
    match diesel::insert_into(haier_sync_logs::table)
        .values(row)
        .returning(dsl::id)
        .get_result::<i64>(conn)
    {
        Ok(id) => Ok(Some(id)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Closes a `running` row of `owner` (the instance that opened it) with its final status and
/// counts. Fenced by owner and status: a row that another instance closed (as `interrupted`, when
/// this one was taken for gone) is left as it is; returns whether the row was updated.
pub fn close(
    conn: &mut DbConnection,
    id: i64,
    owner: &str,
    status: RunStatus,
    counts: RunCounts,
    message: Option<&str>,
    completed_at: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_sync_logs
            .filter(dsl::id.eq(id))
            .filter(dsl::instance.eq(owner))
            .filter(dsl::status.eq(RunStatus::Running)),
    )
    .set((
        dsl::status.eq(status),
        dsl::total_count.eq(counts.total),
        dsl::success_count.eq(counts.success),
        dsl::failed_count.eq(counts.failed),
        dsl::message.eq(message),
        dsl::completed_at.eq(Some(completed_at)),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Records the counts so far on a `running` row of `owner`, so `status` and `logs` show progress.
/// Fenced as [`close`] is.
pub fn update_progress(conn: &mut DbConnection, id: i64, owner: &str, counts: RunCounts) -> QueryResult<()> {
    diesel::update(
        dsl::haier_sync_logs
            .filter(dsl::id.eq(id))
            .filter(dsl::instance.eq(owner))
            .filter(dsl::status.eq(RunStatus::Running)),
    )
    .set((
        dsl::total_count.eq(counts.total),
        dsl::success_count.eq(counts.success),
        dsl::failed_count.eq(counts.failed),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<SyncLog>> {
    dsl::haier_sync_logs
        .filter(dsl::id.eq(id))
        .select(SyncLog::as_select())
        .first(conn)
        .optional()
}

/// What `haier-sync logs` filters on.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub job_name: Option<String>,
    pub sync_type: Option<SyncType>,
    pub status: Option<RunStatus>,
    pub since: Option<NaiveDateTime>,
    pub limit: i64,
}

/// Rows matching `filter`, newest first.
pub fn list(conn: &mut DbConnection, filter: &LogFilter) -> QueryResult<Vec<SyncLog>> {
    let mut query = dsl::haier_sync_logs.select(SyncLog::as_select()).into_boxed();
    if let Some(job) = &filter.job_name {
        query = query.filter(dsl::job_name.eq(job.clone()));
    }
    if let Some(sync_type) = filter.sync_type {
        query = query.filter(dsl::sync_type.eq(sync_type));
    }
    if let Some(status) = filter.status {
        query = query.filter(dsl::status.eq(status));
    }
    if let Some(since) = filter.since {
        query = query.filter(dsl::started_at.ge(since));
    }
    query
        .order((dsl::started_at.desc(), dsl::id.desc()))
        .limit(filter.limit.max(1))
        .load(conn)
}

/// What the job page draws of one run: when it started and ended, how it ended and its counts.
/// A narrow read of [`SyncLog`], so a week of a job firing every minute loads quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = haier_sync_logs)]
pub struct RunSpan {
    pub started_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
    pub status: RunStatus,
    pub total_count: i64,
    pub success_count: i64,
}

impl RunSpan {
    /// Run time, from start to end (or `None` while running).
    pub fn duration(&self) -> Option<chrono::Duration> {
        self.completed_at.map(|end| end - self.started_at)
    }
}

/// The runs of `job_name` started at or after `since`, newest first, at most `limit`, read
/// through the `(job_name, started_at)` index.
pub fn run_spans_since(
    conn: &mut DbConnection,
    job_name: &str,
    since: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<RunSpan>> {
    dsl::haier_sync_logs
        .filter(dsl::job_name.eq(job_name))
        .filter(dsl::started_at.ge(since))
        .order(dsl::started_at.desc())
        .limit(limit.max(1))
        .select(RunSpan::as_select())
        .load(conn)
}

/// The newest runs of `job_name` started at or after `since` that did not fully succeed
/// (`failed`, `partial` or `interrupted`), newest first, at most `limit`.
pub fn latest_failures(
    conn: &mut DbConnection,
    job_name: &str,
    since: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<SyncLog>> {
    dsl::haier_sync_logs
        .filter(dsl::job_name.eq(job_name))
        .filter(dsl::started_at.ge(since))
        .filter(dsl::status.eq_any([RunStatus::Failed, RunStatus::Partial, RunStatus::Interrupted]))
        .order((dsl::started_at.desc(), dsl::id.desc()))
        .limit(limit.max(1))
        .select(SyncLog::as_select())
        .load(conn)
}

/// The newest row of a job, skipped ticks left out.
pub fn latest_run(conn: &mut DbConnection, job_name: &str) -> QueryResult<Option<SyncLog>> {
    newest_row(conn, job_name, Newest::Run)
}

/// The newest `success` row of a job.
pub fn latest_success(conn: &mut DbConnection, job_name: &str) -> QueryResult<Option<SyncLog>> {
    newest_row(conn, job_name, Newest::Success)
}

/// Which of a job's rows [`newest_row`] looks at.
enum Newest {
    /// Any but `skipped`.
    Run,
    /// Only `success`.
    Success,
}

fn newest_row(conn: &mut DbConnection, job_name: &str, which: Newest) -> QueryResult<Option<SyncLog>> {
    let query = dsl::haier_sync_logs
        .filter(dsl::job_name.eq(job_name))
        .into_boxed();
    let query = match which {
        Newest::Run => query.filter(dsl::status.ne(RunStatus::Skipped)),
        Newest::Success => query.filter(dsl::status.eq(RunStatus::Success)),
    };
    query
        .order((dsl::started_at.desc(), dsl::id.desc()))
        .select(SyncLog::as_select())
        .first(conn)
        .optional()
}

/// The newest fire time recorded for a job (any instance, any outcome), for catch-up.
pub fn latest_fire_time(conn: &mut DbConnection, job_name: &str) -> QueryResult<Option<NaiveDateTime>> {
    dsl::haier_sync_logs
        .filter(dsl::job_name.eq(job_name))
        .filter(dsl::scheduled_for.is_not_null())
        .select(dsl::scheduled_for)
        .order(dsl::scheduled_for.desc())
        .first::<Option<NaiveDateTime>>(conn)
        .optional()
        .map(Option::flatten)
}

/// Whether a job has a `running` row (any instance).
pub fn running_rows(conn: &mut DbConnection, job_name: &str) -> QueryResult<Vec<SyncLog>> {
    dsl::haier_sync_logs
        .filter(dsl::job_name.eq(job_name))
        .filter(dsl::status.eq(RunStatus::Running))
        .select(SyncLog::as_select())
        .load(conn)
}

/// Closes the `running` rows of the given instances as `interrupted` (they crashed or were
/// killed), with `total = success + failed` as every closed row has: the items the run had not
/// reached by its last progress write count as failed. Returns how many rows were closed.
pub fn interrupt_rows_of(conn: &mut DbConnection, instances: &[String], message: &str) -> QueryResult<usize> {
    if instances.is_empty() {
        return Ok(0);
    }
    let running = || {
        dsl::haier_sync_logs
            .filter(dsl::status.eq(RunStatus::Running))
            .filter(dsl::instance.eq_any(instances.to_vec()))
    };
    // A run may have met more items than it counted at its start.
    diesel::update(running().filter(dsl::total_count.lt(dsl::success_count + dsl::failed_count)))
        .set(dsl::total_count.eq(dsl::success_count + dsl::failed_count))
        .execute(conn)?;
    diesel::update(running())
        .set((
            dsl::status.eq(RunStatus::Interrupted),
            dsl::message.eq(message),
            dsl::failed_count.eq(dsl::total_count - dsl::success_count),
            dsl::completed_at.eq(Some(crate::db::now_utc())),
        ))
        .execute(conn)
}

/// The `running` rows of one instance.
pub fn running_rows_of(conn: &mut DbConnection, instance: &str) -> QueryResult<Vec<SyncLog>> {
    dsl::haier_sync_logs
        .filter(dsl::status.eq(RunStatus::Running))
        .filter(dsl::instance.eq(instance))
        .select(SyncLog::as_select())
        .load(conn)
}

/// Whether a run of the job's tick `fire_time`, or of a later tick, ran or runs: a row that is
/// neither `interrupted` nor `skipped`. An interrupted tick that a later run covered needs no
/// catch-up.
pub fn ran_at_or_after(
    conn: &mut DbConnection,
    job_name: &str,
    fire_time: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        dsl::haier_sync_logs
            .filter(dsl::job_name.eq(job_name))
            .filter(dsl::scheduled_for.ge(fire_time))
            .filter(dsl::status.ne_all(vec![RunStatus::Interrupted, RunStatus::Skipped])),
    ))
    .get_result(conn)
}

/// The instances that own `running` rows.
pub fn instances_with_running_rows(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    dsl::haier_sync_logs
        .filter(dsl::status.eq(RunStatus::Running))
        .select(dsl::instance)
        .distinct()
        .load(conn)
}

/// The newest fire time of a job with a row that did not end `interrupted` (it succeeded, failed,
/// was skipped, or still runs), for catch-up: a fire time whose only rows were interrupted by a
/// crash or a shutdown counts as missed.
pub fn latest_settled_fire_time(
    conn: &mut DbConnection,
    job_name: &str,
) -> QueryResult<Option<NaiveDateTime>> {
    dsl::haier_sync_logs
        .filter(dsl::job_name.eq(job_name))
        .filter(dsl::scheduled_for.is_not_null())
        .filter(dsl::status.ne(RunStatus::Interrupted))
        .select(dsl::scheduled_for)
        .order(dsl::scheduled_for.desc())
        .first::<Option<NaiveDateTime>>(conn)
        .optional()
        .map(Option::flatten)
}

/// Whether a job has ever written a row (any trigger, any status).
pub fn has_history(conn: &mut DbConnection, job_name: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        dsl::haier_sync_logs.filter(dsl::job_name.eq(job_name)),
    ))
    .get_result(conn)
}

/// How many finished rows in one of `statuses` started before `before`: what
/// [`delete_finished_before`] would delete, all batches together. `running` rows are never
/// counted, whatever `statuses` says. Locking: a plain read (the `(status, started_at)` index).
pub fn count_finished_before(
    conn: &mut DbConnection,
    statuses: &[RunStatus],
    before: NaiveDateTime,
) -> QueryResult<i64> {
    dsl::haier_sync_logs
        .filter(dsl::status.eq_any(finished(statuses)))
        .filter(dsl::started_at.lt(before))
        .count()
        .get_result(conn)
}

/// Deletes up to `limit` finished rows in one of `statuses` that started before `before` (in no
/// particular order: the index decides), and returns how many it deleted (fewer than `limit`:
/// none are left). `running` rows are never deleted. Locking: one `DELETE … WHERE id IN (SELECT … LIMIT n)` statement, its own
/// short transaction; on SQLite it holds the write lock only while it runs.
pub fn delete_finished_before(
    conn: &mut DbConnection,
    statuses: &[RunStatus],
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    let old = diesel::alias!(haier_sync_logs as old);
    let batch = old
        .select(old.field(dsl::id))
        .filter(old.field(dsl::status).eq_any(finished(statuses)))
        .filter(old.field(dsl::started_at).lt(before))
        .limit(limit);
    diesel::delete(dsl::haier_sync_logs.filter(dsl::id.eq_any(batch))).execute(conn)
}

/// `statuses` without `running`.
fn finished(statuses: &[RunStatus]) -> Vec<RunStatus> {
    statuses
        .iter()
        .copied()
        .filter(|s| *s != RunStatus::Running)
        .collect()
}

/// The newest row of `job_name` with `trigger` that `instance` opened at or after `since`: a
/// run-now request's row, looked up once its run has ended (a daemon runs a job once at a time).
pub fn newest_row_of(
    conn: &mut DbConnection,
    job_name: &str,
    trigger: Trigger,
    instance: &str,
    since: NaiveDateTime,
) -> QueryResult<Option<SyncLog>> {
    dsl::haier_sync_logs
        .filter(dsl::job_name.eq(job_name))
        .filter(dsl::trigger.eq(trigger))
        .filter(dsl::instance.eq(instance))
        .filter(dsl::started_at.ge(since))
        .order((dsl::started_at.desc(), dsl::id.desc()))
        .select(SyncLog::as_select())
        .first(conn)
        .optional()
}

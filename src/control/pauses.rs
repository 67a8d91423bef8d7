//! Every statement on `haier_job_pauses`: a job is paused while its row has no `resumed_at`.
//! Pausing again replaces the row; resuming keeps it, with who resumed the job and when, so that
//! catch-up at start does not run a tick that was skipped on purpose.

use crate::db::schema::haier_job_pauses::{self, dsl};
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

/// One job's pause (in force while `resumed_at` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = haier_job_pauses)]
pub struct JobPause {
    pub job_name: String,
    /// `user@host` of the operator.
    pub paused_by: String,
    pub paused_at: NaiveDateTime,
    pub reason: String,
    pub resumed_by: Option<String>,
    pub resumed_at: Option<NaiveDateTime>,
    /// `resume --catch-up` asked for the tick missed while paused; a daemon claims it once.
    pub catch_up_requested: bool,
}

impl JobPause {
    pub fn is_in_force(&self) -> bool {
        self.resumed_at.is_none()
    }
}

/// Pauses `job_name`, replacing an earlier pause or resume of it.
///
/// Locking: a short write transaction (delete and insert of one row).
pub fn pause_job(
    conn: &mut DbConnection,
    job_name: &str,
    paused_by: &str,
    paused_at: NaiveDateTime,
    reason: &str,
) -> QueryResult<()> {
    let row = JobPause {
        job_name: job_name.to_owned(),
        paused_by: paused_by.to_owned(),
        paused_at,
        reason: reason.to_owned(),
        resumed_by: None,
        resumed_at: None,
        catch_up_requested: false,
    };
    conn.transaction(|conn| {
        diesel::delete(dsl::haier_job_pauses.filter(dsl::job_name.eq(job_name))).execute(conn)?;
        diesel::insert_into(haier_job_pauses::table)
            .values(&row)
            .execute(conn)?;
        Ok(())
    })
}

/// Resumes `job_name` when it is paused; returns whether it was.
///
/// Locking: one single-row UPDATE.
pub fn resume_job(
    conn: &mut DbConnection,
    job_name: &str,
    resumed_by: &str,
    resumed_at: NaiveDateTime,
    catch_up: bool,
) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_job_pauses
            .filter(dsl::job_name.eq(job_name))
            .filter(dsl::resumed_at.is_null()),
    )
    .set((
        dsl::resumed_by.eq(Some(resumed_by)),
        dsl::resumed_at.eq(Some(resumed_at)),
        dsl::catch_up_requested.eq(catch_up),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The pause row of `job_name`, in force or resumed.
///
/// Locking: none (one read).
pub fn find_pause(conn: &mut DbConnection, job_name: &str) -> QueryResult<Option<JobPause>> {
    dsl::haier_job_pauses
        .filter(dsl::job_name.eq(job_name))
        .select(JobPause::as_select())
        .first(conn)
        .optional()
}

/// Whether `job_name` is paused now.
///
/// Locking: none (one read by primary key).
pub fn is_paused(conn: &mut DbConnection, job_name: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        dsl::haier_job_pauses
            .filter(dsl::job_name.eq(job_name))
            .filter(dsl::resumed_at.is_null()),
    ))
    .get_result(conn)
}

/// Every pause in force, by job name.
///
/// Locking: none (one read).
pub fn pauses_in_force(conn: &mut DbConnection) -> QueryResult<Vec<JobPause>> {
    dsl::haier_job_pauses
        .filter(dsl::resumed_at.is_null())
        .order(dsl::job_name.asc())
        .select(JobPause::as_select())
        .load(conn)
}

/// The resumed jobs whose catch-up no daemon has claimed yet.
///
/// Locking: none (one read).
pub fn pending_catch_ups(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    dsl::haier_job_pauses
        .filter(dsl::resumed_at.is_not_null())
        .filter(dsl::catch_up_requested.eq(true))
        .select(dsl::job_name)
        .load(conn)
}

/// Claims the catch-up `resume --catch-up` asked for; true for exactly one caller.
///
/// Locking: one single-row UPDATE guarded by the flag, so two daemons cannot both claim it.
pub fn claim_catch_up(conn: &mut DbConnection, job_name: &str) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_job_pauses
            .filter(dsl::job_name.eq(job_name))
            .filter(dsl::resumed_at.is_not_null())
            .filter(dsl::catch_up_requested.eq(true)),
    )
    .set(dsl::catch_up_requested.eq(false))
    .execute(conn)?;
    Ok(updated == 1)
}

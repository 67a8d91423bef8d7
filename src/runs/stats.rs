//! Aggregate reads of `haier_sync_logs` for the metrics endpoint: runs per job and status, and
//! each job's newest finished run. The per-run statements live in `log.rs`.

use super::log::SyncLog;
use super::RunStatus;
use crate::db::schema::haier_sync_logs::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;

/// The number of runs per job and status. Locking: a plain read.
pub fn count_runs_by_job_and_status(conn: &mut DbConnection) -> QueryResult<Vec<(String, RunStatus, i64)>> {
    dsl::haier_sync_logs
        .group_by((dsl::job_name, dsl::status))
        .select((dsl::job_name, dsl::status, diesel::dsl::count_star()))
        .order((dsl::job_name, dsl::status))
        .load(conn)
}

/// Each job's newest finished run (skipped ticks left out). Locking: plain reads.
pub fn latest_finished_runs(conn: &mut DbConnection) -> QueryResult<Vec<SyncLog>> {
    let jobs: Vec<String> = dsl::haier_sync_logs
        .select(dsl::job_name)
        .distinct()
        .order(dsl::job_name)
        .load(conn)?;
    let mut runs = Vec::with_capacity(jobs.len());
    for job in jobs {
        let run = dsl::haier_sync_logs
            .filter(dsl::job_name.eq(&job))
            .filter(dsl::completed_at.is_not_null())
            .filter(dsl::status.ne(RunStatus::Skipped))
            .order((dsl::started_at.desc(), dsl::id.desc()))
            .select(SyncLog::as_select())
            .first(conn)
            .optional()?;
        runs.extend(run);
    }
    Ok(runs)
}

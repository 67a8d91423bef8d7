//! Whether a job's run goes on now in another live process, for the commands that must not
//! start a second one (`run-job`, `trigger`): a `running` row of the job whose instance is a
//! daemon with a fresh heartbeat, or a `run-job` command of this host whose process exists. A
//! `run-job` on another host registers no heartbeat, so it cannot be judged from here and is left
//! out. The rows are `crate::runs`'s, the heartbeats `crate::db::instances`'.

use super::recovery::{process_exists, split_instance};
use crate::db::{self, instances, DbConnection};
use crate::runs;
use chrono::NaiveDateTime;
use diesel::QueryResult;

/// A run of a job going on in another live process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGoingOn {
    /// `host:pid` of the process running it.
    pub instance: String,
    /// Whether that process is a daemon (else a `run-job` command of this host).
    pub by_daemon: bool,
    pub started_at: NaiveDateTime,
    /// Its `haier_sync_logs.id`.
    pub log_id: i64,
}

/// The runs of `job_name` going on in other live processes; `alive_since` is the oldest
/// heartbeat that counts as alive (see [`super::alive_since`]).
pub fn runs_going_on(
    conn: &mut DbConnection,
    job_name: &str,
    alive_since: NaiveDateTime,
) -> QueryResult<Vec<RunGoingOn>> {
    let rows = runs::log::running_rows(conn, job_name)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let me = db::instance_name();
    let (my_host, _) = split_instance(&me);
    let live = instances::live(conn, alive_since)?;
    let mut going_on = Vec::new();
    for row in rows.into_iter().filter(|r| r.instance != me) {
        let by_daemon = live.iter().any(|l| l.instance == row.instance);
        let by_command = !by_daemon && {
            let (host, pid) = split_instance(&row.instance);
            // A registered daemon that is not live here is gone, whatever now has its pid.
            host == my_host
                && pid.is_some_and(process_exists)
                && instances::find(conn, &row.instance)?.is_none()
        };
        if by_daemon || by_command {
            going_on.push(RunGoingOn {
                instance: row.instance,
                by_daemon,
                started_at: row.started_at,
                log_id: row.id,
            });
        }
    }
    Ok(going_on)
}

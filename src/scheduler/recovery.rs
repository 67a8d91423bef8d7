//! Recovery at start: `running` rows whose process is gone (a crash, `kill -9`, a power cut) are
//! closed as `interrupted`, with the counts they had reached. Rows of processes that may still
//! run are left to their owners.
//!
//! Who counts as gone:
//! - **This host** (`<host>:<pid>` with our host name): the pid is our own (an earlier process
//!   that had it), or no process has that pid (`/proc/<pid>` is missing), or it was a daemon whose
//!   heartbeat is older than 3 × `heartbeat_ms` (the pid now belongs to another program).
//! - **Another host**: a daemon that stopped, or whose heartbeat is older than
//!   [`FOREIGN_STALE_HEARTBEATS`] × `heartbeat_ms` (50 s by default). Its own restart would close
//!   them too, but a host that never comes back would otherwise leave them `running` forever.
//! - A `run-job` command on another host registers no heartbeat, so its rows are never closed
//!   from here.
//!
//! The order leases of gone processes of **this host** are freed at the same time (the rows go
//! back to `pending`, due now), so their orders are pushed at once instead of after `lease_ms`.
//! A lease token is `<host>:<pid>:<random>`, and its holder counts as gone by the rule above. A
//! lease held on another host is left to run out: that host may only be cut off from this one,
//! still pushing.

use super::{before, LIVE_HEARTBEATS};
use crate::db::{self, instances, Db};
use crate::orders::outbox;
use crate::runs;
use chrono::{DateTime, Utc};
use std::path::Path;
use tracing::info;

/// How many heartbeat intervals a daemon on another host may be silent before its `running`
/// rows are closed by this one.
pub const FOREIGN_STALE_HEARTBEATS: u32 = 10;

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Instances whose rows were closed, with the number of rows.
    pub closed: Vec<(String, usize)>,
    /// Instances with `running` rows that were left alone.
    pub left: Vec<String>,
    /// Order lease tokens of gone processes of this host that were freed, with their rows.
    pub leases_freed: Vec<(String, usize)>,
}

impl RecoveryReport {
    pub fn rows_closed(&self) -> usize {
        self.closed.iter().map(|(_, n)| n).sum()
    }

    pub fn orders_freed(&self) -> usize {
        self.leases_freed.iter().map(|(_, n)| n).sum()
    }
}

/// Closes the `running` rows of gone processes as `interrupted`, and frees the order leases of
/// gone processes of this host (see the module docs for who counts as gone). Call it at start,
/// before catch-up (so that an interrupted tick is caught up) and before the order pollers start
/// (so that no lease of this process is taken for an earlier one's).
pub async fn recover_orphaned_runs(
    db: &Db,
    heartbeat_ms: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<RecoveryReport> {
    let me = db::instance_name();
    let report = db
        .run(move |conn| {
            let mut report = RecoveryReport::default();
            for instance in runs::log::instances_with_running_rows(conn)? {
                let registered = instances::find(conn, &instance)?;
                if !is_gone(&me, &instance, registered.as_ref(), heartbeat_ms, now, process_exists) {
                    report.left.push(instance);
                    continue;
                }
                let message = format!(
                    "interrupted: {instance} stopped without closing this run (crash or kill -9); closed at the next start"
                );
                let closed = runs::log::interrupt_rows_of(conn, std::slice::from_ref(&instance), &message)?;
                report.closed.push((instance, closed));
            }
            let (my_host, _) = split_instance(&me);
            for (token, _) in outbox::lease_holders(conn)? {
                let Some((instance, _)) = token.rsplit_once(':') else {
                    continue;
                };
                if split_instance(instance).0 != my_host {
                    continue;
                }
                let registered = instances::find(conn, instance)?;
                if !is_gone(&me, instance, registered.as_ref(), heartbeat_ms, now, process_exists) {
                    continue;
                }
                let reason = format!(
                    "the lease of {token} was freed at the next start: {instance} stopped while sending \
                     (crash or kill -9); trying again"
                );
                let freed = outbox::free_lease(conn, &token, &reason, db::now_utc())?;
                report.leases_freed.push((token, freed));
            }
            Ok(report)
        })
        .await
        .map_err(|e| e.context("Failed to close the runs and free the order leases of crashed instances"))?;
    for (instance, rows) in &report.closed {
        info!("Closed {rows} running row(s) of {instance} as interrupted: the process is gone");
    }
    for (token, rows) in &report.leases_freed {
        info!("Freed {rows} order(s) leased by {token}: the process is gone; they are pushed again now");
    }
    Ok(report)
}

/// Whether the process `instance` (`host:pid`) that owns `running` rows is gone.
fn is_gone(
    me: &str,
    instance: &str,
    registered: Option<&instances::Instance>,
    heartbeat_ms: u64,
    now: DateTime<Utc>,
    process_exists: impl Fn(u32) -> bool,
) -> bool {
    let heartbeat_older_than = |beats: u32| {
        let limit = before(now, heartbeat_ms.saturating_mul(u64::from(beats)));
        registered.is_some_and(|r| r.stopped_at.is_some() || r.heartbeat_at < limit)
    };
    let (my_host, my_pid) = split_instance(me);
    let (host, pid) = split_instance(instance);
    if host == my_host {
        if instance == me {
            return true;
        }
        let Some(pid) = pid.filter(|_| my_pid.is_some()) else {
            return heartbeat_older_than(LIVE_HEARTBEATS);
        };
        return !process_exists(pid) || heartbeat_older_than(LIVE_HEARTBEATS);
    }
    heartbeat_older_than(FOREIGN_STALE_HEARTBEATS)
}

/// `host:pid` → (host, pid); a name without a numeric pid gives `None` for it.
pub(super) fn split_instance(instance: &str) -> (&str, Option<u32>) {
    match instance.rsplit_once(':') {
        Some((host, pid)) => (host, pid.parse().ok()),
        None => (instance, None),
    }
}

pub(super) fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(heartbeat_secs_ago: i64, stopped: bool, now: DateTime<Utc>) -> instances::Instance {
        let at = (now - chrono::Duration::seconds(heartbeat_secs_ago)).naive_utc();
        instances::Instance {
            instance: String::new(),
            hostname: String::new(),
            pid: 0,
            version: String::new(),
            started_at: at,
            heartbeat_at: at,
            stopped_at: stopped.then_some(at),
            client_stats: None,
        }
    }

    #[test]
    fn who_is_gone() {
        let now = Utc::now();
        let alive = |_: u32| true;
        let dead = |_: u32| false;
        let me = "box:100";
        // An earlier process with our pid.
        assert!(is_gone(me, "box:100", None, 5_000, now, alive));
        // This host: no such process.
        assert!(is_gone(me, "box:7", None, 5_000, now, dead));
        // This host: a process with that pid and a fresh heartbeat, or a `run-job` command.
        assert!(!is_gone(
            me,
            "box:7",
            Some(&registered(1, false, now)),
            5_000,
            now,
            alive
        ));
        assert!(!is_gone(me, "box:7", None, 5_000, now, alive));
        // This host: the pid lives but the daemon's heartbeat is stale: the pid was reused.
        assert!(is_gone(
            me,
            "box:7",
            Some(&registered(20, false, now)),
            5_000,
            now,
            alive
        ));
        // Another host: fresh, a little stale, long stale, stopped, never registered.
        assert!(!is_gone(
            me,
            "far:7",
            Some(&registered(1, false, now)),
            5_000,
            now,
            dead
        ));
        assert!(!is_gone(
            me,
            "far:7",
            Some(&registered(20, false, now)),
            5_000,
            now,
            dead
        ));
        assert!(is_gone(
            me,
            "far:7",
            Some(&registered(60, false, now)),
            5_000,
            now,
            dead
        ));
        assert!(is_gone(
            me,
            "far:7",
            Some(&registered(1, true, now)),
            5_000,
            now,
            dead
        ));
        assert!(!is_gone(me, "far:7", None, 5_000, now, dead));
    }

    #[test]
    fn this_process_exists_and_an_impossible_pid_does_not() {
        assert!(process_exists(std::process::id()));
        assert!(!process_exists(u32::MAX));
    }
}

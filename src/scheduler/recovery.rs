//! Recovery: `running` rows whose process is gone (a crash, `kill -9`, a power cut) are closed
//! as `interrupted`, with the counts they had reached, and the order leases of gone processes
//! are freed. Rows and leases of processes that may still run are left to their owners.
//!
//! Who counts as gone:
//! - **This host** (`<host>:<pid>` with our host name): the pid is our own (an earlier process
//!   that had it), or no process has that pid (`/proc/<pid>` is missing, or is a zombie not yet
//!   reaped), or it was a daemon whose heartbeat is older than 3 × `heartbeat_ms` (the pid now
//!   belongs to another program).
//! - **Another host**: a daemon that stopped, or whose heartbeat is older than
//!   [`FOREIGN_STALE_HEARTBEATS`] × `heartbeat_ms` (15 s by default).
//! - A `run-job` command on another host registers no heartbeat, so its rows are never closed
//!   from here.
//!
//! When:
//! - **At start** ([`recover_orphaned_runs`]): the rows of every gone process, and the leases of
//!   gone processes of this host (a lease token is `<host>:<pid>:<random>`), so that the orders a
//!   killed daemon held are pushed at once instead of after `lease_ms`.
//! - **At every heartbeat** of every live daemon ([`free_claims_of_silent_instances`]): a daemon
//!   of any host silent for [`FOREIGN_STALE_HEARTBEATS`] beats is declared gone, its rows closed
//!   and its leases freed, and its interrupted runs are caught up. A lease whose holder is merely
//!   slow runs out by itself (`lease_ms`), whichever comes first.
//!
//! Fencing: every write a run or a push makes afterwards is guarded by its owner (the instance
//! on the log row, the lease token on the outbox row) and the status, so a late owner never
//! overwrites what recovery wrote; it logs a warning instead.

use super::{before, LIVE_HEARTBEATS};
use crate::db::{self, instances, Db};
use crate::orders::outbox;
use crate::runs;
use chrono::{DateTime, Utc};
use std::path::Path;
use tracing::{info, warn};

/// How many heartbeat intervals a daemon may be silent before another one takes it for gone:
/// closes its `running` rows as `interrupted` and frees its order leases (at start, and at every
/// heartbeat of every live daemon, see [`free_claims_of_silent_instances`]).
pub const FOREIGN_STALE_HEARTBEATS: u32 = 3;

/// What recovery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Instances whose rows were closed, with the number of rows.
    pub closed: Vec<(String, usize)>,
    /// Instances with `running` rows that were left alone.
    pub left: Vec<String>,
    /// Order lease tokens of gone processes that were freed, with their rows.
    pub leases_freed: Vec<(String, usize)>,
    /// Silent daemons this one declared gone (at most one daemon declares each).
    pub declared_gone: Vec<String>,
    /// The jobs and fire times of the `running` rows closed for a declared daemon, to be caught
    /// up.
    pub interrupted: Vec<(String, Option<chrono::NaiveDateTime>)>,
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

/// At every heartbeat (and at start): daemons whose heartbeat is older than
/// [`FOREIGN_STALE_HEARTBEATS`] × `heartbeat_ms` (of another host, or of this one and stopped;
/// never a live process of this host: see `busy_here`) are declared gone (`stopped_at` set; a daemon
/// that comes back registers again and finds its claims taken), their `running` rows closed as
/// `interrupted` and their order leases freed (back to `pending`, due now). When no daemon is
/// silent this is one indexed read. Of several daemons that see the same silence, only the one
/// whose declaration lands frees the claims. The report's `interrupted` lists what to catch up.
pub async fn free_claims_of_silent_instances(
    db: &Db,
    heartbeat_ms: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<RecoveryReport> {
    let report = db
        .run(move |conn| Ok(free_claims_of_silent_instances_on(conn, heartbeat_ms, now)?))
        .await
        .map_err(|e| e.context("Failed to free the claims of silent instances"))?;
    log_freed_claims(&report);
    Ok(report)
}

/// [`free_claims_of_silent_instances`] on a connection the caller holds (the heartbeat's, which
/// makes all its reads and writes in one trip); log the report with [`log_freed_claims`].
pub(super) fn free_claims_of_silent_instances_on(
    conn: &mut db::DbConnection,
    heartbeat_ms: u64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<RecoveryReport> {
    let me = db::instance_name();
    let silent_before = before(
        now,
        heartbeat_ms.saturating_mul(u64::from(FOREIGN_STALE_HEARTBEATS)),
    );
    let mut report = RecoveryReport::default();
    for silent in instances::silent(conn, silent_before)? {
        if silent.instance == me
            || busy_here(&me, &silent.instance)
            || !instances::declare_gone(conn, &silent.instance, silent_before, db::now_utc())?
        {
            continue;
        }
        let instance = silent.instance;
        let late_ms = (now.naive_utc() - silent.heartbeat_at).num_milliseconds();
        let rows = runs::log::running_rows_of(conn, &instance)?;
        let message = format!(
            "interrupted: {instance} was taken for gone by {me}: no heartbeat for {late_ms} ms \
             (more than {FOREIGN_STALE_HEARTBEATS} beats of {heartbeat_ms} ms); caught up"
        );
        let closed = runs::log::interrupt_rows_of(conn, std::slice::from_ref(&instance), &message)?;
        if closed > 0 {
            report.closed.push((instance.clone(), closed));
            report
                .interrupted
                .extend(rows.into_iter().map(|r| (r.job_name, r.scheduled_for)));
        }
        let prefix = format!("{instance}:");
        for (token, _) in outbox::lease_holders(conn)? {
            if !token.starts_with(&prefix) {
                continue;
            }
            let reason = format!(
                "the lease of {token} was freed by {me}: {instance} sent no heartbeat for \
                 {late_ms} ms while sending; trying again"
            );
            let freed = outbox::free_lease(conn, &token, &reason, db::now_utc())?;
            report.leases_freed.push((token, freed));
        }
        report.declared_gone.push(instance);
    }
    Ok(report)
}

/// Logs what [`free_claims_of_silent_instances_on`] did.
pub(super) fn log_freed_claims(report: &RecoveryReport) {
    for instance in &report.declared_gone {
        warn!("{instance} sent no heartbeat for more than {FOREIGN_STALE_HEARTBEATS} beats: taken for gone");
    }
    for (instance, rows) in &report.closed {
        info!("Closed {rows} running row(s) of {instance} as interrupted: it is gone");
    }
    for (token, rows) in &report.leases_freed {
        info!("Freed {rows} order(s) leased by {token}: its daemon is gone; they are pushed again now");
    }
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

/// Whether a process with `pid` runs. `/proc/<pid>` alone says too much: it stays for a zombie
/// (a process killed but not yet reaped by its parent, as after `kill -9` under a supervisor or
/// a script that does not wait), and it answers for a thread id too (`/proc/<tid>` exists for
/// every thread, though `ls /proc` does not list it), so a dead daemon's pid reused as a thread
/// of some other process looked alive. A process runs when `/proc/<pid>/status` names it as its
/// own thread group (`Tgid`) and its state is not zombie or dead.
pub(super) fn process_exists(pid: u32) -> bool {
    let path = Path::new("/proc").join(pid.to_string()).join("status");
    match std::fs::read_to_string(&path) {
        Ok(status) => process_runs(pid, &status),
        // No procfs (not Linux): the pid alone, as far as it can be told.
        Err(_) if !Path::new("/proc/self").exists() => true,
        Err(_) => false,
    }
}

/// Whether `instance` is a process of this host that is alive and not stopped: a daemon that is
/// only slow (its heartbeat waits on a busy database, or the host is overloaded) is never taken
/// for gone by a neighbour on its own host, whose claims it still works on. A process stopped
/// (`SIGSTOP`, a debugger) is as silent as a daemon of a host cut off, and is judged by its
/// heartbeat like one.
fn busy_here(me: &str, instance: &str) -> bool {
    let ((my_host, _), (host, pid)) = (split_instance(me), split_instance(instance));
    let Some(pid) = pid.filter(|_| host == my_host) else {
        return false;
    };
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"));
    status.is_ok_and(|status| {
        let stopped = status
            .lines()
            .find_map(|line| line.strip_prefix("State:"))
            .is_some_and(|state| matches!(state.trim().chars().next(), Some('T' | 't')));
        process_runs(pid, &status) && !stopped
    })
}

/// Reads `/proc/<pid>/status`: the process runs unless it is a zombie or dead, or `pid` is a
/// thread of another process.
fn process_runs(pid: u32, status: &str) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let zombie = field("State:").is_some_and(|state| state.starts_with('Z') || state.starts_with('X'));
    let own_group = field("Tgid:").is_none_or(|tgid| tgid == pid.to_string());
    !zombie && own_group
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
            config_hash: None,
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
        // Another host: fresh, a little stale (two beats), stale (more than three), stopped,
        // never registered.
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
            Some(&registered(10, false, now)),
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

    #[test]
    fn a_zombie_or_a_thread_of_another_process_is_not_a_running_process() {
        let status =
            |state: &str, tgid: u32| format!("Name:\thaier-sync\nState:\t{state}\nTgid:\t{tgid}\nPid:\t42\n");
        assert!(process_runs(42, &status("S (sleeping)", 42)));
        assert!(process_runs(42, &status("R (running)", 42)));
        assert!(!process_runs(42, &status("Z (zombie)", 42)));
        assert!(!process_runs(42, &status("X (dead)", 42)));
        assert!(
            !process_runs(42, &status("S (sleeping)", 7)),
            "a thread of process 7"
        );
        // A thread of this process: /proc/<tid> exists, yet it is no process of its own.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        assert_ne!(tid, std::process::id());
        assert!(
            Path::new("/proc").join(tid.to_string()).exists(),
            "procfs answers for a thread id"
        );
        assert!(!process_exists(tid));
        done_tx.send(()).unwrap();
        thread.join().unwrap();
    }

    /// The calling thread's id, from procfs.
    fn thread_id() -> u32 {
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        link.file_name().unwrap().to_str().unwrap().parse().unwrap()
    }
}

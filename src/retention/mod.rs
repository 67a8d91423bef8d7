//! Retention: deletes the history `[retention]` no longer keeps, for `haier-sync prune` and the
//! daemon's daily prune ([`daily`]). It owns `haier_retention_prunes` ([`store`]: one row per
//! prune, also the record that lets one daemon a day prune) and no other table: each kind is
//! counted and deleted by its table's owner (`runs::log`, `orders::events`, `orders::outbox`,
//! `orders::lines`, `orders::shipments`, `db::logistics`), in batches, each its own short
//! transaction. `running` sync-log rows are never pruned. Products, prices and price changes are
//! business data: never pruned.

pub mod daily;
pub mod store;

use crate::config::RetentionConfig;
use crate::db::{logistics, DbConnection};
use crate::orders::{events, lines, outbox, shipments};
use crate::runs::{log, RunStatus};
use chrono::NaiveDateTime;
use diesel::{Connection as _, QueryResult};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant};

/// The sync-log statuses kept `successful_runs_days`.
pub const SUCCESSFUL_RUNS: [RunStatus; 2] = [RunStatus::Success, RunStatus::Skipped];
/// The sync-log statuses kept `failed_runs_days`.
pub const FAILED_RUNS: [RunStatus; 3] = [RunStatus::Failed, RunStatus::Partial, RunStatus::Interrupted];

/// The most rows one batch deletes: a batch is one short transaction.
pub const MAX_BATCH: i64 = 5_000;
/// The fewest rows one batch deletes, however slow the database.
const MIN_BATCH: i64 = 100;
/// The rows of the first batch of each kind; later batches grow or shrink toward
/// [`BATCH_TARGET`].
const FIRST_BATCH: i64 = 1_000;
/// How long one batch should hold its locks: batches that take longer are halved, those that
/// take less than half of it doubled (up to [`MAX_BATCH`]).
const BATCH_TARGET: Duration = Duration::from_millis(100);
/// The pause after each batch on SQLite, whose single write lock a batch holds: longer than the
/// longest sleep of SQLite's busy handler (100 ms), so that a writer waiting for the lock always
/// gets it between two batches. PostgreSQL locks rows, and other writers never wait on a prune.
pub const SQLITE_PAUSE: Duration = Duration::from_millis(120);

/// What a prune deletes: the times before which each kind goes, from `[retention]` and now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub successful_runs_before: NaiveDateTime,
    pub failed_runs_before: NaiveDateTime,
    pub callback_events_before: NaiveDateTime,
    /// `None`: finished orders are kept (the default).
    pub finished_orders_before: Option<NaiveDateTime>,
}

impl Policy {
    /// The policy of `config` at `now` (UTC): each kind older than its days goes.
    pub fn new(config: &RetentionConfig, now: NaiveDateTime) -> Policy {
        let before = |days: u32| {
            now.checked_sub_signed(chrono::Duration::days(i64::from(days)))
                .unwrap_or(NaiveDateTime::MIN)
        };
        Policy {
            successful_runs_before: before(config.successful_runs_days),
            failed_runs_before: before(config.failed_runs_days),
            callback_events_before: before(config.callback_events_days),
            finished_orders_before: config.finished_orders_days.map(before),
        }
    }
}

/// The kinds of rows a prune deletes, in the order it deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneKind {
    /// `haier_sync_logs` rows that ended `success` or `skipped`.
    SuccessfulRuns,
    /// `haier_sync_logs` rows that ended `failed`, `partial` or `interrupted`.
    FailedRuns,
    /// `haier_order_events`, by the time they came.
    CallbackEvents,
    /// `haier_order_outbox` rows in a final status.
    FinishedOrders,
    /// The `haier_order_lines` of the finished orders deleted.
    OrderLines,
    /// The `haier_order_shipments` of the finished orders deleted.
    OrderShipments,
    /// The `haier_logistics` rows of the finished orders deleted.
    OrderLogistics,
    /// The callbacks of the finished orders deleted that were younger than `callback_events_days`.
    OrderEvents,
}

impl PruneKind {
    pub const ALL: [PruneKind; 8] = [
        PruneKind::SuccessfulRuns,
        PruneKind::FailedRuns,
        PruneKind::CallbackEvents,
        PruneKind::FinishedOrders,
        PruneKind::OrderLines,
        PruneKind::OrderShipments,
        PruneKind::OrderLogistics,
        PruneKind::OrderEvents,
    ];

    /// The name in the log line, the JSON and the table: `successful_runs`, ….
    pub fn name(self) -> &'static str {
        match self {
            PruneKind::SuccessfulRuns => "successful_runs",
            PruneKind::FailedRuns => "failed_runs",
            PruneKind::CallbackEvents => "callback_events",
            PruneKind::FinishedOrders => "finished_orders",
            PruneKind::OrderLines => "order_lines",
            PruneKind::OrderShipments => "order_shipments",
            PruneKind::OrderLogistics => "order_logistics",
            PruneKind::OrderEvents => "order_events",
        }
    }

    /// What the rows are, for the table `prune` prints.
    pub fn describe(self) -> &'static str {
        match self {
            PruneKind::SuccessfulRuns => "sync-log rows success/skipped",
            PruneKind::FailedRuns => "sync-log rows failed/partial/interrupted",
            PruneKind::CallbackEvents => "callbacks",
            PruneKind::FinishedOrders => "outbox orders refused/cancelled/returned/dead",
            PruneKind::OrderLines => "  their lines",
            PruneKind::OrderShipments => "  their parcels",
            PruneKind::OrderLogistics => "  their logistics rows",
            PruneKind::OrderEvents => "  their newer callbacks",
        }
    }
}

/// Rows per kind: counted by a dry run, or deleted by a prune.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneCounts {
    pub successful_runs: i64,
    pub failed_runs: i64,
    pub callback_events: i64,
    pub finished_orders: i64,
    pub order_lines: i64,
    pub order_shipments: i64,
    pub order_logistics: i64,
    pub order_events: i64,
}

impl PruneCounts {
    pub fn get(&self, kind: PruneKind) -> i64 {
        match kind {
            PruneKind::SuccessfulRuns => self.successful_runs,
            PruneKind::FailedRuns => self.failed_runs,
            PruneKind::CallbackEvents => self.callback_events,
            PruneKind::FinishedOrders => self.finished_orders,
            PruneKind::OrderLines => self.order_lines,
            PruneKind::OrderShipments => self.order_shipments,
            PruneKind::OrderLogistics => self.order_logistics,
            PruneKind::OrderEvents => self.order_events,
        }
    }

    fn add(&mut self, kind: PruneKind, n: i64) {
        let slot = match kind {
            PruneKind::SuccessfulRuns => &mut self.successful_runs,
            PruneKind::FailedRuns => &mut self.failed_runs,
            PruneKind::CallbackEvents => &mut self.callback_events,
            PruneKind::FinishedOrders => &mut self.finished_orders,
            PruneKind::OrderLines => &mut self.order_lines,
            PruneKind::OrderShipments => &mut self.order_shipments,
            PruneKind::OrderLogistics => &mut self.order_logistics,
            PruneKind::OrderEvents => &mut self.order_events,
        };
        *slot += n;
    }

    /// Every row, all kinds together.
    pub fn total(&self) -> i64 {
        PruneKind::ALL.iter().map(|k| self.get(*k)).sum()
    }
}

/// `successful_runs=12, failed_runs=0, …`, as the log line says it.
impl fmt::Display for PruneCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = PruneKind::ALL
            .iter()
            .map(|k| format!("{}={}", k.name(), self.get(*k)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// How a prune ended.
#[derive(Debug)]
pub enum PruneEnd {
    /// Everything the policy names is gone.
    Done,
    /// Stopped between two batches (shutdown); the rest goes at the next prune.
    Stopped,
    /// A statement failed; the batches before it stay deleted.
    Failed(diesel::result::Error),
}

/// What a prune deleted, and how it ended.
#[derive(Debug)]
pub struct Pruned {
    pub counts: PruneCounts,
    pub end: PruneEnd,
}

/// How a prune paces itself: the pause after each batch (see [`SQLITE_PAUSE`]).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub pause: Duration,
}

impl Pace {
    /// The pace for a connection's backend.
    pub fn for_connection(conn: &DbConnection) -> Pace {
        match conn {
            DbConnection::Sqlite(_) => Pace { pause: SQLITE_PAUSE },
            DbConnection::Pg(_) => Pace {
                pause: Duration::ZERO,
            },
        }
    }
}

/// Counts what [`prune`] with the same policy would delete now, kind by kind, deleting nothing
/// (`prune --dry-run`). Locking: plain reads only.
pub fn count(conn: &mut DbConnection, policy: &Policy) -> QueryResult<PruneCounts> {
    let mut counts = PruneCounts {
        successful_runs: log::count_finished_before(conn, &SUCCESSFUL_RUNS, policy.successful_runs_before)?,
        failed_runs: log::count_finished_before(conn, &FAILED_RUNS, policy.failed_runs_before)?,
        callback_events: events::count_received_before(conn, policy.callback_events_before)?,
        ..PruneCounts::default()
    };
    let Some(before) = policy.finished_orders_before else {
        return Ok(counts);
    };
    let mut after_id = 0;
    loop {
        let page = outbox::finished_orders_after(conn, before, after_id, MAX_BATCH)?;
        let Some((last_id, _)) = page.last() else {
            break;
        };
        after_id = *last_id;
        let so_ids: Vec<String> = page.into_iter().map(|(_, so_id)| so_id).collect();
        counts.add(PruneKind::FinishedOrders, so_ids.len() as i64);
        counts.add(PruneKind::OrderLines, lines::count_of_orders(conn, &so_ids)?);
        counts.add(
            PruneKind::OrderShipments,
            shipments::count_of_orders(conn, &so_ids)?,
        );
        counts.add(
            PruneKind::OrderLogistics,
            logistics::count_of_orders(conn, &so_ids)?,
        );
        // The older callbacks are counted above, by age.
        counts.add(
            PruneKind::OrderEvents,
            events::count_of_orders_since(conn, &so_ids, policy.callback_events_before)?,
        );
    }
    Ok(counts)
}

/// Deletes what `policy` names, kind by kind, in batches: each batch is one short transaction,
/// followed by `pace.pause`. A finished order goes in one transaction with its lines, parcels,
/// logistics rows and callbacks. `stop` is asked between batches (shutdown); `progress` is told
/// the rows of each batch. Returns what was deleted and how it ended.
pub fn prune(
    conn: &mut DbConnection,
    policy: &Policy,
    pace: Pace,
    stop: &dyn Fn() -> bool,
    progress: &dyn Fn(u64),
) -> Pruned {
    let mut counts = PruneCounts::default();
    let end = match prune_into(conn, policy, pace, stop, progress, &mut counts) {
        Ok(true) => PruneEnd::Done,
        Ok(false) => PruneEnd::Stopped,
        Err(e) => PruneEnd::Failed(e),
    };
    Pruned { counts, end }
}

/// [`prune`]'s body: `Ok(false)` when stopped.
fn prune_into(
    conn: &mut DbConnection,
    policy: &Policy,
    pace: Pace,
    stop: &dyn Fn() -> bool,
    progress: &dyn Fn(u64),
    counts: &mut PruneCounts,
) -> QueryResult<bool> {
    let mut batches = Batches { pace, stop, progress };
    let finished = batches.run(conn, |conn, limit| {
        let n = log::delete_finished_before(conn, &SUCCESSFUL_RUNS, policy.successful_runs_before, limit)?;
        counts.add(PruneKind::SuccessfulRuns, n as i64);
        Ok(n)
    })?;
    if !finished {
        return Ok(false);
    }
    let finished = batches.run(conn, |conn, limit| {
        let n = log::delete_finished_before(conn, &FAILED_RUNS, policy.failed_runs_before, limit)?;
        counts.add(PruneKind::FailedRuns, n as i64);
        Ok(n)
    })?;
    if !finished {
        return Ok(false);
    }
    let finished = batches.run(conn, |conn, limit| {
        let n = events::delete_received_before(conn, policy.callback_events_before, limit)?;
        counts.add(PruneKind::CallbackEvents, n as i64);
        Ok(n)
    })?;
    if !finished {
        return Ok(false);
    }
    let Some(before) = policy.finished_orders_before else {
        return Ok(true);
    };
    batches.run(conn, |conn, limit| {
        let batch = conn.transaction(|conn| delete_finished_orders_batch(conn, before, limit))?;
        counts.finished_orders += batch.finished_orders;
        counts.order_lines += batch.order_lines;
        counts.order_shipments += batch.order_shipments;
        counts.order_logistics += batch.order_logistics;
        counts.order_events += batch.order_events;
        // The batch size counts orders, so that it ends when no order is left.
        Ok(batch.finished_orders as usize)
    })
}

/// One batch of finished orders with every row that refers to them, inside the caller's
/// transaction. The orders go first: on SQLite that statement takes the write lock, so the
/// transaction never reads before it writes.
fn delete_finished_orders_batch(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<PruneCounts> {
    let so_ids = outbox::delete_finished_orders(conn, before, limit)?;
    Ok(PruneCounts {
        finished_orders: so_ids.len() as i64,
        order_lines: lines::delete_of_orders(conn, &so_ids)? as i64,
        order_shipments: shipments::delete_of_orders(conn, &so_ids)? as i64,
        order_logistics: logistics::delete_of_orders(conn, &so_ids)? as i64,
        order_events: events::delete_of_orders(conn, &so_ids)? as i64,
        ..PruneCounts::default()
    })
}

/// Runs batches of one kind until one deletes fewer rows than asked, sizing each so that it
/// takes about [`BATCH_TARGET`], and pausing after each.
struct Batches<'a> {
    pace: Pace,
    stop: &'a dyn Fn() -> bool,
    progress: &'a dyn Fn(u64),
}

impl Batches<'_> {
    /// `Ok(false)` when stopped before the kind was done.
    fn run(
        &mut self,
        conn: &mut DbConnection,
        mut batch: impl FnMut(&mut DbConnection, i64) -> QueryResult<usize>,
    ) -> QueryResult<bool> {
        let mut size = FIRST_BATCH;
        loop {
            if (self.stop)() {
                return Ok(false);
            }
            let started = Instant::now();
            let deleted = batch(conn, size)?;
            let took = started.elapsed();
            (self.progress)(deleted as u64);
            if (deleted as i64) < size {
                return Ok(true);
            }
            size = next_batch_size(size, took);
            if !self.pace.pause.is_zero() {
                std::thread::sleep(self.pace.pause);
            }
        }
    }
}

/// The size of the next batch after one of `size` rows took `took`.
fn next_batch_size(size: i64, took: Duration) -> i64 {
    if took > BATCH_TARGET * 2 {
        (size / 2).max(MIN_BATCH)
    } else if took < BATCH_TARGET / 2 {
        (size * 2).min(MAX_BATCH)
    } else {
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_when_quick_and_shrink_when_slow() {
        assert_eq!(next_batch_size(1_000, Duration::from_millis(10)), 2_000);
        assert_eq!(next_batch_size(4_000, Duration::from_millis(10)), MAX_BATCH);
        assert_eq!(next_batch_size(1_000, Duration::from_millis(100)), 1_000);
        assert_eq!(next_batch_size(1_000, Duration::from_millis(500)), 500);
        assert_eq!(next_batch_size(150, Duration::from_secs(2)), MIN_BATCH);
    }

    #[test]
    fn the_policy_counts_days_back_from_now() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(3, 0, 0)
            .unwrap();
        let policy = Policy::new(&RetentionConfig::default(), now);
        assert_eq!(policy.successful_runs_before, now - chrono::Duration::days(30));
        assert_eq!(policy.failed_runs_before, now - chrono::Duration::days(180));
        assert_eq!(policy.callback_events_before, now - chrono::Duration::days(365));
        assert_eq!(
            policy.finished_orders_before, None,
            "finished orders are kept by default"
        );
        let config = RetentionConfig {
            finished_orders_days: Some(7),
            ..RetentionConfig::default()
        };
        assert_eq!(
            Policy::new(&config, now).finished_orders_before,
            Some(now - chrono::Duration::days(7))
        );
    }

    #[test]
    fn counts_add_up_and_read_as_one_line() {
        let counts = PruneCounts {
            successful_runs: 3,
            finished_orders: 2,
            order_lines: 4,
            ..PruneCounts::default()
        };
        assert_eq!(counts.total(), 9);
        assert_eq!(
            counts.to_string(),
            "successful_runs=3, failed_runs=0, callback_events=0, finished_orders=2, order_lines=4, \
             order_shipments=0, order_logistics=0, order_events=0"
        );
    }
}

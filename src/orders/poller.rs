//! The outbox poller (`kind = "order_outbox"`): claims due rows with a lease, checks each, pushes
//! the valid ones concurrently through the shared client, and writes each result as it comes,
//! with no transaction open across an HTTP call. One `haier_sync_logs` row per poll that did
//! work; an idle poll writes nothing. On PostgreSQL a LISTEN on `haier_order_outbox` (the
//! insert trigger's NOTIFY) wakes it at once; the poll interval stays the fallback.
//!
//! What becomes of a claimed row:
//! - invalid payload → `dead` with the field named; never sent;
//! - no product catalog yet (`haier_products` empty) → `pending` again in a minute, no attempt counted;
//! - pushed → `pushed`; a repeat refusal (`DUPLICATE_SOID`, or 重复/已存在 in the message) →
//!   `pushed` too (Haier has it), noted in `last_error`;
//! - any other refusal after an attempt whose outcome was never seen (`push_unseen_at`) →
//!   `pushed`, the refusal in `last_error`, waiting for the confirm callback (`push_outcome.rs`);
//! - retryable failure → `pending`, `attempts + 1`, due after [`retry_delay`]; an outcome never
//!   seen (timeout, 5xx, unreadable reply) sets `push_unseen_at`; → `dead` once `attempts`
//!   reaches `max_attempts`;
//! - credentials refused or breaker open → `pending` again in 30 s, no attempt counted (not the
//!   order's fault: it must not die of a configuration error);
//! - any other failure → `dead`.
//!
//! A crash mid-push leaves the row `sending` under a lease that runs out; the next claim takes it
//! again (counting the lost attempt, its outcome never seen) and a repeated push is answered as a
//! repeat. So
//! `lease_ms` should exceed the longest push the client can make (timeout × attempts + backoff);
//! a lease that runs out early only costs a harmless duplicate push.

use super::catalog::Catalog;
use super::outbox::{self, OutboxRow, PushResult};
use super::push_outcome::{classify_push, Pushed};
use super::validate::{self, ValidOrder};
use crate::config::OutboxJob;
use crate::context::AppContext;
use crate::db::{self, Backend, Db, DbConnection};
use crate::haier::{HaierClient, HaierError};
use crate::runs::{FailureList, RunCounts, RunRecorder, RunSpec, Trigger};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use futures::StreamExt as _;
use rand::Rng as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The first retry waits up to this long (full jitter: a random time between 0 and the bound).
const RETRY_BASE: Duration = Duration::from_secs(1);
/// No retry waits longer than this.
const RETRY_CAP: Duration = Duration::from_secs(300);
/// How long an order waits when `haier_products` lists nothing for sale yet.
const NO_CATALOG_WAIT: Duration = Duration::from_secs(60);
/// What such an order's `last_error` says meanwhile.
const NO_CATALOG_REASON: &str =
    "haier_products lists no product for sale yet (run the products job): the order waits";
/// How long an order waits when Haier cannot be called at all (credentials refused, breaker open).
const UNAVAILABLE_WAIT: Duration = Duration::from_secs(30);
/// The channel the outbox insert trigger notifies.
pub const NOTIFY_CHANNEL: &str = "haier_order_outbox";
/// How soon the LISTEN thread looks for notifications again after one came (libpq's check is a
/// non-blocking read: diesel gives no socket to wait on).
const LISTEN_POLL_MIN: Duration = Duration::from_millis(10);
/// The longest wait between two looks: each look that finds nothing doubles the wait up to this,
/// so an idle outbox costs 10 wake-ups a second instead of 100, and an order inserted then is
/// picked up within 100 ms (the 200 ms latency target holds; a burst after a first order is
/// looked for every 10 ms again).
const LISTEN_POLL_MAX: Duration = Duration::from_millis(100);
/// Longest wait before the LISTEN thread reconnects after losing its connection.
const LISTEN_RECONNECT_CAP: Duration = Duration::from_secs(30);

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// No row was due.
    Idle,
    /// Rows were claimed; `counts` is what the sync log row says.
    Worked { counts: RunCounts },
}

/// The wait before retry number `attempt` (1 for the first retry): a random duration up to
/// `1 s × 2^(attempt-1)`, capped at 5 minutes ("full jitter", so many failed orders do not all
/// come back at once).
pub fn retry_delay(attempt: i64) -> Duration {
    let exponent = (attempt.max(1) - 1).min(20) as u32;
    let bound = RETRY_BASE.saturating_mul(1 << exponent).min(RETRY_CAP);
    let ms = rand::rng().random_range(0..=bound.as_millis() as u64);
    Duration::from_millis(ms)
}

fn after(now: NaiveDateTime, wait: Duration) -> NaiveDateTime {
    now + chrono::Duration::milliseconds(wait.as_millis() as i64)
}

/// A lease token unique to one claim: `host:pid:random`.
fn lease_token() -> String {
    format!("{}:{:08x}", db::instance_name(), rand::rng().random::<u32>())
}

/// One poll: claims up to `batch_size` due rows, pushes them, writes the results and one sync
/// log row. Tests and the demo call this directly to deliver all due orders without sleeping.
pub async fn try_push_next_batch(ctx: &AppContext, job: &OutboxJob) -> anyhow::Result<PollOutcome> {
    push_next_batch(&ctx.db, &ctx.client, job).await
}

/// [`try_push_next_batch`] with its parts spelled out.
pub async fn push_next_batch(db: &Db, client: &HaierClient, job: &OutboxJob) -> anyhow::Result<PollOutcome> {
    let token = lease_token();
    let rows = {
        let token = token.clone();
        let lease = chrono::Duration::milliseconds(job.lease_ms.min(i64::MAX as u64) as i64);
        let limit = i64::from(job.batch_size.max(1));
        db.run(move |conn| {
            let now = db::now_utc();
            // An idle poll is one indexed read, with no write lock.
            if !outbox::any_due(conn, now)? {
                return Ok(Vec::new());
            }
            Ok(outbox::claim_due_orders(conn, &token, now, now + lease, limit)?)
        })
        .await
        .context("Failed to claim due orders from the outbox")?
    };
    if rows.is_empty() {
        return Ok(PollOutcome::Idle);
    }
    let run = RunRecorder::start(
        db,
        RunSpec {
            job_name: job.name.clone(),
            sync_type: job.kind().sync_type(),
            trigger: Trigger::Schedule,
            scheduled_for: None,
        },
    )
    .await?;

    let total = rows.len();
    let (tally, error) = match push_claimed(db, client, job, &token, rows).await {
        Ok(done) => done,
        // Nothing more can be said about the batch: its rows stay `sending` until the lease
        // runs out, then they are checked and pushed again.
        Err(e) => (Tally::new(total), Some(e)),
    };
    let mut counts = tally.counts();
    if error.is_some() {
        counts.failed = counts.total - counts.success;
    }
    if let Some(run) = run {
        let mut message = tally.failures.message();
        if let Some(e) = &error {
            let text = format!("results not recorded (those orders will be pushed again): {e:#}");
            message = Some(match message {
                Some(m) => format!("{text}; {m}"),
                None => text,
            });
        }
        // A close the database does not take is retried in the background (the recorder logs it).
        run.close(counts.status(), counts, message).await;
    }
    tracing::info!(
        job = %job.name,
        claimed = counts.total,
        pushed = counts.success,
        failed = counts.failed,
        "order outbox batch done"
    );
    match error {
        Some(e) => Err(e.context("Failed to record the results of an order batch")),
        None => Ok(PollOutcome::Worked { counts }),
    }
}

/// Checks and pushes claimed rows, writing each result as it comes. Returns the tally and the
/// first error met while writing results (the other results are written still).
async fn push_claimed(
    db: &Db,
    client: &HaierClient,
    job: &OutboxJob,
    token: &str,
    rows: Vec<OutboxRow>,
) -> anyhow::Result<(Tally, Option<anyhow::Error>)> {
    let mut tally = Tally::new(rows.len());
    let to_push = check_rows(db, token, rows, &mut tally).await?;
    let concurrency = job.concurrency.unwrap_or(job.batch_size as usize).max(1);
    let max_attempts = i64::from(job.max_attempts.max(1));
    let results: Vec<anyhow::Result<(String, Pushed)>> = futures::stream::iter(to_push)
        .map(|(row, valid)| async move {
            let result = client.push_order(&valid.order).await;
            let pushed = record_push_result(db, token, &row, result, max_attempts).await?;
            Ok((row.so_id, pushed))
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut first_error = None;
    for result in results {
        match result {
            Ok((so_id, pushed)) => tally.add(&so_id, pushed),
            Err(e) => {
                // The row stays `sending`; its lease runs out and it is pushed again
                // (a duplicate push is answered DUPLICATE_SOID and taken as delivered).
                tally.failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    Ok((tally, first_error))
}

/// Checks the claimed rows: invalid ones go `dead`, all of them wait when there is no product
/// catalog yet, the rest are returned to be pushed.
async fn check_rows(
    db: &Db,
    token: &str,
    rows: Vec<OutboxRow>,
    tally: &mut Tally,
) -> anyhow::Result<Vec<(OutboxRow, ValidOrder)>> {
    let token = token.to_owned();
    let (checked, dead, deferred) = db
        .run(move |conn| {
            let parsed: Vec<ValidOrder> = rows
                .iter()
                .filter_map(|row| validate::parse_order(&row.payload).ok())
                .collect();
            let catalog = Catalog::load(conn, parsed.iter().map(|valid| &valid.order))?;
            let now = db::now_utc();
            let mut checked = Vec::new();
            let mut dead = Vec::new();
            let mut deferred = Vec::new();
            for row in rows {
                let invalid =
                    match validate::validate_outbox_row(&row.payload, &row.so_id, &row.online_no, &catalog) {
                        Ok(valid) => {
                            checked.push((row, valid));
                            continue;
                        }
                        Err(invalid) => invalid,
                    };
                let reason;
                let result = if catalog.explains(&invalid.problems) {
                    deferred.push(row.so_id.clone());
                    PushResult::Deferred {
                        reason: NO_CATALOG_REASON,
                        at: after(now, NO_CATALOG_WAIT),
                    }
                } else {
                    reason = format!("invalid order, not sent: {invalid}");
                    dead.push((row.so_id.clone(), invalid.to_string()));
                    PushResult::Dead {
                        error: &reason,
                        attempted: false,
                    }
                };
                outbox::record_push_result(conn, row.id, &token, result, now)?;
            }
            Ok((checked, dead, deferred))
        })
        .await
        .context("Failed to check the claimed orders")?;
    for (so_id, reason) in dead {
        tracing::warn!(so_id = %so_id, reason = %reason, "invalid order marked dead; it was not sent");
        tally.failed += 1;
        tally.failures.push(&so_id, format!("dead: {reason}"));
    }
    for so_id in deferred {
        tally.failed += 1;
        tally.failures.push(&so_id, "waiting for the product catalog");
    }
    for (row, valid) in &checked {
        for warning in &valid.warnings {
            tracing::warn!(so_id = %row.so_id, "{warning}");
        }
    }
    Ok(checked)
}

/// Writes one push result under the lease. Only the single-row update runs in the database;
/// the HTTP call has finished before.
async fn record_push_result(
    db: &Db,
    token: &str,
    row: &OutboxRow,
    result: Result<(), HaierError>,
    max_attempts: i64,
) -> anyhow::Result<Pushed> {
    let attempt = row.attempts + 1;
    let (id, so_id, token) = (row.id, row.so_id.clone(), token.to_owned());
    let lease = token.clone();
    let pushed = classify_push(&result, row.push_unseen_at.is_some(), attempt, max_attempts);
    let wait = match &pushed {
        Pushed::Deferred(_) => UNAVAILABLE_WAIT,
        _ => retry_delay(attempt),
    };
    let to_write = pushed.clone();
    let written = db
        .run(move |conn: &mut DbConnection| {
            let now = db::now_utc();
            let result = match &to_write {
                Pushed::Delivered { note } => PushResult::Pushed {
                    note: note.as_deref(),
                },
                Pushed::Held(refusal) => PushResult::Pushed { note: Some(refusal) },
                Pushed::Retry { reason, unseen } => PushResult::Retry {
                    error: reason,
                    at: after(now, wait),
                    unseen: *unseen,
                },
                Pushed::Deferred(reason) => PushResult::Deferred {
                    reason,
                    at: after(now, wait),
                },
                Pushed::Dead(error) => PushResult::Dead {
                    error,
                    attempted: true,
                },
                Pushed::LeaseLost => return Ok(false),
            };
            Ok(outbox::record_push_result(conn, id, &token, result, now)?)
        })
        .await
        .with_context(|| format!("Failed to record the push result of order {so_id}"))?;
    match (&pushed, written) {
        (_, false) => {
            tracing::warn!(
                so_id = %so_id,
                lease = %lease,
                result = ?pushed,
                "the order's lease was lost before this push result was written (taken over by another \
                 poller, freed by a daemon that took this one for gone, or the order moved on by a \
                 callback): the row is left as its new owner wrote it"
            );
            Ok(Pushed::LeaseLost)
        }
        (Pushed::Dead(reason), true) => {
            tracing::warn!(so_id = %so_id, reason = %reason, "order marked dead");
            Ok(pushed)
        }
        (Pushed::Held(reason), true) => {
            tracing::warn!(so_id = %so_id, reason = %reason, "order refused after an unseen attempt; held as pushed");
            Ok(pushed)
        }
        (Pushed::Retry { reason, .. } | Pushed::Deferred(reason), true) => {
            tracing::info!(so_id = %so_id, reason = %reason, retry_in_ms = wait.as_millis() as u64, "order push will be retried");
            Ok(pushed)
        }
        _ => Ok(pushed),
    }
}

/// Counts for the sync log.
struct Tally {
    total: usize,
    success: i64,
    failed: i64,
    failures: FailureList,
}

impl Tally {
    fn new(total: usize) -> Self {
        Self {
            total,
            success: 0,
            failed: 0,
            failures: FailureList::default(),
        }
    }

    fn add(&mut self, so_id: &str, pushed: Pushed) {
        match pushed {
            Pushed::Delivered { .. } => self.success += 1,
            // Someone else (a callback, another poller) finished it.
            Pushed::LeaseLost => self.success += 1,
            Pushed::Held(reason) => {
                self.success += 1;
                self.failures.push(so_id, format!("held as pushed: {reason}"));
            }
            Pushed::Retry { reason, .. } | Pushed::Deferred(reason) => {
                self.failed += 1;
                self.failures.push(so_id, reason);
            }
            Pushed::Dead(reason) => {
                self.failed += 1;
                self.failures.push(so_id, format!("dead: {reason}"));
            }
        }
    }

    fn counts(&self) -> RunCounts {
        RunCounts {
            total: self.total as i64,
            success: self.success,
            failed: self.failed,
        }
    }
}

/// Runs the poller until `cancel` fires: a poll, then — when it found nothing — a wait for a
/// NOTIFY (PostgreSQL), the poll interval, or `cancel`. A batch in progress is finished before
/// stopping (a daemon that cannot wait leaves leases that run out and are taken again).
pub async fn run_until_stopped(
    ctx: AppContext,
    job: OutboxJob,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    poll_until_stopped(&ctx.db, &ctx.client, &job, cancel).await
}

/// [`run_until_stopped`] with its parts spelled out.
pub async fn poll_until_stopped(
    db: &Db,
    client: &HaierClient,
    job: &OutboxJob,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let listener_stop = cancel.child_token();
    let wake = listen_for_new_orders(db, listener_stop.clone());
    let _stop_listener = listener_stop.drop_guard();
    let interval = Duration::from_millis(job.poll_interval_ms.max(1));
    tracing::info!(
        job = %job.name,
        poll_interval_ms = job.poll_interval_ms,
        batch_size = job.batch_size,
        notify = wake.is_some(),
        "order outbox poller started"
    );
    while !cancel.is_cancelled() {
        let idle = match push_next_batch(db, client, job).await {
            Ok(PollOutcome::Worked { .. }) => false,
            Ok(PollOutcome::Idle) => true,
            Err(e) => {
                tracing::error!(job = %job.name, error = %format!("{e:#}"), "order outbox poll failed");
                true
            }
        };
        if !idle {
            continue;
        }
        match &wake {
            Some(wake) => tokio::select! {
                () = cancel.cancelled() => {}
                () = wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            },
            None => tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(interval) => {}
            },
        }
    }
    tracing::info!(job = %job.name, "order outbox poller stopped");
    Ok(())
}

/// On PostgreSQL, starts a thread that LISTENs on the outbox channel and wakes the returned
/// [`Notify`] on every insert, until `stop` fires; `None` on SQLite. The thread keeps its own
/// connection (diesel has no async notifications: it checks for them every few milliseconds,
/// which is a non-blocking read) and reconnects with backoff when the connection is lost.
pub fn listen_for_new_orders(db: &Db, stop: CancellationToken) -> Option<Arc<Notify>> {
    if db.backend() != Backend::Postgres {
        return None;
    }
    let url = match db.url() {
        crate::config::DatabaseUrl::Postgres(url) => url.clone(),
        crate::config::DatabaseUrl::Sqlite(_) => return None,
    };
    let wake = Arc::new(Notify::new());
    let notify = Arc::clone(&wake);
    let spawned = std::thread::Builder::new()
        .name("outbox-listen".into())
        .spawn(move || listen_loop(url.expose(), &notify, &stop));
    match spawned {
        Ok(_) => Some(wake),
        Err(e) => {
            tracing::warn!(error = %e, "could not start the LISTEN thread; the poller polls instead");
            None
        }
    }
}

fn listen_loop(url: &str, wake: &Notify, stop: &CancellationToken) {
    use diesel::{Connection, RunQueryDsl};
    let mut backoff = Duration::from_millis(500);
    while !stop.is_cancelled() {
        // Declared before the connection, so dropped after it: closing it is a libpq call too.
        let _in_use = crate::db::in_use::InUse::enter();
        let mut conn = match diesel::pg::PgConnection::establish(url) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox LISTEN connection failed");
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(LISTEN_RECONNECT_CAP);
                continue;
            }
        };
        if let Err(e) = diesel::sql_query(format!("LISTEN {NOTIFY_CHANNEL}")).execute(&mut conn) {
            tracing::warn!(error = %e, "outbox LISTEN failed");
            sleep_unless_stopped(backoff, stop);
            backoff = (backoff * 2).min(LISTEN_RECONNECT_CAP);
            continue;
        }
        backoff = Duration::from_millis(500);
        // Rows inserted while not listening are found by the next poll: wake it once now.
        wake.notify_one();
        let mut poll = LISTEN_POLL_MIN;
        'listening: while !stop.is_cancelled() {
            let mut woke = false;
            for notification in conn.notifications_iter() {
                match notification {
                    Ok(_) => woke = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox LISTEN connection lost; reconnecting");
                        break 'listening;
                    }
                }
            }
            poll = next_listen_poll(poll, woke);
            if woke {
                wake.notify_one();
            }
            std::thread::sleep(poll);
        }
    }
}

/// The LISTEN thread's next wait: the shortest after a notification, else twice the last one up
/// to [`LISTEN_POLL_MAX`].
fn next_listen_poll(last: Duration, woke: bool) -> Duration {
    if woke {
        LISTEN_POLL_MIN
    } else {
        (last * 2).min(LISTEN_POLL_MAX)
    }
}

fn sleep_unless_stopped(wait: Duration, stop: &CancellationToken) {
    let until = std::time::Instant::now() + wait;
    while !stop.is_cancelled() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_wait_doubles_while_idle_up_to_100_ms_and_shortens_on_a_notification() {
        let mut poll = LISTEN_POLL_MIN;
        let mut waits = Vec::new();
        for _ in 0..6 {
            poll = next_listen_poll(poll, false);
            waits.push(poll.as_millis());
        }
        assert_eq!(waits, [20, 40, 80, 100, 100, 100]);
        assert_eq!(next_listen_poll(poll, true), Duration::from_millis(10));
    }

    #[test]
    fn retry_delays_double_up_to_five_minutes_with_jitter() {
        for _ in 0..200 {
            assert!(retry_delay(1) <= Duration::from_secs(1));
            assert!(retry_delay(3) <= Duration::from_secs(4));
            assert!(retry_delay(40) <= Duration::from_secs(300));
        }
        // Full jitter: the waits spread over the whole range.
        let waits: Vec<Duration> = (0..200).map(|_| retry_delay(9)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_secs(64)));
        assert!(waits.iter().any(|w| *w > Duration::from_secs(192)));
    }
}

//! The daemon's daily prune, and the recording every prune shares. Each daemon asks every
//! [`CHECK_EVERY`] whether a prune is due: it is when no prune (daily or by hand) started within
//! [`PRUNE_EVERY`]. The daemon that finds it due claims the next daily number in
//! `haier_retention_prunes`; the unique number lets only one of several daemons (sharing one
//! database) prune, and the row it writes tells the others the day's prune is done.

use super::store::{self, PruneOutcome};
use super::{count, prune, Pace, Policy, PruneCounts, PruneEnd};
use crate::config::RetentionConfig;
use crate::db::{Db, DbConnection};
use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryResult;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The least time between the starts of two prunes the daemons make.
pub const PRUNE_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How often a daemon asks whether the day's prune is due (the first time one interval after
/// it starts, so that a start is never slowed by a prune).
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// Whether a prune is due at `now` after the newest one started at `last_started`.
pub fn is_due(last_started: Option<NaiveDateTime>, now: NaiveDateTime) -> bool {
    match last_started {
        None => true,
        Some(last) => now.signed_duration_since(last) >= PRUNE_EVERY,
    }
}

/// Claims the day's prune for `instance` when one is due at `now`: returns the id of the new
/// `haier_retention_prunes` row, or `None` when no prune is due or another daemon claimed it
/// first. Locking: one plain read and one insert, decided by the unique daily number.
pub fn claim_daily_prune(
    conn: &mut DbConnection,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<i64>> {
    let state = store::daily_state(conn)?;
    if !is_due(state.last_started, now) {
        return Ok(None);
    }
    store::insert_daily_claim(conn, state.last_seq.unwrap_or(0) + 1, instance, now)
}

/// What a daily check did.
#[derive(Debug)]
pub enum DailyOutcome {
    /// No prune was due, or another daemon took it.
    NotDue,
    /// This daemon pruned.
    Pruned(PruneCounts),
}

/// One daily check at `now`: claims the prune when it is due and runs it. Stopped between two
/// batches when `stop` fires.
pub async fn try_daily_prune(
    db: &Db,
    retention: RetentionConfig,
    instance: &str,
    now: DateTime<Utc>,
    stop: CancellationToken,
) -> anyhow::Result<DailyOutcome> {
    let at = now.naive_utc();
    let owner = instance.to_owned();
    let claimed = db
        .run(move |conn| Ok(claim_daily_prune(conn, &owner, at)?))
        .await
        .context("Failed to decide on the daily prune")?;
    let Some(id) = claimed else {
        return Ok(DailyOutcome::NotDue);
    };
    info!("Daily prune: {instance} prunes what [retention] no longer keeps");
    let counts = prune_recorded(db, retention, id, at, stop, Arc::new(|_| {})).await?;
    Ok(DailyOutcome::Pruned(counts))
}

/// Runs the prune of `[retention]` at `now` for the recorded prune `id`, closes its row with the
/// counts, and logs them. `progress` is told the rows of each batch. Returns the counts, or the
/// error after closing the row as `failed`.
pub async fn prune_recorded(
    db: &Db,
    retention: RetentionConfig,
    id: i64,
    now: NaiveDateTime,
    stop: CancellationToken,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> anyhow::Result<PruneCounts> {
    let policy = Policy::new(&retention, now);
    let started = std::time::Instant::now();
    let pruned = db
        .run(move |conn| {
            let pace = Pace::for_connection(conn);
            let pruned = prune(conn, &policy, pace, &|| stop.is_cancelled(), &*progress);
            let (outcome, message) = match &pruned.end {
                PruneEnd::Done => (PruneOutcome::Done, None),
                PruneEnd::Stopped => (
                    PruneOutcome::Stopped,
                    Some("stopped by shutdown; the rest goes at the next prune".to_owned()),
                ),
                PruneEnd::Failed(e) => (PruneOutcome::Failed, Some(format!("{e}"))),
            };
            let counts_json = serde_json::to_string(&pruned.counts)?;
            store::finish(
                conn,
                id,
                outcome,
                pruned.counts.total(),
                &counts_json,
                message.as_deref(),
                crate::db::now_utc(),
            )
            .context("Failed to record the prune's counts")?;
            Ok(pruned)
        })
        .await?;
    let took = started.elapsed().as_millis();
    match pruned.end {
        PruneEnd::Done => {
            info!(
                "Pruned {} row(s) in {took} ms: {}",
                pruned.counts.total(),
                pruned.counts
            );
            Ok(pruned.counts)
        }
        PruneEnd::Stopped => {
            info!(
                "Prune stopped by shutdown after {} row(s) in {took} ms: {}",
                pruned.counts.total(),
                pruned.counts
            );
            Ok(pruned.counts)
        }
        PruneEnd::Failed(e) => {
            Err(anyhow::Error::new(e)
                .context(format!("Failed to prune (deleted until then: {})", pruned.counts)))
        }
    }
}

/// Counts what a prune of `[retention]` at `now` would delete (`prune --dry-run`).
pub async fn count_now(
    db: &Db,
    retention: RetentionConfig,
    now: NaiveDateTime,
) -> anyhow::Result<PruneCounts> {
    let policy = Policy::new(&retention, now);
    db.run(move |conn| Ok(count(conn, &policy)?))
        .await
        .context("Failed to count what a prune would delete")
}

/// The daemon's service: asks every [`CHECK_EVERY`] whether the day's prune is due, and prunes
/// when it is, until `cancel` fires. A failed check or prune is logged and tried again at the
/// next check; it never stops the daemon.
pub async fn run_until_stopped(
    db: Db,
    retention: RetentionConfig,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let instance = crate::db::instance_name();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if let Err(e) = try_daily_prune(&db, retention, &instance, Utc::now(), cancel.clone()).await {
            warn!("{e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prune_is_due_a_day_after_the_last_one_started() {
        let t0 = chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(3, 0, 0)
            .unwrap();
        assert!(is_due(None, t0), "never pruned");
        assert!(!is_due(Some(t0), t0));
        assert!(!is_due(Some(t0), t0 + chrono::Duration::hours(23)));
        assert!(is_due(Some(t0), t0 + chrono::Duration::hours(24)));
        assert!(
            !is_due(Some(t0 + chrono::Duration::hours(1)), t0),
            "a clock behind"
        );
    }
}

//! The Haier quota shared by every process that calls Haier on one database — daemons and
//! one-shot commands (`run-job`, `outbox cancel`, …) alike. Owns `haier_quota` (per system, the
//! "theoretical arrival time" of its next permit, on the database's clock) and
//! `haier_quota_leases` (how many permits each participant leased lately, for the quota share
//! `status` shows). It plugs into the Haier client through [`crate::haier::SharedQuota`]; it
//! does not send requests, and the 429 pace stays the client's own.
//!
//! How a request gets its turn: a process leases `k` consecutive slots of a system with one
//! short `UPDATE … RETURNING` (`k` is the number of its callers waiting, at most `burst` or a
//! tenth of a second of quota), and
//! each caller sleeps locally until its slot. Slots are never used before they are due, so all
//! processes together stay within `rate_limit`; a busy process alone gets the whole quota, since
//! nothing is split ahead. No lease starts more than a horizon (four leases' worth) ahead of now,
//! so a process that dies wastes at most the slots it held within it. When the
//! database cannot be reached, each process paces itself at `per_second / n`, `n` being the
//! participants it last saw, and says so in a warning.

pub mod slots;
mod store;

use crate::config::Config;
use crate::db::{Db, DbConnection};
use crate::haier::{HaierClient, HaierError, SharedQuota, System};
use diesel::QueryResult;
use slots::Rate;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// After a failed lease the database is not asked again for this long; requests are paced
/// The longest a lease may take before this process paces itself locally instead: a database
/// that is locked (SQLite) or away answers within its own wait, which may be many seconds, and
/// Haier calls must not queue behind it meanwhile.
const LEASE_TIMEOUT: Duration = Duration::from_secs(1);
/// locally meanwhile.
const RETRY_DATABASE_AFTER: Duration = Duration::from_secs(1);
/// A participant writes the permits it leased to `haier_quota_leases` at most this often.
const RECORD_EVERY: Duration = Duration::from_secs(1);
/// The stretch [`recent_shares`] sums, and in which a participant counts as present.
pub const SHARE_WINDOW: Duration = Duration::from_secs(10);
/// The least wait before asking again for slots when all up to the horizon were taken.
const MIN_RETRY: Duration = Duration::from_millis(1);
/// The least lateness forgiven a slot: timers wake up to a millisecond late.
const MIN_GRACE: Duration = Duration::from_millis(2);
/// The warning that the database cannot be reached is logged at most this often per system.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// One participant's share of one system's permits over the last [`SHARE_WINDOW`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuotaShare {
    /// `host:pid`, as in `haier_sync_instances.instance`.
    pub participant: String,
    pub system: String,
    pub permits: i64,
    /// `permits` over every participant's permits of that system: 0 to 1.
    pub share: f64,
}

/// Each participant's share of each system's permits over the last [`SHARE_WINDOW`] (permits
/// leased in the last second may not be counted yet). Sorted by system, then participant.
pub fn recent_shares(conn: &mut DbConnection) -> QueryResult<Vec<QuotaShare>> {
    let now = store::now_us(conn)?;
    let rows = store::permits_since(conn, now - SHARE_WINDOW.as_micros() as i64)?;
    let total = |system: &str| -> i64 {
        rows.iter()
            .filter(|(_, s, _)| s == system)
            .map(|(_, _, p)| *p)
            .sum()
    };
    Ok(rows
        .iter()
        .map(|(participant, system, permits)| QuotaShare {
            participant: participant.clone(),
            system: system.clone(),
            permits: *permits,
            share: match total(system) {
                0 => 0.0,
                all => *permits as f64 / all as f64,
            },
        })
        .collect())
}

/// The Haier client of this process, drawing from the quota shared on `db`.
pub fn shared_client(config: &Config, db: &Db) -> Result<HaierClient, HaierError> {
    HaierClient::with_shared_quota(
        &config.haier,
        &config.ylh,
        Arc::new(DbQuota::new(db.clone(), config)),
    )
}

/// This process's side of the shared quota: leases slots from the database and hands them to
/// its callers.
pub struct DbQuota {
    db: Db,
    participant: Arc<str>,
    openplat: Option<SystemBudget>,
    ylh: Option<SystemBudget>,
}

impl std::fmt::Debug for DbQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbQuota")
            .field("participant", &self.participant)
            .finish_non_exhaustive()
    }
}

impl DbQuota {
    /// The quota of both systems at their `rate_limit`, for this process (`host:pid`).
    pub fn new(db: Db, config: &Config) -> DbQuota {
        DbQuota::named(
            db,
            config.haier.rate_limit,
            config.ylh.rate_limit,
            &crate::db::instance_name(),
        )
    }

    /// The quota for a participant of the given name (tests run several in one process).
    pub fn named(
        db: Db,
        openplat: crate::config::RateLimit,
        ylh: crate::config::RateLimit,
        participant: &str,
    ) -> DbQuota {
        DbQuota {
            db,
            participant: participant.into(),
            openplat: Rate::new(openplat).map(|rate| SystemBudget::new(System::Openplat, rate)),
            ylh: Rate::new(ylh).map(|rate| SystemBudget::new(System::Ylh, rate)),
        }
    }

    /// Writes the permits leased and not yet recorded to `haier_quota_leases` now, rather than
    /// with the next lease (at a clean stop, and in tests).
    pub async fn record_leased(&self) {
        for budget in [&self.openplat, &self.ylh].into_iter().flatten() {
            let permits = {
                let mut local = budget.local();
                local.recorded_at = Some(Instant::now());
                std::mem::take(&mut local.unrecorded)
            };
            if permits == 0 {
                continue;
            }
            let system = budget.system;
            let participant = Arc::clone(&self.participant);
            let written = self
                .db
                .run(move |conn| Ok(store::record_leases(conn, &participant, system, permits)?))
                .await;
            if let Err(error) = written {
                tracing::debug!(%system, "Failed to record the permits leased of the shared Haier quota: {error:#}");
                budget.local().unrecorded += permits;
            }
        }
    }

    fn budget(&self, system: System) -> Option<&SystemBudget> {
        match system {
            System::Openplat => self.openplat.as_ref(),
            System::Ylh => self.ylh.as_ref(),
        }
    }

    /// Leases `count` slots of `budget`'s system, as local instants; [`Got::Down`] when the
    /// database failed (or failed lately).
    async fn lease(&self, budget: &SystemBudget, count: u32) -> Got {
        let asked = Instant::now();
        let record = {
            let mut local = budget.local();
            if local.down_until.is_some_and(|until| until > asked) {
                return Got::Down;
            }
            let due = local
                .recorded_at
                .is_none_or(|at| asked.saturating_duration_since(at) >= RECORD_EVERY);
            if due {
                local.recorded_at = Some(asked);
                Some(std::mem::take(&mut local.unrecorded) + i64::from(count))
            } else {
                local.unrecorded += i64::from(count);
                None
            }
        };
        let (system, rate) = (budget.system, budget.rate);
        let participant = Arc::clone(&self.participant);
        let leasing = self.db.run(move |conn| {
            let leased = store::lease_permits(conn, system, count, rate)?;
            let mut participants = None;
            if let Some(permits) = record {
                let leased_now = match leased {
                    store::Leasing::Leased(_) => i64::from(count),
                    store::Leasing::Full { .. } => 0,
                };
                store::record_leases(
                    conn,
                    &participant,
                    system,
                    permits - i64::from(count) + leased_now,
                )?;
                let since = store::now_us(conn)? - SHARE_WINDOW.as_micros() as i64;
                let present = store::permits_since(conn, since)?
                    .iter()
                    .filter(|(_, s, _)| *s == system.to_string())
                    .count();
                participants = Some(present as u32);
            }
            Ok((leased, participants))
        });
        let result = match tokio::time::timeout(LEASE_TIMEOUT, leasing).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!(
                "the database did not answer within {} ms",
                LEASE_TIMEOUT.as_millis()
            )),
        };
        let received = Instant::now();
        let mut local = budget.local();
        match result {
            Ok((leasing, participants)) => {
                local.down_until = None;
                if let Some(n) = participants {
                    local.participants = n.max(1);
                }
                match leasing {
                    store::Leasing::Leased(leased) => Got::Slots(
                        (0..count)
                            .map(|i| {
                                let ahead_us = leased.lease.slot_us(i, rate) - leased.now_us;
                                received + Duration::from_micros(ahead_us.max(0) as u64)
                            })
                            .collect(),
                    ),
                    store::Leasing::Full { retry_in_us } => {
                        if record.is_none() {
                            local.unrecorded -= i64::from(count);
                        }
                        Got::Full(Duration::from_micros(retry_in_us.max(0) as u64))
                    }
                }
            }
            Err(error) => {
                // Nothing was leased; what was due to be recorded still is.
                match record {
                    Some(permits) => local.unrecorded += permits - i64::from(count),
                    None => local.unrecorded -= i64::from(count),
                }
                local.down_until = Some(received + RETRY_DATABASE_AFTER);
                if local
                    .warned_at
                    .is_none_or(|at| received.saturating_duration_since(at) >= WARN_EVERY)
                {
                    local.warned_at = Some(received);
                    let participants = local.participants;
                    tracing::warn!(
                        %system,
                        participants,
                        "Failed to lease permits of the shared Haier quota ({error:#}); pacing this process at rate_limit / {participants} until the database answers"
                    );
                }
                Got::Down
            }
        }
    }
}

#[async_trait::async_trait]
impl SharedQuota for DbQuota {
    async fn take(&self, system: System) {
        let Some(budget) = self.budget(system) else {
            return;
        };
        // A slot left over (its caller went away) is dropped once it is this late: used later,
        // it would crowd the slots after it (other processes' among them).
        let grace = Duration::from_micros(budget.rate.interval_us as u64).max(MIN_GRACE);
        let at = {
            let _waiting = Waiting::enter(&budget.waiting);
            let mut queue = budget.queue.lock().await;
            loop {
                let now = Instant::now();
                while queue.front().is_some_and(|at| *at + grace < now) {
                    queue.pop_front();
                }
                if let Some(at) = queue.pop_front() {
                    break at;
                }
                let count = budget
                    .waiting
                    .load(Ordering::Relaxed)
                    .clamp(1, budget.rate.max_lease);
                match self.lease(budget, count).await {
                    Got::Slots(slots) => queue.extend(slots),
                    Got::Full(retry_in) => {
                        tokio::time::sleep(retry_in.max(MIN_RETRY)).await;
                    }
                    Got::Down => break budget.fallback_slot(),
                }
            }
        };
        tokio::time::sleep_until(at).await;
    }

    fn throttled(&self, system: System, wait: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let db = self.db.clone();
        let wait_us = wait.as_micros().min(i64::MAX as u128) as i64;
        runtime.spawn(async move {
            if let Err(error) = db
                .run(move |conn| Ok(store::hold_back(conn, system, wait_us)?))
                .await
            {
                tracing::debug!(%system, "Failed to hold back the shared Haier quota after a 429: {error:#}");
            }
        });
    }
}

/// What asking the database for slots got.
enum Got {
    /// Slots, as local instants, earliest first.
    Slots(Vec<Instant>),
    /// None now: every slot up to the horizon is taken; ask again after this.
    Full(Duration),
    /// The database failed (or failed lately): pace locally.
    Down,
}

/// Counts a caller waiting for a slot while it lives.
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One system's slots on this side: those leased and not yet taken, the callers waiting, and
/// what the local fallback needs.
struct SystemBudget {
    system: System,
    rate: Rate,
    /// Leased slots not yet handed out, earliest first. Held while a lease is in flight, so a
    /// process has one lease per system at a time.
    queue: tokio::sync::Mutex<VecDeque<Instant>>,
    waiting: AtomicU32,
    local: Mutex<LocalState>,
}

struct LocalState {
    /// Permits leased since the last row written to `haier_quota_leases`.
    unrecorded: i64,
    recorded_at: Option<Instant>,
    /// Participants seen in the last [`SHARE_WINDOW`] (at least 1): the divisor of the pace
    /// while the database cannot be reached.
    participants: u32,
    down_until: Option<Instant>,
    warned_at: Option<Instant>,
    /// The next slot of the local fallback pace.
    fallback_next: Instant,
}

impl SystemBudget {
    fn new(system: System, rate: Rate) -> Self {
        SystemBudget {
            system,
            rate,
            queue: tokio::sync::Mutex::new(VecDeque::new()),
            waiting: AtomicU32::new(0),
            local: Mutex::new(LocalState {
                unrecorded: 0,
                recorded_at: None,
                participants: 1,
                down_until: None,
                warned_at: None,
                fallback_next: Instant::now(),
            }),
        }
    }

    fn local(&self) -> MutexGuard<'_, LocalState> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot of the local fallback pace: one per `interval × participants`.
    fn fallback_slot(&self) -> Instant {
        let mut local = self.local();
        let spacing = self.rate.interval_us as u64 * u64::from(local.participants.max(1));
        let at = local.fallback_next.max(Instant::now());
        local.fallback_next = at + Duration::from_micros(spacing);
        at
    }
}

//! Every statement on `haier_retention_prunes`: one row per prune (by hand or the daemons' daily
//! one) with what it deleted, which is also the record of the last prune that the daemons read
//! to decide whether the day's prune is due (`daily.rs`).

use crate::db::schema::haier_retention_prunes::{self, dsl};
use crate::db::text_enum::text_enum;
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

text_enum! {
    /// Who started a prune (`haier_retention_prunes.trigger`).
    pub enum PruneTrigger {
        /// A daemon's daily prune.
        Schedule = "schedule",
        /// `haier-sync prune`.
        Manual = "manual",
    }
}

text_enum! {
    /// How a prune ended (`haier_retention_prunes.outcome`).
    pub enum PruneOutcome {
        /// It still goes, or its process died.
        Running = "running",
        /// Everything the policy named is gone.
        Done = "done",
        /// Stopped between two batches (shutdown); the rest goes at the next prune.
        Stopped = "stopped",
        /// A statement failed (`message`); the batches before it stay deleted.
        Failed = "failed",
    }
}

/// One row of `haier_retention_prunes`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_retention_prunes)]
pub struct PruneRow {
    pub id: i64,
    pub trigger: PruneTrigger,
    /// 1, 2, 3 … for the daemons' daily prunes; `None` for a prune by hand.
    pub daily_seq: Option<i64>,
    pub instance: String,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub outcome: PruneOutcome,
    /// Rows deleted, all kinds together.
    pub deleted: i64,
    /// Rows deleted per kind, as JSON ([`super::PruneCounts`]).
    pub counts: Option<String>,
    pub message: Option<String>,
}

/// What the daemons decide the day's prune on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyState {
    /// When the newest prune (daily or by hand) started.
    pub last_started: Option<NaiveDateTime>,
    /// The newest daily prune's number.
    pub last_seq: Option<i64>,
}

/// The newest prune's start and the newest daily number. Locking: one plain read, so both come
/// from the same snapshot: read apart, a daemon could see the start before another's claim and
/// the number after it, and claim the next number of a day already taken.
pub fn daily_state(conn: &mut DbConnection) -> QueryResult<DailyState> {
    let (last_started, last_seq) = haier_retention_prunes::table
        .select((
            diesel::dsl::max(dsl::started_at),
            diesel::dsl::max(dsl::daily_seq),
        ))
        .first::<(Option<NaiveDateTime>, Option<i64>)>(conn)?;
    Ok(DailyState {
        last_started,
        last_seq,
    })
}

/// Claims daily prune number `seq` for `instance`, started at `now`; returns the row's id, or
/// `None` when another daemon claimed that number first. Locking: one insert; the unique index
/// on `daily_seq` decides between daemons that read the same [`DailyState`].
pub fn insert_daily_claim(
    conn: &mut DbConnection,
    seq: i64,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<i64>> {
    match insert(conn, PruneTrigger::Schedule, Some(seq), instance, now) {
        Ok(id) => Ok(Some(id)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records the start of a prune by hand; returns the row's id. Locking: one insert.
pub fn insert_manual(conn: &mut DbConnection, instance: &str, now: NaiveDateTime) -> QueryResult<i64> {
    insert(conn, PruneTrigger::Manual, None, instance, now)
}

fn insert(
    conn: &mut DbConnection,
    trigger: PruneTrigger,
    seq: Option<i64>,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(haier_retention_prunes::table)
        .values((
            dsl::trigger.eq(trigger),
            dsl::daily_seq.eq(seq),
            dsl::instance.eq(instance),
            dsl::started_at.eq(now),
            dsl::outcome.eq(PruneOutcome::Running),
        ))
        .returning(dsl::id)
        .get_result(conn)
}

/// Closes prune `id` with its outcome, its counts (JSON) and a message. Locking: a single-row
/// `UPDATE`.
pub fn finish(
    conn: &mut DbConnection,
    id: i64,
    outcome: PruneOutcome,
    deleted: i64,
    counts: &str,
    message: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(haier_retention_prunes::table.filter(dsl::id.eq(id)))
        .set((
            dsl::outcome.eq(outcome),
            dsl::deleted.eq(deleted),
            dsl::counts.eq(counts),
            dsl::message.eq(message),
            dsl::finished_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The newest `limit` prunes, newest first. Locking: a plain read.
pub fn latest(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<PruneRow>> {
    haier_retention_prunes::table
        .order((dsl::started_at.desc(), dsl::id.desc()))
        .limit(limit)
        .select(PruneRow::as_select())
        .load(conn)
}

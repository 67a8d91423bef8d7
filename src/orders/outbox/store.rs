//! Every statement on `haier_order_outbox`, each a small function whose doc comment states its
//! locking contract. When a status changes is decided by the callers in `crate::orders` (the
//! poller, the callback's notices, enqueue, retry and cancel) and by the logistics job through
//! [`mark_orders_delivered`]; this file only runs SQL.

use super::change::{
    leased, update, update_one, with_haier_order_no, with_id, with_online_no, with_so_id, with_so_id_in,
    Change, Rows,
};
use crate::db::schema::haier_order_outbox::{self, dsl};
use crate::db::DbConnection;
use crate::orders::state::{CancelState, OutboxStatus};
use crate::shop::EventSource;
use chrono::NaiveDateTime;
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use serde::Serialize;

/// One row of `haier_order_outbox`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_order_outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub so_id: String,
    pub online_no: String,
    /// The order as JSON in YLH's push format, as the shop wrote it.
    pub payload: String,
    pub status: OutboxStatus,
    /// Push attempts that have ended (a lease that ran out counts as one).
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub haier_order_no: Option<String>,
    pub pushed_at: Option<NaiveDateTime>,
    pub confirmed_at: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub cancel_state: Option<CancelState>,
    pub cancel_detail: Option<String>,
    pub out_of_stock_at: Option<NaiveDateTime>,
    /// When a push attempt ended with Haier's answer never seen (timeout, broken connection,
    /// 5xx, unreadable reply, a lease that ran out mid-push); cleared once the order is pushed.
    pub push_unseen_at: Option<NaiveDateTime>,
    /// When a cancel was last asked of Haier.
    pub cancel_requested_at: Option<NaiveDateTime>,
    /// The last out-of-stock notice: its `State`, `ExtOrderNo` and `FailMsg`.
    pub out_of_stock_detail: Option<String>,
}

/// Inserts an order with the minimal columns (everything else defaults: `pending`, due now), as
/// the shop does. Returns the new id, or `None` when the `so_id` is in the outbox already.
/// Locking: a plain insert; the unique index on `so_id` decides between racing inserts.
pub fn insert_order(
    conn: &mut DbConnection,
    so_id: &str,
    online_no: &str,
    payload: &str,
) -> QueryResult<Option<i64>> {
    match diesel::insert_into(haier_order_outbox::table)
        .values((
            dsl::so_id.eq(so_id),
            dsl::online_no.eq(online_no),
            dsl::payload.eq(payload),
        ))
        .returning(dsl::id)
        .get_result::<i64>(conn)
    {
        Ok(id) => Ok(Some(id)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(e) => Err(e),
    }
}

diesel::define_sql_function! {
    /// `COALESCE(x, y)`: `x`, or `y` when `x` is NULL.
    fn coalesce(x: Nullable<Text>, y: Text) -> Text;
}

/// Claims up to `limit` due rows for `lease_token` until `lease_until` and returns them: rows
/// `pending` whose `next_attempt_at` has come, and rows `sending` whose lease ran out (a poller
/// crashed or hung mid-push; that attempt is counted, noted in `last_error`, and its outcome
/// taken as never seen: `push_unseen_at`).
///
/// Locking: one `UPDATE … RETURNING` statement. On PostgreSQL the candidate rows are selected
/// `FOR UPDATE SKIP LOCKED`, so concurrent claimers (several daemons) never wait on each other
/// and never get the same row; on SQLite the statement holds the database's single write lock.
/// No transaction stays open after it returns.
pub fn claim_due_orders(
    conn: &mut DbConnection,
    lease_token: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    let due = diesel::alias!(haier_order_outbox as due);
    let due = due
        .select(due.field(dsl::id))
        .filter(
            (due.field(dsl::status)
                .eq(OutboxStatus::Pending)
                .and(due.field(dsl::next_attempt_at).le(now)))
            .or(due
                .field(dsl::status)
                .eq(OutboxStatus::Sending)
                .and(due.field(dsl::locked_until).le(now).assume_not_null())),
        )
        .order((due.field(dsl::next_attempt_at), due.field(dsl::id)))
        .limit(limit);
    // Every expression reads the row as it was before the claim: `sending` here means the
    // lease ran out.
    let ran_out = || dsl::status.eq(OutboxStatus::Sending);
    let note = "the lease of "
        .into_sql::<Text>()
        .concat(coalesce(dsl::locked_by, "?"))
        .concat(" ran out while sending; trying again");
    let claim = (
        dsl::status.eq(OutboxStatus::Sending),
        dsl::attempts
            .eq(case_when::<_, _, BigInt>(ran_out(), dsl::attempts + 1_i64).otherwise(dsl::attempts)),
        dsl::last_error
            .eq(case_when::<_, _, Nullable<Text>>(ran_out(), note.nullable()).otherwise(dsl::last_error)),
        dsl::push_unseen_at.eq(case_when::<_, _, Nullable<Timestamp>>(
            ran_out(),
            now.into_sql::<Timestamp>().nullable(),
        )
        .otherwise(dsl::push_unseen_at)),
        dsl::locked_by.eq(lease_token),
        dsl::locked_until.eq(lease_until),
        dsl::updated_at.eq(now),
    );
    match conn {
        DbConnection::Pg(c) => {
            diesel::update(haier_order_outbox::table.filter(dsl::id.eq_any(due.for_update().skip_locked())))
                .set(claim)
                .returning(OutboxRow::as_returning())
                .get_results(c)
        }
        DbConnection::Sqlite(c) => diesel::update(haier_order_outbox::table.filter(dsl::id.eq_any(due)))
            .set(claim)
            .returning(OutboxRow::as_returning())
            .get_results(c),
    }
}

/// Whether [`claim_due_orders`] would claim a row at `now`: a `pending` row whose
/// `next_attempt_at` has come, or a `sending` row whose lease ran out. An idle poll asks this
/// first, so that it takes no write lock.
///
/// Locking: a plain read, answered from the `(status, next_attempt_at)` index.
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        haier_order_outbox::table.filter(
            (dsl::status
                .eq(OutboxStatus::Pending)
                .and(dsl::next_attempt_at.le(now)))
            .or(dsl::status
                .eq(OutboxStatus::Sending)
                .and(dsl::locked_until.le(now).assume_not_null())),
        ),
    ))
    .get_result(conn)
}

/// The lease tokens rows are `sending` under, each with its number of rows.
/// Locking: a plain read.
pub fn lease_holders(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    haier_order_outbox::table
        .filter(dsl::status.eq(OutboxStatus::Sending))
        .filter(dsl::locked_by.is_not_null())
        .group_by(dsl::locked_by)
        .select((dsl::locked_by.assume_not_null(), diesel::dsl::count_star()))
        .order(dsl::locked_by)
        .load(conn)
}

/// Frees the rows left `sending` under `lease_token` by a poller that is gone, before the lease
/// runs out: back to `pending`, due now, the lost attempt counted (its outcome never seen) and
/// `reason` kept, as a claim of a lease that ran out would do. Returns how many rows were freed.
/// Locking: one `UPDATE` guarded by the status and the token, so a row that was claimed again
/// meanwhile (another token) or moved on by a callback is left alone; no transaction.
pub fn free_lease(
    conn: &mut DbConnection,
    lease_token: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let retry = PushResult::Retry {
        error: reason,
        at: now,
        unseen: true,
    };
    update(conn, leased(None, lease_token), retry.change(now))
}

/// How a push under a lease ended, as the poller writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushResult<'a> {
    /// Haier took the order, or already had it, or may have it (`note` says so): `pushed`, the
    /// attempt counted, `push_unseen_at` cleared.
    Pushed { note: Option<&'a str> },
    /// The push failed in a way worth repeating: `pending` again at `at`, the attempt counted
    /// and the error kept; `unseen` when Haier's answer was never seen (`push_unseen_at` set).
    Retry {
        error: &'a str,
        at: NaiveDateTime,
        unseen: bool,
    },
    /// The order was not sent, for a reason that is not its fault (no product catalog yet,
    /// Haier cannot be called): `pending` again at `at`, no attempt counted.
    Deferred { reason: &'a str, at: NaiveDateTime },
    /// Given up: `dead` with the error. `attempted` says whether a push was made (a failed push
    /// counts as an attempt; an order refused by validation was never sent).
    Dead { error: &'a str, attempted: bool },
}

/// Writes how a push ended and releases the lease; a push recorded as pushed also fills the
/// order's lines (`haier_order_lines`) from its payload, and the shop's event is recorded
/// (`crate::shop`). Returns false when the lease was lost
/// meanwhile (the row was claimed again or a callback moved it on), in which case nothing is
/// written. Locking: one transaction: a single-row `UPDATE` guarded by the lease token (which
/// holds the row), then the lines' inserts and the shop's event.
pub fn record_push_result(
    conn: &mut DbConnection,
    id: i64,
    lease_token: &str,
    result: PushResult<'_>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        let written = update_one(conn, leased(Some(id), lease_token), result.change(now))?;
        if written {
            let (so_id, payload): (String, String) = haier_order_outbox::table
                .filter(dsl::id.eq(id))
                .select((dsl::so_id, dsl::payload))
                .first(conn)?;
            if matches!(result, PushResult::Pushed { .. }) {
                crate::orders::lines::record_ordered_lines(conn, &so_id, &payload, now)?;
            }
            crate::shop::record(conn, &so_id, EventSource::Push, now)?;
        }
        Ok(written)
    })
}

impl<'a> PushResult<'a> {
    /// What the push result writes; the lease is released.
    fn change(self, now: NaiveDateTime) -> Change<'a> {
        match self {
            PushResult::Pushed { note } => Change {
                count_attempt: true,
                pushed_at: Some(now),
                last_error: Some(note),
                push_unseen_at: Some(None),
                ..Change::released(OutboxStatus::Pushed, now)
            },
            PushResult::Retry {
                error: text,
                at,
                unseen,
            } => Change {
                count_attempt: true,
                next_attempt_at: Some(at),
                last_error: Some(Some(text)),
                push_unseen_at: unseen.then_some(Some(now)),
                ..Change::released(OutboxStatus::Pending, now)
            },
            PushResult::Deferred { reason: text, at } => Change {
                next_attempt_at: Some(at),
                last_error: Some(Some(text)),
                ..Change::released(OutboxStatus::Pending, now)
            },
            PushResult::Dead { error, attempted } => Change {
                count_attempt: attempted,
                last_error: Some(Some(error)),
                ..Change::released(OutboxStatus::Dead, now)
            },
        }
    }
}

/// Moves a `dead` row back to `pending`, due now, with its attempts reset (`outbox retry`).
/// Returns false when the row is not `dead`. Locking: a single-row `UPDATE` guarded by the status.
pub fn retry_dead_order(conn: &mut DbConnection, so_id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let change = Change {
        attempts: Some(0),
        next_attempt_at: Some(now),
        ..Change::released(OutboxStatus::Pending, now)
    };
    update_one(conn, with_so_id_in(so_id, &[OutboxStatus::Dead]), change)
}

/// The `dead` orders that went dead at or after `since` (by `updated_at`), oldest first, each with
/// its `last_error`: the candidates of `outbox retry --status dead`. Locking: a plain read (the
/// status index).
pub fn dead_orders_since(
    conn: &mut DbConnection,
    since: Option<NaiveDateTime>,
) -> QueryResult<Vec<(String, Option<String>)>> {
    let mut query = haier_order_outbox::table
        .filter(dsl::status.eq(OutboxStatus::Dead))
        .select((dsl::so_id, dsl::last_error))
        .order(dsl::id.asc())
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(dsl::updated_at.ge(since));
    }
    query.load(conn)
}

/// Cancels a row here, without Haier (`cancel_state = local`), if it is in one of `from`: a
/// `pending` row never pushed (the poller never sends it), or a `dead` one Haier answered it does
/// not have. Returns false when the row is in another status (a poller may have claimed it
/// meanwhile). Locking: a single-row `UPDATE` guarded by the status, so it cannot race a claim.
pub fn cancel_here(
    conn: &mut DbConnection,
    so_id: &str,
    from: &[OutboxStatus],
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let change = Change::cancelled(CancelState::Local, reason, now);
    update_one(conn, with_so_id_in(so_id, from), change)
}

/// Records that a cancel was asked of Haier (`cancel_state = requested`, `cancel_requested_at`);
/// the outcome comes in the cancel callback. Locking: a single-row `UPDATE`; no transaction.
pub fn record_cancel_request(
    conn: &mut DbConnection,
    so_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let change = Change {
        cancel_state: Some(CancelState::Requested),
        cancel_detail: Some(reason),
        cancel_requested_at: Some(now),
        ..Change::at(now)
    };
    update_one(conn, with_so_id(so_id), change)
}

/// Orders Haier has not answered within the time allowed: `pushed` at or before
/// `pushed_before` with no confirm callback yet, or a cancel asked at or before
/// `requested_before` with no cancel callback yet (`cancel_state` still `requested`).
fn unconfirmed(pushed_before: NaiveDateTime, requested_before: NaiveDateTime) -> Rows {
    Box::new(
        dsl::status
            .eq(OutboxStatus::Pushed)
            .and(dsl::pushed_at.le(pushed_before).assume_not_null())
            .or(dsl::cancel_state
                .eq(CancelState::Requested)
                .and(dsl::cancel_requested_at.le(requested_before))
                .assume_not_null()),
    )
}

/// Up to `limit` unconfirmed orders (see [`count_unconfirmed`]), oldest first. Locking: a plain
/// read.
pub fn list_unconfirmed(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    haier_order_outbox::table
        .filter(unconfirmed(before, before))
        .select(OutboxRow::as_select())
        .order(dsl::id.asc())
        .limit(limit.max(1))
        .load(conn)
}

/// How many orders were pushed at or before `before` and are not confirmed yet, and how many
/// cancels asked at or before `before` Haier has not answered. Locking: two plain reads.
pub fn count_unconfirmed(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<(i64, i64)> {
    let pushes = haier_order_outbox::table
        .filter(dsl::status.eq(OutboxStatus::Pushed))
        .filter(dsl::pushed_at.le(before))
        .count()
        .get_result(conn)?;
    let cancels = haier_order_outbox::table
        .filter(dsl::cancel_state.eq(CancelState::Requested))
        .filter(dsl::cancel_requested_at.le(before))
        .count()
        .get_result(conn)?;
    Ok((pushes, cancels))
}

/// A column a callback's order is looked up by, with the value sought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKey<'a> {
    /// Our sub-order number (unique).
    SoId(&'a str),
    /// Haier's order number, known once the order was confirmed (indexed).
    HaierOrderNo(&'a str),
    /// The shop's order number, which several sub-orders may share (indexed).
    OnlineNo(&'a str),
}

/// The rows one [`OrderKey`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderMatch {
    /// Exactly one row; it is now locked.
    Found(Box<OutboxRow>),
    NotFound,
    /// Several rows have the value: which one is meant is unknown. None is read.
    Ambiguous(usize),
}

/// Finds the rows `key` names and, when exactly one does, locks it for the rest of the caller's
/// transaction and reads it. Which keys are tried, in which order, is decided in
/// `orders::matching`.
///
/// Locking: must run inside a transaction. It starts with a no-op `UPDATE` of the matching rows,
/// which takes their row locks on PostgreSQL and the write lock on SQLite before anything is read,
/// so two callbacks for one order are applied one after the other.
pub fn lock_order_by(conn: &mut DbConnection, key: OrderKey<'_>) -> QueryResult<OrderMatch> {
    let rows = || match key {
        OrderKey::SoId(value) => with_so_id(value),
        OrderKey::HaierOrderNo(value) => with_haier_order_no(value),
        OrderKey::OnlineNo(value) => with_online_no(value),
    };
    let touched = diesel::update(haier_order_outbox::table.filter(rows()))
        .set(dsl::updated_at.eq(dsl::updated_at))
        .execute(conn)?;
    match touched {
        0 => Ok(OrderMatch::NotFound),
        1 => haier_order_outbox::table
            .filter(rows())
            .select(OutboxRow::as_select())
            .first(conn)
            .map(|row| OrderMatch::Found(Box::new(row))),
        n => Ok(OrderMatch::Ambiguous(n)),
    }
}

/// A confirm or refusal that overtakes the push's own reply ends that push: count it.
fn count_attempt_in_flight(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        haier_order_outbox::table
            .filter(dsl::id.eq(id))
            .filter(dsl::status.eq(OutboxStatus::Sending)),
    )
    .set(dsl::attempts.eq(dsl::attempts + 1_i64))
    .execute(conn)
}

/// Haier took the order: `confirmed` with its order number; the lease (if a push is still in
/// flight) is released and that push counted, and `pushed_at` set if the confirm overtook the
/// push's own reply. Locking: single-row `UPDATE`s, inside the callback's transaction.
pub fn set_confirmed(
    conn: &mut DbConnection,
    id: i64,
    haier_order_no: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    count_attempt_in_flight(conn, id)?;
    diesel::update(
        haier_order_outbox::table
            .filter(dsl::id.eq(id))
            .filter(dsl::pushed_at.is_null()),
    )
    .set(dsl::pushed_at.eq(Some(now)))
    .execute(conn)?;
    let change = Change {
        haier_order_no: Some(haier_order_no),
        confirmed_at: Some(now),
        ..Change::released(OutboxStatus::Confirmed, now)
    };
    update(conn, with_id(id), change).map(|_| ())
}

/// Haier refused the order: `refused` with its reason. Locking: a single-row `UPDATE`, inside the
/// callback's transaction.
pub fn set_refused(conn: &mut DbConnection, id: i64, reason: &str, now: NaiveDateTime) -> QueryResult<()> {
    count_attempt_in_flight(conn, id)?;
    let change = Change {
        last_error: Some(Some(reason)),
        ..Change::released(OutboxStatus::Refused, now)
    };
    update(conn, with_id(id), change).map(|_| ())
}

/// Keeps Haier's order number on the row if it was not known yet.
fn keep_haier_order_no(conn: &mut DbConnection, id: i64, haier_order_no: Option<&str>) -> QueryResult<()> {
    if let Some(number) = haier_order_no {
        diesel::update(
            haier_order_outbox::table
                .filter(dsl::id.eq(id))
                .filter(dsl::haier_order_no.is_null()),
        )
        .set(dsl::haier_order_no.eq(number))
        .execute(conn)?;
    }
    Ok(())
}

/// Haier's cancel callback ended the order: `status` (`cancelled`, or `returned` for a delivered
/// one) with `cancel_state` (`full` or `returned`), its order number kept if it was not known
/// yet, the lease (if any) released. Locking: single-row `UPDATE`s, inside the callback's
/// transaction.
pub fn set_cancelled(
    conn: &mut DbConnection,
    id: i64,
    status: OutboxStatus,
    cancel_state: CancelState,
    haier_order_no: Option<&str>,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    keep_haier_order_no(conn, id, haier_order_no)?;
    let change = Change {
        status: Some(status),
        locked_by: Some(None),
        locked_until: Some(None),
        ..Change::cancelled(cancel_state, detail, now)
    };
    update(conn, with_id(id), change).map(|_| ())
}

/// Records a cancel outcome that leaves the status as it is (`partly_cancelled`,
/// `partly_returned` or `refused`).
/// Locking: a single-row `UPDATE`, inside the callback's transaction.
pub fn set_cancel_state(
    conn: &mut DbConnection,
    id: i64,
    state: CancelState,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    write_cancel_state(conn, with_id(id), state, detail, now).map(|_| ())
}

fn write_cancel_state(
    conn: &mut DbConnection,
    rows: Rows,
    state: CancelState,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let change = Change {
        cancel_state: Some(state),
        cancel_detail: Some(detail),
        ..Change::at(now)
    };
    update(conn, rows, change)
}

/// Records Haier's out-of-stock notice: `out_of_stock` with what it said (`detail`), its order
/// number kept if it was not known yet, the lease (if a push is still in flight) released and
/// that push counted. Locking: single-row `UPDATE`s, inside the callback's transaction.
pub fn set_out_of_stock(
    conn: &mut DbConnection,
    id: i64,
    haier_order_no: Option<&str>,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    count_attempt_in_flight(conn, id)?;
    keep_haier_order_no(conn, id, haier_order_no)?;
    let change = Change {
        out_of_stock_at: Some(now),
        out_of_stock_detail: Some(detail),
        ..Change::released(OutboxStatus::OutOfStock, now)
    };
    update(conn, with_id(id), change).map(|_| ())
}

/// A pushed order whose delivery the logistics job follows.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct TrackedOrder {
    /// The outbox row's id.
    pub id: i64,
    pub so_id: String,
    /// Haier's order number, the key of the logistics call.
    pub haier_order_no: String,
}

/// Orders Haier has received (pushed or confirmed, with its order number) and not delivered yet.
fn undelivered() -> Rows {
    Box::new(
        dsl::status
            .eq_any(OutboxStatus::TRACKED)
            .and(dsl::delivered_at.is_null())
            .and(dsl::haier_order_no.is_not_null()),
    )
}

/// Up to `limit` pushed or confirmed orders with a Haier order number and no delivery yet, with
/// an id above `after_id`, in id order: one page of a keyset walk. Locking: a plain read.
pub fn undelivered_orders_after(
    conn: &mut DbConnection,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<TrackedOrder>> {
    haier_order_outbox::table
        .filter(undelivered())
        .filter(dsl::id.gt(after_id))
        .order(dsl::id.asc())
        .limit(limit)
        .select((dsl::id, dsl::so_id, dsl::haier_order_no.assume_not_null()))
        .load(conn)
}

/// How many orders [`undelivered_orders_after`] walks over. Locking: a plain read.
pub fn count_undelivered_orders(conn: &mut DbConnection) -> QueryResult<i64> {
    haier_order_outbox::table
        .filter(undelivered())
        .count()
        .get_result(conn)
}

/// Taken orders (pushed or confirmed, with a Haier order number) whose parcels are still to ask
/// for: not delivered yet, or delivered with no shipment stored.
fn needing_shipments() -> Rows {
    use crate::db::schema::haier_order_shipments as shipments;
    let stored = shipments::table
        .filter(shipments::haier_order_no.nullable().eq(dsl::haier_order_no))
        .select(shipments::id);
    Box::new(
        dsl::status
            .eq_any(OutboxStatus::TRACKED)
            .and(dsl::haier_order_no.is_not_null())
            .and(
                dsl::delivered_at
                    .is_null()
                    .or(diesel::dsl::not(diesel::dsl::exists(stored))),
            ),
    )
}

/// Up to `limit` taken orders whose parcels are still to ask for (not delivered, or delivered
/// with no shipment stored), with an id above `after_id`, in id order: one page of a keyset walk.
/// Locking: a plain read.
pub fn orders_needing_shipments_after(
    conn: &mut DbConnection,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<TrackedOrder>> {
    haier_order_outbox::table
        .filter(needing_shipments())
        .filter(dsl::id.gt(after_id))
        .order(dsl::id.asc())
        .limit(limit)
        .select((dsl::id, dsl::so_id, dsl::haier_order_no.assume_not_null()))
        .load(conn)
}

/// How many orders [`orders_needing_shipments_after`] walks over. Locking: a plain read.
pub fn count_orders_needing_shipments(conn: &mut DbConnection) -> QueryResult<i64> {
    haier_order_outbox::table
        .filter(needing_shipments())
        .count()
        .get_result(conn)
}

/// Haier took a reschedule: the order's payload is replaced by `payload` (the same order with its
/// new `distributionTime` and `installTime`), so the next reschedule starts from these times.
/// Returns false when no row has `so_id`. Locking: a single-row `UPDATE`; no transaction.
pub fn record_reschedule(
    conn: &mut DbConnection,
    so_id: &str,
    payload: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(haier_order_outbox::table.filter(dsl::so_id.eq(so_id)))
        .set((dsl::payload.eq(payload), dsl::updated_at.eq(now)))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Haier delivered these orders: sets `delivered_at` on those rows of `ids` that have none, and
/// records the shop's event of each (`crate::shop`). Returns how many changed. Locking: one
/// `UPDATE`, inside the logistics page's transaction.
pub fn mark_orders_delivered(conn: &mut DbConnection, ids: &[i64], at: NaiveDateTime) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let rows = || -> Rows { Box::new(dsl::id.eq_any(ids.to_vec()).and(dsl::delivered_at.is_null())) };
    let so_ids: Vec<String> = haier_order_outbox::table
        .filter(rows())
        .select(dsl::so_id)
        .load(conn)?;
    let change = Change {
        delivered_at: Some(at),
        ..Change::at(at)
    };
    let changed = update(conn, rows(), change)?;
    for so_id in &so_ids {
        crate::shop::record(conn, so_id, EventSource::Logistics, at)?;
    }
    Ok(changed)
}

/// One row by `so_id`. Locking: a plain read.
pub fn find_by_so_id(conn: &mut DbConnection, so_id: &str) -> QueryResult<Option<OutboxRow>> {
    haier_order_outbox::table
        .filter(dsl::so_id.eq(so_id))
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}

/// The rows of these `so_ids` that exist. Locking: a plain read.
pub fn find_by_so_ids(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<Vec<OutboxRow>> {
    haier_order_outbox::table
        .filter(dsl::so_id.eq_any(so_ids))
        .select(OutboxRow::as_select())
        .load(conn)
}

/// Rows, newest first, optionally of one status. Locking: a plain read.
pub fn list_orders(
    conn: &mut DbConnection,
    status: Option<OutboxStatus>,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    let mut query = haier_order_outbox::table
        .select(OutboxRow::as_select())
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(dsl::status.eq(status));
    }
    query.order(dsl::id.desc()).limit(limit.max(1)).load(conn)
}

/// The number of rows in each status that has any. Locking: a plain read.
pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(OutboxStatus, i64)>> {
    haier_order_outbox::table
        .group_by(dsl::status)
        .select((dsl::status, diesel::dsl::count_star()))
        .order(dsl::status)
        .load(conn)
}

/// How many orders ended in a final status ([`OutboxStatus::FINAL`]) and last changed before
/// `before`: what [`delete_finished_orders`] would delete, all batches together. Locking: a plain
/// read (the `(status, updated_at)` index).
pub fn count_finished_before(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<i64> {
    haier_order_outbox::table
        .filter(dsl::status.eq_any(OutboxStatus::FINAL))
        .filter(dsl::updated_at.lt(before))
        .count()
        .get_result(conn)
}

/// Up to `limit` of the orders [`count_finished_before`] counts, with an id above `after_id`, in
/// id order (`(id, so_id)`): one page of a keyset walk, for counting their child rows without
/// deleting. Locking: a plain read.
pub fn finished_orders_after(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, String)>> {
    haier_order_outbox::table
        .filter(dsl::status.eq_any(OutboxStatus::FINAL))
        .filter(dsl::updated_at.lt(before))
        .filter(dsl::id.gt(after_id))
        .select((dsl::id, dsl::so_id))
        .order(dsl::id.asc())
        .limit(limit)
        .load(conn)
}

/// Deletes up to `limit` of the orders [`count_finished_before`] counts (in no particular order),
/// and returns their `so_id`s, for the caller to delete their child rows in the same transaction.
///
/// Locking: one `DELETE … WHERE id IN (SELECT … LIMIT n) RETURNING so_id` statement, guarded
/// again by the status and time so that an order changed meanwhile (a dead order retried) is
/// kept. On PostgreSQL the candidates are selected `FOR UPDATE SKIP LOCKED`: an order another
/// transaction holds is left for the next prune, and nobody waits. On SQLite, call it first in
/// its transaction, so the transaction takes the write lock before it reads.
pub fn delete_finished_orders(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let old = diesel::alias!(haier_order_outbox as old);
    let batch = old
        .select(old.field(dsl::id))
        .filter(old.field(dsl::status).eq_any(OutboxStatus::FINAL))
        .filter(old.field(dsl::updated_at).lt(before))
        .limit(limit);
    let still_finished = || {
        dsl::status
            .eq_any(OutboxStatus::FINAL)
            .and(dsl::updated_at.lt(before))
    };
    match conn {
        DbConnection::Pg(c) => diesel::delete(
            haier_order_outbox::table
                .filter(dsl::id.eq_any(batch.for_update().skip_locked()))
                .filter(still_finished()),
        )
        .returning(dsl::so_id)
        .get_results(c),
        DbConnection::Sqlite(c) => diesel::delete(
            haier_order_outbox::table
                .filter(dsl::id.eq_any(batch))
                .filter(still_finished()),
        )
        .returning(dsl::so_id)
        .get_results(c),
    }
}

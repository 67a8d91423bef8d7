//! `haier_order_events`: every callback Haier sent, valid or not, with its outcome (unsigned ones
//! only within the receiver's per-address limit, and cut to an excerpt). Every statement on it is
//! a small function whose doc comment states its locking contract.

use super::state::CallbackOutcome;
use crate::db::schema::haier_order_events::{self, dsl};
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

/// One row of `haier_order_events`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_order_events)]
pub struct OrderEvent {
    pub id: i64,
    /// The outbox order the callback was applied to (none when it was rejected or unmatched).
    pub so_id: Option<String>,
    pub method: Option<String>,
    pub platform_order_no: Option<String>,
    pub state: Option<String>,
    pub outcome: CallbackOutcome,
    pub detail: Option<String>,
    /// The form fields as received, as JSON. For a callback that failed the `AppKey`/`Sign`
    /// check, an excerpt: the row keeps at most [`REJECTED_STORED_BYTES`](super::callback::REJECTED_STORED_BYTES) of
    /// text in all, and a cut `raw` ends in `… [cut: N bytes in all]` (so it is no longer JSON).
    pub raw: String,
    pub fingerprint: Option<String>,
    pub received_at: NaiveDateTime,
    /// The callback's `TimeStamp` minus the time it was received, in seconds: negative when the
    /// `TimeStamp` lies in the past (a late retry), positive when ahead of this clock. `None`
    /// when it was missing or unreadable, or the callback was not signed.
    pub clock_skew_secs: Option<i64>,
    /// Haier's order number (`Data.ExtOrderNo`), when the callback gave one.
    pub ext_order_no: Option<String>,
    /// When an operator attached this (unmatched) callback to an order.
    pub attached_at: Option<NaiveDateTime>,
}

/// The fields of a new row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = haier_order_events)]
pub struct NewOrderEvent<'a> {
    pub so_id: Option<&'a str>,
    pub method: Option<&'a str>,
    pub platform_order_no: Option<&'a str>,
    pub state: Option<&'a str>,
    pub outcome: CallbackOutcome,
    pub detail: Option<&'a str>,
    pub raw: &'a str,
    pub fingerprint: Option<&'a str>,
    pub received_at: NaiveDateTime,
    pub clock_skew_secs: Option<i64>,
    pub ext_order_no: Option<&'a str>,
}

/// Stores one callback and returns its id. Locking: a plain insert (inside the callback's
/// transaction when the callback was applied, so the event and the change commit together).
pub fn insert_event(conn: &mut DbConnection, event: &NewOrderEvent<'_>) -> QueryResult<i64> {
    diesel::insert_into(haier_order_events::table)
        .values(event)
        .returning(dsl::id)
        .get_result(conn)
}

/// Whether a callback with this fingerprint (method and data) was applied before. Locking: a
/// plain read; callers hold the order's row lock, so two copies of one callback cannot both miss.
pub fn was_applied(conn: &mut DbConnection, fingerprint: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        haier_order_events::table
            .filter(dsl::fingerprint.eq(fingerprint))
            .filter(dsl::outcome.eq(CallbackOutcome::Applied)),
    ))
    .get_result(conn)
}

/// Stored callbacks, newest first: all, or only those still `unmatched`, or those about one order
/// (applied to it, or naming it as `PlatformOrderNo`). Locking: a plain read.
pub fn list_events(
    conn: &mut DbConnection,
    unmatched_only: bool,
    so_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<OrderEvent>> {
    let mut query = haier_order_events::table
        .select(OrderEvent::as_select())
        .into_boxed();
    if unmatched_only {
        query = query.filter(dsl::outcome.eq(CallbackOutcome::Unmatched));
    }
    if let Some(so_id) = so_id {
        query = query.filter(
            dsl::so_id
                .eq(so_id.to_owned())
                .or(dsl::platform_order_no.eq(so_id.to_owned())),
        );
    }
    query.order(dsl::id.desc()).limit(limit.max(1)).load(conn)
}

/// How many callbacks are `unmatched`, waiting for an operator. Locking: a plain read (the
/// outcome index).
pub fn count_unmatched(conn: &mut DbConnection) -> QueryResult<i64> {
    haier_order_events::table
        .filter(dsl::outcome.eq(CallbackOutcome::Unmatched))
        .count()
        .get_result(conn)
}

/// One stored callback. Locking: a plain read.
pub fn find_event(conn: &mut DbConnection, id: i64) -> QueryResult<Option<OrderEvent>> {
    haier_order_events::table
        .find(id)
        .select(OrderEvent::as_select())
        .first(conn)
        .optional()
}

/// The order an operator attached a copy of this callback (same `fingerprint`) to, if any.
/// Locking: a plain read (the fingerprint index).
pub fn attached_order_of(conn: &mut DbConnection, fingerprint: &str) -> QueryResult<Option<String>> {
    haier_order_events::table
        .filter(dsl::fingerprint.eq(fingerprint))
        .filter(dsl::attached_at.is_not_null())
        .filter(dsl::so_id.is_not_null())
        .select(dsl::so_id.assume_not_null())
        .first(conn)
        .optional()
}

/// Locks event `id` for the rest of the caller's transaction if it is still `unmatched`, and
/// returns whether it is. Locking: a no-op single-row `UPDATE` guarded by the outcome, inside the
/// attach transaction, so two operators attaching one callback at once apply it once.
pub fn lock_unmatched(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    diesel::update(
        haier_order_events::table
            .filter(dsl::id.eq(id))
            .filter(dsl::outcome.eq(CallbackOutcome::Unmatched)),
    )
    .set(dsl::outcome.eq(dsl::outcome))
    .execute(conn)
    .map(|n| n == 1)
}

/// Records that unmatched event `id` was attached to `so_id` and what applying it did; the other
/// still-unmatched copies of the same callback (Haier's retries, same `fingerprint`) are
/// attached with it as `duplicate`. Returns how many copies were. Locking: single `UPDATE`s
/// guarded by the outcome, inside the attach transaction.
pub fn mark_attached(
    conn: &mut DbConnection,
    id: i64,
    so_id: &str,
    outcome: CallbackOutcome,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let fingerprint: Option<String> = haier_order_events::table
        .find(id)
        .select(dsl::fingerprint)
        .first(conn)?;
    diesel::update(haier_order_events::table.filter(dsl::id.eq(id)))
        .set((
            dsl::so_id.eq(so_id),
            dsl::outcome.eq(outcome),
            dsl::detail.eq(detail),
            dsl::attached_at.eq(now),
        ))
        .execute(conn)?;
    let Some(fingerprint) = fingerprint else {
        return Ok(0);
    };
    let copy_detail = format!("a copy of callback {id}, attached with it to {so_id}");
    diesel::update(
        haier_order_events::table
            .filter(dsl::fingerprint.eq(fingerprint))
            .filter(dsl::outcome.eq(CallbackOutcome::Unmatched)),
    )
    .set((
        dsl::so_id.eq(so_id),
        dsl::outcome.eq(CallbackOutcome::Duplicate),
        dsl::detail.eq(copy_detail),
        dsl::attached_at.eq(now),
    ))
    .execute(conn)
}

/// The callbacks of one order, oldest first: those applied to it (or found a replay or
/// contradiction of it), and those kept unmatched that name its `so_id` or `online_no`.
/// Locking: a plain read.
pub fn events_of_order(
    conn: &mut DbConnection,
    so_id: &str,
    online_no: &str,
) -> QueryResult<Vec<OrderEvent>> {
    let named = vec![so_id.to_owned(), online_no.to_owned()];
    haier_order_events::table
        .filter(
            dsl::so_id
                .eq(so_id)
                .or(dsl::so_id.is_null().and(dsl::platform_order_no.eq_any(named))),
        )
        .order((dsl::received_at.asc(), dsl::id.asc()))
        .select(OrderEvent::as_select())
        .load(conn)
}

/// Every stored callback, oldest first. Locking: a plain read.
#[cfg(any(test, feature = "test-support"))]
pub fn list_all(conn: &mut DbConnection) -> QueryResult<Vec<OrderEvent>> {
    haier_order_events::table
        .order(dsl::id.asc())
        .select(OrderEvent::as_select())
        .load(conn)
}

/// How many callbacks came before `before`: what [`delete_received_before`] would delete, all
/// batches together. Locking: a plain read (the `received_at` index).
pub fn count_received_before(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<i64> {
    haier_order_events::table
        .filter(dsl::received_at.lt(before))
        .count()
        .get_result(conn)
}

/// Deletes up to `limit` callbacks that came before `before` (in no particular order:
/// the index decides); returns how many.
/// Locking: one `DELETE … WHERE id IN (SELECT … LIMIT n)` statement, its own short transaction.
pub fn delete_received_before(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    let old = diesel::alias!(haier_order_events as old);
    let batch = old
        .select(old.field(dsl::id))
        .filter(old.field(dsl::received_at).lt(before))
        .limit(limit);
    diesel::delete(haier_order_events::table.filter(dsl::id.eq_any(batch))).execute(conn)
}

/// How many callbacks applied to (or recorded against) these orders came at or after `since`:
/// those [`delete_of_orders`] deletes after the older ones went by age. Locking: a plain read.
pub fn count_of_orders_since(
    conn: &mut DbConnection,
    so_ids: &[String],
    since: NaiveDateTime,
) -> QueryResult<i64> {
    if so_ids.is_empty() {
        return Ok(0);
    }
    haier_order_events::table
        .filter(dsl::so_id.eq_any(so_ids))
        .filter(dsl::received_at.ge(since))
        .count()
        .get_result(conn)
}

/// Deletes the callbacks applied to (or recorded against) these orders; returns how many.
/// Locking: one `DELETE`, inside the caller's transaction that deletes the orders.
pub fn delete_of_orders(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<usize> {
    if so_ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(haier_order_events::table.filter(dsl::so_id.eq_any(so_ids))).execute(conn)
}

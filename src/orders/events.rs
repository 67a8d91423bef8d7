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

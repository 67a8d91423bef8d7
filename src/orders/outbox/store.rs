//! Queries on `haier_order_outbox`, the transactional outbox the shop writes paid orders to.
//! Every statement is a small function whose doc comment states its locking contract. What the
//! statuses mean and when they change is decided in `crate::orders`; this file only runs SQL.
//!
//! The lease: a poller claims rows by setting `status = 'sending'`, `locked_by` to a token of its
//! own batch and `locked_until`; only the holder of that token writes a push result
//! (`mark_*` filter on it), and a lease that runs out makes the row claimable again.

use crate::db::schema::haier_order_outbox::{self, dsl};
use crate::db::schema::haier_products;
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::Serialize;
use std::collections::HashSet;

/// Every value of `status`, in the order an order goes through them.
pub const STATUSES: [&str; 7] = [
    "pending",
    "sending",
    "pushed",
    "confirmed",
    "refused",
    "cancelled",
    "dead",
];

/// One row of `haier_order_outbox`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = haier_order_outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub so_id: String,
    pub online_no: String,
    /// The order as JSON in YLH's push format, as the shop wrote it.
    pub payload: String,
    pub status: String,
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
    pub cancel_state: Option<String>,
    pub cancel_detail: Option<String>,
    pub out_of_stock_at: Option<NaiveDateTime>,
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

/// Claims up to `limit` due rows for `lease_token` until `lease_until` and returns them: rows
/// `pending` whose `next_attempt_at` has come, and rows `sending` whose lease ran out (a poller
/// crashed or hung mid-push; that attempt is counted and noted in `last_error`).
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
    const SET: &str = "status = 'sending', \
         attempts = CASE WHEN status = 'sending' THEN attempts + 1 ELSE attempts END, \
         last_error = CASE WHEN status = 'sending' \
             THEN 'the lease of ' || COALESCE(locked_by, '?') || ' ran out while sending; trying again' \
             ELSE last_error END, \
         locked_by = {token}, locked_until = {until}, updated_at = {now}";
    const DUE: &str = "(status = 'pending' AND next_attempt_at <= {now}) \
         OR (status = 'sending' AND locked_until <= {now})";
    match conn {
        DbConnection::Pg(c) => {
            let fill = |s: &str| {
                s.replace("{token}", "$1")
                    .replace("{until}", "$2")
                    .replace("{now}", "$3")
            };
            let sql = format!(
                "WITH due AS (SELECT id FROM haier_order_outbox WHERE {} \
                 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 UPDATE haier_order_outbox o SET {} FROM due WHERE o.id = due.id RETURNING o.*",
                fill(DUE),
                fill(SET),
            );
            diesel::sql_query(sql)
                .bind::<Text, _>(lease_token)
                .bind::<Timestamp, _>(lease_until)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(limit)
                .load(c)
        }
        DbConnection::Sqlite(c) => {
            let fill = |s: &str| {
                s.replace("{token}", "?1")
                    .replace("{until}", "?2")
                    .replace("{now}", "?3")
            };
            let sql = format!(
                "UPDATE haier_order_outbox SET {} WHERE id IN (SELECT id FROM haier_order_outbox \
                 WHERE {} ORDER BY next_attempt_at, id LIMIT ?4) RETURNING *",
                fill(SET),
                fill(DUE),
            );
            diesel::sql_query(sql)
                .bind::<Text, _>(lease_token)
                .bind::<Timestamp, _>(lease_until)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(limit)
                .load(c)
        }
    }
}

/// The lease tokens rows are `sending` under, each with its number of rows.
/// Locking: a plain read.
pub fn lease_holders(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    haier_order_outbox::table
        .filter(dsl::status.eq("sending"))
        .filter(dsl::locked_by.is_not_null())
        .group_by(dsl::locked_by)
        .select((dsl::locked_by.assume_not_null(), diesel::dsl::count_star()))
        .order(dsl::locked_by)
        .load(conn)
}

/// Frees the rows left `sending` under `lease_token` by a poller that is gone, before the lease
/// runs out: back to `pending`, due now, the lost attempt counted and `reason` kept, as a claim of
/// a lease that ran out would do. Returns how many rows were freed.
/// Locking: one `UPDATE` guarded by the status and the token, so a row that was claimed again
/// meanwhile (another token) or moved on by a callback is left alone; no transaction.
pub fn free_lease(
    conn: &mut DbConnection,
    lease_token: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        haier_order_outbox::table
            .filter(dsl::status.eq("sending"))
            .filter(dsl::locked_by.eq(lease_token)),
    )
    .set((
        dsl::status.eq("pending"),
        dsl::attempts.eq(dsl::attempts + 1),
        dsl::next_attempt_at.eq(now),
        dsl::last_error.eq(reason),
        dsl::locked_by.eq(None::<String>),
        dsl::locked_until.eq(None::<NaiveDateTime>),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)
}

/// The row `id` if it is still `sending` under `lease_token`: what `mark_*` may write.
macro_rules! leased {
    ($id:expr, $token:expr) => {
        haier_order_outbox::table
            .filter(dsl::id.eq($id))
            .filter(dsl::status.eq("sending"))
            .filter(dsl::locked_by.eq($token))
    };
}

/// Records a push Haier took (or already had: `note` says so): `pushed`, the attempt counted,
/// the lease released. Returns false when the lease was lost meanwhile (the row was claimed again
/// or a callback moved it on), in which case nothing is written.
/// Locking: a single-row `UPDATE` guarded by the lease token; no transaction.
pub fn mark_pushed(
    conn: &mut DbConnection,
    id: i64,
    lease_token: &str,
    note: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(leased!(id, lease_token))
        .set((
            dsl::status.eq("pushed"),
            dsl::attempts.eq(dsl::attempts + 1),
            dsl::pushed_at.eq(Some(now)),
            dsl::last_error.eq(note),
            dsl::locked_by.eq(None::<String>),
            dsl::locked_until.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Puts a row whose push failed in a way worth repeating back to `pending`, due at
/// `next_attempt_at`, with the attempt counted and the error kept. Returns false when the lease
/// was lost meanwhile. Locking: a single-row `UPDATE` guarded by the lease token.
pub fn mark_for_retry(
    conn: &mut DbConnection,
    id: i64,
    lease_token: &str,
    error: &str,
    next_attempt_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(leased!(id, lease_token))
        .set((
            dsl::status.eq("pending"),
            dsl::attempts.eq(dsl::attempts + 1),
            dsl::next_attempt_at.eq(next_attempt_at),
            dsl::last_error.eq(error),
            dsl::locked_by.eq(None::<String>),
            dsl::locked_until.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Puts a row back to `pending` at `next_attempt_at` without counting an attempt: it was not
/// sent, for a reason that is not the order's fault (no product catalog yet). Returns false when
/// the lease was lost meanwhile. Locking: a single-row `UPDATE` guarded by the lease token.
pub fn defer_order(
    conn: &mut DbConnection,
    id: i64,
    lease_token: &str,
    reason: &str,
    next_attempt_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(leased!(id, lease_token))
        .set((
            dsl::status.eq("pending"),
            dsl::next_attempt_at.eq(next_attempt_at),
            dsl::last_error.eq(reason),
            dsl::locked_by.eq(None::<String>),
            dsl::locked_until.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Gives up on a row: `dead` with the reason. `attempted` says whether a push was made (a
/// failed push counts as an attempt; an order refused by validation was never sent). Returns
/// false when the lease was lost meanwhile. Locking: a single-row `UPDATE` guarded by the lease.
pub fn mark_dead(
    conn: &mut DbConnection,
    id: i64,
    lease_token: &str,
    error: &str,
    attempted: bool,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(leased!(id, lease_token))
        .set((
            dsl::status.eq("dead"),
            dsl::attempts.eq(dsl::attempts + i64::from(attempted)),
            dsl::last_error.eq(error),
            dsl::locked_by.eq(None::<String>),
            dsl::locked_until.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Moves a `dead` row back to `pending`, due now, with its attempts reset (`outbox retry`).
/// Returns false when the row is not `dead`. Locking: a single-row `UPDATE` guarded by the status.
pub fn retry_dead_order(conn: &mut DbConnection, so_id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        haier_order_outbox::table
            .filter(dsl::so_id.eq(so_id))
            .filter(dsl::status.eq("dead")),
    )
    .set((
        dsl::status.eq("pending"),
        dsl::attempts.eq(0_i64),
        dsl::next_attempt_at.eq(now),
        dsl::locked_by.eq(None::<String>),
        dsl::locked_until.eq(None::<NaiveDateTime>),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Cancels a row that was never pushed (`pending`), so the poller never sends it. Returns false
/// when the row is not `pending` (a poller may have claimed it meanwhile). Locking: a single-row
/// `UPDATE` guarded by the status, so it cannot race a claim.
pub fn cancel_pending_order(
    conn: &mut DbConnection,
    so_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        haier_order_outbox::table
            .filter(dsl::so_id.eq(so_id))
            .filter(dsl::status.eq("pending")),
    )
    .set((
        dsl::status.eq("cancelled"),
        dsl::cancel_state.eq("local"),
        dsl::cancel_detail.eq(reason),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Marks a row cancelled without asking Haier (Haier answered that it does not have the order).
/// Locking: a single-row `UPDATE`; the status guard keeps a row a poller holds untouched.
pub fn cancel_unknown_order(
    conn: &mut DbConnection,
    so_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        haier_order_outbox::table
            .filter(dsl::so_id.eq(so_id))
            .filter(dsl::status.eq_any(["pending", "dead"])),
    )
    .set((
        dsl::status.eq("cancelled"),
        dsl::cancel_state.eq("local"),
        dsl::cancel_detail.eq(reason),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Records that a cancel was asked of Haier (`cancel_state = 'requested'`); the outcome comes in
/// the cancel callback. Locking: a single-row `UPDATE`; no transaction.
pub fn record_cancel_request(
    conn: &mut DbConnection,
    so_id: &str,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(haier_order_outbox::table.filter(dsl::so_id.eq(so_id)))
        .set((
            dsl::cancel_state.eq("requested"),
            dsl::cancel_detail.eq(reason),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Which rows a callback's `PlatformOrderNo` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderMatch {
    /// Exactly one row, found by `so_id` or else by `online_no`; it is now locked.
    Found(Box<OutboxRow>),
    NotFound,
    /// No `so_id` matched and several rows share the `online_no`: which one is meant is unknown.
    Ambiguous(usize),
}

/// Finds the row a callback names, `so_id` first, then `online_no`, and locks it for the rest of
/// the caller's transaction.
///
/// Locking: must run inside a transaction. It starts with a no-op `UPDATE` of the matching row,
/// which takes the row lock on PostgreSQL and the write lock on SQLite before anything is read,
/// so two callbacks for one order are applied one after the other.
pub fn lock_order_for_callback(conn: &mut DbConnection, platform_order_no: &str) -> QueryResult<OrderMatch> {
    let touched = diesel::update(haier_order_outbox::table.filter(dsl::so_id.eq(platform_order_no)))
        .set(dsl::updated_at.eq(dsl::updated_at))
        .execute(conn)?;
    if touched == 1 {
        return haier_order_outbox::table
            .filter(dsl::so_id.eq(platform_order_no))
            .select(OutboxRow::as_select())
            .first(conn)
            .map(|row| OrderMatch::Found(Box::new(row)));
    }
    let touched = diesel::update(haier_order_outbox::table.filter(dsl::online_no.eq(platform_order_no)))
        .set(dsl::updated_at.eq(dsl::updated_at))
        .execute(conn)?;
    match touched {
        0 => Ok(OrderMatch::NotFound),
        1 => haier_order_outbox::table
            .filter(dsl::online_no.eq(platform_order_no))
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
            .filter(dsl::status.eq("sending")),
    )
    .set(dsl::attempts.eq(dsl::attempts + 1))
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
    diesel::update(haier_order_outbox::table.filter(dsl::id.eq(id)))
        .set((
            dsl::status.eq("confirmed"),
            dsl::haier_order_no.eq(haier_order_no),
            dsl::confirmed_at.eq(Some(now)),
            dsl::locked_by.eq(None::<String>),
            dsl::locked_until.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Haier refused the order: `refused` with its reason. Locking: a single-row `UPDATE`, inside the
/// callback's transaction.
pub fn set_refused(conn: &mut DbConnection, id: i64, reason: &str, now: NaiveDateTime) -> QueryResult<()> {
    count_attempt_in_flight(conn, id)?;
    diesel::update(haier_order_outbox::table.filter(dsl::id.eq(id)))
        .set((
            dsl::status.eq("refused"),
            dsl::last_error.eq(reason),
            dsl::locked_by.eq(None::<String>),
            dsl::locked_until.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Haier cancelled the whole order: `cancelled`, `cancel_state = 'full'`, its order number kept
/// if it was not known yet. Locking: single-row `UPDATE`s, inside the callback's transaction.
pub fn set_cancelled(
    conn: &mut DbConnection,
    id: i64,
    haier_order_no: Option<&str>,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if let Some(number) = haier_order_no {
        diesel::update(
            haier_order_outbox::table
                .filter(dsl::id.eq(id))
                .filter(dsl::haier_order_no.is_null()),
        )
        .set(dsl::haier_order_no.eq(number))
        .execute(conn)?;
    }
    diesel::update(haier_order_outbox::table.filter(dsl::id.eq(id)))
        .set((
            dsl::status.eq("cancelled"),
            dsl::cancel_state.eq("full"),
            dsl::cancel_detail.eq(detail),
            dsl::locked_by.eq(None::<String>),
            dsl::locked_until.eq(None::<NaiveDateTime>),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records a cancel outcome that leaves the status as it is (`partial` or `refused`).
/// Locking: a single-row `UPDATE`, inside the callback's transaction.
pub fn set_cancel_state(
    conn: &mut DbConnection,
    id: i64,
    state: &str,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(haier_order_outbox::table.filter(dsl::id.eq(id)))
        .set((
            dsl::cancel_state.eq(state),
            dsl::cancel_detail.eq(detail),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records Haier's out-of-stock notice. Locking: a single-row `UPDATE`, inside the callback's
/// transaction.
pub fn set_out_of_stock(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(haier_order_outbox::table.filter(dsl::id.eq(id)))
        .set((dsl::out_of_stock_at.eq(Some(now)), dsl::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// One row by `so_id`. Locking: a plain read.
pub fn find_by_so_id(conn: &mut DbConnection, so_id: &str) -> QueryResult<Option<OutboxRow>> {
    haier_order_outbox::table
        .filter(dsl::so_id.eq(so_id))
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}

/// Rows, newest first, optionally of one status. Locking: a plain read.
pub fn list_orders(conn: &mut DbConnection, status: Option<&str>, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    let mut query = haier_order_outbox::table
        .select(OutboxRow::as_select())
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(dsl::status.eq(status.to_owned()));
    }
    query.order(dsl::id.desc()).limit(limit.max(1)).load(conn)
}

/// The number of rows in each status that has any. Locking: a plain read.
pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    haier_order_outbox::table
        .group_by(dsl::status)
        .select((dsl::status, diesel::dsl::count_star()))
        .order(dsl::status)
        .load(conn)
}

/// Which of `codes` `haier_products` lists as for sale (and not delisted). Locking: a plain read.
pub fn product_codes_for_sale(conn: &mut DbConnection, codes: &[String]) -> QueryResult<HashSet<String>> {
    use crate::db::schema::haier_products::dsl as p;
    let mut found = HashSet::new();
    for chunk in codes.chunks(500) {
        let rows: Vec<String> = haier_products::table
            .filter(p::product_code.eq_any(chunk.to_vec()))
            .filter(p::is_sales.eq(true))
            .filter(p::delisted_at.is_null())
            .select(p::product_code)
            .load(conn)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Whether `haier_products` lists any product for sale at all (before the first products sync it
/// does not, and no order can be checked). Locking: a plain read.
pub fn has_products_for_sale(conn: &mut DbConnection) -> QueryResult<bool> {
    use crate::db::schema::haier_products::dsl as p;
    diesel::select(diesel::dsl::exists(
        haier_products::table
            .filter(p::is_sales.eq(true))
            .filter(p::delisted_at.is_null()),
    ))
    .get_result(conn)
}

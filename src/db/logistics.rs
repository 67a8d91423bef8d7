//! Queries of the logistics job: `haier_logistics` (the newest delivery state per Haier order) and
//! the two it needs of `haier_order_outbox` (which orders to ask about, and marking them
//! delivered). The outbox's own queue functions belong to the orders code.

use super::schema::{haier_logistics, haier_order_outbox};
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;

/// Outbox statuses of orders Haier has received and may be delivering.
pub const TRACKED_STATUSES: [&str; 2] = ["pushed", "confirmed"];

/// A pushed order whose delivery the logistics job follows.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct TrackedOrder {
    /// The outbox row's id.
    pub id: i64,
    pub so_id: String,
    /// Haier's order number, the key of the logistics call.
    pub haier_order_no: String,
}

/// One order's newest logistics state.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = haier_logistics)]
#[diesel(treat_none_as_default_value = false)]
pub struct LogisticsRow {
    /// Haier's order number.
    pub order_code: String,
    pub so_id: String,
    pub state_code: Option<String>,
    pub state_description: Option<String>,
    /// `yyyy-MM-dd HH:mm:ss`, Beijing time, as Haier sent it.
    pub state_time: Option<String>,
    pub company_name: Option<String>,
    pub express_no: Option<String>,
    pub delivered: bool,
    /// The reply's `data`, as JSON.
    pub raw: String,
    pub updated_at: NaiveDateTime,
}

/// Up to `limit` pushed or confirmed outbox orders with a Haier order number and no delivery
/// yet, with an id above `after_id`, in id order: one page of a keyset walk. Takes no lock.
pub fn undelivered_orders_after(
    conn: &mut DbConnection,
    after_id: i64,
    limit: i64,
) -> QueryResult<Vec<TrackedOrder>> {
    use haier_order_outbox::dsl;
    dsl::haier_order_outbox
        .filter(dsl::id.gt(after_id))
        .filter(dsl::status.eq_any(TRACKED_STATUSES))
        .filter(dsl::delivered_at.is_null())
        .filter(dsl::haier_order_no.is_not_null())
        .order(dsl::id.asc())
        .limit(limit)
        .select((dsl::id, dsl::so_id, dsl::haier_order_no.assume_not_null()))
        .load(conn)
}

/// How many orders [`undelivered_orders_after`] walks over.
pub fn count_undelivered_orders(conn: &mut DbConnection) -> QueryResult<i64> {
    use haier_order_outbox::dsl;
    dsl::haier_order_outbox
        .filter(dsl::status.eq_any(TRACKED_STATUSES))
        .filter(dsl::delivered_at.is_null())
        .filter(dsl::haier_order_no.is_not_null())
        .count()
        .get_result(conn)
}

/// Sets `delivered_at` on those outbox rows of `ids` that have none. Returns how many changed.
pub fn mark_orders_delivered(conn: &mut DbConnection, ids: &[i64], at: NaiveDateTime) -> QueryResult<usize> {
    use haier_order_outbox::dsl;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(
        dsl::haier_order_outbox
            .filter(dsl::id.eq_any(ids))
            .filter(dsl::delivered_at.is_null()),
    )
    .set((dsl::delivered_at.eq(Some(at)), dsl::updated_at.eq(at)))
    .execute(conn)
}

/// Inserts the rows, or replaces the stored ones, in one statement.
pub fn upsert_logistics(conn: &mut DbConnection, rows: &[LogisticsRow]) -> QueryResult<usize> {
    use haier_logistics::dsl;
    if rows.is_empty() {
        return Ok(0);
    }
    crate::db_run!(conn, |c| diesel::insert_into(dsl::haier_logistics)
        .values(rows)
        .on_conflict(dsl::order_code)
        .do_update()
        .set((
            dsl::so_id.eq(excluded(dsl::so_id)),
            dsl::state_code.eq(excluded(dsl::state_code)),
            dsl::state_description.eq(excluded(dsl::state_description)),
            dsl::state_time.eq(excluded(dsl::state_time)),
            dsl::company_name.eq(excluded(dsl::company_name)),
            dsl::express_no.eq(excluded(dsl::express_no)),
            dsl::delivered.eq(excluded(dsl::delivered)),
            dsl::raw.eq(excluded(dsl::raw)),
            dsl::updated_at.eq(excluded(dsl::updated_at)),
        ))
        .execute(c))
}

/// Every logistics row, by order code (tests and small tools).
#[cfg(any(test, feature = "test-support"))]
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<LogisticsRow>> {
    use haier_logistics::dsl;
    dsl::haier_logistics
        .select(LogisticsRow::as_select())
        .order(dsl::order_code.asc())
        .load(conn)
}

//! Queries on `haier_logistics`: the newest delivery state per Haier order, as the logistics job
//! writes it. Which orders to ask about, and marking them delivered, are statements on the outbox
//! in `crate::orders::outbox`.

use super::schema::haier_logistics;
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;

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

/// How many logistics rows these shop orders have. A plain read (the `so_id` index).
pub fn count_of_orders(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<i64> {
    use haier_logistics::dsl;
    if so_ids.is_empty() {
        return Ok(0);
    }
    dsl::haier_logistics
        .filter(dsl::so_id.eq_any(so_ids))
        .count()
        .get_result(conn)
}

/// Deletes the logistics rows of these shop orders (when the orders themselves are pruned);
/// returns how many. One `DELETE`, inside the caller's transaction that deletes the orders.
pub fn delete_of_orders(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<usize> {
    use haier_logistics::dsl;
    if so_ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(dsl::haier_logistics.filter(dsl::so_id.eq_any(so_ids))).execute(conn)
}

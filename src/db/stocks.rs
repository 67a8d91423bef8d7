//! Queries on `haier_stocks`: available stock per product and county, as the stock job last saw it.

use super::schema::haier_stocks;
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;

/// One product's stock in one county.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = haier_stocks)]
#[diesel(treat_none_as_default_value = false)]
pub struct StockRow {
    pub product_code: String,
    pub county_code: String,
    /// The sum over the warehouses.
    pub stock: i64,
    /// JSON array of the warehouses Haier listed.
    pub warehouses: String,
    /// The warehouse to show (most stock, grade 0 winning a tie); `None` without warehouses.
    pub sec_code: Option<String>,
    pub warehouse_grade: Option<String>,
    pub updated_at: NaiveDateTime,
}

/// Inserts the rows, or replaces the stored ones, in one statement.
pub fn upsert_stocks(conn: &mut DbConnection, rows: &[StockRow]) -> QueryResult<usize> {
    use haier_stocks::dsl;
    if rows.is_empty() {
        return Ok(0);
    }
    crate::db_run!(conn, |c| diesel::insert_into(dsl::haier_stocks)
        .values(rows)
        .on_conflict((dsl::product_code, dsl::county_code))
        .do_update()
        .set((
            dsl::stock.eq(excluded(dsl::stock)),
            dsl::warehouses.eq(excluded(dsl::warehouses)),
            dsl::sec_code.eq(excluded(dsl::sec_code)),
            dsl::warehouse_grade.eq(excluded(dsl::warehouse_grade)),
            dsl::updated_at.eq(excluded(dsl::updated_at)),
        ))
        .execute(c))
}

/// Every stock row, by product then county (tests and small tools).
#[cfg(any(test, feature = "test-support"))]
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<StockRow>> {
    use haier_stocks::dsl;
    dsl::haier_stocks
        .select(StockRow::as_select())
        .order((dsl::product_code.asc(), dsl::county_code.asc()))
        .load(conn)
}

//! Queries on `haier_prices` and `haier_price_changes`: supply prices as Haier sent them (decimal
//! text, never recomputed) and the history of their moves.
//!
//! None of these functions opens a transaction; the prices job wraps a page's statements in one.

use super::schema::{haier_price_changes, haier_prices};
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;

/// One price row as the prices job writes it. Decimals are Haier's text (`"2399.00"`).
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = haier_prices)]
#[diesel(treat_none_as_default_value = false)]
pub struct PriceRow {
    pub product_code: String,
    pub supply_price: Option<String>,
    pub invoice_price: Option<String>,
    pub rebate_rate: Option<String>,
    pub rebate_money: Option<String>,
    pub stock_rebate_policy: Option<String>,
    pub reason: Option<String>,
    pub is_sales: bool,
    pub content_hash: String,
    pub updated_at: NaiveDateTime,
}

/// What the prices job compares a fresh price with.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = haier_prices)]
pub struct StoredPrice {
    pub product_code: String,
    pub supply_price: Option<String>,
    pub invoice_price: Option<String>,
    pub content_hash: String,
}

/// One move of a product's supply or invoice price.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = haier_price_changes)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewPriceChange {
    pub product_code: String,
    pub old_supply_price: Option<String>,
    pub new_supply_price: Option<String>,
    pub old_invoice_price: Option<String>,
    pub new_invoice_price: Option<String>,
    pub changed_at: NaiveDateTime,
}

/// A recorded price move.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = haier_price_changes)]
pub struct PriceChange {
    pub id: i64,
    pub product_code: String,
    pub old_supply_price: Option<String>,
    pub new_supply_price: Option<String>,
    pub old_invoice_price: Option<String>,
    pub new_invoice_price: Option<String>,
    pub changed_at: NaiveDateTime,
}

/// The stored prices of those of `codes` that have one.
pub fn find_stored(conn: &mut DbConnection, codes: &[String]) -> QueryResult<Vec<StoredPrice>> {
    use haier_prices::dsl;
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    dsl::haier_prices
        .filter(dsl::product_code.eq_any(codes))
        .select(StoredPrice::as_select())
        .load(conn)
}

/// Inserts the rows, or replaces the stored ones, in one statement.
pub fn upsert_prices(conn: &mut DbConnection, rows: &[PriceRow]) -> QueryResult<usize> {
    use haier_prices::dsl;
    if rows.is_empty() {
        return Ok(0);
    }
    crate::db_run!(conn, |c| diesel::insert_into(dsl::haier_prices)
        .values(rows)
        .on_conflict(dsl::product_code)
        .do_update()
        .set((
            dsl::supply_price.eq(excluded(dsl::supply_price)),
            dsl::invoice_price.eq(excluded(dsl::invoice_price)),
            dsl::rebate_rate.eq(excluded(dsl::rebate_rate)),
            dsl::rebate_money.eq(excluded(dsl::rebate_money)),
            dsl::stock_rebate_policy.eq(excluded(dsl::stock_rebate_policy)),
            dsl::reason.eq(excluded(dsl::reason)),
            dsl::is_sales.eq(excluded(dsl::is_sales)),
            dsl::content_hash.eq(excluded(dsl::content_hash)),
            dsl::updated_at.eq(excluded(dsl::updated_at)),
        ))
        .execute(c))
}

/// Appends price moves to the history.
pub fn insert_price_changes(conn: &mut DbConnection, rows: &[NewPriceChange]) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    crate::db_run!(conn, |c| diesel::insert_into(haier_price_changes::table)
        .values(rows)
        .execute(c))
}

/// Every stored price, in code order (tests and small tools).
#[cfg(any(test, feature = "test-support"))]
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<PriceRow>> {
    use haier_prices::dsl;
    dsl::haier_prices
        .select(PriceRow::as_select())
        .order(dsl::product_code.asc())
        .load(conn)
}

/// The newest price moves first, at most `limit`; of one product when `product_code` is given.
///
/// Locking: none (one read).
pub fn recent_changes(
    conn: &mut DbConnection,
    product_code: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<PriceChange>> {
    use haier_price_changes::dsl;
    let mut query = dsl::haier_price_changes
        .select(PriceChange::as_select())
        .order((dsl::changed_at.desc(), dsl::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(code) = product_code {
        query = query.filter(dsl::product_code.eq(code.to_owned()));
    }
    query.load(conn)
}

/// Every move of `product_code`'s prices, oldest first, at most the newest `limit`.
///
/// Locking: none (one read).
pub fn changes_of_product(
    conn: &mut DbConnection,
    product_code: &str,
    limit: i64,
) -> QueryResult<Vec<PriceChange>> {
    let mut changes = recent_changes(conn, Some(product_code), limit)?;
    changes.reverse();
    Ok(changes)
}

/// The stored price of `product_code`, if it has one.
///
/// Locking: none (one read by primary key).
pub fn find_price(conn: &mut DbConnection, product_code: &str) -> QueryResult<Option<PriceRow>> {
    use haier_prices::dsl;
    dsl::haier_prices
        .filter(dsl::product_code.eq(product_code))
        .select(PriceRow::as_select())
        .first(conn)
        .optional()
}

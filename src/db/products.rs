//! Queries on `haier_products`, `haier_categories` and `haier_brands`: what the products job
//! writes and what the price and stock jobs read to know which products to cover.
//!
//! None of these functions opens a transaction; the products job wraps a page's statements in one.

use super::schema::{haier_brands, haier_categories, haier_products};
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;
use std::collections::HashSet;

/// One product row as the products job writes it (and as it reads back).
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = haier_products)]
#[diesel(treat_none_as_default_value = false)]
pub struct ProductRow {
    pub product_code: String,
    pub model: String,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub image_url: Option<String>,
    /// JSON array of URLs.
    pub leaflet_urls: String,
    pub is_sales: bool,
    pub no_sales_reason: Option<String>,
    pub local_category: Option<String>,
    pub local_brand: Option<String>,
    pub content_hash: String,
    /// Kept on update: only an insert sets it.
    pub first_seen_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Always `None`: a product in a listing is listed.
    pub delisted_at: Option<NaiveDateTime>,
    /// The raw hash (16 bytes) of the listing item the row was decoded from; `None` when it
    /// was not written from the full listing.
    pub raw_hash: Option<Vec<u8>>,
}

/// What the products job compares a listed product with.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = haier_products)]
pub struct StoredProduct {
    pub product_code: String,
    pub content_hash: String,
    pub local_category: Option<String>,
    pub local_brand: Option<String>,
    pub is_sales: bool,
    pub delisted_at: Option<NaiveDateTime>,
    pub raw_hash: Option<Vec<u8>>,
}

/// A whole stored product, for tests and tools: the same columns the products job writes.
pub type Product = ProductRow;

/// The stored state of those of `codes` that have a row.
pub fn find_stored(conn: &mut DbConnection, codes: &[String]) -> QueryResult<Vec<StoredProduct>> {
    use haier_products::dsl;
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    dsl::haier_products
        .filter(dsl::product_code.eq_any(codes))
        .select(StoredProduct::as_select())
        .load(conn)
}

/// The raw hashes of the listed (not delisted) products that have one: what a full listing
/// compares its items' bytes with, read once. Locking: a plain read.
pub fn listed_raw_hashes(conn: &mut DbConnection) -> QueryResult<Vec<Vec<u8>>> {
    use haier_products::dsl;
    dsl::haier_products
        .filter(dsl::delisted_at.is_null())
        .select(dsl::raw_hash.assume_not_null())
        .filter(dsl::raw_hash.is_not_null())
        .load(conn)
}

/// The codes of the listed (not delisted) products that have no raw hash (written before raw
/// hashes were kept, or by code rather than from the full listing). Locking: a plain read.
pub fn listed_codes_without_raw_hash(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    use haier_products::dsl;
    dsl::haier_products
        .filter(dsl::delisted_at.is_null())
        .filter(dsl::raw_hash.is_null())
        .select(dsl::product_code)
        .load(conn)
}

/// A listed product's code, raw hash and local labels: what a listing that sets labels needs
/// to tell the rows it leaves unchanged from those it relabels.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = haier_products)]
pub struct ListedLabels {
    pub product_code: String,
    pub raw_hash: Option<Vec<u8>>,
    pub local_category: Option<String>,
    pub local_brand: Option<String>,
}

/// [`ListedLabels`] of every listed (not delisted) product. Locking: a plain read.
pub fn listed_labels(conn: &mut DbConnection) -> QueryResult<Vec<ListedLabels>> {
    use haier_products::dsl;
    dsl::haier_products
        .filter(dsl::delisted_at.is_null())
        .select(ListedLabels::as_select())
        .load(conn)
}

/// Whether `haier_products` has any row at all, listed or not. Locking: a plain read.
pub fn any_product(conn: &mut DbConnection) -> QueryResult<bool> {
    use haier_products::dsl;
    diesel::select(diesel::dsl::exists(dsl::haier_products.select(dsl::product_code))).get_result(conn)
}

/// Columns of a [`ProductRow`]: bind parameters per row of an insert.
const PRODUCT_COLUMNS: usize = 16;
/// Rows per insert statement: within SQLite's 32 766 bind parameters (PostgreSQL allows 65 535).
pub const UPSERT_ROWS_PER_STATEMENT: usize = 32_766 / PRODUCT_COLUMNS;

/// Inserts the rows, or updates every column but `first_seen_at` of those that exist: one
/// multi-row statement per [`UPSERT_ROWS_PER_STATEMENT`] rows. A code must not appear twice.
pub fn upsert_products(conn: &mut DbConnection, rows: &[ProductRow]) -> QueryResult<usize> {
    let mut written = 0;
    for chunk in rows.chunks(UPSERT_ROWS_PER_STATEMENT) {
        written += upsert_statement(conn, chunk)?;
    }
    Ok(written)
}

fn upsert_statement(conn: &mut DbConnection, rows: &[ProductRow]) -> QueryResult<usize> {
    use haier_products::dsl;
    if rows.is_empty() {
        return Ok(0);
    }
    crate::db_run!(conn, |c| diesel::insert_into(dsl::haier_products)
        .values(rows)
        .on_conflict(dsl::product_code)
        .do_update()
        .set((
            dsl::model.eq(excluded(dsl::model)),
            dsl::category.eq(excluded(dsl::category)),
            dsl::brand.eq(excluded(dsl::brand)),
            dsl::image_url.eq(excluded(dsl::image_url)),
            dsl::leaflet_urls.eq(excluded(dsl::leaflet_urls)),
            dsl::is_sales.eq(excluded(dsl::is_sales)),
            dsl::no_sales_reason.eq(excluded(dsl::no_sales_reason)),
            dsl::local_category.eq(excluded(dsl::local_category)),
            dsl::local_brand.eq(excluded(dsl::local_brand)),
            dsl::content_hash.eq(excluded(dsl::content_hash)),
            dsl::last_seen_at.eq(excluded(dsl::last_seen_at)),
            dsl::updated_at.eq(excluded(dsl::updated_at)),
            dsl::delisted_at.eq(excluded(dsl::delisted_at)),
            dsl::raw_hash.eq(excluded(dsl::raw_hash)),
        ))
        .execute(c))
}

/// Sets the raw hash of each product, by code, touching no other column (a listed item whose
/// bytes changed but whose content did not). Returns how many rows changed. A code must not
/// appear twice. On PostgreSQL one statement joins the table with the pairs sent as two arrays
/// (`unnest`); on SQLite, where a statement costs no round trip, one cached prepared `UPDATE`
/// runs per code. Locking: one row lock per code, held to the end of the caller's transaction.
pub fn set_raw_hashes(conn: &mut DbConnection, hashes: &[(String, Vec<u8>)]) -> QueryResult<usize> {
    use diesel::sql_types::{Array, Binary, Text};
    use haier_products::dsl;
    if hashes.is_empty() {
        return Ok(0);
    }
    match conn {
        DbConnection::Pg(c) => {
            let (codes, raw): (Vec<&str>, Vec<&[u8]>) = hashes
                .iter()
                .map(|(code, hash)| (code.as_str(), hash.as_slice()))
                .unzip();
            diesel::sql_query(
                "UPDATE haier_products AS p SET raw_hash = u.raw_hash \
                 FROM unnest($1::text[], $2::bytea[]) AS u(product_code, raw_hash) \
                 WHERE p.product_code = u.product_code",
            )
            .bind::<Array<Text>, _>(codes)
            .bind::<Array<Binary>, _>(raw)
            .execute(c)
        }
        DbConnection::Sqlite(c) => {
            let mut changed = 0;
            for (code, hash) in hashes {
                changed += diesel::update(dsl::haier_products.filter(dsl::product_code.eq(code)))
                    .set(dsl::raw_hash.eq(Some(hash)))
                    .execute(c)?;
            }
            Ok(changed)
        }
    }
}

/// Up to `limit` codes of listed (not delisted) products after `after`, in code order: one page
/// of a keyset walk. `for_sale_only` leaves out products Haier marks as not for sale.
pub fn listed_codes_after(
    conn: &mut DbConnection,
    after: Option<&str>,
    limit: i64,
    for_sale_only: bool,
) -> QueryResult<Vec<String>> {
    use haier_products::dsl;
    let mut query = dsl::haier_products
        .filter(dsl::delisted_at.is_null())
        .select(dsl::product_code)
        .order(dsl::product_code.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(dsl::product_code.gt(after.to_owned()));
    }
    if for_sale_only {
        query = query.filter(dsl::is_sales.eq(true));
    }
    query.load(conn)
}

/// How many listed (not delisted) products there are; `for_sale_only` as in
/// [`listed_codes_after`].
pub fn count_listed(conn: &mut DbConnection, for_sale_only: bool) -> QueryResult<i64> {
    use haier_products::dsl;
    let mut query = dsl::haier_products
        .filter(dsl::delisted_at.is_null())
        .count()
        .into_boxed();
    if for_sale_only {
        query = query.filter(dsl::is_sales.eq(true));
    }
    query.get_result(conn)
}

/// Those of `codes` whose stored product Haier marks as not for sale, or that are delisted.
pub fn unsellable_among(conn: &mut DbConnection, codes: &[String]) -> QueryResult<Vec<String>> {
    use haier_products::dsl;
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    dsl::haier_products
        .filter(dsl::product_code.eq_any(codes))
        .filter(dsl::is_sales.eq(false).or(dsl::delisted_at.is_not_null()))
        .select(dsl::product_code)
        .load(conn)
}

/// Marks those of `codes` that are still listed as delisted at `at`. Returns how many changed.
pub fn delist(conn: &mut DbConnection, codes: &[String], at: NaiveDateTime) -> QueryResult<usize> {
    use haier_products::dsl;
    if codes.is_empty() {
        return Ok(0);
    }
    diesel::update(
        dsl::haier_products
            .filter(dsl::product_code.eq_any(codes))
            .filter(dsl::delisted_at.is_null()),
    )
    .set((dsl::delisted_at.eq(Some(at)), dsl::updated_at.eq(at)))
    .execute(conn)
}

/// Marks the still-listed products whose raw hash is one of `hashes` as delisted at `at`.
/// Returns how many changed. The raw hash has no index: each statement reads the table once,
/// so callers send many hashes to a statement.
pub fn delist_by_raw_hash(
    conn: &mut DbConnection,
    hashes: &[Vec<u8>],
    at: NaiveDateTime,
) -> QueryResult<usize> {
    use haier_products::dsl;
    if hashes.is_empty() {
        return Ok(0);
    }
    diesel::update(
        dsl::haier_products
            .filter(dsl::raw_hash.eq_any(hashes))
            .filter(dsl::delisted_at.is_null()),
    )
    .set((dsl::delisted_at.eq(Some(at)), dsl::updated_at.eq(at)))
    .execute(conn)
}

/// One product by code.
pub fn find(conn: &mut DbConnection, code: &str) -> QueryResult<Option<Product>> {
    use haier_products::dsl;
    dsl::haier_products
        .filter(dsl::product_code.eq(code))
        .select(Product::as_select())
        .first(conn)
        .optional()
}

/// Every product, in code order (tests and small tools; the jobs page through codes instead).
#[cfg(any(test, feature = "test-support"))]
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<Product>> {
    use haier_products::dsl;
    dsl::haier_products
        .select(Product::as_select())
        .order(dsl::product_code.asc())
        .load(conn)
}

/// Every category name.
pub fn category_names(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    use haier_categories::dsl;
    dsl::haier_categories
        .select(dsl::name)
        .order(dsl::name.asc())
        .load(conn)
}

/// Every brand name.
pub fn brand_names(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    use haier_brands::dsl;
    dsl::haier_brands
        .select(dsl::name)
        .order(dsl::name.asc())
        .load(conn)
}

#[derive(Insertable)]
#[diesel(table_name = haier_categories)]
#[diesel(treat_none_as_default_value = false)]
struct NewCategory<'a> {
    name: &'a str,
    created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = haier_brands)]
#[diesel(treat_none_as_default_value = false)]
struct NewBrand<'a> {
    name: &'a str,
    created_at: NaiveDateTime,
}

/// Adds the category names that are not there yet. Returns how many were added.
pub fn insert_categories(conn: &mut DbConnection, names: &[String], at: NaiveDateTime) -> QueryResult<usize> {
    use haier_categories::dsl;
    let rows: Vec<NewCategory> = names
        .iter()
        .map(|name| NewCategory { name, created_at: at })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    crate::db_run!(conn, |c| diesel::insert_into(dsl::haier_categories)
        .values(&rows)
        .on_conflict(dsl::name)
        .do_nothing()
        .execute(c))
}

/// Adds the brand names that are not there yet. Returns how many were added.
pub fn insert_brands(conn: &mut DbConnection, names: &[String], at: NaiveDateTime) -> QueryResult<usize> {
    use haier_brands::dsl;
    let rows: Vec<NewBrand> = names
        .iter()
        .map(|name| NewBrand { name, created_at: at })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    crate::db_run!(conn, |c| diesel::insert_into(dsl::haier_brands)
        .values(&rows)
        .on_conflict(dsl::name)
        .do_nothing()
        .execute(c))
}

/// Which of `codes` `haier_products` lists as for sale (and not delisted). Locking: a plain read.
pub fn codes_for_sale(conn: &mut DbConnection, codes: &[String]) -> QueryResult<HashSet<String>> {
    use haier_products::dsl;
    let mut found = HashSet::new();
    for chunk in codes.chunks(500) {
        let rows: Vec<String> = dsl::haier_products
            .filter(dsl::product_code.eq_any(chunk))
            .filter(dsl::is_sales.eq(true))
            .filter(dsl::delisted_at.is_null())
            .select(dsl::product_code)
            .load(conn)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Whether `haier_products` lists any product for sale at all (before the first products sync it
/// does not). Locking: a plain read.
pub fn any_for_sale(conn: &mut DbConnection) -> QueryResult<bool> {
    use haier_products::dsl;
    diesel::select(diesel::dsl::exists(
        dsl::haier_products
            .filter(dsl::is_sales.eq(true))
            .filter(dsl::delisted_at.is_null()),
    ))
    .get_result(conn)
}

/// Up to `limit` products for sale that have a supply price, by code, with that price (the
/// demo's sample orders). Locking: a plain read.
pub fn priced_for_sale(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<(String, Option<String>)>> {
    use super::schema::haier_prices;
    use haier_products::dsl;
    dsl::haier_products
        .left_join(haier_prices::table.on(haier_prices::product_code.eq(dsl::product_code)))
        .filter(dsl::is_sales.eq(true))
        .filter(dsl::delisted_at.is_null())
        .filter(haier_prices::supply_price.is_not_null())
        .select((dsl::product_code, haier_prices::supply_price.nullable()))
        .order(dsl::product_code.asc())
        .limit(limit)
        .load(conn)
}

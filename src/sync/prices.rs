//! The prices job: the supply prices of every listed product (or the given codes), 20 codes a
//! call with many calls in flight, paced only by the client's shared limiter. Decimals are
//! stored as the text of Haier's values, never recomputed. A changed supply or invoice price
//! appends a row to `haier_price_changes`; an unchanged price is not rewritten.

use super::pipeline::{self, fetch_batch, CodeSource, Fetched, Written};
use super::{AppContext, Ending, RunOverrides, RunTracker};
use crate::config::SyncJob;
use crate::db::{self, prices, DbConnection};
use crate::haier::{HaierClient, Price, MAX_CODES_PER_CALL};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use diesel::Connection as _;
use futures::StreamExt;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::HashMap;
use std::str::FromStr;

/// What the log says when there is nothing to price.
pub const NO_PRODUCTS_YET: &str = "no products synced yet; run the products job first";

/// Runs the prices job.
pub async fn run(ctx: &AppContext, job: &SyncJob, overrides: &RunOverrides, run: &RunTracker<'_>) -> Ending {
    let source = CodeSource::of(job, overrides, false);
    let total = match source.count(&ctx.db).await {
        Ok(total) => total,
        Err(e) => return Ending::Failed(e.context("Failed to count the products to price")),
    };
    run.set_total(total);
    if total == 0 {
        if matches!(source, CodeSource::Listed { .. }) {
            run.note(NO_PRODUCTS_YET);
        }
        return Ending::Completed;
    }
    run.status("querying prices");
    let client = ctx.client.clone();
    let results = pipeline::batches(source.pages(ctx.db.clone()), MAX_CODES_PER_CALL)
        .map(move |batch| {
            let client = client.clone();
            async move {
                match batch {
                    Ok(codes) => fetch_prices(&client, codes).await,
                    Err(e) => Fetched::Broken(e),
                }
            }
        })
        .buffer_unordered(pipeline::concurrency(ctx, job));
    let db = ctx.db.clone();
    let (ending, written) = pipeline::drive(run, results, move |page: Vec<Price>| {
        let db = db.clone();
        async move {
            db.run(move |conn| write_price_page(conn, page))
                .await
                .context("Failed to write a page of prices")
        }
    })
    .await;
    run.note(format!(
        "{} new, {} changed, {} unchanged; {} price changes recorded",
        written.inserted, written.updated, written.unchanged, written.noted
    ));
    ending
}

/// Queries the prices of one batch of codes. A code missing from the reply fails.
async fn fetch_prices(client: &HaierClient, codes: Vec<String>) -> Fetched<Price> {
    let fetched = fetch_batch(&codes, |batch| async move { client.query_prices(&batch).await }).await;
    let (found, mut failures) = match fetched {
        Ok(result) => result,
        Err(e) => return Fetched::Fatal(e),
    };
    let mut by_code: HashMap<String, Price> = found.into_iter().map(|p| (p.code.clone(), p)).collect();
    let mut rows = Vec::with_capacity(codes.len());
    for code in &codes {
        if failures.iter().any(|(failed, _)| failed == code) {
            continue;
        }
        match by_code.remove(code) {
            Some(price) => rows.push(price),
            None => failures.push((code.clone(), "no price in Haier's reply".to_owned())),
        }
    }
    Fetched::Items { rows, failures }
}

/// Haier's fields of a price, as stored: what the content hash covers.
#[derive(Serialize)]
struct HashedFields<'a> {
    supply_price: Option<&'a str>,
    invoice_price: Option<&'a str>,
    rebate_rate: Option<&'a str>,
    rebate_money: Option<&'a str>,
    stock_rebate_policy: Option<&'a str>,
    reason: Option<&'a str>,
    is_sales: bool,
}

/// The row for a price: each decimal as the text of Haier's value, scale kept (`2399.00`).
pub fn price_row(price: Price, now: NaiveDateTime) -> prices::PriceRow {
    let text = |d: Option<Decimal>| d.map(|d| d.to_string());
    let mut row = prices::PriceRow {
        product_code: price.code,
        supply_price: text(price.supply_price),
        invoice_price: text(price.invoice_price),
        rebate_rate: text(price.rebate_rate),
        rebate_money: text(price.rebate_money),
        stock_rebate_policy: price.stock_rebate_policy,
        reason: price.reason,
        is_sales: price.is_sales,
        content_hash: String::new(),
        updated_at: now,
    };
    row.content_hash = pipeline::content_hash(&HashedFields {
        supply_price: row.supply_price.as_deref(),
        invoice_price: row.invoice_price.as_deref(),
        rebate_rate: row.rebate_rate.as_deref(),
        rebate_money: row.rebate_money.as_deref(),
        stock_rebate_policy: row.stock_rebate_policy.as_deref(),
        reason: row.reason.as_deref(),
        is_sales: row.is_sales,
    });
    row
}

/// Whether two stored decimals differ in value (`2399.0` and `2399.00` do not).
fn amount_differs(old: Option<&str>, new: Option<&str>) -> bool {
    match (old, new) {
        (Some(a), Some(b)) => match (Decimal::from_str(a), Decimal::from_str(b)) {
            (Ok(x), Ok(y)) => x != y,
            _ => a != b,
        },
        (None, None) => false,
        _ => true,
    }
}

/// Writes one page: new and changed prices, and a price-change row for each product whose supply
/// or invoice price moved, in one transaction. Unchanged prices are not written.
fn write_price_page(conn: &mut DbConnection, page: Vec<Price>) -> anyhow::Result<Written> {
    let now = db::now_utc();
    let codes: Vec<String> = page.iter().map(|p| p.code.clone()).collect();
    let stored: HashMap<String, prices::StoredPrice> = prices::find_stored(conn, &codes)?
        .into_iter()
        .map(|s| (s.product_code.clone(), s))
        .collect();
    let mut written = Written::default();
    let mut rows: HashMap<String, prices::PriceRow> = HashMap::with_capacity(page.len());
    let mut changes = Vec::new();
    for price in page {
        let row = price_row(price, now);
        match stored.get(&row.product_code) {
            None => written.inserted += 1,
            Some(s) if s.content_hash == row.content_hash => {
                written.unchanged += 1;
                continue;
            }
            Some(s) => {
                written.updated += 1;
                let supply_moved = amount_differs(s.supply_price.as_deref(), row.supply_price.as_deref());
                let invoice_moved = amount_differs(s.invoice_price.as_deref(), row.invoice_price.as_deref());
                if supply_moved || invoice_moved {
                    changes.push(prices::NewPriceChange {
                        product_code: row.product_code.clone(),
                        old_supply_price: s.supply_price.clone(),
                        new_supply_price: row.supply_price.clone(),
                        old_invoice_price: s.invoice_price.clone(),
                        new_invoice_price: row.invoice_price.clone(),
                        changed_at: now,
                    });
                }
            }
        }
        rows.insert(row.product_code.clone(), row);
    }
    written.noted = changes.len() as u64;
    let rows: Vec<prices::PriceRow> = rows.into_values().collect();
    if rows.is_empty() {
        return Ok(written);
    }
    conn.transaction(|conn| {
        prices::upsert_prices(conn, &rows)?;
        prices::insert_price_changes(conn, &changes)?;
        diesel::QueryResult::Ok(())
    })?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_compare_by_value_not_text() {
        assert!(!amount_differs(Some("2399.0"), Some("2399.00")));
        assert!(amount_differs(Some("2399.00"), Some("2399.01")));
        assert!(amount_differs(None, Some("1.00")));
        assert!(amount_differs(Some("1.00"), None));
        assert!(!amount_differs(None, None));
    }

    #[test]
    fn a_price_keeps_haiers_scale() {
        let price = Price {
            code: "P1".into(),
            supply_price: Some(Decimal::from_str("2399.00").unwrap()),
            invoice_price: Some(Decimal::from_str("2277.03").unwrap()),
            rebate_rate: Some(Decimal::from_str("0.0300").unwrap()),
            rebate_money: Some(Decimal::from_str("50.00").unwrap()),
            stock_rebate_policy: Some("COM".into()),
            reason: None,
            is_sales: true,
        };
        let row = price_row(price.clone(), db::now_utc());
        assert_eq!(row.supply_price.as_deref(), Some("2399.00"));
        assert_eq!(row.rebate_rate.as_deref(), Some("0.0300"));
        assert_eq!(row.stock_rebate_policy.as_deref(), Some("COM"));
        let again = price_row(price, db::now_utc());
        assert_eq!(row.content_hash, again.content_hash, "the hash ignores the time");
    }
}

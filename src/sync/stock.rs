//! The stock job: one call per product and county for the job's `county_codes`, as many in flight
//! as the quota allows. Covers the listed products that are for sale (or the given codes, less
//! those stored as not for sale). Each row stores the total over the warehouses, the warehouses
//! as JSON, and the warehouse to show.

use super::pipeline::{self, CodeSource, Fetched, Written};
use super::{AppContext, Ending, RunOverrides, RunTracker, DEFAULT_COUNTY_CODE};
use crate::config::SyncJob;
use crate::db::{self, products, stocks};
use crate::haier::{HaierClient, StockLevel};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use futures::StreamExt;
use std::sync::Arc;

/// Runs the stock job.
pub async fn run(ctx: &AppContext, job: &SyncJob, overrides: &RunOverrides, run: &RunTracker<'_>) -> Ending {
    let counties: Arc<Vec<String>> = Arc::new(county_codes(job, overrides));
    let mut source = CodeSource::of(job, overrides, true);
    if let CodeSource::Given(codes) = &mut source {
        match skip_unsellable(ctx, codes, run).await {
            Ok(()) => {}
            Err(e) => return Ending::Failed(e),
        }
    }
    let products = match source.count(&ctx.db).await {
        Ok(n) => n,
        Err(e) => return Ending::Failed(e.context("Failed to count the products to query")),
    };
    run.set_total(products * counties.len() as u64);
    if products == 0 {
        if matches!(source, CodeSource::Listed { .. }) {
            run.note("no products for sale synced yet; run the products job first");
        }
        return Ending::Completed;
    }
    run.status("querying stock");
    let client = ctx.client.clone();
    let pairs = {
        let counties = Arc::clone(&counties);
        source.pages(ctx.db.clone()).flat_map(move |page| {
            let items: Vec<anyhow::Result<(String, String)>> = match page {
                Ok(codes) => codes
                    .iter()
                    .flat_map(|code| {
                        counties
                            .iter()
                            .map(move |county| Ok((code.clone(), county.clone())))
                    })
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(items)
        })
    };
    let results = pairs
        .map(move |pair| {
            let client = client.clone();
            async move {
                match pair {
                    Ok((code, county)) => fetch_stock(&client, code, county).await,
                    Err(e) => Fetched::Broken(e),
                }
            }
        })
        .buffer_unordered(pipeline::concurrency(ctx, job));
    let db = ctx.db.clone();
    let (ending, written) = pipeline::drive(run, results, move |page: Vec<StockLevel>| {
        let db = db.clone();
        async move {
            let now = db::now_utc();
            let rows: Vec<stocks::StockRow> = page.iter().map(|level| stock_row(level, now)).collect();
            let n = db
                .run(move |conn| Ok(stocks::upsert_stocks(conn, &rows)?))
                .await
                .context("Failed to write a page of stock levels")?;
            Ok(Written {
                updated: n as u64,
                ..Written::default()
            })
        }
    })
    .await;
    run.note(format!(
        "{} stock levels written for {} {}",
        written.updated,
        counties.len(),
        if counties.len() == 1 { "county" } else { "counties" }
    ));
    ending
}

/// `--county-code`, else the job's `county_codes` (already defaulted from `[defaults]`), else
/// [`DEFAULT_COUNTY_CODE`]. Repeats are left out.
pub fn county_codes(job: &SyncJob, overrides: &RunOverrides) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    let given = overrides
        .county_codes
        .as_ref()
        .filter(|c| !c.is_empty())
        .unwrap_or(&job.county_codes);
    for code in given {
        let code = code.trim();
        if !code.is_empty() && !codes.iter().any(|c| c == code) {
            codes.push(code.to_owned());
        }
    }
    if codes.is_empty() {
        codes.push(DEFAULT_COUNTY_CODE.to_owned());
    }
    codes
}

/// Leaves out of the given codes those stored as not for sale or delisted, and notes them.
async fn skip_unsellable(
    ctx: &AppContext,
    codes: &mut Vec<String>,
    run: &RunTracker<'_>,
) -> anyhow::Result<()> {
    let asked = codes.clone();
    let unsellable = ctx
        .db
        .run(move |c| Ok(products::unsellable_among(c, &asked)?))
        .await
        .context("Failed to read which products are for sale")?;
    if !unsellable.is_empty() {
        codes.retain(|c| !unsellable.contains(c));
        run.note(format!("skipped (not for sale): {}", unsellable.join(", ")));
    }
    Ok(())
}

async fn fetch_stock(client: &HaierClient, code: String, county: String) -> Fetched<StockLevel> {
    match pipeline::call_haier(|| client.query_stock(&code, &county)).await {
        Ok(level) => Fetched::rows(vec![level]),
        Err(e) if e.is_fatal_for_run() => Fetched::Fatal(e),
        Err(e) => Fetched::failed(format!("{code}@{county}"), e.to_string()),
    }
}

/// The row for one product and county.
pub fn stock_row(level: &StockLevel, now: NaiveDateTime) -> stocks::StockRow {
    let shown = level.shown_warehouse();
    stocks::StockRow {
        product_code: level.product_code.clone(),
        county_code: level.county_code.clone(),
        stock: level.total(),
        warehouses: serde_json::to_string(&level.warehouses).unwrap_or_else(|_| "[]".to_owned()),
        sec_code: shown.map(|w| w.sec_code.clone()),
        warehouse_grade: shown.map(|w| w.grade.clone()),
        updated_at: now,
    }
}

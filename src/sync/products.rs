//! The products job: lists every purchasable product (or queries the given codes, 20 a call),
//! upserts `haier_products` with their categories and brands, and, after a complete listing,
//! marks products Haier no longer lists as delisted.
//!
//! Incremental: a product whose Haier fields hash the same as the stored row (and that is
//! listed, with the requested local category and brand) is not rewritten. So `last_seen_at` is
//! the time a listing last inserted, changed or re-listed the row, not the time of the last
//! listing that contained it; an unchanged catalog re-run does no row writes at all.

use super::pipeline::{self, fetch_batch, given_codes, Fetched, Written};
use super::{AppContext, Ending, RunOverrides, RunTracker};
use crate::config::SyncJob;
use crate::db::{self, products, DbConnection};
use crate::haier::{HaierClient, Product, RawHash, MAX_CODES_PER_CALL};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use diesel::Connection as _;
use futures::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Runs the products job.
pub async fn run(ctx: &AppContext, job: &SyncJob, overrides: &RunOverrides, run: &RunTracker<'_>) -> Ending {
    let labels = LocalLabels {
        category: overrides.local_category.clone(),
        brand: overrides.local_brand.clone(),
    };
    match given_codes(job, overrides) {
        None => super::listing::sync_full_listing(ctx, labels, run).await,
        Some(codes) => sync_given_codes(ctx, job, labels, codes, run).await,
    }
}

/// The shop's own category and brand, set on every product the run syncs when given.
#[derive(Debug, Clone, Default)]
pub(super) struct LocalLabels {
    pub(super) category: Option<String>,
    pub(super) brand: Option<String>,
}

async fn sync_given_codes(
    ctx: &AppContext,
    job: &SyncJob,
    labels: LocalLabels,
    codes: Vec<String>,
    run: &RunTracker<'_>,
) -> Ending {
    run.set_total(codes.len() as u64);
    run.status("querying products");
    let client = ctx.client.clone();
    let batches: Vec<Vec<String>> = codes.chunks(MAX_CODES_PER_CALL).map(<[String]>::to_vec).collect();
    let results = futures::stream::iter(batches)
        .map(move |batch| {
            let client = client.clone();
            async move { fetch_products(&client, batch).await }
        })
        .buffer_unordered(pipeline::concurrency(ctx, job));
    let (ending, written) = write_products(ctx, labels, run, results).await;
    note_written(run, written);
    ending
}

/// Queries one batch of codes. A code missing from the reply, or that Haier does not know (no
/// model and not for sale, e.g. `产品不存在`), fails.
async fn fetch_products(client: &HaierClient, codes: Vec<String>) -> Fetched<Product> {
    let fetched = fetch_batch(&codes, |batch| async move {
        client.query_products(Some(&batch)).await
    })
    .await;
    let (found, mut failures) = match fetched {
        Ok(result) => result,
        Err(e) => return Fetched::Fatal(e),
    };
    let mut by_code: HashMap<String, Product> = found.into_iter().map(|p| (p.code.clone(), p)).collect();
    let refused: HashSet<&String> = failures.iter().map(|(code, _)| code).collect();
    let mut rows = Vec::with_capacity(codes.len());
    let mut missing = Vec::new();
    for code in &codes {
        if refused.contains(code) {
            continue;
        }
        match by_code.remove(code) {
            None => missing.push((code.clone(), "not in Haier's reply".to_owned())),
            Some(p) if p.model.trim().is_empty() && !p.is_sales => {
                let reason = p.no_sales_reason.unwrap_or_else(|| "unknown to Haier".to_owned());
                missing.push((code.clone(), reason));
            }
            Some(p) => rows.push(p),
        }
    }
    failures.extend(missing);
    Fetched::Items { rows, failures }
}

/// Writes pages of products as they come (see [`pipeline::drive`]).
async fn write_products(
    ctx: &AppContext,
    labels: LocalLabels,
    run: &RunTracker<'_>,
    results: impl futures::Stream<Item = Fetched<Product>>,
) -> (Ending, Written) {
    let names = ctx
        .db
        .run(|c| Ok((products::category_names(c)?, products::brand_names(c)?)))
        .await;
    let (categories, brands) = match names {
        Ok(names) => names,
        Err(e) => return (Ending::Failed(e), Written::default()),
    };
    let mut known_categories: HashSet<String> = categories.into_iter().collect();
    let mut known_brands: HashSet<String> = brands.into_iter().collect();
    let db = ctx.db.clone();
    pipeline::drive(run, results, move |page: Vec<Product>| {
        let new_categories = new_names(
            &mut known_categories,
            page.iter().map(|p| p.group_name.as_deref()),
        );
        let new_brands = new_names(&mut known_brands, page.iter().map(|p| p.brand_name.as_deref()));
        let labels = labels.clone();
        let db = db.clone();
        async move {
            db.run(move |conn| write_product_page(conn, page, &labels, &new_categories, &new_brands))
                .await
                .context("Failed to write a page of products")
        }
    })
    .await
}

/// The names not seen before, which are then taken as known.
pub(super) fn new_names<'a>(
    known: &mut HashSet<String>,
    names: impl Iterator<Item = Option<&'a str>>,
) -> Vec<String> {
    let mut fresh = Vec::new();
    for name in names.flatten() {
        let name = name.trim();
        if !name.is_empty() && !known.contains(name) {
            known.insert(name.to_owned());
            fresh.push(name.to_owned());
        }
    }
    fresh
}

/// Haier's fields of a product, in a fixed order: what the content hash covers.
#[derive(Serialize)]
struct HashedFields<'a> {
    code: &'a str,
    model: &'a str,
    group_name: Option<&'a str>,
    brand_name: Option<&'a str>,
    image_url: Option<&'a str>,
    leaflet_urls: &'a [String],
    is_sales: bool,
    no_sales_reason: Option<&'a str>,
}

/// The content hash of a product as Haier described it.
pub fn product_hash(p: &Product) -> String {
    pipeline::content_hash(&HashedFields {
        code: &p.code,
        model: &p.model,
        group_name: p.group_name.as_deref(),
        brand_name: p.brand_name.as_deref(),
        image_url: p.image_url.as_deref(),
        leaflet_urls: &p.leaflet_urls,
        is_sales: p.is_sales,
        no_sales_reason: p.no_sales_reason.as_deref(),
    })
}

/// Writes one page: new categories and brands, then the products that are new, changed,
/// re-listed or relabelled, in one transaction. Unchanged products are not written.
fn write_product_page(
    conn: &mut DbConnection,
    page: Vec<Product>,
    labels: &LocalLabels,
    new_categories: &[String],
    new_brands: &[String],
) -> anyhow::Result<Written> {
    let now = db::now_utc();
    let codes: Vec<String> = page.iter().map(|p| p.code.clone()).collect();
    let stored: HashMap<String, products::StoredProduct> = products::find_stored(conn, &codes)?
        .into_iter()
        .map(|s| (s.product_code.clone(), s))
        .collect();
    let mut written = Written::default();
    let mut rows: HashMap<String, products::ProductRow> = HashMap::with_capacity(page.len());
    for product in page {
        let hash = product_hash(&product);
        let previous = stored.get(&product.code);
        let row = product_row(product, hash, None, labels, previous, now);
        match previous {
            None => written.inserted += 1,
            Some(s) if needs_write(s, &row) => written.updated += 1,
            Some(_) => {
                written.unchanged += 1;
                continue;
            }
        }
        rows.insert(row.product_code.clone(), row);
    }
    let rows: Vec<products::ProductRow> = rows.into_values().collect();
    if rows.is_empty() && new_categories.is_empty() && new_brands.is_empty() {
        return Ok(written);
    }
    conn.transaction(|conn| {
        products::insert_categories(conn, new_categories, now)?;
        products::insert_brands(conn, new_brands, now)?;
        products::upsert_products(conn, &rows)?;
        diesel::QueryResult::Ok(())
    })?;
    Ok(written)
}

pub(super) fn needs_write(stored: &products::StoredProduct, row: &products::ProductRow) -> bool {
    stored.content_hash != row.content_hash
        || stored.delisted_at.is_some()
        || stored.local_category != row.local_category
        || stored.local_brand != row.local_brand
}

pub(super) fn product_row(
    p: Product,
    content_hash: String,
    raw_hash: Option<RawHash>,
    labels: &LocalLabels,
    stored: Option<&products::StoredProduct>,
    now: NaiveDateTime,
) -> products::ProductRow {
    let leaflet_urls = serde_json::to_string(&p.leaflet_urls).unwrap_or_else(|_| "[]".to_owned());
    products::ProductRow {
        product_code: p.code,
        model: p.model,
        category: p
            .group_name
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        brand: p
            .brand_name
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        image_url: p.image_url,
        leaflet_urls,
        is_sales: p.is_sales,
        no_sales_reason: p.no_sales_reason,
        local_category: labels
            .category
            .clone()
            .or_else(|| stored.and_then(|s| s.local_category.clone())),
        local_brand: labels
            .brand
            .clone()
            .or_else(|| stored.and_then(|s| s.local_brand.clone())),
        content_hash,
        first_seen_at: now,
        last_seen_at: now,
        updated_at: now,
        delisted_at: None,
        raw_hash: raw_hash.map(|h| h.to_bytes().to_vec()),
    }
}

pub(super) fn note_written(run: &RunTracker<'_>, written: Written) {
    run.note(format!(
        "{} new, {} changed, {} unchanged",
        written.inserted, written.updated, written.unchanged
    ));
}

//! The products job's full listing: Haier's whole catalog in one call, decoded as it arrives
//! (`HaierClient::stream_listing`) and written as it is read. The stored rows' hashes are read
//! once, before the first item. An item whose raw bytes hash as the stored row's `raw_hash` (a
//! listed row the run does not relabel) is not even decoded: it is unchanged. Every other item
//! is decoded and compared with the stored rows in memory, and only the new, changed, re-listed
//! or relabelled ones are written, many rows to a statement; an unchanged one whose bytes
//! changed gets only its `raw_hash` rewritten. After a complete listing, the listed products it
//! did not contain are marked delisted.
//!
//! Memory stays flat in the listing's size (batches of items in flight, one write batch) but
//! for what the comparison needs: the stored hashes and the codes seen.

use super::pipeline::{self, Written};
use super::products::{new_names, note_written, product_hash, product_row, LocalLabels};
use super::{AppContext, Ending, RunTracker};
use crate::db::{self, products, DbConnection};
use crate::haier::{KnownItems, ListedItem, RawHash};
use anyhow::Context as _;
use diesel::Connection as _;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Rows written per transaction (in statements of up to
/// [`products::UPSERT_ROWS_PER_STATEMENT`] rows): a few tens of milliseconds of write lock.
pub(crate) const WRITE_ROWS: usize = 8_192;
/// Batches of listed items waiting for the writer.
const BATCHES_IN_FLIGHT: usize = 8;
/// Codes per delisting statement.
const DELIST_CODES: usize = 5_000;

/// What the writer keeps across a listing.
struct Listing {
    /// The stored rows, read once before the first item, each with whether the listing
    /// contained it.
    stored: Vec<Stored>,
    /// Where each code's row is in `stored`.
    by_code: HashMap<String, u32>,
    /// The codes the listing contained that had no row (a repeated code, or an attempt sent
    /// again, counts once).
    new_codes: HashSet<String>,
    /// How many distinct codes the listing contained.
    seen: u64,
    known_categories: HashSet<String>,
    known_brands: HashSet<String>,
    written: Written,
}

impl Listing {
    /// The raw hashes of the stored rows that an item with the same bytes leaves unchanged
    /// (listed, and not to be relabelled by this run), each with its row's place.
    fn known_items(&self, labels: &LocalLabels) -> KnownItems {
        self.stored
            .iter()
            .enumerate()
            .filter(|(_, s)| s.row.delisted_at.is_none() && !relabels(labels, &s.row))
            .filter_map(|(i, s)| {
                let hash = RawHash::from_bytes(s.row.raw_hash.as_deref()?)?;
                Some((hash, u32::try_from(i).ok()?))
            })
            .collect()
    }
}

/// Lists every purchasable product and writes what changed; delists what the listing left out.
pub(super) async fn sync_full_listing(ctx: &AppContext, labels: LocalLabels, run: &RunTracker<'_>) -> Ending {
    run.status("listing purchasable products");
    let state = match read_stored(ctx).await {
        Ok(state) => state,
        Err(e) => return Ending::Failed(e),
    };
    let known = Arc::new(state.known_items(&labels));
    let (sink, batches) = mpsc::channel::<Vec<ListedItem>>(BATCHES_IN_FLIGHT);
    let client = ctx.client.clone();
    let listing = async move {
        let result = pipeline::call_haier(|| client.stream_listing(sink.clone(), Arc::clone(&known))).await;
        drop(sink);
        result
    };
    let writing = write_listing(ctx, state, &labels, run, batches);
    let (listed, written) = tokio::select! {
        () = run.cancelled() => return Ending::Stopped,
        pair = async { tokio::join!(listing, writing) } => pair,
    };
    let state = match written {
        Ok(state) => state,
        Err(e) => return Ending::Failed(e),
    };
    note_written(run, state.written);
    if let Err(e) = listed {
        return Ending::Failed(anyhow::Error::new(e).context("Failed to list the purchasable products"));
    }
    match delist_missing(ctx, &state, run).await {
        Ok(()) => Ending::Completed,
        Err(e) => Ending::Failed(e),
    }
}

/// Reads what the listing is compared with: every stored row's hashes, the category and brand
/// names.
async fn read_stored(ctx: &AppContext) -> anyhow::Result<Listing> {
    let (stored, categories, brands) = ctx
        .db
        .run(|c| {
            Ok((
                products::stored_all(c)?,
                products::category_names(c)?,
                products::brand_names(c)?,
            ))
        })
        .await
        .context("Failed to read the stored products")?;
    let by_code = stored
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((s.product_code.clone(), u32::try_from(i).ok()?)))
        .collect();
    Ok(Listing {
        stored: stored
            .into_iter()
            .map(|row| Stored { row, seen: false })
            .collect(),
        by_code,
        new_codes: HashSet::new(),
        seen: 0,
        known_categories: categories.into_iter().collect(),
        known_brands: brands.into_iter().collect(),
        written: Written::default(),
    })
}

/// Takes the listed items as they come and writes the products that changed, [`WRITE_ROWS`]
/// to a transaction. Ends when the listing ends (its sender is dropped).
async fn write_listing(
    ctx: &AppContext,
    mut state: Listing,
    labels: &LocalLabels,
    run: &RunTracker<'_>,
    mut batches: mpsc::Receiver<Vec<ListedItem>>,
) -> anyhow::Result<Listing> {
    let mut pending = Pending::default();
    let now = db::now_utc();
    while let Some(batch) = batches.recv().await {
        let mut fresh = 0u64;
        for item in batch {
            let (product, raw_hash) = match item {
                ListedItem::Known(index) => {
                    let entry = usize::try_from(index)
                        .ok()
                        .and_then(|i| state.stored.get_mut(i))
                        .context("The listing named a stored product that was not read")?;
                    // Seen before in this listing (a repeat, or an attempt sent again): skipped.
                    if !entry.seen {
                        entry.seen = true;
                        fresh += 1;
                        state.written.unchanged += 1;
                    }
                    continue;
                }
                ListedItem::Product { product, raw_hash } => (product, raw_hash),
            };
            // Seen before in this listing (a repeat, or an attempt sent again): skipped.
            let previous = match state.by_code.get(&product.code) {
                Some(&i) => {
                    let entry = &mut state.stored[i as usize];
                    if entry.seen {
                        continue;
                    }
                    entry.seen = true;
                    Some(&entry.row)
                }
                None if state.new_codes.contains(&product.code) => continue,
                None => {
                    state.new_codes.insert(product.code.clone());
                    None
                }
            };
            fresh += 1;
            pending.new_categories.extend(new_names(
                &mut state.known_categories,
                std::iter::once(product.group_name.as_deref()),
            ));
            pending.new_brands.extend(new_names(
                &mut state.known_brands,
                std::iter::once(product.brand_name.as_deref()),
            ));
            let hash = product_hash(&product);
            match previous {
                None => state.written.inserted += 1,
                Some(s) if needs_write_with(s, &hash, labels) => state.written.updated += 1,
                Some(s) => {
                    state.written.unchanged += 1;
                    let bytes = raw_hash.to_bytes();
                    if s.raw_hash.as_deref() != Some(&bytes[..]) {
                        pending.raw_hashes.push((product.code, bytes.to_vec()));
                    }
                    continue;
                }
            }
            pending
                .rows
                .push(product_row(product, hash, Some(raw_hash), labels, previous, now));
        }
        state.seen += fresh;
        pending.items += fresh;
        run.set_total(state.seen);
        run.answered(fresh);
        if pending.rows.len() + pending.raw_hashes.len() >= WRITE_ROWS {
            pending.write(ctx, run).await?;
        }
    }
    pending.write(ctx, run).await?;
    pending.finish(run).await?;
    Ok(state)
}

/// A stored row and whether the listing contained its code.
struct Stored {
    row: products::StoredProduct,
    seen: bool,
}

/// Whether a listed product whose content hash is `hash` must be written over its stored row
/// `stored`: what [`needs_write`](super::products::needs_write) says of the row
/// [`product_row`] would make, without making it.
fn needs_write_with(stored: &products::StoredProduct, hash: &str, labels: &LocalLabels) -> bool {
    stored.content_hash != hash || stored.delisted_at.is_some() || relabels(labels, stored)
}

/// Whether the run's labels differ from the stored row's (a label not given keeps the row's).
fn relabels(labels: &LocalLabels, stored: &products::StoredProduct) -> bool {
    let relabelled = |label: &Option<String>, kept: &Option<String>| label.is_some() && label != kept;
    relabelled(&labels.category, &stored.local_category) || relabelled(&labels.brand, &stored.local_brand)
}

/// What is read but not written yet, and the write under way.
#[derive(Default)]
struct Pending {
    rows: Vec<products::ProductRow>,
    /// Unchanged products whose item bytes changed: their new raw hash, by code.
    raw_hashes: Vec<(String, Vec<u8>)>,
    new_categories: Vec<String>,
    new_brands: Vec<String>,
    /// Listed products read since the last write (written or unchanged): successes once written.
    items: u64,
    /// The write started last (on the blocking pool, while the next rows are read) and the
    /// items it makes successes.
    in_flight: Option<(tokio::task::JoinHandle<anyhow::Result<()>>, u64)>,
}

impl Pending {
    /// Starts writing what is pending, once the previous write has ended: one write at a time,
    /// in order, while the listing goes on being read.
    async fn write(&mut self, ctx: &AppContext, run: &RunTracker<'_>) -> anyhow::Result<()> {
        self.finish(run).await?;
        let rows = std::mem::take(&mut self.rows);
        let raw_hashes = std::mem::take(&mut self.raw_hashes);
        let categories = std::mem::take(&mut self.new_categories);
        let brands = std::mem::take(&mut self.new_brands);
        let items = std::mem::take(&mut self.items);
        if rows.is_empty() && raw_hashes.is_empty() && categories.is_empty() && brands.is_empty() {
            run.succeed(items);
            run.checkpoint().await;
            return Ok(());
        }
        let db = ctx.db.clone();
        let write = tokio::spawn(async move {
            db.run(move |conn| write_rows(conn, &rows, &raw_hashes, &categories, &brands))
                .await
                .context("Failed to write a batch of products")
        });
        self.in_flight = Some((write, items));
        Ok(())
    }

    /// Waits for the write under way, if any, and counts its items.
    async fn finish(&mut self, run: &RunTracker<'_>) -> anyhow::Result<()> {
        let Some((write, items)) = self.in_flight.take() else {
            return Ok(());
        };
        write.await.context("Failed to join a write of products")??;
        run.succeed(items);
        run.checkpoint().await;
        Ok(())
    }
}

/// New categories and brands, then the rows and the raw hashes, in one transaction.
fn write_rows(
    conn: &mut DbConnection,
    rows: &[products::ProductRow],
    raw_hashes: &[(String, Vec<u8>)],
    categories: &[String],
    brands: &[String],
) -> anyhow::Result<()> {
    let now = db::now_utc();
    conn.transaction(|conn| {
        products::insert_categories(conn, categories, now)?;
        products::insert_brands(conn, brands, now)?;
        products::upsert_products(conn, rows)?;
        products::set_raw_hashes(conn, raw_hashes)?;
        diesel::QueryResult::Ok(())
    })?;
    Ok(())
}

/// After a complete listing: marks the stored listed products it did not contain as delisted.
/// An empty listing delists nothing (more likely a fault at Haier's than an empty catalog).
async fn delist_missing(ctx: &AppContext, state: &Listing, run: &RunTracker<'_>) -> anyhow::Result<()> {
    let missing: Vec<String> = state
        .stored
        .iter()
        .filter(|s| s.row.delisted_at.is_none() && !s.seen)
        .map(|s| s.row.product_code.clone())
        .collect();
    if state.seen == 0 {
        if !missing.is_empty() {
            run.note("Haier's listing was empty; nothing delisted");
        }
        return Ok(());
    }
    if missing.is_empty() {
        return Ok(());
    }
    run.status("delisting products Haier no longer lists");
    let now = db::now_utc();
    let delisted = ctx
        .db
        .run(move |c| {
            let mut delisted = 0;
            for chunk in missing.chunks(DELIST_CODES) {
                delisted += products::delist(c, chunk, now)?;
            }
            Ok(delisted)
        })
        .await
        .context("Failed to mark delisted products")?;
    if delisted > 0 {
        run.note(format!("{delisted} delisted"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hash: &str, category: Option<&str>, delisted: bool) -> products::StoredProduct {
        products::StoredProduct {
            product_code: "A1".to_owned(),
            content_hash: hash.to_owned(),
            local_category: category.map(str::to_owned),
            local_brand: None,
            is_sales: true,
            delisted_at: delisted.then(db::now_utc),
            raw_hash: None,
        }
    }

    #[test]
    fn a_listed_product_is_written_when_its_hash_its_listing_or_a_given_label_differs() {
        let none = LocalLabels::default();
        let shop = LocalLabels {
            category: Some("Shop".to_owned()),
            brand: None,
        };
        assert!(!needs_write_with(&stored("h", None, false), "h", &none));
        // No label given: the stored one is kept, so it is no reason to write.
        assert!(!needs_write_with(&stored("h", Some("Old"), false), "h", &none));
        assert!(!needs_write_with(&stored("h", Some("Shop"), false), "h", &shop));
        assert!(needs_write_with(&stored("h", Some("Old"), false), "h", &shop));
        assert!(needs_write_with(&stored("h", None, false), "h", &shop));
        assert!(needs_write_with(&stored("h", None, false), "other", &none));
        assert!(needs_write_with(&stored("h", None, true), "h", &none));
    }
}

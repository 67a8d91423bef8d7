//! The products job's full listing: Haier's whole catalog in one call, decoded as it arrives
//! (`HaierClient::stream_listing`) and written as it is read. Before the first item, one narrow
//! read takes the raw hashes of the listed rows (and the codes of those that have none). An
//! item whose raw bytes hash as a listed row's `raw_hash` (one the run does not relabel) is not
//! even decoded: it is unchanged. Every other item is decoded, its stored row (if any) is read
//! by code with the others of its batch, and only the new, changed, re-listed or relabelled
//! ones are written, many rows to a statement; an unchanged one whose bytes changed gets only
//! its `raw_hash` rewritten. After a complete listing, the listed products it did not contain
//! are marked delisted.
//!
//! Memory stays flat in the listing's size (batches of items in flight, one write batch) but
//! for what the comparison needs: 16 bytes and a mark per listed row, and 16 bytes per code
//! decoded.

use super::pipeline::{self, Written};
use super::products::{new_names, note_written, product_hash, product_row, LocalLabels};
use super::{AppContext, Ending, RunTracker};
use crate::db::{self, products, DbConnection};
use crate::haier::{KnownItems, ListedItem, Product, RawHash};
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
/// Codes per delisting statement, and raw hashes per delisting-by-hash statement (each of
/// those reads the table once).
const DELIST_CODES: usize = 5_000;
/// Codes per read of stored rows.
const LOOKUP_CODES: usize = 1_000;

/// What the writer keeps across a listing.
struct Listing {
    /// The raw hashes of the listed rows an item with the same bytes leaves unchanged; an
    /// item's [`ListedItem::Known`] index is a place in this list.
    known: Vec<RawHash>,
    /// Whether the listing contained the row of each of `known`.
    known_seen: Vec<bool>,
    /// The listed rows no raw hash stands for (none kept yet, or to be relabelled), by code,
    /// with whether the listing contained them.
    unhashed: HashMap<String, bool>,
    /// Whether the table had any row, listed or not, before the listing: if not, no decoded
    /// item has a stored row to read.
    had_rows: bool,
    /// The codes decoded so far (a hash of each): a code listed again, or an attempt sent
    /// again, counts once.
    decoded: HashSet<u128>,
    /// How many distinct codes the listing contained.
    seen: u64,
    known_categories: HashSet<String>,
    known_brands: HashSet<String>,
    written: Written,
}

impl Listing {
    /// The raw hashes an item's bytes are compared with, each with its place in `known`.
    fn known_items(&self) -> KnownItems {
        self.known
            .iter()
            .enumerate()
            .filter_map(|(i, hash)| Some((*hash, u32::try_from(i).ok()?)))
            .collect()
    }

    /// Marks the stored row `stored` as contained in the listing; false if it already was (a
    /// repeat).
    fn mark_seen(&mut self, stored: &products::StoredProduct, index_of: &KnownItems) -> bool {
        if stored.delisted_at.is_some() {
            return true;
        }
        let known = stored
            .raw_hash
            .as_deref()
            .and_then(RawHash::from_bytes)
            .and_then(|hash| index_of.get(&hash))
            .and_then(|&i| self.known_seen.get_mut(i as usize));
        let mark = match known {
            Some(mark) => mark,
            None => match self.unhashed.get_mut(&stored.product_code) {
                Some(mark) => mark,
                // Listed after the read (another run by code): nothing to delist.
                None => return true,
            },
        };
        !std::mem::replace(mark, true)
    }
}

/// Lists every purchasable product and writes what changed; delists what the listing left out.
pub(super) async fn sync_full_listing(ctx: &AppContext, labels: LocalLabels, run: &RunTracker<'_>) -> Ending {
    run.status("listing purchasable products");
    let state = match read_stored(ctx, &labels).await {
        Ok(state) => state,
        Err(e) => return Ending::Failed(e),
    };
    let known = Arc::new(state.known_items());
    let (sink, batches) = mpsc::channel::<Vec<ListedItem>>(BATCHES_IN_FLIGHT);
    let client = ctx.client.clone();
    let index_of = Arc::clone(&known);
    let listing = async move {
        let result = pipeline::call_haier(|| client.stream_listing(sink.clone(), Arc::clone(&known))).await;
        drop(sink);
        result
    };
    let writing = write_listing(ctx, state, &index_of, &labels, run, batches);
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

/// Reads what the listing is compared with: the listed rows' raw hashes (those the run's
/// labels leave as they are) and the codes of the other listed rows, whether there is any row,
/// and the category and brand names.
async fn read_stored(ctx: &AppContext, labels: &LocalLabels) -> anyhow::Result<Listing> {
    let labels = labels.clone();
    let (known, unhashed, had_rows, categories, brands) = ctx
        .db
        .run(move |c| {
            let (known, unhashed) = if labels.category.is_none() && labels.brand.is_none() {
                let known = products::listed_raw_hashes(c)?;
                (known, products::listed_codes_without_raw_hash(c)?)
            } else {
                split_by_labels(products::listed_labels(c)?, &labels)
            };
            Ok((
                known,
                unhashed,
                products::any_product(c)?,
                products::category_names(c)?,
                products::brand_names(c)?,
            ))
        })
        .await
        .context("Failed to read the stored products")?;
    // A stored hash of another length (none is written) stands for no item, and its row is
    // not delisted by this listing.
    let known: Vec<RawHash> = known.iter().filter_map(|h| RawHash::from_bytes(h)).collect();
    Ok(Listing {
        known_seen: vec![false; known.len()],
        known,
        unhashed: unhashed.into_iter().map(|code| (code, false)).collect(),
        had_rows,
        decoded: HashSet::new(),
        seen: 0,
        known_categories: categories.into_iter().collect(),
        known_brands: brands.into_iter().collect(),
        written: Written::default(),
    })
}

/// For a run that sets labels: the raw hashes of the listed rows it leaves unlabelled as they
/// are, and the codes of the others (no raw hash, or to be relabelled).
fn split_by_labels(rows: Vec<products::ListedLabels>, labels: &LocalLabels) -> (Vec<Vec<u8>>, Vec<String>) {
    let mut known = Vec::new();
    let mut unhashed = Vec::new();
    for row in rows {
        let relabelled = relabels(labels, row.local_category.as_ref(), row.local_brand.as_ref());
        match row.raw_hash {
            Some(hash) if !relabelled && RawHash::from_bytes(&hash).is_some() => known.push(hash),
            _ => unhashed.push(row.product_code),
        }
    }
    (known, unhashed)
}

/// Takes the listed items as they come and writes the products that changed, [`WRITE_ROWS`]
/// to a transaction. Ends when the listing ends (its sender is dropped).
async fn write_listing(
    ctx: &AppContext,
    mut state: Listing,
    index_of: &KnownItems,
    labels: &LocalLabels,
    run: &RunTracker<'_>,
    mut batches: mpsc::Receiver<Vec<ListedItem>>,
) -> anyhow::Result<Listing> {
    let mut pending = Pending::default();
    let now = db::now_utc();
    while let Some(batch) = batches.recv().await {
        let mut fresh = 0u64;
        let mut decoded = Vec::new();
        for item in batch {
            match item {
                ListedItem::Known(index) => {
                    let seen = usize::try_from(index)
                        .ok()
                        .and_then(|i| state.known_seen.get_mut(i))
                        .context("The listing named a stored product that was not read")?;
                    // Seen before in this listing (a repeat, or an attempt sent again): skipped.
                    if !std::mem::replace(seen, true) {
                        fresh += 1;
                        state.written.unchanged += 1;
                    }
                }
                ListedItem::Product { product, raw_hash } => {
                    if state.decoded.insert(code_key(&product.code)) {
                        decoded.push((product, raw_hash));
                    }
                }
            }
        }
        let stored = stored_rows_of(ctx, &state, &decoded).await?;
        for (product, raw_hash) in decoded {
            let previous = stored.get(&product.code);
            // A stored row the listing contained already, undecoded (a repeat): skipped.
            if previous.is_some_and(|s| !state.mark_seen(s, index_of)) {
                continue;
            }
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

/// The key a decoded code is remembered by: 16 bytes instead of the code.
fn code_key(code: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(code.as_bytes())
}

/// The stored rows of the decoded products, by code: none to read when the table had no row.
async fn stored_rows_of(
    ctx: &AppContext,
    state: &Listing,
    decoded: &[(Product, RawHash)],
) -> anyhow::Result<HashMap<String, products::StoredProduct>> {
    if !state.had_rows || decoded.is_empty() {
        return Ok(HashMap::new());
    }
    let codes: Vec<String> = decoded.iter().map(|(p, _)| p.code.clone()).collect();
    let rows = ctx
        .db
        .run(move |c| {
            let mut rows = Vec::with_capacity(codes.len());
            for chunk in codes.chunks(LOOKUP_CODES) {
                rows.extend(products::find_stored(c, chunk)?);
            }
            Ok(rows)
        })
        .await
        .context("Failed to read the stored products of a batch of the listing")?;
    Ok(rows.into_iter().map(|s| (s.product_code.clone(), s)).collect())
}

/// Whether a listed product whose content hash is `hash` must be written over its stored row
/// `stored`: what [`needs_write`](super::products::needs_write) says of the row
/// [`product_row`] would make, without making it.
fn needs_write_with(stored: &products::StoredProduct, hash: &str, labels: &LocalLabels) -> bool {
    stored.content_hash != hash
        || stored.delisted_at.is_some()
        || relabels(
            labels,
            stored.local_category.as_ref(),
            stored.local_brand.as_ref(),
        )
}

/// Whether the run's labels differ from a stored row's (a label not given keeps the row's).
fn relabels(labels: &LocalLabels, category: Option<&String>, brand: Option<&String>) -> bool {
    let relabelled =
        |label: &Option<String>, kept: Option<&String>| label.is_some() && label.as_ref() != kept;
    relabelled(&labels.category, category) || relabelled(&labels.brand, brand)
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
            db.run(move |conn| {
                // In code order, the batch's inserts walk the primary key's B-tree from one end
                // to the other instead of jumping about it in Haier's order.
                let mut rows = rows;
                rows.sort_unstable_by(|a, b| a.product_code.cmp(&b.product_code));
                write_rows(conn, &rows, &raw_hashes, &categories, &brands)
            })
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

/// After a complete listing: marks the stored listed products it did not contain as delisted
/// (by raw hash, or by code for those that have none). An empty listing delists nothing (more
/// likely a fault at Haier's than an empty catalog).
async fn delist_missing(ctx: &AppContext, state: &Listing, run: &RunTracker<'_>) -> anyhow::Result<()> {
    let missing_hashes: Vec<Vec<u8>> = state
        .known
        .iter()
        .zip(&state.known_seen)
        .filter(|(_, seen)| !**seen)
        .map(|(hash, _)| hash.to_bytes().to_vec())
        .collect();
    let missing_codes: Vec<String> = state
        .unhashed
        .iter()
        .filter(|(_, seen)| !**seen)
        .map(|(code, _)| code.clone())
        .collect();
    if missing_hashes.is_empty() && missing_codes.is_empty() {
        return Ok(());
    }
    if state.seen == 0 {
        run.note("Haier's listing was empty; nothing delisted");
        return Ok(());
    }
    run.status("delisting products Haier no longer lists");
    let now = db::now_utc();
    let delisted = ctx
        .db
        .run(move |c| {
            let mut delisted = 0;
            for chunk in missing_hashes.chunks(DELIST_CODES) {
                delisted += products::delist_by_raw_hash(c, chunk, now)?;
            }
            for chunk in missing_codes.chunks(DELIST_CODES) {
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

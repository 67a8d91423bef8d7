//! The logistics job: for each pushed order with a Haier order number that is not delivered yet,
//! asks Haier for its logistics, stores the newest state in `haier_logistics`, and has
//! `crate::orders` mark the order delivered once Haier says so. Orders come from the outbox in
//! keyset pages.

use super::pipeline::{self, Fetched, Written};
use super::{AppContext, Ending, RunOverrides, RunTracker};
use crate::config::SyncJob;
use crate::db::{self, logistics, Db, DbConnection};
use crate::haier::{HaierClient, Logistics};
use crate::orders::outbox::{self, TrackedOrder};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use diesel::Connection as _;
use futures::{Stream, StreamExt};

/// Outbox orders read per keyset page.
const ORDERS_PER_PAGE: i64 = 500;

/// Runs the logistics job. `overrides` do not apply to it.
pub async fn run(ctx: &AppContext, job: &SyncJob, _overrides: &RunOverrides, run: &RunTracker<'_>) -> Ending {
    let total = match ctx.db.run(|c| Ok(outbox::count_undelivered_orders(c)?)).await {
        Ok(n) => u64::try_from(n).unwrap_or_default(),
        Err(e) => return Ending::Failed(e.context("Failed to count the orders to follow")),
    };
    run.set_total(total);
    if total == 0 {
        run.note("no pushed orders to follow");
        return Ending::Completed;
    }
    run.status("querying logistics");
    let client = ctx.client.clone();
    let results = tracked_orders(ctx.db.clone())
        .map(move |order| {
            let client = client.clone();
            async move {
                match order {
                    Ok(order) => fetch_logistics(&client, order).await,
                    Err(e) => Fetched::Broken(e),
                }
            }
        })
        .buffer_unordered(pipeline::concurrency(ctx, job));
    let db = ctx.db.clone();
    let (ending, written) =
        pipeline::drive(run, results, move |page: Vec<(i64, logistics::LogisticsRow)>| {
            let db = db.clone();
            async move {
                db.run(move |conn| write_logistics_page(conn, page))
                    .await
                    .context("Failed to write a page of logistics")
            }
        })
        .await;
    run.note(format!(
        "{} orders followed, {} newly delivered",
        written.updated, written.noted
    ));
    ending
}

/// The orders to follow, read in keyset pages by outbox id.
fn tracked_orders(db: Db) -> impl Stream<Item = anyhow::Result<TrackedOrder>> + Send {
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let db = db.clone();
        async move {
            let after = after?;
            let page = db
                .run(move |c| Ok(outbox::undelivered_orders_after(c, after, ORDERS_PER_PAGE)?))
                .await;
            match page {
                Err(e) => Some((vec![Err(e)], None)),
                Ok(orders) if orders.is_empty() => None,
                Ok(orders) => {
                    let next = ((orders.len() as i64) == ORDERS_PER_PAGE)
                        .then(|| orders.last().map(|o| o.id))
                        .flatten();
                    Some((orders.into_iter().map(Ok).collect(), next))
                }
            }
        }
    });
    pages.flat_map(futures::stream::iter)
}

async fn fetch_logistics(
    client: &HaierClient,
    order: TrackedOrder,
) -> Fetched<(i64, logistics::LogisticsRow)> {
    match pipeline::call_haier(|| client.query_logistics(&order.haier_order_no)).await {
        Ok(found) => Fetched::rows(vec![(
            order.id,
            logistics_row(&order.so_id, found, db::now_utc()),
        )]),
        Err(e) if e.is_fatal_for_run() => Fetched::Fatal(e),
        Err(e) => Fetched::failed(order.haier_order_no, e.to_string()),
    }
}

/// The row for one order: its newest state, carrier and the whole reply.
pub fn logistics_row(so_id: &str, found: Logistics, now: NaiveDateTime) -> logistics::LogisticsRow {
    let latest = found.latest.as_ref();
    logistics::LogisticsRow {
        order_code: found.order_code.clone(),
        so_id: so_id.to_owned(),
        state_code: latest.map(|e| e.state_code.clone()),
        state_description: latest.and_then(|e| e.description.clone()),
        state_time: latest.map(|e| e.state_time.clone()),
        company_name: found.company_name.clone(),
        express_no: found.express_no.clone(),
        delivered: found.delivered,
        raw: found.raw.to_string(),
        updated_at: now,
    }
}

/// Writes one page: the logistics rows, and `delivered_at` on the outbox rows of delivered
/// orders, in one transaction.
fn write_logistics_page(
    conn: &mut DbConnection,
    page: Vec<(i64, logistics::LogisticsRow)>,
) -> anyhow::Result<Written> {
    let now = db::now_utc();
    let delivered: Vec<i64> = page
        .iter()
        .filter(|(_, row)| row.delivered)
        .map(|(id, _)| *id)
        .collect();
    let mut rows: Vec<logistics::LogisticsRow> = Vec::with_capacity(page.len());
    for (_, row) in page {
        // One row per order code, the last reply winning.
        rows.retain(|r| r.order_code != row.order_code);
        rows.push(row);
    }
    let marked = conn.transaction(|conn| {
        logistics::upsert_logistics(conn, &rows)?;
        outbox::mark_orders_delivered(conn, &delivered, now)
    })?;
    Ok(Written {
        updated: rows.len() as u64,
        noted: marked as u64,
        ..Written::default()
    })
}

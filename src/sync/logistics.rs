//! The logistics job: for each pushed order with a Haier order number that is not delivered yet,
//! asks Haier for its logistics, stores the newest state in `haier_logistics`, and has
//! `crate::orders` mark the order delivered once Haier says so. Then it asks YLH for the parcels
//! (carrier, express number, serial numbers) of the taken orders that are not delivered or have
//! none stored yet, 100 Haier order numbers per call, and stores them through
//! `crate::orders::shipments`. Orders come from the outbox in keyset pages.

use super::pipeline::{self, Fetched, Written};
use super::{AppContext, Ending, RunOverrides, RunTracker};
use crate::config::SyncJob;
use crate::db::{self, logistics, Db, DbConnection};
use crate::haier::{HaierClient, Logistics, MAX_ORDERS_PER_EXPRESS_CALL};
use crate::orders::outbox::{self, TrackedOrder};
use crate::orders::shipments::{self, NewShipment};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use diesel::Connection as _;
use futures::{Stream, StreamExt};
use std::collections::HashMap;

/// Outbox orders read per keyset page.
const ORDERS_PER_PAGE: i64 = 500;

/// Runs the logistics job. `overrides` do not apply to it.
pub async fn run(ctx: &AppContext, job: &SyncJob, _overrides: &RunOverrides, run: &RunTracker<'_>) -> Ending {
    let counts = ctx
        .db
        .run(|c| {
            Ok((
                outbox::count_undelivered_orders(c)?,
                outbox::count_orders_needing_shipments(c)?,
            ))
        })
        .await;
    let (total, to_ship) = match counts {
        Ok((total, to_ship)) => (u64::try_from(total).unwrap_or_default(), to_ship),
        Err(e) => return Ending::Failed(e.context("Failed to count the orders to follow")),
    };
    run.set_total(total);
    if total == 0 && to_ship == 0 {
        run.note("no pushed orders to follow");
        return Ending::Completed;
    }
    if total > 0 {
        let ending = follow_logistics(ctx, job, run).await;
        if !matches!(ending, Ending::Completed) {
            return ending;
        }
    }
    fetch_shipments(ctx, run).await
}

/// Asks for the logistics of every undelivered order and writes them a page at a time.
async fn follow_logistics(ctx: &AppContext, job: &SyncJob, run: &RunTracker<'_>) -> Ending {
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

/// What the express-numbers part of a run did.
#[derive(Debug, Default)]
struct ShipmentTally {
    orders: u64,
    calls: u64,
    stored: u64,
}

/// Asks YLH for the parcels of the taken orders that need them, [`MAX_ORDERS_PER_EXPRESS_CALL`]
/// Haier order numbers per call, one call at a time, and stores each answer at once. A call
/// that fails fails its batch (named in the message); a fatal error ends the run.
async fn fetch_shipments(ctx: &AppContext, run: &RunTracker<'_>) -> Ending {
    run.status("querying express numbers");
    let mut tally = ShipmentTally::default();
    let mut after = 0i64;
    let ending = loop {
        if run.is_cancelled() {
            break Ending::Stopped;
        }
        let page = ctx
            .db
            .run(move |c| {
                Ok(outbox::orders_needing_shipments_after(
                    c,
                    after,
                    MAX_ORDERS_PER_EXPRESS_CALL as i64,
                )?)
            })
            .await;
        let orders = match page {
            Ok(orders) => orders,
            Err(e) => {
                break Ending::Failed(e.context("Failed to read the orders to ask express numbers for"))
            }
        };
        let Some(last) = orders.last() else {
            break Ending::Completed;
        };
        after = last.id;
        let full_page = orders.len() == MAX_ORDERS_PER_EXPRESS_CALL;
        let order_nos: Vec<String> = orders.iter().map(|o| o.haier_order_no.clone()).collect();
        tally.orders += orders.len() as u64;
        tally.calls += 1;
        let answer = tokio::select! {
            biased;
            () = run.cancelled() => break Ending::Stopped,
            answer = pipeline::call_haier(|| ctx.client.express_and_serials(&order_nos)) => answer,
        };
        match answer {
            Ok(found) => {
                let rows = shipment_rows(&orders, found, db::now_utc());
                let written = ctx
                    .db
                    .run(move |c| Ok(shipments::upsert_shipments(c, &rows)?))
                    .await;
                match written {
                    Ok(n) => tally.stored += n as u64,
                    Err(e) => break Ending::Failed(e.context("Failed to write shipments")),
                }
            }
            Err(e) if e.is_fatal_for_run() => break Ending::Failed(e.into()),
            Err(e) => run.fail(
                format!(
                    "express numbers of {} orders from {}",
                    order_nos.len(),
                    order_nos[0]
                ),
                e,
            ),
        }
        if !full_page {
            break Ending::Completed;
        }
    };
    run.note(format!(
        "express numbers: {} orders asked in {} calls, {} shipments stored",
        tally.orders, tally.calls, tally.stored
    ));
    ending
}

/// The rows of the parcels found, each with the shop order of its Haier order no.; a parcel of
/// an order not asked about is dropped.
pub fn shipment_rows(
    orders: &[TrackedOrder],
    found: Vec<crate::haier::Shipment>,
    now: NaiveDateTime,
) -> Vec<NewShipment> {
    let so_ids: HashMap<&str, &str> = orders
        .iter()
        .map(|o| (o.haier_order_no.as_str(), o.so_id.as_str()))
        .collect();
    let mut rows: Vec<NewShipment> = Vec::with_capacity(found.len());
    for shipment in found {
        let Some(so_id) = so_ids.get(shipment.order_code.as_str()) else {
            tracing::warn!(order_code = %shipment.order_code, "YLH sent express numbers of an order not asked about; ignored");
            continue;
        };
        let row = NewShipment::new(so_id, shipment, now);
        // One row per key in a statement: the last one Haier listed wins.
        rows.retain(|r| {
            (&r.haier_order_no, &r.delivery_record_code, &r.express_no)
                != (&row.haier_order_no, &row.delivery_record_code, &row.express_no)
        });
        rows.push(row);
    }
    rows
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haier::Shipment;

    fn parcel(order_code: &str, express_no: &str, sns: &[&str]) -> Shipment {
        Shipment {
            order_code: order_code.into(),
            delivery_record_code: "DR1".into(),
            carrier_code: Some("RRS".into()),
            carrier_name: Some("日日顺物流".into()),
            express_no: express_no.into(),
            serial_numbers: sns.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn shipment_rows_carry_the_shop_order_and_keep_one_row_per_parcel() {
        let orders = [TrackedOrder {
            id: 1,
            so_id: "SO-1".into(),
            haier_order_no: "SO.1".into(),
        }];
        let found = vec![
            parcel("SO.1", "E1", &["SN1"]),
            parcel("SO.1", "E2", &["SN2", "SN3"]),
            // Listed twice: the last one wins.
            parcel("SO.1", "E1", &["SN9"]),
            // Not asked about: dropped.
            parcel("SO.2", "E3", &[]),
        ];
        let rows = shipment_rows(&orders, found, db::now_utc());
        let seen: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.so_id.as_str(), r.express_no.as_str(), r.serial_numbers.as_str()))
            .collect();
        assert_eq!(
            seen,
            [("SO-1", "E2", r#"["SN2","SN3"]"#), ("SO-1", "E1", r#"["SN9"]"#)]
        );
    }
}

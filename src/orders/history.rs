//! One order's whole story, as `outbox show` prints it: the outbox row, its lines with their
//! quantities, its parcels, and every callback Haier sent about it. It reads through the owners
//! of each table (`outbox`, `lines`, `shipments`, `events`) and writes nothing.

use super::events::{self, OrderEvent};
use super::lines::{self, OrderLine};
use super::outbox::{self, OutboxRow};
use super::shipments::{self, ShipmentRow};
use crate::db::Db;
use anyhow::Context as _;
use serde::Serialize;

/// An order, its lines, its parcels and its callbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderHistory {
    pub order: OutboxRow,
    pub lines: Vec<OrderLine>,
    /// Oldest first.
    pub events: Vec<OrderEvent>,
    /// The parcels the logistics job fetched (carrier, express no., serial numbers).
    pub shipments: Vec<ShipmentRow>,
}

/// The order `so_id` with its lines and callbacks, or `None` when the outbox has no such order.
pub async fn load_history(db: &Db, so_id: &str) -> anyhow::Result<Option<OrderHistory>> {
    let so_id = so_id.to_owned();
    db.run(move |conn| {
        let Some(order) = outbox::find_by_so_id(conn, &so_id)? else {
            return Ok(None);
        };
        let lines = lines::lines_of(conn, &order.so_id)?;
        let shipments = shipments::for_order(conn, &order.so_id)?;
        let events = events::events_of_order(conn, &order.so_id, &order.online_no)?;
        Ok(Some(OrderHistory {
            order,
            lines,
            events,
            shipments,
        }))
    })
    .await
    .context("Failed to read the order's history")
}

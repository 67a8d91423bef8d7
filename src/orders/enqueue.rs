//! Enqueue: orders a shop hands over as JSON are checked like the poller checks them (fields,
//! then the product catalog) and the valid ones are inserted into the outbox with the minimal
//! columns, as the shop's own `INSERT` would. `outbox enqueue` and the demo call this.

use super::catalog::Catalog;
use super::outbox;
use super::problem::{InvalidOrder, Problem};
use super::validate::{self, ValidOrder};
use crate::db::{Db, DbConnection};
use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

/// What became of one order given to [`enqueue_orders`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Enqueued {
    Inserted {
        so_id: String,
        id: i64,
        warnings: Vec<String>,
    },
    Rejected {
        /// The soId, or `order #N` (1-based) when it has none.
        order: String,
        #[serde(serialize_with = "as_text")]
        reason: InvalidOrder,
    },
}

fn as_text<S: serde::Serializer>(reason: &InvalidOrder, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(reason)
}

/// Checks each order in `text` (one JSON order or an array of them) like the poller does,
/// products against the catalog, and inserts the valid ones with the minimal columns.
pub async fn enqueue_orders(db: &Db, text: &str) -> anyhow::Result<Vec<Enqueued>> {
    let value: Value =
        serde_json::from_str(text).context("Failed to read the orders: the file is not valid JSON")?;
    let orders = match value {
        Value::Array(orders) => orders,
        one => vec![one],
    };
    db.run(move |conn| Ok(enqueue_checked(conn, &orders)?))
        .await
        .context("Failed to insert the orders into the outbox")
}

/// [`enqueue_orders`] on one connection, for orders already read as JSON.
fn enqueue_checked(conn: &mut DbConnection, orders: &[Value]) -> diesel::QueryResult<Vec<Enqueued>> {
    let parsed: Vec<Result<ValidOrder, InvalidOrder>> = orders
        .iter()
        .map(|order| validate::parse_order(&order.to_string()))
        .collect();
    let catalog = Catalog::load(conn, parsed.iter().flatten().map(|valid| &valid.order))?;
    let mut results = Vec::with_capacity(orders.len());
    for (i, (order, parsed)) in orders.iter().zip(parsed).enumerate() {
        let label = label_of(order, i);
        let valid = match parsed {
            Ok(valid) => valid,
            Err(reason) => {
                results.push(Enqueued::Rejected { order: label, reason });
                continue;
            }
        };
        let problems = if catalog.is_empty() {
            vec![Problem::NoCatalog]
        } else {
            catalog.check(&valid.order)
        };
        if !problems.is_empty() {
            results.push(Enqueued::Rejected {
                order: label,
                reason: InvalidOrder { problems },
            });
            continue;
        }
        results.push(insert(conn, valid, label)?);
    }
    Ok(results)
}

/// Inserts one checked order, or says it is in the outbox already.
fn insert(conn: &mut DbConnection, valid: ValidOrder, label: String) -> diesel::QueryResult<Enqueued> {
    let order = &valid.order;
    Ok(
        match outbox::insert_order(conn, &order.so_id, &order.online_no, &valid.payload_json())? {
            Some(id) => Enqueued::Inserted {
                so_id: order.so_id.clone(),
                id,
                warnings: valid.warnings,
            },
            None => {
                let status = outbox::find_by_so_id(conn, &order.so_id)?.map(|row| row.status);
                Enqueued::Rejected {
                    order: label,
                    reason: InvalidOrder::one(Problem::AlreadyInOutbox {
                        so_id: order.so_id.clone(),
                        status,
                    }),
                }
            }
        },
    )
}

/// How a rejection names an order: its soId, or `order #N` (1-based) when it has none.
fn label_of(order: &Value, index: usize) -> String {
    order
        .get("soId")
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
        .unwrap_or_else(|| format!("order #{}", index + 1))
}

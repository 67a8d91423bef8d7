//! `haier-sync outbox …`: put orders into the outbox from a file, list them, send a dead one
//! again, and ask Haier to cancel one. The poller and the callback receiver (in
//! `crate::orders`) do the rest.

use crate::config::Config;
use crate::db::{self, Db};
use crate::haier::{CancelRequest, HaierClient, HaierError};
use crate::orders::outbox::{self, OutboxRow, STATUSES};
use crate::orders::validate;
use anyhow::Context as _;
use clap::Subcommand;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    pub command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Check orders from a JSON file (one order or an array, in YLH's push format) and insert the
    /// valid ones into the outbox; the poller pushes them. Exit 0 when every order was inserted,
    /// 1 when any was rejected (each rejection names the field).
    Enqueue {
        /// The JSON file; `-` reads standard input.
        #[arg(value_name = "FILE.json")]
        file: PathBuf,
    },
    /// List outbox orders, newest first.
    List {
        /// Only orders in this status: pending, sending, pushed, confirmed, refused, cancelled or dead.
        #[arg(long, value_name = "S", value_parser = clap::builder::PossibleValuesParser::new(STATUSES))]
        status: Option<String>,
        /// At most this many orders.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move a `dead` order back to `pending`, with its attempts reset, so the poller checks and
    /// pushes it again (after fixing what its last error names).
    Retry {
        /// The order's soId.
        #[arg(value_name = "SO_ID")]
        so_id: String,
    },
    /// Ask Haier to cancel an order. Haier answers the request at once and the outcome later, in
    /// its cancel callback. An order not pushed yet is cancelled here and never sent.
    Cancel {
        /// The order's soId.
        #[arg(value_name = "SO_ID")]
        so_id: String,
        /// Why the order is cancelled (sent to Haier as `cancelReason`).
        #[arg(long, value_name = "R")]
        reason: String,
    },
}

pub async fn run(args: OutboxArgs, config: &Config) -> anyhow::Result<i32> {
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    match args.command {
        OutboxCommand::Enqueue { file } => {
            let text = read_input(&file)?;
            let results = enqueue_orders(&db, &text).await?;
            for result in &results {
                match result {
                    Enqueued::Inserted { so_id, id, warnings } => {
                        println!("inserted {so_id} (outbox id {id})");
                        for warning in warnings {
                            println!("  warning: {warning}");
                        }
                    }
                    Enqueued::Rejected { order, reason } => println!("rejected {order}: {reason}"),
                }
            }
            let inserted = results
                .iter()
                .filter(|r| matches!(r, Enqueued::Inserted { .. }))
                .count();
            println!("{inserted} of {} orders inserted", results.len());
            Ok(if inserted == results.len() { 0 } else { 1 })
        }
        OutboxCommand::List { status, limit, json } => {
            let rows = db
                .run(move |conn| Ok(outbox::list_orders(conn, status.as_deref(), limit)?))
                .await
                .context("Failed to list the outbox")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", render_rows(&rows, config.defaults.timezone));
            }
            Ok(0)
        }
        OutboxCommand::Retry { so_id } => {
            let (moved, row) = retry_order(&db, &so_id).await?;
            match (moved, row) {
                (true, _) => {
                    println!("{so_id} is pending again; the poller will check and push it");
                    Ok(0)
                }
                (false, None) => {
                    eprintln!("error: no outbox order has soId {so_id}");
                    Ok(1)
                }
                (false, Some(row)) => {
                    eprintln!(
                        "error: {so_id} is {}, not dead; only a dead order can be retried",
                        row.status
                    );
                    Ok(1)
                }
            }
        }
        OutboxCommand::Cancel { so_id, reason } => {
            let client =
                HaierClient::new(&config.haier, &config.ylh).context("Failed to build the Haier client")?;
            let outcome = cancel_order(&db, &client, &so_id, &reason).await?;
            match &outcome {
                Cancelled::Requested => {
                    println!(
                        "Haier took the cancel request for {so_id}; the outcome comes in its cancel callback"
                    )
                }
                Cancelled::Local => {
                    println!("{so_id} was not pushed yet: cancelled here, it will not be sent")
                }
                other => eprintln!("error: {}", other.describe(&so_id)),
            }
            Ok(if matches!(outcome, Cancelled::Requested | Cancelled::Local) {
                0
            } else {
                1
            })
        }
    }
}

/// What `outbox cancel` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// Haier took the request (`cancel_state = requested`); its callback brings the outcome.
    Requested,
    /// The order never reached Haier: cancelled in the outbox (`cancel_state = local`).
    Local,
    /// Haier declined the request (`data:false`).
    Declined,
    NotFound,
    /// The order is being pushed right now, or is refused or cancelled already.
    NotCancellable {
        status: String,
    },
}

impl Cancelled {
    fn describe(&self, so_id: &str) -> String {
        match self {
            Cancelled::Requested | Cancelled::Local => format!("{so_id} cancelled"),
            Cancelled::Declined => format!("Haier declined to cancel {so_id}"),
            Cancelled::NotFound => format!("no outbox order has soId {so_id}"),
            Cancelled::NotCancellable { status } if status == "sending" => {
                format!("{so_id} is being pushed right now; try again in a moment")
            }
            Cancelled::NotCancellable { status } => {
                format!("{so_id} is {status}: there is nothing to cancel")
            }
        }
    }
}

/// Cancels an order: a `pending` one in the outbox only (it is never sent); a pushed, confirmed
/// or dead one by asking Haier. A dead order Haier does not know (`ORDER_NOT_FOUND`) is
/// cancelled in the outbox.
pub async fn cancel_order(
    db: &Db,
    client: &HaierClient,
    so_id: &str,
    reason: &str,
) -> anyhow::Result<Cancelled> {
    let (id, why) = (so_id.to_owned(), reason.to_owned());
    let (row, cancelled_here) = db
        .run(move |conn| {
            let cancelled = outbox::cancel_pending_order(conn, &id, &why, db::now_utc())?;
            Ok((outbox::find_by_so_id(conn, &id)?, cancelled))
        })
        .await
        .context("Failed to read the order to cancel")?;
    let Some(row) = row else {
        return Ok(Cancelled::NotFound);
    };
    if cancelled_here {
        return Ok(Cancelled::Local);
    }
    if !matches!(row.status.as_str(), "pushed" | "confirmed" | "dead") {
        return Ok(Cancelled::NotCancellable { status: row.status });
    }
    let request = CancelRequest {
        so_id: so_id.to_owned(),
        cancel_time_ms: chrono::Utc::now().timestamp_millis(),
        reason: reason.to_owned(),
    };
    let (id, why) = (so_id.to_owned(), reason.to_owned());
    match client.cancel_order(&request).await {
        Ok(true) => {
            db.run(move |conn| Ok(outbox::record_cancel_request(conn, &id, &why, db::now_utc())?))
                .await
                .context("Failed to record the cancel request")?;
            Ok(Cancelled::Requested)
        }
        Ok(false) => Ok(Cancelled::Declined),
        Err(HaierError::Business { code, .. }) if code == "ORDER_NOT_FOUND" && row.status == "dead" => {
            let why = format!("{why} (Haier never received the order)");
            db.run(move |conn| Ok(outbox::cancel_unknown_order(conn, &id, &why, db::now_utc())?))
                .await
                .context("Failed to record the cancellation")?;
            Ok(Cancelled::Local)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("Failed to ask Haier to cancel order {so_id}"))),
    }
}

fn read_input(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("Failed to read orders from standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
            .with_context(|| format!("Failed to read orders from {}", file.display()))
    }
}

/// What became of one order given to `enqueue`.
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
        reason: String,
    },
}

/// Checks each order in `text` (one JSON order or an array of them) like the poller does,
/// products against `haier_products`, and inserts the valid ones with the minimal columns.
pub async fn enqueue_orders(db: &Db, text: &str) -> anyhow::Result<Vec<Enqueued>> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("Failed to read the orders: the file is not valid JSON")?;
    let orders = match value {
        serde_json::Value::Array(orders) => orders,
        one => vec![one],
    };
    db.run(move |conn| {
        let mut results = Vec::with_capacity(orders.len());
        let catalog_ready = outbox::has_products_for_sale(conn)?;
        for (i, order) in orders.iter().enumerate() {
            let label = order
                .get("soId")
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.as_i64().map(|n| n.to_string()))
                })
                .unwrap_or_else(|| format!("order #{}", i + 1));
            let valid = match validate::parse_order(&order.to_string()) {
                Ok(valid) => valid,
                Err(invalid) => {
                    results.push(Enqueued::Rejected {
                        order: label,
                        reason: invalid.to_string(),
                    });
                    continue;
                }
            };
            if !catalog_ready {
                results.push(Enqueued::Rejected {
                    order: label,
                    reason: "haier_products lists no product for sale yet: run the products job first".into(),
                });
                continue;
            }
            let codes: Vec<String> = validate::product_codes(&valid.order).map(str::to_owned).collect();
            let for_sale = outbox::product_codes_for_sale(conn, &codes)?;
            let problems = validate::check_products(&valid.order, &for_sale);
            if !problems.is_empty() {
                results.push(Enqueued::Rejected {
                    order: label,
                    reason: problems.join("; "),
                });
                continue;
            }
            let order = &valid.order;
            match outbox::insert_order(conn, &order.so_id, &order.online_no, &valid.payload_json())? {
                Some(id) => results.push(Enqueued::Inserted {
                    so_id: order.so_id.clone(),
                    id,
                    warnings: valid.warnings.clone(),
                }),
                None => {
                    let status = outbox::find_by_so_id(conn, &order.so_id)?
                        .map(|row| row.status)
                        .unwrap_or_else(|| "unknown".into());
                    results.push(Enqueued::Rejected {
                        order: label,
                        reason: format!("soId {} is in the outbox already (status {status})", order.so_id),
                    });
                }
            }
        }
        Ok(results)
    })
    .await
    .context("Failed to insert the orders into the outbox")
}

/// Moves a dead order back to pending. Returns whether it moved, and the row as it is now.
pub async fn retry_order(db: &Db, so_id: &str) -> anyhow::Result<(bool, Option<OutboxRow>)> {
    let so_id = so_id.to_owned();
    db.run(move |conn| {
        let moved = outbox::retry_dead_order(conn, &so_id, db::now_utc())?;
        Ok((moved, outbox::find_by_so_id(conn, &so_id)?))
    })
    .await
    .context("Failed to retry the order")
}

/// The longest `last_error` shown in the table (the JSON output has it whole).
const MAX_ERROR_CHARS: usize = 80;

fn render_rows(rows: &[OutboxRow], zone: chrono_tz::Tz) -> String {
    if rows.is_empty() {
        return "no orders\n".into();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "so_id",
        "online_no",
        "status",
        "attempts",
        "next attempt",
        "haier order no",
        "updated",
        "last error / notice",
    ]);
    for row in rows {
        let next = if row.status == "pending" {
            super::format_time(row.next_attempt_at, zone)
        } else {
            String::new()
        };
        let mut note = row.last_error.clone().unwrap_or_default();
        if let Some(state) = &row.cancel_state {
            note = format!("cancel {state}; {note}");
        }
        if row.out_of_stock_at.is_some() {
            note = format!("out of stock; {note}");
        }
        if note.chars().count() > MAX_ERROR_CHARS {
            note = note.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
        }
        table.add_row([
            row.so_id.clone(),
            row.online_no.clone(),
            row.status.clone(),
            row.attempts.to_string(),
            next,
            row.haier_order_no.clone().unwrap_or_default(),
            super::format_time(row.updated_at, zone),
            note,
        ]);
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        outbox: OutboxArgs,
    }

    fn parse(args: &[&str]) -> Result<OutboxCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("outbox").chain(args.iter().copied())).map(|c| c.outbox.command)
    }

    #[test]
    fn every_subcommand_parses_and_bad_statuses_are_refused() {
        assert!(matches!(
            parse(&["enqueue", "orders.json"]).unwrap(),
            OutboxCommand::Enqueue { .. }
        ));
        let OutboxCommand::List { status, limit, json } = parse(&["list", "--status", "dead"]).unwrap()
        else {
            panic!("list parses");
        };
        assert_eq!((status.as_deref(), limit, json), (Some("dead"), 50, false));
        assert!(parse(&["list", "--status", "lost"]).is_err());
        let OutboxCommand::Cancel { so_id, reason } =
            parse(&["cancel", "SO-1", "--reason", "changed mind"]).unwrap()
        else {
            panic!("cancel parses");
        };
        assert_eq!((so_id.as_str(), reason.as_str()), ("SO-1", "changed mind"));
        assert!(parse(&["cancel", "SO-1"]).is_err(), "a cancel needs a reason");
        assert!(matches!(
            parse(&["retry", "SO-1"]).unwrap(),
            OutboxCommand::Retry { .. }
        ));
    }
}

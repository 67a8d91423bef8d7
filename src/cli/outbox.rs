//! `haier-sync outbox …`: put orders into the outbox from a file, list them, send a dead one
//! again, ask Haier to cancel one, list callbacks or attach an unmatched one
//! (`outbox_events.rs`), reschedule one or show its photos (`outbox_after_sale.rs`). It parses the arguments, calls `crate::orders` (which
//! does the work, with the poller and the callback receiver) and prints.

use crate::config::Config;
use crate::db::Db;
use crate::orders::outbox::{self, OutboxRow};
use crate::orders::unconfirmed::{human_duration, list_unconfirmed, Unanswered, UnconfirmedOrder};
use crate::orders::{cancel_order, enqueue_orders, Cancelled, Enqueued, OutboxStatus};
use anyhow::Context as _;
use clap::Subcommand;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
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
        /// Only orders in this status.
        #[arg(long, value_name = "STATUS", value_enum, conflicts_with = "unconfirmed")]
        status: Option<OutboxStatus>,
        /// Only orders Haier has not answered within the outbox job's `confirm_within_ms`
        /// (default 24 h), oldest first: pushed with no confirm callback, or a cancel asked with
        /// no cancel callback. The last column says which.
        #[arg(long)]
        unconfirmed: bool,
        /// At most this many orders.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one order: its status and cancel/return state, its lines (units ordered, received,
    /// refused at the door and returned) and every callback Haier sent about it, oldest first.
    Show {
        /// The order's soId.
        #[arg(value_name = "SO_ID")]
        so_id: String,
        /// Print JSON (the order, `lines` and `events`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a `dead` order back to `pending`, with its attempts reset, so the poller checks and
    /// pushes it again (after fixing what its last error names); or, with `--status dead`, every
    /// dead order the filters name (`--dry-run` lists them and changes nothing).
    Retry(super::outbox_retry::RetryArgs),
    /// Ask Haier to cancel an order, or to take back a delivered one (a return, within 7 days of
    /// signing). Haier answers the request at once and the outcome later, in its cancel
    /// callback (`outbox show` prints it). An order not pushed yet is cancelled here and never
    /// sent. The request carries the `sourceSystem` the order was pushed with.
    Cancel {
        /// The order's soId.
        #[arg(value_name = "SO_ID")]
        so_id: String,
        /// Why the order is cancelled (sent to Haier as `cancelReason`).
        #[arg(long, value_name = "R")]
        reason: String,
    },
    /// List the callbacks Haier sent, newest first: when, method, order number, State, outcome,
    /// detail and how far the TimeStamp was off (`skew`, seconds; negative: in the past).
    Events(super::outbox_events::EventsArgs),
    /// Apply a callback kept as `unmatched` (it named no order, or several that share an
    /// onlineNo) to the order it means, exactly as if it had matched: in one transaction, with
    /// its stored retries. Prints the outcome; attaching it again changes nothing.
    Attach {
        /// The callback's id, as `outbox events --unmatched` lists it.
        #[arg(value_name = "EVENT_ID")]
        event_id: i64,
        /// The soId of the order it means.
        #[arg(value_name = "SO_ID")]
        so_id: String,
    },
    /// Ask Haier to move the delivery (and installation) of an order it has taken (one with a
    /// Haier order no. from the confirm callback). Each date is sent as 23:59:59 Beijing time; a
    /// date not given is sent with its old value from the order's payload. When Haier takes the
    /// change, the payload keeps the new dates.
    Reschedule {
        /// The order's soId.
        #[arg(value_name = "SO_ID")]
        so_id: String,
        /// The new delivery date, YYYY-MM-DD.
        #[arg(long, value_name = "DATE", value_parser = super::outbox_after_sale::parse_date)]
        delivery: chrono::NaiveDate,
        /// The new installation date, YYYY-MM-DD [default: the order's current one].
        #[arg(long, value_name = "DATE", value_parser = super::outbox_after_sale::parse_date)]
        install: Option<chrono::NaiveDate>,
    },
    /// Show the delivery and installation photos Haier has of an order it has taken: scene,
    /// description and URL of each.
    Photos {
        /// The order's soId.
        #[arg(value_name = "SO_ID")]
        so_id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
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
        OutboxCommand::List {
            unconfirmed: true,
            limit,
            json,
            ..
        } => {
            let job = config.outbox_job();
            let orders = list_unconfirmed(&db, &job, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&orders)?);
            } else if orders.is_empty() {
                println!(
                    "no order waits longer than {} for Haier's answer",
                    human_duration(job.confirm_within_ms)
                );
            } else {
                print!(
                    "{}",
                    render_unconfirmed(&orders, job.confirm_within_ms, config.defaults.timezone)
                );
            }
            Ok(0)
        }
        OutboxCommand::List {
            status, limit, json, ..
        } => {
            let rows = db
                .run(move |conn| Ok(outbox::list_orders(conn, status, limit)?))
                .await
                .context("Failed to list the outbox")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", render_rows(&rows, config.defaults.timezone));
            }
            Ok(0)
        }
        OutboxCommand::Show { so_id, json } => {
            super::outbox_show::show(&db, &so_id, json, config.defaults.timezone).await
        }
        OutboxCommand::Retry(args) => super::outbox_retry::run(&db, args, config.defaults.timezone).await,
        OutboxCommand::Events(args) => super::outbox_events::list(&db, args, config.defaults.timezone).await,
        OutboxCommand::Attach { event_id, so_id } => {
            super::outbox_events::attach(&db, event_id, &so_id).await
        }
        OutboxCommand::Cancel { so_id, reason } => {
            let client =
                crate::quota::shared_client(config, &db).context("Failed to build the Haier client")?;
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
                other => eprintln!("error: {}", describe(other, &so_id)),
            }
            Ok(if matches!(outcome, Cancelled::Requested | Cancelled::Local) {
                0
            } else {
                1
            })
        }
        OutboxCommand::Reschedule {
            so_id,
            delivery,
            install,
        } => super::outbox_after_sale::reschedule(&db, config, &so_id, delivery, install).await,
        OutboxCommand::Photos { so_id, json } => {
            super::outbox_after_sale::photos(&db, config, &so_id, json).await
        }
    }
}

/// What a cancel that did not happen says.
fn describe(outcome: &Cancelled, so_id: &str) -> String {
    match outcome {
        Cancelled::Requested | Cancelled::Local => format!("{so_id} cancelled"),
        Cancelled::Declined => format!("Haier declined to cancel {so_id}"),
        Cancelled::NotFound => format!("no outbox order has soId {so_id}"),
        Cancelled::NotCancellable {
            status: OutboxStatus::Sending,
        } => format!("{so_id} is being pushed right now; try again in a moment"),
        Cancelled::NotCancellable { status } => format!("{so_id} is {status}: there is nothing to cancel"),
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
        let next = if row.status == OutboxStatus::Pending {
            super::format_time(row.next_attempt_at, zone)
        } else {
            String::new()
        };
        let mut note = row.last_error.clone().unwrap_or_default();
        if let Some(state) = &row.cancel_state {
            note = format!("cancel {state}; {note}");
        }
        if let Some(detail) = row
            .out_of_stock_detail
            .as_ref()
            .filter(|_| row.status == OutboxStatus::OutOfStock)
        {
            note = format!("out of stock ({detail}); {note}");
        }
        if note.chars().count() > MAX_ERROR_CHARS {
            note = note.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
        }
        table.add_row([
            row.so_id.clone(),
            row.online_no.clone(),
            row.status.to_string(),
            row.attempts.to_string(),
            next,
            row.haier_order_no.clone().unwrap_or_default(),
            super::format_time(row.updated_at, zone),
            note,
        ]);
    }
    format!("{table}\n")
}

/// The orders Haier has not answered: when each was pushed or its cancel asked, and which.
fn render_unconfirmed(orders: &[UnconfirmedOrder], confirm_within_ms: u64, zone: chrono_tz::Tz) -> String {
    let within = human_duration(confirm_within_ms);
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "so_id",
        "status",
        "pushed",
        "cancel asked",
        "waiting for",
    ]);
    for order in orders {
        let row = &order.row;
        let time =
            |t: Option<chrono::NaiveDateTime>| t.map(|t| super::format_time(t, zone)).unwrap_or_default();
        let waiting: Vec<String> = order
            .unanswered
            .iter()
            .map(|kind| match kind {
                Unanswered::Push => format!("confirm callback (pushed over {within} ago)"),
                Unanswered::Cancel => format!("cancel callback (asked over {within} ago)"),
            })
            .collect();
        table.add_row([
            row.so_id.clone(),
            row.status.to_string(),
            time(row.pushed_at),
            time(row.cancel_requested_at),
            waiting.join("; "),
        ]);
    }
    format!(
        "{} order(s) Haier has not answered within {within}:\n{table}\n",
        orders.len()
    )
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
        let OutboxCommand::List {
            status,
            limit,
            json,
            unconfirmed,
        } = parse(&["list", "--status", "dead"]).unwrap()
        else {
            panic!("list parses");
        };
        assert_eq!(
            (status, limit, json, unconfirmed),
            (Some(OutboxStatus::Dead), 50, false, false)
        );
        assert!(matches!(
            parse(&["list", "--unconfirmed"]).unwrap(),
            OutboxCommand::List {
                unconfirmed: true,
                ..
            }
        ));
        assert!(parse(&["list", "--unconfirmed", "--status", "pushed"]).is_err());
        assert!(parse(&["list", "--status", "lost"]).is_err());
        let OutboxCommand::Cancel { so_id, reason } =
            parse(&["cancel", "SO-1", "--reason", "changed mind"]).unwrap()
        else {
            panic!("cancel parses");
        };
        assert_eq!((so_id.as_str(), reason.as_str()), ("SO-1", "changed mind"));
        assert!(parse(&["cancel", "SO-1"]).is_err(), "a cancel needs a reason");
        let OutboxCommand::Show { so_id, json } = parse(&["show", "SO-1", "--json"]).unwrap() else {
            panic!("show parses");
        };
        assert_eq!((so_id.as_str(), json), ("SO-1", true));
        assert!(matches!(
            parse(&["retry", "SO-1"]).unwrap(),
            OutboxCommand::Retry(_)
        ));
        let OutboxCommand::Retry(retry) =
            parse(&["retry", "--status", "dead", "--since", "2h", "--dry-run"]).unwrap()
        else {
            panic!("a bulk retry parses");
        };
        assert_eq!((retry.so_id, retry.status), (None, Some(OutboxStatus::Dead)));
        assert!(retry.dry_run);
        assert!(parse(&["retry"]).is_err(), "a retry names an order or a status");
        assert!(parse(&["retry", "SO-1", "--status", "dead"]).is_err(), "not both");
        let OutboxCommand::Reschedule {
            so_id,
            delivery,
            install,
        } = parse(&["reschedule", "SO-1", "--delivery", "2026-12-24"]).unwrap()
        else {
            panic!("reschedule parses");
        };
        assert_eq!(so_id, "SO-1");
        assert_eq!(delivery.to_string(), "2026-12-24");
        assert_eq!(install, None);
        assert!(
            parse(&["reschedule", "SO-1"]).is_err(),
            "a reschedule needs --delivery"
        );
        assert!(parse(&["reschedule", "SO-1", "--delivery", "24.12.2026"]).is_err());
        assert!(matches!(
            parse(&["photos", "SO-1", "--json"]).unwrap(),
            OutboxCommand::Photos { json: true, .. }
        ));
    }
}

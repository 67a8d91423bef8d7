//! `haier-sync events …`: the order events the shop hears about (`haier_shop_events`): list
//! them, send a failed one (or every failed one) again, or replay a time window to the webhook.
//! It parses the arguments, calls `crate::shop` and prints.

use crate::config::Config;
use crate::db::{self, Db};
use crate::shop::events::{self, EventFilter};
use crate::shop::{Delivery, ShopEvent, ShopState};
use anyhow::Context as _;
use clap::Subcommand;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List order events, newest first: every change of an order, numbered per order, with its
    /// delivery to the webhook.
    List {
        /// Only the events of this order.
        #[arg(long, value_name = "SO_ID")]
        so_id: Option<String>,
        /// Only events of orders that became this state.
        #[arg(long, value_name = "STATE", value_enum)]
        state: Option<ShopState>,
        /// Only events in this delivery state.
        #[arg(long, value_name = "DELIVERY", value_enum)]
        delivery: Option<Delivery>,
        /// Only events since then: `30m`, `6h`, `7d`, a date or time in the configured zone, or
        /// RFC 3339.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: i64,
        /// Print JSON (each event as the webhook receives it, with its delivery) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send a failed (or delivered) event again, from its first attempt, with the same id; or,
    /// with --failed, every failed event.
    Retry {
        /// The event's id.
        #[arg(
            value_name = "ID",
            required_unless_present = "failed",
            conflicts_with = "failed"
        )]
        id: Option<i64>,
        /// Every event marked failed.
        #[arg(long)]
        failed: bool,
    },
    /// Send again exactly the events created in a time window, whatever their delivery state,
    /// each with its id, in order per order.
    Replay {
        /// The window's start (included): `30m`, `6h`, `7d`, a date or time in the configured
        /// zone, or RFC 3339.
        #[arg(long, value_name = "TIME")]
        since: String,
        /// The window's end (excluded); default now.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
    },
}

pub async fn run(args: EventsArgs, config: &Config) -> anyhow::Result<i32> {
    let zone = config.defaults.timezone;
    let time = |text: &str| super::logs::parse_since(text, zone, chrono::Utc::now());
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    match args.command {
        EventsCommand::List {
            so_id,
            state,
            delivery,
            since,
            limit,
            json,
        } => {
            if limit < 1 {
                eprintln!("error: --limit must be at least 1, not {limit}");
                return Ok(super::EXIT_USAGE);
            }
            let since = match since.as_deref().map(time).transpose() {
                Ok(since) => since,
                Err(e) => {
                    eprintln!("error: --since: {e:#}");
                    return Ok(super::EXIT_USAGE);
                }
            };
            let filter = EventFilter {
                so_id,
                state,
                delivery,
                since,
                limit,
            };
            let rows = db
                .run(move |conn| Ok(events::list_events(conn, &filter)?))
                .await
                .context("Failed to read the order events")?;
            if json {
                let rows: Vec<_> = rows.iter().map(with_delivery).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", render(&rows, zone));
            }
            Ok(0)
        }
        EventsCommand::Retry { id, failed: _ } => {
            let ids = db
                .run(move |conn| Ok(events::retry_events(conn, id, db::now_utc())?))
                .await
                .context("Failed to send the events again")?;
            match (id, ids.len()) {
                (Some(id), 0) => {
                    eprintln!("error: event {id} does not exist or is still being delivered (pending)");
                    Ok(1)
                }
                (Some(id), _) => {
                    println!("event {id} will be sent again");
                    Ok(0)
                }
                (None, n) => {
                    println!("{n} failed event(s) will be sent again");
                    Ok(0)
                }
            }
        }
        EventsCommand::Replay { since, until } => {
            let window = time(&since).and_then(|since| Ok((since, until.as_deref().map(time).transpose()?)));
            let (since, until) = match window {
                Ok(window) => window,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(super::EXIT_USAGE);
                }
            };
            if until.is_some_and(|until| until <= since) {
                eprintln!("error: --until must be after --since");
                return Ok(super::EXIT_USAGE);
            }
            let ids = db
                .run(move |conn| Ok(events::replay_events(conn, since, until, db::now_utc())?))
                .await
                .context("Failed to replay the events")?;
            println!(
                "{} event(s) from {} will be sent again",
                ids.len(),
                super::format_time(since, zone)
            );
            Ok(0)
        }
    }
}

/// An event as the webhook receives it, with its delivery.
fn with_delivery(event: &ShopEvent) -> serde_json::Value {
    let mut value = event.to_json();
    value["delivery"] = serde_json::json!({
        "state": event.delivery,
        "attempts": event.attempts,
        "next_attempt_at": event.next_attempt_at,
        "last_error": event.last_error,
        "delivered_at": event.delivered_at,
    });
    value
}

fn render(rows: &[ShopEvent], zone: chrono_tz::Tz) -> String {
    if rows.is_empty() {
        return "no order events\n".into();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "id",
        "created",
        "so_id",
        "seq",
        "state",
        "source",
        "delivery",
        "attempts",
        "last error",
    ]);
    for row in rows {
        table.add_row([
            row.id.to_string(),
            super::format_time(row.created_at, zone),
            row.so_id.clone(),
            row.seq.to_string(),
            row.state.to_string(),
            row.source.to_string(),
            row.delivery.to_string(),
            row.attempts.to_string(),
            row.last_error.clone().unwrap_or_default(),
        ]);
    }
    format!("{table}\n")
}

//! `haier-sync outbox events` and `outbox attach`: list the callbacks Haier sent (all, the
//! unmatched ones, or one order's), and apply an unmatched one to the order it means through
//! `crate::orders::matching`.

use crate::db::Db;
use crate::orders::events::{self, OrderEvent};
use crate::orders::matching::{self, Attached};
use anyhow::Context as _;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only callbacks kept as `unmatched`, waiting for `outbox attach`.
    #[arg(long)]
    pub unmatched: bool,
    /// Only callbacks about this order (applied to it, or naming it as PlatformOrderNo).
    #[arg(long, value_name = "SO_ID")]
    pub so_id: Option<String>,
    /// At most this many callbacks.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn list(db: &Db, args: EventsArgs, zone: chrono_tz::Tz) -> anyhow::Result<i32> {
    let EventsArgs {
        unmatched,
        so_id,
        limit,
        json,
    } = args;
    let rows = db
        .run(move |conn| Ok(events::list_events(conn, unmatched, so_id.as_deref(), limit)?))
        .await
        .context("Failed to list the callbacks")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render_events(&rows, zone));
    }
    Ok(0)
}

pub async fn attach(db: &Db, event_id: i64, so_id: &str) -> anyhow::Result<i32> {
    let zone_free = |at: chrono::NaiveDateTime| at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    match matching::attach(db, event_id, so_id).await? {
        Attached::Done {
            outcome,
            detail,
            copies,
        } => {
            println!("callback {event_id} attached to {so_id}: {outcome} — {detail}");
            if copies > 0 {
                println!("{copies} stored retries of the same callback were attached with it");
            }
            Ok(0)
        }
        Attached::AlreadyAttached {
            so_id: attached_to,
            at,
            outcome,
        } => {
            println!(
                "callback {event_id} was attached to {attached_to} at {} ({outcome}); nothing changed",
                zone_free(at)
            );
            Ok(0)
        }
        Attached::EventNotFound => {
            eprintln!("error: there is no callback {event_id} (see `haier-sync outbox events --unmatched`)");
            Ok(1)
        }
        Attached::NotUnmatched { outcome } => {
            eprintln!(
                "error: callback {event_id} is {outcome}, not unmatched; only an unmatched callback can be attached"
            );
            Ok(1)
        }
        Attached::OrderNotFound => {
            eprintln!("error: no outbox order has soId {so_id}; callback {event_id} is still unmatched");
            Ok(1)
        }
        Attached::Unreadable(reason) => {
            eprintln!("error: callback {event_id} cannot be applied: {reason}");
            Ok(1)
        }
    }
}

/// The longest detail shown in the table (the JSON output has it whole).
const MAX_DETAIL_CHARS: usize = 80;

fn render_events(rows: &[OrderEvent], zone: chrono_tz::Tz) -> String {
    if rows.is_empty() {
        return "no callbacks\n".into();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "id",
        "received",
        "method",
        "order no.",
        "haier no.",
        "state",
        "outcome",
        "so_id",
        "skew s",
        "detail",
    ]);
    for event in rows {
        let mut detail = event.detail.clone().unwrap_or_default();
        if detail.chars().count() > MAX_DETAIL_CHARS {
            detail = detail.chars().take(MAX_DETAIL_CHARS).collect::<String>() + "…";
        }
        let method = event.method.as_deref().unwrap_or_default();
        table.add_row([
            event.id.to_string(),
            super::format_time(event.received_at, zone),
            method
                .strip_prefix("hmm.scm_heorder.")
                .unwrap_or(method)
                .to_owned(),
            event.platform_order_no.clone().unwrap_or_default(),
            event.ext_order_no.clone().unwrap_or_default(),
            event.state.clone().unwrap_or_default(),
            event.outcome.to_string(),
            event.so_id.clone().unwrap_or_default(),
            event
                .clock_skew_secs
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            detail,
        ]);
    }
    format!("{table}\n")
}

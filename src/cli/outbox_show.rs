//! `haier-sync outbox show SO_ID`: one order as a person checks it: its state, its lines with
//! what became of each unit, its parcels, and every callback Haier sent about it. It reads through
//! `crate::orders::history` and prints; `--json` prints the same as one JSON object.

use crate::orders::history::{load_history, OrderHistory};
use crate::orders::OutboxStatus;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

/// Prints the order `so_id`; exit 0, or 1 when the outbox has no such order.
pub async fn show(db: &crate::db::Db, so_id: &str, json: bool, zone: chrono_tz::Tz) -> anyhow::Result<i32> {
    let Some(history) = load_history(db, so_id).await? else {
        eprintln!("error: no outbox order has soId {so_id}");
        return Ok(1);
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&history)?);
    } else {
        print!("{}", render_history(&history, zone));
    }
    Ok(0)
}

/// The order, its lines and its callbacks as text.
pub fn render_history(history: &OrderHistory, zone: chrono_tz::Tz) -> String {
    let order = &history.order;
    let time = |at: Option<chrono::NaiveDateTime>| at.map(|t| super::format_time(t, zone));
    let mut out = format!("order {} (onlineNo {})\n", order.so_id, order.online_no);
    let mut field = |name: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push_str(&format!("  {name:<15} {value}\n"));
        }
    };
    field("status", Some(order.status.to_string()));
    field(
        "cancel/return",
        order.cancel_state.map(|state| match &order.cancel_detail {
            Some(detail) if !detail.is_empty() => format!("{state}: {detail}"),
            _ => state.to_string(),
        }),
    );
    if order.status == OutboxStatus::OutOfStock {
        field("out of stock", order.out_of_stock_detail.clone());
    }
    field("haier order no", order.haier_order_no.clone());
    field("attempts", Some(order.attempts.to_string()));
    field("last error", order.last_error.clone());
    field("created", time(Some(order.created_at)));
    field("pushed", time(order.pushed_at));
    field("confirmed", time(order.confirmed_at));
    field("out of stock at", time(order.out_of_stock_at));
    field("delivered", time(order.delivered_at));
    field("updated", time(Some(order.updated_at)));

    out.push_str("\nlines\n");
    if history.lines.is_empty() {
        out.push_str("  none yet (an order gets its lines when it is pushed)\n");
    } else {
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_header(["product", "ordered", "received", "refused", "returned", "updated"]);
        for line in &history.lines {
            table.add_row([
                line.product_code.clone(),
                line.ordered_qty.to_string(),
                line.received_qty.to_string(),
                line.rejected_qty.to_string(),
                line.returned_qty.to_string(),
                super::format_time(line.updated_at, zone),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }

    out.push_str("\nshipments\n");
    if history.shipments.is_empty() {
        out.push_str("  none yet (the logistics job fetches them once Haier has the order)\n");
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY).set_header([
            "delivery record",
            "carrier",
            "express no",
            "serial numbers",
            "fetched",
        ]);
        for parcel in &history.shipments {
            table.add_row([
                parcel.delivery_record_code.clone(),
                parcel
                    .carrier_name
                    .clone()
                    .or_else(|| parcel.carrier_code.clone())
                    .unwrap_or_default(),
                parcel.express_no.clone(),
                parcel.serial_numbers().join(", "),
                super::format_time(parcel.fetched_at, zone),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }

    out.push_str("\ncallbacks\n");
    if history.events.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_header(["received", "method", "state", "outcome", "detail"]);
        for event in &history.events {
            table.add_row([
                super::format_time(event.received_at, zone),
                event.method.clone().unwrap_or_default(),
                event.state.clone().unwrap_or_default(),
                event.outcome.to_string(),
                event.detail.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }
    out
}

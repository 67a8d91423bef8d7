//! The prices pages: the latest price moves (`/prices`, by product code and with a limit), and
//! one product's supply and invoice price over time (`/prices/{product_code}`) as a step chart
//! with the table of its moves. They read through `db::prices`; prices are shown as stored
//! (decimal text) and parsed as decimals only to scale the chart.

use super::chart::{self, StepSeries};
use super::lists::Answer;
use super::pages::{layout, path_segment, time};
use super::Admin;
use crate::db::prices::{self, PriceChange};
use chrono::{NaiveDateTime, Utc};
use maud::{html, Markup};
use rust_decimal::Decimal;
use serde::Deserialize;

/// Price moves listed on `/prices` unless `limit` says otherwise.
const CHANGES_LISTED: i64 = 100;
/// The most `limit` may ask for.
const CHANGES_MAX: i64 = 1_000;
/// Moves of one product drawn at most (a price that moves daily has 3 650 in ten years).
const PRODUCT_CHANGES_MAX: i64 = 5_000;

/// What `/prices` is asked: one product's moves, and how many.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PricesQuery {
    pub(crate) product: Option<String>,
    pub(crate) limit: Option<String>,
}

/// `/prices`: the newest price moves, of one product when `product` is given.
pub(crate) async fn changes(admin: &Admin, query: PricesQuery) -> anyhow::Result<Answer> {
    let limit = match query.limit.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => CHANGES_LISTED,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=CHANGES_MAX).contains(&n) => n,
            _ => {
                return Ok(Answer::BadRequest(format!(
                    "limit `{text}` is not a number from 1 to {CHANGES_MAX}"
                )))
            }
        },
    };
    let product = query
        .product
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let filter = product.clone();
    let rows = admin
        .db
        .run(move |conn| Ok(prices::recent_changes(conn, filter.as_deref(), limit)?))
        .await?;
    let zone = admin.config().defaults.timezone;
    Ok(Answer::Page(layout(
        "Prices",
        zone,
        html! {
            form method="get" action="/prices" {
                label { "product code " input type="search" name="product" value=(product.as_deref().unwrap_or("")); }
                " " label { "at most " input type="number" name="limit" min="1" max=(CHANGES_MAX) value=(limit); }
                " " button type="submit" { "Show" }
            }
            h2 {
                @match &product {
                    Some(code) => { "Price moves of " a href=(format!("/prices/{}", path_segment(code))) { (code) } },
                    None => "Latest price moves",
                }
                " (at most " (limit) ")"
            }
            @if rows.is_empty() {
                p.muted { "No price moves recorded" @if product.is_some() { " for this product" } "." }
            } @else {
                (changes_table(&rows, zone, true))
            }
        },
    )))
}

/// `/prices/{product_code}`: the product's stored price, its prices over time, and its moves;
/// `None` when the product has neither a price nor a move.
pub(crate) async fn product(admin: &Admin, code: &str) -> anyhow::Result<Option<Markup>> {
    let owned = code.to_owned();
    let (price, moves) = admin
        .db
        .run(move |conn| {
            Ok((
                prices::find_price(conn, &owned)?,
                prices::changes_of_product(conn, &owned, PRODUCT_CHANGES_MAX)?,
            ))
        })
        .await?;
    if price.is_none() && moves.is_empty() {
        return Ok(None);
    }
    let zone = admin.config().defaults.timezone;
    let now = Utc::now().naive_utc();
    let (from, to) = chart_span(&moves, now);
    let supply = series("supply", "#1565c0", &moves, from, |c| {
        (&c.old_supply_price, &c.new_supply_price)
    });
    let invoice = series("invoice", "#ef6c00", &moves, from, |c| {
        (&c.old_invoice_price, &c.new_invoice_price)
    });
    let newest_first: Vec<PriceChange> = moves.iter().rev().cloned().collect();
    Ok(Some(layout(
        &format!("Prices of {code}"),
        zone,
        html! {
            @if let Some(price) = &price {
                table {
                    tr { th { "supply price" } td.num { (price.supply_price.as_deref().unwrap_or("-")) } }
                    tr { th { "invoice price" } td.num { (price.invoice_price.as_deref().unwrap_or("-")) } }
                    tr { th { "rebate rate" } td.num { (price.rebate_rate.as_deref().unwrap_or("-")) } }
                    tr { th { "rebate money" } td.num { (price.rebate_money.as_deref().unwrap_or("-")) } }
                    tr { th { "on sale" } td { (if price.is_sales { "yes" } else { "no" }) } }
                    tr { th { "updated" } td { (time(price.updated_at, zone)) } }
                }
            }
            h2 { "Over time" }
            @if moves.is_empty() {
                p.muted { "The price has not moved since it was first stored." }
            } @else {
                (chart::steps(
                    &format!("Supply and invoice price of {code} over time"),
                    &[supply, invoice],
                    from,
                    to,
                    zone,
                ))
                p.legend {
                    span { span style="color:#1565c0" { "■" } " supply price" }
                    span { span style="color:#ef6c00" { "■" } " invoice price" }
                }
            }
            h2 { "Moves" }
            @if moves.is_empty() {
                p.muted { "None recorded." }
            } @else {
                (changes_table(&newest_first, zone, false))
            }
        },
    )))
}

/// From a little before the first move to now, so that the price before it shows.
fn chart_span(moves: &[PriceChange], now: NaiveDateTime) -> (NaiveDateTime, NaiveDateTime) {
    let (Some(first), Some(last)) = (moves.first(), moves.last()) else {
        return (now - chrono::Duration::days(1), now);
    };
    let to = now.max(last.changed_at);
    let lead = ((to - first.changed_at) / 20).max(chrono::Duration::hours(1));
    (first.changed_at - lead, to)
}

/// One price's steps: its value before the first move (from `from`), then its value after each.
fn series(
    name: &'static str,
    colour: &'static str,
    moves: &[PriceChange],
    from: NaiveDateTime,
    price: impl Fn(&PriceChange) -> (&Option<String>, &Option<String>),
) -> StepSeries {
    let parse = |text: &Option<String>| text.as_deref().and_then(|t| t.trim().parse::<Decimal>().ok());
    let mut steps = Vec::with_capacity(moves.len() + 1);
    if let Some(first) = moves.first() {
        let (old, _) = price(first);
        steps.push((from, parse(old)));
    }
    for change in moves {
        let (_, new) = price(change);
        steps.push((change.changed_at, parse(new)));
    }
    StepSeries { name, colour, steps }
}

fn changes_table(rows: &[PriceChange], zone: chrono_tz::Tz, with_product: bool) -> Markup {
    let shown = |v: &Option<String>| v.as_deref().unwrap_or("-").to_owned();
    html! {
        table {
            tr {
                th { "changed" }
                @if with_product { th { "product" } }
                th { "supply price" } th { "invoice price" }
            }
            @for row in rows {
                tr {
                    td { (time(row.changed_at, zone)) }
                    @if with_product {
                        td { a href=(format!("/prices/{}", path_segment(&row.product_code))) { (row.product_code) } }
                    }
                    td.num { (shown(&row.old_supply_price)) " → " (shown(&row.new_supply_price)) }
                    td.num { (shown(&row.old_invoice_price)) " → " (shown(&row.new_invoice_price)) }
                }
            }
        }
    }
}

//! The list pages: orders (`/orders`, one order `/orders/{so_id}`) and the sync log (`/logs`,
//! with the filters of `haier-sync logs`). They read through `orders::outbox`,
//! `orders::history` and `runs::log`.

use super::actions::View;
use super::pages::{layout, opt_time, path_segment, status_badge, time};
use super::Admin;
use crate::orders::history::OrderHistory;
use crate::orders::{outbox, OutboxStatus};
use crate::runs::{self, LogFilter, RunStatus, SyncType};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

/// Orders listed at most on `/orders`.
const ORDERS_LISTED: i64 = 200;
/// Sync-log rows listed at most on `/logs`.
const LOG_ROWS_MAX: i64 = 1_000;

/// What `/orders` is asked: a state, or one `so_id` to look up.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OrdersQuery {
    pub(crate) state: Option<String>,
    pub(crate) so_id: Option<String>,
}

/// What a list page answers.
pub(crate) enum Answer {
    Page(Markup),
    /// To another page of the site (a search that found its order).
    Redirect(String),
    /// A filter value that is not one, said in a sentence.
    BadRequest(String),
}

/// `/orders`: the outbox by state, the orders of one state, and a search by `so_id` (which
/// redirects to the order's page when it finds it).
pub(crate) async fn orders(admin: &Admin, query: OrdersQuery, view: &View) -> anyhow::Result<Answer> {
    let state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match text.parse::<OutboxStatus>() {
            Ok(state) => Some(state),
            Err(_) => {
                return Ok(Answer::BadRequest(format!("`{text}` is not an outbox state")));
            }
        },
        None => None,
    };
    let so_id = query.so_id.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let searched = so_id.clone();
    let (by_state, rows, found) = admin
        .db
        .run(move |conn| {
            let found = match &searched {
                Some(so_id) => outbox::find_by_so_id(conn, so_id)?,
                None => None,
            };
            Ok((
                outbox::count_by_status(conn)?,
                outbox::list_orders(conn, state, ORDERS_LISTED)?,
                found,
            ))
        })
        .await?;
    if let Some(order) = found {
        return Ok(Answer::Redirect(format!(
            "/orders/{}",
            path_segment(&order.so_id)
        )));
    }
    let zone = admin.config().defaults.timezone;
    Ok(Answer::Page(layout(
        "Orders",
        zone,
        html! {
            (view.notice())
            form method="get" action="/orders" {
                label { "so_id " input type="search" name="so_id" value=(so_id.as_deref().unwrap_or("")); }
                " " button type="submit" { "Find" }
            }
            @if let Some(so_id) = &so_id {
                div.warn { "No order with so_id " code { (so_id) } " in the outbox." }
            }
            h2 { "By state" }
            table {
                tr { th { "state" } th { "orders" } }
                @for (state, count) in &by_state {
                    tr { td { a href=(format!("/orders?state={state}")) { (state) } } td.num { (count) } }
                }
            }
            @if by_state.iter().any(|(state, count)| *state == OutboxStatus::Dead && *count > 0) {
                (view.form("/outbox/retry", html! {
                    button type="submit" { "Retry every dead order" }
                }))
            }
            h2 {
                @match state { Some(state) => { "Orders " (state) }, None => "Latest orders" }
                " (at most " (ORDERS_LISTED) ")"
            }
            table {
                tr { th { "so_id" } th { "online no." } th { "state" } th { "attempts" } th { "Haier order" } th { "created" } th { "changed" } th { "last error" } }
                @for row in &rows {
                    tr {
                        td { a href=(format!("/orders/{}", path_segment(&row.so_id))) { (row.so_id) } }
                        td { (row.online_no) }
                        td { (row.status) }
                        td.num { (row.attempts) }
                        td { (row.haier_order_no.as_deref().unwrap_or("-")) }
                        td { (time(row.created_at, zone)) }
                        td { (time(row.updated_at, zone)) }
                        td { (row.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        },
    )))
}

/// `/orders/{so_id}`: the order, its lines, its parcels and its callbacks.
pub(crate) fn order(admin: &Admin, history: &OrderHistory, view: &View) -> Markup {
    let zone = admin.config().defaults.timezone;
    let order = &history.order;
    layout(
        &format!("Order {}", order.so_id),
        zone,
        html! {
            (view.notice())
            @if order.status == OutboxStatus::Dead {
                (view.form("/outbox/retry", html! {
                    input type="hidden" name="so_id" value=(order.so_id);
                    button type="submit" { "Retry this order" }
                }))
            }
            table {
                tr { th { "state" } td { (order.status) } }
                tr { th { "online no." } td { (order.online_no) } }
                tr { th { "Haier order" } td { (order.haier_order_no.as_deref().unwrap_or("-")) } }
                tr { th { "attempts" } td { (order.attempts) } }
                tr { th { "next attempt" } td { (time(order.next_attempt_at, zone)) } }
                tr { th { "last error" } td { (order.last_error.as_deref().unwrap_or("-")) } }
                tr { th { "created" } td { (time(order.created_at, zone)) } }
                tr { th { "pushed" } td { (opt_time(order.pushed_at, zone)) } }
                tr { th { "confirmed" } td { (opt_time(order.confirmed_at, zone)) } }
                tr { th { "delivered" } td { (opt_time(order.delivered_at, zone)) } }
                tr { th { "cancel" } td {
                    (order.cancel_state.map_or_else(|| "-".to_owned(), |c| c.to_string()))
                    @if let Some(detail) = &order.cancel_detail { " " (detail) }
                } }
                @if let Some(detail) = &order.out_of_stock_detail {
                    tr { th { "out of stock" } td { (detail) } }
                }
            }
            h2 { "Lines" }
            @if history.lines.is_empty() {
                p.muted { "No lines recorded yet (they are written when the order is pushed)." }
            }
            table {
                tr { th { "product" } th { "ordered" } th { "received" } th { "rejected" } th { "returned" } }
                @for line in &history.lines {
                    tr {
                        td { (line.product_code) }
                        td.num { (line.ordered_qty) }
                        td.num { (line.received_qty) }
                        td.num { (line.rejected_qty) }
                        td.num { (line.returned_qty) }
                    }
                }
            }
            h2 { "Shipments" }
            @if history.shipments.is_empty() {
                p.muted { "None fetched yet." }
            } @else {
                table {
                    tr { th { "carrier" } th { "express no." } th { "delivery record" } th { "serial numbers" } th { "fetched" } }
                    @for parcel in &history.shipments {
                        tr {
                            td { (parcel.carrier_name.as_deref().or(parcel.carrier_code.as_deref()).unwrap_or("-")) }
                            td { (parcel.express_no) }
                            td { (parcel.delivery_record_code) }
                            td { (parcel.serial_numbers().join(", ")) }
                            td { (time(parcel.fetched_at, zone)) }
                        }
                    }
                }
            }
            h2 { "Callbacks" }
            @if history.events.is_empty() {
                p.muted { "Haier has sent none." }
            } @else {
                table {
                    tr { th { "received" } th { "method" } th { "state" } th { "outcome" } th { "detail" } }
                    @for event in &history.events {
                        tr {
                            td { (time(event.received_at, zone)) }
                            td { (event.method.as_deref().unwrap_or("-")) }
                            td { (event.state.as_deref().unwrap_or("-")) }
                            td { (event.outcome) }
                            td { (event.detail.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        },
    )
}

/// What `/logs` is asked: the filters of `haier-sync logs`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogsQuery {
    pub(crate) job: Option<String>,
    #[serde(rename = "type")]
    pub(crate) sync_type: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) limit: Option<String>,
}

/// `/logs`: sync-log rows, newest first, filtered as `haier-sync logs` filters.
pub(crate) async fn logs(admin: &Admin, query: LogsQuery) -> anyhow::Result<Answer> {
    let zone = admin.config().defaults.timezone;
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (job, sync_type, status, since, limit) = (
        given(&query.job),
        given(&query.sync_type),
        given(&query.status),
        given(&query.since),
        given(&query.limit),
    );
    let filter = LogFilter {
        job_name: job.clone(),
        sync_type: match &sync_type {
            Some(text) => match text.parse::<SyncType>() {
                Ok(t) => Some(t),
                Err(_) => return Ok(Answer::BadRequest(format!("`{text}` is not a sync type"))),
            },
            None => None,
        },
        status: match &status {
            Some(text) => match text.parse::<RunStatus>() {
                Ok(s) => Some(s),
                Err(_) => return Ok(Answer::BadRequest(format!("`{text}` is not a run status"))),
            },
            None => None,
        },
        since: match &since {
            Some(text) => match crate::cli::logs::parse_since(text, zone, Utc::now()) {
                Ok(at) => Some(at),
                Err(e) => return Ok(Answer::BadRequest(format!("since: {e:#}"))),
            },
            None => None,
        },
        limit: match &limit {
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=LOG_ROWS_MAX).contains(&n) => n,
                _ => {
                    return Ok(Answer::BadRequest(format!(
                        "limit must be a number from 1 to {LOG_ROWS_MAX}; got `{text}`"
                    )))
                }
            },
            None => 50,
        },
    };
    let rows = {
        let filter = filter.clone();
        admin
            .db
            .run(move |conn| Ok(runs::log::list(conn, &filter)?))
            .await?
    };
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(Answer::Page(layout(
        "Sync log",
        zone,
        html! {
            form method="get" action="/logs" {
                label { "job " input name="job" value=(value(&job)) size="12"; } " "
                label { "type " input name="type" value=(value(&sync_type)) size="9" placeholder="prices"; } " "
                label { "status " input name="status" value=(value(&status)) size="9" placeholder="failed"; } " "
                label { "since " input name="since" value=(value(&since)) size="10" placeholder="7d"; } " "
                label { "limit " input name="limit" value=(filter.limit) size="5"; } " "
                button type="submit" { "Filter" }
            }
            @if rows.is_empty() {
                p.muted { "No runs match." }
            } @else {
                table {
                    tr { th { "id" } th { "job" } th { "type" } th { "status" } th { "trigger" } th { "started" } th { "took" } th { "total" } th { "ok" } th { "failed" } th { "instance" } th { "message" } }
                    @for row in &rows {
                        tr {
                            td.num { (row.id) }
                            td { a href=(format!("/jobs/{}", path_segment(&row.job_name))) { (row.job_name) } }
                            td { (row.sync_type) }
                            td { (status_badge(row.status)) }
                            td { (row.trigger) }
                            td { (time(row.started_at, zone)) }
                            td { (row.duration().map_or_else(|| "-".to_owned(), crate::cli::format_duration)) }
                            td.num { (row.total_count) }
                            td.num { (row.success_count) }
                            td.num { (row.failed_count) }
                            td { (row.instance) }
                            td { (row.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        },
    )))
}

/// The page of [`Answer::BadRequest`].
pub(crate) fn bad_request(admin: &Admin, message: &str) -> Markup {
    layout(
        "Bad request",
        admin.config().defaults.timezone,
        html! { p { (message) } },
    )
}

//! YLH's after-sale endpoints on orders Haier has taken, under each path suffix: reschedule of
//! delivery and installation (`service-order`), delivery and installation photos, and express
//! numbers with serial numbers by Haier order no. (`service-stock`). An order counts as taken
//! from its confirmation on; the order book is `orders.rs`, the gate `server.rs`.

use super::auth::lock;
use super::callbacks::beijing;
use super::fields::{value_text, Fields};
use super::orders::{Rescheduled, StoredOrder};
use super::reply::{self, BizError};
use super::server::SimState;
use super::stats::Endpoint;
use super::ylh::PATH_SUFFIXES;
use crate::haier::paths::{delivery_photos_path, express_numbers_path, reschedule_path};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Timelike};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// The most Haier order numbers one express-numbers call takes.
pub const MAX_ORDERS_PER_EXPRESS_CALL: usize = 100;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    PATH_SUFFIXES.iter().fold(Router::new(), |router, suffix| {
        router
            .route(&reschedule_path(suffix), post(reschedule))
            .route(&delivery_photos_path(suffix), post(photos))
            .route(&express_numbers_path(suffix), post(express_numbers))
    })
}

/// The digits of a Haier order no., which name its delivery record, parcels and units.
fn digits_of(ext_order_no: &str) -> String {
    ext_order_no.chars().filter(char::is_ascii_digit).collect()
}

/// The order Haier has taken and confirmed by `now` under this order no., if any.
fn taken(order: Option<&StoredOrder>, now: Instant) -> Option<&StoredOrder> {
    order.filter(|o| o.ext_order_no().is_some() && now >= o.confirm_at)
}

/// A time field of the reschedule: a JSON integer of epoch ms at 23:59:59 Beijing time.
fn end_of_day_ms(f: &Fields, name: &str) -> Result<i64, BizError> {
    let ms = f
        .value(name)
        .ok_or_else(|| BizError::missing(name))?
        .as_i64()
        .ok_or_else(|| BizError::malformed(name, "必须是毫秒时间戳(数字)"))?;
    let local = DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| BizError::malformed(name, "不是合法的时间戳"))?
        .with_timezone(&beijing());
    if (local.hour(), local.minute(), local.second()) != (23, 59, 59) {
        return Err(BizError::malformed(name, "时间必须为当天23:59:59"));
    }
    Ok(ms)
}

async fn reschedule(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::OrderReschedule, &headers).await {
        return reply;
    }
    sim.answer(reschedule_order(&sim, &body))
}

fn reschedule_order(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let order_no = f.require_text("retailOrderNo")?;
    let distribution_time = end_of_day_ms(&f, "distributionTime")?;
    let install_time = end_of_day_ms(&f, "installTime")?;
    let now = Instant::now();
    let delivery_after = sim.delivery_after();
    let mut book = lock(&sim.orders);
    taken(book.by_ext_order_no(&order_no), now).ok_or_else(|| BizError::order_not_found(&order_no))?;
    let order = book
        .by_ext_order_no_mut(&order_no)
        .ok_or_else(|| BizError::order_not_found(&order_no))?;
    if order.cancel.is_some_and(|c| c.granted && c.at <= now) {
        return Ok(reply::ok_with_messages(
            false,
            &["订单已取消，无法改约".to_owned()],
            &[],
        ));
    }
    if order.is_delivered(now, delivery_after) {
        return Ok(reply::ok_with_messages(
            false,
            &["订单已签收，无法改约".to_owned()],
            &[],
        ));
    }
    let times = order.rescheduled.map_or(0, |r| r.times) + 1;
    order.rescheduled = Some(Rescheduled {
        distribution_time,
        install_time,
        times,
    });
    Ok(reply::ok(true))
}

async fn photos(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::DeliveryPhotos, &headers).await {
        return reply;
    }
    sim.answer(delivery_photos(&sim, &body))
}

fn delivery_photos(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let order_no = f.require_text("orderNo")?;
    let book = lock(&sim.orders);
    taken(book.by_ext_order_no(&order_no), Instant::now())
        .ok_or_else(|| BizError::order_not_found(&order_no))?;
    drop(book);
    let digits = digits_of(&order_no);
    let first_sn = serial_numbers(&digits, 0, 1).into_iter().next();
    let url = |name: &str| format!("https://img.simulator.invalid/ylh/{order_no}/{name}.jpg");
    let data = json!([{
        "orderNo": order_no,
        "orderCode": format!("DR{digits}01"),
        "ylhOrderCode": format!("{order_no}.F1"),
        "snNo": first_sn,
        "photosDelivery": [
            {"imgDesc": "送货签收照片", "imgUrl": url("delivery-1"), "rowId": 1, "scene": 1},
            {"imgDesc": "安装完成照片", "imgUrl": url("install-1"), "rowId": 2, "scene": 2},
            {"imgDesc": "机身条码照片", "imgUrl": url("install-2"), "rowId": 3, "scene": "2"},
        ],
    }]);
    Ok(reply::ok(data))
}

/// One SN per unit of item line `line`: `SN<digits><line><unit>`.
fn serial_numbers(digits: &str, line: usize, qty: u64) -> Vec<String> {
    (1..=qty)
        .map(|unit| format!("SN{digits}{:02}{unit:03}", line + 1))
        .collect()
}

async fn express_numbers(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::ExpressNumbers, &headers).await {
        return reply;
    }
    sim.answer(query_express_numbers(&sim, &body))
}

/// The body: a bare JSON array of at most [`MAX_ORDERS_PER_EXPRESS_CALL`] Haier order numbers.
fn order_numbers(body: &[u8]) -> Result<Vec<String>, BizError> {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Err(BizError::malformed("请求体", "必须是订单号数组")),
        Err(_) => return Err(BizError::malformed("请求体", "不是合法的JSON")),
    };
    if items.is_empty() {
        return Err(BizError::missing("订单号"));
    }
    if items.len() > MAX_ORDERS_PER_EXPRESS_CALL {
        return Err(BizError {
            err_code: "TOO_MANY_CODES",
            message: format!(
                "订单号数量超过上限{MAX_ORDERS_PER_EXPRESS_CALL}个 (本次{}个)",
                items.len()
            ),
        });
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            value_text(item).ok_or_else(|| BizError::malformed(&format!("[{i}]"), "必须是订单号"))
        })
        .collect()
}

/// Every taken order of the list has one delivery record (`DR<digits>01`, as in its logistics)
/// with one parcel per item line: carrier 日日顺, express no. `RRS<digits>-<line>`, one SN per
/// unit. Unknown order numbers are left out.
fn query_express_numbers(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let order_nos = order_numbers(body)?;
    let now = Instant::now();
    let book = lock(&sim.orders);
    let data: Vec<Value> = order_nos
        .iter()
        .filter_map(|no| taken(book.by_ext_order_no(no), now).map(|order| (no, order)))
        .map(|(no, order)| {
            let digits = digits_of(no);
            let parcels: Vec<Value> = order
                .lines
                .iter()
                .enumerate()
                .map(|(line, item)| {
                    json!({
                        "logisticsCode": "RRS",
                        "logisticsName": "日日顺物流",
                        "expNo": format!("RRS{digits}-{}", line + 1),
                        "barCodes": serial_numbers(&digits, line, item.total_qty),
                    })
                })
                .collect();
            json!({
                "orderCode": no,
                "deliveryRecordCode": format!("DR{digits}01"),
                "logisticsList": parcels,
            })
        })
        .collect();
    drop(book);
    Ok(reply::ok(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_express_body_must_be_a_short_array_of_order_numbers() {
        assert_eq!(order_numbers(br#"["SO.1", 2]"#).unwrap(), ["SO.1", "2"]);
        for bad in [
            &br#"{"orderCode":"SO.1"}"#[..],
            b"[]",
            b"nope",
            br#"["SO.1", {}]"#,
        ] {
            assert_eq!(order_numbers(bad).unwrap_err().err_code, "PARAM_MISSING");
        }
        let many = serde_json::to_vec(&vec!["SO.1"; 101]).unwrap();
        assert_eq!(order_numbers(&many).unwrap_err().err_code, "TOO_MANY_CODES");
    }

    #[test]
    fn serial_numbers_are_one_per_unit() {
        assert_eq!(serial_numbers("2026", 1, 2), ["SN202602001", "SN202602002"]);
    }
}

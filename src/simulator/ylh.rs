//! The YLH (易理货) order cloud's endpoints under each path suffix (`-dev`, `-pre`, none): the
//! password-grant token, order push (required fields, times as numbers, `DUPLICATE_SOID` or a
//! message-only repeat refusal, a reply lost after the order is stored, Haier's decision and the
//! confirm callback, and the door refusals and out-of-stock notices the faults ask for) and order
//! cancel or return (answered by the order's stage, `units.rs`, with its callback). The gate is in `server.rs`, the order
//! book in `orders.rs`, the sending in `callbacks.rs`.

use super::auth::{self, lock};
use super::callbacks::{METHOD_CANCEL, METHOD_CONFIRM, METHOD_OUT_OF_STOCK};
use super::faults::Faults;
use super::faults::LostReply;
use super::fields::{value_integer, value_is_number, value_text, Fields};
use super::orders::{CancelRecord, Item, Outcome, StoredOrder};
use super::reply::{self, BizError};
use super::server::SimState;
use super::stats::{bump, Endpoint};
use super::units::{self, CancelOutcome};
use crate::haier::paths::{cancel_path, push_path, ylh_token_path};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// The path suffixes of the test, stage and production deployments.
pub const PATH_SUFFIXES: [&str; 3] = ["-dev", "-pre", ""];

/// The push's required top-level text fields, in the order they are checked.
const REQUIRED_TEXT_BEFORE_QTY: [&str; 7] = [
    "sourceSystem",
    "shopName",
    "sellerCode",
    "consigneeName",
    "consigneeMobile",
    "onlineNo",
    "soId",
];
const REQUIRED_TEXT_AFTER_CREATE: [&str; 4] = ["province", "city", "area", "detailAddress"];
/// The optional times: JSON numbers of epoch milliseconds ("number, Date类型（时间戳）"); text
/// is refused, so a client that sends a date as text is caught.
const OPTIONAL_TIMES: [&str; 2] = ["distributionTime", "installTime"];

pub(crate) fn routes() -> Router<Arc<SimState>> {
    PATH_SUFFIXES.iter().fold(Router::new(), |router, suffix| {
        router
            .route(&ylh_token_path(suffix), post(token))
            .route(&push_path(suffix), post(push))
            .route(&cancel_path(suffix), post(cancel))
    })
}

async fn token(
    State(sim): State<Arc<SimState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(reply) = sim.enter(Endpoint::TokenYlh, &headers).await {
        return reply;
    }
    let refuse = |status, error, description| {
        bump(&sim.counters.unauthorized);
        reply::oauth_error(status, error, description)
    };
    let system_name = headers
        .get("system-name")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if system_name != Some("ylh-open-api") {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Full authentication is required: system-name",
        );
    }
    let creds = &sim.creds.ylh;
    match auth::basic_credentials(&headers) {
        Some((id, password)) if id == creds.client_id && password == creds.client_password.expose() => {}
        _ => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Bad client credentials",
            )
        }
    }
    // The form body wins over query parameters of the same name.
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    if let Some(query) = query {
        params.extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if param("grant_type") != Some("password") {
        return reply::oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        );
    }
    if param("username") != Some(creds.username.as_str())
        || param("password") != Some(creds.password.expose())
    {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "用户名或密码错误");
    }
    let ttl = sim.token_ttl();
    let token = auth::new_uuid_token();
    sim.ylh_tokens.insert(
        token.clone(),
        Instant::now(),
        ttl,
        sim.faults().revoke_tokens_every_ms,
    );
    reply::json(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "token_type": "bearer",
            "refresh_token": auth::new_uuid_token(),
            // Spring reports the whole seconds left, one less than the lifetime right away.
            "expires_in": ttl.as_secs().saturating_sub(1),
            "scope": "all",
        }),
    )
}

async fn push(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::OrderPush, &headers).await {
        return reply;
    }
    let outcome = push_order(&sim, &body);
    // The order is stored; only its reply may be lost.
    if outcome.is_ok() {
        match sim.faults().roll_lost_reply() {
            Some(LostReply::Hang) => {
                bump(&sim.counters.replies_lost);
                sim.hang().await;
                return reply::gateway_timeout();
            }
            Some(LostReply::GatewayTimeout) => {
                bump(&sim.counters.replies_lost);
                return reply::gateway_timeout();
            }
            None => {}
        }
    }
    sim.answer(outcome)
}

/// A push that passed validation: what the order book and the callback need.
struct ValidPush {
    so_id: String,
    items: Vec<Item>,
    warnings: Vec<String>,
}

fn validate_push(sim: &SimState, f: &Fields) -> Result<ValidPush, BizError> {
    for name in REQUIRED_TEXT_BEFORE_QTY {
        f.require_text(name)?;
    }
    f.require_integer("totalQty")?;
    f.require_number("totalAmt")?;
    f.require_integer("createTime")?;
    for name in REQUIRED_TEXT_AFTER_CREATE {
        f.require_text(name)?;
    }
    let delivery_install = f.require_text("deliveryInstall")?;
    if delivery_install != "true" && delivery_install != "false" {
        return Err(BizError::malformed(
            "deliveryInstall",
            "必须是\"true\"或\"false\"",
        ));
    }
    let items = match f.value("itemList") {
        None => return Err(BizError::missing("itemList")),
        Some(Value::Array(items)) if items.is_empty() => return Err(BizError::missing("itemList")),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| validate_item(i, item))
            .collect(),
        Some(_) => Err(BizError::malformed("itemList", "必须是数组")),
    }?;
    let seller = f.require_text("sellerCode")?;
    if seller != sim.creds.ylh.seller_code {
        return Err(BizError::credentials(format!("卖方编码与账号不匹配: {seller}")));
    }
    let mut times = [None, None];
    for (slot, name) in times.iter_mut().zip(OPTIONAL_TIMES) {
        *slot = match f.value(name) {
            None => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(_) => return Err(BizError::malformed(name, "必须是数字（毫秒时间戳）")),
        };
    }
    let mut warnings = Vec::new();
    let both_equal = matches!(times, [Some(d), Some(i)] if d == i);
    if (delivery_install == "true") != both_equal {
        warnings.push("deliveryInstall与distributionTime/installTime不一致".to_owned());
    }
    Ok(ValidPush {
        so_id: f.require_text("soId")?,
        items,
        warnings,
    })
}

fn validate_item(index: usize, item: &Value) -> Result<Item, BizError> {
    let field = |name: &str| format!("itemList[{index}].{name}");
    let Value::Object(map) = item else {
        return Err(BizError::malformed(&format!("itemList[{index}]"), "必须是对象"));
    };
    let get = |name: &str| map.get(name).filter(|v| !v.is_null());
    let product_code = get("productCode")
        .and_then(value_text)
        .ok_or_else(|| BizError::missing(&field("productCode")))?;
    let qty = get("itemQty").ok_or_else(|| BizError::missing(&field("itemQty")))?;
    let qty = value_integer(qty)
        .filter(|q| *q >= 1)
        .ok_or_else(|| BizError::malformed(&field("itemQty"), "必须是不小于1的整数"))?;
    for name in ["retailPrice", "discountAmount", "actualPrice"] {
        let value = get(name).ok_or_else(|| BizError::missing(&field(name)))?;
        if !value_is_number(value) {
            return Err(BizError::malformed(&field(name), "必须是数字"));
        }
    }
    Ok(Item {
        product_code,
        qty: qty as u64,
    })
}

fn push_order(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let fields = Fields::parse(body)?;
    let push = validate_push(sim, &fields)?;
    let online_no = fields.text("onlineNo");
    let now = Instant::now();
    let received_at = Utc::now();
    let delay = sim.callback_delay();
    let confirm_at_wall = received_at + delay;
    let refused: Vec<&str> = push
        .items
        .iter()
        .filter(|item| !sim.catalog.is_for_sale(&item.product_code))
        .map(|item| item.product_code.as_str())
        .collect();
    let mut book = lock(&sim.orders);
    bump(&sim.counters.orders_received);
    if book.contains(&push.so_id) {
        drop(book);
        bump(&sim.counters.duplicates_rejected);
        return Err(if sim.faults().duplicate_message_only {
            BizError::duplicate_so_id_message_only(&push.so_id)
        } else {
            BizError::duplicate_so_id(&push.so_id)
        });
    }
    let outcome = if refused.is_empty() {
        Outcome::Taken {
            ext_order_no: book.next_ext_order_no(confirm_at_wall),
        }
    } else {
        Outcome::Refused {
            fail_msg: format!("商品不可采（未投放或不存在）: {}", refused.join(",")),
        }
    };
    let (ext_order_no, state, fail_msg) = match &outcome {
        Outcome::Taken { ext_order_no } => (ext_order_no.clone(), 1, String::new()),
        Outcome::Refused { fail_msg } => (String::new(), 0, fail_msg.clone()),
    };
    let taken = matches!(outcome, Outcome::Taken { .. });
    let mut order = StoredOrder {
        so_id: push.so_id.clone(),
        raw: Value::Object(fields.0),
        received_at,
        lines: units::lines_of(&push.items),
        outcome,
        confirm_at: now + delay,
        confirm_at_wall,
        cancel: None,
        rescheduled: None,
        cancel_request: None,
    };
    let faults = sim.faults();
    // Decided when the order is taken, reported when it is delivered.
    let door_refusal = (taken && Faults::happens(faults.door_refusal_rate))
        .then(|| refuse_some_at_door(&mut order))
        .flatten()
        .map(|mut data| {
            sim.name_callback_order(&mut data, &push.so_id, online_no.as_deref());
            data
        });
    let out_of_stock = (taken && Faults::happens(faults.out_of_stock_rate)).then(|| {
        let mut data = units::out_of_stock_data(&order, "库存不足，补货中");
        sim.name_callback_order(&mut data, &push.so_id, online_no.as_deref());
        data
    });
    book.insert(order);
    drop(book);
    if let Some(data) = door_refusal {
        sim.callbacks.schedule(
            delay + sim.delivery_after(),
            METHOD_CANCEL,
            data.to_string(),
            sim.epoch(),
        );
    }
    if let Some(data) = out_of_stock {
        sim.callbacks
            .schedule(delay / 2, METHOD_OUT_OF_STOCK, data.to_string(), sim.epoch());
    }
    bump(&sim.counters.orders_accepted);
    tracing::debug!(so_id = %push.so_id, state, "simulator: order accepted");
    let data = json!({
        "ExtOrderNo": ext_order_no,
        "PlatformOrderNo": sim.callback_order_no(&push.so_id, online_no.as_deref()),
        "State": state,
        "FailMsg": fail_msg,
    });
    sim.callbacks
        .schedule(delay, METHOD_CONFIRM, data.to_string(), sim.epoch());
    Ok(reply::ok_with_messages(true, &[], &push.warnings))
}

async fn cancel(State(sim): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reply) = sim.enter(Endpoint::OrderCancel, &headers).await {
        return reply;
    }
    sim.answer(cancel_order(&sim, &body))
}

/// A refusal at the door of one product, some or all of its units (the `door_refusal_rate`
/// fault): the callback's `Data`, or `None` for an order with no lines.
fn refuse_some_at_door(order: &mut StoredOrder) -> Option<Value> {
    use rand::Rng;
    let mut rng = rand::rng();
    let line = order.lines.get(rng.random_range(0..order.lines.len().max(1)))?;
    let (code, qty) = (
        line.product_code.clone(),
        rng.random_range(1..=line.total_qty.max(1)),
    );
    let state = units::refuse_at_door(order, &code, qty).ok()?;
    Some(units::cancel_data(order, state, ""))
}

fn cancel_order(sim: &SimState, body: &[u8]) -> Result<Response, BizError> {
    let f = Fields::parse(body)?;
    let so_id = f.require_text("soId")?;
    f.require_integer("cancelTime")?;
    f.require_text("cancelReason")?;
    f.require_text("sourceSystem")?;
    let now = Instant::now();
    let delivery_after = sim.delivery_after();
    let mut book = lock(&sim.orders);
    let order = book
        .get_mut(&so_id)
        .ok_or_else(|| BizError::order_not_found(&so_id))?;
    let online_no = order.raw.get("onlineNo").and_then(value_text);
    if order.ext_order_no().is_none() {
        return Ok(reply::ok_with_messages(
            false,
            &["订单已被拒绝，无需取消".to_owned()],
            &[],
        ));
    }
    order.cancel_request = Some(Value::Object(f.0.clone()));
    if order.cancel.is_some_and(|c| c.granted) {
        return Ok(reply::ok_with_messages(
            false,
            &["订单已申请取消".to_owned()],
            &[],
        ));
    }
    // A cancel takes effect once Haier has the order, never before its confirmation.
    let effective = now.max(order.confirm_at);
    let wait = effective - now;
    let delivered = order.is_delivered(effective, delivery_after);
    let shipped = order.is_shipped(effective, delivery_after);
    let outcome = sim
        .faults()
        .cancel_outcome
        .unwrap_or_else(|| CancelOutcome::by_stage(shipped, delivered));
    let granted = outcome.accepted();
    order.cancel = Some(CancelRecord {
        at: effective,
        at_wall: Utc::now() + wait,
        granted,
    });
    let (state, fail_msg) = units::apply_cancel(order, outcome, delivered);
    let mut data = units::cancel_data(order, state, fail_msg);
    drop(book);
    sim.name_callback_order(&mut data, &so_id, online_no.as_deref());
    if granted {
        bump(&sim.counters.orders_cancelled);
    }
    tracing::debug!(%so_id, outcome = outcome.message(), "simulator: cancel answered");
    sim.callbacks.schedule(
        wait + sim.callback_delay(),
        METHOD_CANCEL,
        data.to_string(),
        sim.epoch(),
    );
    Ok(reply::ok(true))
}

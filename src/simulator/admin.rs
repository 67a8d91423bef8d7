//! The inspection and control API under `/_sim/` for tests, benchmarks and people with curl:
//! stats, accepted orders, faults (read and change at run time), reset, token expiry, a mutation
//! step on demand and a catalog summary; and, for one order, a refusal at the door, a return
//! and an out-of-stock notice sent on demand, so tests can drive exact scenarios. None of it
//! passes the fault gate or needs a token.

use super::auth::lock;
use super::callbacks::{METHOD_CANCEL, METHOD_OUT_OF_STOCK};
use super::orders::StoredOrder;
use super::reply;
use super::server::SimState;
use super::units;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/orders", get(orders))
        .route("/_sim/faults", get(faults).post(update_faults))
        .route("/_sim/reset", post(reset))
        .route("/_sim/expire-tokens", post(expire_tokens))
        .route("/_sim/mutate", post(mutate))
        .route("/_sim/catalog", get(catalog))
        .route("/_sim/orders/{so_id}/door-refusal", post(door_refusal))
        .route("/_sim/orders/{so_id}/return", post(take_back))
        .route("/_sim/orders/{so_id}/out-of-stock", post(out_of_stock))
}

async fn stats(State(sim): State<Arc<SimState>>) -> Response {
    reply::json(StatusCode::OK, &sim.counters.snapshot())
}

/// Every accepted order: `soId`, Haier's decision, and the push body as received (`order`).
async fn orders(State(sim): State<Arc<SimState>>) -> Response {
    let orders: Vec<_> = lock(&sim.orders).all().iter().map(|o| o.to_sim_order()).collect();
    reply::json(StatusCode::OK, &orders)
}

async fn faults(State(sim): State<Arc<SimState>>) -> Response {
    reply::json(StatusCode::OK, &sim.faults())
}

/// A partial update: only the keys sent change; `null` turns `qps` or `revoke_tokens_every_ms`
/// off. Answers the faults now in force, or 400 with the reason (and no change).
async fn update_faults(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    let update = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => {
            return reply::json(
                StatusCode::BAD_REQUEST,
                &json!({"error": "the body must be a JSON object"}),
            )
        }
    };
    match sim.update_faults(&update) {
        Ok(faults) => {
            tracing::info!(?faults, "simulator: faults changed");
            reply::json(StatusCode::OK, &faults)
        }
        Err(reason) => reply::json(StatusCode::BAD_REQUEST, &json!({"error": reason})),
    }
}

async fn reset(State(sim): State<Arc<SimState>>) -> Response {
    sim.reset();
    reply::json(StatusCode::OK, &json!({"reset": true}))
}

async fn expire_tokens(State(sim): State<Arc<SimState>>) -> Response {
    let now = Instant::now();
    sim.openplat_tokens.revoke_all(now);
    sim.ylh_tokens.revoke_all(now);
    reply::json(StatusCode::OK, &json!({"expired": true}))
}

async fn mutate(State(sim): State<Arc<SimState>>) -> Response {
    let mutation = sim.mutate();
    reply::json(
        StatusCode::OK,
        &json!({"prices_changed": mutation.prices_changed, "stock_changed": mutation.stock_changed}),
    )
}

/// The catalog at a glance: seed, counts, and the codes (for sale and not).
async fn catalog(State(sim): State<Arc<SimState>>) -> Response {
    let catalog = &sim.catalog;
    let codes =
        |products: &[super::catalog::Product]| products.iter().map(|p| p.code.clone()).collect::<Vec<_>>();
    reply::json(
        StatusCode::OK,
        &json!({
            "seed": catalog.seed(),
            "products": catalog.products_for_sale().len(),
            "codes_for_sale": codes(catalog.products_for_sale()),
            "codes_not_for_sale": codes(catalog.extra_products()),
        }),
    )
}

/// `POST /_sim/orders/{soId}/door-refusal`: the customer refuses `qty` units of `productCode` at
/// the door.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoorRefusal {
    #[serde(rename = "productCode", alias = "product_code")]
    product_code: String,
    qty: u64,
}

/// `POST /_sim/orders/{soId}/return`: `qty` received units of `productCode` come back,
/// `fail_inspection` of them (default 0) fail inspection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Return {
    #[serde(rename = "productCode", alias = "product_code")]
    product_code: String,
    qty: u64,
    #[serde(default)]
    fail_inspection: u64,
}

/// `POST /_sim/orders/{soId}/out-of-stock`: an out-of-stock notice with `fail_msg`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutOfStock {
    #[serde(default)]
    fail_msg: Option<String>,
}

fn bad_request(reason: impl std::fmt::Display) -> Response {
    reply::json(StatusCode::BAD_REQUEST, &json!({ "error": reason.to_string() }))
}

/// Reads the body as `T` (an empty body as `{}`), or says what is wrong.
fn read_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &body[..]
    };
    serde_json::from_slice(text).map_err(|e| format!("the body is not what this call takes: {e}"))
}

/// Changes the taken order `so_id` with `change` and sends the callback it returns at once;
/// answers the callback's method and `Data`, 404 for an unknown order, 409 for a refused one or
/// a change that does not fit the order.
fn send_for_order(
    sim: &SimState,
    so_id: &str,
    method: &'static str,
    change: impl FnOnce(&mut StoredOrder) -> Result<Value, String>,
) -> Response {
    let mut book = lock(&sim.orders);
    let Some(order) = book.get_mut(so_id) else {
        return reply::json(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("the simulator has no order {so_id}") }),
        );
    };
    if order.ext_order_no().is_none() {
        return reply::json(
            StatusCode::CONFLICT,
            &json!({ "error": format!("order {so_id} was refused by Haier; nothing can happen to it") }),
        );
    }
    let data = match change(order) {
        Ok(data) => data,
        Err(reason) => return reply::json(StatusCode::CONFLICT, &json!({ "error": reason })),
    };
    drop(book);
    sim.callbacks
        .schedule(Duration::ZERO, method, data.to_string(), sim.epoch());
    reply::json(StatusCode::OK, &json!({ "method": method, "data": data }))
}

async fn door_refusal(State(sim): State<Arc<SimState>>, Path(so_id): Path<String>, body: Bytes) -> Response {
    let request: DoorRefusal = match read_body(&body) {
        Ok(request) => request,
        Err(reason) => return bad_request(reason),
    };
    send_for_order(&sim, &so_id, METHOD_CANCEL, |order| {
        let state = units::refuse_at_door(order, &request.product_code, request.qty)?;
        Ok(units::cancel_data(order, state, ""))
    })
}

async fn take_back(State(sim): State<Arc<SimState>>, Path(so_id): Path<String>, body: Bytes) -> Response {
    let request: Return = match read_body(&body) {
        Ok(request) => request,
        Err(reason) => return bad_request(reason),
    };
    send_for_order(&sim, &so_id, METHOD_CANCEL, |order| {
        let (state, fail_msg) =
            units::take_back(order, &request.product_code, request.qty, request.fail_inspection)?;
        Ok(units::cancel_data(order, state, fail_msg))
    })
}

async fn out_of_stock(State(sim): State<Arc<SimState>>, Path(so_id): Path<String>, body: Bytes) -> Response {
    let request: OutOfStock = match read_body(&body) {
        Ok(request) => request,
        Err(reason) => return bad_request(reason),
    };
    let fail_msg = request.fail_msg.unwrap_or_else(|| "库存不足".to_owned());
    send_for_order(&sim, &so_id, METHOD_OUT_OF_STOCK, |order| {
        Ok(units::out_of_stock_data(order, &fail_msg))
    })
}

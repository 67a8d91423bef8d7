//! The inspection and control API under `/_sim/` for tests, benchmarks and people with curl:
//! stats, accepted orders, faults (read and change at run time), reset, token expiry, a mutation
//! step on demand and a catalog summary. None of it passes the fault gate or needs a token.

use super::auth::lock;
use super::reply;
use super::server::SimState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/orders", get(orders))
        .route("/_sim/faults", get(faults).post(update_faults))
        .route("/_sim/reset", post(reset))
        .route("/_sim/expire-tokens", post(expire_tokens))
        .route("/_sim/mutate", post(mutate))
        .route("/_sim/catalog", get(catalog))
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

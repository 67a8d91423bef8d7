//! The receiver's wiring: its shared state, the routes (`POST /haier/callback`, `GET /healthz`,
//! `GET /metrics`) and serving them until shutdown. What a callback does is in `handler.rs`.

use super::handler::receive;
use super::limit::RejectLimiter;
use crate::config::CallbackConfig;
use crate::context::AppContext;
use crate::db::Db;
use crate::metrics::{self, CallbackCounters};
use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The path Haier posts callbacks to.
pub const CALLBACK_PATH: &str = "/haier/callback";

/// What the receiver's handlers share.
pub struct Receiver {
    pub db: Db,
    pub config: CallbackConfig,
    pub counters: Arc<CallbackCounters>,
    pub metrics: metrics::MetricsSource,
    pub rejected_limit: RejectLimiter,
    /// The jobs `/healthz` judges (`crate::health`); without them it only checks the database.
    pub health: Option<Arc<crate::config::Config>>,
}

impl Receiver {
    /// A receiver with fresh counters and a limiter set from `config`.
    pub fn new(db: Db, config: CallbackConfig, metrics: metrics::MetricsSource) -> Self {
        let rejected_limit = RejectLimiter::new(config.rejected_per_minute, config.rejected_burst);
        Self {
            db,
            config,
            counters: Arc::default(),
            metrics,
            rejected_limit,
            health: None,
        }
    }
}

/// The receiver's routes: `POST /haier/callback`, `GET /healthz`, `GET /metrics`.
pub fn build_router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route(CALLBACK_PATH, post(receive))
        .route("/healthz", get(healthz))
        .route("/metrics", get(serve_metrics))
        .with_state(receiver)
}

/// The receiver's routes over the shared context (tests serve this themselves).
pub fn router(ctx: AppContext) -> Router {
    let client = ctx.client.clone();
    let counters: metrics::ClientCounters = Arc::new(move || client.stats());
    let mut receiver = Receiver::new(
        ctx.db.clone(),
        ctx.config.callback.clone(),
        metrics::MetricsSource {
            client: Some(counters),
            latency: Some(ctx.client.latency_family()),
            confirm_within_ms: Some(ctx.config.outbox_job().confirm_within_ms),
            config: Some(ctx.config.clone()),
        },
    );
    receiver.health = Some(ctx.config.clone());
    build_router(Arc::new(receiver))
}

/// Serves the receiver (callbacks, `/healthz`, `/metrics`) on `listener` until `cancel` fires,
/// then lets requests in flight finish. The daemon binds `[callback] listen` and calls this.
pub async fn serve(
    ctx: AppContext,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    serve_router(router(ctx), listener, cancel).await
}

/// Serves `router` on `listener` until `cancel` fires, then lets requests in flight finish.
/// Each request carries its peer's address (the rejected-callback limit is kept per address).
pub async fn serve_router(
    router: Router,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    tracing::info!(listen = ?addr, path = CALLBACK_PATH, "callback receiver listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(cancel.cancelled_owned())
    .await
    .with_context(|| format!("Failed to serve the callback receiver on {addr:?}"))
}

async fn healthz(State(receiver): State<Arc<Receiver>>) -> Response {
    match receiver
        .db
        .run(|conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await
    {
        Ok(()) => match &receiver.health {
            None => (StatusCode::OK, "ok\n").into_response(),
            Some(config) => match crate::health::check_health(&receiver.db, config, chrono::Utc::now()).await
            {
                Ok(report) if report.healthy => (StatusCode::OK, "ok\n").into_response(),
                Ok(report) => (StatusCode::SERVICE_UNAVAILABLE, report.to_text()).into_response(),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "healthz: the health check failed");
                    (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}\n")).into_response()
                }
            },
        },
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "healthz: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn serve_metrics(State(receiver): State<Arc<Receiver>>) -> Response {
    match metrics::render(&receiver.db, &receiver.metrics, &receiver.counters).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "metrics could not be gathered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to gather metrics: {e:#}\n"),
            )
                .into_response()
        }
    }
}

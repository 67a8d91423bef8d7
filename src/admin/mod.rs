//! The status page (`[admin]`): the daemon at a glance in a browser, server-rendered HTML with
//! charts drawn as inline SVG, no JavaScript and nothing fetched from the internet. Owns no
//! table: every page reads through the owner modules' functions (`runs::log`, `cli::status`,
//! `health`, `orders::outbox`, `control::pauses`, `quota`). `auth` checks the token, `pages`
//! renders, `chart` draws.

mod auth;
mod chart;
mod pages;

use crate::config::{AdminConfig, Config};
use crate::db::Db;
use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every page handler reads.
pub(crate) struct Admin {
    pub(crate) db: Db,
    pub(crate) config: Config,
}

/// The page's routes, behind the token check of `admin` (none when it has no token).
pub fn router(db: Db, config: Config, admin: &AdminConfig) -> Router {
    let state = Arc::new(Admin { db, config });
    Router::new()
        .route("/", get(overview))
        .route("/jobs/{name}", get(job))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(auth::TokenCheck::new(admin.token.clone())),
            auth::require_token,
        ))
}

/// Serves the page on `listener` until `cancel` fires.
pub async fn serve(
    db: Db,
    config: Config,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let admin = config
        .admin
        .clone()
        .context("Failed to start the status page: the config has no [admin] section")?;
    let addr = listener.local_addr().ok();
    tracing::info!(listen = ?addr, "status page listening");
    axum::serve(listener, router(db, config, &admin))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
        .with_context(|| format!("Failed to serve the status page on {addr:?}"))
}

async fn overview(State(admin): State<Arc<Admin>>) -> Response {
    respond(pages::overview(&admin).await)
}

async fn job(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    if !admin.config.jobs.contains_key(&name) {
        return not_found_page(&admin, &format!("There is no job named `{name}` in the config."));
    }
    respond(pages::job(&admin, &name).await)
}

async fn not_found(State(admin): State<Arc<Admin>>) -> Response {
    not_found_page(&admin, "There is no page here.")
}

fn not_found_page(admin: &Admin, message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::not_found(admin, message).into_string()),
    )
        .into_response()
}

/// A page, or a 500 page naming what failed (the error is logged once, here).
fn respond(page: anyhow::Result<maud::Markup>) -> Response {
    match page {
        Ok(markup) => Html(markup.into_string()).into_response(),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "Failed to render a status page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(pages::error(&format!("{error:#}")).into_string()),
            )
                .into_response()
        }
    }
}

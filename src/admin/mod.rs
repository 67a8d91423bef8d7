//! The status page (`[admin]`): the daemon at a glance in a browser, server-rendered HTML with
//! charts drawn as inline SVG, no JavaScript and nothing fetched from the internet. Owns no
//! table: every page reads through the owner modules' functions (`runs::log`, `cli::status`,
//! `health`, `orders::outbox`, `control::pauses`, `quota`). `auth` checks the token, `pages`
//! renders, `chart` draws.

mod auth;
mod chart;
mod lists;
mod pages;

use crate::config::{AdminConfig, Config};
use crate::db::Db;
use anyhow::Context as _;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
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
        .route("/orders", get(orders))
        .route("/orders/{so_id}", get(order))
        .route("/logs", get(logs))
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

async fn orders(State(admin): State<Arc<Admin>>, Query(query): Query<lists::OrdersQuery>) -> Response {
    answer(&admin, lists::orders(&admin, query).await)
}

async fn order(State(admin): State<Arc<Admin>>, Path(so_id): Path<String>) -> Response {
    match crate::orders::history::load_history(&admin.db, &so_id).await {
        Ok(Some(history)) => Html(lists::order(&admin, &history).into_string()).into_response(),
        Ok(None) => not_found_page(
            &admin,
            &format!("There is no order with so_id `{so_id}` in the outbox."),
        ),
        Err(error) => respond(Err(error)),
    }
}

async fn logs(State(admin): State<Arc<Admin>>, Query(query): Query<lists::LogsQuery>) -> Response {
    answer(&admin, lists::logs(&admin, query).await)
}

fn answer(admin: &Admin, answer: anyhow::Result<lists::Answer>) -> Response {
    match answer {
        Ok(lists::Answer::Page(markup)) => respond(Ok(markup)),
        Ok(lists::Answer::Redirect(to)) => Redirect::to(&to).into_response(),
        Ok(lists::Answer::BadRequest(message)) => (
            StatusCode::BAD_REQUEST,
            Html(lists::bad_request(admin, &message).into_string()),
        )
            .into_response(),
        Err(error) => respond(Err(error)),
    }
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

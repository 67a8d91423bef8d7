//! The status page (`[admin]`): the daemon at a glance in a browser, server-rendered HTML with
//! charts drawn as inline SVG, no JavaScript and nothing fetched from the internet. Owns no
//! table: every page reads through the owner modules' functions (`runs::log`, `cli::status`,
//! `health`, `orders::outbox`, `control::pauses`, `quota`, `db::prices`). `auth` checks the token,
//! `pages`, `lists` and `prices` render, `chart` draws, `actions` takes the POSTed actions.

mod actions;
mod auth;
mod chart;
mod lists;
mod pages;
mod prices;

use crate::config::{AdminConfig, Config, LiveConfig};
use crate::db::Db;
use actions::{ActionForm, NoticeQuery, View};
use anyhow::Context as _;
use auth::Caller;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every page handler reads.
pub(crate) struct Admin {
    pub(crate) db: Db,
    /// The daemon's config, as its last applied reload left it.
    live: LiveConfig,
    /// The key of the CSRF tokens and result lines of this process.
    keys: actions::Keys,
    /// `allow_actions = true` with a token: the forms are drawn and the POSTs obeyed.
    allow_actions: bool,
}

impl Admin {
    /// The config as the daemon runs it now (a reload may replace it between two calls).
    pub(crate) fn config(&self) -> Arc<Config> {
        self.live.current()
    }

    pub(crate) fn actions_allowed(&self) -> bool {
        self.allow_actions
    }
}

/// The page's routes, behind the token check of `admin` (none when it has no token). The
/// token and `allow_actions` are those of the start; the jobs and the rest follow `live`.
pub fn router(db: Db, live: LiveConfig, admin: &AdminConfig) -> Router {
    let credentials = admin.credentials();
    let state = Arc::new(Admin {
        db,
        live,
        keys: actions::Keys::new(),
        allow_actions: admin.allow_actions && !credentials.is_empty(),
    });
    Router::new()
        .route("/", get(overview))
        .route("/jobs/{name}", get(job))
        .route("/jobs/{name}/{action}", post(job_action))
        .route("/orders", get(orders))
        .route("/outbox/retry", post(retry))
        .route("/orders/{so_id}", get(order))
        .route("/logs", get(logs))
        .route("/prices", get(price_changes))
        .route("/prices/{product_code}", get(product_prices))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(auth::TokenCheck::new(credentials)),
            auth::require_token,
        ))
}

/// Serves the page on `listener` until `cancel` fires. `config` is the daemon's [`LiveConfig`],
/// or a plain [`Config`] that never changes.
pub async fn serve(
    db: Db,
    config: impl Into<LiveConfig>,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let live = config.into();
    let admin = live
        .current()
        .admin
        .clone()
        .context("Failed to start the status page: the config has no [admin] section")?;
    let addr = listener.local_addr().ok();
    tracing::info!(listen = ?addr, "status page listening");
    axum::serve(listener, router(db, live, &admin))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
        .with_context(|| format!("Failed to serve the status page on {addr:?}"))
}

async fn overview(
    State(admin): State<Arc<Admin>>,
    Extension(caller): Extension<Caller>,
    Query(notice): Query<NoticeQuery>,
) -> Response {
    let view = View::new(&admin, &caller, notice);
    respond(pages::overview(&admin, &view).await)
}

async fn job(
    State(admin): State<Arc<Admin>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(notice): Query<NoticeQuery>,
) -> Response {
    if !admin.config().jobs.contains_key(&name) {
        return not_found_page(&admin, &format!("There is no job named `{name}` in the config."));
    }
    let view = View::new(&admin, &caller, notice);
    respond(pages::job(&admin, &name, &view).await)
}

/// `POST /jobs/{name}/pause|resume|trigger`.
async fn job_action(
    State(admin): State<Arc<Admin>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if let Err(forbidden) = actions::guard(&admin, &caller, &headers, &form) {
        return forbidden_page(&admin, &forbidden.message());
    }
    if !matches!(action.as_str(), "pause" | "resume" | "trigger") {
        return not_found_page(
            &admin,
            &format!("There is no action `{action}`: a job is paused, resumed or triggered."),
        );
    }
    if !admin.config().jobs.contains_key(&name) {
        return not_found_page(&admin, &format!("There is no job named `{name}` in the config."));
    }
    Redirect::to(&actions::job_action(&admin, &caller, &name, &action, &form).await).into_response()
}

/// `POST /outbox/retry`: one dead order (`so_id`), or every dead order.
async fn retry(
    State(admin): State<Arc<Admin>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if let Err(forbidden) = actions::guard(&admin, &caller, &headers, &form) {
        return forbidden_page(&admin, &forbidden.message());
    }
    Redirect::to(&actions::retry(&admin, &caller, &form).await).into_response()
}

async fn orders(
    State(admin): State<Arc<Admin>>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<lists::OrdersQuery>,
    Query(notice): Query<NoticeQuery>,
) -> Response {
    let view = View::new(&admin, &caller, notice);
    answer(&admin, lists::orders(&admin, query, &view).await)
}

async fn order(
    State(admin): State<Arc<Admin>>,
    Extension(caller): Extension<Caller>,
    Path(so_id): Path<String>,
    Query(notice): Query<NoticeQuery>,
) -> Response {
    match crate::orders::history::load_history(&admin.db, &so_id).await {
        Ok(Some(history)) => {
            let view = View::new(&admin, &caller, notice);
            Html(lists::order(&admin, &history, &view).into_string()).into_response()
        }
        Ok(None) => not_found_page(
            &admin,
            &format!("There is no order with so_id `{so_id}` in the outbox."),
        ),
        Err(error) => respond(Err(error)),
    }
}

async fn price_changes(
    State(admin): State<Arc<Admin>>,
    Query(query): Query<prices::PricesQuery>,
) -> Response {
    answer(&admin, prices::changes(&admin, query).await)
}

async fn product_prices(State(admin): State<Arc<Admin>>, Path(code): Path<String>) -> Response {
    match prices::product(&admin, &code).await {
        Ok(Some(page)) => respond(Ok(page)),
        Ok(None) => not_found_page(
            &admin,
            &format!("There is no product `{code}` with a price or a price move."),
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
        Html(pages::message(admin, "Not found", message).into_string()),
    )
        .into_response()
}

/// 403: an action refused before it did anything.
fn forbidden_page(admin: &Admin, message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(pages::message(admin, "Forbidden", message).into_string()),
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

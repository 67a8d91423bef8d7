//! The HTTP receiver for Haier's signed order callbacks (`POST /haier/callback`), with
//! `GET /healthz` and `GET /metrics` beside it. It checks every callback (body size, `AppKey`,
//! `Sign` in constant time, `TimeStamp` in Beijing time within the allowed skew, `Method`,
//! `Data`), stores every one in `haier_order_events` with its outcome, applies the valid ones
//! through `notices.rs`, and answers in the contract's reply format. What a callback does to an
//! order is decided in `notices.rs`; the metrics text is built in `metrics.rs`.
//!
//! The port faces the internet, so a callback that fails the `AppKey`/`Sign` check (or whose
//! body cannot be read as the contract's form) costs little: it is stored as a short excerpt
//! ([`REJECTED_STORED_BYTES`] in all, cut on a char boundary and marked), and each source
//! address may have only `rejected_burst` of them stored, then `rejected_per_minute`; beyond
//! that it is answered 429 and only counted. A correctly signed callback is never limited or
//! cut, whatever else is wrong with it.

use super::metrics::{self, CallbackCounters};
use super::notices::{self, NoticeKind};
use super::state::CallbackOutcome;
use crate::config::CallbackConfig;
use crate::context::AppContext;
use crate::db::{self, Db};
use crate::orders::events::{self, NewOrderEvent};
use anyhow::Context as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

/// The path Haier posts callbacks to.
pub const CALLBACK_PATH: &str = "/haier/callback";

/// The contract's form fields. Each may be given once (in any case).
const CONTRACT_FIELDS: [&str; 5] = ["AppKey", "TimeStamp", "Method", "Data", "Sign"];

/// What a callback that failed the `AppKey`/`Sign` check may store in all (the excerpt of its
/// form, the detail, the method and order number it claims). Under 2 KB so that, with the
/// row's own overhead, two such rows share a 4 KB SQLite page and a PostgreSQL row stays inline
/// (below its 2 KB TOAST threshold): 1000 of them take about 2 MB.
pub const REJECTED_STORED_BYTES: usize = 1_900;
/// The most a rejected unsigned callback's `method`, `platform_order_no` and `detail` keep each.
const REJECTED_COLUMN_BYTES: usize = 160;
/// The most of a received value a rejection message quotes (an `AppKey` of 60 KB is not echoed).
const QUOTED_VALUE_BYTES: usize = 64;
/// How often (in limiter checks) the limiter forgets addresses whose budget is full again.
const LIMITER_PRUNE_EVERY: u64 = 1_024;

/// `text` cut to at most `max_bytes` bytes on a char boundary, ending in
/// `… [cut: N bytes in all]` when it was cut. (A `max_bytes` below the marker's length keeps the
/// marker alone.)
pub fn excerpt(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let marker = format!("… [cut: {} bytes in all]", text.len());
    let mut end = max_bytes.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{marker}", &text[..end]))
}

/// A received value as a rejection message quotes it: trimmed, and cut when long.
fn quoted(value: &str) -> Cow<'_, str> {
    excerpt(value.trim(), QUOTED_VALUE_BYTES)
}

/// The contract's sign: every field but `Sign`/`sign` whose value is not empty after trimming,
/// sorted by name, concatenated as name+value, with the secret before and after, lower-cased,
/// MD5, upper-case hex.
pub fn sign_fields<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)], secret: &str) -> String {
    let mut kept: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(name, value)| *name != "Sign" && *name != "sign" && !value.trim().is_empty())
        .collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::from(secret);
    for (name, value) in kept {
        text.push_str(name);
        text.push_str(value);
    }
    text.push_str(secret);
    hex::encode_upper(Md5::digest(text.to_lowercase().as_bytes()))
}

/// Beijing time (UTC+8), which Haier's `TimeStamp` is written in.
fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// `yyyyMMddHHmmss` in Beijing time.
pub fn beijing_timestamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing()).format("%Y%m%d%H%M%S").to_string()
}

/// Reads a `TimeStamp` (`yyyyMMddHHmmss`, Beijing time) as a UTC instant.
pub fn parse_beijing_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y%m%d%H%M%S").ok()?;
    beijing()
        .from_local_datetime(&naive)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

/// Why a callback was turned away before it reached an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reply's `code`: `unknown_app_key`, `bad_sign`, `stale_timestamp`, …
    pub code: &'static str,
    pub reason: String,
    /// Whether the callback passed the `AppKey`/`Sign` check (it came from Haier): such a
    /// callback is stored whole and never limited.
    pub signed: bool,
}

impl Rejection {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            signed: false,
        }
    }

    /// The same rejection of a callback whose sign checked out.
    fn of_signed(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            signed: true,
            ..Self::new(code, reason)
        }
    }
}

/// A callback whose key, sign and time stamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCallback {
    pub method: String,
    pub data: String,
}

/// A form field by its contract name, else by the same name in any case.
fn form_field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.as_str())
}

/// Checks a callback's `AppKey`, `Sign` (constant-time) and `TimeStamp` (Beijing time, within
/// `max_clock_skew_secs` of `now`), and that it carries a `Method` and `Data`.
pub fn verify_callback(
    fields: &[(String, String)],
    config: &CallbackConfig,
    now: DateTime<Utc>,
) -> Result<VerifiedCallback, Rejection> {
    for name in CONTRACT_FIELDS {
        let times = fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count();
        if times > 1 {
            return Err(Rejection::new(
                "duplicate_field",
                format!("{name} is given {times} times; each field may be given once"),
            ));
        }
    }
    let app_key = form_field(fields, "AppKey")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::new("missing_field", "AppKey is missing"))?;
    if app_key.trim() != config.app_key {
        return Err(Rejection::new(
            "unknown_app_key",
            format!("AppKey {} is not this receiver's", quoted(app_key)),
        ));
    }
    let sign = form_field(fields, "Sign")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::new("missing_field", "Sign is missing"))?;
    let expected = sign_fields(fields, config.secret.expose());
    let given = sign.trim().to_ascii_uppercase();
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(Rejection::new(
            "bad_sign",
            "Sign does not match the fields and the shared secret",
        ));
    }
    let stamp = form_field(fields, "TimeStamp")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "TimeStamp is missing"))?;
    let at = parse_beijing_timestamp(stamp).ok_or_else(|| {
        Rejection::of_signed(
            "bad_timestamp",
            format!("TimeStamp {} is not yyyyMMddHHmmss", quoted(stamp)),
        )
    })?;
    let skew = (now - at).num_seconds();
    if skew.abs() > config.max_clock_skew_secs {
        return Err(Rejection::of_signed(
            "stale_timestamp",
            format!(
                "TimeStamp {stamp} (Beijing time) is {}s {} now; at most {}s allowed",
                skew.abs(),
                if skew > 0 { "before" } else { "after" },
                config.max_clock_skew_secs
            ),
        ));
    }
    let method = form_field(fields, "Method")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "Method is missing"))?;
    let data = form_field(fields, "Data")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "Data is missing"))?;
    Ok(VerifiedCallback {
        method: method.trim().to_owned(),
        data: data.to_owned(),
    })
}

/// The contract's reply: `success`, `code`, `description`, `timeStamp` (Beijing time) and
/// `data {statusCode, message, platformOrderNo}`.
pub fn reply_body(
    success: bool,
    code: &str,
    description: &str,
    status_code: u16,
    platform_order_no: &str,
) -> Value {
    json!({
        "success": success,
        "code": code,
        "description": description,
        "timeStamp": beijing_timestamp(Utc::now()),
        "data": {
            "statusCode": status_code,
            "message": description,
            "platformOrderNo": platform_order_no,
        }
    })
}

fn success_reply(platform_order_no: &str) -> Response {
    let body = reply_body(true, "success", "成功", 200, platform_order_no);
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn failure_reply(http: StatusCode, code: &str, description: &str, platform_order_no: &str) -> Response {
    let status_code = if http == StatusCode::OK {
        400
    } else {
        http.as_u16()
    };
    let body = reply_body(false, code, description, status_code, platform_order_no);
    (http, axum::Json(body)).into_response()
}

/// Limits how many rejected unsigned callbacks each source address may have stored: a burst,
/// then so many a minute. IPv6 addresses count by their /64 (one host usually holds a whole
/// /64); an unknown address (a router served without connection info) is one shared key.
pub struct RejectLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl RejectLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        // The config refuses 0 for both; 1 is the least that makes sense.
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one from `source`'s budget; when it is spent, how long until there is one again.
    pub fn check(&self, source: Option<IpAddr>) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % LIMITER_PRUNE_EVERY == LIMITER_PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let key = match source {
            None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            },
            Some(v4) => v4,
        };
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// The number of source addresses the limiter remembers.
    pub fn tracked_addresses(&self) -> usize {
        self.limiter.len()
    }
}

/// What the receiver's handlers share.
pub struct Receiver {
    pub db: Db,
    pub config: CallbackConfig,
    pub counters: Arc<CallbackCounters>,
    pub metrics: metrics::MetricsSource,
    pub rejected_limit: RejectLimiter,
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
    build_router(Arc::new(Receiver::new(
        ctx.db.clone(),
        ctx.config.callback.clone(),
        metrics::MetricsSource {
            client: Some(counters),
        },
    )))
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
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
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
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
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

/// Refuses a body that is not the contract's form: one declared as JSON or multipart, or a
/// JSON text sent without saying so (it has none of the contract's fields). Any other
/// `Content-Type` (or none) is read as the form.
fn refuse_non_form(
    headers: &header::HeaderMap,
    fields: &[(String, String)],
    body: &[u8],
) -> Option<Rejection> {
    let media = headers.get(header::CONTENT_TYPE).map(|value| {
        let text = String::from_utf8_lossy(value.as_bytes());
        text.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let declared_json = media
        .as_deref()
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
    let has_contract_field = fields
        .iter()
        .any(|(k, _)| CONTRACT_FIELDS.iter().any(|name| k.eq_ignore_ascii_case(name)));
    let looks_json = !has_contract_field && matches!(body.trim_ascii_start().first(), Some(b'{' | b'['));
    let sent = if declared_json || looks_json {
        "JSON".to_owned()
    } else {
        match media.as_deref() {
            Some(m) if m.starts_with("multipart/") => quoted(m).into_owned(),
            _ => return None,
        }
    };
    Some(Rejection::new(
        "unsupported_media_type",
        format!(
            "the body must be application/x-www-form-urlencoded with the fields AppKey, TimeStamp, \
             Method, Data and Sign, not {sent}"
        ),
    ))
}

async fn receive(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let limit = receiver.config.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let reason = format!("the body exceeds {limit} bytes or could not be read: {e}");
            let raw = json!({ "_unread_body": reason }).to_string();
            let rejection = Rejection::new("body_too_large", reason);
            let claimed = Claimed::default();
            return reject(
                &receiver,
                source,
                rejection,
                claimed,
                &raw,
                StatusCode::PAYLOAD_TOO_LARGE,
            )
            .await;
        }
    };
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let raw = raw_json(&fields, &bytes);
    if let Some(rejection) = refuse_non_form(&parts.headers, &fields, &bytes) {
        let claimed = Claimed::default();
        return reject(
            &receiver,
            source,
            rejection,
            claimed,
            &raw,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
    }
    let verified = match verify_callback(&fields, &receiver.config, Utc::now()) {
        Ok(v) => v,
        Err(rejection) => {
            // Kept for the record only: nothing of an unverified callback is trusted.
            let claimed = Claimed {
                method: form_field(&fields, "Method").map(str::to_owned),
                platform_order_no: form_field(&fields, "Data").and_then(platform_order_no_of),
            };
            return reject(&receiver, source, rejection, claimed, &raw, StatusCode::OK).await;
        }
    };
    let fingerprint = notices::fingerprint(&verified.method, &verified.data);
    let Some(kind) = NoticeKind::from_method(&verified.method) else {
        let detail = format!("Method {} is not one this receiver handles", verified.method);
        let platform_order_no = platform_order_no_of(&verified.data);
        let event = Unapplied {
            outcome: CallbackOutcome::Ignored,
            method: Some(&verified.method),
            platform_order_no: platform_order_no.as_deref(),
            detail: &detail,
            raw: &raw,
            fingerprint: Some(&fingerprint),
        };
        store_unapplied(&receiver, event).await;
        tracing::warn!(method = %verified.method, "callback with an unknown method ignored");
        return failure_reply(
            StatusCode::OK,
            "unknown_method",
            &detail,
            platform_order_no.as_deref().unwrap_or(""),
        );
    };
    let notice = match notices::parse_notice(kind, &verified.data) {
        Ok(notice) => notice,
        Err(reason) => {
            let platform_order_no = platform_order_no_of(&verified.data);
            let rejection = Rejection::new("malformed_data", reason);
            return reject_verified(
                &receiver,
                rejection,
                &verified.method,
                platform_order_no.as_deref(),
                &raw,
                &fingerprint,
            )
            .await;
        }
    };
    let method = verified.method.clone();
    let applied = {
        let notice = notice.clone();
        let raw = raw.clone();
        let fingerprint = fingerprint.clone();
        receiver
            .db
            .run(move |conn| {
                notices::apply_notice(conn, &notice, &method, &raw, &fingerprint, db::now_utc()).with_context(
                    || {
                        format!(
                            "Failed to apply the {method} callback for {}",
                            notice.platform_order_no
                        )
                    },
                )
            })
            .await
    };
    match applied {
        Ok(handled) => {
            receiver.counters.count(handled.outcome);
            tracing::info!(
                method = %verified.method,
                platform_order_no = %notice.platform_order_no,
                so_id = handled.so_id.as_deref().unwrap_or(""),
                outcome = handled.outcome.as_str(),
                detail = %handled.detail,
                "callback received"
            );
            match handled.outcome {
                CallbackOutcome::UnknownOrder => failure_reply(
                    StatusCode::OK,
                    handled.outcome.as_str(),
                    &handled.detail,
                    &notice.platform_order_no,
                ),
                _ => success_reply(&notice.platform_order_no),
            }
        }
        Err(e) => {
            receiver.counters.count_internal_error();
            tracing::error!(error = %format!("{e:#}"), "callback could not be stored; Haier will send it again");
            failure_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the callback could not be stored; please send it again",
                &notice.platform_order_no,
            )
        }
    }
}

/// The form fields as a JSON object (for the event row), or the body as text when it held no
/// fields.
fn raw_json(fields: &[(String, String)], body: &[u8]) -> String {
    if fields.is_empty() {
        return json!({ "_body": String::from_utf8_lossy(body) }).to_string();
    }
    let map: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(map).to_string()
}

/// `PlatformOrderNo` from a `Data` text, if it can be read at all (for the record).
fn platform_order_no_of(data: &str) -> Option<String> {
    [NoticeKind::Confirm, NoticeKind::Cancel, NoticeKind::OutOfStock]
        .into_iter()
        .find_map(|kind| notices::parse_notice(kind, data).ok())
        .map(|n| n.platform_order_no)
        .or_else(|| {
            let value: Value = serde_json::from_str(data).ok()?;
            value
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("PlatformOrderNo"))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        })
}

/// What a rejected callback says about itself, kept for the record only.
#[derive(Default)]
struct Claimed {
    method: Option<String>,
    platform_order_no: Option<String>,
}

/// Stores a rejected callback (with the method and order number it claims, for the record) and
/// answers with the failure. An unsigned one is stored as an excerpt of at most
/// [`REJECTED_STORED_BYTES`] in all, and only while its source address is within the limit;
/// beyond it, it is answered 429 and counted, not stored.
async fn reject(
    receiver: &Receiver,
    source: Option<IpAddr>,
    rejection: Rejection,
    claimed: Claimed,
    raw: &str,
    http: StatusCode,
) -> Response {
    if !rejection.signed {
        if let Err(wait) = receiver.rejected_limit.check(source) {
            receiver.counters.count(CallbackOutcome::Rejected);
            receiver.counters.count_rejection(rejection.code, false);
            tracing::debug!(code = rejection.code, source = ?source, "rejected callback over the limit; not stored");
            let description = format!(
                "{}; too many rejected callbacks from this address, so this one was not stored",
                rejection.reason
            );
            let mut reply = failure_reply(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &description, "");
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            reply
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after.max(1)));
            return reply;
        }
    }
    receiver.counters.count_rejection(rejection.code, true);
    tracing::warn!(code = rejection.code, reason = %rejection.reason, source = ?source, "callback rejected");
    let (method, platform_order_no, detail, raw) = if rejection.signed {
        (
            claimed.method.map(Cow::Owned),
            claimed.platform_order_no.map(Cow::Owned),
            Cow::Borrowed(rejection.reason.as_str()),
            Cow::Borrowed(raw),
        )
    } else {
        let method = claimed
            .method
            .map(|m| excerpt(&m, REJECTED_COLUMN_BYTES).into_owned().into());
        let platform_order_no = claimed
            .platform_order_no
            .map(|p| excerpt(&p, REJECTED_COLUMN_BYTES).into_owned().into());
        let detail = excerpt(&rejection.reason, REJECTED_COLUMN_BYTES).into_owned();
        let used = [
            method.as_deref(),
            platform_order_no.as_deref(),
            Some(detail.as_str()),
        ]
        .into_iter()
        .flatten()
        .map(str::len)
        .sum::<usize>();
        let raw = excerpt(raw, REJECTED_STORED_BYTES - used).into_owned();
        (method, platform_order_no, Cow::Owned(detail), Cow::Owned(raw))
    };
    let event = Unapplied {
        outcome: CallbackOutcome::Rejected,
        method: method.as_deref(),
        platform_order_no: platform_order_no.as_deref(),
        detail: &detail,
        raw: &raw,
        fingerprint: None,
    };
    store_unapplied(receiver, event).await;
    failure_reply(
        http,
        rejection.code,
        &rejection.reason,
        platform_order_no.as_deref().unwrap_or(""),
    )
}

/// Stores a callback that passed the checks but whose `Data` is unusable, and answers with the failure.
async fn reject_verified(
    receiver: &Receiver,
    rejection: Rejection,
    method: &str,
    platform_order_no: Option<&str>,
    raw: &str,
    fingerprint: &str,
) -> Response {
    tracing::warn!(code = rejection.code, reason = %rejection.reason, method, "callback rejected");
    receiver.counters.count_rejection(rejection.code, true);
    let event = Unapplied {
        outcome: CallbackOutcome::Rejected,
        method: Some(method),
        platform_order_no,
        detail: &rejection.reason,
        raw,
        fingerprint: Some(fingerprint),
    };
    store_unapplied(receiver, event).await;
    failure_reply(
        StatusCode::OK,
        rejection.code,
        &rejection.reason,
        platform_order_no.unwrap_or(""),
    )
}

/// A callback that was not applied to an order, for its event row.
struct Unapplied<'a> {
    outcome: CallbackOutcome,
    method: Option<&'a str>,
    platform_order_no: Option<&'a str>,
    detail: &'a str,
    raw: &'a str,
    fingerprint: Option<&'a str>,
}

/// Stores a callback that was not applied; a database failure is logged and counted (the reply
/// to Haier is a failure either way).
async fn store_unapplied(receiver: &Receiver, event: Unapplied<'_>) {
    receiver.counters.count(event.outcome);
    let outcome = event.outcome;
    let method = event.method.map(str::to_owned);
    let platform_order_no = event.platform_order_no.map(str::to_owned);
    let detail = event.detail.to_owned();
    let raw = event.raw.to_owned();
    let fingerprint = event.fingerprint.map(str::to_owned);
    let stored = receiver
        .db
        .run(move |conn| {
            events::insert_event(
                conn,
                &NewOrderEvent {
                    so_id: None,
                    method: method.as_deref(),
                    platform_order_no: platform_order_no.as_deref(),
                    state: None,
                    outcome,
                    detail: Some(&detail),
                    raw: &raw,
                    fingerprint: fingerprint.as_deref(),
                    received_at: db::now_utc(),
                },
            )
            .context("Failed to store a callback that was not applied")
        })
        .await;
    if let Err(e) = stored {
        receiver.counters.count_internal_error();
        tracing::error!(error = %format!("{e:#}"), "callback event could not be stored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config() -> CallbackConfig {
        CallbackConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            app_key: "demo-app-key".into(),
            secret: Secret::new("demo-callback-secret"),
            max_body_bytes: 65_536,
            max_clock_skew_secs: 600,
            rejected_per_minute: 6,
            rejected_burst: 20,
        }
    }

    fn signed(at: DateTime<Utc>, secret: &str) -> Vec<(String, String)> {
        let mut fields = vec![
            ("AppKey".to_owned(), "demo-app-key".to_owned()),
            ("TimeStamp".to_owned(), beijing_timestamp(at)),
            ("Method".to_owned(), notices::METHOD_CONFIRM.to_owned()),
            (
                "Data".to_owned(),
                r#"{"PlatformOrderNo":"SO-1","State":1,"ExtOrderNo":"H1"}"#.to_owned(),
            ),
        ];
        let sign = sign_fields(&fields, secret);
        fields.push(("Sign".to_owned(), sign));
        fields
    }

    #[test]
    fn sign_matches_a_known_answer() {
        // printf '%s' 'sappkeyadata{"x":1}methodmtimestamp20260101120000s' | md5sum
        //   2362243f038a1027f51c8639d57788f2
        let fields = [
            ("TimeStamp", "20260101120000"),
            ("Method", "m"),
            ("AppKey", "a"),
            ("Data", r#"{"x":1}"#),
            ("Sign", "ignored"),
            ("Blank", "   "),
        ];
        assert_eq!(sign_fields(&fields, "s"), "2362243F038A1027F51C8639D57788F2");
        // The whole text is lower-cased: case in values and secret does not change the sign.
        let upper = [
            ("TimeStamp", "20260101120000"),
            ("Method", "M"),
            ("AppKey", "A"),
            ("Data", r#"{"X":1}"#),
        ];
        assert_eq!(sign_fields(&upper, "S"), "2362243F038A1027F51C8639D57788F2");
    }

    #[test]
    fn sign_of_a_demo_callback_matches_md5sum() {
        // printf '%s' 'demo-callback-secretappkeydemo-app-keydata{"platformorderno":"so-1"}methodhmm.scm_heorder.confirmtimestamp20261124180000demo-callback-secret' | md5sum
        //   3ceaa6084f91f05fddc3c7af9b677ad2
        let fields = [
            ("AppKey", "demo-app-key"),
            ("TimeStamp", "20261124180000"),
            ("Method", "hmm.scm_heorder.confirm"),
            ("Data", r#"{"PlatformOrderNo":"SO-1"}"#),
        ];
        assert_eq!(
            sign_fields(&fields, "demo-callback-secret"),
            "3CEAA6084F91F05FDDC3C7AF9B677AD2"
        );
    }

    #[test]
    fn timestamps_are_beijing_time() {
        let at = parse_beijing_timestamp("20261125013005").unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 11, 24, 17, 30, 5).unwrap());
        assert_eq!(beijing_timestamp(at), "20261125013005");
        assert_eq!(parse_beijing_timestamp("2026-11-25"), None);
    }

    #[test]
    fn a_correct_callback_verifies() {
        let now = Utc::now();
        let verified = verify_callback(&signed(now, "demo-callback-secret"), &config(), now).unwrap();
        assert_eq!(verified.method, notices::METHOD_CONFIRM);
    }

    #[test]
    fn a_lower_case_sign_is_accepted() {
        let now = Utc::now();
        let mut fields = signed(now, "demo-callback-secret");
        let sign = fields.last_mut().unwrap();
        sign.1 = sign.1.to_lowercase();
        assert!(verify_callback(&fields, &config(), now).is_ok());
    }

    #[test]
    fn wrong_secret_key_or_time_is_rejected() {
        let now = Utc::now();
        let code = |fields: &[(String, String)]| verify_callback(fields, &config(), now).unwrap_err().code;
        assert_eq!(code(&signed(now, "other-secret")), "bad_sign");
        let mut wrong_key = signed(now, "demo-callback-secret");
        wrong_key[0].1 = "someone-else".into();
        assert_eq!(code(&wrong_key), "unknown_app_key");
        // Eleven minutes off either way, signed correctly.
        assert_eq!(
            code(&signed(
                now - chrono::Duration::minutes(11),
                "demo-callback-secret"
            )),
            "stale_timestamp"
        );
        assert_eq!(
            code(&signed(
                now + chrono::Duration::minutes(11),
                "demo-callback-secret"
            )),
            "stale_timestamp"
        );
        // Nine minutes is within the allowed skew.
        assert!(verify_callback(
            &signed(now - chrono::Duration::minutes(9), "demo-callback-secret"),
            &config(),
            now
        )
        .is_ok());
        // A UTC time stamp (eight hours off) is stale.
        let mut utc = signed(now, "demo-callback-secret");
        utc[1].1 = now.format("%Y%m%d%H%M%S").to_string();
        utc.pop();
        let sign = sign_fields(&utc, "demo-callback-secret");
        utc.push(("Sign".into(), sign));
        assert_eq!(code(&utc), "stale_timestamp");
        // A changed field breaks the sign.
        let mut tampered = signed(now, "demo-callback-secret");
        tampered[3].1 = r#"{"PlatformOrderNo":"SO-2","State":1,"ExtOrderNo":"H1"}"#.into();
        assert_eq!(code(&tampered), "bad_sign");
        let mut unsigned = signed(now, "demo-callback-secret");
        unsigned.pop();
        assert_eq!(code(&unsigned), "missing_field");
    }

    #[test]
    fn rejections_do_not_reveal_the_secret() {
        let now = Utc::now();
        let err = verify_callback(&signed(now, "x"), &config(), now).unwrap_err();
        assert!(!err.reason.contains("demo-callback-secret"));
        assert!(!format!("{:?}", config()).contains("demo-callback-secret"));
    }

    #[test]
    fn an_excerpt_is_cut_on_a_char_boundary_and_marked() {
        assert_eq!(excerpt("short", 64), "short");
        let long = "é".repeat(100);
        let cut = excerpt(&long, 64);
        assert_eq!(cut, format!("{}… [cut: 200 bytes in all]", "é".repeat(18)));
        assert!(cut.len() <= 64);
    }

    proptest::proptest! {
        #[test]
        fn an_excerpt_never_exceeds_its_budget_and_keeps_a_prefix(text in ".{0,400}", max in 40usize..300) {
            let cut = excerpt(&text, max);
            proptest::prop_assert!(cut.len() <= max);
            if text.len() <= max {
                proptest::prop_assert_eq!(&cut, &text);
            } else {
                let marker = format!("… [cut: {} bytes in all]", text.len());
                let kept = cut.strip_suffix(&marker);
                proptest::prop_assert!(kept.is_some_and(|kept| text.starts_with(kept)), "{}", cut);
            }
        }

        #[test]
        fn arbitrary_fields_never_panic_and_verify_only_when_signed(
            fields in proptest::collection::vec(
                (proptest::prop_oneof![
                    proptest::strategy::Just("AppKey".to_owned()),
                    proptest::strategy::Just("TimeStamp".to_owned()),
                    proptest::strategy::Just("Method".to_owned()),
                    proptest::strategy::Just("Data".to_owned()),
                    proptest::strategy::Just("Sign".to_owned()),
                    ".{0,10}",
                ], ".{0,40}"),
                0..8,
            )
        ) {
            let now = Utc::now();
            if verify_callback(&fields, &config(), now).is_ok() {
                let sign = form_field(&fields, "Sign").unwrap_or_default();
                proptest::prop_assert_eq!(
                    sign.trim().to_ascii_uppercase(),
                    sign_fields(&fields, "demo-callback-secret")
                );
            }
        }
    }

    #[test]
    fn duplicate_contract_fields_are_refused_before_the_sign() {
        let now = Utc::now();
        let mut fields = signed(now, "demo-callback-secret");
        fields.push(("data".into(), "{}".into()));
        let err = verify_callback(&fields, &config(), now).unwrap_err();
        assert_eq!(err.code, "duplicate_field");
        assert_eq!(err.reason, "Data is given 2 times; each field may be given once");
        assert!(!err.signed);
    }

    #[test]
    fn the_limiter_keeps_a_budget_per_address_and_per_ipv6_64() {
        let limiter = RejectLimiter::new(1, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.check(Some(a)).is_ok());
        assert!(limiter.check(Some(a)).is_ok());
        let wait = limiter.check(Some(a)).unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(limiter.check(Some(b)).is_ok());
        // Two addresses of one IPv6 /64 share a budget; a v4-mapped address is its v4 one.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert!(limiter.check(Some(v6a)).is_ok());
        assert!(limiter.check(Some(v6b)).is_ok());
        assert!(limiter.check(Some(v6a)).is_err());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(limiter.check(Some(mapped)).is_err());
        assert_eq!(limiter.tracked_addresses(), 3);
    }

    #[test]
    fn replies_follow_the_contract() {
        let body = reply_body(true, "success", "成功", 200, "SO-1");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["statusCode"], 200);
        assert_eq!(body["data"]["platformOrderNo"], "SO-1");
        assert_eq!(body["timeStamp"].as_str().unwrap().len(), 14);
    }
}

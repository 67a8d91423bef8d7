//! The HTTP receiver for Haier's signed order callbacks (`POST /haier/callback`), with
//! `GET /healthz` and `GET /metrics` beside it. It checks every callback (body size, `AppKey`,
//! `Sign` in constant time, `TimeStamp` in Beijing time within the allowed skew, `Method`,
//! `Data`), stores every one in `haier_order_events` with its outcome, applies the valid ones
//! through `notices.rs`, and answers in the contract's reply format. What a callback does to an
//! order is decided in `notices.rs`; the metrics text is built in `metrics.rs`.

use super::metrics::{self, CallbackCounters};
use super::notices::{self, NoticeKind, Outcome};
use crate::config::CallbackConfig;
use crate::context::AppContext;
use crate::db::order_events::{self, NewOrderEvent};
use crate::db::{self, Db};
use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

/// The path Haier posts callbacks to.
pub const CALLBACK_PATH: &str = "/haier/callback";

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
}

impl Rejection {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
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
    let app_key = form_field(fields, "AppKey")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::new("missing_field", "AppKey is missing"))?;
    if app_key.trim() != config.app_key {
        return Err(Rejection::new(
            "unknown_app_key",
            format!("AppKey {} is not this receiver's", app_key.trim()),
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
        .ok_or_else(|| Rejection::new("missing_field", "TimeStamp is missing"))?;
    let at = parse_beijing_timestamp(stamp).ok_or_else(|| {
        Rejection::new(
            "bad_timestamp",
            format!("TimeStamp {stamp} is not yyyyMMddHHmmss"),
        )
    })?;
    let skew = (now - at).num_seconds();
    if skew.abs() > config.max_clock_skew_secs {
        return Err(Rejection::new(
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
        .ok_or_else(|| Rejection::new("missing_field", "Method is missing"))?;
    let data = form_field(fields, "Data")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::new("missing_field", "Data is missing"))?;
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

/// What the receiver's handlers share.
pub struct Receiver {
    pub db: Db,
    pub config: CallbackConfig,
    pub counters: Arc<CallbackCounters>,
    pub metrics: metrics::MetricsSource,
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
    build_router(Arc::new(Receiver {
        db: ctx.db.clone(),
        config: ctx.config.callback.clone(),
        counters: Arc::default(),
        metrics: metrics::MetricsSource {
            client: Some(counters),
        },
    }))
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
pub async fn serve_router(
    router: Router,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    tracing::info!(listen = ?addr, path = CALLBACK_PATH, "callback receiver listening");
    axum::serve(listener, router)
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

/// How much of an oversized or unreadable body is kept in the event row.
const RAW_PREFIX_CHARS: usize = 2_000;

async fn receive(State(receiver): State<Arc<Receiver>>, body: Body) -> Response {
    let limit = receiver.config.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let reason = format!("the body exceeds {limit} bytes or could not be read: {e}");
            let raw = json!({ "_unread_body": reason }).to_string();
            return reject(
                &receiver,
                Rejection::new("body_too_large", reason),
                (None, None),
                &raw,
                StatusCode::PAYLOAD_TOO_LARGE,
            )
            .await;
        }
    };
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let raw = raw_json(&fields, &bytes);
    let verified = match verify_callback(&fields, &receiver.config, Utc::now()) {
        Ok(v) => v,
        Err(rejection) => {
            // Kept for the record only: nothing of an unverified callback is trusted.
            let platform_order_no = form_field(&fields, "Data").and_then(platform_order_no_of);
            let method = form_field(&fields, "Method");
            return reject(
                &receiver,
                rejection,
                (method, platform_order_no.as_deref()),
                &raw,
                StatusCode::OK,
            )
            .await;
        }
    };
    let fingerprint = notices::fingerprint(&verified.method, &verified.data);
    let Some(kind) = NoticeKind::from_method(&verified.method) else {
        let detail = format!("Method {} is not one this receiver handles", verified.method);
        let platform_order_no = platform_order_no_of(&verified.data);
        let event = Unapplied {
            outcome: Outcome::Ignored,
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
                Outcome::UnknownOrder => failure_reply(
                    StatusCode::OK,
                    "unknown_order",
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

/// The form fields as a JSON object (for the event row), or the start of the body when it held
/// no fields.
fn raw_json(fields: &[(String, String)], body: &[u8]) -> String {
    if fields.is_empty() {
        let text: String = String::from_utf8_lossy(body)
            .chars()
            .take(RAW_PREFIX_CHARS)
            .collect();
        return json!({ "_body": text }).to_string();
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

/// Stores a rejected callback (with the method and order number it claims, for the record) and
/// answers with the failure.
async fn reject(
    receiver: &Receiver,
    rejection: Rejection,
    (method, platform_order_no): (Option<&str>, Option<&str>),
    raw: &str,
    http: StatusCode,
) -> Response {
    tracing::warn!(code = rejection.code, reason = %rejection.reason, "callback rejected");
    let event = Unapplied {
        outcome: Outcome::Rejected,
        method,
        platform_order_no,
        detail: &rejection.reason,
        raw,
        fingerprint: None,
    };
    store_unapplied(receiver, event).await;
    failure_reply(
        http,
        rejection.code,
        &rejection.reason,
        platform_order_no.unwrap_or(""),
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
    let event = Unapplied {
        outcome: Outcome::Rejected,
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
    outcome: Outcome,
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
            order_events::insert_event(
                conn,
                &NewOrderEvent {
                    so_id: None,
                    method: method.as_deref(),
                    platform_order_no: platform_order_no.as_deref(),
                    state: None,
                    outcome: outcome.as_str(),
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
    fn replies_follow_the_contract() {
        let body = reply_body(true, "success", "成功", 200, "SO-1");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["statusCode"], 200);
        assert_eq!(body["data"]["platformOrderNo"], "SO-1");
        assert_eq!(body["timeStamp"].as_str().unwrap().len(), 14);
    }
}

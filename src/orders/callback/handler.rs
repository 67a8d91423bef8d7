//! The callback handler: reads the form (within `max_body_bytes`), has it verified, stores every
//! callback in `haier_order_events` with its outcome, applies the valid ones through
//! `crate::orders::notices`, and answers in the contract's reply format.

use super::router::Receiver;
use super::sign::beijing_timestamp;
use super::verify::{
    excerpt, form_field, quoted, verify_callback, Rejection, VerifiedCallback, CONTRACT_FIELDS,
};
use crate::db;
use crate::orders::events::{self, NewOrderEvent};
use crate::orders::notices::{self, NoticeKind};
use crate::orders::state::CallbackOutcome;
use anyhow::Context as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What a callback that failed the `AppKey`/`Sign` check may store in all (the excerpt of its
/// form, the detail, the method and order number it claims). Under 2 KB so that, with the
/// row's own overhead, two such rows share a 4 KB SQLite page and a PostgreSQL row stays inline
/// (below its 2 KB TOAST threshold): 1000 of them take about 2 MB.
pub const REJECTED_STORED_BYTES: usize = 1_900;
/// The most a rejected unsigned callback's `method`, `platform_order_no` and `detail` keep each.
const REJECTED_COLUMN_BYTES: usize = 160;

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

/// A body that is not the contract's form: why, the record of it, and the HTTP status to answer.
type NotAForm = (Rejection, String, StatusCode);

/// Reads the body (at most `max_bytes`) as the contract's form: its fields and their record as
/// JSON for the event row.
async fn read_form(
    headers: &header::HeaderMap,
    body: axum::body::Body,
    max_bytes: usize,
) -> Result<(Vec<(String, String)>, String), NotAForm> {
    let bytes = axum::body::to_bytes(body, max_bytes).await.map_err(|e| {
        let reason = format!("the body exceeds {max_bytes} bytes or could not be read: {e}");
        let raw = json!({ "_unread_body": reason }).to_string();
        (
            Rejection::new("body_too_large", reason),
            raw,
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    })?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let raw = raw_json(&fields, &bytes);
    match refuse_non_form(headers, &fields, &bytes) {
        Some(rejection) => Err((rejection, raw, StatusCode::UNSUPPORTED_MEDIA_TYPE)),
        None => Ok((fields, raw)),
    }
}

pub(super) async fn receive(State(receiver): State<Arc<Receiver>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (fields, raw) = match read_form(&parts.headers, body, receiver.config.max_body_bytes).await {
        Ok(form) => form,
        Err((rejection, raw, http)) => {
            return reject(&receiver, source, rejection, Claimed::default(), &raw, http).await;
        }
    };
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
    warn_of_clock_skew(&receiver, &verified, &notice.platform_order_no);
    let method = verified.method.clone();
    let applied = {
        let notice = notice.clone();
        let raw = raw.clone();
        let fingerprint = fingerprint.clone();
        let (clock_skew_secs, note) = (verified.clock_skew_secs, verified.timestamp_note.clone());
        receiver
            .db
            .run(move |conn| {
                let receipt = notices::Receipt {
                    method: &method,
                    raw: &raw,
                    fingerprint: &fingerprint,
                    received_at: db::now_utc(),
                    clock_skew_secs,
                    note: note.as_deref(),
                };
                notices::apply_notice(conn, &notice, &receipt).with_context(|| {
                    format!(
                        "Failed to apply the {method} callback for {}",
                        notice.platform_order_no
                    )
                })
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
                CallbackOutcome::Unmatched => {
                    tracing::warn!(
                        method = %verified.method,
                        platform_order_no = %notice.platform_order_no,
                        detail = %handled.detail,
                        "callback matches no single order; kept as unmatched for `outbox attach`"
                    );
                    failure_reply(
                        StatusCode::OK,
                        handled.outcome.as_str(),
                        &handled.detail,
                        &notice.platform_order_no,
                    )
                }
                CallbackOutcome::Rejected => failure_reply(
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

/// Logs a warning when a signed callback's `TimeStamp` is further than `clock_skew_warn_secs`
/// from this clock, or unreadable. The callback is applied all the same.
fn warn_of_clock_skew(receiver: &Receiver, verified: &VerifiedCallback, platform_order_no: &str) {
    match (verified.clock_skew_secs, &verified.timestamp_note) {
        (Some(skew), _) if skew.abs() > receiver.config.clock_skew_warn_secs => tracing::warn!(
            method = %verified.method,
            platform_order_no,
            clock_skew_secs = skew,
            warn_beyond_secs = receiver.config.clock_skew_warn_secs,
            "callback TimeStamp is {}s {} this clock (a retry, or a clock off); applied all the same",
            skew.abs(),
            if skew < 0 { "behind" } else { "ahead of" }
        ),
        (None, Some(note)) => tracing::warn!(
            method = %verified.method,
            platform_order_no,
            "{note}"
        ),
        _ => {}
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
                    clock_skew_secs: None,
                    ext_order_no: None,
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

    #[test]
    fn replies_follow_the_contract() {
        let body = reply_body(true, "success", "成功", 200, "SO-1");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["statusCode"], 200);
        assert_eq!(body["data"]["platformOrderNo"], "SO-1");
        assert_eq!(body["timeStamp"].as_str().unwrap().len(), 14);
    }
}

//! The reply shapes of the contract: the business envelope, business errors, the 401 bodies of
//! each system, the 429, and the 5xx pages of injected failures. Which call gets which reply is
//! decided by the handlers and the fault gate.

use super::faults::FailKind;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

const JSON: &str = "application/json;charset=UTF-8";

/// A business failure: HTTP 200, `success:false`, `code:1`, an `errCode` and a Chinese message.
/// An empty `err_code` is sent as `errCode: null` (a refusal real Haier gives no code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BizError {
    pub err_code: &'static str,
    pub message: String,
}

impl BizError {
    /// A required field is absent, `null` or blank.
    pub fn missing(field: &str) -> Self {
        Self {
            err_code: "PARAM_MISSING",
            message: format!("缺少必填参数: {field}"),
        }
    }

    /// A field is present but cannot be read (wrong type or format); still `PARAM_MISSING`,
    /// the contract's only code for a bad request body.
    pub fn malformed(field: &str, why: &str) -> Self {
        Self {
            err_code: "PARAM_MISSING",
            message: format!("参数格式错误: {field} {why}"),
        }
    }

    /// A password, or a customer, ship-to or seller code, that does not match.
    pub fn credentials(message: impl Into<String>) -> Self {
        Self {
            err_code: "PASSWORD_ERROR",
            message: message.into(),
        }
    }

    pub fn too_many_codes(given: usize) -> Self {
        Self {
            err_code: "TOO_MANY_CODES",
            message: format!("商品编码数量超过上限20个 (本次{given}个)"),
        }
    }

    pub fn duplicate_so_id(so_id: &str) -> Self {
        Self {
            err_code: "DUPLICATE_SOID",
            message: format!("子订单号重复: {so_id}"),
        }
    }

    /// A repeated `soId` refused as real Haier may: no code, only a Chinese message (two
    /// wordings, chosen by the `soId`).
    pub fn duplicate_so_id_message_only(so_id: &str) -> Self {
        let wording = if so_id.bytes().map(u32::from).sum::<u32>() % 2 == 0 {
            "子订单号已存在"
        } else {
            "重复推送，请勿重复提交"
        };
        Self {
            err_code: "",
            message: format!("{wording}: {so_id}"),
        }
    }

    pub fn order_not_found(order: &str) -> Self {
        Self {
            err_code: "ORDER_NOT_FOUND",
            message: format!("订单不存在: {order}"),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, T: Serialize> {
    success: bool,
    code: i64,
    err_code: Option<&'a str>,
    info_msgs: &'a [String],
    warning_msgs: &'a [String],
    error_msg: Option<&'a str>,
    data: Option<T>,
    error: Option<()>,
}

/// A JSON body with the given status.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(CONTENT_TYPE, JSON)], bytes).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("simulator could not encode its reply: {e}"),
        )
            .into_response(),
    }
}

/// Pre-encoded JSON bytes as a 200 reply.
pub(crate) fn json_bytes(bytes: axum::body::Bytes) -> Response {
    ([(CONTENT_TYPE, JSON)], bytes).into_response()
}

/// The success envelope around `data`.
pub(crate) fn ok<T: Serialize>(data: T) -> Response {
    ok_with_messages(data, &[], &[])
}

/// The success envelope with `infoMsgs` and `warningMsgs`.
pub(crate) fn ok_with_messages<T: Serialize>(data: T, info: &[String], warnings: &[String]) -> Response {
    json(StatusCode::OK, &success_envelope(data, info, warnings))
}

/// The success envelope as bytes, for replies encoded once and served many times.
pub(crate) fn ok_bytes<T: Serialize>(data: T) -> Vec<u8> {
    serde_json::to_vec(&success_envelope(data, &[], &[])).unwrap_or_default()
}

fn success_envelope<'a, T: Serialize>(
    data: T,
    info: &'a [String],
    warnings: &'a [String],
) -> Envelope<'a, T> {
    Envelope {
        success: true,
        code: 0,
        err_code: None,
        info_msgs: info,
        warning_msgs: warnings,
        error_msg: None,
        data: Some(data),
        error: None,
    }
}

/// A business failure envelope (HTTP 200).
pub(crate) fn business_error(err: &BizError) -> Response {
    json(
        StatusCode::OK,
        &Envelope::<()> {
            success: false,
            code: 1,
            err_code: (!err.err_code.is_empty()).then_some(err.err_code),
            info_msgs: &[],
            warning_msgs: &[],
            error_msg: Some(&err.message),
            data: None,
            error: None,
        },
    )
}

/// 429 with `Retry-After` and the contract's envelope.
pub(crate) fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut reply = json(
        StatusCode::TOO_MANY_REQUESTS,
        &Envelope::<()> {
            success: false,
            code: 429,
            err_code: None,
            info_msgs: &[],
            warning_msgs: &[],
            error_msg: Some("请求过于频繁"),
            data: None,
            error: None,
        },
    );
    reply
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    reply
}

/// Openplat's answer to a missing, bad or expired token.
pub(crate) fn openplat_bad_token() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({"code": 401, "message": "token invalid or expired"}),
    )
}

/// Openplat's answer to a token call with bad client credentials.
pub(crate) fn openplat_bad_client() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({"code": 401, "message": "invalid client"}),
    )
}

/// YLH's (Spring OAuth's) answer to a missing, bad or expired bearer token. It carries the
/// openplat keys too, so either reading finds a message.
pub(crate) fn ylh_bad_token() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({
            "error": "invalid_token",
            "error_description": "token invalid or expired",
            "code": 401,
            "message": "token invalid or expired",
        }),
    )
}

/// A Spring OAuth error (`{"error","error_description"}`).
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

/// HTTP 504 from the gateway in front of a service that did not answer in time.
pub(crate) fn gateway_timeout() -> Response {
    nginx_page(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out")
}

/// The reply of an injected failure.
pub(crate) fn injected_failure(kind: FailKind) -> Response {
    match kind {
        FailKind::JsonServerError => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({
                "success": false, "code": 500, "errCode": null, "infoMsgs": [], "warningMsgs": [],
                "errorMsg": "系统繁忙，请稍后再试", "data": null, "error": "Internal Server Error",
            }),
        ),
        FailKind::HtmlBadGateway => nginx_page(StatusCode::BAD_GATEWAY, "502 Bad Gateway"),
        FailKind::HtmlServiceUnavailable => nginx_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Temporarily Unavailable",
        ),
        FailKind::TextServiceUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, "text/plain;charset=UTF-8")],
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        )
            .into_response(),
    }
}

fn nginx_page(status: StatusCode, title: &str) -> Response {
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(CONTENT_TYPE, "text/html")], body).into_response()
}

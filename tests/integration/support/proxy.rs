//! A proxy in front of the simulator that makes Haier refuse chosen codes (the simulator has no
//! such fault).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A proxy in front of the simulator that answers Haier's business error for any call whose body
/// names one of `refused` (a product code or an order number), and passes everything else on.
pub struct RefusingProxy {
    pub base_url: String,
    stop: CancellationToken,
}

impl Drop for RefusingProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RefusingProxy {
    pub async fn start(upstream: String, refused: Vec<String>) -> RefusingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((upstream, refused, reqwest::Client::new()));
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = Arc::clone(&state);
            async move { forward(&state.0, &state.1, &state.2, uri, headers, body).await }
        });
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(until.cancelled_owned())
                .await;
        });
        RefusingProxy {
            base_url: format!("http://{addr}"),
            stop,
        }
    }
}

async fn forward(
    upstream: &str,
    refused: &[String],
    client: &reqwest::Client,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    if refused.iter().any(|code| text.contains(&format!("\"{code}\""))) {
        let reply = serde_json::json!({
            "success": false, "code": 1, "errCode": "PARAM_MISSING", "infoMsgs": [], "warningMsgs": [],
            "errorMsg": "商品编码无效", "data": null, "error": null,
        });
        return (StatusCode::OK, axum::Json(reply)).into_response();
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = client.post(format!("{upstream}{path}")).body(body);
    for name in ["authorization", "content-type", "system-name"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    match request.send().await {
        Ok(reply) => {
            let status = StatusCode::from_u16(reply.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = reply.headers().get("content-type").cloned();
            let bytes = reply.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            if let Some(ct) = content_type {
                response.headers_mut().insert("content-type", ct);
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

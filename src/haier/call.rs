//! The path every request takes: one business call with its breaker, retries, span and
//! counters (`Inner::call`), one attempt with its token and the reply opened (`attempt`), one
//! send paced by the limiter with its body read within a bound (`send`), and the errors each
//! step turns into. The typed operations are in `openplat.rs` and `ylh.rs`.

use super::auth::{IssuedToken, Token, AUTH_TIMEOUT};
use super::body::{ReadReply, WholeBody};
use super::breaker::{Admission, Outcome, Permit};
use super::client::Inner;
use super::error::HaierError;
use super::redact::BODY_LIMIT;
use super::retry::{run_with_retries, Budget, RetryContext, DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER};
use super::stats::Operation;
use super::types::System;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::field::Empty;
use tracing::Instrument;
use url::Url;

/// A request slower than this logs a warning.
const SLOW_REQUEST: Duration = Duration::from_secs(2);
/// Longest body in a debug log line, in characters (a full product listing is large).
const DEBUG_BODY_LIMIT: usize = 4000;
/// The longest reply body read, in bytes (after decompression). A whole product listing is a
/// few MB; a larger reply is refused without being held in memory.
pub(super) const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// One HTTP answer, whatever its status.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) retry_after: Option<Duration>,
    pub(super) body: Vec<u8>,
}

/// A request sent whose reply's head has come; its body is still to read.
pub(super) struct Sent {
    pub(super) response: reqwest::Response,
    /// When the request went out.
    pub(super) started: Instant,
}

/// Reads `Retry-After` as seconds (a fraction accepted) or an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<f64>() {
        // Cut before converting: `Duration` panics on a value as large as `1e300`.
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some(
        (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

/// True when an I/O error of kind `InvalidData` (a decompressor refusing the body) caused
/// `error`; a connection that broke mid-body is not that.
fn is_invalid_data(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The causes under a reqwest error, joined by `: `.
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

/// The breaker's view of how a call ended.
fn outcome_of<T>(result: &Result<T, HaierError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Healthy,
        Err(HaierError::BreakerOpen { .. } | HaierError::RateLimited { .. }) => Outcome::Neutral,
        Err(e) if e.is_retryable() => Outcome::Failed,
        Err(_) => Outcome::Healthy,
    }
}

/// A short label for a call's span.
fn status_label<T>(result: &Result<T, HaierError>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(HaierError::Http { status, .. }) => format!("http_{status}"),
        Err(HaierError::Business { code, .. }) => format!("refused_{code}"),
        Err(HaierError::OrderNotFound { .. }) => "refused_ORDER_NOT_FOUND".to_owned(),
        Err(HaierError::DuplicateSoId { .. }) => "duplicate_so_id".to_owned(),
        Err(HaierError::RefusedAfterUnseen { code, .. }) => format!("refused_after_unseen_{code}"),
        Err(HaierError::RateLimited { .. }) => "rate_limited".to_owned(),
        Err(HaierError::Timeout { .. }) => "timeout".to_owned(),
        Err(HaierError::Connect { .. }) => "connect_error".to_owned(),
        Err(HaierError::AuthRefused { .. }) => "login_refused".to_owned(),
        Err(HaierError::Unauthorized { .. }) => "unauthorized".to_owned(),
        Err(HaierError::Decode { .. }) => "bad_reply".to_owned(),
        Err(HaierError::BreakerOpen { .. }) => "breaker_open".to_owned(),
        Err(HaierError::InvalidRequest { .. }) => "invalid_request".to_owned(),
        Err(HaierError::Config { .. }) => "config".to_owned(),
    }
}

/// Refuses a request before it is sent when `ok` is false, with `message` as the reason.
pub(super) fn require(operation: Operation, ok: bool, message: &str) -> Result<(), HaierError> {
    if ok {
        Ok(())
    } else {
        Err(HaierError::InvalidRequest {
            operation: operation.as_str(),
            message: message.to_owned(),
        })
    }
}

/// A request body as JSON; a body that cannot be written is an invalid request.
pub(super) fn encode(operation: Operation, body: &impl Serialize) -> Result<Vec<u8>, HaierError> {
    serde_json::to_vec(body).map_err(|e| HaierError::InvalidRequest {
        operation: operation.as_str(),
        message: e.to_string(),
    })
}

impl Inner {
    /// Sends one request once: waits for the system's limiter, counts it, times it, and logs
    /// both bodies masked at debug level. Any HTTP status is a [`Reply`]; only a timeout or a
    /// broken connection is an error.
    pub(super) async fn send(
        &self,
        operation: Operation,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        logged_body: &[u8],
    ) -> Result<Reply, HaierError> {
        let sent = self.send_head(operation, request, timeout, logged_body).await?;
        self.read_reply(operation, timeout, sent).await
    }

    /// Sends one request once, up to the reply's head: waits for the limiter, counts it, logs
    /// the masked request body at debug level, and counts a 429.
    pub(super) async fn send_head(
        &self,
        operation: Operation,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        logged_body: &[u8],
    ) -> Result<Sent, HaierError> {
        self.endpoint(operation.system()).limiter.acquire().await;
        self.send_head_now(operation, request, timeout, logged_body).await
    }

    /// [`Inner::send_head`] for a caller that has already waited for the limiter.
    async fn send_head_now(
        &self,
        operation: Operation,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        logged_body: &[u8],
    ) -> Result<Sent, HaierError> {
        let system = operation.system();
        self.stats.request(operation);
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(%system, %operation, body = %self.redactor.body(logged_body, DEBUG_BODY_LIMIT), "haier request");
        }
        let started = Instant::now();
        let response = request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(operation, timeout, e))?;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            self.stats.throttled(operation);
        }
        Ok(Sent { response, started })
    }

    /// Reads the whole body of a reply whose head has come (see [`Inner::read_body`]), and times
    /// the request: a slow one is counted and logged.
    pub(super) async fn read_reply(
        &self,
        operation: Operation,
        timeout: Duration,
        sent: Sent,
    ) -> Result<Reply, HaierError> {
        let Sent { response, started } = sent;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = self.read_body(operation, timeout, response).await?;
        let latency_ms = self.note_latency(operation, status, started);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let system = operation.system();
            tracing::debug!(%system, %operation, status = status.as_u16(), latency_ms, body = %self.redactor.body(&body, DEBUG_BODY_LIMIT), "haier reply");
        }
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    /// Counts and logs a request slower than [`SLOW_REQUEST`]; returns its latency in ms.
    pub(super) fn note_latency(&self, operation: Operation, status: StatusCode, started: Instant) -> u64 {
        let latency = started.elapsed();
        let latency_ms = latency.as_millis() as u64;
        self.stats.latency(operation, latency.as_secs_f64());
        if latency > SLOW_REQUEST {
            self.stats.slow(operation);
            let system = operation.system();
            tracing::warn!(%system, %operation, status = status.as_u16(), latency_ms, "slow Haier reply");
        }
        latency_ms
    }

    /// Reads a reply body of at most [`MAX_REPLY_BYTES`], chunk by chunk: a larger one (by its
    /// `Content-Length`, or as it arrives) is a [`HaierError::Decode`] and is not read further.
    async fn read_body(
        &self,
        operation: Operation,
        timeout: Duration,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, HaierError> {
        let too_large = || HaierError::Decode {
            system: operation.system(),
            operation: operation.as_str(),
            message: format!("the reply is larger than {MAX_REPLY_BYTES} bytes; not read"),
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_REPLY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(operation, timeout, e))?
        {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    pub(super) fn transport_error(
        &self,
        operation: Operation,
        timeout: Duration,
        error: reqwest::Error,
    ) -> HaierError {
        let system = operation.system();
        if error.is_timeout() {
            return HaierError::Timeout {
                system,
                operation: operation.as_str(),
                after: timeout,
            };
        }
        if error.is_decode() && is_invalid_data(&error) {
            // The body arrived but does not decode as its `Content-Encoding` says (a gzip
            // header on plain text): sending again would get the same.
            return HaierError::Decode {
                system,
                operation: operation.as_str(),
                message: self.redactor.scrub(&format!(
                    "the reply body cannot be decoded as its Content-Encoding says: {}",
                    error_chain(&error)
                )),
            };
        }
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        HaierError::Connect {
            system,
            operation: operation.as_str(),
            message: self.redactor.scrub(&message),
        }
    }

    /// The error for a status no caller handled: 429 or any other non-2xx.
    pub(super) fn status_error(
        &self,
        system: System,
        operation: &'static str,
        status: u16,
        reply: &Reply,
    ) -> HaierError {
        if status == 429 {
            return HaierError::RateLimited {
                system,
                operation,
                retry_after: reply.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            };
        }
        HaierError::Http {
            system,
            operation,
            status,
            body: self.redactor.body(&reply.body, BODY_LIMIT),
        }
    }

    /// The cached token of `system`, or a new one (one token request however many calls wait).
    pub(super) async fn token(&self, system: System) -> Result<Token, HaierError> {
        self.endpoint(system)
            .tokens
            .get(|| self.request_token(system))
            .await
    }

    async fn request_token(&self, system: System) -> Result<IssuedToken, HaierError> {
        let operation = Operation::token_of(system);
        let span = tracing::info_span!("haier_login", %system, operation = operation.as_str(), status = Empty, latency_ms = Empty);
        async {
            self.stats.call(operation);
            let started = Instant::now();
            let result = match system {
                System::Openplat => self.openplat_auth.fetch(self).await,
                System::Ylh => self.ylh_auth.fetch(self).await,
            };
            let span = tracing::Span::current();
            span.record("status", status_label(&result));
            span.record("latency_ms", started.elapsed().as_millis() as u64);
            match &result {
                Ok(token) => {
                    tracing::info!(%system, lifetime_s = token.lifetime.as_secs(), "logged in to Haier")
                }
                Err(error) => {
                    self.stats.error(operation);
                    tracing::debug!(%system, %error, "Haier login failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// One business call with everything around it: breaker, retries, span, counters. The
    /// breaker's probe runs in a task of its own (see `breaker.rs`): it is sent, and its outcome
    /// recorded, even when this future is dropped.
    pub(super) async fn call<T, D>(
        self: &Arc<Self>,
        operation: Operation,
        url: &Url,
        body: Vec<u8>,
        decode: D,
    ) -> Result<T, HaierError>
    where
        T: Send + 'static,
        D: Fn(Value) -> Result<T, String> + Send + Sync + 'static,
    {
        self.call_with(operation, url, body, WholeBody(decode), None)
            .await
    }

    /// [`Inner::call`], setting `unseen` when any attempt ended with an outcome never seen
    /// ([`HaierError::is_unseen_outcome`]): the request may have taken effect.
    pub(super) async fn call_noting_unseen<T, D>(
        self: &Arc<Self>,
        operation: Operation,
        url: &Url,
        body: Vec<u8>,
        decode: D,
        unseen: Option<Arc<AtomicBool>>,
    ) -> Result<T, HaierError>
    where
        T: Send + 'static,
        D: Fn(Value) -> Result<T, String> + Send + Sync + 'static,
    {
        self.call_with(operation, url, body, WholeBody(decode), unseen)
            .await
    }

    /// [`Inner::call`] with a 2xx reply read by `decode` (see [`ReadReply`]), setting `unseen`
    /// (when given) as [`Inner::call_noting_unseen`] does.
    pub(super) async fn call_with<R: ReadReply>(
        self: &Arc<Self>,
        operation: Operation,
        url: &Url,
        body: Vec<u8>,
        decode: R,
        unseen: Option<Arc<AtomicBool>>,
    ) -> Result<R::Output, HaierError> {
        let system = operation.system();
        let span = tracing::info_span!(
            "haier_call",
            %system,
            operation = operation.as_str(),
            status = Empty,
            attempt = Empty,
            latency_ms = Empty
        );
        async {
            let endpoint = self.endpoint(system);
            self.stats.call(operation);
            let started = Instant::now();
            let (result, attempts) = match endpoint.breaker.enter().await {
                Err(retry_in) => (Err(HaierError::BreakerOpen { system, retry_in }), 0),
                Ok(Admission::Normal) => {
                    self.run_admitted(
                        Admission::Normal,
                        operation,
                        url,
                        &body,
                        &decode,
                        unseen.as_deref(),
                    )
                    .await
                }
                Ok(Admission::Probe) => {
                    let inner = Arc::clone(self);
                    let url = url.clone();
                    let probe = tokio::spawn(
                        async move {
                            inner
                                .run_admitted(
                                    Admission::Probe,
                                    operation,
                                    &url,
                                    &body,
                                    &decode,
                                    unseen.as_deref(),
                                )
                                .await
                        }
                        .in_current_span(),
                    );
                    match probe.await {
                        Ok(done) => done,
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(_) => (
                            Err(HaierError::Connect {
                                system,
                                operation: operation.as_str(),
                                message: "the probe call was stopped: the runtime is shutting down"
                                    .to_owned(),
                            }),
                            1,
                        ),
                    }
                }
            };
            let latency_ms = started.elapsed().as_millis() as u64;
            let span = tracing::Span::current();
            span.record("status", status_label(&result));
            span.record("attempt", attempts);
            span.record("latency_ms", latency_ms);
            match &result {
                Ok(_) => tracing::debug!(attempts, latency_ms, "haier call done"),
                Err(error) => {
                    self.stats.error(operation);
                    tracing::debug!(attempts, latency_ms, %error, "haier call failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// The longest a probe may take: a login (trying both token URLs) and one request. Calls
    /// that wait for the probe wait at most this long for it.
    fn probe_limit(&self, system: System) -> Duration {
        self.endpoint(system).timeout + 2 * AUTH_TIMEOUT
    }

    /// Runs a call the breaker admitted, with its retries, and records its outcome with the
    /// breaker. A probe gets a single attempt within [`Inner::probe_limit`].
    async fn run_admitted<R: ReadReply>(
        &self,
        admission: Admission,
        operation: Operation,
        url: &Url,
        body: &[u8],
        decode: &R,
        unseen: Option<&AtomicBool>,
    ) -> (Result<R::Output, HaierError>, u32) {
        let system = operation.system();
        let endpoint = self.endpoint(system);
        let permit = Permit::new(&endpoint.breaker, admission);
        let mut budget = Budget::new(&endpoint.retry);
        if admission == Admission::Probe {
            budget = budget.single();
        }
        let stop = || {
            endpoint
                .breaker
                .open_for(Instant::now())
                .map(|retry_in| HaierError::BreakerOpen { system, retry_in })
        };
        let ctx = RetryContext {
            operation,
            limiter: &endpoint.limiter,
            stats: &self.stats,
            stop: &stop,
        };
        let calls = run_with_retries(ctx, budget, || async {
            let result = self.attempt(operation, url, body, decode).await;
            if let (Some(flag), Err(error)) = (unseen, &result) {
                if error.is_unseen_outcome() {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            result
        });
        let (result, attempts) = if admission == Admission::Probe {
            let limit = self.probe_limit(system);
            tokio::time::timeout(limit, calls).await.unwrap_or((
                Err(HaierError::Timeout {
                    system,
                    operation: operation.as_str(),
                    after: limit,
                }),
                1,
            ))
        } else {
            calls.await
        };
        permit.finish(outcome_of(&result));
        (result, attempts)
    }

    /// One attempt: a token, a turn of the limiter, one request, and the reply opened and
    /// decoded. The token is asked for again after the turn (from the cache, as a rule): a wait
    /// for the quota can be long, and a 401 of another call meanwhile means a newer token. The
    /// first ask makes sure a login is not done inside the turn, which would send the request
    /// late, bunched with the others that waited on the login. A 401 drops the token, so the
    /// next attempt takes a newer one.
    async fn attempt<R: ReadReply>(
        &self,
        operation: Operation,
        url: &Url,
        body: &[u8],
        decode: &R,
    ) -> Result<R::Output, HaierError> {
        let system = operation.system();
        let endpoint = self.endpoint(system);
        self.token(system).await?;
        endpoint.limiter.acquire().await;
        let token = self.token(system).await?;
        let request = endpoint
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, token.header().clone())
            .body(body.to_vec());
        let sent = self
            .send_head_now(operation, request, endpoint.timeout, body)
            .await?;
        if sent.response.status().is_success() {
            return decode.read(self, operation, endpoint.timeout, sent).await;
        }
        let reply = self.read_reply(operation, endpoint.timeout, sent).await?;
        let op = operation.as_str();
        match reply.status.as_u16() {
            401 => {
                endpoint.tokens.invalidate(token.generation());
                Err(HaierError::Unauthorized {
                    system,
                    operation: op,
                })
            }
            status => Err(self.status_error(system, op, status, &reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, "0.5".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(500)));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
        // Past what `Duration` holds: cut to the longest wait honoured, not a panic.
        headers.insert(RETRY_AFTER, "1e300".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(RETRY_AFTER, "-1".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn breaker_outcomes_follow_the_classification() {
        let failed: Result<(), _> = Err(HaierError::Timeout {
            system: System::Openplat,
            operation: "stock",
            after: Duration::from_secs(1),
        });
        assert_eq!(outcome_of(&failed), Outcome::Failed);
        let refused: Result<(), _> = Err(HaierError::Business {
            system: System::Openplat,
            operation: "stock",
            code: "PASSWORD_ERROR".into(),
            message: String::new(),
        });
        assert_eq!(outcome_of(&refused), Outcome::Healthy);
        let not_found: Result<(), _> = Err(HaierError::OrderNotFound {
            system: System::Ylh,
            operation: "order_cancel",
            message: String::new(),
        });
        assert_eq!(outcome_of(&not_found), Outcome::Healthy);
        assert_eq!(status_label(&not_found), "refused_ORDER_NOT_FOUND");
        let limited: Result<(), _> = Err(HaierError::RateLimited {
            system: System::Openplat,
            operation: "stock",
            retry_after: Duration::from_secs(1),
        });
        assert_eq!(outcome_of(&limited), Outcome::Neutral);
    }
}

//! The one Haier client a daemon shares: typed operations over both systems, each call paced by
//! the system's limiter, guarded by its breaker, retried by `retry.rs`, traced as a span and
//! counted. Wire shapes live in `wire.rs`, logins in `auth.rs`; nothing here touches the database.

use super::auth::{IssuedToken, OpenplatAuth, Token, TokenCache, YlhAuth, AUTH_TIMEOUT};
use super::breaker::{Admission, Breaker, BreakerState, Outcome, Permit};
use super::error::HaierError;
use super::limiter::Limiter;
use super::redact::{Redactor, BODY_LIMIT};
use super::retry::{run_with_retries, Budget, RetryContext, DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER};
use super::stats::{ClientStats, Operation, Stats, SystemStats};
use super::types::{Balance, CancelRequest, Logistics, Order, Price, Product, StockLevel, System};
use super::wire::{self, Envelope};
use crate::config::{HaierConfig, RateLimit, RetryPolicy, Secret, YlhConfig};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::field::Empty;
use tracing::Instrument;
use url::Url;

/// Sent with every request.
const USER_AGENT: &str = concat!("haier-sync/", env!("CARGO_PKG_VERSION"));
/// A request slower than this logs a warning.
const SLOW_REQUEST: Duration = Duration::from_secs(2);
/// Haier caps product and price calls at 20 codes (there is no pagination).
pub const MAX_CODES_PER_CALL: usize = 20;
/// Longest body in a debug log line, in characters (a full product listing is large).
const DEBUG_BODY_LIMIT: usize = 4000;
/// Connecting never takes longer than this, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The longest reply body read, in bytes (after decompression). A whole product listing is a
/// few MB; a larger reply is refused without being held in memory.
pub(super) const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// The shared client for both Haier systems. Clones share one budget, one token per system,
/// one breaker per system and one set of counters.
#[derive(Clone)]
pub struct HaierClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HaierClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaierClient")
            .field(
                "openplat",
                &self.inner.op.products_url.origin().ascii_serialization(),
            )
            .field(
                "ylh",
                &self.inner.ylh_params.push_url.origin().ascii_serialization(),
            )
            .finish_non_exhaustive()
    }
}

/// What one system's calls share: HTTP pool, timeout, quota, breaker, retry policy and token.
pub(super) struct Endpoint {
    system: System,
    pub(super) http: reqwest::Client,
    timeout: Duration,
    rate: RateLimit,
    limiter: Limiter,
    breaker: Breaker,
    retry: RetryPolicy,
    tokens: TokenCache,
}

/// Openplat's request values and URLs.
struct OpenplatParams {
    customer_code: String,
    send_to_code: String,
    supplier_code: String,
    password: Secret,
    seller_password: Secret,
    customer_password: Secret,
    products_url: Url,
    prices_url: Url,
    stock_url: Url,
    logistics_url: Url,
    balance_url: Url,
}

/// YLH's request values and URLs.
struct YlhParams {
    source_system: String,
    push_url: Url,
    cancel_url: Url,
}

pub(super) struct Inner {
    openplat: Endpoint,
    ylh: Endpoint,
    openplat_auth: OpenplatAuth,
    ylh_auth: YlhAuth,
    op: OpenplatParams,
    ylh_params: YlhParams,
    stats: Stats,
    pub(super) redactor: Redactor,
}

/// One HTTP answer, whatever its status.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    retry_after: Option<Duration>,
    pub(super) body: Vec<u8>,
}

/// The outcome of `test-connection` for one system.
#[derive(Debug)]
pub struct ConnectionCheck {
    pub system: System,
    pub latency: Duration,
    /// What was checked and found, or why it failed.
    pub outcome: Result<String, HaierError>,
}

impl std::fmt::Display for ConnectionCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (verdict, detail) = match &self.outcome {
            Ok(detail) => ("OK", detail.clone()),
            Err(error) => ("FAILED", error.to_string()),
        };
        write!(
            f,
            "{:<8}  {:<6}  {:>5} ms  {}",
            self.system.to_string(),
            verdict,
            self.latency.as_millis(),
            detail
        )
    }
}

fn config_error(message: impl Into<String>) -> HaierError {
    HaierError::Config {
        message: message.into(),
    }
}

fn require_http(url: &Url) -> Result<(), HaierError> {
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(config_error(format!("{url} is not an http(s) URL")))
    }
}

/// `base` + `path`, keeping any path `base` has (e.g. a gateway prefix).
fn join(base: &Url, path: &str) -> Result<Url, HaierError> {
    require_http(base)?;
    let text = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&text).map_err(|e| config_error(format!("{text}: {e}")))
}

fn build_endpoint(
    system: System,
    timeout_ms: u64,
    rate: RateLimit,
    retry: RetryPolicy,
    breaker: crate::config::BreakerPolicy,
) -> Result<Endpoint, HaierError> {
    let timeout = Duration::from_millis(timeout_ms.max(1));
    let http = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .gzip(true)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        // Haier's calls are POSTs: a redirect followed would turn a push into a GET of some
        // page whose 200 could read as "pushed". A 3xx is an HTTP error instead.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| config_error(format!("cannot build the {system} HTTP client: {e}")))?;
    let limiter = Limiter::new(system, rate).ok_or_else(|| {
        config_error(format!(
            "{system} rate_limit needs per_second and burst of at least 1"
        ))
    })?;
    Ok(Endpoint {
        system,
        http,
        timeout,
        rate,
        limiter,
        breaker: Breaker::new(system, breaker),
        retry,
        tokens: TokenCache::default(),
    })
}

/// Reads `Retry-After` as seconds (a fraction accepted) or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
        Err(HaierError::DuplicateSoId { .. }) => "duplicate_so_id".to_owned(),
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

/// A push refusal that means "Haier already has this soId": the code `DUPLICATE_SOID`, or (real
/// Haier names no code) a message that speaks of a repeat (重复, 已存在).
fn is_duplicate_refusal(code: &str, message: &str) -> bool {
    code == "DUPLICATE_SOID" || message.contains("重复") || message.contains("已存在")
}

/// Refuses a code list outside 1..=20 or with a blank code.
fn check_codes(operation: Operation, codes: &[String]) -> Result<(), HaierError> {
    let message = if codes.is_empty() {
        "at least one product code is needed".to_owned()
    } else if codes.len() > MAX_CODES_PER_CALL {
        format!(
            "at most {MAX_CODES_PER_CALL} product codes per call, got {}",
            codes.len()
        )
    } else if codes.iter().any(|c| c.trim().is_empty()) {
        "a product code is blank".to_owned()
    } else {
        return Ok(());
    };
    Err(HaierError::InvalidRequest {
        operation: operation.as_str(),
        message,
    })
}

fn require(operation: Operation, ok: bool, message: &str) -> Result<(), HaierError> {
    if ok {
        Ok(())
    } else {
        Err(HaierError::InvalidRequest {
            operation: operation.as_str(),
            message: message.to_owned(),
        })
    }
}

fn encode(operation: Operation, body: &impl Serialize) -> Result<Vec<u8>, HaierError> {
    serde_json::to_vec(body).map_err(|e| HaierError::InvalidRequest {
        operation: operation.as_str(),
        message: e.to_string(),
    })
}

impl HaierClient {
    /// Builds the client from both systems' config. Nothing is sent until the first call.
    pub fn new(openplat: &HaierConfig, ylh: &YlhConfig) -> Result<Self, HaierError> {
        let base = &openplat.base_url;
        let op = OpenplatParams {
            customer_code: openplat.customer_code.clone(),
            send_to_code: openplat.send_to_code.clone(),
            supplier_code: openplat.supplier_code.clone(),
            password: openplat.password.clone(),
            seller_password: openplat.seller_password.clone(),
            customer_password: openplat.customer_password.clone(),
            products_url: join(base, "/yilihuo/jsh-service-goods-mall-search/api/product-info/procurable-products-out/check-procurable-products")?,
            prices_url: join(base, "/yilihuo/jsh-service-goods-price/api/goods-price/price-daily-sales/price-query/pt-out-list-price")?,
            stock_url: join(base, "/yilihuo/jsh-service-stock-mall/api/page/stock/get-available-stock-open")?,
            logistics_url: join(base, "/yilihuo/ylh-cloud-service-stock/api/page/stock/logistics/sass/get-thirdparty-logistics-info-by-order-code-auth")?,
            balance_url: join(base, "/yilihuo/jsh-service-finance-mall/api/page/account/account-balance-manager/get-payer-account-balance-by-customer-code")?,
        };
        require_http(&openplat.token_url)?;
        let suffix = &ylh.path_suffix;
        let order_root = format!("/ylh-cloud-service-jst-order{suffix}/api/page/hmm/retailorder");
        let ylh_params = YlhParams {
            source_system: ylh.source_system.clone(),
            push_url: join(&ylh.base_url, &format!("{order_root}/receive-hmm-retail-order"))?,
            cancel_url: join(&ylh.base_url, &format!("{order_root}/cancel-hmm-retail-order"))?,
        };
        let ylh_token_url = join(&ylh.base_url, &format!("/ylh-cloud-mgt-auth{suffix}/oauth/token"))?;
        let redactor = Redactor::new([
            openplat.client_secret.expose(),
            openplat.password.expose(),
            openplat.seller_password.expose(),
            openplat.customer_password.expose(),
            ylh.client_password.expose(),
            ylh.password.expose(),
        ]);
        let inner = Inner {
            openplat: build_endpoint(
                System::Openplat,
                openplat.timeout_ms,
                openplat.rate_limit,
                openplat.retry,
                openplat.breaker,
            )?,
            ylh: build_endpoint(
                System::Ylh,
                ylh.timeout_ms,
                ylh.rate_limit,
                ylh.retry,
                ylh.breaker,
            )?,
            openplat_auth: OpenplatAuth::new(
                &openplat.token_url,
                &openplat.client_id,
                &openplat.client_secret,
            ),
            ylh_auth: YlhAuth::new(
                ylh_token_url,
                &ylh.client_id,
                &ylh.client_password,
                &ylh.username,
                &ylh.password,
            ),
            op,
            ylh_params,
            stats: Stats::default(),
            redactor,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Purchasable products: the given codes (1..=20), or the customer's whole listing (`None`).
    pub async fn query_products(&self, codes: Option<&[String]>) -> Result<Vec<Product>, HaierError> {
        let operation = Operation::Products;
        if let Some(codes) = codes {
            check_codes(operation, codes)?;
        }
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::ProductsRequest {
                customer_code: &p.customer_code,
                send_to_code: &p.send_to_code,
                product_codes: codes,
                supplier_code: &p.supplier_code,
                search_type: wire::SEARCH_TYPE,
                password: p.password.expose(),
            },
        )?;
        self.inner
            .call(operation, &p.products_url, body, wire::products_from)
            .await
    }

    /// Supply prices of 1..=20 products.
    pub async fn query_prices(&self, codes: &[String]) -> Result<Vec<Price>, HaierError> {
        let operation = Operation::Prices;
        check_codes(operation, codes)?;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::PricesRequest {
                customer_code: &p.customer_code,
                send_to_code: &p.send_to_code,
                product_codes: codes,
                price_type: wire::PRICE_TYPE,
                password: p.password.expose(),
            },
        )?;
        self.inner
            .call(operation, &p.prices_url, body, wire::prices_from)
            .await
    }

    /// Available stock of one product for one county (a 6-digit GB/T 2260 code).
    pub async fn query_stock(&self, product_code: &str, county_code: &str) -> Result<StockLevel, HaierError> {
        let operation = Operation::Stock;
        require(
            operation,
            !product_code.trim().is_empty(),
            "the product code is blank",
        )?;
        require(
            operation,
            county_code.len() == 6 && county_code.bytes().all(|b| b.is_ascii_digit()),
            "the county code must be 6 digits",
        )?;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::StockRequest {
                sales_code: &p.customer_code,
                sender_code: &p.send_to_code,
                product_code,
                county_code,
                source: wire::STOCK_SOURCE,
                seller_password: p.seller_password.expose(),
            },
        )?;
        let (product_code, county_code) = (product_code.to_owned(), county_code.to_owned());
        self.inner
            .call(operation, &p.stock_url, body, move |data| {
                wire::stock_from(&product_code, &county_code, data)
            })
            .await
    }

    /// What Haier knows about the delivery of one order (its Haier order no.).
    pub async fn query_logistics(&self, order_code: &str) -> Result<Logistics, HaierError> {
        let operation = Operation::Logistics;
        require(
            operation,
            !order_code.trim().is_empty(),
            "the order code is blank",
        )?;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::LogisticsRequest {
                order_code,
                seller_code: &p.customer_code,
                seller_password: p.seller_password.expose(),
            },
        )?;
        let order_code = order_code.to_owned();
        self.inner
            .call(operation, &p.logistics_url, body, move |data| {
                wire::logistics_from(&order_code, data)
            })
            .await
    }

    /// The balances of the customer's payer accounts.
    pub async fn query_balance(&self) -> Result<Vec<Balance>, HaierError> {
        let operation = Operation::Balance;
        let p = &self.inner.op;
        let body = encode(
            operation,
            &wire::BalanceRequest {
                customer_code: &p.customer_code,
                customer_password: p.customer_password.expose(),
            },
        )?;
        self.inner
            .call(operation, &p.balance_url, body, wire::balances_from)
            .await
    }

    /// Pushes an order to YLH. A repeated `soId` is [`HaierError::DuplicateSoId`]: Haier has it.
    pub async fn push_order(&self, order: &Order) -> Result<(), HaierError> {
        let operation = Operation::OrderPush;
        require(operation, !order.so_id.trim().is_empty(), "the order has no soId")?;
        require(operation, !order.item_list.is_empty(), "the order has no items")?;
        let body = encode(operation, order)?;
        let so_id = order.so_id.clone();
        let result = self
            .inner
            .call(operation, &self.inner.ylh_params.push_url, body, move |data| {
                if data == Value::Bool(false) {
                    tracing::warn!(%so_id, "YLH answered success with data:false; taken as received");
                }
                Ok(())
            })
            .await;
        match result {
            Err(HaierError::Business { code, message, .. }) if is_duplicate_refusal(&code, &message) => {
                Err(HaierError::DuplicateSoId {
                    so_id: order.so_id.clone(),
                })
            }
            other => other,
        }
    }

    /// Asks YLH to cancel a pushed order. `true` when YLH took the request; the outcome comes
    /// later in the cancel callback.
    pub async fn cancel_order(&self, request: &CancelRequest) -> Result<bool, HaierError> {
        let operation = Operation::OrderCancel;
        require(
            operation,
            !request.so_id.trim().is_empty(),
            "the cancel request has no soId",
        )?;
        let body = encode(
            operation,
            &wire::CancelOrderRequest {
                so_id: &request.so_id,
                cancel_time: request.cancel_time_ms.to_string(),
                cancel_reason: &request.reason,
                source_system: &self.inner.ylh_params.source_system,
            },
        )?;
        self.inner
            .call(operation, &self.inner.ylh_params.cancel_url, body, |data| {
                Ok(wire::cancel_accepted_from(&data))
            })
            .await
    }

    /// A snapshot of the counters, token requests and breaker states.
    pub fn stats(&self) -> ClientStats {
        let operations = self.inner.stats.snapshot_operations();
        let system = |ep: &Endpoint| SystemStats {
            token_requests: operations
                .get(Operation::token_of(ep.system).as_str())
                .map_or(0, |s| s.requests),
            breaker: ep.breaker.state(),
            per_second: ep.rate.per_second,
            burst: ep.rate.burst,
            pace_per_second: Some(ep.limiter.pace_per_second()),
        };
        ClientStats {
            openplat: system(&self.inner.openplat),
            ylh: system(&self.inner.ylh),
            operations,
        }
    }

    /// The circuit breaker state of one system.
    pub fn breaker_state(&self, system: System) -> BreakerState {
        self.inner.endpoint(system).breaker.state()
    }

    /// Marks both cached tokens as due for refresh: the next call of each system logs in again
    /// (once, however many calls race).
    pub fn expire_tokens(&self) {
        self.inner.openplat.tokens.expire();
        self.inner.ylh.tokens.expire();
    }

    /// Logs in to `system` now, replacing any cached token.
    pub async fn login(&self, system: System) -> Result<(), HaierError> {
        let tokens = &self.inner.endpoint(system).tokens;
        tokens.expire();
        self.inner.token(system).await.map(|_| ())
    }

    /// Logs in to `system` and runs its cheapest call: the balance query on openplat; on YLH,
    /// whose calls all change orders, the login alone.
    pub async fn check_connection(&self, system: System) -> ConnectionCheck {
        let started = Instant::now();
        let outcome = match system {
            System::Openplat => match self.login(system).await {
                Ok(()) => self.query_balance().await.map(|balances| {
                    let n = balances.len();
                    format!("token + balance: {n} account{}", if n == 1 { "" } else { "s" })
                }),
                Err(e) => Err(e),
            },
            System::Ylh => self
                .login(system)
                .await
                .map(|()| "token only (YLH has no read-only call)".to_owned()),
        };
        ConnectionCheck {
            system,
            latency: started.elapsed(),
            outcome,
        }
    }
}

impl Inner {
    pub(super) fn endpoint(&self, system: System) -> &Endpoint {
        match system {
            System::Openplat => &self.openplat,
            System::Ylh => &self.ylh,
        }
    }

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
        let system = operation.system();
        self.endpoint(system).limiter.acquire().await;
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
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = self.read_body(operation, timeout, response).await?;
        let latency = started.elapsed();
        let latency_ms = latency.as_millis() as u64;
        if latency > SLOW_REQUEST {
            self.stats.slow(operation);
            tracing::warn!(%system, %operation, status = status.as_u16(), latency_ms, "slow Haier reply");
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.stats.throttled(operation);
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(%system, %operation, status = status.as_u16(), latency_ms, body = %self.redactor.body(&body, DEBUG_BODY_LIMIT), "haier reply");
        }
        Ok(Reply {
            status,
            retry_after,
            body,
        })
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

    fn transport_error(&self, operation: Operation, timeout: Duration, error: reqwest::Error) -> HaierError {
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
    async fn token(&self, system: System) -> Result<Token, HaierError> {
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
    async fn call<T, D>(
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
                    self.run_admitted(Admission::Normal, operation, url, &body, &decode)
                        .await
                }
                Ok(Admission::Probe) => {
                    let inner = Arc::clone(self);
                    let url = url.clone();
                    let probe = tokio::spawn(
                        async move {
                            inner
                                .run_admitted(Admission::Probe, operation, &url, &body, &decode)
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
    async fn run_admitted<T>(
        &self,
        admission: Admission,
        operation: Operation,
        url: &Url,
        body: &[u8],
        decode: &impl Fn(Value) -> Result<T, String>,
    ) -> (Result<T, HaierError>, u32) {
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
        let calls = run_with_retries(ctx, budget, || self.attempt(operation, url, body, decode));
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

    /// One attempt: a token, one request, and the reply opened and decoded. A 401 drops the
    /// token, so the next attempt takes a newer one.
    async fn attempt<T>(
        &self,
        operation: Operation,
        url: &Url,
        body: &[u8],
        decode: &impl Fn(Value) -> Result<T, String>,
    ) -> Result<T, HaierError> {
        let system = operation.system();
        let endpoint = self.endpoint(system);
        let token = self.token(system).await?;
        let request = endpoint
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, token.header().clone())
            .body(body.to_vec());
        let reply = self.send(operation, request, endpoint.timeout, body).await?;
        let op = operation.as_str();
        match reply.status.as_u16() {
            200..=299 => {}
            401 => {
                endpoint.tokens.invalidate(token.generation());
                return Err(HaierError::Unauthorized {
                    system,
                    operation: op,
                });
            }
            status => return Err(self.status_error(system, op, status, &reply)),
        }
        let decode_error = |message: String| HaierError::Decode {
            system,
            operation: op,
            message: format!("{message}; body: {}", self.redactor.body(&reply.body, BODY_LIMIT)),
        };
        match wire::open_envelope(&reply.body).map_err(decode_error)? {
            Envelope::Data(data) => decode(data).map_err(decode_error),
            Envelope::Throttled => Err(HaierError::RateLimited {
                system,
                operation: op,
                retry_after: reply.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            }),
            Envelope::Refused { code, message } => Err(HaierError::Business {
                system,
                operation: op,
                code,
                message: self.redactor.scrub(&message),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Jobs spawn their calls: every operation's future must be `Send`.
    #[allow(dead_code)]
    fn every_operation_can_be_spawned(client: &HaierClient, order: &Order, cancel: &CancelRequest) {
        assert_send(&client.query_products(None));
        assert_send(&client.query_prices(&[]));
        assert_send(&client.query_stock("P", "110101"));
        assert_send(&client.query_logistics("SO"));
        assert_send(&client.query_balance());
        assert_send(&client.push_order(order));
        assert_send(&client.cancel_order(cancel));
        assert_send(&client.login(System::Ylh));
        assert_send(&client.check_connection(System::Ylh));
    }

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
    fn code_lists_are_checked_before_sending() {
        let codes = |n: usize| (0..n).map(|i| format!("P{i}")).collect::<Vec<_>>();
        assert!(check_codes(Operation::Prices, &codes(1)).is_ok());
        assert!(check_codes(Operation::Prices, &codes(20)).is_ok());
        assert!(matches!(
            check_codes(Operation::Prices, &codes(21)),
            Err(HaierError::InvalidRequest {
                operation: "prices",
                ..
            })
        ));
        assert!(check_codes(Operation::Products, &[]).is_err());
        assert!(check_codes(Operation::Products, &[" ".to_owned()]).is_err());
    }

    #[test]
    fn base_paths_are_kept_when_joining() {
        let base = Url::parse("https://openplat.haier.net/gateway-test/").unwrap();
        assert_eq!(
            join(&base, "/yilihuo/x").unwrap().as_str(),
            "https://openplat.haier.net/gateway-test/yilihuo/x"
        );
        let ftp = Url::parse("ftp://example.com").unwrap();
        assert!(matches!(join(&ftp, "/x"), Err(HaierError::Config { .. })));
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
        let limited: Result<(), _> = Err(HaierError::RateLimited {
            system: System::Openplat,
            operation: "stock",
            retry_after: Duration::from_secs(1),
        });
        assert_eq!(outcome_of(&limited), Outcome::Neutral);
    }
}

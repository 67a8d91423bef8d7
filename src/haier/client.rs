//! The one Haier client a daemon shares: its handle, how it is built from both systems' config
//! (HTTP pools, limiters, breakers, token caches, the URLs from `paths.rs`), and the calls that
//! report on it or log in (`stats`, `login`, `check_connection`). The operations are in
//! `openplat.rs` and `ylh.rs`, the path each request takes in `call.rs`, wire shapes in `wire/`,
//! logins in `auth.rs`; nothing here touches the database.

use super::auth::{OpenplatAuth, TokenCache, YlhAuth};
use super::breaker::Breaker;
use super::error::HaierError;
use super::limiter::Limiter;
use super::paths;
use super::redact::Redactor;
use super::shared_quota::SharedQuota;
use super::stats::{ClientStats, Operation, Stats, SystemStats};
use super::types::System;
use crate::config::{HaierConfig, RateLimit, RetryPolicy, Secret, YlhConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// Sent with every request.
const USER_AGENT: &str = concat!("haier-sync/", env!("CARGO_PKG_VERSION"));
/// Connecting never takes longer than this, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The shared client for both Haier systems. Clones share one budget, one token per system,
/// one breaker per system and one set of counters.
#[derive(Clone)]
pub struct HaierClient {
    pub(super) inner: Arc<Inner>,
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
    pub(super) system: System,
    pub(super) http: reqwest::Client,
    pub(super) timeout: Duration,
    pub(super) rate: RateLimit,
    pub(super) limiter: Limiter,
    pub(super) breaker: Breaker,
    pub(super) retry: RetryPolicy,
    pub(super) tokens: TokenCache,
}

/// Openplat's request values and URLs.
pub(super) struct OpenplatParams {
    pub(super) customer_code: String,
    pub(super) send_to_code: String,
    pub(super) supplier_code: String,
    pub(super) password: Secret,
    pub(super) seller_password: Secret,
    pub(super) customer_password: Secret,
    pub(super) products_url: Url,
    pub(super) prices_url: Url,
    pub(super) stock_url: Url,
    pub(super) logistics_url: Url,
    pub(super) balance_url: Url,
}

/// YLH's request values and URLs.
pub(super) struct YlhParams {
    pub(super) source_system: String,
    pub(super) push_url: Url,
    pub(super) cancel_url: Url,
    pub(super) reschedule_url: Url,
    pub(super) photos_url: Url,
    pub(super) express_url: Url,
}

pub(super) struct Inner {
    pub(super) openplat: Endpoint,
    pub(super) ylh: Endpoint,
    pub(super) openplat_auth: OpenplatAuth,
    pub(super) ylh_auth: YlhAuth,
    pub(super) op: OpenplatParams,
    pub(super) ylh_params: YlhParams,
    pub(super) stats: Stats,
    pub(super) redactor: Redactor,
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
    shared: Option<Arc<dyn SharedQuota>>,
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
    let limiter = Limiter::new(system, rate)
        .ok_or_else(|| {
            config_error(format!(
                "{system} rate_limit needs per_second and burst of at least 1"
            ))
        })?
        .with_shared(shared);
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

impl HaierClient {
    /// Builds the client from both systems' config, paced by this process's own limiter only.
    /// Nothing is sent until the first call.
    pub fn new(openplat: &HaierConfig, ylh: &YlhConfig) -> Result<Self, HaierError> {
        Self::build(openplat, ylh, None)
    }

    /// [`HaierClient::new`], with every request also drawing from `quota`, the budget shared with
    /// the other processes that call Haier for the same account (see `crate::quota`).
    pub fn with_shared_quota(
        openplat: &HaierConfig,
        ylh: &YlhConfig,
        quota: Arc<dyn SharedQuota>,
    ) -> Result<Self, HaierError> {
        Self::build(openplat, ylh, Some(quota))
    }

    fn build(
        openplat: &HaierConfig,
        ylh: &YlhConfig,
        shared: Option<Arc<dyn SharedQuota>>,
    ) -> Result<Self, HaierError> {
        let base = &openplat.base_url;
        let op = OpenplatParams {
            customer_code: openplat.customer_code.clone(),
            send_to_code: openplat.send_to_code.clone(),
            supplier_code: openplat.supplier_code.clone(),
            password: openplat.password.clone(),
            seller_password: openplat.seller_password.clone(),
            customer_password: openplat.customer_password.clone(),
            products_url: join(base, paths::PRODUCTS_PATH)?,
            prices_url: join(base, paths::PRICES_PATH)?,
            stock_url: join(base, paths::STOCK_PATH)?,
            logistics_url: join(base, paths::LOGISTICS_PATH)?,
            balance_url: join(base, paths::BALANCE_PATH)?,
        };
        require_http(&openplat.token_url)?;
        let suffix = &ylh.path_suffix;
        let ylh_params = YlhParams {
            source_system: ylh.source_system.clone(),
            push_url: join(&ylh.base_url, &paths::push_path(suffix))?,
            cancel_url: join(&ylh.base_url, &paths::cancel_path(suffix))?,
            reschedule_url: join(&ylh.base_url, &paths::reschedule_path(suffix))?,
            photos_url: join(&ylh.base_url, &paths::delivery_photos_path(suffix))?,
            express_url: join(&ylh.base_url, &paths::express_numbers_path(suffix))?,
        };
        let ylh_token_url = join(&ylh.base_url, &paths::ylh_token_path(suffix))?;
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
                shared.clone(),
            )?,
            ylh: build_endpoint(
                System::Ylh,
                ylh.timeout_ms,
                ylh.rate_limit,
                ylh.retry,
                ylh.breaker,
                shared,
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

    /// The request latency histograms `/metrics` serves (shared with the client: they go on
    /// filling).
    pub fn latency_family(&self) -> crate::metrics::LatencyFamily {
        self.inner.stats.latency_family()
    }

    /// The circuit breaker state of one system.
    #[cfg(any(test, feature = "test-support"))]
    pub fn breaker_state(&self, system: System) -> super::breaker::BreakerState {
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
    /// whose read calls all need an order Haier has taken, the login alone.
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
                .map(|()| "token only (YLH's read calls need a taken order)".to_owned()),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haier::{CancelRequest, Order};

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
        assert_send(&client.reschedule("SO", 0, 0));
        assert_send(&client.delivery_photos("SO"));
        assert_send(&client.express_and_serials(&[]));
        assert_send(&client.login(System::Ylh));
        assert_send(&client.check_connection(System::Ylh));
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
}

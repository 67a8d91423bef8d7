//! The validated configuration every other module reads, but for the jobs (`jobs.rs`). Built from
//! `jobs.toml` by `load.rs` and `resolve.rs`.

use super::{JobSpec, Secret};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use url::Url;

/// The whole, validated `jobs.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    pub database: DatabaseConfig,
    pub haier: HaierConfig,
    pub ylh: YlhConfig,
    pub callback: CallbackConfig,
    pub log: LogConfig,
    pub defaults: DefaultsConfig,
    pub daemon: DaemonConfig,
    pub retention: RetentionConfig,
    /// `[shop]`: where order events are POSTed; `None` when the section is absent (the events
    /// still accumulate in `haier_shop_events`, undelivered).
    pub shop: Option<ShopConfig>,
    /// `[admin]`: the status page; `None` when the section is absent (no page is served).
    pub admin: Option<AdminConfig>,
    /// Jobs by name, in name order.
    pub jobs: BTreeMap<String, JobSpec>,
}

/// Which database the URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path (or `:memory:`) for SQLite.
    Sqlite(String),
    /// A `postgres://` or `postgresql://` URL, kept whole for libpq. Its password is never printed.
    Postgres(Secret),
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    /// Pool size (default 8 on PostgreSQL, 4 on SQLite).
    pub max_connections: u32,
    /// How long a statement waits for the database before it fails: for a lock another SQLite
    /// connection holds, or for a PostgreSQL server that does not answer (default
    /// [`DatabaseConfig::default_wait_ms`]).
    pub wait_ms: u64,
}

impl DatabaseConfig {
    /// `wait_ms` unless set: 10 s on SQLite (its busy timeout), 30 s on PostgreSQL.
    pub fn default_wait_ms(url: &DatabaseUrl) -> u64 {
        match url {
            DatabaseUrl::Sqlite(_) => 10_000,
            DatabaseUrl::Postgres(_) => 30_000,
        }
    }
}

/// A request quota for one Haier system, enforced by the shared limiter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// How often and how patiently a failed call is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts per call, the first included. 429s do not use one up.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with full jitter.
    pub backoff_base_ms: u64,
    /// Upper bound for one backoff.
    pub backoff_cap_ms: u64,
}

/// When the circuit breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakerPolicy {
    /// Consecutive failed calls (after their retries) that open the breaker.
    pub failure_threshold: u32,
    /// How long calls fail fast before one probe call is let through.
    pub cool_down_ms: u64,
}

/// `[haier]`: the openplat gateway (products, prices, stock, logistics, balance).
#[derive(Debug, Clone)]
pub struct HaierConfig {
    /// Root of the business paths, e.g. `https://openplat-test.haier.net`.
    pub base_url: Url,
    /// The token endpoint, e.g. `https://openplat-test.haier.net/oauth2/auth`.
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    /// Sold-to code (`customerCode` / `salesCode` / `sellerCode`).
    pub customer_code: String,
    /// Ship-to code (`sendToCode` / `senderCode`).
    pub send_to_code: String,
    pub supplier_code: String,
    /// `passWord` of the product and price calls.
    pub password: Secret,
    /// `sellerPassword` of the stock and logistics calls.
    pub seller_password: Secret,
    /// `customerPassword` of the balance call.
    pub customer_password: Secret,
    pub timeout_ms: u64,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
}

/// `[ylh]`: the 易理货 order cloud (order push and cancel).
#[derive(Debug, Clone)]
pub struct YlhConfig {
    /// Host root, e.g. `http://dev.ylhtest.com`.
    pub base_url: Url,
    /// `-dev`, `-pre` or empty, appended to each service segment of the path.
    pub path_suffix: String,
    pub client_id: String,
    pub client_password: Secret,
    pub username: String,
    pub password: Secret,
    pub source_system: String,
    pub shop_name: String,
    pub seller_code: String,
    pub timeout_ms: u64,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
}

/// `[callback]`: the receiver for Haier's signed confirm, cancel and out-of-stock notices.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    pub listen: SocketAddr,
    pub app_key: String,
    pub secret: Secret,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A signed callback whose `TimeStamp` is further than this from now is logged as a
    /// warning (and applied all the same: a callback is never refused for its `TimeStamp`).
    pub clock_skew_warn_secs: i64,
    /// Rejected unsigned callbacks stored per source address and minute, once the burst is
    /// spent; beyond it they are answered 429 and only counted.
    pub rejected_per_minute: u32,
    /// Rejected unsigned callbacks one source address may have stored at once.
    pub rejected_burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `haier_sync=debug,info`, …
    pub level: String,
    /// When set, daily rolling files are written here as well as to stdout.
    pub directory: Option<PathBuf>,
    pub format: LogFormat,
}

/// `[defaults]`: values jobs inherit.
#[derive(Debug, Clone)]
pub struct DefaultsConfig {
    pub timezone: Tz,
    pub county_codes: Vec<String>,
}

/// `[daemon]`: how `haier-sync run` behaves as a service.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// How long running jobs may go on after SIGTERM before they are cancelled.
    pub shutdown_grace_ms: u64,
    /// Reload when `jobs.toml` changes on disk (SIGHUP always reloads).
    pub watch_config: bool,
    /// How often the daemon records that it is alive.
    pub heartbeat_ms: u64,
}

/// `[retention]`: how many days of history to keep; `haier-sync prune` and the daemon's daily
/// prune delete what is older. Products, prices and price changes are never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionConfig {
    /// Sync-log rows that ended `success` or `skipped`.
    pub successful_runs_days: u32,
    /// Sync-log rows that ended `failed`, `partial` or `interrupted`.
    pub failed_runs_days: u32,
    /// Haier's callbacks (`haier_order_events`), by the time they came.
    pub callback_events_days: u32,
    /// Outbox orders in a final status (`refused`, `cancelled`, `returned`, `dead`), by their last
    /// change, with their lines, parcels, logistics and callbacks. `None` (the default): kept.
    pub finished_orders_days: Option<u32>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            successful_runs_days: 30,
            failed_runs_days: 180,
            callback_events_days: 365,
            finished_orders_days: None,
        }
    }
}

/// `[shop]`: the shop's webhook, which receives every order event (`haier_shop_events`) as a
/// signed JSON POST, at least once and in order per order.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    pub webhook_url: Url,
    /// The HMAC-SHA256 key of the `Haier-Sync-Signature` header.
    pub secret: Secret,
    /// Deliveries of one event before it is marked `failed`.
    pub max_attempts: u32,
    /// Per POST.
    pub timeout_ms: u64,
    /// POSTs per second at most: the webhook's own limiter (never Haier's quota).
    pub per_second: u32,
    /// Wait after the first failed delivery; doubles each time, up to `backoff_cap_ms`.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    /// How often the delivery poller looks for due events when it found none.
    pub poll_interval_ms: u64,
    /// Events claimed per poll (at most one per order).
    pub batch_size: u32,
    /// How long a claim holds an event: a daemon killed mid-delivery leaves it to another after this.
    pub lease_ms: u64,
}

/// `[admin]`: the status page the daemon serves (`crate::admin`), never on the callback port.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where the page is served (default `127.0.0.1:18702`).
    pub listen: SocketAddr,
    /// `token`/`token_file`: known by the name [`AdminConfig::DEFAULT_TOKEN_NAME`].
    pub token: Option<Secret>,
    /// `[admin.tokens]`: more tokens, each read from its file, by name (`alice`, `ops`).
    pub tokens: BTreeMap<String, Secret>,
    /// Whether the page may change state (pause, resume, trigger, retry); only with a token.
    pub allow_actions: bool,
}

impl AdminConfig {
    /// The default `listen`.
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:18702";
    /// The name of the token of `token`/`token_file`.
    pub const DEFAULT_TOKEN_NAME: &'static str = "admin";

    /// Every token a request may carry, with its name. With none, the page is open to anyone
    /// who reaches it (and read-only).
    pub fn credentials(&self) -> Vec<(String, Secret)> {
        self.token
            .iter()
            .map(|token| (Self::DEFAULT_TOKEN_NAME.to_owned(), token.clone()))
            .chain(
                self.tokens
                    .iter()
                    .map(|(name, token)| (name.clone(), token.clone())),
            )
            .collect()
    }
}

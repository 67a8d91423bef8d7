//! The validated configuration every other module reads. Built from `jobs.toml` by `load.rs`.

use super::{Schedule, Secret};
use chrono_tz::Tz;
use serde::Serialize;
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
    /// Jobs by name, in name order.
    pub jobs: BTreeMap<String, JobConfig>,
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
    /// How far a callback's `TimeStamp` may be from now.
    pub max_clock_skew_secs: i64,
    /// Rejected unsigned callbacks stored per source address and minute, once the burst is
    /// spent; beyond it they are answered 429 and only counted.
    pub rejected_per_minute: u32,
    /// Rejected unsigned callbacks one source address may have stored at once.
    pub rejected_burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Products,
    Prices,
    Stock,
    Logistics,
    OrderOutbox,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::Products,
        JobKind::Prices,
        JobKind::Stock,
        JobKind::Logistics,
        JobKind::OrderOutbox,
    ];

    /// The name used in `jobs.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Products => "products",
            JobKind::Prices => "prices",
            JobKind::Stock => "stock",
            JobKind::Logistics => "logistics",
            JobKind::OrderOutbox => "order_outbox",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The `sync_type` this kind writes to `haier_sync_logs`.
    pub fn sync_type(self) -> crate::runs::SyncType {
        use crate::runs::SyncType;
        match self {
            JobKind::Products => SyncType::Products,
            JobKind::Prices => SyncType::Prices,
            JobKind::Stock => SyncType::Stock,
            JobKind::Logistics => SyncType::Logistics,
            JobKind::OrderOutbox => SyncType::Order,
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a tick that comes while the job's previous run still goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Write a `skipped` log row and drop the tick.
    Skip,
    /// Run once more as soon as the current run ends (at most one waiting run).
    Queue,
}

/// What to do at start when a fire time was missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    Skip,
    Once,
}

/// The county a stock job queries when neither the job nor `[defaults]` names one (the seed's
/// default: Beijing, Dongcheng).
pub const DEFAULT_COUNTY_CODE: &str = "110101";
/// order_outbox defaults; `lease_ms` outlasts the longest push the client makes with its default
/// timeout and retries.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;
pub const DEFAULT_BATCH_SIZE: u32 = 50;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
pub const DEFAULT_LEASE_MS: u64 = 120_000;

/// One `[jobs.<name>]` table.
#[derive(Debug, Clone)]
pub struct JobConfig {
    pub name: String,
    pub kind: JobKind,
    /// Required for the sync kinds; the order poller runs on `poll_interval_ms` instead.
    pub schedule: Option<Schedule>,
    pub timezone: Tz,
    pub enabled: bool,
    pub timeout_ms: Option<u64>,
    pub overlap: Overlap,
    pub jitter_ms: u64,
    pub catch_up: CatchUp,
    /// products/prices/stock: only these codes (empty: every listed product).
    pub product_codes: Vec<String>,
    /// stock: the counties to query; already resolved from the job, `[defaults]`, then `110101`.
    pub county_codes: Vec<String>,
    /// Requests in flight at once for this job (default: half the openplat `per_second`, at least
    /// twice its burst and 8).
    pub concurrency: Option<usize>,
    /// order_outbox: how often to look for due rows when nothing wakes the poller.
    pub poll_interval_ms: u64,
    /// order_outbox: rows claimed per poll.
    pub batch_size: u32,
    /// order_outbox: push attempts before a row goes `dead`.
    pub max_attempts: u32,
    /// order_outbox: how long a claimed row stays leased to this instance.
    pub lease_ms: u64,
}

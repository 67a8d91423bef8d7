//! The raw shape of `jobs.toml`: every key optional, unknown keys refused, each value in the type
//! it is written in. Filling in defaults and checking values is `resolve.rs`'s (and `jobs.rs`'s);
//! reading the file and placing errors is `load.rs`'s.

use super::{CatchUp, JobKind, LogFormat, Overlap, Secret};
use serde::de::{self, Deserializer, IntoDeserializer as _, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A string that also accepts a number or boolean, since environment overrides such as
/// `HAIER_SYNC_HAIER__CUSTOMER_CODE=8800633175` arrive as numbers.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

fn lenient_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    lenient_string(d).map(|v| v.map(Secret::new))
}

/// A word from a fixed list (`overlap = "queue"`), read like [`lenient_string`] so that a number
/// is refused as an unknown word rather than as a wrong type: the error names the words allowed.
fn lenient_enum<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match lenient_string(d)? {
        Some(text) => {
            let text: de::value::StringDeserializer<D::Error> = text.into_deserializer();
            T::deserialize(text).map(Some)
        }
        None => Ok(None),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) database: Option<RawDatabase>,
    pub(super) haier: Option<RawHaier>,
    pub(super) ylh: Option<RawYlh>,
    pub(super) callback: Option<RawCallback>,
    pub(super) log: Option<RawLog>,
    pub(super) defaults: Option<RawDefaults>,
    pub(super) daemon: Option<RawDaemon>,
    pub(super) retention: Option<RawRetention>,
    pub(super) shop: Option<RawShop>,
    pub(super) admin: Option<RawAdmin>,
    pub(super) jobs: Option<BTreeMap<String, RawJob>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) url: Option<String>,
    pub(super) max_connections: Option<u32>,
    pub(super) wait_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    pub(super) per_second: Option<u32>,
    pub(super) burst: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) max_attempts: Option<u32>,
    pub(super) backoff_base_ms: Option<u64>,
    pub(super) backoff_cap_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub(super) failure_threshold: Option<u32>,
    pub(super) cool_down_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHaier {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) environment: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) base_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) token_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) client_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) client_secret: Option<Secret>,
    pub(super) client_secret_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) customer_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) send_to_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) supplier_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) password: Option<Secret>,
    pub(super) password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) seller_password: Option<Secret>,
    pub(super) seller_password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) customer_password: Option<Secret>,
    pub(super) customer_password_file: Option<PathBuf>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) rate_limit: Option<RawRateLimit>,
    pub(super) retry: Option<RawRetry>,
    pub(super) breaker: Option<RawBreaker>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawYlh {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) environment: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) base_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) path_suffix: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) client_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) client_password: Option<Secret>,
    pub(super) client_password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) username: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) password: Option<Secret>,
    pub(super) password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) source_system: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) shop_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) seller_code: Option<String>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) rate_limit: Option<RawRateLimit>,
    pub(super) retry: Option<RawRetry>,
    pub(super) breaker: Option<RawBreaker>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCallback {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) listen: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) app_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) secret: Option<Secret>,
    pub(super) secret_file: Option<PathBuf>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) clock_skew_warn_secs: Option<i64>,
    /// The key `clock_skew_warn_secs` replaced: read only to refuse it with the reason.
    pub(super) max_clock_skew_secs: Option<serde::de::IgnoredAny>,
    pub(super) rejected_per_minute: Option<u32>,
    pub(super) rejected_burst: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) level: Option<String>,
    pub(super) directory: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_enum")]
    pub(super) format: Option<LogFormat>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) timezone: Option<String>,
    pub(super) county_codes: Option<Vec<String>>,
}

/// `[shop]`: the webhook the order events are POSTed to.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShop {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) webhook_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) secret: Option<Secret>,
    pub(super) secret_file: Option<PathBuf>,
    pub(super) max_attempts: Option<u32>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) per_second: Option<u32>,
    pub(super) backoff_base_ms: Option<u64>,
    pub(super) backoff_cap_ms: Option<u64>,
    pub(super) poll_interval_ms: Option<u64>,
    pub(super) batch_size: Option<u32>,
    pub(super) lease_ms: Option<u64>,
}

/// `[admin]`: the status page.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) listen: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    pub(super) token: Option<Secret>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) allow_actions: Option<bool>,
    /// `[admin.tokens]`: more tokens, each by its name, as `name = "file"`.
    pub(super) tokens: Option<BTreeMap<String, PathBuf>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) shutdown_grace_ms: Option<u64>,
    pub(super) watch_config: Option<bool>,
    pub(super) heartbeat_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub(super) successful_runs_days: Option<u32>,
    pub(super) failed_runs_days: Option<u32>,
    pub(super) callback_events_days: Option<u32>,
    pub(super) finished_orders_days: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJob {
    #[serde(default, deserialize_with = "lenient_enum")]
    pub(super) kind: Option<JobKind>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) schedule: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) timezone: Option<String>,
    pub(super) enabled: Option<bool>,
    pub(super) timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_enum")]
    pub(super) overlap: Option<Overlap>,
    pub(super) jitter_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_enum")]
    pub(super) catch_up: Option<CatchUp>,
    pub(super) catch_up_within_ms: Option<u64>,
    pub(super) product_codes: Option<Vec<String>>,
    pub(super) county_codes: Option<Vec<String>>,
    pub(super) concurrency: Option<usize>,
    pub(super) poll_interval_ms: Option<u64>,
    pub(super) batch_size: Option<u32>,
    pub(super) max_attempts: Option<u32>,
    pub(super) lease_ms: Option<u64>,
    pub(super) confirm_within_ms: Option<u64>,
}

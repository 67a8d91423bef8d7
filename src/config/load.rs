//! Reads `jobs.toml` (file, then `HAIER_SYNC_<SECTION>__<KEY>` environment overrides, then
//! `<key>_file` secrets) and turns it into a validated [`Config`]. Every error names the file, the
//! key and, where the key is in the file, its line.

use super::model::*;
use super::{Schedule, Secret};
use chrono_tz::Tz;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// Where the config is looked for when neither `-c` nor `HAIER_SYNC_CONFIG` names it.
pub const DEFAULT_CONFIG_PATH: &str = "jobs.toml";

/// The prefix of environment overrides: `HAIER_SYNC_HAIER__CLIENT_SECRET` sets `haier.client_secret`.
const ENV_PREFIX: &str = "HAIER_SYNC_";

/// A problem with the configuration: which file, which key, which line, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path, e.g. `jobs.stock.schedule`.
    pub key: Option<String>,
    /// 1-based line in the file, when the key is written there.
    pub line: Option<usize>,
    /// Set when the value came from an environment variable rather than the file.
    pub env_var: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        if let Some(var) = &self.env_var {
            write!(f, " (from environment variable {var})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The config path: `-c/--config`, then `HAIER_SYNC_CONFIG`, then `./jobs.toml`.
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    match std::env::var_os("HAIER_SYNC_CONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

/// Loads and validates the config at `path`, with overrides from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, std::env::vars())
}

/// Loads and validates the config at `path`, with overrides from `vars` (name, value) instead of
/// the process environment: only `HAIER_SYNC_<SECTION>__<KEY>` names count.
pub fn load_with_env(
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let overrides: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: None,
        line: None,
        env_var: None,
        message: format!("cannot read the config file: {e}"),
    })?;
    let loader = Loader {
        path: path.to_path_buf(),
        text: text.clone(),
    };
    let document = toml_edit::ImDocument::parse(text.clone()).map_err(|e| loader.syntax_error(&e))?;
    let loader = LoaderWithDoc {
        base: loader,
        document,
        overrides: overrides.clone(),
    };

    let mut figment = Figment::new().merge(Toml::string(&text));
    for (name, value) in &overrides {
        let key = name[ENV_PREFIX.len()..].to_lowercase().replace("__", ".");
        let value: figment::value::Value = value
            .parse()
            .unwrap_or_else(|_| figment::value::Value::from(value.clone()));
        figment = figment.merge(Serialized::global(&key, value));
    }
    let raw: RawConfig = figment.extract().map_err(|e| loader.figment_error(e))?;
    loader.resolve(raw)
}

struct Loader {
    path: PathBuf,
    text: String,
}

impl Loader {
    fn line_of_offset(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    fn syntax_error(&self, error: &toml_edit::TomlError) -> ConfigError {
        let line = error.span().map(|span| self.line_of_offset(span.start));
        let key = line.and_then(|l| {
            let lines: Vec<&str> = self.text.lines().collect();
            let text = lines.get(l - 1)?.trim();
            if text.starts_with('[') {
                return Some(text.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
            }
            let key = text.split('=').next()?.trim();
            if key.is_empty() {
                return None;
            }
            // Qualify the key with the table it sits in.
            let table = lines[..l - 1]
                .iter()
                .rev()
                .map(|t| t.trim())
                .find(|t| t.starts_with('['));
            Some(match table {
                Some(t) => format!("{}.{key}", t.trim_matches(|c| c == '[' || c == ']').trim()),
                None => key.to_owned(),
            })
        });
        ConfigError {
            file: self.path.clone(),
            key,
            line,
            env_var: None,
            message: format!("invalid TOML: {}", error.message().trim()),
        }
    }
}

struct LoaderWithDoc {
    base: Loader,
    document: toml_edit::ImDocument<String>,
    overrides: Vec<(String, String)>,
}

impl LoaderWithDoc {
    /// The line where `path` (a dotted key) is written, or where its nearest written parent is.
    fn line_of(&self, path: &[&str]) -> Option<usize> {
        let mut table: &dyn toml_edit::TableLike = self.document.as_table();
        let mut best = None;
        for (i, segment) in path.iter().enumerate() {
            let Some((key, item)) = table.get_key_value(segment) else {
                break;
            };
            if let Some(span) = key.span().or_else(|| item.span()) {
                best = Some(self.base.line_of_offset(span.start));
            }
            if i + 1 == path.len() {
                break;
            }
            match item.as_table_like() {
                Some(inner) => table = inner,
                None => break,
            }
        }
        best
    }

    fn env_var_for(&self, path: &[&str]) -> Option<String> {
        let name = format!("{ENV_PREFIX}{}", path.join("__").to_uppercase());
        self.overrides.iter().any(|(n, _)| *n == name).then_some(name)
    }

    fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        let env_var = self.env_var_for(path);
        ConfigError {
            file: self.base.path.clone(),
            key: Some(path.join(".")),
            line: if env_var.is_some() {
                None
            } else {
                self.line_of(path)
            },
            env_var,
            message: message.into(),
        }
    }

    fn figment_error(&self, error: figment::Error) -> ConfigError {
        let mut path: Vec<String> = error.path.clone();
        let message = match &error.kind {
            figment::error::Kind::UnknownField(field, expected) => {
                if path.last() != Some(field) {
                    path.push(field.clone());
                }
                let expected: Vec<&str> = expected.to_vec();
                format!("unknown key `{field}`; expected one of: {}", expected.join(", "))
            }
            figment::error::Kind::MissingField(field) => {
                if path.last().map(String::as_str) != Some(field.as_ref()) {
                    path.push(field.to_string());
                }
                "this key is required".to_owned()
            }
            other => other.to_string(),
        };
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        if refs.is_empty() {
            return ConfigError {
                file: self.base.path.clone(),
                key: None,
                line: None,
                env_var: None,
                message,
            };
        }
        self.error(&refs, message)
    }

    fn resolve(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let database = self.resolve_database(raw.database.unwrap_or_default())?;
        let haier = self.resolve_haier(
            raw.haier
                .ok_or_else(|| self.error(&["haier"], "the [haier] section is required"))?,
        )?;
        let ylh = self.resolve_ylh(
            raw.ylh
                .ok_or_else(|| self.error(&["ylh"], "the [ylh] section is required"))?,
            &haier,
        )?;
        let callback = self.resolve_callback(raw.callback.unwrap_or_default())?;
        let log = self.resolve_log(raw.log.unwrap_or_default())?;
        let defaults = self.resolve_defaults(raw.defaults.unwrap_or_default())?;
        let daemon = self.resolve_daemon(raw.daemon.unwrap_or_default());
        let mut jobs = BTreeMap::new();
        for (name, job) in raw.jobs.unwrap_or_default() {
            let job = self.resolve_job(&name, job, &defaults)?;
            jobs.insert(name, job);
        }
        Ok(Config {
            path: self.base.path.clone(),
            database,
            haier,
            ylh,
            callback,
            log,
            defaults,
            daemon,
            jobs,
        })
    }

    fn resolve_database(&self, raw: RawDatabase) -> Result<DatabaseConfig, ConfigError> {
        let text = raw.url.unwrap_or_else(|| "sqlite://haier-sync.db".to_owned());
        let url = parse_database_url(&text).map_err(|m| self.error(&["database", "url"], m))?;
        let default_pool = match url {
            DatabaseUrl::Sqlite(_) => 4,
            DatabaseUrl::Postgres(_) => 8,
        };
        let max_connections = raw.max_connections.unwrap_or(default_pool);
        if max_connections == 0 {
            return Err(self.error(&["database", "max_connections"], "must be at least 1"));
        }
        let wait_ms = raw.wait_ms.unwrap_or(DatabaseConfig::default_wait_ms(&url));
        if !(MIN_DATABASE_WAIT_MS..=MAX_DATABASE_WAIT_MS).contains(&wait_ms) {
            return Err(self.error(
                &["database", "wait_ms"],
                format!("must be within {MIN_DATABASE_WAIT_MS} and {MAX_DATABASE_WAIT_MS} ms, not {wait_ms}"),
            ));
        }
        Ok(DatabaseConfig {
            url,
            max_connections,
            wait_ms,
        })
    }

    fn required<T>(&self, value: Option<T>, path: &[&str]) -> Result<T, ConfigError> {
        value.ok_or_else(|| self.error(path, "this key is required"))
    }

    fn required_text(&self, value: Option<String>, path: &[&str]) -> Result<String, ConfigError> {
        let value = self.required(value, path)?;
        if value.trim().is_empty() {
            return Err(self.error(path, "must not be empty"));
        }
        Ok(value)
    }

    /// A secret from `<key>` or from the file named by `<key>_file`.
    fn secret(
        &self,
        section: &str,
        key: &str,
        value: Option<Secret>,
        file: Option<PathBuf>,
    ) -> Result<Option<Secret>, ConfigError> {
        let file_key = format!("{key}_file");
        match (value, file) {
            (Some(_), Some(_)) => Err(self.error(
                &[section, &file_key],
                format!("set either `{key}` or `{file_key}`, not both"),
            )),
            (Some(value), None) => Ok(Some(value)),
            (None, None) => Ok(None),
            (None, Some(path)) => {
                let path = self.secret_path(&path);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.error(
                        &[section, &file_key],
                        format!("cannot read secret file {}: {e}", path.display()),
                    )
                })?;
                let text = text.trim_end_matches(['\n', '\r']).to_owned();
                if text.is_empty() {
                    return Err(self.error(
                        &[section, &file_key],
                        format!("secret file {} is empty", path.display()),
                    ));
                }
                Ok(Some(Secret::new(text)))
            }
        }
    }

    /// A relative secret path is taken from systemd's `$CREDENTIALS_DIRECTORY` when set, else
    /// from the config file's directory.
    fn secret_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            return PathBuf::from(dir).join(path);
        }
        self.base
            .path
            .parent()
            .map(|d| d.join(path))
            .unwrap_or_else(|| path.to_path_buf())
    }

    fn required_secret(
        &self,
        section: &str,
        key: &str,
        value: Option<Secret>,
        file: Option<PathBuf>,
    ) -> Result<Secret, ConfigError> {
        let secret = self.secret(section, key, value, file)?;
        match secret {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.error(&[section, key], "must not be empty")),
            None => Err(self.error(&[section, key], format!("this key is required (or `{key}_file`)"))),
        }
    }

    fn url(&self, text: &str, path: &[&str]) -> Result<Url, ConfigError> {
        let url = Url::parse(text).map_err(|e| self.error(path, format!("`{text}` is not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(self.error(path, format!("`{text}` must be an http:// or https:// URL")));
        }
        Ok(url)
    }

    fn rate_limit(&self, raw: Option<RawRateLimit>, section: &str) -> Result<RateLimit, ConfigError> {
        let raw = raw.unwrap_or_default();
        let per_second = raw.per_second.unwrap_or(50);
        if per_second == 0 {
            return Err(self.error(&[section, "rate_limit", "per_second"], "must be at least 1"));
        }
        let burst = raw.burst.unwrap_or(per_second.div_ceil(10).max(1));
        if burst == 0 {
            return Err(self.error(&[section, "rate_limit", "burst"], "must be at least 1"));
        }
        Ok(RateLimit { per_second, burst })
    }

    fn retry(&self, raw: Option<RawRetry>, section: &str) -> Result<RetryPolicy, ConfigError> {
        let raw = raw.unwrap_or_default();
        let policy = RetryPolicy {
            max_attempts: raw.max_attempts.unwrap_or(5),
            backoff_base_ms: raw.backoff_base_ms.unwrap_or(200),
            backoff_cap_ms: raw.backoff_cap_ms.unwrap_or(10_000),
        };
        if policy.max_attempts == 0 {
            return Err(self.error(&[section, "retry", "max_attempts"], "must be at least 1"));
        }
        if policy.backoff_cap_ms < policy.backoff_base_ms {
            return Err(self.error(
                &[section, "retry", "backoff_cap_ms"],
                "must not be below backoff_base_ms",
            ));
        }
        Ok(policy)
    }

    fn breaker(&self, raw: Option<RawBreaker>, section: &str) -> Result<BreakerPolicy, ConfigError> {
        let raw = raw.unwrap_or_default();
        let policy = BreakerPolicy {
            failure_threshold: raw.failure_threshold.unwrap_or(10),
            cool_down_ms: raw.cool_down_ms.unwrap_or(30_000),
        };
        if policy.failure_threshold == 0 {
            return Err(self.error(&[section, "breaker", "failure_threshold"], "must be at least 1"));
        }
        Ok(policy)
    }

    fn resolve_haier(&self, raw: RawHaier) -> Result<HaierConfig, ConfigError> {
        let s = "haier";
        let (base_url, token_url) = match (raw.environment.as_deref(), raw.base_url.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    &[s, "base_url"],
                    "set either `environment` or `base_url`, not both",
                ))
            }
            (None, None) => {
                return Err(self.error(
                    &[s, "environment"],
                    "set `environment` (test, stage, prod) or `base_url`",
                ))
            }
            (Some(env), None) => {
                let host = match env {
                    "test" => "https://openplat-test.haier.net",
                    "stage" => "https://openplat-bj-aliyun-stage.haier.net",
                    "prod" => "https://openplat-bj-aliyun.haier.net",
                    other => {
                        return Err(self.error(
                            &[s, "environment"],
                            format!("unknown environment `{other}`; expected test, stage or prod"),
                        ))
                    }
                };
                let base = self.url(host, &[s, "environment"])?;
                let token = match raw.token_url.as_deref() {
                    Some(t) => self.url(t, &[s, "token_url"])?,
                    None => self.url(&format!("{host}/oauth2/auth"), &[s, "environment"])?,
                };
                (base, token)
            }
            (None, Some(base)) => {
                let base_url = self.url(base, &[s, "base_url"])?;
                let token = match raw.token_url.as_deref() {
                    Some(t) => self.url(t, &[s, "token_url"])?,
                    None => base_url
                        .join("/oauth2/auth")
                        .map_err(|e| self.error(&[s, "base_url"], e.to_string()))?,
                };
                (base_url, token)
            }
        };
        let customer_code = self.required_text(raw.customer_code, &[s, "customer_code"])?;
        let password = self.required_secret(s, "password", raw.password, raw.password_file)?;
        let seller_password = self.secret(
            s,
            "seller_password",
            raw.seller_password,
            raw.seller_password_file,
        )?;
        let customer_password = self.secret(
            s,
            "customer_password",
            raw.customer_password,
            raw.customer_password_file,
        )?;
        let timeout_ms = raw.timeout_ms.unwrap_or(15_000);
        if timeout_ms == 0 {
            return Err(self.error(&[s, "timeout_ms"], "must be at least 1"));
        }
        Ok(HaierConfig {
            base_url,
            token_url,
            client_id: self.required_text(raw.client_id, &[s, "client_id"])?,
            client_secret: self.required_secret(
                s,
                "client_secret",
                raw.client_secret,
                raw.client_secret_file,
            )?,
            send_to_code: raw.send_to_code.unwrap_or_else(|| customer_code.clone()),
            customer_code,
            supplier_code: raw.supplier_code.unwrap_or_else(|| "1001".to_owned()),
            seller_password: seller_password.unwrap_or_else(|| password.clone()),
            customer_password: customer_password.unwrap_or_else(|| password.clone()),
            password,
            timeout_ms,
            rate_limit: self.rate_limit(raw.rate_limit, s)?,
            retry: self.retry(raw.retry, s)?,
            breaker: self.breaker(raw.breaker, s)?,
        })
    }

    fn resolve_ylh(&self, raw: RawYlh, haier: &HaierConfig) -> Result<YlhConfig, ConfigError> {
        let s = "ylh";
        let (base_url, path_suffix) = match (raw.environment.as_deref(), raw.base_url.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    &[s, "base_url"],
                    "set either `environment` or `base_url`, not both",
                ))
            }
            (None, None) => {
                return Err(self.error(
                    &[s, "environment"],
                    "set `environment` (dev, pre, prod) or `base_url`",
                ))
            }
            (Some(env), None) => {
                let (host, suffix) = match env {
                    "dev" => ("http://dev.ylhtest.com", "-dev"),
                    "pre" => ("http://pre.yilihuo.com", "-pre"),
                    "prod" => ("http://www.yilihuo.com", ""),
                    other => {
                        return Err(self.error(
                            &[s, "environment"],
                            format!("unknown environment `{other}`; expected dev, pre or prod"),
                        ))
                    }
                };
                if raw.path_suffix.is_some() {
                    return Err(self.error(
                        &[s, "path_suffix"],
                        "`path_suffix` goes with `base_url`; `environment` sets it",
                    ));
                }
                (self.url(host, &[s, "environment"])?, suffix.to_owned())
            }
            (None, Some(base)) => {
                let suffix = raw.path_suffix.unwrap_or_default();
                if !["", "-dev", "-pre"].contains(&suffix.as_str()) {
                    return Err(self.error(
                        &[s, "path_suffix"],
                        format!("unknown path suffix `{suffix}`; expected \"-dev\", \"-pre\" or \"\""),
                    ));
                }
                (self.url(base, &[s, "base_url"])?, suffix)
            }
        };
        let timeout_ms = raw.timeout_ms.unwrap_or(15_000);
        if timeout_ms == 0 {
            return Err(self.error(&[s, "timeout_ms"], "must be at least 1"));
        }
        Ok(YlhConfig {
            base_url,
            path_suffix,
            client_id: self.required_text(raw.client_id, &[s, "client_id"])?,
            client_password: self.required_secret(
                s,
                "client_password",
                raw.client_password,
                raw.client_password_file,
            )?,
            username: self.required_text(raw.username, &[s, "username"])?,
            password: self.required_secret(s, "password", raw.password, raw.password_file)?,
            source_system: self.required_text(raw.source_system, &[s, "source_system"])?,
            shop_name: self.required_text(raw.shop_name, &[s, "shop_name"])?,
            seller_code: raw.seller_code.unwrap_or_else(|| haier.customer_code.clone()),
            timeout_ms,
            rate_limit: self.rate_limit(raw.rate_limit, s)?,
            retry: self.retry(raw.retry, s)?,
            breaker: self.breaker(raw.breaker, s)?,
        })
    }

    fn resolve_callback(&self, raw: RawCallback) -> Result<CallbackConfig, ConfigError> {
        let s = "callback";
        let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:18701".to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            self.error(
                &[s, "listen"],
                format!("`{listen_text}` is not an address like 127.0.0.1:18701"),
            )
        })?;
        Ok(CallbackConfig {
            listen,
            app_key: self.required_text(raw.app_key, &[s, "app_key"])?,
            secret: self.required_secret(s, "secret", raw.secret, raw.secret_file)?,
            max_body_bytes: raw.max_body_bytes.unwrap_or(64 * 1024),
            max_clock_skew_secs: raw.max_clock_skew_secs.unwrap_or(600),
        })
    }

    fn resolve_log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
        let level = raw.level.unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            return Err(self.error(
                &["log", "level"],
                format!("`{level}` is not a log level or filter (try info, debug, haier_sync=debug)"),
            ));
        }
        let format = match raw.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(self.error(
                    &["log", "format"],
                    format!("unknown format `{other}`; expected text or json"),
                ))
            }
        };
        Ok(LogConfig {
            level,
            directory: raw.directory,
            format,
        })
    }

    fn timezone(&self, text: &str, path: &[&str]) -> Result<Tz, ConfigError> {
        text.parse::<Tz>().map_err(|_| {
            self.error(
                path,
                format!("unknown time zone `{text}` (use an IANA name like Asia/Shanghai)"),
            )
        })
    }

    fn county_codes(&self, codes: Vec<String>, path: &[&str]) -> Result<Vec<String>, ConfigError> {
        for code in &codes {
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(self.error(path, format!("`{code}` is not a 6-digit county code like 110101")));
            }
        }
        Ok(codes)
    }

    fn resolve_defaults(&self, raw: RawDefaults) -> Result<DefaultsConfig, ConfigError> {
        let timezone = self.timezone(
            raw.timezone.as_deref().unwrap_or("Asia/Shanghai"),
            &["defaults", "timezone"],
        )?;
        let county_codes = self.county_codes(
            raw.county_codes.unwrap_or_default(),
            &["defaults", "county_codes"],
        )?;
        Ok(DefaultsConfig {
            timezone,
            county_codes,
        })
    }

    fn resolve_daemon(&self, raw: RawDaemon) -> DaemonConfig {
        DaemonConfig {
            shutdown_grace_ms: raw.shutdown_grace_ms.unwrap_or(20_000),
            watch_config: raw.watch_config.unwrap_or(true),
            heartbeat_ms: raw.heartbeat_ms.unwrap_or(5_000).max(100),
        }
    }

    fn resolve_job(
        &self,
        name: &str,
        raw: RawJob,
        defaults: &DefaultsConfig,
    ) -> Result<JobConfig, ConfigError> {
        let path = |key: &'static str| -> Vec<&str> { vec!["jobs", name, key] };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(self.error(
                &["jobs", name],
                "a job name uses only letters, digits, `_` and `-`",
            ));
        }
        let kind_text = raw
            .kind
            .ok_or_else(|| self.error(&path("kind"), "this key is required"))?;
        let kind = JobKind::parse(&kind_text).ok_or_else(|| {
            let known: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
            self.error(
                &path("kind"),
                format!(
                    "unknown kind `{kind_text}`; expected one of: {}",
                    known.join(", ")
                ),
            )
        })?;
        let schedule = match (&raw.schedule, kind) {
            (Some(_), JobKind::OrderOutbox) => {
                return Err(self.error(
                    &path("schedule"),
                    "the order_outbox poller runs on `poll_interval_ms`, not a schedule",
                ))
            }
            (None, JobKind::OrderOutbox) => None,
            (None, _) => return Err(self.error(&path("schedule"), "this key is required")),
            (Some(text), _) => Some(Schedule::parse(text).map_err(|m| self.error(&path("schedule"), m))?),
        };
        let timezone = match raw.timezone.as_deref() {
            Some(text) => self.timezone(text, &path("timezone"))?,
            None => defaults.timezone,
        };
        let overlap = match raw.overlap.as_deref().unwrap_or("skip") {
            "skip" => Overlap::Skip,
            "queue" => Overlap::Queue,
            other => {
                return Err(self.error(
                    &path("overlap"),
                    format!("unknown overlap `{other}`; expected skip or queue"),
                ))
            }
        };
        let catch_up = match raw.catch_up.as_deref().unwrap_or("once") {
            "skip" => CatchUp::Skip,
            "once" => CatchUp::Once,
            other => {
                return Err(self.error(
                    &path("catch_up"),
                    format!("unknown catch_up `{other}`; expected skip or once"),
                ))
            }
        };
        let county_codes = match raw.county_codes {
            Some(codes) if !codes.is_empty() => self.county_codes(codes, &path("county_codes"))?,
            _ if !defaults.county_codes.is_empty() => defaults.county_codes.clone(),
            _ => vec![DEFAULT_COUNTY_CODE.to_owned()],
        };
        if raw.timeout_ms == Some(0) {
            return Err(self.error(
                &path("timeout_ms"),
                "must be at least 1 (leave it out for no timeout)",
            ));
        }
        if raw.concurrency == Some(0) {
            return Err(self.error(&path("concurrency"), "must be at least 1"));
        }
        let poll_interval_ms = raw.poll_interval_ms.unwrap_or(DEFAULT_POLL_INTERVAL_MS);
        let batch_size = raw.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let lease_ms = raw.lease_ms.unwrap_or(DEFAULT_LEASE_MS);
        for (key, value) in [
            ("poll_interval_ms", poll_interval_ms),
            ("batch_size", u64::from(batch_size)),
            ("max_attempts", u64::from(max_attempts)),
            ("lease_ms", lease_ms),
        ] {
            if value == 0 {
                return Err(self.error(&path(key), "must be at least 1"));
            }
        }
        Ok(JobConfig {
            name: name.to_owned(),
            kind,
            schedule,
            timezone,
            enabled: raw.enabled.unwrap_or(true),
            timeout_ms: raw.timeout_ms,
            overlap,
            jitter_ms: raw.jitter_ms.unwrap_or(0),
            catch_up,
            product_codes: raw.product_codes.unwrap_or_default(),
            county_codes,
            concurrency: raw.concurrency,
            poll_interval_ms,
            batch_size,
            max_attempts,
            lease_ms,
        })
    }
}

/// `sqlite://path`, `sqlite:path`, a bare path, or `postgres://…` / `postgresql://…`.
pub(crate) fn parse_database_url(text: &str) -> Result<DatabaseUrl, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the database URL is empty".into());
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(DatabaseUrl::Postgres(Secret::new(text)));
    }
    if let Some(path) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err("`sqlite://` needs a file path, e.g. sqlite://haier-sync.db".into());
        }
        return Ok(DatabaseUrl::Sqlite(path.to_owned()));
    }
    if let Some((scheme, _)) = text.split_once("://") {
        return Err(format!(
            "unknown database scheme `{scheme}://`; expected sqlite:// or postgres://"
        ));
    }
    Ok(DatabaseUrl::Sqlite(text.to_owned()))
}

// ---- the raw shape of the file: every key optional, unknown keys refused ----

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: Option<RawDatabase>,
    haier: Option<RawHaier>,
    ylh: Option<RawYlh>,
    callback: Option<RawCallback>,
    log: Option<RawLog>,
    defaults: Option<RawDefaults>,
    daemon: Option<RawDaemon>,
    jobs: Option<BTreeMap<String, RawJob>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    #[serde(default, deserialize_with = "lenient_string")]
    url: Option<String>,
    max_connections: Option<u32>,
    wait_ms: Option<u64>,
}

/// The shortest `[database] wait_ms`: a busy SQLite database must get a moment.
const MIN_DATABASE_WAIT_MS: u64 = 100;
/// The longest `[database] wait_ms` (10 minutes): past it, a run that waits looks hung.
const MAX_DATABASE_WAIT_MS: u64 = 600_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_second: Option<u32>,
    burst: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    backoff_base_ms: Option<u64>,
    backoff_cap_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    failure_threshold: Option<u32>,
    cool_down_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHaier {
    #[serde(default, deserialize_with = "lenient_string")]
    environment: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    base_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    token_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    client_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    client_secret: Option<Secret>,
    client_secret_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_string")]
    customer_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    send_to_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    supplier_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_secret")]
    seller_password: Option<Secret>,
    seller_password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_secret")]
    customer_password: Option<Secret>,
    customer_password_file: Option<PathBuf>,
    timeout_ms: Option<u64>,
    rate_limit: Option<RawRateLimit>,
    retry: Option<RawRetry>,
    breaker: Option<RawBreaker>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawYlh {
    #[serde(default, deserialize_with = "lenient_string")]
    environment: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    base_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    path_suffix: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    client_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    client_password: Option<Secret>,
    client_password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_string")]
    source_system: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    shop_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    seller_code: Option<String>,
    timeout_ms: Option<u64>,
    rate_limit: Option<RawRateLimit>,
    retry: Option<RawRetry>,
    breaker: Option<RawBreaker>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCallback {
    #[serde(default, deserialize_with = "lenient_string")]
    listen: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    app_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_secret")]
    secret: Option<Secret>,
    secret_file: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    max_clock_skew_secs: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default, deserialize_with = "lenient_string")]
    level: Option<String>,
    directory: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_string")]
    format: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default, deserialize_with = "lenient_string")]
    timezone: Option<String>,
    county_codes: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    shutdown_grace_ms: Option<u64>,
    watch_config: Option<bool>,
    heartbeat_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJob {
    #[serde(default, deserialize_with = "lenient_string")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    schedule: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    timezone: Option<String>,
    enabled: Option<bool>,
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_string")]
    overlap: Option<String>,
    jitter_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_string")]
    catch_up: Option<String>,
    product_codes: Option<Vec<String>>,
    county_codes: Option<Vec<String>>,
    concurrency: Option<usize>,
    poll_interval_ms: Option<u64>,
    batch_size: Option<u32>,
    max_attempts: Option<u32>,
    lease_ms: Option<u64>,
}

//! Resolution of the raw shape into a [`Config`]: defaults filled in, every value checked against
//! its stated range or form, secrets read from their files. The sections here are the database,
//! the callback receiver, logging, `[defaults]` and `[daemon]`, plus the checks every section
//! uses; the two Haier systems are `clients.rs`'s, the jobs `jobs.rs`'s.

use super::limits::{self, Limit};
use super::load::{read_secret_file, ConfigError, LoaderWithDoc};
use super::raw::*;
use super::*;
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// Why `[callback] max_clock_skew_secs` is refused, and what replaces it.
pub(super) const REPLACED_CLOCK_SKEW_KEY: &str =
    "this key was replaced by clock_skew_warn_secs: a correctly signed callback is no longer refused \
     for its TimeStamp (Haier retries a callback with the TimeStamp of its first try, and refusing a \
     late confirm would leave a paid order unconfirmed), so the setting now only says beyond how many \
     seconds a warning is logged; rename it to clock_skew_warn_secs";

impl LoaderWithDoc {
    pub(super) fn resolve(&self, raw: RawConfig) -> Result<Config, ConfigError> {
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
        let daemon = self.resolve_daemon(raw.daemon.unwrap_or_default())?;
        let retention = self.resolve_retention(raw.retention.unwrap_or_default())?;
        let shop = raw.shop.map(|shop| self.resolve_shop(shop)).transpose()?;
        let admin = raw
            .admin
            .map(|admin| self.resolve_admin(admin, &callback))
            .transpose()?;
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
            retention,
            shop,
            admin,
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
        self.check(
            &["database", "max_connections"],
            max_connections,
            limits::MAX_CONNECTIONS,
        )?;
        let wait_ms = raw.wait_ms.unwrap_or(DatabaseConfig::default_wait_ms(&url));
        self.check(&["database", "wait_ms"], wait_ms, limits::DATABASE_WAIT_MS)?;
        Ok(DatabaseConfig {
            url,
            max_connections,
            wait_ms,
        })
    }

    /// Refuses a number outside its stated [`Limit`].
    pub(super) fn check(
        &self,
        path: &[&str],
        value: impl Into<i128>,
        limit: Limit,
    ) -> Result<(), ConfigError> {
        let value = value.into();
        if limit.contains(value) {
            return Ok(());
        }
        Err(self.error(path, limit.message(value)))
    }

    pub(super) fn required<T>(&self, value: Option<T>, path: &[&str]) -> Result<T, ConfigError> {
        value.ok_or_else(|| self.error(path, "this key is required"))
    }

    pub(super) fn required_text(&self, value: Option<String>, path: &[&str]) -> Result<String, ConfigError> {
        let value = self.required(value, path)?;
        if value.trim().is_empty() {
            return Err(self.error(path, "must not be empty"));
        }
        Ok(value)
    }

    /// A key that may be left out (for its default) but, when given, not left blank.
    pub(super) fn optional_text(
        &self,
        value: Option<String>,
        path: &[&str],
    ) -> Result<Option<String>, ConfigError> {
        match value {
            Some(text) if text.trim().is_empty() => {
                Err(self.error(path, "must not be empty (leave the key out for its default)"))
            }
            other => Ok(other),
        }
    }

    /// A secret from `<key>` or from the file named by `<key>_file`.
    pub(super) fn secret(
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
            (Some(value), None) if value.expose().trim().is_empty() => {
                Err(self.error(&[section, key], "must not be empty or only whitespace"))
            }
            (Some(value), None) => Ok(Some(value)),
            (None, None) => Ok(None),
            (None, Some(path)) if path.as_os_str().is_empty() => Err(self.error(
                &[section, &file_key],
                "must not be empty: name the file that holds the secret",
            )),
            (None, Some(path)) => {
                let path = self.secret_path(&path);
                let text = read_secret_file(&path).map_err(|m| self.error(&[section, &file_key], m))?;
                // Files usually end with a newline; the secret is what comes before it.
                let text = text.trim_end_matches(['\n', '\r']).to_owned();
                if text.trim().is_empty() {
                    return Err(self.error(
                        &[section, &file_key],
                        format!("secret file {} is empty or holds only whitespace", path.display()),
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

    pub(super) fn required_secret(
        &self,
        section: &str,
        key: &str,
        value: Option<Secret>,
        file: Option<PathBuf>,
    ) -> Result<Secret, ConfigError> {
        let secret = self.secret(section, key, value, file)?;
        match secret {
            Some(s) => Ok(s),
            None => Err(self.error(&[section, key], format!("this key is required (or `{key}_file`)"))),
        }
    }

    pub(super) fn url(&self, text: &str, path: &[&str]) -> Result<Url, ConfigError> {
        let url = Url::parse(text).map_err(|e| self.error(path, format!("`{text}` is not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(self.error(path, format!("`{text}` must be an http:// or https:// URL")));
        }
        Ok(url)
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
        let max_body_bytes = raw.max_body_bytes.unwrap_or(64 * 1024);
        self.check(
            &[s, "max_body_bytes"],
            u64::try_from(max_body_bytes).unwrap_or(u64::MAX),
            limits::CALLBACK_MAX_BODY_BYTES,
        )?;
        if raw.max_clock_skew_secs.is_some() {
            return Err(self.error(&[s, "max_clock_skew_secs"], REPLACED_CLOCK_SKEW_KEY));
        }
        let clock_skew_warn_secs = raw.clock_skew_warn_secs.unwrap_or(600);
        self.check(
            &[s, "clock_skew_warn_secs"],
            clock_skew_warn_secs,
            limits::CALLBACK_CLOCK_SKEW_WARN_SECS,
        )?;
        let rejected_per_minute = raw.rejected_per_minute.unwrap_or(6);
        self.check(
            &[s, "rejected_per_minute"],
            rejected_per_minute,
            limits::CALLBACK_REJECTED_PER_MINUTE,
        )?;
        let rejected_burst = raw.rejected_burst.unwrap_or(20);
        self.check(
            &[s, "rejected_burst"],
            rejected_burst,
            limits::CALLBACK_REJECTED_BURST,
        )?;
        Ok(CallbackConfig {
            listen,
            app_key: self.required_text(raw.app_key, &[s, "app_key"])?,
            secret: self.required_secret(s, "secret", raw.secret, raw.secret_file)?,
            max_body_bytes,
            clock_skew_warn_secs,
            rejected_per_minute,
            rejected_burst,
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
        Ok(LogConfig {
            level,
            directory: raw.directory,
            format: raw.format.unwrap_or(LogFormat::Text),
        })
    }

    pub(super) fn timezone(&self, text: &str, path: &[&str]) -> Result<Tz, ConfigError> {
        text.parse::<Tz>().map_err(|_| {
            self.error(
                path,
                format!("unknown time zone `{text}` (use an IANA name like Asia/Shanghai)"),
            )
        })
    }

    pub(super) fn county_codes(&self, codes: Vec<String>, path: &[&str]) -> Result<Vec<String>, ConfigError> {
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

    fn resolve_shop(&self, raw: RawShop) -> Result<ShopConfig, ConfigError> {
        let s = "shop";
        let url_text = self.required_text(raw.webhook_url, &[s, "webhook_url"])?;
        let config = ShopConfig {
            webhook_url: self.url(&url_text, &[s, "webhook_url"])?,
            secret: self.required_secret(s, "secret", raw.secret, raw.secret_file)?,
            max_attempts: raw.max_attempts.unwrap_or(12),
            timeout_ms: raw.timeout_ms.unwrap_or(10_000),
            per_second: raw.per_second.unwrap_or(20),
            backoff_base_ms: raw.backoff_base_ms.unwrap_or(1_000),
            backoff_cap_ms: raw.backoff_cap_ms.unwrap_or(3_600_000),
            poll_interval_ms: raw.poll_interval_ms.unwrap_or(1_000),
            batch_size: raw.batch_size.unwrap_or(100),
            lease_ms: raw.lease_ms.unwrap_or(60_000),
        };
        self.check(
            &[s, "max_attempts"],
            config.max_attempts,
            limits::OUTBOX_MAX_ATTEMPTS,
        )?;
        self.check(&[s, "timeout_ms"], config.timeout_ms, limits::REQUEST_TIMEOUT_MS)?;
        self.check(&[s, "per_second"], config.per_second, limits::RATE_PER_SECOND)?;
        self.check(
            &[s, "backoff_base_ms"],
            config.backoff_base_ms,
            limits::BACKOFF_BASE_MS,
        )?;
        self.check(
            &[s, "backoff_cap_ms"],
            config.backoff_cap_ms,
            limits::BACKOFF_CAP_MS,
        )?;
        self.check(
            &[s, "poll_interval_ms"],
            config.poll_interval_ms,
            limits::POLL_INTERVAL_MS,
        )?;
        self.check(&[s, "batch_size"], config.batch_size, limits::BATCH_SIZE)?;
        self.check(&[s, "lease_ms"], config.lease_ms, limits::LEASE_MS)?;
        if config.lease_ms <= config.timeout_ms {
            return Err(self.error(
                &[s, "lease_ms"],
                format!(
                    "must be longer than timeout_ms ({}): a claim would run out while its POST is still waiting",
                    config.timeout_ms
                ),
            ));
        }
        Ok(config)
    }

    fn resolve_daemon(&self, raw: RawDaemon) -> Result<DaemonConfig, ConfigError> {
        let config = DaemonConfig {
            shutdown_grace_ms: raw.shutdown_grace_ms.unwrap_or(20_000),
            watch_config: raw.watch_config.unwrap_or(true),
            heartbeat_ms: raw.heartbeat_ms.unwrap_or(5_000),
        };
        self.check(
            &["daemon", "shutdown_grace_ms"],
            config.shutdown_grace_ms,
            limits::SHUTDOWN_GRACE_MS,
        )?;
        self.check(
            &["daemon", "heartbeat_ms"],
            config.heartbeat_ms,
            limits::HEARTBEAT_MS,
        )?;
        Ok(config)
    }
}

impl LoaderWithDoc {
    fn resolve_admin(&self, raw: RawAdmin, callback: &CallbackConfig) -> Result<AdminConfig, ConfigError> {
        let s = "admin";
        let listen_text = raw
            .listen
            .unwrap_or_else(|| AdminConfig::DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            self.error(
                &[s, "listen"],
                format!("`{listen_text}` is not an address like 127.0.0.1:18702"),
            )
        })?;
        if listen.port() != 0
            && listen.port() == callback.listen.port()
            && (listen.ip() == callback.listen.ip()
                || listen.ip().is_unspecified()
                || callback.listen.ip().is_unspecified())
        {
            return Err(self.error(
                &[s, "listen"],
                format!(
                    "`{listen}` is the address of callback.listen ({}): the status page is never served \
                     on the port that faces Haier; give admin.listen another port",
                    callback.listen
                ),
            ));
        }
        let token = self.secret(s, "token", raw.token, raw.token_file)?;
        let tokens = self.resolve_admin_tokens(raw.tokens.unwrap_or_default(), token.as_ref())?;
        let allow_actions = raw.allow_actions.unwrap_or(false);
        if allow_actions && token.is_none() && tokens.is_empty() {
            return Err(self.error(
                &[s, "allow_actions"],
                "allow_actions = true needs a token (set admin.token_file or [admin.tokens]): \
                 without one anybody who reaches the page could change state",
            ));
        }
        Ok(AdminConfig {
            listen,
            token,
            tokens,
            allow_actions,
        })
    }

    /// `[admin.tokens]`: `name = "file"`, each file read like `token_file`. A name is letters,
    /// digits, `-`, `_` or `.`; `admin` is the name of `token`/`token_file`; two names may not
    /// share a token (the audit trail could not tell who acted).
    fn resolve_admin_tokens(
        &self,
        raw: BTreeMap<String, PathBuf>,
        token: Option<&Secret>,
    ) -> Result<BTreeMap<String, Secret>, ConfigError> {
        let mut tokens: BTreeMap<String, Secret> = BTreeMap::new();
        for (name, file) in raw {
            let path = ["admin", "tokens", name.as_str()];
            let well_formed = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !well_formed {
                return Err(self.error(
                    &path,
                    format!("`{name}` is not a token name: use 1 to 64 letters, digits, `-`, `_` or `.`"),
                ));
            }
            if name == AdminConfig::DEFAULT_TOKEN_NAME && token.is_some() {
                return Err(self.error(
                    &path,
                    "`admin` is already the name of admin.token/token_file; give this token another name",
                ));
            }
            if file.as_os_str().is_empty() {
                return Err(self.error(&path, "must not be empty: name the file that holds the token"));
            }
            let file = self.secret_path(&file);
            let text = read_secret_file(&file).map_err(|m| self.error(&path, m))?;
            let text = text.trim_end_matches(['\n', '\r']).to_owned();
            if text.trim().is_empty() {
                return Err(self.error(
                    &path,
                    format!("token file {} is empty or holds only whitespace", file.display()),
                ));
            }
            let secret = Secret::new(text);
            let shared = tokens
                .iter()
                .find(|(_, other)| **other == secret)
                .map(|(other, _)| other.clone())
                .or_else(|| (token == Some(&secret)).then(|| AdminConfig::DEFAULT_TOKEN_NAME.to_owned()));
            if let Some(other) = shared {
                return Err(self.error(
                    &path,
                    format!(
                        "holds the same token as `{other}`: give every name its own token, so that \
                         the audit trail tells who acted"
                    ),
                ));
            }
            tokens.insert(name, secret);
        }
        Ok(tokens)
    }

    fn resolve_retention(&self, raw: RawRetention) -> Result<RetentionConfig, ConfigError> {
        let defaults = RetentionConfig::default();
        let config = RetentionConfig {
            successful_runs_days: raw.successful_runs_days.unwrap_or(defaults.successful_runs_days),
            failed_runs_days: raw.failed_runs_days.unwrap_or(defaults.failed_runs_days),
            callback_events_days: raw.callback_events_days.unwrap_or(defaults.callback_events_days),
            finished_orders_days: raw.finished_orders_days,
        };
        for (key, days) in [
            ("successful_runs_days", Some(config.successful_runs_days)),
            ("failed_runs_days", Some(config.failed_runs_days)),
            ("callback_events_days", Some(config.callback_events_days)),
            ("finished_orders_days", config.finished_orders_days),
        ] {
            if let Some(days) = days {
                self.check(&["retention", key], days, limits::RETENTION_DAYS)?;
            }
        }
        Ok(config)
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

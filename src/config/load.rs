//! Reads `jobs.toml` (file, then `HAIER_SYNC_<SECTION>__<KEY>` environment overrides, then
//! `<key>_file` secrets) and turns it into a validated [`Config`]. Every error names the file, the
//! key and, where the key is in the file, its line.

use super::limits::{self, Limit};
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
    let text = read_config_file(path).map_err(|message| ConfigError {
        file: path.to_path_buf(),
        key: None,
        line: None,
        env_var: None,
        message,
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

/// Reads the config file, at most [`limits::CONFIG_FILE_MAX_BYTES`] of it (`-c /dev/zero` must
/// not fill the memory). A pipe is read as it comes, so `-c <(envsubst < jobs.toml)` works.
fn read_config_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the config file: {e}"))?;
    let text = read_bounded(file, limits::CONFIG_FILE_MAX_BYTES)
        .map_err(|e| format!("cannot read the config file: {e}"))?
        .ok_or_else(|| {
            format!(
                "the config file is larger than {} bytes",
                limits::CONFIG_FILE_MAX_BYTES
            )
        })?;
    String::from_utf8(text).map_err(|_| "the config file is not UTF-8 text".to_owned())
}

/// Reads at most `max` bytes; `None` when there is more.
fn read_bounded(file: std::fs::File, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// Reads a secret file: a regular file of at most [`limits::SECRET_FILE_MAX_BYTES`]. The type is
/// checked before opening, and the open does not block, so a FIFO or a device named by mistake
/// is refused instead of hanging the loader (and, with it, `run`, which then ignores SIGTERM) or
/// reading `/dev/zero` until the memory runs out.
fn read_secret_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let refuse_type = |file_type: std::fs::FileType| -> Result<(), String> {
        if file_type.is_file() {
            return Ok(());
        }
        Err(format!(
            "secret file {shown} is {}, not a regular file",
            describe_file_type(file_type)
        ))
    };
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
    refuse_type(metadata.file_type())?;
    let too_large = || {
        format!(
            "secret file {shown} is larger than {} bytes; a secret is one line",
            limits::SECRET_FILE_MAX_BYTES
        )
    };
    if metadata.len() > limits::SECRET_FILE_MAX_BYTES {
        return Err(too_large());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Should the path have turned into a FIFO since the check, opening it must not wait for
        // a writer.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
    // What was opened, not what the path named a moment ago.
    let opened = file
        .metadata()
        .map_err(|e| format!("cannot read secret file {shown}: {e}"))?;
    refuse_type(opened.file_type())?;
    let bytes = read_bounded(file, limits::SECRET_FILE_MAX_BYTES)
        .map_err(|e| format!("cannot read secret file {shown}: {e}"))?
        .ok_or_else(too_large)?;
    String::from_utf8(bytes).map_err(|_| format!("secret file {shown} is not UTF-8 text"))
}

/// "a FIFO", "a directory", … for a file that is not a regular one.
fn describe_file_type(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
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

    /// Whether `path` is written as `[[path]]`.
    fn is_array_of_tables(&self, path: &[&str]) -> bool {
        let mut item = self.document.as_item();
        for segment in path {
            match item.get(segment) {
                Some(inner) => item = inner,
                None => return false,
            }
        }
        item.is_array_of_tables()
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
        // `[[jobs.stock]]` (a list of tables) where `[jobs.stock]` belongs: serde then complains
        // about the list's first element, `jobs.stock.0`.
        if let Some(index) = path.iter().position(|s| s.bytes().all(|b| b.is_ascii_digit())) {
            let refs: Vec<&str> = path[..index].iter().map(String::as_str).collect();
            if index > 0 && self.is_array_of_tables(&refs) {
                let header = refs.join(".");
                return self.error(
                    &refs,
                    format!("`[[{header}]]` makes a list of tables; write the table as `[{header}]`"),
                );
            }
        }
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
            figment::error::Kind::InvalidLength(_, expected) if expected.starts_with("struct Raw") => {
                "expected a table like { key = value }, found a list".to_owned()
            }
            figment::error::Kind::InvalidType(actual, expected)
            | figment::error::Kind::InvalidValue(actual, expected) => match (limit_of_key(&path), actual) {
                // A whole number of the wrong sign or size: say the key's own range.
                (Some(limit), figment::error::Actual::Signed(n)) => limit.message(*n),
                (Some(limit), figment::error::Actual::Unsigned(n)) => {
                    limit.message(i128::try_from(*n).unwrap_or(i128::MAX))
                }
                (Some(limit), other) => format!(
                    "expected a whole number from {} to {}{}, found {}",
                    limit.min,
                    limit.max,
                    limit.unit,
                    describe_actual(other)
                ),
                (None, _) => format!(
                    "expected {}, found {}",
                    describe_expected(expected),
                    describe_actual(actual)
                ),
            },
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
        let daemon = self.resolve_daemon(raw.daemon.unwrap_or_default())?;
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
    fn check(&self, path: &[&str], value: impl Into<i128>, limit: Limit) -> Result<(), ConfigError> {
        let value = value.into();
        if limit.contains(value) {
            return Ok(());
        }
        Err(self.error(path, limit.message(value)))
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

    /// A key that may be left out (for its default) but, when given, not left blank.
    fn optional_text(&self, value: Option<String>, path: &[&str]) -> Result<Option<String>, ConfigError> {
        match value {
            Some(text) if text.trim().is_empty() => {
                Err(self.error(path, "must not be empty (leave the key out for its default)"))
            }
            other => Ok(other),
        }
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

    fn required_secret(
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
        self.check(
            &[section, "rate_limit", "per_second"],
            per_second,
            limits::RATE_PER_SECOND,
        )?;
        let burst = raw.burst.unwrap_or(per_second.div_ceil(10).max(1));
        self.check(&[section, "rate_limit", "burst"], burst, limits::RATE_BURST)?;
        Ok(RateLimit { per_second, burst })
    }

    fn retry(&self, raw: Option<RawRetry>, section: &str) -> Result<RetryPolicy, ConfigError> {
        let raw = raw.unwrap_or_default();
        let policy = RetryPolicy {
            max_attempts: raw.max_attempts.unwrap_or(5),
            backoff_base_ms: raw.backoff_base_ms.unwrap_or(200),
            backoff_cap_ms: raw.backoff_cap_ms.unwrap_or(10_000),
        };
        self.check(
            &[section, "retry", "max_attempts"],
            policy.max_attempts,
            limits::RETRY_MAX_ATTEMPTS,
        )?;
        self.check(
            &[section, "retry", "backoff_base_ms"],
            policy.backoff_base_ms,
            limits::BACKOFF_BASE_MS,
        )?;
        self.check(
            &[section, "retry", "backoff_cap_ms"],
            policy.backoff_cap_ms,
            limits::BACKOFF_CAP_MS,
        )?;
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
        self.check(
            &[section, "breaker", "failure_threshold"],
            policy.failure_threshold,
            limits::BREAKER_FAILURE_THRESHOLD,
        )?;
        self.check(
            &[section, "breaker", "cool_down_ms"],
            policy.cool_down_ms,
            limits::BREAKER_COOL_DOWN_MS,
        )?;
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
        self.check(&[s, "timeout_ms"], timeout_ms, limits::REQUEST_TIMEOUT_MS)?;
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
            send_to_code: self
                .optional_text(raw.send_to_code, &[s, "send_to_code"])?
                .unwrap_or_else(|| customer_code.clone()),
            customer_code,
            supplier_code: self
                .optional_text(raw.supplier_code, &[s, "supplier_code"])?
                .unwrap_or_else(|| "1001".to_owned()),
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
        self.check(&[s, "timeout_ms"], timeout_ms, limits::REQUEST_TIMEOUT_MS)?;
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
            seller_code: self
                .optional_text(raw.seller_code, &[s, "seller_code"])?
                .unwrap_or_else(|| haier.customer_code.clone()),
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
        let max_body_bytes = raw.max_body_bytes.unwrap_or(64 * 1024);
        self.check(
            &[s, "max_body_bytes"],
            u64::try_from(max_body_bytes).unwrap_or(u64::MAX),
            limits::CALLBACK_MAX_BODY_BYTES,
        )?;
        let max_clock_skew_secs = raw.max_clock_skew_secs.unwrap_or(600);
        self.check(
            &[s, "max_clock_skew_secs"],
            max_clock_skew_secs,
            limits::CALLBACK_MAX_CLOCK_SKEW_SECS,
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
            max_clock_skew_secs,
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
        if let Some(timeout_ms) = raw.timeout_ms {
            if !limits::JOB_TIMEOUT_MS.contains(timeout_ms.into()) {
                return Err(self.error(
                    &path("timeout_ms"),
                    format!(
                        "{} (leave it out for no timeout)",
                        limits::JOB_TIMEOUT_MS.message(timeout_ms.into())
                    ),
                ));
            }
        }
        if let Some(concurrency) = raw.concurrency {
            self.check(
                &path("concurrency"),
                u64::try_from(concurrency).unwrap_or(u64::MAX),
                limits::CONCURRENCY,
            )?;
        }
        let product_codes = raw.product_codes.unwrap_or_default();
        if product_codes.iter().any(|code| code.trim().is_empty()) {
            return Err(self.error(&path("product_codes"), "a product code must not be empty"));
        }
        let jitter_ms = raw.jitter_ms.unwrap_or(0);
        self.check(&path("jitter_ms"), jitter_ms, limits::JITTER_MS)?;
        let poll_interval_ms = raw.poll_interval_ms.unwrap_or(DEFAULT_POLL_INTERVAL_MS);
        let batch_size = raw.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let lease_ms = raw.lease_ms.unwrap_or(DEFAULT_LEASE_MS);
        for (key, value, limit) in [
            ("poll_interval_ms", poll_interval_ms, limits::POLL_INTERVAL_MS),
            ("batch_size", u64::from(batch_size), limits::BATCH_SIZE),
            (
                "max_attempts",
                u64::from(max_attempts),
                limits::OUTBOX_MAX_ATTEMPTS,
            ),
            ("lease_ms", lease_ms, limits::LEASE_MS),
        ] {
            self.check(&path(key), value, limit)?;
        }
        Ok(JobConfig {
            name: name.to_owned(),
            kind,
            schedule,
            timezone,
            enabled: raw.enabled.unwrap_or(true),
            timeout_ms: raw.timeout_ms,
            overlap,
            jitter_ms,
            catch_up,
            product_codes,
            county_codes,
            concurrency: raw.concurrency,
            poll_interval_ms,
            batch_size,
            max_attempts,
            lease_ms,
        })
    }
}

/// The stated range of a numeric key, by its dotted path.
fn limit_of_key(path: &[String]) -> Option<Limit> {
    let first = path.first()?.as_str();
    let last = path.last()?.as_str();
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
    Some(match (first, parent, last) {
        ("database", _, "max_connections") => limits::MAX_CONNECTIONS,
        ("haier" | "ylh", Some("haier" | "ylh"), "timeout_ms") => limits::REQUEST_TIMEOUT_MS,
        ("haier" | "ylh", Some("rate_limit"), "per_second") => limits::RATE_PER_SECOND,
        ("haier" | "ylh", Some("rate_limit"), "burst") => limits::RATE_BURST,
        ("haier" | "ylh", Some("retry"), "max_attempts") => limits::RETRY_MAX_ATTEMPTS,
        ("haier" | "ylh", Some("retry"), "backoff_base_ms") => limits::BACKOFF_BASE_MS,
        ("haier" | "ylh", Some("retry"), "backoff_cap_ms") => limits::BACKOFF_CAP_MS,
        ("haier" | "ylh", Some("breaker"), "failure_threshold") => limits::BREAKER_FAILURE_THRESHOLD,
        ("haier" | "ylh", Some("breaker"), "cool_down_ms") => limits::BREAKER_COOL_DOWN_MS,
        ("callback", _, "max_body_bytes") => limits::CALLBACK_MAX_BODY_BYTES,
        ("callback", _, "max_clock_skew_secs") => limits::CALLBACK_MAX_CLOCK_SKEW_SECS,
        ("daemon", _, "shutdown_grace_ms") => limits::SHUTDOWN_GRACE_MS,
        ("daemon", _, "heartbeat_ms") => limits::HEARTBEAT_MS,
        ("jobs", _, "timeout_ms") if path.len() == 3 => limits::JOB_TIMEOUT_MS,
        ("jobs", _, "jitter_ms") if path.len() == 3 => limits::JITTER_MS,
        ("jobs", _, "concurrency") if path.len() == 3 => limits::CONCURRENCY,
        ("jobs", _, "poll_interval_ms") if path.len() == 3 => limits::POLL_INTERVAL_MS,
        ("jobs", _, "batch_size") if path.len() == 3 => limits::BATCH_SIZE,
        ("jobs", _, "max_attempts") if path.len() == 3 => limits::OUTBOX_MAX_ATTEMPTS,
        ("jobs", _, "lease_ms") if path.len() == 3 => limits::LEASE_MS,
        _ => return None,
    })
}

/// What serde expected, in the words of the file: `u32` is "a whole number from 0 to 4294967295",
/// `struct RawRetry` is "a table".
fn describe_expected(expected: &str) -> String {
    let unsigned = |max: u64| format!("a whole number from 0 to {max}");
    match expected {
        "u8" => unsigned(u8::MAX.into()),
        "u16" => unsigned(u16::MAX.into()),
        "u32" => unsigned(u32::MAX.into()),
        "u64" | "usize" => unsigned(u64::MAX),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "a list like [\"a\", \"b\"]".to_owned(),
        other if other.starts_with("struct Raw") => "a table like { key = value }".to_owned(),
        other => other.to_owned(),
    }
}

/// What the file holds, in its own words: `the number 5`, `the text "abc"`, `a table`.
fn describe_actual(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Unsigned(n) => format!("the number {n}"),
        Actual::Signed(n) => format!("the number {n}"),
        Actual::Float(n) => format!("the number {n}"),
        Actual::Bool(b) => format!("{b}"),
        Actual::Str(text) => format!("the text {text:?}"),
        Actual::Seq => "a list".to_owned(),
        Actual::Map => "a table".to_owned(),
        other => other.to_string(),
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
    rejected_per_minute: Option<u32>,
    rejected_burst: Option<u32>,
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

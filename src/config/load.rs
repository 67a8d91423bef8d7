//! Reads `jobs.toml` (file, then `HAIER_SYNC_<SECTION>__<KEY>` environment overrides, then
//! `<key>_file` secrets) into its raw shape and hands it to `resolve.rs`, which makes a validated
//! [`Config`]. Every error names the file, the key and, where the key is in the file, its line:
//! this file turns serde's and TOML's errors into those words, and reads files with bounds.

use super::limits::{self, Limit};
use super::raw::RawConfig;
use super::Config;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use std::fmt;
use std::path::{Path, PathBuf};

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
pub(super) fn read_secret_file(path: &Path) -> Result<String, String> {
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

pub(super) struct Loader {
    pub(super) path: PathBuf,
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

/// The file as read, its TOML document (for the lines of keys) and the environment overrides
/// applied over it: what every error is placed with.
pub(super) struct LoaderWithDoc {
    pub(super) base: Loader,
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

    /// An error at the dotted key `path`: on its line, or naming the environment variable it
    /// came from.
    pub(super) fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
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
            // Any other list where a table belongs: serde reads its items as the table's keys in
            // order, and the first item that is not a word the key allows ends it (no key of the
            // raw shape is a list of such words).
            if index > 0 && matches!(error.kind, figment::error::Kind::UnknownVariant(..)) {
                return self.error(&refs, "expected a table like { key = value }, found a list");
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
            figment::error::Kind::UnknownVariant(word, allowed) => {
                let key = path.last().map(String::as_str).unwrap_or("value");
                format!("unknown {key} `{word}`; expected {}", describe_words(allowed))
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
        ("callback", _, "clock_skew_warn_secs") => limits::CALLBACK_CLOCK_SKEW_WARN_SECS,
        ("daemon", _, "shutdown_grace_ms") => limits::SHUTDOWN_GRACE_MS,
        ("daemon", _, "heartbeat_ms") => limits::HEARTBEAT_MS,
        ("retention", _, _) if path.len() == 2 => limits::RETENTION_DAYS,
        ("jobs", _, "timeout_ms") if path.len() == 3 => limits::JOB_TIMEOUT_MS,
        ("jobs", _, "jitter_ms") if path.len() == 3 => limits::JITTER_MS,
        ("jobs", _, "catch_up_within_ms") if path.len() == 3 => limits::CATCH_UP_WITHIN_MS,
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

/// The words a key allows: `skip or queue`, `one of: products, prices, stock`.
fn describe_words(words: &[&str]) -> String {
    match words {
        [one] => one.to_string(),
        [first, second] => format!("{first} or {second}"),
        many => format!("one of: {}", many.join(", ")),
    }
}

//! Logging: human-readable (or JSON) lines to stdout for journald, and, when `[log] directory`
//! is set, daily rolling files through a non-blocking writer that is flushed on exit.
//!
//! The daemon (`run`) writes `haier-sync.log.<date>`. Every other command that reads the config
//! (`run-job`, `outbox …`, `migrate`, `status`, `logs`, `test-connection`) prints warnings to
//! stderr and writes its lines at `[log] level` to `haier-sync-commands.log.<date>` in the same
//! folder: a file of its own, because a command run as root must not create the daemon's file of
//! the day, which the service's own user could then not write.

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal as _;
use std::path::Path;
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

/// The daemon's log files: `haier-sync.log.2026-11-24`.
pub const DAEMON_LOG_FILE: &str = "haier-sync.log";
/// The other commands' log files: `haier-sync-commands.log.2026-11-24`.
pub const COMMAND_LOG_FILE: &str = "haier-sync-commands.log";

/// Keeps the file writer alive; dropping it flushes what is buffered.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the daemon's subscriber: stdout and, when set, the log directory, both at
/// `[log] level`. `RUST_LOG`, when set, overrides `[log] level`.
pub fn init(config: &LogConfig) -> anyhow::Result<LogGuard> {
    let spec = level_spec(config);
    // Fail early on a bad RUST_LOG, with the filter's own message.
    EnvFilter::try_new(&spec)?;
    let mut layers: Vec<BoxedLayer> = vec![console_layer(
        config.format,
        std::io::stdout,
        std::io::stdout().is_terminal(),
        filter(&spec),
    )];
    let mut guard = None;
    if let Some(dir) = &config.directory {
        let (writer, file_guard) = open_log_file(dir, DAEMON_LOG_FILE)?;
        layers.push(file_layer(config.format, writer, filter(&spec)));
        guard = Some(file_guard);
    }
    // A second init (tests, the demo) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(LogGuard { _file: guard })
}

/// Logging for commands that run before (or without) a valid config: warnings only, to stderr.
pub fn init_minimal() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("warn"));
    let layer = console_layer(
        LogFormat::Text,
        std::io::stderr,
        std::io::stderr().is_terminal(),
        filter,
    );
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Logging for one-shot commands (`status`, `logs`, `run-job`, …): their output goes to stdout,
/// so log lines go to stderr, at `warn` unless `RUST_LOG` asks for more. With `[log] directory`
/// set, the lines at `[log] level` (or `RUST_LOG`) also go to [`COMMAND_LOG_FILE`] there; a folder
/// this user may not write to is reported on stderr and the command goes on.
pub fn init_for_command(config: &LogConfig) -> anyhow::Result<LogGuard> {
    let rust_log = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
    let console_spec = rust_log.clone().unwrap_or_else(|| "warn".to_owned());
    EnvFilter::try_new(&console_spec)?;
    let mut layers: Vec<BoxedLayer> = vec![console_layer(
        config.format,
        std::io::stderr,
        std::io::stderr().is_terminal(),
        filter(&console_spec),
    )];
    let mut guard = None;
    if let Some(dir) = &config.directory {
        match open_log_file(dir, COMMAND_LOG_FILE) {
            Ok((writer, file_guard)) => {
                layers.push(file_layer(config.format, writer, filter(&level_spec(config))));
                guard = Some(file_guard);
            }
            Err(e) => eprintln!("warning: {e:#}; this command logs to stderr only"),
        }
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(LogGuard { _file: guard })
}

/// `RUST_LOG` when set, else `[log] level`.
fn level_spec(config: &LogConfig) -> String {
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => spec,
        _ => config.level.clone(),
    }
}

/// The filter for `spec` (checked by the caller or the config loader), with the noisy
/// dependencies quietened.
fn filter(spec: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    quiet_dependencies(filter, spec)
}

/// Opens a daily rolling file in `dir`, creating the folder, behind a non-blocking writer.
fn open_log_file(dir: &Path, prefix: &str) -> anyhow::Result<(NonBlocking, WorkerGuard)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("Failed to create the log directory {}: {e}", dir.display()))?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .build(dir)
        .map_err(|e| anyhow::anyhow!("Failed to open the log file {prefix} in {}: {e}", dir.display()))?;
    Ok(tracing_appender::non_blocking(appender))
}

/// Lines for a terminal, journald or a pipe: coloured only on a terminal, and never when
/// `NO_COLOR` is set (<https://no-color.org>).
fn console_layer<W>(format: LogFormat, writer: W, is_terminal: bool, filter: EnvFilter) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let ansi = use_colour(is_terminal, std::env::var_os("NO_COLOR").as_deref());
    match format {
        LogFormat::Text => fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(writer)
            .with_ansi(false)
            .with_filter(filter)
            .boxed(),
    }
}

/// Lines for a log file: never coloured.
fn file_layer(format: LogFormat, writer: NonBlocking, filter: EnvFilter) -> BoxedLayer {
    match format {
        LogFormat::Text => fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(writer)
            .with_ansi(false)
            .with_filter(filter)
            .boxed(),
    }
}

/// Whether to write colour codes: only to a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string.
fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Dependencies that log routine work at `info` and drown the daemon's own lines.
const QUIET_DEPENDENCIES: &[&str] = &["tokio_cron_scheduler=warn"];

/// Adds [`QUIET_DEPENDENCIES`] to a filter, unless the filter names that crate itself.
fn quiet_dependencies(mut filter: EnvFilter, spec: &str) -> EnvFilter {
    for directive in QUIET_DEPENDENCIES {
        let target = directive.split('=').next().unwrap_or(directive);
        if !spec.contains(target) {
            if let Ok(d) = directive.parse() {
                filter = filter.add_directive(d);
            }
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_cron_library_is_quiet_unless_named() {
        let quiet = quiet_dependencies(EnvFilter::new("info"), "info").to_string();
        assert!(quiet.contains("tokio_cron_scheduler=warn"), "{quiet}");
        let named = quiet_dependencies(
            EnvFilter::new("info,tokio_cron_scheduler=debug"),
            "info,tokio_cron_scheduler=debug",
        )
        .to_string();
        assert!(named.contains("tokio_cron_scheduler=debug"), "{named}");
        assert!(!named.contains("tokio_cron_scheduler=warn"), "{named}");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(
            use_colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR does not count"
        );
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None), "a pipe or a file gets no colour");
    }
}

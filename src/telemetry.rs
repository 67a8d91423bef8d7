//! Logging: human-readable (or JSON) lines to stdout for journald, and, when `[log] directory`
//! is set, daily rolling files through a non-blocking writer that is flushed on exit.

use crate::config::{LogConfig, LogFormat};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Keeps the file writer alive; dropping it flushes what is buffered.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `[log] level`.
pub fn init(config: &LogConfig) -> anyhow::Result<LogGuard> {
    let spec = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => spec,
        _ => config.level.clone(),
    };
    let filter = quiet_dependencies(EnvFilter::try_new(&spec)?, &spec);
    let (file_writer, guard) = match &config.directory {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("Failed to create the log directory {}: {e}", dir.display()))?;
            let appender = tracing_appender::rolling::daily(dir, "haier-sync.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(writer), Some(guard))
        }
        None => (None, None),
    };
    let stdout = std::io::stdout;
    let result = match (config.format, file_writer) {
        // Colours only on a terminal: journald and files keep the escape codes as text.
        (LogFormat::Text, None) => fmt()
            .with_env_filter(filter)
            .with_writer(stdout)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
        (LogFormat::Text, Some(file)) => fmt()
            .with_env_filter(filter)
            .with_writer(stdout.and(file))
            .with_ansi(false)
            .try_init(),
        (LogFormat::Json, None) => fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(stdout)
            .try_init(),
        (LogFormat::Json, Some(file)) => fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(stdout.and(file))
            .try_init(),
    };
    // A second init (tests, the demo) keeps the first subscriber.
    let _ = result;
    Ok(LogGuard { _file: guard })
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

/// Logging for commands that run before (or without) a valid config: warnings only, to stderr.
pub fn init_minimal() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let _ = fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Logging for one-shot commands (`status`, `logs`, `run-job`, …): their output goes to stdout,
/// so log lines go to stderr, at `warn` unless `RUST_LOG` asks for more.
pub fn init_for_command(config: &LogConfig) -> anyhow::Result<LogGuard> {
    if std::env::var_os("RUST_LOG").is_none() {
        let _ = fmt()
            .with_env_filter(EnvFilter::new("warn"))
            .with_writer(std::io::stderr)
            .try_init();
        return Ok(LogGuard { _file: None });
    }
    let filter = EnvFilter::try_new(std::env::var("RUST_LOG").unwrap_or_default())?;
    let _ = match config.format {
        LogFormat::Text => fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    Ok(LogGuard { _file: None })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

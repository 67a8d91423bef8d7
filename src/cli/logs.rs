//! `haier-sync logs`: the sync log as a table or JSON, with filters.

use crate::config::Config;
use crate::db::Db;
use crate::runs::{self, LogFilter, RunStatus, SyncLog, SyncType};
use anyhow::bail;
use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Only runs of this job (its name in jobs.toml).
    #[arg(long)]
    pub job: Option<String>,
    /// Only runs of this sync type.
    #[arg(long = "type", value_name = "TYPE")]
    pub sync_type: Option<SyncType>,
    /// Only runs with this status.
    #[arg(long)]
    pub status: Option<RunStatus>,
    /// Only runs started since this time: a duration back from now (`30m`, `6h`, `7d`), a date
    /// (`2026-11-24`) or a time (`2026-11-24 10:00`) in the configured time zone, or RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    /// How many rows to show at most (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Print JSON (an array of rows, times in UTC) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: LogsArgs, config: Config) -> anyhow::Result<i32> {
    let zone = config.defaults.timezone;
    let filter = match build_filter(&args, zone, Utc::now()) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(super::EXIT_USAGE);
        }
    };
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    let rows = db.run(move |conn| Ok(runs::log::list(conn, &filter)?)).await?;
    if args.json {
        let json: Vec<_> = rows.iter().map(row_json).collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else if rows.is_empty() {
        println!("no sync-log rows match");
    } else {
        println!("{}", render_table(&rows, zone));
    }
    Ok(0)
}

fn build_filter(args: &LogsArgs, zone: Tz, now: chrono::DateTime<Utc>) -> anyhow::Result<LogFilter> {
    if args.limit < 1 {
        bail!("--limit must be at least 1");
    }
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, zone, now))
        .transpose()?;
    Ok(LogFilter {
        job_name: args.job.clone(),
        sync_type: args.sync_type,
        status: args.status,
        since,
        limit: args.limit,
    })
}

/// `30m`, `6h`, `7d`, `2026-11-24`, `2026-11-24 10:00[:00]` (configured zone), or RFC 3339; → UTC.
pub fn parse_since(text: &str, zone: Tz, now: chrono::DateTime<Utc>) -> anyhow::Result<NaiveDateTime> {
    let text = text.trim();
    if let Some((number, unit)) = text.char_indices().last().map(|(i, c)| (&text[..i], c)) {
        if let Ok(n) = number.parse::<i64>() {
            let back = match unit {
                's' => Some(chrono::Duration::seconds(n)),
                'm' => Some(chrono::Duration::minutes(n)),
                'h' => Some(chrono::Duration::hours(n)),
                'd' => Some(chrono::Duration::days(n)),
                _ => None,
            };
            if let Some(back) = back {
                return Ok((now - back).naive_utc());
            }
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc).naive_utc());
    }
    let local = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok())
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").ok());
    match local.and_then(|t| zone.from_local_datetime(&t).earliest()) {
        Some(t) => Ok(t.with_timezone(&Utc).naive_utc()),
        None => bail!("--since {text}: expected a duration like 30m, 6h or 7d, a date like 2026-11-24, or a time like '2026-11-24 10:00'"),
    }
}

fn row_json(row: &SyncLog) -> serde_json::Value {
    let mut value = serde_json::to_value(row).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "duration_ms".into(),
            row.duration()
                .map(|d| d.num_milliseconds().into())
                .unwrap_or(serde_json::Value::Null),
        );
    }
    value
}

pub(crate) fn render_table(rows: &[SyncLog], zone: Tz) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header([
        "id", "job", "type", "status", "trigger", "started", "duration", "total", "ok", "failed", "message",
    ]);
    for row in rows {
        let message: String = row.message.as_deref().unwrap_or("").chars().take(60).collect();
        table.add_row([
            row.id.to_string(),
            row.job_name.clone(),
            row.sync_type.to_string(),
            row.status.to_string(),
            row.trigger.to_string(),
            super::format_time(row.started_at, zone),
            row.duration()
                .map(super::format_duration)
                .unwrap_or_else(|| "-".into()),
            row.total_count.to_string(),
            row.success_count.to_string(),
            row.failed_count.to_string(),
            message,
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    #[test]
    fn since_accepts_durations_dates_and_times() {
        let zone = chrono_tz::Asia::Shanghai;
        let at = |s: &str| parse_since(s, zone, now()).unwrap().to_string();
        assert_eq!(at("30m"), "2026-11-24 11:30:00");
        assert_eq!(at("2d"), "2026-11-22 12:00:00");
        assert_eq!(at("2026-11-24"), "2026-11-23 16:00:00");
        assert_eq!(at("2026-11-24 10:00"), "2026-11-24 02:00:00");
        assert_eq!(at("2026-11-24T10:00:00Z"), "2026-11-24 10:00:00");
        assert!(parse_since("yesterday", zone, now())
            .unwrap_err()
            .to_string()
            .contains("--since yesterday"));
    }

    #[test]
    fn type_and_status_take_the_sync_log_texts() {
        use clap::Parser as _;
        let parse =
            |flags: &[&str]| crate::cli::Cli::try_parse_from(["haier-sync", "logs"].iter().chain(flags));
        let cli = parse(&["--type", "stock", "--status", "failed"]).unwrap();
        let crate::cli::Command::Logs(args) = cli.command else {
            panic!("not the logs command: {cli:?}");
        };
        let filter = build_filter(&args, chrono_tz::UTC, now()).unwrap();
        assert_eq!(filter.sync_type, Some(SyncType::Stock));
        assert_eq!(filter.status, Some(RunStatus::Failed));
        for flags in [["--type", "stocks"], ["--status", "ok"]] {
            let err = parse(&flags).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{flags:?}");
            assert_eq!(err.exit_code(), crate::cli::EXIT_USAGE);
            assert!(err.to_string().contains(flags[1]), "{err}");
        }
    }
}

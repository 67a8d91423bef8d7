//! `haier-sync audit`: the audit trail, newest first; and which commands are recorded in it,
//! with which arguments ([`audited`]), for `cli::dispatch` to record once each has run.

use super::events::EventsCommand;
use super::outbox::OutboxCommand;
use super::Command;
use crate::audit::{self, AuditEntry, AuditOutcome, AuditRow};
use crate::config::Config;
use crate::db::Db;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// At most this many rows.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: AuditArgs, config: Config) -> anyhow::Result<i32> {
    if args.limit < 1 {
        eprintln!("error: --limit must be at least 1, not {}", args.limit);
        return Ok(super::EXIT_USAGE);
    }
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    let limit = args.limit;
    let rows = db
        .run(move |conn| Ok(audit::store::latest_audit_rows(conn, limit)?))
        .await
        .map_err(|e| e.context("Failed to read the audit trail"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render(&rows, config.defaults.timezone));
    }
    Ok(0)
}

fn render(rows: &[AuditRow], zone: chrono_tz::Tz) -> String {
    if rows.is_empty() {
        return "no audited commands\n".into();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "at",
        "who",
        "command",
        "arguments",
        "outcome",
        "detail",
    ]);
    for row in rows {
        table.add_row([
            super::format_time(row.at, zone),
            format!("{}@{}", row.os_user, row.host),
            row.command.clone(),
            row.arguments.clone(),
            row.outcome.to_string(),
            row.detail.clone().unwrap_or_default(),
        ]);
    }
    format!("{table}\n")
}

/// The name and arguments under which a command that changes state is recorded; `None` for a
/// command that only reads. Every `outbox` subcommand is named here, so that a new one is
/// decided on.
pub fn audited(command: &Command) -> Option<(&'static str, serde_json::Value)> {
    match command {
        Command::Migrate => Some(("migrate", json!({}))),
        Command::Pause(args) => Some(("pause", json!({ "job": args.job, "reason": args.reason }))),
        Command::Resume(args) => Some(("resume", json!({ "job": args.job, "catch_up": args.catch_up }))),
        Command::Prune(args) => Some(("prune", json!({ "dry_run": args.dry_run }))),
        Command::Trigger(args) => Some((
            "trigger",
            json!({
                "job": args.job,
                "no_wait": args.no_wait,
                "timeout": args.timeout,
                "force": args.force,
            }),
        )),
        Command::Outbox(args) => match &args.command {
            OutboxCommand::Enqueue { file } => {
                Some(("outbox enqueue", json!({ "file": file.display().to_string() })))
            }
            OutboxCommand::Retry(args) => Some((
                "outbox retry",
                json!({
                    "so_id": args.so_id,
                    "status": args.status,
                    "since": args.since,
                    "error_like": args.error_like,
                    "dry_run": args.dry_run,
                }),
            )),
            OutboxCommand::Cancel { so_id, reason } => {
                Some(("outbox cancel", json!({ "so_id": so_id, "reason": reason })))
            }
            OutboxCommand::Attach { event_id, so_id } => {
                Some(("outbox attach", json!({ "event_id": event_id, "so_id": so_id })))
            }
            OutboxCommand::Reschedule {
                so_id,
                delivery,
                install,
            } => Some((
                "outbox reschedule",
                json!({ "so_id": so_id, "delivery": delivery, "install": install }),
            )),
            OutboxCommand::List { .. }
            | OutboxCommand::Show { .. }
            | OutboxCommand::Events(_)
            | OutboxCommand::Photos { .. } => None,
        },
        Command::Events(args) => match &args.command {
            EventsCommand::Retry { id, failed } => {
                Some(("events retry", json!({ "id": id, "failed": failed })))
            }
            EventsCommand::Replay { since, until } => {
                Some(("events replay", json!({ "since": since, "until": until })))
            }
            EventsCommand::List { .. } => None,
        },
        _ => None,
    }
}

/// Records how an audited command ended; a failure to record is said on stderr, and does not
/// change the command's exit code.
pub async fn record_outcome(
    config: &Config,
    entry: (&'static str, serde_json::Value),
    result: &anyhow::Result<i32>,
) {
    record_outcome_with_detail(config, entry, result, None).await;
}

/// [`record_outcome`] with what the command reports besides its exit code (a prune's counts),
/// kept in the row's detail (after the exit code when it is not 0).
pub async fn record_outcome_with_detail(
    config: &Config,
    (command, arguments): (&'static str, serde_json::Value),
    result: &anyhow::Result<i32>,
    reported: Option<String>,
) {
    let (outcome, detail) = match result {
        Ok(0) => (AuditOutcome::Ok, reported),
        Ok(code) => (
            AuditOutcome::Refused,
            Some(match reported {
                Some(text) => format!("exit code {code}; {text}"),
                None => format!("exit code {code}"),
            }),
        ),
        Err(e) => (AuditOutcome::Failed, Some(format!("{e:#}"))),
    };
    let entry = AuditEntry {
        command: command.to_owned(),
        arguments,
        outcome,
        detail,
    };
    let written = match Db::connect(&config.database).await {
        Ok(db) => audit::record(&db, config, entry).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        eprintln!("warning: the command is not in the audit trail: {e:#}");
    }
}

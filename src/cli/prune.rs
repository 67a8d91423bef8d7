//! `haier-sync prune [--dry-run] [--json]`: deletes now what `[retention]` no longer keeps, as the
//! daemon does once a day, and prints the rows per kind; `--dry-run` counts them and deletes
//! nothing. It parses and prints; `crate::retention` does the work.

use crate::config::{Config, RetentionConfig};
use crate::db::{self, Db};
use crate::retention::{daily, store, Policy, PruneCounts, PruneKind};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// Count what would be deleted, per kind, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `prune`; returns the exit code and the counts, as one line for the audit trail.
pub async fn run(args: PruneArgs, config: &Config) -> anyhow::Result<(i32, String)> {
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    let retention = config.retention;
    let now = db::now_utc();
    let policy = Policy::new(&retention, now);
    let interactive = std::io::stderr().is_terminal() && !args.json;
    if args.dry_run || interactive {
        // A count is what a dry run prints, and the length of the progress bar.
        let planned = daily::count_now(&db, retention, now).await?;
        if args.dry_run {
            return Ok(print_dry_run(&args, config, &policy, &planned));
        }
        return prune_now(&args, config, &db, now, &policy, progress_bar(planned.total())).await;
    }
    prune_now(&args, config, &db, now, &policy, None).await
}

fn print_dry_run(args: &PruneArgs, config: &Config, policy: &Policy, planned: &PruneCounts) -> (i32, String) {
    print_counts(args, config, policy, planned, true);
    if !args.json {
        println!(
            "dry run: {} row(s) would be deleted; nothing changed",
            planned.total()
        );
    }
    (0, format!("dry run: would delete {planned}"))
}

/// Prunes, records the prune, and prints what it deleted; `bar` shows the progress.
async fn prune_now(
    args: &PruneArgs,
    config: &Config,
    db: &Db,
    now: chrono::NaiveDateTime,
    policy: &Policy,
    bar: Option<ProgressBar>,
) -> anyhow::Result<(i32, String)> {
    let retention = config.retention;
    let instance = db::instance_name();
    let id = db
        .run(move |conn| Ok(store::insert_manual(conn, &instance, now)?))
        .await
        .map_err(|e| e.context("Failed to record the prune"))?;
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    let signal_task = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after this batch: the rest goes at the next prune");
            on_signal.cancel();
        }
    });
    let on_batch = bar.clone();
    let progress: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| {
        if let Some(bar) = &on_batch {
            bar.inc(n);
        }
    });
    let started = Instant::now();
    let result = daily::prune_recorded(db, retention, id, now, stop.clone(), progress).await;
    signal_task.abort();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let deleted = result?;
    print_counts(args, config, policy, &deleted, false);
    let stopped = stop.is_cancelled();
    if !args.json {
        println!(
            "deleted {} row(s) in {}{}",
            deleted.total(),
            super::format_duration(chrono::Duration::from_std(started.elapsed()).unwrap_or_default()),
            if stopped {
                " (stopped: the rest goes at the next prune)"
            } else {
                ""
            }
        );
    }
    let code = if stopped { 1 } else { 0 };
    Ok((code, format!("deleted {}", deleted)))
}

/// A bar (on a terminal) for a prune of `total` rows; none for a small prune.
fn progress_bar(total: i64) -> Option<ProgressBar> {
    if total < 10_000 {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("prune [{bar:30.cyan/blue}] {pos}/{len} rows, ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn print_counts(args: &PruneArgs, config: &Config, policy: &Policy, counts: &PruneCounts, dry_run: bool) {
    if args.json {
        let value = json!({
            "dry_run": dry_run,
            "counts": counts,
            "total": counts.total(),
            "retention": config.retention,
            "before": policy,
        });
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return;
    }
    print!(
        "{}",
        render(
            &config.retention,
            policy,
            counts,
            dry_run,
            config.defaults.timezone
        )
    );
}

/// The table: one line per kind, with how long it is kept and before when rows go.
fn render(
    retention: &RetentionConfig,
    policy: &Policy,
    counts: &PruneCounts,
    dry_run: bool,
    zone: chrono_tz::Tz,
) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "kind",
        "what",
        "kept",
        "older than",
        if dry_run { "would delete" } else { "deleted" },
    ]);
    let orders_kept = retention
        .finished_orders_days
        .map_or_else(|| "forever".to_owned(), |d| format!("{d} days"));
    for kind in PruneKind::ALL {
        let (kept, before) = match kind {
            PruneKind::SuccessfulRuns => (
                format!("{} days", retention.successful_runs_days),
                Some(policy.successful_runs_before),
            ),
            PruneKind::FailedRuns => (
                format!("{} days", retention.failed_runs_days),
                Some(policy.failed_runs_before),
            ),
            PruneKind::CallbackEvents => (
                format!("{} days", retention.callback_events_days),
                Some(policy.callback_events_before),
            ),
            PruneKind::FinishedOrders => (orders_kept.clone(), policy.finished_orders_before),
            _ => ("with their order".to_owned(), None),
        };
        table.add_row([
            kind.name().to_owned(),
            kind.describe().to_owned(),
            kept,
            before.map_or_else(String::new, |at| super::format_time(at, zone)),
            counts.get(kind).to_string(),
        ]);
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_kind_with_its_window() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let retention = RetentionConfig::default();
        let policy = Policy::new(&retention, now);
        let counts = PruneCounts {
            successful_runs: 7,
            ..PruneCounts::default()
        };
        let text = render(&retention, &policy, &counts, true, chrono_tz::UTC);
        for kind in PruneKind::ALL {
            assert!(text.contains(kind.name()), "{text}");
        }
        assert!(
            text.contains("would delete") && text.contains("2026-11-02 00:00:00"),
            "{text}"
        );
        assert!(text.contains("forever"), "{text}");
    }
}

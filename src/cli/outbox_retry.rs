//! `haier-sync outbox retry`: one dead order by its soId, or every dead order a filter names
//! (`--status dead [--since 2h] [--error-like TEXT]`), with `--dry-run` to see which first. It
//! parses and prints; `crate::orders::manual` does the work.

use crate::db::Db;
use crate::orders::{retry_dead_orders, retry_order, DeadFilter, OutboxStatus, Retried};

/// `outbox retry` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// The order's soId (or give `--status dead` to retry every dead order the filters name).
    #[arg(
        value_name = "SO_ID",
        required_unless_present = "status",
        conflicts_with = "status"
    )]
    pub so_id: Option<String>,
    /// Retry every order in this status; only `dead` can be retried.
    #[arg(long, value_name = "STATUS", value_enum)]
    pub status: Option<OutboxStatus>,
    /// With --status: only orders that went dead since then: a duration back from now (`30m`,
    /// `2h`, `7d`), a date (`2026-11-24`) or a time (`'2026-11-24 10:00'`, the configured zone).
    #[arg(long, value_name = "WHEN", requires = "status")]
    pub since: Option<String>,
    /// With --status: only orders whose last error contains this text (any letter case).
    #[arg(long, value_name = "TEXT", requires = "status")]
    pub error_like: Option<String>,
    /// With --status: list the orders that would be retried, and change nothing.
    #[arg(long, requires = "status")]
    pub dry_run: bool,
}

/// Runs `outbox retry`; exit 0, 1 when the order cannot be retried, 2 for a bad filter.
pub async fn run(db: &Db, args: RetryArgs, zone: chrono_tz::Tz) -> anyhow::Result<i32> {
    if let Some(so_id) = args.so_id {
        if args.since.is_some() || args.error_like.is_some() || args.dry_run {
            eprintln!("error: --since, --error-like and --dry-run go with --status dead, not with a soId");
            return Ok(2);
        }
        return Ok(match retry_order(db, &so_id).await? {
            Retried::Pending => {
                println!("{so_id} is pending again; the poller will check and push it");
                0
            }
            Retried::NotFound => {
                eprintln!("error: no outbox order has soId {so_id}");
                1
            }
            Retried::NotDead { status } => {
                eprintln!("error: {so_id} is {status}, not dead; only a dead order can be retried");
                1
            }
        });
    }
    if args.status != Some(OutboxStatus::Dead) {
        let status = args.status.map_or_else(String::new, |s| s.to_string());
        eprintln!("error: --status {status}: only dead orders can be retried (use --status dead)");
        return Ok(2);
    }
    let since = match args.since.as_deref() {
        None => None,
        Some(text) => match super::logs::parse_since(text, zone, chrono::Utc::now()) {
            Ok(at) => Some(at),
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(2);
            }
        },
    };
    let filter = DeadFilter {
        since,
        error_like: args.error_like.filter(|t| !t.trim().is_empty()),
    };
    let so_ids = retry_dead_orders(db, filter, args.dry_run).await?;
    for so_id in &so_ids {
        println!("{so_id}");
    }
    if args.dry_run {
        println!(
            "{} dead order(s) would be retried (dry run: nothing changed)",
            so_ids.len()
        );
    } else {
        println!(
            "{} dead order(s) are pending again; the poller will check and push them",
            so_ids.len()
        );
    }
    Ok(0)
}

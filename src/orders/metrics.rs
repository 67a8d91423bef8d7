//! `GET /metrics` in Prometheus text format: requests, errors, 429s and retries per Haier
//! operation and each system's pace in force (from the shared client's counters), job run
//! counts and durations (from
//! `haier_sync_logs`), outbox depth by status, and callbacks by outcome. It only reads.

use super::notices::Outcome;
use crate::db::outbox::STATUSES;
use crate::db::{outbox, run_stats, Db};
use crate::haier::System;
use anyhow::Context as _;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Callbacks received since start, by outcome.
#[derive(Debug, Default)]
pub struct CallbackCounters {
    by_outcome: [AtomicU64; Outcome::ALL.len()],
    internal_errors: AtomicU64,
}

impl CallbackCounters {
    pub fn count(&self, outcome: Outcome) {
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.by_outcome[index].fetch_add(1, Ordering::Relaxed);
    }

    /// A callback that could not be stored (database down).
    pub fn count_internal_error(&self) {
        self.internal_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.by_outcome[index].load(Ordering::Relaxed)
    }
}

/// One Haier operation's counters, as the metrics show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationCounters {
    pub operation: String,
    pub calls: u64,
    pub requests: u64,
    pub errors: u64,
    /// Requests answered 429.
    pub throttled: u64,
    pub retries: u64,
}

/// The client's snapshot as the metrics show it.
pub fn client_counters(stats: &crate::haier::ClientStats) -> Vec<OperationCounters> {
    stats
        .operations
        .iter()
        .map(|(name, op)| OperationCounters {
            operation: name.clone(),
            calls: op.calls,
            requests: op.requests,
            errors: op.errors,
            throttled: op.throttled,
            retries: op.retries,
        })
        .collect()
}

/// Reads the shared client's counters at scrape time.
pub type ClientCounters = Arc<dyn Fn() -> crate::haier::ClientStats + Send + Sync>;

/// Where the metrics come from besides the database.
#[derive(Clone, Default)]
pub struct MetricsSource {
    /// The shared Haier client's counters; none when the receiver runs without a client.
    pub client: Option<ClientCounters>,
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole metrics text.
pub async fn render(db: &Db, source: &MetricsSource, callbacks: &CallbackCounters) -> anyhow::Result<String> {
    let (depth, runs, latest) = db
        .run(|conn| {
            Ok((
                outbox::count_by_status(conn)?,
                run_stats::count_runs_by_job_and_status(conn)?,
                run_stats::latest_finished_runs(conn)?,
            ))
        })
        .await
        .context("Failed to read the metrics from the database")?;
    let mut out = String::new();

    if let Some(client) = &source.client {
        let stats = client();
        let ops = client_counters(&stats);
        type Pick = fn(&OperationCounters) -> u64;
        let families: [(&str, &str, Pick); 5] = [
            ("haier_calls_total", "Calls made to Haier, by operation.", |o| {
                o.calls
            }),
            (
                "haier_requests_total",
                "HTTP requests sent to Haier (every attempt), by operation.",
                |o| o.requests,
            ),
            (
                "haier_errors_total",
                "Calls to Haier that failed in the end, by operation.",
                |o| o.errors,
            ),
            (
                "haier_throttled_total",
                "Requests Haier answered with HTTP 429, by operation.",
                |o| o.throttled,
            ),
            (
                "haier_retries_total",
                "Requests repeated after a retryable failure, by operation.",
                |o| o.retries,
            ),
        ];
        for (name, help, pick) in families {
            header(&mut out, name, "counter", help);
            for op in &ops {
                let _ = writeln!(
                    out,
                    "{name}{{operation=\"{}\"}} {}",
                    label(&op.operation),
                    pick(op)
                );
            }
        }
        let systems = [(System::Openplat, &stats.openplat), (System::Ylh, &stats.ylh)];
        header(
            &mut out,
            "haier_pace_per_second",
            "gauge",
            "Requests per second the client allows itself, by system: rate_limit, or less after 429s.",
        );
        for (system, s) in systems {
            if let Some(pace) = s.pace_per_second {
                let _ = writeln!(out, "haier_pace_per_second{{system=\"{system}\"}} {pace:.3}");
            }
        }
        header(
            &mut out,
            "haier_rate_limit_per_second",
            "gauge",
            "The configured rate_limit, by system.",
        );
        for (system, s) in systems {
            let _ = writeln!(
                out,
                "haier_rate_limit_per_second{{system=\"{system}\"}} {}",
                s.per_second
            );
        }
    }

    header(
        &mut out,
        "haier_sync_job_runs_total",
        "counter",
        "Job runs recorded in haier_sync_logs, by job and status.",
    );
    for (job, status, count) in &runs {
        let _ = writeln!(
            out,
            "haier_sync_job_runs_total{{job=\"{}\",status=\"{}\"}} {count}",
            label(job),
            label(status)
        );
    }
    header(
        &mut out,
        "haier_sync_job_last_duration_seconds",
        "gauge",
        "Duration of each job's newest finished run, with its status.",
    );
    for run in &latest {
        if let Some(duration) = run.duration() {
            let _ = writeln!(
                out,
                "haier_sync_job_last_duration_seconds{{job=\"{}\",status=\"{}\"}} {:.3}",
                label(&run.job_name),
                label(&run.status),
                duration.num_milliseconds() as f64 / 1000.0
            );
        }
    }

    header(
        &mut out,
        "haier_order_outbox_rows",
        "gauge",
        "Rows in haier_order_outbox, by status.",
    );
    for status in STATUSES {
        let count = depth.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "haier_order_outbox_rows{{status=\"{status}\"}} {count}");
    }

    header(
        &mut out,
        "haier_sync_callbacks_total",
        "counter",
        "Haier callbacks received since start, by outcome.",
    );
    for outcome in Outcome::ALL {
        let _ = writeln!(
            out,
            "haier_sync_callbacks_total{{outcome=\"{}\"}} {}",
            outcome.as_str(),
            callbacks.get(outcome)
        );
    }
    header(
        &mut out,
        "haier_sync_callback_store_errors_total",
        "counter",
        "Haier callbacks that could not be stored (answered 500 so that Haier sends them again).",
    );
    let _ = writeln!(
        out,
        "haier_sync_callback_store_errors_total {}",
        callbacks.internal_errors.load(Ordering::Relaxed)
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

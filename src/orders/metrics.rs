//! `GET /metrics` in Prometheus text format: requests, errors, 429s and retries per Haier
//! operation and each system's pace in force (from the shared client's counters), job run counts
//! and durations (from `haier_sync_logs`), outbox depth by status, orders and cancels Haier has
//! not answered within `confirm_within_ms`, unmatched callbacks kept, callbacks by outcome, and
//! rejected callbacks by reason (stored, or refused by the per-address limit and not stored). It
//! only reads.

use super::outbox;
use super::state::{CallbackOutcome, OutboxStatus};
use crate::db::Db;
use crate::haier::System;
use anyhow::Context as _;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why callbacks are rejected: the reply codes, as `/metrics` labels them. Anything else is
/// counted as `other`.
pub const REJECTION_REASONS: [&str; 7] = [
    "body_too_large",
    "unsupported_media_type",
    "duplicate_field",
    "missing_field",
    "unknown_app_key",
    "bad_sign",
    "malformed_data",
];

/// The label of a rejection code: itself when known, else `other`.
fn reason_index(code: &str) -> usize {
    REJECTION_REASONS
        .iter()
        .position(|r| *r == code)
        .unwrap_or(REJECTION_REASONS.len())
}

fn reason_label(index: usize) -> &'static str {
    REJECTION_REASONS.get(index).copied().unwrap_or("other")
}

/// Callbacks received since start, by outcome, and rejections by reason.
#[derive(Debug, Default)]
pub struct CallbackCounters {
    by_outcome: [AtomicU64; CallbackOutcome::ALL.len()],
    internal_errors: AtomicU64,
    /// Rejected callbacks by reason (the last slot is `other`), stored or not.
    rejected: [AtomicU64; REJECTION_REASONS.len() + 1],
    /// Of those, the ones over the per-address limit: answered 429 and not stored.
    rejected_not_stored: [AtomicU64; REJECTION_REASONS.len() + 1],
}

impl CallbackCounters {
    /// A rejected callback: `stored` is false when it was over the per-address limit.
    pub fn count_rejection(&self, code: &str, stored: bool) {
        let index = reason_index(code);
        self.rejected[index].fetch_add(1, Ordering::Relaxed);
        if !stored {
            self.rejected_not_stored[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rejected callbacks with this reply code (stored or not), and how many were not stored.
    pub fn rejections(&self, code: &str) -> (u64, u64) {
        let index = reason_index(code);
        (
            self.rejected[index].load(Ordering::Relaxed),
            self.rejected_not_stored[index].load(Ordering::Relaxed),
        )
    }

    pub fn count(&self, outcome: CallbackOutcome) {
        let index = CallbackOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.by_outcome[index].fetch_add(1, Ordering::Relaxed);
    }

    /// A callback that could not be stored (database down).
    pub fn count_internal_error(&self) {
        self.internal_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, outcome: CallbackOutcome) -> u64 {
        let index = CallbackOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
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
    /// The outbox job's `confirm_within_ms`; `None` takes the default (a day).
    pub confirm_within_ms: Option<u64>,
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
    let confirm_within = chrono::Duration::milliseconds(
        source
            .confirm_within_ms
            .unwrap_or(crate::config::DEFAULT_CONFIRM_WITHIN_MS)
            .min(i64::MAX as u64) as i64,
    );
    let (depth, runs, latest, unconfirmed, unmatched) = db
        .run(move |conn| {
            let before = crate::db::now_utc() - confirm_within;
            Ok((
                outbox::count_by_status(conn)?,
                crate::runs::stats::count_runs_by_job_and_status(conn)?,
                crate::runs::stats::latest_finished_runs(conn)?,
                outbox::count_unconfirmed(conn, before)?,
                super::events::count_unmatched(conn)?,
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
            status.as_str()
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
                run.status.as_str(),
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
    for status in OutboxStatus::ALL {
        let count = depth.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "haier_order_outbox_rows{{status=\"{status}\"}} {count}");
    }

    header(
        &mut out,
        "haier_sync_orders_unconfirmed",
        "gauge",
        "Orders Haier has not answered within confirm_within_ms: pushed with no confirm callback \
         (kind=\"push\"), or a cancel asked with no cancel callback (kind=\"cancel\").",
    );
    let (pushes, cancels) = unconfirmed;
    let _ = writeln!(out, "haier_sync_orders_unconfirmed{{kind=\"push\"}} {pushes}");
    let _ = writeln!(out, "haier_sync_orders_unconfirmed{{kind=\"cancel\"}} {cancels}");

    header(
        &mut out,
        "haier_sync_callbacks_unmatched",
        "gauge",
        "Signed callbacks kept because they name no order or several, waiting for `haier-sync outbox attach`.",
    );
    let _ = writeln!(out, "haier_sync_callbacks_unmatched {unmatched}");

    header(
        &mut out,
        "haier_sync_callbacks_total",
        "counter",
        "Haier callbacks received since start, by outcome (rejected ones over the per-address limit included).",
    );
    for &outcome in CallbackOutcome::ALL {
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
    let rejections: [(&str, &str, &[AtomicU64]); 2] = [
        (
            "haier_sync_callback_rejections_total",
            "Haier callbacks rejected since start, by reason (the reply's code), stored or not.",
            &callbacks.rejected,
        ),
        (
            "haier_sync_callback_rejections_not_stored_total",
            "Rejected unsigned callbacks over the per-address limit: answered 429 and not stored, by reason.",
            &callbacks.rejected_not_stored,
        ),
    ];
    for (name, help, counts) in rejections {
        header(&mut out, name, "counter", help);
        for (index, count) in counts.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{}\"}} {}",
                reason_label(index),
                count.load(Ordering::Relaxed)
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_counted_by_reason_and_unknown_codes_as_other() {
        let counters = CallbackCounters::default();
        counters.count_rejection("bad_sign", true);
        counters.count_rejection("bad_sign", false);
        counters.count_rejection("something_new", true);
        assert_eq!(counters.rejections("bad_sign"), (2, 1));
        assert_eq!(counters.rejections("missing_field"), (0, 0));
        assert_eq!(counters.rejections("other"), (1, 0));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

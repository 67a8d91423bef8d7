//! `GET /metrics`: every metric haier-sync serves is defined here, and encoded by
//! `prometheus-client` in the OpenMetrics text format (which Prometheus scrapes). It only reads:
//! the shared Haier client's counters and request latencies (per operation and system, each
//! system's pace, `rate_limit` and breaker), job runs and durations (from `haier_sync_logs`),
//! jobs overdue or failing (`crate::health`), fires missed while no daemon ran
//! (`scheduler::missed`), outbox depth by status, orders and cancels Haier has not answered within
//! `confirm_within_ms`, unmatched callbacks kept, callbacks by outcome, and rejected callbacks by
//! reason (stored, or refused by the per-address limit and not stored).
//!
//! Each scrape fills a fresh [`Registry`]: values read from the database are set as they are
//! now, and the live counters belong to the app that serves them (its client, its receiver), so
//! apps in one process (tests) never share a series and there is no global recorder.
//! `systemd/haier-sync-alerts.yml` alerts on these names.

use crate::config::{Config, JobSpec};
use crate::db::Db;
use crate::haier::{BreakerState, System};
use crate::orders::state::{CallbackOutcome, OutboxStatus};
use crate::orders::{events, outbox};
use anyhow::Context as _;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The content type of the metrics text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label pairs of one series, in order.
pub type Labels = Vec<(&'static str, String)>;

/// `haier_request_duration_seconds`: one histogram per system and operation, filled by the
/// client as replies arrive.
pub type LatencyFamily = Family<Labels, Histogram>;

/// Upper bounds of the request latency buckets, in seconds: fine below the 2 s the alerts care
/// about, coarse above up to the longest timeout worth telling apart.
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] =
    [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0];

/// A latency family with [`LATENCY_BUCKETS_SECONDS`].
pub fn new_latency_family() -> LatencyFamily {
    Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS_SECONDS))
}

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
    /// The shared Haier client's request latencies (`HaierClient::latency_family`).
    pub latency: Option<LatencyFamily>,
    /// The outbox job's `confirm_within_ms`; `None` takes the default (a day).
    pub confirm_within_ms: Option<u64>,
    /// The jobs: with them, each scheduled job has its overdue, failing and missed-fires series
    /// (0 when all is well); without, only the jobs with missed fires have theirs.
    pub config: Option<Arc<Config>>,
}

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.into_iter().map(|(k, v)| (k, v.to_owned())).collect()
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A counter family set to `values` at scrape time.
fn counters(values: impl IntoIterator<Item = (Labels, u64)>) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).inc_by(value);
    }
    family
}

/// A gauge family set to `values` at scrape time.
fn gauges(values: impl IntoIterator<Item = (Labels, i64)>) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    family
}

/// A gauge family of fractional values set at scrape time.
fn float_gauges(values: impl IntoIterator<Item = (Labels, f64)>) -> Family<Labels, Gauge<f64, AtomicU64>> {
    let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    family
}

/// The whole metrics text.
pub async fn render(db: &Db, source: &MetricsSource, callbacks: &CallbackCounters) -> anyhow::Result<String> {
    let confirm_within = chrono::Duration::milliseconds(
        source
            .confirm_within_ms
            .unwrap_or(crate::config::DEFAULT_CONFIRM_WITHIN_MS)
            .min(i64::MAX as u64) as i64,
    );
    let now = chrono::Utc::now();
    let now_naive = now.naive_utc();
    let (depth, runs, latest, unconfirmed, unmatched, missed) = db
        .run(move |conn| {
            let before = now_naive - confirm_within;
            Ok((
                outbox::count_by_status(conn)?,
                crate::runs::stats::count_runs_by_job_and_status(conn)?,
                crate::runs::stats::latest_finished_runs(conn)?,
                outbox::count_unconfirmed(conn, before)?,
                events::count_unmatched(conn)?,
                crate::scheduler::missed::standing_missed_fires(conn, now_naive)?,
            ))
        })
        .await
        .context("Failed to read the metrics from the database")?;
    let health = match &source.config {
        Some(config) => Some(
            crate::health::check_health(db, config, now)
                .await
                .context("Failed to judge the jobs' health for the metrics")?,
        ),
        None => None,
    };
    let mut registry = Registry::default();

    if let Some(client) = &source.client {
        let stats = client();
        let ops = client_counters(&stats);
        type Pick = fn(&OperationCounters) -> u64;
        let families: [(&str, &str, Pick); 5] = [
            ("haier_calls", "Calls made to Haier, by operation", |o| o.calls),
            (
                "haier_requests",
                "HTTP requests sent to Haier (every attempt), by operation",
                |o| o.requests,
            ),
            (
                "haier_errors",
                "Calls to Haier that failed in the end, by operation",
                |o| o.errors,
            ),
            (
                "haier_throttled",
                "Requests Haier answered with HTTP 429, by operation",
                |o| o.throttled,
            ),
            (
                "haier_retries",
                "Requests repeated after a retryable failure, by operation",
                |o| o.retries,
            ),
        ];
        for (name, help, pick) in families {
            let family = counters(
                ops.iter()
                    .map(|op| (labels([("operation", &op.operation)]), pick(op))),
            );
            registry.register(name, help, family);
        }
        let systems = [(System::Openplat, &stats.openplat), (System::Ylh, &stats.ylh)];
        registry.register(
            "haier_pace_per_second",
            "Requests per second the client allows itself, by system: rate_limit, or less after 429s",
            float_gauges(systems.iter().filter_map(|(system, s)| {
                s.pace_per_second
                    .map(|pace| (vec![("system", system.to_string())], pace))
            })),
        );
        registry.register(
            "haier_rate_limit_per_second",
            "The configured rate_limit, by system",
            gauges(
                systems
                    .iter()
                    .map(|(system, s)| (vec![("system", system.to_string())], i64::from(s.per_second))),
            ),
        );
        registry.register(
            "haier_breaker_open",
            "1 while a system's circuit breaker is open or half-open (calls fail fast or wait for its probe), else 0",
            gauges(systems.iter().map(|(system, s)| {
                (
                    vec![("system", system.to_string())],
                    i64::from(s.breaker != BreakerState::Closed),
                )
            })),
        );
    }
    if let Some(latency) = &source.latency {
        registry.register(
            "haier_request_duration_seconds",
            "Time from sending a request to Haier to having read its whole reply, by system and operation",
            latency.clone(),
        );
    }

    registry.register(
        "haier_sync_job_runs",
        "Job runs recorded in haier_sync_logs, by job and status",
        counters(runs.iter().map(|(job, status, count)| {
            (
                labels([("job", job), ("status", status.as_str())]),
                to_u64(*count),
            )
        })),
    );
    registry.register(
        "haier_sync_job_last_duration_seconds",
        "Duration of each job's newest finished run, with its status",
        float_gauges(latest.iter().filter_map(|run| {
            run.duration().map(|d| {
                (
                    labels([("job", &run.job_name), ("status", run.status.as_str())]),
                    d.num_milliseconds() as f64 / 1000.0,
                )
            })
        })),
    );

    let scheduled: Vec<String> = source
        .config
        .iter()
        .flat_map(|c| c.jobs.values())
        .filter_map(|job| match job {
            JobSpec::Sync(job) if job.enabled && crate::scheduler::is_scheduled(job) => {
                Some(job.name.clone())
            }
            _ => None,
        })
        .collect();
    if let Some(health) = &health {
        use crate::health::ProblemKind;
        let judged = |kind: ProblemKind| {
            gauges(scheduled.iter().map(|job| {
                let bad = health
                    .problems
                    .iter()
                    .any(|p| p.kind == kind && p.subject == *job);
                (labels([("job", job)]), i64::from(bad))
            }))
        };
        registry.register(
            "haier_sync_job_overdue",
            "1 while a scheduled job has had no success within twice its interval (as status --check judges), else 0",
            judged(ProblemKind::Overdue),
        );
        registry.register(
            "haier_sync_job_failing",
            "1 while a scheduled job's last three finished runs failed (as status --check judges), else 0",
            judged(ProblemKind::Failing),
        );
    }
    let missed_of = |pick: fn(&crate::scheduler::missed::MissedFires) -> i64| {
        let mut values: Vec<(Labels, i64)> = scheduled
            .iter()
            .filter(|job| !missed.iter().any(|m| m.job_name == **job))
            .map(|job| (labels([("job", job)]), 0))
            .collect();
        values.extend(missed.iter().map(|m| (labels([("job", &m.job_name)]), pick(m))));
        gauges(values)
    };
    registry.register(
        "haier_sync_job_missed_fires",
        "Fires of a job that passed while no daemon ran, as the daemon found them at its start; shown for a day after, else 0",
        missed_of(|m| m.missed_count),
    );
    registry.register(
        "haier_sync_job_caught_up_fires",
        "Of haier_sync_job_missed_fires, the fires run late with trigger catch_up",
        missed_of(|m| m.caught_up_count),
    );

    registry.register(
        "haier_order_outbox_rows",
        "Rows in haier_order_outbox, by status",
        gauges(OutboxStatus::ALL.iter().map(|status| {
            let count = depth.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            (labels([("status", status.as_str())]), count)
        })),
    );
    let (pushes, cancels) = unconfirmed;
    registry.register(
        "haier_sync_orders_unconfirmed",
        "Orders Haier has not answered within confirm_within_ms: pushed with no confirm callback \
         (kind=\"push\"), or a cancel asked with no cancel callback (kind=\"cancel\")",
        gauges([
            (labels([("kind", "push")]), pushes),
            (labels([("kind", "cancel")]), cancels),
        ]),
    );
    let unmatched_gauge = Gauge::<i64>::default();
    unmatched_gauge.set(unmatched);
    registry.register(
        "haier_sync_callbacks_unmatched",
        "Signed callbacks kept because they name no order or several, waiting for `haier-sync outbox attach`",
        unmatched_gauge,
    );
    registry.register(
        "haier_sync_callbacks",
        "Haier callbacks received since start, by outcome (rejected ones over the per-address limit included)",
        counters(
            CallbackOutcome::ALL
                .iter()
                .map(|&o| (labels([("outcome", o.as_str())]), callbacks.get(o))),
        ),
    );
    let store_errors = Counter::<u64>::default();
    store_errors.inc_by(callbacks.internal_errors.load(Ordering::Relaxed));
    registry.register(
        "haier_sync_callback_store_errors",
        "Haier callbacks that could not be stored (answered 500 so that Haier sends them again)",
        store_errors,
    );
    let rejections: [(&str, &str, &[AtomicU64]); 2] = [
        (
            "haier_sync_callback_rejections",
            "Haier callbacks rejected since start, by reason (the reply's code), stored or not",
            &callbacks.rejected,
        ),
        (
            "haier_sync_callback_rejections_not_stored",
            "Rejected unsigned callbacks over the per-address limit: answered 429 and not stored, by reason",
            &callbacks.rejected_not_stored,
        ),
    ];
    for (name, help, counts) in rejections {
        registry.register(
            name,
            help,
            counters(counts.iter().enumerate().map(|(index, count)| {
                (
                    labels([("reason", reason_label(index))]),
                    count.load(Ordering::Relaxed),
                )
            })),
        );
    }

    let mut out = String::new();
    encode(&mut out, &registry).context("Failed to encode the metrics text")?;
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
    fn latencies_fall_into_buckets_per_system_and_operation() {
        let family = new_latency_family();
        family
            .get_or_create(&labels([("system", "ylh"), ("operation", "order_push")]))
            .observe(2.5);
        let mut registry = Registry::default();
        registry.register("haier_request_duration_seconds", "latency", family.clone());
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "haier_request_duration_seconds_bucket{le=\"2.0\",system=\"ylh\",operation=\"order_push\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "haier_request_duration_seconds_bucket{le=\"3.0\",system=\"ylh\",operation=\"order_push\"} 1\n"
            ),
            "{text}"
        );
        assert!(text
            .contains("haier_request_duration_seconds_count{system=\"ylh\",operation=\"order_push\"} 1\n"));
    }
}

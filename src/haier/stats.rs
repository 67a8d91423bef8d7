//! Counters per operation (calls, requests, errors, 429s, retries), request latencies (a
//! histogram per system and operation, defined in `crate::metrics`) and the serde snapshot that
//! `status` and metrics read. It counts; it decides nothing.

use super::breaker::BreakerState;
use super::types::System;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every kind of request the client makes. The names are used in spans, counters and
/// [`HaierError`](super::HaierError)'s `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Products,
    Prices,
    Stock,
    Logistics,
    Balance,
    OrderPush,
    OrderCancel,
    OrderReschedule,
    DeliveryPhotos,
    ExpressNumbers,
    TokenOpenplat,
    TokenYlh,
}

impl Operation {
    pub const ALL: [Operation; 12] = [
        Operation::Products,
        Operation::Prices,
        Operation::Stock,
        Operation::Logistics,
        Operation::Balance,
        Operation::OrderPush,
        Operation::OrderCancel,
        Operation::OrderReschedule,
        Operation::DeliveryPhotos,
        Operation::ExpressNumbers,
        Operation::TokenOpenplat,
        Operation::TokenYlh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Products => "products",
            Operation::Prices => "prices",
            Operation::Stock => "stock",
            Operation::Logistics => "logistics",
            Operation::Balance => "balance",
            Operation::OrderPush => "order_push",
            Operation::OrderCancel => "order_cancel",
            Operation::OrderReschedule => "order_reschedule",
            Operation::DeliveryPhotos => "delivery_photos",
            Operation::ExpressNumbers => "express_numbers",
            Operation::TokenOpenplat => "token_openplat",
            Operation::TokenYlh => "token_ylh",
        }
    }

    /// The system the operation's requests go to.
    pub fn system(self) -> System {
        match self {
            Operation::OrderPush
            | Operation::OrderCancel
            | Operation::OrderReschedule
            | Operation::DeliveryPhotos
            | Operation::ExpressNumbers
            | Operation::TokenYlh => System::Ylh,
            _ => System::Openplat,
        }
    }

    /// The token operation of a system.
    pub fn token_of(system: System) -> Operation {
        match system {
            System::Openplat => Operation::TokenOpenplat,
            System::Ylh => Operation::TokenYlh,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The live counters of one operation.
#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    throttled: AtomicU64,
    retries: AtomicU64,
    slow: AtomicU64,
}

/// Request latencies, by system and operation.
struct Latencies(crate::metrics::LatencyFamily);

impl Default for Latencies {
    fn default() -> Self {
        Self(crate::metrics::new_latency_family())
    }
}

/// What the client counts, shared by every clone of it.
#[derive(Default)]
pub(super) struct Stats {
    counters: [Counters; Operation::ALL.len()],
    latencies: Latencies,
}

impl Stats {
    fn of(&self, op: Operation) -> &Counters {
        &self.counters[op.index()]
    }

    /// A call of `op` started (a token fetch counts as one call of the token operation).
    pub(super) fn call(&self, op: Operation) {
        self.of(op).calls.fetch_add(1, Ordering::Relaxed);
    }

    /// An HTTP request of `op` went out.
    pub(super) fn request(&self, op: Operation) {
        self.of(op).requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A call of `op` failed in the end.
    pub(super) fn error(&self, op: Operation) {
        self.of(op).errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A request of `op` was answered 429.
    pub(super) fn throttled(&self, op: Operation) {
        self.of(op).throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// A request of `op` is repeated after a retryable failure (429 waits are counted apart).
    pub(super) fn retry(&self, op: Operation) {
        self.of(op).retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A reply of `op` was read in full `seconds` after its request was sent.
    pub(super) fn latency(&self, op: Operation, seconds: f64) {
        let labels = vec![
            ("system", op.system().to_string()),
            ("operation", op.as_str().to_owned()),
        ];
        self.latencies.0.get_or_create(&labels).observe(seconds);
    }

    /// The latency histograms (shared: they go on filling).
    pub(super) fn latency_family(&self) -> crate::metrics::LatencyFamily {
        self.latencies.0.clone()
    }

    /// A request of `op` took longer than the slow-call threshold.
    pub(super) fn slow(&self, op: Operation) {
        self.of(op).slow.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot_operations(&self) -> BTreeMap<String, OperationStats> {
        Operation::ALL
            .iter()
            .map(|&op| {
                let c = self.of(op);
                let stats = OperationStats {
                    calls: c.calls.load(Ordering::Relaxed),
                    requests: c.requests.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                    throttled: c.throttled.load(Ordering::Relaxed),
                    retries: c.retries.load(Ordering::Relaxed),
                    slow: c.slow.load(Ordering::Relaxed),
                };
                (op.as_str().to_owned(), stats)
            })
            .collect()
    }
}

/// Counters of one operation since the client was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStats {
    /// Calls made (one call may send several requests).
    pub calls: u64,
    /// HTTP requests sent, every attempt included.
    pub requests: u64,
    /// Calls that failed in the end.
    pub errors: u64,
    /// Requests answered 429.
    pub throttled: u64,
    /// Requests repeated after a timeout, connection error, 408 or 5xx.
    pub retries: u64,
    /// Requests slower than 2 s.
    pub slow: u64,
}

/// The state of one Haier system as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SystemStats {
    /// Token requests sent (the fallback URL included).
    pub token_requests: u64,
    pub breaker: BreakerState,
    /// The configured quota (`rate_limit`).
    pub per_second: u32,
    pub burst: u32,
    /// The requests per second in force: `per_second`, or less after Haier answered 429s
    /// (it climbs back slowly). `None` from a daemon that predates it.
    #[serde(default)]
    pub pace_per_second: Option<f64>,
}

/// A snapshot of the client's counters, for `status` and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientStats {
    /// By operation name (`products`, `stock`, `token_openplat`, …); every operation is present.
    pub operations: BTreeMap<String, OperationStats>,
    pub openplat: SystemStats,
    pub ylh: SystemStats,
}

impl ClientStats {
    /// The counters of one operation (zero when the name is unknown).
    pub fn operation(&self, name: &str) -> OperationStats {
        self.operations.get(name).copied().unwrap_or_default()
    }

    /// The state of one system.
    pub fn system(&self, system: System) -> &SystemStats {
        match system {
            System::Openplat => &self.openplat,
            System::Ylh => &self.ylh,
        }
    }

    /// The counters of all operations added up.
    pub fn total(&self) -> OperationStats {
        self.operations
            .values()
            .fold(OperationStats::default(), |a, b| OperationStats {
                calls: a.calls + b.calls,
                requests: a.requests + b.requests,
                errors: a.errors + b.errors,
                throttled: a.throttled + b.throttled,
                retries: a.retries + b.retries,
                slow: a.slow + b.slow,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_own_counters_and_a_name() {
        let stats = Stats::default();
        stats.request(Operation::Stock);
        stats.request(Operation::Stock);
        stats.throttled(Operation::Stock);
        stats.retry(Operation::OrderPush);
        let snapshot = stats.snapshot_operations();
        assert_eq!(snapshot.len(), Operation::ALL.len());
        assert_eq!(snapshot["stock"].requests, 2);
        assert_eq!(snapshot["stock"].throttled, 1);
        assert_eq!(snapshot["order_push"].retries, 1);
        assert_eq!(snapshot["token_ylh"], OperationStats::default());
        assert_eq!(Operation::TokenYlh.system(), System::Ylh);
        assert_eq!(Operation::token_of(System::Openplat).as_str(), "token_openplat");
    }
}

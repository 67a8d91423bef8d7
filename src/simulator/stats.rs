//! The simulator's counters (requests per endpoint, throttling, injected faults, orders,
//! callbacks) and the [`SimStats`] snapshot that `GET /_sim/stats` returns. Counting only:
//! which request counts where is decided by the handlers and the fault gate.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Which of the two Haier systems an endpoint belongs to (each has its own quota and tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Openplat,
    Ylh,
}

/// Every endpoint of the contract the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    TokenOpenplat,
    Products,
    Prices,
    Stock,
    Logistics,
    Balance,
    TokenYlh,
    OrderPush,
    OrderCancel,
    OrderReschedule,
    DeliveryPhotos,
    ExpressNumbers,
}

impl Endpoint {
    const COUNT: usize = 12;

    pub fn system(self) -> System {
        match self {
            Endpoint::TokenYlh
            | Endpoint::OrderPush
            | Endpoint::OrderCancel
            | Endpoint::OrderReschedule
            | Endpoint::DeliveryPhotos
            | Endpoint::ExpressNumbers => System::Ylh,
            _ => System::Openplat,
        }
    }

    /// Business calls can be failed or hung by the fault knobs; token calls cannot.
    pub fn is_business(self) -> bool {
        !matches!(self, Endpoint::TokenOpenplat | Endpoint::TokenYlh)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: [AtomicU64; Endpoint::COUNT],
    pub throttled: AtomicU64,
    pub faults_failed: AtomicU64,
    pub faults_hung: AtomicU64,
    pub unauthorized: AtomicU64,
    pub business_errors: AtomicU64,
    pub orders_received: AtomicU64,
    pub orders_accepted: AtomicU64,
    pub duplicates_rejected: AtomicU64,
    pub replies_lost: AtomicU64,
    pub orders_cancelled: AtomicU64,
    pub callbacks_sent: AtomicU64,
    pub callbacks_acked: AtomicU64,
    pub callbacks_given_up: AtomicU64,
    pub mutations: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn count_request(&self, endpoint: Endpoint) {
        bump(&self.requests[endpoint as usize]);
    }

    pub fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let req = |e: Endpoint| get(&self.requests[e as usize]);
        let failed = get(&self.faults_failed);
        let hung = get(&self.faults_hung);
        SimStats {
            requests: RequestCounts {
                token_openplat: req(Endpoint::TokenOpenplat),
                products: req(Endpoint::Products),
                prices: req(Endpoint::Prices),
                stock: req(Endpoint::Stock),
                logistics: req(Endpoint::Logistics),
                balance: req(Endpoint::Balance),
                token_ylh: req(Endpoint::TokenYlh),
                order_push: req(Endpoint::OrderPush),
                order_cancel: req(Endpoint::OrderCancel),
                order_reschedule: req(Endpoint::OrderReschedule),
                delivery_photos: req(Endpoint::DeliveryPhotos),
                express_numbers: req(Endpoint::ExpressNumbers),
            },
            throttled: get(&self.throttled),
            faults_injected: failed + hung,
            faults: FaultCounts { failed, hung },
            unauthorized: get(&self.unauthorized),
            business_errors: get(&self.business_errors),
            orders: OrderCounts {
                received: get(&self.orders_received),
                distinct_so_ids: get(&self.orders_accepted),
                duplicates_rejected: get(&self.duplicates_rejected),
                replies_lost: get(&self.replies_lost),
                cancelled: get(&self.orders_cancelled),
            },
            callbacks: CallbackCounts {
                sent: get(&self.callbacks_sent),
                acked: get(&self.callbacks_acked),
                given_up: get(&self.callbacks_given_up),
            },
            mutations: get(&self.mutations),
        }
    }

    pub fn reset(&self) {
        let all = self.requests.iter().chain([
            &self.throttled,
            &self.faults_failed,
            &self.faults_hung,
            &self.unauthorized,
            &self.business_errors,
            &self.orders_received,
            &self.orders_accepted,
            &self.duplicates_rejected,
            &self.replies_lost,
            &self.orders_cancelled,
            &self.callbacks_sent,
            &self.callbacks_acked,
            &self.callbacks_given_up,
            &self.mutations,
        ]);
        for counter in all {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// What `GET /_sim/stats` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Every request that reached an endpoint, throttled, failed and unauthorised ones included.
    pub requests: RequestCounts,
    /// Requests answered 429 by the quota.
    pub throttled: u64,
    /// Business calls failed (5xx) or hung on purpose: `faults.failed + faults.hung`.
    pub faults_injected: u64,
    pub faults: FaultCounts,
    /// Calls answered 401 (missing, bad, expired or revoked token; bad token-call credentials).
    pub unauthorized: u64,
    /// Business replies with `success:false` (PARAM_MISSING, PASSWORD_ERROR, DUPLICATE_SOID, …).
    pub business_errors: u64,
    pub orders: OrderCounts,
    pub callbacks: CallbackCounts,
    /// Mutation steps applied to prices and stock.
    pub mutations: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub token_openplat: u64,
    pub products: u64,
    pub prices: u64,
    pub stock: u64,
    pub logistics: u64,
    pub balance: u64,
    pub token_ylh: u64,
    pub order_push: u64,
    pub order_cancel: u64,
    pub order_reschedule: u64,
    pub delivery_photos: u64,
    pub express_numbers: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    pub failed: u64,
    pub hung: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCounts {
    /// Pushes with a complete body: accepted ones plus rejected duplicates.
    pub received: u64,
    /// Orders accepted, one per `soId`.
    pub distinct_so_ids: u64,
    pub duplicates_rejected: u64,
    /// Pushes stored whose reply was lost on purpose (`lost_reply_*` faults): hung or 504.
    pub replies_lost: u64,
    pub cancelled: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackCounts {
    /// HTTP attempts, retries included.
    pub sent: u64,
    /// Callbacks the receiver acknowledged (HTTP 200 with `success:true`).
    pub acked: u64,
    /// Callbacks dropped after their last attempt went unacknowledged.
    pub given_up: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json_has_the_documented_shape() {
        let counters = Counters::default();
        counters.count_request(Endpoint::OrderPush);
        bump(&counters.faults_failed);
        bump(&counters.faults_hung);
        let json = serde_json::to_value(counters.snapshot()).unwrap();
        assert_eq!(json["requests"]["order_push"], 1);
        assert_eq!(json["requests"]["token_openplat"], 0);
        assert_eq!(json["faults_injected"], 2);
        for key in ["throttled", "orders", "callbacks"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        for key in ["received", "distinct_so_ids", "duplicates_rejected"] {
            assert!(json["orders"].get(key).is_some(), "{key}");
        }
        for key in ["sent", "acked"] {
            assert!(json["callbacks"].get(key).is_some(), "{key}");
        }
        counters.reset();
        assert_eq!(counters.snapshot(), SimStats::default());
    }
}

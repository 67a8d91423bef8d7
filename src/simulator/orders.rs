//! The simulator's order book: every accepted push as received, keyed by `soId`, with Haier's
//! decision on it (taken with an `ExtOrderNo`, or refused), its cancellation, and the logistics
//! timeline a taken order moves along. Validating a push and sending callbacks live in `ylh.rs`
//! and `callbacks.rs`.

use super::units::SimLine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The logistics states a taken order moves through, in order: (stateCode, name, description).
pub(crate) const LOGISTICS_STATES: [(&str, &str, &str); 4] = [
    ("ACCEPTED", "已接单", "仓库已接单，等待出库"),
    ("OUTBOUND", "已出库", "商品已从仓库出库"),
    ("IN_TRANSIT", "运输中", "商品运输中，日日顺物流配送"),
    ("DELIVERED", "已签收", "用户已签收，感谢使用"),
];
/// The state a cancelled order's timeline ends with.
pub(crate) const CANCELLED_STATE: (&str, &str, &str) = ("CANCELLED", "已取消", "订单已取消");

/// An order the simulator accepted, as the inspection API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimOrder {
    pub so_id: String,
    /// Haier's order number (`SO.yyyyMMdd.nnnnnn`) when the order is taken.
    pub ext_order_no: Option<String>,
    /// The confirm callback's `State`: 1 taken, 0 refused.
    pub state: u8,
    /// Why the order was refused.
    pub fail_msg: Option<String>,
    /// A cancel was asked for and granted.
    pub cancelled: bool,
    pub received_at: DateTime<Utc>,
    /// The push body exactly as received.
    pub order: Value,
    /// One line per product and what became of its units, as the cancel callback's `itemList`
    /// says it.
    pub lines: Vec<SimLine>,
    /// The last cancel (or return) request's body, as received.
    pub cancel_request: Option<Value>,
    /// The delivery and installation times of the last reschedule, if any.
    pub rescheduled: Option<Rescheduled>,
}

/// The times a reschedule set (epoch ms, 23:59:59 Beijing time) and how many were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rescheduled {
    pub distribution_time: i64,
    pub install_time: i64,
    pub times: u32,
}

/// Haier's decision on a pushed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Taken { ext_order_no: String },
    Refused { fail_msg: String },
}

/// One item line: product code and quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub product_code: String,
    pub qty: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredOrder {
    pub so_id: String,
    pub raw: Value,
    pub received_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// When Haier confirms (the confirm callback is due, logistics start).
    pub confirm_at: Instant,
    pub confirm_at_wall: DateTime<Utc>,
    pub cancel: Option<CancelRecord>,
    pub rescheduled: Option<Rescheduled>,
    /// One per product: what became of its units (refused, received, returned).
    pub lines: Vec<SimLine>,
    /// The last cancel (or return) request's body, as received.
    pub cancel_request: Option<Value>,
}

/// A cancel request and its outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CancelRecord {
    /// When the cancel takes effect (not before the confirmation).
    pub at: Instant,
    pub at_wall: DateTime<Utc>,
    /// False when the order had been delivered already.
    pub granted: bool,
}

/// One logistics node that has happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogisticsNode {
    pub code: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub at: DateTime<Utc>,
}

impl StoredOrder {
    pub fn ext_order_no(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Taken { ext_order_no } => Some(ext_order_no),
            Outcome::Refused { .. } => None,
        }
    }

    pub fn to_sim_order(&self) -> SimOrder {
        let (state, fail_msg) = match &self.outcome {
            Outcome::Taken { .. } => (1, None),
            Outcome::Refused { fail_msg } => (0, Some(fail_msg.clone())),
        };
        SimOrder {
            so_id: self.so_id.clone(),
            ext_order_no: self.ext_order_no().map(str::to_owned),
            state,
            fail_msg,
            cancelled: self.cancel.is_some_and(|c| c.granted),
            received_at: self.received_at,
            order: self.raw.clone(),
            rescheduled: self.rescheduled,
            lines: self.lines.clone(),
            cancel_request: self.cancel_request.clone(),
        }
    }

    /// The logistics nodes reached by `now`, or `None` before Haier has confirmed a taken
    /// order. State `k` of [`LOGISTICS_STATES`] is reached `k/3` of `delivery_after` after the
    /// confirmation; a granted cancel stops the walk and adds [`CANCELLED_STATE`].
    pub fn logistics(&self, now: Instant, delivery_after: Duration) -> Option<Vec<LogisticsNode>> {
        self.ext_order_no()?;
        if now < self.confirm_at {
            return None;
        }
        let granted_cancel = self.cancel.filter(|c| c.granted);
        let end = match granted_cancel {
            Some(cancel) if cancel.at < now => cancel.at,
            _ => now,
        };
        let elapsed = end.saturating_duration_since(self.confirm_at);
        let mut nodes: Vec<LogisticsNode> = LOGISTICS_STATES
            .iter()
            .enumerate()
            .map(|(k, &(code, name, description))| {
                let offset = delivery_after * k as u32 / 3;
                (
                    offset,
                    LogisticsNode {
                        code,
                        name,
                        description,
                        at: self.confirm_at_wall + offset,
                    },
                )
            })
            .take_while(|(offset, _)| *offset <= elapsed)
            .map(|(_, node)| node)
            .collect();
        if let Some(cancel) = granted_cancel.filter(|c| c.at <= now) {
            let (code, name, description) = CANCELLED_STATE;
            nodes.push(LogisticsNode {
                code,
                name,
                description,
                at: cancel.at_wall,
            });
        }
        Some(nodes)
    }

    /// Whether the order counts as delivered at `now`.
    pub fn is_delivered(&self, now: Instant, delivery_after: Duration) -> bool {
        self.reached(now, delivery_after, "DELIVERED")
    }

    /// Whether the order had left the warehouse at `now`.
    pub fn is_shipped(&self, now: Instant, delivery_after: Duration) -> bool {
        self.reached(now, delivery_after, "OUTBOUND")
    }

    fn reached(&self, now: Instant, delivery_after: Duration, code: &str) -> bool {
        self.logistics(now, delivery_after)
            .is_some_and(|nodes| nodes.iter().any(|n| n.code == code))
    }
}

/// Every accepted order, by `soId` and by `ExtOrderNo`, in the order received.
#[derive(Debug, Default)]
pub(crate) struct OrderBook {
    orders: Vec<StoredOrder>,
    by_so_id: HashMap<String, usize>,
    by_ext_order_no: HashMap<String, usize>,
    /// The last `ExtOrderNo` sequence number handed out.
    last_seq: u64,
}

impl OrderBook {
    pub fn contains(&self, so_id: &str) -> bool {
        self.by_so_id.contains_key(so_id)
    }

    /// The next `ExtOrderNo` for an order confirmed at `confirm_at_wall`.
    pub fn next_ext_order_no(&mut self, confirm_at_wall: DateTime<Utc>) -> String {
        self.last_seq += 1;
        let date = confirm_at_wall
            .with_timezone(&super::callbacks::beijing())
            .format("%Y%m%d");
        format!("SO.{date}.{:06}", self.last_seq)
    }

    /// Stores an order whose `soId` is new (checked with [`OrderBook::contains`]).
    pub fn insert(&mut self, order: StoredOrder) {
        let index = self.orders.len();
        self.by_so_id.insert(order.so_id.clone(), index);
        if let Some(ext) = order.ext_order_no() {
            self.by_ext_order_no.insert(ext.to_owned(), index);
        }
        self.orders.push(order);
    }

    pub fn get(&self, so_id: &str) -> Option<&StoredOrder> {
        self.by_so_id.get(so_id).map(|&i| &self.orders[i])
    }

    pub fn get_mut(&mut self, so_id: &str) -> Option<&mut StoredOrder> {
        self.by_so_id.get(so_id).map(|&i| &mut self.orders[i])
    }

    pub fn by_ext_order_no(&self, ext_order_no: &str) -> Option<&StoredOrder> {
        self.by_ext_order_no.get(ext_order_no).map(|&i| &self.orders[i])
    }

    pub fn by_ext_order_no_mut(&mut self, ext_order_no: &str) -> Option<&mut StoredOrder> {
        self.by_ext_order_no
            .get(ext_order_no)
            .map(|&i| &mut self.orders[i])
    }

    pub fn all(&self) -> &[StoredOrder] {
        &self.orders
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken_order(now: Instant) -> StoredOrder {
        StoredOrder {
            so_id: "SO1".into(),
            raw: serde_json::json!({"soId": "SO1"}),
            received_at: Utc::now(),
            outcome: Outcome::Taken {
                ext_order_no: "SO.20261124.000001".into(),
            },
            confirm_at: now,
            confirm_at_wall: Utc::now(),
            cancel: None,
            rescheduled: None,
            lines: Vec::new(),
            cancel_request: None,
        }
    }

    fn codes(nodes: &[LogisticsNode]) -> Vec<&str> {
        nodes.iter().map(|n| n.code).collect()
    }

    #[test]
    fn logistics_move_through_the_states_up_to_delivered() {
        let start = Instant::now();
        let order = taken_order(start);
        let d = Duration::from_millis(3000);
        assert_eq!(order.logistics(start - Duration::from_millis(1), d), None);
        assert_eq!(codes(&order.logistics(start, d).unwrap()), ["ACCEPTED"]);
        assert_eq!(
            codes(&order.logistics(start + Duration::from_millis(1500), d).unwrap()),
            ["ACCEPTED", "OUTBOUND"]
        );
        assert_eq!(
            codes(&order.logistics(start + Duration::from_millis(3000), d).unwrap()),
            ["ACCEPTED", "OUTBOUND", "IN_TRANSIT", "DELIVERED"]
        );
        assert!(order.is_delivered(start + d, d));
    }

    #[test]
    fn a_cancel_stops_the_walk() {
        let start = Instant::now();
        let mut order = taken_order(start);
        let d = Duration::from_millis(3000);
        order.cancel = Some(CancelRecord {
            at: start + Duration::from_millis(1100),
            at_wall: Utc::now(),
            granted: true,
        });
        let later = order.logistics(start + Duration::from_secs(60), d).unwrap();
        assert_eq!(codes(&later), ["ACCEPTED", "OUTBOUND", "CANCELLED"]);
        assert!(!order.is_delivered(start + Duration::from_secs(60), d));
    }

    #[test]
    fn ext_order_numbers_count_up() {
        let mut book = OrderBook::default();
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 24, 3, 0, 0).unwrap();
        assert_eq!(book.next_ext_order_no(at), "SO.20261124.000001");
        assert_eq!(book.next_ext_order_no(at), "SO.20261124.000002");
    }
}

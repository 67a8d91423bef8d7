//! What becomes of a taken order's units after Haier took it, and the cancel callback (取消订单/
//! 拦截/拒收回调) that reports it: a cancel or a return answered by the order's stage with one of
//! the contract's eight outcomes, a refusal at the door (which Haier starts, with no cancel asked
//! for), a return of some units of which some fail inspection, and the out-of-stock notice.
//!
//! Each order keeps one [`SimLine`] per product (the push's lines of that product added up); a
//! cancel callback's `itemList` is those lines as they are now: current totals, never changes.
//! A unit that never reached the customer (stopped, cancelled, refused at the door) counts in
//! `rejectQty`; once the order reached the door, every other unit counts in `receiveQty`, so
//! `totalQty = receiveQty + rejectQty`; a returned unit that passed inspection counts in
//! `returnQty` too (so `returnQty ≤ receiveQty`).

use super::orders::{Item, StoredOrder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One product of an order and what became of its units, serialised as an `itemList` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimLine {
    pub product_code: String,
    pub total_qty: u64,
    pub receive_qty: u64,
    pub return_qty: u64,
    pub reject_qty: u64,
}

/// The lines of a push: one per product, quantities added up, in the push's order.
pub(crate) fn lines_of(items: &[Item]) -> Vec<SimLine> {
    let mut lines: Vec<SimLine> = Vec::new();
    for item in items {
        match lines.iter_mut().find(|l| l.product_code == item.product_code) {
            Some(line) => line.total_qty += item.qty,
            None => lines.push(SimLine {
                product_code: item.product_code.clone(),
                total_qty: item.qty,
                receive_qty: 0,
                return_qty: 0,
                reject_qty: 0,
            }),
        }
    }
    lines
}

/// The eight outcomes the contract lists for a cancel (or return) request: four refused, four
/// accepted. `POST /_sim/faults {"cancel_outcome": "..."}` forces one; by default the order's
/// stage decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// Refused: signed for more than 7 days ago (签收超七天).
    SignedOverSevenDays,
    /// Refused: being restocked (补货中).
    Restocking,
    /// Refused: left the warehouse and could not be stopped (已出库拦截失败).
    InterceptionFailed,
    /// Refused: signed for within 7 days, the returned goods failed inspection (退回鉴定失败).
    InspectionFailed,
    /// Accepted: restocking failed (补货失败).
    RestockFailed,
    /// Accepted: restocked but not shipped yet (补货成功未出库).
    NotShipped,
    /// Accepted: stopped after leaving the warehouse (已出库拦截成功).
    Intercepted,
    /// Accepted: signed for within 7 days, the return passed inspection (退货鉴定成功).
    ReturnAccepted,
}

impl CancelOutcome {
    /// Every outcome's name, for error messages.
    pub const NAMES: &'static str = "signed_over_seven_days, restocking, interception_failed, \
         inspection_failed, restock_failed, not_shipped, intercepted, return_accepted";

    pub fn accepted(self) -> bool {
        matches!(
            self,
            CancelOutcome::RestockFailed
                | CancelOutcome::NotShipped
                | CancelOutcome::Intercepted
                | CancelOutcome::ReturnAccepted
        )
    }

    /// Haier's words for it (the callback's `FailMsg` when refused).
    pub fn message(self) -> &'static str {
        match self {
            CancelOutcome::SignedOverSevenDays => "签收超七天",
            CancelOutcome::Restocking => "补货中",
            CancelOutcome::InterceptionFailed => "已出库拦截失败",
            CancelOutcome::InspectionFailed => "退回鉴定失败",
            CancelOutcome::RestockFailed => "补货失败",
            CancelOutcome::NotShipped => "补货成功未出库",
            CancelOutcome::Intercepted => "已出库拦截成功",
            CancelOutcome::ReturnAccepted => "退货鉴定成功",
        }
    }

    /// The outcome of a request by the order's stage: not shipped yet → `not_shipped`; left
    /// the warehouse → `intercepted`; delivered (always within 7 days here) → `return_accepted`.
    pub fn by_stage(shipped: bool, delivered: bool) -> Self {
        match (shipped, delivered) {
            (_, true) => CancelOutcome::ReturnAccepted,
            (true, false) => CancelOutcome::Intercepted,
            (false, false) => CancelOutcome::NotShipped,
        }
    }
}

/// The order reached the door: every unit not refused counts as received.
fn reach_door(lines: &mut [SimLine]) {
    for line in lines {
        line.receive_qty = line.total_qty - line.reject_qty;
    }
}

/// Every unit gone back: refused, stopped or returned.
fn all_gone(lines: &[SimLine]) -> bool {
    lines.iter().all(|l| l.reject_qty + l.return_qty >= l.total_qty)
}

/// Applies a cancel outcome to the order's lines; returns the callback's `State` and `FailMsg`.
pub(crate) fn apply_cancel(
    order: &mut StoredOrder,
    outcome: CancelOutcome,
    delivered: bool,
) -> (u8, &'static str) {
    let lines = &mut order.lines;
    if delivered {
        reach_door(lines);
    }
    match outcome {
        CancelOutcome::RestockFailed | CancelOutcome::NotShipped | CancelOutcome::Intercepted => {
            for line in lines.iter_mut() {
                line.receive_qty = 0;
                line.return_qty = 0;
                line.reject_qty = line.total_qty;
            }
        }
        CancelOutcome::ReturnAccepted => {
            reach_door(lines);
            for line in lines.iter_mut() {
                line.return_qty = line.receive_qty;
            }
        }
        CancelOutcome::InspectionFailed | CancelOutcome::SignedOverSevenDays => reach_door(lines),
        CancelOutcome::Restocking | CancelOutcome::InterceptionFailed => {}
    }
    if outcome.accepted() {
        (1, "")
    } else {
        (0, outcome.message())
    }
}

/// A refusal at the door of `qty` units of `product_code`: the order reaches the door, the
/// units are refused. `State` is 1 when no unit of the order is left with the customer, else 2.
pub(crate) fn refuse_at_door(order: &mut StoredOrder, product_code: &str, qty: u64) -> Result<u8, String> {
    let line = find_line(order, product_code)?;
    let open = line.total_qty - line.reject_qty - line.return_qty;
    if qty == 0 || qty > open {
        return Err(format!(
            "qty must be between 1 and {open} (units of {product_code} neither refused nor returned), not {qty}"
        ));
    }
    line.reject_qty += qty;
    reach_door(&mut order.lines);
    Ok(if all_gone(&order.lines) { 1 } else { 2 })
}

/// A return of `qty` received units of `product_code`, `fail_inspection` of which fail
/// inspection and stay with the customer. `State` 0 (退回鉴定失败) when all fail, 2 when some
/// do, else 1.
pub(crate) fn take_back(
    order: &mut StoredOrder,
    product_code: &str,
    qty: u64,
    fail_inspection: u64,
) -> Result<(u8, &'static str), String> {
    if order.lines.iter().all(|l| l.receive_qty == 0) {
        reach_door(&mut order.lines);
    }
    let line = find_line(order, product_code)?;
    let open = line.receive_qty - line.return_qty;
    if qty == 0 || qty > open {
        return Err(format!(
            "qty must be between 1 and {open} (received units of {product_code} not returned), not {qty}"
        ));
    }
    if fail_inspection > qty {
        return Err(format!(
            "fail_inspection must be at most qty ({qty}), not {fail_inspection}"
        ));
    }
    line.return_qty += qty - fail_inspection;
    Ok(match fail_inspection {
        0 => (1, ""),
        n if n == qty => (0, CancelOutcome::InspectionFailed.message()),
        _ => (2, CancelOutcome::InspectionFailed.message()),
    })
}

fn find_line<'a>(order: &'a mut StoredOrder, product_code: &str) -> Result<&'a mut SimLine, String> {
    let codes: Vec<String> = order.lines.iter().map(|l| l.product_code.clone()).collect();
    order
        .lines
        .iter_mut()
        .find(|l| l.product_code == product_code)
        .ok_or_else(|| {
            format!(
                "order {} has no product {product_code} (it has {})",
                order.so_id,
                codes.join(", ")
            )
        })
}

/// The cancel callback's `Data` for the order as it is now.
pub(crate) fn cancel_data(order: &StoredOrder, state: u8, fail_msg: &str) -> Value {
    json!({
        "ExtOrderNo": order.ext_order_no().unwrap_or_default(),
        "PlatformOrderNo": order.so_id,
        "State": state,
        "FailMsg": fail_msg,
        "itemList": order.lines,
    })
}

/// The out-of-stock notice's `Data`, with the key `failMsg` as the document's own example
/// writes it.
pub(crate) fn out_of_stock_data(order: &StoredOrder, fail_msg: &str) -> Value {
    json!({
        "ExtOrderNo": order.ext_order_no().unwrap_or_default(),
        "PlatformOrderNo": order.so_id,
        "State": 1,
        "failMsg": fail_msg,
    })
}

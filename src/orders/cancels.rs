//! What a cancel callback (a cancel, an interception, a return or a refusal at the door) does to
//! an order: its `itemList` checked against the order's lines, the lines' new totals, and the
//! state the lines decide. The rules are listed on [`decide`](super::notices::decide); the
//! statements are in `lines.rs` and `outbox/store.rs`.

use super::lines::{self, LineTotals, OrderLine, Units};
use super::notices::{Decision, Notice};
use super::outbox::OutboxRow;
use super::state::{CancelState, OutboxStatus};

/// What a cancel callback does to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOutcome {
    /// The current totals of the products the callback names.
    pub totals: Vec<LineTotals>,
    /// The order's new status, when it ends (`cancelled` or `returned`); otherwise it stays.
    pub status: Option<OutboxStatus>,
    pub cancel_state: CancelState,
    /// The lines after the callback, or Haier's `FailMsg` when it declined.
    pub detail: String,
    pub haier_order_no: Option<String>,
}

/// The cancel part of [`decide`](super::notices::decide): see its rules.
pub(super) fn decide_cancel(notice: &Notice, row: &OutboxRow, lines: &[OrderLine]) -> Decision {
    let totals = match &notice.items {
        Some(items) => match lines::check_cancel_items(items, lines) {
            Ok(totals) => totals,
            Err(reason) => return Decision::Reject(reason),
        },
        None => Vec::new(),
    };
    let after = lines::with_totals(lines, &totals);
    let lines_change = after != lines;
    let units = Units::of(&after);
    let status = row.status;
    if matches!(status, OutboxStatus::Cancelled | OutboxStatus::Returned) {
        return if notice.state != Some(0) && !lines_change {
            Decision::Duplicate(format!("already {status}"))
        } else {
            Decision::Ignore(format!("the order is {status} already"))
        };
    }
    let partly = |units: Units| {
        if units.returned > 0 {
            CancelState::PartlyReturned
        } else {
            CancelState::PartlyCancelled
        }
    };
    let delivered = row.delivered_at.is_some() || units.received > 0;
    let (new_status, cancel_state, detail) = match notice.state {
        Some(0) => {
            let keep = matches!(
                row.cancel_state,
                Some(CancelState::PartlyCancelled | CancelState::PartlyReturned)
            );
            let state = match row.cancel_state {
                Some(state) if keep => state,
                _ => CancelState::Refused,
            };
            let detail = notice
                .fail_msg
                .clone()
                .unwrap_or_else(|| "declined; no reason given".into());
            (None, state, detail)
        }
        state => {
            let whole = if totals.is_empty() {
                state == Some(1)
            } else {
                (units.ordered > 0 && units.gone() >= units.ordered)
                    || (state == Some(1) && units.gone() == 0)
            };
            let detail = if after.is_empty() {
                notice.fail_msg.clone().unwrap_or_default()
            } else {
                lines::describe(&after)
            };
            if whole && delivered {
                (Some(OutboxStatus::Returned), CancelState::Returned, detail)
            } else if whole {
                (Some(OutboxStatus::Cancelled), CancelState::Full, detail)
            } else {
                (None, partly(units), detail)
            }
        }
    };
    let same = !lines_change
        && new_status.is_none_or(|s| s == status)
        && row.cancel_state == Some(cancel_state)
        && row.cancel_detail.as_deref() == Some(detail.as_str());
    if same {
        return Decision::Duplicate(format!("cancel already recorded as {cancel_state}"));
    }
    Decision::ApplyCancel(CancelOutcome {
        totals,
        status: new_status,
        cancel_state,
        detail,
        haier_order_no: notice.ext_order_no.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::notices::tests::{line, row};
    use crate::orders::notices::{decide, parse_notice, NoticeKind};

    fn cancel(data: &str) -> Notice {
        parse_notice(NoticeKind::Cancel, data).unwrap()
    }

    fn outcome(decision: Decision) -> CancelOutcome {
        match decision {
            Decision::ApplyCancel(outcome) => outcome,
            other => panic!("a cancel to apply, not {other:?}"),
        }
    }

    #[test]
    fn cancels_follow_the_lines() {
        let lines = [line(3)];
        // The whole order stopped before delivery.
        let whole = cancel(
            r#"{"ExtOrderNo":"H1","PlatformOrderNo":"SO-1","State":1,"itemList":[{"productCode":"P","totalQty":3,"rejectQty":3}]}"#,
        );
        let done = outcome(decide(&whole, &row(OutboxStatus::Confirmed), &lines));
        assert_eq!(done.status, Some(OutboxStatus::Cancelled));
        assert_eq!(done.cancel_state, CancelState::Full);
        let mut cancelled = row(OutboxStatus::Cancelled);
        cancelled.cancel_state = Some(CancelState::Full);
        let after = lines::with_totals(&lines, &done.totals);
        assert!(matches!(
            decide(&whole, &cancelled, &after),
            Decision::Duplicate(_)
        ));

        // One unit refused at the door, with no cancel asked for.
        let door = cancel(
            r#"{"PlatformOrderNo":"SO-1","State":2,"itemList":[{"productCode":"P","totalQty":3,"receiveQty":2,"rejectQty":1}]}"#,
        );
        let refused = outcome(decide(&door, &row(OutboxStatus::Confirmed), &lines));
        assert_eq!(
            (refused.status, refused.cancel_state),
            (None, CancelState::PartlyCancelled)
        );
        let mut partly = row(OutboxStatus::Confirmed);
        partly.cancel_state = Some(refused.cancel_state);
        partly.cancel_detail = Some(refused.detail.clone());
        let after = lines::with_totals(&lines, &refused.totals);
        assert!(matches!(decide(&door, &partly, &after), Decision::Duplicate(_)));

        // Then both received units returned: every unit gone from a delivered order.
        let back = cancel(
            r#"{"PlatformOrderNo":"SO-1","State":1,"itemList":[{"productCode":"P","totalQty":3,"receiveQty":2,"returnQty":2,"rejectQty":1}]}"#,
        );
        let returned = outcome(decide(&back, &partly, &after));
        assert_eq!(
            (returned.status, returned.cancel_state),
            (Some(OutboxStatus::Returned), CancelState::Returned)
        );

        // Haier declines: the partly state stays, FailMsg kept.
        let declined = cancel(r#"{"PlatformOrderNo":"SO-1","State":0,"FailMsg":"签收超七天"}"#);
        let kept = outcome(decide(&declined, &partly, &after));
        assert_eq!(
            (kept.status, kept.cancel_state),
            (None, CancelState::PartlyCancelled)
        );
        assert_eq!(kept.detail, "签收超七天");
        let fresh = outcome(decide(&declined, &row(OutboxStatus::Confirmed), &lines));
        assert_eq!(fresh.cancel_state, CancelState::Refused);
    }

    #[test]
    fn a_cancel_breaking_the_quantity_rules_is_rejected() {
        let bad = cancel(
            r#"{"PlatformOrderNo":"SO-1","State":2,"itemList":[{"productCode":"P","totalQty":3,"receiveQty":1,"returnQty":2}]}"#,
        );
        assert_eq!(
            decide(&bad, &row(OutboxStatus::Confirmed), &[line(3)]),
            Decision::Reject("itemList says returnQty 2 for P, above its receiveQty 1".into())
        );
    }
}

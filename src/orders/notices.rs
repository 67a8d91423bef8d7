//! What a verified Haier callback says (`Data`, read leniently) and what it does to an outbox
//! order: confirm → `confirmed`/`refused`; cancel (also a refusal at the door or a return) → its
//! `itemList` checked and written to the order's lines as current totals, and the lines decide
//! `partly_cancelled`, `partly_returned`, `cancelled` or `returned` (State 0 keeps the state and
//! records `FailMsg`); oostock → `out_of_stock` with what it said. Each callback is applied in one
//! transaction together with its `haier_order_events` row, so a replay (same method and data) is
//! recognised and changes nothing. Signature and app key are checked before, in `callback/`;
//! which order a callback means is found in `matching.rs`.

use super::cancels::decide_cancel;
pub use super::cancels::CancelOutcome;
use super::events::{self, NewOrderEvent};
use super::lines::{self, OrderLine};
use super::matching::{self, Matched};
use super::outbox::{self, OutboxRow};
use super::state::{CallbackOutcome, OutboxStatus};
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::Connection;
use md5::{Digest, Md5};
use serde_json::{Map, Value};

pub const METHOD_CONFIRM: &str = "hmm.scm_heorder.confirm";
pub const METHOD_CANCEL: &str = "hmm.scm_heorder.cancel";
pub const METHOD_OUT_OF_STOCK: &str = "hmm.scm_heorder.oostock";

/// Which callback it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Confirm,
    Cancel,
    OutOfStock,
}

impl NoticeKind {
    /// The kind a `Method` names (case-insensitively), or `None` for a method this receiver
    /// does not handle.
    pub fn from_method(method: &str) -> Option<Self> {
        let method = method.trim();
        [
            (METHOD_CONFIRM, NoticeKind::Confirm),
            (METHOD_CANCEL, NoticeKind::Cancel),
            (METHOD_OUT_OF_STOCK, NoticeKind::OutOfStock),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(method))
        .map(|(_, kind)| kind)
    }
}

/// The content of a callback's `Data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    /// The integrator's order number: our `so_id` (or `online_no`).
    pub platform_order_no: String,
    /// `State`: confirm 1 taken / 0 refused; cancel 1 cancelled / 0 not / 2 partly.
    pub state: Option<i64>,
    /// Haier's order number (`ExtOrderNo`), when given.
    pub ext_order_no: Option<String>,
    pub fail_msg: Option<String>,
    /// The cancel callback's `itemList`, as sent.
    pub items: Option<Value>,
}

/// Reads `Data` leniently: a JSON object (or a JSON string holding one), keys in any case,
/// numbers as numbers or text, empty text as absent. The error says what is wrong.
pub fn parse_notice(kind: NoticeKind, data: &str) -> Result<Notice, String> {
    let mut value: Value =
        serde_json::from_str(data.trim()).map_err(|e| format!("Data is not valid JSON: {e}"))?;
    if let Value::String(inner) = &value {
        value = serde_json::from_str(inner.trim())
            .map_err(|e| format!("Data holds a string that is not valid JSON: {e}"))?;
    }
    let Value::Object(fields) = value else {
        return Err("Data must be a JSON object".into());
    };
    let platform_order_no =
        text_field(&fields, "PlatformOrderNo").ok_or_else(|| "Data has no PlatformOrderNo".to_owned())?;
    let state = match field(&fields, "State") {
        None => None,
        Some(v) => Some(integer_of(v).ok_or_else(|| format!("Data.State must be a whole number, not {v}"))?),
    };
    let notice = Notice {
        kind,
        platform_order_no,
        state,
        ext_order_no: text_field(&fields, "ExtOrderNo"),
        fail_msg: text_field(&fields, "FailMsg"),
        items: field(&fields, "itemList").map(|items| match items {
            Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| items.clone()),
            other => other.clone(),
        }),
    };
    match (kind, notice.state) {
        (NoticeKind::Confirm, Some(1)) if notice.ext_order_no.is_none() => {
            Err("Data has State 1 but no ExtOrderNo".into())
        }
        (NoticeKind::Confirm, Some(0 | 1))
        | (NoticeKind::Cancel, Some(0..=2))
        | (NoticeKind::OutOfStock, _) => Ok(notice),
        (_, None) => Err("Data has no State".into()),
        (_, Some(other)) => Err(format!("Data.State {other} is not one this callback can carry")),
    }
}

/// A field by name, ignoring case; `null` and blank text count as absent.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields
        .get(name)
        .or_else(|| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        })
}

fn text_field(fields: &Map<String, Value>, name: &str) -> Option<String> {
    field(fields, name).and_then(|v| match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn integer_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What to do to an order, decided from the notice and the order as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Confirm {
        haier_order_no: String,
    },
    Refuse {
        reason: String,
    },
    /// A cancel callback's outcome: the lines' new totals, and the order's new state.
    ApplyCancel(CancelOutcome),
    RecordOutOfStock {
        haier_order_no: Option<String>,
        detail: String,
    },
    /// Nothing to do: the order says this already.
    Duplicate(String),
    /// Nothing to do: the notice contradicts the order.
    Ignore(String),
    /// Nothing to do: the notice breaks the contract's rules (the reason says which); it is
    /// answered `success:false`.
    Reject(String),
}

/// Decides what a notice does to an order, given its lines (`haier_order_lines`). Rules:
/// - confirm State 1 sets `confirmed` with `ExtOrderNo` unless the order is `confirmed` already
///   (same number: duplicate; another: ignored), `refused`, `cancelled` or `returned` (ignored).
///   A confirm for a `dead`, `pending` or `out_of_stock` row is applied: Haier has the order.
/// - confirm State 0 sets `refused` with `FailMsg` unless the order is `refused` (duplicate),
///   `confirmed`, `cancelled` or `returned` (ignored).
/// - cancel (also a refusal at the door, which comes with no cancel asked for): its `itemList`
///   must keep the rules of [`lines::check_cancel_items`], or it is rejected and changes
///   nothing. Its quantities are written to the lines as current totals. Then, for State 1 and
///   2, the lines decide: every unit refused or returned → `cancelled` (`full`), or `returned`
///   (`returned`) when the order was delivered (`delivered_at`, or units received); some units
///   → `partly_returned` when any was returned, else `partly_cancelled`, the status kept. A
///   State 1 that names no unit gone, or has no `itemList`, cancels the whole order; a State 2
///   with no `itemList` is a partial cancel. State 0:
///   Haier declined; `FailMsg` is kept in `cancel_detail`, the status and any partly state stay
///   (`refused` otherwise). Nothing more after `cancelled` or `returned`.
/// - oostock sets `out_of_stock` with its `State`, `ExtOrderNo` and `FailMsg`, unless the order
///   says so already (duplicate) or is `refused`, `cancelled` or `returned` (ignored).
pub fn decide(notice: &Notice, row: &OutboxRow, lines: &[OrderLine]) -> Decision {
    let status = row.status;
    let ended = matches!(
        status,
        OutboxStatus::Refused | OutboxStatus::Cancelled | OutboxStatus::Returned
    );
    match (notice.kind, notice.state) {
        (NoticeKind::Confirm, Some(1)) => {
            let number = notice.ext_order_no.clone().unwrap_or_default();
            match status {
                OutboxStatus::Confirmed if row.haier_order_no.as_deref() == Some(number.as_str()) => {
                    Decision::Duplicate(format!("already confirmed as {number}"))
                }
                OutboxStatus::Confirmed => Decision::Ignore(format!(
                    "already confirmed as {}; this confirm says {number}",
                    row.haier_order_no.as_deref().unwrap_or("?")
                )),
                _ if ended => Decision::Ignore(format!("the order is {status}; confirm not applied")),
                _ => Decision::Confirm {
                    haier_order_no: number,
                },
            }
        }
        (NoticeKind::Confirm, _) => match status {
            OutboxStatus::Refused => Decision::Duplicate("already refused".into()),
            OutboxStatus::Confirmed | OutboxStatus::Cancelled | OutboxStatus::Returned => {
                Decision::Ignore(format!("the order is {status}; refusal not applied"))
            }
            _ => Decision::Refuse {
                reason: format!(
                    "refused by Haier: {}",
                    notice.fail_msg.as_deref().unwrap_or("no reason given")
                ),
            },
        },
        (NoticeKind::Cancel, _) => decide_cancel(notice, row, lines),
        (NoticeKind::OutOfStock, _) => {
            let detail = format!(
                "State {}; ExtOrderNo {}; FailMsg {}",
                notice.state.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                notice.ext_order_no.as_deref().unwrap_or("-"),
                notice.fail_msg.as_deref().unwrap_or("-"),
            );
            if status == OutboxStatus::OutOfStock && row.out_of_stock_detail.as_deref() == Some(&detail) {
                Decision::Duplicate("out of stock already recorded".into())
            } else if ended {
                Decision::Ignore(format!("the order is {status}; out-of-stock notice not applied"))
            } else {
                Decision::RecordOutOfStock {
                    haier_order_no: notice.ext_order_no.clone(),
                    detail,
                }
            }
        }
    }
}

/// A callback's identity for replay detection: MD5 of its method and its data (re-encoded when
/// it is JSON, so spacing and key order do not matter).
pub fn fingerprint(method: &str, data: &str) -> String {
    let canonical = serde_json::from_str::<Value>(data.trim())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| data.to_owned());
    let mut hasher = Md5::new();
    hasher.update(method.trim().as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// How a verified callback was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub outcome: CallbackOutcome,
    /// The order it concerned, when one was found.
    pub so_id: Option<String>,
    pub detail: String,
}

/// How a callback was received, for its event row.
#[derive(Debug, Clone, Copy)]
pub struct Receipt<'a> {
    pub method: &'a str,
    /// The callback's form fields as JSON.
    pub raw: &'a str,
    pub fingerprint: &'a str,
    pub received_at: NaiveDateTime,
    /// `TimeStamp` minus `received_at`, in seconds; `None` when it was missing or unreadable.
    pub clock_skew_secs: Option<i64>,
    /// Something to add to the event's detail (an unreadable `TimeStamp`).
    pub note: Option<&'a str>,
}

/// Finds the order a verified notice means, applies the notice to it and stores the event, in one
/// transaction. A notice that names no order, or several, is stored as `unmatched`.
pub fn apply_notice(
    conn: &mut DbConnection,
    notice: &Notice,
    receipt: &Receipt<'_>,
) -> diesel::QueryResult<Handled> {
    conn.transaction(|conn| {
        let now = receipt.received_at;
        let handled = match matching::lock_matching_order(conn, notice, receipt.fingerprint)? {
            Matched::Unmatched(detail) => Handled {
                outcome: CallbackOutcome::Unmatched,
                so_id: None,
                detail,
            },
            Matched::Order(row) => {
                let (outcome, detail) = apply_to_order(conn, notice, &row, receipt.fingerprint, now)?;
                crate::shop::record(conn, &row.so_id, crate::shop::EventSource::Callback, now)?;
                Handled {
                    outcome,
                    so_id: Some(row.so_id.clone()),
                    detail,
                }
            }
        };
        let state = notice.state.map(|s| s.to_string());
        let detail = match receipt.note {
            Some(note) => format!("{}; {note}", handled.detail),
            None => handled.detail.clone(),
        };
        events::insert_event(
            conn,
            &NewOrderEvent {
                so_id: handled.so_id.as_deref(),
                method: Some(receipt.method),
                platform_order_no: Some(&notice.platform_order_no),
                state: state.as_deref(),
                outcome: handled.outcome,
                detail: Some(&detail),
                raw: receipt.raw,
                fingerprint: Some(receipt.fingerprint),
                received_at: now,
                clock_skew_secs: receipt.clock_skew_secs,
                ext_order_no: notice.ext_order_no.as_deref(),
            },
        )?;
        Ok(handled)
    })
}

/// Applies a notice to the order it means (`row`, locked by the caller's transaction): nothing
/// when the same callback was applied before, else what [`decide`] says. The receiver and
/// `outbox attach` both apply through here.
pub(crate) fn apply_to_order(
    conn: &mut DbConnection,
    notice: &Notice,
    row: &OutboxRow,
    fingerprint: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<(CallbackOutcome, String)> {
    // An order pushed before its lines were kept, or whose confirm overtook the push's own
    // reply, gets them now.
    lines::record_ordered_lines(conn, &row.so_id, &row.payload, now)?;
    if events::was_applied(conn, fingerprint)? {
        return Ok((
            CallbackOutcome::Duplicate,
            "the same callback was applied before".into(),
        ));
    }
    let order_lines = lines::lines_of(conn, &row.so_id)?;
    execute(conn, row, decide(notice, row, &order_lines), now)
}

/// Carries out a decision; returns the outcome and what to record about it.
fn execute(
    conn: &mut DbConnection,
    row: &OutboxRow,
    decision: Decision,
    now: NaiveDateTime,
) -> diesel::QueryResult<(CallbackOutcome, String)> {
    Ok(match decision {
        Decision::Confirm { haier_order_no } => {
            outbox::set_confirmed(conn, row.id, &haier_order_no, now)?;
            (
                CallbackOutcome::Applied,
                format!("{} → confirmed as {haier_order_no}", row.status),
            )
        }
        Decision::Refuse { reason } => {
            outbox::set_refused(conn, row.id, &reason, now)?;
            (
                CallbackOutcome::Applied,
                format!("{} → refused: {reason}", row.status),
            )
        }
        Decision::ApplyCancel(outcome) => {
            for totals in &outcome.totals {
                lines::write_totals(conn, &row.so_id, totals, now)?;
            }
            let state = outcome.cancel_state;
            match outcome.status {
                Some(status) => {
                    outbox::set_cancelled(
                        conn,
                        row.id,
                        status,
                        state,
                        outcome.haier_order_no.as_deref(),
                        &outcome.detail,
                        now,
                    )?;
                    (
                        CallbackOutcome::Applied,
                        format!("{} → {status} ({state}): {}", row.status, outcome.detail),
                    )
                }
                None => {
                    outbox::set_cancel_state(conn, row.id, state, &outcome.detail, now)?;
                    (
                        CallbackOutcome::Applied,
                        format!("{} stays; cancel {state}: {}", row.status, outcome.detail),
                    )
                }
            }
        }
        Decision::RecordOutOfStock {
            haier_order_no,
            detail,
        } => {
            outbox::set_out_of_stock(conn, row.id, haier_order_no.as_deref(), &detail, now)?;
            (
                CallbackOutcome::Applied,
                format!("{} → out_of_stock: {detail}", row.status),
            )
        }
        Decision::Duplicate(why) => (CallbackOutcome::Duplicate, why),
        Decision::Ignore(why) => (CallbackOutcome::Ignored, why),
        Decision::Reject(why) => (CallbackOutcome::Rejected, why),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn row(status: OutboxStatus) -> OutboxRow {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        OutboxRow {
            id: 1,
            so_id: "SO-1".into(),
            online_no: "ON-1".into(),
            payload: "{}".into(),
            status,
            attempts: 1,
            next_attempt_at: t,
            locked_by: None,
            locked_until: None,
            last_error: None,
            haier_order_no: None,
            pushed_at: None,
            confirmed_at: None,
            delivered_at: None,
            created_at: t,
            updated_at: t,
            cancel_state: None,
            cancel_detail: None,
            out_of_stock_at: None,
            push_unseen_at: None,
            cancel_requested_at: None,
            out_of_stock_detail: None,
        }
    }

    pub(crate) fn line(ordered: i64) -> OrderLine {
        OrderLine {
            id: 1,
            so_id: "SO-1".into(),
            product_code: "P".into(),
            ordered_qty: ordered,
            received_qty: 0,
            rejected_qty: 0,
            returned_qty: 0,
            updated_at: chrono::NaiveDateTime::default(),
        }
    }

    fn confirm(data: &str) -> Notice {
        parse_notice(NoticeKind::Confirm, data).unwrap()
    }

    #[test]
    fn data_is_read_leniently() {
        let n =
            confirm(r#"{"ExtOrderNo":"SO.20261124.000001","PlatformOrderNo":"SO-1","State":1,"FailMsg":""}"#);
        assert_eq!(n.platform_order_no, "SO-1");
        assert_eq!(n.state, Some(1));
        assert_eq!(n.ext_order_no.as_deref(), Some("SO.20261124.000001"));
        assert_eq!(n.fail_msg, None);
        // Keys in another case, State as text, Data encoded twice.
        let twice =
            serde_json::to_string(r#"{"extOrderNo":"X","platformOrderNo":"SO-1","state":"1"}"#).unwrap();
        assert_eq!(confirm(&twice).ext_order_no.as_deref(), Some("X"));
        let cancel = parse_notice(
            NoticeKind::Cancel,
            r#"{"PlatformOrderNo":"SO-1","State":"2","itemList":[{"productCode":"P","totalQty":2,"receiveQty":1,"returnQty":0,"rejectQty":1}]}"#,
        )
        .unwrap();
        assert_eq!(cancel.state, Some(2));
        assert!(cancel.items.unwrap().is_array());
    }

    #[test]
    fn malformed_data_is_refused_with_the_reason() {
        let err = |kind, data| parse_notice(kind, data).unwrap_err();
        assert!(err(NoticeKind::Confirm, "{nope").starts_with("Data is not valid JSON"));
        assert_eq!(err(NoticeKind::Confirm, "[1]"), "Data must be a JSON object");
        assert_eq!(
            err(NoticeKind::Confirm, r#"{"State":1}"#),
            "Data has no PlatformOrderNo"
        );
        assert_eq!(
            err(NoticeKind::Confirm, r#"{"PlatformOrderNo":"SO-1"}"#),
            "Data has no State"
        );
        assert_eq!(
            err(NoticeKind::Confirm, r#"{"PlatformOrderNo":"SO-1","State":1}"#),
            "Data has State 1 but no ExtOrderNo"
        );
        assert_eq!(
            err(NoticeKind::Confirm, r#"{"PlatformOrderNo":"SO-1","State":"yes"}"#),
            "Data.State must be a whole number, not \"yes\""
        );
        assert_eq!(
            err(NoticeKind::Confirm, r#"{"PlatformOrderNo":"SO-1","State":2}"#),
            "Data.State 2 is not one this callback can carry"
        );
    }

    #[test]
    fn a_confirm_applies_once_and_never_over_a_cancel() {
        let n = confirm(r#"{"ExtOrderNo":"H1","PlatformOrderNo":"SO-1","State":1}"#);
        for status in [
            OutboxStatus::Pending,
            OutboxStatus::Sending,
            OutboxStatus::Pushed,
            OutboxStatus::Dead,
        ] {
            assert_eq!(
                decide(&n, &row(status), &[]),
                Decision::Confirm {
                    haier_order_no: "H1".into()
                },
                "from {status}"
            );
        }
        let mut confirmed = row(OutboxStatus::Confirmed);
        confirmed.haier_order_no = Some("H1".into());
        assert!(matches!(decide(&n, &confirmed, &[]), Decision::Duplicate(_)));
        confirmed.haier_order_no = Some("H2".into());
        assert!(matches!(decide(&n, &confirmed, &[]), Decision::Ignore(_)));
        assert!(matches!(
            decide(&n, &row(OutboxStatus::Cancelled), &[]),
            Decision::Ignore(_)
        ));
    }

    #[test]
    fn a_refusal_keeps_the_fail_message() {
        let n = confirm(r#"{"PlatformOrderNo":"SO-1","State":0,"FailMsg":"商品不可采"}"#);
        assert_eq!(
            decide(&n, &row(OutboxStatus::Pushed), &[]),
            Decision::Refuse {
                reason: "refused by Haier: 商品不可采".into()
            }
        );
        assert!(matches!(
            decide(&n, &row(OutboxStatus::Refused), &[]),
            Decision::Duplicate(_)
        ));
        assert!(matches!(
            decide(&n, &row(OutboxStatus::Confirmed), &[]),
            Decision::Ignore(_)
        ));
    }

    #[test]
    fn out_of_stock_is_a_status_until_a_confirm() {
        let oos = parse_notice(
            NoticeKind::OutOfStock,
            r#"{"ExtOrderNo":"H1","PlatformOrderNo":"SO-1","State":1,"failMsg":"缺货"}"#,
        )
        .unwrap();
        let Decision::RecordOutOfStock { detail, .. } = decide(&oos, &row(OutboxStatus::Pushed), &[]) else {
            panic!("recorded");
        };
        assert_eq!(detail, "State 1; ExtOrderNo H1; FailMsg 缺货");
        let mut out = row(OutboxStatus::OutOfStock);
        out.out_of_stock_detail = Some(detail);
        assert!(matches!(decide(&oos, &out, &[]), Decision::Duplicate(_)));
        let n = confirm(r#"{"ExtOrderNo":"H1","PlatformOrderNo":"SO-1","State":1}"#);
        assert!(matches!(decide(&n, &out, &[]), Decision::Confirm { .. }));
    }

    #[test]
    fn fingerprints_ignore_spacing_and_key_order() {
        let a = fingerprint(METHOD_CONFIRM, r#"{"State":1,"PlatformOrderNo":"SO-1"}"#);
        let b = fingerprint(METHOD_CONFIRM, r#"{ "PlatformOrderNo" : "SO-1", "State" : 1 }"#);
        let c = fingerprint(METHOD_CANCEL, r#"{"State":1,"PlatformOrderNo":"SO-1"}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

//! Which outbox order a verified callback means, and attaching a callback that named none (or
//! several) to the right order by hand. It owns no table: the outbox's statements are in
//! `outbox/store.rs`, the events' in `events.rs`; what a callback does to an order is decided
//! and applied in `notices.rs`, the same code for a matched and an attached callback.
//!
//! The contract never says whether Haier's `PlatformOrderNo` is our `soId` or the shop's
//! `onlineNo`, so a callback is matched, in this order, by:
//! 1. `PlatformOrderNo` = `so_id` (unique);
//! 2. its `ExtOrderNo` = the `haier_order_no` of an order Haier confirmed before (a cancel or
//!    out-of-stock notice, or a confirm sent again);
//! 3. `PlatformOrderNo` = `online_no`, when exactly one order has it;
//! 4. failing those, the order an operator attached a copy of the same callback to (Haier sends
//!    an unacknowledged callback again, and a refusal carries no `ExtOrderNo` to match by).
//!
//! One indexed query each, the first that names exactly one order wins. A callback that matches
//! none, or several, is kept as `unmatched` and answered `success:false`; an operator attaches it
//! with `haier-sync outbox attach EVENT_ID SO_ID`.

use super::events::{self, OrderEvent};
use super::notices::{self, Notice, NoticeKind};
use super::outbox::{self, OrderKey, OrderMatch, OutboxRow};
use super::state::CallbackOutcome;
use crate::db::{self, Db, DbConnection};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use diesel::Connection;
use serde_json::Value;

/// What the lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The one order meant, locked for the rest of the transaction.
    Order(Box<OutboxRow>),
    /// No order, or several: why, for the event's detail and the reply.
    Unmatched(String),
}

/// Finds the order `notice` (with this `fingerprint`) means (see the module doc) and locks it.
/// Must run inside the callback's transaction.
pub fn lock_matching_order(
    conn: &mut DbConnection,
    notice: &Notice,
    fingerprint: &str,
) -> diesel::QueryResult<Matched> {
    let number = notice.platform_order_no.as_str();
    if let OrderMatch::Found(row) = outbox::lock_order_by(conn, OrderKey::SoId(number))? {
        return Ok(Matched::Order(row));
    }
    let mut tried = vec![format!("no order has soId {number}")];
    if let Some(ext) = notice.ext_order_no.as_deref() {
        match outbox::lock_order_by(conn, OrderKey::HaierOrderNo(ext))? {
            OrderMatch::Found(row) => return Ok(Matched::Order(row)),
            OrderMatch::NotFound => tried.push(format!("none has Haier order no. {ext}")),
            OrderMatch::Ambiguous(n) => tried.push(format!("{n} orders have Haier order no. {ext}")),
        }
    }
    let by_online_no = outbox::lock_order_by(conn, OrderKey::OnlineNo(number))?;
    if let OrderMatch::Found(row) = by_online_no {
        return Ok(Matched::Order(row));
    }
    if let Some(so_id) = events::attached_order_of(conn, fingerprint)? {
        if let OrderMatch::Found(row) = outbox::lock_order_by(conn, OrderKey::SoId(&so_id))? {
            return Ok(Matched::Order(row));
        }
    }
    match by_online_no {
        OrderMatch::Found(row) => Ok(Matched::Order(row)),
        OrderMatch::NotFound => {
            tried.push(format!("none has onlineNo {number}"));
            Ok(Matched::Unmatched(tried.join("; ")))
        }
        OrderMatch::Ambiguous(n) => {
            tried.push(format!(
                "{n} orders share onlineNo {number}, so which one is meant is unknown"
            ));
            Ok(Matched::Unmatched(format!(
                "{}; kept for `haier-sync outbox attach`",
                tried.join("; ")
            )))
        }
    }
}

/// What [`attach_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attached {
    /// The callback was applied to the order, as if it had matched: its outcome and detail, and
    /// how many stored copies of the same callback (Haier's retries) were attached with it.
    Done {
        outcome: CallbackOutcome,
        detail: String,
        copies: usize,
    },
    /// It was attached before (to `so_id`); nothing changed.
    AlreadyAttached {
        so_id: String,
        at: NaiveDateTime,
        outcome: CallbackOutcome,
    },
    EventNotFound,
    /// The event is not an unmatched callback (it was applied, rejected, …).
    NotUnmatched {
        outcome: CallbackOutcome,
    },
    OrderNotFound,
    /// The stored callback cannot be read back as a notice (should not happen: only notices
    /// that were read become unmatched).
    Unreadable(String),
}

/// Applies unmatched callback `event_id` to order `so_id` exactly as if it had matched it (the
/// same code as the receiver's, so a replay check, the decision and the event change commit in
/// one transaction), and records on the event that it was attached.
pub fn attach_event(
    conn: &mut DbConnection,
    event_id: i64,
    so_id: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<Attached> {
    conn.transaction(|conn| {
        if !events::lock_unmatched(conn, event_id)? {
            return Ok(match events::find_event(conn, event_id)? {
                None => Attached::EventNotFound,
                Some(OrderEvent {
                    attached_at: Some(at),
                    so_id: Some(so_id),
                    outcome,
                    ..
                }) => Attached::AlreadyAttached { so_id, at, outcome },
                Some(event) => Attached::NotUnmatched {
                    outcome: event.outcome,
                },
            });
        }
        let Some(event) = events::find_event(conn, event_id)? else {
            return Ok(Attached::EventNotFound);
        };
        let (notice, fingerprint) = match notice_of(&event) {
            Ok(found) => found,
            Err(reason) => return Ok(Attached::Unreadable(reason)),
        };
        let row = match outbox::lock_order_by(conn, OrderKey::SoId(so_id))? {
            OrderMatch::Found(row) => row,
            OrderMatch::NotFound | OrderMatch::Ambiguous(_) => return Ok(Attached::OrderNotFound),
        };
        let (outcome, detail) = notices::apply_to_order(conn, &notice, &row, &fingerprint, now)?;
        crate::shop::record(conn, so_id, crate::shop::EventSource::Replay, now)?;
        let detail = format!("attached to {so_id} by an operator: {detail}");
        let copies = events::mark_attached(conn, event_id, so_id, outcome, &detail, now)?;
        Ok(Attached::Done {
            outcome,
            detail,
            copies,
        })
    })
}

/// [`attach_event`] on the pool, now.
pub async fn attach(db: &Db, event_id: i64, so_id: &str) -> anyhow::Result<Attached> {
    let so_id = so_id.to_owned();
    db.run(move |conn| Ok(attach_event(conn, event_id, &so_id, db::now_utc())?))
        .await
        .with_context(|| format!("Failed to attach callback {event_id}"))
}

/// The notice a stored callback carries, read again from its form fields, and its fingerprint.
fn notice_of(event: &OrderEvent) -> Result<(Notice, String), String> {
    let fields: Value =
        serde_json::from_str(&event.raw).map_err(|e| format!("its stored form is not JSON: {e}"))?;
    let field = |name: &str| {
        fields
            .as_object()
            .and_then(|map| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_owned)
    };
    let method = field("Method").ok_or("its stored form has no Method")?;
    let data = field("Data").ok_or("its stored form has no Data")?;
    let kind = NoticeKind::from_method(&method)
        .ok_or_else(|| format!("Method {method} is not one this receiver handles"))?;
    let notice = notices::parse_notice(kind, &data)?;
    let fingerprint = event
        .fingerprint
        .clone()
        .unwrap_or_else(|| notices::fingerprint(&method, &data));
    Ok((notice, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::TestDb;
    use crate::orders::notices::Receipt;

    async fn insert(db: &Db, so_id: &'static str, online_no: &'static str) {
        db.run(move |conn| Ok(outbox::insert_order(conn, so_id, online_no, "{}")?))
            .await
            .unwrap();
    }

    fn confirm(platform_order_no: &str, ext: &str) -> Notice {
        let data = format!(r#"{{"ExtOrderNo":"{ext}","PlatformOrderNo":"{platform_order_no}","State":1}}"#);
        notices::parse_notice(NoticeKind::Confirm, &data).unwrap()
    }

    fn receive(conn: &mut DbConnection, notice: &Notice) -> notices::Handled {
        let data = format!(
            r#"{{"ExtOrderNo":"{}","PlatformOrderNo":"{}","State":{}}}"#,
            notice.ext_order_no.as_deref().unwrap_or(""),
            notice.platform_order_no,
            notice.state.unwrap_or(1)
        );
        let raw = serde_json::json!({"Method": notices::METHOD_CONFIRM, "Data": data}).to_string();
        let fingerprint = notices::fingerprint(notices::METHOD_CONFIRM, &data);
        let receipt = Receipt {
            method: notices::METHOD_CONFIRM,
            raw: &raw,
            fingerprint: &fingerprint,
            received_at: db::now_utc(),
            clock_skew_secs: Some(0),
            note: None,
        };
        notices::apply_notice(conn, notice, &receipt).unwrap()
    }

    #[tokio::test]
    async fn so_id_then_haier_number_then_a_unique_online_no() {
        let test = TestDb::new().await;
        insert(&test.db, "SO-1", "ON-1").await;
        insert(&test.db, "SO-2", "ON-2").await;
        insert(&test.db, "SO-3", "ON-2").await;
        test.db
            .run(|conn| {
                // By onlineNo, the only order that has it.
                let handled = receive(conn, &confirm("ON-1", "H1"));
                assert_eq!(
                    (handled.outcome, handled.so_id.as_deref()),
                    (CallbackOutcome::Applied, Some("SO-1"))
                );
                // A later notice naming the shared onlineNo finds the order by Haier's number.
                let handled = receive(conn, &confirm("ON-9", "H1"));
                assert_eq!(handled.so_id.as_deref(), Some("SO-1"));
                // Two orders share ON-2: unmatched, with the reason.
                let handled = receive(conn, &confirm("ON-2", "H2"));
                assert_eq!(handled.outcome, CallbackOutcome::Unmatched);
                assert!(
                    handled.detail.contains("2 orders share onlineNo ON-2"),
                    "{}",
                    handled.detail
                );
                // By soId first, even when the number is someone's onlineNo.
                let handled = receive(conn, &confirm("SO-3", "H3"));
                assert_eq!(handled.so_id.as_deref(), Some("SO-3"));
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refusal_sent_again_after_it_was_attached_finds_its_order() {
        let test = TestDb::new().await;
        insert(&test.db, "SO-2", "ON-2").await;
        insert(&test.db, "SO-3", "ON-2").await;
        test.db
            .run(|conn| {
                let refusal = notices::parse_notice(
                    NoticeKind::Confirm,
                    r#"{"PlatformOrderNo":"ON-2","State":0,"FailMsg":"no"}"#,
                )
                .unwrap();
                assert_eq!(receive(conn, &refusal).outcome, CallbackOutcome::Unmatched);
                let id = events::list_events(conn, true, None, 1)?[0].id;
                let attached = attach_event(conn, id, "SO-3", db::now_utc())?;
                assert!(matches!(
                    attached,
                    Attached::Done {
                        outcome: CallbackOutcome::Applied,
                        ..
                    }
                ));
                // Haier sends it again: it is the callback attached to SO-3, so acknowledged.
                let again = receive(conn, &refusal);
                assert_eq!(
                    (again.outcome, again.so_id.as_deref()),
                    (CallbackOutcome::Duplicate, Some("SO-3"))
                );
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unmatched_callback_is_attached_once() {
        let test = TestDb::new().await;
        insert(&test.db, "SO-2", "ON-2").await;
        insert(&test.db, "SO-3", "ON-2").await;
        test.db
            .run(|conn| {
                receive(conn, &confirm("ON-2", "H2"));
                receive(conn, &confirm("ON-2", "H2"));
                let list = events::list_events(conn, true, None, 10)?;
                assert_eq!(list.len(), 2);
                let id = list[1].id;
                let now = db::now_utc();
                assert_eq!(attach_event(conn, id, "SO-404", now)?, Attached::OrderNotFound);
                let Attached::Done { outcome, copies, .. } = attach_event(conn, id, "SO-2", now)? else {
                    panic!("attached");
                };
                assert_eq!((outcome, copies), (CallbackOutcome::Applied, 1));
                let row = outbox::find_by_so_id(conn, "SO-2")?.unwrap();
                assert_eq!(row.haier_order_no.as_deref(), Some("H2"));
                assert!(matches!(
                    attach_event(conn, id, "SO-2", now)?,
                    Attached::AlreadyAttached { .. }
                ));
                assert_eq!(events::count_unmatched(conn)?, 0);
                assert_eq!(attach_event(conn, 9_999, "SO-2", now)?, Attached::EventNotFound);
                Ok(())
            })
            .await
            .unwrap();
    }
}

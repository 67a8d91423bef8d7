//! What an operator does to orders by hand (`outbox retry`, `outbox cancel`): send a dead order
//! (or every dead order a filter names) again, and cancel an order, here when Haier never had it, else by asking Haier. A return of a
//! delivered order (within 7 days of signing) is asked of Haier the same way: its answer comes
//! in the cancel callback, with the units taken back.

use super::outbox;
use super::state::OutboxStatus;
use crate::db::{self, Db, DbConnection};
use crate::haier::{CancelRequest, HaierClient, HaierError};
use crate::shop::EventSource;
use anyhow::Context as _;
use chrono::NaiveDateTime;
use diesel::Connection as _;

/// What [`retry_order`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// The order is `pending` again, its attempts reset: the poller checks and pushes it.
    Pending,
    NotFound,
    /// The order is in another status: only a `dead` order can be retried.
    NotDead {
        status: OutboxStatus,
    },
}

/// Moves a `dead` order back to `pending`, due now, with its attempts reset.
pub async fn retry_order(db: &Db, so_id: &str) -> anyhow::Result<Retried> {
    let so_id = so_id.to_owned();
    db.run(move |conn| {
        if retry_and_record(conn, &so_id, db::now_utc())? {
            return Ok(Retried::Pending);
        }
        Ok(match outbox::find_by_so_id(conn, &so_id)? {
            None => Retried::NotFound,
            Some(row) => Retried::NotDead { status: row.status },
        })
    })
    .await
    .context("Failed to retry the order")
}

/// Which `dead` orders `outbox retry --status dead` means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadFilter {
    /// Only orders that went dead at or after this time (UTC).
    pub since: Option<chrono::NaiveDateTime>,
    /// Only orders whose `last_error` contains this text, in any letter case.
    pub error_like: Option<String>,
}

impl DeadFilter {
    fn matches(&self, last_error: Option<&str>) -> bool {
        match &self.error_like {
            None => true,
            Some(text) => last_error.is_some_and(|error| error.to_lowercase().contains(&text.to_lowercase())),
        }
    }
}

/// The `dead` orders `filter` means (soIds, oldest first). With `dry_run` nothing changes; else
/// each is moved back to `pending` as [`retry_order`] does, in one transaction, and the soIds
/// returned are those moved (an order a concurrent command moved first is left out).
pub async fn retry_dead_orders(db: &Db, filter: DeadFilter, dry_run: bool) -> anyhow::Result<Vec<String>> {
    db.run(move |conn| {
        conn.transaction(|conn| {
            let chosen: Vec<String> = outbox::dead_orders_since(conn, filter.since)?
                .into_iter()
                .filter(|(_, last_error)| filter.matches(last_error.as_deref()))
                .map(|(so_id, _)| so_id)
                .collect();
            if dry_run {
                return Ok(chosen);
            }
            let now = db::now_utc();
            let mut retried = Vec::with_capacity(chosen.len());
            for so_id in chosen {
                if retry_and_record(conn, &so_id, now)? {
                    retried.push(so_id);
                }
            }
            Ok(retried)
        })
    })
    .await
    .context("Failed to retry the dead orders")
}

/// What [`cancel_order`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// Haier took the request (`cancel_state = requested`); its callback brings the outcome.
    Requested,
    /// The order never reached Haier: cancelled in the outbox (`cancel_state = local`).
    Local,
    /// Haier declined the request (`data:false`).
    Declined,
    NotFound,
    /// The order is being pushed right now, or is refused, cancelled or returned already.
    NotCancellable {
        status: OutboxStatus,
    },
}

/// Cancels an order: a `pending` one in the outbox only (it is never sent); a pushed, confirmed,
/// out-of-stock or dead one by asking Haier, with the `sourceSystem` it was pushed with (from its
/// payload). A confirmed order that was delivered is thereby asked back (a return). A dead order
/// Haier does not know (`ORDER_NOT_FOUND`) is cancelled in the outbox.
pub async fn cancel_order(
    db: &Db,
    client: &HaierClient,
    so_id: &str,
    reason: &str,
) -> anyhow::Result<Cancelled> {
    let (id, why) = (so_id.to_owned(), reason.to_owned());
    let (row, cancelled_here) = db
        .run(move |conn| {
            let cancelled = cancel_here_and_record(conn, &id, &[OutboxStatus::Pending], &why)?;
            Ok((outbox::find_by_so_id(conn, &id)?, cancelled))
        })
        .await
        .context("Failed to read the order to cancel")?;
    let Some(row) = row else {
        return Ok(Cancelled::NotFound);
    };
    if cancelled_here {
        return Ok(Cancelled::Local);
    }
    if !matches!(
        row.status,
        OutboxStatus::Pushed | OutboxStatus::Confirmed | OutboxStatus::OutOfStock | OutboxStatus::Dead
    ) {
        return Ok(Cancelled::NotCancellable { status: row.status });
    }
    let request = CancelRequest {
        so_id: so_id.to_owned(),
        cancel_time_ms: chrono::Utc::now().timestamp_millis(),
        reason: reason.to_owned(),
        source_system: pushed_source_system(&row.payload),
    };
    let (id, why) = (so_id.to_owned(), reason.to_owned());
    match client.cancel_order(&request).await {
        Ok(true) => {
            db.run(move |conn| {
                Ok(conn.transaction(|conn| {
                    let now = db::now_utc();
                    let recorded = outbox::record_cancel_request(conn, &id, &why, now)?;
                    crate::shop::record(conn, &id, EventSource::Operator, now)?;
                    diesel::QueryResult::Ok(recorded)
                })?)
            })
            .await
            .context("Failed to record the cancel request")?;
            Ok(Cancelled::Requested)
        }
        Ok(false) => Ok(Cancelled::Declined),
        Err(HaierError::OrderNotFound { .. }) if row.status == OutboxStatus::Dead => {
            let why = format!("{why} (Haier never received the order)");
            let from = [OutboxStatus::Pending, OutboxStatus::Dead];
            db.run(move |conn| Ok(cancel_here_and_record(conn, &id, &from, &why)?))
                .await
                .context("Failed to record the cancellation")?;
            Ok(Cancelled::Local)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("Failed to ask Haier to cancel order {so_id}"))),
    }
}

/// [`outbox::retry_dead_order`] with the shop's event, in one transaction.
fn retry_and_record(conn: &mut DbConnection, so_id: &str, now: NaiveDateTime) -> diesel::QueryResult<bool> {
    conn.transaction(|conn| {
        let retried = outbox::retry_dead_order(conn, so_id, now)?;
        if retried {
            crate::shop::record(conn, so_id, EventSource::Operator, now)?;
        }
        Ok(retried)
    })
}

/// [`outbox::cancel_here`] now, with the shop's event, in one transaction.
fn cancel_here_and_record(
    conn: &mut DbConnection,
    so_id: &str,
    from: &[OutboxStatus],
    reason: &str,
) -> diesel::QueryResult<bool> {
    conn.transaction(|conn| {
        let now = db::now_utc();
        let cancelled = outbox::cancel_here(conn, so_id, from, reason, now)?;
        if cancelled {
            crate::shop::record(conn, so_id, EventSource::Operator, now)?;
        }
        Ok(cancelled)
    })
}

/// The `sourceSystem` an order's payload was pushed with, if it names one.
fn pushed_source_system(payload: &str) -> Option<String> {
    let order: serde_json::Value = serde_json::from_str(payload).ok()?;
    match order.get("sourceSystem")? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_system_comes_from_the_payload() {
        assert_eq!(
            pushed_source_system(r#"{"sourceSystem":" SHOP-A ","soId":"1"}"#).as_deref(),
            Some("SHOP-A")
        );
        assert_eq!(pushed_source_system(r#"{"sourceSystem":""}"#), None);
        assert_eq!(pushed_source_system("not json"), None);
    }
}

//! `haier_shop_events`, owned here: every change of an order as the shop sees it, numbered per
//! order (`seq`), with its delivery to the webhook (`delivery`, attempts, lease). Every statement
//! on it is a small function whose doc comment states its locking contract.
//!
//! [`record`] is the one way in: after a change, in the change's transaction, it reads the order
//! through its owners (outbox, lines, shipments), and writes an event only when what the shop
//! sees differs from the order's last event. So one change is one event whichever path made it,
//! and a repeated callback, a retried push or a logistics run that found nothing new writes none.

use crate::db::schema::haier_shop_events::{self, dsl};
use crate::db::text_enum::text_enum;
use crate::db::DbConnection;
use crate::orders::lines::{self, OrderLine};
use crate::orders::outbox::{self, OutboxRow};
use crate::orders::shipments::{self, ShipmentRow};
use crate::orders::state::{CancelState, OutboxStatus};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};

text_enum! {
    /// Where an order is, as the shop hears it (`haier_shop_events.state`): the outbox status,
    /// `sending` shown as `pending` (a claim is no change to the shop), and `delivered` once the
    /// logistics job saw a taken order delivered.
    pub enum ShopState {
        Pending = "pending",
        Pushed = "pushed",
        Confirmed = "confirmed",
        OutOfStock = "out_of_stock",
        Refused = "refused",
        Cancelled = "cancelled",
        Returned = "returned",
        Dead = "dead",
        Delivered = "delivered",
    }
}

text_enum! {
    /// What made the change (`haier_shop_events.source`).
    pub enum EventSource {
        /// One of Haier's callbacks (confirm, refusal, cancel, door refusal, return, out of stock).
        Callback = "callback",
        /// The result of a push (taken, refused by the push call, dead).
        Push = "push",
        /// The logistics job: parcels, express and serial numbers, delivery.
        Logistics = "logistics",
        /// An operator command (`outbox retry`, `cancel`, `reschedule`).
        Operator = "operator",
        /// An unmatched callback an operator attached to the order (`outbox attach`).
        Replay = "replay",
    }
}

text_enum! {
    /// Where an event is in its delivery to the webhook (`haier_shop_events.delivery`).
    pub enum Delivery {
        /// Not delivered yet (waiting for `next_attempt_at`, or for the order's earlier events).
        Pending = "pending",
        /// The webhook answered 2xx.
        Delivered = "delivered",
        /// `max_attempts` deliveries failed; `events retry` sends it again.
        Failed = "failed",
    }
}

/// One row of `haier_shop_events`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_shop_events)]
pub struct ShopEvent {
    pub id: i64,
    pub so_id: String,
    /// 1, 2, 3 … per order, in the order the changes committed.
    pub seq: i64,
    pub state: ShopState,
    pub cancel_state: Option<CancelState>,
    pub haier_order_no: Option<String>,
    /// Why: Haier's refusal, the error of a dead order, the cancel's or out-of-stock's detail.
    pub reason: Option<String>,
    /// JSON array of [`LineQuantities`].
    pub lines: String,
    /// JSON array of [`Parcel`]s.
    pub shipments: String,
    /// JSON object: `distribution_time` and `install_time` as the order's payload holds them.
    pub schedule: String,
    pub source: EventSource,
    pub created_at: NaiveDateTime,
    pub delivery: Delivery,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub locked_by: Option<String>,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
}

impl ShopEvent {
    /// The event as the webhook receives it (and `events list --json` prints it): the same text
    /// for every delivery of the event.
    pub fn to_json(&self) -> Value {
        let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        json!({
            "id": self.id,
            "so_id": self.so_id,
            "seq": self.seq,
            "state": self.state,
            "cancel_state": self.cancel_state,
            "haier_order_no": self.haier_order_no,
            "reason": self.reason,
            "lines": parsed(&self.lines),
            "shipments": parsed(&self.shipments),
            "schedule": parsed(&self.schedule),
            "source": self.source,
            "created_at": self.created_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })
    }
}

/// One product of the order, with its units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineQuantities {
    pub product_code: String,
    pub ordered: i64,
    pub received: i64,
    /// Never reached the customer: stopped, cancelled or refused at the door.
    pub refused: i64,
    pub returned: i64,
}

/// One parcel of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parcel {
    pub delivery_record_code: String,
    pub carrier_code: Option<String>,
    pub carrier_name: Option<String>,
    pub express_no: String,
    pub serial_numbers: Vec<String>,
}

/// What the shop sees of an order: an event is written when this changes.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = haier_shop_events)]
struct Snapshot {
    state: ShopState,
    cancel_state: Option<CancelState>,
    haier_order_no: Option<String>,
    reason: Option<String>,
    lines: String,
    shipments: String,
    schedule: String,
}

impl Snapshot {
    fn of(order: &OutboxRow, lines: &[OrderLine], parcels: &[ShipmentRow]) -> Snapshot {
        let delivered = order.delivered_at.is_some() && OutboxStatus::TRACKED.contains(&order.status);
        let state = match order.status {
            _ if delivered => ShopState::Delivered,
            OutboxStatus::Pending | OutboxStatus::Sending => ShopState::Pending,
            OutboxStatus::Pushed => ShopState::Pushed,
            OutboxStatus::Confirmed => ShopState::Confirmed,
            OutboxStatus::OutOfStock => ShopState::OutOfStock,
            OutboxStatus::Refused => ShopState::Refused,
            OutboxStatus::Cancelled => ShopState::Cancelled,
            OutboxStatus::Returned => ShopState::Returned,
            OutboxStatus::Dead => ShopState::Dead,
        };
        let reason = match order.status {
            OutboxStatus::Refused | OutboxStatus::Dead => order.last_error.clone(),
            _ if order.cancel_state.is_some() => order.cancel_detail.clone(),
            OutboxStatus::OutOfStock => order.out_of_stock_detail.clone(),
            _ => None,
        };
        let lines: Vec<LineQuantities> = lines
            .iter()
            .map(|line| LineQuantities {
                product_code: line.product_code.clone(),
                ordered: line.ordered_qty,
                received: line.received_qty,
                refused: line.rejected_qty,
                returned: line.returned_qty,
            })
            .collect();
        let parcels: Vec<Parcel> = parcels
            .iter()
            .map(|row| Parcel {
                delivery_record_code: row.delivery_record_code.clone(),
                carrier_code: row.carrier_code.clone(),
                carrier_name: row.carrier_name.clone(),
                express_no: row.express_no.clone(),
                serial_numbers: row.serial_numbers(),
            })
            .collect();
        let payload: Value = serde_json::from_str(&order.payload).unwrap_or(Value::Null);
        let time = |key: &str| payload.get(key).cloned().unwrap_or(Value::Null);
        let schedule = json!({
            "distribution_time": time("distributionTime"),
            "install_time": time("installTime"),
        });
        Snapshot {
            state,
            cancel_state: order.cancel_state,
            haier_order_no: order.haier_order_no.clone(),
            reason,
            lines: serde_json::to_value(lines).unwrap_or_default().to_string(),
            shipments: serde_json::to_value(parcels).unwrap_or_default().to_string(),
            schedule: schedule.to_string(),
        }
    }

    /// The order as the shop wrote it: no event is due for that.
    fn is_as_inserted(&self) -> bool {
        self.state == ShopState::Pending && self.cancel_state.is_none() && self.lines == "[]"
    }
}

/// Records the change just made to order `so_id`, by `source`, at `now`: an event with the
/// next `seq` when what the shop sees of the order differs from its last event, else nothing.
/// Returns the new event's id. On PostgreSQL the id is also sent on `haier_order_changes`
/// (delivered to listeners when the transaction commits).
///
/// Locking: must run inside the transaction of the change, after it, so the event commits (or
/// rolls back) with it. Callers hold the order's row (the change's `UPDATE`), so two changes of
/// one order record one after the other; the unique `(so_id, seq)` refuses any other race.
pub fn record(
    conn: &mut DbConnection,
    so_id: &str,
    source: EventSource,
    now: NaiveDateTime,
) -> QueryResult<Option<i64>> {
    let Some(order) = outbox::find_by_so_id(conn, so_id)? else {
        return Ok(None);
    };
    let order_lines = lines::lines_of(conn, so_id)?;
    let parcels = shipments::for_order(conn, so_id)?;
    let seen = Snapshot::of(&order, &order_lines, &parcels);
    let last: Option<(i64, Snapshot)> = haier_shop_events::table
        .filter(dsl::so_id.eq(so_id))
        .order(dsl::seq.desc())
        .select((dsl::seq, Snapshot::as_select()))
        .first(conn)
        .optional()?;
    let seq = match &last {
        Some((_, before)) if *before == seen => return Ok(None),
        Some((seq, _)) => seq + 1,
        None if seen.is_as_inserted() => return Ok(None),
        None => 1,
    };
    let id = diesel::insert_into(haier_shop_events::table)
        .values((
            dsl::so_id.eq(so_id),
            dsl::seq.eq(seq),
            seen,
            dsl::source.eq(source),
            dsl::created_at.eq(now),
            dsl::next_attempt_at.eq(now),
        ))
        .returning(dsl::id)
        .get_result(conn)?;
    super::notify::announce(conn, id)?;
    Ok(Some(id))
}

/// The lone `id` column of [`claim_due_events`]'s `RETURNING`.
#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The events due for delivery: `pending`, `next_attempt_at` come, not under a live lease, and
/// the first undelivered event of their order (an order's next event waits until the one before
/// is delivered or failed).
const DUE: &str = "FROM haier_shop_events e
    WHERE e.delivery = 'pending' AND e.next_attempt_at <= {now}
      AND (e.locked_until IS NULL OR e.locked_until <= {now})
      AND NOT EXISTS (SELECT 1 FROM haier_shop_events p
                      WHERE p.so_id = e.so_id AND p.delivery = 'pending' AND p.seq < e.seq)
    ORDER BY e.id LIMIT {limit}";

/// Whether a `pending` event may be due at `now` (its `next_attempt_at` has come and no live
/// claim holds it). An idle poll asks this first, so that on SQLite it takes no write lock.
///
/// Locking: a plain read, answered from the `(delivery, next_attempt_at)` index.
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        haier_shop_events::table
            .filter(dsl::delivery.eq(Delivery::Pending))
            .filter(dsl::next_attempt_at.le(now))
            .filter(dsl::locked_until.is_null().or(dsl::locked_until.le(now))),
    ))
    .get_result(conn)
}

/// Claims up to `limit` due events (at most one per order: see [`DUE`]) for `lease_token` until
/// `lease_until`, and returns them oldest first. A claim whose lease runs out (a daemon killed
/// mid-delivery) is claimed again: the event is sent again, with the same id.
///
/// Locking: one `UPDATE … RETURNING`. On PostgreSQL the candidates are selected `FOR UPDATE
/// SKIP LOCKED`, so several daemons never wait on each other nor claim one event twice; on
/// SQLite the statement holds the database's write lock. No transaction stays open after it.
pub fn claim_due_events(
    conn: &mut DbConnection,
    lease_token: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<ShopEvent>> {
    let claimed: Vec<ClaimedId> = match conn {
        DbConnection::Pg(c) => {
            let due = DUE.replace("{now}", "$3").replace("{limit}", "$4");
            diesel::sql_query(format!(
                "UPDATE haier_shop_events SET locked_by = $1, locked_until = $2
                 WHERE id IN (SELECT e.id {due} FOR UPDATE OF e SKIP LOCKED) RETURNING id"
            ))
            .bind::<Text, _>(lease_token)
            .bind::<Timestamp, _>(lease_until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load(c)?
        }
        DbConnection::Sqlite(c) => {
            let due = DUE.replace("{now}", "?3").replace("{limit}", "?4");
            diesel::sql_query(format!(
                "UPDATE haier_shop_events SET locked_by = ?1, locked_until = ?2
                 WHERE id IN (SELECT e.id {due}) RETURNING id"
            ))
            .bind::<Text, _>(lease_token)
            .bind::<Timestamp, _>(lease_until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load(c)?
        }
    };
    let ids: Vec<i64> = claimed.into_iter().map(|c| c.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    haier_shop_events::table
        .filter(dsl::id.eq_any(ids))
        .filter(dsl::locked_by.eq(lease_token))
        .order(dsl::id.asc())
        .select(ShopEvent::as_select())
        .load(conn)
}

/// The webhook took event `id`: `delivered`, the attempt counted, the lease released. Returns
/// false when the lease was lost meanwhile (`events replay` reset it, or it ran out and another
/// daemon claimed it): nothing is written. Locking: a single-row `UPDATE` guarded by the lease.
pub fn mark_delivered(
    conn: &mut DbConnection,
    id: i64,
    lease_token: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        haier_shop_events::table
            .filter(dsl::id.eq(id))
            .filter(dsl::locked_by.eq(lease_token)),
    )
    .set((
        dsl::delivery.eq(Delivery::Delivered),
        dsl::attempts.eq(dsl::attempts + 1_i64),
        dsl::delivered_at.eq(now),
        dsl::last_error.eq(None::<String>),
        dsl::locked_by.eq(None::<String>),
        dsl::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// A delivery of event `id` failed with `error`: the attempt counted and the lease released;
/// `failed` when `give_up`, else due again at `retry_at`. Returns false when the lease was lost.
/// Locking: a single-row `UPDATE` guarded by the lease.
pub fn mark_attempt_failed(
    conn: &mut DbConnection,
    id: i64,
    lease_token: &str,
    error: &str,
    give_up: bool,
    retry_at: NaiveDateTime,
) -> QueryResult<bool> {
    let delivery = if give_up {
        Delivery::Failed
    } else {
        Delivery::Pending
    };
    diesel::update(
        haier_shop_events::table
            .filter(dsl::id.eq(id))
            .filter(dsl::locked_by.eq(lease_token)),
    )
    .set((
        dsl::delivery.eq(delivery),
        dsl::attempts.eq(dsl::attempts + 1_i64),
        dsl::next_attempt_at.eq(retry_at),
        dsl::last_error.eq(error),
        dsl::locked_by.eq(None::<String>),
        dsl::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Which events `events list` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub so_id: Option<String>,
    pub state: Option<ShopState>,
    pub delivery: Option<Delivery>,
    /// Created at or after (UTC).
    pub since: Option<NaiveDateTime>,
    pub limit: i64,
}

/// Events `filter` names, newest first. Locking: a plain read.
pub fn list_events(conn: &mut DbConnection, filter: &EventFilter) -> QueryResult<Vec<ShopEvent>> {
    let mut query = haier_shop_events::table
        .select(ShopEvent::as_select())
        .into_boxed();
    if let Some(so_id) = &filter.so_id {
        query = query.filter(dsl::so_id.eq(so_id.clone()));
    }
    if let Some(state) = filter.state {
        query = query.filter(dsl::state.eq(state));
    }
    if let Some(delivery) = filter.delivery {
        query = query.filter(dsl::delivery.eq(delivery));
    }
    if let Some(since) = filter.since {
        query = query.filter(dsl::created_at.ge(since));
    }
    query.order(dsl::id.desc()).limit(filter.limit.max(1)).load(conn)
}

/// Every event of one order, by `seq`. Locking: a plain read.
pub fn events_of_order(conn: &mut DbConnection, so_id: &str) -> QueryResult<Vec<ShopEvent>> {
    haier_shop_events::table
        .filter(dsl::so_id.eq(so_id))
        .order(dsl::seq.asc())
        .select(ShopEvent::as_select())
        .load(conn)
}

/// Every event, by id (tests and small tools). Locking: a plain read.
pub fn all_events(conn: &mut DbConnection) -> QueryResult<Vec<ShopEvent>> {
    haier_shop_events::table
        .order(dsl::id.asc())
        .select(ShopEvent::as_select())
        .load(conn)
}

/// The values that make an event due again now, from its first attempt.
#[derive(AsChangeset)]
#[diesel(table_name = haier_shop_events, treat_none_as_null = true)]
struct SendAgain {
    delivery: Delivery,
    attempts: i64,
    next_attempt_at: NaiveDateTime,
    last_error: Option<String>,
    locked_by: Option<String>,
    locked_until: Option<NaiveDateTime>,
}

fn send_again(now: NaiveDateTime) -> SendAgain {
    SendAgain {
        delivery: Delivery::Pending,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        locked_by: None,
        locked_until: None,
    }
}

/// `events retry`: event `id` (failed or delivered) or, with `None`, every `failed` event is sent
/// again from its first attempt, keeping its id. Returns the ids made due. Locking: one
/// `UPDATE … RETURNING` guarded by the delivery state (an event still pending is left as it is).
pub fn retry_events(conn: &mut DbConnection, id: Option<i64>, now: NaiveDateTime) -> QueryResult<Vec<i64>> {
    match id {
        Some(id) => diesel::update(
            haier_shop_events::table
                .filter(dsl::id.eq(id))
                .filter(dsl::delivery.ne(Delivery::Pending)),
        )
        .set(send_again(now))
        .returning(dsl::id)
        .get_results(conn),
        None => diesel::update(haier_shop_events::table.filter(dsl::delivery.eq(Delivery::Failed)))
            .set(send_again(now))
            .returning(dsl::id)
            .get_results(conn),
    }
}

/// `events replay`: every event created at or after `since` (and before `until`) is sent again,
/// whatever its delivery state, with its id; the webhook receives exactly these. Returns the ids,
/// oldest first. Locking: one transaction: a read of the window, then one `UPDATE` of those ids
/// (an event under a lease loses it, so its delivery in flight is not marked and it goes again).
pub fn replay_events(
    conn: &mut DbConnection,
    since: NaiveDateTime,
    until: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    conn.transaction(|conn| {
        let mut window = haier_shop_events::table
            .filter(dsl::created_at.ge(since))
            .into_boxed();
        if let Some(until) = until {
            window = window.filter(dsl::created_at.lt(until));
        }
        let ids: Vec<i64> = window.order(dsl::id.asc()).select(dsl::id).load(conn)?;
        for chunk in ids.chunks(500) {
            diesel::update(haier_shop_events::table.filter(dsl::id.eq_any(chunk)))
                .set(send_again(now))
                .execute(conn)?;
        }
        Ok(ids)
    })
}

/// How many events are in each delivery state. Locking: a plain read.
pub fn count_by_delivery(conn: &mut DbConnection) -> QueryResult<Vec<(Delivery, i64)>> {
    haier_shop_events::table
        .group_by(dsl::delivery)
        .select((dsl::delivery, diesel::dsl::count_star()))
        .order(dsl::delivery)
        .load(conn)
}

//! The write side of the outbox's statements: which rows one touches ([`Rows`]) and what it
//! writes ([`Change`]), so that every transition in `store.rs` names only what differs.

use crate::db::schema::haier_order_outbox::{self, dsl};
use crate::db::DbConnection;
use crate::orders::state::{CancelState, OutboxStatus};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Bool;

/// Which rows a statement touches.
pub(super) type Rows = Box<
    dyn BoxableExpression<haier_order_outbox::table, <DbConnection as Connection>::Backend, SqlType = Bool>,
>;

pub(super) fn with_id(id: i64) -> Rows {
    Box::new(dsl::id.eq(id))
}

pub(super) fn with_so_id(so_id: &str) -> Rows {
    Box::new(dsl::so_id.eq(so_id.to_owned()))
}

pub(super) fn with_online_no(online_no: &str) -> Rows {
    Box::new(dsl::online_no.eq(online_no.to_owned()))
}

pub(super) fn with_haier_order_no(haier_order_no: &str) -> Rows {
    Box::new(
        dsl::haier_order_no
            .eq(haier_order_no.to_owned())
            .assume_not_null(),
    )
}

/// The row `so_id` while it is in one of `statuses`.
pub(super) fn with_so_id_in(so_id: &str, statuses: &[OutboxStatus]) -> Rows {
    Box::new(
        dsl::so_id
            .eq(so_id.to_owned())
            .and(dsl::status.eq_any(statuses.to_vec())),
    )
}

/// The rows `sending` under `lease_token`; with `id`, that one row only.
pub(super) fn leased(id: Option<i64>, lease_token: &str) -> Rows {
    let held = dsl::status
        .eq(OutboxStatus::Sending)
        .and(dsl::locked_by.eq(lease_token.to_owned()).assume_not_null());
    match id {
        Some(id) => Box::new(held.and(dsl::id.eq(id))),
        None => Box::new(held),
    }
}

/// What a transition writes. `None` leaves a column as it is; `Some(None)` clears it.
#[derive(Default, AsChangeset)]
#[diesel(table_name = haier_order_outbox)]
pub(super) struct Change<'a> {
    /// Whether the transition ends a push attempt (`attempts + 1`).
    #[diesel(skip_update)]
    pub(super) count_attempt: bool,
    pub(super) status: Option<OutboxStatus>,
    pub(super) attempts: Option<i64>,
    pub(super) next_attempt_at: Option<NaiveDateTime>,
    pub(super) last_error: Option<Option<&'a str>>,
    pub(super) locked_by: Option<Option<&'a str>>,
    pub(super) locked_until: Option<Option<NaiveDateTime>>,
    pub(super) haier_order_no: Option<&'a str>,
    pub(super) pushed_at: Option<NaiveDateTime>,
    pub(super) confirmed_at: Option<NaiveDateTime>,
    pub(super) delivered_at: Option<NaiveDateTime>,
    pub(super) cancel_state: Option<CancelState>,
    pub(super) cancel_detail: Option<&'a str>,
    pub(super) out_of_stock_at: Option<NaiveDateTime>,
    pub(super) push_unseen_at: Option<Option<NaiveDateTime>>,
    pub(super) cancel_requested_at: Option<NaiveDateTime>,
    pub(super) out_of_stock_detail: Option<&'a str>,
    pub(super) updated_at: Option<NaiveDateTime>,
}

impl<'a> Change<'a> {
    /// A change made at `now`.
    pub(super) fn at(now: NaiveDateTime) -> Self {
        Change {
            updated_at: Some(now),
            ..Change::default()
        }
    }

    /// The row moves to `status` with its lease (if any) released.
    pub(super) fn released(status: OutboxStatus, now: NaiveDateTime) -> Self {
        Change {
            status: Some(status),
            locked_by: Some(None),
            locked_until: Some(None),
            ..Change::at(now)
        }
    }

    /// The row is cancelled with `cancel_state` and its detail.
    pub(super) fn cancelled(cancel_state: CancelState, detail: &'a str, now: NaiveDateTime) -> Self {
        Change {
            status: Some(OutboxStatus::Cancelled),
            cancel_state: Some(cancel_state),
            cancel_detail: Some(detail),
            ..Change::at(now)
        }
    }
}

/// Writes `change` to `rows`; returns how many rows changed.
pub(super) fn update(conn: &mut DbConnection, rows: Rows, change: Change<'_>) -> QueryResult<usize> {
    let counted = change
        .count_attempt
        .then(|| dsl::attempts.eq(dsl::attempts + 1_i64));
    diesel::update(haier_order_outbox::table.filter(rows))
        .set((counted, change))
        .execute(conn)
}

/// [`update`] of at most one row: whether it changed.
pub(super) fn update_one(conn: &mut DbConnection, rows: Rows, change: Change<'_>) -> QueryResult<bool> {
    update(conn, rows, change).map(|n| n == 1)
}

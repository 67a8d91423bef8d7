//! Orders Haier has not answered in time (`confirm_within_ms` of the outbox job): an order
//! `pushed` with no confirm callback, or a cancel asked (`cancel_state = requested`) with no
//! cancel callback. `haier-sync status`, `outbox list --unconfirmed` and `/metrics` show them; an
//! operator then asks Haier about the order. It only reads.

use super::outbox::{self, OutboxRow};
use super::state::{CancelState, OutboxStatus};
use crate::config::OutboxJob;
use crate::db::{self, Db};
use anyhow::Context as _;
use chrono::NaiveDateTime;
use serde::Serialize;

/// What Haier has not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unanswered {
    /// Pushed, and no confirm (or refusal) callback came.
    Push,
    /// A cancel was asked, and no cancel callback came.
    Cancel,
}

impl Unanswered {
    pub fn as_str(self) -> &'static str {
        match self {
            Unanswered::Push => "push",
            Unanswered::Cancel => "cancel",
        }
    }
}

/// An order Haier has not answered in time, and what it has not answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnconfirmedOrder {
    pub unanswered: Vec<Unanswered>,
    #[serde(flatten)]
    pub row: OutboxRow,
}

/// How many orders are flagged, of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UnconfirmedCounts {
    /// Pushed longer ago than `confirm_within_ms`, not confirmed.
    pub pushes: i64,
    /// Cancels asked longer ago than `confirm_within_ms`, not answered.
    pub cancels: i64,
    pub confirm_within_ms: u64,
}

/// What `row` has waited for longer than allowed, given the flag time `before`.
pub fn unanswered(row: &OutboxRow, before: NaiveDateTime) -> Vec<Unanswered> {
    let mut kinds = Vec::new();
    if row.status == OutboxStatus::Pushed && row.pushed_at.is_some_and(|at| at <= before) {
        kinds.push(Unanswered::Push);
    }
    if row.cancel_state == Some(CancelState::Requested)
        && row.cancel_requested_at.is_some_and(|at| at <= before)
    {
        kinds.push(Unanswered::Cancel);
    }
    kinds
}

/// Up to `limit` orders Haier has not answered within `job.confirm_within_ms`, oldest first.
pub async fn list_unconfirmed(db: &Db, job: &OutboxJob, limit: i64) -> anyhow::Result<Vec<UnconfirmedOrder>> {
    let job = job.clone();
    db.run(move |conn| {
        let before = job.unconfirmed_before(db::now_utc());
        let rows = outbox::list_unconfirmed(conn, before, limit)?;
        Ok(rows
            .into_iter()
            .map(|row| UnconfirmedOrder {
                unanswered: unanswered(&row, before),
                row,
            })
            .collect())
    })
    .await
    .context("Failed to list the unconfirmed orders")
}

/// How many orders Haier has not answered within `job.confirm_within_ms`.
pub async fn count_unconfirmed(db: &Db, job: &OutboxJob) -> anyhow::Result<UnconfirmedCounts> {
    let job = job.clone();
    db.run(move |conn| {
        let (pushes, cancels) = outbox::count_unconfirmed(conn, job.unconfirmed_before(db::now_utc()))?;
        Ok(UnconfirmedCounts {
            pushes,
            cancels,
            confirm_within_ms: job.confirm_within_ms,
        })
    })
    .await
    .context("Failed to count the unconfirmed orders")
}

/// A duration in ms as people say it: `24 h`, `90 min`, `45 s`.
pub fn human_duration(ms: u64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms => format!("{} s", ms / 1000),
    }
}

impl UnconfirmedCounts {
    /// One line for `haier-sync status`.
    pub fn summary(&self) -> String {
        let within = human_duration(self.confirm_within_ms);
        if self.pushes == 0 && self.cancels == 0 {
            return format!("orders: every push and cancel answered by Haier within {within}\n");
        }
        format!(
            "orders: UNCONFIRMED — {} pushed but not confirmed within {within}, {} cancel(s) asked \
             and not answered within {within} (see `haier-sync outbox list --unconfirmed`)\n",
            self.pushes, self.cancels
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(86_400_000), "24 h");
        assert_eq!(human_duration(5_400_000), "90 min");
        assert_eq!(human_duration(45_000), "45 s");
    }

    #[test]
    fn the_summary_names_both_kinds_or_says_all_is_well() {
        let counts = UnconfirmedCounts {
            pushes: 2,
            cancels: 1,
            confirm_within_ms: 86_400_000,
        };
        let line = counts.summary();
        assert!(line.contains("2 pushed but not confirmed within 24 h"), "{line}");
        assert!(line.contains("1 cancel(s) asked and not answered"), "{line}");
        let fine = UnconfirmedCounts {
            confirm_within_ms: 86_400_000,
            ..UnconfirmedCounts::default()
        };
        assert!(fine.summary().contains("every push and cancel answered"));
    }
}

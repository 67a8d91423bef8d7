//! Fires of a scheduled job that passed while no daemon ran it, so that a silent gap is never
//! mistaken for a quiet day: a daemon counts them at its start (with catch-up, `jobs.rs`), and
//! this module owns `haier_job_missed_fires`, every statement on it, and the counting.
//!
//! A fire is **missed** when it falls after the job's newest settled fire time (a row that did
//! not end `interrupted`; else its newest row) and at or before the daemon's start, outside a
//! pause. Of those, the one catch-up runs (`catch_up = "once"`, the newest, not older than
//! `catch_up_within_ms`) is **caught up**; the others are skipped for good. One row per job keeps
//! the newest gap found; a later gap replaces it. The note **stands** (in `haier-sync status` and
//! on `/metrics`) for [`MISSED_NOTE_HOURS`] after it was found, so that the next morning's
//! operator still sees it; the row is kept after that until the next gap replaces it.

use crate::config::SyncJob;
use crate::db::schema::haier_job_missed_fires::{self, dsl};
use crate::db::DbConnection;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

/// How long a found gap stands in `status` and on `/metrics`: a day, so that it is seen the
/// next working morning and then stops alerting.
pub const MISSED_NOTE_HOURS: i64 = 24;

/// The most fires counted in one gap, so that a per-second schedule down for a year stays
/// cheap to count; the count then reads "at least".
pub const MAX_COUNTED_FIRES: i64 = 100_000;

/// One job's newest gap.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = haier_job_missed_fires)]
pub struct MissedFires {
    pub job_name: String,
    /// Fires that passed while no daemon ran the job (at most [`MAX_COUNTED_FIRES`]).
    pub missed_count: i64,
    /// Of those, the fires run late with `trigger = catch_up` (0 or 1).
    pub caught_up_count: i64,
    /// The first and the last missed fire time (UTC).
    pub first_missed_at: NaiveDateTime,
    pub last_missed_at: NaiveDateTime,
    /// When a daemon found the gap (its start), and which (`host:pid`).
    pub detected_at: NaiveDateTime,
    pub detected_by: String,
}

impl MissedFires {
    /// Whether the note still stands at `now` (found less than [`MISSED_NOTE_HOURS`] ago).
    pub fn stands_at(&self, now: NaiveDateTime) -> bool {
        self.detected_at > standing_since(now)
    }

    /// Fires missed and not caught up.
    pub fn skipped_count(&self) -> i64 {
        self.missed_count - self.caught_up_count
    }
}

/// The oldest detection time whose note still stands at `now`.
pub fn standing_since(now: NaiveDateTime) -> NaiveDateTime {
    now - chrono::Duration::hours(MISSED_NOTE_HOURS)
}

/// The fires of a gap: how many, the first and the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub count: i64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// The fire times of `job` strictly after `after` and at or before `now`, leaving out those
/// `skip` says to (a pause); at most [`MAX_COUNTED_FIRES`] are counted. `None` when there is none.
pub fn count_missed_fires(
    job: &SyncJob,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
    skip: impl Fn(DateTime<Utc>) -> bool,
) -> Option<Gap> {
    let mut gap: Option<Gap> = None;
    let mut at = after;
    while let Some(next) = super::next_fire_time(job, at).map(|t| t.with_timezone(&Utc)) {
        if next > now {
            break;
        }
        at = next;
        if skip(next) {
            continue;
        }
        let g = gap.get_or_insert(Gap {
            count: 0,
            first: next,
            last: next,
        });
        g.count += 1;
        g.last = next;
        if g.count >= MAX_COUNTED_FIRES {
            break;
        }
    }
    gap
}

/// Records a job's newest gap, replacing the one before.
///
/// Locking: a short write transaction (delete and insert of one row).
pub fn record_missed_fires(conn: &mut DbConnection, row: &MissedFires) -> QueryResult<()> {
    conn.transaction(|conn| {
        diesel::delete(dsl::haier_job_missed_fires.filter(dsl::job_name.eq(&row.job_name))).execute(conn)?;
        diesel::insert_into(haier_job_missed_fires::table)
            .values(row)
            .execute(conn)?;
        Ok(())
    })
}

/// Every job's newest gap, standing or not, by job name.
///
/// Locking: a plain read.
pub fn list_missed_fires(conn: &mut DbConnection) -> QueryResult<Vec<MissedFires>> {
    dsl::haier_job_missed_fires
        .select(MissedFires::as_select())
        .order(dsl::job_name.asc())
        .load(conn)
}

/// The gaps whose note still stands at `now`, by job name.
///
/// Locking: a plain read.
pub fn standing_missed_fires(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<MissedFires>> {
    dsl::haier_job_missed_fires
        .filter(dsl::detected_at.gt(standing_since(now)))
        .select(MissedFires::as_select())
        .order(dsl::job_name.asc())
        .load(conn)
}

/// One line for `status`: `missed 14 fires since 2026-12-01 02:00 (3 caught up)`, the time in
/// `zone`.
pub fn describe(row: &MissedFires, zone: chrono_tz::Tz) -> String {
    let since = row
        .first_missed_at
        .and_utc()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M");
    let at_least = if row.missed_count >= MAX_COUNTED_FIRES {
        "at least "
    } else {
        ""
    };
    let fires = if row.missed_count == 1 { "fire" } else { "fires" };
    format!(
        "missed {at_least}{} {fires} since {since} ({} caught up)",
        row.missed_count, row.caught_up_count
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fires_between_the_last_run_and_now_are_counted_outside_a_pause() {
        let hourly = super::super::tests::job("stock", "0 0 * * * *");
        let after = Utc.with_ymd_and_hms(2026, 12, 1, 2, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 5, 30, 0).unwrap();
        let gap = count_missed_fires(&hourly, after, now, |_| false).unwrap();
        assert_eq!(gap.count, 3);
        assert_eq!(gap.first, Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap());
        assert_eq!(gap.last, Utc.with_ymd_and_hms(2026, 12, 1, 5, 0, 0).unwrap());
        let paused_from_4 = |t: DateTime<Utc>| t >= Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap();
        assert_eq!(
            count_missed_fires(&hourly, after, now, paused_from_4)
                .unwrap()
                .count,
            1
        );
        assert_eq!(count_missed_fires(&hourly, now, now, |_| false), None);
    }

    #[test]
    fn a_dense_schedule_is_counted_up_to_the_cap() {
        let every_second = super::super::tests::job("stock", "* * * * * *");
        let after = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let now = after + chrono::Duration::days(30);
        let gap = count_missed_fires(&every_second, after, now, |_| false).unwrap();
        assert_eq!(gap.count, MAX_COUNTED_FIRES);
    }

    #[tokio::test]
    async fn a_later_gap_replaces_the_note_and_an_old_note_no_longer_stands() {
        let test = crate::db::testing::TestDb::new().await;
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 2, 0, 0).unwrap().naive_utc();
        let note = |job: &str, missed: i64, detected_at: NaiveDateTime| MissedFires {
            job_name: job.into(),
            missed_count: missed,
            caught_up_count: 1,
            first_missed_at: at,
            last_missed_at: at + chrono::Duration::hours(missed - 1),
            detected_at,
            detected_by: "box:1".into(),
        };
        let (first, later, old) = (
            note("stock", 3, at),
            note("stock", 5, at + chrono::Duration::hours(1)),
            note("prices", 2, at - chrono::Duration::hours(30)),
        );
        let now = at + chrono::Duration::hours(2);
        let (all, standing) = test
            .db
            .run(move |conn| {
                for row in [&first, &later, &old] {
                    record_missed_fires(conn, row)?;
                }
                Ok((list_missed_fires(conn)?, standing_missed_fires(conn, now)?))
            })
            .await
            .unwrap();
        let counts: Vec<(&str, i64)> = all
            .iter()
            .map(|m| (m.job_name.as_str(), m.missed_count))
            .collect();
        assert_eq!(counts, [("prices", 2), ("stock", 5)]);
        assert_eq!(standing.len(), 1);
        assert_eq!(standing[0].missed_count, 5);
    }

    #[test]
    fn the_note_reads_count_since_and_caught_up() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 18, 0, 0).unwrap().naive_utc();
        let row = MissedFires {
            job_name: "products".into(),
            missed_count: 14,
            caught_up_count: 1,
            first_missed_at: at,
            last_missed_at: at,
            detected_at: at,
            detected_by: "box:1".into(),
        };
        assert_eq!(
            describe(&row, chrono_tz::Asia::Shanghai),
            "missed 14 fires since 2026-12-01 02:00 (1 caught up)"
        );
        assert!(row.stands_at(at + chrono::Duration::hours(23)));
        assert!(!row.stands_at(at + chrono::Duration::hours(24)));
    }
}

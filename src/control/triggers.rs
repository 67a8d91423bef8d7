//! Every statement on `haier_job_triggers`: the run-now requests of `haier-sync trigger JOB`.
//!
//! A request is written `pending` with the time it expires. A live daemon that schedules the job
//! claims it once ([`claim_request`]: a guarded single-row UPDATE, so among daemons racing for it
//! exactly one wins), runs the job with `trigger = manual`, and closes the request
//! ([`finish_request`]) as `finished` with its sync-log row, or `refused`/`failed` with why. A
//! request nobody claimed in time is `expired` ([`expire_unclaimed`]); one whose daemon stopped
//! or died before closing it is `failed` ([`fail_abandoned`]), by whoever sees it first (another
//! daemon's poll, or the waiting command). The daemon's side is `crate::scheduler::run_now`, the
//! command is `crate::cli::trigger`.

use crate::db::schema::haier_job_triggers::{self, dsl};
use crate::db::text_enum::text_enum;
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

text_enum! {
    /// Where a run-now request is (`haier_job_triggers.state`).
    pub enum TriggerState {
        /// Written by `haier-sync trigger`; no daemon has claimed it yet.
        Pending = "pending",
        /// A daemon (`claimed_by`) claimed it and runs the job.
        Running = "running",
        /// The run ended; its `haier_sync_logs` row (`sync_log_id`) says how.
        Finished = "finished",
        /// The daemon that claimed it did not run the job (`message` says why: paused, already
        /// running, stopping).
        Refused = "refused",
        /// The run could not be started or recorded, or its daemon stopped or died before it
        /// closed the request (`message` says which).
        Failed = "failed",
        /// No daemon claimed it before `expires_at` (or the command gave up waiting for one).
        Expired = "expired",
    }
}

impl TriggerState {
    /// Whether the request is over: nothing more happens to it.
    pub fn is_closed(self) -> bool {
        !matches!(self, TriggerState::Pending | TriggerState::Running)
    }
}

/// One run-now request.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_job_triggers)]
pub struct JobTrigger {
    pub id: i64,
    pub job_name: String,
    pub requested_at: NaiveDateTime,
    /// `user@host` of the operator.
    pub requested_by: String,
    /// `trigger --force`: run it even while the job is paused.
    pub run_if_paused: bool,
    /// A request still `pending` then is expired, never run.
    pub expires_at: NaiveDateTime,
    pub state: TriggerState,
    /// The daemon instance (`host:pid`) that claimed it.
    pub claimed_by: Option<String>,
    pub claimed_at: Option<NaiveDateTime>,
    /// The run's `haier_sync_logs.id`.
    pub sync_log_id: Option<i64>,
    pub finished_at: Option<NaiveDateTime>,
    /// Why it was refused, failed or expired.
    pub message: Option<String>,
}

/// A new request's fields.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = haier_job_triggers)]
pub struct NewJobTrigger<'a> {
    pub job_name: &'a str,
    pub requested_at: NaiveDateTime,
    pub requested_by: &'a str,
    pub run_if_paused: bool,
    pub expires_at: NaiveDateTime,
    pub state: TriggerState,
}

/// Writes a `pending` request and returns its id.
///
/// Locking: one single-row INSERT.
pub fn request_run(conn: &mut DbConnection, request: &NewJobTrigger<'_>) -> QueryResult<i64> {
    diesel::insert_into(haier_job_triggers::table)
        .values(request)
        .returning(dsl::id)
        .get_result(conn)
}

/// The request `id`.
///
/// Locking: none (one read by primary key).
pub fn find_request(conn: &mut DbConnection, id: i64) -> QueryResult<Option<JobTrigger>> {
    dsl::haier_job_triggers
        .find(id)
        .select(JobTrigger::as_select())
        .first(conn)
        .optional()
}

/// Whether any request is `pending` or `running`: the daemons' idle poll is this one read.
///
/// Locking: none (one EXISTS on the partial index of open requests).
pub fn has_open_requests(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        dsl::haier_job_triggers.filter(dsl::state.eq_any([TriggerState::Pending, TriggerState::Running])),
    ))
    .get_result(conn)
}

/// The requests no daemon has claimed and that have not expired at `now`, oldest first.
///
/// Locking: none (one read on the partial index of open requests).
pub fn pending_requests(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<JobTrigger>> {
    dsl::haier_job_triggers
        .filter(dsl::state.eq(TriggerState::Pending))
        .filter(dsl::expires_at.gt(now))
        .order(dsl::id.asc())
        .select(JobTrigger::as_select())
        .load(conn)
}

/// The requests a daemon has claimed and not closed.
///
/// Locking: none (one read on the partial index of open requests).
pub fn running_requests(conn: &mut DbConnection) -> QueryResult<Vec<JobTrigger>> {
    dsl::haier_job_triggers
        .filter(dsl::state.eq(TriggerState::Running))
        .order(dsl::id.asc())
        .select(JobTrigger::as_select())
        .load(conn)
}

/// Claims request `id` for `instance`; true for exactly one caller, and only while the request
/// is `pending`, unclaimed and not expired at `now`.
///
/// Locking: one single-row UPDATE guarded by `state = 'pending' AND claimed_by IS NULL`: on
/// PostgreSQL a second claimer waits for the first one's row lock, then finds the guard false; on
/// SQLite the writes are serialised. Either way one UPDATE changes the row.
pub fn claim_request(
    conn: &mut DbConnection,
    id: i64,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_job_triggers
            .filter(dsl::id.eq(id))
            .filter(dsl::state.eq(TriggerState::Pending))
            .filter(dsl::claimed_by.is_null())
            .filter(dsl::expires_at.gt(now)),
    )
    .set((
        dsl::state.eq(TriggerState::Running),
        dsl::claimed_by.eq(Some(instance)),
        dsl::claimed_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Closes request `id`, which `instance` claimed, as `state` (finished, refused or failed), with
/// the run's sync-log row and a message. Returns false when the request is no longer this
/// instance's to close (another daemon found it abandoned and failed it meanwhile).
///
/// Locking: one single-row UPDATE guarded by `state = 'running' AND claimed_by = instance`.
pub fn finish_request(
    conn: &mut DbConnection,
    id: i64,
    instance: &str,
    state: TriggerState,
    sync_log_id: Option<i64>,
    message: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_job_triggers
            .filter(dsl::id.eq(id))
            .filter(dsl::state.eq(TriggerState::Running))
            .filter(dsl::claimed_by.eq(instance)),
    )
    .set((
        dsl::state.eq(state),
        dsl::sync_log_id.eq(sync_log_id),
        dsl::message.eq(message),
        dsl::finished_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Marks every `pending` request whose `expires_at` has passed at `now` as `expired`; returns
/// them.
///
/// Locking: one read, then a single-row UPDATE per expired request guarded as
/// [`withdraw_request`]'s (a request a daemon claimed meanwhile is left to it).
pub fn expire_unclaimed(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<JobTrigger>> {
    let due: Vec<JobTrigger> = dsl::haier_job_triggers
        .filter(dsl::state.eq(TriggerState::Pending))
        .filter(dsl::expires_at.le(now))
        .select(JobTrigger::as_select())
        .load(conn)?;
    let mut expired = Vec::new();
    for request in due {
        let message = format!(
            "no daemon took the request before it expired at {} UTC",
            request.expires_at.format("%Y-%m-%d %H:%M:%S")
        );
        if withdraw_request(conn, request.id, &message, now)? {
            expired.push(request);
        }
    }
    Ok(expired)
}

/// Marks request `id` `expired` with `message` while no daemon has claimed it (the waiting
/// command gave up); returns whether it did. A claimed request is left to its daemon.
///
/// Locking: one single-row UPDATE guarded by `state = 'pending' AND claimed_by IS NULL`, so it
/// and [`claim_request`] cannot both succeed.
pub fn withdraw_request(
    conn: &mut DbConnection,
    id: i64,
    message: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_job_triggers
            .filter(dsl::id.eq(id))
            .filter(dsl::state.eq(TriggerState::Pending))
            .filter(dsl::claimed_by.is_null()),
    )
    .set((
        dsl::state.eq(TriggerState::Expired),
        dsl::message.eq(Some(message)),
        dsl::finished_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Marks `failed` every `running` request whose daemon is not among `live` (the instances with a
/// fresh heartbeat): it stopped or died before it closed the request. Returns them, as they read
/// before.
///
/// Locking: one read, then a single-row UPDATE per abandoned request guarded by its state and
/// claimer (a request its daemon closes meanwhile keeps that close).
pub fn fail_abandoned(
    conn: &mut DbConnection,
    live: &[String],
    now: NaiveDateTime,
) -> QueryResult<Vec<JobTrigger>> {
    let mut failed = Vec::new();
    for request in running_requests(conn)? {
        let Some(claimer) = request.claimed_by.as_deref() else {
            continue;
        };
        if live.iter().any(|l| l == claimer) {
            continue;
        }
        let message = format!(
            "the daemon {claimer} that ran the job stopped or died before it recorded how the run \
             ended; the job's newest manual row in the sync log (`haier-sync logs --job {}`) says \
             how far it got",
            request.job_name
        );
        let updated = diesel::update(
            dsl::haier_job_triggers
                .filter(dsl::id.eq(request.id))
                .filter(dsl::state.eq(TriggerState::Running))
                .filter(dsl::claimed_by.eq(claimer)),
        )
        .set((
            dsl::state.eq(TriggerState::Failed),
            dsl::message.eq(Some(message)),
            dsl::finished_at.eq(Some(now)),
        ))
        .execute(conn)?;
        if updated == 1 {
            failed.push(request);
        }
    }
    Ok(failed)
}

/// Every request, newest first, at most `limit`.
///
/// Locking: none (one read).
pub fn latest_requests(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<JobTrigger>> {
    dsl::haier_job_triggers
        .order(dsl::id.desc())
        .limit(limit.max(1))
        .select(JobTrigger::as_select())
        .load(conn)
}

/// The newest requests of `job_name`, newest first, at most `limit`.
///
/// Locking: none (one read).
pub fn latest_requests_of_job(
    conn: &mut DbConnection,
    job_name: &str,
    limit: i64,
) -> QueryResult<Vec<JobTrigger>> {
    dsl::haier_job_triggers
        .filter(dsl::job_name.eq(job_name))
        .order(dsl::id.desc())
        .limit(limit.max(1))
        .select(JobTrigger::as_select())
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::TestDb;
    use crate::db::{self, Db};

    fn at(secs_from_now: i64) -> NaiveDateTime {
        db::now_utc() + chrono::Duration::seconds(secs_from_now)
    }

    async fn request(db: &Db, job: &str, expires_in_secs: i64) -> i64 {
        let job = job.to_owned();
        db.run(move |c| {
            Ok(request_run(
                c,
                &NewJobTrigger {
                    job_name: &job,
                    requested_at: db::now_utc(),
                    requested_by: "alice@box",
                    run_if_paused: false,
                    expires_at: at(expires_in_secs),
                    state: TriggerState::Pending,
                },
            )?)
        })
        .await
        .unwrap()
    }

    async fn find(db: &Db, id: i64) -> JobTrigger {
        db.run(move |c| Ok(find_request(c, id)?)).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn of_two_claimers_one_wins() {
        let test = TestDb::new().await;
        let id = request(&test.db, "catalog", 30).await;
        let claim = |instance: &'static str| {
            let db = test.db.clone();
            async move {
                db.run(move |c| Ok(claim_request(c, id, instance, db::now_utc())?))
                    .await
                    .unwrap()
            }
        };
        assert!(claim("a:1").await);
        assert!(!claim("b:2").await, "a claimed request is not claimed again");
        let row = find(&test.db, id).await;
        assert_eq!(row.state, TriggerState::Running);
        assert_eq!(row.claimed_by.as_deref(), Some("a:1"));
        assert!(row.claimed_at.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_many_claimers_racing_exactly_one_wins() {
        let test = TestDb::new().await;
        for round in 0..5 {
            let id = request(&test.db, "catalog", 30).await;
            let claims: Vec<_> = (0..6)
                .map(|n| {
                    let db = test.db.clone();
                    tokio::spawn(async move {
                        let instance = format!("host-{n}:{round}");
                        let won = db
                            .run(move |c| Ok(claim_request(c, id, &instance, db::now_utc())?))
                            .await
                            .unwrap();
                        (n, won)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for claim in claims {
                let (n, won) = claim.await.unwrap();
                if won {
                    winners.push(n);
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            let row = find(&test.db, id).await;
            assert_eq!(row.claimed_by, Some(format!("host-{}:{round}", winners[0])));
        }
    }

    #[tokio::test]
    async fn an_expired_request_is_never_claimed_and_is_marked_expired() {
        let test = TestDb::new().await;
        let id = request(&test.db, "catalog", -1).await;
        let fresh = request(&test.db, "catalog", 30).await;
        let (claimed, pending) = test
            .db
            .run(move |c| {
                let now = db::now_utc();
                Ok((claim_request(c, id, "a:1", now)?, pending_requests(c, now)?))
            })
            .await
            .unwrap();
        assert!(!claimed);
        assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), [fresh]);
        let expired = test
            .db
            .run(|c| Ok(expire_unclaimed(c, db::now_utc())?))
            .await
            .unwrap();
        assert_eq!(expired.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
        let row = find(&test.db, id).await;
        assert_eq!(row.state, TriggerState::Expired);
        assert!(row.message.unwrap().contains("no daemon took the request"));
        assert!(row.state.is_closed());
        assert_eq!(find(&test.db, fresh).await.state, TriggerState::Pending);
    }

    #[tokio::test]
    async fn a_withdrawn_request_cannot_be_claimed_and_a_claimed_one_cannot_be_withdrawn() {
        let test = TestDb::new().await;
        let first = request(&test.db, "catalog", 30).await;
        let second = request(&test.db, "catalog", 30).await;
        let (withdrawn, claimed, claimed_second, withdrawn_second) = test
            .db
            .run(move |c| {
                let now = db::now_utc();
                Ok((
                    withdraw_request(c, first, "gave up", now)?,
                    claim_request(c, first, "a:1", now)?,
                    claim_request(c, second, "a:1", now)?,
                    withdraw_request(c, second, "gave up", now)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(
            (withdrawn, claimed, claimed_second, withdrawn_second),
            (true, false, true, false)
        );
    }

    #[tokio::test]
    async fn only_the_claimer_closes_a_request_and_an_abandoned_one_fails() {
        let test = TestDb::new().await;
        let kept = request(&test.db, "catalog", 30).await;
        let abandoned = request(&test.db, "prices", 30).await;
        test.db
            .run(move |c| {
                let now = db::now_utc();
                assert!(claim_request(c, kept, "live:1", now)?);
                assert!(claim_request(c, abandoned, "dead:2", now)?);
                Ok(())
            })
            .await
            .unwrap();
        let failed = test
            .db
            .run(|c| Ok(fail_abandoned(c, &["live:1".to_owned()], db::now_utc())?))
            .await
            .unwrap();
        assert_eq!(failed.iter().map(|r| r.id).collect::<Vec<_>>(), [abandoned]);
        let row = find(&test.db, abandoned).await;
        assert_eq!(row.state, TriggerState::Failed);
        assert!(row.message.unwrap().contains("dead:2"));

        // The dead daemon's late close changes nothing; the live one's lands.
        let (late, closed) = test
            .db
            .run(move |c| {
                let now = db::now_utc();
                Ok((
                    finish_request(c, abandoned, "dead:2", TriggerState::Finished, Some(7), None, now)?,
                    finish_request(c, kept, "live:1", TriggerState::Finished, Some(8), None, now)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!((late, closed), (false, true));
        let row = find(&test.db, kept).await;
        assert_eq!((row.state, row.sync_log_id), (TriggerState::Finished, Some(8)));
        assert!(row.finished_at.is_some());
        assert_eq!(find(&test.db, abandoned).await.state, TriggerState::Failed);
    }
}

//! The scheduler driven one step at a time: overlap (skip and queue), ticks taken by another
//! instance, catch-up and crash recovery, all checked as rows in `haier_sync_logs`. The fake
//! runner writes real rows through `RunRecorder` and blocks on a semaphore, never on a sleep.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use haier_sync::config::{self, Config, OutboxJob, SyncJob};
use haier_sync::db::testing::TestDb;
use haier_sync::db::{self, instances, Db};
use haier_sync::runs::{self, RunCounts, RunRecorder, RunSpec, RunStatus, SyncType, Trigger};
use haier_sync::scheduler::{self, FireOutcome, JobRunner, Scheduler};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

pub mod support {
    use super::*;

    /// How long a test waits for something that should happen at once.
    pub const DEADLINE: Duration = Duration::from_secs(15);

    /// A runner that writes real rows. A blocking one records progress 5 of 10, then waits for a
    /// permit (`release`) or its cancel token, and closes its row `success` or `interrupted`.
    pub struct FakeRunner {
        db: Db,
        blocking: bool,
        permits: Semaphore,
        in_flight: AtomicUsize,
        pub max_in_flight: AtomicUsize,
        started: watch::Sender<usize>,
        /// The settings each order poller was started with.
        pub pollers: Mutex<Vec<OutboxJob>>,
        pollers_started: watch::Sender<usize>,
    }

    impl FakeRunner {
        pub fn new(db: &Db, blocking: bool) -> Arc<FakeRunner> {
            Arc::new(FakeRunner {
                db: db.clone(),
                blocking,
                permits: Semaphore::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                started: watch::channel(0).0,
                pollers: Mutex::new(Vec::new()),
                pollers_started: watch::channel(0).0,
            })
        }

        /// Lets one blocked run finish.
        pub fn release(&self) {
            self.permits.add_permits(1);
        }

        /// Waits until `n` runs have opened their row.
        pub async fn wait_started(&self, n: usize) {
            let mut rx = self.started.subscribe();
            tokio::time::timeout(DEADLINE, rx.wait_for(|s| *s >= n))
                .await
                .unwrap_or_else(|_| panic!("{n} runs did not start in time"))
                .unwrap();
        }

        /// Waits until order pollers have been started `n` times.
        pub async fn wait_pollers_started(&self, n: usize) {
            let mut rx = self.pollers_started.subscribe();
            tokio::time::timeout(DEADLINE, rx.wait_for(|s| *s >= n))
                .await
                .unwrap_or_else(|_| panic!("{n} poller starts did not happen in time"))
                .unwrap();
        }

        pub fn max_in_flight(&self) -> usize {
            self.max_in_flight.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl JobRunner for FakeRunner {
        async fn run(
            &self,
            job: SyncJob,
            trigger: Trigger,
            scheduled_for: Option<NaiveDateTime>,
            cancel: CancellationToken,
        ) -> anyhow::Result<RunStatus> {
            let spec = RunSpec {
                job_name: job.name.clone(),
                sync_type: job.kind.sync_type(),
                trigger,
                scheduled_for,
            };
            let Some(run) = RunRecorder::start(&self.db, spec).await? else {
                return Ok(RunStatus::Skipped);
            };
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.started.send_modify(|n| *n += 1);
            let (status, counts, message) = if self.blocking {
                let partial = RunCounts {
                    total: 10,
                    success: 5,
                    failed: 0,
                };
                run.progress(partial).await?;
                tokio::select! {
                    permit = self.permits.acquire() => {
                        permit?.forget();
                        (RunStatus::Success, RunCounts { total: 10, success: 10, failed: 0 }, None)
                    }
                    _ = cancel.cancelled() => {
                        (RunStatus::Interrupted, partial, Some("interrupted: the daemon is stopping".to_owned()))
                    }
                }
            } else {
                (
                    RunStatus::Success,
                    RunCounts {
                        total: 1,
                        success: 1,
                        failed: 0,
                    },
                    None,
                )
            };
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            run.finish(status, counts, message).await?;
            Ok(status)
        }

        async fn run_until_stopped(&self, job: OutboxJob, cancel: CancellationToken) -> anyhow::Result<()> {
            self.pollers.lock().unwrap().push(job);
            self.pollers_started.send_modify(|n| *n += 1);
            cancel.cancelled().await;
            Ok(())
        }
    }

    /// The shipped `jobs.toml` without its jobs, on the test's database, plus `extra` (the
    /// `[daemon]` and `[jobs.*]` tables).
    pub fn config_text(test: &TestDb, extra: &str) -> String {
        let shipped = include_str!("../../jobs.toml");
        let head = &shipped[..shipped.find("[jobs.").expect("the shipped config has jobs")];
        let head = head.replace(
            "url = \"sqlite://haier-sync.db\"",
            &format!("url = \"{}\"", test.url_text()),
        );
        format!("{head}\n{extra}\n")
    }

    /// Writes `text` to `dir/jobs.toml` and loads it.
    pub fn write_config(dir: &Path, text: &str) -> (PathBuf, Config) {
        let path = dir.join("jobs.toml");
        std::fs::write(&path, text).unwrap();
        let config = config::load(&path).unwrap_or_else(|e| panic!("test config invalid: {e}"));
        (path, config)
    }

    /// One sync job from a `[jobs.<name>]` table.
    pub fn job(test: &TestDb, name: &str, table: &str) -> SyncJob {
        let dir = tempfile::tempdir().unwrap();
        let (_, config) = write_config(dir.path(), &config_text(test, &format!("[jobs.{name}]\n{table}")));
        config.jobs[name].as_sync().unwrap().clone()
    }

    pub async fn rows(db: &Db, job: &str) -> Vec<runs::SyncLog> {
        let job = job.to_owned();
        let mut rows = db
            .run(move |c| {
                Ok(runs::log::list(
                    c,
                    &runs::LogFilter {
                        job_name: Some(job),
                        limit: 10_000,
                        ..Default::default()
                    },
                )?)
            })
            .await
            .unwrap();
        rows.sort_by_key(|r| (r.scheduled_for, r.id));
        rows
    }

    /// Polls the job's rows until `done` holds for them, up to [`DEADLINE`].
    pub async fn wait_for_rows(
        db: &Db,
        job: &str,
        what: &str,
        done: impl Fn(&[runs::SyncLog]) -> bool,
    ) -> Vec<runs::SyncLog> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let rows = rows(db, job).await;
            if done(&rows) {
                return rows;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; rows: {rows:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    /// A `running` row that another process left behind, with the counts it had reached.
    pub async fn orphan_row(db: &Db, job: &str, instance: &str, scheduled_for: NaiveDateTime, success: i64) {
        let (job, instance) = (job.to_owned(), instance.to_owned());
        db.run(move |c| {
            let now = db::now_utc();
            runs::log::insert(
                c,
                &runs::NewSyncLog {
                    job_name: &job,
                    sync_type: SyncType::Stock,
                    status: RunStatus::Running,
                    message: None,
                    total_count: 20,
                    success_count: success,
                    failed_count: 0,
                    started_at: now,
                    completed_at: None,
                    created_at: now,
                    scheduled_for: Some(scheduled_for),
                    trigger: Trigger::Schedule,
                    instance: &instance,
                },
            )?;
            Ok(())
        })
        .await
        .unwrap();
    }

    /// A finished row of `status` for a tick.
    pub async fn finished_row(db: &Db, job: &str, scheduled_for: NaiveDateTime, status: RunStatus) {
        let job = job.to_owned();
        db.run(move |c| {
            let now = db::now_utc();
            runs::log::insert(
                c,
                &runs::NewSyncLog {
                    job_name: &job,
                    sync_type: SyncType::Stock,
                    status,
                    message: None,
                    total_count: 1,
                    success_count: 1,
                    failed_count: 0,
                    started_at: now,
                    completed_at: Some(now),
                    created_at: now,
                    scheduled_for: Some(scheduled_for),
                    trigger: Trigger::Schedule,
                    instance: "old-host:1",
                },
            )?;
            Ok(())
        })
        .await
        .unwrap();
    }

    /// Registers a daemon instance with a heartbeat `age` old.
    pub async fn instance_row(db: &Db, instance: &str, age: chrono::Duration) {
        let instance = instance.to_owned();
        db.run(move |c| {
            let at = db::now_utc() - age;
            let (host, pid) = instance.rsplit_once(':').unwrap();
            instances::register(
                c,
                &instances::Instance {
                    instance: instance.clone(),
                    hostname: host.to_owned(),
                    pid: pid.parse().unwrap(),
                    version: "0".into(),
                    started_at: at,
                    heartbeat_at: at,
                    stopped_at: None,
                    client_stats: None,
                },
            )?;
            Ok(())
        })
        .await
        .unwrap();
    }

    /// This host's name as it appears in `instance` columns.
    pub fn this_host() -> String {
        let me = db::instance_name();
        me.rsplit_once(':').unwrap().0.to_owned()
    }

    /// A pid no process can have (above Linux's largest pid_max, 2^22).
    pub const DEAD_PID: u32 = 4_194_305;
}

use support::*;

fn statuses(rows: &[runs::SyncLog]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| {
            (
                r.scheduled_for.unwrap().format("%H:%M:%S").to_string(),
                r.status.to_string(),
            )
        })
        .collect()
}

fn pair(t: &str, s: &str) -> (String, String) {
    (t.to_owned(), s.to_owned())
}

#[tokio::test]
async fn a_run_longer_than_its_interval_gives_skipped_rows_never_two_runs_at_once() {
    let test = TestDb::new().await;
    let runner = FakeRunner::new(&test.db, true);
    let scheduler = Scheduler::new(test.db.clone(), runner.clone(), 5_000);
    scheduler.upsert_job(job(
        &test,
        "stock",
        "kind = \"stock\"\nschedule = \"*/2 * * * * *\"",
    ));

    let first = scheduler
        .fire("stock", utc(2026, 11, 24, 2, 0, 0), Trigger::Schedule)
        .await
        .unwrap();
    let FireOutcome::Started(first) = first else {
        panic!("{first:?}")
    };
    runner.wait_started(1).await;
    for s in [2, 4] {
        let outcome = scheduler
            .fire("stock", utc(2026, 11, 24, 2, 0, s), Trigger::Schedule)
            .await
            .unwrap();
        assert!(matches!(outcome, FireOutcome::Skipped), "{outcome:?}");
    }
    runner.release();
    assert_eq!(first.wait().await, [RunStatus::Success]);
    let next = scheduler
        .fire("stock", utc(2026, 11, 24, 2, 0, 6), Trigger::Schedule)
        .await
        .unwrap();
    let FireOutcome::Started(next) = next else {
        panic!("{next:?}")
    };
    runner.release();
    assert_eq!(next.wait().await, [RunStatus::Success]);

    let rows = rows(&test.db, "stock").await;
    assert_eq!(
        statuses(&rows),
        [
            pair("02:00:00", "success"),
            pair("02:00:02", "skipped"),
            pair("02:00:04", "skipped"),
            pair("02:00:06", "success"),
        ]
    );
    assert_eq!(
        rows[1].message.as_deref(),
        Some("the previous run is still going")
    );
    assert!(rows.iter().all(|r| r.trigger == Trigger::Schedule));
    assert_eq!(runner.max_in_flight(), 1, "never two runs at once");
}

#[tokio::test]
async fn overlap_queue_runs_one_waiting_tick_after_the_running_one() {
    let test = TestDb::new().await;
    let runner = FakeRunner::new(&test.db, true);
    let scheduler = Scheduler::new(test.db.clone(), runner.clone(), 5_000);
    scheduler.upsert_job(job(
        &test,
        "stock",
        "kind = \"stock\"\nschedule = \"*/2 * * * * *\"\noverlap = \"queue\"",
    ));

    let FireOutcome::Started(run) = scheduler
        .fire("stock", utc(2026, 11, 24, 2, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the first tick should start")
    };
    runner.wait_started(1).await;
    let queued = scheduler
        .fire("stock", utc(2026, 11, 24, 2, 0, 2), Trigger::Schedule)
        .await
        .unwrap();
    assert!(matches!(queued, FireOutcome::Queued), "{queued:?}");
    let third = scheduler
        .fire("stock", utc(2026, 11, 24, 2, 0, 4), Trigger::Schedule)
        .await
        .unwrap();
    assert!(
        matches!(third, FireOutcome::Skipped),
        "at most one waiting tick: {third:?}"
    );
    runner.release();
    runner.wait_started(2).await;
    runner.release();
    assert_eq!(run.wait().await, [RunStatus::Success, RunStatus::Success]);

    assert_eq!(
        statuses(&rows(&test.db, "stock").await),
        [
            pair("02:00:00", "success"),
            pair("02:00:02", "success"),
            pair("02:00:04", "skipped")
        ]
    );
    assert_eq!(runner.max_in_flight(), 1);
}

#[tokio::test]
async fn a_tick_is_fired_once_even_when_its_trigger_repeats() {
    let test = TestDb::new().await;
    let runner = FakeRunner::new(&test.db, false);
    let scheduler = Scheduler::new(test.db.clone(), runner.clone(), 5_000);
    let job = job(&test, "stock", "kind = \"stock\"\nschedule = \"*/2 * * * * *\"");
    let schedule = job.schedule.clone().unwrap();
    scheduler.upsert_job(job);

    // A trigger that runs 700 ms late names the tick it stands for.
    let late = utc(2026, 11, 24, 2, 0, 2) + chrono::Duration::milliseconds(700);
    let FireOutcome::Started(run) = scheduler.on_tick("stock", &schedule, late).await else {
        panic!("the tick should start")
    };
    run.wait().await;
    let again = scheduler.on_tick("stock", &schedule, late).await;
    assert!(matches!(again, FireOutcome::Ignored(_)), "{again:?}");
    // A trigger made for an older schedule does nothing.
    let old = config::Schedule::parse("*/5 * * * * *").unwrap();
    let stale = scheduler
        .on_tick("stock", &old, late + chrono::Duration::seconds(3))
        .await;
    assert!(matches!(stale, FireOutcome::Ignored(_)), "{stale:?}");

    assert_eq!(
        statuses(&rows(&test.db, "stock").await),
        [pair("02:00:02", "success")]
    );
}

#[tokio::test]
async fn two_instances_firing_the_same_tick_run_it_once() {
    let test = TestDb::new().await;
    let job = job(&test, "stock", "kind = \"stock\"\nschedule = \"*/2 * * * * *\"");
    let runners = [FakeRunner::new(&test.db, false), FakeRunner::new(&test.db, false)];
    let schedulers: Vec<Scheduler> = runners
        .iter()
        .map(|r| {
            let s = Scheduler::new(test.db.clone(), r.clone(), 5_000);
            s.upsert_job(job.clone());
            s
        })
        .collect();
    let tick = utc(2026, 11, 24, 2, 0, 0);
    let (a, b) = tokio::join!(
        schedulers[0].fire("stock", tick, Trigger::Schedule),
        schedulers[1].fire("stock", tick, Trigger::Schedule)
    );
    let mut statuses_seen = Vec::new();
    for outcome in [a.unwrap(), b.unwrap()] {
        let FireOutcome::Started(run) = outcome else {
            panic!("{outcome:?}")
        };
        statuses_seen.extend(run.wait().await);
    }
    statuses_seen.sort_by_key(|s| s.as_str());
    assert_eq!(statuses_seen, [RunStatus::Skipped, RunStatus::Success]);
    assert_eq!(
        statuses(&rows(&test.db, "stock").await),
        [pair("02:00:00", "success")]
    );
}

#[tokio::test]
async fn a_run_going_on_another_live_instance_makes_the_tick_skipped() {
    let test = TestDb::new().await;
    let runner = FakeRunner::new(&test.db, false);
    let scheduler = Scheduler::new(test.db.clone(), runner.clone(), 5_000);
    scheduler.upsert_job(job(
        &test,
        "stock",
        "kind = \"stock\"\nschedule = \"*/2 * * * * *\"",
    ));
    instance_row(&test.db, "elsewhere:42", chrono::Duration::seconds(1)).await;
    orphan_row(
        &test.db,
        "stock",
        "elsewhere:42",
        utc(2026, 11, 24, 2, 0, 0).naive_utc(),
        3,
    )
    .await;

    let FireOutcome::Started(run) = scheduler
        .fire("stock", utc(2026, 11, 24, 2, 0, 2), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the tick should be taken")
    };
    assert_eq!(run.wait().await, [RunStatus::Skipped]);
    let rows = rows(&test.db, "stock").await;
    assert_eq!(
        statuses(&rows),
        [pair("02:00:00", "running"), pair("02:00:02", "skipped")]
    );
    assert!(
        rows[1].message.as_deref().unwrap().contains("elsewhere:42"),
        "{:?}",
        rows[1].message
    );

    // Once that instance's heartbeat is stale, its row no longer holds the job back.
    instance_row(&test.db, "elsewhere:42", chrono::Duration::seconds(60)).await;
    let FireOutcome::Started(run) = scheduler
        .fire("stock", utc(2026, 11, 24, 2, 0, 4), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the tick should be taken")
    };
    assert_eq!(run.wait().await, [RunStatus::Success]);
}

#[tokio::test]
async fn catch_up_runs_once_for_a_missed_tick_of_a_job_with_history() {
    let test = TestDb::new().await;
    let runner = FakeRunner::new(&test.db, false);
    let scheduler = Scheduler::new(test.db.clone(), runner.clone(), 5_000);
    let daily = "kind = \"stock\"\nschedule = \"0 0 3 * * *\"\ntimezone = \"UTC\"";
    for name in ["missed", "fresh", "done", "interrupted"] {
        scheduler.upsert_job(job(&test, name, daily));
    }
    scheduler.upsert_job(job(&test, "not_wanted", &format!("{daily}\ncatch_up = \"skip\"")));
    scheduler.upsert_job(job(&test, "off", &format!("{daily}\nenabled = false")));

    let now = utc(2026, 11, 24, 12, 0, 0);
    let last_fire = utc(2026, 11, 24, 3, 0, 0).naive_utc();
    let day_before = utc(2026, 11, 23, 3, 0, 0).naive_utc();
    for name in ["missed", "not_wanted", "off"] {
        finished_row(&test.db, name, day_before, RunStatus::Success).await;
    }
    finished_row(&test.db, "done", last_fire, RunStatus::Failed).await;
    finished_row(&test.db, "interrupted", last_fire, RunStatus::Interrupted).await;

    let outcomes = scheduler.catch_up(now).await.unwrap();
    let mut started = Vec::new();
    for (name, outcome) in outcomes {
        if let FireOutcome::Started(run) = outcome {
            assert_eq!(run.wait().await, [RunStatus::Success]);
            started.push(name);
        }
    }
    started.sort();
    assert_eq!(started, ["interrupted", "missed"]);
    for name in ["missed", "interrupted"] {
        let rows = rows(&test.db, name).await;
        let last = rows.last().unwrap();
        assert_eq!(
            (last.trigger.as_str(), last.status.as_str(), last.scheduled_for),
            ("catch_up", "success", Some(last_fire)),
            "{name}"
        );
    }
    for name in ["fresh", "done", "not_wanted", "off"] {
        assert!(
            rows(&test.db, name)
                .await
                .iter()
                .all(|r| r.trigger != Trigger::CatchUp),
            "{name} must not catch up"
        );
    }

    // Caught up once: a second start does nothing more.
    let again = Scheduler::new(test.db.clone(), runner.clone(), 5_000);
    for name in ["missed", "interrupted"] {
        again.upsert_job(job(&test, name, daily));
    }
    let outcomes = again.catch_up(now).await.unwrap();
    assert!(
        outcomes.iter().all(|(_, o)| matches!(o, FireOutcome::Ignored(_))),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn recovery_closes_rows_of_gone_processes_only() {
    let test = TestDb::new().await;
    let host = this_host();
    let tick = utc(2026, 11, 24, 2, 0, 0).naive_utc();
    let crashed = format!("{host}:{DEAD_PID}");
    // Killed a moment ago: its heartbeat is still fresh, but the process is gone.
    instance_row(&test.db, &crashed, chrono::Duration::seconds(1)).await;
    orphan_row(&test.db, "crashed", &crashed, tick, 7).await;
    // A live daemon on another host, and one whose host went silent long ago.
    instance_row(&test.db, "far:10", chrono::Duration::seconds(1)).await;
    orphan_row(&test.db, "far_live", "far:10", tick, 1).await;
    instance_row(&test.db, "gone:11", chrono::Duration::minutes(10)).await;
    orphan_row(&test.db, "far_gone", "gone:11", tick, 2).await;
    // A live process on this host without a heartbeat (a `run-job` command): pid 1 always lives.
    orphan_row(&test.db, "manual", &format!("{host}:1"), tick, 4).await;

    let report = scheduler::recover_orphaned_runs(&test.db, 5_000, Utc::now())
        .await
        .unwrap();
    assert_eq!(report.rows_closed(), 2, "{report:?}");

    let crashed_row = &rows(&test.db, "crashed").await[0];
    assert_eq!(crashed_row.status, RunStatus::Interrupted);
    assert_eq!(
        (crashed_row.total_count, crashed_row.success_count),
        (20, 7),
        "partial counts kept"
    );
    assert!(crashed_row.completed_at.is_some());
    assert!(crashed_row.message.as_deref().unwrap().contains(&crashed));
    assert_eq!(
        rows(&test.db, "far_live").await[0].status,
        RunStatus::Running,
        "left to its owner"
    );
    assert_eq!(
        rows(&test.db, "manual").await[0].status,
        RunStatus::Running,
        "left to its owner"
    );
    assert_eq!(rows(&test.db, "far_gone").await[0].status, RunStatus::Interrupted);
}

/// Issue 10, item 7: a restart frees at once the order leases of gone processes of this host; a
/// lease of a live process, or of another host, is left to run out.
#[tokio::test]
async fn recovery_frees_the_order_leases_of_gone_processes_of_this_host_only() {
    use crate::support_orders::{insert_many_by_sql, row};
    use haier_sync::orders::{outbox, OutboxStatus};
    let test = TestDb::new().await;
    let host = this_host();
    let crashed = format!("{host}:{DEAD_PID}");
    // Killed a moment ago: its heartbeat is still fresh, but the process is gone.
    instance_row(&test.db, &crashed, chrono::Duration::seconds(1)).await;
    let live = format!("{host}:{}", std::os::unix::process::parent_id());
    let holders = [
        (format!("{crashed}:0badf00d"), "DEAD"),
        (format!("{live}:00c0ffee"), "LIVE"),
        ("far:12:0000abcd".to_owned(), "FAR"),
    ];
    for (token, prefix) in &holders {
        let ids = insert_many_by_sql(&test.db, prefix, 3, &["GA0SZC00U"]).await;
        let token = token.clone();
        test.db
            .run(move |c| {
                let now = db::now_utc();
                let claimed = outbox::claim_due_orders(c, &token, now, now + chrono::Duration::hours(1), 3)?;
                Ok(claimed.len())
            })
            .await
            .map(|n| assert_eq!(n, ids.len()))
            .unwrap();
    }

    let report = scheduler::recover_orphaned_runs(&test.db, 5_000, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        report.leases_freed,
        [(holders[0].0.clone(), 3)],
        "only the gone process of this host: {report:?}"
    );
    for i in 1..=3 {
        let freed = row(&test.db, &format!("DEAD-{i:05}")).await;
        assert_eq!(freed.status, OutboxStatus::Pending, "{freed:?}");
        assert_eq!((freed.locked_by.as_deref(), freed.locked_until), (None, None));
        assert!(freed.next_attempt_at <= db::now_utc(), "due now: {freed:?}");
        assert_eq!(freed.attempts, 1, "the lost attempt is counted");
        assert!(
            freed.last_error.as_deref().unwrap().contains(&crashed),
            "{freed:?}"
        );
        for (token, prefix) in &holders[1..] {
            let kept = row(&test.db, &format!("{prefix}-{i:05}")).await;
            assert_eq!(
                (kept.status.as_str(), kept.locked_by.as_deref()),
                ("sending", Some(token.as_str())),
                "never stolen"
            );
        }
    }
}

#[tokio::test]
async fn a_stop_during_the_jitter_drops_the_tick_without_a_row() {
    let test = TestDb::new().await;
    let runner = FakeRunner::new(&test.db, false);
    let scheduler = Scheduler::new(test.db.clone(), runner.clone(), 5_000);
    // Up to an hour of jitter: the run waits (a zero draw has odds of one in 3.6 million).
    scheduler.upsert_job(job(
        &test,
        "stock",
        "kind = \"stock\"\nschedule = \"0 0 3 * * *\"\njitter_ms = 3600000",
    ));
    let FireOutcome::Started(run) = scheduler
        .fire("stock", utc(2026, 11, 24, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the tick should be taken")
    };
    assert_eq!(
        scheduler.running_jobs(),
        ["stock"],
        "the job counts as running while it waits"
    );
    scheduler.stop_taking_ticks();
    assert_eq!(run.wait().await, []);
    assert!(rows(&test.db, "stock").await.is_empty());
    assert!(scheduler.wait_for_runs(Duration::from_secs(1)).await);
}

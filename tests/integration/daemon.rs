//! The scheduler driven one step at a time: overlap (skip and queue), ticks taken by another
//! instance, catch-up and crash recovery, all checked as rows in `haier_sync_logs`. The fake
//! runner writes real rows through `RunRecorder` and blocks on a semaphore, never on a sleep.

use chrono::Utc;
use haier_sync::config;
use haier_sync::db;
use haier_sync::orders::OutboxStatus;
use haier_sync::runs::{RunStatus, SyncLog, Trigger};
use haier_sync::scheduler::{self, FireOutcome, Scheduler};
use std::time::Duration;

use crate::support::*;

fn statuses(rows: &[SyncLog]) -> Vec<(String, String)> {
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
    let app = spawn_app().await;
    let runner = FakeRunner::new(app.db(), true);
    let scheduler = Scheduler::new(app.db().clone(), runner.clone(), 5_000);
    scheduler.upsert_job(app.job_from_toml("stock", "kind = \"stock\"\nschedule = \"*/2 * * * * *\""));

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

    let rows = rows(app.db(), "stock").await;
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
    let app = spawn_app().await;
    let runner = FakeRunner::new(app.db(), true);
    let scheduler = Scheduler::new(app.db().clone(), runner.clone(), 5_000);
    scheduler.upsert_job(app.job_from_toml(
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
        statuses(&rows(app.db(), "stock").await),
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
    let app = spawn_app().await;
    let runner = FakeRunner::new(app.db(), false);
    let scheduler = Scheduler::new(app.db().clone(), runner.clone(), 5_000);
    let job = app.job_from_toml("stock", "kind = \"stock\"\nschedule = \"*/2 * * * * *\"");
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
        statuses(&rows(app.db(), "stock").await),
        [pair("02:00:02", "success")]
    );
}

#[tokio::test]
async fn two_instances_firing_the_same_tick_run_it_once() {
    let app = spawn_app().await;
    let job = app.job_from_toml("stock", "kind = \"stock\"\nschedule = \"*/2 * * * * *\"");
    let runners = [FakeRunner::new(app.db(), false), FakeRunner::new(app.db(), false)];
    let schedulers: Vec<Scheduler> = runners
        .iter()
        .map(|r| {
            let s = Scheduler::new(app.db().clone(), r.clone(), 5_000);
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
        statuses(&rows(app.db(), "stock").await),
        [pair("02:00:00", "success")]
    );
}

#[tokio::test]
async fn a_run_going_on_another_live_instance_makes_the_tick_skipped() {
    let app = spawn_app().await;
    let runner = FakeRunner::new(app.db(), false);
    let scheduler = Scheduler::new(app.db().clone(), runner.clone(), 5_000);
    scheduler.upsert_job(app.job_from_toml("stock", "kind = \"stock\"\nschedule = \"*/2 * * * * *\""));
    instance_row(app.db(), "elsewhere:42", chrono::Duration::seconds(1)).await;
    orphan_row(
        app.db(),
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
    let rows = rows(app.db(), "stock").await;
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
    instance_row(app.db(), "elsewhere:42", chrono::Duration::seconds(60)).await;
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
    let app = spawn_app().await;
    let runner = FakeRunner::new(app.db(), false);
    let scheduler = Scheduler::new(app.db().clone(), runner.clone(), 5_000);
    let daily = "kind = \"stock\"\nschedule = \"0 0 3 * * *\"\ntimezone = \"UTC\"";
    for name in ["missed", "fresh", "done", "interrupted"] {
        scheduler.upsert_job(app.job_from_toml(name, daily));
    }
    scheduler.upsert_job(app.job_from_toml("not_wanted", &format!("{daily}\ncatch_up = \"skip\"")));
    scheduler.upsert_job(app.job_from_toml("off", &format!("{daily}\nenabled = false")));

    let now = utc(2026, 11, 24, 12, 0, 0);
    let last_fire = utc(2026, 11, 24, 3, 0, 0).naive_utc();
    let day_before = utc(2026, 11, 23, 3, 0, 0).naive_utc();
    for name in ["missed", "not_wanted", "off"] {
        finished_row(app.db(), name, day_before, RunStatus::Success).await;
    }
    finished_row(app.db(), "done", last_fire, RunStatus::Failed).await;
    finished_row(app.db(), "interrupted", last_fire, RunStatus::Interrupted).await;

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
        let rows = rows(app.db(), name).await;
        let last = rows.last().unwrap();
        assert_eq!(
            (last.trigger.as_str(), last.status.as_str(), last.scheduled_for),
            ("catch_up", "success", Some(last_fire)),
            "{name}"
        );
    }
    for name in ["fresh", "done", "not_wanted", "off"] {
        assert!(
            rows(app.db(), name)
                .await
                .iter()
                .all(|r| r.trigger != Trigger::CatchUp),
            "{name} must not catch up"
        );
    }

    // Caught up once: a second start does nothing more.
    let again = Scheduler::new(app.db().clone(), runner.clone(), 5_000);
    for name in ["missed", "interrupted"] {
        again.upsert_job(app.job_from_toml(name, daily));
    }
    let outcomes = again.catch_up(now).await.unwrap();
    assert!(
        outcomes.iter().all(|(_, o)| matches!(o, FireOutcome::Ignored(_))),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn recovery_closes_rows_of_gone_processes_only() {
    let app = spawn_app().await;
    let host = this_host();
    let tick = utc(2026, 11, 24, 2, 0, 0).naive_utc();
    let crashed = format!("{host}:{DEAD_PID}");
    // Killed a moment ago: its heartbeat is still fresh, but the process is gone.
    instance_row(app.db(), &crashed, chrono::Duration::seconds(1)).await;
    orphan_row(app.db(), "crashed", &crashed, tick, 7).await;
    // A live daemon on another host, and one whose host went silent long ago.
    instance_row(app.db(), "far:10", chrono::Duration::seconds(1)).await;
    orphan_row(app.db(), "far_live", "far:10", tick, 1).await;
    instance_row(app.db(), "gone:11", chrono::Duration::minutes(10)).await;
    orphan_row(app.db(), "far_gone", "gone:11", tick, 2).await;
    // A live process on this host without a heartbeat (a `run-job` command): pid 1 always lives.
    orphan_row(app.db(), "manual", &format!("{host}:1"), tick, 4).await;

    let report = scheduler::recover_orphaned_runs(app.db(), 5_000, Utc::now())
        .await
        .unwrap();
    assert_eq!(report.rows_closed(), 2, "{report:?}");

    let crashed_row = &rows(app.db(), "crashed").await[0];
    assert_eq!(crashed_row.status, RunStatus::Interrupted);
    assert_eq!(
        (crashed_row.total_count, crashed_row.success_count),
        (20, 7),
        "partial counts kept"
    );
    assert!(crashed_row.completed_at.is_some());
    assert!(crashed_row.message.as_deref().unwrap().contains(&crashed));
    assert_eq!(
        rows(app.db(), "far_live").await[0].status,
        RunStatus::Running,
        "left to its owner"
    );
    assert_eq!(
        rows(app.db(), "manual").await[0].status,
        RunStatus::Running,
        "left to its owner"
    );
    assert_eq!(rows(app.db(), "far_gone").await[0].status, RunStatus::Interrupted);
}

/// Issue 10, item 7: a restart frees at once the order leases of gone processes of this host; a
/// lease of a live process, or of another host, is left to run out.
#[tokio::test]
async fn recovery_frees_the_order_leases_of_gone_processes_of_this_host_only() {
    use haier_sync::orders::outbox;
    let app = spawn_app().await;
    let host = this_host();
    let crashed = format!("{host}:{DEAD_PID}");
    // Killed a moment ago: its heartbeat is still fresh, but the process is gone.
    instance_row(app.db(), &crashed, chrono::Duration::seconds(1)).await;
    let live = format!("{host}:{}", std::os::unix::process::parent_id());
    let holders = [
        (format!("{crashed}:0badf00d"), "DEAD"),
        (format!("{live}:00c0ffee"), "LIVE"),
        ("far:12:0000abcd".to_owned(), "FAR"),
    ];
    for (token, prefix) in &holders {
        let ids = insert_many_by_sql(app.db(), prefix, 3, &["GA0SZC00U"]).await;
        let token = token.clone();
        app.db()
            .run(move |c| {
                let now = db::now_utc();
                let claimed = outbox::claim_due_orders(c, &token, now, now + chrono::Duration::hours(1), 3)?;
                Ok(claimed.len())
            })
            .await
            .map(|n| assert_eq!(n, ids.len()))
            .unwrap();
    }

    let report = scheduler::recover_orphaned_runs(app.db(), 5_000, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        report.leases_freed,
        [(holders[0].0.clone(), 3)],
        "only the gone process of this host: {report:?}"
    );
    for i in 1..=3 {
        let freed = row(app.db(), &format!("DEAD-{i:05}")).await;
        assert_eq!(freed.status, OutboxStatus::Pending, "{freed:?}");
        assert_eq!((freed.locked_by.as_deref(), freed.locked_until), (None, None));
        assert!(freed.next_attempt_at <= db::now_utc(), "due now: {freed:?}");
        assert_eq!(freed.attempts, 1, "the lost attempt is counted");
        assert!(
            freed.last_error.as_deref().unwrap().contains(&crashed),
            "{freed:?}"
        );
        for (token, prefix) in &holders[1..] {
            let kept = row(app.db(), &format!("{prefix}-{i:05}")).await;
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
    let app = spawn_app().await;
    let runner = FakeRunner::new(app.db(), false);
    let scheduler = Scheduler::new(app.db().clone(), runner.clone(), 5_000);
    // Up to an hour of jitter: the run waits (a zero draw has odds of one in 3.6 million).
    scheduler.upsert_job(app.job_from_toml(
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
    assert!(rows(app.db(), "stock").await.is_empty());
    assert!(scheduler.wait_for_runs(Duration::from_secs(1)).await);
}

//! The whole daemon: real cron ticks every 2 s and a schedule edited on disk, reload that applies
//! only the difference, graceful shutdown (finish within the grace, else interrupt), restart
//! after `kill -9`, the heartbeat, and the real signals. Checked as rows in `haier_sync_logs`.

use crate::support::*;
use chrono::Utc;
use haier_sync::cli::status;
use haier_sync::db::instances;
use haier_sync::runs::{RunStatus, SyncLog, Trigger};
use haier_sync::scheduler::daemon::{ReloadOutcome, Signals, CANCEL_WAIT};
use haier_sync::scheduler::{self, Daemon, FireOutcome, JobChange};
use std::time::{Duration, Instant};

fn second(row: &SyncLog) -> u32 {
    use chrono::Timelike;
    row.scheduled_for.unwrap().second()
}

/// Consecutive fire times `step` seconds apart, one row each, all scheduled and `success` (the
/// newest may still be `running`).
fn assert_one_row_per_tick(rows: &[SyncLog], step: i64) {
    for pair in rows.windows(2) {
        let gap = pair[1].scheduled_for.unwrap() - pair[0].scheduled_for.unwrap();
        assert_eq!(gap.num_seconds(), step, "rows: {rows:#?}");
    }
    for (i, row) in rows.iter().enumerate() {
        let newest = i + 1 == rows.len();
        assert_eq!(row.trigger, Trigger::Schedule, "{row:?}");
        assert!(
            row.status == RunStatus::Success || (newest && row.status == RunStatus::Running),
            "{row:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_every_two_seconds_write_a_row_each_and_an_edited_schedule_applies_without_restart() {
    let daemon_table = "[daemon]\nwatch_config = true\nheartbeat_ms = 500\n";
    let every =
        |cron: &str| format!("{daemon_table}\n[jobs.tick]\nkind = \"stock\"\nschedule = \"{cron}\"\n");
    let app = spawn_app_with(Options::default().extra_toml(every("*/2 * * * * *"))).await;
    let runner = FakeRunner::new(app.db(), false);
    let handle = Daemon::new(app.config().clone(), app.db().clone(), runner.clone())
        .with_watch_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();

    let rows = wait_for_rows(app.db(), "tick", "three ticks of */2", DEADLINE, |r| r.len() >= 3).await;
    assert!(rows.iter().all(|r| second(r) % 2 == 0), "{rows:#?}");
    assert_one_row_per_tick(&rows, 2);

    // Edit the file: every 3 s. The first tick on an odd multiple of 3 proves the new schedule.
    app.write_config(&app.config_text_with_tables(&every("*/3 * * * * *")));
    let rows = wait_for_rows(app.db(), "tick", "two ticks of */3", DEADLINE, |rows| {
        rows.iter()
            .position(|r| second(r) % 3 == 0 && second(r) % 2 == 1)
            .is_some_and(|i| rows.len() >= i + 2)
    })
    .await;
    let switch = rows
        .iter()
        .position(|r| second(r) % 3 == 0 && second(r) % 2 == 1)
        .unwrap();
    assert!(rows[switch..].iter().all(|r| second(r) % 3 == 0), "{rows:#?}");
    assert_one_row_per_tick(&rows[switch..], 3);

    // An invalid cron is refused: the */3 schedule keeps running.
    let broken = app.config_text_with_tables(&every("*/3 * * *"));
    app.write_config(&broken);
    let seen = rows.len();
    let rows = wait_for_rows(app.db(), "tick", "two more ticks of */3", DEADLINE, |r| {
        r.len() >= seen + 2
    })
    .await;
    assert_one_row_per_tick(&rows[switch..], 3);
    match handle.reload().await.unwrap() {
        ReloadOutcome::Refused(e) => {
            assert_eq!(e.key.as_deref(), Some("jobs.tick.schedule"));
            let line = broken.lines().position(|l| l.contains("*/3 * * *")).unwrap() + 1;
            assert_eq!(e.line, Some(line));
            assert!(
                e.to_string()
                    .contains(&format!("jobs.toml:{line}: jobs.tick.schedule:")),
                "{e}"
            );
        }
        other => panic!("an invalid file must be refused: {other:?}"),
    }
    assert_eq!(
        handle
            .scheduler()
            .job("tick")
            .unwrap()
            .schedule
            .unwrap()
            .as_written(),
        "*/3 * * * * *"
    );

    let report = handle.shutdown().await.unwrap();
    assert_eq!(report.exit_code(), 0);
    assert!(report.ended_within_grace);
    assert_eq!(runner.max_in_flight(), 1);
}

#[tokio::test]
async fn reload_applies_only_the_difference_and_leaves_a_running_job_alone() {
    let daily =
        |name: &str, at: &str| format!("[jobs.{name}]\nkind = \"stock\"\nschedule = \"0 0 {at} * * *\"\n");
    let orders =
        |interval: u32| format!("[jobs.orders]\nkind = \"order_outbox\"\npoll_interval_ms = {interval}\n");
    let before = format!(
        "[daemon]\nwatch_config = false\n\n{}\n{}\n{}\n{}",
        daily("busy", "1"),
        daily("retimed", "2"),
        daily("same", "3"),
        orders(1000)
    );
    let app = spawn_app_with(Options::default().extra_toml(before)).await;
    let runner = FakeRunner::new(app.db(), true);
    let handle = Daemon::new(app.config().clone(), app.db().clone(), runner.clone())
        .start()
        .await
        .unwrap();
    runner.wait_pollers_started(1).await;

    let tick = utc(2026, 11, 24, 1, 0, 0);
    let FireOutcome::Started(busy) = handle
        .scheduler()
        .fire("busy", tick, Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("busy should start")
    };
    runner.wait_started(1).await;

    // busy removed while it runs, retimed moved, fresh added, the poller's interval changed.
    let after = format!(
        "[daemon]\nwatch_config = false\n\n{}\n{}\n{}\n{}",
        daily("retimed", "5"),
        daily("same", "3"),
        daily("fresh", "4"),
        orders(250)
    );
    app.write_config(&app.config_text_with_tables(&after));
    let ReloadOutcome::Applied(changes) = handle.reload().await.unwrap() else {
        panic!("the new file is valid")
    };
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "job busy: removed (a run that goes on is left to end)",
            "job fresh: added",
            "job orders: poll_interval_ms changed; the next run uses the new value",
            "job retimed: re-timed from `0 0 2 * * * Asia/Shanghai` to `0 0 5 * * * Asia/Shanghai`",
        ]
    );
    assert!(matches!(changes[0], JobChange::Removed { .. }));

    // The removed job's run goes on and ends normally; the job takes no new ticks.
    assert_eq!(handle.scheduler().running_jobs(), ["busy"]);
    runner.release();
    assert_eq!(busy.wait().await, [RunStatus::Success]);
    let rows = rows(app.db(), "busy").await;
    assert_eq!(
        (rows.len(), rows[0].status.as_str(), rows[0].success_count),
        (1, "success", 10)
    );
    let later = handle
        .scheduler()
        .fire("busy", tick + chrono::Duration::days(1), Trigger::Schedule)
        .await
        .unwrap();
    assert!(matches!(later, FireOutcome::Ignored(_)), "{later:?}");
    assert_eq!(
        handle
            .scheduler()
            .job("retimed")
            .unwrap()
            .schedule
            .unwrap()
            .as_written(),
        "0 0 5 * * *"
    );
    assert!(handle.scheduler().job("fresh").is_some());

    // The poller was restarted with its new interval.
    runner.wait_pollers_started(2).await;
    let intervals: Vec<u64> = runner
        .pollers
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.poll_interval_ms)
        .collect();
    assert_eq!(intervals, [1000, 250]);

    // Reloading the same file changes nothing.
    let ReloadOutcome::Applied(changes) = handle.reload().await.unwrap() else {
        panic!("still valid")
    };
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(handle.shutdown().await.unwrap().exit_code(), 0);
}

#[tokio::test]
async fn shutdown_lets_a_running_job_finish_within_the_grace() {
    let text = "[daemon]\nshutdown_grace_ms = 10000\nwatch_config = false\n\n[jobs.stock]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\n";
    let app = spawn_app_with(Options::default().extra_toml(text)).await;
    let runner = FakeRunner::new(app.db(), true);
    let handle = Daemon::new(app.config().clone(), app.db().clone(), runner.clone())
        .start()
        .await
        .unwrap();
    let scheduler = handle.scheduler().clone();
    let FireOutcome::Started(_run) = scheduler
        .fire("stock", utc(2026, 11, 24, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the run should start")
    };
    runner.wait_started(1).await;

    let stopping = tokio::spawn(handle.shutdown());
    wait_until("shutdown to begin", DEADLINE, || scheduler.is_stopping()).await;
    // No new ticks once stopping.
    let late = scheduler
        .fire("stock", utc(2026, 11, 25, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap();
    assert!(matches!(late, FireOutcome::Ignored(_)), "{late:?}");
    runner.release();
    let report = stopping.await.unwrap().unwrap();
    assert!(report.ended_within_grace, "{report:?}");
    assert!(report.cancelled.is_empty());
    assert_eq!(report.exit_code(), 0);
    let rows = rows(app.db(), "stock").await;
    assert_eq!(
        (rows.len(), rows[0].status.as_str(), rows[0].success_count),
        (1, "success", 10)
    );
}

#[tokio::test]
async fn shutdown_mid_run_interrupts_it_after_the_grace_with_partial_counts() {
    let text = "[daemon]\nshutdown_grace_ms = 300\nwatch_config = false\n\n[jobs.stock]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\n";
    let app = spawn_app_with(Options::default().extra_toml(text)).await;
    let runner = FakeRunner::new(app.db(), true);
    let handle = Daemon::new(app.config().clone(), app.db().clone(), runner.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(scheduler::daemon_running(app.db(), 5_000).await.unwrap().len(), 1);
    let FireOutcome::Started(_run) = handle
        .scheduler()
        .fire("stock", utc(2026, 11, 24, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the run should start")
    };
    runner.wait_started(1).await;

    let started = Instant::now();
    let report = handle.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "waited for the grace: {took:?}"
    );
    assert!(took < Duration::from_millis(300) + CANCEL_WAIT, "took {took:?}");
    assert_eq!(report.exit_code(), 0);
    assert!(!report.ended_within_grace);
    assert_eq!(report.cancelled, ["stock"]);
    assert_eq!(report.rows_closed_by_daemon, 0, "the run closed its own row");

    let rows = rows(app.db(), "stock").await;
    let row = &rows[0];
    assert_eq!(row.status, RunStatus::Interrupted);
    assert_eq!((row.total_count, row.success_count, row.failed_count), (10, 5, 0));
    assert!(row.completed_at.is_some());
    assert!(
        scheduler::daemon_running(app.db(), 5_000)
            .await
            .unwrap()
            .is_empty(),
        "marked stopped"
    );
}

#[tokio::test]
async fn a_restart_after_kill_9_closes_the_orphan_row_and_catches_up() {
    let text = "[daemon]\nwatch_config = false\n\n[jobs.stock]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\ntimezone = \"UTC\"\n";
    let app = spawn_app_with(Options::default().extra_toml(text)).await;
    let config = app.config().clone();
    // The previous daemon on this host was killed mid-run a moment ago.
    let now = chrono::Utc::now();
    let tick = scheduler::fire_time_at_or_before(config.jobs["stock"].as_sync().unwrap(), now).unwrap();
    let crashed = format!("{}:{DEAD_PID}", this_host());
    instance_row(app.db(), &crashed, chrono::Duration::seconds(1)).await;
    orphan_row(app.db(), "stock", &crashed, tick.naive_utc(), 7).await;

    let runner = FakeRunner::new(app.db(), false);
    let handle = Daemon::new(config, app.db().clone(), runner.clone())
        .start()
        .await
        .unwrap();
    let rows = wait_for_rows(app.db(), "stock", "the catch-up run", DEADLINE, |rows| {
        rows.iter()
            .any(|r| r.trigger == Trigger::CatchUp && r.status == RunStatus::Success)
    })
    .await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let orphan = rows.iter().find(|r| r.instance == crashed).unwrap();
    assert_eq!(orphan.status, RunStatus::Interrupted);
    assert_eq!(
        (orphan.total_count, orphan.success_count),
        (20, 7),
        "partial counts kept"
    );
    let catch_up = rows.iter().find(|r| r.trigger == Trigger::CatchUp).unwrap();
    assert_eq!(catch_up.scheduled_for, Some(tick.naive_utc()));
    assert_eq!(catch_up.instance, haier_sync::db::instance_name());
    assert_eq!(handle.shutdown().await.unwrap().exit_code(), 0);
}

#[tokio::test]
async fn the_heartbeat_shows_the_daemon_running_until_it_stops() {
    let app =
        spawn_app_with(Options::default().extra_toml("[daemon]\nheartbeat_ms = 100\nwatch_config = false\n"))
            .await;
    let handle = Daemon::new(
        app.config().clone(),
        app.db().clone(),
        FakeRunner::new(app.db(), false),
    )
    .start()
    .await
    .unwrap();
    let me = haier_sync::db::instance_name();
    let db = app.db();
    wait_for(
        "a heartbeat",
        DEADLINE,
        || {
            let name = me.clone();
            async move {
                db.run(move |c| Ok(instances::find(c, &name)?))
                    .await
                    .unwrap()
                    .expect("the instance is registered")
            }
        },
        |row| row.heartbeat_at > row.started_at,
    )
    .await;
    // What `haier-sync status` reports, through the code it runs.
    let zone = app.config().defaults.timezone;
    let report = status::collect(app.db(), app.config(), Utc::now()).await.unwrap();
    assert!(report.daemon.running, "{report:#?}");
    assert_eq!(
        report
            .daemon
            .instances
            .iter()
            .map(|i| i.instance.as_str())
            .collect::<Vec<_>>(),
        [me.as_str()]
    );
    let shown = status::render(&report, zone);
    assert!(
        shown.starts_with(&format!("daemon: running — {me} (up since ")),
        "{shown}"
    );
    handle.shutdown().await.unwrap();
    let report = status::collect(app.db(), app.config(), Utc::now()).await.unwrap();
    assert!(!report.daemon.running, "{report:#?}");
    assert!(report.daemon.instances.is_empty(), "{report:#?}");
    assert!(status::render(&report, zone).starts_with("daemon: not running\n"));
}

/// A reload that changes `heartbeat_ms` re-makes the heartbeat's timer: a daemon started with
/// beats ten minutes apart beats within the deadline once the file asks for 100 ms.
#[tokio::test]
async fn a_reload_that_shortens_heartbeat_ms_makes_the_daemon_beat_at_the_new_period() {
    let daemon_table = |ms: u64| format!("[daemon]\nheartbeat_ms = {ms}\nwatch_config = false\n");
    let app = spawn_app_with(Options::default().extra_toml(daemon_table(600_000))).await;
    let handle = Daemon::new(
        app.config().clone(),
        app.db().clone(),
        FakeRunner::new(app.db(), false),
    )
    .start()
    .await
    .unwrap();
    let me = haier_sync::db::instance_name();
    let db = app.db();
    let read_row = || {
        let name = me.clone();
        async move {
            db.run(move |c| Ok(instances::find(c, &name)?))
                .await
                .unwrap()
                .expect("the instance is registered")
        }
    };
    let registered = read_row().await;
    assert_eq!(registered.heartbeat_at, registered.started_at, "no beat yet");

    app.write_config(&app.config_text_with_tables(&daemon_table(100)));
    assert!(matches!(
        handle.reload().await.unwrap(),
        ReloadOutcome::Applied(_)
    ));
    // Two beats after the reload: the timer runs at the new period, not just once.
    let first = wait_for("a heartbeat after the reload", DEADLINE, read_row, |row| {
        row.heartbeat_at > registered.heartbeat_at
    })
    .await;
    wait_for("a second heartbeat", DEADLINE, read_row, |row| {
        row.heartbeat_at > first.heartbeat_at
    })
    .await;
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_service_stops_the_daemon_with_exit_code_1() {
    let app = spawn_app_with(Options::default().extra_toml("[daemon]\nwatch_config = false\n")).await;
    let handle = Daemon::new(
        app.config().clone(),
        app.db().clone(),
        FakeRunner::new(app.db(), false),
    )
    .with_service(scheduler::Service::new(
        "the callback receiver",
        |_cancel| async { anyhow::bail!("address in use") },
    ))
    .start()
    .await
    .unwrap();
    let report = tokio::time::timeout(DEADLINE, handle.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.failed_service.as_deref(), Some("the callback receiver"));
    assert_eq!(report.exit_code(), 1);
}

/// The real signals: SIGHUP reloads, SIGTERM stops with exit code 0. (The handlers are installed
/// before the signals are sent, so the test process itself is never stopped by them.)
#[tokio::test]
async fn sighup_reloads_and_sigterm_stops_the_daemon() {
    let job = |at: &str| {
        format!("[daemon]\nwatch_config = false\n\n[jobs.stock]\nkind = \"stock\"\nschedule = \"0 0 {at} * * *\"\n")
    };
    let app = spawn_app_with(Options::default().extra_toml(job("3"))).await;
    let signals = Signals::listen().unwrap();
    let handle = Daemon::new(
        app.config().clone(),
        app.db().clone(),
        FakeRunner::new(app.db(), false),
    )
    .start()
    .await
    .unwrap();
    let scheduler = handle.scheduler().clone();
    let running = tokio::spawn(handle.run_until(signals));

    app.write_config(&app.config_text_with_tables(&job("4")));
    send_signal("HUP");
    wait_until("SIGHUP to reload", DEADLINE, || {
        scheduler.job("stock").unwrap().schedule.unwrap().as_written() == "0 0 4 * * *"
    })
    .await;
    send_signal("TERM");
    let report = tokio::time::timeout(DEADLINE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.exit_code(), 0);
    assert!(scheduler.is_stopping());
}

fn send_signal(name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(std::process::id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

//! `haier-sync pause` and `resume`: a pause stops a job's ticks on every daemon sharing the
//! database within one heartbeat, outlives a restart, shows in `status`, and a resume does not
//! catch up unless asked. Checked as rows in `haier_sync_logs` and what the commands print.

use crate::support::*;
use chrono::NaiveDateTime;
use haier_sync::db::{self, instances, Db};
use haier_sync::runs::{RunStatus, Trigger};
use haier_sync::scheduler::Daemon;

const HEARTBEAT_MS: i64 = 200;

fn every_second() -> String {
    format!(
        "[daemon]\nheartbeat_ms = {HEARTBEAT_MS}\nwatch_config = false\n\n\
         [jobs.tick]\nkind = \"stock\"\nschedule = \"* * * * * *\"\n"
    )
}

async fn live_instances(db: &Db) -> Vec<instances::Instance> {
    db.run(|c| Ok(instances::live(c, db::now_utc() - chrono::Duration::seconds(2))?))
        .await
        .unwrap()
}

/// Waits until every live daemon in `expected` has beaten its heart after `after`: time has
/// passed for each, seen in the database rather than slept.
async fn wait_heartbeats_after(db: &Db, expected: &[String], after: NaiveDateTime) {
    wait_for(
        "a heartbeat of each daemon after the moment",
        DEADLINE,
        || live_instances(db),
        |live| {
            expected
                .iter()
                .all(|name| live.iter().any(|i| &i.instance == name && i.heartbeat_at > after))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_the_ticks_of_two_daemons_within_a_heartbeat_and_outlives_a_restart() {
    let app = spawn_app_with(Options::process(5000).extra_toml(every_second())).await;
    let mut first = app.daemon_process_named("first");
    let mut second = app.daemon_process_named("second");
    let daemons = vec![
        instance_of(first.start_with(&["run", "--no-callbacks"])),
        instance_of(second.start_with(&["run", "--no-callbacks"])),
    ];
    wait_heartbeats_after(app.db(), &daemons, db::now_utc()).await;
    wait_for_rows(app.db(), "tick", "two finished ticks", DEADLINE, |rows| {
        rows.iter().filter(|r| r.status == RunStatus::Success).count() >= 2
    })
    .await;

    let paused = run_command(&app, &["pause", "tick", "--reason", "supplier maintenance"]);
    assert!(paused.status.success(), "{}", stderr(&paused));
    assert!(stdout(&paused).contains("job tick paused"), "{}", stdout(&paused));
    let quiet_from = db::now_utc() + chrono::Duration::milliseconds(HEARTBEAT_MS);

    // Three seconds (three ticks) pass on both daemons: none of them writes a row.
    let later = db::now_utc() + chrono::Duration::seconds(3);
    wait_heartbeats_after(app.db(), &daemons, later).await;
    let rows_then = rows(app.db(), "tick").await;
    let late: Vec<_> = rows_then.iter().filter(|r| r.started_at > quiet_from).collect();
    assert!(late.is_empty(), "ticks ran while paused: {late:#?}");

    // `status` says who paused the job, when and why.
    let status = run_command(&app, &["status"]);
    let text = stdout(&status);
    assert!(
        text.contains("paused: tick by ") && text.contains(": supplier maintenance"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run_command(&app, &["status", "--json"]).stdout).unwrap();
    let tick = json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "tick")
        .unwrap();
    assert_eq!(tick["paused"]["reason"], "supplier maintenance");
    assert!(
        tick["paused"]["paused_by"].as_str().unwrap().contains('@'),
        "{tick}"
    );

    // A restart of one daemon keeps the pause.
    first.signal("TERM");
    assert!(first.wait_exit(DEADLINE).await.success(), "{}", first.output());
    let restarted = instance_of(first.start_with(&["run", "--no-callbacks"]));
    let later = db::now_utc() + chrono::Duration::seconds(3);
    wait_heartbeats_after(app.db(), &[restarted, daemons[1].clone()], later).await;
    let late: Vec<_> = rows(app.db(), "tick")
        .await
        .into_iter()
        .filter(|r| r.started_at > quiet_from)
        .collect();
    assert!(late.is_empty(), "ticks ran while paused: {late:#?}");

    // Resumed: the next ticks run, and nothing is caught up.
    let resumed_at = db::now_utc();
    let resumed = run_command(&app, &["resume", "tick"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let rows = wait_for_rows(app.db(), "tick", "a tick after resume", DEADLINE, |rows| {
        rows.iter()
            .any(|r| r.started_at > resumed_at && r.status == RunStatus::Success)
    })
    .await;
    assert!(rows.iter().all(|r| r.trigger == Trigger::Schedule), "{rows:#?}");
    first.signal("TERM");
    second.signal("TERM");
    assert!(first.wait_exit(DEADLINE).await.success());
    assert!(second.wait_exit(DEADLINE).await.success());
}

#[tokio::test]
async fn pausing_an_unknown_job_names_the_jobs_there_are_and_changes_nothing() {
    let app = spawn_app_with(Options::default().extra_toml(every_second())).await;
    let output = run_command(&app, &["pause", "tock", "--reason", "typo"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let message = stderr(&output);
    assert!(
        message.contains("no job named \"tock\"") && message.contains("the jobs are: tick"),
        "{message}"
    );
    let output = run_command(&app, &["pause", "tick", "--reason", "  "]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--reason is empty"),
        "{}",
        stderr(&output)
    );
    let status = stdout(&run_command(&app, &["status"]));
    assert!(!status.contains("paused"), "{status}");
}

#[tokio::test]
async fn a_tick_missed_while_paused_is_caught_up_only_when_resume_asks() {
    let text = "[daemon]\nheartbeat_ms = 100\nwatch_config = false\n\n\
                [jobs.daily]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\n";
    let app = spawn_app_with(Options::default().extra_toml(text)).await;
    // The job ran two days ago; yesterday's tick (and today's, when past) was missed.
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).naive_utc();
    finished_row(app.db(), "daily", two_days_ago, RunStatus::Success).await;
    let paused = run_command(&app, &["pause", "daily", "--reason", "stocktaking"]);
    assert!(paused.status.success(), "{}", stderr(&paused));

    // Start while paused: nothing is caught up. Resumed without --catch-up, a restart catches
    // up nothing either.
    let start = || async {
        let runner = FakeRunner::new(app.db(), false);
        Daemon::new(app.config().clone(), app.db().clone(), runner)
            .start()
            .await
            .unwrap()
    };
    let handle = start().await;
    assert!(run_command(&app, &["resume", "daily"]).status.success());
    handle.shutdown().await.unwrap();
    let handle = start().await;
    handle.shutdown().await.unwrap();
    assert_eq!(rows(app.db(), "daily").await.len(), 1, "nothing caught up");

    // Paused again and resumed with --catch-up: one daemon runs the missed tick once.
    assert!(run_command(&app, &["pause", "daily", "--reason", "again"])
        .status
        .success());
    let handle = start().await;
    let resumed = run_command(&app, &["resume", "daily", "--catch-up"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let rows = wait_for_rows(app.db(), "daily", "the catch-up run", DEADLINE, |rows| {
        rows.iter()
            .any(|r| r.trigger == Trigger::CatchUp && r.status == RunStatus::Success)
    })
    .await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    handle.shutdown().await.unwrap();
}

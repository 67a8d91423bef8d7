//! `haier-sync trigger JOB`: the running daemons run a job once, now, with `trigger = manual`;
//! `--no-wait` returns at once; with no live daemon, a paused job or a run going on, nothing is
//! asked. `run-job` refuses while the job runs in a live daemon. Checked as rows in
//! `haier_sync_logs`, `haier_job_triggers` and `haier_audit_log`, what the simulator received and
//! what the commands print.

use crate::support::*;
use chrono::NaiveDateTime;
use haier_sync::audit::{store as audit_store, AuditOutcome, AuditRow};
use haier_sync::control::triggers::{self, JobTrigger, TriggerState};
use haier_sync::db::{self, instances, Db};
use haier_sync::runs::log::SyncLog;
use haier_sync::runs::{RunStatus, Trigger};
use haier_sync::scheduler::{Daemon, FireOutcome};
use haier_sync::simulator::{Faults, SimOptions};

/// Long enough that a daemon on a busy machine is never taken for dead mid-test.
const HEARTBEAT_MS: u64 = 1000;

fn jobs(heartbeat_ms: u64) -> String {
    format!(
        "[daemon]\nheartbeat_ms = {heartbeat_ms}\nwatch_config = false\n\n\
         [jobs.catalog]\nkind = \"products\"\nschedule = \"0 0 0 1 1 *\"\n\n\
         [jobs.orders]\nkind = \"order_outbox\"\n"
    )
}

async fn requests(db: &Db) -> Vec<JobTrigger> {
    let mut rows = db.run(|c| Ok(triggers::latest_requests(c, 100)?)).await.unwrap();
    rows.reverse();
    rows
}

async fn audit_rows(db: &Db, command: &str) -> Vec<AuditRow> {
    let command = command.to_owned();
    db.run(|c| Ok(audit_store::latest_audit_rows(c, 100)?))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.command == command)
        .collect()
}

fn manual_runs(rows: &[SyncLog]) -> Vec<&SyncLog> {
    rows.iter().filter(|r| r.trigger == Trigger::Manual).collect()
}

/// Waits until every daemon in `expected` has beaten its heart after `after`.
async fn wait_heartbeats_after(db: &Db, expected: &[String], after: NaiveDateTime) {
    let _live = wait_for(
        "a heartbeat of each daemon after the moment",
        DEADLINE,
        || db.run(|c| Ok(instances::live(c, db::now_utc() - chrono::Duration::seconds(5))?)),
        |live| {
            live.as_ref().is_ok_and(|live| {
                expected
                    .iter()
                    .all(|name| live.iter().any(|i| &i.instance == name && i.heartbeat_at > after))
            })
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_with_two_daemons_runs_the_job_exactly_once_and_prints_the_outcome() {
    let app = spawn_app_with(Options::process(5000).products(30).extra_toml(jobs(HEARTBEAT_MS))).await;
    let mut first = app.daemon_process_named("first");
    let mut second = app.daemon_process_named("second");
    let daemons = vec![
        instance_of(first.start_with(&["run", "--no-callbacks"])),
        instance_of(second.start_with(&["run", "--no-callbacks"])),
    ];
    wait_heartbeats_after(app.db(), &daemons, db::now_utc()).await;

    // Waited for: one daemon runs it, the command prints how it went.
    let output = run_command(&app, &["trigger", "catalog"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    let rows = rows(app.db(), "catalog").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let run = &rows[0];
    assert_eq!((run.trigger, run.status), (Trigger::Manual, RunStatus::Success));
    assert_eq!(run.scheduled_for, None);
    assert_eq!(run.total_count, 30);
    assert!(daemons.contains(&run.instance), "{run:#?}");
    assert!(
        text.contains("catalog (products): success — 30 items, 30 ok, 0 failed")
            && text.contains(&format!("log #{}", run.id))
            && text.contains(&format!("run by {}", run.instance)),
        "{text}"
    );
    assert_eq!(app.sim.stats().requests.products, 1, "one run's listing call");
    let asked = requests(app.db()).await;
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].state, TriggerState::Finished);
    assert_eq!(asked[0].sync_log_id, Some(run.id));
    assert_eq!(asked[0].claimed_by.as_deref(), Some(run.instance.as_str()));
    assert!(asked[0].requested_by.contains('@'));
    let audited = audit_rows(app.db(), "trigger").await;
    assert_eq!(audited.len(), 1, "{audited:#?}");
    assert_eq!(audited[0].outcome, AuditOutcome::Ok);
    assert!(
        audited[0].arguments.contains("\"job\":\"catalog\""),
        "{audited:#?}"
    );

    // Not waited for: the command returns with the request's id, and the run happens once.
    let output = run_command(&app, &["trigger", "catalog", "--no-wait"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("request #"), "{}", stdout(&output));
    wait_for(
        "the second request to be closed",
        DEADLINE,
        || requests(app.db()),
        |asked| asked.len() == 2 && asked[1].state.is_closed(),
    )
    .await;
    let asked = requests(app.db()).await;
    assert_eq!(asked[1].state, TriggerState::Finished, "{asked:#?}");
    let rows = crate::support::rows(app.db(), "catalog").await;
    let manual = manual_runs(&rows);
    assert_eq!(manual.len(), 2, "{rows:#?}");
    assert!(manual.iter().all(|r| r.status == RunStatus::Success));
    assert_eq!(app.sim.stats().requests.products, 2);

    // Paused: refused with the reason, nothing asked; --force runs it.
    let paused = run_command(&app, &["pause", "catalog", "--reason", "supplier maintenance"]);
    assert!(paused.status.success(), "{}", stderr(&paused));
    let output = run_command(&app, &["trigger", "catalog"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("job catalog is paused")
            && stderr(&output).contains("supplier maintenance")
            && stderr(&output).contains("--force"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        requests(app.db()).await.len(),
        2,
        "a refused trigger asks nothing"
    );
    let output = run_command(&app, &["trigger", "catalog", "--force"]);
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    let rows = crate::support::rows(app.db(), "catalog").await;
    assert_eq!(manual_runs(&rows).len(), 3, "{rows:#?}");
    let outcomes: Vec<AuditOutcome> = audit_rows(app.db(), "trigger")
        .await
        .iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            AuditOutcome::Ok,
            AuditOutcome::Refused,
            AuditOutcome::Ok,
            AuditOutcome::Ok
        ],
        "newest first"
    );

    first.signal("TERM");
    second.signal("TERM");
    assert!(first.wait_exit(DEADLINE).await.success(), "{}", first.output());
    assert!(second.wait_exit(DEADLINE).await.success(), "{}", second.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_daemon_dies_mid_run_is_failed_and_the_waiting_command_says_so() {
    // Haier never answers the listing: the run goes on until the daemon is killed.
    let sim = SimOptions {
        products: 10,
        faults: Faults {
            hang_rate: 1.0,
            ..Faults::default()
        },
        ..SimOptions::default()
    };
    let app = spawn_app_with(Options::process(120_000).sim(sim).extra_toml(jobs(500))).await;
    let mut daemon = app.daemon_process();
    let instance = instance_of(daemon.start_with(&["run", "--no-callbacks"]));
    wait_heartbeats_after(app.db(), std::slice::from_ref(&instance), db::now_utc()).await;

    let mut waiting = command(app.config_path(), &["trigger", "catalog"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "the daemon to run the request",
        DEADLINE,
        || requests(app.db()),
        |asked| asked.first().is_some_and(|r| r.state == TriggerState::Running),
    )
    .await;
    daemon.kill_9();

    let deadline = Deadline::new(DEADLINE);
    let status = loop {
        if let Some(status) = waiting.try_wait().unwrap() {
            break status;
        }
        deadline
            .wait("the waiting trigger command to end", &"running")
            .await;
    };
    let output = waiting.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains(&format!("failed on {instance}"))
            && stderr(&output).contains("stopped or died"),
        "{}",
        stderr(&output)
    );
    let asked = requests(app.db()).await;
    assert_eq!(asked[0].state, TriggerState::Failed, "{asked:#?}");
}

#[tokio::test]
async fn trigger_with_no_live_daemon_says_so_and_leaves_no_request() {
    let app = spawn_app_with(Options::default().extra_toml(jobs(HEARTBEAT_MS))).await;
    // A daemon that has not beaten its heart for a minute is not running.
    instance_row(app.db(), "far-host:7", chrono::Duration::seconds(60)).await;

    let output = run_command(&app, &["trigger", "catalog"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("no haier-sync daemon is running")
            && stderr(&output).contains("run-job catalog"),
        "{}",
        stderr(&output)
    );
    assert!(requests(app.db()).await.is_empty());
    assert!(rows(app.db(), "catalog").await.is_empty());
    let audited = audit_rows(app.db(), "trigger").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].outcome, AuditOutcome::Refused);

    // Unknown and order_outbox jobs are usage errors naming the jobs trigger runs.
    let output = run_command(&app, &["trigger", "catalogue"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no job named \"catalogue\"")
            && stderr(&output).contains("can run are: catalog"),
        "{}",
        stderr(&output)
    );
    let output = run_command(&app, &["trigger", "orders"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("order_outbox"), "{}", stderr(&output));
    assert!(requests(app.db()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_and_run_job_refuse_while_the_job_runs_in_a_live_daemon_or_run_job() {
    // A heartbeat long enough that the daemon row planted below stays live throughout.
    let app = spawn_app_with(Options::default().extra_toml(jobs(60_000))).await;
    let daemon = "far-host:7";
    instance_row(app.db(), daemon, chrono::Duration::zero()).await;
    let started = db::now_utc() - chrono::Duration::seconds(30);
    running_row(app.db(), "catalog", daemon, started).await;

    let output = run_command(&app, &["run-job", "catalog"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let message = stderr(&output);
    assert!(
        message.contains("job catalog is running now on the daemon far-host:7 since ")
            && message.contains("(log #"),
        "{message}"
    );
    let output = run_command(&app, &["trigger", "catalog"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is running now on the daemon far-host:7"),
        "{}",
        stderr(&output)
    );
    assert!(requests(app.db()).await.is_empty());
    let rows = rows(app.db(), "catalog").await;
    assert_eq!(rows.len(), 1, "nothing ran beside it: {rows:#?}");

    // A run-job process of this host (this test's process stands for it) counts too.
    let app = spawn_app_with(Options::default().extra_toml(jobs(60_000))).await;
    running_row(app.db(), "catalog", &instance_of(std::process::id()), started).await;
    let output = run_command(&app, &["run-job", "catalog"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("is running now on the run-job command"),
        "{}",
        stderr(&output)
    );

    // A row left by a process that is gone does not hold the job.
    let app = spawn_app_with(Options::default().products(5).extra_toml(jobs(60_000))).await;
    running_row(app.db(), "catalog", &instance_of(DEAD_PID), started).await;
    let output = run_command(&app, &["run-job", "catalog"]);
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_job_refuses_a_paused_job_unless_forced() {
    let app = spawn_app_with(Options::default().products(5).extra_toml(jobs(60_000))).await;
    let paused = run_command(&app, &["pause", "catalog", "--reason", "stocktaking"]);
    assert!(paused.status.success(), "{}", stderr(&paused));
    let output = run_command(&app, &["run-job", "catalog"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("job catalog is paused") && stderr(&output).contains("stocktaking"),
        "{}",
        stderr(&output)
    );
    assert!(rows(app.db(), "catalog").await.is_empty());
    let output = run_command(&app, &["run-job", "catalog", "--force"]);
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    let rows = rows(app.db(), "catalog").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].trigger, rows[0].status),
        (Trigger::Manual, RunStatus::Success)
    );
}

/// A `running` manual row of `job` that `instance` opened at `started`.
async fn running_row(db: &Db, job: &str, instance: &str, started: NaiveDateTime) {
    use haier_sync::runs::log as sync_logs;
    use haier_sync::runs::SyncType;
    let (job, instance) = (job.to_owned(), instance.to_owned());
    db.run(move |c| {
        sync_logs::insert(
            c,
            &sync_logs::NewSyncLog {
                job_name: &job,
                sync_type: SyncType::Products,
                status: RunStatus::Running,
                message: None,
                total_count: 0,
                success_count: 0,
                failed_count: 0,
                started_at: started,
                completed_at: None,
                created_at: started,
                scheduled_for: None,
                trigger: Trigger::Manual,
                instance: &instance,
            },
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_tick_during_a_manual_run_obeys_the_jobs_overlap_and_the_request_names_the_run() {
    let app = spawn_app_with(Options::default().extra_toml(jobs(100))).await;
    let runner = FakeRunner::new(app.db(), true);
    let handle = Daemon::new(app.config().clone(), app.db().clone(), runner.clone())
        .start()
        .await
        .unwrap();
    let id = app
        .db()
        .run(|c| {
            let now = db::now_utc();
            Ok(triggers::request_run(
                c,
                &triggers::NewJobTrigger {
                    job_name: "catalog",
                    requested_at: now,
                    requested_by: "alice@box",
                    run_if_paused: false,
                    expires_at: now + chrono::Duration::seconds(30),
                    state: TriggerState::Pending,
                },
            )?)
        })
        .await
        .unwrap();
    runner.wait_started(1).await;

    // The job's overlap is `skip`: a tick while the manual run goes is a `skipped` row.
    let tick = utc(2027, 1, 1, 0, 0, 0);
    let outcome = handle
        .scheduler()
        .fire("catalog", tick, Trigger::Schedule)
        .await
        .unwrap();
    assert!(matches!(outcome, FireOutcome::Skipped), "{outcome:?}");
    runner.release();
    let asked = wait_for(
        "the request to be closed",
        DEADLINE,
        || requests(app.db()),
        |asked| asked.first().is_some_and(|r| r.state.is_closed()),
    )
    .await;
    let rows = rows(app.db(), "catalog").await;
    let manual = manual_runs(&rows);
    assert_eq!(manual.len(), 1, "{rows:#?}");
    assert_eq!(manual[0].status, RunStatus::Success);
    assert_eq!(
        (asked[0].id, asked[0].state, asked[0].sync_log_id),
        (id, TriggerState::Finished, Some(manual[0].id))
    );
    assert!(rows
        .iter()
        .any(|r| r.status == RunStatus::Skipped && r.trigger == Trigger::Schedule));
    assert_eq!(runner.max_in_flight(), 1);
    handle.shutdown().await.unwrap();
}

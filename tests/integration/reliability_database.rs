//! Reliability: the database goes away in the middle of a run, and comes back. On SQLite another
//! connection holds the write lock (tests run as root, so a read-only file would not stop
//! writes): every writer gets "database is locked" after `[database] wait_ms`. On PostgreSQL only
//! this test's database is cut (it refuses connections and its sessions are ended), never the
//! shared server. A run that meets it ends `failed` with a message that says so, its row is closed
//! as soon as the database is back (also while the daemon stops), nothing stays `running`, and
//! the next run succeeds.

use crate::support::{
    insert_many_by_sql, rows as job_rows, spawn_app_with, status_counts, utc, wait_for, wait_for_rows,
    wait_until, Options, OrdersJob, TestApp, DEADLINE,
};
use diesel::{Connection, RunQueryDsl};
use haier_sync::config::{DatabaseUrl, SyncKind};
use haier_sync::runs::SyncLog;
use haier_sync::runs::{RunStatus, Trigger};
use haier_sync::scheduler::daemon::CANCEL_WAIT;
use haier_sync::scheduler::{self, Daemon, DaemonHandle, FireOutcome, SyncJobRunner};
use haier_sync::simulator::{Faults, SimOptions};
use haier_sync::sync::RunOverrides;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a statement waits for the database in these tests (`[database] wait_ms`).
const WAIT_MS: u64 = 500;

/// Takes the test's database away and brings it back. Dropping it brings the database back.
enum Outage {
    /// Holds `BEGIN EXCLUSIVE` while cut.
    Sqlite {
        path: String,
        lock: Option<diesel::SqliteConnection>,
    },
    /// `ALLOW_CONNECTIONS false` and the sessions ended while cut.
    Postgres {
        admin_url: String,
        name: String,
        cut: bool,
    },
}

impl Outage {
    fn of(env: &TestApp) -> Outage {
        Outage::of_url(&env.ctx.config.database.url)
    }

    fn of_url(url: &DatabaseUrl) -> Outage {
        match url {
            DatabaseUrl::Sqlite(path) => Outage::Sqlite {
                path: path.clone(),
                lock: None,
            },
            DatabaseUrl::Postgres(url) => {
                let url = url.expose();
                let base = url.split('?').next().unwrap_or(url);
                let name = base.rsplit('/').next().unwrap().to_owned();
                Outage::Postgres {
                    admin_url: haier_sync::db::testing::pg_admin_url(),
                    name,
                    cut: false,
                }
            }
        }
    }

    /// Takes the database away: from now on no statement of the daemon gets through.
    fn cut(&mut self) {
        tokio::task::block_in_place(|| match self {
            Outage::Sqlite { path, lock } => {
                let mut conn = diesel::SqliteConnection::establish(path).unwrap();
                diesel::sql_query("PRAGMA busy_timeout = 10000")
                    .execute(&mut conn)
                    .unwrap();
                diesel::sql_query("BEGIN EXCLUSIVE").execute(&mut conn).unwrap();
                *lock = Some(conn);
            }
            Outage::Postgres { admin_url, name, cut } => {
                let mut admin = diesel::PgConnection::establish(admin_url).unwrap();
                diesel::sql_query(format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"))
                    .execute(&mut admin)
                    .unwrap();
                *cut = true;
                diesel::sql_query(format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ))
                .execute(&mut admin)
                .unwrap();
            }
        })
    }

    /// Brings the database back.
    fn restore(&mut self) {
        tokio::task::block_in_place(|| self.restore_blocking())
    }

    fn restore_blocking(&mut self) {
        match self {
            Outage::Sqlite { lock, .. } => {
                if let Some(mut conn) = lock.take() {
                    let _ = diesel::sql_query("ROLLBACK").execute(&mut conn);
                }
            }
            Outage::Postgres { admin_url, name, cut } => {
                if std::mem::take(cut) {
                    let mut admin = diesel::PgConnection::establish(admin_url).unwrap();
                    diesel::sql_query(format!("ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"))
                        .execute(&mut admin)
                        .unwrap();
                }
            }
        }
    }

    /// Whether the test can still read the rows while the database is cut (SQLite: readers are
    /// not stopped by the write lock).
    fn readable_while_cut(&self) -> bool {
        matches!(self, Outage::Sqlite { .. })
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.restore_blocking();
    }
}

/// A simulator with 1200 products listed (a products run done), then slowed down so that a stock
/// run of 1200 calls, 8 at a time, takes about 6 s and writes a page of 200 rows a second; a
/// database that is waited for [`WAIT_MS`]; and the daemon's `[daemon]` settings.
async fn slow_stock_env(daemon: &str) -> TestApp {
    let env = spawn_app_with(stock_options(daemon)).await;
    let products = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(products.status, RunStatus::Success, "{products:?}");
    env.sim
        .set_faults(Faults {
            latency_ms: 40,
            ..Faults::default()
        })
        .unwrap();
    env
}

fn stock_options(daemon: &str) -> Options {
    Options::default()
        .products(1200)
        .set("database.wait_ms", WAIT_MS)
        .extra_toml(format!(
            "[daemon]\nwatch_config = false\n{daemon}\n\n\
             [jobs.stock]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\nconcurrency = 8\ncatch_up = \"skip\"\n"
        ))
}

async fn start_daemon(env: &TestApp) -> DaemonHandle {
    let runner = Arc::new(SyncJobRunner::new(env.ctx.clone()));
    Daemon::new((*env.ctx.config).clone(), env.ctx.db.clone(), runner)
        .start()
        .await
        .unwrap()
}

/// Fires the stock tick of `day` and waits until its row shows progress; returns the run.
async fn start_stock_run(handle: &DaemonHandle, env: &TestApp, day: u32) -> scheduler::jobs::RunHandle {
    let FireOutcome::Started(run) = handle
        .scheduler()
        .fire("stock", utc(2026, 11, day, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the stock tick should start")
    };
    wait_for_rows(&env.ctx.db, "stock", "stock progress", DEADLINE, |rows| {
        rows.last()
            .is_some_and(|r| r.status == RunStatus::Running && r.success_count > 0)
    })
    .await;
    run
}

/// The run's task ends `failed` while the database is still away: it does not wait for it.
async fn run_fails_at_once(run: scheduler::jobs::RunHandle) {
    let statuses = tokio::time::timeout(DEADLINE, run.wait())
        .await
        .expect("the run ends while the database is away");
    assert_eq!(statuses, [RunStatus::Failed]);
}

/// The run's row, closed by the run itself: `failed`, partial counts, a message naming the
/// database, and the note that it was closed late.
fn assert_closed_failed_by_the_run(row: &SyncLog) {
    assert_eq!(row.status, RunStatus::Failed, "{row:#?}");
    assert_eq!(row.total_count, 1200, "{row:#?}");
    assert!(
        row.success_count > 0 && row.success_count < 1200,
        "partial counts: {row:#?}"
    );
    let message = row.message.as_deref().unwrap_or_default();
    assert!(message.starts_with("the database failed mid-run: "), "{message}");
    assert!(
        message.contains("the database did not take the closing write when the run ended"),
        "{message}"
    );
    assert!(row.completed_at.is_some_and(|end| end >= row.started_at));
}

fn open_rows(rows: &[SyncLog]) -> Vec<&SyncLog> {
    rows.iter().filter(|r| r.status == RunStatus::Running).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_database_goes_away_ends_failed_and_the_next_run_succeeds_once_it_is_back() {
    let env = slow_stock_env("").await;
    let handle = start_daemon(&env).await;
    let run = start_stock_run(&handle, &env, 24).await;

    let mut outage = Outage::of(&env);
    outage.cut();
    run_fails_at_once(run).await;
    assert!(handle.scheduler().running_jobs().is_empty());
    if outage.readable_while_cut() {
        let rows = job_rows(&env.ctx.db, "stock").await;
        assert_eq!(
            rows[0].status,
            RunStatus::Running,
            "its close waits for the database"
        );
    }

    outage.restore();
    let rows = wait_for_rows(&env.ctx.db, "stock", "the run's row closed", DEADLINE, |rows| {
        rows[0].status != RunStatus::Running
    })
    .await;
    assert_closed_failed_by_the_run(&rows[0]);

    // The daemon recovers: the next tick succeeds.
    env.sim.set_faults(Faults::default()).unwrap();
    let FireOutcome::Started(next) = handle
        .scheduler()
        .fire("stock", utc(2026, 11, 25, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the next stock tick should start")
    };
    assert_eq!(next.wait().await, [RunStatus::Success]);
    let report = handle.shutdown().await.unwrap();
    assert_eq!(report.exit_code(), 0);
    let rows = job_rows(&env.ctx.db, "stock").await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(
        (rows[1].status.as_str(), rows[1].success_count),
        ("success", 1200)
    );
    assert!(open_rows(&rows).is_empty(), "{rows:#?}");
}

/// Issue 10, item 4: the database stays away when the daemon is stopped (SIGTERM's path). The
/// daemon keeps trying within its shutdown time, and the database's return within it gets the
/// run's row closed by the run's own ending, not left `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_stopped_while_its_database_is_away_closes_the_runs_row_when_it_returns_within_the_shutdown_time(
) {
    let env = slow_stock_env("shutdown_grace_ms = 3000").await;
    let handle = start_daemon(&env).await;
    let run = start_stock_run(&handle, &env, 24).await;
    let mut outage = Outage::of(&env);
    outage.cut();
    run_fails_at_once(run).await;

    let started = Instant::now();
    let stopping = tokio::spawn(handle.shutdown());
    wait_until("the daemon to come to closing its rows", DEADLINE, || {
        env.ctx.db.background().is_finishing()
    })
    .await;
    assert_eq!(
        env.ctx.db.background().pending(),
        1,
        "the run's close is still to be written"
    );
    outage.restore();
    let report = stopping.await.unwrap().unwrap();
    let took = started.elapsed();
    assert_eq!(report.exit_code(), 0);
    assert!(
        took < Duration::from_millis(3000) + CANCEL_WAIT,
        "within the shutdown time: {took:?}"
    );
    assert_eq!(env.ctx.db.background().pending(), 0);

    let rows = job_rows(&env.ctx.db, "stock").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_closed_failed_by_the_run(&rows[0]);
    assert!(
        scheduler::daemon_running(&env.ctx.db, 5_000)
            .await
            .unwrap()
            .is_empty(),
        "the stop is recorded"
    );
}

/// The database does not come back while the daemon stops: the stop still ends within the
/// shutdown time, with an error that says why; the row is closed (`interrupted`) by the next
/// start, and the next run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_database_stays_away_stops_within_its_shutdown_time_and_the_next_start_closes_the_row()
{
    let env = slow_stock_env("shutdown_grace_ms = 500").await;
    let handle = start_daemon(&env).await;
    let run = start_stock_run(&handle, &env, 24).await;
    let mut outage = Outage::of(&env);
    outage.cut();
    run_fails_at_once(run).await;

    let started = Instant::now();
    let error = handle.shutdown().await.unwrap_err();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500) + CANCEL_WAIT + Duration::from_millis(2 * WAIT_MS + 1000),
        "bounded by the shutdown time: {took:?}"
    );
    assert!(
        format!("{error:#}").starts_with("Failed to record the daemon's stop"),
        "{error:#}"
    );

    outage.restore();
    env.sim.set_faults(Faults::default()).unwrap();
    let handle = start_daemon(&env).await;
    let rows = job_rows(&env.ctx.db, "stock").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(
        rows[0].status == RunStatus::Interrupted || rows[0].status == RunStatus::Failed,
        "closed at the next start at the latest: {rows:#?}"
    );
    let FireOutcome::Started(next) = handle
        .scheduler()
        .fire("stock", utc(2026, 11, 25, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the next stock tick should start")
    };
    assert_eq!(next.wait().await, [RunStatus::Success]);
    assert_eq!(handle.shutdown().await.unwrap().exit_code(), 0);
    assert!(open_rows(&job_rows(&env.ctx.db, "stock").await).is_empty());
}

/// `run-job` (the binary) whose database goes away mid-run: the run ends `failed`, and run-job
/// does not exit with the row `running`: it waits (up to the daemon's shutdown time) and closes
/// the row once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_job_closes_its_row_before_it_exits_once_the_database_is_back() {
    let daemon = "shutdown_grace_ms = 10000";
    let env = slow_stock_env(daemon).await;
    let mut run_job = env.daemon_process();
    run_job.start_with(&["run-job", "stock"]);
    wait_for_rows(&env.ctx.db, "stock", "stock progress", DEADLINE, |rows| {
        rows.last()
            .is_some_and(|r| r.status == RunStatus::Running && r.success_count > 0)
    })
    .await;

    let mut outage = Outage::of(&env);
    outage.cut();
    let waiting = "waiting up to 15 s for the database to take the closing write of 1 run(s)";
    wait_until("run-job to say it waits for the database", DEADLINE, || {
        let said = run_job.current_output().contains(waiting);
        assert!(
            said || run_job.try_exit().is_none(),
            "run-job exited with its row open:\n{}",
            run_job.output()
        );
        said
    })
    .await;
    outage.restore();
    let status = run_job.wait_exit(DEADLINE).await;
    let printed = run_job.current_output();
    assert_eq!(status.code(), Some(1), "the run failed:\n{printed}");
    assert!(!printed.contains("could not close their log row"), "{printed}");
    let rows = job_rows(&env.ctx.db, "stock").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_closed_failed_by_the_run(&rows[0]);
}

/// An order batch whose database goes away while its pushes are in flight: the batch's log row
/// is closed once the database is back (not left `running`), and the orders, whose results could
/// not be written, are pushed again when their lease runs out and reach Haier once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_batch_whose_database_goes_away_is_closed_later_and_its_orders_reach_haier_once() {
    use haier_sync::db::Db;
    use haier_sync::orders::poller;
    // Haier's confirm callbacks come after the test: the receiver does not wait on the database.
    let sim = SimOptions {
        callback_delay_ms: 600_000,
        ..SimOptions::default()
    };
    let env = spawn_app_with(Options::orders(sim).orders_job(OrdersJob {
        lease_ms: 1_000,
        ..OrdersJob::default()
    }))
    .await;
    let db = Db::connect(&haier_sync::config::DatabaseConfig {
        wait_ms: WAIT_MS,
        ..env.config().database.clone()
    })
    .await
    .unwrap();
    insert_many_by_sql(env.db(), "SO", 20, &[env.code(0)]).await;
    env.sim
        .set_faults(Faults {
            latency_ms: 1_500,
            ..Faults::default()
        })
        .unwrap();
    let batch = {
        let (db, client, job) = (db.clone(), env.ctx.client.clone(), env.orders_job());
        tokio::spawn(async move { poller::push_next_batch(&db, &client, &job).await })
    };
    // The batch claims its orders, then opens its log row; the outage starts after both.
    wait_for(
        "the batch to claim the orders and open its row",
        DEADLINE,
        || async { (status_counts(env.db()).await, env.order_logs().await) },
        |(counts, logs)| {
            counts == &[("sending".to_owned(), 20)] && logs.iter().any(|l| l.status == RunStatus::Running)
        },
    )
    .await;
    let mut outage = Outage::of_url(&env.config().database.url);
    outage.cut();
    let error = tokio::time::timeout(DEADLINE, batch)
        .await
        .expect("the batch ends while the database is away")
        .unwrap()
        .unwrap_err();
    assert!(
        format!("{error:#}").starts_with("Failed to record the results of an order batch"),
        "{error:#}"
    );
    outage.restore();
    env.sim.set_faults(Faults::default()).unwrap();
    assert_eq!(
        db.background()
            .finish(tokio::time::Instant::now() + DEADLINE)
            .await,
        0,
        "the batch's row is closed once the database is back"
    );
    let logs = env.order_logs().await;
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(logs[0].status, RunStatus::Failed, "{logs:#?}");
    assert_eq!((logs[0].total_count, logs[0].failed_count), (20, 20));
    assert!(
        logs[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("results not recorded (those orders will be pushed again)"),
        "{logs:#?}"
    );

    // The lease (1 s) runs out and the orders are pushed again: Haier answers DUPLICATE_SOID for
    // those it took, and holds each once.
    wait_for(
        "every order pushed",
        DEADLINE,
        || async {
            env.push_all_due().await;
            status_counts(env.db()).await
        },
        |counts| counts == &[("pushed".to_owned(), 20)],
    )
    .await;
    let stats = env.sim.stats();
    assert_eq!(stats.orders.distinct_so_ids, 20, "{stats:#?}");
    assert!(open_rows(&env.order_logs().await).is_empty());
}

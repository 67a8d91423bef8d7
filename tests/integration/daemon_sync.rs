//! The daemon with the real job code against the simulator: a stock sync stopped by shutdown in
//! its middle closes its row `interrupted` with the counts it reached, and the daemon still exits
//! 0 within the grace.

use crate::support::{rows, spawn_app_with, utc, wait_for_rows, Options, DEADLINE};
use haier_sync::config::SyncKind;
use haier_sync::runs::{RunStatus, Trigger};
use haier_sync::scheduler::daemon::CANCEL_WAIT;
use haier_sync::scheduler::{Daemon, FireOutcome, SyncJobRunner};
use haier_sync::simulator::Faults;
use haier_sync::sync::RunOverrides;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_in_the_middle_of_a_stock_sync_interrupts_it_with_partial_counts() {
    let env = spawn_app_with(Options::default().products(1200).extra_toml(
        "[daemon]\nshutdown_grace_ms = 500\nwatch_config = false\n\n\
         [jobs.stock]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\nconcurrency = 8\n",
    ))
    .await;
    let products = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(products.status, RunStatus::Success);
    // 1200 stock calls, 8 at a time, 40 ms each: about 6 s, with progress written every 200 rows.
    env.sim
        .set_faults(Faults {
            latency_ms: 40,
            ..Faults::default()
        })
        .unwrap();

    let config = (*env.ctx.config).clone();
    let runner = Arc::new(SyncJobRunner::new(env.ctx.clone()));
    let handle = Daemon::new(config, env.ctx.db.clone(), runner)
        .start()
        .await
        .unwrap();
    let FireOutcome::Started(_run) = handle
        .scheduler()
        .fire("stock", utc(2026, 11, 24, 3, 0, 0), Trigger::Schedule)
        .await
        .unwrap()
    else {
        panic!("the stock tick should start")
    };
    wait_for_rows(&env.ctx.db, "stock", "stock progress", DEADLINE, |rows| {
        rows.first()
            .is_some_and(|r| r.status == RunStatus::Running && r.success_count > 0)
    })
    .await;

    let started = Instant::now();
    let report = handle.shutdown().await.unwrap();
    let took = started.elapsed();
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.cancelled, ["stock"]);
    assert!(took < Duration::from_millis(500) + CANCEL_WAIT, "took {took:?}");

    let rows = rows(&env.ctx.db, "stock").await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.status.as_str(), row.trigger.as_str()),
        ("interrupted", "schedule")
    );
    assert_eq!(row.total_count, 1200);
    assert!(
        row.success_count > 0 && row.success_count < 1200,
        "partial counts: {row:?}"
    );
    assert!(row.completed_at.is_some());
}

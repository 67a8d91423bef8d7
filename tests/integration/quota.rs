//! One Haier quota for every process on the database (`crate::quota`): three `haier-sync run`
//! daemons and a `haier-sync run-job` started by hand, against a simulator that admits 100
//! requests a second per system, with `rate_limit = { per_second = 95, burst = 3 }`. Rates are
//! read from what the simulator received: its stock request count, sampled as it grows.

use crate::support::*;
use haier_sync::config::RateLimit;
use haier_sync::db::Db;
use haier_sync::haier::{SharedQuota, System};
use haier_sync::quota::{self, DbQuota};
use haier_sync::runs::log;
use haier_sync::simulator::{Faults, SimOptions};
use std::process::Child;
use std::time::{Duration, Instant};

const HEARTBEAT_MS: u64 = 200;
const QUOTA: RateLimit = RateLimit {
    per_second: 95,
    burst: 3,
};
/// What the simulator admits per system and second.
const SIM_QPS: f64 = 100.0;
/// The share of the quota a busy participant must reach.
const AT_LEAST: f64 = 0.9;

/// An app whose clients have the quota under test, on a simulator admitting [`SIM_QPS`], with
/// `products` products listed, and `jobs` as its `[jobs.*]` tables.
async fn app_with(products: usize, jobs: &str) -> TestApp {
    let mut options = Options::process(10_000)
        .sim(SimOptions {
            faults: Faults {
                qps: Some(SIM_QPS),
                ..Faults::default()
            },
            ..SimOptions::default()
        })
        .products(products)
        .listed_products(products)
        .extra_toml(format!(
            "[daemon]\nheartbeat_ms = {HEARTBEAT_MS}\nwatch_config = false\n\n{jobs}"
        ));
    options.haier.rate_limit = Some(QUOTA);
    options.ylh.rate_limit = Some(QUOTA);
    spawn_app_with(options).await
}

/// A stock job over two counties on `schedule`.
fn stock_job(name: &str, schedule: &str) -> String {
    format!(
        "[jobs.{name}]\nkind = \"stock\"\nschedule = \"{schedule}\"\n\
         county_codes = [\"110101\", \"310101\"]\n\n"
    )
}

/// A schedule firing once a minute, at the second `ahead` from now: far enough for the
/// daemons to be up.
fn second_from_now(ahead: Duration) -> String {
    let at = chrono::Utc::now() + chrono::Duration::from_std(ahead).unwrap();
    format!("{} * * * * *", chrono::Timelike::second(&at))
}

fn stock_requests(app: &TestApp) -> u64 {
    app.sim.stats().requests.stock
}

/// Waits until the simulator has received `count` stock requests; returns when it had.
async fn stock_reaches(app: &TestApp, count: u64, limit: Duration) -> Instant {
    wait_until(&format!("{count} stock requests"), limit, || {
        stock_requests(app) >= count
    })
    .await
}

/// The stock requests per second the simulator receives while `n` more come in, as a share of
/// the quota.
async fn measured_share(app: &TestApp, n: u64) -> f64 {
    let from = stock_requests(app);
    let start = stock_reaches(app, from + 1, DEADLINE).await;
    let from = stock_requests(app);
    let end = stock_reaches(app, from + n, DEADLINE).await;
    let per_second = n as f64 / end.duration_since(start).as_secs_f64();
    eprintln!("{n} stock requests at {per_second:.1}/s");
    per_second / f64::from(QUOTA.per_second)
}

async fn live_daemons(db: &Db) -> usize {
    db.run(|c| {
        Ok(haier_sync::db::instances::live(
            c,
            haier_sync::db::now_utc() - chrono::Duration::seconds(2),
        )?)
    })
    .await
    .unwrap()
    .len()
}

async fn start_daemons(app: &TestApp) -> Vec<DaemonProcess> {
    let mut daemons: Vec<DaemonProcess> = ["first", "second", "third"]
        .iter()
        .map(|name| app.daemon_process_named(name))
        .collect();
    for daemon in &mut daemons {
        daemon.start();
    }
    wait_for(
        "three live daemons",
        DEADLINE,
        || live_daemons(app.db()),
        |n| *n == 3,
    )
    .await;
    daemons
}

fn run_job(app: &TestApp, job: &str) -> Child {
    command(app.config_path(), &["run-job", job])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn haier-sync run-job")
}

async fn running_instance(db: &Db, job: &'static str) -> String {
    let rows = wait_for(
        &format!("{job} running"),
        DEADLINE,
        || db.run(move |c| Ok(log::running_rows(c, job)?)),
        |rows| rows.as_ref().is_ok_and(|rows| !rows.is_empty()),
    )
    .await;
    rows.unwrap().remove(0).instance
}

#[tokio::test]
async fn three_daemons_two_stock_jobs_and_a_run_job_stay_within_one_quota_and_use_it() {
    let fire = second_from_now(Duration::from_secs(6));
    let jobs = format!(
        "{}{}[jobs.prices]\nkind = \"prices\"\nschedule = \"0 0 3 * * *\"\n",
        stock_job("stock_a", &fire),
        stock_job("stock_b", &fire)
    );
    // 2 jobs × 100 products × 2 counties: about four seconds of stock requests at the quota.
    let app = app_with(100, &jobs).await;
    let _daemons = start_daemons(&app).await;
    stock_reaches(&app, 20, Duration::from_secs(30)).await;
    let prices_before = app.sim.stats().requests.prices;
    let mut by_hand = run_job(&app, "prices");
    let share = measured_share(&app, 250).await;
    let status = tokio::task::spawn_blocking(move || by_hand.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "run-job prices failed: {status}");
    assert!(app.sim.stats().requests.prices > prices_before);
    stock_reaches(&app, 400, DEADLINE).await;
    let stats = app.sim.stats();
    assert_eq!(stats.throttled, 0, "Haier answered 429: {stats:#?}");
    assert!(
        share >= AT_LEAST,
        "two stock jobs on three daemons and a run-job sent stock at {share:.3} of the quota"
    );
}

#[tokio::test]
async fn a_job_alone_gets_the_whole_quota_and_a_killed_busy_daemon_frees_it_within_three_heartbeats() {
    let fire = second_from_now(Duration::from_secs(6));
    let jobs = format!(
        "{}{}",
        stock_job("stock_a", &fire),
        stock_job("stock_b", "0 0 3 * * *")
    );
    // 250 products × 2 counties per job: longer than the test looks.
    let app = app_with(250, &jobs).await;
    let mut daemons = start_daemons(&app).await;
    stock_reaches(&app, 20, Duration::from_secs(30)).await;
    let alone = measured_share(&app, 120).await;
    assert!(
        alone >= AT_LEAST,
        "one job on one of three daemons ran at {alone:.3} of the quota"
    );

    // A run-job of the other stock job shares the quota with the busy daemon...
    let busy = running_instance(app.db(), "stock_a").await;
    let logins = app.sim.stats().requests.token_openplat;
    let mut by_hand = run_job(&app, "stock_b");
    wait_until("the run-job logged in", DEADLINE, || {
        app.sim.stats().requests.token_openplat > logins
    })
    .await;
    let shared_from = stock_requests(&app);
    stock_reaches(&app, shared_from + 40, DEADLINE).await;

    // ...until the busy daemon dies: within three heartbeats the run-job has it all.
    let daemon = daemons
        .iter_mut()
        .find(|d| busy.ends_with(&format!(":{}", d.pid())))
        .expect("the busy daemon is one of the three");
    daemon.kill_9();
    let killed = Instant::now();
    wait_until("three heartbeats since the kill", DEADLINE, || {
        killed.elapsed() >= Duration::from_millis(3 * HEARTBEAT_MS)
    })
    .await;
    let after = measured_share(&app, 100).await;
    let _ = by_hand.kill();
    let _ = by_hand.wait();
    let stats = app.sim.stats();
    assert_eq!(stats.throttled, 0, "Haier answered 429: {stats:#?}");
    assert!(
        after >= AT_LEAST,
        "after the busy daemon died the run-job ran at {after:.3} of the quota"
    );
}

/// Takes `n` permits of openplat from `quota`.
async fn take(quota: &DbQuota, n: usize) {
    for _ in 0..n {
        quota.take(System::Openplat).await;
    }
}

#[tokio::test]
async fn each_participant_s_recent_share_is_the_part_of_the_permits_it_leased() {
    let app = spawn_app().await;
    let fast = RateLimit {
        per_second: 2000,
        burst: 10,
    };
    let first = DbQuota::named(app.db().clone(), fast, fast, "host-a:1");
    let second = DbQuota::named(app.db().clone(), fast, fast, "host-b:2");
    take(&first, 30).await;
    take(&second, 10).await;
    second.take(System::Ylh).await;
    first.record_leased().await;
    second.record_leased().await;
    let shares = app.db().run(|c| Ok(quota::recent_shares(c)?)).await.unwrap();
    let share = |participant: &str, system: &str| {
        shares
            .iter()
            .find(|s| s.participant == participant && s.system == system)
            .map(|s| (s.permits, s.share))
    };
    // A permit is leased again when its caller wakes up late (a busy machine): at least as
    // many as were taken are counted.
    let (a, a_share) = share("host-a:1", "openplat").expect("host-a's openplat share");
    let (b, b_share) = share("host-b:2", "openplat").expect("host-b's openplat share");
    assert!(a >= 30 && b >= 10, "{shares:#?}");
    assert!((a_share + b_share - 1.0).abs() < 1e-9, "{shares:#?}");
    assert!(a_share > b_share, "{shares:#?}");
    assert_eq!(share("host-b:2", "ylh").map(|(_, s)| s), Some(1.0), "{shares:#?}");
    assert_eq!(share("host-a:1", "ylh"), None, "{shares:#?}");
}

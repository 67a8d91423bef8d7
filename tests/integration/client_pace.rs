//! The client's pace when Haier's quota is lower than `rate_limit`: it learns from 429s instead
//! of spending several requests per item on them, and `status` shows the pace in force. On the
//! suite's backend (SQLite or PostgreSQL).

use crate::support::{spawn_app_with, wait_until, Options, TestApp};
use haier_sync::cli::status;
use haier_sync::config::SyncKind;
use haier_sync::db::{self, instances, stocks};
use haier_sync::haier::System;
use haier_sync::metrics;
use haier_sync::runs::RunStatus;
use haier_sync::simulator::Faults;
use haier_sync::sync::RunOverrides;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Haier's quota in these tests, far below the configured `rate_limit`.
const QUOTA_PER_SECOND: f64 = 5.0;
/// The configured `rate_limit` (per second, burst).
const RATE_LIMIT: (u32, u32) = (50, 5);

async fn env_with_low_quota(products: usize) -> TestApp {
    let env = spawn_app_with(
        Options::default()
            .products(products)
            .openplat_rate_limit(RATE_LIMIT.0, RATE_LIMIT.1),
    )
    .await;
    env.run(SyncKind::Products, RunOverrides::default()).await;
    env.sim
        .set_faults(Faults {
            qps: Some(QUOTA_PER_SECOND),
            ..Faults::default()
        })
        .unwrap();
    env
}

/// Issue 10, failure 6. Before the pace was learned, this run drew about 2.5 × 429 per item
/// (75 for 30 items): callers already waiting for the limiter went out during every pause, and
/// the pace stayed at 50/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_sync_against_a_quota_far_below_rate_limit_draws_few_429s_and_succeeds() {
    const ITEMS: i64 = 30;
    let env = env_with_low_quota(ITEMS as usize).await;
    let before = env.sim.stats();
    let started = Instant::now();
    // The 429s answered by the end of the run's first second: learning the quota may cost some.
    let first_second = async {
        tokio::time::sleep_until((started + Duration::from_secs(1)).into()).await;
        env.sim.stats().throttled
    };
    let (outcome, first_second) =
        tokio::join!(env.run(SyncKind::Stock, RunOverrides::default()), first_second);
    let took = started.elapsed();
    let after = env.sim.stats();
    let throttled = after.throttled - before.throttled;
    let after_first_second = after.throttled - first_second;
    println!(
        "{ITEMS} stock items at a quota of {QUOTA_PER_SECOND}/s with rate_limit {}/s: {:.1} s, \
         {throttled} × 429 ({after_first_second} after the first second), pace now {:.2}/s",
        RATE_LIMIT.0,
        took.as_secs_f64(),
        env.ctx.client.stats().openplat.pace_per_second.unwrap()
    );

    assert!(
        took > Duration::from_secs(1),
        "the run outlasted its first second"
    );
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    assert_eq!(
        (
            outcome.counts.total,
            outcome.counts.success,
            outcome.counts.failed
        ),
        (ITEMS, ITEMS, 0)
    );
    assert_eq!(env.query(stocks::all).await.len() as i64, ITEMS);
    // Every request beyond one per item was a 429: nothing else was wasted.
    let items = ITEMS as u64;
    assert_eq!(after.requests.stock - before.requests.stock, items + throttled);
    assert_eq!(env.ctx.client.stats().operation("stock").throttled, throttled);
    assert!(
        after_first_second * 10 <= items,
        "{after_first_second} × 429 after the first second for {ITEMS} items"
    );
    assert!(throttled * 5 <= items, "{throttled} × 429 for {ITEMS} items");
    // The pace in force is below rate_limit, near the quota.
    let pace = env.ctx.client.stats().openplat.pace_per_second.unwrap();
    assert!((1.0..=QUOTA_PER_SECOND + 2.0).contains(&pace), "pace {pace}/s");
}

/// `status` (the table and `--json`) shows each system's pace in force next to `rate_limit`,
/// from the daemon's heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_pace_lowered_by_429s_next_to_rate_limit() {
    let env = env_with_low_quota(10).await;
    let client = env.ctx.client.clone();
    client.login(System::Openplat).await.unwrap();
    let codes: Vec<String> = env
        .sim
        .catalog()
        .products_for_sale()
        .iter()
        .map(|p| p.code.clone())
        .collect();
    // More calls at once than the quota admits; wait (bounded) until Haier has answered 429.
    let calls: Vec<_> = codes
        .iter()
        .map(|code| {
            let (client, code) = (client.clone(), code.clone());
            tokio::spawn(async move { client.query_stock(&code, "110101").await })
        })
        .collect();
    wait_until("a 429", Duration::from_secs(5), || {
        client.stats().operation("stock").throttled > 0
    })
    .await;
    for call in calls {
        call.abort();
    }
    let stats = client.stats();
    let pace = stats.openplat.pace_per_second.unwrap();
    assert!(pace < f64::from(RATE_LIMIT.0), "pace {pace}/s");
    assert_eq!(stats.ylh.pace_per_second, Some(f64::from(stats.ylh.per_second)));

    // The daemon writes its client's stats with each heartbeat; status reads them back.
    let instance = db::instance_name();
    let json = serde_json::to_string(&stats).unwrap();
    let row = instances::Instance {
        instance: instance.clone(),
        hostname: "test-host".into(),
        pid: i64::from(std::process::id()),
        version: "0".into(),
        started_at: db::now_utc(),
        heartbeat_at: db::now_utc(),
        stopped_at: None,
        client_stats: None,
        config_hash: None,
    };
    env.query(move |c| {
        instances::register(c, &row)?;
        instances::heartbeat(c, &row.instance, db::now_utc(), Some(&json))
    })
    .await;
    let report = status::collect(&env.ctx.db, env.config(), chrono::Utc::now())
        .await
        .unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let openplat = &json["daemon"]["client"][&instance]["openplat"];
    assert_eq!(openplat["per_second"], RATE_LIMIT.0, "{json}");
    assert_eq!(openplat["pace_per_second"].as_f64(), Some(pace), "{json}");
    let ylh = &json["daemon"]["client"][&instance]["ylh"];
    assert_eq!(
        ylh["pace_per_second"].as_f64(),
        Some(f64::from(stats.ylh.per_second))
    );

    let table = status::render(&report, chrono_tz::UTC);
    let expected = format!(
        "openplat: breaker closed, pace {pace:.1}/s of rate_limit {}/s (lowered after 429s)",
        RATE_LIMIT.0
    );
    assert!(table.contains(&expected), "{table}");

    // The callback receiver's /metrics has the same gauges.
    let source = metrics::MetricsSource {
        client: Some(Arc::new(move || client.stats())),
        ..metrics::MetricsSource::default()
    };
    let text = metrics::render(&env.ctx.db, &source, &metrics::CallbackCounters::default())
        .await
        .unwrap();
    let gauge = |name: &str, system: &str| -> f64 {
        let prefix = format!("{name}{{system=\"{system}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .parse()
            .unwrap()
    };
    assert!(gauge("haier_pace_per_second", "openplat") < f64::from(RATE_LIMIT.0));
    assert_eq!(
        gauge("haier_rate_limit_per_second", "openplat"),
        f64::from(RATE_LIMIT.0)
    );
    assert_eq!(
        gauge("haier_pace_per_second", "ylh"),
        gauge("haier_rate_limit_per_second", "ylh")
    );
}

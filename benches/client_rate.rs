//! Whole-system benchmark of the shared Haier client's pacing: stock calls through one client
//! against the simulator with a 100/s quota, at several client quotas and bursts. Prints the
//! achieved rate against the client's quota and the 429s the simulator answered.
//!
//! `cargo bench --bench client_rate` (calls per row: `CLIENT_RATE_CALLS`, default 1000).

// The daemon's futures nest deeply; computing their layout needs more than 128 levels.
#![recursion_limit = "256"]

use futures::StreamExt;
use haier_sync::config::{BreakerPolicy, HaierConfig, RateLimit, RetryPolicy, YlhConfig};
use haier_sync::haier::paths::TOKEN_PATH;
use haier_sync::haier::{HaierClient, System};
use haier_sync::simulator::{Faults, SimCredentials, SimOptions, Simulator};
use std::time::Instant;
use url::Url;

/// The simulator's quota per system, as the contract's older document states it.
const SIM_QPS: f64 = 100.0;
/// Calls in flight at once: far more than the quota needs, so the limiter alone sets the pace.
const CONCURRENCY: usize = 64;

fn configs(base: &str, rate_limit: RateLimit, creds: &SimCredentials) -> (HaierConfig, YlhConfig) {
    let base = Url::parse(base).expect("the simulator's URL parses");
    let retry = RetryPolicy {
        max_attempts: 5,
        backoff_base_ms: 200,
        backoff_cap_ms: 10_000,
    };
    let breaker = BreakerPolicy {
        failure_threshold: 10,
        cool_down_ms: 30_000,
    };
    let op = &creds.openplat;
    let haier = HaierConfig {
        token_url: base.join(TOKEN_PATH).expect("a token URL"),
        base_url: base.clone(),
        client_id: op.client_id.clone(),
        client_secret: op.client_secret.clone(),
        customer_code: op.customer_code.clone(),
        send_to_code: op.send_to_code.clone(),
        supplier_code: "1001".into(),
        password: op.password.clone(),
        seller_password: op.seller_password.clone(),
        customer_password: op.customer_password.clone(),
        timeout_ms: 15_000,
        rate_limit,
        retry,
        breaker,
    };
    let ylh = YlhConfig {
        base_url: base,
        path_suffix: "-dev".into(),
        client_id: creds.ylh.client_id.clone(),
        client_password: creds.ylh.client_password.clone(),
        username: creds.ylh.username.clone(),
        password: creds.ylh.password.clone(),
        source_system: "HAIER-SYNC".into(),
        shop_name: "Bench Shop".into(),
        seller_code: creds.ylh.seller_code.clone(),
        timeout_ms: 15_000,
        rate_limit,
        retry,
        breaker,
    };
    (haier, ylh)
}

async fn run_row(calls: usize, rate_limit: RateLimit) -> anyhow::Result<()> {
    let options = SimOptions {
        products: 200,
        faults: Faults {
            qps: Some(SIM_QPS),
            ..Faults::default()
        },
        ..SimOptions::default()
    };
    let creds = SimCredentials::default();
    let sim = Simulator::start("127.0.0.1:0".parse()?, options, creds.clone()).await?;
    let (haier, ylh) = configs(&sim.base_url(), rate_limit, &creds);
    let client = HaierClient::new(&haier, &ylh)?;
    client.login(System::Openplat).await?;
    let codes: Vec<String> = sim
        .catalog()
        .products_for_sale()
        .iter()
        .map(|p| p.code.clone())
        .collect();
    let started = Instant::now();
    let failed = futures::stream::iter((0..calls).map(|i| {
        let client = client.clone();
        let code = codes[i % codes.len()].clone();
        async move { client.query_stock(&code, "110101").await }
    }))
    .buffer_unordered(CONCURRENCY)
    .filter(|r| std::future::ready(r.is_err()))
    .count()
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let rate = calls as f64 / seconds;
    let quota = f64::from(rate_limit.per_second);
    println!(
        "{:>10} {:>6} {:>6} {:>8.2} {:>8.1} {:>+7.1}% {:>6} {:>7}",
        rate_limit.per_second,
        rate_limit.burst,
        calls,
        seconds,
        rate,
        (rate / quota - 1.0) * 100.0,
        sim.stats().throttled,
        failed
    );
    sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let calls = std::env::var("CLIENT_RATE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("stock calls through one HaierClient; simulator quota {SIM_QPS}/s, {CONCURRENCY} in flight");
    println!(
        "{:>10} {:>6} {:>6} {:>8} {:>8} {:>8} {:>6} {:>7}",
        "per_second", "burst", "calls", "seconds", "req/s", "vs quota", "429s", "failed"
    );
    runtime.block_on(async {
        for (per_second, burst) in [(95, 1), (95, 3), (95, 10), (50, 5)] {
            run_row(calls, RateLimit { per_second, burst }).await?;
        }
        anyhow::Ok(())
    })
}

//! Whole-system benchmark of the sync jobs: the real `sync::run_job` (database reads, the shared
//! client, page writes, the log row) against the in-process simulator with a 100/s quota and the
//! client at `rate_limit = { per_second = 95, burst = 3 }`. Prints, per run, the items, the HTTP
//! requests the simulator received (token calls included), the wall time, the request rate, its
//! ratio to `per_second` (the physical limit) and the 429s; then the same kinds with no quota
//! anywhere, as the ceiling of the process on this machine.
//!
//! `cargo bench --bench sync_throughput`: SQLite, and PostgreSQL too when it is reachable at
//! `HAIER_SYNC_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! `HAIER_SYNC_TEST_BACKEND=sqlite|postgres cargo bench --bench sync_throughput`: that backend only.
//! Catalog sizes: `SYNC_THROUGHPUT_PRICE_PRODUCTS` (products and prices runs, default 10000) and
//! `SYNC_THROUGHPUT_STOCK_PRODUCTS` (stock runs, default 1000).

// The daemon's futures nest deeply; computing their layout needs more than 128 levels.
#![recursion_limit = "256"]

mod support;

use haier_sync::config::{SyncJob, SyncKind};
use haier_sync::db::Backend;
use haier_sync::simulator::Faults;
use haier_sync::sync::RunOverrides;
use std::time::Instant;
use support::{BenchEnv, Quota, BURST, COUNTIES, PER_SECOND, QUOTA, SIM_QPS};

/// The client's quota in the ceiling runs: far above what the machine can do, so that only the
/// process itself (simulator included) sets the pace.
const UNLIMITED_PER_SECOND: u32 = 100_000;

/// No quota anywhere: how fast the whole system can go on this machine.
const NO_QUOTA: Quota = Quota {
    sim_qps: None,
    per_second: UNLIMITED_PER_SECOND,
    burst: 100,
};

/// One measured run.
struct Row {
    backend: Backend,
    label: String,
    latency_ms: u64,
    concurrency: usize,
    /// The client's quota: the physical limit.
    per_second: u32,
    items: i64,
    requests: u64,
    seconds: f64,
    throttled: u64,
}

impl Row {
    fn print(&self) {
        let rate = self.requests as f64 / self.seconds;
        // A run of a call or two (the listing) says nothing about the quota.
        let ratio = if self.per_second == UNLIMITED_PER_SECOND {
            "no quota".to_owned()
        } else if self.requests < 10 {
            "–".to_owned()
        } else {
            format!("{:.2}", rate / f64::from(self.per_second))
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.1} | {} | {} |",
            self.backend,
            self.label,
            self.latency_ms,
            self.concurrency,
            self.items,
            self.requests,
            self.seconds,
            self.items as f64 / self.seconds,
            rate,
            ratio,
            self.throttled
        );
    }
}

/// Runs `job` once through `sync::run_job` and measures it from the simulator's counters.
async fn measure(env: &BenchEnv, label: &str, job: SyncJob, overrides: RunOverrides) -> anyhow::Result<Row> {
    let concurrency = job.concurrency.unwrap_or_else(|| {
        haier_sync::sync::pipeline::default_concurrency(haier_sync::config::RateLimit {
            per_second: env.quota.per_second,
            burst: env.quota.burst,
        })
    });
    let before = env.sim.stats();
    let started = Instant::now();
    let outcome = env.run(job, overrides).await?;
    let seconds = started.elapsed().as_secs_f64();
    let after = env.sim.stats();
    Ok(Row {
        backend: env.backend(),
        label: label.to_owned(),
        latency_ms: env.sim.faults().latency_ms,
        concurrency,
        per_second: env.quota.per_second,
        items: outcome.counts.total,
        requests: support::requests(&after) - support::requests(&before),
        seconds,
        throttled: after.throttled - before.throttled,
    })
}

/// Sets the simulator's reply latency, keeping its quota.
fn set_latency(env: &BenchEnv, latency_ms: u64) -> anyhow::Result<()> {
    env.sim.set_faults(Faults {
        qps: env.quota.sim_qps,
        latency_ms,
        ..Faults::default()
    })
}

/// Products and prices on a catalog of `products`: the full listing (one call), the same
/// products by code (20 a call), then their prices (20 a call).
async fn products_and_prices(backend: Backend, products: usize) -> anyhow::Result<()> {
    let env = BenchEnv::start(backend, products, QUOTA).await?;
    let listing = env.job(SyncKind::Products);
    measure(
        &env,
        "products (listing)",
        listing.clone(),
        RunOverrides::default(),
    )
    .await?
    .print();
    let by_code = RunOverrides {
        product_codes: Some(env.codes_for_sale()),
        ..RunOverrides::default()
    };
    measure(&env, "products (by code)", listing, by_code)
        .await?
        .print();
    measure(&env, "prices", env.job(SyncKind::Prices), RunOverrides::default())
        .await?
        .print();
    env.sim.shutdown().await;
    Ok(())
}

/// Stock on a catalog of `products` for both counties, without and with 50 ms of latency, then
/// one county at 200 ms of latency with the default concurrency and with 32 in flight.
async fn stock(backend: Backend, products: usize) -> anyhow::Result<()> {
    let env = BenchEnv::start(backend, products, QUOTA).await?;
    measure(
        &env,
        "products (listing)",
        env.job(SyncKind::Products),
        RunOverrides::default(),
    )
    .await?
    .print();
    let job = env.job(SyncKind::Stock);
    measure(&env, "stock, 2 counties", job.clone(), RunOverrides::default())
        .await?
        .print();
    set_latency(&env, 50)?;
    measure(&env, "stock, 2 counties", job.clone(), RunOverrides::default())
        .await?
        .print();
    set_latency(&env, 200)?;
    let one_county = RunOverrides {
        county_codes: Some(vec![COUNTIES[0].to_owned()]),
        ..RunOverrides::default()
    };
    measure(&env, "stock, 1 county", job.clone(), one_county.clone())
        .await?
        .print();
    let wide = SyncJob {
        concurrency: Some(32),
        ..job
    };
    measure(&env, "stock, 1 county", wide, one_county).await?.print();
    env.sim.shutdown().await;
    Ok(())
}

/// Prices and stock with no quota anywhere and 32 in flight: the ceiling of the process on this
/// machine (client, simulator and database share its cores), to show how far below it the quota is.
async fn ceiling(backend: Backend, price_products: usize, stock_products: usize) -> anyhow::Result<()> {
    let env = BenchEnv::start(backend, price_products, NO_QUOTA).await?;
    env.run(env.job(SyncKind::Products), RunOverrides::default())
        .await?;
    let prices = SyncJob {
        concurrency: Some(32),
        ..env.job(SyncKind::Prices)
    };
    measure(&env, "prices", prices, RunOverrides::default())
        .await?
        .print();
    let stock = SyncJob {
        concurrency: Some(32),
        ..env.job(SyncKind::Stock)
    };
    let first_codes = RunOverrides {
        product_codes: Some(env.codes_for_sale().into_iter().take(stock_products).collect()),
        ..RunOverrides::default()
    };
    measure(&env, "stock, 2 counties", stock, first_codes)
        .await?
        .print();
    env.sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let price_products = support::env_number("SYNC_THROUGHPUT_PRICE_PRODUCTS", 10_000);
    let stock_products = support::env_number("SYNC_THROUGHPUT_STOCK_PRODUCTS", 1_000);
    println!(
        "sync::run_job against the simulator (quota {SIM_QPS}/s); client rate_limit = {{ per_second = \
         {PER_SECOND}, burst = {BURST} }}; catalogs: {price_products} products (products, prices), \
         {stock_products} (stock)"
    );
    println!(
        "| backend | run | latency ms | in flight | items | requests | seconds | items/s | req/s | \
         req/s ÷ per_second | 429s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    support::runtime()?.block_on(async {
        for backend in support::backends() {
            products_and_prices(backend, price_products).await?;
            stock(backend, stock_products).await?;
            ceiling(backend, price_products, stock_products).await?;
        }
        anyhow::Ok(())
    })
}

//! Whole-system benchmark of the sync jobs: the real `sync::run_job` (database reads, the shared
//! client, page writes, the log row) against the in-process simulator with a 100/s quota and the
//! client at `rate_limit = { per_second = 95, burst = 3 }`. Prints, per run, the items, the HTTP
//! requests the simulator received (token calls included), the wall time, the request rate, its
//! ratio to `per_second` (the physical limit) and the 429s.
//!
//! `cargo bench --bench sync_throughput`: SQLite, and PostgreSQL too when it is reachable at
//! `HAIER_SYNC_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! `HAIER_SYNC_TEST_BACKEND=sqlite|postgres cargo bench --bench sync_throughput`: that backend only.
//! Catalog sizes: `SYNC_THROUGHPUT_PRICE_PRODUCTS` (products and prices runs, default 10000) and
//! `SYNC_THROUGHPUT_STOCK_PRODUCTS` (stock runs, default 1000).

use anyhow::Context as _;
use haier_sync::config::{self, JobConfig, JobKind};
use haier_sync::db::testing::{self, TestDb};
use haier_sync::db::Backend;
use haier_sync::simulator::{Faults, SimCredentials, SimHandle, SimOptions, SimStats, Simulator};
use haier_sync::sync::{self, AppContext, NoProgress, RunOverrides, RunRequest, RunStatus};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The simulator's quota per system (a sliding one-second window), as the contract states it.
const SIM_QPS: f64 = 100.0;
/// The client's quota: the physical limit every ratio is taken against.
const PER_SECOND: u32 = 95;
/// The client's burst: `PER_SECOND + BURST` stays within `SIM_QPS` (see `client_rate`).
const BURST: u32 = 3;
/// The counties of the shipped `stock` job.
const COUNTIES: [&str; 2] = ["110101", "310101"];

/// The client's quota in the ceiling runs: far above what the machine can do, so that only the
/// process itself (simulator included) sets the pace.
const UNLIMITED_PER_SECOND: u32 = 100_000;

/// The quota of the simulator and of the client for one environment.
#[derive(Debug, Clone, Copy)]
struct Quota {
    sim_qps: Option<f64>,
    per_second: u32,
    burst: u32,
}

/// The benchmark's setting: a 100/s quota at Haier, 95/s with a burst of 3 at the client.
const QUOTA: Quota = Quota {
    sim_qps: Some(SIM_QPS),
    per_second: PER_SECOND,
    burst: BURST,
};

/// No quota anywhere: how fast the whole system can go on this machine.
const NO_QUOTA: Quota = Quota {
    sim_qps: None,
    per_second: UNLIMITED_PER_SECOND,
    burst: 100,
};

/// A simulator, a fresh database and the daemon's context pointing at both.
struct Env {
    quota: Quota,
    sim: SimHandle,
    ctx: AppContext,
    _db: TestDb,
    _config_dir: tempfile::TempDir,
}

impl Env {
    async fn start(backend: Backend, products: usize, quota: Quota) -> anyhow::Result<Env> {
        let options = SimOptions {
            products,
            faults: Faults {
                qps: quota.sim_qps,
                ..Faults::default()
            },
            ..SimOptions::default()
        };
        let sim = Simulator::start("127.0.0.1:0".parse()?, options, SimCredentials::default()).await?;
        let db = TestDb::new_on(backend).await;
        let config_dir = tempfile::tempdir()?;
        let path = config_dir.path().join("jobs.toml");
        std::fs::write(&path, config_text(&sim.base_url(), &db.url_text(), quota))?;
        let config = config::load_with_env(&path, Vec::<(String, String)>::new())
            .context("Failed to load the bench config")?;
        let ctx = AppContext::connect(config).await?;
        Ok(Env {
            quota,
            sim,
            ctx,
            _db: db,
            _config_dir: config_dir,
        })
    }

    fn job(&self, kind: JobKind) -> JobConfig {
        sync::job_of_kind(&self.ctx.config, kind)
    }

    fn set_latency(&self, latency_ms: u64) -> anyhow::Result<()> {
        self.sim.set_faults(Faults {
            qps: self.quota.sim_qps,
            latency_ms,
            ..Faults::default()
        })
    }

    /// Runs `job` once and measures it; fails unless the run succeeded.
    async fn measure(&self, label: &str, job: JobConfig, overrides: RunOverrides) -> anyhow::Result<Row> {
        // The job's default, as `sync::pipeline::concurrency` computes it.
        let concurrency = job
            .concurrency
            .unwrap_or_else(|| (2 * self.quota.burst as usize).max(8));
        let before = self.sim.stats();
        let started = Instant::now();
        let outcome = sync::run_job(
            &self.ctx,
            RunRequest::manual(job, overrides),
            CancellationToken::new(),
            Arc::new(NoProgress),
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        let after = self.sim.stats();
        anyhow::ensure!(
            outcome.status == RunStatus::Success,
            "{label}: the run ended {} ({:?})",
            outcome.status,
            outcome.message
        );
        Ok(Row {
            per_second: self.quota.per_second,
            backend: self.ctx.db.backend(),
            label: label.to_owned(),
            latency_ms: self.sim.faults().latency_ms,
            concurrency,
            items: outcome.counts.total,
            requests: requests(&after) - requests(&before),
            seconds,
            throttled: after.throttled - before.throttled,
        })
    }
}

/// One measured run.
struct Row {
    /// The client's quota: the physical limit.
    per_second: u32,
    backend: Backend,
    label: String,
    latency_ms: u64,
    concurrency: usize,
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

/// Every request the simulator received, token calls and throttled ones included.
fn requests(stats: &SimStats) -> u64 {
    let r = &stats.requests;
    r.token_openplat
        + r.products
        + r.prices
        + r.stock
        + r.logistics
        + r.balance
        + r.token_ylh
        + r.order_push
        + r.order_cancel
}

/// A jobs.toml with the shipped defaults but the benchmark's quota and no scheduled jobs (each
/// kind runs as its default job: the shipped stock job's counties, the default concurrency).
fn config_text(base_url: &str, db_url: &str, quota: Quota) -> String {
    let Quota {
        per_second, burst, ..
    } = quota;
    let counties = COUNTIES.map(|c| format!("\"{c}\"")).join(", ");
    format!(
        r#"
[database]
url = "{db_url}"

[haier]
base_url = "{base_url}"
client_id = "demo-openplat-client"
client_secret = "demo-openplat-secret"
customer_code = "8800633175"
send_to_code = "8800633175"
supplier_code = "1001"
password = "demo-password"
seller_password = "demo-password"
customer_password = "demo-password"
timeout_ms = 15000
rate_limit = {{ per_second = {per_second}, burst = {burst} }}

[ylh]
base_url = "{base_url}"
path_suffix = "-dev"
client_id = "demo-ylh-client"
client_password = "demo-ylh-secret"
username = "demo-user"
password = "demo-user-password"
source_system = "HAIER-SYNC"
shop_name = "Bench Shop"
seller_code = "8800633175"
rate_limit = {{ per_second = {per_second}, burst = {burst} }}

[callback]
listen = "127.0.0.1:0"
app_key = "demo-app-key"
secret = "demo-callback-secret"

[log]
level = "warn"

[defaults]
county_codes = [{counties}]
"#
    )
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `HAIER_SYNC_TEST_BACKEND` when set; else SQLite, and PostgreSQL when it answers.
fn backends() -> Vec<Backend> {
    if std::env::var_os("HAIER_SYNC_TEST_BACKEND").is_some() {
        return vec![testing::test_backend()];
    }
    use diesel::Connection as _;
    let url = testing::pg_admin_url();
    match diesel::pg::PgConnection::establish(&url) {
        Ok(_) => vec![Backend::Sqlite, Backend::Postgres],
        Err(e) => {
            println!("(PostgreSQL not reachable at {url}: {e}; SQLite only)");
            vec![Backend::Sqlite]
        }
    }
}

/// Products and prices on a catalog of `products`: the full listing (one call), the same
/// products by code (20 a call), then their prices (20 a call).
async fn products_and_prices(backend: Backend, products: usize) -> anyhow::Result<()> {
    let env = Env::start(backend, products, QUOTA).await?;
    env.measure(
        "products (listing)",
        env.job(JobKind::Products),
        RunOverrides::default(),
    )
    .await?
    .print();
    let codes: Vec<String> = env
        .sim
        .catalog()
        .products_for_sale()
        .iter()
        .map(|p| p.code.clone())
        .collect();
    let by_codes = RunOverrides {
        product_codes: Some(codes),
        ..RunOverrides::default()
    };
    env.measure("products (by code)", env.job(JobKind::Products), by_codes)
        .await?
        .print();
    env.measure("prices", env.job(JobKind::Prices), RunOverrides::default())
        .await?
        .print();
    env.sim.shutdown().await;
    Ok(())
}

/// Stock on a catalog of `products` for both counties, without and with 50 ms of latency, then
/// one county at 200 ms of latency with the default concurrency and with 32 in flight.
async fn stock(backend: Backend, products: usize) -> anyhow::Result<()> {
    let env = Env::start(backend, products, QUOTA).await?;
    env.measure(
        "products (listing)",
        env.job(JobKind::Products),
        RunOverrides::default(),
    )
    .await?
    .print();
    let job = env.job(JobKind::Stock);
    env.measure("stock, 2 counties", job.clone(), RunOverrides::default())
        .await?
        .print();
    env.set_latency(50)?;
    env.measure("stock, 2 counties", job.clone(), RunOverrides::default())
        .await?
        .print();
    env.set_latency(200)?;
    let one_county = RunOverrides {
        county_codes: Some(vec![COUNTIES[0].to_owned()]),
        ..RunOverrides::default()
    };
    env.measure("stock, 1 county", job.clone(), one_county.clone())
        .await?
        .print();
    let wide = JobConfig {
        concurrency: Some(32),
        ..job
    };
    env.measure("stock, 1 county", wide, one_county).await?.print();
    env.sim.shutdown().await;
    Ok(())
}

/// Prices and stock with no quota anywhere and 32 in flight: the ceiling of the process on this
/// machine (client, simulator and database share its cores), to show how far below it the quota is.
async fn ceiling(backend: Backend, price_products: usize, stock_products: usize) -> anyhow::Result<()> {
    let env = Env::start(backend, price_products, NO_QUOTA).await?;
    env.measure(
        "products (listing)",
        env.job(JobKind::Products),
        RunOverrides::default(),
    )
    .await?;
    let prices = JobConfig {
        concurrency: Some(32),
        ..env.job(JobKind::Prices)
    };
    env.measure("prices", prices, RunOverrides::default())
        .await?
        .print();
    let codes: Vec<String> = env
        .sim
        .catalog()
        .products_for_sale()
        .iter()
        .take(stock_products)
        .map(|p| p.code.clone())
        .collect();
    let stock = JobConfig {
        concurrency: Some(32),
        ..env.job(JobKind::Stock)
    };
    let overrides = RunOverrides {
        product_codes: Some(codes),
        ..RunOverrides::default()
    };
    env.measure("stock, 2 counties", stock, overrides).await?.print();
    env.sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let price_products = env_number("SYNC_THROUGHPUT_PRICE_PRODUCTS", 10_000);
    let stock_products = env_number("SYNC_THROUGHPUT_STOCK_PRODUCTS", 1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
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
    runtime.block_on(async {
        for backend in backends() {
            products_and_prices(backend, price_products).await?;
            stock(backend, stock_products).await?;
            ceiling(backend, price_products, stock_products).await?;
        }
        anyhow::Ok(())
    })
}

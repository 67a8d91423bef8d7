//! What the whole-system benchmarks share: the quota they run at, an environment of a simulator,
//! a fresh database and the daemon's context pointing at both, and the choice of backends.

use anyhow::Context as _;
use haier_sync::config::{self, SyncJob, SyncKind};
use haier_sync::db::testing::{self, TempDir, TestDb};
use haier_sync::db::Backend;
use haier_sync::runs::RunStatus;
use haier_sync::simulator::{Faults, SimCredentials, SimHandle, SimOptions, SimStats, Simulator};
use haier_sync::sync::{self, AppContext, NoProgress, RunOutcome, RunOverrides, RunRequest};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The simulator's quota per system (a sliding one-second window), as the contract states it.
pub const SIM_QPS: f64 = 100.0;
/// The client's quota: the physical limit every ratio is taken against.
pub const PER_SECOND: u32 = 95;
/// The client's burst: `PER_SECOND + BURST` stays within `SIM_QPS` (see `client_rate`).
pub const BURST: u32 = 3;
/// The counties of the shipped `stock` job.
pub const COUNTIES: [&str; 2] = ["110101", "310101"];

/// The quota of the simulator and of the client (both systems) for one environment.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub sim_qps: Option<f64>,
    pub per_second: u32,
    pub burst: u32,
}

/// The benchmarks' setting: a 100/s quota at Haier, 95/s with a burst of 3 at the client.
pub const QUOTA: Quota = Quota {
    sim_qps: Some(SIM_QPS),
    per_second: PER_SECOND,
    burst: BURST,
};

/// A simulator, a fresh database and the daemon's context pointing at both.
pub struct BenchEnv {
    pub quota: Quota,
    pub sim: SimHandle,
    pub ctx: AppContext,
    _db: TestDb,
    _config_dir: TempDir,
}

impl BenchEnv {
    /// A simulator of `products` purchasable products at `quota`, and a context whose client
    /// keeps to it.
    pub async fn start(backend: Backend, products: usize, quota: Quota) -> anyhow::Result<BenchEnv> {
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
        let config_dir = TempDir::new("haier-sync-bench")?;
        let path = config_dir.path().join("jobs.toml");
        std::fs::write(&path, config_text(&sim.base_url(), &db.url_text(), quota))?;
        let config = config::load_with_env(&path, Vec::<(String, String)>::new())
            .context("Failed to load the bench config")?;
        let ctx = AppContext::connect(config).await?;
        Ok(BenchEnv {
            quota,
            sim,
            ctx,
            _db: db,
            _config_dir: config_dir,
        })
    }

    pub fn backend(&self) -> Backend {
        self.ctx.db.backend()
    }

    /// The default job of `kind` (no jobs are configured).
    pub fn job(&self, kind: SyncKind) -> SyncJob {
        sync::job_of_kind(&self.ctx.config, kind)
    }

    /// Runs `job` once; fails unless the run succeeded.
    pub async fn run(&self, job: SyncJob, overrides: RunOverrides) -> anyhow::Result<RunOutcome> {
        let name = job.name.clone();
        let outcome = sync::run_job(
            &self.ctx,
            RunRequest::manual(job, overrides),
            CancellationToken::new(),
            Arc::new(NoProgress),
        )
        .await?;
        anyhow::ensure!(
            outcome.status == RunStatus::Success,
            "{name}: the run ended {} ({:?})",
            outcome.status,
            outcome.message
        );
        Ok(outcome)
    }

    /// The codes of the simulator's products for sale, in catalog order.
    pub fn codes_for_sale(&self) -> Vec<String> {
        self.sim
            .catalog()
            .products_for_sale()
            .iter()
            .map(|p| p.code.clone())
            .collect()
    }
}

/// Every request the simulator received, token calls and throttled ones included.
pub fn requests(stats: &SimStats) -> u64 {
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

/// A jobs.toml with the shipped defaults but the benchmark's quota and no jobs (each kind runs
/// as its default job: the shipped stock job's counties, the default concurrency).
pub fn config_text(base_url: &str, db_url: &str, quota: Quota) -> String {
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

/// A number from the environment, else `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `HAIER_SYNC_TEST_BACKEND` when set; else SQLite, and PostgreSQL when it answers at
/// `HAIER_SYNC_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
pub fn backends() -> Vec<Backend> {
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

/// The tokio runtime the benchmarks run on: two workers, as the development machine has cores.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

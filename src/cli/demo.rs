//! `haier-sync demo`: a newcomer's first run. It starts the simulator of both Haier systems
//! in-process, points a fresh SQLite database and config at it, runs every job kind once
//! (products, prices, stock for two counties, three sample orders through the outbox with their
//! confirm callbacks, then logistics), and prints the status table and the sync log.

use crate::cli::run_job::{print_summary, Display};
use crate::config::{self, SyncKind};
use crate::context::AppContext;
use crate::db::products;
use crate::orders::outbox::{self, OutboxRow};
use crate::orders::poller::{try_push_next_batch, PollOutcome};
use crate::orders::{enqueue_orders, Enqueued, OutboxStatus};
use crate::runs::{self, RunStatus};
use crate::simulator::{SimCredentials, SimOptions, Simulator};
use crate::sync::{self, RunOverrides, RunRequest};
use anyhow::{bail, Context as _};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The shipped configuration; the demo points its URLs and database elsewhere.
const SHIPPED_CONFIG: &str = include_str!("../../jobs.toml");

/// The two counties the demo's stock run covers (Beijing Dongcheng, Shanghai Huangpu).
const DEMO_COUNTIES: [&str; 2] = ["110101", "310101"];

/// How long after confirming an order the simulator reports it delivered.
const DELIVERY_AFTER_MS: u64 = 1_500;

/// How long the demo waits for Haier's confirm callbacks and for the deliveries.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of products in the simulated catalog.
    #[arg(long, default_value_t = 200)]
    pub products: usize,
    /// Folder for the demo's SQLite database and config [default: a new folder in the system's
    /// temporary directory]. An existing database there is replaced.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<i32> {
    crate::telemetry::init_minimal();
    let started = Instant::now();
    let dir = match args.dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!(
            "haier-sync-demo-{}-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S"),
            std::process::id()
        )),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    let dir = dir.canonicalize().unwrap_or(dir);
    let db_path = dir.join("haier-sync.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }

    // The callback receiver's port first, so the simulator knows where to send confirmations.
    let callback_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("Failed to bind the callback receiver")?;
    let callback_addr = callback_listener.local_addr()?;
    let sim = Simulator::start(
        "127.0.0.1:0".parse()?,
        SimOptions {
            products: args.products,
            callback_url: Some(format!("http://{callback_addr}/haier/callback")),
            callback_delay_ms: 100,
            delivery_after_ms: DELIVERY_AFTER_MS,
            ..SimOptions::default()
        },
        SimCredentials::default(),
    )
    .await
    .context("Failed to start the simulator")?;

    let config_path = dir.join("jobs.toml");
    std::fs::write(
        &config_path,
        demo_config(&sim.base_url(), &db_path, callback_addr),
    )
    .with_context(|| format!("Failed to write {}", config_path.display()))?;
    let config =
        config::load(&config_path).map_err(|e| anyhow::anyhow!("the demo config is invalid: {e}"))?;

    println!("haier-sync demo");
    println!("  simulator:  {} ({} products)", sim.base_url(), args.products);
    println!("  database:   {}", db_path.display());
    println!("  config:     {}", config_path.display());
    println!("  callbacks:  http://{callback_addr}/haier/callback");
    println!();

    let ctx = AppContext::connect(config).await?;
    let stop = CancellationToken::new();
    let receiver = tokio::spawn(crate::orders::callback::serve(
        ctx.clone(),
        callback_listener,
        stop.clone(),
    ));

    let result = run_every_kind(&ctx).await;
    stop.cancel();
    let _ = receiver.await;
    sim.shutdown().await;
    let all_succeeded = result?;

    println!();
    let report = super::status::collect(&ctx.db, &ctx.config, chrono::Utc::now()).await?;
    print!("{}", super::status::render(&report, ctx.config.defaults.timezone));
    let filter = runs::LogFilter {
        limit: 20,
        ..Default::default()
    };
    let rows = ctx
        .db
        .run(move |conn| Ok(runs::log::list(conn, &filter)?))
        .await?;
    println!(
        "{}",
        super::logs::render_table(&rows, ctx.config.defaults.timezone)
    );
    println!();
    println!(
        "Done in {:.1}s. Look around with:",
        started.elapsed().as_secs_f64()
    );
    println!("  haier-sync -c {} status", config_path.display());
    println!("  haier-sync -c {} logs", config_path.display());
    println!("  haier-sync -c {} outbox list", config_path.display());
    println!(
        "  sqlite3 {} 'select product_code, supply_price, invoice_price from haier_prices limit 5'",
        db_path.display()
    );
    Ok(if all_succeeded { 0 } else { 1 })
}

/// Products, prices, stock, three orders, logistics; true when every run ended `success` and
/// every order was confirmed and delivered.
async fn run_every_kind(ctx: &AppContext) -> anyhow::Result<bool> {
    let mut all_succeeded = true;
    for kind in [SyncKind::Products, SyncKind::Prices, SyncKind::Stock] {
        let overrides = RunOverrides {
            county_codes: (kind == SyncKind::Stock).then(|| DEMO_COUNTIES.map(String::from).to_vec()),
            ..RunOverrides::default()
        };
        all_succeeded &= run_sync(ctx, kind, overrides).await?;
    }

    let so_ids = enqueue_sample_orders(ctx).await?;
    let job = ctx.config.outbox_job();
    let push_started = Instant::now();
    while let PollOutcome::Worked { counts } = try_push_next_batch(ctx, &job).await? {
        println!("orders: pushed {} of {} to YLH", counts.success, counts.total);
        all_succeeded &= counts.failed == 0;
    }
    let confirmed = wait_for_status(ctx, &so_ids, OutboxStatus::Confirmed).await?;
    println!(
        "orders: {confirmed} of {} confirmed by Haier's callbacks in {:.1}s",
        so_ids.len(),
        push_started.elapsed().as_secs_f64()
    );
    all_succeeded &= confirmed == so_ids.len();

    // The simulator delivers 1.5 s after confirming; ask once that time is up, and again until
    // every order reads delivered.
    println!("logistics: waiting for the simulated deliveries");
    tokio::time::sleep(Duration::from_millis(DELIVERY_AFTER_MS + 200)).await;
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        all_succeeded &= run_sync(ctx, SyncKind::Logistics, RunOverrides::default()).await?;
        let delivered = count_orders(ctx, &so_ids, |row| row.delivered_at.is_some()).await?;
        if delivered == so_ids.len() {
            println!("logistics: all {delivered} orders delivered");
            break;
        }
        if Instant::now() > deadline {
            println!(
                "logistics: {delivered} of {} orders delivered before the demo gave up",
                so_ids.len()
            );
            all_succeeded = false;
            break;
        }
        println!(
            "logistics: {delivered} of {} orders delivered so far; asking again in 1s",
            so_ids.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(all_succeeded)
}

/// Runs the configured job of `kind` with a progress display; true when it ended `success`.
async fn run_sync(ctx: &AppContext, kind: SyncKind, overrides: RunOverrides) -> anyhow::Result<bool> {
    let job = sync::context::job_of_kind(&ctx.config, kind);
    let display = Display::new(kind.as_str(), std::io::stderr().is_terminal());
    let started = Instant::now();
    let outcome = sync::run_job(
        ctx,
        RunRequest::manual(job, overrides),
        CancellationToken::new(),
        display.progress.clone(),
    )
    .await?;
    display.finish();
    print_summary(kind.as_str(), &outcome, started.elapsed());
    Ok(outcome.status == RunStatus::Success)
}

/// Writes three orders for products Haier sells to the outbox, as a shop would.
async fn enqueue_sample_orders(ctx: &AppContext) -> anyhow::Result<Vec<String>> {
    let products = ctx.db.run(|conn| Ok(products::priced_for_sale(conn, 3)?)).await?;
    if products.len() < 3 {
        bail!(
            "the demo needs three products for sale with a price; found {}",
            products.len()
        );
    }
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let orders: Vec<serde_json::Value> = products
        .iter()
        .enumerate()
        .map(|(i, (code, price))| {
            sample_order(ctx, &format!("DEMO{stamp}{:02}", i + 1), code, price.as_deref())
        })
        .collect();
    let text = serde_json::to_string(&orders)?;
    let enqueued = enqueue_orders(&ctx.db, &text).await?;
    let mut so_ids = Vec::new();
    for order in &enqueued {
        match order {
            Enqueued::Inserted { so_id, id, .. } => {
                println!("orders: {so_id} written to the outbox (row {id})")
            }
            Enqueued::Rejected { order, reason } => println!("orders: rejected {order}: {reason}"),
        }
    }
    for order in orders {
        so_ids.push(order["soId"].as_str().unwrap_or_default().to_owned());
    }
    Ok(so_ids)
}

/// One order in YLH's push format, as the shop writes it to the outbox.
fn sample_order(ctx: &AppContext, so_id: &str, product_code: &str, price: Option<&str>) -> serde_json::Value {
    let price: f64 = price.and_then(|p| p.parse().ok()).unwrap_or(1999.0);
    let retail = (price * 1.2).round();
    serde_json::json!({
        "sourceSystem": ctx.config.ylh.source_system,
        "shopName": ctx.config.ylh.shop_name,
        "sellerCode": ctx.config.ylh.seller_code,
        "consigneeName": "张三",
        "consigneeMobile": "13800138000",
        "onlineNo": format!("WEB-{so_id}"),
        "soId": so_id,
        "totalQty": 1,
        "totalAmt": retail,
        "createTime": chrono::Utc::now().timestamp_millis(),
        "province": "北京市",
        "city": "北京市",
        "area": "东城区",
        "detailAddress": "东华门街道 1 号",
        "deliveryInstall": "false",
        "itemList": [{
            "productCode": product_code,
            "itemQty": 1,
            "retailPrice": retail,
            "discountAmount": 0,
            "actualPrice": retail
        }]
    })
}

async fn count_orders(
    ctx: &AppContext,
    so_ids: &[String],
    f: impl Fn(&OutboxRow) -> bool,
) -> anyhow::Result<usize> {
    let so_ids = so_ids.to_vec();
    let rows = ctx
        .db
        .run(move |conn| Ok(outbox::find_by_so_ids(conn, &so_ids)?))
        .await?;
    Ok(rows.iter().filter(|row| f(row)).count())
}

/// Waits (bounded) until every order is in `status`; returns how many are.
async fn wait_for_status(ctx: &AppContext, so_ids: &[String], status: OutboxStatus) -> anyhow::Result<usize> {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let done = count_orders(ctx, so_ids, |row| row.status == status).await?;
        if done == so_ids.len() || Instant::now() > deadline {
            if done < so_ids.len() {
                println!(
                    "orders: only {done} of {} {status} before the demo gave up",
                    so_ids.len()
                );
            }
            return Ok(done);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shipped `jobs.toml` pointed at the in-process simulator, the demo's database and receiver.
fn demo_config(base_url: &str, db_path: &Path, callback_addr: std::net::SocketAddr) -> String {
    let mut text = SHIPPED_CONFIG
        .replace("http://127.0.0.1:18700", base_url)
        .replace(
            "sqlite://haier-sync.db",
            &format!("sqlite://{}", db_path.display()),
        )
        .replace("127.0.0.1:18701", &callback_addr.to_string());
    text.insert_str(
        0,
        "# Written by `haier-sync demo`: the shipped jobs.toml, pointed at the demo's simulator.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_the_shipped_one_pointed_elsewhere() {
        let text = demo_config(
            "http://127.0.0.1:5555",
            Path::new("/tmp/x/haier-sync.db"),
            "127.0.0.1:6666".parse().unwrap(),
        );
        let settings: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        assert!(
            settings
                .iter()
                .all(|l| !l.contains("18700") && !l.contains("18701")),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.toml");
        std::fs::write(&path, text).unwrap();
        let config = config::load_with_env(&path, Vec::new()).unwrap();
        assert_eq!(config.haier.base_url.as_str(), "http://127.0.0.1:5555/");
        assert_eq!(
            config.database.url,
            config::DatabaseUrl::Sqlite("/tmp/x/haier-sync.db".into())
        );
        assert_eq!(config.callback.listen.port(), 6666);
    }
}

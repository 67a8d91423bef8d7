//! Whole-system benchmark of the order outbox, with the daemon's poller
//! (`orders::poller::run_until_stopped`, the shipped `orders` job: batch 50, poll every second)
//! running against the simulator at a 100/s quota, the client at 95/s with a burst of 3:
//!
//! - latency: orders inserted one at a time by plain SQL, as a shop does, into an idle outbox;
//!   per order, the time from just before its INSERT to the `pushed_at` the poller wrote (both
//!   read from this machine's clock). PostgreSQL wakes the poller by LISTEN/NOTIFY; SQLite has
//!   only the poll interval.
//! - burst: 1000 orders inserted in one transaction; the time from the insert to the last push,
//!   and the request rate against `per_second` (the physical limit).
//!
//! `cargo bench --bench order_latency`: SQLite, and PostgreSQL too when it is reachable.
//! `HAIER_SYNC_TEST_BACKEND=sqlite|postgres cargo bench --bench order_latency`: that backend only.
//! Sizes: `ORDER_LATENCY_ORDERS` (default 200), `ORDER_LATENCY_GAP_MS` between inserts (default
//! 50), `ORDER_BURST_ORDERS` (default 1000).

// The daemon's futures nest deeply; computing their layout needs more than 128 levels.
#![recursion_limit = "256"]

mod support;

use anyhow::Context as _;
use chrono::NaiveDateTime;
use diesel::sql_types::Text;
use diesel::{Connection as _, RunQueryDsl as _};
use haier_sync::config::{OutboxJob, SyncKind};
use haier_sync::db::{Backend, DbConnection};
use haier_sync::haier::System;
use haier_sync::orders;
use haier_sync::orders::outbox;
use haier_sync::sync::RunOverrides;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{BenchEnv, BURST, PER_SECOND, QUOTA, SIM_QPS};
use tokio_util::sync::CancellationToken;

/// The longest a phase may wait for its orders to be pushed.
const DEADLINE: Duration = Duration::from_secs(60);

/// The shipped `orders` job: batch 50, poll every second, 10 attempts, 60 s lease.
fn shipped_job() -> anyhow::Result<OutboxJob> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.toml");
    let config = haier_sync::config::load_with_env(&path, std::iter::empty())
        .context("Failed to load the shipped jobs.toml")?;
    config
        .jobs
        .get("orders")
        .and_then(|job| job.as_outbox())
        .cloned()
        .context("the shipped jobs.toml has no `orders` job")
}

fn payload(so_id: &str, code: &str) -> String {
    json!({
        "sourceSystem": "HAIER-SYNC", "shopName": "Bench Shop", "sellerCode": "8800633175",
        "consigneeName": "张三", "consigneeMobile": "13800138000",
        "onlineNo": format!("ON-{so_id}"), "soId": so_id, "totalQty": 1, "totalAmt": 1999.00,
        "createTime": 1764000000000_i64, "province": "北京市", "city": "北京市", "area": "东城区",
        "detailAddress": "东长安街1号", "deliveryInstall": "false",
        "itemList": [{"productCode": code, "itemQty": 1, "retailPrice": 1999.00,
                      "discountAmount": 0, "actualPrice": 1999.00}]
    })
    .to_string()
}

/// The shop's INSERT: the minimal columns, everything else by default.
fn insert_order(conn: &mut DbConnection, so_id: &str, code: &str) -> diesel::QueryResult<()> {
    let sql = match conn {
        DbConnection::Pg(_) => {
            "INSERT INTO haier_order_outbox (so_id, online_no, payload) VALUES ($1, $2, $3)"
        }
        DbConnection::Sqlite(_) => {
            "INSERT INTO haier_order_outbox (so_id, online_no, payload) VALUES (?, ?, ?)"
        }
    };
    diesel::sql_query(sql)
        .bind::<Text, _>(so_id)
        .bind::<Text, _>(format!("ON-{so_id}"))
        .bind::<Text, _>(payload(so_id, code))
        .execute(conn)?;
    Ok(())
}

fn now_utc() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn millis(from: NaiveDateTime, to: NaiveDateTime) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Waits until every row whose `so_id` starts with `prefix` is pushed; returns their `pushed_at`
/// by `so_id`. Fails after [`DEADLINE`] or when one ends in another status.
async fn wait_for_pushes(
    env: &BenchEnv,
    prefix: &str,
    n: usize,
) -> anyhow::Result<HashMap<String, NaiveDateTime>> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let prefix = prefix.to_owned();
        let rows = env
            .ctx
            .db
            .run(move |conn| {
                let rows = outbox::list_orders(conn, None, 1_000_000)?;
                Ok(rows
                    .into_iter()
                    .filter(|r| r.so_id.starts_with(&prefix))
                    .collect::<Vec<_>>())
            })
            .await?;
        if let Some(stuck) = rows
            .iter()
            .find(|r| !matches!(r.status.as_str(), "pending" | "sending" | "pushed"))
        {
            anyhow::bail!(
                "order {} ended {}: {:?}",
                stuck.so_id,
                stuck.status,
                stuck.last_error
            );
        }
        let pushed: HashMap<String, NaiveDateTime> = rows
            .iter()
            .filter_map(|r| r.pushed_at.map(|at| (r.so_id.clone(), at)))
            .collect();
        if pushed.len() == n {
            return Ok(pushed);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {n} orders pushed after {} s",
            pushed.len(),
            DEADLINE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Orders one at a time, `gap` apart: insert → pushed latency.
async fn latency(
    env: &BenchEnv,
    job: &OutboxJob,
    code: &str,
    orders: usize,
    gap: Duration,
) -> anyhow::Result<()> {
    let mut inserted: HashMap<String, NaiveDateTime> = HashMap::with_capacity(orders);
    for i in 0..orders {
        let so_id = format!("LAT-{i:05}");
        inserted.insert(so_id.clone(), now_utc());
        let code = code.to_owned();
        env.ctx
            .db
            .run(move |conn| Ok(insert_order(conn, &so_id, &code)?))
            .await?;
        tokio::time::sleep(gap).await;
    }
    let pushed = wait_for_pushes(env, "LAT-", orders).await?;
    let mut latencies: Vec<f64> = pushed
        .iter()
        .map(|(so_id, at)| millis(inserted[so_id], *at))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let wake = match env.backend() {
        Backend::Postgres => "LISTEN/NOTIFY".to_owned(),
        Backend::Sqlite => format!("poll every {} ms", job.poll_interval_ms),
    };
    println!(
        "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        env.backend(),
        orders,
        gap.as_millis(),
        wake,
        latencies[0],
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies[latencies.len() - 1]
    );
    Ok(())
}

/// `orders` orders in one transaction: time to the last push and the request rate.
async fn burst(env: &BenchEnv, job: &OutboxJob, codes: &[String], orders: usize) -> anyhow::Result<()> {
    let before = env.sim.stats();
    let started = now_utc();
    let codes = codes.to_vec();
    env.ctx
        .db
        .run(move |conn| {
            conn.transaction(|conn| {
                for i in 0..orders {
                    insert_order(conn, &format!("BURST-{i:05}"), &codes[i % codes.len()])?;
                }
                diesel::QueryResult::Ok(())
            })?;
            Ok(())
        })
        .await?;
    let committed = now_utc();
    let pushed = wait_for_pushes(env, "BURST-", orders).await?;
    let after = env.sim.stats();
    let first = pushed.values().min().copied().unwrap_or(committed);
    let last = pushed.values().max().copied().unwrap_or(committed);
    let seconds = millis(started, last) / 1000.0;
    let requests = support::requests(&after) - support::requests(&before);
    let rate = requests as f64 / seconds;
    let span = millis(first, last) / 1000.0;
    let pushing_rate = (orders.saturating_sub(1)) as f64 / span;
    println!(
        "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.2} | {:.1} | {:.2} | {} |",
        env.backend(),
        orders,
        job.batch_size,
        job.concurrency.unwrap_or(job.batch_size as usize),
        millis(started, committed) / 1000.0,
        millis(committed, first) / 1000.0,
        seconds,
        requests,
        rate,
        rate / f64::from(env.quota.per_second),
        pushing_rate,
        pushing_rate / f64::from(env.quota.per_second),
        after.throttled - before.throttled
    );
    Ok(())
}

/// Both phases on one backend, the poller running throughout.
async fn run_backend(
    backend: Backend,
    job: &OutboxJob,
    sizes: (usize, Duration, usize),
) -> anyhow::Result<()> {
    let (orders, gap, burst_orders) = sizes;
    let env = BenchEnv::start(backend, 50, QUOTA).await?;
    env.run(env.job(SyncKind::Products), RunOverrides::default())
        .await?;
    // The token lives for hours in the daemon: log in first so that no order waits for it.
    env.ctx.client.login(System::Ylh).await?;
    let codes = env.codes_for_sale();
    let cancel = CancellationToken::new();
    let poller = tokio::spawn(orders::poller::run_until_stopped(
        env.ctx.clone(),
        job.clone(),
        cancel.clone(),
    ));
    // Let it find the outbox empty, go idle and (PostgreSQL) start listening.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = async {
        println!("latency: {orders} orders, one every {} ms", gap.as_millis());
        println!("| backend | orders | gap ms | wake-up | min ms | median ms | p95 ms | max ms |");
        println!("|---|---:|---:|---|---:|---:|---:|---:|");
        latency(&env, job, &codes[0], orders, gap).await?;
        println!("burst: {burst_orders} orders in one transaction");
        println!(
            "| backend | orders | batch | in flight | insert s | commit → first push s | insert → last push s | \
             requests | req/s | ÷ per_second | pushes/s while pushing | ÷ per_second | 429s |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        burst(&env, job, &codes, burst_orders).await
    }
    .await;
    cancel.cancel();
    poller.await??;
    env.sim.shutdown().await;
    result
}

fn main() -> anyhow::Result<()> {
    let orders = support::env_number("ORDER_LATENCY_ORDERS", 200).max(1);
    let gap = Duration::from_millis(support::env_number("ORDER_LATENCY_GAP_MS", 50) as u64);
    let burst_orders = support::env_number("ORDER_BURST_ORDERS", 1000).max(2);
    let job = shipped_job()?;
    println!(
        "order outbox against the simulator (quota {SIM_QPS}/s); client rate_limit = {{ per_second = \
         {PER_SECOND}, burst = {BURST} }}; the shipped `orders` job: batch {}, poll every {} ms",
        job.batch_size, job.poll_interval_ms
    );
    support::runtime()?.block_on(async {
        for backend in support::backends() {
            run_backend(backend, &job, (orders, gap, burst_orders)).await?;
        }
        anyhow::Ok(())
    })
}

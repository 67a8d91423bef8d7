//! Whole-system benchmark of the order outbox's latency: with the poller loop running idle
//! (LISTEN/NOTIFY on PostgreSQL, the poll interval on SQLite), orders are inserted one at a time
//! by plain SQL, as a shop does, and the time from the insert to the push Haier acknowledged is
//! read from the row (`pushed_at - created_at`, both written by the database clock).
//! Prints the median, p90 and max. The done-when: under 200 ms at the median on PostgreSQL.
//!
//! `HAIER_SYNC_TEST_BACKEND=postgres cargo bench --bench order_latency`
//! (orders: `ORDER_LATENCY_ORDERS`, default 200; gap between inserts: `ORDER_LATENCY_GAP_MS`, default 50).

use diesel::sql_types::Text;
use diesel::RunQueryDsl;
use haier_sync::config::{BreakerPolicy, HaierConfig, JobConfig, RateLimit, RetryPolicy, YlhConfig};
use haier_sync::db::testing::TestDb;
use haier_sync::db::{outbox, DbConnection};
use haier_sync::haier::{HaierClient, System};
use haier_sync::simulator::{SimCredentials, SimOptions, Simulator};
use serde_json::json;
use std::time::{Duration, Instant};
use url::Url;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn configs(base: &str, creds: &SimCredentials) -> (HaierConfig, YlhConfig) {
    let base = Url::parse(base).expect("the simulator's URL parses");
    let rate_limit = RateLimit {
        per_second: 100,
        burst: 10,
    };
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
        token_url: base.join("/oauth2/auth").expect("a token URL"),
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

/// The shipped `orders` job: batch 50, poll every second, 10 attempts, 60 s lease.
fn shipped_job() -> JobConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.toml");
    let config =
        haier_sync::config::load_with_env(&path, std::iter::empty()).expect("the shipped jobs.toml loads");
    config.jobs["orders"].clone()
}

fn order(so_id: &str, code: &str) -> serde_json::Value {
    json!({
        "sourceSystem": "HAIER-SYNC", "shopName": "Bench Shop", "sellerCode": "8800633175",
        "consigneeName": "张三", "consigneeMobile": "13800138000",
        "onlineNo": format!("ON-{so_id}"), "soId": so_id, "totalQty": 1, "totalAmt": 1999.00,
        "createTime": 1764000000000_i64, "province": "北京市", "city": "北京市", "area": "东城区",
        "detailAddress": "东长安街1号", "deliveryInstall": "false",
        "itemList": [{"productCode": code, "itemQty": 1, "retailPrice": 1999.00, "discountAmount": 0, "actualPrice": 1999.00}]
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run() -> anyhow::Result<()> {
    let orders = env_number("ORDER_LATENCY_ORDERS", 200) as usize;
    let gap = Duration::from_millis(env_number("ORDER_LATENCY_GAP_MS", 50));
    let test = TestDb::new().await;
    let creds = SimCredentials::default();
    let sim = Simulator::start(
        "127.0.0.1:0".parse()?,
        SimOptions {
            products: 50,
            ..SimOptions::default()
        },
        creds.clone(),
    )
    .await?;
    let (haier, ylh) = configs(&sim.base_url(), &creds);
    let client = HaierClient::new(&haier, &ylh)?;
    client.login(System::Ylh).await?;
    let code = sim.catalog().products_for_sale()[0].code.clone();
    {
        let code = code.clone();
        test.db
            .run(move |conn| {
                use diesel::prelude::*;
                use haier_sync::db::schema::haier_products::dsl as p;
                let now = haier_sync::db::now_utc();
                diesel::insert_into(p::haier_products)
                    .values((
                        p::product_code.eq(&code),
                        p::model.eq("bench"),
                        p::leaflet_urls.eq("[]"),
                        p::is_sales.eq(true),
                        p::content_hash.eq("x"),
                        p::first_seen_at.eq(now),
                        p::last_seen_at.eq(now),
                        p::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await?;
    }
    let job = shipped_job();
    let cancel = tokio_util::sync::CancellationToken::new();
    let poller = {
        let (db, client, job, cancel) = (test.db.clone(), client.clone(), job.clone(), cancel.clone());
        tokio::spawn(async move {
            haier_sync::orders::poller::poll_until_stopped(&db, &client, &job, cancel).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await; // let it go idle and start listening

    let started = Instant::now();
    for i in 0..orders {
        let so_id = format!("BENCH-{i:05}");
        let payload = order(&so_id, &code).to_string();
        test.db
            .run(move |conn| {
                let sql = match conn {
                    DbConnection::Pg(_) => {
                        "INSERT INTO haier_order_outbox (so_id, online_no, payload) VALUES ($1, $2, $3)"
                    }
                    DbConnection::Sqlite(_) => {
                        "INSERT INTO haier_order_outbox (so_id, online_no, payload) VALUES (?, ?, ?)"
                    }
                };
                diesel::sql_query(sql)
                    .bind::<Text, _>(&so_id)
                    .bind::<Text, _>(format!("ON-{so_id}"))
                    .bind::<Text, _>(&payload)
                    .execute(conn)?;
                Ok(())
            })
            .await?;
        tokio::time::sleep(gap).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = test
            .db
            .run(|conn| Ok(outbox::list_orders(conn, None, 1_000_000)?))
            .await?;
        if rows.iter().all(|r| r.pushed_at.is_some()) {
            break rows;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every order was pushed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cancel.cancel();
    poller.await??;

    let mut latencies: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            r.pushed_at
                .map(|at| (at - r.created_at).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "order_latency on {}: {} orders, one every {} ms, poll interval {} ms (fallback)",
        test.backend(),
        latencies.len(),
        gap.as_millis(),
        job.poll_interval_ms
    );
    println!(
        "insert → pushed: median {:.1} ms, p90 {:.1} ms, max {:.1} ms ({:.1} s in all)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies.last().copied().unwrap_or(0.0),
        started.elapsed().as_secs_f64()
    );
    if test.backend() == haier_sync::db::Backend::Sqlite {
        println!("(SQLite's default created_at has whole seconds: these figures are up to 1 s high)");
    }
    sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

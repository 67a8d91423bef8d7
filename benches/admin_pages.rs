//! The status page on a big database. For each backend: `ADMIN_PAGES_LOG_ROWS` (default 100 000)
//! `haier_sync_logs` rows over five jobs, as many minutes back as their cadences fill (30 days
//! for 100 000: two stock jobs fire every minute, so one job page draws 10 080 runs of its week) and `ADMIN_PAGES_ORDERS` (default 50 000) orders in
//! every outbox state, each with two lines; then the page is served in process on 127.0.0.1 and
//! each page is requested `ADMIN_PAGES_REQUESTS` (default 200) times, one after another, over HTTP
//! with the token. Prints p50, p95 and max per page and p95 over the 50 ms target. A page that
//! answers 404 (a route this build does not have) is left out; any other non-2xx/3xx fails.
//!
//! `cargo bench --bench admin_pages`: SQLite, and PostgreSQL too when it is reachable at
//! `HAIER_SYNC_TEST_PG_URL`; `HAIER_SYNC_TEST_BACKEND=sqlite|postgres` for one backend only.

// The daemon's futures nest deeply; computing their layout needs more than 128 levels.
#![recursion_limit = "256"]

// Only part of the benchmarks' shared support is used here.
#[allow(dead_code)]
mod support;

use anyhow::Context as _;
use chrono::Duration;
use diesel::prelude::*;
use haier_sync::config;
use haier_sync::db::prices::{self, NewPriceChange, PriceRow};
use haier_sync::db::schema::{haier_order_lines, haier_order_outbox};
use haier_sync::db::testing::{TempDir, TestDb};
use haier_sync::db::{Backend, Db, DbConnection};
use haier_sync::orders::outbox;
use haier_sync::runs::log::{self as sync_logs, NewSyncLog};
use haier_sync::runs::{RunStatus, SyncType, Trigger};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Each page's p95 must stay under this.
const TARGET_MS: f64 = 50.0;
const TOKEN: &str = "bench-admin-token";
/// How many days back the seeded orders go.
const DAYS: i64 = 30;
/// Products with a stored price and a history of moves, and moves per product.
const PRICED_PRODUCTS: usize = 1_000;
const MOVES_PER_PRODUCT: usize = 20;
/// Rows per multi-row INSERT (within SQLite's 32 766 bound parameters at 13 columns).
const ROWS_PER_INSERT: usize = 1_000;

/// A seeded job: its name, kind and minutes between runs.
const JOBS: [(&str, SyncType, i64); 5] = [
    ("stock-north", SyncType::Stock, 1),
    ("stock-south", SyncType::Stock, 1),
    ("logistics", SyncType::Logistics, 5),
    ("prices", SyncType::Prices, 15),
    ("products", SyncType::Products, 60),
];

/// The outbox states the seeded orders cycle through.
const STATES: [&str; 7] = [
    "confirmed",
    "out_of_stock",
    "pushed",
    "pending",
    "dead",
    "cancelled",
    "refused",
];

/// The jobs of [`JOBS`] as `jobs.toml` tables, and the page with a token.
fn extra_toml() -> String {
    let mut text = String::new();
    for (name, kind, every) in JOBS {
        let schedule = if every < 60 {
            format!("0 */{every} * * * *")
        } else {
            "0 0 * * * *".to_owned()
        };
        text.push_str(&format!(
            "\n[jobs.{name}]\nkind = \"{kind}\"\nschedule = \"{schedule}\"\n"
        ));
    }
    text.push_str(&format!(
        "\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ));
    text
}

/// `rows` sync-log rows, newest first, spread over [`JOBS`] by their cadence, in one transaction.
fn seed_logs(conn: &mut DbConnection, rows: usize) -> anyhow::Result<()> {
    let now = haier_sync::db::now_utc();
    // Runs per minute over all jobs, to share `rows` out by cadence.
    let per_minute: f64 = JOBS.iter().map(|&(_, _, every)| 1.0 / every as f64).sum();
    let minutes = rows as f64 / per_minute;
    let mut planned = Vec::with_capacity(rows);
    for (name, kind, every) in JOBS {
        let runs = (minutes / every as f64).ceil() as i64;
        for i in 0..runs {
            planned.push((name, kind, every, i));
        }
    }
    planned.truncate(rows);
    let messages = [
        None,
        Some("3 items refused: GD0000017 not for sale"),
        Some("auth refused by openplat: 401"),
    ];
    let new_rows: Vec<NewSyncLog<'_>> = planned
        .iter()
        .map(|&(name, kind, every, i)| {
            let started = now - Duration::minutes(every * i + 1);
            let (status, message) = match i % 50 {
                7 => (RunStatus::Failed, messages[2]),
                3 | 23 | 41 => (RunStatus::Partial, messages[1]),
                _ => (RunStatus::Success, messages[0]),
            };
            let took_ms = 2_000 + (i * 7919 % 30_000);
            NewSyncLog {
                job_name: name,
                sync_type: kind,
                status,
                message,
                total_count: 200,
                success_count: if status == RunStatus::Success { 200 } else { 150 },
                failed_count: if status == RunStatus::Success { 0 } else { 50 },
                started_at: started,
                completed_at: Some(started + Duration::milliseconds(took_ms)),
                created_at: started,
                scheduled_for: Some(started),
                trigger: Trigger::Schedule,
                instance: "shop-host:4242",
            }
        })
        .collect();
    conn.transaction(|conn: &mut DbConnection| {
        for chunk in new_rows.chunks(ROWS_PER_INSERT) {
            haier_sync::db_run!(conn, |c| diesel::insert_into(
                haier_sync::db::schema::haier_sync_logs::table
            )
            .values(chunk)
            .execute(c))?;
        }
        diesel::QueryResult::Ok(())
    })?;
    let _ = sync_logs::latest_run(conn, JOBS[0].0)?.context("the seeded rows are there")?;
    Ok(())
}

/// `count` orders (`BENCH-000001` …), cycling through [`STATES`], created over [`DAYS`] days,
/// each with two lines, in one transaction of multi-row INSERTs.
fn seed_orders(conn: &mut DbConnection, count: usize) -> anyhow::Result<()> {
    let now = haier_sync::db::now_utc();
    let step_ms = DAYS * 24 * 3_600_000 / count.max(1) as i64;
    let orders: Vec<_> = (0..count)
        .map(|i| {
            let so_id = format!("BENCH-{i:06}");
            let created = now - Duration::milliseconds(step_ms * (count - i) as i64);
            let state = STATES[i % STATES.len()];
            let payload = serde_json::json!({
                "soId": so_id,
                "items": [{"productCode": "GD0000001", "qty": 1}, {"productCode": "GD0000002", "qty": 2}],
            })
            .to_string();
            let taken = state != "pending" && state != "dead";
            (
                haier_order_outbox::so_id.eq(so_id.clone()),
                haier_order_outbox::online_no.eq(format!("ON-{so_id}")),
                haier_order_outbox::payload.eq(payload),
                haier_order_outbox::status.eq(state),
                haier_order_outbox::attempts.eq(if state == "pending" { 0_i64 } else { 1 }),
                haier_order_outbox::next_attempt_at.eq(created),
                haier_order_outbox::haier_order_no.eq(taken.then(|| format!("SO.{i:08}"))),
                haier_order_outbox::pushed_at.eq(taken.then_some(created)),
                haier_order_outbox::last_error
                    .eq((state == "dead").then_some("product GD0000001 is not for sale")),
                haier_order_outbox::created_at.eq(created),
                haier_order_outbox::updated_at.eq(created),
            )
        })
        .collect();
    let lines: Vec<_> = (0..count)
        .flat_map(|i| {
            let so_id = format!("BENCH-{i:06}");
            [("GD0000001", 1_i64), ("GD0000002", 2)].map(|(code, qty)| {
                (
                    haier_order_lines::so_id.eq(so_id.clone()),
                    haier_order_lines::product_code.eq(code),
                    haier_order_lines::ordered_qty.eq(qty),
                    haier_order_lines::updated_at.eq(now),
                )
            })
        })
        .collect();
    conn.transaction(|conn: &mut DbConnection| {
        for chunk in orders.chunks(ROWS_PER_INSERT) {
            haier_sync::db_run!(conn, |c| diesel::insert_into(haier_order_outbox::table)
                .values(chunk)
                .execute(c))?;
        }
        for chunk in lines.chunks(ROWS_PER_INSERT) {
            haier_sync::db_run!(conn, |c| diesel::insert_into(haier_order_lines::table)
                .values(chunk)
                .execute(c))?;
        }
        diesel::QueryResult::Ok(())
    })?;
    Ok(())
}

/// [`PRICED_PRODUCTS`] stored prices and [`MOVES_PER_PRODUCT`] moves of each over [`DAYS`] days,
/// through the owner of the price tables, in one transaction.
fn seed_prices(conn: &mut DbConnection) -> anyhow::Result<()> {
    let now = haier_sync::db::now_utc();
    let price = |product: usize, step: usize| format!("{}.00", 1_000 + product % 500 + step * 10);
    let stored: Vec<PriceRow> = (0..PRICED_PRODUCTS)
        .map(|p| PriceRow {
            product_code: format!("GD{p:07}"),
            supply_price: Some(price(p, MOVES_PER_PRODUCT)),
            invoice_price: Some(price(p, MOVES_PER_PRODUCT + 1)),
            rebate_rate: None,
            rebate_money: None,
            stock_rebate_policy: None,
            reason: None,
            is_sales: true,
            content_hash: format!("hash-{p}"),
            updated_at: now,
        })
        .collect();
    let moves: Vec<NewPriceChange> = (0..PRICED_PRODUCTS)
        .flat_map(|p| {
            (0..MOVES_PER_PRODUCT).map(move |step| {
                let minutes_back = ((MOVES_PER_PRODUCT - step) as i64 * DAYS * 24 * 60
                    / MOVES_PER_PRODUCT as i64)
                    - p as i64;
                NewPriceChange {
                    product_code: format!("GD{p:07}"),
                    old_supply_price: Some(price(p, step)),
                    new_supply_price: Some(price(p, step + 1)),
                    old_invoice_price: Some(price(p, step + 1)),
                    new_invoice_price: Some(price(p, step + 2)),
                    changed_at: now - Duration::minutes(minutes_back),
                }
            })
        })
        .collect();
    conn.transaction(|conn: &mut DbConnection| {
        for chunk in stored.chunks(ROWS_PER_INSERT) {
            prices::upsert_prices(conn, chunk)?;
        }
        for chunk in moves.chunks(ROWS_PER_INSERT) {
            prices::insert_price_changes(conn, chunk)?;
        }
        diesel::QueryResult::Ok(())
    })?;
    Ok(())
}

/// Times the three reads of the overview (`status` report, health check, outbox by state) on
/// their own, `requests` times each, and prints their p50 and p95.
async fn time_overview_parts(
    backend: Backend,
    db: &Db,
    config: &config::Config,
    requests: usize,
) -> anyhow::Result<()> {
    let mut report = Vec::with_capacity(requests);
    let mut health = Vec::with_capacity(requests);
    let mut by_state = Vec::with_capacity(requests);
    for _ in 0..requests {
        let now = chrono::Utc::now();
        let at = Instant::now();
        haier_sync::cli::status::collect(db, config, now).await?;
        report.push(at.elapsed().as_secs_f64() * 1000.0);
        let at = Instant::now();
        haier_sync::health::check_health(db, config, now).await?;
        health.push(at.elapsed().as_secs_f64() * 1000.0);
        let at = Instant::now();
        db.run(|conn| Ok(outbox::count_by_status(conn)?)).await?;
        by_state.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    for (part, ms) in [
        ("status report (`status::collect`)", &mut report),
        ("health check (`health::check_health`)", &mut health),
        ("outbox by state (`outbox::count_by_status`)", &mut by_state),
    ] {
        ms.sort_by(f64::total_cmp);
        println!(
            "({backend}: overview part {part}: p50 {:.1} ms, p95 {:.1} ms)",
            quantile(ms, 0.50),
            quantile(ms, 0.95)
        );
    }
    Ok(())
}

/// Milliseconds at the `q` quantile of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn bench(backend: Backend, log_rows: usize, orders: usize, requests: usize) -> anyhow::Result<()> {
    let db_handle = TestDb::new_on(backend).await;
    let dir = TempDir::new("haier-sync-bench-admin")?;
    let path = dir.path().join("jobs.toml");
    // Nothing here calls Haier: the base URL is a closed port.
    let text =
        support::config_text("http://127.0.0.1:9", &db_handle.url_text(), support::QUOTA) + &extra_toml();
    std::fs::write(&path, text)?;
    let config = config::load_with_env(&path, Vec::<(String, String)>::new())
        .context("Failed to load the bench config")?;
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    let started = Instant::now();
    db.run(move |conn| {
        seed_logs(conn, log_rows)?;
        seed_orders(conn, orders)?;
        seed_prices(conn)
    })
    .await?;
    if backend == Backend::Postgres {
        db.run(|conn| {
            haier_sync::db_run!(conn, |c| diesel::sql_query("ANALYZE").execute(c))?;
            Ok(())
        })
        .await?;
    }
    println!(
        "({backend}: {log_rows} sync-log rows and {orders} orders seeded in {:.1} s)",
        started.elapsed().as_secs_f64()
    );

    time_overview_parts(backend, &db, &config, requests).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let cancel = CancellationToken::new();
    let server = tokio::spawn(haier_sync::admin::serve(
        db.clone(),
        config.clone(),
        listener,
        cancel.clone(),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let one_order = format!("BENCH-{:06}", orders / 2);
    let pages = [
        ("overview", "/".to_owned()),
        ("job page (10 080 runs a week)", format!("/jobs/{}", JOBS[0].0)),
        ("job page (hourly)", format!("/jobs/{}", JOBS[4].0)),
        ("orders", "/orders".to_owned()),
        ("orders of a state", "/orders?state=pending".to_owned()),
        ("orders search, found", format!("/orders?so_id={one_order}")),
        ("orders search, not found", "/orders?so_id=NOPE-1".to_owned()),
        ("one order", format!("/orders/{one_order}")),
        ("sync log", "/logs".to_owned()),
        ("sync log, 1000 rows", "/logs?limit=1000".to_owned()),
        (
            "sync log, filtered",
            format!("/logs?job={}&status=failed&since=7d&type=stock", JOBS[1].0),
        ),
        ("prices", "/prices".to_owned()),
        (
            "prices of a product",
            format!("/prices/GD{:07}", PRICED_PRODUCTS / 2),
        ),
    ];
    for (label, path) in pages {
        let url = format!("{base}{path}");
        let mut ms = Vec::with_capacity(requests);
        let mut bytes = 0;
        let mut not_found = false;
        for _ in 0..requests {
            let at = Instant::now();
            let response = client.get(&url).bearer_auth(TOKEN).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            ms.push(at.elapsed().as_secs_f64() * 1000.0);
            if status == reqwest::StatusCode::NOT_FOUND {
                not_found = true;
                break;
            }
            anyhow::ensure!(
                status.is_success() || status.is_redirection(),
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            bytes = body.len();
        }
        if not_found {
            println!("| {backend} | {label} (`{path}`) | not served by this build (404) | | | | |");
            continue;
        }
        ms.sort_by(f64::total_cmp);
        let p95 = quantile(&ms, 0.95);
        println!(
            "| {backend} | {label} (`{path}`) | {:.1} | {p95:.1} | {:.1} | {:.2} | {} |",
            quantile(&ms, 0.50),
            ms[ms.len() - 1],
            p95 / TARGET_MS,
            bytes / 1024
        );
    }
    cancel.cancel();
    server.await??;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let log_rows = support::env_number("ADMIN_PAGES_LOG_ROWS", 100_000);
    let orders = support::env_number("ADMIN_PAGES_ORDERS", 50_000);
    let requests = support::env_number("ADMIN_PAGES_REQUESTS", 200).max(1);
    let runtime = support::runtime()?;
    println!("{requests} requests per page, one at a time; target p95 < {TARGET_MS} ms");
    println!("| backend | page | p50 ms | p95 ms | max ms | p95 ÷ 50 ms | KiB |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for backend in support::backends() {
        runtime.block_on(bench(backend, log_rows, orders, requests))?;
    }
    Ok(())
}

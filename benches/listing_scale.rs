//! A large catalog and an idle daemon. For each backend: the products job's full listing of a
//! catalog of `LISTING_SCALE_PRODUCTS` (default 100 000) products, cold (an empty table) and
//! unchanged (the same catalog again), through the real `sync::run_job` against the in-process
//! simulator; then a plain bulk insert of the same rows into the same table of the same
//! database, in the same run, as the yardstick the listing is taken against. Then the peak RSS
//! (`VmHWM`) of `haier-sync run-job products` run as a child process, cold and unchanged. Last,
//! the idle cost of `haier-sync run` with the shipped `jobs.toml` (its SQLite file, or the
//! PostgreSQL test database, simulator URLs) over `LISTING_SCALE_IDLE_SECONDS` (default 60): CPU
//! time from `/proc/<pid>/stat` and RSS, anonymous and file-backed.
//!
//! `cargo bench --bench listing_scale`: SQLite, and PostgreSQL too when it is reachable at
//! `HAIER_SYNC_TEST_PG_URL`; `HAIER_SYNC_TEST_BACKEND=sqlite|postgres` for one backend only.
//! `LISTING_SCALE_IDLE_SECONDS=0` skips the idle measure; `LISTING_SCALE_PRODUCTS=0` skips the
//! listing and its peak RSS (the idle measure only). The child processes run the binary cargo
//! built beside the bench (the `bench` profile, without link-time optimisation, with the tests'
//! `test-support` feature) unless `LISTING_SCALE_DAEMON` names another: the daemon as shipped is
//! `cargo build --release && LISTING_SCALE_DAEMON=target/release/haier-sync cargo bench --bench
//! listing_scale`.

// The daemon's futures nest deeply; computing their layout needs more than 128 levels.
#![recursion_limit = "256"]

mod support;

use anyhow::Context as _;
use chrono::Timelike as _;
use diesel::prelude::*;
use haier_sync::config::SyncKind;
use haier_sync::db::testing::{TempDir, TestDb};
use haier_sync::db::{products, schema::haier_products, Backend, DbConnection};
use haier_sync::sync::RunOverrides;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{BenchEnv, QUOTA};

/// The listing, cold and unchanged, and the bulk insert of the same rows.
async fn listing(backend: Backend, products: usize) -> anyhow::Result<()> {
    let env = BenchEnv::start(backend, products, QUOTA).await?;
    let job = env.job(SyncKind::Products);
    let mut seconds = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let outcome = env.run(job.clone(), RunOverrides::default()).await?;
        seconds.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(outcome.counts.total == products as i64, "{outcome:?}");
    }
    anyhow::ensure!(env.codes_for_sale().len() == products);
    let requests = support::requests(&env.sim.stats());
    anyhow::ensure!(requests <= 4, "{requests} requests for two listings");
    let backend = env.backend();
    let bulk = bulk_insert(&env).await?;
    let rate = |s: f64| products as f64 / s;
    for (label, s) in [("listing, cold", seconds[0]), ("listing, unchanged", seconds[1])] {
        println!(
            "| {backend} | {label} | {products} | {s:.3} | {:.0} | {:.0} | {:.2} |",
            rate(s),
            rate(bulk),
            rate(s) / rate(bulk)
        );
    }
    println!(
        "| {backend} | plain bulk insert | {products} | {bulk:.3} | {:.0} | {:.0} | 1.00 |",
        rate(bulk),
        rate(bulk)
    );
    env.sim.shutdown().await;
    Ok(())
}

/// Seconds to insert the stored rows again with plain multi-row INSERTs (no upsert, no read),
/// in one transaction, into the emptied table.
async fn bulk_insert(env: &BenchEnv) -> anyhow::Result<f64> {
    env.ctx
        .db
        .run(|conn| {
            let rows = products::all(conn)?;
            diesel::delete(haier_products::table).execute(conn)?;
            let started = Instant::now();
            conn.transaction(|conn: &mut DbConnection| {
                for chunk in rows.chunks(products::UPSERT_ROWS_PER_STATEMENT) {
                    haier_sync::db_run!(conn, |c| diesel::insert_into(haier_products::table)
                        .values(chunk)
                        .execute(c))?;
                }
                diesel::QueryResult::Ok(())
            })?;
            Ok(started.elapsed().as_secs_f64())
        })
        .await
}

/// The `haier-sync` binary the child processes run: `LISTING_SCALE_DAEMON`, else the one built
/// beside this bench.
fn daemon_binary() -> std::path::PathBuf {
    match std::env::var_os("LISTING_SCALE_DAEMON") {
        Some(path) => path.into(),
        None => env!("CARGO_BIN_EXE_haier-sync").into(),
    }
}

/// The peak RSS of `run-job products`, cold then unchanged, in a child process.
async fn peak_rss(backend: Backend, products: usize) -> anyhow::Result<()> {
    let env = BenchEnv::start(backend, products, QUOTA).await?;
    let db = TestDb::new_on(backend).await;
    let dir = TempDir::new("haier-sync-bench-rss")?;
    let config = dir.path().join("jobs.toml");
    std::fs::write(
        &config,
        support::config_text(&env.sim.base_url(), &db.url_text(), QUOTA),
    )?;
    for label in ["cold", "unchanged"] {
        let child = Command::new(daemon_binary())
            .arg("-c")
            .arg(&config)
            .args(["run-job", "products"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("Failed to start haier-sync run-job")?;
        let (status, peak_kb, seconds) = tokio::task::spawn_blocking(move || watch_peak(child)).await??;
        anyhow::ensure!(status.success(), "run-job products ended {status}");
        println!(
            "| {backend} | run-job products, {label} | {products} | {seconds:.2} | {:.1} |",
            peak_kb as f64 / 1024.0
        );
    }
    env.sim.shutdown().await;
    Ok(())
}

/// Waits for `child`, reading its `VmHWM` every 2 ms until it exits. Returns its exit status,
/// the last `VmHWM` read (kB) and its wall time.
fn watch_peak(mut child: Child) -> anyhow::Result<(std::process::ExitStatus, u64, f64)> {
    let started = Instant::now();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(kb) = status_field_kb(Path::new(&status_path), "VmHWM:") {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak, started.elapsed().as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_field_kb(path: &Path, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: the fields after it follow the last ')'.
    let after = &text[text.rfind(')').context("no ) in stat")? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// On-CPU nanoseconds of every thread of a process (`/proc/<pid>/task/*/schedstat`): finer than
/// the clock ticks of `stat`.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The daemon with the shipped `jobs.toml` (its SQLite file, or a fresh PostgreSQL database;
/// Haier at the simulator, the callback on a free port), idle for `seconds` in a window where no
/// shipped job fires.
async fn idle(backend: Backend, seconds: u64) -> anyhow::Result<()> {
    let env = BenchEnv::start(Backend::Sqlite, 50, QUOTA).await?;
    anyhow::ensure!(env.quota.per_second == QUOTA.per_second);
    let dir = TempDir::new("haier-sync-bench-idle")?;
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.toml");
    let config = dir.path().join("jobs.toml");
    std::fs::copy(&shipped, &config)?;
    // Kept until the daemon is stopped: dropping it drops the PostgreSQL database.
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestDb::new_on(Backend::Postgres).await),
    };
    let db_url = match &pg {
        None => format!("sqlite://{}", dir.path().join("haier-sync.db").display()),
        Some(db) => db.url_text(),
    };
    let mut child = Command::new(daemon_binary())
        .arg("-c")
        .arg(&config)
        .arg("run")
        .env("HAIER_SYNC_DATABASE__URL", &db_url)
        .env("HAIER_SYNC_HAIER__BASE_URL", env.sim.base_url())
        .env("HAIER_SYNC_YLH__BASE_URL", env.sim.base_url())
        .env("HAIER_SYNC_CALLBACK__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("Failed to start haier-sync run")?;
    let pid = child.id();
    // Settle, then start where no 5-minute boundary (every shipped schedule fires on one) falls
    // within the window.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window = seconds + 5;
    loop {
        let now = chrono::Utc::now();
        let into = u64::from(now.minute() % 5) * 60 + u64::from(now.second());
        if into >= 3 && into + window < 300 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::ensure!(child.try_wait()?.is_none(), "the daemon exited early");
    let (ticks0, ns0) = (cpu_ticks(pid)?, cpu_ns(pid));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (ticks1, ns1) = (cpu_ticks(pid)?, cpu_ns(pid));
    let wall = started.elapsed().as_secs_f64();
    let status = Path::new("/proc").join(pid.to_string()).join("status");
    let rss = status_field_kb(&status, "VmRSS:").unwrap_or(0);
    let anon = status_field_kb(&status, "RssAnon:").unwrap_or(0);
    let file = status_field_kb(&status, "RssFile:").unwrap_or(0);
    let hwm = status_field_kb(&status, "VmHWM:").unwrap_or(0);
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))?.count();
    child.kill()?;
    child.wait()?;
    let by_ticks = (ticks1 - ticks0) as f64 / clock_ticks() / wall * 100.0;
    let by_ns = (ns1 - ns0) as f64 / 1e9 / wall * 100.0;
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "| {backend} | {wall:.0} | {:.0} | {by_ticks:.3} | {by_ns:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {threads} |",
        (ns1 - ns0) as f64 / 1e6,
        mb(rss),
        mb(anon),
        mb(file),
        mb(hwm)
    );
    drop(pg);
    env.sim.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let products = support::env_number("LISTING_SCALE_PRODUCTS", 100_000);
    let idle_seconds = support::env_number("LISTING_SCALE_IDLE_SECONDS", 60) as u64;
    let backends = support::backends();
    println!("Child processes run {}", daemon_binary().display());
    support::runtime()?.block_on(async {
        if products == 0 {
            return idle_all(&backends, idle_seconds).await;
        }
        println!("Full listing of {products} products (sync::run_job, in process) against a plain bulk insert of the same rows");
        println!("| backend | run | products | seconds | products/s | bulk insert rows/s | ÷ bulk insert |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        for &backend in &backends {
            listing(backend, products).await?;
        }
        println!();
        println!("Peak RSS of the products job in its own process");
        println!("| backend | run | products | seconds (process) | VmHWM MB |");
        println!("|---|---|---:|---:|---:|");
        for &backend in &backends {
            peak_rss(backend, products).await?;
        }
        println!();
        idle_all(&backends, idle_seconds).await
    })
}

/// The idle daemon on each backend (nothing when `seconds` is 0).
async fn idle_all(backends: &[Backend], seconds: u64) -> anyhow::Result<()> {
    if seconds == 0 {
        return Ok(());
    }
    println!("Idle daemon, shipped jobs.toml");
    println!("| database | seconds | CPU ms | % of a core (stat ticks) | % of a core (schedstat) | VmRSS MB | anonymous MB | file-backed MB | VmHWM MB | threads |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &backend in backends {
        idle(backend, seconds).await?;
    }
    Ok(())
}

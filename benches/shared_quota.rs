//! Whole-system benchmark of the Haier quota shared through the database (`crate::quota`):
//! three participants (each its own Haier client, database pool and participant name, as three
//! processes would have) send stock calls to a simulator that admits 100/s, with
//! `rate_limit = { per_second = 95, burst = 3 }`. Reports, as ratios to the quota, the stock
//! requests the simulator received per second: one busy participant of three, all three busy,
//! the survivor after a busy participant is killed (from three 200 ms heartbeats on), and three
//! clients that do not share the quota, for comparison. 429s are those the simulator answered.
//!
//! `cargo bench --bench shared_quota` (calls per busy participant: `SHARED_QUOTA_CALLS`, default
//! 300; backends as the other benchmarks choose them).

// The daemon's futures nest deeply; computing their layout needs more than 128 levels.
#![recursion_limit = "256"]

// Only part of the benchmarks' shared support is used here.
#[allow(dead_code)]
mod support;

use futures::StreamExt;
use haier_sync::config::RateLimit;
use haier_sync::db::{Backend, Db};
use haier_sync::haier::{HaierClient, System};
use haier_sync::quota::DbQuota;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{BenchEnv, QUOTA};

/// Calls in flight per participant: far more than the quota needs.
const CONCURRENCY: usize = 32;
/// The heartbeat the "after a kill" row waits three of.
const HEARTBEAT: Duration = Duration::from_millis(200);

struct Participants {
    clients: Vec<HaierClient>,
    codes: Arc<Vec<String>>,
}

/// `n` participants on `env`'s database, sharing its quota when `shared`.
async fn participants(env: &BenchEnv, n: usize, shared: bool) -> anyhow::Result<Participants> {
    let config = &env.ctx.config;
    let rate = RateLimit {
        per_second: QUOTA.per_second,
        burst: QUOTA.burst,
    };
    let mut clients = Vec::new();
    for i in 0..n {
        let client = if shared {
            let db = Db::connect(&config.database).await?;
            let quota = DbQuota::named(db, rate, rate, &format!("bench-host:{i}"));
            HaierClient::with_shared_quota(&config.haier, &config.ylh, Arc::new(quota))?
        } else {
            HaierClient::new(&config.haier, &config.ylh)?
        };
        client.login(System::Openplat).await?;
        clients.push(client);
    }
    Ok(Participants {
        clients,
        codes: Arc::new(env.codes_for_sale()),
    })
}

/// `calls` stock calls through `client`, [`CONCURRENCY`] at a time.
fn busy(client: HaierClient, codes: Arc<Vec<String>>, calls: usize) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        futures::stream::iter((0..calls).map(|i| {
            let client = client.clone();
            let code = codes[i % codes.len()].clone();
            async move {
                let _ = client.query_stock(&code, "110101").await;
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .for_each(|_| std::future::ready(()))
        .await;
    })
}

fn stock(env: &BenchEnv) -> u64 {
    env.sim.stats().requests.stock
}

/// Stock requests per second the simulator received from `since`, as a ratio to the quota.
fn ratio(env: &BenchEnv, from: u64, since: Instant) -> f64 {
    let per_second = (stock(env) - from) as f64 / since.elapsed().as_secs_f64();
    per_second / f64::from(QUOTA.per_second)
}

/// Runs `busy` participants of `all` to the end; the ratio they reached together.
async fn all_busy(
    backend: Backend,
    all: usize,
    busy_n: usize,
    calls: usize,
    shared: bool,
) -> anyhow::Result<(f64, u64)> {
    let env = BenchEnv::start(backend, 200, QUOTA).await?;
    let p = participants(&env, all, shared).await?;
    let from = stock(&env);
    let started = Instant::now();
    let tasks: Vec<_> = p.clients[..busy_n]
        .iter()
        .map(|c| busy(c.clone(), Arc::clone(&p.codes), calls))
        .collect();
    for task in tasks {
        task.await?;
    }
    Ok((ratio(&env, from, started), env.sim.stats().throttled))
}

/// Two busy participants; one is killed (its calls dropped mid-way, as `kill -9` would); the
/// ratio the survivor reaches from three heartbeats after the kill.
async fn after_kill(backend: Backend, calls: usize) -> anyhow::Result<(f64, u64)> {
    let env = BenchEnv::start(backend, 200, QUOTA).await?;
    let p = participants(&env, 3, true).await?;
    let survivor = busy(p.clients[0].clone(), Arc::clone(&p.codes), 4 * calls);
    let victim = busy(p.clients[1].clone(), Arc::clone(&p.codes), 4 * calls);
    let from = stock(&env);
    while stock(&env) < from + calls as u64 / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    victim.abort();
    tokio::time::sleep(3 * HEARTBEAT).await;
    let from = stock(&env);
    let measured = Instant::now();
    while stock(&env) < from + calls as u64 / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after = ratio(&env, from, measured);
    survivor.abort();
    Ok((after, env.sim.stats().throttled))
}

fn main() -> anyhow::Result<()> {
    let calls = support::env_number("SHARED_QUOTA_CALLS", 300);
    let runtime = support::runtime()?;
    println!(
        "stock requests the simulator received (quota {}/s, burst {}; simulator admits {}/s), as a ratio to the quota",
        QUOTA.per_second, QUOTA.burst, support::SIM_QPS
    );
    println!("{:>9} {:<52} {:>7} {:>6}", "backend", "case", "ratio", "429s");
    runtime.block_on(async {
        for backend in support::backends() {
            let rows = [
                (
                    "one busy participant of three, shared quota",
                    all_busy(backend, 3, 1, 2 * calls, true).await?,
                ),
                (
                    "three busy participants, shared quota",
                    all_busy(backend, 3, 3, calls, true).await?,
                ),
                (
                    "survivor after a busy participant is killed",
                    after_kill(backend, calls).await?,
                ),
                (
                    "three busy clients, each with its own quota",
                    all_busy(backend, 3, 3, calls, false).await?,
                ),
            ];
            for (case, (ratio, throttled)) in rows {
                println!(
                    "{:>9} {case:<52} {ratio:>7.3} {throttled:>6}",
                    backend.to_string()
                );
            }
        }
        anyhow::Ok(())
    })
}

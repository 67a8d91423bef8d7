//! End to end, with real processes: each test spawns the `haier-sync` binary (`run -c jobs.toml`)
//! against an in-process simulator and the suite's database, then signals or `kill -9`s it as
//! systemd or an operator would, and checks what a user would: rows in `haier_sync_logs` and
//! `haier_order_outbox`, what the simulator received, the exit status and the daemon's output.
//! Every wait is a poll against a deadline; a guard kills the daemon on every path and prints
//! its output when a test fails.

use crate::daemon::support::{finished_row, rows as job_rows, this_host};
use crate::support_orders::{order_json, status_counts};
use diesel::prelude::*;
use haier_sync::db::schema::haier_products;
use haier_sync::db::testing::TestDb;
use haier_sync::db::{now_utc, Db};
use haier_sync::runs::{RunStatus, SyncLog, Trigger};
use haier_sync::scheduler::daemon::CANCEL_WAIT;
use haier_sync::simulator::{Faults, SimCredentials, SimHandle, SimOptions, Simulator};
use std::fmt::Debug;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `haier-sync run` process (one at a time, started again after each kill), with its config
/// and the output of every start in a temporary folder. Dropping it kills a running process;
/// dropping it during a panic prints what every start wrote.
pub(crate) struct DaemonProcess {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl DaemonProcess {
    pub(crate) fn new(config_text: &str) -> DaemonProcess {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("jobs.toml");
        let daemon = DaemonProcess {
            dir,
            config,
            child: None,
            starts: 0,
        };
        daemon.write_config(config_text);
        daemon
    }

    /// Replaces `jobs.toml` in one step (a rename), so the daemon never reads half a file.
    fn write_config(&self, text: &str) {
        let staged = self.dir.path().join("jobs.toml.new");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &self.config).unwrap();
    }

    fn output_path(&self, start: usize) -> PathBuf {
        self.dir.path().join(format!("daemon-{start}.log"))
    }

    /// Starts `haier-sync run -c jobs.toml`, its stdout and stderr going to one file per start.
    /// Returns the pid.
    pub(crate) fn start(&mut self) -> u32 {
        assert!(self.child.is_none(), "a daemon is running already");
        self.starts += 1;
        let log = std::fs::File::create(self.output_path(self.starts)).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_haier-sync"));
        command
            .arg("run")
            .arg("-c")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        // Only the test's file configures the daemon.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HAIER_SYNC_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().expect("spawn haier-sync run");
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("a daemon is running").id()
    }

    /// `kill -9`, and reaps the process (so that its pid is gone, as after a real crash).
    pub(crate) fn kill_9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a daemon is running");
        child.kill().unwrap();
        child.wait().unwrap()
    }

    /// Sends a signal (`TERM`, `HUP`) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit by itself, up to `limit`.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut().expect("a daemon is running");
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What every start wrote to stdout and stderr, start by start.
    pub(crate) fn output(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let text = std::fs::read_to_string(self.output_path(n)).unwrap_or_default();
                format!("----- daemon start {n} -----\n{text}")
            })
            .collect()
    }

    /// Waits until the current start's output contains `needle`.
    async fn wait_output(&self, needle: &str, limit: Duration) {
        let deadline = Deadline::new(limit);
        loop {
            let text = std::fs::read_to_string(self.output_path(self.starts)).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            deadline
                .wait(&format!("`{needle}` in the daemon's output"), &())
                .await;
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.output());
        }
    }
}

/// A bound on a wait: [`Deadline::wait`] pauses briefly, or panics with what was awaited and
/// what was last seen once the time is up.
pub(crate) struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    pub(crate) fn new(limit: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    pub(crate) async fn wait(&self, what: &str, last_seen: &impl Debug) {
        assert!(
            Instant::now() < self.at,
            "timed out after {:?} waiting for {what}; last seen: {last_seen:#?}",
            self.limit
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the job's rows until `done` holds for them.
pub(crate) async fn wait_for_rows(
    db: &Db,
    job: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&[SyncLog]) -> bool,
) -> Vec<SyncLog> {
    let deadline = Deadline::new(limit);
    loop {
        let rows = job_rows(db, job).await;
        if done(&rows) {
            return rows;
        }
        deadline.wait(what, &rows).await;
    }
}

/// How a test's `jobs.toml` differs from the shipped one.
pub(crate) struct Setup<'a> {
    /// `[haier]` and `[ylh]` `timeout_ms`.
    pub(crate) timeout_ms: u64,
    /// `[callback] listen` port, which the simulator's callback URL targets.
    pub(crate) callback_port: u16,
    /// The `[daemon]` keys.
    pub(crate) daemon: &'a str,
    /// The `[jobs.*]` tables, in place of the shipped ones.
    pub(crate) jobs: &'a str,
}

/// The shipped `jobs.toml`, pointed at the simulator and the test's database, with a quota and
/// retries the tests do not wait on, and the test's `[daemon]` and jobs.
pub(crate) fn config_text(test: &TestDb, sim: &SimHandle, setup: &Setup<'_>) -> String {
    use toml_edit::{value, DocumentMut, Item, Value};
    let inline = |text: &str| Item::Value(text.parse::<Value>().unwrap());
    let mut doc: DocumentMut = include_str!("../../jobs.toml").parse().unwrap();
    doc["database"]["url"] = value(test.url_text());
    for system in ["haier", "ylh"] {
        doc[system]["base_url"] = value(sim.base_url());
        doc[system]["timeout_ms"] = value(setup.timeout_ms as i64);
        doc[system]["rate_limit"] = inline("{ per_second = 5000, burst = 200 }");
        doc[system]["retry"] = inline("{ max_attempts = 4, backoff_base_ms = 10, backoff_cap_ms = 100 }");
        doc[system]["breaker"] = inline("{ failure_threshold = 100000, cool_down_ms = 100 }");
    }
    doc["callback"]["listen"] = value(format!("127.0.0.1:{}", setup.callback_port));
    doc.remove("jobs").expect("the shipped config has jobs");
    format!("{doc}\n[daemon]\n{}\n\n{}\n", setup.daemon, setup.jobs)
}

/// A port nobody listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn start_simulator(options: SimOptions) -> SimHandle {
    Simulator::start("127.0.0.1:0".parse().unwrap(), options, SimCredentials::default())
        .await
        .expect("start the simulator")
}

/// The first `n` codes the simulator sells, listed in `haier_products` as a products sync would
/// (one transaction).
async fn list_products(db: &Db, sim: &SimHandle, n: usize) -> Vec<String> {
    let codes: Vec<String> = sim
        .catalog()
        .products_for_sale()
        .iter()
        .take(n)
        .map(|p| p.code.clone())
        .collect();
    assert_eq!(codes.len(), n, "the simulator sells too few products");
    let rows = codes.clone();
    db.run(move |conn| {
        conn.transaction(|conn| {
            let now = now_utc();
            for code in &rows {
                diesel::insert_into(haier_products::table)
                    .values((
                        haier_products::product_code.eq(code),
                        haier_products::model.eq(format!("Model {code}")),
                        haier_products::leaflet_urls.eq("[]"),
                        haier_products::is_sales.eq(true),
                        haier_products::content_hash.eq("x"),
                        haier_products::first_seen_at.eq(now),
                        haier_products::last_seen_at.eq(now),
                        haier_products::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            diesel::QueryResult::Ok(())
        })?;
        Ok(())
    })
    .await
    .unwrap();
    codes
}

/// Writes `count` valid orders the way a shop does, plain SQL naming only `so_id`, `online_no`
/// and `payload` (everything else defaults), 100 rows a statement, in one transaction.
async fn insert_orders_by_sql(db: &Db, count: usize, codes: &[String]) {
    let values: Vec<String> = (1..=count)
        .map(|i| {
            let so_id = format!("SO-E2E-{i:05}");
            let code = codes[i % codes.len()].as_str();
            let payload = order_json(&so_id, &[code]).to_string().replace('\'', "''");
            format!("('{so_id}', 'ON-{so_id}', '{payload}')")
        })
        .collect();
    db.run(move |conn| {
        conn.transaction(|conn| {
            for chunk in values.chunks(100) {
                diesel::sql_query(format!(
                    "INSERT INTO haier_order_outbox (so_id, online_no, payload) VALUES {}",
                    chunk.join(", ")
                ))
                .execute(conn)?;
            }
            diesel::QueryResult::Ok(())
        })?;
        Ok(())
    })
    .await
    .unwrap();
}

pub(crate) fn instance_of(pid: u32) -> String {
    format!("{}:{pid}", this_host())
}

/// Issue 7: orders survive `kill -9`. The outbox is filled by SQL, Haier fails 30 % of pushes and
/// leaves 5 % unanswered (past the 500 ms client timeout), and the daemon is killed five times
/// while it pushes and started again each time. In the end every order is confirmed by Haier's
/// callback, none is dead, and Haier holds each order exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_kill_9_five_times_and_each_reaches_haier_exactly_once() {
    const ORDERS: u64 = 1000;
    const KILLS: u64 = 5;
    let test = TestDb::new().await;
    let callback_port = free_port();
    let sim = start_simulator(SimOptions {
        products: 50,
        callback_url: Some(format!("http://127.0.0.1:{callback_port}/haier/callback")),
        // Haier confirms after the lease ran out: an order it took from a push whose reply a
        // kill lost is pushed again by the next daemon (and answered DUPLICATE_SOID) first.
        callback_delay_ms: 3000,
        // Callbacks sent while the daemon is down are tried again soon, and not given up.
        callback_retry_base_ms: 100,
        callback_max_attempts: 30,
        faults: Faults {
            fail_rate: 0.3,
            hang_rate: 0.05,
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await;
    let codes = list_products(&test.db, &sim, 20).await;
    insert_orders_by_sql(&test.db, ORDERS as usize, &codes).await;

    let text = config_text(
        &test,
        &sim,
        &Setup {
            timeout_ms: 500,
            callback_port,
            daemon: "heartbeat_ms = 200\nwatch_config = false",
            jobs: "[jobs.orders]\nkind = \"order_outbox\"\npoll_interval_ms = 100\nbatch_size = 100\n\
                   max_attempts = 100\nlease_ms = 2000",
        },
    );
    let mut daemon = DaemonProcess::new(&text);
    let started = Instant::now();

    // Killed each time Haier has taken another sixth of the orders: mid-push, with rows under lease.
    for kill in 1..=KILLS {
        daemon.start();
        let target = ORDERS * kill / (KILLS + 1);
        let deadline = Deadline::new(Duration::from_secs(30));
        while sim.stats().orders.distinct_so_ids < target {
            deadline
                .wait(
                    &format!("{target} orders at Haier before kill {kill}"),
                    &sim.stats().orders,
                )
                .await;
        }
        let status = daemon.kill_9();
        assert_eq!(status.signal(), Some(9), "kill {kill}: {status:?}");
    }

    daemon.start();
    let deadline = Deadline::new(Duration::from_secs(60));
    loop {
        let counts = status_counts(&test.db).await;
        if counts == [("confirmed".to_owned(), ORDERS as i64)] {
            break;
        }
        assert!(
            !counts.iter().any(|(status, _)| status == "dead"),
            "an order died: {counts:?}"
        );
        deadline.wait("every order confirmed", &counts).await;
    }
    let took = started.elapsed();

    let stats = sim.stats();
    assert_eq!(stats.orders.distinct_so_ids, ORDERS, "{stats:#?}");
    assert_eq!(stats.callbacks.given_up, 0, "{stats:#?}");
    assert!(stats.faults.failed > 0 && stats.faults.hung > 0, "{stats:#?}");

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    // The batches the killed daemons left `running` were closed by the next start.
    let logs = job_rows(&test.db, "orders").await;
    let open: Vec<&SyncLog> = logs.iter().filter(|r| r.status == RunStatus::Running).collect();
    assert!(open.is_empty(), "{open:#?}");
    assert!(
        logs.iter().any(|r| r.status == RunStatus::Interrupted),
        "some batch was cut short by a kill: {logs:#?}"
    );
    eprintln!(
        "{ORDERS} orders confirmed in {took:?} across {KILLS} kills; Haier saw {} pushes ({} duplicates), \
         {} failed and {} hung",
        stats.orders.received, stats.orders.duplicates_rejected, stats.faults.failed, stats.faults.hung
    );
}

/// Issue 10, item 7: after `kill -9` and a restart on the same host, the orders the killed daemon
/// held under lease are pushed at once, not after `lease_ms` (60 s here). Haier hangs every push
/// while the first daemon runs, so it dies with every order `sending`; the restarted one frees
/// those leases (their holder is a dead process of this host) and pushes each order once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_leased_by_a_killed_daemon_are_pushed_at_once_after_a_restart() {
    const ORDERS: usize = 40;
    let test = TestDb::new().await;
    let sim = start_simulator(SimOptions {
        products: 20,
        faults: Faults {
            hang_rate: 1.0,
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await;
    let codes = list_products(&test.db, &sim, 10).await;
    insert_orders_by_sql(&test.db, ORDERS, &codes).await;
    let text = config_text(
        &test,
        &sim,
        &Setup {
            timeout_ms: 120_000,
            callback_port: free_port(),
            daemon: "heartbeat_ms = 200\nwatch_config = false",
            jobs: "[jobs.orders]\nkind = \"order_outbox\"\npoll_interval_ms = 100\nbatch_size = 100\n\
                   lease_ms = 60000",
        },
    );
    let mut daemon = DaemonProcess::new(&text);
    let first = daemon.start();
    let deadline = Deadline::new(Duration::from_secs(30));
    loop {
        let counts = status_counts(&test.db).await;
        if counts == [("sending".to_owned(), ORDERS as i64)] {
            break;
        }
        deadline
            .wait("every order sending under the first daemon's lease", &counts)
            .await;
    }
    let status = daemon.kill_9();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    sim.set_faults(Faults::default()).unwrap();

    daemon.start();
    let restarted = Instant::now();
    let deadline = Deadline::new(Duration::from_secs(10));
    loop {
        let counts = status_counts(&test.db).await;
        if counts == [("pushed".to_owned(), ORDERS as i64)] {
            break;
        }
        deadline
            .wait("every order pushed well before the 60 s lease runs out", &counts)
            .await;
    }
    let took = restarted.elapsed();
    let stats = sim.stats();
    assert_eq!(stats.orders.distinct_so_ids, ORDERS as u64, "{stats:#?}");
    assert_eq!(
        stats.orders.duplicates_rejected, 0,
        "each order reached Haier once: {stats:#?}"
    );
    let rows = crate::support_orders::all_rows(&test.db).await;
    let freed_by = format!("leased by {}:", instance_of(first));
    assert!(
        rows.iter()
            .all(|r| r.attempts == 2 && r.last_error.is_none() && r.pushed_at.is_some()),
        "the lost attempt counted, then one push each: {rows:#?}"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)).await.code(), Some(0));
    assert!(
        daemon.output().contains(&freed_by),
        "the restart says whose leases it freed:\n{}",
        daemon.output()
    );
    eprintln!("{ORDERS} orders leased by a killed daemon pushed {took:?} after the restart");
}

/// Counties for the stock tests: 500 products × 2 counties = 1000 stock calls a run.
const COUNTIES: &str = "county_codes = [\"110101\", \"310101\"]";
const STOCK_PRODUCTS: usize = 500;

/// A simulator slow enough (40 ms a call, 4 calls at once) that a stock run of 1000 calls takes
/// about 10 s, and a database listing its products.
async fn slow_stock_env(test: &TestDb) -> SimHandle {
    let sim = start_simulator(SimOptions {
        products: 600,
        faults: Faults {
            latency_ms: 40,
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await;
    list_products(&test.db, &sim, STOCK_PRODUCTS).await;
    sim
}

fn is_running_with_progress(row: &SyncLog) -> bool {
    row.status == RunStatus::Running && row.success_count > 0
}

/// Issue 6: SIGTERM mid-sync. A stock tick fires (a real cron trigger, a few seconds after the
/// start) and runs against a slow Haier; once its row shows progress the daemon gets SIGTERM.
/// It exits 0 within `shutdown_grace_ms` plus the documented cancel wait, and the row reads
/// `interrupted` with the counts it reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_sync_exits_0_and_leaves_the_run_interrupted_with_partial_counts() {
    use chrono::Timelike as _;
    const GRACE_MS: u64 = 1000;
    let test = TestDb::new().await;
    let sim = slow_stock_env(&test).await;
    // Once a day, at a second a little ahead: one tick while the test runs.
    let fire = chrono::Utc::now().with_nanosecond(0).unwrap() + chrono::Duration::seconds(3);
    let jobs = format!(
        "[jobs.stock]\nkind = \"stock\"\nschedule = \"{} {} {} * * *\"\ntimezone = \"UTC\"\n\
         concurrency = 4\n{COUNTIES}",
        fire.second(),
        fire.minute(),
        fire.hour()
    );
    let text = config_text(
        &test,
        &sim,
        &Setup {
            timeout_ms: 5000,
            callback_port: free_port(),
            daemon: &format!("heartbeat_ms = 200\nshutdown_grace_ms = {GRACE_MS}"),
            jobs: &jobs,
        },
    );
    let mut daemon = DaemonProcess::new(&text);
    let pid = daemon.start();

    let rows = wait_for_rows(
        &test.db,
        "stock",
        "the tick's run to show progress",
        Duration::from_secs(20),
        |rows| rows.iter().any(is_running_with_progress),
    )
    .await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].scheduled_for, Some(fire.naive_utc()));
    assert_eq!(rows[0].trigger, Trigger::Schedule);

    // `status` sees the running daemon and its Haier client's counters (from its heartbeat).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_haier-sync"))
            .args(["status", "--json", "-c"])
            .arg(&daemon.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["daemon"]["running"], true, "{report}");
        let stock_calls = report["daemon"]["client"][instance_of(pid)]["operations"]["stock"]["calls"]
            .as_u64()
            .unwrap_or(0);
        if stock_calls > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed the daemon's stock calls: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let signalled = Instant::now();
    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_millis(GRACE_MS) + CANCEL_WAIT + Duration::from_secs(5))
        .await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        took < Duration::from_millis(GRACE_MS) + CANCEL_WAIT,
        "exited {took:?} after SIGTERM"
    );

    let rows = job_rows(&test.db, "stock").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let row = &rows[0];
    assert_eq!(row.status, RunStatus::Interrupted, "{row:#?}");
    assert_eq!(row.total_count, 2 * STOCK_PRODUCTS as i64, "{row:#?}");
    assert!(
        0 < row.success_count && row.success_count < row.total_count,
        "partial counts: {row:#?}"
    );
    assert!(row.completed_at.is_some(), "{row:#?}");
    assert_eq!(row.instance, instance_of(pid));
}

/// Issue 6: `kill -9` mid-run, then a restart. The job ran before (its last tick was missed
/// while no daemon ran), so the daemon's start catches it up; that run is killed with progress
/// made. The next start closes the orphan row as `interrupted`, keeping its counts, and catches
/// the tick up again, to the end this time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_restart_closes_the_orphan_and_catches_the_tick_up() {
    let test = TestDb::new().await;
    let sim = slow_stock_env(&test).await;
    let jobs = format!(
        "[jobs.stock]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\ntimezone = \"UTC\"\n\
         concurrency = 4\n{COUNTIES}"
    );
    let text = config_text(
        &test,
        &sim,
        &Setup {
            timeout_ms: 5000,
            callback_port: free_port(),
            daemon: "heartbeat_ms = 200",
            jobs: &jobs,
        },
    );
    // Yesterday's 03:00 UTC ran; today's (the latest) was missed.
    let tick = {
        let now = chrono::Utc::now();
        let today = now.date_naive().and_hms_opt(3, 0, 0).unwrap();
        if today <= now.naive_utc() {
            today
        } else {
            today - chrono::Duration::days(1)
        }
    };
    finished_row(
        &test.db,
        "stock",
        tick - chrono::Duration::days(1),
        RunStatus::Success,
    )
    .await;

    let mut daemon = DaemonProcess::new(&text);
    let first = daemon.start();
    let rows = wait_for_rows(
        &test.db,
        "stock",
        "the catch-up run to show progress",
        Duration::from_secs(20),
        |rows| rows.iter().any(is_running_with_progress),
    )
    .await;
    let orphan = rows.iter().find(|r| is_running_with_progress(r)).unwrap();
    assert_eq!(
        (orphan.trigger.as_str(), orphan.scheduled_for),
        ("catch_up", Some(tick))
    );
    assert_eq!(orphan.instance, instance_of(first));
    let orphan_id = orphan.id;
    let status = daemon.kill_9();
    assert_eq!(status.signal(), Some(9));
    // The killed run's row stays `running` until a daemon starts again.
    let after_kill = job_rows(&test.db, "stock").await;
    let reached = after_kill.iter().find(|r| r.id == orphan_id).unwrap().clone();
    assert_eq!(reached.status, RunStatus::Running);

    // Haier is quick again, so the run after the restart finishes.
    sim.set_faults(Faults::default()).unwrap();
    let second = daemon.start();
    let rows = wait_for_rows(
        &test.db,
        "stock",
        "the orphan closed and the catch-up run finished",
        Duration::from_secs(20),
        |rows| {
            rows.iter()
                .any(|r| r.instance == instance_of(second) && r.status == RunStatus::Success)
        },
    )
    .await;
    let orphan = rows.iter().find(|r| r.id == orphan_id).unwrap();
    assert_eq!(orphan.status, RunStatus::Interrupted, "{orphan:#?}");
    assert_eq!(
        (orphan.total_count, orphan.success_count),
        (reached.total_count, reached.success_count),
        "the counts it reached are kept"
    );
    assert_eq!(
        orphan.failed_count,
        orphan.total_count - orphan.success_count,
        "what it did not reach counts as failed: {orphan:#?}"
    );
    assert!(
        orphan.message.as_deref().unwrap_or_default().contains("kill -9"),
        "{orphan:#?}"
    );
    let rerun = rows.iter().find(|r| r.instance == instance_of(second)).unwrap();
    assert_eq!(
        (rerun.trigger.as_str(), rerun.scheduled_for),
        ("catch_up", Some(tick))
    );
    let total = 2 * STOCK_PRODUCTS as i64;
    assert_eq!(
        (rerun.total_count, rerun.success_count, rerun.failed_count),
        (total, total, 0)
    );
    assert_eq!(rows.len(), 3, "history, orphan, re-run: {rows:#?}");

    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

fn second_of(row: &SyncLog) -> u32 {
    use chrono::Timelike as _;
    row.scheduled_for.unwrap().second()
}

/// One row per tick `step` seconds apart, each scheduled and `success`
/// (the newest may still be `running`).
fn assert_one_row_per_tick(rows: &[SyncLog], step: i64) {
    for pair in rows.windows(2) {
        let gap = pair[1].scheduled_for.unwrap() - pair[0].scheduled_for.unwrap();
        assert_eq!(gap.num_seconds(), step, "{rows:#?}");
    }
    for (i, row) in rows.iter().enumerate() {
        let newest = i + 1 == rows.len();
        assert_eq!(row.trigger, Trigger::Schedule, "{row:#?}");
        assert!(
            row.status == RunStatus::Success || (newest && row.status == RunStatus::Running),
            "{row:#?}"
        );
    }
}

/// Issue 6: reload by editing the file, seen from outside. `tests/integration/daemon_live.rs`
/// covers the same steps in-process and reads the refusal from `reload()`; here the real
/// binary's file watch applies the edit, and the refusal must show in its output with the file,
/// key and line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_schedule_applies_without_restart_and_an_invalid_one_is_reported_and_ignored() {
    let test = TestDb::new().await;
    let sim = start_simulator(SimOptions {
        products: 10,
        ..SimOptions::default()
    })
    .await;
    let callback_port = free_port();
    // A stock job with no products listed: each tick writes its row and ends at once.
    let every = |cron: &str| {
        config_text(
            &test,
            &sim,
            &Setup {
                timeout_ms: 5000,
                callback_port,
                daemon: "heartbeat_ms = 200",
                jobs: &format!("[jobs.tick]\nkind = \"stock\"\nschedule = \"{cron}\"\n"),
            },
        )
    };
    let mut daemon = DaemonProcess::new(&every("*/2 * * * * *"));
    daemon.start();
    let limit = Duration::from_secs(15);

    let rows = wait_for_rows(&test.db, "tick", "two ticks of */2", limit, |r| r.len() >= 2).await;
    assert!(rows.iter().all(|r| second_of(r) % 2 == 0), "{rows:#?}");
    assert_one_row_per_tick(&rows, 2);

    // Every 3 s: the first tick on an odd multiple of 3 proves the new schedule.
    daemon.write_config(&every("*/3 * * * * *"));
    let switched = |rows: &[SyncLog]| {
        rows.iter()
            .position(|r| second_of(r) % 3 == 0 && second_of(r) % 2 == 1)
    };
    let rows = wait_for_rows(&test.db, "tick", "a tick of */3", limit, |rows| {
        switched(rows).is_some_and(|i| rows.len() >= i + 2)
    })
    .await;
    let switch = switched(&rows).unwrap();
    assert_one_row_per_tick(&rows[switch..], 3);
    daemon
        .wait_output(
            "job tick: re-timed from `*/2 * * * * * Asia/Shanghai` to `*/3 * * * * * Asia/Shanghai`",
            limit,
        )
        .await;

    // An invalid cron: refused, reported with file, line and key; */3 keeps running.
    let broken = every("*/3 * * *");
    let line = broken.lines().position(|l| l.contains("\"*/3 * * *\"")).unwrap() + 1;
    daemon.write_config(&broken);
    daemon
        .wait_output(
            &format!(
                "refused, the running schedule is unchanged: {}:{line}: jobs.tick.schedule:",
                daemon.config.display()
            ),
            limit,
        )
        .await;
    let seen = rows.len();
    let rows = wait_for_rows(&test.db, "tick", "two more ticks of */3", limit, |r| {
        r.len() >= seen + 2
    })
    .await;
    assert_one_row_per_tick(&rows[switch..], 3);

    daemon.signal("TERM");
    let status = daemon.wait_exit(limit).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    let output = daemon.output();
    assert_eq!(
        output.lines().filter(|l| l.contains(" ERROR ")).count(),
        1,
        "the refusal is logged once, not at every look at the file"
    );
}

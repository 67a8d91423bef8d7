//! [`spawn_app`]: a fresh database on the suite's backend, a simulator on a free port, the
//! `jobs.toml` written for both, the config loaded from it and the context built on it; and, when
//! asked, the callback receiver and products listed as a products sync would.

use super::config::{render, Targets};
use super::orders::{seed_products, ReceiverHandle};
use haier_sync::config::{self, BreakerPolicy, Config, RateLimit, RetryPolicy, SyncJob};
use haier_sync::context::AppContext;
use haier_sync::db::testing::{TempDir, TestDb};
use haier_sync::db::{Backend, Db};
use haier_sync::simulator::{SimCredentials, SimHandle, SimOptions, Simulator};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One system's client in `[haier]` or `[ylh]`; `None` keeps what the shipped file says.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub timeout_ms: Option<u64>,
    pub rate_limit: Option<RateLimit>,
    pub retry: Option<RetryPolicy>,
    pub breaker: Option<BreakerPolicy>,
}

impl ClientSettings {
    /// A generous quota, and six quick attempts.
    fn quick() -> ClientSettings {
        ClientSettings {
            timeout_ms: None,
            rate_limit: Some(RateLimit {
                per_second: 5000,
                burst: 50,
            }),
            retry: Some(RetryPolicy {
                max_attempts: 6,
                backoff_base_ms: 5,
                backoff_cap_ms: 50,
            }),
            breaker: None,
        }
    }
}

/// Who serves `[callback] listen`, and whether the simulator sends its callbacks there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Callbacks {
    /// Nobody: `listen` is `127.0.0.1:0`, and the simulator calls back only where its own options
    /// say.
    #[default]
    Off,
    /// A receiver served in this process ([`TestApp::receiver`]); the simulator calls it back.
    InProcess,
    /// A free port, for the `haier-sync run` process to serve; the simulator calls it back.
    ToDaemon,
}

/// The `[jobs.orders]` table of the order tests: the shipped settings, polled and batched for a
/// test.
#[derive(Debug, Clone)]
pub struct OrdersJob {
    pub poll_interval_ms: u64,
    pub batch_size: u32,
    pub max_attempts: u32,
    pub lease_ms: u64,
}

impl Default for OrdersJob {
    fn default() -> Self {
        OrdersJob {
            poll_interval_ms: 50,
            batch_size: 100,
            max_attempts: 10,
            lease_ms: 120_000,
        }
    }
}

impl OrdersJob {
    pub fn toml(&self) -> String {
        format!(
            "[jobs.orders]\nkind = \"order_outbox\"\npoll_interval_ms = {}\nbatch_size = {}\n\
             max_attempts = {}\nlease_ms = {}\n",
            self.poll_interval_ms, self.batch_size, self.max_attempts, self.lease_ms
        )
    }
}

/// What a test's app differs in. [`Options::default`] is the sync tests': the simulator's
/// default catalog, quick clients, no jobs, no receiver.
#[derive(Debug, Clone)]
pub struct Options {
    pub sim: SimOptions,
    pub haier: ClientSettings,
    pub ylh: ClientSettings,
    /// Openplat's base URL instead of the simulator's (a proxy in front of it).
    pub openplat_url: Option<String>,
    pub callbacks: Callbacks,
    /// Keys set in the file's tables, as `("database.wait_ms", "500")`; the value is TOML.
    pub settings: Vec<(String, String)>,
    /// Keep the shipped `[jobs.*]` tables (else the file has none but the test's).
    pub shipped_jobs: bool,
    pub orders_job: Option<OrdersJob>,
    /// Tables added at the end of the file (`[daemon]`, `[jobs.*]`).
    pub extra_toml: String,
    /// How many of the products the simulator sells are listed in `haier_products`
    /// ([`TestApp::codes`]).
    pub listed_products: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sim: SimOptions::default(),
            haier: ClientSettings {
                timeout_ms: Some(5000),
                breaker: Some(BreakerPolicy {
                    failure_threshold: 50,
                    cool_down_ms: 1000,
                }),
                ..ClientSettings::quick()
            },
            ylh: ClientSettings::quick(),
            openplat_url: None,
            callbacks: Callbacks::Off,
            settings: Vec::new(),
            shipped_jobs: false,
            orders_job: None,
            extra_toml: String::new(),
            listed_products: 0,
        }
    }
}

impl Options {
    /// The order tests': the receiver in process, 20 products listed, the `orders` job, and a YLH
    /// client that gives up quickly.
    pub fn orders(sim: SimOptions) -> Options {
        let fast = Some(RateLimit {
            per_second: 2_000,
            burst: 200,
        });
        Options {
            sim,
            haier: ClientSettings {
                rate_limit: fast,
                ..ClientSettings::default()
            },
            ylh: ClientSettings {
                // Long enough that a push is never retried only because the machine is busy: a
                // retried push that Haier already took shows up as a duplicate.
                timeout_ms: Some(10_000),
                rate_limit: fast,
                retry: Some(RetryPolicy {
                    max_attempts: 3,
                    backoff_base_ms: 10,
                    backoff_cap_ms: 100,
                }),
                breaker: Some(BreakerPolicy {
                    failure_threshold: 1_000,
                    cool_down_ms: 100,
                }),
            },
            callbacks: Callbacks::InProcess,
            orders_job: Some(OrdersJob::default()),
            listed_products: 20,
            ..Options::default()
        }
    }

    /// The tests of the `haier-sync` process: both clients with `timeout_ms`, a quota and retries
    /// the tests do not wait on, and a breaker that never opens.
    pub fn process(timeout_ms: u64) -> Options {
        let client = ClientSettings {
            timeout_ms: Some(timeout_ms),
            rate_limit: Some(RateLimit {
                per_second: 5000,
                burst: 200,
            }),
            retry: Some(RetryPolicy {
                max_attempts: 4,
                backoff_base_ms: 10,
                backoff_cap_ms: 100,
            }),
            breaker: Some(BreakerPolicy {
                failure_threshold: 100_000,
                cool_down_ms: 100,
            }),
        };
        Options {
            haier: client.clone(),
            ylh: client,
            ..Options::default()
        }
    }

    /// A catalog of `n` products for sale.
    pub fn products(mut self, n: usize) -> Options {
        self.sim.products = n;
        self
    }

    pub fn sim(mut self, sim: SimOptions) -> Options {
        self.sim = sim;
        self
    }

    pub fn extra_toml(mut self, text: impl Into<String>) -> Options {
        self.extra_toml = text.into();
        self
    }

    /// Sets `table.key` to a TOML value.
    pub fn set(mut self, key: &str, value: impl ToString) -> Options {
        self.settings.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn callbacks(mut self, callbacks: Callbacks) -> Options {
        self.callbacks = callbacks;
        self
    }

    pub fn orders_job(mut self, job: OrdersJob) -> Options {
        self.orders_job = Some(job);
        self
    }

    /// Lists the first `n` products the simulator sells in `haier_products`.
    pub fn listed_products(mut self, n: usize) -> Options {
        self.listed_products = n;
        self
    }

    pub fn shipped_jobs(mut self) -> Options {
        self.shipped_jobs = true;
        self
    }

    pub fn openplat_url(mut self, url: impl Into<String>) -> Options {
        self.openplat_url = Some(url.into());
        self
    }

    /// A wrong openplat client secret, to have logins refused.
    pub fn bad_secret(self) -> Options {
        self.set("haier.client_secret", "\"not-the-secret\"")
    }

    pub fn openplat_rate_limit(mut self, per_second: u32, burst: u32) -> Options {
        self.haier.rate_limit = Some(RateLimit { per_second, burst });
        self
    }
}

/// A test's database, simulator, config file, config and context. Dropping it stops the
/// receiver and removes the config folder and the database.
pub struct TestApp {
    pub sim: SimHandle,
    pub ctx: AppContext,
    /// The products listed in `haier_products` ([`Options::listed_products`]).
    pub codes: Vec<String>,
    options: Options,
    callback_listen: String,
    receiver: Option<ReceiverHandle>,
    config_path: PathBuf,
    // Dropped last: the context's connections go first.
    dir: TempDir,
    test_db: TestDb,
}

/// An app with [`Options::default`] and the simulator's default catalog.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let test_db = TestDb::new().await;
    // The receiver's address first, so the simulator knows where to call back.
    let (listener, callback_listen) = match options.callbacks {
        Callbacks::Off => (None, "127.0.0.1:0".to_owned()),
        Callbacks::InProcess => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            (Some(listener), addr)
        }
        Callbacks::ToDaemon => (None, format!("127.0.0.1:{}", free_port())),
    };
    let mut sim_options = options.sim.clone();
    if options.callbacks != Callbacks::Off && sim_options.callback_url.is_none() {
        sim_options.callback_url = Some(format!("http://{callback_listen}/haier/callback"));
    }
    let sim = start_simulator(sim_options).await;
    let dir = TempDir::new("haier-sync-app").expect("create the config folder");
    let config_path = dir.path().join("jobs.toml");
    let codes = for_sale(&sim, options.listed_products);
    let config = {
        let text = render_for(&options, &test_db, &sim, &callback_listen);
        write_atomically(&config_path, &text);
        load(&config_path, &text)
    };
    let ctx = AppContext::connect(config).await.expect("build the context");
    let receiver = listener.map(|listener| ReceiverHandle::serve(ctx.clone(), listener));
    seed_products(&ctx.db, &codes).await;
    TestApp {
        sim,
        ctx,
        codes,
        options,
        callback_listen,
        receiver,
        config_path,
        dir,
        test_db,
    }
}

/// A simulator on a free port of 127.0.0.1, with the demo credentials.
pub async fn start_simulator(options: SimOptions) -> SimHandle {
    Simulator::start("127.0.0.1:0".parse().unwrap(), options, SimCredentials::default())
        .await
        .expect("start the simulator")
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first `n` codes the simulator sells.
fn for_sale(sim: &SimHandle, n: usize) -> Vec<String> {
    let codes: Vec<String> = sim
        .catalog()
        .products_for_sale()
        .iter()
        .take(n)
        .map(|p| p.code.clone())
        .collect();
    assert_eq!(codes.len(), n, "the simulator sells too few products");
    codes
}

fn render_for(options: &Options, test_db: &TestDb, sim: &SimHandle, callback_listen: &str) -> String {
    render(
        options,
        &Targets {
            database_url: &test_db.url_text(),
            simulator_url: &sim.base_url(),
            callback_listen,
        },
    )
}

/// Loads `path` as the daemon would, but with no environment variables.
fn load(path: &Path, text: &str) -> Config {
    config::load_with_env(path, Vec::<(String, String)>::new())
        .unwrap_or_else(|e| panic!("the test config is invalid: {e}\n{text}"))
}

/// Replaces `path` in one step (a rename), so that a daemon never reads half a file.
fn write_atomically(path: &Path, text: &str) {
    static STAGED: AtomicUsize = AtomicUsize::new(0);
    let staged = path.with_extension(format!("toml.{}", STAGED.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

impl TestApp {
    pub fn db(&self) -> &Db {
        &self.ctx.db
    }

    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    pub fn backend(&self) -> Backend {
        self.test_db.backend()
    }

    /// The written `jobs.toml`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The folder of `jobs.toml`, for what else a test writes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The callback receiver ([`Callbacks::InProcess`]).
    pub fn receiver(&self) -> &ReceiverHandle {
        self.receiver
            .as_ref()
            .expect("the app was spawned with Callbacks::InProcess")
    }

    /// The config text for these options changed by `change` (not written, not checked).
    pub fn config_text_with(&self, change: impl FnOnce(&mut Options)) -> String {
        let mut options = self.options.clone();
        change(&mut options);
        render_for(&options, &self.test_db, &self.sim, &self.callback_listen)
    }

    /// The config text with other `[daemon]` and `[jobs.*]` tables.
    pub fn config_text_with_tables(&self, extra_toml: &str) -> String {
        self.config_text_with(|options| options.extra_toml = extra_toml.to_owned())
    }

    /// Replaces `jobs.toml` with `text` in one step.
    pub fn write_config(&self, text: &str) {
        write_atomically(&self.config_path, text);
    }

    /// Changes the options, writes the file again, loads it and builds the context anew (the same
    /// database and simulator: `sim` and `callbacks` apply at the start only; a receiver keeps
    /// the context it started with).
    pub async fn reconfigure(&mut self, change: impl FnOnce(&mut Options)) {
        change(&mut self.options);
        let text = render_for(&self.options, &self.test_db, &self.sim, &self.callback_listen);
        self.write_config(&text);
        let config = load(&self.config_path, &text);
        self.ctx = AppContext::connect(config).await.expect("rebuild the context");
    }

    /// The config for these options changed by `change`, loaded from a file of its own beside
    /// `jobs.toml` (which stays as it is).
    pub fn load_config_with(&self, change: impl FnOnce(&mut Options)) -> Config {
        static N: AtomicUsize = AtomicUsize::new(0);
        let text = self.config_text_with(change);
        let path = self
            .dir()
            .join(format!("variant-{}.toml", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, &text).unwrap();
        load(&path, &text)
    }

    /// One job from a `[jobs.<name>]` table, loaded with this app's config around it.
    pub fn job_from_toml(&self, name: &str, table: &str) -> SyncJob {
        let mut config = self.load_config_with(|options| {
            options.extra_toml = format!("[jobs.{name}]\n{table}");
        });
        config
            .jobs
            .remove(name)
            .expect("the job is in the file")
            .as_sync()
            .expect("a sync job")
            .clone()
    }
}

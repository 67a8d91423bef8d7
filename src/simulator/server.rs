//! Starting and stopping the simulator: its options, the shared state every handler reads, the
//! gate each call passes (count, quota, latency, injected faults, token check), the mutation
//! timer, and the [`SimHandle`] tests hold. The endpoints themselves live in `openplat.rs`,
//! `ylh.rs` and `admin.rs`.

use super::auth::{self, lock, TokenStore};
use super::callbacks::CallbackSender;
use super::catalog::{Catalog, Mutation, MAX_PRODUCTS};
use super::credentials::SimCredentials;
use super::faults::{retry_after_secs, Faults, InjectedFault, QuotaWindow};
use super::orders::{OrderBook, SimOrder};
use super::reply::{self, BizError};
use super::stats::{bump, Counters, Endpoint, SimStats, System};
use super::{admin, after_sale, openplat, ylh};
use anyhow::Context;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a hung call hangs (unless the simulator shuts down first): past any client timeout.
const HANG_FOR: Duration = Duration::from_secs(3600);

/// How the simulator behaves. [`SimOptions::default`] matches the CLI's defaults, except that
/// no callback URL is set (a test opts in).
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Seed of the catalog: the same seed gives the same products, prices and stock.
    pub seed: u64,
    /// Purchasable products.
    pub products: usize,
    /// Lifetime of both systems' tokens.
    pub token_ttl_secs: u64,
    /// When set, a mutation step changes some prices and stock levels this often.
    pub mutate_every_ms: Option<u64>,
    /// Where confirm and cancel callbacks go; `None` sends none.
    pub callback_url: Option<String>,
    /// Time from a push (or cancel) to its callback; also when Haier confirms a pushed order.
    pub callback_delay_ms: u64,
    /// Wait before the second attempt of an unacknowledged callback; doubles each attempt, up to 30 s.
    pub callback_retry_base_ms: u64,
    /// Attempts per callback, the first included.
    pub callback_max_attempts: u32,
    /// Time from confirmation to `DELIVERED` in the logistics records.
    pub delivery_after_ms: u64,
    /// Faults at start; `POST /_sim/faults` and [`SimHandle::set_faults`] change them.
    pub faults: Faults,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            products: 500,
            token_ttl_secs: 3600,
            mutate_every_ms: None,
            callback_url: None,
            callback_delay_ms: 200,
            callback_retry_base_ms: 1000,
            callback_max_attempts: 6,
            delivery_after_ms: 3000,
            faults: Faults::default(),
        }
    }
}

impl SimOptions {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.products <= MAX_PRODUCTS,
            "products must be at most {MAX_PRODUCTS}, not {}",
            self.products
        );
        anyhow::ensure!(self.token_ttl_secs >= 1, "token_ttl_secs must be at least 1");
        anyhow::ensure!(self.mutate_every_ms != Some(0), "mutate_every_ms must be above 0");
        self.faults.validate().map_err(anyhow::Error::msg)?;
        if let Some(url) = &self.callback_url {
            let parsed =
                url::Url::parse(url).with_context(|| format!("callback URL `{url}` is not a URL"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https"),
                "callback URL `{url}` must be http or https"
            );
        }
        Ok(())
    }
}

/// The state every handler shares. Locks are held briefly and never across an await.
pub(crate) struct SimState {
    pub options: SimOptions,
    pub creds: SimCredentials,
    pub catalog: Catalog,
    /// The full product listing reply, encoded once from the catalog (whose products never
    /// change); a test may replace it to stand for a listing Haier changed.
    pub listing: Mutex<Bytes>,
    pub counters: Arc<Counters>,
    /// Shared with the callback sender, which reads the callback faults at each attempt.
    faults: Arc<RwLock<Faults>>,
    quotas: [Mutex<QuotaWindow>; 2],
    pub openplat_tokens: TokenStore,
    pub ylh_tokens: TokenStore,
    pub orders: Mutex<OrderBook>,
    pub callbacks: Arc<CallbackSender>,
    pub shutdown: CancellationToken,
    /// Cancelled by a reset, so callbacks scheduled before it are dropped.
    epoch: Mutex<CancellationToken>,
}

impl SimState {
    pub fn faults(&self) -> Faults {
        *self.faults.read().unwrap_or_else(|p| p.into_inner())
    }

    fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Applies a partial faults update; returns the faults now in force.
    pub fn update_faults(
        &self,
        update: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Faults, String> {
        let mut faults = self.faults.write().unwrap_or_else(|p| p.into_inner());
        faults.apply_update(update)?;
        Ok(*faults)
    }

    /// What a callback about this order puts in `PlatformOrderNo`: the pushed `soId`, or its
    /// `onlineNo` while the `callback_names_online_no` fault is on.
    pub fn callback_order_no(&self, so_id: &str, online_no: Option<&str>) -> String {
        match online_no {
            Some(online_no) if self.faults().callback_names_online_no => online_no.to_owned(),
            _ => so_id.to_owned(),
        }
    }

    /// Writes the order number a callback names (`PlatformOrderNo`) into its `Data`, as
    /// [`Self::callback_order_no`] chooses it.
    pub fn name_callback_order(&self, data: &mut serde_json::Value, so_id: &str, online_no: Option<&str>) {
        if let Some(fields) = data.as_object_mut() {
            fields.insert(
                "PlatformOrderNo".into(),
                serde_json::Value::String(self.callback_order_no(so_id, online_no)),
            );
        }
    }

    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.options.token_ttl_secs)
    }

    pub fn callback_delay(&self) -> Duration {
        Duration::from_millis(self.options.callback_delay_ms)
    }

    pub fn delivery_after(&self) -> Duration {
        Duration::from_millis(self.options.delivery_after_ms)
    }

    /// The token that stops work scheduled now (by a reset or a shutdown).
    pub fn epoch(&self) -> CancellationToken {
        lock(&self.epoch).clone()
    }

    /// What every call passes before its handler runs: it is counted, then throttled past the
    /// quota, delayed by the latency knob, failed or hung (business calls), and its token
    /// checked (business calls). `Err` holds the reply to send instead.
    pub async fn enter(&self, endpoint: Endpoint, headers: &HeaderMap) -> Result<(), Response> {
        self.counters.count_request(endpoint);
        let faults = self.faults();
        let system = endpoint.system();
        let throttled = faults.qps.and_then(|qps| {
            lock(&self.quotas[system as usize])
                .try_admit(Instant::now(), qps)
                .err()
        });
        if faults.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        }
        if let Some(wait) = throttled {
            bump(&self.counters.throttled);
            return Err(reply::too_many_requests(retry_after_secs(wait)));
        }
        if !endpoint.is_business() {
            return Ok(());
        }
        match faults.roll() {
            Some(InjectedFault::Fail(kind)) => {
                bump(&self.counters.faults_failed);
                return Err(reply::injected_failure(kind));
            }
            Some(InjectedFault::Hang) => {
                bump(&self.counters.faults_hung);
                self.hang().await;
                return Err(reply::injected_failure(
                    super::faults::FailKind::TextServiceUnavailable,
                ));
            }
            None => {}
        }
        let now = Instant::now();
        let revoke = faults.revoke_tokens_every_ms;
        let valid = match system {
            System::Openplat => {
                auth::openplat_token(headers).is_some_and(|t| self.openplat_tokens.is_valid(t, now, revoke))
            }
            System::Ylh => auth::ylh_token(headers).is_some_and(|t| self.ylh_tokens.is_valid(t, now, revoke)),
        };
        if valid {
            Ok(())
        } else {
            bump(&self.counters.unauthorized);
            Err(match system {
                System::Openplat => reply::openplat_bad_token(),
                System::Ylh => reply::ylh_bad_token(),
            })
        }
    }

    /// Waits past any client's timeout (until the simulator shuts down).
    pub async fn hang(&self) {
        tokio::select! {
            () = tokio::time::sleep(HANG_FOR) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    /// Turns a handler's outcome into the reply, counting business errors.
    pub fn answer(&self, outcome: Result<Response, BizError>) -> Response {
        outcome.unwrap_or_else(|err| {
            bump(&self.counters.business_errors);
            reply::business_error(&err)
        })
    }

    /// Back to the start state: orders, tokens, quotas, counters, mutations and faults as
    /// started; callbacks not yet sent are dropped.
    pub fn reset(&self) {
        let mut epoch = lock(&self.epoch);
        epoch.cancel();
        *epoch = self.shutdown.child_token();
        drop(epoch);
        *lock(&self.orders) = OrderBook::default();
        let now = Instant::now();
        self.openplat_tokens.revoke_all(now);
        self.ylh_tokens.revoke_all(now);
        for quota in &self.quotas {
            lock(quota).clear();
        }
        self.catalog.reset_mutations();
        *lock(&self.listing) = openplat::encode_listing(&self.catalog);
        self.set_faults(self.options.faults);
        self.counters.reset();
    }

    pub fn mutate(&self) -> Mutation {
        bump(&self.counters.mutations);
        let mutation = self.catalog.mutate();
        tracing::debug!(
            prices = mutation.prices_changed.len(),
            stock = mutation.stock_changed.len(),
            "simulator: mutated prices and stock"
        );
        mutation
    }
}

/// The stateful Haier simulator: both systems on one address.
pub struct Simulator;

impl Simulator {
    /// Binds `listen` (use `127.0.0.1:0` for a free port), builds the catalog and serves both
    /// systems until [`SimHandle::shutdown`] (or the handle is dropped).
    pub async fn start(
        listen: SocketAddr,
        options: SimOptions,
        creds: SimCredentials,
    ) -> anyhow::Result<SimHandle> {
        options
            .validate()
            .context("Failed to start the simulator: bad options")?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("Failed to start the simulator: cannot listen on {listen}"))?;
        let addr = listener
            .local_addr()
            .context("Failed to read the simulator's address")?;
        let counters = Arc::new(Counters::default());
        let faults = Arc::new(RwLock::new(options.faults));
        let callbacks = Arc::new(CallbackSender::new(
            options.callback_url.clone(),
            creds.callback.app_key.clone(),
            creds.callback.secret.clone(),
            Duration::from_millis(options.callback_retry_base_ms),
            options.callback_max_attempts,
            Arc::clone(&counters),
            Arc::clone(&faults),
        )?);
        let catalog = Catalog::generate(options.seed, options.products);
        let listing = openplat::encode_listing(&catalog);
        let shutdown = CancellationToken::new();
        let now = Instant::now();
        let state = Arc::new(SimState {
            faults,
            quotas: Default::default(),
            openplat_tokens: TokenStore::new(now),
            ylh_tokens: TokenStore::new(now),
            orders: Mutex::new(OrderBook::default()),
            epoch: Mutex::new(shutdown.child_token()),
            shutdown: shutdown.clone(),
            options,
            creds,
            catalog,
            listing: Mutex::new(listing),
            counters,
            callbacks,
        });
        let app: Router = Router::new()
            .merge(openplat::routes())
            .merge(ylh::routes())
            .merge(after_sale::routes())
            .merge(admin::routes())
            .with_state(Arc::clone(&state));
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "simulator: server stopped with an error");
            }
        });
        if let Some(every_ms) = state.options.mutate_every_ms {
            tokio::spawn(run_mutations_until_stopped(
                Arc::clone(&state),
                Duration::from_millis(every_ms),
            ));
        }
        tracing::info!(
            %addr,
            seed = state.options.seed,
            products = state.options.products,
            "simulator: serving openplat and YLH"
        );
        Ok(SimHandle {
            addr,
            state,
            server: Some(server),
        })
    }
}

async fn run_mutations_until_stopped(state: Arc<SimState>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => { state.mutate(); }
            () = state.shutdown.cancelled() => return,
        }
    }
}

/// A running simulator. Dropping it stops the simulator too (without waiting).
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    server: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port`: the base URL of both systems.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters, read in-process.
    pub fn stats(&self) -> SimStats {
        self.state.counters.snapshot()
    }

    /// Every accepted order, in the order received.
    pub fn orders(&self) -> Vec<SimOrder> {
        lock(&self.state.orders)
            .all()
            .iter()
            .map(|o| o.to_sim_order())
            .collect()
    }

    /// One accepted order by `soId`.
    pub fn order(&self, so_id: &str) -> Option<SimOrder> {
        lock(&self.state.orders).get(so_id).map(|o| o.to_sim_order())
    }

    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) -> anyhow::Result<()> {
        faults.validate().map_err(anyhow::Error::msg)?;
        self.state.set_faults(faults);
        Ok(())
    }

    /// The catalog, to know what the endpoints will answer (codes, prices, stock totals).
    pub fn catalog(&self) -> &Catalog {
        &self.state.catalog
    }

    pub fn credentials(&self) -> &SimCredentials {
        &self.state.creds
    }

    pub fn options(&self) -> &SimOptions {
        &self.state.options
    }

    /// Makes every token of both systems invalid now (as expiry would).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        self.state.openplat_tokens.revoke_all(now);
        self.state.ylh_tokens.revoke_all(now);
    }

    /// Runs one mutation step now (as `--mutate-every-ms` does on its timer).
    #[cfg(any(test, feature = "test-support"))]
    pub fn mutate_now(&self) -> Mutation {
        self.state.mutate()
    }

    /// Back to the start state (as `POST /_sim/reset`).
    pub fn reset(&self) {
        self.state.reset();
    }

    /// The full listing's reply body as the products call answers it now.
    pub fn listing_body(&self) -> Bytes {
        lock(&self.state.listing).clone()
    }

    /// Replaces the full listing's reply body (a listing Haier changed) until the next
    /// [`reset`](Self::reset). Queries by code still answer from the catalog.
    #[cfg(any(test, feature = "test-support"))]
    pub fn set_listing_body(&self, body: Bytes) {
        *lock(&self.state.listing) = body;
    }

    /// Stops serving, drops pending callbacks and ends hung calls, and waits for the server.
    pub async fn shutdown(mut self) {
        self.state.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

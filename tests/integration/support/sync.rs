//! What the sync tests share: a simulator on a free port, a fresh database on the suite's backend,
//! a config pointing at both, the context built from it, and a proxy that makes Haier refuse
//! chosen codes (the simulator has no such fault).

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use haier_sync::config::{self, Config, JobConfig, JobKind};
use haier_sync::db::sync_logs::{self, SyncLog};
use haier_sync::db::testing::TestDb;
use haier_sync::simulator::{SimCredentials, SimHandle, SimOptions, Simulator};
use haier_sync::sync::{self, AppContext, NoProgress, Progress, RunOutcome, RunOverrides, RunRequest};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A simulator, a database and a context pointing at both.
pub struct SyncEnv {
    pub sim: SimHandle,
    pub ctx: AppContext,
    /// Removes the database when the env is dropped.
    _test_db: TestDb,
}

/// Options for [`SyncEnv::start_with`].
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    pub sim: SimOptions,
    /// Added to the end of the generated jobs.toml (e.g. `[jobs.x]` tables).
    pub extra_toml: String,
    /// Use this base URL for openplat instead of the simulator's (e.g. a proxy in front of it).
    pub openplat_url: Option<String>,
    /// A wrong openplat client secret, to have logins refused.
    pub bad_secret: bool,
    /// Added to the `[database]` table (e.g. `wait_ms = 500`).
    pub database_toml: String,
    /// Openplat's `rate_limit` as `(per_second, burst)` instead of a generous 5000/s.
    pub openplat_rate_limit: Option<(u32, u32)>,
}

impl SyncEnv {
    /// A simulator with `products` purchasable products and defaults otherwise.
    pub async fn start(products: usize) -> SyncEnv {
        Self::start_with(EnvOptions {
            sim: SimOptions {
                products,
                ..SimOptions::default()
            },
            ..EnvOptions::default()
        })
        .await
    }

    pub async fn start_with(options: EnvOptions) -> SyncEnv {
        let sim = Simulator::start(
            "127.0.0.1:0".parse().unwrap(),
            options.sim.clone(),
            SimCredentials::default(),
        )
        .await
        .expect("start the simulator");
        let test_db = TestDb::new().await;
        let openplat = options.openplat_url.clone().unwrap_or_else(|| sim.base_url());
        let text = config_text(&openplat, &sim.base_url(), &test_db.url_text(), &options);
        let config_dir = tempfile::tempdir().unwrap();
        let path = config_dir.path().join("jobs.toml");
        std::fs::write(&path, text).unwrap();
        let config =
            config::load_with_env(&path, Vec::<(String, String)>::new()).expect("load the test config");
        let ctx = AppContext::connect(config).await.expect("build the context");
        SyncEnv {
            sim,
            ctx,
            _test_db: test_db,
        }
    }

    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// The first job of `kind`, or one with defaults.
    pub fn job(&self, kind: JobKind) -> JobConfig {
        sync::job_of_kind(self.config(), kind)
    }

    /// Runs a job of `kind` with `overrides` and no progress display.
    pub async fn run(&self, kind: JobKind, overrides: RunOverrides) -> RunOutcome {
        self.run_job(self.job(kind), overrides).await
    }

    pub async fn run_job(&self, job: JobConfig, overrides: RunOverrides) -> RunOutcome {
        sync::run_job(
            &self.ctx,
            RunRequest::manual(job, overrides),
            CancellationToken::new(),
            Arc::new(NoProgress),
        )
        .await
        .expect("run the job")
    }

    /// The log row of a run.
    pub async fn log(&self, outcome: &RunOutcome) -> SyncLog {
        let id = outcome.log_id.expect("the run has a log row");
        self.ctx
            .db
            .run(move |c| Ok(sync_logs::find(c, id)?))
            .await
            .unwrap()
            .expect("the log row exists")
    }

    /// Runs `f` on a connection.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut haier_sync::db::DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> T {
        self.ctx.db.run(move |c| Ok(f(c)?)).await.unwrap()
    }
}

/// A jobs.toml for the test: the simulator's credentials, a generous quota, quick retries.
pub fn config_text(openplat: &str, ylh: &str, db_url: &str, options: &EnvOptions) -> String {
    let secret = if options.bad_secret {
        "not-the-secret"
    } else {
        "demo-openplat-secret"
    };
    let (per_second, burst) = options.openplat_rate_limit.unwrap_or((5000, 50));
    format!(
        r#"
[database]
url = "{db_url}"
{database}

[haier]
base_url = "{openplat}"
client_id = "demo-openplat-client"
client_secret = "{secret}"
customer_code = "8800633175"
send_to_code = "8800633175"
supplier_code = "1001"
password = "demo-password"
seller_password = "demo-password"
customer_password = "demo-password"
timeout_ms = 5000
rate_limit = {{ per_second = {per_second}, burst = {burst} }}
retry = {{ max_attempts = 6, backoff_base_ms = 5, backoff_cap_ms = 50 }}
breaker = {{ failure_threshold = 50, cool_down_ms = 1000 }}

[ylh]
base_url = "{ylh}"
path_suffix = "-dev"
client_id = "demo-ylh-client"
client_password = "demo-ylh-secret"
username = "demo-user"
password = "demo-user-password"
source_system = "HAIER-SYNC"
shop_name = "Demo Shop"
seller_code = "8800633175"
rate_limit = {{ per_second = 5000, burst = 50 }}
retry = {{ max_attempts = 6, backoff_base_ms = 5, backoff_cap_ms = 50 }}

[callback]
listen = "127.0.0.1:0"
app_key = "demo-app-key"
secret = "demo-callback-secret"

[log]
level = "warn"

[defaults]
county_codes = ["110101"]
{extra}
"#,
        extra = options.extra_toml,
        database = options.database_toml,
    )
}

/// Cancels `cancel` once `after` items are done.
pub struct CancelAfter {
    pub after: u64,
    pub done: AtomicU64,
    pub cancel: CancellationToken,
}

impl Progress for CancelAfter {
    fn set_total(&self, _n: u64) {}
    fn advance(&self, n: u64) {
        if self.done.fetch_add(n, Ordering::SeqCst) + n >= self.after {
            self.cancel.cancel();
        }
    }
    fn message(&self, _text: &str) {}
}

/// A proxy in front of the simulator that answers Haier's business error for any call whose body
/// names one of `refused` (a product code or an order number), and passes everything else on.
pub struct RefusingProxy {
    pub base_url: String,
    stop: CancellationToken,
}

impl Drop for RefusingProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RefusingProxy {
    pub async fn start(upstream: String, refused: Vec<String>) -> RefusingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((upstream, refused, reqwest::Client::new()));
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = Arc::clone(&state);
            async move { forward(&state.0, &state.1, &state.2, uri, headers, body).await }
        });
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(until.cancelled_owned())
                .await;
        });
        RefusingProxy {
            base_url: format!("http://{addr}"),
            stop,
        }
    }
}

async fn forward(
    upstream: &str,
    refused: &[String],
    client: &reqwest::Client,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    if refused.iter().any(|code| text.contains(&format!("\"{code}\""))) {
        let reply = serde_json::json!({
            "success": false, "code": 1, "errCode": "PARAM_MISSING", "infoMsgs": [], "warningMsgs": [],
            "errorMsg": "商品编码无效", "data": null, "error": null,
        });
        return (StatusCode::OK, axum::Json(reply)).into_response();
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = client.post(format!("{upstream}{path}")).body(body);
    for name in ["authorization", "content-type", "system-name"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    match request.send().await {
        Ok(reply) => {
            let status = StatusCode::from_u16(reply.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = reply.headers().get("content-type").cloned();
            let bytes = reply.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            if let Some(ct) = content_type {
                response.headers_mut().insert("content-type", ct);
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

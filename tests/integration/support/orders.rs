//! Helpers for the order tests: seeding `haier_products`, writing outbox rows the way a shop
//! does (plain SQL), reading them back, and building signed callbacks.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use haier_sync::config::{CallbackConfig, Secret};
use haier_sync::db::outbox::{self, OutboxRow};
use haier_sync::db::schema::haier_products;
use haier_sync::db::{now_utc, order_events, Db, DbConnection};
use haier_sync::orders::callback::{beijing_timestamp, sign_fields};
use serde_json::{json, Value};

pub const APP_KEY: &str = "demo-app-key";
pub const SECRET: &str = "demo-callback-secret";

pub fn callback_config() -> CallbackConfig {
    CallbackConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        app_key: APP_KEY.into(),
        secret: Secret::new(SECRET),
        max_body_bytes: 65_536,
        max_clock_skew_secs: 600,
        rejected_per_minute: 6,
        rejected_burst: 20,
    }
}

/// Lists `codes` in `haier_products` as for sale (as a products sync would).
pub async fn seed_products(db: &Db, codes: &[&str]) {
    let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    db.run(move |conn| {
        let now = now_utc();
        for code in &codes {
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
        Ok(())
    })
    .await
    .unwrap();
}

/// A valid order in YLH's push format with one item per code (quantity 1 each).
pub fn order_json(so_id: &str, codes: &[&str]) -> Value {
    let items: Vec<Value> = codes
        .iter()
        .map(|code| {
            json!({"productCode": code, "itemQty": 1, "retailPrice": 1999.00, "discountAmount": 0, "actualPrice": 1999.00})
        })
        .collect();
    json!({
        "sourceSystem": "HAIER-SYNC",
        "shopName": "Demo Shop",
        "sellerCode": "8800633175",
        "consigneeName": "张三",
        "consigneeMobile": "13800138000",
        "onlineNo": format!("ON-{so_id}"),
        "soId": so_id,
        "totalQty": codes.len(),
        "totalAmt": 1999.00 * codes.len() as f64,
        "createTime": 1764000000000_i64,
        "province": "北京市",
        "city": "北京市",
        "area": "东城区",
        "detailAddress": "东长安街1号",
        "deliveryInstall": "false",
        "itemList": items,
    })
}

/// Inserts a row as the shop does: `INSERT INTO haier_order_outbox (so_id, online_no, payload)`.
pub async fn insert_by_sql(db: &Db, so_id: &str, online_no: &str, payload: &Value) {
    let (so_id, online_no, payload) = (so_id.to_owned(), online_no.to_owned(), payload.to_string());
    db.run(move |conn| {
        use diesel::sql_types::Text;
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
            .bind::<Text, _>(online_no)
            .bind::<Text, _>(payload)
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
}

/// Inserts `count` valid orders `SO-00001`… by SQL in one transaction.
pub async fn insert_many_by_sql(db: &Db, prefix: &str, count: usize, codes: &[&str]) -> Vec<String> {
    let ids: Vec<String> = (1..=count).map(|i| format!("{prefix}-{i:05}")).collect();
    let rows: Vec<(String, String, String)> = ids
        .iter()
        .map(|id| (id.clone(), format!("ON-{id}"), order_json(id, codes).to_string()))
        .collect();
    db.run(move |conn| {
        conn.transaction(|conn| {
            for (so_id, online_no, payload) in &rows {
                outbox::insert_order(conn, so_id, online_no, payload)?;
            }
            diesel::QueryResult::Ok(())
        })?;
        Ok(())
    })
    .await
    .unwrap();
    ids
}

pub async fn row(db: &Db, so_id: &str) -> OutboxRow {
    let so_id = so_id.to_owned();
    db.run(move |conn| Ok(outbox::find_by_so_id(conn, &so_id)?))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no outbox row"))
}

pub async fn all_rows(db: &Db) -> Vec<OutboxRow> {
    db.run(|conn| Ok(outbox::list_orders(conn, None, 1_000_000)?))
        .await
        .unwrap()
}

/// Rows per status, as `(status, count)` sorted by status.
pub async fn status_counts(db: &Db) -> Vec<(String, i64)> {
    db.run(|conn| Ok(outbox::count_by_status(conn)?)).await.unwrap()
}

pub async fn events(db: &Db) -> Vec<order_events::OrderEvent> {
    db.run(|conn| Ok(order_events::list_all(conn)?)).await.unwrap()
}

/// Makes every pending row due now (skips the retry backoff without waiting for it).
pub async fn make_all_due(db: &Db) {
    db.run(|conn| {
        use haier_sync::db::schema::haier_order_outbox::dsl;
        diesel::update(dsl::haier_order_outbox.filter(dsl::status.eq("pending")))
            .set(dsl::next_attempt_at.eq(now_utc()))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
}

/// The form fields of a callback, signed with `secret` at `at`.
pub fn signed_form(
    method: &str,
    data: &str,
    at: DateTime<Utc>,
    app_key: &str,
    secret: &str,
) -> Vec<(String, String)> {
    let mut fields = vec![
        ("AppKey".to_owned(), app_key.to_owned()),
        ("TimeStamp".to_owned(), beijing_timestamp(at)),
        ("Method".to_owned(), method.to_owned()),
        ("Data".to_owned(), data.to_owned()),
    ];
    let sign = sign_fields(&fields, secret);
    fields.push(("Sign".to_owned(), sign));
    fields
}

/// Posts a form to the receiver; returns the HTTP status and the JSON reply.
pub async fn post_form(url: &str, fields: &[(String, String)]) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .post(url)
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let body = reply.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// A running callback receiver on a free port.
pub struct ReceiverHandle {
    pub base_url: String,
    pub cancel: tokio_util::sync::CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ReceiverHandle {
    pub fn callback_url(&self) -> String {
        format!("{}/haier/callback", self.base_url)
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts a receiver on 127.0.0.1:0 over `db`, without a Haier client.
pub async fn start_receiver(db: &Db, config: CallbackConfig) -> ReceiverHandle {
    use haier_sync::orders::callback::{build_router, serve_router, Receiver};
    use haier_sync::orders::metrics::MetricsSource;
    let receiver = std::sync::Arc::new(Receiver::new(db.clone(), config, MetricsSource::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(serve_router(build_router(receiver), listener, cancel.clone()));
    ReceiverHandle {
        base_url,
        cancel,
        task,
    }
}

/// Everything an end-to-end order test needs: a fresh database, the simulator (sending its
/// callbacks to the receiver), the shared context with a fast client, the receiver, and the
/// `orders` job of the shipped jobs.toml with test-sized settings.
pub struct OrdersEnv {
    pub test: haier_sync::db::testing::TestDb,
    pub sim: haier_sync::simulator::SimHandle,
    pub ctx: haier_sync::context::AppContext,
    pub receiver: ReceiverHandle,
    pub job: haier_sync::config::JobConfig,
    /// Codes the simulator sells, listed in `haier_products`.
    pub codes: Vec<String>,
}

impl OrdersEnv {
    pub async fn start(options: haier_sync::simulator::SimOptions) -> OrdersEnv {
        Self::start_with(options, |_| {}).await
    }

    /// Starts everything; `adjust` may change the config (client timeouts, retries) first.
    pub async fn start_with(
        mut options: haier_sync::simulator::SimOptions,
        adjust: impl FnOnce(&mut haier_sync::config::Config),
    ) -> OrdersEnv {
        use haier_sync::config::{BreakerPolicy, RateLimit, RetryPolicy};
        use haier_sync::simulator::{SimCredentials, Simulator};
        let test = haier_sync::db::testing::TestDb::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        options.callback_url = Some(format!("{base_url}/haier/callback"));
        let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), options, SimCredentials::default())
            .await
            .unwrap();

        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.toml");
        let env = [
            ("HAIER_SYNC_HAIER__BASE_URL".to_owned(), sim.base_url()),
            ("HAIER_SYNC_YLH__BASE_URL".to_owned(), sim.base_url()),
            ("HAIER_SYNC_DATABASE__URL".to_owned(), test.url_text()),
        ];
        let mut config = haier_sync::config::load_with_env(&shipped, env).unwrap();
        config.database = test.config.clone();
        let fast = RateLimit {
            per_second: 2_000,
            burst: 200,
        };
        config.ylh.rate_limit = fast;
        config.haier.rate_limit = fast;
        config.ylh.timeout_ms = 1_000;
        config.ylh.retry = RetryPolicy {
            max_attempts: 3,
            backoff_base_ms: 10,
            backoff_cap_ms: 100,
        };
        config.ylh.breaker = BreakerPolicy {
            failure_threshold: 1_000,
            cool_down_ms: 100,
        };
        let mut job = config.jobs["orders"].clone();
        job.batch_size = 100;
        job.poll_interval_ms = 50;
        config.jobs.insert("orders".into(), job);
        adjust(&mut config);
        let job = config.jobs["orders"].clone();
        let client = haier_sync::haier::HaierClient::new(&config.haier, &config.ylh).unwrap();
        let ctx = haier_sync::context::AppContext {
            config: std::sync::Arc::new(config),
            db: test.db.clone(),
            client,
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(haier_sync::orders::callback::serve(
            ctx.clone(),
            listener,
            cancel.clone(),
        ));
        let receiver = ReceiverHandle {
            base_url,
            cancel,
            task,
        };

        let codes: Vec<String> = sim
            .catalog()
            .products_for_sale()
            .iter()
            .take(20)
            .map(|p| p.code.clone())
            .collect();
        let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
        seed_products(&test.db, &refs).await;
        OrdersEnv {
            test,
            sim,
            ctx,
            receiver,
            job,
            codes,
        }
    }

    pub fn db(&self) -> &Db {
        &self.test.db
    }

    pub fn code(&self, i: usize) -> &str {
        &self.codes[i % self.codes.len()]
    }

    /// Polls until a poll finds nothing due; returns the polls that did work.
    pub async fn push_all_due(&self) -> Vec<haier_sync::sync::RunCounts> {
        use haier_sync::orders::poller::{try_push_next_batch, PollOutcome};
        let mut worked = Vec::new();
        loop {
            match try_push_next_batch(&self.ctx, &self.job).await.unwrap() {
                PollOutcome::Idle => return worked,
                PollOutcome::Worked { counts } => worked.push(counts),
            }
        }
    }

    /// Waits (up to `limit`) until `done` holds for the outbox rows; panics with the status
    /// counts when it does not.
    pub async fn wait_for_rows(&self, limit: std::time::Duration, done: impl Fn(&[OutboxRow]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let rows = all_rows(self.db()).await;
            if done(&rows) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "outbox not done after {limit:?}: {:?}",
                    status_counts(self.db()).await
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The sync-log rows the order job wrote.
    pub async fn order_logs(&self) -> Vec<haier_sync::db::sync_logs::SyncLog> {
        use haier_sync::db::sync_logs::{self, LogFilter};
        self.db()
            .run(|conn| {
                Ok(sync_logs::list(
                    conn,
                    &LogFilter {
                        sync_type: Some("order".into()),
                        limit: 1_000_000,
                        ..LogFilter::default()
                    },
                )?)
            })
            .await
            .unwrap()
    }
}

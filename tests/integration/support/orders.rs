//! Orders as a shop writes them and Haier answers them: `haier_products` listed as a products
//! sync would, outbox rows inserted by plain SQL, the rows read back, callbacks signed with the
//! simulator's signer, and the callback receiver served in process.

use super::app::TestApp;
use super::wait::wait_for;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use haier_sync::config::OutboxJob;
use haier_sync::context::AppContext;
use haier_sync::db::schema::haier_products;
use haier_sync::db::{now_utc, Db, DbConnection};
use haier_sync::orders::events as order_events;
use haier_sync::orders::outbox::{self, OutboxRow};
use haier_sync::orders::poller::{try_push_next_batch, PollOutcome};
use haier_sync::runs::log::{self as sync_logs, LogFilter, SyncLog};
use haier_sync::runs::RunCounts;
use haier_sync::runs::SyncType;
use haier_sync::simulator::{beijing_timestamp, sign_callback};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The `[callback]` app key and secret of the shipped `jobs.toml` (and the simulator's).
pub const APP_KEY: &str = "demo-app-key";
pub const SECRET: &str = "demo-callback-secret";

/// Lists `codes` in `haier_products` as for sale, as a products sync would (one transaction).
pub async fn seed_products(db: &Db, codes: &[impl AsRef<str>]) {
    let codes: Vec<String> = codes.iter().map(|c| c.as_ref().to_owned()).collect();
    db.run(move |conn| {
        conn.transaction(|conn| {
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
            diesel::QueryResult::Ok(())
        })?;
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

/// `count` valid orders `<prefix>-00001`…, one item each (the app's listed codes in turn),
/// inserted by plain SQL as a shop writes them.
pub async fn insert_shop_orders(app: &TestApp, prefix: &str, count: usize) {
    let rows = (1..=count)
        .map(|i| {
            let so_id = format!("{prefix}-{i:05}");
            let payload = order_json(&so_id, &[app.code(i)]).to_string();
            (so_id.clone(), format!("ON-{so_id}"), payload)
        })
        .collect();
    insert_orders_by_sql(app.db(), rows).await;
}

/// Writes rows `(so_id, online_no, payload)` as a shop does, in one transaction: plain SQL naming
/// only those columns (everything else defaults: `pending`, due now).
pub async fn insert_orders_by_sql(db: &Db, rows: Vec<(String, String, String)>) {
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
        conn.transaction(|conn| {
            for (so_id, online_no, payload) in &rows {
                diesel::sql_query(sql)
                    .bind::<Text, _>(so_id)
                    .bind::<Text, _>(online_no)
                    .bind::<Text, _>(payload)
                    .execute(conn)?;
            }
            diesel::QueryResult::Ok(())
        })?;
        Ok(())
    })
    .await
    .unwrap();
}

/// One row, as the shop writes it.
pub async fn insert_by_sql(db: &Db, so_id: &str, online_no: &str, payload: &Value) {
    insert_orders_by_sql(
        db,
        vec![(so_id.to_owned(), online_no.to_owned(), payload.to_string())],
    )
    .await;
}

/// `count` valid orders `<prefix>-00001`…, each with one item of every code in `codes`, as the
/// shop writes them; returns their `so_id`s.
pub async fn insert_many_by_sql(db: &Db, prefix: &str, count: usize, codes: &[&str]) -> Vec<String> {
    let ids: Vec<String> = (1..=count).map(|i| format!("{prefix}-{i:05}")).collect();
    let rows = ids
        .iter()
        .map(|id| (id.clone(), format!("ON-{id}"), order_json(id, codes).to_string()))
        .collect();
    insert_orders_by_sql(db, rows).await;
    ids
}

pub async fn row(db: &Db, so_id: &str) -> OutboxRow {
    let so_id = so_id.to_owned();
    db.run(move |conn| Ok(outbox::find_by_so_id(conn, &so_id)?))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no outbox row"))
}

/// The order's lines (`haier_order_lines`), in product-code order.
pub async fn order_lines(db: &Db, so_id: &str) -> Vec<haier_sync::orders::lines::OrderLine> {
    let so_id = so_id.to_owned();
    db.run(move |conn| Ok(haier_sync::orders::lines::lines_of(conn, &so_id)?))
        .await
        .unwrap()
}

pub async fn all_rows(db: &Db) -> Vec<OutboxRow> {
    db.run(|conn| Ok(outbox::list_orders(conn, None, 1_000_000)?))
        .await
        .unwrap()
}

/// Rows per status, as `(status, count)` sorted by status.
pub async fn status_counts(db: &Db) -> Vec<(String, i64)> {
    let counts = db.run(|conn| Ok(outbox::count_by_status(conn)?)).await.unwrap();
    counts
        .into_iter()
        .map(|(status, n)| (status.to_string(), n))
        .collect()
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

/// The outbox's rows; shown as their counts per status.
pub struct Outbox(pub Vec<OutboxRow>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for row in &self.0 {
            *counts.entry(row.status.as_str()).or_default() += 1;
        }
        write!(f, "outbox rows per status: {counts:?}")
    }
}

/// The contract's sign, as Haier (the simulator) makes it.
pub fn sim_sign<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)], secret: &str) -> String {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    sign_callback(&fields, secret)
}

/// The form fields of a callback, time-stamped `at` and signed with `secret` by the simulator's
/// signer.
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
    let sign = sim_sign(&fields, secret);
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

/// The callback receiver served in this process.
pub struct ReceiverHandle {
    pub base_url: String,
    cancel: CancellationToken,
}

impl ReceiverHandle {
    /// Serves the daemon's receiver over `ctx` on `listener`.
    pub(super) fn serve(ctx: AppContext, listener: tokio::net::TcpListener) -> ReceiverHandle {
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let cancel = CancellationToken::new();
        tokio::spawn(haier_sync::orders::callback::serve(ctx, listener, cancel.clone()));
        ReceiverHandle { base_url, cancel }
    }

    pub fn callback_url(&self) -> String {
        format!("{}/haier/callback", self.base_url)
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl TestApp {
    /// The `i`-th listed product code (wrapping).
    pub fn code(&self, i: usize) -> &str {
        &self.codes[i % self.codes.len()]
    }

    /// The configured `orders` job.
    pub fn orders_job(&self) -> OutboxJob {
        self.config().jobs["orders"]
            .as_outbox()
            .expect("orders is the outbox job")
            .clone()
    }

    /// Polls until a poll finds nothing due; returns the polls that did work.
    pub async fn push_all_due(&self) -> Vec<RunCounts> {
        let job = self.orders_job();
        let mut worked = Vec::new();
        loop {
            match try_push_next_batch(&self.ctx, &job).await.unwrap() {
                PollOutcome::Idle => return worked,
                PollOutcome::Worked { counts } => worked.push(counts),
            }
        }
    }

    /// Waits (up to `limit`) until `done` holds for the outbox rows.
    pub async fn wait_for_orders(&self, limit: Duration, done: impl Fn(&[OutboxRow]) -> bool) {
        let db = self.db();
        wait_for(
            "the outbox",
            limit,
            || async { Outbox(all_rows(db).await) },
            |outbox| done(&outbox.0),
        )
        .await;
    }

    /// The sync-log rows the order job wrote.
    pub async fn order_logs(&self) -> Vec<SyncLog> {
        self.db()
            .run(|conn| {
                Ok(sync_logs::list(
                    conn,
                    &LogFilter {
                        sync_type: Some(SyncType::Order),
                        limit: 1_000_000,
                        ..LogFilter::default()
                    },
                )?)
            })
            .await
            .unwrap()
    }
}

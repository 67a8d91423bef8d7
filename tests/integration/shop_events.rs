//! The shop hears about every change of an order (`haier_shop_events`): each change is one event,
//! POSTed signed to `[shop] webhook_url` at least once and in order per order, replayable with
//! `events replay`, and announced on PostgreSQL's `haier_order_changes` channel. A small receiver
//! here checks each signature on its own (HMAC-SHA256 over `timestamp.body`) and keeps what came,
//! in arrival order.

use crate::support::{
    all_rows, command, insert_orders_by_sql, order_json, seed_products, spawn_app_with, wait_for, Callbacks,
    Deadline, Options, TestApp,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use haier_sync::config::SyncKind;
use haier_sync::db::Backend;
use haier_sync::orders::reschedule::{reschedule_order, Rescheduled};
use haier_sync::orders::{cancel_order, Cancelled as CancelAnswer, OutboxStatus};
use haier_sync::shop::events::{self as shop_events, ShopEvent};
use haier_sync::shop::{Delivery, ShopState, Webhook};
use haier_sync::simulator::SimOptions;
use haier_sync::sync::RunOverrides;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const WEBHOOK_SECRET: &str = "whsec-test-secret";

/// One POST the receiver took.
#[derive(Debug, Clone)]
struct Receipt {
    event_id: i64,
    so_id: String,
    seq: i64,
    body: Value,
}

#[derive(Default)]
struct ReceiverState {
    /// Taken (answered 200), in arrival order.
    taken: Vec<Receipt>,
    /// POSTs answered 503 while down.
    refused: usize,
    /// POSTs whose signature did not check out (answered 400).
    bad_signatures: Vec<String>,
    down_until: Option<Instant>,
}

/// The shop's webhook, as a shop would write it: checks the signature, then takes the event.
#[derive(Clone)]
struct ShopReceiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
    _stop: Arc<CancellationTokenGuard>,
}

struct CancellationTokenGuard(CancellationToken);

impl Drop for CancellationTokenGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Whether `signature` (`v1=<hex>`) is HMAC-SHA256 of `timestamp.body` with the secret.
fn signature_is_valid(timestamp: &str, body: &str, signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.verify_slice(&expected).is_ok()
}

async fn take(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let mut state = state.lock().unwrap();
    if state.down_until.is_some_and(|until| Instant::now() < until) {
        state.refused += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp = header("haier-sync-timestamp");
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap_or(0);
    if !signature_is_valid(&timestamp, &body, &header("haier-sync-signature")) || age.abs() > 300 {
        state.bad_signatures.push(body);
        return StatusCode::BAD_REQUEST;
    }
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(header("haier-sync-event-id"), event["id"].to_string());
    state.taken.push(Receipt {
        event_id: event["id"].as_i64().unwrap(),
        so_id: event["so_id"].as_str().unwrap().to_owned(),
        seq: event["seq"].as_i64().unwrap(),
        body: event,
    });
    StatusCode::OK
}

impl ShopReceiver {
    async fn start() -> ShopReceiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/shop/events", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/shop/events", post(take))
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
                .unwrap();
        });
        ShopReceiver {
            url,
            state,
            _stop: Arc::new(CancellationTokenGuard(stop)),
        }
    }

    fn down_for(&self, period: Duration) {
        self.state.lock().unwrap().down_until = Some(Instant::now() + period);
    }

    fn taken(&self) -> Vec<Receipt> {
        self.state.lock().unwrap().taken.clone()
    }

    fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    fn bad_signatures(&self) -> Vec<String> {
        self.state.lock().unwrap().bad_signatures.clone()
    }

    /// The `[shop]` table pointing at this receiver, with quick retries (at most `backoff_cap_ms`
    /// apart) that never give up.
    fn toml(&self, backoff_cap_ms: u64) -> String {
        format!(
            "[shop]\nwebhook_url = \"{}\"\nsecret = \"{WEBHOOK_SECRET}\"\nmax_attempts = 1000\n\
             timeout_ms = 2000\nper_second = 5000\nbackoff_base_ms = 50\nbackoff_cap_ms = {backoff_cap_ms}\n\
             poll_interval_ms = 50\nbatch_size = 200\nlease_ms = 3000\n",
            self.url
        )
    }
}

async fn all_events(app: &TestApp) -> Vec<ShopEvent> {
    app.query(shop_events::all_events).await
}

/// `count` orders `<prefix>-0000i` of one unit of `code(i)`, written as a shop does.
async fn insert_orders(
    app: &TestApp,
    prefix: &str,
    count: usize,
    code: impl Fn(usize) -> String,
) -> Vec<String> {
    let rows: Vec<(String, String, String)> = (0..count)
        .map(|i| {
            let so_id = format!("{prefix}-{i:05}");
            let mut payload = order_json(&so_id, &[&code(i)]);
            payload["distributionTime"] = json!("2026-12-20");
            payload["installTime"] = json!("2026-12-21");
            (so_id.clone(), format!("ON-{so_id}"), payload.to_string())
        })
        .collect();
    let so_ids = rows.iter().map(|r| r.0.clone()).collect();
    insert_orders_by_sql(app.db(), rows).await;
    so_ids
}

async fn sim_sends(app: &TestApp, so_id: &str, what: &str, body: Value) {
    let url = format!("{}/_sim/orders/{so_id}/{what}", app.sim.base_url());
    let reply = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert_eq!(reply.status(), 200, "the simulator takes {what} for {so_id}");
}

/// Waits until the outbox rows of `so_ids` satisfy `done`.
async fn wait_orders(
    app: &TestApp,
    what: &str,
    done: impl Fn(&haier_sync::orders::outbox::OutboxRow) -> bool,
) {
    wait_for(
        what,
        Duration::from_secs(20),
        || all_rows(app.db()),
        |rows| rows.iter().all(&done),
    )
    .await;
}

/// Every event of the table reached the receiver, each order's events in `seq` order with no
/// gap, every copy of one event with its id, and no signature failed.
fn assert_received_in_order(events: &[ShopEvent], receiver: &ShopReceiver) {
    assert!(
        receiver.bad_signatures().is_empty(),
        "{:?}",
        receiver.bad_signatures()
    );
    let taken = receiver.taken();
    let mut by_key: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for receipt in &taken {
        let id = *by_key
            .entry((receipt.so_id.clone(), receipt.seq))
            .or_insert(receipt.event_id);
        assert_eq!(
            id, receipt.event_id,
            "a copy of an event carries its id: {receipt:?}"
        );
    }
    let ids: BTreeSet<i64> = taken.iter().map(|r| r.event_id).collect();
    let expected: BTreeSet<i64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, expected, "every event arrived");
    // Per order, in arrival order (copies left out), seq goes 1, 2, 3 …
    let mut highest: BTreeMap<&str, i64> = BTreeMap::new();
    for receipt in &taken {
        let last = highest.entry(&receipt.so_id).or_insert(0);
        if receipt.seq <= *last {
            continue; // a copy of one delivered before
        }
        assert_eq!(
            receipt.seq,
            *last + 1,
            "events of {} arrive in order: {receipt:?}",
            receipt.so_id
        );
        *last = receipt.seq;
    }
    for event in events {
        let body = taken.iter().find(|r| r.event_id == event.id).unwrap();
        assert_eq!(body.body, event.to_json(), "the body is the event");
    }
}

/// The states an order went through, as its events say.
fn states_of(events: &[ShopEvent], so_id: &str) -> Vec<ShopState> {
    events
        .iter()
        .filter(|e| e.so_id == so_id)
        .map(|e| e.state)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_every_change_of_200_orders_in_order_and_signed() {
    let receiver = ShopReceiver::start().await;
    let app = spawn_app_with(
        Options::orders(SimOptions {
            products: 30,
            // The confirm comes after the push's own reply: pushed, then confirmed.
            callback_delay_ms: 300,
            delivery_after_ms: 5_000,
            ..SimOptions::default()
        })
        .extra_toml(receiver.toml(500)),
    )
    .await;
    // One product Haier does not sell, listed here all the same: its orders are refused.
    let not_for_sale = app.sim.catalog().extra_products()[0].code.clone();
    seed_products(app.db(), std::slice::from_ref(&not_for_sale)).await;
    let so_ids = insert_orders(&app, "SO-SHOP", 200, |i| {
        if i >= 195 {
            not_for_sale.clone()
        } else {
            app.code(i).to_owned()
        }
    })
    .await;
    let webhook = Webhook::new(app.config().shop.clone().expect("[shop]")).unwrap();
    let stop = CancellationToken::new();
    let delivering = tokio::spawn(haier_sync::shop::run_until_stopped(
        webhook,
        app.db().clone(),
        stop.clone(),
    ));

    // Pushed; Haier's confirm callbacks confirm 195 and refuse 5.
    app.push_all_due().await;
    wait_orders(&app, "every order confirmed or refused", |r| {
        matches!(r.status, OutboxStatus::Confirmed | OutboxStatus::Refused)
    })
    .await;

    // Two operator commands: a cancel and a reschedule, of orders pushed last (Haier delivers
    // `delivery_after_ms` after it took an order, and then no longer reschedules).
    let client = &app.ctx.client;
    for so_id in &so_ids[185..190] {
        let cancelled = cancel_order(app.db(), client, so_id, "customer changed their mind")
            .await
            .unwrap();
        assert_eq!(cancelled, CancelAnswer::Requested);
    }
    for so_id in &so_ids[180..185] {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 24);
        let done = reschedule_order(app.db(), client, so_id, date, date)
            .await
            .unwrap();
        assert!(matches!(done, Rescheduled::Done { .. }), "{done:?}");
    }
    // Haier's callbacks: a refusal at the door of the whole order, out of stock.
    for so_id in &so_ids[0..10] {
        let code = app
            .code(so_ids.iter().position(|s| s == so_id).unwrap())
            .to_owned();
        sim_sends(
            &app,
            so_id,
            "door-refusal",
            json!({"productCode": code, "qty": 1}),
        )
        .await;
    }
    for so_id in &so_ids[10..20] {
        sim_sends(&app, so_id, "out-of-stock", json!({"fail_msg": "补货中"})).await;
    }
    wait_orders(&app, "callbacks applied", |r| {
        let i: usize = r.so_id[8..].parse().unwrap();
        match i {
            0..10 | 185..190 => r.status == OutboxStatus::Cancelled,
            10..20 => r.status == OutboxStatus::OutOfStock,
            _ => true,
        }
    })
    .await;

    // The logistics job: parcels, then deliveries once Haier has delivered.
    let deadline = Deadline::new(Duration::from_secs(20));
    loop {
        app.run(SyncKind::Logistics, RunOverrides::default()).await;
        let rows = all_rows(app.db()).await;
        let undelivered = rows
            .iter()
            .filter(|r| r.status == OutboxStatus::Confirmed && r.delivered_at.is_none())
            .count();
        if undelivered == 0 {
            break;
        }
        deadline
            .wait("every confirmed order delivered", &undelivered)
            .await;
    }
    // The parcels of the orders delivered in the last run.
    app.run(SyncKind::Logistics, RunOverrides::default()).await;
    // A return of a delivered order, whole: returned.
    for (i, so_id) in so_ids.iter().enumerate().take(40).skip(30) {
        sim_sends(
            &app,
            so_id,
            "return",
            json!({"productCode": app.code(i), "qty": 1}),
        )
        .await;
    }
    wait_orders(&app, "returns applied", |r| {
        let i: usize = r.so_id[8..].parse().unwrap();
        !(30..40).contains(&i) || r.status == OutboxStatus::Returned
    })
    .await;

    // Everything reaches the webhook.
    let events = wait_for(
        "every event delivered",
        Duration::from_secs(20),
        || all_events(&app),
        |events| events.iter().all(|e| e.delivery == Delivery::Delivered),
    )
    .await;
    stop.cancel();
    delivering.await.unwrap().unwrap();
    assert_received_in_order(&events, &receiver);

    // What each kind of order went through, one event per change. A confirm or refusal that
    // overtakes the push's own reply (a busy machine) makes `pushed` and the answer one change.
    use ShopState::*;
    let states = |i: usize| {
        let mut states = states_of(&events, &so_ids[i]);
        if states.first() == Some(&Pushed) {
            states.remove(0);
        }
        states
    };
    assert_eq!(states(0), [Confirmed, Cancelled], "refused at the door, whole");
    let out_of_stock = states(10);
    assert_eq!(out_of_stock[..2], [Confirmed, OutOfStock], "{out_of_stock:?}");
    assert_eq!(out_of_stock.last(), Some(&Delivered), "{out_of_stock:?}");
    assert_eq!(
        states(185),
        [Confirmed, Confirmed, Cancelled],
        "cancel requested, then cancelled"
    );
    let rescheduled = states(180);
    assert_eq!(rescheduled[..2], [Confirmed, Confirmed], "{rescheduled:?}");
    assert_eq!(rescheduled.last(), Some(&Delivered));
    assert_eq!(states(30).last(), Some(&Returned), "{:?}", states(30));
    assert_eq!(states(199), [Refused]);
    let rescheduled = events.iter().rfind(|e| e.so_id == so_ids[180]).unwrap();
    assert!(rescheduled.schedule.contains("1798127999000"), "{rescheduled:?}");
    let delivered = events
        .iter()
        .rfind(|e| e.so_id == so_ids[100])
        .expect("events of the order");
    assert_eq!(delivered.state, Delivered);
    assert_ne!(delivered.shipments, "[]", "the parcels: {delivered:?}");
    let body = delivered.to_json();
    assert_eq!(body["lines"][0]["ordered"], 1, "{body}");
    assert!(body["haier_order_no"].is_string(), "{body}");
    for so_id in &so_ids {
        assert!(events.iter().any(|e| &e.so_id == so_id), "{so_id} has events");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_replay_sends_again_exactly_the_events_of_the_window() {
    let receiver = ShopReceiver::start().await;
    let app = spawn_app_with(
        Options::orders(SimOptions {
            products: 20,
            callback_delay_ms: 300,
            ..SimOptions::default()
        })
        .extra_toml(receiver.toml(500)),
    )
    .await;
    insert_orders(&app, "SO-REPL", 20, |i| app.code(i).to_owned()).await;
    app.push_all_due().await;
    wait_orders(&app, "every order confirmed", |r| {
        r.status == OutboxStatus::Confirmed
    })
    .await;
    let webhook = Webhook::new(app.config().shop.clone().unwrap()).unwrap();
    let deliver_all = || async {
        while webhook.try_deliver_next_batch(app.db()).await.unwrap()
            != haier_sync::shop::DeliveryOutcome::Idle
        {}
    };
    deliver_all().await;
    let events = all_events(&app).await;
    // Pushed and confirmed (one change when the confirm overtook the push's reply), 20 times.
    assert!((20..=40).contains(&events.len()), "{events:#?}");
    let first_round = receiver.taken().len();
    assert_eq!(first_round, events.len());

    // A window from the 6th event's time to the 5th last's (excluded).
    let (since, until) = (events[5].created_at, events[events.len() - 5].created_at);
    let window: Vec<i64> = events
        .iter()
        .filter(|e| e.created_at >= since && e.created_at < until)
        .map(|e| e.id)
        .collect();
    let rfc3339 = |t: chrono::NaiveDateTime| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let output = command(
        app.config_path(),
        &[
            "events",
            "replay",
            "--since",
            &rfc3339(since),
            "--until",
            &rfc3339(until),
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("{} event(s)", window.len())), "{stdout}");

    deliver_all().await;
    let again: Vec<i64> = receiver.taken()[first_round..]
        .iter()
        .map(|r| r.event_id)
        .collect();
    let mut sorted = again.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, window, "exactly the window, each with its id");
    assert_received_in_order(&all_events(&app).await, &receiver);

    // Recording again what nothing changed writes no event.
    let unchanged = app
        .query(|c| {
            haier_sync::shop::record(
                c,
                "SO-REPL-00003",
                haier_sync::shop::EventSource::Callback,
                haier_sync::db::now_utc(),
            )
        })
        .await;
    assert_eq!(unchanged, None);
    // `events list` shows one order's events, as the webhook received them.
    let listed = command(
        app.config_path(),
        &["events", "list", "--so-id", "SO-REPL-00003", "--json"],
    )
    .output()
    .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let of_order: Vec<&ShopEvent> = events.iter().filter(|e| e.so_id == "SO-REPL-00003").collect();
    assert_eq!(listed.as_array().unwrap().len(), of_order.len(), "{listed}");
    assert_eq!(listed[0]["delivery"]["state"], "delivered", "{listed}");

    // The replay is in the audit trail.
    let audit = command(app.config_path(), &["audit", "--json"]).output().unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.contains("events replay"), "{audit}");
}

/// The issue asks for 30 s of the receiver being down.
const RECEIVER_DOWN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_while_the_receiver_is_down_and_the_daemon_is_killed() {
    use std::os::unix::process::ExitStatusExt as _;
    let receiver = ShopReceiver::start().await;
    let app = spawn_app_with(
        Options::process(5_000)
            .callbacks(Callbacks::ToDaemon)
            .listed_products(20)
            .sim(SimOptions {
                products: 20,
                callback_delay_ms: 0,
                callback_retry_base_ms: 100,
                callback_max_attempts: 50,
                ..SimOptions::default()
            })
            .extra_toml(format!(
                "[daemon]\nheartbeat_ms = 200\nwatch_config = false\n\n\
                 [jobs.orders]\nkind = \"order_outbox\"\npoll_interval_ms = 100\nbatch_size = 100\n\n{}",
                receiver.toml(2_000)
            )),
    )
    .await;
    receiver.down_for(RECEIVER_DOWN);
    let down_since = Instant::now();
    insert_orders(&app, "SO-DOWN", 200, |i| app.code(i).to_owned()).await;
    let mut daemon = app.daemon_process();
    daemon.start();
    wait_orders(&app, "every order confirmed", |r| {
        r.status == OutboxStatus::Confirmed
    })
    .await;
    assert!(
        receiver.refused() > 0,
        "the webhook was tried while the receiver was down"
    );
    assert!(receiver.taken().is_empty());

    // Back up: killed while it delivers.
    let up_at = down_since + RECEIVER_DOWN;
    tokio::time::sleep_until(up_at.into()).await;
    let deadline = Deadline::new(Duration::from_secs(20));
    while receiver.taken().len() < 50 {
        deadline.wait("50 events taken", &receiver.taken().len()).await;
    }
    let status = daemon.kill_9();
    assert_eq!(status.signal(), Some(9));
    daemon.start();
    let events = wait_for(
        "every event delivered",
        Duration::from_secs(30),
        || all_events(&app),
        |events| {
            let confirmed: BTreeSet<&str> = events
                .iter()
                .filter(|e| e.state == ShopState::Confirmed)
                .map(|e| e.so_id.as_str())
                .collect();
            confirmed.len() == 200 && events.iter().all(|e| e.delivery == Delivery::Delivered)
        },
    )
    .await;
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(20)).await;
    assert_received_in_order(&events, &receiver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_postgres_hears_the_id_of_each_new_event() {
    use diesel::pg::PgConnection;
    use diesel::prelude::*;
    let app = spawn_app_with(Options::orders(SimOptions {
        products: 20,
        callback_delay_ms: 300,
        ..SimOptions::default()
    }))
    .await;
    if app.backend() != Backend::Postgres {
        return; // On SQLite the table is the interface.
    }
    let url = match &app.config().database.url {
        haier_sync::config::DatabaseUrl::Postgres(url) => url.expose().to_owned(),
        other => panic!("{other:?}"),
    };
    let mut listener = PgConnection::establish(&url).unwrap();
    diesel::sql_query("LISTEN haier_order_changes")
        .execute(&mut listener)
        .unwrap();
    insert_orders(&app, "SO-LISTEN", 3, |i| app.code(i).to_owned()).await;
    app.push_all_due().await;
    let events = wait_for(
        "six events (pushed, confirmed)",
        Duration::from_secs(20),
        || all_events(&app),
        |events| events.len() == 6,
    )
    .await;
    let mut heard = BTreeSet::new();
    let deadline = Deadline::new(Duration::from_secs(10));
    while heard.len() < events.len() {
        for note in listener.notifications_iter() {
            let note = note.unwrap();
            assert_eq!(note.channel, "haier_order_changes");
            heard.insert(note.payload.parse::<i64>().unwrap());
        }
        if heard.len() < events.len() {
            deadline.wait("a notification of each event", &heard).await;
        }
    }
    let ids: BTreeSet<i64> = events.iter().map(|e| e.id).collect();
    assert_eq!(heard, ids);
}

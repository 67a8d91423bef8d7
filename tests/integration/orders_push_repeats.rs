//! Issue 12: what the contract's "Order push" section asks of repeats and times, through the real
//! poller against the simulator. A refusal after an attempt whose outcome was never seen (here a
//! crash mid-push) holds the order as `pushed`, never `dead`; delivery and installation times
//! reach Haier as numbers of milliseconds; and an order or a cancel Haier has not answered within
//! `confirm_within_ms` is flagged by `status`, `outbox list --unconfirmed` and `/metrics`.

use crate::support::*;
use diesel::prelude::*;
use haier_sync::db::schema::haier_order_outbox::dsl;
use haier_sync::db::{now_utc, Db};
use haier_sync::metrics;
use haier_sync::orders::outbox;
use haier_sync::orders::{cancel_order, CancelState, Cancelled, OutboxStatus};
use haier_sync::simulator::SimOptions;
use serde_json::{json, Value};

/// 2026-12-05 23:59:59 Beijing time (15:59:59 UTC), in milliseconds.
const DEC_5_END_MS: i64 = 1_796_486_399_000;

fn quick_callbacks() -> SimOptions {
    SimOptions {
        products: 50,
        callback_delay_ms: 20,
        callback_retry_base_ms: 100,
        ..SimOptions::default()
    }
}

/// The orders Haier holds, as `GET /_sim/orders` shows them.
async fn sim_orders_over_http(app: &TestApp) -> Vec<Value> {
    reqwest::get(format!("{}/_sim/orders", app.sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_date_as_distribution_time_reaches_haier_as_a_number_of_milliseconds() {
    let app = spawn_app_with(Options::orders(quick_callbacks())).await;
    let code = app.code(0).to_owned();
    let mut by_date = order_json("SO-DATE", &[&code]);
    by_date["distributionTime"] = json!("2026-12-05");
    by_date["installTime"] = json!("2026-12-05");
    by_date["deliveryInstall"] = json!("true");
    let mut by_text = order_json("SO-TEXT", &[&code]);
    by_text["distributionTime"] = json!("1796486399000");
    by_text["installTime"] = json!(DEC_5_END_MS + 86_400_000);
    let mut garbled = order_json("SO-GARBLED", &[&code]);
    garbled["installTime"] = json!("5th of December");
    for order in [&by_date, &by_text, &garbled] {
        let so_id = order["soId"].as_str().unwrap();
        insert_by_sql(app.db(), so_id, &format!("ON-{so_id}"), order).await;
    }

    app.push_all_due().await;

    let held = sim_orders_over_http(&app).await;
    let sent = |so_id: &str| -> Value {
        held.iter()
            .find(|o| o["soId"] == so_id)
            .unwrap_or_else(|| panic!("Haier has no {so_id}: {held:#?}"))["order"]
            .clone()
    };
    let date = sent("SO-DATE");
    assert_eq!(date["distributionTime"], json!(DEC_5_END_MS), "{date}");
    assert_eq!(date["installTime"], json!(DEC_5_END_MS), "{date}");
    assert_eq!(date["deliveryInstall"], "true");
    assert_eq!(date["createTime"], json!(1_764_000_000_000_i64));
    let text = sent("SO-TEXT");
    assert_eq!(text["distributionTime"], json!(DEC_5_END_MS), "{text}");
    assert_eq!(text["installTime"], json!(DEC_5_END_MS + 86_400_000), "{text}");

    let dead = row(app.db(), "SO-GARBLED").await;
    assert_eq!(dead.status, OutboxStatus::Dead);
    assert_eq!(
        dead.last_error.as_deref(),
        Some(
            "invalid order, not sent: installTime must be epoch milliseconds or a date yyyy-MM-dd \
             (got \"5th of December\")"
        )
    );
    assert!(app.sim.order("SO-GARBLED").is_none());
}

/// Leaves the row claimed under a lease that has run out, as a daemon killed mid-push does.
async fn claim_and_crash(db: &Db) {
    db.run(|conn| {
        let now = now_utc();
        let ran_out = now - chrono::Duration::seconds(1);
        Ok(outbox::claim_due_orders(
            conn,
            "crashed-host:1:0",
            now,
            ran_out,
            100,
        )?)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_refusal_after_a_push_cut_short_by_a_crash_holds_the_order_as_pushed_never_dead() {
    let app = spawn_app_with(Options::orders(quick_callbacks()).callbacks(Callbacks::Off)).await;
    let code = app.code(0).to_owned();
    // Haier refuses both (a seller code not its own), not as a repeat.
    let refused = |so_id: &str| {
        let mut order = order_json(so_id, &[&code]);
        order["sellerCode"] = json!("9999999999");
        order
    };
    insert_by_sql(app.db(), "SO-HELD", "ON-SO-HELD", &refused("SO-HELD")).await;
    claim_and_crash(app.db()).await;
    insert_by_sql(app.db(), "SO-DEAD", "ON-SO-DEAD", &refused("SO-DEAD")).await;

    app.push_all_due().await;

    // The crashed attempt's outcome was never seen: Haier may be answering its own copy.
    let held = row(app.db(), "SO-HELD").await;
    assert_eq!(held.status, OutboxStatus::Pushed, "{held:#?}");
    let error = held.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("PASSWORD_ERROR"), "{error}");
    assert!(
        error.contains("held as pushed until the confirm callback"),
        "{error}"
    );
    assert_eq!(held.attempts, 2, "the crashed attempt and the refused one");
    assert!(
        held.pushed_at.is_some() && held.push_unseen_at.is_none(),
        "{held:#?}"
    );
    // The same refusal with no attempt unseen before it is final.
    let dead = row(app.db(), "SO-DEAD").await;
    assert_eq!(dead.status, OutboxStatus::Dead, "{dead:#?}");
    assert!(dead.last_error.as_deref().is_some_and(
        |e| e.starts_with("Haier refused the order: ylh order_push: Haier refused: PASSWORD_ERROR")
    ));
}

/// Moves `pushed_at` (or, with `cancel`, `cancel_requested_at`) of the row `so_id` back by `hours`.
async fn set_back(db: &Db, so_id: &str, hours: i64, cancel: bool) {
    let so_id = so_id.to_owned();
    db.run(move |conn| {
        let at = now_utc() - chrono::Duration::hours(hours);
        let rows = dsl::haier_order_outbox.filter(dsl::so_id.eq(so_id));
        if cancel {
            diesel::update(rows)
                .set(dsl::cancel_requested_at.eq(at))
                .execute(conn)?;
        } else {
            diesel::update(rows).set(dsl::pushed_at.eq(at)).execute(conn)?;
        }
        Ok(())
    })
    .await
    .unwrap();
}

fn run_cli(app: &TestApp, args: &[&str]) -> String {
    let out = command(app.config_path(), args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn an_order_or_cancel_unanswered_past_confirm_within_is_flagged_everywhere() {
    // No callbacks: Haier never answers.
    let app = spawn_app_with(Options::orders(quick_callbacks()).callbacks(Callbacks::Off)).await;
    let ids = insert_many_by_sql(app.db(), "SO-WAIT", 3, &[app.code(0)]).await;
    app.push_all_due().await;
    let (old, fresh, cancelled) = (&ids[0], &ids[1], &ids[2]);
    assert_eq!(row(app.db(), fresh).await.status, OutboxStatus::Pushed);
    set_back(app.db(), old, 25, false).await;
    let asked = cancel_order(app.db(), &app.ctx.client, cancelled, "customer changed mind")
        .await
        .unwrap();
    assert_eq!(asked, Cancelled::Requested);
    let cancel_row = row(app.db(), cancelled).await;
    assert_eq!(cancel_row.cancel_state, Some(CancelState::Requested));
    assert!(cancel_row.cancel_requested_at.is_some());
    set_back(app.db(), cancelled, 30, true).await;

    let listed = run_cli(&app, &["outbox", "list", "--unconfirmed"]);
    assert!(
        listed.contains("2 order(s) Haier has not answered within 24 h"),
        "{listed}"
    );
    let line = |so_id: &str| listed.lines().find(|l| l.contains(so_id)).map(str::to_owned);
    assert!(
        line(old).is_some_and(|l| l.contains("confirm callback (pushed over 24 h ago)")),
        "{listed}"
    );
    assert!(
        line(cancelled).is_some_and(|l| l.contains("cancel callback (asked over 24 h ago)")),
        "{listed}"
    );
    assert!(line(fresh).is_none(), "{listed}");
    let json: Vec<Value> =
        serde_json::from_str(&run_cli(&app, &["outbox", "list", "--unconfirmed", "--json"])).unwrap();
    let kinds: Vec<(String, Value)> = json
        .iter()
        .map(|o| (o["so_id"].as_str().unwrap().to_owned(), o["unanswered"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (old.clone(), json!(["push"])),
            (cancelled.clone(), json!(["cancel"]))
        ]
    );

    let status = run_cli(&app, &["status"]);
    assert!(
        status.contains(
            "orders: UNCONFIRMED — 1 pushed but not confirmed within 24 h, 1 cancel(s) asked and not \
             answered within 24 h"
        ),
        "{status}"
    );
    let report: Value = serde_json::from_str(&run_cli(&app, &["status", "--json"])).unwrap();
    assert_eq!(
        report["unconfirmed"],
        json!({"pushes": 1, "cancels": 1, "confirm_within_ms": 86_400_000})
    );

    let text = metrics::render(
        app.db(),
        &metrics::MetricsSource::default(),
        &metrics::CallbackCounters::default(),
    )
    .await
    .unwrap();
    assert!(
        text.contains("haier_sync_orders_unconfirmed{kind=\"push\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("haier_sync_orders_unconfirmed{kind=\"cancel\"} 1\n"),
        "{text}"
    );
}

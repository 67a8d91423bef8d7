//! An order's lines and what Haier's cancel, door-refusal, return and out-of-stock callbacks do
//! to it, through the real receiver: the simulator sends each callback (on demand through
//! `/_sim/orders/{soId}/…`, or answering `outbox cancel` by the order's stage), the lines and the
//! order's state follow, and a replay of each changes nothing.

use crate::support::*;
use chrono::Utc;
use haier_sync::orders::lines::OrderLine;
use haier_sync::orders::notices::{METHOD_CANCEL, METHOD_CONFIRM, METHOD_OUT_OF_STOCK};
use haier_sync::orders::{cancel_order, CallbackOutcome, CancelState, Cancelled, OutboxStatus};
use haier_sync::simulator::{Faults, SimOptions};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn sim_options() -> SimOptions {
    SimOptions {
        products: 100,
        callback_delay_ms: 20,
        callback_retry_base_ms: 100,
        ..SimOptions::default()
    }
}

async fn start() -> TestApp {
    spawn_app_with(Options::orders(sim_options())).await
}

/// An order of `qty` units of `code`.
fn order_of(so_id: &str, code: &str, qty: u64) -> Value {
    let mut order = order_json(so_id, &[code]);
    order["itemList"][0]["itemQty"] = json!(qty);
    order["totalQty"] = json!(qty);
    order
}

/// Inserts `order` as the shop does, pushes it and waits for Haier's confirm.
async fn push_confirmed(app: &TestApp, so_id: &str, order: &Value) {
    insert_by_sql(app.db(), so_id, &format!("ON-{so_id}"), order).await;
    app.push_all_due().await;
    app.wait_for_orders(WAIT, |rows| {
        rows.iter()
            .any(|r| r.so_id == so_id && r.status == OutboxStatus::Confirmed)
    })
    .await;
}

/// Each line as (product, ordered, received, refused, returned).
fn quantities(lines: &[OrderLine]) -> Vec<(String, i64, i64, i64, i64)> {
    lines
        .iter()
        .map(|l| {
            (
                l.product_code.clone(),
                l.ordered_qty,
                l.received_qty,
                l.rejected_qty,
                l.returned_qty,
            )
        })
        .collect()
}

async fn wait_for_lines(app: &TestApp, so_id: &str, done: impl Fn(&[OrderLine]) -> bool) -> Vec<OrderLine> {
    wait_for(
        "the order's lines",
        WAIT,
        || order_lines(app.db(), so_id),
        |lines| done(lines),
    )
    .await
}

/// Asks the simulator to send a callback for `so_id` (`what`: door-refusal, return,
/// out-of-stock); returns what it sent (`method`, `data`).
async fn sim_sends(app: &TestApp, so_id: &str, what: &str, body: Value) -> Value {
    let url = format!("{}/_sim/orders/{so_id}/{what}", app.sim.base_url());
    let reply = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert_eq!(reply.status(), 200, "the simulator takes {what} {body}");
    reply.json().await.unwrap()
}

/// Sends a callback again, signed anew: success, and the order and its lines stay as they are.
async fn replay_changes_nothing(app: &TestApp, so_id: &str, sent: &Value) {
    let before = (row(app.db(), so_id).await, order_lines(app.db(), so_id).await);
    let form = signed_form(
        sent["method"].as_str().unwrap(),
        &sent["data"].to_string(),
        Utc::now(),
        APP_KEY,
        SECRET,
    );
    let (status, reply) = post_form(&app.receiver().callback_url(), &form).await;
    assert_eq!((status, reply["success"].clone()), (200, json!(true)), "{reply}");
    let after = (row(app.db(), so_id).await, order_lines(app.db(), so_id).await);
    assert_eq!(after, before, "a replay changes nothing");
    let last = events(app.db()).await.pop().unwrap();
    assert_eq!(last.outcome, CallbackOutcome::Duplicate);
}

#[tokio::test]
async fn a_door_refusal_then_a_return_with_one_unit_failing_inspection_move_the_lines_and_the_order() {
    let app = start().await;
    let code = app.code(0).to_owned();
    push_confirmed(&app, "SO-1", &order_of("SO-1", &code, 3)).await;
    let lines = order_lines(app.db(), "SO-1").await;
    assert_eq!(
        quantities(&lines),
        [(code.clone(), 3, 0, 0, 0)],
        "filled at the push"
    );

    // One unit refused at the door, with no cancel asked for.
    let sent = sim_sends(
        &app,
        "SO-1",
        "door-refusal",
        json!({"productCode": code, "qty": 1}),
    )
    .await;
    assert_eq!(sent["data"]["State"], 2);
    let lines = wait_for_lines(&app, "SO-1", |l| l[0].rejected_qty == 1).await;
    assert_eq!(quantities(&lines), [(code.clone(), 3, 2, 1, 0)]);
    let order = row(app.db(), "SO-1").await;
    assert_eq!(order.status, OutboxStatus::Confirmed);
    assert_eq!(order.cancel_state, Some(CancelState::PartlyCancelled));
    replay_changes_nothing(&app, "SO-1", &sent).await;

    // Two received units come back; one fails inspection and stays with the customer.
    let sent = sim_sends(
        &app,
        "SO-1",
        "return",
        json!({"productCode": code, "qty": 2, "fail_inspection": 1}),
    )
    .await;
    assert_eq!(sent["data"]["State"], 2);
    let lines = wait_for_lines(&app, "SO-1", |l| l[0].returned_qty == 1).await;
    assert_eq!(quantities(&lines), [(code.clone(), 3, 2, 1, 1)]);
    let order = row(app.db(), "SO-1").await;
    assert_eq!(order.status, OutboxStatus::Confirmed);
    assert_eq!(order.cancel_state, Some(CancelState::PartlyReturned));
    replay_changes_nothing(&app, "SO-1", &sent).await;

    // The last unit comes back too: every unit refused or returned, after delivery.
    let sent = sim_sends(&app, "SO-1", "return", json!({"productCode": code, "qty": 1})).await;
    assert_eq!(sent["data"]["State"], 1);
    app.wait_for_orders(WAIT, |rows| rows[0].status == OutboxStatus::Returned)
        .await;
    assert_eq!(
        quantities(&order_lines(app.db(), "SO-1").await),
        [(code.clone(), 3, 2, 1, 2)]
    );
    assert_eq!(
        row(app.db(), "SO-1").await.cancel_state,
        Some(CancelState::Returned)
    );
    replay_changes_nothing(&app, "SO-1", &sent).await;

    // `outbox show` prints the order, its lines and every callback.
    let output = command(app.config_path(), &["outbox", "show", "SO-1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("order SO-1 (onlineNo ON-SO-1)"), "{text}");
    assert!(text.contains("returned: "), "{text}");
    assert!(text.contains(&code), "{text}");
    assert!(
        text.contains(METHOD_CANCEL) && text.contains(METHOD_CONFIRM),
        "{text}"
    );
    let output = command(app.config_path(), &["outbox", "show", "SO-1", "--json"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["order"]["status"], "returned");
    assert_eq!(shown["lines"][0]["returned_qty"], 2);
    assert_eq!(shown["lines"][0]["rejected_qty"], 1);
    let outcomes: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "applied",
            "applied",
            "duplicate",
            "applied",
            "duplicate",
            "applied",
            "duplicate"
        ]
    );
    let missing = command(app.config_path(), &["outbox", "show", "SO-404"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}

#[tokio::test]
async fn a_whole_cancel_asked_with_the_pushed_source_system_cancels_every_unit() {
    let app = start().await;
    let code = app.code(1).to_owned();
    let mut order = order_of("SO-2", &code, 3);
    order["sourceSystem"] = json!("SHOP-A");
    push_confirmed(&app, "SO-2", &order).await;

    let outcome = cancel_order(app.db(), &app.ctx.client, "SO-2", "changed mind")
        .await
        .unwrap();
    assert_eq!(outcome, Cancelled::Requested);
    app.wait_for_orders(WAIT, |rows| rows[0].status == OutboxStatus::Cancelled)
        .await;
    let order = row(app.db(), "SO-2").await;
    assert_eq!(order.cancel_state, Some(CancelState::Full));
    assert_eq!(
        quantities(&order_lines(app.db(), "SO-2").await),
        [(code, 3, 0, 3, 0)]
    );
    let sim_order = app.sim.order("SO-2").unwrap();
    assert_eq!(
        sim_order.cancel_request.unwrap()["sourceSystem"],
        "SHOP-A",
        "the cancel names the sourceSystem of the push, not the configured one"
    );
}

#[tokio::test]
async fn a_declined_cancel_keeps_the_order_and_records_the_fail_message() {
    let app = start().await;
    let code = app.code(2).to_owned();
    push_confirmed(&app, "SO-3", &order_of("SO-3", &code, 2)).await;
    // Set at run time: every cancel is answered 已出库拦截失败 (State 0).
    let reply = reqwest::Client::new()
        .post(format!("{}/_sim/faults", app.sim.base_url()))
        .json(&json!({"cancel_outcome": "interception_failed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    let outcome = cancel_order(app.db(), &app.ctx.client, "SO-3", "changed mind")
        .await
        .unwrap();
    assert_eq!(outcome, Cancelled::Requested);
    app.wait_for_orders(WAIT, |rows| rows[0].cancel_state == Some(CancelState::Refused))
        .await;
    let order = row(app.db(), "SO-3").await;
    assert_eq!(order.status, OutboxStatus::Confirmed, "the order keeps its state");
    assert_eq!(order.cancel_detail.as_deref(), Some("已出库拦截失败"));
    assert_eq!(
        quantities(&order_lines(app.db(), "SO-3").await),
        [(code, 2, 0, 0, 0)]
    );
}

#[tokio::test]
async fn an_out_of_stock_notice_shows_until_the_confirm_moves_the_order_on() {
    let app = spawn_app_with(Options::default().callbacks(Callbacks::InProcess)).await;
    insert_by_sql(app.db(), "SO-4", "ON-4", &order_of("SO-4", "P1", 1)).await;
    let url = app.receiver().callback_url();
    // The document's own example writes `failMsg`.
    let oos =
        r#"{"ExtOrderNo":"SO.20261201.000004","PlatformOrderNo":"SO-4","State":1,"failMsg":"库存不足"}"#;
    let form = signed_form(METHOD_OUT_OF_STOCK, oos, Utc::now(), APP_KEY, SECRET);
    let (_, reply) = post_form(&url, &form).await;
    assert_eq!(reply["success"], true, "{reply}");
    let order = row(app.db(), "SO-4").await;
    assert_eq!(order.status, OutboxStatus::OutOfStock);
    assert_eq!(
        order.out_of_stock_detail.as_deref(),
        Some("State 1; ExtOrderNo SO.20261201.000004; FailMsg 库存不足")
    );
    assert_eq!(order.haier_order_no.as_deref(), Some("SO.20261201.000004"));
    let sent = json!({"method": METHOD_OUT_OF_STOCK, "data": serde_json::from_str::<Value>(oos).unwrap()});
    replay_changes_nothing(&app, "SO-4", &sent).await;

    let confirm = r#"{"ExtOrderNo":"SO.20261201.000004","PlatformOrderNo":"SO-4","State":1,"FailMsg":""}"#;
    let form = signed_form(METHOD_CONFIRM, confirm, Utc::now(), APP_KEY, SECRET);
    let (_, reply) = post_form(&url, &form).await;
    assert_eq!(reply["success"], true, "{reply}");
    let order = row(app.db(), "SO-4").await;
    assert_eq!(order.status, OutboxStatus::Confirmed);
    assert!(
        order.out_of_stock_at.is_some(),
        "when it was out of stock stays recorded"
    );
}

#[tokio::test]
async fn a_cancel_breaking_the_quantity_rules_is_kept_refused_and_changes_nothing() {
    let app = spawn_app_with(Options::default().callbacks(Callbacks::InProcess)).await;
    insert_by_sql(app.db(), "SO-5", "ON-5", &order_of("SO-5", "P1", 3)).await;
    let url = app.receiver().callback_url();
    let cases = [
        (
            r#"{"productCode":"P1","totalQty":3,"receiveQty":1,"returnQty":2,"rejectQty":0}"#,
            "itemList says returnQty 2 for P1, above its receiveQty 1",
        ),
        (
            r#"{"productCode":"P1","totalQty":2,"receiveQty":1,"returnQty":0,"rejectQty":1}"#,
            "itemList says totalQty 2 for P1, but the order has 3",
        ),
        (
            r#"{"productCode":"P1","totalQty":3,"receiveQty":3,"returnQty":0,"rejectQty":1}"#,
            "itemList says receiveQty 3 + rejectQty 1 for P1, above its totalQty 3",
        ),
        (
            r#"{"productCode":"P9","totalQty":3,"receiveQty":0,"returnQty":0,"rejectQty":3}"#,
            "itemList[0].productCode P9 is not one of the order's products (P1)",
        ),
        (
            r#"{"productCode":"P1","totalQty":3,"receiveQty":"x","returnQty":0,"rejectQty":1}"#,
            "itemList[0].receiveQty must be a whole number ≥ 0, not \"x\"",
        ),
    ];
    let before = (row(app.db(), "SO-5").await, order_lines(app.db(), "SO-5").await);
    for (item, reason) in cases {
        let data = format!(r#"{{"PlatformOrderNo":"SO-5","State":2,"itemList":[{item}]}}"#);
        let form = signed_form(METHOD_CANCEL, &data, Utc::now(), APP_KEY, SECRET);
        let (status, reply) = post_form(&url, &form).await;
        assert_eq!(status, 200);
        assert_eq!(reply["success"], false, "{item}: {reply}");
        assert_eq!(reply["description"], reason);
        let event = events(app.db()).await.pop().unwrap();
        assert_eq!(event.outcome, CallbackOutcome::Rejected);
        assert_eq!(event.so_id.as_deref(), Some("SO-5"));
        assert_eq!(event.detail.as_deref(), Some(reason));
        assert!(event.raw.contains("itemList"), "the callback is kept whole");
        let after = (row(app.db(), "SO-5").await, order_lines(app.db(), "SO-5").await);
        assert_eq!(after.0, before.0, "{item}: the order is unchanged");
        assert_eq!(quantities(&after.1), [("P1".to_owned(), 3, 0, 0, 0)]);
    }
}

#[tokio::test]
async fn the_door_refusal_fault_refuses_units_of_delivered_orders() {
    let sim = SimOptions {
        delivery_after_ms: 300,
        faults: Faults {
            door_refusal_rate: 1.0,
            ..Faults::default()
        },
        ..sim_options()
    };
    let app = spawn_app_with(Options::orders(sim)).await;
    let code = app.code(3).to_owned();
    push_confirmed(&app, "SO-6", &order_of("SO-6", &code, 2)).await;
    let lines = wait_for_lines(&app, "SO-6", |l| l[0].rejected_qty >= 1).await;
    let line = &lines[0];
    assert_eq!(line.received_qty + line.rejected_qty, 2, "{line:?}");
    let order = row(app.db(), "SO-6").await;
    let expected = if line.rejected_qty == 2 {
        (OutboxStatus::Cancelled, Some(CancelState::Full))
    } else {
        (OutboxStatus::Confirmed, Some(CancelState::PartlyCancelled))
    };
    assert_eq!((order.status, order.cancel_state), expected);
}

#[tokio::test]
async fn a_return_of_a_delivered_order_goes_through_outbox_cancel() {
    let sim = SimOptions {
        delivery_after_ms: 300,
        ..sim_options()
    };
    let app = spawn_app_with(Options::orders(sim)).await;
    let code = app.code(4).to_owned();
    push_confirmed(&app, "SO-7", &order_of("SO-7", &code, 2)).await;
    let number = row(app.db(), "SO-7").await.haier_order_no.unwrap();
    wait_for(
        "Haier's logistics to say delivered",
        WAIT,
        || async {
            app.ctx
                .client
                .query_logistics(&number)
                .await
                .map(|l| l.delivered)
                .ok()
        },
        |delivered| *delivered == Some(true),
    )
    .await;

    let outcome = cancel_order(app.db(), &app.ctx.client, "SO-7", "return within 7 days")
        .await
        .unwrap();
    assert_eq!(outcome, Cancelled::Requested);
    app.wait_for_orders(WAIT, |rows| rows[0].status == OutboxStatus::Returned)
        .await;
    assert_eq!(
        row(app.db(), "SO-7").await.cancel_state,
        Some(CancelState::Returned)
    );
    assert_eq!(
        quantities(&order_lines(app.db(), "SO-7").await),
        [(code, 2, 2, 0, 2)],
        "退货鉴定成功: every received unit returned"
    );
}

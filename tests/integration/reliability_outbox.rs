//! Bad outbox payloads, as a shop's code writes them: each row ends `dead` with the exact
//! message, is never sent, and the poller neither crashes nor blocks: the good order beside
//! them is pushed in the same poll, and the next poll is idle.

use crate::support::*;
use haier_sync::orders::poller::{try_push_next_batch, PollOutcome};
use haier_sync::orders::OutboxStatus;
use haier_sync::simulator::SimOptions;
use serde_json::{json, Value};

const CREATE_TIME_RULE: &str =
    "createTime must be milliseconds since 1970-01-01 UTC, from 2000-01-01 to a day from now";

/// One bad payload: the row's `so_id`, the payload text, and the message expected.
struct Bad {
    so_id: &'static str,
    payload: String,
    message: String,
}

/// A payload as `order_json` writes it for `so_id`, changed by `change`.
fn changed(so_id: &'static str, code: &str, change: impl FnOnce(&mut Value), message: &str) -> Bad {
    let mut order = order_json(so_id, &[code]);
    change(&mut order);
    Bad {
        so_id,
        payload: order.to_string(),
        message: message.to_owned(),
    }
}

fn text(so_id: &'static str, payload: &str, message: &str) -> Bad {
    Bad {
        so_id,
        payload: payload.to_owned(),
        message: message.to_owned(),
    }
}

fn bad_payloads(code: &str) -> Vec<Bad> {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    vec![
        text(
            "BAD-01",
            "{",
            "payload is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        text(
            "BAD-02",
            "",
            "payload is not valid JSON: EOF while parsing a value at line 1 column 0",
        ),
        text("BAD-03", "[1]", "payload must be a JSON object, not an array"),
        text("BAD-04", "null", "payload must be a JSON object, not null"),
        text("BAD-05", "\"an order\"", "payload must be a JSON object, not text"),
        text(
            "BAD-06",
            &deep,
            "payload is not valid JSON: recursion limit exceeded at line 1 column 128",
        ),
        changed(
            "BAD-07",
            code,
            |o| o["totalAmt"] = json!(-1),
            "totalAmt must not be negative (got -1)",
        ),
        changed(
            "BAD-08",
            code,
            |o| o["totalAmt"] = json!("-0.01"),
            "totalAmt must not be negative (got -0.01)",
        ),
        changed(
            "BAD-09",
            code,
            |o| o["createTime"] = json!(-1),
            &format!("{CREATE_TIME_RULE} (got -1, 1969-12-31 23:59:59 UTC)"),
        ),
        changed(
            "BAD-10",
            code,
            |o| o["createTime"] = json!(1_764_000_000_i64),
            &format!("{CREATE_TIME_RULE} (got 1764000000, 1970-01-21 10:00:00 UTC; it looks like seconds)"),
        ),
        changed(
            "BAD-11",
            code,
            |o| o["createTime"] = json!(4_102_444_800_000_i64),
            &format!("{CREATE_TIME_RULE} (got 4102444800000, 2100-01-01 00:00:00 UTC)"),
        ),
        changed(
            "BAD-12",
            code,
            |o| o["createTime"] = json!("yesterday"),
            "createTime must be a whole number (got \"yesterday\")",
        ),
        changed(
            "BAD-13",
            code,
            |o| o["itemList"][0]["retailPrice"] = json!(-1999),
            "itemList[0].retailPrice must not be negative (got -1999)",
        ),
        changed(
            "BAD-14",
            code,
            |o| o["itemList"][0]["discountAmount"] = json!(-5),
            "itemList[0].discountAmount must not be negative (got -5)",
        ),
        changed(
            "BAD-15",
            code,
            |o| o["itemList"][0]["actualPrice"] = json!("abc"),
            "itemList[0].actualPrice must be a number (got \"abc\")",
        ),
        changed(
            "BAD-16",
            code,
            |o| {
                o["itemList"][0]["itemQty"] = json!(0);
                o["totalQty"] = json!(0);
            },
            "itemList[0].itemQty must be at least 1 (got 0)",
        ),
        changed(
            "BAD-17",
            code,
            |o| o["itemList"][0]["itemQty"] = json!(1.5),
            "itemList[0].itemQty must be a whole number (got 1.5)",
        ),
        changed(
            "BAD-18",
            code,
            |o| o["totalQty"] = json!(2),
            "totalQty 2 does not equal the sum of itemQty 1",
        ),
        changed(
            "BAD-19",
            code,
            |o| o["itemList"] = json!([]),
            "itemList is empty",
        ),
        changed(
            "BAD-20",
            code,
            |o| o["itemList"] = json!("P1"),
            "itemList must be an array, not text",
        ),
        changed(
            "BAD-21",
            code,
            |o| o["itemList"] = json!([5]),
            "itemList[0] must be an object, not a number",
        ),
        changed(
            "BAD-22",
            code,
            |o| {
                o.as_object_mut().unwrap().remove("consigneeMobile");
            },
            "consigneeMobile is missing",
        ),
        changed(
            "BAD-23",
            code,
            |o| o["shopName"] = json!("  "),
            "shopName is empty",
        ),
        changed(
            "BAD-24",
            code,
            |o| o["soId"] = json!({"a": 1}),
            "soId must be text, not an object",
        ),
        changed(
            "BAD-25",
            code,
            |o| o["deliveryInstall"] = json!("maybe"),
            "deliveryInstall must be \"true\" or \"false\" (got \"maybe\")",
        ),
        changed(
            "BAD-26",
            code,
            |o| o["governmentOrder"] = json!("perhaps"),
            "governmentOrder must be true or false (got \"perhaps\")",
        ),
        changed(
            "BAD-27",
            code,
            |o| o["soId"] = json!("ELSEWHERE"),
            "so_id column BAD-27 does not match payload soId ELSEWHERE",
        ),
        Bad {
            message: "itemList[0].productCode GD0XXXX is not a Haier product for sale".into(),
            ..changed("BAD-28", "GD0XXXX", |_| {}, "")
        },
        changed(
            "BAD-29",
            code,
            |o| {
                o["totalAmt"] = json!(-1);
                o["createTime"] = json!(-1);
                o["itemList"][0]["actualPrice"] = json!(-1);
            },
            &format!(
                "totalAmt must not be negative (got -1); {CREATE_TIME_RULE} (got -1, 1969-12-31 23:59:59 UTC); \
                 itemList[0].actualPrice must not be negative (got -1)"
            ),
        ),
    ]
}

#[tokio::test]
async fn twenty_nine_bad_payloads_end_dead_with_their_exact_message_and_the_poller_goes_on() {
    let env = spawn_app_with(Options::orders(SimOptions {
        products: 50,
        callback_delay_ms: 20,
        ..SimOptions::default()
    }))
    .await;
    let code = env.code(0).to_owned();
    let bad = bad_payloads(&code);
    assert!(bad.len() >= 20, "{} payloads", bad.len());
    let mut rows: Vec<(String, String, String)> = bad
        .iter()
        .map(|b| (b.so_id.to_owned(), format!("ON-{}", b.so_id), b.payload.clone()))
        .collect();
    rows.push((
        "GOOD-1".into(),
        "ON-GOOD-1".into(),
        order_json("GOOD-1", &[&code]).to_string(),
    ));
    insert_orders_by_sql(env.db(), rows).await;

    let polls = env.push_all_due().await;
    let total: i64 = polls.iter().map(|c| c.total).sum();
    let success: i64 = polls.iter().map(|c| c.success).sum();
    let failed: i64 = polls.iter().map(|c| c.failed).sum();
    assert_eq!(
        (total, success, failed),
        (bad.len() as i64 + 1, 1, bad.len() as i64)
    );

    for b in &bad {
        let row = row(env.db(), b.so_id).await;
        assert_eq!(row.status, OutboxStatus::Dead, "{}", b.so_id);
        assert_eq!(
            row.last_error.as_deref(),
            Some(format!("invalid order, not sent: {}", b.message).as_str()),
            "{}",
            b.so_id
        );
        assert_eq!(row.attempts, 0, "{} was never sent", b.so_id);
        assert!(env.sim.order(b.so_id).is_none(), "Haier saw {}", b.so_id);
    }
    // Pushed, and perhaps confirmed already by Haier's callback.
    let sent = ["pushed", "confirmed"];
    assert!(sent.contains(&row(env.db(), "GOOD-1").await.status.as_str()));
    assert_eq!(
        env.sim.stats().orders.received,
        1,
        "only the good order reached Haier"
    );

    // Nothing is left to retry, and the poller takes the next order as usual.
    assert_eq!(
        try_push_next_batch(&env.ctx, &env.orders_job()).await.unwrap(),
        PollOutcome::Idle
    );
    insert_by_sql(env.db(), "GOOD-2", "ON-GOOD-2", &order_json("GOOD-2", &[&code])).await;
    env.push_all_due().await;
    assert!(sent.contains(&row(env.db(), "GOOD-2").await.status.as_str()));
}

//! The simulator's push as a client sees it over HTTP, with the faults of issue 12 set at run time
//! through `/_sim/faults`: a repeat refused with `errCode: null` and only a Chinese message, a
//! push stored whose reply is lost (504, or a hang past the client's timeout), and times that
//! are not numbers refused as the contract types them. Each `soId` is stored once whatever
//! happens.

use crate::support::{start_simulator, ylh_token};
use haier_sync::haier::paths;
use haier_sync::simulator::{SimHandle, SimOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Pushes `order`; the status and the body (JSON, or the text), or `None` when no reply came
/// within 500 ms.
async fn push(
    client: &reqwest::Client,
    sim: &SimHandle,
    token: &str,
    order: &Value,
) -> Option<(StatusCode, Value)> {
    let sent = client
        .post(format!("{}{}", sim.base_url(), paths::push_path("-dev")))
        .header("Authorization", format!("bearer {token}"))
        .timeout(Duration::from_millis(500))
        .json(order)
        .send()
        .await;
    let reply = match sent {
        Ok(reply) => reply,
        Err(e) if e.is_timeout() => return None,
        Err(e) => panic!("{e}"),
    };
    let status = reply.status();
    let text = reply.text().await.unwrap();
    Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

async fn set_faults(client: &reqwest::Client, sim: &SimHandle, faults: Value) {
    let reply = client
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK, "{faults}");
}

fn order(sim: &SimHandle, so_id: &str) -> Value {
    let code = &sim.catalog().products_for_sale()[0].code;
    json!({
        "sourceSystem": "HAIER-SYNC", "shopName": "Demo Shop", "sellerCode": "8800633175",
        "consigneeName": "张三", "consigneeMobile": "13800000000", "onlineNo": format!("ON-{so_id}"),
        "soId": so_id, "totalQty": 1, "totalAmt": 2399.00, "createTime": 1764000000000u64,
        "province": "北京市", "city": "北京市", "area": "东城区", "detailAddress": "长安街1号",
        "deliveryInstall": "true", "distributionTime": 1796486399000u64, "installTime": 1796486399000u64,
        "itemList": [{"productCode": code, "itemQty": 1, "retailPrice": 2399.00, "discountAmount": 0, "actualPrice": 2399.00}],
    })
}

#[tokio::test]
async fn a_repeat_is_refused_by_message_only_and_a_lost_reply_still_stores_the_order_once() {
    let sim = start_simulator(SimOptions {
        products: 20,
        ..SimOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let token = ylh_token(&client, &sim, "-dev").await;
    set_faults(
        &client,
        &sim,
        json!({"duplicate_message_only": true, "lost_reply_504_rate": 1.0}),
    )
    .await;

    // Stored, but the gateway answers 504.
    let (status, _) = push(&client, &sim, &token, &order(&sim, "SO-LOST"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    // The repeat: no code, only a message that speaks of a repeat.
    let (status, repeat) = push(&client, &sim, &token, &order(&sim, "SO-LOST"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repeat["success"], false, "{repeat}");
    assert_eq!(repeat["errCode"], Value::Null, "{repeat}");
    let message = repeat["errorMsg"].as_str().unwrap();
    assert!(
        message.contains("已存在") || message.contains("重复"),
        "{message}"
    );

    // A reply that hangs past the client's timeout, the order stored all the same.
    set_faults(
        &client,
        &sim,
        json!({"lost_reply_504_rate": 0.0, "lost_reply_hang_rate": 1.0}),
    )
    .await;
    assert!(push(&client, &sim, &token, &order(&sim, "SO-HUNG"))
        .await
        .is_none());
    set_faults(
        &client,
        &sim,
        json!({"lost_reply_hang_rate": 0.0, "duplicate_message_only": false}),
    )
    .await;
    let (_, repeat) = push(&client, &sim, &token, &order(&sim, "SO-HUNG"))
        .await
        .unwrap();
    assert_eq!(repeat["errCode"], "DUPLICATE_SOID", "{repeat}");

    let stats = sim.stats().orders;
    assert_eq!(
        (
            stats.distinct_so_ids,
            stats.duplicates_rejected,
            stats.replies_lost
        ),
        (2, 2, 2),
        "{stats:#?}"
    );
    let held: Vec<Value> = reqwest::get(format!("{}/_sim/orders", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = held.iter().map(|o| o["soId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["SO-LOST", "SO-HUNG"]);
    assert_eq!(held[0]["order"]["distributionTime"], json!(1_796_486_399_000_i64));
}

#[tokio::test]
async fn a_time_that_is_not_a_number_is_refused_and_not_stored() {
    let sim = start_simulator(SimOptions {
        products: 20,
        ..SimOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let token = ylh_token(&client, &sim, "-dev").await;
    for (so_id, field, value) in [
        ("SO-T1", "distributionTime", json!("2026-12-05")),
        ("SO-T2", "installTime", json!("1796486399000")),
        ("SO-T3", "installTime", json!(1.5)),
    ] {
        let mut body = order(&sim, so_id);
        body[field] = value;
        let (status, reply) = push(&client, &sim, &token, &body).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reply["errCode"], "PARAM_MISSING", "{reply}");
        assert!(reply["errorMsg"].as_str().unwrap().contains(field), "{reply}");
        assert!(sim.order(so_id).is_none());
    }
    let mut absent = order(&sim, "SO-T4");
    absent["distributionTime"] = Value::Null;
    absent["installTime"] = Value::Null;
    absent["deliveryInstall"] = json!("false");
    let (_, reply) = push(&client, &sim, &token, &absent).await.unwrap();
    assert_eq!(reply["success"], true, "{reply}");
}

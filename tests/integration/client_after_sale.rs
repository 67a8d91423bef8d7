//! YLH's after-sale calls (reschedule, delivery photos, express and serial numbers) from the
//! client against the simulator, and the simulator's own answers to bodies the client would
//! never send.

use crate::support::{spawn_app_with, taken_orders, ylh_token, Options, TestApp, FIRST_DATE_MS};
use haier_sync::haier::paths;
use haier_sync::haier::{HaierError, PhotoScene};
use haier_sync::simulator::{Rescheduled, SimOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// 2026-12-24 23:59:59 and 2026-12-25 23:59:59 Beijing time, as epoch ms.
const DEC_24: i64 = 1_798_127_999_000;
const DEC_25: i64 = 1_798_214_399_000;

async fn app_with_taken_orders(n: usize) -> (TestApp, Vec<(String, String)>) {
    let app = spawn_app_with(
        Options::default()
            .sim(SimOptions {
                products: 20,
                callback_delay_ms: 0,
                delivery_after_ms: 3_600_000,
                ..SimOptions::default()
            })
            .listed_products(20),
    )
    .await;
    let orders = taken_orders(&app, "SO-AS", n).await;
    (app, orders)
}

/// `GET /_sim/orders`, as an operator reads it.
async fn sim_orders(app: &TestApp) -> Vec<Value> {
    reqwest::get(format!("{}/_sim/orders", app.sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reschedule_of_a_taken_order_is_recorded_by_haier_and_checked_before_sending() {
    let (app, orders) = app_with_taken_orders(1).await;
    let (so_id, haier_order_no) = &orders[0];
    let client = &app.ctx.client;

    assert!(client.reschedule(haier_order_no, DEC_24, DEC_25).await.unwrap());
    assert_eq!(
        app.sim.order(so_id).unwrap().rescheduled,
        Some(Rescheduled {
            distribution_time: DEC_24,
            install_time: DEC_25,
            times: 1
        })
    );
    let listed = sim_orders(&app).await;
    assert_eq!(listed[0]["rescheduled"]["distributionTime"], DEC_24);
    assert_eq!(listed[0]["rescheduled"]["installTime"], DEC_25);

    // A time that is not 23:59:59 Beijing time is refused before anything is sent.
    let sent = app.sim.stats().requests.order_reschedule;
    let noon = DEC_24 - 12 * 3_600_000;
    let refused = client.reschedule(haier_order_no, noon, DEC_25).await.unwrap_err();
    assert!(
        matches!(&refused, HaierError::InvalidRequest { operation: "order_reschedule", message } if message.contains("23:59:59")),
        "{refused}"
    );
    assert_eq!(app.sim.stats().requests.order_reschedule, sent);

    // An order Haier does not have: its refusal, typed.
    let unknown = client
        .reschedule("SO.19990101.000001", DEC_24, DEC_25)
        .await
        .unwrap_err();
    assert!(matches!(unknown, HaierError::OrderNotFound { .. }), "{unknown}");
    assert_eq!(app.sim.stats().requests.order_reschedule, sent + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_and_express_numbers_of_taken_orders_come_with_their_scenes_and_serial_numbers() {
    let (app, orders) = app_with_taken_orders(2).await;
    let client = &app.ctx.client;

    let deliveries = client.delivery_photos(&orders[0].1).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    let photos = &deliveries[0].photos;
    let scenes: Vec<&PhotoScene> = photos.iter().map(|p| &p.scene).collect();
    assert_eq!(
        scenes,
        [
            &PhotoScene::Delivery,
            &PhotoScene::Installation,
            &PhotoScene::Installation
        ]
    );
    assert!(photos
        .iter()
        .all(|p| p.url.starts_with("https://") && p.description.is_some()));
    assert!(matches!(
        client.delivery_photos("SO.19990101.000001").await,
        Err(HaierError::OrderNotFound { .. })
    ));

    let mut asked: Vec<String> = orders.iter().map(|(_, no)| no.clone()).collect();
    asked.push("SO.19990101.000001".into());
    let shipments = client.express_and_serials(&asked).await.unwrap();
    // Two item lines of one unit each per order: two parcels, one SN each; the unknown order
    // has none.
    assert_eq!(shipments.len(), 4, "{shipments:#?}");
    for (_, no) in &orders {
        let parcels: Vec<_> = shipments.iter().filter(|s| &s.order_code == no).collect();
        assert_eq!(parcels.len(), 2);
        assert!(parcels.iter().all(|p| p.serial_numbers.len() == 1
            && p.carrier_name.as_deref() == Some("日日顺物流")
            && !p.express_no.is_empty()
            && !p.delivery_record_code.is_empty()));
    }

    // More than 100 numbers, or none, are refused before anything is sent.
    let sent = app.sim.stats().requests.express_numbers;
    let many: Vec<String> = (0..101).map(|i| format!("SO.20261201.{i:06}")).collect();
    assert!(matches!(
        client.express_and_serials(&many).await,
        Err(HaierError::InvalidRequest {
            operation: "express_numbers",
            ..
        })
    ));
    assert!(client.express_and_serials(&[]).await.is_err());
    assert_eq!(app.sim.stats().requests.express_numbers, sent);
    assert_eq!(app.sim.stats().requests.delivery_photos, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_malformed_after_sale_bodies_with_the_envelope() {
    let (app, orders) = app_with_taken_orders(1).await;
    let http = reqwest::Client::new();
    let token = ylh_token(&http, &app.sim, "-dev").await;
    let post = |path: String, body: Value| {
        let (http, token) = (http.clone(), token.clone());
        let url = format!("{}{path}", app.sim.base_url());
        async move {
            let reply = http
                .post(url)
                .header("Authorization", format!("bearer {token}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::OK);
            reply.json::<Value>().await.unwrap()
        }
    };
    let express = paths::express_numbers_path("-dev");
    let not_a_list = post(express.clone(), json!({"orderCode": orders[0].1})).await;
    assert_eq!(
        (not_a_list["success"].clone(), not_a_list["errCode"].clone()),
        (json!(false), json!("PARAM_MISSING"))
    );
    let many: Vec<String> = (0..101).map(|i| format!("SO.20261201.{i:06}")).collect();
    let too_many = post(express.clone(), json!(many)).await;
    assert_eq!(too_many["errCode"], "TOO_MANY_CODES");
    let fine = post(express, json!([orders[0].1])).await;
    assert_eq!(fine["success"], true);
    assert_eq!(fine["data"][0]["logisticsList"].as_array().unwrap().len(), 2);

    // The reschedule's times are numbers at 23:59:59 Beijing time, for an order Haier took.
    let reschedule = paths::reschedule_path("-dev");
    let body = |no: &str, d: Value| json!({"retailOrderNo": no, "distributionTime": d, "installTime": FIRST_DATE_MS});
    let noon = post(reschedule.clone(), body(&orders[0].1, json!(DEC_24 - 43_200_000))).await;
    assert_eq!(
        (noon["success"].clone(), noon["errCode"].clone()),
        (json!(false), json!("PARAM_MISSING"))
    );
    let text = post(reschedule.clone(), body(&orders[0].1, json!(DEC_24.to_string()))).await;
    assert_eq!(text["success"], false);
    let unknown = post(reschedule.clone(), body("SO.19990101.000001", json!(DEC_24))).await;
    assert_eq!(unknown["errCode"], "ORDER_NOT_FOUND");
    let taken = post(reschedule, body(&orders[0].1, json!(DEC_24))).await;
    assert_eq!(
        (taken["success"].clone(), taken["data"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(app.sim.stats().requests.order_reschedule, 4);
}

//! The logistics job's second half: express numbers and serial numbers of taken orders, asked
//! 100 Haier order numbers per call and stored in `haier_order_shipments`; and logistics times in
//! all three of Haier's shapes, ordered by when they happened.

use crate::support::{spawn_app_with, taken_orders, wait_for, Options, TestApp};
use haier_sync::cli::outbox_show::render_history;
use haier_sync::config::SyncKind;
use haier_sync::db::logistics;
use haier_sync::orders::history::load_history;
use haier_sync::orders::shipments;
use haier_sync::runs::RunStatus;
use haier_sync::simulator::{Faults, SimOptions};
use haier_sync::sync::RunOverrides;
use std::time::Duration;

async fn app(delivery_after_ms: u64, faults: Faults) -> TestApp {
    spawn_app_with(
        Options::default()
            .sim(SimOptions {
                products: 20,
                callback_delay_ms: 0,
                delivery_after_ms,
                faults,
                ..SimOptions::default()
            })
            .listed_products(20),
    )
    .await
}

async fn shipment_count(app: &TestApp) -> i64 {
    app.query(shipments::count).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_numbers_of_250_taken_orders_are_asked_in_three_calls_and_stored() {
    let app = app(3_600_000, Faults::default()).await;
    let orders = taken_orders(&app, "SO-SHIP", 250).await;

    let outcome = app.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    assert_eq!(app.sim.stats().requests.express_numbers, 3);
    // Two item lines per order: two parcels each.
    assert_eq!(shipment_count(&app).await, 500);
    let log = app.log(&outcome).await;
    let message = log.message.unwrap_or_default();
    assert!(
        message.contains("express numbers: 250 orders asked in 3 calls, 500 shipments stored"),
        "{message}"
    );
    let (so_id, haier_order_no) = orders[7].clone();
    let id = so_id.clone();
    let rows = app.query(move |c| shipments::for_order(c, &id)).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!((&row.so_id, &row.haier_order_no), (&so_id, &haier_order_no));
        assert_eq!(row.carrier_name.as_deref(), Some("日日顺物流"));
        assert_eq!(row.serial_numbers().len(), 1, "one unit, one SN: {row:?}");
    }
    // `outbox show` prints the same parcels, with their express and serial numbers.
    let history = load_history(app.db(), &so_id).await.unwrap().expect("the order");
    assert_eq!(history.shipments, rows);
    let text = render_history(&history, chrono_tz::Asia::Shanghai);
    for row in &rows {
        assert!(text.contains(&row.express_no), "{text}");
        for sn in row.serial_numbers() {
            assert!(text.contains(&sn), "{text}");
        }
    }

    // Not delivered yet: asked again next run, and the rows are updated, not repeated.
    app.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(app.sim.stats().requests.express_numbers, 6);
    assert_eq!(shipment_count(&app).await, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_orders_with_shipments_are_not_asked_again() {
    // Delivered as soon as Haier takes them.
    let app = app(0, Faults::default()).await;
    taken_orders(&app, "SO-DONE", 3).await;

    let outcome = app.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    assert!(outcome.message.as_deref().unwrap().contains("3 newly delivered"));
    // Delivered in this run, but with no shipment stored yet: asked once.
    assert_eq!(app.sim.stats().requests.express_numbers, 1);
    assert_eq!(shipment_count(&app).await, 6);

    let outcome = app.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(outcome.counts.total, 0);
    assert_eq!(app.sim.stats().requests.express_numbers, 1);
    assert_eq!(app.sim.stats().requests.logistics, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logistics_times_in_three_shapes_give_the_newest_state_by_time() {
    // Four states a second apart, their times as text, a date alone, epoch ms as a number and
    // as a string. By text, the first state would look the newest.
    let app = app(
        3_000,
        Faults {
            logistics_time_shapes: true,
            ..Faults::default()
        },
    )
    .await;
    let orders = taken_orders(&app, "SO-TIME", 1).await;
    let rows = wait_for(
        "the order delivered",
        Duration::from_secs(20),
        || async {
            app.run(SyncKind::Logistics, RunOverrides::default()).await;
            app.query(logistics::all).await
        },
        |rows| !rows.is_empty() && rows.iter().all(|r| r.delivered),
    )
    .await;
    let row = &rows[0];
    assert_eq!(row.order_code, orders[0].1);
    assert_eq!(row.state_code.as_deref(), Some("DELIVERED"), "{row:?}");
    // Stored in one shape, whatever shape Haier sent.
    let time = row.state_time.clone().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(&time, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{time}"
    );
}

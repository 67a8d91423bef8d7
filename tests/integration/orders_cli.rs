//! `haier-sync outbox enqueue` and `retry` as library calls: what is inserted, what is refused
//! and why.

use crate::support::*;
use haier_sync::orders::{enqueue_orders, retry_order, Enqueued, OutboxStatus, Retried};
use serde_json::json;

#[tokio::test]
async fn enqueue_inserts_valid_orders_and_names_the_field_of_each_rejection() {
    let app = spawn_app().await;
    seed_products(app.db(), &["P1", "P2"]).await;
    let good = order_json("SO-1", &["P1", "P2"]);
    let mut no_consignee = order_json("SO-2", &["P1"]);
    no_consignee.as_object_mut().unwrap().remove("consigneeName");
    let mut bad_total = order_json("SO-3", &["P1"]);
    bad_total["totalQty"] = json!(3);
    let unknown = order_json("SO-4", &["GD0XXXX"]);
    let mut zero = order_json("SO-5", &["P1"]);
    zero["itemList"][0]["itemQty"] = json!(0);
    zero["totalQty"] = json!(0);
    let mut bool_flag = order_json("SO-6", &["P2"]);
    bool_flag["deliveryInstall"] = json!(false);
    let text = json!([
        good,
        no_consignee,
        bad_total,
        unknown,
        zero,
        bool_flag,
        order_json("SO-1", &["P1"])
    ])
    .to_string();

    let results = enqueue_orders(app.db(), &text).await.unwrap();
    let rejected: Vec<(String, String)> = results
        .iter()
        .filter_map(|r| match r {
            Enqueued::Rejected { order, reason } => Some((order.clone(), reason.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        [
            ("SO-2".to_owned(), "consigneeName is missing".to_owned()),
            (
                "SO-3".to_owned(),
                "totalQty 3 does not equal the sum of itemQty 1".to_owned()
            ),
            (
                "SO-4".to_owned(),
                "itemList[0].productCode GD0XXXX is not a Haier product for sale".to_owned()
            ),
            (
                "SO-5".to_owned(),
                "itemList[0].itemQty must be at least 1 (got 0)".to_owned()
            ),
            (
                "SO-1".to_owned(),
                "soId SO-1 is in the outbox already (status pending)".to_owned()
            ),
        ]
    );
    let rows = all_rows(app.db()).await;
    let mut so_ids: Vec<&str> = rows.iter().map(|r| r.so_id.as_str()).collect();
    so_ids.sort();
    assert_eq!(so_ids, ["SO-1", "SO-6"]);
    let flagged = row(app.db(), "SO-6").await;
    assert_eq!(flagged.status, OutboxStatus::Pending);
    assert_eq!(flagged.online_no, "ON-SO-6");
    assert!(
        flagged.payload.contains("\"deliveryInstall\":\"false\""),
        "normalised: {}",
        flagged.payload
    );
}

#[tokio::test]
async fn enqueue_refuses_every_order_before_the_first_products_sync() {
    let app = spawn_app().await;
    let results = enqueue_orders(app.db(), &order_json("SO-1", &["P1"]).to_string())
        .await
        .unwrap();
    assert!(
        matches!(&results[..], [Enqueued::Rejected { reason, .. }] if reason.to_string().contains("run the products job first"))
    );
    assert!(all_rows(app.db()).await.is_empty());
}

#[tokio::test]
async fn retry_moves_only_a_dead_order_back_to_pending() {
    let app = spawn_app().await;
    insert_by_sql(app.db(), "SO-1", "ON-SO-1", &order_json("SO-1", &["P1"])).await;
    assert_eq!(
        retry_order(app.db(), "SO-1").await.unwrap(),
        Retried::NotDead {
            status: OutboxStatus::Pending
        }
    );
    assert_eq!(retry_order(app.db(), "SO-404").await.unwrap(), Retried::NotFound);

    app.db()
        .run(|conn| {
            use diesel::prelude::*;
            use haier_sync::db::schema::haier_order_outbox::dsl;
            diesel::update(dsl::haier_order_outbox)
                .set((
                    dsl::status.eq("dead"),
                    dsl::attempts.eq(10_i64),
                    dsl::last_error.eq("gave up"),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(retry_order(app.db(), "SO-1").await.unwrap(), Retried::Pending);
    let row = row(app.db(), "SO-1").await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
}

//! Orders Haier has taken: pushed to the simulator (which confirms them at once when its
//! `callback_delay_ms` is 0) and written to the outbox as `confirmed` with their Haier order no.,
//! as the confirm callback leaves them.

use super::app::TestApp;
use super::orders::order_json;
use diesel::prelude::*;
use futures::StreamExt;
use haier_sync::db::now_utc;
use haier_sync::db::schema::haier_order_outbox::dsl;
use haier_sync::haier::Order;
use serde_json::Value;

/// 2026-12-20 23:59:59 Beijing time, as epoch ms: the delivery and installation time the orders
/// of [`taken_orders`] were written with.
pub const FIRST_DATE_MS: i64 = 1_797_782_399_000;

/// `n` orders `<prefix>-<i>` of two items each, taken by the simulator and written to the outbox
/// as confirmed, with `distributionTime` and `installTime` [`FIRST_DATE_MS`] in their payload.
/// Returns (soId, Haier order no.) pairs, in order.
pub async fn taken_orders(app: &TestApp, prefix: &str, n: usize) -> Vec<(String, String)> {
    let payloads: Vec<Value> = (0..n)
        .map(|i| {
            let so_id = format!("{prefix}-{i:04}");
            let mut payload = order_json(&so_id, &[app.code(i), app.code(i + 1)]);
            payload["distributionTime"] = FIRST_DATE_MS.into();
            payload["installTime"] = FIRST_DATE_MS.into();
            payload
        })
        .collect();
    let client = app.ctx.client.clone();
    let pushed: Vec<String> = futures::stream::iter(payloads.iter().cloned())
        .map(|payload| {
            let client = client.clone();
            async move {
                let mut order = payload.clone();
                // The client's order type carries the times as text; the simulator needs none.
                let fields = order.as_object_mut().unwrap();
                fields.remove("distributionTime");
                fields.remove("installTime");
                let order: Order = serde_json::from_value(order).unwrap();
                client.push_order(&order).await.unwrap();
                order.so_id
            }
        })
        .buffered(16)
        .collect()
        .await;
    let rows: Vec<(String, String, String)> = pushed
        .iter()
        .zip(&payloads)
        .map(|(so_id, payload)| {
            let ext = app
                .sim
                .order(so_id)
                .and_then(|o| o.ext_order_no)
                .unwrap_or_else(|| panic!("the simulator took {so_id}"));
            (so_id.clone(), ext, payload.to_string())
        })
        .collect();
    let written = rows.clone();
    app.db()
        .run(move |conn| {
            conn.transaction(|conn| {
                let now = now_utc();
                for (so_id, ext, payload) in &written {
                    diesel::insert_into(dsl::haier_order_outbox)
                        .values((
                            dsl::so_id.eq(so_id),
                            dsl::online_no.eq(format!("ON-{so_id}")),
                            dsl::payload.eq(payload),
                            dsl::status.eq("confirmed"),
                            dsl::haier_order_no.eq(Some(ext)),
                            dsl::pushed_at.eq(Some(now)),
                            dsl::confirmed_at.eq(Some(now)),
                            dsl::next_attempt_at.eq(now),
                            dsl::created_at.eq(now),
                            dsl::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                }
                diesel::QueryResult::Ok(())
            })?;
            Ok(())
        })
        .await
        .unwrap();
    rows.into_iter().map(|(so_id, ext, _)| (so_id, ext)).collect()
}

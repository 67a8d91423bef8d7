//! Which order a callback means, through the real receiver and the simulator: callbacks that name
//! the shop's `onlineNo`, sub-orders that share one (kept `unmatched`, then attached with the
//! `haier-sync outbox attach` binary), and time stamps that are old, ahead or unreadable (never a
//! reason to refuse a signed callback).

use crate::support::*;
use chrono::{Duration, Utc};
use haier_sync::orders::events::OrderEvent;
use haier_sync::orders::notices::METHOD_CONFIRM;
use haier_sync::orders::{CallbackOutcome, OutboxStatus};
use haier_sync::simulator::{Faults, SimOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

/// Runs `haier-sync <args>` on the app's config; returns the exit code and stdout and stderr.
async fn haier_sync(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::from(command(app.config_path(), args))
        .output()
        .await
        .expect("run haier-sync");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The unmatched callbacks as `outbox events --unmatched --json` prints them.
async fn unmatched_listed(app: &TestApp) -> Vec<Value> {
    let (code, out, err) = haier_sync(app, &["outbox", "events", "--unmatched", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Vec<Value>>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn status_unmatched(app: &TestApp) -> i64 {
    let (code, out, err) = haier_sync(app, &["status", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    status["callbacks_unmatched"].as_i64().expect("a count")
}

async fn metric(app: &TestApp, name: &str) -> String {
    let text = reqwest::get(format!("{}/metrics", app.receiver().base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .to_owned()
}

/// Sets simulator faults at run time, as an operator with curl would.
async fn set_sim_faults(app: &TestApp, update: Value) {
    let reply = reqwest::Client::new()
        .post(format!("{}/_sim/faults", app.sim.base_url()))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", reply.text().await.unwrap());
}

fn quick(faults: Faults) -> SimOptions {
    SimOptions {
        products: 100,
        callback_delay_ms: 20,
        callback_retry_base_ms: 50,
        faults,
        ..SimOptions::default()
    }
}

/// `so_id`'s order, pushed under the shop order number `online_no`.
fn sub_order(so_id: &str, online_no: &str, code: &str) -> (String, String, String) {
    let mut order = order_json(so_id, &[code]);
    order["onlineNo"] = json!(online_no);
    (so_id.to_owned(), online_no.to_owned(), order.to_string())
}

#[tokio::test]
async fn two_hundred_orders_confirmed_by_callbacks_that_name_the_online_no_two_hours_late() {
    let app = spawn_app_with(Options::orders(quick(Faults {
        callback_names_online_no: true,
        callback_clock_offset_secs: -7_200,
        ..Faults::default()
    })))
    .await;
    let ids = insert_many_by_sql(app.db(), "SO", 200, &[app.code(0)]).await;
    let pushed: i64 = app.push_all_due().await.iter().map(|c| c.success).sum();
    assert_eq!(pushed, 200);
    app.wait_for_orders(StdDuration::from_secs(60), |rows| {
        rows.len() == 200 && rows.iter().all(|r| r.status == OutboxStatus::Confirmed)
    })
    .await;
    for row in all_rows(app.db()).await {
        let haier = app.sim.order(&row.so_id).expect("Haier has every order");
        assert_eq!(row.haier_order_no, haier.ext_order_no, "{}", row.so_id);
    }
    let events = events(app.db()).await;
    let applied: Vec<&OrderEvent> = events
        .iter()
        .filter(|e| e.outcome == CallbackOutcome::Applied)
        .collect();
    assert_eq!(applied.len(), 200, "each confirm applied once");
    for event in applied {
        let so_id = event.so_id.as_deref().unwrap();
        assert!(ids.iter().any(|id| id == so_id));
        assert_eq!(
            event.platform_order_no.as_deref(),
            Some(format!("ON-{so_id}").as_str()),
            "the callback named the onlineNo"
        );
        let skew = event.clock_skew_secs.expect("a readable TimeStamp");
        assert!((-7_230..=-7_170).contains(&skew), "{so_id}: skew {skew}");
        assert!(event.ext_order_no.is_some());
    }
    assert!(events.iter().all(|e| e.outcome != CallbackOutcome::Rejected));
}

#[tokio::test]
async fn confirms_of_sub_orders_sharing_an_online_no_are_kept_and_attached_by_the_cli() {
    let app = spawn_app_with(Options::orders(SimOptions {
        callback_max_attempts: 1,
        ..quick(Faults::default())
    }))
    .await;
    set_sim_faults(&app, json!({"callback_names_online_no": true})).await;
    let code = app.code(0).to_owned();
    insert_orders_by_sql(
        app.db(),
        vec![
            sub_order("SO-A", "ON-SHARED", &code),
            sub_order("SO-B", "ON-SHARED", &code),
        ],
    )
    .await;
    app.push_all_due().await;
    let kept = wait_for(
        "both confirms kept as unmatched",
        DEADLINE,
        || events(app.db()),
        |events: &Vec<OrderEvent>| {
            events
                .iter()
                .filter(|e| e.outcome == CallbackOutcome::Unmatched)
                .count()
                == 2
        },
    )
    .await;
    for event in &kept {
        assert_eq!(event.so_id, None);
        let detail = event.detail.as_deref().unwrap();
        assert!(detail.contains("2 orders share onlineNo ON-SHARED"), "{detail}");
    }
    for so_id in ["SO-A", "SO-B"] {
        assert_eq!(row(app.db(), so_id).await.status, OutboxStatus::Pushed);
    }

    // Listed, counted by `status` and on /metrics.
    let listed = unmatched_listed(&app).await;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert_eq!(status_unmatched(&app).await, 2);
    assert_eq!(
        metric(&app, "haier_sync_callbacks_unmatched").await,
        "haier_sync_callbacks_unmatched 2"
    );
    let (code, table, _) = haier_sync(&app, &["outbox", "events", "--unmatched"]).await;
    assert_eq!(code, 0);
    assert!(
        table.contains("unmatched") && table.contains("ON-SHARED"),
        "{table}"
    );

    // Clear errors, nothing changed.
    let first = listed[0]["id"].as_i64().unwrap().to_string();
    let (code, _, err) = haier_sync(&app, &["outbox", "attach", &first, "SO-404"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no outbox order has soId SO-404"), "{err}");
    let (code, _, err) = haier_sync(&app, &["outbox", "attach", "999999", "SO-A"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("there is no callback 999999"), "{err}");

    // Each confirm to the order Haier gave its number for.
    let by_number: BTreeMap<String, i64> = listed
        .iter()
        .map(|e| {
            (
                e["ext_order_no"].as_str().unwrap().to_owned(),
                e["id"].as_i64().unwrap(),
            )
        })
        .collect();
    for so_id in ["SO-A", "SO-B"] {
        let number = app.sim.order(so_id).unwrap().ext_order_no.unwrap();
        let id = by_number[&number].to_string();
        let (code, out, err) = haier_sync(&app, &["outbox", "attach", &id, so_id]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("attached to {so_id}: applied")), "{out}");
        let order = row(app.db(), so_id).await;
        assert_eq!(order.status, OutboxStatus::Confirmed);
        assert_eq!(order.haier_order_no.as_deref(), Some(number.as_str()));
        // Again: nothing changes.
        let (code, out, _) = haier_sync(&app, &["outbox", "attach", &id, so_id]).await;
        assert_eq!(code, 0);
        assert!(out.contains("nothing changed"), "{out}");
        assert_eq!(row(app.db(), so_id).await.confirmed_at, order.confirmed_at);
    }
    assert_eq!(status_unmatched(&app).await, 0);
    assert!(unmatched_listed(&app).await.is_empty());
    assert_eq!(
        metric(&app, "haier_sync_callbacks_unmatched").await,
        "haier_sync_callbacks_unmatched 0"
    );

    // An event that is not unmatched cannot be attached.
    let (_, reply) = post_form(
        &app.receiver().callback_url(),
        &signed_form(METHOD_CONFIRM, "{}", Utc::now(), APP_KEY, "wrong"),
    )
    .await;
    assert_eq!(reply["code"], "bad_sign");
    let rejected = events(app.db()).await.last().unwrap().id.to_string();
    let (code, _, err) = haier_sync(&app, &["outbox", "attach", &rejected, "SO-A"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("is rejected, not unmatched"), "{err}");

    // Haier's later callbacks about these orders match by its order number.
    let number = app.sim.order("SO-A").unwrap().ext_order_no.unwrap();
    let oos =
        format!(r#"{{"ExtOrderNo":"{number}","PlatformOrderNo":"ON-SHARED","State":1,"FailMsg":"缺货"}}"#);
    let (_, reply) = post_form(
        &app.receiver().callback_url(),
        &signed_form(
            haier_sync::orders::notices::METHOD_OUT_OF_STOCK,
            &oos,
            Utc::now(),
            APP_KEY,
            SECRET,
        ),
    )
    .await;
    assert_eq!(reply["success"], true, "{reply}");
    assert!(row(app.db(), "SO-A").await.out_of_stock_at.is_some());
    assert!(row(app.db(), "SO-B").await.out_of_stock_at.is_none());
}

#[tokio::test]
async fn retries_of_an_unmatched_confirm_keep_their_first_time_stamp_and_are_attached_with_it() {
    let app = spawn_app_with(Options::orders(SimOptions {
        callback_max_attempts: 3,
        ..quick(Faults {
            callback_names_online_no: true,
            callback_keep_first_timestamp: true,
            ..Faults::default()
        })
    }))
    .await;
    let code = app.code(0).to_owned();
    insert_orders_by_sql(
        app.db(),
        vec![
            sub_order("SO-A", "ON-SHARED", &code),
            sub_order("SO-B", "ON-SHARED", &code),
        ],
    )
    .await;
    app.push_all_due().await;
    let kept = wait_for(
        "three tries of each confirm kept",
        DEADLINE,
        || events(app.db()),
        |events: &Vec<OrderEvent>| events.len() == 6,
    )
    .await;
    assert!(kept.iter().all(|e| e.outcome == CallbackOutcome::Unmatched));
    let mut stamps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in &kept {
        let raw: Value = serde_json::from_str(&event.raw).unwrap();
        stamps
            .entry(event.ext_order_no.clone().unwrap())
            .or_default()
            .push(raw["TimeStamp"].as_str().unwrap().to_owned());
    }
    assert_eq!(stamps.len(), 2);
    for (number, tries) in &stamps {
        assert_eq!(tries.len(), 3, "{number}");
        assert!(tries.iter().all(|t| t == &tries[0]), "{number}: {tries:?}");
    }

    let number = app.sim.order("SO-A").unwrap().ext_order_no.unwrap();
    let id = kept
        .iter()
        .find(|e| e.ext_order_no.as_deref() == Some(number.as_str()))
        .unwrap()
        .id
        .to_string();
    let (code, out, err) = haier_sync(&app, &["outbox", "attach", &id, "SO-A"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 stored retries"), "{out}");
    assert_eq!(status_unmatched(&app).await, 3);
    assert_eq!(
        row(app.db(), "SO-A").await.haier_order_no.as_deref(),
        Some(number.as_str())
    );
}

#[tokio::test]
async fn signed_callbacks_with_any_time_stamp_are_applied_and_the_skew_recorded() {
    let app = spawn_app_with(Options::default().callbacks(Callbacks::InProcess)).await;
    for so_id in ["SO-1", "SO-2", "SO-3"] {
        insert_by_sql(
            app.db(),
            so_id,
            &format!("ON-{so_id}"),
            &order_json(so_id, &["P1"]),
        )
        .await;
    }
    let url = app.receiver().callback_url();
    let confirm = |so_id: &str| {
        format!(
            r#"{{"ExtOrderNo":"SO.20261201.00000{}","PlatformOrderNo":"{so_id}","State":1}}"#,
            &so_id[3..]
        )
    };

    // Two hours old: applied once; the very same callback again changes nothing.
    let late = signed_form(
        METHOD_CONFIRM,
        &confirm("SO-1"),
        Utc::now() - Duration::hours(2),
        APP_KEY,
        SECRET,
    );
    let (status, reply) = post_form(&url, &late).await;
    assert_eq!((status, reply["success"].clone()), (200, true.into()), "{reply}");
    let confirmed = row(app.db(), "SO-1").await;
    assert_eq!(confirmed.status, OutboxStatus::Confirmed);
    let (_, reply) = post_form(&url, &late).await;
    assert_eq!(reply["success"], true, "a replay is acknowledged");
    assert_eq!(row(app.db(), "SO-1").await, confirmed, "a replay changes nothing");

    // A day ahead, and a TimeStamp that cannot be read: applied all the same.
    let ahead = signed_form(
        METHOD_CONFIRM,
        &confirm("SO-2"),
        Utc::now() + Duration::days(1),
        APP_KEY,
        SECRET,
    );
    assert_eq!(post_form(&url, &ahead).await.1["success"], true);
    let mut fields: Vec<(String, String)> = vec![
        ("AppKey".into(), APP_KEY.into()),
        ("TimeStamp".into(), "2026-12-01 10:00:00".into()),
        ("Method".into(), METHOD_CONFIRM.into()),
        ("Data".into(), confirm("SO-3")),
    ];
    let sign = sim_sign(&fields, SECRET);
    fields.push(("Sign".into(), sign));
    assert_eq!(post_form(&url, &fields).await.1["success"], true);
    for so_id in ["SO-2", "SO-3"] {
        assert_eq!(
            row(app.db(), so_id).await.status,
            OutboxStatus::Confirmed,
            "{so_id}"
        );
    }

    let events = events(app.db()).await;
    let summary: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.outcome.as_str(), e.so_id.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("applied", Some("SO-1")),
            ("duplicate", Some("SO-1")),
            ("applied", Some("SO-2")),
            ("applied", Some("SO-3")),
        ]
    );
    let skew = |i: usize| events[i].clock_skew_secs;
    assert!(
        matches!(skew(0), Some(s) if (-7_205..=-7_199).contains(&s)),
        "{:?}",
        skew(0)
    );
    assert!(
        matches!(skew(2), Some(s) if (86_395..=86_400).contains(&s)),
        "{:?}",
        skew(2)
    );
    assert_eq!(skew(3), None);
    let detail = events[3].detail.as_deref().unwrap();
    assert!(
        detail.ends_with("TimeStamp 2026-12-01 10:00:00 is not yyyyMMddHHmmss; applied all the same"),
        "{detail}"
    );
    assert_eq!(events[0].ext_order_no.as_deref(), Some("SO.20261201.000001"));
}

//! `haier-sync outbox enqueue` and `retry` as library calls: what is inserted, what is refused
//! and why; `outbox reschedule` and `photos` through the binary against the simulator.

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

/// Sets an order `dead` with `last_error`, gone dead `hours_ago`.
async fn make_dead(app: &TestApp, so_id: &str, last_error: &str, hours_ago: i64) {
    let (so_id, last_error) = (so_id.to_owned(), last_error.to_owned());
    app.db()
        .run(move |conn| {
            use diesel::prelude::*;
            use haier_sync::db::schema::haier_order_outbox::dsl;
            let at = haier_sync::db::now_utc() - chrono::Duration::hours(hours_ago);
            diesel::update(dsl::haier_order_outbox.filter(dsl::so_id.eq(so_id)))
                .set((
                    dsl::status.eq("dead"),
                    dsl::attempts.eq(10_i64),
                    dsl::last_error.eq(last_error),
                    dsl::updated_at.eq(at),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bulk_retry_sends_again_exactly_the_dead_orders_its_dry_run_listed() {
    let app = spawn_app().await;
    for so_id in ["SO-A", "SO-B", "SO-C", "SO-D", "SO-E"] {
        insert_by_sql(
            app.db(),
            so_id,
            &format!("ON-{so_id}"),
            &order_json(so_id, &["P1"]),
        )
        .await;
    }
    make_dead(&app, "SO-A", "YLH order_push: Timeout after 15 s", 1).await;
    make_dead(&app, "SO-B", "YLH order_push: TIMEOUT after 15 s", 1).await;
    make_dead(&app, "SO-C", "YLH order_push: timeout after 15 s", 5).await;
    make_dead(&app, "SO-D", "itemList[0].productCode GD0X is not for sale", 1).await;
    // SO-E stays pending.
    let cli = |args: &[&str]| {
        let output = command(app.config_path(), args).output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let filter = [
        "outbox",
        "retry",
        "--status",
        "dead",
        "--since",
        "2h",
        "--error-like",
        "timeout",
    ];

    let (code, dry, stderr) = cli(&[&filter[..], &["--dry-run"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        dry,
        "SO-A\nSO-B\n2 dead order(s) would be retried (dry run: nothing changed)\n"
    );
    let statuses = || async {
        let mut rows = all_rows(app.db()).await;
        rows.sort_by(|a, b| a.so_id.cmp(&b.so_id));
        rows.into_iter()
            .map(|r| (r.so_id, r.status.to_string()))
            .collect::<Vec<_>>()
    };
    let dead_before = statuses().await;
    assert_eq!(dead_before.iter().filter(|(_, s)| s == "dead").count(), 4);

    let (code, out, stderr) = cli(&filter);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.starts_with("SO-A\nSO-B\n2 dead order(s) are pending again"),
        "{out}"
    );
    let after = statuses().await;
    let moved: Vec<&str> = after
        .iter()
        .zip(&dead_before)
        .filter(|((_, now), (_, before))| now != before)
        .map(|((so_id, _), _)| so_id.as_str())
        .collect();
    assert_eq!(moved, ["SO-A", "SO-B"], "{after:?}");
    assert_eq!(row(app.db(), "SO-A").await.attempts, 0);

    // Without filters every dead order goes; a status other than dead is refused.
    let (code, out, _) = cli(&["outbox", "retry", "--status", "dead"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("SO-C\nSO-D\n2 dead order(s)"), "{out}");
    let (code, _, stderr) = cli(&["outbox", "retry", "SO-C", "--dry-run"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("go with --status dead"), "{stderr}");
    let (code, _, stderr) = cli(&["outbox", "retry", "--status", "pending"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("only dead orders can be retried"), "{stderr}");
    let (code, _, stderr) = cli(&["outbox", "retry", "--status", "dead", "--since", "yesterday-ish"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--since yesterday-ish"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// `outbox reschedule` and `outbox photos`, through the `haier-sync` binary against the simulator
// ---------------------------------------------------------------------------------------------

mod after_sale {
    use crate::support::{
        command, insert_by_sql, order_json, row, spawn_app_with, taken_orders, Options, TestApp,
        FIRST_DATE_MS,
    };
    use haier_sync::simulator::{Rescheduled, SimOptions};
    use serde_json::Value;

    /// 2026-12-24 and 2026-12-25, 23:59:59 Beijing time, as epoch ms.
    const DEC_24: i64 = 1_798_127_999_000;
    const DEC_25: i64 = 1_798_214_399_000;

    async fn app() -> TestApp {
        spawn_app_with(
            Options::default()
                .sim(SimOptions {
                    products: 20,
                    callback_delay_ms: 0,
                    delivery_after_ms: 3_600_000,
                    ..SimOptions::default()
                })
                .listed_products(20),
        )
        .await
    }

    /// Runs `haier-sync <args>` on the app's config: (exit code, stdout, stderr).
    async fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
        let config = app.config_path().to_owned();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            command(&config, &args).output().expect("run haier-sync")
        })
        .await
        .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reschedule_sends_the_last_second_of_each_beijing_day_and_keeps_a_date_not_given() {
        let app = app().await;
        let orders = taken_orders(&app, "SO-RS", 1).await;
        let so_id = orders[0].0.as_str();

        let (code, out, err) = cli(&app, &["outbox", "reschedule", so_id, "--delivery", "2026-12-24"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("delivery 2026-12-24 23:59:59, installation 2026-12-20 23:59:59"),
            "{out}"
        );
        let rescheduled = |times| Rescheduled {
            distribution_time: DEC_24,
            install_time: if times == 1 { FIRST_DATE_MS } else { DEC_25 },
            times,
        };
        assert_eq!(app.sim.order(so_id).unwrap().rescheduled, Some(rescheduled(1)));
        // The order keeps the times Haier took.
        let payload: Value = serde_json::from_str(&row(app.db(), so_id).await.payload).unwrap();
        assert_eq!(payload["distributionTime"], DEC_24);

        let (code, out, err) = cli(
            &app,
            &[
                "outbox",
                "reschedule",
                so_id,
                "--delivery",
                "2026-12-24",
                "--install",
                "2026-12-25",
            ],
        )
        .await;
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(app.sim.order(so_id).unwrap().rescheduled, Some(rescheduled(2)));
        assert_eq!(app.sim.stats().requests.order_reschedule, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reschedule_is_refused_here_unless_haier_has_the_order() {
        let app = app().await;
        insert_by_sql(
            app.db(),
            "SO-NEW",
            "ON-SO-NEW",
            &order_json("SO-NEW", &[app.code(0)]),
        )
        .await;

        let (code, _, err) = cli(
            &app,
            &["outbox", "reschedule", "SO-NEW", "--delivery", "2026-12-24"],
        )
        .await;
        assert_eq!(code, 1);
        assert!(err.contains("Haier has not taken SO-NEW (it is pending"), "{err}");
        let (code, _, err) = cli(
            &app,
            &["outbox", "reschedule", "SO-404", "--delivery", "2026-12-24"],
        )
        .await;
        assert_eq!(code, 1);
        assert!(err.contains("no outbox order has soId SO-404"), "{err}");
        let (code, _, err) = cli(
            &app,
            &["outbox", "reschedule", "SO-NEW", "--delivery", "24.12.2026"],
        )
        .await;
        assert_eq!(code, 2);
        assert!(err.contains("YYYY-MM-DD"), "{err}");
        let (code, _, err) = cli(&app, &["outbox", "photos", "SO-NEW"]).await;
        assert_eq!(code, 1);
        assert!(err.contains("Haier has not taken SO-NEW"), "{err}");
        let stats = app.sim.stats().requests;
        assert_eq!((stats.order_reschedule, stats.delivery_photos), (0, 0));

        let (code, help, _) = cli(&app, &["outbox", "reschedule", "--help"]).await;
        assert_eq!(code, 0);
        assert!(
            help.contains("23:59:59 Beijing time") && help.contains("--install <DATE>"),
            "{help}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn photos_print_scene_description_and_url_or_json() {
        let app = app().await;
        let orders = taken_orders(&app, "SO-PH", 1).await;
        let so_id = orders[0].0.as_str();

        let (code, out, err) = cli(&app, &["outbox", "photos", so_id]).await;
        assert_eq!(code, 0, "{out}{err}");
        for expected in [
            "scene",
            "description",
            "URL",
            "delivery",
            "installation",
            "送货签收照片",
            "https://",
        ] {
            assert!(out.contains(expected), "{expected} in\n{out}");
        }
        let (code, out, _) = cli(&app, &["outbox", "photos", so_id, "--json"]).await;
        assert_eq!(code, 0);
        let deliveries: Value = serde_json::from_str(&out).unwrap();
        let photos = deliveries[0]["photos"].as_array().unwrap();
        assert_eq!(photos.len(), 3);
        assert_eq!(photos[0]["scene"], "delivery");
        assert_eq!(deliveries[0]["order_no"], orders[0].1.as_str());
    }
}

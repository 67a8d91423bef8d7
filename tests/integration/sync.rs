//! The sync jobs against the simulator, on the suite's backend (SQLite or PostgreSQL): what they
//! write, the log rows they leave, incremental re-runs, partial failure, interruption, and
//! `run-job`'s seed-compatible flags.

use crate::support::{spawn_app_with, CancelAfter, Options, RefusingProxy, TestApp};
use diesel::prelude::*;
use haier_sync::cli::run_job::{self, RunJobArgs};
use haier_sync::config::SyncKind;
use haier_sync::db::schema::{haier_brands, haier_categories, haier_order_outbox};
use haier_sync::db::{self, logistics, prices, products, stocks};
use haier_sync::haier::{Order, OrderItem};
use haier_sync::runs::{self, RunStatus, Trigger};
use haier_sync::simulator::{invoice_price, Faults, PriceLookup, SimOptions};
use haier_sync::sync::{self, prices::NO_PRODUCTS_YET, NoProgress, RunOverrides, RunRequest};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn codes(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| s.to_string()).collect())
}

fn counties(list: &[&str]) -> RunOverrides {
    RunOverrides {
        county_codes: codes(list),
        ..RunOverrides::default()
    }
}

fn for_sale_codes(env: &TestApp) -> Vec<String> {
    env.sim
        .catalog()
        .products_for_sale()
        .iter()
        .map(|p| p.code.clone())
        .collect()
}

fn decimal(text: &Option<String>) -> Decimal {
    Decimal::from_str(text.as_deref().expect("a price")).expect("a decimal")
}

// ---------------------------------------------------------------------------------------------
// products
// ---------------------------------------------------------------------------------------------

/// The done-when's catalog size (one listing call, so cheap enough for every CI run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_listing_fills_the_catalog_and_an_unchanged_rerun_writes_nothing() {
    let env = spawn_app_with(Options::default().products(2000)).await;
    let first = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(first.status, RunStatus::Success, "{:?}", first.message);
    let log = env.log(&first).await;
    assert_eq!(
        (log.status.as_str(), log.sync_type.as_str()),
        ("success", "products")
    );
    assert_eq!(
        (log.total_count, log.success_count, log.failed_count),
        (2000, 2000, 0)
    );

    let rows = env.query(products::all).await;
    assert_eq!(rows.len(), 2000);
    let sim_product = &env.sim.catalog().products_for_sale()[7];
    let stored = rows.iter().find(|r| r.product_code == sim_product.code).unwrap();
    assert_eq!(stored.model, sim_product.model);
    assert_eq!(stored.category.as_deref(), Some(sim_product.group));
    assert_eq!(stored.brand.as_deref(), Some(sim_product.brand));
    assert_eq!(stored.image_url.as_deref(), Some(sim_product.image_url.as_str()));
    let leaflets: Vec<String> = serde_json::from_str(&stored.leaflet_urls).unwrap();
    assert_eq!(leaflets, sim_product.leaflet_urls);
    assert!(stored.is_sales && stored.delisted_at.is_none());
    let categories: i64 = env.query(|c| haier_categories::table.count().get_result(c)).await;
    let brands: i64 = env.query(|c| haier_brands::table.count().get_result(c)).await;
    assert!(
        categories >= 5,
        "categories from the product groups: {categories}"
    );
    assert!(brands >= 2, "brands from the brand names: {brands}");

    // The same catalog again: no product row is written, and the run is still a success.
    let second = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(second.status, RunStatus::Success);
    let log = env.log(&second).await;
    assert_eq!(
        (log.total_count, log.success_count, log.failed_count),
        (2000, 2000, 0)
    );
    assert!(
        log.message
            .as_deref()
            .unwrap()
            .contains("0 new, 0 changed, 2000 unchanged"),
        "{:?}",
        log.message
    );
    let again = env.query(products::all).await;
    assert_eq!(again, rows, "an unchanged catalog leaves every row as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_missing_from_a_complete_listing_are_delisted_and_come_back() {
    let env = spawn_app_with(Options::default().products(120)).await;
    assert_eq!(
        env.run(SyncKind::Products, RunOverrides::default()).await.status,
        RunStatus::Success
    );
    let all = for_sale_codes(&env);

    // The same seed with fewer products lists a prefix of the catalog: the rest is gone.
    let smaller = spawn_app_with(Options::default().products(100)).await;
    let ctx = sync::AppContext {
        client: smaller.ctx.client.clone(),
        ..env.ctx.clone()
    };
    let run = |ctx: sync::AppContext| async move {
        sync::run_job(
            &ctx,
            RunRequest::manual(
                sync::job_of_kind(&ctx.config, SyncKind::Products),
                RunOverrides::default(),
            ),
            CancellationToken::new(),
            Arc::new(NoProgress),
        )
        .await
        .unwrap()
    };
    let outcome = run(ctx).await;
    assert_eq!(outcome.status, RunStatus::Success);
    assert!(
        outcome.message.as_deref().unwrap().contains("20 delisted"),
        "{:?}",
        outcome.message
    );
    let rows = env.query(products::all).await;
    assert_eq!(rows.len(), 120, "delisted products stay, marked");
    for row in &rows {
        let gone = !all[..100].contains(&row.product_code);
        assert_eq!(row.delisted_at.is_some(), gone, "{}", row.product_code);
    }
    // Prices and stock no longer cover delisted products.
    let listed = env.query(|c| products::count_listed(c, true)).await;
    assert_eq!(listed, 100);

    // Listed again by the full catalog: re-listed.
    let outcome = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert!(
        outcome.message.as_deref().unwrap().contains("20 changed"),
        "{:?}",
        outcome.message
    );
    let rows = env.query(products::all).await;
    assert!(rows.iter().all(|r| r.delisted_at.is_none()));

    // A listing of given codes never delists.
    let outcome = smaller
        .run(
            SyncKind::Products,
            RunOverrides {
                product_codes: codes(&[&all[0]]),
                ..RunOverrides::default()
            },
        )
        .await;
    assert_eq!(outcome.status, RunStatus::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_by_code_store_them_with_local_labels_and_fail_unknown_codes() {
    let env = spawn_app_with(Options::default().products(60)).await;
    let catalog = env.sim.catalog();
    let mut wanted: Vec<String> = catalog.products_for_sale()[..45]
        .iter()
        .map(|p| p.code.clone())
        .collect();
    let extra = catalog.extra_products()[0].code.clone();
    wanted.push(extra.clone());
    wanted.push("NOSUCH001".to_owned());
    let outcome = env
        .run(
            SyncKind::Products,
            RunOverrides {
                product_codes: Some(wanted.clone()),
                local_category: Some("热水器".into()),
                local_brand: Some("海尔自营".into()),
                ..RunOverrides::default()
            },
        )
        .await;
    assert_eq!(outcome.status, RunStatus::Partial, "{:?}", outcome.message);
    assert_eq!(
        (
            outcome.counts.total,
            outcome.counts.success,
            outcome.counts.failed
        ),
        (47, 46, 1)
    );
    assert!(
        outcome.message.as_deref().unwrap().contains("NOSUCH001"),
        "{:?}",
        outcome.message
    );
    let rows = env.query(products::all).await;
    assert_eq!(rows.len(), 46);
    assert!(rows.iter().all(
        |r| r.local_category.as_deref() == Some("热水器") && r.local_brand.as_deref() == Some("海尔自营")
    ));
    let extra_row = rows.iter().find(|r| r.product_code == extra).unwrap();
    assert!(
        !extra_row.is_sales,
        "a code not placed for the customer is stored as not for sale"
    );
    assert!(extra_row.no_sales_reason.is_some());

    // A later listing without labels keeps the shop's labels.
    env.run(SyncKind::Products, RunOverrides::default()).await;
    let row = env.query(move |c| products::find(c, &wanted[0])).await.unwrap();
    assert_eq!(row.local_category.as_deref(), Some("热水器"));
}

// ---------------------------------------------------------------------------------------------
// prices
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_are_stored_exactly_and_moves_are_recorded() {
    let env = spawn_app_with(Options::default().products(300)).await;
    env.run(SyncKind::Products, RunOverrides::default()).await;
    let outcome = env.run(SyncKind::Prices, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    assert_eq!((outcome.counts.total, outcome.counts.success), (300, 300));

    let rows = env.query(prices::all).await;
    assert_eq!(rows.len(), 300);
    let mut priced = 0;
    for row in &rows {
        match env.sim.catalog().price(&row.product_code) {
            PriceLookup::InForce(p) => {
                priced += 1;
                // Exactly Haier's text, scale included.
                assert_eq!(row.supply_price.as_deref(), Some(p.supply.to_string().as_str()));
                assert_eq!(row.invoice_price.as_deref(), Some(p.invoice.to_string().as_str()));
                assert_eq!(
                    row.rebate_rate.as_deref(),
                    Some(p.rebate_rate.to_string().as_str())
                );
                assert_eq!(
                    row.rebate_money.as_deref(),
                    Some(p.rebate_money.to_string().as_str())
                );
                // invoice = supply × (1 − rate) − money, to the fen.
                let (supply, rate, money) = (
                    decimal(&row.supply_price),
                    decimal(&row.rebate_rate),
                    decimal(&row.rebate_money),
                );
                assert_eq!(decimal(&row.invoice_price), invoice_price(supply, rate, money));
                assert!(row.is_sales);
            }
            PriceLookup::NoPrice => {
                assert!(row.supply_price.is_none());
                assert!(row.reason.is_some());
            }
            PriceLookup::NotForSale => panic!("{} is for sale", row.product_code),
        }
    }
    assert!(priced > 250, "most products have a price: {priced}");
    assert!(env
        .query(|c| prices::recent_changes(c, None, 10))
        .await
        .is_empty());

    // Unchanged prices are not rewritten.
    let again = env.run(SyncKind::Prices, RunOverrides::default()).await;
    assert_eq!(again.status, RunStatus::Success);
    assert_eq!(env.query(prices::all).await, rows);

    // Haier moves some prices: the re-run records each move, old -> new.
    let mut moved: Vec<String> = Vec::new();
    for _ in 0..3 {
        moved.extend(env.sim.mutate_now().prices_changed);
    }
    moved.sort();
    moved.dedup();
    assert!(!moved.is_empty());
    let outcome = env.run(SyncKind::Prices, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Success);
    let changes = env.query(|c| prices::recent_changes(c, None, 10_000)).await;
    let mut changed: Vec<String> = changes.iter().map(|c| c.product_code.clone()).collect();
    changed.sort();
    assert_eq!(changed, moved);
    let before: HashMap<&str, &prices::PriceRow> =
        rows.iter().map(|r| (r.product_code.as_str(), r)).collect();
    for change in &changes {
        let old = before[change.product_code.as_str()];
        assert_eq!(change.old_supply_price, old.supply_price);
        assert_eq!(change.old_invoice_price, old.invoice_price);
        let PriceLookup::InForce(now) = env.sim.catalog().price(&change.product_code) else {
            panic!("a moved price is in force");
        };
        assert_eq!(
            change.new_supply_price.as_deref(),
            Some(now.supply.to_string().as_str())
        );
        assert_eq!(
            change.new_invoice_price.as_deref(),
            Some(now.invoice.to_string().as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_and_stock_with_no_products_synced_say_so() {
    let env = spawn_app_with(Options::default().products(10)).await;
    for kind in [SyncKind::Prices, SyncKind::Stock] {
        let outcome = env.run(kind, RunOverrides::default()).await;
        assert_eq!(outcome.status, RunStatus::Success);
        assert_eq!(outcome.counts.total, 0);
        assert!(outcome
            .message
            .as_deref()
            .unwrap()
            .contains("run the products job first"));
    }
    let outcome = env.run(SyncKind::Prices, RunOverrides::default()).await;
    assert_eq!(outcome.message.as_deref(), Some(NO_PRODUCTS_YET));
    let requests = env.sim.stats().requests;
    assert_eq!(requests.prices + requests.stock, 0, "no call goes out");
}

// ---------------------------------------------------------------------------------------------
// stock
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_covers_every_product_for_sale_in_each_county() {
    let env = spawn_app_with(Options::default().products(150)).await;
    env.run(SyncKind::Products, RunOverrides::default()).await;
    // A code not placed for the customer is synced too, and must be skipped.
    let extra = env.sim.catalog().extra_products()[0].code.clone();
    env.run(
        SyncKind::Products,
        RunOverrides {
            product_codes: codes(&[&extra]),
            ..RunOverrides::default()
        },
    )
    .await;

    let outcome = env.run(SyncKind::Stock, counties(&["110101", "310101"])).await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    assert_eq!((outcome.counts.total, outcome.counts.success), (300, 300));
    let rows = env.query(stocks::all).await;
    assert_eq!(rows.len(), 2 * 150);
    assert!(rows.iter().all(|r| r.product_code != extra));
    let mut with_stock = 0;
    for row in &rows {
        let warehouses = env.sim.catalog().stock(&row.product_code, &row.county_code);
        assert_eq!(
            row.stock as u64,
            env.sim.catalog().stock_total(&row.product_code, &row.county_code)
        );
        let listed: Vec<serde_json::Value> = serde_json::from_str(&row.warehouses).unwrap();
        assert_eq!(listed.len(), warehouses.len());
        if let Some(best) = warehouses.iter().max_by_key(|w| (w.stock, w.grade == 0)) {
            with_stock += 1;
            assert_eq!(row.sec_code.as_deref(), Some(best.sec_code.as_str()));
        } else {
            assert!(row.sec_code.is_none());
        }
    }
    assert!(with_stock > 100);

    // The job's own county list applies without --county-code.
    let outcome = env.run(SyncKind::Stock, RunOverrides::default()).await;
    assert_eq!(outcome.counts.total, 150, "[defaults] county_codes = [110101]");
}

// ---------------------------------------------------------------------------------------------
// logistics
// ---------------------------------------------------------------------------------------------

fn sample_order(so_id: &str, product_code: &str) -> Order {
    let amount = serde_json::Number::from_str("2399.00").unwrap();
    Order {
        source_system: "HAIER-SYNC".into(),
        shop_name: "Demo Shop".into(),
        seller_code: "8800633175".into(),
        consignee_name: "张三".into(),
        consignee_mobile: "13800000000".into(),
        online_no: format!("ON-{so_id}"),
        so_id: so_id.into(),
        total_qty: 1,
        total_amt: amount.clone(),
        create_time: 1_764_000_000_000,
        province: "北京市".into(),
        city: "北京市".into(),
        area: "东城区".into(),
        detail_address: "东长安街1号".into(),
        delivery_install: "false".into(),
        item_list: vec![OrderItem {
            product_code: product_code.into(),
            item_qty: 1,
            retail_price: amount.clone(),
            discount_amount: serde_json::Number::from(0),
            actual_price: amount,
            is_gift: None,
        }],
        remark: None,
        town: None,
        distribution_time: None,
        install_time: None,
        government_order: None,
    }
}

/// Pushes orders to the simulator and writes their outbox rows as the orders poller would;
/// returns (so_id, Haier order no.) pairs.
async fn pushed_orders(env: &TestApp, n: usize) -> Vec<(String, String)> {
    let code = for_sale_codes(env)[0].clone();
    let mut orders = Vec::new();
    for i in 0..n {
        let so_id = format!("SO-TEST-{i}");
        env.ctx
            .client
            .push_order(&sample_order(&so_id, &code))
            .await
            .unwrap();
        let ext = env
            .sim
            .order(&so_id)
            .unwrap()
            .ext_order_no
            .expect("the simulator took the order");
        let (so, no) = (so_id.clone(), ext.clone());
        env.query(move |c| insert_outbox_row(c, &so, Some(&no), "pushed"))
            .await;
        orders.push((so_id, ext));
    }
    orders
}

fn insert_outbox_row(
    conn: &mut db::DbConnection,
    so_id: &str,
    haier_order_no: Option<&str>,
    status: &str,
) -> QueryResult<usize> {
    use haier_order_outbox::dsl;
    let now = db::now_utc();
    diesel::insert_into(haier_order_outbox::table)
        .values((
            dsl::so_id.eq(so_id),
            dsl::online_no.eq(format!("ON-{so_id}")),
            dsl::payload.eq("{}"),
            dsl::status.eq(status),
            dsl::haier_order_no.eq(haier_order_no),
            dsl::pushed_at.eq(Some(now)),
            dsl::next_attempt_at.eq(now),
            dsl::created_at.eq(now),
            dsl::updated_at.eq(now),
        ))
        .execute(conn)
}

fn delivered_at_of(conn: &mut db::DbConnection, so_id: &str) -> QueryResult<Option<chrono::NaiveDateTime>> {
    use haier_order_outbox::dsl;
    dsl::haier_order_outbox
        .filter(dsl::so_id.eq(so_id))
        .select(dsl::delivered_at)
        .first(conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logistics_follow_pushed_orders_until_delivered() {
    let env = spawn_app_with(Options::default().sim(SimOptions {
        products: 20,
        callback_delay_ms: 0,
        delivery_after_ms: 600,
        ..SimOptions::default()
    }))
    .await;
    // Nothing pushed yet: nothing to do.
    let outcome = env.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!((outcome.status, outcome.counts.total), (RunStatus::Success, 0));

    let orders = pushed_orders(&env, 3).await;
    // Rows the job must leave alone: no Haier order no. yet, and a refused order.
    env.query(|c| insert_outbox_row(c, "SO-PENDING", None, "pending"))
        .await;
    env.query(|c| insert_outbox_row(c, "SO-REFUSED", Some("SO.X"), "refused"))
        .await;

    let outcome = env.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    assert_eq!((outcome.counts.total, outcome.counts.success), (3, 3));
    let rows = env.query(logistics::all).await;
    assert_eq!(rows.len(), 3);
    for (so_id, order_no) in &orders {
        let row = rows.iter().find(|r| &r.order_code == order_no).unwrap();
        assert_eq!(&row.so_id, so_id);
        assert!(row.state_code.is_some());
        assert!(!row.delivered);
    }

    tokio::time::sleep(Duration::from_millis(800)).await;
    let outcome = env.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Success);
    assert!(
        outcome.message.as_deref().unwrap().contains("3 newly delivered"),
        "{:?}",
        outcome.message
    );
    let rows = env.query(logistics::all).await;
    // (Which node counts as newest when several share a second is the client's call.)
    assert!(
        rows.iter().all(|r| r.delivered && r.state_code.is_some()),
        "{rows:#?}"
    );
    for (so_id, _) in &orders {
        let so = so_id.clone();
        assert!(env.query(move |c| delivered_at_of(c, &so)).await.is_some());
    }
    // Delivered orders are not asked about again.
    let outcome = env.run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(outcome.counts.total, 0);
}

// ---------------------------------------------------------------------------------------------
// faults, refusals, interruption
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_ends_success_when_retries_absorb_a_ten_percent_fail_rate() {
    let env = spawn_app_with(Options::default().sim(SimOptions {
        products: 200,
        callback_delay_ms: 0,
        ..SimOptions::default()
    }))
    .await;
    let orders = pushed_orders(&env, 3).await;
    env.sim
        .set_faults(Faults {
            fail_rate: 0.1,
            ..Faults::default()
        })
        .unwrap();
    for (kind, overrides) in [
        (SyncKind::Products, RunOverrides::default()),
        (SyncKind::Prices, RunOverrides::default()),
        (SyncKind::Stock, counties(&["110101", "310101"])),
        (SyncKind::Logistics, RunOverrides::default()),
    ] {
        let outcome = env.run(kind, overrides).await;
        assert_eq!(
            outcome.status,
            RunStatus::Success,
            "{kind}: {:?}",
            outcome.message
        );
        assert_eq!(outcome.counts.failed, 0);
        assert!(outcome.counts.total > 0);
    }
    assert!(env.sim.stats().faults.failed > 0, "faults were injected");
    assert_eq!(env.query(stocks::all).await.len(), 400);
    assert_eq!(env.query(logistics::all).await.len(), orders.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_refused_by_haier_fails_alone_and_the_run_ends_partial() {
    let mut sim = spawn_app_with(Options::default().sim(SimOptions {
        products: 100,
        callback_delay_ms: 0,
        ..SimOptions::default()
    }))
    .await;
    let all = for_sale_codes(&sim);
    let refused_code = all[42].clone();
    let orders = pushed_orders(&sim, 3).await;
    let refused_order = orders[1].1.clone();
    let proxy = RefusingProxy::start(
        sim.sim.base_url(),
        vec![refused_code.clone(), refused_order.clone()],
    )
    .await;
    // The same database and simulator, openplat through the refusing proxy.
    sim.reconfigure(|options| options.openplat_url = Some(proxy.base_url.clone()))
        .await;
    let env = sim.ctx.clone();
    let run = |kind: SyncKind, overrides: RunOverrides| {
        let ctx = env.clone();
        async move {
            sync::run_job(
                &ctx,
                RunRequest::manual(sync::job_of_kind(&ctx.config, kind), overrides),
                CancellationToken::new(),
                Arc::new(NoProgress),
            )
            .await
            .unwrap()
        }
    };

    // The full listing does not name codes, so it goes through.
    assert_eq!(
        run(SyncKind::Products, RunOverrides::default()).await.status,
        RunStatus::Success
    );

    // Products by code: the batch is refused, then each code is asked alone.
    let outcome = run(
        SyncKind::Products,
        RunOverrides {
            product_codes: Some(all[30..50].to_vec()),
            ..RunOverrides::default()
        },
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Partial, "{:?}", outcome.message);
    assert_eq!(
        (
            outcome.counts.total,
            outcome.counts.success,
            outcome.counts.failed
        ),
        (20, 19, 1)
    );
    assert!(outcome.message.as_deref().unwrap().contains(&refused_code));

    let outcome = run(SyncKind::Prices, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Partial, "{:?}", outcome.message);
    assert_eq!(
        (
            outcome.counts.total,
            outcome.counts.success,
            outcome.counts.failed
        ),
        (100, 99, 1)
    );
    assert!(outcome.message.as_deref().unwrap().contains(&refused_code));
    let priced = sim.query(prices::all).await;
    assert_eq!(priced.len(), 99);
    assert!(priced.iter().all(|p| p.product_code != refused_code));

    let outcome = run(SyncKind::Stock, counties(&["110101", "310101"])).await;
    assert_eq!(outcome.status, RunStatus::Partial, "{:?}", outcome.message);
    assert_eq!(
        (
            outcome.counts.total,
            outcome.counts.success,
            outcome.counts.failed
        ),
        (200, 198, 2)
    );
    assert!(outcome
        .message
        .as_deref()
        .unwrap()
        .contains(&format!("{refused_code}@110101")));
    assert_eq!(sim.query(stocks::all).await.len(), 198);

    let outcome = run(SyncKind::Logistics, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Partial, "{:?}", outcome.message);
    assert_eq!(
        (
            outcome.counts.total,
            outcome.counts.success,
            outcome.counts.failed
        ),
        (3, 2, 1)
    );
    assert!(outcome.message.as_deref().unwrap().contains(&refused_order));

    let log = sim.log(&outcome).await;
    assert_eq!((log.status.as_str(), log.failed_count), ("partial", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_fail_the_run_at_once() {
    let env = spawn_app_with(Options::default().products(50).bad_secret()).await;
    let outcome = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(
        outcome.message.as_deref().unwrap().contains("login refused"),
        "{:?}",
        outcome.message
    );
    let log = env.log(&outcome).await;
    assert_eq!(log.status, RunStatus::Failed);
    assert!(log.completed_at.is_some());

    // With products present, a prices run stops at the first refused login instead of failing
    // every item one by one.
    let codes: Vec<String> = for_sale_codes(&env);
    env.query(move |c| {
        let now = db::now_utc();
        let rows: Vec<products::ProductRow> = codes
            .iter()
            .map(|code| products::ProductRow {
                product_code: code.clone(),
                model: "M".into(),
                category: None,
                brand: None,
                image_url: None,
                leaflet_urls: "[]".into(),
                is_sales: true,
                no_sales_reason: None,
                local_category: None,
                local_brand: None,
                content_hash: "x".into(),
                first_seen_at: now,
                last_seen_at: now,
                updated_at: now,
                delisted_at: None,
                raw_hash: None,
            })
            .collect();
        products::upsert_products(c, &rows)
    })
    .await;
    let outcome = env.run(SyncKind::Prices, RunOverrides::default()).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    // No item was tried: all 50 count as failed, not reached.
    assert_eq!(
        (
            outcome.counts.total,
            outcome.counts.success,
            outcome.counts.failed
        ),
        (50, 0, 50)
    );
    let message = outcome.message.unwrap_or_default();
    assert!(message.contains("login refused"), "{message}");
    assert!(message.contains("50 not reached"), "{message}");
    assert_eq!(
        env.sim.stats().requests.prices,
        0,
        "no price call goes out without a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_closes_interrupted_with_the_counts_so_far() {
    let env = spawn_app_with(Options::default().products(300)).await;
    env.run(SyncKind::Products, RunOverrides::default()).await;
    env.sim
        .set_faults(Faults {
            latency_ms: 5,
            ..Faults::default()
        })
        .unwrap();
    let cancel = CancellationToken::new();
    let progress = Arc::new(CancelAfter {
        after: 250,
        done: AtomicU64::new(0),
        cancel: cancel.clone(),
    });
    let mut job = env.job(SyncKind::Stock);
    job.concurrency = Some(8);
    let outcome = sync::run_job(
        &env.ctx,
        RunRequest::manual(job, counties(&["110101", "310101"])),
        cancel,
        progress,
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, RunStatus::Interrupted, "{:?}", outcome.message);
    assert_eq!(outcome.counts.total, 600);
    assert!(
        outcome.counts.success >= 200 && outcome.counts.success < 600,
        "{:?}",
        outcome.counts
    );
    assert!(outcome
        .message
        .as_deref()
        .unwrap()
        .starts_with("interrupted: cancelled"));
    let log = env.log(&outcome).await;
    assert_eq!(log.status, RunStatus::Interrupted);
    assert_eq!(log.success_count, outcome.counts.success);
    // What was written is exactly what the log counts, and correct.
    let rows = env.query(stocks::all).await;
    assert_eq!(rows.len() as i64, log.success_count);
    for row in &rows {
        assert_eq!(
            row.stock as u64,
            env.sim.catalog().stock_total(&row.product_code, &row.county_code)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_timeout_is_interrupted() {
    let env = spawn_app_with(Options::default().products(200)).await;
    env.run(SyncKind::Products, RunOverrides::default()).await;
    env.sim
        .set_faults(Faults {
            latency_ms: 40,
            ..Faults::default()
        })
        .unwrap();
    let mut job = env.job(SyncKind::Stock);
    job.timeout_ms = Some(400);
    job.concurrency = Some(4);
    let started = std::time::Instant::now();
    let outcome = env.run_job(job, RunOverrides::default()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.status, RunStatus::Interrupted);
    assert!(outcome
        .message
        .as_deref()
        .unwrap()
        .contains("timed out after 400 ms"));
    assert!(outcome.counts.success < 200);
    assert_eq!(env.query(stocks::all).await.len() as i64, outcome.counts.success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_time_taken_by_another_instance_is_not_run() {
    let env = spawn_app_with(Options::default().products(10)).await;
    let tick = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
        .unwrap()
        .and_hms_opt(2, 0, 0)
        .unwrap();
    let request = RunRequest {
        job: env.job(SyncKind::Products),
        trigger: Trigger::Schedule,
        scheduled_for: Some(tick),
        overrides: RunOverrides::default(),
    };
    let first = sync::run_job(
        &env.ctx,
        request.clone(),
        CancellationToken::new(),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert_eq!(first.status, RunStatus::Success);
    // The daemon spawns runs: the future must be Send.
    let ctx = env.ctx.clone();
    let second = tokio::spawn(async move {
        sync::run_job(&ctx, request, CancellationToken::new(), Arc::new(NoProgress)).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!((second.status, second.log_id), (RunStatus::Skipped, None));
}

// ---------------------------------------------------------------------------------------------
// run-job
// ---------------------------------------------------------------------------------------------

fn run_job_args(job: &str) -> RunJobArgs {
    RunJobArgs {
        job: job.into(),
        product_codes: None,
        category: None,
        brand: None,
        sync_prices: false,
        sync_stock: false,
        county_codes: Vec::new(),
        force: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_job_with_codes_syncs_products_prices_and_stock_for_just_those_codes() {
    let env = spawn_app_with(Options::default().products(80)).await;
    let all = for_sale_codes(&env);
    let (a, b) = (all[3].clone(), all[17].clone());
    let args = RunJobArgs {
        product_codes: Some(vec![a.clone(), b.clone()]),
        category: Some("空调".into()),
        brand: Some("海尔".into()),
        sync_prices: true,
        sync_stock: true,
        county_codes: vec!["110101".into()],
        ..run_job_args("products")
    };
    let config = env.config().clone();
    let code = run_job::run(args, config).await.unwrap();
    assert_eq!(code, 0);

    let rows = env.query(products::all).await;
    let mut stored: Vec<&str> = rows.iter().map(|r| r.product_code.as_str()).collect();
    stored.sort();
    let mut wanted = vec![a.as_str(), b.as_str()];
    wanted.sort();
    assert_eq!(stored, wanted);
    assert!(rows.iter().all(|r| r.local_category.as_deref() == Some("空调")));
    let priced: Vec<String> = env
        .query(prices::all)
        .await
        .into_iter()
        .map(|p| p.product_code)
        .collect();
    assert_eq!(priced.len(), 2);
    let stock = env.query(stocks::all).await;
    assert_eq!(stock.len(), 2);
    assert!(stock.iter().all(|s| s.county_code == "110101"));

    // Three log rows, one per run, each a success.
    let logs = env
        .query(|c| {
            runs::log::list(
                c,
                &runs::LogFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
        })
        .await;
    let mut types: Vec<(&str, &str)> = logs
        .iter()
        .map(|l| (l.sync_type.as_str(), l.status.as_str()))
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            ("prices", "success"),
            ("products", "success"),
            ("stock", "success")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_job_exit_codes_follow_the_outcome_and_usage_errors_exit_two() {
    let env = spawn_app_with(Options::default().products(30)).await;
    let config = env.config().clone();
    assert_eq!(
        run_job::run(run_job_args("products"), config.clone())
            .await
            .unwrap(),
        0
    );
    // A job name from the config file works as well as a kind.
    let named = sync::job_of_kind(&config, SyncKind::Prices).name;
    assert_eq!(
        run_job::run(run_job_args(&named), config.clone()).await.unwrap(),
        0
    );

    let partial = RunJobArgs {
        product_codes: Some(vec![for_sale_codes(&env)[0].clone(), "NOSUCH001".into()]),
        ..run_job_args("products")
    };
    assert_eq!(run_job::run(partial, config.clone()).await.unwrap(), 3);

    for bad in [
        run_job_args("no-such-job"),
        run_job_args("order_outbox"),
        RunJobArgs {
            sync_prices: true,
            ..run_job_args("stock")
        },
        RunJobArgs {
            county_codes: vec!["1101".into()],
            ..run_job_args("stock")
        },
        RunJobArgs {
            county_codes: vec!["110101".into()],
            ..run_job_args("prices")
        },
        RunJobArgs {
            category: Some("x".into()),
            ..run_job_args("prices")
        },
    ] {
        let name = format!("{bad:?}");
        assert_eq!(run_job::run(bad, config.clone()).await.unwrap(), 2, "{name}");
    }
}

#[test]
fn run_job_takes_the_seeds_flags() {
    use clap::Parser;
    let cli = haier_sync::cli::Cli::try_parse_from([
        "haier-sync",
        "run-job",
        "products",
        "--product-codes",
        "A",
        "B",
        "--category",
        "冰箱",
        "--brand",
        "海尔",
        "--sync-prices",
        "--sync-stock",
        "--county-code",
        "110101",
        "--county-code",
        "310101",
    ])
    .unwrap();
    let haier_sync::cli::Command::RunJob(args) = cli.command else {
        panic!("run-job parses as RunJob");
    };
    assert_eq!(args.product_codes, Some(vec!["A".to_owned(), "B".to_owned()]));
    assert_eq!(args.county_codes, ["110101", "310101"]);
    assert!(args.sync_prices && args.sync_stock);
    assert_eq!(args.category.as_deref(), Some("冰箱"));
}

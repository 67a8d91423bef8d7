//! The products job's full listing at scale, on the suite's backend: a catalog larger than one
//! write batch and one statement, written in batches; a re-run that writes only the rows that
//! changed (new, changed, re-listed), with the sync log's counts; items decoded only when their
//! bytes changed, and written only when their content did.

use crate::support::{spawn_app_with, Options, TestApp};
use diesel::prelude::*;
use haier_sync::config::SyncKind;
use haier_sync::db::products;
use haier_sync::db::schema::haier_products;
use haier_sync::runs::log::SyncLog;
use haier_sync::runs::RunStatus;
use haier_sync::sync::RunOverrides;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// Runs the products job and asserts that it succeeded and that its sync-log row counts
/// `counts` ("5 new, 10 changed, 8985 unchanged"); returns that row.
async fn run_listing(env: &TestApp, counts: &str) -> SyncLog {
    run_listing_with(env, RunOverrides::default(), counts).await
}

/// [`run_listing`] with `overrides`.
async fn run_listing_with(env: &TestApp, overrides: RunOverrides, counts: &str) -> SyncLog {
    let outcome = env.run(SyncKind::Products, overrides).await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.message);
    let log = env.log(&outcome).await;
    assert!(
        log.message.as_deref().unwrap().contains(counts),
        "{:?}",
        log.message
    );
    log
}

/// More than one transaction (8192 changed rows) and several statements (2184 rows) of writes.
const PRODUCTS: usize = 9_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_writes_in_batches_and_a_rerun_writes_only_what_changed() {
    let env = spawn_app_with(Options::default().products(PRODUCTS)).await;
    let log = run_listing(&env, &format!("{PRODUCTS} new, 0 changed, 0 unchanged")).await;
    assert_eq!(
        (log.total_count, log.success_count, log.failed_count),
        (PRODUCTS as i64, PRODUCTS as i64, 0)
    );
    let rows = env.query(products::all).await;
    assert_eq!(rows.len(), PRODUCTS);
    let catalog = env.sim.catalog();
    let by_code: HashMap<&str, &products::Product> =
        rows.iter().map(|r| (r.product_code.as_str(), r)).collect();
    for p in catalog.products_for_sale() {
        let row = by_code[p.code.as_str()];
        assert_eq!(
            (row.model.as_str(), row.brand.as_deref()),
            (p.model.as_str(), Some(p.brand))
        );
    }

    // Change the stored state behind the job's back: 5 rows deleted (new again), 7 rows that
    // differ from what Haier lists (their content hash stale, the bytes of their item not
    // known: changed), 3 rows delisted (re-listed); the other rows must not be written.
    let codes: Vec<String> = rows.iter().map(|r| r.product_code.clone()).collect();
    let (deleted, stale, delisted) = (
        codes[100..105].to_vec(),
        codes[4000..4007].to_vec(),
        codes[8990..8993].to_vec(),
    );
    {
        let (deleted, stale, delisted) = (deleted.clone(), stale.clone(), delisted.clone());
        env.query(move |c| {
            diesel::delete(haier_products::table.filter(haier_products::product_code.eq_any(&deleted)))
                .execute(c)?;
            diesel::update(haier_products::table.filter(haier_products::product_code.eq_any(&stale)))
                .set((
                    haier_products::content_hash.eq("stale"),
                    haier_products::raw_hash.eq(None::<Vec<u8>>),
                ))
                .execute(c)?;
            products::delist(c, &delisted, haier_sync::db::now_utc())
        })
        .await;
    }
    let before: HashMap<String, products::Product> = env
        .query(products::all)
        .await
        .into_iter()
        .map(|r| (r.product_code.clone(), r))
        .collect();
    let unchanged = PRODUCTS - 5 - 7 - 3;
    let log = run_listing(&env, &format!("5 new, 10 changed, {unchanged} unchanged")).await;
    assert_eq!(
        (log.total_count, log.success_count, log.failed_count),
        (PRODUCTS as i64, PRODUCTS as i64, 0)
    );
    let after = env.query(products::all).await;
    assert_eq!(after.len(), PRODUCTS);
    let mut written = 0;
    for row in &after {
        let code = &row.product_code;
        assert!(row.delisted_at.is_none(), "{code} is listed");
        assert_ne!(row.content_hash, "stale", "{code}");
        if deleted.contains(code) || stale.contains(code) || delisted.contains(code) {
            written += 1;
            continue;
        }
        assert_eq!(Some(row), before.get(code), "{code} was not written");
    }
    assert_eq!(written, 15);
    // The rows written again equal the first listing's (but for their times).
    let first_rows: HashMap<&str, &products::Product> =
        rows.iter().map(|r| (r.product_code.as_str(), r)).collect();
    for row in after.iter().filter(|r| stale.contains(&r.product_code)) {
        let old = first_rows[row.product_code.as_str()];
        assert_eq!((&row.content_hash, &row.model), (&old.content_hash, &old.model));
        assert_eq!(
            row.first_seen_at, old.first_seen_at,
            "an update keeps first_seen_at"
        );
    }
}

/// A listing reply with these items, each as its own JSON text.
fn listing_body(items: &[String]) -> bytes::Bytes {
    format!(
        r#"{{"success":true,"code":0,"errCode":null,"data":[{}]}}"#,
        items.join(",")
    )
    .into()
}

/// The items of the simulator's listing, each as a JSON value and as its text.
fn simulator_items(env: &TestApp) -> (Vec<Value>, Vec<String>) {
    let body: Value = serde_json::from_slice(&env.sim.listing_body()).unwrap();
    let items = body["data"].as_array().unwrap().clone();
    let texts = items.iter().map(|i| serde_json::to_string(i).unwrap()).collect();
    (items, texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_is_written_when_its_content_changes_and_only_gets_its_raw_hash_when_its_bytes_do() {
    const SMALL: usize = 40;
    let env = spawn_app_with(Options::default().products(SMALL)).await;
    let (items, texts) = simulator_items(&env);
    assert_eq!(items.len(), SMALL);
    env.sim.set_listing_body(listing_body(&texts));
    let first = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(first.status, RunStatus::Success, "{:?}", first.message);
    let rows = env.query(products::all).await;
    assert_eq!(rows.len(), SMALL);
    // Every row keeps the raw hash of its item: 16 bytes, one per item.
    let hashes: HashSet<Vec<u8>> = rows
        .iter()
        .map(|r| r.raw_hash.clone().unwrap_or_default())
        .filter(|h| h.len() == 16)
        .collect();
    assert_eq!(hashes.len(), SMALL, "{rows:?}");

    // Item 3's model changes at Haier; item 7 is sent spelled otherwise (keys in another
    // order, other whitespace) with the same content.
    let code = |i: usize| items[i]["productCode"].as_str().unwrap().to_owned();
    let (changed, respelled) = (code(3), code(7));
    let mut next = texts.clone();
    let mut item = items[3].clone();
    item["productModel"] = json!("NEW-MODEL");
    next[3] = serde_json::to_string(&item).unwrap();
    let fields: Vec<(&String, &Value)> = items[7].as_object().unwrap().iter().rev().collect();
    next[7] = format!(
        "{{ {} }}",
        fields
            .iter()
            .map(|(k, v)| format!("{}: {}", json!(k), v))
            .collect::<Vec<_>>()
            .join(" ,\n ")
    );
    assert_ne!(next[7], texts[7]);
    assert_eq!(serde_json::from_str::<Value>(&next[7]).unwrap(), items[7]);
    env.sim.set_listing_body(listing_body(&next));
    let before: HashMap<String, products::Product> =
        rows.into_iter().map(|r| (r.product_code.clone(), r)).collect();
    run_listing(&env, &format!("0 new, 1 changed, {} unchanged", SMALL - 1)).await;
    let after: HashMap<String, products::Product> = env
        .query(products::all)
        .await
        .into_iter()
        .map(|r| (r.product_code.clone(), r))
        .collect();
    for (code, row) in &after {
        let old = &before[code];
        if *code == changed {
            assert_eq!(row.model, "NEW-MODEL");
            assert_ne!(row.content_hash, old.content_hash);
            assert_ne!(row.raw_hash, old.raw_hash);
            assert_eq!(row.first_seen_at, old.first_seen_at);
        } else if *code == respelled {
            // Not written: only its raw hash is the new bytes'.
            assert_ne!(row.raw_hash, old.raw_hash);
            assert_eq!(row.raw_hash.as_ref().map(Vec::len), Some(16));
            let kept = products::Product {
                raw_hash: old.raw_hash.clone(),
                ..row.clone()
            };
            assert_eq!(&kept, old, "{code} was not written");
        } else {
            assert_eq!(row, old, "{code} was not written");
        }
    }

    // The same listing again: nothing is written, not even a raw hash.
    run_listing(&env, &format!("0 new, 0 changed, {SMALL} unchanged")).await;
    let again: HashMap<String, products::Product> = env
        .query(products::all)
        .await
        .into_iter()
        .map(|r| (r.product_code.clone(), r))
        .collect();
    assert_eq!(again, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_stored_without_a_raw_hash_get_only_their_raw_hash_from_an_unchanged_listing() {
    let env = spawn_app_with(Options::default().products(PRODUCTS)).await;
    let first = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(first.status, RunStatus::Success, "{:?}", first.message);
    let written: HashMap<String, products::Product> = env
        .query(products::all)
        .await
        .into_iter()
        .map(|r| (r.product_code.clone(), r))
        .collect();
    // As rows stored before raw hashes were kept: every raw hash empty.
    let cleared = env
        .query(|c| {
            diesel::update(haier_products::table)
                .set(haier_products::raw_hash.eq(None::<Vec<u8>>))
                .execute(c)
        })
        .await;
    assert_eq!(cleared, PRODUCTS);

    // More rows than one write batch: each batch's raw hashes are set in its transaction.
    let log = run_listing(&env, &format!("0 new, 0 changed, {PRODUCTS} unchanged")).await;
    assert_eq!(
        (log.total_count, log.success_count, log.failed_count),
        (PRODUCTS as i64, PRODUCTS as i64, 0)
    );
    let after = env.query(products::all).await;
    assert_eq!(after.len(), PRODUCTS);
    for row in &after {
        // The raw hash is back, the same as the first listing wrote; no other column moved.
        assert_eq!(Some(row), written.get(&row.product_code), "{}", row.product_code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_repeats_and_missing_items_of_a_listing_are_told_apart_by_bytes_and_by_code() {
    const SMALL: usize = 30;
    let env = spawn_app_with(Options::default().products(SMALL)).await;
    let (items, texts) = simulator_items(&env);
    let code = |i: usize| items[i]["productCode"].as_str().unwrap().to_owned();
    env.sim.set_listing_body(listing_body(&texts));
    run_listing(&env, &format!("{SMALL} new, 0 changed, 0 unchanged")).await;

    // A shop label relabels every row once; the same label again, or none, leaves them.
    let shop = RunOverrides {
        local_category: Some("店内分类".into()),
        ..RunOverrides::default()
    };
    run_listing_with(
        &env,
        shop.clone(),
        &format!("0 new, {SMALL} changed, 0 unchanged"),
    )
    .await;
    run_listing_with(&env, shop, &format!("0 new, 0 changed, {SMALL} unchanged")).await;
    run_listing(&env, &format!("0 new, 0 changed, {SMALL} unchanged")).await;
    let labelled = env.query(products::all).await;
    assert!(
        labelled
            .iter()
            .all(|r| r.local_category.as_deref() == Some("店内分类")),
        "{labelled:?}"
    );

    // Item 4 is sent twice (the second time spelled otherwise), items 5 and 6 not at all; row 6
    // has no raw hash (as written before raw hashes were kept), so only its code stands for it.
    let six = code(6);
    env.query(move |c| {
        diesel::update(haier_products::table.filter(haier_products::product_code.eq(six)))
            .set(haier_products::raw_hash.eq(None::<Vec<u8>>))
            .execute(c)
    })
    .await;
    let mut next: Vec<String> = texts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5 && *i != 6)
        .map(|(_, t)| t.clone())
        .collect();
    next.push(format!(" {} ", texts[4]));
    env.sim.set_listing_body(listing_body(&next));
    let log = run_listing(&env, &format!("0 new, 0 changed, {} unchanged", SMALL - 2)).await;
    assert_eq!(log.total_count, (SMALL - 2) as i64);
    assert!(
        log.message.as_deref().unwrap().contains("2 delisted"),
        "{:?}",
        log.message
    );
    let after = env.query(products::all).await;
    let delisted: HashSet<String> = after
        .iter()
        .filter(|r| r.delisted_at.is_some())
        .map(|r| r.product_code.clone())
        .collect();
    assert_eq!(delisted, HashSet::from([code(5), code(6)]));

    // Both come back: re-listed, written again with their raw hash.
    env.sim.set_listing_body(listing_body(&texts));
    run_listing(&env, &format!("0 new, 2 changed, {} unchanged", SMALL - 2)).await;
    let back = env.query(products::all).await;
    assert!(back.iter().all(|r| r.delisted_at.is_none()), "{back:?}");
    assert!(back.iter().all(|r| r.raw_hash.as_ref().map(Vec::len) == Some(16)));
    run_listing(&env, &format!("0 new, 0 changed, {SMALL} unchanged")).await;
}

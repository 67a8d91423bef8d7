//! The products job's full listing at scale, on the suite's backend: a catalog larger than one
//! write batch and one statement, written in batches; a re-run that writes only the rows that
//! changed (new, changed, re-listed), with the sync log's counts; and a broken listing that fails
//! the run naming the item.

use crate::support::{spawn_app_with, Options};
use diesel::prelude::*;
use haier_sync::config::SyncKind;
use haier_sync::db::products;
use haier_sync::db::schema::haier_products;
use haier_sync::runs::RunStatus;
use haier_sync::sync::RunOverrides;
use std::collections::HashMap;

/// More than one transaction (8192 changed rows) and several statements (2184 rows) of writes.
const PRODUCTS: usize = 9_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_writes_in_batches_and_a_rerun_writes_only_what_changed() {
    let env = spawn_app_with(Options::default().products(PRODUCTS)).await;
    let first = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(first.status, RunStatus::Success, "{:?}", first.message);
    let log = env.log(&first).await;
    assert_eq!(
        (log.total_count, log.success_count, log.failed_count),
        (PRODUCTS as i64, PRODUCTS as i64, 0)
    );
    assert!(
        log.message
            .as_deref()
            .unwrap()
            .contains(&format!("{PRODUCTS} new, 0 changed, 0 unchanged")),
        "{:?}",
        log.message
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

    // Change the stored state behind the job's back: 5 rows deleted (new again), 7 hashes
    // stale (changed), 3 rows delisted (re-listed); the other rows must not be written.
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
                .set(haier_products::content_hash.eq("stale"))
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
    let second = env.run(SyncKind::Products, RunOverrides::default()).await;
    assert_eq!(second.status, RunStatus::Success, "{:?}", second.message);
    let log = env.log(&second).await;
    assert_eq!(
        (log.total_count, log.success_count, log.failed_count),
        (PRODUCTS as i64, PRODUCTS as i64, 0)
    );
    let unchanged = PRODUCTS - 5 - 7 - 3;
    assert!(
        log.message
            .as_deref()
            .unwrap()
            .contains(&format!("5 new, 10 changed, {unchanged} unchanged")),
        "{:?}",
        log.message
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

//! The outbox's SQL: claiming with a lease, lease expiry, lease-guarded writes, and concurrent
//! claimers on both backends.

use crate::support::*;
use chrono::Duration;
use haier_sync::db::now_utc;
use haier_sync::orders::outbox::{self, PushResult};
use haier_sync::orders::OutboxStatus;
use std::collections::HashSet;

async fn claim(app: &TestApp, token: &str, lease: Duration, limit: i64) -> Vec<outbox::OutboxRow> {
    let token = token.to_owned();
    app.db()
        .run(move |conn| {
            let now = now_utc();
            Ok(outbox::claim_due_orders(conn, &token, now, now + lease, limit)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn claimed_rows_are_leased_and_not_claimed_twice() {
    let app = spawn_app().await;
    insert_many_by_sql(app.db(), "SO", 5, &["P1"]).await;
    let first = claim(&app, "A", Duration::minutes(1), 3).await;
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|r| r.status == OutboxStatus::Sending
        && r.locked_by.as_deref() == Some("A")
        && r.locked_until.is_some()));
    assert!(first.iter().all(|r| r.attempts == 0));
    let second = claim(&app, "B", Duration::minutes(1), 3).await;
    assert_eq!(second.len(), 2);
    let ids: HashSet<i64> = first.iter().chain(&second).map(|r| r.id).collect();
    assert_eq!(ids.len(), 5);
    assert!(claim(&app, "C", Duration::minutes(1), 3).await.is_empty());
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_counted() {
    let app = spawn_app().await;
    insert_many_by_sql(app.db(), "SO", 1, &["P1"]).await;
    let crashed = claim(&app, "crashed-poller", Duration::milliseconds(-1), 10).await;
    assert_eq!(crashed.len(), 1);
    let again = claim(&app, "next-poller", Duration::minutes(1), 10).await;
    assert_eq!(again.len(), 1, "a lease that ran out makes the row claimable");
    assert_eq!(again[0].attempts, 1, "the lost attempt is counted");
    assert_eq!(again[0].locked_by.as_deref(), Some("next-poller"));
    assert!(again[0].last_error.as_deref().unwrap().contains("crashed-poller"));
    // A live lease is not taken.
    assert!(claim(&app, "third", Duration::minutes(1), 10).await.is_empty());
}

#[tokio::test]
async fn a_lost_lease_writes_nothing() {
    let app = spawn_app().await;
    insert_many_by_sql(app.db(), "SO", 1, &["P1"]).await;
    let old = claim(&app, "old", Duration::milliseconds(-1), 10).await;
    claim(&app, "new", Duration::minutes(1), 10).await;
    let id = old[0].id;
    let written = app
        .db()
        .run(move |conn| {
            let pushed = PushResult::Pushed { note: None };
            Ok(outbox::record_push_result(conn, id, "old", pushed, now_utc())?)
        })
        .await
        .unwrap();
    assert!(!written);
    let row = row(app.db(), "SO-00001").await;
    assert_eq!(
        (row.status.as_str(), row.locked_by.as_deref()),
        ("sending", Some("new"))
    );
    let written = app
        .db()
        .run(move |conn| {
            let pushed = PushResult::Pushed { note: Some("note") };
            Ok(outbox::record_push_result(conn, id, "new", pushed, now_utc())?)
        })
        .await
        .unwrap();
    assert!(written);
    let row = crate::support::row(app.db(), "SO-00001").await;
    assert_eq!(row.status, OutboxStatus::Pushed);
    assert_eq!(row.attempts, 2);
    assert_eq!(row.locked_by, None);
    assert!(row.pushed_at.is_some());
}

#[tokio::test]
async fn a_row_waits_for_its_next_attempt() {
    let app = spawn_app().await;
    insert_many_by_sql(app.db(), "SO", 1, &["P1"]).await;
    let rows = claim(&app, "A", Duration::minutes(1), 10).await;
    let id = rows[0].id;
    app.db()
        .run(move |conn| {
            let now = now_utc();
            let retry = PushResult::Retry {
                error: "timed out",
                at: now + Duration::seconds(30),
                unseen: true,
            };
            Ok(outbox::record_push_result(conn, id, "A", retry, now)?)
        })
        .await
        .unwrap();
    assert!(claim(&app, "B", Duration::minutes(1), 10).await.is_empty());
    make_all_due(app.db()).await;
    let rows = claim(&app, "B", Duration::minutes(1), 10).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 1);
    assert_eq!(rows[0].last_error.as_deref(), Some("timed out"));
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_row() {
    let app = spawn_app().await;
    insert_many_by_sql(app.db(), "SO", 200, &["P1"]).await;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let db = app.db().clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let token = format!("worker-{worker}");
                let rows = db
                    .run(move |conn| {
                        let now = now_utc();
                        Ok(outbox::claim_due_orders(
                            conn,
                            &token,
                            now,
                            now + Duration::minutes(1),
                            7,
                        )?)
                    })
                    .await
                    .unwrap();
                if rows.is_empty() {
                    return mine;
                }
                mine.extend(rows.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "row {id} was claimed twice");
        }
    }
    assert_eq!((total, seen.len()), (200, 200));
}

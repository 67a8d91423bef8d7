//! Health that tells the truth: `haier-sync status --check` exits non-zero and `GET /healthz`
//! answers 503 with the reasons for an overdue job, a failing job and a late order, and both are
//! healthy again once the cause is gone.

use crate::support::*;
use diesel::RunQueryDsl as _;
use haier_sync::db::{self, Db};
use haier_sync::runs::log as sync_logs;
use haier_sync::runs::{RunStatus, SyncType, Trigger};

const JOBS: &str = "[jobs.hourly]\nkind = \"stock\"\nschedule = \"0 0 * * * *\"\n";

/// A finished run of `hourly` that started `ago` before now.
async fn run_row(db: &Db, status: RunStatus, ago: chrono::Duration) {
    db.run(move |c| {
        let at = db::now_utc() - ago;
        let message = format!("planted {status}");
        sync_logs::insert(
            c,
            &sync_logs::NewSyncLog {
                job_name: "hourly",
                sync_type: SyncType::Stock,
                status,
                message: Some(&message),
                total_count: 1,
                success_count: i64::from(status == RunStatus::Success),
                failed_count: i64::from(status != RunStatus::Success),
                started_at: at,
                completed_at: Some(at),
                created_at: at,
                scheduled_for: None,
                trigger: Trigger::Manual,
                instance: "old-host:1",
            },
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

async fn set_order(db: &Db, so_id: &str, status: &str, pushed_hours_ago: i64) {
    let (so_id, status) = (so_id.to_owned(), status.to_owned());
    let pushed_at = db::now_utc() - chrono::Duration::hours(pushed_hours_ago);
    db.run(move |c| {
        // `$n` parameters are understood by both backends.
        diesel::sql_query("UPDATE haier_order_outbox SET status = $1, pushed_at = $2 WHERE so_id = $3")
            .bind::<diesel::sql_types::Text, _>(&status)
            .bind::<diesel::sql_types::Timestamp, _>(pushed_at)
            .bind::<diesel::sql_types::Text, _>(&so_id)
            .execute(c)?;
        Ok(())
    })
    .await
    .unwrap();
}

/// `status --check`'s exit code and output, and `/healthz`'s status and body.
async fn health(app: &TestApp) -> (i32, String, u16, String) {
    let output = command(app.config_path(), &["status", "--check"])
        .output()
        .unwrap();
    let reply = reqwest::get(format!("{}/healthz", app.receiver().base_url))
        .await
        .unwrap();
    let code = reply.status().as_u16();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        code,
        reply.text().await.unwrap(),
    )
}

fn assert_healthy(seen: &(i32, String, u16, String)) {
    assert_eq!((seen.0, seen.2), (0, 200), "{seen:#?}");
    assert_eq!(seen.1.trim(), "ok", "{seen:#?}");
}

fn assert_unhealthy(seen: &(i32, String, u16, String), reason: &str) {
    assert_eq!((seen.0, seen.2), (1, 503), "{seen:#?}");
    assert!(
        seen.1.contains(reason) && seen.3.contains(reason),
        "{reason}: {seen:#?}"
    );
}

#[tokio::test]
async fn status_check_and_healthz_turn_unhealthy_for_each_cause_and_healthy_once_it_is_gone() {
    let app = spawn_app_with(
        Options::default()
            .extra_toml(JOBS)
            .callbacks(Callbacks::InProcess),
    )
    .await;
    // A job that has never run is not overdue.
    assert_healthy(&health(&app).await);

    // Overdue: the last success is three hours old for an hourly job.
    run_row(app.db(), RunStatus::Success, chrono::Duration::hours(3)).await;
    assert_unhealthy(&health(&app).await, "hourly: no success for 3h00m");
    run_row(app.db(), RunStatus::Success, chrono::Duration::minutes(10)).await;
    assert_healthy(&health(&app).await);

    // Failing: the last three runs failed (a success came before them, so it is not overdue).
    for minutes in [3, 2, 1] {
        run_row(app.db(), RunStatus::Failed, chrono::Duration::minutes(minutes)).await;
    }
    assert_unhealthy(&health(&app).await, "hourly: its last 3 runs failed");
    run_row(app.db(), RunStatus::Success, chrono::Duration::zero()).await;
    assert_healthy(&health(&app).await);

    // A late order: pushed 25 h ago and never confirmed; 23 h is not late yet.
    insert_by_sql(app.db(), "SO-LATE", "ON-LATE", &order_json("SO-LATE", &["P1"])).await;
    set_order(app.db(), "SO-LATE", "pushed", 23).await;
    assert_healthy(&health(&app).await);
    set_order(app.db(), "SO-LATE", "pushed", 25).await;
    assert_unhealthy(&health(&app).await, "orders: 1 pushed order(s) unconfirmed");
    set_order(app.db(), "SO-LATE", "confirmed", 25).await;
    assert_healthy(&health(&app).await);
}

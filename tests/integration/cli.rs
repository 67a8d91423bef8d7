//! The command line as a user meets it: the real binary on a fresh database.

use crate::support::{command, spawn_app_with, Options, SHIPPED};
use std::path::Path;
use std::process::{Command, Output};

fn haier_sync(config: &Path, args: &[&str]) -> Output {
    command(config, args).output().expect("run haier-sync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_fresh_database_gives_valid_json_from_logs_and_status() {
    let app = spawn_app_with(Options::default().shipped_jobs()).await;
    let config = app.config_path();

    let migrate = haier_sync(config, &["migrate"]);
    assert!(
        migrate.status.success(),
        "{:?}: {}{}",
        migrate.status,
        text(&migrate.stdout),
        text(&migrate.stderr)
    );

    let logs = haier_sync(config, &["logs", "--json"]);
    assert!(
        logs.status.success(),
        "{:?}: {}{}",
        logs.status,
        text(&logs.stdout),
        text(&logs.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&logs.stdout).expect("logs --json prints JSON");
    assert_eq!(rows, serde_json::json!([]));

    let status = haier_sync(config, &["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json prints JSON");
    assert_eq!(report["daemon"]["running"], false);
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 5);
    let stock = jobs.iter().find(|j| j["job"] == "stock").unwrap();
    assert_eq!(stock["last_status"], serde_json::Value::Null);
    assert!(
        stock["next_fire_at"].as_str().unwrap().ends_with("+08:00"),
        "{stock}"
    );
}

#[test]
fn check_config_exits_0_on_the_shipped_file_and_2_with_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("jobs.toml");
    std::fs::write(&good, SHIPPED).unwrap();
    let ok = haier_sync(&good, &["check-config"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));

    let bad = dir.path().join("bad.toml");
    let broken = SHIPPED.replace("kind = \"logistics\"", "kind = \"logistix\"");
    std::fs::write(&bad, &broken).unwrap();
    let refused = haier_sync(&bad, &["check-config"]);
    assert_eq!(refused.status.code(), Some(2));
    let line = broken.lines().position(|l| l.contains("logistix")).unwrap() + 1;
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("bad.toml:{line}: jobs.logistics.kind")),
        "{stderr}"
    );

    // Other commands refuse a bad config the same way, before touching anything.
    let status = haier_sync(&bad, &["status"]);
    assert_eq!(status.status.code(), Some(2));
    assert!(!dir.path().join("haier-sync.db").exists());
}

#[test]
fn a_migrated_sqlite_file_has_an_empty_sync_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let config = dir.path().join("jobs.toml");
    std::fs::write(
        &config,
        SHIPPED.replace("sqlite://haier-sync.db", &format!("sqlite://{}", db.display())),
    )
    .unwrap();
    let migrate = haier_sync(&config, &["migrate"]);
    assert!(
        migrate.status.success(),
        "{:?}: {}{}",
        migrate.status,
        text(&migrate.stdout),
        text(&migrate.stderr)
    );
    assert!(text(&migrate.stdout).contains("migrations applied"));
    let count = Command::new("sqlite3")
        .arg(&db)
        .arg("select count(*) from haier_sync_logs")
        .output();
    if let Ok(out) = count {
        assert_eq!(text(&out.stdout).trim(), "0");
    }
    // A second run has nothing to do.
    let again = haier_sync(&config, &["migrate"]);
    assert!(
        text(&again.stdout).contains("up to date"),
        "{}",
        text(&again.stdout)
    );
}

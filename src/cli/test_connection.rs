//! `haier-sync test-connection`: logs in to both Haier systems, runs one cheap call on each and
//! prints one line per system. It changes nothing on either side. Its requests draw from the
//! quota shared on the database when that opens and has it; otherwise they are paced locally.

use crate::config::{Config, DatabaseUrl};
use crate::db::Db;
use crate::haier::{HaierClient, System};
use anyhow::Context;

/// Checks both systems side by side and prints one line each, e.g.
/// `openplat  OK        123 ms  token + balance: 2 accounts`. `Ok(false)` when either failed:
/// the command then exits non-zero.
pub async fn run(config: &Config) -> anyhow::Result<bool> {
    let client = match shared_quota_db(config).await {
        Some(db) => crate::quota::shared_client(config, &db),
        None => HaierClient::new(&config.haier, &config.ylh),
    }
    .context("Failed to build the Haier client")?;
    let (openplat, ylh) = tokio::join!(
        client.check_connection(System::Openplat),
        client.check_connection(System::Ylh)
    );
    println!("{openplat}");
    println!("{ylh}");
    Ok(openplat.outcome.is_ok() && ylh.outcome.is_ok())
}

/// The database to share the quota on: only one that exists already and has been migrated
/// (this command creates no file and applies no migration).
async fn shared_quota_db(config: &Config) -> Option<Db> {
    if let DatabaseUrl::Sqlite(path) = &config.database.url {
        if path == ":memory:" || !std::path::Path::new(path).exists() {
            return None;
        }
    }
    let db = Db::connect(&config.database).await.ok()?;
    let shared = db
        .run(|conn| Ok(crate::quota::recent_shares(conn).is_ok()))
        .await
        .unwrap_or(false);
    shared.then_some(db)
}

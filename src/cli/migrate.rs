//! `haier-sync migrate`: creates or updates the tables.

use crate::config::Config;
use crate::db::Db;

pub async fn run(config: Config) -> anyhow::Result<i32> {
    let db = Db::connect(&config.database).await?;
    let applied = db.migrate().await?;
    if applied.is_empty() {
        println!("{} database is up to date", db.backend());
    } else {
        for name in &applied {
            println!("applied {name}");
        }
        println!(
            "{} database migrated ({} migrations applied)",
            db.backend(),
            applied.len()
        );
    }
    Ok(0)
}

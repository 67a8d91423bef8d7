//! The shared context every job, the order poller and the callback receiver run with: the
//! configuration, one database pool and one rate-limited Haier client per process (drawing from
//! the quota every process on the database shares, `crate::quota`).

use crate::config::Config;
use crate::db::Db;
use crate::haier::HaierClient;
use anyhow::Context as _;
use std::sync::Arc;

/// Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub db: Db,
    pub client: HaierClient,
}

impl AppContext {
    /// Connects to the database, applies pending migrations and builds the Haier client.
    pub async fn connect(config: Config) -> anyhow::Result<AppContext> {
        let db = Db::connect(&config.database).await?;
        db.migrate().await?;
        let client = crate::quota::shared_client(&config, &db).context("Failed to build the Haier client")?;
        Ok(AppContext {
            config: Arc::new(config),
            db,
            client,
        })
    }
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext")
            .field("config", &self.config.path)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

//! This daemon's row in `haier_sync_instances`: registered at start with its version and config
//! fingerprint, marked stopped at shutdown together with the `running` log rows it leaves. The
//! heartbeat in between is the daemon loop's.

use crate::db::{self, instances, Db};
use crate::runs;
use anyhow::Context as _;
use std::path::Path;
use std::time::Duration;
use tracing::warn;

/// Closes the `running` rows this daemon still has as `interrupted` and marks the instance
/// stopped, trying again with backoff until `deadline` (at least one attempt, of at most a second
/// past it). Returns how many rows it closed.
pub(super) async fn record_stop(
    db: &Db,
    instance: &str,
    deadline: tokio::time::Instant,
) -> anyhow::Result<usize> {
    let last_try_by = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
    let mut wait = crate::db::background::RETRY_BASE;
    let mut warned = false;
    loop {
        let instance = instance.to_owned();
        let attempt = db.run(move |conn| {
            let closed = runs::log::interrupt_rows_of(
                conn,
                std::slice::from_ref(&instance),
                "interrupted: the daemon stopped before the run closed its row",
            )?;
            instances::mark_stopped(conn, &instance, db::now_utc())?;
            Ok(closed)
        });
        let error = match tokio::time::timeout_at(last_try_by, attempt).await {
            Ok(Ok(closed)) => return Ok(closed),
            Ok(Err(error)) => error,
            Err(_) => anyhow::anyhow!("the database did not answer before the shutdown's time was up"),
        };
        if tokio::time::Instant::now() + wait >= last_try_by {
            return Err(error);
        }
        if !std::mem::replace(&mut warned, true) {
            warn!(
                "Failed to record the daemon's stop: {error:#}; trying again until the shutdown's time is up"
            );
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(crate::db::background::RETRY_CAP);
    }
}

/// This daemon's row as written at its start: host, pid, version, config fingerprint, started
/// now.
pub(super) fn instance_row(instance: &str, config_hash: Option<String>) -> instances::Instance {
    let now = db::now_utc();
    instances::Instance {
        instance: instance.to_owned(),
        hostname: hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".to_owned()),
        pid: i64::from(std::process::id()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: now,
        heartbeat_at: now,
        stopped_at: None,
        client_stats: None,
        config_hash,
    }
}

/// Writes this daemon's row (see [`instance_row`]).
pub(super) async fn register_instance(db: &Db, row: &instances::Instance) -> anyhow::Result<()> {
    let row = row.clone();
    db.run(move |conn| Ok(instances::register(conn, &row)?))
        .await
        .context("Failed to register the daemon instance")
}

/// The fingerprint of `jobs.toml` every instance records: the MD5 of the file's bytes, in hex.
/// Any byte counts (a comment too), so two instances agree exactly when they read the same file;
/// secrets kept in `*_file` files and environment overrides are not part of it. `None` when the
/// file cannot be read.
pub(super) async fn config_hash(path: &Path) -> Option<String> {
    use md5::{Digest, Md5};
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(hex::encode(Md5::digest(&bytes)))
}

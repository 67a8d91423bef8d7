//! Queries on `haier_sync_instances`: which daemons run against this database, by heartbeat,
//! with what version and config, and what the live ones disagree on.

use super::schema::haier_sync_instances::{self, dsl};
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = haier_sync_instances)]
pub struct Instance {
    pub instance: String,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    pub started_at: NaiveDateTime,
    pub heartbeat_at: NaiveDateTime,
    pub stopped_at: Option<NaiveDateTime>,
    /// The daemon's Haier client counters as JSON (`crate::haier::ClientStats`), as of the last
    /// heartbeat.
    pub client_stats: Option<String>,
    /// The MD5 of the daemon's `jobs.toml` bytes (hex), as of its start or last reload; `None`
    /// when the file could not be read, and on rows of older versions.
    pub config_hash: Option<String>,
}

/// Records that `instance` has started (or restarted).
pub fn register(conn: &mut DbConnection, row: &Instance) -> QueryResult<()> {
    conn.transaction(|conn| {
        diesel::delete(dsl::haier_sync_instances.filter(dsl::instance.eq(&row.instance))).execute(conn)?;
        diesel::insert_into(haier_sync_instances::table)
            .values(row)
            .execute(conn)?;
        Ok(())
    })
}

/// Records that `instance` is alive now, with its client counters when it has them. Returns
/// false when the row says the daemon stopped, or is missing: another daemon declared it gone
/// (its heartbeat was late by [`crate::scheduler::recovery::FOREIGN_STALE_HEARTBEATS`] beats)
/// and closed its runs; the caller registers again with [`reinstate`].
/// Locking: a single-row `UPDATE` guarded by `stopped_at IS NULL`.
pub fn heartbeat(
    conn: &mut DbConnection,
    instance: &str,
    at: NaiveDateTime,
    client_stats: Option<&str>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_sync_instances
            .filter(dsl::instance.eq(instance))
            .filter(dsl::stopped_at.is_null()),
    )
    .set((dsl::heartbeat_at.eq(at), dsl::client_stats.eq(client_stats)))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Makes `row` live again after another daemon declared it gone (see [`heartbeat`]): the row
/// as written at its start, `stopped_at` cleared, the heartbeat now.
pub fn reinstate(conn: &mut DbConnection, row: &Instance) -> QueryResult<()> {
    register(conn, row)
}

/// Records the config fingerprint an instance runs with (at start and on each reload).
pub fn set_config_hash(
    conn: &mut DbConnection,
    instance: &str,
    config_hash: Option<&str>,
) -> QueryResult<()> {
    diesel::update(dsl::haier_sync_instances.filter(dsl::instance.eq(instance)))
        .set(dsl::config_hash.eq(config_hash))
        .execute(conn)?;
    Ok(())
}

/// Daemons that have not stopped and whose heartbeat is older than `silent_before`: gone, or cut
/// off. Locking: a plain read of the partial `(heartbeat_at) WHERE stopped_at IS NULL` index, so
/// the check every heartbeat makes costs one indexed read when nothing is stale.
pub fn silent(conn: &mut DbConnection, silent_before: NaiveDateTime) -> QueryResult<Vec<Instance>> {
    dsl::haier_sync_instances
        .filter(dsl::stopped_at.is_null())
        .filter(dsl::heartbeat_at.lt(silent_before))
        .order(dsl::heartbeat_at.asc())
        .select(Instance::as_select())
        .load(conn)
}

/// Declares `instance` gone at `at`, if it has not beaten since `silent_before` and no one
/// declared it first. Returns whether this call did: of several daemons that see the same
/// silence, exactly one frees its claims. Locking: a single-row `UPDATE` guarded by the
/// heartbeat and `stopped_at IS NULL`.
pub fn declare_gone(
    conn: &mut DbConnection,
    instance: &str,
    silent_before: NaiveDateTime,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        dsl::haier_sync_instances
            .filter(dsl::instance.eq(instance))
            .filter(dsl::stopped_at.is_null())
            .filter(dsl::heartbeat_at.lt(silent_before)),
    )
    .set(dsl::stopped_at.eq(Some(at)))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Records a clean stop.
pub fn mark_stopped(conn: &mut DbConnection, instance: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(dsl::haier_sync_instances.filter(dsl::instance.eq(instance)))
        .set((dsl::stopped_at.eq(Some(at)), dsl::heartbeat_at.eq(at)))
        .execute(conn)?;
    Ok(())
}

/// Daemons that have not stopped and whose heartbeat is newer than `alive_since`.
pub fn live(conn: &mut DbConnection, alive_since: NaiveDateTime) -> QueryResult<Vec<Instance>> {
    dsl::haier_sync_instances
        .filter(dsl::stopped_at.is_null())
        .filter(dsl::heartbeat_at.ge(alive_since))
        .order(dsl::started_at.asc())
        .select(Instance::as_select())
        .load(conn)
}

pub fn find(conn: &mut DbConnection, instance: &str) -> QueryResult<Option<Instance>> {
    dsl::haier_sync_instances
        .filter(dsl::instance.eq(instance))
        .select(Instance::as_select())
        .first(conn)
        .optional()
}

/// What the live instances disagree on, one line each: the version they run, the fingerprint of
/// their `jobs.toml`. Instances should agree on both; while a new version is rolled through
/// them, or a changed file reloaded on some, these lines say so.
pub fn disagreements(live: &[Instance]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut differs = |what: &str, value: &dyn Fn(&Instance) -> String| {
        let mut groups: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
        for instance in live {
            groups
                .entry(value(instance))
                .or_default()
                .push(&instance.instance);
        }
        if groups.len() > 1 {
            let groups: Vec<String> = groups
                .iter()
                .map(|(value, who)| format!("{value} ({})", who.join(", ")))
                .collect();
            lines.push(format!(
                "the instances run different {what}: {}",
                groups.join("; ")
            ));
        }
    };
    differs("versions", &|i| i.version.clone());
    differs("jobs.toml (config hash)", &|i| {
        short_hash(i.config_hash.as_deref())
    });
    lines
}

/// The first 12 hex digits of a config fingerprint, or `unknown`.
pub fn short_hash(hash: Option<&str>) -> String {
    hash.map_or_else(|| "unknown".to_owned(), |h| h.chars().take(12).collect())
}

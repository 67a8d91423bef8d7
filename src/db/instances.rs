//! Queries on `haier_sync_instances`: which daemons run against this database, by heartbeat.

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

/// Records that `instance` is alive now, with its client counters when it has them.
pub fn heartbeat(
    conn: &mut DbConnection,
    instance: &str,
    at: NaiveDateTime,
    client_stats: Option<&str>,
) -> QueryResult<()> {
    diesel::update(dsl::haier_sync_instances.filter(dsl::instance.eq(instance)))
        .set((dsl::heartbeat_at.eq(at), dsl::client_stats.eq(client_stats)))
        .execute(conn)?;
    Ok(())
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

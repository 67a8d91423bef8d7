//! Every statement on `haier_audit_log`.

use super::AuditOutcome;
use crate::db::schema::haier_audit_log::{self, dsl};
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

/// A recorded command.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub at: NaiveDateTime,
    pub os_user: String,
    pub host: String,
    pub command: String,
    /// The arguments as JSON, secrets masked.
    pub arguments: String,
    pub outcome: AuditOutcome,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = haier_audit_log)]
pub struct NewAuditRow {
    pub at: NaiveDateTime,
    pub os_user: String,
    pub host: String,
    pub command: String,
    pub arguments: String,
    pub outcome: AuditOutcome,
    pub detail: Option<String>,
}

/// Appends one row.
///
/// Locking: one INSERT.
pub fn insert_audit_row(conn: &mut DbConnection, row: &NewAuditRow) -> QueryResult<()> {
    diesel::insert_into(haier_audit_log::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The newest `limit` rows, newest first.
///
/// Locking: none (one read).
pub fn latest_audit_rows(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditRow>> {
    dsl::haier_audit_log
        .order((dsl::at.desc(), dsl::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

//! The audit trail: who changed what with a command, when, with which arguments (secrets masked)
//! and how it ended. It owns `haier_audit_log` (`store.rs` holds every statement) and the masking
//! (`mask.rs`). Commands call [`record`]; `haier-sync audit` lists the rows.

mod mask;
pub mod store;

pub use mask::{mask_arguments, secret_values};
pub use store::AuditRow;

use crate::config::Config;
use crate::control::operator;
use crate::db::text_enum::text_enum;
use crate::db::{self, Db};

text_enum! {
    /// How a recorded command ended (`haier_audit_log.outcome`).
    pub enum AuditOutcome {
        /// It did what it was asked (exit code 0).
        Ok = "ok",
        /// It refused or found nothing to do that was asked (a non-zero exit code, no error).
        Refused = "refused",
        /// It failed with an error.
        Failed = "failed",
    }
}

/// One command to record: its name (`pause`, `outbox retry`), its arguments as JSON, and how
/// it ended.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub command: String,
    pub arguments: serde_json::Value,
    pub outcome: AuditOutcome,
    pub detail: Option<String>,
}

/// Writes one audit row for `entry`, as the OS user and host of this process, now. Secrets
/// (the config's secret values, passwords in URLs, values under secret-like keys) are masked in
/// the arguments and the detail.
pub async fn record(db: &Db, config: &Config, entry: AuditEntry) -> anyhow::Result<()> {
    record_as(db, config, entry, operator::os_user()).await
}

/// [`record`] under another name than the OS user: the status page records its actions under
/// the name of the token that asked (`admin:alice`), on this host.
pub async fn record_as(db: &Db, config: &Config, entry: AuditEntry, who: String) -> anyhow::Result<()> {
    let secrets = secret_values(config);
    let arguments = mask_arguments(entry.arguments, &secrets);
    let detail = entry.detail.map(|d| mask::mask_text(&d, &secrets));
    let row = store::NewAuditRow {
        at: db::now_utc(),
        os_user: who,
        host: operator::host_name(),
        command: entry.command,
        arguments: arguments.to_string(),
        outcome: entry.outcome,
        detail,
    };
    db.run(move |conn| Ok(store::insert_audit_row(conn, &row)?))
        .await
        .map_err(|e| e.context("Failed to write the audit row"))
}

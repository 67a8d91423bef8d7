//! PostgreSQL's notification of new order events: `NOTIFY haier_order_changes, '<event id>'`,
//! sent in the transaction that writes the event, so a listener hears of it once it commits (and
//! never of one rolled back). A shop on the same database `LISTEN`s and reads the event by id. On
//! SQLite there is no such channel: the table is the interface (the README shows the query).

use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

/// The channel the event ids are sent on.
pub const CHANNEL: &str = "haier_order_changes";

/// Sends event `id` on [`CHANNEL`] (PostgreSQL; nothing on SQLite). Locking: none beyond the
/// caller's transaction; PostgreSQL delivers the notification at commit.
pub fn announce(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    if let DbConnection::Pg(c) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(id.to_string())
            .execute(c)?;
    }
    Ok(())
}

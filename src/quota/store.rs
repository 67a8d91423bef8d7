//! The statements on `haier_quota` and `haier_quota_leases`. Every time is the database's own
//! clock in microseconds since the Unix epoch, so hosts whose clocks disagree still share one
//! budget. Each statement is one short write: no transaction is held across a request to Haier.

use super::slots::{Lease, Rate};
use crate::db::DbConnection;
use crate::haier::System;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// The database's clock, in microseconds since the Unix epoch. SQLite keeps `'now'` fixed for
/// the whole of one statement, so every use in a statement reads the same instant.
macro_rules! sqlite_now_us {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
    };
}
macro_rules! pg_now_us {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
    };
}

/// `tat = max(tat, now − $slack) + $advance` for `$system` unless `max(tat, now − $slack)` is
/// more than `$horizon` ahead of `now`, returning the new `tat` and `now` (no row when refused).
const PG_LEASE: &str = concat!(
    "WITH c AS (SELECT ",
    pg_now_us!(),
    " AS now_us) UPDATE haier_quota SET tat_us = GREATEST(haier_quota.tat_us, c.now_us - $1) + $2 \
     FROM c WHERE haier_quota.system = $3 \
     AND GREATEST(haier_quota.tat_us, c.now_us - $1) <= c.now_us + $4 \
     RETURNING haier_quota.tat_us, c.now_us"
);
const SQLITE_LEASE: &str = concat!(
    "UPDATE haier_quota SET tat_us = max(tat_us, ",
    sqlite_now_us!(),
    " - ?1) + ?2 WHERE system = ?3 AND max(tat_us, ",
    sqlite_now_us!(),
    " - ?1) <= ",
    sqlite_now_us!(),
    " + ?4 RETURNING tat_us, ",
    sqlite_now_us!(),
    " AS now_us"
);
/// `tat` of `$system`, and `now`.
const PG_PEEK: &str = concat!(
    "SELECT tat_us, ",
    pg_now_us!(),
    " AS now_us FROM haier_quota WHERE system = $1"
);
const SQLITE_PEEK: &str = concat!(
    "SELECT tat_us, ",
    sqlite_now_us!(),
    " AS now_us FROM haier_quota WHERE system = ?"
);
/// `tat = max(tat, now + $wait)`: no slot before `now + wait`.
const PG_HOLD_BACK: &str = concat!(
    "UPDATE haier_quota SET tat_us = GREATEST(tat_us, ",
    pg_now_us!(),
    " + $1) WHERE system = $2"
);
const SQLITE_HOLD_BACK: &str = concat!(
    "UPDATE haier_quota SET tat_us = max(tat_us, ",
    sqlite_now_us!(),
    " + ?) WHERE system = ?"
);
const PG_NOW: &str = concat!("SELECT ", pg_now_us!(), " AS now_us");
const SQLITE_NOW: &str = concat!("SELECT ", sqlite_now_us!(), " AS now_us");

/// Lease rows older than this are deleted when a participant records its own.
const KEEP_LEASES_US: i64 = 60_000_000;

#[derive(QueryableByName)]
struct LeaseRow {
    #[diesel(sql_type = BigInt)]
    tat_us: i64,
    #[diesel(sql_type = BigInt)]
    now_us: i64,
}

#[derive(QueryableByName)]
struct NowRow {
    #[diesel(sql_type = BigInt)]
    now_us: i64,
}

/// Permits leased, and the database's clock when they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leased {
    pub lease: Lease,
    pub now_us: i64,
}

/// What a lease got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leasing {
    Leased(Leased),
    /// The slots up to the horizon are all taken: ask again in this many microseconds.
    Full {
        retry_in_us: i64,
    },
}

fn lease_statement(
    conn: &mut DbConnection,
    system: System,
    advance_us: i64,
    rate: Rate,
) -> QueryResult<Vec<LeaseRow>> {
    let system = system.to_string();
    match conn {
        DbConnection::Pg(c) => diesel::sql_query(PG_LEASE)
            .bind::<BigInt, _>(rate.slack_us)
            .bind::<BigInt, _>(advance_us)
            .bind::<Text, _>(system)
            .bind::<BigInt, _>(rate.horizon_us)
            .load(c),
        DbConnection::Sqlite(c) => diesel::sql_query(SQLITE_LEASE)
            .bind::<BigInt, _>(rate.slack_us)
            .bind::<BigInt, _>(advance_us)
            .bind::<Text, _>(system)
            .bind::<BigInt, _>(rate.horizon_us)
            .load(c),
    }
}

fn peek(conn: &mut DbConnection, system: System) -> QueryResult<Option<LeaseRow>> {
    let system = system.to_string();
    match conn {
        DbConnection::Pg(c) => diesel::sql_query(PG_PEEK).bind::<Text, _>(system).get_result(c),
        DbConnection::Sqlite(c) => diesel::sql_query(SQLITE_PEEK)
            .bind::<Text, _>(system)
            .get_result(c),
    }
    .optional()
}

/// Puts back the row of `system` (the migration seeds both) if it is missing.
fn ensure_row(conn: &mut DbConnection, system: System) -> QueryResult<()> {
    use crate::db::schema::haier_quota::dsl;
    let found: i64 = dsl::haier_quota
        .filter(dsl::system.eq(system.to_string()))
        .count()
        .get_result(conn)?;
    if found == 0 {
        diesel::insert_into(dsl::haier_quota)
            .values((dsl::system.eq(system.to_string()), dsl::tat_us.eq(0_i64)))
            .execute(conn)?;
    }
    Ok(())
}

/// Leases `count` permits of `system` in one statement (the row is locked only while it runs):
/// `tat = max(tat, now − slack) + count × interval`, unless that starts beyond the horizon
/// (see `slots`).
pub fn lease_permits(
    conn: &mut DbConnection,
    system: System,
    count: u32,
    rate: Rate,
) -> QueryResult<Leasing> {
    let advance_us = i64::from(count) * rate.interval_us;
    if let Some(row) = lease_statement(conn, system, advance_us, rate)?
        .into_iter()
        .next()
    {
        return Ok(Leasing::Leased(Leased {
            lease: Lease::from_tat(row.tat_us, count, rate),
            now_us: row.now_us,
        }));
    }
    match peek(conn, system)? {
        Some(row) => Ok(Leasing::Full {
            retry_in_us: (row.tat_us - row.now_us - rate.horizon_us).max(0),
        }),
        None => {
            ensure_row(conn, system)?;
            Ok(Leasing::Full { retry_in_us: 0 })
        }
    }
}

/// No permit of `system` is leased for a slot before `wait_us` from now (Haier answered 429).
pub fn hold_back(conn: &mut DbConnection, system: System, wait_us: i64) -> QueryResult<()> {
    let system = system.to_string();
    match conn {
        DbConnection::Pg(c) => diesel::sql_query(PG_HOLD_BACK)
            .bind::<BigInt, _>(wait_us)
            .bind::<Text, _>(system)
            .execute(c),
        DbConnection::Sqlite(c) => diesel::sql_query(SQLITE_HOLD_BACK)
            .bind::<BigInt, _>(wait_us)
            .bind::<Text, _>(system)
            .execute(c),
    }?;
    Ok(())
}

/// The database's clock, in microseconds since the Unix epoch.
pub fn now_us(conn: &mut DbConnection) -> QueryResult<i64> {
    let row: NowRow = match conn {
        DbConnection::Pg(c) => diesel::sql_query(PG_NOW).get_result(c),
        DbConnection::Sqlite(c) => diesel::sql_query(SQLITE_NOW).get_result(c),
    }?;
    Ok(row.now_us)
}

/// Records that `participant` leased `permits` of `system` lately, and deletes everyone's rows
/// older than a minute.
pub fn record_leases(
    conn: &mut DbConnection,
    participant: &str,
    system: System,
    permits: i64,
) -> QueryResult<()> {
    use crate::db::schema::haier_quota_leases::dsl;
    let now = now_us(conn)?;
    diesel::delete(dsl::haier_quota_leases.filter(dsl::leased_at_us.lt(now - KEEP_LEASES_US)))
        .execute(conn)?;
    if permits > 0 {
        diesel::insert_into(dsl::haier_quota_leases)
            .values((
                dsl::participant.eq(participant),
                dsl::system.eq(system.to_string()),
                dsl::leased_at_us.eq(now),
                dsl::permits.eq(permits),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Permits leased per participant and system since `since_us` (database clock), as
/// `(participant, system, permits)`.
pub fn permits_since(conn: &mut DbConnection, since_us: i64) -> QueryResult<Vec<(String, String, i64)>> {
    use crate::db::schema::haier_quota_leases::dsl;
    // `SUM` of a BIGINT is NUMERIC on PostgreSQL: cast back on both backends.
    dsl::haier_quota_leases
        .filter(dsl::leased_at_us.ge(since_us))
        .group_by((dsl::participant, dsl::system))
        .select((
            dsl::participant,
            dsl::system,
            diesel::dsl::sql::<BigInt>("CAST(SUM(permits) AS BIGINT)"),
        ))
        .order_by((dsl::system, dsl::participant))
        .load(conn)
}

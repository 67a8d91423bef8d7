//! `haier_order_shipments`, owned here: the parcels of the orders Haier has taken (delivery
//! record, carrier, express number, one serial number per unit), as YLH's express-numbers call
//! reports them. The logistics job ([`crate::sync`]) fetches and writes them through
//! [`upsert_shipments`]; `outbox show` reads them with [`for_order`]. Which orders still need
//! asking is a statement on the outbox ([`super::outbox::orders_needing_shipments_after`]).

use crate::db::schema::haier_order_shipments::{self, dsl};
use crate::db::DbConnection;
use crate::haier::Shipment;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;
use serde::Serialize;

/// One stored parcel.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_order_shipments)]
pub struct ShipmentRow {
    pub id: i64,
    pub so_id: String,
    pub haier_order_no: String,
    /// `''` when Haier sent none.
    pub delivery_record_code: String,
    pub carrier_code: Option<String>,
    pub carrier_name: Option<String>,
    /// `''` when Haier sent none.
    pub express_no: String,
    /// A JSON array of text: one SN per unit.
    pub serial_numbers: String,
    pub fetched_at: NaiveDateTime,
}

impl ShipmentRow {
    /// The serial numbers; a stored value that is not a list of text reads as none.
    pub fn serial_numbers(&self) -> Vec<String> {
        serde_json::from_str(&self.serial_numbers).unwrap_or_default()
    }
}

/// A parcel to store, with the shop's order it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = haier_order_shipments)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewShipment {
    pub so_id: String,
    pub haier_order_no: String,
    pub delivery_record_code: String,
    pub carrier_code: Option<String>,
    pub carrier_name: Option<String>,
    pub express_no: String,
    pub serial_numbers: String,
    pub fetched_at: NaiveDateTime,
}

impl NewShipment {
    /// The row for `shipment` of the shop's order `so_id`, fetched at `now`.
    pub fn new(so_id: &str, shipment: Shipment, now: NaiveDateTime) -> Self {
        Self {
            so_id: so_id.to_owned(),
            haier_order_no: shipment.order_code,
            delivery_record_code: shipment.delivery_record_code,
            carrier_code: shipment.carrier_code,
            carrier_name: shipment.carrier_name,
            express_no: shipment.express_no,
            serial_numbers: serde_json::Value::from(shipment.serial_numbers).to_string(),
            fetched_at: now,
        }
    }
}

/// Inserts the parcels, or updates the stored ones (same Haier order no., delivery record and
/// express no.) with the carrier, serial numbers and fetch time, and records the shop's event of
/// each order whose parcels changed (`crate::shop`). Returns the rows written.
/// Locking: one transaction of `INSERT … ON CONFLICT DO UPDATE`s and the events; the unique key
/// decides between racing writers.
pub fn upsert_shipments(conn: &mut DbConnection, rows: &[NewShipment]) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    conn.transaction(|conn| {
        let written = write_shipments(conn, rows)?;
        let mut so_ids: Vec<&str> = rows.iter().map(|row| row.so_id.as_str()).collect();
        so_ids.sort_unstable();
        so_ids.dedup();
        let now = crate::db::now_utc();
        for so_id in so_ids {
            crate::shop::record(conn, so_id, crate::shop::EventSource::Logistics, now)?;
        }
        Ok(written)
    })
}

fn write_shipments(conn: &mut DbConnection, rows: &[NewShipment]) -> QueryResult<usize> {
    // One statement can carry only so many bound values (SQLite: 32766); 8 per row.
    let mut written = 0;
    for chunk in rows.chunks(500) {
        written += crate::db_run!(conn, |c| diesel::insert_into(dsl::haier_order_shipments)
            .values(chunk)
            .on_conflict((dsl::haier_order_no, dsl::delivery_record_code, dsl::express_no))
            .do_update()
            .set((
                dsl::so_id.eq(excluded(dsl::so_id)),
                dsl::carrier_code.eq(excluded(dsl::carrier_code)),
                dsl::carrier_name.eq(excluded(dsl::carrier_name)),
                dsl::serial_numbers.eq(excluded(dsl::serial_numbers)),
                dsl::fetched_at.eq(excluded(dsl::fetched_at)),
            ))
            .execute(c))?;
    }
    Ok(written)
}

/// The parcels of one shop order, by delivery record and express no. Locking: a plain read.
pub fn for_order(conn: &mut DbConnection, so_id: &str) -> QueryResult<Vec<ShipmentRow>> {
    haier_order_shipments::table
        .filter(dsl::so_id.eq(so_id))
        .select(ShipmentRow::as_select())
        .order((
            dsl::delivery_record_code.asc(),
            dsl::express_no.asc(),
            dsl::id.asc(),
        ))
        .load(conn)
}

/// How many parcels are stored (tests and small tools).
#[cfg(any(test, feature = "test-support"))]
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    haier_order_shipments::table.count().get_result(conn)
}

/// How many parcels these orders have. Locking: a plain read (the `so_id` index).
pub fn count_of_orders(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<i64> {
    if so_ids.is_empty() {
        return Ok(0);
    }
    haier_order_shipments::table
        .filter(dsl::so_id.eq_any(so_ids))
        .count()
        .get_result(conn)
}

/// Deletes the parcels of these orders; returns how many. Locking: one `DELETE`, inside the
/// caller's transaction that deletes the orders.
pub fn delete_of_orders(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<usize> {
    if so_ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(haier_order_shipments::table.filter(dsl::so_id.eq_any(so_ids))).execute(conn)
}

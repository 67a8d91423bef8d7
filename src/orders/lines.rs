//! `haier_order_lines`: an order's lines, one row per order and product, owned here with every
//! statement on it. A line is filled from the push payload when the order is recorded as pushed
//! (the quantities of the payload's `itemList` lines of one product summed), and then holds what
//! Haier's cancel callbacks say became of its units: received, refused at the door (or stopped,
//! or cancelled before shipping) and returned. A callback's quantities are the current totals for
//! that order and product, never added up. It also checks a cancel callback's `itemList` against
//! the contract's rules before anything is written.

use crate::db::schema::haier_order_lines::{self, dsl};
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One row of `haier_order_lines`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = haier_order_lines)]
pub struct OrderLine {
    pub id: i64,
    pub so_id: String,
    pub product_code: String,
    /// Units ordered: the push's `itemQty` summed over the lines of this product.
    pub ordered_qty: i64,
    /// Units the customer signed for (`receiveQty`).
    pub received_qty: i64,
    /// Units that never reached the customer: refused at the door, stopped or cancelled
    /// (`rejectQty`).
    pub rejected_qty: i64,
    /// Units signed for, then returned and accepted after inspection (`returnQty`).
    pub returned_qty: i64,
    pub updated_at: NaiveDateTime,
}

/// What a cancel callback says of one product of the order: the current totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineTotals {
    pub product_code: String,
    pub total: i64,
    pub received: i64,
    pub rejected: i64,
    pub returned: i64,
}

/// The units ordered per product, summed over the payload's `itemList` lines (quantities as
/// numbers or numeric text), in product-code order. A payload that cannot be read gives none:
/// the poller never pushes such an order.
pub fn ordered_quantities(payload: &str) -> Vec<(String, i64)> {
    let mut ordered: BTreeMap<String, i64> = BTreeMap::new();
    let Ok(Value::Object(order)) = serde_json::from_str::<Value>(payload) else {
        return Vec::new();
    };
    let Some(Value::Array(items)) = order.get("itemList") else {
        return Vec::new();
    };
    for item in items {
        let code = item.get("productCode").and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let qty = item.get("itemQty").and_then(whole_number);
        if let (Some(code), Some(qty)) = (code, qty) {
            *ordered.entry(code).or_default() += qty;
        }
    }
    ordered.into_iter().collect()
}

/// Inserts the order's lines from its push payload, unless it has lines already (a later call
/// changes nothing). Returns how many lines were inserted.
/// Locking: must run inside the transaction that holds the order's outbox row (the push result
/// or the callback), so two writers of one order's lines run one after the other; the unique
/// index on `(so_id, product_code)` guards the rest.
pub fn record_ordered_lines(
    conn: &mut DbConnection,
    so_id: &str,
    payload: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let existing: i64 = haier_order_lines::table
        .filter(dsl::so_id.eq(so_id))
        .count()
        .get_result(conn)?;
    if existing > 0 {
        return Ok(0);
    }
    let mut inserted = 0;
    for (code, qty) in ordered_quantities(payload) {
        inserted += diesel::insert_into(haier_order_lines::table)
            .values((
                dsl::so_id.eq(so_id),
                dsl::product_code.eq(code),
                dsl::ordered_qty.eq(qty),
                dsl::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(inserted)
}

/// The order's lines, in product-code order. Locking: a plain read.
pub fn lines_of(conn: &mut DbConnection, so_id: &str) -> QueryResult<Vec<OrderLine>> {
    haier_order_lines::table
        .filter(dsl::so_id.eq(so_id))
        .order(dsl::product_code.asc())
        .select(OrderLine::as_select())
        .load(conn)
}

/// Writes a cancel callback's current totals to the order's line of that product. Returns how
/// many rows changed (0 when the line already says so).
/// Locking: a single-row `UPDATE`, inside the callback's transaction.
pub fn write_totals(
    conn: &mut DbConnection,
    so_id: &str,
    totals: &LineTotals,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        haier_order_lines::table
            .filter(dsl::so_id.eq(so_id))
            .filter(dsl::product_code.eq(&totals.product_code))
            .filter(
                dsl::received_qty
                    .ne(totals.received)
                    .or(dsl::rejected_qty.ne(totals.rejected))
                    .or(dsl::returned_qty.ne(totals.returned)),
            ),
    )
    .set((
        dsl::received_qty.eq(totals.received),
        dsl::rejected_qty.eq(totals.rejected),
        dsl::returned_qty.eq(totals.returned),
        dsl::updated_at.eq(now),
    ))
    .execute(conn)
}

/// A whole number ≥ 0, as a JSON number or numeric text.
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| *n >= 0)
}

/// Reads a cancel callback's `itemList` and checks it against the order's lines and the
/// contract's rules: every quantity a whole number ≥ 0 (a missing `receiveQty`, `returnQty` or
/// `rejectQty` counts as 0), `productCode` one of the order's, `totalQty` the units ordered of
/// it, `returnQty ≤ receiveQty`, and `receiveQty + rejectQty ≤ totalQty` (equal once the order
/// is complete). Lines of one product are added up. The error names the line and the rule.
pub fn check_cancel_items(items: &Value, lines: &[OrderLine]) -> Result<Vec<LineTotals>, String> {
    let Value::Array(items) = items else {
        return Err("itemList must be a JSON array".into());
    };
    let mut totals: BTreeMap<String, LineTotals> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let at = |name: &str| format!("itemList[{index}].{name}");
        let Value::Object(fields) = item else {
            return Err(format!("itemList[{index}] must be a JSON object"));
        };
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        };
        let code = match get("productCode") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(format!("{} is missing", at("productCode"))),
        };
        let qty = |name: &str, required: bool| match get(name) {
            None if !required => Ok(0),
            None => Err(format!("{} is missing", at(name))),
            Some(v) => {
                whole_number(v).ok_or_else(|| format!("{} must be a whole number ≥ 0, not {v}", at(name)))
            }
        };
        let total = qty("totalQty", true)?;
        let received = qty("receiveQty", false)?;
        let returned = qty("returnQty", false)?;
        let rejected = qty("rejectQty", false)?;
        if !lines.iter().any(|l| l.product_code == code) {
            let known: Vec<&str> = lines.iter().map(|l| l.product_code.as_str()).collect();
            return Err(format!(
                "{} {code} is not one of the order's products ({})",
                at("productCode"),
                known.join(", ")
            ));
        }
        let sum = totals.entry(code.clone()).or_insert_with(|| LineTotals {
            product_code: code.clone(),
            total: 0,
            received: 0,
            rejected: 0,
            returned: 0,
        });
        sum.total += total;
        sum.received += received;
        sum.rejected += rejected;
        sum.returned += returned;
    }
    for sum in totals.values() {
        let code = &sum.product_code;
        let ordered = lines
            .iter()
            .find(|l| &l.product_code == code)
            .map_or(0, |l| l.ordered_qty);
        if sum.total != ordered {
            return Err(format!(
                "itemList says totalQty {} for {code}, but the order has {ordered}",
                sum.total
            ));
        }
        if sum.returned > sum.received {
            return Err(format!(
                "itemList says returnQty {} for {code}, above its receiveQty {}",
                sum.returned, sum.received
            ));
        }
        if sum.received + sum.rejected > sum.total {
            return Err(format!(
                "itemList says receiveQty {} + rejectQty {} for {code}, above its totalQty {}",
                sum.received, sum.rejected, sum.total
            ));
        }
    }
    Ok(totals.into_values().collect())
}

/// The order's lines with `totals` written over them.
pub fn with_totals(lines: &[OrderLine], totals: &[LineTotals]) -> Vec<OrderLine> {
    lines
        .iter()
        .map(
            |line| match totals.iter().find(|t| t.product_code == line.product_code) {
                Some(t) => OrderLine {
                    received_qty: t.received,
                    rejected_qty: t.rejected,
                    returned_qty: t.returned,
                    ..line.clone()
                },
                None => line.clone(),
            },
        )
        .collect()
}

/// The lines summed: how many units were ordered, received, refused and returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Units {
    pub ordered: i64,
    pub received: i64,
    pub rejected: i64,
    pub returned: i64,
}

impl Units {
    pub fn of(lines: &[OrderLine]) -> Units {
        lines.iter().fold(Units::default(), |u, l| Units {
            ordered: u.ordered + l.ordered_qty,
            received: u.received + l.received_qty,
            rejected: u.rejected + l.rejected_qty,
            returned: u.returned + l.returned_qty,
        })
    }

    /// Units that will not stay with the customer: refused, stopped or returned.
    pub fn gone(self) -> i64 {
        self.rejected + self.returned
    }
}

/// The lines in a sentence, for `cancel_detail`: `P1: 3 ordered, 2 received, 1 refused, 1 returned`.
pub fn describe(lines: &[OrderLine]) -> String {
    lines
        .iter()
        .map(|l| {
            format!(
                "{}: {} ordered, {} received, {} refused, {} returned",
                l.product_code, l.ordered_qty, l.received_qty, l.rejected_qty, l.returned_qty
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How many lines these orders have. Locking: a plain read (the `(so_id, product_code)` key).
pub fn count_of_orders(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<i64> {
    if so_ids.is_empty() {
        return Ok(0);
    }
    haier_order_lines::table
        .filter(dsl::so_id.eq_any(so_ids))
        .count()
        .get_result(conn)
}

/// Deletes the lines of these orders; returns how many. Locking: one `DELETE`, inside the
/// caller's transaction that deletes the orders.
pub fn delete_of_orders(conn: &mut DbConnection, so_ids: &[String]) -> QueryResult<usize> {
    if so_ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(haier_order_lines::table.filter(dsl::so_id.eq_any(so_ids))).execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(code: &str, ordered: i64) -> OrderLine {
        OrderLine {
            id: 1,
            so_id: "SO-1".into(),
            product_code: code.into(),
            ordered_qty: ordered,
            received_qty: 0,
            rejected_qty: 0,
            returned_qty: 0,
            updated_at: chrono::NaiveDateTime::default(),
        }
    }

    #[test]
    fn ordered_quantities_add_up_the_lines_of_one_product() {
        let payload = json!({"itemList": [
            {"productCode": "B", "itemQty": 2},
            {"productCode": "A", "itemQty": "1"},
            {"productCode": "B", "itemQty": 1},
        ]});
        assert_eq!(
            ordered_quantities(&payload.to_string()),
            [("A".to_owned(), 1), ("B".to_owned(), 3)]
        );
        assert!(ordered_quantities("not json").is_empty());
    }

    #[test]
    fn valid_items_are_read_as_totals() {
        let lines = [line("P", 3)];
        let items =
            json!([{"productCode": "P", "totalQty": 3, "receiveQty": "2", "returnQty": 1, "rejectQty": 1}]);
        let totals = check_cancel_items(&items, &lines).unwrap();
        assert_eq!(
            totals,
            [LineTotals {
                product_code: "P".into(),
                total: 3,
                received: 2,
                rejected: 1,
                returned: 1
            }]
        );
        let after = with_totals(&lines, &totals);
        assert_eq!(Units::of(&after).gone(), 2);
        assert_eq!(
            describe(&after),
            "P: 3 ordered, 2 received, 1 refused, 1 returned"
        );
    }

    #[test]
    fn items_breaking_the_rules_are_refused_with_the_rule() {
        let lines = [line("P", 3)];
        let err = |items: Value| check_cancel_items(&items, &lines).unwrap_err();
        assert_eq!(
            err(json!([{"productCode": "P", "totalQty": 3, "receiveQty": 1, "returnQty": 2}])),
            "itemList says returnQty 2 for P, above its receiveQty 1"
        );
        assert_eq!(
            err(json!([{"productCode": "P", "totalQty": 3, "receiveQty": 3, "rejectQty": 1}])),
            "itemList says receiveQty 3 + rejectQty 1 for P, above its totalQty 3"
        );
        assert_eq!(
            err(json!([{"productCode": "P", "totalQty": 2, "rejectQty": 1}])),
            "itemList says totalQty 2 for P, but the order has 3"
        );
        assert_eq!(
            err(json!([{"productCode": "Q", "totalQty": 3}])),
            "itemList[0].productCode Q is not one of the order's products (P)"
        );
        assert_eq!(
            err(json!([{"productCode": "P", "totalQty": 3, "rejectQty": -1}])),
            "itemList[0].rejectQty must be a whole number ≥ 0, not -1"
        );
        assert_eq!(
            err(json!([{"productCode": "P", "totalQty": 3, "rejectQty": 1.5}])),
            "itemList[0].rejectQty must be a whole number ≥ 0, not 1.5"
        );
        assert_eq!(
            err(json!([{"productCode": "P"}])),
            "itemList[0].totalQty is missing"
        );
        assert_eq!(err(json!({"x": 1})), "itemList must be a JSON array");
    }
}

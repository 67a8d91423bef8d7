//! Why an order may not be sent: one [`Problem`] per thing wrong, each naming its field, and
//! [`InvalidOrder`], the list of them. Their text is what `outbox enqueue` prints and what a
//! `dead` row's `last_error` says; callers branch on the variants, never on the text.

use super::state::OutboxStatus;
use chrono::{TimeZone, Utc};
use std::fmt;

/// One thing wrong with an order. `path` names the field (`itemList[1].itemQty`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The payload is not JSON at all.
    NotJson { error: String },
    /// A required field is absent or `null`.
    Missing { path: String },
    /// A required field is blank (or `itemList` has no items).
    Empty { path: String },
    /// A field is of the wrong JSON type: `expected` and `found` say which (`text`, `an array`).
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// Not a whole number; `value` as it was sent.
    NotWholeNumber { path: String, value: String },
    /// Not a number; `value` as it was sent.
    NotNumber { path: String, value: String },
    /// Not a boolean; `value` as it was sent.
    NotBool { path: String, value: String },
    /// A negative amount.
    Negative { path: String, amount: String },
    /// An amount beyond what a decimal holds (`1e400`).
    TooLarge { path: String, amount: String },
    /// An item quantity below 1.
    QuantityBelowOne { path: String, qty: i64 },
    /// `totalQty` is not the sum of the items' `itemQty`.
    TotalQtyMismatch { total: i64, sum: i64 },
    /// `createTime` is not a time from 2000-01-01 to a day from now, in milliseconds.
    CreateTimeOutOfRange { ms: i64, looks_like_seconds: bool },
    /// A delivery or installation time that is neither epoch milliseconds nor a date.
    BadTime { path: String, value: String },
    /// `deliveryInstall` is neither `"true"` nor `"false"`.
    BadDeliveryInstall { value: String },
    /// The checked fields do not make the push format.
    NotPushFormat { error: String },
    /// A column of the outbox row (`so_id`, `online_no`) is not the payload's field.
    ColumnMismatch {
        column: &'static str,
        value: String,
        field: &'static str,
        payload: String,
    },
    /// An item's product code is not one `haier_products` lists as for sale.
    UnknownProduct { index: usize, code: String },
    /// `haier_products` lists nothing for sale yet, so no order can be checked.
    NoCatalog,
    /// The order's `soId` is in the outbox already, in `status` (`None`: gone meanwhile).
    AlreadyInOutbox {
        so_id: String,
        status: Option<OutboxStatus>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotJson { error } => write!(f, "payload is not valid JSON: {error}"),
            Problem::Missing { path } => write!(f, "{path} is missing"),
            Problem::Empty { path } => write!(f, "{path} is empty"),
            Problem::WrongType {
                path,
                expected,
                found,
            } => write!(f, "{path} must be {expected}, not {found}"),
            Problem::NotWholeNumber { path, value } => {
                write!(f, "{path} must be a whole number (got {value})")
            }
            Problem::NotNumber { path, value } => write!(f, "{path} must be a number (got {value})"),
            Problem::NotBool { path, value } => write!(f, "{path} must be true or false (got {value})"),
            Problem::Negative { path, amount } => write!(f, "{path} must not be negative (got {amount})"),
            Problem::TooLarge { path, amount } => {
                write!(f, "{path} is too large to be an amount (got {amount})")
            }
            Problem::QuantityBelowOne { path, qty } => write!(f, "{path} must be at least 1 (got {qty})"),
            Problem::TotalQtyMismatch { total, sum } => {
                write!(f, "totalQty {total} does not equal the sum of itemQty {sum}")
            }
            Problem::CreateTimeOutOfRange {
                ms,
                looks_like_seconds,
            } => {
                write!(
                    f,
                    "createTime must be milliseconds since 1970-01-01 UTC, from 2000-01-01 to a day \
                     from now (got {ms}"
                )?;
                if let Some(at) = Utc.timestamp_millis_opt(*ms).single() {
                    write!(f, ", {}", at.format("%Y-%m-%d %H:%M:%S UTC"))?;
                }
                if *looks_like_seconds {
                    f.write_str("; it looks like seconds")?;
                }
                f.write_str(")")
            }
            Problem::BadTime { path, value } => write!(
                f,
                "{path} must be epoch milliseconds or a date yyyy-MM-dd (got {value})"
            ),
            Problem::BadDeliveryInstall { value } => {
                write!(f, "deliveryInstall must be \"true\" or \"false\" (got {value})")
            }
            Problem::NotPushFormat { error } => write!(f, "payload does not fit the push format: {error}"),
            Problem::ColumnMismatch {
                column,
                value,
                field,
                payload,
            } => write!(
                f,
                "{column} column {value} does not match payload {field} {payload}"
            ),
            Problem::UnknownProduct { index, code } => {
                write!(
                    f,
                    "itemList[{index}].productCode {code} is not a Haier product for sale"
                )
            }
            Problem::NoCatalog => {
                f.write_str("haier_products lists no product for sale yet: run the products job first")
            }
            Problem::AlreadyInOutbox { so_id, status } => {
                let status = status.map_or("unknown", OutboxStatus::as_str);
                write!(f, "soId {so_id} is in the outbox already (status {status})")
            }
        }
    }
}

/// Why an order may not be sent: every problem found, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidOrder {
    pub problems: Vec<Problem>,
}

impl InvalidOrder {
    pub fn one(problem: Problem) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for InvalidOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

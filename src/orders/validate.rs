//! Checks an outbox payload before anything is sent, and normalises what the contract lets a
//! shop write loosely. Every [`Problem`] names its field (`itemList[1].itemQty must be at least 1
//! (got 0)`), so a `dead` row says what to fix. It reads no database: the caller passes the
//! [`Catalog`] of products for sale.
//!
//! Rules (the contract's required fields, the seed's "only Haier products"):
//! - every required field is present and not blank; an optional field sent as `null` is absent;
//! - `itemList` is not empty and every `itemQty` is 1 or more;
//! - `totalQty` equals the sum of `itemQty`;
//! - no amount (`totalAmt`, `retailPrice`, `discountAmount`, `actualPrice`) is negative or
//!   beyond what a decimal holds (`1e400`);
//! - `createTime` is a time from 2000-01-01 to a day from now, in milliseconds since 1970
//!   (`-1`, or a time in seconds, is refused);
//! - every product code is a Haier product for sale;
//! - `distributionTime` and `installTime`, when given, are epoch milliseconds (a number, or a
//!   numeric string) or a date `yyyy-MM-dd` (that day at 23:59:59 Beijing time); they are sent as
//!   JSON numbers of milliseconds ([`super::times`]). `createTime` stays milliseconds.
//!
//! Lenient where it loses nothing: an integer or amount written as a string (`"2"`, `"12.50"`)
//! is taken, a `deliveryInstall` given as a JSON boolean becomes `"true"`/`"false"`, a number
//! where text is expected (a mobile number) becomes text. Amounts are passed through exactly as
//! written (the contract sets no rule for them beyond being amounts). A `deliveryInstall` that contradicts the
//! delivery/install times rule is sent as given, with a warning.

use super::catalog::Catalog;
use super::problem::{InvalidOrder, Problem};
use super::times::parse_shop_time;
use crate::haier::Order;
use chrono::Utc;
use serde_json::{Map, Number, Value};

/// The earliest `createTime` taken: 2000-01-01T00:00:00Z in milliseconds. Anything before is a
/// mistake (`-1`, `0`, or a time in seconds).
const EARLIEST_CREATE_TIME_MS: i64 = 946_684_800_000;
/// How far ahead of this host's clock a `createTime` may be (a shop's clock may run ahead).
const CREATE_TIME_AHEAD_MS: i64 = 24 * 3600 * 1000;

/// The required text fields at the top level, in the contract's order.
const REQUIRED_TEXT: [&str; 11] = [
    "sourceSystem",
    "shopName",
    "sellerCode",
    "consigneeName",
    "consigneeMobile",
    "onlineNo",
    "soId",
    "province",
    "city",
    "area",
    "detailAddress",
];
const OPTIONAL_TEXT: [&str; 2] = ["remark", "town"];
/// The optional times, sent as epoch milliseconds ([`super::times::parse_shop_time`]).
const OPTIONAL_TIMES: [&str; 2] = ["distributionTime", "installTime"];
const ITEM_AMOUNTS: [&str; 3] = ["retailPrice", "discountAmount", "actualPrice"];

/// An order that passed every check, ready to push.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOrder {
    pub order: Order,
    /// Things sent as given that look wrong (the delivery/install times rule), for the log.
    pub warnings: Vec<String>,
}

impl ValidOrder {
    /// The normalised payload, as it is sent and as `outbox enqueue` stores it.
    pub fn payload_json(&self) -> String {
        // An `Order` holds only strings, integers, booleans and JSON numbers: it always encodes.
        serde_json::to_string(&self.order).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Checks one outbox row: the payload's fields, that it agrees with the row's `so_id` and
/// `online_no` columns, and that its products are for sale in `catalog`.
pub fn validate_outbox_row(
    payload: &str,
    so_id: &str,
    online_no: &str,
    catalog: &Catalog,
) -> Result<ValidOrder, InvalidOrder> {
    let valid = parse_order(payload)?;
    let mut problems = check_columns(&valid.order, so_id, online_no);
    problems.extend(catalog.check(&valid.order));
    if problems.is_empty() {
        Ok(valid)
    } else {
        Err(InvalidOrder { problems })
    }
}

/// The row's `so_id` and `online_no` columns must be the payload's `soId` and `onlineNo`: the
/// callbacks are matched on the columns, Haier sees the payload.
pub fn check_columns(order: &Order, so_id: &str, online_no: &str) -> Vec<Problem> {
    [
        ("so_id", so_id, "soId", &order.so_id),
        ("online_no", online_no, "onlineNo", &order.online_no),
    ]
    .into_iter()
    .filter(|(_, value, _, payload)| value != payload)
    .map(|(column, value, field, payload)| Problem::ColumnMismatch {
        column,
        value: value.to_owned(),
        field,
        payload: payload.clone(),
    })
    .collect()
}

/// Checks the fields of a payload and normalises it into an [`Order`].
pub fn parse_order(payload: &str) -> Result<ValidOrder, InvalidOrder> {
    let value: Value = serde_json::from_str(payload)
        .map_err(|e| InvalidOrder::one(Problem::NotJson { error: e.to_string() }))?;
    let Value::Object(fields) = value else {
        return Err(InvalidOrder::one(Problem::WrongType {
            path: "payload".into(),
            expected: "a JSON object",
            found: kind_of(&value),
        }));
    };
    let mut check = Checker::default();
    let mut out = Map::new();

    for name in REQUIRED_TEXT {
        if let Some(text) = check.required_text(&fields, name, name) {
            out.insert(name.into(), Value::String(text));
        }
    }
    // At least 1 follows: it must equal the sum of the quantities, each at least 1.
    let total_qty = check.required_integer(&fields, "totalQty", "totalQty");
    if let Some(qty) = total_qty {
        out.insert("totalQty".into(), qty.into());
    }
    if let Some(amount) = check.required_amount(&fields, "totalAmt", "totalAmt") {
        out.insert("totalAmt".into(), Value::Number(amount));
    }
    if let Some(ms) = check.required_integer(&fields, "createTime", "createTime") {
        if check.create_time(ms, Utc::now().timestamp_millis()) {
            out.insert("createTime".into(), ms.into());
        }
    }
    let delivery_install = check.delivery_install(&fields);
    if let Some(flag) = &delivery_install {
        out.insert("deliveryInstall".into(), Value::String(flag.clone()));
    }
    for name in OPTIONAL_TEXT {
        if let Some(text) = check.optional_text(&fields, name, name) {
            out.insert(name.into(), Value::String(text));
        }
    }
    for name in OPTIONAL_TIMES {
        if let Some(ms) = check.optional_time(&fields, name) {
            out.insert(name.into(), ms.into());
        }
    }
    if let Some(flag) = check.optional_bool(&fields, "governmentOrder", "governmentOrder") {
        out.insert("governmentOrder".into(), Value::Bool(flag));
    }

    let items = check.items(&fields);
    if let (Some(total), Some((_, Some(sum)))) = (total_qty, &items) {
        if total != *sum {
            check.problem(Problem::TotalQtyMismatch { total, sum: *sum });
        }
    }
    if let Some((items, _)) = items {
        out.insert("itemList".into(), Value::Array(items));
    }

    if !check.problems.is_empty() {
        return Err(InvalidOrder {
            problems: check.problems,
        });
    }
    let order: Order = serde_json::from_value(Value::Object(out))
        .map_err(|e| InvalidOrder::one(Problem::NotPushFormat { error: e.to_string() }))?;
    let mut warnings = Vec::new();
    let both_equal = matches!(
        (&order.distribution_time, &order.install_time),
        (Some(d), Some(i)) if d == i
    );
    if (order.delivery_install == "true") != both_equal {
        warnings.push(format!(
            "deliveryInstall is \"{}\" but distributionTime ({}) and installTime ({}) say {}: sent as given",
            order.delivery_install,
            shown(order.distribution_time),
            shown(order.install_time),
            if both_equal { "\"true\"" } else { "\"false\"" },
        ));
    }
    Ok(ValidOrder { order, warnings })
}

/// Collects problems while reading fields.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// A field that is absent or `null`.
    fn missing<T>(&mut self, path: &str) -> Option<T> {
        self.problem(Problem::Missing { path: path.into() });
        None
    }

    /// A field of the wrong JSON type.
    fn wrong_type<T>(&mut self, path: &str, expected: &'static str, value: &Value) -> Option<T> {
        self.problem(Problem::WrongType {
            path: path.into(),
            expected,
            found: kind_of(value),
        });
        None
    }

    /// A field's value, with `null` counted as absent.
    fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
        fields.get(name).filter(|v| !v.is_null())
    }

    fn required_text(&mut self, fields: &Map<String, Value>, name: &str, path: &str) -> Option<String> {
        let Some(value) = Self::present(fields, name) else {
            return self.missing(path);
        };
        match text_of(value) {
            Some(text) if text.trim().is_empty() => {
                self.problem(Problem::Empty { path: path.into() });
                None
            }
            Some(text) => Some(text),
            None => self.wrong_type(path, "text", value),
        }
    }

    fn optional_text(&mut self, fields: &Map<String, Value>, name: &str, path: &str) -> Option<String> {
        let value = Self::present(fields, name)?;
        match text_of(value) {
            Some(text) => Some(text),
            None => self.wrong_type(path, "text", value),
        }
    }

    fn required_integer(&mut self, fields: &Map<String, Value>, name: &str, path: &str) -> Option<i64> {
        let Some(value) = Self::present(fields, name) else {
            return self.missing(path);
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.problem(Problem::NotWholeNumber {
                path: path.into(),
                value: value.to_string(),
            });
        }
        parsed
    }

    fn required_number(&mut self, fields: &Map<String, Value>, name: &str, path: &str) -> Option<Number> {
        let Some(value) = Self::present(fields, name) else {
            return self.missing(path);
        };
        let parsed = match value {
            Value::Number(n) => Some(n.clone()),
            // The number keeps the text as written (serde_json's arbitrary precision).
            Value::String(s) => s.trim().parse::<Number>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.problem(Problem::NotNumber {
                path: path.into(),
                value: value.to_string(),
            });
        }
        parsed
    }

    /// A number that is an amount: not negative, and within what a decimal holds.
    fn required_amount(&mut self, fields: &Map<String, Value>, name: &str, path: &str) -> Option<Number> {
        let amount = self.required_number(fields, name, path)?;
        match amount.as_f64() {
            Some(value) if value.is_finite() && value.abs() < 1e28 => {
                if value < 0.0 {
                    self.problem(Problem::Negative {
                        path: path.into(),
                        amount: amount.to_string(),
                    });
                    return None;
                }
                Some(amount)
            }
            _ => {
                self.problem(Problem::TooLarge {
                    path: path.into(),
                    amount: amount.to_string(),
                });
                None
            }
        }
    }

    /// Whether `ms` is a plausible order time: from 2000-01-01 to a day after `now_ms`.
    fn create_time(&mut self, ms: i64, now_ms: i64) -> bool {
        let latest = now_ms.saturating_add(CREATE_TIME_AHEAD_MS);
        if (EARLIEST_CREATE_TIME_MS..=latest).contains(&ms) {
            return true;
        }
        self.problem(Problem::CreateTimeOutOfRange {
            ms,
            looks_like_seconds: (EARLIEST_CREATE_TIME_MS..=latest).contains(&ms.saturating_mul(1000)),
        });
        false
    }

    /// A delivery or installation time, in epoch milliseconds.
    fn optional_time(&mut self, fields: &Map<String, Value>, name: &str) -> Option<i64> {
        let value = Self::present(fields, name)?;
        match parse_shop_time(value) {
            Ok(ms) => Some(ms),
            Err(bad) => {
                self.problem(Problem::BadTime {
                    path: name.into(),
                    value: bad.value,
                });
                None
            }
        }
    }

    fn optional_bool(&mut self, fields: &Map<String, Value>, name: &str, path: &str) -> Option<bool> {
        let value = Self::present(fields, name)?;
        let parsed = bool_of(value);
        if parsed.is_none() {
            self.problem(Problem::NotBool {
                path: path.into(),
                value: value.to_string(),
            });
        }
        parsed
    }

    fn delivery_install(&mut self, fields: &Map<String, Value>) -> Option<String> {
        let Some(value) = Self::present(fields, "deliveryInstall") else {
            return self.missing("deliveryInstall");
        };
        match value {
            Value::Bool(b) => Some(b.to_string()),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some("true".into()),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some("false".into()),
            other => {
                self.problem(Problem::BadDeliveryInstall {
                    value: other.to_string(),
                });
                None
            }
        }
    }

    /// The normalised items and, when every quantity could be read, their sum.
    fn items(&mut self, fields: &Map<String, Value>) -> Option<(Vec<Value>, Option<i64>)> {
        let items = match Self::present(fields, "itemList") {
            None => return self.missing("itemList"),
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem(Problem::Empty {
                    path: "itemList".into(),
                });
                return None;
            }
            Some(Value::Array(items)) => items,
            Some(other) => return self.wrong_type("itemList", "an array", other),
        };
        let mut out = Vec::with_capacity(items.len());
        let mut sum = Some(0_i64);
        for (i, item) in items.iter().enumerate() {
            let Value::Object(item) = item else {
                self.wrong_type::<()>(&format!("itemList[{i}]"), "an object", item);
                sum = None;
                continue;
            };
            let mut normalised = Map::new();
            let code_path = format!("itemList[{i}].productCode");
            if let Some(code) = self.required_text(item, "productCode", &code_path) {
                normalised.insert("productCode".into(), Value::String(code.trim().to_owned()));
            }
            let qty_path = format!("itemList[{i}].itemQty");
            match self.required_integer(item, "itemQty", &qty_path) {
                Some(qty) if qty < 1 => {
                    self.problem(Problem::QuantityBelowOne { path: qty_path, qty });
                    sum = None;
                }
                Some(qty) => {
                    sum = sum.and_then(|s| s.checked_add(qty));
                    normalised.insert("itemQty".into(), qty.into());
                }
                None => sum = None,
            }
            for name in ITEM_AMOUNTS {
                if let Some(amount) = self.required_amount(item, name, &format!("itemList[{i}].{name}")) {
                    normalised.insert(name.into(), Value::Number(amount));
                }
            }
            if let Some(flag) = self.optional_bool(item, "isGift", &format!("itemList[{i}].isGift")) {
                normalised.insert("isGift".into(), Value::Bool(flag));
            }
            out.push(Value::Object(normalised));
        }
        Some((out, sum))
    }
}

/// A time in milliseconds for a warning, or `absent`.
fn shown(ms: Option<i64>) -> String {
    ms.map_or_else(|| "absent".to_owned(), |ms| ms.to_string())
}

/// Text, or a number taken as its text.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean, also from `"true"`/`"false"`/`"1"`/`"0"` and 1/0.
fn bool_of(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "sourceSystem": "HAIER-SYNC",
            "shopName": "Demo Shop",
            "sellerCode": "8800633175",
            "consigneeName": "张三",
            "consigneeMobile": "13800138000",
            "onlineNo": "ON-1",
            "soId": "SO-1",
            "totalQty": 3,
            "totalAmt": 5999.50,
            "createTime": 1764000000000_i64,
            "province": "北京市",
            "city": "北京市",
            "area": "东城区",
            "detailAddress": "1号",
            "deliveryInstall": "false",
            "itemList": [
                {"productCode": "GA0SZC00A", "itemQty": 1, "retailPrice": 1999.50, "discountAmount": 0, "actualPrice": 1999.50},
                {"productCode": "GA0SZC00B", "itemQty": 2, "retailPrice": 2000.00, "discountAmount": 0, "actualPrice": 2000.00}
            ]
        })
    }

    fn texts(invalid: InvalidOrder) -> Vec<String> {
        invalid.problems.iter().map(ToString::to_string).collect()
    }

    fn problems_of(value: Value) -> Vec<String> {
        texts(parse_order(&value.to_string()).unwrap_err())
    }

    fn for_sale(codes: &[&str]) -> Catalog {
        Catalog::selling(codes.iter().copied())
    }

    #[test]
    fn a_complete_order_passes_with_amounts_as_written() {
        // Written as text so that the amounts keep their trailing zeros.
        let payload = sample()
            .to_string()
            .replace("\"totalAmt\":5999.5", "\"totalAmt\":5999.50")
            .replace("\"retailPrice\":2000.0}", "\"retailPrice\":2000.00}");
        assert!(
            payload.contains("5999.50") && payload.contains("2000.00"),
            "{payload}"
        );
        let valid = parse_order(&payload).unwrap();
        assert_eq!(valid.order.so_id, "SO-1");
        assert_eq!(valid.order.total_qty, 3);
        assert!(valid.warnings.is_empty());
        let sent = valid.payload_json();
        // Amounts keep the shop's own text: 2000.00 stays 2000.00, not 2000.
        assert!(sent.contains("\"retailPrice\":2000.00"), "{sent}");
        assert!(sent.contains("\"totalAmt\":5999.50"), "{sent}");
    }

    #[test]
    fn a_missing_or_null_required_field_is_named() {
        let mut order = sample();
        order.as_object_mut().unwrap().remove("consigneeName");
        assert_eq!(problems_of(order), ["consigneeName is missing"]);
        let mut order = sample();
        order["province"] = Value::Null;
        assert_eq!(problems_of(order), ["province is missing"]);
        let mut order = sample();
        order["city"] = json!("  ");
        assert_eq!(problems_of(order), ["city is empty"]);
    }

    #[test]
    fn a_null_optional_field_counts_as_absent() {
        let mut order = sample();
        order["remark"] = Value::Null;
        order["governmentOrder"] = Value::Null;
        order["itemList"][0]["isGift"] = Value::Null;
        let valid = parse_order(&order.to_string()).unwrap();
        assert_eq!(valid.order.remark, None);
        assert!(!valid.payload_json().contains("remark"));
    }

    #[test]
    fn item_quantities_must_be_at_least_one() {
        let mut order = sample();
        order["itemList"][1]["itemQty"] = json!(0);
        order["totalQty"] = json!(1);
        assert_eq!(
            problems_of(order),
            ["itemList[1].itemQty must be at least 1 (got 0)"]
        );
    }

    #[test]
    fn total_qty_must_be_the_sum_of_item_quantities() {
        let mut order = sample();
        order["totalQty"] = json!(4);
        assert_eq!(
            problems_of(order),
            ["totalQty 4 does not equal the sum of itemQty 3"]
        );
    }

    #[test]
    fn an_empty_item_list_is_refused() {
        let mut order = sample();
        order["itemList"] = json!([]);
        assert_eq!(problems_of(order), ["itemList is empty"]);
        let mut order = sample();
        order["itemList"][0]
            .as_object_mut()
            .unwrap()
            .remove("actualPrice");
        assert_eq!(problems_of(order), ["itemList[0].actualPrice is missing"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut order = sample();
        order.as_object_mut().unwrap().remove("soId");
        order["totalAmt"] = json!("lots");
        order["itemList"][0]["itemQty"] = json!("x");
        assert_eq!(
            problems_of(order),
            [
                "soId is missing",
                "totalAmt must be a number (got \"lots\")",
                "itemList[0].itemQty must be a whole number (got \"x\")",
            ]
        );
    }

    #[test]
    fn loose_types_are_normalised() {
        let mut order = sample();
        order["deliveryInstall"] = json!(true);
        order["distributionTime"] = json!("2026-11-25");
        order["installTime"] = json!("2026-11-25");
        order["consigneeMobile"] = json!(13800138000_i64);
        order["totalQty"] = json!("3");
        order["totalAmt"] = json!("5999.50");
        order["governmentOrder"] = json!("false");
        let valid = parse_order(&order.to_string()).unwrap();
        assert_eq!(valid.order.delivery_install, "true");
        // 2026-11-25 23:59:59 Beijing time, as a number of milliseconds.
        assert_eq!(valid.order.distribution_time, Some(1_795_622_399_000));
        assert!(valid
            .payload_json()
            .contains("\"distributionTime\":1795622399000"));
        assert_eq!(valid.order.consignee_mobile, "13800138000");
        assert_eq!(valid.order.total_qty, 3);
        assert_eq!(valid.order.total_amt.to_string(), "5999.50");
        assert_eq!(valid.order.government_order, Some(false));
        assert!(valid.warnings.is_empty());
    }

    #[test]
    fn delivery_and_install_times_become_milliseconds_and_are_compared_so() {
        let mut order = sample();
        order["deliveryInstall"] = json!("true");
        order["distributionTime"] = json!("2026-12-05");
        order["installTime"] = json!(1_796_486_399_000_i64);
        let valid = parse_order(&order.to_string()).unwrap();
        assert_eq!(valid.order.distribution_time, Some(1_796_486_399_000));
        assert_eq!(valid.order.install_time, Some(1_796_486_399_000));
        assert!(valid.warnings.is_empty(), "{:?}", valid.warnings);
        let sent: Value = serde_json::from_str(&valid.payload_json()).unwrap();
        assert_eq!(sent["distributionTime"], json!(1_796_486_399_000_i64));
        assert_eq!(sent["installTime"], json!(1_796_486_399_000_i64));

        order["installTime"] = json!("1796486399001");
        let valid = parse_order(&order.to_string()).unwrap();
        assert_eq!(valid.order.install_time, Some(1_796_486_399_001));
        assert_eq!(valid.warnings.len(), 1, "{:?}", valid.warnings);
    }

    #[test]
    fn a_time_that_is_not_milliseconds_or_a_date_names_its_field() {
        let mut order = sample();
        order["distributionTime"] = json!("next Tuesday");
        order["installTime"] = json!(12.5);
        assert_eq!(
            problems_of(order),
            [
                "distributionTime must be epoch milliseconds or a date yyyy-MM-dd (got \"next Tuesday\")",
                "installTime must be epoch milliseconds or a date yyyy-MM-dd (got 12.5)",
            ]
        );
    }

    #[test]
    fn a_contradictory_delivery_install_is_sent_with_a_warning() {
        let mut order = sample();
        order["deliveryInstall"] = json!("true");
        let valid = parse_order(&order.to_string()).unwrap();
        assert_eq!(valid.order.delivery_install, "true");
        assert_eq!(valid.warnings.len(), 1);
        assert!(
            valid.warnings[0].contains("deliveryInstall"),
            "{:?}",
            valid.warnings
        );
        let mut order = sample();
        order["deliveryInstall"] = json!("maybe");
        assert_eq!(
            problems_of(order),
            ["deliveryInstall must be \"true\" or \"false\" (got \"maybe\")"]
        );
    }

    #[test]
    fn products_must_be_for_sale() {
        let payload = sample().to_string();
        let err = validate_outbox_row(&payload, "SO-1", "ON-1", &for_sale(&["GA0SZC00A"])).unwrap_err();
        assert_eq!(
            err.problems,
            [Problem::UnknownProduct {
                index: 1,
                code: "GA0SZC00B".into()
            }]
        );
        assert_eq!(
            err.to_string(),
            "itemList[1].productCode GA0SZC00B is not a Haier product for sale"
        );
        assert!(
            validate_outbox_row(&payload, "SO-1", "ON-1", &for_sale(&["GA0SZC00A", "GA0SZC00B"])).is_ok()
        );
    }

    #[test]
    fn columns_must_match_the_payload() {
        let payload = sample().to_string();
        let all = for_sale(&["GA0SZC00A", "GA0SZC00B"]);
        let err = validate_outbox_row(&payload, "SO-2", "ON-1", &all).unwrap_err();
        assert_eq!(
            err.to_string(),
            "so_id column SO-2 does not match payload soId SO-1"
        );
    }

    #[test]
    fn negative_amounts_and_quantities_are_refused_with_the_field_named() {
        let mut order = sample();
        order["totalAmt"] = json!(-1);
        assert_eq!(problems_of(order), ["totalAmt must not be negative (got -1)"]);
        let mut order = sample();
        order["itemList"][0]["retailPrice"] = json!("-0.01");
        order["itemList"][1]["discountAmount"] = json!(-5);
        assert_eq!(
            problems_of(order),
            [
                "itemList[0].retailPrice must not be negative (got -0.01)",
                "itemList[1].discountAmount must not be negative (got -5)",
            ]
        );
        let mut order = sample();
        order["itemList"][0]["itemQty"] = json!(-1);
        order["totalQty"] = json!(-1);
        assert_eq!(
            problems_of(order),
            ["itemList[0].itemQty must be at least 1 (got -1)"]
        );
        let mut order = sample();
        order["totalQty"] = json!(-3);
        assert_eq!(
            problems_of(order),
            ["totalQty -3 does not equal the sum of itemQty 3"]
        );
        // Zero is an amount (a gift), and so is -0.
        let mut order = sample();
        order["itemList"][0]["actualPrice"] = json!(0);
        order["itemList"][0]["discountAmount"] = serde_json::from_str::<Value>("-0").unwrap();
        assert!(parse_order(&order.to_string()).is_ok());
    }

    #[test]
    fn an_amount_beyond_a_decimal_is_refused() {
        let payload = sample()
            .to_string()
            .replace("\"totalAmt\":5999.5", "\"totalAmt\":1e400");
        assert_eq!(
            texts(parse_order(&payload).unwrap_err()),
            ["totalAmt is too large to be an amount (got 1e+400)"]
        );
    }

    #[test]
    fn an_absurd_create_time_is_refused() {
        let mut order = sample();
        order["createTime"] = json!(-1);
        assert_eq!(
            problems_of(order),
            [
                "createTime must be milliseconds since 1970-01-01 UTC, from 2000-01-01 to a day from now \
              (got -1, 1969-12-31 23:59:59 UTC)"
            ]
        );
        let mut order = sample();
        order["createTime"] = json!(1_764_000_000_i64);
        assert_eq!(
            problems_of(order),
            [
                "createTime must be milliseconds since 1970-01-01 UTC, from 2000-01-01 to a day from now \
              (got 1764000000, 1970-01-21 10:00:00 UTC; it looks like seconds)"
            ]
        );
        let mut order = sample();
        let next_week = Utc::now().timestamp_millis() + 7 * 24 * 3600 * 1000;
        order["createTime"] = json!(next_week);
        assert!(problems_of(order)[0].starts_with("createTime must be"));
        let mut order = sample();
        order["createTime"] = json!(i64::MAX);
        assert_eq!(problems_of(order).len(), 1);
    }

    /// Any JSON value: null, booleans, numbers (huge, negative, fractional), text, nested.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            "-?[0-9]{1,30}(\\.[0-9]{1,10})?(e-?[0-9]{1,3})?".prop_map(Value::String),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a shop writes in one field, validation answers (it never panics), and an
        /// order it lets through has no negative amount and a plausible createTime.
        #[test]
        fn any_value_in_any_field_is_answered_and_never_lets_a_negative_amount_through(
            field in proptest::sample::select(vec![
                "totalQty", "totalAmt", "createTime", "soId", "itemList", "deliveryInstall",
                "governmentOrder", "item.itemQty", "item.retailPrice", "item.discountAmount",
                "item.actualPrice", "item.productCode", "item.isGift",
            ]),
            value in any_json(),
        ) {
            let mut order = sample();
            match field.strip_prefix("item.") {
                Some(name) => order["itemList"][0][name] = value,
                None => order[field] = value,
            }
            if let Ok(valid) = parse_order(&order.to_string()) {
                let o = &valid.order;
                proptest::prop_assert!(o.total_amt.as_f64().is_some_and(|a| a >= 0.0));
                proptest::prop_assert!(o.create_time >= EARLIEST_CREATE_TIME_MS);
                proptest::prop_assert!(o.item_list.iter().all(|i| i.item_qty >= 1));
            }
        }

        #[test]
        fn any_text_as_a_payload_is_answered(text in ".{0,200}") {
            let _ = parse_order(&text);
        }
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(parse_order("{")
            .unwrap_err()
            .to_string()
            .starts_with("payload is not valid JSON"));
        assert_eq!(
            parse_order("[1]").unwrap_err().to_string(),
            "payload must be a JSON object, not an array"
        );
    }
}

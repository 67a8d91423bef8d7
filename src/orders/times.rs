//! The delivery and installation times of an order as YLH takes them: JSON numbers of epoch
//! milliseconds. A shop may write one as a number, a numeric string, or a date (`2026-12-05`),
//! which means that day at 23:59:59 Beijing time (UTC+8), the time of day YLH's reschedule call
//! requires. The push (through `validate.rs`) and the reschedule command convert with
//! [`parse_shop_time`].

use chrono::NaiveDate;
use serde_json::Value;

/// Beijing time: UTC+8 all year round, in milliseconds.
const BEIJING_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// Why a shop's time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be epoch milliseconds or a date yyyy-MM-dd (got {value})")]
pub struct BadShopTime {
    /// The value as it was written (JSON).
    pub value: String,
}

/// `date` at 23:59:59 Beijing time, in milliseconds since 1970-01-01 UTC.
pub fn beijing_end_of_day_ms(date: NaiveDate) -> i64 {
    // 23:59:59 exists on every day, so the default (midnight) is never taken.
    let end = date.and_hms_opt(23, 59, 59).unwrap_or_default();
    // Beijing time is the same wall time 8 hours earlier in UTC.
    end.and_utc().timestamp_millis() - BEIJING_OFFSET_MS
}

/// A delivery or installation time as the shop wrote it, in epoch milliseconds: a whole JSON
/// number stays as it is; a string of digits is that number; a string `yyyy-MM-dd` is that day at
/// 23:59:59 Beijing time. Anything else (a fraction, a negative number, other text, `true`, an
/// object) is refused.
pub fn parse_shop_time(value: &Value) -> Result<i64, BadShopTime> {
    let bad = || BadShopTime {
        value: value.to_string(),
    };
    match value {
        Value::Number(n) => n.as_i64().filter(|ms| *ms >= 0).ok_or_else(bad),
        Value::String(text) => {
            let text = text.trim();
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                return text.parse::<i64>().map_err(|_| bad());
            }
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                // `%Y` also takes years of one to three digits; a date is written in full.
                .filter(|_| text.len() == 10)
                .map(beijing_end_of_day_ms)
                .ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-12-05 23:59:59 +08:00 = 2026-12-05 15:59:59 UTC.
    const DEC_5_END_MS: i64 = 1_796_486_399_000;

    #[test]
    fn a_date_is_the_end_of_that_day_in_beijing() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(beijing_end_of_day_ms(date), DEC_5_END_MS);
        assert_eq!(parse_shop_time(&json!("2026-12-05")), Ok(DEC_5_END_MS));
        assert_eq!(parse_shop_time(&json!(" 2026-12-05 ")), Ok(DEC_5_END_MS));
        let at = chrono::DateTime::from_timestamp_millis(DEC_5_END_MS).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-05T15:59:59+00:00");
    }

    #[test]
    fn a_number_stays_and_a_numeric_string_is_converted() {
        assert_eq!(parse_shop_time(&json!(DEC_5_END_MS)), Ok(DEC_5_END_MS));
        assert_eq!(parse_shop_time(&json!("1796486399000")), Ok(DEC_5_END_MS));
        assert_eq!(parse_shop_time(&json!(0)), Ok(0));
    }

    #[test]
    fn anything_else_is_refused_with_the_value() {
        for value in [
            json!("2026-13-01"),
            json!("2026-12-05 10:00:00"),
            json!("05/12/2026"),
            json!("tomorrow"),
            json!(""),
            json!("26-12-05"),
            json!(1.5),
            json!(-1),
            json!("-5"),
            json!(true),
            json!([1]),
            json!({"ms": 1}),
        ] {
            let error = parse_shop_time(&value).unwrap_err();
            assert_eq!(error.value, value.to_string());
            assert!(
                error.to_string().starts_with("must be epoch milliseconds"),
                "{error}"
            );
        }
    }
}

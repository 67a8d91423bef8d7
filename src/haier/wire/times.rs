//! Haier's times in the shapes its replies use: `yyyy-MM-dd HH:mm:ss`, a date alone
//! (`yyyy-MM-dd`, read as its midnight) and epoch milliseconds (a number, or digits in a string),
//! all read as Beijing wall time so events order by when they happened, not by their text.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};

/// Beijing time, UTC+8 all year (China has no daylight saving).
pub(crate) fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is within a day of UTC")
}

/// The Beijing wall time of a Haier time, or `None` when the text is none of the three shapes.
pub(crate) fn parse_beijing_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = text.parse().ok()?;
        return DateTime::from_timestamp_millis(ms).map(|at| at.with_timezone(&beijing()).naive_local());
    }
    // A number sent as JSON with a fraction (`1751328000000.0`) reads as its whole milliseconds.
    if let Ok(ms) = text.parse::<f64>() {
        if ms.is_finite() && ms >= 0.0 && ms.fract() == 0.0 && ms < 1e15 {
            return DateTime::from_timestamp_millis(ms as i64)
                .map(|at| at.with_timezone(&beijing()).naive_local());
        }
        return None;
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        ["%Y-%m-%d", "%Y/%m/%d"]
            .iter()
            .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
            .and_then(|date| date.and_hms_opt(0, 0, 0))
    })
}

/// `yyyy-MM-dd HH:mm:ss`, the shape the logistics rows store.
pub(crate) fn format_beijing_time(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn the_three_shapes_read_as_beijing_wall_time() {
        assert_eq!(
            parse_beijing_time("2025-07-01 08:30:00"),
            Some(at("2025-07-01 08:30:00"))
        );
        assert_eq!(
            parse_beijing_time(" 2025-07-01 "),
            Some(at("2025-07-01 00:00:00"))
        );
        // 2025-07-01 00:00:00 UTC is 08:00 in Beijing.
        assert_eq!(
            parse_beijing_time("1751328000000"),
            Some(at("2025-07-01 08:00:00"))
        );
        assert_eq!(
            parse_beijing_time("1751328000000.0"),
            Some(at("2025-07-01 08:00:00"))
        );
        assert_eq!(
            parse_beijing_time("2025-07-01T08:30:00"),
            Some(at("2025-07-01 08:30:00"))
        );
        for bad in ["", "soon", "2025-13-01", "1.5", "-3", "2025-07-01 25:00:00"] {
            assert_eq!(parse_beijing_time(bad), None, "{bad}");
        }
        assert_eq!(
            format_beijing_time(at("2025-07-01 08:00:00")),
            "2025-07-01 08:00:00"
        );
    }
}

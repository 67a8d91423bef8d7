//! Cron schedules from `jobs.toml`: 6 fields with seconds, or a 5-field crontab taken as second 0.

use chrono::{DateTime, TimeZone};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use std::fmt;

/// A validated cron schedule. Day-of-month and day-of-week cannot both be restricted: cron
/// implementations disagree on whether they combine with AND or OR, so such a schedule is refused.
#[derive(Clone)]
pub struct Schedule {
    /// The 6-field expression (seconds first) the scheduler runs.
    normalized: String,
    /// The text as written in `jobs.toml`.
    original: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a schedule as written in `jobs.toml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let original = text.trim().to_owned();
        if original.is_empty() {
            return Err("the schedule is empty".into());
        }
        let normalized = if original.starts_with('@') {
            original.clone()
        } else {
            let fields: Vec<&str> = original.split_whitespace().collect();
            match fields.len() {
                5 => format!("0 {}", fields.join(" ")),
                6 => fields.join(" "),
                n => {
                    return Err(format!(
                        "`{original}` has {n} fields; a schedule has 6 (sec min hour day month weekday) or 5 (crontab)"
                    ))
                }
            }
        };
        if !original.starts_with('@') {
            let fields: Vec<&str> = normalized.split_whitespace().collect();
            if fields[3] != "*" && fields[3] != "?" && fields[5] != "*" && fields[5] != "?" {
                return Err(format!(
                    "`{original}` restricts both day-of-month and day-of-week; set one of them to `*`"
                ));
            }
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(&normalized)
            .map_err(|e| format!("`{original}` is not a valid cron expression: {e}"))?;
        Ok(Self {
            normalized,
            original,
            cron,
        })
    }

    /// The 6-field expression, seconds first.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The expression as written in the file.
    pub fn as_written(&self) -> &str {
        &self.original
    }

    /// The first fire time strictly after `after`.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(after, false).ok()
    }

    /// The last fire time at or before `at`.
    pub fn previous_at_or_before<Tz: TimeZone>(&self, at: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_previous_occurrence(at, true).ok()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.original)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn five_fields_mean_second_zero() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(s.normalized(), "0 */5 * * * *");
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 10, 2, 30).unwrap();
        assert_eq!(
            s.next_after(&at).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 10, 5, 0).unwrap()
        );
        assert_eq!(
            s.previous_at_or_before(&at).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap()
        );
    }

    #[test]
    fn six_fields_and_macros_parse() {
        assert!(Schedule::parse("*/2 * * * * *").is_ok());
        assert!(Schedule::parse("0 0 3 * * MON-FRI").is_ok());
        assert!(Schedule::parse("@hourly").is_ok());
    }

    #[test]
    fn bad_schedules_are_refused_with_a_reason() {
        assert!(Schedule::parse("").unwrap_err().contains("empty"));
        assert!(Schedule::parse("* * *").unwrap_err().contains("3 fields"));
        assert!(Schedule::parse("0 61 * * * *")
            .unwrap_err()
            .contains("not a valid cron"));
        assert!(Schedule::parse("0 0 0 13 * FRI")
            .unwrap_err()
            .contains("both day-of-month"));
    }
}

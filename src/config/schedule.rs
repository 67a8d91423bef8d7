//! Cron schedules from `jobs.toml`: 6 fields with seconds, a 5-field crontab taken as second 0,
//! or a macro such as `@hourly`.

use super::limits::SCHEDULE_HORIZON_YEARS;
use chrono::{DateTime, Months, TimeZone, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use std::fmt;

/// A validated cron schedule. Day-of-month and day-of-week cannot both be restricted: cron
/// implementations disagree on whether they combine with AND or OR, so such a schedule is refused.
/// A schedule that never fires (`0 0 0 30 2 *`) is refused too.
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
            macro_to_fields(&original)?.to_owned()
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
        let schedule = Self {
            normalized,
            original,
            cron,
        };
        schedule.check_fires_within_horizon(&Utc::now())?;
        Ok(schedule)
    }

    /// Refuses a schedule with no fire time in the [`SCHEDULE_HORIZON_YEARS`] after `now`.
    fn check_fires_within_horizon(&self, now: &DateTime<Utc>) -> Result<(), String> {
        let horizon = now
            .checked_add_months(Months::new(12 * SCHEDULE_HORIZON_YEARS.unsigned_abs()))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // The same fields with a year range, so that the search for a day that never comes stops
        // at the horizon instead of the cron library's year 5000.
        use chrono::Datelike as _;
        let bounded = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(&format!("{} {}-{}", self.normalized, now.year(), horizon.year()));
        let next = match bounded {
            Ok(cron) => cron.find_next_occurrence(now, false).ok(),
            Err(_) => self.next_after(now),
        };
        match next {
            Some(next) if next <= horizon => Ok(()),
            _ => Err(format!(
                "`{}` never fires: it names no time in the next {SCHEDULE_HORIZON_YEARS} years \
                 (a day that does not exist, such as February 30?)",
                self.original
            )),
        }
    }

    /// The 6-field expression, seconds first.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The expression as written in the file.
    pub fn as_written(&self) -> &str {
        &self.original
    }

    /// The schedule in words, for people: `every 5 minutes`, `every day at 02:00`, `Monday to
    /// Friday at 03:00`. The common shapes are said here; any other is said by the cron
    /// library's describer (`at 10 past every hour, in March`), and the expression as written
    /// when that has nothing to say.
    pub fn describe(&self) -> String {
        if let Some(words) = describe_common(&self.normalized) {
            return words;
        }
        let words = self.cron.describe();
        let words = words.trim().trim_end_matches('.');
        let mut chars = words.chars();
        match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => self.original.clone(),
        }
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

/// The macros a schedule may be, as the 6 fields they stand for (the cron library's meanings).
const MACROS: [(&str, &str); 6] = [
    ("@yearly", "0 0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *"),
    ("@monthly", "0 0 0 1 * *"),
    ("@weekly", "0 0 0 * * 0"),
    ("@daily", "0 0 0 * * *"),
    ("@hourly", "0 0 * * * *"),
];

/// The 6 fields a macro stands for, or why it is refused.
fn macro_to_fields(text: &str) -> Result<&'static str, String> {
    if let Some((_, fields)) = MACROS.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)) {
        return Ok(fields);
    }
    let names: Vec<&str> = MACROS.iter().map(|(name, _)| *name).collect();
    if text.eq_ignore_ascii_case("@reboot") {
        return Err(format!(
            "`@reboot` is not supported: a job runs on a clock schedule, and `catch_up = \"once\"` \
             already runs a job at start when its last fire time was missed; use a cron \
             expression (6 fields with seconds, or 5 as in crontab) or one of {}",
            names.join(", ")
        ));
    }
    Err(format!(
        "unknown schedule macro `{text}`; expected a cron expression (6 fields with seconds, or 5 \
         as in crontab) or one of {}",
        names.join(", ")
    ))
}

/// Day-of-week names, Sunday first as in cron (0 and 7 are Sunday).
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The common shapes of a 6-field expression in words; `None` for any other.
fn describe_common(normalized: &str) -> Option<String> {
    let fields: Vec<&str> = normalized.split_whitespace().collect();
    let [sec, min, hour, dom, month, dow] = fields.as_slice() else {
        return None;
    };
    let any = |field: &str| field == "*" || field == "?";
    if !any(month) {
        return None;
    }
    let days_any = any(dom) && any(dow);
    // Every N seconds, minutes or hours.
    if days_any && any(hour) && any(min) {
        if any(sec) {
            return Some("every second".into());
        }
        return step_of(sec).map(|n| plural_every(n, "second"));
    }
    let second = number(sec, 59)?;
    if days_any && any(hour) {
        if any(min) {
            return (second == 0).then(|| "every minute".into());
        }
        if let Some(n) = step_of(min) {
            return (second == 0).then(|| plural_every(n, "minute"));
        }
        let minute = number(min, 59)?;
        return Some(match (minute, second) {
            (0, 0) => "every hour".into(),
            _ => format!("every hour at {}", clock_after_hour(minute, second)),
        });
    }
    let minute = number(min, 59)?;
    if days_any {
        if let Some(n) = step_of(hour) {
            let at = clock_after_hour(minute, second);
            return Some(format!("{} at {at}", plural_every(n, "hour")));
        }
    }
    let hours: Vec<u32> = hour
        .split(',')
        .map(|h| number(h, 23))
        .collect::<Option<Vec<u32>>>()?;
    let times: Vec<String> = hours.iter().map(|h| clock(*h, minute, second)).collect();
    let at = join_and(&times);
    if days_any {
        return Some(format!("every day at {at}"));
    }
    if any(dow) {
        let day = number(dom, 31).filter(|d| *d >= 1)?;
        return Some(format!("on day {day} of every month at {at}"));
    }
    if !any(dom) {
        return None;
    }
    if let Some((from, to)) = dow.split_once('-') {
        let (from, to) = (weekday(from)?, weekday(to)?);
        return (from < to).then(|| format!("{} to {} at {at}", WEEKDAYS[from], WEEKDAYS[to]));
    }
    let days: Vec<&str> = dow
        .split(',')
        .map(|d| weekday(d).map(|i| WEEKDAYS[i]))
        .collect::<Option<Vec<&str>>>()?;
    Some(format!("every {} at {at}", join_and(&days)))
}

/// `N` of `*/N` or `0/N`.
fn step_of(field: &str) -> Option<u32> {
    let (start, step) = field.split_once('/')?;
    if start != "*" && start != "0" {
        return None;
    }
    step.parse().ok().filter(|n| *n >= 1)
}

/// A plain number no larger than `max`.
fn number(field: &str, max: u32) -> Option<u32> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok().filter(|n| *n <= max)
}

/// A day of the week by number (0 to 7) or by its three letters, as an index of [`WEEKDAYS`].
fn weekday(field: &str) -> Option<usize> {
    if let Some(n) = number(field, 7) {
        return usize::try_from(n % 7).ok();
    }
    WEEKDAYS.iter().position(|name| {
        name.get(..3)
            .is_some_and(|short| short.eq_ignore_ascii_case(field))
    })
}

fn plural_every(n: u32, unit: &str) -> String {
    if n == 1 {
        format!("every {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

fn clock(hour: u32, minute: u32, second: u32) -> String {
    if second == 0 {
        format!("{hour:02}:{minute:02}")
    } else {
        format!("{hour:02}:{minute:02}:{second:02}")
    }
}

/// `:05` or `:05:30` past the hour.
fn clock_after_hour(minute: u32, second: u32) -> String {
    if second == 0 {
        format!(":{minute:02}")
    } else {
        format!(":{minute:02}:{second:02}")
    }
}

fn join_and<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [rest @ .., last] => format!(
            "{} and {}",
            rest.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", "),
            last.as_ref()
        ),
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
    fn common_schedules_are_said_in_words() {
        let words = |text: &str| Schedule::parse(text).unwrap().describe();
        assert_eq!(words("*/5 * * * *"), "every 5 minutes");
        assert_eq!(words("0 */15 * * * *"), "every 15 minutes");
        assert_eq!(words("* * * * *"), "every minute");
        assert_eq!(words("*/30 * * * * *"), "every 30 seconds");
        assert_eq!(words("@hourly"), "every hour");
        assert_eq!(words("0 5 * * * *"), "every hour at :05");
        assert_eq!(words("0 10 */2 * * *"), "every 2 hours at :10");
        assert_eq!(words("0 0 2 * * *"), "every day at 02:00");
        assert_eq!(words("@daily"), "every day at 00:00");
        assert_eq!(words("30 15 8 * * *"), "every day at 08:15:30");
        assert_eq!(words("0 0 6,18 * * *"), "every day at 06:00 and 18:00");
        assert_eq!(words("0 0 3 * * MON-FRI"), "Monday to Friday at 03:00");
        assert_eq!(
            words("0 30 1 * * 1,3,5"),
            "every Monday, Wednesday and Friday at 01:30"
        );
        assert_eq!(words("@weekly"), "every Sunday at 00:00");
        assert_eq!(words("0 0 4 1 * *"), "on day 1 of every month at 04:00");
    }

    #[test]
    fn other_schedules_fall_back_to_the_cron_library_s_words() {
        let words = Schedule::parse("0 0 12 * 3 *").unwrap().describe();
        assert!(!words.is_empty() && words != "0 0 12 * 3 *", "{words}");
        assert!(words.contains("12:00"), "{words}");
        assert!(!words.ends_with('.'), "{words}");
    }

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
    fn macros_become_six_fields() {
        assert_eq!(Schedule::parse("@hourly").unwrap().normalized(), "0 0 * * * *");
        assert_eq!(Schedule::parse("@DAILY").unwrap().normalized(), "0 0 0 * * *");
        assert_eq!(Schedule::parse("@daily").unwrap().as_written(), "@daily");
    }

    #[test]
    fn reboot_and_unknown_macros_are_refused_with_what_works() {
        let reboot = Schedule::parse("@reboot").unwrap_err();
        assert!(reboot.starts_with("`@reboot` is not supported"), "{reboot}");
        assert!(
            reboot.contains("5 as in crontab") && reboot.contains("@hourly"),
            "{reboot}"
        );
        let unknown = Schedule::parse("@fortnightly").unwrap_err();
        assert!(
            unknown.starts_with("unknown schedule macro `@fortnightly`"),
            "{unknown}"
        );
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused() {
        for never in ["0 0 0 30 2 *", "0 0 0 31 4 *", "0 0 0 31 2,4,6,9,11 *"] {
            let err = Schedule::parse(never).unwrap_err();
            assert!(err.contains("never fires"), "{never}: {err}");
        }
        // Rare, but within the horizon: 29 February.
        assert!(Schedule::parse("0 0 0 29 2 *").is_ok());
    }

    #[test]
    fn the_horizon_is_counted_from_now() {
        let leap_day = Schedule::parse("0 0 0 29 2 *").unwrap();
        let after_2096 = Utc.with_ymd_and_hms(2096, 3, 1, 0, 0, 0).unwrap();
        // 2100 is no leap year: the next 29 February after 2096 is in 2104, 8 years on.
        assert!(leap_day.check_fires_within_horizon(&after_2096).is_err());
        let after_2027 = Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap();
        assert!(leap_day.check_fires_within_horizon(&after_2027).is_ok());
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

//! Alerts and missed runs: every metric a rule of `systemd/haier-sync-alerts.yml` names is one
//! `/metrics` serves, and the fires a job missed while no daemon ran show in `status` and on
//! `/metrics`, with how many were caught up and since when.

use crate::support::*;
use haier_sync::cli::status;
use haier_sync::runs::{RunStatus, Trigger};
use haier_sync::scheduler::{self, Daemon};
use std::collections::BTreeSet;

const ALERTS: &str = include_str!("../../systemd/haier-sync-alerts.yml");

/// PromQL words that are not metric names: keywords, and the aggregation operators (which may
/// be followed by `by (...)` rather than their parenthesis).
const KEYWORDS: [&str; 27] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The metric names a PromQL expression reads: identifiers outside label matchers, ranges,
/// strings and grouping clauses that are not called as functions and are not keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut after_grouping_word = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '(' if after_grouping_word => {
                // `by (system, le)`: label names, not metrics.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                after_grouping_word = false;
            }
            c if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = word.to_ascii_lowercase();
                if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&lower.as_str())
                {
                    after_grouping_word = true;
                } else if next != Some(&'(') && !KEYWORDS.contains(&lower.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The sample names of a metrics text (`name{labels} value` or `name value`).
fn served_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    let response = reqwest::get(format!("{}/metrics", app.receiver().base_url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// Every alert rule's expression, by alert name.
fn alert_exprs() -> Vec<(String, String)> {
    let doc: serde_norway::Value = serde_norway::from_str(ALERTS).expect("the alerts file is YAML");
    let groups = doc["groups"].as_sequence().expect("groups");
    let mut exprs = Vec::new();
    for group in groups {
        for rule in group["rules"].as_sequence().expect("rules") {
            let alert = rule["alert"].as_str().expect("every rule is an alert").to_owned();
            let expr = rule["expr"].as_str().expect("every rule has an expr").to_owned();
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{alert} has a summary"
            );
            assert!(
                rule["labels"]["severity"].as_str().is_some(),
                "{alert} has a severity"
            );
            exprs.push((alert, expr));
        }
    }
    exprs
}

#[test]
fn metric_names_are_read_from_expressions() {
    let names = metric_names(
        "histogram_quantile(0.95, sum by (system, le) (rate(a_bucket{x=\"b c\"}[10m]))) > 2 \
         and on(job) b - c:d > 1e3",
    );
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a_bucket", "b", "c:d"]);
}

#[tokio::test]
async fn every_metric_an_alert_rule_names_is_served_by_metrics() {
    let jobs = "[jobs.hourly]\nkind = \"stock\"\nschedule = \"0 0 * * * *\"\n";
    let app = spawn_app_with(
        Options::default()
            .callbacks(Callbacks::InProcess)
            .extra_toml(jobs),
    )
    .await;
    // Some activity, so that the latency histograms have series.
    app.ctx.client.query_balance().await.unwrap();
    for hours in 1..=3 {
        finished_row(app.db(), "hourly", db_now_minus_hours(hours), RunStatus::Failed).await;
    }

    let text = scrape(&app).await;
    let served = served_names(&text);
    let exprs = alert_exprs();
    assert!(exprs.len() >= 9, "{exprs:?}");
    let mut named = BTreeSet::new();
    for (alert, expr) in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{alert}: no metric in {expr}");
        for name in names {
            assert!(
                served.contains(&name),
                "{alert} names {name}, which /metrics does not serve:\n{text}"
            );
            named.insert(name);
        }
    }
    for name in [
        "haier_request_duration_seconds_bucket",
        "haier_errors_total",
        "haier_calls_total",
        "haier_breaker_open",
        "haier_sync_job_overdue",
        "haier_sync_job_failing",
        "haier_sync_job_missed_fires",
        "haier_order_outbox_rows",
        "haier_sync_orders_unconfirmed",
        "haier_sync_callbacks_unmatched",
    ] {
        assert!(named.contains(name), "no alert reads {name}");
    }
    for line in [
        "haier_sync_job_failing{job=\"hourly\"} 1",
        "haier_breaker_open{system=\"openplat\"} 0",
        "haier_calls_total{operation=\"balance\"} 1",
        "haier_request_duration_seconds_count{system=\"openplat\",operation=\"balance\"} 1",
        "haier_sync_job_missed_fires{job=\"hourly\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
}

fn db_now_minus_hours(hours: i64) -> chrono::NaiveDateTime {
    (chrono::Utc::now() - chrono::Duration::hours(hours)).naive_utc()
}

#[tokio::test]
async fn status_and_metrics_show_the_fires_missed_while_no_daemon_ran() {
    // `hourly` may catch up only a fire of the last second (so, in effect, none); `daily` any
    // fire of the last two days.
    let jobs = "[daemon]\nwatch_config = false\n\n\
        [jobs.hourly]\nkind = \"stock\"\nschedule = \"0 0 * * * *\"\ntimezone = \"UTC\"\ncatch_up_within_ms = 1000\n\n\
        [jobs.daily]\nkind = \"stock\"\nschedule = \"0 0 3 * * *\"\ntimezone = \"UTC\"\ncatch_up_within_ms = 172800000\n";
    let app = spawn_app_with(
        Options::default()
            .callbacks(Callbacks::InProcess)
            .extra_toml(jobs),
    )
    .await;
    let config = app.config().clone();
    let now = chrono::Utc::now();
    let hourly = config.jobs["hourly"].as_sync().unwrap().clone();
    let daily = config.jobs["daily"].as_sync().unwrap().clone();
    // Their last runs: yesterday's tick of this hour, and the tick three days ago.
    let yesterday = scheduler::fire_time_at_or_before(&hourly, now - chrono::Duration::days(1)).unwrap();
    let days_ago = scheduler::fire_time_at_or_before(&daily, now - chrono::Duration::days(3)).unwrap();
    finished_row(app.db(), "hourly", yesterday.naive_utc(), RunStatus::Success).await;
    finished_row(app.db(), "daily", days_ago.naive_utc(), RunStatus::Success).await;

    let runner = FakeRunner::new(app.db(), false);
    let handle = Daemon::new(config.clone(), app.db().clone(), runner.clone())
        .start()
        .await
        .unwrap();
    wait_for_rows(app.db(), "daily", "the catch-up run", DEADLINE, |rows| {
        rows.iter()
            .any(|r| r.trigger == Trigger::CatchUp && r.status == RunStatus::Success)
    })
    .await;
    let hourly_caught_up = rows(app.db(), "hourly")
        .await
        .iter()
        .filter(|r| r.trigger == Trigger::CatchUp)
        .count() as i64;
    assert!(hourly_caught_up <= 1);

    let report = status::collect(app.db(), &config, chrono::Utc::now())
        .await
        .unwrap();
    let missed = |name: &str| {
        report
            .jobs
            .iter()
            .find(|j| j.job == name)
            .and_then(|j| j.missed.clone())
            .unwrap_or_else(|| panic!("{name} has no missed fires in {report:#?}"))
    };
    let (h, d) = (missed("hourly"), missed("daily"));
    // Every hourly fire since yesterday's (24, or 25 when an hour turned meanwhile).
    assert_eq!(
        h.first_missed_at,
        (yesterday + chrono::Duration::hours(1)).naive_utc()
    );
    assert_eq!(
        h.missed_count,
        (h.last_missed_at - h.first_missed_at).num_hours() + 1
    );
    assert!((24..=25).contains(&h.missed_count), "{h:?}");
    assert_eq!(h.caught_up_count, hourly_caught_up, "{h:?}");
    assert_eq!(
        d.first_missed_at,
        (days_ago + chrono::Duration::days(1)).naive_utc()
    );
    assert!((3..=4).contains(&d.missed_count), "{d:?}");
    assert_eq!(d.caught_up_count, 1);
    assert_eq!(d.detected_by, haier_sync::db::instance_name());

    let table = status::render(&report, chrono_tz::UTC);
    let since = h.first_missed_at.format("%Y-%m-%d %H:%M");
    let expected = format!(
        "missed: hourly: missed {} fires since {since} ({hourly_caught_up} caught up) while no daemon ran",
        h.missed_count
    );
    assert!(table.contains(&expected), "{expected}\nnot in:\n{table}");
    let since = d.first_missed_at.format("%Y-%m-%d %H:%M");
    let expected = format!(
        "missed: daily: missed {} fires since {since} (1 caught up)",
        d.missed_count
    );
    assert!(table.contains(&expected), "{expected}\nnot in:\n{table}");

    let text = scrape(&app).await;
    for line in [
        format!("haier_sync_job_missed_fires{{job=\"hourly\"}} {}", h.missed_count),
        format!("haier_sync_job_caught_up_fires{{job=\"hourly\"}} {hourly_caught_up}"),
        format!("haier_sync_job_missed_fires{{job=\"daily\"}} {}", d.missed_count),
        "haier_sync_job_caught_up_fires{job=\"daily\"} 1".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    assert_eq!(handle.shutdown().await.unwrap().exit_code(), 0);

    // A restart right after finds nothing more missed, and the note stands.
    let again = Daemon::new(config.clone(), app.db().clone(), runner)
        .start()
        .await
        .unwrap();
    let report = status::collect(app.db(), &config, chrono::Utc::now())
        .await
        .unwrap();
    let daily_now = report.jobs.iter().find(|j| j.job == "daily").unwrap();
    assert_eq!(daily_now.missed.as_ref(), Some(&d));
    assert_eq!(again.shutdown().await.unwrap().exit_code(), 0);
}

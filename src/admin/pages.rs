//! The pages, rendered with maud: the overview, one job (with its action forms when actions are
//! on), the 403, 404 and 500 pages. Times are shown in `[defaults] timezone` and labelled with it.

use super::actions::View;
use super::chart;
use super::Admin;
use crate::cli::status::{self, StatusReport};
use crate::config::JobSpec;
use crate::health::HealthReport;
use crate::orders::outbox;
use crate::runs::{self, LogFilter, RunSpan, RunStatus, SyncLog};
use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// How far back the job page looks.
const JOB_PAGE_DAYS: i64 = 7;
/// Runs the job page reads (start, end, status only) for its chart and counts at most; a job
/// firing every minute has 10 080 a week.
const JOB_PAGE_MAX_RUNS: i64 = 20_000;
/// Failures listed on the job page (the sync log lists the rest).
const JOB_PAGE_FAILURES: i64 = 50;
/// Latest runs listed on the job page (the sync log lists the rest).
const JOB_PAGE_LATEST: i64 = 50;
/// Run-now requests listed on the job page.
const JOB_PAGE_REQUESTS: i64 = 5;

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fff}
header{background:#263238;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:baseline}
header a{color:#fff;text-decoration:none}header .zone{margin-left:auto;font-size:.85em;opacity:.8}
main{padding:1em;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border-bottom:1px solid #e0e0e0;padding:.3em .7em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td code{white-space:nowrap}
.status{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-size:.9em}
.alert{background:#ffebee;border-left:4px solid #c62828;padding:.4em .8em;margin:.3em 0}
.warn{background:#fff8e1;border-left:4px solid #f9a825;padding:.4em .8em;margin:.3em 0}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.4em .8em;margin:.3em 0}
.paused{color:#6a1b9a;font-weight:600}.muted{color:#777}
.legend span{margin-right:1em}
form.action{display:inline-block;margin:.2em 1em .2em 0}form.action input[type=text]{width:18em}
.notice{margin-bottom:1em}
";

/// The common frame of every page.
pub(crate) fn layout(title: &str, zone: Tz, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · haier-sync" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { a href="/" { "haier-sync" } }
                    a href="/" { "Overview" }
                    a href="/orders" { "Orders" }
                    a href="/logs" { "Sync log" }
                    a href="/prices" { "Prices" }
                    span.zone { "Times in " (zone.name()) }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// `text` as one URL path segment (or query value): every byte but `A-Z a-z 0-9 - . _ ~`
/// percent-encoded, so a job name or `so_id` with a `/`, `?` or space links to its page.
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn zone_of(admin: &Admin) -> Tz {
    admin.config().defaults.timezone
}

/// A UTC time in the configured zone, labelled with it.
pub(crate) fn time(at: NaiveDateTime, zone: Tz) -> Markup {
    html! { time datetime=(format!("{}Z", at.format("%Y-%m-%dT%H:%M:%S"))) { (crate::cli::format_time(at, zone)) " " (zone.name()) } }
}

pub(crate) fn opt_time(at: Option<NaiveDateTime>, zone: Tz) -> Markup {
    match at {
        Some(at) => time(at, zone),
        None => html! { span.muted { "-" } },
    }
}

pub(crate) fn status_badge(status: RunStatus) -> Markup {
    html! { span.status style=(format!("background:{}", chart::status_colour(status))) { (status) } }
}

/// `/`: every job, the live daemons, the outbox by state and the alerts of `status --check`.
pub(crate) async fn overview(admin: &Admin, view: &View) -> anyhow::Result<Markup> {
    let now = Utc::now();
    let config = admin.config();
    // Three independent reads, each on its own pooled connection, at once.
    let (report, health, by_state) = tokio::try_join!(
        status::collect(&admin.db, &config, now),
        crate::health::check_health(&admin.db, &config, now),
        admin.db.run(|conn| Ok(outbox::count_by_status(conn)?)),
    )?;
    let zone = zone_of(admin);
    Ok(layout(
        "Overview",
        zone,
        html! {
            (view.notice())
            h2 { "Alerts" }
            (alerts(&health))
            h2 { "Jobs" }
            (jobs_table(admin, &report, zone))
            h2 { "Daemons" }
            (daemons(&report, zone))
            h2 { "Order outbox" }
            @if by_state.is_empty() {
                p.muted { "The outbox is empty." }
            } @else {
                table {
                    tr { th { "state" } th { "orders" } }
                    @for (state, count) in &by_state {
                        tr { td { (state) } td.num { (count) } }
                    }
                }
            }
            p {
                "Unconfirmed past " (crate::orders::unconfirmed::human_duration(report.unconfirmed.confirm_within_ms)) ": "
                (report.unconfirmed.pushes) " pushes, " (report.unconfirmed.cancels) " cancels. "
                "Callbacks waiting unmatched: " (report.callbacks_unmatched) "."
            }
        },
    ))
}

fn alerts(health: &HealthReport) -> Markup {
    html! {
        @if health.problems.is_empty() {
            div.ok { "ok: no job overdue or failing, no order unconfirmed too long." }
        }
        @for problem in &health.problems {
            div.alert { strong { (problem.subject) } ": " (problem.detail) }
        }
        @for warning in &health.warnings {
            div.warn { "warning: " (warning) }
        }
    }
}

fn jobs_table(admin: &Admin, report: &StatusReport, zone: Tz) -> Markup {
    html! {
        table {
            tr {
                th { "job" } th { "kind" } th { "schedule" } th { "last run" } th { "status" }
                th { "last success" } th { "next fire" } th { "paused" }
            }
            @for job in &report.jobs {
                tr {
                    td { a href=(format!("/jobs/{}", path_segment(&job.job))) { (job.job) } }
                    td { (job.kind) }
                    td {
                        (schedule_in_words(admin, &job.job))
                        @if !job.continuous { " " code.muted { (job.schedule) } }
                        @if !job.enabled { " " span.muted { "(disabled)" } }
                    }
                    td { (opt_time(job.last_run_at, zone)) }
                    td {
                        @match job.last_status {
                            Some(status) => (status_badge(status)),
                            None => span.muted { "never ran" },
                        }
                    }
                    td { (opt_time(job.last_success_at, zone)) }
                    td {
                        @match &job.next_fire_at {
                            Some(next) => (next_fire(next, &job.timezone)),
                            None if job.continuous && job.enabled => "continuous",
                            None => span.muted { "-" },
                        }
                    }
                    td {
                        @if let Some(pause) = &job.paused {
                            span.paused { "paused" } " by " (pause.paused_by) " at " (time(pause.paused_at, zone))
                            ": " (pause.reason)
                        }
                        @if let Some(missed) = &job.missed {
                            div.muted { "missed " (missed.missed_count) " fires while no daemon ran" }
                        }
                    }
                }
            }
        }
    }
}

/// A job's schedule in words with its zone (`every day at 02:00 (Asia/Shanghai)`), or how the
/// order poller runs.
pub(crate) fn schedule_in_words(admin: &Admin, job: &str) -> String {
    match admin.config().jobs.get(job) {
        Some(JobSpec::Sync(job)) => match &job.schedule {
            Some(schedule) => format!("{} ({})", schedule.describe(), job.timezone.name()),
            None => "on demand only (no schedule)".to_owned(),
        },
        Some(JobSpec::Outbox(job)) => format!(
            "all the time, polling every {}",
            crate::orders::unconfirmed::human_duration(job.poll_interval_ms)
        ),
        None => "-".to_owned(),
    }
}

/// A next fire time (RFC 3339 in the job's zone), shown in that zone and labelled with it.
fn next_fire(rfc3339: &str, zone: &str) -> Markup {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(at) => html! { (at.format("%Y-%m-%d %H:%M:%S")) " " (zone) },
        Err(_) => html! { (rfc3339) },
    }
}

fn daemons(report: &StatusReport, zone: Tz) -> Markup {
    html! {
        @if report.daemon.instances.is_empty() {
            div.warn { "No daemon is running against this database." }
        } @else {
            table {
                tr {
                    th { "instance" } th { "host" } th { "pid" } th { "version" } th { "config hash" }
                    th { "started" } th { "heartbeat" } th { "quota share" }
                }
                @for instance in &report.daemon.instances {
                    tr {
                        td { (instance.instance) }
                        td { (instance.hostname) }
                        td.num { (instance.pid) }
                        td { (instance.version) }
                        td { code { (instance.config_hash.as_deref().map_or("-", |h| h.get(..12).unwrap_or(h))) } }
                        td { (time(instance.started_at, zone)) }
                        td { (time(instance.heartbeat_at, zone)) }
                        td {
                            @for share in report.daemon.quota_shares.iter().filter(|s| s.participant == instance.instance) {
                                div { (share.system) ": " (format!("{:.0}%", share.share * 100.0)) " (" (share.permits) " permits)" }
                            }
                        }
                    }
                }
            }
            @for line in &report.daemon.disagreements {
                div.warn { "warning: " (line) }
            }
        }
    }
}

/// `/jobs/{name}`: the job's runs over the last 7 days as a timeline, counts, and its failures.
pub(crate) async fn job(admin: &Admin, name: &str, view: &View) -> anyhow::Result<Markup> {
    let now = Utc::now().naive_utc();
    let from = now - chrono::Duration::days(JOB_PAGE_DAYS);
    let latest_filter = LogFilter {
        job_name: Some(name.to_owned()),
        limit: JOB_PAGE_LATEST,
        ..LogFilter::default()
    };
    let name_owned = name.to_owned();
    let (runs, failures, latest, pause, requests) = admin
        .db
        .run(move |conn| {
            Ok((
                runs::log::run_spans_since(conn, &name_owned, from, JOB_PAGE_MAX_RUNS)?,
                runs::log::latest_failures(conn, &name_owned, from, JOB_PAGE_FAILURES)?,
                runs::log::list(conn, &latest_filter)?,
                crate::control::pauses::find_pause(conn, &name_owned)?.filter(|p| p.is_in_force()),
                crate::control::triggers::latest_requests_of_job(conn, &name_owned, JOB_PAGE_REQUESTS)?,
            ))
        })
        .await?;
    let zone = zone_of(admin);
    let config = admin.config();
    let spec = config.jobs.get(name);
    let statuses = [
        RunStatus::Success,
        RunStatus::Partial,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::Skipped,
        RunStatus::Running,
    ];
    let count = |status: RunStatus| runs.iter().filter(|r| r.status == status).count();
    let failures: Vec<&SyncLog> = failures.iter().collect();
    let latest: Vec<&SyncLog> = latest.iter().collect();
    let all_logs = format!("/logs?job={}", path_segment(name));
    let week_logs = format!("{all_logs}&since={JOB_PAGE_DAYS}d");
    let finished: Vec<chrono::Duration> = runs.iter().filter_map(RunSpan::duration).collect();
    Ok(layout(
        &format!("Job {name}"),
        zone,
        html! {
            (view.notice())
            @if let Some(spec) = spec {
                p {
                    "Kind " strong { (spec.kind()) } @if !spec.enabled() { " (disabled)" }
                    "; runs " (schedule_in_words(admin, name))
                    @if let JobSpec::Sync(sync) = spec {
                        @if let Some(schedule) = &sync.schedule { " " code.muted { (schedule.as_written()) } }
                    }
                }
            }
            @if let Some(pause) = &pause {
                div.warn { span.paused { "paused" } " by " (pause.paused_by) " at " (time(pause.paused_at, zone)) ": " (pause.reason) }
            }
            (job_actions(name, spec, pause.is_some(), view))
            @if !requests.is_empty() {
                h2 { "Run-now requests" }
                table {
                    tr { th { "request" } th { "asked" } th { "by" } th { "state" } th { "taken by" } th { "message" } }
                    @for request in &requests {
                        tr {
                            td.num { "#" (request.id) }
                            td { (time(request.requested_at, zone)) }
                            td { (request.requested_by) }
                            td { (request.state) }
                            td { (request.claimed_by.as_deref().unwrap_or("-")) }
                            td { (request.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            h2 { "Runs of the last " (JOB_PAGE_DAYS) " days" }
            @if runs.is_empty() {
                p.muted { "No runs in the last " (JOB_PAGE_DAYS) " days." }
            }
            (chart::timeline(&runs, from, now, zone))
            p.legend {
                @for status in statuses {
                    span { (status_badge(status)) " " (count(status)) }
                }
            }
            @if !finished.is_empty() {
                @let total_ms: i64 = finished.iter().map(|d| d.num_milliseconds()).sum();
                @let longest = finished.iter().max().copied().unwrap_or_default();
                p {
                    (finished.len()) " finished runs; mean "
                    (crate::cli::format_duration(chrono::Duration::milliseconds(total_ms / finished.len() as i64)))
                    ", longest " (crate::cli::format_duration(longest)) "."
                }
            }
            h2 { "Failures" }
            @if failures.is_empty() {
                p.muted { "None in the last " (JOB_PAGE_DAYS) " days." }
            } @else {
                (runs_table(&failures, zone))
                @if failures.len() as i64 >= JOB_PAGE_FAILURES {
                    p { "The newest " (JOB_PAGE_FAILURES) " are listed; "
                        a href=(format!("{week_logs}&status=failed")) { "failed runs in the sync log" } "." }
                }
            }
            h2 { "Latest runs" }
            (runs_table(&latest, zone))
            p { a href=(all_logs) { "Every run of " (name) " in the sync log" } }
        },
    ))
}

/// The forms of a job's actions (none when actions are off): run now, and pause or resume.
fn job_actions(name: &str, spec: Option<&JobSpec>, paused: bool, view: &View) -> Markup {
    let base = format!("/jobs/{}", path_segment(name));
    let runs_on_demand = matches!(spec, Some(JobSpec::Sync(_)));
    html! {
        @if view.csrf.is_some() {
            h2 { "Actions" }
            div.actions {
                @if runs_on_demand {
                    (view.form(&format!("{base}/trigger"), html! {
                        button type="submit" { "Run now" }
                        @if paused { " " label { input type="checkbox" name="force" value="1"; " even though paused" } }
                    }))
                }
                @if paused {
                    (view.form(&format!("{base}/resume"), html! {
                        button type="submit" { "Resume" }
                        " " label { input type="checkbox" name="catch_up" value="1"; " and run the tick missed while paused" }
                    }))
                } @else {
                    (view.form(&format!("{base}/pause"), html! {
                        input type="text" name="reason" required placeholder="why (required)";
                        " " button type="submit" { "Pause" }
                    }))
                }
            }
        }
    }
}

fn runs_table(runs: &[&SyncLog], zone: Tz) -> Markup {
    html! {
        table {
            tr {
                th { "started" } th { "status" } th { "trigger" } th { "took" }
                th { "total" } th { "ok" } th { "failed" } th { "message" }
            }
            @for run in runs {
                tr {
                    td { (time(run.started_at, zone)) }
                    td { (status_badge(run.status)) }
                    td { (run.trigger) }
                    td { (run.duration().map_or_else(|| "-".to_owned(), crate::cli::format_duration)) }
                    td.num { (run.total_count) }
                    td.num { (run.success_count) }
                    td.num { (run.failed_count) }
                    td { (run.message.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

/// A page that says one thing: the 403 and 404 pages.
pub(crate) fn message(admin: &Admin, title: &str, message: &str) -> Markup {
    layout(
        title,
        zone_of(admin),
        html! { p { (message) } p { a href="/" { "Back to the overview" } } },
    )
}

pub(crate) fn error(message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Error · haier-sync" } }
            body { h1 { "The page could not be rendered" } p { (message) } }
        }
    }
}

//! `haier-sync status`: each configured job with its last run, last success and next fire time,
//! whether a daemon is running against the database (the live instances, and a warning when they
//! disagree on version or config hash), the orders and cancels Haier has not
//! answered within `confirm_within_ms`, how many callbacks wait unmatched, and the fires each job
//! missed while no daemon ran (the note of `scheduler::missed`, while it stands).

use crate::config::{Config, JobKind, JobSpec};
use crate::control::pauses;
use crate::db::{instances, Db};
use crate::orders::unconfirmed::{count_unconfirmed, UnconfirmedCounts};
use crate::runs::{self, RunStatus};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Only judge health: print `ok`, or one line per problem (a job overdue: no success within
    /// twice its interval; failing: its last three runs failed; orders pushed but unconfirmed
    /// for more than 24 h) and exit 1. Paused and disabled jobs are not judged.
    #[arg(long)]
    pub check: bool,
}

/// One job's line.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub kind: JobKind,
    /// The cron schedule as written, or the poll interval of the order poller.
    pub schedule: String,
    pub timezone: String,
    pub enabled: bool,
    pub last_run_at: Option<NaiveDateTime>,
    pub last_status: Option<RunStatus>,
    pub last_success_at: Option<NaiveDateTime>,
    /// In the job's time zone, RFC 3339.
    pub next_fire_at: Option<String>,
    /// Who paused the job, when and why (`haier-sync pause`); `None` while it is not paused.
    pub paused: Option<crate::control::pauses::JobPause>,
    /// The fires the job missed while no daemon ran, as a daemon found them at its start; `None`
    /// when there were none or the note no longer stands (a day after).
    pub missed: Option<crate::scheduler::missed::MissedFires>,
    /// The job runs all the time (the order poller) rather than when a schedule fires.
    #[serde(skip)]
    pub continuous: bool,
}

/// A daemon whose heartbeat is fresh.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub running: bool,
    pub instances: Vec<instances::Instance>,
    /// Each running daemon's Haier client counters (requests, errors, 429s, retries per
    /// operation), as of its last heartbeat.
    pub client: std::collections::BTreeMap<String, crate::haier::ClientStats>,
    /// One line per thing the live instances disagree on (version, config fingerprint); empty
    /// when they agree.
    pub disagreements: Vec<String>,
    /// Each process's part of each Haier system's shared quota over the last seconds
    /// (`crate::quota::recent_shares`): daemons and one-shot commands alike.
    pub quota_shares: Vec<crate::quota::QuotaShare>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub daemon: DaemonStatus,
    pub jobs: Vec<JobStatus>,
    /// Orders and cancels Haier has not answered within the outbox job's `confirm_within_ms`.
    pub unconfirmed: UnconfirmedCounts,
    /// Signed callbacks kept because they name no order or several, waiting for
    /// `haier-sync outbox attach`.
    pub callbacks_unmatched: i64,
}

pub async fn run(args: StatusArgs, config: Config) -> anyhow::Result<i32> {
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    if args.check {
        let health = crate::health::check_health(&db, &config, Utc::now()).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&health)?);
        } else {
            print!("{}", health.to_text());
        }
        return Ok(if health.healthy { 0 } else { 1 });
    }
    let report = collect(&db, &config, Utc::now()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, config.defaults.timezone));
    }
    Ok(0)
}

/// Gathers the report from the database.
pub async fn collect(db: &Db, config: &Config, now: DateTime<Utc>) -> anyhow::Result<StatusReport> {
    let names: Vec<String> = config.jobs.keys().cloned().collect();
    let alive_since =
        (now - chrono::Duration::milliseconds(3 * config.daemon.heartbeat_ms as i64)).naive_utc();
    let now_naive = now.naive_utc();
    let (live, quota_shares, history, callbacks_unmatched, mut missed) = db
        .run(move |conn| {
            let live = instances::live(conn, alive_since)?;
            let quota_shares = crate::quota::recent_shares(conn)?;
            let unmatched = crate::orders::events::count_unmatched(conn)?;
            let missed = crate::scheduler::missed::standing_missed_fires(conn, now_naive)?;
            let mut history = Vec::new();
            for name in &names {
                history.push((
                    runs::log::latest_run(conn, name)?,
                    runs::log::latest_success(conn, name)?,
                    pauses::find_pause(conn, name)?.filter(|p| p.is_in_force()),
                ));
            }
            Ok((live, quota_shares, history, unmatched, missed))
        })
        .await?;
    let jobs = config
        .jobs
        .values()
        .zip(history)
        .map(|(job, (last, success, paused))| {
            let (schedule, timezone, next_fire_at) = match job {
                JobSpec::Sync(job) => (
                    job.schedule
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |s| s.as_written().to_owned()),
                    job.timezone,
                    job.enabled
                        .then(|| crate::scheduler::next_fire_time(job, now))
                        .flatten()
                        .map(|t| t.to_rfc3339()),
                ),
                JobSpec::Outbox(job) => (
                    format!("every {} ms", job.poll_interval_ms),
                    config.defaults.timezone,
                    None,
                ),
            };
            JobStatus {
                job: job.name().to_owned(),
                kind: job.kind(),
                schedule,
                timezone: timezone.name().to_owned(),
                enabled: job.enabled(),
                last_run_at: last.as_ref().map(|r| r.started_at),
                last_status: last.map(|r| r.status),
                last_success_at: success.map(|r| r.started_at),
                next_fire_at,
                paused,
                missed: missed
                    .iter()
                    .position(|m| m.job_name == job.name())
                    .map(|i| missed.swap_remove(i)),
                continuous: matches!(job, JobSpec::Outbox(_)),
            }
        })
        .collect();
    let unconfirmed = count_unconfirmed(db, &config.outbox_job()).await?;
    let client = live
        .iter()
        .filter_map(|i| {
            let stats = serde_json::from_str(i.client_stats.as_deref()?).ok()?;
            Some((i.instance.clone(), stats))
        })
        .collect();
    Ok(StatusReport {
        daemon: DaemonStatus {
            running: !live.is_empty(),
            disagreements: instances::disagreements(&live),
            instances: live,
            client,
            quota_shares,
        },
        jobs,
        unconfirmed,
        callbacks_unmatched,
    })
}

pub fn render(report: &StatusReport, zone: Tz) -> String {
    let mut out = String::new();
    if report.daemon.running {
        let names: Vec<String> = report
            .daemon
            .instances
            .iter()
            .map(|i| {
                format!(
                    "{} (up since {})",
                    i.instance,
                    super::format_time(i.started_at, zone)
                )
            })
            .collect();
        out.push_str(&format!("daemon: running — {}\n", names.join(", ")));
        out.push_str(&render_instances(
            &report.daemon.instances,
            &report.daemon.quota_shares,
            zone,
        ));
        for line in &report.daemon.disagreements {
            out.push_str(&format!("warning: {line}\n"));
        }
    } else {
        out.push_str("daemon: not running\n");
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header([
        "job",
        "kind",
        "schedule",
        "enabled",
        "last run",
        "last status",
        "last success",
        "next fire",
    ]);
    for job in &report.jobs {
        let time = |t: Option<NaiveDateTime>| {
            t.map(|t| super::format_time(t, zone))
                .unwrap_or_else(|| "-".into())
        };
        let next = match &job.next_fire_at {
            Some(t) => DateTime::parse_from_rfc3339(t)
                .map(|t| format!("{} {}", t.format("%Y-%m-%d %H:%M:%S"), job.timezone))
                .unwrap_or_else(|_| t.clone()),
            None if job.continuous && job.enabled => "continuous".into(),
            None => "-".into(),
        };
        let next = if job.paused.is_some() {
            format!("paused (due {next})")
        } else {
            next
        };
        table.add_row([
            job.job.clone(),
            job.kind.to_string(),
            job.schedule.clone(),
            if job.enabled { "yes".into() } else { "no".into() },
            time(job.last_run_at),
            job.last_status.map_or_else(|| "-".into(), |s| s.to_string()),
            time(job.last_success_at),
            next,
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out.push_str(&report.unconfirmed.summary());
    if report.callbacks_unmatched > 0 {
        out.push_str(&format!(
            "callbacks: {} unmatched, waiting to be attached (haier-sync outbox events --unmatched)\n",
            report.callbacks_unmatched
        ));
    } else {
        out.push_str("callbacks: 0 unmatched\n");
    }
    for (job, pause) in report
        .jobs
        .iter()
        .filter_map(|j| j.paused.as_ref().map(|p| (j, p)))
    {
        out.push_str(&format!(
            "paused: {} by {} since {}: {}\n",
            job.job,
            pause.paused_by,
            super::format_time(pause.paused_at, zone),
            pause.reason
        ));
    }
    for (job, missed) in report
        .jobs
        .iter()
        .filter_map(|j| j.missed.as_ref().map(|m| (j, m)))
    {
        out.push_str(&format!(
            "missed: {}: {} while no daemon ran (found {} by {})\n",
            job.job,
            crate::scheduler::missed::describe(missed, zone),
            super::format_time(missed.detected_at, zone),
            missed.detected_by
        ));
    }
    for (instance, stats) in &report.daemon.client {
        out.push_str(&render_client_stats(instance, stats));
    }
    out
}

/// A column of the instances table: its header and what a row shows in it.
type InstanceColumn = (&'static str, Box<dyn Fn(&instances::Instance) -> String>);

/// The columns of the instances table; a new column is one more entry here.
fn instance_columns(zone: Tz, shares: &[crate::quota::QuotaShare]) -> Vec<InstanceColumn> {
    let shares = shares.to_vec();
    vec![
        ("host", Box::new(|i| i.hostname.clone())),
        ("pid", Box::new(|i| i.pid.to_string())),
        ("version", Box::new(|i| i.version.clone())),
        (
            "config hash",
            Box::new(|i| instances::short_hash(i.config_hash.as_deref())),
        ),
        (
            "last heartbeat",
            Box::new(move |i| super::format_time(i.heartbeat_at, zone)),
        ),
        (
            "quota share",
            Box::new(move |i| quota_share(&shares, &i.instance)),
        ),
    ]
}

/// An instance's part of each Haier system's recent permits, as `openplat 60% · ylh 12%`; `-`
/// when it has called neither lately.
fn quota_share(shares: &[crate::quota::QuotaShare], instance: &str) -> String {
    let parts: Vec<String> = shares
        .iter()
        .filter(|s| s.participant == instance && s.permits > 0)
        .map(|s| format!("{} {:.0}%", s.system, s.share * 100.0))
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// The live instances, one row each.
fn render_instances(live: &[instances::Instance], shares: &[crate::quota::QuotaShare], zone: Tz) -> String {
    let columns = instance_columns(zone, shares);
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(columns.iter().map(|(header, _)| *header));
    for instance in live {
        table.add_row(columns.iter().map(|(_, cell)| cell(instance)));
    }
    format!("{table}\n")
}

/// A running daemon's Haier client: each system's breaker and pace in force against its
/// `rate_limit`, then its calls since it started, one line per operation it has used.
fn render_client_stats(instance: &str, stats: &crate::haier::ClientStats) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header([
        "operation",
        "calls",
        "requests",
        "errors",
        "429s",
        "retries",
        "slow",
    ]);
    for (name, op) in stats
        .operations
        .iter()
        .filter(|(_, op)| op.calls > 0 || op.requests > 0)
    {
        table.add_row([
            name.clone(),
            op.calls.to_string(),
            op.requests.to_string(),
            op.errors.to_string(),
            op.throttled.to_string(),
            op.retries.to_string(),
            op.slow.to_string(),
        ]);
    }
    let system = |name: &str, system: &crate::haier::SystemStats| {
        let pace = system
            .pace_per_second
            .map_or_else(|| "-".to_owned(), |pace| format!("{pace:.1}/s"));
        let lowered = match system.pace_per_second {
            Some(pace) if pace < f64::from(system.per_second) => " (lowered after 429s)",
            _ => "",
        };
        format!(
            "  {name}: breaker {}, pace {pace} of rate_limit {}/s{lowered}\n",
            format!("{:?}", system.breaker).to_lowercase(),
            system.per_second
        )
    };
    format!(
        "Haier client of {instance}:\n{}{}{table}\n",
        system("openplat", &stats.openplat),
        system("ylh", &stats.ylh)
    )
}

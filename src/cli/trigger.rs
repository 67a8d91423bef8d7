//! `haier-sync trigger JOB [--no-wait] [--timeout D] [--force]`: asks the running daemons to run
//! a job once, now. The request is a `haier_job_triggers` row (`crate::control::triggers`); one
//! live daemon claims it and runs the job with `trigger = manual` under its shared client and
//! limiter (`crate::scheduler::run_now`). The command waits and prints the outcome, or with
//! `--no-wait` returns once the request is recorded.
//!
//! Refused before anything is written (exit 1): no live daemon, the job paused (unless
//! `--force`), or a run of it going on in a live daemon or a `run-job` of this host. Exit codes
//! otherwise follow the run: 0 success, 3 partial, 1 failed, interrupted, refused by the daemon,
//! expired or given up on; 2 for a usage error (an unknown job, an `order_outbox` job, a bad
//! `--timeout`).

use super::EXIT_USAGE;
use crate::config::{Config, JobSpec};
use crate::control::triggers::{JobTrigger, NewJobTrigger, TriggerState};
use crate::control::{self, pauses, triggers};
use crate::db::{self, instances, Db};
use crate::runs::{self, RunStatus, SyncLog};
use crate::scheduler::{self, RunGoingOn, LIVE_HEARTBEATS};
use chrono::Utc;
use std::time::Duration;

/// How long a request may wait for a daemon to claim it before it expires, at least: daemons
/// look every half second, so only a daemon that is stuck or going away takes longer.
pub const CLAIM_WITHIN: Duration = Duration::from_secs(30);

/// How often the waiting command reads its request.
const WAIT_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// The job to run, as named in jobs.toml ([jobs.NAME]): a sync job (products, prices, stock
    /// or logistics kind).
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Return as soon as the request is recorded, printing its id, instead of waiting for the
    /// run to end.
    #[arg(long)]
    pub no_wait: bool,

    /// Wait at most this long (`90s`, `10m`, `2h`) for the outcome. A request no daemon has
    /// taken by then is withdrawn; a run that goes on is left to end. Default: until it ends.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Run the job even while it is paused (`haier-sync pause`).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: TriggerArgs, config: &Config) -> anyhow::Result<i32> {
    if let Err(message) = check_job(config, &args.job) {
        eprintln!("error: {message}");
        return Ok(EXIT_USAGE);
    }
    let timeout = match args.timeout.as_deref().map(parse_duration).transpose() {
        Ok(timeout) => timeout,
        Err(message) => {
            eprintln!("error: --timeout {message}");
            return Ok(EXIT_USAGE);
        }
    };
    let zone = config.defaults.timezone;
    let heartbeat_ms = config.daemon.heartbeat_ms;
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;

    let asked = ask_daemons(&db, config, &args.job, control::operator_name(), args.force).await?;
    let id = match asked {
        Asked::Recorded(id, daemons) => {
            println!(
                "request #{id}: run job {} now ({} daemon(s) running; one takes it within about {heartbeat_ms} ms, at its next heartbeat)",
                args.job,
                daemons,
            );
            id
        }
        refused => {
            eprintln!("error: {}", refused.refusal(&args.job, zone, heartbeat_ms));
            return Ok(1);
        }
    };
    if args.no_wait {
        println!(
            "not waiting: `haier-sync logs --job {}` shows the run once it starts",
            args.job
        );
        return Ok(0);
    }
    wait_and_report(&db, id, &args.job, timeout, heartbeat_ms, zone).await
}

/// What the request step found.
pub(crate) enum Asked {
    NoDaemon,
    Paused(pauses::JobPause),
    GoingOn(Vec<RunGoingOn>),
    /// The request's id, and how many daemons were live.
    Recorded(i64, usize),
}

impl Asked {
    /// Why nothing was asked, in a sentence (empty for [`Asked::Recorded`]).
    pub(crate) fn refusal(&self, job: &str, zone: chrono_tz::Tz, heartbeat_ms: u64) -> String {
        match self {
            Asked::NoDaemon => format!(
                "no haier-sync daemon is running against this database (none has a heartbeat in \
                 the last {} s), so nothing was asked; start one (`systemctl start haier-sync`), \
                 or run the job in this process with `haier-sync run-job {job}`",
                Duration::from_millis(heartbeat_ms.saturating_mul(u64::from(LIVE_HEARTBEATS))).as_secs_f64(),
            ),
            Asked::Paused(pause) => format!(
                "job {job} is paused (by {} at {}: {}); `haier-sync trigger {job} --force` runs it \
                 anyway, `haier-sync resume {job}` resumes it",
                pause.paused_by,
                super::format_time(pause.paused_at, zone),
                pause.reason,
            ),
            Asked::GoingOn(going_on) => format!(
                "job {job} is running now on {}; trigger it again once that run ends",
                describe_going_on(going_on, zone)
            ),
            Asked::Recorded(..) => String::new(),
        }
    }
}

/// Files a run-now request for `job` under `by`, unless no daemon is live, the job is paused
/// (and not `run_if_paused`) or a run of it goes on: the request path of `haier-sync trigger`,
/// which the status page takes too.
pub(crate) async fn ask_daemons(
    db: &Db,
    config: &Config,
    job: &str,
    by: String,
    run_if_paused: bool,
) -> anyhow::Result<Asked> {
    let heartbeat_ms = config.daemon.heartbeat_ms;
    let claim_within = CLAIM_WITHIN.max(Duration::from_millis(
        heartbeat_ms.saturating_mul(u64::from(LIVE_HEARTBEATS)),
    ));
    let alive = scheduler::alive_since(Utc::now(), heartbeat_ms);
    let name = job.to_owned();
    db.run(move |conn| {
        let job = name;
        let live = instances::live(conn, alive)?;
        if live.is_empty() {
            return Ok(Asked::NoDaemon);
        }
        if let Some(pause) = pauses::find_pause(conn, &job)?.filter(|p| p.is_in_force()) {
            if !run_if_paused {
                return Ok(Asked::Paused(pause));
            }
        }
        let going_on = scheduler::runs_going_on(conn, &job, alive)?;
        if !going_on.is_empty() {
            return Ok(Asked::GoingOn(going_on));
        }
        let now = db::now_utc();
        let expires_at =
            now + chrono::Duration::from_std(claim_within).unwrap_or(chrono::Duration::seconds(30));
        let id = triggers::request_run(
            conn,
            &NewJobTrigger {
                job_name: &job,
                requested_at: now,
                requested_by: &by,
                run_if_paused,
                expires_at,
                state: TriggerState::Pending,
            },
        )?;
        Ok(Asked::Recorded(id, live.len()))
    })
    .await
    .map_err(|e| e.context(format!("Failed to ask the daemons to run the job {job}")))
}

/// How a waited-for request stands.
enum Seen {
    Open(JobTrigger),
    Closed(JobTrigger, Option<SyncLog>),
}

/// Reads request `id` until it is closed (and its run's row with it), `timeout` passes or Ctrl-C;
/// prints what became of it and returns the exit code.
async fn wait_and_report(
    db: &Db,
    id: i64,
    job: &str,
    timeout: Option<Duration>,
    heartbeat_ms: u64,
    zone: chrono_tz::Tz,
) -> anyhow::Result<i32> {
    let started = tokio::time::Instant::now();
    let give_up_at = timeout.map(|t| started + t);
    let mut announced = false;
    let mut poll = tokio::time::interval(WAIT_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let stop = tokio::select! {
            _ = poll.tick() => None,
            _ = async {
                match give_up_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => Some("the --timeout passed"),
            _ = &mut ctrl_c => Some("interrupted (Ctrl-C)"),
        };
        let seen = read_request(db, id, heartbeat_ms).await?;
        match seen {
            Seen::Closed(request, row) => return Ok(report(&request, row.as_ref(), zone)),
            Seen::Open(request) => {
                if !announced && request.state == TriggerState::Running {
                    announced = true;
                    println!(
                        "request #{id}: {} runs it (since {})",
                        request.claimed_by.as_deref().unwrap_or("a daemon"),
                        request
                            .claimed_at
                            .map(|t| super::format_time(t, zone))
                            .unwrap_or_default()
                    );
                }
                let Some(why) = stop else { continue };
                return give_up(db, &request, job, why).await;
            }
        }
    }
}

/// The request now, after failing it when its daemon is gone; closed only once its run's row is
/// closed too.
async fn read_request(db: &Db, id: i64, heartbeat_ms: u64) -> anyhow::Result<Seen> {
    let alive = scheduler::alive_since(Utc::now(), heartbeat_ms);
    db.run(move |conn| {
        let now = db::now_utc();
        let Some(mut request) = triggers::find_request(conn, id)? else {
            anyhow::bail!("request #{id} is gone from haier_job_triggers (deleted by hand?)");
        };
        if request.state == TriggerState::Pending && request.expires_at <= now {
            triggers::expire_unclaimed(conn, now)?;
        }
        if request.state == TriggerState::Running {
            let live: Vec<String> = instances::live(conn, alive)?
                .into_iter()
                .map(|i| i.instance)
                .collect();
            triggers::fail_abandoned(conn, &live, now)?;
        }
        request = triggers::find_request(conn, id)?.unwrap_or(request);
        if !request.state.is_closed() {
            return Ok(Seen::Open(request));
        }
        let row = match request.sync_log_id {
            Some(log_id) => runs::log::find(conn, log_id)?,
            None => None,
        };
        // A run whose closing write is still being retried by its daemon: wait for it.
        if row.as_ref().is_some_and(|r| r.status == RunStatus::Running)
            && request.state == TriggerState::Finished
        {
            return Ok(Seen::Open(request));
        }
        Ok(Seen::Closed(request, row))
    })
    .await
    .map_err(|e| e.context(format!("Failed to read run-now request #{id}")))
}

/// Stops waiting: a request no daemon has taken is withdrawn; a run going on is left to end.
async fn give_up(db: &Db, request: &JobTrigger, job: &str, why: &'static str) -> anyhow::Result<i32> {
    let id = request.id;
    let message = format!("the command stopped waiting before a daemon took it: {why}");
    let withdrawn = db
        .run(move |conn| Ok(triggers::withdraw_request(conn, id, &message, db::now_utc())?))
        .await
        .map_err(|e| e.context(format!("Failed to withdraw run-now request #{id}")))?;
    if withdrawn {
        eprintln!("error: {why}: no daemon had taken request #{id}; it is withdrawn and will not run");
    } else {
        eprintln!(
            "error: {why} while job {job} runs on {} (request #{id}); the run goes on: \
             `haier-sync logs --job {job}` shows how it ends",
            request.claimed_by.as_deref().unwrap_or("a daemon")
        );
    }
    Ok(1)
}

/// Prints how a closed request ended; returns the exit code.
fn report(request: &JobTrigger, row: Option<&SyncLog>, zone: chrono_tz::Tz) -> i32 {
    let id = request.id;
    let ran_by = request.claimed_by.as_deref().unwrap_or("no daemon");
    let message = request.message.as_deref().unwrap_or("");
    match (request.state, row) {
        (TriggerState::Finished, Some(row)) => {
            println!(
                "{} ({}): {} — {} items, {} ok, {} failed in {}, log #{}",
                row.job_name,
                row.sync_type,
                row.status,
                row.total_count,
                row.success_count,
                row.failed_count,
                row.duration()
                    .map(super::format_duration)
                    .unwrap_or_else(|| "?".into()),
                row.id
            );
            println!(
                "  run by {} (request #{id}, asked by {} at {})",
                row.instance,
                request.requested_by,
                super::format_time(request.requested_at, zone)
            );
            if let Some(message) = &row.message {
                println!("  {message}");
            }
            row.status.exit_code()
        }
        (TriggerState::Finished, None) => {
            eprintln!("error: request #{id} ran on {ran_by}, but its sync-log row is gone (pruned?)");
            1
        }
        (TriggerState::Refused, _) => {
            eprintln!("error: request #{id} was refused by {ran_by}: {message}");
            1
        }
        (TriggerState::Failed, row) => {
            eprintln!("error: request #{id} failed on {ran_by}: {message}");
            if let Some(row) = row {
                eprintln!("  its run: {} (log #{})", row.status, row.id);
            }
            1
        }
        (TriggerState::Expired, _) => {
            eprintln!("error: request #{id} expired: {message}");
            1
        }
        (TriggerState::Pending | TriggerState::Running, _) => 1,
    }
}

/// The job must be a sync job of jobs.toml; else an error that names the jobs `trigger` runs.
pub(crate) fn check_job(config: &Config, job: &str) -> Result<(), String> {
    match config.jobs.get(job) {
        Some(JobSpec::Sync(_)) => Ok(()),
        Some(JobSpec::Outbox(_)) => Err(format!(
            "{job} is an order_outbox job: its poller runs all the time under `haier-sync run`, \
             there is no run of it to trigger"
        )),
        None => {
            let names: Vec<&str> = config
                .jobs
                .iter()
                .filter(|(_, spec)| matches!(spec, JobSpec::Sync(_)))
                .map(|(name, _)| name.as_str())
                .collect();
            Err(format!(
                "no job named {job:?} in {}; the jobs `trigger` can run are: {}",
                config.path.display(),
                if names.is_empty() {
                    "(none)".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

/// `the daemon box:12 since 2026-12-02 10:00:05 (log #7)`, for each run, in `zone`.
pub(crate) fn describe_going_on(going_on: &[RunGoingOn], zone: chrono_tz::Tz) -> String {
    going_on
        .iter()
        .map(|run| {
            format!(
                "{} {} since {} (log #{})",
                if run.by_daemon {
                    "the daemon"
                } else {
                    "the run-job command"
                },
                run.instance,
                super::format_time(run.started_at, zone),
                run.log_id
            )
        })
        .collect::<Vec<_>>()
        .join(", and ")
}

/// `500ms`, `90s`, `10m`, `2h` (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let problem = || format!("{text:?}: expected a duration like 90s, 10m or 2h");
    let n: u64 = number.parse().map_err(|_| problem())?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }
    .ok_or_else(problem)?;
    if ms == 0 {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "s", "10x", "-5s", "0s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

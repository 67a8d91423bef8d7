//! The command line: one file per subcommand. `main.rs` only calls [`main`].

pub mod audit;
pub mod check_config;
pub mod completions;
pub mod demo;
pub mod events;
pub mod logs;
pub mod migrate;
pub mod outbox;
mod outbox_after_sale;
pub mod outbox_events;
mod outbox_retry;
pub mod outbox_show;
pub mod pause;
pub mod prune;
pub mod run;
pub mod run_job;
pub mod simulate;
pub mod status;
pub mod test_connection;
pub mod trigger;

use crate::config::{self, Config, ConfigError};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "haier-sync",
    version,
    about = "Keeps a shop's Haier catalog, prices, stock and orders in step with Haier's open platform and YLH order cloud",
    long_about = "haier-sync runs cron-scheduled syncs of Haier products, prices, stock and logistics, pushes \
                  the orders a shop writes to its outbox table to Haier's YLH order cloud, and receives Haier's \
                  signed order callbacks. Every run writes one row to the haier_sync_logs table.\n\n\
                  The configuration file is taken from -c/--config, else $HAIER_SYNC_CONFIG, else ./jobs.toml. \
                  Any key can be overridden by an environment variable HAIER_SYNC_<SECTION>__<KEY>, e.g. \
                  HAIER_SYNC_DATABASE__URL."
)]
pub struct Cli {
    /// Path to the configuration file (default: $HAIER_SYNC_CONFIG, else ./jobs.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration file; exit 0 when valid, 2 with file, key and line when not.
    CheckConfig,
    /// Run the daemon: migrate, then run every enabled job on its schedule, the order-outbox
    /// poller and the callback receiver until SIGTERM/SIGINT. SIGHUP (or editing the config file)
    /// reloads the jobs.
    Run(run::RunArgs),
    /// Create or update the database tables (also done at daemon start).
    Migrate,
    /// Show the sync log: one row per job run, newest first.
    Logs(logs::LogsArgs),
    /// Show each configured job with its last run, last success and next fire time.
    Status(status::StatusArgs),
    /// Serve a stateful simulator of both Haier systems (openplat and YLH) for demos, tests and
    /// benchmarks. With -c, it accepts exactly that file's credentials and listens on the host and
    /// port of its [haier] base_url; without, it uses the shipped jobs.toml's demo values.
    Simulate(simulate::SimulateArgs),
    /// Log in to both Haier systems and run one cheap call on each; one line per system with the
    /// latency and the result. Exits 1 when either fails.
    TestConnection,
    /// Work with the order outbox: enqueue orders from a JSON file, list them, retry a dead one,
    /// cancel one at Haier, list Haier's callbacks, or attach an unmatched callback to its order.
    Outbox(outbox::OutboxArgs),
    /// The order events the shop hears about (every change of an order, also POSTed to
    /// `[shop] webhook_url`): list them, send failed ones again, or replay a time window.
    Events(events::EventsArgs),
    /// Try everything on a fresh SQLite database against a bundled, in-process Haier simulator:
    /// products, prices, stock for two counties, three orders with their confirm callbacks, then
    /// logistics; prints the status table and the sync log. Needs no set-up and no network.
    Demo(demo::DemoArgs),
    /// Pause a job on every daemon sharing the database: its ticks (or its order poller) do
    /// nothing until `resume`. The pause outlives reloads and restarts; `status` shows who paused
    /// the job, when and why. A run going on is left to end.
    Pause(pause::PauseArgs),
    /// Resume a paused job: it runs again from its next tick. A tick that passed while it was
    /// paused is not caught up unless --catch-up is given.
    Resume(pause::ResumeArgs),
    /// Delete now what [retention] no longer keeps (old sync-log rows and callbacks, and finished
    /// orders when set), as the daemon does once a day, and print the rows per kind. With
    /// --dry-run, count them and delete nothing. Products, prices and price changes are never
    /// pruned.
    Prune(prune::PruneArgs),
    /// List the audit trail, newest first: who (OS user and host) ran which command that
    /// changes state (pause, resume, trigger, outbox enqueue|retry|cancel, events retry|replay,
    /// prune, migrate), when, with which arguments (secrets masked), and how it ended.
    Audit(audit::AuditArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell), e.g.
    /// `haier-sync completions bash > /usr/share/bash-completion/completions/haier-sync`.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), e.g. `haier-sync man > /usr/local/share/man/man1/haier-sync.1`.
    Man,
    /// Run one sync job now in this process (a job name from jobs.toml, or a kind) and print a
    /// summary. Refused while the job runs in a live daemon, or is paused (unless --force).
    /// Exit code: 0 success, 3 partial, 1 failed, interrupted or refused, 2 usage or config error.
    RunJob(run_job::RunJobArgs),
    /// Ask the running daemons to run a job once, now: exactly one of them runs it (trigger =
    /// manual) under its shared client and rate limiter. Waits and prints the outcome (--no-wait
    /// returns once the request is recorded). Refused with no live daemon, while the job runs,
    /// or while it is paused (unless --force). Exit code: 0 success, 3 partial, 1 failed,
    /// interrupted or refused, 2 usage error.
    Trigger(trigger::TriggerArgs),
}

/// How long the process waits, once its command has ended, for threads still inside the database
/// libraries (a connection being opened, a query of a detached task) to leave them.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(dispatch(cli));
    // Give detached blocking tasks (pool connections) no chance to hold up exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    // A thread still inside libpq when `exit` runs its exit handlers can crash the process.
    if !crate::db::in_use::wait_until_none(EXIT_WAIT) {
        eprintln!(
            "warning: a database call was still going on {} s after the command ended; exiting anyway",
            EXIT_WAIT.as_secs()
        );
    }
    code
}

async fn dispatch(cli: Cli) -> i32 {
    let path = config::locate(cli.config.as_deref());
    if let Some(entry) = audit::audited(&cli.command) {
        return finish(with_config_audited(&path, entry, cli.command).await);
    }
    let result = match cli.command {
        Command::CheckConfig => return check_config::run(&path),
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
        Command::Run(args) => run::run(args, &path).await,
        Command::Audit(args) => with_config(&path, |c| audit::run(args, c)).await,
        Command::Migrate => with_config(&path, migrate::run).await,
        Command::Logs(args) => with_config(&path, |c| logs::run(args, c)).await,
        Command::Status(args) => with_config(&path, |c| status::run(args, c)).await,
        Command::Simulate(args) => run_simulator(args, cli.config.as_deref()).await,
        Command::TestConnection => {
            with_config(&path, |c| async move {
                Ok(if test_connection::run(&c).await? { 0 } else { 1 })
            })
            .await
        }
        Command::Outbox(args) => with_config(&path, |c| async move { outbox::run(args, &c).await }).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Events(args) => with_config(&path, |c| async move { events::run(args, &c).await }).await,
        Command::RunJob(args) => with_config(&path, |c| run_job::run(args, c)).await,
        Command::Pause(args) => with_config(&path, |c| async move { pause::pause(args, &c).await }).await,
        Command::Resume(args) => with_config(&path, |c| async move { pause::resume(args, &c).await }).await,
        Command::Prune(args) => {
            with_config(&path, |c| async move {
                prune::run(args, &c).await.map(|(code, _)| code)
            })
            .await
        }
        Command::Trigger(args) => with_config(&path, |c| async move { trigger::run(args, &c).await }).await,
    };
    finish(result)
}

/// The exit code of a command's result, printing its error.
fn finish(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Runs a command that changes state, then records it in the audit trail with its outcome.
async fn with_config_audited(
    path: &Path,
    entry: (&'static str, serde_json::Value),
    command: Command,
) -> anyhow::Result<i32> {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let _guard = crate::telemetry::init_for_command(&config.log)?;
    // What the audit row says besides the outcome (the counts of a prune).
    let mut detail = None;
    let result = match command {
        Command::Migrate => migrate::run(config.clone()).await,
        Command::Prune(args) => prune::run(args, &config).await.map(|(code, counts)| {
            detail = Some(counts);
            code
        }),
        Command::Outbox(args) => outbox::run(args, &config).await,
        Command::Pause(args) => pause::pause(args, &config).await,
        Command::Resume(args) => pause::resume(args, &config).await,
        Command::Trigger(args) => trigger::run(args, &config).await,
        Command::Events(args) => events::run(args, &config).await,
        other => Err(anyhow::anyhow!("{other:?} is not a command that changes state")),
    };
    audit::record_outcome_with_detail(&config, entry, &result, detail).await;
    result
}

/// Loads the config (exit 2 with the problem when it is invalid), sets up logging, and runs `f`.
async fn with_config<F, Fut>(path: &Path, f: F) -> anyhow::Result<i32>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<i32>>,
{
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let _guard = crate::telemetry::init_for_command(&config.log)?;
    f(config).await
}

/// `simulate`: credentials and addresses from `-c FILE` when given, else the demo defaults.
async fn run_simulator(args: simulate::SimulateArgs, config_flag: Option<&Path>) -> anyhow::Result<i32> {
    use crate::simulator::SimCredentials;
    let Some(path) = config_flag else {
        crate::telemetry::init_minimal();
        simulate::run(args, SimCredentials::default(), None, None).await?;
        return Ok(0);
    };
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let _guard = crate::telemetry::init(&config.log)?;
    let listen = config
        .haier
        .base_url
        .socket_addrs(|| Some(80))
        .ok()
        .and_then(|addrs| addrs.into_iter().next());
    let callback_url = format!("http://{}/haier/callback", config.callback.listen);
    simulate::run(
        args,
        SimCredentials::from_config(&config),
        listen,
        Some(callback_url),
    )
    .await?;
    Ok(0)
}

/// Loads the config, printing the problem and returning exit code 2 when it is invalid.
pub fn load_config(path: &Path) -> Result<Config, i32> {
    config::load(path).map_err(|e: ConfigError| {
        eprintln!("error: invalid configuration: {e}");
        EXIT_USAGE
    })
}

/// A UTC database time shown in the configured zone: `2026-11-24 10:00:05`.
pub fn format_time(at: chrono::NaiveDateTime, zone: chrono_tz::Tz) -> String {
    use chrono::TimeZone;
    zone.from_utc_datetime(&at)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A duration for people: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn format_duration(duration: chrono::Duration) -> String {
    let ms = duration.num_milliseconds().max(0);
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(chrono::Duration::milliseconds(850)), "850ms");
        assert_eq!(format_duration(chrono::Duration::milliseconds(12_340)), "12.3s");
        assert_eq!(format_duration(chrono::Duration::seconds(245)), "4m05s");
        assert_eq!(format_duration(chrono::Duration::minutes(123)), "2h03m");
    }

    #[test]
    fn times_show_in_the_configured_zone() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(2, 0, 5)
            .unwrap();
        assert_eq!(format_time(at, chrono_tz::Asia::Shanghai), "2026-11-24 10:00:05");
    }

    #[test]
    fn config_flag_is_accepted_before_or_after_the_subcommand() {
        let before = Cli::try_parse_from(["haier-sync", "-c", "a.toml", "status"]).unwrap();
        let after = Cli::try_parse_from(["haier-sync", "status", "--config", "b.toml"]).unwrap();
        assert_eq!(before.config.as_deref(), Some(Path::new("a.toml")));
        assert_eq!(after.config.as_deref(), Some(Path::new("b.toml")));
    }
}

//! `haier-sync run-job`: runs one job now, as the seed's management command did, with a progress
//! bar on a terminal (plain lines otherwise) and a summary at the end. It refuses (exit 1) while
//! the job runs in a live daemon or another `run-job` of this host, and while it is paused
//! unless `--force` is given. Exit code: 0 success, 3 partial, 1 failed, interrupted or refused,
//! 2 usage or configuration error.

use super::EXIT_USAGE;
use crate::config::{Config, JobKind, JobSpec, SyncJob, SyncKind};
use crate::control::pauses;
use crate::db::Db;
use crate::haier::HaierClient;
use crate::runs::RunStatus;
use crate::sync::{self, AppContext, Progress, RunOutcome, RunOverrides, RunRequest};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, clap::Args)]
pub struct RunJobArgs {
    /// The job to run: a job name from jobs.toml, or a kind (products, prices, stock, logistics),
    /// which runs the first job of that kind, or one with every default when none is configured.
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Only these product codes (space- or comma-separated), queried 20 a call. Replaces the
    /// job's product_codes.
    #[arg(long = "product-codes", value_name = "CODE", num_args = 1.., value_delimiter = ',')]
    pub product_codes: Option<Vec<String>>,

    /// Set this local category (the shop's own) on every product synced (products only).
    #[arg(long, value_name = "NAME")]
    pub category: Option<String>,

    /// Set this local brand (the shop's own) on every product synced (products only).
    #[arg(long, value_name = "NAME")]
    pub brand: Option<String>,

    /// After the products, sync the prices of the same products (products only).
    #[arg(long)]
    pub sync_prices: bool,

    /// After the products (and prices), sync the stock of the same products (products only).
    #[arg(long)]
    pub sync_stock: bool,

    /// A 6-digit county code to query stock for; repeat for several. Replaces the job's
    /// county_codes (default: the job's, then [defaults] county_codes, then 110101).
    #[arg(long = "county-code", value_name = "CODE")]
    pub county_codes: Vec<String>,

    /// Run the job even while it is paused (`haier-sync pause`). A job that runs in a live
    /// daemon is refused all the same.
    #[arg(long)]
    pub force: bool,
}

/// One run of the plan.
#[derive(Debug, Clone)]
struct PlannedRun {
    job: SyncJob,
    overrides: RunOverrides,
}

/// Runs `args.job` (and, with `--sync-prices`/`--sync-stock`, prices and stock after it).
pub async fn run(args: RunJobArgs, config: Config) -> anyhow::Result<i32> {
    let plan = match plan(&args, &config) {
        Ok(plan) => plan,
        Err(problem) => {
            eprintln!("error: {problem}");
            return Ok(EXIT_USAGE);
        }
    };
    // A bad client config is a usage error, found before the database is opened.
    if let Err(e) = HaierClient::new(&config.haier, &config.ylh) {
        eprintln!("error: invalid configuration: {e}");
        return Ok(EXIT_USAGE);
    }
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    if let Some(refusal) = refusal(&db, &config, &plan, args.force).await? {
        eprintln!("error: {refusal}");
        return Ok(1);
    }
    let client = crate::quota::shared_client(&config, &db).context("Failed to build the Haier client")?;
    let ctx = AppContext {
        config: Arc::new(config),
        db,
        client,
    };

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signal_task = tokio::spawn(async move {
        tokio::select! {
            result = tokio::signal::ctrl_c() => if result.is_err() { return },
            _ = sigterm.recv() => {}
        }
        eprintln!("stopping: the run closes as interrupted with what it has written");
        on_signal.cancel();
    });

    let interactive = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
    let mut outcomes: Vec<(String, RunOutcome, Duration)> = Vec::new();
    for (index, planned) in plan.into_iter().enumerate() {
        if index > 0 {
            if let Some((_, previous, _)) = outcomes.last() {
                if matches!(previous.status, RunStatus::Failed | RunStatus::Interrupted) {
                    println!(
                        "not running {}: the run before it ended {}",
                        planned.job.name, previous.status
                    );
                    continue;
                }
            }
        }
        let label = format!("{} ({})", planned.job.name, planned.job.kind);
        let display = Display::new(&label, interactive);
        let started = Instant::now();
        let outcome = sync::run_job(
            &ctx,
            RunRequest::manual(planned.job, planned.overrides),
            cancel.clone(),
            display.progress.clone(),
        )
        .await;
        display.finish();
        let outcome = outcome?;
        let elapsed = started.elapsed();
        print_summary(&label, &outcome, elapsed);
        outcomes.push((label, outcome, elapsed));
    }
    signal_task.abort();
    close_late_rows(&ctx).await;
    Ok(exit_code(outcomes.iter().map(|(_, o, _)| o.status)))
}

/// Why the plan must not run now: one of its jobs runs in a live daemon or a `run-job` of this
/// host (a job never runs twice at once), or is paused and `--force` was not given.
async fn refusal(
    db: &Db,
    config: &Config,
    plan: &[PlannedRun],
    force: bool,
) -> anyhow::Result<Option<String>> {
    let names: Vec<String> = plan.iter().map(|p| p.job.name.clone()).collect();
    let alive = crate::scheduler::alive_since(chrono::Utc::now(), config.daemon.heartbeat_ms);
    let zone = config.defaults.timezone;
    let found = db
        .run(move |conn| {
            let mut found = Vec::new();
            for name in names {
                let going_on = crate::scheduler::runs_going_on(conn, &name, alive)?;
                let pause = pauses::find_pause(conn, &name)?.filter(|p| p.is_in_force());
                found.push((name, going_on, pause));
            }
            Ok(found)
        })
        .await
        .map_err(|e| e.context("Failed to check whether the job runs elsewhere or is paused"))?;
    for (name, going_on, pause) in found {
        if !going_on.is_empty() {
            return Ok(Some(format!(
                "job {name} is running now on {}; run-job does not start a second run beside it \
                 (`haier-sync trigger {name}` asks the daemons to run it once that run has ended)",
                super::trigger::describe_going_on(&going_on, zone)
            )));
        }
        if let Some(pause) = pause.filter(|_| !force) {
            return Ok(Some(format!(
                "job {name} is paused (by {} at {}: {}); `haier-sync run-job {name} --force` runs it \
                 anyway, `haier-sync resume {name}` resumes it",
                pause.paused_by,
                super::format_time(pause.paused_at, zone),
                pause.reason
            )));
        }
    }
    Ok(None)
}

/// Before exiting: waits, as long as the daemon would at shutdown (`shutdown_grace_ms` plus its
/// cancel wait), for the closes of log rows the database did not take when their run ended, so
/// that no row is left `running` when the database comes back within that time.
async fn close_late_rows(ctx: &AppContext) {
    let background = ctx.db.background();
    if background.pending() == 0 {
        return;
    }
    let limit =
        Duration::from_millis(ctx.config.daemon.shutdown_grace_ms) + crate::scheduler::daemon::CANCEL_WAIT;
    eprintln!(
        "waiting up to {} s for the database to take the closing write of {} run(s)",
        limit.as_secs(),
        background.pending()
    );
    let left = background.finish(tokio::time::Instant::now() + limit).await;
    if left > 0 {
        eprintln!(
            "error: {left} run(s) could not close their log row: the database does not take writes; \
             a daemon start closes them as interrupted"
        );
    }
}

/// The runs `args` asks for, or why the arguments do not make sense.
fn plan(args: &RunJobArgs, config: &Config) -> Result<Vec<PlannedRun>, String> {
    let job = match resolve_job(&args.job, config)? {
        JobSpec::Sync(job) => job,
        JobSpec::Outbox(job) => {
            return Err(format!(
                "{} is an order_outbox job: the outbox poller runs it under `haier-sync run`",
                job.name
            ))
        }
    };
    let is_products = job.kind == SyncKind::Products;
    for (flag, given) in [
        ("--category", args.category.is_some()),
        ("--brand", args.brand.is_some()),
        ("--sync-prices", args.sync_prices),
        ("--sync-stock", args.sync_stock),
    ] {
        if given && !is_products {
            return Err(format!(
                "{flag} applies to a products job, and {} is a {} job",
                job.name, job.kind
            ));
        }
    }
    if !args.county_codes.is_empty() && job.kind != SyncKind::Stock && !args.sync_stock {
        return Err(format!(
            "--county-code applies to stock runs: run a stock job, or add --sync-stock to a products job (not {})",
            job.name
        ));
    }
    for code in &args.county_codes {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "--county-code {code:?} is not a 6-digit county code (e.g. 110101)"
            ));
        }
    }
    let product_codes = match &args.product_codes {
        Some(codes) => {
            let codes: Vec<String> = codes
                .iter()
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect();
            if codes.is_empty() {
                return Err("--product-codes needs at least one code".to_owned());
            }
            Some(codes)
        }
        None => None,
    };
    let county_codes = (!args.county_codes.is_empty()).then(|| args.county_codes.clone());
    let overrides = RunOverrides {
        product_codes: product_codes.clone(),
        county_codes: county_codes.clone(),
        local_category: args.category.clone(),
        local_brand: args.brand.clone(),
    };
    let mut runs = vec![PlannedRun { job, overrides }];
    let follow_on = RunOverrides {
        product_codes,
        county_codes,
        ..RunOverrides::default()
    };
    if args.sync_prices {
        runs.push(PlannedRun {
            job: sync::job_of_kind(config, SyncKind::Prices),
            overrides: follow_on.clone(),
        });
    }
    if args.sync_stock {
        runs.push(PlannedRun {
            job: sync::job_of_kind(config, SyncKind::Stock),
            overrides: follow_on,
        });
    }
    Ok(runs)
}

/// A job by name, else by kind (see [`RunJobArgs::job`]).
fn resolve_job(name: &str, config: &Config) -> Result<JobSpec, String> {
    if let Some(job) = config.jobs.get(name) {
        return Ok(job.clone());
    }
    match JobKind::parse(name) {
        Some(kind) => Ok(match kind.sync_kind() {
            Some(kind) => JobSpec::Sync(sync::job_of_kind(config, kind)),
            None => JobSpec::Outbox(config.outbox_job()),
        }),
        None => {
            let names: Vec<&str> = config.jobs.keys().map(String::as_str).collect();
            Err(format!(
                "no job named {name:?} in {}; configured jobs: {}; kinds: products, prices, stock, logistics",
                config.path.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

/// 1 when any run failed or was interrupted, else 3 when any was partial, else 0.
fn exit_code(statuses: impl Iterator<Item = RunStatus>) -> i32 {
    statuses.fold(0, |code, status| match (code, status.exit_code()) {
        (1, _) | (_, 1) => 1,
        (3, _) | (_, 3) => 3,
        _ => 0,
    })
}

pub(crate) fn print_summary(label: &str, outcome: &RunOutcome, elapsed: Duration) {
    let counts = outcome.counts;
    let log = outcome
        .log_id
        .map(|id| format!(", log #{id}"))
        .unwrap_or_default();
    println!(
        "{label}: {} — {} items, {} ok, {} failed in {}{log}",
        outcome.status,
        counts.total,
        counts.success,
        counts.failed,
        super::format_duration(chrono::Duration::from_std(elapsed).unwrap_or_default()),
    );
    if let Some(message) = &outcome.message {
        println!("  {message}");
    }
}

/// The progress display of one run: a bar on a terminal, plain lines otherwise.
pub(crate) struct Display {
    pub(crate) progress: Arc<dyn Progress>,
    bar: Option<ProgressBar>,
}

impl Display {
    pub(crate) fn new(label: &str, interactive: bool) -> Self {
        if interactive {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {rate} ETA {eta} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            })
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            Self {
                progress: Arc::new(BarProgress(bar.clone())),
                bar: Some(bar),
            }
        } else {
            Self {
                progress: Arc::new(LineProgress::new(label)),
                bar: None,
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// indicatif's bar, with rate and ETA.
struct BarProgress(ProgressBar);

impl Progress for BarProgress {
    fn set_total(&self, n: u64) {
        self.0.set_length(n);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, text: &str) {
        self.0.set_message(text.to_owned());
    }
}

/// Plain lines for logs and pipes: one per message and one per 10% (or 5 s) of progress.
struct LineProgress {
    label: String,
    started: Instant,
    total: AtomicU64,
    done: AtomicU64,
    last: Mutex<(u64, Instant)>,
}

/// At most this long between two progress lines while items are done.
const LINE_EVERY: Duration = Duration::from_secs(5);

impl LineProgress {
    fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            started: Instant::now(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            last: Mutex::new((0, Instant::now())),
        }
    }
}

impl Progress for LineProgress {
    fn set_total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
        println!("{}: {n} items", self.label);
    }

    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let total = self.total.load(Ordering::Relaxed);
        let step = (total / 10).max(1);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let crossed = done / step > last.0 / step;
        if crossed || last.1.elapsed() >= LINE_EVERY || done == total {
            if done == last.0 {
                return;
            }
            *last = (done, Instant::now());
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let rate = done as f64 / secs;
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            let eta = if rate > 0.0 && total > done {
                format!(", ETA {:.0}s", (total - done) as f64 / rate)
            } else {
                String::new()
            };
            println!("{}: {done}/{total} ({percent}%), {rate:.0}/s{eta}", self.label);
        }
    }

    fn message(&self, text: &str) {
        println!("{}: {text}", self.label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_takes_the_worst_status() {
        use RunStatus::*;
        assert_eq!(exit_code([Success, Success].into_iter()), 0);
        assert_eq!(exit_code([Success, Partial].into_iter()), 3);
        assert_eq!(exit_code([Partial, Failed, Success].into_iter()), 1);
        assert_eq!(exit_code([Interrupted].into_iter()), 1);
        assert_eq!(exit_code(std::iter::empty()), 0);
    }
}

//! `haier-sync pause JOB --reason TEXT` and `haier-sync resume JOB [--catch-up]`: stop and start
//! a job on every daemon that shares the database, without editing `jobs.toml`. The pause is a
//! row in `haier_job_pauses` (`crate::control::pauses`), so it outlives reloads and restarts.

use crate::config::Config;
use crate::control::{self, pauses};
use crate::db::{self, Db};

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// The job to pause, as named in jobs.toml ([jobs.NAME]).
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Why, for whoever looks at `haier-sync status` next (required).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The paused job to resume, as named in jobs.toml ([jobs.NAME]).
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Also run, once, the job's last tick when it passed while the job was paused. Without it,
    /// the job simply waits for its next tick.
    #[arg(long)]
    pub catch_up: bool,
}

pub async fn pause(args: PauseArgs, config: &Config) -> anyhow::Result<i32> {
    if let Err(message) = check_job(config, &args.job) {
        eprintln!("error: {message}");
        return Ok(super::EXIT_USAGE);
    }
    let reason = args.reason.trim().to_owned();
    if reason.is_empty() {
        eprintln!("error: --reason is empty: say why the job {} is paused", args.job);
        return Ok(super::EXIT_USAGE);
    }
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    let earlier = pause_job(&db, &args.job, control::operator_name(), reason).await?;
    if let Some(earlier) = earlier {
        println!(
            "job {} was already paused by {} ({}); its reason is replaced",
            args.job, earlier.paused_by, earlier.reason
        );
    }
    println!(
        "job {} paused: every daemon skips its ticks from now on, until `haier-sync resume {}`",
        args.job, args.job
    );
    Ok(0)
}

pub async fn resume(args: ResumeArgs, config: &Config) -> anyhow::Result<i32> {
    if let Err(message) = check_job(config, &args.job) {
        eprintln!("error: {message}");
        return Ok(super::EXIT_USAGE);
    }
    let db = Db::connect(&config.database).await?;
    db.migrate().await?;
    let resumed = resume_job(&db, &args.job, control::operator_name(), args.catch_up).await?;
    if !resumed {
        println!("job {} is not paused; nothing to do", args.job);
    } else if args.catch_up {
        println!(
            "job {} resumed; a daemon runs its last tick once now if it passed while paused",
            args.job
        );
    } else {
        println!("job {} resumed: it runs again from its next tick", args.job);
    }
    Ok(0)
}

/// Pauses `job` as `by` with `reason` (checked, trimmed and non-empty); returns the pause it
/// replaces, if one was in force. The status page pauses through here too.
pub(crate) async fn pause_job(
    db: &Db,
    job: &str,
    by: String,
    reason: String,
) -> anyhow::Result<Option<pauses::JobPause>> {
    let name = job.to_owned();
    db.run(move |conn| {
        let earlier = pauses::find_pause(conn, &name)?.filter(|p| p.is_in_force());
        pauses::pause_job(conn, &name, &by, db::now_utc(), &reason)?;
        Ok(earlier)
    })
    .await
    .map_err(|e| e.context(format!("Failed to pause the job {job}")))
}

/// Resumes `job` as `by`; returns whether it was paused. The status page resumes through here
/// too.
pub(crate) async fn resume_job(db: &Db, job: &str, by: String, catch_up: bool) -> anyhow::Result<bool> {
    let name = job.to_owned();
    db.run(move |conn| Ok(pauses::resume_job(conn, &name, &by, db::now_utc(), catch_up)?))
        .await
        .map_err(|e| e.context(format!("Failed to resume the job {job}")))
}

/// The job must be in jobs.toml; else an error that lists the jobs there are.
pub fn check_job(config: &Config, job: &str) -> Result<(), String> {
    if config.jobs.contains_key(job) {
        return Ok(());
    }
    let names: Vec<&str> = config.jobs.keys().map(String::as_str).collect();
    Err(format!(
        "no job named {job:?} in {}; the jobs are: {}",
        config.path.display(),
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    ))
}

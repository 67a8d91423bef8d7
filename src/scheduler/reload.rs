//! Reload: what changed between the running job set and a newly validated `jobs.toml`, as one
//! change per job (added, removed, enabled, disabled, re-timed, updated), each logged on its own
//! line. Applying the changes is the daemon's (`daemon.rs`); this file only compares.

use crate::config::{AdminConfig, Config, JobSpec, OutboxJob, SyncJob};
use std::collections::BTreeMap;
use std::fmt;

/// What happened to one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobChange {
    Added {
        name: String,
    },
    Removed {
        name: String,
    },
    Enabled {
        name: String,
    },
    Disabled {
        name: String,
    },
    /// Its schedule or time zone changed (other settings may have changed too).
    Retimed {
        name: String,
        from: String,
        to: String,
    },
    /// Other settings changed, named in `fields`; the next run uses them.
    Updated {
        name: String,
        fields: Vec<&'static str>,
    },
}

impl JobChange {
    pub fn name(&self) -> &str {
        match self {
            JobChange::Added { name }
            | JobChange::Removed { name }
            | JobChange::Enabled { name }
            | JobChange::Disabled { name }
            | JobChange::Retimed { name, .. }
            | JobChange::Updated { name, .. } => name,
        }
    }
}

impl fmt::Display for JobChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobChange::Added { name } => write!(f, "job {name}: added"),
            JobChange::Removed { name } => {
                write!(f, "job {name}: removed (a run that goes on is left to end)")
            }
            JobChange::Enabled { name } => write!(f, "job {name}: enabled"),
            JobChange::Disabled { name } => {
                write!(f, "job {name}: disabled (a run that goes on is left to end)")
            }
            JobChange::Retimed { name, from, to } => {
                write!(f, "job {name}: re-timed from `{from}` to `{to}`")
            }
            JobChange::Updated { name, fields } => {
                write!(
                    f,
                    "job {name}: {} changed; the next run uses the new value",
                    fields.join(", ")
                )
            }
        }
    }
}

/// The changes that turn job set `old` into `new`, in name order.
pub fn diff_jobs(old: &BTreeMap<String, JobSpec>, new: &BTreeMap<String, JobSpec>) -> Vec<JobChange> {
    let mut changes = Vec::new();
    for name in old.keys() {
        if !new.contains_key(name) {
            changes.push(JobChange::Removed { name: name.clone() });
        }
    }
    for (name, new_job) in new {
        let Some(old_job) = old.get(name) else {
            changes.push(JobChange::Added { name: name.clone() });
            continue;
        };
        let fields = changed_fields(old_job, new_job);
        if fields.is_empty() {
            continue;
        }
        let name = name.clone();
        let change = if old_job.enabled() != new_job.enabled() {
            if new_job.enabled() {
                JobChange::Enabled { name }
            } else {
                JobChange::Disabled { name }
            }
        } else if fields.contains(&"schedule") || fields.contains(&"timezone") {
            JobChange::Retimed {
                name,
                from: timing(old_job),
                to: timing(new_job),
            }
        } else {
            JobChange::Updated { name, fields }
        };
        changes.push(change);
    }
    changes.sort_by(|a, b| a.name().cmp(b.name()));
    changes
}

/// `*/2 * * * * * Asia/Shanghai`, or the poll interval of the order poller.
fn timing(job: &JobSpec) -> String {
    match job {
        JobSpec::Sync(SyncJob {
            schedule: Some(s),
            timezone,
            ..
        }) => format!("{} {timezone}", s.as_written()),
        JobSpec::Sync(_) => "no schedule".to_owned(),
        JobSpec::Outbox(job) => format!("every {} ms", job.poll_interval_ms),
    }
}

/// The settings of a job that differ, by key. A job whose kind changed has a new schedule (a
/// cron one, or the poller's interval) as well.
fn changed_fields(a: &JobSpec, b: &JobSpec) -> Vec<&'static str> {
    match (a, b) {
        (JobSpec::Sync(a), JobSpec::Sync(b)) => changed_sync_fields(a, b),
        (JobSpec::Outbox(a), JobSpec::Outbox(b)) => changed_outbox_fields(a, b),
        _ if a.enabled() != b.enabled() => vec!["kind", "schedule", "enabled"],
        _ => vec!["kind", "schedule"],
    }
}

fn changed_sync_fields(a: &SyncJob, b: &SyncJob) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut check = |key: &'static str, same: bool| {
        if !same {
            fields.push(key);
        }
    };
    check("kind", a.kind == b.kind);
    check("schedule", a.schedule == b.schedule);
    check("timezone", a.timezone == b.timezone);
    check("enabled", a.enabled == b.enabled);
    check("timeout_ms", a.timeout_ms == b.timeout_ms);
    check("overlap", a.overlap == b.overlap);
    check("jitter_ms", a.jitter_ms == b.jitter_ms);
    check("catch_up", a.catch_up == b.catch_up);
    check("catch_up_within_ms", a.catch_up_within_ms == b.catch_up_within_ms);
    check("product_codes", a.product_codes == b.product_codes);
    check("county_codes", a.county_codes == b.county_codes);
    check("concurrency", a.concurrency == b.concurrency);
    fields
}

fn changed_outbox_fields(a: &OutboxJob, b: &OutboxJob) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut check = |key: &'static str, same: bool| {
        if !same {
            fields.push(key);
        }
    };
    check("enabled", a.enabled == b.enabled);
    check("concurrency", a.concurrency == b.concurrency);
    check("poll_interval_ms", a.poll_interval_ms == b.poll_interval_ms);
    check("batch_size", a.batch_size == b.batch_size);
    check("max_attempts", a.max_attempts == b.max_attempts);
    check("lease_ms", a.lease_ms == b.lease_ms);
    check("confirm_within_ms", a.confirm_within_ms == b.confirm_within_ms);
    fields
}

/// The sections outside `[jobs]` and `[daemon]` that differ: they hold the database pool, the
/// shared client, the callback listener, logging, the status page's listener and tokens and the
/// shop's webhook, which are made once at start, so a change
/// takes effect after a restart. (A secret that changed inside its `*_file` is not seen here.)
pub fn sections_needing_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut sections = Vec::new();
    let mut check = |name: &'static str, a: String, b: String| {
        if a != b {
            sections.push(name);
        }
    };
    check(
        "database",
        format!("{:?}", old.database),
        format!("{:?}", new.database),
    );
    check("haier", format!("{:?}", old.haier), format!("{:?}", new.haier));
    check("ylh", format!("{:?}", old.ylh), format!("{:?}", new.ylh));
    check(
        "callback",
        format!("{:?}", old.callback),
        format!("{:?}", new.callback),
    );
    check("log", format!("{:?}", old.log), format!("{:?}", new.log));
    check(
        "retention",
        format!("{:?}", old.retention),
        format!("{:?}", new.retention),
    );
    // `Debug` hides the secrets: a changed token or webhook secret is compared on its own.
    let credentials = |config: &Config| config.admin.as_ref().map(AdminConfig::credentials);
    if format!("{:?}", old.admin) != format!("{:?}", new.admin) || credentials(old) != credentials(new) {
        sections.push("admin");
    }
    let shop_secret = |config: &Config| config.shop.as_ref().map(|shop| shop.secret.clone());
    if format!("{:?}", old.shop) != format!("{:?}", new.shop) || shop_secret(old) != shop_secret(new) {
        sections.push("shop");
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overlap, Schedule};
    use crate::scheduler::tests::job;

    fn set(jobs: &[SyncJob]) -> BTreeMap<String, JobSpec> {
        jobs.iter()
            .map(|j| (j.name.clone(), JobSpec::Sync(j.clone())))
            .collect()
    }

    #[test]
    fn an_unchanged_set_has_no_changes() {
        let jobs = set(&[job("stock", "*/2 * * * * *"), job("prices", "0 30 */4 * * *")]);
        assert!(diff_jobs(&jobs, &jobs.clone()).is_empty());
    }

    #[test]
    fn each_kind_of_change_is_one_line() {
        let old = set(&[
            job("stock", "*/2 * * * * *"),
            job("prices", "0 30 */4 * * *"),
            job("gone", "0 0 * * * *"),
            job("logistics", "0 */10 * * * *"),
            job("products", "0 0 2 * * *"),
        ]);
        let mut stock = job("stock", "*/3 * * * * *");
        stock.jitter_ms = 500;
        let mut prices = job("prices", "0 30 */4 * * *");
        prices.enabled = false;
        let mut logistics = job("logistics", "0 */10 * * * *");
        logistics.overlap = Overlap::Queue;
        logistics.timeout_ms = Some(1000);
        let mut products = job("products", "0 0 2 * * *");
        products.timezone = chrono_tz::Europe::Berlin;
        let new = set(&[stock, prices, logistics, products, job("fresh", "0 0 3 * * *")]);

        let changes = diff_jobs(&old, &new);
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "job fresh: added",
                "job gone: removed (a run that goes on is left to end)",
                "job logistics: timeout_ms, overlap changed; the next run uses the new value",
                "job prices: disabled (a run that goes on is left to end)",
                "job products: re-timed from `0 0 2 * * * Asia/Shanghai` to `0 0 2 * * * Europe/Berlin`",
                "job stock: re-timed from `*/2 * * * * * Asia/Shanghai` to `*/3 * * * * * Asia/Shanghai`",
            ]
        );
    }

    #[test]
    fn a_five_field_schedule_equal_to_its_six_field_form_is_no_change() {
        let old = set(&[job("stock", "*/5 * * * *")]);
        let mut same = job("stock", "0 */5 * * * *");
        same.schedule = Some(Schedule::parse("0 */5 * * * *").unwrap());
        assert!(diff_jobs(&old, &set(&[same])).is_empty());
    }
}

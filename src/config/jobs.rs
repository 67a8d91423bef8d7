//! The `[jobs.<name>]` tables: a job is either a sync ([`SyncJob`]: products, prices, stock or
//! logistics, fired by its cron schedule) or the order-outbox poller ([`OutboxJob`]: runs
//! continuously), the two shapes of [`JobSpec`]; and their resolution from the raw shape, with
//! defaults. The file format is one flat table for both: every key is accepted and checked for
//! either kind, and each shape keeps the keys it uses.

use super::limits;
use super::load::{ConfigError, LoaderWithDoc};
use super::raw::RawJob;
use super::{Config, DefaultsConfig, Schedule};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What a job does: the `kind` key of `[jobs.<name>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Products,
    Prices,
    Stock,
    Logistics,
    OrderOutbox,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::Products,
        JobKind::Prices,
        JobKind::Stock,
        JobKind::Logistics,
        JobKind::OrderOutbox,
    ];

    /// The name used in `jobs.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Products => "products",
            JobKind::Prices => "prices",
            JobKind::Stock => "stock",
            JobKind::Logistics => "logistics",
            JobKind::OrderOutbox => "order_outbox",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The `sync_type` this kind writes to `haier_sync_logs`.
    pub fn sync_type(self) -> crate::runs::SyncType {
        use crate::runs::SyncType;
        match self {
            JobKind::Products => SyncType::Products,
            JobKind::Prices => SyncType::Prices,
            JobKind::Stock => SyncType::Stock,
            JobKind::Logistics => SyncType::Logistics,
            JobKind::OrderOutbox => SyncType::Order,
        }
    }

    /// The sync this kind names; `None` for `order_outbox`.
    pub fn sync_kind(self) -> Option<SyncKind> {
        SyncKind::ALL.into_iter().find(|k| k.job_kind() == self)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a sync job fetches from Haier: one file each in `src/sync/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    Products,
    Prices,
    Stock,
    Logistics,
}

impl SyncKind {
    pub const ALL: [SyncKind; 4] = [
        SyncKind::Products,
        SyncKind::Prices,
        SyncKind::Stock,
        SyncKind::Logistics,
    ];

    /// The `kind` this is in `jobs.toml`.
    pub fn job_kind(self) -> JobKind {
        match self {
            SyncKind::Products => JobKind::Products,
            SyncKind::Prices => JobKind::Prices,
            SyncKind::Stock => JobKind::Stock,
            SyncKind::Logistics => JobKind::Logistics,
        }
    }

    /// The name used in `jobs.toml`.
    pub fn as_str(self) -> &'static str {
        self.job_kind().as_str()
    }

    /// The `sync_type` this kind writes to `haier_sync_logs`.
    pub fn sync_type(self) -> crate::runs::SyncType {
        self.job_kind().sync_type()
    }
}

impl From<SyncKind> for JobKind {
    fn from(kind: SyncKind) -> JobKind {
        kind.job_kind()
    }
}

impl std::fmt::Display for SyncKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a tick that comes while the job's previous run still goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Write a `skipped` log row and drop the tick.
    Skip,
    /// Run once more as soon as the current run ends (at most one waiting run).
    Queue,
}

/// What to do at start when a fire time was missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    Skip,
    Once,
}

/// The county a stock job queries when neither the job nor `[defaults]` names one (the seed's
/// default: Beijing, Dongcheng).
pub const DEFAULT_COUNTY_CODE: &str = "110101";
/// order_outbox defaults; `lease_ms` outlasts the longest push the client makes with its default
/// timeout and retries.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;
pub const DEFAULT_BATCH_SIZE: u32 = 50;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
pub const DEFAULT_LEASE_MS: u64 = 120_000;
/// How long Haier has to confirm a pushed order, or answer a cancel, before it is flagged: a day.
pub const DEFAULT_CONFIRM_WITHIN_MS: u64 = 86_400_000;

/// One `[jobs.<name>]` table, in the shape its kind gives it.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a config holds a handful of jobs; a parsed cron schedule is what makes a sync job large"
)]
pub enum JobSpec {
    /// products, prices, stock or logistics: runs when its schedule fires.
    Sync(SyncJob),
    /// order_outbox: pushes due orders continuously.
    Outbox(OutboxJob),
}

impl JobSpec {
    pub fn name(&self) -> &str {
        match self {
            JobSpec::Sync(job) => &job.name,
            JobSpec::Outbox(job) => &job.name,
        }
    }

    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Sync(job) => job.kind.job_kind(),
            JobSpec::Outbox(job) => job.kind(),
        }
    }

    pub fn enabled(&self) -> bool {
        match self {
            JobSpec::Sync(job) => job.enabled,
            JobSpec::Outbox(job) => job.enabled,
        }
    }

    pub fn as_sync(&self) -> Option<&SyncJob> {
        match self {
            JobSpec::Sync(job) => Some(job),
            JobSpec::Outbox(_) => None,
        }
    }

    pub fn as_sync_mut(&mut self) -> Option<&mut SyncJob> {
        match self {
            JobSpec::Sync(job) => Some(job),
            JobSpec::Outbox(_) => None,
        }
    }

    pub fn as_outbox(&self) -> Option<&OutboxJob> {
        match self {
            JobSpec::Outbox(job) => Some(job),
            JobSpec::Sync(_) => None,
        }
    }

    pub fn as_outbox_mut(&mut self) -> Option<&mut OutboxJob> {
        match self {
            JobSpec::Outbox(job) => Some(job),
            JobSpec::Sync(_) => None,
        }
    }
}

/// A products, prices, stock or logistics job.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncJob {
    pub name: String,
    pub kind: SyncKind,
    /// Always set for a job from `jobs.toml`; `None` only for the job with every default that
    /// `run-job <kind>` makes up when no job of that kind is configured.
    pub schedule: Option<Schedule>,
    /// The zone of the schedule.
    pub timezone: Tz,
    pub enabled: bool,
    pub timeout_ms: Option<u64>,
    pub overlap: Overlap,
    pub jitter_ms: u64,
    pub catch_up: CatchUp,
    /// With `catch_up = "once"`: a missed fire older than this is not caught up at start (it
    /// still counts as missed); `None` catches up the last missed fire however old.
    pub catch_up_within_ms: Option<u64>,
    /// products/prices/stock: only these codes (empty: every listed product).
    pub product_codes: Vec<String>,
    /// stock: the counties to query; already resolved from the job, `[defaults]`, then `110101`.
    pub county_codes: Vec<String>,
    /// Requests in flight at once for this job (default: half the openplat `per_second`, at least
    /// twice its burst and 8).
    pub concurrency: Option<usize>,
}

impl SyncJob {
    /// A job of `kind` with every default and no schedule, named after its kind. Its counties
    /// are `[defaults] county_codes`, else [`DEFAULT_COUNTY_CODE`].
    pub fn with_defaults(kind: SyncKind, defaults: &DefaultsConfig) -> SyncJob {
        let county_codes = if defaults.county_codes.is_empty() {
            vec![DEFAULT_COUNTY_CODE.to_owned()]
        } else {
            defaults.county_codes.clone()
        };
        SyncJob {
            name: kind.as_str().to_owned(),
            kind,
            schedule: None,
            timezone: defaults.timezone,
            enabled: true,
            timeout_ms: None,
            overlap: Overlap::Skip,
            jitter_ms: 0,
            catch_up: CatchUp::Skip,
            catch_up_within_ms: None,
            product_codes: Vec::new(),
            county_codes,
            concurrency: None,
        }
    }
}

/// The `order_outbox` job: the poller that pushes due orders to YLH.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxJob {
    pub name: String,
    pub enabled: bool,
    /// Pushes in flight at once (default: `batch_size`).
    pub concurrency: Option<usize>,
    /// How often to look for due rows when nothing wakes the poller.
    pub poll_interval_ms: u64,
    /// Rows claimed per poll.
    pub batch_size: u32,
    /// Push attempts before a row goes `dead`.
    pub max_attempts: u32,
    /// How long a claimed row stays leased to this instance.
    pub lease_ms: u64,
    /// An order `pushed` this long without a confirm callback, or a cancel asked this long ago
    /// without a cancel callback, is flagged (`status`, `outbox list --unconfirmed`, `/metrics`).
    pub confirm_within_ms: u64,
}

impl OutboxJob {
    /// Always [`JobKind::OrderOutbox`].
    pub fn kind(&self) -> JobKind {
        JobKind::OrderOutbox
    }

    /// An outbox job with every default, named after its kind.
    pub fn with_defaults() -> OutboxJob {
        OutboxJob {
            name: JobKind::OrderOutbox.as_str().to_owned(),
            enabled: true,
            concurrency: None,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            batch_size: DEFAULT_BATCH_SIZE,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            lease_ms: DEFAULT_LEASE_MS,
            confirm_within_ms: DEFAULT_CONFIRM_WITHIN_MS,
        }
    }

    /// The time before which a push or cancel request still unanswered is flagged.
    pub fn unconfirmed_before(&self, now: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
        now - chrono::Duration::milliseconds(self.confirm_within_ms.min(i64::MAX as u64) as i64)
    }
}

impl Config {
    /// The first configured `order_outbox` job (in name order), or one with every default.
    pub fn outbox_job(&self) -> OutboxJob {
        self.jobs
            .values()
            .find_map(JobSpec::as_outbox)
            .cloned()
            .unwrap_or_else(OutboxJob::with_defaults)
    }
}

impl LoaderWithDoc {
    /// Checks every key of a job table, whichever kind uses it, then keeps those of its kind.
    pub(super) fn resolve_job(
        &self,
        name: &str,
        raw: RawJob,
        defaults: &DefaultsConfig,
    ) -> Result<JobSpec, ConfigError> {
        let path = |key: &'static str| -> Vec<&str> { vec!["jobs", name, key] };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(self.error(
                &["jobs", name],
                "a job name uses only letters, digits, `_` and `-`",
            ));
        }
        let kind = raw
            .kind
            .ok_or_else(|| self.error(&path("kind"), "this key is required"))?;
        let sync_kind = kind.sync_kind();
        let schedule = match (&raw.schedule, sync_kind) {
            (Some(_), None) => {
                return Err(self.error(
                    &path("schedule"),
                    "the order_outbox poller runs on `poll_interval_ms`, not a schedule",
                ))
            }
            (None, None) => None,
            (None, Some(_)) => return Err(self.error(&path("schedule"), "this key is required")),
            (Some(text), Some(_)) => {
                Some(Schedule::parse(text).map_err(|m| self.error(&path("schedule"), m))?)
            }
        };
        let timezone = match raw.timezone.as_deref() {
            Some(text) => self.timezone(text, &path("timezone"))?,
            None => defaults.timezone,
        };
        let county_codes = match raw.county_codes {
            Some(codes) if !codes.is_empty() => self.county_codes(codes, &path("county_codes"))?,
            _ if !defaults.county_codes.is_empty() => defaults.county_codes.clone(),
            _ => vec![DEFAULT_COUNTY_CODE.to_owned()],
        };
        if let Some(timeout_ms) = raw.timeout_ms {
            if !limits::JOB_TIMEOUT_MS.contains(timeout_ms.into()) {
                return Err(self.error(
                    &path("timeout_ms"),
                    format!(
                        "{} (leave it out for no timeout)",
                        limits::JOB_TIMEOUT_MS.message(timeout_ms.into())
                    ),
                ));
            }
        }
        if let Some(concurrency) = raw.concurrency {
            self.check(
                &path("concurrency"),
                u64::try_from(concurrency).unwrap_or(u64::MAX),
                limits::CONCURRENCY,
            )?;
        }
        let product_codes = raw.product_codes.unwrap_or_default();
        if product_codes.iter().any(|code| code.trim().is_empty()) {
            return Err(self.error(&path("product_codes"), "a product code must not be empty"));
        }
        let jitter_ms = raw.jitter_ms.unwrap_or(0);
        self.check(&path("jitter_ms"), jitter_ms, limits::JITTER_MS)?;
        if let Some(within) = raw.catch_up_within_ms {
            if !limits::CATCH_UP_WITHIN_MS.contains(within.into()) {
                return Err(self.error(
                    &path("catch_up_within_ms"),
                    format!(
                        "{} (leave it out to catch up however old)",
                        limits::CATCH_UP_WITHIN_MS.message(within.into())
                    ),
                ));
            }
        }
        let poll_interval_ms = raw.poll_interval_ms.unwrap_or(DEFAULT_POLL_INTERVAL_MS);
        let batch_size = raw.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let lease_ms = raw.lease_ms.unwrap_or(DEFAULT_LEASE_MS);
        let confirm_within_ms = raw.confirm_within_ms.unwrap_or(DEFAULT_CONFIRM_WITHIN_MS);
        for (key, value, limit) in [
            ("poll_interval_ms", poll_interval_ms, limits::POLL_INTERVAL_MS),
            ("batch_size", u64::from(batch_size), limits::BATCH_SIZE),
            (
                "max_attempts",
                u64::from(max_attempts),
                limits::OUTBOX_MAX_ATTEMPTS,
            ),
            ("lease_ms", lease_ms, limits::LEASE_MS),
            ("confirm_within_ms", confirm_within_ms, limits::CONFIRM_WITHIN_MS),
        ] {
            self.check(&path(key), value, limit)?;
        }
        let enabled = raw.enabled.unwrap_or(true);
        Ok(match sync_kind {
            Some(kind) => JobSpec::Sync(SyncJob {
                name: name.to_owned(),
                kind,
                schedule,
                timezone,
                enabled,
                timeout_ms: raw.timeout_ms,
                overlap: raw.overlap.unwrap_or(Overlap::Skip),
                jitter_ms,
                catch_up: raw.catch_up.unwrap_or(CatchUp::Once),
                catch_up_within_ms: raw.catch_up_within_ms,
                product_codes,
                county_codes,
                concurrency: raw.concurrency,
            }),
            None => JobSpec::Outbox(OutboxJob {
                name: name.to_owned(),
                enabled,
                concurrency: raw.concurrency,
                poll_interval_ms,
                batch_size,
                max_attempts,
                lease_ms,
                confirm_within_ms,
            }),
        })
    }
}

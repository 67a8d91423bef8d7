//! The accepted range of every numeric key in `jobs.toml`, each with the reason for its bounds.
//! The loader checks them; `systemd/jobs.example.toml` and the README state them.

/// The values a numeric key accepts, both ends included, and the unit it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub min: u64,
    pub max: u64,
    /// `" ms"`, `" s"`, `" bytes"` or `""`, as written after a value in a message.
    pub unit: &'static str,
}

impl Limit {
    const fn new(min: u64, max: u64, unit: &'static str) -> Self {
        Self { min, max, unit }
    }

    /// Whether `value` (any integer type the loader reads) lies within the limit.
    pub fn contains(&self, value: i128) -> bool {
        i128::from(self.min) <= value && value <= i128::from(self.max)
    }

    /// The message for a value outside the limit: `must be from 1 to 600000 ms; got 0`.
    pub fn message(&self, value: i128) -> String {
        format!(
            "must be from {} to {}{}; got {value}",
            self.min, self.max, self.unit
        )
    }
}

/// `[database] max_connections`: at least one; PostgreSQL's own default server limit is 100.
pub const MAX_CONNECTIONS: Limit = Limit::new(1, 100, "");
/// `[database] wait_ms`: a busy SQLite database must get a moment; past ten minutes a run that
/// waits looks hung.
pub const DATABASE_WAIT_MS: Limit = Limit::new(100, 600_000, " ms");
/// `[haier]`/`[ylh] timeout_ms`, per request: ten minutes is far past any reply worth waiting for.
pub const REQUEST_TIMEOUT_MS: Limit = Limit::new(1, 600_000, " ms");
/// `rate_limit.per_second`: Haier's quotas are tens per second; 100000 leaves room for test rigs.
pub const RATE_PER_SECOND: Limit = Limit::new(1, 100_000, "");
/// `rate_limit.burst`: at least one request must be allowed at once.
pub const RATE_BURST: Limit = Limit::new(1, 100_000, "");
/// `retry.max_attempts`, the first included: more than 100 tries of one call only hide an outage.
pub const RETRY_MAX_ATTEMPTS: Limit = Limit::new(1, 100, "");
/// `retry.backoff_base_ms`: 0 retries at once; ten minutes before a second try is the most useful.
pub const BACKOFF_BASE_MS: Limit = Limit::new(0, 600_000, " ms");
/// `retry.backoff_cap_ms`: at most an hour between two tries of one call (and not below the base).
pub const BACKOFF_CAP_MS: Limit = Limit::new(0, 3_600_000, " ms");
/// `breaker.failure_threshold`: at least one failure opens it; a million is "never" for tests.
pub const BREAKER_FAILURE_THRESHOLD: Limit = Limit::new(1, 1_000_000, "");
/// `breaker.cool_down_ms`: an open breaker probes again within an hour at the latest.
pub const BREAKER_COOL_DOWN_MS: Limit = Limit::new(1, 3_600_000, " ms");
/// `[callback] max_body_bytes`: a signed callback form is a few hundred bytes (0 would refuse
/// every callback); 16 MiB bounds what one request may make the receiver hold.
pub const CALLBACK_MAX_BODY_BYTES: Limit = Limit::new(1024, 16 * 1024 * 1024, " bytes");
/// `[callback] clock_skew_warn_secs`: 0 would warn of (nearly) every callback; past a week a
/// warning no longer tells a clock that is off from a retry.
pub const CALLBACK_CLOCK_SKEW_WARN_SECS: Limit = Limit::new(1, 604_800, " s");
/// `[callback] rejected_per_minute`: rejected callbacks stored per source address and minute
/// once its burst is spent; at least one, and 6000 (100 a second) already stores megabytes an hour.
pub const CALLBACK_REJECTED_PER_MINUTE: Limit = Limit::new(1, 6_000, "");
/// `[callback] rejected_burst`: rejected callbacks one source address may have stored at once.
pub const CALLBACK_REJECTED_BURST: Limit = Limit::new(1, 1_000_000, "");
/// `[daemon] shutdown_grace_ms`: 0 cancels running jobs at once; keep it below the unit's
/// TimeoutStopSec, which is rarely above ten minutes.
pub const SHUTDOWN_GRACE_MS: Limit = Limit::new(0, 600_000, " ms");
/// `[daemon] heartbeat_ms`: faster than every 100 ms only loads the database; a daemon silent
/// for three beats counts as stopped, so beats more than ten minutes apart hide a dead daemon.
pub const HEARTBEAT_MS: Limit = Limit::new(100, 600_000, " ms");
/// `[jobs.*] timeout_ms`: a run may last a day at most (leave the key out for no timeout).
pub const JOB_TIMEOUT_MS: Limit = Limit::new(1, 86_400_000, " ms");
/// `[jobs.*] jitter_ms`: a random delay of up to a day, as the longest useful schedule period.
pub const JITTER_MS: Limit = Limit::new(0, 86_400_000, " ms");
/// `[jobs.*] catch_up_within_ms`: the oldest missed fire still caught up at start; from a second
/// (a restart) to a year (leave the key out for no bound).
pub const CATCH_UP_WITHIN_MS: Limit = Limit::new(1_000, 31_536_000_000, " ms");
/// `[jobs.*] concurrency`: requests in flight for one job; the rate limiter paces them anyway.
pub const CONCURRENCY: Limit = Limit::new(1, 1_000, "");
/// `order_outbox` `poll_interval_ms`: polling more often than every 10 ms only loads the
/// database (new rows wake the poller anyway); an hour is the longest a due row may wait.
pub const POLL_INTERVAL_MS: Limit = Limit::new(10, 3_600_000, " ms");
/// `order_outbox` `batch_size`: rows claimed per poll.
pub const BATCH_SIZE: Limit = Limit::new(1, 1_000, "");
/// `order_outbox` `max_attempts`: push attempts before a row goes `dead`.
pub const OUTBOX_MAX_ATTEMPTS: Limit = Limit::new(1, 1_000, "");
/// `order_outbox` `lease_ms`: a lease shorter than 100 ms runs out during every push (each then
/// pushed twice); a day is the longest a dead instance may keep an order.
pub const LEASE_MS: Limit = Limit::new(100, 86_400_000, " ms");
/// `order_outbox` `confirm_within_ms`: Haier confirms (or answers a cancel) within minutes to
/// hours; flagging sooner than a minute only raises false alarms, and past 30 days an order
/// is long lost.
pub const CONFIRM_WITHIN_MS: Limit = Limit::new(60_000, 2_592_000_000, " ms");
/// `[retention] *_days`: at least a day (0 would delete what was just written); a century is
/// "keep".
pub const RETENTION_DAYS: Limit = Limit::new(1, 36_500, " days");
/// Every limit with the keys it bounds, so that a test can hold the documentation to them.
pub const ALL: &[(&str, Limit)] = &[
    ("database.max_connections", MAX_CONNECTIONS),
    ("database.wait_ms", DATABASE_WAIT_MS),
    ("haier/ylh.timeout_ms", REQUEST_TIMEOUT_MS),
    ("rate_limit.per_second", RATE_PER_SECOND),
    ("rate_limit.burst", RATE_BURST),
    ("retry.max_attempts", RETRY_MAX_ATTEMPTS),
    ("retry.backoff_base_ms", BACKOFF_BASE_MS),
    ("retry.backoff_cap_ms", BACKOFF_CAP_MS),
    ("breaker.failure_threshold", BREAKER_FAILURE_THRESHOLD),
    ("breaker.cool_down_ms", BREAKER_COOL_DOWN_MS),
    ("callback.max_body_bytes", CALLBACK_MAX_BODY_BYTES),
    ("callback.clock_skew_warn_secs", CALLBACK_CLOCK_SKEW_WARN_SECS),
    ("callback.rejected_per_minute", CALLBACK_REJECTED_PER_MINUTE),
    ("callback.rejected_burst", CALLBACK_REJECTED_BURST),
    ("daemon.shutdown_grace_ms", SHUTDOWN_GRACE_MS),
    ("daemon.heartbeat_ms", HEARTBEAT_MS),
    ("jobs.*.timeout_ms", JOB_TIMEOUT_MS),
    ("jobs.*.jitter_ms", JITTER_MS),
    ("jobs.*.catch_up_within_ms", CATCH_UP_WITHIN_MS),
    ("jobs.*.concurrency", CONCURRENCY),
    ("jobs.*.poll_interval_ms", POLL_INTERVAL_MS),
    ("jobs.*.batch_size", BATCH_SIZE),
    ("jobs.*.max_attempts", OUTBOX_MAX_ATTEMPTS),
    ("jobs.*.lease_ms", LEASE_MS),
    ("jobs.*.confirm_within_ms", CONFIRM_WITHIN_MS),
    ("retention.*_days", RETENTION_DAYS),
];
/// Secret files (`*_file` keys): a secret is one line; a larger file is a mistake, or a device.
pub const SECRET_FILE_MAX_BYTES: u64 = 64 * 1024;
/// The config file itself: the largest real one is a few KiB.
pub const CONFIG_FILE_MAX_BYTES: u64 = 1024 * 1024;
/// A schedule must fire within this many years of now (a `0 0 0 30 2 *` never does).
pub const SCHEDULE_HORIZON_YEARS: i32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_includes_both_ends_and_says_what_it_wants() {
        assert!(MAX_CONNECTIONS.contains(1) && MAX_CONNECTIONS.contains(100));
        assert!(!MAX_CONNECTIONS.contains(0) && !MAX_CONNECTIONS.contains(101));
        assert!(!CALLBACK_CLOCK_SKEW_WARN_SECS.contains(-1));
        assert!(!JITTER_MS.contains(i128::from(i64::MAX)));
        assert_eq!(
            REQUEST_TIMEOUT_MS.message(0),
            "must be from 1 to 600000 ms; got 0"
        );
    }
}

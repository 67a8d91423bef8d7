//! What to do after a failed attempt, and the retry loop that does it: re-login on a 401 (again
//! after each new revocation, within a bound), wait out a 429 without using an attempt, back off exponentially with full jitter on
//! transient faults, give up on everything else. Classification itself is
//! [`HaierError::is_retryable`]; this file only acts on it.

use super::error::HaierError;
use super::limiter::Limiter;
use super::stats::{Operation, Stats};
use crate::config::RetryPolicy;
use rand::Rng;
use std::future::Future;
use std::time::Duration;

/// How many 429s one call waits out before it gives up: enough to ride out a busy minute,
/// few enough that nothing loops forever.
pub(super) const MAX_THROTTLE_WAITS: u32 = 50;
/// How many new logins one call makes after 401s: enough to ride out token revocations that come
/// again and again while the call waits for the quota; past it, the login's tokens are not
/// accepted at all and the call fails as unauthorized.
pub(super) const MAX_RELOGINS: u32 = 20;
/// The wait after a 429 that names no `Retry-After`.
pub(super) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The longest `Retry-After` honoured; a larger value is cut to this.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Exponential backoff with full jitter: before retry `n` (1-based), a uniformly random wait in
/// `0..=min(cap, base × 2^(n-1))`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    pub(super) fn new(policy: &RetryPolicy) -> Self {
        Self {
            base: Duration::from_millis(policy.backoff_base_ms),
            cap: Duration::from_millis(policy.backoff_cap_ms),
        }
    }

    /// The longest wait before retry `n`.
    pub(super) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(30);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait before retry `n`.
    pub(super) fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }
}

/// The next step after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Back off this long, then try again (an attempt was used up).
    Backoff(Duration),
    /// The token was refused: the attempt dropped it; log in again and repeat at once (no
    /// attempt used up).
    Reauthenticate,
    /// 429: hold everyone back this long and lower the pace, then repeat (no attempt used up).
    Throttled(Duration),
    /// Give up with the error.
    Fail,
}

/// The attempts left to one call.
#[derive(Debug)]
pub(super) struct Budget {
    max_attempts: u32,
    failed_attempts: u32,
    relogins: u32,
    throttle_waits: u32,
    backoff: Backoff,
}

impl Budget {
    pub(super) fn new(policy: &RetryPolicy) -> Self {
        Self {
            max_attempts: policy.max_attempts.max(1),
            failed_attempts: 0,
            relogins: 0,
            throttle_waits: 0,
            backoff: Backoff::new(policy),
        }
    }

    /// A budget of one attempt (the breaker's probe call).
    pub(super) fn single(mut self) -> Self {
        self.max_attempts = 1;
        self
    }

    /// The step after `error`. Every 401 is a new revocation: the attempt dropped the refused
    /// token, and the cache never hands a refused token out again, so a 401 after the call's
    /// previous one refused a token obtained after it. Each gets a new login, up to
    /// [`MAX_RELOGINS`] per call; a login that is refused outright fails at once
    /// ([`HaierError::AuthRefused`] is final).
    pub(super) fn next(&mut self, error: &HaierError) -> Step {
        match error {
            HaierError::Unauthorized { .. } if self.relogins < MAX_RELOGINS => {
                self.relogins += 1;
                Step::Reauthenticate
            }
            HaierError::RateLimited { retry_after, .. } => {
                self.throttle_waits += 1;
                if self.throttle_waits > MAX_THROTTLE_WAITS {
                    Step::Fail
                } else {
                    Step::Throttled((*retry_after).min(MAX_RETRY_AFTER))
                }
            }
            HaierError::BreakerOpen { .. } => Step::Fail,
            e if e.is_retryable() => {
                self.failed_attempts += 1;
                if self.failed_attempts >= self.max_attempts {
                    Step::Fail
                } else {
                    Step::Backoff(self.backoff.delay(self.failed_attempts))
                }
            }
            _ => Step::Fail,
        }
    }
}

/// What one call's retry loop needs besides the attempt itself.
pub(super) struct RetryContext<'a> {
    pub operation: Operation,
    pub limiter: &'a Limiter,
    pub stats: &'a Stats,
    /// Asked before each backoff retry: `Some` stops the call with that error (the breaker
    /// opened meanwhile).
    pub stop: &'a (dyn Fn() -> Option<HaierError> + Send + Sync),
}

/// Runs `attempt` until it succeeds or `budget` says to give up. Returns the outcome and the
/// number of attempts made (every request counted, 401 and 429 repeats included).
pub(super) async fn run_with_retries<T, F, Fut>(
    ctx: RetryContext<'_>,
    mut budget: Budget,
    mut attempt: F,
) -> (Result<T, HaierError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, HaierError>>,
{
    let mut number = 0;
    loop {
        number += 1;
        let error = match attempt().await {
            Ok(value) => return (Ok(value), number),
            Err(error) => error,
        };
        match budget.next(&error) {
            Step::Fail => return (Err(error), number),
            Step::Reauthenticate => {
                tracing::debug!(operation = %ctx.operation, "token refused; logging in again");
            }
            Step::Throttled(wait) => {
                tracing::debug!(operation = %ctx.operation, wait_ms = wait.as_millis() as u64, "rate limited; holding back every caller and lowering the pace");
                ctx.limiter.throttled(wait);
            }
            Step::Backoff(wait) => {
                ctx.stats.retry(ctx.operation);
                tracing::debug!(operation = %ctx.operation, attempt = number, wait_ms = wait.as_millis() as u64, error = %error, "retrying after backoff");
                tokio::time::sleep(wait).await;
                if let Some(stop) = (ctx.stop)() {
                    return (Err(stop), number);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::System;
    use super::*;

    fn policy(max_attempts: u32, base: u64, cap: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff_base_ms: base,
            backoff_cap_ms: cap,
        }
    }

    fn http(status: u16) -> HaierError {
        HaierError::Http {
            system: System::Openplat,
            operation: "stock",
            status,
            body: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_below_the_ceiling() {
        let b = Backoff::new(&policy(5, 100, 1000));
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_millis(1000));
        assert_eq!(b.ceiling(500), Duration::from_millis(1000));
        let delays: Vec<_> = (0..200).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter spreads over the whole range, not just near the ceiling.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(200)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(200)));
    }

    #[test]
    fn transient_faults_use_up_attempts_then_fail() {
        let mut budget = Budget::new(&policy(3, 10, 100));
        assert!(matches!(budget.next(&http(503)), Step::Backoff(_)));
        let timeout = HaierError::Timeout {
            system: System::Openplat,
            operation: "stock",
            after: Duration::from_secs(1),
        };
        assert!(matches!(budget.next(&timeout), Step::Backoff(_)));
        assert_eq!(budget.next(&http(408)), Step::Fail);
    }

    #[test]
    fn client_errors_and_refusals_are_never_retried() {
        let mut budget = Budget::new(&policy(5, 10, 100));
        assert_eq!(budget.next(&http(400)), Step::Fail);
        let refusal = HaierError::Business {
            system: System::Openplat,
            operation: "stock",
            code: "PASSWORD_ERROR".into(),
            message: "密码错误".into(),
        };
        assert_eq!(budget.next(&refusal), Step::Fail);
        let dup = HaierError::DuplicateSoId { so_id: "1".into() };
        assert_eq!(budget.next(&dup), Step::Fail);
    }

    #[test]
    fn each_401_logs_in_again_up_to_a_bound() {
        let mut budget = Budget::new(&policy(1, 10, 100));
        let unauthorized = HaierError::Unauthorized {
            system: System::Openplat,
            operation: "stock",
        };
        for _ in 0..MAX_RELOGINS {
            assert_eq!(budget.next(&unauthorized), Step::Reauthenticate);
        }
        assert_eq!(budget.next(&unauthorized), Step::Fail);
    }

    #[test]
    fn throttling_uses_no_attempt_but_is_bounded() {
        let mut budget = Budget::new(&policy(1, 10, 100));
        let limited = |secs| HaierError::RateLimited {
            system: System::Openplat,
            operation: "stock",
            retry_after: Duration::from_secs(secs),
        };
        assert_eq!(budget.next(&limited(2)), Step::Throttled(Duration::from_secs(2)));
        assert_eq!(budget.next(&limited(3600)), Step::Throttled(MAX_RETRY_AFTER));
        for _ in 2..MAX_THROTTLE_WAITS {
            assert!(matches!(budget.next(&limited(1)), Step::Throttled(_)));
        }
        assert_eq!(budget.next(&limited(1)), Step::Fail);
    }

    #[test]
    fn a_probe_gets_a_single_attempt() {
        let mut budget = Budget::new(&policy(5, 10, 100)).single();
        assert_eq!(budget.next(&http(500)), Step::Fail);
    }
}

//! The request budget of one Haier system: a governor rate limiter that every request of every
//! caller awaits, plus a shared pause that a 429 sets for everyone. It does not send requests.

use crate::config::RateLimit;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

pub(super) struct Limiter {
    governor: DefaultDirectRateLimiter,
    /// No request leaves before this instant (set by a 429's `Retry-After`).
    pause_until: Mutex<Option<Instant>>,
}

impl Limiter {
    /// `None` when the quota is zero.
    pub(super) fn new(rate: RateLimit) -> Option<Self> {
        let per_second = NonZeroU32::new(rate.per_second)?;
        let burst = NonZeroU32::new(rate.burst)?;
        Some(Self {
            governor: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            pause_until: Mutex::new(None),
        })
    }

    fn paused_until(&self) -> Option<Instant> {
        let guard = self.pause_until.lock().unwrap_or_else(|e| e.into_inner());
        *guard
    }

    /// Waits until one request may go: first out any pause, then for a governor permit.
    /// Callers wait side by side; nothing is held while waiting.
    pub(super) async fn acquire(&self) {
        loop {
            match self.paused_until() {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        self.governor.until_ready().await;
    }

    /// Holds back every caller's requests for `wait` from now (a 429 was answered).
    pub(super) fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut guard = self.pause_until.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none_or(|current| current < until) {
            *guard = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_quota_is_refused() {
        assert!(Limiter::new(RateLimit {
            per_second: 0,
            burst: 1
        })
        .is_none());
        assert!(Limiter::new(RateLimit {
            per_second: 1,
            burst: 0
        })
        .is_none());
    }

    #[tokio::test]
    async fn the_burst_goes_at_once_and_a_pause_holds_everyone() {
        let limiter = Limiter::new(RateLimit {
            per_second: 1000,
            burst: 5,
        })
        .unwrap();
        let start = std::time::Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(500));
        limiter.pause_for(Duration::from_millis(50));
        // A shorter pause never shortens a longer one.
        limiter.pause_for(Duration::from_millis(1));
        let paused = std::time::Instant::now();
        limiter.acquire().await;
        assert!(paused.elapsed() >= Duration::from_millis(45));
    }
}

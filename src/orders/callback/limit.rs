//! The per-address limit on rejected unsigned callbacks: the receiver's port faces the internet,
//! so each source address may have only so many of them stored.

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often (in limiter checks) the limiter forgets addresses whose budget is full again.
const LIMITER_PRUNE_EVERY: u64 = 1_024;

/// Limits how many rejected unsigned callbacks each source address may have stored: a burst,
/// then so many a minute. IPv6 addresses count by their /64 (one host usually holds a whole
/// /64); an unknown address (a router served without connection info) is one shared key.
pub struct RejectLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl RejectLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        // The config refuses 0 for both; 1 is the least that makes sense.
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one from `source`'s budget; when it is spent, how long until there is one again.
    pub fn check(&self, source: Option<IpAddr>) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % LIMITER_PRUNE_EVERY == LIMITER_PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let key = match source {
            None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            },
            Some(v4) => v4,
        };
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// The number of source addresses the limiter remembers.
    pub fn tracked_addresses(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_keeps_a_budget_per_address_and_per_ipv6_64() {
        let limiter = RejectLimiter::new(1, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.check(Some(a)).is_ok());
        assert!(limiter.check(Some(a)).is_ok());
        let wait = limiter.check(Some(a)).unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(limiter.check(Some(b)).is_ok());
        // Two addresses of one IPv6 /64 share a budget; a v4-mapped address is its v4 one.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert!(limiter.check(Some(v6a)).is_ok());
        assert!(limiter.check(Some(v6b)).is_ok());
        assert!(limiter.check(Some(v6a)).is_err());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(limiter.check(Some(mapped)).is_err());
        assert_eq!(limiter.tracked_addresses(), 3);
    }
}

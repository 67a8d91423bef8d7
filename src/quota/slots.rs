//! The slot arithmetic of the shared quota, the same the database statement does: a "theoretical
//! arrival time" (`tat`) per system; leasing `k` permits at `now` gives the slots
//! `first + i × interval` (`i < k`) with `first = max(tat, now − slack)`, and moves `tat` to
//! `first + k × interval`. `slack` is `(burst − 1) × interval`: an idle budget lets `burst`
//! requests go at once, then one per interval. Pure arithmetic on microseconds; no clock.

use crate::config::RateLimit;

/// One system's quota as intervals, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Between two permits: `1 s / per_second`, rounded up so the quota is never exceeded.
    pub interval_us: i64,
    /// How far behind `now` an idle budget's first slot may be: `(burst − 1) × interval`.
    pub slack_us: i64,
    pub burst: u32,
    /// The most slots one lease takes: `burst`, or a tenth of a second of quota when that is
    /// more, so that one process with many calls waiting keeps up even when a lease is slow.
    pub max_lease: u32,
    /// No lease starts further than this ahead of `now`: the slots all processes hold at once
    /// stay within it, so a process that dies wastes at most that much of the quota.
    pub horizon_us: i64,
}

impl Rate {
    /// `None` when the quota is zero.
    pub fn new(rate: RateLimit) -> Option<Rate> {
        if rate.per_second == 0 || rate.burst == 0 {
            return None;
        }
        let interval_us = (1_000_000 + i64::from(rate.per_second) - 1) / i64::from(rate.per_second);
        let max_lease = rate.burst.max(rate.per_second.div_ceil(10));
        Some(Rate {
            interval_us,
            slack_us: i64::from(rate.burst - 1) * interval_us,
            burst: rate.burst,
            max_lease,
            horizon_us: 4 * i64::from(max_lease) * interval_us,
        })
    }
}

/// Permits leased by one statement: `count` slots, `interval_us` apart from `first_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub first_us: i64,
    pub count: u32,
    /// The `tat` after the lease.
    pub tat_us: i64,
}

impl Lease {
    /// The slot of permit `i` (`i < count`), in the clock's microseconds.
    pub fn slot_us(&self, i: u32, rate: Rate) -> i64 {
        self.first_us + i64::from(i) * rate.interval_us
    }

    /// Rebuilds a lease from what the database statement returned: the `tat` after it.
    pub fn from_tat(tat_us: i64, count: u32, rate: Rate) -> Lease {
        Lease {
            first_us: tat_us - i64::from(count) * rate.interval_us,
            count,
            tat_us,
        }
    }
}

/// Leases `count` permits at `now_us` from a budget whose `tat` is `tat_us`; `None` when the
/// first would be further than the horizon ahead.
pub fn lease(tat_us: i64, now_us: i64, count: u32, rate: Rate) -> Option<Lease> {
    let first_us = tat_us.max(now_us - rate.slack_us);
    (first_us <= now_us + rate.horizon_us).then(|| Lease {
        first_us,
        count,
        tat_us: first_us + i64::from(count) * rate.interval_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate::new(RateLimit { per_second, burst }).unwrap()
    }

    #[test]
    fn a_zero_quota_has_no_rate_and_the_interval_rounds_up() {
        assert!(Rate::new(RateLimit {
            per_second: 0,
            burst: 1
        })
        .is_none());
        assert!(Rate::new(RateLimit {
            per_second: 1,
            burst: 0
        })
        .is_none());
        let r = rate(95, 3);
        assert_eq!(r.interval_us, 10_527);
        assert_eq!(r.slack_us, 2 * 10_527);
        assert_eq!(rate(100, 1).slack_us, 0);
    }

    #[test]
    fn an_idle_budget_lets_the_burst_go_at_once_then_one_per_interval() {
        let r = rate(100, 3);
        let now = 1_000_000_000;
        // Long idle: the first slot is `slack` in the past, so three go now.
        let a = lease(0, now, 1, r).unwrap();
        let b = lease(a.tat_us, now, 1, r).unwrap();
        let c = lease(b.tat_us, now, 1, r).unwrap();
        let d = lease(c.tat_us, now, 1, r).unwrap();
        assert!(a.first_us <= now && b.first_us <= now && c.first_us <= now);
        assert_eq!(c.first_us, now);
        assert_eq!(d.first_us, now + 10_000);
    }

    #[test]
    fn k_slots_are_one_interval_apart_and_move_tat_by_k_intervals() {
        let r = rate(50, 3);
        let now = 5_000_000;
        let busy_tat = now + 100_000;
        let l = lease(busy_tat, now, 3, r).unwrap();
        assert_eq!(l.first_us, busy_tat);
        let slots: Vec<i64> = (0..3).map(|i| l.slot_us(i, r)).collect();
        assert_eq!(slots, vec![busy_tat, busy_tat + 20_000, busy_tat + 40_000]);
        assert_eq!(l.tat_us, busy_tat + 60_000);
        assert_eq!(Lease::from_tat(l.tat_us, 3, r), l);
    }

    #[test]
    fn no_lease_starts_beyond_the_horizon() {
        let r = rate(100, 3);
        assert_eq!(r.max_lease, 10);
        assert_eq!(r.horizon_us, 400_000);
        let now = 1_000_000;
        let mut tat = now;
        let mut leases = 0;
        while let Some(l) = lease(tat, now, r.max_lease, r) {
            tat = l.tat_us;
            leases += 1;
        }
        // Slots up to the horizon are handed out, and no more.
        assert_eq!(leases, 5);
        assert!(tat > now + r.horizon_us && tat <= now + r.horizon_us + 100_000);
        // Once time catches up, leases go on.
        assert!(lease(tat, tat - r.horizon_us, 1, r).is_some());
    }

    #[test]
    fn an_idle_gap_resets_the_budget_without_banking_more_than_the_burst() {
        let r = rate(10, 2);
        // Busy until t = 1 s, then ten seconds idle: only `burst` slots are at or before now.
        let tat = 1_000_000;
        let now = 11_000_000;
        let l = lease(tat, now, 5, r).unwrap();
        assert_eq!(l.first_us, now - r.slack_us);
        let due_now = (0..5).filter(|i| l.slot_us(*i, r) <= now).count();
        assert_eq!(due_now, 2);
    }

    /// Participants leasing at random moments, each sending at its slot (or at once when the
    /// slot is already past): no one-second window holds more than `per_second + burst`
    /// requests, whatever the order and sizes of the leases.
    #[test]
    fn leases_never_exceed_the_quota_in_any_one_second_window() {
        use rand::{Rng, SeedableRng};
        for (per_second, burst) in [(95, 3), (10, 1), (100, 10), (7, 2)] {
            let r = rate(per_second, burst);
            let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(per_second * 31 + burst));
            let mut tat = 0;
            let mut now = 1_000_000;
            let mut sent = Vec::new();
            for _ in 0..3000 {
                // Sometimes busy (leases back to back), sometimes idle for a while.
                now += if rng.random_bool(0.9) {
                    rng.random_range(0..r.interval_us)
                } else {
                    rng.random_range(0..2_000_000)
                };
                let k = rng.random_range(1..=burst);
                // Refused beyond the horizon: ask again when it is in reach, as a caller does.
                let l = match lease(tat, now, k, r) {
                    Some(l) => l,
                    None => {
                        now = tat - r.horizon_us;
                        lease(tat, now, k, r).unwrap()
                    }
                };
                tat = l.tat_us;
                sent.extend((0..k).map(|i| l.slot_us(i, r).max(now)));
            }
            sent.sort_unstable();
            let limit = (per_second + burst) as usize;
            let mut from = 0;
            let mut busiest = 0;
            for to in 0..sent.len() {
                while sent[to] - sent[from] >= 1_000_000 {
                    from += 1;
                }
                busiest = busiest.max(to - from + 1);
            }
            assert!(
                busiest <= limit,
                "{busiest} requests within one second at {per_second}/s, burst {burst}"
            );
            // Busy stretches use the whole quota: the bound is reached, not just respected.
            assert!(busiest >= per_second as usize, "at most {busiest} in a second");
        }
    }
}

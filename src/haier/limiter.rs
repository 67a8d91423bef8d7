//! The request budget of one Haier system: a governor rate limiter that every request of every
//! caller awaits, a shared pause that a 429 sets for everyone, and the pace that 429s teach
//! (cut on a 429, climbing back slowly, never above `rate_limit`), then the [`SharedQuota`]
//! with other processes when there is one. It does not send requests.

use super::shared_quota::SharedQuota;
use super::types::System;
use crate::config::RateLimit;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// What a 429 does to the pace: it becomes this share of the rate actually sent (or of the
/// pace, when less was sent). The rate sent when Haier said "too many" is the best estimate of
/// its quota there is, so one cut lands near it, however far above it `rate_limit` is.
const DECREASE_FACTOR: f64 = 0.7;
/// 429s this soon after the pace was lowered answer requests sent before it took effect: they
/// do not lower it again.
const DECREASE_SPACING: Duration = Duration::from_secs(1);
/// The pace never falls below this many requests per second (nor above `rate_limit`).
const FLOOR_PER_SECOND: f64 = 1.0;
/// Each period this long without a 429 raises the pace by one step.
const CLIMB_PERIOD: Duration = Duration::from_secs(2);
/// The climb from the floor to `rate_limit` takes at most this many steps (a step is at least
/// 1/s), so the full rate is back within about 100 s of the last 429.
const CLIMB_STEPS: f64 = 50.0;

/// How a pace changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PaceChange {
    Unchanged,
    /// A 429 lowered it.
    Lowered {
        from: f64,
        to: f64,
    },
    /// A quiet period raised it, still below the ceiling.
    Raised {
        to: f64,
    },
    /// It is back at the ceiling.
    Restored,
}

/// The requests per second one system allows itself: additive increase, multiplicative
/// decrease, between a floor of 1/s and the configured `rate_limit`. Pure arithmetic on the
/// instants and rates it is given; it neither sleeps nor reads a clock.
#[derive(Debug, Clone)]
pub(super) struct Pace {
    ceiling: f64,
    floor: f64,
    step: f64,
    current: f64,
    /// The start of the current climb period: the last 429 or the last step up.
    climb_from: Instant,
    /// When a 429 last lowered the pace.
    lowered_at: Option<Instant>,
}

impl Pace {
    pub(super) fn new(per_second: u32, now: Instant) -> Self {
        let ceiling = f64::from(per_second.max(1));
        Self {
            ceiling,
            floor: FLOOR_PER_SECOND.min(ceiling),
            step: (ceiling / CLIMB_STEPS).max(1.0),
            current: ceiling,
            climb_from: now,
            lowered_at: None,
        }
    }

    /// The pace at `now`, with the climb steps due by then.
    pub(super) fn at(&self, now: Instant) -> f64 {
        self.climbed(now).0
    }

    fn climbed(&self, now: Instant) -> (f64, Instant) {
        if self.current >= self.ceiling {
            return (self.ceiling, self.climb_from);
        }
        let periods = (now.saturating_duration_since(self.climb_from).as_secs_f64()
            / CLIMB_PERIOD.as_secs_f64())
        .floor();
        if periods < 1.0 {
            return (self.current, self.climb_from);
        }
        let pace = self.current + periods * self.step;
        if pace >= self.ceiling {
            (self.ceiling, now)
        } else {
            // Fewer than CLIMB_STEPS periods here: the product stays small.
            (pace, self.climb_from + CLIMB_PERIOD.mul_f64(periods))
        }
    }

    /// Takes the climb steps due by `now`.
    pub(super) fn advance(&mut self, now: Instant) -> PaceChange {
        let before = self.current;
        (self.current, self.climb_from) = self.climbed(now);
        if self.current == before {
            PaceChange::Unchanged
        } else if self.current >= self.ceiling {
            PaceChange::Restored
        } else {
            PaceChange::Raised { to: self.current }
        }
    }

    /// A request was answered 429 at `now`, after `sent_per_second` requests per second went out
    /// lately: the climb starts over, and the pace is cut to [`DECREASE_FACTOR`] of the lesser
    /// of the pace and the rate sent, unless it was cut less than [`DECREASE_SPACING`] ago.
    pub(super) fn throttled(&mut self, now: Instant, sent_per_second: f64) -> PaceChange {
        self.advance(now);
        self.climb_from = now;
        if self
            .lowered_at
            .is_some_and(|at| now.saturating_duration_since(at) < DECREASE_SPACING)
        {
            return PaceChange::Unchanged;
        }
        let from = self.current;
        let to = (from.min(sent_per_second) * DECREASE_FACTOR).max(self.floor);
        if to >= from {
            return PaceChange::Unchanged;
        }
        self.current = to;
        self.lowered_at = Some(now);
        PaceChange::Lowered { from, to }
    }
}

/// Requests let through per second over the last second, from two one-second buckets (the
/// previous bucket weighted by how much of it the last second still covers).
#[derive(Debug, Clone)]
struct SentRate {
    bucket_from: Instant,
    current: u32,
    previous: u32,
}

impl SentRate {
    const BUCKET: Duration = Duration::from_secs(1);

    fn new(now: Instant) -> Self {
        Self {
            bucket_from: now,
            current: 0,
            previous: 0,
        }
    }

    fn rolled(&self, now: Instant) -> Self {
        let elapsed = now.saturating_duration_since(self.bucket_from);
        if elapsed >= 2 * Self::BUCKET {
            Self::new(now)
        } else if elapsed >= Self::BUCKET {
            Self {
                bucket_from: self.bucket_from + Self::BUCKET,
                current: 0,
                previous: self.current,
            }
        } else {
            self.clone()
        }
    }

    fn record(&mut self, now: Instant) {
        *self = self.rolled(now);
        self.current = self.current.saturating_add(1);
    }

    fn per_second(&self, now: Instant) -> f64 {
        let rolled = self.rolled(now);
        let into =
            now.saturating_duration_since(rolled.bucket_from).as_secs_f64() / Self::BUCKET.as_secs_f64();
        f64::from(rolled.previous) * (1.0 - into).max(0.0) + f64::from(rolled.current)
    }
}

/// One governor limiter at one pace. A changed pace gets a new gate; callers waiting at the old
/// one go to the new one.
struct Gate {
    governor: DefaultDirectRateLimiter,
}

impl Gate {
    /// The configured quota, exactly.
    fn full(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            governor: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
        }
    }

    /// A lowered pace, one request at a time (no burst while Haier is throttling).
    fn lowered(per_second: f64) -> Option<Self> {
        let quota = Quota::with_period(Duration::from_secs_f64(1.0 / per_second))?;
        Some(Self {
            governor: RateLimiter::direct(quota),
        })
    }

    /// The gate with no permit stored up: the first request after a change waits its turn.
    fn drained(self, burst: NonZeroU32) -> Self {
        let _ = self.governor.check_n(burst);
        self
    }
}

struct State {
    pace: Pace,
    gate: Arc<Gate>,
    sent: SentRate,
}

pub(super) struct Limiter {
    system: System,
    per_second: NonZeroU32,
    burst: NonZeroU32,
    state: Mutex<State>,
    /// No request leaves before this instant (set by a 429's `Retry-After`).
    pause_until: Mutex<Option<Instant>>,
    /// The budget shared with other processes, awaited after this process's own gate.
    shared: Option<Arc<dyn SharedQuota>>,
}

impl Limiter {
    /// `None` when the quota is zero.
    pub(super) fn new(system: System, rate: RateLimit) -> Option<Self> {
        let per_second = NonZeroU32::new(rate.per_second)?;
        let burst = NonZeroU32::new(rate.burst)?;
        Some(Self {
            system,
            per_second,
            burst,
            state: Mutex::new(State {
                pace: Pace::new(rate.per_second, Instant::now()),
                gate: Arc::new(Gate::full(per_second, burst)),
                sent: SentRate::new(Instant::now()),
            }),
            pause_until: Mutex::new(None),
            shared: None,
        })
    }

    /// Also waits for `shared` before each request, and tells it about every 429.
    pub(super) fn with_shared(mut self, shared: Option<Arc<dyn SharedQuota>>) -> Self {
        self.shared = shared;
        self
    }

    fn paused_until(&self) -> Option<Instant> {
        let guard = self.pause_until.lock().unwrap_or_else(|e| e.into_inner());
        *guard
    }

    fn is_paused(&self) -> bool {
        self.paused_until().is_some_and(|until| until > Instant::now())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gate in force at `now`, rebuilt first when the pace has climbed.
    fn gate(&self, now: Instant) -> Arc<Gate> {
        let mut state = self.state();
        let change = state.pace.advance(now);
        self.apply(&mut state, change);
        Arc::clone(&state.gate)
    }

    /// Puts a changed pace in force (a new gate) and says so: at info when the pace leaves the
    /// full rate or comes back to it, at debug for the steps between.
    fn apply(&self, state: &mut State, change: PaceChange) {
        let rate_limit = self.per_second.get();
        let to = match change {
            PaceChange::Unchanged => return,
            PaceChange::Lowered { from, to } if from >= f64::from(rate_limit) => {
                tracing::info!(system = %self.system, pace_per_second = to, rate_limit, "Haier answered 429; pace lowered below rate_limit");
                to
            }
            PaceChange::Lowered { to, .. } => {
                tracing::debug!(system = %self.system, pace_per_second = to, rate_limit, "Haier answered 429 again; pace lowered further");
                to
            }
            PaceChange::Raised { to } => {
                tracing::debug!(system = %self.system, pace_per_second = to, rate_limit, "no 429 for a while; pace raised");
                to
            }
            PaceChange::Restored => {
                tracing::info!(system = %self.system, rate_limit, "no 429 for a while; pace back at rate_limit");
                f64::from(rate_limit)
            }
        };
        self.swap_gate(state, to);
    }

    fn swap_gate(&self, state: &mut State, per_second: f64) {
        let gate = if per_second >= f64::from(self.per_second.get()) {
            Some(Gate::full(self.per_second, self.burst).drained(self.burst))
        } else {
            Gate::lowered(per_second).map(|g| g.drained(NonZeroU32::MIN))
        };
        if let Some(gate) = gate {
            state.gate = Arc::new(gate);
        }
    }

    /// Waits until one request may go: first out any pause, then for a permit at the pace in
    /// force, then for a slot of the shared quota (when there is one). A permit that went stale while the caller waited (a 429 paused everyone, or the
    /// pace changed and a new gate took over) is not used: the caller waits again, so only one
    /// gate ever sets the pace. Callers wait side by side; nothing is held while waiting.
    pub(super) async fn acquire(&self) {
        loop {
            while let Some(until) = self.paused_until().filter(|until| *until > Instant::now()) {
                tokio::time::sleep_until(until).await;
            }
            let gate = self.gate(Instant::now());
            gate.governor.until_ready().await;
            if let Some(shared) = &self.shared {
                shared.take(self.system).await;
            }
            if self.is_paused() {
                continue;
            }
            let mut state = self.state();
            if Arc::ptr_eq(&state.gate, &gate) {
                state.sent.record(Instant::now());
                return;
            }
        }
    }

    /// Holds back every caller's requests for `wait` from now (a 429 was answered).
    pub(super) fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut guard = self.pause_until.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none_or(|current| current < until) {
            *guard = Some(until);
        }
    }

    /// A request was answered 429 with `wait` as its `Retry-After`: every caller pauses for it,
    /// and the pace is lowered.
    pub(super) fn throttled(&self, wait: Duration) {
        self.pause_for(wait);
        if let Some(shared) = &self.shared {
            shared.throttled(self.system, wait);
        }
        let mut state = self.state();
        let now = Instant::now();
        let climbed = state.pace.advance(now);
        self.apply(&mut state, climbed);
        let sent = state.sent.per_second(now);
        let lowered = state.pace.throttled(now, sent);
        self.apply(&mut state, lowered);
    }

    /// The requests per second in force now.
    pub(super) fn pace_per_second(&self) -> f64 {
        self.state().pace.at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32) -> Option<Limiter> {
        Limiter::new(System::Openplat, RateLimit { per_second, burst })
    }

    #[test]
    fn a_zero_quota_is_refused() {
        assert!(limiter(0, 1).is_none());
        assert!(limiter(1, 0).is_none());
    }

    #[tokio::test]
    async fn the_burst_goes_at_once_and_a_pause_holds_everyone() {
        let limiter = limiter(1000, 5).unwrap();
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

    fn assert_near(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} is not {expected}");
    }

    fn lowered_to(change: PaceChange) -> f64 {
        match change {
            PaceChange::Lowered { to, .. } => to,
            other => panic!("expected the pace lowered, got {other:?}"),
        }
    }

    /// More than the pace was sent (the burst on top of it): the pace is what is cut.
    const PLENTY: f64 = 1e6;

    #[test]
    fn a_429_cuts_the_pace_once_per_second_down_to_the_floor() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut pace = Pace::new(50, t0);
        assert_eq!(pace.at(t0), 50.0);
        assert_near(lowered_to(pace.throttled(at(10), PLENTY)), 35.0);
        // The echoes of the same burst do not lower it again.
        assert_eq!(pace.throttled(at(20), PLENTY), PaceChange::Unchanged);
        assert_eq!(pace.throttled(at(1009), PLENTY), PaceChange::Unchanged);
        assert_near(pace.at(at(1009)), 35.0);
        assert_near(lowered_to(pace.throttled(at(1010), PLENTY)), 24.5);
        let mut ms = 1010;
        while pace.at(at(ms)) > 1.0 {
            ms += 1000;
            let before = pace.at(at(ms));
            let to = lowered_to(pace.throttled(at(ms), PLENTY));
            assert_near(to, (before * DECREASE_FACTOR).max(1.0));
        }
        // At the floor a 429 changes nothing.
        assert_eq!(pace.throttled(at(ms + 1000), PLENTY), PaceChange::Unchanged);
        assert_eq!(pace.at(at(ms + 1000)), FLOOR_PER_SECOND);
    }

    #[test]
    fn a_429_cuts_to_a_share_of_the_rate_actually_sent_when_that_is_lower() {
        let t0 = Instant::now();
        let mut pace = Pace::new(50, t0);
        // Six requests went out in the last second and the sixth was refused: the quota is
        // about five, whatever rate_limit says.
        assert_eq!(
            pace.throttled(t0, 6.0),
            PaceChange::Lowered {
                from: 50.0,
                to: 6.0 * DECREASE_FACTOR
            }
        );
        // Never below the floor, however little was sent.
        let mut idle = Pace::new(50, t0);
        assert_near(lowered_to(idle.throttled(t0, 0.0)), FLOOR_PER_SECOND);
    }

    #[test]
    fn the_pace_climbs_one_step_per_quiet_period_up_to_the_ceiling() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut pace = Pace::new(50, t0);
        pace.throttled(t0, 25.0 / DECREASE_FACTOR);
        assert_near(pace.at(t0), 25.0);
        // Nothing before a whole quiet period, then one step (1/s for a ceiling of 50) per period.
        assert_near(pace.at(at(1999)), 25.0);
        assert_near(pace.at(at(2000)), 26.0);
        assert_near(pace.at(at(7999)), 28.0);
        // Reading does not change it; advancing does, and keeps the partial period.
        assert!(matches!(pace.advance(at(3000)), PaceChange::Raised { to } if (to - 26.0).abs() < 1e-9));
        assert_eq!(pace.advance(at(3999)), PaceChange::Unchanged);
        assert!(matches!(pace.advance(at(4000)), PaceChange::Raised { to } if (to - 27.0).abs() < 1e-9));
        assert_eq!(pace.advance(at(5999)), PaceChange::Unchanged);
        // A 429 that does not lower the pace (too soon after the last cut) still starts the
        // quiet period over.
        let mut echo = Pace::new(50, t0);
        echo.throttled(t0, PLENTY);
        assert_eq!(echo.throttled(at(900), PLENTY), PaceChange::Unchanged);
        assert_near(echo.at(at(2000)), 35.0);
        assert_near(echo.at(at(2900)), 36.0);
        // Never above the ceiling, however long the quiet.
        assert_eq!(pace.at(at(3_600_000)), 50.0);
        assert_eq!(pace.advance(at(3_600_000)), PaceChange::Restored);
        assert_eq!(pace.advance(at(7_200_000)), PaceChange::Unchanged);
        assert_eq!(pace.at(at(7_200_000)), 50.0);
        // From the floor the full rate is back within CLIMB_STEPS periods.
        let mut low = Pace::new(95, t0);
        low.throttled(t0, 0.0);
        assert_eq!(low.at(t0), 1.0);
        let back = CLIMB_PERIOD.as_millis() as u64 * CLIMB_STEPS as u64;
        assert!(low.at(at(back - 2000)) < 95.0);
        assert_eq!(low.at(at(back)), 95.0);
        // A step is a fiftieth of a large ceiling.
        let mut big = Pace::new(1000, t0);
        big.throttled(t0, 500.0 / DECREASE_FACTOR);
        assert_near(big.at(at(2000)), 520.0);
    }

    #[test]
    fn a_ceiling_of_one_is_also_the_floor() {
        let t0 = Instant::now();
        let mut pace = Pace::new(1, t0);
        assert_eq!(pace.throttled(t0, PLENTY), PaceChange::Unchanged);
        assert_eq!(pace.at(t0), 1.0);
    }

    #[test]
    fn the_rate_sent_counts_the_last_second() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut sent = SentRate::new(t0);
        assert_eq!(sent.per_second(t0), 0.0);
        for ms in (0..1000).step_by(100) {
            sent.record(at(ms));
        }
        assert_near(sent.per_second(at(999)), 10.0);
        // Half into the next second, half of the previous one still counts.
        assert_near(sent.per_second(at(1500)), 5.0);
        sent.record(at(1500));
        assert_near(sent.per_second(at(1500)), 6.0);
        // Two quiet seconds forget everything.
        assert_eq!(sent.per_second(at(3100)), 0.0);
    }

    #[tokio::test]
    async fn a_429_lowers_the_limiter_and_a_waiting_caller_waits_out_the_pause() {
        let limiter = Arc::new(limiter(20, 1).unwrap());
        limiter.acquire().await;
        // The next permit is 50 ms away; the caller starts waiting for it.
        let waiting = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                limiter.acquire().await;
                std::time::Instant::now()
            })
        };
        // On this single-threaded runtime the caller runs up to its wait before this goes on.
        tokio::task::yield_now().await;
        let throttled = std::time::Instant::now();
        limiter.throttled(Duration::from_millis(300));
        assert!(limiter.pace_per_second() < 20.0);
        let went = waiting.await.unwrap();
        assert!(
            went.duration_since(throttled) >= Duration::from_millis(290),
            "a permit from before the 429 was used during the pause"
        );
    }
}

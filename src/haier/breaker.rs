//! The circuit breaker of one Haier system. It decides which calls may be sent; it does not
//! send, retry or classify errors.
//!
//! The contract:
//! - **Closed**: every call is sent. `failure_threshold` calls in a row that fail in the end
//!   (timeout, connection error, 408/5xx) open the breaker; any answer from Haier (a refusal or
//!   a 4xx included) resets the run.
//! - **Open**: calls fail at once with [`HaierError::BreakerOpen`](super::HaierError) saying
//!   how long until the next probe; nothing is sent for `cool_down_ms`.
//! - **Half-open**: the first call after the cool-down is the **probe**. The client sends it in
//!   a task of its own with a single attempt, so it goes out and its outcome is recorded even
//!   when the caller that started it is dropped (its job aborted or was cancelled). Calls that
//!   arrive while the probe is in flight do not fail: they wait for its outcome (the probe is
//!   bounded by the client's timeouts) and then go on as if they had arrived after it — sent
//!   when it succeeded, failing fast when it failed.
//! - The probe's outcome decides: an answer closes the breaker; a failure, or no answer within
//!   the probe's bound (the call timeout plus a login), opens it for another cool-down; a probe
//!   that taught nothing (it ended rate limited, or its task was stopped by the runtime shutting
//!   down) frees the slot for the next call to probe.
//! - Outcomes of calls admitted before the breaker changed state are stale and change nothing.

use super::types::System;
use crate::config::BreakerPolicy;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What the breaker lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One probe call is (or may be) under way; its outcome closes or re-opens the breaker.
    /// Other calls wait for it.
    HalfOpen,
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// How a call that the breaker admitted ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The system answered (a business refusal or a 4xx counts: the system is up).
    Healthy,
    /// The call failed in the end with a timeout, connection error or 5xx.
    Failed,
    /// Nothing to learn (cancelled, rate limited, or cut short by the breaker itself).
    Neutral,
}

/// How a call was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    Normal,
    /// The one call let through after the cool-down; it gets a single attempt, in a task of
    /// its own.
    Probe,
}

/// Why a call may not go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Open: the next probe may go in this long.
    Open(Duration),
    /// Half-open with the probe in flight: wait for its outcome.
    Probing,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

pub(super) struct Breaker {
    system: System,
    policy: BreakerPolicy,
    state: Mutex<State>,
    /// Woken when a probe's outcome is recorded.
    probe_ended: Notify,
}

impl Breaker {
    pub(super) fn new(system: System, policy: BreakerPolicy) -> Self {
        Self {
            system,
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
            probe_ended: Notify::new(),
        }
    }

    fn cool_down(&self) -> Duration {
        Duration::from_millis(self.policy.cool_down_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets a call through, or says why not: open (with the time until the next probe), or a
    /// probe in flight.
    #[cfg(test)]
    pub(super) fn admit(&self, now: Instant) -> Result<Admission, Refusal> {
        let mut state = self.lock();
        Self::admit_locked(&mut state, self.system, now)
    }

    fn admit_locked(state: &mut State, system: System, now: Instant) -> Result<Admission, Refusal> {
        match *state {
            State::Closed { .. } => Ok(Admission::Normal),
            State::Open { until } if now < until => Err(Refusal::Open(until - now)),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                tracing::info!(%system, "circuit breaker half-open: sending one probe call");
                Ok(Admission::Probe)
            }
            State::HalfOpen { probing: true } => Err(Refusal::Probing),
        }
    }

    /// Lets a call through, waiting out any probe in flight; `Err` while the breaker is open,
    /// with the time until the next probe. Each probe is bounded by the client's timeouts, so
    /// the wait is too.
    pub(super) async fn enter(&self) -> Result<Admission, Duration> {
        loop {
            let ended = self.probe_ended.notified();
            let mut ended = std::pin::pin!(ended);
            {
                let mut state = self.lock();
                match Self::admit_locked(&mut state, self.system, Instant::now()) {
                    Ok(admission) => return Ok(admission),
                    Err(Refusal::Open(retry_in)) => return Err(retry_in),
                    // Registered while the state is locked, so the probe's end cannot slip by.
                    Err(Refusal::Probing) => ended.as_mut().enable(),
                };
            }
            ended.await;
        }
    }

    /// While calls fail fast (open and cooling down): how long until the next probe.
    pub(super) fn open_for(&self, now: Instant) -> Option<Duration> {
        match *self.lock() {
            State::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }

    /// Records how an admitted call ended.
    pub(super) fn record(&self, admission: Admission, outcome: Outcome, now: Instant) {
        let mut state = self.lock();
        if admission == Admission::Probe && matches!(*state, State::HalfOpen { probing: true }) {
            self.probe_ended.notify_waiters();
        }
        match (admission, *state, outcome) {
            // A probe that taught nothing frees the slot for the next call.
            (Admission::Probe, State::HalfOpen { .. }, Outcome::Neutral) => {
                *state = State::HalfOpen { probing: false };
            }
            (_, _, Outcome::Neutral) => {}
            (Admission::Probe, State::HalfOpen { .. }, Outcome::Healthy) => {
                *state = State::Closed { failures: 0 };
                tracing::info!(system = %self.system, "circuit breaker closed: the probe call succeeded");
            }
            (Admission::Probe, State::HalfOpen { .. }, Outcome::Failed) => {
                *state = State::Open {
                    until: now + self.cool_down(),
                };
                tracing::warn!(
                    system = %self.system,
                    cool_down_ms = self.policy.cool_down_ms,
                    "circuit breaker re-opened: the probe call failed"
                );
            }
            (Admission::Normal, State::Closed { .. }, Outcome::Healthy) => {
                *state = State::Closed { failures: 0 };
            }
            (Admission::Normal, State::Closed { failures }, Outcome::Failed) => {
                let failures = failures + 1;
                if failures >= self.policy.failure_threshold {
                    *state = State::Open {
                        until: now + self.cool_down(),
                    };
                    tracing::warn!(
                        system = %self.system,
                        failures,
                        cool_down_ms = self.policy.cool_down_ms,
                        "circuit breaker opened after consecutive failed calls"
                    );
                } else {
                    *state = State::Closed { failures };
                }
            }
            // A call admitted before the breaker changed state: its outcome is stale.
            _ => {}
        }
    }

    pub(super) fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// An admitted call; dropping it unfinished (a cancelled call) records nothing learned, which
/// frees the probe slot.
pub(super) struct Permit<'a> {
    breaker: &'a Breaker,
    pub(super) admission: Admission,
    done: bool,
}

impl<'a> Permit<'a> {
    /// Wraps a call that [`Breaker::enter`] or [`Breaker::admit`] let through.
    pub(super) fn new(breaker: &'a Breaker, admission: Admission) -> Self {
        Permit {
            breaker,
            admission,
            done: false,
        }
    }

    #[cfg(test)]
    fn acquire(breaker: &'a Breaker, now: Instant) -> Result<Self, Refusal> {
        breaker
            .admit(now)
            .map(|admission| Permit::new(breaker, admission))
    }

    pub(super) fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.breaker.record(self.admission, outcome, Instant::now());
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker
                .record(self.admission, Outcome::Neutral, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cool_down_ms: u64) -> Breaker {
        Breaker::new(
            System::Openplat,
            BreakerPolicy {
                failure_threshold: threshold,
                cool_down_ms,
            },
        )
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let b = breaker(3, 1000);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(b.admit(t0), Ok(Admission::Normal));
            b.record(Admission::Normal, Outcome::Failed, t0);
        }
        // A healthy answer resets the run.
        b.record(Admission::Normal, Outcome::Healthy, t0);
        for _ in 0..2 {
            b.record(Admission::Normal, Outcome::Failed, t0);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(Admission::Normal, Outcome::Failed, t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.open_for(t0), Some(Duration::from_millis(1000)));
        let wait = b.admit(t0 + Duration::from_millis(400)).unwrap_err();
        assert_eq!(wait, Refusal::Open(Duration::from_millis(600)));
    }

    #[test]
    fn lets_exactly_one_probe_through_after_the_cool_down() {
        let b = breaker(1, 1000);
        let t0 = Instant::now();
        b.record(Admission::Normal, Outcome::Failed, t0);
        let later = t0 + Duration::from_millis(1000);
        assert_eq!(b.open_for(later), None);
        assert_eq!(b.admit(later), Ok(Admission::Probe));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(
            b.admit(later),
            Err(Refusal::Probing),
            "a second call must not probe too"
        );
        b.record(Admission::Probe, Outcome::Healthy, later);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(later), Ok(Admission::Normal));
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cool_down() {
        let b = breaker(1, 1000);
        let t0 = Instant::now();
        b.record(Admission::Normal, Outcome::Failed, t0);
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(b.admit(t1), Ok(Admission::Probe));
        b.record(Admission::Probe, Outcome::Failed, t1);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit(t1 + Duration::from_millis(999)).is_err());
        assert_eq!(b.admit(t1 + Duration::from_millis(1000)), Ok(Admission::Probe));
    }

    #[test]
    fn a_cancelled_probe_frees_the_slot_for_the_next_call() {
        let b = breaker(1, 0);
        let t0 = Instant::now();
        b.record(Admission::Normal, Outcome::Failed, t0);
        let permit = Permit::acquire(&b, Instant::now()).unwrap();
        assert_eq!(permit.admission, Admission::Probe);
        drop(permit);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let permit = Permit::acquire(&b, Instant::now()).unwrap();
        assert_eq!(permit.admission, Admission::Probe);
        permit.finish(Outcome::Healthy);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn stale_outcomes_of_calls_admitted_before_opening_change_nothing() {
        let b = breaker(1, 1000);
        let t0 = Instant::now();
        b.record(Admission::Normal, Outcome::Failed, t0);
        b.record(Admission::Normal, Outcome::Healthy, t0);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test]
    async fn calls_that_meet_a_probe_in_flight_wait_for_its_outcome() {
        let b = std::sync::Arc::new(breaker(1, 0));
        b.record(Admission::Normal, Outcome::Failed, Instant::now());
        assert_eq!(b.enter().await, Ok(Admission::Probe));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let b = std::sync::Arc::clone(&b);
                tokio::spawn(async move { b.enter().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(
            waiters.iter().all(|w| !w.is_finished()),
            "they wait for the probe"
        );
        b.record(Admission::Probe, Outcome::Healthy, Instant::now());
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Ok(Admission::Normal));
        }
    }

    #[tokio::test]
    async fn calls_that_waited_for_a_failed_probe_fail_fast_with_the_new_cool_down() {
        let b = std::sync::Arc::new(breaker(1, 1000));
        let t0 = Instant::now() - Duration::from_millis(1000);
        b.record(Admission::Normal, Outcome::Failed, t0);
        assert_eq!(b.enter().await, Ok(Admission::Probe));
        let waiter = {
            let b = std::sync::Arc::clone(&b);
            tokio::spawn(async move { b.enter().await })
        };
        tokio::task::yield_now().await;
        b.record(Admission::Probe, Outcome::Failed, Instant::now());
        let retry_in = waiter.await.unwrap().unwrap_err();
        assert!(retry_in > Duration::from_millis(900), "{retry_in:?}");
    }

    #[tokio::test]
    async fn a_probe_that_taught_nothing_hands_the_probe_to_a_waiting_call() {
        let b = std::sync::Arc::new(breaker(1, 0));
        b.record(Admission::Normal, Outcome::Failed, Instant::now());
        let probe = Permit::new(&b, b.enter().await.unwrap());
        assert_eq!(probe.admission, Admission::Probe);
        let waiter = {
            let b = std::sync::Arc::clone(&b);
            tokio::spawn(async move { b.enter().await })
        };
        tokio::task::yield_now().await;
        drop(probe);
        assert_eq!(waiter.await.unwrap(), Ok(Admission::Probe));
    }
}

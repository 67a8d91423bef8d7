//! Faults on demand: the per-system quota (429), added latency, injected 5xx replies and hung
//! calls, pushes that take effect but whose reply is lost (hung or 504), repeats refused by
//! message only, how callbacks name the order and stamp their time, and the knobs that
//! `POST /_sim/faults` changes at run time. Token revocation is only a
//! knob here; `auth.rs` applies it. The order knobs (refusals at the door, out-of-stock notices,
//! a forced cancel outcome) are knobs here too; `ylh.rs` and `units.rs` apply them.
//!
//! The quota is a sliding-window log: a system admits at most `qps` requests in any one-second
//! window (for a fractional `qps`, `floor(qps)` requests, at least 1, per `floor(qps)/qps`
//! seconds). A burst of 300 requests inside one second with `qps` 100 thus gets exactly 200
//! answered 429, wherever the burst falls. Token calls count toward their system's quota, as
//! they do on a real gateway. A throttled request is not admitted, so it does not use quota.

use super::units::CancelOutcome;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The fault knobs. Every field defaults to "no fault".
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Requests per second admitted per system (openplat and YLH each); past it, 429.
    pub qps: Option<f64>,
    /// Added to every reply (token calls and 429s included).
    pub latency_ms: u64,
    /// Share (0..=1) of business calls answered 500, 502 or 503, some with a non-JSON body.
    pub fail_rate: f64,
    /// Share (0..=1) of business calls that never answer (until the simulator shuts down).
    pub hang_rate: f64,
    /// Every this many ms, every token issued so far goes bad.
    pub revoke_tokens_every_ms: Option<u64>,
    /// A repeated `soId` is refused as real Haier may: `errCode: null` and only a Chinese
    /// message (子订单号已存在 / 重复推送), instead of `DUPLICATE_SOID`.
    pub duplicate_message_only: bool,
    /// Share (0..=1) of new orders that are stored but whose reply never comes (it hangs past
    /// any client timeout, until the simulator shuts down).
    pub lost_reply_hang_rate: f64,
    /// Share (0..=1) of new orders that are stored but answered HTTP 504 (a gateway that gave
    /// up waiting).
    pub lost_reply_504_rate: f64,
    /// Callbacks name the pushed `onlineNo` in `PlatformOrderNo` instead of the `soId` (the
    /// contract does not say which of the two Haier sends).
    pub callback_names_online_no: bool,
    /// Retries of an unacknowledged callback keep the `TimeStamp` (and so the sign) of its
    /// first try, as Haier may.
    pub callback_keep_first_timestamp: bool,
    /// Seconds added to the `TimeStamp` a callback is written with: Haier's clock running ahead
    /// (positive) or behind (negative).
    pub callback_clock_offset_secs: i64,
    /// Logistics replies give their `stateTime`s in all three of Haier's shapes, by node:
    /// `yyyy-MM-dd HH:mm:ss`, `yyyy-MM-dd`, epoch ms as a number, epoch ms as a string.
    pub logistics_time_shapes: bool,
    /// Share (0..=1) of taken orders whose customer refuses some or all units at the door: a
    /// cancel callback (State 2, or 1 when every unit is refused) when the order is delivered.
    pub door_refusal_rate: f64,
    /// Share (0..=1) of taken orders that get an out-of-stock notice before their confirm.
    pub out_of_stock_rate: f64,
    /// Answer every cancel or return request with this outcome, whatever the order's stage.
    pub cancel_outcome: Option<CancelOutcome>,
}

/// How the reply of a push that took effect is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LostReply {
    Hang,
    GatewayTimeout,
}

/// The largest callback clock offset either way: a year.
const MAX_CLOCK_OFFSET_SECS: i64 = 366 * 24 * 3_600;

impl Faults {
    /// Checks ranges: `qps` > 0, rates within 0..=1, a revocation period > 0.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(qps) = self.qps {
            if !(qps.is_finite() && qps > 0.0) {
                return Err(format!("qps must be a number above 0, not {qps}"));
            }
        }
        for (name, rate) in [
            ("fail_rate", self.fail_rate),
            ("hang_rate", self.hang_rate),
            ("lost_reply_hang_rate", self.lost_reply_hang_rate),
            ("lost_reply_504_rate", self.lost_reply_504_rate),
            ("door_refusal_rate", self.door_refusal_rate),
            ("out_of_stock_rate", self.out_of_stock_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within 0 and 1, not {rate}"));
            }
        }
        if self.fail_rate + self.hang_rate > 1.0 {
            return Err("fail_rate + hang_rate must not exceed 1".into());
        }
        if self.lost_reply_hang_rate + self.lost_reply_504_rate > 1.0 {
            return Err("lost_reply_hang_rate + lost_reply_504_rate must not exceed 1".into());
        }
        if self.revoke_tokens_every_ms == Some(0) {
            return Err("revoke_tokens_every_ms must be above 0 (null turns it off)".into());
        }
        if self.callback_clock_offset_secs.abs() > MAX_CLOCK_OFFSET_SECS {
            return Err(format!(
                "callback_clock_offset_secs must be within ±{MAX_CLOCK_OFFSET_SECS}, not {}",
                self.callback_clock_offset_secs
            ));
        }
        Ok(())
    }

    /// Applies a partial update as `POST /_sim/faults` takes it: only the keys present change,
    /// and `null` turns `qps`, `revoke_tokens_every_ms` or `cancel_outcome` off. Nothing changes
    /// on an error.
    pub fn apply_update(&mut self, update: &Map<String, Value>) -> Result<(), String> {
        let mut next = *self;
        for (key, value) in update {
            let bad = || format!("`{key}` has a value of the wrong type: {value}");
            match key.as_str() {
                "qps" => {
                    next.qps = if value.is_null() {
                        None
                    } else {
                        Some(value.as_f64().ok_or_else(bad)?)
                    }
                }
                "latency_ms" => next.latency_ms = value.as_u64().ok_or_else(bad)?,
                "fail_rate" => next.fail_rate = value.as_f64().ok_or_else(bad)?,
                "hang_rate" => next.hang_rate = value.as_f64().ok_or_else(bad)?,
                "revoke_tokens_every_ms" => {
                    next.revoke_tokens_every_ms = if value.is_null() {
                        None
                    } else {
                        Some(value.as_u64().ok_or_else(bad)?)
                    }
                }
                "door_refusal_rate" => next.door_refusal_rate = value.as_f64().ok_or_else(bad)?,
                "out_of_stock_rate" => next.out_of_stock_rate = value.as_f64().ok_or_else(bad)?,
                "cancel_outcome" => {
                    next.cancel_outcome = if value.is_null() {
                        None
                    } else {
                        Some(serde_json::from_value(value.clone()).map_err(|_| {
                            format!(
                                "`cancel_outcome` must be null or one of: {}; not {value}",
                                CancelOutcome::NAMES
                            )
                        })?)
                    }
                }
                "duplicate_message_only" => next.duplicate_message_only = value.as_bool().ok_or_else(bad)?,
                "lost_reply_hang_rate" => next.lost_reply_hang_rate = value.as_f64().ok_or_else(bad)?,
                "lost_reply_504_rate" => next.lost_reply_504_rate = value.as_f64().ok_or_else(bad)?,
                "callback_names_online_no" => next.callback_names_online_no = value.as_bool().ok_or_else(bad)?,
                "callback_keep_first_timestamp" => {
                    next.callback_keep_first_timestamp = value.as_bool().ok_or_else(bad)?
                }
                "callback_clock_offset_secs" => next.callback_clock_offset_secs = value.as_i64().ok_or_else(bad)?,
                "logistics_time_shapes" => next.logistics_time_shapes = value.as_bool().ok_or_else(bad)?,
                other => {
                    return Err(format!(
                        "unknown fault `{other}`; known: qps, latency_ms, fail_rate, hang_rate, revoke_tokens_every_ms, \
                         duplicate_message_only, lost_reply_hang_rate, lost_reply_504_rate, callback_names_online_no, \
                         callback_keep_first_timestamp, callback_clock_offset_secs, logistics_time_shapes, \
                         door_refusal_rate, out_of_stock_rate, cancel_outcome"
                    ))
                }
            }
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Draws whether an event of probability `rate` happens (the order knobs).
    pub(crate) fn happens(rate: f64) -> bool {
        rate > 0.0 && rand::rng().random::<f64>() < rate
    }

    /// Draws whether this business call fails or hangs.
    pub(crate) fn roll(&self) -> Option<InjectedFault> {
        if self.fail_rate <= 0.0 && self.hang_rate <= 0.0 {
            return None;
        }
        let mut rng = rand::rng();
        let x: f64 = rng.random();
        if x < self.fail_rate {
            let kind = match rng.random_range(0..4) {
                0 => FailKind::JsonServerError,
                1 => FailKind::HtmlBadGateway,
                2 => FailKind::HtmlServiceUnavailable,
                _ => FailKind::TextServiceUnavailable,
            };
            Some(InjectedFault::Fail(kind))
        } else if x < self.fail_rate + self.hang_rate {
            Some(InjectedFault::Hang)
        } else {
            None
        }
    }
}

impl Faults {
    /// Draws whether the reply of a push that was stored is lost, and how.
    pub(crate) fn roll_lost_reply(&self) -> Option<LostReply> {
        let (hang, gateway) = (self.lost_reply_hang_rate, self.lost_reply_504_rate);
        if hang <= 0.0 && gateway <= 0.0 {
            return None;
        }
        let x: f64 = rand::rng().random();
        if x < hang {
            Some(LostReply::Hang)
        } else if x < hang + gateway {
            Some(LostReply::GatewayTimeout)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InjectedFault {
    Fail(FailKind),
    Hang,
}

/// The shapes an injected failure takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailKind {
    /// 500 with a JSON envelope.
    JsonServerError,
    /// 502 with nginx's HTML page.
    HtmlBadGateway,
    /// 503 with nginx's HTML page.
    HtmlServiceUnavailable,
    /// 503 with a plain-text body.
    TextServiceUnavailable,
}

/// One system's sliding-window log of admitted requests.
#[derive(Debug, Default)]
pub(crate) struct QuotaWindow {
    admitted: VecDeque<Instant>,
}

impl QuotaWindow {
    /// Admits a request at `now`, or says how long until one would be admitted.
    pub fn try_admit(&mut self, now: Instant, qps: f64) -> Result<(), Duration> {
        let limit = qps.floor().max(1.0);
        let window = Duration::from_secs_f64(limit / qps);
        let limit = limit as usize;
        while let Some(&oldest) = self.admitted.front() {
            if now.duration_since(oldest) >= window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        // The quota may have been lowered at run time: forget entries past the new limit.
        while self.admitted.len() > limit {
            self.admitted.pop_front();
        }
        if self.admitted.len() < limit {
            self.admitted.push_back(now);
            Ok(())
        } else {
            let oldest = self.admitted.front().copied().unwrap_or(now);
            Err((oldest + window).saturating_duration_since(now))
        }
    }

    pub fn clear(&mut self) {
        self.admitted.clear();
    }
}

/// `Retry-After` in whole seconds: the wait rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_burst_gets_exactly_the_quota_admitted_per_second() {
        let mut window = QuotaWindow::default();
        let start = Instant::now();
        let admitted = (0..300)
            .filter(|i| window.try_admit(start + Duration::from_millis(*i), 100.0).is_ok())
            .count();
        assert_eq!(admitted, 100);
        let wait = window
            .try_admit(start + Duration::from_millis(300), 100.0)
            .unwrap_err();
        assert_eq!(wait, Duration::from_millis(700));
        assert_eq!(retry_after_secs(wait), 1);
        // A second after the first request, room again.
        assert!(window
            .try_admit(start + Duration::from_millis(1000), 100.0)
            .is_ok());
    }

    #[test]
    fn a_fractional_quota_admits_one_request_per_period() {
        let mut window = QuotaWindow::default();
        let start = Instant::now();
        assert!(window.try_admit(start, 0.5).is_ok());
        let wait = window
            .try_admit(start + Duration::from_millis(500), 0.5)
            .unwrap_err();
        assert_eq!(retry_after_secs(wait), 2);
        assert!(window.try_admit(start + Duration::from_secs(2), 0.5).is_ok());
    }

    #[test]
    fn partial_updates_change_only_the_keys_given() {
        let mut faults = Faults {
            qps: Some(50.0),
            latency_ms: 10,
            ..Faults::default()
        };
        let update = json!({"fail_rate": 0.25, "qps": null, "logistics_time_shapes": true});
        faults.apply_update(update.as_object().unwrap()).unwrap();
        assert_eq!(
            faults,
            Faults {
                qps: None,
                latency_ms: 10,
                fail_rate: 0.25,
                logistics_time_shapes: true,
                ..Faults::default()
            }
        );
    }

    #[test]
    fn bad_updates_are_refused_and_change_nothing() {
        let mut faults = Faults::default();
        for bad in [
            json!({"fail_rate": 2}),
            json!({"qps": 0}),
            json!({"nope": 1}),
            json!({"latency_ms": "x"}),
            json!({"callback_names_online_no": 1}),
            json!({"callback_clock_offset_secs": 1e12}),
            json!({"callback_clock_offset_secs": 400 * 24 * 3600}),
            json!({"logistics_time_shapes": "yes"}),
            json!({"door_refusal_rate": 1.5}),
            json!({"cancel_outcome": "maybe"}),
        ] {
            assert!(faults.apply_update(bad.as_object().unwrap()).is_err(), "{bad}");
        }
        assert_eq!(faults, Faults::default());
    }

    #[test]
    fn callback_faults_are_set_at_run_time() {
        let mut faults = Faults::default();
        let update = json!({
            "callback_names_online_no": true,
            "callback_keep_first_timestamp": true,
            "callback_clock_offset_secs": -7200
        });
        faults.apply_update(update.as_object().unwrap()).unwrap();
        assert!(faults.callback_names_online_no && faults.callback_keep_first_timestamp);
        assert_eq!(faults.callback_clock_offset_secs, -7_200);
    }

    #[test]
    fn order_knobs_change_at_run_time() {
        let mut faults = Faults::default();
        let update = json!({"cancel_outcome": "inspection_failed", "door_refusal_rate": 0.5});
        faults.apply_update(update.as_object().unwrap()).unwrap();
        assert_eq!(faults.cancel_outcome, Some(CancelOutcome::InspectionFailed));
        assert_eq!(faults.door_refusal_rate, 0.5);
        let off = json!({"cancel_outcome": null});
        faults.apply_update(off.as_object().unwrap()).unwrap();
        assert_eq!(faults.cancel_outcome, None);
    }

    #[test]
    fn rolls_follow_the_rates() {
        let always_fail = Faults {
            fail_rate: 1.0,
            ..Faults::default()
        };
        assert!(matches!(always_fail.roll(), Some(InjectedFault::Fail(_))));
        let always_hang = Faults {
            hang_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(always_hang.roll(), Some(InjectedFault::Hang));
        assert_eq!(Faults::default().roll(), None);
        let always_lost = Faults {
            lost_reply_504_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(always_lost.roll_lost_reply(), Some(LostReply::GatewayTimeout));
        assert_eq!(always_lost.roll(), None, "a lost reply is no injected failure");
        assert_eq!(Faults::default().roll_lost_reply(), None);
    }

    #[test]
    fn the_push_faults_change_at_run_time_and_are_checked() {
        let mut faults = Faults::default();
        let update = json!({"duplicate_message_only": true, "lost_reply_hang_rate": 0.2});
        faults.apply_update(update.as_object().unwrap()).unwrap();
        assert!(faults.duplicate_message_only);
        assert_eq!(faults.lost_reply_hang_rate, 0.2);
        for bad in [
            json!({"lost_reply_504_rate": 0.9}),
            json!({"duplicate_message_only": "yes"}),
            json!({"lost_reply_hang_rate": -0.1}),
        ] {
            assert!(faults.apply_update(bad.as_object().unwrap()).is_err(), "{bad}");
        }
        assert_eq!(faults.lost_reply_504_rate, 0.0);
    }
}

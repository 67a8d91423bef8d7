//! What one push's result means for its order, as the contract's "Order push" section has it:
//! a pure decision the poller then writes. Exactly once rests on three rules:
//! - a refusal that says "Haier has it" (`DUPLICATE_SOID`, or a message with 重复 or 已存在, see
//!   [`crate::haier::is_duplicate_refusal`]) counts as pushed;
//! - any other refusal after an attempt of the same order whose outcome was never seen (this
//!   push's own earlier attempts, or an earlier one remembered in `push_unseen_at`: a timeout, a
//!   broken connection, a 5xx, an unreadable reply, a lease that ran out mid-push) may be Haier
//!   answering its own copy: the order is held as `pushed` with the refusal in `last_error` and
//!   waits for its confirm callback, never `dead`;
//! - an outcome never seen is retried (the repeat is answered as a repeat if the first took
//!   effect), and remembered.

use crate::haier::HaierError;

/// What became of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Haier took it, or already had it (`note` says which).
    Delivered {
        note: Option<String>,
    },
    /// Refused after an attempt never seen: `pushed`, the refusal kept, waiting for the confirm.
    Held(String),
    /// Back to `pending` with the reason, the attempt counted; `unseen` when Haier's answer was
    /// never seen.
    Retry {
        reason: String,
        unseen: bool,
    },
    /// Not sent, not the order's fault (credentials refused, breaker open): `pending` again, no
    /// attempt counted.
    Deferred(String),
    Dead(String),
    /// The lease was lost meanwhile (a callback or another poller moved the row on).
    LeaseLost,
}

/// Decides what a push's `result` means for an order whose attempt number this was (`attempt`,
/// from 1), out of `max_attempts`; `unseen_before` says an earlier attempt's outcome was never
/// seen (`push_unseen_at` is set).
pub(crate) fn classify_push(
    result: &Result<(), HaierError>,
    unseen_before: bool,
    attempt: i64,
    max_attempts: i64,
) -> Pushed {
    let error = match result {
        Ok(()) => return Pushed::Delivered { note: None },
        Err(error) => error,
    };
    match error {
        HaierError::DuplicateSoId { .. } => Pushed::Delivered {
            note: Some(format!("{error}; taken as delivered")),
        },
        HaierError::RefusedAfterUnseen { .. } => Pushed::Held(held(error)),
        HaierError::Business { .. } | HaierError::OrderNotFound { .. } if unseen_before => {
            Pushed::Held(held(error))
        }
        e if e.is_fatal_for_run() => Pushed::Deferred(format!("not sent, will try again: {e}")),
        e if e.is_retryable() || e.is_unseen_outcome() => {
            let unseen = e.is_unseen_outcome() || unseen_before;
            if attempt >= max_attempts {
                let mut reason = format!("gave up after {attempt} attempts: {e}");
                if unseen {
                    reason.push_str(
                        "; an attempt's outcome was never seen, so Haier may have the order \
                         (its confirm callback still confirms it)",
                    );
                }
                Pushed::Dead(reason)
            } else {
                Pushed::Retry {
                    reason: format!("attempt {attempt} of {max_attempts} failed: {e}"),
                    unseen: e.is_unseen_outcome(),
                }
            }
        }
        e => Pushed::Dead(format!("Haier refused the order: {e}")),
    }
}

fn held(error: &HaierError) -> String {
    format!(
        "{error}; an earlier attempt's outcome was never seen, so this may be Haier answering its \
         own copy: held as pushed until the confirm callback"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haier::System;
    use std::time::Duration;

    fn refusal(code: &str, message: &str) -> Result<(), HaierError> {
        Err(HaierError::Business {
            system: System::Ylh,
            operation: "order_push",
            code: code.into(),
            message: message.into(),
        })
    }

    fn timeout() -> Result<(), HaierError> {
        Err(HaierError::Timeout {
            system: System::Ylh,
            operation: "order_push",
            after: Duration::from_secs(1),
        })
    }

    #[test]
    fn a_repeat_counts_as_pushed_with_a_note() {
        let duplicate = Err(HaierError::DuplicateSoId { so_id: "SO-1".into() });
        let Pushed::Delivered { note: Some(note) } = classify_push(&duplicate, false, 1, 10) else {
            panic!("a repeat is delivered");
        };
        assert!(note.contains("taken as delivered"), "{note}");
        assert_eq!(
            classify_push(&Ok(()), true, 1, 10),
            Pushed::Delivered { note: None }
        );
    }

    #[test]
    fn a_refusal_is_dead_unless_an_earlier_outcome_was_never_seen() {
        let missing = refusal("PARAM_MISSING", "缺少必填参数: shopName");
        assert!(matches!(classify_push(&missing, false, 1, 10), Pushed::Dead(_)));
        let Pushed::Held(reason) = classify_push(&missing, true, 2, 10) else {
            panic!("held after an unseen attempt");
        };
        assert!(
            reason.contains("PARAM_MISSING: 缺少必填参数: shopName"),
            "{reason}"
        );
        assert!(reason.contains("held as pushed"), "{reason}");
        // The client saw the unseen attempt itself, within the same push.
        let after_unseen = Err(HaierError::RefusedAfterUnseen {
            system: System::Ylh,
            operation: "order_push",
            code: String::new(),
            message: "系统异常".into(),
        });
        assert!(matches!(
            classify_push(&after_unseen, false, 1, 10),
            Pushed::Held(_)
        ));
        // Held even on the last attempt: a refusal is never "out of attempts".
        assert!(matches!(classify_push(&missing, true, 10, 10), Pushed::Held(_)));
    }

    #[test]
    fn an_outcome_never_seen_is_retried_and_remembered() {
        assert_eq!(
            classify_push(&timeout(), false, 1, 10),
            Pushed::Retry {
                reason: "attempt 1 of 10 failed: ylh order_push: timed out after 1s".into(),
                unseen: true
            }
        );
        let unreadable = Err(HaierError::Decode {
            system: System::Ylh,
            operation: "order_push",
            message: "not JSON".into(),
        });
        assert!(matches!(
            classify_push(&unreadable, false, 1, 10),
            Pushed::Retry { unseen: true, .. }
        ));
        let limited = Err(HaierError::RateLimited {
            system: System::Ylh,
            operation: "order_push",
            retry_after: Duration::from_secs(1),
        });
        assert!(matches!(
            classify_push(&limited, false, 1, 10),
            Pushed::Retry { unseen: false, .. }
        ));
        let Pushed::Dead(reason) = classify_push(&timeout(), false, 10, 10) else {
            panic!("out of attempts");
        };
        assert!(reason.contains("Haier may have the order"), "{reason}");
    }

    #[test]
    fn a_breaker_open_defers_without_counting() {
        let open = Err(HaierError::BreakerOpen {
            system: System::Ylh,
            retry_in: Duration::from_secs(1),
        });
        assert!(matches!(classify_push(&open, true, 1, 10), Pushed::Deferred(_)));
    }
}

//! The client's one error type, and the one place that decides what is worth retrying.

use super::stats::Operation;
use super::types::System;
use std::time::Duration;

/// The code of a refusal that means "Haier knows no such order".
const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";

/// Everything a Haier call can fail with. Callers branch on the variant or ask
/// [`HaierError::is_retryable`]; nobody re-parses status codes. Messages and bodies in it are
/// masked: no secret or token ever shows in one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HaierError {
    /// Credentials refused at login (HTTP 400/401 from a token endpoint). Not retried.
    #[error("{system} login refused: {message}")]
    AuthRefused { system: System, message: String },

    /// A business call answered 401 even after fresh logins (one per new revocation, within a
    /// bound).
    #[error("{system} {operation}: unauthorized after re-login")]
    Unauthorized { system: System, operation: &'static str },

    /// HTTP 429. Retried after `retry_after` without using up an attempt.
    #[error("{system} {operation}: rate limited (retry after {retry_after:?})")]
    RateLimited {
        system: System,
        operation: &'static str,
        retry_after: Duration,
    },

    /// Any other non-2xx HTTP status. 408 and 5xx are retried; other 4xx are not.
    #[error("{system} {operation}: HTTP {status}: {body}")]
    Http {
        system: System,
        operation: &'static str,
        status: u16,
        body: String,
    },

    /// The request timed out.
    #[error("{system} {operation}: timed out after {after:?}")]
    Timeout {
        system: System,
        operation: &'static str,
        after: Duration,
    },

    /// The connection could not be made or broke.
    #[error("{system} {operation}: connection failed: {message}")]
    Connect {
        system: System,
        operation: &'static str,
        message: String,
    },

    /// `success:false` in the envelope. Never retried.
    #[error("{system} {operation}: Haier refused: {code}: {message}")]
    Business {
        system: System,
        operation: &'static str,
        code: String,
        message: String,
    },

    /// `ORDER_NOT_FOUND` in the envelope of a call about one order (logistics, cancel): Haier
    /// knows no order by that number. A refusal like `Business`, and never retried either.
    #[error("{system} {operation}: Haier refused: ORDER_NOT_FOUND: {message}")]
    OrderNotFound {
        system: System,
        operation: &'static str,
        message: String,
    },

    /// `DUPLICATE_SOID`: Haier already has an order with this `soId`.
    #[error("order {so_id} was already received by Haier (DUPLICATE_SOID)")]
    DuplicateSoId { so_id: String },

    /// A push refused (not as a repeat) after an earlier attempt of the same call whose outcome
    /// was never seen: it may be Haier answering its own copy of the order, so the order counts
    /// as pushed and waits for its confirm callback. Never retried.
    #[error(
        "{system} {operation}: Haier refused the order after an earlier attempt whose outcome was never seen: \
         {code}: {message}"
    )]
    RefusedAfterUnseen {
        system: System,
        operation: &'static str,
        code: String,
        message: String,
    },

    /// The reply could not be decoded into the expected shape.
    #[error("{system} {operation}: unexpected reply: {message}")]
    Decode {
        system: System,
        operation: &'static str,
        message: String,
    },

    /// The circuit breaker for the system is open: calls fail fast until the cool-down ends.
    #[error("{system} circuit breaker is open after repeated failures; next probe in {retry_in:?}")]
    BreakerOpen { system: System, retry_in: Duration },

    /// The caller gave something the call cannot take (e.g. more than 20 product codes).
    #[error("invalid request to {operation}: {message}")]
    InvalidRequest {
        operation: &'static str,
        message: String,
    },

    /// The client cannot be built from the configuration (a URL that is not http(s), a zero
    /// quota). Not retried.
    #[error("invalid Haier client setup: {message}")]
    Config { message: String },
}

impl HaierError {
    /// The error for a refusal (`success:false`) of `operation`, its message already masked:
    /// `ORDER_NOT_FOUND` answering a call about one order is [`HaierError::OrderNotFound`];
    /// any other refusal is [`HaierError::Business`].
    pub(super) fn refused(operation: Operation, code: String, message: String) -> Self {
        let (system, operation_name) = (operation.system(), operation.as_str());
        let about_one_order = matches!(
            operation,
            Operation::Logistics
                | Operation::OrderCancel
                | Operation::OrderReschedule
                | Operation::DeliveryPhotos
        );
        if about_one_order && code == ORDER_NOT_FOUND {
            return HaierError::OrderNotFound {
                system,
                operation: operation_name,
                message,
            };
        }
        HaierError::Business {
            system,
            operation: operation_name,
            code,
            message,
        }
    }

    /// True when the same call may succeed if repeated later: timeouts, connection errors,
    /// 408, 429, 5xx and an open breaker. Business refusals, 400s and bad replies are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            HaierError::RateLimited { .. }
            | HaierError::Timeout { .. }
            | HaierError::Connect { .. }
            | HaierError::BreakerOpen { .. } => true,
            HaierError::Http { status, .. } => *status == 408 || *status >= 500,
            HaierError::AuthRefused { .. }
            | HaierError::Unauthorized { .. }
            | HaierError::Business { .. }
            | HaierError::OrderNotFound { .. }
            | HaierError::DuplicateSoId { .. }
            | HaierError::RefusedAfterUnseen { .. }
            | HaierError::Decode { .. }
            | HaierError::InvalidRequest { .. }
            | HaierError::Config { .. } => false,
        }
    }

    /// True when the request may have reached Haier and taken effect, but what Haier made of it
    /// was never seen: a timeout, a broken connection, a 408 or 5xx (a gateway may have passed
    /// the request on), or a 2xx reply that could not be read. A connection that was never made
    /// is counted too: the error does not always tell the two apart.
    pub fn is_unseen_outcome(&self) -> bool {
        match self {
            HaierError::Timeout { .. } | HaierError::Connect { .. } | HaierError::Decode { .. } => true,
            HaierError::Http { status, .. } => *status == 408 || *status >= 500,
            _ => false,
        }
    }

    /// True when the whole run cannot go on (credentials refused, breaker open): a job stops and
    /// logs `failed` rather than trying every remaining item (those count as failed, not
    /// reached).
    pub fn is_fatal_for_run(&self) -> bool {
        matches!(
            self,
            HaierError::AuthRefused { .. } | HaierError::Unauthorized { .. } | HaierError::BreakerOpen { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification_follows_the_table() {
        let http = |status| HaierError::Http {
            system: System::Openplat,
            operation: "x",
            status,
            body: String::new(),
        };
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(http(408).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!http(404).is_retryable());
        let business = HaierError::Business {
            system: System::Openplat,
            operation: "x",
            code: "PASSWORD_ERROR".into(),
            message: "密码错误".into(),
        };
        assert!(!business.is_retryable());
        assert!(!HaierError::DuplicateSoId { so_id: "1".into() }.is_retryable());
        let not_found = HaierError::refused(
            Operation::OrderCancel,
            ORDER_NOT_FOUND.into(),
            "订单不存在".into(),
        );
        assert!(!not_found.is_retryable());
        assert!(!not_found.is_fatal_for_run());
        assert!(HaierError::Timeout {
            system: System::Ylh,
            operation: "x",
            after: Duration::from_secs(1)
        }
        .is_retryable());
    }
    #[test]
    fn outcomes_never_seen_are_told_from_answers() {
        let http = |status| HaierError::Http {
            system: System::Ylh,
            operation: "order_push",
            status,
            body: String::new(),
        };
        assert!(http(504).is_unseen_outcome());
        assert!(http(500).is_unseen_outcome());
        assert!(!http(400).is_unseen_outcome());
        assert!(!http(429).is_unseen_outcome());
        let timeout = HaierError::Timeout {
            system: System::Ylh,
            operation: "order_push",
            after: Duration::from_secs(1),
        };
        assert!(timeout.is_unseen_outcome());
        let unreadable = HaierError::Decode {
            system: System::Ylh,
            operation: "order_push",
            message: "not JSON".into(),
        };
        assert!(unreadable.is_unseen_outcome());
        let refused = HaierError::Business {
            system: System::Ylh,
            operation: "order_push",
            code: "PARAM_MISSING".into(),
            message: "缺少必填参数".into(),
        };
        assert!(!refused.is_unseen_outcome());
        assert!(!HaierError::DuplicateSoId { so_id: "1".into() }.is_unseen_outcome());
    }

    #[test]
    fn order_not_found_about_one_order_is_its_own_variant_and_reads_as_before() {
        let error = HaierError::refused(Operation::Logistics, ORDER_NOT_FOUND.into(), "订单不存在".into());
        assert!(matches!(error, HaierError::OrderNotFound { .. }));
        assert_eq!(
            error.to_string(),
            "openplat logistics: Haier refused: ORDER_NOT_FOUND: 订单不存在"
        );
        let business = HaierError::Business {
            system: System::Openplat,
            operation: "logistics",
            code: ORDER_NOT_FOUND.into(),
            message: "订单不存在".into(),
        };
        assert_eq!(error.to_string(), business.to_string());
        // A call that names no single order keeps the refusal as it came.
        let prices = HaierError::refused(Operation::Prices, ORDER_NOT_FOUND.into(), "x".into());
        assert!(matches!(prices, HaierError::Business { .. }));
        let other = HaierError::refused(Operation::OrderCancel, "PARAM_MISSING".into(), "x".into());
        assert!(matches!(other, HaierError::Business { .. }));
    }
}

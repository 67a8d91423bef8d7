//! The Haier client: both logins, the shared rate limiter, retries and the circuit breaker, the
//! wire types and their lenient decoding, and Haier's endpoint paths (`paths`, shared with the
//! simulator and tests). It knows nothing about the database or jobs.

mod auth;
mod body;
mod breaker;
mod call;
mod client;
mod error;
mod limiter;
mod openplat;
pub mod paths;
mod redact;
mod retry;
mod shared_quota;
mod stats;
mod types;
mod wire;
mod ylh;

pub use breaker::BreakerState;
pub use client::{ConnectionCheck, HaierClient};
pub use error::HaierError;
pub use openplat::MAX_CODES_PER_CALL;
pub use shared_quota::SharedQuota;
pub use stats::{ClientStats, Operation, OperationStats, SystemStats};
pub use types::*;
#[cfg(feature = "fuzzing")]
pub use wire::fuzzing;
pub use ylh::is_duplicate_refusal;
pub use ylh::MAX_ORDERS_PER_EXPRESS_CALL;

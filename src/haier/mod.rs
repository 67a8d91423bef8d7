//! The Haier client: both logins, the shared rate limiter, retries and the circuit breaker, the
//! wire types and their lenient decoding. It knows nothing about the database or jobs.

mod error;
mod types;

pub use error::HaierError;
pub use types::*;

//! Orders: the transactional outbox's validation and poller (each paid order reaches Haier
//! exactly once), the signed callback receiver that records what Haier did with them, and the
//! metrics endpoint served beside it. The outbox SQL lives in `outbox` and `events`; the HTTP calls in `crate::haier`.

pub mod callback;
pub mod events;
pub mod metrics;
pub mod notices;
pub mod outbox;
pub mod poller;
pub mod validate;

pub use callback::{router, serve};
pub use poller::{run_until_stopped, try_push_next_batch, PollOutcome};

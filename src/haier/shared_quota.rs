//! The seam between the client's limiter and a quota shared with other processes
//! ([`SharedQuota`]): the limiter awaits it for every request after its own gate. The shared
//! budget itself (kept in the database) lives in `crate::quota`; this module knows only the seam.

use super::types::System;
use std::time::Duration;

/// A request budget per Haier system shared with every other process that calls Haier for the
/// same account. The client's own limiter paces this process; this bounds all of them together.
#[async_trait::async_trait]
pub trait SharedQuota: Send + Sync {
    /// Waits until this process may send one request to `system` within the shared budget.
    async fn take(&self, system: System);

    /// Haier answered 429 asking to wait `wait`: holds back every process's requests to
    /// `system` that long. Returns at once; the budget is told in the background.
    fn throttled(&self, system: System, wait: Duration);
}

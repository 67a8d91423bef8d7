//! Waiting with a deadline: every wait in the suite polls what a user would look at until it
//! holds, and fails with what it saw last once the time is up. No test sleeps to wait.

use super::runs;
use haier_sync::db::Db;
use haier_sync::runs::log::SyncLog;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen at once.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// A bound on a wait: [`Deadline::wait`] pauses briefly, or panics with what was awaited and
/// what was last seen once the time is up.
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    pub fn new(limit: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    pub async fn wait(&self, what: &str, last_seen: &impl Debug) {
        assert!(
            Instant::now() < self.at,
            "timed out after {:?} waiting for {what}; last seen: {last_seen:#?}",
            self.limit
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Looks (`look`) until `done` holds for what it sees, up to `limit`; returns what it saw.
pub async fn wait_for<T: Debug, F: Future<Output = T>>(
    what: &str,
    limit: Duration,
    mut look: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Deadline::new(limit);
    loop {
        let seen = look().await;
        if done(&seen) {
            return seen;
        }
        deadline.wait(what, &seen).await;
    }
}

/// Until `done` holds, up to `limit`; returns when it held.
pub async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Instant {
    let deadline = Deadline::new(limit);
    loop {
        if done() {
            return Instant::now();
        }
        deadline.wait(what, &"not yet").await;
    }
}

/// Polls the `haier_sync_logs` rows of `job` (in tick order) until `done` holds for them.
pub async fn wait_for_rows(
    db: &Db,
    job: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&[SyncLog]) -> bool,
) -> Vec<SyncLog> {
    wait_for(
        what,
        limit,
        || runs::rows(db, job),
        |rows: &Vec<SyncLog>| done(rows),
    )
    .await
}

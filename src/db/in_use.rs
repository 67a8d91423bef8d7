//! Which threads are inside the database libraries right now, so that the process exits only
//! once none is.
//!
//! `exit` runs libpq's and OpenSSL's exit handlers, which free what a thread still inside them
//! (the pool's worker opening a connection, a query left running by a detached task, the LISTEN
//! thread) goes on using: glibc then aborts with `free(): invalid pointer`. Every connection
//! being opened, checked out of the pool, checked, closed, or kept by a thread of its own holds
//! an [`InUse`] mark, and `main` waits for the marks to go before it returns.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// One thread's use of a database connection; dropped when the use ends.
#[must_use = "the mark lasts as long as the value"]
#[derive(Debug)]
pub struct InUse(());

impl InUse {
    pub fn enter() -> Self {
        IN_USE.fetch_add(1, Ordering::SeqCst);
        InUse(())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        IN_USE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many uses are going on.
pub fn count() -> usize {
    IN_USE.load(Ordering::SeqCst)
}

/// Blocks until no use is going on, or `limit` has passed; true if none is left.
pub fn wait_until_none(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if count() == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Marks the pool's checked-out connections: from checkout to checkin.
#[derive(Debug, Default)]
pub(super) struct PoolEvents;

impl diesel::r2d2::HandleEvent for PoolEvents {
    fn handle_checkout(&self, _event: diesel::r2d2::event::CheckoutEvent) {
        std::mem::forget(InUse::enter());
    }

    fn handle_checkin(&self, _event: diesel::r2d2::event::CheckinEvent) {
        IN_USE.fetch_sub(1, Ordering::SeqCst);
    }
}

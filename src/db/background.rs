//! Writes that must land even when the database is away for a while (a run's closing write). One
//! that failed is handed here and retried in the background, with backoff, until the database
//! takes it, while its caller goes on; the process waits for them, bounded, before it exits
//! ([`BackgroundWrites::finish`]). What is written, and what is logged when it lands, is the
//! caller's: each attempt is its future.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The first retry comes this long after the failed write; each next one waits twice as long.
pub const RETRY_BASE: Duration = Duration::from_millis(250);
/// No retry waits longer than this, so that a write lands within seconds of the database's return.
pub const RETRY_CAP: Duration = Duration::from_secs(5);

/// The writes being retried. Cheap to clone; clones share them.
#[derive(Clone)]
pub struct BackgroundWrites {
    inner: Arc<Inner>,
}

struct Inner {
    /// How many writes have not landed yet.
    pending: watch::Sender<usize>,
    /// Set once the process is about to exit: every write tries again now, then every
    /// [`RETRY_BASE`].
    hurry: watch::Sender<bool>,
}

impl Default for BackgroundWrites {
    fn default() -> Self {
        BackgroundWrites {
            inner: Arc::new(Inner {
                pending: watch::channel(0).0,
                hurry: watch::channel(false).0,
            }),
        }
    }
}

impl std::fmt::Debug for BackgroundWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundWrites")
            .field("pending", &self.pending())
            .finish()
    }
}

impl BackgroundWrites {
    /// Retries a write that failed once already: `attempt(n)` is its `n`-th try (the first retry
    /// is number 2), made after a backoff of [`RETRY_BASE`] doubling up to [`RETRY_CAP`], until
    /// one returns `Ok`. `what` names the write in debug logs; the attempt logs what matters.
    /// Must be called inside a tokio runtime.
    pub fn spawn<F>(&self, what: String, mut attempt: F)
    where
        F: FnMut(u32) -> BoxFuture<'static, anyhow::Result<()>> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        inner.pending.send_modify(|n| *n += 1);
        let mut hurry = inner.hurry.subscribe();
        tokio::spawn(async move {
            let mut wait = RETRY_BASE;
            let mut number = 1;
            loop {
                if !*hurry.borrow_and_update() {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = hurry.changed() => {}
                    }
                }
                number += 1;
                match attempt(number).await {
                    Ok(()) => break,
                    Err(error) => {
                        let hurried = *hurry.borrow();
                        if !hurried {
                            wait = wait.saturating_mul(2).min(RETRY_CAP);
                        }
                        tracing::debug!(
                            error = format!("{error:#}"),
                            "{what}: attempt {number} failed; trying again in {} ms",
                            if hurried { RETRY_BASE } else { wait }.as_millis()
                        );
                        if hurried {
                            tokio::time::sleep(RETRY_BASE).await;
                        }
                    }
                }
            }
            inner.pending.send_modify(|n| *n -= 1);
        });
    }

    /// How many writes have not landed yet.
    pub fn pending(&self) -> usize {
        *self.inner.pending.borrow()
    }

    /// Whether [`BackgroundWrites::finish`] was called: the process is on its way out.
    pub fn is_finishing(&self) -> bool {
        *self.inner.hurry.borrow()
    }

    /// Before the process exits: has every write try again now (and then every [`RETRY_BASE`]),
    /// and waits until they have all landed or `deadline` passes. Returns how many did not land.
    pub async fn finish(&self, deadline: Instant) -> usize {
        self.inner.hurry.send_replace(true);
        let mut pending = self.inner.pending.subscribe();
        let _ = tokio::time::timeout_at(deadline, pending.wait_for(|n| *n == 0)).await;
        self.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    #[tokio::test]
    async fn a_write_is_retried_with_backoff_until_it_lands() {
        let writes = BackgroundWrites::default();
        let tries = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&tries);
        let started = Instant::now();
        writes.spawn("a test write".into(), move |n| {
            seen.store(n, Ordering::SeqCst);
            Box::pin(async move {
                anyhow::ensure!(n >= 3, "the database is away");
                Ok(())
            })
        });
        assert_eq!(writes.pending(), 1);
        let mut pending = writes.inner.pending.subscribe();
        tokio::time::timeout(Duration::from_secs(10), pending.wait_for(|n| *n == 0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        // 250 then 500 ms of backoff before tries 2 and 3.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(750), "{took:?}");
        assert!(took < Duration::from_millis(3000), "{took:?}");
    }

    #[tokio::test]
    async fn finish_hurries_the_writes_and_gives_up_at_the_deadline() {
        let writes = BackgroundWrites::default();
        let away = Arc::new(AtomicBool::new(true));
        let database = Arc::clone(&away);
        writes.spawn("a test write".into(), move |_| {
            let away = database.load(Ordering::SeqCst);
            Box::pin(async move {
                anyhow::ensure!(!away, "the database is away");
                Ok(())
            })
        });
        // Let the write back off for a while: it waits 2 s between tries by then.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert_eq!(
            writes.finish(Instant::now() + Duration::from_millis(600)).await,
            1
        );
        away.store(false, Ordering::SeqCst);
        let started = Instant::now();
        assert_eq!(writes.finish(Instant::now() + Duration::from_secs(10)).await, 0);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(600), "hurried: {took:?}");
    }
}

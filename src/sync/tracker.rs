//! The running tally of one job run: counts, failed items, notes for the log message, the cancel
//! token and the progress display. Kinds update it as pages are written; [`super::run_job`]
//! reads it to close the log row, even when the kind's future was dropped.

use super::Progress;
use crate::runs::{FailureList, RunCounts, RunRecorder};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the counts so far are written to the running log row.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// One run's tally. Shared by reference between the kind and `run_job`.
pub struct RunTracker<'a> {
    recorder: &'a RunRecorder,
    cancel: CancellationToken,
    progress: Arc<dyn Progress>,
    state: Mutex<State>,
}

struct State {
    counts: RunCounts,
    failures: FailureList,
    notes: Vec<String>,
    last_checkpoint: Instant,
}

impl<'a> RunTracker<'a> {
    pub fn new(recorder: &'a RunRecorder, cancel: CancellationToken, progress: Arc<dyn Progress>) -> Self {
        Self {
            recorder,
            cancel,
            progress,
            state: Mutex::new(State {
                counts: RunCounts::default(),
                failures: FailureList::default(),
                notes: Vec::new(),
                last_checkpoint: Instant::now(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain counters behind: still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The log row's id.
    pub fn log_id(&self) -> i64 {
        self.recorder.id()
    }

    /// Sets the number of items this run goes through.
    pub fn set_total(&self, total: u64) {
        self.state().counts.total = i64::try_from(total).unwrap_or(i64::MAX);
        self.progress.set_total(total);
    }

    /// `n` items were answered (written or failed soon after): moves the progress display.
    pub fn answered(&self, n: u64) {
        if n > 0 {
            self.progress.advance(n);
        }
    }

    /// `n` items were written: they count as successes.
    pub fn succeed(&self, n: u64) {
        self.state().counts.success += i64::try_from(n).unwrap_or(i64::MAX);
    }

    /// One item failed; it is named in the message with `reason`.
    pub fn fail(&self, item: impl fmt::Display, reason: impl fmt::Display) {
        tracing::debug!(item = %item, reason = %reason, "item failed");
        let mut state = self.state();
        state.counts.failed += 1;
        state.failures.push(item, reason);
    }

    /// Adds a sentence to the log message (what was new, changed, skipped, ...).
    pub fn note(&self, text: impl Into<String>) {
        self.state().notes.push(text.into());
    }

    /// Tells the progress display what the run does now.
    pub fn status(&self, text: &str) {
        self.progress.message(text);
    }

    /// The counts so far.
    pub fn counts(&self) -> RunCounts {
        self.state().counts
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the run is to stop (shutdown, timeout).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Writes the counts so far to the running log row, at most once per [`CHECKPOINT_EVERY`].
    /// A failure is logged, not returned: the next page write meets the same database.
    pub async fn checkpoint(&self) {
        let counts = {
            let mut state = self.state();
            if state.last_checkpoint.elapsed() < CHECKPOINT_EVERY {
                return;
            }
            state.last_checkpoint = Instant::now();
            state.counts
        };
        if let Err(error) = self.recorder.progress(counts).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not record the run's progress"
            );
        }
    }

    /// The log message: `lead` (why the run stopped or failed), the notes, then the failed items.
    pub fn message(&self, lead: Option<String>) -> Option<String> {
        let state = self.state();
        let parts: Vec<String> = lead
            .into_iter()
            .chain(state.notes.iter().cloned())
            .chain(state.failures.message())
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

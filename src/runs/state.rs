//! What a `haier_sync_logs` row says about its run: the status, the sync type and the trigger
//! (each stored as the text the migrations' `CHECK` lists hold), and the counts.

use serde::Serialize;

crate::db::text_enum::text_enum! {
    /// How a run ended (or that it is still going).
    pub enum RunStatus {
        /// The run still goes (or its process died and recovery has not closed it yet).
        Running = "running",
        /// Nothing failed.
        Success = "success",
        /// Some items failed, others went through.
        Partial = "partial",
        /// The run could not do its work (auth refused, breaker open, database gone, every item
        /// failed).
        Failed = "failed",
        /// Stopped by shutdown, timeout or a crash; the counts are those reached.
        Interrupted = "interrupted",
        /// A tick that came while the previous run still went.
        Skipped = "skipped",
    }
}

impl RunStatus {
    /// The exit code `run-job` uses: 0 success, 3 partial, 1 anything else.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Success | RunStatus::Skipped => 0,
            RunStatus::Partial => 3,
            _ => 1,
        }
    }
}

crate::db::text_enum::text_enum! {
    /// What a run synced: a job kind's name, or `order` for an outbox batch.
    pub enum SyncType {
        /// The product catalog.
        Products = "products",
        /// Prices.
        Prices = "prices",
        /// Stock per county.
        Stock = "stock",
        /// Delivery tracking of pushed orders.
        Logistics = "logistics",
        /// A batch of the order outbox.
        Order = "order",
        /// A run started by hand outside the job kinds.
        Manual = "manual",
    }
}

crate::db::text_enum::text_enum! {
    /// Why a run started.
    pub enum Trigger {
        /// A cron tick.
        Schedule = "schedule",
        /// `run-job`, the demo, or an operator.
        Manual = "manual",
        /// A fire time missed while the daemon was down.
        CatchUp = "catch_up",
    }
}

/// Items seen, done and failed in one run. A finished run's row always has
/// `total = success + failed` (see [`RunCounts::closed`]); a `running` row's counts are those
/// reached so far, against the total planned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub total: i64,
    pub success: i64,
    pub failed: i64,
}

impl RunCounts {
    /// `success` when nothing failed, `partial` when some items failed and some went through,
    /// `failed` when every item failed.
    pub fn status(&self) -> RunStatus {
        match (self.success, self.failed) {
            (_, 0) => RunStatus::Success,
            (0, _) => RunStatus::Failed,
            _ => RunStatus::Partial,
        }
    }

    /// The counts a run is closed with, so that `total = success + failed` however it ended.
    /// A run that went through its whole source (`went_through`) covered the items it met:
    /// its total is those, even when the count taken at its start differed (the source changed
    /// meanwhile). A run that stopped early (failed, cancelled, timed out) covered the items it
    /// planned: those it never reached count as failed, for they were not synced. Returns the
    /// counts and the number of items not reached.
    pub fn closed(self, went_through: bool) -> (RunCounts, i64) {
        let success = self.success.max(0);
        let failed = self.failed.max(0);
        let done = success.saturating_add(failed);
        if went_through {
            let counts = RunCounts {
                total: done,
                success,
                failed,
            };
            return (counts, 0);
        }
        let total = self.total.max(done);
        let unreached = total - done;
        let counts = RunCounts {
            total,
            success,
            failed: failed + unreached,
        };
        (counts, unreached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_counts() {
        let counts = |total, success, failed| RunCounts {
            total,
            success,
            failed,
        };
        assert_eq!(counts(3, 3, 0).status(), RunStatus::Success);
        assert_eq!(counts(0, 0, 0).status(), RunStatus::Success);
        assert_eq!(counts(3, 2, 1).status(), RunStatus::Partial);
        assert_eq!(counts(3, 0, 3).status(), RunStatus::Failed);
    }

    #[test]
    fn closed_counts_always_add_up() {
        let values = [0, 1, 2, 3, 7, 200, i64::MAX / 4, i64::MAX];
        for &total in &values {
            for &success in &values {
                for &failed in &values {
                    for went_through in [true, false] {
                        let seen = RunCounts {
                            total,
                            success,
                            failed,
                        };
                        let (closed, unreached) = seen.closed(went_through);
                        assert_eq!(
                            closed.total,
                            closed.success.saturating_add(closed.failed),
                            "{seen:?} went_through={went_through} → {closed:?}"
                        );
                        assert_eq!(closed.success, success, "successes are never lost");
                        assert!(closed.failed >= failed && unreached >= 0);
                        if went_through {
                            assert_eq!(unreached, 0);
                        } else {
                            assert!(closed.total >= total, "planned items stay counted");
                            assert_eq!(closed.failed, failed.saturating_add(unreached));
                        }
                    }
                }
            }
        }
        // The run: 200 planned, 181 written, aborted by a 401.
        let (closed, unreached) = RunCounts {
            total: 200,
            success: 181,
            failed: 0,
        }
        .closed(false);
        assert_eq!(
            (closed.total, closed.success, closed.failed, unreached),
            (200, 181, 19, 19)
        );
    }

    #[test]
    fn exit_codes_follow_the_status() {
        assert_eq!(RunStatus::Success.exit_code(), 0);
        assert_eq!(RunStatus::Skipped.exit_code(), 0);
        assert_eq!(RunStatus::Partial.exit_code(), 3);
        assert_eq!(RunStatus::Interrupted.exit_code(), 1);
    }
}

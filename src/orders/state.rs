//! The states of an order, each kept as text in the outbox and event tables: where an order is
//! in the outbox, what became of a cancel, and what a callback ended as. A new state is one line
//! here and one word in the migration's `CHECK`.

use crate::db::text_enum::text_enum;

text_enum! {
    /// Where an order is in `haier_order_outbox` (`status`), in the order it goes through them.
    pub enum OutboxStatus {
        /// Waiting for its first or next push (`next_attempt_at`).
        Pending = "pending",
        /// Claimed by a poller, under a lease (`locked_by`, `locked_until`).
        Sending = "sending",
        /// Haier took the push; its confirm callback has not come yet.
        Pushed = "pushed",
        /// Haier confirmed it, with its order number.
        Confirmed = "confirmed",
        /// Haier said it is out of stock (`out_of_stock_detail`); a later confirm or cancel
        /// moves it on.
        OutOfStock = "out_of_stock",
        /// Haier refused it in its confirm callback.
        Refused = "refused",
        /// Cancelled, here (never pushed) or by Haier: every unit refused at the door, stopped or
        /// returned, and the order never delivered.
        Cancelled = "cancelled",
        /// Delivered, then every unit returned (or refused at the door).
        Returned = "returned",
        /// Given up: invalid, refused by Haier's API, or out of attempts.
        Dead = "dead",
    }
}

impl OutboxStatus {
    /// The statuses of orders Haier has received and may be delivering.
    pub const TRACKED: [OutboxStatus; 3] = [
        OutboxStatus::Pushed,
        OutboxStatus::Confirmed,
        OutboxStatus::OutOfStock,
    ];

    /// The statuses an order ends in: no callback moves it on.
    pub const FINAL: [OutboxStatus; 4] = [
        OutboxStatus::Refused,
        OutboxStatus::Cancelled,
        OutboxStatus::Returned,
        OutboxStatus::Dead,
    ];
}

text_enum! {
    /// What became of a cancel, a return or a refusal at the door
    /// (`haier_order_outbox.cancel_state`), as Haier's cancel callbacks and the order's lines
    /// (`haier_order_lines`) say.
    pub enum CancelState {
        /// Asked of Haier; the outcome comes in its cancel callback.
        Requested = "requested",
        /// Cancelled here, before Haier had the order.
        Local = "local",
        /// Haier cancelled the whole order (status `cancelled`).
        Full = "full",
        /// Some units were refused at the door or stopped, none returned; the status stays.
        PartlyCancelled = "partly_cancelled",
        /// Some units were returned (and maybe some refused at the door); the status stays.
        PartlyReturned = "partly_returned",
        /// Every unit of a delivered order was returned or refused (status `returned`).
        Returned = "returned",
        /// Haier declined the cancel or the return (its `FailMsg` in `cancel_detail`); the
        /// order keeps its state.
        Refused = "refused",
    }
}

text_enum! {
    /// What a callback ended as (`haier_order_events.outcome`).
    pub enum CallbackOutcome {
        /// It changed the order.
        Applied = "applied",
        /// It was applied before (a replay, or the order already says so): nothing changed.
        Duplicate = "duplicate",
        /// It failed a check (signature, time stamp, app key, body, data, or a cancel's
        /// quantities against the order's lines): nothing changed.
        Rejected = "rejected",
        /// Signed and valid, but it names no order, or several (see `orders::matching`): kept,
        /// answered `success:false`, and waiting for an operator to attach it
        /// (`haier-sync outbox attach`).
        Unmatched = "unmatched",
        /// Valid, but contradicts what the order says now (or an unknown method): nothing changed.
        Ignored = "ignored",
    }
}

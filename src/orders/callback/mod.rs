//! The HTTP receiver for Haier's signed order callbacks (`POST /haier/callback`), with
//! `GET /healthz` and `GET /metrics` beside it. It checks every callback (body size, `AppKey`,
//! `Sign` in constant time, `Method`, `Data`; the `TimeStamp` is only recorded: how far off it
//! was, with a warning beyond `clock_skew_warn_secs`), stores every one in `haier_order_events` with its outcome, applies the valid ones
//! through `crate::orders::notices`, and answers in the contract's reply format. What a callback
//! does to an order is decided in `notices`; the metrics text is built in `crate::metrics`.
//!
//! The port faces the internet, so a callback that fails the `AppKey`/`Sign` check (or whose
//! body cannot be read as the contract's form) costs little: it is stored as a short excerpt
//! ([`REJECTED_STORED_BYTES`] in all, cut on a char boundary and marked), and each source
//! address may have only `rejected_burst` of them stored, then `rejected_per_minute`; beyond
//! that it is answered 429 and only counted. A correctly signed callback is never limited or
//! cut, whatever else is wrong with it.
//!
//! Split by what it does: `sign` (the contract's `Sign` and Beijing time stamps), `verify` (the
//! checks), `limit` (the per-address limit), `router` (state, routes, `/healthz`, `/metrics`,
//! serving) and `handler` (a callback from body to reply).

mod handler;
mod limit;
mod router;
mod sign;
mod verify;

pub use handler::{reply_body, REJECTED_STORED_BYTES};
pub use limit::RejectLimiter;
pub use router::{build_router, router, serve, serve_router, Receiver, CALLBACK_PATH};
pub use sign::{beijing_timestamp, parse_beijing_timestamp, sign_fields};
pub use verify::{excerpt, verify_callback, Rejection, VerifiedCallback};

//! What operators tell the running daemons through the database: paused jobs
//! (`haier_job_pauses`, `pauses.rs`) and run-now requests (`haier_job_triggers`, `triggers.rs`).
//! It owns those tables and every statement on them, and the name an operator is recorded under
//! (`operator.rs`). The daemon's side of obeying them is `crate::scheduler`'s; the commands are
//! `crate::cli`'s.

pub mod operator;
pub mod pauses;
pub mod triggers;

pub use operator::operator_name;

//! Loading and validating `jobs.toml`: figment layering, secrets, job definitions. The raw shape
//! of the file (`raw.rs`) is resolved into the model (`model.rs` for the sections, `jobs.rs` for
//! the jobs) by `resolve.rs`, `clients.rs` and `jobs.rs`; `load.rs` reads the file and places
//! every error at its key and line.

mod clients;
mod jobs;
pub mod limits;
mod live;
mod load;
mod model;
mod raw;
mod resolve;
mod schedule;
pub mod secret;

pub use jobs::*;
pub use live::LiveConfig;
pub use load::{load, load_with_env, locate, ConfigError, DEFAULT_CONFIG_PATH};
pub use model::*;
pub use schedule::Schedule;
pub use secret::Secret;

//! Loading and validating `jobs.toml`: figment layering, secrets, job definitions.

pub mod limits;
mod load;
mod model;
mod schedule;
pub mod secret;

pub use load::{load, load_with_env, locate, ConfigError, DEFAULT_CONFIG_PATH};
pub use model::*;
pub use schedule::Schedule;
pub use secret::Secret;

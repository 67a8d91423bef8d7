//! Loading and validating `jobs.toml`: figment layering, secrets, job definitions.

pub mod secret;

pub use secret::Secret;

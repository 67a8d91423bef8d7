//! `haier-sync check-config`: validates the configuration file without touching anything.

use crate::config;
use std::path::Path;

/// Prints a summary and returns 0, or prints the first problem (file, key, line) and returns 2.
pub fn run(path: &Path) -> i32 {
    match config::load(path) {
        Ok(config) => {
            let enabled = config.jobs.values().filter(|j| j.enabled()).count();
            println!(
                "{}: OK ({} jobs, {} enabled; database: {})",
                path.display(),
                config.jobs.len(),
                enabled,
                match config.database.url {
                    config::DatabaseUrl::Sqlite(ref p) => format!("sqlite {p}"),
                    config::DatabaseUrl::Postgres(_) => "postgres".to_owned(),
                }
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            super::EXIT_USAGE
        }
    }
}

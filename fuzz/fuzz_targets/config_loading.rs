//! Any bytes as `jobs.toml`: loading must return the config or an error naming the file, never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write as _;

fuzz_target!(|text: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(text).is_err() {
        return;
    }
    if let Err(error) = haier_sync::config::load_with_env(file.path(), Vec::new()) {
        assert!(
            error.to_string().contains(&file.path().display().to_string()),
            "the error does not name the file: {error}"
        );
    }
});

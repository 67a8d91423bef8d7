//! Where one-shot commands log: plain lines (no colour codes) on a redirected stderr, and the
//! `[log] directory` files when it is set.

use crate::support::{command, spawn_app_with, Options, TestApp};
use haier_sync::config::RetryPolicy;
use std::path::Path;
use std::process::Output;

/// An app whose openplat refuses every connection at once (port 1), so `run-job` fails fast and
/// logs an error, and whose `[log]` writes info lines to `<dir>/logs`.
async fn failing_app() -> TestApp {
    let mut options = Options::default()
        .shipped_jobs()
        .openplat_url("http://127.0.0.1:1")
        .set("log.directory", "\"logs\"");
    options.haier.retry = Some(RetryPolicy {
        max_attempts: 1,
        backoff_base_ms: 5,
        backoff_cap_ms: 50,
    });
    spawn_app_with(options).await
}

fn run_job(config: &Path, envs: &[(&str, &str)]) -> Output {
    let mut command = command(config, &["run-job", "products"]);
    command.env_remove("NO_COLOR");
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("run haier-sync")
}

/// Everything the commands wrote to the log directory.
fn command_log(dir: &Path) -> String {
    let mut text = String::new();
    let Ok(entries) = std::fs::read_dir(dir.join("logs")) else {
        return text;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            name.starts_with("haier-sync-commands.log"),
            "a command wrote {name}, not its own file"
        );
        text.push_str(&std::fs::read_to_string(entry.path()).unwrap());
    }
    text
}

#[tokio::test]
async fn run_job_writes_no_colour_codes_into_a_redirected_stderr() {
    let app = failing_app().await;
    let config = app.config_path();
    for envs in [&[][..], &[("RUST_LOG", "info")][..]] {
        let out = run_job(config, envs);
        assert_eq!(out.status.code(), Some(1), "the run fails: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("job failed"), "{envs:?}: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "{envs:?}: colour codes in {stderr:?}");
    }
}

#[tokio::test]
async fn one_shot_commands_write_their_lines_to_the_log_directory() {
    let app = failing_app().await;
    let (config, dir) = (app.config_path(), app.dir());
    let out = run_job(config, &[]);
    assert_eq!(out.status.code(), Some(1), "the run fails: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("job started"), "stderr stays at warn: {stderr}");

    // The file gets `[log] level` (info): the start and the failure, without colour codes.
    let log = command_log(dir);
    assert!(log.contains("job started"), "{log}");
    assert!(log.contains("job failed"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in the file: {log:?}");

    // A folder the command may not create is reported, and the command still runs.
    std::fs::remove_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs"), "a file where the folder should be").unwrap();
    let out = command(config, &["status"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: Failed to create the log directory logs")
            && stderr.contains("this command logs to stderr only"),
        "{stderr}"
    );
}

//! `systemd/jobs.example.toml` stays true: it loads, and it names every key the loader knows.

use haier_sync::config::{self, CatchUp, DatabaseUrl, JobKind, Overlap};

const EXAMPLE: &str = include_str!("../../systemd/jobs.example.toml");
const LOADER: &str = include_str!("../../src/config/raw.rs");
const UNIT: &str = include_str!("../../systemd/haier-sync.service");

/// The credential files the example's `*_file` keys name, as the unit's LoadCredential= provides them.
const CREDENTIALS: [&str; 5] = [
    "haier-client-secret",
    "haier-password",
    "ylh-client-password",
    "ylh-password",
    "callback-secret",
];

#[test]
fn the_example_config_loads_with_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    for name in CREDENTIALS {
        std::fs::write(dir.path().join(name), format!("secret-of-{name}\n")).unwrap();
    }
    let config = config::load_with_env(&path, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.database.url,
        DatabaseUrl::Sqlite("/var/lib/haier-sync/haier-sync.db".into())
    );
    assert_eq!(
        config.haier.client_secret.expose(),
        "secret-of-haier-client-secret"
    );
    assert_eq!(config.callback.secret.expose(), "secret-of-callback-secret");
    assert_eq!(config.haier.seller_password.expose(), "secret-of-haier-password");
    let kinds: Vec<JobKind> = config.jobs.values().map(|j| j.kind()).collect();
    for kind in JobKind::ALL {
        assert!(kinds.contains(&kind), "the example has no {kind} job");
    }
    // The defaults it states are the loader's.
    let stock = config.jobs["stock"].as_sync().unwrap();
    assert_eq!(
        (stock.overlap, stock.catch_up, stock.jitter_ms),
        (Overlap::Skip, CatchUp::Once, 0)
    );
    assert_eq!(
        config.jobs["logistics"]
            .as_sync()
            .unwrap()
            .schedule
            .as_ref()
            .unwrap()
            .normalized(),
        "0 */10 * * * *"
    );
    assert_eq!(config.daemon.shutdown_grace_ms, 20_000);
    assert_eq!(config.daemon.heartbeat_ms, 5_000);
    assert!(config.daemon.watch_config);

    // Without the credential files it names them.
    std::fs::remove_file(dir.path().join("ylh-password")).unwrap();
    let err = config::load_with_env(&path, Vec::new()).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("ylh.password_file"));
}

#[test]
fn the_unit_loads_every_credential_the_example_reads() {
    for name in CREDENTIALS {
        assert!(
            UNIT.contains(&format!(
                "LoadCredential={name}:/etc/haier-sync/credentials/{name}\n"
            )),
            "the unit does not load {name}"
        );
        assert!(
            EXAMPLE.contains(&format!("_file = \"{name}\"")),
            "the example does not read {name}"
        );
    }
}

/// The field names of the loader's `Raw*` structs: every key a `jobs.toml` may have.
fn loader_keys() -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut current: Option<String> = None;
    for line in LOADER.lines() {
        let line = line.trim();
        let line = line.strip_prefix("pub(super) ").unwrap_or(line);
        if let Some(rest) = line.strip_prefix("struct Raw") {
            current = rest.split_whitespace().next().map(|s| s.to_owned());
            continue;
        }
        if line == "}" {
            current = None;
            continue;
        }
        let Some(section) = &current else { continue };
        if line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        if let Some((name, _)) = line.split_once(':') {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.push((section.clone(), name.to_owned()));
            }
        }
    }
    keys
}

/// Whether `key` is written as a key (set or commented out, in a table or an inline table) or
/// documented at the start of a comment line.
fn documented(key: &str) -> bool {
    EXAMPLE.lines().any(|line| {
        let bare = line.trim_start_matches(['#', ' ']);
        let starts = bare
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with([' ', '=']));
        starts || line.contains(&format!("{{ {key} =")) || line.contains(&format!(", {key} ="))
    })
}

#[test]
fn the_example_config_names_every_key_the_loader_knows() {
    let keys = loader_keys();
    assert!(keys.len() > 60, "the loader's keys were not found: {keys:?}");
    let sections: Vec<&str> = keys
        .iter()
        .filter(|(s, _)| s == "Config")
        .map(|(_, k)| k.as_str())
        .collect();
    assert!(
        sections.contains(&"jobs") && sections.contains(&"daemon"),
        "{sections:?}"
    );
    for section in &sections {
        let header = if *section == "jobs" {
            "[jobs.".to_owned()
        } else {
            format!("[{section}]")
        };
        assert!(EXAMPLE.contains(&header), "the example has no {header} section");
    }
    let missing: Vec<String> = keys
        .iter()
        .filter(|(s, _)| s != "Config")
        .filter(|(_, k)| !documented(k))
        .map(|(s, k)| format!("{s}.{k}"))
        .collect();
    assert!(
        missing.is_empty(),
        "systemd/jobs.example.toml does not document: {missing:?}"
    );
}

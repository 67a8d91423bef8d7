//! Loading `jobs.toml`: layering (file, environment, secret files) and every validation error.

use crate::support::SHIPPED;
use haier_sync::config::{self, ConfigError, DatabaseUrl, JobKind, Overlap};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn load(text: &str, env: &[(&str, &str)]) -> Result<config::Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "jobs.toml", text);
    config::load_with_env(&path, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn error_of(text: &str) -> ConfigError {
    load(text, &[]).expect_err("the config should be refused")
}

/// The line (1-based) of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

#[test]
fn the_shipped_config_is_valid() {
    let config = load(SHIPPED, &[]).unwrap();
    assert_eq!(config.database.url, DatabaseUrl::Sqlite("haier-sync.db".into()));
    assert_eq!(config.haier.customer_code, "8800633175");
    assert_eq!(
        config.haier.token_url.as_str(),
        "http://127.0.0.1:18700/oauth2/auth"
    );
    assert_eq!(config.ylh.path_suffix, "-dev");
    let kinds: Vec<JobKind> = config.jobs.values().map(|j| j.kind()).collect();
    for kind in JobKind::ALL {
        assert!(kinds.contains(&kind), "shipped jobs.toml has no {kind} job");
    }
    let stock = config.jobs["stock"].as_sync().unwrap();
    assert_eq!(stock.county_codes, ["110101", "310101"]);
    assert_eq!(stock.overlap, Overlap::Skip);
    assert_eq!(
        config.jobs["prices"].as_sync().unwrap().county_codes,
        ["110101"],
        "defaults apply"
    );
}

#[test]
fn environment_variables_override_file_keys() {
    let config = load(
        SHIPPED,
        &[
            ("HAIER_SYNC_DATABASE__URL", "postgres://u@db.example/haier"),
            ("HAIER_SYNC_HAIER__CUSTOMER_CODE", "8800000001"),
            ("HAIER_SYNC_JOBS__STOCK__SCHEDULE", "*/7 * * * *"),
            ("HAIER_SYNC_JOBS__STOCK__ENABLED", "false"),
            ("HAIER_SYNC_CONFIG", "ignored.toml"),
            ("HAIER_SYNC_TEST_BACKEND", "postgres"),
        ],
    )
    .unwrap();
    assert!(matches!(config.database.url, DatabaseUrl::Postgres(_)));
    assert_eq!(config.haier.customer_code, "8800000001");
    assert_eq!(
        config.ylh.seller_code, "8800633175",
        "set in the file, not derived"
    );
    let stock = config.jobs["stock"].as_sync().unwrap();
    assert_eq!(stock.schedule.as_ref().unwrap().normalized(), "0 */7 * * * *");
    assert!(!stock.enabled);
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let err = load(SHIPPED, &[("HAIER_SYNC_JOBS__STOCK__SCHEDULE", "bogus")]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("jobs.stock.schedule"));
    assert_eq!(err.env_var.as_deref(), Some("HAIER_SYNC_JOBS__STOCK__SCHEDULE"));
    assert!(
        err.to_string().contains("HAIER_SYNC_JOBS__STOCK__SCHEDULE"),
        "{err}"
    );
}

#[test]
fn secrets_can_come_from_files_and_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "client_secret", "from-a-file\n");
    let text = SHIPPED.replace(
        "client_secret = \"demo-openplat-secret\"",
        "client_secret_file = \"client_secret\"",
    );
    let path = write(dir.path(), "jobs.toml", &text);
    let config = config::load_with_env(&path, Vec::new()).unwrap();
    assert_eq!(config.haier.client_secret.expose(), "from-a-file");
    let debug = format!("{config:?}");
    for secret in [
        "from-a-file",
        "demo-password",
        "demo-ylh-secret",
        "demo-user-password",
        "demo-callback-secret",
    ] {
        assert!(!debug.contains(secret), "Debug output shows {secret}");
    }
    // An environment override of a *_file key works too, and a missing file is named.
    let err = config::load_with_env(
        &path,
        vec![(
            "HAIER_SYNC_HAIER__CLIENT_SECRET_FILE".to_string(),
            "/nonexistent/secret".to_string(),
        )],
    )
    .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("haier.client_secret_file"));
    assert!(err.message.contains("/nonexistent/secret"), "{err}");
    assert!(!err.to_string().contains("from-a-file"));
}

#[test]
fn a_secret_given_twice_is_refused() {
    let text = SHIPPED.replace(
        "client_secret = \"demo-openplat-secret\"",
        "client_secret = \"x\"\nclient_secret_file = \"/run/secret\"",
    );
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("haier.client_secret_file"));
    assert_eq!(err.line, Some(line_of(&text, "client_secret_file")));
}

#[test]
fn a_bad_cron_names_file_key_and_line() {
    let text = SHIPPED.replace("schedule = \"0 */15 * * * *\"", "schedule = \"0 */15 * *\"");
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("jobs.stock.schedule"));
    assert_eq!(err.line, Some(line_of(&text, "0 */15 * *")));
    assert!(err.file.ends_with("jobs.toml"));
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("jobs.toml:{}: jobs.stock.schedule:", err.line.unwrap())),
        "{shown}"
    );
}

#[test]
fn the_database_wait_defaults_per_backend_and_is_bounded() {
    let config = load(SHIPPED, &[]).unwrap();
    assert_eq!(config.database.wait_ms, 10_000, "SQLite's busy timeout");
    let pg = SHIPPED.replace(
        "url = \"sqlite://haier-sync.db\"",
        "url = \"postgres://postgres@127.0.0.1/x\"",
    );
    assert_eq!(load(&pg, &[]).unwrap().database.wait_ms, 30_000);
    let short = SHIPPED.replace(
        "url = \"sqlite://haier-sync.db\"",
        "url = \"sqlite://haier-sync.db\"\nwait_ms = 500",
    );
    assert_eq!(load(&short, &[]).unwrap().database.wait_ms, 500);
    for bad in ["0", "99", "600001"] {
        let text = SHIPPED.replace(
            "url = \"sqlite://haier-sync.db\"",
            &format!("url = \"sqlite://haier-sync.db\"\nwait_ms = {bad}"),
        );
        let err = error_of(&text);
        assert_eq!(err.key.as_deref(), Some("database.wait_ms"));
        assert_eq!(err.line, Some(line_of(&text, "wait_ms")));
        assert!(
            err.to_string()
                .ends_with(&format!("must be from 100 to 600000 ms; got {bad}")),
            "{err}"
        );
    }
}

#[test]
fn an_unknown_kind_is_refused() {
    let text = SHIPPED.replace("kind = \"logistics\"", "kind = \"logistix\"");
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("jobs.logistics.kind"));
    assert_eq!(err.line, Some(line_of(&text, "logistix")));
    assert!(
        err.message.contains("order_outbox"),
        "lists the known kinds: {err}"
    );
}

#[test]
fn a_duplicate_key_is_refused_with_its_line() {
    let text = SHIPPED.replace("kind = \"prices\"", "kind = \"prices\"\nkind = \"stock\"");
    let err = error_of(&text);
    assert_eq!(err.line, Some(line_of(&text, "kind = \"prices\"") + 1));
    assert_eq!(err.key.as_deref(), Some("jobs.prices.kind"));
    assert!(err.message.contains("duplicate"), "{err}");
}

#[test]
fn a_missing_required_field_is_named() {
    let text = SHIPPED.replace("customer_code = \"8800633175\"\n", "");
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("haier.customer_code"));
    let section = text.lines().position(|l| l == "[haier]").unwrap() + 1;
    assert_eq!(err.line, Some(section), "points at the section");

    let text = SHIPPED.replace("kind = \"stock\"\n", "");
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("jobs.stock.kind"));

    let text = SHIPPED.replace("schedule = \"0 0 2 * * *\"          # 02:00 every day\n", "");
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("jobs.products.schedule"));
}

#[test]
fn other_bad_values_are_refused_with_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "url = \"sqlite://haier-sync.db\"",
            "url = \"mysql://x/y\"",
            "database.url",
        ),
        (
            "timezone = \"Asia/Shanghai\"",
            "timezone = \"Mars/Olympus\"",
            "defaults.timezone",
        ),
        (
            "county_codes = [\"110101\"]",
            "county_codes = [\"1101\"]",
            "defaults.county_codes",
        ),
        (
            "[jobs.orders]\nkind = \"order_outbox\"",
            "[jobs.orders]\nkind = \"order_outbox\"\nschedule = \"* * * * *\"",
            "jobs.orders.schedule",
        ),
        ("format = \"text\"", "format = \"xml\"", "log.format"),
        (
            "path_suffix = \"-dev\"",
            "path_suffix = \"-test\"",
            "ylh.path_suffix",
        ),
        (
            "listen = \"127.0.0.1:18701\"",
            "listen = \"localhost\"",
            "callback.listen",
        ),
        (
            "rate_limit = { per_second = 50, burst = 10 }\n\n[ylh]",
            "rate_limit = { per_second = 0, burst = 10 }\n\n[ylh]",
            "haier.rate_limit.per_second",
        ),
        (
            "base_url = \"http://127.0.0.1:18700\"\nclient_id = \"demo-openplat-client\"",
            "base_url = \"ftp://x\"\nclient_id = \"demo-openplat-client\"",
            "haier.base_url",
        ),
        (
            "[jobs.stock]",
            "[jobs.stock]\noverlap = \"parallel\"",
            "jobs.stock.overlap",
        ),
        (
            "[jobs.stock]",
            "[jobs.stock]\ncatch_up = \"always\"",
            "jobs.stock.catch_up",
        ),
        (
            "[jobs.stock]",
            "[jobs.stock]\nshedule = \"* * * * *\"",
            "jobs.stock.shedule",
        ),
        (
            "[jobs.stock]",
            "[jobs.stock]\ntimezone = \"Nowhere\"",
            "jobs.stock.timezone",
        ),
        (
            "[jobs.stock]",
            "[jobs.stock]\nconcurrency = 0",
            "jobs.stock.concurrency",
        ),
        ("batch_size = 50", "batch_size = 0", "jobs.orders.batch_size"),
    ];
    for (from, to, key) in cases {
        assert!(SHIPPED.contains(from), "test case anchor missing: {from}");
        let text = SHIPPED.replacen(from, to, 1);
        let err = error_of(&text);
        assert_eq!(err.key.as_deref(), Some(*key), "{to}: {err}");
        assert!(err.line.is_some(), "{to}: no line in {err}");
    }
}

#[test]
fn environment_or_base_url_is_required_but_not_both() {
    let text = SHIPPED.replacen("base_url = \"http://127.0.0.1:18700\"\n", "", 1);
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("haier.environment"));
    let text = SHIPPED.replacen("[haier]\n", "[haier]\nenvironment = \"test\"\n", 1);
    let err = error_of(&text);
    assert_eq!(err.key.as_deref(), Some("haier.base_url"));
    let text = SHIPPED
        .replacen(
            "base_url = \"http://127.0.0.1:18700\"\n",
            "environment = \"prod\"\n",
            1,
        )
        .replacen(
            "base_url = \"http://127.0.0.1:18700\"\npath_suffix = \"-dev\"\n",
            "environment = \"pre\"\n",
            1,
        );
    let config = load(&text, &[]).unwrap();
    assert_eq!(
        config.haier.base_url.as_str(),
        "https://openplat-bj-aliyun.haier.net/"
    );
    assert_eq!(
        config.haier.token_url.as_str(),
        "https://openplat-bj-aliyun.haier.net/oauth2/auth"
    );
    assert_eq!(config.ylh.base_url.as_str(), "http://pre.yilihuo.com/");
    assert_eq!(config.ylh.path_suffix, "-pre");
}

#[test]
fn defaults_fill_what_is_left_out() {
    let text = SHIPPED
        .replace("send_to_code = \"8800633175\"\n", "")
        .replace("seller_password = \"demo-password\"\n", "")
        .replace("seller_code = \"8800633175\"\n", "")
        .replace(
            "[defaults]\ntimezone = \"Asia/Shanghai\"\ncounty_codes = [\"110101\"]\n",
            "",
        );
    let config = load(&text, &[("HAIER_SYNC_HAIER__CUSTOMER_CODE", "8800000002")]).unwrap();
    assert_eq!(config.haier.send_to_code, "8800000002");
    assert_eq!(config.ylh.seller_code, "8800000002");
    assert_eq!(config.haier.seller_password.expose(), "demo-password");
    assert_eq!(config.defaults.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(
        config.jobs["prices"].as_sync().unwrap().county_codes,
        ["110101"],
        "the seed's default county"
    );
}

#[test]
fn a_missing_file_is_reported() {
    let err = config::load(Path::new("/nonexistent/jobs.toml")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/jobs.toml: cannot read"),
        "{err}"
    );
}

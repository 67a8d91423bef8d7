//! Reliability: bad configs. A table of bad `jobs.toml` files, each with the exact error expected
//! (file, key, line and message), secret files that are not secrets, the same refusals through
//! `check-config` and `run`, and a property test over arbitrary config text.

use crate::support::{command, SHIPPED};
use haier_sync::config::{self, ConfigError};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One bad config: the shipped `jobs.toml` with one edit, and the error it must give.
struct Case {
    /// Replaced, once, by `to`; it must occur in the shipped file.
    from: &'static str,
    to: &'static str,
    /// The dotted key the error names, if any.
    key: Option<&'static str>,
    /// The error's line: the first line of the edited file containing this text (`None`: no line).
    at: Option<&'static str>,
    /// The exact message after `file:line: key: `.
    message: &'static str,
}

const fn case(
    from: &'static str,
    to: &'static str,
    key: Option<&'static str>,
    at: Option<&'static str>,
    message: &'static str,
) -> Case {
    Case {
        from,
        to,
        key,
        at,
        message,
    }
}

/// An anchor and the same anchor with a line added after it.
const STOCK: &str = "[jobs.stock]\n";
const ORDERS: &str = "[jobs.orders]\n";
const HAIER: &str = "[haier]\n";
const YLH: &str = "[ylh]\n";
const CALLBACK: &str = "[callback]\n";
const LOG: &str = "[log]\n";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // ---- TOML syntax and shape ----
    case("kind = \"prices\"", "kind = \"prices", Some("jobs.prices.kind"), Some("kind = \"prices"),
        "invalid TOML: invalid basic string"),
    case("kind = \"prices\"", "kind = \"prices\"\nkind = \"stock\"", Some("jobs.prices.kind"), Some("kind = \"stock\""),
        "invalid TOML: duplicate key `kind` in table `jobs.prices`"),
    case("[jobs.logistics]\n", "[jobs.stock]\n", Some("jobs.stock"), Some("[jobs.stock]\nkind = \"logistics\""),
        "invalid TOML: invalid table header\nduplicate key `stock` in table `jobs`"),
    case("[database]", "[databse]", Some("databse"), Some("[databse]"),
        "unknown key `databse`; expected one of: database, haier, ylh, callback, log, defaults, daemon, retention, shop, admin, jobs"),
    case("client_secret = \"demo-openplat-secret\"", "client_secrt = \"demo-openplat-secret\"",
        Some("haier.client_secrt"), Some("client_secrt"),
        "unknown key `client_secrt`; expected one of: environment, base_url, token_url, client_id, client_secret, client_secret_file, customer_code, send_to_code, supplier_code, password, password_file, seller_password, seller_password_file, customer_password, customer_password_file, timeout_ms, rate_limit, retry, breaker"),
    case(STOCK, "[jobs.stock]\nshedule = \"* * * * *\"\n", Some("jobs.stock.shedule"), Some("shedule"),
        "unknown key `shedule`; expected one of: kind, schedule, timezone, enabled, timeout_ms, overlap, jitter_ms, catch_up, catch_up_within_ms, product_codes, county_codes, concurrency, poll_interval_ms, batch_size, max_attempts, lease_ms, confirm_within_ms"),
    case("rate_limit = { per_second = 50, burst = 10 }\n\n[ylh]", "rate_limit = { per_sec = 50 }\n\n[ylh]",
        Some("haier.rate_limit.per_sec"), Some("per_sec"),
        "unknown key `per_sec`; expected one of: per_second, burst"),
    case("timeout_ms = 15000", "timeout_ms = \"15000\"", Some("haier.timeout_ms"), Some("timeout_ms = \"15000\""),
        "expected a whole number from 1 to 600000 ms, found the text \"15000\""),
    case("timeout_ms = 15000", "timeout_ms = 1.5", Some("haier.timeout_ms"), Some("timeout_ms = 1.5"),
        "expected a whole number from 1 to 600000 ms, found the number 1.5"),
    case(STOCK, "[jobs.stock]\nenabled = \"yes\"\n", Some("jobs.stock.enabled"), Some("enabled"),
        "expected true or false, found the text \"yes\""),
    case("county_codes = [\"110101\", \"310101\"]", "county_codes = \"110101\"", Some("jobs.stock.county_codes"),
        Some("county_codes = \"110101\""), "expected a list like [\"a\", \"b\"], found the text \"110101\""),
    case("rate_limit = { per_second = 50, burst = 10 }\n\n[ylh]", "rate_limit = { per_second = -1 }\n\n[ylh]",
        Some("haier.rate_limit.per_second"), Some("per_second = -1"),
        "must be from 1 to 100000; got -1"),
    case("rate_limit = { per_second = 50, burst = 10 }\n\n[ylh]", "rate_limit = { per_second = 50, burst = 5000000000 }\n\n[ylh]",
        Some("haier.rate_limit.burst"), Some("burst = 5000000000"),
        "must be from 1 to 100000; got 5000000000"),
    case(HAIER, "[haier]\nretry = 5\n", Some("haier.retry"), Some("retry = 5"),
        "expected a table like { key = value }, found the number 5"),
    case(STOCK, "[[jobs.stock]]\n", Some("jobs.stock"), Some("[[jobs.stock]]"),
        "`[[jobs.stock]]` makes a list of tables; write the table as `[jobs.stock]`"),
    case(STOCK, "[jobs.stock]\njitter_ms = -5\n", Some("jobs.stock.jitter_ms"), Some("jitter_ms"),
        "must be from 0 to 86400000 ms; got -5"),
    case(STOCK, "[jobs.stock]\nproduct_codes = [\"A\", 1]\n", Some("jobs.stock.product_codes.1"), Some("product_codes"),
        "expected a string, found the number 1"),
    // ---- required keys and sections ----
    case("[ylh]\n", "[ylx]\n", Some("ylx"), Some("[ylx]"),
        "unknown key `ylx`; expected one of: database, haier, ylh, callback, log, defaults, daemon, retention, shop, admin, jobs"),
    case("customer_code = \"8800633175\"\n", "", Some("haier.customer_code"), Some("[haier]\nbase_url"), "this key is required"),
    case("app_key = \"demo-app-key\"\n", "", Some("callback.app_key"), Some("[callback]\n"), "this key is required"),
    case("kind = \"stock\"\n", "", Some("jobs.stock.kind"), Some("[jobs.stock]"), "this key is required"),
    case("schedule = \"0 */15 * * * *\"", "", Some("jobs.stock.schedule"), Some("[jobs.stock]"), "this key is required"),
    case("client_id = \"demo-openplat-client\"", "client_id = \"\"", Some("haier.client_id"), Some("client_id = \"\""),
        "must not be empty"),
    case("shop_name = \"Demo Shop\"", "shop_name = \"   \"", Some("ylh.shop_name"), Some("shop_name"), "must not be empty"),
    case("send_to_code = \"8800633175\"", "send_to_code = \"\"", Some("haier.send_to_code"), Some("send_to_code"),
        "must not be empty (leave the key out for its default)"),
    case("seller_code = \"8800633175\"", "seller_code = \" \"", Some("ylh.seller_code"), Some("seller_code"),
        "must not be empty (leave the key out for its default)"),
    case(STOCK, "[jobs.stock]\nproduct_codes = [\"A001\", \"\"]\n", Some("jobs.stock.product_codes"), Some("product_codes"),
        "a product code must not be empty"),
    case("[jobs.stock]\nkind = \"stock\"", "[jobs]\nstock.kind = \"stock\"", Some("jobs.county_codes"), Some("county_codes = [\"110101\", \"310101\"]"),
        "expected a table like { key = value }, found a list"),
    // ---- URLs, addresses, zones, names ----
    case("url = \"sqlite://haier-sync.db\"", "url = \"mysql://db/haier\"", Some("database.url"), Some("mysql://"),
        "unknown database scheme `mysql://`; expected sqlite:// or postgres://"),
    case("url = \"sqlite://haier-sync.db\"", "url = \"sqlite://\"", Some("database.url"), Some("url = \"sqlite://\""),
        "`sqlite://` needs a file path, e.g. sqlite://haier-sync.db"),
    case("base_url = \"http://127.0.0.1:18700\"\nclient_id = \"demo-openplat-client\"",
        "base_url = \"not a url\"\nclient_id = \"demo-openplat-client\"", Some("haier.base_url"), Some("not a url"),
        "`not a url` is not a URL: relative URL without a base"),
    case("base_url = \"http://127.0.0.1:18700\"\nclient_id = \"demo-openplat-client\"",
        "base_url = \"ftp://127.0.0.1\"\nclient_id = \"demo-openplat-client\"", Some("haier.base_url"), Some("ftp://"),
        "`ftp://127.0.0.1` must be an http:// or https:// URL"),
    case("base_url = \"http://127.0.0.1:18700\"\nclient_id = \"demo-openplat-client\"",
        "environment = \"staging\"\nclient_id = \"demo-openplat-client\"", Some("haier.environment"), Some("staging"),
        "unknown environment `staging`; expected test, stage or prod"),
    case(HAIER, "[haier]\nenvironment = \"test\"\n", Some("haier.base_url"), Some("base_url = \"http://127.0.0.1:18700\""),
        "set either `environment` or `base_url`, not both"),
    case("path_suffix = \"-dev\"", "path_suffix = \"-test\"", Some("ylh.path_suffix"), Some("-test"),
        "unknown path suffix `-test`; expected \"-dev\", \"-pre\" or \"\""),
    case("listen = \"127.0.0.1:18701\"", "listen = \"localhost:18701\"", Some("callback.listen"), Some("localhost"),
        "`localhost:18701` is not an address like 127.0.0.1:18701"),
    case("timezone = \"Asia/Shanghai\"", "timezone = \"Mars/Olympus\"", Some("defaults.timezone"), Some("Mars"),
        "unknown time zone `Mars/Olympus` (use an IANA name like Asia/Shanghai)"),
    case(STOCK, "[jobs.stock]\ntimezone = \"UTC+8\"\n", Some("jobs.stock.timezone"), Some("UTC+8"),
        "unknown time zone `UTC+8` (use an IANA name like Asia/Shanghai)"),
    case("county_codes = [\"110101\"]", "county_codes = [\"1101\"]", Some("defaults.county_codes"), Some("[\"1101\"]"),
        "`1101` is not a 6-digit county code like 110101"),
    case("format = \"text\"", "format = \"xml\"", Some("log.format"), Some("xml"), "unknown format `xml`; expected text or json"),
    case("level = \"info\"", "level = \"info,[\"", Some("log.level"), Some("info,["),
        "`info,[` is not a log level or filter (try info, debug, haier_sync=debug)"),
    case("kind = \"logistics\"", "kind = \"logistix\"", Some("jobs.logistics.kind"), Some("logistix"),
        "unknown kind `logistix`; expected one of: products, prices, stock, logistics, order_outbox"),
    case("[jobs.stock]\n", "[jobs.\"stock now\"]\n", Some("jobs.stock now"), Some("[jobs.\"stock now\"]"),
        "a job name uses only letters, digits, `_` and `-`"),
    case(STOCK, "[jobs.stock]\noverlap = \"parallel\"\n", Some("jobs.stock.overlap"), Some("parallel"),
        "unknown overlap `parallel`; expected skip or queue"),
    case(STOCK, "[jobs.stock]\ncatch_up = \"always\"\n", Some("jobs.stock.catch_up"), Some("always"),
        "unknown catch_up `always`; expected skip or once"),
    case(ORDERS, "[jobs.orders]\nschedule = \"* * * * *\"\n", Some("jobs.orders.schedule"), Some("schedule = \"* * * * *\""),
        "the order_outbox poller runs on `poll_interval_ms`, not a schedule"),
    // ---- schedules ----
    case("schedule = \"0 */15 * * * *\"", "schedule = \"0 0 0 30 2 *\"", Some("jobs.stock.schedule"), Some("0 0 0 30 2 *"),
        "`0 0 0 30 2 *` never fires: it names no time in the next 5 years (a day that does not exist, such as February 30?)"),
    case("schedule = \"0 */15 * * * *\"", "schedule = \"0 0 31 4,6 *\"", Some("jobs.stock.schedule"), Some("0 0 31 4,6 *"),
        "`0 0 31 4,6 *` never fires: it names no time in the next 5 years (a day that does not exist, such as February 30?)"),
    case("schedule = \"0 */15 * * * *\"", "schedule = \"@reboot\"", Some("jobs.stock.schedule"), Some("@reboot"),
        "`@reboot` is not supported: a job runs on a clock schedule, and `catch_up = \"once\"` already runs a job at start when its last fire time was missed; use a cron expression (6 fields with seconds, or 5 as in crontab) or one of @yearly, @annually, @monthly, @weekly, @daily, @hourly"),
    case("schedule = \"0 */15 * * * *\"", "schedule = \"@fortnightly\"", Some("jobs.stock.schedule"), Some("@fortnightly"),
        "unknown schedule macro `@fortnightly`; expected a cron expression (6 fields with seconds, or 5 as in crontab) or one of @yearly, @annually, @monthly, @weekly, @daily, @hourly"),
    case("schedule = \"0 */15 * * * *\"", "schedule = \"*/15 * * *\"", Some("jobs.stock.schedule"), Some("*/15 * * *"),
        "`*/15 * * *` has 4 fields; a schedule has 6 (sec min hour day month weekday) or 5 (crontab)"),
    case("schedule = \"0 */15 * * * *\"", "schedule = \"0 0 3 13 * FRI\"", Some("jobs.stock.schedule"), Some("13 * FRI"),
        "`0 0 3 13 * FRI` restricts both day-of-month and day-of-week; set one of them to `*`"),
    case("schedule = \"0 */15 * * * *\"", "schedule = \"0 61 * * * *\"", Some("jobs.stock.schedule"), Some("0 61"),
        "`0 61 * * * *` is not a valid cron expression: Component error: Number out of bounds."),
    // ---- numeric limits ----
    case("url = \"sqlite://haier-sync.db\"", "url = \"sqlite://haier-sync.db\"\nmax_connections = 0", Some("database.max_connections"),
        Some("max_connections"), "must be from 1 to 100; got 0"),
    case("timeout_ms = 15000", "timeout_ms = 0", Some("haier.timeout_ms"), Some("timeout_ms = 0"), "must be from 1 to 600000 ms; got 0"),
    case(YLH, "[ylh]\ntimeout_ms = 9223372036854775807\n", Some("ylh.timeout_ms"), Some("9223372036854775807"),
        "must be from 1 to 600000 ms; got 9223372036854775807"),
    case("rate_limit = { per_second = 50, burst = 10 }\n\n[ylh]", "rate_limit = { per_second = 0, burst = 10 }\n\n[ylh]",
        Some("haier.rate_limit.per_second"), Some("per_second = 0"), "must be from 1 to 100000; got 0"),
    case("rate_limit = { per_second = 50, burst = 10 }\n\n[callback]", "rate_limit = { per_second = 50, burst = 0 }\n\n[callback]",
        Some("ylh.rate_limit.burst"), Some("burst = 0"), "must be from 1 to 100000; got 0"),
    case(HAIER, "[haier]\nretry = { max_attempts = 0 }\n", Some("haier.retry.max_attempts"), Some("max_attempts = 0"),
        "must be from 1 to 100; got 0"),
    case(YLH, "[ylh]\nretry = { max_attempts = 1000 }\n", Some("ylh.retry.max_attempts"), Some("max_attempts = 1000"),
        "must be from 1 to 100; got 1000"),
    case(HAIER, "[haier]\nretry = { backoff_base_ms = 9223372036854775807, backoff_cap_ms = 9223372036854775807 }\n",
        Some("haier.retry.backoff_base_ms"), Some("backoff_base_ms"), "must be from 0 to 600000 ms; got 9223372036854775807"),
    case(HAIER, "[haier]\nretry = { backoff_base_ms = 500, backoff_cap_ms = 100 }\n", Some("haier.retry.backoff_cap_ms"),
        Some("backoff_cap_ms"), "must not be below backoff_base_ms"),
    case(HAIER, "[haier]\nbreaker = { failure_threshold = 0 }\n", Some("haier.breaker.failure_threshold"),
        Some("failure_threshold"), "must be from 1 to 1000000; got 0"),
    case(YLH, "[ylh]\nbreaker = { cool_down_ms = 0 }\n", Some("ylh.breaker.cool_down_ms"), Some("cool_down_ms"),
        "must be from 1 to 3600000 ms; got 0"),
    case(CALLBACK, "[callback]\nmax_body_bytes = 0\n", Some("callback.max_body_bytes"), Some("max_body_bytes"),
        "must be from 1024 to 16777216 bytes; got 0"),
    case(CALLBACK, "[callback]\nmax_body_bytes = 1073741824\n", Some("callback.max_body_bytes"), Some("max_body_bytes"),
        "must be from 1024 to 16777216 bytes; got 1073741824"),
    case(CALLBACK, "[callback]\nclock_skew_warn_secs = -1\n", Some("callback.clock_skew_warn_secs"), Some("clock_skew_warn_secs"),
        "must be from 1 to 604800 s; got -1"),
    case(CALLBACK, "[callback]\nclock_skew_warn_secs = 0\n", Some("callback.clock_skew_warn_secs"), Some("clock_skew_warn_secs"),
        "must be from 1 to 604800 s; got 0"),
    // The key it replaced is refused with the reason, whatever its value.
    case(CALLBACK, "[callback]\nmax_clock_skew_secs = 600\n", Some("callback.max_clock_skew_secs"), Some("max_clock_skew_secs"),
        "this key was replaced by clock_skew_warn_secs: a correctly signed callback is no longer refused for its TimeStamp (Haier retries a callback with the TimeStamp of its first try, and refusing a late confirm would leave a paid order unconfirmed), so the setting now only says beyond how many seconds a warning is logged; rename it to clock_skew_warn_secs"),
    case(LOG, "[shop]\nwebhook_url = \"https://shop.example/h\"\nsecret = \"s\"\ntimeout_ms = 5000\nlease_ms = 5000\n\n[log]\n",
        Some("shop.lease_ms"), Some("lease_ms = 5000"),
        "must be longer than timeout_ms (5000): a claim would run out while its POST is still waiting"),
    case(LOG, "[admin]\nlisten = \"0.0.0.0:18701\"\n\n[log]\n", Some("admin.listen"), Some("0.0.0.0:18701"),
        "`0.0.0.0:18701` is the address of callback.listen (127.0.0.1:18701): the status page is never served on the port that faces Haier; give admin.listen another port"),
    case(LOG, "[admin]\nlisten = \"localhost:18702\"\n\n[log]\n", Some("admin.listen"), Some("localhost:18702"),
        "`localhost:18702` is not an address like 127.0.0.1:18702"),
    case(LOG, "[admin]\nallow_actions = true\n\n[log]\n", Some("admin.allow_actions"), Some("allow_actions = true"),
        "allow_actions = true needs a token (set admin.token_file or [admin.tokens]): without one anybody who reaches the page could change state"),
    case(LOG, "[admin]\ntoken = \"  \"\n\n[log]\n", Some("admin.token"), Some("token = \"  \""),
        "must not be empty or only whitespace"),
    case(LOG, "[admin]\nlisten_on = \"127.0.0.1:18702\"\n\n[log]\n", Some("admin.listen_on"), Some("listen_on"),
        "unknown key `listen_on`; expected one of: listen, token, token_file, allow_actions, tokens"),
    case(LOG, "[shop]\nwebhook_url = \"ftp://shop.example/h\"\nsecret = \"s\"\n\n[log]\n", Some("shop.webhook_url"),
        Some("ftp://shop.example/h"), "`ftp://shop.example/h` must be an http:// or https:// URL"),
    case(LOG, "[daemon]\nheartbeat_ms = 10\n\n[log]\n", Some("daemon.heartbeat_ms"), Some("heartbeat_ms"),
        "must be from 100 to 600000 ms; got 10"),
    case(LOG, "[daemon]\nshutdown_grace_ms = 86400000\n\n[log]\n", Some("daemon.shutdown_grace_ms"), Some("shutdown_grace_ms"),
        "must be from 0 to 600000 ms; got 86400000"),
    case(STOCK, "[jobs.stock]\njitter_ms = 9223372036854775807\n", Some("jobs.stock.jitter_ms"), Some("jitter_ms"),
        "must be from 0 to 86400000 ms; got 9223372036854775807"),
    case("timeout_ms = 600000", "timeout_ms = 9223372036854775807", Some("jobs.stock.timeout_ms"), Some("9223372036854775807"),
        "must be from 1 to 86400000 ms; got 9223372036854775807 (leave it out for no timeout)"),
    case("timeout_ms = 600000", "timeout_ms = 0", Some("jobs.stock.timeout_ms"), Some("timeout_ms = 0"),
        "must be from 1 to 86400000 ms; got 0 (leave it out for no timeout)"),
    case(STOCK, "[jobs.stock]\nconcurrency = 0\n", Some("jobs.stock.concurrency"), Some("concurrency"),
        "must be from 1 to 1000; got 0"),
    case(STOCK, "[jobs.stock]\nconcurrency = 100000\n", Some("jobs.stock.concurrency"), Some("concurrency"),
        "must be from 1 to 1000; got 100000"),
    case("poll_interval_ms = 1000", "poll_interval_ms = 1", Some("jobs.orders.poll_interval_ms"), Some("poll_interval_ms"),
        "must be from 10 to 3600000 ms; got 1"),
    case("batch_size = 50", "batch_size = 0", Some("jobs.orders.batch_size"), Some("batch_size"), "must be from 1 to 1000; got 0"),
    case("max_attempts = 10", "max_attempts = 0", Some("jobs.orders.max_attempts"), Some("max_attempts"),
        "must be from 1 to 1000; got 0"),
    case("lease_ms = 120000", "lease_ms = 9223372036854775807", Some("jobs.orders.lease_ms"), Some("lease_ms"),
        "must be from 100 to 86400000 ms; got 9223372036854775807"),
    case("confirm_within_ms = 86400000", "confirm_within_ms = 1000", Some("jobs.orders.confirm_within_ms"),
        Some("confirm_within_ms"), "must be from 60000 to 2592000000 ms; got 1000"),
    // ---- secrets written in the file ----
    case("client_secret = \"demo-openplat-secret\"", "client_secret = \"   \"", Some("haier.client_secret"),
        Some("client_secret = \"   \""), "must not be empty or only whitespace"),
    case("seller_password = \"demo-password\"", "seller_password = \"\"", Some("haier.seller_password"),
        Some("seller_password"), "must not be empty or only whitespace"),
    case("secret = \"demo-callback-secret\"", "secret = \"\\t\"", Some("callback.secret"), Some("secret = \"\\t\""),
        "must not be empty or only whitespace"),
    case("client_secret = \"demo-openplat-secret\"", "client_secret_file = \"\"", Some("haier.client_secret_file"),
        Some("client_secret_file"), "must not be empty: name the file that holds the secret"),
    case("client_secret = \"demo-openplat-secret\"", "client_secret = \"x\"\nclient_secret_file = \"/run/secret\"",
        Some("haier.client_secret_file"), Some("client_secret_file"), "set either `client_secret` or `client_secret_file`, not both"),
];

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The 1-based line of the first line of `text` containing `needle` (which may span lines).
fn line_of(text: &str, needle: &str) -> usize {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` is not in the edited config"));
    text[..offset].matches('\n').count() + 1
}

/// Loads `text` as `<dir>/jobs.toml` (no environment overrides), on a thread with a deadline: a
/// loader that blocks fails the test instead of hanging it.
fn load_text(dir: &Path, text: &str) -> Result<config::Config, ConfigError> {
    let path = write(dir, "jobs.toml", text);
    load_with_deadline(path, Vec::new())
}

fn load_with_deadline(path: PathBuf, env: Vec<(String, String)>) -> Result<config::Config, ConfigError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(config::load_with_env(&path, env));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the config loader did not return within 20 s")
}

/// The error as `check-config` shows it: `file:line: key: message`.
fn expected_display(path: &Path, line: Option<usize>, key: Option<&str>, message: &str) -> String {
    let mut text = path.display().to_string();
    if let Some(line) = line {
        text.push_str(&format!(":{line}"));
    }
    if let Some(key) = key {
        text.push_str(&format!(": {key}"));
    }
    format!("{text}: {message}")
}

#[test]
fn every_bad_config_in_the_table_is_refused_with_its_file_key_line_and_message() {
    assert!(CASES.len() >= 40, "the table has {} rows", CASES.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.toml");
    let mut failures = Vec::new();
    for case in CASES {
        assert!(
            SHIPPED.contains(case.from),
            "anchor missing from jobs.toml: {:?}",
            case.from
        );
        let text = SHIPPED.replacen(case.from, case.to, 1);
        let line = case.at.map(|needle| line_of(&text, needle));
        let expected = expected_display(&path, line, case.key, case.message);
        match load_text(dir.path(), &text) {
            Ok(_) => failures.push(format!("{:?} was accepted; expected: {expected}", case.to)),
            Err(err) => {
                if err.file != path || err.to_string() != expected || err.env_var.is_some() {
                    failures.push(format!("{:?}\n   got: {err}\n  want: {expected}", case.to));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_loader_limits_accept_their_own_bounds() {
    // Each bound itself is allowed, so the stated ranges are the real ones.
    let dir = tempfile::tempdir().unwrap();
    let text = SHIPPED
        .replacen(
            CALLBACK,
            "[callback]\nmax_body_bytes = 1024\nclock_skew_warn_secs = 604800\n",
            1,
        )
        .replacen(
            STOCK,
            "[jobs.stock]\njitter_ms = 86400000\nconcurrency = 1000\n",
            1,
        )
        .replacen("timeout_ms = 600000", "timeout_ms = 86400000", 1)
        .replacen("timeout_ms = 15000", "timeout_ms = 600000", 1)
        .replacen("lease_ms = 120000", "lease_ms = 100", 1)
        .replacen("poll_interval_ms = 1000", "poll_interval_ms = 10", 1)
        .replacen(
            LOG,
            "[daemon]\nheartbeat_ms = 100\nshutdown_grace_ms = 0\n\n[log]\n",
            1,
        )
        .replacen(
            HAIER,
            "[haier]\nretry = { max_attempts = 100, backoff_base_ms = 0, backoff_cap_ms = 3600000 }\n\
             breaker = { failure_threshold = 1000000, cool_down_ms = 3600000 }\n",
            1,
        );
    let config = load_text(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.callback.max_body_bytes, 1024);
    assert_eq!(config.callback.clock_skew_warn_secs, 604_800);
    assert_eq!(config.jobs["stock"].as_sync().unwrap().jitter_ms, 86_400_000);
    assert_eq!(
        config.jobs["stock"].as_sync().unwrap().timeout_ms,
        Some(86_400_000)
    );
    assert_eq!(config.jobs["orders"].as_outbox().unwrap().lease_ms, 100);
    assert_eq!(config.daemon.heartbeat_ms, 100);
    assert_eq!(config.haier.retry.max_attempts, 100);
    assert_eq!(config.haier.breaker.failure_threshold, 1_000_000);
}

#[test]
fn the_example_config_and_the_readme_state_every_limit() {
    const EXAMPLE: &str = include_str!("../../systemd/jobs.example.toml");
    const README: &str = include_str!("../../README.md");
    for (keys, limit) in config::limits::ALL {
        let range = format!("{} to {}", limit.min, limit.max);
        assert!(
            EXAMPLE.contains(&range),
            "the example does not state {keys}: {range}"
        );
        assert!(
            README.contains(&range),
            "the README does not state {keys}: {range}"
        );
    }
    let secret_max = config::limits::SECRET_FILE_MAX_BYTES.to_string();
    assert!(EXAMPLE.contains(&secret_max) && README.contains(&secret_max));
}

#[test]
fn an_environment_override_out_of_range_names_the_variable_and_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "jobs.toml", SHIPPED);
    let err = load_with_deadline(
        path.clone(),
        vec![("HAIER_SYNC_CALLBACK__MAX_BODY_BYTES".into(), "0".into())],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: callback.max_body_bytes (from environment variable HAIER_SYNC_CALLBACK__MAX_BODY_BYTES): \
             must be from 1024 to 16777216 bytes; got 0",
            path.display()
        )
    );
    let err = load_with_deadline(
        path.clone(),
        vec![("HAIER_SYNC_JOBS__STOCK__SCHEDULE".into(), "0 0 0 30 2 *".into())],
    )
    .unwrap_err();
    assert_eq!(err.env_var.as_deref(), Some("HAIER_SYNC_JOBS__STOCK__SCHEDULE"));
    assert!(err.message.contains("never fires"), "{err}");
}

// ---- secret files ----

/// What the `client_secret_file` of the case names.
enum SecretFile {
    Missing,
    Fifo,
    Directory,
    DevZero,
    Contents(Vec<u8>),
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Sets up the secret file in `dir` and returns the config text that reads it.
fn config_reading(dir: &Path, secret: &SecretFile) -> (String, PathBuf) {
    let path = match secret {
        SecretFile::DevZero => PathBuf::from("/dev/zero"),
        _ => dir.join("client_secret"),
    };
    match secret {
        SecretFile::Missing | SecretFile::DevZero => {}
        SecretFile::Fifo => mkfifo(&path),
        SecretFile::Directory => std::fs::create_dir(&path).unwrap(),
        SecretFile::Contents(bytes) => std::fs::write(&path, bytes).unwrap(),
    }
    let text = SHIPPED.replacen(
        "client_secret = \"demo-openplat-secret\"",
        &format!("client_secret_file = \"{}\"", path.display()),
        1,
    );
    (text, path)
}

#[test]
fn secret_files_that_are_not_small_regular_files_are_refused_at_once() {
    let cases: Vec<(SecretFile, &str)> = vec![
        (
            SecretFile::Missing,
            "cannot read secret file {path}: No such file or directory (os error 2)",
        ),
        (
            SecretFile::Fifo,
            "secret file {path} is a FIFO (named pipe), not a regular file",
        ),
        (
            SecretFile::Directory,
            "secret file {path} is a directory, not a regular file",
        ),
        (
            SecretFile::DevZero,
            "secret file {path} is a character device, not a regular file",
        ),
        (
            SecretFile::Contents(vec![b'x'; 64 * 1024 + 1]),
            "secret file {path} is larger than 65536 bytes; a secret is one line",
        ),
        (
            SecretFile::Contents(Vec::new()),
            "secret file {path} is empty or holds only whitespace",
        ),
        (
            SecretFile::Contents(b"\n".to_vec()),
            "secret file {path} is empty or holds only whitespace",
        ),
        (
            SecretFile::Contents(b"   \t \r\n".to_vec()),
            "secret file {path} is empty or holds only whitespace",
        ),
        (
            SecretFile::Contents(vec![0xff, 0xfe, b'\n']),
            "secret file {path} is not UTF-8 text",
        ),
    ];
    for (secret, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (text, secret_path) = config_reading(dir.path(), &secret);
        let started = Instant::now();
        let err = load_text(dir.path(), &text).expect_err(message);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{message}: took {:?}",
            started.elapsed()
        );
        let expected = expected_display(
            &dir.path().join("jobs.toml"),
            Some(line_of(&text, "client_secret_file")),
            Some("haier.client_secret_file"),
            &message.replace("{path}", &secret_path.display().to_string()),
        );
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn a_secret_file_of_exactly_64_kib_with_a_newline_trimmed_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![b's'; 64 * 1024 - 1];
    bytes.push(b'\n');
    let (text, _) = config_reading(dir.path(), &SecretFile::Contents(bytes));
    let config = load_text(dir.path(), &text).unwrap();
    assert_eq!(config.haier.client_secret.expose().len(), 64 * 1024 - 1);
    // Inner and leading spaces are part of a secret; only the trailing newline goes.
    let (text, _) = config_reading(dir.path(), &SecretFile::Contents(b" a b \r\n".to_vec()));
    std::fs::write(dir.path().join("client_secret"), b" a b \r\n").unwrap();
    let config = load_text(dir.path(), &text).unwrap();
    assert_eq!(config.haier.client_secret.expose(), " a b ");
}

#[test]
fn a_config_file_that_never_ends_is_refused_after_a_mebibyte() {
    let err = load_with_deadline(PathBuf::from("/dev/zero"), Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/dev/zero: the config file is larger than 1048576 bytes"
    );
}

// ---- the same refusals through the commands ----

fn haier_sync(config: &Path, args: &[&str]) -> Output {
    let mut child = command(config, args)
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run haier-sync");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("wait for haier-sync").is_some() {
            return child.wait_with_output().expect("read haier-sync's output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("haier-sync {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn check_config_and_run_exit_2_on_a_config_that_would_break_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "jobs.toml",
        &SHIPPED.replacen(CALLBACK, "[callback]\nmax_body_bytes = 0\n", 1),
    );
    let line = line_of(&std::fs::read_to_string(&config).unwrap(), "max_body_bytes");
    for command in [&["check-config"][..], &["run"][..]] {
        let out = haier_sync(&config, command);
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{}:{line}: callback.max_body_bytes: must be from 1024 to 16777216 bytes; got 0",
                config.display()
            )),
            "{command:?}: {stderr}"
        );
    }
    assert!(
        !dir.path().join("haier-sync.db").exists(),
        "run refused before opening the database"
    );
}

#[test]
fn check_config_and_run_refuse_a_fifo_secret_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let (text, fifo) = config_reading(dir.path(), &SecretFile::Fifo);
    let config = write(dir.path(), "jobs.toml", &text);
    for command in [&["check-config"][..], &["run"][..]] {
        let started = Instant::now();
        let out = haier_sync(&config, command);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{command:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "secret file {} is a FIFO (named pipe), not a regular file",
                fifo.display()
            )),
            "{command:?}: {stderr}"
        );
    }
}

#[test]
fn a_database_file_that_cannot_be_opened_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("haier-sync.db");
    let config = write(
        dir.path(),
        "jobs.toml",
        &SHIPPED.replacen(
            "sqlite://haier-sync.db",
            &format!("sqlite://{}", missing.display()),
            1,
        ),
    );
    let out = haier_sync(&config, &["migrate"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: Failed to open the SQLite database file {} (the folder {} does not exist): unable to open database file",
            missing.display(),
            missing.parent().unwrap().display()
        )),
        "{stderr}"
    );
}

// ---- arbitrary config text ----

/// Checks what every load must give: a config, or an error that names the file (and a line
/// inside it).
fn loads_or_names_the_file(dir: &Path, text: &str) -> Result<(), TestCaseError> {
    let path = dir.join("jobs.toml");
    match load_text(dir, text) {
        Ok(_) => Ok(()),
        Err(err) => {
            prop_assert_eq!(&err.file, &path);
            prop_assert!(
                err.to_string().starts_with(&path.display().to_string()),
                "{}",
                err
            );
            prop_assert!(!err.message.is_empty());
            if let Some(line) = err.line {
                let lines = text.split('\n').count();
                prop_assert!(line >= 1 && line <= lines, "line {} of {}: {}", line, lines, err);
            }
            for secret in [
                "demo-openplat-secret",
                "demo-password",
                "demo-ylh-secret",
                "demo-callback-secret",
            ] {
                prop_assert!(!err.to_string().contains(secret), "{}", err);
            }
            Ok(())
        }
    }
}

/// A TOML-ish value: the kinds of thing a person (or a bad template) writes after `=`.
fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(65_536)
        ]
        .prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,20}".prop_map(|s| format!("{s:?}")),
        "\\PC{0,12}".prop_map(|s| format!("\"{s}\"")),
        Just("\"0 0 0 30 2 *\"".to_owned()),
        Just("\"@reboot\"".to_owned()),
        Just("\"/dev/zero\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[\"110101\", 1]".to_owned()),
        Just("{ per_second = 0 }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_loader_and_errors_name_the_file(text in "\\PC{0,400}") {
        let dir = tempfile::tempdir().unwrap();
        loads_or_names_the_file(dir.path(), &text)?;
    }

    #[test]
    fn arbitrary_toml_like_lines_never_panic_the_loader(lines in proptest::collection::vec(
        prop_oneof![
            "\\[[a-z._\"]{0,16}\\]",
            ("[a-z_]{1,20}", value_text()).prop_map(|(k, v)| format!("{k} = {v}")),
            "[ -~]{0,40}",
        ],
        0..20,
    )) {
        let dir = tempfile::tempdir().unwrap();
        loads_or_names_the_file(dir.path(), &lines.join("\n"))?;
    }

    #[test]
    fn any_value_for_any_key_of_the_shipped_config_loads_or_is_refused_with_the_file(
        line_index in 0usize..200,
        value in value_text(),
        extra in proptest::option::of(("[a-z_]{1,24}", value_text())),
    ) {
        // Replace the value of one `key = value` line of the shipped file, and maybe add a key.
        let mut lines: Vec<String> = SHIPPED.lines().map(str::to_owned).collect();
        let keyed: Vec<usize> = (0..lines.len())
            .filter(|&i| !lines[i].starts_with('#') && lines[i].contains(" = "))
            .collect();
        let target = keyed[line_index % keyed.len()];
        let key = lines[target].split(" = ").next().unwrap_or_default().to_owned();
        lines[target] = format!("{key} = {value}");
        if let Some((extra_key, extra_value)) = extra {
            lines.insert(target + 1, format!("{extra_key} = {extra_value}"));
        }
        let dir = tempfile::tempdir().unwrap();
        loads_or_names_the_file(dir.path(), &lines.join("\n"))?;
    }
}

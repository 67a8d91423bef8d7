//! The one `jobs.toml` a test runs on: the shipped file, edited (with `toml_edit`) to point at the
//! test's database, simulator and callback port, with the clients and tables [`Options`] sets.

use super::app::{ClientSettings, Options};
use toml_edit::{value, DocumentMut, Item, Value};

/// The shipped `jobs.toml`, as users get it.
pub const SHIPPED: &str = include_str!("../../../jobs.toml");

/// Where the test's config points.
pub(super) struct Targets<'a> {
    pub database_url: &'a str,
    pub simulator_url: &'a str,
    pub callback_listen: &'a str,
}

/// The shipped file with `targets` and `options` applied.
pub(super) fn render(options: &Options, targets: &Targets<'_>) -> String {
    let mut doc: DocumentMut = SHIPPED.parse().expect("the shipped jobs.toml is TOML");
    doc["database"]["url"] = value(targets.database_url);
    let openplat = options.openplat_url.as_deref().unwrap_or(targets.simulator_url);
    doc["haier"]["base_url"] = value(openplat);
    doc["ylh"]["base_url"] = value(targets.simulator_url);
    set_client(&mut doc, "haier", &options.haier);
    set_client(&mut doc, "ylh", &options.ylh);
    doc["callback"]["listen"] = value(targets.callback_listen);
    if !options.shipped_jobs {
        doc.remove("jobs").expect("the shipped config has jobs");
    } else if options.orders_job.is_some() {
        doc["jobs"]
            .as_table_mut()
            .expect("[jobs] is a table")
            .remove("orders");
    }
    for (key, text) in &options.settings {
        let (table, name) = key
            .split_once('.')
            .unwrap_or_else(|| panic!("a setting names its table: {key}"));
        doc[table][name] = inline(text);
    }
    let mut text = doc.to_string();
    if let Some(job) = &options.orders_job {
        text.push('\n');
        text.push_str(&job.toml());
    }
    if !options.extra_toml.is_empty() {
        text.push('\n');
        text.push_str(&options.extra_toml);
        text.push('\n');
    }
    text
}

fn set_client(doc: &mut DocumentMut, system: &str, settings: &ClientSettings) {
    if let Some(timeout_ms) = settings.timeout_ms {
        doc[system]["timeout_ms"] = value(timeout_ms as i64);
    }
    if let Some(limit) = &settings.rate_limit {
        doc[system]["rate_limit"] = inline(&format!(
            "{{ per_second = {}, burst = {} }}",
            limit.per_second, limit.burst
        ));
    }
    if let Some(retry) = &settings.retry {
        doc[system]["retry"] = inline(&format!(
            "{{ max_attempts = {}, backoff_base_ms = {}, backoff_cap_ms = {} }}",
            retry.max_attempts, retry.backoff_base_ms, retry.backoff_cap_ms
        ));
    }
    if let Some(breaker) = &settings.breaker {
        doc[system]["breaker"] = inline(&format!(
            "{{ failure_threshold = {}, cool_down_ms = {} }}",
            breaker.failure_threshold, breaker.cool_down_ms
        ));
    }
}

/// A TOML value written as text (`500`, `"logs"`, `{ a = 1 }`).
fn inline(text: &str) -> Item {
    Item::Value(
        text.parse::<Value>()
            .unwrap_or_else(|e| panic!("`{text}` is not a TOML value: {e}")),
    )
}

/// A `[daemon]` table with `daemon`'s keys, followed by `jobs` (`[jobs.*]` tables).
pub fn daemon_tables(daemon: &str, jobs: &str) -> String {
    format!("[daemon]\n{daemon}\n\n{jobs}\n")
}

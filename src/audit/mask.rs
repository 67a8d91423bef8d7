//! Secrets out of the audit trail: the config's secret values wherever they appear, the password
//! of a URL, and any value under a key that names a secret.

use crate::config::{Config, DatabaseUrl};
use serde_json::Value;

/// What a masked secret reads as.
const MASK: &str = "***";

/// Key names (lower case) whose values are secrets whatever they hold.
const SECRET_KEY_WORDS: &[&str] = &["password", "secret", "token", "credential", "sign"];

/// Secret values shorter than this are not searched for in text (they would mask ordinary words).
const SHORTEST_SECRET_SEARCHED: usize = 4;

/// The config's secret values: every client secret and password, the callback secret, and the
/// password of a PostgreSQL URL.
pub fn secret_values(config: &Config) -> Vec<String> {
    let mut values = vec![
        config.haier.client_secret.expose().to_owned(),
        config.haier.password.expose().to_owned(),
        config.haier.seller_password.expose().to_owned(),
        config.haier.customer_password.expose().to_owned(),
        config.ylh.client_password.expose().to_owned(),
        config.ylh.password.expose().to_owned(),
        config.callback.secret.expose().to_owned(),
    ];
    if let Some(admin) = &config.admin {
        values.extend(
            admin
                .credentials()
                .into_iter()
                .map(|(_, token)| token.expose().to_owned()),
        );
    }
    if let DatabaseUrl::Postgres(url) = &config.database.url {
        if let Some(password) = url::Url::parse(url.expose())
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
        {
            values.push(password);
        }
    }
    values.retain(|v| v.chars().count() >= SHORTEST_SECRET_SEARCHED);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
}

/// `arguments` with every secret masked.
pub fn mask_arguments(arguments: Value, secrets: &[String]) -> Value {
    match arguments {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let lower = key.to_lowercase();
                    let value = if SECRET_KEY_WORDS.iter().any(|w| lower.contains(w)) && !value.is_null() {
                        Value::String(MASK.to_owned())
                    } else {
                        mask_arguments(value, secrets)
                    };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| mask_arguments(v, secrets)).collect()),
        Value::String(text) => Value::String(mask_text(&text, secrets)),
        other => other,
    }
}

/// `text` with each secret value, and the password of a URL it is, masked.
pub fn mask_text(text: &str, secrets: &[String]) -> String {
    let mut masked = text.to_owned();
    for secret in secrets {
        if masked.contains(secret.as_str()) {
            masked = masked.replace(secret.as_str(), MASK);
        }
    }
    match url::Url::parse(&masked) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some(MASK));
            url.to_string()
        }
        _ => masked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_by_value_by_key_and_in_urls() {
        let secrets = vec!["hunter22".to_owned()];
        let masked = mask_arguments(
            json!({
                "reason": "the password is hunter22, really",
                "client_secret": "abc",
                "database": "postgres://haier:pw@db/haier",
                "list": ["x", "hunter22"],
                "job": "stock",
            }),
            &secrets,
        );
        assert_eq!(
            masked,
            json!({
                "reason": "the password is ***, really",
                "client_secret": "***",
                "database": "postgres://haier:***@db/haier",
                "list": ["x", "***"],
                "job": "stock",
            })
        );
    }
}

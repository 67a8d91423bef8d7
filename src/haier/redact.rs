//! Masks secrets before anything reaches a log line or an error: secret-named JSON keys, the
//! configured secrets and the tokens issued so far. It does not decide what gets logged.

use serde_json::Value;
use std::sync::RwLock;

/// What a masked value reads as.
const MASK: &str = "***";
/// How many issued tokens are remembered for scrubbing (older ones have long expired).
const REMEMBERED_TOKENS: usize = 16;
/// Secrets shorter than this are masked by key only: scrubbing "1" would garble every log line.
const MIN_SCRUBBED_LEN: usize = 3;
/// Longest response body kept in an error or a log line, in characters.
pub(super) const BODY_LIMIT: usize = 300;

pub(super) struct Redactor {
    configured: Vec<String>,
    tokens: RwLock<Vec<String>>,
}

/// True for keys whose values are secrets: passwords (`passWord`, `sellerPassword`, …),
/// secrets, tokens and `Authorization`.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret") || key.contains("token") || key == "authorization"
}

/// Cuts `text` to `limit` characters, marking the cut.
pub(super) fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

impl Redactor {
    pub(super) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            configured: secrets
                .into_iter()
                .filter(|s| s.len() >= MIN_SCRUBBED_LEN)
                .map(str::to_owned)
                .collect(),
            tokens: RwLock::new(Vec::new()),
        }
    }

    /// Remembers an issued token so that it is scrubbed wherever it shows up.
    pub(super) fn remember_token(&self, token: &str) {
        if token.len() < MIN_SCRUBBED_LEN {
            return;
        }
        let mut tokens = self.tokens.write().unwrap_or_else(|e| e.into_inner());
        if tokens.iter().any(|t| t == token) {
            return;
        }
        if tokens.len() == REMEMBERED_TOKENS {
            tokens.remove(0);
        }
        tokens.push(token.to_owned());
    }

    /// Replaces every configured secret and remembered token in `text`.
    pub(super) fn scrub(&self, text: &str) -> String {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_owned();
        for secret in self.configured.iter().chain(tokens.iter()) {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// A JSON value for a log line: secret-named keys masked, then scrubbed.
    pub(super) fn json(&self, value: &Value) -> String {
        let mut value = value.clone();
        mask_keys(&mut value);
        self.scrub(&value.to_string())
    }

    /// A reply body for a log line or an error: masked as JSON when it is JSON, scrubbed, and
    /// cut to `limit` characters.
    pub(super) fn body(&self, body: &[u8], limit: usize) -> String {
        let text = match serde_json::from_slice::<Value>(body) {
            Ok(value) => self.json(&value),
            Err(_) => self.scrub(String::from_utf8_lossy(body).trim()),
        };
        truncate(&text, limit)
    }
}

fn mask_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) && !v.is_null() {
                    *v = Value::String(MASK.to_owned());
                } else {
                    mask_keys(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_configured_secrets_and_tokens_are_masked() {
        let r = Redactor::new(["topsecret", "pw"]);
        r.remember_token("eyJtoken.abc");
        let body = json!({"customerCode":"880","passWord":"whatever","nested":[{"sellerPassword":"x",
            "customerPassword":"y","client_secret":"z","access_token":"a","note":"topsecret here",
            "echo":"Authorization: eyJtoken.abc"}],"token_type":null});
        let logged = r.json(&body);
        for leaked in [
            "whatever",
            "\"x\"",
            "\"y\"",
            "\"z\"",
            "\"a\"",
            "topsecret",
            "eyJtoken",
        ] {
            assert!(!logged.contains(leaked), "{leaked} leaked in {logged}");
        }
        assert!(logged.contains("\"customerCode\":\"880\""));
        // Too short to scrub in free text, but still masked by key.
        assert!(r.scrub("pw").contains("pw"));
    }

    #[test]
    fn bodies_are_scrubbed_and_cut() {
        let r = Redactor::new(["topsecret"]);
        let html = format!("<html>{} topsecret</html>", "x".repeat(400));
        let cut = r.body(html.as_bytes(), BODY_LIMIT);
        assert_eq!(cut.chars().count(), BODY_LIMIT + 1);
        assert!(cut.ends_with('…'));
        let short = r.body(b"oops topsecret", BODY_LIMIT);
        assert_eq!(short, "oops ***");
        assert_eq!(truncate("短い", 5), "短い");
    }

    #[test]
    fn only_the_newest_tokens_are_remembered() {
        let r = Redactor::new([]);
        for i in 0..(REMEMBERED_TOKENS + 2) {
            r.remember_token(&format!("token-{i:03}"));
        }
        assert_eq!(r.scrub("token-000"), "token-000");
        assert_eq!(r.scrub(&format!("token-{:03}", REMEMBERED_TOKENS + 1)), MASK);
    }
}

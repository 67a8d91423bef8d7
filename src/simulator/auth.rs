//! Tokens: issuing them in each system's format, checking the `Authorization` header of a
//! business call, expiry after the TTL, early revocation, and the test hook that expires them.
//! Checking a token call's credentials is the handlers' job (`openplat.rs`, `ylh.rs`).

use axum::http::{header::AUTHORIZATION, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many live tokens, expired ones are swept out on the next issue.
const SWEEP_ABOVE: usize = 4096;

/// The live tokens of one system.
#[derive(Debug)]
pub(crate) struct TokenStore {
    inner: Mutex<Tokens>,
}

#[derive(Debug)]
struct Tokens {
    /// Token → when it expires.
    expiry: HashMap<String, Instant>,
    /// When every token was last revoked (by `revoke_tokens_every_ms` or the test hook).
    last_revoked: Instant,
}

impl TokenStore {
    pub fn new(now: Instant) -> Self {
        Self {
            inner: Mutex::new(Tokens {
                expiry: HashMap::new(),
                last_revoked: now,
            }),
        }
    }

    /// Records `token` as valid for `ttl` from `now`.
    pub fn insert(&self, token: String, now: Instant, ttl: Duration, revoke_every_ms: Option<u64>) {
        let mut tokens = lock(&self.inner);
        tokens.revoke_if_due(now, revoke_every_ms);
        if tokens.expiry.len() > SWEEP_ABOVE {
            tokens.expiry.retain(|_, expires| *expires > now);
        }
        tokens.expiry.insert(token, now + ttl);
    }

    /// Whether `token` is live at `now`.
    pub fn is_valid(&self, token: &str, now: Instant, revoke_every_ms: Option<u64>) -> bool {
        let mut tokens = lock(&self.inner);
        tokens.revoke_if_due(now, revoke_every_ms);
        tokens.expiry.get(token).is_some_and(|expires| *expires > now)
    }

    /// Makes every token issued so far invalid.
    pub fn revoke_all(&self, now: Instant) {
        let mut tokens = lock(&self.inner);
        tokens.expiry.clear();
        tokens.last_revoked = now;
    }
}

impl Tokens {
    fn revoke_if_due(&mut self, now: Instant, revoke_every_ms: Option<u64>) {
        if let Some(every) = revoke_every_ms {
            if now.duration_since(self.last_revoked) >= Duration::from_millis(every) {
                self.expiry.clear();
                self.last_revoked = now;
            }
        }
    }
}

/// Locks a mutex, going on with the data if a panicking holder poisoned it (every holder keeps
/// the data consistent at each step, so it is still good).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A JWT-shaped openplat token (header, claims, random signature; nobody verifies it).
pub(crate) fn new_openplat_token(client_id: &str, issued_at_unix: i64, expires_at_unix: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "sub": client_id,
        "iat": issued_at_unix,
        "exp": expires_at_unix,
        "jti": random_hex(8),
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut signature = [0u8; 32];
    rand::rng().fill(&mut signature);
    format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A UUID-shaped token, as Spring's OAuth server hands out.
pub(crate) fn new_uuid_token() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// The openplat token of a call: the raw `Authorization` value (no scheme).
pub(crate) fn openplat_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    (!value.is_empty() && !value.contains(' ')).then_some(value)
}

/// The YLH token of a call: `Authorization: bearer <token>` (the scheme in any case).
pub(crate) fn ylh_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `Authorization: Basic base64(id:password)` → (id, password).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, password) = text.split_once(':')?;
    Some((id.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_expire_after_their_ttl() {
        let start = Instant::now();
        let store = TokenStore::new(start);
        store.insert("t".into(), start, Duration::from_secs(10), None);
        assert!(store.is_valid("t", start + Duration::from_secs(9), None));
        assert!(!store.is_valid("t", start + Duration::from_secs(10), None));
        assert!(!store.is_valid("other", start, None));
    }

    #[test]
    fn revocation_makes_older_tokens_bad_early() {
        let start = Instant::now();
        let store = TokenStore::new(start);
        store.insert(
            "old".into(),
            start + Duration::from_millis(10),
            Duration::from_secs(60),
            Some(100),
        );
        assert!(store.is_valid("old", start + Duration::from_millis(50), Some(100)));
        assert!(!store.is_valid("old", start + Duration::from_millis(100), Some(100)));
        store.insert(
            "new".into(),
            start + Duration::from_millis(120),
            Duration::from_secs(60),
            Some(100),
        );
        assert!(store.is_valid("new", start + Duration::from_millis(150), Some(100)));
        store.revoke_all(start + Duration::from_millis(160));
        assert!(!store.is_valid("new", start + Duration::from_millis(161), None));
    }

    #[test]
    fn authorization_headers_are_read_per_system() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("abc.def.ghi"));
        assert_eq!(openplat_token(&headers), Some("abc.def.ghi"));
        assert_eq!(ylh_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer 1234"));
        assert_eq!(openplat_token(&headers), None);
        assert_eq!(ylh_token(&headers), Some("1234"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic ZGVtbzpzM2NyZXQ="));
        assert_eq!(
            basic_credentials(&headers),
            Some(("demo".into(), "s3cret".into()))
        );
    }

    #[test]
    fn token_formats_look_real() {
        let jwt = new_openplat_token("client", 1, 2);
        assert_eq!(jwt.split('.').count(), 3);
        let uuid = new_uuid_token();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.matches('-').count(), 4);
    }
}

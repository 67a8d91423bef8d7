//! Both logins and their token caches: openplat's client-credentials token (raw `Authorization`,
//! `/oauth2/auth` falling back to `/oauth2/token`) and YLH's password-grant token (Basic client
//! auth, `system-name`, `Authorization: bearer …`). A token is refreshed before it expires, and
//! when many callers find it stale at once only one token request goes out. Business calls are
//! not made here.

use super::call::Reply;
use super::client::Inner;
use super::error::HaierError;
use super::paths::{TOKEN_FALLBACK_PATH, TOKEN_PATH};
use super::stats::Operation;
use super::types::System;
use super::wire::{self, OpenplatTokenRequest, YLH_SYSTEM_NAME};
use crate::config::Secret;
use reqwest::header::HeaderValue;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use url::Url;

/// Every token request gives up after this long.
pub(super) const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is refreshed when this share of its life is left (10%).
const REFRESH_MARGIN_DIVISOR: u32 = 10;
/// The life assumed for a token whose reply names none.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A token ready to send, as its `Authorization` header value (marked sensitive, so it never
/// shows in a `Debug` print).
#[derive(Clone)]
pub(super) struct Token {
    header: HeaderValue,
    generation: u64,
}

impl Token {
    pub(super) fn header(&self) -> &HeaderValue {
        &self.header
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(#{}, ***)", self.generation)
    }
}

/// A token as its endpoint issued it.
pub(super) struct IssuedToken {
    pub header: HeaderValue,
    pub lifetime: Duration,
}

struct Cached {
    token: Token,
    refresh_at: Instant,
}

#[derive(Default)]
struct Slot {
    current: Option<Cached>,
    /// Token requests finished so far (a waiter compares it to see whether one ran meanwhile).
    fetches: u64,
    /// How the last token request failed, handed to the callers that waited for it.
    last_error: Option<HaierError>,
}

/// The cached token of one system, with single-flight refresh.
#[derive(Default)]
pub(super) struct TokenCache {
    slot: Mutex<Slot>,
    /// Held by the one caller that requests a token; the others wait on it.
    refresh: tokio::sync::Mutex<()>,
    generations: AtomicU64,
}

impl TokenCache {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(slot: &Slot, now: Instant) -> Option<Token> {
        slot.current
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The cached token, or a new one from `fetch` when it is missing or due for refresh. Only
    /// one `fetch` runs at a time; callers that waited for it take its token, or its error.
    pub(super) async fn get<F, Fut>(&self, fetch: F) -> Result<Token, HaierError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<IssuedToken, HaierError>>,
    {
        let seen = {
            let slot = self.slot();
            if let Some(token) = Self::fresh(&slot, Instant::now()) {
                return Ok(token);
            }
            slot.fetches
        };
        let _flight = self.refresh.lock().await;
        {
            let slot = self.slot();
            if let Some(token) = Self::fresh(&slot, Instant::now()) {
                return Ok(token);
            }
            if slot.fetches != seen {
                if let Some(error) = &slot.last_error {
                    return Err(error.clone());
                }
            }
        }
        let asked_at = Instant::now();
        let result = fetch().await;
        let mut slot = self.slot();
        slot.fetches += 1;
        match result {
            Ok(issued) => {
                let margin = issued.lifetime / REFRESH_MARGIN_DIVISOR;
                let token = Token {
                    header: issued.header,
                    generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
                };
                slot.current = Some(Cached {
                    token: token.clone(),
                    refresh_at: asked_at + issued.lifetime - margin,
                });
                slot.last_error = None;
                Ok(token)
            }
            Err(error) => {
                slot.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Drops the token a call was refused with, unless a newer one has replaced it already.
    pub(super) fn invalidate(&self, generation: u64) {
        let mut slot = self.slot();
        if slot
            .current
            .as_ref()
            .is_some_and(|c| c.token.generation == generation)
        {
            slot.current = None;
        }
    }

    /// Marks the cached token as due for refresh; the next call takes a new one.
    pub(super) fn expire(&self) {
        if let Some(cached) = self.slot().current.as_mut() {
            cached.refresh_at = Instant::now();
        }
    }
}

/// Turns a token endpoint's reply into a token, or says why there is none.
fn token_from_reply(
    inner: &Inner,
    system: System,
    reply: Reply,
    header: impl FnOnce(&str) -> String,
) -> Result<IssuedToken, HaierError> {
    let operation = Operation::token_of(system).as_str();
    match reply.status.as_u16() {
        200..=299 => {}
        400 | 401 | 403 => {
            return Err(HaierError::AuthRefused {
                system,
                message: inner.redactor.scrub(&wire::auth_error_message(&reply.body)),
            })
        }
        other => return Err(inner.status_error(system, operation, other, &reply)),
    }
    let now_unix = chrono::Utc::now().timestamp();
    let decoded = wire::decode_token_reply(&reply.body, now_unix).map_err(|message| HaierError::Decode {
        system,
        operation,
        message,
    })?;
    inner.redactor.remember_token(&decoded.token);
    let mut value = HeaderValue::from_str(&header(&decoded.token)).map_err(|_| HaierError::Decode {
        system,
        operation,
        message: "the issued token is not a valid header value".to_owned(),
    })?;
    value.set_sensitive(true);
    Ok(IssuedToken {
        header: value,
        lifetime: decoded
            .lifetime
            .unwrap_or(DEFAULT_TOKEN_LIFETIME)
            .max(Duration::from_secs(1)),
    })
}

/// Openplat's client-credentials login.
pub(super) struct OpenplatAuth {
    /// The configured token URL, then its `/oauth2/token` twin when it ends in `/oauth2/auth`.
    urls: Vec<Url>,
    /// Index into `urls` of the one that answered last.
    preferred: AtomicUsize,
    client_id: String,
    client_secret: Secret,
}

impl OpenplatAuth {
    pub(super) fn new(token_url: &Url, client_id: &str, client_secret: &Secret) -> Self {
        let mut urls = vec![token_url.clone()];
        if let Some(at) = token_url.path().rfind(TOKEN_PATH) {
            let mut fallback = token_url.clone();
            let path = token_url.path();
            fallback.set_path(&format!(
                "{}{TOKEN_FALLBACK_PATH}{}",
                &path[..at],
                &path[at + TOKEN_PATH.len()..]
            ));
            urls.push(fallback);
        }
        Self {
            urls,
            preferred: AtomicUsize::new(0),
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
        }
    }

    /// Indexes into `urls` in the order they are tried: the one that answered last, then the
    /// other.
    fn order(&self) -> impl Iterator<Item = usize> {
        let first = self.preferred.load(Ordering::Relaxed);
        let count = self.urls.len();
        (0..count).map(move |i| (first + i) % count)
    }

    /// Requests a token from the preferred URL, then from the other one when the first does not
    /// answer with a token; remembers which one worked.
    pub(super) async fn fetch(&self, inner: &Inner) -> Result<IssuedToken, HaierError> {
        let mut errors = Vec::new();
        for index in self.order() {
            let url = &self.urls[index];
            match self.fetch_from(inner, url).await {
                Ok(token) => {
                    if self.preferred.swap(index, Ordering::Relaxed) != index {
                        tracing::info!(token_url = %url, "openplat token URL answers; using it from now on");
                    }
                    return Ok(token);
                }
                Err(error) => {
                    tracing::debug!(token_url = %url, %error, "openplat token request failed");
                    errors.push(error);
                }
            }
        }
        Err(most_telling(errors))
    }

    async fn fetch_from(&self, inner: &Inner, url: &Url) -> Result<IssuedToken, HaierError> {
        let body = OpenplatTokenRequest {
            client_id: &self.client_id,
            client_secret: self.client_secret.expose(),
            grant_type: "client_credentials",
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| HaierError::InvalidRequest {
            operation: Operation::TokenOpenplat.as_str(),
            message: e.to_string(),
        })?;
        let request = inner
            .endpoint(System::Openplat)
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes.clone());
        let reply = inner
            .send(Operation::TokenOpenplat, request, AUTH_TIMEOUT, &bytes)
            .await?;
        token_from_reply(inner, System::Openplat, reply, str::to_owned)
    }
}

/// Of the errors from both token URLs, the one that says most: a refusal of the credentials,
/// then one worth retrying, then the first.
fn most_telling(errors: Vec<HaierError>) -> HaierError {
    let rank = |e: &HaierError| match e {
        HaierError::AuthRefused { .. } => 0,
        e if e.is_retryable() => 1,
        _ => 2,
    };
    let mut errors = errors;
    match (0..errors.len()).min_by_key(|&i| rank(&errors[i])) {
        Some(best) => errors.swap_remove(best),
        None => HaierError::Config {
            message: "no openplat token URL".to_owned(),
        },
    }
}

/// YLH's password-grant login.
pub(super) struct YlhAuth {
    url: Url,
    client_id: String,
    client_password: Secret,
    username: String,
    password: Secret,
}

impl YlhAuth {
    pub(super) fn new(
        url: Url,
        client_id: &str,
        client_password: &Secret,
        username: &str,
        password: &Secret,
    ) -> Self {
        Self {
            url,
            client_id: client_id.to_owned(),
            client_password: client_password.clone(),
            username: username.to_owned(),
            password: password.clone(),
        }
    }

    pub(super) async fn fetch(&self, inner: &Inner) -> Result<IssuedToken, HaierError> {
        let form = [
            ("grant_type", "password"),
            ("username", self.username.as_str()),
            ("password", self.password.expose()),
        ];
        let request = inner
            .endpoint(System::Ylh)
            .http
            .post(self.url.clone())
            .basic_auth(&self.client_id, Some(self.client_password.expose()))
            .header("system-name", YLH_SYSTEM_NAME)
            .form(&form);
        let logged = serde_json::to_vec(&serde_json::json!({
            "grant_type": "password",
            "username": self.username,
            "password": "***",
        }))
        .unwrap_or_default();
        let reply = inner
            .send(Operation::TokenYlh, request, AUTH_TIMEOUT, &logged)
            .await?;
        token_from_reply(inner, System::Ylh, reply, |token| format!("bearer {token}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    fn issued(lifetime: Duration) -> IssuedToken {
        IssuedToken {
            header: HeaderValue::from_static("t"),
            lifetime,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn token_is_requested_once_when_many_calls_race() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let cache = cache.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(issued(Duration::from_secs(3600)))
                    })
                    .await
                    .map(|t| t.generation())
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Stale for everyone at once: again exactly one request.
        cache.expire();
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let cache = cache.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        Ok(issued(Duration::from_secs(3600)))
                    })
                    .await
                    .map(|t| t.generation())
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 2);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn waiters_share_a_failed_token_request_and_the_next_call_tries_again() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let refused = || HaierError::AuthRefused {
            system: System::Ylh,
            message: "bad".into(),
        };
        let first = {
            let (cache, fetches, gate) = (cache.clone(), fetches.clone(), gate.clone());
            tokio::spawn(async move {
                cache
                    .get(|| async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Err(refused())
                    })
                    .await
            })
        };
        // Let the first call take the flight, then queue a second behind it.
        while fetches.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tokio::spawn(async move {
                cache
                    .get(|| async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        Ok(issued(Duration::from_secs(60)))
                    })
                    .await
            })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        assert!(matches!(
            first.await.unwrap(),
            Err(HaierError::AuthRefused { .. })
        ));
        assert!(matches!(
            second.await.unwrap(),
            Err(HaierError::AuthRefused { .. })
        ));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let third = cache
            .get(|| async { Ok(issued(Duration::from_secs(60))) })
            .await
            .unwrap();
        assert_eq!(third.generation(), 1);
    }

    #[tokio::test]
    async fn a_refused_token_is_dropped_only_if_still_current() {
        let cache = TokenCache::default();
        let first = cache
            .get(|| async { Ok(issued(Duration::from_secs(60))) })
            .await
            .unwrap();
        cache.invalidate(first.generation());
        let second = cache
            .get(|| async { Ok(issued(Duration::from_secs(60))) })
            .await
            .unwrap();
        assert_eq!(second.generation(), 2);
        // A late 401 for the old token leaves the new one alone.
        cache.invalidate(first.generation());
        let again = cache
            .get(|| async { panic!("no token request expected") })
            .await
            .unwrap();
        assert_eq!(again.generation(), 2);
    }

    #[tokio::test]
    async fn a_token_is_refreshed_when_a_tenth_of_its_life_is_left() {
        let cache = TokenCache::default();
        cache
            .get(|| async { Ok(issued(Duration::from_millis(100))) })
            .await
            .unwrap();
        let cached = cache.get(|| async { panic!("still fresh") }).await.unwrap();
        assert_eq!(cached.generation(), 1);
        tokio::time::sleep(Duration::from_millis(95)).await;
        let renewed = cache
            .get(|| async { Ok(issued(Duration::from_secs(60))) })
            .await
            .unwrap();
        assert_eq!(renewed.generation(), 2);
    }

    #[test]
    fn the_openplat_token_url_falls_back_from_auth_to_token() {
        let url = Url::parse("https://openplat.haier.net/gateway-test/oauth2/auth").unwrap();
        let auth = OpenplatAuth::new(&url, "id", &Secret::new("s"));
        let urls: Vec<_> = auth.order().map(|i| auth.urls[i].to_string()).collect();
        assert_eq!(
            urls,
            [
                "https://openplat.haier.net/gateway-test/oauth2/auth",
                "https://openplat.haier.net/gateway-test/oauth2/token"
            ]
        );
        auth.preferred.store(1, Ordering::Relaxed);
        assert_eq!(auth.order().collect::<Vec<_>>(), [1, 0]);
        let url = Url::parse("https://openplat.haier.net/gateway-test/oauth2/token").unwrap();
        assert_eq!(OpenplatAuth::new(&url, "id", &Secret::new("s")).urls.len(), 1);
    }

    #[test]
    fn the_most_telling_error_of_both_token_urls_wins() {
        let http = |status| HaierError::Http {
            system: System::Openplat,
            operation: "token_openplat",
            status,
            body: String::new(),
        };
        let refused = HaierError::AuthRefused {
            system: System::Openplat,
            message: "invalid client".into(),
        };
        assert!(matches!(
            most_telling(vec![http(404), refused]),
            HaierError::AuthRefused { .. }
        ));
        assert!(matches!(
            most_telling(vec![http(404), http(503)]),
            HaierError::Http { status: 503, .. }
        ));
        assert!(matches!(
            most_telling(vec![http(404), http(405)]),
            HaierError::Http { status: 404, .. }
        ));
    }
}

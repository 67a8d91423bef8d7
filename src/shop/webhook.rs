//! Delivery of the order events to `[shop] webhook_url`: each event POSTed as JSON, signed with
//! HMAC-SHA256 over `timestamp + "." + body` (the `Haier-Sync-Signature` header, `v1=<hex>`,
//! with the `Haier-Sync-Timestamp` it covers), at least once and in order per order.
//!
//! A poller claims due events under a lease (as the order outbox does), POSTs them through its
//! own rate limiter (`per_second`; never Haier's quota), and marks each `delivered`, or due again
//! after a backoff that doubles from `backoff_base_ms` up to `backoff_cap_ms`, or `failed` after
//! `max_attempts`. A daemon killed mid-delivery leaves its claims to run out: those events are
//! sent again, with the same id. No transaction is held across a POST.

use super::events::{self, ShopEvent};
use crate::config::ShopConfig;
use crate::db::{self, Db};
use anyhow::Context as _;
use futures::StreamExt as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

/// The header with the signature: `v1=<hex of HMAC-SHA256(secret, timestamp + "." + body)>`.
pub const SIGNATURE_HEADER: &str = "Haier-Sync-Signature";
/// The header with the time of signing, in seconds since the epoch (part of what is signed, so a
/// receiver can refuse old replays of a captured request).
pub const TIMESTAMP_HEADER: &str = "Haier-Sync-Timestamp";
/// The header with the event's id: the same on every delivery of one event.
pub const EVENT_ID_HEADER: &str = "Haier-Sync-Event-Id";
/// POSTs in flight at once; they are of different orders (a batch holds one event per order).
const CONCURRENT_POSTS: usize = 8;

/// The signature of `body` signed at `timestamp` (seconds) with `secret`: lowercase hex.
pub fn sign(secret: &[u8], timestamp: i64, body: &str) -> String {
    // Invariant: HMAC takes a key of any length, so `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What one step of the poller did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Nothing was due.
    Idle,
    /// Events were claimed and tried: `delivered` of them taken by the webhook, `failed` not
    /// (due again later, or given up).
    Worked { delivered: usize, failed: usize },
}

/// The webhook's client, settings and limiter; one per daemon.
pub struct Webhook {
    config: ShopConfig,
    http: reqwest::Client,
    limiter: DefaultDirectRateLimiter,
    lease_token: String,
}

impl Webhook {
    pub fn new(config: ShopConfig) -> anyhow::Result<Webhook> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .context("Failed to build the webhook's HTTP client")?;
        let per_second = NonZeroU32::new(config.per_second).unwrap_or(NonZeroU32::MIN);
        let lease_token = format!("{}:{:08x}", db::instance_name(), rand::random::<u32>());
        Ok(Webhook {
            config,
            http,
            limiter: RateLimiter::direct(Quota::per_second(per_second)),
            lease_token,
        })
    }

    /// Claims the due events (one per order at most) and POSTs them; returns what happened.
    pub async fn try_deliver_next_batch(&self, db: &Db) -> anyhow::Result<DeliveryOutcome> {
        let (token, limit) = (self.lease_token.clone(), i64::from(self.config.batch_size));
        let lease = chrono::Duration::milliseconds(self.config.lease_ms as i64);
        let claimed = db
            .run(move |conn| {
                let now = db::now_utc();
                if !events::any_due(conn, now)? {
                    return Ok(Vec::new());
                }
                Ok(events::claim_due_events(conn, &token, now, now + lease, limit)?)
            })
            .await
            .context("Failed to claim the order events due for the webhook")?;
        if claimed.is_empty() {
            return Ok(DeliveryOutcome::Idle);
        }
        let results: Vec<bool> = futures::stream::iter(claimed)
            .map(|event| self.deliver(db, event))
            .buffer_unordered(CONCURRENT_POSTS)
            .collect()
            .await;
        let delivered = results.iter().filter(|ok| **ok).count();
        Ok(DeliveryOutcome::Worked {
            delivered,
            failed: results.len() - delivered,
        })
    }

    /// POSTs one claimed event and writes the result; whether the webhook took it. A result
    /// that cannot be written is logged: the lease runs out and the event is sent again.
    async fn deliver(&self, db: &Db, event: ShopEvent) -> bool {
        let result = self.post(&event).await;
        let (id, so_id, attempts, token) = (
            event.id,
            event.so_id.clone(),
            event.attempts,
            self.lease_token.clone(),
        );
        let ok = result.is_ok();
        let give_up = attempts + 1 >= i64::from(self.config.max_attempts);
        let wait = backoff(&self.config, attempts);
        let written = db
            .run(move |conn| {
                let now = db::now_utc();
                Ok(match &result {
                    Ok(()) => events::mark_delivered(conn, id, &token, now)?,
                    Err(error) => events::mark_attempt_failed(conn, id, &token, error, give_up, now + wait)?,
                })
            })
            .await;
        match written {
            Ok(true) if ok => debug!(event_id = id, so_id = %so_id, "order event delivered to the webhook"),
            Ok(true) if give_up => {
                warn!(event_id = id, so_id = %so_id, attempts = attempts + 1, "order event failed: the webhook did not take it")
            }
            Ok(true) => {
                debug!(event_id = id, so_id = %so_id, "the webhook did not take the order event; trying again")
            }
            Ok(false) => {
                debug!(event_id = id, so_id = %so_id, "the claim of the order event was lost; left as it is")
            }
            Err(e) => {
                error!(event_id = id, so_id = %so_id, "Failed to record the delivery of an order event: {e:#}")
            }
        }
        ok
    }

    /// One POST of `event`: `Ok` when the webhook answered 2xx, else what went wrong.
    async fn post(&self, event: &ShopEvent) -> Result<(), String> {
        let body = event.to_json().to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(self.config.secret.expose().as_bytes(), timestamp, &body);
        self.limiter.until_ready().await;
        let answer = self
            .http
            .post(self.config.webhook_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, event.id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, format!("v1={signature}"))
            .body(body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!(
                "the webhook answered HTTP {}",
                response.status().as_u16()
            )),
            Err(e) => Err(format!("the webhook could not be reached: {}", e.without_url())),
        }
    }
}

/// The wait after a failed delivery of an event that had `attempts` before it.
fn backoff(config: &ShopConfig, attempts: i64) -> chrono::Duration {
    let doubled = config
        .backoff_base_ms
        .saturating_mul(1_u64 << attempts.clamp(0, 30));
    chrono::Duration::milliseconds(doubled.min(config.backoff_cap_ms) as i64)
}

/// Delivers events until `cancel`: a step right after one that worked, else after
/// `poll_interval_ms`. An error (the database away) is logged and the step tried again later;
/// a batch in flight at `cancel` is finished first.
pub async fn run_until_stopped(webhook: Webhook, db: Db, cancel: CancellationToken) -> anyhow::Result<()> {
    let idle = Duration::from_millis(webhook.config.poll_interval_ms);
    while !cancel.is_cancelled() {
        let wait = match webhook.try_deliver_next_batch(&db).await {
            Ok(DeliveryOutcome::Worked { .. }) => continue,
            Ok(DeliveryOutcome::Idle) => idle,
            Err(e) => {
                error!("{e:#}");
                idle
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        // The example of the README's receiver: secret "whsec", timestamp 1700000000, body {}.
        let signature = sign(b"whsec", 1_700_000_000, "{}");
        // Python: hmac.new(b"whsec", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature,
            "7d44587dddbaf4c7f70fef20f48cd594834ffea1641e3ac227b84408298738af"
        );
        assert_ne!(signature, sign(b"whsec", 1_700_000_001, "{}"));
        assert_ne!(signature, sign(b"whsec", 1_700_000_000, "{ }"));
        assert_ne!(signature, sign(b"other", 1_700_000_000, "{}"));
    }
}

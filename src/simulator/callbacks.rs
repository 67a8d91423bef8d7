//! The signed callbacks Haier sends the integrator (`hmm.scm_heorder.confirm`, `.cancel` and
//! `.oostock`):
//! the contract's MD5 sign, the Beijing-time timestamp (off by `callback_clock_offset_secs`, and
//! kept from the first try with `callback_keep_first_timestamp`), and the sender that posts a
//! callback after a delay and retries it, with backoff, until it is acknowledged. What a callback says is
//! decided in `ylh.rs`.

use super::faults::Faults;
use super::stats::{bump, Counters};
use crate::config::Secret;
use chrono::{DateTime, FixedOffset, Utc};
use md5::{Digest, Md5};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const METHOD_CONFIRM: &str = "hmm.scm_heorder.confirm";
pub const METHOD_CANCEL: &str = "hmm.scm_heorder.cancel";
pub const METHOD_OUT_OF_STOCK: &str = "hmm.scm_heorder.oostock";

/// How long one callback attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The contract's sign: every field but `Sign`/`sign` whose value is not empty after trimming,
/// sorted by name, concatenated as name+value, with the secret before and after, lower-cased,
/// MD5, upper-case hex.
pub fn sign_callback(fields: &[(&str, &str)], secret: &str) -> String {
    let mut kept: Vec<&(&str, &str)> = fields
        .iter()
        .filter(|(name, value)| *name != "Sign" && *name != "sign" && !value.trim().is_empty())
        .collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::from(secret);
    for (name, value) in kept {
        text.push_str(name);
        text.push_str(value);
    }
    text.push_str(secret);
    hex::encode_upper(Md5::digest(text.to_lowercase().as_bytes()))
}

/// Beijing time (UTC+8) as `yyyyMMddHHmmss`.
pub fn beijing_timestamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing()).format("%Y%m%d%H%M%S").to_string()
}

/// The UTC+8 offset Haier's times are in.
pub(crate) fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC offset is valid"))
}

/// Posts callbacks to one URL, signed with one app key and secret.
#[derive(Debug)]
pub(crate) struct CallbackSender {
    client: reqwest::Client,
    url: Option<String>,
    app_key: String,
    secret: Secret,
    retry_base: Duration,
    max_attempts: u32,
    counters: Arc<Counters>,
    /// The simulator's faults: how a callback stamps its time is read at each attempt.
    faults: Arc<RwLock<Faults>>,
}

impl CallbackSender {
    pub fn new(
        url: Option<String>,
        app_key: String,
        secret: Secret,
        retry_base: Duration,
        max_attempts: u32,
        counters: Arc<Counters>,
        faults: Arc<RwLock<Faults>>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("Failed to build the callback HTTP client: {e}"))?;
        Ok(Self {
            client,
            url,
            app_key,
            secret,
            retry_base,
            max_attempts: max_attempts.max(1),
            counters,
            faults,
        })
    }

    /// Sends `data` (the JSON that goes in the `Data` field) as a `method` callback after
    /// `delay`, in the background. Nothing is sent without a callback URL, or once `stop` fires.
    pub fn schedule(
        self: &Arc<Self>,
        delay: Duration,
        method: &'static str,
        data: String,
        stop: CancellationToken,
    ) {
        let Some(url) = self.url.clone() else {
            return;
        };
        let sender = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => return,
            }
            let mut first_timestamp: Option<String> = None;
            for attempt in 1..=sender.max_attempts {
                let timestamp = sender.timestamp(first_timestamp.as_deref());
                first_timestamp.get_or_insert_with(|| timestamp.clone());
                if sender.send_once(&url, method, &data, &timestamp).await {
                    bump(&sender.counters.callbacks_acked);
                    return;
                }
                if attempt == sender.max_attempts {
                    break;
                }
                let backoff = sender
                    .retry_base
                    .saturating_mul(1 << (attempt - 1).min(16))
                    .min(BACKOFF_CAP);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
            }
            bump(&sender.counters.callbacks_given_up);
            tracing::warn!(method, url = %url, attempts = sender.max_attempts, "simulator: callback never acknowledged, giving up");
        });
    }

    /// The `TimeStamp` of an attempt: now (plus the `callback_clock_offset_secs` fault), or the
    /// first attempt's while the `callback_keep_first_timestamp` fault is on.
    fn timestamp(&self, first: Option<&str>) -> String {
        let faults = *self.faults.read().unwrap_or_else(|p| p.into_inner());
        match first {
            Some(first) if faults.callback_keep_first_timestamp => first.to_owned(),
            _ => beijing_timestamp(Utc::now() + chrono::Duration::seconds(faults.callback_clock_offset_secs)),
        }
    }

    /// One attempt: true when the receiver answers HTTP 200 with `success:true`.
    async fn send_once(&self, url: &str, method: &str, data: &str, timestamp: &str) -> bool {
        let mut fields = vec![
            ("AppKey", self.app_key.as_str()),
            ("TimeStamp", timestamp),
            ("Method", method),
            ("Data", data),
        ];
        let sign = sign_callback(&fields, self.secret.expose());
        fields.push(("Sign", &sign));
        bump(&self.counters.callbacks_sent);
        let reply = match self.client.post(url).form(&fields).send().await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::debug!(method, error = %e, "simulator: callback attempt failed");
                return false;
            }
        };
        if reply.status() != reqwest::StatusCode::OK {
            tracing::debug!(method, status = %reply.status(), "simulator: callback not acknowledged");
            return false;
        }
        match reply.json::<serde_json::Value>().await {
            Ok(body) => is_ack(&body),
            Err(_) => false,
        }
    }
}

/// `success` is `true` (or the string `"true"`).
fn is_ack(body: &serde_json::Value) -> bool {
    match body.get("success") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sign_matches_a_known_answer() {
        // printf '%s' 'sappkeyadata{"x":1}methodmtimestamp20260101120000s' | md5sum
        let fields = [
            ("TimeStamp", "20260101120000"),
            ("Method", "m"),
            ("AppKey", "a"),
            ("Data", r#"{"x":1}"#),
        ];
        assert_eq!(sign_callback(&fields, "s"), "2362243F038A1027F51C8639D57788F2");
    }

    #[test]
    fn sign_skips_the_sign_field_and_blank_values_and_lowercases() {
        let fields = [
            ("AppKey", "A"),
            ("Data", r#"{"x":1}"#),
            ("Method", "M"),
            ("TimeStamp", "20260101120000"),
        ];
        let mut with_extras = fields.to_vec();
        with_extras.extend([("Sign", "whatever"), ("sign", "x"), ("Empty", "  ")]);
        // Upper-case values and secret sign the same as lower-case ones: the whole text is lower-cased.
        assert_eq!(
            sign_callback(&with_extras, "S"),
            "2362243F038A1027F51C8639D57788F2"
        );
    }

    #[test]
    fn timestamps_are_beijing_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 17, 30, 5).unwrap();
        assert_eq!(beijing_timestamp(at), "20261125013005");
    }

    #[test]
    fn only_success_true_is_an_ack() {
        assert!(is_ack(&serde_json::json!({"success": true, "code": "success"})));
        assert!(is_ack(&serde_json::json!({"success": "true"})));
        assert!(!is_ack(&serde_json::json!({"success": false})));
        assert!(!is_ack(&serde_json::json!({"code": 200})));
    }
}

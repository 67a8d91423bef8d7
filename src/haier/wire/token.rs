//! Token replies of both logins (`token` or `access_token`, either expiry, at the top or under
//! `data`) and the reason a token endpoint gives for a refusal.

use super::lenient::{to_i64, to_text};
use serde_json::{Map, Value};
use std::time::Duration;

/// A token as a token endpoint issued it.
#[derive(Clone, PartialEq)]
pub(crate) struct TokenReply {
    pub token: String,
    /// From `expires_in`, else `expires_at`; `None` when the reply gives neither.
    pub lifetime: Option<Duration>,
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReply")
            .field("token", &"***")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Decodes a token reply: `token` or `access_token` (or `accessToken`), at the top or under
/// `data`; `expires_in` seconds or `expires_at` unix seconds (milliseconds accepted).
pub(crate) fn decode_token_reply(body: &[u8], now_unix_secs: i64) -> Result<TokenReply, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the token reply is not JSON: {e}"))?;
    let top = value.as_object();
    let nested = top.and_then(|m| m.get("data")).and_then(Value::as_object);
    for map in [top, nested].into_iter().flatten() {
        let token = ["token", "access_token", "accessToken"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str).filter(|t| !t.is_empty()));
        if let Some(token) = token {
            return Ok(TokenReply {
                token: token.to_owned(),
                lifetime: token_lifetime(map, now_unix_secs),
            });
        }
    }
    Err("the token reply holds no `token` or `access_token`".to_owned())
}

/// The longest life taken from a token reply (a week): a larger one, up to `i64::MAX` seconds,
/// would overflow the refresh instant.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

fn token_lifetime(map: &Map<String, Value>, now_unix_secs: i64) -> Option<Duration> {
    let secs = |key: &str| map.get(key).and_then(|v| to_i64(v).ok().flatten());
    if let Some(expires_in) = secs("expires_in").or_else(|| secs("expiresIn")) {
        return Some(Duration::from_secs(expires_in.max(0) as u64).min(MAX_TOKEN_LIFETIME));
    }
    let expires_at = secs("expires_at").or_else(|| secs("expiresAt"))?;
    // Ten digits are seconds; thirteen are milliseconds.
    let expires_at = if expires_at > 100_000_000_000 {
        expires_at / 1000
    } else {
        expires_at
    };
    Some(Duration::from_secs(expires_at.saturating_sub(now_unix_secs).max(0) as u64).min(MAX_TOKEN_LIFETIME))
}

/// The reason a token endpoint gave for refusing: `error_description`, `message`, `errorMsg`,
/// `error`, else the body text.
pub(crate) fn auth_error_message(body: &[u8]) -> String {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        if let Some(message) = ["error_description", "message", "errorMsg", "msg", "error"]
            .iter()
            .find_map(|k| map.get(*k).and_then(to_text).filter(|m| !m.is_empty()))
        {
            return message;
        }
    }
    String::from_utf8_lossy(body).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_replies_take_token_or_access_token_and_either_expiry() {
        let now = 1_700_000_000;
        let r = decode_token_reply(
            json!({"token":"jwt","expires_in":3600,"expires_at":now + 3600})
                .to_string()
                .as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(r.token, "jwt");
        assert_eq!(r.lifetime, Some(Duration::from_secs(3600)));
        let r = decode_token_reply(
            json!({"access_token":"at","token_type":"bearer","refresh_token":"rt",
                   "expires_in":"43199","scope":"all"})
            .to_string()
            .as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(r.token, "at");
        assert_eq!(r.lifetime, Some(Duration::from_secs(43199)));
        let r = decode_token_reply(
            json!({"success":true,"data":{"token":"t2","expires_at":(now + 60) * 1000}})
                .to_string()
                .as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(r.token, "t2");
        assert_eq!(r.lifetime, Some(Duration::from_secs(60)));
        let r = decode_token_reply(br#"{"token":"t3"}"#, now).unwrap();
        assert_eq!(r.lifetime, None);
        assert!(decode_token_reply(br#"{"message":"no"}"#, now).is_err());
        assert!(!format!("{r:?}").contains("t3"));
    }

    #[test]
    fn auth_errors_give_the_most_specific_message() {
        assert_eq!(
            auth_error_message(br#"{"error":"invalid_grant","error_description":"Bad credentials"}"#),
            "Bad credentials"
        );
        assert_eq!(
            auth_error_message(br#"{"code":401,"message":"invalid client"}"#),
            "invalid client"
        );
        assert_eq!(auth_error_message(b" Unauthorized "), "Unauthorized");
    }

    #[test]
    fn a_token_lifetime_past_a_week_is_cut_to_a_week() {
        let now = 1_700_000_000;
        for body in [
            json!({"token":"t","expires_in":i64::MAX}),
            json!({"token":"t","expires_at":i64::MAX}),
            json!({"token":"t","expires_in":"99999999999"}),
        ] {
            let reply = decode_token_reply(body.to_string().as_bytes(), now).unwrap();
            assert_eq!(reply.lifetime, Some(MAX_TOKEN_LIFETIME), "{body}");
        }
        let reply = decode_token_reply(br#"{"token":"t","expires_at":i64_min}"#, now);
        assert!(reply.is_err(), "not JSON");
        let reply = decode_token_reply(
            json!({"token":"t","expires_at":i64::MIN}).to_string().as_bytes(),
            now,
        );
        assert_eq!(reply.unwrap().lifetime, Some(Duration::ZERO));
    }
}

//! Verification of a received callback: each contract field given once, the `AppKey`, the
//! `Sign` (in constant time), the `TimeStamp` within the allowed skew, and a `Method` and `Data`.
//! What fails is a [`Rejection`] whose message quotes what was received, cut short.

use super::sign::{parse_beijing_timestamp, sign_fields};
use crate::config::CallbackConfig;
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use subtle::ConstantTimeEq;

/// The contract's form fields. Each may be given once (in any case).
pub(super) const CONTRACT_FIELDS: [&str; 5] = ["AppKey", "TimeStamp", "Method", "Data", "Sign"];

/// The most of a received value a rejection message quotes (an `AppKey` of 60 KB is not echoed).
const QUOTED_VALUE_BYTES: usize = 64;

/// `text` cut to at most `max_bytes` bytes on a char boundary, ending in
/// `… [cut: N bytes in all]` when it was cut. (A `max_bytes` below the marker's length keeps the
/// marker alone.)
pub fn excerpt(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let marker = format!("… [cut: {} bytes in all]", text.len());
    let mut end = max_bytes.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{marker}", &text[..end]))
}

/// A received value as a rejection message quotes it: trimmed, and cut when long.
pub(super) fn quoted(value: &str) -> Cow<'_, str> {
    excerpt(value.trim(), QUOTED_VALUE_BYTES)
}

/// Why a callback was turned away before it reached an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reply's `code`: `unknown_app_key`, `bad_sign`, `stale_timestamp`, …
    pub code: &'static str,
    pub reason: String,
    /// Whether the callback passed the `AppKey`/`Sign` check (it came from Haier): such a
    /// callback is stored whole and never limited.
    pub signed: bool,
}

impl Rejection {
    pub(super) fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            signed: false,
        }
    }

    /// The same rejection of a callback whose sign checked out.
    fn of_signed(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            signed: true,
            ..Self::new(code, reason)
        }
    }
}

/// A callback whose key, sign and time stamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCallback {
    pub method: String,
    pub data: String,
}

/// A form field by its contract name, else by the same name in any case.
pub(super) fn form_field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.as_str())
}

/// Checks a callback's `AppKey`, `Sign` (constant-time) and `TimeStamp` (Beijing time, within
/// `max_clock_skew_secs` of `now`), and that it carries a `Method` and `Data`.
pub fn verify_callback(
    fields: &[(String, String)],
    config: &CallbackConfig,
    now: DateTime<Utc>,
) -> Result<VerifiedCallback, Rejection> {
    for name in CONTRACT_FIELDS {
        let times = fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count();
        if times > 1 {
            return Err(Rejection::new(
                "duplicate_field",
                format!("{name} is given {times} times; each field may be given once"),
            ));
        }
    }
    let app_key = form_field(fields, "AppKey")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::new("missing_field", "AppKey is missing"))?;
    if app_key.trim() != config.app_key {
        return Err(Rejection::new(
            "unknown_app_key",
            format!("AppKey {} is not this receiver's", quoted(app_key)),
        ));
    }
    let sign = form_field(fields, "Sign")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::new("missing_field", "Sign is missing"))?;
    let expected = sign_fields(fields, config.secret.expose());
    let given = sign.trim().to_ascii_uppercase();
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(Rejection::new(
            "bad_sign",
            "Sign does not match the fields and the shared secret",
        ));
    }
    let stamp = form_field(fields, "TimeStamp")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "TimeStamp is missing"))?;
    let at = parse_beijing_timestamp(stamp).ok_or_else(|| {
        Rejection::of_signed(
            "bad_timestamp",
            format!("TimeStamp {} is not yyyyMMddHHmmss", quoted(stamp)),
        )
    })?;
    let skew = (now - at).num_seconds();
    if skew.abs() > config.max_clock_skew_secs {
        return Err(Rejection::of_signed(
            "stale_timestamp",
            format!(
                "TimeStamp {stamp} (Beijing time) is {}s {} now; at most {}s allowed",
                skew.abs(),
                if skew > 0 { "before" } else { "after" },
                config.max_clock_skew_secs
            ),
        ));
    }
    let method = form_field(fields, "Method")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "Method is missing"))?;
    let data = form_field(fields, "Data")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "Data is missing"))?;
    Ok(VerifiedCallback {
        method: method.trim().to_owned(),
        data: data.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::orders::callback::sign::beijing_timestamp;
    use crate::orders::notices;

    fn config() -> CallbackConfig {
        CallbackConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            app_key: "demo-app-key".into(),
            secret: Secret::new("demo-callback-secret"),
            max_body_bytes: 65_536,
            max_clock_skew_secs: 600,
            rejected_per_minute: 6,
            rejected_burst: 20,
        }
    }

    fn signed(at: DateTime<Utc>, secret: &str) -> Vec<(String, String)> {
        let mut fields = vec![
            ("AppKey".to_owned(), "demo-app-key".to_owned()),
            ("TimeStamp".to_owned(), beijing_timestamp(at)),
            ("Method".to_owned(), notices::METHOD_CONFIRM.to_owned()),
            (
                "Data".to_owned(),
                r#"{"PlatformOrderNo":"SO-1","State":1,"ExtOrderNo":"H1"}"#.to_owned(),
            ),
        ];
        let sign = sign_fields(&fields, secret);
        fields.push(("Sign".to_owned(), sign));
        fields
    }

    #[test]
    fn a_correct_callback_verifies() {
        let now = Utc::now();
        let verified = verify_callback(&signed(now, "demo-callback-secret"), &config(), now).unwrap();
        assert_eq!(verified.method, notices::METHOD_CONFIRM);
    }

    #[test]
    fn a_lower_case_sign_is_accepted() {
        let now = Utc::now();
        let mut fields = signed(now, "demo-callback-secret");
        let sign = fields.last_mut().unwrap();
        sign.1 = sign.1.to_lowercase();
        assert!(verify_callback(&fields, &config(), now).is_ok());
    }

    #[test]
    fn wrong_secret_key_or_time_is_rejected() {
        let now = Utc::now();
        let code = |fields: &[(String, String)]| verify_callback(fields, &config(), now).unwrap_err().code;
        assert_eq!(code(&signed(now, "other-secret")), "bad_sign");
        let mut wrong_key = signed(now, "demo-callback-secret");
        wrong_key[0].1 = "someone-else".into();
        assert_eq!(code(&wrong_key), "unknown_app_key");
        // Eleven minutes off either way, signed correctly.
        assert_eq!(
            code(&signed(
                now - chrono::Duration::minutes(11),
                "demo-callback-secret"
            )),
            "stale_timestamp"
        );
        assert_eq!(
            code(&signed(
                now + chrono::Duration::minutes(11),
                "demo-callback-secret"
            )),
            "stale_timestamp"
        );
        // Nine minutes is within the allowed skew.
        assert!(verify_callback(
            &signed(now - chrono::Duration::minutes(9), "demo-callback-secret"),
            &config(),
            now
        )
        .is_ok());
        // A UTC time stamp (eight hours off) is stale.
        let mut utc = signed(now, "demo-callback-secret");
        utc[1].1 = now.format("%Y%m%d%H%M%S").to_string();
        utc.pop();
        let sign = sign_fields(&utc, "demo-callback-secret");
        utc.push(("Sign".into(), sign));
        assert_eq!(code(&utc), "stale_timestamp");
        // A changed field breaks the sign.
        let mut tampered = signed(now, "demo-callback-secret");
        tampered[3].1 = r#"{"PlatformOrderNo":"SO-2","State":1,"ExtOrderNo":"H1"}"#.into();
        assert_eq!(code(&tampered), "bad_sign");
        let mut unsigned = signed(now, "demo-callback-secret");
        unsigned.pop();
        assert_eq!(code(&unsigned), "missing_field");
    }

    #[test]
    fn rejections_do_not_reveal_the_secret() {
        let now = Utc::now();
        let err = verify_callback(&signed(now, "x"), &config(), now).unwrap_err();
        assert!(!err.reason.contains("demo-callback-secret"));
        assert!(!format!("{:?}", config()).contains("demo-callback-secret"));
    }

    #[test]
    fn an_excerpt_is_cut_on_a_char_boundary_and_marked() {
        assert_eq!(excerpt("short", 64), "short");
        let long = "é".repeat(100);
        let cut = excerpt(&long, 64);
        assert_eq!(cut, format!("{}… [cut: 200 bytes in all]", "é".repeat(18)));
        assert!(cut.len() <= 64);
    }

    proptest::proptest! {
        #[test]
        fn an_excerpt_never_exceeds_its_budget_and_keeps_a_prefix(text in ".{0,400}", max in 40usize..300) {
            let cut = excerpt(&text, max);
            proptest::prop_assert!(cut.len() <= max);
            if text.len() <= max {
                proptest::prop_assert_eq!(&cut, &text);
            } else {
                let marker = format!("… [cut: {} bytes in all]", text.len());
                let kept = cut.strip_suffix(&marker);
                proptest::prop_assert!(kept.is_some_and(|kept| text.starts_with(kept)), "{}", cut);
            }
        }

        #[test]
        fn arbitrary_fields_never_panic_and_verify_only_when_signed(
            fields in proptest::collection::vec(
                (proptest::prop_oneof![
                    proptest::strategy::Just("AppKey".to_owned()),
                    proptest::strategy::Just("TimeStamp".to_owned()),
                    proptest::strategy::Just("Method".to_owned()),
                    proptest::strategy::Just("Data".to_owned()),
                    proptest::strategy::Just("Sign".to_owned()),
                    ".{0,10}",
                ], ".{0,40}"),
                0..8,
            )
        ) {
            let now = Utc::now();
            if verify_callback(&fields, &config(), now).is_ok() {
                let sign = form_field(&fields, "Sign").unwrap_or_default();
                proptest::prop_assert_eq!(
                    sign.trim().to_ascii_uppercase(),
                    sign_fields(&fields, "demo-callback-secret")
                );
            }
        }
    }

    #[test]
    fn duplicate_contract_fields_are_refused_before_the_sign() {
        let now = Utc::now();
        let mut fields = signed(now, "demo-callback-secret");
        fields.push(("data".into(), "{}".into()));
        let err = verify_callback(&fields, &config(), now).unwrap_err();
        assert_eq!(err.code, "duplicate_field");
        assert_eq!(err.reason, "Data is given 2 times; each field may be given once");
        assert!(!err.signed);
    }
}

//! Verification of a received callback: each contract field given once, the `AppKey`, the
//! `Sign` (in constant time), and a `Method` and `Data`. What fails is a [`Rejection`] whose
//! message quotes what was received, cut short.
//!
//! The `TimeStamp` is read, never judged: a correctly signed callback is not refused for it
//! (Haier retries a callback until it is acknowledged, possibly with the `TimeStamp` of its first
//! try, and refusing a late confirm would leave a paid order unconfirmed for good; a replay is
//! harmless because applying a callback is idempotent). How far off it was is recorded; a missing
//! or unreadable one is noted and the callback applied.

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
    /// The reply's `code`: `unknown_app_key`, `bad_sign`, `missing_field`, …
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

/// A callback whose key and sign checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCallback {
    pub method: String,
    pub data: String,
    /// `TimeStamp` (Beijing time) minus the time it was received, in seconds: negative when
    /// the `TimeStamp` lies in the past. `None` when it is missing or unreadable.
    pub clock_skew_secs: Option<i64>,
    /// Why `clock_skew_secs` is `None`, for the event's detail.
    pub timestamp_note: Option<String>,
}

/// A form field by its contract name, else by the same name in any case.
pub(super) fn form_field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
        .map(|(_, v)| v.as_str())
}

/// Checks a callback's `AppKey` and `Sign` (constant-time), and that it carries a `Method` and
/// `Data`; reads its `TimeStamp` (Beijing time) against `now` without refusing it for it.
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
    let (clock_skew_secs, timestamp_note) =
        match form_field(fields, "TimeStamp").filter(|v| !v.trim().is_empty()) {
            None => (
                None,
                Some("TimeStamp is missing; applied all the same".to_owned()),
            ),
            Some(stamp) => match parse_beijing_timestamp(stamp) {
                Some(at) => (Some((at - now).num_seconds()), None),
                None => (
                    None,
                    Some(format!(
                        "TimeStamp {} is not yyyyMMddHHmmss; applied all the same",
                        quoted(stamp)
                    )),
                ),
            },
        };
    let method = form_field(fields, "Method")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "Method is missing"))?;
    let data = form_field(fields, "Data")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Rejection::of_signed("missing_field", "Data is missing"))?;
    Ok(VerifiedCallback {
        method: method.trim().to_owned(),
        data: data.to_owned(),
        clock_skew_secs,
        timestamp_note,
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
            clock_skew_warn_secs: 600,
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
    fn wrong_secret_or_key_is_rejected() {
        let now = Utc::now();
        let code = |fields: &[(String, String)]| verify_callback(fields, &config(), now).unwrap_err().code;
        assert_eq!(code(&signed(now, "other-secret")), "bad_sign");
        let mut wrong_key = signed(now, "demo-callback-secret");
        wrong_key[0].1 = "someone-else".into();
        assert_eq!(code(&wrong_key), "unknown_app_key");
        // A changed field breaks the sign.
        let mut tampered = signed(now, "demo-callback-secret");
        tampered[3].1 = r#"{"PlatformOrderNo":"SO-2","State":1,"ExtOrderNo":"H1"}"#.into();
        assert_eq!(code(&tampered), "bad_sign");
        let mut unsigned = signed(now, "demo-callback-secret");
        unsigned.pop();
        assert_eq!(code(&unsigned), "missing_field");
    }

    #[test]
    fn a_signed_callback_is_never_refused_for_its_time_stamp() {
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
        let verify = |fields: &[(String, String)]| verify_callback(fields, &config(), now).unwrap();
        // Two hours old, and eleven minutes ahead: accepted, the skew recorded with its sign.
        let old = verify(&signed(now - chrono::Duration::hours(2), "demo-callback-secret"));
        assert_eq!(old.clock_skew_secs, Some(-7_200));
        assert_eq!(old.timestamp_note, None);
        let ahead = verify(&signed(
            now + chrono::Duration::minutes(11),
            "demo-callback-secret",
        ));
        assert_eq!(ahead.clock_skew_secs, Some(660));
        // A UTC time stamp reads as eight hours behind.
        let mut utc = signed(now, "demo-callback-secret");
        utc[1].1 = now.format("%Y%m%d%H%M%S").to_string();
        resign(&mut utc);
        assert_eq!(verify(&utc).clock_skew_secs, Some(-8 * 3_600));
        // Unreadable or missing: applied, no skew, and a note says why.
        let mut unreadable = signed(now, "demo-callback-secret");
        unreadable[1].1 = "2026-11-25 10:00".into();
        resign(&mut unreadable);
        let verified = verify(&unreadable);
        assert_eq!(verified.clock_skew_secs, None);
        assert!(verified.timestamp_note.unwrap().contains("is not yyyyMMddHHmmss"));
        let mut missing = signed(now, "demo-callback-secret");
        missing.remove(1);
        resign(&mut missing);
        assert_eq!(
            verify(&missing).timestamp_note.as_deref(),
            Some("TimeStamp is missing; applied all the same")
        );
    }

    /// Signs `fields` again after a change (replacing the last field, the sign).
    fn resign(fields: &mut Vec<(String, String)>) {
        fields.pop();
        let sign = sign_fields(fields, "demo-callback-secret");
        fields.push(("Sign".into(), sign));
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

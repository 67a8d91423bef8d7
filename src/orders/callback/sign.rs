//! The contract's signing: the `Sign` of a callback's fields (MD5 over the sorted fields and the
//! shared secret), and its `TimeStamp`, written in Beijing time. The simulator signs with the
//! same functions; checking a received callback is in `verify.rs`.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use md5::{Digest, Md5};

/// The contract's sign: every field but `Sign`/`sign` whose value is not empty after trimming,
/// sorted by name, concatenated as name+value, with the secret before and after, lower-cased,
/// MD5, upper-case hex.
pub fn sign_fields<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)], secret: &str) -> String {
    let mut kept: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
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

/// Beijing time (UTC+8), which Haier's `TimeStamp` is written in.
fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// `yyyyMMddHHmmss` in Beijing time.
pub fn beijing_timestamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing()).format("%Y%m%d%H%M%S").to_string()
}

/// Reads a `TimeStamp` (`yyyyMMddHHmmss`, Beijing time) as a UTC instant.
pub fn parse_beijing_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y%m%d%H%M%S").ok()?;
    beijing()
        .from_local_datetime(&naive)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_a_known_answer() {
        // printf '%s' 'sappkeyadata{"x":1}methodmtimestamp20260101120000s' | md5sum
        //   2362243f038a1027f51c8639d57788f2
        let fields = [
            ("TimeStamp", "20260101120000"),
            ("Method", "m"),
            ("AppKey", "a"),
            ("Data", r#"{"x":1}"#),
            ("Sign", "ignored"),
            ("Blank", "   "),
        ];
        assert_eq!(sign_fields(&fields, "s"), "2362243F038A1027F51C8639D57788F2");
        // The whole text is lower-cased: case in values and secret does not change the sign.
        let upper = [
            ("TimeStamp", "20260101120000"),
            ("Method", "M"),
            ("AppKey", "A"),
            ("Data", r#"{"X":1}"#),
        ];
        assert_eq!(sign_fields(&upper, "S"), "2362243F038A1027F51C8639D57788F2");
    }

    #[test]
    fn sign_of_a_demo_callback_matches_md5sum() {
        // printf '%s' 'demo-callback-secretappkeydemo-app-keydata{"platformorderno":"so-1"}methodhmm.scm_heorder.confirmtimestamp20261124180000demo-callback-secret' | md5sum
        //   3ceaa6084f91f05fddc3c7af9b677ad2
        let fields = [
            ("AppKey", "demo-app-key"),
            ("TimeStamp", "20261124180000"),
            ("Method", "hmm.scm_heorder.confirm"),
            ("Data", r#"{"PlatformOrderNo":"SO-1"}"#),
        ];
        assert_eq!(
            sign_fields(&fields, "demo-callback-secret"),
            "3CEAA6084F91F05FDDC3C7AF9B677AD2"
        );
    }

    #[test]
    fn timestamps_are_beijing_time() {
        let at = parse_beijing_timestamp("20261125013005").unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 11, 24, 17, 30, 5).unwrap());
        assert_eq!(beijing_timestamp(at), "20261125013005");
        assert_eq!(parse_beijing_timestamp("2026-11-25"), None);
    }
}

//! Any bytes as a callback's form body: verification and the parsing of `Data` must return,
//! never panic. The same fields, signed with the shared secret and stamped now, must then pass
//! the sign check (a correctly signed callback is never refused for its sign).
#![no_main]

use chrono::Utc;
use haier_sync::config::{CallbackConfig, Secret};
use haier_sync::orders::callback::{beijing_timestamp, sign_fields, verify_callback};
use haier_sync::orders::notices::{parse_notice, NoticeKind};
use libfuzzer_sys::fuzz_target;

const APP_KEY: &str = "fuzz-app";
const SECRET: &str = "fuzz-secret";

fuzz_target!(|body: &[u8]| {
    let config = CallbackConfig {
        listen: "127.0.0.1:0".parse().expect("a literal address"),
        app_key: APP_KEY.to_owned(),
        secret: Secret::new(SECRET),
        max_body_bytes: 65_536,
        clock_skew_warn_secs: 600,
        rejected_per_minute: 6,
        rejected_burst: 20,
    };
    let now = Utc::now();
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    if let Ok(verified) = verify_callback(&fields, &config, now) {
        if let Some(kind) = NoticeKind::from_method(&verified.method) {
            let _ = parse_notice(kind, &verified.data);
        }
    }
    for (_, value) in &fields {
        for method in ["hmm.scm_heorder.confirm", "hmm.scm_heorder.cancel", "hmm.scm_heorder.oostock"] {
            if let Some(kind) = NoticeKind::from_method(method) {
                let _ = parse_notice(kind, value);
            }
        }
    }

    // Signed as Haier signs: the sign check must pass.
    let mut signed: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(k, _)| {
            !["sign", "appkey", "timestamp"].contains(&k.to_ascii_lowercase().as_str())
        })
        .collect();
    signed.push(("AppKey".to_owned(), APP_KEY.to_owned()));
    signed.push(("TimeStamp".to_owned(), beijing_timestamp(now)));
    let sign = sign_fields(&signed, SECRET);
    signed.push(("Sign".to_owned(), sign));
    if let Err(rejection) = verify_callback(&signed, &config, now) {
        assert!(
            rejection.code != "bad_sign" && rejection.code != "unknown_app_key",
            "a correctly signed callback was refused: {rejection:?}"
        );
    }
});

//! The envelope of a business reply (`success`, `errCode`, `errorMsg`, `data`): data, a refusal
//! or a throttle. What the data means is `reply.rs`'s; token replies are `token.rs`'s.

use super::lenient::{to_bool, to_text};
use serde_json::Value;

/// What a business reply said, once the envelope is opened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Envelope {
    /// `success:true` (or no envelope at all): the payload.
    Data(Value),
    /// `success:false`: Haier's error code (`errCode`, else `code`) and message.
    Refused { code: String, message: String },
    /// `success:false, code:429` on a 200: treat as a 429.
    Throttled,
}

/// Why a reply that is JSON is still not an answer: neither the envelope nor a bare list.
const NOT_AN_ENVELOPE: &str = "the reply is neither Haier's envelope (no `success`) nor a list";

/// Opens the envelope `{"success","code","errCode","errorMsg","data",…}`. A bare array is the
/// payload itself. Anything else that is not an object with a readable `success` (or an
/// `errCode`, a refusal) is an error: read as data, a broken reply would become an empty list.
pub(crate) fn open_envelope(body: &[u8]) -> Result<Envelope, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the reply is not JSON: {e}"))?;
    let mut map = match value {
        Value::Object(map) => map,
        Value::Array(_) => return Ok(Envelope::Data(value)),
        _ => return Err(NOT_AN_ENVELOPE.to_owned()),
    };
    let success = match map.get("success") {
        None => None,
        Some(given) => {
            Some(to_bool(given).ok_or_else(|| format!("`success` is neither true nor false: {given}"))?)
        }
    };
    let err_code = map.get("errCode").and_then(to_text).filter(|c| !c.is_empty());
    let refused = match success {
        Some(success) => !success,
        None if err_code.is_some() => true,
        None => return Err(NOT_AN_ENVELOPE.to_owned()),
    };
    if refused {
        let code_field = map.get("code").and_then(to_text);
        if err_code.is_none() && code_field.as_deref() == Some("429") {
            return Ok(Envelope::Throttled);
        }
        let code = err_code.or(code_field).unwrap_or_else(|| "UNKNOWN".to_owned());
        let message = ["errorMsg", "message", "msg", "error"]
            .iter()
            .find_map(|k| map.get(*k).and_then(to_text).filter(|m| !m.is_empty()))
            .unwrap_or_default();
        return Ok(Envelope::Refused { code, message });
    }
    Ok(Envelope::Data(map.remove("data").unwrap_or(Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(body: Value) -> Value {
        match open_envelope(body.to_string().as_bytes()).unwrap() {
            Envelope::Data(d) => d,
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn the_envelope_yields_data_or_a_refusal() {
        let ok = json!({"success":true,"code":0,"errCode":null,"infoMsgs":[],"warningMsgs":[],
                        "errorMsg":null,"data":[1],"error":null,"extra":"ignored"});
        assert_eq!(data(ok), json!([1]));
        let refused =
            json!({"success":false,"code":1,"errCode":"PASSWORD_ERROR","errorMsg":"密码错误","data":null});
        assert_eq!(
            open_envelope(refused.to_string().as_bytes()).unwrap(),
            Envelope::Refused {
                code: "PASSWORD_ERROR".into(),
                message: "密码错误".into()
            }
        );
        let throttled = json!({"success":false,"code":429,"errorMsg":"请求过于频繁"});
        assert_eq!(
            open_envelope(throttled.to_string().as_bytes()).unwrap(),
            Envelope::Throttled
        );
        // "false" as a string, no errCode: the code stands in.
        let refused = json!({"success":"false","code":"1","message":"no"});
        assert_eq!(
            open_envelope(refused.to_string().as_bytes()).unwrap(),
            Envelope::Refused {
                code: "1".into(),
                message: "no".into()
            }
        );
        assert_eq!(data(json!([{"a":1}])), json!([{"a":1}]));
        assert_eq!(data(json!({"success":true})), Value::Null);
        assert!(open_envelope(b"<html>502</html>").is_err());
        // A 200 that is neither the envelope nor a list is not data (an empty list read from
        // it would zero the stock).
        for broken in [
            json!({"a":1}),
            json!(true),
            json!(null),
            json!("ok"),
            json!(0),
            json!({}),
        ] {
            assert_eq!(
                open_envelope(broken.to_string().as_bytes()),
                Err(NOT_AN_ENVELOPE.to_owned()),
                "{broken}"
            );
        }
        assert!(open_envelope(br#"{"success":"maybe","data":[]}"#).is_err());
        assert!(open_envelope(br#"{"success":null,"data":[]}"#).is_err());
    }
}

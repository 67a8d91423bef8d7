//! Reading a business request body the way Haier's Java services do: a JSON object whose absent,
//! `null` and blank fields count as missing, and whose numbers may come as numeric strings.
//! Which fields a call requires is the handlers' business.

use super::reply::BizError;
use serde_json::{Map, Value};

/// A request body: a JSON object.
#[derive(Debug)]
pub(crate) struct Fields(pub Map<String, Value>);

impl Fields {
    /// Parses a body; an empty body or one that is not a JSON object is `PARAM_MISSING`.
    pub fn parse(body: &[u8]) -> Result<Self, BizError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(BizError {
                err_code: "PARAM_MISSING",
                message: "请求体为空".into(),
            });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(BizError {
                err_code: "PARAM_MISSING",
                message: "请求体必须是JSON对象".into(),
            }),
            Err(_) => Err(BizError {
                err_code: "PARAM_MISSING",
                message: "请求体不是合法的JSON".into(),
            }),
        }
    }

    /// The value of `name` unless it is absent or `null`.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A text field (a JSON string, or a number or boolean taken as text), trimmed; absent,
    /// `null` and blank give `None`.
    pub fn text(&self, name: &str) -> Option<String> {
        value_text(self.value(name)?)
    }

    /// A required text field.
    pub fn require_text(&self, name: &str) -> Result<String, BizError> {
        self.text(name).ok_or_else(|| BizError::missing(name))
    }

    /// A required whole number (a JSON integer or a string of digits).
    pub fn require_integer(&self, name: &str) -> Result<i64, BizError> {
        let value = self.value(name).ok_or_else(|| BizError::missing(name))?;
        value_integer(value).ok_or_else(|| BizError::malformed(name, "必须是整数"))
    }

    /// A required number (a JSON number or a numeric string).
    pub fn require_number(&self, name: &str) -> Result<(), BizError> {
        let value = self.value(name).ok_or_else(|| BizError::missing(name))?;
        value_is_number(value)
            .then_some(())
            .ok_or_else(|| BizError::malformed(name, "必须是数字"))
    }
}

/// A JSON value as trimmed, non-empty text.
pub(crate) fn value_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A JSON integer, or a string holding one.
pub(crate) fn value_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON number, or a string holding a decimal number.
pub(crate) fn value_is_number(value: &Value) -> bool {
    match value {
        Value::Number(_) => true,
        Value::String(s) => s.trim().parse::<rust_decimal::Decimal>().is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_blank_and_absent_fields_are_missing() {
        let fields = Fields::parse(br#"{"a": null, "b": "  ", "c": "x", "n": 12, "s": "7"}"#).unwrap();
        for name in ["a", "b", "zz"] {
            assert_eq!(fields.require_text(name).unwrap_err().err_code, "PARAM_MISSING");
        }
        assert_eq!(fields.require_text("c").unwrap(), "x");
        assert_eq!(fields.require_text("n").unwrap(), "12");
        assert_eq!(fields.require_integer("s").unwrap(), 7);
        assert!(fields.require_integer("c").unwrap_err().message.contains('c'));
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused() {
        for body in [&b""[..], b"[]", b"{not json", b"  "] {
            assert_eq!(Fields::parse(body).unwrap_err().err_code, "PARAM_MISSING");
        }
    }
}

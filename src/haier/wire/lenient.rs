//! Lenient reading of Haier's loosely typed scalars: string numbers, string booleans, a single
//! object for a list, null for empty; as plain functions and as serde adapters.

use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr;

/// Text of a scalar: strings as they are, numbers and booleans as JSON writes them.
pub(super) fn to_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// `true`/`false`, `1`/`0`, `"1"`/`"0"`, `"true"`/`"false"`, `"Y"`/`"N"`; anything else is unknown.
pub(super) fn to_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "y" | "yes" => Some(true),
            "0" | "false" | "n" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A decimal from a JSON number or string; null or empty text is `None`.
pub(super) fn to_decimal(value: &Value) -> Result<Option<Decimal>, String> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        other => return Err(format!("expected a decimal, got {other}")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .map_err(|_| format!("expected a decimal, got {text:?}"))
}

/// An integer from a JSON number or string (`"30"`, `30`, `"30.0"`); null or empty is `None`.
pub(super) fn to_i64(value: &Value) -> Result<Option<i64>, String> {
    if let Some(i) = value.as_i64() {
        return Ok(Some(i));
    }
    match to_decimal(value)? {
        None => Ok(None),
        Some(d) if d.fract().is_zero() => i64::try_from(d)
            .map(Some)
            .map_err(|_| format!("integer out of range: {d}")),
        Some(d) => Err(format!("expected an integer, got {d}")),
    }
}

// serde adapters (`deserialize_with = "lenient::…"`); every one takes null and a missing key.

pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(d.deserialize_any(ScalarVisitor)?.text())
}

pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_string(d)?.unwrap_or_default())
}

pub(super) fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    to_decimal(&value).map_err(D::Error::custom)
}

pub(super) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    Ok(to_i64(&value).map_err(D::Error::custom)?.unwrap_or(0))
}

pub(super) fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match d.deserialize_any(ScalarVisitor)? {
        Scalar::Text(s) => to_bool(&Value::String(s)),
        Scalar::Other(value) => to_bool(&value),
    })
}

/// A list; null is empty, a single object is a list of one, a comma-separated string of
/// URLs is split.
pub(super) fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    list_of(value).map_err(D::Error::custom)
}

pub(super) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match d.deserialize_any(ScalarVisitor)? {
        Scalar::Text(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Scalar::Other(Value::Array(items)) => Ok(items.iter().filter_map(to_text).collect()),
        Scalar::Other(Value::Null) => Ok(Vec::new()),
        Scalar::Other(other) => Ok(to_text(&other).into_iter().collect()),
    }
}

/// A value as the lenient adapters read it: a JSON string taken as it is (no tree built, no
/// copy), anything else as a [`Value`] (numbers keep their exact text).
enum Scalar {
    Text(String),
    Other(Value),
}

impl Scalar {
    fn text(self) -> Option<String> {
        match self {
            Scalar::Text(s) => Some(s),
            Scalar::Other(value) => to_text(&value),
        }
    }
}

struct ScalarVisitor;

impl<'de> serde::de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::Bool(v)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::from(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::from(v)))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::Null))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(Scalar::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        // Also where a number arrives when serde_json keeps numbers' exact text.
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Scalar::Other)
    }
}

/// A payload that should be a list: null is empty, an object is a list of one; any other
/// scalar is an error.
pub(super) fn list_of<T: DeserializeOwned>(value: Value) -> Result<Vec<T>, String> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        Value::Object(item) => vec![Value::Object(item)],
        other => return Err(format!("expected a list, got {other}")),
    };
    items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_accept_strings_numbers_and_integral_decimals() {
        assert_eq!(to_i64(&json!("30")).unwrap(), Some(30));
        assert_eq!(to_i64(&json!(" 7 ")).unwrap(), Some(7));
        assert_eq!(to_i64(&json!("30.0")).unwrap(), Some(30));
        assert_eq!(to_i64(&json!(30)).unwrap(), Some(30));
        assert_eq!(to_i64(&json!("")).unwrap(), None);
        assert!(to_i64(&json!("3.5")).is_err());
        assert_eq!(to_bool(&json!("true")), Some(true));
        assert_eq!(to_bool(&json!("0")), Some(false));
        assert_eq!(to_bool(&json!("maybe")), None);
    }
}

//! JSON values to ClickHouse values, per destination type.
//!
//! Rules (documented in docs/formats.md):
//! - integers accept JSON integers, integral floats, decimal strings (the
//!   only exact way to send 128- and 256-bit values) and booleans;
//! - Decimal accepts numbers and strings, exactly; extra fraction digits are
//!   truncated toward zero;
//! - DateTime/DateTime64 accept ISO-8601 (`T` or space, optional fraction,
//!   `Z` or an offset; no offset means UTC) and epoch numbers, whose unit is
//!   told by magnitude: below 10^11 seconds, below 10^14 milliseconds,
//!   below 10^17 microseconds, otherwise nanoseconds;
//! - Date/Date32 accept `YYYY-MM-DD` (or a date-time, whose date is taken)
//!   and a number of days;
//! - String accepts any JSON value: non-strings are stored as their JSON
//!   text; JSON columns receive the value's JSON text;
//! - `null` in a non-Nullable column, like a missing field, becomes the
//!   type's zero value (`zero_value`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sluice_clickhouse::rowbinary::Wide;
use sluice_clickhouse::{ChType, Value};
use sonic_rs::{JsonValueTrait, Value as Json};

use crate::json::{self, kind, Kind};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot convert {found} to {ty}: {reason}")]
pub struct ConvertError {
    pub found: String,
    pub ty: String,
    pub reason: String,
}

fn fail(json: &Json, ty: &ChType, reason: impl Into<String>) -> ConvertError {
    let mut found = json::to_json_string(json);
    if found.len() > 80 {
        // Cut on a character boundary: a byte offset inside a multi-byte
        // character would panic.
        let mut cut = 77;
        while !found.is_char_boundary(cut) {
            cut -= 1;
        }
        found.truncate(cut);
        found.push_str("...");
    }
    ConvertError {
        found,
        ty: ty.to_string(),
        reason: reason.into(),
    }
}

/// The value a missing field takes in a column of type `ty`.
pub fn zero_value(ty: &ChType) -> Value {
    match ty {
        ChType::Nullable(_) | ChType::Variant(_) => Value::Null,
        ChType::LowCardinality(inner) => zero_value(inner),
        ChType::UInt8
        | ChType::UInt16
        | ChType::UInt32
        | ChType::UInt64
        | ChType::UInt128
        | ChType::UInt256
        | ChType::Int8
        | ChType::Int16
        | ChType::Int32
        | ChType::Int64
        | ChType::Int128
        | ChType::Int256 => Value::int(0),
        ChType::Float32 | ChType::Float64 => Value::Float(0.0),
        ChType::Decimal { .. } => Value::Decimal(Wide::from_i128(0)),
        ChType::Bool => Value::Bool(false),
        ChType::String | ChType::FixedString(_) => Value::Bytes(Vec::new()),
        ChType::Json => Value::string("{}"),
        ChType::Date | ChType::Date32 => Value::Date(0),
        ChType::DateTime(_) => Value::DateTime(0),
        ChType::DateTime64(..) => Value::DateTime64(0),
        ChType::Uuid => Value::Uuid(0),
        ChType::Ipv4 => Value::Ipv4(0),
        ChType::Ipv6 => Value::Ipv6([0; 16]),
        ChType::Enum8(items) => Value::Enum(items.first().map_or(0, |(_, v)| i16::from(*v))),
        ChType::Enum16(items) => Value::Enum(items.first().map_or(0, |(_, v)| *v)),
        ChType::Array(_) => Value::Array(Vec::new()),
        ChType::Map(..) => Value::Map(Vec::new()),
        ChType::Tuple(items) => Value::Tuple(items.iter().map(|(_, t)| zero_value(t)).collect()),
    }
}

pub fn convert(ty: &ChType, json: &Json) -> Result<Value, ConvertError> {
    if json.is_null() {
        return Ok(zero_value(ty));
    }
    match ty {
        ChType::Nullable(inner) => convert(inner, json),
        ChType::LowCardinality(inner) => convert(inner, json),
        ChType::UInt8
        | ChType::UInt16
        | ChType::UInt32
        | ChType::UInt64
        | ChType::UInt128
        | ChType::UInt256
        | ChType::Int8
        | ChType::Int16
        | ChType::Int32
        | ChType::Int64
        | ChType::Int128
        | ChType::Int256 => integer(json)
            .map(Value::Int)
            .ok_or_else(|| fail(json, ty, "not an integer")),
        ChType::Float32 | ChType::Float64 => float(json)
            .map(Value::Float)
            .ok_or_else(|| fail(json, ty, "not a number")),
        ChType::Decimal { scale, .. } => {
            let text = match kind(json) {
                Kind::Number(n) => n.to_string(),
                Kind::String(s) => s.trim().to_owned(),
                _ => return Err(fail(json, ty, "not a number")),
            };
            scaled_decimal(&text, *scale)
                .map(Value::Decimal)
                .ok_or_else(|| fail(json, ty, "not a decimal number"))
        }
        ChType::Bool => match kind(json) {
            Kind::Bool(b) => Ok(Value::Bool(b)),
            Kind::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                Ok(Value::Bool(n.as_u64() == Some(1)))
            }
            Kind::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Value::Bool(true)),
            Kind::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => {
                Ok(Value::Bool(false))
            }
            _ => Err(fail(json, ty, "not a boolean")),
        },
        ChType::String | ChType::FixedString(_) => Ok(Value::Bytes(match kind(json) {
            Kind::String(s) => s.as_bytes().to_vec(),
            _ => json::to_json_string(json).into_bytes(),
        })),
        ChType::Json => match kind(json) {
            Kind::Object(_) => Ok(Value::Bytes(json::to_json_string(json).into_bytes())),
            Kind::String(s) if s.trim_start().starts_with('{') => {
                Ok(Value::Bytes(s.as_bytes().to_vec()))
            }
            _ => Err(fail(json, ty, "a JSON column takes an object")),
        },
        ChType::Date | ChType::Date32 => date(json)
            .map(Value::Date)
            .ok_or_else(|| fail(json, ty, "not a date (YYYY-MM-DD or days since 1970-01-01)")),
        ChType::DateTime(_) => timestamp_nanos(json)
            .map(|ns| Value::DateTime(ns.div_euclid(1_000_000_000) as i64))
            .ok_or_else(|| fail(json, ty, "not a date-time (ISO-8601 or epoch)")),
        ChType::DateTime64(precision, _) => {
            let ns = timestamp_nanos(json)
                .ok_or_else(|| fail(json, ty, "not a date-time (ISO-8601 or epoch)"))?;
            let divisor = 10i128.pow(9u32.saturating_sub(u32::from(*precision)));
            let multiplier = 10i128.pow(u32::from(*precision).saturating_sub(9));
            i64::try_from(ns.div_euclid(divisor) * multiplier)
                .map(Value::DateTime64)
                .map_err(|_| fail(json, ty, "out of range"))
        }
        ChType::Uuid => json
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
            .map(|u| Value::Uuid(u.as_u128()))
            .ok_or_else(|| fail(json, ty, "not a UUID")),
        ChType::Ipv4 => match kind(json) {
            Kind::String(s) => s
                .trim()
                .parse::<std::net::Ipv4Addr>()
                .map(|ip| Value::Ipv4(u32::from(ip)))
                .map_err(|_| fail(json, ty, "not an IPv4 address")),
            Kind::Number(n) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(Value::Ipv4)
                .ok_or_else(|| fail(json, ty, "not an IPv4 address")),
            _ => Err(fail(json, ty, "not an IPv4 address")),
        },
        ChType::Ipv6 => json
            .as_str()
            .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
            .map(|ip| match ip {
                std::net::IpAddr::V6(v6) => Value::Ipv6(v6.octets()),
                std::net::IpAddr::V4(v4) => Value::Ipv6(v4.to_ipv6_mapped().octets()),
            })
            .ok_or_else(|| fail(json, ty, "not an IP address")),
        ChType::Enum8(items) => {
            enum_value(json, items.iter().map(|(n, v)| (n.as_str(), i16::from(*v))))
                .ok_or_else(|| fail(json, ty, "not one of the enum's names or values"))
        }
        ChType::Enum16(items) => enum_value(json, items.iter().map(|(n, v)| (n.as_str(), *v)))
            .ok_or_else(|| fail(json, ty, "not one of the enum's names or values")),
        ChType::Array(inner) => match kind(json) {
            Kind::Array(items) => items
                .iter()
                .map(|item| convert(inner, item))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            _ => Err(fail(json, ty, "not an array")),
        },
        ChType::Tuple(types) => match kind(json) {
            Kind::Array(items) if items.len() == types.len() => types
                .iter()
                .zip(items.iter())
                .map(|((_, t), item)| convert(t, item))
                .collect::<Result<_, _>>()
                .map(Value::Tuple),
            Kind::Object(fields) if types.iter().all(|(name, _)| name.is_some()) => types
                .iter()
                .map(
                    |(name, t)| match json::get(fields, name.as_deref().unwrap_or_default()) {
                        Some(v) => convert(t, v),
                        None => Ok(zero_value(t)),
                    },
                )
                .collect::<Result<_, _>>()
                .map(Value::Tuple),
            _ => Err(fail(
                json,
                ty,
                "a Tuple takes an array of its arity (or an object for named tuples)",
            )),
        },
        ChType::Map(key_type, value_type) => match kind(json) {
            Kind::Object(fields) => json::entries(fields)
                .into_iter()
                .map(|(k, v)| {
                    let key = convert(key_type, &map_key(k, key_type))?;
                    Ok((key, convert(value_type, v)?))
                })
                .collect::<Result<_, _>>()
                .map(Value::Map),
            _ => Err(fail(json, ty, "a Map takes an object")),
        },
        ChType::Variant(types) => {
            // The first variant type matching the JSON kind wins; then any
            // that converts at all.
            let json_kind = kind(json);
            let matches_kind = |t: &ChType| match (&json_kind, t.value_type()) {
                (
                    Kind::String(_),
                    ChType::String
                    | ChType::FixedString(_)
                    | ChType::Uuid
                    | ChType::Ipv4
                    | ChType::Ipv6
                    | ChType::Date
                    | ChType::Date32
                    | ChType::DateTime(_)
                    | ChType::DateTime64(..)
                    | ChType::Enum8(_)
                    | ChType::Enum16(_),
                ) => true,
                (Kind::Number(n), t) if n.is_f64() => matches!(
                    t,
                    ChType::Float32 | ChType::Float64 | ChType::Decimal { .. }
                ),
                (Kind::Number(_), t) => t.is_integer(),
                (Kind::Bool(_), ChType::Bool) => true,
                (Kind::Array(_), ChType::Array(_) | ChType::Tuple(_)) => true,
                (Kind::Object(_), ChType::Map(..) | ChType::Json | ChType::Tuple(_)) => true,
                _ => false,
            };
            let mut fallback = None;
            for (index, t) in types.iter().enumerate() {
                if let Ok(value) = convert(t, json) {
                    if matches_kind(t) {
                        return Ok(Value::Variant(index, Box::new(value)));
                    }
                    fallback.get_or_insert((index, value));
                }
            }
            fallback
                .map(|(index, value)| Value::Variant(index, Box::new(value)))
                .ok_or_else(|| fail(json, ty, "matches none of the variant's types"))
        }
    }
}

fn map_key(key: &str, key_type: &ChType) -> Json {
    match key_type.value_type() {
        ChType::String
        | ChType::FixedString(_)
        | ChType::Uuid
        | ChType::Ipv4
        | ChType::Ipv6
        | ChType::Date
        | ChType::Date32
        | ChType::DateTime(_)
        | ChType::DateTime64(..)
        | ChType::Enum8(_)
        | ChType::Enum16(_) => Json::from(key),
        // The key read as a JSON document of its own (one value, no more).
        _ => {
            let mut values = json::values(key.as_bytes());
            match (values.next(), values.next()) {
                (Some(Ok(value)), None) => value,
                _ => Json::from(key),
            }
        }
    }
}

fn integer(json: &Json) -> Option<Wide> {
    match kind(json) {
        Kind::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Wide::from_i128(i128::from(i)))
            } else if let Some(u) = n.as_u64() {
                Some(Wide::from_u128(u128::from(u)))
            } else {
                let f = n.as_f64();
                (f.fract() == 0.0 && f.abs() < 1.7e38).then(|| Wide::from_i128(f as i128))
            }
        }
        Kind::String(s) => Wide::parse_decimal(s.trim()),
        Kind::Bool(b) => Some(Wide::from_i128(i128::from(b))),
        _ => None,
    }
}

fn float(json: &Json) -> Option<f64> {
    match kind(json) {
        Kind::Number(n) => Some(n.as_f64()),
        Kind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        Kind::Bool(b) => Some(f64::from(u8::from(b))),
        _ => None,
    }
}

/// `text` × 10^scale as an exact integer; fraction digits beyond the scale
/// are truncated toward zero.
pub fn scaled_decimal(text: &str, scale: u8) -> Option<Wide> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (sign, unsigned) = match mantissa.as_bytes().first()? {
        b'-' => ("-", &mantissa[1..]),
        b'+' => ("", &mantissa[1..]),
        _ => ("", mantissa),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    // Position of the decimal point after shifting by the exponent and scale.
    let point = int_part.len() as i64 + i64::from(exponent) + i64::from(scale);
    if point > 100 {
        return None;
    }
    let kept = if point <= 0 {
        String::from("0")
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        digits[..point as usize].to_owned()
    };
    Wide::parse_decimal(&format!(
        "{sign}{}",
        if kept.is_empty() { "0" } else { &kept }
    ))
}

fn date(json: &Json) -> Option<i64> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    match kind(json) {
        Kind::String(s) => {
            let s = s.trim();
            let day = s
                .get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())?;
            Some((day - epoch).num_days())
        }
        Kind::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Nanoseconds since the epoch, UTC.
pub fn timestamp_nanos(json: &Json) -> Option<i128> {
    match kind(json) {
        Kind::Number(n) => {
            if let Some(i) = n.as_i64() {
                epoch_by_magnitude(i128::from(i))
            } else {
                let f = n.as_f64();
                // Fractional numbers are seconds (or ms, ... by magnitude).
                let unit = epoch_unit_nanos(f.abs() as i128);
                Some((f * unit as f64) as i128)
            }
        }
        Kind::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i128>() {
                return epoch_by_magnitude(i);
            }
            if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
                return Some(
                    i128::from(dt.timestamp()) * 1_000_000_000
                        + i128::from(dt.timestamp_subsec_nanos()),
                );
            }
            for format in [
                "%Y-%m-%d %H:%M:%S%.f%:z",
                "%Y-%m-%dT%H:%M:%S%.f%z",
                "%Y-%m-%d %H:%M:%S%.f%z",
            ] {
                if let Ok(dt) = DateTime::parse_from_str(s, format) {
                    return Some(
                        i128::from(dt.timestamp()) * 1_000_000_000
                            + i128::from(dt.timestamp_subsec_nanos()),
                    );
                }
            }
            for format in [
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M",
                "%Y-%m-%dT%H:%M",
                "%Y/%m/%d %H:%M:%S%.f",
            ] {
                if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
                    let dt = naive.and_utc();
                    return Some(
                        i128::from(dt.timestamp()) * 1_000_000_000
                            + i128::from(dt.timestamp_subsec_nanos()),
                    );
                }
            }
            if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                let dt: DateTime<Utc> = day.and_hms_opt(0, 0, 0)?.and_utc();
                return Some(i128::from(dt.timestamp()) * 1_000_000_000);
            }
            None
        }
        _ => None,
    }
}

fn epoch_unit_nanos(magnitude: i128) -> i128 {
    if magnitude < 100_000_000_000 {
        1_000_000_000
    } else if magnitude < 100_000_000_000_000 {
        1_000_000
    } else if magnitude < 100_000_000_000_000_000 {
        1_000
    } else {
        1
    }
}

/// `None` past what i128 nanoseconds hold: such a value is no time at all.
fn epoch_by_magnitude(v: i128) -> Option<i128> {
    v.checked_mul(epoch_unit_nanos(v.checked_abs()?))
}

fn enum_value<'a>(json: &Json, mut items: impl Iterator<Item = (&'a str, i16)>) -> Option<Value> {
    match kind(json) {
        Kind::String(s) => items
            .find(|(name, _)| *name == s)
            .map(|(_, v)| Value::Enum(v)),
        Kind::Number(n) => {
            let v = i16::try_from(n.as_i64()?).ok()?;
            items.any(|(_, x)| x == v).then_some(Value::Enum(v))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::json;

    fn ty(s: &str) -> ChType {
        ChType::parse(s).unwrap()
    }

    #[test]
    fn epochs_beyond_i128_are_refused_not_wrapped() {
        assert_eq!(
            timestamp_nanos(&json!("-170141183460469231731687303715884105728")),
            None
        );
        assert_eq!(
            timestamp_nanos(&json!(1_700_000_000)),
            Some(1_700_000_000_000_000_000)
        );
    }

    #[test]
    fn integers() {
        assert_eq!(convert(&ty("UInt8"), &json!(200)).unwrap(), Value::int(200));
        assert_eq!(
            convert(&ty("Int64"), &json!("-42")).unwrap(),
            Value::int(-42)
        );
        assert_eq!(convert(&ty("Int64"), &json!(3.0)).unwrap(), Value::int(3));
        assert!(convert(&ty("Int64"), &json!(3.5)).is_err());
        assert!(convert(&ty("Int64"), &json!("x")).is_err());
        assert_eq!(
            convert(&ty("UInt64"), &json!(u64::MAX)).unwrap(),
            Value::Int(Wide::from_u128(u128::from(u64::MAX)))
        );
    }

    #[test]
    fn decimals_are_exact() {
        let d = |text: &str, scale| {
            scaled_decimal(text, scale).map(|w| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&w.twos_complement()[..16]);
                i128::from_le_bytes(b)
            })
        };
        assert_eq!(d("12.34", 2), Some(1234));
        assert_eq!(d("-12.345", 2), Some(-1234));
        assert_eq!(d("1e3", 2), Some(100_000));
        assert_eq!(d("1.5e-1", 3), Some(150));
        assert_eq!(d(".5", 1), Some(5));
        assert_eq!(d("7", 0), Some(7));
        assert_eq!(d("abc", 2), None);
        assert_eq!(d("", 2), None);
        assert_eq!(
            convert(&ty("Decimal(18, 2)"), &json!(0.1)).unwrap(),
            Value::Decimal(Wide::from_i128(10))
        );
    }

    #[test]
    fn timestamps() {
        let ns = |v: Json| timestamp_nanos(&v).unwrap();
        let expected = 1_700_000_000_123_000_000i128;
        assert_eq!(ns(json!("2023-11-14T22:13:20.123Z")), expected);
        assert_eq!(ns(json!("2023-11-14 22:13:20.123")), expected);
        assert_eq!(ns(json!("2023-11-15T00:13:20.123+02:00")), expected);
        assert_eq!(ns(json!(1_700_000_000_123i64)), expected);
        assert_eq!(ns(json!(1_700_000_000_123_000i64)), expected);
        assert_eq!(ns(json!(1_700_000_000_123_000_000i64)), expected);
        assert_eq!(ns(json!(1_700_000_000)), 1_700_000_000_000_000_000);
        assert_eq!(ns(json!("1700000000")), 1_700_000_000_000_000_000);
        assert_eq!(
            convert(&ty("DateTime64(3)"), &json!("2023-11-14T22:13:20.123Z")).unwrap(),
            Value::DateTime64(1_700_000_000_123)
        );
        assert_eq!(
            convert(&ty("DateTime"), &json!("2023-11-14T22:13:20.999Z")).unwrap(),
            Value::DateTime(1_700_000_000)
        );
        assert_eq!(
            convert(&ty("Date"), &json!("1970-01-11")).unwrap(),
            Value::Date(10)
        );
        assert_eq!(
            convert(&ty("Date32"), &json!("1969-12-31")).unwrap(),
            Value::Date(-1)
        );
        assert!(convert(&ty("DateTime"), &json!("yesterday")).is_err());
    }

    #[test]
    fn long_values_in_errors_are_cut_between_characters() {
        let text = format!("a{}", "é".repeat(60));
        let error = convert(&ty("Int64"), &json!(text.as_str())).unwrap_err();
        assert!(error.found.ends_with("..."), "{}", error.found);
        assert!(error.found.len() <= 80);
    }

    #[test]
    fn composites_and_special_types() {
        assert_eq!(
            convert(&ty("Array(Nullable(String))"), &json!(["a", null])).unwrap(),
            Value::Array(vec![Value::string("a"), Value::Null])
        );
        assert_eq!(
            convert(&ty("Tuple(a UInt8, b String)"), &json!({"b": "x"})).unwrap(),
            Value::Tuple(vec![Value::int(0), Value::string("x")])
        );
        assert_eq!(
            convert(&ty("Map(String, UInt8)"), &json!({"k": 1})).unwrap(),
            Value::Map(vec![(Value::string("k"), Value::int(1))])
        );
        assert_eq!(
            convert(&ty("Map(UInt16, String)"), &json!({"7": "x"})).unwrap(),
            Value::Map(vec![(Value::int(7), Value::string("x"))])
        );
        assert_eq!(
            convert(&ty("String"), &json!({"a": 1})).unwrap(),
            Value::string(r#"{"a":1}"#)
        );
        assert_eq!(
            convert(&ty("JSON"), &json!({"a": 1})).unwrap(),
            Value::string(r#"{"a":1}"#)
        );
        assert_eq!(
            convert(&ty("Enum8('a' = 1, 'b' = 2)"), &json!("b")).unwrap(),
            Value::Enum(2)
        );
        assert!(convert(&ty("Enum8('a' = 1, 'b' = 2)"), &json!("c")).is_err());
        assert_eq!(
            convert(&ty("IPv4"), &json!("1.2.3.4")).unwrap(),
            Value::Ipv4(0x0102_0304)
        );
        assert_eq!(
            convert(&ty("Bool"), &json!("true")).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            convert(&ty("Variant(UInt64, String)"), &json!("12")).unwrap(),
            Value::Variant(1, Box::new(Value::string("12")))
        );
        assert_eq!(
            convert(&ty("Variant(UInt64, String)"), &json!(12)).unwrap(),
            Value::Variant(0, Box::new(Value::int(12)))
        );
        assert_eq!(
            convert(&ty("Nullable(UInt8)"), &json!(null)).unwrap(),
            Value::Null
        );
        assert_eq!(convert(&ty("UInt8"), &json!(null)).unwrap(), Value::int(0));
    }
}

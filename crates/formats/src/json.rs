//! The JSON format (JSONEachRow): a message's objects become rows of the
//! destination's columns, in one pass — parsed with sonic-rs, each column's
//! field looked up as the row plan says, converted by the destination type's
//! rules, and written as RowBinary.
//!
//! Conversion rules (documented in docs/data-plane.md, "Conversions"):
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
//!
//! Reading: messages are parsed with sonic-rs, read with the semantics the decoder had
//! when it used serde_json's `Value` (without `preserve_order` or
//! `arbitrary_precision`), so that moving parsers changes no row:
//!
//! - objects read as sorted maps: a duplicated key takes its last value,
//!   and objects re-serialize with their keys sorted (sonic-rs keeps every
//!   pair, in input order, and `get` returns the first);
//! - nesting deeper than serde_json's limit (128) is a parsing error, which
//!   also keeps sonic-rs, whose parser recurses without a limit, from
//!   overflowing the stack;
//! - `-0`, `-0.0`, `-0e3` stay negative zeros (sonic-rs reads them as +0.0);
//! - numbers print as serde_json printed them (sonic-rs's float formatting
//!   gives the same text as serde_json's ryu; see the tests).
//!
//! What is not kept: serde_json's default float parsing is not correctly
//! rounded (about one double in ten, written with all its digits, came
//! back one unit in the last place off); sonic-rs's is, like ClickHouse's
//! own parser. Error messages name the same position in sonic-rs's words.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use sluice_clickhouse_types::rowbinary::Wide;
use sluice_clickhouse_types::{encode, ChType, Value};
use sonic_rs::{
    Array, JsonContainerTrait, JsonNumberTrait, JsonValueTrait, Number, Object, Value as Json,
    ValueRef,
};

use crate::row::{ColumnSource, ErrorCode, RecordError, RecordMeta, RowPlan, VirtualColumn};
use crate::Decoder;

/// Decodes JSON messages into the rows of a plan.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    plan: RowPlan,
}

impl JsonDecoder {
    pub fn new(plan: RowPlan) -> Self {
        JsonDecoder { plan }
    }
}

impl Decoder for JsonDecoder {
    fn decode(
        &self,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, RecordError> {
        let start = out.len();
        let result = self.decode_into(payload, meta, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn read(&self, payload: &[u8]) -> Result<(Option<u32>, Json), RecordError> {
        let mut rows = Vec::new();
        for value in values(payload) {
            rows.push(value.map_err(|e| RecordError {
                code: ErrorCode::DataParsingError,
                message: format!("not valid JSON: {e}"),
            })?);
        }
        Ok(match rows.len() {
            1 => (None, rows.remove(0)),
            _ => (None, Json::from(sonic_rs::Array::from(rows))),
        })
    }
}

impl JsonDecoder {
    fn decode_into(
        &self,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, RecordError> {
        let parse_error = |message: String| RecordError {
            code: ErrorCode::DataParsingError,
            message,
        };
        let virtuals = if self.plan.uses_virtual {
            Some(virtual_values(payload, meta))
        } else {
            None
        };
        let mut rows = 0;
        for value in values(payload) {
            let value = value.map_err(|e| parse_error(format!("not valid JSON: {e}")))?;
            let Kind::Object(object) = kind(&value) else {
                return Err(parse_error(format!(
                    "expected a JSON object per row, found {}",
                    describe(&value)
                )));
            };
            encode_row(&self.plan, object, virtuals.as_ref(), out)?;
            rows += 1;
        }
        if rows == 0 {
            return Err(parse_error("the message holds no JSON object".into()));
        }
        Ok(rows)
    }
}

/// One row from a record another format read as JSON (Avro, Protobuf):
/// the record must be an object; on error nothing is appended.
pub(crate) fn encode_record(
    plan: &RowPlan,
    record: &Json,
    payload: &[u8],
    meta: &RecordMeta<'_>,
    out: &mut Vec<u8>,
) -> Result<u32, RecordError> {
    let Some(object) = record.as_object() else {
        return Err(RecordError {
            code: ErrorCode::DataParsingError,
            message: "the message is not a record; a row needs one".into(),
        });
    };
    let virtuals = plan.uses_virtual.then(|| virtual_values(payload, meta));
    let start = out.len();
    encode_row(plan, object, virtuals.as_ref(), out).inspect_err(|_| out.truncate(start))?;
    Ok(1)
}

/// One row of the plan's columns from a JSON object (a JSON message's, or
/// another format's record read as one), appended to `out`.
pub(crate) fn encode_row(
    plan: &RowPlan,
    object: &Object,
    virtuals: Option<&VirtualValues>,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let fields = Fields::new(object);
    for column in &plan.columns {
        let value = match &column.source {
            ColumnSource::Field { path, segments } => match lookup(&fields, path, segments) {
                Some(json) => convert(&column.ty, json),
                // RowBinaryWithDefaults: 1 = let ClickHouse apply the
                // column's DEFAULT expression.
                None if plan.with_defaults && column.has_default => {
                    out.push(1);
                    continue;
                }
                None => Ok(zero_value(&column.ty)),
            },
            ColumnSource::Virtual(v) => {
                let null = Json::new();
                let json = virtuals.map_or(&null, |all| all.get(*v));
                convert(&column.ty, json)
            }
        }
        .map_err(|e| RecordError {
            code: ErrorCode::TypeConversionError,
            message: format!("column `{}`: {e}", column.name),
        })?;
        if plan.with_defaults {
            out.push(0);
        }
        encode(&column.ty, &value, out).map_err(|e| RecordError {
            code: ErrorCode::TypeConversionError,
            message: format!("column `{}`: {e}", column.name),
        })?;
    }
    Ok(())
}

// --- the message: fields and virtual columns ---------------------------------

fn describe(value: &Json) -> &'static str {
    match kind(value) {
        Kind::Null => "null",
        Kind::Bool(_) => "a boolean",
        Kind::Number(_) => "a number",
        Kind::String(_) => "a string",
        Kind::Array(_) => "an array",
        Kind::Object(_) => "an object",
    }
}

fn lookup<'a>(fields: &Fields<'a>, path: &str, segments: &[String]) -> Option<&'a Json> {
    if let Some(value) = fields.get(path) {
        return Some(value);
    }
    if segments.len() < 2 {
        return None;
    }
    let mut current = fields.get(&segments[0])?;
    for segment in &segments[1..] {
        current = get(current.as_object()?, segment)?;
    }
    Some(current)
}

pub(crate) struct VirtualValues {
    key: Json,
    timestamp: Json,
    partition: Json,
    offset: Json,
    topic: Json,
    sequence_number: Json,
    header_keys: Json,
    header_values: Json,
    raw: Json,
}

impl VirtualValues {
    fn get(&self, column: VirtualColumn) -> &Json {
        match column {
            VirtualColumn::Key => &self.key,
            VirtualColumn::Timestamp => &self.timestamp,
            VirtualColumn::Partition => &self.partition,
            VirtualColumn::Offset => &self.offset,
            VirtualColumn::Topic | VirtualColumn::Stream => &self.topic,
            VirtualColumn::SequenceNumber => &self.sequence_number,
            VirtualColumn::HeaderKeys => &self.header_keys,
            VirtualColumn::HeaderValues => &self.header_values,
            VirtualColumn::RawMessage => &self.raw,
        }
    }
}

/// Virtual columns as JSON, so they convert to any compatible column type by
/// the same rules as message fields.
pub(crate) fn virtual_values(payload: &[u8], meta: &RecordMeta<'_>) -> VirtualValues {
    let text = |bytes: &[u8]| Json::from(String::from_utf8_lossy(bytes));
    VirtualValues {
        key: meta.key.map_or_else(Json::new, text),
        timestamp: meta
            .timestamp_ms
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .map_or_else(Json::new, |t| {
                Json::from(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string().as_str())
            }),
        partition: Json::from(meta.partition),
        offset: Json::from(meta.offset),
        topic: Json::from(meta.topic),
        sequence_number: meta.sequence_number.map_or_else(Json::new, Json::from),
        header_keys: Json::from(
            meta.headers
                .iter()
                .map(|(k, _)| Json::from(*k))
                .collect::<Vec<_>>(),
        ),
        header_values: Json::from(
            meta.headers
                .iter()
                .map(|(_, v)| v.map_or_else(|| Json::from(""), text))
                .collect::<Vec<_>>(),
        ),
        raw: text(payload),
    }
}

// --- conversion: a JSON value to the destination type -------------------------

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot convert {found} to {ty}: {reason}")]
pub struct ConvertError {
    pub found: String,
    pub ty: String,
    pub reason: String,
}

fn fail(json: &Json, ty: &ChType, reason: impl Into<String>) -> ConvertError {
    let mut found = to_json_string(json);
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
            _ => to_json_string(json).into_bytes(),
        })),
        ChType::Json => match kind(json) {
            Kind::Object(_) => Ok(Value::Bytes(to_json_string(json).into_bytes())),
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
                    |(name, t)| match get(fields, name.as_deref().unwrap_or_default()) {
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
            Kind::Object(fields) => entries(fields)
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
            let mut values = values(key.as_bytes());
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

// --- reading: sonic-rs with serde_json's semantics ---------------------------

/// serde_json's recursion limit: it refused the 128th nested array or object.
const MAX_DEPTH: usize = 128;

/// A JSON number as serde_json classified it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    U64(u64),
    /// Always negative: `-0` is `F64(-0.0)`.
    I64(i64),
    F64(f64),
}

impl Num {
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Num::U64(u) => i64::try_from(u).ok(),
            Num::I64(i) => Some(i),
            Num::F64(_) => None,
        }
    }

    pub fn as_u64(self) -> Option<u64> {
        match self {
            Num::U64(u) => Some(u),
            Num::I64(_) | Num::F64(_) => None,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Num::U64(u) => u as f64,
            Num::I64(i) => i as f64,
            Num::F64(f) => f,
        }
    }

    pub fn is_f64(self) -> bool {
        matches!(self, Num::F64(_))
    }

    fn from_sonic(n: &Number) -> Num {
        if let Some(u) = n.as_u64() {
            Num::U64(u)
        } else if let Some(i) = n.as_i64() {
            Num::I64(i)
        } else {
            Num::F64(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// A number's JSON text (already validated by the parser) classified
    /// by serde_json's rules.
    fn from_text(text: &str) -> Num {
        if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            let (negative, digits) = match text.strip_prefix('-') {
                Some(digits) => (true, digits),
                None => (false, text),
            };
            if let Ok(magnitude) = digits.parse::<u64>() {
                match (negative, magnitude) {
                    (false, m) => return Num::U64(m),
                    (true, 0) => return Num::F64(-0.0),
                    // 2^63 wraps to i64::MIN, which is exactly -2^63.
                    (true, m) if m <= 1 << 63 => return Num::I64((m as i64).wrapping_neg()),
                    _ => {}
                }
            }
        }
        Num::F64(text.parse().unwrap_or(f64::NAN))
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::U64(u) => write!(f, "{u}"),
            Num::I64(i) => write!(f, "{i}"),
            // sonic-rs formats finite floats as serde_json did; non-finite
            // ones never come out of the parser.
            Num::F64(x) => match Number::from_f64(*x) {
                Some(n) => write!(f, "{n}"),
                None => f.write_str("null"),
            },
        }
    }
}

/// One JSON value, seen the way the conversion rules match on it.
pub enum Kind<'a> {
    Null,
    Bool(bool),
    Number(Num),
    String(&'a str),
    Array(&'a Array),
    Object(&'a Object),
}

pub fn kind(value: &Json) -> Kind<'_> {
    match value.as_ref() {
        ValueRef::Null => Kind::Null,
        ValueRef::Bool(b) => Kind::Bool(b),
        // Raw numbers only come from re-parsing a message holding a
        // negative zero, which `n` (sonic-rs's reading) has lost.
        ValueRef::Number(n) => Kind::Number(match value.as_raw_number() {
            Some(raw) => Num::from_text(raw.as_str()),
            None => Num::from_sonic(&n),
        }),
        ValueRef::String(s) => Kind::String(s),
        ValueRef::Array(a) => Kind::Array(a),
        ValueRef::Object(o) => Kind::Object(o),
    }
}

/// The value of `key`; the last one if the key repeats.
pub fn get<'a>(object: &'a Object, key: &str) -> Option<&'a Json> {
    object
        .iter()
        .filter(|(k, _)| same_key(k, key))
        .last()
        .map(|(_, v)| v)
}

/// Key equality without a call to `memcmp` for short keys, which are most
/// of them and most often differ in length or first bytes.
fn same_key(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 16 {
        return a == b;
    }
    a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// A row's fields, indexed once for the lookups of all its columns.
pub struct Fields<'a> {
    entries: Vec<(&'a str, &'a Json)>,
    /// Sorted by key (and deduplicated) for binary search; small objects
    /// stay in input order and are scanned, which is faster for them.
    sorted: bool,
}

impl<'a> Fields<'a> {
    pub fn new(object: &'a Object) -> Self {
        const SCANNED: usize = 32;
        if object.len() > SCANNED {
            Fields {
                entries: entries(object),
                sorted: true,
            }
        } else {
            Fields {
                entries: object.iter().collect(),
                sorted: false,
            }
        }
    }

    /// The value of `key`; the last one if the key repeats.
    pub fn get(&self, key: &str) -> Option<&'a Json> {
        if self.sorted {
            self.entries
                .binary_search_by(|(k, _)| (*k).cmp(key))
                .ok()
                .map(|i| self.entries[i].1)
        } else {
            self.entries
                .iter()
                .rev()
                .find(|(k, _)| same_key(k, key))
                .map(|(_, v)| *v)
        }
    }
}

/// The entries sorted by key, a repeated key keeping its last value.
pub fn entries(object: &Object) -> Vec<(&str, &Json)> {
    let mut entries: Vec<(&str, &Json)> = object.iter().collect();
    // Reversed first so that the stable sort puts the last of equal keys
    // first, which is the one `dedup_by` keeps.
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.dedup_by(|later, kept| later.0 == kept.0);
    entries
}

/// Compact JSON text, byte for byte what serde_json's `to_string` gave.
pub fn to_json_string(value: &Json) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Json, out: &mut String) {
    match kind(value) {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Kind::Number(n) => {
            use fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(out, "{n}");
        }
        Kind::String(s) => write_string(s, out),
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Kind::Object(object) => {
            out.push('{');
            for (i, (key, item)) in entries(object).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

/// serde_json's escaping: quotes, backslashes and control characters only.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\x08' => "\\b",
            b'\x0c' => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Why a message is not valid JSON, with serde_json's "at line L column C".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    what: String,
    line: usize,
    column: usize,
}

impl SyntaxError {
    fn at(input: &[u8], offset: usize, what: String) -> Self {
        let before = &input[..offset.min(input.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        SyntaxError {
            what,
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: before.len() - line_start + 1,
        }
    }

    /// `error` happened parsing `input[start..]`.
    fn from_sonic(input: &[u8], start: usize, error: &sonic_rs::Error) -> Self {
        // sonic-rs appends its position and an excerpt of the input; the
        // position is recomputed for the whole message.
        let text = error.to_string();
        let what = match text.find(" at line ") {
            Some(end) => text[..end].to_owned(),
            None => text,
        };
        SyntaxError::at(input, start + error.offset(), what)
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.what, self.line, self.column
        )
    }
}

/// The JSON values of `input`, in order, as serde_json's
/// `StreamDeserializer` gave them: separated by whitespace or nothing;
/// after the first error, nothing.
pub fn values(input: &[u8]) -> Values<'_> {
    Values {
        input,
        position: 0,
        scan: None,
    }
}

pub struct Values<'a> {
    input: &'a [u8],
    position: usize,
    /// The whole input's, once the first value is asked for.
    scan: Option<Scan>,
}

impl Iterator for Values<'_> {
    type Item = Result<Json, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        let input = self.input;
        let scan = match &self.scan {
            Some(scan) => scan,
            None => {
                let scan = self.scan.insert(Scan::of(input));
                // The usual message is one object: parsed in one go when it
                // cannot nest too deep. Anything else (several values,
                // errors) goes value by value below, which finds the first
                // problem in message order as serde_json did.
                if scan.opening_brackets < MAX_DEPTH && !scan.next_object {
                    if let Ok(value) = sonic_rs::from_slice::<Json>(input) {
                        self.position = input.len();
                        return Some(Ok(keep_negative_zeros(input, scan, value)));
                    }
                }
                scan
            }
        };
        let start = self.position
            + input[self.position..]
                .iter()
                .position(|b| !matches!(b, b' ' | b'\n' | b'\t' | b'\r'))?;
        // Stop after this value whatever happens; moved on below if it parses.
        self.position = input.len();
        let end = match value_end(input, start) {
            Ok(end) => end,
            Err(too_deep) => {
                return Some(Err(SyntaxError::at(
                    input,
                    too_deep,
                    "recursion limit exceeded".to_owned(),
                )))
            }
        };
        let text = &input[start..end];
        Some(match sonic_rs::from_slice::<Json>(text) {
            Ok(value) => {
                self.position = end;
                Ok(keep_negative_zeros(text, scan, value))
            }
            Err(e) => Err(SyntaxError::from_sonic(input, start, &e)),
        })
    }
}

/// What one pass over a message's bytes tells before parsing it.
struct Scan {
    /// `[` and `{` bytes, strings included: a bound of the nesting.
    opening_brackets: usize,
    /// Whether "-0" occurs: the first test for a negative zero.
    minus_zero: bool,
    /// Whether `}{` or a newline and `{` occur: likely one object ending
    /// and another starting (JSONEachRow).
    next_object: bool,
}

impl Scan {
    fn of(text: &[u8]) -> Scan {
        const LANES: usize = 32;
        // `[` is 0x5b and `{` 0x7b: the only bytes that are `{` with 0x20 set.
        let opening = |b: u8| u8::from(b | 0x20 == b'{');
        let minus_zero = |a: u8, b: u8| u8::from((a == b'-') & (b == b'0'));
        let next_object = |a: u8, b: u8| u8::from(((a == b'}') | (a == b'\n')) & (b == b'{'));
        let mut scan = Scan {
            opening_brackets: 0,
            minus_zero: false,
            next_object: false,
        };
        let Some(last) = text.len().checked_sub(1) else {
            return scan;
        };
        // Each byte is looked at with the next one, in fixed blocks, with
        // u8 counters emptied every 255 blocks: no branches, so SIMD.
        let mut firsts = text[..last].chunks_exact(LANES);
        let mut seconds = text[1..].chunks_exact(LANES);
        let mut brackets = [0u8; LANES];
        let mut flags = [0u8; LANES];
        let mut blocks = 0;
        for (x, y) in (&mut firsts).zip(&mut seconds) {
            let (Ok(x), Ok(y)) = (<&[u8; LANES]>::try_from(x), <&[u8; LANES]>::try_from(y)) else {
                break;
            };
            for i in 0..LANES {
                brackets[i] += opening(x[i]);
                flags[i] |= minus_zero(x[i], y[i]) | next_object(x[i], y[i]) << 1;
            }
            blocks += 1;
            if blocks == 255 {
                scan.opening_brackets += brackets.iter().map(|&n| usize::from(n)).sum::<usize>();
                brackets = [0; LANES];
                blocks = 0;
            }
        }
        scan.opening_brackets += brackets.iter().map(|&n| usize::from(n)).sum::<usize>();
        let mut flags = flags.iter().fold(0, |all, &f| all | f);
        let rest = text.len() - firsts.remainder().len() - 1;
        for (i, &b) in text.iter().enumerate().skip(rest) {
            scan.opening_brackets += usize::from(opening(b));
            if let Some(&next) = text.get(i + 1) {
                flags |= minus_zero(b, next) | next_object(b, next) << 1;
            }
        }
        scan.minus_zero = flags & 1 != 0;
        scan.next_object = flags & 2 != 0;
        scan
    }
}

/// The first index from `i` whose byte is one `stop` holds for, or the
/// length.
fn skip_until(text: &[u8], i: usize, stop: impl Fn(u8) -> bool) -> usize {
    const SHORT: usize = 16;
    const BLOCK: usize = 32;
    // Byte by byte first: between structural bytes the gap is short.
    let short_end = text.len().min(i.saturating_add(SHORT));
    let Some(short) = text.get(i..short_end) else {
        return text.len();
    };
    if let Some(n) = short.iter().position(|&b| stop(b)) {
        return i + n;
    }
    // Then long runs (string contents, mostly) by blocks of 32 bytes,
    // each tested at once, which compiles to SIMD.
    let mut i = short_end;
    while let Some(block) = text
        .get(i..i + BLOCK)
        .and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
    {
        if block.iter().fold(0u8, |hit, &b| hit | u8::from(stop(b))) != 0 {
            break;
        }
        i += BLOCK;
    }
    text[i..]
        .iter()
        .position(|&b| stop(b))
        .map_or(text.len(), |n| i + n)
}

/// Where the value starting at `input[start]` (not whitespace) ends, or,
/// as `Err`, where it opens its 128th level of nesting. Only brackets are
/// matched: the value's validity is left to the parser, which gets
/// exactly these bytes.
fn value_end(input: &[u8], start: usize) -> Result<usize, usize> {
    match input[start] {
        b'{' | b'[' => {
            let mut depth = 0;
            let mut i = start;
            loop {
                i = skip_until(input, i, |b| matches!(b, b'"' | b'{' | b'[' | b'}' | b']'));
                match input.get(i) {
                    None => return Ok(input.len()),
                    Some(b'"') => i = string_end(input, i),
                    Some(b'{' | b'[') => {
                        depth += 1;
                        if depth >= MAX_DEPTH {
                            return Err(i);
                        }
                        i += 1;
                    }
                    Some(_) => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            return Ok(i);
                        }
                    }
                }
            }
        }
        b'"' => Ok(string_end(input, start)),
        // A number or literal (or garbage) runs up to whatever cannot be
        // part of it; the parser then accepts or rejects it.
        _ => Ok(skip_until(input, start + 1, |b| {
            b" \t\n\r,:[]{}\"".contains(&b)
        })),
    }
}

/// Just past the closing quote of the string opened at `input[open]`.
fn string_end(input: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    loop {
        i = skip_until(input, i, |b| (b == b'"') | (b == b'\\'));
        match input.get(i) {
            Some(b'\\') => i += 2,
            Some(_) => return i + 1,
            None => return input.len(),
        }
    }
}

/// `value` (parsed from `text`), or, when `text` holds a negative zero,
/// `text` parsed again with numbers kept as text, where `kind` reads
/// `-0` as serde_json did.
fn keep_negative_zeros(text: &[u8], scan: &Scan, value: Json) -> Json {
    if !scan.minus_zero || !may_hold_negative_zero(text) {
        return value;
    }
    // `text` was just parsed (and its UTF-8 checked) by `from_slice`, so
    // this parse succeeds with the same structure.
    let mut raw = sonic_rs::Deserializer::from_slice(text).use_rawnumber();
    raw.deserialize::<Json>().unwrap_or(value)
}

/// Whether `text` has a `-0` not followed by a digit or by a fraction
/// with a non-zero digit: false for dates (`2024-01-05`) and `-0.5`, true
/// for `-0`, `-0.00`, `-0e7` (and for some strings: harmless, only slower).
fn may_hold_negative_zero(text: &[u8]) -> bool {
    let mut i = 0;
    loop {
        i = skip_until(text, i, |b| b == b'-') + 1;
        if i > text.len() {
            return false;
        }
        if text.get(i) != Some(&b'0') {
            continue;
        }
        let mut j = i + 1;
        let zero = match text.get(j) {
            Some(b'0'..=b'9') => false,
            Some(b'.') => {
                j += 1;
                while text.get(j) == Some(&b'0') {
                    j += 1;
                }
                !matches!(text.get(j), Some(b'1'..=b'9'))
            }
            _ => true,
        };
        if zero {
            return true;
        }
    }
}

#[cfg(test)]
mod tests;

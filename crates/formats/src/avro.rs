//! Avro messages: Confluent's framing (a zero byte, then the writer
//! schema's registry id as 4 bytes, big-endian, then one Avro datum), the
//! writer schema from a `SchemaSource`, and the record read into the row
//! plan's columns by the same field lookup and conversion rules as JSON
//! (`crate::json::encode_row`):
//!
//! - records are objects (nested fields by dotted path, or their JSON text
//!   for a String column); maps are objects, arrays arrays, enums their
//!   symbol, unions their branch, null is null;
//! - `date` is `YYYY-MM-DD`; `timestamp-millis/micros/nanos` and the
//!   `local-timestamp` ones are ISO-8601 date-times at their full precision
//!   (local ones read as UTC); `decimal` is its exact decimal text; `uuid`
//!   its text; `time-millis/micros` their number; `duration` an object of
//!   months, days and milliseconds;
//! - `bytes` and `fixed` are read as UTF-8 text (invalid bytes replaced).
//!
//! Pure: the schemas come from the `SchemaSource` the caller gives (the
//! registry client caches and fetches them).

use std::sync::Arc;

use apache_avro::schema::{NamesRef, ResolvedSchema};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use chrono::{DateTime, NaiveDate};
use sonic_rs::{Array, JsonContainerTrait, Object, Value as Json};

use crate::json::{encode_row, virtual_values};
use crate::row::{ErrorCode, RecordError, RecordMeta, RowPlan};
use crate::Decoder;

/// Why a writer schema is not available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// Writer schemas by their registry id.
pub trait SchemaSource: Send + Sync {
    fn schema(&self, id: u32) -> Result<Arc<WriterSchema>, SchemaError>;
}

/// A parsed writer schema with its named types resolved.
pub struct WriterSchema {
    schema: Schema,
}

impl WriterSchema {
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let schema = Schema::parse_str(text)
            .map_err(|e| SchemaError(format!("the schema does not parse: {e}")))?;
        ResolvedSchema::try_from(&schema)
            .map_err(|e| SchemaError(format!("the schema's names do not resolve: {e}")))?;
        Ok(WriterSchema { schema })
    }
}

/// Confluent-framed Avro datums into the rows of a plan.
pub struct AvroConfluentDecoder {
    plan: RowPlan,
    schemas: Arc<dyn SchemaSource>,
}

impl AvroConfluentDecoder {
    pub fn new(plan: RowPlan, schemas: Arc<dyn SchemaSource>) -> Self {
        AvroConfluentDecoder { plan, schemas }
    }
}

fn parsing(message: String) -> RecordError {
    RecordError {
        code: ErrorCode::DataParsingError,
        message,
    }
}

/// The schema id and the datum of a Confluent-framed message.
pub fn confluent_frame(payload: &[u8]) -> Result<(u32, &[u8]), RecordError> {
    match payload {
        [0, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [0, ..] => Err(parsing(format!(
            "{} bytes are too short for Confluent's framing (a zero byte and a 4-byte schema id)",
            payload.len()
        ))),
        [first, ..] => Err(parsing(format!(
            "the message does not start with Confluent's magic byte 0 (found {first}); is it AvroConfluent?"
        ))),
        [] => Err(parsing("the message is empty".into())),
    }
}

impl Decoder for AvroConfluentDecoder {
    fn decode(
        &self,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, RecordError> {
        let (id, mut datum) = confluent_frame(payload)?;
        let writer = self.schemas.schema(id).map_err(|e| RecordError {
            code: ErrorCode::SourceSchemaError,
            message: format!("schema id {id}: {e}"),
        })?;
        let value = apache_avro::from_avro_datum(&writer.schema, &mut datum, None)
            .map_err(|e| parsing(format!("the datum does not match schema id {id}: {e}")))?;
        if !datum.is_empty() {
            return Err(parsing(format!(
                "{} bytes left after the datum of schema id {id}",
                datum.len()
            )));
        }
        let resolved = ResolvedSchema::try_from(&writer.schema)
            .map_err(|e| parsing(format!("schema id {id}: {e}")))?;
        let json = to_json(&value, &writer.schema, resolved.get_names());
        let Some(object) = json.as_object() else {
            return Err(parsing(format!(
                "schema id {id} is not a record; a row needs one"
            )));
        };
        let virtuals = self
            .plan
            .uses_virtual
            .then(|| virtual_values(payload, meta));
        let start = out.len();
        encode_row(&self.plan, object, virtuals.as_ref(), out)
            .inspect_err(|_| out.truncate(start))?;
        Ok(1)
    }
}

fn named<'a>(schema: &'a Schema, names: &'a NamesRef<'_>) -> &'a Schema {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .or_else(|| {
                names
                    .iter()
                    .find(|(n, _)| n.name == name.name)
                    .map(|(_, s)| s)
            })
            .map_or(schema, |s| s),
        other => other,
    }
}

/// NaN and the infinities have no JSON number: they travel as text, which
/// a Float column reads back and other columns refuse.
fn float(value: f64) -> Json {
    Json::new_f64(value).unwrap_or_else(|| Json::from(value.to_string().as_str()))
}

fn text(bytes: &[u8]) -> Json {
    Json::from(String::from_utf8_lossy(bytes).as_ref())
}

/// `unscaled × 10^-scale` as exact decimal text.
fn decimal_text(unscaled: i128, scale: usize) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

fn timestamp(seconds: i64, nanos: u32, digits: usize) -> Json {
    match DateTime::from_timestamp(seconds, nanos) {
        Some(t) => {
            let format = match digits {
                3 => "%Y-%m-%dT%H:%M:%S%.3fZ",
                6 => "%Y-%m-%dT%H:%M:%S%.6fZ",
                _ => "%Y-%m-%dT%H:%M:%S%.9fZ",
            };
            Json::from(t.format(format).to_string().as_str())
        }
        None => Json::from(seconds),
    }
}

fn split(value: i64, per_second: i64) -> (i64, u32) {
    let seconds = value.div_euclid(per_second);
    let rest = value.rem_euclid(per_second);
    let nanos = rest * (1_000_000_000 / per_second);
    (seconds, u32::try_from(nanos).unwrap_or(0))
}

/// An Avro value as the JSON the row plan reads; `schema` is the value's
/// own (decimals need their scale).
pub fn to_json(value: &Avro, schema: &Schema, names: &NamesRef<'_>) -> Json {
    let schema = named(schema, names);
    match value {
        Avro::Null => Json::new(),
        Avro::Boolean(b) => Json::from(*b),
        Avro::Int(i) => Json::from(*i),
        Avro::Long(l) => Json::from(*l),
        Avro::Float(f) => float(f64::from(*f)),
        Avro::Double(d) => float(*d),
        Avro::Bytes(bytes) | Avro::Fixed(_, bytes) => text(bytes),
        Avro::String(s) => Json::from(s.as_str()),
        Avro::Enum(_, symbol) => Json::from(symbol.as_str()),
        Avro::Union(branch, inner) => match schema {
            Schema::Union(union) => match union.variants().get(*branch as usize) {
                Some(variant) => to_json(inner, variant, names),
                None => to_json(inner, &Schema::Null, names),
            },
            other => to_json(inner, other, names),
        },
        Avro::Array(items) => {
            let item_schema = match schema {
                Schema::Array(array) => array.items.as_ref(),
                other => other,
            };
            let mut array = Array::new();
            for item in items {
                array.push(to_json(item, item_schema, names));
            }
            Json::from(array)
        }
        Avro::Map(entries) => {
            let value_schema = match schema {
                Schema::Map(map) => map.types.as_ref(),
                other => other,
            };
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let mut object = Object::new();
            for (key, item) in sorted {
                object.insert(key, to_json(item, value_schema, names));
            }
            Json::from(object)
        }
        Avro::Record(fields) => {
            let record = match schema {
                Schema::Record(record) => Some(record),
                _ => None,
            };
            let mut object = Object::new();
            for (name, item) in fields {
                let field_schema = record
                    .and_then(|r| r.lookup.get(name).and_then(|i| r.fields.get(*i)))
                    .map_or(&Schema::Null, |f| &f.schema);
                object.insert(name, to_json(item, field_schema, names));
            }
            Json::from(object)
        }
        Avro::Date(days) => NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(i64::from(*days))))
            .map_or_else(
                || Json::from(*days),
                |d| Json::from(d.format("%Y-%m-%d").to_string().as_str()),
            ),
        Avro::Decimal(decimal) => {
            let scale = match schema {
                Schema::Decimal(d) => d.scale,
                _ => 0,
            };
            let bytes = Vec::<u8>::try_from(decimal).unwrap_or_default();
            if bytes.is_empty() || bytes.len() > 16 {
                return Json::from(format!("{} bytes of decimal", bytes.len()).as_str());
            }
            // Big-endian two's complement, sign-extended to 128 bits.
            let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
            let mut wide = [fill; 16];
            wide[16 - bytes.len()..].copy_from_slice(&bytes);
            Json::from(decimal_text(i128::from_be_bytes(wide), scale).as_str())
        }
        Avro::BigDecimal(big) => Json::from(big.to_string().as_str()),
        Avro::TimeMillis(ms) => Json::from(*ms),
        Avro::TimeMicros(us) => Json::from(*us),
        Avro::TimestampMillis(v) | Avro::LocalTimestampMillis(v) => {
            let (s, n) = split(*v, 1_000);
            timestamp(s, n, 3)
        }
        Avro::TimestampMicros(v) | Avro::LocalTimestampMicros(v) => {
            let (s, n) = split(*v, 1_000_000);
            timestamp(s, n, 6)
        }
        Avro::TimestampNanos(v) | Avro::LocalTimestampNanos(v) => {
            let (s, n) = split(*v, 1_000_000_000);
            timestamp(s, n, 9)
        }
        Avro::Duration(d) => {
            let mut object = Object::new();
            object.insert("months", Json::from(u32::from(d.months())));
            object.insert("days", Json::from(u32::from(d.days())));
            object.insert("millis", Json::from(u32::from(d.millis())));
            Json::from(object)
        }
        Avro::Uuid(uuid) => Json::from(uuid.to_string().as_str()),
    }
}

#[cfg(test)]
mod tests;

//! Avro messages, `AvroConfluent` (Confluent's framing: a zero byte, the
//! writer schema's registry id as 4 bytes, big-endian, then one datum; the
//! writer schema from a `SchemaSource`) or `Avro` (unframed datums of one
//! writer schema). When the pipe pins a reader schema the datum is resolved
//! against it. The record is read into the row plan's columns by the same
//! field lookup and conversion rules as JSON (`crate::json::encode_row`):
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

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use chrono::{DateTime, NaiveDate};
use sonic_rs::{Array, Object, Value as Json};

use crate::json::encode_record;
use crate::row::{RecordError, RecordMeta, RowPlan};
use crate::schema::{confluent_frame, parsing, RegisteredSchema, SchemaError, SchemaSource};
use crate::Decoder;

/// Named types by their full name, owned so a schema can be kept with
/// them (apache-avro's own resolved form borrows the schema).
type Names = HashMap<Name, Schema>;

/// A parsed Avro schema with its named types resolved.
#[derive(Clone)]
pub struct WriterSchema {
    schema: Schema,
    names: Names,
}

impl WriterSchema {
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let schema = Schema::parse_str(text)
            .map_err(|e| SchemaError::permanent(format!("the Avro schema does not parse: {e}")))?;
        let names = ResolvedSchema::try_from(&schema)
            .map_err(|e| {
                SchemaError::permanent(format!("the Avro schema's names do not resolve: {e}"))
            })?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        Ok(WriterSchema { schema, names })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn names(&self) -> &HashMap<Name, Schema> {
        &self.names
    }

    /// The record's fields, read as a row: `reader`, when given, is the
    /// schema the pipe pinned, which the datum is resolved against (Avro's
    /// schema resolution: fields the reader lacks are skipped, fields only
    /// the reader has take its default).
    fn read(
        &self,
        mut datum: &[u8],
        reader: Option<&WriterSchema>,
        what: &dyn Fn() -> String,
    ) -> Result<Json, RecordError> {
        let value =
            apache_avro::from_avro_datum(&self.schema, &mut datum, reader.map(|r| &r.schema))
                .map_err(|e| parsing(format!("the datum does not match {}: {e}", what())))?;
        if !datum.is_empty() {
            return Err(parsing(format!(
                "{} bytes left after the datum of {}",
                datum.len(),
                what()
            )));
        }
        let shape = reader.unwrap_or(self);
        Ok(to_json(&value, &shape.schema, &shape.names))
    }
}

/// Where an Avro message's writer schema comes from.
pub enum AvroSchemas {
    /// Confluent framing: the id in each message, looked up in the
    /// registry.
    Registry(Arc<dyn SchemaSource>),
    /// Unframed datums, all written with this one schema (given with the
    /// pipe, or one subject version of the registry).
    Fixed(Arc<WriterSchema>),
}

/// Avro datums into the rows of a plan.
pub struct AvroDecoder {
    plan: RowPlan,
    schemas: AvroSchemas,
    reader: Option<Arc<WriterSchema>>,
}

impl AvroDecoder {
    pub fn new(plan: RowPlan, schemas: AvroSchemas, reader: Option<Arc<WriterSchema>>) -> Self {
        AvroDecoder {
            plan,
            schemas,
            reader,
        }
    }
}

impl Decoder for AvroDecoder {
    fn decode(
        &self,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, RecordError> {
        let (_, record) = self.read(payload)?;
        encode_record(&self.plan, &record, payload, meta, out)
    }

    fn read(&self, payload: &[u8]) -> Result<(Option<u32>, Json), RecordError> {
        let reader = self.reader.as_deref();
        match &self.schemas {
            AvroSchemas::Registry(source) => {
                let (id, datum) = confluent_frame(payload)?;
                let registered = source.schema(id).map_err(|e| e.for_record(id))?;
                let RegisteredSchema::Avro(writer) = registered.as_ref() else {
                    return Err(SchemaError::permanent(format!(
                        "it is a {} schema; the pipe reads Avro",
                        registered.kind()
                    ))
                    .for_record(id));
                };
                Ok((
                    Some(id),
                    writer.read(datum, reader, &|| format!("schema id {id}"))?,
                ))
            }
            AvroSchemas::Fixed(writer) => Ok((
                None,
                writer.read(payload, reader, &|| "the pipe's Avro schema".to_owned())?,
            )),
        }
    }
}

fn named<'a>(schema: &'a Schema, names: &'a Names) -> &'a Schema {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .or_else(|| {
                names
                    .iter()
                    .find(|(n, _)| n.name == name.name)
                    .map(|(_, s)| s)
            })
            .unwrap_or(schema),
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
pub fn to_json(value: &Avro, schema: &Schema, names: &HashMap<Name, Schema>) -> Json {
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

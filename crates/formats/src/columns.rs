//! Columns for a new table, derived from an Avro or Protobuf schema rather
//! than guessed from samples: every field of the schema, nested records
//! flattened into `parent_child` columns read from `parent.child` (as the
//! JSON inference names them), each with the type the decoders fill it
//! with (see `crate::avro` and `crate::protobuf` for how values are read).
//!
//! Avro: `int`/`long` Int32/Int64, `float`/`double` Float32/Float64,
//! `boolean` Bool, `string`/`bytes` String, `fixed` FixedString, `enum`
//! Enum8 (Enum16 past 127 symbols), `["null", T]` Nullable(T), other unions
//! Variant, arrays Array, maps Map(String, …), records inside arrays and
//! maps Tuple; `date` Date32, `time-*` Int32/Int64, `timestamp-*` and
//! `local-timestamp-*` DateTime64(3/6/9, 'UTC'), `decimal` Decimal, `uuid`
//! UUID, `duration` String (its JSON).
//!
//! Protobuf: 32/64-bit integers Int32/Int64/UInt32/UInt64, `float`/`double`
//! Float32/Float64, `bool` Bool, `string`/`bytes` String, enums Enum8/16 of
//! their values, fields with presence Nullable, `repeated` Array, maps Map,
//! messages inside lists and maps Tuple; `Timestamp` DateTime64(9, 'UTC'),
//! `Duration` Int64 (nanoseconds), wrappers Nullable of their value,
//! `Struct`/`Value`/`ListValue` String (their JSON).

use apache_avro::schema::{Name, RecordSchema};
use apache_avro::Schema;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use sluice_clickhouse_types::ChType;
use std::collections::HashMap;

use crate::avro::WriterSchema;
use crate::infer::InferredColumn;

/// Records nested deeper than this (or recursive) are one String column
/// holding their JSON.
const MAX_DEPTH: usize = 6;

fn column_name(path: &[String]) -> String {
    path.join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn push(columns: &mut Vec<InferredColumn>, path: &[String], ty: ChType) {
    columns.push(InferredColumn {
        name: column_name(path),
        column_type: ty.to_string(),
        source_field: path.join("."),
    });
}

/// `ty` as a column that can hold a missing value: Nullable where
/// ClickHouse has it (not around arrays, maps, tuples, variants).
pub fn nullable(ty: ChType) -> ChType {
    match ty {
        // ClickHouse has no Nullable of these; a missing value is empty.
        ChType::Nullable(_)
        | ChType::Array(_)
        | ChType::Map(..)
        | ChType::Tuple(_)
        | ChType::Variant(_)
        | ChType::Json => ty,
        ChType::LowCardinality(inner) => ChType::LowCardinality(Box::new(nullable(*inner))),
        other => ChType::Nullable(Box::new(other)),
    }
}

fn enum_type<S: AsRef<str>>(symbols: impl IntoIterator<Item = (S, i64)>) -> ChType {
    let symbols: Vec<(String, i64)> = symbols
        .into_iter()
        .map(|(s, n)| (s.as_ref().to_owned(), n))
        .collect();
    if symbols.iter().all(|(_, n)| i8::try_from(*n).is_ok()) {
        ChType::Enum8(symbols.into_iter().map(|(s, n)| (s, n as i8)).collect())
    } else if symbols.iter().all(|(_, n)| i16::try_from(*n).is_ok()) {
        ChType::Enum16(symbols.into_iter().map(|(s, n)| (s, n as i16)).collect())
    } else {
        ChType::LowCardinality(Box::new(ChType::String))
    }
}

struct AvroWalk<'a> {
    names: &'a HashMap<Name, Schema>,
}

impl AvroWalk<'_> {
    fn resolve<'s>(&'s self, schema: &'s Schema) -> &'s Schema {
        match schema {
            Schema::Ref { name } => self.names.get(name).unwrap_or(schema),
            other => other,
        }
    }

    /// The type of a value that is not flattened (inside an array, a map,
    /// a union, or too deep).
    fn value_type(&self, schema: &Schema, depth: usize) -> ChType {
        match self.resolve(schema) {
            Schema::Null => ChType::Nullable(Box::new(ChType::String)),
            Schema::Boolean => ChType::Bool,
            Schema::Int => ChType::Int32,
            Schema::Long => ChType::Int64,
            Schema::Float => ChType::Float32,
            Schema::Double => ChType::Float64,
            Schema::Bytes | Schema::String | Schema::Duration | Schema::BigDecimal => {
                ChType::String
            }
            Schema::Fixed(fixed) => ChType::FixedString(fixed.size),
            Schema::Enum(e) => enum_type(e.symbols.iter().zip(0..)),
            Schema::Array(array) => {
                ChType::Array(Box::new(self.value_type(&array.items, depth + 1)))
            }
            Schema::Map(map) => ChType::Map(
                Box::new(ChType::String),
                Box::new(self.value_type(&map.types, depth + 1)),
            ),
            Schema::Union(union) => {
                let variants: Vec<&Schema> = union
                    .variants()
                    .iter()
                    .filter(|v| !matches!(v, Schema::Null))
                    .collect();
                let has_null = variants.len() < union.variants().len();
                match variants.as_slice() {
                    [] => ChType::Nullable(Box::new(ChType::String)),
                    [one] => {
                        let ty = self.value_type(one, depth);
                        if has_null {
                            nullable(ty)
                        } else {
                            ty
                        }
                    }
                    many => {
                        let mut types: Vec<ChType> =
                            many.iter().map(|v| self.value_type(v, depth + 1)).collect();
                        types.sort_by_key(ToString::to_string);
                        types.dedup();
                        ChType::Variant(types)
                    }
                }
            }
            Schema::Record(record) if depth < MAX_DEPTH => ChType::Tuple(
                record
                    .fields
                    .iter()
                    .map(|f| (Some(f.name.clone()), self.value_type(&f.schema, depth + 1)))
                    .collect(),
            ),
            Schema::Record(_) | Schema::Ref { .. } => ChType::String,
            Schema::Decimal(d) if d.precision <= 76 => ChType::Decimal {
                precision: u8::try_from(d.precision).unwrap_or(76),
                scale: u8::try_from(d.scale).unwrap_or(0),
            },
            Schema::Decimal(_) => ChType::String,
            Schema::Uuid => ChType::Uuid,
            Schema::Date => ChType::Date32,
            Schema::TimeMillis => ChType::Int32,
            Schema::TimeMicros => ChType::Int64,
            Schema::TimestampMillis | Schema::LocalTimestampMillis => utc(3),
            Schema::TimestampMicros | Schema::LocalTimestampMicros => utc(6),
            Schema::TimestampNanos | Schema::LocalTimestampNanos => utc(9),
        }
    }

    fn record(
        &self,
        record: &RecordSchema,
        path: &mut Vec<String>,
        nullable_parent: bool,
        depth: usize,
        out: &mut Vec<InferredColumn>,
    ) {
        for field in &record.fields {
            path.push(field.name.clone());
            self.field(&field.schema, path, nullable_parent, depth + 1, out);
            path.pop();
        }
    }

    fn field(
        &self,
        schema: &Schema,
        path: &mut Vec<String>,
        nullable_parent: bool,
        depth: usize,
        out: &mut Vec<InferredColumn>,
    ) {
        let schema = self.resolve(schema);
        // A record, or a record or null: its fields become columns.
        let (record, may_be_null) = match schema {
            Schema::Record(record) => (Some(record), false),
            Schema::Union(union) => {
                let non_null: Vec<&Schema> = union
                    .variants()
                    .iter()
                    .filter(|v| !matches!(v, Schema::Null))
                    .collect();
                match non_null.as_slice() {
                    [only] => match self.resolve(only) {
                        Schema::Record(record) => {
                            (Some(record), non_null.len() < union.variants().len())
                        }
                        _ => (None, false),
                    },
                    _ => (None, false),
                }
            }
            _ => (None, false),
        };
        match record {
            Some(record) if depth < MAX_DEPTH && !record.fields.is_empty() => {
                self.record(record, path, nullable_parent || may_be_null, depth, out)
            }
            _ => {
                let ty = self.value_type(schema, depth);
                push(out, path, if nullable_parent { nullable(ty) } else { ty });
            }
        }
    }
}

fn utc(precision: u8) -> ChType {
    ChType::DateTime64(precision, Some("UTC".into()))
}

/// The columns of an Avro record schema's fields.
pub fn avro_columns(schema: &WriterSchema) -> Result<Vec<InferredColumn>, String> {
    let walk = AvroWalk {
        names: schema.names(),
    };
    match walk.resolve(schema.schema()) {
        Schema::Record(record) => {
            let mut out = Vec::new();
            walk.record(record, &mut Vec::new(), false, 0, &mut out);
            Ok(out)
        }
        other => Err(format!(
            "the schema is {:?}, not a record: a row needs one",
            apache_avro::schema::SchemaKind::from(other)
        )),
    }
}

fn is_struct_like(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Struct" | "google.protobuf.Value" | "google.protobuf.ListValue"
    )
}

/// The type of a protobuf value that is not flattened; `None` for a
/// well-known type with no type of its own.
fn proto_kind_type(kind: &Kind, depth: usize) -> ChType {
    match kind {
        Kind::Double => ChType::Float64,
        Kind::Float => ChType::Float32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => ChType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => ChType::Int64,
        Kind::Uint32 | Kind::Fixed32 => ChType::UInt32,
        Kind::Uint64 | Kind::Fixed64 => ChType::UInt64,
        Kind::Bool => ChType::Bool,
        Kind::String | Kind::Bytes => ChType::String,
        Kind::Enum(e) => enum_type(
            e.values()
                .map(|v| (v.name().to_owned(), i64::from(v.number()))),
        ),
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.Timestamp" => utc(9),
            "google.protobuf.Duration" => ChType::Int64,
            name if name.starts_with("google.protobuf.")
                && name.ends_with("Value")
                && !is_struct_like(message) =>
            {
                let inner = message
                    .get_field_by_name("value")
                    .map_or(ChType::String, |f| proto_kind_type(&f.kind(), depth + 1));
                nullable(inner)
            }
            _ if is_struct_like(message) || depth >= MAX_DEPTH => ChType::String,
            _ => ChType::Tuple(
                message
                    .fields()
                    .map(|f| (Some(f.name().to_owned()), proto_field_type(&f, depth + 1)))
                    .collect(),
            ),
        },
    }
}

fn proto_field_type(field: &FieldDescriptor, depth: usize) -> ChType {
    if field.is_map() {
        if let Kind::Message(entry) = field.kind() {
            let key = proto_kind_type(&entry.map_entry_key_field().kind(), depth + 1);
            let value = proto_kind_type(&entry.map_entry_value_field().kind(), depth + 1);
            return ChType::Map(Box::new(key), Box::new(value));
        }
    }
    let ty = proto_kind_type(&field.kind(), depth);
    if field.is_list() {
        ChType::Array(Box::new(ty))
    } else if field.supports_presence() {
        nullable(ty)
    } else {
        ty
    }
}

fn proto_message(
    message: &MessageDescriptor,
    path: &mut Vec<String>,
    nullable_parent: bool,
    depth: usize,
    out: &mut Vec<InferredColumn>,
) {
    for field in message.fields() {
        path.push(field.name().to_owned());
        let flatten = match field.kind() {
            Kind::Message(inner)
                if !field.is_list()
                    && !field.is_map()
                    && !inner.full_name().starts_with("google.protobuf.")
                    && depth < MAX_DEPTH
                    && inner.fields().len() > 0 =>
            {
                Some(inner)
            }
            _ => None,
        };
        match flatten {
            // A message field may be unset: its fields are then null.
            Some(inner) => proto_message(&inner, path, true, depth + 1, out),
            None => {
                let ty = proto_field_type(&field, depth);
                push(out, path, if nullable_parent { nullable(ty) } else { ty });
            }
        }
        path.pop();
    }
}

/// The columns of a Protobuf message type's fields.
pub fn protobuf_columns(message: &MessageDescriptor) -> Vec<InferredColumn> {
    let mut out = Vec::new();
    proto_message(message, &mut Vec::new(), false, 0, &mut out);
    out
}

#[cfg(test)]
mod tests;

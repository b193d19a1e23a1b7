//! Protobuf messages: Confluent's framing (a zero byte, the schema's
//! registry id, then the message indexes that pick the message type inside
//! the registered file) with the schema from a `SchemaSource`, or plain
//! messages of one type from `.proto` files given with the pipe. The
//! message is read into the row plan's columns by the same field lookup and
//! conversion rules as JSON (`crate::json::encode_row`):
//!
//! - every field of the message type is present: scalars without presence
//!   at their default (0, `""`, false), fields with presence (messages,
//!   `optional`, `oneof` members) null when unset, so they fill Nullable
//!   columns; nested messages are objects (dotted paths, or their JSON text
//!   for a String column), `repeated` arrays, maps objects, enums their
//!   value's name (its number when the schema does not know it);
//! - well-known types: `Timestamp` an ISO-8601 date-time with nanoseconds,
//!   `Duration` its length in nanoseconds, the wrappers (`Int64Value`…)
//!   their value, `Struct`/`Value`/`ListValue` the JSON they stand for;
//! - `bytes` are read as UTF-8 text (invalid bytes replaced), as in Avro.
//!
//! `.proto` text is compiled by protox; the well-known types' files are
//! built in. A registry may hold a schema as `.proto` text or, as
//! Confluent's serializers send it, a base64 `FileDescriptorProto`: both
//! are read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use chrono::DateTime;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FileDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use sonic_rs::{Array, Object, Value as Json};

use crate::json::encode_record;
use crate::row::{RecordError, RecordMeta, RowPlan};
use crate::schema::{confluent_frame, parsing, RegisteredSchema, SchemaError, SchemaSource};
use crate::Decoder;

/// Nested message indexes deeper than this are not a schema anyone wrote.
const MAX_MESSAGE_INDEXES: u64 = 64;

/// A registered Protobuf schema: one file (with its imports resolved).
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    file: FileDescriptor,
}

/// One file of a schema: `.proto` text, or a serialized (and base64
/// encoded) `FileDescriptorProto`, as a registry may hold either.
fn schema_file(name: &str, text: &str) -> Result<File, SchemaError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        if let Ok(mut descriptor) = prost_types::FileDescriptorProto::decode(bytes.as_slice()) {
            // The registry names the file by the reference, not by what the
            // serializer compiled it as.
            descriptor.name = Some(name.to_owned());
            return Ok(File::from_file_descriptor_proto(descriptor));
        }
    }
    File::from_source(name, text)
        .map_err(|e| SchemaError::permanent(format!("`{name}` does not parse: {e}")))
}

struct Files(HashMap<String, File>);

impl FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

/// Compiles `files` (name → contents) and returns the pool holding them,
/// their imports and the well-known types.
fn compile(files: HashMap<String, File>) -> Result<DescriptorPool, SchemaError> {
    let names: Vec<String> = files.keys().cloned().collect();
    let mut resolver = ChainFileResolver::new();
    resolver.add(Files(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    for name in &names {
        compiler
            .open_file(name)
            .map_err(|e| SchemaError::permanent(format!("the Protobuf schema: {e}")))?;
    }
    Ok(compiler.descriptor_pool())
}

impl ProtoSchema {
    /// A schema as a registry returns it: the schema itself and the
    /// schemas it references by import name.
    pub fn from_registry(
        schema: &str,
        references: &BTreeMap<String, String>,
    ) -> Result<Self, SchemaError> {
        const MAIN: &str = "sluice-registered-schema.proto";
        let mut files = HashMap::new();
        for (name, text) in references {
            files.insert(name.clone(), schema_file(name, text)?);
        }
        files.insert(MAIN.to_owned(), schema_file(MAIN, schema)?);
        let pool = compile(files)?;
        let file = pool
            .get_file_by_name(MAIN)
            .ok_or_else(|| SchemaError::permanent("the compiled schema lost its own file"))?;
        Ok(ProtoSchema { file })
    }

    /// The message type Confluent's message indexes point at: the first
    /// index is a message of the file, each next one a message nested in
    /// the previous.
    pub fn message_at(&self, indexes: &[u64]) -> Option<MessageDescriptor> {
        let (first, nested) = indexes.split_first()?;
        let mut message = self.file.messages().nth(usize::try_from(*first).ok()?)?;
        for index in nested {
            let child = message
                .child_messages()
                .nth(usize::try_from(*index).ok()?)?;
            message = child;
        }
        Some(message)
    }

    pub fn file(&self) -> &FileDescriptor {
        &self.file
    }

    /// The message type a file is most likely about, when nothing says
    /// which: the first top-level message no other message of the file
    /// uses as a field (an `Order` rather than the `Customer` it holds),
    /// else the first.
    pub fn root_message(&self) -> Option<MessageDescriptor> {
        fn uses(message: &MessageDescriptor, used: &mut std::collections::HashSet<String>) {
            for field in message.fields() {
                if let Kind::Message(inner) = field.kind() {
                    used.insert(inner.full_name().to_owned());
                }
            }
            for child in message.child_messages() {
                uses(&child, used);
            }
        }
        let mut used = std::collections::HashSet::new();
        for message in self.file.messages() {
            uses(&message, &mut used);
        }
        self.file
            .messages()
            .find(|m| !used.contains(m.full_name()))
            .or_else(|| self.file.messages().next())
    }
}

/// The message type `message_type` (fully qualified, e.g. `shop.Order`)
/// of `.proto` files given with a pipe (file name → text; imports between
/// them by those names).
pub fn compile_message(
    files: &BTreeMap<String, String>,
    message_type: &str,
) -> Result<MessageDescriptor, SchemaError> {
    if files.is_empty() {
        return Err(SchemaError::permanent("no .proto file was given"));
    }
    let mut parsed = HashMap::new();
    for (name, text) in files {
        parsed.insert(
            name.clone(),
            File::from_source(name, text)
                .map_err(|e| SchemaError::permanent(format!("`{name}` does not parse: {e}")))?,
        );
    }
    let pool = compile(parsed)?;
    let wanted = message_type.trim_start_matches('.');
    pool.get_message_by_name(wanted).ok_or_else(|| {
        let known: Vec<String> = pool
            .all_messages()
            .filter(|m| !m.full_name().starts_with("google.protobuf."))
            .filter(|m| !m.is_map_entry())
            .map(|m| m.full_name().to_owned())
            .take(20)
            .collect();
        SchemaError::permanent(format!(
            "no message type `{wanted}` in the .proto files (they define: {})",
            known.join(", ")
        ))
    })
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn read_zigzag(input: &mut &[u8]) -> Option<i64> {
    let raw = read_varint(input)?;
    Some((raw >> 1) as i64 ^ -((raw & 1) as i64))
}

/// Confluent's message indexes (zigzag varints: a count, then the
/// indexes; a count of 0 stands for `[0]`), and what follows them.
pub fn message_indexes(mut input: &[u8]) -> Result<(Vec<u64>, &[u8]), RecordError> {
    let bad = || parsing("the message indexes after the schema id are not valid varints".into());
    let count = read_zigzag(&mut input).ok_or_else(bad)?;
    if count == 0 {
        return Ok((vec![0], input));
    }
    let count = u64::try_from(count)
        .ok()
        .filter(|c| *c <= MAX_MESSAGE_INDEXES)
        .ok_or_else(bad)?;
    let mut indexes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let index = u64::try_from(read_zigzag(&mut input).ok_or_else(bad)?).map_err(|_| bad())?;
        indexes.push(index);
    }
    Ok((indexes, input))
}

/// Where a message's type comes from.
pub enum ProtoMessages {
    /// Confluent framing: schema id and message indexes in each message.
    Registry(Arc<dyn SchemaSource>),
    /// Plain messages, all of this type.
    Fixed(MessageDescriptor),
}

/// Protobuf messages into the rows of a plan.
pub struct ProtobufDecoder {
    plan: RowPlan,
    messages: ProtoMessages,
}

impl ProtobufDecoder {
    pub fn new(plan: RowPlan, messages: ProtoMessages) -> Self {
        ProtobufDecoder { plan, messages }
    }
}

impl Decoder for ProtobufDecoder {
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
        let (id, message, what) = match &self.messages {
            ProtoMessages::Registry(source) => {
                let (id, rest) = confluent_frame(payload)?;
                let (indexes, body) = message_indexes(rest)?;
                let registered = source.schema(id).map_err(|e| e.for_record(id))?;
                let RegisteredSchema::Protobuf(schema) = registered.as_ref() else {
                    return Err(SchemaError::permanent(format!(
                        "it is an {} schema; the pipe reads Protobuf",
                        registered.kind()
                    ))
                    .for_record(id));
                };
                let descriptor = schema.message_at(&indexes).ok_or_else(|| {
                    SchemaError::permanent(format!("it has no message at indexes {indexes:?}"))
                        .for_record(id)
                })?;
                let what = format!("{} (schema id {id})", descriptor.full_name());
                (Some(id), DynamicMessage::decode(descriptor, body), what)
            }
            ProtoMessages::Fixed(descriptor) => (
                None,
                DynamicMessage::decode(descriptor.clone(), payload),
                descriptor.full_name().to_owned(),
            ),
        };
        let message =
            message.map_err(|e| parsing(format!("the bytes are not a {what} message: {e}")))?;
        Ok((id, message_json(&message)))
    }
}

fn float(value: f64) -> Json {
    Json::new_f64(value).unwrap_or_else(|| Json::from(value.to_string().as_str()))
}

fn int_field(message: &DynamicMessage, name: &str) -> i64 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::I64(v)) => *v,
        Some(Value::I32(v)) => i64::from(*v),
        _ => 0,
    }
}

/// A well-known type as the JSON it stands for; None for other messages.
fn well_known(message: &DynamicMessage) -> Option<Json> {
    let descriptor = message.descriptor();
    let name = descriptor.full_name().strip_prefix("google.protobuf.")?;
    Some(match name {
        "Timestamp" => {
            let seconds = int_field(message, "seconds");
            let nanos = u32::try_from(int_field(message, "nanos")).unwrap_or(0);
            match DateTime::from_timestamp(seconds, nanos) {
                Some(t) => Json::from(t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string().as_str()),
                None => Json::from(seconds),
            }
        }
        "Duration" => {
            let nanos = i128::from(int_field(message, "seconds")) * 1_000_000_000
                + i128::from(int_field(message, "nanos"));
            match i64::try_from(nanos) {
                Ok(n) => Json::from(n),
                Err(_) => Json::from(nanos.to_string().as_str()),
            }
        }
        "DoubleValue" | "FloatValue" | "Int64Value" | "UInt64Value" | "Int32Value"
        | "UInt32Value" | "BoolValue" | "StringValue" | "BytesValue" => {
            let field = descriptor.get_field_by_name("value")?;
            value_json(&message.get_field(&field), &field.kind())
        }
        "Struct" => {
            let field = descriptor.get_field_by_name("fields")?;
            value_json(&message.get_field(&field), &field.kind())
        }
        "ListValue" => {
            let field = descriptor.get_field_by_name("values")?;
            value_json(&message.get_field(&field), &field.kind())
        }
        "Value" => {
            let Some(set) = descriptor.fields().find(|f| message.has_field(f)) else {
                return Some(Json::new());
            };
            match (set.name(), message.get_field(&set).as_ref()) {
                ("null_value", _) => Json::new(),
                // JSON has one kind of number: a whole one reads as JSON
                // writers print it (`7`, not `7.0`).
                ("number_value", Value::F64(n))
                    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 =>
                {
                    Json::from(*n as i64)
                }
                (_, value) => value_json(value, &set.kind()),
            }
        }
        _ => return None,
    })
}

fn message_json(message: &DynamicMessage) -> Json {
    if let Some(json) = well_known(message) {
        return json;
    }
    let mut object = Object::new();
    for field in message.descriptor().fields() {
        let value = if field.supports_presence() && !message.has_field(&field) {
            Json::new()
        } else {
            let kind = if field.is_map() {
                match field.kind() {
                    Kind::Message(entry) => entry.map_entry_value_field().kind(),
                    other => other,
                }
            } else {
                field.kind()
            };
            value_json(&message.get_field(&field), &kind)
        };
        object.insert(field.name(), value);
    }
    Json::from(object)
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// A field's value; `kind` is an element's kind for lists and a value's
/// for maps.
fn value_json(value: &Value, kind: &Kind) -> Json {
    match value {
        Value::Bool(b) => Json::from(*b),
        Value::I32(v) => Json::from(*v),
        Value::I64(v) => Json::from(*v),
        Value::U32(v) => Json::from(*v),
        Value::U64(v) => Json::from(*v),
        Value::F32(v) => float(f64::from(*v)),
        Value::F64(v) => float(*v),
        Value::String(s) => Json::from(s.as_str()),
        Value::Bytes(bytes) => Json::from(String::from_utf8_lossy(bytes).as_ref()),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(e) => e
                .get_value(*number)
                .map_or_else(|| Json::from(*number), |v| Json::from(v.name())),
            _ => Json::from(*number),
        },
        Value::Message(message) => message_json(message),
        Value::List(items) => {
            let mut array = Array::new();
            for item in items {
                array.push(value_json(item, kind));
            }
            Json::from(array)
        }
        Value::Map(entries) => {
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let mut object = Object::new();
            for (key, item) in sorted {
                object.insert(&map_key(key), value_json(item, kind));
            }
            Json::from(object)
        }
    }
}

#[cfg(test)]
mod tests;

//! A pipe's format, ready to read: its decoder, with the schemas it needs
//! fetched before the first record (the registry client, and the schema a
//! registry URL pins: `Avro`'s writer schema, `AvroConfluent`'s reader),
//! and the columns its schema gives a new table. Used by the workers and
//! by the API's sample and schema-discovery endpoints alike.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sluice_formats::avro::{AvroDecoder, AvroSchemas, WriterSchema};
use sluice_formats::columns::{avro_columns, protobuf_columns};
use sluice_formats::protobuf::{compile_message, ProtoMessages, ProtobufDecoder};
use sluice_formats::{
    Decoder, InferredColumn, JsonDecoder, RegisteredSchema, RowPlan, SchemaError, SchemaSource,
};
use sluice_model::format::{Format, Pinned};
use sluice_model::{EgressPolicy, Source};

use crate::{Registry, RegistryError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The registry cannot be asked now: try again later.
    #[error("{0}")]
    Transient(String),
    /// The pipe's format fields cannot work as they are.
    #[error("{0}")]
    Permanent(String),
}

impl From<RegistryError> for FormatError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Unreachable { .. } => FormatError::Transient(e.to_string()),
            other => FormatError::Permanent(other.to_string()),
        }
    }
}

fn permanent(what: &str, e: sluice_formats::SchemaError) -> FormatError {
    FormatError::Permanent(format!("{what}: {}", e.message))
}

/// The registry subject Confluent's serializers write a topic's (or
/// stream's) values under by default (TopicNameStrategy).
fn value_subject(source: &Source) -> Option<String> {
    match source {
        Source::Kafka(kafka) => kafka.topics.first().map(|t| format!("{t}-value")),
        Source::Kinesis(kinesis) => Some(format!("{}-value", kinesis.stream_name)),
    }
}

/// The Avro schema a registry URL pins, if it pins one, with its id.
async fn pinned_avro(
    registry: &Registry,
    pinned: &Pinned,
) -> Result<Option<(u32, Arc<WriterSchema>)>, FormatError> {
    let Some((id, schema)) = registry.pinned(pinned).await? else {
        return Ok(None);
    };
    match schema.as_ref() {
        RegisteredSchema::Avro(avro) => Ok(Some((id, Arc::new(avro.clone())))),
        other => Err(FormatError::Permanent(format!(
            "schemaRegistry.url pins schema id {id}, a {} schema; the pipe reads Avro",
            other.kind()
        ))),
    }
}

struct Prepared {
    format: Format,
    registry: Option<(Registry, Pinned)>,
    inline_avro: Option<Arc<WriterSchema>>,
}

fn prepare(source: &Source, egress: Option<Arc<EgressPolicy>>) -> Result<Prepared, FormatError> {
    let fields = source.format_fields();
    let inline_avro = fields
        .avro_schema
        .map(WriterSchema::parse)
        .transpose()
        .map_err(|e| permanent("avroSchema", e))?
        .map(Arc::new);
    let registry = fields
        .schema_registry
        .map(|r| crate::for_pipe(r, egress))
        .transpose()?;
    Ok(Prepared {
        format: fields.format,
        registry,
        inline_avro,
    })
}

/// A writer schema the pipe's messages named, and how it compares with
/// the table.
#[derive(Debug, Clone)]
pub struct SeenSchema {
    pub schema_id: u32,
    pub kind: &'static str,
    /// Protobuf: the message type whose columns are given; Avro: empty.
    pub message_type: String,
    /// The columns the schema maps to.
    pub columns: Vec<InferredColumn>,
    /// Of those, the ones the table has no column for.
    pub new_columns: Vec<InferredColumn>,
    /// Fields the table's columns read that the schema does not have.
    pub missing_fields: Vec<String>,
}

/// Watches the writer schemas a registry pipe's messages name: each new
/// one is compared with the table once. With `schemaEvolution:
/// add_columns`, a schema that brings fields stops decoding
/// (`SCHEMA_CHANGED`) and waits in `take_evolution` for the replica to add
/// the columns; otherwise it is reported (`take_reports`) and its new
/// fields are not loaded.
pub struct SchemaWatch {
    evolve: bool,
    table_columns: HashSet<String>,
    table_fields: HashSet<String>,
    seen: Mutex<HashSet<u32>>,
    reports: Mutex<Vec<SeenSchema>>,
    evolution: Mutex<Option<SeenSchema>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl SchemaWatch {
    fn new(plan: &RowPlan, evolve: bool) -> Self {
        let fields = plan.column_fields();
        SchemaWatch {
            evolve,
            table_columns: fields.iter().map(|(name, _)| (*name).to_owned()).collect(),
            table_fields: fields
                .iter()
                .filter_map(|(_, field)| field.map(str::to_owned))
                .collect(),
            seen: Mutex::new(HashSet::new()),
            reports: Mutex::new(Vec::new()),
            evolution: Mutex::new(None),
        }
    }

    /// Schemas seen since the last call, for the store and its events.
    pub fn take_reports(&self) -> Vec<SeenSchema> {
        std::mem::take(&mut *lock(&self.reports))
    }

    /// The schema whose new fields the table must gain columns for.
    pub fn take_evolution(&self) -> Option<SeenSchema> {
        lock(&self.evolution).take()
    }

    fn compare(&self, id: u32, schema: &RegisteredSchema) -> SeenSchema {
        let (columns, message_type) = match schema {
            RegisteredSchema::Avro(avro) => (avro_columns(avro).unwrap_or_default(), String::new()),
            // The schema id does not say which of the file's types a
            // message is; evolution follows the file's root type.
            RegisteredSchema::Protobuf(proto) => match proto.root_message() {
                Some(message) => (protobuf_columns(&message), message.full_name().to_owned()),
                None => (Vec::new(), String::new()),
            },
        };
        let new_columns = columns
            .iter()
            .filter(|c| {
                !self.table_columns.contains(&c.name)
                    && !self.table_fields.contains(&c.source_field)
            })
            .cloned()
            .collect();
        let mut missing_fields: Vec<String> = self
            .table_fields
            .iter()
            .filter(|field| {
                !columns.iter().any(|c| {
                    c.source_field == **field
                        || c.source_field.starts_with(&format!("{field}."))
                        || field.starts_with(&format!("{}.", c.source_field))
                })
            })
            .cloned()
            .collect();
        missing_fields.sort();
        SeenSchema {
            schema_id: id,
            kind: schema.kind(),
            message_type,
            columns,
            new_columns,
            missing_fields,
        }
    }
}

/// The registry, with each new writer schema compared with the table.
struct Watched {
    registry: Arc<Registry>,
    watch: Arc<SchemaWatch>,
}

impl SchemaSource for Watched {
    fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        let schema = self.registry.schema(id)?;
        if lock(&self.watch.seen).contains(&id) {
            return Ok(schema);
        }
        let seen = self.watch.compare(id, &schema);
        if self.watch.evolve && !seen.new_columns.is_empty() {
            let names: Vec<&str> = seen
                .new_columns
                .iter()
                .map(|c| c.source_field.as_str())
                .collect();
            let message = format!("schema id {id} adds {}", names.join(", "));
            *lock(&self.watch.evolution) = Some(seen);
            return Err(SchemaError::changed(message));
        }
        lock(&self.watch.seen).insert(id);
        lock(&self.watch.reports).push(seen);
        Ok(schema)
    }
}

/// A decoder, and for registry formats the watch over its schemas.
pub struct PipeDecoder {
    pub decoder: Box<dyn Decoder>,
    pub watch: Option<Arc<SchemaWatch>>,
}

/// The decoder of `source`'s format, filling `plan`; `evolve` is
/// `schemaEvolution: add_columns`.
pub async fn decoder(
    source: &Source,
    plan: RowPlan,
    egress: Option<Arc<EgressPolicy>>,
    evolve: bool,
) -> Result<PipeDecoder, FormatError> {
    let fields = source.format_fields();
    let prepared = prepare(source, egress)?;
    let watch = Arc::new(SchemaWatch::new(&plan, evolve));
    let watched = |registry: Registry| -> Arc<dyn SchemaSource> {
        Arc::new(Watched {
            registry: Arc::new(registry),
            watch: watch.clone(),
        })
    };
    let watched_formats = matches!(prepared.format, Format::AvroConfluent)
        || (prepared.format == Format::Protobuf && prepared.registry.is_some());
    let decoder: Box<dyn Decoder> = match prepared.format {
        Format::JSONEachRow => Box::new(JsonDecoder::new(plan)),
        Format::Avro => {
            let writer = match (prepared.inline_avro, &prepared.registry) {
                (Some(writer), _) => writer,
                (None, Some((registry, pinned))) => pinned_avro(registry, pinned)
                    .await?
                    .map(|(_, schema)| schema)
                    .ok_or_else(|| {
                        FormatError::Permanent(
                            "an Avro pipe needs avroSchema or a pinned schema in schemaRegistry.url"
                                .into(),
                        )
                    })?,
                (None, None) => {
                    return Err(FormatError::Permanent(
                        "an Avro pipe needs avroSchema or schemaRegistry".into(),
                    ))
                }
            };
            Box::new(AvroDecoder::new(plan, AvroSchemas::Fixed(writer), None))
        }
        Format::AvroConfluent => {
            let Some((registry, pinned)) = prepared.registry else {
                return Err(FormatError::Permanent(
                    "an AvroConfluent pipe needs schemaRegistry".into(),
                ));
            };
            let reader = match prepared.inline_avro {
                Some(reader) => Some(reader),
                None => pinned_avro(&registry, &pinned).await?.map(|(_, s)| s),
            };
            Box::new(AvroDecoder::new(
                plan,
                AvroSchemas::Registry(watched(registry)),
                reader,
            ))
        }
        Format::Protobuf => match (
            prepared.registry,
            fields.protobuf_schema,
            fields.message_type,
        ) {
            (Some((registry, _)), _, _) => Box::new(ProtobufDecoder::new(
                plan,
                ProtoMessages::Registry(watched(registry)),
            )),
            (None, Some(files), Some(message_type)) => {
                let descriptor = compile_message(files, message_type)
                    .map_err(|e| permanent("protobufSchema", e))?;
                Box::new(ProtobufDecoder::new(plan, ProtoMessages::Fixed(descriptor)))
            }
            _ => {
                return Err(FormatError::Permanent(
                    "a Protobuf pipe needs schemaRegistry, or protobufSchema and messageType"
                        .into(),
                ))
            }
        },
    };
    Ok(PipeDecoder {
        decoder,
        watch: watched_formats.then_some(watch),
    })
}

/// Columns derived from a schema, and where the schema came from.
#[derive(Debug, Clone)]
pub struct SchemaColumns {
    pub columns: Vec<InferredColumn>,
    /// The registry id of the schema, when it came from the registry.
    pub schema_id: Option<u32>,
    /// Where the schema came from, in words.
    pub origin: String,
}

/// The columns `source`'s schema gives a new table; `None` for
/// JSONEachRow, whose columns come from samples. From the registry, the
/// schema the URL pins, else the latest version of the topic's (stream's)
/// value subject, `<name>-value`; for Protobuf from the registry, the
/// file's root message type (`ProtoSchema::root_message`).
pub async fn schema_columns(
    source: &Source,
    egress: Option<Arc<EgressPolicy>>,
) -> Result<Option<SchemaColumns>, FormatError> {
    let fields = source.format_fields();
    let prepared = prepare(source, egress)?;
    let columns_of = |schema: &WriterSchema| avro_columns(schema).map_err(FormatError::Permanent);
    let from_registry = |pinned: &Pinned| -> Result<Pinned, FormatError> {
        Ok(match pinned {
            Pinned::Nothing => Pinned::Subject {
                subject: value_subject(source).ok_or_else(|| {
                    FormatError::Permanent("name the topic whose schema to read".into())
                })?,
                version: None,
            },
            other => other.clone(),
        })
    };
    match prepared.format {
        Format::JSONEachRow => Ok(None),
        Format::Avro | Format::AvroConfluent => {
            if let Some(schema) = &prepared.inline_avro {
                return Ok(Some(SchemaColumns {
                    columns: columns_of(schema)?,
                    schema_id: None,
                    origin: "avroSchema".into(),
                }));
            }
            let Some((registry, pinned)) = &prepared.registry else {
                return Err(FormatError::Permanent(
                    "give avroSchema or schemaRegistry".into(),
                ));
            };
            let pinned = from_registry(pinned)?;
            let (id, schema) = pinned_avro(registry, &pinned)
                .await?
                .ok_or_else(|| FormatError::Permanent("the registry URL pins no schema".into()))?;
            Ok(Some(SchemaColumns {
                columns: columns_of(&schema)?,
                schema_id: Some(id),
                origin: describe(&pinned, id),
            }))
        }
        Format::Protobuf => match (
            &prepared.registry,
            fields.protobuf_schema,
            fields.message_type,
        ) {
            (Some((registry, pinned)), _, _) => {
                let pinned = from_registry(pinned)?;
                let (id, schema) = registry.pinned(&pinned).await?.ok_or_else(|| {
                    FormatError::Permanent("the registry URL pins no schema".into())
                })?;
                let RegisteredSchema::Protobuf(proto) = schema.as_ref() else {
                    return Err(FormatError::Permanent(format!(
                        "schema id {id} is a {} schema; the pipe reads Protobuf",
                        schema.kind()
                    )));
                };
                let message = proto.root_message().ok_or_else(|| {
                    FormatError::Permanent(format!("schema id {id} defines no message"))
                })?;
                Ok(Some(SchemaColumns {
                    columns: protobuf_columns(&message),
                    schema_id: Some(id),
                    origin: format!("{}, message {}", describe(&pinned, id), message.full_name()),
                }))
            }
            (None, Some(files), Some(message_type)) => {
                let message = compile_message(files, message_type)
                    .map_err(|e| permanent("protobufSchema", e))?;
                Ok(Some(SchemaColumns {
                    columns: protobuf_columns(&message),
                    schema_id: None,
                    origin: format!("protobufSchema, message {}", message.full_name()),
                }))
            }
            _ => Err(FormatError::Permanent(
                "give schemaRegistry, or protobufSchema and messageType".into(),
            )),
        },
    }
}

fn describe(pinned: &Pinned, id: u32) -> String {
    match pinned {
        Pinned::Subject {
            subject,
            version: Some(v),
        } => format!("version {v} of subject {subject} (schema id {id})"),
        Pinned::Subject { subject, .. } => {
            format!("the latest version of subject {subject} (schema id {id})")
        }
        _ => format!("schema id {id}"),
    }
}

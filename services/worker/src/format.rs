//! The decoder of a pipe's format, with the schemas it needs fetched
//! before the first record: the registry client, and the schema a
//! registry URL pins (`Avro`'s writer schema, `AvroConfluent`'s reader).

use std::sync::Arc;

use sluice_formats::avro::{AvroDecoder, AvroSchemas, WriterSchema};
use sluice_formats::protobuf::{compile_message, ProtoMessages, ProtobufDecoder};
use sluice_formats::{Decoder, JsonDecoder, RegisteredSchema, RowPlan};
use sluice_model::format::Format;
use sluice_model::{EgressPolicy, Source};
use sluice_registry::{Registry, RegistryError};

use crate::replica::RunError;

fn registry_error(e: RegistryError) -> RunError {
    match e {
        RegistryError::Unreachable { .. } => RunError::Source(e.to_string()),
        other => RunError::Permanent(other.to_string()),
    }
}

/// The Avro schema a registry URL pins, if it pins one.
async fn pinned_avro(
    registry: &Registry,
    pinned: &sluice_model::format::Pinned,
) -> Result<Option<Arc<WriterSchema>>, RunError> {
    let Some((id, schema)) = registry.pinned(pinned).await.map_err(registry_error)? else {
        return Ok(None);
    };
    match schema.as_ref() {
        RegisteredSchema::Avro(avro) => Ok(Some(Arc::new(avro.clone()))),
        other => Err(RunError::Permanent(format!(
            "schemaRegistry.url pins schema id {id}, a {} schema; the pipe reads Avro",
            other.kind()
        ))),
    }
}

pub async fn decoder(
    source: &Source,
    plan: RowPlan,
    egress: &Arc<EgressPolicy>,
) -> Result<Box<dyn Decoder>, RunError> {
    let fields = source.format_fields();
    let permanent = |what: &str, e: sluice_formats::SchemaError| {
        RunError::Permanent(format!("{what}: {}", e.message))
    };
    let inline_avro = fields
        .avro_schema
        .map(WriterSchema::parse)
        .transpose()
        .map_err(|e| permanent("avroSchema", e))?
        .map(Arc::new);
    let registry = fields
        .schema_registry
        .map(|r| sluice_registry::for_pipe(r, Some(egress.clone())))
        .transpose()
        .map_err(registry_error)?;
    Ok(match fields.format {
        Format::JSONEachRow => Box::new(JsonDecoder::new(plan)),
        Format::Avro => {
            let writer = match (inline_avro, &registry) {
                (Some(writer), _) => writer,
                (None, Some((registry, pinned))) => {
                    pinned_avro(registry, pinned).await?.ok_or_else(|| {
                        RunError::Permanent(
                            "an Avro pipe needs avroSchema or a pinned schema in schemaRegistry.url"
                                .into(),
                        )
                    })?
                }
                (None, None) => {
                    return Err(RunError::Permanent(
                        "an Avro pipe needs avroSchema or schemaRegistry".into(),
                    ))
                }
            };
            Box::new(AvroDecoder::new(plan, AvroSchemas::Fixed(writer), None))
        }
        Format::AvroConfluent => {
            let Some((registry, pinned)) = registry else {
                return Err(RunError::Permanent(
                    "an AvroConfluent pipe needs schemaRegistry".into(),
                ));
            };
            let reader = match inline_avro {
                Some(reader) => Some(reader),
                None => pinned_avro(&registry, &pinned).await?,
            };
            Box::new(AvroDecoder::new(
                plan,
                AvroSchemas::Registry(Arc::new(registry)),
                reader,
            ))
        }
        Format::Protobuf => match (registry, fields.protobuf_schema, fields.message_type) {
            (Some((registry, _)), _, _) => Box::new(ProtobufDecoder::new(
                plan,
                ProtoMessages::Registry(Arc::new(registry)),
            )),
            (None, Some(files), Some(message_type)) => {
                let descriptor = compile_message(files, message_type)
                    .map_err(|e| permanent("protobufSchema", e))?;
                Box::new(ProtobufDecoder::new(plan, ProtoMessages::Fixed(descriptor)))
            }
            _ => {
                return Err(RunError::Permanent(
                    "a Protobuf pipe needs schemaRegistry, or protobufSchema and messageType"
                        .into(),
                ))
            }
        },
    })
}

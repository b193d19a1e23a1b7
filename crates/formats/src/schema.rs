//! Writer schemas a message names by id (Confluent's framing), shared by
//! the Avro and Protobuf decoders. The schemas come from a `SchemaSource`
//! (the registry client in `crates/registry`, a map in tests); decoding
//! stays free of I/O.

use std::sync::Arc;

use crate::row::{ErrorCode, RecordError};

/// Why a writer schema is not available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchemaError {
    pub message: String,
    /// The registry could not be asked (unreachable, 5xx, timed out):
    /// the record is not wrong, so it must not go to the error table. The
    /// replica stops and reads it again later.
    pub transient: bool,
    /// The schema brings fields the table gains columns for first
    /// (`SCHEMA_CHANGED`): the replica stops, evolves the table, and reads
    /// the record again.
    pub changed: bool,
}

impl SchemaError {
    pub fn permanent(message: impl Into<String>) -> Self {
        SchemaError {
            message: message.into(),
            transient: false,
            changed: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        SchemaError {
            message: message.into(),
            transient: true,
            changed: false,
        }
    }

    pub fn changed(message: impl Into<String>) -> Self {
        SchemaError {
            message: message.into(),
            transient: false,
            changed: true,
        }
    }

    /// The record's error: `SOURCE_SCHEMA_ERROR`, or, while the registry
    /// cannot be asked, `SCHEMA_UNAVAILABLE` (which stops the replica).
    pub fn for_record(self, id: u32) -> RecordError {
        RecordError {
            code: if self.changed {
                ErrorCode::SchemaChanged
            } else if self.transient {
                ErrorCode::SchemaUnavailable
            } else {
                ErrorCode::SourceSchemaError
            },
            message: format!("schema id {id}: {}", self.message),
        }
    }
}

/// A schema as registered: Avro or Protobuf. Kept behind an `Arc` in
/// caches, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum RegisteredSchema {
    Avro(crate::avro::WriterSchema),
    Protobuf(crate::protobuf::ProtoSchema),
}

impl RegisteredSchema {
    pub fn kind(&self) -> &'static str {
        match self {
            RegisteredSchema::Avro(_) => "AVRO",
            RegisteredSchema::Protobuf(_) => "PROTOBUF",
        }
    }
}

/// Writer schemas by their registry id.
pub trait SchemaSource: Send + Sync {
    fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError>;
}

pub(crate) fn parsing(message: String) -> RecordError {
    RecordError {
        code: ErrorCode::DataParsingError,
        message,
    }
}

/// The schema id and what follows it in a Confluent-framed message.
pub fn confluent_frame(payload: &[u8]) -> Result<(u32, &[u8]), RecordError> {
    match payload {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [0, ..] => Err(parsing(format!(
            "{} bytes are too short for Confluent's framing (a zero byte and a 4-byte schema id)",
            payload.len()
        ))),
        [first, ..] => Err(parsing(format!(
            "the message does not start with Confluent's magic byte 0 (found {first}); was it written by a registry-aware serializer?"
        ))),
        [] => Err(parsing("the message is empty".into())),
    }
}

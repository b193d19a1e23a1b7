//! Turning source records into ClickHouse rows.

pub mod avro;
pub mod columns;
pub mod infer;
pub mod json;
pub mod protobuf;
pub mod row;
pub mod schema;

pub use infer::{fit_to_server, infer_columns, Inference, InferredColumn};
pub use json::{convert, zero_value, ConvertError, JsonDecoder};
pub use row::{ColumnSource, ErrorCode, RecordError, RecordMeta, RowPlan, VirtualColumn};
pub use schema::{RegisteredSchema, SchemaError, SchemaSource};

/// A message format: one message's bytes to rows of the destination's
/// columns, appended to `out` as RowBinary (RowBinaryWithDefaults when the
/// plan says so). Returns how many rows; on error nothing is appended, so a
/// message lands whole or goes to the error table whole.
pub trait Decoder: Send + Sync {
    fn decode(
        &self,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, RecordError>;

    /// The message as the JSON its rows are read from, and the registry
    /// schema id it names (registry formats): what the wizard's sample
    /// view shows.
    fn read(&self, payload: &[u8]) -> Result<(Option<u32>, sonic_rs::Value), RecordError>;
}

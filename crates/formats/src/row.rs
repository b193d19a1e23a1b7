//! The row plan: the destination's columns, where each one's value comes
//! from (a field of the message, or a virtual column such as `_offset`),
//! and whether a missing field lets ClickHouse apply the column's DEFAULT.
//! Format-independent; each format's decoder (`crate::json`) follows it.

use sluice_clickhouse_types::ChType;

/// Metadata columns of a record, usable as mapping sources. Kafka:
/// `_key`, `_timestamp`, `_partition`, `_offset`, `_topic`,
/// `_header_keys`, `_header_values`, `_raw_message`. Kinesis: `_key` (the
/// partition key), `_timestamp` (approximate arrival), `_stream`,
/// `_sequence_number`, `_raw_message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtualColumn {
    Key,
    Stream,
    SequenceNumber,
    Timestamp,
    Partition,
    Offset,
    Topic,
    HeaderKeys,
    HeaderValues,
    RawMessage,
}

impl VirtualColumn {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "_key" => Self::Key,
            "_timestamp" => Self::Timestamp,
            "_partition" => Self::Partition,
            "_offset" => Self::Offset,
            "_topic" => Self::Topic,
            "_stream" => Self::Stream,
            "_sequence_number" => Self::SequenceNumber,
            "_header_keys" => Self::HeaderKeys,
            "_header_values" => Self::HeaderValues,
            "_raw_message" => Self::RawMessage,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnSource {
    /// A field of the message: tried first as one key (`a.b` literally),
    /// then as a path through nested objects.
    Field {
        path: String,
        segments: Vec<String>,
    },
    Virtual(VirtualColumn),
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedColumn {
    pub(crate) name: String,
    pub(crate) ty: ChType,
    pub(crate) source: ColumnSource,
    pub(crate) has_default: bool,
}

/// Where a record came from, for virtual columns and the error table.
#[derive(Debug, Clone, Default)]
pub struct RecordMeta<'a> {
    pub key: Option<&'a [u8]>,
    pub timestamp_ms: Option<i64>,
    pub partition: i32,
    pub offset: i64,
    /// Topic, or Kinesis stream.
    pub topic: &'a str,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    /// Kinesis only: sequence numbers (up to 128 digits) exceed the
    /// integer types, so they travel as text.
    pub sequence_number: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    DataParsingError,
    TypeConversionError,
    MessageTooLarge,
    /// ClickHouse refused the row (a constraint, a materialized view's
    /// exception, a value the column cannot hold).
    InsertRejected,
    /// The message names a schema the registry does not have (an unknown
    /// id, a schema of another kind).
    SourceSchemaError,
    /// The registry could not be asked. Never written to the error table:
    /// the replica stops, is Retrying, and reads the record again later,
    /// so an outage of the registry does not turn a topic into error rows.
    SchemaUnavailable,
    /// The message's writer schema brings fields the pipe evolves its table
    /// for (`schemaEvolution: add_columns`). Never written to the error
    /// table: the replica inserts what it holds, adds the columns, and reads
    /// the message again.
    SchemaChanged,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::DataParsingError => "DATA_PARSING_ERROR",
            ErrorCode::TypeConversionError => "TYPE_CONVERSION_ERROR",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::InsertRejected => "INSERT_REJECTED",
            ErrorCode::SourceSchemaError => "SOURCE_SCHEMA_ERROR",
            ErrorCode::SchemaUnavailable => "SCHEMA_UNAVAILABLE",
            ErrorCode::SchemaChanged => "SCHEMA_CHANGED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RecordError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct RowPlan {
    pub(crate) columns: Vec<PlannedColumn>,
    pub(crate) uses_virtual: bool,
    /// Encode as RowBinaryWithDefaults (a marker byte before each value).
    pub(crate) with_defaults: bool,
}

impl RowPlan {
    /// `mappings` are (source field, destination column); columns without
    /// a mapping read the source field of their own name.
    pub fn new(columns: Vec<(String, ChType)>, mappings: &[(String, String)]) -> Self {
        let columns: Vec<PlannedColumn> = columns
            .into_iter()
            .map(|(name, ty)| {
                let source_name = mappings
                    .iter()
                    .find(|(_, dest)| *dest == name)
                    .map_or(name.as_str(), |(source, _)| source.as_str())
                    .to_owned();
                let source = match VirtualColumn::parse(&source_name) {
                    Some(v) => ColumnSource::Virtual(v),
                    None => ColumnSource::Field {
                        segments: source_name.split('.').map(str::to_owned).collect(),
                        path: source_name,
                    },
                };
                PlannedColumn {
                    name,
                    ty,
                    source,
                    has_default: false,
                }
            })
            .collect();
        let uses_virtual = columns
            .iter()
            .any(|c| matches!(c.source, ColumnSource::Virtual(_)));
        RowPlan {
            columns,
            uses_virtual,
            with_defaults: false,
        }
    }

    /// Switches to RowBinaryWithDefaults: a field missing from a message
    /// makes ClickHouse evaluate the column's DEFAULT expression (columns
    /// named in `defaulted`) instead of taking the type's zero value. Only
    /// for servers that have the format (`RowPlan::format_name`).
    pub fn with_defaults(mut self, defaulted: &[String]) -> Self {
        self.with_defaults = true;
        for column in &mut self.columns {
            column.has_default = defaulted.contains(&column.name);
        }
        self
    }

    pub fn format_name(&self) -> &'static str {
        if self.with_defaults {
            "RowBinaryWithDefaults"
        } else {
            "RowBinary"
        }
    }

    /// Each column with the message field it reads (None for virtual
    /// columns).
    pub fn column_fields(&self) -> Vec<(&str, Option<&str>)> {
        self.columns
            .iter()
            .map(|c| {
                let field = match &c.source {
                    ColumnSource::Field { path, .. } => Some(path.as_str()),
                    ColumnSource::Virtual(_) => None,
                };
                (c.name.as_str(), field)
            })
            .collect()
    }

    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn has_json_column(&self) -> bool {
        fn contains_json(ty: &ChType) -> bool {
            match ty {
                ChType::Json => true,
                ChType::Nullable(t) | ChType::LowCardinality(t) | ChType::Array(t) => {
                    contains_json(t)
                }
                ChType::Map(k, v) => contains_json(k) || contains_json(v),
                ChType::Tuple(items) => items.iter().any(|(_, t)| contains_json(t)),
                ChType::Variant(items) => items.iter().any(contains_json),
                _ => false,
            }
        }
        self.columns.iter().any(|c| contains_json(&c.ty))
    }
}

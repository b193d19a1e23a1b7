//! One source message to RowBinary rows for the destination's columns.

use chrono::{TimeZone, Utc};
use sluice_clickhouse::{encode, ChType};
use sonic_rs::{JsonContainerTrait, Value as Json};

use crate::convert::{convert, zero_value};
use crate::json::{self, Kind};

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
struct PlannedColumn {
    name: String,
    ty: ChType,
    source: ColumnSource,
    has_default: bool,
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
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::DataParsingError => "DATA_PARSING_ERROR",
            ErrorCode::TypeConversionError => "TYPE_CONVERSION_ERROR",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::InsertRejected => "INSERT_REJECTED",
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
    columns: Vec<PlannedColumn>,
    uses_virtual: bool,
    /// Encode as RowBinaryWithDefaults (a marker byte before each value).
    with_defaults: bool,
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

    /// Appends the message's rows to `out` and returns how many; on error
    /// nothing is appended (a message lands whole or goes to the error
    /// table whole).
    pub fn encode_message(
        &self,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, RecordError> {
        let start = out.len();
        let result = self.encode_into(payload, meta, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_into(
        &self,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        out: &mut Vec<u8>,
    ) -> Result<u32, RecordError> {
        let parse_error = |message: String| RecordError {
            code: ErrorCode::DataParsingError,
            message,
        };
        let virtuals = if self.uses_virtual {
            Some(virtual_values(payload, meta))
        } else {
            None
        };
        let mut rows = 0;
        for value in json::values(payload) {
            let value = value.map_err(|e| parse_error(format!("not valid JSON: {e}")))?;
            let Kind::Object(object) = json::kind(&value) else {
                return Err(parse_error(format!(
                    "expected a JSON object per row, found {}",
                    kind(&value)
                )));
            };
            let fields = json::Fields::new(object);
            for column in &self.columns {
                let value = match &column.source {
                    ColumnSource::Field { path, segments } => {
                        match lookup(&fields, path, segments) {
                            Some(json) => convert(&column.ty, json),
                            // RowBinaryWithDefaults: 1 = let ClickHouse apply
                            // the column's DEFAULT expression.
                            None if self.with_defaults && column.has_default => {
                                out.push(1);
                                continue;
                            }
                            None => Ok(zero_value(&column.ty)),
                        }
                    }
                    ColumnSource::Virtual(v) => {
                        let null = Json::new();
                        let json = virtuals.as_ref().map_or(&null, |all| all.get(*v));
                        convert(&column.ty, json)
                    }
                }
                .map_err(|e| RecordError {
                    code: ErrorCode::TypeConversionError,
                    message: format!("column `{}`: {e}", column.name),
                })?;
                if self.with_defaults {
                    out.push(0);
                }
                encode(&column.ty, &value, out).map_err(|e| RecordError {
                    code: ErrorCode::TypeConversionError,
                    message: format!("column `{}`: {e}", column.name),
                })?;
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(parse_error("the message holds no JSON object".into()));
        }
        Ok(rows)
    }
}

fn kind(value: &Json) -> &'static str {
    match json::kind(value) {
        Kind::Null => "null",
        Kind::Bool(_) => "a boolean",
        Kind::Number(_) => "a number",
        Kind::String(_) => "a string",
        Kind::Array(_) => "an array",
        Kind::Object(_) => "an object",
    }
}

fn lookup<'a>(fields: &json::Fields<'a>, path: &str, segments: &[String]) -> Option<&'a Json> {
    if let Some(value) = fields.get(path) {
        return Some(value);
    }
    if segments.len() < 2 {
        return None;
    }
    let mut current = fields.get(&segments[0])?;
    for segment in &segments[1..] {
        current = json::get(current.as_object()?, segment)?;
    }
    Some(current)
}

struct VirtualValues {
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
fn virtual_values(payload: &[u8], meta: &RecordMeta<'_>) -> VirtualValues {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_clickhouse::Value;

    fn plan(columns: &[(&str, &str)], mappings: &[(&str, &str)]) -> RowPlan {
        RowPlan::new(
            columns
                .iter()
                .map(|(n, t)| (n.to_string(), ChType::parse(t).unwrap()))
                .collect(),
            &mappings
                .iter()
                .map(|(s, d)| (s.to_string(), d.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    fn expected(columns: &[(&str, Value)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (ty, value) in columns {
            encode(&ChType::parse(ty).unwrap(), value, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn fields_paths_mappings_and_missing_values() {
        let plan = plan(
            &[
                ("id", "UInt64"),
                ("customer", "String"),
                ("note", "Nullable(String)"),
                ("total", "Float64"),
            ],
            &[("order.customer.name", "customer")],
        );
        let mut out = Vec::new();
        let rows = plan
            .encode_message(
                br#"{"id": 7, "order": {"customer": {"name": "ann"}}, "total": 1.5}"#,
                &RecordMeta::default(),
                &mut out,
            )
            .unwrap();
        assert_eq!(rows, 1);
        assert_eq!(
            out,
            expected(&[
                ("UInt64", Value::int(7)),
                ("String", Value::string("ann")),
                ("Nullable(String)", Value::Null),
                ("Float64", Value::Float(1.5))
            ])
        );
    }

    #[test]
    fn several_objects_per_message_and_dotted_keys() {
        let plan = plan(&[("a.b", "UInt8")], &[]);
        let mut out = Vec::new();
        let rows = plan
            .encode_message(
                b"{\"a.b\": 1}\n{\"a\": {\"b\": 2}}\n",
                &RecordMeta::default(),
                &mut out,
            )
            .unwrap();
        assert_eq!(rows, 2);
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn errors_leave_nothing_behind() {
        let plan = plan(&[("n", "UInt8")], &[]);
        let mut out = vec![9];
        for (payload, code) in [
            (
                &b"{\"n\": 1} {\"n\": 300}"[..],
                ErrorCode::TypeConversionError,
            ),
            (b"{\"n\": 1} not json", ErrorCode::DataParsingError),
            (b"[1, 2]", ErrorCode::DataParsingError),
            (b"", ErrorCode::DataParsingError),
            (b"\xff\xfe", ErrorCode::DataParsingError),
        ] {
            let error = plan
                .encode_message(payload, &RecordMeta::default(), &mut out)
                .unwrap_err();
            assert_eq!(error.code, code, "{payload:?}");
            assert_eq!(out, [9], "nothing appended for {payload:?}");
        }
        let error = plan
            .encode_message(b"{\"n\": 300}", &RecordMeta::default(), &mut out)
            .unwrap_err();
        assert!(error.message.contains("column `n`"), "{}", error.message);
    }

    #[test]
    fn objects_read_as_serde_json_read_them() {
        // A repeated key takes its last value, maps and JSON text come
        // out sorted by key, and a negative zero stays negative.
        let plan = plan(
            &[
                ("a", "UInt8"),
                ("m", "Map(String, UInt8)"),
                ("j", "JSON"),
                ("z", "Float64"),
                ("s", "String"),
            ],
            &[],
        );
        let mut out = Vec::new();
        plan.encode_message(
            br#"{"a": 1, "m": {"y": 1, "x": 2, "y": 3}, "j": {"b": [-0], "a": 1}, "z": -0.0, "s": [-0, 1.50, 1E2], "a": 2}"#,
            &RecordMeta::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            expected(&[
                ("UInt8", Value::int(2)),
                (
                    "Map(String, UInt8)",
                    Value::Map(vec![
                        (Value::string("x"), Value::int(2)),
                        (Value::string("y"), Value::int(3)),
                    ])
                ),
                ("JSON", Value::string(r#"{"a":1,"b":[-0.0]}"#)),
                ("Float64", Value::Float(-0.0)),
                ("String", Value::string("[-0.0,1.5,100.0]")),
            ])
        );
    }

    #[test]
    fn row_binary_with_defaults_marks_missing_fields() {
        let plan = plan(&[("a", "UInt8"), ("b", "UInt8"), ("c", "UInt8")], &[])
            .with_defaults(&["b".to_owned()]);
        assert_eq!(plan.format_name(), "RowBinaryWithDefaults");
        let mut out = Vec::new();
        plan.encode_message(br#"{"a": 1}"#, &RecordMeta::default(), &mut out)
            .unwrap();
        // a given; b missing with a DEFAULT: marker 1; c missing without: zero.
        assert_eq!(out, [0, 1, 1, 0, 0]);
    }

    #[test]
    fn virtual_columns() {
        let plan = plan(
            &[
                ("k", "Nullable(String)"),
                ("ts", "DateTime64(3)"),
                ("p", "Int32"),
                ("o", "Int64"),
                ("t", "String"),
                ("hk", "Array(String)"),
                ("hv", "Array(String)"),
                ("raw", "String"),
            ],
            &[
                ("_key", "k"),
                ("_timestamp", "ts"),
                ("_partition", "p"),
                ("_offset", "o"),
                ("_topic", "t"),
                ("_header_keys", "hk"),
                ("_header_values", "hv"),
                ("_raw_message", "raw"),
            ],
        );
        let payload = br#"{"x":1}"#;
        let meta = RecordMeta {
            key: Some(b"key-1"),
            timestamp_ms: Some(1_700_000_000_123),
            partition: 3,
            offset: 42,
            topic: "orders",
            headers: vec![("h", Some(b"v")), ("empty", None)],
            sequence_number: None,
        };
        let mut out = Vec::new();
        plan.encode_message(payload, &meta, &mut out).unwrap();
        let strings =
            |items: &[&str]| Value::Array(items.iter().map(|s| Value::string(*s)).collect());
        assert_eq!(
            out,
            expected(&[
                ("Nullable(String)", Value::string("key-1")),
                ("DateTime64(3)", Value::DateTime64(1_700_000_000_123)),
                ("Int32", Value::int(3)),
                ("Int64", Value::int(42)),
                ("String", Value::string("orders")),
                ("Array(String)", strings(&["h", "empty"])),
                ("Array(String)", strings(&["v", ""])),
                ("String", Value::string(r#"{"x":1}"#)),
            ])
        );
    }

    #[test]
    fn kinesis_virtual_columns() {
        let plan = plan(
            &[("k", "String"), ("s", "String"), ("n", "String")],
            &[("_key", "k"), ("_stream", "s"), ("_sequence_number", "n")],
        );
        let sequence = "49590338271490256608559692538361571095921575989136588898";
        let meta = RecordMeta {
            key: Some(b"user-7"),
            topic: "clicks",
            sequence_number: Some(sequence),
            ..RecordMeta::default()
        };
        let mut out = Vec::new();
        plan.encode_message(br#"{}"#, &meta, &mut out).unwrap();
        assert_eq!(
            out,
            expected(&[
                ("String", Value::string("user-7")),
                ("String", Value::string("clicks")),
                ("String", Value::string(sequence)),
            ])
        );
    }
}

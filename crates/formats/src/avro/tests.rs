use std::collections::HashMap;

use apache_avro::types::Value as Avro;
use sluice_clickhouse_types::ChType;

use super::*;
use crate::json::JsonDecoder;
use crate::row::ErrorCode;

const SCHEMA: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "active", "type": "boolean"},
    {"name": "score", "type": "double"},
    {"name": "note", "type": ["null", "string"]},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attributes", "type": {"type": "map", "values": "int"}},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "name", "type": "string"},
      {"name": "since", "type": {"type": "int", "logicalType": "date"}}
    ]}},
    {"name": "shipper", "type": ["null", "Customer"]},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 4}}
  ]
}"#;

struct Registry(HashMap<u32, Arc<RegisteredSchema>>);

impl SchemaSource for Registry {
    fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        self.0
            .get(&id)
            .cloned()
            .ok_or_else(|| SchemaError::permanent(format!("no schema has id {id}")))
    }
}

fn registry() -> AvroSchemas {
    AvroSchemas::Registry(Arc::new(Registry(HashMap::from([(
        7,
        Arc::new(RegisteredSchema::Avro(WriterSchema::parse(SCHEMA).unwrap())),
    )]))))
}

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

fn order(id: i64, total_cents: i64) -> Avro {
    let customer = Avro::Record(vec![
        ("name".into(), Avro::String("Ada".into())),
        ("since".into(), Avro::Date(19_000)),
    ]);
    Avro::Record(vec![
        ("id".into(), Avro::Long(id)),
        ("active".into(), Avro::Boolean(true)),
        ("score".into(), Avro::Double(0.5)),
        (
            "note".into(),
            Avro::Union(1, Box::new(Avro::String("fragile".into()))),
        ),
        ("status".into(), Avro::Enum(1, "PAID".into())),
        (
            "tags".into(),
            Avro::Array(vec![Avro::String("a".into()), Avro::String("b".into())]),
        ),
        (
            "attributes".into(),
            Avro::Map(HashMap::from([("weight".to_owned(), Avro::Int(3))])),
        ),
        ("customer".into(), customer.clone()),
        ("shipper".into(), Avro::Union(0, Box::new(Avro::Null))),
        (
            "total".into(),
            Avro::Decimal(apache_avro::Decimal::from(
                total_cents.to_be_bytes().to_vec(),
            )),
        ),
        ("at".into(), Avro::TimestampMicros(1_700_000_000_123_456)),
        ("at_ms".into(), Avro::TimestampMillis(1_700_000_000_123)),
        (
            "ref".into(),
            Avro::Uuid("6f1c2a4e-1b2c-4d5e-8f90-0123456789ab".parse().unwrap()),
        ),
        ("code".into(), Avro::Fixed(4, b"AB12".to_vec())),
    ])
}

fn framed(id: u32, value: Avro) -> Vec<u8> {
    let schema = Schema::parse_str(SCHEMA).unwrap();
    let mut message = vec![0];
    message.extend_from_slice(&id.to_be_bytes());
    message.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
    message
}

/// An Avro record lands exactly as the same record sent as JSON would:
/// the two decoders share the field lookup and the conversion rules.
#[test]
fn avro_records_land_as_their_json_twin_would() {
    let columns = [
        ("id", "UInt64"),
        ("active", "UInt8"),
        ("score", "Float64"),
        ("note", "Nullable(String)"),
        ("status", "LowCardinality(String)"),
        ("tags", "Array(String)"),
        ("weight", "Int32"),
        ("customer_name", "String"),
        ("customer_since", "Date"),
        ("shipper", "Nullable(String)"),
        ("total", "Decimal(18, 2)"),
        ("at", "DateTime64(6)"),
        ("at_ms", "DateTime64(3)"),
        ("ref", "UUID"),
        ("code", "FixedString(4)"),
        ("customer", "String"),
    ];
    let mappings = [
        ("attributes.weight", "weight"),
        ("customer.name", "customer_name"),
        ("customer.since", "customer_since"),
    ];
    let avro = AvroDecoder::new(plan(&columns, &mappings), registry(), None);
    let mut from_avro = Vec::new();
    let rows = avro
        .decode(
            &framed(7, order(42, -12345)),
            &RecordMeta::default(),
            &mut from_avro,
        )
        .unwrap();
    assert_eq!(rows, 1);

    let twin = br#"{"id": 42, "active": true, "score": 0.5, "note": "fragile", "status": "PAID",
        "tags": ["a", "b"], "attributes": {"weight": 3},
        "customer": {"name": "Ada", "since": "2022-01-08"}, "shipper": null,
        "total": "-123.45", "at": "2023-11-14T22:13:20.123456Z", "at_ms": "2023-11-14T22:13:20.123Z",
        "ref": "6f1c2a4e-1b2c-4d5e-8f90-0123456789ab", "code": "AB12"}"#;
    let json = JsonDecoder::new(plan(&columns, &mappings));
    let mut from_json = Vec::new();
    json.decode(twin, &RecordMeta::default(), &mut from_json)
        .unwrap();
    assert_eq!(from_avro, from_json);
}

#[test]
fn framing_schemas_and_datums_are_checked() {
    let avro = AvroDecoder::new(plan(&[("id", "UInt64")], &[]), registry(), None);
    let mut out = Vec::new();
    let meta = RecordMeta::default();

    let error = avro.decode(br#"{"id": 1}"#, &meta, &mut out).unwrap_err();
    assert_eq!(error.code, ErrorCode::DataParsingError);
    assert!(error.message.contains("magic byte"), "{error}");

    let error = avro.decode(&[0, 0, 0], &meta, &mut out).unwrap_err();
    assert_eq!(error.code, ErrorCode::DataParsingError);

    let error = avro
        .decode(&framed(9, order(1, 1))[..], &meta, &mut out)
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::SourceSchemaError);
    assert!(error.message.contains("schema id 9"), "{error}");

    let mut truncated = framed(7, order(1, 1));
    truncated.truncate(12);
    let error = avro.decode(&truncated, &meta, &mut out).unwrap_err();
    assert_eq!(error.code, ErrorCode::DataParsingError);

    let mut trailing = framed(7, order(1, 1));
    trailing.push(0);
    let error = avro.decode(&trailing, &meta, &mut out).unwrap_err();
    assert!(error.message.contains("left after the datum"), "{error}");
    assert!(out.is_empty(), "nothing of a refused message is kept");
}

#[test]
fn decimals_keep_every_digit() {
    assert_eq!(decimal_text(-12345, 2), "-123.45");
    assert_eq!(decimal_text(5, 3), "0.005");
    assert_eq!(decimal_text(-5, 3), "-0.005");
    assert_eq!(decimal_text(i128::MIN, 0), i128::MIN.to_string());
    assert_eq!(decimal_text(100, 0), "100");
}

const V1: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"}, {"name": "kind", "type": "string"}]}"#;
const V2: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"}, {"name": "kind", "type": "string"},
  {"name": "region", "type": ["null", "string"], "default": null}]}"#;

fn datum(schema: &str, value: Avro) -> Vec<u8> {
    apache_avro::to_avro_datum(&Schema::parse_str(schema).unwrap(), value).unwrap()
}

fn event(id: i64, region: Option<&str>) -> Avro {
    let mut fields = vec![
        ("id".to_owned(), Avro::Long(id)),
        ("kind".to_owned(), Avro::String("click".into())),
    ];
    if let Some(region) = region {
        fields.push((
            "region".to_owned(),
            Avro::Union(1, Box::new(Avro::String(region.into()))),
        ));
    }
    Avro::Record(fields)
}

fn decoded(decoder: &dyn Decoder, payload: &[u8]) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    decoder.decode(payload, &RecordMeta::default(), &mut out)?;
    Ok(out)
}

/// Unframed datums of the pipe's own schema land as their JSON twins.
#[test]
fn plain_avro_reads_with_the_pipes_schema() {
    let columns = [("id", "Int64"), ("kind", "String")];
    let avro = AvroDecoder::new(
        plan(&columns, &[]),
        AvroSchemas::Fixed(Arc::new(WriterSchema::parse(V1).unwrap())),
        None,
    );
    let json = JsonDecoder::new(plan(&columns, &[]));
    assert_eq!(
        decoded(&avro, &datum(V1, event(5, None))).unwrap(),
        decoded(&json, br#"{"id": 5, "kind": "click"}"#).unwrap()
    );
    let error = decoded(&avro, &[0x80]).unwrap_err();
    assert_eq!(error.code, ErrorCode::DataParsingError);
}

/// With a reader schema pinned, a datum of a newer writer schema is
/// resolved against it (the new field is not read), and a datum of an
/// older one gets the reader's default.
#[test]
fn a_pinned_reader_schema_resolves_older_and_newer_writers() {
    let columns = [("id", "Int64"), ("region", "Nullable(String)")];
    let source = Registry(HashMap::from([
        (
            1,
            Arc::new(RegisteredSchema::Avro(WriterSchema::parse(V1).unwrap())),
        ),
        (
            2,
            Arc::new(RegisteredSchema::Avro(WriterSchema::parse(V2).unwrap())),
        ),
    ]));
    let frame = |id: u32, body: Vec<u8>| {
        let mut message = vec![0];
        message.extend_from_slice(&id.to_be_bytes());
        message.extend(body);
        message
    };
    let pinned_v1 = AvroDecoder::new(
        plan(&columns, &[]),
        AvroSchemas::Registry(Arc::new(Registry(source.0.clone()))),
        Some(Arc::new(WriterSchema::parse(V1).unwrap())),
    );
    let json = JsonDecoder::new(plan(&columns, &[]));
    assert_eq!(
        decoded(&pinned_v1, &frame(2, datum(V2, event(1, Some("eu"))))).unwrap(),
        decoded(&json, br#"{"id": 1}"#).unwrap(),
        "the reader has no region: it is not read"
    );
    let pinned_v2 = AvroDecoder::new(
        plan(&columns, &[]),
        AvroSchemas::Registry(Arc::new(source)),
        Some(Arc::new(WriterSchema::parse(V2).unwrap())),
    );
    assert_eq!(
        decoded(&pinned_v2, &frame(1, datum(V1, event(2, None)))).unwrap(),
        decoded(&json, br#"{"id": 2, "region": null}"#).unwrap()
    );
    assert_eq!(
        decoded(&pinned_v2, &frame(2, datum(V2, event(3, Some("eu"))))).unwrap(),
        decoded(&json, br#"{"id": 3, "region": "eu"}"#).unwrap()
    );
}

struct Unreachable;

impl SchemaSource for Unreachable {
    fn schema(&self, _: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        Err(SchemaError::transient("connection refused"))
    }
}

/// A registry that cannot be asked is not the record's fault: the code
/// says so, and the batch stops instead of writing an error row.
#[test]
fn an_unreachable_registry_is_schema_unavailable_not_a_bad_record() {
    let avro = AvroDecoder::new(
        plan(&[("id", "Int64")], &[]),
        AvroSchemas::Registry(Arc::new(Unreachable)),
        None,
    );
    let error = decoded(&avro, &framed(7, order(1, 1))).unwrap_err();
    assert_eq!(error.code, ErrorCode::SchemaUnavailable);
    assert!(error.message.contains("connection refused"), "{error}");
}

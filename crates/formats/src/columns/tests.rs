use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::avro::{AvroDecoder, AvroSchemas};
use crate::protobuf::{compile_message, ProtoMessages, ProtobufDecoder};
use crate::row::{RecordMeta, RowPlan};
use crate::Decoder;

const SCHEMA: &str = r#"{"type": "record", "name": "Reading", "fields": [
  {"name": "id", "type": "long"},
  {"name": "ok", "type": "boolean"},
  {"name": "note", "type": ["null", "string"], "default": null},
  {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
  {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "attrs", "type": {"type": "map", "values": "long"}},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"},
    {"name": "address", "type": ["null", {"type": "record", "name": "Address", "fields": [
      {"name": "city", "type": "string"}]}], "default": null}]}},
  {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
    {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
  {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 4}},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4}},
  {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "either", "type": ["string", "long"]},
  {"name": "previous", "type": ["null", "Customer"], "default": null}
]}"#;

fn described(columns: &[InferredColumn]) -> Vec<String> {
    columns
        .iter()
        .map(|c| format!("{} {} <- {}", c.name, c.column_type, c.source_field))
        .collect()
}

fn plan_of(columns: &[InferredColumn]) -> RowPlan {
    RowPlan::new(
        columns
            .iter()
            .map(|c| (c.name.clone(), ChType::parse(&c.column_type).unwrap()))
            .collect(),
        &columns
            .iter()
            .map(|c| (c.source_field.clone(), c.name.clone()))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn avro_schemas_give_their_columns() {
    let schema = WriterSchema::parse(SCHEMA).unwrap();
    let columns = avro_columns(&schema).unwrap();
    assert_eq!(
        described(&columns),
        [
            "id Int64 <- id",
            "ok Bool <- ok",
            "note Nullable(String) <- note",
            "status Enum8('NEW' = 0, 'PAID' = 1) <- status",
            "tags Array(String) <- tags",
            "attrs Map(String, Int64) <- attrs",
            "customer_name String <- customer.name",
            "customer_address_city Nullable(String) <- customer.address.city",
            "lines Array(Tuple(sku String, qty Int32)) <- lines",
            "code FixedString(4) <- code",
            "price Decimal(18, 4) <- price",
            "uid UUID <- uid",
            "day Date32 <- day",
            "at DateTime64(6, 'UTC') <- at",
            "either Variant(Int64, String) <- either",
            "previous_name Nullable(String) <- previous.name",
            "previous_address_city Nullable(String) <- previous.address.city",
        ]
    );
    assert!(avro_columns(&WriterSchema::parse(r#""long""#).unwrap()).is_err());
}

/// The columns a schema gives take that schema's messages: a table made
/// from them never refuses its own data.
#[test]
fn avro_messages_fit_the_columns_of_their_schema() {
    use apache_avro::types::Value as Avro;
    let schema = WriterSchema::parse(SCHEMA).unwrap();
    let columns = avro_columns(&schema).unwrap();
    let value = Avro::Record(vec![
        ("id".into(), Avro::Long(1)),
        ("ok".into(), Avro::Boolean(true)),
        ("note".into(), Avro::Union(0, Box::new(Avro::Null))),
        ("status".into(), Avro::Enum(1, "PAID".into())),
        ("tags".into(), Avro::Array(vec![Avro::String("a".into())])),
        (
            "attrs".into(),
            Avro::Map([("k".to_owned(), Avro::Long(2))].into()),
        ),
        (
            "customer".into(),
            Avro::Record(vec![
                ("name".into(), Avro::String("Ada".into())),
                ("address".into(), Avro::Union(0, Box::new(Avro::Null))),
            ]),
        ),
        (
            "lines".into(),
            Avro::Array(vec![Avro::Record(vec![
                ("sku".into(), Avro::String("x".into())),
                ("qty".into(), Avro::Int(2)),
            ])]),
        ),
        ("code".into(), Avro::Fixed(4, b"AB12".to_vec())),
        (
            "price".into(),
            Avro::Decimal(apache_avro::Decimal::from(vec![0x30, 0x39])),
        ),
        ("uid".into(), Avro::Uuid(uuid::Uuid::nil())),
        ("day".into(), Avro::Date(19_000)),
        ("at".into(), Avro::TimestampMicros(1_700_000_000_000_000)),
        ("either".into(), Avro::Union(1, Box::new(Avro::Long(5)))),
        ("previous".into(), Avro::Union(0, Box::new(Avro::Null))),
    ]);
    let datum = apache_avro::to_avro_datum(schema.schema(), value).unwrap();
    let decoder = AvroDecoder::new(
        plan_of(&columns),
        AvroSchemas::Fixed(Arc::new(schema)),
        None,
    );
    let mut out = Vec::new();
    decoder
        .decode(&datum, &RecordMeta::default(), &mut out)
        .expect("the schema's own message fits its columns");
}

const ORDER: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/struct.proto";
enum Status { NEW = 0; PAID = 1; }
message Money { string currency = 1; int64 cents = 2; }
message Order {
  int64 id = 1;
  uint64 big = 2;
  sint32 delta = 3;
  bool active = 4;
  Status status = 5;
  repeated string tags = 6;
  map<string, int32> attributes = 7;
  Money total = 8;
  google.protobuf.Timestamp at = 9;
  google.protobuf.Duration took = 10;
  google.protobuf.Int64Value maybe = 11;
  google.protobuf.Struct extra = 12;
  optional string coupon = 13;
  oneof payment { string card = 14; string iban = 15; }
  repeated Money refunds = 16;
  Order parent = 17;
}
"#;

#[test]
fn protobuf_messages_give_their_columns_and_fit_them() {
    let files = BTreeMap::from([("order.proto".to_owned(), ORDER.to_owned())]);
    let descriptor = compile_message(&files, "shop.Order").unwrap();
    let columns = protobuf_columns(&descriptor);
    let described = described(&columns);
    for expected in [
        "id Int64 <- id",
        "big UInt64 <- big",
        "delta Int32 <- delta",
        "active Bool <- active",
        "status Enum8('NEW' = 0, 'PAID' = 1) <- status",
        "tags Array(String) <- tags",
        "attributes Map(String, Int32) <- attributes",
        "total_currency Nullable(String) <- total.currency",
        "total_cents Nullable(Int64) <- total.cents",
        "at Nullable(DateTime64(9, 'UTC')) <- at",
        "took Nullable(Int64) <- took",
        "maybe Nullable(Int64) <- maybe",
        "extra Nullable(String) <- extra",
        "coupon Nullable(String) <- coupon",
        "card Nullable(String) <- card",
        "refunds Array(Tuple(currency String, cents Int64)) <- refunds",
        "parent_id Nullable(Int64) <- parent.id",
    ] {
        assert!(
            described.contains(&expected.to_owned()),
            "{expected} not in {described:#?}"
        );
    }
    // The recursive `parent` stops at the depth limit.
    assert!(columns.len() < 200, "{}", columns.len());

    let json = r#"{"id": "1", "status": "PAID", "tags": ["a"], "attributes": {"w": 1},
        "total": {"currency": "EUR", "cents": "5"}, "at": "2023-11-14T22:13:20Z",
        "took": "2s", "maybe": "3", "extra": {"a": [1, "b"]}, "card": "visa",
        "refunds": [{"currency": "EUR", "cents": "1"}], "parent": {"id": "0"}}"#;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let message =
        prost_reflect::DynamicMessage::deserialize(descriptor.clone(), &mut deserializer).unwrap();
    let bytes = prost::Message::encode_to_vec(&message);
    let decoder = ProtobufDecoder::new(plan_of(&columns), ProtoMessages::Fixed(descriptor));
    let mut out = Vec::new();
    decoder
        .decode(&bytes, &RecordMeta::default(), &mut out)
        .expect("the schema's own message fits its columns");
}

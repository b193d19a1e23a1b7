use prost_reflect::prost::Message as _;
use sluice_clickhouse_types::ChType;

use super::*;
use crate::json::JsonDecoder;
use crate::row::ErrorCode;

const COMMON: &str = r#"
syntax = "proto3";
package shop.common;
message Money { string currency = 1; int64 cents = 2; }
"#;

const ORDERS: &str = r#"
syntax = "proto3";
package shop;
import "common.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/struct.proto";

enum Status { NEW = 0; PAID = 1; }

message Order {
  int64 id = 1;
  uint64 big = 2;
  double score = 3;
  bool active = 4;
  string note = 5;
  Status status = 6;
  repeated string tags = 7;
  map<string, int32> attributes = 8;
  shop.common.Money total = 9;
  google.protobuf.Timestamp at = 10;
  google.protobuf.Duration took = 11;
  google.protobuf.Int64Value maybe = 12;
  google.protobuf.Struct extra = 13;
  optional string coupon = 14;
  oneof payment { string card = 15; string iban = 16; }
  bytes raw = 17;
  message Line { string sku = 1; int32 quantity = 2; }
  repeated Line lines = 18;
}
"#;

fn files() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("common.proto".to_owned(), COMMON.to_owned()),
        ("orders.proto".to_owned(), ORDERS.to_owned()),
    ])
}

fn plan(columns: &[(&str, &str)]) -> RowPlan {
    RowPlan::new(
        columns
            .iter()
            .map(|(n, t)| (n.to_string(), ChType::parse(t).unwrap()))
            .collect(),
        &[],
    )
}

/// An order set through reflection, so the test needs no generated code.
fn order(descriptor: &MessageDescriptor) -> Vec<u8> {
    let json = r#"{
      "id": "-7", "big": "18446744073709551615", "score": 0.5, "active": true,
      "note": "fragile", "status": "PAID", "tags": ["a", "b"],
      "attributes": {"weight": 3}, "total": {"currency": "EUR", "cents": "1234"},
      "at": "2023-11-14T22:13:20.123456789Z", "took": "1.5s", "maybe": "42",
      "extra": {"source": "web", "n": 1}, "card": "visa", "raw": "QUIxMg==",
      "lines": [{"sku": "x", "quantity": 2}]
    }"#;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize(descriptor.clone(), &mut deserializer).unwrap();
    message.encode_to_vec()
}

const COLUMNS: [(&str, &str); 21] = [
    ("id", "Int64"),
    ("big", "UInt64"),
    ("score", "Float64"),
    ("active", "Bool"),
    ("note", "String"),
    ("status", "Enum8('NEW' = 0, 'PAID' = 1)"),
    ("tags", "Array(String)"),
    ("attributes", "Map(String, Int32)"),
    ("total.currency", "String"),
    ("total.cents", "Int64"),
    ("at", "DateTime64(9)"),
    ("took", "Int64"),
    ("maybe", "Nullable(Int64)"),
    ("extra", "String"),
    ("coupon", "Nullable(String)"),
    ("card", "Nullable(String)"),
    ("iban", "Nullable(String)"),
    ("raw", "String"),
    ("lines", "Array(Tuple(sku String, quantity Int32))"),
    ("line_skus", "String"),
    ("total", "String"),
];

/// Every kind of field lands as the same record sent as JSON would.
#[test]
fn protobuf_messages_land_as_their_json_twin_would() {
    let descriptor = compile_message(&files(), "shop.Order").unwrap();
    let decoder = ProtobufDecoder::new(plan(&COLUMNS), ProtoMessages::Fixed(descriptor.clone()));
    let mut from_proto = Vec::new();
    decoder
        .decode(&order(&descriptor), &RecordMeta::default(), &mut from_proto)
        .unwrap();
    let twin = br#"{"id": -7, "big": 18446744073709551615, "score": 0.5, "active": true,
        "note": "fragile", "status": "PAID", "tags": ["a", "b"], "attributes": {"weight": 3},
        "total": {"currency": "EUR", "cents": 1234}, "at": "2023-11-14T22:13:20.123456789Z",
        "took": 1500000000, "maybe": 42, "extra": {"n": 1, "source": "web"},
        "coupon": null, "card": "visa", "iban": null, "raw": "AB12",
        "lines": [{"sku": "x", "quantity": 2}]}"#;
    let mut from_json = Vec::new();
    JsonDecoder::new(plan(&COLUMNS))
        .decode(twin, &RecordMeta::default(), &mut from_json)
        .unwrap();
    assert_eq!(from_proto, from_json);
}

#[test]
fn confluent_message_indexes_pick_the_type() {
    assert_eq!(message_indexes(&[0, 9]).unwrap(), (vec![0], &[9][..]));
    // Count 2 (zigzag 4), then 1 (zigzag 2) and 0.
    assert_eq!(message_indexes(&[4, 2, 0]).unwrap().0, vec![1, 0]);
    assert!(message_indexes(&[]).is_err());
    assert!(message_indexes(&[0x80]).is_err());
    assert!(message_indexes(&[3]).is_err(), "a negative count");

    let schema = ProtoSchema::from_registry(
        ORDERS,
        &BTreeMap::from([("common.proto".to_owned(), COMMON.to_owned())]),
    )
    .unwrap();
    assert_eq!(schema.message_at(&[0]).unwrap().full_name(), "shop.Order");
    // Nested types count as the descriptor lists them, map entries
    // included, as Confluent's serializers number them.
    assert_eq!(
        schema.message_at(&[0, 0]).unwrap().full_name(),
        "shop.Order.AttributesEntry"
    );
    assert_eq!(
        schema.message_at(&[0, 1]).unwrap().full_name(),
        "shop.Order.Line"
    );
    assert!(schema.message_at(&[1]).is_none());

    let nested_first = ProtoSchema::from_registry(
        "syntax = \"proto3\"; message Customer { string name = 1; } message Order { Customer customer = 1; } message Other { int64 x = 1; }",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(nested_first.root_message().unwrap().full_name(), "Order");
}

struct OneSchema(Arc<RegisteredSchema>);

impl SchemaSource for OneSchema {
    fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        if id == 3 {
            Ok(self.0.clone())
        } else {
            Err(SchemaError::permanent("not found"))
        }
    }
}

/// Confluent's serializers register a base64 `FileDescriptorProto`; a
/// registry answers with it or with `.proto` text. Both read the same.
#[test]
fn registry_schemas_read_as_text_or_as_descriptors() {
    let descriptor = compile_message(&files(), "shop.Order").unwrap();
    let file = descriptor.parent_file();
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(file.file_descriptor_proto().encode_to_vec());
    let common = base64::engine::general_purpose::STANDARD.encode(
        descriptor
            .parent_pool()
            .get_file_by_name("common.proto")
            .unwrap()
            .file_descriptor_proto()
            .encode_to_vec(),
    );
    let references = BTreeMap::from([("common.proto".to_owned(), common)]);
    let from_descriptor = ProtoSchema::from_registry(&encoded, &references).unwrap();
    let from_text = ProtoSchema::from_registry(
        ORDERS,
        &BTreeMap::from([("common.proto".to_owned(), COMMON.to_owned())]),
    )
    .unwrap();

    let mut framed = vec![0, 0, 0, 0, 3, 0];
    framed.extend(order(&descriptor));
    let mut outputs = Vec::new();
    for schema in [from_descriptor, from_text] {
        let decoder = ProtobufDecoder::new(
            plan(&COLUMNS),
            ProtoMessages::Registry(Arc::new(OneSchema(Arc::new(RegisteredSchema::Protobuf(
                schema,
            ))))),
        );
        let mut out = Vec::new();
        decoder
            .decode(&framed, &RecordMeta::default(), &mut out)
            .unwrap();
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1]);

    let decoder = ProtobufDecoder::new(
        plan(&COLUMNS),
        ProtoMessages::Registry(Arc::new(OneSchema(Arc::new(RegisteredSchema::Avro(
            crate::avro::WriterSchema::parse(r#"{"type":"record","name":"A","fields":[]}"#)
                .unwrap(),
        ))))),
    );
    let error = decoder
        .decode(&framed, &RecordMeta::default(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::SourceSchemaError);
    framed[4] = 4;
    let error = decoder
        .decode(&framed, &RecordMeta::default(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::SourceSchemaError);
}

#[test]
fn bad_bytes_and_bad_schemas_say_what_is_wrong() {
    let descriptor = compile_message(&files(), "shop.Order").unwrap();
    let decoder = ProtobufDecoder::new(plan(&COLUMNS), ProtoMessages::Fixed(descriptor));
    let error = decoder
        .decode(&[0xff, 0xff, 0xff], &RecordMeta::default(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::DataParsingError);
    assert!(error.message.contains("shop.Order"), "{error}");

    let error = compile_message(&files(), "shop.Missing").unwrap_err();
    assert!(error.message.contains("shop.Order"), "{error}");
    let error = compile_message(
        &BTreeMap::from([(
            "a.proto".to_owned(),
            "syntax = \"proto3\"; message {".to_owned(),
        )]),
        "A",
    )
    .unwrap_err();
    assert!(error.message.contains("a.proto"), "{error}");
    let error = compile_message(
        &BTreeMap::from([(
            "a.proto".to_owned(),
            "syntax = \"proto3\"; import \"missing.proto\"; message A {}".to_owned(),
        )]),
        "A",
    )
    .unwrap_err();
    assert!(error.message.contains("missing.proto"), "{error}");
}

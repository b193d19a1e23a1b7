//! Avro and Protobuf pipes end to end. Messages are written the way
//! production producers write them — by confluent-kafka's AvroSerializer
//! and ProtobufSerializer, which register their schemas themselves — into
//! the test registry (test scaffolding: no Confluent-compatible registry
//! server can be installed here; see crates/testkit/src/registry.rs), and
//! land in the modern engine (chdb behind the test stack's front) with
//! every type the formats have.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_e2e::{
    confluent_serialize, create_topic, eventually, hex, produce, producer, reading, ClickHouse,
    ConfluentSerializer, Services, READING, STATUSES,
};
use sluice_testkit::registry::TestRegistry;

const READING_COLUMNS: &str = r#"[
  {"name": "id", "type": "UInt64"},
  {"name": "small", "type": "Int32"},
  {"name": "ok", "type": "Bool"},
  {"name": "ratio", "type": "Float32"},
  {"name": "score", "type": "Float64"},
  {"name": "label", "type": "String"},
  {"name": "note", "type": "Nullable(String)"},
  {"name": "status", "type": "Enum8('NEW' = 0, 'PAID' = 1, 'SHIPPED' = 2)"},
  {"name": "tags", "type": "Array(String)"},
  {"name": "attrs", "type": "Map(String, Int64)"},
  {"name": "customer", "type": "Tuple(name String, tier Int32)"},
  {"name": "customer_name", "type": "String"},
  {"name": "code", "type": "FixedString(4)"},
  {"name": "blob", "type": "String"},
  {"name": "price", "type": "Decimal(18, 4)"},
  {"name": "uid", "type": "UUID"},
  {"name": "day", "type": "Date32"},
  {"name": "clock", "type": "Int32"},
  {"name": "at_ms", "type": "DateTime64(3, 'UTC')"},
  {"name": "at_us", "type": "DateTime64(6, 'UTC')"},
  {"name": "at_ns", "type": "DateTime64(9, 'UTC')"},
  {"name": "local_ms", "type": "DateTime64(3, 'UTC')"},
  {"name": "either", "type": "Variant(Int64, String)"},
  {"name": "span", "type": "String"}
]"#;

const READING_ROW_7: &str = "7\t-7\tfalse\t0.5\t8.75\tr7\tn7\tPAID\t['a','b7']\t{'x':7}\t('c7',2)\tc7\tAB12\tblob-7\t7.1234\t00000000-0000-4000-8000-000000000007\t2022-01-15\t3600007\t2023-11-14 22:13:20.007\t2023-11-14 22:13:20.000007\t2023-11-14 22:13:20.000000007\t2023-11-14 22:13:20.007\t7\t{\"days\":2,\"millis\":3,\"months\":1}";
const READING_SELECT: &str = "SELECT id, small, ok, ratio, score, label, note, status, tags, attrs, customer, customer_name, code, blob, price, uid, day, clock, at_ms, at_us, at_ns, local_ms, either, span";

fn managed(destination: &str, table: &str, columns: &str) -> Value {
    json!({
        "destinationId": destination,
        "table": table,
        "managedTable": true,
        "tableDefinition": {"engine": "MergeTree", "sortingKey": ["id"]},
        "columns": serde_json::from_str::<Value>(columns).unwrap()
    })
}

async fn scalar(clickhouse: &ClickHouse, sql: &str) -> String {
    clickhouse
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .trim()
        .to_owned()
}

async fn wait_for_rows(clickhouse: &ClickHouse, table: &str, rows: u64) {
    eventually(
        &format!("{rows} rows in {table}"),
        Duration::from_secs(90),
        || async { clickhouse.count(table).await >= rows },
    )
    .await;
    assert_eq!(
        clickhouse.landed(table).await,
        (rows, rows),
        "{table}: every row once"
    );
}

/// Appends `records`, written by confluent-kafka's AvroSerializer with
/// `schema` (registered under `<topic>-value`), to the topic.
fn produce_avro(registry: &TestRegistry, topic: &str, schema: &str, records: &[Value]) {
    let messages = keyed(confluent_serialize(
        &registry.url,
        None,
        topic,
        ConfluentSerializer::Avro { schema },
        records,
    ));
    produce(&producer(), topic, &messages);
}

/// A fresh topic named after `prefix`.
async fn topic(prefix: &str, partitions: i32) -> String {
    let topic = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, partitions).await;
    topic
}

fn keyed(payloads: Vec<Vec<u8>>) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| (Some(i.to_string().into_bytes()), p))
        .collect()
}

/// AvroConfluent from the official serializer: every Avro type lands; a
/// message of an unknown schema id is SOURCE_SCHEMA_ERROR and one that is
/// not Avro DATA_PARSING_ERROR, both with their bytes in the error table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn avro_confluent_lands_every_type() {
    let registry = TestRegistry::start(Some(("reader", "s3cret"))).await;
    let clickhouse = ClickHouse::create_modern().await;
    let services = Services::start().await;
    let topic = format!("avro-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let records: Vec<Value> = (0..200).map(reading).collect();
    let mut messages = keyed(confluent_serialize(
        &registry.url,
        Some(("reader", "s3cret")),
        &topic,
        ConfluentSerializer::Avro { schema: READING },
        &records,
    ));
    assert_eq!(messages[0].1[0], 0, "Confluent's magic byte");
    let unknown_id = [vec![0, 0, 0, 0x7f, 0x7f], b"whatever".to_vec()].concat();
    messages.push((Some(b"bad".to_vec()), unknown_id.clone()));
    messages.push((Some(b"bad".to_vec()), b"{\"id\": 1}".to_vec()));
    produce(&producer(), &topic, &messages);

    let destination = services.create_destination(&clickhouse).await;
    let pipe = services
        .create_and_start(json!({
            "name": "avro confluent",
            "source": {"kafka": {
                "brokers": sluice_e2e::kafka_brokers(), "topics": [topic],
                "format": "AvroConfluent",
                "schemaRegistry": {"url": registry.url, "authentication": "PLAIN",
                    "credentials": {"username": "reader", "password": "s3cret"}}
            }},
            "destination": managed(&destination, "readings", READING_COLUMNS),
            "fieldMappings": [{"sourceField": "customer.name", "destinationField": "customer_name"}],
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    wait_for_rows(&clickhouse, "readings", 200).await;
    assert_eq!(
        scalar(
            &clickhouse,
            &format!("{READING_SELECT} FROM readings WHERE id = 7 FORMAT TSV")
        )
        .await,
        READING_ROW_7
    );
    assert_eq!(
        scalar(&clickhouse, "SELECT countIf(note IS NULL), countIf(variantElement(either, 'String') = 's8'), countIf(variantType(either) = 'Int64') FROM readings FORMAT TSV").await,
        "67\t1\t100"
    );
    eventually(
        "both bad messages in the error table",
        Duration::from_secs(30),
        || async { clickhouse.count("readings_sluice_errors").await >= 2 },
    )
    .await;
    assert_eq!(
        scalar(
            &clickhouse,
            "SELECT error_code, hex(raw_message) FROM readings_sluice_errors ORDER BY error_code FORMAT TSV"
        )
        .await,
        format!(
            "DATA_PARSING_ERROR\t{}\nSOURCE_SCHEMA_ERROR\t{}",
            hex(b"{\"id\": 1}").to_uppercase(),
            hex(&unknown_id).to_uppercase()
        )
    );
    // Bad records do not degrade the pipe.
    eventually("the pipe Running", Duration::from_secs(30), || async {
        services.status(&pipe).await["state"] == "Running"
    })
    .await;
}

const COMMON: &str = r#"syntax = "proto3";
package e2e.common;
message Money { string currency = 1; int64 cents = 2; }
"#;

const ORDER: &str = r#"syntax = "proto3";
package e2e;
import "common.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/struct.proto";

enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }

message Order {
  int64 id = 1;
  uint64 big = 2;
  double score = 3;
  bool active = 4;
  string note = 5;
  Status status = 6;
  repeated string tags = 7;
  map<string, int32> attributes = 8;
  e2e.common.Money total = 9;
  google.protobuf.Timestamp at = 10;
  google.protobuf.Duration took = 11;
  google.protobuf.Int64Value maybe = 12;
  google.protobuf.Struct extra = 13;
  optional string coupon = 14;
  oneof payment { string card = 15; string iban = 16; }
  bytes raw = 17;
  message Line { string sku = 1; int32 quantity = 2; }
  repeated Line lines = 18;
  sint32 delta = 19;
  fixed64 checksum = 20;
  float ratio = 21;
}
"#;

fn order(i: u64) -> Value {
    let mut order = json!({
        "id": i.to_string(), "big": "18446744073709551615", "score": i as f64 * 0.5,
        "active": i.is_multiple_of(2), "note": format!("n{i}"),
        "status": STATUSES[(i % 3) as usize],
        "tags": ["a", format!("t{i}")], "attributes": {"w": i},
        "total": {"currency": "EUR", "cents": (i * 100).to_string()},
        "at": format!("2023-11-14T22:13:{:02}.123456789Z", i % 60), "took": "1.5s",
        "extra": {"source": "web", "n": i},
        "raw": "QUIxMg==", "lines": [{"sku": format!("s{i}"), "quantity": 2}],
        "delta": -(i as i64), "checksum": i.to_string(), "ratio": 0.25
    });
    if i.is_multiple_of(2) {
        order["maybe"] = json!(i.to_string());
        order["coupon"] = json!(format!("c{i}"));
        order["card"] = json!("visa");
    } else {
        order["iban"] = json!(format!("DE{i}"));
    }
    order
}

const ORDER_COLUMNS: &str = r#"[
  {"name": "id", "type": "Int64"},
  {"name": "big", "type": "UInt64"},
  {"name": "score", "type": "Float64"},
  {"name": "active", "type": "Bool"},
  {"name": "note", "type": "String"},
  {"name": "status", "type": "LowCardinality(String)"},
  {"name": "tags", "type": "Array(String)"},
  {"name": "attributes", "type": "Map(String, Int32)"},
  {"name": "total_currency", "type": "String"},
  {"name": "total_cents", "type": "Int64"},
  {"name": "at", "type": "DateTime64(9, 'UTC')"},
  {"name": "took", "type": "Int64"},
  {"name": "maybe", "type": "Nullable(Int64)"},
  {"name": "extra", "type": "String"},
  {"name": "coupon", "type": "Nullable(String)"},
  {"name": "card", "type": "Nullable(String)"},
  {"name": "iban", "type": "Nullable(String)"},
  {"name": "raw", "type": "String"},
  {"name": "lines", "type": "Array(Tuple(sku String, quantity Int32))"},
  {"name": "delta", "type": "Int32"},
  {"name": "checksum", "type": "UInt64"},
  {"name": "ratio", "type": "Float32"}
]"#;

const ORDER_SELECT: &str = "SELECT id, big, score, active, note, status, tags, attributes, total_currency, total_cents, at, took, maybe, extra, coupon, card, iban, raw, lines, delta, checksum, ratio";

fn order_row(i: u64) -> String {
    let even = i.is_multiple_of(2);
    format!(
        "{i}\t18446744073709551615\t{}\t{}\tn{i}\t{}\t['a','t{i}']\t{{'w':{i}}}\tEUR\t{}\t2023-11-14 22:13:{:02}.123456789\t1500000000\t{}\t{{\"n\":{i},\"source\":\"web\"}}\t{}\t{}\t{}\tAB12\t[('s{i}',2)]\t-{i}\t{i}\t0.25",
        i as f64 * 0.5,
        even,
        ["NEW", "PAID", "SHIPPED"][(i % 3) as usize],
        i * 100,
        i % 60,
        if even { i.to_string() } else { "\\N".into() },
        if even { format!("c{i}") } else { "\\N".into() },
        if even { "visa".to_owned() } else { "\\N".into() },
        if even { "\\N".to_owned() } else { format!("DE{i}") },
    )
}

fn order_mappings() -> Value {
    json!([
        {"sourceField": "total.currency", "destinationField": "total_currency"},
        {"sourceField": "total.cents", "destinationField": "total_cents"}
    ])
}

/// Protobuf from the official serializer (schema id and message indexes in
/// each message, the import registered as a reference): every kind of field
/// lands, well-known types included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn protobuf_through_the_registry_lands_every_type() {
    let registry = TestRegistry::start(None).await;
    let clickhouse = ClickHouse::create_modern().await;
    let services = Services::start().await;
    let topic = format!("proto-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let records: Vec<Value> = (0..200).map(order).collect();
    let messages = keyed(confluent_serialize(
        &registry.url,
        None,
        &topic,
        ConfluentSerializer::Protobuf {
            files: &[("common.proto", COMMON), ("order.proto", ORDER)],
            message_type: "e2e.Order",
        },
        &records,
    ));
    produce(&producer(), &topic, &messages);
    let destination = services.create_destination(&clickhouse).await;
    services
        .create_and_start(json!({
            "name": "protobuf registry",
            "source": {"kafka": {
                "brokers": sluice_e2e::kafka_brokers(), "topics": [topic],
                "format": "Protobuf", "schemaRegistry": {"url": registry.url}
            }},
            "destination": managed(&destination, "orders", ORDER_COLUMNS),
            "fieldMappings": order_mappings(),
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    wait_for_rows(&clickhouse, "orders", 200).await;
    for i in [7, 8] {
        assert_eq!(
            scalar(
                &clickhouse,
                &format!("{ORDER_SELECT} FROM orders WHERE id = {i} FORMAT TSV")
            )
            .await,
            order_row(i)
        );
    }
    assert_eq!(clickhouse.count("orders_sluice_errors").await, 0);
}

/// Plain Protobuf messages with the `.proto` files given with the pipe,
/// and plain Avro datums with the writer schema given inline or pinned as
/// a subject version of the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_protobuf_and_avro_with_the_pipes_schema_land() {
    let registry = TestRegistry::start(None).await;
    let clickhouse = ClickHouse::create_modern().await;
    let services = Services::start().await;
    let destination = services.create_destination(&clickhouse).await;

    let proto_topic = format!("plain-proto-{}", uuid::Uuid::new_v4().simple());
    create_topic(&proto_topic, 1).await;
    let pool = prost_reflect::DescriptorPool::decode(
        sluice_e2e::descriptor_set(&[("common.proto", COMMON), ("order.proto", ORDER)]).as_slice(),
    )
    .expect("the descriptor set");
    let descriptor = pool.get_message_by_name("e2e.Order").expect("e2e.Order");
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..100)
        .map(|i| {
            let json = order(i).to_string();
            let mut deserializer = serde_json::Deserializer::from_str(&json);
            let message =
                prost_reflect::DynamicMessage::deserialize(descriptor.clone(), &mut deserializer)
                    .expect("an order");
            (None, prost::Message::encode_to_vec(&message))
        })
        .collect();
    produce(&producer(), &proto_topic, &messages);
    services
        .create_and_start(json!({
            "name": "plain protobuf",
            "source": {"kafka": {
                "brokers": sluice_e2e::kafka_brokers(), "topics": [proto_topic],
                "format": "Protobuf", "messageType": "e2e.Order",
                "protobufSchema": {"common.proto": COMMON, "order.proto": ORDER}
            }},
            "destination": managed(&destination, "plain_orders", ORDER_COLUMNS),
            "fieldMappings": order_mappings(),
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;

    // Plain Avro: the same datums read by two pipes, one with the schema
    // inline, one with it pinned as version 1 of a registry subject.
    let avro_topic = format!("plain-avro-{}", uuid::Uuid::new_v4().simple());
    create_topic(&avro_topic, 1).await;
    let framed = confluent_serialize(
        &registry.url,
        None,
        &avro_topic,
        ConfluentSerializer::Avro { schema: READING },
        &(0..100).map(reading).collect::<Vec<_>>(),
    );
    // The serializer's framing off: a zero byte and the id.
    let datums: Vec<(Option<Vec<u8>>, Vec<u8>)> = framed
        .into_iter()
        .map(|m| (None, m[5..].to_vec()))
        .collect();
    produce(&producer(), &avro_topic, &datums);
    for (table, source) in [
        ("inline_readings", json!({"avroSchema": READING})),
        (
            "pinned_readings",
            json!({"schemaRegistry": {"url": format!("{}/subjects/{avro_topic}-value/versions/1", registry.url)}}),
        ),
    ] {
        let mut kafka = json!({
            "brokers": sluice_e2e::kafka_brokers(), "topics": [avro_topic], "format": "Avro",
            "consumerGroup": format!("{table}-{}", uuid::Uuid::new_v4().simple())
        });
        for (key, value) in source.as_object().unwrap() {
            kafka[key] = value.clone();
        }
        services
            .create_and_start(json!({
                "name": table,
                "source": {"kafka": kafka},
                "destination": managed(&destination, table, READING_COLUMNS),
                "fieldMappings": [{"sourceField": "customer.name", "destinationField": "customer_name"}],
                "settings": {"streaming_max_insert_wait_ms": 500}
            }))
            .await;
    }
    wait_for_rows(&clickhouse, "plain_orders", 100).await;
    assert_eq!(
        scalar(
            &clickhouse,
            &format!("{ORDER_SELECT} FROM plain_orders WHERE id = 7 FORMAT TSV")
        )
        .await,
        order_row(7)
    );
    for table in ["inline_readings", "pinned_readings"] {
        wait_for_rows(&clickhouse, table, 100).await;
        assert_eq!(
            scalar(
                &clickhouse,
                &format!("{READING_SELECT} FROM {table} WHERE id = 7 FORMAT TSV")
            )
            .await,
            READING_ROW_7
        );
    }
}

/// While the registry is down nothing is written, not even error rows:
/// the replica is Retrying with the reason, and once the registry answers
/// every row lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registry_outage_degrades_the_pipe_and_loses_nothing() {
    let registry = TestRegistry::start(None).await;
    let clickhouse = ClickHouse::create_modern().await;
    let services = Services::start().await;
    let topic = topic("outage", 2).await;
    produce_avro(
        &registry,
        &topic,
        READING,
        &(0..300).map(reading).collect::<Vec<_>>(),
    );
    registry.state.down.store(true, Ordering::SeqCst);
    let destination = services.create_destination(&clickhouse).await;
    let pipe = services
        .create_and_start(json!({
            "name": "registry outage",
            "source": {"kafka": {
                "brokers": sluice_e2e::kafka_brokers(), "topics": [topic],
                "format": "AvroConfluent", "schemaRegistry": {"url": registry.url}
            }},
            "destination": managed(&destination, "readings", READING_COLUMNS),
            "fieldMappings": [{"sourceField": "customer.name", "destinationField": "customer_name"}],
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    eventually(
        "the pipe reports the registry",
        Duration::from_secs(60),
        || async { services.status(&pipe).await.to_string().contains("503") },
    )
    .await;
    assert_eq!(clickhouse.count("readings").await, 0);
    assert_eq!(
        clickhouse.count("readings_sluice_errors").await,
        0,
        "no error rows while the registry is down"
    );
    registry.state.down.store(false, Ordering::SeqCst);
    wait_for_rows(&clickhouse, "readings", 300).await;
    assert_eq!(clickhouse.count("readings_sluice_errors").await, 0);
}

/// A Kinesis stream of AvroConfluent records lands like a topic does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kinesis_avro_confluent_lands() {
    let registry = TestRegistry::start(None).await;
    let clickhouse = ClickHouse::create_modern().await;
    let services = Services::start().await;
    let kinesis = sluice_e2e::kinesis().await;
    let stream = format!("avro-{}", uuid::Uuid::new_v4().simple());
    sluice_e2e::create_stream(&kinesis, &stream, 2).await;
    sluice_e2e::wait_for_stream(&kinesis, &stream).await;
    let payloads = confluent_serialize(
        &registry.url,
        None,
        &stream,
        ConfluentSerializer::Avro { schema: READING },
        &(0..150).map(reading).collect::<Vec<_>>(),
    );
    let records: Vec<(String, Vec<u8>)> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| (format!("k{i}"), p))
        .collect();
    sluice_e2e::put_records(&kinesis, &stream, &records).await;
    let destination = services.create_destination(&clickhouse).await;
    services
        .create_and_start(json!({
            "name": "kinesis avro",
            "source": {"kinesis": {
                "streamName": stream, "region": "us-east-1",
                "endpoint": sluice_e2e::kinesis_endpoint(), "iteratorType": "TRIM_HORIZON",
                "authentication": "IAM_USER",
                "accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
                "format": "AvroConfluent", "schemaRegistry": {"url": registry.url}
            }},
            "destination": managed(&destination, "readings", READING_COLUMNS),
            "fieldMappings": [{"sourceField": "customer.name", "destinationField": "customer_name"}],
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    wait_for_rows(&clickhouse, "readings", 150).await;
    assert_eq!(
        scalar(
            &clickhouse,
            &format!("{READING_SELECT} FROM readings WHERE id = 7 FORMAT TSV")
        )
        .await,
        READING_ROW_7
    );
    sluice_e2e::delete_stream(&kinesis, &stream).await;
}

/// The wizard's path through the API: the sample shows each message
/// decoded with its schema id, schema discovery derives the table from the
/// registered schema (not from samples), and a pipe created with exactly
/// those columns lands every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_table_comes_from_the_registered_schema() {
    let registry = TestRegistry::start(None).await;
    let clickhouse = ClickHouse::create_modern().await;
    let services = Services::start().await;
    let topic = topic("discover", 1).await;
    produce_avro(
        &registry,
        &topic,
        READING,
        &(0..50).map(reading).collect::<Vec<_>>(),
    );
    let source = json!({"kafka": {
        "brokers": sluice_e2e::kafka_brokers(), "topics": [topic],
        "format": "AvroConfluent", "schemaRegistry": {"url": registry.url}
    }});

    let (status, sample) = services
        .call(
            reqwest::Method::POST,
            "/v1/sources/sample",
            Some(json!({"source": source, "limit": 3})),
        )
        .await;
    assert_eq!(status, 200, "{sample}");
    let first = &sample["messages"][0];
    assert_eq!(first["schemaId"], 1, "{first}");
    assert_eq!(first["valueEncoding"], "base64", "{first}");
    assert!(first["decoded"]["customer"]["name"].is_string(), "{first}");

    let destination = services.create_destination(&clickhouse).await;
    let (status, discovered) = services
        .call(
            reqwest::Method::POST,
            "/v1/schema-discovery",
            Some(json!({"samples": [], "source": source, "destinationId": destination})),
        )
        .await;
    assert_eq!(status, 200, "{discovered}");
    assert_eq!(
        discovered["schema"],
        format!("the latest version of subject {topic}-value (schema id 1)")
    );
    let columns: Vec<Value> = discovered["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"name": c["name"], "type": c["type"]}))
        .collect();
    let mappings: Vec<Value> = discovered["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] != c["sourceField"])
        .map(|c| json!({"sourceField": c["sourceField"], "destinationField": c["name"]}))
        .collect();
    assert_eq!(columns.len(), 24, "{discovered}");
    assert_eq!(
        columns
            .iter()
            .find(|c| c["name"] == "customer_name")
            .unwrap()["type"],
        "String"
    );
    services
        .create_and_start(json!({
            "name": "from the schema",
            "source": source,
            "destination": {
                "destinationId": destination, "table": "discovered", "managedTable": true,
                "tableDefinition": {"engine": "MergeTree", "sortingKey": ["id"]},
                "columns": columns
            },
            "fieldMappings": mappings,
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    wait_for_rows(&clickhouse, "discovered", 50).await;
    assert_eq!(clickhouse.count("discovered_sluice_errors").await, 0);
    assert_eq!(
        scalar(&clickhouse, "SELECT customer_name, customer_tier, toString(at_ns), variantType(either) FROM discovered WHERE id = 7 FORMAT TSV").await,
        "c7\t2\t2023-11-14 22:13:20.000000007\tInt64"
    );
}

const EVENT_V1: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"}, {"name": "kind", "type": "string"},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"}]}}]}"#;
const EVENT_V2: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"}, {"name": "kind", "type": "string"},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"},
    {"name": "email", "type": ["null", "string"], "default": null}]}},
  {"name": "region", "type": ["null", "string"], "default": null},
  {"name": "score", "type": "double", "default": 0}]}"#;

fn event_v1(i: u64) -> Value {
    json!({"id": i, "kind": "click", "customer": {"name": format!("c{i}")}})
}

fn event_v2(i: u64) -> Value {
    json!({"id": i, "kind": "view", "customer": {"name": format!("c{i}"), "email": format!("c{i}@example.com")},
           "region": "eu", "score": i as f64 / 2.0})
}

/// A pipe reading V1 messages, then V2 messages (new fields) after V1's
/// rows landed; returns the services, the pipe id and the ClickHouse.
async fn schema_change_mid_stream(evolution: &str) -> (Services, String, ClickHouse) {
    let registry = TestRegistry::start(None).await;
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let topic = topic("evolve", 2).await;
    produce_avro(
        &registry,
        &topic,
        EVENT_V1,
        &(0..100).map(event_v1).collect::<Vec<_>>(),
    );
    let destination = services.create_destination(&clickhouse).await;
    let pipe = services
        .create_and_start(json!({
            "name": format!("evolution {evolution}"),
            "source": {"kafka": {
                "brokers": sluice_e2e::kafka_brokers(), "topics": [topic],
                "format": "AvroConfluent", "schemaRegistry": {"url": registry.url}
            }},
            "destination": managed(&destination, "events", r#"[
                {"name": "id", "type": "Int64"}, {"name": "kind", "type": "String"},
                {"name": "customer_name", "type": "String"}]"#),
            "fieldMappings": [{"sourceField": "customer.name", "destinationField": "customer_name"}],
            "schemaEvolution": evolution,
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    wait_for_rows(&clickhouse, "events", 100).await;
    // The producer moves to V2 while the pipe runs.
    produce_avro(
        &registry,
        &topic,
        EVENT_V2,
        &(100..200).map(event_v2).collect::<Vec<_>>(),
    );
    wait_for_rows(&clickhouse, "events", 200).await;
    drop(registry);
    (services, pipe, clickhouse)
}

async fn events_of(services: &Services, pipe: &str, kind: &str) -> Vec<String> {
    let (status, events) = services
        .call(
            reqwest::Method::GET,
            &format!("/v1/pipes/{pipe}/events?limit=200"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{events}");
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

/// `add_columns` on a running pipe: the V2 fields become Nullable columns
/// (on the 18.16 server), the statement is an event, V2 rows carry them,
/// and no row is lost or duplicated across the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_columns_evolves_a_running_pipe() {
    let (services, pipe, clickhouse) = schema_change_mid_stream("add_columns").await;
    assert_eq!(
        scalar(&clickhouse, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'events' ORDER BY name FORMAT TSV").await,
        "customer_email\tNullable(String)\ncustomer_name\tString\nid\tInt64\nkind\tString\nregion\tNullable(String)\nscore\tNullable(Float64)"
    );
    assert_eq!(
        scalar(&clickhouse, "SELECT countIf(region = 'eu'), countIf(customer_email = concat(customer_name, '@example.com')), countIf(score = id / 2), countIf(region IS NULL) FROM events FORMAT TSV").await,
        "100\t100\t100\t100"
    );
    let evolved = events_of(&services, &pipe, "schema_evolved").await;
    assert_eq!(evolved.len(), 1, "{evolved:?}");
    assert!(
        evolved[0].contains("ADD COLUMN `customer_email` Nullable(String)")
            && evolved[0].contains("ALTER TABLE"),
        "{evolved:?}"
    );
    let (status, schema) = services
        .call(
            reqwest::Method::GET,
            &format!("/v1/pipes/{pipe}/schema"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{schema}");
    assert_eq!(schema["schemaEvolution"], "add_columns");
    let ids: Vec<i64> = schema["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["schemaId"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "{schema}");
    let added: Vec<&str> = schema["addedColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sourceField"].as_str().unwrap())
        .collect();
    assert_eq!(added.len(), 3, "{schema}");
    assert!(added.contains(&"customer.email"), "{schema}");
    assert_eq!(clickhouse.count("events_sluice_errors").await, 0);
}

/// Without the option the table keeps its columns, every row lands, and
/// the new fields are reported once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_evolution_new_fields_are_ignored_and_reported_once() {
    let (services, pipe, clickhouse) = schema_change_mid_stream("none").await;
    assert_eq!(
        scalar(&clickhouse, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'events' FORMAT TSV").await,
        "3"
    );
    eventually(
        "the schema change reported",
        Duration::from_secs(30),
        || async {
            !events_of(&services, &pipe, "schema_changed")
                .await
                .is_empty()
        },
    )
    .await;
    let changed = events_of(&services, &pipe, "schema_changed").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(
        changed[0].contains("customer.email")
            && changed[0].contains("region")
            && changed[0].contains("not loaded"),
        "{changed:?}"
    );
    assert_eq!(clickhouse.count("events_sluice_errors").await, 0);
}

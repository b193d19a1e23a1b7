//! Feeds the web UI's browser tests: creates a Kafka topic and a Kinesis
//! stream, puts a first batch of JSON messages in each, prints `ready`, then
//! keeps producing a few messages a second to both until it is stopped or
//! `--seconds` pass, so the pipes the tests create have live data.
//!
//! It also serves a schema registry (test scaffolding,
//! `sluice_testkit::registry`; its URL printed as `registry <url>`) and
//! feeds the same orders in the other formats: `<topic>-avro`
//! (AvroConfluent, confluent-kafka's AvroSerializer), `<topic>-proto`
//! (Protobuf, its ProtobufSerializer), `<topic>-avro-plain` (Avro datums
//! without framing), `<topic>-proto-plain` (plain Protobuf) and the
//! Kinesis stream `<stream>-avro` (AvroConfluent); `<topic>-types` holds
//! AvroConfluent records of every Avro type (`sluice_e2e::READING`). The schemas a user
//! would paste or upload are written to files, printed as
//! `avro-schema <path>` and `proto-file <path>`.
//!
//! Usage: sluice-e2e-seed <topic> <stream> <seconds>
//! (SLUICE_TEST_KAFKA_BROKERS and SLUICE_TEST_KINESIS_ENDPOINT as for the
//! end-to-end tests.)

use std::time::{Duration, Instant};

use serde_json::json;
use sluice_e2e::{
    confluent_serialize, create_stream, create_topic, descriptor_set, kinesis, produce, producer,
    put_records, reading, ConfluentSerializer, READING,
};
use sluice_testkit::registry::TestRegistry;

const FIRST_BATCH: usize = 50;
const PER_TICK: usize = 5;
const COUNTRIES: [&str; 4] = ["DE", "FR", "JP", "KR"];

const ORDER_SCHEMA: &str = r#"{"type": "record", "name": "Order", "namespace": "web", "fields": [
  {"name": "id", "type": "long"},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"}, {"name": "country", "type": "string"}]}},
  {"name": "amount", "type": "double"},
  {"name": "paid", "type": "boolean"},
  {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
]}"#;

/// Avro orders serialized up front: python runs once, not every tick.
const AVRO_ORDERS: usize = 2000;

const ORDER_PROTO: &str = r#"syntax = "proto3";
package web;
import "google/protobuf/timestamp.proto";

message Customer {
  string name = 1;
  string country = 2;
}

message Order {
  int64 id = 1;
  Customer customer = 2;
  double amount = 3;
  bool paid = 4;
  google.protobuf.Timestamp created_at = 5;
}
"#;

fn proto_order(i: usize) -> serde_json::Value {
    let mut order = avro_order(i);
    order["id"] = json!(i.to_string());
    let millis = 1_795_000_000_000i64 + i as i64;
    order["created_at"] = json!(chrono_free_rfc3339(millis));
    order
}

/// RFC 3339 of a Unix time in milliseconds (UTC), without a date crate.
fn chrono_free_rfc3339(millis: i64) -> String {
    let (days, rest) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

fn avro_order(i: usize) -> serde_json::Value {
    json!({
        "id": i,
        "customer": {"name": format!("customer-{}", i % 13), "country": COUNTRIES[i % 4]},
        "amount": (i % 500) as f64 / 4.0 + 0.5,
        "paid": !i.is_multiple_of(3),
        "created_at": 1_795_000_000_000u64 + i as u64
    })
}

fn order(i: usize) -> Vec<u8> {
    json!({
        "id": i,
        "customer": {"name": format!("customer-{}", i % 13), "country": COUNTRIES[i % 4]},
        "amount": (i % 500) as f64 / 4.0 + 0.5,
        "paid": !i.is_multiple_of(3),
        "created_at": format!("2026-11-21T10:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, i % 1000),
        "tags": ["web", format!("t{}", i % 5)]
    })
    .to_string()
    .into_bytes()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, topic, stream, seconds] = args.as_slice() else {
        eprintln!("usage: sluice-e2e-seed <topic> <stream> <seconds>");
        std::process::exit(2);
    };
    let seconds: u64 = seconds.parse().expect("seconds is a number");
    create_topic(topic, 3).await;
    let client = kinesis().await;
    create_stream(&client, stream, 1).await;
    let kafka = producer();
    send(&kafka, &client, topic, stream, 0..FIRST_BATCH).await;

    let registry = TestRegistry::start(None).await;
    let orders: Vec<serde_json::Value> = (0..AVRO_ORDERS).map(avro_order).collect();
    let proto_orders: Vec<serde_json::Value> = (0..AVRO_ORDERS).map(proto_order).collect();
    let avro = |subject_topic: &str| {
        confluent_serialize(
            &registry.url,
            None,
            subject_topic,
            ConfluentSerializer::Avro {
                schema: ORDER_SCHEMA,
            },
            &orders,
        )
    };
    let files = [("web/order.proto", ORDER_PROTO)];
    let pool = prost_reflect::DescriptorPool::decode(descriptor_set(&files).as_slice())
        .expect("the order descriptors");
    let order_type = pool.get_message_by_name("web.Order").expect("web.Order");
    let plain_proto: Vec<Vec<u8>> = proto_orders
        .iter()
        .map(|order| {
            let text = order.to_string();
            let mut deserializer = serde_json::Deserializer::from_str(&text);
            let message =
                prost_reflect::DynamicMessage::deserialize(order_type.clone(), &mut deserializer)
                    .expect("an order");
            prost::Message::encode_to_vec(&message)
        })
        .collect();
    let feeds: Vec<(Target, Vec<Vec<u8>>)> = vec![
        (
            Target::Topic(format!("{topic}-avro")),
            avro(&format!("{topic}-avro")),
        ),
        (
            Target::Topic(format!("{topic}-proto")),
            confluent_serialize(
                &registry.url,
                None,
                &format!("{topic}-proto"),
                ConfluentSerializer::Protobuf {
                    files: &files,
                    message_type: "web.Order",
                },
                &proto_orders,
            ),
        ),
        (
            Target::Topic(format!("{topic}-avro-plain")),
            // The serializer's framing off: a zero byte and the id.
            avro(&format!("{topic}-avro-plain"))
                .into_iter()
                .map(|m| m[5..].to_vec())
                .collect(),
        ),
        (Target::Topic(format!("{topic}-proto-plain")), plain_proto),
        (
            Target::Stream(format!("{stream}-avro")),
            avro(&format!("{stream}-avro")),
        ),
        // Every type the formats map, for the wizard's table from the schema.
        (
            Target::Topic(format!("{topic}-types")),
            confluent_serialize(
                &registry.url,
                None,
                &format!("{topic}-types"),
                ConfluentSerializer::Avro { schema: READING },
                &(0..AVRO_ORDERS as u64).map(reading).collect::<Vec<_>>(),
            ),
        ),
    ];
    for (target, _) in &feeds {
        match target {
            Target::Topic(name) => create_topic(name, 1).await,
            Target::Stream(name) => create_stream(&client, name, 1).await,
        }
    }
    let feed = |ids: std::ops::Range<usize>| {
        let feeds = &feeds;
        let kafka = &kafka;
        let client = &client;
        async move {
            for (target, payloads) in feeds {
                let batch: Vec<(usize, Vec<u8>)> = ids
                    .clone()
                    .filter_map(|i| payloads.get(i).map(|p| (i, p.clone())))
                    .collect();
                match target {
                    Target::Topic(name) => {
                        let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = batch
                            .into_iter()
                            .map(|(i, p)| (Some(i.to_string().into_bytes()), p))
                            .collect();
                        produce(kafka, name, &messages);
                    }
                    Target::Stream(name) => {
                        let records: Vec<(String, Vec<u8>)> =
                            batch.into_iter().map(|(i, p)| (i.to_string(), p)).collect();
                        put_records(client, name, &records).await;
                    }
                }
            }
        }
    };
    feed(0..FIRST_BATCH).await;
    let dir = std::env::temp_dir().join(format!("sluice-web-e2e-{topic}"));
    std::fs::create_dir_all(&dir).expect("a schema directory");
    let avro_schema = dir.join("order.avsc");
    std::fs::write(&avro_schema, ORDER_SCHEMA).expect("writing the Avro schema");
    let proto_file = dir.join("order.proto");
    std::fs::write(&proto_file, ORDER_PROTO).expect("writing the .proto file");
    println!("registry {}", registry.url);
    println!("avro-schema {}", avro_schema.display());
    println!("proto-file {}", proto_file.display());
    println!("ready");
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut next = FIRST_BATCH;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        send(&kafka, &client, topic, stream, next..next + PER_TICK).await;
        feed(next..next + PER_TICK).await;
        next += PER_TICK;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

enum Target {
    Topic(String),
    Stream(String),
}

async fn send(
    kafka: &rdkafka::producer::BaseProducer,
    client: &aws_sdk_kinesis::Client,
    topic: &str,
    stream: &str,
    ids: std::ops::Range<usize>,
) {
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = ids
        .clone()
        .map(|i| (Some(i.to_string().into_bytes()), order(i)))
        .collect();
    produce(kafka, topic, &messages);
    let records: Vec<(String, Vec<u8>)> = ids.map(|i| (i.to_string(), order(i))).collect();
    put_records(client, stream, &records).await;
}

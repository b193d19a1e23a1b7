//! Feeds the web UI's browser tests: creates a Kafka topic and a Kinesis
//! stream, puts a first batch of JSON messages in each, prints `ready`, then
//! keeps producing a few messages a second to both until it is stopped or
//! `--seconds` pass, so the pipes the tests create have live data.
//!
//! It also serves a schema registry (test scaffolding,
//! `sluice_testkit::registry`; its URL printed as `registry <url>`) and
//! feeds `<topic>-avro` with the same orders as AvroConfluent, written by
//! confluent-kafka's AvroSerializer.
//!
//! Usage: sluice-e2e-seed <topic> <stream> <seconds>
//! (SLUICE_TEST_KAFKA_BROKERS and SLUICE_TEST_KINESIS_ENDPOINT as for the
//! end-to-end tests.)

use std::time::{Duration, Instant};

use serde_json::json;
use sluice_e2e::{
    confluent_serialize, create_stream, create_topic, kinesis, produce, producer, put_records,
    ConfluentSerializer,
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
    let avro_topic = format!("{topic}-avro");
    create_topic(&avro_topic, 1).await;
    let avro: Vec<Vec<u8>> = confluent_serialize(
        &registry.url,
        None,
        &avro_topic,
        ConfluentSerializer::Avro {
            schema: ORDER_SCHEMA,
        },
        &(0..AVRO_ORDERS).map(avro_order).collect::<Vec<_>>(),
    );
    let send_avro = |ids: std::ops::Range<usize>| {
        let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = ids
            .filter_map(|i| {
                avro.get(i)
                    .map(|m| (Some(i.to_string().into_bytes()), m.clone()))
            })
            .collect();
        produce(&kafka, &avro_topic, &messages);
    };
    send_avro(0..FIRST_BATCH);
    println!("registry {}", registry.url);
    println!("ready");
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut next = FIRST_BATCH;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        send(&kafka, &client, topic, stream, next..next + PER_TICK).await;
        send_avro(next..next + PER_TICK);
        next += PER_TICK;
    }
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

//! The API the web wizard and pipe page use, against the real broker,
//! Kinesis emulator and ClickHouse: source checks, topic and stream lists,
//! samples, schema discovery, browsing a destination, and a running pipe's
//! history, activity, newest rows and error records.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sluice_e2e::{
    create_stream, create_topic, eventually, kafka_brokers, kinesis, kinesis_endpoint, produce,
    producer, put_records, ClickHouse, Services,
};

fn kafka_source(brokers: &str, topics: &[&str]) -> Value {
    json!({"kafka": {"brokers": brokers, "topics": topics}})
}

fn kinesis_source(stream: &str) -> Value {
    json!({"kinesis": {
        "streamName": stream,
        "region": "us-east-1",
        "endpoint": kinesis_endpoint(),
        "accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretKey": "test"}
    }})
}

async fn post(services: &Services, path: &str, body: Value) -> (u16, Value) {
    services.call(Method::POST, path, Some(body)).await
}

async fn get(services: &Services, path: &str) -> (u16, Value) {
    services.call(Method::GET, path, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wizard_can_look_at_kafka_before_a_pipe_exists() {
    let services = Services::start().await;
    let topic = format!("wizard-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 3).await;
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..30)
        .map(|i| {
            let value =
                json!({"id": i, "user": {"name": format!("u{i}")}, "at": "2026-11-21T10:00:00Z"});
            (
                Some(format!("k{i}").into_bytes()),
                value.to_string().into_bytes(),
            )
        })
        .collect();
    produce(&producer(), &topic, &messages);

    let (status, check) = post(
        &services,
        "/v1/sources/check",
        json!({"source": kafka_source(&kafka_brokers(), &[])}),
    )
    .await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], true, "{check}");
    assert!(
        check["details"].as_str().unwrap().contains("broker"),
        "{check}"
    );

    // A wrong address is an answer that names the address and the cause.
    let (status, wrong) = post(
        &services,
        "/v1/sources/check",
        json!({"source": kafka_source("127.0.0.1:1", &[])}),
    )
    .await;
    assert_eq!(status, 200, "{wrong}");
    assert_eq!(wrong["ok"], false, "{wrong}");
    let error = wrong["error"].as_str().unwrap();
    assert!(error.contains("127.0.0.1:1"), "{error}");

    // Incomplete input is a field error, not a failed connection.
    let (status, problem) = post(
        &services,
        "/v1/sources/check",
        json!({"source": {"kafka": {"brokers": " ", "topics": []}}}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/source/kafka/brokers");

    let (status, topics) = post(
        &services,
        "/v1/sources/topics",
        json!({"source": kafka_source(&kafka_brokers(), &[])}),
    )
    .await;
    assert_eq!(status, 200, "{topics}");
    let listed = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == topic.as_str())
        .unwrap_or_else(|| panic!("{topic} not in {topics}"));
    assert_eq!(listed["partitions"], 3);

    let (status, sample) = post(
        &services,
        "/v1/sources/sample",
        json!({"source": kafka_source(&kafka_brokers(), &[&topic]), "limit": 5}),
    )
    .await;
    assert_eq!(status, 200, "{sample}");
    let sampled = sample["messages"].as_array().unwrap();
    assert_eq!(sampled.len(), 5, "{sample}");
    for message in sampled {
        let value: Value = serde_json::from_str(message["value"].as_str().unwrap()).unwrap();
        assert!(value["id"].is_number(), "{message}");
        assert!(message["partition"].is_number() && message["offset"].is_number());
    }

    let (status, missing) = post(
        &services,
        "/v1/sources/sample",
        json!({"source": kafka_source(&kafka_brokers(), &["no-such-topic-here"])}),
    )
    .await;
    assert_eq!(status, 422, "{missing}");
    assert_eq!(missing["errors"][0]["pointer"], "/source/kafka/topics/0");

    let samples: Vec<&str> = sampled
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    let (status, schema) = post(
        &services,
        "/v1/schema-discovery",
        json!({"samples": samples}),
    )
    .await;
    assert_eq!(status, 200, "{schema}");
    let columns = schema["columns"].as_array().unwrap();
    let user_name = columns
        .iter()
        .find(|c| c["sourceField"] == "user.name")
        .unwrap_or_else(|| panic!("no user.name in {schema}"));
    assert_eq!(user_name["type"], "String");
    assert!(columns.iter().any(|c| c["name"] == "id"), "{schema}");

    // Viewers may look at pipes but not reach out to sources.
    let viewer = services
        .call(
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "viewer", "role": "viewer"})),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let forbidden = services
        .http
        .post(format!("{}/v1/sources/check", services.api))
        .bearer_auth(&viewer)
        .json(&json!({"source": kafka_source(&kafka_brokers(), &[])}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let session: Value = services
        .http
        .get(format!("{}/v1/session", services.api))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["role"], "viewer", "{session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wizard_can_look_at_kinesis_before_a_pipe_exists() {
    let services = Services::start().await;
    let client = kinesis().await;
    let stream = format!("wizard-{}", uuid::Uuid::new_v4().simple());
    create_stream(&client, &stream, 2).await;
    let records: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("k{i}"), json!({"n": i}).to_string().into_bytes()))
        .collect();
    put_records(&client, &stream, &records).await;

    let (status, check) = post(
        &services,
        "/v1/sources/check",
        json!({"source": kinesis_source("")}),
    )
    .await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], true, "{check}");

    let (status, streams) = post(
        &services,
        "/v1/sources/streams",
        json!({"source": kinesis_source("")}),
    )
    .await;
    assert_eq!(status, 200, "{streams}");
    let listed = streams["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stream.as_str())
        .unwrap_or_else(|| panic!("{stream} not in {streams}"))
        .clone();
    assert_eq!(listed["shards"], 2, "{listed}");

    let (status, sample) = post(
        &services,
        "/v1/sources/sample",
        json!({"source": kinesis_source(&stream), "limit": 10}),
    )
    .await;
    assert_eq!(status, 200, "{sample}");
    let sampled = sample["messages"].as_array().unwrap();
    assert_eq!(sampled.len(), 10, "{sample}");
    assert!(sampled.iter().all(|m| m["shardId"].is_string()
        && m["sequenceNumber"].is_string()
        && m["value"].as_str().unwrap().starts_with("{\"n\":")));

    // Topics are a Kafka question.
    let (status, problem) = post(
        &services,
        "/v1/sources/topics",
        json!({"source": kinesis_source("")}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_pipe_shows_its_history_rows_and_errors() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let destination = services.create_destination(&clickhouse).await;

    let (status, databases) = get(
        &services,
        &format!("/v1/destinations/{destination}/databases"),
    )
    .await;
    assert_eq!(status, 200, "{databases}");
    assert!(
        databases["databases"]
            .as_array()
            .unwrap()
            .contains(&json!(clickhouse.database)),
        "{databases}"
    );
    clickhouse
        .query("CREATE TABLE existing (id UInt64, name String DEFAULT 'x') ENGINE = MergeTree() ORDER BY id")
        .await
        .unwrap();
    let (status, tables) = get(
        &services,
        &format!(
            "/v1/destinations/{destination}/databases/{}/tables",
            clickhouse.database
        ),
    )
    .await;
    assert_eq!(status, 200, "{tables}");
    assert_eq!(
        tables["tables"],
        json!([{"name": "existing", "engine": "MergeTree"}])
    );
    let (status, table) = get(
        &services,
        &format!(
            "/v1/destinations/{destination}/databases/{}/tables/existing",
            clickhouse.database
        ),
    )
    .await;
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["columns"][0], json!({"name": "id", "type": "UInt64"}));
    assert_eq!(table["columns"][1]["defaultKind"], "DEFAULT");
    let (status, absent) = get(
        &services,
        &format!(
            "/v1/destinations/{destination}/databases/{}/tables/nope",
            clickhouse.database
        ),
    )
    .await;
    assert_eq!(status, 404, "{absent}");
    // Malformed path parameters are problems too.
    let (status, bad) = get(&services, "/v1/destinations/nope/databases/x/tables").await;
    assert_eq!((status, bad["status"].clone()), (400, json!(400)), "{bad}");
    let (status, bad) = get(
        &services,
        &format!("/v1/destinations/{destination}/databases/%FF/tables"),
    )
    .await;
    assert_eq!((status, bad["status"].clone()), (400, json!(400)), "{bad}");

    let topic = format!("history-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let mut messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..500)
        .map(|i| {
            let value =
                json!({"id": i, "at": format!("2026-11-21 10:{:02}:{:02}", i / 60 % 60, i % 60)});
            (None, value.to_string().into_bytes())
        })
        .collect();
    messages.push((None, b"{\"id\": \"not a number\"}".to_vec()));
    produce(&producer(), &topic, &messages);
    let pipe = services
        .create_and_start(json!({
            "name": "history",
            "source": {"kafka": {"brokers": kafka_brokers(), "topics": [topic]}},
            "destination": {
                "destinationId": destination,
                "table": "events",
                "managedTable": true,
                "tableDefinition": {"sortingKey": ["id"]},
                "columns": [{"name": "id", "type": "UInt64"}, {"name": "at", "type": "DateTime"}]
            }
        }))
        .await;
    eventually("all rows landed", Duration::from_secs(120), || async {
        clickhouse.count("events").await == 500
    })
    .await;

    eventually(
        "the history shows the rows",
        Duration::from_secs(30),
        || async {
            let (_, history) = get(
                &services,
                &format!("/v1/pipes/{pipe}/metrics/history?minutes=10"),
            )
            .await;
            let points = history["points"].as_array().cloned().unwrap_or_default();
            let sent: i64 = points.iter().map(|p| p["sentRows"].as_i64().unwrap()).sum();
            let errors: i64 = points.iter().map(|p| p["errors"].as_i64().unwrap()).sum();
            history["bucketSeconds"] == 10 && sent == 500 && errors == 1
        },
    )
    .await;

    let (status, activity) = get(&services, "/v1/pipes/activity").await;
    assert_eq!(status, 200, "{activity}");
    let mine = activity["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["pipeId"] == pipe.as_str())
        .unwrap_or_else(|| panic!("no activity for {pipe}: {activity}"))
        .clone();
    assert_eq!(mine["errorsLastHour"], 1, "{mine}");

    // A column `SELECT *` does not return is not listed either.
    clickhouse
        .query("ALTER TABLE events ADD COLUMN doubled UInt64 MATERIALIZED id * 2")
        .await
        .unwrap();
    let (status, rows) = get(&services, &format!("/v1/pipes/{pipe}/rows?limit=3")).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows["rows"].as_array().unwrap().len(), 3, "{rows}");
    let listed: Vec<&str> = rows["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["id", "at"], "{rows}");
    // Newest first, by the table's date-time column.
    assert_eq!(rows["rows"][0]["at"], "2026-11-21 10:08:19", "{rows}");

    let (status, errors) = get(&services, &format!("/v1/pipes/{pipe}/errors")).await;
    assert_eq!(status, 200, "{errors}");
    assert_eq!(
        errors["errors"][0]["rawMessage"], "{\"id\": \"not a number\"}",
        "{errors}"
    );

    let (status, bad) = get(&services, &format!("/v1/pipes/{pipe}/rows?limit=0")).await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = get(
        &services,
        &format!("/v1/pipes/{pipe}/metrics/history?minutes=0"),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
}

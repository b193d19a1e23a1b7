//! A pipe into a table the user created: field mappings, virtual columns,
//! a MATERIALIZED column left to ClickHouse, and a declared column type the
//! table cannot take refused at start with both types named.

use std::time::Duration;

use serde_json::json;
use sluice_e2e::{create_topic, eventually, produce, producer, ClickHouse, Services};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_existing_table_with_mappings_and_virtual_columns() {
    let clickhouse = ClickHouse::create().await;
    clickhouse
        .query(
            "CREATE TABLE visits (user_id UInt64, page String, at DateTime, src_partition Int32, \
             src_offset Int64, src_topic String, headers Array(String), raw String, \
             day Date MATERIALIZED toDate(at)) ENGINE = MergeTree() ORDER BY user_id",
        )
        .await
        .unwrap();
    let services = Services::start().await;
    let topic = format!("visits-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..1000)
        .map(|i| {
            let body = json!({"visitor": {"id": i}, "url": format!("/p/{}", i % 10), "time": 1_700_000_000 + i});
            (None, body.to_string().into_bytes())
        })
        .collect();
    produce(&producer(), &topic, &messages);
    let destination = services.create_destination(&clickhouse).await;
    let mappings = json!([
        {"sourceField": "visitor.id", "destinationField": "user_id"},
        {"sourceField": "url", "destinationField": "page"},
        {"sourceField": "time", "destinationField": "at"},
        {"sourceField": "_partition", "destinationField": "src_partition"},
        {"sourceField": "_offset", "destinationField": "src_offset"},
        {"sourceField": "_topic", "destinationField": "src_topic"},
        {"sourceField": "_header_keys", "destinationField": "headers"},
        {"sourceField": "_raw_message", "destinationField": "raw"}
    ]);
    let pipe = services
        .create_and_start(json!({
            "name": "visits",
            "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic]}},
            "destination": {"destinationId": destination, "table": "visits"},
            "fieldMappings": mappings,
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    eventually("all visits", Duration::from_secs(120), || async {
        clickhouse.count("visits").await >= 1000
    })
    .await;
    let row = clickhouse
        .query("SELECT user_id, page, at, day, src_topic = '' , length(raw) > 0 FROM visits WHERE user_id = 7 FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(row.trim(), "7\t/p/7\t2023-11-14 22:13:27\t2023-11-14\t0\t1");
    let offsets = clickhouse
        .query("SELECT uniqExact((src_partition, src_offset)) FROM visits FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(offsets.trim(), "1000");
    eventually(
        "the pipe to be Running",
        Duration::from_secs(30),
        || async { services.status(&pipe).await["state"] == "Running" },
    )
    .await;

    // A pipe declaring a type the table cannot take fails with a clear error.
    let bad = services
        .create_and_start(json!({
            "name": "visits bad",
            "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic]}},
            "destination": {"destinationId": destination, "table": "visits",
                            "columns": [{"name": "at", "type": "UUID"}]},
        }))
        .await;
    eventually("the bad pipe to fail", Duration::from_secs(60), || async {
        services.status(&bad).await["state"] == "Failed"
    })
    .await;
    let error = services.status(&bad).await["lastError"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("`at`") && error.contains("UUID") && error.contains("DateTime"),
        "{error}"
    );
}

/// `permissions: table_only`: Sluice runs no DDL. A missing error table
/// fails the pipe at start with the statement that creates it; once that
/// statement has been run, rows land, and Sluice has created nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_only_runs_no_ddl_and_says_what_is_missing() {
    let clickhouse = ClickHouse::create().await;
    clickhouse
        .query("CREATE TABLE visits (id UInt64, page String) ENGINE = MergeTree() ORDER BY id")
        .await
        .unwrap();
    let services = Services::start().await;
    let topic = format!("table-only-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 1).await;
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..200)
        .map(|i| (None, json!({"id": i, "page": "/"}).to_string().into_bytes()))
        .collect();
    produce(&producer(), &topic, &messages);
    let destination = services.create_destination(&clickhouse).await;
    let pipe = services
        .create_and_start(json!({
            "name": "table only",
            "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic], "offset": {"strategy": "from_beginning"}}},
            "destination": {"destinationId": destination, "table": "visits", "permissions": "table_only"},
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    eventually("the pipe to fail", Duration::from_secs(60), || async {
        services.status(&pipe).await["state"] == "Failed"
    })
    .await;
    let error = services.status(&pipe).await["lastError"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, statement) = error
        .split_once("create it with: ")
        .unwrap_or_else(|| panic!("no statement in: {error}"));
    assert!(statement.starts_with("CREATE TABLE"), "{error}");
    // The test server is 18.16, older than TTL (19.6).
    let statement = statement.replace(" TTL at + INTERVAL 7 DAY", "");
    clickhouse
        .query(&statement)
        .await
        .expect("the statement Sluice gave");

    let (status, body) = services
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/pipes/{pipe}/state"),
            Some(json!({"command": "start"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("every visit", Duration::from_secs(60), || async {
        clickhouse.landed("visits").await == (200, 200)
    })
    .await;
    let tables = clickhouse
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{}' ORDER BY name FORMAT TSV",
            clickhouse.database
        ))
        .await
        .unwrap();
    assert_eq!(tables, "visits\nvisits_sluice_errors\n");
}

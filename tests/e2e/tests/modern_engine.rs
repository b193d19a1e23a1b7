//! The data path against the modern engine (ClickHouse 26.x as chdb,
//! behind the test stack's HTTP front — test scaffolding; the engine is
//! real): types 18.16 lacks, DEFAULT expressions for missing fields, and
//! refused rows on an exactly-once pipe.

use std::time::Duration;

use serde_json::json;
use sluice_e2e::{create_topic, eventually, produce, producer, ClickHouse, Services};

fn kafka(topic: &str) -> serde_json::Value {
    json!({"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic], "offset": {"strategy": "from_beginning"}}})
}

async fn scalar(clickhouse: &ClickHouse, sql: &str) -> String {
    clickhouse
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .trim()
        .to_owned()
}

/// A managed table of types the 18.16 server lacks; every value lands as
/// the engine reads it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn modern_types_land_as_sent() {
    let clickhouse = ClickHouse::create_modern().await;
    let services = Services::start().await;
    let topic = format!("modern-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 1).await;
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..100)
        .map(|i| {
            let body = json!({
                "id": i,
                "at": format!("2026-11-30T12:00:{:02}.{:03}Z", i % 60, i),
                "ok": i % 2 == 0,
                "uid": format!("00000000-0000-4000-8000-{i:012x}"),
                "ip": format!("10.1.0.{i}"),
                "big": format!("{}", i128::MAX - i as i128),
                "attrs": {"a": i, "b": i * 2},
                "tags": ["x", null, format!("t{i}")],
                "price": format!("{i}.1234"),
                "day": "2106-02-07"
            });
            (None, body.to_string().into_bytes())
        })
        .collect();
    produce(&producer(), &topic, &messages);
    let destination = services.create_destination(&clickhouse).await;
    services
        .create_and_start(json!({
            "name": "modern types",
            "source": kafka(&topic),
            "destination": {
                "destinationId": destination,
                "table": "typed",
                "managedTable": true,
                "tableDefinition": {"engine": "MergeTree", "sortingKey": ["id"]},
                "columns": [
                    {"name": "id", "type": "UInt64"},
                    {"name": "at", "type": "DateTime64(3, 'UTC')"},
                    {"name": "ok", "type": "Bool"},
                    {"name": "uid", "type": "UUID"},
                    {"name": "ip", "type": "IPv4"},
                    {"name": "big", "type": "Int128"},
                    {"name": "attrs", "type": "Map(String, UInt32)"},
                    {"name": "tags", "type": "Array(Nullable(String))"},
                    {"name": "price", "type": "Decimal(38, 4)"},
                    {"name": "day", "type": "Date32"}
                ]
            },
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    eventually("every row", Duration::from_secs(60), || async {
        clickhouse
            .query("SELECT count() FROM typed FORMAT TSV")
            .await
            .map(|c| c.trim() == "100")
            .unwrap_or(false)
    })
    .await;
    let row = scalar(
        &clickhouse,
        "SELECT id, at, ok, uid, ip, big, attrs, tags, price, day FROM typed WHERE id = 7 FORMAT TSV",
    )
    .await;
    assert_eq!(
        row,
        format!(
            "7\t2026-11-30 12:00:07.007\tfalse\t00000000-0000-4000-8000-000000000007\t10.1.0.7\t{}\t{{'a':7,'b':14}}\t['x',NULL,'t7']\t7.1234\t2106-02-07",
            i128::MAX - 7
        )
    );
    let errors = scalar(
        &clickhouse,
        "SELECT count() FROM typed_sluice_errors FORMAT TSV",
    )
    .await;
    assert_eq!(errors, "0");
}

/// An existing table with DEFAULT expressions: a field missing from a
/// message gets the column's DEFAULT evaluated (RowBinaryWithDefaults), not
/// the type's zero value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_fields_get_their_default_expressions() {
    let clickhouse = ClickHouse::create_modern().await;
    clickhouse
        .query("CREATE TABLE orders (id UInt64, status String DEFAULT 'new', label String DEFAULT concat('order-', toString(id)), qty UInt32 DEFAULT 1) ENGINE = MergeTree ORDER BY id")
        .await
        .expect("table");
    let services = Services::start().await;
    let topic = format!("defaults-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 1).await;
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = vec![
        (None, json!({"id": 1}).to_string().into_bytes()),
        (
            None,
            json!({"id": 2, "status": "paid", "qty": 5})
                .to_string()
                .into_bytes(),
        ),
        (
            None,
            json!({"id": 3, "label": "given"}).to_string().into_bytes(),
        ),
    ];
    produce(&producer(), &topic, &messages);
    let destination = services.create_destination(&clickhouse).await;
    services
        .create_and_start(json!({
            "name": "defaults",
            "source": kafka(&topic),
            "destination": {"destinationId": destination, "table": "orders"},
            "settings": {"streaming_max_insert_wait_ms": 500}
        }))
        .await;
    eventually("every row", Duration::from_secs(60), || async {
        clickhouse
            .query("SELECT count() FROM orders FORMAT TSV")
            .await
            .map(|c| c.trim() == "3")
            .unwrap_or(false)
    })
    .await;
    let rows = scalar(
        &clickhouse,
        "SELECT id, status, label, qty FROM orders ORDER BY id FORMAT TSV",
    )
    .await;
    assert_eq!(
        rows,
        "1\tnew\torder-1\t1\n2\tpaid\torder-2\t5\n3\tnew\tgiven\t1"
    );
}

/// Refused rows on an exactly-once pipe: the pipe writes to a Null table
/// whose materialized view throws for a few ids (the usual shape of a
/// transformation in ClickHouse). Every good row reaches the view's table
/// exactly once, the refused records are in the error table, and the pipe
/// keeps running. (With a table that stores rows, ClickHouse writes the
/// table before its views: see docs/data-plane.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_rows_on_an_exactly_once_pipe_land_once() {
    const ROWS: usize = 50_000;
    const POISONED: [usize; 3] = [2005, 17_777, 40_001];
    let clickhouse = ClickHouse::create_modern().await;
    for ddl in [
        "CREATE TABLE events (id UInt64, payload String) ENGINE = Null".to_owned(),
        "CREATE TABLE kept (id UInt64, payload String) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 1000".to_owned(),
        format!(
            "CREATE MATERIALIZED VIEW keep TO kept AS SELECT id, payload FROM events WHERE throwIf(id IN ({}, {}, {})) = 0",
            POISONED[0], POISONED[1], POISONED[2]
        ),
    ] {
        clickhouse.query(&ddl).await.expect(&ddl);
    }
    let services = Services::start().await;
    let topic = format!("poison-eo-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..ROWS)
        .map(|i| {
            (
                Some(i.to_string().into_bytes()),
                json!({"id": i, "payload": format!("order {i}")})
                    .to_string()
                    .into_bytes(),
            )
        })
        .collect();
    produce(&producer(), &topic, &messages);
    let destination = services.create_destination(&clickhouse).await;
    let pipe = services
        .create_and_start(json!({
            "name": "poison exactly once",
            "exactlyOnce": true,
            "source": kafka(&topic),
            "destination": {"destinationId": destination, "table": "events"},
            "settings": {"streaming_max_insert_wait_ms": 2000}
        }))
        .await;
    let good = (ROWS - POISONED.len()) as u64;
    eventually(
        "every good row in the view's table",
        Duration::from_secs(240),
        || async {
            clickhouse
                .query("SELECT uniqExact(id) FROM kept FORMAT TSV")
                .await
                .map(|c| c.trim() == good.to_string())
                .unwrap_or(false)
        },
    )
    .await;
    eventually("the refused records in the error table", Duration::from_secs(60), || async {
        clickhouse
            .query("SELECT uniqExact(raw_message) FROM events_sluice_errors WHERE error_code = 'INSERT_REJECTED' FORMAT TSV")
            .await
            .map(|c| c.trim() == "3")
            .unwrap_or(false)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = scalar(
        &clickhouse,
        "SELECT count(), uniqExact(id) FROM kept FORMAT TSV",
    )
    .await;
    println!("refused rows, exactly once, modern engine: kept {kept} (good {good})");
    assert_eq!(
        kept,
        format!("{good}\t{good}"),
        "each good row exactly once"
    );
    let refused = scalar(
        &clickhouse,
        "SELECT arraySort(groupUniqArray(JSONExtractUInt(raw_message, 'id'))) FROM events_sluice_errors WHERE error_code = 'INSERT_REJECTED' AND position(error, 'Code: 395') > 0 FORMAT TSV",
    )
    .await;
    assert_eq!(
        refused,
        format!("[{},{},{}]", POISONED[0], POISONED[1], POISONED[2])
    );
    eventually(
        "the pipe to be Running",
        Duration::from_secs(30),
        || async { services.status(&pipe).await["state"] == "Running" },
    )
    .await;
}

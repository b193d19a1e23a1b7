//! A Kafka pipe created and started through the API lands every good
//! message in ClickHouse and every bad one in the error table, and commits
//! exactly the end of the topic.

use std::time::Duration;

use serde_json::json;
use sluice_e2e::{
    committed_and_end, create_topic, eventually, produce, producer, ClickHouse, Services,
};

const MESSAGES: usize = 100_000;
const PARTITIONS: i32 = 4;
/// Messages over the XS replica's 16 MiB limit, produced after the others.
const OVERSIZE: usize = 3;
const OVERSIZE_BYTES: usize = (16 << 20) + 1024;
/// What the error table keeps of a message (`ERROR_RAW_MAX_BYTES`).
const RAW_KEPT: usize = 64 * 1024;

fn message(i: usize) -> Vec<u8> {
    if i % 100 == 42 {
        // 1% malformed: half broken JSON, half values of the wrong type.
        return if i % 200 == 42 {
            format!("{{\"id\": {i}, \"customer\": ").into_bytes()
        } else {
            json!({"id": i, "qty": "many"}).to_string().into_bytes()
        };
    }
    json!({
        "id": i,
        "customer": format!("customer-{}", i % 97),
        "total": format!("{}.{:02}", i, i % 100),
        "qty": (i % 1000) as i32 - 500,
        "price": i as f64 / 8.0,
        "paid": i.is_multiple_of(2),
        "created": format!("2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z", 1 + i % 28, i % 24, i % 60, (i / 60) % 60, i % 1000),
        "day": format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
        "uid": format!("00000000-0000-4000-8000-{:012x}", i),
        "tags": ["a", format!("t{}", i % 5)],
        "status": if i.is_multiple_of(3) { "paid" } else { "new" },
        "note": if i.is_multiple_of(10) { serde_json::Value::Null } else { json!(format!("note {i}")) },
        "code": format!("{:04}", i % 10_000),
        "meta": {"source": {"system": format!("sys-{}", i % 3)}},
        "ip": format!("10.0.{}.{}", (i / 256) % 256, i % 256),
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_lands_once_and_offsets_reach_the_end() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let topic = format!("orders-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, PARTITIONS).await;

    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..MESSAGES)
        .map(|i| (Some(i.to_string().into_bytes()), message(i)))
        .collect();
    produce(&producer(), &topic, &messages);
    drop(messages);
    let oversize: Vec<(Option<Vec<u8>>, Vec<u8>)> = (MESSAGES..MESSAGES + OVERSIZE)
        .map(|i| {
            let mut payload = format!("{{\"id\": {i}, \"note\": \"").into_bytes();
            payload.resize(OVERSIZE_BYTES - 2, b'x');
            payload.extend_from_slice(b"\"}");
            (Some(i.to_string().into_bytes()), payload)
        })
        .collect();
    produce(&producer(), &topic, &oversize);
    drop(oversize);

    let destination = services.create_destination(&clickhouse).await;
    let group = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let columns = json!([
        {"name": "id", "type": "UInt64"},
        {"name": "customer", "type": "LowCardinality(String)"},
        {"name": "total", "type": "Decimal(18, 2)"},
        {"name": "qty", "type": "Int32"},
        {"name": "price", "type": "Float64"},
        {"name": "paid", "type": "UInt8"},
        {"name": "created", "type": "DateTime"},
        {"name": "day", "type": "Date"},
        {"name": "uid", "type": "UUID"},
        {"name": "tags", "type": "Array(String)"},
        {"name": "status", "type": "Enum8('new' = 1, 'paid' = 2)"},
        {"name": "note", "type": "Nullable(String)"},
        {"name": "code", "type": "FixedString(4)"},
        {"name": "system", "type": "String"},
        {"name": "ip", "type": "String"},
        {"name": "missing", "type": "Int16"},
        {"name": "kafka_partition", "type": "Int32"},
        {"name": "kafka_offset", "type": "Int64"},
        {"name": "kafka_topic", "type": "String"},
        {"name": "kafka_key", "type": "String"},
        {"name": "kafka_time", "type": "DateTime"}
    ]);
    let pipe = services
        .create_and_start(json!({
            "name": "e2e orders",
            "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic], "consumerGroup": group}},
            "destination": {
                "destinationId": destination,
                "table": "orders",
                "managedTable": true,
                "tableDefinition": {"engine": "MergeTree", "sortingKey": ["id"]},
                "columns": columns
            },
            "fieldMappings": [
                {"sourceField": "meta.source.system", "destinationField": "system"},
                {"sourceField": "_partition", "destinationField": "kafka_partition"},
                {"sourceField": "_offset", "destinationField": "kafka_offset"},
                {"sourceField": "_topic", "destinationField": "kafka_topic"},
                {"sourceField": "_key", "destinationField": "kafka_key"},
                {"sourceField": "_timestamp", "destinationField": "kafka_time"}
            ],
            "scaling": {"replicas": 2, "replicaSize": "XS"},
            "settings": {"streaming_max_insert_wait_ms": 1000}
        }))
        .await;

    eventually(
        "every message to arrive",
        Duration::from_secs(240),
        || async {
            clickhouse.count("orders").await + clickhouse.count("orders_sluice_errors").await
                >= (MESSAGES + OVERSIZE) as u64
        },
    )
    .await;
    // Give any duplicate a moment to show up before counting exactly.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let bad: Vec<usize> = (0..MESSAGES).filter(|i| i % 100 == 42).collect();
    let good = MESSAGES - bad.len();
    let summary = clickhouse
        .query("SELECT count(), uniqExact(id), sum(id), sum(kafka_offset >= 0), uniqExact(kafka_partition) FROM orders FORMAT TSV")
        .await
        .unwrap();
    let expected_sum: usize = (0..MESSAGES).filter(|i| i % 100 != 42).sum();
    assert_eq!(
        summary.trim(),
        format!("{good}\t{good}\t{expected_sum}\t{good}\t{PARTITIONS}"),
        "rows, distinct ids, id sum, offsets, partitions"
    );

    // Every bad message is in the error table with its coordinates and bytes.
    let errors = clickhouse
        .query("SELECT count(), uniqExact((partition, offset)), sum(length(raw_message) > 0) FROM orders_sluice_errors FORMAT TSV")
        .await
        .unwrap();
    let n = bad.len() + OVERSIZE;
    assert_eq!(
        errors.trim(),
        format!("{n}\t{n}\t{n}"),
        "count, distinct coordinates, raw bytes kept"
    );
    let codes = clickhouse
        .query("SELECT error_code, count() FROM orders_sluice_errors GROUP BY error_code ORDER BY error_code FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(
        codes.trim(),
        format!(
            "DATA_PARSING_ERROR\t{}\nMESSAGE_TOO_LARGE\t{OVERSIZE}\nTYPE_CONVERSION_ERROR\t{}",
            bad.len() / 2,
            bad.len() / 2
        )
    );
    let keys = clickhouse
        .query("SELECT groupArray(toUInt64(key)) FROM (SELECT key FROM orders_sluice_errors WHERE error_code != 'MESSAGE_TOO_LARGE' ORDER BY toUInt64(key)) FORMAT TSV")
        .await
        .unwrap();
    let expected_keys = format!(
        "[{}]",
        bad.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(keys.trim(), expected_keys);
    let conversion = clickhouse
        .query("SELECT error FROM orders_sluice_errors WHERE error_code = 'TYPE_CONVERSION_ERROR' LIMIT 1 FORMAT TSV")
        .await
        .unwrap();
    assert!(conversion.contains("column `qty`"), "{conversion}");
    // Oversize messages keep their size and the first bytes of their body.
    let too_large = clickhouse
        .query("SELECT groupArray(toUInt64(key)), min(raw_size), max(length(raw_message)), min(raw_truncated), any(substring(raw_message, 1, 6)) FROM (SELECT * FROM orders_sluice_errors WHERE error_code = 'MESSAGE_TOO_LARGE' ORDER BY toUInt64(key)) FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(
        too_large.trim(),
        format!("[100000,100001,100002]\t{OVERSIZE_BYTES}\t{RAW_KEPT}\t1\t{{\"id\":")
    );

    // Values of every type made it through as sent.
    let row = clickhouse
        .query("SELECT id, customer, total, qty, price, paid, created, day, uid, tags, status, note, code, system, ip, missing, kafka_topic = '' , kafka_key FROM orders WHERE id = 12345 FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(
        row.trim(),
        "12345\tcustomer-26\t12345.45\t-155\t1543.125\t0\t2026-11-26 09:45:25\t2026-10-26\t00000000-0000-4000-8000-000000003039\t['a','t0']\tpaid\tnote 12345\t2345\tsys-0\t10.0.48.57\t0\t0\t12345"
    );
    let null_note = clickhouse
        .query("SELECT count() FROM orders WHERE note IS NULL FORMAT TSV")
        .await
        .unwrap();
    let expected_nulls = (0..MESSAGES)
        .filter(|i| i % 100 != 42 && i % 10 == 0)
        .count();
    assert_eq!(null_note.trim(), expected_nulls.to_string());

    // No offset is missing, and the group committed exactly the end of
    // every partition. (tansu's high watermark lags the log, so the end is
    // taken from the offsets themselves: every one of them is accounted for.)
    let per_partition = clickhouse
        .query("SELECT p, count(), uniqExact(o), max(o) FROM (SELECT kafka_partition AS p, kafka_offset AS o FROM orders UNION ALL SELECT toInt32(partition) AS p, offset AS o FROM orders_sluice_errors) GROUP BY p ORDER BY p FORMAT TSV")
        .await
        .unwrap();
    let mut ends = Vec::new();
    for line in per_partition.lines() {
        let fields: Vec<i64> = line.split('\t').map(|f| f.parse().unwrap()).collect();
        assert_eq!(
            fields[1], fields[2],
            "partition {}: an offset landed twice",
            fields[0]
        );
        assert_eq!(
            fields[2],
            fields[3] + 1,
            "partition {}: offsets are missing",
            fields[0]
        );
        ends.push(fields[3] + 1);
    }
    assert_eq!(ends.iter().sum::<i64>(), (MESSAGES + OVERSIZE) as i64);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let committed: Vec<i64> = committed_and_end(&topic, &group, PARTITIONS)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(
        committed, ends,
        "committed offsets are the ends of the partitions"
    );

    let status = services.status(&pipe).await;
    assert_eq!(status["state"], "Running", "{status}");
    assert_eq!(status["replicas"]["ready"], 2, "{status}");
    // The scheduler placed both replicas (on the one worker there is) and
    // says why.
    let placements = status["placements"].as_array().expect("placements");
    assert_eq!(placements.len(), 2, "{status}");
    assert!(
        placements
            .iter()
            .all(|p| p["workerId"].is_string() && p["status"] == "running"),
        "{status}"
    );
    let decision = status["lastSchedulingDecision"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        decision.contains("placed on worker") && decision.contains("new replica"),
        "{status}"
    );
    let metrics = services
        .http
        .get(&services.worker_metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("sluice_sent_rows_total"), "{metrics}");
    assert!(metrics.contains(&format!("pipe_id=\"{pipe}\"")));
    for gauge in [
        "sluice_consumer_lag_messages",
        "sluice_replica_cpu_seconds",
        "sluice_replica_memory_bytes",
    ] {
        assert!(metrics.contains(gauge), "{gauge} missing from {metrics}");
    }

    // Everything is committed, so the pipe's lag settles at zero; each
    // replica reports the CPU it used.
    eventually(
        "the lag to reach zero and the totals to add up",
        Duration::from_secs(30),
        || async {
            let summary = services.metrics(&pipe).await;
            summary["lagMessages"] == 0
                && summary["sentRows"] == good as u64
                && summary["errors"] == n as u64
        },
    )
    .await;
    let summary = services.metrics(&pipe).await;
    let replicas = summary["replicas"].as_array().expect("replicas");
    assert_eq!(replicas.len(), 2, "{summary}");
    assert!(
        replicas
            .iter()
            .any(|r| r["cpuSeconds"].as_f64() > Some(0.0)),
        "{summary}"
    );
}

//! Kinesis pipes created and started through the API land every record of
//! a stream in ClickHouse, bad ones in the error table, with nothing lost
//! across resharding.

use std::time::Duration;

use serde_json::json;
use sluice_e2e::{
    create_stream, delete_stream, eventually, kinesis, put_records, ClickHouse, Services,
};

const RECORDS: usize = 50_000;

fn record(i: usize) -> (String, Vec<u8>) {
    let key = format!("key-{}", i % 1000);
    let data = if i % 500 == 7 {
        format!("{{\"id\": {i}, \"broken").into_bytes()
    } else {
        json!({"id": i, "key": key, "seq_in_key": i / 1000, "amount": i as f64 / 4.0})
            .to_string()
            .into_bytes()
    };
    (key, data)
}

fn pipe(stream: &str, destination: &str, fan_out: bool, replicas: u32) -> serde_json::Value {
    json!({
        "name": format!("kinesis {stream}"),
        "source": {"kinesis": {
            "streamName": stream,
            "region": "us-east-1",
            "endpoint": sluice_e2e::kinesis_endpoint(),
            "iteratorType": "TRIM_HORIZON",
            "useEnhancedFanOut": fan_out,
            "authentication": "IAM_USER",
            "accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
        }},
        "destination": {
            "destinationId": destination,
            "table": "events",
            "managedTable": true,
            "tableDefinition": {"engine": "MergeTree", "sortingKey": ["id"]},
            "columns": [
                {"name": "id", "type": "UInt64"},
                {"name": "key", "type": "String"},
                {"name": "seq_in_key", "type": "UInt32"},
                {"name": "amount", "type": "Float64"},
                {"name": "partition_key", "type": "String"},
                {"name": "arrived", "type": "DateTime"},
                {"name": "raw", "type": "String"},
                {"name": "stream", "type": "String"},
                {"name": "sequence", "type": "String"}
            ]
        },
        "fieldMappings": [
            {"sourceField": "_key", "destinationField": "partition_key"},
            {"sourceField": "_timestamp", "destinationField": "arrived"},
            {"sourceField": "_raw_message", "destinationField": "raw"},
            {"sourceField": "_stream", "destinationField": "stream"},
            {"sourceField": "_sequence_number", "destinationField": "sequence"}
        ],
        "scaling": {"replicas": replicas, "replicaSize": "XS"},
        "settings": {"streaming_max_insert_wait_ms": 1000}
    })
}

async fn landed(clickhouse: &ClickHouse) -> (u64, u64, u64) {
    let text = clickhouse
        .query("SELECT count(), uniqExact(id), (SELECT count() FROM events_sluice_errors) FROM events FORMAT TSV")
        .await
        .unwrap_or_else(|e| {
            eprintln!("counting failed: {e}");
            String::new()
        });
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0));
    (
        fields.next().unwrap_or(0),
        fields.next().unwrap_or(0),
        fields.next().unwrap_or(0),
    )
}

/// A test's ClickHouse database, services and a fresh stream of `shards`.
async fn new_stream(
    prefix: &str,
    shards: i32,
) -> (ClickHouse, Services, aws_sdk_kinesis::Client, String) {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let client = kinesis().await;
    let stream = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    create_stream(&client, &stream, shards).await;
    (clickhouse, services, client, stream)
}

/// Waits for `good` distinct rows and `bad` error rows, gives a late
/// duplicate 3 s to show, and returns (rows, distinct, errors).
async fn all_landed(clickhouse: &ClickHouse, good: u64, bad: u64, what: &str) -> (u64, u64, u64) {
    eventually(what, Duration::from_secs(240), || async {
        let (_, distinct, errors) = landed(clickhouse).await;
        distinct >= good && errors >= bad
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    landed(clickhouse).await
}

fn bad_count(records: usize) -> u64 {
    (0..records).filter(|i| i % 500 == 7).count() as u64
}

/// Two XS replicas (four shard workers each) share an eight-shard stream.
/// (The emulator's PutRecords slows down with the records already in a
/// shard, so more shards also make producing faster.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_polling_pipe_lands_every_record() {
    let (clickhouse, services, client, stream) = new_stream("poll", 8).await;
    let records: Vec<(String, Vec<u8>)> = (0..RECORDS).map(record).collect();
    put_records(&client, &stream, &records).await;
    // And 100 more as the Kinesis Producer Library writes them: ten
    // Kinesis records of ten user records each.
    let aggregated: Vec<(String, Vec<u8>)> = (0..10)
        .map(|a| {
            let users: Vec<(String, Vec<u8>)> =
                (0..10).map(|j| record(RECORDS + a * 10 + j)).collect();
            let borrowed: Vec<(&str, &[u8])> = users
                .iter()
                .map(|(k, d)| (k.as_str(), d.as_slice()))
                .collect();
            (
                format!("aggregate-{a}"),
                sluice_kinesis::kpl::aggregate(&borrowed),
            )
        })
        .collect();
    put_records(&client, &stream, &aggregated).await;
    let total = RECORDS + 100;

    let destination = services.create_destination(&clickhouse).await;
    let pipe_id = services
        .create_and_start(pipe(&stream, &destination, false, 2))
        .await;
    let bad = bad_count(total);
    let good = total as u64 - bad;
    let (rows, distinct, errors) = all_landed(&clickhouse, good, bad, "every record").await;
    println!("polling: {rows} rows, {distinct} distinct, {errors} errors");
    assert_eq!(distinct, good, "every good record landed");
    assert_eq!(rows, good, "and only once");
    assert_eq!(errors, bad, "every bad record is in the error table");

    // Virtual columns: the partition key, the arrival time, the raw record,
    // the stream and a sequence number per Kinesis record (the 99 good
    // user records of the ten aggregates share their carriers' ten).
    let check = clickhouse
        .query(&format!("SELECT countIf(partition_key = key), countIf(arrived > toDateTime('2020-01-01 00:00:00')), countIf(raw LIKE '{{%}}'), countIf(stream = '{stream}'), uniqExact(sequence), countIf(length(sequence) >= 20) FROM events FORMAT TSV"))
        .await
        .unwrap();
    let sequences = good - 99 + 10;
    assert_eq!(
        check.trim(),
        format!("{good}\t{good}\t{good}\t{good}\t{sequences}\t{good}")
    );
    let error = clickhouse
        .query("SELECT error_code, source LIKE concat('%', 'shardId-%/%'), key FROM events_sluice_errors ORDER BY key LIMIT 1 FORMAT TSV")
        .await
        .unwrap();
    assert!(error.starts_with("DATA_PARSING_ERROR\t1\tkey-"), "{error}");
    let status = services.status(&pipe_id).await;
    assert_eq!(status["state"], "Running", "{status}");
    assert_eq!(status["replicas"]["ready"], 2, "{status}");
    // The replicas split the shards evenly and checkpointed every one.
    let pool = sqlx::PgPool::connect(&services.db.url).await.unwrap();
    let owners: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT owner_replica, count(*), count(checkpoint) FROM shard_leases GROUP BY owner_replica ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(owners, vec![(0, 4, 4), (1, 4, 4)]);
    delete_stream(&client, &stream).await;
}

/// One shard split and two others merged while records flow: every
/// record lands exactly once (children are read from their start once
/// their parents are finished; the order itself is proven by the lease
/// plan's tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resharding_mid_stream_loses_nothing() {
    reshard_mid_stream(false).await;
}

/// The same under enhanced fan-out: a subscription to a closed shard ends
/// with its child shards, and the children are subscribed to in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resharding_under_fan_out_loses_nothing() {
    reshard_mid_stream(true).await;
}

async fn reshard_mid_stream(fan_out: bool) {
    let (clickhouse, services, client, stream) = new_stream("reshard", 3).await;
    let records: Vec<(String, Vec<u8>)> = (0..RECORDS).map(record).collect();
    let (first, second) = records.split_at(RECORDS / 2);
    put_records(&client, &stream, first).await;

    let destination = services.create_destination(&clickhouse).await;
    services
        .create_and_start(pipe(&stream, &destination, fan_out, 1))
        .await;
    eventually("some records to land", Duration::from_secs(120), || async {
        landed(&clickhouse).await.1 > 1000
    })
    .await;

    // Split shard 0 at the middle of its hash range; merge shards 1 and 2.
    let shards = client
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("ListShards")
        .shards
        .unwrap_or_default();
    let range = shards[0].hash_key_range.clone().expect("hash range");
    let start: u128 = range.starting_hash_key.parse().unwrap();
    let end: u128 = range.ending_hash_key.parse().unwrap();
    client
        .split_shard()
        .stream_name(&stream)
        .shard_to_split(&shards[0].shard_id)
        .new_starting_hash_key((start + (end - start) / 2).to_string())
        .send()
        .await
        .expect("SplitShard");
    sluice_e2e::wait_for_stream(&client, &stream).await;
    client
        .merge_shards()
        .stream_name(&stream)
        .shard_to_merge(&shards[1].shard_id)
        .adjacent_shard_to_merge(&shards[2].shard_id)
        .send()
        .await
        .expect("MergeShards");
    sluice_e2e::wait_for_stream(&client, &stream).await;
    put_records(&client, &stream, second).await;

    let bad = bad_count(RECORDS);
    let good = RECORDS as u64 - bad;
    let (rows, distinct, errors) =
        all_landed(&clickhouse, good, bad, "every record after resharding").await;
    println!("resharding (fan-out {fan_out}): {rows} rows, {distinct} distinct, {errors} errors");
    assert_eq!(distinct, good, "no record lost");
    assert_eq!(errors, bad);
    delete_stream(&client, &stream).await;
}

async fn consumers(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    let arn = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary
        .expect("summary")
        .stream_arn;
    client
        .list_stream_consumers()
        .stream_arn(arn)
        .send()
        .await
        .expect("ListStreamConsumers")
        .consumers
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.consumer_name)
        .collect()
}

/// Enhanced fan-out on one XS replica: four shard workers for eight
/// shards, so subscriptions rotate; every shard is read and checkpointed,
/// every record lands once. Deleting the pipe removes its stream consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enhanced_fan_out_pipe_reads_more_shards_than_workers() {
    let (clickhouse, services, client, stream) = new_stream("efo", 8).await;
    let records: Vec<(String, Vec<u8>)> = (0..RECORDS).map(record).collect();
    let (first, second) = records.split_at(RECORDS / 2);
    put_records(&client, &stream, first).await;

    let destination = services.create_destination(&clickhouse).await;
    let pipe_id = services
        .create_and_start(pipe(&stream, &destination, true, 1))
        .await;
    // The rest arrives while subscriptions rotate.
    put_records(&client, &stream, second).await;
    let bad = bad_count(RECORDS);
    let good = RECORDS as u64 - bad;
    let (rows, distinct, errors) = all_landed(&clickhouse, good, bad, "every record").await;
    println!("enhanced fan-out: {rows} rows, {distinct} distinct, {errors} errors");
    assert_eq!(distinct, good, "every good record landed");
    assert_eq!(rows, good, "and only once");
    assert_eq!(errors, bad);
    let check = clickhouse
        .query(&format!("SELECT countIf(partition_key = key), countIf(stream = '{stream}'), uniqExact(sequence) FROM events FORMAT TSV"))
        .await
        .unwrap();
    assert_eq!(check.trim(), format!("{good}\t{good}\t{good}"));
    let name = format!("sluice-{pipe_id}");
    assert_eq!(consumers(&client, &stream).await, vec![name.clone()]);

    let pool = sqlx::PgPool::connect(&services.db.url).await.unwrap();
    let owners: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT owner_replica, count(*), count(checkpoint) FROM shard_leases GROUP BY owner_replica ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(owners, vec![(0, 8, 8)], "one replica read all eight shards");
    // Lag as MillisBehindLatest: every shard caught up once each has had
    // its turn after the last record.
    eventually("lag to reach 0 ms", Duration::from_secs(90), || async {
        services.metrics(&pipe_id).await["lagMillis"] == 0
    })
    .await;

    let (status, body) = services
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/pipes/{pipe_id}"),
            None,
        )
        .await;
    assert!(status == 202 || status == 204, "{status} {body}");
    eventually(
        "the stream consumer to be removed",
        Duration::from_secs(60),
        || async { consumers(&client, &stream).await.is_empty() },
    )
    .await;
    delete_stream(&client, &stream).await;
}

/// SIGKILL the worker running both replicas of a fan-out pipe mid-stream:
/// a new worker takes the replicas over once their leases lapse, takes
/// every shard lease with a new counter and resumes from the checkpoints.
/// Nothing is lost; records read but not checkpointed before the kill may
/// land twice (at-least-once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_replica_loses_nothing() {
    let (clickhouse, mut services, client, stream) = new_stream("kill", 8).await;
    let records: Vec<(String, Vec<u8>)> = (0..RECORDS).map(record).collect();
    let (first, second) = records.split_at(RECORDS / 2);
    put_records(&client, &stream, first).await;

    let destination = services.create_destination(&clickhouse).await;
    services
        .create_and_start(pipe(&stream, &destination, true, 2))
        .await;
    eventually("some records to land", Duration::from_secs(120), || async {
        landed(&clickhouse).await.1 > 5_000
    })
    .await;
    services.kill_worker();
    let pool = sqlx::PgPool::connect(&services.db.url).await.unwrap();
    let counters_at_kill: Vec<(String, i64)> =
        sqlx::query_as("SELECT shard_id, counter FROM shard_leases ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(counters_at_kill.len(), 8);
    put_records(&client, &stream, second).await;
    services.start_worker();

    let bad = bad_count(RECORDS);
    let good = RECORDS as u64 - bad;
    let (rows, distinct, errors) =
        all_landed(&clickhouse, good, bad, "every record after the kill").await;
    println!("after SIGKILL: {rows} rows, {distinct} distinct, {errors} errors");
    assert_eq!(distinct, good, "no record lost");
    let counters_after: Vec<(String, i64)> =
        sqlx::query_as("SELECT shard_id, counter FROM shard_leases ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    for ((shard, before), (_, after)) in counters_at_kill.iter().zip(&counters_after) {
        assert!(
            after > before,
            "{shard} was taken over: counter {before} → {after}"
        );
    }
    delete_stream(&client, &stream).await;
}

/// A Kinesis replica whose worker is paused (SIGSTOP) while it holds an
/// unflushed batch: after the worker's silence its shards move to another
/// worker, which lands every record. Resumed (SIGCONT) past its lease, the
/// zombie finds its batch due, checks its replica lease before inserting,
/// and inserts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_kinesis_replica_inserts_nothing_once_resumed() {
    const HELD: usize = 500;
    let (clickhouse, mut services, client, stream) = new_stream("zombie", 2).await;
    let destination = services.create_destination(&clickhouse).await;
    let mut spec = pipe(&stream, &destination, false, 1);
    // The batch stays open long enough to be held across the pause.
    spec["settings"]["streaming_max_insert_wait_ms"] = json!(30_000);
    let pipe_id = services.create_and_start(spec).await;
    let records: Vec<(String, Vec<u8>)> = (0..HELD)
        .map(|i| {
            let (key, _) = record(i);
            let data = json!({"id": i, "key": key, "seq_in_key": 0, "amount": 1.0});
            (key, data.to_string().into_bytes())
        })
        .collect();
    put_records(&client, &stream, &records).await;
    eventually(
        "the replica to read every record",
        Duration::from_secs(60),
        || async {
            services.metrics(&pipe_id).await["fetchedEvents"].as_i64() == Some(HELD as i64)
        },
    )
    .await;
    assert_eq!(
        landed(&clickhouse).await.0,
        0,
        "the batch is still held, unflushed"
    );

    services.start_extra_worker();
    services.signal_worker("STOP");
    eventually(
        "the records, landed by the other worker",
        Duration::from_secs(120),
        || async { landed(&clickhouse).await.1 == HELD as u64 },
    )
    .await;
    let (rows_before, _, _) = landed(&clickhouse).await;
    services.signal_worker("CONT");
    // The zombie's batch is long past due: it flushes (or stops) at once.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rows, distinct, _) = landed(&clickhouse).await;
    println!(
        "kinesis zombie: {rows_before} rows before SIGCONT, {rows} rows, {distinct} distinct after"
    );
    assert_eq!(rows, rows_before, "the resumed replica inserted nothing");
    assert_eq!(
        (rows, distinct),
        (HELD as u64, HELD as u64),
        "nothing lost or duplicated"
    );
    delete_stream(&client, &stream).await;
}

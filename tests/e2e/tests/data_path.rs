//! The data path under the conditions production users meet first: a topic
//! that does not exist yet when the pipe starts (and grows partitions
//! later), rows ClickHouse refuses, and a ClickHouse that stops answering.

use std::time::{Duration, Instant};

use serde_json::json;
use sluice_e2e::{
    create_topic, create_topic_on, eventually, produce, produce_to, producer, producer_for,
    ClickHouse, Fault, FaultProxy, OwnBroker, Services,
};

fn orders(range: std::ops::Range<usize>) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    range
        .map(|i| {
            (
                Some(i.to_string().into_bytes()),
                json!({"id": i, "payload": format!("order {i}")})
                    .to_string()
                    .into_bytes(),
            )
        })
        .collect()
}

/// (rows, distinct ids) of `table` (see `ClickHouse::landed`).
async fn landed(clickhouse: &ClickHouse, table: &str) -> (u64, u64) {
    clickhouse.landed(table).await
}

/// Polls the pipe's status until `check` holds; returns that status.
async fn status_until(
    services: &Services,
    pipe: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let status = services.status(pipe).await;
        if check(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn kafka_pipe(
    name: &str,
    destination: &str,
    topic: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut pipe = json!({
        "name": name,
        "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic], "offset": {"strategy": "from_beginning"}}},
        "destination": {
            "destinationId": destination,
            "table": "events",
            "managedTable": true,
            "tableDefinition": {"sortingKey": ["id"]},
            "columns": [{"name": "id", "type": "UInt64"}, {"name": "payload", "type": "String"}]
        },
        "settings": {"streaming_max_insert_wait_ms": 500}
    });
    if let (Some(pipe), Some(extra)) = (pipe.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            pipe.insert(key.clone(), value.clone());
        }
    }
    pipe
}

/// The README tour's order: the pipe starts first, the topic comes later.
/// While it is missing the pipe says so in words; once it exists its first
/// messages land within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipe_started_before_its_topic_reads_it_within_10_s() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let topic = format!("late-{}", uuid::Uuid::new_v4().simple());
    let destination = services.create_destination(&clickhouse).await;
    let pipe = services
        .create_and_start(kafka_pipe("late", &destination, &topic, json!({})))
        .await;

    let missing = format!("topic `{topic}` does not exist on");
    let said = status_until(
        &services,
        &pipe,
        "the pipe to say the topic is missing",
        Duration::from_secs(60),
        |status| status["state"] == "Degraded" && status.to_string().contains(&missing),
    )
    .await;
    println!("while the topic is missing: {said}");

    create_topic(&topic, 2).await;
    let first = Instant::now();
    produce(&producer(), &topic, &orders(0..1000));
    eventually("the first messages", Duration::from_secs(10), || async {
        landed(&clickhouse, "events").await.1 == 1000
    })
    .await;
    println!(
        "late topic: 1000 rows landed {:?} after the first message",
        first.elapsed()
    );
    eventually(
        "the pipe to be Running",
        Duration::from_secs(20),
        || async { services.status(&pipe).await["state"] == "Running" },
    )
    .await;

    let (rows, distinct) = landed(&clickhouse, "events").await;
    assert_eq!((rows, distinct), (1000, 1000), "nothing lost or duplicated");
}

/// A partition added to the topic of a running pipe is read: its messages
/// land within 10 s of being produced, with nothing lost or duplicated on
/// the partitions that were there before. The topic lives on a broker of
/// the test's own (see `OwnBroker::add_partition` for how the partition is
/// added: tansu 0.6 has no CreatePartitions).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_added_to_a_running_topic_is_read_within_10_s() {
    let broker = OwnBroker::start().await;
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let topic = format!("growing-{}", uuid::Uuid::new_v4().simple());
    create_topic_on(&broker.brokers, &topic, 2).await;
    produce(&producer_for(&broker.brokers), &topic, &orders(0..500));
    let destination = services.create_destination(&clickhouse).await;
    let mut pipe = kafka_pipe("growing", &destination, &topic, json!({}));
    pipe["source"]["kafka"]["brokers"] = json!(broker.brokers);
    pipe["destination"]["columns"]
        .as_array_mut()
        .expect("columns")
        .push(json!({"name": "kafka_partition", "type": "Int32"}));
    pipe["fieldMappings"] =
        json!([{"sourceField": "_partition", "destinationField": "kafka_partition"}]);
    let pipe = services.create_and_start(pipe).await;
    eventually(
        "the first partitions' rows",
        Duration::from_secs(60),
        || async { landed(&clickhouse, "events").await.1 == 500 },
    )
    .await;

    let added = broker.add_partition(&topic).await;
    assert_eq!(added, 2, "the third partition");
    // A producer made now learns of the partition from its first metadata.
    let produced = Instant::now();
    produce_to(
        &producer_for(&broker.brokers),
        &topic,
        Some(added),
        &orders(500..1000),
    );
    eventually(
        "the new partition's rows",
        Duration::from_secs(10),
        || async { landed(&clickhouse, "events").await.1 == 1000 },
    )
    .await;
    println!(
        "added partition: 500 rows landed {:?} after they were produced",
        produced.elapsed()
    );
    let from_new = clickhouse
        .query("SELECT count(), uniqExact(id), min(id) FROM events WHERE kafka_partition = 2 FORMAT TSV")
        .await
        .expect("rows of the new partition");
    assert_eq!(
        from_new.trim(),
        "500\t500\t500",
        "the new partition's rows, each once"
    );
    let (rows, distinct) = landed(&clickhouse, "events").await;
    assert_eq!((rows, distinct), (1000, 1000), "nothing lost or duplicated");
    assert_eq!(services.status(&pipe).await["state"], "Running");
}

/// A materialized view that throws for a few ids: every other row lands,
/// the refused records are in the error table as INSERT_REJECTED with
/// their raw bytes, the event log says so, and the pipe keeps running. On
/// this server (18.16: no deduplication tokens, and the table is written
/// before its views) every refused attempt leaves its rows in the table:
/// the duplicates are printed and must stay within the documented bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_clickhouse_refuses_go_to_the_error_table_and_the_rest_land() {
    const ROWS: usize = 50_000;
    const POISONED: [usize; 3] = [2005, 17_777, 40_001];
    let clickhouse = ClickHouse::create().await;
    clickhouse
        .query("CREATE TABLE events (id UInt64, payload String) ENGINE = MergeTree ORDER BY id")
        .await
        .expect("table");
    clickhouse
        .query(&format!(
            "CREATE MATERIALIZED VIEW poison ENGINE = MergeTree ORDER BY id AS SELECT id, throwIf(id IN ({}, {}, {})) AS refused FROM events",
            POISONED[0], POISONED[1], POISONED[2]
        ))
        .await
        .expect("materialized view");
    let services = Services::start().await;
    let topic = format!("poison-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 2).await;
    produce(&producer(), &topic, &orders(0..ROWS));
    let destination = services.create_destination(&clickhouse).await;
    let pipe = services
        .create_and_start(json!({
            "name": "poison",
            "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic], "offset": {"strategy": "from_beginning"}}},
            "destination": {"destinationId": destination, "table": "events"},
            "settings": {"streaming_max_insert_wait_ms": 2000}
        }))
        .await;

    let good = (ROWS - POISONED.len()) as u64;
    let good_landed = || async {
        let text = clickhouse
            .query(&format!(
                "SELECT uniqExact(id) FROM events WHERE id NOT IN ({}, {}, {}) FORMAT TSV",
                POISONED[0], POISONED[1], POISONED[2]
            ))
            .await
            .expect("counting");
        text.trim().parse::<u64>().expect("a number")
    };
    eventually("every good row", Duration::from_secs(240), || async {
        good_landed().await == good
    })
    .await;
    eventually("the refused records in the error table", Duration::from_secs(60), || async {
        let text = clickhouse
            .query("SELECT count() FROM events_sluice_errors WHERE error_code = 'INSERT_REJECTED' FORMAT TSV")
            .await
            .expect("the error table");
        text.trim() == POISONED.len().to_string()
    })
    .await;
    let refused = clickhouse
        .query("SELECT visitParamExtractUInt(raw_message, 'id') AS id, error LIKE '%Code: 395%', key = toString(id) FROM events_sluice_errors ORDER BY id FORMAT TSV")
        .await
        .expect("the error rows");
    let expected: String = POISONED.iter().map(|id| format!("{id}\t1\t1\n")).collect();
    assert_eq!(refused, expected, "the raw records and ClickHouse's reason");

    // The view only ever saw blocks without the poisoned ids, once each.
    let (view_rows, view_distinct) = landed(&clickhouse, "poison").await;
    println!("poison view: {view_rows} rows, {view_distinct} distinct");
    assert_eq!(view_distinct, good);

    let (rows, distinct) = landed(&clickhouse, "events").await;
    let duplicates = rows - distinct;
    // docs/data-plane.md: a refused batch of n rows may leave at most
    // (REJECTED_RETRIES + 1 + ceil(log2 n)) * n extra rows on a server that
    // writes the table before its views and has no deduplication tokens.
    let n = ROWS as u64;
    let bound = (1 + 1 + u64::from(u64::BITS - n.leading_zeros())) * n;
    println!("refused rows on 18.16: {rows} rows, {distinct} distinct, {duplicates} duplicates (bound {bound})");
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates exceed {bound}"
    );

    let (_, events) = services
        .call(
            reqwest::Method::GET,
            &format!("/v1/pipes/{pipe}/events"),
            None,
        )
        .await;
    assert!(
        events.to_string().contains("insert_rejected"),
        "the event log says what happened: {events}"
    );
    eventually(
        "the pipe to be Running",
        Duration::from_secs(30),
        || async { services.status(&pipe).await["state"] == "Running" },
    )
    .await;
}

/// A ClickHouse that accepts connections and never answers: the replica
/// writing to it gives up on each request after the pipe's timeout and
/// sends the same block again, while a replica of another pipe on the same
/// worker keeps its lease and keeps landing rows. Once the server answers
/// again, everything lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_clickhouse_holds_only_its_own_replica() {
    let clickhouse = ClickHouse::create().await;
    let stalled_clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let proxy = FaultProxy::start(&clickhouse.url).await;
    let proxied_url = proxy.url.clone();

    let healthy_topic = format!("healthy-{}", uuid::Uuid::new_v4().simple());
    let stalled_topic = format!("stalled-{}", uuid::Uuid::new_v4().simple());
    create_topic(&healthy_topic, 1).await;
    create_topic(&stalled_topic, 1).await;
    let healthy_destination = services.create_destination(&clickhouse).await;
    let (status, body) = services
        .call(
            reqwest::Method::POST,
            "/v1/destinations",
            Some(json!({"name": "through a proxy", "url": proxied_url, "database": stalled_clickhouse.database})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let stalled_destination = body["id"].as_str().expect("id").to_owned();
    let healthy = services
        .create_and_start(kafka_pipe(
            "healthy",
            &healthy_destination,
            &healthy_topic,
            json!({}),
        ))
        .await;
    let stalled = services
        .create_and_start(kafka_pipe(
            "stalled",
            &stalled_destination,
            &stalled_topic,
            json!({"settings": {"streaming_max_insert_wait_ms": 500, "clickhouse_timeout_seconds": 3}}),
        ))
        .await;
    produce(&producer(), &healthy_topic, &orders(0..100));
    produce(&producer(), &stalled_topic, &orders(0..100));
    eventually(
        "both pipes' first rows",
        Duration::from_secs(60),
        || async {
            landed(&clickhouse, "events").await.1 == 100
                && landed(&stalled_clickhouse, "events").await.1 == 100
        },
    )
    .await;

    proxy.set(Fault::Stall);
    produce(&producer(), &stalled_topic, &orders(100..200));
    let said = status_until(
        &services,
        &stalled,
        "the stalled replica to time out and retry",
        Duration::from_secs(60),
        |status| status.to_string().contains("no answer within 3 s"),
    )
    .await;
    println!("stalled pipe: {said}");

    // For longer than a lease (15 s), the healthy pipe's replica on the
    // same worker keeps its lease and its rows keep landing.
    let lease_of = |pipe: String| {
        let db = services.db.url.clone();
        async move {
            let pool = sqlx::PgPool::connect(&db).await.expect("test database");
            let row: (i64, bool) = sqlx::query_as(
                "SELECT epoch, expires_at > now() FROM replica_leases WHERE pipe_id = $1::uuid AND replica = 0",
            )
            .bind(&pipe)
            .fetch_one(&pool)
            .await
            .expect("the healthy replica's lease");
            row
        }
    };
    let (epoch, _) = lease_of(healthy.clone()).await;
    for wave in 1..=10 {
        produce(
            &producer(),
            &healthy_topic,
            &orders(wave * 100..wave * 100 + 100),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (now_epoch, live) = lease_of(healthy.clone()).await;
        assert!(
            live && now_epoch == epoch,
            "the healthy replica kept its lease (wave {wave})"
        );
    }
    eventually(
        "the healthy pipe's rows during the stall",
        Duration::from_secs(30),
        || async { landed(&clickhouse, "events").await.1 == 1100 },
    )
    .await;

    proxy.set(Fault::None);
    eventually(
        "the stalled pipe's rows once ClickHouse answers",
        Duration::from_secs(120),
        || async { landed(&stalled_clickhouse, "events").await.1 == 200 },
    )
    .await;
    let (rows, distinct) = landed(&stalled_clickhouse, "events").await;
    println!("stalled pipe after the stall: {rows} rows, {distinct} distinct");
    assert_eq!(distinct, 200, "nothing lost");
}
